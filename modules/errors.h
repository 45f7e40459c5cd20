/* errors.h: the error codes every module returns, their text, and the exit
 * status each one maps to. One enum for the whole program, in the style of
 * curl's CURLcode, so a failure keeps its class from the module that saw it
 * up to main(). */
#ifndef WF_ERRORS_H
#define WF_ERRORS_H

typedef enum {
    WF_OK = 0,
    WF_ERR_USAGE,             /* bad command line: exit 2 */
    WF_ERR_CONFIG,            /* missing or invalid configuration: exit 2 */
    WF_ERR_DB,                /* source database unreachable or a query failed: exit 3 */
    WF_ERR_JIRA_AUTH,         /* 401/403: credentials or permissions: exit 4 */
    WF_ERR_JIRA_NOT_FOUND,    /* service desk, request type or request missing: exit 4 */
    WF_ERR_JIRA_UNREACHABLE,  /* no connection could be made: exit 4 */
    WF_ERR_JIRA_TEMPORARY,    /* 5xx, 429, timeout or dropped reply after the retry budget */
    WF_ERR_JIRA_REJECTED,     /* 400: JSM refused the content of one submission */
    WF_ERR_JIRA_PROTOCOL,     /* a reply we cannot understand */
    WF_ERR_TRACKER,           /* the SQLite tracker cannot be opened or written: exit 5 */
    WF_ERR_FILE,              /* a file or directory cannot be read or written: exit 5 */
    WF_ERR_LOCKED,            /* another run holds the lock: exit 75 */
    WF_ERR_NOMEM,             /* allocation failed: exit 5 */
    WF_ERR_INTERRUPTED,       /* SIGINT/SIGTERM asked the run to stop */
    WF_ERR_ROWS_FAILED        /* the run finished but some submissions failed: exit 1 */
} wf_err;

/* Returns a static, human-readable description of err. Never fails. */
const char *wf_strerror(wf_err err);

/* Returns the process exit status documented in the README for err.
 * WF_OK and WF_ERR_INTERRUPTED map to 0. Never fails. */
int wf_exit_code(wf_err err);

/* True for errors that stop a whole run (auth, unreachable, database,
 * tracker...), false for errors that belong to one submission. */
int wf_err_stops_run(wf_err err);

#endif
