/* test_tracker_pg.c: the PostgreSQL backend of the tracker, through the same
 * interface the program uses, against a real server (tests/lib/pgtmp.sh,
 * started once for the group; each test gets a fresh database): migration,
 * the delivery state machine, the cursor and retries, runs and the reports,
 * the operator's changes, the advisory lock, the backup file, and what an
 * operator is told (newer schema, unreachable server, never the password).
 * Run from the repository root (as `make unit` does). */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../modules/lock.h"
#include "../../modules/tracker.h"
#include "../../modules/tracker_admin.h"
#include "unit_helpers.h"

extern const size_t wf_pg_migrations_count;

#define PASSWORD "pw-unit-Secret-91c"

static char *pg_dir;        /* the server's directory */
static char server[256];    /* postgresql://postgres@127.0.0.1:PORT */
static int db_counter;

typedef struct {
    char url[512];          /* the tracker's URL, with a password */
    char plain[512];        /* the same without it: what messages must say */
    PGconn *raw;            /* the test's own connection, to look behind the interface */
    wf_tracker *t;
    char *cwd_dir;
    char old_cwd[4096];
} fixture;

static int group_setup(void **state)
{
    (void)state;
    char url[512];
    pg_dir = unit_pg_start("test_tracker_pg", url, sizeof url);
    if (!pg_dir) return -1;
    /* The server without its database: each test creates its own. */
    char *slash = strrchr(url, '/');
    if (!slash) return -1;
    *slash = '\0';
    snprintf(server, sizeof server, "%s", url);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unit_pg_stop("test_tracker_pg", pg_dir);
    return 0;
}

static void admin(const char *sql)
{
    char url[512];
    snprintf(url, sizeof url, "%s/postgres", server);
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    char sql[128], name[64];
    snprintf(name, sizeof name, "unit_trk_%d_%ld", ++db_counter, (long)getpid());
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    admin(sql);
    /* postgresql://postgres@host:port -> postgresql://postgres:PASSWORD@host:port */
    const char *at = strchr(server, '@');
    snprintf(fx->url, sizeof fx->url, "%.*s:%s%s/%s", (int)(at - server), server, PASSWORD, at, name);
    snprintf(fx->plain, sizeof fx->plain, "%s/%s", server, name);
    fx->raw = PQconnectdb(fx->plain);
    if (PQstatus(fx->raw) != CONNECTION_OK) return -1;
    /* Backups go under the working directory: a private one per test. */
    fx->cwd_dir = unit_mkdtemp();
    if (!fx->cwd_dir || !getcwd(fx->old_cwd, sizeof fx->old_cwd) || chdir(fx->cwd_dir) != 0) return -1;
    *state = fx;
    return 0;
}

static int setup_open(void **state)
{
    if (setup(state) != 0) return -1;
    fixture *fx = *state;
    char err[512];
    return wf_tracker_open(fx->url, &fx->t, err, sizeof err) == WF_OK ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    wf_tracker_close(fx->t);
    PQfinish(fx->raw);
    if (chdir(fx->old_cwd) != 0) return -1;
    unit_rmtree(fx->cwd_dir);
    free(fx->cwd_dir);
    free(fx);
    return 0;
}

