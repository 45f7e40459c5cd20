#!/usr/bin/env python3
"""noop_tick.py: how much a tick with nothing new costs (`make bench`).

Delivers 150 submissions (100 sharing one timestamp), then times 60 plain
`wf2jsm sync` ticks of the optimised binary (bin/wf2jsm) that find nothing new,
against a real PostgreSQL and the JSM test server on loopback. Reports the
median and 90th percentile wall time, the SQL statements the tick ran on the
source database (from pg_stat_database's transaction count: each statement
runs in its own transaction) and the HTTP calls it made (from the server).
Target: median <= 10 ms, 1 SQL statement, 0 HTTP calls.
"""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

TICKS = 60
TARGET_MS = 10.0


def xact_count(env):
    return int(env.sql("SELECT pg_stat_force_next_flush(); SELECT xact_commit + xact_rollback FROM pg_stat_database "
                       "WHERE datname = current_database()")[-1][0])


def main():
    os.environ["WF2JSM_BIN"] = os.path.join(harness.ROOT, "bin", "wf2jsm")
    world = harness.World()
    try:
        env = harness.Env(world, "bench")
        env.insert(100, "Tie", when="'2026-11-22 10:00:00+00'")
        for i in range(50):
            env.insert(1, "Single%d" % i, when="now() - interval '%d second'" % (60 - i))
        env.run("sync", "--catch-up", check=0)
        env.run("sync", check=0)   # warm the page cache
        env.http("POST", "/_admin/stats/reset", {})
        times = []
        sql_per_tick = []
        for _ in range(TICKS):
            before = xact_count(env)
            start = time.perf_counter()
            env.run("sync", check=0)
            times.append((time.perf_counter() - start) * 1000)
            # the two psql calls of xact_count are transactions too: one
            # SELECT each, counted before the tick's own are flushed.
            sql_per_tick.append(xact_count(env) - before - 1)
        calls = env.jsm_stats()["total_calls"]
        median = statistics.median(times)
        p90 = sorted(times)[int(len(times) * 0.9) - 1]
        print("no-op tick over %d runs (150 delivered rows, lookback window covers all of them):" % TICKS)
        print("  median wall time   %.2f ms   (target <= %.0f ms: %s)" % (median, TARGET_MS,
                                                                        "met" if median <= TARGET_MS else "MISSED"))
        print("  90th percentile    %.2f ms" % p90)
        print("  min / max          %.2f / %.2f ms" % (min(times), max(times)))
        print("  SQL statements     %s per tick (median)" % statistics.median(sql_per_tick))
        print("  HTTP calls         %d in %d ticks" % (calls, TICKS))
        return 0 if median <= TARGET_MS and calls == 0 else 1
    finally:
        world.close()


if __name__ == "__main__":
    sys.exit(main())
