/* jira_fields.h: the request type's fields and the column -> field mapping.
 *
 * Turns a submission into JSM requestFieldValues, typed from each field's
 * jiraSchema and validValues: options become {"id": ...} matched by label
 * or value, numbers become JSON numbers, dates and date-times take Jira's
 * formats, a summary is one line of at most 255 characters, and a NULL
 * column leaves an optional field out. A value that cannot be converted is
 * not an error of the run: it becomes a problem of that submission, which
 * the caller resolves (drop an optional field, park on a required one).
 *
 * Mapping file (SYNC_FIELD_MAPPING), minimum form:
 *   {"fields": {"<JSM field id>": "<column name>", ...}}
 * and optionally "constants": {"<field id>": <JSON value sent as is>},
 * "templates": {"<field id>": "From {name} <{email}>:\n{message}"} (a field
 * composed from columns, see templates.h), "fallbacks": {"<field id>":
 * "Web form submission {id}"} (a template used when the field's value comes
 * out empty or does not fit, before the field is dropped or the row parked)
 * and "formats": {"<column name>": "text" | "html"} (default "text").
 *
 * Submitted text is shown, never obeyed (docs/untrusted-text.md): a
 * rich-text field (wf_field_is_rich_text) gets an ADF document whose text
 * nodes hold the text literally (rich_text.h), an HTML column is rendered by
 * html_text.h, and a value longer than its field allows is cut on a
 * character boundary with a notice naming submission-<id>.json, the
 * attachment that keeps the whole text. */
#ifndef WF_JIRA_FIELDS_H
#define WF_JIRA_FIELDS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include "errors.h"
#include "submission.h"

#define WF_SUMMARY_MAX_CHARS 255
#define WF_TEXT_MAX_CHARS 32767
#define WF_KEY_LABEL "wf2jsm"

typedef struct wf_field_def {
    char *id;
    char *name;
    bool required;
    char *type;       /* jiraSchema.type: string, number, date, datetime, option, array, ... */
    char *items;      /* jiraSchema.items for arrays, else NULL */
    char *system;     /* jiraSchema.system, else NULL */
    char *custom;     /* jiraSchema.custom, else NULL */
    size_t nvalid;
    char **valid_values;  /* validValues[].value */
    char **valid_labels;  /* validValues[].label */
} wf_field_def;

typedef struct wf_field_list {
    wf_field_def *fields;
    size_t n;
} wf_field_list;

/* How a column's text is read (the mapping file's "formats"). */
typedef enum { WF_FORMAT_TEXT = 0, WF_FORMAT_HTML = 1 } wf_text_format;

typedef struct wf_mapping_pair {
    char *field_id;
    char *column;
    wf_text_format format;
} wf_mapping_pair;

typedef struct wf_mapping {
    wf_mapping_pair *pairs;
    size_t n;
    cJSON *constants;  /* object or NULL */
    cJSON *templates;  /* object field id -> template string, or NULL */
    cJSON *fallbacks;  /* object field id -> template string, or NULL */
} wf_mapping;

/* How the submission's unique key travels with its ticket. */
typedef enum { WF_KEY_VIA_LABEL, WF_KEY_VIA_FIELD, WF_KEY_VIA_NOTHING } wf_key_carrier;

typedef struct wf_field_problem {
    char *field_id;
    char *value;        /* the offending text, may be NULL */
    char *message;
    bool required;
} wf_field_problem;

typedef struct wf_mapped {
    cJSON *values;                 /* requestFieldValues */
    wf_field_problem *problems;    /* fields left out because their value did not fit */
    size_t nproblems;
} wf_mapped;

/* Parses a getRequestTypeFields response body. Returns WF_ERR_JIRA_PROTOCOL
 * (errbuf says why) when it is not one. Free with wf_fields_free(). */
wf_err wf_fields_parse(const char *json, wf_field_list *out, char *errbuf, size_t errlen);
void wf_fields_free(wf_field_list *list);
const wf_field_def *wf_fields_find(const wf_field_list *list, const char *id);

/* Whether JSM renders f as rich text (system description or environment, a
 * custom textarea): its value then travels as an ADF document. */
bool wf_field_is_rich_text(const wf_field_def *f);

/* Which carrier the request type allows: the labels field, else key_field
 * (SYNC_KEY_FIELD) when it is one of the fields, else nothing. */
wf_key_carrier wf_fields_key_carrier(const wf_field_list *list, const char *key_field);

/* Loads and checks the mapping file against fields: an unknown field id is
 * WF_ERR_CONFIG naming it; a missing file is WF_ERR_CONFIG saying to run
 * `wf2jsm fields`; a "formats" entry that is not "text" or "html", or that
 * names a column no field maps, is WF_ERR_CONFIG naming it. Free with
 * wf_mapping_free(). */
wf_err wf_mapping_load(const char *path, const wf_field_list *fields, wf_mapping *out,
                       char *errbuf, size_t errlen);
void wf_mapping_free(wf_mapping *m);

/* Checks that every mapped column, and every column a template or fallback
 * names, is one of columns. WF_ERR_CONFIG names the first one that is not. */
wf_err wf_mapping_check_columns(const wf_mapping *m, const char *const *columns, size_t ncolumns,
                                char *errbuf, size_t errlen);

/* Maps sub to requestFieldValues, adding the key carrier (labels or
 * key_field) and the description footer. Rich-text fields hold ADF
 * documents (send them with isAdfRequest); every other value is plain JSON.
 * Returns WF_ERR_NOMEM only; value problems are reported in out->problems.
 * Free with wf_mapped_free(). */
wf_err wf_map_submission(const wf_mapping *m, const wf_field_list *fields, const wf_submission *sub,
                         const char *key, const char *key_field, wf_mapped *out);
void wf_mapped_free(wf_mapped *mapped);

/* The content checksum stored with a delivered submission: the hex SHA-256
 * of values as compact JSON (cJSON_PrintUnformatted), where every ADF
 * document counts as its plain text (wf_adf_plain). `status` recomputes it
 * from the source row to spot rows edited after delivery, so the delivery
 * and the check must share this one definition. Counting documents as text
 * keeps the checksums of rows delivered before rich-text fields went as ADF
 * (when they went as that very text) valid: see docs/untrusted-text.md.
 * Returns a string the caller frees, or NULL when out of memory or
 * libcrypto fails. */
char *wf_mapped_checksum(const cJSON *values);

/* Removes field_id from mapped->values (after JSM refused it). */
void wf_mapped_drop_field(wf_mapped *mapped, const char *field_id);

/* Builds the text of a mapping file: the pairs of existing_path (when it
 * exists and parses) are kept, and every other field whose id or name
 * matches a column (case and punctuation aside) is proposed. *json_out is
 * pretty-printed JSON (caller frees). *proposed counts new pairs. */
wf_err wf_mapping_propose(const wf_field_list *fields, const char *const *columns, size_t ncolumns,
                          const char *existing_path, char **json_out, int *proposed,
                          char *errbuf, size_t errlen);

/* The label carrying key: "wf2jsm-" and the first WF_KEY_LABEL_PREFIX_LEN
 * hex characters. */
void wf_key_label(const char *key, char *buf, size_t buflen);

#endif
