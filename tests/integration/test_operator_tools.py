"""The operator commands: retry, rollback, reconcile, replay, with their
reports, their effects in JSM and the tracker, backups and the audit trail."""
import base64
import datetime
import glob
import hashlib
import json
import os
import sqlite3
import subprocess
import stat
import urllib.request

from harness import Env, SECRET_TOKEN, assert_exactly_once


# ---- helpers ---------------------------------------------------------------

def submission_key(row, columns=("id", "submitted_date")):
    """The program's unique key: SHA-256 over <C len:name><V len:value>..."""
    enc = b""
    for col in columns:
        name, value = col.encode(), row[col]
        enc += b"C%d:%s" % (len(name), name)
        enc += b"N;" if value is None else b"V%d:%s" % (len(value.encode()), value.encode())
    return hashlib.sha256(enc).hexdigest()


def key_labels(row):
    return ["wf2jsm", "wf2jsm-" + submission_key(row)[:32]]


def jira_delete(env, issue_key):
    """DELETE /rest/api/3/issue/{key} as a person in Jira would."""
    auth = base64.b64encode(("demo@example.com:%s" % SECRET_TOKEN).encode()).decode()
    req = urllib.request.Request(env.world.jsm_url + "/rest/api/3/issue/" + issue_key, method="DELETE",
                                 headers={"Authorization": "Basic " + auth})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204


def hand_made_request(env, row, summary="Made by hand"):
    """A request created in JSM outside wf2jsm, carrying row's key labels."""
    body = {"requestFieldValues": {"summary": summary, "customfield_10011": {"id": "10200"}},
            "labels": key_labels(row)}
    return env.http("POST", "/_admin/request", body)["issueKey"]


def iso_ago(hours):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=hours)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def tracker_snapshot(env):
    return env.tracker("SELECT * FROM submissions ORDER BY key")


def jsm_snapshot(env):
    return sorted((r["issueKey"], r["deleted"], len(r["attachments"]), json.dumps(r["fields"], sort_keys=True))
                  for r in env.jsm_requests(include_deleted=True))


def audit_lines(env):
    path = env.path("logs", "audit.jsonl")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, oct(os.stat(path).st_mode)
    with open(path) as f:
        lines = [json.loads(line) for line in f]
    for line in lines:
        assert set(line) == {"time", "command", "user", "jsm_key", "submission_key", "action", "result"}, line
        assert line["time"].endswith("Z") and line["user"], line
    return lines


def backups(env):
    bdir = env.path("tracker", "backups")
    if not os.path.isdir(bdir):
        return []
    assert stat.S_IMODE(os.stat(bdir).st_mode) == 0o700
    files = sorted(glob.glob(os.path.join(bdir, "tracker-*.db" if env.backend == "sqlite" else "tracker-*.sql")))
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
        assert not os.path.exists(f + "-wal"), "a backup is one self-contained file"
    return files


def backup_query(env, path, sql):
    """Runs sql on the tracker a backup holds: the SQLite file itself, or a
    fresh PostgreSQL tracker the SQL backup was restored into with psql, as
    an operator would."""
    if env.backend == "sqlite":
        con = sqlite3.connect(path)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()
    env.world.db_counter += 1
    name = "t%d_restore" % env.world.db_counter
    env.admin_psql("CREATE DATABASE %s" % name)
    url = env.world.pg_url.rsplit("/", 1)[0] + "/" + name
    env.run("status", env={"SYNC_TRACKER_DB": url}, check=0)   # an empty tracker of this schema version
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-f", path], check=True, capture_output=True)
    return env.tracker(sql, url=url)


def id_of(env, subject):
    return env.sql("SELECT id FROM webform_submissions WHERE subject = '%s'" % subject)[0][0]


def jsm_key_of(env, source_id):
    return env.tracker("SELECT jsm_key FROM submissions WHERE source_id = '%s'" % source_id)[0][0]


# ---- every command -----------------------------------------------------------

