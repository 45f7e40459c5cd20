/* adf_text.h: plain text as an Atlassian Document (ADF), the only form in
 * which the platform API (v3) takes rich-text fields such as description. */
#ifndef WF_ADF_TEXT_H
#define WF_ADF_TEXT_H

#include <cjson/cJSON.h>

/* A "doc" node with one paragraph per non-empty line of text (ADF has no
 * empty text nodes, so blank lines only separate paragraphs). Returns NULL
 * when out of memory; the caller deletes the result. */
cJSON *wf_adf_from_text(const char *text);

#endif
