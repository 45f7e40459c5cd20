/* test_curl_loader.c: the program is not linked with libcurl; its curl_*
 * calls reach the real library through modules/curl_loader.c. These tests
 * call through the forwarders with each kind of argument (long, pointer,
 * curl_off_t, function pointer, a getinfo destination) and check that the
 * library did what was asked, so a forwarder that dropped or garbled an
 * argument fails here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <string.h>

#include "../../modules/curl_loader.h"

static void test_loads_and_escapes(void **state)
{
    (void)state;
    assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    assert_null(wf_curl_load_error());
    char *s = curl_easy_escape(NULL, "a b&c", 0);
    assert_non_null(s);
    assert_string_equal(s, "a%20b%26c");
    curl_free(s);
    struct curl_slist *list = curl_slist_append(NULL, "Accept: application/json");
    assert_non_null(list);
    assert_string_equal(list->data, "Accept: application/json");
    curl_slist_free_all(list);
    assert_true(curl_getdate("Sun, 06 Nov 1994 08:49:37 GMT", NULL) == 784111777);
    assert_string_equal(curl_easy_strerror(CURLE_OK), "No error");
    curl_global_cleanup();
}

static size_t sink(char *data, size_t size, size_t n, void *userp)
{
    (void)data;
    (void)userp;
    return size * n;
}

static void test_setopt_forwards_each_argument_type(void **state)
{
    (void)state;
    assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    /* long, string, curl_off_t and a function pointer */
    assert_int_equal(curl_easy_setopt(c, CURLOPT_TIMEOUT, 7L), CURLE_OK);
    assert_int_equal(curl_easy_setopt(c, CURLOPT_URL, "http://127.0.0.1:1/x"), CURLE_OK);
    assert_int_equal(curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)12345), CURLE_OK);
    assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink), CURLE_OK);
    /* A value out of range is refused: the long arrived as itself. */
    assert_int_equal(curl_easy_setopt(c, CURLOPT_HTTP_VERSION, 9999L), CURLE_UNSUPPORTED_PROTOCOL);
    char *url = NULL;
    assert_int_equal(curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &url), CURLE_OK);
    assert_string_equal(url, "http://127.0.0.1:1/x");
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *part = curl_mime_addpart(mime);
    assert_int_equal(curl_mime_name(part, "file"), CURLE_OK);
    assert_int_equal(curl_mime_filename(part, "a.json"), CURLE_OK);
    assert_int_equal(curl_mime_type(part, "application/json"), CURLE_OK);
    assert_int_equal(curl_mime_data(part, "{}", 2), CURLE_OK);
    curl_mime_free(mime);
    CURLM *m = curl_multi_init();
    assert_non_null(m);
    assert_int_equal(curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 3L), CURLM_OK);
    assert_int_equal(curl_multi_add_handle(m, c), CURLM_OK);
    int running = -1;
    assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
    assert_int_equal(curl_multi_remove_handle(m, c), CURLM_OK);
    int left = 0;
    assert_null(curl_multi_info_read(m, &left));
    assert_int_equal(curl_multi_cleanup(m), CURLM_OK);
    curl_easy_reset(c);
    curl_easy_cleanup(c);
    curl_global_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_and_escapes),
        cmocka_unit_test(test_setopt_forwards_each_argument_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
