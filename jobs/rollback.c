/* rollback.c: `wf2jsm rollback` (being written). */
#include "job.h"
#include <stdio.h>

int cmd_rollback(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "wf2jsm rollback: not available yet\n");
    return 2;
}
