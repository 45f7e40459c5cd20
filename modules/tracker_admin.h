/* tracker_admin.h: the operator commands' changes to the tracker (retry,
 * reconcile, rollback, replay) and the safety net every destructive one
 * stretches first: an online backup of the tracker and an append-only audit
 * trail.
 *
 * The sync's own writes stay in tracker.c, one per step of the delivery
 * protocol. The writes here move a submission between states by hand, and
 * each keeps the protocol's promise: a row whose request may exist in JSM
 * keeps may_exist (so the next tick looks it up by label before creating),
 * and a row whose request is known keeps its jsm_key (so the next tick
 * resumes at the attachments). Every requeued row is in a state that
 * wf_tracker_retry_times() lists, so it is delivered even when it is older
 * than the sync window.
 *
 * Every function returns WF_ERR_TRACKER with errbuf naming the tracker
 * when its database fails, and WF_ERR_NOMEM when an allocation fails. */
#ifndef WF_TRACKER_ADMIN_H
#define WF_TRACKER_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "errors.h"
#include "tracker.h"

/* Which rows wf_tracker_admin_select() returns, oldest source time first. */
typedef enum {
    WF_ADMIN_BY_STATE,            /* state = text */
    WF_ADMIN_BY_CREATED_RUN,      /* created_run = run_id */
    WF_ADMIN_DELIVERED_BETWEEN,   /* delivered, since <= delivered_at (<= until when set) */
    WF_ADMIN_FAILED_WITH_TICKET,  /* failed or parked, with a jsm_key (a half-made request) */
    WF_ADMIN_WITH_TICKET,         /* every row with a jsm_key */
    WF_ADMIN_KEY_PREFIX,          /* key starts with text (lower-case hex) */
    WF_ADMIN_SOURCE_ID,           /* source_id = text */
} wf_admin_select;

typedef struct wf_admin_query {
    wf_admin_select by;
    const char *text;             /* state, key prefix or source id */
    long run_id;
    int64_t since_us, until_us;   /* delivered_at bounds; until_us < 0: no upper bound */
} wf_admin_query;

/* Rows matching q into *rows (*n of them, possibly 0). Returns WF_ERR_USAGE
 * when a key prefix is not lower-case hex. Free with
 * wf_tracker_admin_free_rows(), also after an error (then *rows is NULL). */
wf_err wf_tracker_admin_select(wf_tracker *t, const wf_admin_query *q, wf_tracker_row **rows, size_t *n,
                               char *errbuf, size_t errlen);
void wf_tracker_admin_free_rows(wf_tracker_row *rows, size_t n);

/* Finds the one row spec names: a full key, a unique key prefix of at least
 * 8 hex characters, or "id:<source id>". Fills *row (free with
 * wf_tracker_row_free()). Returns WF_ERR_USAGE with errbuf saying why when
 * spec matches no row, several rows, or is neither form. */
wf_err wf_tracker_admin_resolve(wf_tracker *t, const char *spec, wf_tracker_row *row,
                                char *errbuf, size_t errlen);

/* Puts a row that is not delivered back in the queue: attempts 0, errors
 * cleared, state attaching when it has a jsm_key, else pending; may_exist
 * and jsm_key stay as they are. *changed is false when the row is delivered
 * (or gone) and was left alone. */
wf_err wf_tracker_admin_requeue(wf_tracker *t, const char *key, bool *changed, char *errbuf, size_t errlen);

/* Forgets the row's request (deleted in JSM, or gone): state pending,
 * attempts 0, no jsm_key, checksum or delivery time, may_exist as given
 * (true when the request might still exist, so the next tick looks before
 * creating), and its open manual fixes marked resolved since their ticket is
 * gone. */
wf_err wf_tracker_admin_forget_request(wf_tracker *t, const char *key, bool may_exist,
                                       char *errbuf, size_t errlen);

