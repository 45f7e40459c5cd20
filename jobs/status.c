/* status.c: `wf2jsm status`, what the tracker knows and how far behind the
 * job is: counts by state, cursor, backlog, recent runs, rows that need a
 * human, and delivered rows edited in the source since. */
#define _POSIX_C_SOURCE 200809L
#include "job.h"
#include "../modules/jira_fields.h"
#include "../modules/metrics.h"
#include "../modules/safe_text.h"
#include "../modules/tracker_rebuild.h"
#include "../modules/unique_key.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char status_usage[] =
    "usage: wf2jsm status [--json] [--runs N] [--env FILE]\n"
    "\n"
    "Shows submissions by state, the cursor, the backlog, the last runs with their\n"
    "figures, parked and failed submissions with their reasons, open manual fixes,\n"
    "and delivered submissions edited in the source since (among the newest 1000\n"
    "delivered). Reads the tracker, and the source database when it is reachable;\n"
    "without it the backlog and the edited rows are shown as unknown.\n"
    "\n"
    "  --json       machine-readable output (schema in wf2jsm(1))\n"
    "  --runs N     how many recent runs to show (default 5)\n"
    "  --env FILE   read configuration from FILE instead of ./.env\n"
    "  -h, --help   show this help\n";

/* Change detection re-reads this many of the newest delivered rows: enough
 * for days of a web form's traffic, and one source query of bounded size. */
#define CHANGED_SCAN_LIMIT 1000
#define LIST_LIMIT 100

/* Integers go into the JSON as raw digits: cJSON would print a microsecond
 * timestamp as a double in exponent form. */
static void add_int(cJSON *obj, const char *name, long long v)
{
    char digits[24];
    snprintf(digits, sizeof digits, "%lld", v);
    cJSON_AddRawToObject(obj, name, digits);
}

static void add_text(cJSON *obj, const char *name, const char *v)
{
    if (v) cJSON_AddStringToObject(obj, name, v);
    else cJSON_AddNullToObject(obj, name);
}

/* The last runs, newest first, as the JSON report shows them. On a tracker
 * error the array is empty (the counts above it say the same error). */
static cJSON *runs_json(wf_tracker *t, int limit)
{
    cJSON *arr = cJSON_CreateArray();
    wf_tracker_run *runs = NULL;
    size_t n = 0;
    if (wf_tracker_recent_runs(t, limit, &runs, &n) != WF_OK) return arr;
    for (size_t i = 0; i < n; i++) {
        const wf_tracker_run *r = &runs[i];
        cJSON *o = cJSON_CreateObject();
        add_int(o, "id", r->id);
        add_text(o, "command", r->command);
        add_text(o, "started_at", r->started_at);
        add_text(o, "finished_at", r->finished_at);
        if (r->has_exit_code) add_int(o, "exit_code", r->exit_code);
        else cJSON_AddNullToObject(o, "exit_code");
        const char *names[] = {"seen", "created", "adopted", "delivered", "failed", "parked", "attachments_uploaded",
                               "attachments_failed", "retries", "http_429", "manual_fixes", "duration_ms"};
        long values[] = {r->seen, r->created, r->adopted, r->delivered, r->failed, r->parked,
                         r->attachments_uploaded, r->attachments_failed, r->retries, r->http_429, r->manual_fixes,
                         r->duration_ms};
        for (size_t j = 0; j < sizeof values / sizeof *values; j++) add_int(o, names[j], values[j]);
        add_text(o, "error", r->error);
        add_int(o, "http_requests", r->http_requests);
        char rate[32];
        snprintf(rate, sizeof rate, "%.1f", wf_per_second(r->http_requests, r->duration_ms));
        cJSON_AddRawToObject(o, "requests_per_second", rate);
        add_int(o, "peak_in_flight", r->peak_in_flight);
        add_int(o, "garbled", r->garbled);
        add_int(o, "lookups", r->lookups);
        add_int(o, "lookup_calls", r->lookup_calls);
        cJSON_AddItemToArray(arr, o);
    }
    wf_tracker_runs_free(runs, n);
    return arr;
}

