/* jsm_client.c: REST calls with one curl handle and one retry policy. */
#define _POSIX_C_SOURCE 200809L
#include "jsm_client.h"
#include "jsm_replies.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRIES_PER_CALL 6
#define MAX_BACKOFF_MS 30000L
#define PAGE_SIZE 100
/* How much of a garbled body the log shows: enough to tell a proxy's HTML
 * page from truncated JSON, too little to carry a whole document. */
#define GARBLED_PREVIEW 120

struct wf_jsm {
    const wf_config *cfg;
    wf_log *log;
    wf_run_stats *stats;
    const volatile sig_atomic_t *stop;
    wf_http_engine *engine;
    long budget_left_ms;
    unsigned int rng;
    struct jsm_call *deferred;   /* finished without being sent; reported by the next pump */
    long search_requests;        /* tries of searches so far */
    int64_t waits_until_us;      /* the latest retry scheduled so far (budget accounting) */
    /* about the last blocking call */
    char error[1024];
    long status;
    cJSON *field_errors;
    /* the last blocking call's response */
    char *body;
    size_t body_len;
};

typedef struct {
    const char *op;          /* the operation's name, for logs and messages */
    const char *method;      /* GET POST PUT DELETE */
    const char *path;        /* below JIRA_BASE_URL */
    const char *json;        /* request body, or NULL */
    const wf_jsm_file *files; /* multipart body: one "file" part each, or NULL */
    size_t nfiles;
    bool xsrf_no_check;      /* X-Atlassian-Token: no-check */
    bool experimental;       /* X-ExperimentalApi: opt-in (JSM's experimental endpoints refuse calls without it) */
    bool repeatable;         /* safe to send again after it may have arrived */
} http_call;

typedef struct jsm_call jsm_call;
/* Reads a 2xx answer into call->res. Returns WF_OK, or
 * WF_ERR_JIRA_PROTOCOL (res.error set) when the body lacks what the step
 * needs; may instead resubmit the call for a next page (returns WF_OK with
 * call->again set). */
typedef wf_err (*read_fn)(wf_jsm *jsm, jsm_call *call);

struct jsm_call {
    wf_jsm *jsm;
    const char *op;
    const char *method;
    bool repeatable;
    char path[512];
    char url[2048];
    char *json;
    const wf_jsm_file *files;
    size_t nfiles;
    struct curl_slist *headers;
    wf_http_req req;
    int try;
    bool again;              /* read_fn asked for another page */
    read_fn read;
    wf_jsm_result res;
    wf_jsm_done_fn done;
    void *ctx;
    /* for the readers */
    size_t nwanted;          /* upload: number of files */
    char **wanted;           /* upload: file names to match ids to */
    size_t names_cap;
    char issue_key[128];
    long start;              /* list: next page */
    jsm_call *next;          /* deferred list */
};

const char *wf_jsm_last_error(const wf_jsm *jsm) { return jsm->error; }
const cJSON *wf_jsm_last_field_errors(const wf_jsm *jsm) { return jsm->field_errors; }

wf_err wf_jsm_open(const wf_config *cfg, wf_log *log, wf_run_stats *stats,
                   const volatile sig_atomic_t *stop, wf_jsm **out)
{
    *out = NULL;
    wf_jsm *jsm = calloc(1, sizeof *jsm);
    if (!jsm) return WF_ERR_NOMEM;
    jsm->cfg = cfg;
    jsm->log = log;
    jsm->stats = stats;
    jsm->stop = stop;
    jsm->budget_left_ms = cfg->retry_budget_ms;
    jsm->rng = (unsigned int)time(NULL) ^ (unsigned int)getpid();
    wf_err rc = wf_http_engine_new(cfg, stats, stop, &jsm->engine);
    if (rc != WF_OK) {
        free(jsm);
        return rc;
    }
    *out = jsm;
    return WF_OK;
}

static void result_clear(wf_jsm_result *res)
{
    cJSON_Delete(res->field_errors);
    free(res->issue_key);
    free(res->issue_id);
    wf_jsm_free_names(res->names, res->nnames);
    memset(res, 0, sizeof *res);
}

static void call_free(jsm_call *call)
{
    if (!call) return;
    result_clear(&call->res);
    curl_slist_free_all(call->headers);
    free(call->req.resp);
    free(call->json);
    wf_jsm_free_names(call->wanted, call->nwanted);
    free(call);
}

void wf_jsm_close(wf_jsm *jsm)
{
    if (!jsm) return;
    wf_http_engine_free(jsm->engine);
    while (jsm->deferred) {
        jsm_call *next = jsm->deferred->next;
        call_free(jsm->deferred);
        jsm->deferred = next;
    }
    cJSON_Delete(jsm->field_errors);
    free(jsm->body);
    free(jsm);
}

