/* fuzz_text.c: the escaping of untrusted text for terminals and log lines,
 * a log line with such values, and the CSV and JSON attachments.
 * Input: split at NUL bytes into up to 8 column values (byte 0 picks the
 * output buffer size for the escaper).
 * Invariants: no crash or leak; escaped text holds no C0 control, DEL, C1
 * control or bidi control, is valid UTF-8 and fits its buffer; text that
 * needs no escaping is copied as is; the CSV reads back (RFC 4180) to every
 * value, a formula-like one with one leading apostrophe; the JSON reads back
 * to every value exactly. */
#include "fuzz_util.h"

#include <cjson/cJSON.h>
#include "../../modules/attachments.h"
#include "../../modules/log.h"
#include "../../modules/safe_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether s is valid UTF-8 without controls a terminal would obey. */
static int printable_utf8(const unsigned char *s)
{
    while (*s) {
        unsigned long cp;
        size_t n;
        if (*s < 0x80) { cp = *s; n = 1; }
        else if ((*s & 0xE0) == 0xC0) { cp = *s & 0x1F; n = 2; }
        else if ((*s & 0xF0) == 0xE0) { cp = *s & 0x0F; n = 3; }
        else if ((*s & 0xF8) == 0xF0) { cp = *s & 0x07; n = 4; }
        else return 0;
        for (size_t i = 1; i < n; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
            (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029)
            return 0;
        s += n;
    }
    return 1;
}

/* Reads one RFC 4180 field at *p into out (as long as the input). */
static int csv_field(const char **p, char *out)
{
    const char *s = *p;
    size_t len = 0;
    if (*s == '"') {
        for (s++;; s++) {
            if (!*s) return -1;
            if (*s == '"') {
                if (s[1] != '"') { s++; break; }
                s++;
            }
            out[len++] = *s;
        }
    } else {
        while (*s && *s != ',' && *s != '\r') {
            if (*s == '"') return -1;
            out[len++] = *s++;
        }
    }
    out[len] = '\0';
    *p = s;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t outlen = data[0];
    char *parts[8], *buf;
    size_t n = fuzz_split(data + 1, size - 1, parts, 8, &buf);

    for (size_t i = 0; i < n; i++) {
        for (unsigned flags = 0; flags <= WF_SAFE_QUOTES; flags += WF_SAFE_QUOTES) {
            size_t cap = outlen ? outlen : 4 * strlen(parts[i]) + 16;  /* 0: always big enough */
            char *out = malloc(cap);
            if (!out) abort();
            size_t w = wf_safe_text(parts[i], out, cap, flags);
            if (w >= cap || strlen(out) != w || !printable_utf8((const unsigned char *)out)) abort();
            if (!outlen && !wf_safe_text_needed(parts[i], flags) && strcmp(out, parts[i]) != 0) abort();
            free(out);
        }
    }
    wf_log *log = wf_log_open_null();
    if (log) {
        wf_log_add_secret(log, n > 1 ? parts[1] : NULL);
        wf_log_kv(log, "fuzz", "INFO", "a", parts[0], "b", n > 2 ? parts[2] : NULL, NULL);
        wf_log_close(log);
    }

    static const char *const names[] = {"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"};
    wf_submission sub = {.ncols = n, .names = names, .values = (const char *const *)parts, .id = parts[0]};
    wf_attachment att;
    if (wf_attachment_render(&sub, WF_ATTACH_CSV, &att) == WF_OK) {
        const char *p = att.data;
        char *field = malloc(att.len + 1);
        if (!field) abort();
        for (size_t row = 0; row < 2; row++) {
            for (size_t i = 0; i < n; i++) {
                if (i && *p++ != ',') abort();
                if (csv_field(&p, field) != 0) abort();
                const char *want = row == 0 ? names[i] : parts[i];
                const char *got = field;
                if (wf_csv_is_formula(want)) {
                    if (*got != '\'') abort();
                    got++;
                }
                if (strcmp(got, want) != 0) abort();
            }
            if (p[0] != '\r' || p[1] != '\n') abort();
            p += 2;
        }
        if (*p) abort();
        free(field);
        wf_attachment_free(&att);
    }
    if (wf_attachment_render(&sub, WF_ATTACH_JSON, &att) == WF_OK) {
        cJSON *obj = cJSON_Parse(att.data);
        if (!obj) abort();
        for (size_t i = 0; i < n; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, names[i]);
            if (!cJSON_IsString(v) || strcmp(v->valuestring, parts[i]) != 0) abort();
        }
        cJSON_Delete(obj);
        wf_attachment_free(&att);
    }
    free(buf);
    return 0;
}
