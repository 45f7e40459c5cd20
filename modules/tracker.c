/* tracker.c: the tracker interface: picks the backend, and says once, for
 * both, which statement each step of the delivery protocol runs and how its
 * rows become structs. */
#define _POSIX_C_SOURCE 200809L
#include "tracker.h"
#include "tracker_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *const wf_tracker_states[WF_TRACKER_NSTATES] = {
    "pending", "creating", "created", "attaching", "delivered", "failed", "parked"};

int64_t wf_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *wf_tracker_errmsg(const wf_tracker *t) { return t->errmsg; }
const char *wf_tracker_path(const wf_tracker *t) { return t->name ? t->name : ""; }
const char *wf_tracker_kind(const wf_tracker *t) { return t->be->kind; }

bool wf_tracker_target_is_pg(const char *target)
{
    return target && (strncasecmp(target, "postgresql://", 13) == 0 || strncasecmp(target, "postgres://", 11) == 0);
}

wf_err wf_tracker_open(const char *path, wf_tracker **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    wf_tracker *t = calloc(1, sizeof *t);
    if (!t) return WF_ERR_NOMEM;
    t->be = wf_tracker_target_is_pg(path) ? &wf_tracker_pg_backend : &wf_tracker_sqlite_backend;
    wf_err err = t->be->open(t, path);
    if (err != WF_OK) {
        snprintf(errbuf, errlen, "%s", t->errmsg[0] ? t->errmsg : wf_strerror(err));
        wf_tracker_close(t);
        return err;
    }
    *out = t;
    return WF_OK;
}

static void drop_cache(wf_tracker *t);
static void check_scheme_before_insert(wf_tracker *t);

void wf_tracker_close(wf_tracker *t)
{
    if (!t) return;
    drop_cache(t);
    t->be->close(t);
    free(t->key_scheme);
    free(t->name);
    free(t);
}

/* ---- running statements ------------------------------------------------ */

/* Converts types ('t' text or NULL, 'i' int64_t, 'b' int) and the variadic
 * values into the backend's argument array. Returns their number, or -1
 * for more than WF_SQL_MAX_ARGS (a programming error, failed loudly by the
 * callers rather than bound short). */
static int collect_args(wf_sql_arg *args, const char *types, va_list ap)
{
    int n = 0;
    if (strlen(types) > WF_SQL_MAX_ARGS) return -1;
    for (; types[n] && n < WF_SQL_MAX_ARGS; n++) {
        args[n].type = types[n] == 't' ? 't' : 'i';
        args[n].text = NULL;
        args[n].num = 0;
        switch (types[n]) {
        case 't': args[n].text = va_arg(ap, const char *); break;
        case 'i': args[n].num = va_arg(ap, int64_t); break;
        default: args[n].num = va_arg(ap, int); break;
        }
    }
    return n;
}

static wf_err too_many_args(wf_tracker *t, const char *doing)
{
    snprintf(t->errmsg, sizeof t->errmsg, "tracker %s: %s failed: internal error: more than %d parameters",
             t->name, doing, WF_SQL_MAX_ARGS);
    return WF_ERR_TRACKER;
}

/* Statements that change nothing: everything else drops the prefetched rows. */
static bool is_read(wf_sql id)
{
    switch (id) {
    case WF_SQL_GET: case WF_SQL_CURSOR: case WF_SQL_COUNT_BETWEEN: case WF_SQL_RETRY_TIMES: case WF_SQL_META_GET:
    case WF_SQL_SELECT_BY_STATE: case WF_SQL_SELECT_BY_CREATED_RUN: case WF_SQL_SELECT_DELIVERED_BETWEEN:
    case WF_SQL_SELECT_FAILED_WITH_TICKET: case WF_SQL_SELECT_WITH_TICKET: case WF_SQL_SELECT_KEY_PREFIX:
    case WF_SQL_SELECT_SOURCE_ID: case WF_SQL_FIX_IS_OPEN: case WF_SQL_RUN_EXISTS: case WF_SQL_STATE_COUNTS:
    case WF_SQL_NEWEST: case WF_SQL_RECENT_RUNS: case WF_SQL_PROBLEMS: case WF_SQL_OPEN_FIXES:
    case WF_SQL_DELIVERED_WITH_CHECKSUM: case WF_SQL_NEWEST_DELIVERED: case WF_SQL_FIX_FIELDS:
    case WF_SQL_RUN_TOTALS: case WF_SQL_LAST_SUCCESS: case WF_SQL_OPEN_COUNT: case WF_SQL_WINDOW_ROWS:
    case WF_SQL_RELAXED_DURABILITY: case WF_SQL_FULL_DURABILITY: case WF_SQL_CUSTOMER_GET:
        return true;
    default:
        return false;
    }
}

