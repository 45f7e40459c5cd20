/* rich_text.c: literal Atlassian Document Format documents. */
#define _POSIX_C_SOURCE 200809L
#include "rich_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t wf_utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) n++;
    return n;
}

size_t wf_utf8_prefix(const char *s, size_t max)
{
    size_t chars = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (chars == max) return i;
            chars++;
        }
    }
    return i;
}

cJSON *wf_adf_doc(void)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc || !cJSON_AddStringToObject(doc, "type", "doc") || !cJSON_AddNumberToObject(doc, "version", 1) ||
        !cJSON_AddArrayToObject(doc, "content")) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

static const char *type_of(const cJSON *node)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(node, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

bool wf_adf_is_doc(const cJSON *v)
{
    return cJSON_IsObject(v) && strcmp(type_of(v), "doc") == 0;
}

static cJSON *content_of(const cJSON *node)
{
    cJSON *c = cJSON_GetObjectItemCaseSensitive(node, "content");
    return cJSON_IsArray(c) ? c : NULL;
}

cJSON *wf_adf_add_block(cJSON *doc, const char *type, int level)
{
    cJSON *content = content_of(doc);
    cJSON *block = content ? cJSON_CreateObject() : NULL;
    if (!block) return NULL;
    int ok = cJSON_AddStringToObject(block, "type", type) != NULL;
    if (ok && strcmp(type, "heading") == 0) {
        cJSON *attrs = cJSON_AddObjectToObject(block, "attrs");
        ok = attrs && cJSON_AddNumberToObject(attrs, "level", level < 1 ? 1 : level > 6 ? 6 : level);
    }
    ok = ok && cJSON_AddArrayToObject(block, "content");
    if (!ok) { cJSON_Delete(block); return NULL; }
    cJSON_AddItemToArray(content, block);
    return block;
}

int wf_adf_add_rule(cJSON *doc)
{
    cJSON *content = content_of(doc);
    cJSON *rule = content ? cJSON_CreateObject() : NULL;
    if (!rule || !cJSON_AddStringToObject(rule, "type", "rule")) { cJSON_Delete(rule); return -1; }
    cJSON_AddItemToArray(content, rule);
    return 0;
}

static unsigned marks_of(const cJSON *text_node)
{
    unsigned m = 0;
    const cJSON *mark;
    cJSON_ArrayForEach(mark, cJSON_GetObjectItemCaseSensitive(text_node, "marks")) {
        if (strcmp(type_of(mark), "strong") == 0) m |= WF_MARK_STRONG;
        else if (strcmp(type_of(mark), "em") == 0) m |= WF_MARK_EM;
    }
    return m;
}

static int add_mark(cJSON *marks, const char *type)
{
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddStringToObject(m, "type", type)) { cJSON_Delete(m); return -1; }
    cJSON_AddItemToArray(marks, m);
    return 0;
}

int wf_adf_add_inline(cJSON *block, const char *text, size_t len, unsigned marks)
{
    cJSON *content = content_of(block);
    if (!content) return -1;
    if (len == 0) return 0;
    /* cJSON keeps an array's last item as its first item's prev: O(1),
     * where counting would make a long block quadratic. */
    cJSON *last = content->child ? content->child->prev : NULL;
    if (last && strcmp(type_of(last), "text") == 0 && marks_of(last) == marks) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(last, "text");
        size_t old = strlen(t->valuestring);
        char *joined = malloc(old + len + 1);
        if (!joined) return -1;
        memcpy(joined, t->valuestring, old);
        memcpy(joined + old, text, len);
        joined[old + len] = '\0';
        cJSON *nt = cJSON_CreateString(joined);
        free(joined);
        if (!nt) return -1;
        cJSON_ReplaceItemInObjectCaseSensitive(last, "text", nt);
        return 0;
    }
    char *copy = strndup(text, len);
    cJSON *node = copy ? cJSON_CreateObject() : NULL;
    int ok = node && cJSON_AddStringToObject(node, "type", "text") && cJSON_AddStringToObject(node, "text", copy);
    if (ok && marks) {
        cJSON *arr = cJSON_AddArrayToObject(node, "marks");
        ok = arr && (!(marks & WF_MARK_STRONG) || add_mark(arr, "strong") == 0) &&
             (!(marks & WF_MARK_EM) || add_mark(arr, "em") == 0);
    }
    free(copy);
    if (!ok) { cJSON_Delete(node); return -1; }
    cJSON_AddItemToArray(content, node);
    return 0;
}

int wf_adf_add_break(cJSON *block)
{
    cJSON *content = content_of(block);
    cJSON *br = content ? cJSON_CreateObject() : NULL;
    if (!br || !cJSON_AddStringToObject(br, "type", "hardBreak")) { cJSON_Delete(br); return -1; }
    cJSON_AddItemToArray(content, br);
    return 0;
}

