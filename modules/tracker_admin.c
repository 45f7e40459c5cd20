/* tracker_admin.c: hand-made state changes, tracker backups and the audit trail. */
#define _POSIX_C_SOURCE 200809L
#include "tracker_admin.h"
#include "unique_key.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NOW_TEXT "strftime('%Y-%m-%dT%H:%M:%SZ','now')"

static const char row_columns[] = WF_TRACKER_ROW_COLUMNS;

static wf_err sql_fail(wf_tracker *t, const char *doing, char *errbuf, size_t errlen)
{
    snprintf(errbuf, errlen, "tracker %s: %s failed: %s", wf_tracker_path(t), doing,
             sqlite3_errmsg(wf_tracker_db(t)));
    return WF_ERR_TRACKER;
}

/* Binds the arguments described by types ('t' text or NULL, 'i' int64)
 * to st's parameters 1..n. */
/* Runs one write statement as its own transaction; *changes (may be NULL)
 * receives the number of rows it touched. */
static wf_err write_stmt(wf_tracker *t, const char *doing, int *changes, char *errbuf, size_t errlen,
                         const char *sql, const char *types, ...)
{
    sqlite3 *db = wf_tracker_db(t);
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, types);
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) rc = wf_tracker_bind(st, types, ap);
    va_end(ap);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    wf_err err = rc == SQLITE_DONE ? WF_OK : sql_fail(t, doing, errbuf, errlen);
    if (err == WF_OK && changes) *changes = sqlite3_changes(db);
    sqlite3_finalize(st);
    return err;
}

void wf_tracker_admin_free_rows(wf_tracker_row *rows, size_t n)
{
    if (!rows) return;
    for (size_t i = 0; i < n; i++) wf_tracker_row_free(&rows[i]);
    free(rows);
}

static bool is_hex(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return false;
    return true;
}

/* delivered_at is stored as text with second resolution; the same format
 * compares in time order. */
static void format_delivered(int64_t us, char *buf, size_t buflen)
{
    time_t s = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(buf, buflen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

wf_err wf_tracker_admin_select(wf_tracker *t, const wf_admin_query *q, wf_tracker_row **rows, size_t *n,
                               char *errbuf, size_t errlen)
{
    /* Each selection is a fixed statement; what varies is only bound. A key
     * prefix is a range on the primary key: every lower-case hex key that
     * starts with p sorts in [p, p || 'g'). */
    static const char *const where[] = {
        [WF_ADMIN_BY_STATE] = "state = ?1",
        [WF_ADMIN_BY_CREATED_RUN] = "created_run = ?2",
        [WF_ADMIN_DELIVERED_BETWEEN] = "state = 'delivered' AND delivered_at >= ?3 AND (?4 IS NULL OR delivered_at <= ?4)",
        [WF_ADMIN_FAILED_WITH_TICKET] = "state IN ('failed', 'parked') AND jsm_key IS NOT NULL",
        [WF_ADMIN_WITH_TICKET] = "jsm_key IS NOT NULL",
        [WF_ADMIN_KEY_PREFIX] = "key >= ?1 AND key < ?1 || 'g'",
        [WF_ADMIN_SOURCE_ID] = "source_id = ?1",
    };
    char since[32] = "", until[32] = "", sql[512];
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    wf_err err = WF_OK;
    *rows = NULL;
    *n = 0;
    if (q->by == WF_ADMIN_KEY_PREFIX && !is_hex(q->text ? q->text : "")) {
        snprintf(errbuf, errlen, "'%s' is not a submission key prefix (lower-case hex characters)",
                 q->text ? q->text : "");
        return WF_ERR_USAGE;
    }
    format_delivered(q->since_us, since, sizeof since);
    if (q->until_us >= 0) format_delivered(q->until_us, until, sizeof until);
    snprintf(sql, sizeof sql, "SELECT %s FROM submissions WHERE %s ORDER BY source_time_us, key", row_columns,
             where[q->by]);
    sqlite3 *db = wf_tracker_db(t);
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_bind_parameter_count(st) >= 1)
        rc = sqlite3_bind_text(st, 1, q->text ? q->text : "", -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK && sqlite3_bind_parameter_count(st) >= 2) rc = sqlite3_bind_int64(st, 2, q->run_id);
    if (rc == SQLITE_OK && sqlite3_bind_parameter_count(st) >= 3) rc = sqlite3_bind_text(st, 3, since, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK && sqlite3_bind_parameter_count(st) >= 4)
        rc = until[0] ? sqlite3_bind_text(st, 4, until, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 4);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) break;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            wf_tracker_row *grown = realloc(*rows, cap * sizeof *grown);
            if (!grown) { err = WF_ERR_NOMEM; goto out; }
            *rows = grown;
        }
        wf_tracker_row_read(st, &(*rows)[(*n)++]);
    }
    if (rc != SQLITE_DONE) err = sql_fail(t, "selecting submissions", errbuf, errlen);