/* Full jitter: a random wait in [0, min(cap, base * 2^try)]. */
static long backoff_ms(wf_jsm *jsm, int try)
{
    long ceiling = jsm->cfg->retry_base_ms;
    for (int i = 0; i < try && ceiling < MAX_BACKOFF_MS; i++) ceiling *= 2;
    if (ceiling > MAX_BACKOFF_MS) ceiling = MAX_BACKOFF_MS;
    return (long)(rand_r(&jsm->rng) % (unsigned long)(ceiling + 1));
}

/* Pulls Jira's own words out of an error body (jsm_replies.c). Returns
 * whether the body is a JSON object at all; when it is not, it is no answer
 * Jira meant, and none of its words are shown (the caller notes it). */
static bool describe_error_body(jsm_call *call, char *msg, size_t msglen)
{
    cJSON_Delete(call->res.field_errors);
    bool object = wf_reply_describe_error(call->req.resp, call->req.resp_len, msg, msglen, &call->res.field_errors);
    if (!object) msg[0] = '\0';
    return object;
}

static int curl_nothing_sent(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
           rc == CURLE_OUT_OF_MEMORY;
}

static int curl_tls_failure(CURLcode rc)
{
    return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
           rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM;
}

/* The statuses whose readable body proves the write was refused. */
static bool is_refusal(long st)
{
    return st == 400 || st == 401 || st == 403 || st == 404 || st == 409 || st == 413 || st == 415 || st == 422;
}

static void log_call(jsm_call *call, const char *level, const char *outcome)
{
    char status[16], tries[16], latency[16];
    snprintf(status, sizeof status, "%ld", call->req.status);
    snprintf(tries, sizeof tries, "%d", call->try + 1);
    snprintf(latency, sizeof latency, "%ld", call->req.latency_ms);
    wf_log_kv(call->jsm->log, "create_jira_tickets", level, "event", "http", "op", call->op, "method", call->method,
              "path", call->path, "status", status, "try", tries, "duration_ms", latency, "outcome", outcome,
              outcome && strcmp(outcome, "ok") ? "error" : NULL, call->res.error, NULL);
}

/* A garbled answer: counted, and logged with its status and the first
 * bytes of its body, escaped (a proxy's page is shown, never obeyed) and
 * redacted. */
