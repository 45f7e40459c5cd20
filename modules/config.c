/* config.c: environment and .env parsing with named, actionable errors. */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    char **keys, **values;
    size_t n;
} env_file_vars;

static void env_file_free(env_file_vars *f)
{
    for (size_t i = 0; i < f->n; i++) { free(f->keys[i]); free(f->values[i]); }
    free(f->keys);
    free(f->values);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1])) *--end = '\0';
    return s;
}

/* Reads KEY=VALUE lines; "# comments", blank lines, an "export " prefix and
 * matching single or double quotes around the value are allowed. */
static wf_err env_file_read(const char *path, bool must_exist, env_file_vars *out,
                            char *errbuf, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (!must_exist && errno == ENOENT) return WF_OK;
        snprintf(errbuf, errlen, "cannot read env file %s: %s", path, strerror(errno));
        return WF_ERR_FILE;
    }
    wf_err rc = WF_OK;
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    while (getline(&line, &cap, fp) >= 0) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#') continue;
        if (strncmp(s, "export ", 7) == 0) s = trim(s + 7);
        char *eq = strchr(s, '=');
        if (!eq || eq == s) {
            snprintf(errbuf, errlen, "%s line %d: expected NAME=value", path, lineno);
            rc = WF_ERR_CONFIG;
            goto done;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t vlen = strlen(value);
        if (vlen >= 2 && (value[0] == '"' || value[0] == '\'') && value[vlen - 1] == value[0]) {
            value[vlen - 1] = '\0';
            value++;
        }
        char **nk = realloc(out->keys, (out->n + 1) * sizeof *nk);
        if (!nk) { rc = WF_ERR_NOMEM; goto done; }
        out->keys = nk;
        char **nv = realloc(out->values, (out->n + 1) * sizeof *nv);
        if (!nv) { rc = WF_ERR_NOMEM; goto done; }
        out->values = nv;
        out->keys[out->n] = strdup(key);
        out->values[out->n] = strdup(value);
        out->n++;
    }
    /* getline() also stops on a read error (EISDIR for a directory). */
    if (ferror(fp)) {
        snprintf(errbuf, errlen, "cannot read env file %s: %s", path, strerror(errno));
        rc = WF_ERR_FILE;
    }
done:
    free(line);
    fclose(fp);
    return rc;
}

/* The environment wins; the last assignment in the file wins within it. */
static const char *lookup(const env_file_vars *file, const char *name)
{
    const char *v = getenv(name);
    if (v) return v;
    for (size_t i = file->n; i-- > 0;)
        if (file->keys[i] && strcmp(file->keys[i], name) == 0) return file->values[i];
    return NULL;
}

static char *dup_or_default(const env_file_vars *file, const char *name, const char *dflt)
{
    const char *v = lookup(file, name);
    if (!v || !*v) v = dflt;
    return v ? strdup(v) : NULL;
}

long wf_parse_duration(const char *text)
{
    if (!text || !*text) return -1;
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno || end == text || n < 0) return -1;
    long mult;
    if (*end == '\0' || strcmp(end, "s") == 0) mult = 1;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0) mult = 60;
    else if (strcmp(end, "h") == 0) mult = 3600;
    else if (strcmp(end, "d") == 0) mult = 86400;
    else return -1;
    if (n > 100L * 86400 / mult) return -1;
    return n * mult;
}

static wf_err int_var(const env_file_vars *file, const char *name, long dflt, long min, long max,
                      long *out, char *errbuf, size_t errlen)
{
    const char *v = lookup(file, name);
    if (!v || !*v) { *out = dflt; return WF_OK; }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || end == v || n < min || n > max) {
        snprintf(errbuf, errlen, "%s=%s is not valid: use a whole number from %ld to %ld", name, v, min, max);
        return WF_ERR_CONFIG;
    }
    *out = n;
    return WF_OK;
}

static wf_err duration_var(const env_file_vars *file, const char *name, long dflt,
                           long *out, char *errbuf, size_t errlen)
{
    const char *v = lookup(file, name);
    if (!v || !*v) { *out = dflt; return WF_OK; }
    long n = wf_parse_duration(v);
    if (n < 0) {
        snprintf(errbuf, errlen, "%s=%s is not a duration: use seconds or a number with s, m, h or d (e.g. 15m)", name, v);
        return WF_ERR_CONFIG;
    }
    *out = n;
    return WF_OK;
}

static int valid_identifier(const char *s)
{
    if (!s || !*s || strlen(s) > 63) return 0;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.')) return 0;
    return !isdigit((unsigned char)s[0]);
}

