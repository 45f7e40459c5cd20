/* reconcile.c: `wf2jsm reconcile`, comparing the requests in JSM with what the tracker says it delivered. */
#define _POSIX_C_SOURCE 200809L
#include "job.h"
#include "../modules/attachments.h"
#include "../modules/jira_fields.h"
#include "../modules/jsm_client.h"
#include "../modules/process_batch.h"
#include "../modules/tracker_admin.h"
#include "../modules/tracker_rebuild.h"
#include "../modules/unique_key.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char reconcile_usage[] =
    "usage: wf2jsm reconcile [--apply] [--delete-orphans --confirm] [--env FILE]\n"
    "\n"
    "Compares the requests in JSM that carry the label wf2jsm (in the service desk's\n"
    "project) with the tracker, and prints one line per finding:\n"
    "  orphan     a request whose submission the tracker does not know, or knows\n"
    "             without its request (a create whose reply was lost, a hand-made one)\n"
    "  ghost      the tracker has a request that is gone from JSM\n"
    "  duplicate  a second request carrying the key of a submission\n"
    "  missing    a delivered request lacks its submission-<id> attachments\n"
    "  mismatch   the tracker's request does not carry its submission's label\n"
    "  unkeyed    a request labelled wf2jsm without a wf2jsm-<key> label\n"
    "Needs the labels field on the request type (SYNC_KEY_FIELD cannot be listed).\n"
    "\n"
    "  --apply           on a tracker without a submission, first rebuild it from\n"
    "                    JSM as sync does (requests are matched to their source rows\n"
    "                    and recorded, rows without a request queued); then fix\n"
    "                    what can be fixed: adopt orphans (a submission the tracker\n"
    "                    does not know is found in the source and recorded), requeue\n"
    "                    ghosts, requeue missing attachments; the next `wf2jsm sync`\n"
    "                    completes them. Duplicates, mismatches and unkeyed requests\n"
    "                    are left for a person.\n"
    "  --delete-orphans  delete orphans and duplicates in JSM instead of adopting them;\n"
    "                    refused without --confirm\n"
    "  --confirm         confirms --delete-orphans\n"
    "  --env FILE        read configuration from FILE instead of ./.env\n"
    "  -h, --help        show this help\n"
    "\n"
    "--apply and --delete-orphans back up the tracker first, take the run lock and\n"
    "write every action to SYNC_LOG_DIR/audit.jsonl.\n"
    "\n"
    "exit status: 0 JSM and the tracker agree (or every finding was fixed), 1 findings\n"
    "remain, 2 usage or config, 3 database, 4 Jira, 5 tracker or file, 75 a sync runs.\n";

typedef struct {
    char *jsm_key;
    char *issue_id;
    char prefix[WF_KEY_LABEL_PREFIX_LEN + 1];   /* "" when the request has no key label */
} ticket;

/* An orphan whose key the tracker does not know; filled from the source
 * when a row there has that key. */
typedef struct {
    const ticket *t;
    bool matched;
    char key[WF_KEY_HEX_LEN + 1];
    char *source_id, *source_time;
    int64_t source_time_us;
} stranger;

typedef struct {
    wf_job *job;
    wf_jsm *jsm;
    wf_audit *audit;
    bool apply, delete_orphans;
    long run_id;
    wf_run_stats stats;

    ticket *tickets;
    size_t ntickets;
    stranger *strangers;
    size_t nstrangers, capstrangers;

    int orphans, ghosts, duplicates, missing, mismatches, unkeyed;
    int fixed, left;
} recon;

/* ---- reading JSM ----------------------------------------------------------- */

/* Jira keys sort by their number within a project, as JQL's ORDER BY key:
 * the first request of a group is the one sync's label lookup adopts. */
static int compare_jsm_keys(const char *a, const char *b)
{
    const char *da = strrchr(a, '-'), *db = strrchr(b, '-');
    long na = da ? strtol(da + 1, NULL, 10) : 0, nb = db ? strtol(db + 1, NULL, 10) : 0;
    if (na != nb) return na < nb ? -1 : 1;
    return strcmp(a, b);
}

static int compare_tickets(const void *a, const void *b)
{
    const ticket *x = a, *y = b;
    int c = strcmp(x->prefix, y->prefix);
    return c ? c : compare_jsm_keys(x->jsm_key, y->jsm_key);
}

static bool issue_has_label(const cJSON *issue, const char *prefix)
{
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(issue, "fields"), "labels");
    const cJSON *l;
    char p[WF_KEY_LABEL_PREFIX_LEN + 1];
    cJSON_ArrayForEach(l, labels) {
        if (cJSON_IsString(l) && wf_rebuild_label_prefix(l->valuestring, p) && strcmp(p, prefix) == 0) return true;
    }
    return false;
}

