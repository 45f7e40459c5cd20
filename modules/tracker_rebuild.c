/* tracker_rebuild.c: the tracker learns again from JSM what it lost. */
#define _POSIX_C_SOURCE 200809L
#include "tracker_rebuild.h"
#include "attachments.h"
#include "jira_fields.h"
#include "tracker_admin.h"
#include "unique_key.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MODULE "tracker_rebuild"
typedef struct {
    char prefix[WF_KEY_LABEL_PREFIX_LEN + 1];
    char *jsm_key, *issue_id;
    char **files;          /* names of the request's attachments */
    size_t nfiles;
    bool files_known;      /* the search returned the attachment field */
    bool first;            /* lowest-numbered request of its key: the one adopted */
    bool is_new;           /* the tracker lacks it, or holds its key without a request */
    bool used;             /* a source row has its key */
} listed;

typedef struct {
    listed *items;
    size_t n;
} listing;

static void listing_free(listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].jsm_key);
        free(l->items[i].issue_id);
        for (size_t j = 0; j < l->items[i].nfiles; j++) free(l->items[i].files[j]);
        free(l->items[i].files);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* Records the error that stops the run, as process_batch does. */
static wf_err fail(wf_run *run, wf_err rc, const char *msg)
{
    run->fatal = rc;
    snprintf(run->fatal_msg, sizeof run->fatal_msg, "%s", msg);
    wf_log_redact(run->log, run->fatal_msg);
    wf_log_kv(run->log, MODULE, "ERROR", "event", "rebuild_stopped", "class", wf_strerror(rc), "error",
              run->fatal_msg, NULL);
    return rc;
}

/* Nothing may be decided on a listing Jira did not give whole: every
 * failure stops the run before it creates anything. A refusal or an
 * unreadable reply is reported as Jira trouble (exit 4), like a failed
 * field lookup, since the next run simply asks again. */
static wf_err jira_fail(wf_run *run, wf_jsm *jsm, wf_err rc, const char *doing)
{
    char msg[1024];
    if (rc == WF_ERR_JIRA_TEMPORARY || rc == WF_ERR_JIRA_REJECTED || rc == WF_ERR_JIRA_PROTOCOL)
        rc = WF_ERR_JIRA_UNREACHABLE;
    snprintf(msg, sizeof msg, "%s: %s (nothing was created; the next run asks again)", doing, wf_jsm_last_error(jsm));
    return fail(run, rc, msg);
}

static wf_err tracker_fail(wf_run *run, wf_err rc)
{
    return fail(run, rc, wf_tracker_errmsg(run->tracker));
}

bool wf_rebuild_label_prefix(const char *label, char out[WF_KEY_LABEL_PREFIX_LEN + 1])
{
    size_t n = strlen(WF_KEY_LABEL);
    if (strncmp(label, WF_KEY_LABEL, n) != 0 || label[n] != '-' || strlen(label + n + 1) != WF_KEY_LABEL_PREFIX_LEN)
        return false;
    for (size_t i = 0; i < WF_KEY_LABEL_PREFIX_LEN; i++) {
        char c = label[n + 1 + i];
        if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        out[i] = c;
    }
    out[WF_KEY_LABEL_PREFIX_LEN] = '\0';
    return true;
}

/* The prefix of a whole key held in SYNC_KEY_FIELD; false when the value
 * is not a key. */
static bool field_key_prefix(const char *value, char out[WF_KEY_LABEL_PREFIX_LEN + 1])
{
    if (strlen(value) != WF_KEY_HEX_LEN) return false;
    for (size_t i = 0; i < WF_KEY_HEX_LEN; i++) {
        char c = value[i];
        if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        if (i < WF_KEY_LABEL_PREFIX_LEN) out[i] = c;
    }
    out[WF_KEY_LABEL_PREFIX_LEN] = '\0';
    return true;
}

/* The request type's key carrier: from the fields the run has loaded, else
 * from the tracker's cache, else from JSM (then cached, as the mapping
 * does). The mapping itself is not needed, so a tick on an empty table
 * still works before `wf2jsm fields` has written it. */
