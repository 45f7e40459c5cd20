/* tracker.h: the SQLite tracker, the job's durable memory.
 *
 * One row per submission key with its delivery state, one row per run, the
 * manual-fix list and a small meta table. Every record_* call is its own
 * committed transaction, because the tracker must say what happened up to
 * the last step even if the process is killed right after it (WAL mode,
 * synchronous=FULL, busy_timeout). The schema is versioned with
 * PRAGMA user_version and migrated on open from setup/migrations. */
#ifndef WF_TRACKER_H
#define WF_TRACKER_H

#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "errors.h"
#include "run_stats.h"

typedef struct wf_tracker wf_tracker;
struct sqlite3;
struct sqlite3_stmt;

typedef struct wf_tracker_row {
    char key[65];
    char state[12];
    char *source_id;
    char *source_time;
    int64_t source_time_us;
    bool may_exist;
    char *jsm_key;
    char *jsm_issue_id;
    int attempts;
    long last_run;
    long created_run;
    int64_t updated_at_us;
    char *error_class;
    char *last_error;
    char *content_checksum;
    char *delivered_at;
} wf_tracker_row;

/* Opens (creating 0600 when missing, with its directory 0700) and migrates
 * the tracker at path. Returns WF_ERR_TRACKER with errbuf naming the file
 * and the fix when it cannot be opened, is read-only, locked by another
 * process beyond the busy timeout, or newer than this binary. Close with
 * wf_tracker_close(). */
wf_err wf_tracker_open(const char *path, wf_tracker **out, char *errbuf, size_t errlen);

/* Closes the tracker. NULL is allowed. */
void wf_tracker_close(wf_tracker *t);

/* The message of the last failed call, naming the file. Owned by t. */
const char *wf_tracker_errmsg(const wf_tracker *t);

/* The file this tracker was opened from. Owned by t. */
const char *wf_tracker_path(const wf_tracker *t);

/* The columns, in order, that wf_tracker_row_read() expects from a query
 * on the submissions table. */
#define WF_TRACKER_ROW_COLUMNS \
    "key, state, source_id, source_time, source_time_us, may_exist, jsm_key, jsm_issue_id, attempts, " \
    "last_run, created_run, updated_at_us, error_class, last_error, content_checksum, delivered_at"

/* Fills row from the current result of st, a query selecting
 * WF_TRACKER_ROW_COLUMNS. The strings are copies: free with
 * wf_tracker_row_free(). Never fails (a failed copy leaves NULL). */
void wf_tracker_row_read(struct sqlite3_stmt *st, wf_tracker_row *row);

/* Binds the variadic arguments ap to st's parameters 1..n as types says:
 * 't' text (NULL binds SQL NULL), 'i' int64_t, 'b' int. Returns SQLite's
 * result code (SQLITE_MISUSE for an unknown type letter). Shared by the
 * modules that write the tracker, so that there is one binder. */
int wf_tracker_bind(struct sqlite3_stmt *st, const char *types, va_list ap);

/* Looks up key. *found is false when the key is unknown (row untouched).
 * On success with *found, free the row with wf_tracker_row_free(). */
wf_err wf_tracker_get(wf_tracker *t, const char *key, wf_tracker_row *row, bool *found);
void wf_tracker_row_free(wf_tracker_row *row);

/* Intent before effect: commits that key is about to be created in JSM
 * (state creating, may_exist 1), inserting the row on first sight. */
wf_err wf_tracker_record_intent(wf_tracker *t, const char *key, const char *source_id,
                                const char *source_time, int64_t source_time_us, long run_id);

/* The create call definitely did not reach JSM (400, 401, 429...): puts
 * back may_exist as it was before the intent, state pending. */
wf_err wf_tracker_record_not_sent(wf_tracker *t, const char *key, bool may_exist_before);

/* The request exists in JSM as jsm_key (created, or adopted after a crash
 * when adopted is true); state created, or attaching when the attachments
 * must be listed before uploading (adoption). */
