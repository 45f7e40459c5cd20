/* fuzz_jsm_replies.c: every reading of a Jira answer: the request type's
 * field list, a create reply, temporary attachment ids, a page of
 * attachments, a search page, and an error body (which the operator sees).
 * Input: the reply body. Invariants: no crash or leak; the error text is
 * terminated within its buffer; a reply without what is needed is
 * WF_ERR_JIRA_PROTOCOL, never WF_OK with nothing in it. */
#include "fuzz_util.h"

#include "../../modules/jira_fields.h"
#include "../../modules/jsm_client.h"
#include "../../modules/jsm_replies.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Error bodies come as bytes, not strings; sizes of the message buffer
     * include the tiny ones. */
    static const size_t msg_sizes[] = {1, 2, 17, 700};
    for (size_t i = 0; i < sizeof msg_sizes / sizeof *msg_sizes; i++) {
        char msg[700];
        cJSON *fe = NULL;
        memset(msg, 'x', sizeof msg);
        wf_reply_describe_error((const char *)data, size, msg, msg_sizes[i], &fe);
        if (!memchr(msg, '\0', msg_sizes[i])) abort();
        cJSON_Delete(fe);
    }

    char *text = fuzz_cstr(data, size);
    wf_field_list fields;
    char err[512];
    if (wf_fields_parse(text, &fields, err, sizeof err) == WF_OK) wf_fields_free(&fields);

    cJSON *reply = cJSON_ParseWithLength((const char *)data, size);
    if (reply) {
        char *key = NULL, *id = NULL;
        wf_err rc = wf_reply_created(reply, &key, &id);
        if ((rc == WF_OK) != (key != NULL)) abort();
        free(key);
        free(id);

        char *files[2] = {(char *)"submission-1.json", (char *)"submission-1.csv"};
        char *ids[2] = {NULL, NULL};
        const char *missing = NULL;
        rc = wf_reply_temporary_ids(reply, files, 2, ids, &missing);
        if (rc == WF_OK && (!ids[0] || !ids[1])) abort();
        free(ids[0]);
        free(ids[1]);

        char **names = NULL;
        size_t n = 0, cap = 0;
        long count = 0;
        bool last = false;
        wf_reply_attachment_page(reply, &names, &n, &cap, &count, &last);
        if (n > (size_t)count) abort();
        wf_jsm_free_names(names, n);

        cJSON *issues = cJSON_CreateArray();
        char *token = NULL;
        rc = wf_reply_search_page(reply, issues, &token);
        if (rc == WF_OK && !cJSON_IsArray(issues)) abort();
        free(token);
        cJSON_Delete(issues);
        cJSON_Delete(reply);
    }
    free(text);
    return 0;
}
