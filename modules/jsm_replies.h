/* jsm_replies.h: reading what Jira answered, apart from how it was asked.
 *
 * Pure functions from a reply body (or its parsed JSON) to what wf2jsm needs
 * of it: the new request's key, the temporary attachment ids, a page of
 * attachment names or of search results, Jira's own words in an error body.
 * jsm_client.c sends the calls and hands each body here; the fuzz targets in
 * tests/fuzz/ hand them anything at all. A reply of the wrong shape is a
 * WF_ERR_JIRA_PROTOCOL, never a crash or a guess. */
#ifndef WF_JSM_REPLIES_H
#define WF_JSM_REPLIES_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include "errors.h"

/* Jira's own words from an error body of len bytes (JSM's errorMessage, the
 * platform's errorMessages, and "field: message" for each per-field error)
 * into msg, "; "-separated; a body that is not a JSON object gives its
 * first 200 bytes. *field_errors receives the "errors" object when it has
 * members (caller deletes), else NULL. Returns whether the body is a JSON
 * object (an answer Jira meant) at all. Cannot fail; msg is always
 * terminated. */
bool wf_reply_describe_error(const char *body, size_t len, char *msg, size_t msglen, cJSON **field_errors);

/* The created request's issueKey and issueId (caller frees; *issue_id may
 * be NULL). WF_ERR_JIRA_PROTOCOL when the reply has no issueKey (then both
 * are NULL), WF_ERR_NOMEM. */
wf_err wf_reply_created(const cJSON *reply, char **issue_key, char **issue_id);

/* Matches the temporaryAttachments of an attachTemporaryFile reply to the
 * uploaded file names: ids[i] receives the id for names[i] (caller frees
 * each; ids has n slots, NULL on entry). Returns WF_ERR_JIRA_PROTOCOL with
 * *missing set to the first name without an id, WF_ERR_NOMEM, else WF_OK. */
wf_err wf_reply_temporary_ids(const cJSON *reply, char *const *names, size_t n, char **ids, const char **missing);

/* Appends the file names of one page of a request's attachments to
 * *names (*n used, *cap allocated; free with wf_jsm_free_names()). *count
 * receives the number of entries on the page, *last whether it is the last
 * page. Returns WF_OK, WF_ERR_JIRA_PROTOCOL when the page has no values
 * array, or WF_ERR_NOMEM (*names then holds what it held, and maybe more). */
wf_err wf_reply_attachment_page(const cJSON *page, char ***names, size_t *n, size_t *cap, long *count, bool *last);

/* Moves the issues of one search/jql page from reply into issues (an
 * array) and sets *next_token (caller frees) when another page follows,
 * else NULL. WF_ERR_JIRA_PROTOCOL when the reply has no issues array,
 * WF_ERR_NOMEM. */
wf_err wf_reply_search_page(cJSON *reply, cJSON *issues, char **next_token);

#endif
