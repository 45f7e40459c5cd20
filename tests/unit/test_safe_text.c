/* test_safe_text.c: untrusted text escaped for terminals and log lines. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "../../modules/safe_text.h"

static void assert_safe(const char *in, unsigned flags, const char *want)
{
    char out[256];
    size_t n = wf_safe_text(in, out, sizeof out, flags);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    assert_int_equal(wf_safe_text_needed(in, flags), strcmp(in ? in : "-", want) != 0);
}

static void test_controls_are_escaped(void **state)
{
    (void)state;
    assert_safe("\x1b[31mred\x1b[0m", 0, "\\x1B[31mred\\x1B[0m");
    assert_safe("a\nb\rc\td", 0, "a\\nb\\rc\\td");
    assert_safe("\x01\x07\x7f", 0, "\\x01\\x07\\x7F");
    /* C1 CSI (U+009B), bidi override, line separator */
    assert_safe("\xc2\x9b" "2J \xe2\x80\xae" "evil \xe2\x80\xa8", 0, "\\u{009B}2J \\u{202E}evil \\u{2028}");
    /* bytes that are not UTF-8: lone continuation, overlong, surrogate, truncated */
    assert_safe("\x80 \xc0\xaf \xed\xa0\x80 \xe2\x82", 0, "\\x80 \\xC0\\xAF \\xED\\xA0\\x80 \\xE2\\x82");
}

static void test_printable_text_is_kept(void **state)
{
    (void)state;
    assert_safe("plain ASCII, quotes \" and \\", 0, "plain ASCII, quotes \" and \\");
    assert_safe("\xf0\x9f\x98\x80 \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xc3\xa9",
                0, "\xf0\x9f\x98\x80 \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xc3\xa9");
    assert_safe("", 0, "");
    assert_safe(NULL, 0, "-");
    assert_safe("say \"hi\" \\", WF_SAFE_QUOTES, "say \\\"hi\\\" \\\\");
}

/* A short buffer cuts at a whole escape or character, always terminated. */
static void test_short_buffers(void **state)
{
    (void)state;
    char out[8];
    memset(out, 'x', sizeof out);
    assert_int_equal(wf_safe_text("ab\x1b" "cd", out, 6, 0), 2);   /* "\x1B" needs 4 */
    assert_string_equal(out, "ab");
    assert_int_equal(wf_safe_text("\xf0\x9f\x98\x80", out, 4, 0), 0);  /* the emoji needs 4 + NUL */
    assert_string_equal(out, "");
    assert_int_equal(wf_safe_text("abc", out, 1, 0), 0);
    assert_string_equal(out, "");
    assert_int_equal(wf_safe_text("abc", out, 0, 0), 0);
    char buf[16];
    assert_string_equal(wf_safe("x\ny", buf, sizeof buf), "x\\ny");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_controls_are_escaped),
        cmocka_unit_test(test_printable_text_is_kept),
        cmocka_unit_test(test_short_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
