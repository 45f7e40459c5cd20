/* tracker_sqlite.c: the tracker in one SQLite file (the default backend).
 *
 * WAL mode with synchronous=FULL: each autocommitted statement is durable
 * when it returns, which is what "intent before effect" needs. A busy
 * timeout rides out a concurrent `status`; the schema is versioned with
 * PRAGMA user_version and migrated from setup/migrations on open. */
#define _POSIX_C_SOURCE 200809L
#include "tracker_backend.h"
#include "sqlite_loader.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const char *const wf_migrations[];
extern const size_t wf_migrations_count;

#define NOW_TEXT "strftime('%Y-%m-%dT%H:%M:%SZ','now')"
#define OPEN_STATES "('pending', 'creating', 'created', 'attaching', 'failed')"

static const char *const sqlite_sql[WF_SQL_COUNT_] = {
    [WF_SQL_BEGIN] = "BEGIN IMMEDIATE",
    [WF_SQL_COMMIT] = "COMMIT",
    [WF_SQL_ROLLBACK] = "ROLLBACK",
    [WF_SQL_RELAXED_DURABILITY] = "PRAGMA synchronous=NORMAL",
    [WF_SQL_FULL_DURABILITY] = "PRAGMA synchronous=FULL",
    [WF_SQL_GET] = "SELECT " WF_ROW_COLUMNS " FROM submissions WHERE key = ?1",
    [WF_SQL_INTENT] =
        "INSERT INTO submissions (key, source_id, source_time, source_time_us, state, may_exist, last_run, "
        "  first_seen_at, updated_at, updated_at_us) "
        "VALUES (?1, ?2, ?3, ?4, 'creating', 1, ?5, " NOW_TEXT ", " NOW_TEXT ", ?6) "
        "ON CONFLICT (key) DO UPDATE SET state = 'creating', may_exist = 1, last_run = ?5, "
        "  updated_at = " NOW_TEXT ", updated_at_us = ?6",
    [WF_SQL_NOT_SENT] =
        "UPDATE submissions SET state = 'pending', may_exist = ?2, updated_at = " NOW_TEXT ", updated_at_us = ?3 "
        "WHERE key = ?1",
    [WF_SQL_CREATED] =
        "UPDATE submissions SET state = ?4, jsm_key = ?2, jsm_issue_id = ?3, created_run = ?5, last_run = ?5, "
        "  adopted = ?6, may_exist = 1, updated_at = " NOW_TEXT ", updated_at_us = ?7 WHERE key = ?1",
    [WF_SQL_ATTACHING] =
        "UPDATE submissions SET state = 'attaching', updated_at = " NOW_TEXT ", updated_at_us = ?2 WHERE key = ?1",
    [WF_SQL_DELIVERED] =
        "UPDATE submissions SET state = 'delivered', content_checksum = ?2, error_class = NULL, last_error = NULL, "
        "  delivered_at = " NOW_TEXT ", updated_at = " NOW_TEXT ", updated_at_us = ?3 WHERE key = ?1",
    [WF_SQL_FAILURE] =
        "UPDATE submissions SET state = ?2, attempts = attempts + 1, error_class = ?3, last_error = ?4, "
        "  may_exist = CASE WHEN jsm_key IS NULL THEN ?5 ELSE may_exist END, "
        "  updated_at = " NOW_TEXT ", updated_at_us = ?6 WHERE key = ?1",
    [WF_SQL_ADD_FIX] =
        "INSERT INTO manual_fixes (key, jsm_key, field_id, value, message, created_at) "
        "VALUES (?1, ?2, ?3, ?4, ?5, " NOW_TEXT ")",
    [WF_SQL_CURSOR] = "SELECT max(source_time_us) FROM submissions",
    [WF_SQL_COUNT_BETWEEN] =
        "SELECT count(*) FROM submissions WHERE source_time_us >= ?1 AND (?2 < 0 OR source_time_us <= ?2)",
    [WF_SQL_RETRY_TIMES] =
        "SELECT DISTINCT source_time_us FROM submissions "
        "WHERE state IN ('pending', 'creating', 'created', 'attaching', 'failed') "
        "  AND source_time_us < ?1 AND (last_run IS NULL OR last_run <> ?2) ORDER BY 1",
    [WF_SQL_RUN_BEGIN] = "INSERT INTO runs (command, started_at) VALUES (?1, " NOW_TEXT ") RETURNING id",
    [WF_SQL_RUN_FINISH] =
        "UPDATE runs SET finished_at = " NOW_TEXT ", exit_code = ?2, seen = ?3, created = ?4, adopted = ?5, "
        "  delivered = ?6, failed = ?7, parked = ?8, attachments_uploaded = ?9, attachments_failed = ?10, "
        "  retries = ?11, http_429 = ?12, manual_fixes = ?13, duration_ms = ?14, error = ?15, http_requests = ?16, "
        "  peak_in_flight = ?17, garbled = ?18, lookups = ?19, lookup_calls = ?20 WHERE id = ?1",
    [WF_SQL_META_GET] = "SELECT value FROM meta WHERE name = ?1",
    [WF_SQL_META_SET] = "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2",

    /* A key prefix is a range on the primary key: every lower-case hex key
     * that starts with p sorts in [p, p || 'g'). */
    [WF_SQL_SELECT_BY_STATE] = "SELECT " WF_ROW_COLUMNS " FROM submissions WHERE state = ?1 ORDER BY source_time_us, key",
    [WF_SQL_SELECT_BY_CREATED_RUN] =
        "SELECT " WF_ROW_COLUMNS " FROM submissions WHERE created_run = ?1 ORDER BY source_time_us, key",
    [WF_SQL_SELECT_DELIVERED_BETWEEN] =
        "SELECT " WF_ROW_COLUMNS " FROM submissions WHERE state = 'delivered' AND delivered_at >= ?1 "
        "AND (?2 IS NULL OR delivered_at <= ?2) ORDER BY source_time_us, key",
    [WF_SQL_SELECT_FAILED_WITH_TICKET] =
        "SELECT " WF_ROW_COLUMNS " FROM submissions WHERE state IN ('failed', 'parked') AND jsm_key IS NOT NULL "
        "ORDER BY source_time_us, key",
    [WF_SQL_SELECT_WITH_TICKET] =
        "SELECT " WF_ROW_COLUMNS " FROM submissions WHERE jsm_key IS NOT NULL ORDER BY source_time_us, key",
    [WF_SQL_SELECT_KEY_PREFIX] =
        "SELECT " WF_ROW_COLUMNS " FROM submissions WHERE key >= ?1 AND key < ?1 || 'g' ORDER BY source_time_us, key",
    [WF_SQL_SELECT_SOURCE_ID] =
        "SELECT " WF_ROW_COLUMNS " FROM submissions WHERE source_id = ?1 ORDER BY source_time_us, key",
    [WF_SQL_REQUEUE] =
        "UPDATE submissions SET state = CASE WHEN jsm_key IS NULL THEN 'pending' ELSE 'attaching' END, "
        "  attempts = 0, error_class = NULL, last_error = NULL, "
        "  updated_at = CASE WHEN may_exist = 1 AND jsm_key IS NULL THEN updated_at ELSE " NOW_TEXT " END, "
        "  updated_at_us = CASE WHEN may_exist = 1 AND jsm_key IS NULL THEN updated_at_us ELSE ?2 END "
        "WHERE key = ?1 AND state <> 'delivered'",
    [WF_SQL_RESOLVE_FIXES] =
        "UPDATE manual_fixes SET resolved_at = " NOW_TEXT " WHERE key = ?1 AND resolved_at IS NULL",
    [WF_SQL_FORGET] =
        "UPDATE submissions SET state = 'pending', may_exist = ?2, jsm_key = NULL, jsm_issue_id = NULL, "
        "  attempts = 0, error_class = NULL, last_error = NULL, content_checksum = NULL, created_run = NULL, "
        "  adopted = 0, delivered_at = NULL, updated_at = " NOW_TEXT ", updated_at_us = ?3 WHERE key = ?1",
    [WF_SQL_ADOPT] =
        "UPDATE submissions SET state = 'attaching', jsm_key = ?2, jsm_issue_id = ?3, may_exist = 1, adopted = 1, "
        "  attempts = 0, error_class = NULL, last_error = NULL, created_run = ?4, "
        "  updated_at = " NOW_TEXT ", updated_at_us = ?5 WHERE key = ?1",
    [WF_SQL_INSERT] =
        "INSERT INTO submissions (key, source_id, source_time, source_time_us, state, may_exist, jsm_key, "
        "  jsm_issue_id, adopted, created_run, first_seen_at, updated_at, updated_at_us) "
        "VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 IS NULL THEN 'pending' ELSE 'attaching' END, ?5 IS NOT NULL, ?5, ?6, "
        "  ?5 IS NOT NULL, CASE WHEN ?5 IS NULL THEN NULL ELSE ?7 END, " NOW_TEXT ", " NOW_TEXT ", ?8) "
        "ON CONFLICT (key) DO NOTHING",
    [WF_SQL_REATTACH] =
        "UPDATE submissions SET state = 'attaching', attempts = 0, updated_at = " NOW_TEXT ", updated_at_us = ?2 "
        "WHERE key = ?1 AND jsm_key IS NOT NULL",
    [WF_SQL_SET_CHECKSUM] =
        "UPDATE submissions SET content_checksum = ?2, updated_at = " NOW_TEXT ", updated_at_us = ?3 WHERE key = ?1",
    [WF_SQL_FIX_IS_OPEN] =
        "SELECT 1 FROM manual_fixes WHERE key = ?1 AND field_id = ?2 AND value IS ?3 AND resolved_at IS NULL",
    [WF_SQL_RUN_EXISTS] = "SELECT 1 FROM runs WHERE id = ?1",

    [WF_SQL_STATE_COUNTS] = "SELECT state, count(*) FROM submissions GROUP BY state",
    [WF_SQL_NEWEST] = "SELECT source_time, source_time_us FROM submissions ORDER BY source_time_us DESC LIMIT 1",
    [WF_SQL_RECENT_RUNS] =
        "SELECT id, command, started_at, finished_at, exit_code, seen, created, adopted, delivered, failed, parked, "
        "attachments_uploaded, attachments_failed, retries, http_429, manual_fixes, duration_ms, error, "
        "http_requests, peak_in_flight, garbled, lookups, lookup_calls "
        "FROM runs ORDER BY id DESC LIMIT ?1",
    [WF_SQL_PROBLEMS] =
        "SELECT " WF_ROW_COLUMNS " FROM submissions WHERE state IN ('failed', 'parked') "
        "ORDER BY state DESC, updated_at_us LIMIT ?1",
    [WF_SQL_OPEN_FIXES] =
        "SELECT id, key, jsm_key, field_id, value, message, created_at FROM manual_fixes "
        "WHERE resolved_at IS NULL ORDER BY id LIMIT ?1",
    [WF_SQL_DELIVERED_WITH_CHECKSUM] =
        "SELECT count(*) FROM submissions WHERE state = 'delivered' AND content_checksum IS NOT NULL",
    [WF_SQL_NEWEST_DELIVERED] =
        "SELECT key, source_time_us FROM submissions WHERE state = 'delivered' "
        "AND content_checksum IS NOT NULL ORDER BY source_time_us DESC LIMIT ?1",
    [WF_SQL_FIX_FIELDS] = "SELECT field_id FROM manual_fixes WHERE key = ?1",
    [WF_SQL_RUN_TOTALS] =
        "SELECT coalesce(sum(failed), 0), coalesce(sum(parked), 0), coalesce(sum(http_429), 0), "
        "coalesce(sum(http_requests), 0), coalesce(sum(garbled), 0) FROM runs",
    [WF_SQL_LAST_SUCCESS] =
        "SELECT coalesce(CAST(strftime('%s', finished_at) AS INTEGER), 0) FROM runs "
        "WHERE exit_code = 0 AND finished_at IS NOT NULL AND command IN ('sync', 'replay') "
        "ORDER BY id DESC LIMIT 1",
    [WF_SQL_OPEN_COUNT] = "SELECT count(*) FROM submissions WHERE state IN " OPEN_STATES,
    [WF_SQL_WINDOW_ROWS] =
        "SELECT " WF_ROW_COLUMNS " FROM submissions WHERE source_time_us >= ?1 AND (?2 < 0 OR source_time_us <= ?2)",
    [WF_SQL_CUSTOMER_GET] = "SELECT account_id FROM customers WHERE desk_id = ?1 AND email = ?2",
    [WF_SQL_CUSTOMER_PUT] =
        "INSERT INTO customers (desk_id, email, account_id, created_at) VALUES (?1, ?2, ?3, " NOW_TEXT ") "
        "ON CONFLICT (desk_id, email) DO UPDATE SET account_id = ?3, created_at = " NOW_TEXT,
    [WF_SQL_CUSTOMER_FORGET] = "DELETE FROM customers WHERE desk_id = ?1 AND email = ?2",
};

