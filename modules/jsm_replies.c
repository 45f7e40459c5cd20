/* jsm_replies.c: Jira's replies read defensively. */
#define _POSIX_C_SOURCE 200809L
#include "jsm_replies.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends text to msg at *pos, never past msglen. */
static void add_part(char *msg, size_t msglen, size_t *pos, const char *sep, const char *a, const char *b)
{
    if (*pos + 1 >= msglen) return;
    int w = snprintf(msg + *pos, msglen - *pos, "%s%s%s%s", *pos ? sep : "", a, b ? ": " : "", b ? b : "");
    if (w < 0) return;
    *pos += (size_t)w;
    if (*pos >= msglen) *pos = msglen - 1;
}

bool wf_reply_describe_error(const char *body, size_t len, char *msg, size_t msglen, cJSON **field_errors)
{
    *field_errors = NULL;
    if (msglen == 0) return false;
    msg[0] = '\0';
    cJSON *root = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        if (body && len) snprintf(msg, msglen, "%.*s", (int)(len < 200 ? len : 200), body);
        return false;
    }
    size_t pos = 0;
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(root, "errorMessage");
    if (cJSON_IsString(em)) add_part(msg, msglen, &pos, "; ", em->valuestring, NULL);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "errorMessages")) {
        if (cJSON_IsString(it)) add_part(msg, msglen, &pos, "; ", it->valuestring, NULL);
    }
    cJSON *errors = cJSON_GetObjectItemCaseSensitive(root, "errors");
    if (cJSON_IsObject(errors) && errors->child) {
        cJSON_ArrayForEach(it, errors) {
            if (cJSON_IsString(it) && it->string) add_part(msg, msglen, &pos, "; ", it->string, it->valuestring);
        }
        *field_errors = cJSON_DetachItemViaPointer(root, errors);
    }
    cJSON_Delete(root);
    return true;
}

static char *dup_string(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

wf_err wf_reply_created(const cJSON *reply, char **issue_key, char **issue_id)
{
    *issue_key = *issue_id = NULL;
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(reply, "issueKey");
    if (!cJSON_IsString(k) || !*k->valuestring) return WF_ERR_JIRA_PROTOCOL;
    if (!(*issue_key = strdup(k->valuestring))) return WF_ERR_NOMEM;
    *issue_id = dup_string(reply, "issueId");
    return WF_OK;
}

wf_err wf_reply_temporary_ids(const cJSON *reply, char *const *names, size_t n, char **ids, const char **missing)
{
    const cJSON *it;
    *missing = NULL;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(reply, "temporaryAttachments")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "fileName");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "temporaryAttachmentId");
        if (!cJSON_IsString(name) || !cJSON_IsString(id)) continue;
        for (size_t i = 0; i < n; i++) {
            if (!ids[i] && strcmp(names[i], name->valuestring) == 0) {
                if (!(ids[i] = strdup(id->valuestring))) return WF_ERR_NOMEM;
                break;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!ids[i]) {
            *missing = names[i];
            return WF_ERR_JIRA_PROTOCOL;
        }
    }
    return WF_OK;
}

wf_err wf_reply_attachment_page(const cJSON *page, char ***names, size_t *n, size_t *cap, long *count, bool *last)
{
    const cJSON *it, *values = cJSON_GetObjectItemCaseSensitive(page, "values");
    *count = 0;
    *last = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(page, "isLastPage"));
    if (!cJSON_IsArray(values)) return WF_ERR_JIRA_PROTOCOL;
    cJSON_ArrayForEach(it, values) {
        (*count)++;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(it, "filename");
        if (!cJSON_IsString(fn)) continue;
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 8;
            char **nn = realloc(*names, ncap * sizeof *nn);
            if (!nn) return WF_ERR_NOMEM;
            *names = nn;
            *cap = ncap;
        }
        if (!((*names)[*n] = strdup(fn->valuestring))) return WF_ERR_NOMEM;
        (*n)++;
    }
    return WF_OK;
}

wf_err wf_reply_search_page(cJSON *reply, cJSON *issues, char **next_token)
{
    *next_token = NULL;
    cJSON *list = cJSON_GetObjectItemCaseSensitive(reply, "issues");
    if (!cJSON_IsArray(list)) return WF_ERR_JIRA_PROTOCOL;
    while (list->child) cJSON_AddItemToArray(issues, cJSON_DetachItemViaPointer(list, list->child));
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(reply, "nextPageToken");
    bool last = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "isLast"));
    if (!last && cJSON_IsString(next) && !(*next_token = strdup(next->valuestring))) return WF_ERR_NOMEM;
    return WF_OK;
}
