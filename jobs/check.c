/* check.c: `wf2jsm check`, the preflight: every precondition of a sync run,
 * one line each, with the fix in words for each that fails. */
#define _POSIX_C_SOURCE 200809L
#include "job.h"
#include "../modules/html_text.h"
#include "../modules/jira_fields.h"
#include "../modules/rich_text.h"
#include "../modules/jsm_client.h"
#include "../modules/safe_text.h"
#include "../modules/templates.h"
#include "../modules/tracker_rebuild.h"
#include "../modules/unique_key.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char check_usage[] =
    "usage: wf2jsm check [--env FILE]\n"
    "\n"
    "Checks everything a sync run needs and prints one line per item: ✓ when it\n"
    "holds, ✗ with the fix when it does not, ⚠ for what works but not as well as\n"
    "it could (data that will not map cleanly, no index for the cursor query, an\n"
    "account that may not create customers), - for a check skipped because an\n"
    "earlier one failed:\n"
    "  the configuration; the database, the table or view, its columns and an\n"
    "  index serving the cursor query; Jira authentication, the service desk and\n"
    "  the request type; with SYNC_CUSTOMER_EMAIL_COLUMN, whether the account may\n"
    "  look up and create customers; the mapping (required fields mapped, column\n"
    "  types fit the field types, templates and fallbacks name existing columns,\n"
    "  a sample of the next rows maps cleanly); how the submission key travels;\n"
    "  the tracker, SYNC_LOG_DIR and SYNC_METRICS_FILE.\n"
    "Makes no change in Jira or the database (it creates the tracker if missing).\n"
    "Exit status: 0 when nothing failed (warnings included), else the class of the\n"
    "most severe failure: 5 tracker or files, then 4 Jira, then 3 database, then\n"
    "2 configuration or mapping.\n"
    "\n"
    "  --env FILE   read configuration from FILE instead of ./.env\n"
    "  -h, --help   show this help\n";

/* A preflight should answer in seconds: HTTP retries stop after this much
 * backoff, whatever SYNC_RETRY_BUDGET allows a real run. */
#define CHECK_RETRY_BUDGET_MS 5000L
/* Rows of the next tick's window run through the mapper to find values that
 * will not convert. */
#define SAMPLE_ROWS 1000
#define SAMPLE_VALUES_SHOWN 5

typedef struct {
    wf_log *log;        /* redacts the secrets from every printed line */
    int worst;          /* exit status of the most severe failure; 0: none */
    int failures, warnings;
} checker;

/* How severe a failure of class exit_code is. A tracker or file problem
 * stops every command on this host before anything is recorded; Jira's
 * stops every delivery; the database's every read; a configuration or
 * mapping problem is the operator's to edit. The exit status is the most
 * severe, not the first listed: the order of the lines is the order of the
 * pipeline, not of importance. */
static int severity(int exit_code)
{
    switch (exit_code) {
    case 5: return 4;
    case 4: return 3;
    case 3: return 2;
    case 2: return 1;
    default: return 0;
    }
}

/* Prints one item. mark is ✓ ✗ ⚠ or -; a failure records its exit status
 * (the most severe one wins) and fix, when not NULL, follows the problem. */
static void item(checker *c, const char *mark, int exit_code, const char *fix, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    size_t len = strlen(text);
    if (fix) snprintf(text + len, sizeof text - len, "; fix: %s", fix);
    wf_log_redact(c->log, text);
    job_one_line(text);
    /* Field names, values and Jira's words are shown, never obeyed. */
    char shown[4 * sizeof text];
    printf("%s %s\n", mark, wf_safe(text, shown, sizeof shown));
    if (exit_code) {
        c->failures++;
        if (severity(exit_code) > severity(c->worst)) c->worst = exit_code;
    }
    if (strcmp(mark, "⚠") == 0) c->warnings++;
}

#define OK(c, ...) item((c), "✓", 0, NULL, __VA_ARGS__)
#define FAIL(c, code, fix, ...) item((c), "✗", (code), (fix), __VA_ARGS__)
#define WARN(c, ...) item((c), "⚠", 0, NULL, __VA_ARGS__)
#define SKIP(c, ...) item((c), "-", 0, NULL, __VA_ARGS__)

/* ---- the source table ------------------------------------------------- */

typedef enum { COL_NUMBER, COL_TEXT, COL_DATE, COL_TIMESTAMP, COL_OTHER } col_kind;

/* Classifies format_type() output: "integer", "numeric(10,2)", "character
 * varying(80)", "timestamp with time zone", ... */
