/* test_errors.c: error texts, the exit status of each error class as
 * errors.h documents it, and which errors stop a run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../modules/errors.h"

static const wf_err all[] = {
    WF_OK, WF_ERR_USAGE, WF_ERR_CONFIG, WF_ERR_DB, WF_ERR_JIRA_AUTH, WF_ERR_JIRA_NOT_FOUND,
    WF_ERR_JIRA_UNREACHABLE, WF_ERR_JIRA_TEMPORARY, WF_ERR_JIRA_REJECTED, WF_ERR_JIRA_PROTOCOL,
    WF_ERR_TRACKER, WF_ERR_FILE, WF_ERR_LOCKED, WF_ERR_NOMEM, WF_ERR_INTERRUPTED, WF_ERR_ROWS_FAILED,
};
#define NALL (sizeof all / sizeof *all)

static void test_every_error_has_its_own_text(void **state)
{
    (void)state;
    for (size_t i = 0; i < NALL; i++) {
        const char *s = wf_strerror(all[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, wf_strerror((wf_err)9999));
        for (size_t j = 0; j < i; j++) assert_string_not_equal(s, wf_strerror(all[j]));
    }
    assert_non_null(wf_strerror((wf_err)9999));
}

/* The statuses written next to each code in errors.h. */
static void test_exit_codes(void **state)
{
    (void)state;
    static const struct { wf_err err; int code; } cases[] = {
        {WF_OK, 0}, {WF_ERR_INTERRUPTED, 0}, {WF_ERR_ROWS_FAILED, 1},
        {WF_ERR_USAGE, 2}, {WF_ERR_CONFIG, 2}, {WF_ERR_DB, 3},
        {WF_ERR_JIRA_AUTH, 4}, {WF_ERR_JIRA_NOT_FOUND, 4}, {WF_ERR_JIRA_UNREACHABLE, 4},
        {WF_ERR_TRACKER, 5}, {WF_ERR_FILE, 5}, {WF_ERR_NOMEM, 5}, {WF_ERR_LOCKED, 75},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (wf_exit_code(cases[i].err) != cases[i].code)
            fail_msg("%s exits %d, errors.h says %d", wf_strerror(cases[i].err), wf_exit_code(cases[i].err),
                     cases[i].code);
    /* Every error other than OK and an interruption exits non-zero. */
    for (size_t i = 0; i < NALL; i++)
        if (all[i] != WF_OK && all[i] != WF_ERR_INTERRUPTED) assert_int_not_equal(wf_exit_code(all[i]), 0);
}

static void test_what_stops_a_run(void **state)
{
    (void)state;
    /* Run-wide conditions. */
    static const wf_err stop[] = {WF_ERR_DB, WF_ERR_JIRA_AUTH, WF_ERR_JIRA_UNREACHABLE, WF_ERR_TRACKER,
                                  WF_ERR_CONFIG, WF_ERR_FILE, WF_ERR_NOMEM, WF_ERR_LOCKED, WF_ERR_INTERRUPTED};
    /* Conditions of one submission. */
    static const wf_err go_on[] = {WF_OK, WF_ERR_JIRA_REJECTED, WF_ERR_ROWS_FAILED};
    for (size_t i = 0; i < sizeof stop / sizeof *stop; i++)
        if (!wf_err_stops_run(stop[i])) fail_msg("%s does not stop the run", wf_strerror(stop[i]));
    for (size_t i = 0; i < sizeof go_on / sizeof *go_on; i++)
        if (wf_err_stops_run(go_on[i])) fail_msg("%s stops the run", wf_strerror(go_on[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_error_has_its_own_text),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_what_stops_a_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
