/* metrics.c: the backlog figure and the atomically written Prometheus file. */
#define _POSIX_C_SOURCE 200809L
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NSTATES WF_TRACKER_NSTATES

/* The tracker figures the file needs, read before the file is opened so a
 * tracker error never leaves a half-written temporary file behind. */
typedef struct {
    long by_state[NSTATES];
    wf_tracker_totals totals;
} tracker_figures;

static wf_err read_figures(wf_tracker *t, tracker_figures *f, char *errbuf, size_t errlen)
{
    memset(f, 0, sizeof *f);
    wf_err err = wf_tracker_count_states(t, f->by_state);
    /* The value is the tracker's, so that it stays the same, to the
     * second, across the failed runs that follow a success. */
    if (err == WF_OK) err = wf_tracker_run_totals(t, &f->totals);
    if (err != WF_OK)
        snprintf(errbuf, errlen, "%s (while reading the figures for SYNC_METRICS_FILE)", wf_tracker_errmsg(t));
    return err;
}

wf_err wf_backlog_count(wf_tracker *t, wf_source *src, wf_backlog *out, char *errbuf, size_t errlen)
{
    out->new_rows = out->total = -1;
    out->open_rows = 0;
    long open = 0;
    wf_err err = wf_tracker_count_open(t, &open);
    if (err != WF_OK) {
        snprintf(errbuf, errlen, "%s", wf_tracker_errmsg(t));
        return err;
    }
    out->open_rows = open;
    if (!src) return WF_OK;
    int64_t cursor = 0;
    bool has_cursor = false;
    err = wf_tracker_cursor(t, &cursor, &has_cursor);
    if (err != WF_OK) {
        snprintf(errbuf, errlen, "%s", wf_tracker_errmsg(t));
        return err;
    }
    /* Rows at the cursor's own time may be known or not (a tie of many
     * rows inserted at once is split over batches): count from the cursor
     * on and take away the rows the tracker has at that time. An empty
     * tracker has every row ahead. */
    long since = 0, known_at_cursor = 0;
    err = wf_source_count_since(src, has_cursor ? cursor : INT64_MIN, &since, errbuf, errlen);
    if (err != WF_OK) return err;
    if (has_cursor && (err = wf_tracker_count_between(t, cursor, cursor, &known_at_cursor)) != WF_OK) {
        snprintf(errbuf, errlen, "%s", wf_tracker_errmsg(t));
        return err;
    }
    out->new_rows = since > known_at_cursor ? since - known_at_cursor : 0;
    out->total = out->new_rows + out->open_rows;
    return WF_OK;
}

