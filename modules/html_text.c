/* html_text.c: HTML to literal ADF through libxml2's HTML parser.
 *
 * libxml2 is loaded with dlopen() when the first HTML column is rendered:
 * linked, it would make every tick map it and what it needs (ICU's 30 MB of
 * data, libstdc++, liblzma), about 1.3 ms of a tick that has nothing to do,
 * the cost modules/curl_loader.c avoids for libcurl. Its headers give the
 * types; the few functions used are called through xml below. */
#define _POSIX_C_SOURCE 200809L
#include "html_text.h"
#include "rich_text.h"
#include "library_loader.h"

#include <dlfcn.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* libxml2's entry points, filled once by load_libxml2(). Process-wide by
 * nature (the library's own state is), written before the first use. */
static struct {
    bool tried, ok;
    wf_library library;
    htmlParserCtxtPtr (*new_ctxt)(void);
    htmlDocPtr (*ctxt_read_memory)(htmlParserCtxtPtr, const char *, int, const char *, const char *, int);
    xmlErrorPtr (*last_error)(void *);
    void (*free_ctxt)(htmlParserCtxtPtr);
    void (*free_doc)(xmlDocPtr);
    xmlChar *(*node_content)(const xmlNode *);
    xmlChar *(*get_prop)(const xmlNode *, const xmlChar *);
    xmlFreeFunc free_;
} xml = {.library = {.soname = "libxml2.so.2", .package = "libxml2"}};

#define XML_SYM(field, name) wf_library_symbol(&xml.library, h, name, &xml.field, sizeof xml.field)

static bool load_libxml2(void)
{
    if (xml.tried) return xml.ok;
    xml.tried = true;
    void *h = wf_library_open(&xml.library, RTLD_NOW | RTLD_LOCAL);
    if (!h) return false;
    /* xmlFree is a variable holding libxml2's deallocator. */
    xmlFreeFunc *free_var = NULL;
    xml.ok = XML_SYM(new_ctxt, "htmlNewParserCtxt") && XML_SYM(ctxt_read_memory, "htmlCtxtReadMemory") &&
             XML_SYM(last_error, "xmlCtxtGetLastError") && XML_SYM(free_ctxt, "htmlFreeParserCtxt") &&
             XML_SYM(free_doc, "xmlFreeDoc") && XML_SYM(node_content, "xmlNodeGetContent") &&
             XML_SYM(get_prop, "xmlGetProp") && wf_library_symbol(&xml.library, h, "xmlFree", &free_var, sizeof free_var) && free_var &&
             (xml.free_ = *free_var) != NULL;
    return xml.ok;
}

const char *wf_html_load_error(void)
{
    return xml.library.error[0] ? xml.library.error : NULL;
}

/* Deeper trees are flattened: their text still shows, without structure. */
#define MAX_DEPTH 200
#define MAX_LIST_DEPTH 16

typedef struct {
    cJSON *doc;
    cJSON *block;          /* the block inline content goes to; NULL: start one */
    const char *next_type; /* type of the block to start */
    int next_level;
    unsigned marks;
    bool pending_space;
    bool line_start;        /* nothing shown on this line yet: whitespace is dropped */
    unsigned pending_marks; /* the marks the pending space was seen under */
    int in_pre;
    int list_depth;
    bool list_ordered[MAX_LIST_DEPTH];
    int list_counter[MAX_LIST_DEPTH];
    /* Inline text waits here until its marks change or its block ends, so
     * that a block gets one text node per run of marks: appending word by
     * word to a growing node would take time quadratic in the text. */
    char *pend;
    size_t pend_len, pend_cap;
    unsigned pend_marks;
    int failed;
} walker;

static bool name_is(const xmlNode *n, const char *name)
{
    return n->name && strcasecmp((const char *)n->name, name) == 0;
}

static bool name_in(const xmlNode *n, const char *const *names)
{
    for (; *names; names++)
        if (name_is(n, *names)) return true;
    return false;
}

static const char *const DROPPED[] = {
    "script", "style", "iframe", "frame", "frameset", "noframes", "img", "picture", "video", "audio", "source",
    "track", "svg", "math", "canvas", "object", "embed", "applet", "param", "map", "area", "form", "input",
    "select", "option", "optgroup", "textarea", "button", "datalist", "output", "template", "noscript", "head",
    "title", "meta", "link", "base", NULL};

static const char *const BLOCKS[] = {
    "p", "div", "section", "article", "header", "footer", "main", "aside", "nav", "blockquote", "address",
    "figure", "figcaption", "dl", "dt", "dd", "center", "fieldset", "legend", "details", "summary", "body",
    "html", "caption", NULL};

/* Adds the waiting text to the current block. */
static void flush(walker *w)
{
    if (w->pend_len && w->block && wf_adf_add_inline(w->block, w->pend, w->pend_len, w->pend_marks) != 0)
        w->failed = 1;
    w->pend_len = 0;
}

static void end_block(walker *w)
{
    flush(w);
    w->block = NULL;
    w->next_type = "paragraph";
    w->next_level = 0;
    w->pending_space = false;
    w->line_start = true;
}

static cJSON *current_block(walker *w)
{
    if (!w->block) {
        w->block = wf_adf_add_block(w->doc, w->next_type, w->next_level);
        if (!w->block) w->failed = 1;
    }
    return w->block;
}

static void emit(walker *w, const char *text, size_t len, unsigned marks)
{
    if (!current_block(w) || len == 0) return;
    if (w->pend_len && marks != w->pend_marks) flush(w);
    if (w->pend_len + len + 1 > w->pend_cap) {
        size_t cap = (w->pend_len + len + 1) * 2;
        char *np = realloc(w->pend, cap);
        if (!np) { w->failed = 1; return; }
        w->pend = np;
        w->pend_cap = cap;
    }
    memcpy(w->pend + w->pend_len, text, len);
    w->pend_len += len;
    w->pend_marks = marks;
}

/* A hard break in the current block, after the text before it. */
static void add_break(walker *w)
{
    cJSON *b = current_block(w);
    flush(w);
    if (b && wf_adf_add_break(b) != 0) w->failed = 1;
}

static bool is_html_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Text as HTML lays it out: runs of whitespace are one space, none at the
 * start of a block; inside pre every character counts and a newline is a
 * hard break. */
static void add_text(walker *w, const char *s)
{
    while (*s && !w->failed) {
        if (w->in_pre) {
            size_t len = strcspn(s, "\n");
            if (len) { emit(w, s, len, w->marks); w->line_start = false; }
            s += len;
            if (*s == '\n') {
                add_break(w);
                w->line_start = true;
                s++;
            }
            continue;
        }
        if (is_html_space(*s)) {
            while (is_html_space(*s)) s++;
            if (!w->line_start && !w->pending_space) {
                w->pending_space = true;
                w->pending_marks = w->marks;
            }
            continue;
        }
        size_t len = 0;
        while (s[len] && !is_html_space(s[len])) len++;
        if (w->pending_space) emit(w, " ", 1, w->pending_marks);
        w->pending_space = false;
        emit(w, s, len, w->marks);
        w->line_start = false;
        s += len;
    }
}

static void walk(walker *w, xmlNode *node, int depth);

static void walk_children(walker *w, xmlNode *node, int depth)
{
    for (xmlNode *c = node->children; c && !w->failed; c = c->next) walk(w, c, depth + 1);
}

/* The text an element shows, for comparing a link's text with its target. */
static char *text_of(xmlNode *node)
{
    xmlChar *t = xml.node_content(node);
    if (!t) return NULL;
    char *s = (char *)t, *start = s;
    while (is_html_space(*start)) start++;
    size_t len = strlen(start);
    while (len && is_html_space(start[len - 1])) len--;
    char *out = strndup(start, len);
    xml.free_(t);
    return out;
}

static void walk_link(walker *w, xmlNode *node, int depth)
{
    walk_children(w, node, depth);
    xmlChar *href = xml.get_prop(node, (const xmlChar *)"href");
    if (!href) return;
    char *target = (char *)href;
    while (is_html_space(*target)) target++;
    size_t tlen = strlen(target);
    while (tlen && is_html_space(target[tlen - 1])) tlen--;
    char *shown = text_of(node);
    if (tlen && !(shown && strlen(shown) == tlen && strncmp(shown, target, tlen) == 0)) {
        if (!w->line_start) emit(w, " ", 1, 0);
        emit(w, "(", 1, 0);
        emit(w, target, tlen, 0);
        emit(w, ")", 1, 0);
        w->pending_space = false;
        w->line_start = false;
    }
    free(shown);
    xml.free_(href);
}

static void walk_list_item(walker *w, xmlNode *node, int depth)
{
    end_block(w);
    char prefix[64];
    size_t pos = 0;
    int level = w->list_depth > 0 ? w->list_depth : 1;
    for (int i = 1; i < level && pos + 2 < sizeof prefix; i++) { prefix[pos++] = ' '; prefix[pos++] = ' '; }
    if (w->list_depth > 0 && w->list_ordered[w->list_depth - 1])
        snprintf(prefix + pos, sizeof prefix - pos, "%d. ", ++w->list_counter[w->list_depth - 1]);
    else
        snprintf(prefix + pos, sizeof prefix - pos, "\xE2\x80\xA2 ");
    emit(w, prefix, strlen(prefix), 0);
    w->line_start = true;
    walk_children(w, node, depth);
    end_block(w);
}

static void walk_row(walker *w, xmlNode *row, int depth)
{
    end_block(w);
    int cells = 0;
    for (xmlNode *c = row->children; c && !w->failed; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && (name_is(c, "td") || name_is(c, "th"))) {
            if (cells++ > 0) emit(w, " | ", 3, 0);
            w->pending_space = false;
            w->line_start = true;
            unsigned saved = w->marks;
            if (name_is(c, "th")) w->marks |= WF_MARK_STRONG;
            walk_children(w, c, depth + 1);
            w->marks = saved;
            w->pending_space = false;
        } else {
            walk(w, c, depth + 1);
        }
    }
    end_block(w);
}

