/* test_tracker.c: the SQLite backend of the tracker: creation, migration, the delivery
 * state machine, the cursor, retries, runs, meta, and the failures an
 * operator must be told about (read-only, locked, newer schema). */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../modules/tracker.h"
#include "unit_helpers.h"

/* From build/migrations.c: the migrations compiled into the binary. */
extern const size_t wf_migrations_count;

typedef struct {
    char *dir;
    char *path;      /* dir/state/tracker.db: the directory does not exist yet */
    wf_tracker *t;
    sqlite3 *raw;    /* the test's own connection, to look behind the interface */
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    fx->dir = unit_mkdtemp();
    if (!fx->dir) return -1;
    fx->path = unit_path(fx->dir, "state/tracker.db");
    *state = fx;
    return 0;
}

/* The same, with the tracker already open. */
static int setup_open(void **state)
{
    if (setup(state) != 0) return -1;
    fixture *fx = *state;
    char err[512];
    return wf_tracker_open(fx->path, &fx->t, err, sizeof err) == WF_OK ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    sqlite3_close(fx->raw);
    wf_tracker_close(fx->t);
    if (fx->dir) chmod(fx->dir, 0700);
    unit_rmtree(fx->dir);
    free(fx->dir);
    free(fx->path);
    free(fx);
    return 0;
}

/* The tracker file, opened by the test itself: the interface hides SQLite. */
static sqlite3 *raw_db(fixture *fx)
{
    if (!fx->raw) assert_int_equal(sqlite3_open_v2(fx->path, &fx->raw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return fx->raw;
}

/* One integer from sql on db. */
static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* One text from sql on db, copied into buf ("" for NULL). */
static const char *query_text(sqlite3 *db, const char *sql, char *buf, size_t len)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *s = sqlite3_column_text(st, 0);
    snprintf(buf, len, "%s", s ? (const char *)s : "");
    sqlite3_finalize(st);
    return buf;
}

static void get_row(wf_tracker *t, const char *key, wf_tracker_row *row)
{
    bool found = false;
    assert_int_equal(wf_tracker_get(t, key, row, &found), WF_OK);
    assert_true(found);
}

/* A 64-hex key made from a small number. */
static const char *key_n(int n, char buf[65])
{
    snprintf(buf, 65, "%064x", n);
    return buf;
}

static int is_utc_stamp(const char *s)
{
    /* YYYY-MM-DDTHH:MM:SSZ */
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (!s || strlen(s) != sizeof shape - 1) return 0;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i]) return 0;
    return 1;
}

/* ---- opening -------------------------------------------------------------- */

static void test_open_creates_private_file_and_migrates(void **state)
{
    fixture *fx = *state;
    char err[512] = "";
    mode_t old = umask(022);
    wf_err rc = wf_tracker_open(fx->path, &fx->t, err, sizeof err);
    umask(old);
    if (rc != WF_OK) fail_msg("open: %s", err);
    assert_string_equal(wf_tracker_path(fx->t), fx->path);

    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    char *state_dir = unit_path(fx->dir, "state");
    assert_int_equal(stat(state_dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    free(state_dir);

    sqlite3 *db = raw_db(fx);
    assert_true(wf_migrations_count >= 1);
    assert_int_equal(query_int(db, "PRAGMA user_version"), (int64_t)wf_migrations_count);
    char buf[64];
    assert_string_equal(query_text(db, "PRAGMA journal_mode", buf, sizeof buf), "wal");
    assert_int_equal(query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                                   "('submissions', 'runs', 'manual_fixes', 'meta')"), 4);

    /* Reopening keeps the data and the version: migrations run once. */
    char k[65];
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(1, k), "1", "2026-11-22 10:00:00+00", 5, 1), WF_OK);
    wf_tracker_close(fx->t);
    fx->t = NULL;
    assert_int_equal(wf_tracker_open(fx->path, &fx->t, err, sizeof err), WF_OK);
    assert_int_equal(query_int(raw_db(fx), "PRAGMA user_version"), (int64_t)wf_migrations_count);
    assert_int_equal(query_int(raw_db(fx), "SELECT count(*) FROM submissions"), 1);
}

