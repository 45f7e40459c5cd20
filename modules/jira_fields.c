/* jira_fields.c: typed mapping of columns to JSM request fields. */
#define _POSIX_C_SOURCE 200809L
#include "jira_fields.h"
#include "attachments.h"
#include "html_text.h"
#include "rich_text.h"
#include "templates.h"
#include "unique_key.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

void wf_key_label(const char *key, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%s-%.*s", WF_KEY_LABEL, WF_KEY_LABEL_PREFIX_LEN, key);
}

void wf_fields_free(wf_field_list *list)
{
    if (!list) return;
    for (size_t i = 0; i < list->n; i++) {
        wf_field_def *f = &list->fields[i];
        free(f->id); free(f->name); free(f->type); free(f->items); free(f->system); free(f->custom);
        for (size_t j = 0; j < f->nvalid; j++) { free(f->valid_values[j]); free(f->valid_labels[j]); }
        free(f->valid_values);
        free(f->valid_labels);
    }
    free(list->fields);
    list->fields = NULL;
    list->n = 0;
}

wf_err wf_fields_parse(const char *json, wf_field_list *out, char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof *out);
    cJSON *root = cJSON_Parse(json);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "requestTypeFields");
    if (!cJSON_IsArray(arr)) {
        snprintf(errbuf, errlen, "the request type's field list is not a getRequestTypeFields reply "
                 "(run `wf2jsm fields` to fetch it again)");
        cJSON_Delete(root);
        return WF_ERR_JIRA_PROTOCOL;
    }
    size_t n = (size_t)cJSON_GetArraySize(arr);
    out->fields = calloc(n ? n : 1, sizeof *out->fields);
    if (!out->fields) { cJSON_Delete(root); return WF_ERR_NOMEM; }
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        wf_field_def *f = &out->fields[out->n];
        f->id = dup_str(it, "fieldId");
        if (!f->id) continue;
        f->name = dup_str(it, "name");
        f->required = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "required"));
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(it, "jiraSchema");
        f->type = dup_str(schema, "type");
        f->items = dup_str(schema, "items");
        f->system = dup_str(schema, "system");
        f->custom = dup_str(schema, "custom");
        if (!f->type) f->type = strdup("string");
        const cJSON *valid = cJSON_GetObjectItemCaseSensitive(it, "validValues"), *v;
        size_t nv = (size_t)cJSON_GetArraySize(valid);
        if (nv) {
            f->valid_values = calloc(nv, sizeof *f->valid_values);
            f->valid_labels = calloc(nv, sizeof *f->valid_labels);
            cJSON_ArrayForEach(v, valid) {
                if (!f->valid_values || !f->valid_labels) break;
                f->valid_values[f->nvalid] = dup_str(v, "value");
                f->valid_labels[f->nvalid] = dup_str(v, "label");
                if (f->valid_values[f->nvalid]) f->nvalid++;
                else free(f->valid_labels[f->nvalid]);
            }
        }
        out->n++;
    }
    cJSON_Delete(root);
    return WF_OK;
}

const wf_field_def *wf_fields_find(const wf_field_list *list, const char *id)
{
    for (size_t i = 0; i < list->n; i++)
        if (strcmp(list->fields[i].id, id) == 0) return &list->fields[i];
    return NULL;
}

bool wf_field_is_rich_text(const wf_field_def *f)
{
    if (!f || (f->type && strcmp(f->type, "string") != 0)) return false;
    if (f->system) return strcmp(f->system, "description") == 0 || strcmp(f->system, "environment") == 0;
    if (f->custom) {
        const char *tail = strrchr(f->custom, ':');
        return strcmp(tail ? tail + 1 : f->custom, "textarea") == 0;
    }
    return strcmp(f->id, "description") == 0 || strcmp(f->id, "environment") == 0;
}

wf_key_carrier wf_fields_key_carrier(const wf_field_list *list, const char *key_field)
{
    if (wf_fields_find(list, "labels")) return WF_KEY_VIA_LABEL;
    if (key_field && wf_fields_find(list, key_field)) return WF_KEY_VIA_FIELD;
    return WF_KEY_VIA_NOTHING;
}

void wf_mapping_free(wf_mapping *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) { free(m->pairs[i].field_id); free(m->pairs[i].column); }
    free(m->pairs);
    cJSON_Delete(m->constants);
    cJSON_Delete(m->templates);
    cJSON_Delete(m->fallbacks);
    memset(m, 0, sizeof *m);
}