/* Records that jsm_key (found in JSM by its label) is the row's request:
 * state attaching, so the next tick lists its attachments and uploads only
 * the missing ones. run_id is the run that adopted it. */
wf_err wf_tracker_admin_adopt(wf_tracker *t, const char *key, const char *jsm_key, const char *jsm_issue_id,
                              long run_id, char *errbuf, size_t errlen);

/* Inserts a row the tracker never saw: state attaching with jsm_key (an
 * adopted request, run_id adopting it), or state pending when jsm_key is
 * NULL. An existing key is left untouched and *inserted is false. */
wf_err wf_tracker_admin_insert(wf_tracker *t, const char *key, const char *source_id, const char *source_time,
                               int64_t source_time_us, const char *jsm_key, const char *jsm_issue_id,
                               long run_id, bool *inserted, char *errbuf, size_t errlen);

/* A delivered row whose request lacks attachments: state attaching, so the
 * next tick lists them and uploads only the missing ones. */
wf_err wf_tracker_admin_reattach(wf_tracker *t, const char *key, char *errbuf, size_t errlen);

/* Stores the checksum of the content the request now carries (after an
 * update of a delivered request). */
wf_err wf_tracker_admin_set_checksum(wf_tracker *t, const char *key, const char *checksum,
                                     char *errbuf, size_t errlen);

/* *open tells whether key has an unresolved manual fix for field_id with
 * this value (value may be NULL). */
wf_err wf_tracker_admin_fix_is_open(wf_tracker *t, const char *key, const char *field_id, const char *value,
                                    bool *open, char *errbuf, size_t errlen);

/* *exists tells whether run run_id is in the runs table. */
wf_err wf_tracker_admin_run_exists(wf_tracker *t, long run_id, bool *exists, char *errbuf, size_t errlen);

/* Backs the tracker up into a file 0600 in a 0700 directory, and writes its
 * path into path:
 *  - SQLite: SQLite's online backup API (a consistent copy even while it is
 *    in use) into <tracker dir>/backups/tracker-<UTC time>.db, as one
 *    self-contained file (no -wal); restore by copying it back.
 *  - PostgreSQL: one REPEATABLE READ snapshot of every table of schema
 *    wf2jsm into tracker/backups/tracker-<UTC time>.sql under the working
 *    directory, a SQL file that checks the schema version, empties the
 *    tables and reloads them in one transaction; restore with
 *    psql "$SYNC_TRACKER_DB" -v ON_ERROR_STOP=1 -f FILE.
 * Returns WF_ERR_FILE when the directory or file cannot be created or
 * written, WF_ERR_TRACKER when the copy fails (the partial file is removed
 * either way); errbuf says which and why. */
wf_err wf_tracker_admin_backup(wf_tracker *t, char *path, size_t pathlen, char *errbuf, size_t errlen);

/* The audit trail: <log dir>/audit.jsonl, one JSON object per line,
 *   {"time","command","user","jsm_key","submission_key","action","result"}
 * appended with one write(2) per line on an O_APPEND descriptor (0600,
 * directory 0700), so concurrent writers never interleave. */
typedef struct wf_audit wf_audit;

/* Opens the trail for command. user is $USER, else the effective user's
 * name. Returns WF_ERR_FILE (errbuf names the file) or WF_ERR_NOMEM. Close
 * with wf_audit_close(). */
wf_err wf_audit_open(const char *log_dir, const char *command, wf_audit **out, char *errbuf, size_t errlen);

/* Appends one action. jsm_key and submission_key may be NULL (JSON null).
 * Returns WF_ERR_FILE (errbuf says why) when the line could not be written
 * whole, WF_ERR_NOMEM. */
wf_err wf_audit_write(wf_audit *audit, const char *jsm_key, const char *submission_key, const char *action,
                      const char *result, char *errbuf, size_t errlen);

/* Closes the trail. NULL is allowed. */
void wf_audit_close(wf_audit *audit);

#endif
