/* jsm_client.h: the JSM and Jira REST calls, over the run's one HTTP engine
 * (http_engine.h: one curl multi handle, paced by the rate-limit headers).
 *
 * Every call goes through one retry policy: 429 waits for Retry-After;
 * connection failures, 5xx and timeouts back off exponentially with full
 * jitter; all waits come out of one budget per run (SYNC_RETRY_BUDGET).
 * Calls that create something (create request, attach) are never retried
 * once the request may have reached Jira: the caller is told (maybe_sent)
 * and looks before it creates again. Only a readable refusal proves that a
 * write did not happen: a 4xx among 400, 401, 403, 404, 409, 413, 415, 422
 * whose body is JSON. Any other outcome of a write (a 5xx, a 2xx whose body
 * cannot be read or lacks what the step needs, a timeout, a dropped
 * connection) means it may have happened. Answers whose body cannot be used
 * are counted (garbled) and logged with their status and first bytes.
 *
 * The wf_jsm_<call> functions block until their answer (the operator
 * commands use them); the wf_jsm_start_<call> functions return at once and
 * report from inside wf_jsm_pump(), so that the delivery protocol keeps
 * several submissions in flight in one thread.
 * Credentials go to curl as options, never into URLs, logs or messages. */
#ifndef WF_JSM_CLIENT_H
#define WF_JSM_CLIENT_H

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include "config.h"
#include "http_engine.h"
#include "errors.h"
#include "log.h"
#include "run_stats.h"

typedef struct wf_jsm wf_jsm;

/* One file to upload: filename, mime_type, data, len. */
typedef wf_http_file wf_jsm_file;

/* Creates the client. cfg, log, stats and stop must outlive it; stats
 * receives requests, retries, 429s, garbled answers and the peak in flight;
 * stop (may be NULL) cuts backoff waits short when set by a signal handler. Returns WF_ERR_NOMEM or WF_ERR_CONFIG (curl
 * could not be set up). Free with wf_jsm_close(). */
wf_err wf_jsm_open(const wf_config *cfg, wf_log *log, wf_run_stats *stats,
                   const volatile sig_atomic_t *stop, wf_jsm **out);
void wf_jsm_close(wf_jsm *jsm);

/* About the last failed call: an operator's sentence (operation, HTTP status,
 * Jira's own message) and Jira's per-field "errors" object of a 400 (or
 * NULL). Owned by jsm, valid until the next call. */
const char *wf_jsm_last_error(const wf_jsm *jsm);
const cJSON *wf_jsm_last_field_errors(const wf_jsm *jsm);

/* GET /rest/api/3/myself: *out receives the user object (caller deletes). */
wf_err wf_jsm_myself(wf_jsm *jsm, cJSON **out);
/* GET the configured service desk and request type (caller deletes *out). */
wf_err wf_jsm_get_service_desk(wf_jsm *jsm, cJSON **out);
wf_err wf_jsm_get_request_type(wf_jsm *jsm, cJSON **out);
/* GET the request type's fields; *raw receives the response body (caller frees). */
wf_err wf_jsm_get_request_type_fields(wf_jsm *jsm, char **raw);

/* Lists the file names attached to issue_key (all pages). *names has *n
 * strings; free with wf_jsm_free_names(). */
wf_err wf_jsm_list_attachments(wf_jsm *jsm, const char *issue_key, char ***names, size_t *n);
void wf_jsm_free_names(char **names, size_t n);

/* POST /rest/api/3/search/jql, all pages; *issues receives an array of
 * {id, key, fields} (caller deletes). fields is a JSON array text such as
 * "[\"labels\",\"summary\"]". */
wf_err wf_jsm_search(wf_jsm *jsm, const char *jql, const char *fields, cJSON **issues);

/* GET /rest/api/3/issue/{key}?fields=...; caller deletes *out. */
wf_err wf_jsm_get_issue(wf_jsm *jsm, const char *issue_key, const char *fields, cJSON **out);
/* PUT /rest/api/3/issue/{key} {"fields": fields}. */
wf_err wf_jsm_edit_issue(wf_jsm *jsm, const char *issue_key, const cJSON *fields);
/* DELETE /rest/api/3/issue/{key}. */
wf_err wf_jsm_delete_issue(wf_jsm *jsm, const char *issue_key);

/* ---- customers: raising requests on behalf of the submitter ----------- */

