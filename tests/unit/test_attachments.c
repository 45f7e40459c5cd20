/* test_attachments.c: the JSON and RFC 4180 CSV renderings of a submission
 * and their file names. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/attachments.h"

#define NELEM(a) (sizeof(a) / sizeof *(a))

static wf_submission make_sub(size_t n, const char *const *names, const char *const *values, const char *id)
{
    wf_submission s = {0};
    s.ncols = n;
    s.names = names;
    s.values = values;
    s.id = id;
    return s;
}

/* ---- an independent RFC 4180 reader, to read the rendering back -------- */

typedef struct {
    char *fields[16];
    size_t n;
} csv_record;

/* Reads one record at *p (advancing it past its CRLF). Returns 0, or -1 when
 * the text is not RFC 4180 (bare quote in an unquoted field, text after a
 * closing quote, a record not ended by CRLF). */
static int csv_read_record(const char **p, csv_record *rec)
{
    const char *s = *p;
    rec->n = 0;
    for (;;) {
        char *field = malloc(strlen(s) + 1);
        size_t len = 0;
        if (!field) return -1;
        if (*s == '"') {
            s++;
            for (;;) {
                if (*s == '\0') { free(field); return -1; }
                if (*s == '"') {
                    if (s[1] == '"') { field[len++] = '"'; s += 2; continue; }
                    s++;
                    break;
                }
                field[len++] = *s++;
            }
        } else {
            while (*s && *s != ',' && *s != '\r' && *s != '\n') {
                if (*s == '"') { free(field); return -1; }
                field[len++] = *s++;
            }
        }
        field[len] = '\0';
        if (rec->n == NELEM(rec->fields)) { free(field); return -1; }
        rec->fields[rec->n++] = field;
        if (*s == ',') { s++; continue; }
        if (s[0] == '\r' && s[1] == '\n') { *p = s + 2; return 0; }
        return -1;
    }
}

static void csv_record_free(csv_record *rec)
{
    for (size_t i = 0; i < rec->n; i++) free(rec->fields[i]);
    rec->n = 0;
}

/* ---- CSV ---------------------------------------------------------------- */

static void test_csv_plain_header_and_row(void **state)
{
    (void)state;
    static const char *const names[] = {"id", "name", "submitted_date"};
    static const char *const values[] = {"7", "Ann", "2026-11-22 10:00:00+00"};
    wf_submission s = make_sub(3, names, values, "7");
    wf_attachment a;
    assert_int_equal(wf_attachment_render(&s, WF_ATTACH_CSV, &a), WF_OK);
    assert_string_equal(a.data, "id,name,submitted_date\r\n7,Ann,2026-11-22 10:00:00+00\r\n");
    assert_int_equal(a.len, strlen(a.data));
    assert_string_equal(a.mime_type, "text/csv");
    assert_string_equal(a.filename, "submission-7.csv");
    wf_attachment_free(&a);
    assert_null(a.data);
}

/* Quoting per RFC 4180 section 2: a field holding a comma, a quote, CR or
 * LF is enclosed in quotes and its quotes are doubled; other fields are
 * not quoted; SQL NULL is an empty field; every record ends in CRLF. */
static void test_csv_quoting_exact(void **state)
{
    (void)state;
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g"};
    static const char *const values[] = {
        "x,y", "say \"hi\"", "line1\nline2", "cr\rhere", NULL, "", "plain text",
    };
    wf_submission s = make_sub(7, names, values, "1");
    wf_attachment a;
    assert_int_equal(wf_attachment_render(&s, WF_ATTACH_CSV, &a), WF_OK);
    assert_string_equal(a.data,
        "a,b,c,d,e,f,g\r\n"
        "\"x,y\",\"say \"\"hi\"\"\",\"line1\nline2\",\"cr\rhere\",,,plain text\r\n");
    wf_attachment_free(&a);
}

/* Whatever the values hold, reading the CSV back with an RFC 4180 reader
 * gives the column names and the values (NULL reads back as empty). */
static void test_csv_round_trip(void **state)
{
    (void)state;
    static const char *const names[] = {"id", "comma,name", "quote\"name", "notes"};
    static const char *const rows[][4] = {
        {"1", "a,b,,c", "\"\"", "multi\r\nline\r\n"},
        {"2", ",", "\"", "\n"},
        {"3", NULL, "", "trailing space "},
        {"4", "\xc3\xa9t\xc3\xa9, \xe2\x82\xac", "tab\there", "ends with quote\""},
    };
    for (size_t r = 0; r < NELEM(rows); r++) {
        wf_submission s = make_sub(4, names, rows[r], rows[r][0]);
        wf_attachment a;
        assert_int_equal(wf_attachment_render(&s, WF_ATTACH_CSV, &a), WF_OK);
        const char *p = a.data;
        csv_record head = {0}, data = {0};
        assert_int_equal(csv_read_record(&p, &head), 0);
        assert_int_equal(csv_read_record(&p, &data), 0);
        assert_string_equal(p, ""); /* exactly two records */
        assert_int_equal(head.n, 4);
        assert_int_equal(data.n, 4);
        for (size_t i = 0; i < 4; i++) {
            assert_string_equal(head.fields[i], names[i]);
            assert_string_equal(data.fields[i], rows[r][i] ? rows[r][i] : "");
        }
        csv_record_free(&head);
        csv_record_free(&data);
        wf_attachment_free(&a);
    }
}

