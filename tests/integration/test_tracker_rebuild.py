"""A lost or old tracker rebuilds itself from JSM: no request is made twice.

The tracker is a cache of JSM. These tests delete it, or put an old copy of
it back, between ticks, and check on the JSM test server's state that every
submission ends as exactly one request with both attachments, and that the
rebuild is what status and check report."""
import os

from harness import Env, assert_exactly_once, sqlite_only, use_key_field_instead_of_labels


def insert_spread(env, n, subject, start_s):
    """n rows one second apart (distinct times), starting start_s seconds
    after a fixed instant in the past."""
    for i in range(n):
        env.insert(1, "%s%d" % (subject, i),
                   when="'2026-11-22 09:00:00+00'::timestamptz + interval '%d second'" % (start_s + i))


def calls(env):
    return env.jsm_stats()["calls"]


def reset_calls(env):
    env.http("POST", "/_admin/stats/reset", {})


def states(env):
    return dict(env.tracker("SELECT state, count(*) FROM submissions GROUP BY state"))


def test_deleted_tracker_rebuilds_from_jsm_and_creates_nothing_twice(world):
    env = Env(world, "rebuild_deleted", SYNC_BATCH_SIZE="15")
    insert_spread(env, 40, "Old", 0)
    env.run("sync", "--catch-up", check=0)
    assert len(env.jsm_requests()) == 40
    # One more row whose attach call fails: its request exists in JSM without
    # any file when the tracker is lost.
    insert_spread(env, 1, "Half", 100)
    env.faults([{"kind": "attach", "action": "500", "times": 10}])
    env.run("sync", env={"SYNC_RETRY_BUDGET": "0"})
    env.clear_faults()
    half = [r for r in env.jsm_requests() if not r["attachments"]]
    assert len(half) == 1 and len(env.jsm_requests()) == 41, env.jsm_requests()

    before = sorted(env.tracker("SELECT key, source_id, source_time_us, jsm_key FROM submissions"))
    env.delete_tracker()   # the host was rebuilt from its image
    reset_calls(env)
    p = env.run("sync", check=0)
    c = calls(env)
    assert c["create"] == 0, "a deleted tracker made %d requests again" % c["create"]
    assert c["search"] == 1, c
    assert len(env.jsm_requests()) == 41
    rows = env.tracker("SELECT state, jsm_key, may_exist FROM submissions ORDER BY source_time_us")
    assert len(rows) == 41
    # The 40 whole requests are delivered; the one without files was rebuilt
    # as not fully delivered, and this same tick completed it.
    assert all(r[0] == "delivered" for r in rows), rows
    assert sorted(r[1] for r in rows) == sorted(r["issueKey"] for r in env.jsm_requests())
    # Whole keys (the label holds only half), ids and times as the lost tracker had them.
    assert sorted(env.tracker("SELECT key, source_id, source_time_us, jsm_key FROM submissions")) == before
    assert c["attach"] == 1 and c["list_attachments"] == 1, c
    assert "event=rebuilt" in env.logs_text() and "requests=41" in env.logs_text(), p.stdout

    # New rows after the rebuild are delivered exactly once.
    insert_spread(env, 12, "New", 200)
    env.run("sync", "--catch-up", check=0)
    env.run("sync", check=0)
    assert_exactly_once(env)
    assert len(env.jsm_requests()) == 53


def test_old_tracker_copy_put_back_creates_nothing_twice(world):
    env = Env(world, "rebuild_restored", SYNC_BATCH_SIZE="10")
    insert_spread(env, 20, "First", 0)
    env.run("sync", "--catch-up", check=0)
    backup = os.path.join(env.dir, "nightly.db")
    env.copy_tracker(backup)
    insert_spread(env, 20, "Second", 100)
    env.run("sync", "--catch-up", check=0)
    assert len(env.jsm_requests()) == 40

    env.put_back_tracker(backup)                 # the nightly backup, 20 deliveries old
    assert env.tracker("SELECT count(*) FROM submissions")[0][0] == 20
    reset_calls(env)
    env.run("sync", check=0)              # the next tick: one batch of 10
    env.run("sync", check=0)              # and the one after
    c = calls(env)
    assert c["create"] == 0, "an old tracker copy made %d requests again" % c["create"]
    assert len(env.jsm_requests()) == 40
    assert states(env) == {"delivered": 40}, states(env)
    # Not a rebuild (the tracker has rows): the batch's search before creating
    # found the 20 requests and adopted them.
    assert "event=rebuilt" not in env.logs_text()
    assert c["search"] >= 1 and c["create"] == 0, c

    insert_spread(env, 15, "Third", 200)
    reset_calls(env)
    env.run("sync", "--catch-up", check=0)
    c = calls(env)
    assert c["create"] == 15, c
    env.run("sync", check=0)
    assert_exactly_once(env)
    assert len(env.jsm_requests()) == 55


