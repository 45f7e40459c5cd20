/* test_jira_fields.c: the request type's field list, the mapping file and
 * the typed conversion of a submission to requestFieldValues. */
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
#include "../../modules/unique_key.h"
#include "unit_helpers.h"

#define NELEM(a) (sizeof(a) / sizeof *(a))

/* A getRequestTypeFields reply in the shape of the contract's
 * CustomerRequestCreateMetaDTO / RequestTypeFieldDTO / JsonTypeBean
 * (shared/contracts/jsm-service-management.openapi.json). */
static const char fields_body[] =
    "{\"canRaiseOnBehalfOf\": false, \"canAddRequestParticipants\": true, \"requestTypeFields\": ["
    " {\"fieldId\": \"summary\", \"name\": \"Summary\", \"required\": true, \"visible\": true,"
    "  \"validValues\": [], \"defaultValues\": [], \"presetValues\": [],"
    "  \"jiraSchema\": {\"type\": \"string\", \"system\": \"summary\"}},"
    " {\"fieldId\": \"description\", \"name\": \"Description\", \"required\": false,"
    "  \"validValues\": [], \"jiraSchema\": {\"type\": \"string\", \"system\": \"description\"}},"
    " {\"fieldId\": \"labels\", \"name\": \"Labels\", \"required\": false, \"validValues\": [],"
    "  \"jiraSchema\": {\"type\": \"array\", \"items\": \"string\", \"system\": \"labels\"}},"
    " {\"fieldId\": \"customfield_10010\", \"name\": \"Department\", \"required\": true,"
    "  \"validValues\": ["
    "   {\"value\": \"10100\", \"label\": \"Finance\", \"children\": []},"
    "   {\"value\": \"10101\", \"label\": \"Human Resources\", \"children\": []}],"
    "  \"jiraSchema\": {\"type\": \"option\", \"custom\": \"com.atlassian.jira.plugin.system.customfieldtypes:select\","
    "   \"customId\": 10010}},"
    " {\"fieldId\": \"customfield_10011\", \"name\": \"Equipment\", \"required\": false,"
    "  \"validValues\": ["
    "   {\"value\": \"10200\", \"label\": \"Laptop\", \"children\": []},"
    "   {\"value\": \"10201\", \"label\": \"Phone\", \"children\": []},"
    "   {\"value\": \"10202\", \"label\": \"Monitor\", \"children\": []}],"
    "  \"jiraSchema\": {\"type\": \"array\", \"items\": \"option\","
    "   \"custom\": \"com.atlassian.jira.plugin.system.customfieldtypes:multiselect\", \"customId\": 10011}},"
    " {\"fieldId\": \"customfield_10012\", \"name\": \"Seats\", \"required\": false, \"validValues\": [],"
    "  \"jiraSchema\": {\"type\": \"number\", \"custom\": \"com.atlassian.jira.plugin.system.customfieldtypes:float\","
    "   \"customId\": 10012}},"
    " {\"fieldId\": \"duedate\", \"name\": \"Due date\", \"required\": false, \"validValues\": [],"
    "  \"jiraSchema\": {\"type\": \"date\", \"system\": \"duedate\"}},"
    " {\"fieldId\": \"customfield_10013\", \"name\": \"Start time\", \"required\": false, \"validValues\": [],"
    "  \"jiraSchema\": {\"type\": \"datetime\","
    "   \"custom\": \"com.atlassian.jira.plugin.system.customfieldtypes:datetime\", \"customId\": 10013}},"
    " {\"fieldId\": \"customfield_10014\", \"name\": \"Contact e-mail\", \"required\": false, \"validValues\": [],"
    "  \"jiraSchema\": {\"type\": \"string\","
    "   \"custom\": \"com.atlassian.jira.plugin.system.customfieldtypes:textfield\", \"customId\": 10014}},"
    " {\"fieldId\": \"customfield_10015\", \"name\": \"Office\", \"required\": false,"
    "  \"validValues\": ["
    "   {\"value\": \"10300\", \"label\": \"Berlin\", \"children\": []},"
    "   {\"value\": \"10301\", \"label\": \"Paris\", \"children\": []}],"
    "  \"jiraSchema\": {\"type\": \"option\", \"custom\": \"com.atlassian.jira.plugin.system.customfieldtypes:select\","
    "   \"customId\": 10015}},"
    " {\"fieldId\": \"customfield_10016\", \"name\": \"Notes\", \"required\": false}"
    "]}";

/* The same request type without a labels field but with a text field that
 * can carry the key (SYNC_KEY_FIELD). */
static const char fields_body_nolabels[] =
    "{\"requestTypeFields\": ["
    " {\"fieldId\": \"summary\", \"name\": \"Summary\", \"required\": true,"
    "  \"jiraSchema\": {\"type\": \"string\", \"system\": \"summary\"}},"
    " {\"fieldId\": \"customfield_10099\", \"name\": \"Sync key\", \"required\": false,"
    "  \"jiraSchema\": {\"type\": \"string\", \"customId\": 10099}}"
    "]}";

