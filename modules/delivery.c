/* delivery.c: the per-submission delivery protocol (see delivery.h).
 *
 * Each delivery walks these steps; every arrow is a tracker commit made
 * before the call it announces or right after the answer it records:
 *
 *   start ──(jsm_key known)──────────────────────────────┐
 *     │ record intent                                    │
 *     ├─(found by the batch search) record adopted ─> LIST
 *     └─> CREATE ─ok─> record created ─> UPLOAD <─missing─┘ (LIST)
 *                                          │ record attaching
 *                                          └─> ATTACH ─ok─> record delivered
 *
 * A step's failure is recorded (failed or parked, may_exist as the answer
 * allows) and ends the delivery for this run; the next tick resumes from
 * the tracker's state. */
#define _POSIX_C_SOURCE 200809L
#include "delivery.h"
#include "attachments.h"
#include "customers.h"
#include "manual_fixes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "process_batch"

typedef enum { STEP_START, STEP_CREATE, STEP_LIST, STEP_UPLOAD, STEP_ATTACH, STEP_DONE } step;

struct wf_delivery {
    wf_run *run;
    char key[WF_KEY_HEX_LEN + 1];
    char *source_id, *source_time;
    int64_t source_time_us;
    int attempts;                /* failed attempts before this run */
    bool may_exist_before;       /* the tracker says a create may have landed */
    bool must_list;              /* an attach may have landed: list before uploading */
    char *jsm_key, *issue_id;    /* known, adopted or created */
    char *found_key, *found_id;  /* what the batch search found */
    bool searched_ok;            /* the batch search answered for this key */
    bool search_failed;
    wf_mapped mapped;
    cJSON *dropped;              /* optional fields left out, for the manual-fix list */
    char *checksum;
    wf_attachment atts[WF_ATTACH_NFORMATS];
    size_t natts;
    wf_jsm_file files[WF_ATTACH_NFORMATS];
    size_t nfiles;               /* the files this run uploads */
    char **temp_ids;
    size_t ntemp;
    int create_tries;
    wf_submission sub;           /* a copy, for the customer look-up before creating */
    wf_customer customer;        /* who reports the request (customers.h) */
    bool attach_verified;        /* listed once after an attach answer that proved nothing */
    step step;
    bool in_call;
};

static const char *class_of(wf_err rc)
{
    switch (rc) {
    case WF_ERR_JIRA_TEMPORARY:
    case WF_ERR_JIRA_PROTOCOL:
    case WF_ERR_JIRA_UNREACHABLE: return "temporary";
    case WF_ERR_JIRA_REJECTED: return "user_fixable";
    case WF_ERR_JIRA_AUTH:
    case WF_ERR_JIRA_NOT_FOUND: return "admin_required";
    default: return "internal";
    }
}

/* Records a failed attempt, parking the row when it is out of attempts
 * (temporary failures never park: the next tick simply tries again). */
static wf_err record_failure(wf_run *run, const char *key, int attempts_before, const char *cls,
                             const char *message, bool may_exist, bool park_now)
{
    bool park = park_now || (strcmp(cls, "temporary") != 0 && attempts_before + 1 >= run->cfg->max_attempts);
    wf_err rc = wf_tracker_record_failure(run->tracker, key, cls, message, may_exist, park);
    if (rc != WF_OK) return wf_run_fail(run, rc, wf_tracker_errmsg(run->tracker));
    if (park) run->stats.parked++;
    else run->stats.failed++;
    wf_log_kv(run->log, MODULE, park ? "ERROR" : "WARN", "event", park ? "parked" : "failed", "key", key,
              "class", cls, "error", message, NULL);
    return WF_OK;
}

