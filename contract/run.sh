#!/usr/bin/env bash
# contract/run.sh: the contract test (`make contract` runs `bash contract/run.sh`).
#
# Checks that what wf2jsm sends and what the JSM test server answers match
# Atlassian's published OpenAPI descriptions (../shared/contracts), with Stoplight
# Prism as a validating proxy that turns every violation into an error (--errors):
#
#   curl / bin/wf2jsm -> contract/tap.py -> Prism proxy -> tests/jsm_server.py
#                        (records answers)  (validates)    (stateful JSM stand-in)
#
# Steps: 1. install the pinned Prism into contract/node_modules (npm ci from the
# committed lock; the only network use, skipped when already installed from the
# same lock); 2. build the patched, merged description into contract/build
# (overlay.py + overlay.json); 3. start the JSM test server, Prism and the tap on
# free loopback ports; 4. scenarios/http_shapes.sh: every request wf2jsm sends,
# replayed with curl; 5. scenarios/negative.sh: deliberately wrong requests and
# answers must be caught; 6. scenarios/wf2jsm.sh: bin/wf2jsm fields/check/sync/
# reconcile through the proxy (skipped, with the reason, without the binary).
# Prints one line per check, VIOLATION lines naming operation and field, and
# finally "N passed, N failed"; exits non-zero on any failure. Logs stay in
# contract/build/logs/. Runs as root or as a normal user.
# `bash contract/run.sh --serve` starts the chain and keeps it up for manual probing.
set -uo pipefail

CONTRACT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$CONTRACT_DIR")
CONTRACT_BUILD=$CONTRACT_DIR/build
LOGS=$CONTRACT_BUILD/logs
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log "$LOGS"/*.jsonl
CONTRACT_WORK=$(mktemp -d "${TMPDIR:-/tmp}/wf2jsm-contract.XXXXXX")
chmod 755 "$CONTRACT_WORK"
CONTRACT_RESULTS=$CONTRACT_WORK/results
: >"$CONTRACT_RESULTS"
JIRA_EMAIL=demo@example.com
JIRA_API_TOKEN=demo-token
export ROOT CONTRACT_DIR CONTRACT_BUILD CONTRACT_RESULTS CONTRACT_WORK JIRA_EMAIL JIRA_API_TOKEN
. "$CONTRACT_DIR/lib.sh"

PIDS=()
# shellcheck disable=SC2317  # called through the trap
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    rm -rf "$CONTRACT_WORK"
}
trap cleanup EXIT
trap 'echo "contract: interrupted" >&2; exit 130' INT TERM

finish() {
    local passed failed skipped
    passed=$(grep -c '^PASS' "$CONTRACT_RESULTS")
    failed=$(grep -c '^FAIL' "$CONTRACT_RESULTS")
    skipped=$(grep -c '^SKIP' "$CONTRACT_RESULTS")
    echo
    if [ "$failed" -gt 0 ]; then
        echo "contract: failed checks:"
        grep '^FAIL' "$CONTRACT_RESULTS" | sed 's/^FAIL /  - /'
    fi
    echo "contract: logs in ${LOGS#"$ROOT"/} (prism.log, tap.jsonl, jsm_server.log)"
    if [ "$skipped" -gt 0 ]; then
        echo "$passed passed, $failed failed, $skipped skipped"
    else
        echo "$passed passed, $failed failed"
    fi
    [ "$failed" -eq 0 ]
    exit $?
}

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
    local secs=$1 _i; shift
    for _i in $(seq 1 $((secs * 10))); do "$@" && return 0; sleep 0.1; done
    return 1
}

# --- 1. Prism -------------------------------------------------------------------
PIN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dependencies"]["@stoplight/prism-cli"])' "$CONTRACT_DIR/package.json")
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    fail "install: node and npm are required (Debian: apt-get install nodejs npm)"; finish
fi
if ! node -e 'const [a,b,c]=process.versions.node.split(".").map(Number); process.exit(a>18||(a===18&&(b>20||(b===20&&c>=1)))?0:1)'; then
    fail "install: Prism $PIN needs node >= 18.20.1, found $(node --version)"; finish
fi
PRISM=$CONTRACT_DIR/node_modules/.bin/prism
STAMP=$CONTRACT_DIR/node_modules/.wf2jsm-lock-sha256
if [ -f "$CONTRACT_DIR/package-lock.json" ]; then
    want=$(cat "$CONTRACT_DIR/package.json" "$CONTRACT_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)
    if [ -x "$PRISM" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
        pass "install: @stoplight/prism-cli $PIN already installed from package-lock.json"
    elif (cd "$CONTRACT_DIR" && npm ci --no-audit --no-fund --ignore-scripts) >"$LOGS/npm.log" 2>&1; then
        echo "$want" >"$STAMP"
        pass "install: npm ci (@stoplight/prism-cli $PIN)"
    else
        fail "install: npm ci failed"; tail -20 "$LOGS/npm.log" | sed 's/^/       /'; finish
    fi
else
    if (cd "$CONTRACT_DIR" && npm install --no-audit --no-fund --ignore-scripts --save-exact) >"$LOGS/npm.log" 2>&1; then
        pass "install: npm install (no lock yet; commit contract/package-lock.json)"
    else
        fail "install: npm install failed"; tail -20 "$LOGS/npm.log" | sed 's/^/       /'; finish
    fi
fi
got=$("$PRISM" --version 2>/dev/null | tail -1)
if [ "$got" = "$PIN" ]; then pass "install: prism --version is the pinned $PIN"
else fail "install: prism --version says '$got', package.json pins $PIN"; finish; fi

# --- 2. the patched, merged description ---------------------------------------------
if python3 "$CONTRACT_DIR/overlay.py" --out "$CONTRACT_BUILD" >"$LOGS/overlay.log" 2>&1; then
    pass "overlay: $(grep -c 'node(s)' "$LOGS/overlay.log") overlay actions applied; $(tail -1 "$LOGS/overlay.log" | sed 's/^overlay: //')"
else
    fail "overlay: could not build the patched description"; sed 's/^/       /' "$LOGS/overlay.log"; finish
fi

# --- 3. JSM test server, Prism, tap ---------------------------------------------------
if [ ! -f "$ROOT/tests/jsm_server.py" ]; then
    fail "servers: tests/jsm_server.py (the JSM test server) is missing"; finish
fi
python3 "$ROOT/tests/jsm_server.py" --host 127.0.0.1 --port 0 --port-file "$CONTRACT_WORK/jsm.port" \
    --email "$JIRA_EMAIL" --token "$JIRA_API_TOKEN" >"$LOGS/jsm_server.log" 2>&1 &
PIDS+=($!)
if ! wait_for 20 test -s "$CONTRACT_WORK/jsm.port"; then
    fail "servers: the JSM test server did not start"; tail -20 "$LOGS/jsm_server.log" | sed 's/^/       /'; finish
fi
JSM_URL=http://127.0.0.1:$(tr -d '[:space:]' <"$CONTRACT_WORK/jsm.port")
export JSM_URL

"$PRISM" proxy "$CONTRACT_BUILD/merged.openapi.json" "$JSM_URL" --errors \
    --host 127.0.0.1 --port 0 --no-multiprocess >"$LOGS/prism.log" 2>&1 &
PIDS+=($!)
# shellcheck disable=SC2317  # called through wait_for
prism_up() { grep -q 'Prism is listening on' "$LOGS/prism.log" || ! kill -0 "${PIDS[1]}" 2>/dev/null; }
wait_for 120 prism_up
PRISM_URL=$(sed -n 's/.*Prism is listening on \(http:[^ ]*\).*/\1/p' "$LOGS/prism.log" | head -1)
if [ -z "$PRISM_URL" ]; then
    fail "servers: Prism did not start"; grep -v '^\S* \S* › \[CLI\] .*info ' "$LOGS/prism.log" | tail -20 | sed 's/^/       /'; finish
