/* test_html_text.c: an HTML column rendered through libxml2: structure
 * kept as literal text, active content dropped, links show their URL. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../modules/html_text.h"
#include "../../modules/rich_text.h"

/* The plain text of the rendering of html (caller frees). */
static char *plain_of(const char *html)
{
    cJSON *doc = wf_adf_doc();
    assert_non_null(doc);
    assert_int_equal(wf_html_to_adf(html, doc), 0);
    char *plain = wf_adf_plain(doc);
    assert_non_null(plain);
    cJSON_Delete(doc);
    return plain;
}

static void assert_renders(const char *html, const char *want)
{
    char *got = plain_of(html);
    if (strcmp(got, want) != 0) fail_msg("HTML %s\nrendered: \"%s\"\nexpected: \"%s\"", html, got, want);
    free(got);
}

static void test_paragraphs_breaks_headings_entities(void **state)
{
    (void)state;
    assert_renders("<p>Hello   <b>world</b>\n &amp; you</p><p>two<br>lines</p>", "Hello world & you\ntwo\nlines");
    assert_renders("<h1>Title</h1>text &lt;b&gt; &#x1F600; &eacute;", "Title\ntext <b> \xf0\x9f\x98\x80 \xc3\xa9");
    assert_renders("plain text, no tags", "plain text, no tags");
    assert_renders("", "");
    assert_renders("<p></p><div>  </div>", "");
    assert_renders("<pre>  a\n    b</pre>", "  a\n    b");
    assert_renders("a<hr>b", "a\n----\nb");
}

static void test_active_content_is_dropped(void **state)
{
    (void)state;
    assert_renders("<p>ok</p><script>alert(1)</script><style>p{}</style><!-- secret -->"
                   "<img src=x onerror=alert(1)><iframe src=http://e></iframe><object data=x>obj</object>"
                   "<form><input value=typed><select><option>opt</option></select><textarea>ta</textarea>"
                   "<button>btn</button></form><svg><text>svg</text></svg><template>tpl</template>"
                   "<noscript>ns</noscript>end",
                   "ok\nend");
    assert_renders("<head><title>t</title><meta charset=utf-8></head><body>b</body>", "b");
}

static void test_links_show_their_target(void **state)
{
    (void)state;
    assert_renders("<a href=\"http://evil.example/reset\">reset your password</a>",
                   "reset your password (http://evil.example/reset)");
    assert_renders("<a href=\"https://example.org/\">https://example.org/</a>", "https://example.org/");
    assert_renders("<a href=\" javascript:alert(1) \">click</a>", "click (javascript:alert(1))");
    assert_renders("<a name=top>anchor</a>", "anchor");
}

static void test_lists_and_tables(void **state)
{
    (void)state;
    assert_renders("<ul><li>one</li><li>two<ol><li>a</li><li>b</li></ol></li></ul>",
                   "\xe2\x80\xa2 one\n\xe2\x80\xa2 two\n  1. a\n  2. b");
    assert_renders("<table><tr><th>k</th><th>v</th></tr><tr><td>x</td><td> y </td></tr></table>", "k | v\nx | y");
}

/* Bold and italic become marks; nothing else does, and the text of every
 * node is literal. */
static void test_marks_and_node_types(void **state)
{
    (void)state;
    cJSON *doc = wf_adf_doc();
    assert_int_equal(wf_html_to_adf("<p>a <strong>b <em>c</em></strong> <u>d</u> <a href=x>e</a></p>", doc), 0);
    char *json = cJSON_PrintUnformatted(doc);
    assert_string_equal(json,
        "{\"type\":\"doc\",\"version\":1,\"content\":[{\"type\":\"paragraph\",\"content\":["
        "{\"type\":\"text\",\"text\":\"a \"},"
        "{\"type\":\"text\",\"text\":\"b \",\"marks\":[{\"type\":\"strong\"}]},"
        "{\"type\":\"text\",\"text\":\"c\",\"marks\":[{\"type\":\"strong\"},{\"type\":\"em\"}]},"
        "{\"type\":\"text\",\"text\":\" d e (x)\"}]}]}");
    free(json);
    cJSON_Delete(doc);
}

/* A paragraph of many words is one text node with every word in it. (The
 * walker buffers a run of text before it reaches the document: appending
 * word by word to a growing node was quadratic, 2 s for 100,000 words;
 * time is measured outside the tests, see the report of issue 9.) */
static void test_words_make_one_text_node(void **state)
{
    (void)state;
    size_t n = 20000;
    char *html = malloc(n * 3 + 16);
    assert_non_null(html);
    char *p = html;
    memcpy(p, "<p>", 3);
    p += 3;
    for (size_t i = 0; i < n; i++) { memcpy(p, "ab ", 3); p += 3; }
    strcpy(p, "</p>");
    cJSON *doc = wf_adf_doc();
    assert_int_equal(wf_html_to_adf(html, doc), 0);
    const cJSON *para = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "content"), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(para, "content")), 1);
    assert_int_equal(wf_adf_chars(doc), n * 3 - 1);
    cJSON_Delete(doc);
    free(html);
}

/* Broken markup and bytes that are not UTF-8 are recovered, not refused. */
static void test_broken_markup(void **state)
{
    (void)state;
    assert_renders("<p>unclosed <b>bold<p>next", "unclosed bold\nnext");
    char *got = plain_of("<<<>>> </p></div>");   /* libxml2's recovery decides what text this is */
    assert_null(strchr(got, '\n'));
    free(got);
    got = plain_of("caf\xe9 <b>\xff</b>");
    assert_non_null(got);
    free(got);
    /* deep nesting does not exhaust the stack */
    size_t n = 5000;
    char *deep = malloc(n * 5 + 16);
    assert_non_null(deep);
    char *p = deep;
    for (size_t i = 0; i < n; i++) { memcpy(p, "<div>", 5); p += 5; }
    strcpy(p, "deep");
    /* Deeper than libxml2 reads: refused, so that the caller shows the
     * value as typed rather than lose "deep". */
    cJSON *doc = wf_adf_doc();
    assert_int_equal(wf_html_to_adf(deep, doc), -1);
    cJSON_Delete(doc);
    /* Deep, but within what libxml2 reads: deeper than the walker goes,
     * the text still shows. */
    strcpy(deep + 240 * 5, "deep");
    got = plain_of(deep);
    assert_non_null(strstr(got, "deep"));
    free(got);
    free(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paragraphs_breaks_headings_entities),
        cmocka_unit_test(test_active_content_is_dropped),
        cmocka_unit_test(test_links_show_their_target),
        cmocka_unit_test(test_lists_and_tables),
        cmocka_unit_test(test_marks_and_node_types),
        cmocka_unit_test(test_words_make_one_text_node),
        cmocka_unit_test(test_broken_markup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