static void print_dry_run(const wf_submission *sub, const char *key, const wf_mapped *mapped, const wf_config *cfg)
{
    char *fields = cJSON_PrintUnformatted(mapped->values);
    printf("would create: id=%s key=%.16s fields=%s\n", sub->id, key, fields ? fields : "{}");
    for (size_t i = 0; i < mapped->nproblems; i++)
        printf("  would %s: %s\n", mapped->problems[i].required ? "park" : "drop field", mapped->problems[i].message);
    for (int f = 0; f < WF_ATTACH_NFORMATS; f++) {
        if ((f == WF_ATTACH_JSON && !cfg->attach_json) || (f == WF_ATTACH_CSV && !cfg->attach_csv)) continue;
        wf_attachment att;
        if (wf_attachment_render(sub, (wf_attach_format)f, &att) == WF_OK)
            printf("  would attach: %s (%zu bytes, %s)\n", att.filename, att.len, cfg->attach_public ? "public" : "internal");
        wf_attachment_free(&att);
    }
    free(fields);
}

/* A deep copy of sub's columns; false when out of memory (then what was
 * copied is freed by sub_free). */
static bool sub_copy(wf_submission *to, const wf_submission *from)
{
    char **names = calloc(from->ncols + 1, sizeof *names), **values = calloc(from->ncols + 1, sizeof *values);
    to->names = (const char *const *)names;
    to->values = (const char *const *)values;
    to->ncols = names && values ? from->ncols : 0;
    for (size_t i = 0; i < to->ncols; i++) {
        if (!(names[i] = strdup(from->names[i]))) return false;
        if (from->values[i] && !(values[i] = strdup(from->values[i]))) return false;
    }
    to->time_us = from->time_us;
    return names && values;
}

static void sub_free(wf_submission *sub)
{
    for (size_t i = 0; i < sub->ncols; i++) {
        free((char *)sub->names[i]);
        free((char *)sub->values[i]);
    }
    free((void *)sub->names);
    free((void *)sub->values);
    memset(sub, 0, sizeof *sub);
}

void wf_delivery_free(wf_delivery *d)
{
    if (!d) return;
    sub_free(&d->sub);
    wf_customer_free(&d->customer);
    free(d->source_id);
    free(d->source_time);
    free(d->jsm_key);
    free(d->issue_id);
    free(d->found_key);
    free(d->found_id);
    wf_mapped_free(&d->mapped);
    cJSON_Delete(d->dropped);
    free(d->checksum);
    for (size_t i = 0; i < d->natts; i++) wf_attachment_free(&d->atts[i]);
    wf_jsm_free_names(d->temp_ids, d->ntemp);
    free(d);
}

wf_err wf_delivery_new(wf_run *run, const wf_submission *sub, const char *key, const wf_tracker_row *row,
                       wf_delivery **out)
{
    *out = NULL;
    wf_delivery *d = calloc(1, sizeof *d);
    wf_err rc = WF_ERR_NOMEM;
    if (!d) return wf_run_fail(run, rc, "out of memory");
    d->run = run;
    snprintf(d->key, sizeof d->key, "%s", key);
    if ((rc = wf_map_submission(&run->mapping, &run->fields, sub, key, run->cfg->key_field, &d->mapped)) != WF_OK)
        goto nomem;
    if (run->dry_run) {
        print_dry_run(sub, key, &d->mapped, run->cfg);
        wf_delivery_free(d);
        return WF_OK;
    }
    rc = WF_ERR_NOMEM;
    if (!(d->dropped = cJSON_CreateArray()) || !(d->source_id = strdup(sub->id)) ||
        !(d->source_time = strdup(sub->time_text ? sub->time_text : "")) ||
        !(d->checksum = wf_mapped_checksum(d->mapped.values)))
        goto nomem;
    d->source_time_us = sub->time_us;
    if (!sub_copy(&d->sub, sub)) goto nomem;
    d->sub.id = d->source_id;
    d->sub.time_text = d->source_time;
    bool want[WF_ATTACH_NFORMATS] = {run->cfg->attach_json, run->cfg->attach_csv};
    for (int f = 0; f < WF_ATTACH_NFORMATS; f++) {
        if (!want[f]) continue;
        if (wf_attachment_render(sub, (wf_attach_format)f, &d->atts[d->natts]) != WF_OK) goto nomem;
        d->natts++;
    }
    if (row) {
        d->attempts = row->attempts;
        d->may_exist_before = row->may_exist;
        d->must_list = strcmp(row->state, "created") != 0;
        if (row->jsm_key && !(d->jsm_key = strdup(row->jsm_key))) goto nomem;
        if (row->jsm_issue_id && !(d->issue_id = strdup(row->jsm_issue_id))) goto nomem;
    }
    *out = d;
    return WF_OK;
nomem:
    wf_delivery_free(d);
    return wf_run_fail(run, WF_ERR_NOMEM, "out of memory while mapping");
}

