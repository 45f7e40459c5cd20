/* delivery.h: the per-submission delivery protocol, fix forward, never
 * delete. For each submission it decides what to send next, and records
 * intent before and result after every remote step in the tracker
 * (docs/state-machine.md lists the states and what recovery does in each).
 *
 * One wf_delivery is one submission's state machine; its steps are calls
 * started on the JSM client, so several submissions are in flight at once
 * in one thread while each keeps its own order of steps. */
#ifndef WF_DELIVERY_H
#define WF_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "run.h"

typedef struct wf_delivery wf_delivery;

/* Prepares the delivery of sub (key; its tracker row, or NULL when never
 * seen): maps it and renders its attachments, so that sub need not outlive
 * the call. In a dry run it prints what would be sent and sets *out to
 * NULL. Returns WF_OK, or a whole-run error with run->fatal set (*out
 * NULL). Free with wf_delivery_free(). */
wf_err wf_delivery_new(wf_run *run, const wf_submission *sub, const char *key, const wf_tracker_row *row,
                       wf_delivery **out);
void wf_delivery_free(wf_delivery *d);

/* Ask JSM before creating: one JQL search (labels in (...), or the
 * SYNC_KEY_FIELD form joined with OR) for every delivery of ds that would
 * create a request; those whose key a request already carries adopt it.
 * Requests created in the last minutes may not be searchable yet, but those
 * are in the tracker already, which is why rows it holds with a request are
 * not asked about. *calls receives the number of HTTP calls it made (0
 * when no delivery would create). A failed search leaves the would-be
 * creates for the next tick (they are counted failed) and returns
 * WF_ERR_JIRA_TEMPORARY (run->fatal not set: the other deliveries go on).
 * Returns a whole-run error with run->fatal set, else WF_OK. */
wf_err wf_deliveries_lookup(wf_run *run, wf_delivery **ds, size_t n, int *calls);

/* ---- the pipeline: the run's deliveries in flight ------------------------

 * Deliveries are started in the order they are added (the source order, so
 * that a submission the tracker does not know yet is never behind one it
 * has started), several at once: as many as the JSM client's adaptive
 * window allows. A batch driver adds a batch and drives until fewer than a
 * batch remain, so that it reads and looks up the next batch while the
 * last ones are still in flight. */

/* Takes ds (ownership: freed once finished). Returns WF_ERR_NOMEM with
 * run->fatal set (ds freed). */
wf_err wf_pipeline_add(wf_run *run, wf_delivery **ds, size_t n);

/* Whether a delivery of key is in the pipeline and not finished. */
bool wf_pipeline_holds(const wf_run *run, const char *key);

/* Deliveries in the pipeline (started or not, not yet freed). */
size_t wf_pipeline_size(const wf_run *run);

/* The newest source time in the pipeline, INT64_MIN when empty. */
int64_t wf_pipeline_newest_us(const wf_run *run);

/* Starts and moves deliveries along until fewer than until_below are left
 * (0: all finished). Row-level failures are recorded and counted; on a
 * whole-run error or a stop signal no new delivery starts, the ones in
 * flight finish their step and record it, and the unstarted ones are left
 * (they are not in the tracker; the next run reads them again). Returns
 * run->fatal. */
wf_err wf_pipeline_drive(wf_run *run, size_t until_below);

/* Frees the pipeline and what is left in it. NULL-safe. */
void wf_pipeline_free(wf_run *run);

#endif
