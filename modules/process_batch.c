/* process_batch.c: the batch driver. Streams the window's rows from the
 * source, keys them, filters out what the tracker holds as done, and hands
 * each submission that needs work to the delivery protocol (delivery.c) or,
 * for `replay --update-changed`, to replay_update.c. */
#define _POSIX_C_SOURCE 200809L
#include "process_batch.h"
#include "delivery.h"
#include "replay_update.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODULE "process_batch"

typedef struct {
    wf_run *run;
    int64_t skip_before_us;    /* rows older than this came from the retry query */
    int worked;                /* submissions that needed work this batch */
    int keyed;                 /* rows whose key was computed (the others the tracker knew by id and time) */
    bool columns_checked;
    wf_delivery **work;        /* the batch's deliveries, in source order */
    size_t nwork;
    int64_t newest_in_flight_us;  /* of the last batches' deliveries still in the pipeline */
} batch_state;

static wf_err set_fatal(wf_run *run, wf_err rc, const char *msg)
{
    return wf_run_fail(run, rc, msg);
}

wf_err wf_run_window_start(wf_run *run, int64_t *from_us)
{
    int64_t cursor = 0;
    bool has_cursor = false;
    wf_err rc = wf_tracker_cursor(run->tracker, &cursor, &has_cursor);
    if (rc != WF_OK) return set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
    if (!has_cursor) {
        *from_us = INT64_MIN;
        return WF_OK;
    }
    /* A future-dated row must not drag the window past rows still to come. */
    int64_t now = wf_now_us();
    if (cursor > now) cursor = now;
    *from_us = cursor - (int64_t)run->cfg->lookback_seconds * 1000000;
    return WF_OK;
}

/* ---- the stream consumer ---------------------------------------------- */

static bool needs_work(const wf_run *run, const wf_tracker_row *row)
{
    if (strcmp(row->state, "delivered") == 0 || strcmp(row->state, "parked") == 0) return false;
    if (row->last_run == run->run_id) return false;   /* once per run */
    /* A create that may have landed is only looked up once JQL can see it. */
    if (row->may_exist && !row->jsm_key &&
        row->updated_at_us > wf_now_us() - (int64_t)run->cfg->search_settle_seconds * 1000000)
        return false;
    return true;
}

/* False when a key column is SQL NULL: the tracker's texts cannot tell a
 * NULL id from an empty one, the key can. */
static bool key_columns_present(const wf_run *run, const wf_submission *sub)
{
    for (size_t i = 0; i < run->cfg->n_key_columns; i++)
        if (!wf_submission_get(sub, run->cfg->key_columns[i], NULL)) return false;
    return true;
}

