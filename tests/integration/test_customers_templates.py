"""Issue 12: requests raised on behalf of the submitter (customers of a
restricted service desk), templates and fallbacks in the mapping, HTTP
durations in the log. Every case checks each request exists exactly once
with the expected reporter."""
import json
import re

from harness import DEFAULT_MAPPING, Env, assert_exactly_once

JOB_ACCOUNT = "demo@example.com"


def with_full_name(e):
    """Adds the column full_name to the source table, and to the rows that
    assert_exactly_once compares the attachments with."""
    e.sql("ALTER TABLE webform_submissions ADD COLUMN full_name text")
    e.rows = lambda: Env.rows(e, ("full_name",))
    return e


def customer_env(world, name, mapping=DEFAULT_MAPPING, **env):
    env.setdefault("SYNC_CUSTOMER_EMAIL_COLUMN", "contact_email")
    return with_full_name(Env(world, name, mapping=mapping, **env))


def add_row(env, subject, email=None, full_name=None, **cols):
    cols.update(subject=subject, contact_email=email)
    if full_name is not None:
        cols["full_name"] = full_name
    names = ", ".join(cols)
    values = ", ".join("NULL" if v is None else "'%s'" % v.replace("'", "''") for v in cols.values())
    env.sql("INSERT INTO webform_submissions (%s) VALUES (%s)" % (names, values))
    return env.sql("SELECT max(id) FROM webform_submissions")[0][0]


def customers(env, **body):
    return env.http("POST", "/_admin/customers", body) if body else env.http("GET", "/_admin/customers")


def reporters(env):
    """source id -> (reporter email, reporter accountId), checking exactly-once on the way."""
    return {sid: (req["reporter"], req["reporterAccountId"]) for sid, req in assert_exactly_once(env).items()}


def fixes(env):
    return env.tracker("SELECT field_id, value, message, jsm_key FROM manual_fixes ORDER BY id")


def calls(env):
    return env.jsm_stats()["calls"]


def test_existing_customer_reports_and_is_looked_up_once(world):
    env = customer_env(world, "cu_existing")
    state = customers(env, accounts=[{"email": "ann@example.com", "displayName": "Ann"}])
    ann = state["accounts"][0]["accountId"]
    first = add_row(env, "First", "ann@example.com")
    env.run("sync", check=0)
    second = add_row(env, "Second", " ann@example.com ")
    env.run("sync", check=0)
    got = reporters(env)
    assert got == {first: ("ann@example.com", ann), second: ("ann@example.com", ann)}, got
    c = calls(env)
    assert c["desk_customers"] == 1, "the second submission must come from the cache: %s" % c
    assert c["create_customer"] == 0 and c["add_customer"] == 0, c
    assert fixes(env) == []
    assert env.tracker("SELECT email, account_id FROM customers") == [("ann@example.com", ann)]


def test_new_address_used_twice_makes_one_customer(world):
    env = customer_env(world, "cu_new", SYNC_CUSTOMER_NAME_COLUMN="full_name")
    a = add_row(env, "One", "new.person@example.com", "New Person")
    b = add_row(env, "Two", "new.person@example.com", "New Person")
    env.run("sync", check=0)
    state = customers(env)
    assert len(state["accounts"]) == 1, state
    account = state["accounts"][0]
    assert account["displayName"] == "New Person" and account["accountId"] in state["desk"], state
    got = reporters(env)
    assert got == {a: ("new.person@example.com", account["accountId"]),
                   b: ("new.person@example.com", account["accountId"])}, got
    c = calls(env)
    assert (c["create_customer"], c["add_customer"], c["desk_customers"]) == (1, 1, 1), c
    assert fixes(env) == []
    assert "outcome=created" in env.logs_text()


