"""harness.py: the integration tests' world, made of real parts.

One throwaway PostgreSQL server (tests/lib/pgtmp.sh) for the whole run, a
fresh database per test; one JSM test server (tests/jsm_server.py), reset per
test; a fresh working directory per test with its own .env, tracker and logs.
The program under test is WF2JSM_BIN (default build/test/wf2jsm, the
ASan+UBSan build). Nothing here is mocked: the program talks libpq to
PostgreSQL and libcurl to the JSM server over loopback sockets.

WF2JSM_TRACKER_BACKEND=pg puts each test's tracker in PostgreSQL instead of
SQLite: a fresh database <test db>_trk on the same server, reached through a
URL that carries a password (TRACKER_SECRET, which must never show in any
output). Tests that only make sense for one backend are marked with
@sqlite_only or @pg_only; env.tracker() answers the same queries on both.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PGTMP = os.path.join(ROOT, "tests", "lib", "pgtmp.sh")
SCHEMA = os.path.join(ROOT, "setup", "webform_schema.sql")

DEFAULT_MAPPING = {"fields": {
    "summary": "subject", "description": "message", "customfield_10010": "category",
    "customfield_10011": "impact", "customfield_10020": "employees", "duedate": "due_date",
    "customfield_10030": "contact_email", "customfield_10040": "products"}}

SECRET_TOKEN = "tok-SECRET-7f3a9c"
TRACKER_SECRET = "trk-PW-5e1d0b"
BACKEND = os.environ.get("WF2JSM_TRACKER_BACKEND", "sqlite")
if BACKEND not in ("sqlite", "pg"):
    raise SystemExit("WF2JSM_TRACKER_BACKEND must be sqlite or pg, not %r" % BACKEND)


def sqlite_only(fn):
    """The test exercises the SQLite file itself (modes, its lock file)."""
    fn.sqlite_only = True
    return fn


def pg_only(fn):
    """The test exercises the PostgreSQL tracker (shared by hosts, advisory lock)."""
    fn.pg_only = True
    return fn


def long_running(fn):
    """The test takes far longer than the others (a minute of kills): run.py
    starts it first, so that with several workers it overlaps the short
    tests instead of running alone at the end."""
    fn.long_running = True
    return fn


def _real_python():
    # pyenv's shim forks a child; signals must reach the server itself.
    return os.path.realpath(sys.executable)


class World:
    """Servers shared by all tests of one run."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="wf2jsm-it-")
        self.pg_dir = os.path.join(self.tmp, "pg")
        self.pg_url = subprocess.check_output([PGTMP, "start", self.pg_dir], text=True).strip()
        self.pg_admin_url = self.pg_url.rsplit("/", 1)[0] + "/postgres"
        port_file = os.path.join(self.tmp, "jsm.port")
        self.jsm_log = open(os.path.join(self.tmp, "jsm.log"), "w")
        self.jsm = subprocess.Popen(
            [_real_python(), os.path.join(ROOT, "tests", "jsm_server.py"), "--port", "0", "--port-file",
             port_file, "--token", SECRET_TOKEN, "--quiet"], stdout=self.jsm_log, stderr=subprocess.STDOUT)
        # A loaded machine (make test runs several worlds at once) may take
        # seconds to start Python: wait for the port as long as the server lives.
        deadline = time.time() + 60
        while not os.path.exists(port_file):
            if self.jsm.poll() is not None or time.time() > deadline:
                raise RuntimeError("the JSM test server did not start (exit %s); see %s"
                                   % (self.jsm.poll(), self.jsm_log.name))
            time.sleep(0.05)
        self.jsm_url = "http://127.0.0.1:%s" % open(port_file).read().strip()
        self.db_counter = 0

    def close(self):
        self.jsm.terminate()
        try:
            self.jsm.wait(5)
        except subprocess.TimeoutExpired:
            self.jsm.kill()
        self.jsm_log.close()
        subprocess.call([PGTMP, "stop", self.pg_dir])
        shutil.rmtree(self.tmp, ignore_errors=True)


