/* test_jsm_replies.c: reading Jira's answers: the good shapes, and every
 * wrong one answered with WF_ERR_JIRA_PROTOCOL or a bounded message. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../modules/jsm_client.h"
#include "../../modules/jsm_replies.h"

static void test_error_bodies(void **state)
{
    (void)state;
    char msg[700];
    cJSON *fe = NULL;
    const char *jsm = "{\"errorMessage\": \"Could not create\", \"errors\": {\"summary\": \"too long\", \"x\": 1}}";
    assert_true(wf_reply_describe_error(jsm, strlen(jsm), msg, sizeof msg, &fe));
    assert_string_equal(msg, "Could not create; summary: too long");
    assert_non_null(fe);
    assert_string_equal(cJSON_GetObjectItem(fe, "summary")->valuestring, "too long");
    cJSON_Delete(fe);
    const char *platform = "{\"errorMessages\": [\"Issue does not exist\", 3, \"or you may not see it\"], \"errors\": {}}";
    wf_reply_describe_error(platform, strlen(platform), msg, sizeof msg, &fe);
    assert_string_equal(msg, "Issue does not exist; or you may not see it");
    assert_null(fe);
    /* Not JSON: the first 200 bytes, and only the body's own bytes. */
    char html[300];
    memset(html, 'h', sizeof html);
    assert_false(wf_reply_describe_error(html, sizeof html, msg, sizeof msg, &fe));
    assert_int_equal(strlen(msg), 200);
    assert_false(wf_reply_describe_error("[1]", 3, msg, sizeof msg, &fe));   /* JSON, but no answer */
    wf_reply_describe_error(NULL, 0, msg, sizeof msg, &fe);
    assert_string_equal(msg, "");
    /* A long message fills a small buffer and stays terminated. */
    char small[16];
    wf_reply_describe_error(platform, strlen(platform), small, sizeof small, &fe);
    assert_string_equal(small, "Issue does not ");
}

static void test_created(void **state)
{
    (void)state;
    char *key, *id;
    cJSON *r = cJSON_Parse("{\"issueKey\": \"WF-7\", \"issueId\": \"10007\"}");
    assert_int_equal(wf_reply_created(r, &key, &id), WF_OK);
    assert_string_equal(key, "WF-7");
    assert_string_equal(id, "10007");
    free(key);
    free(id);
    cJSON_Delete(r);
    static const char *const bad[] = {"{}", "{\"issueKey\": 7}", "{\"issueKey\": \"\"}", "[]", "\"WF-1\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = cJSON_Parse(bad[i]);
        assert_int_equal(wf_reply_created(r, &key, &id), WF_ERR_JIRA_PROTOCOL);
        assert_null(key);
        assert_null(id);
        cJSON_Delete(r);
    }
}

static void test_temporary_ids(void **state)
{
    (void)state;
    char *files[2] = {(char *)"a.json", (char *)"a.csv"};
    cJSON *r = cJSON_Parse("{\"temporaryAttachments\": [{\"temporaryAttachmentId\": \"t2\", \"fileName\": \"a.csv\"},"
                           " {\"temporaryAttachmentId\": 5, \"fileName\": \"a.json\"},"
                           " {\"temporaryAttachmentId\": \"t1\", \"fileName\": \"a.json\"}]}");
    char *ids[2] = {NULL, NULL};
    const char *missing = NULL;
    assert_int_equal(wf_reply_temporary_ids(r, files, 2, ids, &missing), WF_OK);
    assert_string_equal(ids[0], "t1");
    assert_string_equal(ids[1], "t2");
    free(ids[0]);
    free(ids[1]);
    cJSON_Delete(r);
    r = cJSON_Parse("{\"temporaryAttachments\": [{\"temporaryAttachmentId\": \"t2\", \"fileName\": \"a.csv\"}]}");
    ids[0] = ids[1] = NULL;
    assert_int_equal(wf_reply_temporary_ids(r, files, 2, ids, &missing), WF_ERR_JIRA_PROTOCOL);
    assert_string_equal(missing, "a.json");
    free(ids[0]);
    free(ids[1]);
    cJSON_Delete(r);
}

static void test_attachment_and_search_pages(void **state)
{
    (void)state;
    cJSON *page = cJSON_Parse("{\"isLastPage\": false, \"values\": [{\"filename\": \"a\"}, {\"size\": 1}, {\"filename\": \"b\"}]}");
    char **names = NULL;
    size_t n = 0, cap = 0;
    long count = 0;
    bool last = true;
    assert_int_equal(wf_reply_attachment_page(page, &names, &n, &cap, &count, &last), WF_OK);
    assert_int_equal(n, 2);
    assert_int_equal(count, 3);
    assert_false(last);
    assert_string_equal(names[1], "b");
    wf_jsm_free_names(names, n);
    cJSON_Delete(page);
    page = cJSON_Parse("{\"isLastPage\": true}");
    names = NULL;
    n = cap = 0;
    assert_int_equal(wf_reply_attachment_page(page, &names, &n, &cap, &count, &last), WF_ERR_JIRA_PROTOCOL);
    cJSON_Delete(page);

    cJSON *issues = cJSON_CreateArray();
    char *token = NULL;
    cJSON *reply = cJSON_Parse("{\"issues\": [{\"key\": \"WF-1\"}, {\"key\": \"WF-2\"}], \"nextPageToken\": \"p2\", \"isLast\": false}");
    assert_int_equal(wf_reply_search_page(reply, issues, &token), WF_OK);
    assert_int_equal(cJSON_GetArraySize(issues), 2);
    assert_string_equal(token, "p2");
    free(token);
    cJSON_Delete(reply);
    reply = cJSON_Parse("{\"issues\": [], \"nextPageToken\": \"p3\", \"isLast\": true}");
    assert_int_equal(wf_reply_search_page(reply, issues, &token), WF_OK);
    assert_null(token);
    cJSON_Delete(reply);
    reply = cJSON_Parse("{\"issues\": {}}");
    assert_int_equal(wf_reply_search_page(reply, issues, &token), WF_ERR_JIRA_PROTOCOL);
    cJSON_Delete(reply);
    cJSON_Delete(issues);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_bodies),
        cmocka_unit_test(test_created),
        cmocka_unit_test(test_temporary_ids),
        cmocka_unit_test(test_attachment_and_search_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
