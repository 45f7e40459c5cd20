#!/usr/bin/env python3
"""Self-test of tests/jsm_server.py: starts it on a free port and drives it over HTTP.

Every JSON answer of a /rest/ call is checked against the response schema that
Atlassian's OpenAPI descriptions in /work/shared/contracts declare for it (when
they declare one), with the project's overlay adding `errors` to JSM's ErrorResponse.
"""

import base64
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jsm_server.py")
AUTH = "Basic " + base64.b64encode(b"demo@example.com:demo-token").decode()
JSM = "/rest/servicedeskapi"
CONTRACTS = os.environ.get("JSM_CONTRACTS", "/work/shared/contracts")
GOOD_FIELDS = {"summary": "Printer on fire", "customfield_10011": {"id": "10202"},
               "customfield_10010": {"value": "Hardware"}, "labels": ["wf-row-1"],
               "customfield_10022": "2026-11-22T10:00:00.000+0000", "duedate": "2026-12-01",
               "customfield_10040": [{"id": "10300"}], "customfield_10020": 12}


def multipart(parts, boundary="xYzBoUnDaRy"):
    """Encode [(field name, filename, bytes)] as multipart/form-data."""
    body = b""
    for name, filename, data in parts:
        body += (b"--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                 b"Content-Type: text/plain\r\n\r\n" % (boundary.encode(), name.encode(), filename.encode()))
        body += data + b"\r\n"
    body += b"--%s--\r\n" % boundary.encode()
    return body, "multipart/form-data; boundary=" + boundary


def load_contracts():
    """[(compiled path template, operations, root document)] from both OpenAPI files."""
    routes = []
    for name in ("jsm-service-management.openapi.json", "jira-platform.openapi.json"):
        path = os.path.join(CONTRACTS, name)
        if not os.path.exists(path):
            continue
        with open(path) as handle:
            doc = json.load(handle)
        error = doc["components"]["schemas"].get("ErrorResponse")
        if error and "errorMessage" in error["properties"]:  # the project's overlay
            error["properties"]["errors"] = {"type": "object", "additionalProperties": {"type": "string"}}
        for template, operations in doc["paths"].items():
            pattern = re.compile(re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)))
            routes.append((template.count("{"), pattern, operations, doc))
    routes.sort(key=lambda r: r[0])
    return [r[1:] for r in routes]


JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int,
              "number": (int, float)}


def schema_errors(schema, value, doc, where="$"):
    """Violations of an OpenAPI 3.0 schema (the subset these contracts use)."""
    if "$ref" in schema:
        target = doc
        for part in schema["$ref"][2:].split("/"):
            target = target[part]
        return schema_errors(target, value, doc, where)
    errors = [e for sub in schema.get("allOf", []) for e in schema_errors(sub, value, doc, where)]
    kind = schema.get("type")
    if value is None:
        return errors + ([] if schema.get("nullable") or not kind else ["%s: null" % where])
    if kind and (not isinstance(value, JSON_TYPES[kind]) or (kind in ("integer", "number")
                                                             and isinstance(value, bool))):
        return errors + ["%s: expected %s, got %r" % (where, kind, value)]
    if "enum" in schema and value not in schema["enum"]:
        errors.append("%s: %r not in enum" % (where, value))
    if schema.get("format") == "uri" and isinstance(value, str) and not re.match(r"[a-z]+://", value):
        errors.append("%s: not a URI: %r" % (where, value))
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        errors += ["%s: missing %s" % (where, r) for r in schema.get("required", []) if r not in value]
        for key, item in value.items():
            if key in props:
                errors += schema_errors(props[key], item, doc, "%s.%s" % (where, key))
            elif extra is False:
                errors.append("%s: unexpected property %r" % (where, key))
            elif isinstance(extra, dict):
                errors += schema_errors(extra, item, doc, "%s.%s" % (where, key))
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(schema["items"], item, doc, "%s[%d]" % (where, index))
    return errors


def contract_errors(routes, method, path, status, payload):
    for pattern, operations, doc in routes:
        if pattern.fullmatch(path) and method.lower() in operations:
            response = operations[method.lower()]["responses"].get(str(status)) or {}
            schema = ((response.get("content") or {}).get("application/json") or {}).get("schema")
            return schema_errors(schema, payload, doc) if schema else []
    return []


class JsmServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.routes = load_contracts()
        cls.tmp = tempfile.TemporaryDirectory()
        port_file = os.path.join(cls.tmp.name, "port")
        cls.proc = subprocess.Popen([sys.executable, SERVER, "--port", "0", "--port-file", port_file,
                                     "--quiet"], stdout=subprocess.PIPE, text=True)
        deadline = time.time() + 10
        while not os.path.exists(port_file):
            if time.time() > deadline or cls.proc.poll() is not None:
                raise RuntimeError("jsm_server did not start")
            time.sleep(0.02)
        with open(port_file) as handle:
            cls.port = int(handle.read())
        assert cls.proc.stdout.readline().strip() == "jsm_server listening on http://127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(timeout=5)
        cls.proc.stdout.close()
        cls.tmp.cleanup()

    def setUp(self):
        self.assertEqual(self.call("POST", "/_admin/reset")[0], 200)

    def call(self, method, path, body=None, headers=None, auth=True, conn=None, raw=None,
             content_type="application/json"):
        """(status, response headers, decoded JSON or None)."""
        connection = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        sent = dict(headers or {})
        if auth and path.startswith("/rest/"):
            sent.setdefault("Authorization", AUTH)
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", content_type)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            payload = json.loads(response.read() or "null")
            if path.startswith("/rest/"):
                self.assertEqual(contract_errors(self.routes, method, path.split("?")[0],
                                                 response.status, payload), [])
            return response.status, response, payload
        finally:
            if conn is None:
                connection.close()

    def create(self, **overrides):
        fields = dict(GOOD_FIELDS, **overrides)
        return self.call("POST", JSM + "/request",
                         {"serviceDeskId": "1", "requestTypeId": "10", "requestFieldValues": fields})

    def state(self, deleted=False):
        return self.call("GET", "/_admin/state" + ("?include_deleted=1" if deleted else ""))[2]

    def upload(self, parts, xsrf=True):
        body, ctype = multipart(parts)
        headers = {"Content-Type": ctype}
        if xsrf:
            headers["X-Atlassian-Token"] = "no-check"
        return self.call("POST", JSM + "/servicedesk/1/attachTemporaryFile", raw=body, headers=headers)

    def search(self, jql, **extra):
        return self.call("POST", "/rest/api/3/search/jql", dict({"jql": jql}, **extra))

    @unittest.skipUnless(os.path.isdir(CONTRACTS), "no OpenAPI contracts to check against")
    def test_contracts_loaded(self):
        self.assertGreater(len(self.routes), 100)

    def test_auth_required(self):
        status, _, body = self.call("GET", JSM + "/servicedesk/1", auth=False)
        self.assertEqual((status, list(body)), (401, ["errorMessage"]))
        bad = "Basic " + base64.b64encode(b"demo@example.com:wrong").decode()
        status, _, body = self.call("GET", "/rest/api/3/myself", headers={"Authorization": bad})
        self.assertEqual((status, body["errors"]), (401, {}))
        self.assertEqual(len(body["errorMessages"]), 1)
        status, _, body = self.call("GET", "/rest/api/3/myself")
        self.assertEqual((status, body["emailAddress"], body["accountType"]),
                         (200, "demo@example.com", "atlassian"))

    def test_service_desk_request_type_and_fields(self):
        status, _, desk = self.call("GET", JSM + "/servicedesk/1")
        self.assertEqual((status, desk["projectKey"], desk["projectId"]), (200, "WF", "10000"))
        self.assertEqual(self.call("GET", JSM + "/servicedesk/2")[0], 404)
        status, _, rtype = self.call("GET", JSM + "/servicedesk/1/requesttype/10")
        self.assertEqual((status, rtype["issueTypeId"], rtype["serviceDeskId"]), (200, "10001", "1"))
        status, _, meta = self.call("GET", JSM + "/servicedesk/1/requesttype/10/field")
        fields = {f["fieldId"]: f for f in meta["requestTypeFields"]}
        self.assertTrue(fields["customfield_10011"]["required"])
        self.assertEqual([v["label"] for v in fields["customfield_10010"]["validValues"]],
                         ["Hardware", "Software", "Access"])
        self.call("POST", "/_admin/config", {"service_desk_exists": False})
        self.assertEqual(self.call("GET", JSM + "/servicedesk/1")[0], 404)

    def test_create_ok(self):
        status, _, request = self.create()
        self.assertEqual(status, 201)
        self.assertEqual((request["issueId"], request["issueKey"]), ("10001", "WF-1"))
        self.assertEqual((request["serviceDeskId"], request["requestTypeId"]), ("1", "10"))
        values = {v["fieldId"]: v["value"] for v in request["requestFieldValues"]}
        self.assertEqual(values["customfield_10010"]["id"], "10100")
        self.assertEqual(request["currentStatus"]["statusCategory"], "NEW")
        self.assertEqual(self.create()[2]["issueKey"], "WF-2")
        self.assertEqual(self.call("GET", JSM + "/request/WF-1")[2]["issueId"], "10001")
        [first, _] = self.state()["requests"]
        self.assertEqual((first["labels"], first["fields"]["summary"]), (["wf-row-1"], "Printer on fire"))

    def test_create_validation(self):
        status, _, body = self.create(customfield_10010={"id": "999"})
        self.assertEqual(status, 400)
        self.assertEqual(body["errors"], {"customfield_10010": "Specify a valid value for Category."})
        self.assertTrue(body["errorMessage"])
        status, _, body = self.call("POST", JSM + "/request", {
            "serviceDeskId": 1, "requestTypeId": "10", "requestFieldValues": GOOD_FIELDS})
        self.assertEqual((status, list(body["errors"])), (400, ["serviceDeskId"]))
        fields = dict(GOOD_FIELDS)
        del fields["customfield_10011"]
        status, _, body = self.call("POST", JSM + "/request", {
            "serviceDeskId": "1", "requestTypeId": "10", "requestFieldValues": fields})
        self.assertEqual(body["errors"], {"customfield_10011": "You must specify a value for Impact."})
        for bad in ({"summary": "a\nb"}, {"summary": "x" * 256}, {"labels": ["has space"]},
                    {"customfield_10099": "x"}, {"duedate": "01/12/2026"}, {"customfield_10020": "12"},
                    {"customfield_10022": "2026-11-22 10:00"}):
            status, _, body = self.create(**bad)
            self.assertEqual((status, list(body["errors"])), (400, list(bad)), bad)
        self.assertEqual(self.create(customfield_10022="2026-11-22T10:00:00Z")[0], 201)
        self.assertEqual(self.call("POST", JSM + "/request", {"bogus": 1})[0], 400)
        self.assertEqual(len(self.state()["requests"]), 1)

    def test_create_adf_rich_text(self):
        """With isAdfRequest a rich-text field takes only a valid ADF document
        (stored as sent); a string there, or a broken document, is a 400."""
        def create_adf(**fields):
            values = dict(GOOD_FIELDS, **fields)
            return self.call("POST", JSM + "/request", {"serviceDeskId": "1", "requestTypeId": "10",
                                                         "isAdfRequest": True, "requestFieldValues": values})
        doc = {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "[~accountid:5b10]"}]},
            {"type": "paragraph", "content": []}, {"type": "rule"},
            {"type": "heading", "attrs": {"level": 2}, "content": [
                {"type": "text", "text": "key", "marks": [{"type": "strong"}]}, {"type": "hardBreak"}]}]}
        status, _, request = create_adf(description=doc)
        self.assertEqual(status, 201, request)
        stored = self.state()["requests"][-1]["fields"]["description"]
        self.assertEqual(stored, doc)
        bad_docs = [
            "a string",
            {"type": "doc", "version": 2, "content": []},
            {"type": "doc", "version": 1},
            {"type": "doc", "version": 1, "content": [{"type": "text", "text": "inline at top"}]},
            {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": ""}]}]},
            {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "blink"}]}]},
            {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "x", "marks": [{"type": "link"}]}]}]},
            {"type": "doc", "version": 1, "content": [{"type": "heading", "attrs": {"level": 9}, "content": []}]},
            {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "x" * 32768}]}]},
        ]
        for bad in bad_docs:
            status, _, body = create_adf(description=bad)
            self.assertEqual((status, list(body.get("errors", {}))), (400, ["description"]), bad)
        # A plain text field still takes a string only, even with isAdfRequest.
        status, _, body = create_adf(customfield_10030=doc)
        self.assertEqual((status, list(body["errors"])), (400, ["customfield_10030"]))
        # Without isAdfRequest the description is wiki-markup text, as before.
        self.assertEqual(self.create(description="plain")[0], 201)

    def test_attachments(self):
        self.create()
        status, _, body = self.upload([("file", "a.txt", b"x")], xsrf=False)
        self.assertEqual((status, body["errorMessage"]), (403, "XSRF check failed"))
        self.assertEqual(self.upload([("upload", "a.txt", b"x")])[0], 400)
        status, _, body = self.upload([("file", "a.txt", b"alpha"), ("file", "b.csv", b"1,2\r\n3,4")])
        self.assertEqual(status, 201)
        temp = body["temporaryAttachments"]
        self.assertEqual([t["fileName"] for t in temp], ["a.txt", "b.csv"])
        self.assertTrue(all(t["temporaryAttachmentId"].startswith("temp") for t in temp))
        ids = [t["temporaryAttachmentId"] for t in temp]
        attach = {"temporaryAttachmentIds": ids, "public": False, "additionalComment": {"body": "files"}}
        self.assertEqual(self.call("POST", JSM + "/request/WF-9/attachment", attach)[0], 404)
        status, _, body = self.call("POST", JSM + "/request/WF-1/attachment", attach)
        self.assertEqual(status, 201)
        self.assertEqual([a["filename"] for a in body["attachments"]["values"]], ["a.txt", "b.csv"])
        self.assertFalse(body["comment"]["public"])
        self.assertEqual(self.call("POST", JSM + "/request/WF-1/attachment", attach)[0], 400)
        status, _, page = self.call("GET", JSM + "/request/10001/attachment?start=0&limit=1")
        self.assertEqual((status, page["size"], page["isLastPage"]), (200, 1, False))
        page = self.call("GET", JSM + "/request/10001/attachment?start=1&limit=1")[2]
        self.assertEqual((page["values"][0]["size"], page["isLastPage"]), (8, True))
        [request] = self.state()["requests"]
        self.assertEqual([(a["content"], a["public"]) for a in request["attachments"]],
                         [("alpha", False), ("1,2\r\n3,4", False)])
        self.assertEqual(self.state()["temporary_files"], 0)

    def test_search(self):
        self.create()
        self.create(labels=["wf-row-2"], summary="Second")
        self.call("POST", "/_admin/request", {"summary": "orphan", "labels": ["wf-row-3"]})
        status, _, body = self.search('project = WF AND labels = "wf-row-2"', fields=["summary", "labels"])
        self.assertEqual(status, 200)
        self.assertEqual([(i["key"], i["fields"]["summary"]) for i in body["issues"]], [("WF-2", "Second")])
        self.assertTrue(body["isLast"])
        body = self.search("labels in (wf-row-1, 'wf-row-3') ORDER BY key ASC", maxResults=1)[2]
        self.assertEqual(([i["key"] for i in body["issues"]], body["isLast"]), (["WF-1"], False))
        body = self.search("labels in (wf-row-1, 'wf-row-3') ORDER BY key ASC",
                           nextPageToken=body["nextPageToken"])[2]
        self.assertEqual(([i["key"] for i in body["issues"]], body["isLast"]), (["WF-3"], True))
        query = "jql=summary%20~%20%22print%22&fields=labels"
        status, _, body = self.call("GET", "/rest/api/3/search/jql?" + query)
        self.assertEqual([i["fields"] for i in body["issues"]], [{"labels": ["wf-row-1"]}])
        status, _, body = self.search("labels = = x")
        self.assertEqual((status, body["errors"]), (400, {}))
        self.assertTrue(body["errorMessages"][0].startswith("Error in the JQL Query:"))
        self.call("POST", "/_admin/config", {"search_lag_ms": 60000})
        self.create(labels=["wf-row-4"])
        self.assertEqual(self.search("labels = wf-row-4")[2]["issues"], [])

    def test_search_by_created_and_attachment_field(self):
        self.create(labels=["wf-old"])
        self.create(labels=["wf-new"])
        # Both were created just now: inside -5m, outside a future bound.
        body = self.search("labels in (wf-old, wf-new) AND created >= -5m ORDER BY key ASC")[2]
        self.assertEqual([i["key"] for i in body["issues"]], ["WF-1", "WF-2"])
        self.assertEqual(self.search("project = WF AND created > 1d")[2]["issues"], [])
        self.assertEqual(len(self.search("created <= 1h")[2]["issues"]), 2)
        self.assertEqual(len(self.search("created >= '2020/01/01 10:00'")[2]["issues"]), 2)
        self.assertEqual(self.search("created < 2020-01-01")[2]["issues"], [])
        status, _, body = self.search("created >= yesterday-ish")
        self.assertEqual(status, 400)
        self.assertIn("Date value 'yesterday-ish'", body["errorMessages"][0])
        self.assertEqual(self.search("created ~ -5m")[0], 400)
        # The attachment field lists the files of an issue, as Jira's does.
        temp = self.upload([("file", "submission-1.json", b"{}")])[2]["temporaryAttachments"]
        self.call("POST", JSM + "/request/WF-2/attachment",
                  {"temporaryAttachmentIds": [temp[0]["temporaryAttachmentId"]], "public": False})
        body = self.search("labels in (wf-old, wf-new) ORDER BY key ASC", fields=["attachment"])[2]
        files = [[(a["filename"], a["size"], a["mimeType"]) for a in i["fields"]["attachment"]] for i in body["issues"]]
        self.assertEqual(files, [[], [("submission-1.json", 2, "text/plain")]])

    def test_issue_edit_and_delete(self):
        self.create()
        adf = {"type": "doc", "version": 1, "content": []}
        status, _, body = self.call("PUT", "/rest/api/3/issue/WF-1", {"fields": {"nope": 1}})
        self.assertEqual((status, list(body["errors"])), (400, ["nope"]))
        self.assertEqual(self.call("PUT", "/rest/api/3/issue/WF-1", {"fields": {"description": adf}})[0], 204)
        status, _, issue = self.call("GET", "/rest/api/3/issue/WF-1?fields=description,customfield_10010")
        self.assertEqual(issue["fields"]["description"], adf)
        self.assertEqual(issue["fields"]["customfield_10010"]["value"], "Hardware")
        self.assertEqual(self.call("DELETE", "/rest/api/3/issue/WF-1")[0], 204)
        self.assertEqual(self.call("GET", "/rest/api/3/issue/WF-1")[0], 404)
        self.assertEqual(self.call("GET", JSM + "/request/WF-1")[0], 404)
        self.assertEqual(self.call("DELETE", "/rest/api/3/issue/WF-1")[0], 404)
        self.assertEqual(self.search("labels = wf-row-1")[2]["issues"], [])
        self.assertEqual(self.state()["requests"], [])
        self.assertTrue(self.state(deleted=True)["requests"][0]["deleted"])

    def test_fault_429_and_forbid(self):
        self.call("POST", "/_admin/faults", {"rules": [{"kind": "create", "action": "429", "times": 1,
                                                        "retry_after": 2}]})
        status, response, body = self.create()
        self.assertEqual((status, response.getheader("Retry-After")), (429, "2"))
        self.assertIn("errorMessage", body)
        self.assertEqual(self.state()["requests"], [])
        self.assertEqual(self.create()[0], 201)
        self.call("POST", "/_admin/config", {"forbid": True})
        self.assertEqual(self.call("GET", "/rest/api/3/myself")[0], 403)

    def test_fault_lost_and_reset(self):
        self.call("POST", "/_admin/faults", {"rules": [{"kind": "create", "action": "lost", "times": 1}]})
        with self.assertRaises(ConnectionError):
            self.create()
        self.assertEqual([r["issueKey"] for r in self.state()["requests"]], ["WF-1"])
        self.call("POST", "/_admin/faults", {"rules": [{"kind": "any", "action": "reset", "times": 1}]})
        with self.assertRaises(ConnectionError):
            self.create()
        self.assertEqual(len(self.state()["requests"]), 1)
        self.assertEqual(self.create()[2]["issueKey"], "WF-2")
        calls = self.call("GET", "/_admin/stats")[2]["calls"]
        self.assertEqual(calls["create"], 3)

    def test_keep_alive_stats(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            for _ in range(3):
                self.assertEqual(self.call("GET", "/rest/api/3/myself", conn=conn)[0], 200)
            self.assertEqual(self.call("GET", JSM + "/servicedesk/1", conn=conn)[0], 200)
        finally:
            conn.close()
        self.call("GET", "/rest/api/3/myself", headers={"Connection": "close"})
        stats = self.call("GET", "/_admin/stats")[2]
        self.assertEqual((stats["connections"], stats["total_calls"]), (2, 5))
        self.assertEqual((stats["calls"]["myself"], stats["calls"]["servicedesk"]), (4, 1))
        self.call("POST", "/_admin/stats/reset")
        self.assertEqual(self.call("GET", "/_admin/stats")[2]["total_calls"], 0)

    def test_token_bucket_per_endpoint_and_method(self):
        self.call("POST", "/_admin/config", {"rate_limit": {"rate": 1, "burst": 3}})
        for remaining in (2, 1, 0):
            status, response, _ = self.call("GET", "/rest/api/3/myself")
            self.assertEqual((status, response.getheader("X-RateLimit-Limit")), (200, "3"))
            self.assertEqual(response.getheader("X-RateLimit-Remaining"), str(remaining))
            self.assertRegex(response.getheader("X-RateLimit-Reset"), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(response.getheader("X-RateLimit-NearLimit"), "true")
        status, response, body = self.call("GET", "/rest/api/3/myself")
        self.assertEqual((status, response.getheader("Retry-After")), (429, "1"))
        self.assertEqual(response.getheader("RateLimit-Reason"), "jira-burst-based")
        self.assertIn("errorMessages", body)
        # Another endpoint has its own bucket; nothing was done by the 429.
        self.assertEqual(self.create()[0], 201)
        stats = self.call("GET", "/_admin/stats")[2]
        self.assertEqual((stats["rate_limited"], stats["calls"]["myself"]), (1, 4))
        time.sleep(1.1)
        self.assertEqual(self.call("GET", "/rest/api/3/myself")[0], 200)
        self.assertEqual(self.call("POST", "/_admin/config", {"rate_limit": {"rate": 0}})[0], 400)

    def test_garbled_answers_come_after_the_write(self):
        expect = {"html_502": (502, "text/html"), "maintenance_page": (503, "text/html"),
                  "empty_201": (201, "application/json"), "truncated_json": (201, "application/json"),
                  "other_shape": (200, "application/json")}
        for n, (action, (status, ctype)) in enumerate(sorted(expect.items()), 1):
            self.call("POST", "/_admin/faults", {"rules": [{"kind": "create", "action": action, "times": 1}]})
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("POST", JSM + "/request", body=json.dumps(
                    {"serviceDeskId": "1", "requestTypeId": "10", "requestFieldValues": GOOD_FIELDS}),
                    headers={"Authorization": AUTH, "Content-Type": "application/json"})
                response = conn.getresponse()
                raw = response.read()
            finally:
                conn.close()
            self.assertEqual((response.status, response.getheader("Content-Type").split(";")[0]), (status, ctype))
            self.assertTrue(response.getheader("X-RateLimit-Remaining"), action)
            if action != "other_shape":
                with self.assertRaises(ValueError, msg=action):
                    if "issueKey" not in json.loads(raw or b"x"):
                        raise ValueError("no issueKey")
            self.assertEqual(len(self.state()["requests"]), n, action)

    def test_jql_or(self):
        self.create(labels=["a-1"])
        self.create(labels=["b-2"])
        self.create(labels=["c-3"])
        found = self.search('labels = "a-1" OR labels = "c-3" ORDER BY key ASC')[2]["issues"]
        self.assertEqual([i["key"] for i in found], ["WF-1", "WF-3"])
        found = self.search('labels in ("a-1", "b-2") AND labels = "b-2" OR labels = c-3 ORDER BY key ASC')[2]
        self.assertEqual([i["key"] for i in found["issues"]], ["WF-2", "WF-3"])

    def test_unknown_route_and_method(self):
        status, _, body = self.call("GET", JSM + "/nothing")
        self.assertEqual((status, list(body)), (404, ["errorMessage"]))
        status, response, body = self.call("PATCH", "/rest/api/3/issue/WF-1", {})
        self.assertEqual((status, body["errors"]), (405, {}))
        self.assertIn("GET", response.getheader("Allow"))


    # ---- customers (issue 12) ----------------------------------------------

    def desk_customers(self, query, experimental=True):
        headers = {"X-ExperimentalApi": "opt-in"} if experimental else {}
        return self.call("GET", JSM + "/servicedesk/1/customer?query=" + query, headers=headers)

    def test_customer_lifecycle(self):
        self.assertEqual(self.desk_customers("ann", experimental=False)[0], 412)
        status, _, page = self.desk_customers("ann")
        self.assertEqual((status, page["values"], page["isLastPage"]), (200, [], True))
        status, _, made = self.call("POST", JSM + "/customer", {"email": "Ann@Example.com", "displayName": "Ann"})
        self.assertEqual((status, made["emailAddress"], made["displayName"]), (201, "Ann@Example.com", "Ann"))
        self.assertIsInstance(made["accountId"], str)
        # an account exists for the address, whatever its case
        status, _, body = self.call("POST", JSM + "/customer", {"email": "ann@example.COM", "displayName": "A"})
        self.assertEqual((status, body["errorMessage"]), (400, "An account already exists for this email"))
        self.assertEqual(self.call("POST", JSM + "/customer?strictConflictStatusCode=true",
                                   {"email": "ann@example.com", "displayName": "A"})[0], 409)
        self.assertEqual(self.call("POST", JSM + "/customer", {"email": "not an address"})[0], 400)
        # created is not yet a customer of the desk
        self.assertEqual(self.desk_customers("ann%40example.com")[2]["values"], [])
        status, _, users = self.call("GET", "/rest/api/3/user/search?query=ANN%40example.com")
        self.assertEqual((status, [u["accountId"] for u in users]), (200, [made["accountId"]]))
        self.assertEqual(self.call("POST", JSM + "/servicedesk/1/customer", {"accountIds": ["qm:nobody"]})[0], 400)
        self.assertEqual(self.call("POST", JSM + "/servicedesk/1/customer", {"accountIds": [made["accountId"]]})[0], 204)
        status, _, page = self.desk_customers("ANN%40EXAMPLE.COM")
        self.assertEqual([v["accountId"] for v in page["values"]], [made["accountId"]])

    def test_raise_on_behalf_of_needs_a_customer_of_the_desk(self):
        self.call("POST", "/_admin/customers", {"accounts": [{"email": "off@example.com", "on_desk": False},
                                                             {"email": "on@example.com"}]})
        accounts = {a["email"]: a["accountId"] for a in self.call("GET", "/_admin/customers")[2]["accounts"]}
        body = {"serviceDeskId": "1", "requestTypeId": "10", "requestFieldValues": GOOD_FIELDS}
        status, _, err = self.call("POST", JSM + "/request", dict(body, raiseOnBehalfOf=accounts["off@example.com"]))
        self.assertEqual((status, list(err["errors"])), (400, ["raiseOnBehalfOf"]))
        status, _, made = self.call("POST", JSM + "/request", dict(body, raiseOnBehalfOf=accounts["on@example.com"]))
        self.assertEqual((status, made["reporter"]["emailAddress"]), (201, "on@example.com"))
        self.assertEqual(self.create()[0], 201)
        reporters = [(r["reporter"], r["reporterAccountId"]) for r in self.state()["requests"]]
        self.assertEqual(reporters[0], ("on@example.com", accounts["on@example.com"]))
        self.assertEqual(reporters[1][0], "demo@example.com")

    def test_customer_permissions_refused(self):
        self.call("POST", "/_admin/customers", {"policy": {"may_create": False, "may_view": False}})
        self.assertEqual(self.call("POST", JSM + "/customer", {"email": "a@example.com"})[0], 403)
        self.assertEqual(self.desk_customers("a")[0], 403)
        status, _, perms = self.call("GET", "/rest/api/3/mypermissions?permissions=ADMINISTER,ADMINISTER_PROJECTS")
        self.assertEqual((status, perms["permissions"]["ADMINISTER"]["havePermission"],
                          perms["permissions"]["ADMINISTER_PROJECTS"]["havePermission"]), (200, False, True))
        self.assertEqual(self.call("GET", "/rest/api/3/mypermissions")[0], 400)

if __name__ == "__main__":
    unittest.main()
