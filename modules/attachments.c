/* attachments.c: JSON (through cJSON) and formula-safe RFC 4180 CSV renderings. */
#define _POSIX_C_SOURCE 200809L
#include "attachments.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void wf_attachment_filename(const char *id, wf_attach_format format, char *buf, size_t buflen)
{
    char safe[64];
    size_t n = 0;
    for (const char *p = id ? id : ""; *p && n < sizeof safe - 1; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        safe[n++] = ok ? c : '_';
    }
    safe[n] = '\0';
    snprintf(buf, buflen, "submission-%s.%s", safe, format == WF_ATTACH_JSON ? "json" : "csv");
}

static wf_err render_json(const wf_submission *sub, wf_attachment *out)
{
    cJSON *obj = cJSON_CreateObject();
    if (!obj) return WF_ERR_NOMEM;
    for (size_t i = 0; i < sub->ncols; i++) {
        cJSON *v = sub->values[i] ? cJSON_CreateString(sub->values[i]) : cJSON_CreateNull();
        if (!v) { cJSON_Delete(obj); return WF_ERR_NOMEM; }
        cJSON_AddItemToObject(obj, sub->names[i], v);
    }
    out->data = cJSON_Print(obj);
    cJSON_Delete(obj);
    if (!out->data) return WF_ERR_NOMEM;
    out->len = strlen(out->data);
    out->mime_type = "application/json";
    return WF_OK;
}

/* A negative number ("-12", "-0.5") is data a spreadsheet must keep as a
 * number, not a formula to defuse. */
static int plain_negative_number(const char *s)
{
    if (*s++ != '-' || !isdigit((unsigned char)*s)) return 0;
    while (isdigit((unsigned char)*s)) s++;
    if (*s == '.') {
        if (!isdigit((unsigned char)*++s)) return 0;
        while (isdigit((unsigned char)*s)) s++;
    }
    return *s == '\0';
}

int wf_csv_is_formula(const char *s)
{
    if (!s) return 0;
    switch (*s) {
    case '=': case '+': case '@': case '\t': case '\r': return 1;
    case '-': return !plain_negative_number(s);
    default: return 0;
    }
}

/* One cell, RFC 4180-quoted, neutralised as OWASP's CSV-injection guidance
 * says: a cell a spreadsheet would run as a formula (see wf_csv_is_formula)
 * gets a leading apostrophe, which spreadsheets show as text, and is
 * quoted. A semicolon is quoted too: spreadsheets set up for a comma
 * decimal separator split on it, and "a;=cmd" would start a new cell with
 * a formula. */
static void csv_field(FILE *fp, const char *s)
{
    if (!s) return; /* SQL NULL is an empty field */
    int formula = wf_csv_is_formula(s);
    if (!formula && !strpbrk(s, ",;\"\r\n")) { fputs(s, fp); return; }
    fputc('"', fp);
    if (formula) fputc('\'', fp);
    for (; *s; s++) {
        if (*s == '"') fputc('"', fp);
        fputc(*s, fp);
    }
    fputc('"', fp);
}

static wf_err render_csv(const wf_submission *sub, wf_attachment *out)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    if (!fp) return WF_ERR_NOMEM;
    for (size_t i = 0; i < sub->ncols; i++) {
        if (i) fputc(',', fp);
        csv_field(fp, sub->names[i]);
    }
    fputs("\r\n", fp);
    for (size_t i = 0; i < sub->ncols; i++) {
        if (i) fputc(',', fp);
        csv_field(fp, sub->values[i]);
    }
    fputs("\r\n", fp);
    if (fclose(fp) != 0) { free(buf); return WF_ERR_NOMEM; }
    out->data = buf;
    out->len = len;
    out->mime_type = "text/csv";
    return WF_OK;
}

wf_err wf_attachment_render(const wf_submission *sub, wf_attach_format format, wf_attachment *out)
{
    memset(out, 0, sizeof *out);
    wf_attachment_filename(sub->id, format, out->filename, sizeof out->filename);
    return format == WF_ATTACH_JSON ? render_json(sub, out) : render_csv(sub, out);
}

void wf_attachment_free(wf_attachment *att)
{
    if (!att) return;
    free(att->data);
    att->data = NULL;
    att->len = 0;
}
