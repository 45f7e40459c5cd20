#!/usr/bin/env bash
# Program scenarios: the real bin/wf2jsm against the validating proxy.
# A throwaway PostgreSQL with the sample webform rows; then, from a temporary
# working directory, `wf2jsm fields`, `check`, `sync --catch-up` and `reconcile`,
# each of which must exit 0 with no contract violation in what it sent or got.
# Without bin/wf2jsm the scenarios are skipped (reported as such, with the reason).
# Run by contract/run.sh (see lib.sh for the environment).
set -uo pipefail
SCENARIO=wf2jsm
. "$CONTRACT_DIR/lib.sh"

BIN=${WF2JSM_BIN:-$ROOT/bin/wf2jsm}
if [ ! -x "$BIN" ]; then
    skip "wf2jsm: program scenarios skipped: ${BIN#"$ROOT"/} is not built yet (build it first, e.g. make)"
    exit 0
fi
PGTMP=$ROOT/tests/lib/pgtmp.sh
PG_DIR=$CONTRACT_WORK/pg
RUN=$CONTRACT_WORK/wf2jsm-run
# The program creates its own log directory, owner-only; `check` verifies that.
mkdir -p "$RUN" "$PG_DIR"
# shellcheck disable=SC2317  # called through the trap
stop_pg() {
    # keep what the program wrote (its logs, the mapping, the tracker) for inspection
    rm -rf "$CONTRACT_BUILD/logs/wf2jsm-run"
    cp -r "$RUN" "$CONTRACT_BUILD/logs/wf2jsm-run" 2>/dev/null || true
    bash "$PGTMP" stop "$PG_DIR" >/dev/null 2>&1 || true
}
trap stop_pg EXIT

if ! DB_URL=$(bash "$PGTMP" start "$PG_DIR" 2>"$CONTRACT_BUILD/logs/pgtmp.log"); then
    fail "wf2jsm: start a throwaway PostgreSQL (tests/lib/pgtmp.sh)"
    sed 's/^/       /' "$CONTRACT_BUILD/logs/pgtmp.log"
    exit 0
fi
if psql "$DB_URL" -v ON_ERROR_STOP=1 -q -f "$ROOT/setup/webform_schema.sql" -f "$ROOT/setup/webform_seed.sql" \
        >"$CONTRACT_BUILD/logs/psql.log" 2>&1; then
    rows=$(psql "$DB_URL" -Atc 'SELECT count(*) FROM webform_submissions' 2>/dev/null)
    pass "wf2jsm: throwaway PostgreSQL with the sample webform table ($rows rows)"
else
    fail "wf2jsm: load setup/webform_schema.sql and setup/webform_seed.sql"
    sed 's/^/       /' "$CONTRACT_BUILD/logs/psql.log"
    exit 0
fi

# A committed example mapping, if the project has one; otherwise `wf2jsm fields`
# writes SYNC_FIELD_MAPPING with the pairs it can guess (field id or name = column),
# and we then add, as a person following its hint would, the pairs of the sample
# table it cannot guess.
MAPPING_FROM=""
for example in "$ROOT/setup/field_mapping.example.json" "$ROOT/field_mapping.example.json" "$ROOT/setup/field_mapping.json"; do
    if [ -f "$example" ]; then cp "$example" "$RUN/field_mapping.json"; MAPPING_FROM=$example; break; fi
done
complete_mapping() {
    python3 - "$RUN/field_mapping.json" <<'PY' || note "could not complete the field mapping"
import json, sys
path = sys.argv[1]
with open(path) as f:
    doc = json.load(f)
fields = doc.setdefault("fields", {})
for field, column in {"summary": "subject", "description": "message", "customfield_10020": "employees"}.items():
    if field not in fields and column not in fields.values():
        fields[field] = column
with open(path, "w") as f:
    json.dump(doc, f, indent=2)
PY
}