/* One value from sql on the test's own connection ("" for NULL). */
static const char *raw_text(fixture *fx, const char *sql, char *buf, size_t len)
{
    PGresult *r = PQexec(fx->raw, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) fail_msg("%s: %s", sql, PQerrorMessage(fx->raw));
    snprintf(buf, len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return buf;
}

static long raw_int(fixture *fx, const char *sql)
{
    char buf[64];
    return strtol(raw_text(fx, sql, buf, sizeof buf), NULL, 10);
}

static void raw_exec(fixture *fx, const char *sql)
{
    PGresult *r = PQexec(fx->raw, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(fx->raw));
    PQclear(r);
}

static const char *key_n(int n, char buf[65])
{
    snprintf(buf, 65, "%064x", n);
    return buf;
}

static void get_row(wf_tracker *t, const char *key, wf_tracker_row *row)
{
    bool found = false;
    assert_int_equal(wf_tracker_get(t, key, row, &found), WF_OK);
    assert_true(found);
}

/* ---- opening -------------------------------------------------------------- */

static void test_open_creates_schema_and_hides_the_password(void **state)
{
    fixture *fx = *state;
    char err[512] = "";
    if (wf_tracker_open(fx->url, &fx->t, err, sizeof err) != WF_OK) fail_msg("open: %s", err);
    assert_string_equal(wf_tracker_kind(fx->t), "postgresql");
    assert_string_equal(wf_tracker_path(fx->t), fx->plain);
    assert_null(strstr(wf_tracker_path(fx->t), PASSWORD));
    assert_true(wf_tracker_target_is_pg(fx->url));
    assert_true(wf_tracker_target_is_pg("POSTGRES://h/db"));
    assert_false(wf_tracker_target_is_pg("tracker/tracker.db"));
    char *pw = wf_tracker_target_password(fx->url);
    assert_non_null(pw);
    assert_string_equal(pw, PASSWORD);
    free(pw);
    assert_null(wf_tracker_target_password("tracker/tracker.db"));
    assert_true(wf_pg_migrations_count >= 1);
    assert_int_equal(raw_int(fx, "SELECT max(version) FROM wf2jsm.schema_version"), (long)wf_pg_migrations_count);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'wf2jsm' AND tablename IN "
                                 "('submissions', 'runs', 'manual_fixes', 'meta')"), 4);
    /* A second open finds the schema in place and changes nothing. */
    wf_tracker *again = NULL;
    assert_int_equal(wf_tracker_open(fx->url, &again, err, sizeof err), WF_OK);
    wf_tracker_close(again);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM wf2jsm.schema_version"), (long)wf_pg_migrations_count);
}

static void test_newer_schema_is_refused(void **state)
{
    fixture *fx = *state;
    char err[512] = "";
    raw_exec(fx, "INSERT INTO wf2jsm.schema_version (version) VALUES (999)");
    wf_tracker_close(fx->t);
    fx->t = NULL;
    assert_int_equal(wf_tracker_open(fx->url, &fx->t, err, sizeof err), WF_ERR_TRACKER);
    assert_non_null(strstr(err, "newer than this wf2jsm knows"));
    assert_non_null(strstr(err, "upgrade wf2jsm"));
    assert_null(strstr(err, PASSWORD));
}

static void test_unreachable_server_names_it_without_password(void **state)
{
    (void)state;
    wf_tracker *t = NULL;
    char err[512] = "";
    assert_int_equal(wf_tracker_open("postgresql://postgres:" PASSWORD "@127.0.0.1:1/nowhere", &t, err, sizeof err),
                     WF_ERR_TRACKER);
    assert_null(t);
    assert_non_null(strstr(err, "tracker postgresql://postgres@127.0.0.1:1/nowhere cannot be reached"));
    assert_non_null(strstr(err, "SYNC_TRACKER_DB"));
    assert_null(strstr(err, PASSWORD));
    assert_null(strchr(err, '\n'));
    /* A URL libpq cannot parse is a configuration error, and its text
     * (which may hold the password) is not repeated. */
    assert_int_equal(wf_tracker_open("postgresql://postgres:" PASSWORD "@127.0.0.1/x?no_such_parameter=1", &t, err, sizeof err),
                     WF_ERR_CONFIG);
    assert_non_null(strstr(err, "SYNC_TRACKER_DB is not a valid PostgreSQL URL"));
    assert_null(strstr(err, PASSWORD));
}

/* ---- the delivery protocol -------------------------------------------- */