/* Runs statement id with the arguments types describes; rows go to on_row. */
static wf_err run(wf_tracker *t, wf_sql id, const char *doing, wf_sql_row_fn on_row, void *ctx, long *changes,
                  const char *types, ...)
{
    wf_sql_arg args[WF_SQL_MAX_ARGS];
    va_list ap;
    va_start(ap, types);
    int n = collect_args(args, types, ap);
    va_end(ap);
    if (n < 0) return too_many_args(t, doing);
    if (changes) *changes = 0;
    if (!t->be->sql[id]) return WF_OK;   /* a statement this backend does not need */
    if (!is_read(id)) drop_cache(t);
    if (id == WF_SQL_INTENT && !t->scheme_checked) check_scheme_before_insert(t);
    return t->be->run(t, id, doing, args, n, on_row, ctx, changes);
}

static const char *col_text(wf_tracker *t, const wf_sql_cols *c, int i) { return t->be->col_text(c, i); }
static int64_t col_int(wf_tracker *t, const wf_sql_cols *c, int i) { return t->be->col_int(c, i); }

static char *col_dup(wf_tracker *t, const wf_sql_cols *c, int i)
{
    const char *s = col_text(t, c, i);
    return s ? strdup(s) : NULL;
}

/* Callback context for one-row, one-value reads. */
typedef struct {
    wf_tracker *t;
    int64_t value;
    bool found, is_null;
    char *text;
} one_value;

static wf_err on_int(const wf_sql_cols *c, void *ctx)
{
    one_value *v = ctx;
    v->found = true;
    v->is_null = v->t->be->col_null(c, 0);
    v->value = col_int(v->t, c, 0);
    return WF_OK;
}

static wf_err on_text(const wf_sql_cols *c, void *ctx)
{
    one_value *v = ctx;
    v->found = true;
    const char *s = col_text(v->t, c, 0);
    if (s && !(v->text = strdup(s))) return WF_ERR_NOMEM;
    return WF_OK;
}

/* Makes room for one more item in items (n used of *cap, each size bytes),
 * doubling its capacity. Returns the array to use from now on, or NULL when
 * memory ran out (items is then left as it was, still the caller's). */
static void *grow(void *items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return items;
    size_t more = *cap ? *cap * 2 : 16;
    void *grown = realloc(items, more * size);
    if (grown) *cap = more;
    return grown;
}

/* ---- rows ----------------------------------------------------------------- */

void wf_tracker_row_free(wf_tracker_row *row)
{
    if (!row) return;
    free(row->source_id);
    free(row->source_time);
    free(row->jsm_key);
    free(row->jsm_issue_id);
    free(row->error_class);
    free(row->last_error);
    free(row->content_checksum);
    free(row->delivered_at);
    free(row->updated_at);
    memset(row, 0, sizeof *row);
}

void wf_tracker_rows_free(wf_tracker_row *rows, size_t n)
{
    if (!rows) return;
    for (size_t i = 0; i < n; i++) wf_tracker_row_free(&rows[i]);
    free(rows);
}

/* Fills row from a result of WF_ROW_COLUMNS (see tracker_backend.h's
 * statements). The strings are copies; a failed copy is WF_ERR_NOMEM. */
static wf_err read_row(wf_tracker *t, const wf_sql_cols *c, wf_tracker_row *row)
{
    memset(row, 0, sizeof *row);
    snprintf(row->key, sizeof row->key, "%s", col_text(t, c, 0) ? col_text(t, c, 0) : "");
    snprintf(row->state, sizeof row->state, "%s", col_text(t, c, 1) ? col_text(t, c, 1) : "");
    row->source_id = col_dup(t, c, 2);
    row->source_time = col_dup(t, c, 3);
    row->source_time_us = col_int(t, c, 4);
    row->may_exist = col_int(t, c, 5) != 0;
    row->jsm_key = col_dup(t, c, 6);
    row->jsm_issue_id = col_dup(t, c, 7);
    row->attempts = (int)col_int(t, c, 8);
    row->last_run = (long)col_int(t, c, 9);
    row->created_run = (long)col_int(t, c, 10);
    row->updated_at_us = col_int(t, c, 11);
    row->error_class = col_dup(t, c, 12);
    row->last_error = col_dup(t, c, 13);
    row->content_checksum = col_dup(t, c, 14);
    row->delivered_at = col_dup(t, c, 15);
    row->updated_at = col_dup(t, c, 16);
    if (!row->source_id || !row->source_time || !row->updated_at) {
        wf_tracker_row_free(row);
        return WF_ERR_NOMEM;
    }
    return WF_OK;
}

typedef struct {
    wf_tracker *t;
    wf_tracker_row *rows;
    size_t n, cap;
} row_list;

static wf_err on_row_list(const wf_sql_cols *c, void *ctx)
{
    row_list *l = ctx;
    void *grown = grow(l->rows, &l->cap, l->n, sizeof *l->rows);
    if (!grown) return WF_ERR_NOMEM;
    l->rows = grown;
    wf_err err = read_row(l->t, c, &l->rows[l->n]);
    if (err == WF_OK) l->n++;
    return err;
}

