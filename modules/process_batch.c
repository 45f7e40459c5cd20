/* process_batch.c: the per-submission delivery protocol. */
#define _POSIX_C_SOURCE 200809L
#include "process_batch.h"
#include "attachments.h"
#include "customers.h"
#include "tracker_admin.h"
#include "tracker_rebuild.h"
#include "unique_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "process_batch"

typedef struct {
    wf_run *run;
    int64_t skip_before_us;    /* rows older than this came from the retry query */
    int worked;                /* submissions that needed work this batch */
    bool columns_checked;
} batch_state;

void wf_run_init(wf_run *run, const wf_config *cfg, wf_log *log, wf_tracker *tracker,
                 wf_source *source, const volatile sig_atomic_t *stop, long run_id)
{
    memset(run, 0, sizeof *run);
    run->cfg = cfg;
    run->log = log;
    run->tracker = tracker;
    run->source = source;
    run->stop = stop;
    run->run_id = run_id;
}

void wf_run_cleanup(wf_run *run)
{
    wf_jsm_close(run->jsm);
    run->jsm = NULL;
    wf_key_hasher_free(run->hasher);
    run->hasher = NULL;
    wf_fields_free(&run->fields);
    wf_mapping_free(&run->mapping);
    run->mapping_ready = false;
}

wf_err wf_run_jsm(wf_run *run, wf_jsm **out)
{
    if (!run->jsm) {
        wf_err rc = wf_jsm_open(run->cfg, run->log, &run->stats, run->stop, &run->jsm);
        if (rc != WF_OK) {
            snprintf(run->fatal_msg, sizeof run->fatal_msg, "cannot set up the HTTP client: %s", wf_strerror(rc));
            return rc;
        }
    }
    *out = run->jsm;
    return WF_OK;
}

static wf_err set_fatal(wf_run *run, wf_err rc, const char *msg)
{
    run->fatal = rc;
    snprintf(run->fatal_msg, sizeof run->fatal_msg, "%s", msg);
    wf_log_redact(run->log, run->fatal_msg);
    wf_log_kv(run->log, MODULE, "ERROR", "event", "run_stopped", "class", wf_strerror(rc), "error", run->fatal_msg, NULL);
    return rc;
}

wf_err wf_run_load_mapping(wf_run *run)
{
    if (run->mapping_ready) return WF_OK;
    char meta_name[128], err[1024];
    snprintf(meta_name, sizeof meta_name, "fields:%s:%s", run->cfg->service_desk_id, run->cfg->request_type_id);
    char *raw = NULL;
    wf_err rc = wf_tracker_meta_get(run->tracker, meta_name, &raw);
    if (rc != WF_OK) return set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
    if (!raw) {
        wf_jsm *jsm;
        if ((rc = wf_run_jsm(run, &jsm)) != WF_OK) return set_fatal(run, rc, run->fatal_msg);
        if ((rc = wf_jsm_get_request_type_fields(jsm, &raw)) != WF_OK) {
            if (rc == WF_ERR_JIRA_TEMPORARY || rc == WF_ERR_JIRA_REJECTED || rc == WF_ERR_JIRA_PROTOCOL)
                rc = WF_ERR_JIRA_UNREACHABLE;
            return set_fatal(run, rc, wf_jsm_last_error(jsm));
        }
        if (!run->dry_run && (rc = wf_tracker_meta_set(run->tracker, meta_name, raw)) != WF_OK) {
            free(raw);
            return set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
        }
    }
    rc = wf_fields_parse(raw, &run->fields, err, sizeof err);
    free(raw);
    if (rc != WF_OK) return set_fatal(run, rc, err);
    if (wf_fields_key_carrier(&run->fields, run->cfg->key_field) == WF_KEY_VIA_NOTHING) {
        snprintf(err, sizeof err, "request type %s has no labels field to carry the submission key%s%s%s: "
                 "add Labels to the request type, or set SYNC_KEY_FIELD to a text field's id",
                 run->cfg->request_type_id, run->cfg->key_field ? " and SYNC_KEY_FIELD=" : "",
                 run->cfg->key_field ? run->cfg->key_field : "", run->cfg->key_field ? " is not one of its fields" : "");
        return set_fatal(run, WF_ERR_CONFIG, err);
    }
    if ((rc = wf_mapping_load(run->cfg->field_mapping, &run->fields, &run->mapping, err, sizeof err)) != WF_OK)
        return set_fatal(run, rc, err);
    run->mapping_ready = true;
    return WF_OK;
}