def test_address_differing_only_in_case(world):
    env = customer_env(world, "cu_case")
    state = customers(env, accounts=[{"email": "Mixed.Case@Example.com"},
                                     {"email": "Off.Desk@Example.com", "on_desk": False}])
    ids = {a["email"]: a["accountId"] for a in state["accounts"]}
    on_desk = add_row(env, "On desk", "mixed.case@EXAMPLE.COM")
    off_desk = add_row(env, "Off desk", "OFF.DESK@example.com")
    env.run("sync", check=0)
    got = reporters(env)
    assert got[on_desk] == ("Mixed.Case@Example.com", ids["Mixed.Case@Example.com"]), got
    # JSM already has an account for the other address: found by user search
    # (the create answers 409), added to the desk, not created twice.
    assert got[off_desk] == ("Off.Desk@Example.com", ids["Off.Desk@Example.com"]), got
    assert len(customers(env)["accounts"]) == 2
    c = calls(env)
    assert (c["create_customer"], c["user_search"], c["add_customer"]) == (1, 1, 1), c
    assert fixes(env) == []


def test_invalid_address_and_no_address_are_reported_by_the_job(world):
    env = customer_env(world, "cu_invalid")
    bad = add_row(env, "Bad address", "not an address")
    none = add_row(env, "No address", None)
    empty = add_row(env, "Empty address", "   ")
    env.run("sync", check=0)
    got = reporters(env)
    assert {sid: r[0] for sid, r in got.items()} == {bad: JOB_ACCOUNT, none: JOB_ACCOUNT, empty: JOB_ACCOUNT}, got
    c = calls(env)
    assert c["desk_customers"] == c["create_customer"] == 0, c
    [(field, value, message, jsm_key)] = fixes(env)
    assert (field, value, jsm_key) == ("raiseOnBehalfOf", "not an address", assert_exactly_once(env)[bad]["issueKey"])
    assert "not an email address" in message
    doc = json.loads(env.run("status", "--json", check=0).stdout)
    assert [(f["field_id"], f["value"]) for f in doc["manual_fixes"]] == [("raiseOnBehalfOf", "not an address")]
    assert "field=raiseOnBehalfOf" in env.run("status", check=0).stdout


def test_customer_creation_refused_still_creates_the_request(world):
    env = customer_env(world, "cu_refused")
    customers(env, policy={"may_create": False})
    a = add_row(env, "Refused one", "stranger@example.com")
    env.run("sync", check=0)
    b = add_row(env, "Refused two", "stranger@example.com")
    env.run("sync", check=0)
    got = reporters(env)
    assert got[a][0] == JOB_ACCOUNT and got[b][0] == JOB_ACCOUNT, got
    assert customers(env)["accounts"] == []
    found = fixes(env)
    assert [(f[0], f[1]) for f in found] == [("raiseOnBehalfOf", "stranger@example.com")] * 2, found
    assert all("403" in f[2] and "create" in f[2] for f in found), found
    assert env.tracker("SELECT count(*) FROM customers") == [(0,)], "a refusal must not be cached"
    text = env.run("status", check=0).stdout
    assert text.count("field=raiseOnBehalfOf value=stranger@example.com") == 2, text


def test_lookup_refused_and_raise_refused(world):
    # may not list the desk's customers: the job reports, with a manual fix
    env = customer_env(world, "cu_noview")
    customers(env, accounts=[{"email": "ann@example.com"}], policy={"may_view": False})
    sid = add_row(env, "Hidden desk", "ann@example.com")
    env.run("sync", check=0)
    assert reporters(env)[sid][0] == JOB_ACCOUNT
    assert [f[1] for f in fixes(env)] == ["ann@example.com"] and "403" in fixes(env)[0][2]
    # a cached customer that has left the desk: JSM refuses raiseOnBehalfOf,
    # the request is still made once, by the job, and the cache entry goes.
    env2 = customer_env(world, "cu_left")
    customers(env2, accounts=[{"email": "ann@example.com"}])
    add_row(env2, "Before", "ann@example.com")
    env2.run("sync", check=0)
    env2.http("POST", "/_admin/reset", {})
    customers(env2, accounts=[{"email": "ann@example.com", "on_desk": False}])
    env2.sql("DELETE FROM webform_submissions")
    after = add_row(env2, "After", "ann@example.com")
    env2.run("sync", check=0)
    reqs = env2.jsm_requests()
    assert len(reqs) == 1 and reqs[0]["reporter"] == JOB_ACCOUNT, reqs
    assert json.loads(next(a["content"] for a in reqs[0]["attachments"] if a["filename"].endswith(".json")))["id"] == after
    assert env2.tracker("SELECT count(*) FROM customers") == [(0,)]
    assert [f[0] for f in fixes(env2)] == ["raiseOnBehalfOf"] and "raiseOnBehalfOf" in fixes(env2)[0][2]


