/* http_engine.c: requests in flight over one curl multi handle, paced by
 * the server's rate-limit headers (see http_engine.h). */
#define _POSIX_C_SOURCE 200809L
#include "http_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_PACERS 32
#define START_WINDOW 4
/* Atlassian flags NearLimit below 20 % of a budget; keeping a quarter in
 * reserve means a well-paced run rarely sees it at all. */
#define RESERVE_DIVISOR 4
/* How often, at most, pressure may shrink the window: one burst of 429s
 * answering requests sent together is one signal, not twenty. */
#define SHRINK_GAP_US 500000

typedef struct pacer {
    char key[64];
    long limit;               /* X-RateLimit-Limit, 0 until seen */
    long remaining;           /* X-RateLimit-Remaining of the newest basis */
    uint64_t basis_seq;       /* the request whose answer gave remaining */
    int64_t basis_us;         /* when that answer arrived */
    uint64_t sent;            /* requests of this key started so far (seq of the last) */
    double refill_per_s;      /* inferred from Reset; 0 when unknown */
    int64_t blocked_until_us; /* Retry-After */
    int in_flight;
    int64_t next_probe_us;
    long latency_floor_ms;    /* the lowest latency seen, -1 before the first */
} pacer;

struct wf_http_engine {
    const wf_config *cfg;
    wf_run_stats *stats;
    const volatile sig_atomic_t *stop;
    CURLM *multi;
    wf_http_req *queue_head, *queue_tail;   /* submitted, not started */
    int in_flight, queued;
    int window, max_window;
    int grow_credit;
    int64_t last_shrink_us;
    int64_t global_blocked_until_us;
    wf_http_req **active;                   /* in flight, max_window slots */
    CURL **idle;                            /* easy handles kept for reuse, at most max_window */
    int nidle;
    pacer pacers[MAX_PACERS];
    size_t npacers;
    uint64_t seq;
};

int64_t wf_http_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

