/* test_config.c: configuration from the environment and a .env file. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../modules/config.h"
#include "unit_helpers.h"

#define NELEM(a) (sizeof(a) / sizeof *(a))

extern char **environ;

typedef struct {
    char *dir;        /* the working directory of the test: no stray ./.env */
    char *env_path;   /* dir/test.env */
    char oldcwd[PATH_MAX];
} fixture;

/* Removes every WEBFORM_*, JIRA_*, JSM_* and SYNC_* variable, so that the
 * host's environment cannot leak into a test. */
static void clear_env(void)
{
    static const char *const prefixes[] = {"WEBFORM_", "JIRA_", "JSM_", "SYNC_"};
    for (;;) {
        char name[256] = "";
        for (char **e = environ; e && *e && !name[0]; e++) {
            for (size_t i = 0; i < NELEM(prefixes); i++) {
                if (strncmp(*e, prefixes[i], strlen(prefixes[i])) != 0) continue;
                const char *eq = strchr(*e, '=');
                size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
                if (len >= sizeof name) len = sizeof name - 1;
                memcpy(name, *e, len);
                name[len] = '\0';
                break;
            }
        }
        if (!name[0]) return;
        unsetenv(name);
    }
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    clear_env();
    if (!getcwd(fx->oldcwd, sizeof fx->oldcwd)) return -1;
    fx->dir = unit_mkdtemp();
    if (!fx->dir || chdir(fx->dir) != 0) return -1;
    fx->env_path = unit_path(fx->dir, "test.env");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    clear_env();
    if (chdir(fx->oldcwd) != 0) return -1;
    unit_rmtree(fx->dir);
    free(fx->dir);
    free(fx->env_path);
    free(fx);
    return 0;
}

/* Writes the env file and loads it. */
static wf_err load_with(fixture *fx, const char *file_text, bool require_jira, wf_config *cfg,
                        char *err, size_t errlen)
{
    assert_int_equal(unit_write_file(fx->env_path, file_text), 0);
    err[0] = '\0';
    return wf_config_load(cfg, fx->env_path, require_jira, err, errlen);
}

static const char jira_ok[] =
    "JIRA_BASE_URL=https://example.atlassian.net\n"
    "JIRA_EMAIL=ops@example.com\n"
    "JIRA_API_TOKEN=tok-123\n"
    "JSM_SERVICE_DESK_ID=4\n"
    "JSM_REQUEST_TYPE_ID=17\n";

static void test_defaults(void **state)
{
    (void)state;
    wf_config cfg;
    char err[512] = "";
    /* No --env and no ./.env in the working directory: all defaults. */
    assert_int_equal(wf_config_load(&cfg, NULL, false, err, sizeof err), WF_OK);
    assert_int_equal(cfg.batch_size, 30);
    assert_int_equal(cfg.lookback_seconds, 900);
    assert_true(cfg.attach_json);
    assert_true(cfg.attach_csv);
    assert_false(cfg.attach_public);
    assert_string_equal(cfg.tracker_db, "tracker/tracker.db");
    assert_string_equal(cfg.log_dir, "logs");
    assert_string_equal(cfg.field_mapping, "field_mapping.json");
    assert_string_equal(cfg.db_url, "");
    assert_string_equal(cfg.table, "webform_submissions");
    assert_string_equal(cfg.id_column, "id");
    assert_string_equal(cfg.time_column, "submitted_date");
    assert_int_equal(cfg.n_key_columns, 2);
    assert_string_equal(cfg.key_columns[0], "id");
    assert_string_equal(cfg.key_columns[1], "submitted_date");
    assert_int_equal(cfg.max_attempts, 3);
    assert_int_equal(cfg.max_in_flight, 20);
    assert_int_equal(cfg.retry_budget_ms, 120000);
    assert_int_equal(cfg.retry_base_ms, 500);
    assert_int_equal(cfg.http_timeout_seconds, 30);
    assert_int_equal(cfg.search_settle_seconds, 60);
    assert_null(cfg.key_field);
    assert_null(cfg.metrics_file);
    assert_null(cfg.ca_bundle);
    assert_null(cfg.jira_base_url);
    assert_null(cfg.jira_api_token);
    wf_config_free(&cfg);
    wf_config_free(&cfg); /* safe twice */
}