static void test_csv_no_columns(void **state)
{
    (void)state;
    wf_submission s = make_sub(0, NULL, NULL, "9");
    wf_attachment a;
    /* Degenerate, but it must not crash or read past the arrays. */
    assert_int_equal(wf_attachment_render(&s, WF_ATTACH_CSV, &a), WF_OK);
    assert_non_null(a.data);
    assert_int_equal(a.len, strlen(a.data));
    wf_attachment_free(&a);
}

/* ---- JSON --------------------------------------------------------------- */

static void test_json_parses_back(void **state)
{
    (void)state;
    static const char *const names[] = {"id", "email", "notes", "empty", "utf8"};
    static const char *const values[] = {
        "42", NULL, "He said \"hi\"\\\n\ttab \x01 ctl", "", "\xc3\x89lodie \xe2\x82\xac",
    };
    wf_submission s = make_sub(5, names, values, "42");
    wf_attachment a;
    assert_int_equal(wf_attachment_render(&s, WF_ATTACH_JSON, &a), WF_OK);
    assert_string_equal(a.mime_type, "application/json");
    assert_string_equal(a.filename, "submission-42.json");
    assert_int_equal(a.len, strlen(a.data));

    cJSON *root = cJSON_Parse(a.data);
    assert_non_null(root);
    assert_true(cJSON_IsObject(root));
    assert_int_equal(cJSON_GetArraySize(root), 5);
    for (size_t i = 0; i < 5; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, names[i]);
        assert_non_null(v);
        if (values[i]) {
            assert_true(cJSON_IsString(v));
            assert_string_equal(v->valuestring, values[i]);
        } else {
            assert_true(cJSON_IsNull(v));
        }
    }
    /* Column order is kept. */
    const cJSON *it = root->child;
    for (size_t i = 0; i < 5; i++, it = it->next) assert_string_equal(it->string, names[i]);
    cJSON_Delete(root);
    /* null is JSON's null, not the string "null". */
    assert_non_null(strstr(a.data, "null"));
    assert_null(strstr(a.data, "\"null\""));
    wf_attachment_free(&a);
}

/* ---- file names --------------------------------------------------------- */

static int safe_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

static void test_filename_plain(void **state)
{
    (void)state;
    char buf[96];
    wf_attachment_filename("12345", WF_ATTACH_JSON, buf, sizeof buf);
    assert_string_equal(buf, "submission-12345.json");
    wf_attachment_filename("12345", WF_ATTACH_CSV, buf, sizeof buf);
    assert_string_equal(buf, "submission-12345.csv");
    wf_attachment_filename("a-b_c.D", WF_ATTACH_CSV, buf, sizeof buf);
    assert_string_equal(buf, "submission-a-b_c.D.csv");
}

static void test_filename_sanitised(void **state)
{
    (void)state;
    static const struct { const char *id, *expect; } cases[] = {
        {"../../etc/passwd", "submission-.._.._etc_passwd.json"},
        {"a b/c\\d:e", "submission-a_b_c_d_e.json"},
        {"x\ny\"z", "submission-x_y_z.json"},
        {"\xc3\xa9", "submission-__.json"},  /* each byte of a multibyte character */
        {"", "submission-.json"},
    };
    char buf[96];
    for (size_t i = 0; i < NELEM(cases); i++) {
        wf_attachment_filename(cases[i].id, WF_ATTACH_JSON, buf, sizeof buf);
        assert_string_equal(buf, cases[i].expect);
        for (const char *p = buf; *p; p++) assert_true(safe_char(*p));
    }
    wf_attachment_filename(NULL, WF_ATTACH_CSV, buf, sizeof buf);
    assert_string_equal(buf, "submission-.csv");
}

/* A long id is cut so that the name still fits the struct's buffer and
 * keeps its extension; a short buffer is never overrun (ASan watches). */