def test_operator_commands_have_help_and_refuse_bad_usage(world):
    env = Env(world, "ophelp")
    for cmd in ("retry", "rollback", "reconcile", "replay"):
        p = env.run(cmd, "--help", check=0)
        assert p.stdout.startswith("usage: wf2jsm %s" % cmd) and "--env FILE" in p.stdout, p.stdout
        p = env.run(cmd, "--no-such-option")
        assert p.returncode == 2 and "usage: wf2jsm %s" % cmd in p.stderr, p.stderr
    p = env.run("retry")
    assert p.returncode == 2 and "--parked" in p.stderr, p.stderr
    p = env.run("rollback", "--confirm")
    assert p.returncode == 2 and "exactly one of" in p.stderr, p.stderr
    p = env.run("rollback", "--run", "1", "--failed-only")
    assert p.returncode == 2, p.stderr
    p = env.run("rollback", "--since", "yesterday")
    assert p.returncode == 2 and "yesterday" in p.stderr, p.stderr
    p = env.run("rollback", "--run", "1", "--tracker-only", "--jira-only")
    assert p.returncode == 2, p.stderr
    p = env.run("replay")
    assert p.returncode == 2 and "--since" in p.stderr, p.stderr
    p = env.run("reconcile", "--delete-orphans")
    assert p.returncode == 2 and "--confirm" in p.stderr, p.stderr
    assert env.jsm_stats()["total_calls"] == 0


# ---- retry -------------------------------------------------------------------

def test_retry_parked_delivers_the_row_once_its_data_is_fixed(world):
    env = Env(world, "retry")
    env.sql("INSERT INTO webform_submissions (subject, impact, submitted_date) "
            "VALUES ('Bad impact', 'Catastrophic', now() - interval '2 hours')")
    env.insert(2, "Good")
    p = env.run("sync", "--catch-up")
    assert p.returncode == 1, p.stderr
    bad_id = id_of(env, "Bad impact")
    key = env.tracker("SELECT key FROM submissions WHERE source_id = '%s'" % bad_id)[0][0]
    assert env.tracker("SELECT state FROM submissions WHERE key = '%s'" % key) == [("parked",)]

    p = env.run("retry", "0123abcd")
    assert p.returncode == 2 and "0123abcd" in p.stderr and "status" in p.stderr, p.stderr
    p = env.run("retry", "abc")
    assert p.returncode == 2 and "at least 8" in p.stderr, p.stderr

    env.sql("UPDATE webform_submissions SET impact = 'High' WHERE id = %s" % bad_id)
    env.run("sync", check=0)   # parked rows wait for an operator
    assert len(env.jsm_requests()) == 2

    p = env.run("retry", "--parked", check=0)
    assert "requeued key=%s id=%s parked -> pending" % (key[:16], bad_id) in p.stdout, p.stdout
    assert env.tracker("SELECT state, attempts, error_class FROM submissions WHERE key = '%s'" % key) == \
        [("pending", 0, None)]
    assert any(a["action"] == "requeue" and a["submission_key"] == key for a in audit_lines(env))

    # The row is two hours older than the sync window: the retry path finds it.
    env.run("sync", check=0)
    assert_exactly_once(env)
    assert env.tracker("SELECT state FROM submissions WHERE key = '%s'" % key) == [("delivered",)]

    p = env.run("retry", key[:12].upper())
    assert p.returncode == 1 and "delivered already" in p.stderr, p.stderr
    p = env.run("retry", "id:%s" % bad_id)
    assert p.returncode == 1, p.stderr
    assert env.jsm_stats()["calls"]["create"] == 3


def test_retry_keeps_may_exist_so_a_lost_create_is_adopted_not_duplicated(world):
    env = Env(world, "retrylost", SYNC_MAX_ATTEMPTS="1")
    env.insert(1, "Row")
    env.faults([{"kind": "create", "action": "lost", "times": 1}])
    p = env.run("sync")
    assert p.returncode == 1, p.stderr
    env.clear_faults()
    sid = env.rows()[0]["id"]
    assert env.tracker("SELECT state, may_exist, jsm_key FROM submissions") == [("failed", 1, None)]
    env.run("retry", "--failed", "id:%s" % sid, check=0)
    assert env.tracker("SELECT state, may_exist, attempts FROM submissions") == [("pending", 1, 0)]
    env.run("sync", check=0)
    assert_exactly_once(env)
    assert env.jsm_stats()["calls"]["create"] == 1


