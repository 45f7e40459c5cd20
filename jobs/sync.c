/* sync.c: `wf2jsm sync`, the cron job. */
#define _POSIX_C_SOURCE 200809L
#include "job.h"
#include "../modules/metrics.h"
#include "../modules/process_batch.h"
#include "../modules/tracker_rebuild.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char sync_usage[] =
    "usage: wf2jsm sync [--catch-up] [--dry-run] [--env FILE]\n"
    "\n"
    "Reads at most SYNC_BATCH_SIZE submissions that are not delivered yet, oldest\n"
    "first, and creates one JSM request for each, with the submission attached as\n"
    "JSON and CSV. Safe to kill at any moment: the next run finishes the work.\n"
    "A tracker without a submission (missing, new) is first rebuilt from the\n"
    "requests in JSM that carry a submission key.\n"
    "\n"
    "  --catch-up   repeat batches until nothing is left (after an outage)\n"
    "  --dry-run    print what would be created; write nothing, create nothing\n"
    "  --env FILE   read configuration from FILE instead of ./.env\n"
    "  -h, --help   show this help\n";

/* The only state a signal handler may touch; the run reads it through the
 * pointer in its context and finishes the step in flight. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static long elapsed_ms(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000L + (now.tv_nsec - start->tv_nsec) / 1000000L;
}

/* The progress bar of `sync --catch-up` on a terminal: submissions done out
 * of the backlog counted at the start, the rate and the time left, redrawn
 * in place on stderr at most five times a second. */
typedef struct {
    struct timespec start;
    long total;
    long drawn_ms;   /* -1: not drawn yet */
} progress_bar;

static void draw_progress(const wf_run_stats *s, void *ctx)
{
    progress_bar *p = ctx;
    long ms = elapsed_ms(&p->start);
    if (p->drawn_ms >= 0 && ms - p->drawn_ms < 200) return;
    p->drawn_ms = ms;
    long done = (long)s->delivered + s->failed + s->parked;
    long total = p->total > done ? p->total : done;
    double rate = wf_per_second(done, ms);
    char eta[32] = "--:--";
    if (rate > 0) {
        long left = (long)((double)(total - done) / rate);
        snprintf(eta, sizeof eta, "%ld:%02ld:%02ld", left / 3600, left / 60 % 60, left % 60);
    }
    char bar[31];
    int fill = total > 0 ? (int)(30 * done / total) : 30;
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(30 - fill));
    bar[30] = '\0';
    double calls = wf_per_second(s->http_requests, ms);
    fprintf(stderr, "\r[%s] %ld/%ld  %.1f/s  %.1f calls/s  %d in flight  ETA %s ", bar, done, total, rate, calls,
            s->in_flight, eta);
}

/* SYNC_METRICS_FILE after a run. A metrics file that cannot be written
 * must not cost the delivery its exit status; it is logged, and the
 * staleness alert on the old file tells the operator. */
static void write_metrics(wf_job *job, const wf_run_stats *s, int status, bool window_read_whole)
{
    if (!job->cfg.metrics_file || !job->tracker) return;
    wf_backlog backlog = {.total = -1};
    char err[1024];
    /* When the last batch read its window to the end, no source row is
     * unseen: the backlog is the tracker's open rows, and a no-op tick keeps
     * to its one SQL statement. Otherwise the source is counted. */
    if (window_read_whole) {
        if (wf_backlog_count(job->tracker, NULL, &backlog, err, sizeof err) == WF_OK) backlog.total = backlog.open_rows;
    } else if (job->source) {
        wf_backlog_count(job->tracker, job->source, &backlog, err, sizeof err);
    }
    if (wf_metrics_write(job->cfg.metrics_file, job->tracker, s, status, backlog.total, err, sizeof err) != WF_OK) {
        wf_log_redact(job->log, err);
        wf_log_kv(job->log, "run_summary", "WARN", "event", "metrics_not_written", "error", err, NULL);
    }
}

