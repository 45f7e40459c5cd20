/* tracker_pg.c: the tracker in PostgreSQL (SYNC_TRACKER_DB=postgresql://...),
 * so that several hosts share one memory and one lock.
 *
 * Its own schema, wf2jsm, versioned by the table wf2jsm.schema_version and
 * migrated from setup/migrations/pg on open, under a transaction-level
 * advisory lock so that two hosts starting at once never migrate twice.
 * Every statement is sent with PQexecParams and typed parameters: values
 * are never written into SQL text. Each statement outside an explicit
 * transaction commits on its own with synchronous_commit as the server has
 * it (on by default: durable when it returns), which is what "intent before
 * effect" needs. This is the run's second libpq connection (the first reads
 * the webform database); it is never re-made behind the caller's back,
 * because the advisory lock that serialises runs lives in its session. */
#define _POSIX_C_SOURCE 200809L
#include "tracker_backend.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern const char *const wf_pg_migrations[];
extern const size_t wf_pg_migrations_count;

/* The session-level advisory lock of `sync` and the other writing
 * commands, and the transaction-level one that serialises migrations.
 * Both fit in 31 bits, so pg_locks shows them as objid with classid 0. */
#define RUN_LOCK_KEY 2003186282      /* 0x7766326a, "wf2j" */
#define MIGRATE_LOCK_KEY 2003186283

#define STR_(x) #x
#define STR(x) STR_(x)

#define TEXTOID 25
#define INT8OID 20

#define NOW_TEXT "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define OPEN_STATES "('pending', 'creating', 'created', 'attaching', 'failed')"
#define S "wf2jsm."

