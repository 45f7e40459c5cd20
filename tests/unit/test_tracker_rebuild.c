/* test_tracker_rebuild.c: the parts of the rebuild that need no JSM and no
 * database: reading a key label, the record a rebuild leaves in the
 * tracker's meta, and the line status and check print from it. (The rebuild
 * itself is tested against PostgreSQL and the JSM test server in
 * tests/integration/test_tracker_rebuild.py.) */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../modules/tracker_rebuild.h"
#include "unit_helpers.h"

static void test_label_prefix(void **state)
{
    (void)state;
    char p[WF_KEY_LABEL_PREFIX_LEN + 1];
    assert_true(wf_rebuild_label_prefix("wf2jsm-0123456789abcdef0123456789ABCDEF", p));
    assert_string_equal(p, "0123456789abcdef0123456789abcdef");
    /* the bare wf2jsm label, a short or long prefix, a non-hex digit, another tool's label */
    assert_false(wf_rebuild_label_prefix("wf2jsm", p));
    assert_false(wf_rebuild_label_prefix("wf2jsm-0123456789abcdef0123456789abcde", p));
    assert_false(wf_rebuild_label_prefix("wf2jsm-0123456789abcdef0123456789abcdef0", p));
    assert_false(wf_rebuild_label_prefix("wf2jsm-0123456789abcdef0123456789abcdeg", p));
    assert_false(wf_rebuild_label_prefix("wf2jsmx0123456789abcdef0123456789abcdef", p));
    assert_false(wf_rebuild_label_prefix("other-0123456789abcdef0123456789abcdef", p));
}

typedef struct {
    char *dir;
    wf_tracker *t;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char err[512];
    if (!fx || !(fx->dir = unit_mkdtemp())) return -1;
    char *path = unit_path(fx->dir, "tracker.db");
    int rc = wf_tracker_open(path, &fx->t, err, sizeof err) == WF_OK ? 0 : -1;
    free(path);
    *state = fx;
    return rc;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    wf_tracker_close(fx->t);
    unit_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

static void describe(wf_tracker *t, char *buf, size_t len)
{
    cJSON *m = wf_rebuild_meta(t);
    wf_rebuild_describe(m, buf, len);
    cJSON_Delete(m);
}

static void test_meta_and_the_line_it_prints(void **state)
{
    fixture *fx = *state;
    char line[512];
    assert_null(wf_rebuild_meta(fx->t));
    describe(fx->t, line, sizeof line);
    assert_non_null(strstr(line, "not checked against JSM yet"));

    assert_int_equal(wf_tracker_meta_set(fx->t, WF_REBUILD_META,
        "{\"kind\":\"new\",\"at\":\"2026-11-27T10:00:00Z\",\"command\":\"sync\",\"requests\":0,\"adopted\":0}"), WF_OK);
    describe(fx->t, line, sizeof line);
    assert_string_equal(line, "new since 2026-11-27T10:00:00Z: JSM held no wf2jsm request for this desk "
                              "(checked by sync)");

    assert_int_equal(wf_tracker_meta_set(fx->t, WF_REBUILD_META,
        "{\"kind\":\"rebuilt\",\"at\":\"2026-11-27T10:00:00Z\",\"command\":\"reconcile\",\"requests\":41,"
        "\"adopted\":40,\"incomplete\":1,\"queued\":3,\"unmatched\":1,\"duplicates\":0}"), WF_OK);
    describe(fx->t, line, sizeof line);
    assert_string_equal(line, "rebuilt from JSM on 2026-11-27T10:00:00Z by reconcile: 40 submissions from 41 requests; "
                              "1 left attaching, 3 source rows queued, 1 request without a source row, "
                              "0 duplicate requests");

    assert_int_equal(wf_tracker_meta_set(fx->t, WF_REBUILD_META,
        "{\"kind\":\"caught_up\",\"at\":\"2026-11-27T11:00:00Z\",\"command\":\"sync\",\"requests\":25,"
        "\"adopted\":20}"), WF_OK);
    describe(fx->t, line, sizeof line);
    assert_string_equal(line, "caught up with JSM on 2026-11-27T11:00:00Z by sync: 20 submissions it lacked, "
                              "of 25 requests listed");

    /* A record that is not ours (edited by hand, truncated) is ignored, not
     * trusted: status then says nothing was recorded. */
    assert_int_equal(wf_tracker_meta_set(fx->t, WF_REBUILD_META, "{\"kind\":"), WF_OK);
    assert_null(wf_rebuild_meta(fx->t));
    assert_int_equal(wf_tracker_meta_set(fx->t, WF_REBUILD_META, "[1,2]"), WF_OK);
    assert_null(wf_rebuild_meta(fx->t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_prefix),
        cmocka_unit_test_setup_teardown(test_meta_and_the_line_it_prints, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