/* ---- the batched search -------------------------------------------------- */

static bool would_create(const wf_delivery *d)
{
    return d && !d->jsm_key;
}

/* The key a found issue carries, matched against the batch's keys. */
static wf_delivery *owner_of(wf_run *run, const cJSON *issue, wf_delivery **ds, size_t n, bool via_label)
{
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(issue, "fields");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, via_label ? "labels" : run->cfg->key_field), *it;
    for (size_t i = 0; i < n; i++) {
        if (!would_create(ds[i])) continue;
        if (via_label) {
            char label[96];
            wf_key_label(ds[i]->key, label, sizeof label);
            cJSON_ArrayForEach(it, v)
                if (cJSON_IsString(it) && strcmp(it->valuestring, label) == 0) return ds[i];
        } else if (cJSON_IsString(v) && strstr(v->valuestring, ds[i]->key)) {
            return ds[i];
        }
    }
    return NULL;
}

wf_err wf_deliveries_lookup(wf_run *run, wf_delivery **ds, size_t n, int *calls)
{
    *calls = 0;
    size_t asking = 0;
    for (size_t i = 0; i < n; i++) asking += would_create(ds[i]);
    if (asking == 0) return WF_OK;
    wf_jsm *jsm;
    wf_err rc = wf_run_jsm(run, &jsm);
    if (rc != WF_OK) return wf_run_fail(run, rc, run->fatal_msg);
    bool via_label = wf_fields_key_carrier(&run->fields, run->cfg->key_field) == WF_KEY_VIA_LABEL;
    /* 30 keys make a JQL of about 1.5 kB: well within what Jira takes. */
    size_t cap = 64 + asking * (WF_KEY_HEX_LEN + 40) + (run->cfg->key_field ? asking * strlen(run->cfg->key_field) : 0);
    char *jql = malloc(cap), fields[160];
    if (!jql) return wf_run_fail(run, WF_ERR_NOMEM, "out of memory");
    size_t pos = 0;
    const char *num = !via_label && strncmp(run->cfg->key_field, "customfield_", 12) == 0 ? run->cfg->key_field + 12
                                                                                          : NULL;
    pos += (size_t)snprintf(jql + pos, cap - pos, "%s", via_label ? "labels in (" : "");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!would_create(ds[i])) continue;
        if (via_label) {
            char label[96];
            wf_key_label(ds[i]->key, label, sizeof label);
            pos += (size_t)snprintf(jql + pos, cap - pos, "%s\"%s\"", first ? "" : ", ", label);
        } else if (num) {
            pos += (size_t)snprintf(jql + pos, cap - pos, "%scf[%s] ~ \"%s\"", first ? "" : " OR ", num, ds[i]->key);
        } else {
            pos += (size_t)snprintf(jql + pos, cap - pos, "%s%s ~ \"%s\"", first ? "" : " OR ", run->cfg->key_field,
                                    ds[i]->key);
        }
        first = false;
    }
    snprintf(jql + pos, cap - pos, "%s ORDER BY key ASC", via_label ? ")" : "");
    snprintf(fields, sizeof fields, "[\"%s\"]", via_label ? "labels" : run->cfg->key_field);
    long before = wf_jsm_search_requests(jsm);
    cJSON *issues = NULL;
    rc = wf_jsm_search(jsm, jql, fields, &issues);
    *calls = (int)(wf_jsm_search_requests(jsm) - before);
    free(jql);
    if (rc != WF_OK) {
        if (wf_run_is_fatal(rc)) return wf_run_fail(run, rc, wf_jsm_last_error(jsm));
        /* Not knowing is no licence to create: the would-be creates wait
         * for the next tick (nothing is recorded for rows never seen, so
         * the cursor cannot move past them). */
        char asked[16];
        snprintf(asked, sizeof asked, "%zu", asking);
        wf_log_kv(run->log, MODULE, "WARN", "event", "lookup_failed", "submissions", asked, "error",
                  wf_jsm_last_error(jsm), "detail", "their creates wait for the next tick", NULL);
        for (size_t i = 0; i < n; i++)
            if (would_create(ds[i])) ds[i]->search_failed = true;
        return WF_ERR_JIRA_TEMPORARY;
    }
    const cJSON *issue;
    cJSON_ArrayForEach(issue, issues) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(issue, "key");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(issue, "id");
        wf_delivery *d = cJSON_IsString(k) ? owner_of(run, issue, ds, n, via_label) : NULL;
        if (!d) continue;
        if (d->found_key) {
            /* ORDER BY key: the first is kept, the others are reconcile's. */
            wf_log_kv(run->log, MODULE, "WARN", "event", "duplicate_requests", "key", d->key, "adopted", d->found_key,
                      "also", k->valuestring, "hint", "run `wf2jsm reconcile` to list them", NULL);
            continue;
        }
        d->found_key = strdup(k->valuestring);
        d->found_id = cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
    }
    cJSON_Delete(issues);
    for (size_t i = 0; i < n; i++)
        if (would_create(ds[i])) ds[i]->searched_ok = true;
    return WF_OK;
}

