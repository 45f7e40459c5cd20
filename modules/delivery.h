/* delivery.h: the per-submission delivery protocol, fix forward, never
 * delete. It decides what to send next for one submission and records
 * intent before and result after every remote step in the tracker
 * (docs/state-machine.md lists the states and what recovery does in each). */
#ifndef WF_DELIVERY_H
#define WF_DELIVERY_H

#include "run.h"

/* Delivers sub (key, tracker row row or NULL when never seen): creates the
 * request or adopts the one an earlier attempt made, then its attachments.
 * Row-level failures are recorded in the tracker and counted in run->stats
 * and WF_OK (or the row's error class) is returned; a whole-run error
 * (auth, unreachable, tracker, memory) sets run->fatal. */
wf_err wf_deliver(wf_run *run, const wf_submission *sub, const char *key, const wf_tracker_row *row);

#endif
