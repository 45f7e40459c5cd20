/* job.c: shared set-up and error reporting for the subcommands. */
#define _DEFAULT_SOURCE
#include "job.h"
#include "../modules/safe_text.h"
#include "../modules/unique_key.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

wf_err job_setup(wf_job *job, const char *name, const char *env_file, unsigned needs)
{
    memset(job, 0, sizeof *job);
    job->name = name;
    wf_err rc = wf_config_load(&job->cfg, env_file, (needs & JOB_NEEDS_JIRA) != 0, job->err, sizeof job->err);
    if (rc != WF_OK) return rc;
    if (needs & JOB_NEEDS_LOG) {
        job->log = wf_log_open(job->cfg.log_dir, job->err, sizeof job->err);
        if (!job->log) return WF_ERR_FILE;
    } else {
        job->log = wf_log_open_null();
        if (!job->log) return WF_ERR_NOMEM;
    }
    wf_log_add_secret(job->log, job->cfg.jira_api_token);
    wf_log_add_secret(job->log, job->cfg.jira_bearer_token);
    /* The tracker's URL may carry a password: it is redacted from every
     * message from here on. */
    char *tracker_password = wf_tracker_target_password(job->cfg.tracker_db);
    wf_log_add_secret(job->log, tracker_password);
    free(tracker_password);
    bool shared_tracker = wf_tracker_target_is_pg(job->cfg.tracker_db);
    if ((needs & JOB_NEEDS_LOCK) && !shared_tracker) {
        /* The lock file sits beside the tracker, whose directory may not
         * exist yet on the first run. */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", job->cfg.tracker_db);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            mkdir(dir, 0700);
        }
        char path[4096];
        snprintf(path, sizeof path, "%s.lock", job->cfg.tracker_db);
        rc = wf_lock_acquire(path, &job->lock, job->err, sizeof job->err);
        if (rc == WF_ERR_LOCKED) {
            wf_log_kv(job->log, "lock", "INFO", "event", "locked", "command", name, "detail", job->err, NULL);
            return rc;
        }
        if (rc != WF_OK) return rc;
    }
    /* The database connection is started first and finished last (by the
     * job's first query with JOB_SOURCE_LATE): the tracker opens while the
     * server forks and authenticates the session, which is most of what a
     * tick with nothing new costs. */
    if (needs & JOB_NEEDS_SOURCE) {
        char *password = NULL;
        rc = wf_source_connect_start(&job->cfg, &job->source, &password, job->err, sizeof job->err);
        wf_log_add_secret(job->log, password);
        free(password);
        if (rc != WF_OK) {
            wf_log_kv(job->log, "fetch_submissions", "ERROR", "event", "connect_failed", "error", job->err, NULL);
            return rc;
        }
    }
    /* The startup message goes out as soon as the server has answered the
     * SSL request (a fifth of a millisecond on loopback, too short for any
     * of the job's own work): from then on the server authenticates and
     * starts the session alone, the longest step of the handshake, and
     * that is when the job maps SQLite (see sqlite_loader.c), opens the
     * tracker and does its first writes. A PostgreSQL tracker is a
     * connection of its own, a few round trips long, which the webform
     * server's session setup covers the same way. */
    wf_source_connect_send_startup(job->source);
    if (needs & (JOB_NEEDS_TRACKER | JOB_NEEDS_LOCK)) {
        rc = wf_tracker_open(job->cfg.tracker_db, &job->tracker, job->err, sizeof job->err);
        if (rc != WF_OK) return rc;
        /* What the keys this job records are made from: the tracker marks
         * itself when two configurations' keys meet in it. */
        char *scheme = wf_key_scheme((const char *const *)job->cfg.key_columns, job->cfg.n_key_columns,
                                     job->cfg.id_column, job->cfg.time_column);
        rc = scheme ? wf_tracker_set_key_scheme(job->tracker, scheme) : WF_ERR_NOMEM;
        free(scheme);
        if (rc != WF_OK) return rc;
    }
    if ((needs & JOB_NEEDS_LOCK) && shared_tracker) {
        /* Several hosts share this tracker: the lock is an advisory lock in
         * its database, held by the tracker's own session. */
        rc = wf_lock_acquire_tracker(job->tracker, &job->lock, job->err, sizeof job->err);
        if (rc == WF_ERR_LOCKED) {
            wf_log_kv(job->log, "lock", "INFO", "event", "locked", "command", name, "detail", job->err, NULL);
            return rc;
        }
        if (rc != WF_OK) return rc;
    }
    if ((needs & JOB_NEEDS_SOURCE) && !(needs & JOB_SOURCE_LATE)) {
        rc = wf_source_connect_finish(job->source, job->err, sizeof job->err);
        if (rc != WF_OK) {
            wf_source_close(job->source);
            job->source = NULL;
            wf_log_redact(job->log, job->err);
            wf_log_kv(job->log, "fetch_submissions", "ERROR", "event", "connect_failed", "error", job->err, NULL);
            return rc;
        }
    }
    return WF_OK;
}

