/* lock.c: single-run guard: flock on a file, or the tracker's advisory lock. */
#define _DEFAULT_SOURCE
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct wf_lock {
    int fd;             /* -1: the lock is the tracker session's advisory lock */
};

wf_err wf_lock_acquire(const char *path, wf_lock **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot open lock file %s: %s (check SYNC_TRACKER_DB's directory)", path, strerror(errno));
        return WF_ERR_FILE;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK) {
            snprintf(errbuf, errlen, "another wf2jsm run holds %s; this tick exits", path);
            return WF_ERR_LOCKED;
        }
        snprintf(errbuf, errlen, "cannot lock %s: %s", path, strerror(e));
        return WF_ERR_FILE;
    }
    wf_lock *lock = malloc(sizeof *lock);
    if (!lock) { close(fd); return WF_ERR_NOMEM; }
    lock->fd = fd;
    *out = lock;
    return WF_OK;
}

wf_err wf_lock_acquire_tracker(wf_tracker *t, wf_lock **out, char *errbuf, size_t errlen)
{
    char holder[256];
    bool got = false;
    *out = NULL;
    wf_err err = wf_tracker_try_lock(t, &got, holder, sizeof holder);
    if (err == WF_ERR_USAGE) {
        snprintf(errbuf, errlen, "tracker %s has no advisory lock (a SQLite tracker uses a lock file)",
                 wf_tracker_path(t));
        return err;
    }
    if (err != WF_OK) {
        snprintf(errbuf, errlen, "%s", wf_tracker_errmsg(t));
        return err;
    }
    if (!got) {
        snprintf(errbuf, errlen, "another wf2jsm run holds the advisory lock of the tracker %s%s%s%s; this tick exits",
                 wf_tracker_path(t), holder[0] ? " (" : "", holder, holder[0] ? ")" : "");
        return WF_ERR_LOCKED;
    }
    wf_lock *lock = malloc(sizeof *lock);
    if (!lock) return WF_ERR_NOMEM;   /* the session ending releases the lock */
    lock->fd = -1;
    *out = lock;
    return WF_OK;
}

void wf_lock_release(wf_lock *lock)
{
    if (!lock) return;
    /* The advisory lock needs no statement: closing the tracker ends the
     * session that holds it, which releases it. */
    if (lock->fd >= 0) {
        flock(lock->fd, LOCK_UN);
        close(lock->fd);
    }
    free(lock);
}
