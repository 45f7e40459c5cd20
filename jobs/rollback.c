/* rollback.c: `wf2jsm rollback`, deleting the requests chosen submissions got so they are delivered again. */
#define _POSIX_C_SOURCE 200809L
#include "job.h"
#include "../modules/safe_text.h"
#include "../modules/jsm_client.h"
#include "../modules/tracker_admin.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char rollback_usage[] =
    "usage: wf2jsm rollback (--run ID | --since TIME [--until TIME] | --failed-only)\n"
    "                       [--confirm] [--tracker-only | --jira-only] [--env FILE]\n"
    "\n"
    "Deletes the JSM requests of the selected submissions and resets their tracker\n"
    "rows, so that the next `wf2jsm sync` delivers them again, also when they are\n"
    "older than its window. Without --confirm it lists what it would delete and\n"
    "reset, and changes nothing anywhere.\n"
    "\n"
    "  --run ID        the requests run ID created or adopted (`wf2jsm status` lists runs)\n"
    "  --since TIME    the submissions delivered at or after TIME: ISO 8601 with Z or an\n"
    "                  offset, a bare date meaning its midnight UTC\n"
    "  --until TIME    ... and at or before TIME (delivery times have second resolution)\n"
    "  --failed-only   failed or parked submissions that have a request (a half-made one)\n"
    "  --confirm       do it: back up the tracker, then delete and reset, each step\n"
    "                  written to SYNC_LOG_DIR/audit.jsonl\n"
    "  --tracker-only  only reset the tracker rows (the requests were deleted by hand);\n"
    "                  the next sync looks each one up by label before creating\n"
    "  --jira-only     only delete the requests; the tracker keeps them as delivered, so\n"
    "                  they are not delivered again (`wf2jsm reconcile` lists them as ghosts)\n"
    "  --env FILE      read configuration from FILE instead of ./.env\n"
    "  -h, --help      show this help\n"
    "\n"
    "exit status: 0 done or listed, 1 some requests could not be deleted (their rows\n"
    "are left as they were; rerun to finish), 2 usage, 4 Jira, 5 tracker or file,\n"
    "75 a sync is running.\n";

typedef struct {
    wf_admin_query query;
    bool confirm, tracker_only, jira_only;
    const char *env_file;
} rollback_opts;

static int usage_error(const char *msg)
{
    fprintf(stderr, "wf2jsm rollback: %s\n%s", msg, rollback_usage);
    return 2;
}

/* Parses the command line into *o. Returns -1 when it is complete, else the
 * exit status to return right away (0 after --help). */
static int parse_options(int argc, char **argv, rollback_opts *o)
{
    static const struct option options[] = {
        {"run", required_argument, NULL, 'r'},
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"failed-only", no_argument, NULL, 'f'},
        {"confirm", no_argument, NULL, 'y'},
        {"tracker-only", no_argument, NULL, 't'},
        {"jira-only", no_argument, NULL, 'j'},
        {"env", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int nselect = 0, opt;
    bool has_until = false;
    char msg[256];
    memset(o, 0, sizeof *o);
    o->query.until_us = -1;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'r': {
            char *end;
            errno = 0;
            o->query.run_id = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || o->query.run_id < 1)
                return usage_error("--run takes a run id (a number >= 1, as `wf2jsm status` lists them)");
            o->query.by = WF_ADMIN_BY_CREATED_RUN;
            nselect++;
            break;
        }
        case 's':
            if (job_parse_time(optarg, &o->query.since_us) != 0) {
                snprintf(msg, sizeof msg, "--since '%s' is not a time: use 2026-11-22T10:00:00Z, an offset such "
                         "as +02:00, or a date", optarg);
                return usage_error(msg);
            }
            o->query.by = WF_ADMIN_DELIVERED_BETWEEN;
            nselect++;
            break;
        case 'u':
            if (job_parse_time(optarg, &o->query.until_us) != 0 || o->query.until_us < 0) {
                snprintf(msg, sizeof msg, "--until '%s' is not a time: use 2026-11-22T10:00:00Z, an offset such "
                         "as +02:00, or a date", optarg);
                return usage_error(msg);
            }
            has_until = true;
            break;
        case 'f': o->query.by = WF_ADMIN_FAILED_WITH_TICKET; nselect++; break;
        case 'y': o->confirm = true; break;
        case 't': o->tracker_only = true; break;
        case 'j': o->jira_only = true; break;
        case 'e': o->env_file = optarg; break;
        case 'h': fputs(rollback_usage, stdout); return 0;
        default: fputs(rollback_usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind]);
        return usage_error(msg);
    }
    if (nselect != 1) return usage_error("choose exactly one of --run ID, --since TIME or --failed-only");
    if (has_until && o->query.by != WF_ADMIN_DELIVERED_BETWEEN) return usage_error("--until goes with --since");
    if (has_until && o->query.until_us < o->query.since_us) return usage_error("--until is before --since");
    if (o->tracker_only && o->jira_only) return usage_error("--tracker-only and --jira-only exclude each other");
    return -1;
}