static cJSON *problems_json(wf_tracker *t, int limit)
{
    cJSON *arr = cJSON_CreateArray();
    wf_tracker_row *rows = NULL;
    size_t n = 0;
    if (wf_tracker_problems(t, limit, &rows, &n) != WF_OK) return arr;
    for (size_t i = 0; i < n; i++) {
        const wf_tracker_row *r = &rows[i];
        cJSON *o = cJSON_CreateObject();
        add_text(o, "key", r->key);
        add_text(o, "source_id", r->source_id);
        add_text(o, "source_time", r->source_time);
        add_text(o, "state", r->state);
        add_int(o, "attempts", r->attempts);
        add_text(o, "error_class", r->error_class);
        add_text(o, "last_error", r->last_error);
        add_text(o, "jsm_key", r->jsm_key);
        add_text(o, "updated_at", r->updated_at);
        cJSON_AddItemToArray(arr, o);
    }
    wf_tracker_rows_free(rows, n);
    return arr;
}

static cJSON *fixes_json(wf_tracker *t, int limit)
{
    cJSON *arr = cJSON_CreateArray();
    wf_tracker_fix *fixes = NULL;
    size_t n = 0;
    if (wf_tracker_open_fixes(t, limit, &fixes, &n) != WF_OK) return arr;
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        add_int(o, "id", fixes[i].id);
        add_text(o, "key", fixes[i].key);
        add_text(o, "jsm_key", fixes[i].jsm_key);
        add_text(o, "field_id", fixes[i].field_id);
        add_text(o, "value", fixes[i].value);
        add_text(o, "message", fixes[i].message);
        add_text(o, "created_at", fixes[i].created_at);
        cJSON_AddItemToArray(arr, o);
    }
    wf_tracker_fixes_free(fixes, n);
    return arr;
}

/* ---- change detection ------------------------------------------------- */

typedef struct {
    wf_job *job;
    const wf_field_list *fields;
    const wf_mapping *mapping;
    char (*keys)[WF_KEY_HEX_LEN + 1];   /* delivered keys to compare, sorted */
    bool *matched;
    size_t nkeys;
    cJSON *changed;
    long checked;
    wf_err err;
    char errmsg[512];
} change_scan;

static int cmp_key(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static int cmp_time(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The fields JSM refused at delivery were dropped before the checksum was
 * taken, and each left a manual-fix entry: drop them again so that the
 * recomputed checksum compares like with like. */
static void drop_refused_fields(wf_tracker *t, const char *key, wf_mapped *mapped)
{
    char **ids = NULL;
    size_t n = 0;
    if (wf_tracker_fix_fields(t, key, &ids, &n) != WF_OK) return;
    for (size_t i = 0; i < n; i++) wf_mapped_drop_field(mapped, ids[i]);
    wf_tracker_strings_free(ids, n);
}

static wf_row_action on_scanned_row(const wf_submission *sub, void *ctx)
{
    change_scan *cs = ctx;
    const wf_config *cfg = &cs->job->cfg;
    char key[WF_KEY_HEX_LEN + 1];
    if (wf_key_compute(sub, (const char *const *)cfg->key_columns, cfg->n_key_columns, key, cs->errmsg,
                       sizeof cs->errmsg) != WF_OK) {
        cs->err = WF_ERR_CONFIG;
        return WF_ROW_STOP;
    }
    char (*hit)[WF_KEY_HEX_LEN + 1] = bsearch(key, cs->keys, cs->nkeys, sizeof *cs->keys, cmp_key);
    if (!hit || cs->matched[hit - cs->keys]) return WF_ROW_NEXT;
    cs->matched[hit - cs->keys] = true;

    wf_tracker_row row;
    bool found = false;
    wf_mapped mapped = {0};
    char *checksum = NULL;
    if (wf_tracker_get(cs->job->tracker, key, &row, &found) != WF_OK) {
        snprintf(cs->errmsg, sizeof cs->errmsg, "%s", wf_tracker_errmsg(cs->job->tracker));
        cs->err = WF_ERR_TRACKER;
        return WF_ROW_STOP;
    }
    if (!found || strcmp(row.state, "delivered") != 0 || !row.content_checksum) goto out;
    if (wf_map_submission(cs->mapping, cs->fields, sub, key, cfg->key_field, &mapped) != WF_OK) {
        cs->err = WF_ERR_NOMEM;
        goto out;
    }
    drop_refused_fields(cs->job->tracker, key, &mapped);
    if (!(checksum = wf_mapped_checksum(mapped.values))) {
        cs->err = WF_ERR_NOMEM;
        goto out;
    }
    cs->checked++;
    if (strcmp(checksum, row.content_checksum) != 0) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "key", key);
        cJSON_AddStringToObject(c, "source_id", sub->id);
        cJSON_AddStringToObject(c, "source_time", sub->time_text);
        if (row.jsm_key) cJSON_AddStringToObject(c, "jsm_key", row.jsm_key);
        else cJSON_AddNullToObject(c, "jsm_key");
        if (row.delivered_at) cJSON_AddStringToObject(c, "delivered_at", row.delivered_at);
        else cJSON_AddNullToObject(c, "delivered_at");
        cJSON_AddItemToArray(cs->changed, c);
    }
out:
    if (found) wf_tracker_row_free(&row);
    wf_mapped_free(&mapped);
    free(checksum);
    if (cs->err == WF_ERR_NOMEM) snprintf(cs->errmsg, sizeof cs->errmsg, "out of memory");
    return cs->err == WF_OK ? WF_ROW_NEXT : WF_ROW_STOP;
}

