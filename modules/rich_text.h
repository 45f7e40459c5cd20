/* rich_text.h: Atlassian Document Format (ADF) built from untrusted text.
 *
 * JSM renders the description and every multi-line text field as rich text.
 * Sent as a string, such a field is read as Jira wiki markup, so that text a
 * stranger typed into a web form becomes mentions ([~accountid:...]), links
 * whose text hides their target ([text|http://...]), remote images
 * (!http://...!), macros ({color}, {noformat}) and formatting. Sent as ADF
 * (with isAdfRequest on the create), the same text sits in text nodes, which
 * Jira shows character for character and never parses: nothing in them can
 * become markup, whatever they hold. See docs/untrusted-text.md.
 *
 * The documents built here are flat: a list of paragraphs, headings and
 * rules; inline content is text nodes (optionally with the strong or em mark,
 * which only the operator's footer and the rendering of an HTML column's own
 * <b>/<i> structure use) and hard breaks. Submitted text is never given a
 * link, mention, media or any other node that Jira would act on.
 *
 * The plain text of a document (wf_adf_plain) joins its blocks with "\n",
 * shows a rule as "----" and a hard break as "\n", and drops marks. For a
 * document built by wf_adf_add_text() it gives back the text exactly; that
 * is what the content checksum and the length limits count. */
#ifndef WF_RICH_TEXT_H
#define WF_RICH_TEXT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

enum { WF_MARK_STRONG = 1 << 0, WF_MARK_EM = 1 << 1 };

/* A new empty document {"type":"doc","version":1,"content":[]}. Returns NULL
 * when out of memory. The caller deletes it with cJSON_Delete(). */
cJSON *wf_adf_doc(void);

/* Whether v is an ADF document (an object whose type is "doc"). */
bool wf_adf_is_doc(const cJSON *v);

/* Appends text as literal paragraphs, one per line ("\n"; a CR before it is
 * kept in the text, so that the plain text gives the input back). An empty
 * line is an empty paragraph. Returns 0, or -1 when out of memory (the
 * document may then hold part of the text). */
int wf_adf_add_text(cJSON *doc, const char *text);

/* Appends a block: type "paragraph" or "heading" (level 1-6, else ignored).
 * Returns the block (owned by doc), or NULL when out of memory. */
cJSON *wf_adf_add_block(cJSON *doc, const char *type, int level);

/* Appends a rule (a horizontal line). Returns 0, or -1 when out of memory. */
int wf_adf_add_rule(cJSON *doc);

/* Appends text with marks (WF_MARK_*) to block, merging it into the last
 * text node when that has the same marks. Empty text adds nothing. Returns
 * 0, or -1 when out of memory. */
int wf_adf_add_inline(cJSON *block, const char *text, size_t len, unsigned marks);

/* Appends a hard line break to block. Returns 0, or -1 when out of memory. */
int wf_adf_add_break(cJSON *block);

/* Removes trailing empty paragraphs (and a trailing hard break of the last
 * block), so that a document does not end in blank lines. */
void wf_adf_trim_end(cJSON *doc);

/* The plain text of doc (see above). Returns a string the caller frees, or
 * NULL when out of memory or doc is not a document. */
char *wf_adf_plain(const cJSON *doc);

/* Number of characters (UTF-8 code points) of the plain text of doc. */
size_t wf_adf_chars(const cJSON *doc);

/* Cuts doc so that its plain text has at most max characters, never inside
 * a character. Returns true when something was cut. Cannot fail. */
bool wf_adf_truncate(cJSON *doc, size_t max);

/* Number of UTF-8 code points of s (a byte that does not continue one
 * counts as one). */
size_t wf_utf8_chars(const char *s);

/* Byte offset in s after at most max code points. */
size_t wf_utf8_prefix(const char *s, size_t max);

#endif