out:
    sqlite3_finalize(st);
    if (err != WF_OK) {
        wf_tracker_admin_free_rows(*rows, *n);
        *rows = NULL;
        *n = 0;
    }
    return err;
}

wf_err wf_tracker_admin_resolve(wf_tracker *t, const char *spec, wf_tracker_row *row, char *errbuf, size_t errlen)
{
    wf_admin_query q = {.by = WF_ADMIN_KEY_PREFIX, .text = spec, .until_us = -1};
    char lower[WF_KEY_HEX_LEN + 1];
    wf_tracker_row *rows = NULL;
    size_t n = 0;
    wf_err err;
    memset(row, 0, sizeof *row);
    if (strncmp(spec, "id:", 3) == 0) {
        q.by = WF_ADMIN_SOURCE_ID;
        q.text = spec + 3;
    } else {
        size_t len = strlen(spec);
        for (size_t i = 0; i < len && i < sizeof lower - 1; i++)
            lower[i] = (char)(spec[i] >= 'A' && spec[i] <= 'F' ? spec[i] - 'A' + 'a' : spec[i]);
        lower[len < sizeof lower - 1 ? len : sizeof lower - 1] = '\0';
        if (len < 8 || len > WF_KEY_HEX_LEN || !is_hex(lower)) {
            snprintf(errbuf, errlen, "'%s' is not a submission: give a key or a prefix of at least 8 of its hex "
                     "characters (as `wf2jsm status` shows them), or id:<source id>", spec);
            return WF_ERR_USAGE;
        }
        q.text = lower;
    }
    if ((err = wf_tracker_admin_select(t, &q, &rows, &n, errbuf, errlen)) != WF_OK) return err;
    if (n == 1) {
        *row = rows[0];
        free(rows);
        return WF_OK;
    }
    if (n == 0)
        snprintf(errbuf, errlen, "no submission %s in the tracker %s (see `wf2jsm status`)", spec, wf_tracker_path(t));
    else
        snprintf(errbuf, errlen, "%s matches %zu submissions (%.16s..., %.16s...): give more of the key", spec, n,
                 rows[0].key, rows[1].key);
    wf_tracker_admin_free_rows(rows, n);
    return WF_ERR_USAGE;
}

wf_err wf_tracker_admin_requeue(wf_tracker *t, const char *key, bool *changed, char *errbuf, size_t errlen)
{
    int changes = 0;
    /* updated_at_us is the clock of the search settle: while a create that
     * may have landed is younger than SYNC_SEARCH_SETTLE the tick does not
     * look it up yet. Requeueing does not make that create any younger, so
     * such rows keep their time and are looked up on the next tick. */
    wf_err err = write_stmt(t, "requeueing a submission", &changes, errbuf, errlen,
        "UPDATE submissions SET state = CASE WHEN jsm_key IS NULL THEN 'pending' ELSE 'attaching' END, "
        "  attempts = 0, error_class = NULL, last_error = NULL, "
        "  updated_at = CASE WHEN may_exist = 1 AND jsm_key IS NULL THEN updated_at ELSE " NOW_TEXT " END, "
        "  updated_at_us = CASE WHEN may_exist = 1 AND jsm_key IS NULL THEN updated_at_us ELSE ?2 END "
        "WHERE key = ?1 AND state <> 'delivered'",
        "ti", key, wf_now_us());
    *changed = err == WF_OK && changes > 0;
    return err;
}