wf_err wf_tracker_sql_select(wf_tracker *t, wf_sql id, const char *doing, wf_tracker_row **rows, size_t *n,
                               const char *types, ...)
{
    wf_sql_arg args[WF_SQL_MAX_ARGS];
    va_list ap;
    va_start(ap, types);
    int nargs = collect_args(args, types, ap);
    va_end(ap);
    if (nargs < 0) return too_many_args(t, doing);
    row_list l = {.t = t};
    wf_err err = t->be->run(t, id, doing, args, nargs, on_row_list, &l, NULL);
    if (err != WF_OK) {
        if (err == WF_ERR_NOMEM) snprintf(t->errmsg, sizeof t->errmsg, "out of memory %s", doing);
        wf_tracker_rows_free(l.rows, l.n);
        *rows = NULL;
        *n = 0;
        return err;
    }
    *rows = l.rows;
    *n = l.n;
    return WF_OK;
}

wf_err wf_tracker_sql_write(wf_tracker *t, wf_sql id, const char *doing, long *changes, const char *types, ...)
{
    wf_sql_arg args[WF_SQL_MAX_ARGS];
    va_list ap;
    va_start(ap, types);
    int nargs = collect_args(args, types, ap);
    va_end(ap);
    if (nargs < 0) return too_many_args(t, doing);
    if (changes) *changes = 0;
    if (!t->be->sql[id]) return WF_OK;
    if (!is_read(id)) drop_cache(t);
    if (id == WF_SQL_INSERT && !t->scheme_checked) check_scheme_before_insert(t);
    return t->be->run(t, id, doing, args, nargs, NULL, NULL, changes);
}

wf_err wf_tracker_sql_exists(wf_tracker *t, wf_sql id, const char *doing, bool *found, const char *types, ...)
{
    wf_sql_arg args[WF_SQL_MAX_ARGS];
    va_list ap;
    va_start(ap, types);
    int nargs = collect_args(args, types, ap);
    va_end(ap);
    if (nargs < 0) return too_many_args(t, doing);
    one_value v = {.t = t};
    wf_err err = t->be->run(t, id, doing, args, nargs, on_int, &v, NULL);
    *found = err == WF_OK && v.found;
    return err;
}

/* ---- the delivery protocol -------------------------------------------- */

typedef struct {
    wf_tracker *t;
    wf_tracker_row *row;
    bool found;
} get_ctx;

static wf_err on_get(const wf_sql_cols *c, void *ctx)
{
    get_ctx *g = ctx;
    if (g->found) return WF_OK;
    wf_err err = read_row(g->t, c, g->row);
    g->found = err == WF_OK;
    return err;
}

static void drop_cache(wf_tracker *t)
{
    wf_tracker_rows_free(t->cache, t->ncache);
    free(t->by_source);
    t->by_source = NULL;
    t->cache = NULL;
    t->ncache = 0;
}

static int cmp_row_key(const void *a, const void *b)
{
    return strcmp(((const wf_tracker_row *)a)->key, ((const wf_tracker_row *)b)->key);
}

wf_err wf_tracker_prefetch(wf_tracker *t, int64_t from_us, int64_t to_us)
{
    drop_cache(t);
    wf_err err = wf_tracker_sql_select(t, WF_SQL_WINDOW_ROWS, "reading the window's rows", &t->cache, &t->ncache,
                                       "ii", from_us, to_us);
    if (err == WF_OK && t->ncache > 1) qsort(t->cache, t->ncache, sizeof *t->cache, cmp_row_key);
    return err;
}

static char *dup_or_null(const char *s, bool *ok)
{
    char *copy = s ? strdup(s) : NULL;
    if (s && !copy) *ok = false;
    return copy;
}

/* Copies the prefetched row hit into row, which the caller frees; false
 * when a copy failed (row then holds nothing to free). */
static bool copy_cached(const wf_tracker_row *hit, wf_tracker_row *row)
{
    bool ok = true;
    *row = *hit;
    row->source_id = dup_or_null(hit->source_id, &ok);
    row->source_time = dup_or_null(hit->source_time, &ok);
    row->jsm_key = dup_or_null(hit->jsm_key, &ok);
    row->jsm_issue_id = dup_or_null(hit->jsm_issue_id, &ok);
    row->error_class = dup_or_null(hit->error_class, &ok);
    row->last_error = dup_or_null(hit->last_error, &ok);
    row->content_checksum = dup_or_null(hit->content_checksum, &ok);
    row->delivered_at = dup_or_null(hit->delivered_at, &ok);
    row->updated_at = dup_or_null(hit->updated_at, &ok);
    if (!ok) wf_tracker_row_free(row);
    return ok;
}

/* Copies the prefetched row of key into row; false when it is not there
 * (or a copy failed: the caller then asks the tracker). */
static bool cached_get(wf_tracker *t, const char *key, wf_tracker_row *row)
{
    wf_tracker_row probe;
    snprintf(probe.key, sizeof probe.key, "%s", key);
    const wf_tracker_row *hit = t->ncache ? bsearch(&probe, t->cache, t->ncache, sizeof *t->cache, cmp_row_key) : NULL;
    return hit && copy_cached(hit, row);
}