/* Which carrier sync uses for the key: from the cached field list it works
 * with, else from JSM. Reconcile can only list requests by label. */
static wf_err check_label_carrier(recon *r)
{
    wf_job *job = r->job;
    char name[160], *raw = NULL;
    wf_field_list fields = {0};
    snprintf(name, sizeof name, "fields:%s:%s", job->cfg.service_desk_id, job->cfg.request_type_id);
    wf_err rc = wf_tracker_meta_get(job->tracker, name, &raw);
    if (rc != WF_OK) {
        snprintf(job->err, sizeof job->err, "%s", wf_tracker_errmsg(job->tracker));
        goto out;
    }
    if (!raw && (rc = wf_jsm_get_request_type_fields(r->jsm, &raw)) != WF_OK) {
        snprintf(job->err, sizeof job->err, "%s", wf_jsm_last_error(r->jsm));
        goto out;
    }
    if ((rc = wf_fields_parse(raw, &fields, job->err, sizeof job->err)) != WF_OK) goto out;
    if (wf_fields_key_carrier(&fields, job->cfg.key_field) != WF_KEY_VIA_LABEL) {
        snprintf(job->err, sizeof job->err, "reconcile needs the labels carrier: request type %s has no Labels "
                 "field, and requests that carry their key in %s cannot all be listed by JQL; add Labels to the "
                 "request type", job->cfg.request_type_id, job->cfg.key_field ? job->cfg.key_field : "no field");
        rc = WF_ERR_CONFIG;
    }
out:
    free(raw);
    wf_fields_free(&fields);
    return rc;
}

/* Lists every request of the service desk's project labelled wf2jsm into
 * r->tickets, sorted by key prefix and then by Jira key. */
static wf_err list_tickets(recon *r)
{
    wf_job *job = r->job;
    cJSON *desk = NULL, *issues = NULL;
    wf_err rc = wf_jsm_get_service_desk(r->jsm, &desk);
    if (rc != WF_OK) {
        snprintf(job->err, sizeof job->err, "%s", wf_jsm_last_error(r->jsm));
        goto out;
    }
    const cJSON *project = cJSON_GetObjectItemCaseSensitive(desk, "projectId");
    const char *pid = cJSON_IsString(project) ? project->valuestring : "";
    bool digits = *pid != '\0';
    for (const char *p = pid; *p; p++) digits &= *p >= '0' && *p <= '9';
    if (!digits) {
        snprintf(job->err, sizeof job->err, "service desk %s: the reply has no numeric projectId",
                 job->cfg.service_desk_id);
        rc = WF_ERR_JIRA_PROTOCOL;
        goto out;
    }
    /* The label alone would also list the requests of other desks that a
     * different wf2jsm tracker delivers; the project bounds it to ours. */
    char jql[128];
    snprintf(jql, sizeof jql, "project = %s AND labels = \"%s\" ORDER BY key ASC", pid, WF_KEY_LABEL);
    if ((rc = wf_jsm_search(r->jsm, jql, "[\"labels\"]", &issues)) != WF_OK) {
        snprintf(job->err, sizeof job->err, "%s", wf_jsm_last_error(r->jsm));
        goto out;
    }
    size_t n = (size_t)cJSON_GetArraySize(issues);
    r->tickets = calloc(n ? n : 1, sizeof *r->tickets);
    if (!r->tickets) { rc = WF_ERR_NOMEM; goto out; }
    const cJSON *issue;
    cJSON_ArrayForEach(issue, issues) {
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(issue, "key");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(issue, "id");
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(issue, "fields"), "labels");
        if (!cJSON_IsString(key)) continue;
        ticket *t = &r->tickets[r->ntickets++];
        t->jsm_key = strdup(key->valuestring);
        t->issue_id = cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
        if (!t->jsm_key) { rc = WF_ERR_NOMEM; goto out; }
        const cJSON *l;
        cJSON_ArrayForEach(l, labels) {
            if (cJSON_IsString(l) && wf_rebuild_label_prefix(l->valuestring, t->prefix)) break;
        }
    }
    qsort(r->tickets, r->ntickets, sizeof *r->tickets, compare_tickets);
out:
    cJSON_Delete(desk);
    cJSON_Delete(issues);
    return rc;
}

static const ticket *find_ticket(const recon *r, const char *jsm_key)
{
    for (size_t i = 0; i < r->ntickets; i++)
        if (strcmp(r->tickets[i].jsm_key, jsm_key) == 0) return &r->tickets[i];
    return NULL;
}

static bool prefix_has_tickets(const recon *r, const char *prefix)
{
    size_t lo = 0, hi = r->ntickets;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(r->tickets[mid].prefix, prefix) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < r->ntickets && strcmp(r->tickets[lo].prefix, prefix) == 0;
}

/* ---- acting ---------------------------------------------------------------- */