/* An existing empty file (say, made by touch) is migrated like a new one. */
static void test_open_existing_empty_file(void **state)
{
    fixture *fx = *state;
    char *state_dir = unit_path(fx->dir, "state");
    assert_int_equal(mkdir(state_dir, 0700), 0);
    free(state_dir);
    assert_int_equal(unit_write_file(fx->path, ""), 0);
    char err[512] = "";
    assert_int_equal(wf_tracker_open(fx->path, &fx->t, err, sizeof err), WF_OK);
    assert_int_equal(query_int(raw_db(fx), "PRAGMA user_version"), (int64_t)wf_migrations_count);
    assert_int_equal(query_int(raw_db(fx), "SELECT count(*) FROM submissions"), 0);
}

/* ---- the delivery state machine ------------------------------------------ */

static void test_intent_created_attaching_delivered(void **state)
{
    fixture *fx = *state;
    char k[65];
    key_n(42, k);
    wf_tracker_row row;
    bool found = true;
    assert_int_equal(wf_tracker_get(fx->t, k, &row, &found), WF_OK);
    assert_false(found);

    int64_t before = wf_now_us();
    assert_int_equal(wf_tracker_record_intent(fx->t, k, "1042", "2026-11-22 10:00:00.25+00",
                                              INT64_C(1795341600250000), 7), WF_OK);
    int64_t after = wf_now_us();
    get_row(fx->t, k, &row);
    assert_string_equal(row.key, k);
    assert_string_equal(row.state, "creating");
    assert_true(row.may_exist);
    assert_string_equal(row.source_id, "1042");
    assert_string_equal(row.source_time, "2026-11-22 10:00:00.25+00");
    assert_true(row.source_time_us == INT64_C(1795341600250000));
    assert_int_equal(row.attempts, 0);
    assert_int_equal(row.last_run, 7);
    assert_null(row.jsm_key);
    assert_null(row.jsm_issue_id);
    assert_null(row.delivered_at);
    assert_true(row.updated_at_us >= before && row.updated_at_us <= after);
    wf_tracker_row_free(&row);

    assert_int_equal(wf_tracker_record_created(fx->t, k, "HELP-12", "10012", 7, false), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "created");
    assert_string_equal(row.jsm_key, "HELP-12");
    assert_string_equal(row.jsm_issue_id, "10012");
    assert_int_equal(row.created_run, 7);
    assert_true(row.may_exist);
    wf_tracker_row_free(&row);

    assert_int_equal(wf_tracker_record_attaching(fx->t, k), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "attaching");
    assert_string_equal(row.jsm_key, "HELP-12");
    wf_tracker_row_free(&row);

    assert_int_equal(wf_tracker_record_delivered(fx->t, k, "c0ffee"), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "delivered");
    assert_string_equal(row.content_checksum, "c0ffee");
    assert_true(is_utc_stamp(row.delivered_at));
    assert_string_equal(row.jsm_key, "HELP-12");
    assert_int_equal(row.attempts, 0);
    wf_tracker_row_free(&row);
    wf_tracker_row_free(&row); /* safe on a freed (zeroed) row */

    /* A second key is independent of the first. */
    char k2[65];
    assert_int_equal(wf_tracker_get(fx->t, key_n(43, k2), &row, &found), WF_OK);
    assert_false(found);
}

/* Adoption after a crash goes straight to attaching (list before upload). */
static void test_adopted_goes_to_attaching(void **state)
{
    fixture *fx = *state;
    char k[65];
    key_n(7, k);
    assert_int_equal(wf_tracker_record_intent(fx->t, k, "7", "t", 100, 1), WF_OK);
    assert_int_equal(wf_tracker_record_created(fx->t, k, "HELP-7", "10007", 2, true), WF_OK);
    wf_tracker_row row;
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "attaching");
    assert_string_equal(row.jsm_key, "HELP-7");
    assert_int_equal(row.created_run, 2);
    assert_int_equal(row.last_run, 2);
    wf_tracker_row_free(&row);
    assert_int_equal(query_int(raw_db(fx), "SELECT adopted FROM submissions"), 1);
}