static col_kind kind_of(const char *t)
{
    static const char *const numbers[] = {"smallint", "integer", "bigint", "real", "double precision", "numeric", "decimal"};
    static const char *const texts[] = {"text", "character", "\"char\"", "name", "citext"};
    if (strncmp(t, "timestamp", 9) == 0) return COL_TIMESTAMP;
    if (strcmp(t, "date") == 0) return COL_DATE;
    for (size_t i = 0; i < sizeof numbers / sizeof *numbers; i++)
        if (strncmp(t, numbers[i], strlen(numbers[i])) == 0) return COL_NUMBER;
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        if (strncmp(t, texts[i], strlen(texts[i])) == 0) return COL_TEXT;
    return COL_OTHER;
}

typedef struct {
    char **names, **types;
    size_t n;
} columns;

static const char *column_type(const columns *cols, const char *name)
{
    for (size_t i = 0; i < cols->n; i++)
        if (strcmp(cols->names[i], name) == 0) return cols->types[i];
    return NULL;
}

/* The configured id, time and key columns exist, and the time column is a
 * time. Returns whether the cursor query can run at all. */
static bool check_config_columns(checker *c, const wf_config *cfg, const columns *cols)
{
    bool ok = true;
    char fix[512];
    const char *time_type = column_type(cols, cfg->time_column);
    if (!column_type(cols, cfg->id_column)) {
        snprintf(fix, sizeof fix, "set WEBFORM_ID_COLUMN to the table's unique id column");
        FAIL(c, 2, fix, "WEBFORM_ID_COLUMN=%s: %s has no such column", cfg->id_column, cfg->table);
        ok = false;
    }
    if (!time_type) {
        snprintf(fix, sizeof fix, "set WEBFORM_TIME_COLUMN to the column holding the submission time");
        FAIL(c, 2, fix, "WEBFORM_TIME_COLUMN=%s: %s has no such column", cfg->time_column, cfg->table);
        ok = false;
    } else if (kind_of(time_type) != COL_TIMESTAMP && kind_of(time_type) != COL_DATE) {
        FAIL(c, 2, "point WEBFORM_TIME_COLUMN at a timestamp column (or a view that casts it)",
             "WEBFORM_TIME_COLUMN=%s is of type %s, not a timestamp", cfg->time_column, time_type);
        ok = false;
    }
    bool keys_ok = true;
    for (size_t i = 0; i < cfg->n_key_columns; i++) {
        if (column_type(cols, cfg->key_columns[i])) continue;
        FAIL(c, 2, "list only existing columns in WEBFORM_KEY_COLUMNS (default: the id and time columns)",
             "WEBFORM_KEY_COLUMNS names '%s', which %s does not have", cfg->key_columns[i], cfg->table);
        keys_ok = false;
    }
    if (ok && keys_ok) {
        char keys[512] = "";
        size_t pos = 0;
        for (size_t i = 0; i < cfg->n_key_columns && pos < sizeof keys; i++)
            pos += (size_t)snprintf(keys + pos, sizeof keys - pos, "%s%s", i ? "," : "", cfg->key_columns[i]);
        OK(c, "%s has the id column %s, the time column %s (%s) and the key columns %s", cfg->table, cfg->id_column,
           cfg->time_column, time_type, keys);
    }
    return ok;
}

static void check_index(checker *c, const wf_config *cfg, wf_source *src)
{
    int uses_index = 0;
    char *plan = NULL, err[1024];
    wf_err rc = wf_source_explain_cursor(src, &uses_index, &plan, err, sizeof err);
    if (rc != WF_OK) {
        FAIL(c, 3, NULL, "cannot explain the cursor query: %s", err);
    } else if (uses_index) {
        /* EXPLAIN indents child nodes with "->"; the node itself is enough. */
        const char *node = plan ? plan : "Index Scan";
        while (*node == ' ' || *node == '-' || *node == '>') node++;
        OK(c, "an index serves the cursor query (%s)", node);
    } else {
        /* The job works without it, only slower: a warning, not a problem. */
        WARN(c, "no index serves the cursor query: every tick reads the whole table, which works but grows slower "
             "with it (plan: %s); fix: CREATE INDEX ON %s (%s, %s) (on the table behind it, if %s is a view)",
             plan ? plan : "sequential scan", cfg->table, cfg->time_column, cfg->id_column, cfg->table);
    }
    free(plan);
}

/* ---- the mapping ------------------------------------------------------ */

static bool is_option_field(const wf_field_def *f)
{
    return strcmp(f->type, "option") == 0 || (strcmp(f->type, "priority") == 0 && f->nvalid) ||
           (strcmp(f->type, "array") == 0 && f->items && strcmp(f->items, "option") == 0);
}

/* Whether column type col_type can feed field f: ✓, ⚠ for text that may or
 * may not convert row by row, ✗ for a type that never converts. */
