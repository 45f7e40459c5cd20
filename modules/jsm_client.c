/* jsm_client.c: REST calls with one curl handle and one retry policy. */
#define _POSIX_C_SOURCE 200809L
#include "jsm_client.h"

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

struct wf_jsm {
    const wf_config *cfg;
    wf_log *log;
    wf_run_stats *stats;
    const volatile sig_atomic_t *stop;
    CURL *curl;
    long budget_left_ms;
    unsigned int rng;
    /* about the last call */
    char error[1024];
    long status;
    bool maybe_sent;
    cJSON *field_errors;
    /* the last response */
    char *body;
    size_t body_len;
    long retry_after_s;
    long duration_ms;        /* the last attempt's wall time, for the log line */
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

const char *wf_jsm_last_error(const wf_jsm *jsm) { return jsm->error; }
const cJSON *wf_jsm_last_field_errors(const wf_jsm *jsm) { return jsm->field_errors; }
bool wf_jsm_last_maybe_sent(const wf_jsm *jsm) { return jsm->maybe_sent; }

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    wf_jsm *jsm = userp;
    size_t n = size * nmemb;
    char *nb = realloc(jsm->body, jsm->body_len + n + 1);
    if (!nb) return 0;
    memcpy(nb + jsm->body_len, data, n);
    jsm->body = nb;
    jsm->body_len += n;
    nb[jsm->body_len] = '\0';
    return n;
}

/* Retry-After is either delta-seconds or an HTTP date; both are honoured. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    wf_jsm *jsm = userp;
    size_t n = size * nmemb;
    if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        char value[64];
        size_t vlen = n - 12 < sizeof value - 1 ? n - 12 : sizeof value - 1;
        memcpy(value, data + 12, vlen);
        value[vlen] = '\0';
        char *end;
        long secs = strtol(value, &end, 10);
        if (end != value && secs >= 0) {
            jsm->retry_after_s = secs;
        } else {
            time_t when = curl_getdate(value, NULL);
            if (when > 0) jsm->retry_after_s = when > time(NULL) ? (long)(when - time(NULL)) : 0;
        }
    }
    return n;
}

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
    /* Initialised here rather than in main(): a tick with nothing to
     * deliver never pays for TLS set-up. libcurl counts init/cleanup pairs. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(jsm);
        return WF_ERR_CONFIG;
    }
    if (!(jsm->curl = curl_easy_init())) {
        curl_global_cleanup();
        free(jsm);
        return WF_ERR_CONFIG;
    }
    *out = jsm;
    return WF_OK;
}

void wf_jsm_close(wf_jsm *jsm)
{
    if (!jsm) return;
    curl_easy_cleanup(jsm->curl);
    curl_global_cleanup();
    cJSON_Delete(jsm->field_errors);
    free(jsm->body);
    free(jsm);
}

/* Sleeps ms milliseconds in short steps so that SIGTERM is not kept waiting
 * behind a long Retry-After. */