/* A key as wf_key_compute gives it (its value does not matter here). */
static const char test_key[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

typedef struct {
    wf_field_list fields;
    char *dir;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    char err[256] = "";
    if (wf_fields_parse(fields_body, &fx->fields, err, sizeof err) != WF_OK) {
        free(fx);
        return -1;
    }
    fx->dir = unit_mkdtemp();
    if (!fx->dir) return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    wf_fields_free(&fx->fields);
    unit_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* Maps one column "c" holding value into field_id (plus nothing else) and
 * returns the result; the caller frees it. */
static wf_mapped map_one(const wf_field_list *fields, const char *field_id, const char *value)
{
    wf_mapping_pair pair = {(char *)field_id, (char *)"c", WF_FORMAT_TEXT};
    wf_mapping m = {&pair, 1, NULL, NULL, NULL};
    static const char *const names[] = {"id", "c"};
    const char *values[] = {"1", value};
    wf_submission sub = {0};
    sub.ncols = 2;
    sub.names = names;
    sub.values = values;
    sub.id = "1";
    wf_mapped out;
    assert_int_equal(wf_map_submission(&m, fields, &sub, test_key, NULL, &out), WF_OK);
    return out;
}

static const wf_field_problem *find_problem(const wf_mapped *m, const char *field_id)
{
    for (size_t i = 0; i < m->nproblems; i++)
        if (strcmp(m->problems[i].field_id, field_id) == 0) return &m->problems[i];
    return NULL;
}

/* The option id of value {"id": ...}. */
static const char *option_id(const cJSON *v)
{
    assert_true(cJSON_IsObject(v));
    assert_int_equal(cJSON_GetArraySize(v), 1);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
    assert_true(cJSON_IsString(id));
    return id->valuestring;
}

static const cJSON *value_of(const wf_mapped *m, const char *field_id)
{
    return cJSON_GetObjectItemCaseSensitive(m->values, field_id);
}

/* ---- wf_fields_parse ----------------------------------------------------- */

static void test_fields_parse(void **state)
{
    fixture *fx = *state;
    const wf_field_list *l = &fx->fields;
    assert_int_equal(l->n, 11);

    const wf_field_def *f = wf_fields_find(l, "summary");
    assert_non_null(f);
    assert_string_equal(f->name, "Summary");
    assert_true(f->required);
    assert_string_equal(f->type, "string");
    assert_string_equal(f->system, "summary");
    assert_null(f->items);
    assert_int_equal(f->nvalid, 0);

    f = wf_fields_find(l, "customfield_10010");
    assert_non_null(f);
    assert_true(f->required);
    assert_string_equal(f->type, "option");
    assert_null(f->system);
    assert_int_equal(f->nvalid, 2);
    assert_string_equal(f->valid_values[0], "10100");
    assert_string_equal(f->valid_labels[0], "Finance");
    assert_string_equal(f->valid_values[1], "10101");
    assert_string_equal(f->valid_labels[1], "Human Resources");

    f = wf_fields_find(l, "customfield_10011");
    assert_non_null(f);
    assert_false(f->required);
    assert_string_equal(f->type, "array");
    assert_string_equal(f->items, "option");
    assert_int_equal(f->nvalid, 3);

    f = wf_fields_find(l, "labels");
    assert_string_equal(f->items, "string");
    assert_string_equal(f->system, "labels");

    /* No jiraSchema: treated as text. */
    f = wf_fields_find(l, "customfield_10016");
    assert_non_null(f);
    assert_string_equal(f->type, "string");

    assert_null(wf_fields_find(l, "customfield_99999"));
    assert_null(wf_fields_find(l, "Summary")); /* ids are case-sensitive */
}

static void test_fields_parse_rejects_other_bodies(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "not json", "[]", "{}", "{\"requestTypeFields\": {}}", "{\"values\": []}", "null",
    };
    for (size_t i = 0; i < NELEM(bad); i++) {
        wf_field_list l;
        char err[256] = "";
        assert_int_equal(wf_fields_parse(bad[i], &l, err, sizeof err), WF_ERR_JIRA_PROTOCOL);
        assert_true(strlen(err) > 0);
        wf_fields_free(&l);
    }
    /* An empty list is a list; an entry without fieldId is skipped. */
    wf_field_list l;
    char err[256] = "";
    assert_int_equal(wf_fields_parse("{\"requestTypeFields\": []}", &l, err, sizeof err), WF_OK);
    assert_int_equal(l.n, 0);
    wf_fields_free(&l);
    assert_int_equal(wf_fields_parse("{\"requestTypeFields\": [{\"name\": \"x\"},"
                                     " {\"fieldId\": \"summary\", \"validValues\": [{\"label\": \"no value\"}]}]}",
                                     &l, err, sizeof err), WF_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.fields[0].id, "summary");
    assert_int_equal(l.fields[0].nvalid, 0);
    wf_fields_free(&l);
}

/* ---- options ------------------------------------------------------------- */

static void test_option_by_label_and_value(void **state)
{
    fixture *fx = *state;
    static const struct { const char *text, *id; } cases[] = {
        {"Finance", "10100"},
        {"finance", "10100"},          /* labels compare case-insensitively */
        {"  HUMAN resources ", "10101"}, /* and trimmed */
        {"10101", "10101"},            /* the option id itself */
        {"10100", "10100"},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        wf_mapped m = map_one(&fx->fields, "customfield_10010", cases[i].text);
        assert_string_equal(option_id(value_of(&m, "customfield_10010")), cases[i].id);
        assert_null(find_problem(&m, "customfield_10010"));
        wf_mapped_free(&m);
    }
}

static void test_unknown_option_is_a_problem(void **state)
{
    fixture *fx = *state;
    wf_mapped m = map_one(&fx->fields, "customfield_10010", "Marketing");
    assert_null(value_of(&m, "customfield_10010"));
    const wf_field_problem *p = find_problem(&m, "customfield_10010");
    assert_non_null(p);
    assert_true(p->required);
    assert_string_equal(p->value, "Marketing");
    assert_non_null(strstr(p->message, "Marketing"));
    assert_non_null(strstr(p->message, "Department"));
    wf_mapped_free(&m);

    /* The same on an optional field carries required = false. */
    m = map_one(&fx->fields, "customfield_10015", "Madrid");
    assert_null(value_of(&m, "customfield_10015"));
    p = find_problem(&m, "customfield_10015");
    assert_non_null(p);
    assert_false(p->required);
    assert_string_equal(p->value, "Madrid");
    wf_mapped_free(&m);
}

static void test_array_of_options(void **state)
{
    fixture *fx = *state;
    wf_mapped m = map_one(&fx->fields, "customfield_10011", "Laptop, Phone");
    const cJSON *arr = value_of(&m, "customfield_10011");
    assert_true(cJSON_IsArray(arr));
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    assert_string_equal(option_id(cJSON_GetArrayItem(arr, 0)), "10200");
    assert_string_equal(option_id(cJSON_GetArrayItem(arr, 1)), "10201");
    assert_null(find_problem(&m, "customfield_10011"));
    wf_mapped_free(&m);

    m = map_one(&fx->fields, "customfield_10011", "monitor;10200,, ");
    arr = value_of(&m, "customfield_10011");
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    assert_string_equal(option_id(cJSON_GetArrayItem(arr, 0)), "10202");
    assert_string_equal(option_id(cJSON_GetArrayItem(arr, 1)), "10200");
    wf_mapped_free(&m);

    m = map_one(&fx->fields, "customfield_10011", "Laptop, Tablet");
    assert_null(value_of(&m, "customfield_10011"));
    const wf_field_problem *p = find_problem(&m, "customfield_10011");
    assert_non_null(p);
    assert_false(p->required);
    assert_non_null(strstr(p->message, "Tablet"));
    wf_mapped_free(&m);
}

/* ---- labels and the key carrier ---------------------------------------- */

static int array_has_string(const cJSON *arr, const char *s)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0) return 1;
    return 0;
}

