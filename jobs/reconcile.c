/* reconcile.c: `wf2jsm reconcile` (being written). */
#include "job.h"
#include <stdio.h>

int cmd_reconcile(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "wf2jsm reconcile: not available yet\n");
    return 2;
}