typedef struct {
    sqlite3 *db;
    /* Prepared once, on first use: every row of a tick is looked up, and
     * the statement texts are fixed. */
    sqlite3_stmt *stmts[WF_SQL_COUNT_];
} sqlite_impl;

static sqlite_impl *impl(wf_tracker *t) { return t->impl; }

/* Turns SQLite's result into an operator's sentence naming the file. */
static wf_err fail(wf_tracker *t, int rc, const char *doing)
{
    const char *hint = "";
    int primary = rc & 0xff;
    sqlite3 *db = t->impl ? impl(t)->db : NULL;
    if (primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM)
        hint = " (make the file and its directory writable by this user, or point SYNC_TRACKER_DB elsewhere)";
    else if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        hint = " (another process holds the tracker locked; stop it, or wait and rerun)";
    else if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
        hint = " (restore it from tracker/backups/)";
    snprintf(t->errmsg, sizeof t->errmsg, "tracker %s: %s failed: %s%s", t->name, doing,
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), hint);
    return WF_ERR_TRACKER;
}

static int make_parent_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return -1;
    char *dir = dirname(copy);
    int rc = (mkdir(dir, 0700) == 0 || errno == EEXIST) ? 0 : -1;
    free(copy);
    return rc;
}

static wf_err exec_sql(wf_tracker *t, const char *sql, const char *doing)
{
    int rc = sqlite3_exec(impl(t)->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? WF_OK : fail(t, rc, doing);
}

static wf_err migrate(wf_tracker *t)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(impl(t)->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK) return fail(t, rc, "reading the schema version");
    rc = sqlite3_step(st);
    long version = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (version < 0) return fail(t, rc, "reading the schema version");
    if ((size_t)version > wf_migrations_count) {
        snprintf(t->errmsg, sizeof t->errmsg,
                 "tracker %s has schema version %ld, newer than this wf2jsm knows (%zu): upgrade wf2jsm",
                 t->name, version, wf_migrations_count);
        return WF_ERR_TRACKER;
    }
    for (size_t v = (size_t)version; v < wf_migrations_count; v++) {
        char setv[64];
        snprintf(setv, sizeof setv, "PRAGMA user_version = %zu", v + 1);
        wf_err err;
        /* A migration and its version bump commit together or not at all. */
        if ((err = exec_sql(t, "BEGIN IMMEDIATE", "starting a migration")) != WF_OK) return err;
        if ((err = exec_sql(t, wf_migrations[v], "migrating the schema")) != WF_OK ||
            (err = exec_sql(t, setv, "setting the schema version")) != WF_OK) {
            sqlite3_exec(impl(t)->db, "ROLLBACK", NULL, NULL, NULL);
            return err;
        }
        if ((err = exec_sql(t, "COMMIT", "committing a migration")) != WF_OK) return err;
    }
    return WF_OK;
}