static wf_err key_carrier(wf_run *run, wf_jsm *jsm, wf_key_carrier *carrier)
{
    if (run->mapping_ready) {
        *carrier = wf_fields_key_carrier(&run->fields, run->cfg->key_field);
        return WF_OK;
    }
    char name[160], err[1024], *raw = NULL;
    wf_field_list fields = {0};
    snprintf(name, sizeof name, "fields:%s:%s", run->cfg->service_desk_id, run->cfg->request_type_id);
    wf_err rc = wf_tracker_meta_get(run->tracker, name, &raw);
    if (rc != WF_OK) return tracker_fail(run, rc);
    if (!raw) {
        if ((rc = wf_jsm_get_request_type_fields(jsm, &raw)) != WF_OK)
            return jira_fail(run, jsm, rc, "reading the request type's fields");
        if ((rc = wf_tracker_meta_set(run->tracker, name, raw)) != WF_OK) {
            free(raw);
            return tracker_fail(run, rc);
        }
    }
    rc = wf_fields_parse(raw, &fields, err, sizeof err);
    free(raw);
    if (rc != WF_OK) return fail(run, rc, err);
    *carrier = wf_fields_key_carrier(&fields, run->cfg->key_field);
    wf_fields_free(&fields);
    if (*carrier == WF_KEY_VIA_NOTHING) {
        snprintf(err, sizeof err, "request type %s has no labels field to carry the submission key%s%s%s: "
                 "add Labels to the request type, or set SYNC_KEY_FIELD to a text field's id",
                 run->cfg->request_type_id, run->cfg->key_field ? " and SYNC_KEY_FIELD=" : "",
                 run->cfg->key_field ? run->cfg->key_field : "", run->cfg->key_field ? " is not one of its fields" : "");
        return fail(run, WF_ERR_CONFIG, err);
    }
    return WF_OK;
}

static bool all_digits(const char *s)
{
    if (!s || !*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

/* The id of the service desk's project, which bounds the search to this
 * desk's requests (another desk's wf2jsm carries the same labels). Cached
 * in meta: it never changes for a desk. */
static wf_err project_id(wf_run *run, wf_jsm *jsm, char *out, size_t len)
{
    char name[160], *cached = NULL;
    snprintf(name, sizeof name, "jsm_project:%s", run->cfg->service_desk_id);
    wf_err rc = wf_tracker_meta_get(run->tracker, name, &cached);
    if (rc != WF_OK) return tracker_fail(run, rc);
    if (all_digits(cached)) {
        snprintf(out, len, "%s", cached);
        free(cached);
        return WF_OK;
    }
    free(cached);
    cJSON *desk = NULL;
    if ((rc = wf_jsm_get_service_desk(jsm, &desk)) != WF_OK) return jira_fail(run, jsm, rc, "reading the service desk");
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(desk, "projectId");
    if (!cJSON_IsString(pid) || !all_digits(pid->valuestring)) {
        char msg[256];
        snprintf(msg, sizeof msg, "service desk %s: the reply has no numeric projectId", run->cfg->service_desk_id);
        cJSON_Delete(desk);
        return fail(run, WF_ERR_JIRA_UNREACHABLE, msg);
    }
    snprintf(out, len, "%s", pid->valuestring);
    cJSON_Delete(desk);
    if ((rc = wf_tracker_meta_set(run->tracker, name, out)) != WF_OK) return tracker_fail(run, rc);
    return WF_OK;
}

/* Jira keys sort by their number within a project, as JQL's ORDER BY key:
 * the first request of a key is the one sync's own lookup adopts. */
static long jsm_key_number(const char *key)
{
    const char *dash = strrchr(key, '-');
    return dash ? strtol(dash + 1, NULL, 10) : 0;
}

static int compare_listed(const void *a, const void *b)
{
    const listed *x = a, *y = b;
    int c = strcmp(x->prefix, y->prefix);
    if (c) return c;
    long nx = jsm_key_number(x->jsm_key), ny = jsm_key_number(y->jsm_key);
    return nx < ny ? -1 : nx > ny;
}

/* The first listed request carrying prefix, or NULL. */
static listed *find_listed(const listing *l, const char *prefix)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strncmp(l->items[mid].prefix, prefix, WF_KEY_LABEL_PREFIX_LEN) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < l->n && strncmp(l->items[lo].prefix, prefix, WF_KEY_LABEL_PREFIX_LEN) == 0 ? &l->items[lo] : NULL;
}

/* Fills item from one issue of the search; false (item untouched but
 * possibly with strings to free) when it carries no key. */
static wf_err read_issue(const cJSON *issue, wf_key_carrier carrier, const char *key_field, listed *item, bool *keyed)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(issue, "key");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(issue, "id");
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(issue, "fields");
    *keyed = false;
    if (!cJSON_IsString(key)) return WF_OK;
    if (carrier == WF_KEY_VIA_LABEL) {
        const cJSON *l;
        cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(fields, "labels")) {
            if (cJSON_IsString(l) && wf_rebuild_label_prefix(l->valuestring, item->prefix)) {
                *keyed = true;
                break;
            }
        }
    } else {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(fields, key_field);
        *keyed = cJSON_IsString(v) && field_key_prefix(v->valuestring, item->prefix);
    }
    if (!*keyed) return WF_OK;
    item->jsm_key = strdup(key->valuestring);
    item->issue_id = cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
    if (!item->jsm_key) return WF_ERR_NOMEM;
    const cJSON *atts = cJSON_GetObjectItemCaseSensitive(fields, "attachment");
    if (!cJSON_IsArray(atts)) return WF_OK;   /* unknown: the row is left attaching and listed later */
    item->files_known = true;
    size_t n = (size_t)cJSON_GetArraySize(atts);
    item->files = calloc(n ? n : 1, sizeof *item->files);
    if (!item->files) return WF_ERR_NOMEM;
    const cJSON *a;
    cJSON_ArrayForEach(a, atts) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(a, "filename");
        if (!cJSON_IsString(name)) continue;
        if (!(item->files[item->nfiles] = strdup(name->valuestring))) return WF_ERR_NOMEM;
        item->nfiles++;
    }
    return WF_OK;
}