/* Recomputes the content checksum of the newest CHANGED_SCAN_LIMIT delivered
 * rows from their source rows, the way delivery computed it (same mapping
 * file, the field list cached in the tracker), and lists those that differ.
 * Fills report.changed and report.change_detection; src may be NULL. */
static void add_changed(cJSON *report, wf_job *job, wf_source *src, const char *db_error)
{
    change_scan cs = {.job = job, .changed = cJSON_AddArrayToObject(report, "changed")};
    cJSON *info = cJSON_AddObjectToObject(report, "change_detection");
    wf_field_list fields = {0};
    wf_mapping mapping = {0};
    int64_t *times = NULL;
    size_t ntimes = 0;
    char *raw = NULL, meta_name[128];
    long delivered_with_checksum = 0;

    if (!src) {
        snprintf(cs.errmsg, sizeof cs.errmsg, "unknown: %s", db_error);
        goto done;
    }
    if (!job->cfg.service_desk_id || !job->cfg.request_type_id) {
        snprintf(cs.errmsg, sizeof cs.errmsg, "unknown: set JSM_SERVICE_DESK_ID and JSM_REQUEST_TYPE_ID to compare "
                 "delivered rows with the source");
        goto done;
    }
    snprintf(meta_name, sizeof meta_name, "fields:%s:%s", job->cfg.service_desk_id, job->cfg.request_type_id);
    if (wf_tracker_meta_get(job->tracker, meta_name, &raw) != WF_OK) {
        snprintf(cs.errmsg, sizeof cs.errmsg, "%s", wf_tracker_errmsg(job->tracker));
        goto done;
    }
    if (!raw) {
        snprintf(cs.errmsg, sizeof cs.errmsg, "unknown: the tracker has no field list for request type %s yet "
                 "(run `wf2jsm fields` or a sync)", job->cfg.request_type_id);
        goto done;
    }
    if (wf_fields_parse(raw, &fields, cs.errmsg, sizeof cs.errmsg) != WF_OK ||
        wf_mapping_load(job->cfg.field_mapping, &fields, &mapping, cs.errmsg, sizeof cs.errmsg) != WF_OK)
        goto done;
    cs.fields = &fields;
    cs.mapping = &mapping;

    cs.keys = calloc(CHANGED_SCAN_LIMIT, sizeof *cs.keys);
    cs.matched = calloc(CHANGED_SCAN_LIMIT, sizeof *cs.matched);
    times = calloc(CHANGED_SCAN_LIMIT, sizeof *times);
    if (!cs.keys || !cs.matched || !times) {
        snprintf(cs.errmsg, sizeof cs.errmsg, "out of memory");
        goto done;
    }
    if (wf_tracker_newest_delivered(job->tracker, CHANGED_SCAN_LIMIT, cs.keys, times, &cs.nkeys,
                                    &delivered_with_checksum) != WF_OK) {
        snprintf(cs.errmsg, sizeof cs.errmsg, "%s", wf_tracker_errmsg(job->tracker));
        goto done;
    }
    qsort(cs.keys, cs.nkeys, sizeof *cs.keys, cmp_key);
    qsort(times, cs.nkeys, sizeof *times, cmp_time);
    for (size_t i = 0; i < cs.nkeys; i++)
        if (ntimes == 0 || times[ntimes - 1] != times[i]) times[ntimes++] = times[i];
    char err[1024];
    /* Each scanned row is looked up in the tracker: one read for all of
     * them rather than a round trip each to a PostgreSQL tracker. */
    if (ntimes > 0 && wf_tracker_prefetch(job->tracker, times[0], times[ntimes - 1]) != WF_OK) {
        snprintf(cs.errmsg, sizeof cs.errmsg, "%s", wf_tracker_errmsg(job->tracker));
        goto done;
    }
    if (wf_source_stream_times(src, times, ntimes, on_scanned_row, &cs, err, sizeof err) != WF_OK && cs.err == WF_OK)
        snprintf(cs.errmsg, sizeof cs.errmsg, "%s", err);

done:
    if (!cs.keys) {
        /* Not read above: the figure that says whether the scan covers
         * every delivered row still comes from the tracker. */
        char one[1][65];
        int64_t one_time[1];
        size_t none = 0;
        wf_tracker_newest_delivered(job->tracker, 0, one, one_time, &none, &delivered_with_checksum);
    }
    long not_found = 0;
    for (size_t i = 0; cs.matched && i < cs.nkeys; i++) not_found += !cs.matched[i];
    add_int(info, "checked", cs.checked);
    add_int(info, "limit", CHANGED_SCAN_LIMIT);
    cJSON_AddBoolToObject(info, "complete", !cs.errmsg[0] && delivered_with_checksum <= CHANGED_SCAN_LIMIT);
    add_int(info, "not_found_in_source", cs.errmsg[0] ? 0 : not_found);
    if (cs.errmsg[0]) {
        wf_log_redact(job->log, cs.errmsg);
        job_one_line(cs.errmsg);
        cJSON_AddStringToObject(info, "error", cs.errmsg);
    } else {
        cJSON_AddNullToObject(info, "error");
    }
    free(cs.keys);
    free(cs.matched);
    free(times);
    free(raw);
    wf_mapping_free(&mapping);
    wf_fields_free(&fields);
}

