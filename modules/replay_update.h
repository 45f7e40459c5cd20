/* replay_update.h: `replay --update-changed`, fixing delivered requests
 * forward. A delivered submission whose mapped content no longer matches the
 * checksum stored at delivery has its request edited in place (same key,
 * PUT /rest/api/3/issue/{key}); nothing is created or deleted. */
#ifndef WF_REPLAY_UPDATE_H
#define WF_REPLAY_UPDATE_H

#include "run.h"

/* Updates row's request when sub's mapped content changed. A failed edit
 * counts in run->stats.failed, is logged and leaves the row as it was (the
 * next replay tries again): it returns WF_OK. Returns a whole-run error
 * (auth, unreachable, tracker, memory) with run->fatal set. */
wf_err wf_replay_update_if_changed(wf_run *run, const wf_submission *sub, const char *key,
                                   const wf_tracker_row *row);

#endif
