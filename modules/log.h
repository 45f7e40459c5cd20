/* log.h: per-module log files, one line per event.
 *
 * Each module writes to SYNC_LOG_DIR/<module>.log. A line is
 *   2026-11-22T10:00:00Z LEVEL run=<id> key=value key="value with spaces"
 * and is written with a single write(2) on an O_APPEND descriptor, so lines
 * never interleave, `tail -f` is safe and logrotate's copytruncate works.
 * Files are created 0600. Every registered secret is replaced by
 * "[redacted]" before a line is written, whatever the caller passed. */
#ifndef WF_LOG_H
#define WF_LOG_H

#include <stddef.h>
#include "errors.h"

typedef struct wf_log wf_log;

#define WF_LOG_MAX_SECRETS 4

/* Opens a logger writing below dir, creating dir (0700) when missing.
 * Returns NULL on allocation failure or when dir cannot be created; then
 * errbuf says which directory and why. The caller frees with wf_log_close(). */
wf_log *wf_log_open(const char *dir, char *errbuf, size_t errlen);

/* A logger that writes nothing (for --dry-run and unit tests). Never NULL
 * unless out of memory. */
wf_log *wf_log_open_null(void);

/* Closes every file and frees the logger. NULL is allowed. */
void wf_log_close(wf_log *log);

/* Sets the run id printed on every following line (0 prints "-"). */
void wf_log_set_run(wf_log *log, long run_id);

/* Registers a secret (token, password) to redact. The string is copied.
 * Empty strings and NULL are ignored; at most WF_LOG_MAX_SECRETS. */
void wf_log_add_secret(wf_log *log, const char *secret);

/* Also copy lines of this level and above to stderr ("WARN", "ERROR" or
 * NULL for never). */
void wf_log_echo_stderr(wf_log *log, const char *min_level);

/* Writes one event to <module>.log. The variadic part is pairs of
 * const char *key, const char *value, ended by NULL. A NULL value prints as
 * "-". Values with spaces, quotes or '=' are quoted with escapes. Logging
 * never fails the caller: write errors are counted, see wf_log_errors(). */
void wf_log_kv(wf_log *log, const char *module, const char *level, ...);

/* Number of lines that could not be written. */
int wf_log_errors(const wf_log *log);

/* Redacts the registered secrets in buf in place. Exposed so that error
 * text shown to the operator goes through the same filter. */
void wf_log_redact(const wf_log *log, char *buf);

#endif
