/* run.h: the run context, everything one run of sync or replay works with,
 * passed explicitly from the batch driver down to the delivery protocol.
 *
 * It owns the lazily opened JSM client (a tick with nothing to deliver makes
 * no HTTP call and never initialises libcurl), the SHA-256 hasher, the field
 * list and the mapping (loaded on the first submission that needs them),
 * the run's figures and the error that stopped the run. */
#ifndef WF_RUN_H
#define WF_RUN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "errors.h"
#include "fetch_submissions.h"
#include "jira_fields.h"
#include "jsm_client.h"
#include "log.h"
#include "run_stats.h"
#include "tracker.h"
#include "unique_key.h"

struct wf_pipeline;

typedef struct wf_run {
    const wf_config *cfg;
    wf_log *log;
    wf_tracker *tracker;
    wf_source *source;
    wf_jsm *jsm;                 /* opened on first need: a no-op tick makes no HTTP call */
    const volatile sig_atomic_t *stop;
    long run_id;                 /* 0 until the run is recorded (see wf_run_begin()) */
    const char *command;         /* for wf_run_begin(): the runs row's command; NULL: recorded (or tried) already */
    bool dry_run;                /* print what would be created; write nothing */
    bool update_changed;         /* replay: update delivered requests whose content changed */
    wf_run_stats stats;
    wf_key_hasher *hasher;       /* made on the first row that needs a key computed */
    /* Rows the tracker knows are found by their id and time texts, without
     * computing their keys (see process_batch.c); -1: not decided yet. */
    int known_by_source;

    /* Called after each submission that needed work, with the figures so
     * far (sync --catch-up's progress bar); NULL: none. */
    void (*on_progress)(const wf_run_stats *stats, void *ctx);
    void *progress_ctx;

    /* loaded on the first submission that needs them */
    bool mapping_ready;
    wf_field_list fields;
    wf_mapping mapping;

    /* the deliveries in flight across batches (delivery.h) */
    struct wf_pipeline *pipeline;

    /* the error that stopped the run, if any */
    wf_err fatal;
    char fatal_msg[1024];
} wf_run;

/* Prepares run. Nothing is allocated that wf_run_cleanup() does not free. */
void wf_run_init(wf_run *run, const wf_config *cfg, wf_log *log, wf_tracker *tracker,
                 wf_source *source, const volatile sig_atomic_t *stop, long run_id);
void wf_run_cleanup(wf_run *run);

/* Records the run in the tracker's runs table, once, when the caller left
 * that to the run (command set, run_id 0, not a dry run), and gives the log
 * its id: sync does, so that this write happens while the server runs the
 * window query rather than before the query is sent. Called before the
 * first row is looked at. Returns WF_OK when there is nothing to do, or the
 * tracker's error, which also stops the run (wf_run_fail()). */
wf_err wf_run_begin(wf_run *run);

/* Opens the JSM client if it is not open yet. Returns WF_ERR_NOMEM or
 * WF_ERR_CONFIG with run->fatal_msg set. */
wf_err wf_run_jsm(wf_run *run, wf_jsm **out);

/* Loads the request type's fields (from the tracker's cache, else from JSM,
 * then cached) and the mapping file. Returns a whole-run error with
 * run->fatal_msg set. */
wf_err wf_run_load_mapping(wf_run *run);

/* Stops the run: records rc and msg (redacted) as the run's fatal error and
 * logs it. Returns rc, so callers can `return wf_run_fail(...)`. */
wf_err wf_run_fail(wf_run *run, wf_err rc, const char *msg);

/* Whether rc stops the whole run rather than one submission: auth, Jira
 * unreachable, tracker, database, configuration, memory (unlike
 * wf_err_stops_run(), a missing request is one submission's problem). */
bool wf_run_is_fatal(wf_err rc);

#endif