wf_err wf_tracker_admin_forget_request(wf_tracker *t, const char *key, bool may_exist, char *errbuf, size_t errlen)
{
    sqlite3 *db = wf_tracker_db(t);
    /* The row and its manual fixes change together: a fix that points at a
     * deleted ticket must not stay open after the row forgot that ticket. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return sql_fail(t, "starting a transaction", errbuf, errlen);
    wf_err err = write_stmt(t, "resetting a submission", NULL, errbuf, errlen,
        "UPDATE manual_fixes SET resolved_at = " NOW_TEXT " WHERE key = ?1 AND resolved_at IS NULL", "t", key);
    if (err == WF_OK)
        err = write_stmt(t, "resetting a submission", NULL, errbuf, errlen,
            "UPDATE submissions SET state = 'pending', may_exist = ?2, jsm_key = NULL, jsm_issue_id = NULL, "
            "  attempts = 0, error_class = NULL, last_error = NULL, content_checksum = NULL, created_run = NULL, "
            "  adopted = 0, delivered_at = NULL, updated_at = " NOW_TEXT ", updated_at_us = ?3 WHERE key = ?1",
            "tii", key, (int64_t)may_exist, wf_now_us());
    if (err == WF_OK && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        err = sql_fail(t, "committing a reset", errbuf, errlen);
    if (err != WF_OK) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

wf_err wf_tracker_admin_adopt(wf_tracker *t, const char *key, const char *jsm_key, const char *jsm_issue_id,
                              long run_id, char *errbuf, size_t errlen)
{
    return write_stmt(t, "recording an adopted request", NULL, errbuf, errlen,
        "UPDATE submissions SET state = 'attaching', jsm_key = ?2, jsm_issue_id = ?3, may_exist = 1, adopted = 1, "
        "  attempts = 0, error_class = NULL, last_error = NULL, created_run = ?4, "
        "  updated_at = " NOW_TEXT ", updated_at_us = ?5 WHERE key = ?1",
        "tttii", key, jsm_key, jsm_issue_id, (int64_t)run_id, wf_now_us());
}

wf_err wf_tracker_admin_insert(wf_tracker *t, const char *key, const char *source_id, const char *source_time,
                               int64_t source_time_us, const char *jsm_key, const char *jsm_issue_id,
                               long run_id, bool *inserted, char *errbuf, size_t errlen)
{
    int changes = 0;
    wf_err err = write_stmt(t, "inserting a submission", &changes, errbuf, errlen,
        "INSERT INTO submissions (key, source_id, source_time, source_time_us, state, may_exist, jsm_key, "
        "  jsm_issue_id, adopted, created_run, first_seen_at, updated_at, updated_at_us) "
        "VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 IS NULL THEN 'pending' ELSE 'attaching' END, ?5 IS NOT NULL, ?5, ?6, "
        "  ?5 IS NOT NULL, CASE WHEN ?5 IS NULL THEN NULL ELSE ?7 END, " NOW_TEXT ", " NOW_TEXT ", ?8) "
        "ON CONFLICT (key) DO NOTHING",
        "tttittii", key, source_id, source_time, source_time_us, jsm_key, jsm_issue_id, (int64_t)run_id, wf_now_us());
    *inserted = err == WF_OK && changes > 0;
    return err;
}

wf_err wf_tracker_admin_reattach(wf_tracker *t, const char *key, char *errbuf, size_t errlen)
{
    return write_stmt(t, "requeueing attachments", NULL, errbuf, errlen,
        "UPDATE submissions SET state = 'attaching', attempts = 0, updated_at = " NOW_TEXT ", updated_at_us = ?2 "
        "WHERE key = ?1 AND jsm_key IS NOT NULL",
        "ti", key, wf_now_us());
}

wf_err wf_tracker_admin_set_checksum(wf_tracker *t, const char *key, const char *checksum, char *errbuf, size_t errlen)
{
    return write_stmt(t, "storing a content checksum", NULL, errbuf, errlen,
        "UPDATE submissions SET content_checksum = ?2, updated_at = " NOW_TEXT ", updated_at_us = ?3 WHERE key = ?1",
        "tti", key, checksum, wf_now_us());
}

wf_err wf_tracker_admin_fix_is_open(wf_tracker *t, const char *key, const char *field_id, const char *value,
                                    bool *open, char *errbuf, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(wf_tracker_db(t),
        "SELECT 1 FROM manual_fixes WHERE key = ?1 AND field_id = ?2 AND value IS ?3 AND resolved_at IS NULL",
        -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 2, field_id, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK) rc = value ? sqlite3_bind_text(st, 3, value, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, 3);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    *open = rc == SQLITE_ROW;
    wf_err err = rc == SQLITE_ROW || rc == SQLITE_DONE ? WF_OK : sql_fail(t, "reading the manual fixes", errbuf, errlen);
    sqlite3_finalize(st);
    return err;
}

wf_err wf_tracker_admin_run_exists(wf_tracker *t, long run_id, bool *exists, char *errbuf, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(wf_tracker_db(t), "SELECT 1 FROM runs WHERE id = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 1, run_id);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    *exists = rc == SQLITE_ROW;
    wf_err err = rc == SQLITE_ROW || rc == SQLITE_DONE ? WF_OK : sql_fail(t, "reading the runs", errbuf, errlen);
    sqlite3_finalize(st);
    return err;
}

/* ---- backup --------------------------------------------------------------- */

/* Creates path's backups directory beside the tracker and an empty, owner-only
 * file in it named after the current UTC second; a second backup within the
 * same second gets a -2, -3... suffix instead of overwriting the first. */
static wf_err create_backup_file(const char *tracker_path, char *path, size_t pathlen, char *errbuf, size_t errlen)
{
    char dir[4096], stamp[32];
    const char *slash = strrchr(tracker_path, '/');
    if (slash) snprintf(dir, sizeof dir, "%.*s/backups", (int)(slash - tracker_path), tracker_path);
    else snprintf(dir, sizeof dir, "backups");
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
        if (i == 1) snprintf(path, pathlen, "%s/tracker-%s.db", dir, stamp);
        else snprintf(path, pathlen, "%s/tracker-%s-%d.db", dir, stamp, i);
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

wf_err wf_tracker_admin_backup(wf_tracker *t, char *path, size_t pathlen, char *errbuf, size_t errlen)
{
    sqlite3 *dest = NULL;
    sqlite3_backup *bk = NULL;
    wf_err err = create_backup_file(wf_tracker_path(t), path, pathlen, errbuf, errlen);
    if (err != WF_OK) return err;
    int rc = sqlite3_open_v2(path, &dest, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK) {
        bk = sqlite3_backup_init(dest, "main", wf_tracker_db(t), "main");
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
                 wf_tracker_path(t), path, dest ? sqlite3_errmsg(dest) : sqlite3_errstr(rc));
        err = WF_ERR_TRACKER;
    }
    sqlite3_close(dest);
    if (err != WF_OK) unlink(path);
    return err;
}

/* ---- audit trail ---------------------------------------------------------- */

struct wf_audit {
    int fd;
    char *command;
    char *user;
    char *path;
};

static char *current_user(void)
{
    const char *env = getenv("USER");
    if (env && *env) return strdup(env);
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &found) == 0 && found) return strdup(found->pw_name);
    char uid[32];
    snprintf(uid, sizeof uid, "uid:%ld", (long)geteuid());
    return strdup(uid);
}

