/* http_engine.h: keeps HTTP requests in flight and paces them, over one
 * libcurl multi handle, in one thread.
 *
 * Requests are queued with wf_http_submit() and driven by wf_http_pump();
 * each one's done callback runs from inside wf_http_pump() once its answer
 * (or its failure) is in. The engine knows nothing of JSM: it sends, it
 * reads the answer, and it paces:
 *
 *  - every answer's X-RateLimit-Limit / -Remaining / -Reset / -NearLimit
 *    feed a budget per pace key (an endpoint and method): a request starts
 *    only while the server's remaining budget, less the requests sent since
 *    that answer, stays above a quarter of the limit, so the engine slows
 *    down before the limit rather than after it (Atlassian's NearLimit
 *    fires below 20 %);
 *  - a 429's Retry-After holds back that endpoint (or every endpoint when
 *    RateLimit-Reason names a tenant-wide quota);
 *  - the number in flight adapts: it grows by one for every answer that
 *    came back without pressure, and shrinks on a 429, on NearLimit and on
 *    latency rising to twice its floor, within [1, SYNC_MAX_IN_FLIGHT].
 *
 * Connections are reused (HTTP/2 multiplexing where the server offers it),
 * except for requests marked fresh_connection: libcurl silently resends a
 * request once when a reused connection turns out dead before any reply
 * byte, which for a create that may already have landed would make a
 * duplicate. */
#ifndef WF_HTTP_ENGINE_H
#define WF_HTTP_ENGINE_H

#include <curl/curl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "errors.h"
#include "run_stats.h"

typedef struct wf_http_engine wf_http_engine;

/* One part of a multipart body (field name "file"). The engine copies
 * nothing: the strings must live until the request is done. */
typedef struct wf_http_file {
    const char *filename;
    const char *mime_type;
    const char *data;
    size_t len;
} wf_http_file;

typedef struct wf_http_req wf_http_req;
typedef void (*wf_http_done_fn)(wf_http_req *req, void *ctx);

struct wf_http_req {
    /* the request: set by the caller; must stay valid until done runs */
    const char *pace_key;          /* requests sharing a rate-limit budget ("POST /request") */
    const char *method;            /* GET POST PUT DELETE */
    const char *url;
    struct curl_slist *headers;
    const char *body;              /* JSON body or NULL */
    const wf_http_file *files;     /* multipart body or NULL */
    size_t nfiles;
    bool fresh_connection;         /* never on a reused connection (writes) */
    int64_t not_before_us;         /* monotonic time before which it must not start (0: now) */

    /* the outcome: set before done runs */
    CURLcode result;               /* CURLE_OK when an HTTP answer came */
    long status;                   /* HTTP status, 0 without an answer */
    char *resp;                    /* the body, NUL-terminated (engine frees it on the next submit) */
    size_t resp_len;
    long retry_after_s;            /* Retry-After, -1 when absent */
    char reason[64];               /* RateLimit-Reason, "" when absent */
    long latency_ms;

    /* the engine's own */
    CURL *easy;
    curl_mime *mime;
    wf_http_done_fn done;
    void *ctx;
    wf_http_req *next;
    uint64_t seq;
    int64_t started_us;
    long rl_limit, rl_remaining;
    int64_t rl_reset_ms;           /* X-RateLimit-Reset as epoch ms, 0 when absent */
    bool near_limit;
};

/* The engine's figures, for the progress bar and the run summary. */
typedef struct wf_http_figures {
    int in_flight;                 /* requests on the wire now */
    int queued;                    /* submitted, waiting for a slot or for pacing */
    int window;                    /* the adaptive limit on in_flight now */
} wf_http_figures;

/* Creates an engine sending with cfg's credentials, TLS settings and
 * timeouts, at most cfg->max_in_flight at once. stats (http_requests,
 * http_429, peak_in_flight) and stop (cuts waits short) may be NULL and must
 * outlive it. Initialises libcurl globally (a tick with nothing to deliver
 * never creates an engine). Returns WF_ERR_NOMEM or WF_ERR_CONFIG (libcurl
 * could not be set up). Free with wf_http_engine_free(). */
wf_err wf_http_engine_new(const wf_config *cfg, wf_run_stats *stats, const volatile sig_atomic_t *stop,
                          wf_http_engine **out);
void wf_http_engine_free(wf_http_engine *e);

/* Queues req; done(req, ctx) runs from a later wf_http_pump() with the
 * outcome in req. The engine frees req->resp of a previous use of req.
 * Never fails: a request that cannot be set up completes with result
 * CURLE_OUT_OF_MEMORY (nothing was sent). */
void wf_http_submit(wf_http_engine *e, wf_http_req *req, wf_http_done_fn done, void *ctx);

/* Starts what pacing allows, waits at most max_wait_ms for network
 * activity, and completes finished requests (running their done
 * callbacks, which may submit more). Returns the number of requests still
 * queued or in flight. Never fails. */
int wf_http_pump(wf_http_engine *e, long max_wait_ms);

/* The current figures. Never fails. */
wf_http_figures wf_http_figures_now(const wf_http_engine *e);

/* A monotonic clock in microseconds (not_before_us is on it). */
int64_t wf_http_now_us(void);

#endif