static char *read_file(const char *path, int *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) { *err = errno; return NULL; }
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(fp); *err = ENOMEM; return NULL; }
            buf = nb;
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(fp);
    if (!buf && !(buf = calloc(1, 1))) { *err = ENOMEM; return NULL; }
    buf[len] = '\0';
    return buf;
}

/* ---- templates and fallbacks (see templates.h) ---------------------------- */

static bool maps_column(const wf_mapping *m, const char *field_id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->pairs[i].field_id, field_id) == 0) return true;
    return false;
}

/* Loads the "templates" or "fallbacks" object of root into *section: every
 * key a field of the request type, every value a template that parses. A
 * field cannot be both mapped to a column and templated. */
static wf_err load_template_section(const cJSON *root, const char *name, const char *path,
                                    const wf_field_list *fields, const wf_mapping *m, cJSON **section,
                                    char *errbuf, size_t errlen)
{
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, name), *it;
    char why[256];
    if (!obj) return WF_OK;
    if (!cJSON_IsObject(obj)) {
        snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: \"%s\" must be an object of field id -> template text", path, name);
        return WF_ERR_CONFIG;
    }
    cJSON_ArrayForEach(it, obj) {
        if (!wf_fields_find(fields, it->string)) {
            snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: unknown field id '%s' in %s "
                     "(run `wf2jsm fields` to list the fields)", path, it->string, name);
            return WF_ERR_CONFIG;
        }
        if (!cJSON_IsString(it)) {
            snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: %s.%s must be a template string such as \"{subject}\"",
                     path, name, it->string);
            return WF_ERR_CONFIG;
        }
        if (wf_template_check(it->valuestring, why, sizeof why) != WF_OK) {
            snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: %s.%s: %s", path, name, it->string, why);
            return WF_ERR_CONFIG;
        }
        if (strcmp(name, "templates") == 0 && maps_column(m, it->string)) {
            snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: field %s is both mapped to a column in \"fields\" and "
                     "composed in \"templates\": keep one (a template can name the column: \"{column}\")", path, it->string);
            return WF_ERR_CONFIG;
        }
    }
    *section = cJSON_Duplicate(obj, 1);
    return *section ? WF_OK : WF_ERR_NOMEM;
}

/* The template or fallback text of field_id in section, or NULL. */
static const char *template_of(const cJSON *section, const char *field_id)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(section, field_id);
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* Every column the templates and fallbacks name is one of columns. */
static wf_err check_template_columns(const wf_mapping *m, const char *const *columns, size_t ncolumns,
                                     char *errbuf, size_t errlen)
{
    const cJSON *sections[2] = {m->templates, m->fallbacks}, *it;
    static const char *const names[2] = {"template", "fallback"};
    for (int s = 0; s < 2; s++) {
        cJSON_ArrayForEach(it, sections[s]) {
            char bad[128];
            if (wf_template_check_columns(it->valuestring, columns, ncolumns, bad, sizeof bad) != WF_OK) {
                snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING: the %s of field %s names column '%s', which the source "
                         "table does not have (write {{ and }} for literal braces)", names[s], it->string, bad);
                return WF_ERR_CONFIG;
            }
        }
    }
    return WF_OK;
}

