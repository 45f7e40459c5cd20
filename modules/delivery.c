/* delivery.c: the per-submission delivery protocol (see delivery.h). */
#define _POSIX_C_SOURCE 200809L
#include "delivery.h"
#include "attachments.h"
#include "manual_fixes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "process_batch"

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
    if (rc != WF_OK) return wf_run_fail(run, rc, wf_tracker_errmsg(run->tracker));
    if (park) run->stats.parked++;
    else run->stats.failed++;
    wf_log_kv(run->log, MODULE, park ? "ERROR" : "WARN", "event", park ? "parked" : "failed", "key", key,
              "class", cls, "error", message, NULL);
    return WF_OK;
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
            wf_run_fail(run, rc, wf_tracker_errmsg(run->tracker));
            goto out;
        }
        if ((rc = wf_jsm_attach_temporary(jsm, jsm_key, temp_ids, nfiles, run->cfg->attach_public)) != WF_OK)
            goto failed;
        run->stats.attachments_uploaded += (int)nfiles;
    }
    if ((rc = wf_tracker_record_delivered(run->tracker, key, checksum)) != WF_OK) {
        wf_run_fail(run, rc, wf_tracker_errmsg(run->tracker));
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
    if (wf_run_is_fatal(rc)) {
        wf_run_fail(run, rc, wf_jsm_last_error(jsm));
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
wf_err wf_deliver(wf_run *run, const wf_submission *sub, const char *key, const wf_tracker_row *row)
{
    wf_mapped mapped = {0};
    cJSON *dropped = cJSON_CreateArray();
    char *jsm_key = NULL, *issue_id = NULL, *checksum = NULL;
    int attempts = row ? row->attempts : 0;
    bool may_exist_before = row && row->may_exist;
    bool must_list = row && strcmp(row->state, "attaching") == 0;
    wf_jsm *jsm = NULL;
    wf_err rc;

    if (!dropped) return wf_run_fail(run, WF_ERR_NOMEM, "out of memory");
    if ((rc = wf_map_submission(&run->mapping, &run->fields, sub, key, run->cfg->key_field, &mapped)) != WF_OK) {
        wf_run_fail(run, rc, "out of memory while mapping");
        goto out;
    }
    if (run->dry_run) {
        print_dry_run(sub, key, &mapped, run->cfg);
        goto out;
    }
    if ((rc = wf_run_jsm(run, &jsm)) != WF_OK) { wf_run_fail(run, rc, run->fatal_msg); goto out; }

    if (row && row->jsm_key) {
        jsm_key = strdup(row->jsm_key);
        checksum = wf_mapped_checksum(mapped.values);
        rc = deliver_attachments(run, jsm, sub, key, jsm_key, must_list || strcmp(row->state, "created") != 0,
                                 attempts, checksum);
        goto out;
    }

    if ((rc = wf_tracker_record_intent(run->tracker, key, sub->id, sub->time_text, sub->time_us, run->run_id)) != WF_OK) {
        wf_run_fail(run, rc, wf_tracker_errmsg(run->tracker));
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
                wf_run_fail(run, rc, wf_tracker_errmsg(run->tracker));
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
    for (int tries = 0;; tries++) {
        rc = wf_jsm_create_request(jsm, mapped.values, &jsm_key, &issue_id);
        if (rc != WF_ERR_JIRA_REJECTED || tries > 0 || wf_jsm_last_maybe_sent(jsm)) break;
        /* A refused optional field must not cost the whole ticket. */
        if (!wf_drop_rejected_optional(run, &mapped, wf_jsm_last_field_errors(jsm), dropped)) break;
    }
    if (rc != WF_OK) goto remote_failed;
    if ((rc = wf_tracker_record_created(run->tracker, key, jsm_key, issue_id, run->run_id, false)) != WF_OK) {
        wf_run_fail(run, rc, wf_tracker_errmsg(run->tracker));
        goto out;
    }
    run->stats.created++;
    wf_log_kv(run->log, MODULE, "INFO", "event", "created", "key", key, "id", sub->id, "jsm", jsm_key, NULL);
    if ((rc = wf_record_manual_fixes(run, key, jsm_key, dropped)) != WF_OK) goto out;
    checksum = wf_mapped_checksum(mapped.values);
    rc = deliver_attachments(run, jsm, sub, key, jsm_key, false, attempts, checksum);
    goto out;

remote_failed:
    if (wf_run_is_fatal(rc) || rc == WF_ERR_JIRA_NOT_FOUND) {
        /* The rows are fine; the run is not. Put the row back as it was. */
        if (!wf_jsm_last_maybe_sent(jsm)) wf_tracker_record_not_sent(run->tracker, key, may_exist_before);
        wf_run_fail(run, rc == WF_ERR_JIRA_NOT_FOUND ? WF_ERR_JIRA_NOT_FOUND : rc, wf_jsm_last_error(jsm));
        goto out;
    } else {
        bool required_rejected = rc == WF_ERR_JIRA_REJECTED;
        rc = record_failure(run, key, attempts, class_of(rc), wf_jsm_last_error(jsm),
                            may_exist_before || wf_jsm_last_maybe_sent(jsm), required_rejected);
    }
out:
    wf_mapped_free(&mapped);
    cJSON_Delete(dropped);
    free(jsm_key);
    free(issue_id);
    free(checksum);
    return rc;
}
