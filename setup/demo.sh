#!/bin/sh
# demo.sh (`make demo`): the real job, end to end, on loopback.
# Starts a throwaway PostgreSQL with the sample webform data and the JSM test
# server, runs `wf2jsm fields` and `wf2jsm sync --catch-up`, prints the
# tickets it created, runs one more tick to show it creates nothing twice,
# then stops everything it started. Its working files stay in demo/.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/demo
rm -rf "$work"
mkdir -p "$work"
python=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')
jsm_pid=""
cleanup() {
    [ -n "$jsm_pid" ] && kill "$jsm_pid" 2>/dev/null
    "$root/tests/lib/pgtmp.sh" stop "$work/pg" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "==> starting a throwaway PostgreSQL with the sample webform table"
db_url=$("$root/tests/lib/pgtmp.sh" start "$work/pg")
psql -X -q -v ON_ERROR_STOP=1 "$db_url" -f "$root/setup/webform_schema.sql" -f "$root/setup/webform_seed.sql"

echo "==> starting the JSM test server on loopback"
"$python" "$root/tests/jsm_server.py" --port 0 --port-file "$work/jsm.port" --token demo-token --quiet \
    >"$work/jsm.log" 2>&1 &
jsm_pid=$!
i=0
while [ ! -s "$work/jsm.port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
jsm_url="http://127.0.0.1:$(cat "$work/jsm.port")"

cat >"$work/.env" <<ENV
WEBFORM_DB_URL=$db_url
JIRA_BASE_URL=$jsm_url
JIRA_EMAIL=demo@example.com
JIRA_API_TOKEN=demo-token
JSM_SERVICE_DESK_ID=1
JSM_REQUEST_TYPE_ID=10
SYNC_SEARCH_SETTLE=0
ENV
cp "$root/setup/field_mapping.example.json" "$work/field_mapping.json"
cd "$work"

echo "==> wf2jsm fields"
"$root/bin/wf2jsm" fields
echo "==> wf2jsm sync --catch-up"
"$root/bin/wf2jsm" sync --catch-up
echo "==> the tickets in JSM"
curl -s "$jsm_url/_admin/state" | "$python" -c '
import json, sys
for r in json.load(sys.stdin)["requests"]:
    f = r["fields"]
    atts = ", ".join("%s (%d bytes)" % (a["filename"], a["size"]) for a in r["attachments"])
    print("  %-6s %-30.30s %s" % (r["issueKey"], f.get("summary", ""), atts))'
echo "==> one more tick: nothing new, nothing created twice"
"$root/bin/wf2jsm" sync --catch-up
echo "==> wf2jsm status"
"$root/bin/wf2jsm" status
echo "==> done; logs and tracker are in demo/, the servers are stopped"
