/* lock.h: one run at a time.
 *
 * With a SQLite tracker (one host), an advisory flock(2) on a lock file
 * beside it. With a PostgreSQL tracker (several hosts sharing it), a
 * session-level PostgreSQL advisory lock taken on the tracker's own
 * connection, so cron on every host runs one tick at a time between them.
 * Either lock dies with the process (the kernel drops the flock, the server
 * ends the session), so a SIGKILLed run never leaves a stale lock behind
 * for the next cron tick to trip over. */
#ifndef WF_LOCK_H
#define WF_LOCK_H

#include <stddef.h>
#include "errors.h"
#include "tracker.h"

typedef struct wf_lock wf_lock;

/* Takes the lock on path (created 0600) without waiting. Returns WF_OK and
 * sets *out, WF_ERR_LOCKED when another process holds it, or WF_ERR_FILE when
 * the file cannot be opened (errbuf names it). Release with wf_lock_release(). */
wf_err wf_lock_acquire(const char *path, wf_lock **out, char *errbuf, size_t errlen);

/* Takes the PostgreSQL tracker's advisory lock without waiting. Returns
 * WF_OK and sets *out, WF_ERR_LOCKED when another session (on this host or
 * another) holds it (errbuf names the tracker and, when the server shows
 * it, the holder), WF_ERR_TRACKER when the query fails, WF_ERR_USAGE for a
 * SQLite tracker, WF_ERR_NOMEM. The lock is held until t is closed: call
 * wf_lock_release() before wf_tracker_close(t). */
wf_err wf_lock_acquire_tracker(wf_tracker *t, wf_lock **out, char *errbuf, size_t errlen);

/* Releases and frees the lock. NULL is allowed. */
void wf_lock_release(wf_lock *lock);

#endif
