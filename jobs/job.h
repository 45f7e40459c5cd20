/* job.h: what every subcommand sets up and tears down the same way.
 *
 * A subcommand asks for the parts it needs (Jira settings, the lock, the
 * log, the tracker, the source database); job_setup() opens them in a fixed
 * order and job_teardown() closes whatever was opened. Errors are reported
 * once, by job_fail(), as "wf2jsm <command>: <message>" on stderr and in the
 * log, and turned into the documented exit status. */
#ifndef WF_JOB_H
#define WF_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "../modules/config.h"
#include "../modules/errors.h"
#include "../modules/fetch_submissions.h"
#include "../modules/lock.h"
#include "../modules/log.h"
#include "../modules/safe_text.h"
#include "../modules/tracker.h"

enum {
    JOB_NEEDS_JIRA = 1 << 0,     /* Jira settings must be complete */
    JOB_NEEDS_LOCK = 1 << 1,     /* one run at a time */
    JOB_NEEDS_LOG = 1 << 2,      /* write to SYNC_LOG_DIR (else a null log) */
    JOB_NEEDS_TRACKER = 1 << 3,
    JOB_NEEDS_SOURCE = 1 << 4,   /* connect to PostgreSQL */
    /* With JOB_NEEDS_SOURCE: start the connection but leave it to the
     * job's first query to finish (the job moves it on with
     * wf_source_connect_advance between its local steps); a connection
     * error then comes from that query. */
    JOB_SOURCE_LATE = 1 << 5,
};

typedef struct wf_job {
    const char *name;
    wf_config cfg;
    wf_log *log;
    wf_lock *lock;
    wf_tracker *tracker;
    wf_source *source;
    char err[1024];
} wf_job;

/* Opens what needs asks for. Returns WF_OK, or the error with job->err set;
 * either way the caller calls job_teardown(). */
wf_err job_setup(wf_job *job, const char *name, const char *env_file, unsigned needs);

/* Closes everything job_setup() opened. */
void job_teardown(wf_job *job);

/* Reports rc with msg (or job->err when msg is NULL) and returns the exit
 * status for rc. Secrets are redacted from msg. */
int job_fail(wf_job *job, wf_err rc, const char *msg);

/* Option parsing for the commands whose only options are --env FILE and
 * --help: returns -1 to go on (with *env_file set), or the exit status to
 * return at once (0 after --help, 2 on a usage error, with usage printed). */
int job_parse_env_only(const char *command, int argc, char **argv, const char *usage, const char **env_file);

/* printf() for a line of a command's output that shows values from a
 * submission or a Jira answer: everything between the format's leading and
 * trailing newlines goes through wf_safe_text() (safe_text.h), so that no
 * value can send a terminal control sequence or start a line of its own. */
void job_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Collapses every run of whitespace in s into one space, in place, so that
 * a multi-line message (libpq's hold newlines and tabs) prints as one line. */
void job_one_line(char *s);

/* Parses an ISO 8601 time ("2026-11-22T10:00:00Z", with an offset, or a
 * bare date meaning its midnight UTC) into microseconds since the epoch.
 * Returns 0, or -1 when text is not such a time. */
int job_parse_time(const char *text, int64_t *out_us);

/* The sync loop, shared by `sync` and `replay`: batches over the tick's
 * window (use_cursor) or over [from_us, to_us]. Returns the exit status. */
int sync_run(const char *command, const char *env_file, bool catch_up, bool dry_run,
             bool use_cursor, int64_t from_us, int64_t to_us, bool update_changed);

/* The subcommands, one per file (git's builtin/ style). Each returns the
 * process exit status. */
int cmd_sync(int argc, char **argv);
int cmd_fields(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_retry(int argc, char **argv);
int cmd_reconcile(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_replay(int argc, char **argv);

#endif