static void test_failure_counts_parks_and_keeps_may_exist(void **state)
{
    fixture *fx = *state;
    char k[65];
    key_n(1, k);
    wf_tracker_row row;
    assert_int_equal(wf_tracker_record_intent(fx->t, k, "1", "t", 100, 1), WF_OK);
    assert_int_equal(wf_tracker_record_failure(fx->t, k, "temporary", "HTTP 503 after retries", true, false), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "failed");
    assert_int_equal(row.attempts, 1);
    assert_string_equal(row.error_class, "temporary");
    assert_string_equal(row.last_error, "HTTP 503 after retries");
    assert_true(row.may_exist);
    wf_tracker_row_free(&row);

    assert_int_equal(wf_tracker_record_failure(fx->t, k, "user_fixable", "Department has no option 'x'", true, true),
                     WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "parked");
    assert_int_equal(row.attempts, 2);
    assert_string_equal(row.error_class, "user_fixable");
    assert_string_equal(row.last_error, "Department has no option 'x'");
    assert_true(row.may_exist);
    wf_tracker_row_free(&row);

    /* Once the request exists (jsm_key known), a failure cannot clear
     * may_exist: the next run must look before creating. */
    char k2[65];
    key_n(2, k2);
    assert_int_equal(wf_tracker_record_intent(fx->t, k2, "2", "t", 200, 1), WF_OK);
    assert_int_equal(wf_tracker_record_created(fx->t, k2, "HELP-2", "10002", 1, false), WF_OK);
    assert_int_equal(wf_tracker_record_failure(fx->t, k2, "temporary", "attach failed", false, false), WF_OK);
    get_row(fx->t, k2, &row);
    assert_string_equal(row.state, "failed");
    assert_true(row.may_exist);
    assert_string_equal(row.jsm_key, "HELP-2");
    wf_tracker_row_free(&row);

    /* Without a request, the caller says whether a create may have
     * reached JSM. */
    char k3[65];
    key_n(3, k3);
    assert_int_equal(wf_tracker_record_intent(fx->t, k3, "3", "t", 300, 1), WF_OK);
    assert_int_equal(wf_tracker_record_failure(fx->t, k3, "user_fixable", "400", false, false), WF_OK);
    get_row(fx->t, k3, &row);
    assert_false(row.may_exist);
    wf_tracker_row_free(&row);

    /* Delivery clears the error. */
    assert_int_equal(wf_tracker_record_delivered(fx->t, k2, NULL), WF_OK);
    get_row(fx->t, k2, &row);
    assert_string_equal(row.state, "delivered");
    assert_null(row.error_class);
    assert_null(row.last_error);
    assert_null(row.content_checksum);
    assert_int_equal(row.attempts, 1);
    wf_tracker_row_free(&row);
}

static void test_not_sent_restores_may_exist(void **state)
{
    fixture *fx = *state;
    char k[65];
    key_n(9, k);
    wf_tracker_row row;
    /* First sight: nothing was ever sent before the intent. */
    assert_int_equal(wf_tracker_record_intent(fx->t, k, "9", "t", 100, 1), WF_OK);
    assert_int_equal(wf_tracker_record_not_sent(fx->t, k, false), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "pending");
    assert_false(row.may_exist);
    wf_tracker_row_free(&row);

    /* A row that may exist from an earlier attempt keeps that. */
    assert_int_equal(wf_tracker_record_intent(fx->t, k, "9", "t", 100, 2), WF_OK);
    get_row(fx->t, k, &row);
    assert_true(row.may_exist);
    assert_int_equal(row.last_run, 2);
    wf_tracker_row_free(&row);
    assert_int_equal(wf_tracker_record_not_sent(fx->t, k, true), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "pending");
    assert_true(row.may_exist);
    wf_tracker_row_free(&row);
}

/* ---- cursor, window counts and retries ------------------------------------ */