wf_err wf_mapping_load(const char *path, const wf_field_list *fields, wf_mapping *out,
                       char *errbuf, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int e = 0;
    char *text = read_file(path, &e);
    if (!text) {
        snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s cannot be read: %s (run `wf2jsm fields` to write it)", path, strerror(e));
        return WF_ERR_CONFIG;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    wf_err rc = WF_ERR_CONFIG;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "fields"), *it;
    if (!cJSON_IsObject(map)) {
        snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s is not a mapping: expected {\"fields\": {\"<field id>\": \"<column>\"}}", path);
        goto done;
    }
    size_t n = (size_t)cJSON_GetArraySize(map);
    out->pairs = calloc(n ? n : 1, sizeof *out->pairs);
    if (!out->pairs) { rc = WF_ERR_NOMEM; goto done; }
    cJSON_ArrayForEach(it, map) {
        if (!cJSON_IsString(it) || !*it->valuestring) {
            snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: field %s must map to a column name (a string)", path, it->string);
            goto done;
        }
        if (!wf_fields_find(fields, it->string)) {
            snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: unknown field id '%s' for this request type "
                     "(run `wf2jsm fields` to list the fields, then fix or remove it)", path, it->string);
            goto done;
        }
        out->pairs[out->n].field_id = strdup(it->string);
        out->pairs[out->n].column = strdup(it->valuestring);
        out->n++;
    }
    const cJSON *formats = cJSON_GetObjectItemCaseSensitive(root, "formats");
    if (formats) {
        if (!cJSON_IsObject(formats)) {
            snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: \"formats\" must be an object of column -> \"text\" or \"html\"", path);
            goto done;
        }
        cJSON_ArrayForEach(it, formats) {
            wf_text_format fmt;
            if (cJSON_IsString(it) && strcmp(it->valuestring, "text") == 0) fmt = WF_FORMAT_TEXT;
            else if (cJSON_IsString(it) && strcmp(it->valuestring, "html") == 0) fmt = WF_FORMAT_HTML;
            else {
                snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: formats: column '%s' must be \"text\" or \"html\"", path, it->string);
                goto done;
            }
            int used = 0;
            for (size_t i = 0; i < out->n; i++) {
                if (strcmp(out->pairs[i].column, it->string) != 0) continue;
                out->pairs[i].format = fmt;
                used = 1;
            }
            if (!used) {
                snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: formats names column '%s', which no field maps "
                         "(map it under \"fields\" or remove it from \"formats\")", path, it->string);
                goto done;
            }
        }
    }
    const cJSON *constants = cJSON_GetObjectItemCaseSensitive(root, "constants");
    if (constants) {
        if (!cJSON_IsObject(constants)) {
            snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: \"constants\" must be an object of field id -> value", path);
            goto done;
        }
        cJSON_ArrayForEach(it, constants) {
            if (!wf_fields_find(fields, it->string)) {
                snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s: unknown field id '%s' in constants", path, it->string);
                goto done;
            }
        }
        out->constants = cJSON_Duplicate(constants, 1);
    }
    if ((rc = load_template_section(root, "templates", path, fields, out, &out->templates, errbuf, errlen)) != WF_OK ||
        (rc = load_template_section(root, "fallbacks", path, fields, out, &out->fallbacks, errbuf, errlen)) != WF_OK)
        goto done;
    rc = WF_OK;
done:
    cJSON_Delete(root);
    if (rc != WF_OK) wf_mapping_free(out);
    return rc;
}

wf_err wf_mapping_check_columns(const wf_mapping *m, const char *const *columns, size_t ncolumns,
                                char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < m->n; i++) {
        size_t j = 0;
        while (j < ncolumns && strcmp(columns[j], m->pairs[i].column) != 0) j++;
        if (j == ncolumns) {
            snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING maps field %s to column '%s', which the source table does not have",
                     m->pairs[i].field_id, m->pairs[i].column);
            return WF_ERR_CONFIG;
        }
    }
    return check_template_columns(m, columns, ncolumns, errbuf, errlen);
}

/* ---- value conversion ------------------------------------------------ */

static char *trimmed_copy(const char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1])) len--;
    char *out = malloc(len + 1);
    if (!out) return NULL;
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

/* Cuts s to at most max characters (UTF-8 code points), never inside one. */
static void truncate_chars(char *s, size_t max)
{
    size_t chars = 0;
    for (char *p = s; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80) {
            if (chars == max) { *p = '\0'; return; }
            chars++;
        }
    }
}

/* A summary is one line: runs of whitespace, newlines included, become one
 * space. */
static void one_line(char *s)
{
    char *w = s;
    int space = 0;
    for (char *r = s; *r; r++) {
        if (isspace((unsigned char)*r)) { space = 1; continue; }
        if (space && w != s) *w++ = ' ';
        space = 0;
        *w++ = *r;
    }
    *w = '\0';
}

static const char *match_option(const wf_field_def *f, const char *text)
{
    for (size_t i = 0; i < f->nvalid; i++)
        if ((f->valid_labels[i] && strcasecmp(f->valid_labels[i], text) == 0) ||
            strcasecmp(f->valid_values[i], text) == 0)
            return f->valid_values[i];
    return NULL;
}

static int is_date(const char *s)
{
    return strlen(s) >= 10 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
           isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3]) && s[4] == '-' &&
           isdigit((unsigned char)s[5]) && isdigit((unsigned char)s[6]) && s[7] == '-' &&
           isdigit((unsigned char)s[8]) && isdigit((unsigned char)s[9]);
}

/* PostgreSQL's ISO output ("2026-11-22 10:00:00.5+00", "...+05:30", or no
 * zone for timestamp without time zone, taken as UTC) to Jira's
 * "2026-11-22T10:00:00.500+0000". */