static void walk(walker *w, xmlNode *node, int depth)
{
    if (w->failed) return;
    if (node->type == XML_TEXT_NODE || node->type == XML_CDATA_SECTION_NODE) {
        if (node->content) add_text(w, (const char *)node->content);
        return;
    }
    if (node->type != XML_ELEMENT_NODE) {
        /* Comments, processing instructions, DTDs: not content. A document
         * node still holds the tree. */
        if (node->type == XML_DOCUMENT_NODE || node->type == XML_HTML_DOCUMENT_NODE) walk_children(w, node, depth);
        return;
    }
    if (name_in(node, DROPPED)) return;
    if (depth > MAX_DEPTH) {
        /* Too deep to walk on the stack: its text, literally, as one run. */
        xmlChar *t = xml.node_content(node);
        if (t) add_text(w, (const char *)t);
        xml.free_(t);
        return;
    }
    unsigned saved_marks = w->marks;
    if (name_is(node, "br")) {
        add_break(w);
        w->pending_space = false;
        w->line_start = true;
    } else if (name_is(node, "hr")) {
        end_block(w);
        if (wf_adf_add_rule(w->doc) != 0) w->failed = 1;
    } else if (node->name && strlen((const char *)node->name) == 2 && (node->name[0] == 'h' || node->name[0] == 'H') &&
               node->name[1] >= '1' && node->name[1] <= '6') {
        end_block(w);
        w->next_type = "heading";
        w->next_level = node->name[1] - '0';
        walk_children(w, node, depth);
        end_block(w);
    } else if (name_is(node, "ul") || name_is(node, "ol") || name_is(node, "menu")) {
        end_block(w);
        if (w->list_depth < MAX_LIST_DEPTH) {
            w->list_ordered[w->list_depth] = name_is(node, "ol");
            w->list_counter[w->list_depth] = 0;
            w->list_depth++;
            walk_children(w, node, depth);
            w->list_depth--;
        } else {
            walk_children(w, node, depth);
        }
        end_block(w);
    } else if (name_is(node, "li")) {
        walk_list_item(w, node, depth);
    } else if (name_is(node, "tr")) {
        walk_row(w, node, depth);
    } else if (name_is(node, "table") || name_is(node, "thead") || name_is(node, "tbody") || name_is(node, "tfoot")) {
        end_block(w);
        walk_children(w, node, depth);
        end_block(w);
    } else if (name_is(node, "pre")) {
        end_block(w);
        w->in_pre++;
        walk_children(w, node, depth);
        w->in_pre--;
        end_block(w);
    } else if (name_is(node, "a")) {
        walk_link(w, node, depth);
    } else if (name_in(node, BLOCKS)) {
        end_block(w);
        walk_children(w, node, depth);
        end_block(w);
    } else {
        if (name_is(node, "b") || name_is(node, "strong")) w->marks |= WF_MARK_STRONG;
        if (name_is(node, "i") || name_is(node, "em")) w->marks |= WF_MARK_EM;
        walk_children(w, node, depth);
    }
    w->marks = saved_marks;
}