static void check_type_fit(checker *c, const wf_field_def *f, const char *column, const char *col_type,
                           const char *mapping_file)
{
    col_kind k = kind_of(col_type);
    const char *name = f->name ? f->name : f->id;
    const char *want = NULL;   /* what the column should be, when it does not fit */
    bool text_maybe = false;
    if (strcmp(f->type, "number") == 0) {
        want = k == COL_NUMBER ? NULL : "a numeric or integer column";
        text_maybe = k == COL_TEXT;
    } else if (strcmp(f->type, "date") == 0) {
        want = k == COL_DATE || k == COL_TIMESTAMP ? NULL : "a date or timestamp column";
        text_maybe = k == COL_TEXT;
    } else if (strcmp(f->type, "datetime") == 0) {
        want = k == COL_TIMESTAMP ? NULL : "a timestamp column";
        text_maybe = k == COL_TEXT;
    } else if (is_option_field(f)) {
        text_maybe = k != COL_TEXT;   /* labels are text; numbers may still match */
    }
    if (!want && !text_maybe) {
        OK(c, "field %s (%s, %s%s%s) <- column %s (%s)", f->id, name, f->type, f->required ? ", required" : "",
           is_option_field(f) ? ", values checked below" : "", column, col_type);
    } else if (text_maybe) {
        WARN(c, "field %s (%s, %s) <- column %s (%s): values that do not convert are %s", f->id, name, f->type,
             column, col_type, f->required ? "parked rows" : "left out and listed as manual fixes");
    } else {
        char fix[512];
        snprintf(fix, sizeof fix, "map %s to %s in %s, or cast the column in a view", f->id, want, mapping_file);
        FAIL(c, 2, fix, "field %s (%s, %s) <- column %s (%s): this type never converts", f->id, name, f->type,
             column, col_type);
    }
}

static bool is_mapped(const wf_mapping *m, const char *field_id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->pairs[i].field_id, field_id) == 0) return true;
    return cJSON_GetObjectItemCaseSensitive(m->constants, field_id) != NULL ||
           cJSON_GetObjectItemCaseSensitive(m->templates, field_id) != NULL ||
           cJSON_GetObjectItemCaseSensitive(m->fallbacks, field_id) != NULL;
}

/* Every column a template or fallback names exists. */
static void check_templates(checker *c, const wf_config *cfg, const wf_mapping *m, const columns *cols)
{
    const cJSON *sections[2] = {m->templates, m->fallbacks}, *it;
    static const char *const names[2] = {"template", "fallback"};
    char fix[512], bad[128];
    for (int s = 0; s < 2; s++) {
        cJSON_ArrayForEach(it, sections[s]) {
            if (wf_template_check_columns(it->valuestring, (const char *const *)cols->names, cols->n, bad,
                                          sizeof bad) != WF_OK) {
                snprintf(fix, sizeof fix, "name one of the columns of %s in %s, or write {{ and }} for literal braces",
                         cfg->table, cfg->field_mapping);
                FAIL(c, 2, fix, "the %s of field %s names column '%s', which %s does not have", names[s], it->string,
                     bad, cfg->table);
            } else {
                OK(c, "the %s of field %s names only existing columns", names[s], it->string);
            }
        }
    }
}

static void check_mapping(checker *c, const wf_config *cfg, const wf_field_list *fields, const wf_mapping *m,
                          const columns *cols)
{
    char fix[512];
    bool all_required = true;
    char required[512] = "";
    size_t pos = 0;
    for (size_t i = 0; i < fields->n; i++) {
        const wf_field_def *f = &fields->fields[i];
        if (!f->required) continue;
        /* The labels field carries the key and is always sent. */
        if (is_mapped(m, f->id) || strcmp(f->id, "labels") == 0) {
            if (pos < sizeof required) pos += (size_t)snprintf(required + pos, sizeof required - pos, "%s%s", pos ? ", " : "", f->id);
            continue;
        }
        snprintf(fix, sizeof fix, "add \"%s\": \"<column>\" to \"fields\" in %s (or a value under \"constants\")",
                 f->id, cfg->field_mapping);
        FAIL(c, 2, fix, "required field %s (%s) is not mapped", f->id, f->name ? f->name : f->id);
        all_required = false;
    }
    if (all_required) OK(c, "every required field is mapped (%s)", pos ? required : "the request type has none");
    /* The mapping file's "formats": which columns are read as HTML. */
    char html[512] = "";
    size_t hpos = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (m->pairs[i].format != WF_FORMAT_HTML || strstr(html, m->pairs[i].column)) continue;
        if (hpos < sizeof html)
            hpos += (size_t)snprintf(html + hpos, sizeof html - hpos, "%s%s", hpos ? ", " : "", m->pairs[i].column);
    }
    if (hpos) {
        /* libxml2 is loaded on first use: load it now, so that a machine
         * without it hears so before a row shows its markup as typed. */
        cJSON *probe = wf_adf_doc();
        int loaded = probe && wf_html_to_adf("<p>probe</p>", probe) == 0;
        cJSON_Delete(probe);
        if (loaded)
            OK(c, "column%s %s read as HTML (\"formats\"): rendered as text, markup and scripts dropped",
               strchr(html, ',') ? "s" : "", html);
        else
            FAIL(c, 2, "install Debian's libxml2 package", "column%s %s read as HTML, but %s",
                 strchr(html, ',') ? "s" : "", html, wf_html_load_error() ? wf_html_load_error() : "libxml2 does not work");
    }

    if (!cols) {
        SKIP(c, "the mapped columns and their types: not checked (needs the database)");
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        const wf_field_def *f = wf_fields_find(fields, m->pairs[i].field_id);
        const char *column = m->pairs[i].column;
        if (!f) continue;
        const char *type = column_type(cols, column);
        if (!type) {
            snprintf(fix, sizeof fix, "map %s to one of the columns of %s in %s, or add the column", f->id, cfg->table,
                     cfg->field_mapping);
            FAIL(c, 2, fix, "field %s maps to column '%s', which %s does not have", f->id, column, cfg->table);
            continue;
        }
        check_type_fit(c, f, column, type, cfg->field_mapping);
    }
    check_templates(c, cfg, m, cols);
}