static void test_labels_from_column_and_key_labels(void **state)
{
    fixture *fx = *state;
    wf_mapped m = map_one(&fx->fields, "labels", "urgent, new hire;  onboarding ");
    const cJSON *labels = value_of(&m, "labels");
    assert_true(cJSON_IsArray(labels));
    assert_int_equal(cJSON_GetArraySize(labels), 5);
    assert_string_equal(cJSON_GetArrayItem(labels, 0)->valuestring, "urgent");
    assert_string_equal(cJSON_GetArrayItem(labels, 1)->valuestring, "new_hire");
    assert_string_equal(cJSON_GetArrayItem(labels, 2)->valuestring, "onboarding");

    /* The key label, built here from its definition: "wf2jsm-" and the
     * first 32 hex characters of the key. */
    char expect[64];
    memcpy(expect, "wf2jsm-", 7);
    memcpy(expect + 7, test_key, 32);
    expect[39] = '\0';
    assert_true(array_has_string(labels, "wf2jsm"));
    assert_true(array_has_string(labels, expect));
    for (int i = 0; i < cJSON_GetArraySize(labels); i++)
        assert_null(strchr(cJSON_GetArrayItem(labels, i)->valuestring, ' '));

    char label[96];
    wf_key_label(test_key, label, sizeof label);
    assert_string_equal(label, expect);
    wf_mapped_free(&m);

    /* Not mapped at all: the labels field still carries the key. */
    m = map_one(&fx->fields, "customfield_10014", "x@example.com");
    labels = value_of(&m, "labels");
    assert_int_equal(cJSON_GetArraySize(labels), 2);
    assert_true(array_has_string(labels, "wf2jsm"));
    assert_true(array_has_string(labels, expect));
    wf_mapped_free(&m);
}

static void test_key_field_carrier_without_labels(void **state)
{
    (void)state;
    wf_field_list l;
    char err[256] = "";
    assert_int_equal(wf_fields_parse(fields_body_nolabels, &l, err, sizeof err), WF_OK);
    assert_int_equal(wf_fields_key_carrier(&l, "customfield_10099"), WF_KEY_VIA_FIELD);
    assert_int_equal(wf_fields_key_carrier(&l, NULL), WF_KEY_VIA_NOTHING);
    assert_int_equal(wf_fields_key_carrier(&l, "customfield_12345"), WF_KEY_VIA_NOTHING);

    wf_mapping_pair pair = {(char *)"summary", (char *)"title", WF_FORMAT_TEXT};
    wf_mapping m = {&pair, 1, NULL, NULL, NULL};
    static const char *const names[] = {"title"};
    static const char *const values[] = {"Hello"};
    wf_submission sub = {0};
    sub.ncols = 1;
    sub.names = names;
    sub.values = values;
    wf_mapped out;
    assert_int_equal(wf_map_submission(&m, &l, &sub, test_key, "customfield_10099", &out), WF_OK);
    const cJSON *k = value_of(&out, "customfield_10099");
    assert_true(cJSON_IsString(k));
    assert_string_equal(k->valuestring, test_key);
    assert_null(value_of(&out, "labels"));
    assert_int_equal(out.nproblems, 0);
    wf_mapped_free(&out);

    /* No carrier: nothing is added. */
    assert_int_equal(wf_map_submission(&m, &l, &sub, test_key, NULL, &out), WF_OK);
    assert_int_equal(cJSON_GetArraySize(out.values), 1);
    wf_mapped_free(&out);
    wf_fields_free(&l);
}

static void test_labels_win_over_key_field(void **state)
{
    fixture *fx = *state;
    assert_int_equal(wf_fields_key_carrier(&fx->fields, "customfield_10014"), WF_KEY_VIA_LABEL);
    assert_int_equal(wf_fields_key_carrier(&fx->fields, NULL), WF_KEY_VIA_LABEL);
}

/* ---- numbers, dates, date-times ------------------------------------------ */

static void test_number(void **state)
{
    fixture *fx = *state;
    static const struct { const char *text; double value; } ok[] = {
        {"3", 3}, {" 2.5 ", 2.5}, {"-7", -7}, {"1e3", 1000},
    };
    for (size_t i = 0; i < NELEM(ok); i++) {
        wf_mapped m = map_one(&fx->fields, "customfield_10012", ok[i].text);
        const cJSON *v = value_of(&m, "customfield_10012");
        assert_true(cJSON_IsNumber(v));
        assert_true(cJSON_GetNumberValue(v) == ok[i].value);
        assert_null(find_problem(&m, "customfield_10012"));
        wf_mapped_free(&m);
    }
    static const char *const bad[] = {"3x", "three", "1,5", "nan", "inf", "1e999"};
    for (size_t i = 0; i < NELEM(bad); i++) {
        wf_mapped m = map_one(&fx->fields, "customfield_10012", bad[i]);
        assert_null(value_of(&m, "customfield_10012"));
        const wf_field_problem *p = find_problem(&m, "customfield_10012");
        assert_non_null(p);
        assert_string_equal(p->value, bad[i]);
        assert_non_null(strstr(p->message, "number"));
        assert_false(p->required);
        wf_mapped_free(&m);
    }
}

static void test_date(void **state)
{
    fixture *fx = *state;
    static const char *const ok[] = {
        "2026-11-25", "2026-11-25 10:00:00+00", "2026-11-25T23:59:59.999999Z", " 2026-11-25 ",
    };
    for (size_t i = 0; i < NELEM(ok); i++) {
        wf_mapped m = map_one(&fx->fields, "duedate", ok[i]);
        const cJSON *v = value_of(&m, "duedate");
        assert_true(cJSON_IsString(v));
        assert_string_equal(v->valuestring, "2026-11-25");
        assert_null(find_problem(&m, "duedate"));
        wf_mapped_free(&m);
    }
    static const char *const bad[] = {"25/11/2026", "2026-1-25", "2026-11-25x", "tomorrow"};
    for (size_t i = 0; i < NELEM(bad); i++) {
        wf_mapped m = map_one(&fx->fields, "duedate", bad[i]);
        assert_null(value_of(&m, "duedate"));
        assert_non_null(find_problem(&m, "duedate"));
        wf_mapped_free(&m);
    }
}