/* The key columns default to the id and time columns as configured. */
static void test_key_columns_follow_id_and_time_columns(void **state)
{
    fixture *fx = *state;
    wf_config cfg;
    char err[512];
    assert_int_equal(load_with(fx, "WEBFORM_ID_COLUMN=ref\nWEBFORM_TIME_COLUMN=created\n", false, &cfg,
                               err, sizeof err), WF_OK);
    assert_int_equal(cfg.n_key_columns, 2);
    assert_string_equal(cfg.key_columns[0], "ref");
    assert_string_equal(cfg.key_columns[1], "created");
    wf_config_free(&cfg);
    assert_int_equal(load_with(fx, "WEBFORM_KEY_COLUMNS= email , form_id ,\n", false, &cfg, err, sizeof err), WF_OK);
    assert_int_equal(cfg.n_key_columns, 2);
    assert_string_equal(cfg.key_columns[0], "email");
    assert_string_equal(cfg.key_columns[1], "form_id");
    wf_config_free(&cfg);
}

static void test_dot_env_in_working_directory(void **state)
{
    fixture *fx = *state;
    assert_int_equal(unit_write_file(".env", "SYNC_BATCH_SIZE=12\n"), 0);
    wf_config cfg;
    char err[512] = "";
    assert_int_equal(wf_config_load(&cfg, NULL, false, err, sizeof err), WF_OK);
    assert_int_equal(cfg.batch_size, 12);
    wf_config_free(&cfg);
    /* An explicit --env replaces ./.env. */
    assert_int_equal(load_with(fx, "SYNC_LOG_DIR=/x\n", false, &cfg, err, sizeof err), WF_OK);
    assert_int_equal(cfg.batch_size, 30);
    assert_string_equal(cfg.log_dir, "/x");
    wf_config_free(&cfg);
}

static void test_environment_wins_over_file(void **state)
{
    fixture *fx = *state;
    setenv("SYNC_BATCH_SIZE", "20", 1);
    setenv("SYNC_TRACKER_DB", "/env/tracker.db", 1);
    wf_config cfg;
    char err[512];
    assert_int_equal(load_with(fx, "SYNC_BATCH_SIZE=10\nSYNC_TRACKER_DB=/file/tracker.db\nSYNC_LOG_DIR=/file/logs\n",
                               false, &cfg, err, sizeof err), WF_OK);
    assert_int_equal(cfg.batch_size, 20);
    assert_string_equal(cfg.tracker_db, "/env/tracker.db");
    assert_string_equal(cfg.log_dir, "/file/logs"); /* only in the file */
    wf_config_free(&cfg);

    /* A bad value in the file does not matter when the environment
     * overrides it, and a bad value in the environment is reported. */
    setenv("SYNC_BATCH_SIZE", "25", 1);
    assert_int_equal(load_with(fx, "SYNC_BATCH_SIZE=nonsense\n", false, &cfg, err, sizeof err), WF_OK);
    assert_int_equal(cfg.batch_size, 25);
    wf_config_free(&cfg);
    setenv("SYNC_BATCH_SIZE", "lots", 1);
    assert_int_equal(load_with(fx, "SYNC_BATCH_SIZE=5\n", false, &cfg, err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "SYNC_BATCH_SIZE=lots"));
    wf_config_free(&cfg);
}

