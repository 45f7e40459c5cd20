/* templates.c: parsing and rendering of {column} templates. */
#define _POSIX_C_SOURCE 200809L
#include "templates.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One piece of a template: literal text, or a column name. */
typedef int (*piece_fn)(void *ctx, bool is_column, const char *text, size_t len);

/* Walks tmpl, calling fn for each piece. Returns 0, -1 on a syntax error
 * (errbuf says which), or fn's non-zero result. */
static int scan(const char *tmpl, piece_fn fn, void *ctx, char *errbuf, size_t errlen)
{
    const char *p = tmpl, *lit = tmpl;
    int rc;
    while (*p) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            /* The literal so far plus one brace, then skip the second. */
            if ((rc = fn(ctx, false, lit, (size_t)(p - lit) + 1)) != 0) return rc;
            p += 2;
            lit = p;
        } else if (*p == '}') {
            if (errbuf) snprintf(errbuf, errlen, "a '}' at character %zu closes nothing (write }} for a literal brace)",
                                 (size_t)(p - tmpl) + 1);
            return -1;
        } else if (*p == '{') {
            const char *name = p + 1;
            size_t len = strcspn(name, "{}");
            if (name[len] != '}') {
                if (errbuf) snprintf(errbuf, errlen, "the '{' at character %zu is not closed by '}' "
                                     "(write {{ for a literal brace)", (size_t)(p - tmpl) + 1);
                return -1;
            }
            if (len == 0) {
                if (errbuf) snprintf(errbuf, errlen, "'{}' at character %zu names no column", (size_t)(p - tmpl) + 1);
                return -1;
            }
            if (p > lit && (rc = fn(ctx, false, lit, (size_t)(p - lit))) != 0) return rc;
            if ((rc = fn(ctx, true, name, len)) != 0) return rc;
            p = name + len + 1;
            lit = p;
        } else {
            p++;
        }
    }
    if (p > lit && (rc = fn(ctx, false, lit, (size_t)(p - lit))) != 0) return rc;
    return 0;
}

static int accept_piece(void *ctx, bool is_column, const char *text, size_t len)
{
    (void)ctx; (void)is_column; (void)text; (void)len;
    return 0;
}

wf_err wf_template_check(const char *tmpl, char *errbuf, size_t errlen)
{
    return scan(tmpl, accept_piece, NULL, errbuf, errlen) == 0 ? WF_OK : WF_ERR_CONFIG;
}

typedef struct {
    const char *const *columns;
    size_t ncolumns;
    char *bad;
    size_t badlen;
} column_check;

static int check_piece(void *ctx, bool is_column, const char *text, size_t len)
{
    column_check *cc = ctx;
    if (!is_column) return 0;
    for (size_t i = 0; i < cc->ncolumns; i++)
        if (strlen(cc->columns[i]) == len && memcmp(cc->columns[i], text, len) == 0) return 0;
    snprintf(cc->bad, cc->badlen, "%.*s", (int)len, text);
    return 1;
}

wf_err wf_template_check_columns(const char *tmpl, const char *const *columns, size_t ncolumns,
                                 char *bad, size_t badlen)
{
    column_check cc = {columns, ncolumns, bad, badlen};
    return scan(tmpl, check_piece, &cc, bad, badlen) == 0 ? WF_OK : WF_ERR_CONFIG;
}

typedef struct {
    const wf_submission *sub;
    char *buf;
    size_t len, cap;
} renderer;

static int append(renderer *r, const char *text, size_t len)
{
    if (r->len + len + 1 > r->cap) {
        size_t cap = (r->len + len + 1) * 2;
        char *nb = realloc(r->buf, cap);
        if (!nb) return 1;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, text, len);
    r->len += len;
    r->buf[r->len] = '\0';
    return 0;
}

static int render_piece(void *ctx, bool is_column, const char *text, size_t len)
{
    renderer *r = ctx;
    if (!is_column) return append(r, text, len);
    char *name = strndup(text, len);
    if (!name) return 1;
    const char *value = wf_submission_get(r->sub, name, NULL);
    free(name);
    return value ? append(r, value, strlen(value)) : 0;
}

char *wf_template_render(const char *tmpl, const wf_submission *sub)
{
    renderer r = {.sub = sub};
    /* An empty result is still a string, not an error. */
    if (append(&r, "", 0) != 0 || scan(tmpl, render_piece, &r, NULL, 0) != 0) {
        free(r.buf);
        return NULL;
    }
    return r.buf;
}