/* What the sample found wrong with one field. */
typedef struct {
    const char *field_id;
    bool required;
    long rows;
    char *values[SAMPLE_VALUES_SHOWN];
    size_t nvalues;
} field_trouble;

typedef struct {
    const wf_config *cfg;
    const wf_field_list *fields;
    const wf_mapping *mapping;
    field_trouble *trouble;   /* one per field, in field order */
    long rows;
    bool nomem;
} sample_state;

static wf_row_action on_sample_row(const wf_submission *sub, void *ctx)
{
    sample_state *s = ctx;
    /* The key only shapes the label and footer, which cannot fail. */
    static const char dummy_key[WF_KEY_HEX_LEN + 1] =
        "0000000000000000000000000000000000000000000000000000000000000000";
    wf_mapped mapped;
    s->rows++;
    if (wf_map_submission(s->mapping, s->fields, sub, dummy_key, s->cfg->key_field, &mapped) != WF_OK) {
        s->nomem = true;
        return WF_ROW_STOP;
    }
    for (size_t i = 0; i < mapped.nproblems; i++) {
        const wf_field_problem *p = &mapped.problems[i];
        field_trouble *t = NULL;
        for (size_t j = 0; j < s->fields->n; j++)
            if (strcmp(s->fields->fields[j].id, p->field_id) == 0) t = &s->trouble[j];
        if (!t) continue;
        t->rows++;
        const char *v = p->value ? p->value : "(empty)";
        bool seen = false;
        for (size_t j = 0; j < t->nvalues; j++) seen |= strcmp(t->values[j], v) == 0;
        if (!seen && t->nvalues < SAMPLE_VALUES_SHOWN && (t->values[t->nvalues] = strdup(v))) t->nvalues++;
    }
    wf_mapped_free(&mapped);
    return WF_ROW_NEXT;
}

/* Runs the rows the next tick will read (the window from the tracker's
 * cursor minus SYNC_LOOKBACK, or the oldest rows on a new tracker) through
 * the real mapper, and reports the fields whose values do not convert: an
 * option with no such label, a number that is not one, an empty required
 * column. Those are data, not configuration: warnings. */
static void check_sample(checker *c, const wf_config *cfg, wf_source *src, wf_tracker *tracker,
                         const wf_field_list *fields, const wf_mapping *m)
{
    sample_state s = {.cfg = cfg, .fields = fields, .mapping = m};
    int64_t from = INT64_MIN, cursor = 0;
    bool has_cursor = false;
    char err[1024];
    if (tracker && wf_tracker_cursor(tracker, &cursor, &has_cursor) == WF_OK && has_cursor)
        from = cursor - (int64_t)cfg->lookback_seconds * 1000000;
    s.trouble = calloc(fields->n ? fields->n : 1, sizeof *s.trouble);
    if (!s.trouble) {
        FAIL(c, 5, NULL, "out of memory sampling rows");
        return;
    }
    wf_err rc = wf_source_stream_window(src, from, WF_NO_UPPER_BOUND, SAMPLE_ROWS, on_sample_row, &s, err, sizeof err);
    if (rc != WF_OK) {
        FAIL(c, 3, NULL, "cannot read a sample of rows: %s", err);
    } else if (s.nomem) {
        FAIL(c, 5, NULL, "out of memory mapping the sample");
    } else if (s.rows == 0) {
        SKIP(c, "no rows in the next tick's window to sample");
    } else {
        bool clean = true;
        for (size_t i = 0; i < fields->n; i++) {
            field_trouble *t = &s.trouble[i];
            if (t->rows == 0) continue;
            clean = false;
            char values[1024] = "";
            size_t pos = 0;
            for (size_t j = 0; j < t->nvalues && pos < sizeof values; j++)
                pos += (size_t)snprintf(values + pos, sizeof values - pos, "%s'%s'", j ? ", " : "", t->values[j]);
            const wf_field_def *f = &fields->fields[i];
            WARN(c, "sample of %ld rows: %ld %s a value field %s (%s) cannot take (%s): %s", s.rows, t->rows,
                 t->rows == 1 ? "has" : "have", f->id, f->name ? f->name : f->id,
                 f->required ? "the row is parked" : "the field is left out and listed as a manual fix", values);
        }
        if (clean) OK(c, "a sample of %ld rows from the next tick's window maps cleanly", s.rows);
    }
    for (size_t i = 0; i < fields->n; i++)
        for (size_t j = 0; j < s.trouble[i].nvalues; j++) free(s.trouble[i].values[j]);
    free(s.trouble);
}

