/* test_fetch_submissions.c: reading a row's time from its text. The window
 * query once asked the server for extract(epoch ...) * 1000000; the program
 * now reads PostgreSQL's ISO text itself (wf_parse_time_us), so these tests
 * hold it to the server's own answer: known values first, then thousands of
 * values across PostgreSQL's whole range of dates, compared with what a
 * real server (tests/lib/pgtmp.sh, started for the group) computes for
 * timestamptz, timestamp and date columns in the session the program sets
 * up (TimeZone=UTC, DateStyle=ISO,YMD). Run from the repository root. */
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

#include "../../modules/fetch_submissions.h"
#include "unit_helpers.h"

static char *pg_dir;
static char url[512];

static int group_setup(void **state)
{
    (void)state;
    pg_dir = unit_pg_start("test_fetch_submissions", url, sizeof url);
    return pg_dir ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    unit_pg_stop("test_fetch_submissions", pg_dir);
    return 0;
}

static void test_known_values(void **state)
{
    (void)state;
    static const struct { const char *text; int64_t us; } cases[] = {
        {"1970-01-01 00:00:00+00", 0},
        {"1969-12-31 23:59:59.999999+00", -1},
        {"2026-11-22 10:00:00+00", INT64_C(1795341600000000)},
        {"2026-11-22 10:00:00.5+00", INT64_C(1795341600500000)},
        {"2026-11-22 10:00:00.000001+00", INT64_C(1795341600000001)},
        {"2026-11-22 12:00:00+02", INT64_C(1795341600000000)},
        {"2026-11-22 05:30:00-04:30", INT64_C(1795341600000000)},
        {"1900-01-01 00:00:00+00:53:28", INT64_C(-2208992008000000)},
        {"2026-11-22 10:00:00", INT64_C(1795341600000000)},        /* timestamp: from UTC */
        {"2026-11-22", INT64_C(1795305600000000)},                 /* date: UTC midnight */
        {"9999-12-31 23:59:59.999999+00", INT64_C(253402300799999999)},
        {"10000-01-01 00:00:00+00", INT64_C(253402300800000000)},
        {"0001-01-01 00:00:00+00 BC", INT64_C(-62167219200000000)},
        {"0044-03-15 12:00:00+00 BC", INT64_C(-63517780800000000)},
        {"4713-11-24 00:00:00+00 BC", INT64_C(-210835180800000000)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t us = 42;
        if (!wf_parse_time_us(cases[i].text, &us)) fail_msg("'%s' was refused", cases[i].text);
        if (us != cases[i].us) fail_msg("'%s': %lld, expected %lld", cases[i].text, (long long)us, (long long)cases[i].us);
    }
}

static void test_refuses_what_is_not_a_time(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "infinity", "-infinity", "", "2026", "2026-11", "2026-1-22", "2026-11-22 10:00", "2026-11-22T10:00:00Z",
        "2026-11-22 10:00:00.+00", "2026-11-22 10:00:00.1234567+00", "0000-01-01", "2026-13-01", "2026-00-10",
        "2026-11-32", "2026-11-22 10:00:00+", "2026-11-22 10:00:00+0", "2026-11-22 10:00:00+00 AD",
        "2026-11-22 10:00:00+00 BCE", " 2026-11-22", "2026-11-22 ", "294276-12-31 23:59:59.999999+00",
        "99999999-01-01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t us = 42;
        if (wf_parse_time_us(bad[i], &us)) fail_msg("'%s' was read as %lld", bad[i], (long long)us);
        assert_true(us == 42);
    }
}

/* Every value of the series as text, beside the server's own
 * extract(epoch) * 1000000, must read back to exactly that number. */
static void compare_with_server(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
    int n = PQntuples(r);
    if (n < 1000) fail_msg("only %d values from %s", n, sql);
    for (int i = 0; i < n; i++) {
        const char *text = PQgetvalue(r, i, 0);
        int64_t want = strtoll(PQgetvalue(r, i, 1), NULL, 10), got = 0;
        if (!wf_parse_time_us(text, &got)) fail_msg("'%s' was refused", text);
        if (got != want) fail_msg("'%s': %lld, the server says %lld", text, (long long)got, (long long)want);
    }
    PQclear(r);
}

static void test_agrees_with_the_server_across_its_range(void **state)
{
    (void)state;
    const char *keys[] = {"dbname", "options", NULL};
    const char *vals[] = {url, "-c TimeZone=UTC -c DateStyle=ISO,YMD", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) fail_msg("connecting: %s", PQerrorMessage(c));
    /* From 4713 BC (PostgreSQL's first day) to year 200000, in steps that
     * land on every kind of fraction, time of day and day of the year. */
    const char *series = "generate_series('4713-11-24 00:00:00+00 BC'::timestamptz, '200000-01-01 00:00:00+00', "
                         "interval '7919 days 3 hours 17 minutes 23.456789 seconds')";
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT v::text, (extract(epoch FROM v) * 1000000)::int8 FROM %s v", series);
    compare_with_server(c, sql);
    snprintf(sql, sizeof sql, "SELECT v::timestamp::text, (extract(epoch FROM v::timestamp) * 1000000)::int8 FROM %s v",
             series);
    compare_with_server(c, sql);
    snprintf(sql, sizeof sql, "SELECT v::date::text, (extract(epoch FROM v::date) * 1000000)::int8 FROM %s v", series);
    compare_with_server(c, sql);
    /* Around the epoch, microsecond by microsecond-ish. */
    compare_with_server(c, "SELECT v::text, (extract(epoch FROM v) * 1000000)::int8 FROM generate_series("
                           "'1969-12-31 23:59:59.99+00'::timestamptz, '1970-01-01 00:00:00.01+00', "
                           "interval '7 microseconds') v");
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_refuses_what_is_not_a_time),
        cmocka_unit_test(test_agrees_with_the_server_across_its_range),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