static wf_err sqlite_open(wf_tracker *t, const char *path)
{
    sqlite_impl *s = calloc(1, sizeof *s);
    if (!s || !(t->name = strdup(path))) {
        free(s);
        return WF_ERR_NOMEM;
    }
    t->impl = s;
    if (make_parent_dir(path) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "tracker %s: cannot create its directory: %s", path, strerror(errno));
        return WF_ERR_TRACKER;
    }
    /* Create the file ourselves so that it is owner-only from the first
     * byte; SQLite gives its -wal and -shm files the same mode. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(t->errmsg, sizeof t->errmsg,
                 "tracker %s cannot be opened for writing: %s (make it writable by this user, or set SYNC_TRACKER_DB)",
                 path, strerror(errno));
        return WF_ERR_TRACKER;
    }
    close(fd);
    if (!wf_sqlite_load()) {
        snprintf(t->errmsg, sizeof t->errmsg, "tracker %s cannot be opened: %s", path, wf_sqlite_load_error());
        return WF_ERR_TRACKER;
    }
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) return fail(t, rc, "opening");
    sqlite3_busy_timeout(s->db, 5000);
    /* Checkpointing on close would fsync the database on every tick, even
     * one that wrote nothing; SQLite's auto-checkpoint during writes keeps
     * the WAL short instead. */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_extended_result_codes(s->db, 1);
    wf_err err;
    if ((err = exec_sql(t, "PRAGMA journal_mode=WAL", "switching to WAL mode")) != WF_OK) return err;
    /* FULL: a delivered row must survive a reboot, not only a crash. The
     * next process to open the tracker rebuilds the WAL index from the
     * whole WAL file, so the WAL is kept short: a tick writes a few pages,
     * and a checkpoint every 32 pages bounds what a tick start must read. */
    if ((err = exec_sql(t, "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=32", "setting pragmas")) != WF_OK)
        return err;
    return migrate(t);
}