void wf_audit_close(wf_audit *audit)
{
    if (!audit) return;
    if (audit->fd >= 0) close(audit->fd);
    free(audit->command);
    free(audit->user);
    free(audit->path);
    free(audit);
}

wf_err wf_audit_open(const char *log_dir, const char *command, wf_audit **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    wf_audit *a = calloc(1, sizeof *a);
    if (!a) return WF_ERR_NOMEM;
    a->fd = -1;
    size_t len = strlen(log_dir) + sizeof "/audit.jsonl";
    a->path = malloc(len);
    a->command = strdup(command);
    a->user = current_user();
    if (!a->path || !a->command || !a->user) {
        wf_audit_close(a);
        return WF_ERR_NOMEM;
    }
    snprintf(a->path, len, "%s/audit.jsonl", log_dir);
    if (mkdir(log_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(errbuf, errlen, "cannot create the log directory %s: %s (set SYNC_LOG_DIR to a writable directory)",
                 log_dir, strerror(errno));
        wf_audit_close(a);
        return WF_ERR_FILE;
    }
    a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        snprintf(errbuf, errlen, "cannot open the audit trail %s: %s (make it writable by this user, or set "
                 "SYNC_LOG_DIR)", a->path, strerror(errno));
        wf_audit_close(a);
        return WF_ERR_FILE;
    }
    *out = a;
    return WF_OK;
}

static void add_nullable(cJSON *obj, const char *name, const char *value)
{
    if (value) cJSON_AddStringToObject(obj, name, value);
    else cJSON_AddNullToObject(obj, name);
}

wf_err wf_audit_write(wf_audit *audit, const char *jsm_key, const char *submission_key, const char *action,
                      const char *result, char *errbuf, size_t errlen)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *line = cJSON_CreateObject();
    char *text = NULL;
    wf_err err = WF_ERR_NOMEM;
    if (!line) return err;
    cJSON_AddStringToObject(line, "time", stamp);
    cJSON_AddStringToObject(line, "command", audit->command);
    cJSON_AddStringToObject(line, "user", audit->user);
    add_nullable(line, "jsm_key", jsm_key);
    add_nullable(line, "submission_key", submission_key);
    cJSON_AddStringToObject(line, "action", action);
    add_nullable(line, "result", result);
    text = cJSON_PrintUnformatted(line);
    if (text) {
        size_t len = strlen(text);
        char *buf = malloc(len + 2);
        if (buf) {
            memcpy(buf, text, len);
            buf[len] = '\n';
            /* One write per line: with O_APPEND, lines from concurrent
             * writers land whole, one after another. */
            ssize_t wrote = write(audit->fd, buf, len + 1);
            err = wrote == (ssize_t)(len + 1) ? WF_OK : WF_ERR_FILE;
            if (err != WF_OK)
                snprintf(errbuf, errlen, "cannot append to the audit trail %s: %s (check free space and its "
                         "permissions)", audit->path, wrote < 0 ? strerror(errno) : "short write");
            free(buf);
        }
    }
    free(text);
    cJSON_Delete(line);
    return err;
}
