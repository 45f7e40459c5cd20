/* replay.c: `wf2jsm replay`, re-reading a time range of the source. */
#define _POSIX_C_SOURCE 200809L
#include "job.h"

#include <getopt.h>
#include <stdio.h>

static const char replay_usage[] =
    "usage: wf2jsm replay --since TIME [--until TIME] [--update-changed] [--dry-run]\n"
    "                     [--env FILE]\n"
    "\n"
    "Reads the submissions whose time column lies in [--since, --until] again, however\n"
    "far behind the sync window they are, and delivers the ones that are not\n"
    "delivered yet (rows committed later than SYNC_LOOKBACK allowed, rows lost with a\n"
    "restored tracker). Delivered submissions are skipped: replaying never makes a\n"
    "second request. Runs batches until the range is done, under the run lock.\n"
    "\n"
    "  --since TIME      start of the range: ISO 8601 with Z or an offset, a bare date\n"
    "                    meaning its midnight UTC\n"
    "  --until TIME      end of the range, inclusive (default: no end)\n"
    "  --update-changed  also edit the request of each delivered submission whose mapped\n"
    "                    fields changed since delivery (same request key; labels and\n"
    "                    attachments stay as they are)\n"
    "  --dry-run         print what would be created or updated; change nothing\n"
    "  --env FILE        read configuration from FILE instead of ./.env\n"
    "  -h, --help        show this help\n"
    "\n"
    "exit status: as `wf2jsm sync`: 0 ok, 1 some submissions failed, 2 usage or\n"
    "config, 3 database, 4 Jira, 5 tracker or file, 75 a sync is running.\n";

int cmd_replay(int argc, char **argv)
{
    static const struct option options[] = {
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"update-changed", no_argument, NULL, 'c'},
        {"dry-run", no_argument, NULL, 'n'},
        {"env", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t from_us = INT64_MIN, to_us = WF_NO_UPPER_BOUND;
    bool update_changed = false, dry_run = false, has_since = false;
    const char *env_file = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (opt) {
        case 's':
        case 'u':
            if (job_parse_time(optarg, opt == 's' ? &from_us : &to_us) != 0) {
                fprintf(stderr, "wf2jsm replay: --%s '%s' is not a time: use 2026-11-22T10:00:00Z, an offset "
                        "such as +02:00, or a date\n", opt == 's' ? "since" : "until", optarg);
                return 2;
            }
            has_since |= opt == 's';
            break;
        case 'c': update_changed = true; break;
        case 'n': dry_run = true; break;
        case 'e': env_file = optarg; break;
        case 'h': fputs(replay_usage, stdout); return 0;
        default: fputs(replay_usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wf2jsm replay: unexpected argument '%s'\n%s", argv[optind], replay_usage);
        return 2;
    }
    if (!has_since) {
        fprintf(stderr, "wf2jsm replay: --since TIME is required (the start of the range to read again)\n%s",
                replay_usage);
        return 2;
    }
    if (to_us != WF_NO_UPPER_BOUND && to_us < from_us) {
        fprintf(stderr, "wf2jsm replay: --until is before --since\n");
        return 2;
    }
    return sync_run("replay", env_file, true, dry_run, false, from_us, to_us, update_changed);
}