/* ---- local files ------------------------------------------------------ */

/* Whether the tracker was new or rebuilt from JSM (and from how many
 * requests): after a lost tracker, the first thing to know. */
static void check_tracker_origin(checker *c, wf_tracker *tracker)
{
    int64_t cursor = 0;
    bool has_rows = false;
    cJSON *origin = wf_rebuild_meta(tracker);
    char line[512];
    wf_rebuild_describe(origin, line, sizeof line);
    if (origin) OK(c, "tracker %s", line);
    else if (wf_tracker_cursor(tracker, &cursor, &has_rows) == WF_OK && !has_rows) OK(c, "tracker is empty, %s", line);
    cJSON_Delete(origin);
}

static void check_tracker(checker *c, const wf_config *cfg, wf_tracker *tracker, wf_err open_rc, const char *open_err)
{
    char fix[4096], loose[2048] = "";
    size_t pos = 0;
    if (open_rc != WF_OK) {
        FAIL(c, 5, NULL, "%s", open_err);
        return;
    }
    char why[1024] = "";
    if (strcmp(wf_tracker_kind(tracker), "postgresql") == 0) {
        /* The rows live on the server, owned by the database role: there is
         * no file here whose mode could leak them. */
        if (wf_tracker_probe_writable(tracker, why, sizeof why) != WF_OK)
            FAIL(c, 5, "grant this role write access to schema wf2jsm, or point SYNC_TRACKER_DB at the primary",
                 "%s", why);
        else
            OK(c, "tracker %s (PostgreSQL, schema wf2jsm) is writable", wf_tracker_path(tracker));
        /* Normal while a tick runs; for minutes on end, a host that died
         * with its session still open on the server. */
        bool held = false;
        char holder[256];
        if (wf_tracker_lock_holder(tracker, &held, holder, sizeof holder) == WF_OK)
            OK(c, "the run lock is %s%s", held ? "held by " : "free", held ? holder : "");
        check_tracker_origin(c, tracker);
        return;
    }
    /* The tracker holds who submitted what: owner-only, and so are the
     * WAL files SQLite keeps beside it. */
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s%s", cfg->tracker_db, suffixes[i]);
        if (stat(path, &st) == 0 && (st.st_mode & 077) && pos < sizeof loose)
            pos += (size_t)snprintf(loose + pos, sizeof loose - pos, "%s%s", pos ? " " : "", path);
    }
    if (wf_tracker_probe_writable(tracker, why, sizeof why) != WF_OK) {
        FAIL(c, 5, "make the file and its directory writable by this user, or set SYNC_TRACKER_DB",
             "tracker %s is not writable: %s", cfg->tracker_db, why);
    } else if (loose[0]) {
        snprintf(fix, sizeof fix, "chmod 600 %s", loose);
        FAIL(c, 5, fix, "tracker %s can be read by other users", loose);
    } else {
        OK(c, "tracker %s is writable and owner-only", cfg->tracker_db);
    }
    check_tracker_origin(c, tracker);
}

static void check_log_dir(checker *c, const char *dir)
{
    struct stat st;
    char fix[4096], loose[2048] = "";
    size_t pos = 0;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT) OK(c, "SYNC_LOG_DIR=%s does not exist yet; the first run creates it 0700", dir);
        else FAIL(c, 5, "make it, or its parent, accessible to this user", "SYNC_LOG_DIR=%s: %s", dir, strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        FAIL(c, 5, "point SYNC_LOG_DIR at a directory", "SYNC_LOG_DIR=%s is not a directory", dir);
        return;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(fix, sizeof fix, "chown it to this user and chmod 700 %s, or set SYNC_LOG_DIR", dir);
        FAIL(c, 5, fix, "SYNC_LOG_DIR=%s is not writable by this user", dir);
        return;
    }
    if (st.st_mode & 077) {
        snprintf(fix, sizeof fix, "chmod 700 %s", dir);
        FAIL(c, 5, fix, "SYNC_LOG_DIR=%s has mode %04o: other users can read the logs", dir, (unsigned)(st.st_mode & 07777));
        return;
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char path[4096];
        struct stat fst;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &fst) == 0 && S_ISREG(fst.st_mode) && (fst.st_mode & 077) && pos < sizeof loose)
            pos += (size_t)snprintf(loose + pos, sizeof loose - pos, "%s%s", pos ? " " : "", path);
    }
    if (d) closedir(d);
    if (loose[0]) {
        snprintf(fix, sizeof fix, "chmod 600 %s", loose);
        FAIL(c, 5, fix, "log files can be read by other users: %s", loose);
    } else {
        OK(c, "SYNC_LOG_DIR=%s is writable and owner-only", dir);
    }
}