static void test_datetime(void **state)
{
    fixture *fx = *state;
    static const struct { const char *text, *jira; } ok[] = {
        {"2026-11-20 09:00:00+00", "2026-11-20T09:00:00.000+0000"},
        {"2026-11-20 09:00:00+05:30", "2026-11-20T09:00:00.000+0530"},
        {"2026-11-20 09:00:00-03", "2026-11-20T09:00:00.000-0300"},
        {"2026-11-20 09:00:00.5+00", "2026-11-20T09:00:00.500+0000"},
        {"2026-11-20 09:00:00.123456+01", "2026-11-20T09:00:00.123+0100"},
        {"2026-11-20 09:00:00.07+00", "2026-11-20T09:00:00.070+0000"},
        {"2026-11-20T09:00:00Z", "2026-11-20T09:00:00.000+0000"},
        {"2026-11-20 09:00:00", "2026-11-20T09:00:00.000+0000"}, /* no zone: UTC */
    };
    for (size_t i = 0; i < NELEM(ok); i++) {
        wf_mapped m = map_one(&fx->fields, "customfield_10013", ok[i].text);
        const cJSON *v = value_of(&m, "customfield_10013");
        if (!cJSON_IsString(v)) fail_msg("%s was not converted", ok[i].text);
        assert_string_equal(v->valuestring, ok[i].jira);
        assert_null(find_problem(&m, "customfield_10013"));
        wf_mapped_free(&m);
    }
    static const char *const bad[] = {
        "2026-11-20", "2026-11-20 09:00", "2026-11-20 09:00:00 junk", "20/11/2026 09:00:00", "soon",
    };
    for (size_t i = 0; i < NELEM(bad); i++) {
        wf_mapped m = map_one(&fx->fields, "customfield_10013", bad[i]);
        assert_null(value_of(&m, "customfield_10013"));
        const wf_field_problem *p = find_problem(&m, "customfield_10013");
        if (!p) fail_msg("%s was accepted as a date-time", bad[i]);
        assert_string_equal(p->value, bad[i]);
        wf_mapped_free(&m);
    }
}

/* ---- summary and text ---------------------------------------------------- */

/* Number of UTF-8 code points in s, and whether s is well-formed UTF-8
 * (every lead byte followed by the right number of continuation bytes). */
static size_t utf8_chars(const char *s, int *valid)
{
    size_t n = 0;
    *valid = 1;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int extra = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 : (*p & 0xF8) == 0xF0 ? 3 : -1;
        if (extra < 0) { *valid = 0; return n; }
        p++;
        for (int i = 0; i < extra; i++, p++)
            if ((*p & 0xC0) != 0x80) { *valid = 0; return n; }
        n++;
    }
    return n;
}

static void test_summary_one_line(void **state)
{
    fixture *fx = *state;
    wf_mapped m = map_one(&fx->fields, "summary", "  New laptop\r\nfor\t\tAnn  \n ");
    assert_string_equal(value_of(&m, "summary")->valuestring, "New laptop for Ann");
    wf_mapped_free(&m);
    /* Other text fields keep their newlines. */
    m = map_one(&fx->fields, "customfield_10016", "line 1\nline 2");
    assert_string_equal(value_of(&m, "customfield_10016")->valuestring, "line 1\nline 2");
    wf_mapped_free(&m);
}

static void test_summary_cut_at_255_characters_not_bytes(void **state)
{
    fixture *fx = *state;
    /* 300 x "é" (2 bytes), 300 x "€" (3 bytes), 300 x U+1F600 (4 bytes). */
    static const char *const glyphs[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t g = 0; g < NELEM(glyphs); g++) {
        size_t glen = strlen(glyphs[g]);
        char *text = malloc(300 * glen + 1);
        assert_non_null(text);
        for (size_t i = 0; i < 300; i++) memcpy(text + i * glen, glyphs[g], glen);
        text[300 * glen] = '\0';
        wf_mapped m = map_one(&fx->fields, "summary", text);
        const char *s = value_of(&m, "summary")->valuestring;
        int valid;
        assert_int_equal(utf8_chars(s, &valid), WF_SUMMARY_MAX_CHARS);
        assert_true(valid);
        /* The kept text is whole characters of the value, then the notice. */
        const char *notice = strstr(s, " [shortened by wf2jsm; full text in submission-1.json]");
        assert_non_null(notice);
        assert_string_equal(notice + strlen(notice) - 1, "]");
        assert_int_equal((size_t)(notice - s) % glen, 0);
        assert_memory_equal(s, text, (size_t)(notice - s));
        wf_mapped_free(&m);
        free(text);
    }
    /* Exactly 255 characters, multibyte at the end: kept whole, no notice. */
    char text[600];
    memset(text, 'a', 254);
    strcpy(text + 254, "\xe2\x82\xac");
    wf_mapped m = map_one(&fx->fields, "summary", text);
    assert_string_equal(value_of(&m, "summary")->valuestring, text);
    wf_mapped_free(&m);
    /* Short summaries are untouched. */
    m = map_one(&fx->fields, "summary", "\xc3\x89lodie");
    assert_string_equal(value_of(&m, "summary")->valuestring, "\xc3\x89lodie");
    wf_mapped_free(&m);
}

/* ---- NULL and required -------------------------------------------------- */

static void test_null_column_leaves_optional_field_out(void **state)
{
    fixture *fx = *state;
    static const char *const fields[] = {"customfield_10012", "duedate", "customfield_10015", "customfield_10014"};
    for (size_t i = 0; i < NELEM(fields); i++) {
        wf_mapped m = map_one(&fx->fields, fields[i], NULL);
        assert_null(value_of(&m, fields[i]));
        assert_null(find_problem(&m, fields[i]));
        wf_mapped_free(&m);
        /* An empty or blank text is the same as NULL. */
        m = map_one(&fx->fields, fields[i], "   ");
        assert_null(value_of(&m, fields[i]));
        assert_null(find_problem(&m, fields[i]));
        wf_mapped_free(&m);
    }
}

static void test_required_field_with_null_is_a_problem(void **state)
{
    fixture *fx = *state;
    static const char *const texts[] = {NULL, "", " \t "};
    for (size_t i = 0; i < NELEM(texts); i++) {
        wf_mapped m = map_one(&fx->fields, "customfield_10010", texts[i]);
        assert_null(value_of(&m, "customfield_10010"));
        const wf_field_problem *p = find_problem(&m, "customfield_10010");
        assert_non_null(p);
        assert_true(p->required);
        assert_null(p->value);
        assert_non_null(strstr(p->message, "required"));
        wf_mapped_free(&m);
    }
}

/* Required fields no column maps are reported too (here: summary and
 * Department, when only the e-mail is mapped); each once. */
static void test_required_unmapped_field_is_a_problem(void **state)
{
    fixture *fx = *state;
    wf_mapped m = map_one(&fx->fields, "customfield_10014", "ann@example.com");
    assert_int_equal(m.nproblems, 2);
    assert_true(find_problem(&m, "summary")->required);
    assert_non_null(strstr(find_problem(&m, "summary")->message, "not mapped"));
    assert_true(find_problem(&m, "customfield_10010")->required);
    wf_mapped_free(&m);

    m = map_one(&fx->fields, "customfield_10010", NULL);
    assert_int_equal(m.nproblems, 2); /* summary (unmapped) and Department (empty), not twice */
    wf_mapped_free(&m);
}