class Env:
    """One test's working directory, database and configuration."""

    def __init__(self, world, name, mapping=DEFAULT_MAPPING, backend=None, tracker_url=None, db_url=None, **env):
        """backend: "sqlite" or "pg" (default WF2JSM_TRACKER_BACKEND);
        tracker_url / db_url: share another Env's PostgreSQL tracker or
        webform database (two hosts of one site)."""
        self.world = world
        world.db_counter += 1
        self.dbname = "t%d_%s" % (world.db_counter, name[:40].lower())
        server = world.pg_url.rsplit("/", 1)[0]
        if db_url:
            self.db_url = db_url
        else:
            self.admin_psql("CREATE DATABASE %s" % self.dbname)
            self.db_url = server + "/" + self.dbname
            self.psql_file(SCHEMA)
        self.backend = backend or ("pg" if tracker_url else BACKEND)
        self.tracker_url = tracker_url
        if self.backend == "pg" and not tracker_url:
            self.admin_psql("CREATE DATABASE %s_trk" % self.dbname)
            self.tracker_url = server.replace("://postgres@", "://postgres:%s@" % TRACKER_SECRET) + \
                "/%s_trk" % self.dbname
        # What wf2jsm's messages call the tracker: the file, or the URL
        # without its password.
        self.tracker_name = "tracker/tracker.db" if self.backend == "sqlite" else \
            self.tracker_url.replace(":%s@" % TRACKER_SECRET, "@") if self.tracker_url else None
        self.dir = os.path.join(world.tmp, "work", self.dbname)
        os.makedirs(self.dir)
        self.bin = os.environ.get("WF2JSM_BIN", os.path.join(ROOT, "build", "test", "wf2jsm"))
        self.http("POST", "/_admin/reset", {})
        self.env = {
            "WEBFORM_DB_URL": self.db_url,
            "JIRA_BASE_URL": world.jsm_url,
            "JIRA_EMAIL": "demo@example.com",
            "JIRA_API_TOKEN": SECRET_TOKEN,
            "JSM_SERVICE_DESK_ID": "1",
            "JSM_REQUEST_TYPE_ID": "10",
            "SYNC_SEARCH_SETTLE": "0",
            "SYNC_RETRY_BASE_MS": "20",
        }
        if self.backend == "pg":
            self.env["SYNC_TRACKER_DB"] = self.tracker_url
        self.env.update({k: str(v) for k, v in env.items()})
        if mapping is not None:
            self.write_mapping(mapping)

    # ---- the program -------------------------------------------------
    def run(self, *args, env=None, timeout=120, check=None):
        """Runs wf2jsm with args in the work dir; returns CompletedProcess.
        check: the exit status the test requires (fails with output if not)."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBFORM_", "JIRA_", "JSM_", "SYNC_", "PG"))}
        full_env.update(self.env)
        if env:
            full_env.update({k: str(v) for k, v in env.items()})
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        full_env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        p = subprocess.run([self.bin] + list(args), cwd=self.dir, env=full_env, capture_output=True,
                           text=True, timeout=timeout)
        for stream in (p.stdout, p.stderr):
            assert SECRET_TOKEN not in stream, "secret leaked in output of %s" % (args,)
            assert TRACKER_SECRET not in stream, "tracker password leaked in output of %s" % (args,)
        assert "AddressSanitizer" not in p.stderr and "runtime error:" not in p.stderr, \
            "sanitizer report for %s:\n%s" % (args, p.stderr)
        if check is not None and p.returncode != check:
            raise AssertionError("wf2jsm %s exited %d, expected %d\nstdout:\n%s\nstderr:\n%s"
                                 % (" ".join(args), p.returncode, check, p.stdout, p.stderr))
        return p

    def popen(self, *args, env=None):
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBFORM_", "JIRA_", "JSM_", "SYNC_", "PG"))}
        full_env.update(self.env)
        if env:
            full_env.update({k: str(v) for k, v in env.items()})
        full_env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        return subprocess.Popen([self.bin] + list(args), cwd=self.dir, env=full_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for_log(self, proc, text, timeout=120):
        """Waits until the logs hold text (written by the running proc), so
        that a test signals a run at a known point of its work rather than
        after a fixed sleep a loaded machine may not cover. Fails if proc
        exits first."""
        deadline = time.time() + timeout
        while text not in self.logs_text():
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError("the run exited %d before logging %r\nstdout:\n%s\nstderr:\n%s"
                                     % (proc.returncode, text, out, err))
            if time.time() > deadline:
                raise AssertionError("the run logged no %r within %d s" % (text, timeout))
            time.sleep(0.02)

    def write_mapping(self, mapping):
        with open(os.path.join(self.dir, "field_mapping.json"), "w") as f:
            json.dump(mapping, f)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def logs_text(self):
        out = []
        logdir = self.path("logs")
        if os.path.isdir(logdir):
            for name in sorted(os.listdir(logdir)):
                with open(os.path.join(logdir, name), errors="replace") as f:
                    out.append(f.read())
        return "\n".join(out)

    # ---- PostgreSQL ----------------------------------------------------
    def admin_psql(self, sql):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.world.pg_admin_url, "-c", sql],
                       check=True, capture_output=True)

    def psql_file(self, path):
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.db_url, "-f", path],
                       check=True, capture_output=True)

    def sql(self, sql):
        """Runs sql; returns rows as lists of strings (tab-separated output)."""
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", self.db_url,
                            "-c", sql], check=True, capture_output=True, text=True)
        return [line.split("\t") for line in p.stdout.splitlines() if line]

    def insert(self, n, subject="Request", when="now()", **cols):
        """Inserts n rows in one statement (so they share now())."""
        extra_cols = "".join(", %s" % c for c in cols)
        extra_vals = "".join(", %s" % v for v in cols.values())
        self.sql("INSERT INTO webform_submissions (submitted_date, subject, message, category, impact%s) "
                 "SELECT %s, '%s ' || g, 'Message ' || g, 'Software', 'Low'%s FROM generate_series(1, %d) g"
                 % (extra_cols, when, subject, extra_vals, n))

    def rows(self, extra_columns=()):
        """All source rows as dicts of text (NULL as None), as the attachments show them;
        extra_columns: text columns a test added to the table."""
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", self.db_url, "-c",
                            "SELECT json_agg(t ORDER BY id) FROM (SELECT id::text, submitted_date::text, subject, "
                            "message, category, impact, employees::text, due_date::text, contact_email, products%s "
                            "FROM webform_submissions) t" % "".join(", " + c for c in extra_columns)],
                           check=True, capture_output=True, text=True,
                           env=dict(os.environ, PGTZ="UTC", PGDATESTYLE="ISO"))
        return json.loads(p.stdout.strip() or "null") or []

    # ---- the JSM test server -------------------------------------------
    def http(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.world.jsm_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def jsm_requests(self, include_deleted=False):
        return self.http("GET", "/_admin/state" + ("?include_deleted=1" if include_deleted else ""))["requests"]

    def jsm_stats(self):
        return self.http("GET", "/_admin/stats")

    def faults(self, rules, seed=1):
        self.http("POST", "/_admin/faults", {"seed": seed, "rules": rules})

    def clear_faults(self):
        self.http("DELETE", "/_admin/faults")

    def jsm_config(self, **cfg):
        return self.http("POST", "/_admin/config", cfg)

    # ---- the tracker -----------------------------------------------------
    def tracker(self, sql, url=None):
        """Runs a read query on the tracker, whichever backend holds it (or
        on the PostgreSQL tracker at url); returns a list of tuples
        (integers as int, NULL as None)."""
        if self.backend == "sqlite" and not url:
            import sqlite3
            con = sqlite3.connect(self.path("tracker", "tracker.db"))
            try:
                return con.execute(sql).fetchall()
            finally:
                con.close()
        # Each row as a JSON object keeps its column order and types.
        out = self.tracker_psql("SELECT coalesce(json_agg(x), '[]') FROM (%s) x" % sql, url=url)
        return [tuple(v for _, v in row) for row in json.loads(out, object_pairs_hook=list)]

    def tracker_write(self, sql):
        """Runs one write statement on the tracker (a test's own tampering)."""
        if self.backend == "sqlite":
            import sqlite3
            con = sqlite3.connect(self.path("tracker", "tracker.db"))
            try:
                con.execute(sql)
                con.commit()
            finally:
                con.close()
        else:
            self.tracker_psql(sql)

    def delete_tracker(self):
        """The tracker is lost: the host was rebuilt from its image (SQLite),
        or the schema was dropped (PostgreSQL)."""
        if self.backend == "sqlite":
            shutil.rmtree(self.path("tracker"))
        else:
            self.tracker_psql("DROP SCHEMA wf2jsm CASCADE")

    def copy_tracker(self, dest):
        """A consistent copy, as a nightly backup takes it: SQLite's backup
        API, or pg_dump of the schema wf2jsm."""
        if self.backend == "sqlite":
            import sqlite3
            src = sqlite3.connect(self.path("tracker", "tracker.db"))
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
        else:
            subprocess.run(["pg_dump", "--schema=wf2jsm", "--no-owner", "-f", dest, self.tracker_url], check=True,
                           capture_output=True)

    def put_back_tracker(self, copy):
        """Restores a copy_tracker() copy over the current tracker."""
        if self.backend == "sqlite":
            tdir = self.path("tracker")
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(os.path.join(tdir, "tracker.db" + suffix)):
                    os.remove(os.path.join(tdir, "tracker.db" + suffix))
            shutil.copyfile(copy, os.path.join(tdir, "tracker.db"))
            os.chmod(os.path.join(tdir, "tracker.db"), 0o600)
        else:
            self.tracker_psql("DROP SCHEMA wf2jsm CASCADE")
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.tracker_url, "-f", copy], check=True,
                           capture_output=True)

    def tracker_psql(self, sql, url=None):
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url or self.tracker_url, "-c", sql],
                           check=True, capture_output=True, text=True,
                           env=dict(os.environ, PGOPTIONS="-c search_path=wf2jsm"))
        return p.stdout.strip()