static void test_cursor_and_count_between(void **state)
{
    fixture *fx = *state;
    int64_t cur = -1;
    bool has = true;
    assert_int_equal(wf_tracker_cursor(fx->t, &cur, &has), WF_OK);
    assert_false(has);
    long n = -1;
    assert_int_equal(wf_tracker_count_between(fx->t, 0, -1, &n), WF_OK);
    assert_int_equal(n, 0);

    static const int64_t times[] = {INT64_C(1795341600000000), INT64_C(1795341900000000), INT64_C(1795341700000000)};
    char k[65];
    for (int i = 0; i < 3; i++)
        assert_int_equal(wf_tracker_record_intent(fx->t, key_n(i + 1, k), "x", "t", times[i], 1), WF_OK);
    assert_int_equal(wf_tracker_cursor(fx->t, &cur, &has), WF_OK);
    assert_true(has);
    assert_true(cur == INT64_C(1795341900000000));

    static const struct { int64_t from, to; long expect; } cases[] = {
        {0, -1, 3},
        {INT64_C(1795341600000000), -1, 3},           /* inclusive lower bound */
        {INT64_C(1795341600000001), -1, 2},
        {INT64_C(1795341600000000), INT64_C(1795341700000000), 2}, /* inclusive upper bound */
        {INT64_C(1795341600000000), INT64_C(1795341699999999), 1},
        {INT64_C(1795341900000001), -1, 0},
        {0, INT64_C(1795341599999999), 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(wf_tracker_count_between(fx->t, cases[i].from, cases[i].to, &n), WF_OK);
        if (n != cases[i].expect) fail_msg("case %zu: %ld rows, expected %ld", i, n, cases[i].expect);
    }
}

static void test_retry_times(void **state)
{
    fixture *fx = *state;
    wf_tracker *t = fx->t;
    char k[65];
    /* key, time, run, what happens after the intent */
    assert_int_equal(wf_tracker_record_intent(t, key_n(1, k), "1", "t", 100, 1), WF_OK); /* failed */
    assert_int_equal(wf_tracker_record_failure(t, k, "temporary", "503", true, false), WF_OK);
    assert_int_equal(wf_tracker_record_intent(t, key_n(2, k), "2", "t", 100, 1), WF_OK); /* same time, failed */
    assert_int_equal(wf_tracker_record_failure(t, k, "temporary", "503", true, false), WF_OK);
    assert_int_equal(wf_tracker_record_intent(t, key_n(3, k), "3", "t", 200, 1), WF_OK); /* delivered */
    assert_int_equal(wf_tracker_record_created(t, k, "H-3", "3", 1, false), WF_OK);
    assert_int_equal(wf_tracker_record_delivered(t, k, NULL), WF_OK);
    assert_int_equal(wf_tracker_record_intent(t, key_n(4, k), "4", "t", 300, 1), WF_OK); /* parked */
    assert_int_equal(wf_tracker_record_failure(t, k, "user_fixable", "bad", false, true), WF_OK);
    assert_int_equal(wf_tracker_record_intent(t, key_n(5, k), "5", "t", 400, 2), WF_OK); /* creating, run 2 */
    assert_int_equal(wf_tracker_record_intent(t, key_n(6, k), "6", "t", 500, 1), WF_OK); /* attaching */
    assert_int_equal(wf_tracker_record_created(t, k, "H-6", "6", 1, false), WF_OK);
    assert_int_equal(wf_tracker_record_attaching(t, k), WF_OK);
    assert_int_equal(wf_tracker_record_intent(t, key_n(7, k), "7", "t", 600, 1), WF_OK); /* pending */
    assert_int_equal(wf_tracker_record_not_sent(t, k, false), WF_OK);
    assert_int_equal(wf_tracker_record_intent(t, key_n(8, k), "8", "t", 700, 1), WF_OK); /* created */
    assert_int_equal(wf_tracker_record_created(t, k, "H-8", "8", 1, false), WF_OK);

    int64_t *times = NULL;
    size_t n = 99;
    /* Everything open, nothing skipped: distinct, ascending. */
    assert_int_equal(wf_tracker_retry_times(t, 10000, 99, &times, &n), WF_OK);
    static const int64_t all[] = {100, 400, 500, 600, 700};
    assert_int_equal(n, sizeof all / sizeof *all);
    for (size_t i = 0; i < n; i++) assert_true(times[i] == all[i]);
    free(times);

    /* Rows of run 2 are left out; before_us is exclusive. */
    assert_int_equal(wf_tracker_retry_times(t, 600, 2, &times, &n), WF_OK);
    static const int64_t some[] = {100, 500};
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) assert_true(times[i] == some[i]);
    free(times);

    /* Run 1 touched everything but key 5. */
    assert_int_equal(wf_tracker_retry_times(t, 10000, 1, &times, &n), WF_OK);
    assert_int_equal(n, 1);
    assert_true(times[0] == 400);
    free(times);

    assert_int_equal(wf_tracker_retry_times(t, 100, 99, &times, &n), WF_OK);
    assert_int_equal(n, 0);
    free(times);
}

/* ---- runs, meta, manual fixes --------------------------------------------- */