wf_err wf_tracker_record_created(wf_tracker *t, const char *key, const char *jsm_key,
                                 const char *jsm_issue_id, long run_id, bool adopted);

/* An attach call may be in flight: recovery must list before uploading. */
wf_err wf_tracker_record_attaching(wf_tracker *t, const char *key);

/* Done: the request and all its attachments exist. checksum may be NULL. */
wf_err wf_tracker_record_delivered(wf_tracker *t, const char *key, const char *checksum);

/* A failed attempt: attempts+1, the error and its class; state parked when
 * park is true, else failed. may_exist says whether a create may have
 * reached JSM. */
wf_err wf_tracker_record_failure(wf_tracker *t, const char *key, const char *error_class,
                                 const char *message, bool may_exist, bool park);

/* Appends a manual-fix entry. jsm_key and value may be NULL. */
wf_err wf_tracker_add_manual_fix(wf_tracker *t, const char *key, const char *jsm_key,
                                 const char *field_id, const char *value, const char *message);

/* The cursor: the newest source time the tracker knows. *has_cursor is
 * false on an empty tracker. */
wf_err wf_tracker_cursor(wf_tracker *t, int64_t *cursor_us, bool *has_cursor);

/* Number of known rows with from_us <= source_time_us (<= to_us when
 * to_us >= 0). */
wf_err wf_tracker_count_between(wf_tracker *t, int64_t from_us, int64_t to_us, long *count);

/* Source times of rows that still need work and are older than before_us:
 * failed (not parked), or stuck between intent and delivery. Allocates
 * *times (caller frees); *n may be 0. Rows touched by run skip_run are left
 * out so a run works on each row at most once. */
wf_err wf_tracker_retry_times(wf_tracker *t, int64_t before_us, long skip_run,
                              int64_t **times, size_t *n);

/* Runs: begin inserts a row and returns its id; finish stores the figures. */
wf_err wf_tracker_run_begin(wf_tracker *t, const char *command, long *run_id);
wf_err wf_tracker_run_finish(wf_tracker *t, long run_id, const wf_run_stats *stats,
                             int exit_code, const char *error);

/* Small named values. get returns NULL in *value when unset; caller frees. */
wf_err wf_tracker_meta_get(wf_tracker *t, const char *name, char **value);
wf_err wf_tracker_meta_set(wf_tracker *t, const char *name, const char *value);

/* Makes the calls up to wf_tracker_commit() one transaction (BEGIN
 * IMMEDIATE): all of their writes land, or none. For bulk writes that must
 * not be seen half done, such as a rebuild from JSM. Returns WF_ERR_TRACKER
 * (errmsg names the file) when the tracker cannot be locked for writing;
 * after a failed commit, call wf_tracker_rollback(). Rollback never fails
 * and is a no-op outside a transaction. */
wf_err wf_tracker_begin(wf_tracker *t);
wf_err wf_tracker_commit(wf_tracker *t);
void wf_tracker_rollback(wf_tracker *t);

/* The raw handle, for the read-only reports of the operator commands
 * (status, rollback's listing). Owned by t. */
struct sqlite3 *wf_tracker_db(wf_tracker *t);

/* Current time in microseconds (UTC), the clock used for updated_at_us. */
int64_t wf_now_us(void);

/* The customer cache (issue 12): address -> accountId of a customer of
 * service desk desk_id. email is the lower-cased address. get sets
 * *account_id to a copy (caller frees) or NULL when the address is not
 * cached. put inserts or replaces; forget deletes (JSM refused the cached
 * account). All return WF_ERR_TRACKER with wf_tracker_errmsg() set on
 * failure. */
wf_err wf_tracker_customer_get(wf_tracker *t, const char *desk_id, const char *email, char **account_id);
wf_err wf_tracker_customer_put(wf_tracker *t, const char *desk_id, const char *email, const char *account_id);
wf_err wf_tracker_customer_forget(wf_tracker *t, const char *desk_id, const char *email);

#endif
