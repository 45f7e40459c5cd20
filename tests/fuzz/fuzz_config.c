/* fuzz_config.c: the .env parser and every configuration check behind it.
 * Input: the bytes of an env file. Invariants: no crash or leak; a refused
 * configuration always says why (a non-empty message naming the thing). */
#include "fuzz_util.h"

#include <assert.h>
#include "../../modules/config.h"

extern char **environ;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The environment wins over the file: clear what would hide the file. */
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "WEBFORM_", 8) && strncmp(*e, "JIRA_", 5) && strncmp(*e, "JSM_", 4) && strncmp(*e, "SYNC_", 5))
                continue;
            char name[256];
            size_t len = strcspn(*e, "=");
            snprintf(name, sizeof name, "%.*s", (int)len, *e);
            unsetenv(name);
            again = 1;
            break;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, "env");
    for (int require_jira = 0; require_jira < 2; require_jira++) {
        wf_config cfg;
        memset(&cfg, 0, sizeof cfg);
        char err[1024] = "";
        wf_err rc = wf_config_load(&cfg, path, require_jira, err, sizeof err);
        if (rc != WF_OK && err[0] == '\0') abort();   /* a refusal must say why */
        wf_config_free(&cfg);
    }
    char *text = fuzz_cstr(data, size);
    long d = wf_parse_duration(text);
    if (d < -1) abort();
    free(text);
    return 0;
}