wf_err wf_run_window_start(wf_run *run, int64_t *from_us)
{
    int64_t cursor = 0;
    bool has_cursor = false;
    wf_err rc = wf_tracker_cursor(run->tracker, &cursor, &has_cursor);
    if (rc != WF_OK) return set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
    if (!has_cursor) {
        *from_us = INT64_MIN;
        return WF_OK;
    }
    /* A future-dated row must not drag the window past rows still to come. */
    int64_t now = wf_now_us();
    if (cursor > now) cursor = now;
    *from_us = cursor - (int64_t)run->cfg->lookback_seconds * 1000000;
    return WF_OK;
}

/* ---- helpers for one submission --------------------------------------- */

static const char *class_of(wf_err rc)
{
    switch (rc) {
    case WF_ERR_JIRA_TEMPORARY:
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
    if (rc != WF_OK) return set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
    if (park) run->stats.parked++;
    else run->stats.failed++;
    wf_log_kv(run->log, MODULE, park ? "ERROR" : "WARN", "event", park ? "parked" : "failed", "key", key,
              "class", cls, "error", message, NULL);
    return WF_OK;
}

static int is_fatal(wf_err rc)
{
    return rc == WF_ERR_JIRA_AUTH || rc == WF_ERR_JIRA_UNREACHABLE || rc == WF_ERR_TRACKER ||
           rc == WF_ERR_NOMEM || rc == WF_ERR_CONFIG || rc == WF_ERR_DB;
}

/* Finds the request that carries key in JSM. *jsm_key is NULL when none. */
static wf_err find_by_key(wf_run *run, wf_jsm *jsm, const char *key, char **jsm_key, char **issue_id)
{
    char jql[256];
    *jsm_key = *issue_id = NULL;
    if (wf_fields_key_carrier(&run->fields, run->cfg->key_field) == WF_KEY_VIA_LABEL) {
        char label[96];
        wf_key_label(key, label, sizeof label);
        snprintf(jql, sizeof jql, "labels = \"%s\" ORDER BY key ASC", label);
    } else {
        const char *num = strncmp(run->cfg->key_field, "customfield_", 12) == 0 ? run->cfg->key_field + 12 : NULL;
        if (num) snprintf(jql, sizeof jql, "cf[%s] ~ \"%s\" ORDER BY key ASC", num, key);
        else snprintf(jql, sizeof jql, "%s ~ \"%s\" ORDER BY key ASC", run->cfg->key_field, key);
    }
    cJSON *issues = NULL;
    wf_err rc = wf_jsm_search(jsm, jql, "[\"labels\"]", &issues);
    if (rc != WF_OK) return rc;
    int n = cJSON_GetArraySize(issues);
    if (n > 0) {
        const cJSON *first = cJSON_GetArrayItem(issues, 0);
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(first, "key");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(first, "id");
        if (cJSON_IsString(k)) *jsm_key = strdup(k->valuestring);
        if (cJSON_IsString(id)) *issue_id = strdup(id->valuestring);
        if (n > 1)
            wf_log_kv(run->log, MODULE, "WARN", "event", "duplicate_requests", "key", key, "adopted", *jsm_key,
                      "hint", "run `wf2jsm reconcile` to list them", NULL);
    }
    cJSON_Delete(issues);
    return WF_OK;
}

/* JSM refused some fields. If all of them are optional they are dropped
 * (and listed in *dropped for the manual-fix list) and true is returned, so
 * that the request can be created without them. */
static bool drop_rejected_optional(wf_run *run, wf_mapped *mapped, const cJSON *errors, cJSON *dropped)
{
    const cJSON *e;
    if (!cJSON_IsObject(errors) || !errors->child) return false;
    cJSON_ArrayForEach(e, errors) {
        const wf_field_def *f = wf_fields_find(&run->fields, e->string);
        if (!f || f->required || strcmp(f->id, "summary") == 0 || strcmp(f->id, "labels") == 0) return false;
    }
    cJSON_ArrayForEach(e, errors) {
        cJSON *fix = cJSON_CreateObject();
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(mapped->values, e->string);
        char *value = v ? cJSON_PrintUnformatted(v) : NULL;
        cJSON_AddStringToObject(fix, "field", e->string);
        cJSON_AddStringToObject(fix, "value", value ? value : "");
        cJSON_AddStringToObject(fix, "message", cJSON_IsString(e) ? e->valuestring : "rejected");
        cJSON_AddItemToArray(dropped, fix);
        free(value);
        wf_mapped_drop_field(mapped, e->string);
    }
    return true;
}

static wf_err record_manual_fixes(wf_run *run, const char *key, const char *jsm_key, const cJSON *dropped)
{
    const cJSON *fix;
    cJSON_ArrayForEach(fix, dropped) {
        const char *field = cJSON_GetObjectItemCaseSensitive(fix, "field")->valuestring;
        const char *value = cJSON_GetObjectItemCaseSensitive(fix, "value")->valuestring;
        const char *message = cJSON_GetObjectItemCaseSensitive(fix, "message")->valuestring;
        wf_err rc = wf_tracker_add_manual_fix(run->tracker, key, jsm_key, field, value, message);
        if (rc != WF_OK) return set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
        run->stats.manual_fixes++;
        wf_log_kv(run->log, MODULE, "WARN", "event", "manual_fix", "key", key, "jsm", jsm_key, "field", field,
                  "value", value, "error", message, NULL);
    }
    return WF_OK;
}

/* Uploads the attachments that are not on the request yet. With
 * must_list, the request's attachments are listed first (an earlier attach
 * call may have landed, or the request was adopted). */
static wf_err deliver_attachments(wf_run *run, wf_jsm *jsm, const wf_submission *sub, const char *key,
                                  const char *jsm_key, bool must_list, int attempts, const char *checksum)
{
    wf_attachment atts[WF_ATTACH_NFORMATS];
    memset(atts, 0, sizeof atts);
    wf_jsm_file files[WF_ATTACH_NFORMATS];
    char **present = NULL, **temp_ids = NULL;
    size_t npresent = 0, nfiles = 0;
    wf_err rc = WF_OK;
    bool want[WF_ATTACH_NFORMATS] = {run->cfg->attach_json, run->cfg->attach_csv};

    if (must_list) {
        rc = wf_jsm_list_attachments(jsm, jsm_key, &present, &npresent);
        if (rc != WF_OK) goto failed;
    }
    for (int f = 0; f < WF_ATTACH_NFORMATS; f++) {
        if (!want[f]) continue;
        char name[96];
        wf_attachment_filename(sub->id, (wf_attach_format)f, name, sizeof name);
        bool there = false;
        for (size_t i = 0; i < npresent; i++) there |= strcmp(present[i], name) == 0;
        if (there) continue;
        if ((rc = wf_attachment_render(sub, (wf_attach_format)f, &atts[nfiles])) != WF_OK) goto out;
        files[nfiles] = (wf_jsm_file){atts[nfiles].filename, atts[nfiles].mime_type, atts[nfiles].data, atts[nfiles].len};
        nfiles++;
    }
    if (nfiles > 0) {
        if ((rc = wf_jsm_upload_temporary(jsm, files, nfiles, &temp_ids)) != WF_OK) goto failed;
        /* From here on an attach call may land without us hearing back:
         * recovery must list before it uploads again. */
        if ((rc = wf_tracker_record_attaching(run->tracker, key)) != WF_OK) {
            set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
            goto out;
        }
        if ((rc = wf_jsm_attach_temporary(jsm, jsm_key, temp_ids, nfiles, run->cfg->attach_public)) != WF_OK)
            goto failed;
        run->stats.attachments_uploaded += (int)nfiles;
    }
    if ((rc = wf_tracker_record_delivered(run->tracker, key, checksum)) != WF_OK) {
        set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
        goto out;
    }
    run->stats.delivered++;
    char nf[16];
    snprintf(nf, sizeof nf, "%zu", nfiles);
    wf_log_kv(run->log, MODULE, "INFO", "event", "delivered", "key", key, "id", sub->id, "jsm", jsm_key,
              "attachments_uploaded", nf, NULL);
    goto out;

failed:
    run->stats.attachments_failed += nfiles ? (int)nfiles : 1;
    if (is_fatal(rc)) {
        set_fatal(run, rc, wf_jsm_last_error(jsm));
    } else {
        char msg[1200];
        snprintf(msg, sizeof msg, "%s%s", wf_jsm_last_error(jsm),
                 rc == WF_ERR_JIRA_NOT_FOUND ? " (the request is gone from JSM: run `wf2jsm reconcile`)" : "");
        wf_err rec = record_failure(run, key, attempts, rc == WF_ERR_JIRA_NOT_FOUND ? "user_fixable" : class_of(rc),
                                    msg, true, false);
        rc = rec;
    }
out:
    for (size_t i = 0; i < nfiles; i++) wf_attachment_free(&atts[i]);
    wf_jsm_free_names(present, npresent);
    wf_jsm_free_names(temp_ids, nfiles);
    return rc;
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

/* Creates the request (or adopts the one an earlier, interrupted attempt
 * made), then its attachments. row is the tracker's row or NULL. */
static wf_err deliver(wf_run *run, const wf_submission *sub, const char *key, const wf_tracker_row *row)
{
    wf_mapped mapped = {0};
    cJSON *dropped = cJSON_CreateArray();
    char *jsm_key = NULL, *issue_id = NULL, *checksum = NULL;
    int attempts = row ? row->attempts : 0;
    bool may_exist_before = row && row->may_exist;
    bool must_list = row && strcmp(row->state, "attaching") == 0;
    wf_jsm *jsm = NULL;
    wf_customer customer = {0};
    char customer_err[1024];
    wf_err rc;

    if (!dropped) return set_fatal(run, WF_ERR_NOMEM, "out of memory");
    if ((rc = wf_map_submission(&run->mapping, &run->fields, sub, key, run->cfg->key_field, &mapped)) != WF_OK) {
        set_fatal(run, rc, "out of memory while mapping");
        goto out;
    }
    if (run->dry_run) {
        print_dry_run(sub, key, &mapped, run->cfg);
        goto out;
    }
    if ((rc = wf_run_jsm(run, &jsm)) != WF_OK) { set_fatal(run, rc, run->fatal_msg); goto out; }

    if (row && row->jsm_key) {
        jsm_key = strdup(row->jsm_key);
        checksum = wf_mapped_checksum(mapped.values);
        rc = deliver_attachments(run, jsm, sub, key, jsm_key, must_list || strcmp(row->state, "created") != 0,
                                 attempts, checksum);
        goto out;
    }

    if ((rc = wf_tracker_record_intent(run->tracker, key, sub->id, sub->time_text, sub->time_us, run->run_id)) != WF_OK) {
        set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
        goto out;
    }
    for (size_t i = 0; i < mapped.nproblems; i++) {
        if (mapped.problems[i].required) {
            rc = record_failure(run, key, attempts, "user_fixable", mapped.problems[i].message, may_exist_before, true);
            goto out;
        }
    }
    if (may_exist_before) {
        /* An earlier attempt may have created the request: look first. */
        rc = find_by_key(run, jsm, key, &jsm_key, &issue_id);
        if (rc != WF_OK) goto remote_failed;
        if (jsm_key) {
            if ((rc = wf_tracker_record_created(run->tracker, key, jsm_key, issue_id, run->run_id, true)) != WF_OK) {
                set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
                goto out;
            }
            run->stats.adopted++;
            wf_log_kv(run->log, MODULE, "INFO", "event", "adopted", "key", key, "jsm", jsm_key, NULL);
            checksum = wf_mapped_checksum(mapped.values);
            rc = deliver_attachments(run, jsm, sub, key, jsm_key, true, attempts, checksum);
            goto out;
        }
    }
    for (size_t i = 0; i < mapped.nproblems; i++) {
        cJSON *fix = cJSON_CreateObject();
        cJSON_AddStringToObject(fix, "field", mapped.problems[i].field_id);
        cJSON_AddStringToObject(fix, "value", mapped.problems[i].value ? mapped.problems[i].value : "");
        cJSON_AddStringToObject(fix, "message", mapped.problems[i].message);
        cJSON_AddItemToArray(dropped, fix);
    }
    /* The submitter reports the request when they can be found or made a
     * customer (modules/customers.c); otherwise the job's account does. */
    rc = wf_customer_resolve(jsm, run->tracker, run->cfg, run->log, sub, &customer, customer_err, sizeof customer_err);
    if (rc != WF_OK) {
        wf_tracker_record_not_sent(run->tracker, key, may_exist_before);
        if (wf_err_stops_run(rc)) set_fatal(run, rc, customer_err);
        else rc = record_failure(run, key, attempts, class_of(rc), customer_err, may_exist_before, false);
        goto out;
    }
    for (int tries = 0;; tries++) {
        rc = wf_jsm_create_request_as(jsm, mapped.values, customer.account_id, &jsm_key, &issue_id);
        if (rc != WF_ERR_JIRA_REJECTED || tries > 0 || wf_jsm_last_maybe_sent(jsm)) break;
        if (wf_customer_refused(&customer, run->tracker, run->cfg, jsm)) continue;
        /* A refused optional field must not cost the whole ticket. */
        if (!drop_rejected_optional(run, &mapped, wf_jsm_last_field_errors(jsm), dropped)) break;
    }
    if (rc != WF_OK) goto remote_failed;
    if (wf_customer_add_fix(&customer, dropped) != 0) { rc = set_fatal(run, WF_ERR_NOMEM, "out of memory"); goto out; }
    if ((rc = wf_tracker_record_created(run->tracker, key, jsm_key, issue_id, run->run_id, false)) != WF_OK) {
        set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
        goto out;
    }
    run->stats.created++;
    wf_log_kv(run->log, MODULE, "INFO", "event", "created", "key", key, "id", sub->id, "jsm", jsm_key, NULL);
    if ((rc = record_manual_fixes(run, key, jsm_key, dropped)) != WF_OK) goto out;
    checksum = wf_mapped_checksum(mapped.values);
    rc = deliver_attachments(run, jsm, sub, key, jsm_key, false, attempts, checksum);
    goto out;

remote_failed:
    if (is_fatal(rc) || rc == WF_ERR_JIRA_NOT_FOUND) {
        /* The rows are fine; the run is not. Put the row back as it was. */
        if (!wf_jsm_last_maybe_sent(jsm)) wf_tracker_record_not_sent(run->tracker, key, may_exist_before);
        set_fatal(run, rc == WF_ERR_JIRA_NOT_FOUND ? WF_ERR_JIRA_NOT_FOUND : rc, wf_jsm_last_error(jsm));
        goto out;
    } else {
        bool required_rejected = rc == WF_ERR_JIRA_REJECTED;
        rc = record_failure(run, key, attempts, class_of(rc), wf_jsm_last_error(jsm),
                            may_exist_before || wf_jsm_last_maybe_sent(jsm), required_rejected);
    }
out:
    wf_customer_free(&customer);
    wf_mapped_free(&mapped);
    cJSON_Delete(dropped);
    free(jsm_key);
    free(issue_id);
    free(checksum);
    return rc;
}

/* ---- replay --update-changed ----------------------------------------- */

/* Plain text as an Atlassian Document: the platform API (v3) takes rich
 * text fields only in that form. One paragraph per line; ADF has no empty
 * text nodes, so blank lines only separate paragraphs. */
static cJSON *text_to_adf(const char *text)
{
    cJSON *doc = cJSON_CreateObject(), *content;
    if (!doc) return NULL;
    cJSON_AddStringToObject(doc, "type", "doc");
    cJSON_AddNumberToObject(doc, "version", 1);
    content = cJSON_AddArrayToObject(doc, "content");
    for (const char *p = text; content && *p;) {
        size_t len = strcspn(p, "\n");
        if (len > 0) {
            char *line = strndup(p, len);
            cJSON *para = cJSON_CreateObject(), *node = cJSON_CreateObject(), *inner;
            if (line && para && node && (inner = cJSON_AddArrayToObject(para, "content"))) {
                cJSON_AddStringToObject(para, "type", "paragraph");
                cJSON_AddStringToObject(node, "type", "text");
                cJSON_AddStringToObject(node, "text", line);
                cJSON_AddItemToArray(inner, node);
                cJSON_AddItemToArray(content, para);
                node = para = NULL;
            }
            cJSON_Delete(node);
            cJSON_Delete(para);
            free(line);
        }
        p += len + (p[len] == '\n');
    }
    return doc;
}

/* The fields an edit sends for mapped values: the labels stay as they are
 * on the ticket (they carry the key, and people add their own), rich text
 * goes as ADF, and a mapped optional field whose column is now empty is
 * cleared. */
static cJSON *edit_fields(const wf_run *run, const wf_mapped *mapped)
{
    cJSON *fields = cJSON_Duplicate(mapped->values, 1);
    if (!fields) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(fields, "labels");
    static const char *const rich_text[] = {"description", "environment"};
    for (size_t i = 0; i < sizeof rich_text / sizeof *rich_text; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, rich_text[i]);
        if (!cJSON_IsString(v)) continue;
        cJSON *adf = text_to_adf(v->valuestring);
        if (!adf || !cJSON_ReplaceItemInObjectCaseSensitive(fields, rich_text[i], adf)) {
            cJSON_Delete(adf);
            cJSON_Delete(fields);
            return NULL;
        }
    }
    for (size_t i = 0; i < run->mapping.n; i++) {
        const char *id = run->mapping.pairs[i].field_id;
        const wf_field_def *f = wf_fields_find(&run->fields, id);
        if (f && !f->required && strcmp(id, "labels") != 0 && !cJSON_GetObjectItemCaseSensitive(fields, id))
            cJSON_AddNullToObject(fields, id);
    }
    return fields;
}

/* Leaves in dropped only the fields whose refused value is not on key's
 * open manual-fix list yet, so that replaying twice does not list a fix twice. */
static wf_err drop_known_fixes(wf_run *run, const char *key, cJSON *dropped)
{
    char err[1024];
    for (cJSON *fix = dropped->child, *next; fix; fix = next) {
        next = fix->next;
        bool open = false;
        wf_err rc = wf_tracker_admin_fix_is_open(run->tracker, key,
                                                 cJSON_GetObjectItemCaseSensitive(fix, "field")->valuestring,
                                                 cJSON_GetObjectItemCaseSensitive(fix, "value")->valuestring,
                                                 &open, err, sizeof err);
        if (rc != WF_OK) return set_fatal(run, rc, err);
        if (open) cJSON_Delete(cJSON_DetachItemViaPointer(dropped, fix));
    }
    return WF_OK;
}

/* A delivered submission whose mapped content no longer matches the
 * checksum stored at delivery (or has none stored) gets its request edited
 * in place: same key, fixed forward. The attachments keep the content as
 * first delivered. As at creation, optional fields JSM refuses are dropped
 * onto the manual-fix list rather than cost the update. A failed edit
 * counts as a failure of the run and leaves the row delivered with its old
 * checksum, so the next replay tries again. */
static wf_err update_if_changed(wf_run *run, const wf_submission *sub, const char *key, const wf_tracker_row *row)
{
    wf_mapped mapped = {0};
    cJSON *fields = NULL, *dropped = cJSON_CreateArray();
    char *checksum = NULL, *text = NULL, err[1024];
    wf_jsm *jsm = NULL;
    wf_err rc = dropped ? wf_map_submission(&run->mapping, &run->fields, sub, key, run->cfg->key_field, &mapped)
                        : WF_ERR_NOMEM;
    if (rc != WF_OK || !(checksum = wf_mapped_checksum(mapped.values))) {
        rc = set_fatal(run, WF_ERR_NOMEM, "out of memory while mapping");
        goto out;
    }
    if (row->content_checksum && strcmp(checksum, row->content_checksum) == 0) goto out;
    for (size_t i = 0; i < mapped.nproblems; i++) {
        if (!mapped.problems[i].required) continue;
        run->stats.failed++;
        wf_log_kv(run->log, MODULE, "WARN", "event", "update_skipped", "key", key, "jsm", row->jsm_key,
                  "error", mapped.problems[i].message, NULL);
        goto out;
    }
    if (!(fields = edit_fields(run, &mapped)) || !(text = cJSON_PrintUnformatted(fields))) {
        rc = set_fatal(run, WF_ERR_NOMEM, "out of memory while mapping");
        goto out;
    }
    if (run->dry_run) {
        printf("would update: %s id=%s key=%.16s fields=%s\n", row->jsm_key, sub->id, key, text);
        goto out;
    }
    if ((rc = wf_run_jsm(run, &jsm)) != WF_OK) { set_fatal(run, rc, run->fatal_msg); goto out; }
    for (int tries = 0;; tries++) {
        rc = wf_jsm_edit_issue(jsm, row->jsm_key, fields);
        if (rc != WF_ERR_JIRA_REJECTED || tries > 0 ||
            !drop_rejected_optional(run, &mapped, wf_jsm_last_field_errors(jsm), dropped))
            break;
        /* Left out, not cleared: the ticket keeps its old value until a
         * person sets the new one. */
        const cJSON *fix;
        cJSON_ArrayForEach(fix, dropped)
            cJSON_DeleteItemFromObjectCaseSensitive(fields, cJSON_GetObjectItemCaseSensitive(fix, "field")->valuestring);
    }
    if (rc != WF_OK) {
        if (is_fatal(rc)) {
            set_fatal(run, rc, wf_jsm_last_error(jsm));
        } else {
            run->stats.failed++;
            snprintf(err, sizeof err, "%s%s", wf_jsm_last_error(jsm),
                     rc == WF_ERR_JIRA_NOT_FOUND ? " (the request is gone from JSM: run `wf2jsm reconcile`)" : "");
            wf_log_kv(run->log, MODULE, "WARN", "event", "update_failed", "key", key, "jsm", row->jsm_key,
                      "error", err, NULL);
            rc = WF_OK;
        }
        goto out;
    }
    if ((rc = drop_known_fixes(run, key, dropped)) != WF_OK ||
        (rc = record_manual_fixes(run, key, row->jsm_key, dropped)) != WF_OK)
        goto out;
    if ((rc = wf_tracker_admin_set_checksum(run->tracker, key, checksum, err, sizeof err)) != WF_OK) {
        set_fatal(run, rc, err);
        goto out;
    }
    printf("updated: %s id=%s key=%.16s\n", row->jsm_key, sub->id, key);
    wf_log_kv(run->log, MODULE, "INFO", "event", "updated", "key", key, "id", sub->id, "jsm", row->jsm_key, NULL);
out:
    wf_mapped_free(&mapped);
    cJSON_Delete(fields);
    cJSON_Delete(dropped);
    free(checksum);
    free(text);
    return rc;
}

/* ---- the stream consumer ---------------------------------------------- */

static bool needs_work(const wf_run *run, const wf_tracker_row *row)
{
    if (strcmp(row->state, "delivered") == 0 || strcmp(row->state, "parked") == 0) return false;
    if (row->last_run == run->run_id) return false;   /* once per run */
    /* A create that may have landed is only looked up once JQL can see it. */
    if (row->may_exist && !row->jsm_key &&
        row->updated_at_us > wf_now_us() - (int64_t)run->cfg->search_settle_seconds * 1000000)
        return false;
    return true;
}

static wf_row_action on_row(const wf_submission *sub, void *ctx)
{
    batch_state *bs = ctx;
    wf_run *run = bs->run;
    char key[WF_KEY_HEX_LEN + 1], err[512];
    if (run->stop && *run->stop) return WF_ROW_STOP;
    if (!bs->columns_checked) {
        bs->columns_checked = true;
        wf_err rc = wf_mapping_check_columns(&run->mapping, (const char *const *)sub->names, sub->ncols, err, sizeof err);
        if (rc != WF_OK && run->mapping_ready) { set_fatal(run, rc, err); return WF_ROW_STOP; }
    }
    run->stats.seen++;
    wf_err rc = run->hasher ? WF_OK : wf_key_hasher_new(&run->hasher);
    if (rc != WF_OK) { set_fatal(run, rc, "libcrypto has no SHA-256"); return WF_ROW_STOP; }
    rc = wf_key_compute_with(run->hasher, sub, (const char *const *)run->cfg->key_columns, run->cfg->n_key_columns, key,
                               err, sizeof err);
    if (rc != WF_OK) { set_fatal(run, rc, err); return WF_ROW_STOP; }

    wf_tracker_row row;
    bool found = false;
    if ((rc = wf_tracker_get(run->tracker, key, &row, &found)) != WF_OK) {
        set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
        return WF_ROW_STOP;
    }
    bool work = !found || needs_work(run, &row);
    bool update = !work && run->update_changed && strcmp(row.state, "delivered") == 0 && row.jsm_key;
    if (work || update) {
        if (!run->mapping_ready) {
            if (wf_run_load_mapping(run) != WF_OK) goto stop;
            if (wf_mapping_check_columns(&run->mapping, (const char *const *)sub->names, sub->ncols, err, sizeof err) != WF_OK) {
                set_fatal(run, WF_ERR_CONFIG, err);
                goto stop;
            }
        }
    }
    if (update) {
        update_if_changed(run, sub, key, &row);
    } else if (work) {
        /* Before the run's first create: does JSM hold requests this
         * tracker lacks (an old backup put back)? Then create nothing until
         * the run has caught up (tracker_rebuild.h). */
        if (!run->jsm_checked && !run->dry_run && !(found && row.jsm_key)) {
            bool stale = false;
            if (wf_rebuild_check_before_create(run, &stale) != WF_OK) goto stop;
            if (stale) {
                run->rebuild_needed = true;
                goto stop;
            }
        }
        bs->worked++;
        deliver(run, sub, key, found ? &row : NULL);
        if (run->on_progress) run->on_progress(&run->stats, run->progress_ctx);
    }
    if (found) wf_tracker_row_free(&row);
    if (run->fatal != WF_OK) return WF_ROW_STOP;
    return bs->worked >= run->cfg->batch_size ? WF_ROW_STOP : WF_ROW_NEXT;
stop:
    if (found) wf_tracker_row_free(&row);
    return WF_ROW_STOP;
}

wf_err wf_process_batch(wf_run *run, int64_t from_us, int64_t to_us, bool *more)
{
    batch_state bs = {.run = run};
    char err[1024];
    int64_t *times = NULL;
    size_t ntimes = 0;
    long known = 0;
    *more = false;

    /* Rows older than the window that still need work (failed, requeued,
     * interrupted) are fetched by their exact times: one extra query, and
     * only when there are such rows. */
    wf_err rc = wf_tracker_retry_times(run->tracker, from_us, run->run_id, &times, &ntimes);
    if (rc != WF_OK) return set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
    if (ntimes > 0 && from_us != INT64_MIN) {
        rc = wf_source_stream_times(run->source, times, ntimes, on_row, &bs, err, sizeof err);
        if (rc != WF_OK && run->fatal == WF_OK) set_fatal(run, rc, err);
    }
    free(times);
    if (run->fatal != WF_OK) return run->fatal;
    if (bs.worked >= run->cfg->batch_size) {
        *more = true;
        return WF_OK;
    }
    /* Every known row in the window may come back before the first new one,
     * so the limit makes room for all of them plus a full batch. */
    rc = wf_tracker_count_between(run->tracker, from_us, to_us == WF_NO_UPPER_BOUND ? -1 : to_us, &known);
    if (rc != WF_OK) return set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
    int seen_before = run->stats.seen;
    rc = wf_source_stream_window(run->source, from_us, to_us, known + run->cfg->batch_size, on_row, &bs,
                                 err, sizeof err);
    if (rc != WF_OK && run->fatal == WF_OK) set_fatal(run, rc, err);
    char from[48], rows[16], worked[16], retried[16];
    if (from_us == INT64_MIN) snprintf(from, sizeof from, "-infinity");
    else wf_format_time_us(from_us, from, sizeof from);
    snprintf(rows, sizeof rows, "%d", run->stats.seen - seen_before);
    snprintf(worked, sizeof worked, "%d", bs.worked);
    snprintf(retried, sizeof retried, "%zu", ntimes);
    wf_log_kv(run->log, "fetch_submissions", run->fatal == WF_OK ? "INFO" : "ERROR", "event", "window",
              "from", from, "rows", rows, "retry_times", retried, "worked", worked, NULL);
    if (run->fatal != WF_OK) return run->fatal;
    *more = bs.worked >= run->cfg->batch_size;
    return WF_OK;
}
