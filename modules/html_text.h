/* html_text.h: an HTML column rendered as literal text with its structure.
 *
 * Some web forms keep a rich-text element as HTML. Shown as it is, an agent
 * reads raw tags; stripped by hand, the text keeps whatever a regular
 * expression missed. Here libxml2's HTML parser (error-recovering, the one
 * browsers' quirks were written down for) reads it, and the tree is walked
 * into an ADF document (rich_text.h):
 *   p, div and the other blocks    paragraphs
 *   h1-h6                          headings
 *   br / hr                        hard breaks / a rule
 *   b, strong / i, em              the strong / em marks
 *   ul, ol + li                    paragraphs starting "• " or "1. ", indented
 *                                  two spaces per nesting level
 *   table                          one paragraph per row, cells joined " | "
 *   pre                            whitespace and line breaks kept
 *   a href                         its text, then " (URL)" unless the text
 *                                  already is the URL: no link hides a target
 *   entities                       decoded by the parser
 * and dropped with everything inside them: script, style, iframe, frames,
 * img, picture, video, audio, svg, math, object, embed, form and its
 * controls, template, noscript, head; comments and processing instructions.
 * Every character that reaches the document is text in a text node. */
#ifndef WF_HTML_TEXT_H
#define WF_HTML_TEXT_H

#include <cjson/cJSON.h>

/* Appends the rendering of html (UTF-8, NUL-terminated; any bytes are
 * accepted, broken markup is recovered as browsers do) to doc. Returns 0,
 * or -1 when out of memory, when libxml2 could not build a tree at all, or
 * when the markup is nested deeper than libxml2 reads (256 levels), which
 * would lose the text below; the caller then shows html as literal text.
 * doc may hold part of the rendering after -1: start again from a new one. */
int wf_html_to_adf(const char *html, cJSON *doc);

/* Why libxml2 could not be loaded (naming the file and the Debian package),
 * or NULL when it loaded or was never needed. Static storage; never fails.
 * Without it wf_html_to_adf() returns -1 and HTML shows as typed. */
const char *wf_html_load_error(void);

#endif