static void note_garbled(jsm_call *call, const char *why)
{
    wf_jsm *jsm = call->jsm;
    char preview[GARBLED_PREVIEW * 4 + 1], status[16], length[24];
    size_t o = 0;
    for (size_t i = 0; i < call->req.resp_len && i < GARBLED_PREVIEW; i++) {
        unsigned char c = (unsigned char)call->req.resp[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') preview[o++] = (char)c;
        else o += (size_t)snprintf(preview + o, sizeof preview - o, "\\x%02x", c);
    }
    preview[o] = '\0';
    wf_log_redact(jsm->log, preview);
    snprintf(status, sizeof status, "%ld", call->req.status);
    snprintf(length, sizeof length, "%zu", call->req.resp_len);
    call->res.garbled = true;
    if (jsm->stats) jsm->stats->garbled++;
    wf_log_kv(jsm->log, "create_jira_tickets", "WARN", "event", "garbled_answer", "op", call->op, "status", status,
              "why", why, "bytes", length, "body_start", preview, NULL);
}

static void append_error(jsm_call *call, const char *text)
{
    size_t len = strlen(call->res.error);
    snprintf(call->res.error + len, sizeof call->res.error - len, "%s", text);
}

static void on_attempt(wf_http_req *req, void *ctx);

static void submit(jsm_call *call, long wait_ms)
{
    call->req.not_before_us = wait_ms > 0 ? wf_http_now_us() + (int64_t)wait_ms * 1000 : 0;
    wf_http_submit(call->jsm->engine, &call->req, on_attempt, call);
}

static void complete(jsm_call *call)
{
    call->done(&call->res, call->ctx);
    call_free(call);
}

/* One try is over: classify it, and retry, read or report. */
static void on_attempt(wf_http_req *req, void *ctx)
{
    jsm_call *call = ctx;
    wf_jsm *jsm = call->jsm;
    long wait_ms = -1;       /* >= 0: retry after waiting this long */
    wf_err rc;
    bool writes = !call->repeatable;
    call->res.status = req->status;
    call->res.error[0] = '\0';
    if (strcmp(call->op, "search") == 0) jsm->search_requests++;
    if (req->result != CURLE_OK) {
        int nothing_sent = curl_nothing_sent(req->result);
        if (!nothing_sent) call->res.maybe_sent = true;
        snprintf(call->res.error, sizeof call->res.error, "%s: %s (%s)", call->op, curl_easy_strerror(req->result),
                 nothing_sent ? "check JIRA_BASE_URL and the network" :
                 curl_tls_failure(req->result) ? "the TLS certificate did not verify; set SYNC_CA_BUNDLE for a private CA" :
                 "no complete reply");
        if (curl_tls_failure(req->result)) {
            call->res.maybe_sent = false;
            rc = WF_ERR_JIRA_UNREACHABLE;
            goto report;
        }
        if (nothing_sent || call->repeatable) wait_ms = backoff_ms(jsm, call->try);
        rc = nothing_sent ? WF_ERR_JIRA_UNREACHABLE : WF_ERR_JIRA_TEMPORARY;
    } else if (req->status >= 200 && req->status < 300) {
        call->again = false;
        rc = call->read ? call->read(jsm, call) : WF_OK;
        if (rc == WF_OK && call->again) {
            log_call(call, "INFO", "ok");
            call->try = 0;
            submit(call, 0);
            return;
        }
        if (rc == WF_OK) {
            call->res.maybe_sent = false;
            log_call(call, "INFO", "ok");
            goto done;
        }
        /* A 2xx that cannot be read or lacks what the step needs: the
         * write may well have happened. */
        note_garbled(call, call->res.error);
        if (writes) call->res.maybe_sent = true;
        else wait_ms = backoff_ms(jsm, call->try);
        rc = WF_ERR_JIRA_TEMPORARY;
    } else {
        long st = req->status;
        char detail[700];
        bool readable = describe_error_body(call, detail, sizeof detail);
        snprintf(call->res.error, sizeof call->res.error, "%s: HTTP %ld%s%s", call->op, st, detail[0] ? ": " : "",
                 detail);
        if (!readable && req->resp_len > 0) note_garbled(call, "the error body is not JSON");
        if (st == 429) {
            /* Atlassian rejects a request over a limit before doing it. */
            wait_ms = req->retry_after_s >= 0 ? req->retry_after_s * 1000 : backoff_ms(jsm, call->try);
            if (req->reason[0]) {
                append_error(call, " (");
                append_error(call, req->reason);
                append_error(call, ")");
            }
            rc = WF_ERR_JIRA_TEMPORARY;
        } else if (is_refusal(st) && readable) {
            if (st == 401 || st == 403) {
                size_t len = strlen(call->res.error);
                snprintf(call->res.error + len, sizeof call->res.error - len, " (check JIRA_EMAIL and JIRA_API_TOKEN or "
                         "JIRA_BEARER_TOKEN, and that this account may use service desk %s)", jsm->cfg->service_desk_id);
                rc = WF_ERR_JIRA_AUTH;
            } else {
                rc = st == 404 ? WF_ERR_JIRA_NOT_FOUND : WF_ERR_JIRA_REJECTED;
            }
            goto report;
        } else {
            /* 5xx, or an answer that proves nothing (a proxy's page, a
             * status Jira does not use for a refusal). */
            if (writes) call->res.maybe_sent = true;
            if (call->repeatable) wait_ms = backoff_ms(jsm, call->try);
            rc = (st == 401 || st == 403) ? WF_ERR_JIRA_AUTH : WF_ERR_JIRA_TEMPORARY;
        }
    }
    if (wait_ms < 0 || call->try + 1 >= MAX_TRIES_PER_CALL || (jsm->stop && *jsm->stop)) goto report;
    /* Waits that overlap (several calls answered 429 together) cost the
     * run's budget once: only the time a wait adds beyond the ones already
     * scheduled is taken from it. */
    int64_t now = wf_http_now_us(), until = now + (int64_t)wait_ms * 1000;
    int64_t from = jsm->waits_until_us > now ? jsm->waits_until_us : now;
    long cost = until > from ? (long)((until - from) / 1000) : 0;
    if (cost > jsm->budget_left_ms) {
        append_error(call, "; retry budget of this run used up (SYNC_RETRY_BUDGET)");
        goto report;
    }
    log_call(call, "WARN", "retry");
    jsm->budget_left_ms -= cost;
    if (until > jsm->waits_until_us) jsm->waits_until_us = until;
    if (jsm->stats) jsm->stats->retries++;
    call->try++;
    call->res.maybe_sent = false;
    submit(call, wait_ms);
    return;
report:
    log_call(call, rc == WF_ERR_JIRA_REJECTED || rc == WF_ERR_JIRA_TEMPORARY ? "WARN" : "ERROR", wf_strerror(rc));
done:
    call->res.rc = rc;
    complete(call);
}

/* A call object for spec; NULL when out of memory. */
static jsm_call *call_new(wf_jsm *jsm, const http_call *spec, read_fn read, wf_jsm_done_fn done, void *ctx)
{
    jsm_call *call = calloc(1, sizeof *call);
    if (!call) return NULL;
    call->jsm = jsm;
    call->op = spec->op;
    call->method = spec->method;
    call->repeatable = spec->repeatable;
    call->files = spec->files;
    call->nfiles = spec->nfiles;
    call->read = read;
    call->done = done;
    call->ctx = ctx;
    snprintf(call->path, sizeof call->path, "%s", spec->path);
    snprintf(call->url, sizeof call->url, "%s%s", jsm->cfg->jira_base_url, spec->path);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    call->headers = h;
    if (h && spec->json) h = curl_slist_append(call->headers, "Content-Type: application/json");
    if (h && spec->xsrf_no_check) h = curl_slist_append(call->headers, "X-Atlassian-Token: no-check");
    if (h && spec->experimental) h = curl_slist_append(call->headers, "X-ExperimentalApi: opt-in");
    if (!h || (spec->json && !(call->json = strdup(spec->json)))) {
        call_free(call);
        return NULL;
    }
    call->req.pace_key = call->op;
    call->req.method = call->method;
    call->req.url = call->url;
    call->req.headers = call->headers;
    call->req.body = call->json;
    call->req.files = call->files;
    call->req.nfiles = call->nfiles;
    call->req.fresh_connection = !spec->repeatable;
    return call;
}

/* Reports a call that could not be set up from the next pump, so that a
 * done callback never runs inside the start function that asked for it. */
static void defer_failure(wf_jsm *jsm, wf_err rc, wf_jsm_done_fn done, void *ctx)
{
    jsm_call *call = calloc(1, sizeof *call);
    if (!call) {
        /* Not even that: report at once rather than never. */
        wf_jsm_result res = {.rc = rc};
        snprintf(res.error, sizeof res.error, "out of memory");
        done(&res, ctx);
        return;
    }
    call->jsm = jsm;
    call->done = done;
    call->ctx = ctx;
    call->res.rc = rc;
    snprintf(call->res.error, sizeof call->res.error, "%s", wf_strerror(rc));
    call->next = jsm->deferred;
    jsm->deferred = call;
}

/* Starts spec; returns the call (NULL when it could not be set up, and
 * done will report WF_ERR_NOMEM) so that the caller can add what its read
 * function needs before the first pump. */
static jsm_call *start(wf_jsm *jsm, const http_call *spec, read_fn read, wf_jsm_done_fn done, void *ctx)
{
    jsm_call *call = call_new(jsm, spec, read, done, ctx);
    if (!call) {
        defer_failure(jsm, WF_ERR_NOMEM, done, ctx);
        return NULL;
    }
    submit(call, 0);
    return call;
}

int wf_jsm_pump(wf_jsm *jsm, long max_wait_ms)
{
    int deferred = 0;
    while (jsm->deferred) {
        jsm_call *call = jsm->deferred;
        jsm->deferred = call->next;
        complete(call);
        deferred++;
    }
    int left = wf_http_pump(jsm->engine, deferred ? 0 : max_wait_ms);
    return left + (jsm->deferred ? 1 : 0);
}

long wf_jsm_search_requests(const wf_jsm *jsm)
{
    return jsm ? jsm->search_requests : 0;
}

wf_http_figures wf_jsm_figures(const wf_jsm *jsm)
{
    return wf_http_figures_now(jsm ? jsm->engine : NULL);
}

/* ---- blocking calls -------------------------------------------------------- */

typedef struct {
    bool done;
    wf_jsm_result res;
} waiter;

static void on_waited(wf_jsm_result *res, void *ctx)
{
    waiter *w = ctx;
    w->res = *res;
    memset(res, 0, sizeof *res);   /* the waiter owns the outputs now */
    w->done = true;
}

/* Runs the engine until w's call is done, then makes its outcome the
 * "last call" (wf_jsm_last_*). */
static wf_err wait_for(wf_jsm *jsm, waiter *w)
{
    while (!w->done) wf_jsm_pump(jsm, 1000);
    snprintf(jsm->error, sizeof jsm->error, "%s", w->res.error);
    jsm->status = w->res.status;
    cJSON_Delete(jsm->field_errors);
    jsm->field_errors = w->res.field_errors;
    w->res.field_errors = NULL;
    return w->res.rc;
}

/* A read that keeps the body for the caller. */
static wf_err keep_body(wf_jsm *jsm, jsm_call *call)
{
    free(jsm->body);
    jsm->body = call->req.resp;
    jsm->body_len = call->req.resp_len;
    call->req.resp = NULL;
    call->req.resp_len = 0;
    return WF_OK;
}

/* Sends call with the retry policy, waiting for its outcome. On WF_OK the
 * body is in jsm->body. Other modules' endpoint functions build on this. */
static wf_err perform(wf_jsm *jsm, const http_call *call)
{
    waiter w = {0};
    free(jsm->body);
    jsm->body = NULL;
    jsm->body_len = 0;
    start(jsm, call, keep_body, on_waited, &w);
    wf_err rc = wait_for(jsm, &w);
    result_clear(&w.res);
    return rc;
}

static wf_err parse_body(wf_jsm *jsm, const char *op, cJSON **out)
{
    *out = jsm->body ? cJSON_ParseWithLength(jsm->body, jsm->body_len) : NULL;
    if (*out) return WF_OK;
    snprintf(jsm->error, sizeof jsm->error, "%s: the reply is not JSON", op);
    return WF_ERR_JIRA_PROTOCOL;
}

static wf_err get_json(wf_jsm *jsm, const char *op, const char *path, cJSON **out)
{
    http_call call = {.op = op, .method = "GET", .path = path, .repeatable = true};
    *out = NULL;
    wf_err rc = perform(jsm, &call);
    return rc == WF_OK ? parse_body(jsm, op, out) : rc;
}

wf_err wf_jsm_myself(wf_jsm *jsm, cJSON **out)
{
    return get_json(jsm, "get myself", "/rest/api/3/myself", out);
}

wf_err wf_jsm_get_service_desk(wf_jsm *jsm, cJSON **out)
{
    char path[256];
    snprintf(path, sizeof path, "/rest/servicedeskapi/servicedesk/%s", jsm->cfg->service_desk_id);
    wf_err rc = get_json(jsm, "get service desk", path, out);
    if (rc == WF_ERR_JIRA_NOT_FOUND) {
        size_t len = strlen(jsm->error);
        snprintf(jsm->error + len, sizeof jsm->error - len, " (JSM_SERVICE_DESK_ID=%s does not exist or is not visible to this account)",
                 jsm->cfg->service_desk_id);
    }
    return rc;
}

wf_err wf_jsm_get_request_type(wf_jsm *jsm, cJSON **out)
{
    char path[256];
    snprintf(path, sizeof path, "/rest/servicedeskapi/servicedesk/%s/requesttype/%s",
             jsm->cfg->service_desk_id, jsm->cfg->request_type_id);
    wf_err rc = get_json(jsm, "get request type", path, out);
    if (rc == WF_ERR_JIRA_NOT_FOUND) {
        size_t len = strlen(jsm->error);
        snprintf(jsm->error + len, sizeof jsm->error - len, " (JSM_REQUEST_TYPE_ID=%s is not a request type of service desk %s)",
                 jsm->cfg->request_type_id, jsm->cfg->service_desk_id);
    }
    return rc;
}

wf_err wf_jsm_get_request_type_fields(wf_jsm *jsm, char **raw)
{
    char path[256];
    snprintf(path, sizeof path, "/rest/servicedeskapi/servicedesk/%s/requesttype/%s/field",
             jsm->cfg->service_desk_id, jsm->cfg->request_type_id);
    http_call call = {.op = "get request type fields", .method = "GET", .path = path, .repeatable = true};
    *raw = NULL;
    wf_err rc = perform(jsm, &call);
    if (rc != WF_OK) return rc;
    *raw = strdup(jsm->body ? jsm->body : "");
    return *raw ? WF_OK : WF_ERR_NOMEM;
}

static wf_err read_json(jsm_call *call, cJSON **out)
{
    *out = call->req.resp ? cJSON_ParseWithLength(call->req.resp, call->req.resp_len) : NULL;
    if (cJSON_IsObject(*out)) return WF_OK;
    cJSON_Delete(*out);
    *out = NULL;
    snprintf(call->res.error, sizeof call->res.error, "%s: HTTP %ld reply is not a JSON object", call->op,
             call->req.status);
    return WF_ERR_JIRA_PROTOCOL;
}

/* A create's answer must name the request: without its key the request
 * may exist but cannot be found again except by its label. */
static wf_err read_create(wf_jsm *jsm, jsm_call *call)
{
    (void)jsm;
    cJSON *reply;
    wf_err rc = read_json(call, &reply);
    if (rc != WF_OK) return rc;
    rc = wf_reply_created(reply, &call->res.issue_key, &call->res.issue_id);
    cJSON_Delete(reply);
    if (rc != WF_ERR_JIRA_PROTOCOL) return rc;
    snprintf(call->res.error, sizeof call->res.error, "create request: HTTP %ld reply has no issueKey", call->req.status);
    return WF_ERR_JIRA_PROTOCOL;
}

void wf_jsm_start_create(wf_jsm *jsm, const cJSON *field_values, const char *on_behalf_of, wf_jsm_done_fn done,
                         void *ctx)
{
    cJSON *body = cJSON_CreateObject();
    char *json = NULL;
    if (!body || !cJSON_AddStringToObject(body, "serviceDeskId", jsm->cfg->service_desk_id) ||
        !cJSON_AddStringToObject(body, "requestTypeId", jsm->cfg->request_type_id) ||
        !cJSON_AddItemToObject(body, "requestFieldValues", cJSON_Duplicate(field_values, 1)) ||
        /* Rich-text values are ADF documents: their text is never read as
         * wiki markup (docs/untrusted-text.md). */
        !cJSON_AddBoolToObject(body, "isAdfRequest", 1) ||
        (on_behalf_of && !cJSON_AddStringToObject(body, "raiseOnBehalfOf", on_behalf_of)) ||
        !(json = cJSON_PrintUnformatted(body))) {
        defer_failure(jsm, WF_ERR_NOMEM, done, ctx);
    } else {
        http_call call = {.op = "create request", .method = "POST", .path = "/rest/servicedeskapi/request",
                          .json = json};
        start(jsm, &call, read_create, done, ctx);
    }
    cJSON_Delete(body);
    free(json);
}

/* Every uploaded file must come back with its temporary id. */
static wf_err read_upload(wf_jsm *jsm, jsm_call *call)
{
    (void)jsm;
    cJSON *reply;
    wf_err rc = read_json(call, &reply);
    if (rc != WF_OK) return rc;
    wf_jsm_free_names(call->res.names, call->res.nnames);
    call->res.nnames = call->nwanted;
    if (!(call->res.names = calloc(call->nwanted ? call->nwanted : 1, sizeof *call->res.names))) {
        cJSON_Delete(reply);
        call->res.nnames = 0;
        return WF_ERR_NOMEM;
    }
    const char *missing = NULL;
    rc = wf_reply_temporary_ids(reply, call->wanted, call->nwanted, call->res.names, &missing);
    cJSON_Delete(reply);
    if (missing)
        snprintf(call->res.error, sizeof call->res.error,
                 "attach temporary file: the reply has no temporaryAttachmentId for %s", missing);
    return rc;
}

void wf_jsm_start_upload(wf_jsm *jsm, const wf_jsm_file *files, size_t n, wf_jsm_done_fn done, void *ctx)
{
    char path[256];
    snprintf(path, sizeof path, "/rest/servicedeskapi/servicedesk/%s/attachTemporaryFile", jsm->cfg->service_desk_id);
    char **wanted = calloc(n ? n : 1, sizeof *wanted);
    bool ok = wanted != NULL;
    for (size_t i = 0; ok && i < n; i++) ok = (wanted[i] = strdup(files[i].filename)) != NULL;
    jsm_call *call = NULL;
    /* Temporary files have no effect until attached: repeating is safe. */
    http_call spec = {.op = "attach temporary file", .method = "POST", .path = path, .files = files, .nfiles = n,
                      .xsrf_no_check = true, .repeatable = true};
    if (ok && (call = call_new(jsm, &spec, read_upload, done, ctx))) {
        call->wanted = wanted;
        call->nwanted = n;
        submit(call, 0);
        return;
    }
    wf_jsm_free_names(wanted, n);
    defer_failure(jsm, WF_ERR_NOMEM, done, ctx);
}

/* An attach answers with the attachments it added; anything else proves
 * nothing, and the request's attachments are listed before any resend. */
static wf_err read_attach(wf_jsm *jsm, jsm_call *call)
{
    (void)jsm;
    cJSON *reply;
    wf_err rc = read_json(call, &reply);
    if (rc != WF_OK) return rc;
    const cJSON *atts = cJSON_GetObjectItemCaseSensitive(reply, "attachments");
    bool ok = cJSON_IsObject(atts) && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(atts, "values"));
    cJSON_Delete(reply);
    if (ok) return WF_OK;
    snprintf(call->res.error, sizeof call->res.error, "attach files: HTTP %ld reply has no attachments list",
             call->req.status);
    return WF_ERR_JIRA_PROTOCOL;
}