static void sqlite_close(wf_tracker *t)
{
    sqlite_impl *s = impl(t);
    if (!s) return;
    for (int i = 0; i < WF_SQL_COUNT_; i++) sqlite3_finalize(s->stmts[i]);
    sqlite3_close(s->db);
    free(s);
    t->impl = NULL;
}

/* Statement id, compiled on its first use and kept for the connection's
 * life. Returns SQLite's result code. */
static int compiled(sqlite_impl *s, wf_sql id)
{
    return s->stmts[id] ? SQLITE_OK : sqlite3_prepare_v2(s->db, sqlite_sql[id], -1, &s->stmts[id], NULL);
}

static void sqlite_prepare(wf_tracker *t, wf_sql id)
{
    if (impl(t)) compiled(impl(t), id);
}

struct wf_sql_cols { sqlite3_stmt *st; };

static wf_err sqlite_run(wf_tracker *t, wf_sql id, const char *doing, const wf_sql_arg *args, int nargs,
                         wf_sql_row_fn on_row, void *ctx, long *changes)
{
    sqlite_impl *s = impl(t);
    int rc = compiled(s, id);
    sqlite3_stmt *st = s->stmts[id];
    for (int i = 0; rc == SQLITE_OK && i < nargs; i++) {
        if (args[i].type == 't')
            rc = args[i].text ? sqlite3_bind_text(st, i + 1, args[i].text, -1, SQLITE_TRANSIENT)
                              : sqlite3_bind_null(st, i + 1);
        else
            rc = sqlite3_bind_int64(st, i + 1, args[i].num);
    }
    wf_err err = WF_OK;
    struct wf_sql_cols cols = {st};
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) break;
        if (on_row && (err = on_row(&cols, ctx)) != WF_OK) break;
    }
    if (err == WF_OK && rc != SQLITE_DONE) err = fail(t, rc, doing);
    else if (err == WF_OK && changes) *changes = sqlite3_changes(s->db);
    else if (err == WF_ERR_NOMEM) snprintf(t->errmsg, sizeof t->errmsg, "out of memory %s", doing);
    /* Reset at once: a statement left mid-result would hold a read
     * transaction open and keep the WAL from being checkpointed. */
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    return err;
}