/* The plain text of a rich-text value (an ADF document), in a buffer that
 * the next call reuses. */
static const char *plain_of(const wf_mapped *m, const char *field)
{
    static char *last;
    free(last);
    const cJSON *v = value_of((wf_mapped *)m, field);
    assert_true(wf_adf_is_doc(v));
    last = wf_adf_plain(v);
    assert_non_null(last);
    return last;
}

/* ---- description footer -------------------------------------------------- */

static void test_description_footer_carries_full_key(void **state)
{
    fixture *fx = *state;
    wf_mapped m = map_one(&fx->fields, "description", "Please set up a laptop.");
    const char *d = plain_of(&m, "description");
    assert_non_null(strstr(d, test_key));
    assert_memory_equal(d, "Please set up a laptop.", strlen("Please set up a laptop."));
    /* The key comes after the body. */
    assert_true(strstr(d, test_key) > d + strlen("Please set up a laptop."));
    wf_mapped_free(&m);

    /* No description column: the footer alone. */
    m = map_one(&fx->fields, "customfield_10014", "ann@example.com");
    d = plain_of(&m, "description");
    assert_non_null(strstr(d, test_key));
    wf_mapped_free(&m);

    /* No description field in the request type: nothing is invented. */
    wf_field_list l;
    char err[256] = "";
    assert_int_equal(wf_fields_parse(fields_body_nolabels, &l, err, sizeof err), WF_OK);
    m = map_one(&l, "summary", "Hi");
    assert_null(value_of(&m, "description"));
    wf_mapped_free(&m);
    wf_fields_free(&l);
}

/* A description at Jira's limit still fits with its footer: the body gives
 * way (never in the middle of a character), the footer with the key stays
 * whole, and the whole text is within WF_TEXT_MAX_CHARS characters. */
static void test_long_description_keeps_footer_within_limit(void **state)
{
    fixture *fx = *state;
    static const char *const glyphs[] = {"a", "\xc3\xa9"};
    for (size_t g = 0; g < NELEM(glyphs); g++) {
        size_t glen = strlen(glyphs[g]), n = WF_TEXT_MAX_CHARS + 5000;
        char *body = malloc(n * glen + 1);
        assert_non_null(body);
        for (size_t i = 0; i < n; i++) memcpy(body + i * glen, glyphs[g], glen);
        body[n * glen] = '\0';
        wf_mapped m = map_one(&fx->fields, "description", body);
        const char *d = plain_of(&m, "description");
        int valid;
        size_t chars = utf8_chars(d, &valid);
        assert_true(valid);
        if (chars > WF_TEXT_MAX_CHARS) fail_msg("description has %zu characters, Jira takes %d", chars, WF_TEXT_MAX_CHARS);
        /* It ends with the key, and starts with the body. */
        assert_string_equal(d + strlen(d) - strlen(test_key), test_key);
        assert_memory_equal(d, body, 1000 * glen);
        wf_mapped_free(&m);
        free(body);
    }
}

/* ---- constants and dropping a field ------------------------------------- */

static void test_constants_and_drop_field(void **state)
{
    fixture *fx = *state;
    wf_mapping_pair pairs[] = {{(char *)"summary", (char *)"title", WF_FORMAT_TEXT}, {(char *)"customfield_10015", (char *)"office", WF_FORMAT_TEXT}};
    wf_mapping m = {pairs, 2, cJSON_Parse("{\"customfield_10015\": {\"id\": \"10300\"},"
                                          " \"customfield_10010\": {\"id\": \"10101\"}}"), NULL, NULL};
    assert_non_null(m.constants);
    static const char *const names[] = {"title", "office"};
    const char *values[] = {"Hello", "Paris"};
    wf_submission sub = {0};
    sub.ncols = 2;
    sub.names = names;
    sub.values = values;
    wf_mapped out;
    assert_int_equal(wf_map_submission(&m, &fx->fields, &sub, test_key, NULL, &out), WF_OK);
    /* The mapped column wins over the constant; the constant fills the rest. */
    assert_string_equal(option_id(value_of(&out, "customfield_10015")), "10301");
    assert_string_equal(option_id(value_of(&out, "customfield_10010")), "10101");
    assert_int_equal(out.nproblems, 0);

    wf_mapped_drop_field(&out, "customfield_10015");
    assert_null(value_of(&out, "customfield_10015"));
    assert_non_null(value_of(&out, "summary"));
    wf_mapped_drop_field(&out, "not_there");
    wf_mapped_free(&out);

    /* NULL office: the constant is used. */
    values[1] = NULL;
    assert_int_equal(wf_map_submission(&m, &fx->fields, &sub, test_key, NULL, &out), WF_OK);
    assert_string_equal(option_id(value_of(&out, "customfield_10015")), "10300");
    wf_mapped_free(&out);
    cJSON_Delete(m.constants);
}

/* ---- the mapping file ---------------------------------------------------- */

static wf_err load_text(fixture *fx, const char *text, wf_mapping *m, char *err, size_t errlen, char **path_out)
{
    char *path = unit_path(fx->dir, "field_mapping.json");
    assert_int_equal(unit_write_file(path, text), 0);
    wf_err rc = wf_mapping_load(path, &fx->fields, m, err, errlen);
    *path_out = path;
    return rc;
}

static void test_mapping_load_ok(void **state)
{
    fixture *fx = *state;
    wf_mapping m;
    char err[512] = "", *path;
    assert_int_equal(load_text(fx, "{\"fields\": {\"summary\": \"title\", \"customfield_10012\": \"seats\"},"
                                   " \"constants\": {\"customfield_10015\": {\"id\": \"10300\"}}}",
                               &m, err, sizeof err, &path), WF_OK);
    assert_int_equal(m.n, 2);
    assert_string_equal(m.pairs[0].field_id, "summary");
    assert_string_equal(m.pairs[0].column, "title");
    assert_string_equal(m.pairs[1].field_id, "customfield_10012");
    assert_string_equal(m.pairs[1].column, "seats");
    assert_true(cJSON_IsObject(m.constants));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(m.constants, "customfield_10015"));
    wf_mapping_free(&m);
    free(path);
}