/* ---- the report ------------------------------------------------------- */

static void add_cursor(cJSON *report, wf_tracker *t)
{
    cJSON *cursor = cJSON_AddObjectToObject(report, "cursor");
    char *source_time = NULL;
    int64_t us = 0;
    bool found = false;
    if (wf_tracker_newest(t, &source_time, &us, &found) == WF_OK && found) {
        char iso[48];
        wf_format_time_us(us, iso, sizeof iso);
        cJSON_AddStringToObject(cursor, "source_time", source_time);
        add_int(cursor, "source_time_us", (long long)us);
        cJSON_AddStringToObject(cursor, "utc", iso);
    } else {
        cJSON_AddNullToObject(cursor, "source_time");
        cJSON_AddNullToObject(cursor, "source_time_us");
        cJSON_AddNullToObject(cursor, "utc");
    }
    free(source_time);
}

/* How the tracker began: new (JSM held nothing), rebuilt from JSM, or
 * caught up with it, from how many requests (tracker_rebuild.h); null when
 * no check is recorded. */
static void add_tracker_origin(cJSON *report, wf_tracker *tracker)
{
    cJSON *origin = wf_rebuild_meta(tracker);
    char line[512];
    wf_rebuild_describe(origin, line, sizeof line);
    if (!origin) origin = cJSON_CreateNull();
    else cJSON_AddStringToObject(origin, "summary", line);
    cJSON_AddItemToObject(report, "tracker_origin", origin);
}

static void add_backlog(cJSON *report, wf_job *job, wf_source *src, const char *db_error)
{
    cJSON *b = cJSON_AddObjectToObject(report, "backlog");
    wf_backlog backlog;
    char err[1024] = "";
    wf_err rc = wf_backlog_count(job->tracker, src, &backlog, err, sizeof err);
    if (rc == WF_OK && !src) snprintf(err, sizeof err, "%s", db_error);
    wf_log_redact(job->log, err);
    job_one_line(err);
    if (backlog.total >= 0) add_int(b, "count", backlog.total);
    else cJSON_AddNullToObject(b, "count");
    if (backlog.new_rows >= 0) add_int(b, "new_rows", backlog.new_rows);
    else cJSON_AddNullToObject(b, "new_rows");
    if (rc == WF_ERR_TRACKER) cJSON_AddNullToObject(b, "open_rows");
    else add_int(b, "open_rows", backlog.open_rows);
    if (err[0]) cJSON_AddStringToObject(b, "error", err);
    else cJSON_AddNullToObject(b, "error");
}

