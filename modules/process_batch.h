/* process_batch.h: one batch of the pipeline, fetch -> key -> filter ->
 * map -> deliver -> record, with the crash-safe delivery protocol.
 *
 * The states a submission goes through, the step that leaves each and what
 * recovery does there are in docs/state-machine.md; the short version:
 * intent is committed before every remote effect, every effect's result is
 * committed right after it, and a submission whose create may have reached
 * JSM is looked up by its label before it is ever created again. */
#ifndef WF_PROCESS_BATCH_H
#define WF_PROCESS_BATCH_H

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

/* The run context: everything a run works with, passed explicitly. */
typedef struct wf_run {
    const wf_config *cfg;
    wf_log *log;
    wf_tracker *tracker;
    wf_source *source;
    wf_jsm *jsm;                 /* opened on first need: a no-op tick makes no HTTP call */
    const volatile sig_atomic_t *stop;
    long run_id;
    bool dry_run;                /* print what would be created; write nothing */
    bool update_changed;         /* replay: update delivered requests whose content changed */
    wf_run_stats stats;
    wf_key_hasher *hasher;       /* made on the first row: SHA-256 fetched once per run */

    /* Called after each submission that needed work, with the figures so
     * far (sync --catch-up's progress bar); NULL: none. */
    void (*on_progress)(const wf_run_stats *stats, void *ctx);
    void *progress_ctx;

    /* loaded on the first submission that needs them */
    bool mapping_ready;
    wf_field_list fields;
    wf_mapping mapping;

    /* tracker_rebuild: JSM was asked this run what the tracker may lack
     * (so no second check); the check found a request the tracker lacks, so
     * the batch stopped before creating and the run must catch up first. */
    bool jsm_checked;
    bool rebuild_needed;

    /* the error that stopped the run, if any */
    wf_err fatal;
    char fatal_msg[1024];
} wf_run;

/* Prepares run. Nothing is allocated that wf_run_cleanup() does not free. */
void wf_run_init(wf_run *run, const wf_config *cfg, wf_log *log, wf_tracker *tracker,
                 wf_source *source, const volatile sig_atomic_t *stop, long run_id);
void wf_run_cleanup(wf_run *run);

/* Opens the JSM client if it is not open yet. Returns WF_ERR_NOMEM or
 * WF_ERR_CONFIG. */
wf_err wf_run_jsm(wf_run *run, wf_jsm **out);

/* Loads the request type's fields (from the tracker's cache, else from JSM,
 * then cached) and the mapping file. Returns a whole-run error with
 * run->fatal_msg set. */
wf_err wf_run_load_mapping(wf_run *run);

/* Processes one batch: rows from from_us (INT64_MIN: the beginning) to
 * to_us (WF_NO_UPPER_BOUND: none), at most SYNC_BATCH_SIZE submissions that
 * need work, plus older rows waiting for a retry. *more is set when the batch
 * was full, so another may find work. Returns WF_OK, or the whole-run error
 * (database, Jira auth/unreachable, tracker, config) with run->fatal_msg set.
 * Row-level failures are recorded in the tracker and counted in run->stats. */
wf_err wf_process_batch(wf_run *run, int64_t from_us, int64_t to_us, bool *more);

/* The window a tick reads: the tracker's cursor minus SYNC_LOOKBACK (and
 * never later than now minus SYNC_LOOKBACK), or INT64_MIN on an empty
 * tracker. */
wf_err wf_run_window_start(wf_run *run, int64_t *from_us);

#endif