static wf_row_action on_row(const wf_submission *sub, void *ctx)
{
    batch_state *bs = ctx;
    wf_run *run = bs->run;
    char key[WF_KEY_HEX_LEN + 1], err[512];
    if (run->fatal != WF_OK || (run->stop && *run->stop)) return WF_ROW_STOP;
    if (!bs->columns_checked) {
        bs->columns_checked = true;
        wf_err rc = wf_mapping_check_columns(&run->mapping, (const char *const *)sub->names, sub->ncols, err, sizeof err);
        if (rc != WF_OK && run->mapping_ready) { set_fatal(run, rc, err); return WF_ROW_STOP; }
    }
    wf_tracker_row row;
    bool found = false;
    wf_err rc = WF_OK;
    /* The window's rows are mostly known ones, and a tick with nothing new
     * is all known rows: when the key is a function of the id and time
     * texts and the tracker holds keys of that scheme only, the row the
     * tracker recorded with those texts has this row's key, so it is taken
     * as found without computing the key (nor setting up SHA-256 at all).
     * A row without it, or with a NULL key column, is keyed as usual. */
    if (run->known_by_source == 1 && key_columns_present(run, sub)) {
        if ((rc = wf_tracker_get_prefetched_by_source(run->tracker, sub->id, sub->time_text, &row, &found)) != WF_OK) {
            set_fatal(run, rc, "out of memory");
            return WF_ROW_STOP;
        }
        if (found) memcpy(key, row.key, sizeof key);
    }
    if (!found) {
        if (!run->hasher && (rc = wf_key_hasher_new(&run->hasher)) != WF_OK) {
            set_fatal(run, rc, "libcrypto has no SHA-256");
            return WF_ROW_STOP;
        }
        rc = wf_key_compute_with(run->hasher, sub, (const char *const *)run->cfg->key_columns, run->cfg->n_key_columns,
                                 key, err, sizeof err);
        if (rc != WF_OK) { set_fatal(run, rc, err); return WF_ROW_STOP; }
        bs->keyed++;
    }
    /* Read again while its delivery is still in flight from the last batch. */
    if (wf_pipeline_holds(run, key)) {
        if (found) wf_tracker_row_free(&row);
        return WF_ROW_NEXT;
    }
    run->stats.seen++;

    if (!found && (rc = wf_tracker_get(run->tracker, key, &row, &found)) != WF_OK) {
        set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
        return WF_ROW_STOP;
    }
    bool work = !found || needs_work(run, &row);
    /* A row that committed late, older than what is in flight by more than
     * SYNC_LOOKBACK: taking it now could let the cursor pass it before it is
     * recorded. A run that read the batches one after the other would not
     * have seen it either (see "The cursor guarantee"). */
    if (work && !found && bs->newest_in_flight_us != INT64_MIN &&
        sub->time_us < bs->newest_in_flight_us - (int64_t)run->cfg->lookback_seconds * 1000000)
        work = false;
    bool update = !work && run->update_changed && strcmp(row.state, "delivered") == 0 && row.jsm_key;
    if (work || update) {
        if (!run->mapping_ready) {
            if (wf_run_load_mapping(run) != WF_OK) goto stop;
            if (wf_mapping_check_columns(&run->mapping, (const char *const *)sub->names, sub->ncols, err, sizeof err) != WF_OK) {
                set_fatal(run, WF_ERR_CONFIG, err);
                goto stop;
            }
        }
    }
    if (update) {
        wf_replay_update_if_changed(run, sub, key, &row);
    } else if (work) {
        /* Collected, not sent: the batch asks JSM about all of its
         * would-be creates in one search, then delivers them together. */
        bs->worked++;
        wf_delivery *d = NULL;
        if (wf_delivery_new(run, sub, key, found ? &row : NULL, &d) == WF_OK && d) bs->work[bs->nwork++] = d;
        else if (run->dry_run && run->on_progress) run->on_progress(&run->stats, run->progress_ctx);
    }
    if (found) wf_tracker_row_free(&row);
    if (run->fatal != WF_OK) return WF_ROW_STOP;
    return bs->worked >= run->cfg->batch_size ? WF_ROW_STOP : WF_ROW_NEXT;
stop:
    if (found) wf_tracker_row_free(&row);
    return WF_ROW_STOP;
}

#define WF_PREFETCH_MAX 5000