/* ---- the steps ---------------------------------------------------------- */

static void advance(wf_delivery *d);

/* Ends the delivery (for this run). */
static void finish(wf_delivery *d)
{
    d->step = STEP_DONE;
    if (d->run->on_progress) d->run->on_progress(&d->run->stats, d->run->progress_ctx);
}

static bool run_stopping(const wf_delivery *d)
{
    return d->run->fatal != WF_OK || (d->run->stop && *d->run->stop);
}

static void tracker_failed(wf_delivery *d)
{
    wf_run_fail(d->run, WF_ERR_TRACKER, wf_tracker_errmsg(d->run->tracker));
    finish(d);
}

/* A failed call of the attachment steps. */
static void attachments_failed(wf_delivery *d, const wf_jsm_result *res)
{
    wf_run *run = d->run;
    run->stats.attachments_failed += d->nfiles ? (int)d->nfiles : 1;
    if (wf_run_is_fatal(res->rc)) {
        wf_run_fail(run, res->rc, res->error);
    } else {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s%s", res->error,
                 res->rc == WF_ERR_JIRA_NOT_FOUND ? " (the request is gone from JSM: run `wf2jsm reconcile`)" : "");
        record_failure(run, d->key, d->attempts, res->rc == WF_ERR_JIRA_NOT_FOUND ? "user_fixable" : class_of(res->rc),
                       msg, true, false);
    }
    finish(d);
}

static void delivered(wf_delivery *d)
{
    wf_run *run = d->run;
    if (wf_tracker_record_delivered(run->tracker, d->key, d->checksum) != WF_OK) return tracker_failed(d);
    run->stats.delivered++;
    char nf[16];
    snprintf(nf, sizeof nf, "%zu", d->nfiles);
    wf_log_kv(run->log, MODULE, "INFO", "event", "delivered", "key", d->key, "id", d->source_id, "jsm", d->jsm_key,
              "attachments_uploaded", nf, NULL);
    finish(d);
}

static void on_attached(wf_jsm_result *res, void *ctx)
{
    wf_delivery *d = ctx;
    d->in_call = false;
    if (res->rc == WF_OK) {
        d->run->stats.attachments_uploaded += (int)d->nfiles;
        return delivered(d);
    }
    if (res->maybe_sent && !d->attach_verified && !wf_run_is_fatal(res->rc) && !run_stopping(d)) {
        /* The attach may have landed: look before anything is sent again.
         * The attachment list, unlike search, is current at once. */
        d->attach_verified = true;
        wf_log_kv(d->run->log, MODULE, "WARN", "event", "attach_unconfirmed", "key", d->key, "jsm", d->jsm_key,
                  "error", res->error, "detail", "listing the request's attachments before any resend", NULL);
        d->step = STEP_LIST;
        return advance(d);
    }
    attachments_failed(d, res);
}