static void log_summary(wf_log *log, const wf_run_stats *s, int exit_code, const char *mode)
{
    char f[12][24];
    int v[] = {s->seen, s->created, s->adopted, s->delivered, s->failed, s->parked, s->attachments_uploaded,
               s->attachments_failed, s->retries, s->http_429, s->manual_fixes, exit_code};
    for (int i = 0; i < 12; i++) snprintf(f[i], sizeof f[i], "%d", v[i]);
    char dur[24], g[5][24], rps[24];
    snprintf(dur, sizeof dur, "%ld", s->duration_ms);
    int w[] = {s->http_requests, s->peak_in_flight, s->garbled, s->lookups, s->lookup_calls};
    for (int i = 0; i < 5; i++) snprintf(g[i], sizeof g[i], "%d", w[i]);
    snprintf(rps, sizeof rps, "%.1f", wf_per_second(s->http_requests, s->duration_ms));
    wf_log_kv(log, "run_summary", exit_code == 0 ? "INFO" : "WARN", "event", "run_finished", "mode", mode,
              "seen", f[0], "created", f[1], "adopted", f[2], "delivered", f[3], "failed", f[4], "parked", f[5],
              "attachments_uploaded", f[6], "attachments_failed", f[7], "retries", f[8], "http_429", f[9],
              "manual_fixes", f[10], "http_requests", g[0], "requests_per_second", rps, "peak_in_flight", g[1],
              "garbled", g[2], "lookups", g[3], "lookup_calls", g[4], "duration_ms", dur, "exit", f[11], NULL);
}

/* Runs batches over [from_us, to_us] (from_us == INT64_MIN with
 * use_cursor: the tick's window from the tracker's cursor). Shared with
 * `replay`, which passes its own range. */
