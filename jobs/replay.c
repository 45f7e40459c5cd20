/* replay.c: `wf2jsm replay` (being written). */
#include "job.h"
#include <stdio.h>

int cmd_replay(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "wf2jsm replay: not available yet\n");
    return 2;
}