/* Lists the requests of the desk's project that carry a key, with their
 * attachment names, sorted by key prefix and Jira key; *duplicates counts
 * the requests after the first of a key. */
static wf_err list_requests(wf_run *run, listing *out, int *duplicates)
{
    wf_jsm *jsm;
    wf_key_carrier carrier;
    char pid[64], jql[512];
    cJSON *issues = NULL, *flist = NULL;
    char *fields = NULL;
    memset(out, 0, sizeof *out);
    *duplicates = 0;
    wf_err rc = wf_run_jsm(run, &jsm);
    if (rc != WF_OK) return fail(run, rc, run->fatal_msg);
    if ((rc = key_carrier(run, jsm, &carrier)) != WF_OK || (rc = project_id(run, jsm, pid, sizeof pid)) != WF_OK)
        return rc;
    const char *kf = run->cfg->key_field;
    if (carrier == WF_KEY_VIA_LABEL)
        snprintf(jql, sizeof jql, "project = %s AND labels = \"%s\" ORDER BY key ASC", pid, WF_KEY_LABEL);
    else if (strncmp(kf, "customfield_", 12) == 0)
        snprintf(jql, sizeof jql, "project = %s AND cf[%s] is not EMPTY ORDER BY key ASC", pid, kf + 12);
    else
        snprintf(jql, sizeof jql, "project = %s AND %s is not EMPTY ORDER BY key ASC", pid, kf);
    if (!(flist = cJSON_CreateArray()) ||
        !cJSON_AddItemToArray(flist, cJSON_CreateString(carrier == WF_KEY_VIA_LABEL ? "labels" : kf)) ||
        !cJSON_AddItemToArray(flist, cJSON_CreateString("attachment")) ||
        !(fields = cJSON_PrintUnformatted(flist))) {
        rc = fail(run, WF_ERR_NOMEM, "out of memory while listing requests");
        goto out;
    }
    if ((rc = wf_jsm_search(jsm, jql, fields, &issues)) != WF_OK) {
        rc = jira_fail(run, jsm, rc, "listing the requests that carry a submission key");
        goto out;
    }
    size_t n = (size_t)cJSON_GetArraySize(issues);
    if (!(out->items = calloc(n ? n : 1, sizeof *out->items))) {
        rc = fail(run, WF_ERR_NOMEM, "out of memory while listing requests");
        goto out;
    }
    const cJSON *issue;
    cJSON_ArrayForEach(issue, issues) {
        bool keyed = false;
        listed *item = &out->items[out->n];
        rc = read_issue(issue, carrier, kf, item, &keyed);
        if (keyed || rc != WF_OK) out->n++;   /* counted, so that listing_free frees it */
        if (rc != WF_OK) {
            rc = fail(run, rc, "out of memory while listing requests");
            goto out;
        }
    }
    qsort(out->items, out->n, sizeof *out->items, compare_listed);
    for (size_t i = 0; i < out->n; i++) {
        out->items[i].first = i == 0 || strcmp(out->items[i].prefix, out->items[i - 1].prefix) != 0;
        if (!out->items[i].first) {
            (*duplicates)++;
            wf_log_kv(run->log, MODULE, "WARN", "event", "duplicate_requests", "jsm", out->items[i].jsm_key,
                      "key_prefix", out->items[i].prefix, "hint", "run `wf2jsm reconcile` to list them", NULL);
        }
    }
out:
    if (rc != WF_OK) listing_free(out);
    cJSON_Delete(issues);
    cJSON_Delete(flist);
    free(fields);
    return rc;
}