def test_crash_after_customer_created_finds_it_next_run(world):
    env = customer_env(world, "cu_crash")
    # The customer is created but the reply is lost, as when the process dies
    # right after: the next attempt must find that account, not make another.
    env.faults([{"kind": "create_customer", "action": "lost", "times": 1}])
    sid = add_row(env, "Lost reply", "late@example.com")
    env.run("sync")
    assert env.jsm_requests() == [], "no request before its reporter is known"
    env.clear_faults()
    env.run("sync", check=0)
    state = customers(env)
    assert len(state["accounts"]) == 1, state
    assert reporters(env) == {sid: ("late@example.com", state["accounts"][0]["accountId"])}
    assert state["accounts"][0]["accountId"] in state["desk"]


def test_missing_customer_column_is_a_config_error(world):
    env = Env(world, "cu_nocol", SYNC_CUSTOMER_EMAIL_COLUMN="email_address")
    env.insert(1, "Row")
    p = env.run("sync", check=2)
    assert "SYNC_CUSTOMER_EMAIL_COLUMN=email_address" in p.stderr, p.stderr
    assert env.jsm_requests() == []
    p = env.run("check", check=2)
    assert "✗ SYNC_CUSTOMER_EMAIL_COLUMN=email_address" in p.stdout, p.stdout


def test_existing_account_hidden_by_privacy_or_search_refused(world):
    # the account's profile hides its address: user search shows one user
    # without emailAddress, which is taken (the query was the whole address)
    env = customer_env(world, "cu_hidden")
    state = customers(env, accounts=[{"email": "quiet@example.com", "on_desk": False, "hide_email": True}])
    sid = add_row(env, "Hidden", "quiet@example.com")
    env.run("sync", check=0)
    assert reporters(env) == {sid: ("quiet@example.com", state["accounts"][0]["accountId"])}
    # without Browse users and groups user search answers nothing: the job
    # reports, with a manual fix that says so
    env2 = customer_env(world, "cu_nosearch")
    customers(env2, accounts=[{"email": "known@example.com", "on_desk": False}], policy={"may_search": False})
    sid = add_row(env2, "Unsearchable", "known@example.com")
    env2.run("sync", check=0)
    assert reporters(env2)[sid][0] == JOB_ACCOUNT
    [(field, value, message, _)] = fixes(env2)
    assert (field, value) == ("raiseOnBehalfOf", "known@example.com") and "user search" in message, message


def test_customer_lookup_outage_loses_nothing(world):
    env = customer_env(world, "cu_outage", SYNC_RETRY_BUDGET="2")
    customers(env, accounts=[{"email": "ann@example.com"}])
    env.faults([{"kind": "desk_customers", "action": "503"}])
    sid = add_row(env, "During outage", "ann@example.com")
    p = env.run("sync")
    assert p.returncode in (0, 1), p.stderr
    assert env.jsm_requests() == [], "the request waits for its reporter"
    state, cls = env.tracker("SELECT state, error_class FROM submissions")[0]
    assert (state, cls) == ("failed", "temporary"), (state, cls)
    env.clear_faults()
    env.run("sync", check=0)
    assert reporters(env)[sid][0] == "ann@example.com"


# ---- templates and fallbacks ------------------------------------------------

def mapping_with(**extra):
    m = json.loads(json.dumps(DEFAULT_MAPPING))
    m.update(extra)
    return m