static void test_file_syntax(void **state)
{
    fixture *fx = *state;
    wf_config cfg;
    char err[512];
    assert_int_equal(load_with(fx,
        "# a comment\n"
        "\n"
        "   # an indented comment\n"
        "export SYNC_LOG_DIR=\"/var/log/wf2jsm with space\"\n"
        "SYNC_TRACKER_DB='/srv/t.db'\n"
        "  JIRA_EMAIL = ops@example.com  \n"
        "export   SYNC_FIELD_MAPPING = map.json\n"
        "SYNC_BATCH_SIZE=5\n"
        "SYNC_BATCH_SIZE=7\n"            /* the last assignment wins */
        "WEBFORM_DB_URL=postgresql://u:p=w@h/db?sslmode=require\n" /* '=' in the value */
        "SYNC_KEY_FIELD=\"customfield_10099'\n" /* unmatched quotes stay */
        "SYNC_METRICS_FILE=\"\"\n",
        false, &cfg, err, sizeof err), WF_OK);
    assert_string_equal(cfg.log_dir, "/var/log/wf2jsm with space");
    assert_string_equal(cfg.tracker_db, "/srv/t.db");
    assert_string_equal(cfg.jira_email, "ops@example.com");
    assert_string_equal(cfg.field_mapping, "map.json");
    assert_int_equal(cfg.batch_size, 7);
    assert_string_equal(cfg.db_url, "postgresql://u:p=w@h/db?sslmode=require");
    assert_string_equal(cfg.key_field, "\"customfield_10099'");
    assert_null(cfg.metrics_file); /* empty means unset */
    wf_config_free(&cfg);

    /* CRLF line ends (a file edited on Windows). */
    assert_int_equal(load_with(fx, "SYNC_BATCH_SIZE=8\r\nSYNC_LOG_DIR=l\r\n", false, &cfg, err, sizeof err), WF_OK);
    assert_int_equal(cfg.batch_size, 8);
    assert_string_equal(cfg.log_dir, "l");
    wf_config_free(&cfg);
}

static void test_file_syntax_error_names_file_and_line(void **state)
{
    fixture *fx = *state;
    wf_config cfg;
    char err[512];
    assert_int_equal(load_with(fx, "SYNC_BATCH_SIZE=5\n# fine\nthis line is wrong\n", false, &cfg, err, sizeof err),
                     WF_ERR_CONFIG);
    assert_non_null(strstr(err, fx->env_path));
    assert_non_null(strstr(err, "line 3"));
    wf_config_free(&cfg);
    assert_int_equal(load_with(fx, "=value\n", false, &cfg, err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "line 1"));
    wf_config_free(&cfg);
}

typedef struct {
    const char *name, *value;
    const char *must_say[3];
} bad_case;

static void check_bad(fixture *fx, const bad_case *c, const char *base, bool require_jira)
{
    char text[2048];
    snprintf(text, sizeof text, "%s%s=%s\n", base, c->name, c->value);
    wf_config cfg;
    char err[512];
    wf_err rc = load_with(fx, text, require_jira, &cfg, err, sizeof err);
    if (rc != WF_ERR_CONFIG) fail_msg("%s=%s: expected WF_ERR_CONFIG, got %d", c->name, c->value, (int)rc);
    for (size_t i = 0; i < NELEM(c->must_say) && c->must_say[i]; i++)
        if (!strstr(err, c->must_say[i]))
            fail_msg("%s=%s: the error does not say \"%s\": %s", c->name, c->value, c->must_say[i], err);
    wf_config_free(&cfg);
}

