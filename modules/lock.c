/* lock.c: flock-based single-run guard. */
#define _DEFAULT_SOURCE
#include "lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

struct wf_lock { int fd; };

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

void wf_lock_release(wf_lock *lock)
{
    if (!lock) return;
    flock(lock->fd, LOCK_UN);
    close(lock->fd);
    free(lock);
}