int sync_run(const char *command, const char *env_file, bool catch_up, bool dry_run,
             bool use_cursor, int64_t from_us, int64_t to_us, bool update_changed)
{
    wf_job job;
    wf_run run;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    /* The connection is finished by the window's query: the tracker's
     * reads happen while the server sets up the session, the run's first
     * write while it runs the query (see "The no-op tick, step by step" in
     * the README). */
    unsigned needs = JOB_NEEDS_JIRA | JOB_NEEDS_TRACKER | JOB_NEEDS_SOURCE | JOB_SOURCE_LATE;
    if (!dry_run) needs |= JOB_NEEDS_LOCK | JOB_NEEDS_LOG;
    wf_err rc = job_setup(&job, command, env_file, needs);
    int status;
    if (rc != WF_OK) {
        status = job_fail(&job, rc, NULL);
        if (!dry_run && rc != WF_ERR_LOCKED) write_metrics(&job, &(wf_run_stats){0}, status, false);
        job_teardown(&job);
        return status;
    }
    if (dry_run) wf_log_echo_stderr(job.log, "WARN");
    wf_source_connect_advance(job.source);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* The run is recorded in runs by the run itself (wf_run_begin()): in a
     * tick, while the server runs the window query. */
    wf_run_init(&run, &job.cfg, job.log, job.tracker, job.source, &stop_requested, 0);
    run.command = command;
    run.dry_run = dry_run;
    run.update_changed = update_changed;
    progress_bar bar = {.start = start, .total = 0, .drawn_ms = -1};
    if (catch_up && !dry_run && isatty(STDERR_FILENO)) {
        wf_backlog backlog;
        char err[1024];
        if (wf_backlog_count(job.tracker, job.source, &backlog, err, sizeof err) == WF_OK) bar.total = backlog.total;
        run.on_progress = draw_progress;
        run.progress_ctx = &bar;
    }
    bool rebuild_checked = false;   /* an empty tracker is checked against JSM once per run */
    bool more = true;
    while (more && rc == WF_OK && !stop_requested) {
        int64_t window = from_us;
        if (use_cursor && (rc = wf_run_window_start(&run, &window)) != WF_OK) break;
        /* A tracker without a submission (missing, new, emptied) first
         * learns from JSM what was delivered, and only then creates. */
        if (use_cursor && window == INT64_MIN && !dry_run && !rebuild_checked) {
            wf_rebuild_report rep;
            bool rebuilt = false;
            rebuild_checked = true;
            if ((rc = wf_run_begin(&run)) != WF_OK) break;   /* rebuilt rows carry the run's id */
            if ((rc = wf_rebuild_if_empty(&run, command, &rep, &rebuilt)) != WF_OK) break;
            if (rebuilt && rep.requests > 0 && (catch_up || isatty(STDOUT_FILENO)))
                printf("%s: the tracker was empty: rebuilt it from %d request%s in JSM (%d submission%s adopted, "
                       "%d to complete, %d queued)\n", command, rep.requests, rep.requests == 1 ? "" : "s",
                       rep.adopted, rep.adopted == 1 ? "" : "s", rep.incomplete, rep.queued);
            if ((rc = wf_run_window_start(&run, &window)) != WF_OK) break;
        }
        rc = wf_process_batch(&run, window, to_us, &more);
        if (!catch_up) break;
    }
    wf_err finished = wf_process_batch_finish(&run);
    if (rc == WF_OK) rc = finished;
    /* A run that ended before it looked at a row (a signal, a tracker
     * error) is recorded all the same. */
    if (!dry_run && run.run_id == 0) {
        wf_err begun = wf_run_begin(&run);
        if (rc == WF_OK) rc = begun;
    }
    run.stats.duration_ms = elapsed_ms(&start);
    if (bar.drawn_ms >= 0) {
        bar.drawn_ms = -1;
        draw_progress(&run.stats, &bar);
        fputc('\n', stderr);
    }

    if (rc != WF_OK) status = wf_exit_code(rc);
    else status = (run.stats.failed + run.stats.parked) > 0 ? wf_exit_code(WF_ERR_ROWS_FAILED) : 0;
    char shown[4 * sizeof run.fatal_msg];   /* Jira's words: shown, never obeyed */
    if (rc != WF_OK) fprintf(stderr, "wf2jsm %s: error: %s\n", command, wf_safe(run.fatal_msg, shown, sizeof shown));
    if (stop_requested)
        wf_log_kv(job.log, "run_summary", "WARN", "event", "interrupted", "detail", "stopped after the step in flight", NULL);
    if (!dry_run) {
        log_summary(job.log, &run.stats, status, catch_up ? "catch-up" : "tick");
        wf_err fin = wf_tracker_run_finish(job.tracker, run.run_id, &run.stats, status, rc != WF_OK ? run.fatal_msg : NULL);
        if (fin != WF_OK && status == 0) status = job_fail(&job, fin, wf_tracker_errmsg(job.tracker));
        write_metrics(&job, &run.stats, status, use_cursor && rc == WF_OK && !more && !stop_requested);
    }
    if (catch_up || dry_run || isatty(STDOUT_FILENO))
        printf("%s: seen %d, created %d, adopted %d, delivered %d, failed %d, parked %d; "
               "%d HTTP requests (%.1f/s, %d answered 429, peak %d in flight)\n", command,
               run.stats.seen, run.stats.created, run.stats.adopted, run.stats.delivered, run.stats.failed,
               run.stats.parked, run.stats.http_requests,
               wf_per_second(run.stats.http_requests, run.stats.duration_ms),
               run.stats.http_429, run.stats.peak_in_flight);
    if (wf_log_errors(job.log) > 0)
        fprintf(stderr, "wf2jsm %s: warning: %d log line(s) could not be written to %s (check its free space "
                "and permissions)\n", command, wf_log_errors(job.log), job.cfg.log_dir);
    wf_run_cleanup(&run);
    job_teardown(&job);
    return status;
}

int cmd_sync(int argc, char **argv)
{
    static const struct option options[] = {
        {"catch-up", no_argument, NULL, 'c'},
        {"dry-run", no_argument, NULL, 'n'},
        {"env", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool catch_up = false, dry_run = false;
    const char *env_file = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': catch_up = true; break;
        case 'n': dry_run = true; break;
        case 'e': env_file = optarg; break;
        case 'h': fputs(sync_usage, stdout); return 0;
        default: fputs(sync_usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wf2jsm sync: unexpected argument '%s'\n%s", argv[optind], sync_usage);
        return 2;
    }
    return sync_run("sync", env_file, catch_up, dry_run, true, INT64_MIN, WF_NO_UPPER_BOUND, false);
}