static const char *const pg_sql[WF_SQL_COUNT_] = {
    [WF_SQL_BEGIN] = "BEGIN",
    [WF_SQL_COMMIT] = "COMMIT",
    [WF_SQL_ROLLBACK] = "ROLLBACK",
    [WF_SQL_RELAXED_DURABILITY] = NULL,
    [WF_SQL_FULL_DURABILITY] = NULL,
    [WF_SQL_GET] = "SELECT " WF_ROW_COLUMNS " FROM " S "submissions WHERE key = $1",
    [WF_SQL_INTENT] =
        "INSERT INTO " S "submissions (key, source_id, source_time, source_time_us, state, may_exist, last_run, "
        "  first_seen_at, updated_at, updated_at_us) "
        "VALUES ($1, $2, $3, $4, 'creating', 1, $5, " NOW_TEXT ", " NOW_TEXT ", $6) "
        "ON CONFLICT (key) DO UPDATE SET state = 'creating', may_exist = 1, last_run = $5, "
        "  updated_at = " NOW_TEXT ", updated_at_us = $6",
    [WF_SQL_NOT_SENT] =
        "UPDATE " S "submissions SET state = 'pending', may_exist = $2, updated_at = " NOW_TEXT ", updated_at_us = $3 "
        "WHERE key = $1",
    [WF_SQL_CREATED] =
        "UPDATE " S "submissions SET state = $4, jsm_key = $2, jsm_issue_id = $3, created_run = $5, last_run = $5, "
        "  adopted = $6, may_exist = 1, updated_at = " NOW_TEXT ", updated_at_us = $7 WHERE key = $1",
    [WF_SQL_ATTACHING] =
        "UPDATE " S "submissions SET state = 'attaching', updated_at = " NOW_TEXT ", updated_at_us = $2 WHERE key = $1",
    [WF_SQL_DELIVERED] =
        "UPDATE " S "submissions SET state = 'delivered', content_checksum = $2, error_class = NULL, last_error = NULL, "
        "  delivered_at = " NOW_TEXT ", updated_at = " NOW_TEXT ", updated_at_us = $3 WHERE key = $1",
    [WF_SQL_FAILURE] =
        "UPDATE " S "submissions SET state = $2, attempts = attempts + 1, error_class = $3, last_error = $4, "
        "  may_exist = CASE WHEN jsm_key IS NULL THEN $5 ELSE may_exist END, "
        "  updated_at = " NOW_TEXT ", updated_at_us = $6 WHERE key = $1",
    [WF_SQL_ADD_FIX] =
        "INSERT INTO " S "manual_fixes (key, jsm_key, field_id, value, message, created_at) "
        "VALUES ($1, $2, $3, $4, $5, " NOW_TEXT ")",
    [WF_SQL_CURSOR] = "SELECT max(source_time_us) FROM " S "submissions",
    [WF_SQL_COUNT_BETWEEN] =
        "SELECT count(*) FROM " S "submissions WHERE source_time_us >= $1 AND ($2 < 0 OR source_time_us <= $2)",
    [WF_SQL_RETRY_TIMES] =
        "SELECT DISTINCT source_time_us FROM " S "submissions "
        "WHERE state IN ('pending', 'creating', 'created', 'attaching', 'failed') "
        "  AND source_time_us < $1 AND (last_run IS NULL OR last_run <> $2) ORDER BY 1",
    [WF_SQL_RUN_BEGIN] = "INSERT INTO " S "runs (command, started_at) VALUES ($1, " NOW_TEXT ") RETURNING id",
    [WF_SQL_RUN_FINISH] =
        "UPDATE " S "runs SET finished_at = " NOW_TEXT ", exit_code = $2, seen = $3, created = $4, adopted = $5, "
        "  delivered = $6, failed = $7, parked = $8, attachments_uploaded = $9, attachments_failed = $10, "
        "  retries = $11, http_429 = $12, manual_fixes = $13, duration_ms = $14, error = $15, http_requests = $16, "
        "  peak_in_flight = $17, garbled = $18, lookups = $19, lookup_calls = $20 WHERE id = $1",
    [WF_SQL_META_GET] = "SELECT value FROM " S "meta WHERE name = $1",
    [WF_SQL_META_SET] =
        "INSERT INTO " S "meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",

    /* key is COLLATE "C": a lower-case hex prefix p is the range [p, p || 'g'). */
    [WF_SQL_SELECT_BY_STATE] =
        "SELECT " WF_ROW_COLUMNS " FROM " S "submissions WHERE state = $1 ORDER BY source_time_us, key",
    [WF_SQL_SELECT_BY_CREATED_RUN] =
        "SELECT " WF_ROW_COLUMNS " FROM " S "submissions WHERE created_run = $1 ORDER BY source_time_us, key",
    [WF_SQL_SELECT_DELIVERED_BETWEEN] =
        "SELECT " WF_ROW_COLUMNS " FROM " S "submissions WHERE state = 'delivered' AND delivered_at >= $1 "
        "AND ($2 IS NULL OR delivered_at <= $2) ORDER BY source_time_us, key",
    [WF_SQL_SELECT_FAILED_WITH_TICKET] =
        "SELECT " WF_ROW_COLUMNS " FROM " S "submissions WHERE state IN ('failed', 'parked') AND jsm_key IS NOT NULL "
        "ORDER BY source_time_us, key",
    [WF_SQL_SELECT_WITH_TICKET] =
        "SELECT " WF_ROW_COLUMNS " FROM " S "submissions WHERE jsm_key IS NOT NULL ORDER BY source_time_us, key",
    [WF_SQL_SELECT_KEY_PREFIX] =
        "SELECT " WF_ROW_COLUMNS " FROM " S "submissions WHERE key >= $1 AND key < $1 || 'g' "
        "ORDER BY source_time_us, key",
    [WF_SQL_SELECT_SOURCE_ID] =
        "SELECT " WF_ROW_COLUMNS " FROM " S "submissions WHERE source_id = $1 ORDER BY source_time_us, key",
    [WF_SQL_REQUEUE] =
        "UPDATE " S "submissions SET state = CASE WHEN jsm_key IS NULL THEN 'pending' ELSE 'attaching' END, "
        "  attempts = 0, error_class = NULL, last_error = NULL, "
        "  updated_at = CASE WHEN may_exist = 1 AND jsm_key IS NULL THEN updated_at ELSE " NOW_TEXT " END, "
        "  updated_at_us = CASE WHEN may_exist = 1 AND jsm_key IS NULL THEN updated_at_us ELSE $2 END "
        "WHERE key = $1 AND state <> 'delivered'",
    [WF_SQL_RESOLVE_FIXES] =
        "UPDATE " S "manual_fixes SET resolved_at = " NOW_TEXT " WHERE key = $1 AND resolved_at IS NULL",
    [WF_SQL_FORGET] =
        "UPDATE " S "submissions SET state = 'pending', may_exist = $2, jsm_key = NULL, jsm_issue_id = NULL, "
        "  attempts = 0, error_class = NULL, last_error = NULL, content_checksum = NULL, created_run = NULL, "
        "  adopted = 0, delivered_at = NULL, updated_at = " NOW_TEXT ", updated_at_us = $3 WHERE key = $1",
    [WF_SQL_ADOPT] =
        "UPDATE " S "submissions SET state = 'attaching', jsm_key = $2, jsm_issue_id = $3, may_exist = 1, adopted = 1, "
        "  attempts = 0, error_class = NULL, last_error = NULL, created_run = $4, "
        "  updated_at = " NOW_TEXT ", updated_at_us = $5 WHERE key = $1",
    [WF_SQL_INSERT] =
        "INSERT INTO " S "submissions (key, source_id, source_time, source_time_us, state, may_exist, jsm_key, "
        "  jsm_issue_id, adopted, created_run, first_seen_at, updated_at, updated_at_us) "
        "VALUES ($1, $2, $3, $4, CASE WHEN $5 IS NULL THEN 'pending' ELSE 'attaching' END, "
        "  CASE WHEN $5 IS NULL THEN 0 ELSE 1 END, $5, $6, CASE WHEN $5 IS NULL THEN 0 ELSE 1 END, "
        "  CASE WHEN $5 IS NULL THEN NULL ELSE $7 END, " NOW_TEXT ", " NOW_TEXT ", $8) "
        "ON CONFLICT (key) DO NOTHING",
    [WF_SQL_REATTACH] =
        "UPDATE " S "submissions SET state = 'attaching', attempts = 0, updated_at = " NOW_TEXT ", updated_at_us = $2 "
        "WHERE key = $1 AND jsm_key IS NOT NULL",
    [WF_SQL_SET_CHECKSUM] =
        "UPDATE " S "submissions SET content_checksum = $2, updated_at = " NOW_TEXT ", updated_at_us = $3 WHERE key = $1",
    [WF_SQL_FIX_IS_OPEN] =
        "SELECT 1 FROM " S "manual_fixes WHERE key = $1 AND field_id = $2 AND value IS NOT DISTINCT FROM $3 "
        "AND resolved_at IS NULL",
    [WF_SQL_RUN_EXISTS] = "SELECT 1 FROM " S "runs WHERE id = $1",

    [WF_SQL_STATE_COUNTS] = "SELECT state, count(*) FROM " S "submissions GROUP BY state",
    [WF_SQL_NEWEST] =
        "SELECT source_time, source_time_us FROM " S "submissions ORDER BY source_time_us DESC LIMIT 1",
    [WF_SQL_RECENT_RUNS] =
        "SELECT id, command, started_at, finished_at, exit_code, seen, created, adopted, delivered, failed, parked, "
        "attachments_uploaded, attachments_failed, retries, http_429, manual_fixes, duration_ms, error, "
        "http_requests, peak_in_flight, garbled, lookups, lookup_calls "
        "FROM " S "runs ORDER BY id DESC LIMIT $1",
    [WF_SQL_PROBLEMS] =
        "SELECT " WF_ROW_COLUMNS " FROM " S "submissions WHERE state IN ('failed', 'parked') "
        "ORDER BY state DESC, updated_at_us LIMIT $1",
    [WF_SQL_OPEN_FIXES] =
        "SELECT id, key, jsm_key, field_id, value, message, created_at FROM " S "manual_fixes "
        "WHERE resolved_at IS NULL ORDER BY id LIMIT $1",
    [WF_SQL_DELIVERED_WITH_CHECKSUM] =
        "SELECT count(*) FROM " S "submissions WHERE state = 'delivered' AND content_checksum IS NOT NULL",
    [WF_SQL_NEWEST_DELIVERED] =
        "SELECT key, source_time_us FROM " S "submissions WHERE state = 'delivered' "
        "AND content_checksum IS NOT NULL ORDER BY source_time_us DESC LIMIT $1",
    [WF_SQL_FIX_FIELDS] = "SELECT field_id FROM " S "manual_fixes WHERE key = $1",
    [WF_SQL_RUN_TOTALS] =
        "SELECT coalesce(sum(failed), 0), coalesce(sum(parked), 0), coalesce(sum(http_429), 0), "
        "coalesce(sum(http_requests), 0), coalesce(sum(garbled), 0) FROM " S "runs",
    [WF_SQL_LAST_SUCCESS] =
        "SELECT coalesce(extract(epoch FROM finished_at::timestamptz)::bigint, 0) FROM " S "runs "
        "WHERE exit_code = 0 AND finished_at IS NOT NULL AND command IN ('sync', 'replay') "
        "ORDER BY id DESC LIMIT 1",
    [WF_SQL_OPEN_COUNT] = "SELECT count(*) FROM " S "submissions WHERE state IN " OPEN_STATES,
    [WF_SQL_WINDOW_ROWS] =
        "SELECT " WF_ROW_COLUMNS " FROM " S "submissions WHERE source_time_us >= $1 AND ($2 < 0 OR source_time_us <= $2)",
    [WF_SQL_CUSTOMER_GET] = "SELECT account_id FROM " S "customers WHERE desk_id = $1 AND email = $2",
    [WF_SQL_CUSTOMER_PUT] =
        "INSERT INTO " S "customers (desk_id, email, account_id, created_at) VALUES ($1, $2, $3, " NOW_TEXT ") "
        "ON CONFLICT (desk_id, email) DO UPDATE SET account_id = $3, created_at = " NOW_TEXT,
    [WF_SQL_CUSTOMER_FORGET] = "DELETE FROM " S "customers WHERE desk_id = $1 AND email = $2",
};

