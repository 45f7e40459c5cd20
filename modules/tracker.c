/* tracker.c: SQLite-backed delivery state, runs and manual fixes. */
#define _POSIX_C_SOURCE 200809L
#include "tracker.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern const char *const wf_migrations[];
extern const size_t wf_migrations_count;

struct wf_tracker {
    sqlite3 *db;
    sqlite3_stmt *get_stmt;   /* prepared once: every row of a tick is looked up */
    char *path;
    char errmsg[512];
};

#define NOW_TEXT "strftime('%Y-%m-%dT%H:%M:%SZ','now')"

int64_t wf_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *wf_tracker_errmsg(const wf_tracker *t) { return t->errmsg; }
const char *wf_tracker_path(const wf_tracker *t) { return t->path; }
struct sqlite3 *wf_tracker_db(wf_tracker *t) { return t->db; }

/* Turns SQLite's result into an operator's sentence naming the file. */
static wf_err fail(wf_tracker *t, int rc, const char *doing)
{
    const char *hint = "";
    int primary = rc & 0xff;
    if (primary == SQLITE_READONLY || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM)
        hint = " (make the file and its directory writable by this user, or point SYNC_TRACKER_DB elsewhere)";
    else if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
        hint = " (another process holds the tracker locked; stop it, or wait and rerun)";
    else if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
        hint = " (restore it from tracker/backups/)";
    snprintf(t->errmsg, sizeof t->errmsg, "tracker %s: %s failed: %s%s", t->path, doing,
             t->db ? sqlite3_errmsg(t->db) : sqlite3_errstr(rc), hint);
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
    int rc = sqlite3_exec(t->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? WF_OK : fail(t, rc, doing);
}

static wf_err migrate(wf_tracker *t)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(t->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK) return fail(t, rc, "reading the schema version");
    rc = sqlite3_step(st);
    long version = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    if (version < 0) return fail(t, rc, "reading the schema version");
    if ((size_t)version > wf_migrations_count) {
        snprintf(t->errmsg, sizeof t->errmsg,
                 "tracker %s has schema version %ld, newer than this wf2jsm knows (%zu): upgrade wf2jsm",
                 t->path, version, wf_migrations_count);
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
            sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
            return err;
        }
        if ((err = exec_sql(t, "COMMIT", "committing a migration")) != WF_OK) return err;
    }
    return WF_OK;
}

wf_err wf_tracker_open(const char *path, wf_tracker **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    wf_tracker *t = calloc(1, sizeof *t);
    if (!t || !(t->path = strdup(path))) {
        free(t);
        return WF_ERR_NOMEM;
    }
    wf_err err = WF_ERR_TRACKER;
    if (make_parent_dir(path) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "tracker %s: cannot create its directory: %s", path, strerror(errno));
        goto fail;
    }
    /* Create the file ourselves so that it is owner-only from the first
     * byte; SQLite gives its -wal and -shm files the same mode. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(t->errmsg, sizeof t->errmsg,
                 "tracker %s cannot be opened for writing: %s (make it writable by this user, or set SYNC_TRACKER_DB)",
                 path, strerror(errno));
        goto fail;
    }
    close(fd);
    int rc = sqlite3_open_v2(path, &t->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) { err = fail(t, rc, "opening"); goto fail; }
    sqlite3_busy_timeout(t->db, 5000);
    /* Checkpointing on close would fsync the database on every tick, even
     * one that wrote nothing; SQLite's auto-checkpoint during writes keeps
     * the WAL short instead. */
    sqlite3_db_config(t->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_extended_result_codes(t->db, 1);
    if ((err = exec_sql(t, "PRAGMA journal_mode=WAL", "switching to WAL mode")) != WF_OK) goto fail;
    /* FULL: a delivered row must survive a reboot, not only a crash. */
    /* The next process to open the tracker rebuilds the WAL index from the
     * whole WAL file, so the WAL is kept short: a tick writes a few pages,
     * and a checkpoint every 32 pages bounds what a tick start must read. */
    if ((err = exec_sql(t, "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=32", "setting pragmas")) != WF_OK) goto fail;
    if ((err = migrate(t)) != WF_OK) goto fail;
    *out = t;
    return WF_OK;
fail:
    snprintf(errbuf, errlen, "%s", t->errmsg);
    wf_tracker_close(t);
    return err;
}

void wf_tracker_close(wf_tracker *t)
{
    if (!t) return;
    sqlite3_finalize(t->get_stmt);
    sqlite3_close(t->db);
    free(t->path);
    free(t);
}

