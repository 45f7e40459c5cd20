/* tracker_rebuild.h: rebuilds the tracker from the requests in JSM.
 *
 * JSM is the record and the tracker a cache of it. Every request wf2jsm
 * makes carries its submission's key (the labels wf2jsm and
 * wf2jsm-<first 32 hex of the key>, or the whole key in SYNC_KEY_FIELD), so
 * a tracker that lost rows (deleted with its directory, or an old backup put
 * back) can learn them again from JSM before anything is created twice.
 *
 * A rebuild lists the requests of the service desk's project that carry a
 * key (one JQL search, all pages, with their labels and attachment names),
 * then reads the source table once and computes every row's key: the label
 * holds only a prefix of the key, and the source row gives the whole key,
 * the id and the time the tracker needs. In one tracker transaction:
 *   - a row whose request is listed is recorded with it: delivered when the
 *     request carries every configured submission-<id> file, else attaching
 *     (the next tick lists its attachments and uploads only what is missing);
 *   - a row the tracker holds without a request gets the listed one
 *     (attaching);
 *   - every other row the tracker does not know is queued as pending with
 *     may_exist set: it is looked up by key before it is created, which
 *     covers a request JSM's search did not show yet.
 * So a rebuilt tracker knows every source row that existed at the rebuild,
 * its cursor is the newest of them, and no row can fall behind the window.
 *
 * When it runs:
 *   - `sync` on a tracker with no submission row (missing, new, emptied):
 *     wf_rebuild_if_empty(), before the first batch. A non-empty tracker
 *     costs nothing; an empty one whose check is recorded costs one meta
 *     read; the first check costs the request type's fields (cached), the
 *     service desk (its project id, cached) and one search.
 *   - `reconcile --apply` on a tracker with no submission row.
 * An old tracker (a backup put back) needs no rebuild: every batch asks JSM
 * about the submissions it would create before creating (delivery.h).
 *
 * A rebuild records its figures in meta (see wf_rebuild_meta()), and logs
 * to tracker_rebuild.log. Rows are written with run id 0 (a learnt request
 * belongs to no run of this tracker, so `rollback --run` never deletes it)
 * and without a content checksum (JSM does not keep one). */
#ifndef WF_TRACKER_REBUILD_H
#define WF_TRACKER_REBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "errors.h"
#include "run.h"
#include "tracker.h"

/* Meta name of the last rebuild (a JSON object, see wf_rebuild_meta()). */
#define WF_REBUILD_META "tracker_rebuild"

/* What a rebuild found and did. */
typedef struct wf_rebuild_report {
    bool tracker_was_empty;
    int requests;      /* requests listed (carrying a key, in the desk's project) */
    int adopted;       /* source rows recorded with their request */
    int incomplete;    /* of those, rows left attaching (a file missing or unknown) */
    int known;         /* requests the tracker already had */
    int queued;        /* source rows without a request, queued (pending, looked up first) */
    int unmatched;     /* requests whose key no source row has (see `wf2jsm reconcile`) */
    int duplicates;    /* further requests carrying a key already listed */
} wf_rebuild_report;

/* For `sync`, when the tracker holds no submission row: does nothing when
 * meta records a check that wrote no row, else (never checked, or rebuilt
 * once and empty again) wf_rebuild_from_jsm(), recording the tracker as
 * "new" (no request found) or "rebuilt". Sets *rebuilt when JSM was asked,
 * and then *rep (may be NULL) to the figures. Returns WF_OK, or the whole-run error with
 * run->fatal and run->fatal_msg set (Jira, database, tracker, config). */
wf_err wf_rebuild_if_empty(wf_run *run, const char *command, wf_rebuild_report *rep, bool *rebuilt);

/* Lists every request of the desk's project that carries a key, reads the
 * source once and records what they say, as described at the top, in one
 * tracker transaction with the meta: all of it or nothing. The source rows
 * are read only when some listed request is new to the tracker. rep (may be
 * NULL) receives the figures; run->stats.adopted counts the adopted rows.
 * command names the command in meta. Returns WF_OK, or the whole-run error
 * with run->fatal and run->fatal_msg set. */
wf_err wf_rebuild_from_jsm(wf_run *run, const char *command, wf_rebuild_report *rep);

/* The last rebuild recorded in t's meta, as an object
 *   {"kind": "new"|"rebuilt"|"caught_up", "at": ISO time, "command",
 *    "requests", "adopted", "incomplete", "queued", "unmatched", "duplicates"}
 * (caller deletes), or NULL when none is recorded or it cannot be read.
 * Never fails. */
cJSON *wf_rebuild_meta(wf_tracker *t);

/* One line for `status` and `check` describing meta (as returned by
 * wf_rebuild_meta(); NULL: never checked) into buf. */
void wf_rebuild_describe(const cJSON *meta, char *buf, size_t len);

/* The key prefix a wf2jsm-<prefix> label carries, lower-cased into out;
 * false when label is not one. Never fails. */
bool wf_rebuild_label_prefix(const char *label, char out[WF_KEY_LABEL_PREFIX_LEN + 1]);

#endif
