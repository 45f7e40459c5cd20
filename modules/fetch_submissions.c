/* fetch_submissions.c: keyset-ordered, streamed reads with libpq. */
#define _POSIX_C_SOURCE 200809L
#include "fetch_submissions.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The first result column is ours (the id as text); the table's follow. */
#define META_COLS 1

struct wf_source {
    PGconn *conn;
    PostgresPollingStatusType poll; /* where the handshake waits */
    bool ready;                    /* handshake done */
    char *table_sql;   /* quoted, possibly schema-qualified */
    char *table_name;  /* as configured, for messages */
    char *id_sql;
    char *time_sql;
    char *time_name;   /* as configured: the result column holding the time */
    char *select_prefix; /* SELECT ... FROM table t: built at the start */
};

/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d (astronomical
 * year: 0 is 1 BC), by H. Hinnant's days_from_civil: exact for any year
 * PostgreSQL can store. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads exactly n digits (n > 0) at *p into *out and moves *p past them. */
static bool read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9') return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

bool wf_parse_time_us(const char *text, int64_t *us)
{
    const char *p = text;
    /* The year: four digits or more (PostgreSQL pads to four, and goes on
     * to six for the years past 9999). */
    int64_t year = 0;
    int ndigits = 0;
    while (*p >= '0' && *p <= '9') {
        if (++ndigits > 7) return false;
        year = year * 10 + (*p++ - '0');
    }
    int month, day, hour = 0, minute = 0, second = 0, micros = 0;
    if (ndigits < 4 || *p++ != '-' || !read_digits(&p, 2, &month) || *p++ != '-' || !read_digits(&p, 2, &day))
        return false;
    if (month < 1 || month > 12 || day < 1 || day > 31) return false;
    if (*p == ' ' && p[1] >= '0' && p[1] <= '9') {
        p++;
        if (!read_digits(&p, 2, &hour) || *p++ != ':' || !read_digits(&p, 2, &minute) || *p++ != ':' ||
            !read_digits(&p, 2, &second))
            return false;
        if (*p == '.') {
            p++;
            int n = 0;
            while (*p >= '0' && *p <= '9') {
                if (++n > 6) return false;
                micros = micros * 10 + (*p++ - '0');
            }
            if (n == 0) return false;
            for (; n < 6; n++) micros *= 10;
        }
    }
    if (hour > 24 || minute > 59 || second > 60) return false;
    /* The zone: +HH, +HH:MM or +HH:MM:SS (always +00 in the UTC session,
     * read in full all the same). A date or a timestamp without time zone
     * has none, and counts from UTC midnight, as extract(epoch) does. */
    int64_t offset = 0;
    if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0, os = 0;
        if (!read_digits(&p, 2, &oh)) return false;
        if (*p == ':' && !(p++, read_digits(&p, 2, &om))) return false;
        if (*p == ':' && !(p++, read_digits(&p, 2, &os))) return false;
        offset = sign * (int64_t)(oh * 3600 + om * 60 + os);
    }
    if (strcmp(p, " BC") == 0) {
        if (year == 0) return false;
        year = 1 - year;
    } else if (*p) {
        return false;
    } else if (year == 0) {
        return false;
    }
    int64_t secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
    /* The last days PostgreSQL stores (up to 294276 AD) are past what
     * microseconds in 64 bits hold; extract(epoch) * 1000000 could not
     * give them as int8 either. */
    if (secs > INT64_MAX / 1000000 - 1 || secs < INT64_MIN / 1000000 + 1) return false;
    *us = secs * 1000000 + micros;
    return true;
}

void wf_format_time_us(int64_t us, char *buf, size_t buflen)
{
    time_t secs = (time_t)(us / 1000000);
    long frac = (long)(us % 1000000);
    if (frac < 0) { frac += 1000000; secs -= 1; }
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, buflen, "%s.%06ldZ", base, frac);
}

static char *quote_ident(PGconn *conn, const char *name)
{
    char *q = PQescapeIdentifier(conn, name, strlen(name));
    if (!q) return NULL;
    char *copy = strdup(q);
    PQfreemem(q);
    return copy;
}