int wf_tracker_bind(sqlite3_stmt *st, const char *types, va_list ap)
{
    for (int i = 0; types[i]; i++) {
        int rc;
        switch (types[i]) {
        case 't': {
            const char *s = va_arg(ap, const char *);
            rc = s ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i + 1);
            break;
        }
        case 'i': rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
        case 'b': rc = sqlite3_bind_int(st, i + 1, va_arg(ap, int)); break;
        default: rc = SQLITE_MISUSE;
        }
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

/* Prepares sql and binds its arguments (see wf_tracker_bind). */
static int prepare_bind(wf_tracker *t, sqlite3_stmt **st, const char *sql, const char *types, va_list ap)
{
    int rc = sqlite3_prepare_v2(t->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? wf_tracker_bind(*st, types, ap) : rc;
}

/* Runs one write statement in autocommit mode: each step of the delivery
 * protocol is its own durable transaction. */
static wf_err write_stmt(wf_tracker *t, const char *doing, const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, types);
    int rc = prepare_bind(t, &st, sql, types, ap);
    va_end(ap);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? WF_OK : fail(t, rc, doing);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? strdup((const char *)s) : NULL;
}

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
    memset(row, 0, sizeof *row);
}

void wf_tracker_row_read(sqlite3_stmt *st, wf_tracker_row *row)
{
    memset(row, 0, sizeof *row);
    snprintf(row->key, sizeof row->key, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(row->state, sizeof row->state, "%s", (const char *)sqlite3_column_text(st, 1));
    row->source_id = col_dup(st, 2);
    row->source_time = col_dup(st, 3);
    row->source_time_us = sqlite3_column_int64(st, 4);
    row->may_exist = sqlite3_column_int(st, 5) != 0;
    row->jsm_key = col_dup(st, 6);
    row->jsm_issue_id = col_dup(st, 7);
    row->attempts = sqlite3_column_int(st, 8);
    row->last_run = (long)sqlite3_column_int64(st, 9);
    row->created_run = (long)sqlite3_column_int64(st, 10);
    row->updated_at_us = sqlite3_column_int64(st, 11);
    row->error_class = col_dup(st, 12);
    row->last_error = col_dup(st, 13);
    row->content_checksum = col_dup(st, 14);
    row->delivered_at = col_dup(st, 15);
}

wf_err wf_tracker_get(wf_tracker *t, const char *key, wf_tracker_row *row, bool *found)
{
    static const char sql[] = "SELECT " WF_TRACKER_ROW_COLUMNS " FROM submissions WHERE key = ?";
    *found = false;
    int rc = t->get_stmt ? SQLITE_OK : sqlite3_prepare_v2(t->db, sql, -1, &t->get_stmt, NULL);
    sqlite3_stmt *st = t->get_stmt;
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        wf_tracker_row_read(st, row);
        *found = true;
        rc = SQLITE_DONE;
    }
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    return rc == SQLITE_DONE ? WF_OK : fail(t, rc, "reading a submission");
}

wf_err wf_tracker_record_intent(wf_tracker *t, const char *key, const char *source_id,
                                const char *source_time, int64_t source_time_us, long run_id)
{
    return write_stmt(t, "recording a create intent",
        "INSERT INTO submissions (key, source_id, source_time, source_time_us, state, may_exist, last_run, "
        "  first_seen_at, updated_at, updated_at_us) "
        "VALUES (?1, ?2, ?3, ?4, 'creating', 1, ?5, " NOW_TEXT ", " NOW_TEXT ", ?6) "
        "ON CONFLICT (key) DO UPDATE SET state = 'creating', may_exist = 1, last_run = ?5, "
        "  updated_at = " NOW_TEXT ", updated_at_us = ?6",
        "tttiii", key, source_id, source_time, source_time_us, (int64_t)run_id, wf_now_us());
}

wf_err wf_tracker_record_not_sent(wf_tracker *t, const char *key, bool may_exist_before)
{
    return write_stmt(t, "recording that nothing was sent",
        "UPDATE submissions SET state = 'pending', may_exist = ?2, updated_at = " NOW_TEXT ", updated_at_us = ?3 "
        "WHERE key = ?1",
        "tbi", key, (int)may_exist_before, wf_now_us());
}

wf_err wf_tracker_record_created(wf_tracker *t, const char *key, const char *jsm_key,
                                 const char *jsm_issue_id, long run_id, bool adopted)
{
    return write_stmt(t, "recording a created request",
        "UPDATE submissions SET state = ?4, jsm_key = ?2, jsm_issue_id = ?3, created_run = ?5, last_run = ?5, "
        "  adopted = ?6, may_exist = 1, updated_at = " NOW_TEXT ", updated_at_us = ?7 WHERE key = ?1",
        "ttttibi", key, jsm_key, jsm_issue_id, adopted ? "attaching" : "created", (int64_t)run_id,
        (int)adopted, wf_now_us());
}

