/* fuzz_html.c: an HTML column through libxml2 into ADF, and plain text into
 * ADF, with the plain-text view and shortening that limits and checksums
 * rely on.
 * Input: byte 0 picks a length limit, the rest is the HTML (or text).
 * Invariants: no crash or leak; the document holds only literal nodes
 * (paragraph, heading, rule, text with strong/em, hardBreak); its plain
 * text is what wf_adf_chars counts; after wf_adf_truncate(max) it has at
 * most max characters; text made into paragraphs reads back exactly. */
#include "fuzz_util.h"

#include "../../modules/html_text.h"
#include "../../modules/rich_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_literal(const cJSON *doc)
{
    const cJSON *block, *node, *mark;
    cJSON_ArrayForEach(block, cJSON_GetObjectItemCaseSensitive(doc, "content")) {
        const char *bt = cJSON_GetObjectItemCaseSensitive(block, "type")->valuestring;
        if (strcmp(bt, "paragraph") && strcmp(bt, "heading") && strcmp(bt, "rule")) abort();
        cJSON_ArrayForEach(node, cJSON_GetObjectItemCaseSensitive(block, "content")) {
            const char *nt = cJSON_GetObjectItemCaseSensitive(node, "type")->valuestring;
            if (strcmp(nt, "hardBreak") == 0) continue;
            if (strcmp(nt, "text") != 0) abort();
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(node, "text");
            if (!cJSON_IsString(t) || !t->valuestring[0]) abort();
            cJSON_ArrayForEach(mark, cJSON_GetObjectItemCaseSensitive(node, "marks")) {
                const char *mt = cJSON_GetObjectItemCaseSensitive(mark, "type")->valuestring;
                if (strcmp(mt, "strong") && strcmp(mt, "em")) abort();
            }
        }
    }
}

static void check_doc(cJSON *doc, size_t max)
{
    check_literal(doc);
    char *plain = wf_adf_plain(doc);
    if (!plain || wf_utf8_chars(plain) != wf_adf_chars(doc)) abort();
    free(plain);
    wf_adf_truncate(doc, max);
    if (wf_adf_chars(doc) > max) abort();
    check_literal(doc);
    char *json = cJSON_PrintUnformatted(doc);
    if (!json) abort();
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t max = data[0] * 7u;
    char *text = fuzz_cstr(data + 1, size - 1);

    cJSON *doc = wf_adf_doc();
    if (!doc) abort();
    if (wf_html_to_adf(text, doc) == 0) check_doc(doc, max);
    cJSON_Delete(doc);

    doc = wf_adf_doc();
    if (!doc || (*text && wf_adf_add_text(doc, text) != 0)) abort();
    char *plain = wf_adf_plain(doc);
    if (!plain || strcmp(plain, text) != 0) abort();   /* literal text reads back exactly */
    free(plain);
    check_doc(doc, max);
    cJSON_Delete(doc);
    free(text);
    return 0;
}