static void test_mapping_load_errors(void **state)
{
    fixture *fx = *state;
    static const struct { const char *text, *must_say; } cases[] = {
        {"{\"fields\": {\"summary\": \"title\", \"customfield_10999\": \"x\"}}", "customfield_10999"},
        {"{\"fields\": {\"summary\": 3}}", "summary"},
        {"{\"fields\": {\"summary\": \"\"}}", "summary"},
        {"{\"fields\": {}, \"constants\": {\"customfield_77777\": 1}}", "customfield_77777"},
        {"{\"fields\": {}, \"constants\": []}", "constants"},
        {"{\"summary\": \"title\"}", "\"fields\""},
        {"not json at all", "\"fields\""},
        {"{\"fields\": {\"summary\": \"title\"}, \"formats\": {\"title\": \"markdown\"}}", "title"},
        {"{\"fields\": {\"summary\": \"title\"}, \"formats\": {\"body\": \"html\"}}", "body"},
        {"{\"fields\": {\"summary\": \"title\"}, \"formats\": [\"title\"]}", "formats"},
    };
    for (size_t i = 0; i < NELEM(cases); i++) {
        wf_mapping m;
        char err[512] = "", *path;
        assert_int_equal(load_text(fx, cases[i].text, &m, err, sizeof err, &path), WF_ERR_CONFIG);
        if (!strstr(err, cases[i].must_say)) fail_msg("error for %s does not say %s: %s", cases[i].text, cases[i].must_say, err);
        assert_non_null(strstr(err, path));
        assert_int_equal(m.n, 0);
        assert_null(m.pairs);
        wf_mapping_free(&m);
        free(path);
    }
}

static void test_mapping_load_missing_file(void **state)
{
    fixture *fx = *state;
    char *path = unit_path(fx->dir, "no_such_mapping.json");
    wf_mapping m;
    char err[512] = "";
    assert_int_equal(wf_mapping_load(path, &fx->fields, &m, err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "wf2jsm fields"));
    wf_mapping_free(&m);
    free(path);
}

static void test_mapping_check_columns(void **state)
{
    (void)state;
    wf_mapping_pair pairs[] = {{(char *)"summary", (char *)"title", WF_FORMAT_TEXT}, {(char *)"customfield_10014", (char *)"email", WF_FORMAT_TEXT}};
    wf_mapping m = {pairs, 2, NULL, NULL, NULL};
    static const char *const all[] = {"id", "title", "email"};
    static const char *const some[] = {"id", "title", "e_mail"};
    char err[512] = "";
    assert_int_equal(wf_mapping_check_columns(&m, all, 3, err, sizeof err), WF_OK);
    assert_int_equal(wf_mapping_check_columns(&m, some, 3, err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "'email'"));
    assert_non_null(strstr(err, "customfield_10014"));
    assert_int_equal(wf_mapping_check_columns(&m, NULL, 0, err, sizeof err), WF_ERR_CONFIG);
    assert_non_null(strstr(err, "'title'"));
}

/* ---- proposing a mapping ------------------------------------------------- */

static const char *proposed_column(const cJSON *root, const char *field_id)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "fields"), field_id);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_mapping_propose_keeps_existing_pairs(void **state)
{
    fixture *fx = *state;
    char *path = unit_path(fx->dir, "existing.json");
    assert_int_equal(unit_write_file(path, "{\"fields\": {\"summary\": \"title\"},"
                                           " \"constants\": {\"customfield_10015\": {\"id\": \"10300\"}}}"), 0);
    static const char *const columns[] = {"id", "title", "summary", "Contact_Email", "SEATS", "due_date",
                                          "labels", "unrelated"};
    char *json = NULL, err[512] = "";
    int proposed = -1;
    assert_int_equal(wf_mapping_propose(&fx->fields, columns, NELEM(columns), path, &json, &proposed,
                                        err, sizeof err), WF_OK);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    assert_string_equal(proposed_column(root, "summary"), "title");  /* kept, not re-proposed */
    assert_string_equal(proposed_column(root, "customfield_10014"), "Contact_Email"); /* by name */
    assert_string_equal(proposed_column(root, "customfield_10012"), "SEATS");
    assert_string_equal(proposed_column(root, "duedate"), "due_date"); /* by id */
    assert_null(proposed_column(root, "labels"));  /* the key carrier is never mapped */
    assert_null(proposed_column(root, "customfield_10010"));
    assert_int_equal(proposed, 3);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "fields")), 4);
    /* Other parts of the existing file survive. */
    assert_non_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "constants"),
                                                     "customfield_10015"));
    cJSON_Delete(root);
    free(json);

    /* What it proposed loads back as a valid mapping. */
    wf_mapping m;
    assert_int_equal(wf_mapping_propose(&fx->fields, columns, NELEM(columns), path, &json, &proposed,
                                        err, sizeof err), WF_OK);
    assert_int_equal(unit_write_file(path, json), 0);
    free(json);
    assert_int_equal(wf_mapping_load(path, &fx->fields, &m, err, sizeof err), WF_OK);
    assert_int_equal(m.n, 4);
    wf_mapping_free(&m);
    free(path);
}

static void test_mapping_propose_without_file_and_with_a_bad_one(void **state)
{
    fixture *fx = *state;
    char *path = unit_path(fx->dir, "none.json");
    static const char *const columns[] = {"Summary", "department", "notes"};
    char *json = NULL, err[512] = "";
    int proposed = -1;
    assert_int_equal(wf_mapping_propose(&fx->fields, columns, NELEM(columns), path, &json, &proposed,
                                        err, sizeof err), WF_OK);
    cJSON *root = cJSON_Parse(json);
    assert_string_equal(proposed_column(root, "summary"), "Summary");
    assert_string_equal(proposed_column(root, "customfield_10010"), "department");
    assert_string_equal(proposed_column(root, "customfield_10016"), "notes");
    assert_int_equal(proposed, 3);
    cJSON_Delete(root);
    free(json);

    assert_int_equal(unit_write_file(path, "{\"not\": \"a mapping\"}"), 0);
    json = (char *)"untouched";
    assert_int_equal(wf_mapping_propose(&fx->fields, columns, NELEM(columns), path, &json, &proposed,
                                        err, sizeof err), WF_ERR_CONFIG);
    assert_null(json);
    assert_non_null(strstr(err, path));
    free(path);
}


/* ---- untrusted text: formats, rich text, HTML, checksum ------------------ */

