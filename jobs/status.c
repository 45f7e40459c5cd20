/* status.c: `wf2jsm status`, what the tracker knows. */
#define _POSIX_C_SOURCE 200809L
#include "job.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char status_usage[] =
    "usage: wf2jsm status [--json] [--runs N] [--env FILE]\n"
    "\n"
    "Shows submissions by state, the cursor, the last runs with their figures,\n"
    "parked and failed submissions with their reasons, and open manual fixes.\n"
    "\n"
    "  --json       machine-readable output (schema in the README)\n"
    "  --runs N     how many recent runs to show (default 5)\n"
    "  --env FILE   read configuration from FILE instead of ./.env\n"
    "  -h, --help   show this help\n";

static const char *const states[] = {"pending", "creating", "created", "attaching", "delivered", "failed", "parked"};
#define NSTATES (sizeof states / sizeof *states)

static cJSON *query_rows(sqlite3 *db, const char *sql, int limit)
{
    sqlite3_stmt *st = NULL;
    cJSON *rows = cJSON_CreateArray();
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return rows;
    sqlite3_bind_int(st, 1, limit);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *row = cJSON_CreateObject();
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *name = sqlite3_column_name(st, i);
            switch (sqlite3_column_type(st, i)) {
            case SQLITE_INTEGER: cJSON_AddNumberToObject(row, name, (double)sqlite3_column_int64(st, i)); break;
            case SQLITE_NULL: cJSON_AddNullToObject(row, name); break;
            default: cJSON_AddStringToObject(row, name, (const char *)sqlite3_column_text(st, i));
            }
        }
        cJSON_AddItemToArray(rows, row);
    }
    sqlite3_finalize(st);
    return rows;
}

static cJSON *build_report(wf_job *job, int nruns)
{
    sqlite3 *db = wf_tracker_db(job->tracker);
    cJSON *report = cJSON_CreateObject();
    cJSON *counts = cJSON_AddObjectToObject(report, "counts");
    for (size_t i = 0; i < NSTATES; i++) cJSON_AddNumberToObject(counts, states[i], 0);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT state, count(*) FROM submissions GROUP BY state", -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW)
            cJSON_ReplaceItemInObject(counts, (const char *)sqlite3_column_text(st, 0),
                                      cJSON_CreateNumber(sqlite3_column_int(st, 1)));
    }
    sqlite3_finalize(st);
    cJSON *cursor = query_rows(db, "SELECT max(source_time) AS source_time, max(source_time_us) AS source_time_us "
                                   "FROM submissions WHERE ?1 > 0", 1);
    cJSON_AddItemToObject(report, "cursor", cJSON_DetachItemFromArray(cursor, 0));
    cJSON_Delete(cursor);
    cJSON_AddItemToObject(report, "runs", query_rows(db,
        "SELECT id, command, started_at, finished_at, exit_code, seen, created, adopted, delivered, failed, parked, "
        "attachments_uploaded, attachments_failed, retries, http_429, manual_fixes, duration_ms, error "
        "FROM runs ORDER BY id DESC LIMIT ?1", nruns));
    cJSON_AddItemToObject(report, "problems", query_rows(db,
        "SELECT key, source_id, state, attempts, error_class, last_error, jsm_key, updated_at FROM submissions "
        "WHERE state IN ('failed', 'parked') ORDER BY updated_at_us LIMIT ?1", 100));
    cJSON_AddItemToObject(report, "manual_fixes", query_rows(db,
        "SELECT id, key, jsm_key, field_id, value, message, created_at FROM manual_fixes "
        "WHERE resolved_at IS NULL ORDER BY id LIMIT ?1", 100));
    return report;
}

static const char *str_of(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : "-";
}

static long num_of(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
}

static void print_text(const cJSON *report, int tty)
{
    const cJSON *counts = cJSON_GetObjectItemCaseSensitive(report, "counts"), *it;
    printf(tty ? "%-12s %s\n" : "%s %s\n", "STATE", "COUNT");
    cJSON_ArrayForEach(it, counts) printf(tty ? "%-12s %ld\n" : "%s %ld\n", it->string, (long)it->valuedouble);
    const cJSON *cursor = cJSON_GetObjectItemCaseSensitive(report, "cursor");
    printf("\ncursor: %s\n", str_of(cursor, "source_time"));
    printf("\n%s\n", tty ? "RUN   STARTED               EXIT  SEEN CREATED ADOPTED DELIVERED FAILED PARKED RETRIES 429S  MS"
                         : "run started exit seen created adopted delivered failed parked retries http_429 duration_ms");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(report, "runs")) {
        printf(tty ? "%-5ld %-21s %4ld %5ld %7ld %7ld %9ld %6ld %6ld %7ld %4ld %4ld\n"
                   : "%ld %s %ld %ld %ld %ld %ld %ld %ld %ld %ld %ld\n",
               num_of(it, "id"), str_of(it, "started_at"), num_of(it, "exit_code"), num_of(it, "seen"),
               num_of(it, "created"), num_of(it, "adopted"), num_of(it, "delivered"), num_of(it, "failed"),
               num_of(it, "parked"), num_of(it, "retries"), num_of(it, "http_429"), num_of(it, "duration_ms"));
    }
    const cJSON *problems = cJSON_GetObjectItemCaseSensitive(report, "problems");
    if (cJSON_GetArraySize(problems) > 0) {
        printf("\nparked and failed (fix the cause, then `wf2jsm retry`):\n");
        cJSON_ArrayForEach(it, problems)
            printf("  %s id=%s key=%.16s attempts=%ld: %s\n", str_of(it, "state"), str_of(it, "source_id"),
                   str_of(it, "key"), num_of(it, "attempts"), str_of(it, "last_error"));
    }
    const cJSON *fixes = cJSON_GetObjectItemCaseSensitive(report, "manual_fixes");
    if (cJSON_GetArraySize(fixes) > 0) {
        printf("\nmanual fixes (set these fields on the tickets by hand):\n");
        cJSON_ArrayForEach(it, fixes)
            printf("  %s field %s value '%s': %s\n", str_of(it, "jsm_key"), str_of(it, "field_id"),
                   str_of(it, "value"), str_of(it, "message"));
    }
}

int cmd_status(int argc, char **argv)
{
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'}, {"runs", required_argument, NULL, 'r'},
        {"env", required_argument, NULL, 'e'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *env_file = NULL;
    int json = 0, nruns = 5, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 'j': json = 1; break;
        case 'r': nruns = atoi(optarg); if (nruns < 1) { fprintf(stderr, "wf2jsm status: --runs takes a number >= 1\n"); return 2; } break;
        case 'e': env_file = optarg; break;
        case 'h': fputs(status_usage, stdout); return 0;
        default: fputs(status_usage, stderr); return 2;
        }
    }
    wf_job job;
    int status = 0;
    wf_err rc = job_setup(&job, "status", env_file, JOB_NEEDS_TRACKER);
    if (rc != WF_OK) {
        status = job_fail(&job, rc, NULL);
        job_teardown(&job);
        return status;
    }
    cJSON *report = build_report(&job, nruns);
    if (json) {
        char *text = cJSON_Print(report);
        if (text) puts(text);
        free(text);
    } else {
        print_text(report, isatty(STDOUT_FILENO));
    }
    cJSON_Delete(report);
    job_teardown(&job);
    return status;
}