static int cmp_row_source(const void *a, const void *b)
{
    const wf_tracker_row *x = *(const wf_tracker_row *const *)a, *y = *(const wf_tracker_row *const *)b;
    int c = strcmp(x->source_id ? x->source_id : "", y->source_id ? y->source_id : "");
    return c ? c : strcmp(x->source_time ? x->source_time : "", y->source_time ? y->source_time : "");
}

wf_err wf_tracker_get_prefetched_by_source(wf_tracker *t, const char *source_id, const char *source_time,
                                           wf_tracker_row *row, bool *found)
{
    *found = false;
    if (t->ncache == 0) return WF_OK;
    if (!t->by_source) {
        if (!(t->by_source = malloc(t->ncache * sizeof *t->by_source))) return WF_ERR_NOMEM;
        for (size_t i = 0; i < t->ncache; i++) t->by_source[i] = &t->cache[i];
        qsort(t->by_source, t->ncache, sizeof *t->by_source, cmp_row_source);
    }
    wf_tracker_row probe = {.source_id = (char *)source_id, .source_time = (char *)source_time};
    const wf_tracker_row *p = &probe;
    const wf_tracker_row **hit = bsearch(&p, t->by_source, t->ncache, sizeof *t->by_source, cmp_row_source);
    if (!hit || !(*hit)->source_id || !(*hit)->source_time) return WF_OK;
    /* Two rows of one source row would be keys of two schemes: neither is
     * taken for the other (the caller computes the key instead). */
    if ((hit > t->by_source && cmp_row_source(hit - 1, hit) == 0) ||
        (hit + 1 < t->by_source + t->ncache && cmp_row_source(hit + 1, hit) == 0))
        return WF_OK;
    if (!copy_cached(*hit, row)) return WF_ERR_NOMEM;
    *found = true;
    return WF_OK;
}

wf_err wf_tracker_get(wf_tracker *t, const char *key, wf_tracker_row *row, bool *found)
{
    if (cached_get(t, key, row)) {
        *found = true;
        return WF_OK;
    }
    get_ctx g = {.t = t, .row = row};
    wf_err err = run(t, WF_SQL_GET, "reading a submission", on_get, &g, NULL, "t", key);
    *found = err == WF_OK && g.found;
    if (err != WF_OK && g.found) wf_tracker_row_free(row);
    return err;
}

wf_err wf_tracker_record_intent(wf_tracker *t, const char *key, const char *source_id,
                                const char *source_time, int64_t source_time_us, long run_id)
{
    return run(t, WF_SQL_INTENT, "recording a create intent", NULL, NULL, NULL, "tttiii", key, source_id,
               source_time, source_time_us, (int64_t)run_id, wf_now_us());
}

wf_err wf_tracker_record_not_sent(wf_tracker *t, const char *key, bool may_exist_before)
{
    return run(t, WF_SQL_NOT_SENT, "recording that nothing was sent", NULL, NULL, NULL, "tbi", key,
               (int)may_exist_before, wf_now_us());
}

wf_err wf_tracker_record_created(wf_tracker *t, const char *key, const char *jsm_key,
                                 const char *jsm_issue_id, long run_id, bool adopted)
{
    return run(t, WF_SQL_CREATED, "recording a created request", NULL, NULL, NULL, "ttttibi", key, jsm_key,
               jsm_issue_id, adopted ? "attaching" : "created", (int64_t)run_id, (int)adopted, wf_now_us());
}

wf_err wf_tracker_record_attaching(wf_tracker *t, const char *key)
{
    return run(t, WF_SQL_ATTACHING, "recording an attach intent", NULL, NULL, NULL, "ti", key, wf_now_us());
}

wf_err wf_tracker_record_delivered(wf_tracker *t, const char *key, const char *checksum)
{
    return run(t, WF_SQL_DELIVERED, "recording a delivery", NULL, NULL, NULL, "tti", key, checksum, wf_now_us());
}

wf_err wf_tracker_record_failure(wf_tracker *t, const char *key, const char *error_class,
                                 const char *message, bool may_exist, bool park)
{
    return run(t, WF_SQL_FAILURE, "recording a failure", NULL, NULL, NULL, "ttttbi", key, park ? "parked" : "failed",
               error_class, message, (int)may_exist, wf_now_us());
}

wf_err wf_tracker_add_manual_fix(wf_tracker *t, const char *key, const char *jsm_key,
                                 const char *field_id, const char *value, const char *message)
{
    return run(t, WF_SQL_ADD_FIX, "recording a manual fix", NULL, NULL, NULL, "ttttt", key, jsm_key, field_id,
               value, message);
}

wf_err wf_tracker_cursor(wf_tracker *t, int64_t *cursor_us, bool *has_cursor)
{
    one_value v = {.t = t, .is_null = true};
    wf_err err = run(t, WF_SQL_CURSOR, "reading the cursor", on_int, &v, NULL, "");
    *cursor_us = v.value;
    *has_cursor = err == WF_OK && v.found && !v.is_null;
    return err;
}