def test_empty_required_summary_is_rescued_by_its_fallback(world):
    mapping = mapping_with(fallbacks={"summary": "Web form submission {id}", "customfield_10010": "Software"})
    env = Env(world, "tpl_fallback", mapping=mapping)
    blank = add_row(env, "   ")
    odd = add_row(env, "Odd category", category="Furniture")
    fine = add_row(env, "Fine", category="Hardware")
    env.run("sync", check=0)
    reqs = assert_exactly_once(env)
    assert reqs[blank]["fields"]["summary"] == "Web form submission %s" % blank, reqs[blank]["fields"]
    assert reqs[odd]["fields"]["customfield_10010"] == {"id": "10101"}, "the option fell back to Software"
    assert reqs[fine]["fields"]["customfield_10010"] == {"id": "10100"}, "a value that fits keeps it"
    assert fixes(env) == [], "a rescued value is no manual fix"
    # without the fallback the same row is parked
    env2 = Env(world, "tpl_nofallback")
    add_row(env2, "   ")
    env2.run("sync", check=1)
    assert env2.jsm_requests() == []


def test_template_with_a_null_column(world):
    mapping = mapping_with(templates={"description": "From {full_name} <{contact_email}>:\n{message} {{literal}}"})
    del mapping["fields"]["description"]
    env = with_full_name(Env(world, "tpl_null", mapping=mapping))
    named = add_row(env, "Named", "ann@example.com", "Ann Smith", message="Hello")
    nameless = add_row(env, "Nameless", "bob@example.com", None, message="{contact_email} stays")
    env.run("sync", check=0)
    reqs = assert_exactly_once(env)
    # The description is rich text: a literal ADF document, read as its lines.
    def plain(doc):
        return "\n".join("----" if b["type"] == "rule" else "".join(n.get("text", "") for n in b["content"])
                         for b in doc["content"])
    d1 = plain(reqs[named]["fields"]["description"])
    d2 = plain(reqs[nameless]["fields"]["description"])
    assert d1.startswith("From Ann Smith <ann@example.com>:\nHello {literal}"), d1
    # NULL renders empty; a value that looks like a placeholder is not expanded
    assert d2.startswith("From  <bob@example.com>:\n{contact_email} stays {literal}"), d2
    p = env.run("fields", check=0)
    assert re.search(r"^template description +\"From \{full_name\}", p.stdout, re.M), p.stdout


def test_template_naming_an_unknown_column_is_a_config_error(world):
    mapping = mapping_with(templates={"environment": "x"}, fallbacks={"summary": "Form {no_such_col}"})
    env = Env(world, "tpl_unknown", mapping=mapping)
    env.insert(1, "Row")
    p = env.run("sync", check=2)
    assert "environment" in p.stderr, "unknown field ids in templates are named: %s" % p.stderr
    env.write_mapping(mapping_with(fallbacks={"summary": "Form {no_such_col}"}))
    p = env.run("sync", check=2)
    assert "no_such_col" in p.stderr and "fallback of field summary" in p.stderr, p.stderr
    p = env.run("check", check=2)
    failed = [line for line in p.stdout.splitlines() if line.startswith("✗")]
    assert len(failed) == 1 and "no_such_col" in failed[0], p.stdout
    env.write_mapping(mapping_with(templates={"summary": "Unclosed {brace"}))
    p = env.run("check", check=2)
    assert "not closed" in p.stdout, p.stdout
    assert env.jsm_requests() == []


def test_http_log_lines_carry_their_duration(world):
    env = Env(world, "http_ms")
    env.insert(2, "Row")
    env.jsm_config(latency_ms=120)
    env.run("sync", check=0)
    lines = [l for l in env.logs_text().splitlines() if "event=http" in l]
    assert lines, "no http lines"
    durations = [int(re.search(r" duration_ms=(\d+) ", l).group(1)) for l in lines]
    assert len(durations) == len(lines), lines
    assert min(durations) >= 120, "every call took at least the server's latency: %s" % durations


# Rerun under valgrind by `make valgrind` (part of `make test`).
for _test in (test_new_address_used_twice_makes_one_customer, test_template_with_a_null_column,
              test_customer_creation_refused_still_creates_the_request):
    _test.valgrind = True