typedef struct { PGconn *conn; } pg_impl;

static PGconn *conn_of(wf_tracker *t) { return ((pg_impl *)t->impl)->conn; }

/* libpq's messages end in a newline and may span lines: one line here. */
static void one_line(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ') s[--n] = '\0';
}

/* Turns libpq's failure into an operator's sentence naming the tracker
 * (its URL without password) and the fix. res may be NULL. */
static wf_err fail(wf_tracker *t, const PGresult *res, const char *doing)
{
    char msg[384];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *hint = "";
    snprintf(msg, sizeof msg, "%s", res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
                                                                       : PQerrorMessage(conn_of(t)));
    one_line(msg);
    if (PQstatus(conn_of(t)) == CONNECTION_BAD)
        hint = " (the connection to the tracker database was lost: check that the server runs, then rerun; "
               "the next run resumes where this one stopped)";
    else if (state && strcmp(state, "42501") == 0)
        hint = " (the role needs CREATE on the database to make schema wf2jsm, or a DBA runs CREATE SCHEMA wf2jsm "
               "AUTHORIZATION <role>; then the role owns its tables)";
    else if (state && strcmp(state, "55P03") == 0)
        hint = " (another session holds the tracker's tables locked; end it, or wait and rerun)";
    else if (state && strcmp(state, "25006") == 0)
        hint = " (the server is read-only, a standby: point SYNC_TRACKER_DB at the primary)";
    snprintf(t->errmsg, sizeof t->errmsg, "tracker %s: %s failed: %s%s", t->name, doing, msg, hint);
    return WF_ERR_TRACKER;
}

