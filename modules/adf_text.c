/* adf_text.c: plain text as an Atlassian Document (see adf_text.h). */
#define _POSIX_C_SOURCE 200809L
#include "adf_text.h"

#include <stdlib.h>
#include <string.h>

cJSON *wf_adf_from_text(const char *text)
{
    cJSON *doc = cJSON_CreateObject(), *content;
    if (!doc) return NULL;
    cJSON_AddStringToObject(doc, "type", "doc");
    cJSON_AddNumberToObject(doc, "version", 1);
    content = cJSON_AddArrayToObject(doc, "content");
    for (const char *p = text; content && *p;) {
        size_t len = strcspn(p, "\n");
        if (len > 0) {
            char *line = strndup(p, len);
            cJSON *para = cJSON_CreateObject(), *node = cJSON_CreateObject(), *inner;
            if (line && para && node && (inner = cJSON_AddArrayToObject(para, "content"))) {
                cJSON_AddStringToObject(para, "type", "paragraph");
                cJSON_AddStringToObject(node, "type", "text");
                cJSON_AddStringToObject(node, "text", line);
                cJSON_AddItemToArray(inner, node);
                cJSON_AddItemToArray(content, para);
                node = para = NULL;
            }
            cJSON_Delete(node);
            cJSON_Delete(para);
            free(line);
        }
        p += len + (p[len] == '\n');
    }
    return doc;
}
