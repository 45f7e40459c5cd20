/* customers.c: finds or creates the JSM customer each request is raised on
 * behalf of. */
#define _POSIX_C_SOURCE 200809L
#include "customers.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MODULE "customers"
#define PAGE_LIMIT 50
/* A query on a whole address matches a handful of customers; these caps
 * only stop a misbehaving server from paging forever. */
#define MAX_PAGES 20

void wf_customer_free(wf_customer *c)
{
    if (!c) return;
    free(c->address);
    free(c->account_id);
    free(c->reason);
    memset(c, 0, sizeof *c);
}

bool wf_customer_address_valid(const char *address)
{
    static const char forbidden[] = "<>()[],;:\"\\";
    if (!address) return false;
    size_t len = strlen(address);
    const char *at = strchr(address, '@');
    if (len == 0 || len > 254 || !at || at == address || strchr(at + 1, '@')) return false;
    for (const unsigned char *p = (const unsigned char *)address; *p; p++)
        if (*p <= ' ' || *p == 0x7f || strchr(forbidden, *p)) return false;
    const char *domain = at + 1;
    const char *dot = strchr(domain, '.');
    size_t dlen = strlen(domain);
    /* a dotted domain with no empty label: "example.com", not ".com", "a." or "a..b" */
    return dot && dot != domain && domain[dlen - 1] != '.' && !strstr(domain, "..");
}

char *wf_customer_address_key(const char *address)
{
    char *key = strdup(address);
    if (key)
        for (char *p = key; *p; p++) *p = (char)tolower((unsigned char)*p);
    return key;
}

const char *wf_customer_pick(const cJSON *users, const char *address)
{
    const cJSON *u;
    cJSON_ArrayForEach(u, users) {
        const cJSON *mail = cJSON_GetObjectItemCaseSensitive(u, "emailAddress");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(u, "accountId");
        if (cJSON_IsString(mail) && cJSON_IsString(id) && *id->valuestring &&
            strcasecmp(mail->valuestring, address) == 0)
            return id->valuestring;
    }
    return NULL;
}

/* A copy of s without leading and trailing white space. */
static char *trimmed(const char *s)
{
    while (isspace((unsigned char)*s)) s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1])) len--;
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, s, len);
        out[len] = '\0';
    }
    return out;
}

static int set_reason(wf_customer *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int set_reason(wf_customer *c, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    free(c->reason);
    c->reason = strdup(text);
    return c->reason ? 0 : -1;
}

static bool refused(wf_err rc, wf_jsm *jsm)
{
    return rc == WF_ERR_JIRA_AUTH && wf_jsm_last_status(jsm) == 403;
}

/* Finds address among the desk's customers (all pages of the query).
 * *account_id is a copy or NULL. */
static wf_err find_on_desk(wf_jsm *jsm, const char *address, char **account_id)
{
    *account_id = NULL;
    long start = 0;
    for (int page_no = 0; page_no < MAX_PAGES; page_no++) {
        cJSON *page = NULL;
        wf_err rc = wf_jsm_get_desk_customers(jsm, address, start, PAGE_LIMIT, &page);
        if (rc != WF_OK) return rc;
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(page, "values");
        const char *id = wf_customer_pick(values, address);
        int count = cJSON_GetArraySize(values);
        bool last = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(page, "isLastPage"));
        if (id && !(*account_id = strdup(id))) rc = WF_ERR_NOMEM;
        cJSON_Delete(page);
        if (rc != WF_OK || *account_id || last || count == 0) return rc;
        start += count;
    }
    return WF_OK;
}

/* Finds the existing account of address through user search. *account_id
 * is a copy or NULL. A single result whose address is hidden by its
 * owner's privacy settings is taken: the query was the whole address. */
static wf_err find_user(wf_jsm *jsm, const char *address, char **account_id)
{
    *account_id = NULL;
    cJSON *users = NULL;
    wf_err rc = wf_jsm_search_users(jsm, address, 0, PAGE_LIMIT, &users);
    if (rc != WF_OK) return rc;
    const char *id = wf_customer_pick(users, address);
    if (!id && cJSON_GetArraySize(users) == 1) {
        const cJSON *only = cJSON_GetArrayItem(users, 0);
        const cJSON *mail = cJSON_GetObjectItemCaseSensitive(only, "emailAddress");
        const cJSON *aid = cJSON_GetObjectItemCaseSensitive(only, "accountId");
        if (!cJSON_IsString(mail) && cJSON_IsString(aid) && *aid->valuestring) id = aid->valuestring;
    }
    if (id && !(*account_id = strdup(id))) rc = WF_ERR_NOMEM;
    cJSON_Delete(users);
    return rc;
}