/* Marks the listed requests the tracker lacks and counts them: no row has
 * the key, or the rows that have it neither hold a request nor expect one.
 * A row with may_exist set is not a tracker behind JSM: its create may have
 * landed (a lost reply, a kill), and sync looks it up by key before
 * creating, as it always does. */
static wf_err mark_new(wf_run *run, listing *l, bool tracker_empty, int *nnew, int *known)
{
    char err[1024];
    *nnew = *known = 0;
    for (size_t i = 0; i < l->n; i++) {
        listed *item = &l->items[i];
        if (!item->first) continue;
        bool has_request = false;
        if (!tracker_empty) {
            wf_tracker_row *rows = NULL;
            size_t nrows = 0;
            wf_admin_query q = {.by = WF_ADMIN_KEY_PREFIX, .text = item->prefix, .until_us = -1};
            wf_err rc = wf_tracker_admin_select(run->tracker, &q, &rows, &nrows, err, sizeof err);
            for (size_t j = 0; rc == WF_OK && j < nrows; j++) has_request |= rows[j].jsm_key || rows[j].may_exist;
            wf_tracker_admin_free_rows(rows, nrows);
            if (rc != WF_OK) return fail(run, rc, err);
        }
        item->is_new = !has_request;
        if (has_request) (*known)++;
        else (*nnew)++;
    }
    return WF_OK;
}

/* ---- the source pass ------------------------------------------------------ */

typedef struct {
    wf_run *run;
    listing *list;
    wf_rebuild_report *rep;
    wf_err rc;
} scan_state;

/* Whether item carries every configured file of submission id. */
static bool carries_all_files(const wf_run *run, const listed *item, const char *id)
{
    bool want[WF_ATTACH_NFORMATS] = {run->cfg->attach_json, run->cfg->attach_csv};
    if (!item->files_known) return false;
    for (int f = 0; f < WF_ATTACH_NFORMATS; f++) {
        if (!want[f]) continue;
        char name[96];
        bool there = false;
        wf_attachment_filename(id, (wf_attach_format)f, name, sizeof name);
        for (size_t i = 0; i < item->nfiles && !there; i++) there = strcmp(item->files[i], name) == 0;
        if (!there) return false;
    }
    return true;
}

/* One source row: recorded with its request, given its request, queued, or
 * left alone (known). Run id 0: a rebuilt row belongs to no run of this
 * tracker, so `rollback --run` never deletes the requests it learned. */
static wf_row_action on_source_row(const wf_submission *sub, void *ctx)
{
    scan_state *s = ctx;
    wf_run *run = s->run;
    wf_tracker *t = run->tracker;
    char key[WF_KEY_HEX_LEN + 1], err[512];
    wf_err rc = run->hasher ? WF_OK : wf_key_hasher_new(&run->hasher);
    if (rc != WF_OK) {
        s->rc = fail(run, rc, "libcrypto has no SHA-256");
        return WF_ROW_STOP;
    }
    rc = wf_key_compute_with(run->hasher, sub, (const char *const *)run->cfg->key_columns, run->cfg->n_key_columns,
                             key, err, sizeof err);
    if (rc != WF_OK) {
        s->rc = fail(run, rc, err);
        return WF_ROW_STOP;
    }
    listed *item = find_listed(s->list, key);
    /* Two rows sharing 128 bits of key is beyond belief; if it happened,
     * the second is treated as having no request and looked up by sync. */
    if (item && item->used) item = NULL;
    if (item) item->used = true;
    wf_tracker_row row;
    bool found = false;
    if ((rc = wf_tracker_get(t, key, &row, &found)) != WF_OK) goto tracker_failed;
    if (found) {
        if (item && item->is_new && !row.jsm_key && strcmp(row.state, "delivered") != 0) {
            rc = wf_tracker_record_created(t, key, item->jsm_key, item->issue_id, 0, true);
            if (rc == WF_OK) {
                s->rep->adopted++;
                s->rep->incomplete++;
                wf_log_kv(run->log, MODULE, "INFO", "event", "adopted", "key", key, "id", sub->id, "jsm",
                          item->jsm_key, "state", "attaching", NULL);
            }
        }
        wf_tracker_row_free(&row);
        if (rc != WF_OK) goto tracker_failed;
        return WF_ROW_NEXT;
    }
    if ((rc = wf_tracker_record_intent(t, key, sub->id, sub->time_text, sub->time_us, 0)) != WF_OK) goto tracker_failed;
    if (!item) {
        /* No request carries this key, as far as the search shows: queued,
         * and looked up before it is created (may_exist), since a request
         * made moments ago may not be searchable yet. */
        if ((rc = wf_tracker_record_not_sent(t, key, true)) != WF_OK) goto tracker_failed;
        s->rep->queued++;
        return WF_ROW_NEXT;
    }
    if ((rc = wf_tracker_record_created(t, key, item->jsm_key, item->issue_id, 0, true)) != WF_OK) goto tracker_failed;
    bool complete = carries_all_files(run, item, sub->id);
    if (complete && (rc = wf_tracker_record_delivered(t, key, NULL)) != WF_OK) goto tracker_failed;
    s->rep->adopted++;
    if (!complete) s->rep->incomplete++;
    wf_log_kv(run->log, MODULE, "INFO", "event", "adopted", "key", key, "id", sub->id, "jsm", item->jsm_key, "state",
              complete ? "delivered" : "attaching", NULL);
    return WF_ROW_NEXT;
tracker_failed:
    s->rc = tracker_fail(run, rc);
    return WF_ROW_STOP;
}

