/* retry.c: `wf2jsm retry` (being written). */
#include "job.h"
#include <stdio.h>

int cmd_retry(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "wf2jsm retry: not available yet\n");
    return 2;
}
