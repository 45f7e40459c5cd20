/* run.c: the run context (see run.h). */
#define _POSIX_C_SOURCE 200809L
#include "run.h"
#include "curl_loader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "process_batch"

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
    run->known_by_source = -1;
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

wf_err wf_run_begin(wf_run *run)
{
    if (run->run_id != 0 || !run->command || run->dry_run) return WF_OK;
    const char *command = run->command;
    run->command = NULL;   /* one try: a failure is reported once */
    wf_err rc = wf_tracker_run_begin(run->tracker, command, &run->run_id);
    if (rc != WF_OK) {
        run->run_id = 0;
        return wf_run_fail(run, rc, wf_tracker_errmsg(run->tracker));
    }
    wf_log_set_run(run->log, run->run_id);
    return WF_OK;
}

wf_err wf_run_jsm(wf_run *run, wf_jsm **out)
{
    if (!run->jsm) {
        wf_err rc = wf_jsm_open(run->cfg, run->log, &run->stats, run->stop, &run->jsm);
        if (rc != WF_OK) {
            const char *why = wf_curl_load_error();
            snprintf(run->fatal_msg, sizeof run->fatal_msg, "cannot set up the HTTP client: %s", why ? why : wf_strerror(rc));
            return rc;
        }
    }
    *out = run->jsm;
    return WF_OK;
}

wf_err wf_run_fail(wf_run *run, wf_err rc, const char *msg)
{
    run->fatal = rc;
    snprintf(run->fatal_msg, sizeof run->fatal_msg, "%s", msg);
    wf_log_redact(run->log, run->fatal_msg);
    wf_log_kv(run->log, MODULE, "ERROR", "event", "run_stopped", "class", wf_strerror(rc), "error", run->fatal_msg, NULL);
    return rc;
}

bool wf_run_is_fatal(wf_err rc)
{
    return rc == WF_ERR_JIRA_AUTH || rc == WF_ERR_JIRA_UNREACHABLE || rc == WF_ERR_TRACKER ||
           rc == WF_ERR_NOMEM || rc == WF_ERR_CONFIG || rc == WF_ERR_DB;
}

wf_err wf_run_load_mapping(wf_run *run)
{
    if (run->mapping_ready) return WF_OK;
    char meta_name[128], err[1024];
    snprintf(meta_name, sizeof meta_name, "fields:%s:%s", run->cfg->service_desk_id, run->cfg->request_type_id);
    char *raw = NULL;
    wf_err rc = wf_tracker_meta_get(run->tracker, meta_name, &raw);
    if (rc != WF_OK) return wf_run_fail(run, rc, wf_tracker_errmsg(run->tracker));
    if (!raw) {
        wf_jsm *jsm;
        if ((rc = wf_run_jsm(run, &jsm)) != WF_OK) return wf_run_fail(run, rc, run->fatal_msg);
        if ((rc = wf_jsm_get_request_type_fields(jsm, &raw)) != WF_OK) {
            if (rc == WF_ERR_JIRA_TEMPORARY || rc == WF_ERR_JIRA_REJECTED || rc == WF_ERR_JIRA_PROTOCOL)
                rc = WF_ERR_JIRA_UNREACHABLE;
            return wf_run_fail(run, rc, wf_jsm_last_error(jsm));
        }
        if (!run->dry_run && (rc = wf_tracker_meta_set(run->tracker, meta_name, raw)) != WF_OK) {
            free(raw);
            return wf_run_fail(run, rc, wf_tracker_errmsg(run->tracker));
        }
    }
    rc = wf_fields_parse(raw, &run->fields, err, sizeof err);
    free(raw);
    if (rc != WF_OK) return wf_run_fail(run, rc, err);
    if (wf_fields_key_carrier(&run->fields, run->cfg->key_field) == WF_KEY_VIA_NOTHING) {
        snprintf(err, sizeof err, "request type %s has no labels field to carry the submission key%s%s%s: "
                 "add Labels to the request type, or set SYNC_KEY_FIELD to a text field's id",
                 run->cfg->request_type_id, run->cfg->key_field ? " and SYNC_KEY_FIELD=" : "",
                 run->cfg->key_field ? run->cfg->key_field : "", run->cfg->key_field ? " is not one of its fields" : "");
        return wf_run_fail(run, WF_ERR_CONFIG, err);
    }
    if ((rc = wf_mapping_load(run->cfg->field_mapping, &run->fields, &run->mapping, err, sizeof err)) != WF_OK)
        return wf_run_fail(run, rc, err);
    run->mapping_ready = true;
    return WF_OK;
}