def test_restored_copy_with_rows_failed_then_delivered_is_not_created_again(world):
    """A row the old copy holds as failed, delivered after the copy was taken:
    the copy knows its key but not its request."""
    env = Env(world, "rebuild_failed_row", SYNC_BATCH_SIZE="10")
    insert_spread(env, 5, "A", 0)
    # A 429 beyond the retry budget: the create certainly did not happen, so
    # the row waits as failed without may_exist (no lookup before its create).
    env.faults([{"kind": "create", "action": "429", "times": 1, "retry_after": 5}])
    env.run("sync", env={"SYNC_RETRY_BUDGET": "0"})
    env.clear_faults()
    assert states(env) == {"delivered": 4, "failed": 1}, states(env)
    assert env.tracker("SELECT may_exist FROM submissions WHERE state = 'failed'") == [(0,)]
    backup = os.path.join(env.dir, "copy.db")
    env.copy_tracker(backup)
    env.run("sync", check=0)
    assert states(env) == {"delivered": 5}
    env.put_back_tracker(backup)
    reset_calls(env)
    env.run("sync", check=0)
    assert calls(env)["create"] == 0
    assert states(env) == {"delivered": 5}
    assert_exactly_once(env)


def test_new_tracker_costs_one_search_and_status_and_check_say_so(world):
    env = Env(world, "rebuild_new")
    reset_calls(env)
    env.run("sync", check=0)             # empty table, empty JSM
    c = calls(env)
    assert c["search"] == 1 and c["create"] == 0, c
    p = env.run("status", check=0)
    assert "tracker" in p.stdout and "new since" in p.stdout and "JSM held no wf2jsm request" in p.stdout, p.stdout
    # Checked once: the next empty tick asks JSM nothing.
    reset_calls(env)
    env.run("sync", check=0)
    assert env.jsm_stats()["total_calls"] == 0, env.jsm_stats()
    # Rows arrive: the first run that creates checks JSM once, then creates.
    insert_spread(env, 3, "R", 0)
    reset_calls(env)
    env.run("sync", check=0)
    assert calls(env)["search"] == 1 and calls(env)["create"] == 3, calls(env)
    assert_exactly_once(env)
    # A tick with nothing new asks JSM nothing.
    reset_calls(env)
    env.run("sync", check=0)
    assert env.jsm_stats()["total_calls"] == 0, env.jsm_stats()


def test_status_and_check_print_the_rebuild(world):
    env = Env(world, "rebuild_report")
    insert_spread(env, 6, "R", 0)
    env.run("sync", check=0)
    env.delete_tracker()
    p = env.run("status", check=0)
    assert "not checked against JSM yet" in p.stdout, p.stdout
    p = env.run("check")
    assert "✓ tracker is empty, not checked against JSM yet" in p.stdout, p.stdout
    env.run("sync", check=0)
    for cmd in ("status", "check"):
        p = env.run(cmd)
        assert "rebuilt from JSM" in p.stdout and "6 submissions from 6 requests" in p.stdout, (cmd, p.stdout)
    doc = __import__("json").loads(env.run("status", "--json", check=0).stdout)
    origin = doc["tracker_origin"]
    assert origin["kind"] == "rebuilt" and origin["requests"] == 6 and origin["adopted"] == 6, origin
    assert origin["command"] == "sync"