/* Runs sql, fixed text without parameters (transactions, migrations, the
 * probe), possibly several statements; fails naming doing. */
static wf_err exec_plain(wf_tracker *t, const char *sql, const char *doing)
{
    PGresult *res = PQexec(conn_of(t), sql);
    ExecStatusType st = PQresultStatus(res);
    wf_err err = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? WF_OK : fail(t, res, doing);
    PQclear(res);
    return err;
}

/* The schema version, 0 when the schema or its version table is missing. */
static wf_err read_version(wf_tracker *t, long *version)
{
    PGresult *res = PQexec(conn_of(t), "SELECT coalesce(max(version), 0) FROM " S "schema_version");
    wf_err err = WF_OK;
    *version = 0;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        *version = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    } else {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        /* undefined_table, invalid_schema_name: a database never used as a tracker */
        if (!state || (strcmp(state, "42P01") != 0 && strcmp(state, "3F000") != 0))
            err = fail(t, res, "reading the schema version");
    }
    PQclear(res);
    return err;
}

static wf_err migrate(wf_tracker *t)
{
    long version = 0;
    wf_err err = read_version(t, &version);
    if (err != WF_OK) return err;
    if ((size_t)version == wf_pg_migrations_count) return WF_OK;   /* every tick but the first */
    /* One transaction for all of it, behind a lock another host starting
     * at the same moment waits on; the version is read again inside. */
    err = exec_plain(t, "BEGIN; SELECT pg_advisory_xact_lock(" STR(MIGRATE_LOCK_KEY) ")", "locking the migrations");
    /* CREATE SCHEMA IF NOT EXISTS would still need CREATE on the database:
     * a schema a DBA made for this role is used as it is. */
    if (err == WF_OK) {
        PGresult *res = PQexec(conn_of(t), "SELECT 1 FROM pg_namespace WHERE nspname = 'wf2jsm'");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) err = fail(t, res, "looking for the schema wf2jsm");
        else if (PQntuples(res) == 0) err = exec_plain(t, "CREATE SCHEMA wf2jsm", "creating the schema wf2jsm");
        PQclear(res);
    }
    if (err == WF_OK)
        err = exec_plain(t, "CREATE TABLE IF NOT EXISTS " S "schema_version (version integer PRIMARY KEY, "
                            "  applied_at timestamptz NOT NULL DEFAULT now())", "creating the schema version table");
    if (err == WF_OK) err = read_version(t, &version);
    if (err == WF_OK && (size_t)version > wf_pg_migrations_count) {
        snprintf(t->errmsg, sizeof t->errmsg,
                 "tracker %s has schema version %ld, newer than this wf2jsm knows (%zu): upgrade wf2jsm",
                 t->name, version, wf_pg_migrations_count);
        err = WF_ERR_TRACKER;
    }
    for (size_t v = (size_t)version; err == WF_OK && v < wf_pg_migrations_count; v++) {
        char bump[96];
        snprintf(bump, sizeof bump, "INSERT INTO " S "schema_version (version) VALUES (%zu)", v + 1);
        if ((err = exec_plain(t, wf_pg_migrations[v], "migrating the schema")) == WF_OK)
            err = exec_plain(t, bump, "setting the schema version");
    }
    if (err == WF_OK) return exec_plain(t, "COMMIT", "committing the migrations");
    PQclear(PQexec(conn_of(t), "ROLLBACK"));
    return err;
}

