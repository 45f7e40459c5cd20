"""Crash safety: kills, lost replies, restarts and a broken tracker."""
import os
import random
import sqlite3
import signal
import subprocess
import time

from harness import PGTMP, Env, assert_exactly_once, long_running, pg_only, sqlite_only


def finish_cleanly(env, max_runs=10):
    """Runs catch-ups until one exits 0 with nothing left to do."""
    for _ in range(max_runs):
        p = env.run("sync", "--catch-up", timeout=300)
        if p.returncode == 0 and env.tracker(
                "SELECT count(*) FROM submissions WHERE state <> 'delivered'")[0][0] == 0:
            return
    raise AssertionError("no clean finish after %d runs: %s" % (max_runs, env.tracker(
        "SELECT state, error_class, last_error FROM submissions WHERE state <> 'delivered' LIMIT 5")))


@long_running
def test_sigkill_50_times_with_lost_replies_then_exactly_once(world):
    seed = int(os.environ.get("WF2JSM_SEED") or random.SystemRandom().randrange(1, 10**6))
    print("crash test seed: WF2JSM_SEED=%d" % seed, flush=True)
    rng = random.Random(seed)
    env = Env(world, "crash", SYNC_BATCH_SIZE="10", SYNC_RETRY_BUDGET="5")
    env.insert(40, "Tie", when="'2026-11-22 09:00:00+00'")
    for i in range(80):
        env.insert(1, "Row%d" % i, when="'2026-11-22 09:00:00+00'::timestamptz + interval '%d second'" % (i + 1))
    # Every kind of write can lose its reply after committing; some calls
    # fail outright; a little latency widens the windows a kill can hit.
    env.faults([
        {"kind": "create", "action": "lost", "probability": 0.12},
        {"kind": "attach", "action": "lost", "probability": 0.12},
        {"kind": "attach_temp", "action": "lost", "probability": 0.05},
        {"kind": "create", "action": "503", "probability": 0.05},
        {"kind": "attach", "action": "503", "probability": 0.05},
        {"kind": "any", "action": "429", "probability": 0.02, "retry_after": 0},
        {"kind": "any", "action": "latency", "latency_ms": 8},
    ], seed=seed)
    kills = 0
    runs = 0
    added = 0
    while kills < 50 and runs < 1000:
        proc = env.popen("sync", "--catch-up")
        time.sleep(rng.uniform(0.02, 0.6))
        runs += 1
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        else:
            # The run caught up before the kill: new submissions keep the
            # job busy, as a live form would.
            env.insert(3, "Late%d" % runs, when="now() - interval '%d millisecond'" % rng.randrange(0, 5000))
            added += 3
        proc.communicate()
    assert kills >= 50, "only %d kills in %d runs" % (kills, runs)
    env.clear_faults()
    finish_cleanly(env)
    by_id = assert_exactly_once(env)
    assert len(by_id) == 120 + added
    # Killed runs never write their figures; the rows remember adoption.
    adopted = env.tracker("SELECT count(*) FROM submissions WHERE adopted = 1")[0][0]
    print("kills=%d runs=%d submissions=%d adopted_after_crash=%d" % (kills, runs, 120 + added, adopted), flush=True)
    assert adopted > 0, "with lost replies and kills some tickets must have been adopted"


def test_sigterm_finishes_the_step_and_writes_the_summary(world):
    # Several submissions are in flight when the signal comes: each
    # finishes the step it is in, records it, and starts no other.
    env = Env(world, "sigterm")
    env.insert(150, "Row")
    env.faults([{"kind": "any", "action": "latency", "latency_ms": 100}])
    proc = env.popen("sync", "--catch-up")
    # Once one submission is delivered, others are in flight (a fixed sleep
    # could end before the first delivery on a loaded machine).
    env.wait_for_log(proc, "event=delivered")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, 1), err
    last = env.tracker("SELECT finished_at, delivered FROM runs ORDER BY id DESC LIMIT 1")[0]
    assert last[0] is not None, "the interrupted run recorded its summary"
    assert 0 < last[1] < 150, last
    assert "interrupted" in env.logs_text()
    env.clear_faults()
    finish_cleanly(env)
    assert_exactly_once(env)