def test_rebuild_stopped_by_jira_leaves_tracker_empty_and_creates_nothing(world):
    env = Env(world, "rebuild_fail", SYNC_BATCH_SIZE="5")
    insert_spread(env, 12, "R", 0)
    env.run("sync", "--catch-up", check=0)
    env.delete_tracker()
    # The listing fails: nothing may be decided without it.
    env.faults([{"kind": "search", "action": "403", "times": 1}])
    reset_calls(env)
    p = env.run("sync")
    assert p.returncode == 4, (p.returncode, p.stderr)
    assert "listing the requests" in p.stderr, p.stderr
    assert calls(env)["create"] == 0
    assert env.tracker("SELECT count(*) FROM submissions")[0][0] == 0
    env.clear_faults()
    env.run("sync", check=0)
    assert calls(env)["create"] == 0
    assert states(env) == {"delivered": 12}
    assert_exactly_once(env)


def test_reconcile_apply_rebuilds_on_demand(world):
    env = Env(world, "rebuild_reconcile")
    insert_spread(env, 8, "R", 0)
    env.run("sync", check=0)
    env.delete_tracker()
    p = env.run("reconcile", "--apply")
    assert "rebuilt the tracker from 8 requests: 8 submissions adopted" in p.stdout, p.stdout
    assert states(env) == {"delivered": 8}, states(env)
    reset_calls(env)
    env.run("sync", check=0)
    assert calls(env)["create"] == 0
    p = env.run("status", check=0)
    assert "rebuilt from JSM" in p.stdout and "by reconcile" in p.stdout, p.stdout
    assert_exactly_once(env)


def test_deleted_tracker_rebuilds_from_the_key_field_without_labels(world):
    """SYNC_KEY_FIELD carries the whole key when the request type has no
    Labels: the rebuild lists by that field instead."""
    env = Env(world, "rebuild_keyfield", SYNC_KEY_FIELD="customfield_10050", SYNC_BATCH_SIZE="4")
    use_key_field_instead_of_labels(env)
    insert_spread(env, 9, "K", 0)
    env.run("sync", "--catch-up", check=0)
    keys = sorted(env.tracker("SELECT key, jsm_key FROM submissions"))
    env.delete_tracker()
    reset_calls(env)
    env.run("sync", check=0)
    assert calls(env)["create"] == 0 and calls(env)["search"] == 1, calls(env)
    # The rebuilt rows have the whole key the next tick computes, not a prefix.
    assert sorted(env.tracker("SELECT key, jsm_key FROM submissions")) == keys
    assert states(env) == {"delivered": 9}
    insert_spread(env, 2, "L", 50)
    env.run("sync", check=0)
    assert_exactly_once(env)


def test_rebuild_while_search_lags_queues_rows_and_adopts_them_later(world):
    """Requests made moments before the rebuild are not searchable yet: their
    rows are queued to be looked up once SYNC_SEARCH_SETTLE has passed, and
    are adopted then, not created again."""
    import time
    # The lag must outlast the two ticks between the lagging rows' creation
    # and the rebuild's search, however loaded the machine (make test runs
    # many tests at once): 10 s, where those ticks take about 1 s alone.
    lag = 10
    env = Env(world, "rebuild_lag", SYNC_SEARCH_SETTLE=str(lag + 1))
    insert_spread(env, 10, "Seen", 0)
    env.run("sync", check=0)
    env.jsm_config(search_lag_ms=lag * 1000)
    time.sleep(lag + 0.5)
    insert_spread(env, 5, "Lagging", 50)
    env.run("sync", check=0)                 # made just now: not searchable for `lag` s
    assert len(env.jsm_requests()) == 15
    env.delete_tracker()
    reset_calls(env)
    env.run("sync", check=0)
    assert calls(env)["create"] == 0, calls(env)
    assert states(env) == {"delivered": 10, "pending": 5}, states(env)
    assert env.tracker("SELECT count(*) FROM submissions WHERE state = 'pending' AND may_exist = 1")[0][0] == 5
    time.sleep(lag + 1.5)
    reset_calls(env)
    env.run("sync", check=0)
    assert calls(env)["create"] == 0, calls(env)
    assert states(env) == {"delivered": 15}, states(env)
    assert_exactly_once(env)

test_status_and_check_print_the_rebuild.valgrind = True