static void family(FILE *fp, const char *name, const char *type, const char *help)
{
    fprintf(fp, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render(FILE *fp, const tracker_figures *f, const wf_run_stats *stats, int exit_code, long backlog,
                   int64_t now_us)
{
    double now_s = (double)now_us / 1e6;
    family(fp, "wf2jsm_last_run_timestamp_seconds", "gauge", "Unix time at which the last sync run finished.");
    fprintf(fp, "wf2jsm_last_run_timestamp_seconds %.3f\n", now_s);
    family(fp, "wf2jsm_last_success_timestamp_seconds", "gauge",
           "Unix time at which the last sync run that exited 0 finished (0: never).");
    fprintf(fp, "wf2jsm_last_success_timestamp_seconds %lld\n", (long long)f->totals.last_success_s);
    family(fp, "wf2jsm_run_duration_seconds", "gauge", "Wall time of the last sync run.");
    fprintf(fp, "wf2jsm_run_duration_seconds %.3f\n", (double)stats->duration_ms / 1000.0);
    family(fp, "wf2jsm_last_run_exit_code", "gauge", "Exit status of the last sync run (see wf2jsm(1)).");
    fprintf(fp, "wf2jsm_last_run_exit_code %d\n", exit_code);
    family(fp, "wf2jsm_backlog", "gauge",
           "Source rows later than the cursor plus tracked rows that still need work.");
    if (backlog >= 0) fprintf(fp, "wf2jsm_backlog %ld\n", backlog);
    family(fp, "wf2jsm_submissions", "gauge", "Tracked submissions by delivery state.");
    for (size_t i = 0; i < NSTATES; i++)
        fprintf(fp, "wf2jsm_submissions{state=\"%s\"} %lld\n", wf_tracker_states[i], (long long)f->by_state[i]);
    family(fp, "wf2jsm_delivered_total", "counter", "Submissions delivered to JSM (request and attachments).");
    fprintf(fp, "wf2jsm_delivered_total %lld\n", (long long)f->by_state[4]);
    family(fp, "wf2jsm_failed_total", "counter", "Failed delivery attempts, summed over all runs.");
    fprintf(fp, "wf2jsm_failed_total %lld\n", (long long)f->totals.failed);
    family(fp, "wf2jsm_parked_total", "counter", "Submissions parked for a human, summed over all runs.");
    fprintf(fp, "wf2jsm_parked_total %lld\n", (long long)f->totals.parked);
    family(fp, "wf2jsm_http_429_total", "counter", "HTTP 429 replies from Jira, summed over all runs.");
    fprintf(fp, "wf2jsm_http_429_total %lld\n", (long long)f->totals.http_429);
    family(fp, "wf2jsm_http_requests_total", "counter", "HTTP requests sent to Jira (every try), summed over all runs.");
    fprintf(fp, "wf2jsm_http_requests_total %lld\n", (long long)f->totals.http_requests);
    family(fp, "wf2jsm_garbled_answers_total", "counter",
           "Answers from Jira whose status or body could not be used, summed over all runs.");
    fprintf(fp, "wf2jsm_garbled_answers_total %lld\n", (long long)f->totals.garbled);
    family(fp, "wf2jsm_run_requests_per_second", "gauge", "HTTP requests per second of the last sync run.");
    fprintf(fp, "wf2jsm_run_requests_per_second %.2f\n",
            wf_per_second(stats->http_requests, stats->duration_ms));
    family(fp, "wf2jsm_run_http_429", "gauge", "HTTP 429 replies in the last sync run.");
    fprintf(fp, "wf2jsm_run_http_429 %d\n", stats->http_429);
    family(fp, "wf2jsm_run_peak_in_flight", "gauge", "Most HTTP requests in flight at once in the last sync run.");
    fprintf(fp, "wf2jsm_run_peak_in_flight %d\n", stats->peak_in_flight);
}

/* Makes the rename durable: without this a crash can bring back the old
 * directory entry. Failure is not worth failing the write for. */
static void fsync_parent(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

wf_err wf_metrics_write(const char *path, wf_tracker *t, const wf_run_stats *stats, int exit_code,
                        long backlog, char *errbuf, size_t errlen)
{
    tracker_figures f;
    wf_err rc = read_figures(t, &f, errbuf, errlen);
    if (rc != WF_OK) return rc;
    /* Same directory, so the rename is atomic; a name not ending in .prom,
     * so node_exporter's textfile collector never reads it half-written. */
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
        snprintf(errbuf, errlen, "SYNC_METRICS_FILE=%s: the path is too long", path);
        return WF_ERR_FILE;
    }
    FILE *fp = NULL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || fchmod(fd, 0644) != 0 || !(fp = fdopen(fd, "w"))) goto io_error;
    render(fp, &f, stats, exit_code, backlog, wf_now_us());
    if (fflush(fp) != 0 || ferror(fp) || fsync(fd) != 0) goto io_error;
    fd = -1;
    if (fclose(fp) != 0) { fp = NULL; goto io_error; }
    fp = NULL;
    if (rename(tmp, path) != 0) goto io_error;
    fsync_parent(path);
    return WF_OK;

io_error:
    snprintf(errbuf, errlen, "SYNC_METRICS_FILE=%s cannot be written (%s): %s (make its directory writable by "
             "this user, or change SYNC_METRICS_FILE)", path, tmp, strerror(errno));
    if (fp) fclose(fp);
    else if (fd >= 0) close(fd);
    unlink(tmp);
    return WF_ERR_FILE;
}