static void test_intent_created_attaching_delivered(void **state)
{
    fixture *fx = *state;
    char k[65];
    wf_tracker_row row;
    key_n(1, k);
    assert_int_equal(wf_tracker_record_intent(fx->t, k, "17", "2026-11-22 10:00:00+00", 1700000000000000, 3), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "creating");
    assert_true(row.may_exist);
    assert_string_equal(row.source_id, "17");
    assert_int_equal(row.source_time_us, 1700000000000000);
    assert_int_equal(row.last_run, 3);
    wf_tracker_row_free(&row);

    assert_int_equal(wf_tracker_record_created(fx->t, k, "SD-1", "10001", 3, false), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "created");
    assert_string_equal(row.jsm_key, "SD-1");
    assert_string_equal(row.jsm_issue_id, "10001");
    assert_int_equal(row.created_run, 3);
    wf_tracker_row_free(&row);

    assert_int_equal(wf_tracker_record_attaching(fx->t, k), WF_OK);
    assert_int_equal(wf_tracker_record_delivered(fx->t, k, "abc"), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "delivered");
    assert_string_equal(row.content_checksum, "abc");
    assert_non_null(row.delivered_at);
    assert_int_equal(strlen(row.delivered_at), 20);
    wf_tracker_row_free(&row);

    /* An adoption goes to attaching and remembers it was adopted. */
    char k2[65];
    key_n(2, k2);
    assert_int_equal(wf_tracker_record_intent(fx->t, k2, "18", "t", 1700000000000001, 4), WF_OK);
    assert_int_equal(wf_tracker_record_created(fx->t, k2, "SD-2", "10002", 4, true), WF_OK);
    get_row(fx->t, k2, &row);
    assert_string_equal(row.state, "attaching");
    wf_tracker_row_free(&row);
    assert_int_equal(raw_int(fx, "SELECT adopted FROM wf2jsm.submissions WHERE source_id = '18'"), 1);

    bool found = true;
    key_n(99, k);
    assert_int_equal(wf_tracker_get(fx->t, k, &row, &found), WF_OK);
    assert_false(found);
}

static void test_failure_parks_and_not_sent_restores(void **state)
{
    fixture *fx = *state;
    char k[65];
    wf_tracker_row row;
    key_n(5, k);
    assert_int_equal(wf_tracker_record_intent(fx->t, k, "5", "t", 10, 1), WF_OK);
    assert_int_equal(wf_tracker_record_not_sent(fx->t, k, false), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "pending");
    assert_false(row.may_exist);
    wf_tracker_row_free(&row);
    /* Text with quotes, a backslash and a newline is a value, never SQL. */
    const char *nasty = "it's \\ a \"reason\"\n'); DROP TABLE wf2jsm.submissions; --";
    assert_int_equal(wf_tracker_record_failure(fx->t, k, "user_fixable", nasty, true, true), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "parked");
    assert_int_equal(row.attempts, 1);
    assert_true(row.may_exist);
    assert_string_equal(row.last_error, nasty);
    assert_string_equal(row.error_class, "user_fixable");
    wf_tracker_row_free(&row);
    assert_int_equal(wf_tracker_record_failure(fx->t, k, "temporary", "503", false, false), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "failed");
    assert_int_equal(row.attempts, 2);
    assert_false(row.may_exist);
    wf_tracker_row_free(&row);
}

static void test_cursor_count_and_retry_times(void **state)
{
    fixture *fx = *state;
    char k[65];
    int64_t cursor = -1;
    bool has = true;
    assert_int_equal(wf_tracker_cursor(fx->t, &cursor, &has), WF_OK);
    assert_false(has);
    for (int i = 1; i <= 4; i++) {
        assert_int_equal(wf_tracker_record_intent(fx->t, key_n(i, k), "x", "t", i * 100, 1), WF_OK);
        if (i <= 2) assert_int_equal(wf_tracker_record_delivered(fx->t, k, NULL), WF_OK);
    }
    assert_int_equal(wf_tracker_cursor(fx->t, &cursor, &has), WF_OK);
    assert_true(has);
    assert_int_equal(cursor, 400);
    long n = 0;
    assert_int_equal(wf_tracker_count_between(fx->t, 200, 300, &n), WF_OK);
    assert_int_equal(n, 2);
    assert_int_equal(wf_tracker_count_between(fx->t, 200, -1, &n), WF_OK);
    assert_int_equal(n, 3);
    int64_t *times = NULL;
    size_t nt = 0;
    /* Rows 3 and 4 are creating; run 1 touched them, so run 1 skips them. */
    assert_int_equal(wf_tracker_retry_times(fx->t, 1000, 2, &times, &nt), WF_OK);
    assert_int_equal(nt, 2);
    assert_int_equal(times[0], 300);
    assert_int_equal(times[1], 400);
    free(times);
    assert_int_equal(wf_tracker_retry_times(fx->t, 1000, 1, &times, &nt), WF_OK);
    assert_int_equal(nt, 0);
    free(times);
    long open = 0;
    assert_int_equal(wf_tracker_count_open(fx->t, &open), WF_OK);
    assert_int_equal(open, 2);
    long counts[WF_TRACKER_NSTATES];
    assert_int_equal(wf_tracker_count_states(fx->t, counts), WF_OK);
    assert_int_equal(counts[1], 2);   /* creating */
    assert_int_equal(counts[4], 2);   /* delivered */
    char *text = NULL;
    int64_t us = 0;
    assert_int_equal(wf_tracker_newest(fx->t, &text, &us, &has), WF_OK);
    assert_true(has);
    assert_int_equal(us, 400);
    assert_string_equal(text, "t");
    free(text);
}