/* Appends one action to the audit trail; a trail that cannot be written
 * stops the command, since the next action would go unrecorded. */
static wf_err audit(recon *r, const char *jsm_key, const char *key, const char *action, const char *result)
{
    return wf_audit_write(r->audit, jsm_key, key, action, result, r->job->err, sizeof r->job->err);
}

/* Whether a Jira failure stops the command (credentials, network) or
 * belongs to this one request. */
static wf_err jira_failure(recon *r, wf_err rc)
{
    if (!wf_err_stops_run(rc) || rc == WF_ERR_JIRA_NOT_FOUND) return WF_OK;
    snprintf(r->job->err, sizeof r->job->err, "%s", wf_jsm_last_error(r->jsm));
    return rc;
}

/* Deletes request t (--delete-orphans): gone already counts as done. */
static wf_err delete_ticket(recon *r, const ticket *t, const char *key, const char *action)
{
    char result[1100];
    wf_err rc = wf_jsm_delete_issue(r->jsm, t->jsm_key);
    bool gone = rc == WF_OK || rc == WF_ERR_JIRA_NOT_FOUND;
    if (gone) snprintf(result, sizeof result, "%s", rc == WF_OK ? "deleted" : "already gone");
    else snprintf(result, sizeof result, "failed: %s", wf_jsm_last_error(r->jsm));
    job_out("  -> %s: %s\n", t->jsm_key, result);
    if (gone) r->fixed++;
    else r->left++;
    wf_err stop = gone ? WF_OK : jira_failure(r, rc);
    wf_err arc = audit(r, t->jsm_key, key, action, result);
    return stop != WF_OK ? stop : arc;
}

static wf_err report_duplicates(recon *r, const ticket *first, size_t n, const char *canonical, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        const ticket *t = &first[i];
        if (canonical && strcmp(t->jsm_key, canonical) == 0) continue;
        r->duplicates++;
        job_out("duplicate  %s key=%.16s: another request for the submission of %s\n", t->jsm_key, t->prefix,
               canonical ? canonical : first[0].jsm_key);
        if (r->delete_orphans) {
            wf_err rc = delete_ticket(r, t, key, "delete_duplicate");
            if (rc != WF_OK) return rc;
        } else {
            r->left++;
            if (r->apply) job_out("  -> %s: left; delete it by hand, or with --delete-orphans --confirm\n", t->jsm_key);
        }
    }
    return WF_OK;
}

/* Orphan t carries the key of tracker row row, which lacks a live request
 * (why says how): adopted (the next tick lists its attachments and uploads
 * the missing ones), or deleted. */
static wf_err orphan_of_row(recon *r, const ticket *t, const wf_tracker_row *row, const char *why)
{
    r->orphans++;
    job_out("orphan     %s key=%.16s id=%s: %s\n", t->jsm_key, row->key, row->source_id, why);
    if (r->delete_orphans) return delete_ticket(r, t, row->key, "delete_orphan");
    if (!r->apply) {
        r->left++;
        return WF_OK;
    }
    wf_err rc = wf_tracker_admin_adopt(r->job->tracker, row->key, t->jsm_key, t->issue_id, r->run_id, r->job->err,
                                       sizeof r->job->err);
    if (rc != WF_OK) return rc;
    r->fixed++;
    r->stats.adopted++;
    job_out("  -> %s: adopted; the next sync completes its attachments\n", t->jsm_key);
    return audit(r, t->jsm_key, row->key, "adopt", "ok: attaching");
}

/* A delivered request must carry the configured submission-<id> files. */
static wf_err check_attachments(recon *r, const wf_tracker_row *row)
{
    char **names = NULL, want[WF_ATTACH_NFORMATS][96], missing[256] = "";
    size_t n = 0;
    bool wanted[WF_ATTACH_NFORMATS] = {r->job->cfg.attach_json, r->job->cfg.attach_csv};
    if (strcmp(row->state, "delivered") != 0) return WF_OK;
    wf_err rc = wf_jsm_list_attachments(r->jsm, row->jsm_key, &names, &n);
    if (rc != WF_OK) {
        r->left++;
        job_out("unchecked  %s key=%.16s id=%s: %s\n", row->jsm_key, row->key, row->source_id, wf_jsm_last_error(r->jsm));
        return jira_failure(r, rc);
    }
    for (int f = 0; f < WF_ATTACH_NFORMATS; f++) {
        if (!wanted[f]) continue;
        wf_attachment_filename(row->source_id, (wf_attach_format)f, want[f], sizeof want[f]);
        bool there = false;
        for (size_t i = 0; i < n; i++) there |= strcmp(names[i], want[f]) == 0;
        if (!there) {
            size_t len = strlen(missing);
            snprintf(missing + len, sizeof missing - len, "%s%s", len ? ", " : "", want[f]);
        }
    }
    wf_jsm_free_names(names, n);
    if (!missing[0]) return WF_OK;
    r->missing++;
    job_out("missing    %s key=%.16s id=%s: lacks %s\n", row->jsm_key, row->key, row->source_id, missing);
    if (!r->apply) {
        r->left++;
        return WF_OK;
    }
    if ((rc = wf_tracker_admin_reattach(r->job->tracker, row->key, r->job->err, sizeof r->job->err)) != WF_OK)
        return rc;
    r->fixed++;
    job_out("  -> %s: requeued; the next sync uploads the missing files\n", row->jsm_key);
    return audit(r, row->jsm_key, row->key, "reattach", "ok: attaching");
}