static void check_metrics_file(checker *c, const char *path)
{
    char *copy = strdup(path);
    if (!copy) return;
    const char *dir = dirname(copy);
    char fix[4096];
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(fix, sizeof fix, "create %s writable by this user, or change SYNC_METRICS_FILE", dir);
        FAIL(c, 5, fix, "SYNC_METRICS_FILE=%s cannot be written: directory %s: %s", path, dir, strerror(errno));
    } else {
        OK(c, "SYNC_METRICS_FILE=%s can be written (rewritten after every sync run)", path);
    }
    free(copy);
}

/* ---- Jira ------------------------------------------------------------- */

static const char *json_str(const cJSON *obj, const char *name, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* Auth, service desk, request type and its fields, each depending on the
 * one before. On success *raw_fields holds the field list (caller frees). */
static void check_jira(checker *c, wf_job *job, wf_jsm *jsm, char **raw_fields)
{
    cJSON *obj = NULL;
    wf_err rc;
    *raw_fields = NULL;
    if ((rc = wf_jsm_myself(jsm, &obj)) != WF_OK) {
        FAIL(c, 4, NULL, "Jira authentication at %s failed: %s", job->cfg.jira_base_url, wf_jsm_last_error(jsm));
        SKIP(c, "service desk, request type and fields: not checked (needs working authentication)");
        return;
    }
    OK(c, "Jira authentication works at %s as %s", job->cfg.jira_base_url,
       json_str(obj, "displayName", json_str(obj, "accountId", "this account")));
    cJSON_Delete(obj);
    obj = NULL;
    if ((rc = wf_jsm_get_service_desk(jsm, &obj)) != WF_OK) {
        FAIL(c, 4, rc == WF_ERR_JIRA_NOT_FOUND ? "set JSM_SERVICE_DESK_ID to the number in the portal URL .../portal/<id>" : NULL,
             "service desk: %s", wf_jsm_last_error(jsm));
        SKIP(c, "request type and fields: not checked (needs the service desk)");
        return;
    }
    OK(c, "service desk %s exists (%s, %s)", job->cfg.service_desk_id, json_str(obj, "projectKey", "?"),
       json_str(obj, "projectName", "?"));
    cJSON_Delete(obj);
    obj = NULL;
    if ((rc = wf_jsm_get_request_type(jsm, &obj)) != WF_OK) {
        FAIL(c, 4, rc == WF_ERR_JIRA_NOT_FOUND ? "set JSM_REQUEST_TYPE_ID to the number in .../portal/<desk>/create/<id>" : NULL,
             "request type: %s", wf_jsm_last_error(jsm));
        SKIP(c, "request type fields: not checked (needs the request type)");
        return;
    }
    OK(c, "request type %s exists (%s)", job->cfg.request_type_id, json_str(obj, "name", "?"));
    cJSON_Delete(obj);
    if ((rc = wf_jsm_get_request_type_fields(jsm, raw_fields)) != WF_OK)
        FAIL(c, 4, NULL, "request type fields: %s", wf_jsm_last_error(jsm));
}

/* ---- customers (SYNC_CUSTOMER_EMAIL_COLUMN) ----------------------------- */

static void check_customer_columns(checker *c, const wf_config *cfg, const columns *cols)
{
    if (!cfg->customer_email_column) return;
    char fix[512];
    bool ok = true;
    const char *vars[2] = {"SYNC_CUSTOMER_EMAIL_COLUMN", "SYNC_CUSTOMER_NAME_COLUMN"};
    const char *names[2] = {cfg->customer_email_column, cfg->customer_name_column};
    for (int i = 0; i < 2; i++) {
        if (!names[i] || column_type(cols, names[i])) continue;
        snprintf(fix, sizeof fix, "set %s to a column of %s, or unset it", vars[i], cfg->table);
        FAIL(c, 2, fix, "%s=%s: %s has no such column", vars[i], names[i], cfg->table);
        ok = false;
    }
    if (ok)
        OK(c, "requests are raised on behalf of the address in column %s%s%s", cfg->customer_email_column,
           cfg->customer_name_column ? ", new customers named from column " : "",
           cfg->customer_name_column ? cfg->customer_name_column : "");
}

static bool have_permission(const cJSON *perms, const char *key)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(perms, "permissions"), key);
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "havePermission"));
}

/* Whether this account may look up the desk's customers, create customers
 * (Jira administrator, per the createCustomer contract) and add them to the
 * desk (its project's administrator). None of these stops a run: without
 * them requests are reported by this account and listed as manual fixes,
 * so each is a warning. */