void job_teardown(wf_job *job)
{
    wf_source_close(job->source);
    /* An advisory lock lives in the tracker's session: it goes first. */
    wf_lock_release(job->lock);
    wf_tracker_close(job->tracker);
    wf_log_close(job->log);
    wf_config_free(&job->cfg);
    memset(job, 0, sizeof *job);
}

int job_fail(wf_job *job, wf_err rc, const char *msg)
{
    char text[1200];
    snprintf(text, sizeof text, "%s", msg ? msg : job->err);
    wf_log_redact(job->log, text);
    /* The message may quote Jira or a submission: shown, never obeyed. */
    char shown[sizeof text * 4];
    wf_safe_text(text, shown, sizeof shown, 0);
    if (rc == WF_ERR_LOCKED) {
        fprintf(stderr, "wf2jsm %s: %s\n", job->name, shown);
    } else {
        fprintf(stderr, "wf2jsm %s: error: %s\n", job->name, shown[0] ? shown : wf_strerror(rc));
        if (job->log) wf_log_kv(job->log, job->name, "ERROR", "event", "failed", "class", wf_strerror(rc), "error", text, NULL);
    }
    return wf_exit_code(rc);
}

int job_parse_env_only(const char *command, int argc, char **argv, const char *usage, const char **env_file)
{
    static const struct option options[] = {
        {"env", required_argument, NULL, 'e'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int opt;
    *env_file = NULL;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'e': *env_file = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wf2jsm %s: unexpected argument '%s'\n%s", command, argv[optind], usage);
        return 2;
    }
    return -1;
}

void job_out(const char *fmt, ...)
{
    char text[4096], shown[4 * sizeof text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* The format's own leading and trailing newlines stay; anything in
     * between, what values brought included, is escaped. */
    size_t lead = strspn(text, "\n"), len = strlen(text), trail = 0;
    while (trail < len - lead && text[len - 1 - trail] == '\n') trail++;
    text[len - trail] = '\0';
    wf_safe_text(text + lead, shown, sizeof shown, 0);
    printf("%.*s%s%.*s", (int)lead, "\n\n\n\n\n\n\n\n", shown, (int)trail, "\n\n\n\n\n\n\n\n");
}

void job_one_line(char *s)
{
    char *w = s;
    bool space = false;
    for (const char *r = s; *r; r++) {
        if (isspace((unsigned char)*r)) { space = true; continue; }
        if (space && w != s) *w++ = ' ';
        space = false;
        *w++ = *r;
    }
    *w = '\0';
}

int job_parse_time(const char *text, int64_t *out_us)
{
    int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
    if (!text || sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) return -1;
    const char *p = text + 10;
    long offset = 0;
    if (*p) {
        int m = 0;
        if ((*p != 'T' && *p != ' ') || sscanf(p + 1, "%2d:%2d%n", &h, &mi, &m) != 2) return -1;
        p += 1 + m;
        if (*p == ':') {
            if (!isdigit((unsigned char)p[1]) || sscanf(p + 1, "%2d%n", &s, &m) != 1) return -1;
            p += 1 + m;
            if (*p == '.') for (p++; isdigit((unsigned char)*p); p++) {}
        }
        if (*p == 'Z') p++;
        else if (*p == '+' || *p == '-') {
            int oh = 0, om = 0;
            int sign = *p == '-' ? -1 : 1;
            if (sscanf(p + 1, "%2d", &oh) != 1) return -1;
            p += 3;
            if (*p == ':') p++;
            if (isdigit((unsigned char)*p)) { if (sscanf(p, "%2d", &om) != 1) return -1; p += 2; }
            offset = sign * (oh * 3600L + om * 60L);
        }
        if (*p) return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    time_t t = timegm(&tm);
    *out_us = ((int64_t)t - offset) * 1000000;
    return 0;
}
