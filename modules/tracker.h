/* tracker.h: the tracker, the job's durable memory, behind one interface.
 *
 * One row per submission key with its delivery state, one row per run, the
 * manual-fix list and a small meta table. Every record_* call is its own
 * committed transaction, because the tracker must say what happened up to
 * the last step even if the process is killed right after it.
 *
 * Two backends keep it (see tracker_backend.h): SQLite, the default, when
 * SYNC_TRACKER_DB is a file path (WAL mode, synchronous=FULL, busy_timeout,
 * schema versioned with PRAGMA user_version, migrations from
 * setup/migrations); PostgreSQL when it is a postgresql:// or postgres://
 * URL (schema wf2jsm, versioned in wf2jsm.schema_version, migrations from
 * setup/migrations/pg), so that several hosts can share one tracker. This
 * header names no type of either. */
#ifndef WF_TRACKER_H
#define WF_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "errors.h"
#include "run_stats.h"

typedef struct wf_tracker wf_tracker;

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
    char *updated_at;          /* UTC, second resolution, as stored */
} wf_tracker_row;

/* Opens and migrates the tracker at path: a PostgreSQL URL (see
 * wf_tracker_target_is_pg()) connects to that database and keeps the
 * tracker in its schema wf2jsm; anything else is a SQLite file, created
 * 0600 when missing with its directory 0700. Returns WF_ERR_TRACKER with
 * errbuf naming the tracker (never its password) and the fix when it
 * cannot be opened, is read-only, locked by another process beyond the busy
 * timeout, or newer than this binary; WF_ERR_CONFIG naming SYNC_TRACKER_DB
 * when a PostgreSQL URL cannot be parsed; WF_ERR_NOMEM. Close with
 * wf_tracker_close(). */
wf_err wf_tracker_open(const char *path, wf_tracker **out, char *errbuf, size_t errlen);

/* Closes the tracker. NULL is allowed. */
void wf_tracker_close(wf_tracker *t);

/* The message of the last failed call, naming the tracker. Owned by t. */
const char *wf_tracker_errmsg(const wf_tracker *t);

/* What messages call the tracker: the file it was opened from, or the
 * PostgreSQL URL without its password. Owned by t. Never fails. */
const char *wf_tracker_path(const wf_tracker *t);

/* "sqlite" or "postgresql". Static. Never fails. */
const char *wf_tracker_kind(const wf_tracker *t);

/* True when target (SYNC_TRACKER_DB) names a PostgreSQL tracker: it starts
 * with postgresql:// or postgres://. Never fails. */
bool wf_tracker_target_is_pg(const char *target);

/* The password a PostgreSQL target carries, for the log's redaction list;
 * NULL when there is none, it is not a PostgreSQL target, or memory ran
 * out. Caller frees. */
char *wf_tracker_target_password(const char *target);

/* Looks up key. *found is false when the key is unknown (row untouched).
 * On success with *found, free the row with wf_tracker_row_free(). */
wf_err wf_tracker_get(wf_tracker *t, const char *key, wf_tracker_row *row, bool *found);
void wf_tracker_row_free(wf_tracker_row *row);

/* Reads every row whose source time is in [from_us, to_us] (to_us < 0:
 * no upper bound) in one query and keeps them, so that the tick's
 * wf_tracker_get() of each row of its window costs no round trip (with a
 * PostgreSQL tracker, one per row otherwise). A key not among them is still
 * looked up in the tracker. The copy is dropped by the first write through
 * t, so it never answers with a state older than the tracker's own while
 * this process holds the run lock; without it (status) it is a snapshot of
 * the moment of the read, as a report is anyway. Returns
 * WF_ERR_TRACKER or WF_ERR_NOMEM (then nothing is kept, which is only
 * slower). */
wf_err wf_tracker_prefetch(wf_tracker *t, int64_t from_us, int64_t to_us);

/* Among the rows of the last wf_tracker_prefetch() only, the one recorded
 * for the source row with source_id and source_time (the texts the intent
 * recorded); *found is false when there is none, or more than one (keys of
 * two schemes), and the tracker is never asked. With *found, free the row
 * with wf_tracker_row_free(). Returns WF_ERR_NOMEM. */
wf_err wf_tracker_get_prefetched_by_source(wf_tracker *t, const char *source_id, const char *source_time,
                                           wf_tracker_row *row, bool *found);

/* Gives t the key scheme (see wf_key_scheme()) of the keys this process
 * computes. Before the process's first new submission row, t compares it
 * with the scheme recorded in its meta table: a tracker without one takes
 * it, one with another is marked "mixed" for good. Copies scheme; returns
 * WF_ERR_NOMEM. */
wf_err wf_tracker_set_key_scheme(wf_tracker *t, const char *scheme);

/* True when every key in t was computed with the scheme set above: its
 * meta table records that scheme, and no other was ever mixed in. One
 * read of the meta table; a failed read is false. */
bool wf_tracker_keys_follow_scheme(wf_tracker *t);

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

/* Makes the calls up to wf_tracker_commit() one transaction (SQLite: BEGIN
 * IMMEDIATE; PostgreSQL: BEGIN): all of their writes land, or none. For
 * bulk writes that must not be seen half done, such as a rebuild from JSM.
 * Returns WF_ERR_TRACKER (errmsg names the tracker) when the tracker cannot
 * be locked for writing; after a failed commit, call wf_tracker_rollback().
 * Rollback never fails and is a no-op outside a transaction. */