wf_err wf_tracker_count_between(wf_tracker *t, int64_t from_us, int64_t to_us, long *count)
{
    one_value v = {.t = t};
    wf_err err = run(t, WF_SQL_COUNT_BETWEEN, "counting the window", on_int, &v, NULL, "ii", from_us, to_us);
    *count = (long)v.value;
    return err;
}

typedef struct {
    wf_tracker *t;
    int64_t *times;
    size_t n, cap;
} time_list;

static wf_err on_time(const wf_sql_cols *c, void *ctx)
{
    time_list *l = ctx;
    void *grown = grow(l->times, &l->cap, l->n, sizeof *l->times);
    if (!grown) return WF_ERR_NOMEM;
    l->times = grown;
    l->times[l->n++] = col_int(l->t, c, 0);
    return WF_OK;
}

wf_err wf_tracker_retry_times(wf_tracker *t, int64_t before_us, long skip_run,
                              int64_t **times, size_t *n)
{
    time_list l = {.t = t};
    wf_err err = run(t, WF_SQL_RETRY_TIMES, "listing rows to retry", on_time, &l, NULL, "ii", before_us,
                     (int64_t)skip_run);
    if (err != WF_OK) {
        free(l.times);
        l.times = NULL;
        l.n = 0;
    }
    *times = l.times;
    *n = l.n;
    return err;
}

/* The runs table is a report, not part of the delivery protocol: losing
 * its last row to a power cut harms nothing, so a backend may write it with
 * cheaper commits (SQLite skips the fsync synchronous=FULL costs). */
wf_err wf_tracker_run_begin(wf_tracker *t, const char *command, long *run_id)
{
    one_value v = {.t = t};
    run(t, WF_SQL_RELAXED_DURABILITY, "relaxing durability", NULL, NULL, NULL, "");
    wf_err err = run(t, WF_SQL_RUN_BEGIN, "starting a run", on_int, &v, NULL, "t", command);
    run(t, WF_SQL_FULL_DURABILITY, "restoring durability", NULL, NULL, NULL, "");
    *run_id = err == WF_OK ? (long)v.value : 0;
    /* A run that begins finishes: its last statement is compiled now, which
     * a tick does while the server runs its query, not at its very end. */
    if (err == WF_OK && t->be->prepare) t->be->prepare(t, WF_SQL_RUN_FINISH);
    return err;
}

wf_err wf_tracker_run_finish(wf_tracker *t, long run_id, const wf_run_stats *s,
                             int exit_code, const char *error)
{
    run(t, WF_SQL_RELAXED_DURABILITY, "relaxing durability", NULL, NULL, NULL, "");
    wf_err err = run(t, WF_SQL_RUN_FINISH, "finishing a run", NULL, NULL, NULL,
        "iiiiiiiiiiiiiitiiiii", (int64_t)run_id, (int64_t)exit_code, (int64_t)s->seen, (int64_t)s->created,
        (int64_t)s->adopted, (int64_t)s->delivered, (int64_t)s->failed, (int64_t)s->parked,
        (int64_t)s->attachments_uploaded, (int64_t)s->attachments_failed, (int64_t)s->retries,
        (int64_t)s->http_429, (int64_t)s->manual_fixes, (int64_t)s->duration_ms, error, (int64_t)s->http_requests,
        (int64_t)s->peak_in_flight, (int64_t)s->garbled, (int64_t)s->lookups, (int64_t)s->lookup_calls);
    run(t, WF_SQL_FULL_DURABILITY, "restoring durability", NULL, NULL, NULL, "");
    return err;
}

wf_err wf_tracker_meta_get(wf_tracker *t, const char *name, char **value)
{
    one_value v = {.t = t};
    wf_err err = run(t, WF_SQL_META_GET, "reading meta", on_text, &v, NULL, "t", name);
    if (err != WF_OK) {
        free(v.text);
        v.text = NULL;
    }
    *value = v.text;
    return err;
}

wf_err wf_tracker_meta_set(wf_tracker *t, const char *name, const char *value)
{
    return run(t, WF_SQL_META_SET, "writing meta", NULL, NULL, NULL, "tt", name, value);
}

/* ---- the key scheme ----------------------------------------------------- */

#define KEY_SCHEME_META "key_scheme"
#define KEY_SCHEME_MIXED "mixed"

wf_err wf_tracker_set_key_scheme(wf_tracker *t, const char *scheme)
{
    free(t->key_scheme);
    t->key_scheme = strdup(scheme);
    t->scheme_checked = false;
    return t->key_scheme ? WF_OK : WF_ERR_NOMEM;
}

/* Before this process's first new key: a tracker without a scheme takes
 * this one (its keys so far were made from the same configuration, which
 * the README asks to keep), one with another scheme is marked mixed for
 * good, since its keys now follow two. A failure here only costs the
 * shortcut: the tracker stays unmarked only if the insert fails too. */