static cJSON *build_report(wf_job *job, wf_source *src, const char *db_error, int nruns)
{
    cJSON *report = cJSON_CreateObject();
    cJSON *counts = cJSON_AddObjectToObject(report, "counts");
    long by_state[WF_TRACKER_NSTATES] = {0};
    wf_tracker_count_states(job->tracker, by_state);
    for (size_t i = 0; i < WF_TRACKER_NSTATES; i++) add_int(counts, wf_tracker_states[i], by_state[i]);
    add_cursor(report, job->tracker);
    add_tracker_origin(report, job->tracker);
    add_backlog(report, job, src, db_error);
    cJSON_AddItemToObject(report, "runs", runs_json(job->tracker, nruns));
    cJSON_AddItemToObject(report, "problems", problems_json(job->tracker, LIST_LIMIT));
    cJSON_AddItemToObject(report, "manual_fixes", fixes_json(job->tracker, LIST_LIMIT));
    add_changed(report, job, src, db_error);
    return report;
}

/* ---- text output ------------------------------------------------------ */

static const char *str_of(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsRaw(v)) return v->valuestring;
    return "-";
}

static long long num_of(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (cJSON_IsRaw(v)) return strtoll(v->valuestring, NULL, 10);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : 0;
}

/* str_of() made one line, in buf: Jira's messages may span lines. */
static const char *flat_of(const cJSON *obj, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s", str_of(obj, name));
    job_one_line(buf);
    return buf;
}

static bool is_null(const cJSON *obj, const char *name)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, name));
}

/* Replaces every string of the report by its wf_safe_text() form before it
 * is printed as text: reasons, values and keys come from submissions and
 * from Jira, and must not reach the terminal as control sequences or
 * newlines. (--json needs none of this: JSON escapes them itself.) */
static void make_printable(cJSON *node)
{
    for (cJSON *it = node ? node->child : NULL; it; it = it->next) {
        if (cJSON_IsString(it) && wf_safe_text_needed(it->valuestring, 0)) {
            size_t cap = strlen(it->valuestring) * 8 + 1;
            char *shown = malloc(cap);
            if (!shown) { cJSON_SetValuestring(it, "(unprintable)"); continue; }
            wf_safe_text(it->valuestring, shown, cap, 0);
            cJSON_SetValuestring(it, shown);
            free(shown);
        }
        make_printable(it);
    }
}

/* On a terminal: aligned columns with headers. Otherwise: one record per
 * line, "<section> name=value ...", for grep and awk. */