int wf_adf_add_text(cJSON *doc, const char *text)
{
    for (const char *p = text;;) {
        size_t len = strcspn(p, "\n");
        cJSON *para = wf_adf_add_block(doc, "paragraph", 0);
        if (!para || wf_adf_add_inline(para, p, len, 0) != 0) return -1;
        if (!p[len]) return 0;
        p += len + 1;
    }
}

void wf_adf_trim_end(cJSON *doc)
{
    cJSON *content = content_of(doc);
    if (!content) return;
    for (;;) {
        int n = cJSON_GetArraySize(content);
        cJSON *last = cJSON_GetArrayItem(content, n - 1);
        if (!last) return;
        const char *t = type_of(last);
        if (strcmp(t, "paragraph") != 0 && strcmp(t, "heading") != 0) return;
        cJSON *inl = content_of(last);
        int m = cJSON_GetArraySize(inl);
        cJSON *tail = cJSON_GetArrayItem(inl, m - 1);
        if (tail && strcmp(type_of(tail), "hardBreak") == 0) { cJSON_DeleteItemFromArray(inl, m - 1); continue; }
        if (m > 0) return;
        cJSON_DeleteItemFromArray(content, n - 1);
    }
}

/* Appends the plain text of one block to buf (grown as needed). */
typedef struct { char *s; size_t len, cap; bool failed; } strbuf;

static void sb_add(strbuf *b, const char *s, size_t len)
{
    if (b->failed) return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *ns = realloc(b->s, cap);
        if (!ns) { b->failed = true; return; }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, len);
    b->len += len;
    b->s[b->len] = '\0';
}

char *wf_adf_plain(const cJSON *doc)
{
    if (!wf_adf_is_doc(doc)) return NULL;
    strbuf b = {0};
    sb_add(&b, "", 0);
    const cJSON *block, *node;
    bool first = true;
    cJSON_ArrayForEach(block, content_of(doc)) {
        if (!first) sb_add(&b, "\n", 1);
        first = false;
        if (strcmp(type_of(block), "rule") == 0) { sb_add(&b, "----", 4); continue; }
        cJSON_ArrayForEach(node, content_of(block)) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(node, "text");
            if (strcmp(type_of(node), "hardBreak") == 0) sb_add(&b, "\n", 1);
            else if (cJSON_IsString(t)) sb_add(&b, t->valuestring, strlen(t->valuestring));
        }
    }
    if (b.failed) { free(b.s); return NULL; }
    return b.s;
}

size_t wf_adf_chars(const cJSON *doc)
{
    size_t n = 0;
    bool first = true;
    const cJSON *block, *node;
    cJSON_ArrayForEach(block, content_of(doc)) {
        n += first ? 0 : 1;
        first = false;
        if (strcmp(type_of(block), "rule") == 0) { n += 4; continue; }
        cJSON_ArrayForEach(node, content_of(block)) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(node, "text");
            if (strcmp(type_of(node), "hardBreak") == 0) n++;
            else if (cJSON_IsString(t)) n += wf_utf8_chars(t->valuestring);
        }
    }
    return n;
}

/* Deletes item and everything after it in array. */
static void delete_from(cJSON *array, cJSON *item)
{
    while (item) {
        cJSON *next = item->next;
        cJSON_Delete(cJSON_DetachItemViaPointer(array, item));
        item = next;
    }
}

bool wf_adf_truncate(cJSON *doc, size_t max)
{
    cJSON *blocks = content_of(doc);
    size_t used = 0;
    bool first = true;
    for (cJSON *block = blocks ? blocks->child : NULL; block; block = block->next) {
        if (!first) {
            if (used + 1 > max) { delete_from(blocks, block); return true; }
            used++;
        }
        first = false;
        if (strcmp(type_of(block), "rule") == 0) {
            if (used + 4 > max) { delete_from(blocks, block); return true; }
            used += 4;
            continue;
        }
        cJSON *inl = content_of(block);
        for (cJSON *node = inl ? inl->child : NULL; node; node = node->next) {
            cJSON *t = cJSON_GetObjectItemCaseSensitive(node, "text");
            if (strcmp(type_of(node), "hardBreak") == 0 || !cJSON_IsString(t)) {
                if (used + 1 > max) { delete_from(inl, node); delete_from(blocks, block->next); return true; }
                used++;
                continue;
            }
            size_t c = wf_utf8_chars(t->valuestring);
            if (used + c > max) {
                size_t keep = wf_utf8_prefix(t->valuestring, max - used);
                cJSON *rest = node->next;
                if (keep == 0) {
                    delete_from(inl, node);
                } else {
                    t->valuestring[keep] = '\0';   /* shortening in place keeps the allocation valid */
                    delete_from(inl, rest);
                }
                delete_from(blocks, block->next);
                return true;
            }
            used += c;
        }
    }
    return false;
}