static void check_customers(checker *c, const wf_config *cfg, wf_jsm *jsm)
{
    cJSON *page = NULL, *desk = NULL, *perms = NULL;
    wf_err rc = wf_jsm_get_desk_customers(jsm, "", 0, 1, &page);
    if (rc == WF_OK) {
        OK(c, "this account may look up the customers of service desk %s", cfg->service_desk_id);
    } else if (rc == WF_ERR_JIRA_AUTH && wf_jsm_last_status(jsm) == 403) {
        WARN(c, "this account may not look up the customers of service desk %s (HTTP 403): every request will be "
             "reported by it and listed as a manual fix; fix: give it the agent or service desk administrator role",
             cfg->service_desk_id);
    } else {
        FAIL(c, 4, NULL, "looking up the customers of service desk %s: %s", cfg->service_desk_id, wf_jsm_last_error(jsm));
    }
    const char *project = NULL;
    if (wf_jsm_get_service_desk(jsm, &desk) == WF_OK) {
        const cJSON *pk = cJSON_GetObjectItemCaseSensitive(desk, "projectKey");
        if (cJSON_IsString(pk)) project = pk->valuestring;
    }
    if ((rc = wf_jsm_my_permissions(jsm, project, "ADMINISTER,ADMINISTER_PROJECTS", &perms)) != WF_OK) {
        WARN(c, "cannot tell whether this account may create customers: %s", wf_jsm_last_error(jsm));
    } else {
        bool create = have_permission(perms, "ADMINISTER"), add = have_permission(perms, "ADMINISTER_PROJECTS");
        if (create && add)
            OK(c, "this account may create customers and add them to service desk %s", cfg->service_desk_id);
        else
            WARN(c, "this account may not %s%s%s: requests from addresses that are not customers of service desk %s "
                 "yet will be reported by it and listed as manual fixes; fix: grant %s%s%s, or add those customers "
                 "in JSM beforehand", create ? "" : "create customers", create || add ? "" : " or ",
                 add ? "" : "add customers to the service desk", cfg->service_desk_id,
                 create ? "" : "the Jira administrator permission", create || add ? "" : " and ",
                 add ? "" : "the service desk administrator role");
    }
    cJSON_Delete(page);
    cJSON_Delete(desk);
    cJSON_Delete(perms);
}

/* ---- the command ------------------------------------------------------ */