static const char rich_fields_body[] =
    "{\"requestTypeFields\": ["
    " {\"fieldId\": \"summary\", \"name\": \"Summary\", \"required\": true,"
    "  \"jiraSchema\": {\"type\": \"string\", \"system\": \"summary\"}},"
    " {\"fieldId\": \"description\", \"name\": \"Description\","
    "  \"jiraSchema\": {\"type\": \"string\", \"system\": \"description\"}},"
    " {\"fieldId\": \"environment\", \"name\": \"Environment\","
    "  \"jiraSchema\": {\"type\": \"string\", \"system\": \"environment\"}},"
    " {\"fieldId\": \"customfield_10060\", \"name\": \"Details\","
    "  \"jiraSchema\": {\"type\": \"string\", \"custom\": \"com.atlassian.jira.plugin.system.customfieldtypes:textarea\"}},"
    " {\"fieldId\": \"customfield_10061\", \"name\": \"Short\","
    "  \"jiraSchema\": {\"type\": \"string\", \"custom\": \"com.atlassian.jira.plugin.system.customfieldtypes:textfield\"}},"
    " {\"fieldId\": \"labels\", \"name\": \"Labels\", \"jiraSchema\": {\"type\": \"array\", \"items\": \"string\"}}"
    "]}";

static void test_rich_text_fields_are_known_by_schema(void **state)
{
    (void)state;
    wf_field_list l;
    char err[256];
    assert_int_equal(wf_fields_parse(rich_fields_body, &l, err, sizeof err), WF_OK);
    assert_false(wf_field_is_rich_text(wf_fields_find(&l, "summary")));
    assert_true(wf_field_is_rich_text(wf_fields_find(&l, "description")));
    assert_true(wf_field_is_rich_text(wf_fields_find(&l, "environment")));
    assert_true(wf_field_is_rich_text(wf_fields_find(&l, "customfield_10060")));
    assert_false(wf_field_is_rich_text(wf_fields_find(&l, "customfield_10061")));
    assert_false(wf_field_is_rich_text(wf_fields_find(&l, "labels")));
    assert_false(wf_field_is_rich_text(NULL));
    wf_fields_free(&l);
}

/* Maps columns text (plain) and html (declared "html") through the rich
 * field list. */
static wf_mapped map_rich(fixture *fx, const char *mapping_json, const char *text, const char *html)
{
    wf_field_list l;
    char err[512] = "";
    assert_int_equal(wf_fields_parse(rich_fields_body, &l, err, sizeof err), WF_OK);
    char *path = unit_path(fx->dir, "rich_mapping.json");
    assert_int_equal(unit_write_file(path, mapping_json), 0);
    wf_mapping m;
    if (wf_mapping_load(path, &l, &m, err, sizeof err) != WF_OK) fail_msg("mapping: %s", err);
    static const char *const names[] = {"id", "text", "html"};
    const char *values[] = {"5", text, html};
    wf_submission sub = {0};
    sub.ncols = 3;
    sub.names = names;
    sub.values = values;
    sub.id = "5";
    wf_mapped out;
    assert_int_equal(wf_map_submission(&m, &l, &sub, test_key, NULL, &out), WF_OK);
    wf_mapping_free(&m);
    wf_fields_free(&l);
    free(path);
    return out;
}

/* Every rich-text field holds an ADF document with the text literal in it;
 * a plain field keeps its string. */
static void test_rich_text_values_are_literal_documents(void **state)
{
    fixture *fx = *state;
    const char *hostile = "[~accountid:5b10] [x|http://evil.example] !http://e/p.png!\n{noformat}";
    wf_mapped m = map_rich(fx, "{\"fields\": {\"summary\": \"text\", \"environment\": \"text\","
                               " \"customfield_10060\": \"text\", \"customfield_10061\": \"text\"}}", hostile, NULL);
    assert_int_equal(m.nproblems, 0);
    assert_string_equal(value_of(&m, "summary")->valuestring, "[~accountid:5b10] [x|http://evil.example] !http://e/p.png! {noformat}");
    assert_string_equal(value_of(&m, "customfield_10061")->valuestring, hostile);
    assert_string_equal(plain_of(&m, "environment"), hostile);
    assert_string_equal(plain_of(&m, "customfield_10060"), hostile);
    char *json = cJSON_PrintUnformatted(value_of(&m, "customfield_10060"));
    assert_string_equal(json, "{\"type\":\"doc\",\"version\":1,\"content\":["
                              "{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":"
                              "\"[~accountid:5b10] [x|http://evil.example] !http://e/p.png!\"}]},"
                              "{\"type\":\"paragraph\",\"content\":[{\"type\":\"text\",\"text\":\"{noformat}\"}]}]}");
    free(json);
    /* The description is only the footer here: a rule, then the key. */
    assert_string_equal(plain_of(&m, "description"),
                        "----\nwf2jsm submission key: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    wf_mapped_free(&m);
}

/* An HTML column renders into rich text with its structure and into a plain
 * field as plain text; its markup never reaches either. */
static void test_html_column_renders_into_both_kinds_of_field(void **state)
{
    fixture *fx = *state;
    wf_mapped m = map_rich(fx, "{\"fields\": {\"summary\": \"html\", \"customfield_10060\": \"html\","
                               " \"customfield_10061\": \"html\"}, \"formats\": {\"html\": \"html\"}}",
                           NULL, "<p>Hello <b>you</b></p><script>evil()</script><p>Bye &amp; <a href=\"http://e\">go</a></p>");
    assert_string_equal(value_of(&m, "summary")->valuestring, "Hello you Bye & go (http://e)");
    assert_string_equal(value_of(&m, "customfield_10061")->valuestring, "Hello you\nBye & go (http://e)");
    assert_string_equal(plain_of(&m, "customfield_10060"), "Hello you\nBye & go (http://e)");
    const cJSON *bold = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(
        cJSON_GetObjectItem(value_of(&m, "customfield_10060"), "content"), 0), "content"), 1);
    assert_string_equal(cJSON_GetObjectItem(bold, "text")->valuestring, "you");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(bold, "marks"), 0), "type")->valuestring,
                        "strong");
    wf_mapped_free(&m);
    /* Markup that renders to nothing is an empty column. */
    m = map_rich(fx, "{\"fields\": {\"summary\": \"html\"}, \"formats\": {\"html\": \"html\"}}", NULL,
                 "<script>x</script><img src=y>");
    assert_null(value_of(&m, "summary"));
    assert_int_equal(m.nproblems, 1);
    assert_true(m.problems[0].required);
    wf_mapped_free(&m);
}

/* An operator's constant for a rich-text field is a string in the mapping
 * file; it is sent as a document, under its field's name. */