static void print_text(const cJSON *report, bool tty)
{
    const cJSON *it;
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(report, "counts");
    if (tty) {
        printf("%-12s %8s\n", "STATE", "COUNT");
        cJSON_ArrayForEach(it, counts) printf("%-12s %8s\n", it->string, it->valuestring);
    } else {
        cJSON_ArrayForEach(it, counts) printf("count %s=%s\n", it->string, it->valuestring);
    }

    const cJSON *cursor = cJSON_GetObjectItemCaseSensitive(report, "cursor");
    const cJSON *backlog = cJSON_GetObjectItemCaseSensitive(report, "backlog");
    if (tty) {
        printf("\n%-12s %s\n", "cursor", is_null(cursor, "utc") ? "none (empty tracker)" : str_of(cursor, "utc"));
        if (is_null(backlog, "count"))
            printf("%-12s unknown (%s open in the tracker; %s)\n", "backlog", str_of(backlog, "open_rows"),
                   str_of(backlog, "error"));
        else
            printf("%-12s %s (%s new after the cursor, %s open in the tracker)\n", "backlog", str_of(backlog, "count"),
                   str_of(backlog, "new_rows"), str_of(backlog, "open_rows"));
    } else {
        printf("cursor %s\n", is_null(cursor, "utc") ? "none" : str_of(cursor, "utc"));
        printf("backlog count=%s new_rows=%s open_rows=%s%s%s\n", is_null(backlog, "count") ? "unknown" : str_of(backlog, "count"),
               is_null(backlog, "new_rows") ? "unknown" : str_of(backlog, "new_rows"), str_of(backlog, "open_rows"),
               is_null(backlog, "error") ? "" : " error=", is_null(backlog, "error") ? "" : str_of(backlog, "error"));
    }

    /* Said only when there is something to say: a tracker that was new,
     * rebuilt or caught up, or an empty one the next sync will check. */
    const cJSON *origin = cJSON_GetObjectItemCaseSensitive(report, "tracker_origin");
    if (!cJSON_IsNull(origin) || is_null(cursor, "utc")) {
        char line[512];
        wf_rebuild_describe(cJSON_IsNull(origin) ? NULL : origin, line, sizeof line);
        if (tty) printf("%-12s %s\n", "tracker", line);
        else printf("tracker %s\n", line);
    }

    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(report, "runs");
    if (tty) {
        printf("\n%-5s %-8s %-20s %4s %5s %7s %7s %9s %6s %6s %7s %4s %6s %4s %7s\n", "RUN", "COMMAND", "STARTED",
               "EXIT", "SEEN", "CREATED", "ADOPTED", "DELIVERED", "FAILED", "PARKED", "RETRIES", "429S", "REQ/S", "PEAK",
               "MS");
        cJSON_ArrayForEach(it, runs)
            printf("%-5lld %-8.8s %-20s %4s %5lld %7lld %7lld %9lld %6lld %6lld %7lld %4lld %6s %4lld %7lld\n",
                   num_of(it, "id"), str_of(it, "command"), str_of(it, "started_at"),
                   is_null(it, "exit_code") ? "-" : str_of(it, "exit_code"), num_of(it, "seen"), num_of(it, "created"),
                   num_of(it, "adopted"), num_of(it, "delivered"), num_of(it, "failed"), num_of(it, "parked"),
                   num_of(it, "retries"), num_of(it, "http_429"), str_of(it, "requests_per_second"),
                   num_of(it, "peak_in_flight"), num_of(it, "duration_ms"));
    } else {
        cJSON_ArrayForEach(it, runs)
            printf("run id=%lld command=%s started=%s exit=%s seen=%lld created=%lld adopted=%lld delivered=%lld "
                   "failed=%lld parked=%lld retries=%lld http_429=%lld http_requests=%lld requests_per_second=%s "
                   "peak_in_flight=%lld garbled=%lld lookups=%lld lookup_calls=%lld duration_ms=%lld\n", num_of(it, "id"),
                   str_of(it, "command"), str_of(it, "started_at"), is_null(it, "exit_code") ? "-" : str_of(it, "exit_code"),
                   num_of(it, "seen"), num_of(it, "created"), num_of(it, "adopted"), num_of(it, "delivered"),
                   num_of(it, "failed"), num_of(it, "parked"), num_of(it, "retries"), num_of(it, "http_429"),
                   num_of(it, "http_requests"), str_of(it, "requests_per_second"), num_of(it, "peak_in_flight"),
                   num_of(it, "garbled"), num_of(it, "lookups"), num_of(it, "lookup_calls"), num_of(it, "duration_ms"));
    }

    char flat[2][1024];
    const cJSON *problems = cJSON_GetObjectItemCaseSensitive(report, "problems");
    if (tty && cJSON_GetArraySize(problems) > 0)
        printf("\nparked and failed (fix the cause, then `wf2jsm retry`):\n  %-7s %-10s %-16s %8s  %s\n",
               "STATE", "ID", "KEY", "ATTEMPTS", "REASON");
    cJSON_ArrayForEach(it, problems) {
        if (tty)
            printf("  %-7s %-10s %-16.16s %8lld  %s\n", str_of(it, "state"), str_of(it, "source_id"), str_of(it, "key"),
                   num_of(it, "attempts"), flat_of(it, "last_error", flat[0], sizeof flat[0]));
        else
            printf("problem state=%s id=%s key=%s attempts=%lld class=%s reason=%s\n", str_of(it, "state"),
                   str_of(it, "source_id"), str_of(it, "key"), num_of(it, "attempts"), str_of(it, "error_class"),
                   flat_of(it, "last_error", flat[0], sizeof flat[0]));
    }

    const cJSON *fixes = cJSON_GetObjectItemCaseSensitive(report, "manual_fixes");
    if (tty && cJSON_GetArraySize(fixes) > 0)
        printf("\nmanual fixes (set these fields on the tickets by hand):\n  %-10s %-20s %-20s  %s\n", "TICKET",
               "FIELD", "VALUE", "REASON");
    cJSON_ArrayForEach(it, fixes) {
        if (tty)
            printf("  %-10s %-20s %-20.20s  %s\n", str_of(it, "jsm_key"), str_of(it, "field_id"),
                   flat_of(it, "value", flat[0], sizeof flat[0]), flat_of(it, "message", flat[1], sizeof flat[1]));
        else
            printf("manual_fix id=%lld ticket=%s field=%s value=%s reason=%s\n", num_of(it, "id"), str_of(it, "jsm_key"),
                   str_of(it, "field_id"), flat_of(it, "value", flat[0], sizeof flat[0]),
                   flat_of(it, "message", flat[1], sizeof flat[1]));
    }

    const cJSON *changed = cJSON_GetObjectItemCaseSensitive(report, "changed");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(report, "change_detection");
    if (tty) {
        if (!is_null(info, "error"))
            printf("\nedited after delivery: %s\n", str_of(info, "error"));
        else if (cJSON_GetArraySize(changed) > 0) {
            printf("\nedited in the source after delivery (of the newest %s delivered; `wf2jsm replay --since T "
                   "--update-changed` updates the tickets):\n  %-10s %-10s %-21s %s\n", str_of(info, "checked"),
                   "ID", "TICKET", "DELIVERED", "KEY");
            cJSON_ArrayForEach(it, changed)
                printf("  %-10s %-10s %-21s %.16s\n", str_of(it, "source_id"), str_of(it, "jsm_key"),
                       str_of(it, "delivered_at"), str_of(it, "key"));
        }
    } else {
        cJSON_ArrayForEach(it, changed)
            printf("changed id=%s ticket=%s delivered=%s key=%s\n", str_of(it, "source_id"), str_of(it, "jsm_key"),
                   str_of(it, "delivered_at"), str_of(it, "key"));
        printf("change_detection checked=%s limit=%s complete=%s%s%s\n", str_of(info, "checked"), str_of(info, "limit"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(info, "complete")) ? "yes" : "no",
               is_null(info, "error") ? "" : " error=", is_null(info, "error") ? "" : str_of(info, "error"));
    }
}