/* schema.table is quoted part by part; the configured name was already
 * checked to hold only letters, digits, '_' and at most a dot. */
static char *quote_table(PGconn *conn, const char *table)
{
    const char *dot = strchr(table, '.');
    if (!dot) return quote_ident(conn, table);
    char schema[64];
    snprintf(schema, sizeof schema, "%.*s", (int)(dot - table), table);
    char *qs = quote_ident(conn, schema), *qt = quote_ident(conn, dot + 1);
    char *out = NULL;
    if (qs && qt && (out = malloc(strlen(qs) + strlen(qt) + 2)))
        sprintf(out, "%s.%s", qs, qt);
    free(qs);
    free(qt);
    return out;
}

static void db_error(PGconn *conn, const char *doing, char *errbuf, size_t errlen)
{
    const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
    size_t len = strlen(msg);
    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) len--;
    snprintf(errbuf, errlen, "database: %s failed: %.*s (check WEBFORM_DB_URL and that PostgreSQL is up)",
             doing, (int)len, msg);
}

wf_err wf_source_connect_start(const wf_config *cfg, wf_source **out, char **password_out,
                               char *errbuf, size_t errlen)
{
    *out = NULL;
    if (password_out) *password_out = NULL;
    char *parse_err = NULL;
    PQconninfoOption *opts = PQconninfoParse(cfg->db_url, &parse_err);
    if (!opts) {
        snprintf(errbuf, errlen, "WEBFORM_DB_URL is not a valid libpq URI or conninfo: %s",
                 parse_err ? parse_err : "out of memory");
        PQfreemem(parse_err);
        return WF_ERR_CONFIG;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (password_out && strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            *password_out = strdup(o->val);
    PQconninfoFree(opts);

    /* Later keywords override what the URL says: the session settings that
     * the unique key depends on are not negotiable. */
    const char *keys[] = {"dbname", "options", "application_name", "connect_timeout", NULL};
    const char *vals[] = {cfg->db_url, "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=iso_8601",
                          "wf2jsm", "10", NULL};
    wf_source *src = calloc(1, sizeof *src);
    if (!src) return WF_ERR_NOMEM;
    src->poll = PGRES_POLLING_WRITING;
    src->conn = PQconnectStartParams(keys, vals, 1);
    if (!src->conn || PQstatus(src->conn) == CONNECTION_BAD) {
        db_error(src->conn, "connecting", errbuf, errlen);
        wf_source_close(src);
        return WF_ERR_DB;
    }
    /* The statements' text is built now, while the handshake has barely
     * begun, rather than on its last step. Escaping reads only the
     * connection's client encoding, and the configured names are plain
     * ASCII identifiers (config.c checks them). */
    src->table_name = strdup(cfg->table);
    src->table_sql = quote_table(src->conn, cfg->table);
    src->id_sql = quote_ident(src->conn, cfg->id_column);
    src->time_sql = quote_ident(src->conn, cfg->time_column);
    src->time_name = strdup(cfg->time_column);
    size_t cap = src->table_sql && src->id_sql ? strlen(src->table_sql) + strlen(src->id_sql) + 64 : 0;
    if (cap) src->select_prefix = malloc(cap);
    if (!src->table_name || !src->table_sql || !src->id_sql || !src->time_sql || !src->time_name ||
        !src->select_prefix) {
        wf_source_close(src);
        snprintf(errbuf, errlen, "out of memory while connecting to the database");
        return WF_ERR_NOMEM;
    }
    /* The time is read from the row's own text (see wf_parse_time_us):
     * computing it on the server, extract(epoch ...) with its numeric
     * arithmetic and casts, took a fifth of a tick with nothing new. */
    snprintf(src->select_prefix, cap, "SELECT t.%s::text, t.* FROM %s t ", src->id_sql, src->table_sql);
    *out = src;
    return WF_OK;
}

void wf_source_connect_advance(wf_source *src)
{
    if (!src || src->ready) return;
    /* Only what the socket already allows: a zero timeout never waits. */
    while (src->poll != PGRES_POLLING_OK && src->poll != PGRES_POLLING_FAILED) {
        struct pollfd pfd = {.fd = PQsocket(src->conn),
                             .events = src->poll == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0) break;
        src->poll = PQconnectPoll(src->conn);
    }
}

void wf_source_connect_send_startup(wf_source *src)
{
    if (!src || src->ready) return;
    /* The states before the server has the startup message: the TCP
     * connect, the SSL (or GSS) request and its answer, and the TLS
     * handshake when the server takes it. */
    time_t deadline = time(NULL) + 10;
    while (src->poll != PGRES_POLLING_OK && src->poll != PGRES_POLLING_FAILED) {
        ConnStatusType st = PQstatus(src->conn);
        if (st != CONNECTION_STARTED && st != CONNECTION_MADE && st != CONNECTION_SSL_STARTUP &&
            st != CONNECTION_GSS_STARTUP && st != CONNECTION_NEEDED)
            break;
        struct pollfd pfd = {.fd = PQsocket(src->conn),
                             .events = src->poll == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        long left = (long)(deadline - time(NULL));
        if (pfd.fd < 0 || left <= 0 || poll(&pfd, 1, (int)(left * 1000)) <= 0) break;
        src->poll = PQconnectPoll(src->conn);
    }
}

wf_err wf_source_connect_finish(wf_source *src, char *errbuf, size_t errlen)
{
    if (src->ready) return WF_OK;
    /* libpq's own loop (as in PQconnectdb), with connect_timeout's 10 s
     * kept by hand: the asynchronous start has no timeout of its own. It
     * resumes wherever wf_source_connect_advance() left the handshake. */
    time_t deadline = time(NULL) + 10;
    while (src->poll != PGRES_POLLING_OK && src->poll != PGRES_POLLING_FAILED) {
        struct pollfd pfd = {.fd = PQsocket(src->conn),
                             .events = src->poll == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        long left = (long)(deadline - time(NULL));
        if (pfd.fd < 0 || left <= 0 || poll(&pfd, 1, (int)(left * 1000)) <= 0) break;
        src->poll = PQconnectPoll(src->conn);
    }
    if (PQstatus(src->conn) != CONNECTION_OK) {
        /* A later statement (the metrics' count, say) then fails at once
         * with the same message instead of waiting another 10 s. */
        src->poll = PGRES_POLLING_FAILED;
        db_error(src->conn, "connecting", errbuf, errlen);
        if (!PQerrorMessage(src->conn)[0]) snprintf(errbuf, errlen, "connecting to the database timed out after 10 s");
        return WF_ERR_DB;
    }
    src->ready = true;
    return WF_OK;
}

/* Every statement starts here: a connection left half-way by its caller
 * (see wf_source_connect_advance) is finished first, with the same errors
 * as wf_source_connect_finish(). */
static wf_err ensure_ready(wf_source *src, char *errbuf, size_t errlen)
{
    if (src->ready) return WF_OK;
    wf_err rc = wf_source_connect_finish(src, errbuf, errlen);
    if (rc == WF_ERR_NOMEM) snprintf(errbuf, errlen, "out of memory while connecting to the database");
    return rc;
}

wf_err wf_source_connect(const wf_config *cfg, wf_source **out, char **password_out,
                         char *errbuf, size_t errlen)
{
    wf_err rc = wf_source_connect_start(cfg, out, password_out, errbuf, errlen);
    if (rc == WF_OK && (rc = wf_source_connect_finish(*out, errbuf, errlen)) != WF_OK) {
        wf_source_close(*out);
        *out = NULL;
    }
    return rc;
}

void wf_source_close(wf_source *src)
{
    if (!src) return;
    PQfinish(src->conn);
    free(src->table_sql);
    free(src->table_name);
    free(src->id_sql);
    free(src->time_sql);
    free(src->time_name);
    free(src->select_prefix);
    free(src);
}

/* Sends sql in single-row mode; its rows are read by read_rows(). */
static wf_err send_query(wf_source *src, const char *sql, int nparams, const char *const *params,
                         char *errbuf, size_t errlen)
{
    if (!PQsendQueryParams(src->conn, sql, nparams, NULL, params, NULL, NULL, 0) ||
        !PQsetSingleRowMode(src->conn)) {
        db_error(src->conn, "sending the query", errbuf, errlen);
        return WF_ERR_DB;
    }
    return WF_OK;
}

/* Feeds each row of the query in flight to fn as it arrives. After fn asks
 * to stop, the remaining rows (bounded by the query's LIMIT) are read and
 * dropped, which keeps the connection usable without a cancel round trip. */
static wf_err read_rows(wf_source *src, wf_row_fn fn, void *ctx, char *errbuf, size_t errlen)
{
    wf_err rc = WF_OK;
    int stopped = 0;
    const char **names = NULL, **values = NULL;
    int time_col = -1;
    PGresult *res;
    while ((res = PQgetResult(src->conn)) != NULL) {
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_SINGLE_TUPLE && !stopped && rc == WF_OK) {
            int nf = PQnfields(res);
            size_t ncols = nf > META_COLS ? (size_t)(nf - META_COLS) : 0;
            if (!names) {
                names = calloc(ncols + 1, sizeof *names);
                values = calloc(ncols + 1, sizeof *values);
                if (!names || !values) { rc = WF_ERR_NOMEM; PQclear(res); continue; }
            }
            for (size_t i = 0; i < ncols; i++) {
                names[i] = PQfname(res, (int)i + META_COLS);
                values[i] = PQgetisnull(res, 0, (int)i + META_COLS) ? NULL : PQgetvalue(res, 0, (int)i + META_COLS);
                if (time_col < 0 && strcmp(names[i], src->time_name) == 0) time_col = (int)i;
            }
            wf_submission sub = {
                .ncols = ncols, .names = names, .values = values,
                .id = PQgetvalue(res, 0, 0), .time_text = time_col >= 0 ? values[time_col] : NULL,
            };
            if (!sub.time_text || !wf_parse_time_us(sub.time_text, &sub.time_us)) {
                /* The query's WHERE already compared the column with a
                 * timestamp: only infinity gets here (a NULL never does). */
                snprintf(errbuf, errlen, "%s row %s: %s is '%s', which has no place in time order (set it to the time "
                         "the form was submitted)", src->table_name, sub.id, src->time_name,
                         sub.time_text ? sub.time_text : "NULL");
                rc = WF_ERR_DB;
            } else if (fn(&sub, ctx) == WF_ROW_STOP) {
                stopped = 1;
            }
        } else if (status != PGRES_SINGLE_TUPLE && status != PGRES_TUPLES_OK && rc == WF_OK) {
            const char *msg = PQresultErrorMessage(res);
            size_t len = strlen(msg);
            while (len && msg[len - 1] == '\n') len--;
            snprintf(errbuf, errlen, "database: reading %s failed: %.*s (check that PostgreSQL is up and WEBFORM_DB_URL "
                     "is right, and that WEBFORM_TABLE, WEBFORM_ID_COLUMN and WEBFORM_TIME_COLUMN name it)", src->table_name, (int)len, msg);
            rc = WF_ERR_DB;
        }
        PQclear(res);
    }
    if (rc == WF_OK && PQstatus(src->conn) != CONNECTION_OK) {
        db_error(src->conn, "reading rows", errbuf, errlen);
        rc = WF_ERR_DB;
    }
    free(names);
    free(values);
    return rc;
}

static wf_err stream(wf_source *src, const char *sql, int nparams, const char *const *params,
                     wf_row_fn fn, void *ctx, char *errbuf, size_t errlen)
{
    wf_err rc = send_query(src, sql, nparams, params, errbuf, errlen);
    return rc == WF_OK ? read_rows(src, fn, ctx, errbuf, errlen) : rc;
}

wf_err wf_source_send_window(wf_source *src, int64_t from_us, int64_t to_us, long limit,
                             char *errbuf, size_t errlen)
{
    wf_err ready = ensure_ready(src, errbuf, errlen);
    if (ready != WF_OK) return ready;
    char from[48], to[48], lim[24];
    if (from_us == INT64_MIN) snprintf(from, sizeof from, "-infinity");
    else wf_format_time_us(from_us, from, sizeof from);
    if (to_us != WF_NO_UPPER_BOUND) wf_format_time_us(to_us, to, sizeof to);
    snprintf(lim, sizeof lim, "%ld", limit);
    size_t cap = strlen(src->select_prefix) + 4 * strlen(src->time_sql) + strlen(src->id_sql) + 200;
    char *sql = malloc(cap);
    if (!sql) return WF_ERR_NOMEM;
    /* A plain range on the time column, ordered like the (time, id) index:
     * PostgreSQL answers it with an index range scan, never a table scan. */
    snprintf(sql, cap, "%sWHERE t.%s >= $1::timestamptz%s%s%s ORDER BY t.%s, t.%s LIMIT $2::int8",
             src->select_prefix, src->time_sql,
             to_us != WF_NO_UPPER_BOUND ? " AND t." : "", to_us != WF_NO_UPPER_BOUND ? src->time_sql : "",
             to_us != WF_NO_UPPER_BOUND ? " <= $3::timestamptz" : "",
             src->time_sql, src->id_sql);
    const char *params[] = {from, lim, to};
    wf_err rc = send_query(src, sql, to_us != WF_NO_UPPER_BOUND ? 3 : 2, params, errbuf, errlen);
    free(sql);
    return rc;
}

wf_err wf_source_read_window(wf_source *src, wf_row_fn fn, void *ctx, char *errbuf, size_t errlen)
{
    return read_rows(src, fn, ctx, errbuf, errlen);
}

wf_err wf_source_stream_window(wf_source *src, int64_t from_us, int64_t to_us, long limit,
                               wf_row_fn fn, void *ctx, char *errbuf, size_t errlen)
{
    wf_err rc = wf_source_send_window(src, from_us, to_us, limit, errbuf, errlen);
    return rc == WF_OK ? read_rows(src, fn, ctx, errbuf, errlen) : rc;
}

wf_err wf_source_stream_times(wf_source *src, const int64_t *times, size_t n,
                              wf_row_fn fn, void *ctx, char *errbuf, size_t errlen)
{
    if (n == 0) return WF_OK;
    wf_err ready = ensure_ready(src, errbuf, errlen);
    if (ready != WF_OK) return ready;
    /* A PostgreSQL array literal of timestamps: {"2026-...Z","..."}. */
    size_t cap = n * 32 + 3;
    char *array = malloc(cap);
    if (!array) return WF_ERR_NOMEM;
    size_t pos = 0;
    array[pos++] = '{';
    for (size_t i = 0; i < n; i++) {
        char ts[48];
        wf_format_time_us(times[i], ts, sizeof ts);
        pos += (size_t)snprintf(array + pos, cap - pos, "%s%s", i ? "," : "", ts);
    }
    snprintf(array + pos, cap - pos, "}");
    size_t scap = strlen(src->select_prefix) + 3 * strlen(src->time_sql) + strlen(src->id_sql) + 120;
    char *sql = malloc(scap);
    wf_err rc = WF_ERR_NOMEM;
    if (sql) {
        snprintf(sql, scap, "%sWHERE t.%s = ANY ($1::timestamptz[]) ORDER BY t.%s, t.%s",
                 src->select_prefix, src->time_sql, src->time_sql, src->id_sql);
        const char *params[] = {array};
        rc = stream(src, sql, 1, params, fn, ctx, errbuf, errlen);
    }
    free(sql);
    free(array);
    return rc;
}

wf_err wf_source_columns(wf_source *src, char ***names, char ***types, size_t *n,
                         char *errbuf, size_t errlen)
{
    *names = *types = NULL;
    *n = 0;
    wf_err ready = ensure_ready(src, errbuf, errlen);
    if (ready != WF_OK) return ready;
    const char *params[] = {src->table_sql};
    PGresult *res = PQexecParams(src->conn,
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error(src->conn, "listing columns", errbuf, errlen);
        PQclear(res);
        return WF_ERR_DB;
    }
    int rows = PQntuples(res);
    if (rows == 0) {
        snprintf(errbuf, errlen, "WEBFORM_TABLE=%s: no such table or view in this database (check the name and search_path)",
                 src->table_name);
        PQclear(res);
        return WF_ERR_DB;
    }
    *names = calloc((size_t)rows, sizeof **names);
    *types = calloc((size_t)rows, sizeof **types);
    if (!*names || !*types) {
        free(*names);
        free(*types);
        *names = *types = NULL;
        PQclear(res);
        return WF_ERR_NOMEM;
    }
    for (int i = 0; i < rows; i++) {
        (*names)[i] = strdup(PQgetvalue(res, i, 0));
        (*types)[i] = strdup(PQgetvalue(res, i, 1));
    }
    *n = (size_t)rows;
    PQclear(res);
    return WF_OK;
}

void wf_source_free_columns(char **names, char **types, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (names) free(names[i]);
        if (types) free(types[i]);
    }
    free(names);
    free(types);
}

wf_err wf_source_explain_cursor(wf_source *src, int *uses_index, char **plan,
                                char *errbuf, size_t errlen)
{
    *uses_index = 0;
    *plan = NULL;
    wf_err ready = ensure_ready(src, errbuf, errlen);
    if (ready != WF_OK) return ready;
    size_t cap = strlen(src->select_prefix) + 3 * strlen(src->time_sql) + strlen(src->id_sql) + 160;
    char *sql = malloc(cap);
    if (!sql) return WF_ERR_NOMEM;
    snprintf(sql, cap, "EXPLAIN %sWHERE t.%s >= now() - interval '15 minutes' ORDER BY t.%s, t.%s LIMIT 30",
             src->select_prefix, src->time_sql, src->time_sql, src->id_sql);
    /* A small table makes the planner prefer a sequential scan whatever the
     * indexes; this asks whether an index can serve the query at all. */
    PGresult *set = PQexec(src->conn, "SET enable_seqscan = off");
    PQclear(set);
    PGresult *res = PQexec(src->conn, sql);
    free(sql);
    wf_err rc = WF_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error(src->conn, "explaining the cursor query", errbuf, errlen);
        rc = WF_ERR_DB;
    } else {
        for (int i = 0; i < PQntuples(res); i++) {
            const char *line = PQgetvalue(res, i, 0);
            if (strstr(line, "Index Scan") || strstr(line, "Index Only Scan")) *uses_index = 1;
            if (strstr(line, "Seq Scan")) *uses_index = 0;
        }
        for (int i = 0; i < PQntuples(res); i++) {
            const char *line = PQgetvalue(res, i, 0);
            if (strstr(line, "Scan")) { *plan = strdup(line); break; }
        }
    }
    PQclear(res);
    PGresult *reset = PQexec(src->conn, "RESET enable_seqscan");
    PQclear(reset);
    return rc;
}

wf_err wf_source_count_since(wf_source *src, int64_t from_us, long *count, char *errbuf, size_t errlen)
{
    wf_err ready = ensure_ready(src, errbuf, errlen);
    if (ready != WF_OK) return ready;
    char from[48];
    if (from_us == INT64_MIN) snprintf(from, sizeof from, "-infinity");
    else wf_format_time_us(from_us, from, sizeof from);
    size_t cap = strlen(src->table_sql) + strlen(src->time_sql) + 80;
    char *sql = malloc(cap);
    if (!sql) return WF_ERR_NOMEM;
    snprintf(sql, cap, "SELECT count(*) FROM %s t WHERE t.%s >= $1::timestamptz", src->table_sql, src->time_sql);
    const char *params[] = {from};
    PGresult *res = PQexecParams(src->conn, sql, 1, NULL, params, NULL, NULL, 0);
    free(sql);
    wf_err rc = WF_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_error(src->conn, "counting rows", errbuf, errlen);
        rc = WF_ERR_DB;
    } else {
        *count = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    return rc;
}