void wf_jsm_start_attach(wf_jsm *jsm, const char *issue_key, char *const *temp_ids, size_t n, bool is_public,
                         wf_jsm_done_fn done, void *ctx)
{
    char path[256];
    snprintf(path, sizeof path, "/rest/servicedeskapi/request/%s/attachment", issue_key);
    cJSON *body = cJSON_CreateObject();
    cJSON *ids = cJSON_CreateStringArray((const char *const *)temp_ids, (int)n);
    char *json = NULL;
    if (body && ids) {
        cJSON_AddItemToObject(body, "temporaryAttachmentIds", ids);
        ids = NULL;
        if (cJSON_AddBoolToObject(body, "public", is_public)) json = cJSON_PrintUnformatted(body);
    }
    if (json) {
        http_call call = {.op = "attach files", .method = "POST", .path = path, .json = json};
        start(jsm, &call, read_attach, done, ctx);
    } else {
        defer_failure(jsm, WF_ERR_NOMEM, done, ctx);
    }
    cJSON_Delete(ids);
    cJSON_Delete(body);
    free(json);
}

void wf_jsm_free_names(char **names, size_t n)
{
    if (!names) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static void list_page_path(jsm_call *call)
{
    snprintf(call->path, sizeof call->path, "/rest/servicedeskapi/request/%s/attachment?start=%ld&limit=%d",
             call->issue_key, call->start, PAGE_SIZE);
    snprintf(call->url, sizeof call->url, "%s%s", call->jsm->cfg->jira_base_url, call->path);
}

/* One page of a request's attachments; asks for the next while there is one. */
static wf_err read_list(wf_jsm *jsm, jsm_call *call)
{
    (void)jsm;
    cJSON *page;
    wf_err rc = read_json(call, &page);
    if (rc != WF_OK) return rc;
    long count = 0;
    bool last = false;
    rc = wf_reply_attachment_page(page, &call->res.names, &call->res.nnames, &call->names_cap, &count, &last);
    cJSON_Delete(page);
    if (rc == WF_ERR_JIRA_PROTOCOL)
        snprintf(call->res.error, sizeof call->res.error, "list attachments: the reply has no values array");
    if (rc != WF_OK) return rc;
    if (!last && count > 0) {
        call->start += count;
        list_page_path(call);
        call->again = true;
    }
    return WF_OK;
}

void wf_jsm_start_list_attachments(wf_jsm *jsm, const char *issue_key, wf_jsm_done_fn done, void *ctx)
{
    http_call spec = {.op = "list attachments", .method = "GET", .path = "", .repeatable = true};
    jsm_call *call = call_new(jsm, &spec, read_list, done, ctx);
    if (!call) {
        defer_failure(jsm, WF_ERR_NOMEM, done, ctx);
        return;
    }
    snprintf(call->issue_key, sizeof call->issue_key, "%s", issue_key);
    list_page_path(call);
    submit(call, 0);
}

wf_err wf_jsm_list_attachments(wf_jsm *jsm, const char *issue_key, char ***names, size_t *n)
{
    waiter w = {0};
    wf_jsm_start_list_attachments(jsm, issue_key, on_waited, &w);
    wf_err rc = wait_for(jsm, &w);
    *names = rc == WF_OK ? w.res.names : NULL;
    *n = rc == WF_OK ? w.res.nnames : 0;
    if (rc == WF_OK) w.res.names = NULL, w.res.nnames = 0;
    result_clear(&w.res);
    return rc;
}

wf_err wf_jsm_search(wf_jsm *jsm, const char *jql, const char *fields, cJSON **issues)
{
    *issues = cJSON_CreateArray();
    if (!*issues) return WF_ERR_NOMEM;
    char *token = NULL;
    wf_err rc = WF_OK;
    for (;;) {
        cJSON *body = cJSON_CreateObject();
        cJSON *fl = cJSON_Parse(fields);
        char *json = NULL;
        cJSON *reply = NULL;
        rc = WF_ERR_NOMEM;
        if (!body || !fl) { cJSON_Delete(fl); cJSON_Delete(body); break; }
        cJSON_AddStringToObject(body, "jql", jql);
        cJSON_AddItemToObject(body, "fields", fl);
        cJSON_AddNumberToObject(body, "maxResults", PAGE_SIZE);
        if (token) cJSON_AddStringToObject(body, "nextPageToken", token);
        json = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);
        if (!json) break;
        /* A search changes nothing, so it may be repeated freely. */
        http_call call = {.op = "search", .method = "POST", .path = "/rest/api/3/search/jql", .json = json,
                          .repeatable = true};
        rc = perform(jsm, &call);
        free(json);
        if (rc == WF_OK) rc = parse_body(jsm, call.op, &reply);
        if (rc != WF_OK) break;
        free(token);
        token = NULL;
        rc = wf_reply_search_page(reply, *issues, &token);
        cJSON_Delete(reply);
        if (rc == WF_ERR_JIRA_PROTOCOL) snprintf(jsm->error, sizeof jsm->error, "search: the reply has no issues array");
        if (rc != WF_OK || !token) break;
    }
    free(token);
    if (rc != WF_OK) {
        cJSON_Delete(*issues);
        *issues = NULL;
    }
    return rc;
}