static void on_uploaded(wf_jsm_result *res, void *ctx)
{
    wf_delivery *d = ctx;
    d->in_call = false;
    if (res->rc != WF_OK) return attachments_failed(d, res);
    wf_jsm_free_names(d->temp_ids, d->ntemp);
    d->temp_ids = res->names;
    d->ntemp = res->nnames;
    res->names = NULL;
    res->nnames = 0;
    /* From here on an attach call may land without us hearing back:
     * recovery must list before it uploads again. */
    if (wf_tracker_record_attaching(d->run->tracker, d->key) != WF_OK) return tracker_failed(d);
    d->step = STEP_ATTACH;
    advance(d);
}

static void on_listed(wf_jsm_result *res, void *ctx)
{
    wf_delivery *d = ctx;
    d->in_call = false;
    if (res->rc != WF_OK) return attachments_failed(d, res);
    d->nfiles = 0;
    for (size_t i = 0; i < d->natts; i++) {
        bool there = false;
        for (size_t j = 0; j < res->nnames; j++) there |= strcmp(res->names[j], d->atts[i].filename) == 0;
        if (!there)
            d->files[d->nfiles++] = (wf_jsm_file){d->atts[i].filename, d->atts[i].mime_type, d->atts[i].data,
                                                  d->atts[i].len};
    }
    if (d->nfiles == 0) return delivered(d);
    d->step = STEP_UPLOAD;
    advance(d);
}

static void all_files(wf_delivery *d)
{
    d->nfiles = 0;
    for (size_t i = 0; i < d->natts; i++)
        d->files[d->nfiles++] = (wf_jsm_file){d->atts[i].filename, d->atts[i].mime_type, d->atts[i].data,
                                              d->atts[i].len};
}

static void on_created(wf_jsm_result *res, void *ctx)
{
    wf_delivery *d = ctx;
    wf_run *run = d->run;
    d->in_call = false;
    if (res->rc == WF_OK) {
        d->jsm_key = res->issue_key;
        d->issue_id = res->issue_id;
        res->issue_key = res->issue_id = NULL;
        if (wf_customer_add_fix(&d->customer, d->dropped) != 0) {
            wf_run_fail(run, WF_ERR_NOMEM, "out of memory");
            return finish(d);
        }
        if (wf_tracker_record_created(run->tracker, d->key, d->jsm_key, d->issue_id, run->run_id, false) != WF_OK)
            return tracker_failed(d);
        run->stats.created++;
        wf_log_kv(run->log, MODULE, "INFO", "event", "created", "key", d->key, "id", d->source_id, "jsm", d->jsm_key,
                  NULL);
        if (wf_record_manual_fixes(run, d->key, d->jsm_key, d->dropped) != WF_OK) return finish(d);
        all_files(d);
        d->step = d->nfiles ? STEP_UPLOAD : STEP_DONE;
        if (!d->nfiles) return delivered(d);
        return advance(d);
    }
    if (res->rc == WF_ERR_JIRA_REJECTED && d->create_tries == 1 && !res->maybe_sent &&
        wf_customer_refused_by(&d->customer, run->tracker, run->cfg, res->field_errors, res->error))
        return advance(d);   /* again, reported by the job's account */
    if (res->rc == WF_ERR_JIRA_REJECTED && d->create_tries == 1 && !res->maybe_sent &&
        wf_drop_rejected_optional(run, &d->mapped, res->field_errors, d->dropped)) {
        /* A refused optional field must not cost the whole ticket. */
        free(d->checksum);
        d->checksum = wf_mapped_checksum(d->mapped.values);
        return advance(d);
    }
    if (wf_run_is_fatal(res->rc) || res->rc == WF_ERR_JIRA_NOT_FOUND) {
        /* The rows are fine; the run is not. Put the row back as it was. */
        if (!res->maybe_sent) wf_tracker_record_not_sent(run->tracker, d->key, d->may_exist_before);
        wf_run_fail(run, res->rc, res->error);
    } else {
        record_failure(run, d->key, d->attempts, class_of(res->rc), res->error, d->may_exist_before || res->maybe_sent,
                       res->rc == WF_ERR_JIRA_REJECTED);
    }
    finish(d);
}