static void test_runs_and_their_reports(void **state)
{
    fixture *fx = *state;
    long r1 = 0, r2 = 0;
    assert_int_equal(wf_tracker_run_begin(fx->t, "sync", &r1), WF_OK);
    assert_int_equal(wf_tracker_run_begin(fx->t, "status", &r2), WF_OK);
    assert_true(r2 > r1 && r1 > 0);
    wf_run_stats s = {.seen = 5, .created = 4, .failed = 2, .parked = 1, .http_429 = 3, .duration_ms = 120,
                      .http_requests = 17, .peak_in_flight = 6, .garbled = 2, .lookups = 1, .lookup_calls = 1};
    assert_int_equal(wf_tracker_run_finish(fx->t, r1, &s, 0, NULL), WF_OK);
    wf_tracker_run *runs = NULL;
    size_t n = 0;
    assert_int_equal(wf_tracker_recent_runs(fx->t, 5, &runs, &n), WF_OK);
    assert_int_equal(n, 2);
    assert_int_equal(runs[0].id, r2);
    assert_false(runs[0].has_exit_code);
    assert_null(runs[0].finished_at);
    assert_int_equal(runs[1].id, r1);
    assert_string_equal(runs[1].command, "sync");
    assert_true(runs[1].has_exit_code);
    assert_int_equal(runs[1].exit_code, 0);
    assert_int_equal(runs[1].seen, 5);
    assert_int_equal(runs[1].http_429, 3);
    assert_int_equal(runs[1].duration_ms, 120);
    assert_int_equal(runs[1].http_requests, 17);
    assert_int_equal(runs[1].peak_in_flight, 6);
    assert_int_equal(runs[1].garbled, 2);
    assert_int_equal(runs[1].lookup_calls, 1);
    assert_non_null(runs[1].finished_at);
    wf_tracker_runs_free(runs, n);
    wf_tracker_totals tot;
    assert_int_equal(wf_tracker_run_totals(fx->t, &tot), WF_OK);
    assert_int_equal(tot.failed, 2);
    assert_int_equal(tot.parked, 1);
    assert_int_equal(tot.http_429, 3);
    assert_int_equal(tot.http_requests, 17);
    assert_int_equal(tot.garbled, 2);
    int64_t now_s = wf_now_us() / 1000000;
    assert_true(tot.last_success_s > now_s - 60 && tot.last_success_s <= now_s + 1);
    bool exists = false;
    char err[256];
    assert_int_equal(wf_tracker_admin_run_exists(fx->t, r1, &exists, err, sizeof err), WF_OK);
    assert_true(exists);
    assert_int_equal(wf_tracker_admin_run_exists(fx->t, r2 + 100, &exists, err, sizeof err), WF_OK);
    assert_false(exists);
}

