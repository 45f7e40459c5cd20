/* check.c: `wf2jsm check` (being written). */
#include "job.h"
#include <stdio.h>

int cmd_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "wf2jsm check: not available yet\n");
    return 2;
}
