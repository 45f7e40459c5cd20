#!/usr/bin/env bash
# Client-shape scenario: replay, with curl through the validating proxy, every
# request wf2jsm sends (same methods, paths, headers and bodies), in the order a
# sync and a reconcile send them. Needs no C binary. Each request is one check:
# it must get the expected status and Prism must report no request or response
# violation for it. Run by contract/run.sh (see lib.sh for the environment).
set -uo pipefail
SCENARIO=shapes
. "$CONTRACT_DIR/lib.sh"

SD=${JSM_SERVICE_DESK_ID:-1}
RT=${JSM_REQUEST_TYPE_ID:-10}
UK=wf2jsm-0123abcd4567ef89      # the per-submission unique label wf2jsm adds
J='Content-Type: application/json'

admin POST /_admin/reset >/dev/null || { fail "shapes: reset the JSM test server"; exit 1; }
next_mark

# -- check / fields: who am I, does the service desk and request type exist, its fields
check_call "shapes: getCurrentUser" 200 GET /rest/api/3/myself
check_call "shapes: getServiceDeskById" 200 GET "/rest/servicedeskapi/servicedesk/$SD"
check_call "shapes: getRequestTypeById" 200 GET "/rest/servicedeskapi/servicedesk/$SD/requesttype/$RT"
check_call "shapes: getRequestTypeFields" 200 GET "/rest/servicedeskapi/servicedesk/$SD/requesttype/$RT/field"

# -- sync: create the request with every field type the mapping produces
create_body() {   # $1 = summary suffix, $2 = unique label
    cat <<EOF
{"serviceDeskId":"$SD","requestTypeId":"$RT","requestFieldValues":{"summary":"Laptop does not boot $1","description":"Submitted through the web form.\n\nContact: ana@example.com","customfield_10010":{"id":"10100"},"customfield_10011":{"id":"10201"},"customfield_10020":3,"duedate":"2026-11-25","customfield_10040":[{"id":"10300"}],"labels":["wf2jsm","$2"]}}
EOF
}
check_call "shapes: createCustomerRequest" 201 POST /rest/servicedeskapi/request -H "$J" --data-binary "$(create_body 1 "$UK")"
KEY=$(json_body 'b["issueKey"]' 2>/dev/null) || KEY=""
[ -n "$KEY" ] || { fail "shapes: createCustomerRequest returned no issueKey"; KEY=NOKEY-1; }

# -- sync: upload the JSON and CSV copies of the submission as temporary files
printf '{"id":1,"subject":"Laptop does not boot 1","impact":"Medium"}\n' >"$CONTRACT_WORK/submission-1.json"
printf 'id,subject,impact\r\n1,Laptop does not boot 1,Medium\r\n' >"$CONTRACT_WORK/submission-1.csv"
check_call "shapes: attachTemporaryFile (2 files)" 201 POST "/rest/servicedeskapi/servicedesk/$SD/attachTemporaryFile" \
    -H 'X-Atlassian-Token: no-check' \
    -F "file=@$CONTRACT_WORK/submission-1.json;type=application/json" \
    -F "file=@$CONTRACT_WORK/submission-1.csv;type=text/csv"
TEMP_IDS=$(json_body '[t["temporaryAttachmentId"] for t in b["temporaryAttachments"]]' 2>/dev/null) || TEMP_IDS='["temp1","temp2"]'

# -- sync: attach them to the request, privately; list them back
check_call "shapes: createAttachment" 201 POST "/rest/servicedeskapi/request/$KEY/attachment" -H "$J" \
    --data-binary "{\"temporaryAttachmentIds\":$TEMP_IDS,\"public\":false}"
check_call "shapes: getAttachmentsForRequest" 200 GET "/rest/servicedeskapi/request/$KEY/attachment?start=0&limit=50"

# -- reconcile: find requests by label, page by page
check_call "shapes: createCustomerRequest (second, for paging)" 201 POST /rest/servicedeskapi/request -H "$J" \
    --data-binary "$(create_body 2 wf2jsm-fedcba9876543210)"
KEY2=$(json_body 'b["issueKey"]' 2>/dev/null) || KEY2=""
check_call "shapes: searchAndReconsileIssuesUsingJqlPost" 200 POST /rest/api/3/search/jql -H "$J" \
    --data-binary "{\"jql\":\"labels = \\\"$UK\\\"\",\"fields\":[\"labels\",\"summary\"],\"maxResults\":50}"
check_call "shapes: searchAndReconsileIssuesUsingJqlPost (page 1 of 2)" 200 POST /rest/api/3/search/jql -H "$J" \
    --data-binary '{"jql":"labels = \"wf2jsm\"","fields":["labels","summary"],"maxResults":1}'
TOKEN=$(json_body 'b.get("nextPageToken") or ""' 2>/dev/null) || TOKEN=""
if [ -n "$TOKEN" ]; then
    check_call "shapes: searchAndReconsileIssuesUsingJqlPost (nextPageToken)" 200 POST /rest/api/3/search/jql -H "$J" \
        --data-binary "{\"jql\":\"labels = \\\"wf2jsm\\\"\",\"fields\":[\"labels\",\"summary\"],\"maxResults\":1,\"nextPageToken\":\"$TOKEN\"}"
else
    fail "shapes: search with maxResults=1 over 2 requests returned no nextPageToken"
fi

# -- reconcile: repair labels/summary, read them back, delete a duplicate
check_call "shapes: editIssue" 204 PUT "/rest/api/3/issue/$KEY" -H "$J" \
    --data-binary "{\"fields\":{\"labels\":[\"wf2jsm\",\"$UK\"],\"summary\":\"Laptop does not boot 1\"}}"
check_call "shapes: getIssue" 200 GET "/rest/api/3/issue/$KEY?fields=labels,summary"
if [ -n "$KEY2" ]; then
    check_call "shapes: deleteIssue" 204 DELETE "/rest/api/3/issue/$KEY2"
    check_call "shapes: getIssue (deleted -> 404)" 404 GET "/rest/api/3/issue/$KEY2?fields=labels,summary"
fi

# -- the error answer wf2jsm must understand: a rejected field value
check_call "shapes: createCustomerRequest rejected (400 errorMessage+errors)" 400 POST /rest/servicedeskapi/request -H "$J" \
    --data-binary "{\"serviceDeskId\":\"$SD\",\"requestTypeId\":\"$RT\",\"requestFieldValues\":{\"summary\":\"bad option\",\"customfield_10011\":{\"id\":\"99999\"}}}"
exit 0