@sqlite_only   # reads the tracker file between kills
def test_rebuild_killed_halfway_leaves_the_tracker_empty_then_completes(world):
    """The rebuild is one tracker transaction: a SIGKILL at any moment leaves
    either no row or every row, never a tracker that looks rebuilt and lacks
    requests (which would then be created again)."""
    import random
    import signal
    import time
    seed = int(os.environ.get("WF2JSM_SEED") or random.SystemRandom().randrange(1, 10**6))
    print("rebuild kill seed: WF2JSM_SEED=%d" % seed, flush=True)
    rng = random.Random(seed)
    # Queued rows wait an hour before their lookup, so no tick here creates.
    env = Env(world, "rebuild_kill", SYNC_SEARCH_SETTLE="3600")
    insert_spread(env, 30, "Done", 0)
    env.run("sync", check=0)
    env.insert(3000, "Waiting", when="'2026-11-22 10:00:00+00'")
    env.delete_tracker()
    counts = set()
    for _ in range(6):
        proc = env.popen("sync")
        time.sleep(rng.uniform(0.05, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        # A kill before the new tracker's schema was committed (likelier on
        # a loaded machine) leaves a file without the table: no row either.
        n = env.tracker("SELECT count(*) FROM submissions")[0][0] if os.path.exists(
            env.path("tracker", "tracker.db")) and env.tracker(
            "SELECT count(*) FROM sqlite_master WHERE name = 'submissions'")[0][0] else 0
        assert n in (0, 3030), "a killed rebuild left %d of 3030 rows" % n
        counts.add(n)
        if n == 3030:
            break
    print("rows after each kill: %s" % sorted(counts), flush=True)
    reset_calls(env)
    start = time.time()
    env.run("sync", check=0)
    print("the sync after the kills took %.2f s" % (time.time() - start), flush=True)
    assert calls(env)["create"] == 0, calls(env)
    assert states(env) == {"delivered": 30, "pending": 3000}, states(env)
    assert len(env.jsm_requests()) == 30


def test_rebuild_adopts_the_first_of_duplicate_requests_and_reports_the_rest(world):
    """A key carried by two requests (a duplicate made by hand, or by a
    search that lagged long ago): the rebuild adopts the lowest-numbered, as
    sync's own lookup does, counts the other, and creates nothing."""
    env = Env(world, "rebuild_dups")
    insert_spread(env, 4, "R", 0)
    env.run("sync", check=0)
    first = sorted(env.jsm_requests(), key=lambda r: int(r["issueKey"].split("-")[1]))[0]
    dup = env.http("POST", "/_admin/request", {"requestFieldValues": {"summary": "copy by hand"},
                                                "labels": first["labels"]})["issueKey"]
    env.delete_tracker()
    reset_calls(env)
    env.run("sync", check=0)
    assert calls(env)["create"] == 0, calls(env)
    jsm_keys = [k for (k,) in env.tracker("SELECT jsm_key FROM submissions")]
    assert first["issueKey"] in jsm_keys and dup not in jsm_keys, (jsm_keys, dup)
    assert states(env) == {"delivered": 4}
    p = env.run("status", check=0)
    assert "4 submissions from 5 requests" in p.stdout and "1 duplicate request" in p.stdout, p.stdout
    assert "event=duplicate_requests jsm=%s" % dup in env.logs_text()


def test_rebuild_reads_every_page_of_the_listing(world):
    """130 requests are two pages of the search: both are read before
    anything is decided."""
    env = Env(world, "rebuild_pages", SYNC_BATCH_SIZE="50")
    env.insert(130, "Many", when="'2026-11-22 09:00:00+00'")   # one shared time: a tie
    env.run("sync", "--catch-up", check=0)
    assert len(env.jsm_requests()) == 130
    env.delete_tracker()
    reset_calls(env)
    p = env.run("sync", "--catch-up", check=0)
    assert "the tracker was empty: rebuilt it from 130 requests in JSM (130 submissions adopted" in p.stdout, p.stdout
    c = calls(env)
    assert c["create"] == 0 and c["search"] == 2, c
    assert states(env) == {"delivered": 130}, states(env)
    p = env.run("status", check=0)
    assert "130 submissions from 130 requests" in p.stdout, p.stdout
    env.insert(2, "After")
    env.run("sync", check=0)
    assert_exactly_once(env)