static void check_scheme_before_insert(wf_tracker *t)
{
    t->scheme_checked = true;
    if (!t->key_scheme) return;
    char *recorded = NULL;
    if (wf_tracker_meta_get(t, KEY_SCHEME_META, &recorded) != WF_OK) return;
    if (!recorded) wf_tracker_meta_set(t, KEY_SCHEME_META, t->key_scheme);
    else if (strcmp(recorded, t->key_scheme) != 0 && strcmp(recorded, KEY_SCHEME_MIXED) != 0)
        wf_tracker_meta_set(t, KEY_SCHEME_META, KEY_SCHEME_MIXED);
    free(recorded);
}

bool wf_tracker_keys_follow_scheme(wf_tracker *t)
{
    if (!t->key_scheme) return false;
    char *recorded = NULL;
    bool same = wf_tracker_meta_get(t, KEY_SCHEME_META, &recorded) == WF_OK && recorded &&
                strcmp(recorded, t->key_scheme) == 0;
    free(recorded);
    return same;
}

/* ---- transactions spanning several calls ---------------------------------- */

wf_err wf_tracker_begin(wf_tracker *t)
{
    return run(t, WF_SQL_BEGIN, "starting a transaction", NULL, NULL, NULL, "");
}

wf_err wf_tracker_commit(wf_tracker *t)
{
    return run(t, WF_SQL_COMMIT, "committing a transaction", NULL, NULL, NULL, "");
}

void wf_tracker_rollback(wf_tracker *t)
{
    if (!t->be->in_transaction(t)) return;
    /* The message of the failure that led here is the one to keep. */
    char keep[sizeof t->errmsg];
    memcpy(keep, t->errmsg, sizeof keep);
    run(t, WF_SQL_ROLLBACK, "rolling back a transaction", NULL, NULL, NULL, "");
    memcpy(t->errmsg, keep, sizeof keep);
}

/* ---- reports -------------------------------------------------------------- */

typedef struct {
    wf_tracker *t;
    long *counts;
} state_ctx;

static wf_err on_state(const wf_sql_cols *c, void *ctx)
{
    state_ctx *s = ctx;
    const char *state = col_text(s->t, c, 0);
    for (size_t i = 0; state && i < WF_TRACKER_NSTATES; i++)
        if (strcmp(state, wf_tracker_states[i]) == 0) s->counts[i] = (long)col_int(s->t, c, 1);
    return WF_OK;
}

wf_err wf_tracker_count_states(wf_tracker *t, long counts[WF_TRACKER_NSTATES])
{
    state_ctx s = {.t = t, .counts = counts};
    memset(counts, 0, WF_TRACKER_NSTATES * sizeof *counts);
    return run(t, WF_SQL_STATE_COUNTS, "counting rows by state", on_state, &s, NULL, "");
}

wf_err wf_tracker_count_open(wf_tracker *t, long *count)
{
    one_value v = {.t = t};
    wf_err err = run(t, WF_SQL_OPEN_COUNT, "counting open rows", on_int, &v, NULL, "");
    *count = (long)v.value;
    return err;
}

typedef struct {
    wf_tracker *t;
    char *text;
    int64_t us;
    bool found;
} newest_ctx;

static wf_err on_newest(const wf_sql_cols *c, void *ctx)
{
    newest_ctx *nc = ctx;
    nc->found = true;
    nc->us = col_int(nc->t, c, 1);
    return (nc->text = col_dup(nc->t, c, 0)) ? WF_OK : WF_ERR_NOMEM;
}

wf_err wf_tracker_newest(wf_tracker *t, char **source_time, int64_t *source_time_us, bool *found)
{
    newest_ctx nc = {.t = t};
    wf_err err = run(t, WF_SQL_NEWEST, "reading the newest row", on_newest, &nc, NULL, "");
    if (err != WF_OK) {
        free(nc.text);
        nc.text = NULL;
        nc.found = false;
    }
    *source_time = nc.text;
    *source_time_us = nc.us;
    *found = nc.found;
    return err;
}

void wf_tracker_runs_free(wf_tracker_run *runs, size_t n)
{
    if (!runs) return;
    for (size_t i = 0; i < n; i++) {
        free(runs[i].command);
        free(runs[i].started_at);
        free(runs[i].finished_at);
        free(runs[i].error);
    }
    free(runs);
}

typedef struct {
    wf_tracker *t;
    wf_tracker_run *runs;
    size_t n, cap;
} run_list;

static wf_err on_run(const wf_sql_cols *c, void *ctx)
{
    run_list *l = ctx;
    wf_tracker *t = l->t;
    void *grown = grow(l->runs, &l->cap, l->n, sizeof *l->runs);
    if (!grown) return WF_ERR_NOMEM;
    l->runs = grown;
    wf_tracker_run *r = &l->runs[l->n];
    memset(r, 0, sizeof *r);
    r->id = (long)col_int(t, c, 0);
    r->command = col_dup(t, c, 1);
    r->started_at = col_dup(t, c, 2);
    r->finished_at = col_dup(t, c, 3);
    r->has_exit_code = !t->be->col_null(c, 4);
    r->exit_code = (int)col_int(t, c, 4);
    long *figures[] = {&r->seen, &r->created, &r->adopted, &r->delivered, &r->failed, &r->parked,
                       &r->attachments_uploaded, &r->attachments_failed, &r->retries, &r->http_429,
                       &r->manual_fixes, &r->duration_ms};
    for (int i = 0; i < 12; i++) *figures[i] = (long)col_int(t, c, 5 + i);
    r->error = col_dup(t, c, 17);
    long *throughput[] = {&r->http_requests, &r->peak_in_flight, &r->garbled, &r->lookups, &r->lookup_calls};
    for (int i = 0; i < 5; i++) *throughput[i] = (long)col_int(t, c, 18 + i);
    l->n++;
    return r->command && r->started_at ? WF_OK : WF_ERR_NOMEM;
}