int cmd_status(int argc, char **argv)
{
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'}, {"runs", required_argument, NULL, 'r'},
        {"env", required_argument, NULL, 'e'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *env_file = NULL;
    int json = 0, nruns = 5, opt;
    char *end;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'r':
            nruns = (int)strtol(optarg, &end, 10);
            if (*end || nruns < 1 || nruns > 10000) {
                fprintf(stderr, "wf2jsm status: --runs takes a number from 1 to 10000\n");
                return 2;
            }
            break;
        case 'e': env_file = optarg; break;
        case 'h': fputs(status_usage, stdout); return 0;
        default: fputs(status_usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wf2jsm status: unexpected argument '%s'\n%s", argv[optind], status_usage);
        return 2;
    }
    wf_job job;
    int status = 0;
    cJSON *report = NULL;
    char *text = NULL, *password = NULL, db_error[1024] = "";
    wf_err rc = job_setup(&job, "status", env_file, JOB_NEEDS_TRACKER);
    if (rc != WF_OK) {
        status = job_fail(&job, rc, NULL);
        goto out;
    }
    /* The tracker part is worth showing when the database is down, so the
     * source is connected here rather than by job_setup(), which would
     * stop at the failure. */
    if (wf_source_connect(&job.cfg, &job.source, &password, db_error, sizeof db_error) != WF_OK) job.source = NULL;
    wf_log_add_secret(job.log, password);
    wf_log_redact(job.log, db_error);
    report = build_report(&job, job.source, db_error, nruns);
    if (!report) {
        status = job_fail(&job, WF_ERR_NOMEM, "out of memory building the report");
        goto out;
    }
    if (json) {
        text = cJSON_Print(report);
        if (!text) { status = job_fail(&job, WF_ERR_NOMEM, "out of memory printing the report"); goto out; }
        puts(text);
    } else {
        make_printable(report);
        print_text(report, isatty(STDOUT_FILENO));
    }
out:
    free(text);
    free(password);
    cJSON_Delete(report);
    job_teardown(&job);
    return status;
}