/* The create path's first step: intent, then adopt what the batch search
 * found or create. */
static void begin_create(wf_delivery *d)
{
    wf_run *run = d->run;
    if (d->search_failed) {
        /* Never seen rows stay unrecorded; known ones count a failed try. */
        if (d->attempts > 0 || d->may_exist_before)
            record_failure(run, d->key, d->attempts, "temporary", "the search before creating failed",
                           d->may_exist_before, false);
        else
            run->stats.failed++;
        return finish(d);
    }
    if (wf_tracker_record_intent(run->tracker, d->key, d->source_id, d->source_time, d->source_time_us,
                                 run->run_id) != WF_OK)
        return tracker_failed(d);
    for (size_t i = 0; i < d->mapped.nproblems; i++) {
        if (d->mapped.problems[i].required) {
            record_failure(run, d->key, d->attempts, "user_fixable", d->mapped.problems[i].message,
                           d->may_exist_before, true);
            return finish(d);
        }
    }
    if (d->found_key) {
        d->jsm_key = d->found_key;
        d->issue_id = d->found_id;
        d->found_key = d->found_id = NULL;
        if (wf_tracker_record_created(run->tracker, d->key, d->jsm_key, d->issue_id, run->run_id, true) != WF_OK)
            return tracker_failed(d);
        run->stats.adopted++;
        wf_log_kv(run->log, MODULE, "INFO", "event", "adopted", "key", d->key, "jsm", d->jsm_key, NULL);
        d->step = STEP_LIST;
        return advance(d);
    }
    for (size_t i = 0; i < d->mapped.nproblems; i++) {
        cJSON *fix = cJSON_CreateObject();
        cJSON_AddStringToObject(fix, "field", d->mapped.problems[i].field_id);
        cJSON_AddStringToObject(fix, "value", d->mapped.problems[i].value ? d->mapped.problems[i].value : "");
        cJSON_AddStringToObject(fix, "message", d->mapped.problems[i].message);
        cJSON_AddItemToArray(d->dropped, fix);
    }
    /* The submitter reports the request when they can be found or made a
     * customer (modules/customers.c); otherwise the job's account does.
     * The look-up's calls block this one delivery's start; the others in
     * flight move on meanwhile. */
    char customer_err[1024];
    wf_err rc = wf_customer_resolve(run->jsm, run->tracker, run->cfg, run->log, &d->sub, &d->customer, customer_err,
                                    sizeof customer_err);
    if (rc != WF_OK) {
        wf_tracker_record_not_sent(run->tracker, d->key, d->may_exist_before);
        if (wf_err_stops_run(rc)) wf_run_fail(run, rc, customer_err);
        else record_failure(run, d->key, d->attempts, class_of(rc), customer_err, d->may_exist_before, false);
        return finish(d);
    }
    d->step = STEP_CREATE;
    advance(d);
}

/* Sends the current step's call, unless the run is stopping: then the
 * delivery ends here, its last step recorded, for the next run to resume. */
static void advance(wf_delivery *d)
{
    wf_run *run = d->run;
    if (d->step != STEP_START && run_stopping(d)) return finish(d);
    switch (d->step) {
    case STEP_START:
        if (d->jsm_key) {
            d->step = d->must_list ? STEP_LIST : STEP_UPLOAD;
            if (!d->must_list) all_files(d);
            return advance(d);
        }
        return begin_create(d);
    case STEP_CREATE:
        d->create_tries++;
        d->in_call = true;
        return wf_jsm_start_create(run->jsm, d->mapped.values, d->customer.account_id, on_created, d);
    case STEP_LIST:
        d->in_call = true;
        return wf_jsm_start_list_attachments(run->jsm, d->jsm_key, on_listed, d);
    case STEP_UPLOAD:
        if (d->nfiles == 0) return delivered(d);
        d->in_call = true;
        return wf_jsm_start_upload(run->jsm, d->files, d->nfiles, on_uploaded, d);
    case STEP_ATTACH:
        d->in_call = true;
        return wf_jsm_start_attach(run->jsm, d->jsm_key, d->temp_ids, d->ntemp, run->cfg->attach_public, on_attached,
                                   d);
    case STEP_DONE:
        return;
    }
}