wf_err wf_tracker_recent_runs(wf_tracker *t, int limit, wf_tracker_run **runs, size_t *n)
{
    run_list l = {.t = t};
    wf_err err = run(t, WF_SQL_RECENT_RUNS, "listing runs", on_run, &l, NULL, "i", (int64_t)limit);
    if (err != WF_OK) {
        wf_tracker_runs_free(l.runs, l.n);
        l.runs = NULL;
        l.n = 0;
    }
    *runs = l.runs;
    *n = l.n;
    return err;
}

wf_err wf_tracker_problems(wf_tracker *t, int limit, wf_tracker_row **rows, size_t *n)
{
    return wf_tracker_sql_select(t, WF_SQL_PROBLEMS, "listing parked and failed rows", rows, n, "i",
                                   (int64_t)limit);
}

void wf_tracker_fixes_free(wf_tracker_fix *fixes, size_t n)
{
    if (!fixes) return;
    for (size_t i = 0; i < n; i++) {
        free(fixes[i].key);
        free(fixes[i].jsm_key);
        free(fixes[i].field_id);
        free(fixes[i].value);
        free(fixes[i].message);
        free(fixes[i].created_at);
    }
    free(fixes);
}

typedef struct {
    wf_tracker *t;
    wf_tracker_fix *fixes;
    size_t n, cap;
} fix_list;

static wf_err on_fix(const wf_sql_cols *c, void *ctx)
{
    fix_list *l = ctx;
    wf_tracker *t = l->t;
    void *grown = grow(l->fixes, &l->cap, l->n, sizeof *l->fixes);
    if (!grown) return WF_ERR_NOMEM;
    l->fixes = grown;
    wf_tracker_fix *f = &l->fixes[l->n++];
    f->id = (long)col_int(t, c, 0);
    f->key = col_dup(t, c, 1);
    f->jsm_key = col_dup(t, c, 2);
    f->field_id = col_dup(t, c, 3);
    f->value = col_dup(t, c, 4);
    f->message = col_dup(t, c, 5);
    f->created_at = col_dup(t, c, 6);
    return f->key && f->field_id && f->message && f->created_at ? WF_OK : WF_ERR_NOMEM;
}

wf_err wf_tracker_open_fixes(wf_tracker *t, int limit, wf_tracker_fix **fixes, size_t *n)
{
    fix_list l = {.t = t};
    wf_err err = run(t, WF_SQL_OPEN_FIXES, "listing manual fixes", on_fix, &l, NULL, "i", (int64_t)limit);
    if (err != WF_OK) {
        wf_tracker_fixes_free(l.fixes, l.n);
        l.fixes = NULL;
        l.n = 0;
    }
    *fixes = l.fixes;
    *n = l.n;
    return err;
}

void wf_tracker_strings_free(char **strings, size_t n)
{
    if (!strings) return;
    for (size_t i = 0; i < n; i++) free(strings[i]);
    free(strings);
}

typedef struct {
    wf_tracker *t;
    char **items;
    size_t n, cap;
} string_list;

static wf_err on_string(const wf_sql_cols *c, void *ctx)
{
    string_list *l = ctx;
    void *grown = grow(l->items, &l->cap, l->n, sizeof *l->items);
    if (!grown) return WF_ERR_NOMEM;
    l->items = grown;
    char *s = col_dup(l->t, c, 0);
    if (!s) return WF_ERR_NOMEM;
    l->items[l->n++] = s;
    return WF_OK;
}

wf_err wf_tracker_fix_fields(wf_tracker *t, const char *key, char ***ids, size_t *n)
{
    string_list l = {.t = t};
    wf_err err = run(t, WF_SQL_FIX_FIELDS, "reading the manual fixes", on_string, &l, NULL, "t", key);
    if (err != WF_OK) {
        wf_tracker_strings_free(l.items, l.n);
        l.items = NULL;
        l.n = 0;
    }
    *ids = l.items;
    *n = l.n;
    return err;
}

typedef struct {
    wf_tracker *t;
    char (*keys)[65];
    int64_t *times;
    size_t n, limit;
} delivered_ctx;