static void test_runs_begin_and_finish(void **state)
{
    fixture *fx = *state;
    long r1 = 0, r2 = 0;
    assert_int_equal(wf_tracker_run_begin(fx->t, "sync", &r1), WF_OK);
    assert_int_equal(wf_tracker_run_begin(fx->t, "retry", &r2), WF_OK);
    assert_true(r1 > 0);
    assert_true(r2 > r1);

    wf_run_stats s = {.seen = 11, .created = 9, .adopted = 1, .delivered = 8, .failed = 2, .parked = 1,
                      .attachments_uploaded = 16, .attachments_failed = 3, .retries = 4, .http_429 = 5,
                      .manual_fixes = 6, .duration_ms = 1234};
    assert_int_equal(wf_tracker_run_finish(fx->t, r1, &s, 1, "some submissions failed"), WF_OK);

    sqlite3 *db = raw_db(fx);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
        "SELECT command, started_at, finished_at, exit_code, seen, created, adopted, delivered, failed, parked, "
        "attachments_uploaded, attachments_failed, retries, http_429, manual_fixes, duration_ms, error "
        "FROM runs WHERE id = ?", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, r1);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "sync");
    assert_true(is_utc_stamp((const char *)sqlite3_column_text(st, 1)));
    assert_true(is_utc_stamp((const char *)sqlite3_column_text(st, 2)));
    static const int64_t expect[] = {1, 11, 9, 1, 8, 2, 1, 16, 3, 4, 5, 6, 1234};
    for (int i = 0; i < 13; i++)
        if (sqlite3_column_int64(st, 3 + i) != expect[i]) fail_msg("runs column %d is %lld, expected %lld", 3 + i,
                                                                   (long long)sqlite3_column_int64(st, 3 + i),
                                                                   (long long)expect[i]);
    assert_string_equal((const char *)sqlite3_column_text(st, 16), "some submissions failed");
    sqlite3_finalize(st);

    /* The unfinished run stays unfinished. */
    char sql[128], buf[64];
    snprintf(sql, sizeof sql, "SELECT finished_at FROM runs WHERE id = %ld", r2);
    assert_string_equal(query_text(db, sql, buf, sizeof buf), "");
    wf_run_stats zero = {0};
    assert_int_equal(wf_tracker_run_finish(fx->t, r2, &zero, 0, NULL), WF_OK);
    snprintf(sql, sizeof sql, "SELECT error IS NULL AND exit_code = 0 FROM runs WHERE id = %ld", r2);
    assert_int_equal(query_int(db, sql), 1);
}

static void test_meta_get_set(void **state)
{
    fixture *fx = *state;
    char *v = (char *)"untouched";
    assert_int_equal(wf_tracker_meta_get(fx->t, "request_type_fields", &v), WF_OK);
    assert_null(v);
    assert_int_equal(wf_tracker_meta_set(fx->t, "request_type_fields", "{\"a\": 1}"), WF_OK);
    assert_int_equal(wf_tracker_meta_get(fx->t, "request_type_fields", &v), WF_OK);
    assert_string_equal(v, "{\"a\": 1}");
    free(v);
    assert_int_equal(wf_tracker_meta_set(fx->t, "request_type_fields", ""), WF_OK);
    assert_int_equal(wf_tracker_meta_get(fx->t, "request_type_fields", &v), WF_OK);
    assert_string_equal(v, "");
    free(v);
    assert_int_equal(wf_tracker_meta_get(fx->t, "other", &v), WF_OK);
    assert_null(v);
}

static void test_manual_fixes(void **state)
{
    fixture *fx = *state;
    char k[65];
    key_n(5, k);
    assert_int_equal(wf_tracker_add_manual_fix(fx->t, k, NULL, "customfield_10010", "Marketing",
                                               "Department has no option 'Marketing'"), WF_OK);
    assert_int_equal(wf_tracker_add_manual_fix(fx->t, k, "HELP-1", "duedate", NULL, "bad date"), WF_OK);
    sqlite3 *db = raw_db(fx);
    char buf[64];
    assert_int_equal(query_int(db, "SELECT jsm_key IS NULL FROM manual_fixes WHERE field_id = 'customfield_10010'"), 1);
    assert_string_equal(query_text(db, "SELECT jsm_key FROM manual_fixes WHERE field_id = 'duedate'",
                                   buf, sizeof buf), "HELP-1");
    assert_int_equal(query_int(db, "SELECT value IS NULL FROM manual_fixes WHERE field_id = 'duedate'"), 1);
}

/* ---- what the operator must be told -------------------------------------- */

