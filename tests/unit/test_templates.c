/* test_templates.c: {column} templates (syntax, columns, rendering) and the
 * mapping file's "templates" and "fallbacks" as the mapper applies them. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/jira_fields.h"
#include "../../modules/rich_text.h"
#include "../../modules/templates.h"
#include "unit_helpers.h"

static const char *const names[] = {"id", "full_name", "email", "message", "category"};

static wf_submission make_sub(const char **values)
{
    wf_submission sub = {0};
    sub.ncols = 5;
    sub.names = names;
    sub.values = values;
    sub.id = values[0];
    return sub;
}

static void expect_render(const char *tmpl, const char **values, const char *want)
{
    wf_submission sub = make_sub(values);
    char *got = wf_template_render(tmpl, &sub);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_render_columns_braces_and_null(void **state)
{
    (void)state;
    const char *v[] = {"7", "Ann Smith", "ann@example.com", "Line 1\nLine 2", NULL};
    expect_render("From {full_name} <{email}>:\n{message}", v, "From Ann Smith <ann@example.com>:\nLine 1\nLine 2");
    expect_render("{{literal}} and }}{{", v, "{literal} and }{");
    expect_render("{{{id}}}", v, "{7}");
    expect_render("[{category}]", v, "[]");          /* SQL NULL renders empty */
    expect_render("no columns", v, "no columns");
    expect_render("", v, "");
    expect_render("{id}{id}", v, "77");
}

static void test_values_are_never_expanded(void **state)
{
    (void)state;
    /* Submitted text that looks like a template stays literal: one pass only. */
    const char *v[] = {"1", "{email}", "x@example.com", "{{id}} {message}", "}"};
    expect_render("{full_name}|{message}|{category}", v, "{email}|{{id}} {message}|}");
}

static void expect_syntax_error(const char *tmpl, const char *words)
{
    char err[256] = "";
    assert_int_equal(wf_template_check(tmpl, err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, words));
    const char *v[] = {"1", NULL, NULL, NULL, NULL};
    wf_submission sub = make_sub(v);
    assert_null(wf_template_render(tmpl, &sub));
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_syntax_error("Hello {name", "not closed");
    expect_syntax_error("Hello }", "closes nothing");
    expect_syntax_error("{}", "names no column");
    expect_syntax_error("{a{b}", "not closed");
    char err[64];
    assert_int_equal(wf_template_check("{{ ok }} {id}", err, sizeof err), WF_OK);
}

static void test_unknown_column_is_named(void **state)
{
    (void)state;
    char bad[64] = "";
    assert_int_equal(wf_template_check_columns("{id} {email}", names, 5, bad, sizeof bad), WF_OK);
    assert_int_equal(wf_template_check_columns("{id} {{x}} {fullname}", names, 5, bad, sizeof bad), WF_ERR_CONFIG);
    assert_string_equal(bad, "fullname");
}

/* ---- templates and fallbacks in the mapper ------------------------------- */

static const char fields_body[] =
    "{\"requestTypeFields\": ["
    " {\"fieldId\": \"summary\", \"name\": \"Summary\", \"required\": true,"
    "  \"jiraSchema\": {\"type\": \"string\", \"system\": \"summary\"}},"
    " {\"fieldId\": \"description\", \"name\": \"Description\", \"required\": false,"
    "  \"jiraSchema\": {\"type\": \"string\", \"system\": \"description\"}},"
    " {\"fieldId\": \"labels\", \"name\": \"Labels\", \"jiraSchema\": {\"type\": \"array\", \"items\": \"string\"}},"
    " {\"fieldId\": \"customfield_1\", \"name\": \"Category\", \"required\": false,"
    "  \"validValues\": [{\"value\": \"100\", \"label\": \"Hardware\"}, {\"value\": \"101\", \"label\": \"Other\"}],"
    "  \"jiraSchema\": {\"type\": \"option\"}}"
    "]}";