static void print_ghost(recon *r, const wf_tracker_row *row)
{
    r->ghosts++;
    job_out("ghost      %s key=%.16s id=%s: the tracker has it as %s, JSM does not have it\n", row->jsm_key, row->key,
           row->source_id, row->state);
}

/* The tracker's request is gone from JSM and no other request carries the
 * key: the row forgets it and waits as pending, so the next tick creates
 * the request again (even when the row is older than the sync window). */
static wf_err requeue_ghost(recon *r, const wf_tracker_row *row)
{
    if (!r->apply) {
        r->left++;
        return WF_OK;
    }
    wf_err rc = wf_tracker_admin_forget_request(r->job->tracker, row->key, false, r->job->err, sizeof r->job->err);
    if (rc != WF_OK) return rc;
    r->fixed++;
    job_out("  -> %s: requeued; the next sync creates the request again\n", row->jsm_key);
    return audit(r, row->jsm_key, row->key, "requeue_ghost", "ok: pending");
}

/* Looks at the tracker's request row->jsm_key directly (the search did not
 * list it under the row's label): gone is a ghost, present with the label
 * is a search that lagged, present without it is a mismatch. *gone tells
 * the caller which. */
static wf_err check_unlisted(recon *r, const wf_tracker_row *row, const char *prefix, bool *gone, bool *labelled)
{
    cJSON *issue = NULL;
    *gone = *labelled = false;
    wf_err rc = wf_jsm_get_issue(r->jsm, row->jsm_key, "labels", &issue);
    if (rc == WF_ERR_JIRA_NOT_FOUND) {
        *gone = true;
        return WF_OK;
    }
    if (rc != WF_OK) {
        r->left++;
        job_out("unchecked  %s key=%.16s id=%s: %s\n", row->jsm_key, row->key, row->source_id, wf_jsm_last_error(r->jsm));
        return jira_failure(r, rc);
    }
    *labelled = issue_has_label(issue, prefix);
    cJSON_Delete(issue);
    if (!*labelled) {
        r->mismatches++;
        r->left++;
        job_out("mismatch   %s key=%.16s id=%s: the tracker's request lacks the label %s-%s (removed by hand?)\n",
               row->jsm_key, row->key, row->source_id, WF_KEY_LABEL, prefix);
    }
    return WF_OK;
}

static wf_err add_stranger(recon *r, const ticket *t)
{
    if (r->nstrangers == r->capstrangers) {
        size_t cap = r->capstrangers ? r->capstrangers * 2 : 8;
        stranger *grown = realloc(r->strangers, cap * sizeof *grown);
        if (!grown) return WF_ERR_NOMEM;
        r->strangers = grown;
        r->capstrangers = cap;
    }
    r->strangers[r->nstrangers++] = (stranger){.t = t};
    return WF_OK;
}