# SYNC_CUSTOMER_EMAIL_COLUMN: the requests are raised on behalf of the sample
# rows' submitters, so the customer calls (look up, create, add, mypermissions)
# go through the proxy too.
export WEBFORM_DB_URL=$DB_URL JIRA_BASE_URL=$PROXY_URL JIRA_EMAIL JIRA_API_TOKEN \
    JSM_SERVICE_DESK_ID=1 JSM_REQUEST_TYPE_ID=10 SYNC_CUSTOMER_EMAIL_COLUMN=contact_email \
    SYNC_TRACKER_DB=$RUN/tracker.db SYNC_LOG_DIR=$RUN/logs SYNC_FIELD_MAPPING=$RUN/field_mapping.json

admin POST /_admin/reset >/dev/null || { fail "wf2jsm: reset the JSM test server"; exit 0; }
next_mark
for cmd in "fields" "check" "sync --catch-up" "reconcile"; do
    from=$LAST_MARK
    log=$CONTRACT_BUILD/logs/wf2jsm-${cmd%% *}.log
    # shellcheck disable=SC2086  # $cmd is the subcommand and its flags
    (cd "$RUN" && timeout 180 "$BIN" $cmd) >"$log" 2>&1; rc=$?
    next_mark
    if [ "$cmd" = fields ] && [ -z "$MAPPING_FROM" ]; then complete_mapping; fi
    out=$(report "$from" "$LAST_MARK" --quiet); vrc=$?
    if [ "$rc" = 0 ] && [ "$vrc" = 0 ]; then
        pass "wf2jsm: wf2jsm $cmd (exit 0, no violations)"
    else
        fail "wf2jsm: wf2jsm $cmd (exit $rc$([ "$vrc" = 0 ] || echo ", contract violations"))"
        [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/       /'
        tail -15 "$log" | sed 's/^/       | /'
    fi
    if [ "$cmd" = "sync --catch-up" ]; then
        n=$(admin GET /_admin/state | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["requests"]))' 2>/dev/null || echo 0)
        if [ "${n:-0}" -gt 0 ]; then pass "wf2jsm: sync created $n request(s) through the proxy"
        else fail "wf2jsm: sync --catch-up created no request at the JSM test server"; fi
        c=$(admin GET /_admin/state | python3 -c 'import json,sys; print(sum(r["reporter"] != "'"$JIRA_EMAIL"'" for r in json.load(sys.stdin)["requests"]))' 2>/dev/null || echo 0)
        if [ "${c:-0}" -gt 0 ]; then pass "wf2jsm: $c request(s) raised on behalf of their submitter through the proxy"
        else fail "wf2jsm: sync --catch-up raised no request on behalf of a submitter"; fi
    fi
done

# The tracker lost: the next sync rebuilds it from JSM (the service desk's
# project id, a JQL search with labels and attachment fields) through the
# proxy, and creates nothing again.
count_requests() {
    admin GET /_admin/state | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["requests"]))' 2>/dev/null || echo 0
}
before=$(count_requests)
rm -f "$RUN"/tracker.db "$RUN"/tracker.db-wal "$RUN"/tracker.db-shm
from=$LAST_MARK
log=$CONTRACT_BUILD/logs/wf2jsm-rebuild.log
(cd "$RUN" && timeout 180 "$BIN" sync) >"$log" 2>&1; rc=$?
next_mark
out=$(report "$from" "$LAST_MARK" --quiet); vrc=$?
after=$(count_requests)
if [ "$rc" = 0 ] && [ "$vrc" = 0 ] && [ "$after" = "$before" ] && grep -q 'event=rebuilt' "$RUN"/logs/tracker_rebuild.log 2>/dev/null; then
    pass "wf2jsm: wf2jsm sync after the tracker was deleted rebuilt it ($before requests, none created again)"
else
    fail "wf2jsm: wf2jsm sync after the tracker was deleted (exit $rc, $before requests before, $after after$([ "$vrc" = 0 ] || echo ", contract violations"))"
    [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/       /'
    tail -15 "$log" | sed 's/^/       | /'
fi
exit 0