wf_err wf_http_engine_new(const wf_config *cfg, wf_run_stats *stats, const volatile sig_atomic_t *stop,
                          wf_http_engine **out)
{
    *out = NULL;
    wf_http_engine *e = calloc(1, sizeof *e);
    if (!e) return WF_ERR_NOMEM;
    /* Here rather than in main(): a tick with nothing to deliver never pays
     * for TLS set-up. libcurl counts init/cleanup pairs. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(e);
        return WF_ERR_CONFIG;
    }
    if (!(e->multi = curl_multi_init())) {
        curl_global_cleanup();
        free(e);
        return WF_ERR_CONFIG;
    }
    e->cfg = cfg;
    e->stats = stats;
    e->stop = stop;
    e->max_window = cfg->max_in_flight > 0 ? cfg->max_in_flight : 1;
    e->window = e->max_window < START_WINDOW ? e->max_window : START_WINDOW;
    e->idle = calloc((size_t)e->max_window, sizeof *e->idle);
    if (!e->idle || !(e->active = calloc((size_t)e->max_window, sizeof *e->active))) {
        free(e->idle);
        curl_multi_cleanup(e->multi);
        curl_global_cleanup();
        free(e);
        return WF_ERR_NOMEM;
    }
    curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)e->max_window + 2);
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, (long)e->max_window + 2);
    *out = e;
    return WF_OK;
}

/* Easy handles are kept and reset rather than made anew for every
 * request: memory stays that of the window whatever the backlog. */
static void finish_transfer(wf_http_engine *e, wf_http_req *req)
{
    if (req->easy) {
        curl_multi_remove_handle(e->multi, req->easy);
        if (e->nidle < e->max_window) {
            curl_easy_reset(req->easy);
            e->idle[e->nidle++] = req->easy;
        } else {
            curl_easy_cleanup(req->easy);
        }
        req->easy = NULL;
    }
    curl_mime_free(req->mime);
    req->mime = NULL;
}

void wf_http_engine_free(wf_http_engine *e)
{
    if (!e) return;
    /* Requests still queued or in flight are abandoned without their
     * callbacks: the caller is going away. */
    for (int i = 0; i < e->max_window; i++)
        if (e->active[i]) finish_transfer(e, e->active[i]);
    for (int i = 0; i < e->nidle; i++) curl_easy_cleanup(e->idle[i]);
    free(e->idle);
    free(e->active);
    curl_multi_cleanup(e->multi);
    curl_global_cleanup();
    free(e);
}

static pacer *pacer_for(wf_http_engine *e, const char *key)
{
    const char *k = key ? key : "";
    for (size_t i = 0; i < e->npacers; i++)
        if (strcmp(e->pacers[i].key, k) == 0) return &e->pacers[i];
    /* More endpoints than slots: share the last one (more cautious, never
     * less). */
    pacer *p = &e->pacers[e->npacers < MAX_PACERS ? e->npacers++ : MAX_PACERS - 1];
    if (p->key[0] == '\0') {
        snprintf(p->key, sizeof p->key, "%s", k);
        p->latency_floor_ms = -1;
    }
    return p;
}

/* ---- reading an answer's headers ---------------------------------------- */

static bool header_is(const char *line, size_t n, const char *name, const char **value, size_t *vlen)
{
    size_t len = strlen(name);
    if (n <= len || strncasecmp(line, name, len) != 0 || line[len] != ':') return false;
    const char *v = line + len + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    *value = v;
    *vlen = (size_t)(end - v);
    return true;
}

/* X-RateLimit-Reset: Atlassian sends an ISO 8601 time (to the minute, in
 * their documentation; the test server adds seconds and milliseconds).
 * Returns epoch milliseconds, or 0 when text is not such a time or gives
 * only minutes: a reset rounded to the minute says too little about how
 * fast the budget refills, and the pacer then probes instead. */
static int64_t parse_iso_ms(const char *text)
{
    int y, mo, d, h, mi;
    double s = 0;
    int n = 0;
    if (sscanf(text, "%4d-%2d-%2dT%2d:%2d%n", &y, &mo, &d, &h, &mi, &n) != 5) return 0;
    if (text[n] != ':' || sscanf(text + n + 1, "%lf", &s) != 1) return 0;
    /* timegm is not C11: count the days since the epoch by hand. */
    int64_t days = 0;
    for (int yr = 1970; yr < y; yr++) days += 365 + ((yr % 4 == 0 && yr % 100 != 0) || yr % 400 == 0);
    static const int cum[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    if (mo < 1 || mo > 12) return 0;
    days += cum[mo - 1] + d - 1 + (mo > 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    return ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)(s * 1000.0);
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    wf_http_req *req = userp;
    size_t n = size * nmemb;
    const char *v;
    size_t vlen;
    char value[96];
    if (header_is(data, n, "Retry-After", &v, &vlen) || header_is(data, n, "X-RateLimit-Limit", &v, &vlen) ||
        header_is(data, n, "X-RateLimit-Remaining", &v, &vlen) || header_is(data, n, "X-RateLimit-Reset", &v, &vlen) ||
        header_is(data, n, "X-RateLimit-NearLimit", &v, &vlen) || header_is(data, n, "RateLimit-Reason", &v, &vlen)) {
        snprintf(value, sizeof value, "%.*s", (int)(vlen < sizeof value ? vlen : sizeof value - 1), v);
        char *end;
        long num = strtol(value, &end, 10);
        bool is_num = end != value && *end == '\0';
        if (strncasecmp(data, "Retry-After", 11) == 0) {
            /* delta-seconds or an HTTP date; both are honoured */
            if (is_num && num >= 0) {
                req->retry_after_s = num;
            } else {
                time_t when = curl_getdate(value, NULL);
                if (when > 0) req->retry_after_s = when > time(NULL) ? (long)(when - time(NULL)) : 0;
            }
        } else if (strncasecmp(data, "X-RateLimit-Limit", 17) == 0) {
            if (is_num && num > 0) req->rl_limit = num;
        } else if (strncasecmp(data, "X-RateLimit-Remaining", 21) == 0) {
            if (is_num && num >= 0) req->rl_remaining = num;
        } else if (strncasecmp(data, "X-RateLimit-Reset", 17) == 0) {
            req->rl_reset_ms = is_num ? (int64_t)num * 1000 : parse_iso_ms(value);
        } else if (strncasecmp(data, "X-RateLimit-NearLimit", 21) == 0) {
            req->near_limit = strcasecmp(value, "true") == 0;
        } else {
            snprintf(req->reason, sizeof req->reason, "%s", value);
        }
    }
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    wf_http_req *req = userp;
    size_t n = size * nmemb;
    char *nb = realloc(req->resp, req->resp_len + n + 1);
    if (!nb) return 0;
    memcpy(nb + req->resp_len, data, n);
    req->resp = nb;
    req->resp_len += n;
    nb[req->resp_len] = '\0';
    return n;
}

/* ---- starting a request --------------------------------------------------- */

static curl_mime *build_mime(CURL *c, const wf_http_file *files, size_t n)
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

static bool start_transfer(wf_http_engine *e, wf_http_req *req)
{
    const wf_config *cfg = e->cfg;
    CURL *c = e->nidle > 0 ? e->idle[--e->nidle] : curl_easy_init();
    if (!c) return false;
    req->easy = c;
    curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)req);
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, cfg->http_timeout_seconds);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    if (cfg->ca_bundle) curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_bundle);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "wf2jsm/1.0");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, req->headers);
    if (cfg->jira_bearer_token) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, cfg->jira_bearer_token);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, cfg->jira_email);
        curl_easy_setopt(c, CURLOPT_PASSWORD, cfg->jira_api_token);
    }
    if (req->files) {
        /* Built anew for every attempt: a curl_mime is not rewound for a
         * second send. */
        if (!(req->mime = build_mime(c, req->files, req->nfiles))) return false;
        curl_easy_setopt(c, CURLOPT_MIMEPOST, req->mime);
    } else if (req->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(req->body));
    }
    if (req->fresh_connection) {
        /* See http_engine.h: a write that may have landed must never be
         * resent by libcurl on a reused connection. */
        curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
    } else {
        /* Wait for a multiplexed HTTP/2 stream rather than open another
         * connection. */
        curl_easy_setopt(c, CURLOPT_PIPEWAIT, 1L);
    }
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    return curl_multi_add_handle(e->multi, c) == CURLM_OK;
}

