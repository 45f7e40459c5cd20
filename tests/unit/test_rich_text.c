/* test_rich_text.c: literal ADF documents: text reads back exactly, nothing
 * in the text becomes a node, the character count and the cut work on
 * characters, not bytes. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../modules/rich_text.h"

static cJSON *doc_of(const char *text)
{
    cJSON *doc = wf_adf_doc();
    assert_non_null(doc);
    assert_int_equal(wf_adf_add_text(doc, text), 0);
    return doc;
}

static char *compact(const cJSON *v)
{
    char *s = cJSON_PrintUnformatted(v);
    assert_non_null(s);
    return s;
}

/* Wiki markup and every other kind of markup stays a text node, one
 * paragraph per line, empty lines as empty paragraphs. */
static void test_markup_is_one_text_node_per_line(void **state)
{
    (void)state;
    cJSON *doc = doc_of("[~accountid:5b10] !http://e/p.png!\n\n{noformat}*b*");
    char *json = compact(doc);
    assert_string_equal(json,
        "{\"type\":\"doc\",\"version\":1,\"content\":["
        "{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"[~accountid:5b10] !http://e/p.png!\"}]},"
        "{\"type\":\"paragraph\",\"content\":[]},"
        "{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"{noformat}*b*\"}]}]}");
    free(json);
    cJSON_Delete(doc);
}

/* The plain text is the input, byte for byte: CRs, blank lines, controls,
 * emoji, right-to-left text. */
static void test_plain_text_reads_back_exactly(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "one", "a\r\nb\r\n\r\nc", "\n\nlead and trail\n\n", "\x1b[31m\t\x01",
        "\xf0\x9f\x98\x80 \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xe2\x80\xae"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        cJSON *doc = doc_of(texts[i]);
        char *plain = wf_adf_plain(doc);
        assert_string_equal(plain, texts[i]);
        free(plain);
        cJSON_Delete(doc);
    }
}

static void test_rule_blocks_marks_and_breaks(void **state)
{
    (void)state;
    cJSON *doc = wf_adf_doc();
    cJSON *h = wf_adf_add_block(doc, "heading", 9);
    assert_int_equal(wf_adf_add_inline(h, "Ti", 2, WF_MARK_STRONG), 0);
    assert_int_equal(wf_adf_add_inline(h, "tle", 3, WF_MARK_STRONG), 0);   /* merged */
    assert_int_equal(wf_adf_add_inline(h, "", 0, 0), 0);                   /* nothing */
    assert_int_equal(wf_adf_add_break(h), 0);
    assert_int_equal(wf_adf_add_inline(h, "x", 1, WF_MARK_EM), 0);
    assert_int_equal(wf_adf_add_rule(doc), 0);
    char *json = compact(doc);
    assert_string_equal(json,
        "{\"type\":\"doc\",\"version\":1,\"content\":["
        "{\"type\":\"heading\",\"attrs\":{\"level\":6},\"content\":["
        "{\"type\":\"text\",\"text\":\"Title\",\"marks\":[{\"type\":\"strong\"}]},{\"type\":\"hardBreak\"},"
        "{\"type\":\"text\",\"text\":\"x\",\"marks\":[{\"type\":\"em\"}]}]},{\"type\":\"rule\"}]}");
    free(json);
    char *plain = wf_adf_plain(doc);
    assert_string_equal(plain, "Title\nx\n----");
    assert_int_equal(wf_adf_chars(doc), strlen(plain));
    free(plain);
    cJSON_Delete(doc);
}

/* Cutting counts characters (multibyte kept whole), line breaks and rules,
 * and drops everything after the cut. */
static void test_truncate_on_character_boundaries(void **state)
{
    (void)state;
    const char *text = "ab\xc3\xa9\xf0\x9f\x98\x80\ncd";  /* a b é 😀 \n c d = 7 chars */
    for (size_t max = 0; max <= 8; max++) {
        cJSON *doc = doc_of(text);
        assert_int_equal(wf_adf_chars(doc), 7);
        bool cut = wf_adf_truncate(doc, max);
        assert_int_equal(cut, max < 7);
        char *plain = wf_adf_plain(doc);
        size_t chars = wf_utf8_chars(plain);
        assert_true(chars <= max);
        /* what is kept is a prefix of the text, whole characters only */
        assert_memory_equal(plain, text, strlen(plain));
        if (max >= 1 && max != 5) assert_int_equal(chars, max < 7 ? max : 7);
        free(plain);
        cJSON_Delete(doc);
    }
    cJSON *doc = wf_adf_doc();
    wf_adf_add_rule(doc);
    wf_adf_add_text(doc, "x");
    assert_true(wf_adf_truncate(doc, 3));    /* the rule does not fit whole: gone */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "content")), 0);
    cJSON_Delete(doc);
}

static void test_trim_end_and_is_doc(void **state)
{
    (void)state;
    cJSON *doc = doc_of("text\n\n");
    cJSON *last = wf_adf_add_block(doc, "paragraph", 0);
    wf_adf_add_break(last);
    wf_adf_trim_end(doc);
    char *plain = wf_adf_plain(doc);
    assert_string_equal(plain, "text");
    free(plain);
    assert_true(wf_adf_is_doc(doc));
    cJSON *s = cJSON_CreateString("doc");
    assert_false(wf_adf_is_doc(s));
    assert_null(wf_adf_plain(s));
    cJSON_Delete(s);
    cJSON_Delete(doc);
    assert_int_equal(wf_utf8_chars("\xc3\xa9\xf0\x9f\x98\x80x"), 3);
    assert_int_equal(wf_utf8_prefix("\xc3\xa9\xf0\x9f\x98\x80x", 1), 2);
    assert_int_equal(wf_utf8_prefix("ab", 5), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markup_is_one_text_node_per_line),
        cmocka_unit_test(test_plain_text_reads_back_exactly),
        cmocka_unit_test(test_rule_blocks_marks_and_breaks),
        cmocka_unit_test(test_truncate_on_character_boundaries),
        cmocka_unit_test(test_trim_end_and_is_doc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