# ---- rollback ------------------------------------------------------------------

def test_rollback_without_confirm_changes_nothing(world):
    env = Env(world, "rbdry")
    env.insert(3, "First")
    env.run("sync", check=0)
    env.insert(2, "Second")
    env.run("sync", check=0)
    run2 = env.tracker("SELECT max(id) FROM runs")[0][0]
    before_tracker, before_jsm = tracker_snapshot(env), jsm_snapshot(env)
    env.http("POST", "/_admin/stats/reset", {})

    p = env.run("rollback", "--run", str(run2), check=0)
    second = env.tracker("SELECT jsm_key, key, source_id FROM submissions WHERE created_run = %d" % run2)
    assert len(second) == 2
    for jsm_key, key, sid in second:
        assert "would delete %s and reset key=%s id=%s" % (jsm_key, key[:16], sid) in p.stdout, p.stdout
    assert "would delete 2 requests in JSM and reset 2 tracker rows; nothing was changed" in p.stdout

    p = env.run("rollback", "--since", "2000-01-01", check=0)
    assert p.stdout.count("would delete") == 6, p.stdout   # 5 rows and the total
    p = env.run("rollback", "--since", iso_ago(-1), check=0)
    assert "no submission matches" in p.stdout, p.stdout
    p = env.run("rollback", "--failed-only", "--tracker-only", check=0)
    assert "no submission matches" in p.stdout
    p = env.run("rollback", "--run", "999")
    assert p.returncode == 2 and "no run 999" in p.stderr, p.stderr

    assert tracker_snapshot(env) == before_tracker
    assert jsm_snapshot(env) == before_jsm
    assert env.jsm_stats()["total_calls"] == 0
    assert backups(env) == [] and not os.path.exists(env.path("logs", "audit.jsonl"))


def test_rollback_of_a_run_then_sync_recreates_exactly_those_requests(world):
    env = Env(world, "rbrun")
    env.insert(2, "Old", when="now() - interval '2 hours'")
    env.run("sync", check=0)
    run1 = env.tracker("SELECT max(id) FROM runs")[0][0]
    env.insert(3, "New")
    env.run("sync", check=0)
    old = dict(env.tracker("SELECT source_id, jsm_key FROM submissions WHERE created_run = %d" % run1))
    assert len(old) == 2
    keep = dict(env.tracker("SELECT source_id, jsm_key FROM submissions WHERE created_run <> %d" % run1))

    p = env.run("rollback", "--run", str(run1), "--confirm", check=0)
    for jsm_key in old.values():
        assert "deleted %s" % jsm_key in p.stdout, p.stdout
    assert "2 of 2 submissions rolled back" in p.stdout
    assert env.tracker("SELECT state, jsm_key, may_exist, delivered_at FROM submissions WHERE source_id IN (%s)"
                       % ",".join("'%s'" % s for s in old)) == [("pending", None, 0, None)] * 2
    deleted = {r["issueKey"] for r in env.jsm_requests(include_deleted=True) if r["deleted"]}
    assert deleted == set(old.values())

    files = backups(env)
    assert len(files) == 1
    assert backup_query(env, files[0], "SELECT count(*) FROM submissions WHERE state = 'delivered'") == [(5,)]
    assert backup_query(env, files[0], "SELECT count(*) FROM runs WHERE command = 'sync'") == [(2,)]
    lines = audit_lines(env)
    assert [l["action"] for l in lines] == ["backup", "delete_request", "reset_row", "delete_request", "reset_row"]
    assert lines[0]["result"].endswith(os.path.basename(files[0]))
    assert all(l["command"] == "rollback" for l in lines)
    assert {l["jsm_key"] for l in lines[1:]} == set(old.values())

    # The rolled-back rows are two hours behind the window: the retry path
    # brings them back, and only them.
    env.http("POST", "/_admin/stats/reset", {})
    env.run("sync", check=0)
    assert env.jsm_stats()["calls"]["create"] == 2
    by_id = assert_exactly_once(env)
    for sid, jsm_key in keep.items():
        assert by_id[sid]["issueKey"] == jsm_key
    for sid, jsm_key in old.items():
        assert by_id[sid]["issueKey"] != jsm_key

    # Deleting again finds them gone: 404 is fine, and rerunning is harmless.
    p = env.run("rollback", "--run", str(run1), "--confirm", check=0)
    assert "no submission matches" in p.stdout