wf_err wf_jsm_get_issue(wf_jsm *jsm, const char *issue_key, const char *fields, cJSON **out)
{
    char path[512];
    snprintf(path, sizeof path, "/rest/api/3/issue/%s?fields=%s", issue_key, fields);
    return get_json(jsm, "get issue", path, out);
}

wf_err wf_jsm_edit_issue(wf_jsm *jsm, const char *issue_key, const cJSON *fields)
{
    char path[256];
    snprintf(path, sizeof path, "/rest/api/3/issue/%s", issue_key);
    cJSON *body = cJSON_CreateObject();
    char *json = NULL;
    wf_err rc = WF_ERR_NOMEM;
    if (body && cJSON_AddItemToObject(body, "fields", cJSON_Duplicate(fields, 1)) &&
        (json = cJSON_PrintUnformatted(body))) {
        /* Setting the same fields twice gives the same issue. */
        http_call call = {.op = "edit issue", .method = "PUT", .path = path, .json = json, .repeatable = true};
        rc = perform(jsm, &call);
    }
    cJSON_Delete(body);
    free(json);
    return rc;
}

wf_err wf_jsm_delete_issue(wf_jsm *jsm, const char *issue_key)
{
    char path[256];
    snprintf(path, sizeof path, "/rest/api/3/issue/%s", issue_key);
    http_call call = {.op = "delete issue", .method = "DELETE", .path = path, .repeatable = true};
    return perform(jsm, &call);
}

