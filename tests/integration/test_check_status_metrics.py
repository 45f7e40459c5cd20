"""The operator's view: `check` (preflight), `status` (text and --json),
SYNC_METRICS_FILE (Prometheus text format) and the catch-up progress bar."""
import json
import math
import os
import pty
import re
import stat
import subprocess

from harness import Env, SECRET_TOKEN, sqlite_only


# ---- helpers ----------------------------------------------------------------

def check_lines(p):
    """The item lines of `check` output, as (mark, text)."""
    items = []
    for line in p.stdout.splitlines():
        if not line or line.startswith("check:"):
            continue
        mark, _, text = line.partition(" ")
        assert mark in ("✓", "✗", "⚠", "-"), "not an item line: %r" % line
        items.append((mark, text))
    return items


def failed_items(p):
    return [text for mark, text in check_lines(p) if mark == "✗"]


METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (\S+)( -?\d+)?$" % (METRIC_NAME, LABEL, LABEL))
HELP = re.compile(r"^# HELP (%s) (.*)$" % METRIC_NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % METRIC_NAME)


def parse_prometheus(text):
    """A strict reader of the text exposition format: returns
    {name: {"type", "help", "samples": {labels_text: float}}}. Fails on any
    line that is not a HELP, a TYPE or a sample; on a TYPE after its samples;
    on a family whose samples are not contiguous; on a sample without HELP
    and TYPE; on a value that is not a float; on a negative counter."""
    assert text.endswith("\n"), "the file must end with a newline"
    families = {}
    order = []
    for n, line in enumerate(text[:-1].split("\n"), 1):
        m = HELP.match(line)
        if m:
            fam = families.setdefault(m.group(1), {"type": None, "help": None, "samples": {}})
            assert fam["help"] is None, "line %d: second HELP for %s" % (n, m.group(1))
            assert not fam["samples"], "line %d: HELP after samples of %s" % (n, m.group(1))
            fam["help"] = m.group(2)
            continue
        m = TYPE.match(line)
        if m:
            fam = families.setdefault(m.group(1), {"type": None, "help": None, "samples": {}})
            assert fam["type"] is None, "line %d: second TYPE for %s" % (n, m.group(1))
            assert not fam["samples"], "line %d: TYPE after samples of %s" % (n, m.group(1))
            fam["type"] = m.group(2)
            continue
        assert not line.startswith("#"), "line %d: unknown comment %r" % (n, line)
        m = SAMPLE.match(line)
        assert m, "line %d is not a sample: %r" % (n, line)
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        assert name in families, "line %d: sample of %s without HELP/TYPE" % (n, name)
        fam = families[name]
        assert fam["type"] and fam["help"], "line %d: %s lacks HELP or TYPE" % (n, name)
        if order and order[-1] != name:
            assert name not in order, "line %d: samples of %s are not contiguous" % (n, name)
        if not order or order[-1] != name:
            order.append(name)
        assert labels not in fam["samples"], "line %d: duplicate sample %s%s" % (n, name, labels)
        try:
            v = float(value)
        except ValueError:
            raise AssertionError("line %d: value %r is not a float" % (n, value))
        if fam["type"] == "counter":
            assert not math.isnan(v) and v >= 0, "line %d: counter %s is %r" % (n, name, value)
        fam["samples"][labels] = v
    return families


def metric(families, name, labels=""):
    return families[name]["samples"][labels]