static wf_err jira_error(wf_err rc, wf_jsm *jsm, char *errbuf, size_t errlen)
{
    snprintf(errbuf, errlen, "%s", wf_jsm_last_error(jsm));
    return rc;
}

/* Creates the customer, or finds the account JSM says the address already
 * has. On a refusal c->reason is set and *account_id stays NULL. */
static wf_err create_or_find(wf_jsm *jsm, const wf_config *cfg, const wf_submission *sub, wf_customer *c,
                             char **account_id, bool *created, char *errbuf, size_t errlen)
{
    *account_id = NULL;
    *created = false;
    char *name = NULL;
    wf_err rc = WF_OK;
    if (cfg->customer_name_column) {
        int found = 0;
        const char *raw = wf_submission_get(sub, cfg->customer_name_column, &found);
        if (!found) {
            snprintf(errbuf, errlen, "SYNC_CUSTOMER_NAME_COLUMN=%s: the source table has no such column "
                     "(set it to the column holding the submitter's name, or unset it)", cfg->customer_name_column);
            return WF_ERR_CONFIG;
        }
        if (raw && !(name = trimmed(raw))) return WF_ERR_NOMEM;
    }
    cJSON *made = NULL;
    rc = wf_jsm_create_customer(jsm, c->address, name && *name ? name : c->address, &made);
    free(name);
    long status = wf_jsm_last_status(jsm);
    if (rc == WF_OK) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(made, "accountId");
        if (cJSON_IsString(id) && *id->valuestring) {
            *created = true;
            if (!(*account_id = strdup(id->valuestring))) rc = WF_ERR_NOMEM;
        } else {
            /* The customer may exist now; the next attempt finds it. */
            snprintf(errbuf, errlen, "create customer: HTTP %ld reply has no accountId", status);
            rc = WF_ERR_JIRA_PROTOCOL;
        }
        cJSON_Delete(made);
        return rc;
    }
    if (rc == WF_ERR_JIRA_REJECTED && (status == 409 || (status == 400 && strstr(wf_jsm_last_error(jsm), "already exists")))) {
        if ((rc = find_user(jsm, c->address, account_id)) != WF_OK) {
            if (refused(rc, jsm) || rc == WF_ERR_JIRA_REJECTED)
                return set_reason(c, "JSM has an account for this address, but user search failed (%s): grant "
                                  "this account Browse users and groups, or set the reporter by hand",
                                  wf_jsm_last_error(jsm)) ?
                       WF_ERR_NOMEM : WF_OK;
            return jira_error(rc, jsm, errbuf, errlen);
        }
        if (!*account_id && set_reason(c, "JSM has an account for this address, but user search does not show "
                                       "its address (the profile hides it): add that account to service desk %s and "
                                       "set it as the reporter by hand", cfg->service_desk_id))
            return WF_ERR_NOMEM;
        return WF_OK;
    }
    if (refused(rc, jsm))
        return set_reason(c, "JSM refused to create a customer for this address (HTTP 403: creating customers "
                          "needs the Jira administrator permission): create the customer and set the reporter by "
                          "hand, or grant the permission") ? WF_ERR_NOMEM : WF_OK;
    if (rc == WF_ERR_JIRA_REJECTED)
        return set_reason(c, "JSM refused to create a customer for this address: %s", wf_jsm_last_error(jsm)) ?
               WF_ERR_NOMEM : WF_OK;
    return jira_error(rc, jsm, errbuf, errlen);
}

static void log_outcome(wf_log *log, const wf_customer *c, const char *id, const char *outcome)
{
    wf_log_kv(log, MODULE, c->reason ? "WARN" : "INFO", "event", "customer", "submission", id, "address",
              c->address, "account", c->account_id, "outcome", outcome, c->reason ? "reason" : NULL, c->reason, NULL);
}

