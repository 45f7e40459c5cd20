/* retry.c: `wf2jsm retry`, putting parked or failed submissions back in the queue. */
#define _POSIX_C_SOURCE 200809L
#include "job.h"
#include "../modules/tracker_admin.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char retry_usage[] =
    "usage: wf2jsm retry [--parked] [--failed] [--env FILE] [KEY...]\n"
    "\n"
    "Puts submissions back in the queue with their attempts reset, so that the next\n"
    "`wf2jsm sync` delivers them, also when they are older than its window. Fix the\n"
    "cause first (`wf2jsm status` lists each one's last error). Exactly once still\n"
    "holds: a submission whose request exists resumes at its attachments, and one\n"
    "whose create may have reached JSM is looked up by its label before anything is\n"
    "created. Delivered submissions are left alone (see `wf2jsm rollback`).\n"
    "\n"
    "  --parked     every parked submission (out of attempts, or refused by JSM)\n"
    "  --failed     every failed submission (sync retries these by itself as well)\n"
    "  KEY          a submission key, a unique prefix of at least 8 of its hex\n"
    "               characters, or id:<source id>\n"
    "  --env FILE   read configuration from FILE instead of ./.env\n"
    "  -h, --help   show this help\n"
    "\n"
    "exit status: 0 requeued (or nothing to requeue), 1 a named submission is\n"
    "delivered already, 2 no selection or an unknown KEY, 5 tracker, 75 a sync runs.\n";

typedef struct {
    wf_tracker_row *rows;
    size_t n, cap;
} row_set;

/* Adds row to set unless its key is there already; takes ownership of the
 * row's strings either way. Returns -1 when out of memory. */
static int add_row(row_set *set, wf_tracker_row *row)
{
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->rows[i].key, row->key) == 0) {
            wf_tracker_row_free(row);
            return 0;
        }
    }
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        wf_tracker_row *grown = realloc(set->rows, cap * sizeof *grown);
        if (!grown) {
            wf_tracker_row_free(row);
            return -1;
        }
        set->rows = grown;
        set->cap = cap;
    }
    set->rows[set->n++] = *row;
    memset(row, 0, sizeof *row);
    return 0;
}

/* Collects what the command line names: every KEY first, so that a typo
 * stops the command before anything changed, then the states asked for. */
static wf_err collect(wf_job *job, bool parked, bool failed, char **keys, int nkeys, row_set *set)
{
    wf_tracker_row row;
    for (int i = 0; i < nkeys; i++) {
        wf_err rc = wf_tracker_admin_resolve(job->tracker, keys[i], &row, job->err, sizeof job->err);
        if (rc != WF_OK) return rc;
        if (add_row(set, &row) != 0) return WF_ERR_NOMEM;
    }
    const char *states[2] = {parked ? "parked" : NULL, failed ? "failed" : NULL};
    for (int s = 0; s < 2; s++) {
        if (!states[s]) continue;
        wf_tracker_row *rows = NULL;
        size_t n = 0;
        wf_admin_query q = {.by = WF_ADMIN_BY_STATE, .text = states[s], .until_us = -1};
        wf_err rc = wf_tracker_admin_select(job->tracker, &q, &rows, &n, job->err, sizeof job->err);
        if (rc != WF_OK) return rc;
        for (size_t i = 0; i < n; i++) {
            if (add_row(set, &rows[i]) != 0) {
                wf_tracker_admin_free_rows(rows, n);
                return WF_ERR_NOMEM;
            }
        }
        free(rows);
    }
    return WF_OK;
}

int cmd_retry(int argc, char **argv)
{
    static const struct option options[] = {
        {"parked", no_argument, NULL, 'p'},
        {"failed", no_argument, NULL, 'f'},
        {"env", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool parked = false, failed = false;
    const char *env_file = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'p': parked = true; break;
        case 'f': failed = true; break;
        case 'e': env_file = optarg; break;
        case 'h': fputs(retry_usage, stdout); return 0;
        default: fputs(retry_usage, stderr); return 2;
        }
    }
    if (!parked && !failed && optind >= argc) {
        fprintf(stderr, "wf2jsm retry: say what to requeue: --parked, --failed or submission keys\n%s", retry_usage);
        return 2;
    }

    wf_job job;
    row_set set = {0};
    wf_audit *audit = NULL;
    int requeued = 0, delivered = 0, status = 0;
    wf_err rc = job_setup(&job, "retry", env_file, JOB_NEEDS_TRACKER | JOB_NEEDS_LOCK | JOB_NEEDS_LOG);
    if (rc != WF_OK) goto out;
    if ((rc = collect(&job, parked, failed, argv + optind, argc - optind, &set)) != WF_OK) goto out;
    if (set.n > 0 && (rc = wf_audit_open(job.cfg.log_dir, "retry", &audit, job.err, sizeof job.err)) != WF_OK)
        goto out;
    for (size_t i = 0; i < set.n; i++) {
        const wf_tracker_row *r = &set.rows[i];
        bool changed = false;
        if ((rc = wf_tracker_admin_requeue(job.tracker, r->key, &changed, job.err, sizeof job.err)) != WF_OK)
            goto out;
        if (!changed) {
            delivered++;
            char id[256], jsm_key[256];
            fprintf(stderr, "wf2jsm retry: key=%.16s id=%s is delivered already as %s: left alone (to deliver it "
                    "again, `wf2jsm rollback` its run)\n", r->key, wf_safe(r->source_id, id, sizeof id),
                    wf_safe(r->jsm_key, jsm_key, sizeof jsm_key));
            continue;
        }
        requeued++;
        const char *to = r->jsm_key ? "attaching" : "pending";
        job_out("requeued key=%.16s id=%s %s -> %s (attempts %d -> 0)%s%s\n", r->key, r->source_id, r->state, to,
               r->attempts, r->jsm_key ? ", request " : r->may_exist ? ", looked up by label first" : "",
               r->jsm_key ? r->jsm_key : "");
        wf_log_kv(job.log, "retry", "INFO", "event", "requeued", "key", r->key, "id", r->source_id, "from", r->state,
                  "to", to, "jsm", r->jsm_key, NULL);
        char result[64];
        snprintf(result, sizeof result, "ok: %s -> %s", r->state, to);
        if ((rc = wf_audit_write(audit, r->jsm_key, r->key, "requeue", result, job.err, sizeof job.err)) != WF_OK)
            goto out;
    }
    printf("retry: requeued %d submission%s%s\n", requeued, requeued == 1 ? "" : "s",
           requeued ? "; the next `wf2jsm sync` delivers them" : "");
    if (delivered > 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "%d of the named submissions %s delivered already and left alone", delivered,
                 delivered == 1 ? "is" : "are");
        status = job_fail(&job, WF_ERR_ROWS_FAILED, msg);
    }
out:
    if (rc != WF_OK) status = job_fail(&job, rc, NULL);
    wf_audit_close(audit);
    wf_tracker_admin_free_rows(set.rows, set.n);
    job_teardown(&job);
    return status;
}