/* ---- customers (issue 12: raise requests on behalf of the submitter) ---- */

long wf_jsm_last_status(const wf_jsm *jsm) { return jsm->status; }

/* query escaped for a URL; NULL when out of memory. Free with curl_free(). */
static char *escape_query(wf_jsm *jsm, const char *query)
{
    (void)jsm;
    /* libcurl ignores the handle here (since 7.82). */
    return curl_easy_escape(NULL, query, 0);
}

wf_err wf_jsm_get_desk_customers(wf_jsm *jsm, const char *query, long start, int limit, cJSON **page)
{
    *page = NULL;
    char *q = escape_query(jsm, query);
    if (!q) return WF_ERR_NOMEM;
    char path[1024];
    snprintf(path, sizeof path, "/rest/servicedeskapi/servicedesk/%s/customer?query=%s&start=%ld&limit=%d",
             jsm->cfg->service_desk_id, q, start, limit);
    curl_free(q);
    http_call call = {.op = "find customer", .method = "GET", .path = path, .experimental = true,
                      .repeatable = true};
    wf_err rc = perform(jsm, &call);
    return rc == WF_OK ? parse_body(jsm, call.op, page) : rc;
}

wf_err wf_jsm_create_customer(wf_jsm *jsm, const char *email, const char *display_name, cJSON **out)
{
    *out = NULL;
    cJSON *body = cJSON_CreateObject();
    char *json = NULL;
    wf_err rc = WF_ERR_NOMEM;
    if (body && cJSON_AddStringToObject(body, "email", email) &&
        cJSON_AddStringToObject(body, "displayName", display_name) && (json = cJSON_PrintUnformatted(body))) {
        /* strictConflictStatusCode: an existing account is a 409, not a 400
         * that only its wording tells apart from a malformed address. */
        http_call call = {.op = "create customer", .method = "POST",
                          .path = "/rest/servicedeskapi/customer?strictConflictStatusCode=true", .json = json};
        if ((rc = perform(jsm, &call)) == WF_OK) rc = parse_body(jsm, call.op, out);
    }
    cJSON_Delete(body);
    free(json);
    return rc;
}