static void test_filename_long_id_and_short_buffer(void **state)
{
    (void)state;
    char id[300];
    memset(id, '7', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    wf_attachment a;
    static const char *const names[] = {"id"};
    const char *values[] = {id};
    wf_submission s = make_sub(1, names, values, id);
    assert_int_equal(wf_attachment_render(&s, WF_ATTACH_CSV, &a), WF_OK);
    size_t len = strlen(a.filename);
    assert_true(len < sizeof a.filename);
    assert_true(len > strlen("submission-.csv"));
    assert_string_equal(a.filename + len - 4, ".csv");
    assert_memory_equal(a.filename, "submission-7777", 15);
    wf_attachment_free(&a);

    char *small = malloc(10);
    assert_non_null(small);
    wf_attachment_filename("42", WF_ATTACH_JSON, small, 10);
    assert_string_equal(small, "submissio");
    free(small);
}

static void test_free_is_safe_on_zeroed_and_twice(void **state)
{
    (void)state;
    wf_attachment a;
    memset(&a, 0, sizeof a);
    wf_attachment_free(&a);
    wf_attachment_free(NULL);
    static const char *const names[] = {"id"};
    static const char *const values[] = {"1"};
    wf_submission s = make_sub(1, names, values, "1");
    assert_int_equal(wf_attachment_render(&s, WF_ATTACH_JSON, &a), WF_OK);
    wf_attachment_free(&a);
    wf_attachment_free(&a);
    assert_null(a.data);
    assert_int_equal(a.len, 0);
}


/* ---- formula-safe CSV (OWASP CSV injection) --------------------------- */

/* Every cell that a spreadsheet would run gets an apostrophe and quotes, in
 * every position of the row; the JSON keeps the exact values. */
static void test_csv_formulas_neutralised_json_verbatim(void **state)
{
    (void)state;
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
    static const char *const values[] = {
        "=HYPERLINK(\"http://evil.example\",\"click me\")", "+1-555-0100", "@SUM(1+1)", "\tx", "\r=1",
        "-2+3", "-12.5", "-7", "safe text", "=1,2"};
    wf_submission sub = make_sub(NELEM(names), names, values, "9");
    wf_attachment att;
    assert_int_equal(wf_attachment_render(&sub, WF_ATTACH_CSV, &att), WF_OK);
    const char *p = att.data;
    csv_record head, row;
    assert_int_equal(csv_read_record(&p, &head), 0);
    assert_int_equal(csv_read_record(&p, &row), 0);
    assert_int_equal(row.n, NELEM(values));
    for (size_t i = 0; i < NELEM(values); i++) {
        int formula = i < 6 || i == 9;
        if (formula) {
            assert_int_equal(row.fields[i][0], '\'');
            assert_string_equal(row.fields[i] + 1, values[i]);
        } else {
            assert_string_equal(row.fields[i], values[i]);
        }
    }
    /* In the raw text, no cell starts with a formula character. */
    assert_null(strstr(att.data, ",="));
    assert_null(strstr(att.data, ",+"));
    assert_null(strstr(att.data, ",@"));
    assert_non_null(strstr(att.data, ",-12.5,-7,"));
    csv_record_free(&head);
    csv_record_free(&row);
    wf_attachment_free(&att);

    assert_int_equal(wf_attachment_render(&sub, WF_ATTACH_JSON, &att), WF_OK);
    cJSON *obj = cJSON_Parse(att.data);
    assert_non_null(obj);
    for (size_t i = 0; i < NELEM(values); i++)
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(obj, names[i])->valuestring, values[i]);
    cJSON_Delete(obj);
    wf_attachment_free(&att);
}

/* A formula in the first column and in a column name is defused too. */
static void test_csv_formula_first_cell_and_header(void **state)
{
    (void)state;
    static const char *const names[] = {"=cmd", "b"};
    static const char *const values[] = {"=1+1", NULL};
    wf_submission sub = make_sub(2, names, values, "1");
    wf_attachment att;
    assert_int_equal(wf_attachment_render(&sub, WF_ATTACH_CSV, &att), WF_OK);
    assert_string_equal(att.data, "\"'=cmd\",b\r\n\"'=1+1\",\r\n");
    wf_attachment_free(&att);
    /* A semicolon is quoted: a spreadsheet splitting on it must not find a
     * cell that starts with a formula. */
    static const char *const v2[] = {"a;=cmd|' /C calc'!A0", "plain"};
    sub = make_sub(2, names, v2, "2");
    assert_int_equal(wf_attachment_render(&sub, WF_ATTACH_CSV, &att), WF_OK);
    assert_string_equal(att.data, "\"'=cmd\",b\r\n\"a;=cmd|' /C calc'!A0\",plain\r\n");
    wf_attachment_free(&att);
}

static void test_csv_is_formula_cases(void **state)
{
    (void)state;
    assert_true(wf_csv_is_formula("="));
    assert_true(wf_csv_is_formula("-"));
    assert_true(wf_csv_is_formula("-1-1"));
    assert_true(wf_csv_is_formula("-1."));
    assert_true(wf_csv_is_formula("-.5"));
    assert_true(wf_csv_is_formula("+5"));
    assert_false(wf_csv_is_formula("-5"));
    assert_false(wf_csv_is_formula("-0.25"));
    assert_false(wf_csv_is_formula(" =1"));
    assert_false(wf_csv_is_formula(""));
    assert_false(wf_csv_is_formula(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_plain_header_and_row),
        cmocka_unit_test(test_csv_quoting_exact),
        cmocka_unit_test(test_csv_round_trip),
        cmocka_unit_test(test_csv_no_columns),
        cmocka_unit_test(test_json_parses_back),
        cmocka_unit_test(test_filename_plain),
        cmocka_unit_test(test_filename_sanitised),
        cmocka_unit_test(test_filename_long_id_and_short_buffer),
        cmocka_unit_test(test_free_is_safe_on_zeroed_and_twice),
        cmocka_unit_test(test_csv_formulas_neutralised_json_verbatim),
        cmocka_unit_test(test_csv_formula_first_cell_and_header),
        cmocka_unit_test(test_csv_is_formula_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