/* postgresql://user@host:port/dbname, never the password: what messages
 * and the log call this tracker. */
static char *display_name(const char *target)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(target, &err);
    const char *user = "", *host = "", *port = "", *dbname = "";
    char buf[1024];
    if (!opts) {
        PQfreemem(err);
        return strdup("postgresql://(unparsable URL)");
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val) continue;
        if (strcmp(o->keyword, "user") == 0) user = o->val;
        else if (strcmp(o->keyword, "host") == 0) host = o->val;
        else if (strcmp(o->keyword, "port") == 0) port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0) dbname = o->val;
    }
    snprintf(buf, sizeof buf, "postgresql://%s%s%s%s%s/%s", user, *user ? "@" : "", host, *port ? ":" : "", port,
             dbname);
    PQconninfoFree(opts);
    return strdup(buf);
}

char *wf_tracker_target_password(const char *target)
{
    if (!wf_tracker_target_is_pg(target)) return NULL;
    char *err = NULL, *password = NULL;
    PQconninfoOption *opts = PQconninfoParse(target, &err);
    PQfreemem(err);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val) password = strdup(o->val);
    PQconninfoFree(opts);
    return password;
}

/* The server's NOTICEs ("schema wf2jsm already exists, skipping" when
 * another host migrated first) are not the operator's business; libpq
 * would print them on stderr. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static wf_err pg_open(wf_tracker *t, const char *target)
{
    pg_impl *p = calloc(1, sizeof *p);
    if (!p || !(t->name = display_name(target))) {
        free(p);
        return WF_ERR_NOMEM;
    }
    t->impl = p;
    /* libpq's parse errors quote the text they stumbled on, which may be
     * the password: say what is wrong without them. */
    char *parse_err = NULL;
    PQconninfoOption *opts = PQconninfoParse(target, &parse_err);
    PQfreemem(parse_err);
    if (!opts) {
        snprintf(t->errmsg, sizeof t->errmsg, "SYNC_TRACKER_DB is not a valid PostgreSQL URL: libpq cannot parse it "
                 "(the form is postgresql://user:password@host:port/dbname?param=value, with special characters "
                 "percent-encoded)");
        return WF_ERR_CONFIG;
    }
    PQconninfoFree(opts);
    /* The URL comes last so that what it says wins over these defaults.
     * synchronous_commit=on: a statement has reached disk when it returns,
     * whatever the server's default (intent before effect needs it).
     * lock_timeout: someone holding a tracker table locked makes the run
     * stop with a message, as SQLite's busy timeout does, not hang. */
    const char *keys[] = {"connect_timeout", "fallback_application_name", "client_encoding", "options", "dbname", NULL};
    const char *vals[] = {"10", "wf2jsm-tracker", "UTF8", "-c synchronous_commit=on -c lock_timeout=5s", target, NULL};
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (!p->conn) return WF_ERR_NOMEM;
    PQsetNoticeProcessor(p->conn, ignore_notice, NULL);
    if (PQstatus(p->conn) != CONNECTION_OK) {
        char msg[384];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(p->conn));
        one_line(msg);
        snprintf(t->errmsg, sizeof t->errmsg, "tracker %s cannot be reached: %s (check SYNC_TRACKER_DB, and that "
                 "the server runs and accepts this user)", t->name, msg);
        return WF_ERR_TRACKER;
    }
    return migrate(t);
}

static void pg_close(wf_tracker *t)
{
    pg_impl *p = t->impl;
    if (!p) return;
    PQfinish(p->conn);   /* ends the session: its advisory lock goes with it */
    free(p);
    t->impl = NULL;
}