static int to_jira_datetime(const char *s, char *out, size_t outlen)
{
    int y, mo, d, h, mi, sec;
    int n = 0;
    if (!is_date(s) || sscanf(s, "%4d-%2d-%2d%*1[ T]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return -1;
    const char *p = s + n;
    int millis = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3) millis = millis * 10 + (*p - '0');
        for (; digits < 3; digits++) millis *= 10;
    }
    char zone[8] = "+0000";
    if (*p == 'Z') p++;
    else if (*p == '+' || *p == '-') {
        char sign = *p++;
        int zh = 0, zm = 0;
        if (sscanf(p, "%2d", &zh) != 1) return -1;
        p += 2;
        if (*p == ':') p++;
        if (isdigit((unsigned char)*p) && sscanf(p, "%2d", &zm) == 1) p += 2;
        snprintf(zone, sizeof zone, "%c%02d%02d", sign, zh % 100, zm % 100);
    }
    if (*p) return -1;
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%s", y, mo, d, h, mi, sec, millis, zone);
    return 0;
}

/* Records that field f could not take value; what says why, after the
 * field's name ("expects a number"). */
static int add_problem(wf_mapped *out, const wf_field_def *f, const char *value, const char *what)
{
    wf_field_problem *np = realloc(out->problems, (out->nproblems + 1) * sizeof *np);
    if (!np) return -1;
    out->problems = np;
    char msg[400];
    snprintf(msg, sizeof msg, "%s %s", f->name ? f->name : f->id, what);
    wf_field_problem *p = &out->problems[out->nproblems++];
    p->field_id = strdup(f->id);
    p->value = value ? strdup(value) : NULL;
    p->message = strdup(msg);
    p->required = f->required;
    return 0;
}

/* Splits a comma-separated list, trimming each element, skipping empties. */
static size_t split_list(const char *text, char ***items)
{
    char *copy = strdup(text);
    size_t n = 0;
    *items = NULL;
    if (!copy) return 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",;", &save); tok; tok = strtok_r(NULL, ",;", &save)) {
        char *t = trimmed_copy(tok);
        if (!t || !*t) { free(t); continue; }
        char **ni = realloc(*items, (n + 1) * sizeof *ni);
        if (!ni) { free(t); break; }
        *items = ni;
        (*items)[n++] = t;
    }
    free(copy);
    return n;
}

static void free_list(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++) free(items[i]);
    free(items);
}

/* The notice that ends a shortened value: it says so and names the
 * attachment that keeps the whole text. */
static void shortened_notice(const char *sub_id, size_t limit, bool one_line_field, char *buf, size_t buflen)
{
    char name[96];
    wf_attachment_filename(sub_id, WF_ATTACH_JSON, name, sizeof name);
    if (one_line_field)
        snprintf(buf, buflen, " [shortened by wf2jsm; full text in %s]", name);
    else
        snprintf(buf, buflen, "[shortened by wf2jsm to Jira's limit of %zu,%03zu characters; the whole text is in "
                 "the attachment %s]", limit / 1000, limit % 1000, name);
}

/* Returns text itself when it has at most max characters, else a new string
 * (text is freed): text cut on a character boundary, then the one-line
 * notice, max characters in all. NULL when out of memory. */
static char *shorten_text(char *text, size_t max, const char *sub_id)
{
    if (wf_utf8_chars(text) <= max) return text;
    char notice[256];
    shortened_notice(sub_id, max, true, notice, sizeof notice);
    size_t nchars = wf_utf8_chars(notice);
    size_t keep = wf_utf8_prefix(text, nchars < max ? max - nchars : 0);
    char *out = malloc(keep + strlen(notice) + 1);
    if (out) {
        memcpy(out, text, keep);
        strcpy(out + keep, notice);
    }
    free(text);
    return out;
}

/* Cuts doc to max characters of plain text, ending it with the notice as a
 * paragraph of its own, when it is longer. Returns 0, or -1 when out of
 * memory. */
static int shorten_doc(cJSON *doc, size_t max, const char *sub_id)
{
    if (wf_adf_chars(doc) <= max) return 0;
    char notice[256];
    shortened_notice(sub_id, WF_TEXT_MAX_CHARS, false, notice, sizeof notice);
    size_t nchars = wf_utf8_chars(notice) + 1;   /* and the line break before it */
    wf_adf_truncate(doc, nchars < max ? max - nchars : 0);
    cJSON *para = wf_adf_add_block(doc, "paragraph", 0);
    return para && wf_adf_add_inline(para, notice, strlen(notice), WF_MARK_EM) == 0 ? 0 : -1;
}

