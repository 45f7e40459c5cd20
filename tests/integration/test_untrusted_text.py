"""Submissions are untrusted input: shown, never obeyed (issue 9).

Each hostile submission goes through the real job (PostgreSQL, libcurl, the
JSM test server) and must still be delivered exactly once with both
attachments, while:
- rich-text fields (description, environment, a custom textarea) hold it as
  literal ADF text: no mention, link, image, macro or formatting node;
- the CSV defuses formulas in every position and the JSON keeps every value;
- over-long text is cut on a character boundary and says so, naming the JSON;
- an HTML column is rendered (structure kept, scripts, images, forms dropped,
  links show their URL);
- logs and command output carry no raw control characters or forged lines;
- no secret appears in any log, attachment, tracker, metrics file or output.
"""
import base64
import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

from harness import DEFAULT_MAPPING, ROOT, SECRET_TOKEN, Env, _real_python, assert_exactly_once

TEXTAREA = "customfield_10060"
HOSTILE = [
    "Please call me [~accountid:5b10a2844c20165700ede21g] about this",
    "[reset your password|http://evil.example/reset]",
    "!http://evil.example/pixel.png!",
    "{color:red}URGENT{color} {panel:title=x}boxed{panel} {quote}q{quote} {code}c{code}",
    "{noformat}\nescaped? *bold* [~accountid:5b10a2844c20165700ede21g] [x|http://evil.example]\n{noformat}",
    "h1. Heading\n*bold* _italic_ -strike- +under+ {{mono}} ----\n|| table || head ||\n# numbered",
    "<script>alert(1)</script><b>not html</b> &amp; &lt;",
    "emoji \U0001F600\U0001F469\u200D\U0001F4BB and right-to-left \u05E9\u05DC\u05D5\u05DD \u0645\u0631\u062D\u0628\u0627 "
    "\u202Eevil\u202C done",
    "line one\r\nline two\r\n\r\nafter a blank line",
]
LITERAL_BLOCKS = {"paragraph", "rule"}


def auth_header():
    return {"Authorization": "Basic " + base64.b64encode(("demo@example.com:" + SECRET_TOKEN).encode()).decode()}


def seed_fields(world):
    req = urllib.request.Request(world.jsm_url + "/rest/servicedeskapi/servicedesk/1/requesttype/10/field",
                                 headers=auth_header())
    return json.load(urllib.request.urlopen(req))["requestTypeFields"]


def rich_text_world(env, world):
    """The seed fields plus the system environment field and a custom
    textarea: every kind of rich-text field JSM has."""
    fields = seed_fields(world)
    fields.append({"fieldId": "environment", "name": "Environment", "required": False, "visible": True,
                   "validValues": [], "defaultValues": [], "presetValues": [], "description": "",
                   "jiraSchema": {"type": "string", "system": "environment"}})
    fields.append({"fieldId": TEXTAREA, "name": "Details", "required": False, "visible": True,
                   "validValues": [], "defaultValues": [], "presetValues": [], "description": "",
                   "jiraSchema": {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textarea",
                                  "customId": 10060}})
    env.jsm_config(fields=fields)


def sql_text(s):
    """A PostgreSQL expression for the text s, whatever bytes it holds."""
    return "convert_from(decode('%s', 'hex'), 'UTF8')" % s.encode().hex()


def insert_row(env, **cols):
    names = ", ".join(cols)
    values = ", ".join(sql_text(v) if isinstance(v, str) else str(v) for v in cols.values())
    # Through stdin: a 40,000-character value is too long for an argument.
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", env.db_url], check=True, capture_output=True,
                   input="INSERT INTO webform_submissions (%s) VALUES (%s)" % (names, values), text=True)


def tracker_write(env, sql):
    """One write on the tracker, whichever backend holds it."""
    if hasattr(env, "tracker_write"):
        return env.tracker_write(sql)
    import sqlite3
    con = sqlite3.connect(env.path("tracker", "tracker.db"))
    try:
        con.execute(sql)
        con.commit()
    finally:
        con.close()


