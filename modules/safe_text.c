/* safe_text.c: escaping of untrusted text for terminals and log lines. */
#include "safe_text.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (1-4), with its code point in
 * *cp, or 0 when p does not start one (overlong forms and surrogates
 * included: a terminal must not be handed what it might decode its own way). */
static size_t utf8_seq(const unsigned char *p, unsigned long *cp)
{
    unsigned char c = p[0];
    size_t n;
    unsigned long v, min;
    if (c < 0x80) { *cp = c; return 1; }
    if (c >= 0xC2 && c <= 0xDF) { n = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;   /* also stops at the NUL */
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

static int is_invisible_control(unsigned long cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
           cp == 0x2028 || cp == 0x2029;
}

/* The escape for the character at p, into esc; 0 when it prints as is.
 * *len receives the bytes the character takes in the input. */
static size_t escape_of(const unsigned char *p, unsigned flags, char *esc, size_t esclen, size_t *len)
{
    unsigned long cp = 0;
    size_t n = utf8_seq(p, &cp);
    *len = n ? n : 1;
    if (n == 0) return (size_t)snprintf(esc, esclen, "\\x%02X", p[0]);
    if (cp == '\n') return (size_t)snprintf(esc, esclen, "\\n");
    if (cp == '\r') return (size_t)snprintf(esc, esclen, "\\r");
    if (cp == '\t') return (size_t)snprintf(esc, esclen, "\\t");
    if (cp < 0x20 || cp == 0x7F) return (size_t)snprintf(esc, esclen, "\\x%02lX", cp);
    if (is_invisible_control(cp)) return (size_t)snprintf(esc, esclen, "\\u{%04lX}", cp);
    if ((flags & WF_SAFE_QUOTES) && (cp == '"' || cp == '\\')) return (size_t)snprintf(esc, esclen, "\\%c", (int)cp);
    return 0;
}

size_t wf_safe_text(const char *s, char *out, size_t outlen, unsigned flags)
{
    if (outlen == 0) return 0;
    if (!s) s = "-";
    size_t pos = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char esc[16];
        size_t len;
        size_t elen = escape_of(p, flags, esc, sizeof esc, &len);
        const char *from = elen ? esc : (const char *)p;
        size_t take = elen ? elen : len;
        if (pos + take + 1 > outlen) break;
        memcpy(out + pos, from, take);
        pos += take;
        p += len;
    }
    out[pos] = '\0';
    return pos;
}

const char *wf_safe(const char *s, char *buf, size_t buflen)
{
    wf_safe_text(s, buf, buflen, 0);
    return buf;
}

int wf_safe_text_needed(const char *s, unsigned flags)
{
    if (!s) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        char esc[16];
        size_t len;
        if (escape_of(p, flags, esc, sizeof esc, &len)) return 1;
        p += len;
    }
    return 0;
}
