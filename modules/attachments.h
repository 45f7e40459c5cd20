/* attachments.h: the submission rendered as the files attached to its
 * request: submission-<id>.json (an object of column -> text or null) and
 * submission-<id>.csv (RFC 4180: a header row and one data row, CRLF line
 * ends, fields quoted when they hold a comma, quote, CR or LF). */
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

/* Frees out->data. Safe on a zeroed struct. */
void wf_attachment_free(wf_attachment *att);

#endif
