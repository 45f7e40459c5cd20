"""The PostgreSQL tracker (SYNC_TRACKER_DB=postgresql://...): the advisory
lock that serialises hosts, what an operator is told when the tracker's
server is read-only or unreachable, concurrent first runs, and two working
directories (two hosts) sharing one tracker while SIGKILLs land and rows
keep arriving. Each test asks for a PostgreSQL tracker itself; they run in
the PostgreSQL pass of `make test` (WF2JSM_TRACKER_BACKEND=pg)."""
import os
import random
import signal
import subprocess
import time

from harness import TRACKER_SECRET, Env, assert_exactly_once, long_running, pg_only
from test_exactly_once import finish_cleanly

RUN_LOCK_KEY = 2003186282   # modules/tracker_pg.c


class LockHolder:
    """A psql session holding the run lock, as another host's run would
    (or, with sql, whatever lock sql takes)."""

    def __init__(self, env, sql="SELECT pg_advisory_lock(%d);" % RUN_LOCK_KEY):
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", env.tracker_url],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.proc.stdin.write("%s\n\\echo locked\n" % sql)
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.strip() == "locked":
                break

    def kill(self):
        """Ends the session the way a host dies: no unlock, the process is gone."""
        self.proc.kill()
        self.proc.wait()


def runs_until_not_locked(env, *args, seconds=5):
    deadline = time.time() + seconds
    while True:
        p = env.run(*args)
        if p.returncode != 75 or time.time() > deadline:
            return p
        time.sleep(0.1)


@pg_only
def test_pg_overlapping_tick_exits_75_naming_the_holder(world):
    env = Env(world, "pglock", backend="pg")
    env.insert(1, "First")
    env.run("sync", check=0)
    env.insert(1, "Second")
    holder = LockHolder(env)
    try:
        start = time.time()
        p = env.run("sync")
        assert p.returncode == 75, (p.returncode, p.stderr)
        assert time.time() - start < 5
        assert "another wf2jsm run holds the advisory lock of the tracker %s (server process " % env.tracker_name \
            in p.stderr, p.stderr
        assert "this tick exits" in p.stderr
        assert "another wf2jsm run" in env.logs_text()
        assert env.jsm_stats()["calls"]["create"] == 1, "a locked-out tick must not deliver"
        # Reading commands take no lock: an operator can look meanwhile.
        p = env.run("status", check=0)
        assert "delivered" in p.stdout
        # check says who holds it, without taking it.
        p = env.run("check")
        assert "✓ the run lock is held by server process " in p.stdout, p.stdout
        # The writing operator commands wait their turn.
        assert env.run("retry", "--failed").returncode == 75
    finally:
        holder.kill()
    p = runs_until_not_locked(env, "sync")
    assert p.returncode == 0, p.stderr
    assert_exactly_once(env)
    assert "✓ the run lock is free" in env.run("check").stdout


@pg_only
def test_pg_killed_run_releases_the_lock(world):
    env = Env(world, "pgkill", backend="pg", SYNC_BATCH_SIZE="5")
    env.insert(30, "Row")
    env.faults([{"kind": "any", "action": "latency", "latency_ms": 30}])
    proc = env.popen("sync", "--catch-up")
    env.wait_for_log(proc, "event=delivered")
    assert proc.poll() is None, "the run was meant to be killed mid-way"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    # The server ends the dead client's session as soon as its socket
    # closes, and the lock with it: the next tick does not wait for a human.
    p = runs_until_not_locked(env, "sync", "--catch-up", seconds=3)
    assert p.returncode in (0, 1), (p.returncode, p.stderr)
    env.clear_faults()
    finish_cleanly(env)
    assert_exactly_once(env)


@pg_only
def test_pg_locked_tracker_table_is_exit_5_not_a_hang(world):
    env = Env(world, "pgtbllock", backend="pg")
    env.insert(2, "Row")
    env.run("sync", check=0)
    env.insert(1, "More")
    holder = LockHolder(env, "BEGIN; LOCK TABLE wf2jsm.submissions IN ACCESS EXCLUSIVE MODE;")
    try:
        start = time.time()
        p = env.run("sync")
        assert time.time() - start < 30
    finally:
        holder.kill()
    assert p.returncode == 5, (p.returncode, p.stderr)
    assert env.tracker_name in p.stderr and "locked" in p.stderr, p.stderr
    env.run("sync", check=0)
    assert_exactly_once(env)


@pg_only
def test_pg_read_only_tracker_is_exit_5_naming_it(world):
    env = Env(world, "pgro", backend="pg")
    env.insert(1, "Row")
    env.run("sync", check=0)
    trk_db = env.tracker_url.rsplit("/", 1)[1]
    env.admin_psql("ALTER DATABASE %s SET default_transaction_read_only = on" % trk_db)
    try:
        env.insert(1, "More")
        p = env.run("sync")
        assert p.returncode == 5, (p.returncode, p.stderr)
        assert env.tracker_name in p.stderr and "read-only" in p.stderr and "primary" in p.stderr, p.stderr
        p = env.run("check")
        assert p.returncode == 5, p.stdout
        assert any(env.tracker_name in line and "read-only" in line for line in p.stdout.splitlines()
                   if line.startswith("✗")), p.stdout
        assert env.jsm_stats()["calls"]["create"] == 1
    finally:
        env.admin_psql("ALTER DATABASE %s RESET default_transaction_read_only" % trk_db)
    env.run("sync", check=0)
    assert_exactly_once(env)


