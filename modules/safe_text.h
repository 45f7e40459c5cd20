/* safe_text.h: untrusted text made safe to print on a terminal or in a log line.
 *
 * A submission and a Jira answer may hold anything: an ESC sequence that a
 * terminal tailing the log would obey (recolour, retitle, move the cursor,
 * hide text), a newline that forges a second log line, a carriage return
 * that overwrites the start of the line, a bidi override that reorders what
 * the operator reads. Every such value goes through wf_safe_text() before it
 * is printed or logged; it then holds printable characters only:
 *   \n \r \t         for newline, carriage return and tab
 *   \xNN             for any other C0 control, DEL and every byte that is
 *                    not part of valid UTF-8
 *   \u{NNNN}         for the C1 controls (U+0080-U+009F, which some
 *                    terminals obey as ESC sequences), the bidi controls
 *                    (U+202A-U+202E, U+2066-U+2069), U+2028/U+2029
 * Everything else, letters of any script and emoji included, is copied as
 * is. The function only ever shortens at a whole escape or character. */
#ifndef WF_SAFE_TEXT_H
#define WF_SAFE_TEXT_H

#include <stddef.h>

enum {
    /* Also escape '"' and '\\' (as \" and \\), for values quoted in a
     * key="value" log line, so that the quote cannot end the value early. */
    WF_SAFE_QUOTES = 1 << 0,
};

/* Writes the safe form of s (NULL prints as "-") into out, always
 * NUL-terminated when outlen > 0, cut at a whole escape or character when it
 * does not fit. Returns the number of bytes written (without the NUL).
 * Cannot fail. */
size_t wf_safe_text(const char *s, char *out, size_t outlen, unsigned flags);

/* Convenience for printf arguments: wf_safe_text(s, buf, buflen, 0) and
 * returns buf. */
const char *wf_safe(const char *s, char *buf, size_t buflen);

/* Whether s would be changed by wf_safe_text(s, ..., flags) (ignoring the
 * length). Cannot fail. */
int wf_safe_text_needed(const char *s, unsigned flags);

#endif
