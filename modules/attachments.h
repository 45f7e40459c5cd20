/* attachments.h: the submission rendered as the files attached to its
 * request: submission-<id>.json (an object of column -> text or null) and
 * submission-<id>.csv (RFC 4180: a header row and one data row, CRLF line
 * ends, fields quoted when they hold a comma, semicolon, quote, CR or LF).
 *
 * The JSON holds every value exactly as the row has it. The CSV is made for
 * a spreadsheet, which runs a cell starting with = + - @ TAB or CR as a
 * formula (=HYPERLINK(...) sends data away, +1-555-0100 computes): such a
 * cell, unless it is a plain negative number, starts with an apostrophe and
 * is quoted, as OWASP's CSV-injection guidance says ('=HYPERLINK shows as
 * text). The apostrophe is the only change; the JSON has the exact value. */
#ifndef WF_ATTACHMENTS_H
#define WF_ATTACHMENTS_H

#include <stddef.h>
#include "errors.h"
#include "submission.h"

typedef enum { WF_ATTACH_JSON = 0, WF_ATTACH_CSV = 1, WF_ATTACH_NFORMATS = 2 } wf_attach_format;

typedef struct wf_attachment {
    char filename[96];        /* submission-<id>.<ext>, id reduced to [A-Za-z0-9._-] */
    const char *mime_type;    /* static */
    char *data;               /* owned, NUL-terminated */
    size_t len;
} wf_attachment;

/* Renders sub in format into *out. Returns WF_ERR_NOMEM on allocation
 * failure (then *out holds nothing to free). Free with wf_attachment_free(). */
wf_err wf_attachment_render(const wf_submission *sub, wf_attach_format format, wf_attachment *out);

/* Returns the file name the format gets for submission id, into buf. */
void wf_attachment_filename(const char *id, wf_attach_format format, char *buf, size_t buflen);

/* Whether a spreadsheet would run cell text s as a formula: it starts with
 * = + @ TAB or CR, or with - without being a plain negative number such as
 * -12 or -0.5. NULL is not. */
int wf_csv_is_formula(const char *s);

/* Frees out->data. Safe on a zeroed struct. */
void wf_attachment_free(wf_attachment *att);

#endif