@pg_only
def test_pg_tracker_for_a_role_without_create_on_the_database(world):
    env = Env(world, "pgrole", backend="pg")
    role = "wf2jsm_limited_%d" % world.db_counter
    env.admin_psql("CREATE ROLE %s LOGIN" % role)
    env.env["SYNC_TRACKER_DB"] = env.tracker_url.replace("://postgres:", "://%s:" % role)
    env.insert(1, "Row")
    p = env.run("sync")
    assert p.returncode == 5, (p.returncode, p.stderr)
    assert "CREATE SCHEMA wf2jsm AUTHORIZATION" in p.stderr, p.stderr
    assert env.jsm_stats()["total_calls"] == 0
    # What the message says a DBA does, once; the role owns the rest.
    env.tracker_psql("CREATE SCHEMA wf2jsm AUTHORIZATION %s" % role)
    env.run("sync", check=0)
    assert_exactly_once(env)
    assert env.tracker("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'wf2jsm'") == [(role,)]


@pg_only
def test_pg_unreachable_tracker_is_exit_5_without_its_password(world):
    env = Env(world, "pgdown", backend="pg")
    env.env["SYNC_TRACKER_DB"] = "postgres://postgres:%s@127.0.0.1:1/nowhere" % TRACKER_SECRET
    env.insert(1, "Row")
    p = env.run("sync")   # the harness fails the test if the password shows
    assert p.returncode == 5, (p.returncode, p.stderr)
    assert "tracker postgresql://postgres@127.0.0.1:1/nowhere cannot be reached" in p.stderr, p.stderr
    assert "SYNC_TRACKER_DB" in p.stderr
    assert TRACKER_SECRET not in env.logs_text()
    assert env.jsm_stats()["total_calls"] == 0


@pg_only
def test_pg_first_runs_on_several_hosts_migrate_once(world):
    env = Env(world, "pgmig", backend="pg")
    procs = [env.popen("status") for _ in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    versions = env.tracker("SELECT version FROM schema_version ORDER BY version")
    assert versions == [(i + 1,) for i in range(len(versions))] and versions, versions


@pg_only
@long_running
def test_two_hosts_share_one_pg_tracker_through_sigkills(world):
    """Two working directories (two web heads running cron) with one
    PostgreSQL tracker and one webform database: runs start on both hosts
    at random, SIGKILLs land on either, replies get lost, rows keep coming.
    Every submission ends exactly once with both attachments, no extra
    request, and the lock really kept the hosts apart."""
    seed = int(os.environ.get("WF2JSM_SEED") or random.SystemRandom().randrange(1, 10**6))
    print("two-host test seed: WF2JSM_SEED=%d" % seed, flush=True)
    rng = random.Random(seed)
    settings = dict(SYNC_BATCH_SIZE="10", SYNC_RETRY_BUDGET="5")
    a = Env(world, "hosta", backend="pg", **settings)
    b = Env(world, "hostb", tracker_url=a.tracker_url, db_url=a.db_url, **settings)
    a.insert(30, "Tie", when="'2026-11-22 09:00:00+00'")
    for i in range(40):
        a.insert(1, "Row%d" % i, when="'2026-11-22 09:00:00+00'::timestamptz + interval '%d second'" % (i + 1))
    a.faults([
        {"kind": "create", "action": "lost", "probability": 0.1},
        {"kind": "attach", "action": "lost", "probability": 0.1},
        {"kind": "create", "action": "503", "probability": 0.05},
        {"kind": "any", "action": "latency", "latency_ms": 8},
    ], seed=seed)
    hosts = {"a": a, "b": b}
    procs = {"a": None, "b": None}
    outcome = {"a": {"ran": 0, "locked": 0}, "b": {"ran": 0, "locked": 0}}
    kills = rounds = added = 0
    while kills < 30 and rounds < 800:
        rounds += 1
        for name, env in hosts.items():
            proc = procs[name]
            if proc is not None and proc.poll() is not None:
                _, err = proc.communicate()
                if proc.returncode == 75:
                    outcome[name]["locked"] += 1
                elif proc.returncode in (0, 1):
                    outcome[name]["ran"] += 1
                else:
                    raise AssertionError("host %s: exit %d: %s" % (name, proc.returncode, err))
                proc = None
            if proc is None:
                procs[name] = env.popen("sync", "--catch-up")
        time.sleep(rng.uniform(0.02, 0.4))
        victim = rng.choice(["a", "b"])
        proc = procs[victim]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            procs[victim] = None
            kills += 1
        if rng.random() < 0.3:
            a.insert(2, "Late%d" % rounds, when="now() - interval '%d millisecond'" % rng.randrange(0, 5000))
            added += 2
    for proc in procs.values():
        if proc is not None:
            proc.communicate(timeout=300)
    assert kills >= 30, "only %d kills in %d rounds" % (kills, rounds)
    # Both hosts did part of the work (the lock passed between them).
    delivered = {name: env.logs_text().count("event=delivered") for name, env in hosts.items()}
    assert delivered["a"] > 0 and delivered["b"] > 0, delivered
    a.clear_faults()
    finish_cleanly(a)
    # The other host agrees: nothing left for it to do.
    p = b.run("sync", "--catch-up", check=0)
    assert b.tracker("SELECT created, adopted FROM runs ORDER BY id DESC LIMIT 1") == [(0, 0)], p.stdout
    by_id = assert_exactly_once(a)
    assert len(by_id) == 70 + added
    print("two hosts: kills=%d rounds=%d submissions=%d outcomes=%s delivered_by=%s"
          % (kills, rounds, 70 + added, outcome, delivered), flush=True)
    assert outcome["a"]["locked"] + outcome["b"]["locked"] > 0, "the hosts never met at the lock: %s" % outcome