def test_database_restart_mid_run_fails_clearly_then_recovers(world):
    env = Env(world, "dbrestart", SYNC_BATCH_SIZE="5")
    env.insert(40, "Row")
    env.faults([{"kind": "any", "action": "latency", "latency_ms": 25}])
    proc = env.popen("sync", "--catch-up")
    env.wait_for_log(proc, "event=delivered")    # mid-run: 35 rows still to go
    subprocess.run([PGTMP, "restart", world.pg_dir], check=True, capture_output=True)
    out, err = proc.communicate(timeout=120)
    webform_lost = proc.returncode == 3 and "database" in err and "WEBFORM_DB_URL" in err
    # A PostgreSQL tracker on the same server loses its connection too:
    # whichever connection notices first names itself.
    tracker_lost = env.backend == "pg" and proc.returncode == 5 and env.tracker_name in err \
        and "connection to the tracker database was lost" in err
    assert webform_lost or tracker_lost, "exit %d: %s" % (proc.returncode, err)
    env.clear_faults()
    finish_cleanly(env)
    assert_exactly_once(env)


@sqlite_only
def test_locked_tracker_is_exit_5_naming_the_file(world):
    env = Env(world, "trklocked")
    env.insert(2, "Row")
    env.run("sync", check=0)
    env.insert(1, "More")
    con = sqlite3.connect(env.path("tracker", "tracker.db"), isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    try:
        p = env.run("sync")
    finally:
        con.execute("ROLLBACK")
        con.close()
    assert p.returncode == 5, p.stderr
    assert "tracker/tracker.db" in p.stderr and "locked" in p.stderr, p.stderr
    env.run("sync", check=0)
    assert_exactly_once(env)


@sqlite_only
def test_read_only_tracker_is_exit_5_naming_the_file(world):
    env = Env(world, "trkro")
    env.insert(1, "Row")
    env.run("sync", check=0)
    tracker = env.path("tracker", "tracker.db")
    if os.geteuid() == 0:
        # root writes through any mode; run the job as an unprivileged user
        # who can read but not write the tracker.
        for path in [env.dir, env.path("tracker"), env.path("logs")]:
            os.chmod(path, 0o777)
        os.chmod(env.path("tracker", "tracker.db.lock"), 0o666)
        for name in os.listdir(env.path("logs")):
            os.chmod(env.path("logs", name), 0o666)
        os.chmod(tracker, 0o644)
        d = os.path.dirname(env.dir)
        while d != "/":
            os.chmod(d, os.stat(d).st_mode | 0o011)
            d = os.path.dirname(d)
        wrapper = ["runuser", "-u", "nobody", "--"]
    else:
        os.chmod(tracker, 0o444)
        wrapper = []
    full_env = dict(os.environ, **env.env)
    full_env["ASAN_OPTIONS"] = "detect_leaks=0"
    p = subprocess.run(wrapper + [env.bin, "sync"], cwd=env.dir, env=full_env, capture_output=True, text=True)
    assert p.returncode == 5, (p.returncode, p.stderr)
    assert "tracker/tracker.db" in p.stderr and "writable" in p.stderr, p.stderr


def test_key_field_carries_the_key_when_there_are_no_labels(world):
    from harness import use_key_field_instead_of_labels
    env = Env(world, "keyfield", SYNC_KEY_FIELD="customfield_10050")
    use_key_field_instead_of_labels(env)
    env.insert(6, "Row")
    # Every create's reply is lost once: recovery must find the requests by
    # the key field (cf[10050] ~ key) instead of a label.
    env.faults([{"kind": "create", "action": "lost", "times": 6}])
    p = env.run("sync", "--catch-up")
    assert p.returncode == 1, p.stderr
    env.clear_faults()
    finish_cleanly(env)
    reqs = assert_exactly_once(env)
    keys = dict(env.tracker("SELECT source_id, key FROM submissions"))
    for sid, r in reqs.items():
        assert r["fields"]["customfield_10050"] == keys[sid]
        assert "labels" not in r["fields"] or not r["fields"]["labels"]
    assert env.tracker("SELECT count(*) FROM submissions WHERE adopted = 1")[0][0] == 6
