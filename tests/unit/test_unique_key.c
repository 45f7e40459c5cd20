/* test_unique_key.c: the canonical key encoding and its SHA-256. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/unique_key.h"

#define NELEM(a) (sizeof(a) / sizeof *(a))

static wf_submission make_sub(size_t n, const char *const *names, const char *const *values)
{
    wf_submission s = {0};
    s.ncols = n;
    s.names = names;
    s.values = values;
    return s;
}

/* Encoding of sub over columns, asserting success. */
static void encode(const wf_submission *sub, const char *const *cols, size_t ncols,
                   unsigned char **out, size_t *outlen)
{
    char err[256] = "";
    assert_int_equal(wf_key_encode(sub, cols, ncols, out, outlen, err, sizeof err), WF_OK);
    assert_non_null(*out);
}

static int same_bytes(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static void key_of(const wf_submission *sub, const char *const *cols, size_t ncols, char hex[65])
{
    char err[256] = "";
    assert_int_equal(wf_key_compute(sub, cols, ncols, hex, err, sizeof err), WF_OK);
}

/* ("a|b","c") and ("a","b|c"), and the same with commas: a separator-joined
 * encoding would give both pairs the same bytes. */
static void test_separator_in_values_does_not_collide(void **state)
{
    (void)state;
    static const char *const names[] = {"x", "y"};
    static const char *const cols[] = {"x", "y"};
    static const char *const pairs[][2][2] = {
        {{"a|b", "c"}, {"a", "b|c"}},
        {{"a,b", "c"}, {"a", "b,c"}},
        {{"a,b|c", ""}, {"a", "b|c"}},
        {{"", "a"}, {"a", ""}},
    };
    for (size_t i = 0; i < NELEM(pairs); i++) {
        wf_submission s1 = make_sub(2, names, pairs[i][0]);
        wf_submission s2 = make_sub(2, names, pairs[i][1]);
        unsigned char *e1, *e2;
        size_t l1, l2;
        encode(&s1, cols, 2, &e1, &l1);
        encode(&s2, cols, 2, &e2, &l2);
        assert_false(same_bytes(e1, l1, e2, l2));
        free(e1);
        free(e2);
        char h1[65], h2[65];
        key_of(&s1, cols, 2, h1);
        key_of(&s2, cols, 2, h2);
        assert_string_not_equal(h1, h2);
    }
}

/* Every pair of distinct two-column rows over a hostile alphabet (the
 * separators a naive scheme would use, and pieces of this encoding's own
 * syntax) must encode differently. */
static void test_encoding_is_injective_over_hostile_values(void **state)
{
    (void)state;
    static const char *const alphabet[] = {
        NULL, "", "a", "|", ",", "a|", "|a", "a,b", "N;", "V0:", "V1:a", "C1:y", "1:", "\n", "\\", "\"", "=",
    };
    enum { A = NELEM(alphabet), ROWS = A * A };
    static const char *const names[] = {"x", "y"};
    static const char *const cols[] = {"x", "y"};
    static const char *values[ROWS][2];
    unsigned char *enc[ROWS];
    size_t len[ROWS];
    for (size_t i = 0; i < A; i++) {
        for (size_t j = 0; j < A; j++) {
            values[i * A + j][0] = alphabet[i];
            values[i * A + j][1] = alphabet[j];
            wf_submission s = make_sub(2, names, values[i * A + j]);
            encode(&s, cols, 2, &enc[i * A + j], &len[i * A + j]);
        }
    }
    for (size_t r = 0; r < ROWS; r++)
        for (size_t q = r + 1; q < ROWS; q++)
            if (same_bytes(enc[r], len[r], enc[q], len[q]))
                fail_msg("rows %zu and %zu share an encoding", r, q);
    for (size_t r = 0; r < ROWS; r++) free(enc[r]);
}

static void test_null_differs_from_empty(void **state)
{
    (void)state;
    static const char *const names[] = {"id", "email"};
    static const char *const cols[] = {"id", "email"};
    static const char *const v_null[] = {"1", NULL};
    static const char *const v_empty[] = {"1", ""};
    wf_submission s1 = make_sub(2, names, v_null), s2 = make_sub(2, names, v_empty);
    unsigned char *e1, *e2;
    size_t l1, l2;
    encode(&s1, cols, 2, &e1, &l1);
    encode(&s2, cols, 2, &e2, &l2);
    assert_false(same_bytes(e1, l1, e2, l2));
    free(e1);
    free(e2);
    char h1[65], h2[65];
    key_of(&s1, cols, 2, h1);
    key_of(&s2, cols, 2, h2);
    assert_string_not_equal(h1, h2);
}

static void test_column_order_matters(void **state)
{
    (void)state;
    static const char *const names[] = {"a", "b"};
    static const char *const values[] = {"1", "2"};
    static const char *const ab[] = {"a", "b"};
    static const char *const ba[] = {"b", "a"};
    wf_submission s = make_sub(2, names, values);
    char h1[65], h2[65];
    key_of(&s, ab, 2, h1);
    key_of(&s, ba, 2, h2);
    assert_string_not_equal(h1, h2);
}

/* Same values under different column names give different keys: renaming
 * the key columns is a different identity, and ("ab","c") cannot pass for
 * ("a","bc") at the name level either. */
static void test_column_names_are_part_of_the_key(void **state)
{
    (void)state;
    static const char *const values[] = {"1", "2"};
    static const char *const n1[] = {"id", "date"};
    static const char *const n2[] = {"ref", "date"};
    wf_submission s1 = make_sub(2, n1, values), s2 = make_sub(2, n2, values);
    char h1[65], h2[65];
    key_of(&s1, n1, 2, h1);
    key_of(&s2, n2, 2, h2);
    assert_string_not_equal(h1, h2);

    static const char *const n3[] = {"ab", "c"};
    static const char *const n4[] = {"a", "bc"};
    static const char *const same[] = {"v", "v"};
    wf_submission s3 = make_sub(2, n3, same), s4 = make_sub(2, n4, same);
    key_of(&s3, n3, 2, h1);
    key_of(&s4, n4, 2, h2);
    assert_string_not_equal(h1, h2);
}

/* Columns outside the key do not change it; a key column does. */
static void test_only_key_columns_count(void **state)
{
    (void)state;
    static const char *const names[] = {"id", "submitted_date", "comment"};
    static const char *const v1[] = {"42", "2026-11-22 10:00:00+00", "first"};
    static const char *const v2[] = {"42", "2026-11-22 10:00:00+00", "edited later"};
    static const char *const v3[] = {"43", "2026-11-22 10:00:00+00", "first"};
    static const char *const cols[] = {"id", "submitted_date"};
    wf_submission s1 = make_sub(3, names, v1), s2 = make_sub(3, names, v2), s3 = make_sub(3, names, v3);
    char h1[65], h2[65], h3[65];
    key_of(&s1, cols, 2, h1);
    key_of(&s2, cols, 2, h2);
    key_of(&s3, cols, 2, h3);
    assert_string_equal(h1, h2);
    assert_string_not_equal(h1, h3);
}

static void test_missing_key_column_is_config_error(void **state)
{
    (void)state;
    static const char *const names[] = {"id", "idx"};
    static const char *const values[] = {"1", "2"};
    static const char *const cols[] = {"id", "created_at"};
    wf_submission s = make_sub(2, names, values);
    char err[256] = "";
    unsigned char *out = (unsigned char *)"untouched";
    size_t outlen = 12345;
    assert_int_equal(wf_key_encode(&s, cols, 2, &out, &outlen, err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "'created_at'"));
    assert_non_null(strstr(err, "WEBFORM_KEY_COLUMNS"));

    char hex[65];
    err[0] = '\0';
    assert_int_equal(wf_key_compute(&s, cols, 2, hex, err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "'created_at'"));

    /* A prefix of a real column name is not that column. */
    static const char *const prefix[] = {"i"};
    err[0] = '\0';
    assert_int_equal(wf_key_compute(&s, prefix, 1, hex, err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "'i'"));
}

static void test_key_is_64_lowercase_hex(void **state)
{
    (void)state;
    static const char *const names[] = {"id", "name"};
    static const char *const values[] = {"7", "\xc3\x89lodie \"Zo\xc3\xa9\" O'Brien"};
    wf_submission s = make_sub(2, names, values);
    char hex[65];
    memset(hex, 'X', sizeof hex);
    key_of(&s, names, 2, hex);
    assert_int_equal(strlen(hex), WF_KEY_HEX_LEN);
    for (size_t i = 0; i < WF_KEY_HEX_LEN; i++)
        assert_true(isdigit((unsigned char)hex[i]) || (hex[i] >= 'a' && hex[i] <= 'f'));
    char again[65];
    key_of(&s, names, 2, again);
    assert_string_equal(hex, again);
}

/* Known answers. The encoding is pinned on purpose: every tracker row and
 * every Jira label carries keys computed this way, so a change to it would
 * make the job re-create tickets for old submissions. The expected hashes
 * were computed once, independently of this code, with coreutils:
 *   printf 'C2:idV2:42C14:submitted_dateV22:2026-11-22 10:00:00+00' | sha256sum
 *   printf 'C2:idV2:42C5:emailN;' | sha256sum */
static void test_known_answer(void **state)
{
    (void)state;
    static const char *const names[] = {"id", "submitted_date", "email"};
    static const char *const values[] = {"42", "2026-11-22 10:00:00+00", NULL};
    static const char *const cols[] = {"id", "submitted_date"};
    static const char *const cols_null[] = {"id", "email"};
    wf_submission s = make_sub(3, names, values);

    static const char expect_enc[] = "C2:idV2:42C14:submitted_dateV22:2026-11-22 10:00:00+00";
    unsigned char *enc;
    size_t len;
    encode(&s, cols, 2, &enc, &len);
    assert_int_equal(len, sizeof expect_enc - 1);
    assert_memory_equal(enc, expect_enc, len);
    free(enc);

    char hex[65];
    key_of(&s, cols, 2, hex);
    assert_string_equal(hex, "95222df4db093cd2efb1a1e1e38d1addcb7786e47705f30dd4ebec1bd1eca551");
    key_of(&s, cols_null, 2, hex);
    assert_string_equal(hex, "ce8217e97e77c4c163cbbfa0dac7393fce50d9d96cc12b12312b26f7c94846d7");
}

/* FIPS 180-2's "abc" example and the empty input (also checked with
 * `printf abc | sha256sum` and `printf '' | sha256sum`). */
static void test_sha256_hex_known_answers(void **state)
{
    (void)state;
    char hex[65];
    assert_int_equal(wf_sha256_hex("abc", 3, hex), WF_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(wf_sha256_hex("", 0, hex), WF_OK);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* Binary data with an embedded NUL: the length, not strlen, counts. */
    char h2[65];
    assert_int_equal(wf_sha256_hex("abc\0def", 7, h2), WF_OK);
    assert_string_not_equal(h2, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* wf_key_compute is the SHA-256 of wf_key_encode's bytes. */
static void test_compute_hashes_the_encoding(void **state)
{
    (void)state;
    static const char *const names[] = {"a", "b", "c"};
    static const char *const values[] = {"x", NULL, "with\nnewline"};
    wf_submission s = make_sub(3, names, values);
    unsigned char *enc;
    size_t len;
    encode(&s, names, 3, &enc, &len);
    char direct[65], via[65];
    assert_int_equal(wf_sha256_hex(enc, len, direct), WF_OK);
    free(enc);
    key_of(&s, names, 3, via);
    assert_string_equal(direct, via);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separator_in_values_does_not_collide),
        cmocka_unit_test(test_encoding_is_injective_over_hostile_values),
        cmocka_unit_test(test_null_differs_from_empty),
        cmocka_unit_test(test_column_order_matters),
        cmocka_unit_test(test_column_names_are_part_of_the_key),
        cmocka_unit_test(test_only_key_columns_count),
        cmocka_unit_test(test_missing_key_column_is_config_error),
        cmocka_unit_test(test_key_is_64_lowercase_hex),
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_sha256_hex_known_answers),
        cmocka_unit_test(test_compute_hashes_the_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
