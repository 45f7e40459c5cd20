/* templates.h: field values composed from columns, for the mapping file's
 * "templates" and "fallbacks".
 *
 *   "From {full_name} <{email}>:\n{message}"
 *
 * {column} is replaced by the column's text (SQL NULL and a missing value
 * render empty); {{ and }} are a literal { and }. The template's own text is
 * the operator's; the column values are submitted text and are inserted
 * as they are, in one pass: a value containing "{email}" stays those seven
 * characters, it is never expanded. Whatever escaping submitted text gets
 * downstream (rich text, markup) applies to the rendered result as to any
 * column value. */
#ifndef WF_TEMPLATES_H
#define WF_TEMPLATES_H

#include <stddef.h>
#include "errors.h"
#include "submission.h"

/* Checks tmpl's syntax: every { opens a non-empty {column} or is doubled,
 * every } closes one or is doubled. Returns WF_ERR_CONFIG with errbuf
 * saying what is wrong and at which character, else WF_OK. */
wf_err wf_template_check(const char *tmpl, char *errbuf, size_t errlen);

/* Checks that every {column} of tmpl is one of columns. Returns
 * WF_ERR_CONFIG with the first unknown column's name in bad (or a syntax
 * error's text), else WF_OK. */
wf_err wf_template_check_columns(const char *tmpl, const char *const *columns, size_t ncolumns,
                                 char *bad, size_t badlen);

/* Renders tmpl with sub's values. Returns a string the caller frees, or
 * NULL when out of memory or tmpl does not pass wf_template_check(). */
char *wf_template_render(const char *tmpl, const wf_submission *sub);

#endif