struct wf_sql_cols {
    const PGresult *res;
    int row;
};

static wf_err pg_run(wf_tracker *t, wf_sql id, const char *doing, const wf_sql_arg *args, int nargs,
                     wf_sql_row_fn on_row, void *ctx, long *changes)
{
    Oid types[WF_SQL_MAX_ARGS];
    const char *values[WF_SQL_MAX_ARGS];
    char nums[WF_SQL_MAX_ARGS][24];
    for (int i = 0; i < nargs && i < WF_SQL_MAX_ARGS; i++) {
        if (args[i].type == 't') {
            types[i] = TEXTOID;
            values[i] = args[i].text;
        } else {
            types[i] = INT8OID;
            snprintf(nums[i], sizeof nums[i], "%" PRId64, args[i].num);
            values[i] = nums[i];
        }
    }
    PGresult *res = PQexecParams(conn_of(t), pg_sql[id], nargs, types, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    wf_err err = WF_OK;
    if (st == PGRES_TUPLES_OK) {
        struct wf_sql_cols cols = {res, 0};
        int rows = PQntuples(res);
        for (cols.row = 0; on_row && cols.row < rows && err == WF_OK; cols.row++) err = on_row(&cols, ctx);
        if (err == WF_ERR_NOMEM) snprintf(t->errmsg, sizeof t->errmsg, "out of memory %s", doing);
    } else if (st != PGRES_COMMAND_OK) {
        err = fail(t, res, doing);
    }
    if (err == WF_OK && changes) *changes = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return err;
}

static const char *pg_col_text(const wf_sql_cols *c, int i)
{
    return PQgetisnull(c->res, c->row, i) ? NULL : PQgetvalue(c->res, c->row, i);
}

static int64_t pg_col_int(const wf_sql_cols *c, int i)
{
    return PQgetisnull(c->res, c->row, i) ? 0 : strtoll(PQgetvalue(c->res, c->row, i), NULL, 10);
}

static bool pg_col_null(const wf_sql_cols *c, int i) { return PQgetisnull(c->res, c->row, i) != 0; }

/* ---- backup: a SQL file psql restores ------------------------------------
 *
 * One REPEATABLE READ snapshot of every table in schema wf2jsm, written as
 * COPY blocks (the server does the quoting) inside one transaction that
 * first checks the schema version and empties the tables, and afterwards
 * moves the id sequences past the restored ids:
 *     psql "$SYNC_TRACKER_DB" -v ON_ERROR_STOP=1 -f tracker/backups/tracker-<time>.sql
 * Identifiers and literals in it come from the catalog, quoted by libpq. */

static wf_err copy_table(wf_tracker *t, FILE *fp, const char *qualified, char *errbuf, size_t errlen)
{
    char sql[512];
    snprintf(sql, sizeof sql, "COPY %s TO STDOUT", qualified);
    PGresult *res = PQexec(conn_of(t), sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        fail(t, res, "copying a table for the backup");
        snprintf(errbuf, errlen, "%s", t->errmsg);
        PQclear(res);
        return WF_ERR_TRACKER;
    }
    PQclear(res);
    fprintf(fp, "COPY %s FROM stdin;\n", qualified);
    char *line = NULL;
    int n;
    while ((n = PQgetCopyData(conn_of(t), &line, 0)) > 0) {
        fwrite(line, 1, (size_t)n, fp);
        PQfreemem(line);
    }
    fputs("\\.\n\n", fp);
    wf_err err = WF_OK;
    while ((res = PQgetResult(conn_of(t))) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && err == WF_OK) {
            err = fail(t, res, "copying a table for the backup");
            snprintf(errbuf, errlen, "%s", t->errmsg);
        }
        PQclear(res);
    }
    if (n == -2 && err == WF_OK) {
        fail(t, NULL, "copying a table for the backup");
        snprintf(errbuf, errlen, "%s", t->errmsg);
        err = WF_ERR_TRACKER;
    }
    return err;
}

static char *quoted(wf_tracker *t, const char *name, bool literal)
{
    char *q = literal ? PQescapeLiteral(conn_of(t), name, strlen(name))
                      : PQescapeIdentifier(conn_of(t), name, strlen(name));
    char *copy = q ? strdup(q) : NULL;
    PQfreemem(q);
    return copy;
}