def test_rollback_failed_only_removes_a_half_made_request(world):
    env = Env(world, "rbfail", SYNC_MAX_ATTEMPTS="1")
    env.insert(1, "Row")
    # A 500 proves nothing: the attachments are listed and the attach is
    # sent once more in the same run; the second 500 leaves it half made.
    env.faults([{"kind": "attach", "action": "500", "times": 2}])
    p = env.run("sync")
    assert p.returncode == 1, p.stderr
    env.clear_faults()
    state, jsm_key = env.tracker("SELECT state, jsm_key FROM submissions")[0]
    assert state in ("failed", "parked") and jsm_key, (state, jsm_key)
    p = env.run("rollback", "--failed-only", "--confirm", check=0)
    assert "deleted %s" % jsm_key in p.stdout, p.stdout
    env.run("sync", check=0)
    by_id = assert_exactly_once(env)
    assert list(by_id.values())[0]["issueKey"] != jsm_key


# ---- reconcile -------------------------------------------------------------------

def test_reconcile_adopts_an_orphan_made_by_hand_and_sync_makes_no_duplicate(world):
    env = Env(world, "rcorphan")
    env.insert(3, "Synced", when="now() - interval '3 hours'")
    env.run("sync", check=0)
    # Not synced yet: one an hour old, and the newest, whose request someone
    # made by hand in JSM with the submission's labels.
    env.insert(1, "Older unsynced", when="now() - interval '1 hour'")
    env.insert(1, "Hand made")
    row = [r for r in env.rows() if r["subject"] == "Hand made 1"][0]
    orphan = hand_made_request(env, row)

    before = tracker_snapshot(env)
    p = env.run("reconcile")
    assert p.returncode == 1, p.stderr
    assert "orphan     %s key=%s: the tracker does not know" % (orphan, submission_key(row)[:16]) in p.stdout, p.stdout
    assert "1 orphan, 0 ghosts" in p.stdout, p.stdout
    assert tracker_snapshot(env) == before

    p = env.run("reconcile", "--apply", check=0)
    assert "-> %s: adopted for id=%s" % (orphan, row["id"]) in p.stdout, p.stdout
    assert "queued 1 older submission" in p.stdout, p.stdout
    assert env.tracker("SELECT state, jsm_key, adopted FROM submissions WHERE source_id = '%s'" % row["id"]) == \
        [("attaching", orphan, 1)]
    assert [l["action"] for l in audit_lines(env)] == ["backup", "queue_unseen", "adopt_new"]
    assert len(backups(env)) == 1

    env.http("POST", "/_admin/stats/reset", {})
    env.run("sync", check=0)
    by_id = assert_exactly_once(env)   # also the row an hour old, which the cursor must not skip
    assert by_id[row["id"]]["issueKey"] == orphan
    assert env.jsm_stats()["calls"]["create"] == 1
    p = env.run("reconcile", check=0)
    assert "agree" in p.stdout, p.stdout