/* One label group: the requests first[0..n) carrying one key prefix. */
static wf_err reconcile_group(recon *r, const ticket *first, size_t n)
{
    wf_tracker_row *rows = NULL;
    size_t nrows = 0;
    wf_admin_query q = {.by = WF_ADMIN_KEY_PREFIX, .text = first->prefix, .until_us = -1};
    wf_err rc = wf_tracker_admin_select(r->job->tracker, &q, &rows, &nrows, r->job->err, sizeof r->job->err);
    if (rc != WF_OK) return rc;
    if (nrows == 0) {
        /* Matched against the source later, all strangers at once. */
        r->orphans++;
        job_out("orphan     %s key=%.16s: the tracker does not know this submission\n", first->jsm_key, first->prefix);
        if ((rc = add_stranger(r, first)) == WF_OK) rc = report_duplicates(r, first, n, first->jsm_key, NULL);
        goto out;
    }
    if (nrows > 1) {
        r->mismatches++;
        r->left++;
        job_out("mismatch   %s: label %s-%s matches %zu tracker keys; compare them by hand\n", first->jsm_key,
               WF_KEY_LABEL, first->prefix, nrows);
        goto out;
    }
    const wf_tracker_row *row = &rows[0];
    if (!row->jsm_key) {
        char why[96];
        snprintf(why, sizeof why, "the tracker has the submission as %s, without a request", row->state);
        if ((rc = orphan_of_row(r, first, row, why)) == WF_OK)
            rc = report_duplicates(r, first, n, first->jsm_key, row->key);
        goto out;
    }
    const ticket *own = NULL;
    for (size_t i = 0; i < n && !own; i++)
        if (strcmp(first[i].jsm_key, row->jsm_key) == 0) own = &first[i];
    if (own) {
        if ((rc = report_duplicates(r, first, n, own->jsm_key, row->key)) == WF_OK) rc = check_attachments(r, row);
        goto out;
    }
    bool gone, labelled;
    if ((rc = check_unlisted(r, row, first->prefix, &gone, &labelled)) != WF_OK) goto out;
    if (gone) {
        /* The first request carrying the key replaces the ghost when it is
         * adopted. Deleted instead, the ghost is requeued after it, never
         * before: a row requeued while a request with its label exists would
         * be created a second time by a tick in between. */
        print_ghost(r, row);
        char why[96];
        snprintf(why, sizeof why, "carries the key of ghost %s", row->jsm_key);
        if ((rc = orphan_of_row(r, first, row, why)) == WF_OK && r->delete_orphans) rc = requeue_ghost(r, row);
        if (rc == WF_OK) rc = report_duplicates(r, first, n, first->jsm_key, row->key);
        goto out;
    }
    rc = report_duplicates(r, first, n, row->jsm_key, row->key);
    if (rc == WF_OK && labelled) rc = check_attachments(r, row);
out:
    wf_tracker_admin_free_rows(rows, nrows);
    return rc;
}

/* Tracker rows with a request whose label no listed request carries. */
static wf_err reconcile_unlisted_rows(recon *r, size_t *nrows_out)
{
    wf_tracker_row *rows = NULL;
    size_t nrows = 0;
    wf_admin_query q = {.by = WF_ADMIN_WITH_TICKET, .until_us = -1};
    wf_err rc = wf_tracker_admin_select(r->job->tracker, &q, &rows, &nrows, r->job->err, sizeof r->job->err);
    *nrows_out = nrows;
    for (size_t i = 0; rc == WF_OK && i < nrows; i++) {
        const wf_tracker_row *row = &rows[i];
        char prefix[WF_KEY_LABEL_PREFIX_LEN + 1];
        snprintf(prefix, sizeof prefix, "%s", row->key);
        if (prefix_has_tickets(r, prefix)) continue;
        const ticket *t = find_ticket(r, row->jsm_key);
        if (t) {
            r->mismatches++;
            r->left++;
            job_out("mismatch   %s key=%.16s id=%s: the request carries %s%.16s instead of this submission's label\n",
                   row->jsm_key, row->key, row->source_id, t->prefix[0] ? "the label of key " : "no key label",
                   t->prefix);
            continue;
        }
        bool gone, labelled;
        rc = check_unlisted(r, row, prefix, &gone, &labelled);
        if (rc == WF_OK && gone) {
            print_ghost(r, row);
            rc = requeue_ghost(r, row);
        }
        else if (rc == WF_OK && labelled) rc = check_attachments(r, row);
    }
    wf_tracker_admin_free_rows(rows, nrows);
    return rc;
}

/* ---- strangers: orphans whose key the tracker never saw --------------------- */

static int compare_strangers(const void *a, const void *b)
{
    return strcmp(((const stranger *)a)->t->prefix, ((const stranger *)b)->t->prefix);
}