/* The ADF document for text, or NULL when out of memory. */
static cJSON *text_doc(const char *text)
{
    cJSON *doc = wf_adf_doc();
    if (doc && *text && wf_adf_add_text(doc, text) != 0) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* Characters the description footer takes after a non-empty body. */
static size_t footer_chars(const char *key)
{
    return strlen("\n\n----\nwf2jsm submission key: ") + strlen(key);
}

/* Converts text (trimmed, non-empty) for field f. Returns the JSON value,
 * or NULL with a problem recorded (or on allocation failure). text may be
 * replaced (shortened); *textp is then updated, and the caller frees it. */
static cJSON *convert(const wf_field_def *f, char **textp, const char *sub_id, wf_mapped *out)
{
    char *text = *textp;
    const char *type = f->type;
    if (strcmp(type, "number") == 0) {
        char *end;
        errno = 0;
        double d = strtod(text, &end);
        if (errno || end == text || *end || !isfinite(d)) {
            add_problem(out, f, text, "expects a number");
            return NULL;
        }
        return cJSON_CreateNumber(d);
    }
    if (strcmp(type, "date") == 0) {
        if (!is_date(text) || (text[10] && text[10] != ' ' && text[10] != 'T')) {
            add_problem(out, f, text, "expects a date (YYYY-MM-DD)");
            return NULL;
        }
        text[10] = '\0';
        return cJSON_CreateString(text);
    }
    if (strcmp(type, "datetime") == 0) {
        char buf[64];
        if (to_jira_datetime(text, buf, sizeof buf) != 0) {
            add_problem(out, f, text, "expects a date and time (YYYY-MM-DD HH:MM:SS with an optional zone)");
            return NULL;
        }
        return cJSON_CreateString(buf);
    }
    if (strcmp(type, "option") == 0 || (strcmp(type, "priority") == 0 && f->nvalid)) {
        const char *id = match_option(f, text);
        if (!id) {
            char what[300];
            snprintf(what, sizeof what, "has no option '%s'", text);
            add_problem(out, f, text, what);
            return NULL;
        }
        cJSON *obj = cJSON_CreateObject();
        if (obj) cJSON_AddStringToObject(obj, "id", id);
        return obj;
    }
    if (strcmp(type, "array") == 0) {
        char **items = NULL;
        size_t n = split_list(text, &items);
        cJSON *arr = cJSON_CreateArray();
        int is_options = f->items && strcmp(f->items, "option") == 0;
        for (size_t i = 0; arr && i < n; i++) {
            if (is_options) {
                const char *id = match_option(f, items[i]);
                if (!id) {
                    char what[300];
                    snprintf(what, sizeof what, "has no option '%s'", items[i]);
                    add_problem(out, f, text, what);
                    cJSON_Delete(arr);
                    arr = NULL;
                    break;
                }
                cJSON *obj = cJSON_CreateObject();
                cJSON_AddStringToObject(obj, "id", id);
                cJSON_AddItemToArray(arr, obj);
            } else {
                /* Labels cannot hold spaces in Jira. */
                for (char *p = items[i]; *p; p++) if (isspace((unsigned char)*p)) *p = '_';
                truncate_chars(items[i], 255);
                cJSON_AddItemToArray(arr, cJSON_CreateString(items[i]));
            }
        }
        free_list(items, n);
        return arr;
    }
    if (strcmp(type, "user") == 0) {
        cJSON *obj = cJSON_CreateObject();
        if (obj) cJSON_AddStringToObject(obj, "accountId", text);
        return obj;
    }
    bool summary = strcmp(f->id, "summary") == 0;
    if (summary) one_line(text);
    /* A string field that is not rich text is a one-line text field. */
    *textp = text = shorten_text(text, summary ? WF_SUMMARY_MAX_CHARS : WF_TEXT_MAX_CHARS, sub_id);
    return text ? cJSON_CreateString(text) : NULL;
}

/* Drops the problems recorded from index from on. */
static void forget_problems(wf_mapped *out, size_t from)
{
    while (out->nproblems > from) {
        wf_field_problem *p = &out->problems[--out->nproblems];
        free(p->field_id);
        free(p->value);
        free(p->message);
    }
}

/* The value of text (trimmed, non-empty; may be replaced, the caller frees
 * *textp) for field f: for a rich-text field a literal document (doc, when
 * an HTML column was rendered into one already; owned) cut to Jira's limit
 * with a notice, else convert(). Returns NULL with a problem recorded when
 * the text does not fit the field; *nomem says when memory ran out. */
static cJSON *value_for(const wf_field_def *f, char **textp, cJSON *doc, const wf_submission *sub, const char *key,
                        wf_mapped *out, bool *nomem)
{
    *nomem = false;
    if (wf_field_is_rich_text(f)) {
        cJSON *value = doc ? doc : text_doc(*textp);
        size_t budget = WF_TEXT_MAX_CHARS - (strcmp(f->id, "description") == 0 ? footer_chars(key) : 0);
        if (value && shorten_doc(value, budget, sub->id) != 0) { cJSON_Delete(value); value = NULL; }
        *nomem = !value;
        return value;
    }
    cJSON_Delete(doc);
    cJSON *value = convert(f, textp, sub->id, out);
    *nomem = !*textp;
    return value;
}

/* Sets field f from text (owned, trimmed; NULL or empty: no value) or from
 * doc (an HTML column's rendering for a rich-text field, owned, may be
 * NULL). When the value is empty or does not convert and f has a fallback,
 * the rendered fallback is used instead; failing that an empty required
 * field is a problem, and a value that does not convert keeps its own
 * problem. Returns -1 when out of memory. */
static int map_text(const wf_mapping *m, const wf_field_def *f, const wf_submission *sub, const char *key, char *text,
                    cJSON *doc, wf_mapped *out)
{
    const char *fallback = template_of(m->fallbacks, f->id);
    size_t before = out->nproblems;
    bool nomem = false;
    bool empty = !text || !*text;
    cJSON *value = NULL;
    if (empty) cJSON_Delete(doc);
    else value = value_for(f, &text, doc, sub, key, out, &nomem);
    free(text);
    if (nomem) return -1;
    if (!value && fallback) {
        char *raw = wf_template_render(fallback, sub);
        char *alt = raw ? trimmed_copy(raw) : NULL;
        free(raw);
        if (!alt) return -1;
        wf_mapped scratch = {0};   /* the fallback's own problems are not the row's */
        int rc = 0;
        if (*alt) value = value_for(f, &alt, NULL, sub, key, &scratch, &nomem);
        if (nomem) { wf_mapped_free(&scratch); free(alt); return -1; }
        if (value) {
            forget_problems(out, before);
        } else if (empty && *alt) {
            char what[400];
            snprintf(what, sizeof what, "is empty and its fallback does not fit (%s)",
                     scratch.nproblems ? scratch.problems[0].message : "no value");
            rc = add_problem(out, f, alt, what);
        } else if (empty && f->required) {
            rc = add_problem(out, f, NULL, "is required but its column and its fallback are empty");
        }
        wf_mapped_free(&scratch);
        free(alt);
        if (rc != 0) return -1;
    } else if (!value && empty && f->required && add_problem(out, f, NULL, "is required but its column is empty") != 0) {
        return -1;
    }
    if (value) cJSON_AddItemToObject(out->values, f->id, value);
    return 0;
}

/* The fields composed by templates, and those that only have a fallback
 * (an unmapped field with a fallback always gets it). */
static int map_templates(const wf_mapping *m, const wf_field_list *fields, const wf_submission *sub, const char *key,
                         wf_mapped *out)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, m->templates) {
        const wf_field_def *f = wf_fields_find(fields, it->string);
        if (!f) continue;
        char *raw = wf_template_render(it->valuestring, sub);
        char *text = raw ? trimmed_copy(raw) : NULL;
        free(raw);
        if (!text || map_text(m, f, sub, key, text, NULL, out) != 0) return -1;
    }
    cJSON_ArrayForEach(it, m->fallbacks) {
        const wf_field_def *f = wf_fields_find(fields, it->string);
        if (f && !maps_column(m, f->id) && !template_of(m->templates, f->id) &&
            map_text(m, f, sub, key, NULL, NULL, out) != 0)
            return -1;
    }
    return 0;
}