/* ---- recording -------------------------------------------------------------- */

static wf_err write_meta(wf_run *run, const char *command, const wf_rebuild_report *rep)
{
    wf_err rc;
    char at[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *kind = !rep->tracker_was_empty ? "caught_up" : rep->requests - rep->duplicates > 0 ? "rebuilt" : "new";
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o && cJSON_AddStringToObject(o, "kind", kind) && cJSON_AddStringToObject(o, "at", at) &&
        cJSON_AddStringToObject(o, "command", command) &&
        cJSON_AddNumberToObject(o, "requests", rep->requests) && cJSON_AddNumberToObject(o, "adopted", rep->adopted) &&
        cJSON_AddNumberToObject(o, "incomplete", rep->incomplete) &&
        cJSON_AddNumberToObject(o, "queued", rep->queued) && cJSON_AddNumberToObject(o, "unmatched", rep->unmatched) &&
        cJSON_AddNumberToObject(o, "duplicates", rep->duplicates))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    rc = text ? wf_tracker_meta_set(run->tracker, WF_REBUILD_META, text) : WF_ERR_NOMEM;
    free(text);
    return rc;
}

wf_err wf_rebuild_from_jsm(wf_run *run, const char *command, wf_rebuild_report *rep_out)
{
    wf_rebuild_report rep = {0};
    listing list = {0};
    int nnew = 0;
    int64_t cursor = 0;
    bool has_cursor = false, in_tx = false;
    char err[1024];
    wf_err rc = wf_tracker_cursor(run->tracker, &cursor, &has_cursor);
    if (rc != WF_OK) return tracker_fail(run, rc);
    rep.tracker_was_empty = !has_cursor;
    if ((rc = list_requests(run, &list, &rep.duplicates)) != WF_OK) return rc;
    rep.requests = (int)list.n;
    if ((rc = mark_new(run, &list, rep.tracker_was_empty, &nnew, &rep.known)) != WF_OK) goto out;

    /* One transaction: a rebuild killed halfway leaves the tracker as it
     * was, and the next run starts it again, rather than a tracker that
     * looks rebuilt and lacks half the requests. */
    if ((rc = wf_tracker_begin(run->tracker)) != WF_OK) {
        tracker_fail(run, rc);
        goto out;
    }
    in_tx = true;
    if (nnew > 0) {
        scan_state s = {.run = run, .list = &list, .rep = &rep};
        rc = wf_source_stream_window(run->source, INT64_MIN, WF_NO_UPPER_BOUND, LONG_MAX, on_source_row, &s, err,
                                     sizeof err);
        if (rc != WF_OK && run->fatal == WF_OK) fail(run, rc, err);
        if (rc == WF_OK) rc = s.rc;
        if (rc != WF_OK) goto out;
        for (size_t i = 0; i < list.n; i++) {
            const listed *item = &list.items[i];
            if (!item->first || item->used || !item->is_new) continue;
            rep.unmatched++;
            wf_log_kv(run->log, MODULE, "WARN", "event", "unmatched_request", "jsm", item->jsm_key, "key_prefix",
                      item->prefix, "hint", "no source row has this key; `wf2jsm reconcile` lists it", NULL);
        }
    }
    if ((rep.tracker_was_empty || rep.adopted > 0) && (rc = write_meta(run, command, &rep)) != WF_OK) {
        tracker_fail(run, rc);
        goto out;
    }
    if ((rc = wf_tracker_commit(run->tracker)) != WF_OK) {
        tracker_fail(run, rc);
        goto out;
    }
    in_tx = false;
    run->stats.adopted += rep.adopted;
    char f[7][16];
    int v[] = {rep.requests, rep.adopted, rep.incomplete, rep.known, rep.queued, rep.unmatched, rep.duplicates};
    for (int i = 0; i < 7; i++) snprintf(f[i], sizeof f[i], "%d", v[i]);
    const char *event = !rep.tracker_was_empty ? "caught_up" : rep.requests > 0 ? "rebuilt" : "tracker_new";
    wf_log_kv(run->log, MODULE, "INFO", "event", event, "command", command,
              "requests", f[0], "adopted", f[1], "incomplete", f[2], "known", f[3], "queued", f[4], "unmatched", f[5],
              "duplicates", f[6], NULL);
out:
    if (in_tx) wf_tracker_rollback(run->tracker);
    listing_free(&list);
    if (rep_out) *rep_out = rep;
    return rc;
}

