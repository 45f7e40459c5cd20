/* replay_update.c: edit delivered requests whose content changed (see
 * replay_update.h). */
#define _POSIX_C_SOURCE 200809L
#include "replay_update.h"
#include "adf_text.h"
#include "manual_fixes.h"
#include "tracker_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "process_batch"


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
        cJSON *adf = wf_adf_from_text(v->valuestring);
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
        if (rc != WF_OK) return wf_run_fail(run, rc, err);
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
wf_err wf_replay_update_if_changed(wf_run *run, const wf_submission *sub, const char *key, const wf_tracker_row *row)
{
    wf_mapped mapped = {0};
    cJSON *fields = NULL, *dropped = cJSON_CreateArray();
    char *checksum = NULL, *text = NULL, err[1024];
    wf_jsm *jsm = NULL;
    wf_err rc = dropped ? wf_map_submission(&run->mapping, &run->fields, sub, key, run->cfg->key_field, &mapped)
                        : WF_ERR_NOMEM;
    if (rc != WF_OK || !(checksum = wf_mapped_checksum(mapped.values))) {
        rc = wf_run_fail(run, WF_ERR_NOMEM, "out of memory while mapping");
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
        rc = wf_run_fail(run, WF_ERR_NOMEM, "out of memory while mapping");
        goto out;
    }
    if (run->dry_run) {
        printf("would update: %s id=%s key=%.16s fields=%s\n", row->jsm_key, sub->id, key, text);
        goto out;
    }
    if ((rc = wf_run_jsm(run, &jsm)) != WF_OK) { wf_run_fail(run, rc, run->fatal_msg); goto out; }
    for (int tries = 0;; tries++) {
        rc = wf_jsm_edit_issue(jsm, row->jsm_key, fields);
        if (rc != WF_ERR_JIRA_REJECTED || tries > 0 ||
            !wf_drop_rejected_optional(run, &mapped, wf_jsm_last_field_errors(jsm), dropped))
            break;
        /* Left out, not cleared: the ticket keeps its old value until a
         * person sets the new one. */
        const cJSON *fix;
        cJSON_ArrayForEach(fix, dropped)
            cJSON_DeleteItemFromObjectCaseSensitive(fields, cJSON_GetObjectItemCaseSensitive(fix, "field")->valuestring);
    }
    if (rc != WF_OK) {
        if (wf_run_is_fatal(rc)) {
            wf_run_fail(run, rc, wf_jsm_last_error(jsm));
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
        (rc = wf_record_manual_fixes(run, key, row->jsm_key, dropped)) != WF_OK)
        goto out;
    if ((rc = wf_tracker_admin_set_checksum(run->tracker, key, checksum, err, sizeof err)) != WF_OK) {
        wf_run_fail(run, rc, err);
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