static void pause_ms(wf_jsm *jsm, long ms)
{
    while (ms > 0 && !(jsm->stop && *jsm->stop)) {
        long step = ms < 100 ? ms : 100;
        struct timespec ts = {step / 1000, (step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

/* Full jitter: a random wait in [0, min(cap, base * 2^try)]. */
static long backoff_ms(wf_jsm *jsm, int try)
{
    long ceiling = jsm->cfg->retry_base_ms;
    for (int i = 0; i < try && ceiling < MAX_BACKOFF_MS; i++) ceiling *= 2;
    if (ceiling > MAX_BACKOFF_MS) ceiling = MAX_BACKOFF_MS;
    return (long)(rand_r(&jsm->rng) % (unsigned long)(ceiling + 1));
}

/* Pulls Jira's own words out of an error body: JSM's errorMessage, the
 * platform's errorMessages, and the per-field errors of either. */
static void describe_error_body(wf_jsm *jsm, char *msg, size_t msglen)
{
    msg[0] = '\0';
    cJSON_Delete(jsm->field_errors);
    jsm->field_errors = NULL;
    cJSON *root = jsm->body ? cJSON_ParseWithLength(jsm->body, jsm->body_len) : NULL;
    if (!root) {
        if (jsm->body_len) snprintf(msg, msglen, "%.200s", jsm->body);
        return;
    }
    size_t pos = 0;
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(root, "errorMessage");
    if (cJSON_IsString(em)) pos += (size_t)snprintf(msg + pos, msglen - pos, "%s", em->valuestring);
    const cJSON *ems = cJSON_GetObjectItemCaseSensitive(root, "errorMessages");
    const cJSON *it;
    cJSON_ArrayForEach(it, ems) {
        if (cJSON_IsString(it) && pos < msglen)
            pos += (size_t)snprintf(msg + pos, msglen - pos, "%s%s", pos ? "; " : "", it->valuestring);
    }
    cJSON *errors = cJSON_GetObjectItemCaseSensitive(root, "errors");
    if (cJSON_IsObject(errors) && errors->child) {
        cJSON_ArrayForEach(it, errors) {
            if (cJSON_IsString(it) && pos < msglen)
                pos += (size_t)snprintf(msg + pos, msglen - pos, "%s%s: %s", pos ? "; " : "", it->string, it->valuestring);
        }
        jsm->field_errors = cJSON_DetachItemViaPointer(root, errors);
    }
    cJSON_Delete(root);
}

static int curl_nothing_sent(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY;
}

static int curl_tls_failure(CURLcode rc)
{
    return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
           rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM;
}

/* A multipart body is built anew for every attempt: libcurl does not
 * rewind a curl_mime reused after curl_easy_reset(), and a retry would send
 * the headers and then no body. */
static curl_mime *build_mime(CURL *c, const wf_jsm_file *files, size_t n)
{
    curl_mime *mime = curl_mime_init(c);
    for (size_t i = 0; mime && i < n; i++) {
        curl_mimepart *part = curl_mime_addpart(mime);
        if (!part || curl_mime_name(part, "file") != CURLE_OK ||
            curl_mime_filename(part, files[i].filename) != CURLE_OK ||
            curl_mime_type(part, files[i].mime_type) != CURLE_OK ||
            curl_mime_data(part, files[i].data, files[i].len) != CURLE_OK) {
            curl_mime_free(mime);
            mime = NULL;
        }
    }
    return mime;
}

static CURLcode send_once(wf_jsm *jsm, const http_call *call, struct curl_slist *headers)
{
    CURL *c = jsm->curl;
    curl_mime *mime = NULL;
    char url[2048];
    snprintf(url, sizeof url, "%s%s", jsm->cfg->jira_base_url, call->path);
    free(jsm->body);
    jsm->body = NULL;
    jsm->body_len = 0;
    jsm->retry_after_s = -1;
    /* reset keeps the live connection; every option is set again below so
     * that nothing leaks from one call into the next. */
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, jsm->cfg->http_timeout_seconds);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (jsm->cfg->ca_bundle) curl_easy_setopt(c, CURLOPT_CAINFO, jsm->cfg->ca_bundle);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "wf2jsm/1.0");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, jsm);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, jsm);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (jsm->cfg->jira_bearer_token) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, jsm->cfg->jira_bearer_token);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, jsm->cfg->jira_email);
        curl_easy_setopt(c, CURLOPT_PASSWORD, jsm->cfg->jira_api_token);
    }
    if (call->files) {
        if (!(mime = build_mime(c, call->files, call->nfiles))) return CURLE_OUT_OF_MEMORY;
        curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    } else if (call->json) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, call->json);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(call->json));
    }
    /* libcurl silently resends a request once when a reused connection
     * turns out dead before any reply byte. For a create that may already
     * have landed (a lost reply looks exactly like that) the resend would
     * make a duplicate, so calls that must not repeat get a connection of
     * their own. */
    if (!call->repeatable) curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    if (strcmp(call->method, "GET") != 0 && strcmp(call->method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, call->method);
    CURLcode rc = curl_easy_perform(c);
    curl_off_t total_us = 0;
    jsm->duration_ms = curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK ? (long)(total_us / 1000) : -1;
    curl_easy_setopt(c, CURLOPT_MIMEPOST, NULL);
    curl_mime_free(mime);
    return rc;
}