void wf_http_submit(wf_http_engine *e, wf_http_req *req, wf_http_done_fn done, void *ctx)
{
    free(req->resp);
    req->resp = NULL;
    req->resp_len = 0;
    req->result = CURLE_OK;
    req->status = 0;
    req->retry_after_s = -1;
    req->reason[0] = '\0';
    req->latency_ms = 0;
    req->rl_limit = req->rl_remaining = -1;
    req->rl_reset_ms = 0;
    req->near_limit = false;
    req->done = done;
    req->ctx = ctx;
    req->next = NULL;
    if (e->queue_tail) e->queue_tail->next = req;
    else e->queue_head = req;
    e->queue_tail = req;
    e->queued++;
}

/* Whether pacing lets a request of p start now; *wake_us is lowered to the
 * time it might when not. */
static bool pacer_allows(const wf_http_engine *e, pacer *p, int64_t now, int64_t *wake_us)
{
    int64_t blocked = p->blocked_until_us > e->global_blocked_until_us ? p->blocked_until_us
                                                                          : e->global_blocked_until_us;
    if (now < blocked) {
        if (blocked < *wake_us) *wake_us = blocked;
        return false;
    }
    if (p->limit <= 0) return true;
    double est = (double)p->remaining - (double)(p->sent - p->basis_seq);
    if (p->refill_per_s > 0) est += p->refill_per_s * (double)(now - p->basis_us) / 1e6;
    long reserve = p->limit / RESERVE_DIVISOR;
    if (est - 1 >= (double)reserve) return true;
    /* Out of budget by our count. With nothing of this key in flight no
     * answer will correct the count, so send a probe now and then: its
     * answer says what the server really has left. */
    if (p->in_flight == 0 && now >= p->next_probe_us) {
        double gap_s = p->refill_per_s > 0 ? 1.0 / p->refill_per_s : 1.0 / (double)p->limit;
        p->next_probe_us = now + (int64_t)(gap_s * 1e6) + 1000;
        return true;
    }
    int64_t when = p->in_flight == 0 ? p->next_probe_us : now + 50000;
    if (p->refill_per_s > 0) {
        int64_t refill = now + (int64_t)(((double)reserve + 1 - est) / p->refill_per_s * 1e6);
        if (refill < when) when = refill;
    }
    if (when < *wake_us) *wake_us = when;
    return false;
}

/* Starts queued requests while the window has room and pacing allows, in
 * submission order per endpoint (a held-back endpoint does not hold back
 * the others). Returns the earliest time a held-back request may start. */
static int64_t start_ready(wf_http_engine *e)
{
    int64_t now = wf_http_now_us(), wake = INT64_MAX;
    wf_http_req *prev = NULL, *req = e->queue_head;
    while (req && e->in_flight < e->window) {
        wf_http_req *next = req->next;
        pacer *p = pacer_for(e, req->pace_key);
        bool go = true;
        if (req->not_before_us > now) {
            if (req->not_before_us < wake) wake = req->not_before_us;
            go = false;
        } else if (!pacer_allows(e, p, now, &wake)) {
            go = false;
        }
        if (!go) {
            prev = req;
            req = next;
            continue;
        }
        if (prev) prev->next = next;
        else e->queue_head = next;
        if (e->queue_tail == req) e->queue_tail = prev;
        req->next = NULL;
        e->queued--;
        req->seq = ++p->sent;
        req->started_us = now;
        if (!start_transfer(e, req)) {
            finish_transfer(e, req);
            req->result = CURLE_OUT_OF_MEMORY;
            req->done(req, req->ctx);
        } else {
            for (int i = 0; i < e->max_window; i++)
                if (!e->active[i]) { e->active[i] = req; break; }
            p->in_flight++;
            e->in_flight++;
            if (e->stats) {
                e->stats->in_flight = e->in_flight;
                if (e->in_flight > e->stats->peak_in_flight) e->stats->peak_in_flight = e->in_flight;
            }
        }
        req = next;
    }
    return wake;
}