static void test_meta_and_manual_fixes(void **state)
{
    fixture *fx = *state;
    char *v = (char *)"x";
    assert_int_equal(wf_tracker_meta_get(fx->t, "fields:1:10", &v), WF_OK);
    assert_null(v);
    assert_int_equal(wf_tracker_meta_set(fx->t, "fields:1:10", "[1]"), WF_OK);
    assert_int_equal(wf_tracker_meta_set(fx->t, "fields:1:10", "[2]"), WF_OK);
    assert_int_equal(wf_tracker_meta_get(fx->t, "fields:1:10", &v), WF_OK);
    assert_string_equal(v, "[2]");
    free(v);

    char k[65], err[256];
    key_n(7, k);
    assert_int_equal(wf_tracker_add_manual_fix(fx->t, k, "SD-7", "customfield_1", NULL, "refused"), WF_OK);
    assert_int_equal(wf_tracker_add_manual_fix(fx->t, k, "SD-7", "customfield_2", "v", "refused too"), WF_OK);
    bool open = false;
    assert_int_equal(wf_tracker_admin_fix_is_open(fx->t, k, "customfield_1", NULL, &open, err, sizeof err), WF_OK);
    assert_true(open);   /* NULL matches NULL */
    assert_int_equal(wf_tracker_admin_fix_is_open(fx->t, k, "customfield_2", "w", &open, err, sizeof err), WF_OK);
    assert_false(open);
    wf_tracker_fix *fixes = NULL;
    size_t n = 0;
    assert_int_equal(wf_tracker_open_fixes(fx->t, 10, &fixes, &n), WF_OK);
    assert_int_equal(n, 2);
    assert_string_equal(fixes[0].field_id, "customfield_1");
    assert_null(fixes[0].value);
    assert_string_equal(fixes[1].value, "v");
    wf_tracker_fixes_free(fixes, n);
    char **ids = NULL;
    assert_int_equal(wf_tracker_fix_fields(fx->t, k, &ids, &n), WF_OK);
    assert_int_equal(n, 2);
    wf_tracker_strings_free(ids, n);
}

static void test_prefetch_answers_gets_until_the_first_write(void **state)
{
    fixture *fx = *state;
    char in[65], out[65];
    wf_tracker_row row;
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(1, in), "1", "t", 100, 1), WF_OK);
    assert_int_equal(wf_tracker_record_delivered(fx->t, in, "c"), WF_OK);
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(2, out), "2", "t", 5, 1), WF_OK);
    assert_int_equal(wf_tracker_prefetch(fx->t, 50, -1), WF_OK);
    /* Behind the interface's back: a prefetched row answers from memory... */
    raw_exec(fx, "UPDATE wf2jsm.submissions SET state = 'parked' WHERE source_id = '1'");
    get_row(fx->t, in, &row);
    assert_string_equal(row.state, "delivered");
    assert_string_equal(row.content_checksum, "c");
    wf_tracker_row_free(&row);
    /* ...a key outside the window is still read from the tracker... */
    get_row(fx->t, out, &row);
    assert_string_equal(row.state, "creating");
    wf_tracker_row_free(&row);
    /* ...and any write through the interface drops the copy. */
    assert_int_equal(wf_tracker_record_attaching(fx->t, out), WF_OK);
    get_row(fx->t, in, &row);
    assert_string_equal(row.state, "parked");
    wf_tracker_row_free(&row);
}

static void test_transaction_lands_whole_or_not_at_all(void **state)
{
    fixture *fx = *state;
    char k[65];
    assert_int_equal(wf_tracker_begin(fx->t), WF_OK);
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(1, k), "1", "t", 1, 1), WF_OK);
    assert_int_equal(wf_tracker_meta_set(fx->t, "m", "v"), WF_OK);
    /* Not visible to another session before the commit. */
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM wf2jsm.submissions"), 0);
    wf_tracker_rollback(fx->t);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM wf2jsm.submissions"), 0);
    wf_tracker_rollback(fx->t);   /* outside a transaction: nothing */
    assert_int_equal(wf_tracker_begin(fx->t), WF_OK);
    assert_int_equal(wf_tracker_record_intent(fx->t, k, "1", "t", 1, 1), WF_OK);
    assert_int_equal(wf_tracker_commit(fx->t), WF_OK);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM wf2jsm.submissions"), 1);
    /* A failed statement inside leaves the transaction for rollback, and
     * the failure's message is the one kept. */
    assert_int_equal(wf_tracker_begin(fx->t), WF_OK);
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(2, k), "2", "t", 2, 1), WF_OK);
    raw_exec(fx, "ALTER TABLE wf2jsm.meta ADD CONSTRAINT short CHECK (length(value) < 3) NOT VALID");
    assert_int_equal(wf_tracker_meta_set(fx->t, "m", "too long"), WF_ERR_TRACKER);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", wf_tracker_errmsg(fx->t));
    wf_tracker_rollback(fx->t);
    assert_string_equal(wf_tracker_errmsg(fx->t), msg);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM wf2jsm.submissions"), 1);
}