static void test_read_only_file(void **state)
{
    fixture *fx = *state;
    if (geteuid() == 0) skip(); /* root writes through 0400 */
    char err[512] = "";
    assert_int_equal(wf_tracker_open(fx->path, &fx->t, err, sizeof err), WF_OK);
    wf_tracker_close(fx->t);
    fx->t = NULL;
    assert_int_equal(chmod(fx->path, 0400), 0);
    err[0] = '\0';
    assert_int_equal(wf_tracker_open(fx->path, &fx->t, err, sizeof err), WF_ERR_TRACKER);
    assert_null(fx->t);
    assert_non_null(strstr(err, fx->path));
    assert_non_null(strstr(err, "writable"));
}

/* Works as root too: the tracker's directory cannot be created because a
 * regular file is in the way. */
static void test_unusable_directory(void **state)
{
    fixture *fx = *state;
    char *blocker = unit_path(fx->dir, "state");
    assert_int_equal(unit_write_file(blocker, "not a directory"), 0);
    free(blocker);
    char err[512] = "";
    assert_int_equal(wf_tracker_open(fx->path, &fx->t, err, sizeof err), WF_ERR_TRACKER);
    assert_null(fx->t);
    assert_non_null(strstr(err, fx->path));
}

static void test_not_a_database(void **state)
{
    fixture *fx = *state;
    char *state_dir = unit_path(fx->dir, "state");
    assert_int_equal(mkdir(state_dir, 0700), 0);
    free(state_dir);
    char junk[8192];
    memset(junk, 'x', sizeof junk - 1);
    junk[sizeof junk - 1] = '\0';
    assert_int_equal(unit_write_file(fx->path, junk), 0);
    char err[512] = "";
    assert_int_equal(wf_tracker_open(fx->path, &fx->t, err, sizeof err), WF_ERR_TRACKER);
    assert_null(fx->t);
    assert_non_null(strstr(err, fx->path));
}

/* Another connection holds a write transaction: a write waits for the busy
 * timeout (5 s), then fails naming the file. This is the one slow test. */
static void test_locked_by_another_connection(void **state)
{
    fixture *fx = *state;
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open_v2(fx->path, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "INSERT INTO meta (name, value) VALUES ('holder', 'x')", NULL, NULL, NULL),
                     SQLITE_OK);

    int64_t start = wf_now_us();
    assert_int_equal(wf_tracker_meta_set(fx->t, "k", "v"), WF_ERR_TRACKER);
    int64_t waited_ms = (wf_now_us() - start) / 1000;
    const char *msg = wf_tracker_errmsg(fx->t);
    assert_non_null(strstr(msg, fx->path));
    assert_non_null(strstr(msg, "locked"));
    if (waited_ms < 4000) fail_msg("gave up after %lld ms, before the busy timeout", (long long)waited_ms);

    /* Once the other side lets go, writing works again. */
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(wf_tracker_meta_set(fx->t, "k", "v"), WF_OK);
}

static void test_newer_schema_is_refused(void **state)
{
    fixture *fx = *state;
    char err[512] = "";
    assert_int_equal(wf_tracker_open(fx->path, &fx->t, err, sizeof err), WF_OK);
    wf_tracker_close(fx->t);
    fx->t = NULL;

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    err[0] = '\0';
    assert_int_equal(wf_tracker_open(fx->path, &fx->t, err, sizeof err), WF_ERR_TRACKER);
    assert_null(fx->t);
    assert_non_null(strstr(err, "upgrade wf2jsm"));
    assert_non_null(strstr(err, fx->path));
    assert_non_null(strstr(err, "999"));

    /* The refused file was not touched. */
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(query_int(db, "PRAGMA user_version"), 999);
    sqlite3_close(db);
}

/* A transaction groups the protocol's writes: rolled back, none of them
 * is there (a rebuild killed halfway leaves the tracker as it was);
 * committed, all are, and other connections see them only then. */