/* The customer columns are column names; a display name without an
 * address to give it to is a mistake worth saying. */
static wf_err check_customer_columns(const wf_config *cfg, char *errbuf, size_t errlen)
{
    if (cfg->customer_email_column &&
        (!valid_identifier(cfg->customer_email_column) || strchr(cfg->customer_email_column, '.'))) {
        snprintf(errbuf, errlen, "SYNC_CUSTOMER_EMAIL_COLUMN=%s is not a column name (letters, digits and _)",
                 cfg->customer_email_column);
        return WF_ERR_CONFIG;
    }
    if (cfg->customer_name_column &&
        (!valid_identifier(cfg->customer_name_column) || strchr(cfg->customer_name_column, '.'))) {
        snprintf(errbuf, errlen, "SYNC_CUSTOMER_NAME_COLUMN=%s is not a column name (letters, digits and _)",
                 cfg->customer_name_column);
        return WF_ERR_CONFIG;
    }
    if (cfg->customer_name_column && !cfg->customer_email_column) {
        snprintf(errbuf, errlen, "SYNC_CUSTOMER_NAME_COLUMN=%s is set but SYNC_CUSTOMER_EMAIL_COLUMN is not: "
                 "set SYNC_CUSTOMER_EMAIL_COLUMN to the column holding the submitter's address, or unset both",
                 cfg->customer_name_column);
        return WF_ERR_CONFIG;
    }
    return WF_OK;
}

static wf_err parse_key_columns(wf_config *cfg, const char *list, char *errbuf, size_t errlen)
{
    char *copy = strdup(list);
    if (!copy) return WF_ERR_NOMEM;
    wf_err rc = WF_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        if (!*tok) continue;
        if (!valid_identifier(tok) || strchr(tok, '.')) {
            snprintf(errbuf, errlen, "WEBFORM_KEY_COLUMNS: '%s' is not a column name (letters, digits and _)", tok);
            rc = WF_ERR_CONFIG;
            break;
        }
        if (cfg->n_key_columns == WF_MAX_KEY_COLUMNS) {
            snprintf(errbuf, errlen, "WEBFORM_KEY_COLUMNS: at most %d columns", WF_MAX_KEY_COLUMNS);
            rc = WF_ERR_CONFIG;
            break;
        }
        cfg->key_columns[cfg->n_key_columns++] = strdup(tok);
    }
    if (rc == WF_OK && cfg->n_key_columns == 0) {
        snprintf(errbuf, errlen, "WEBFORM_KEY_COLUMNS is empty: name at least one column, e.g. id,submitted_date");
        rc = WF_ERR_CONFIG;
    }
    free(copy);
    return rc;
}

static wf_err parse_formats(wf_config *cfg, const char *list, char *errbuf, size_t errlen)
{
    cfg->attach_json = cfg->attach_csv = false;
    char *copy = strdup(list);
    if (!copy) return WF_ERR_NOMEM;
    wf_err rc = WF_OK;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        if (strcasecmp(tok, "json") == 0) cfg->attach_json = true;
        else if (strcasecmp(tok, "csv") == 0) cfg->attach_csv = true;
        else if (*tok) {
            snprintf(errbuf, errlen, "SYNC_ATTACH_FORMATS: unknown format '%s' (use json, csv or json,csv)", tok);
            rc = WF_ERR_CONFIG;
            break;
        }
    }
    free(copy);
    return rc;
}

/* Plain http is only accepted on loopback, where the JSM test server lives;
 * anything else must be https so that the token never crosses a network in
 * clear text and the server certificate is verified. */
static wf_err check_base_url(const char *url, char *errbuf, size_t errlen)
{
    if (strncmp(url, "https://", 8) == 0 && url[8]) return WF_OK;
    static const char *loopback[] = {"http://127.0.0.1", "http://localhost", "http://[::1]"};
    for (size_t i = 0; i < sizeof loopback / sizeof *loopback; i++) {
        size_t n = strlen(loopback[i]);
        if (strncmp(url, loopback[i], n) == 0 && (url[n] == '\0' || url[n] == ':' || url[n] == '/'))
            return WF_OK;
    }
    snprintf(errbuf, errlen, "JIRA_BASE_URL=%s must start with https:// (e.g. https://your-domain.atlassian.net); "
             "plain http is only allowed on loopback", url);
    return WF_ERR_CONFIG;
}

