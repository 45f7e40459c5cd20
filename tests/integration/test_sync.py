"""The sync job end to end: cursor, ties, late commits, bad rows, errors."""
import fcntl
import os
import stat
import subprocess
import threading
import time

from harness import Env, SECRET_TOKEN, TRACKER_SECRET, assert_exactly_once, pg_only, sqlite_only


def tick_until_quiet(env, max_ticks=50, **kw):
    """Runs plain ticks until one sees nothing to do; returns the tick count."""
    for n in range(1, max_ticks + 1):
        p = env.run("sync", **kw)
        assert p.returncode in (0, 1), p.stderr
        if env.tracker("SELECT seen, created, adopted FROM runs ORDER BY id DESC LIMIT 1")[0][1:] == (0, 0):
            return n
    raise AssertionError("still creating after %d ticks" % max_ticks)


def test_tie_of_100_plus_50_singles_lands_exactly_once(world):
    env = Env(world, "tie")
    env.insert(100, "Tie", when="'2026-11-22 10:00:00+00'")
    for i in range(50):
        env.insert(1, "Single%d" % i, when="'2026-11-22 10:00:00+00'::timestamptz + interval '%d second'" % (i + 1))
    ticks = tick_until_quiet(env)
    assert ticks >= 6, "150 rows in batches of 30 need at least 5 ticks, took %d" % ticks
    assert_exactly_once(env)
    assert len(env.jsm_requests()) == 150
    before = env.jsm_stats()["calls"]["create"]
    for _ in range(3):
        env.run("sync", check=0)
    assert env.jsm_stats()["calls"]["create"] == before, "repeated ticks created again"


def test_noop_tick_makes_no_http_call_and_one_connection_per_run(world):
    env = Env(world, "noop")
    env.insert(40, "Row")
    env.run("sync", "--catch-up", check=0)
    stats = env.jsm_stats()
    # creates and attaches use a fresh connection each (see jsm_client.c);
    # the reads reuse one: far fewer connections than calls.
    assert stats["connections"] <= 2 * 40 + 2, stats
    env.http("POST", "/_admin/stats/reset", {})
    env.run("sync", check=0)
    assert env.jsm_stats()["total_calls"] == 0


def test_late_commits_from_four_writers_are_not_lost(world):
    env = Env(world, "late", SYNC_BATCH_SIZE="7")
    stop = threading.Event()
    errors = []

    def writer(n):
        # now() is taken at BEGIN; the commit comes later, after rows with
        # later timestamps may already have been delivered.
        for i in range(10):
            sql = ("BEGIN; INSERT INTO webform_submissions (subject, message, category, impact) "
                   "VALUES ('W%d-%d', 'late', 'Access', 'High'); SELECT pg_sleep(%f); COMMIT;"
                   % (n, i, 0.05 + ((n * 7 + i * 3) % 10) / 25.0))
            r = subprocess.run(["psql", "-X", "-q", env.db_url, "-c", sql], capture_output=True, text=True)
            if r.returncode:
                errors.append(r.stderr)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    ticks = 0
    while any(t.is_alive() for t in threads):
        env.run("sync")
        ticks += 1
    for t in threads:
        t.join()
    assert not errors, errors
    tick_until_quiet(env)
    assert ticks >= 3, "ticks must run while writers commit (ran %d)" % ticks
    assert len(env.rows()) == 40
    assert_exactly_once(env)


def test_invalid_option_does_not_stop_the_others(world):
    env = Env(world, "badopt")
    env.insert(3, "Good")
    env.sql("INSERT INTO webform_submissions (subject, category, impact) VALUES ('Bad category', 'Furniture', 'Low')")
    env.insert(3, "Good later")
    p = env.run("sync", "--catch-up")
    assert p.returncode == 0, p.stderr
    reqs = assert_exactly_once(env)
    bad_id = env.sql("SELECT id FROM webform_submissions WHERE subject = 'Bad category'")[0][0]
    assert "customfield_10010" not in reqs[bad_id]["fields"], "the invalid option must be left out"
    for sid, req in reqs.items():
        if sid != bad_id:
            assert req["fields"]["customfield_10010"] == {"id": "10101"}, "select sent as an option object"
    fixes = env.tracker("SELECT field_id, value, jsm_key FROM manual_fixes")
    assert fixes == [("customfield_10010", "Furniture", reqs[bad_id]["issueKey"])], fixes