static void test_transaction_all_or_nothing(void **state)
{
    fixture *fx = *state;
    bool found = true, has_cursor = true;
    int64_t cursor = 0;
    wf_tracker_row row;
    assert_int_equal(wf_tracker_begin(fx->t), WF_OK);
    assert_int_equal(wf_tracker_record_intent(fx->t, "k1", "1", "t", 10, 0), WF_OK);
    assert_int_equal(wf_tracker_record_created(fx->t, "k1", "WF-1", "10001", 0, true), WF_OK);
    assert_int_equal(wf_tracker_meta_set(fx->t, "m", "v"), WF_OK);
    wf_tracker_rollback(fx->t);
    assert_int_equal(wf_tracker_get(fx->t, "k1", &row, &found), WF_OK);
    assert_false(found);
    assert_int_equal(wf_tracker_cursor(fx->t, &cursor, &has_cursor), WF_OK);
    assert_false(has_cursor);
    char *v = NULL;
    assert_int_equal(wf_tracker_meta_get(fx->t, "m", &v), WF_OK);
    assert_null(v);
    wf_tracker_rollback(fx->t);   /* outside a transaction: nothing happens */

    assert_int_equal(wf_tracker_begin(fx->t), WF_OK);
    assert_int_equal(wf_tracker_record_intent(fx->t, "k2", "2", "t", 20, 0), WF_OK);
    sqlite3 *other;
    assert_int_equal(sqlite3_open(fx->path, &other), SQLITE_OK);
    assert_int_equal(query_int(other, "SELECT count(*) FROM submissions"), 0);
    assert_int_equal(wf_tracker_commit(fx->t), WF_OK);
    assert_int_equal(query_int(other, "SELECT count(*) FROM submissions"), 1);
    sqlite3_close(other);
    /* A commit without a transaction is an error the caller is told about. */
    assert_int_equal(wf_tracker_commit(fx->t), WF_ERR_TRACKER);
    assert_non_null(strstr(wf_tracker_errmsg(fx->t), "committing"));
}

/* ---- the key scheme and rows found by their source ----------------------- */

/* The tracker's recorded key scheme is expect (NULL: none). */
static void assert_scheme(wf_tracker *t, const char *expect)
{
    char *v = NULL;
    assert_int_equal(wf_tracker_meta_get(t, "key_scheme", &v), WF_OK);
    if (!expect) assert_null(v);
    else assert_string_equal(v, expect);
    free(v);
}

static void reopen_with_scheme(fixture *fx, const char *scheme)
{
    char err[512];
    wf_tracker_close(fx->t);
    assert_int_equal(wf_tracker_open(fx->path, &fx->t, err, sizeof err), WF_OK);
    assert_int_equal(wf_tracker_set_key_scheme(fx->t, scheme), WF_OK);
}

static void test_key_scheme_taken_by_first_insert_and_mixed_by_another(void **state)
{
    fixture *fx = *state;
    char k[65];
    static const char s1[] = "v1;keys=id,submitted_date;id=id;time=submitted_date";
    static const char s2[] = "v1;keys=submitted_date,id;id=id;time=submitted_date";
    assert_int_equal(wf_tracker_set_key_scheme(fx->t, s1), WF_OK);
    /* A new tracker records no scheme until it records a key. */
    assert_false(wf_tracker_keys_follow_scheme(fx->t));
    assert_scheme(fx->t, NULL);
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(1, k), "1", "2026-11-22 10:00:00+00",
                                              INT64_C(1795341600000000), 1), WF_OK);
    assert_scheme(fx->t, s1);
    assert_true(wf_tracker_keys_follow_scheme(fx->t));
    /* Another process with the same scheme: still one scheme. */
    reopen_with_scheme(fx, s1);
    assert_true(wf_tracker_keys_follow_scheme(fx->t));
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(2, k), "2", "2026-11-22 10:00:01+00",
                                              INT64_C(1795341601000000), 2), WF_OK);
    assert_true(wf_tracker_keys_follow_scheme(fx->t));
    /* A process keying another way reads no match, and its first new key
     * marks the tracker for good ... */
    reopen_with_scheme(fx, s2);
    assert_false(wf_tracker_keys_follow_scheme(fx->t));
    assert_scheme(fx->t, s1);   /* reading alone marks nothing */
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(3, k), "3", "2026-11-22 10:00:02+00",
                                              INT64_C(1795341602000000), 3), WF_OK);
    assert_scheme(fx->t, "mixed");
    assert_false(wf_tracker_keys_follow_scheme(fx->t));
    /* ... so that neither scheme is trusted again. */
    reopen_with_scheme(fx, s1);
    assert_false(wf_tracker_keys_follow_scheme(fx->t));
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(4, k), "4", "2026-11-22 10:00:03+00",
                                              INT64_C(1795341603000000), 4), WF_OK);
    assert_scheme(fx->t, "mixed");
    assert_false(wf_tracker_keys_follow_scheme(fx->t));
}

