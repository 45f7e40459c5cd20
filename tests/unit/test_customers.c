/* test_customers.c: the customer logic that needs no Jira: which addresses
 * are tried, how they match ignoring case, the tracker's cache (a cached
 * address costs no HTTP call: these tests pass no JSM client at all), and
 * the manual-fix entry. The HTTP paths run in
 * tests/integration/test_customers_templates.py against the JSM test server. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/customers.h"
#include "unit_helpers.h"

static void test_address_validity(void **state)
{
    (void)state;
    static const char *const good[] = {"ann@example.com", "Ann.Smith+forms@Mail.Example.ORG", "a@b.co",
                                       "o'brien@example.ie"};
    static const char *const bad[] = {"", "ann", "ann@", "@example.com", "ann@example", "ann@@example.com",
                                      "ann smith@example.com", "ann@example..com", "ann@.example.com",
                                      "ann@example.com.", "<ann@example.com>", "ann@exa\"mple.com",
                                      "a,b@example.com", "ann@example.com\n"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) assert_true(wf_customer_address_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) assert_false(wf_customer_address_valid(bad[i]));
    assert_false(wf_customer_address_valid(NULL));
    char longest[300];
    memset(longest, 'a', sizeof longest);
    memcpy(longest + 250, "@b.cd", 6);   /* 255 bytes: one too many */
    assert_false(wf_customer_address_valid(longest));
}

static void test_key_and_pick_ignore_case(void **state)
{
    (void)state;
    char *key = wf_customer_address_key("Ann.Smith@Example.COM");
    assert_string_equal(key, "ann.smith@example.com");
    free(key);
    cJSON *users = cJSON_Parse("[{\"accountId\": \"qm:1\", \"emailAddress\": \"annie@example.com\"},"
                               " {\"accountId\": \"qm:2\"},"
                               " {\"accountId\": \"qm:3\", \"emailAddress\": \"ANN@example.com\"}]");
    assert_non_null(users);
    assert_string_equal(wf_customer_pick(users, "ann@EXAMPLE.com"), "qm:3");
    /* a query matches prefixes; the pick is the whole address only */
    assert_null(wf_customer_pick(users, "ann@example.co"));
    assert_null(wf_customer_pick(NULL, "ann@example.com"));
    cJSON_Delete(users);
}

typedef struct {
    char *dir, *path;
    wf_tracker *t;
    wf_log *log;
    wf_config cfg;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char err[512];
    if (!fx || !(fx->dir = unit_mkdtemp()) || !(fx->path = unit_path(fx->dir, "tracker.db")) ||
        wf_tracker_open(fx->path, &fx->t, err, sizeof err) != WF_OK || !(fx->log = wf_log_open_null()))
        return -1;
    fx->cfg.service_desk_id = strdup("1");
    fx->cfg.customer_email_column = strdup("email");
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    wf_config_free(&fx->cfg);
    wf_log_close(fx->log);
    wf_tracker_close(fx->t);
    unit_rmtree(fx->dir);
    free(fx->dir);
    free(fx->path);
    free(fx);
    return 0;
}

static void test_cache_is_per_desk_and_can_forget(void **state)
{
    fixture *fx = *state;
    char *id = NULL;
    assert_int_equal(wf_tracker_customer_get(fx->t, "1", "ann@example.com", &id), WF_OK);
    assert_null(id);
    assert_int_equal(wf_tracker_customer_put(fx->t, "1", "ann@example.com", "qm:ann"), WF_OK);
    assert_int_equal(wf_tracker_customer_put(fx->t, "1", "ann@example.com", "qm:ann2"), WF_OK);
    assert_int_equal(wf_tracker_customer_get(fx->t, "1", "ann@example.com", &id), WF_OK);
    assert_string_equal(id, "qm:ann2");
    free(id);
    /* another desk must add the customer again */
    assert_int_equal(wf_tracker_customer_get(fx->t, "2", "ann@example.com", &id), WF_OK);
    assert_null(id);
    assert_int_equal(wf_tracker_customer_forget(fx->t, "1", "ann@example.com"), WF_OK);
    assert_int_equal(wf_tracker_customer_get(fx->t, "1", "ann@example.com", &id), WF_OK);
    assert_null(id);
}

