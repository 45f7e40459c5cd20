/* fields.c: `wf2jsm fields`, fetch the request type's fields and write the
 * mapping file. */
#define _POSIX_C_SOURCE 200809L
#include "job.h"
#include "../modules/jira_fields.h"
#include "../modules/jsm_client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char fields_usage[] =
    "usage: wf2jsm fields [--env FILE]\n"
    "\n"
    "Fetches the fields of JSM_REQUEST_TYPE_ID and the columns of WEBFORM_TABLE,\n"
    "caches the field list in the tracker, and writes SYNC_FIELD_MAPPING\n"
    "(default field_mapping.json): pairs you edited are kept, and every other field\n"
    "whose id or name matches a column is proposed. Prints the field table, then\n"
    "the mapping's templates and fallbacks, if any.\n"
    "\n"
    "  --env FILE   read configuration from FILE instead of ./.env\n"
    "  -h, --help   show this help\n";

/* Writes text to path through a temporary file and a rename, so a reader
 * never sees half a mapping. */
static wf_err write_atomically(const char *path, const char *text, char *errbuf, size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t len = strlen(text);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        snprintf(errbuf, errlen, "cannot write %s: %s (check SYNC_FIELD_MAPPING)", tmp, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(tmp);
        return WF_ERR_FILE;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(errbuf, errlen, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return WF_ERR_FILE;
    }
    return WF_OK;
}

/* One line per template or fallback, its text as JSON so that a newline or
 * a quote in it stays visible and on one line. */
static void print_templates(const char *kind, const cJSON *section)
{
    const cJSON *it;
    if (section && section->child) printf("\n");
    cJSON_ArrayForEach(it, section) {
        char *text = cJSON_PrintUnformatted(it);
        printf("%s %-20s %s\n", kind, it->string, text ? text : "?");
        free(text);
    }
}

int cmd_fields(int argc, char **argv)
{
    const char *env_file;
    int parsed = job_parse_env_only("fields", argc, argv, fields_usage, &env_file);
    if (parsed >= 0) return parsed;
    wf_job job;
    wf_run_stats stats = {0};
    wf_jsm *jsm = NULL;
    char *raw = NULL, *mapping_text = NULL, **names = NULL, **types = NULL;
    size_t ncols = 0;
    wf_field_list fields = {0};
    wf_mapping mapping = {0};
    int status = 0, proposed = 0;
    wf_err rc = job_setup(&job, "fields", env_file, JOB_NEEDS_JIRA | JOB_NEEDS_LOG | JOB_NEEDS_TRACKER | JOB_NEEDS_SOURCE);
    if (rc != WF_OK) { status = job_fail(&job, rc, NULL); goto out; }
    if ((rc = wf_jsm_open(&job.cfg, job.log, &stats, NULL, &jsm)) != WF_OK) { status = job_fail(&job, rc, "cannot set up curl"); goto out; }
    if ((rc = wf_jsm_get_request_type_fields(jsm, &raw)) != WF_OK) {
        if (rc == WF_ERR_JIRA_NOT_FOUND) {
            char msg[1200];
            snprintf(msg, sizeof msg, "%s (check JSM_SERVICE_DESK_ID and JSM_REQUEST_TYPE_ID)", wf_jsm_last_error(jsm));
            status = job_fail(&job, rc, msg);
        } else {
            status = job_fail(&job, rc, wf_jsm_last_error(jsm));
        }
        goto out;
    }
    if ((rc = wf_fields_parse(raw, &fields, job.err, sizeof job.err)) != WF_OK) { status = job_fail(&job, rc, NULL); goto out; }
    char meta_name[128];
    snprintf(meta_name, sizeof meta_name, "fields:%s:%s", job.cfg.service_desk_id, job.cfg.request_type_id);
    if ((rc = wf_tracker_meta_set(job.tracker, meta_name, raw)) != WF_OK) {
        status = job_fail(&job, rc, wf_tracker_errmsg(job.tracker));
        goto out;
    }
    if ((rc = wf_source_columns(job.source, &names, &types, &ncols, job.err, sizeof job.err)) != WF_OK) {
        status = job_fail(&job, rc, NULL);
        goto out;
    }
    rc = wf_mapping_propose(&fields, (const char *const *)names, ncols, job.cfg.field_mapping, &mapping_text,
                            &proposed, job.err, sizeof job.err);
    if (rc != WF_OK) { status = job_fail(&job, rc, NULL); goto out; }
    if ((rc = write_atomically(job.cfg.field_mapping, mapping_text, job.err, sizeof job.err)) != WF_OK) {
        status = job_fail(&job, rc, NULL);
        goto out;
    }
    if ((rc = wf_mapping_load(job.cfg.field_mapping, &fields, &mapping, job.err, sizeof job.err)) != WF_OK) {
        status = job_fail(&job, rc, NULL);
        goto out;
    }
    printf("%-20s %-24s %-9s %-10s %s\n", "FIELD", "NAME", "REQUIRED", "TYPE", "COLUMN");
    for (size_t i = 0; i < fields.n; i++) {
        const wf_field_def *f = &fields.fields[i];
        const char *column = "-";
        bool html = false;
        for (size_t j = 0; j < mapping.n; j++)
            if (strcmp(mapping.pairs[j].field_id, f->id) == 0) {
                column = mapping.pairs[j].column;
                html = mapping.pairs[j].format == WF_FORMAT_HTML;
            }
        if (strcmp(f->id, "labels") == 0) column = "(submission key label)";
        if (cJSON_GetObjectItemCaseSensitive(mapping.templates, f->id)) column = "(template, below)";
        /* Rich text shows as "richtext": its value goes as literal ADF. */
        job_out("%-20s %-24.24s %-9s %-10s %s%s\n", f->id, f->name ? f->name : "", f->required ? "yes" : "no",
                wf_field_is_rich_text(f) ? "richtext" : f->type, column, html ? " (read as HTML)" : "");
    }
    print_templates("template", mapping.templates);
    print_templates("fallback", mapping.fallbacks);
    wf_key_carrier carrier = wf_fields_key_carrier(&fields, job.cfg.key_field);
    printf("\nsubmission key travels as: %s\n", carrier == WF_KEY_VIA_LABEL ? "label wf2jsm-<key prefix>" :
           carrier == WF_KEY_VIA_FIELD ? "the SYNC_KEY_FIELD field" :
           "NOTHING: add Labels to the request type or set SYNC_KEY_FIELD");
    printf("wrote %s (%d new pair%s proposed; edit it, then run `wf2jsm check`)\n", job.cfg.field_mapping,
           proposed, proposed == 1 ? "" : "s");
    printf("a column that holds HTML is declared with \"formats\": {\"<column>\": \"html\"} in that file\n");
    wf_log_kv(job.log, "jira_fields", "INFO", "event", "mapping_written", "file", job.cfg.field_mapping, NULL);
out:
    wf_mapping_free(&mapping);
    wf_fields_free(&fields);
    wf_source_free_columns(names, types, ncols);
    free(mapping_text);
    free(raw);
    wf_jsm_close(jsm);
    job_teardown(&job);
    return status;
}