/* Ends the description with the operator's footer: a rule and the
 * submission key. Its plain text is the "\n\n----\nwf2jsm submission key: "
 * line that descriptions carried before they went as ADF, so that their
 * checksums still match (wf_mapped_checksum). */
static int append_footer(cJSON *values, const wf_field_list *fields, const char *key, const char *sub_id)
{
    if (!wf_fields_find(fields, "description")) return 0;
    cJSON *doc = cJSON_GetObjectItemCaseSensitive(values, "description");
    if (!wf_adf_is_doc(doc)) {
        cJSON_DeleteItemFromObjectCaseSensitive(values, "description");
        if (!(doc = wf_adf_doc())) return -1;
        cJSON_AddItemToObject(values, "description", doc);
    }
    if (shorten_doc(doc, WF_TEXT_MAX_CHARS - footer_chars(key), sub_id) != 0) return -1;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(doc, "content");
    if (content && content->child && !wf_adf_add_block(doc, "paragraph", 0)) return -1;
    static const char label[] = "wf2jsm submission key: ";
    cJSON *para;
    if (wf_adf_add_rule(doc) != 0 || !(para = wf_adf_add_block(doc, "paragraph", 0)) ||
        wf_adf_add_inline(para, label, strlen(label), 0) != 0 || wf_adf_add_inline(para, key, strlen(key), WF_MARK_STRONG) != 0)
        return -1;
    return 0;
}