static const char *sqlite_col_text(const wf_sql_cols *c, int i)
{
    return (const char *)sqlite3_column_text(c->st, i);
}

static int64_t sqlite_col_int(const wf_sql_cols *c, int i) { return sqlite3_column_int64(c->st, i); }
static bool sqlite_col_null(const wf_sql_cols *c, int i) { return sqlite3_column_type(c->st, i) == SQLITE_NULL; }

/* Copies the tracker with SQLite's online backup API (a consistent copy
 * even while it is in use) into <tracker dir>/backups, as one
 * self-contained file. */
static wf_err sqlite_backup(wf_tracker *t, char *path, size_t pathlen, char *errbuf, size_t errlen)
{
    sqlite3 *dest = NULL;
    sqlite3_backup *bk = NULL;
    char dir[4096];
    const char *slash = strrchr(t->name, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s/backups", (int)(slash - t->name), t->name);
    else snprintf(dir, sizeof dir, "backups");
    wf_err err = wf_tracker_backup_file(dir, ".db", path, pathlen, errbuf, errlen);
    if (err != WF_OK) return err;
    int rc = sqlite3_open_v2(path, &dest, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        bk = sqlite3_backup_init(dest, "main", impl(t)->db, "main");
        if (!bk) rc = sqlite3_errcode(dest);
    }
    if (bk) {
        /* All pages in one step: the copy is one consistent snapshot. */
        do {
            rc = sqlite3_backup_step(bk, -1);
            if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(50);
        } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
        int fin = sqlite3_backup_finish(bk);
        if (rc == SQLITE_DONE) rc = fin;
    }
    /* The copy inherits WAL mode from the tracker; a backup is easier to
     * restore as one file, so it goes back to a rollback journal. */
    if (rc == SQLITE_OK) rc = sqlite3_exec(dest, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(errbuf, errlen, "backing up the tracker %s to %s failed: %s (check free space; nothing was changed)",
                 t->name, path, dest ? sqlite3_errmsg(dest) : sqlite3_errstr(rc));
        err = WF_ERR_TRACKER;
    }
    sqlite3_close(dest);
    if (err != WF_OK) unlink(path);
    return err;
}

static wf_err sqlite_probe_writable(wf_tracker *t, char *errbuf, size_t errlen)
{
    char *why = NULL;
    int rc = sqlite3_exec(impl(t)->db, "BEGIN IMMEDIATE; ROLLBACK", NULL, NULL, &why);
    if (rc == SQLITE_OK && access(t->name, W_OK) == 0) return WF_OK;
    snprintf(errbuf, errlen, "%s", rc != SQLITE_OK && why ? why : strerror(errno));
    sqlite3_free(why);
    return WF_ERR_TRACKER;
}

static bool sqlite_in_transaction(wf_tracker *t) { return !sqlite3_get_autocommit(impl(t)->db); }

const wf_tracker_backend wf_tracker_sqlite_backend = {
    .kind = "sqlite",
    .sql = sqlite_sql,
    .open = sqlite_open,
    .close = sqlite_close,
    .run = sqlite_run,
    .prepare = sqlite_prepare,
    .col_text = sqlite_col_text,
    .col_int = sqlite_col_int,
    .col_null = sqlite_col_null,
    .backup = sqlite_backup,
    .try_lock = NULL,   /* one host: lock.c's flock on a file beside the tracker */
    .lock_holder = NULL,
    .probe_writable = sqlite_probe_writable,
    .in_transaction = sqlite_in_transaction,
};