fi

python3 "$CONTRACT_DIR/tap.py" --upstream "$PRISM_URL" --log "$LOGS/tap.jsonl" \
    --port 0 --port-file "$CONTRACT_WORK/tap.port" >"$LOGS/tap.log" 2>&1 &
PIDS+=($!)
if ! wait_for 20 test -s "$CONTRACT_WORK/tap.port"; then
    fail "servers: the recording tap did not start"; sed 's/^/       /' "$LOGS/tap.log"; finish
fi
PROXY_URL=http://127.0.0.1:$(tr -d '[:space:]' <"$CONTRACT_WORK/tap.port")
export PROXY_URL
if mark "chain-up-$$"; then
    pass "servers: JSM test server $JSM_URL, Prism $PIN proxy $PRISM_URL (--errors), client URL $PROXY_URL"
else
    fail "servers: a request through tap -> Prism never showed up in Prism's log"; finish
fi

if [ "${1:-}" = "--serve" ]; then
    # Manual use: keep the chain up (Ctrl-C stops it). Send requests to the client URL;
    # report violations with: python3 contract/report.py --from A --to B after
    # GET $PROXY_URL/__contract_mark__/A ... /B around them.
    echo "contract: serving; client URL $PROXY_URL (JSM_URL=$JSM_URL); Ctrl-C to stop"
    echo "$PROXY_URL" >"$CONTRACT_BUILD/proxy-url"
    wait "${PIDS[@]}"
    finish
fi

# --- 4-6. scenarios ---------------------------------------------------------------------
run_scenario() {
    local name=$1 rc
    echo
    echo "== $name"
    bash "$CONTRACT_DIR/scenarios/$name.sh"; rc=$?
    [ "$rc" = 0 ] || fail "$name: scenario script exited $rc"
}
run_scenario http_shapes
run_scenario negative
run_scenario wf2jsm
finish