def blocks_of(doc):
    assert isinstance(doc, dict) and doc.get("type") == "doc" and doc.get("version") == 1, doc
    return doc["content"]


def literal_lines(doc, footer=False):
    """The lines a literal document shows, asserting on the way that every
    node is literal (paragraphs of unmarked text; the footer's rule and its
    strong key are the operator's)."""
    blocks = blocks_of(doc)
    if footer:
        assert blocks[-2] == {"type": "rule"}, blocks[-2:]
        tail = blocks[-1]["content"]
        assert tail[0] == {"type": "text", "text": "wf2jsm submission key: "}, tail
        assert tail[1]["marks"] == [{"type": "strong"}] and re.fullmatch(r"[0-9a-f]{64}", tail[1]["text"]), tail
        blocks = blocks[:-2]
        if blocks and blocks[-1]["content"] == []:
            blocks = blocks[:-1]      # the blank line before the rule
    lines = []
    for b in blocks:
        assert b["type"] == "paragraph", b
        text = ""
        for node in b["content"]:
            assert set(node) == {"type", "text"}, "submitted text must be plain text nodes: %r" % node
            assert node["type"] == "text"
            text += node["text"]
        lines.append(text)
    return lines


def all_nodes(node):
    yield node
    for child in node.get("content", []) if isinstance(node, dict) else []:
        yield from all_nodes(child)


def test_hostile_markup_stays_literal_text_in_every_rich_text_field(world):
    env = Env(world, "hostile_markup")
    rich_text_world(env, world)
    mapping = {"fields": dict(DEFAULT_MAPPING["fields"], environment="message", **{TEXTAREA: "message"})}
    env.write_mapping(mapping)
    for i, text in enumerate(HOSTILE):
        insert_row(env, subject="Hostile %d" % i, message=text, category="Software", impact="Low")
    env.run("sync", "--catch-up", check=0)
    reqs = assert_exactly_once(env)
    assert len(reqs) == len(HOSTILE)
    by_subject = {r["fields"]["summary"]: r for r in reqs.values()}
    for i, text in enumerate(HOSTILE):
        fields = by_subject["Hostile %d" % i]["fields"]
        want = text.strip().split("\n")
        assert literal_lines(fields["description"], footer=True) == want, (text, fields["description"])
        assert literal_lines(fields["environment"]) == want
        assert literal_lines(fields[TEXTAREA]) == want
        for fid in ("description", "environment", TEXTAREA):
            kinds = {n.get("type") for n in all_nodes(fields[fid])}
            assert kinds <= {"doc", "paragraph", "text", "rule"}, (fid, kinds)
    # A plain-text field keeps the string (with isAdfRequest Jira would take
    # it literally too), and the summary is one line.
    assert isinstance(by_subject["Hostile 0"]["fields"]["summary"], str)


def test_formulas_are_defused_in_every_csv_position_and_json_is_verbatim(world):
    mapping = {"fields": {"summary": "subject", "description": "message", "customfield_10030": "contact_email"},
               "constants": {"customfield_10011": {"id": "10200"}}}
    env = Env(world, "csv_formulas", mapping=mapping)
    values = dict(subject='=HYPERLINK("http://evil.example","click me")', message="+1-555-0100",
                  category="@SUM(1+1)", impact="\t=cmd|' /C calc'!A0", contact_email="\r=1+1",
                  products="-2+3")
    insert_row(env, employees=-7, **values)
    insert_row(env, subject="-", message="@", category="=", impact="+", contact_email="-0.5", products="=1")
    env.run("sync", check=0)
    reqs = assert_exactly_once(env)   # reads the CSV back: an apostrophe before each formula
    for sid, req in reqs.items():
        att = {a["filename"]: a["content"] for a in req["attachments"]}
        text = att["submission-%s.csv" % sid]
        header, row = list(csv.reader(io.StringIO(text, newline="")))
        for cell in header + row:
            assert not cell[:1] in ("=", "+", "@", "\t", "\r"), "live formula in the CSV: %r" % cell
            assert not (cell[:1] == "-" and not re.fullmatch(r"-\d+(\.\d+)?", cell)), cell
        row_json = json.loads(att["submission-%s.json" % sid])
        assert row_json == [r for r in env.rows() if r["id"] == sid][0]
    first = reqs[min(reqs, key=int)]
    att = {a["filename"]: a["content"] for a in first["attachments"]}
    row = list(csv.reader(io.StringIO(att["submission-%s.csv" % min(reqs, key=int)], newline="")))[1]
    assert "-7" in row, "a plain negative number stays a number: %s" % row
    assert "'" + values["subject"] in row and "'" + values["products"] in row
    assert json.loads(att["submission-%s.json" % min(reqs, key=int)])["impact"] == values["impact"]