static void print_plan(const rollback_opts *o, const wf_tracker_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const wf_tracker_row *r = &rows[i];
        job_out("would %s%s%s key=%.16s id=%s (%s%s%s)\n",
               o->tracker_only ? "" : "delete ", o->tracker_only ? "" : (r->jsm_key ? r->jsm_key : "-"),
               o->jira_only ? "" : o->tracker_only ? "reset" : " and reset", r->key, r->source_id, r->state,
               r->delivered_at ? " " : "", r->delivered_at ? r->delivered_at : "");
    }
    printf("rollback: would delete %zu request%s in JSM and reset %zu tracker row%s; nothing was changed. "
           "Rerun with --confirm to do it.\n",
           o->tracker_only ? 0 : n, !o->tracker_only && n == 1 ? "" : "s", o->jira_only ? 0 : n,
           !o->jira_only && n == 1 ? "" : "s");
}

/* Deletes r's request. *gone says it is gone from JSM now (deleted, or it
 * was already). A failure that stops the run is returned; one that belongs
 * to this request only is reported in msg with *gone false. */
static wf_err delete_request(wf_jsm *jsm, const wf_tracker_row *r, bool *gone, const char **result,
                             char *msg, size_t msglen)
{
    *gone = false;
    msg[0] = '\0';
    wf_err rc = wf_jsm_delete_issue(jsm, r->jsm_key);
    if (rc == WF_OK || rc == WF_ERR_JIRA_NOT_FOUND) {
        *gone = true;
        *result = rc == WF_OK ? "deleted" : "already gone";
        return WF_OK;
    }
    snprintf(msg, msglen, "%s", wf_jsm_last_error(jsm));
    *result = "failed";
    return wf_err_stops_run(rc) ? rc : WF_OK;
}

/* Rolls back rows, row by row: the request is deleted before the row
 * forgets it, so an interruption leaves at worst a row pointing at a deleted
 * request (a ghost, which a rerun or reconcile --apply finishes), never a
 * request the tracker forgot and would create a second time. */