static void test_invalid_values_name_the_variable(void **state)
{
    fixture *fx = *state;
    static const bad_case cases[] = {
        {"SYNC_BATCH_SIZE", "abc", {"SYNC_BATCH_SIZE=abc", "1", "1000"}},
        {"SYNC_BATCH_SIZE", "0", {"SYNC_BATCH_SIZE=0", NULL, NULL}},
        {"SYNC_BATCH_SIZE", "5000", {"SYNC_BATCH_SIZE=5000", "1000", NULL}},
        {"SYNC_BATCH_SIZE", "-3", {"SYNC_BATCH_SIZE=-3", NULL, NULL}},
        {"SYNC_BATCH_SIZE", "12abc", {"SYNC_BATCH_SIZE=12abc", NULL, NULL}},
        {"SYNC_LOOKBACK", "10x", {"SYNC_LOOKBACK=10x", "15m", NULL}},
        {"SYNC_LOOKBACK", "-5m", {"SYNC_LOOKBACK=-5m", NULL, NULL}},
        {"SYNC_ATTACH_FORMATS", "pdf", {"SYNC_ATTACH_FORMATS", "'pdf'", "json"}},
        {"SYNC_ATTACH_FORMATS", "json,xml", {"SYNC_ATTACH_FORMATS", "'xml'", NULL}},
        {"SYNC_ATTACH_PUBLIC", "yes", {"SYNC_ATTACH_PUBLIC=yes", "true", NULL}},
        {"SYNC_MAX_ATTEMPTS", "0", {"SYNC_MAX_ATTEMPTS=0", NULL, NULL}},
        {"SYNC_MAX_IN_FLIGHT", "0", {"SYNC_MAX_IN_FLIGHT=0", "1", "200"}},
        {"SYNC_MAX_IN_FLIGHT", "500", {"SYNC_MAX_IN_FLIGHT=500", "200", NULL}},
        {"SYNC_RETRY_BUDGET", "forever", {"SYNC_RETRY_BUDGET=forever", NULL, NULL}},
        {"SYNC_HTTP_TIMEOUT", "0", {"SYNC_HTTP_TIMEOUT", NULL, NULL}},
        {"WEBFORM_TABLE", "forms; DROP TABLE x", {"WEBFORM_TABLE", NULL, NULL}},
        {"WEBFORM_ID_COLUMN", "a.b", {"WEBFORM_ID_COLUMN=a.b", NULL, NULL}},
        {"WEBFORM_KEY_COLUMNS", "id,drop table", {"WEBFORM_KEY_COLUMNS", "'drop table'", NULL}},
        {"WEBFORM_KEY_COLUMNS", ",,", {"WEBFORM_KEY_COLUMNS", NULL, NULL}},
        {"SYNC_CUSTOMER_EMAIL_COLUMN", "e-mail", {"SYNC_CUSTOMER_EMAIL_COLUMN=e-mail", NULL, NULL}},
        {"SYNC_CUSTOMER_NAME_COLUMN", "full_name", {"SYNC_CUSTOMER_NAME_COLUMN=full_name", "SYNC_CUSTOMER_EMAIL_COLUMN", NULL}},
    };
    for (size_t i = 0; i < NELEM(cases); i++) check_bad(fx, &cases[i], "", false);
}

static void test_jira_settings(void **state)
{
    fixture *fx = *state;
    wf_config cfg;
    char err[512];
    char text[1024];
    snprintf(text, sizeof text, "%s", jira_ok);
    assert_int_equal(load_with(fx, text, true, &cfg, err, sizeof err), WF_OK);
    assert_string_equal(cfg.jira_base_url, "https://example.atlassian.net");
    assert_string_equal(cfg.jira_api_token, "tok-123");
    assert_string_equal(cfg.service_desk_id, "4");
    assert_string_equal(cfg.request_type_id, "17");
    wf_config_free(&cfg);

    /* Trailing slashes go; loopback may use plain http (the test server). */
    setenv("JIRA_BASE_URL", "https://example.atlassian.net///", 1);
    assert_int_equal(load_with(fx, text, true, &cfg, err, sizeof err), WF_OK);
    assert_string_equal(cfg.jira_base_url, "https://example.atlassian.net");
    wf_config_free(&cfg);
    static const char *const loopback[] = {"http://127.0.0.1:8080", "http://localhost", "http://[::1]:9/jira"};
    for (size_t i = 0; i < NELEM(loopback); i++) {
        setenv("JIRA_BASE_URL", loopback[i], 1);
        assert_int_equal(load_with(fx, text, true, &cfg, err, sizeof err), WF_OK);
        wf_config_free(&cfg);
    }
    unsetenv("JIRA_BASE_URL");

    /* A bearer token alone is enough. */
    assert_int_equal(load_with(fx,
        "JIRA_BASE_URL=https://jira.example.com\nJIRA_BEARER_TOKEN=b\nJSM_SERVICE_DESK_ID=1\nJSM_REQUEST_TYPE_ID=2\n",
        true, &cfg, err, sizeof err), WF_OK);
    wf_config_free(&cfg);

    /* Without require_jira nothing of Jira is checked. */
    assert_int_equal(load_with(fx, "JIRA_BASE_URL=http://example.com\n", false, &cfg, err, sizeof err), WF_OK);
    wf_config_free(&cfg);
}