def run_on_tty(env, *args):
    """Runs wf2jsm with stdout and stderr on a pseudo-terminal; returns
    (exit status, everything written)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBFORM_", "JIRA_", "JSM_", "SYNC_", "PG"))}
    full_env.update(env.env)
    full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    master, slave = pty.openpty()
    p = subprocess.Popen([env.bin] + list(args), cwd=env.dir, env=full_env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    rc = p.wait(60)
    text = out.decode(errors="replace")
    assert SECRET_TOKEN not in text and "AddressSanitizer" not in text and "runtime error:" not in text, text
    return rc, text


# ---- check ------------------------------------------------------------------

def test_check_all_good_exits_0(world):
    env = Env(world, "chk_good", SYNC_METRICS_FILE="metrics.prom")
    env.insert(3, "Row")
    p = env.run("check", check=0)
    items = check_lines(p)
    assert items and all(mark == "✓" for mark, _ in items), p.stdout
    text = p.stdout
    for expected in ("configuration is complete", "database is reachable", "index serves the cursor query",
                     "Jira authentication works", "service desk 1 exists", "request type 10 exists",
                     "every required field is mapped", "submission key travels as label wf2jsm-<key prefix>",
                     ("tracker tracker/tracker.db is writable and owner-only" if env.backend == "sqlite" else
                      "tracker %s (PostgreSQL, schema wf2jsm) is writable" % env.tracker_name), "SYNC_LOG_DIR=logs",
                     "SYNC_METRICS_FILE=metrics.prom"):
        assert expected in text, "missing %r in:\n%s" % (expected, text)
    assert env.jsm_stats()["calls"]["create"] == 0, "check must create nothing"


def test_check_wrong_token_fails_jira_auth_with_exit_4_and_keeps_checking(world):
    env = Env(world, "chk_auth", JIRA_API_TOKEN="wrong-" + SECRET_TOKEN)
    p = env.run("check", check=4)
    failed = failed_items(p)
    assert len(failed) == 1 and "Jira authentication" in failed[0] and "401" in failed[0], p.stdout
    assert "JIRA_API_TOKEN" in failed[0], "the line must say what to fix: %s" % failed[0]
    # the database and local checks still ran
    assert "✓ the database is reachable" in p.stdout and "✓ tracker" in p.stdout, p.stdout
    assert "- service desk, request type and fields: not checked" in p.stdout, p.stdout


def test_check_missing_mapped_column_exits_2(world):
    mapping = {"fields": {"summary": "subject", "customfield_10011": "impact", "description": "no_such_column"}}
    env = Env(world, "chk_col", mapping=mapping)
    p = env.run("check", check=2)
    failed = failed_items(p)
    assert len(failed) == 1, p.stdout
    assert "description" in failed[0] and "no_such_column" in failed[0] and "fix:" in failed[0], failed


def test_check_unmapped_required_field_and_bad_type_exit_2(world):
    mapping = {"fields": {"summary": "subject", "customfield_10020": "due_date"}}
    env = Env(world, "chk_req", mapping=mapping)
    p = env.run("check", check=2)
    failed = failed_items(p)
    assert any("customfield_10011" in f and "not mapped" in f for f in failed), p.stdout
    assert any("customfield_10020" in f and "due_date" in f and "never converts" in f for f in failed), p.stdout


def no_index_env(world, name, **env):
    e = Env(world, name, WEBFORM_TABLE="plain_submissions", **env)
    e.sql("CREATE TABLE plain_submissions AS SELECT * FROM webform_submissions")
    return e


def test_check_table_without_cursor_index_is_a_warning_exit_0(world):
    env = no_index_env(world, "chk_idx")
    p = env.run("check", check=0)
    assert failed_items(p) == [], p.stdout
    warned = [text for mark, text in check_lines(p) if mark == "⚠"]
    assert len(warned) == 1 and "no index serves the cursor query" in warned[0], p.stdout
    assert "CREATE INDEX ON plain_submissions (submitted_date, id)" in warned[0], warned
    # the other checks went on
    assert "✓ Jira authentication works" in p.stdout and "✓ every required field is mapped" in p.stdout
    assert "check: everything holds (1 warning)" in p.stdout, p.stdout


def test_check_exit_is_the_class_of_the_problem_not_of_the_index_warning(world):
    # a bad token exits 4 even though the index line (listed first) warns
    env = no_index_env(world, "chk_idx_tok", JIRA_API_TOKEN="wrong-" + SECRET_TOKEN)
    p = env.run("check", check=4)
    assert len(failed_items(p)) == 1 and "Jira authentication" in failed_items(p)[0], p.stdout
    assert "no index serves the cursor query" in p.stdout
    # a mapping naming an unknown column exits 2 with the same warning
    mapping = {"fields": {"summary": "subject", "customfield_10011": "impact", "description": "no_such_column"}}
    env = no_index_env(world, "chk_idx_map")
    env.write_mapping(mapping)
    p = env.run("check", check=2)
    assert len(failed_items(p)) == 1 and "no_such_column" in failed_items(p)[0], p.stdout
    assert "exit 2 (the most severe problem's class)" in p.stdout, p.stdout


@sqlite_only
def test_check_exit_is_the_most_severe_class(world):
    # a tracker others can read (5) outranks a bad token (4), whichever is listed first
    env = Env(world, "chk_worst", JIRA_API_TOKEN="wrong-" + SECRET_TOKEN)
    env.run("check", check=4)
    os.chmod(env.path("tracker", "tracker.db"), 0o644)
    p = env.run("check", check=5)
    failed = failed_items(p)
    assert len(failed) == 2 and "Jira authentication" in failed[0] and "chmod 600" in failed[1], p.stdout


def test_check_says_whether_the_account_may_look_up_and_create_customers(world):
    env = Env(world, "chk_cust", SYNC_CUSTOMER_EMAIL_COLUMN="contact_email")
    p = env.run("check", check=0)
    assert "✓ requests are raised on behalf of the address in column contact_email" in p.stdout, p.stdout
    assert "✓ this account may look up the customers of service desk 1" in p.stdout, p.stdout
    assert "✓ this account may create customers and add them to service desk 1" in p.stdout, p.stdout
    env.http("POST", "/_admin/customers", {"policy": {"may_create": False, "may_view": False}})
    p = env.run("check", check=0)
    warned = [text for mark, text in check_lines(p) if mark == "⚠"]
    assert any("may not look up the customers" in w for w in warned), p.stdout
    assert any("may not create customers" in w and "manual fix" in w for w in warned), p.stdout
    assert env.jsm_stats()["calls"]["create_customer"] == 0, "check must create nothing"


@sqlite_only
def test_check_tracker_readable_by_others_exits_5_with_chmod_hint(world):
    env = Env(world, "chk_perm")
    env.run("check", check=0)
    tracker = env.path("tracker", "tracker.db")
    os.chmod(tracker, 0o644)
    p = env.run("check", check=5)
    failed = failed_items(p)
    assert len(failed) == 1 and "chmod 600 tracker/tracker.db" in failed[0], p.stdout
    os.chmod(tracker, 0o600)
    os.makedirs(env.path("logs"), mode=0o755)
    os.chmod(env.path("logs"), 0o755)
    p = env.run("check", check=5)
    assert any("chmod 700 logs" in f for f in failed_items(p)), p.stdout


def test_check_reports_the_most_severe_failure_class(world):
    # incomplete Jira settings (2) and a database that is down (3): the
    # local and database checks still run, the exit status is the database's.
    env = Env(world, "chk_first", JSM_SERVICE_DESK_ID="", WEBFORM_DB_URL="postgresql://nobody@127.0.0.1:1/none")
    p = env.run("check", check=3)
    failed = failed_items(p)
    assert "JSM_SERVICE_DESK_ID" in failed[0] and any("database" in f for f in failed[1:]), p.stdout
    assert "\t" not in p.stdout, "libpq's multi-line message must be one line"
    assert "✓ tracker" in p.stdout


def test_check_warns_about_values_that_will_not_map(world):
    env = Env(world, "chk_vals")
    env.insert(2, "Good")
    env.sql("INSERT INTO webform_submissions (subject, category, impact) VALUES ('Bad', 'Furniture', 'Catastrophic')")
    p = env.run("check", check=0)
    warned = [text for mark, text in check_lines(p) if mark == "⚠"]
    assert any("customfield_10010" in w and "'Furniture'" in w and "manual fix" in w for w in warned), p.stdout
    assert any("customfield_10011" in w and "'Catastrophic'" in w and "parked" in w for w in warned), p.stdout


# ---- status -----------------------------------------------------------------

STATUS_KEYS = {"counts", "cursor", "backlog", "runs", "problems", "manual_fixes", "changed", "change_detection",
               "tracker_origin"}


def test_status_shows_counts_and_last_run(world):
    env = Env(world, "st_counts")
    env.insert(4, "Row")
    env.run("sync", check=0)
    p = env.run("status", check=0)
    lines = p.stdout.splitlines()
    assert "count delivered=4" in lines and "count parked=0" in lines, p.stdout
    run = [line for line in lines if line.startswith("run ")]
    assert len(run) == 1 and "command=sync" in run[0] and "exit=0" in run[0] and "delivered=4" in run[0], p.stdout
    assert "backlog count=0 new_rows=0 open_rows=0" in lines, p.stdout


def test_status_json_has_the_documented_schema(world):
    env = Env(world, "st_json", SYNC_BATCH_SIZE="2")
    env.insert(5, "Row")
    env.run("sync", check=0)
    doc = json.loads(env.run("status", "--json", check=0).stdout)
    assert set(doc) == STATUS_KEYS, sorted(doc)
    assert doc["counts"] == {"pending": 0, "creating": 0, "created": 0, "attaching": 0, "delivered": 2,
                             "failed": 0, "parked": 0}
    assert set(doc["cursor"]) == {"source_time", "source_time_us", "utc"}
    assert isinstance(doc["cursor"]["source_time_us"], int) and doc["cursor"]["utc"].endswith("Z")
    # one tick of 2: the other 3 rows are after the cursor
    assert doc["backlog"] == {"count": 3, "new_rows": 3, "open_rows": 0, "error": None}, doc["backlog"]
    assert len(doc["runs"]) == 1
    assert set(doc["runs"][0]) == {"id", "command", "started_at", "finished_at", "exit_code", "seen", "created",
                                   "adopted", "delivered", "failed", "parked", "attachments_uploaded",
                                   "attachments_failed", "retries", "http_429", "manual_fixes", "duration_ms", "error",
                                   "http_requests", "requests_per_second", "peak_in_flight", "garbled", "lookups",
                                   "lookup_calls"}
    assert doc["runs"][0]["http_requests"] > 0 and doc["runs"][0]["peak_in_flight"] >= 1, doc["runs"][0]
    assert doc["runs"][0]["lookups"] == 1, doc["runs"][0]
    assert doc["runs"][0]["delivered"] == 2 and doc["runs"][0]["exit_code"] == 0
    assert doc["problems"] == [] and doc["manual_fixes"] == [] and doc["changed"] == []
    assert doc["change_detection"] == {"checked": 2, "limit": 1000, "complete": True, "not_found_in_source": 0,
                                       "error": None}, doc["change_detection"]
    env.run("sync", "--catch-up", check=0)
    doc = json.loads(env.run("status", "--json", "--runs", "1", check=0).stdout)
    assert doc["backlog"]["count"] == 0 and len(doc["runs"]) == 1 and doc["runs"][0]["id"] == 2


def test_status_lists_parked_rows_with_reason_and_manual_fixes(world):
    env = Env(world, "st_parked")
    env.insert(2, "Good")
    env.sql("INSERT INTO webform_submissions (subject, impact) VALUES ('Bad impact', 'Catastrophic')")
    env.sql("INSERT INTO webform_submissions (subject, category, impact) VALUES ('Odd', 'Furniture', 'Low')")
    env.run("sync", "--catch-up", check=1)
    bad_id = env.sql("SELECT id FROM webform_submissions WHERE subject = 'Bad impact'")[0][0]
    doc = json.loads(env.run("status", "--json", check=0).stdout)
    assert len(doc["problems"]) == 1, doc["problems"]
    prob = doc["problems"][0]
    assert prob["state"] == "parked" and prob["source_id"] == bad_id and "Catastrophic" in prob["last_error"]
    assert prob["error_class"] == "user_fixable" and prob["attempts"] == 1
    assert [f["value"] for f in doc["manual_fixes"]] == ["Furniture"]
    # dropped fields are no reason to call a row changed
    assert doc["changed"] == [], doc["changed"]
    text = env.run("status", check=0).stdout
    assert any(line.startswith("problem state=parked id=%s " % bad_id) and "Catastrophic" in line
               for line in text.splitlines()), text
    assert "manual_fix " in text and "field=customfield_10010 value=Furniture" in text, text


def test_status_lists_rows_edited_after_delivery(world):
    env = Env(world, "st_changed")
    env.insert(4, "Row")
    env.run("sync", check=0)
    edited = env.sql("SELECT id FROM webform_submissions ORDER BY id LIMIT 1 OFFSET 1")[0][0]
    env.sql("UPDATE webform_submissions SET message = 'edited later' WHERE id = %s" % edited)
    doc = json.loads(env.run("status", "--json", check=0).stdout)
    assert [c["source_id"] for c in doc["changed"]] == [edited], doc["changed"]
    jsm_key = env.tracker("SELECT jsm_key FROM submissions WHERE source_id = '%s'" % edited)[0][0]
    assert doc["changed"][0]["jsm_key"] == jsm_key and doc["changed"][0]["delivered_at"]
    assert doc["change_detection"]["checked"] == 4
    text = env.run("status", check=0).stdout
    assert "changed id=%s ticket=%s " % (edited, jsm_key) in text, text
    # a row deleted from the source is counted, not listed as changed
    env.sql("DELETE FROM webform_submissions WHERE id <> %s AND id = (SELECT max(id) FROM webform_submissions)" % edited)
    doc = json.loads(env.run("status", "--json", check=0).stdout)
    assert doc["change_detection"]["not_found_in_source"] == 1 and len(doc["changed"]) == 1


def test_status_without_database_still_shows_the_tracker(world):
    env = Env(world, "st_nodb")
    env.insert(2, "Row")
    env.run("sync", check=0)
    env.env["WEBFORM_DB_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    p = env.run("status", check=0)
    assert "count delivered=2" in p.stdout and "backlog count=unknown" in p.stdout, p.stdout
    assert "\t" not in p.stdout
    doc = json.loads(env.run("status", "--json", check=0).stdout)
    assert doc["backlog"]["count"] is None and "database" in doc["backlog"]["error"]
    assert doc["counts"]["delivered"] == 2 and doc["change_detection"]["error"]


def test_status_on_a_terminal_is_an_aligned_table(world):
    env = Env(world, "st_tty")
    env.insert(2, "Row")
    env.run("sync", check=0)
    rc, out = run_on_tty(env, "status")
    assert rc == 0, out
    assert re.search(r"STATE +COUNT", out) and re.search(r"delivered +2\r?\n", out), out
    assert re.search(r"RUN +COMMAND +STARTED +EXIT", out), out


# ---- metrics ----------------------------------------------------------------

def test_metrics_file_after_sync_is_valid_prometheus_text(world):
    env = Env(world, "met", SYNC_METRICS_FILE="metrics/wf2jsm.prom")
    os.makedirs(env.path("metrics"))
    env.insert(6, "Row")
    env.run("sync", "--dry-run", check=0)
    assert not os.path.exists(env.path("metrics", "wf2jsm.prom")), "a dry run writes no metrics"
    env.run("sync", "--catch-up", check=0)
    path = env.path("metrics", "wf2jsm.prom")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert os.listdir(env.path("metrics")) == ["wf2jsm.prom"], "temporary file left behind"
    text = open(path).read()
    fams = parse_prometheus(text)
    for name, kind in [("wf2jsm_last_run_timestamp_seconds", "gauge"),
                       ("wf2jsm_last_success_timestamp_seconds", "gauge"),
                       ("wf2jsm_run_duration_seconds", "gauge"), ("wf2jsm_delivered_total", "counter"),
                       ("wf2jsm_failed_total", "counter"), ("wf2jsm_parked_total", "counter"),
                       ("wf2jsm_backlog", "gauge"), ("wf2jsm_http_429_total", "counter"),
                       ("wf2jsm_last_run_exit_code", "gauge"), ("wf2jsm_submissions", "gauge")]:
        assert fams[name]["type"] == kind, (name, fams.get(name))
    rows = len(env.rows())
    assert metric(fams, "wf2jsm_delivered_total") == rows == 6
    assert metric(fams, "wf2jsm_submissions", '{state="delivered"}') == 6
    assert metric(fams, "wf2jsm_submissions", '{state="parked"}') == 0
    assert metric(fams, "wf2jsm_backlog") == 0
    assert metric(fams, "wf2jsm_last_run_exit_code") == 0
    assert metric(fams, "wf2jsm_failed_total") == 0 and metric(fams, "wf2jsm_http_429_total") == 0
    last_run = metric(fams, "wf2jsm_last_run_timestamp_seconds")
    success = metric(fams, "wf2jsm_last_success_timestamp_seconds")
    assert abs(last_run - success) < 2 and success > 1.7e9, (last_run, success)
    assert SECRET_TOKEN not in text

    # a failed run: exit code 4, the last success stays what it was
    env.insert(1, "Later")
    env.run("sync", env={"JIRA_API_TOKEN": "wrong"}, check=4)
    fams = parse_prometheus(open(path).read())
    assert metric(fams, "wf2jsm_last_run_exit_code") == 4
    assert metric(fams, "wf2jsm_last_success_timestamp_seconds") == success
    assert metric(fams, "wf2jsm_backlog") == 1
    assert metric(fams, "wf2jsm_last_run_timestamp_seconds") >= last_run


def test_metrics_count_429s_and_parked_rows(world):
    env = Env(world, "met429", SYNC_METRICS_FILE="wf2jsm.prom")
    env.insert(2, "Row")
    env.sql("INSERT INTO webform_submissions (subject, impact) VALUES ('Bad impact', 'Catastrophic')")
    env.faults([{"kind": "create", "action": "429", "times": 1, "retry_after": 0}])
    env.run("sync", "--catch-up", check=1)
    fams = parse_prometheus(open(env.path("wf2jsm.prom")).read())
    assert metric(fams, "wf2jsm_http_429_total") == 1
    assert metric(fams, "wf2jsm_parked_total") == 1
    assert metric(fams, "wf2jsm_submissions", '{state="parked"}') == 1
    assert metric(fams, "wf2jsm_delivered_total") == 2
    assert metric(fams, "wf2jsm_last_run_exit_code") == 1
    assert metric(fams, "wf2jsm_last_success_timestamp_seconds") == 0, "never succeeded yet"


def test_unwritable_metrics_file_does_not_fail_the_run(world):
    env = Env(world, "metbad", SYNC_METRICS_FILE="no/such/dir/wf2jsm.prom")
    env.insert(1, "Row")
    env.run("sync", check=0)
    assert "metrics_not_written" in env.logs_text()
    p = env.run("check", check=5)
    assert any("SYNC_METRICS_FILE" in f for f in failed_items(p)), p.stdout


# ---- the progress bar ---------------------------------------------------------

def test_catch_up_shows_progress_on_a_terminal_only(world):
    env = Env(world, "progress", SYNC_BATCH_SIZE="5")
    env.insert(12, "Row")
    p = env.run("sync", "--catch-up", check=0)
    assert "\r" not in p.stderr and "ETA" not in p.stderr, "no progress bar without a terminal: %r" % p.stderr
    env.insert(12, "More")
    rc, out = run_on_tty(env, "sync", "--catch-up")
    assert rc == 0, out
    assert "\r[" in out and "12/12" in out and "/s" in out and "ETA" in out, repr(out)


# Rerun under valgrind by `make valgrind` (part of `make test`).
for _test in (test_check_all_good_exits_0, test_status_json_has_the_documented_schema,
              test_status_lists_rows_edited_after_delivery, test_metrics_file_after_sync_is_valid_prometheus_text):
    _test.valgrind = True