static stranger *find_stranger(recon *r, const char *key)
{
    size_t lo = 0, hi = r->nstrangers;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(r->strangers[mid].t->prefix, key, WF_KEY_LABEL_PREFIX_LEN);
        if (c == 0) return &r->strangers[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

typedef struct {
    recon *r;
    bool fill;            /* pass 2: queue the rows the tracker does not know */
    int queued;
    wf_err rc;
} scan_state;

/* Pass 1 finds the source rows of the strangers by computing every row's
 * key (the label holds only a hash). Pass 2 queues the unseen rows older
 * than the newest stranger. */
static wf_row_action on_source_row(const wf_submission *sub, void *ctx)
{
    scan_state *s = ctx;
    recon *r = s->r;
    wf_job *job = r->job;
    char key[WF_KEY_HEX_LEN + 1];
    s->rc = wf_key_compute(sub, (const char *const *)job->cfg.key_columns, job->cfg.n_key_columns, key, job->err,
                           sizeof job->err);
    if (s->rc != WF_OK) return WF_ROW_STOP;
    stranger *st = find_stranger(r, key);
    if (!s->fill) {
        if (st && !st->matched) {
            st->matched = true;
            snprintf(st->key, sizeof st->key, "%s", key);
            st->source_id = strdup(sub->id);
            st->source_time = strdup(sub->time_text);
            st->source_time_us = sub->time_us;
            if (!st->source_id || !st->source_time) s->rc = WF_ERR_NOMEM;
        }
        return s->rc == WF_OK ? WF_ROW_NEXT : WF_ROW_STOP;
    }
    if (st && st->matched && strcmp(st->key, key) == 0) return WF_ROW_NEXT;
    wf_tracker_row row;
    bool found = false, inserted = false;
    if ((s->rc = wf_tracker_get(job->tracker, key, &row, &found)) != WF_OK) {
        snprintf(job->err, sizeof job->err, "%s", wf_tracker_errmsg(job->tracker));
        return WF_ROW_STOP;
    }
    if (found) {
        wf_tracker_row_free(&row);
        return WF_ROW_NEXT;
    }
    s->rc = wf_tracker_admin_insert(job->tracker, key, sub->id, sub->time_text, sub->time_us, NULL, NULL, 0,
                                    &inserted, job->err, sizeof job->err);
    if (s->rc == WF_OK && inserted) {
        s->queued++;
        s->rc = audit(r, NULL, key, "queue_unseen", "ok: pending");
    }
    return s->rc == WF_OK ? WF_ROW_NEXT : WF_ROW_STOP;
}

/* Records each stranger that a source row has the key of: a row in state
 * attaching with its request, so the next tick completes the attachments
 * and never creates a second request.
 *
 * The tracker's cursor is its newest source time, and a tick reads only
 * from the cursor minus SYNC_LOOKBACK. A stranger newer than the cursor
 * would move it past submissions not synced yet, which no tick would then
 * read; so those are recorded first, as pending, and the tick delivers them
 * as usual. */
static wf_err adopt_strangers(recon *r)
{
    wf_job *job = r->job;
    scan_state s = {.r = r};
    char *password = NULL;
    wf_err rc = job->source ? WF_OK : wf_source_connect(&job->cfg, &job->source, &password, job->err, sizeof job->err);
    wf_log_add_secret(job->log, password);
    free(password);
    if (rc != WF_OK) return rc;
    qsort(r->strangers, r->nstrangers, sizeof *r->strangers, compare_strangers);
    rc = wf_source_stream_window(job->source, INT64_MIN, WF_NO_UPPER_BOUND, LONG_MAX, on_source_row, &s,
                                 job->err, sizeof job->err);
    if (rc == WF_OK) rc = s.rc;
    if (rc != WF_OK) return rc;

    int64_t newest = INT64_MIN, cursor = 0;
    bool has_cursor = false;
    for (size_t i = 0; i < r->nstrangers; i++)
        if (r->strangers[i].matched && r->strangers[i].source_time_us > newest) newest = r->strangers[i].source_time_us;
    if ((rc = wf_tracker_cursor(job->tracker, &cursor, &has_cursor)) != WF_OK) {
        snprintf(job->err, sizeof job->err, "%s", wf_tracker_errmsg(job->tracker));
        return rc;
    }
    if (newest != INT64_MIN && (!has_cursor || newest > cursor)) {
        int64_t now = wf_now_us();
        int64_t from = has_cursor ? (cursor > now ? now : cursor) - (int64_t)job->cfg.lookback_seconds * 1000000
                                  : INT64_MIN;
        s.fill = true;
        rc = wf_source_stream_window(job->source, from, newest - 1, LONG_MAX, on_source_row, &s, job->err,
                                     sizeof job->err);
        if (rc == WF_OK) rc = s.rc;
        if (rc != WF_OK) return rc;
        if (s.queued > 0)
            job_out("queued %d older submission%s not synced yet, so that the cursor does not pass them\n", s.queued,
                   s.queued == 1 ? "" : "s");
    }
    for (size_t i = 0; i < r->nstrangers; i++) {
        const stranger *st = &r->strangers[i];
        bool inserted = false;
        if (!st->matched) {
            r->left++;
            job_out("  -> %s: left; no source row has the key %.16s...: delete it with --delete-orphans --confirm, "
                   "or leave it\n", st->t->jsm_key, st->t->prefix);
            continue;
        }
        rc = wf_tracker_admin_insert(job->tracker, st->key, st->source_id, st->source_time, st->source_time_us,
                                     st->t->jsm_key, st->t->issue_id, r->run_id, &inserted, job->err, sizeof job->err);
        if (rc != WF_OK) return rc;
        r->fixed++;
        r->stats.adopted++;
        job_out("  -> %s: adopted for id=%s key=%.16s; the next sync completes its attachments\n", st->t->jsm_key,
               st->source_id, st->key);
        if ((rc = audit(r, st->t->jsm_key, st->key, "adopt_new", "ok: attaching")) != WF_OK) return rc;
    }
    return WF_OK;
}

static wf_err settle_strangers(recon *r)
{
    if (r->nstrangers == 0) return WF_OK;
    if (r->apply && !r->delete_orphans) return adopt_strangers(r);
    for (size_t i = 0; i < r->nstrangers; i++) {
        const ticket *t = r->strangers[i].t;
        if (!r->delete_orphans) {
            r->left++;
            continue;
        }
        wf_err rc = delete_ticket(r, t, NULL, "delete_orphan");
        if (rc != WF_OK) return rc;
    }
    return WF_OK;
}

/* ---- the command ------------------------------------------------------------ */

static wf_err reconcile(recon *r, size_t *nrows)
{
    wf_err rc;
    for (size_t i = 0; i < r->ntickets && !r->tickets[i].prefix[0]; i++) {
        r->unkeyed++;
        r->left++;
        job_out("unkeyed    %s: labelled %s without a %s-<key> label; check it by hand\n", r->tickets[i].jsm_key,
               WF_KEY_LABEL, WF_KEY_LABEL);
    }
    for (size_t i = 0; i < r->ntickets;) {
        size_t j = i + 1;
        while (j < r->ntickets && strcmp(r->tickets[j].prefix, r->tickets[i].prefix) == 0) j++;
        if (r->tickets[i].prefix[0] && (rc = reconcile_group(r, &r->tickets[i], j - i)) != WF_OK) return rc;
        i = j;
    }
    if ((rc = reconcile_unlisted_rows(r, nrows)) != WF_OK) return rc;
    return settle_strangers(r);
}

/* --apply on a tracker without a submission (lost, new) first rebuilds it
 * from JSM as sync would (tracker_rebuild.h): every request is matched to
 * its source row and recorded, and the source rows nothing carries are
 * queued, so that the comparison below starts from what sync itself would
 * learn. A tracker with rows is caught up by the orphan adoption below.
 * Uses the command's curl handle. */
static wf_err rebuild_from_jsm(recon *r)
{
    wf_job *job = r->job;
    wf_run run;
    wf_rebuild_report rep;
    char *password = NULL;
    int64_t cursor = 0;
    bool has_rows = false;
    wf_err rc = wf_tracker_cursor(job->tracker, &cursor, &has_rows);
    if (rc != WF_OK) {
        snprintf(job->err, sizeof job->err, "%s", wf_tracker_errmsg(job->tracker));
        return rc;
    }
    if (has_rows) return WF_OK;
    if (!job->source) {
        rc = wf_source_connect(&job->cfg, &job->source, &password, job->err, sizeof job->err);
        wf_log_add_secret(job->log, password);
        free(password);
        if (rc != WF_OK) return rc;
    }
    wf_run_init(&run, &job->cfg, job->log, job->tracker, job->source, NULL, r->run_id);
    run.jsm = r->jsm;
    rc = wf_rebuild_from_jsm(&run, "reconcile", &rep);
    run.jsm = NULL;   /* the command's handle, closed by the command */
    if (rc != WF_OK) {
        snprintf(job->err, sizeof job->err, "%s", run.fatal_msg);
    } else {
        char result[256];
        snprintf(result, sizeof result, "ok: %d requests, %d adopted (%d left attaching), %d known, %d queued, "
                 "%d unmatched", rep.requests, rep.adopted, rep.incomplete, rep.known, rep.queued, rep.unmatched);
        printf("rebuilt the tracker from %d request%s: %d submission%s adopted (%d left attaching for their files), "
               "%d source row%s queued\n", rep.requests, rep.requests == 1 ? "" : "s", rep.adopted, rep.adopted == 1 ? "" : "s",
               rep.incomplete, rep.queued, rep.queued == 1 ? "" : "s");
        r->stats.adopted += rep.adopted;
        rc = audit(r, NULL, NULL, "rebuild", result);
    }
    wf_run_cleanup(&run);
    return rc;
}

/* Backs the tracker up, opens the audit trail and starts a run, whose id
 * adopted requests record as created_run (so `rollback --run` can undo). */
static wf_err prepare_changes(recon *r)
{
    char backup[4096];
    wf_job *job = r->job;
    wf_err rc = wf_tracker_admin_backup(job->tracker, backup, sizeof backup, job->err, sizeof job->err);
    if (rc != WF_OK) return rc;
    job_out("tracker backed up to %s\n", backup);
    if ((rc = wf_audit_open(job->cfg.log_dir, "reconcile", &r->audit, job->err, sizeof job->err)) != WF_OK) return rc;
    if ((rc = audit(r, NULL, NULL, "backup", backup)) != WF_OK) return rc;
    if ((rc = wf_tracker_run_begin(job->tracker, "reconcile", &r->run_id)) != WF_OK)
        snprintf(job->err, sizeof job->err, "%s", wf_tracker_errmsg(job->tracker));
    wf_log_set_run(job->log, r->run_id);
    return rc;
}

static void print_totals(const recon *r, size_t nrows)
{
    int findings = r->orphans + r->ghosts + r->duplicates + r->missing + r->mismatches + r->unkeyed;
    if (findings == 0 && r->left == 0) {
        printf("reconcile: JSM and the tracker agree (%zu request%s, %zu tracker row%s with a request)\n", r->ntickets,
               r->ntickets == 1 ? "" : "s", nrows, nrows == 1 ? "" : "s");
        return;
    }
    printf("reconcile: %d orphan%s, %d ghost%s, %d duplicate%s, %d missing attachment%s, %d mismatch%s, "
           "%d unkeyed (%zu requests, %zu tracker rows with a request)",
           r->orphans, r->orphans == 1 ? "" : "s", r->ghosts, r->ghosts == 1 ? "" : "s", r->duplicates,
           r->duplicates == 1 ? "" : "s", r->missing, r->missing == 1 ? "" : "s", r->mismatches,
           r->mismatches == 1 ? "" : "es", r->unkeyed, r->ntickets, nrows);
    if (r->apply || r->delete_orphans) printf("; fixed %d, left %d\n", r->fixed, r->left);
    else printf("\nrun `wf2jsm reconcile --apply` to fix what can be fixed\n");
}

int cmd_reconcile(int argc, char **argv)
{
    static const struct option options[] = {
        {"apply", no_argument, NULL, 'a'},
        {"delete-orphans", no_argument, NULL, 'd'},
        {"confirm", no_argument, NULL, 'y'},
        {"env", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool apply = false, delete_orphans = false, confirm = false;
    const char *env_file = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'a': apply = true; break;
        case 'd': delete_orphans = true; break;
        case 'y': confirm = true; break;
        case 'e': env_file = optarg; break;
        case 'h': fputs(reconcile_usage, stdout); return 0;
        default: fputs(reconcile_usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wf2jsm reconcile: unexpected argument '%s'\n%s", argv[optind], reconcile_usage);
        return 2;
    }
    if (delete_orphans && !confirm) {
        fprintf(stderr, "wf2jsm reconcile: --delete-orphans deletes requests in JSM and is refused without "
                "--confirm; run `wf2jsm reconcile` first to see which, then add --confirm\n");
        return 2;
    }
    if (confirm && !delete_orphans) {
        fprintf(stderr, "wf2jsm reconcile: --confirm only goes with --delete-orphans\n");
        return 2;
    }

    wf_job job;
    recon r = {.job = &job, .apply = apply, .delete_orphans = delete_orphans};
    size_t nrows = 0;
    int status = 0;
    bool changes = apply || delete_orphans;
    unsigned needs = JOB_NEEDS_JIRA | JOB_NEEDS_TRACKER | (changes ? JOB_NEEDS_LOCK | JOB_NEEDS_LOG : 0);
    wf_err rc = job_setup(&job, "reconcile", env_file, needs);
    if (rc != WF_OK) goto out;
    if ((rc = wf_jsm_open(&job.cfg, job.log, &r.stats, NULL, &r.jsm)) != WF_OK) {
        snprintf(job.err, sizeof job.err, "cannot set up the HTTP client: %s", wf_strerror(rc));
        goto out;
    }
    if ((rc = check_label_carrier(&r)) != WF_OK || (rc = list_tickets(&r)) != WF_OK) goto out;
    if (changes && (rc = prepare_changes(&r)) != WF_OK) goto out;
    if (apply && !delete_orphans && (rc = rebuild_from_jsm(&r)) != WF_OK) goto out;
    rc = reconcile(&r, &nrows);
    if (rc == WF_OK) print_totals(&r, nrows);
    if (rc == WF_OK && r.left > 0) status = wf_exit_code(WF_ERR_ROWS_FAILED);
    if (r.run_id > 0) {
        wf_err fin = wf_tracker_run_finish(job.tracker, r.run_id, &r.stats, rc != WF_OK ? wf_exit_code(rc) : status,
                                           rc != WF_OK ? job.err : NULL);
        if (fin != WF_OK && rc == WF_OK) {
            rc = fin;
            snprintf(job.err, sizeof job.err, "%s", wf_tracker_errmsg(job.tracker));
        }
    }
out:
    if (rc != WF_OK) status = job_fail(&job, rc, NULL);
    for (size_t i = 0; i < r.ntickets; i++) {
        free(r.tickets[i].jsm_key);
        free(r.tickets[i].issue_id);
    }
    free(r.tickets);
    for (size_t i = 0; i < r.nstrangers; i++) {
        free(r.strangers[i].source_id);
        free(r.strangers[i].source_time);
    }
    free(r.strangers);
    wf_audit_close(r.audit);
    wf_jsm_close(r.jsm);
    job_teardown(&job);
    return status;
}