static void test_jira_errors_name_the_variable(void **state)
{
    fixture *fx = *state;
    static const bad_case cases[] = {
        {"JIRA_BASE_URL", "http://example.com", {"JIRA_BASE_URL=http://example.com", "https", NULL}},
        {"JIRA_BASE_URL", "http://localhost.evil.com", {"JIRA_BASE_URL", "https", NULL}},
        {"JIRA_BASE_URL", "https://", {"JIRA_BASE_URL", "https", NULL}},
        {"JIRA_BASE_URL", "example.atlassian.net", {"JIRA_BASE_URL", "https", NULL}},
        {"JSM_SERVICE_DESK_ID", "abc", {"JSM_SERVICE_DESK_ID=abc", "numeric", NULL}},
        {"JSM_SERVICE_DESK_ID", "4a", {"JSM_SERVICE_DESK_ID=4a", NULL, NULL}},
        {"JSM_REQUEST_TYPE_ID", "-1", {"JSM_REQUEST_TYPE_ID=-1", NULL, NULL}},
    };
    /* The later assignment of each case overrides the good one in jira_ok. */
    for (size_t i = 0; i < NELEM(cases); i++) check_bad(fx, &cases[i], jira_ok, true);
}

static void test_jira_missing_settings(void **state)
{
    fixture *fx = *state;
    static const struct { const char *text, *must_say; } cases[] = {
        {"JIRA_BASE_URL=https://x.atlassian.net\nJIRA_EMAIL=a@b.c\nJSM_SERVICE_DESK_ID=1\nJSM_REQUEST_TYPE_ID=2\n",
         "JIRA_API_TOKEN"},
        {"JIRA_BASE_URL=https://x.atlassian.net\nJIRA_API_TOKEN=t\nJSM_SERVICE_DESK_ID=1\nJSM_REQUEST_TYPE_ID=2\n",
         "JIRA_EMAIL"},
        {"JIRA_EMAIL=a@b.c\nJIRA_API_TOKEN=t\nJSM_SERVICE_DESK_ID=1\nJSM_REQUEST_TYPE_ID=2\n", "JIRA_BASE_URL"},
        {"JIRA_BASE_URL=https://x.atlassian.net\nJIRA_EMAIL=a@b.c\nJIRA_API_TOKEN=t\nJSM_REQUEST_TYPE_ID=2\n",
         "JSM_SERVICE_DESK_ID"},
        {"JIRA_BASE_URL=https://x.atlassian.net\nJIRA_EMAIL=a@b.c\nJIRA_API_TOKEN=t\nJSM_SERVICE_DESK_ID=1\n",
         "JSM_REQUEST_TYPE_ID"},
        /* Set but empty is missing. */
        {"JIRA_BASE_URL=https://x.atlassian.net\nJIRA_EMAIL=a@b.c\nJIRA_API_TOKEN=\nJSM_SERVICE_DESK_ID=1\n"
         "JSM_REQUEST_TYPE_ID=2\n", "JIRA_API_TOKEN"},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        wf_config cfg;
        char err[512];
        assert_int_equal(load_with(fx, cases[i].text, true, &cfg, err, sizeof err), WF_ERR_CONFIG);
        if (!strstr(err, cases[i].must_say)) fail_msg("case %zu does not name %s: %s", i, cases[i].must_say, err);
        wf_config_free(&cfg);
    }
}