/* Puts item in old's place in obj, under old's name (cJSON's replace by
 * pointer keeps no name). Returns 0, or -1 when out of memory (item is then
 * deleted and obj unchanged). */
static int replace_member(cJSON *obj, cJSON *old, cJSON *item)
{
    item->string = old->string ? strdup(old->string) : NULL;
    if ((old->string && !item->string) || !cJSON_ReplaceItemViaPointer(obj, old, item)) {
        cJSON_Delete(item);
        return -1;
    }
    return 0;
}

/* A string in a rich-text field (a constant the operator wrote) becomes a
 * document too: with isAdfRequest Jira takes only documents there. */
static int strings_to_docs(cJSON *values, const wf_field_list *fields)
{
    for (cJSON *v = values->child; v; v = v->next) {
        if (!cJSON_IsString(v) || !wf_field_is_rich_text(wf_fields_find(fields, v->string))) continue;
        cJSON *doc = text_doc(v->valuestring);
        if (!doc || replace_member(values, v, doc) != 0) return -1;
        v = doc;
    }
    return 0;
}

static int add_key_carrier(cJSON *values, const wf_field_list *fields, const char *key, const char *key_field)
{
    switch (wf_fields_key_carrier(fields, key_field)) {
    case WF_KEY_VIA_LABEL: {
        char label[96];
        wf_key_label(key, label, sizeof label);
        cJSON *labels = cJSON_GetObjectItemCaseSensitive(values, "labels");
        if (!cJSON_IsArray(labels)) {
            cJSON_DeleteItemFromObjectCaseSensitive(values, "labels");
            labels = cJSON_AddArrayToObject(values, "labels");
            if (!labels) return -1;
        }
        cJSON_AddItemToArray(labels, cJSON_CreateString(WF_KEY_LABEL));
        cJSON_AddItemToArray(labels, cJSON_CreateString(label));
        return 0;
    }
    case WF_KEY_VIA_FIELD: {
        cJSON_DeleteItemFromObjectCaseSensitive(values, key_field);
        if (!wf_field_is_rich_text(wf_fields_find(fields, key_field)))
            return cJSON_AddStringToObject(values, key_field, key) ? 0 : -1;
        cJSON *doc = text_doc(key);
        return doc && cJSON_AddItemToObject(values, key_field, doc) ? 0 : -1;
    }
    case WF_KEY_VIA_NOTHING:
        break;
    }
    return 0;
}

wf_err wf_map_submission(const wf_mapping *m, const wf_field_list *fields, const wf_submission *sub,
                         const char *key, const char *key_field, wf_mapped *out)
{
    memset(out, 0, sizeof *out);
    out->values = cJSON_CreateObject();
    if (!out->values) return WF_ERR_NOMEM;
    for (size_t i = 0; i < m->n; i++) {
        const wf_field_def *f = wf_fields_find(fields, m->pairs[i].field_id);
        if (!f) continue;
        const char *raw = wf_submission_get(sub, m->pairs[i].column, NULL);
        bool rich = wf_field_is_rich_text(f);
        cJSON *doc = NULL;
        char *text = NULL;
        if (raw && m->pairs[i].format == WF_FORMAT_HTML) {
            if (!(doc = wf_adf_doc())) goto nomem;
            /* Markup libxml2 cannot read at all is shown as it is: as text. */
            if (wf_html_to_adf(raw, doc) != 0) {
                cJSON_Delete(doc);
                if (!(doc = wf_adf_doc()) || wf_adf_add_text(doc, raw) != 0) { cJSON_Delete(doc); goto nomem; }
            }
            char *plain = wf_adf_plain(doc);
            if (!plain) { cJSON_Delete(doc); goto nomem; }
            text = trimmed_copy(plain);
            free(plain);
            if (!rich || !text) { cJSON_Delete(doc); doc = NULL; }
            if (!text) goto nomem;
        } else if (raw && !(text = trimmed_copy(raw))) {
            goto nomem;
        }
        if (map_text(m, f, sub, key, text, doc, out) != 0) goto nomem;
    }
    if (map_templates(m, fields, sub, key, out) != 0) goto nomem;
    const cJSON *c;
    cJSON_ArrayForEach(c, m->constants) {
        if (!cJSON_GetObjectItemCaseSensitive(out->values, c->string))
            cJSON_AddItemToObject(out->values, c->string, cJSON_Duplicate(c, 1));
    }
    if (strings_to_docs(out->values, fields) != 0 || append_footer(out->values, fields, key, sub->id) != 0 ||
        add_key_carrier(out->values, fields, key, key_field) != 0)
        goto nomem;
    /* A required field that no column maps still has to be reported. */
    for (size_t i = 0; i < fields->n; i++) {
        const wf_field_def *f = &fields->fields[i];
        if (!f->required || cJSON_GetObjectItemCaseSensitive(out->values, f->id)) continue;
        int already = 0;
        for (size_t j = 0; j < out->nproblems; j++) already |= strcmp(out->problems[j].field_id, f->id) == 0;
        if (!already && add_problem(out, f, NULL, "is required but not mapped (add it to SYNC_FIELD_MAPPING)") != 0)
            goto nomem;
    }
    return WF_OK;
nomem:
    wf_mapped_free(out);
    return WF_ERR_NOMEM;
}