def test_invalid_required_value_parks_the_row_only(world):
    env = Env(world, "badreq")
    env.insert(2, "Good")
    env.sql("INSERT INTO webform_submissions (subject, impact) VALUES ('Bad impact', 'Catastrophic')")
    env.insert(2, "Good later")
    p = env.run("sync", "--catch-up")
    assert p.returncode == 1, "a parked row makes the run exit 1: %s" % p.stderr
    bad_id = env.sql("SELECT id FROM webform_submissions WHERE subject = 'Bad impact'")[0][0]
    good = [r["id"] for r in env.rows() if r["id"] != bad_id]
    assert_exactly_once(env, expect_ids=good)
    state, err = env.tracker("SELECT state, last_error FROM submissions WHERE source_id = '%s'" % bad_id)[0]
    assert state == "parked" and "Catastrophic" in err, (state, err)
    env.run("sync", check=0)   # a parked row is not retried by itself
    assert len(env.jsm_requests()) == 4



def test_wrong_token_stops_the_run_with_exit_4_and_marks_nothing(world):
    env = Env(world, "auth", JIRA_API_TOKEN="wrong-" + SECRET_TOKEN)
    env.insert(5, "Row")
    p = env.run("sync", "--catch-up")
    assert p.returncode == 4, p.stderr
    assert "401" in p.stderr and "JIRA_API_TOKEN" in p.stderr, p.stderr
    assert SECRET_TOKEN not in env.logs_text()
    states = env.tracker("SELECT state, count(*) FROM submissions GROUP BY state")
    assert all(s not in ("failed", "parked") for s, _ in states), states
    assert env.jsm_requests() == []
    env.env["JIRA_API_TOKEN"] = SECRET_TOKEN
    env.run("sync", "--catch-up", check=0)
    assert_exactly_once(env)


def test_429_with_retry_after_is_honoured(world):
    # One in flight: the two 429s come one after the other, so do the waits.
    # Several in flight: the creates answered 429 together wait together,
    # and no create goes out before Retry-After has passed.
    for name, extra, least in (("r429", {"SYNC_MAX_IN_FLIGHT": 1}, 2.0), ("r429c", {}, 1.0)):
        env = Env(world, name, **extra)
        env.insert(3, "Row")
        env.faults([{"kind": "create", "action": "429", "times": 2, "retry_after": 1}])
        start = time.time()
        env.run("sync", "--catch-up", check=0)
        assert time.time() - start >= least, "Retry-After: 1 honoured (%s)" % name
        assert_exactly_once(env)
        assert env.tracker("SELECT http_429, retries FROM runs ORDER BY id DESC LIMIT 1")[0] == (2, 2)


def test_503_is_retried_for_reads_and_left_for_next_tick_for_creates(world):
    env = Env(world, "r503")
    env.insert(3, "Row")
    env.faults([{"kind": "attach_temp", "action": "503", "times": 2},
                {"kind": "create", "action": "503", "times": 1}])
    p = env.run("sync", "--catch-up")
    assert p.returncode == 1, "the 503'd create is failed for this run"
    env.clear_faults()
    env.run("sync", "--catch-up", check=0)
    assert_exactly_once(env)


