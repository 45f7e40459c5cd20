/* tracker_backend.h: the private contract between the tracker interface
 * (tracker.c, tracker_admin.c) and its storage backends (tracker_sqlite.c,
 * tracker_pg.c). Nothing outside those files includes it.
 *
 * The tracker's logic (which statement runs at which step, in which
 * transaction, how rows become structs) is written once, in tracker.c and
 * tracker_admin.c, against the numbered statements below. A backend supplies
 * the text of every statement in its own SQL dialect, a way to run one with
 * typed parameters (always bound, never spliced into the text), and the few
 * things that cannot be said in SQL alike: opening and migrating, the online
 * backup, the cross-process lock and a writability probe. Like SQLite's VFS,
 * adding a backend is adding one such table of functions. */
#ifndef WF_TRACKER_BACKEND_H
#define WF_TRACKER_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tracker.h"

/* Every statement the tracker runs. Parameters are numbered ?1/$1...; the
 * comments give their types in order (t text or NULL, i int64). */
typedef enum {
    WF_SQL_BEGIN,                 /* a write transaction */
    WF_SQL_COMMIT,
    WF_SQL_ROLLBACK,
    WF_SQL_RELAXED_DURABILITY,    /* optional (NULL text: skipped): cheaper commits for the runs table */
    WF_SQL_FULL_DURABILITY,       /* optional: back to full durability */
    WF_SQL_GET,                   /* t key -> row columns */
    WF_SQL_INTENT,                /* t key, t source_id, t source_time, i source_time_us, i run, i now_us */
    WF_SQL_NOT_SENT,              /* t key, i may_exist, i now_us */
    WF_SQL_CREATED,               /* t key, t jsm_key, t issue_id, t state, i run, i adopted, i now_us */
    WF_SQL_ATTACHING,             /* t key, i now_us */
    WF_SQL_DELIVERED,             /* t key, t checksum, i now_us */
    WF_SQL_FAILURE,               /* t key, t state, t class, t message, i may_exist, i now_us */
    WF_SQL_ADD_FIX,               /* t key, t jsm_key, t field_id, t value, t message */
    WF_SQL_CURSOR,                /* -> max(source_time_us) or NULL */
    WF_SQL_COUNT_BETWEEN,         /* i from, i to (<0: open) -> count */
    WF_SQL_RETRY_TIMES,           /* i before_us, i skip_run -> source_time_us... */
    WF_SQL_RUN_BEGIN,             /* t command -> id */
    WF_SQL_RUN_FINISH,            /* i id, i exit, i x12 figures, t error */
    WF_SQL_META_GET,              /* t name -> value */
    WF_SQL_META_SET,              /* t name, t value */
    /* tracker_admin.c */
    WF_SQL_SELECT_BY_STATE,       /* t state -> row columns */
    WF_SQL_SELECT_BY_CREATED_RUN, /* i run */
    WF_SQL_SELECT_DELIVERED_BETWEEN, /* t since, t until or NULL */
    WF_SQL_SELECT_FAILED_WITH_TICKET,
    WF_SQL_SELECT_WITH_TICKET,
    WF_SQL_SELECT_KEY_PREFIX,     /* t lower-case hex prefix */
    WF_SQL_SELECT_SOURCE_ID,      /* t source id */
    WF_SQL_REQUEUE,               /* t key, i now_us */
    WF_SQL_RESOLVE_FIXES,         /* t key */
    WF_SQL_FORGET,                /* t key, i may_exist, i now_us */
    WF_SQL_ADOPT,                 /* t key, t jsm_key, t issue_id, i run, i now_us */
    WF_SQL_INSERT,                /* t key, t source_id, t source_time, i source_time_us, t jsm_key, t issue_id, i run, i now_us */
    WF_SQL_REATTACH,              /* t key, i now_us */
    WF_SQL_SET_CHECKSUM,          /* t key, t checksum, i now_us */
    WF_SQL_FIX_IS_OPEN,           /* t key, t field_id, t value or NULL -> 1 */
    WF_SQL_RUN_EXISTS,            /* i run -> 1 */
    /* the reports of status, check and metrics */
    WF_SQL_STATE_COUNTS,          /* -> state, count */
    WF_SQL_NEWEST,                /* -> source_time, source_time_us of the newest row */
    WF_SQL_RECENT_RUNS,           /* i limit -> runs columns */
    WF_SQL_PROBLEMS,              /* i limit -> row columns */
    WF_SQL_OPEN_FIXES,            /* i limit -> manual_fixes columns */
    WF_SQL_DELIVERED_WITH_CHECKSUM, /* -> count */
    WF_SQL_NEWEST_DELIVERED,      /* i limit -> key, source_time_us */
    WF_SQL_FIX_FIELDS,            /* t key -> field_id */
    WF_SQL_RUN_TOTALS,            /* -> failed, parked, http_429 sums */
    WF_SQL_LAST_SUCCESS,          /* -> unix seconds of the newest successful sync/replay */
    WF_SQL_OPEN_COUNT,            /* -> count of rows that still need work */
    WF_SQL_WINDOW_ROWS,           /* i from_us, i to_us (<0: open) -> row columns */
    /* the customer cache (issue 12) */
    WF_SQL_CUSTOMER_GET,          /* t desk_id, t email -> account_id */
    WF_SQL_CUSTOMER_PUT,          /* t desk_id, t email, t account_id */
    WF_SQL_CUSTOMER_FORGET,       /* t desk_id, t email */
    WF_SQL_COUNT_
} wf_sql;