static void test_prefetched_row_found_by_its_source_texts(void **state)
{
    fixture *fx = *state;
    char k[65];
    static const int64_t t0 = INT64_C(1795341600000000);
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(1, k), "1", "2026-11-22 10:00:00+00", t0, 1), WF_OK);
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(2, k), "2", "2026-11-22 10:00:00+00", t0, 1), WF_OK);
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(3, k), "3", "2026-11-22 10:00:05+00", t0 + 5000000, 1),
                     WF_OK);
    /* Two keys of one source row (keys of two schemes): neither is taken. */
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(4, k), "4", "2026-11-22 10:00:06+00", t0 + 6000000, 1),
                     WF_OK);
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(5, k), "4", "2026-11-22 10:00:06+00", t0 + 6000000, 1),
                     WF_OK);
    wf_tracker_row row;
    bool found = true;
    /* Nothing prefetched: the tracker itself is never asked. */
    assert_int_equal(wf_tracker_get_prefetched_by_source(fx->t, "2", "2026-11-22 10:00:00+00", &row, &found), WF_OK);
    assert_false(found);
    assert_int_equal(wf_tracker_prefetch(fx->t, t0, t0 + 6000000), WF_OK);
    assert_int_equal(wf_tracker_get_prefetched_by_source(fx->t, "2", "2026-11-22 10:00:00+00", &row, &found), WF_OK);
    assert_true(found);
    assert_string_equal(row.key, key_n(2, k));
    assert_string_equal(row.source_id, "2");
    assert_string_equal(row.state, "creating");
    wf_tracker_row_free(&row);
    assert_int_equal(wf_tracker_get_prefetched_by_source(fx->t, "3", "2026-11-22 10:00:05+00", &row, &found), WF_OK);
    assert_true(found);
    assert_string_equal(row.key, key_n(3, k));
    wf_tracker_row_free(&row);
    /* The id and the time must both match, as texts. */
    static const char *const misses[][2] = {
        {"3", "2026-11-22 10:00:00+00"}, {"2", "2026-11-22 10:00:05+00"}, {"9", "2026-11-22 10:00:00+00"},
        {"2", "2026-11-22 10:00:00"}, {"4", "2026-11-22 10:00:06+00"}, {"", ""},
    };
    for (size_t i = 0; i < sizeof misses / sizeof *misses; i++) {
        found = true;
        assert_int_equal(wf_tracker_get_prefetched_by_source(fx->t, misses[i][0], misses[i][1], &row, &found), WF_OK);
        if (found) fail_msg("(%s, %s) was found", misses[i][0], misses[i][1]);
    }
    /* Outside the prefetched window: not found, though the tracker has it. */
    assert_int_equal(wf_tracker_prefetch(fx->t, t0 + 1, t0 + 5000000), WF_OK);
    assert_int_equal(wf_tracker_get_prefetched_by_source(fx->t, "1", "2026-11-22 10:00:00+00", &row, &found), WF_OK);
    assert_false(found);
    /* Any write drops the copy, so nothing stale is ever answered. */
    assert_int_equal(wf_tracker_prefetch(fx->t, t0, t0 + 6000000), WF_OK);
    assert_int_equal(wf_tracker_record_delivered(fx->t, key_n(1, k), NULL), WF_OK);
    assert_int_equal(wf_tracker_get_prefetched_by_source(fx->t, "1", "2026-11-22 10:00:00+00", &row, &found), WF_OK);
    assert_false(found);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TO(f) cmocka_unit_test_setup_teardown(f, setup_open, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_creates_private_file_and_migrates),
        T(test_open_existing_empty_file),
        TO(test_intent_created_attaching_delivered),
        TO(test_adopted_goes_to_attaching),
        TO(test_failure_counts_parks_and_keeps_may_exist),
        TO(test_not_sent_restores_may_exist),
        TO(test_cursor_and_count_between),
        TO(test_retry_times),
        TO(test_runs_begin_and_finish),
        TO(test_meta_get_set),
        TO(test_key_scheme_taken_by_first_insert_and_mixed_by_another),
        TO(test_prefetched_row_found_by_its_source_texts),
        TO(test_manual_fixes),
        TO(test_transaction_all_or_nothing),
        T(test_read_only_file),
        T(test_unusable_directory),
        T(test_not_a_database),
        TO(test_locked_by_another_connection),
        T(test_newer_schema_is_refused),
    };
#undef T
#undef TO
    return cmocka_run_group_tests(tests, NULL, NULL);
}
