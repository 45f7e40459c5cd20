/* log.c: per-module, append-only, secret-free event logs. */
#define _POSIX_C_SOURCE 200809L
#include "log.h"
#include "safe_text.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WF_LOG_MAX_MODULES 16
#define WF_LOG_LINE_MAX 8192

struct wf_log {
    char *dir;               /* NULL: the null logger */
    long run_id;
    int write_errors;
    int echo_rank;           /* 0: never */
    char *secrets[WF_LOG_MAX_SECRETS];
    struct { char name[40]; int fd; } files[WF_LOG_MAX_MODULES];
    int nfiles;
};

static int level_rank(const char *level)
{
    if (!level) return 0;
    if (strcmp(level, "ERROR") == 0) return 3;
    if (strcmp(level, "WARN") == 0) return 2;
    return 1;
}

wf_log *wf_log_open(const char *dir, char *errbuf, size_t errlen)
{
    wf_log *log = calloc(1, sizeof *log);
    if (!log) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(errbuf, errlen, "cannot create log directory %s: %s (set SYNC_LOG_DIR to a writable directory)",
                 dir, strerror(errno));
        free(log);
        return NULL;
    }
    log->dir = strdup(dir);
    if (!log->dir) {
        snprintf(errbuf, errlen, "out of memory");
        free(log);
        return NULL;
    }
    return log;
}

wf_log *wf_log_open_null(void)
{
    return calloc(1, sizeof(wf_log));
}

void wf_log_close(wf_log *log)
{
    if (!log) return;
    for (int i = 0; i < log->nfiles; i++) close(log->files[i].fd);
    for (int i = 0; i < WF_LOG_MAX_SECRETS; i++) free(log->secrets[i]);
    free(log->dir);
    free(log);
}

void wf_log_set_run(wf_log *log, long run_id) { if (log) log->run_id = run_id; }

void wf_log_echo_stderr(wf_log *log, const char *min_level)
{
    if (log) log->echo_rank = level_rank(min_level);
}

void wf_log_add_secret(wf_log *log, const char *secret)
{
    if (!log || !secret || !*secret) return;
    for (int i = 0; i < WF_LOG_MAX_SECRETS; i++) {
        if (!log->secrets[i]) {
            log->secrets[i] = strdup(secret);
            return;
        }
    }
}

int wf_log_errors(const wf_log *log) { return log ? log->write_errors : 0; }

void wf_log_redact(const wf_log *log, char *buf)
{
    static const char mask[] = "[redacted]";
    if (!log) return;
    for (int i = 0; i < WF_LOG_MAX_SECRETS; i++) {
        const char *s = log->secrets[i];
        if (!s) continue;
        size_t slen = strlen(s);
        char *hit, *from = buf;
        /* Search on after each mask: a secret that the mask contains
         * ("red") would otherwise be found again for ever. */
        while ((hit = strstr(from, s)) != NULL) {
            size_t tail = strlen(hit + slen);
            size_t mlen = sizeof mask - 1;
            /* The mask may be longer than the secret; shrink to fit rather
             * than overflow, the point is that the secret is gone. */
            if (mlen > slen) mlen = slen;
            memcpy(hit, mask, mlen);
            memmove(hit + mlen, hit + slen, tail + 1);
            from = hit + mlen;
        }
    }
}

static int module_fd(wf_log *log, const char *module)
{
    for (int i = 0; i < log->nfiles; i++)
        if (strcmp(log->files[i].name, module) == 0) return log->files[i].fd;
    if (log->nfiles == WF_LOG_MAX_MODULES) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.log", log->dir, module);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    snprintf(log->files[log->nfiles].name, sizeof log->files[0].name, "%s", module);
    log->files[log->nfiles++].fd = fd;
    return fd;
}

/* Appends v as a log value: quoted when it holds a space, a quote, '=' or
 * anything wf_safe_text() escapes, so that a submitted value can neither end
 * the line, start a forged one, nor reach a terminal tailing the log as a
 * control sequence. */
static size_t append_value(char *line, size_t pos, size_t cap, const char *v)
{
    int needs_quotes = (*v == '\0') || strpbrk(v, " \"=\\") != NULL || wf_safe_text_needed(v, 0);
    if (pos + 3 >= cap) return pos;
    if (needs_quotes) line[pos++] = '"';
    pos += wf_safe_text(v, line + pos, cap - pos - (needs_quotes ? 1 : 0), WF_SAFE_QUOTES);
    if (needs_quotes) line[pos++] = '"';
    return pos;
}

void wf_log_kv(wf_log *log, const char *module, const char *level, ...)
{
    if (!log) return;
    char line[WF_LOG_LINE_MAX];
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    size_t cap = sizeof line - 2;
    size_t pos;
    if (log->run_id > 0)
        pos = (size_t)snprintf(line, cap, "%s %s run=%ld", stamp, level, log->run_id);
    else
        pos = (size_t)snprintf(line, cap, "%s %s run=-", stamp, level);

    va_list ap;
    va_start(ap, level);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (!key) break;
        const char *value = va_arg(ap, const char *);
        if (pos + 4 >= cap) continue;
        pos += (size_t)snprintf(line + pos, cap - pos, " %s=", key);
        if (pos >= cap) pos = cap - 1;
        /* Redact before escaping too: a secret holding a quote or a
         * backslash would no longer match once escaped. */
        char vbuf[WF_LOG_LINE_MAX];
        snprintf(vbuf, sizeof vbuf, "%s", value ? value : "-");
        wf_log_redact(log, vbuf);
        pos = append_value(line, pos, cap, vbuf);
    }
    va_end(ap);
    line[pos] = '\0';
    wf_log_redact(log, line);
    pos = strlen(line);
    line[pos++] = '\n';
    line[pos] = '\0';

    if (log->echo_rank && level_rank(level) >= log->echo_rank)
        fputs(line, stderr);
    if (!log->dir) return;
    int fd = module_fd(log, module);
    if (fd < 0 || write(fd, line, pos) != (ssize_t)pos) log->write_errors++;
}