static void test_rich_text_constant_becomes_a_document(void **state)
{
    fixture *fx = *state;
    wf_mapped m = map_rich(fx, "{\"fields\": {\"summary\": \"text\"},"
                               " \"constants\": {\"customfield_10060\": \"Set by *ops*\\nline 2\","
                               " \"description\": \"From the web form\"}}", "S", NULL);
    char *json = cJSON_PrintUnformatted(m.values);
    assert_non_null(strstr(json, "\"customfield_10060\":{\"type\":\"doc\""));
    free(json);
    assert_string_equal(plain_of(&m, "customfield_10060"), "Set by *ops*\nline 2");
    assert_string_equal(plain_of(&m, "description"), "From the web form\n\n----\nwf2jsm submission key: "
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    wf_mapped_free(&m);
}

/* The key carried by a rich-text field (SYNC_KEY_FIELD) is a document too. */
static void test_key_in_rich_text_field_is_a_document(void **state)
{
    (void)state;
    static const char body[] =
        "{\"requestTypeFields\": ["
        " {\"fieldId\": \"summary\", \"name\": \"Summary\", \"jiraSchema\": {\"type\": \"string\", \"system\": \"summary\"}},"
        " {\"fieldId\": \"customfield_10099\", \"name\": \"Sync key\","
        "  \"jiraSchema\": {\"type\": \"string\", \"custom\": \"com.atlassian.jira.plugin.system.customfieldtypes:textarea\"}}]}";
    wf_field_list l;
    char err[256];
    assert_int_equal(wf_fields_parse(body, &l, err, sizeof err), WF_OK);
    wf_mapping_pair pair = {(char *)"summary", (char *)"c", WF_FORMAT_TEXT};
    wf_mapping m = {&pair, 1, NULL, NULL, NULL};
    static const char *const names[] = {"c"};
    const char *values[] = {"Hi"};
    wf_submission sub = {0};
    sub.ncols = 1;
    sub.names = names;
    sub.values = values;
    sub.id = "1";
    wf_mapped out;
    assert_int_equal(wf_map_submission(&m, &l, &sub, test_key, "customfield_10099", &out), WF_OK);
    assert_string_equal(plain_of(&out, "customfield_10099"), test_key);
    wf_mapped_free(&out);
    wf_fields_free(&l);
}

/* Rows delivered before rich text went as ADF stored the checksum of their
 * values with the description as one string ending in the footer. The same
 * row mapped now must give the same checksum, or `replay --update-changed`
 * would edit every old ticket. */
static void test_checksum_matches_the_plain_text_mapping_of_before(void **state)
{
    fixture *fx = *state;
    const char *body = "Dear team,\r\n\r\nmy laptop [~accountid:x] will not boot.\n  Thanks  ";
    wf_mapped m = map_one(&fx->fields, "description", body);
    char *now = wf_mapped_checksum(m.values);
    assert_non_null(now);
    /* What the mapper produced before, field for field, in the same order. */
    cJSON *before = cJSON_Duplicate(m.values, 1);
    char old_desc[512];
    snprintf(old_desc, sizeof old_desc, "%s\n\n----\nwf2jsm submission key: %s",
             "Dear team,\r\n\r\nmy laptop [~accountid:x] will not boot.\n  Thanks", test_key);
    cJSON_ReplaceItemInObjectCaseSensitive(before, "description", cJSON_CreateString(old_desc));
    char *old = wf_mapped_checksum(before);
    assert_string_equal(now, old);
    /* ...and a changed text changes it. */
    cJSON_ReplaceItemInObjectCaseSensitive(before, "description", cJSON_CreateString("other"));
    char *other = wf_mapped_checksum(before);
    assert_string_not_equal(now, other);
    free(now);
    free(old);
    free(other);
    cJSON_Delete(before);
    wf_mapped_free(&m);
}

/* A value too long for its field is cut with a notice naming the JSON
 * attachment; nothing is a problem for being long. */
static void test_long_values_say_they_were_shortened(void **state)
{
    fixture *fx = *state;
    size_t n = 40000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    wf_mapped m = map_rich(fx, "{\"fields\": {\"summary\": \"text\", \"customfield_10060\": \"text\","
                               " \"customfield_10061\": \"text\", \"description\": \"text\"}}", big, NULL);
    assert_int_equal(m.nproblems, 0);
    const char *sum = value_of(&m, "summary")->valuestring;
    assert_int_equal(strlen(sum), WF_SUMMARY_MAX_CHARS);
    assert_non_null(strstr(sum, "submission-5.json"));
    const char *shortf = value_of(&m, "customfield_10061")->valuestring;
    assert_int_equal(strlen(shortf), WF_TEXT_MAX_CHARS);
    assert_non_null(strstr(shortf, "[shortened by wf2jsm; full text in submission-5.json]"));
    for (int i = 0; i < 2; i++) {
        const char *fid = i ? "description" : "customfield_10060";
        const char *plain = plain_of(&m, fid);
        assert_true(wf_utf8_chars(plain) <= WF_TEXT_MAX_CHARS);
        assert_non_null(strstr(plain, "Jira's limit of 32,767 characters; the whole text is in the attachment submission-5.json"));
        assert_true(strspn(plain, "x") > 32000);
    }
    /* the description's footer still ends it */
    const char *d = plain_of(&m, "description");
    assert_string_equal(d + strlen(d) - strlen(test_key), test_key);
    wf_mapped_free(&m);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fields_parse, setup, teardown),
        cmocka_unit_test(test_fields_parse_rejects_other_bodies),
        cmocka_unit_test_setup_teardown(test_option_by_label_and_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_option_is_a_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_array_of_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels_from_column_and_key_labels, setup, teardown),
        cmocka_unit_test(test_key_field_carrier_without_labels),
        cmocka_unit_test_setup_teardown(test_labels_win_over_key_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_datetime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_one_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_cut_at_255_characters_not_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_column_leaves_optional_field_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required_field_with_null_is_a_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_required_unmapped_field_is_a_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_description_footer_carries_full_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_description_keeps_footer_within_limit, setup, teardown),
        cmocka_unit_test(test_rich_text_fields_are_known_by_schema),
        cmocka_unit_test_setup_teardown(test_rich_text_values_are_literal_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_html_column_renders_into_both_kinds_of_field, setup, teardown),
        cmocka_unit_test(test_key_in_rich_text_field_is_a_document),
        cmocka_unit_test_setup_teardown(test_rich_text_constant_becomes_a_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum_matches_the_plain_text_mapping_of_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_values_say_they_were_shortened, setup, teardown),
        cmocka_unit_test_setup_teardown(test_constants_and_drop_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mapping_load_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mapping_load_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mapping_load_missing_file, setup, teardown),
        cmocka_unit_test(test_mapping_check_columns),
        cmocka_unit_test_setup_teardown(test_mapping_propose_keeps_existing_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mapping_propose_without_file_and_with_a_bad_one, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
