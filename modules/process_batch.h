/* process_batch.h: one batch of the pipeline, fetch -> key -> filter, whose
 * submissions go on to the delivery protocol (delivery.h): map -> deliver
 * -> record.
 *
 * The states a submission goes through, the step that leaves each and what
 * recovery does there are in docs/state-machine.md; the short version:
 * intent is committed before every remote effect, every effect's result is
 * committed right after it, and a submission whose create may have reached
 * JSM is looked up by its label before it is ever created again. */
#ifndef WF_PROCESS_BATCH_H
#define WF_PROCESS_BATCH_H

#include <stdbool.h>
#include <stdint.h>
#include "run.h"

/* Processes one batch: rows from from_us (INT64_MIN: the beginning) to
 * to_us (WF_NO_UPPER_BOUND: none), at most SYNC_BATCH_SIZE submissions that
 * need work, plus older rows waiting for a retry. *more is set when the batch
 * was full, so another may find work (then up to a batch of deliveries is
 * left in flight: call wf_process_batch_finish() at the end). Returns WF_OK, or the whole-run error
 * (database, Jira auth/unreachable, tracker, config) with run->fatal_msg set.
 * Row-level failures are recorded in the tracker and counted in run->stats. */
wf_err wf_process_batch(wf_run *run, int64_t from_us, int64_t to_us, bool *more);

/* Finishes the deliveries that wf_process_batch() left in flight (it
 * leaves up to a batch in flight when *more was set, so that the next batch
 * overlaps them). Every run calls it after its last batch, also after an
 * error. Returns run->fatal. */
wf_err wf_process_batch_finish(wf_run *run);

/* The window a tick reads: the tracker's cursor minus SYNC_LOOKBACK (and
 * never later than now minus SYNC_LOOKBACK), or INT64_MIN on an empty
 * tracker. */
wf_err wf_run_window_start(wf_run *run, int64_t *from_us);

#endif
