/* errors.c: text and exit status for each wf_err. */
#include "errors.h"

const char *wf_strerror(wf_err err)
{
    switch (err) {
    case WF_OK: return "success";
    case WF_ERR_USAGE: return "invalid command line";
    case WF_ERR_CONFIG: return "configuration error";
    case WF_ERR_DB: return "database error";
    case WF_ERR_JIRA_AUTH: return "Jira refused the credentials or the permission";
    case WF_ERR_JIRA_NOT_FOUND: return "Jira object not found";
    case WF_ERR_JIRA_UNREACHABLE: return "Jira unreachable";
    case WF_ERR_JIRA_TEMPORARY: return "temporary Jira failure";
    case WF_ERR_JIRA_REJECTED: return "Jira rejected the submission";
    case WF_ERR_JIRA_PROTOCOL: return "unexpected reply from Jira";
    case WF_ERR_TRACKER: return "tracker error";
    case WF_ERR_FILE: return "file error";
    case WF_ERR_LOCKED: return "another run holds the lock";
    case WF_ERR_NOMEM: return "out of memory";
    case WF_ERR_INTERRUPTED: return "interrupted";
    case WF_ERR_ROWS_FAILED: return "some submissions failed";
    }
    return "unknown error";
}

int wf_exit_code(wf_err err)
{
    switch (err) {
    case WF_OK:
    case WF_ERR_INTERRUPTED: return 0;
    case WF_ERR_ROWS_FAILED: return 1;
    case WF_ERR_USAGE:
    case WF_ERR_CONFIG: return 2;
    case WF_ERR_DB: return 3;
    case WF_ERR_JIRA_AUTH:
    case WF_ERR_JIRA_NOT_FOUND:
    case WF_ERR_JIRA_UNREACHABLE:
    case WF_ERR_JIRA_TEMPORARY:
    case WF_ERR_JIRA_REJECTED:
    case WF_ERR_JIRA_PROTOCOL: return 4;
    case WF_ERR_TRACKER:
    case WF_ERR_FILE:
    case WF_ERR_NOMEM: return 5;
    case WF_ERR_LOCKED: return 75;
    }
    return 1;
}

int wf_err_stops_run(wf_err err)
{
    switch (err) {
    case WF_ERR_JIRA_TEMPORARY:
    case WF_ERR_JIRA_REJECTED:
    case WF_ERR_JIRA_PROTOCOL:
    case WF_ERR_ROWS_FAILED:
    case WF_OK: return 0;
    default: return 1;
    }
}
