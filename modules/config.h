/* config.h: the run's configuration, from the environment and a .env file.
 *
 * Precedence: a variable set in the environment wins over the same variable
 * in the file (--env FILE, else ./.env when it exists). Every error names the
 * variable and says what a valid value looks like. */
#ifndef WF_CONFIG_H
#define WF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include "errors.h"

#define WF_MAX_KEY_COLUMNS 16

typedef struct wf_config {
    char *db_url;                 /* WEBFORM_DB_URL, may be empty: libpq's PG* then apply */
    char *table;                  /* WEBFORM_TABLE */
    char *id_column;              /* WEBFORM_ID_COLUMN */
    char *time_column;            /* WEBFORM_TIME_COLUMN */
    char *key_columns[WF_MAX_KEY_COLUMNS]; /* WEBFORM_KEY_COLUMNS */
    size_t n_key_columns;

    char *jira_base_url;          /* JIRA_BASE_URL, without trailing slash */
    char *jira_email;             /* JIRA_EMAIL */
    char *jira_api_token;         /* JIRA_API_TOKEN (secret) */
    char *jira_bearer_token;      /* JIRA_BEARER_TOKEN (secret) */
    char *service_desk_id;        /* JSM_SERVICE_DESK_ID */
    char *request_type_id;        /* JSM_REQUEST_TYPE_ID */
    char *ca_bundle;              /* SYNC_CA_BUNDLE: extra CA file for TLS, may be NULL */

    int batch_size;               /* SYNC_BATCH_SIZE */
    long lookback_seconds;        /* SYNC_LOOKBACK */
    char *tracker_db;             /* SYNC_TRACKER_DB */
    char *log_dir;                /* SYNC_LOG_DIR */
    char *field_mapping;          /* SYNC_FIELD_MAPPING */
    bool attach_json, attach_csv; /* SYNC_ATTACH_FORMATS */
    bool attach_public;           /* SYNC_ATTACH_PUBLIC */
    int max_attempts;             /* SYNC_MAX_ATTEMPTS */
    int max_in_flight;            /* SYNC_MAX_IN_FLIGHT: ceiling of concurrent HTTP requests */
    char *key_field;              /* SYNC_KEY_FIELD, may be NULL */
    long retry_budget_ms;         /* SYNC_RETRY_BUDGET (total backoff per run) */
    long retry_base_ms;           /* SYNC_RETRY_BASE_MS */
    long http_timeout_seconds;    /* SYNC_HTTP_TIMEOUT */
    long search_settle_seconds;   /* SYNC_SEARCH_SETTLE */
    char *metrics_file;           /* SYNC_METRICS_FILE, may be NULL */
    char *customer_email_column;  /* SYNC_CUSTOMER_EMAIL_COLUMN: raise on behalf of this address; may be NULL */
    char *customer_name_column;   /* SYNC_CUSTOMER_NAME_COLUMN: a new customer's display name; may be NULL */
} wf_config;

/* Loads the configuration. env_file is the --env argument or NULL (then
 * ./.env is read when present). require_jira: whether the subcommand talks
 * to Jira, so that its settings must be complete. On error returns WF_ERR_CONFIG (or
 * WF_ERR_FILE when env_file cannot be read) and writes a message naming the
 * variable into errbuf. The caller always calls wf_config_free(), on success
 * and on failure. */
wf_err wf_config_load(wf_config *cfg, const char *env_file, bool require_jira, char *errbuf, size_t errlen);

/* Frees every string in cfg. Safe on a zeroed or partly loaded cfg. */
void wf_config_free(wf_config *cfg);

/* Parses a duration such as "900", "90s", "15m", "2h" or "1d" into seconds.
 * Returns -1 when text is not a duration. */
long wf_parse_duration(const char *text);

#endif
