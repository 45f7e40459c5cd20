/* lock.h: one run at a time, with an advisory flock(2) on a lock file.
 *
 * The lock dies with the process, so a SIGKILLed run never leaves a stale
 * lock behind for the next cron tick to trip over. */
#ifndef WF_LOCK_H
#define WF_LOCK_H

#include <stddef.h>
#include "errors.h"

typedef struct wf_lock wf_lock;

/* Takes the lock on path (created 0600) without waiting. Returns WF_OK and
 * sets *out, WF_ERR_LOCKED when another process holds it, or WF_ERR_FILE when
 * the file cannot be opened (errbuf names it). Release with wf_lock_release(). */
wf_err wf_lock_acquire(const char *path, wf_lock **out, char *errbuf, size_t errlen);

/* Releases and frees the lock. NULL is allowed. */
void wf_lock_release(wf_lock *lock);

#endif
