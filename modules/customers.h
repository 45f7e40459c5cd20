/* customers.h: who reports each request: the submitter, as a JSM customer.
 *
 * With SYNC_CUSTOMER_EMAIL_COLUMN set, each submission's address is turned
 * into the accountId of a customer of the service desk, and the request is
 * raised on its behalf (raiseOnBehalfOf), so the submitter is notified and
 * can follow it in the portal, as with JSM's own email channel:
 *   1. the tracker's cache (address -> accountId), else
 *   2. the desk's customers (GET .../servicedesk/{id}/customer?query=),
 *      matched on the whole address ignoring case, else
 *   3. a new customer (POST /rest/servicedeskapi/customer; when JSM says an
 *      account exists for the address, GET /rest/api/3/user/search finds
 *      it), added to the desk (POST .../servicedesk/{id}/customer);
 * then the address is cached, so each address costs its look-ups once.
 *
 * An address that is not one, or a refusal (403: the account may not view,
 * create or add customers), is no error of the run: the request is still
 * created, reported by the job's account, and the caller lists a manual fix
 * naming the address and the reason. Creating a customer is not part of
 * the exactly-once protocol: it is found again by step 2 or 3 after a crash. */
#ifndef WF_CUSTOMERS_H
#define WF_CUSTOMERS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include "config.h"
#include "errors.h"
#include "jsm_client.h"
#include "log.h"
#include "submission.h"
#include "tracker.h"

/* The manual-fix entry's field name for a request not raised on behalf of
 * its submitter. */
#define WF_CUSTOMER_FIX_FIELD "raiseOnBehalfOf"

typedef struct wf_customer {
    char *address;      /* the submitted address, trimmed; NULL: none submitted (or the feature is off) */
    char *account_id;   /* raise on behalf of this accountId; NULL: the job's account reports */
    char *reason;       /* why the job's account reports although an address was given; else NULL */
} wf_customer;

/* Resolves sub's submitter into out (zeroed first; free with
 * wf_customer_free(), also on error). Returns WF_OK also when the job's
 * account must report (no address, invalid address, refusal: see
 * out->reason). Errors, with errbuf set: WF_ERR_CONFIG (the table has no
 * SYNC_CUSTOMER_EMAIL_COLUMN / SYNC_CUSTOMER_NAME_COLUMN column), the Jira
 * classes of wf_jsm_* (401, 404 desk, temporary, unreadable reply),
 * WF_ERR_TRACKER, WF_ERR_NOMEM. */
wf_err wf_customer_resolve(wf_jsm *jsm, wf_tracker *tracker, const wf_config *cfg, wf_log *log,
                           const wf_submission *sub, wf_customer *out, char *errbuf, size_t errlen);

/* Called after a create with c->account_id came back 400, with its
 * per-field errors (may be NULL) and its message: when JSM refused
 * raiseOnBehalfOf (its errors name it, or name no field at all), forgets the
 * cached account, clears c->account_id, sets c->reason and returns true:
 * the caller creates again as the job's account. Else returns false and
 * changes nothing. Never fails (a tracker error only keeps the cache entry,
 * which the next refusal tries to forget again). */
bool wf_customer_refused_by(wf_customer *c, wf_tracker *tracker, const wf_config *cfg, const cJSON *errors,
                            const char *message);

/* Appends c's manual-fix entry {"field", "value", "message"} to fixes when
 * c has a reason. Returns -1 when out of memory, else 0. */
int wf_customer_add_fix(const wf_customer *c, cJSON *fixes);

void wf_customer_free(wf_customer *c);

/* ---- pure helpers (exposed for the unit tests) --------------------------- */

/* Whether address looks deliverable: one '@', a non-empty local part, a
 * dotted domain, no spaces, control characters or <>()[],;:"\ characters,
 * at most 254 bytes. Deliberately simple: JSM is the judge of the rest. */
bool wf_customer_address_valid(const char *address);

/* The cache key of address: a copy, lower-cased (ASCII). NULL when out of
 * memory. Caller frees. */
char *wf_customer_address_key(const char *address);

/* The accountId of the user in users (an array of UserDTO or User) whose
 * emailAddress equals address ignoring case; NULL when none. Owned by users. */
const char *wf_customer_pick(const cJSON *users, const char *address);

#endif