static int is_numeric_id(const char *s)
{
    if (!s || !*s) return 0;
    for (; *s; s++) if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

wf_err wf_config_load(wf_config *cfg, const char *env_file, bool require_jira, char *errbuf, size_t errlen)
{
    env_file_vars file = {0};
    long n;
    memset(cfg, 0, sizeof *cfg);
    wf_err rc = env_file_read(env_file ? env_file : ".env", env_file != NULL, &file, errbuf, errlen);
    if (rc != WF_OK) goto done;

    cfg->db_url = dup_or_default(&file, "WEBFORM_DB_URL", "");
    cfg->table = dup_or_default(&file, "WEBFORM_TABLE", "webform_submissions");
    cfg->id_column = dup_or_default(&file, "WEBFORM_ID_COLUMN", "id");
    cfg->time_column = dup_or_default(&file, "WEBFORM_TIME_COLUMN", "submitted_date");
    cfg->jira_base_url = dup_or_default(&file, "JIRA_BASE_URL", NULL);
    cfg->jira_email = dup_or_default(&file, "JIRA_EMAIL", NULL);
    cfg->jira_api_token = dup_or_default(&file, "JIRA_API_TOKEN", NULL);
    cfg->jira_bearer_token = dup_or_default(&file, "JIRA_BEARER_TOKEN", NULL);
    cfg->service_desk_id = dup_or_default(&file, "JSM_SERVICE_DESK_ID", NULL);
    cfg->request_type_id = dup_or_default(&file, "JSM_REQUEST_TYPE_ID", NULL);
    cfg->ca_bundle = dup_or_default(&file, "SYNC_CA_BUNDLE", NULL);
    cfg->tracker_db = dup_or_default(&file, "SYNC_TRACKER_DB", "tracker/tracker.db");
    cfg->log_dir = dup_or_default(&file, "SYNC_LOG_DIR", "logs");
    cfg->field_mapping = dup_or_default(&file, "SYNC_FIELD_MAPPING", "field_mapping.json");
    cfg->key_field = dup_or_default(&file, "SYNC_KEY_FIELD", NULL);
    cfg->metrics_file = dup_or_default(&file, "SYNC_METRICS_FILE", NULL);
    cfg->customer_email_column = dup_or_default(&file, "SYNC_CUSTOMER_EMAIL_COLUMN", NULL);
    cfg->customer_name_column = dup_or_default(&file, "SYNC_CUSTOMER_NAME_COLUMN", NULL);
    if (!cfg->db_url || !cfg->table || !cfg->id_column || !cfg->time_column || !cfg->tracker_db ||
        !cfg->log_dir || !cfg->field_mapping) { rc = WF_ERR_NOMEM; goto done; }

    rc = WF_ERR_CONFIG;
    if (!valid_identifier(cfg->table)) {
        snprintf(errbuf, errlen, "WEBFORM_TABLE=%s is not a table or view name (letters, digits, _ and one optional schema.)", cfg->table);
        goto done;
    }
    if (!valid_identifier(cfg->id_column) || strchr(cfg->id_column, '.')) {
        snprintf(errbuf, errlen, "WEBFORM_ID_COLUMN=%s is not a column name", cfg->id_column);
        goto done;
    }
    if (!valid_identifier(cfg->time_column) || strchr(cfg->time_column, '.')) {
        snprintf(errbuf, errlen, "WEBFORM_TIME_COLUMN=%s is not a column name", cfg->time_column);
        goto done;
    }
    if ((rc = check_customer_columns(cfg, errbuf, errlen)) != WF_OK) goto done;
    const char *keys = lookup(&file, "WEBFORM_KEY_COLUMNS");
    char default_keys[160];
    if (!keys || !*keys) {
        snprintf(default_keys, sizeof default_keys, "%s,%s", cfg->id_column, cfg->time_column);
        keys = default_keys;
    }
    if ((rc = parse_key_columns(cfg, keys, errbuf, errlen)) != WF_OK) goto done;
    const char *formats = lookup(&file, "SYNC_ATTACH_FORMATS");
    if ((rc = parse_formats(cfg, formats && *formats ? formats : "json,csv", errbuf, errlen)) != WF_OK) goto done;
    const char *pub = lookup(&file, "SYNC_ATTACH_PUBLIC");
    rc = WF_ERR_CONFIG;
    if (pub && *pub && strcmp(pub, "0") && strcmp(pub, "1") && strcasecmp(pub, "true") && strcasecmp(pub, "false")) {
        snprintf(errbuf, errlen, "SYNC_ATTACH_PUBLIC=%s is not valid: use true or false (default false: internal)", pub);
        goto done;
    }
    cfg->attach_public = pub && (strcmp(pub, "1") == 0 || strcasecmp(pub, "true") == 0);

    if ((rc = int_var(&file, "SYNC_BATCH_SIZE", 30, 1, 1000, &n, errbuf, errlen))) goto done;
    cfg->batch_size = (int)n;
    /* 20 in flight: at Atlassian Cloud's typical 250 ms round trip a
     * submission takes three calls, about 0.8 s, so 20 in flight carry
     * about 25 submissions (75 calls) a second, above the burst limits a
     * tenant gets per endpoint; the pacer, not this ceiling, keeps to the
     * limit. Higher only buys connections and memory. */
    if ((rc = int_var(&file, "SYNC_MAX_IN_FLIGHT", 20, 1, 200, &n, errbuf, errlen))) goto done;
    cfg->max_in_flight = (int)n;
    if ((rc = int_var(&file, "SYNC_MAX_ATTEMPTS", 3, 1, 1000, &n, errbuf, errlen))) goto done;
    cfg->max_attempts = (int)n;
    if ((rc = duration_var(&file, "SYNC_LOOKBACK", 15 * 60, &cfg->lookback_seconds, errbuf, errlen))) goto done;
    if ((rc = duration_var(&file, "SYNC_RETRY_BUDGET", 120, &n, errbuf, errlen))) goto done;
    cfg->retry_budget_ms = n * 1000;
    if ((rc = int_var(&file, "SYNC_RETRY_BASE_MS", 500, 1, 60000, &cfg->retry_base_ms, errbuf, errlen))) goto done;
    if ((rc = duration_var(&file, "SYNC_HTTP_TIMEOUT", 30, &cfg->http_timeout_seconds, errbuf, errlen))) goto done;
    if (cfg->http_timeout_seconds < 1) {
        snprintf(errbuf, errlen, "SYNC_HTTP_TIMEOUT must be at least 1 second");
        rc = WF_ERR_CONFIG;
        goto done;
    }
    if ((rc = duration_var(&file, "SYNC_SEARCH_SETTLE", 60, &cfg->search_settle_seconds, errbuf, errlen))) goto done;

    rc = WF_ERR_CONFIG;
    if (require_jira) {
        if (!cfg->jira_base_url) {
            snprintf(errbuf, errlen, "JIRA_BASE_URL is not set: set it to your site, e.g. https://your-domain.atlassian.net");
            goto done;
        }
        size_t len = strlen(cfg->jira_base_url);
        while (len > 0 && cfg->jira_base_url[len - 1] == '/') cfg->jira_base_url[--len] = '\0';
        if ((rc = check_base_url(cfg->jira_base_url, errbuf, errlen)) != WF_OK) goto done;
        rc = WF_ERR_CONFIG;
        if (!cfg->jira_bearer_token && !(cfg->jira_email && cfg->jira_api_token)) {
            snprintf(errbuf, errlen, "%s is not set: set JIRA_EMAIL and JIRA_API_TOKEN (an Atlassian API token), or JIRA_BEARER_TOKEN",
                     cfg->jira_email ? "JIRA_API_TOKEN" : "JIRA_EMAIL");
            goto done;
        }
        if (!is_numeric_id(cfg->service_desk_id)) {
            snprintf(errbuf, errlen, "JSM_SERVICE_DESK_ID%s%s must be the numeric id of the service desk (see the portal URL .../portal/<id>)",
                     cfg->service_desk_id ? "=" : " is not set: it", cfg->service_desk_id ? cfg->service_desk_id : "");
            goto done;
        }
        if (!is_numeric_id(cfg->request_type_id)) {
            snprintf(errbuf, errlen, "JSM_REQUEST_TYPE_ID%s%s must be the numeric id of the request type (see .../portal/<desk>/create/<id>)",
                     cfg->request_type_id ? "=" : " is not set: it", cfg->request_type_id ? cfg->request_type_id : "");
            goto done;
        }
    }
    rc = WF_OK;
done:
    env_file_free(&file);
    return rc;
}

void wf_config_free(wf_config *cfg)
{
    if (!cfg) return;
    char **strings[] = {&cfg->db_url, &cfg->table, &cfg->id_column, &cfg->time_column,
                        &cfg->jira_base_url, &cfg->jira_email, &cfg->jira_api_token,
                        &cfg->jira_bearer_token, &cfg->service_desk_id, &cfg->request_type_id,
                        &cfg->ca_bundle, &cfg->tracker_db, &cfg->log_dir, &cfg->field_mapping,
                        &cfg->key_field, &cfg->metrics_file, &cfg->customer_email_column,
                        &cfg->customer_name_column};
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) { free(*strings[i]); *strings[i] = NULL; }
    for (size_t i = 0; i < cfg->n_key_columns; i++) free(cfg->key_columns[i]);
    cfg->n_key_columns = 0;
}
