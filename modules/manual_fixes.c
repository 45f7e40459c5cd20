/* manual_fixes.c: optional fields JSM refused (see manual_fixes.h). */
#define _POSIX_C_SOURCE 200809L
#include "manual_fixes.h"

#include <stdlib.h>
#include <string.h>

#define MODULE "process_batch"

bool wf_drop_rejected_optional(const wf_run *run, wf_mapped *mapped, const cJSON *errors, cJSON *dropped)
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

wf_err wf_record_manual_fixes(wf_run *run, const char *key, const char *jsm_key, const cJSON *dropped)
{
    const cJSON *fix;
    cJSON_ArrayForEach(fix, dropped) {
        const char *field = cJSON_GetObjectItemCaseSensitive(fix, "field")->valuestring;
        const char *value = cJSON_GetObjectItemCaseSensitive(fix, "value")->valuestring;
        const char *message = cJSON_GetObjectItemCaseSensitive(fix, "message")->valuestring;
        wf_err rc = wf_tracker_add_manual_fix(run->tracker, key, jsm_key, field, value, message);
        if (rc != WF_OK) return wf_run_fail(run, rc, wf_tracker_errmsg(run->tracker));
        run->stats.manual_fixes++;
        wf_log_kv(run->log, MODULE, "WARN", "event", "manual_fix", "key", key, "jsm", jsm_key, "field", field,
                  "value", value, "error", message, NULL);
    }
    return WF_OK;
}