static void test_customer_cache(void **state)
{
    fixture *fx = *state;
    char *account = (char *)"x";
    assert_int_equal(wf_tracker_customer_get(fx->t, "1", "ann@example.com", &account), WF_OK);
    assert_null(account);
    assert_int_equal(wf_tracker_customer_put(fx->t, "1", "ann@example.com", "qm:1"), WF_OK);
    assert_int_equal(wf_tracker_customer_put(fx->t, "1", "ann@example.com", "qm:2"), WF_OK);
    assert_int_equal(wf_tracker_customer_put(fx->t, "2", "ann@example.com", "qm:3"), WF_OK);
    assert_int_equal(wf_tracker_customer_get(fx->t, "1", "ann@example.com", &account), WF_OK);
    assert_string_equal(account, "qm:2");
    free(account);
    assert_int_equal(wf_tracker_customer_forget(fx->t, "1", "ann@example.com"), WF_OK);
    assert_int_equal(wf_tracker_customer_get(fx->t, "1", "ann@example.com", &account), WF_OK);
    assert_null(account);
    assert_int_equal(wf_tracker_customer_get(fx->t, "2", "ann@example.com", &account), WF_OK);
    assert_string_equal(account, "qm:3");
    free(account);
}

/* ---- the operator's changes ------------------------------------------- */

static void test_admin_insert_resolve_requeue_forget(void **state)
{
    fixture *fx = *state;
    char err[512], k[65];
    bool inserted = false, changed = false;
    key_n(0xabcdef12, k);
    assert_int_equal(wf_tracker_admin_insert(fx->t, k, "42", "t", 5, "SD-9", "10009", 7, &inserted, err, sizeof err),
                     WF_OK);
    assert_true(inserted);
    assert_int_equal(wf_tracker_admin_insert(fx->t, k, "42", "t", 5, NULL, NULL, 7, &inserted, err, sizeof err), WF_OK);
    assert_false(inserted);
    wf_tracker_row row;
    assert_int_equal(wf_tracker_admin_resolve(fx->t, "id:42", &row, err, sizeof err), WF_OK);
    assert_string_equal(row.state, "attaching");
    assert_true(row.may_exist);
    wf_tracker_row_free(&row);
    /* The prefix of a key that starts with zeros. */
    assert_int_equal(wf_tracker_admin_resolve(fx->t, "00000000", &row, err, sizeof err), WF_OK);
    assert_string_equal(row.key, k);
    wf_tracker_row_free(&row);
    assert_int_equal(wf_tracker_admin_resolve(fx->t, "ffffffff", &row, err, sizeof err), WF_ERR_USAGE);
    assert_non_null(strstr(err, "no submission ffffffff"));

    assert_int_equal(wf_tracker_record_failure(fx->t, k, "temporary", "x", true, false), WF_OK);
    assert_int_equal(wf_tracker_admin_requeue(fx->t, k, &changed, err, sizeof err), WF_OK);
    assert_true(changed);
    assert_int_equal(wf_tracker_add_manual_fix(fx->t, k, "SD-9", "f", NULL, "m"), WF_OK);
    assert_int_equal(wf_tracker_admin_forget_request(fx->t, k, true, err, sizeof err), WF_OK);
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "pending");
    assert_null(row.jsm_key);
    assert_true(row.may_exist);
    wf_tracker_row_free(&row);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM wf2jsm.manual_fixes WHERE resolved_at IS NULL"), 0);

    assert_int_equal(wf_tracker_admin_adopt(fx->t, k, "SD-10", "10010", 8, err, sizeof err), WF_OK);
    assert_int_equal(wf_tracker_record_delivered(fx->t, k, "c1"), WF_OK);
    assert_int_equal(wf_tracker_admin_requeue(fx->t, k, &changed, err, sizeof err), WF_OK);
    assert_false(changed);   /* delivered rows are left alone */
    wf_tracker_row *rows = NULL;
    size_t n = 0;
    wf_admin_query q = {.by = WF_ADMIN_DELIVERED_BETWEEN, .since_us = wf_now_us() - 60000000, .until_us = -1};
    assert_int_equal(wf_tracker_admin_select(fx->t, &q, &rows, &n, err, sizeof err), WF_OK);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].jsm_key, "SD-10");
    wf_tracker_admin_free_rows(rows, n);
    q = (wf_admin_query){.by = WF_ADMIN_BY_CREATED_RUN, .run_id = 8, .until_us = -1};
    assert_int_equal(wf_tracker_admin_select(fx->t, &q, &rows, &n, err, sizeof err), WF_OK);
    assert_int_equal(n, 1);
    wf_tracker_admin_free_rows(rows, n);
}