/* ---- the pipeline --------------------------------------------------------- */

typedef struct wf_pipeline {
    wf_delivery **ds;        /* in start order; [0, next) started */
    size_t n, cap, next;
} wf_pipeline;

static wf_pipeline *pipeline_of(wf_run *run)
{
    if (!run->pipeline) run->pipeline = calloc(1, sizeof *run->pipeline);
    return run->pipeline;
}

wf_err wf_pipeline_add(wf_run *run, wf_delivery **ds, size_t n)
{
    wf_pipeline *p = pipeline_of(run);
    if (p && p->n + n > p->cap) {
        size_t cap = (p->n + n) * 2;
        wf_delivery **nd = realloc(p->ds, cap * sizeof *nd);
        if (nd) {
            p->ds = nd;
            p->cap = cap;
        }
    }
    if (!p || p->n + n > p->cap) {
        for (size_t i = 0; i < n; i++) wf_delivery_free(ds[i]);
        return wf_run_fail(run, WF_ERR_NOMEM, "out of memory");
    }
    memcpy(p->ds + p->n, ds, n * sizeof *ds);
    p->n += n;
    return WF_OK;
}

bool wf_pipeline_holds(const wf_run *run, const char *key)
{
    const wf_pipeline *p = run->pipeline;
    for (size_t i = 0; p && i < p->n; i++)
        if (p->ds[i]->step != STEP_DONE && strcmp(p->ds[i]->key, key) == 0) return true;
    return false;
}

size_t wf_pipeline_size(const wf_run *run)
{
    return run->pipeline ? run->pipeline->n : 0;
}

int64_t wf_pipeline_newest_us(const wf_run *run)
{
    int64_t newest = INT64_MIN;
    const wf_pipeline *p = run->pipeline;
    for (size_t i = 0; p && i < p->n; i++)
        if (p->ds[i]->source_time_us > newest) newest = p->ds[i]->source_time_us;
    return newest;
}

/* Frees the finished deliveries, keeping the order of the others: memory
 * stays one batch or two whatever the backlog. */
static void compact(wf_pipeline *p)
{
    size_t w = 0, started = 0;
    for (size_t i = 0; i < p->n; i++) {
        wf_delivery *d = p->ds[i];
        if (i < p->next && d->step == STEP_DONE) {
            wf_delivery_free(d);
            continue;
        }
        if (i < p->next) started++;
        p->ds[w++] = d;
    }
    p->n = w;
    p->next = started;
}

wf_err wf_pipeline_drive(wf_run *run, size_t until_below)
{
    wf_pipeline *p = run->pipeline;
    if (!p || p->n == 0) return run->fatal;
    wf_jsm *jsm;
    wf_err rc = wf_run_jsm(run, &jsm);
    if (rc != WF_OK) return wf_run_fail(run, rc, run->fatal_msg);
    for (;;) {
        compact(p);
        if (p->n < until_below || p->n == 0) break;
        bool stopping = run->fatal != WF_OK || (run->stop && *run->stop);
        /* Start in source order while the window has room: a delivery
         * holds at most one call, so active deliveries bound the calls. */
        while (p->next < p->n && !stopping && (int)p->next < wf_jsm_figures(jsm).window) {
            wf_delivery *d = p->ds[p->next++];
            d->step = STEP_START;
            advance(d);
            stopping = run->fatal != WF_OK || (run->stop && *run->stop);
            if (d->step == STEP_DONE) compact(p);
        }
        if (p->next == 0 && (p->n == 0 || stopping)) break;
        wf_jsm_pump(jsm, 200);
    }
    return run->fatal;
}

void wf_pipeline_free(wf_run *run)
{
    wf_pipeline *p = run->pipeline;
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) wf_delivery_free(p->ds[i]);
    free(p->ds);
    free(p);
    run->pipeline = NULL;
}
