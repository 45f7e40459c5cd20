/* submission.h: one webform row as the pipeline sees it.
 *
 * A plain value type shared by the modules along the pipeline. The strings
 * belong to whoever filled the struct (fetch_submissions points them into
 * its libpq result); nobody else frees them. */
#ifndef WF_SUBMISSION_H
#define WF_SUBMISSION_H

#include <stddef.h>
#include <stdint.h>

typedef struct wf_submission {
    size_t ncols;
    const char *const *names;   /* column names, in table order */
    const char *const *values;  /* text values; NULL is SQL NULL */
    const char *id;             /* the id column's text */
    const char *time_text;      /* the time column's text (ISO, UTC) */
    int64_t time_us;            /* the time column as microseconds since the epoch */
} wf_submission;

/* Returns the value of column name (NULL when absent or SQL NULL); *found
 * tells the two apart when not NULL. */
static inline const char *wf_submission_get(const wf_submission *s, const char *name, int *found)
{
    for (size_t i = 0; i < s->ncols; i++) {
        const char *a = s->names[i], *b = name;
        while (*a && *a == *b) { a++; b++; }
        if (*a == *b) {
            if (found) *found = 1;
            return s->values[i];
        }
    }
    if (found) *found = 0;
    return NULL;
}

#endif
