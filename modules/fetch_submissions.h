/* fetch_submissions.h: reading webform rows from PostgreSQL.
 *
 * One connection per run. Rows come in keyset order (time column, id
 * column) and are handed to a callback one at a time as libpq receives them
 * (single-row mode), so a batch is never loaded whole. The session runs with
 * TimeZone=UTC and DateStyle=ISO so that the text of a timestamp, which goes
 * into the unique key, does not depend on the server's settings. */
#ifndef WF_FETCH_SUBMISSIONS_H
#define WF_FETCH_SUBMISSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "errors.h"
#include "submission.h"

typedef struct wf_source wf_source;

/* What the row callback tells the stream. */
typedef enum { WF_ROW_NEXT = 0, WF_ROW_STOP = 1 } wf_row_action;

/* Called once per row; sub and its strings live until the callback returns. */
typedef wf_row_action (*wf_row_fn)(const wf_submission *sub, void *ctx);

#define WF_NO_UPPER_BOUND INT64_MIN

/* Connects with cfg->db_url (libpq URI or conninfo; empty: PG* variables).
 * Returns WF_ERR_DB with errbuf saying what failed (never the password), or
 * WF_ERR_CONFIG when the URL does not parse. *password_out, when not NULL,
 * receives a copy of the password found in the URL (to register with the
 * logger's redaction) or NULL; the caller frees it. Close with
 * wf_source_close(). */
wf_err wf_source_connect(const wf_config *cfg, wf_source **out, char **password_out,
                         char *errbuf, size_t errlen);

/* The same in two halves, so that a caller can do its local work while
 * the server sets up the session (forking a backend, authenticating):
 * start returns at once with the connection under way (errors as above);
 * finish waits for it, at most 10 s. After a failed finish the caller
 * still closes src. */
wf_err wf_source_connect_start(const wf_config *cfg, wf_source **out, char **password_out,
                               char *errbuf, size_t errlen);
wf_err wf_source_connect_finish(wf_source *src, char *errbuf, size_t errlen);

/* Moves a started connection on as far as the socket allows without
 * waiting (sends the next handshake message once the server has answered
 * the last), and never fails: an error waits for the finish. A caller with
 * local work to do calls it between the steps of that work, so that the
 * server's share of the handshake (forking, authenticating, loading the
 * session) runs at the same time instead of after. A connection that is
 * started but not finished is finished by the first statement, with the
 * errors of wf_source_connect_finish(). NULL and finished connections
 * are allowed. */
void wf_source_connect_advance(wf_source *src);

/* Waits (at most 10 s) until the server has the session's startup message
 * (after the SSL request and its answer, and the TLS handshake when the
 * server takes one), the step after which the server works alone for the
 * longest: authenticating and starting the session. Never fails: an error
 * waits for the finish. NULL and finished connections are allowed. */
void wf_source_connect_send_startup(wf_source *src);

/* Closes the connection. NULL is allowed. */
void wf_source_close(wf_source *src);

/* Streams rows with from_us <= time (<= to_us unless WF_NO_UPPER_BOUND),
 * oldest first, at most limit rows, in one SQL statement. from_us may be
 * INT64_MIN for "from the beginning". The callback may stop the stream
 * early. Returns WF_ERR_DB (errbuf filled) when the query fails or the
 * connection drops; rows already passed to the callback stay handled. */
wf_err wf_source_stream_window(wf_source *src, int64_t from_us, int64_t to_us, long limit,
                               wf_row_fn fn, void *ctx, char *errbuf, size_t errlen);

/* The same in two halves, so that a caller can do its local work while the
 * server plans and runs the query: send returns once the query is sent
 * (same errors); read then streams its rows as above. After a successful
 * send, read must follow before any other statement on src, even when the
 * caller has nothing left to do with the rows (its callback then stops at
 * once, and the rest are dropped). */
wf_err wf_source_send_window(wf_source *src, int64_t from_us, int64_t to_us, long limit,
                             char *errbuf, size_t errlen);
wf_err wf_source_read_window(wf_source *src, wf_row_fn fn, void *ctx, char *errbuf, size_t errlen);

/* Streams the rows whose time is one of times[0..n) (retries of rows older
 * than the window), oldest first. Same errors as above. */
wf_err wf_source_stream_times(wf_source *src, const int64_t *times, size_t n,
                              wf_row_fn fn, void *ctx, char *errbuf, size_t errlen);

/* Lists the columns of the configured table or view: *names and *types are
 * arrays of n strings; free with wf_source_free_columns(). Returns WF_ERR_DB
 * when the relation does not exist (errbuf names WEBFORM_TABLE). */
wf_err wf_source_columns(wf_source *src, char ***names, char ***types, size_t *n,
                         char *errbuf, size_t errlen);
void wf_source_free_columns(char **names, char **types, size_t n);

/* Runs EXPLAIN on the cursor query and reports whether it uses an index
 * (*uses_index) and the plan's first line (plan, caller frees). */
wf_err wf_source_explain_cursor(wf_source *src, int *uses_index, char **plan,
                                char *errbuf, size_t errlen);

/* Counts the rows with time >= from_us (INT64_MIN: all rows). */
wf_err wf_source_count_since(wf_source *src, int64_t from_us, long *count, char *errbuf, size_t errlen);

/* Formats microseconds since the epoch as an ISO 8601 UTC timestamp with
 * microseconds ("2026-11-22T10:00:00.000000Z"). */
void wf_format_time_us(int64_t us, char *buf, size_t buflen);

/* Reads PostgreSQL's ISO text of a date, a timestamp or a timestamp with
 * time zone ("2026-11-22 10:00:00.5+00", "0044-03-15 00:00:00+00 BC",
 * "10000-01-01") as microseconds since the epoch, exactly what
 * extract(epoch FROM value) * 1000000 gives: a timestamp without zone and a
 * date count from UTC midnight. Returns false, leaving *us alone, for
 * anything else ("infinity" among them). Never allocates. */
bool wf_parse_time_us(const char *text, int64_t *us);

#endif