/* ---- the lock across hosts -------------------------------------------- */

static void test_advisory_lock_is_one_session_at_a_time(void **state)
{
    fixture *fx = *state;
    char err[512] = "";
    wf_tracker *other = NULL;
    wf_lock *mine = NULL, *theirs = NULL;
    assert_int_equal(wf_tracker_open(fx->url, &other, err, sizeof err), WF_OK);
    assert_int_equal(wf_lock_acquire_tracker(fx->t, &mine, err, sizeof err), WF_OK);
    assert_int_equal(wf_lock_acquire_tracker(other, &theirs, err, sizeof err), WF_ERR_LOCKED);
    assert_null(theirs);
    assert_non_null(strstr(err, "another wf2jsm run holds the advisory lock of the tracker"));
    assert_non_null(strstr(err, fx->plain));
    assert_non_null(strstr(err, "server process"));
    assert_null(strstr(err, PASSWORD));
    /* The session ending (a host dying) releases it. */
    wf_lock_release(mine);
    wf_tracker_close(fx->t);
    fx->t = NULL;
    /* The server ends the backend a moment after the client hangs up. */
    wf_err rc = WF_ERR_LOCKED;
    for (int i = 0; i < 100 && rc == WF_ERR_LOCKED; i++) {
        rc = wf_lock_acquire_tracker(other, &theirs, err, sizeof err);
        if (rc == WF_ERR_LOCKED) nanosleep(&(struct timespec){.tv_nsec = 20000000}, NULL);
    }
    assert_int_equal(rc, WF_OK);
    wf_lock_release(theirs);
    wf_tracker_close(other);
}

/* ---- backup ------------------------------------------------------------- */

static void test_backup_is_a_private_sql_file_psql_restores(void **state)
{
    fixture *fx = *state;
    char k[65], path[4096], err[512] = "";
    assert_int_equal(wf_tracker_record_intent(fx->t, key_n(3, k), "3", "it's", 3, 1), WF_OK);
    assert_int_equal(wf_tracker_record_failure(fx->t, k, "temporary", "tab\there\nnewline \\ back", true, false), WF_OK);
    long run = 0;
    assert_int_equal(wf_tracker_run_begin(fx->t, "sync", &run), WF_OK);
    if (wf_tracker_admin_backup(fx->t, path, sizeof path, err, sizeof err) != WF_OK) fail_msg("backup: %s", err);
    assert_non_null(strstr(path, "tracker/backups/tracker-"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat("tracker/backups", &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);

    /* Change the tracker, then restore the file as the README says. */
    raw_exec(fx, "DELETE FROM wf2jsm.submissions");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "psql -X -q -v ON_ERROR_STOP=1 '%s' -f '%s' >/dev/null 2>&1", fx->plain, path);
    assert_int_equal(system(cmd), 0);
    wf_tracker_row row;
    get_row(fx->t, k, &row);
    assert_string_equal(row.state, "failed");
    assert_string_equal(row.source_time, "it's");
    assert_string_equal(row.last_error, "tab\there\nnewline \\ back");
    wf_tracker_row_free(&row);
    /* The id sequence moved past the restored runs. */
    long next = 0;
    assert_int_equal(wf_tracker_run_begin(fx->t, "sync", &next), WF_OK);
    assert_true(next > run);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TO(f) cmocka_unit_test_setup_teardown(f, setup_open, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_open_creates_schema_and_hides_the_password),
        TO(test_newer_schema_is_refused),
        T(test_unreachable_server_names_it_without_password),
        TO(test_intent_created_attaching_delivered),
        TO(test_failure_parks_and_not_sent_restores),
        TO(test_cursor_count_and_retry_times),
        TO(test_runs_and_their_reports),
        TO(test_meta_and_manual_fixes),
        TO(test_prefetch_answers_gets_until_the_first_write),
        TO(test_customer_cache),
        TO(test_transaction_lands_whole_or_not_at_all),
        TO(test_admin_insert_resolve_requeue_forget),
        TO(test_advisory_lock_is_one_session_at_a_time),
        TO(test_backup_is_a_private_sql_file_psql_restores),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