wf_err wf_tracker_begin(wf_tracker *t);
wf_err wf_tracker_commit(wf_tracker *t);
void wf_tracker_rollback(wf_tracker *t);

/* ---- reports (status, check, metrics) ----------------------------------
 * Read-only; each returns WF_ERR_TRACKER (wf_tracker_errmsg() says why) or
 * WF_ERR_NOMEM, and on error leaves nothing to free. */

#define WF_TRACKER_NSTATES 7
/* pending, creating, created, attaching, delivered, failed, parked */
extern const char *const wf_tracker_states[WF_TRACKER_NSTATES];

/* Rows per state, in the order of wf_tracker_states. */
wf_err wf_tracker_count_states(wf_tracker *t, long counts[WF_TRACKER_NSTATES]);

/* Rows that still need work: pending, creating, created, attaching, failed
 * (parked rows wait for a human). */
wf_err wf_tracker_count_open(wf_tracker *t, long *count);

/* The newest row's source time, as text (caller frees) and in
 * microseconds. *found is false on an empty tracker (*source_time NULL). */
wf_err wf_tracker_newest(wf_tracker *t, char **source_time, int64_t *source_time_us, bool *found);

typedef struct wf_tracker_run {
    long id;
    char *command, *started_at, *finished_at;   /* finished_at NULL while running or killed */
    bool has_exit_code;
    int exit_code;
    long seen, created, adopted, delivered, failed, parked, attachments_uploaded, attachments_failed,
         retries, http_429, manual_fixes, duration_ms;
    char *error;
    /* what the run's concurrency did (issue 11) */
    long http_requests, peak_in_flight, garbled, lookups, lookup_calls;
} wf_tracker_run;

/* The limit newest runs, newest first. Free with wf_tracker_runs_free(). */
wf_err wf_tracker_recent_runs(wf_tracker *t, int limit, wf_tracker_run **runs, size_t *n);
void wf_tracker_runs_free(wf_tracker_run *runs, size_t n);

/* Parked, then failed rows, oldest update first, at most limit. Free with
 * wf_tracker_rows_free(). */
wf_err wf_tracker_problems(wf_tracker *t, int limit, wf_tracker_row **rows, size_t *n);
void wf_tracker_rows_free(wf_tracker_row *rows, size_t n);

typedef struct wf_tracker_fix {
    long id;
    char *key, *jsm_key, *field_id, *value, *message, *created_at;   /* jsm_key, value may be NULL */
} wf_tracker_fix;

/* Unresolved manual fixes, oldest first, at most limit. Free with
 * wf_tracker_fixes_free(). */
wf_err wf_tracker_open_fixes(wf_tracker *t, int limit, wf_tracker_fix **fixes, size_t *n);
void wf_tracker_fixes_free(wf_tracker_fix *fixes, size_t n);

/* The field ids of every manual fix of key (resolved or not): the fields
 * JSM refused at delivery. *ids is an array of *n strings; free with
 * wf_tracker_strings_free(). */
wf_err wf_tracker_fix_fields(wf_tracker *t, const char *key, char ***ids, size_t *n);
void wf_tracker_strings_free(char **strings, size_t n);

/* Delivered rows that carry a content checksum: their number in *total,
 * and the keys and source times of the newest limit of them in keys[] and
 * times[] (caller's arrays of limit entries; *n filled). */
wf_err wf_tracker_newest_delivered(wf_tracker *t, size_t limit, char (*keys)[65], int64_t *times, size_t *n,
                                   long *total);

typedef struct wf_tracker_totals {
    long failed, parked, http_429, http_requests, garbled;   /* sums over all runs */
    int64_t last_success_s;          /* end of the newest sync/replay run that exited 0; 0: never */
} wf_tracker_totals;

wf_err wf_tracker_run_totals(wf_tracker *t, wf_tracker_totals *out);

/* Checks that this user can write the tracker now (a write transaction is
 * started and rolled back). Returns WF_ERR_TRACKER with errbuf saying why
 * (read-only file or server, missing privilege, held lock). */
wf_err wf_tracker_probe_writable(wf_tracker *t, char *errbuf, size_t errlen);

/* For lock.c: tries to take, without waiting, the PostgreSQL
 * session-level advisory lock that serialises runs on this tracker; it is
 * released when the connection closes (wf_tracker_close(), or the process
 * dying). *got is false when another session holds it; holder then
 * describes that session (pid, client address, since when) when the
 * server shows it. Returns WF_ERR_USAGE for a SQLite tracker (which uses a
 * lock file), WF_ERR_TRACKER on a query failure. */
wf_err wf_tracker_try_lock(wf_tracker *t, bool *got, char *holder, size_t holderlen);

/* For `check`: whether another session holds that advisory lock now, and
 * which (as above), without taking it. Returns WF_ERR_USAGE for a SQLite
 * tracker; never fails otherwise (a holder the server does not show reads
 * as free). */
wf_err wf_tracker_lock_holder(wf_tracker *t, bool *held, char *holder, size_t holderlen);

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