/* The HTTP status of the last call (0 when no reply came). Never fails. */
long wf_jsm_last_status(const wf_jsm *jsm);

/* GET /rest/servicedeskapi/servicedesk/{id}/customer?query=&start=&limit=
 * (experimental: sent with X-ExperimentalApi: opt-in). *page receives one
 * PagedDTOUserDTO (caller deletes). 403: the account may not view the
 * desk's customers (WF_ERR_JIRA_AUTH, wf_jsm_last_status() tells 401 from 403). */
wf_err wf_jsm_get_desk_customers(wf_jsm *jsm, const char *query, long start, int limit, cJSON **page);

/* POST /rest/servicedeskapi/customer?strictConflictStatusCode=true: *out
 * receives the new UserDTO (caller deletes). An existing account for email
 * is WF_ERR_JIRA_REJECTED with status 409; a malformed address 400; a
 * refusal WF_ERR_JIRA_AUTH with status 403. Never retried once sent. */
wf_err wf_jsm_create_customer(wf_jsm *jsm, const char *email, const char *display_name, cJSON **out);

/* POST /rest/servicedeskapi/servicedesk/{id}/customer {"accountIds": [id]}:
 * 204 also when the desk already has the customer, so safe to repeat. */
wf_err wf_jsm_add_desk_customer(wf_jsm *jsm, const char *account_id);

/* GET /rest/api/3/user/search?query=&startAt=&maxResults=: *users receives
 * the JSON array of users (caller deletes); WF_ERR_JIRA_PROTOCOL when the
 * reply is not an array. */
wf_err wf_jsm_search_users(wf_jsm *jsm, const char *query, long start, int max_results, cJSON **users);

/* GET /rest/api/3/mypermissions?projectKey=&permissions=: *out receives
 * {"permissions": {KEY: {"havePermission": bool, ...}}} (caller deletes).
 * project_key may be NULL (global context). */
wf_err wf_jsm_my_permissions(wf_jsm *jsm, const char *project_key, const char *permissions, cJSON **out);

/* ---- calls that report later ---------------------------------------------- */

/* The outcome of a started call, given to its done callback. The outputs
 * belong to the result: take one by setting its pointer to NULL; the rest
 * is freed when the callback returns. */
typedef struct wf_jsm_result {
    wf_err rc;
    long status;                 /* HTTP status of the last try, 0 without an answer */
    bool maybe_sent;             /* a write may have reached Jira despite rc */
    bool garbled;                /* the answer could not be used (counted and logged) */
    char error[1024];            /* operator's sentence when rc != WF_OK */
    cJSON *field_errors;         /* the 400's per-field errors, or NULL */
    char *issue_key, *issue_id;  /* create */
    char **names;                /* upload: temporary ids, in the files' order; list: file names */
    size_t nnames;
} wf_jsm_result;

typedef void (*wf_jsm_done_fn)(wf_jsm_result *res, void *ctx);

/* Each starts its call and returns; done(res, ctx) runs from a later
 * wf_jsm_pump() (also when the call could not even be set up: rc
 * WF_ERR_NOMEM). Arguments are copied, except the files of an upload,
 * which must live until done runs. on_behalf_of, when not NULL, becomes
 * the create's raiseOnBehalfOf. */
void wf_jsm_start_create(wf_jsm *jsm, const cJSON *field_values, const char *on_behalf_of, wf_jsm_done_fn done,
                         void *ctx);
void wf_jsm_start_upload(wf_jsm *jsm, const wf_jsm_file *files, size_t n, wf_jsm_done_fn done, void *ctx);
void wf_jsm_start_attach(wf_jsm *jsm, const char *issue_key, char *const *temp_ids, size_t n, bool is_public,
                         wf_jsm_done_fn done, void *ctx);
void wf_jsm_start_list_attachments(wf_jsm *jsm, const char *issue_key, wf_jsm_done_fn done, void *ctx);

/* Moves the started calls along, waiting at most max_wait_ms; runs the
 * done callbacks of those that finished. Returns the number of calls still
 * under way. Never fails. */
int wf_jsm_pump(wf_jsm *jsm, long max_wait_ms);

/* HTTP requests the searches have made so far (pages and retries). */
long wf_jsm_search_requests(const wf_jsm *jsm);

/* The engine's figures now (in flight, queued, window). */
wf_http_figures wf_jsm_figures(const wf_jsm *jsm);

#endif