wf_err wf_tracker_record_attaching(wf_tracker *t, const char *key)
{
    return write_stmt(t, "recording an attach intent",
        "UPDATE submissions SET state = 'attaching', updated_at = " NOW_TEXT ", updated_at_us = ?2 WHERE key = ?1",
        "ti", key, wf_now_us());
}

wf_err wf_tracker_record_delivered(wf_tracker *t, const char *key, const char *checksum)
{
    return write_stmt(t, "recording a delivery",
        "UPDATE submissions SET state = 'delivered', content_checksum = ?2, error_class = NULL, last_error = NULL, "
        "  delivered_at = " NOW_TEXT ", updated_at = " NOW_TEXT ", updated_at_us = ?3 WHERE key = ?1",
        "tti", key, checksum, wf_now_us());
}

wf_err wf_tracker_record_failure(wf_tracker *t, const char *key, const char *error_class,
                                 const char *message, bool may_exist, bool park)
{
    return write_stmt(t, "recording a failure",
        "UPDATE submissions SET state = ?2, attempts = attempts + 1, error_class = ?3, last_error = ?4, "
        "  may_exist = CASE WHEN jsm_key IS NULL THEN ?5 ELSE may_exist END, "
        "  updated_at = " NOW_TEXT ", updated_at_us = ?6 WHERE key = ?1",
        "ttttbi", key, park ? "parked" : "failed", error_class, message, (int)may_exist, wf_now_us());
}

wf_err wf_tracker_add_manual_fix(wf_tracker *t, const char *key, const char *jsm_key,
                                 const char *field_id, const char *value, const char *message)
{
    return write_stmt(t, "recording a manual fix",
        "INSERT INTO manual_fixes (key, jsm_key, field_id, value, message, created_at) "
        "VALUES (?, ?, ?, ?, ?, " NOW_TEXT ")",
        "ttttt", key, jsm_key, field_id, value, message);
}

static wf_err query_int64(wf_tracker *t, const char *doing, int64_t *out, bool *is_null,
                          const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, types);
    int rc = prepare_bind(t, &st, sql, types, ap);
    va_end(ap);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (is_null) *is_null = sqlite3_column_type(st, 0) == SQLITE_NULL;
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? WF_OK : fail(t, rc, doing);
}

wf_err wf_tracker_cursor(wf_tracker *t, int64_t *cursor_us, bool *has_cursor)
{
    bool is_null = true;
    wf_err err = query_int64(t, "reading the cursor", cursor_us, &is_null,
                             "SELECT max(source_time_us) FROM submissions", "");
    *has_cursor = err == WF_OK && !is_null;
    return err;
}

wf_err wf_tracker_count_between(wf_tracker *t, int64_t from_us, int64_t to_us, long *count)
{
    int64_t n = 0;
    wf_err err = query_int64(t, "counting the window", &n, NULL,
        "SELECT count(*) FROM submissions WHERE source_time_us >= ?1 AND (?2 < 0 OR source_time_us <= ?2)",
        "ii", from_us, to_us);
    *count = (long)n;
    return err;
}

wf_err wf_tracker_retry_times(wf_tracker *t, int64_t before_us, long skip_run,
                              int64_t **times, size_t *n)
{
    static const char sql[] =
        "SELECT DISTINCT source_time_us FROM submissions "
        "WHERE state IN ('pending', 'creating', 'created', 'attaching', 'failed') "
        "  AND source_time_us < ?1 AND (last_run IS NULL OR last_run <> ?2) ORDER BY 1";
    sqlite3_stmt *st = NULL;
    *times = NULL;
    *n = 0;
    size_t cap = 0;
    int rc = sqlite3_prepare_v2(t->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 1, before_us);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, skip_run);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) break;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *nt = realloc(*times, cap * sizeof *nt);
            if (!nt) { sqlite3_finalize(st); free(*times); *times = NULL; *n = 0; return WF_ERR_NOMEM; }
            *times = nt;
        }
        (*times)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*times);
        *times = NULL;
        *n = 0;
        return fail(t, rc, "listing rows to retry");
    }
    return WF_OK;
}

/* The runs table is a report, not part of the delivery protocol: losing
 * its last row to a power cut harms nothing, so its writes skip the fsync
 * that synchronous=FULL costs every tick. The next FULL commit syncs them. */