def test_reconcile_lost_create_ghost_missing_files_and_duplicates(world):
    env = Env(world, "rcmix")
    env.insert(4, "Row")
    env.faults([{"kind": "create", "action": "lost", "times": 1}])
    p = env.run("sync", "--catch-up")
    assert p.returncode == 1, p.stderr
    env.clear_faults()
    ids = [r["id"] for r in env.rows()]
    rows = {r["id"]: r for r in env.rows()}
    lost = env.tracker("SELECT source_id FROM submissions WHERE jsm_key IS NULL")[0][0]
    lost_ticket = [r["issueKey"] for r in env.jsm_requests()
                   if ("wf2jsm-" + submission_key(rows[lost])[:32]) in r["labels"]][0]
    others = [i for i in ids if i != lost]
    ghost_id, missing_id = others[0], others[1]
    ghost_ticket = jsm_key_of(env, ghost_id)
    jira_delete(env, ghost_ticket)
    # The tracker points at a bare request carrying the key; the complete one
    # becomes a second request for the same submission.
    real_ticket = jsm_key_of(env, missing_id)
    bare = hand_made_request(env, rows[missing_id], summary="Bare")
    env.tracker_write("UPDATE submissions SET jsm_key = '%s' WHERE source_id = '%s'" % (bare, missing_id))

    p = env.run("reconcile")
    assert p.returncode == 1
    out = p.stdout
    assert "orphan     %s key=" % lost_ticket in out and "without a request" in out, out
    assert "ghost      %s" % ghost_ticket in out, out
    assert "missing    %s" % bare in out and "submission-%s.csv" % missing_id in out, out
    assert "duplicate  %s" % real_ticket in out, out
    assert "1 orphan, 1 ghost, 1 duplicate, 1 missing attachment, 0 mismatches" in out, out

    p = env.run("reconcile", "--apply")
    assert p.returncode == 1, "the duplicate is left for a person: " + p.stdout
    assert "fixed 3, left 1" in p.stdout, p.stdout
    env.run("sync", check=0)
    assert jsm_key_of(env, lost) == lost_ticket
    assert jsm_key_of(env, missing_id) == bare
    assert jsm_key_of(env, ghost_id) not in (None, ghost_ticket)
    assert env.tracker("SELECT count(*) FROM submissions WHERE state = 'delivered'")[0][0] == 4

    p = env.run("reconcile", "--delete-orphans")
    assert p.returncode == 2 and "--confirm" in p.stderr
    assert any(r["issueKey"] == real_ticket for r in env.jsm_requests())
    p = env.run("reconcile", "--delete-orphans", "--confirm", check=0)
    assert "-> %s: deleted" % real_ticket in p.stdout, p.stdout
    env.run("sync", check=0)
    assert_exactly_once(env)
    p = env.run("reconcile", check=0)
    assert "agree" in p.stdout
    actions = [l["action"] for l in audit_lines(env)]
    assert sorted(actions) == sorted(["backup", "adopt", "requeue_ghost", "reattach", "backup", "delete_duplicate"]), \
        actions
    assert len(backups(env)) == 2


def test_reconcile_deletes_an_unknown_orphan_with_confirm(world):
    env = Env(world, "rcdel")
    env.insert(1, "Row")
    env.run("sync", check=0)
    stray = env.http("POST", "/_admin/request", {"requestFieldValues": {
        "summary": "Stray", "customfield_10011": {"id": "10200"}},
        "labels": ["wf2jsm", "wf2jsm-" + "ab" * 16]})["issueKey"]
    p = env.run("reconcile", "--apply")
    assert p.returncode == 1 and "no source row has the key" in p.stdout, p.stdout
    p = env.run("reconcile", "--delete-orphans", "--confirm", check=0)
    assert "-> %s: deleted" % stray in p.stdout, p.stdout
    assert_exactly_once(env)


def test_reconcile_needs_the_labels_carrier(world):
    env = Env(world, "rccarrier", SYNC_KEY_FIELD="customfield_10030")
    env.jsm_config(fields=[
        {"fieldId": "summary", "name": "Summary", "required": True, "jiraSchema": {"type": "string", "system": "summary"}},
        {"fieldId": "customfield_10030", "name": "Contact email",
         "jiraSchema": {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
                        "customId": 10030}}])
    p = env.run("reconcile")
    assert p.returncode == 2 and "labels" in p.stderr and "Labels" in p.stderr, p.stderr


# ---- replay ----------------------------------------------------------------------

