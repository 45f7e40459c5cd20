/* fuzz_mapping.c: the request type's field list, the mapping file, and the
 * mapping of a submission through them (typed values, rich text, HTML
 * columns, shortening, the footer and key carrier, the checksum, the mapping
 * proposal).
 * Input, split at NUL bytes: field list JSON (empty: a built-in one with
 * every kind of field), mapping file, then the values of columns a-f.
 * Invariants: no crash or leak; every text value fits its Jira limit; every
 * rich-text value is an ADF document with literal text nodes only. */
#include "fuzz_util.h"

#include "../../modules/jira_fields.h"
#include "../../modules/rich_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char DEFAULT_FIELDS[] =
    "{\"requestTypeFields\": ["
    "{\"fieldId\": \"summary\", \"name\": \"Summary\", \"required\": true, \"jiraSchema\": {\"type\": \"string\", \"system\": \"summary\"}},"
    "{\"fieldId\": \"description\", \"name\": \"Description\", \"jiraSchema\": {\"type\": \"string\", \"system\": \"description\"}},"
    "{\"fieldId\": \"customfield_1\", \"name\": \"Notes\", \"jiraSchema\": {\"type\": \"string\", \"custom\": \"com.atlassian.jira.plugin.system.customfieldtypes:textarea\"}},"
    "{\"fieldId\": \"customfield_2\", \"name\": \"Category\", \"jiraSchema\": {\"type\": \"option\"}, \"validValues\": [{\"value\": \"1\", \"label\": \"A\"}]},"
    "{\"fieldId\": \"customfield_3\", \"name\": \"Count\", \"jiraSchema\": {\"type\": \"number\"}},"
    "{\"fieldId\": \"duedate\", \"name\": \"Due\", \"jiraSchema\": {\"type\": \"date\"}},"
    "{\"fieldId\": \"customfield_4\", \"name\": \"At\", \"jiraSchema\": {\"type\": \"datetime\"}},"
    "{\"fieldId\": \"customfield_5\", \"name\": \"Tags\", \"jiraSchema\": {\"type\": \"array\", \"items\": \"option\"}, \"validValues\": [{\"value\": \"9\", \"label\": \"x\"}]},"
    "{\"fieldId\": \"customfield_6\", \"name\": \"Email\", \"jiraSchema\": {\"type\": \"string\", \"custom\": \"com.atlassian.jira.plugin.system.customfieldtypes:textfield\"}},"
    "{\"fieldId\": \"labels\", \"name\": \"Labels\", \"jiraSchema\": {\"type\": \"array\", \"items\": \"string\"}}]}";

static const char KEY[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* Whether every node of an ADF document is one rich_text.c builds. */
static int literal_doc(const cJSON *doc)
{
    const cJSON *block, *node, *mark;
    cJSON_ArrayForEach(block, cJSON_GetObjectItemCaseSensitive(doc, "content")) {
        const char *bt = cJSON_GetObjectItemCaseSensitive(block, "type")->valuestring;
        if (strcmp(bt, "paragraph") && strcmp(bt, "heading") && strcmp(bt, "rule")) return 0;
        cJSON_ArrayForEach(node, cJSON_GetObjectItemCaseSensitive(block, "content")) {
            const char *nt = cJSON_GetObjectItemCaseSensitive(node, "type")->valuestring;
            if (strcmp(nt, "hardBreak") == 0) continue;
            if (strcmp(nt, "text") != 0) return 0;
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(node, "text");
            if (!cJSON_IsString(t) || !t->valuestring[0]) return 0;
            cJSON_ArrayForEach(mark, cJSON_GetObjectItemCaseSensitive(node, "marks")) {
                const char *mt = cJSON_GetObjectItemCaseSensitive(mark, "type")->valuestring;
                if (strcmp(mt, "strong") && strcmp(mt, "em")) return 0;
            }
        }
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *parts[8], *buf;
    size_t n = fuzz_split(data, size, parts, 8, &buf);
    wf_field_list fields;
    char err[1024];
    if (wf_fields_parse(n > 0 && parts[0][0] ? parts[0] : DEFAULT_FIELDS, &fields, err, sizeof err) != WF_OK) {
        free(buf);
        return 0;
    }
    const char *path = fuzz_file((const uint8_t *)(n > 1 ? parts[1] : ""), n > 1 ? strlen(parts[1]) : 0, "map");
    static const char *const names[] = {"id", "a", "b", "c", "d", "e", "f"};
    const char *values[7] = {"17"};
    for (size_t i = 1; i < 7; i++) values[i] = n > i + 1 ? parts[i + 1] : NULL;

    wf_mapping m;
    if (wf_mapping_load(path, &fields, &m, err, sizeof err) == WF_OK) {
        wf_submission sub = {.ncols = 7, .names = names, .values = values, .id = "17"};
        wf_mapped out;
        if (wf_map_submission(&m, &fields, &sub, KEY, "customfield_6", &out) == WF_OK) {
            const cJSON *v;
            cJSON_ArrayForEach(v, out.values) {
                if (!v->string || !wf_fields_find(&fields, v->string)) abort();   /* every value under its field */
                /* Constants are the operator's, sent as written. */
                if (cJSON_GetObjectItemCaseSensitive(m.constants, v->string) && strcmp(v->string, "description") != 0)
                    continue;
                if (wf_adf_is_doc(v)) {
                    if (!literal_doc(v) || wf_adf_chars(v) > WF_TEXT_MAX_CHARS) abort();
                } else if (cJSON_IsString(v)) {
                    size_t max = strcmp(v->string, "summary") == 0 ? WF_SUMMARY_MAX_CHARS : WF_TEXT_MAX_CHARS;
                    if (wf_utf8_chars(v->valuestring) > max) abort();
                }
            }
            free(wf_mapped_checksum(out.values));
            wf_mapped_free(&out);
        }
        wf_mapping_check_columns(&m, names, 7, err, sizeof err);
        wf_mapping_free(&m);
    }
    char *proposal = NULL;
    int proposed = 0;
    if (wf_mapping_propose(&fields, names, 7, path, &proposal, &proposed, err, sizeof err) == WF_OK) free(proposal);
    wf_fields_free(&fields);
    free(buf);
    return 0;
}
