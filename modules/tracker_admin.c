/* tracker_admin.c: hand-made state changes, tracker backups and the audit
 * trail, on either tracker backend (the statements are the backend's). */
#define _POSIX_C_SOURCE 200809L
#include "tracker_admin.h"
#include "tracker_backend.h"
#include "unique_key.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Copies the backend's message into errbuf. */
static wf_err failed(wf_tracker *t, wf_err err, char *errbuf, size_t errlen)
{
    if (err != WF_OK) snprintf(errbuf, errlen, "%s", wf_tracker_errmsg(t));
    return err;
}

void wf_tracker_admin_free_rows(wf_tracker_row *rows, size_t n)
{
    wf_tracker_rows_free(rows, n);
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
    /* Each selection is a fixed statement of the backend; what varies is
     * only bound. */
    static const char doing[] = "selecting submissions";
    char since[32] = "", until[32] = "";
    const char *text = q->text ? q->text : "";
    wf_err err;
    *rows = NULL;
    *n = 0;
    if (q->by == WF_ADMIN_KEY_PREFIX && !is_hex(text)) {
        snprintf(errbuf, errlen, "'%s' is not a submission key prefix (lower-case hex characters)", text);
        return WF_ERR_USAGE;
    }
    switch (q->by) {
    case WF_ADMIN_BY_STATE: err = wf_tracker_sql_select(t, WF_SQL_SELECT_BY_STATE, doing, rows, n, "t", text); break;
    case WF_ADMIN_BY_CREATED_RUN:
        err = wf_tracker_sql_select(t, WF_SQL_SELECT_BY_CREATED_RUN, doing, rows, n, "i", (int64_t)q->run_id);
        break;
    case WF_ADMIN_DELIVERED_BETWEEN:
        format_delivered(q->since_us, since, sizeof since);
        if (q->until_us >= 0) format_delivered(q->until_us, until, sizeof until);
        err = wf_tracker_sql_select(t, WF_SQL_SELECT_DELIVERED_BETWEEN, doing, rows, n, "tt", since,
                                    until[0] ? until : NULL);
        break;
    case WF_ADMIN_FAILED_WITH_TICKET: err = wf_tracker_sql_select(t, WF_SQL_SELECT_FAILED_WITH_TICKET, doing, rows, n, ""); break;
    case WF_ADMIN_WITH_TICKET: err = wf_tracker_sql_select(t, WF_SQL_SELECT_WITH_TICKET, doing, rows, n, ""); break;
    case WF_ADMIN_KEY_PREFIX: err = wf_tracker_sql_select(t, WF_SQL_SELECT_KEY_PREFIX, doing, rows, n, "t", text); break;
    case WF_ADMIN_SOURCE_ID: err = wf_tracker_sql_select(t, WF_SQL_SELECT_SOURCE_ID, doing, rows, n, "t", text); break;
    default:
        snprintf(errbuf, errlen, "unknown selection %d", (int)q->by);
        return WF_ERR_USAGE;
    }
    return failed(t, err, errbuf, errlen);
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
    long changes = 0;
    /* updated_at_us is the clock of the search settle: while a create that
     * may have landed is younger than SYNC_SEARCH_SETTLE the tick does not
     * look it up yet. Requeueing does not make that create any younger, so
     * such rows keep their time and are looked up on the next tick. */
    wf_err err = wf_tracker_sql_write(t, WF_SQL_REQUEUE, "requeueing a submission", &changes, "ti", key, wf_now_us());
    *changed = err == WF_OK && changes > 0;
    return failed(t, err, errbuf, errlen);
}

wf_err wf_tracker_admin_forget_request(wf_tracker *t, const char *key, bool may_exist, char *errbuf, size_t errlen)
{
    /* The row and its manual fixes change together: a fix that points at a
     * deleted ticket must not stay open after the row forgot that ticket. */
    wf_err err = wf_tracker_sql_write(t, WF_SQL_BEGIN, "starting a transaction", NULL, "");
    if (err != WF_OK) return failed(t, err, errbuf, errlen);
    err = wf_tracker_sql_write(t, WF_SQL_RESOLVE_FIXES, "resetting a submission", NULL, "t", key);
    if (err == WF_OK)
        err = wf_tracker_sql_write(t, WF_SQL_FORGET, "resetting a submission", NULL, "tii", key, (int64_t)may_exist,
                                   wf_now_us());
    if (err == WF_OK) err = wf_tracker_sql_write(t, WF_SQL_COMMIT, "committing a reset", NULL, "");
    if (err != WF_OK) {
        failed(t, err, errbuf, errlen);
        wf_tracker_sql_write(t, WF_SQL_ROLLBACK, "rolling back a reset", NULL, "");
    }
    return err;
}

wf_err wf_tracker_admin_adopt(wf_tracker *t, const char *key, const char *jsm_key, const char *jsm_issue_id,
                              long run_id, char *errbuf, size_t errlen)
{
    return failed(t, wf_tracker_sql_write(t, WF_SQL_ADOPT, "recording an adopted request", NULL, "tttii", key, jsm_key,
                                          jsm_issue_id, (int64_t)run_id, wf_now_us()), errbuf, errlen);
}

wf_err wf_tracker_admin_insert(wf_tracker *t, const char *key, const char *source_id, const char *source_time,
                               int64_t source_time_us, const char *jsm_key, const char *jsm_issue_id,
                               long run_id, bool *inserted, char *errbuf, size_t errlen)
{
    long changes = 0;
    wf_err err = wf_tracker_sql_write(t, WF_SQL_INSERT, "inserting a submission", &changes, "tttittii", key, source_id,
                                      source_time, source_time_us, jsm_key, jsm_issue_id, (int64_t)run_id, wf_now_us());
    *inserted = err == WF_OK && changes > 0;
    return failed(t, err, errbuf, errlen);
}

wf_err wf_tracker_admin_reattach(wf_tracker *t, const char *key, char *errbuf, size_t errlen)
{
    return failed(t, wf_tracker_sql_write(t, WF_SQL_REATTACH, "requeueing attachments", NULL, "ti", key, wf_now_us()),
                  errbuf, errlen);
}

wf_err wf_tracker_admin_set_checksum(wf_tracker *t, const char *key, const char *checksum, char *errbuf, size_t errlen)
{
    return failed(t, wf_tracker_sql_write(t, WF_SQL_SET_CHECKSUM, "storing a content checksum", NULL, "tti", key,
                                          checksum, wf_now_us()), errbuf, errlen);
}

wf_err wf_tracker_admin_fix_is_open(wf_tracker *t, const char *key, const char *field_id, const char *value,
                                    bool *open, char *errbuf, size_t errlen)
{
    return failed(t, wf_tracker_sql_exists(t, WF_SQL_FIX_IS_OPEN, "reading the manual fixes", open, "ttt", key,
                                           field_id, value), errbuf, errlen);
}

wf_err wf_tracker_admin_run_exists(wf_tracker *t, long run_id, bool *exists, char *errbuf, size_t errlen)
{
    return failed(t, wf_tracker_sql_exists(t, WF_SQL_RUN_EXISTS, "reading the runs", exists, "i", (int64_t)run_id),
                  errbuf, errlen);
}

/* ---- backup --------------------------------------------------------------- */

wf_err wf_tracker_admin_backup(wf_tracker *t, char *path, size_t pathlen, char *errbuf, size_t errlen)
{
    return t->be->backup(t, path, pathlen, errbuf, errlen);
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