static void test_attach_formats_and_public(void **state)
{
    fixture *fx = *state;
    static const struct { const char *text; bool json, csv, pub; } cases[] = {
        {"SYNC_ATTACH_FORMATS=csv\n", false, true, false},
        {"SYNC_ATTACH_FORMATS=JSON\n", true, false, false},
        {"SYNC_ATTACH_FORMATS= json , csv \nSYNC_ATTACH_PUBLIC=true\n", true, true, true},
        {"SYNC_ATTACH_PUBLIC=1\n", true, true, true},
        {"SYNC_ATTACH_PUBLIC=FALSE\n", true, true, false},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        wf_config cfg;
        char err[512];
        assert_int_equal(load_with(fx, cases[i].text, false, &cfg, err, sizeof err), WF_OK);
        assert_int_equal(cfg.attach_json, cases[i].json);
        assert_int_equal(cfg.attach_csv, cases[i].csv);
        assert_int_equal(cfg.attach_public, cases[i].pub);
        wf_config_free(&cfg);
    }
}

static void test_durations_in_config(void **state)
{
    fixture *fx = *state;
    wf_config cfg;
    char err[512];
    assert_int_equal(load_with(fx, "SYNC_LOOKBACK=1h\nSYNC_RETRY_BUDGET=2m\nSYNC_HTTP_TIMEOUT=45s\n"
                                   "SYNC_SEARCH_SETTLE=0\nSYNC_RETRY_BASE_MS=250\nSYNC_MAX_ATTEMPTS=5\n",
                               false, &cfg, err, sizeof err), WF_OK);
    assert_int_equal(cfg.lookback_seconds, 3600);
    assert_int_equal(cfg.retry_budget_ms, 120000);
    assert_int_equal(cfg.http_timeout_seconds, 45);
    assert_int_equal(cfg.search_settle_seconds, 0);
    assert_int_equal(cfg.retry_base_ms, 250);
    assert_int_equal(cfg.max_attempts, 5);
    wf_config_free(&cfg);
}

static void test_missing_explicit_env_file(void **state)
{
    fixture *fx = *state;
    char *path = unit_path(fx->dir, "does-not-exist.env");
    wf_config cfg;
    char err[512] = "";
    assert_int_equal(wf_config_load(&cfg, path, false, err, sizeof err), WF_ERR_FILE);
    assert_non_null(strstr(err, path));
    wf_config_free(&cfg);
    free(path);
    /* A directory is not a readable env file either. */
    err[0] = '\0';
    assert_int_equal(wf_config_load(&cfg, fx->dir, false, err, sizeof err), WF_ERR_FILE);
    assert_non_null(strstr(err, fx->dir));
    wf_config_free(&cfg);
}

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct { const char *text; long seconds; } cases[] = {
        {"900", 900}, {"0", 0}, {"90s", 90}, {"15m", 900}, {"15min", 900}, {"2h", 7200}, {"1d", 86400},
        {"100d", 8640000}, {"8640000", 8640000},
        /* not durations */
        {"", -1}, {"-5", -1}, {"10x", -1}, {"m", -1}, {"1.5h", -1}, {"15 m", -1},
        {"15M", -1}, {"101d", -1}, {"8640001", -1}, {"99999999999999999999", -1}, {"5ms", -1}, {"1h30m", -1},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        long got = wf_parse_duration(cases[i].text);
        if (got != cases[i].seconds)
            fail_msg("wf_parse_duration(\"%s\") = %ld, expected %ld", cases[i].text, got, cases[i].seconds);
    }
    assert_int_equal(wf_parse_duration(NULL), -1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_key_columns_follow_id_and_time_columns),
        T(test_dot_env_in_working_directory),
        T(test_environment_wins_over_file),
        T(test_file_syntax),
        T(test_file_syntax_error_names_file_and_line),
        T(test_invalid_values_name_the_variable),
        T(test_jira_settings),
        T(test_jira_errors_name_the_variable),
        T(test_jira_missing_settings),
        T(test_attach_formats_and_public),
        T(test_durations_in_config),
        T(test_missing_explicit_env_file),
        T(test_parse_duration),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