/* Resolves a submission whose column "email" holds address (NULL: SQL
 * NULL), with no JSM client: only paths that make no HTTP call may run. */
static wf_err resolve(fixture *fx, const char *address, wf_customer *c, char *err, size_t errlen)
{
    static const char *const names[] = {"id", "email"};
    const char *values[] = {"9", address};
    wf_submission sub = {0};
    sub.ncols = 2;
    sub.names = names;
    sub.values = values;
    sub.id = "9";
    return wf_customer_resolve(NULL, fx->t, &fx->cfg, fx->log, &sub, c, err, errlen);
}

static void test_resolve_without_http(void **state)
{
    fixture *fx = *state;
    wf_customer c;
    char err[512];
    /* no address: the job's account reports, and there is nothing to fix */
    assert_int_equal(resolve(fx, NULL, &c, err, sizeof err), WF_OK);
    assert_null(c.address);
    assert_null(c.account_id);
    assert_null(c.reason);
    wf_customer_free(&c);
    assert_int_equal(resolve(fx, "  \t ", &c, err, sizeof err), WF_OK);
    assert_null(c.address);
    wf_customer_free(&c);
    /* an invalid address: a reason naming it, no account */
    assert_int_equal(resolve(fx, " not-an-address ", &c, err, sizeof err), WF_OK);
    assert_string_equal(c.address, "not-an-address");
    assert_null(c.account_id);
    assert_non_null(strstr(c.reason, "not an email address"));
    cJSON *fixes = cJSON_CreateArray();
    assert_int_equal(wf_customer_add_fix(&c, fixes), 0);
    char *text = cJSON_PrintUnformatted(fixes);
    assert_non_null(strstr(text, "{\"field\":\"raiseOnBehalfOf\",\"value\":\"not-an-address\",\"message\":"));
    free(text);
    cJSON_Delete(fixes);
    wf_customer_free(&c);
    /* a cached address, in any case, costs no HTTP call */
    assert_int_equal(wf_tracker_customer_put(fx->t, "1", "ann@example.com", "qm:ann"), WF_OK);
    assert_int_equal(resolve(fx, "ANN@Example.com", &c, err, sizeof err), WF_OK);
    assert_string_equal(c.account_id, "qm:ann");
    assert_string_equal(c.address, "ANN@Example.com");
    assert_null(c.reason);
    fixes = cJSON_CreateArray();
    assert_int_equal(wf_customer_add_fix(&c, fixes), 0);
    assert_int_equal(cJSON_GetArraySize(fixes), 0);
    cJSON_Delete(fixes);
    wf_customer_free(&c);
}

static void test_resolve_feature_off_and_missing_column(void **state)
{
    fixture *fx = *state;
    wf_customer c;
    char err[512] = "";
    free(fx->cfg.customer_email_column);
    fx->cfg.customer_email_column = NULL;
    assert_int_equal(resolve(fx, "ann@example.com", &c, err, sizeof err), WF_OK);
    assert_null(c.address);
    assert_null(c.account_id);
    wf_customer_free(&c);
    fx->cfg.customer_email_column = strdup("mail");
    assert_int_equal(resolve(fx, "ann@example.com", &c, err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "SYNC_CUSTOMER_EMAIL_COLUMN=mail"));
    wf_customer_free(&c);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address_validity),
        cmocka_unit_test(test_key_and_pick_ignore_case),
        T(test_cache_is_per_desk_and_can_forget),
        T(test_resolve_without_http),
        T(test_resolve_feature_off_and_missing_column),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
