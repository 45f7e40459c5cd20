/* manual_fixes.h: what happens when JSM refuses optional fields. Such a
 * field must not cost the whole ticket: it is dropped from the values sent,
 * and a manual-fix entry (ticket, field, value, JSM's reason) tells a person
 * to set it by hand. Used by the create step and by replay's edits. */
#ifndef WF_MANUAL_FIXES_H
#define WF_MANUAL_FIXES_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include "jira_fields.h"
#include "run.h"

/* JSM refused the fields in errors (its 400's per-field "errors" object).
 * When every one of them is optional (not summary, not labels), they are
 * removed from mapped, appended to dropped as {field, value, message}, and
 * true is returned; otherwise nothing changes and false is returned. Never
 * fails (an allocation failure leaves an entry out). */
bool wf_drop_rejected_optional(const wf_run *run, wf_mapped *mapped, const cJSON *errors, cJSON *dropped);

/* Records every entry of dropped as a manual fix of key/jsm_key and counts
 * it. Returns a tracker error (the run stopped, run->fatal set) or WF_OK. */
wf_err wf_record_manual_fixes(wf_run *run, const char *key, const char *jsm_key, const cJSON *dropped);

#endif