int cmd_check(int argc, char **argv)
{
    const char *env_file;
    int parsed = job_parse_env_only("check", argc, argv, check_usage, &env_file);
    if (parsed >= 0) return parsed;

    wf_job job;
    memset(&job, 0, sizeof job);
    job.name = "check";
    checker c = {0};
    wf_run_stats stats = {0};
    wf_jsm *jsm = NULL;
    columns cols = {0};
    bool have_cols = false, cursor_ok = false, jira_settings = true, fields_ok = false;
    wf_field_list fields = {0};
    wf_mapping mapping = {0};
    char *raw = NULL, *password = NULL, err[1024], tracker_err[1024] = "";
    wf_err tracker_rc = WF_OK;

    job.log = c.log = wf_log_open_null();
    if (!job.log) {
        fprintf(stderr, "wf2jsm check: out of memory\n");
        return 5;
    }

    /* 1. Configuration. When only the Jira part is incomplete, the local
     * and database checks can still run. */
    wf_err rc = wf_config_load(&job.cfg, env_file, true, err, sizeof err);
    if (rc != WF_OK) {
        FAIL(&c, 2, NULL, "configuration: %s", err);
        wf_config_free(&job.cfg);
        jira_settings = false;
        if (wf_config_load(&job.cfg, env_file, false, err, sizeof err) != WF_OK) {
            SKIP(&c, "everything else: not checked (needs a valid configuration)");
            goto summary;
        }
    } else {
        OK(&c, "configuration is complete and valid (%s)", env_file ? env_file : "environment and ./.env");
    }
    wf_log_add_secret(job.log, job.cfg.jira_api_token);
    wf_log_add_secret(job.log, job.cfg.jira_bearer_token);
    if (job.cfg.retry_budget_ms > CHECK_RETRY_BUDGET_MS) job.cfg.retry_budget_ms = CHECK_RETRY_BUDGET_MS;

    /* The tracker is opened now, reported last: its cached field list
     * stands in for Jira's when Jira does not answer. */
    char *tracker_password = wf_tracker_target_password(job.cfg.tracker_db);
    wf_log_add_secret(job.log, tracker_password);
    free(tracker_password);
    tracker_rc = wf_tracker_open(job.cfg.tracker_db, &job.tracker, tracker_err, sizeof tracker_err);

    /* 2. Database, table, columns, index. */
    rc = wf_source_connect(&job.cfg, &job.source, &password, err, sizeof err);
    wf_log_add_secret(job.log, password);
    if (rc != WF_OK) {
        FAIL(&c, rc == WF_ERR_CONFIG ? 2 : 3, NULL, "%s", err);
        SKIP(&c, "table, columns, index and the row sample: not checked (needs the database)");
    } else {
        OK(&c, "the database is reachable");
        rc = wf_source_columns(job.source, &cols.names, &cols.types, &cols.n, err, sizeof err);
        if (rc != WF_OK) {
            FAIL(&c, 3, "create it, or set WEBFORM_TABLE to an existing table or view", "%s", err);
        } else {
            have_cols = true;
            cursor_ok = check_config_columns(&c, &job.cfg, &cols);
            check_customer_columns(&c, &job.cfg, &cols);
            if (cursor_ok) check_index(&c, &job.cfg, job.source);
            else SKIP(&c, "index for the cursor query: not checked (needs the id and time columns)");
        }
    }

    /* 3. Jira: auth, service desk, request type, fields. */
    if (!jira_settings) {
        SKIP(&c, "Jira: not checked (the Jira settings are incomplete, see above)");
    } else if ((rc = wf_jsm_open(&job.cfg, job.log, &stats, NULL, &jsm)) != WF_OK) {
        FAIL(&c, 4, NULL, "cannot set up the HTTP client: %s", wf_strerror(rc));
    } else {
        check_jira(&c, &job, jsm, &raw);
        if (raw && job.cfg.customer_email_column) check_customers(&c, &job.cfg, jsm);
    }
    if (!raw && job.tracker && job.cfg.service_desk_id && job.cfg.request_type_id) {
        char meta_name[128];
        snprintf(meta_name, sizeof meta_name, "fields:%s:%s", job.cfg.service_desk_id, job.cfg.request_type_id);
        if (wf_tracker_meta_get(job.tracker, meta_name, &raw) == WF_OK && raw)
            SKIP(&c, "the mapping is checked against the field list cached in the tracker");
    }

    /* 4. The mapping against the fields and the columns. */
    if (raw) {
        if ((rc = wf_fields_parse(raw, &fields, err, sizeof err)) != WF_OK) FAIL(&c, 4, NULL, "%s", err);
        else fields_ok = true;
    }
    if (!fields_ok) {
        SKIP(&c, "mapping, value types and the submission key: not checked (needs the request type's fields)");
    } else {
        rc = wf_mapping_load(job.cfg.field_mapping, &fields, &mapping, err, sizeof err);
        if (rc != WF_OK) {
            FAIL(&c, 2, NULL, "%s", err);
        } else {
            OK(&c, "mapping %s maps %zu field%s%s%s%s", job.cfg.field_mapping, mapping.n, mapping.n == 1 ? "" : "s",
               mapping.constants ? ", sets constants" : "", mapping.templates ? ", composes templates" : "",
               mapping.fallbacks ? ", has fallbacks" : "");
            check_mapping(&c, &job.cfg, &fields, &mapping, have_cols ? &cols : NULL);
            if (cursor_ok) check_sample(&c, &job.cfg, job.source, job.tracker, &fields, &mapping);
        }
        switch (wf_fields_key_carrier(&fields, job.cfg.key_field)) {
        case WF_KEY_VIA_LABEL:
            OK(&c, "submission key travels as label %s-<key prefix>", WF_KEY_LABEL);
            break;
        case WF_KEY_VIA_FIELD:
            OK(&c, "submission key travels in field %s (SYNC_KEY_FIELD)", job.cfg.key_field);
            break;
        case WF_KEY_VIA_NOTHING:
            FAIL(&c, 2, "add Labels to the request type, or set SYNC_KEY_FIELD to one of its text fields",
                 "the request type has no Labels field%s%s%s to carry the submission key",
                 job.cfg.key_field ? " and SYNC_KEY_FIELD=" : "", job.cfg.key_field ? job.cfg.key_field : "",
                 job.cfg.key_field ? " is not one of its fields" : "");
            break;
        }
    }

    /* 5. Local files. */
    check_tracker(&c, &job.cfg, job.tracker, tracker_rc, tracker_err);
    check_log_dir(&c, job.cfg.log_dir);
    if (job.cfg.metrics_file) check_metrics_file(&c, job.cfg.metrics_file);

summary:
    if (c.failures == 0)
        printf("\ncheck: everything holds (%d warning%s)\n", c.warnings, c.warnings == 1 ? "" : "s");
    else
        printf("\ncheck: %d problem%s, %d warning%s; exit %d (the most severe problem's class)\n", c.failures,
               c.failures == 1 ? "" : "s", c.warnings, c.warnings == 1 ? "" : "s", c.worst);
    wf_mapping_free(&mapping);
    wf_fields_free(&fields);
    wf_source_free_columns(cols.names, cols.types, cols.n);
    free(raw);
    free(password);
    wf_jsm_close(jsm);
    job_teardown(&job);
    return c.worst;
}