/* The most parameters one statement takes. */
#define WF_SQL_MAX_ARGS 32

/* One bound parameter: type 't' (text, NULL for SQL NULL) or 'i' (int64). */
typedef struct wf_sql_arg {
    char type;
    const char *text;
    int64_t num;
} wf_sql_arg;

/* A result row as the backend holds it; read it with the column functions
 * of the backend that produced it (see wf_tracker_col_*() in tracker.c). */
typedef struct wf_sql_cols wf_sql_cols;

/* Called once per result row; returns WF_OK to go on, anything else stops
 * the statement and is returned by run(). */
typedef wf_err (*wf_sql_row_fn)(const wf_sql_cols *cols, void *ctx);

typedef struct wf_tracker_backend {
    const char *kind;                   /* "sqlite" or "postgresql" */
    const char *const *sql;             /* statement texts, indexed by wf_sql */
    /* Connects to target and brings its schema to this binary's version,
     * setting t->impl and t->name. On failure fills t->errmsg. */
    wf_err (*open)(wf_tracker *t, const char *target);
    void (*close)(wf_tracker *t);
    /* Runs statement id (each outside an explicit transaction is its own
     * durable one). on_row may be NULL; *changes (may be NULL) receives
     * the rows a write touched. Fills t->errmsg naming doing on failure. */
    wf_err (*run)(wf_tracker *t, wf_sql id, const char *doing, const wf_sql_arg *args, int nargs,
                  wf_sql_row_fn on_row, void *ctx, long *changes);
    /* Compiles statement id now, so that its first run later costs no
     * parsing; NULL when the backend has nothing to gain. Never fails (a
     * statement that does not compile fails when run). */
    void (*prepare)(wf_tracker *t, wf_sql id);
    const char *(*col_text)(const wf_sql_cols *c, int i);   /* NULL for SQL NULL */
    int64_t (*col_int)(const wf_sql_cols *c, int i);        /* 0 for SQL NULL */
    bool (*col_null)(const wf_sql_cols *c, int i);
    wf_err (*backup)(wf_tracker *t, char *path, size_t pathlen, char *errbuf, size_t errlen);
    wf_err (*try_lock)(wf_tracker *t, bool *got, char *holder, size_t holderlen);   /* NULL: no such lock */
    wf_err (*lock_holder)(wf_tracker *t, bool *held, char *holder, size_t holderlen);   /* NULL: no such lock */
    wf_err (*probe_writable)(wf_tracker *t, char *errbuf, size_t errlen);
    bool (*in_transaction)(wf_tracker *t);   /* an explicit transaction is open (or failed, awaiting ROLLBACK) */
} wf_tracker_backend;

struct wf_tracker {
    const wf_tracker_backend *be;
    void *impl;            /* the backend's connection state */
    char *name;            /* what messages call it: the file, or the URL without its password */
    char errmsg[512];
    /* wf_tracker_prefetch()'s rows, sorted by key; dropped by any write. */
    wf_tracker_row *cache;
    size_t ncache;
    /* The same rows by source id and time, built on the first lookup. */
    const wf_tracker_row **by_source;
    /* The key scheme this process records (wf_tracker_set_key_scheme()),
     * and whether the tracker's own was checked before this process's
     * first insert. */
    char *key_scheme;
    bool scheme_checked;
};

extern const wf_tracker_backend wf_tracker_sqlite_backend;
extern const wf_tracker_backend wf_tracker_pg_backend;

/* tracker.c's statement runners, for tracker_admin.c: types as in
 * wf_sql_arg ('t', 'i', and 'b' for an int). select fills *rows with the
 * row columns id returns (free with wf_tracker_rows_free(); NULL on error);
 * write gives the rows touched in *changes (may be NULL); exists tells
 * whether id returned a row. Each returns the backend's error with
 * wf_tracker_errmsg() set, or WF_ERR_NOMEM. */
wf_err wf_tracker_sql_select(wf_tracker *t, wf_sql id, const char *doing, wf_tracker_row **rows, size_t *n,
                             const char *types, ...);
wf_err wf_tracker_sql_write(wf_tracker *t, wf_sql id, const char *doing, long *changes, const char *types, ...);
wf_err wf_tracker_sql_exists(wf_tracker *t, wf_sql id, const char *doing, bool *found, const char *types, ...);

/* The columns, in order, of every statement that returns tracker rows. */
#define WF_ROW_COLUMNS \
    "key, state, source_id, source_time, source_time_us, may_exist, jsm_key, jsm_issue_id, attempts, " \
    "last_run, created_run, updated_at_us, error_class, last_error, content_checksum, delivered_at, updated_at"

/* Shared by both backends' backup(): creates dir (0700) and an empty,
 * owner-only file in it named tracker-<UTC time><suffix>, adding -2, -3...
 * within one second. Returns WF_ERR_FILE with errbuf saying why. */
wf_err wf_tracker_backup_file(const char *dir, const char *suffix, char *path, size_t pathlen,
                              char *errbuf, size_t errlen);

#endif
