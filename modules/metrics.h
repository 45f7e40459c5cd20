/* metrics.h: the figures an operator watches from outside the job: the
 * backlog, and the Prometheus text file written after every sync run
 * (SYNC_METRICS_FILE).
 *
 * The backlog has one definition, shared by `status`, the progress bar of
 * `sync --catch-up` and the wf2jsm_backlog metric, so that the three never
 * disagree:
 *
 *   backlog = new rows: source rows from the cursor on, less the tracker's
 *             rows at the cursor (so a tie at the cursor, split over
 *             batches, is counted exactly)
 *           + open rows: tracker rows that still need work (pending,
 *             creating, created, attaching, failed; parked rows wait for a
 *             human and are not counted)
 *
 * The cursor is the newest source time the tracker knows, so every term is
 * a range read on an index: the source's (time, id) index, the tracker's
 * source_time index and its partial index on open states. The source is
 * never counted whole. The figure misses rows that commit late with a time
 * below the cursor; the tick's lookback window picks those up. Rows deleted
 * from the source at the cursor's time can make it low by as many.
 *
 * Metrics file format (Prometheus text exposition 0.0.4), one # HELP and one
 * # TYPE line per family:
 *   wf2jsm_last_run_timestamp_seconds      gauge   end of the last run
 *   wf2jsm_last_success_timestamp_seconds  gauge   end of the newest sync or
 *       replay run that exited 0, from the tracker's runs table (whole
 *       seconds; 0 when there never was one, so that a staleness alert fires)
 *   wf2jsm_run_duration_seconds            gauge
 *   wf2jsm_last_run_exit_code              gauge
 *   wf2jsm_backlog                         gauge   (no sample when unknown)
 *   wf2jsm_submissions{state="..."}        gauge   tracker rows per state, now
 *   wf2jsm_delivered_total                 counter submissions delivered
 *   wf2jsm_failed_total                    counter failed attempts, all runs
 *   wf2jsm_parked_total                    counter submissions parked, all runs
 *   wf2jsm_http_429_total                  counter 429 replies, all runs
 *   wf2jsm_http_requests_total             counter HTTP requests (every try), all runs
 *   wf2jsm_garbled_answers_total           counter answers that could not be used, all runs
 *   wf2jsm_run_requests_per_second         gauge   requests per second of the last run
 *   wf2jsm_run_http_429                    gauge   429 replies in the last run
 *   wf2jsm_run_peak_in_flight              gauge   most requests in flight at once, last run
 * The counters are sums over the tracker's runs table (delivered: rows in
 * state delivered), so they only drop when runs or rows are deleted, which
 * Prometheus treats as a counter reset. The file holds no secret. */
#ifndef WF_METRICS_H
#define WF_METRICS_H

#include <stddef.h>
#include "errors.h"
#include "fetch_submissions.h"
#include "run_stats.h"
#include "tracker.h"

typedef struct wf_backlog {
    long new_rows;    /* source rows later than the cursor; -1: unknown */
    long open_rows;   /* tracker rows that still need work */
    long total;       /* new_rows + open_rows; -1: unknown */
} wf_backlog;

/* Counts the backlog as defined above. src may be NULL (database not
 * reachable): then only open_rows is filled and the rest is -1, and WF_OK
 * is returned. Returns WF_ERR_TRACKER (errbuf from the tracker) or WF_ERR_DB
 * (errbuf from libpq, open_rows still filled). Allocates nothing. */
wf_err wf_backlog_count(wf_tracker *t, wf_source *src, wf_backlog *out, char *errbuf, size_t errlen);

/* Writes the metrics of the run that just finished (its figures stats and
 * its exit_code; backlog -1 when unknown) to path, atomically: a temporary
 * file in the same directory, fsync, rename, fsync of the directory, so a
 * scraper reads the old file or the new one, never half of one. The tracker
 * supplies the cumulative figures; call this after wf_tracker_run_finish().
 * The file is made 0644 whatever the umask, because the textfile collector
 * usually runs as another user. Returns WF_ERR_FILE (errbuf names the file
 * and the fix), WF_ERR_TRACKER or WF_ERR_NOMEM; the old file is then left
 * as it was. Allocates nothing that outlives the call. */
wf_err wf_metrics_write(const char *path, wf_tracker *t, const wf_run_stats *stats, int exit_code,
                        long backlog, char *errbuf, size_t errlen);

#endif