static void shrink(wf_http_engine *e, int64_t now, int num, int den)
{
    if (now - e->last_shrink_us < SHRINK_GAP_US) return;
    e->last_shrink_us = now;
    e->window = e->window * num / den;
    if (e->window < 1) e->window = 1;
    e->grow_credit = 0;
}

/* What an answer says about pacing. */
static void learn(wf_http_engine *e, wf_http_req *req, int64_t now)
{
    pacer *p = pacer_for(e, req->pace_key);
    p->in_flight--;
    if (req->result != CURLE_OK) return;
    if (req->rl_limit > 0 && req->rl_remaining >= 0 && req->seq >= p->basis_seq) {
        p->limit = req->rl_limit;
        p->remaining = req->rl_remaining;
        p->basis_seq = req->seq;
        p->basis_us = now;
        /* A token bucket that will be full again at Reset refills at
         * (limit - remaining) / (Reset - now). */
        int64_t to_reset_ms = req->rl_reset_ms - wall_ms();
        if (req->rl_reset_ms > 0 && to_reset_ms > 0 && req->rl_remaining < req->rl_limit) {
            double r = (double)(req->rl_limit - req->rl_remaining) * 1000.0 / (double)to_reset_ms;
            if (r < 100.0 * (double)req->rl_limit) p->refill_per_s = r;
        }
    }
    bool slow = false;
    if (p->latency_floor_ms < 0 || req->latency_ms < p->latency_floor_ms) p->latency_floor_ms = req->latency_ms;
    else slow = req->latency_ms > 2 * p->latency_floor_ms + 50;
    if (req->status == 429) {
        int64_t wait_us = (req->retry_after_s >= 0 ? req->retry_after_s : 1) * 1000000;
        /* A tenant-wide quota stops every endpoint; a burst limit only this
         * one; a per-issue write limit only writes to that issue (the retry
         * of this request waits for it). */
        if (strstr(req->reason, "quota") || strstr(req->reason, "global")) e->global_blocked_until_us = now + wait_us;
        else if (!strstr(req->reason, "per-issue")) p->blocked_until_us = now + wait_us;
        p->remaining = 0;
        p->basis_seq = req->seq;
        p->basis_us = now;
        shrink(e, now, 1, 2);
    } else if (req->near_limit || slow) {
        shrink(e, now, 3, 4);
    } else if (e->window < e->max_window && e->in_flight + 1 >= e->window) {
        /* Grow only while the window is actually in use. */
        e->window++;
    }
}

int wf_http_pump(wf_http_engine *e, long max_wait_ms)
{
    int64_t wake = start_ready(e);
    int running = 0;
    curl_multi_perform(e->multi, &running);
    if (e->in_flight > 0 || e->queued > 0) {
        long wait = max_wait_ms;
        if (wake != INT64_MAX) {
            long until = (long)((wake - wf_http_now_us()) / 1000) + 1;
            if (until < wait) wait = until < 0 ? 0 : until;
        }
        if (e->stop && *e->stop && wait > 100) wait = 100;
        if (e->in_flight > 0) {
            curl_multi_poll(e->multi, NULL, 0, (int)wait, NULL);
        } else if (wait > 0) {
            struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        curl_multi_perform(e->multi, &running);
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(e->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        wf_http_req *req = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        if (!req) continue;
        int64_t now = wf_http_now_us();
        req->result = msg->data.result;
        if (req->result == CURLE_OK) curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
        req->latency_ms = (long)((now - req->started_us) / 1000);
        finish_transfer(e, req);
        for (int i = 0; i < e->max_window; i++)
            if (e->active[i] == req) e->active[i] = NULL;
        e->in_flight--;
        if (e->stats) {
            e->stats->in_flight = e->in_flight;
            e->stats->http_requests++;
            if (req->status == 429) e->stats->http_429++;
        }
        learn(e, req, now);
        req->done(req, req->ctx);
    }
    start_ready(e);
    return e->in_flight + e->queued;
}

wf_http_figures wf_http_figures_now(const wf_http_engine *e)
{
    wf_http_figures f = {0, 0, 0};
    if (e) {
        f.in_flight = e->in_flight;
        f.queued = e->queued;
        f.window = e->window;
    }
    return f;
}