wf_err wf_customer_resolve(wf_jsm *jsm, wf_tracker *tracker, const wf_config *cfg, wf_log *log,
                           const wf_submission *sub, wf_customer *out, char *errbuf, size_t errlen)
{
    char *key = NULL, *account = NULL;
    bool created = false;
    const char *outcome = "found";
    wf_err rc = WF_OK;
    memset(out, 0, sizeof *out);
    if (!cfg->customer_email_column) return WF_OK;
    int found = 0;
    const char *raw = wf_submission_get(sub, cfg->customer_email_column, &found);
    if (!found) {
        snprintf(errbuf, errlen, "SYNC_CUSTOMER_EMAIL_COLUMN=%s: the source table has no such column "
                 "(set it to the column holding the submitter's email address, or unset it)", cfg->customer_email_column);
        return WF_ERR_CONFIG;
    }
    if (!raw) return WF_OK;
    if (!(out->address = trimmed(raw))) return WF_ERR_NOMEM;
    if (!*out->address) {
        free(out->address);
        out->address = NULL;
        return WF_OK;
    }
    if (!wf_customer_address_valid(out->address)) {
        outcome = "invalid";
        if (set_reason(out, "not an email address, so the request is reported by the job's account: set the "
                       "reporter by hand if the submitter can be reached") != 0) { rc = WF_ERR_NOMEM; goto out; }
        goto logged;
    }
    if (!(key = wf_customer_address_key(out->address))) { rc = WF_ERR_NOMEM; goto out; }
    if ((rc = wf_tracker_customer_get(tracker, cfg->service_desk_id, key, &account)) != WF_OK) {
        snprintf(errbuf, errlen, "%s", wf_tracker_errmsg(tracker));
        goto out;
    }
    if (account) {
        /* Cached: no HTTP call, and no log line per submission either. */
        out->account_id = account;
        account = NULL;
        goto out;
    }
    if ((rc = find_on_desk(jsm, out->address, &account)) != WF_OK) {
        /* A refusal, or a 4xx about this query: the request goes on without
         * its submitter rather than wait on a look-up that will not change. */
        if (refused(rc, jsm) || rc == WF_ERR_JIRA_REJECTED) {
            int bad = refused(rc, jsm) ?
                set_reason(out, "JSM refused to list the customers of service desk %s (HTTP 403): give this "
                           "account the agent or service desk administrator role, or set the reporter by hand",
                           cfg->service_desk_id) :
                set_reason(out, "JSM did not look up this address among the customers of service desk %s: %s; "
                           "set the reporter by hand", cfg->service_desk_id, wf_jsm_last_error(jsm));
            rc = bad ? WF_ERR_NOMEM : WF_OK;
            outcome = "refused";
            goto logged;
        }
        rc = jira_error(rc, jsm, errbuf, errlen);
        goto out;
    }
    if (!account) {
        if ((rc = create_or_find(jsm, cfg, sub, out, &account, &created, errbuf, errlen)) != WF_OK) goto out;
        if (!account) { outcome = "refused"; goto logged; }
        outcome = created ? "created" : "existing_account";
        if ((rc = wf_jsm_add_desk_customer(jsm, account)) != WF_OK) {
            if (refused(rc, jsm) || rc == WF_ERR_JIRA_REJECTED) {
                bool forbidden = refused(rc, jsm);
                rc = WF_OK;
                outcome = "refused";
                if (set_reason(out, "JSM refused to add customer %s to service desk %s (%s): add them by hand "
                               "and set them as the reporter", account, cfg->service_desk_id,
                               forbidden ? "HTTP 403: adding customers needs the service desk administrator role" :
                               wf_jsm_last_error(jsm)) != 0) rc = WF_ERR_NOMEM;
                goto logged;
            }
            rc = jira_error(rc, jsm, errbuf, errlen);
            goto out;
        }
    }
    if ((rc = wf_tracker_customer_put(tracker, cfg->service_desk_id, key, account)) != WF_OK) {
        snprintf(errbuf, errlen, "%s", wf_tracker_errmsg(tracker));
        goto out;
    }
    out->account_id = account;
    account = NULL;
logged:
    log_outcome(log, out, sub->id, outcome);
out:
    free(account);
    free(key);
    return rc;
}

bool wf_customer_refused_by(wf_customer *c, wf_tracker *tracker, const wf_config *cfg, const cJSON *errors,
                            const char *message)
{
    if (!c->account_id) return false;
    bool about_us = !errors || !errors->child || cJSON_GetObjectItemCaseSensitive(errors, "raiseOnBehalfOf");
    if (!about_us) return false;
    char *key = c->address ? wf_customer_address_key(c->address) : NULL;
    if (key) wf_tracker_customer_forget(tracker, cfg->service_desk_id, key);
    free(key);
    char reason[1024];
    snprintf(reason, sizeof reason, "JSM refused to raise the request on behalf of customer %s: %s; the job's "
             "account reports it instead (the address is looked up again next time)", c->account_id, message);
    free(c->reason);
    c->reason = strdup(reason);
    free(c->account_id);
    c->account_id = NULL;
    return true;
}

int wf_customer_add_fix(const wf_customer *c, cJSON *fixes)
{
    if (!c->reason) return 0;
    cJSON *fix = cJSON_CreateObject();
    if (!fix || !cJSON_AddStringToObject(fix, "field", WF_CUSTOMER_FIX_FIELD) ||
        !cJSON_AddStringToObject(fix, "value", c->address ? c->address : "") ||
        !cJSON_AddStringToObject(fix, "message", c->reason) || !cJSON_AddItemToArray(fixes, fix)) {
        cJSON_Delete(fix);
        return -1;
    }
    return 0;
}