def csv_cell(value):
    """A value as the CSV attachment holds it: NULL is empty, and a cell a
    spreadsheet would run as a formula (= + - @ TAB CR first, a plain
    negative number aside) starts with an apostrophe (OWASP CSV injection)."""
    if value is None:
        return ""
    import re
    if value[:1] in ("=", "+", "@", "\t", "\r") or (value[:1] == "-" and not re.fullmatch(r"-\d+(\.\d+)?", value)):
        return "'" + value
    return value


def use_key_field_instead_of_labels(env, field_id="customfield_10050"):
    """The test server's request type without Labels, with a text field that
    can carry the whole key (set SYNC_KEY_FIELD=field_id in the Env)."""
    fields = [f for f in env.jsm_config()["fields"] if f["fieldId"] != "labels"]
    fields.append({"fieldId": field_id, "name": "Sync key", "required": False, "visible": True,
                   "validValues": [], "defaultValues": [], "presetValues": [], "description": "",
                   "jiraSchema": {"type": "string", "customId": int(field_id.split("_")[-1]),
                                  "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield"}})
    env.jsm_config(fields=fields)


def assert_exactly_once(env, expect_ids=None):
    """Every source row is exactly one live request whose JSON and CSV
    attachments (exactly one of each) match the row; no other request
    exists. Returns the requests by source id."""
    rows = env.rows()
    ids = [r["id"] for r in rows] if expect_ids is None else expect_ids
    by_id = {}
    for req in env.jsm_requests():
        names = sorted(a["filename"] for a in req["attachments"])
        sid = None
        for a in req["attachments"]:
            if a["filename"].endswith(".json"):
                sid = json.loads(a["content"])["id"]
        assert sid is not None, "request %s has no JSON attachment (%s)" % (req["issueKey"], names)
        assert sid not in by_id, "submission %s delivered twice: %s and %s" % (sid, by_id[sid]["issueKey"], req["issueKey"])
        assert names == ["submission-%s.csv" % sid, "submission-%s.json" % sid], \
            "request %s has attachments %s" % (req["issueKey"], names)
        by_id[sid] = req
    missing = sorted(set(ids) - set(by_id), key=int)
    extra = sorted(set(by_id) - set(ids), key=int)
    assert not missing, "%d submissions missing: %s" % (len(missing), missing[:20])
    assert not extra, "unexpected requests for ids %s" % extra[:20]
    rows_by_id = {r["id"]: r for r in rows}
    for sid in ids:
        row = rows_by_id[sid]
        att = {a["filename"]: a["content"] for a in by_id[sid]["attachments"]}
        assert json.loads(att["submission-%s.json" % sid]) == row, "JSON of %s does not match its row" % sid
        import csv
        import io
        parsed = list(csv.reader(io.StringIO(att["submission-%s.csv" % sid], newline="")))
        assert parsed[0] == list(row.keys()), "CSV header of %s: %s" % (sid, parsed[0])
        assert parsed[1] == [csv_cell(v) for v in row.values()], "CSV row of %s: %s" % (sid, parsed[1])
        assert len(parsed) == 2
    return by_id
