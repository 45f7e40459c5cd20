# contract/lib.sh: helpers shared by contract/run.sh and contract/scenarios/*.sh.
# Sourced, not run. Expects from run.sh:
#   CONTRACT_DIR      contract/ (absolute)
#   CONTRACT_BUILD    contract/build (Prism's log and the tap's log are in $CONTRACT_BUILD/logs)
#   CONTRACT_RESULTS  file that collects one "PASS|FAIL|SKIP name" line per check
#   CONTRACT_WORK     scratch directory of this run
#   PROXY_URL         the client-facing URL: tap -> Prism (validating proxy) -> JSM test server
#   JSM_URL           the JSM test server itself (only for its /_admin/ test API)
#   JIRA_EMAIL JIRA_API_TOKEN

CURL_MAX_TIME=${CURL_MAX_TIME:-30}

pass() { printf 'ok   - %s\n' "$*"; printf 'PASS %s\n' "$*" >>"$CONTRACT_RESULTS"; }
fail() { printf 'FAIL - %s\n' "$*"; printf 'FAIL %s\n' "$*" >>"$CONTRACT_RESULTS"; }
skip() { printf 'skip - %s\n' "$*"; printf 'SKIP %s\n' "$*" >>"$CONTRACT_RESULTS"; }
note() { printf '       %s\n' "$@"; }

# mark NAME: a boundary in both logs. The request goes through the whole chain;
# Prism answers 404 (no such route) and logs it; we wait until Prism's log shows
# it, so everything Prism logged for earlier requests is on disk before it.
MARK_SEQ=${MARK_SEQ:-0}
LAST_MARK=""
mark() {
    local name=$1 _i
    curl -s -o /dev/null --max-time 10 "$PROXY_URL/__contract_mark__/$name" || true
    for _i in $(seq 1 200); do
        grep -q "__contract_mark__/$name .*Request terminated" "$CONTRACT_BUILD/logs/prism.log" 2>/dev/null && { LAST_MARK=$name; return 0; }
        sleep 0.05
    done
    echo "contract: Prism never logged mark $name" >&2
    LAST_MARK=$name
    return 1
}

next_mark() { MARK_SEQ=$((MARK_SEQ + 1)); mark "${SCENARIO:-run}-$MARK_SEQ-$$"; }

# report FROM TO [report.py args]: print the violations between two marks.
report() {
    local from=$1 to=$2; shift 2
    python3 "$CONTRACT_DIR/report.py" --build "$CONTRACT_BUILD" --from "$from" --to "$to" "$@"
}

# api METHOD PATH [curl args...]: one request through the proxy as wf2jsm sends it
# (Basic auth, Accept: application/json). Sets STATUS; the body is in $BODY_FILE.
BODY_FILE=${CONTRACT_WORK:-/tmp}/last-body
api() {
    local method=$1 path=$2; shift 2
    STATUS=$(curl -sS -o "$BODY_FILE" -w '%{http_code}' --max-time "$CURL_MAX_TIME" \
        -u "$JIRA_EMAIL:$JIRA_API_TOKEN" -H 'Accept: application/json' \
        -X "$method" "$@" "$PROXY_URL$path") || STATUS=000
}

# json_body PYEXPR: evaluate a Python expression on the last body (as `b`).
json_body() {
    python3 -c 'import json,sys
try: b=json.load(open(sys.argv[1]))
except Exception: sys.exit(1)
v=eval(sys.argv[2])
print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$BODY_FILE" "$1"
}

# check_call NAME EXPECTED_STATUSES METHOD PATH [curl args...]: send one request
# between two marks; the check passes if the status is one of EXPECTED_STATUSES
# (space-separated) and Prism reported no violation for it.
check_call() {
    local name=$1 want=$2 method=$3 path=$4 from out rc
    shift 4
    [ -n "$LAST_MARK" ] || next_mark
    from=$LAST_MARK
    api "$method" "$path" "$@"
    next_mark
    out=$(report "$from" "$LAST_MARK" --quiet); rc=$?
    if [ "$rc" = 0 ] && [[ " $want " == *" $STATUS "* ]]; then
        pass "$name ($method ${path%%\?*} -> $STATUS)"
        return 0
    fi
    fail "$name ($method ${path%%\?*} -> $STATUS, expected $want)"
    [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/       /'
    [ "$rc" = 0 ] || [ -n "$out" ] || note "report.py failed (exit $rc)"
    if [ -s "$BODY_FILE" ] && [[ " $want " != *" $STATUS "* ]]; then note "body: $(head -c 600 "$BODY_FILE")"; fi
    return 1
}

# expect_violation NAME METHOD PATH 'TEXT'... -- [curl args...]: send a deliberately
# wrong request; the check passes only if every TEXT appears in a reported
# violation (e.g. 'createCustomerRequest request body/serviceDeskId').
expect_violation() {
    local name=$1 method=$2 path=$3 from out rc
    shift 3
    local expects=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do expects+=(--expect "$1"); shift; done
    [ "${1:-}" = "--" ] && shift
    [ -n "$LAST_MARK" ] || next_mark
    from=$LAST_MARK
    api "$method" "$path" "$@"
    next_mark
    out=$(report "$from" "$LAST_MARK" "${expects[@]}"); rc=$?
    if [ "$rc" = 0 ]; then
        pass "$name: caught ($method ${path%%\?*} -> $STATUS)"
        printf '%s\n' "$out" | grep '^VIOLATION' | sed 's/^/       /'
        return 0
    fi
    fail "$name: NOT caught ($method ${path%%\?*} -> $STATUS)"
    printf '%s\n' "$out" | sed 's/^/       /'
    return 1
}

# admin METHOD PATH [JSON]: the JSM test server's own test API (never via Prism:
# it is not part of Atlassian's API).
admin() {
    local method=$1 path=$2 data=${3:-}
    if [ -n "$data" ]; then
        curl -sS --max-time 10 -X "$method" -H 'Content-Type: application/json' -d "$data" "$JSM_URL$path"
    else
        curl -sS --max-time 10 -X "$method" "$JSM_URL$path"
    fi
}