wf_err wf_jsm_add_desk_customer(wf_jsm *jsm, const char *account_id)
{
    char path[256];
    snprintf(path, sizeof path, "/rest/servicedeskapi/servicedesk/%s/customer", jsm->cfg->service_desk_id);
    cJSON *body = cJSON_CreateObject();
    const char *ids[1] = {account_id};
    cJSON *list = cJSON_CreateStringArray(ids, 1);
    char *json = NULL;
    wf_err rc = WF_ERR_NOMEM;
    bool ready = body && list && cJSON_AddItemToObject(body, "accountIds", list);
    if (ready) list = NULL;   /* body owns it now */
    if (ready && (json = cJSON_PrintUnformatted(body))) {
        /* Adding a customer the desk already has changes nothing (204). */
        http_call call = {.op = "add customer to service desk", .method = "POST", .path = path, .json = json,
                          .repeatable = true};
        rc = perform(jsm, &call);
    }
    cJSON_Delete(list);
    cJSON_Delete(body);
    free(json);
    return rc;
}

wf_err wf_jsm_search_users(wf_jsm *jsm, const char *query, long start, int max_results, cJSON **users)
{
    *users = NULL;
    char *q = escape_query(jsm, query);
    if (!q) return WF_ERR_NOMEM;
    char path[1024];
    snprintf(path, sizeof path, "/rest/api/3/user/search?query=%s&startAt=%ld&maxResults=%d", q, start, max_results);
    curl_free(q);
    wf_err rc = get_json(jsm, "search users", path, users);
    if (rc == WF_OK && !cJSON_IsArray(*users)) {
        snprintf(jsm->error, sizeof jsm->error, "search users: the reply is not a list of users");
        cJSON_Delete(*users);
        *users = NULL;
        rc = WF_ERR_JIRA_PROTOCOL;
    }
    return rc;
}

wf_err wf_jsm_my_permissions(wf_jsm *jsm, const char *project_key, const char *permissions, cJSON **out)
{
    char path[512];
    char *pk = escape_query(jsm, project_key ? project_key : "");
    char *perms = escape_query(jsm, permissions);
    *out = NULL;
    if (!pk || !perms) {
        curl_free(pk);
        curl_free(perms);
        return WF_ERR_NOMEM;
    }
    snprintf(path, sizeof path, "/rest/api/3/mypermissions?%s%s%spermissions=%s", project_key ? "projectKey=" : "",
             project_key ? pk : "", project_key ? "&" : "", perms);
    curl_free(pk);
    curl_free(perms);
    return get_json(jsm, "get my permissions", path, out);
}