static void log_call(wf_jsm *jsm, const http_call *call, const char *level, const char *outcome, int try)
{
    char status[16], tries[16], ms[24];
    snprintf(status, sizeof status, "%ld", jsm->status);
    snprintf(tries, sizeof tries, "%d", try + 1);
    snprintf(ms, sizeof ms, "%ld", jsm->duration_ms);
    wf_log_kv(jsm->log, "create_jira_tickets", level, "event", "http", "op", call->op, "method", call->method,
              "path", call->path, "status", status, "try", tries, "duration_ms", ms, "outcome", outcome,
              outcome && strcmp(outcome, "ok") ? "error" : NULL, jsm->error, NULL);
}

/* Sends call with the retry policy and classifies the outcome. On WF_OK
 * the body is in jsm->body. */
static wf_err perform(wf_jsm *jsm, const http_call *call)
{
    struct curl_slist *headers = NULL, *h;
    wf_err rc = WF_ERR_NOMEM;
    headers = curl_slist_append(NULL, "Accept: application/json");
    if (!headers) return rc;
    if (call->json && (h = curl_slist_append(headers, "Content-Type: application/json"))) headers = h;
    if (call->xsrf_no_check && (h = curl_slist_append(headers, "X-Atlassian-Token: no-check"))) headers = h;
    if (call->experimental && (h = curl_slist_append(headers, "X-ExperimentalApi: opt-in"))) headers = h;

    jsm->maybe_sent = false;
    jsm->error[0] = '\0';
    cJSON_Delete(jsm->field_errors);
    jsm->field_errors = NULL;
    for (int try = 0;; try++) {
        CURLcode cc = send_once(jsm, call, headers);
        long wait_ms = -1;       /* >= 0: retry after waiting this long */
        jsm->status = 0;
        if (cc != CURLE_OK) {
            int nothing_sent = curl_nothing_sent(cc);
            if (!nothing_sent) jsm->maybe_sent = true;
            snprintf(jsm->error, sizeof jsm->error, "%s: %s (%s)", call->op, curl_easy_strerror(cc),
                     nothing_sent ? "check JIRA_BASE_URL and the network" :
                     curl_tls_failure(cc) ? "the TLS certificate did not verify; set SYNC_CA_BUNDLE for a private CA" :
                     "no complete reply");
            if (curl_tls_failure(cc)) { rc = WF_ERR_JIRA_UNREACHABLE; jsm->maybe_sent = false; goto done; }
            if (nothing_sent || call->repeatable) wait_ms = backoff_ms(jsm, try);
            rc = nothing_sent ? WF_ERR_JIRA_UNREACHABLE : WF_ERR_JIRA_TEMPORARY;
        } else {
            curl_easy_getinfo(jsm->curl, CURLINFO_RESPONSE_CODE, &jsm->status);
            long st = jsm->status;
            if (st >= 200 && st < 300) {
                jsm->maybe_sent = false;
                log_call(jsm, call, "INFO", "ok", try);
                rc = WF_OK;
                goto done;
            }
            char detail[700];
            describe_error_body(jsm, detail, sizeof detail);
            snprintf(jsm->error, sizeof jsm->error, "%s: HTTP %ld%s%s", call->op, st, detail[0] ? ": " : "", detail);
            if (st == 429) {
                jsm->stats->http_429++;
                wait_ms = jsm->retry_after_s >= 0 ? jsm->retry_after_s * 1000 : backoff_ms(jsm, try);
                rc = WF_ERR_JIRA_TEMPORARY;
            } else if (st >= 500) {
                jsm->maybe_sent = true;
                if (call->repeatable) wait_ms = backoff_ms(jsm, try);
                rc = WF_ERR_JIRA_TEMPORARY;
            } else if (st == 401 || st == 403) {
                size_t len = strlen(jsm->error);
                snprintf(jsm->error + len, sizeof jsm->error - len, " (check JIRA_EMAIL and JIRA_API_TOKEN or "
                         "JIRA_BEARER_TOKEN, and that this account may use service desk %s)", jsm->cfg->service_desk_id);
                rc = WF_ERR_JIRA_AUTH;
                goto done_log;
            } else if (st == 404) {
                rc = WF_ERR_JIRA_NOT_FOUND;
                goto done_log;
            } else {
                rc = WF_ERR_JIRA_REJECTED;
                goto done_log;
            }
        }
        if (wait_ms < 0 || try + 1 >= MAX_TRIES_PER_CALL || (jsm->stop && *jsm->stop)) goto done_log;
        if (wait_ms > jsm->budget_left_ms) {
            size_t len = strlen(jsm->error);
            snprintf(jsm->error + len, sizeof jsm->error - len, "; retry budget of this run used up (SYNC_RETRY_BUDGET)");
            goto done_log;
        }
        log_call(jsm, call, "WARN", "retry", try);
        jsm->budget_left_ms -= wait_ms;
        jsm->stats->retries++;
        pause_ms(jsm, wait_ms);
    }
done_log:
    log_call(jsm, call, rc == WF_ERR_JIRA_REJECTED || rc == WF_ERR_JIRA_TEMPORARY ? "WARN" : "ERROR",
             wf_strerror(rc), 0);
done:
    curl_slist_free_all(headers);
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

static char *dup_json_string(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

/* The create call; on_behalf_of, when not NULL, becomes raiseOnBehalfOf. */
static wf_err create_request(wf_jsm *jsm, const cJSON *field_values, const char *on_behalf_of, char **issue_key,
                             char **issue_id)
{
    *issue_key = *issue_id = NULL;
    cJSON *body = cJSON_CreateObject();
    char *json = NULL;
    cJSON *reply = NULL;
    wf_err rc = WF_ERR_NOMEM;
    if (!body || !cJSON_AddStringToObject(body, "serviceDeskId", jsm->cfg->service_desk_id) ||
        !cJSON_AddStringToObject(body, "requestTypeId", jsm->cfg->request_type_id) ||
        !cJSON_AddItemToObject(body, "requestFieldValues", cJSON_Duplicate(field_values, 1)) ||
        (on_behalf_of && !cJSON_AddStringToObject(body, "raiseOnBehalfOf", on_behalf_of)) ||
        !(json = cJSON_PrintUnformatted(body)))
        goto done;
    http_call call = {.op = "create request", .method = "POST", .path = "/rest/servicedeskapi/request", .json = json};
    if ((rc = perform(jsm, &call)) != WF_OK) goto done;
    if ((rc = parse_body(jsm, call.op, &reply)) != WF_OK) goto done;
    *issue_key = dup_json_string(reply, "issueKey");
    *issue_id = dup_json_string(reply, "issueId");
    if (!*issue_key) {
        /* The request exists but we cannot name it: treat as "may exist" so
         * that recovery finds it by its label instead of creating another. */
        snprintf(jsm->error, sizeof jsm->error, "create request: HTTP %ld reply has no issueKey", jsm->status);
        jsm->maybe_sent = true;
        free(*issue_id);
        *issue_id = NULL;
        rc = WF_ERR_JIRA_PROTOCOL;
    }
done:
    cJSON_Delete(reply);
    cJSON_Delete(body);
    free(json);
    return rc;
}

wf_err wf_jsm_create_request(wf_jsm *jsm, const cJSON *field_values, char **issue_key, char **issue_id)
{
    return create_request(jsm, field_values, NULL, issue_key, issue_id);
}

wf_err wf_jsm_upload_temporary(wf_jsm *jsm, const wf_jsm_file *files, size_t n, char ***temp_ids)
{
    *temp_ids = NULL;
    char path[256];
    snprintf(path, sizeof path, "/rest/servicedeskapi/servicedesk/%s/attachTemporaryFile", jsm->cfg->service_desk_id);
    cJSON *reply = NULL;
    char **ids = calloc(n ? n : 1, sizeof *ids);
    wf_err rc = WF_ERR_NOMEM;
    if (!ids) goto done;
    http_call call = {.op = "attach temporary file", .method = "POST", .path = path, .files = files, .nfiles = n,
                      .xsrf_no_check = true, .repeatable = true};
    if ((rc = perform(jsm, &call)) != WF_OK) goto done;
    if ((rc = parse_body(jsm, call.op, &reply)) != WF_OK) goto done;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(reply, "temporaryAttachments"), *it;
    rc = WF_ERR_JIRA_PROTOCOL;
    cJSON_ArrayForEach(it, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "fileName");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "temporaryAttachmentId");
        if (!cJSON_IsString(name) || !cJSON_IsString(id)) continue;
        for (size_t i = 0; i < n; i++)
            if (!ids[i] && strcmp(files[i].filename, name->valuestring) == 0) {
                ids[i] = strdup(id->valuestring);
                break;
            }
    }
    for (size_t i = 0; i < n; i++) {
        if (!ids[i]) {
            snprintf(jsm->error, sizeof jsm->error, "attach temporary file: the reply has no temporaryAttachmentId for %s",
                     files[i].filename);
            goto done;
        }
    }
    *temp_ids = ids;
    ids = NULL;
    rc = WF_OK;
done:
    if (ids) wf_jsm_free_names(ids, n);
    cJSON_Delete(reply);
    return rc;
}