@sqlite_only
def test_overlapping_tick_exits_75_at_once(world):
    env = Env(world, "lock")
    env.insert(1, "Row")
    os.makedirs(env.path("tracker"), exist_ok=True)
    with open(env.path("tracker", "tracker.db.lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        start = time.time()
        p = env.run("sync")
        assert p.returncode == 75, p.stderr
        assert time.time() - start < 5
    assert "another wf2jsm run" in env.logs_text()
    env.run("sync", check=0)


def test_files_are_owner_only_and_logs_have_no_secret(world):
    env = Env(world, "perms")
    env.insert(2, "Row")
    env.run("sync", check=0)
    tracker_files = [env.path("tracker", "tracker.db")] if env.backend == "sqlite" else []
    for path in tracker_files + [env.path("logs", f) for f in os.listdir(env.path("logs"))]:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode & 0o077 == 0, "%s has mode %o" % (path, mode)
    text = env.logs_text()
    assert SECRET_TOKEN not in text and TRACKER_SECRET not in text
    for line in filter(None, text.splitlines()):
        parts = line.split(" ")
        assert len(parts) >= 4 and parts[0].endswith("Z") and parts[1] in ("INFO", "WARN", "ERROR") \
            and parts[2].startswith("run="), "not a log line: %r" % line


def test_dry_run_writes_nothing_anywhere(world):
    env = Env(world, "dry")
    env.insert(2, "Row")
    p = env.run("sync", "--dry-run", check=0)
    assert p.stdout.count("would create") == 2 and "submission-" in p.stdout
    assert env.jsm_stats()["calls"]["create"] == 0
    assert not os.path.exists(env.path("logs"))
    env.run("sync", check=0)
    assert env.tracker("SELECT count(*) FROM submissions WHERE state = 'delivered'")[0][0] == 2


def test_config_errors_name_the_variable(world):
    env = Env(world, "cfg")
    p = env.run("sync", env={"SYNC_BATCH_SIZE": "lots"})
    assert p.returncode == 2 and "SYNC_BATCH_SIZE" in p.stderr, p.stderr
    p = env.run("sync", env={"JIRA_BASE_URL": "http://jira.example.com"})
    assert p.returncode == 2 and "JIRA_BASE_URL" in p.stderr and "https://" in p.stderr, p.stderr
    p = env.run("sync", env={"JSM_SERVICE_DESK_ID": ""})
    assert p.returncode == 2 and "JSM_SERVICE_DESK_ID" in p.stderr, p.stderr
    env.write_mapping({"fields": {"summary": "subject", "customfield_99999": "message"}})
    env.insert(1, "Row")
    p = env.run("sync")
    assert p.returncode == 2 and "customfield_99999" in p.stderr, p.stderr
    env.write_mapping({"fields": {"summary": "no_such_column", "customfield_10011": "impact"}})
    p = env.run("sync")
    assert p.returncode == 2 and "no_such_column" in p.stderr, p.stderr


def test_env_file_is_read_and_environment_wins(world):
    env = Env(world, "envfile")
    env.insert(1, "Row")
    with open(env.path("custom.env"), "w") as f:
        f.write("# comment\nexport SYNC_BATCH_SIZE='not a number'\nJSM_REQUEST_TYPE_ID=10\n")
    p = env.run("sync", "--env", "custom.env")
    assert p.returncode == 2 and "SYNC_BATCH_SIZE" in p.stderr
    p = env.run("sync", "--env", "custom.env", env={"SYNC_BATCH_SIZE": "5"})
    assert p.returncode == 0, p.stderr


def test_database_down_is_exit_3(world):
    env = Env(world, "dbdown", WEBFORM_DB_URL="postgresql://postgres@127.0.0.1:1/nothing")
    p = env.run("sync")
    assert p.returncode == 3 and "WEBFORM_DB_URL" in p.stderr, p.stderr


def test_database_down_mid_life_is_a_recorded_run_and_the_next_tick_catches_up(world):
    # sync finishes its connection with the window query (the tracker work
    # overlaps the handshake): a refused connection still stops the run
    # with exit 3 naming WEBFORM_DB_URL, before any row or HTTP call, and
    # the run is in `runs` with the database's error.
    import json
    env = Env(world, "dbdown2")
    env.insert(2, "Row")
    env.run("sync", check=0)
    good_url = env.env["WEBFORM_DB_URL"]
    env.insert(1, "Later")
    env.http("POST", "/_admin/stats/reset", {})
    env.env["WEBFORM_DB_URL"] = "postgresql://postgres@127.0.0.1:1/nothing"
    p = env.run("sync")
    assert p.returncode == 3 and "WEBFORM_DB_URL" in p.stderr and "connecting" in p.stderr, p.stderr
    assert env.jsm_stats()["total_calls"] == 0
    env.env["WEBFORM_DB_URL"] = good_url
    runs = json.loads(env.run("status", "--json", check=0).stdout)["runs"]
    assert runs[0]["exit_code"] == 3 and "connecting" in (runs[0]["error"] or ""), runs[0]
    env.run("sync", check=0)
    assert_exactly_once(env)


def test_jsm_400_on_an_optional_field_creates_without_it_and_records_a_fix(world):
    import base64
    import json
    import urllib.request
    env = Env(world, "srv400")
    env.insert(3, "Row")
    env.run("fields", check=0)       # caches the field list: Software is valid
    req = urllib.request.Request(world.jsm_url + "/rest/servicedeskapi/servicedesk/1/requesttype/10/field",
                                 headers={"Authorization": "Basic " + base64.b64encode(
                                     ("demo@example.com:" + SECRET_TOKEN).encode()).decode()})
    fields = json.load(urllib.request.urlopen(req))["requestTypeFields"]
    for f in fields:
        if f["fieldId"] == "customfield_10010":   # an admin removes "Software" in Jira
            f["validValues"] = [v for v in f["validValues"] if v["label"] != "Software"]
    env.jsm_config(fields=fields)
    p = env.run("sync", "--catch-up")
    assert p.returncode == 0, p.stderr
    reqs = assert_exactly_once(env)
    assert all("customfield_10010" not in r["fields"] for r in reqs.values())
    fixes = env.tracker("SELECT field_id, jsm_key, message FROM manual_fixes ORDER BY id")
    assert len(fixes) == 3 and all(f[0] == "customfield_10010" and f[1] for f in fixes), fixes
    assert sorted(f[1] for f in fixes) == sorted(r["issueKey"] for r in reqs.values())


# The valgrind pass (`make valgrind`, part of `make test`) reruns these with
# the plain binary under memcheck: they cover delivery, rejection, retries,
# auth failure and config errors without taking long under valgrind.
for _test in (test_invalid_option_does_not_stop_the_others, test_invalid_required_value_parks_the_row_only,
              test_503_is_retried_for_reads_and_left_for_next_tick_for_creates,
              test_wrong_token_stops_the_run_with_exit_4_and_marks_nothing, test_dry_run_writes_nothing_anywhere,
              test_config_errors_name_the_variable):
    _test.valgrind = True


def test_noop_tick_runs_one_sql_statement_even_with_metrics(world):
    env = Env(world, "onesql", SYNC_METRICS_FILE="metrics.prom")
    env.insert(35, "Row")
    env.run("sync", "--catch-up", check=0)
    datadir = open(os.path.join(world.pg_dir, "datadir")).read().strip()
    env.admin_psql("ALTER SYSTEM SET log_statement = 'all'")
    env.admin_psql("ALTER SYSTEM SET log_line_prefix = '%a|'")
    env.admin_psql("SELECT pg_reload_conf()")
    try:
        # The reload is asynchronous: wait until a new session sees it (a
        # fixed sleep may not cover a loaded machine).
        deadline = time.time() + 30
        while env.sql("SHOW log_statement") != [["all"]]:
            assert time.time() < deadline, "the server did not reload its configuration"
            time.sleep(0.05)
        with open(os.path.join(datadir, "server.log"), errors="replace") as f:
            f.seek(0, 2)
            env.run("sync", check=0)
            time.sleep(0.3)
            lines = [l for l in f.read().splitlines() if l.startswith("wf2jsm|")
                     and (" statement: " in l or " execute " in l)]
    finally:
        env.admin_psql("ALTER SYSTEM RESET log_statement")
        env.admin_psql("ALTER SYSTEM RESET log_line_prefix")
        env.admin_psql("SELECT pg_reload_conf()")
    assert len(lines) == 1, lines
    metrics = open(env.path("metrics.prom")).read()
    assert "\nwf2jsm_backlog 0\n" in metrics, metrics


def last_window(env):
    """The fields of the newest 'event=window' log line, as a dict."""
    lines = [l for l in env.logs_text().splitlines() if " event=window " in l]
    assert lines, "no window line in the logs"
    return dict(f.split("=", 1) for f in lines[-1].split() if "=" in f)


def test_known_rows_are_found_by_id_and_time_without_computing_keys(world):
    env = Env(world, "known_by_source")
    env.insert(40, "Row")
    env.run("sync", "--catch-up", check=0)
    # The first delivery recorded what the keys are made from.
    assert env.tracker("SELECT value FROM meta WHERE name = 'key_scheme'") == \
        [("v1;keys=id,submitted_date;id=id;time=submitted_date",)]
    env.run("sync", check=0)
    w = last_window(env)
    assert (w["rows"], w["worked"], w["keyed"]) == ("40", "0", "0"), w
    # New rows among known ones: only they are keyed, and delivered once.
    env.insert(2, "New")
    env.run("sync", check=0)
    w = last_window(env)
    assert (w["rows"], w["worked"], w["keyed"]) == ("42", "2", "2"), w
    assert_exactly_once(env)
    assert len(env.jsm_requests()) == 42
    # A tracker whose keys follow two schemes trusts neither: every row is
    # keyed again, and still nothing is created twice.
    env.tracker_write("UPDATE %smeta SET value = 'mixed' WHERE name = 'key_scheme'"
                      % ("" if env.backend == "sqlite" else "wf2jsm."))
    env.run("sync", check=0)
    w = last_window(env)
    assert (w["rows"], w["worked"], w["keyed"]) == ("42", "0", "42"), w
    assert len(env.jsm_requests()) == 42


def test_rows_keyed_by_other_columns_are_always_keyed(world):
    # The key covers the subject: a known id and time may carry a new key,
    # so every row's key is computed.
    env = Env(world, "keyed_by_subject", WEBFORM_KEY_COLUMNS="id,subject")
    env.insert(12, "Row")
    env.run("sync", "--catch-up", check=0)
    env.run("sync", check=0)
    w = last_window(env)
    assert (w["rows"], w["worked"], w["keyed"]) == ("12", "0", "12"), w
    env.sql("UPDATE webform_submissions SET subject = 'Edited' WHERE id = (SELECT min(id) FROM webform_submissions)")
    env.run("sync", check=0)
    w = last_window(env)
    assert (w["worked"], w["keyed"]) == ("1", "12"), w
    assert len(env.jsm_requests()) == 13


@sqlite_only
def test_sqlite_that_cannot_be_loaded_is_named_with_its_package(world):
    # SQLite is loaded on first use (modules/sqlite_loader.c): a library
    # that cannot be loaded is an error naming the file and the package,
    # not a crash, and nothing is sent to Jira.
    env = Env(world, "no_sqlite")
    env.insert(3, "Row")
    bogus = env.path("bogus-libs")
    os.makedirs(bogus)
    open(os.path.join(bogus, "libsqlite3.so.0"), "w").close()
    p = env.run("sync", env={"LD_LIBRARY_PATH": bogus})
    assert p.returncode == 5, (p.returncode, p.stderr)
    assert "cannot load libsqlite3.so.0 (install Debian's libsqlite3-0 package)" in p.stderr, p.stderr
    assert env.jsm_stats()["total_calls"] == 0
    env.run("sync", check=0)
    assert_exactly_once(env)