static wf_err dump(wf_tracker *t, FILE *fp, char *errbuf, size_t errlen)
{
    wf_err err = WF_OK;
    PGresult *tables = NULL, *serials = NULL, *version = NULL;
    char **names = NULL;
    int ntables = 0;
    tables = PQexec(conn_of(t), "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                "WHERE n.nspname = 'wf2jsm' AND c.relkind = 'r' AND c.relname <> 'schema_version' "
                                "ORDER BY 1");
    serials = PQexec(conn_of(t), "SELECT table_name, column_name FROM information_schema.columns "
                                 "WHERE table_schema = 'wf2jsm' AND (is_identity = 'YES' OR column_default LIKE 'nextval(%') "
                                 "ORDER BY 1, 2");
    version = PQexec(conn_of(t), "SELECT max(version) FROM " S "schema_version");
    if (PQresultStatus(tables) != PGRES_TUPLES_OK || PQresultStatus(serials) != PGRES_TUPLES_OK ||
        PQresultStatus(version) != PGRES_TUPLES_OK) {
        PGresult *bad = PQresultStatus(tables) != PGRES_TUPLES_OK ? tables
                      : PQresultStatus(serials) != PGRES_TUPLES_OK ? serials : version;
        fail(t, bad, "listing the tables for the backup");
        snprintf(errbuf, errlen, "%s", t->errmsg);
        err = WF_ERR_TRACKER;
        goto out;
    }
    ntables = PQntuples(tables);
    names = calloc((size_t)ntables + 1, sizeof *names);
    if (!names) { err = WF_ERR_NOMEM; goto out; }
    for (int i = 0; i < ntables; i++) {
        char *ident = quoted(t, PQgetvalue(tables, i, 0), false);
        if (!ident || !(names[i] = malloc(strlen(ident) + 8))) { free(ident); err = WF_ERR_NOMEM; goto out; }
        sprintf(names[i], "wf2jsm.%s", ident);
        free(ident);
    }
    const char *v = PQgetvalue(version, 0, 0);
    time_t now = time(NULL);
    char stamp[32];
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(fp, "-- wf2jsm PostgreSQL tracker backup: schema wf2jsm, version %s, taken %s from %s.\n"
                "-- Restore (stop the cron job first; this replaces the tracker's contents):\n"
                "--   psql \"$SYNC_TRACKER_DB\" -v ON_ERROR_STOP=1 -f THIS_FILE\n"
                "SET client_encoding = 'UTF8';\n"
                "BEGIN;\n"
                "DO $wf2jsm$ BEGIN\n"
                "  IF (SELECT max(version) FROM wf2jsm.schema_version) IS DISTINCT FROM %s THEN\n"
                "    RAISE EXCEPTION 'this backup is of tracker schema version %s: run the wf2jsm that took it "
                "once against this tracker, or restore into a tracker of that version';\n"
                "  END IF;\n"
                "END $wf2jsm$;\n", v, stamp, t->name, v, v);
    if (ntables) {
        fputs("TRUNCATE ", fp);
        for (int i = 0; i < ntables; i++) fprintf(fp, "%s%s", i ? ", " : "", names[i]);
        fputs(";\n\n", fp);
    }
    for (int i = 0; i < ntables && err == WF_OK; i++) err = copy_table(t, fp, names[i], errbuf, errlen);
    for (int i = 0; i < PQntuples(serials) && err == WF_OK; i++) {
        char *table = quoted(t, PQgetvalue(serials, i, 0), false), *column = quoted(t, PQgetvalue(serials, i, 1), false);
        char *seq_arg = NULL, *col_lit = quoted(t, PQgetvalue(serials, i, 1), true);
        char buf[512];
        if (table) {
            snprintf(buf, sizeof buf, "wf2jsm.%s", table);
            seq_arg = quoted(t, buf, true);
        }
        if (table && column && seq_arg && col_lit)
            fprintf(fp, "SELECT setval(pg_get_serial_sequence(%s, %s), coalesce(max(%s), 0) + 1, false) FROM wf2jsm.%s;\n",
                    seq_arg, col_lit, column, table);
        else
            err = WF_ERR_NOMEM;
        free(table);
        free(column);
        free(seq_arg);
        free(col_lit);
    }
    if (err == WF_OK) fputs("COMMIT;\n", fp);
out:
    for (int i = 0; names && i < ntables; i++) free(names[i]);
    free(names);
    PQclear(tables);
    PQclear(serials);
    PQclear(version);
    if (err == WF_ERR_NOMEM) snprintf(errbuf, errlen, "out of memory writing the tracker backup");
    return err;
}

/* PostgreSQL backups go where the default SQLite tracker keeps its own:
 * tracker/backups under the working directory the job runs in. */