wf_err wf_process_batch(wf_run *run, int64_t from_us, int64_t to_us, bool *more)
{
    batch_state bs = {.run = run};
    if (!(bs.work = calloc((size_t)run->cfg->batch_size + 1, sizeof *bs.work)))
        return set_fatal(run, WF_ERR_NOMEM, "out of memory");
    bs.newest_in_flight_us = wf_pipeline_newest_us(run);
    char err[1024];
    int64_t *times = NULL;
    size_t ntimes = 0;
    long known = 0;
    *more = false;

    /* Rows older than the window that still need work (failed, requeued,
     * interrupted) are fetched by their exact times: one extra query, and
     * only when there are such rows. */
    wf_err rc = wf_tracker_retry_times(run->tracker, from_us, run->run_id ? run->run_id : -1, &times, &ntimes);
    if (rc != WF_OK) return set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
    /* The first batch of a run may get here before the database has set
     * up the session (sync finishes the connection with its first query):
     * the handshake moves on before the next tracker read. */
    wf_source_connect_advance(run->source);
    if (ntimes > 0 && from_us != INT64_MIN) {
        /* Rows are about to be looked at: the run must have its id. */
        if (wf_run_begin(run) != WF_OK) {
            free(times);
            goto deliver;
        }
        rc = wf_source_stream_times(run->source, times, ntimes, on_row, &bs, err, sizeof err);
        if (rc != WF_OK && run->fatal == WF_OK) set_fatal(run, rc, err);
    }
    free(times);
    if (run->fatal != WF_OK) goto deliver;
    if (bs.worked >= run->cfg->batch_size) goto deliver;
    /* Every known row in the window may come back before the first new one,
     * so the limit makes room for all of them plus a full batch. */
    rc = wf_tracker_count_between(run->tracker, from_us, to_us == WF_NO_UPPER_BOUND ? -1 : to_us, &known);
    if (rc != WF_OK) {
        set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
        goto deliver;
    }
    int seen_before = run->stats.seen;
    /* ... and for the rows of the last batch still waiting in the pipeline.
     * The query goes out first: the local set-up below runs while the
     * server plans and runs it (the first query of a session costs the
     * server a few catalog reads). */
    rc = wf_source_send_window(run->source, from_us, to_us,
                               known + run->cfg->batch_size + (long)wf_pipeline_size(run), err, sizeof err);
    if (rc != WF_OK) {
        set_fatal(run, rc, err);
        wf_run_begin(run);   /* recorded all the same, with the error */
        goto deliver;
    }
    /* The run's row in the tracker is written while the server runs the
     * query (a failure stops the run; the rows read are then dropped). */
    wf_run_begin(run);
    /* Whether the rows the tracker knows can be found without their keys
     * (see on_row): one meta read per run, while the query runs. */
    if (run->known_by_source < 0)
        run->known_by_source = wf_key_follows_id_and_time((const char *const *)run->cfg->key_columns,
                                                          run->cfg->n_key_columns, run->cfg->id_column,
                                                          run->cfg->time_column) &&
                               wf_tracker_keys_follow_scheme(run->tracker);
    /* The window's known rows in one read rather than one per row: a
     * PostgreSQL tracker is a round trip away. Bounded, so that a long
     * catch-up window does not hold the whole tracker in memory. Any write
     * (the pipeline's) drops the copy, so it never answers stale. */
    if (known <= WF_PREFETCH_MAX &&
        (rc = wf_tracker_prefetch(run->tracker, from_us, to_us == WF_NO_UPPER_BOUND ? -1 : to_us)) != WF_OK)
        set_fatal(run, rc, wf_tracker_errmsg(run->tracker));
    /* When every row read is keyed, the hasher's one-off set-up (see
     * unique_key.c) goes here too, not on the first row. */
    if (run->fatal == WF_OK && run->known_by_source != 1 && !run->hasher &&
        (rc = wf_key_hasher_new(&run->hasher)) != WF_OK)
        set_fatal(run, rc, "libcrypto has no SHA-256");
    /* Read even after a failure above (on_row then stops at once and the
     * rest is dropped): the connection must be free for the next statement. */
    rc = wf_source_read_window(run->source, on_row, &bs, err, sizeof err);
    if (rc != WF_OK && run->fatal == WF_OK) set_fatal(run, rc, err);
    char from[48], rows[16], worked[16], retried[16], keyed[16];
    if (from_us == INT64_MIN) snprintf(from, sizeof from, "-infinity");
    else wf_format_time_us(from_us, from, sizeof from);
    snprintf(rows, sizeof rows, "%d", run->stats.seen - seen_before);
    snprintf(worked, sizeof worked, "%d", bs.worked);
    snprintf(retried, sizeof retried, "%zu", ntimes);
    snprintf(keyed, sizeof keyed, "%d", bs.keyed);
    wf_log_kv(run->log, "fetch_submissions", run->fatal == WF_OK ? "INFO" : "ERROR", "event", "window",
              "from", from, "rows", rows, "retry_times", retried, "worked", worked, "keyed", keyed, NULL);
deliver:;   /* C11: a label is followed by a statement, not a declaration */
    /* What was collected before a whole-run error is dropped unsent: none
     * of it has been recorded, and the next run reads it again. */
    bool lookup_failed = false;
    if (run->fatal == WF_OK && bs.nwork > 0) {
        int lookup_calls = 0;
        rc = wf_deliveries_lookup(run, bs.work, bs.nwork, &lookup_calls);
        run->stats.lookup_calls += lookup_calls;
        if (lookup_calls > 0) run->stats.lookups++;
        lookup_failed = rc == WF_ERR_JIRA_TEMPORARY;
        if (rc == WF_OK || lookup_failed) {
            if (wf_pipeline_add(run, bs.work, bs.nwork) == WF_OK) bs.nwork = 0;
        }
    }
    for (size_t i = 0; i < bs.nwork; i++) wf_delivery_free(bs.work[i]);
    free(bs.work);
    /* After a failed search the same rows would come back at once: the
     * run ends here and the next tick asks again. */
    *more = run->fatal == WF_OK && bs.worked >= run->cfg->batch_size && !lookup_failed;
    /* With more to come, a batch's worth stays in flight while the next
     * batch is read and looked up; the last batch is driven to the end. */
    wf_pipeline_drive(run, *more ? (size_t)run->cfg->batch_size : 0);
    if (run->fatal != WF_OK) {
        *more = false;
        return run->fatal;
    }
    return WF_OK;
}

wf_err wf_process_batch_finish(wf_run *run)
{
    wf_err rc = wf_pipeline_drive(run, 0);
    wf_pipeline_free(run);
    return rc;
}