static wf_err on_delivered(const wf_sql_cols *c, void *ctx)
{
    delivered_ctx *d = ctx;
    if (d->n >= d->limit) return WF_OK;
    const char *key = col_text(d->t, c, 0);
    snprintf(d->keys[d->n], sizeof d->keys[d->n], "%s", key ? key : "");
    d->times[d->n++] = col_int(d->t, c, 1);
    return WF_OK;
}

wf_err wf_tracker_newest_delivered(wf_tracker *t, size_t limit, char (*keys)[65], int64_t *times, size_t *n,
                                   long *total)
{
    one_value v = {.t = t};
    delivered_ctx d = {.t = t, .keys = keys, .times = times, .limit = limit};
    *n = 0;
    *total = 0;
    wf_err err = run(t, WF_SQL_DELIVERED_WITH_CHECKSUM, "counting delivered rows", on_int, &v, NULL, "");
    if (err == WF_OK)
        err = run(t, WF_SQL_NEWEST_DELIVERED, "listing delivered rows", on_delivered, &d, NULL, "i", (int64_t)limit);
    if (err != WF_OK) return err;
    *n = d.n;
    *total = (long)v.value;
    return WF_OK;
}

typedef struct {
    wf_tracker *t;
    wf_tracker_totals *out;
} totals_ctx;

static wf_err on_totals(const wf_sql_cols *c, void *ctx)
{
    totals_ctx *tc = ctx;
    tc->out->failed = (long)col_int(tc->t, c, 0);
    tc->out->parked = (long)col_int(tc->t, c, 1);
    tc->out->http_429 = (long)col_int(tc->t, c, 2);
    tc->out->http_requests = (long)col_int(tc->t, c, 3);
    tc->out->garbled = (long)col_int(tc->t, c, 4);
    return WF_OK;
}

wf_err wf_tracker_run_totals(wf_tracker *t, wf_tracker_totals *out)
{
    memset(out, 0, sizeof *out);
    totals_ctx tc = {.t = t, .out = out};
    one_value v = {.t = t};
    wf_err err = run(t, WF_SQL_RUN_TOTALS, "summing the runs", on_totals, &tc, NULL, "");
    /* Only the delivery loop's runs count as "the job succeeded": a
     * successful `status` or `check` says nothing about delivery. */
    if (err == WF_OK) err = run(t, WF_SQL_LAST_SUCCESS, "finding the last successful run", on_int, &v, NULL, "");
    out->last_success_s = v.value;
    return err;
}

wf_err wf_tracker_probe_writable(wf_tracker *t, char *errbuf, size_t errlen)
{
    return t->be->probe_writable(t, errbuf, errlen);
}

wf_err wf_tracker_try_lock(wf_tracker *t, bool *got, char *holder, size_t holderlen)
{
    *got = false;
    if (holderlen) holder[0] = '\0';
    if (!t->be->try_lock) return WF_ERR_USAGE;
    return t->be->try_lock(t, got, holder, holderlen);
}

wf_err wf_tracker_lock_holder(wf_tracker *t, bool *held, char *holder, size_t holderlen)
{
    *held = false;
    if (holderlen) holder[0] = '\0';
    if (!t->be->lock_holder) return WF_ERR_USAGE;
    return t->be->lock_holder(t, held, holder, holderlen);
}

/* ---- shared by the backends' backups ------------------------------------ */

wf_err wf_tracker_backup_file(const char *dir, const char *suffix, char *path, size_t pathlen,
                              char *errbuf, size_t errlen)
{
    char stamp[32];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(errbuf, errlen, "cannot create the backup directory %s: %s (make the tracker's directory "
                 "writable by this user)", dir, strerror(errno));
        return WF_ERR_FILE;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    for (int i = 1; i < 100; i++) {
        if (i == 1) snprintf(path, pathlen, "%s/tracker-%s%s", dir, stamp, suffix);
        else snprintf(path, pathlen, "%s/tracker-%s-%d%s", dir, stamp, i, suffix);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            return WF_OK;
        }
        if (errno != EEXIST) break;
    }
    snprintf(errbuf, errlen, "cannot create a backup file in %s: %s", dir, strerror(errno));
    return WF_ERR_FILE;
}

/* ---- the customer cache ------------------------------------------------ */

wf_err wf_tracker_customer_get(wf_tracker *t, const char *desk_id, const char *email, char **account_id)
{
    one_value v = {.t = t};
    wf_err err = run(t, WF_SQL_CUSTOMER_GET, "reading the customer cache", on_text, &v, NULL, "tt", desk_id, email);
    if (err != WF_OK) {
        free(v.text);
        v.text = NULL;
    }
    *account_id = v.text;
    return err;
}

wf_err wf_tracker_customer_put(wf_tracker *t, const char *desk_id, const char *email, const char *account_id)
{
    return run(t, WF_SQL_CUSTOMER_PUT, "caching a customer", NULL, NULL, NULL, "ttt", desk_id, email, account_id);
}

wf_err wf_tracker_customer_forget(wf_tracker *t, const char *desk_id, const char *email)
{
    return run(t, WF_SQL_CUSTOMER_FORGET, "forgetting a cached customer", NULL, NULL, NULL, "tt", desk_id, email);
}
