/* run_stats.h: the figures of one run, as logged in its summary line and
 * stored in the tracker's runs table. A plain value type. */
#ifndef WF_RUN_STATS_H
#define WF_RUN_STATS_H

typedef struct wf_run_stats {
    int seen;                  /* rows read from the source */
    int created;               /* JSM requests created */
    int adopted;               /* requests found in JSM after a crash and adopted */
    int delivered;             /* submissions completed (request + attachments) */
    int failed;                /* submissions that failed this run (will be retried) */
    int parked;                /* submissions parked this run */
    int attachments_uploaded;
    int attachments_failed;
    int retries;               /* HTTP retries after 429, 5xx or timeouts */
    int http_429;
    int manual_fixes;          /* fields dropped and recorded for a manual fix */
    int http_requests;         /* HTTP requests answered or failed (every try counts) */
    int peak_in_flight;        /* most HTTP requests in flight at once */
    int garbled;               /* answers whose status or body could not be used */
    int lookups;               /* batches that asked JSM before creating */
    int lookup_calls;          /* HTTP calls those searches made */
    int in_flight;             /* HTTP requests in flight right now (progress bar; not stored) */
    long duration_ms;
} wf_run_stats;

/* count per second over ms milliseconds (0 when no time passed): the rate
 * every report prints, the progress bar, the summary, status and the
 * metrics file alike. Never fails. */
static inline double wf_per_second(long count, long ms)
{
    return ms > 0 ? (double)count * 1000.0 / (double)ms : 0.0;
}

#endif