def test_40000_character_message_is_shortened_visibly_and_kept_whole_in_the_json(world):
    env = Env(world, "long_text")
    rich_text_world(env, world)
    env.write_mapping({"fields": dict(DEFAULT_MAPPING["fields"], **{TEXTAREA: "message"})})
    # Multibyte characters around every possible cut point.
    unit = "abc\u00e9\u20ac\U0001F600 "
    message = (unit * (40000 // len(unit) + 1))[:40000]
    subject = ("S\u00e9" * 200)[:300]
    insert_row(env, subject=subject, message=message, category="Software", impact="Low",
               contact_email="x" * 40000)
    env.run("sync", check=0)
    [req] = assert_exactly_once(env).values()
    sid = req["attachments"][0]["filename"].split("-")[1].split(".")[0]
    name = "submission-%s.json" % sid
    full = json.loads([a for a in req["attachments"] if a["filename"] == name][0]["content"])
    assert full["message"] == message and len(full["message"]) == 40000
    summary = req["fields"]["summary"]
    assert len(summary) == 255 and name in summary and "shortened" in summary, summary
    assert subject.startswith(summary[:summary.index(" [shortened")])
    email = req["fields"]["customfield_10030"]
    assert len(email) <= 32767 and email.endswith("full text in %s]" % name), email[-80:]
    for fid, footer in (("description", True), (TEXTAREA, False)):
        doc = req["fields"][fid]
        blocks = blocks_of(doc)
        body = blocks[:-3] if footer else blocks
        notice = body[-1]["content"][0]
        assert notice["marks"] == [{"type": "em"}] and name in notice["text"] and "32,767" in notice["text"], notice
        kept = "\n".join("".join(n["text"] for n in b["content"]) for b in body[:-1])
        assert message.startswith(kept) and len(kept) > 32000, len(kept)
        plain = "\n".join("".join(n.get("text", "") for n in b.get("content", [])) if b["type"] != "rule" else "----"
                          for b in blocks)
        assert len(plain) <= 32767, (fid, len(plain))
    assert env.tracker("SELECT state FROM submissions") == [("delivered",)]
    assert env.tracker("SELECT count(*) FROM manual_fixes")[0][0] == 0


HTML = ("<h2>Order &amp; delivery</h2><p>Hello <b>world</b>, <i>thanks</i>!</p>"
        "<script>alert('x')</script><style>p{color:red}</style><!-- hidden comment -->"
        "<p><a href=\"http://evil.example/reset\">reset your password</a> or "
        "<a href=\"https://example.org/\">https://example.org/</a></p>"
        "<img src=\"http://evil.example/pixel.png\"><iframe src=\"http://evil.example\"></iframe>"
        "<form action=\"http://evil.example\"><input value=\"typed\"><button>Go</button></form>"
        "<ul><li>one</li><li>two<ol><li>nested</li></ol></li></ul>"
        "<table><tr><th>Name</th><th>Qty</th></tr><tr><td>Widget</td><td>3</td></tr></table>"
        "<p>line<br>break &lt;not a tag&gt; [~accountid:5b10a2844c20165700ede21g]</p>")


def test_html_column_is_rendered_as_text_with_its_structure(world):
    env = Env(world, "html_column")
    rich_text_world(env, world)
    env.write_mapping({"fields": dict(DEFAULT_MAPPING["fields"], environment="message", customfield_10030="message"),
                       "formats": {"message": "html"}})
    insert_row(env, subject="HTML", message=HTML, category="Software", impact="Low")
    p = env.run("check")
    assert "message read as HTML" in p.stdout, p.stdout
    env.run("sync", check=0)
    [req] = assert_exactly_once(env).values()
    doc = req["fields"]["description"]
    blocks = blocks_of(doc)[:-3]   # the footer aside
    assert blocks[0] == {"type": "heading", "attrs": {"level": 2},
                         "content": [{"type": "text", "text": "Order & delivery"}]}, blocks[0]
    assert blocks[1]["content"] == [{"type": "text", "text": "Hello "},
                                    {"type": "text", "text": "world", "marks": [{"type": "strong"}]},
                                    {"type": "text", "text": ", "},
                                    {"type": "text", "text": "thanks", "marks": [{"type": "em"}]},
                                    {"type": "text", "text": "!"}], blocks[1]
    lines = ["".join(n.get("text", "\n") for n in b["content"]) for b in blocks]
    assert lines[2:] == [
        "reset your password (http://evil.example/reset) or https://example.org/",
        "\u2022 one", "\u2022 two", "  1. nested",
        "Name | Qty", "Widget | 3",
        "line\nbreak <not a tag> [~accountid:5b10a2844c20165700ede21g]"], lines
    text = json.dumps(doc)
    for gone in ("alert", "color:red", "hidden comment", "pixel", "iframe", "typed", "Go", "<b>", "<script"):
        assert gone not in text, gone
    for node in all_nodes(doc):
        assert node.get("type") in {"doc", "paragraph", "heading", "text", "hardBreak", "rule"}, node
        for mark in node.get("marks", []):
            assert mark["type"] in ("strong", "em"), "no link mark may hide a target: %r" % mark
    # A plain-text field gets the same rendering as plain text.
    plain = req["fields"]["customfield_10030"]
    assert plain.startswith("Order & delivery\nHello world, thanks!\nreset your password (http://evil.example/reset)")
    assert "<" not in plain.replace("<not a tag>", "")
    assert "alert" not in plain
    assert "Widget | 3" in plain


def test_control_characters_are_escaped_in_logs_and_command_output(world):
    env = Env(world, "control_chars", SYNC_METRICS_FILE="metrics.prom")
    fields = seed_fields(world)
    # A field name with a terminal escape and a newline: Jira quotes it in
    # its error messages, which the job logs and status/check print.
    for f in fields:
        if f["fieldId"] == "customfield_10010":
            f["name"] = "Category\x1b]0;pwned\x07\nforged=1"
    env.jsm_config(fields=fields)
    evil = "\x1b[31mHardware\x1b[0m\n2026-01-01T00:00:00Z ERROR run=1 event=forged"
    insert_row(env, subject="Ctl", message="m\x1b[2J", category=evil, impact="Low")
    insert_row(env, subject="Ctl2", message="\u202eright-to-left \u05E9\u05DC\u05D5\u05DD \U0001F600",
               category="Software", impact="Low")
    p_sync = env.run("sync", check=0)
    reqs = assert_exactly_once(env)
    assert len(reqs) == 2
    # The bad option was left out (a manual fix), not obeyed, and the row delivered.
    fixes = env.tracker("SELECT field_id, value FROM manual_fixes")
    assert fixes == [("customfield_10010", evil)], fixes
    outputs = [p_sync.stdout + p_sync.stderr]
    for args in (["status"], ["check"], ["reconcile"], ["rollback", "--since", "2000-01-01T00:00:00Z"],
                 ["fields"]):
        p = env.run(*args)
        assert p.returncode in (0, 1, 3), (args, p.returncode, p.stderr)
        outputs.append(p.stdout + p.stderr)
    status_out = outputs[1]
    assert "\\x1B[31mHardware\\x1B[0m\\n2026-01-01T00:00:00Z ERROR run=1 event=forged" in status_out, status_out
    check_out = outputs[2]
    assert "Category\\x1B]0;pwned\\x07 forged=1" in check_out, check_out
    assert "Category\\x1B]0;pwned\\x07\\nforge" in outputs[5], outputs[5]   # fields
    logs = env.logs_text()
    assert "\\x1B[31mHardware" in logs, logs
    for name, text in [("logs", logs)] + [("output %d" % i, o) for i, o in enumerate(outputs)]:
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, "raw control in %s" % name
        for line in text.splitlines():
            assert not line.startswith("2026-01-01T00:00:00Z ERROR run=1 event=forged"), "forged line in %s" % name
            assert not line.startswith("forged=1"), "forged line in %s: %r" % (name, line)
    for line in logs.splitlines():
        if line:
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARN|ERROR) run=", line), line
    # Right-to-left letters and emoji are shown as they are.
    assert "\u05E9\u05DC\u05D5\u05DD" in json.dumps([r["fields"] for r in reqs.values()], ensure_ascii=False)
    # ...and a right-to-left override reaches the ticket as literal text.
    ctl2 = [r for r in reqs.values() if r["fields"]["summary"] == "Ctl2"][0]
    assert literal_lines(ctl2["fields"]["description"], footer=True) == [
        "\u202eright-to-left \u05E9\u05DC\u05D5\u05DD \U0001F600"]


class SecretServer:
    """A second JSM test server that takes a bearer token."""

    def __init__(self, bearer):
        self.tmp = tempfile.mkdtemp(prefix="wf2jsm-bearer-")
        port_file = os.path.join(self.tmp, "port")
        self.log = open(os.path.join(self.tmp, "log"), "w")
        self.proc = subprocess.Popen([_real_python(), os.path.join(ROOT, "tests", "jsm_server.py"), "--port", "0",
                                      "--port-file", port_file, "--token", SECRET_TOKEN, "--bearer", bearer,
                                      "--quiet"], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        self.url = "http://127.0.0.1:%s" % open(port_file).read().strip()

    def state(self):
        return json.load(urllib.request.urlopen(self.url + "/_admin/state?include_deleted=1"))

    def close(self):
        self.proc.terminate()
        self.proc.wait(5)
        self.log.close()


def test_secrets_appear_in_no_log_attachment_tracker_metrics_or_output(world):
    bearer = "bearer-SECRET-91c2e4"
    password = "pw-SECRET-5d8b07"
    secrets = [SECRET_TOKEN, bearer, password]
    server = SecretServer(bearer)
    try:
        env = Env(world, "secrets", SYNC_METRICS_FILE="metrics.prom")
        # The password rides in the URL (the test cluster trusts loopback, so
        # libpq sends it only if asked; the job still holds and must hide it).
        env.env["WEBFORM_DB_URL"] = env.db_url.replace("postgresql://", "postgresql://postgres:%s@" % password, 1) \
            if "@" not in env.db_url else env.db_url.replace("@", ":%s@" % password, 1)
        # All three at once (the bearer token is the one used; the API token
        # is loaded and must stay hidden all the same).
        env.env["JIRA_BASE_URL"] = server.url
        env.env["JIRA_BEARER_TOKEN"] = bearer
        insert_row(env, subject="Secret " + SECRET_TOKEN[:3], message="hello", category="Software", impact="Low")
        env.insert(3, "Row")
        outputs = []
        for args in (["sync", "--catch-up"], ["status"], ["status", "--json"], ["check"], ["fields"],
                     ["reconcile"], ["retry", "--parked", "--failed"], ["rollback", "--since", "2000-01-01T00:00:00Z"],
                     ["replay", "--since", "2000-01-01T00:00:00Z", "--dry-run"]):
            p = env.run(*args)
            outputs.append(" ".join(args) + "\n" + p.stdout + p.stderr)
        # Failures quote URLs and messages: a database that refuses and a
        # Jira that refuses must not quote the secrets either.
        bad_db = env.env["WEBFORM_DB_URL"].rsplit("/", 1)[0] + "/no_such_db"
        for extra in ({"WEBFORM_DB_URL": bad_db}, {"JIRA_BEARER_TOKEN": bearer + "x"},
                      {"JIRA_BEARER_TOKEN": "", "JIRA_API_TOKEN": SECRET_TOKEN + "x"}):
            for args in (["sync"], ["check"], ["status"]):
                p = env.run(*args, env=extra)
                outputs.append(" ".join(args) + "\n" + p.stdout + p.stderr)
        state = server.state()
        assert len(state["requests"]) == 4, "the job must have delivered with the bearer token"
        blobs = {"output": "\n".join(outputs), "jsm state": json.dumps(state)}
        for root, _, files in os.walk(env.dir):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    blobs[os.path.relpath(path, env.dir)] = f.read().decode("latin-1")
        # The tracker's rows, whichever backend holds them (the SQLite files
        # are in the walk above as well).
        for table in ("submissions", "runs", "manual_fixes"):
            blobs["tracker " + table] = json.dumps(env.tracker("SELECT * FROM %s" % table), default=str)
        assert any(k.startswith("logs") for k in blobs)
        assert getattr(env, "backend", "sqlite") != "sqlite" or any(k.startswith("tracker/") for k in blobs)
        assert "metrics.prom" in blobs, sorted(blobs)
        for where, text in blobs.items():
            for secret in secrets:
                if where in (".env",):
                    continue
                assert secret not in text, "%s leaked into %s" % (secret[:6], where)
    finally:
        server.close()


def test_rows_delivered_before_adf_keep_their_checksum(world):
    """Rows delivered when the description went as a wiki-markup string
    stored the checksum of that string. The same unchanged rows, mapped to
    ADF now, must not look edited (or replay --update-changed would rewrite
    every old ticket); an edited row still does, and is updated with ADF."""
    import hashlib
    env = Env(world, "old_checksums")
    env.insert(3, "Old", when="'2026-11-20 10:00:00+00'")
    env.sql("UPDATE webform_submissions SET message = E'Line one\\r\\n\\r\\n[~accountid:x] line three  ' WHERE id = 2")
    env.run("sync", check=0)
    assert_exactly_once(env)
    keys = dict(env.tracker("SELECT source_id, key FROM submissions"))
    for req in env.jsm_requests():
        sid = req["attachments"][0]["filename"].split("-")[1].split(".")[0]
        row = [r for r in env.rows() if r["id"] == sid][0]
        old = dict(req["fields"])
        # What the mapper sent before: the trimmed text, then the footer line.
        old["description"] = row["message"].strip() + "\n\n----\nwf2jsm submission key: " + keys[sid]
        text = json.dumps(old, separators=(",", ":"), ensure_ascii=False)
        tracker_write(env, "UPDATE submissions SET content_checksum = '%s' WHERE key = '%s'"
                      % (hashlib.sha256(text.encode()).hexdigest(), keys[sid]))
    p = env.run("status", check=0)
    assert "changed id=" not in p.stdout, p.stdout
    env.http("POST", "/_admin/stats/reset", {})
    env.run("replay", "--since", "2026-11-20T00:00:00Z", "--update-changed", check=0)
    assert env.jsm_stats()["calls"].get("edit_issue", 0) == 0, env.jsm_stats()
    # An edit in the source is still seen, and the ticket gets a document.
    env.sql("UPDATE webform_submissions SET message = 'Edited {color:red}x{color}' WHERE id = 3")
    p = env.run("status", check=0)
    assert p.stdout.count("changed id=") == 1 and "changed id=3 " in p.stdout, p.stdout
    env.run("replay", "--since", "2026-11-20T00:00:00Z", "--update-changed", check=0)
    assert env.jsm_stats()["calls"].get("edit_issue", 0) == 1
    req = [r for r in env.jsm_requests() if r["fields"]["summary"] == "Old 3"][0]
    assert literal_lines(req["fields"]["description"], footer=True) == ["Edited {color:red}x{color}"]


# Rerun under valgrind by `make valgrind` (part of `make test`): libxml2, the
# ADF builder and the escaper under memcheck too.
for _test in (test_html_column_is_rendered_as_text_with_its_structure,
              test_control_characters_are_escaped_in_logs_and_command_output):
    _test.valgrind = True