def test_replay_delivers_a_late_row_once_and_updates_changed_requests(world):
    env = Env(world, "replay")
    env.insert(3, "Early", when="now() - interval '3 hours'")
    env.run("sync", check=0)
    env.insert(2, "Recent")
    env.run("sync", check=0)
    # Committed long after its timestamp: behind every window from now on.
    env.insert(1, "Late", when="now() - interval '2 hours'")
    env.run("sync", check=0)
    assert len(env.jsm_requests()) == 5

    p = env.run("replay", "--since", iso_ago(4), "--dry-run", check=0)
    assert p.stdout.count("would create") == 1 and "Late 1" in p.stdout, p.stdout
    assert len(env.jsm_requests()) == 5
    env.run("replay", "--since", iso_ago(4), "--until", iso_ago(1), check=0)
    assert_exactly_once(env)
    env.run("replay", "--since", "2000-01-01", check=0)
    assert_exactly_once(env)
    assert env.jsm_stats()["calls"]["create"] == 6

    changed = id_of(env, "Early 2")
    key = jsm_key_of(env, changed)
    env.sql("UPDATE webform_submissions SET subject = 'Early 2, corrected', category = NULL WHERE id = %s" % changed)
    p = env.run("replay", "--since", iso_ago(4), "--update-changed", "--dry-run", check=0)
    assert p.stdout.count("would update") == 1 and "Early 2, corrected" in p.stdout, p.stdout
    assert env.jsm_stats()["calls"].get("edit_issue", 0) == 0

    p = env.run("replay", "--since", iso_ago(4), "--update-changed", check=0)
    assert "updated: %s id=%s" % (key, changed) in p.stdout, p.stdout
    stats = env.jsm_stats()["calls"]
    assert stats["edit_issue"] == 1 and stats["create"] == 6, stats
    req = [r for r in env.jsm_requests() if r["issueKey"] == key][0]
    assert req["fields"]["summary"] == "Early 2, corrected"
    assert "customfield_10010" not in req["fields"], "a cleared column clears its field"
    assert req["fields"]["description"]["type"] == "doc", "platform v3 takes ADF"
    assert "wf2jsm" in req["labels"] and len(req["labels"]) == 2, req["labels"]
    assert len(env.jsm_requests()) == 6

    env.run("replay", "--since", iso_ago(4), "--update-changed", check=0)
    assert env.jsm_stats()["calls"]["edit_issue"] == 1, "the stored checksum was updated"

    # A new value JSM refuses for an optional field goes to the manual-fix
    # list once; the rest of the update lands.
    other = id_of(env, "Early 3")
    env.sql("UPDATE webform_submissions SET subject = 'Early 3, v2', contact_email = 'x@example.com' "
            "WHERE id = %s" % other)
    fields = env.jsm_config()["fields"]
    for f in fields:
        if f["fieldId"] == "customfield_10030":
            f["jiraSchema"]["type"] = "option"
            f["validValues"] = [{"value": "1", "label": "only", "children": []}]
    env.jsm_config(fields=fields)
    p = env.run("replay", "--since", iso_ago(4), "--update-changed", check=0)
    assert "updated: %s" % jsm_key_of(env, other) in p.stdout, p.stdout
    req = [r for r in env.jsm_requests() if r["issueKey"] == jsm_key_of(env, other)][0]
    assert req["fields"]["summary"] == "Early 3, v2" and "customfield_10030" not in req["fields"]
    fixes = env.tracker("SELECT field_id, value FROM manual_fixes WHERE resolved_at IS NULL")
    assert fixes == [("customfield_10030", '"x@example.com"')], fixes
    env.run("replay", "--since", iso_ago(4), "--update-changed", check=0)
    assert env.tracker("SELECT count(*) FROM manual_fixes")[0][0] == 1


# Rerun under valgrind by `make valgrind` (part of `make test`).
for _test in (test_rollback_of_a_run_then_sync_recreates_exactly_those_requests,
              test_reconcile_lost_create_ghost_missing_files_and_duplicates,
              test_replay_delivers_a_late_row_once_and_updates_changed_requests,
              test_retry_parked_delivers_the_row_once_its_data_is_fixed):
    _test.valgrind = True