static const char key[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

typedef struct {
    char *dir;
    wf_field_list fields;
    wf_mapping mapping;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char err[256];
    if (!fx || !(fx->dir = unit_mkdtemp()) || wf_fields_parse(fields_body, &fx->fields, err, sizeof err) != WF_OK)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    wf_mapping_free(&fx->mapping);
    wf_fields_free(&fx->fields);
    unit_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* Writes text as the mapping file and loads it; returns load's result. */
static wf_err load(fixture *fx, const char *text, char *err, size_t errlen)
{
    char *path = unit_path(fx->dir, "mapping.json");
    assert_int_equal(unit_write_file(path, text), 0);
    wf_mapping_free(&fx->mapping);
    wf_err rc = wf_mapping_load(path, &fx->fields, &fx->mapping, err, errlen);
    free(path);
    return rc;
}

static const char *string_of(const wf_mapped *m, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m->values, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_fallback_rescues_empty_summary_and_unknown_option(void **state)
{
    fixture *fx = *state;
    char err[512];
    assert_int_equal(load(fx, "{\"fields\": {\"summary\": \"message\", \"customfield_1\": \"category\"},"
                              " \"fallbacks\": {\"summary\": \"Web form submission {id}\", \"customfield_1\": \"Other\"}}",
                          err, sizeof err), WF_OK);
    const char *v[] = {"42", NULL, NULL, "   ", "Furniture"};
    wf_submission sub = make_sub(v);
    wf_mapped out;
    assert_int_equal(wf_map_submission(&fx->mapping, &fx->fields, &sub, key, NULL, &out), WF_OK);
    assert_int_equal(out.nproblems, 0);
    assert_string_equal(string_of(&out, "summary"), "Web form submission 42");
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(out.values, "customfield_1");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(opt, "id")->valuestring, "101");
    wf_mapped_free(&out);
    /* a value that fits keeps it */
    const char *w[] = {"43", NULL, NULL, "Printer", "hardware"};
    sub = make_sub(w);
    assert_int_equal(wf_map_submission(&fx->mapping, &fx->fields, &sub, key, NULL, &out), WF_OK);
    assert_string_equal(string_of(&out, "summary"), "Printer");
    opt = cJSON_GetObjectItemCaseSensitive(out.values, "customfield_1");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(opt, "id")->valuestring, "100");
    wf_mapped_free(&out);
}

static void test_fallback_that_does_not_fit_keeps_the_problem(void **state)
{
    fixture *fx = *state;
    char err[512];
    assert_int_equal(load(fx, "{\"fields\": {\"summary\": \"message\", \"customfield_1\": \"category\"},"
                              " \"fallbacks\": {\"summary\": \"{full_name}\", \"customfield_1\": \"Nope\"}}",
                          err, sizeof err), WF_OK);
    const char *v[] = {"1", NULL, NULL, NULL, "Furniture"};
    wf_submission sub = make_sub(v);
    wf_mapped out;
    assert_int_equal(wf_map_submission(&fx->mapping, &fx->fields, &sub, key, NULL, &out), WF_OK);
    assert_int_equal(out.nproblems, 2);
    /* the summary's fallback renders empty: still required */
    assert_string_equal(out.problems[0].field_id, "summary");
    assert_true(out.problems[0].required);
    assert_non_null(strstr(out.problems[0].message, "fallback are empty"));
    /* the option's own value is the problem shown, not the fallback's */
    assert_string_equal(out.problems[1].field_id, "customfield_1");
    assert_string_equal(out.problems[1].value, "Furniture");
    assert_null(cJSON_GetObjectItemCaseSensitive(out.values, "customfield_1"));
    wf_mapped_free(&out);
}

static void test_template_composes_a_field(void **state)
{
    fixture *fx = *state;
    char err[512];
    assert_int_equal(load(fx, "{\"fields\": {\"summary\": \"message\"},"
                              " \"templates\": {\"description\": \"From {full_name} <{email}>:\\n{message}\"}}",
                          err, sizeof err), WF_OK);
    const char *v[] = {"5", NULL, "bob@example.com", "Help", NULL};
    wf_submission sub = make_sub(v);
    wf_mapped out;
    assert_int_equal(wf_map_submission(&fx->mapping, &fx->fields, &sub, key, NULL, &out), WF_OK);
    /* The description is rich text: a literal ADF document (rich_text.h). */
    char *d = wf_adf_plain(cJSON_GetObjectItemCaseSensitive(out.values, "description"));
    assert_non_null(d);
    assert_memory_equal(d, "From  <bob@example.com>:\nHelp", strlen("From  <bob@example.com>:\nHelp"));
    free(d);
    wf_mapped_free(&out);
    /* the columns a template names are checked like mapped columns */
    assert_int_equal(wf_mapping_check_columns(&fx->mapping, names, 5, err, sizeof err), WF_OK);
    assert_int_equal(wf_mapping_check_columns(&fx->mapping, names, 3, err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "'message'"));
}

static void test_mapping_file_errors_name_the_entry(void **state)
{
    fixture *fx = *state;
    char err[512];
    assert_int_equal(load(fx, "{\"fields\": {}, \"templates\": {\"nosuchfield\": \"x\"}}", err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "nosuchfield"));
    assert_int_equal(load(fx, "{\"fields\": {}, \"fallbacks\": {\"summary\": \"{oops\"}}", err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "fallbacks.summary"));
    assert_int_equal(load(fx, "{\"fields\": {}, \"templates\": {\"summary\": 3}}", err, sizeof err), WF_ERR_CONFIG);
    assert_int_equal(load(fx, "{\"fields\": {\"summary\": \"message\"}, \"templates\": {\"summary\": \"{id}\"}}",
                          err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "both mapped"));
    assert_int_equal(load(fx, "{\"fields\": {}, \"templates\": []}", err, sizeof err), WF_ERR_CONFIG);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_columns_braces_and_null),
        cmocka_unit_test(test_values_are_never_expanded),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_unknown_column_is_named),
        T(test_fallback_rescues_empty_summary_and_unknown_option),
        T(test_fallback_that_does_not_fit_keeps_the_problem),
        T(test_template_composes_a_field),
        T(test_mapping_file_errors_name_the_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