void wf_mapped_free(wf_mapped *mapped)
{
    if (!mapped) return;
    cJSON_Delete(mapped->values);
    for (size_t i = 0; i < mapped->nproblems; i++) {
        free(mapped->problems[i].field_id);
        free(mapped->problems[i].value);
        free(mapped->problems[i].message);
    }
    free(mapped->problems);
    memset(mapped, 0, sizeof *mapped);
}

char *wf_mapped_checksum(const cJSON *values)
{
    cJSON *plain = cJSON_Duplicate(values, 1);
    if (!plain) return NULL;
    for (cJSON *v = plain->child; v; v = v->next) {
        if (!wf_adf_is_doc(v)) continue;
        char *t = wf_adf_plain(v);
        cJSON *s = t ? cJSON_CreateString(t) : NULL;
        free(t);
        if (!s || replace_member(plain, v, s) != 0) { cJSON_Delete(plain); return NULL; }
        v = s;
    }
    char *text = cJSON_PrintUnformatted(plain);
    cJSON_Delete(plain);
    char *hex = text ? malloc(WF_KEY_HEX_LEN + 1) : NULL;
    if (hex && wf_sha256_hex(text, strlen(text), hex) != WF_OK) { free(hex); hex = NULL; }
    free(text);
    return hex;
}

void wf_mapped_drop_field(wf_mapped *mapped, const char *field_id)
{
    cJSON_DeleteItemFromObjectCaseSensitive(mapped->values, field_id);
}

/* "Contact e-mail", "contact_email" and "ContactEmail" compare equal. */
static int loose_equal(const char *a, const char *b)
{
    for (;;) {
        while (*a && !isalnum((unsigned char)*a)) a++;
        while (*b && !isalnum((unsigned char)*b)) b++;
        if (!*a || !*b) return !*a && !*b;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
        a++;
        b++;
    }
}

wf_err wf_mapping_propose(const wf_field_list *fields, const char *const *columns, size_t ncolumns,
                          const char *existing_path, char **json_out, int *proposed,
                          char *errbuf, size_t errlen)
{
    *json_out = NULL;
    *proposed = 0;
    cJSON *root = NULL;
    int e = 0;
    char *text = read_file(existing_path, &e);
    if (text) {
        root = cJSON_Parse(text);
        free(text);
        if (!root || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "fields"))) {
            snprintf(errbuf, errlen, "SYNC_FIELD_MAPPING=%s exists but is not a mapping file; fix or move it, then rerun",
                     existing_path);
            cJSON_Delete(root);
            return WF_ERR_CONFIG;
        }
    } else {
        root = cJSON_CreateObject();
        if (!root || !cJSON_AddObjectToObject(root, "fields")) { cJSON_Delete(root); return WF_ERR_NOMEM; }
    }
    cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "fields");
    for (size_t i = 0; i < fields->n; i++) {
        const wf_field_def *f = &fields->fields[i];
        if (cJSON_GetObjectItemCaseSensitive(map, f->id) || strcmp(f->id, "labels") == 0) continue;
        /* A templated field is composed, never mapped to a column too. */
        if (cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "templates"), f->id)) continue;
        for (size_t j = 0; j < ncolumns; j++) {
            if (loose_equal(columns[j], f->id) || (f->name && loose_equal(columns[j], f->name))) {
                cJSON_AddStringToObject(map, f->id, columns[j]);
                (*proposed)++;
                break;
            }
        }
    }
    *json_out = cJSON_Print(root);
    cJSON_Delete(root);
    return *json_out ? WF_OK : WF_ERR_NOMEM;
}
