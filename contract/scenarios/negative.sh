#!/usr/bin/env bash
# Negative test: proof that the checker bites. Deliberately wrong requests (and
# one deliberately wrong response) go through the validating proxy; each check
# passes only if Prism reports the violation and report.py names the operation
# and the field. If any of them is NOT caught the run fails: a contract test
# that never complains is worth nothing. Run by contract/run.sh.
set -uo pipefail
SCENARIO=negative
. "$CONTRACT_DIR/lib.sh"

SD=${JSM_SERVICE_DESK_ID:-1}
RT=${JSM_REQUEST_TYPE_ID:-10}
J='Content-Type: application/json'

admin POST /_admin/reset >/dev/null || { fail "negative: reset the JSM test server"; exit 1; }
before=$(admin GET /_admin/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_calls"])' 2>/dev/null || echo "?")
next_mark

# request side -----------------------------------------------------------------
expect_violation "negative: serviceDeskId as a number" POST /rest/servicedeskapi/request \
    'createCustomerRequest request body/serviceDeskId: must be string' -- \
    -H "$J" --data-binary "{\"serviceDeskId\":$SD,\"requestTypeId\":\"$RT\",\"requestFieldValues\":{\"summary\":\"x\"}}"

expect_violation "negative: unknown top-level property in the create body" POST /rest/servicedeskapi/request \
    "createCustomerRequest request body: must NOT have additional properties; found 'labels'" -- \
    -H "$J" --data-binary "{\"serviceDeskId\":\"$SD\",\"requestTypeId\":\"$RT\",\"requestFieldValues\":{\"summary\":\"x\"},\"labels\":[\"wf2jsm\"]}"

expect_violation "negative: public as a string in createAttachment" POST /rest/servicedeskapi/request/WF-1/attachment \
    'createAttachment request body/public: must be boolean' -- \
    -H "$J" --data-binary '{"temporaryAttachmentIds":["temp1"],"public":"false"}'

printf 'x\n' >"$CONTRACT_WORK/neg.txt"
expect_violation "negative: attachTemporaryFile without X-Atlassian-Token" POST "/rest/servicedeskapi/servicedesk/$SD/attachTemporaryFile" \
    'attachTemporaryFile request header' -- \
    -F "file=@$CONTRACT_WORK/neg.txt;type=text/plain"

expect_violation "negative: attachTemporaryFile part not named file" POST "/rest/servicedeskapi/servicedesk/$SD/attachTemporaryFile" \
    "attachTemporaryFile request body: must have required property 'file'" -- \
    -H 'X-Atlassian-Token: no-check' -F "upload=@$CONTRACT_WORK/neg.txt;type=text/plain"

expect_violation "negative: old startAt paging in the enhanced JQL search" POST /rest/api/3/search/jql \
    "searchAndReconsileIssuesUsingJqlPost request body: must NOT have additional properties; found 'startAt'" -- \
    -H "$J" --data-binary '{"jql":"labels = \"wf2jsm\"","fields":["labels"],"maxResults":50,"startAt":50}'

expect_violation "negative: fields as a string in the enhanced JQL search" POST /rest/api/3/search/jql \
    'searchAndReconsileIssuesUsingJqlPost request body/fields: must be array' -- \
    -H "$J" --data-binary '{"jql":"labels = \"wf2jsm\"","fields":"labels,summary"}'

expect_violation "negative: an auth scheme the API does not take" GET "/rest/servicedeskapi/servicedesk/$SD" \
    'getServiceDeskById request security' -- \
    -H 'Authorization: Token abc'

expect_violation "negative: an endpoint Atlassian does not have" GET "/rest/servicedeskapi/servicedesk/$SD/webform" \
    'request route' --

after=$(admin GET /_admin/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_calls"])' 2>/dev/null || echo "?")
if [ "$before" != "?" ] && [ "$before" = "$after" ]; then
    pass "negative: Prism stopped every invalid request before the JSM test server ($after calls there)"
else
    fail "negative: invalid requests reached the JSM test server (calls before $before, after $after)"
fi

# response side: make the test server answer a field list that breaks
# RequestTypeFieldDTO (required must be a boolean)
cfg='{"fields":[{"fieldId":"summary","name":"Summary","jiraSchema":{"type":"string","system":"summary"},"required":"yes"}]}'
if admin POST /_admin/config "$cfg" >/dev/null; then
    expect_violation "negative: server answers required as a string" GET "/rest/servicedeskapi/servicedesk/$SD/requesttype/$RT/field" \
        'getRequestTypeFields response body/requestTypeFields/0/required: must be boolean' --
else
    fail "negative: could not configure the JSM test server's field list for the response-side test"
fi
admin POST /_admin/reset >/dev/null
exit 0