wf_err wf_rebuild_if_empty(wf_run *run, const char *command, wf_rebuild_report *rep, bool *rebuilt)
{
    *rebuilt = false;
    /* Checked before, and it wrote no row: a new tracker that has not met a
     * row yet (or a desk whose requests no source row has). Rows that arrive
     * later are asked about before their create, as every row is. A tracker
     * that was rebuilt with rows and is empty now has lost them again: it is
     * rebuilt again. */
    cJSON *recorded = wf_rebuild_meta(run->tracker);
    const cJSON *adopted = cJSON_GetObjectItemCaseSensitive(recorded, "adopted");
    const cJSON *queued = cJSON_GetObjectItemCaseSensitive(recorded, "queued");
    bool wrote_nothing = recorded && !(cJSON_IsNumber(adopted) && adopted->valueint > 0) &&
                         !(cJSON_IsNumber(queued) && queued->valueint > 0);
    cJSON_Delete(recorded);
    if (wrote_nothing) return WF_OK;
    wf_err rc = wf_rebuild_from_jsm(run, command, rep);
    if (rc == WF_OK) *rebuilt = true;
    return rc;
}

/* ---- reporting ------------------------------------------------------------ */

cJSON *wf_rebuild_meta(wf_tracker *t)
{
    char *text = NULL;
    if (wf_tracker_meta_get(t, WF_REBUILD_META, &text) != WF_OK || !text) return NULL;
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(o) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "kind"))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valueint : 0;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

void wf_rebuild_describe(const cJSON *m, char *buf, size_t len)
{
    if (!m) {
        snprintf(buf, len, "not checked against JSM yet (the next sync on an empty tracker looks for requests to "
                 "rebuild it from)");
        return;
    }
    const char *kind = str(m, "kind");
    char tail[256] = "";
    if (num(m, "incomplete") || num(m, "queued") || num(m, "unmatched") || num(m, "duplicates"))
        snprintf(tail, sizeof tail, "; %d left attaching, %d source row%s queued, %d request%s without a source row, "
                 "%d duplicate request%s", num(m, "incomplete"), num(m, "queued"), num(m, "queued") == 1 ? "" : "s",
                 num(m, "unmatched"), num(m, "unmatched") == 1 ? "" : "s", num(m, "duplicates"),
                 num(m, "duplicates") == 1 ? "" : "s");
    if (strcmp(kind, "new") == 0)
        snprintf(buf, len, "new since %s: JSM held no wf2jsm request for this desk (checked by %s)", str(m, "at"),
                 str(m, "command"));
    else if (strcmp(kind, "rebuilt") == 0)
        snprintf(buf, len, "rebuilt from JSM on %s by %s: %d submissions from %d requests%s", str(m, "at"),
                 str(m, "command"), num(m, "adopted"), num(m, "requests"), tail);
    else
        snprintf(buf, len, "caught up with JSM on %s by %s: %d submissions it lacked, of %d requests listed%s",
                 str(m, "at"), str(m, "command"), num(m, "adopted"), num(m, "requests"), tail);
}