wf_err wf_jsm_attach_temporary(wf_jsm *jsm, const char *issue_key, char *const *temp_ids, size_t n,
                               bool is_public)
{
    char path[256];
    snprintf(path, sizeof path, "/rest/servicedeskapi/request/%s/attachment", issue_key);
    cJSON *body = cJSON_CreateObject();
    cJSON *ids = cJSON_CreateStringArray((const char *const *)temp_ids, (int)n);
    char *json = NULL;
    wf_err rc = WF_ERR_NOMEM;
    if (!body || !ids) { cJSON_Delete(ids); goto done; }
    cJSON_AddItemToObject(body, "temporaryAttachmentIds", ids);
    if (!cJSON_AddBoolToObject(body, "public", is_public) || !(json = cJSON_PrintUnformatted(body))) goto done;
    http_call call = {.op = "attach files", .method = "POST", .path = path, .json = json};
    rc = perform(jsm, &call);
done:
    cJSON_Delete(body);
    free(json);
    return rc;
}

void wf_jsm_free_names(char **names, size_t n)
{
    if (!names) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

wf_err wf_jsm_list_attachments(wf_jsm *jsm, const char *issue_key, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    size_t cap = 0;
    for (long start = 0;;) {
        char path[256];
        snprintf(path, sizeof path, "/rest/servicedeskapi/request/%s/attachment?start=%ld&limit=%d",
                 issue_key, start, PAGE_SIZE);
        cJSON *page = NULL;
        wf_err rc = get_json(jsm, "list attachments", path, &page);
        if (rc != WF_OK) {
            wf_jsm_free_names(*names, *n);
            *names = NULL;
            *n = 0;
            return rc;
        }
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(page, "values"), *it;
        long count = 0;
        cJSON_ArrayForEach(it, values) {
            count++;
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(it, "filename");
            if (!cJSON_IsString(fn)) continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 8;
                char **nn = realloc(*names, cap * sizeof *nn);
                if (!nn) { cJSON_Delete(page); wf_jsm_free_names(*names, *n); *names = NULL; *n = 0; return WF_ERR_NOMEM; }
                *names = nn;
            }
            (*names)[(*n)++] = strdup(fn->valuestring);
        }
        int last = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(page, "isLastPage"));
        cJSON_Delete(page);
        if (last || count == 0) return WF_OK;
        start += count;
    }
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
        cJSON *list = cJSON_GetObjectItemCaseSensitive(reply, "issues");
        if (!cJSON_IsArray(list)) {
            snprintf(jsm->error, sizeof jsm->error, "search: the reply has no issues array");
            cJSON_Delete(reply);
            rc = WF_ERR_JIRA_PROTOCOL;
            break;
        }
        while (list->child) cJSON_AddItemToArray(*issues, cJSON_DetachItemViaPointer(list, list->child));
        free(token);
        token = NULL;
        const cJSON *next = cJSON_GetObjectItemCaseSensitive(reply, "nextPageToken");
        int last = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "isLast"));
        if (!last && cJSON_IsString(next)) token = strdup(next->valuestring);
        cJSON_Delete(reply);
        if (!token) break;
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

wf_err wf_jsm_create_request_as(wf_jsm *jsm, const cJSON *field_values, const char *on_behalf_of,
                                char **issue_key, char **issue_id)
{
    return create_request(jsm, field_values, on_behalf_of, issue_key, issue_id);
}

/* query escaped for a URL; NULL when out of memory. Free with curl_free(). */
static char *escape_query(wf_jsm *jsm, const char *query)
{
    return curl_easy_escape(jsm->curl, query, 0);
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