static wf_err apply(wf_job *job, const rollback_opts *o, const wf_tracker_row *rows, size_t n, int *failures)
{
    wf_run_stats stats = {0};
    wf_jsm *jsm = NULL;
    wf_audit *audit = NULL;
    char backup[4096], msg[1200];
    wf_err rc = wf_tracker_admin_backup(job->tracker, backup, sizeof backup, job->err, sizeof job->err);
    if (rc != WF_OK) goto out;
    job_out("tracker backed up to %s\n", backup);
    if ((rc = wf_audit_open(job->cfg.log_dir, "rollback", &audit, job->err, sizeof job->err)) != WF_OK) goto out;
    if ((rc = wf_audit_write(audit, NULL, NULL, "backup", backup, job->err, sizeof job->err)) != WF_OK) goto out;
    if (!o->tracker_only && (rc = wf_jsm_open(&job->cfg, job->log, &stats, NULL, &jsm)) != WF_OK) {
        snprintf(job->err, sizeof job->err, "cannot set up the HTTP client: %s", wf_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const wf_tracker_row *r = &rows[i];
        if (!o->tracker_only && r->jsm_key) {
            bool gone;
            const char *result;
            rc = delete_request(jsm, r, &gone, &result, msg, sizeof msg);
            if (rc != WF_OK) {
                snprintf(job->err, sizeof job->err, "%s (stopped before deleting %s; nothing after it changed)",
                         wf_jsm_last_error(jsm), r->jsm_key);
                /* The run stops either way; a trail that cannot be written
                 * now would not change what the operator is told. */
                char line[1300], ignored[256];
                snprintf(line, sizeof line, "failed: %s", msg);
                wf_audit_write(audit, r->jsm_key, r->key, "delete_request", line, ignored, sizeof ignored);
                goto out;
            }
            char line[1300];
            snprintf(line, sizeof line, "%s%s%s", result, msg[0] ? ": " : "", msg);
            if ((rc = wf_audit_write(audit, r->jsm_key, r->key, "delete_request", line, job->err,
                                     sizeof job->err)) != WF_OK)
                goto out;
            wf_log_kv(job->log, "rollback", gone ? "INFO" : "WARN", "event", "delete_request", "jsm", r->jsm_key,
                      "key", r->key, "result", line, NULL);
            if (!gone) {
                (*failures)++;
                char shown[4096];
                fprintf(stderr, "wf2jsm rollback: could not delete %s (key=%.16s id=%s): %s; its row is left as "
                        "it was, rerun to try again\n", r->jsm_key, r->key, r->source_id, wf_safe(msg, shown, sizeof shown));
                continue;
            }
            job_out("%s %s key=%.16s id=%s\n", result, r->jsm_key, r->key, r->source_id);
        }
        if (o->jira_only) continue;
        /* Once the request is deleted the label lookup would find nothing;
         * with --tracker-only it may still exist, so the tick must look. */
        if ((rc = wf_tracker_admin_forget_request(job->tracker, r->key, o->tracker_only, job->err,
                                                  sizeof job->err)) != WF_OK)
            goto out;
        if ((rc = wf_audit_write(audit, r->jsm_key, r->key, "reset_row", "ok: pending", job->err,
                                 sizeof job->err)) != WF_OK)
            goto out;
        wf_log_kv(job->log, "rollback", "INFO", "event", "reset_row", "key", r->key, "jsm", r->jsm_key, NULL);
        job_out("reset key=%.16s id=%s -> pending\n", r->key, r->source_id);
    }
out:
    wf_jsm_close(jsm);
    wf_audit_close(audit);
    return rc;
}

int cmd_rollback(int argc, char **argv)
{
    rollback_opts o;
    int status = parse_options(argc, argv, &o);
    if (status >= 0) return status;
    status = 0;

    wf_job job;
    wf_tracker_row *rows = NULL;
    size_t n = 0;
    int failures = 0;
    unsigned needs = JOB_NEEDS_TRACKER;
    if (o.confirm) needs |= JOB_NEEDS_LOCK | JOB_NEEDS_LOG | (o.tracker_only ? 0 : JOB_NEEDS_JIRA);
    wf_err rc = job_setup(&job, "rollback", o.env_file, needs);
    if (rc != WF_OK) goto out;
    if (o.query.by == WF_ADMIN_BY_CREATED_RUN) {
        bool exists = false;
        if ((rc = wf_tracker_admin_run_exists(job.tracker, o.query.run_id, &exists, job.err, sizeof job.err)) != WF_OK)
            goto out;
        if (!exists) {
            snprintf(job.err, sizeof job.err, "there is no run %ld in the tracker %s (`wf2jsm status --runs 50` "
                     "lists the runs)", o.query.run_id, job.cfg.tracker_db);
            rc = WF_ERR_USAGE;
            goto out;
        }
    }
    if ((rc = wf_tracker_admin_select(job.tracker, &o.query, &rows, &n, job.err, sizeof job.err)) != WF_OK) goto out;
    if (n == 0) {
        printf("rollback: no submission matches; nothing to do\n");
        goto out;
    }
    if (!o.confirm) {
        print_plan(&o, rows, n);
        goto out;
    }
    rc = apply(&job, &o, rows, n, &failures);
    if (rc == WF_OK) {
        printf("rollback: %zu of %zu submission%s rolled back%s\n", n - (size_t)failures, n, n == 1 ? "" : "s",
               o.jira_only ? " in JSM (the tracker keeps them as delivered)"
                           : "; the next `wf2jsm sync` delivers them again");
        if (failures > 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "%d request%s could not be deleted; rerun the same command to finish",
                     failures, failures == 1 ? "" : "s");
            status = job_fail(&job, WF_ERR_ROWS_FAILED, msg);
        }
    }
out:
    if (rc != WF_OK) status = job_fail(&job, rc, NULL);
    wf_tracker_admin_free_rows(rows, n);
    job_teardown(&job);
    return status;
}