/* libxml2 stops reading a document nested deeper than its limit and keeps
 * what it read so far; the rest would vanish without a word. Its last error
 * says so (it stops there, so no later error hides it): such a value is
 * then shown as it was typed instead. */
static int stopped_too_deep(htmlParserCtxtPtr ctxt)
{
    const xmlError *e = xml.last_error(ctxt);
    return e && e->code == XML_ERR_INTERNAL_ERROR && e->message && strstr(e->message, "depth");
}

int wf_html_to_adf(const char *html, cJSON *doc)
{
    size_t len = strlen(html);
    if (len > (size_t)0x7FFFFFFF) return -1;
    if (!load_libxml2()) return -1;
    htmlParserCtxtPtr ctxt = xml.new_ctxt();
    if (!ctxt) return -1;
    htmlDocPtr tree = xml.ctxt_read_memory(ctxt, html, (int)len, NULL, "UTF-8",
                                         HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                             HTML_PARSE_NONET | HTML_PARSE_COMPACT);
    int too_deep = stopped_too_deep(ctxt);
    xml.free_ctxt(ctxt);
    if (!tree || too_deep) {
        xml.free_doc(tree);
        return len == 0 ? 0 : -1;
    }
    walker w = {.doc = doc};
    end_block(&w);
    walk(&w, (xmlNode *)tree, 0);
    end_block(&w);
    free(w.pend);
    xml.free_doc(tree);
    wf_adf_trim_end(doc);
    return w.failed ? -1 : 0;
}