static wf_err pg_backup(wf_tracker *t, char *path, size_t pathlen, char *errbuf, size_t errlen)
{
    if (access("tracker", F_OK) != 0 && mkdir("tracker", 0700) != 0 && errno != EEXIST) {
        snprintf(errbuf, errlen, "cannot create the directory tracker/ for the backups: %s (run wf2jsm in a "
                 "writable working directory)", strerror(errno));
        return WF_ERR_FILE;
    }
    wf_err err = wf_tracker_backup_file("tracker/backups", ".sql", path, pathlen, errbuf, errlen);
    if (err != WF_OK) return err;
    FILE *fp = fopen(path, "w");
    if (!fp) {
        snprintf(errbuf, errlen, "cannot write the backup %s: %s", path, strerror(errno));
        unlink(path);
        return WF_ERR_FILE;
    }
    err = exec_plain(t, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting the backup snapshot");
    if (err != WF_OK) snprintf(errbuf, errlen, "%s", t->errmsg);
    else {
        err = dump(t, fp, errbuf, errlen);
        PQclear(PQexec(conn_of(t), err == WF_OK ? "COMMIT" : "ROLLBACK"));
    }
    if (err == WF_OK && (fflush(fp) != 0 || fsync(fileno(fp)) != 0 || ferror(fp))) {
        snprintf(errbuf, errlen, "backing up the tracker %s to %s failed: %s (check free space; nothing was changed)",
                 t->name, path, strerror(errno));
        err = WF_ERR_FILE;
    }
    if (fclose(fp) != 0 && err == WF_OK) {
        snprintf(errbuf, errlen, "backing up the tracker %s to %s failed: %s", t->name, path, strerror(errno));
        err = WF_ERR_FILE;
    }
    if (err != WF_OK) unlink(path);
    return err;
}

/* Who holds the run lock: an operator deciding whether a host is dead
 * wants the session, its address and since when it runs. Returns whether
 * the server shows a holder (holder is "" otherwise). */
static bool lock_holder(wf_tracker *t, char *holder, size_t holderlen)
{
    PGresult *res = PQexec(conn_of(t),
        "SELECT l.pid, coalesce(host(a.client_addr), 'a local socket'), "
        "  coalesce(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '?') "
        "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = " STR(RUN_LOCK_KEY) " "
        "  AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "  AND l.pid <> pg_backend_pid() LIMIT 1");
    bool found = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (holderlen) holder[0] = '\0';
    if (found)
        snprintf(holder, holderlen, "server process %s from %s, connected since %s", PQgetvalue(res, 0, 0),
                 PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
    PQclear(res);
    return found;
}

static wf_err pg_lock_holder(wf_tracker *t, bool *held, char *holder, size_t holderlen)
{
    *held = lock_holder(t, holder, holderlen);
    return WF_OK;
}

static wf_err pg_try_lock(wf_tracker *t, bool *got, char *holder, size_t holderlen)
{
    PGresult *res = PQexec(conn_of(t), "SELECT pg_try_advisory_lock(" STR(RUN_LOCK_KEY) ")");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        wf_err err = fail(t, res, "taking the run lock");
        PQclear(res);
        return err;
    }
    *got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (*got) return WF_OK;
    lock_holder(t, holder, holderlen);
    return WF_OK;
}

static wf_err pg_probe_writable(wf_tracker *t, char *errbuf, size_t errlen)
{
    /* A write that touches nothing still needs the privilege and a
     * writable server; the transaction is rolled back either way. */
    wf_err err = exec_plain(t, "BEGIN", "starting a transaction");
    if (err == WF_OK) err = exec_plain(t, "UPDATE " S "meta SET value = value WHERE false", "writing");
    PQclear(PQexec(conn_of(t), "ROLLBACK"));
    if (err != WF_OK) snprintf(errbuf, errlen, "%s", t->errmsg);
    return err;
}

static bool pg_in_transaction(wf_tracker *t)
{
    PGTransactionStatusType st = PQtransactionStatus(conn_of(t));
    return st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
}

const wf_tracker_backend wf_tracker_pg_backend = {
    .kind = "postgresql",
    .sql = pg_sql,
    .open = pg_open,
    .close = pg_close,
    .run = pg_run,
    .prepare = NULL,   /* parameterised statements are sent whole, parsed by the server */
    .col_text = pg_col_text,
    .col_int = pg_col_int,
    .col_null = pg_col_null,
    .backup = pg_backup,
    .try_lock = pg_try_lock,
    .lock_holder = pg_lock_holder,
    .probe_writable = pg_probe_writable,
    .in_transaction = pg_in_transaction,
};