static void set_synchronous(wf_tracker *t, bool full)
{
    sqlite3_exec(t->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
}

wf_err wf_tracker_run_begin(wf_tracker *t, const char *command, long *run_id)
{
    set_synchronous(t, false);
    wf_err err = write_stmt(t, "starting a run",
        "INSERT INTO runs (command, started_at) VALUES (?, " NOW_TEXT ")", "t", command);
    set_synchronous(t, true);
    *run_id = err == WF_OK ? (long)sqlite3_last_insert_rowid(t->db) : 0;
    return err;
}

wf_err wf_tracker_run_finish(wf_tracker *t, long run_id, const wf_run_stats *s,
                             int exit_code, const char *error)
{
    set_synchronous(t, false);
    wf_err err = write_stmt(t, "finishing a run",
        "UPDATE runs SET finished_at = " NOW_TEXT ", exit_code = ?2, seen = ?3, created = ?4, adopted = ?5, "
        "  delivered = ?6, failed = ?7, parked = ?8, attachments_uploaded = ?9, attachments_failed = ?10, "
        "  retries = ?11, http_429 = ?12, manual_fixes = ?13, duration_ms = ?14, error = ?15, http_requests = ?16, "
        "  peak_in_flight = ?17, garbled = ?18, lookups = ?19, lookup_calls = ?20 WHERE id = ?1",
        "iiiiiiiiiiiiiitiiiii", (int64_t)run_id, (int64_t)exit_code, (int64_t)s->seen, (int64_t)s->created,
        (int64_t)s->adopted, (int64_t)s->delivered, (int64_t)s->failed, (int64_t)s->parked,
        (int64_t)s->attachments_uploaded, (int64_t)s->attachments_failed, (int64_t)s->retries,
        (int64_t)s->http_429, (int64_t)s->manual_fixes, (int64_t)s->duration_ms, error, (int64_t)s->http_requests,
        (int64_t)s->peak_in_flight, (int64_t)s->garbled, (int64_t)s->lookups, (int64_t)s->lookup_calls);
    set_synchronous(t, true);
    return err;
}

wf_err wf_tracker_meta_get(wf_tracker *t, const char *name, char **value)
{
    sqlite3_stmt *st = NULL;
    *value = NULL;
    int rc = sqlite3_prepare_v2(t->db, "SELECT value FROM meta WHERE name = ?", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = col_dup(st, 0);
        rc = *value ? SQLITE_DONE : SQLITE_NOMEM;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? WF_OK : fail(t, rc, "reading meta");
}

wf_err wf_tracker_meta_set(wf_tracker *t, const char *name, const char *value)
{
    return write_stmt(t, "writing meta",
        "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2",
        "tt", name, value);
}

/* ---- the customer cache ------------------------------------------------ */

wf_err wf_tracker_customer_get(wf_tracker *t, const char *desk_id, const char *email, char **account_id)
{
    sqlite3_stmt *st = NULL;
    *account_id = NULL;
    int rc = sqlite3_prepare_v2(t->db, "SELECT account_id FROM customers WHERE desk_id = ?1 AND email = ?2", -1,
                                &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 1, desk_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *account_id = col_dup(st, 0);
        rc = *account_id ? SQLITE_DONE : SQLITE_NOMEM;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? WF_OK : fail(t, rc, "reading the customer cache");
}

wf_err wf_tracker_customer_put(wf_tracker *t, const char *desk_id, const char *email, const char *account_id)
{
    return write_stmt(t, "caching a customer",
        "INSERT INTO customers (desk_id, email, account_id, created_at) VALUES (?1, ?2, ?3, " NOW_TEXT ") "
        "ON CONFLICT (desk_id, email) DO UPDATE SET account_id = ?3, created_at = " NOW_TEXT,
        "ttt", desk_id, email, account_id);
}

wf_err wf_tracker_customer_forget(wf_tracker *t, const char *desk_id, const char *email)
{
    return write_stmt(t, "forgetting a cached customer", "DELETE FROM customers WHERE desk_id = ?1 AND email = ?2",
                      "tt", desk_id, email);
}

wf_err wf_tracker_begin(wf_tracker *t)
{
    return exec_sql(t, "BEGIN IMMEDIATE", "starting a transaction");
}

wf_err wf_tracker_commit(wf_tracker *t)
{
    return exec_sql(t, "COMMIT", "committing a transaction");
}

void wf_tracker_rollback(wf_tracker *t)
{
    if (!sqlite3_get_autocommit(t->db)) sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
}
