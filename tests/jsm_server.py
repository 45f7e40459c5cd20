#!/usr/bin/env python3
"""Stateful stand-in for Jira Service Management (JSM) Cloud, for wf2jsm's tests.

Its one job: answer the part of the JSM (/rest/servicedeskapi) and Jira platform
(/rest/api/3) REST APIs that wf2jsm uses, shaped after Atlassian's OpenAPI
descriptions in /work/shared/contracts, keeping state in memory, and letting
tests inject faults and inspect what the client did. Standard library only.

Usage:
  python3 tests/jsm_server.py [--host 127.0.0.1] [--port 0] [--port-file PATH]
      [--email demo@example.com] [--token demo-token] [--bearer TOKEN] [--quiet]

Every /rest/ call needs "Authorization: Basic base64(email:token)" (or
"Bearer TOKEN" when --bearer is given).

Test admin API (no auth, JSON bodies, never counted in the stats):
  POST   /_admin/reset        back to the seed: no requests, temp files, faults,
                              stats; default config
  GET    /_admin/state        {"requests": [...], "temporary_files": N};
                              ?include_deleted=1 lists deleted requests too
  GET    /_admin/stats        {"calls": {kind: n}, "total_calls": n, "connections": n,
                              "rate_limited": n, "first_call_ms": t, "last_call_ms": t,
                              "in_flight_peak": n, "spans_ms": {kind: [first, last]}}
  POST   /_admin/stats/reset  zero the stats
  POST   /_admin/config       merge {"search_lag_ms": int, "forbid": bool,
                              "fields": [RequestTypeFieldDTO...], "service_desk_exists":
                              bool, "latency_ms": int, "jitter_ms": int,
                              "rate_limit": {"rate": per second, "burst": tokens}}
  POST   /_admin/faults       {"seed": int, "rules": [{"kind", "action", "times",
                              "probability", "retry_after", "latency_ms"}]}
                              replaces the fault rules
  DELETE /_admin/faults       remove all fault rules
  POST   /_admin/request      create a request without validation; body is the
                              requestFieldValues (optionally wrapped as
                              {"requestFieldValues": {...}, "labels": [...]})
                              -> 201 {"issueId", "issueKey"}
  POST   /_admin/customers    {"accounts": [{"email", "displayName", "on_desk": bool,
                              "hide_email": bool}], "policy": {"may_view", "may_create",
                              "may_add", "may_search": bool}}: adds accounts (customers
                              of the service desk when on_desk) and merges the policy
                              (false: that call answers 403, as for an account without
                              the permission)
  GET    /_admin/customers    {"accounts": [...], "desk": [accountId...], "policy": {...}}

Customers: the service desk is restricted: raiseOnBehalfOf must name a customer
of the desk (else 400 naming raiseOnBehalfOf), and the request's reporter is that
customer. The desk's customer list is experimental (412 without
"X-ExperimentalApi: opt-in"). Creating a customer for an address that has an
account answers 400 "An account already exists for this email", or 409 with
strictConflictStatusCode=true.

Rich text: a create with "isAdfRequest": true must send every rich-text field
(system description/environment, custom textarea) as an ADF document; its shape
is validated (node and mark types, non-empty text nodes, heading levels, at most
32,767 characters of text) and it is stored as sent. /rest/api/3 edits take
ADF or text there.

Call kinds (stats and fault rules): myself servicedesk requesttype fields create
attach_temp attach list_attachments get_request search get_issue edit_issue
delete_issue desk_customers create_customer add_customer user_search mypermissions
("any" matches all in rules).
Fault actions: "500" "503" "429" "401" "403" answer that status without doing the
operation (429 with Retry-After); "reset" drops the connection (TCP RST) without
doing anything; "lost" does the operation, commits it, then closes the connection
without answering; "latency" sleeps latency_ms, then serves normally.
"connections" counts the TCP connections that carried at least one /rest/ call.

Garbled answers (the operation is done and committed first, then the answer is
spoiled, as by a proxy or a crash mid-write): "html_502" a proxy's HTML 502 page;
"truncated_json" the real answer cut in half; "empty_201" 201 with no body;
"maintenance_page" an HTML 503 maintenance page; "other_shape" 200 with JSON of
another shape.

Rate limits, modelled on Jira Cloud's burst limits: a token bucket per endpoint
and method ("rate" tokens a second, at most "burst"; default 1000/1000 so tests
never wait). Every /rest/ answer carries X-RateLimit-Limit (the burst),
X-RateLimit-Remaining, X-RateLimit-Reset (ISO 8601 UTC time the bucket is full
again) and, below 20 % of the budget, X-RateLimit-NearLimit: true. An empty
bucket answers 429 before doing anything, with Retry-After (whole seconds,
rounded up) and RateLimit-Reason: jira-burst-based. latency_ms plus a uniform
random 0..jitter_ms delays every answer.
"""

import argparse
import base64
import datetime
import email.message
import email.parser
import hmac
import json
import mimetypes
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JSM = "/rest/servicedeskapi"
PLATFORM = "/rest/api/3"

SERVICE_DESK = {"id": "1", "projectId": "10000", "projectKey": "WF", "projectName": "Web Forms"}
REQUEST_TYPE = {"id": "10", "name": "Web form submission", "issueTypeId": "10001",
                "description": "A row submitted through the web form.",
                "helpText": "Created by wf2jsm."}
STATUS = {"status": "Waiting for support", "statusCategory": "NEW"}
KINDS = ("myself", "servicedesk", "requesttype", "fields", "create", "attach_temp", "attach",
         "list_attachments", "get_request", "search", "get_issue", "edit_issue", "delete_issue",
         "desk_customers", "create_customer", "add_customer", "user_search", "mypermissions")
STATUS_FAULTS = {"500": "Internal server error.", "503": "Service unavailable.",
                 "429": "Rate limit exceeded.",
                 "401": "Client must be authenticated to access this resource.",
                 "403": "You do not have permission to access this resource."}
GARBLED_FAULTS = {"html_502", "truncated_json", "empty_201", "maintenance_page", "other_shape"}
FAULT_ACTIONS = set(STATUS_FAULTS) | {"lost", "reset", "latency"} | GARBLED_FAULTS
DEFAULT_RATE_LIMIT = {"rate": 1000, "burst": 1000}
CUSTOM_TYPE = "com.atlassian.jira.plugin.system.customfieldtypes:"
SUMMARY_MAX, TEXT_MAX, LABEL_MAX = 255, 32767, 255


# --- seed data --------------------------------------------------------------

def make_field(field_id, name, ftype, required=False, items=None, options=(), custom=None):
    """One RequestTypeFieldDTO; custom fields are named customfield_<customId>."""
    schema = {"type": ftype}
    if field_id.startswith("customfield_"):
        schema.update(custom=CUSTOM_TYPE + custom, customId=int(field_id.split("_")[1]))
    else:
        schema["system"] = field_id
    if items:
        schema["items"] = items
    return {"fieldId": field_id, "name": name, "description": "", "required": required,
            "visible": True,
            "validValues": [{"value": v, "label": l, "children": []} for v, l in options],
            "defaultValues": [], "presetValues": [], "jiraSchema": schema}


def seed_fields():
    return [
        make_field("summary", "Summary", "string", required=True),
        make_field("description", "Description", "string"),
        make_field("customfield_10010", "Category", "option", custom="select",
                   options=[("10100", "Hardware"), ("10101", "Software"), ("10102", "Access")]),
        make_field("customfield_10011", "Impact", "option", required=True, custom="select",
                   options=[("10200", "Low"), ("10201", "Medium"), ("10202", "High")]),
        make_field("customfield_10020", "Employee count", "number", custom="float"),
        make_field("duedate", "Due date", "date"),
        make_field("customfield_10022", "Submitted at", "datetime", custom="datetime"),
        make_field("customfield_10030", "Contact email", "string", custom="textfield"),
        make_field("customfield_10040", "Products", "array", items="option", custom="multiselect",
                   options=[("10300", "Laptop"), ("10301", "Phone"), ("10302", "Monitor")]),
        make_field("labels", "Labels", "array", items="string"),
    ]


# --- errors and formatting --------------------------------------------------

class ApiError(Exception):
    """An error answer; rendered as JSM ErrorResponse or platform ErrorCollection."""

    def __init__(self, status, message=None, errors=None, headers=()):
        super().__init__(message)
        self.status, self.message, self.errors, self.headers = status, message, errors, headers


class AdminError(ValueError):
    """A bad /_admin request (400 {"error": ...})."""


def error_body(api, err):
    if api == "jsm":
        body = {"errorMessage": err.message or "; ".join((err.errors or {}).values())}
        if err.errors:
            body["errors"] = err.errors
        return body
    return {"errorMessages": [err.message] if err.message else [], "errors": err.errors or {}}


def now_ms():
    return int(time.time() * 1000)


def jira_time(ms):
    """Jira's REST time format, e.g. 2026-11-22T10:00:00.000+0000."""
    dt = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d+0000" % (ms % 1000)


def date_dto(ms):
    dt = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return {"iso8601": dt.strftime("%Y-%m-%dT%H:%M:%S+0000"), "jira": jira_time(ms),
            "friendly": dt.strftime("%d/%b/%y %I:%M %p"), "epochMillis": ms}


def account_id(mail):
    return "712020:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "mailto:" + mail))


def display_name(mail):
    return mail.split("@")[0].replace(".", " ").title()


# --- state ------------------------------------------------------------------

class Faults:
    """The fault rules; pick() decides what happens to one call."""

    def __init__(self, seed=0, rules=()):
        self.rng = random.Random(seed)
        self.rules = list(rules)

    def pick(self, kind):
        """Return (extra latency in ms, the terminal rule that fires or None)."""
        delay = 0
        for rule in self.rules:
            if rule["kind"] not in (kind, "any") or rule["times"] == 0:
                continue
            if rule["probability"] < 1 and self.rng.random() >= rule["probability"]:
                continue
            if rule["times"] is not None:
                rule["times"] -= 1
            if rule["action"] != "latency":
                return delay, rule
            delay += rule["latency_ms"]
        return delay, None


class State:
    """Everything the server remembers; guard all access with `lock`."""

    def __init__(self):
        self.lock = threading.RLock()
        self.reset()

    def reset(self):
        self.config = {"search_lag_ms": 0, "forbid": False, "service_desk_exists": True,
                       "latency_ms": 0, "jitter_ms": 0, "rate_limit": dict(DEFAULT_RATE_LIMIT),
                       "fields": seed_fields()}
        self.buckets = {}
        self.issues = []
        self.temp_files = {}
        self.next_attachment = self.next_comment = 10000
        self.rng = random.Random()
        self.faults = Faults()
        reset_customers(self)
        self.reset_stats()

    def reset_stats(self):
        self.calls = dict.fromkeys(KINDS, 0)
        self.total_calls = 0
        self.connections = 0
        self.rate_limited = 0
        self.first_call_ms = self.last_call_ms = None
        self.spans = {}
        self.in_flight = self.in_flight_peak = 0

    def take_token(self, key):
        """Token bucket of one endpoint and method: (allowed, rate-limit headers)."""
        rate, burst = self.config["rate_limit"]["rate"], self.config["rate_limit"]["burst"]
        now = time.monotonic()
        tokens, stamp = self.buckets.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + (now - stamp) * rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self.buckets[key] = (tokens, now)
        full_at = time.time() + (burst - tokens) / rate
        reset = datetime.datetime.fromtimestamp(full_at, datetime.timezone.utc)
        headers = [("X-RateLimit-Limit", str(burst)), ("X-RateLimit-Remaining", str(int(tokens))),
                   ("X-RateLimit-Reset", reset.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (reset.microsecond // 1000))]
        if tokens < 0.2 * burst:
            headers.append(("X-RateLimit-NearLimit", "true"))
        if not allowed:
            headers += [("Retry-After", str(max(1, int(-(-(1 - tokens) // rate))))),
                        ("RateLimit-Reason", "jira-burst-based")]
        return allowed, headers

    def fields(self):
        return {f["fieldId"]: f for f in self.config["fields"]}

    def desk_exists(self, desk_id):
        return self.config["service_desk_exists"] and desk_id == SERVICE_DESK["id"]

    def add_issue(self, desk_id, type_id, values, reporter):
        num = len(self.issues) + 1
        created = now_ms()
        issue = {"num": num, "id": str(10000 + num), "key": "%s-%d" % (SERVICE_DESK["projectKey"], num),
                 "serviceDeskId": desk_id, "requestTypeId": type_id, "fields": dict(values),
                 "reporter": reporter, "created": created, "updated": created,
                 "deleted": False, "attachments": [], "comments": []}
        self.issues.append(issue)
        return issue

    def find_issue(self, ref):
        for issue in self.issues:
            if not issue["deleted"] and (issue["id"] == ref or issue["key"] == ref.upper()):
                return issue
        return None

    def new_temp_id(self):
        while True:
            temp_id = "temp%d" % self.rng.randrange(10 ** 17, 10 ** 19)
            if temp_id not in self.temp_files:
                return temp_id

    def take_id(self, counter):
        value = getattr(self, counter)
        setattr(self, counter, value + 1)
        return str(value)


# --- customers (state) --------------------------------------------------------

CUSTOMER_POLICY = {"may_view": True, "may_create": True, "may_add": True, "may_search": True}


def reset_customers(state):
    """No customer accounts, none on the desk, every permission granted."""
    state.accounts = {}            # lower-cased email -> account
    state.desk_customers = set()   # accountIds of the service desk's customers
    state.customer_policy = dict(CUSTOMER_POLICY)


def customer_account_id(mail):
    return "qm:" + str(uuid.uuid5(uuid.NAMESPACE_URL, "customer:" + mail.lower()))


def add_account(state, mail, name=None, hide_email=False):
    account = {"accountId": customer_account_id(mail), "email": mail, "displayName": name or mail,
               "hide_email": hide_email}
    state.accounts[mail.lower()] = account
    return account


def account_by_id(state, aid):
    return next((a for a in state.accounts.values() if a["accountId"] == aid), None)


STATE = State()


# --- field values -----------------------------------------------------------

DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
DATETIME_RE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})")


def is_empty(value):
    return value is None or value in ("", [], {}) or (isinstance(value, str) and not value.strip())


def valid_date(text):
    if not isinstance(text, str) or not DATE_RE.fullmatch(text):
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def valid_datetime(text):
    match = isinstance(text, str) and DATETIME_RE.fullmatch(text)
    if not match:
        return False
    base, frac, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone[:3] + ":" + zone[-2:]
    try:
        datetime.datetime.fromisoformat(base + (frac or ".0").ljust(7, "0") + zone)
    except ValueError:
        return False
    return True


def find_option(field, value):
    """The validValues entry that {"id": ...} or {"value": label} names, else None."""
    if not isinstance(value, dict):
        return None
    for option in field.get("validValues", []):
        if "id" in value and value["id"] == option["value"]:
            return option
        if "id" not in value and value.get("value") == option["label"]:
            return option
    return None


def check_label(label):
    if not isinstance(label, str) or not label:
        return "Labels must be non-empty strings."
    if re.search(r"\s", label):
        return "The label '%s' contains spaces which is invalid." % label
    if len(label) > LABEL_MAX:
        return "The label '%s' exceeds the %d character limit." % (label[:20], LABEL_MAX)
    return None


# --- Atlassian Document Format ------------------------------------------------
# The shape of ADF (version 1) as Jira validates it on a rich-text field: a doc
# of block nodes, inline nodes inside paragraphs and headings, marks on text.
ADF_BLOCKS = {"paragraph", "heading", "rule", "bulletList", "orderedList", "listItem", "blockquote",
              "codeBlock", "panel", "table", "tableRow", "tableHeader", "tableCell", "mediaSingle",
              "mediaGroup", "media", "expand", "nestedExpand", "taskList", "taskItem", "decisionList",
              "decisionItem", "blockCard", "embedCard", "extension", "bodiedExtension"}
ADF_INLINES = {"text", "hardBreak", "mention", "emoji", "inlineCard", "date", "status", "placeholder",
               "mediaInline", "inlineExtension"}
ADF_MARKS = {"strong", "em", "underline", "strike", "code", "subsup", "textColor", "link",
             "backgroundColor", "alignment", "indentation", "border", "breakout", "annotation"}


def is_rich_text(field):
    """Whether Jira renders the field as rich text (ADF on /rest/api/3)."""
    schema = field.get("jiraSchema", {})
    return schema.get("type") == "string" and (
        schema.get("system") in ("description", "environment") or
        schema.get("custom") == CUSTOM_TYPE + "textarea")


def adf_node_error(node, where, depth=0):
    if depth > 50:
        return "%s is nested too deeply." % where
    if not isinstance(node, dict) or not isinstance(node.get("type"), str):
        return "%s must be an object with a type." % where
    kind = node["type"]
    if kind not in ADF_BLOCKS | ADF_INLINES:
        return "%s has an unknown node type '%s'." % (where, kind)
    if kind == "text":
        if not isinstance(node.get("text"), str) or not node["text"]:
            return "%s: a text node needs non-empty text." % where
        marks = node.get("marks", [])
        if not isinstance(marks, list):
            return "%s: marks must be a list." % where
        for mark in marks:
            if not isinstance(mark, dict) or mark.get("type") not in ADF_MARKS:
                return "%s has an unknown mark %r." % (where, mark)
            if mark["type"] == "link" and not isinstance((mark.get("attrs") or {}).get("href"), str):
                return "%s: a link mark needs attrs.href." % where
        return None
    if kind == "heading":
        level = (node.get("attrs") or {}).get("level")
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 6:
            return "%s: a heading needs attrs.level from 1 to 6." % where
    content = node.get("content", [])
    if not isinstance(content, list):
        return "%s: content must be a list." % where
    for i, child in enumerate(content):
        if kind in ("paragraph", "heading") and isinstance(child, dict) and child.get("type") in ADF_BLOCKS:
            return "%s: a %s holds inline nodes only." % (where, kind)
        error = adf_node_error(child, "%s.content[%d]" % (where, i), depth + 1)
        if error:
            return error
    return None


def adf_plain(node):
    """The text of an ADF document as a reader sees it: blocks on lines."""
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return node.get("text") or ""
    if node.get("type") == "hardBreak":
        return "\n"
    if node.get("type") == "rule":
        return "----"
    parts = [adf_plain(c) for c in node.get("content") or []]
    joiner = "\n" if node.get("type") in ("doc", "bulletList", "orderedList", "listItem", "table",
                                          "tableRow", "blockquote") else ""
    return joiner.join(parts)


def adf_error(value):
    """Why value is not a valid ADF document for a rich-text field, or None."""
    if not isinstance(value, dict) or value.get("type") != "doc":
        return "Operation value must be an Atlassian Document."
    if value.get("version") != 1:
        return "The Atlassian Document must have version 1."
    if not isinstance(value.get("content"), list):
        return "The Atlassian Document must have a content list."
    for i, block in enumerate(value["content"]):
        if isinstance(block, dict) and block.get("type") in ADF_INLINES:
            return "content[%d]: a document holds block nodes only." % i
        error = adf_node_error(block, "content[%d]" % i)
        if error:
            return "The Atlassian Document is invalid: " + error
    if len(adf_plain(value)) > TEXT_MAX:
        return "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
    return None


def check_string(field, value, adf_ok):
    fid = field["fieldId"]
    if is_rich_text(field) and adf_ok:
        # With isAdfRequest (and on /rest/api/3) a rich-text field takes a
        # document; a string there is refused on create, as Jira does.
        if isinstance(value, dict):
            return adf_error(value)
        if adf_ok == "create":
            return "Operation value must be an Atlassian Document."
    if not isinstance(value, str):
        return "Operation value must be a string."
    if fid == "summary" and ("\n" in value or "\r" in value):
        return "The summary is invalid because it contains newline characters."
    if fid == "summary" and len(value) > SUMMARY_MAX:
        return "Summary must be less than 255 characters."
    if len(value) > TEXT_MAX:
        return "The entered text is too long. It exceeds the allowed limit of 32,767 characters."
    return None


def check_value(field, value, adf_ok):
    """Error message for a non-empty value of a request type field, or None."""
    schema = field.get("jiraSchema", {})
    ftype, name = schema.get("type"), field["name"]
    if ftype == "string":
        return check_string(field, value, adf_ok)
    if ftype == "option":
        return None if find_option(field, value) else "Specify a valid value for %s." % name
    if ftype == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "Specify a valid number for %s." % name
    if ftype == "date":
        return None if valid_date(value) else "Error parsing date string: %s" % value
    if ftype == "datetime":
        return None if valid_datetime(value) else "Error parsing date/time string: %s" % value
    if ftype == "array":
        if not isinstance(value, list):
            return "Operation value must be a list for %s." % name
        if schema.get("items") == "option" and not all(find_option(field, v) for v in value):
            return "Specify a valid value for %s." % name
        if schema.get("items") == "string" and field["fieldId"] == "labels":
            return next(filter(None, map(check_label, value)), None)
    return None


def validate_values(values, adf_ok, creating):
    """Map of fieldId -> error message for requestFieldValues / issue edit fields."""
    fields = STATE.fields()
    errors = {}
    for fid, value in values.items():
        field = fields.get(fid)
        if field is None:
            errors[fid] = ("Field '%s' cannot be set. It is not on the appropriate screen, "
                           "or unknown." % fid)
        elif is_empty(value):
            if field.get("required"):
                errors[fid] = "You must specify a value for %s." % field["name"]
        else:
            message = check_value(field, value, adf_ok)
            if message:
                errors[fid] = message
    if creating:
        for fid, field in fields.items():
            if field.get("required") and fid not in values:
                errors[fid] = "You must specify a value for %s." % field["name"]
    return errors


def render_value(field, value, base):
    """A stored value as Jira shows it: options become {self, value, id}."""
    def option(item):
        found = find_option(field, item)
        if not found:
            return item
        return {"self": "%s/rest/api/3/customFieldOption/%s" % (base, found["value"]),
                "value": found["label"], "id": found["value"]}
    if field is None or value is None:
        return value
    schema = field.get("jiraSchema", {})
    if schema.get("type") == "option":
        return option(value)
    if schema.get("type") == "array" and schema.get("items") == "option" and isinstance(value, list):
        return [option(item) for item in value]
    return value


def adf_text(node):
    if isinstance(node, dict):
        return (node.get("text") or "") + " ".join(adf_text(c) for c in node.get("content") or [])
    return str(node)


# --- JQL subset -------------------------------------------------------------

JQL_TOKEN = re.compile(r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
                       r"""|(?P<op>!=|!~|>=|<=|[=~<>(),])|(?P<word>[^\s"'=!~<>(),]+))""")
Token = namedtuple("Token", "type text pos")
EQUALITY_OPS = {"=", "!=", "in", "not in", "is", "is not"}
TEXT_OPS = {"~", "!~", "is", "is not"}
ORDER_KEYS = {"created": lambda i: (i["created"], i["num"]), "updated": lambda i: (i["updated"], i["num"]),
              "key": lambda i: i["num"], "issuekey": lambda i: i["num"], "id": lambda i: i["num"]}


def jql_error(message):
    return ApiError(400, "Error in the JQL Query: " + message)


def tokenize(jql):
    tokens, pos = [], 0
    while jql[pos:].strip():
        match = JQL_TOKEN.match(jql, pos)
        if not match:
            at = len(jql) - len(jql[pos:].lstrip())
            raise jql_error("The character '%s' at position %d is not expected (or a quoted "
                            "string has not been completed)." % (jql[at], at + 1))
        kind = match.lastgroup
        text = match.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(Token(kind, text, match.start(kind) + 1))
        pos = match.end()
    return tokens


class JqlParser:
    """group (OR group)* [ORDER BY field [ASC|DESC] (, ...)*]; group = clause (AND clause)*;
    clause = field op value(s). parse() returns the groups' clauses flattened when there
    is no OR; self.groups then holds the OR-ed groups."""

    def __init__(self, jql):
        self.tokens, self.i = tokenize(jql), 0

    def peek(self, *words):
        tok = self.tokens[self.i] if self.i < len(self.tokens) else None
        if tok and words:
            return tok if (tok.type == "word" and tok.text.upper() in words) or \
                (tok.type == "op" and tok.text in words) else None
        return tok

    def expect(self, what, *words):
        tok = self.peek(*words) if words else self.peek()
        if tok is None or (not words and tok.type == "op"):
            self.fail(what)
        self.i += 1
        return tok

    def fail(self, what):
        tok = self.peek()
        got = "'%s' at position %d" % (tok.text, tok.pos) if tok else "the end of the query"
        raise jql_error("Expecting %s but got %s." % (what, got))

    def parse(self):
        clauses, order = [], []
        self.groups = []
        if not self.peek("ORDER"):
            clauses.append(self.clause())
            while self.peek("AND", "OR"):
                if self.peek("OR"):
                    self.groups.append(clauses)
                    clauses = []
                self.i += 1
                clauses.append(self.clause())
        if self.groups:
            self.groups.append(clauses)
            clauses = [c for g in self.groups for c in g]
        if self.peek("ORDER"):
            self.i += 1
            self.expect("'BY'", "BY")
            order.append(self.order_item())
            while self.peek(","):
                self.i += 1
                order.append(self.order_item())
        if self.peek():
            self.fail("'AND', 'OR' or 'ORDER BY'")
        return clauses, order

    def order_item(self):
        name = self.expect("a field name").text
        direction = self.peek("ASC", "DESC")
        self.i += bool(direction)
        return name, bool(direction) and direction.text.upper() == "DESC"

    def clause(self):
        name = self.expect("a field name").text
        if self.peek("NOT"):
            self.i += 1
            self.expect("'IN'", "IN")
            op = "not in"
        elif self.peek("IN"):
            self.i += 1
            op = "in"
        elif self.peek("IS"):
            self.i += 1
            op = "is not" if self.peek("NOT") else "is"
            self.i += op == "is not"
            self.expect("'EMPTY'", "EMPTY", "NULL")
            return name, op, []
        else:
            op = self.expect("an operator", "=", "!=", "~", "!~", "<", ">", "<=", ">=").text
        if op not in ("in", "not in"):
            return name, op, [self.expect("a value").text]
        self.expect("'('", "(")
        values = [self.expect("a value").text]
        while self.peek(","):
            self.i += 1
            values.append(self.expect("a value").text)
        self.expect("')'", ")")
        return name, op, values


def resolve_jql_field(name, fields):
    """(field id, kind, field definition or None) for a JQL field reference."""
    low = name.lower()
    if low in ("project", "key", "issuekey", "labels"):
        return low, {"issuekey": "key"}.get(low, low), fields.get(low)
    if low in ("summary", "description"):
        return low, "text", fields.get(low)
    match = re.fullmatch(r"cf\[(\d+)\]|customfield_(\d+)", low)
    if match:
        fid = "customfield_" + (match.group(1) or match.group(2))
    else:
        fid = next((f for f, d in fields.items() if d["name"].lower() == low), None)
        if fid is None:
            raise ApiError(400, "Field '%s' does not exist or you do not have permission "
                                "to view it." % name)
    field = fields.get(fid)
    ftype = field["jiraSchema"].get("type") if field else None
    return fid, {"string": "text"}.get(ftype, "value" if field else "any"), field


def comparable(issue, fid, kind, field):
    """Lower-case strings a clause compares against for this issue."""
    if kind == "project":
        return [SERVICE_DESK[k].lower() for k in ("projectKey", "projectId", "projectName")]
    if kind == "key":
        return [issue["key"].lower(), issue["id"]]
    value = issue["fields"].get(fid)
    out = []
    for item in value if isinstance(value, list) else [] if value is None else [value]:
        if isinstance(item, dict) and item.get("type") == "doc":
            out.append(adf_text(item))
        elif isinstance(item, dict):
            option = find_option(field, item) if field else None
            out.extend([option["value"], option["label"]] if option else map(str, item.values()))
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            out.append(normal_number(item))
        else:
            out.append(str(item))
    return [o.lower() for o in out if o != ""]


def normal_number(value):
    try:
        return repr(float(value))
    except ValueError:
        return value


def compile_clause(name, op, values, fields):
    fid, kind, field = resolve_jql_field(name, fields)
    allowed = TEXT_OPS if kind == "text" else EQUALITY_OPS | (TEXT_OPS if kind == "any" else set())
    if op not in allowed:
        raise ApiError(400, "The operator '%s' is not supported by the '%s' field." % (op, name))
    targets = {v.lower() for v in values}
    if kind in ("value", "any"):
        targets |= {normal_number(v).lower() for v in values}
    if kind == "project" and not targets <= set(comparable(None, fid, kind, field)):
        raise ApiError(400, "The value '%s' does not exist for the field 'project'." % values[0])

    def matches(issue):
        got = comparable(issue, fid, kind, field)
        if op in ("is", "is not"):
            return (not got) == (op == "is")
        if op in ("~", "!~"):
            return any(values[0].lower() in g for g in got) == (op == "~")
        hit = any(g in targets for g in got)
        return hit if op in ("=", "in") else bool(got) and not hit
    return matches


DATE_FIELDS = {"created": "created", "createddate": "created", "updated": "updated", "updateddate": "updated"}
RELATIVE_DATE = re.compile(r"([-+]?)(\d+)([wdhm])")
DATE_UNITS_MS = {"w": 7 * 86400000, "d": 86400000, "h": 3600000, "m": 60000}


def jql_date_ms(text, name):
    """Milliseconds for a JQL date value: relative ("-5m", "-2h", "1d") from
    now, or absolute "yyyy/MM/dd [HH:mm]" / "yyyy-MM-dd [HH:mm]" in the
    user's time zone (Etc/UTC here)."""
    match = RELATIVE_DATE.fullmatch(text.strip())
    if match:
        sign = -1 if match.group(1) == "-" else 1
        return now_ms() + sign * int(match.group(2)) * DATE_UNITS_MS[match.group(3)]
    for fmt in ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d"):
        try:
            dt = datetime.datetime.strptime(text.strip(), fmt).replace(tzinfo=datetime.timezone.utc)
            return int(dt.timestamp() * 1000)
        except ValueError:
            continue
    raise ApiError(400, "Date value '%s' for field '%s' is invalid. Valid formats include: "
                        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
                        "format e.g. '-5d', '4w 2d'." % (text, name))


def compile_date_clause(name, op, values):
    """created/updated compared with a date: = != < > <= >= (ms precision)."""
    if op not in ("=", "!=", "<", ">", "<=", ">="):
        raise ApiError(400, "The operator '%s' is not supported by the '%s' field." % (op, name))
    when, attr = jql_date_ms(values[0], name), DATE_FIELDS[name.lower()]
    compare = {"=": lambda a: a == when, "!=": lambda a: a != when, "<": lambda a: a < when,
               ">": lambda a: a > when, "<=": lambda a: a <= when, ">=": lambda a: a >= when}[op]
    return lambda issue: compare(issue[attr])


def compile_jql(jql):
    """(predicate, sort function) for a JQL query; ApiError 400 when unusable."""
    parser = JqlParser(jql)
    clauses, order = parser.parse()
    if not clauses:
        raise ApiError(400, "Unbounded JQL queries are not allowed here. Please add a search "
                            "restriction to your query.")
    fields = STATE.fields()
    def clause_of(n, op, v):
        return compile_date_clause(n, op, v) if n.lower() in DATE_FIELDS else compile_clause(n, op, v, fields)
    predicates = [clause_of(n, op, v) for n, op, v in clauses]
    if parser.groups:
        groups = [[clause_of(n, op, v) for n, op, v in g] for g in parser.groups]
        predicates = [lambda issue: any(all(p(issue) for p in g) for g in groups)]
    for name, _ in order:
        if name.lower() not in ORDER_KEYS:
            raise ApiError(400, "Not able to sort using field '%s'." % name)

    def sort(issues):
        for name, descending in reversed(order or [("created", True)]):
            issues.sort(key=ORDER_KEYS[name.lower()], reverse=descending)
        return issues
    return (lambda issue: all(p(issue) for p in predicates)), sort


# --- multipart --------------------------------------------------------------

Part = namedtuple("Part", "name filename mime data")


def parse_multipart(body, content_type):
    """The parts of a multipart/form-data body; ValueError when malformed."""
    header = email.message.Message()
    header["Content-Type"] = content_type or ""
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not boundary:
        raise ValueError("The request is not multipart/form-data with a boundary.")
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            if not parts:
                break
            return parts
        padding, _, rest = chunk.partition(b"\r\n")
        if padding.strip(b" \t"):
            break
        if rest.startswith(b"\r\n"):
            head, data = b"", rest[2:]
        else:
            head, sep, data = rest.partition(b"\r\n\r\n")
            if not sep:
                break
        headers = email.parser.Parser().parsestr(head.decode("utf-8", "replace"), headersonly=True)
        filename = headers.get_filename()
        mime = headers.get_content_type() if headers["Content-Type"] else \
            (mimetypes.guess_type(filename or "")[0] or "application/octet-stream")
        parts.append(Part(headers.get_param("name", header="content-disposition"), filename, mime, data))
    raise ValueError("The multipart body is malformed or has no parts.")


# --- representations --------------------------------------------------------

def user_dto(call, mail):
    aid = account_id(mail)
    link = "%s/rest/api/3/user?accountId=%s" % (call.base, aid)
    return {"accountId": aid, "emailAddress": mail, "displayName": display_name(mail),
            "active": True, "timeZone": "Etc/UTC", "_links": {"self": link, "jiraRest": link}}


def customer_request_dto(call, issue):
    base, fields = call.base, STATE.fields()
    values = [{"fieldId": fid, "label": fields[fid]["name"] if fid in fields else fid,
               "value": render_value(fields.get(fid), value, base)}
              for fid, value in issue["fields"].items() if not is_empty(value)]
    return {"issueId": issue["id"], "issueKey": issue["key"],
            "requestTypeId": issue["requestTypeId"], "serviceDeskId": issue["serviceDeskId"],
            "createdDate": date_dto(issue["created"]),
            "reporter": user_dto(call, issue["reporter"]),
            "requestFieldValues": values,
            "currentStatus": dict(STATUS, statusDate=date_dto(issue["created"])),
            "_links": {"jiraRest": "%s/rest/api/2/issue/%s" % (base, issue["id"]),
                       "web": "%s/servicedesk/customer/portal/1/%s" % (base, issue["key"]),
                       "self": "%s%s/request/%s" % (base, JSM, issue["id"]),
                       "agent": "%s/browse/%s" % (base, issue["key"])}}


def attachment_dto(call, att):
    base = call.base
    links = {"jiraRest": "%s/rest/api/2/attachment/%s" % (base, att["id"]),
             "content": "%s/servicedesk/customershim/secure/attachment/%s/%s"
                        % (base, att["id"], urllib.parse.quote(att["filename"]))}
    if att["mimeType"].startswith("image/"):
        links["thumbnail"] = "%s/servicedesk/customershim/secure/thumbnail/%s/_thumb_%s.png" \
                             % (base, att["id"], att["id"])
    return {"filename": att["filename"], "author": user_dto(call, att["author"]),
            "created": date_dto(att["created"]), "size": len(att["data"]),
            "mimeType": att["mimeType"], "_links": links}


def paged(call, values, start, limit, total, path):
    links = {"base": call.base + JSM, "context": "", "self": "%s%s?start=%d&limit=%d"
             % (call.base, path, start, limit)}
    if start + limit < total:
        links["next"] = "%s%s?start=%d&limit=%d" % (call.base, path, start + limit, limit)
    if start > 0:
        links["prev"] = "%s%s?start=%d&limit=%d" % (call.base, path, max(0, start - limit), limit)
    return {"_expands": [], "size": len(values), "start": start, "limit": limit,
            "isLastPage": start + len(values) >= total, "_links": links, "values": values}


def platform_fields(call, issue):
    """Every field of an issue as GET /rest/api/3/issue shows it."""
    fields = STATE.fields()
    out = {fid: render_value(fields.get(fid), value, call.base)
           for fid, value in issue["fields"].items()}
    out.update(created=jira_time(issue["created"]), updated=jira_time(issue["updated"]),
               project={"self": "%s/rest/api/3/project/%s" % (call.base, SERVICE_DESK["projectId"]),
                        "id": SERVICE_DESK["projectId"], "key": SERVICE_DESK["projectKey"],
                        "name": SERVICE_DESK["projectName"]},
               issuetype={"id": REQUEST_TYPE["issueTypeId"], "name": "Service Request"},
               status={"name": STATUS["status"], "statusCategory": {"key": "new", "name": "To Do"}})
    out["attachment"] = attachment_beans(call, issue)
    return out


def attachment_beans(call, issue):
    """The `attachment` field of an issue as the platform API shows it."""
    return [{"self": "%s/rest/api/3/attachment/%s" % (call.base, a["id"]), "id": a["id"],
             "filename": a["filename"], "author": user_dto(call, a["author"]),
             "created": jira_time(a["created"]), "size": len(a["data"]), "mimeType": a["mimeType"],
             "content": "%s/rest/api/3/attachment/content/%s" % (call.base, a["id"])}
            for a in issue["attachments"]]


def issue_bean(call, issue, wanted):
    """IssueBean with the fields a `fields` list asks for (*all, *navigable, -x, names)."""
    everything = platform_fields(call, issue)
    names = [n for n in wanted if n not in ("*all", "*navigable", "id", "key") and not n.startswith("-")]
    if any(n in ("*all", "*navigable") for n in wanted):
        selected = dict(everything)
    else:
        selected = {n: everything.get(n) for n in names}
    for name in wanted:
        if name.startswith("-"):
            selected.pop(name[1:], None)
    return {"id": issue["id"], "key": issue["key"],
            "self": "%s/rest/api/3/issue/%s" % (call.base, issue["id"]), "fields": selected}


# --- API handlers (called with STATE.lock held) ----------------------------

class Call:
    """One /rest/ request as the handlers see it."""

    def __init__(self, handler, params, query, body):
        self.method, self.params, self.body = handler.command, params, body
        self.query = urllib.parse.parse_qs(query, keep_blank_values=True)
        self.headers = handler.headers
        self.base = "http://" + (handler.headers.get("Host") or "%s:%d" % handler.server.server_address[:2])
        self.email = handler.server.settings.email

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default

    def int_arg(self, name, default, minimum):
        try:
            value = int(self.arg(name, default))
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise ApiError(400, "The '%s' parameter must be an integer >= %d." % (name, minimum))
        return value

    def json_object(self, allowed=None):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, "Unsupported media type; send Content-Type: application/json.")
        try:
            data = json.loads(self.body.decode("utf-8"), parse_constant=reject_constant)
        except ValueError:
            raise ApiError(400, "The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        unknown = sorted(set(data) - allowed) if allowed is not None else []
        if unknown:
            raise ApiError(400, 'Unrecognized field "%s".' % unknown[0],
                           {k: "Unrecognized field." for k in unknown})
        return data


def reject_constant(name):
    raise ValueError(name)


def require_issue(call, api):
    issue = STATE.find_issue(call.params["key"])
    if issue is None:
        message = ("The request could not be found." if api == "jsm" else
                   "Issue does not exist or you do not have permission to see it.")
        raise ApiError(404, message)
    return issue


def require_desk(call):
    if not STATE.desk_exists(call.params["sd"]):
        raise ApiError(404, "The service desk does not exist or you do not have access to it.")


def get_service_desk(call):
    require_desk(call)
    link = "%s%s/servicedesk/%s" % (call.base, JSM, SERVICE_DESK["id"])
    return 200, dict(SERVICE_DESK, _links={"self": link})


def get_request_type(call):
    require_desk(call)
    if call.params["rt"] != REQUEST_TYPE["id"]:
        raise ApiError(404, "The request type does not exist or you do not have access to it.")
    return 200, dict(REQUEST_TYPE, serviceDeskId=SERVICE_DESK["id"], groupIds=[],
                     _links={"self": "%s%s/servicedesk/%s/requesttype/%s"
                                     % (call.base, JSM, SERVICE_DESK["id"], REQUEST_TYPE["id"])})


def get_request_type_fields(call):
    get_request_type(call)
    return 200, {"requestTypeFields": STATE.config["fields"], "canRaiseOnBehalfOf": False,
                 "canAddRequestParticipants": True}


CREATE_KEYS = {"channel", "form", "isAdfRequest", "raiseOnBehalfOf", "requestFieldValues",
               "requestParticipants", "requestTypeId", "serviceDeskId"}
CREATE_TYPES = {"channel": str, "form": dict, "isAdfRequest": bool, "raiseOnBehalfOf": str,
                "requestFieldValues": dict, "requestParticipants": list,
                "requestTypeId": str, "serviceDeskId": str}
TYPE_NAMES = {str: "string", dict: "object", bool: "boolean", list: "array"}
CREATE_FAILED = "Your request could not be created. Please check the fields have been correctly filled in."


def create_request(call):
    body = call.json_object(CREATE_KEYS)
    errors = {key: "%s is required." % key for key in ("serviceDeskId", "requestTypeId") if key not in body}
    errors.update({key: "%s must be a JSON %s." % (key, TYPE_NAMES[CREATE_TYPES[key]])
                   for key, value in body.items() if not isinstance(value, CREATE_TYPES[key])})
    if not errors and not STATE.desk_exists(body["serviceDeskId"]):
        errors["serviceDeskId"] = "The service desk '%s' does not exist." % body["serviceDeskId"]
    if not errors and body["requestTypeId"] != REQUEST_TYPE["id"]:
        errors["requestTypeId"] = ("The request type '%s' does not exist in this service desk."
                                   % body["requestTypeId"])
    if errors:
        raise ApiError(400, next(iter(errors.values())), errors)
    values = body.get("requestFieldValues", {})
    errors = validate_values(values, "create" if body.get("isAdfRequest") is True else False, creating=True)
    if errors:
        raise ApiError(400, CREATE_FAILED + " " + " ".join(errors.values()), errors)
    reporter = on_behalf_reporter(body)
    issue = STATE.add_issue(body["serviceDeskId"], body["requestTypeId"], values,
                            reporter["email"] if reporter else call.email)
    issue["reporterAccountId"] = reporter["accountId"] if reporter else account_id(call.email)
    return 201, customer_request_dto(call, issue)


def get_request(call):
    return 200, customer_request_dto(call, require_issue(call, "jsm"))


def attach_temporary_file(call):
    require_desk(call)
    if (call.headers.get("X-Atlassian-Token") or "").lower() != "no-check":
        raise ApiError(403, "XSRF check failed")
    try:
        parts = parse_multipart(call.body, call.headers.get("Content-Type"))
    except ValueError as err:
        raise ApiError(400, str(err)) from None
    if any(p.name != "file" or not p.filename for p in parts):
        raise ApiError(400, "Every part must be a form field named 'file' with a filename.")
    result = []
    for part in parts:
        temp_id = STATE.new_temp_id()
        STATE.temp_files[temp_id] = part
        result.append({"temporaryAttachmentId": temp_id, "fileName": part.filename})
    return 201, {"temporaryAttachments": result}


def attach_files(call):
    issue = require_issue(call, "jsm")
    body = call.json_object({"temporaryAttachmentIds", "public", "additionalComment"})
    ids, public = body.get("temporaryAttachmentIds"), body.get("public", True)
    comment = body.get("additionalComment")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ApiError(400, "temporaryAttachmentIds must be a non-empty list of strings.")
    if not isinstance(public, bool):
        raise ApiError(400, "public must be a boolean.")
    if comment is not None and not (isinstance(comment, dict) and set(comment) <= {"body"}
                                    and isinstance(comment.get("body"), str)):
        raise ApiError(400, "additionalComment must be {\"body\": string}.")
    bad = [i for i in ids if i not in STATE.temp_files or ids.count(i) > 1]
    if bad:
        raise ApiError(400, "Temporary attachment(s) not found or already used: %s." % ", ".join(bad))
    created, added = now_ms(), []
    for temp_id in ids:
        part = STATE.temp_files.pop(temp_id)
        added.append({"id": STATE.take_id("next_attachment"), "filename": part.filename,
                      "mimeType": part.mime, "data": part.data, "public": public,
                      "author": call.email, "created": created})
    issue["attachments"].extend(added)
    values = [attachment_dto(call, a) for a in added]
    result = {"attachments": paged(call, values, 0, len(values), len(values),
                                   "%s/request/%s/attachment" % (JSM, issue["id"]))}
    if comment is not None:
        result["comment"] = add_comment(call, issue, comment["body"], public, created)
    return 201, result


def add_comment(call, issue, body, public, created):
    comment_id = STATE.take_id("next_comment")
    issue["comments"].append({"id": comment_id, "body": body, "public": public})
    return {"id": comment_id, "body": body, "public": public, "author": user_dto(call, call.email),
            "created": date_dto(created),
            "_links": {"self": "%s%s/request/%s/comment/%s" % (call.base, JSM, issue["id"], comment_id)}}


def list_attachments(call):
    issue = require_issue(call, "jsm")
    start, limit = call.int_arg("start", 0, 0), call.int_arg("limit", 50, 1)
    page = issue["attachments"][start:start + limit]
    return 200, paged(call, [attachment_dto(call, a) for a in page], start, limit,
                      len(issue["attachments"]), "%s/request/%s/attachment" % (JSM, issue["id"]))


def get_myself(call):
    aid = account_id(call.email)
    return 200, {"self": "%s/rest/api/3/user?accountId=%s" % (call.base, aid), "accountId": aid,
                 "accountType": "atlassian", "emailAddress": call.email,
                 "displayName": display_name(call.email), "active": True,
                 "timeZone": "Etc/UTC", "locale": "en_US"}


SEARCH_KEYS = {"jql", "fields", "maxResults", "nextPageToken", "expand", "properties",
               "fieldsByKeys", "failFast", "reconcileIssues"}


def search_params(call):
    """(jql, fields, maxResults, nextPageToken) from a GET query or a POST body."""
    if call.method == "GET":
        fields = [f.strip() for v in call.query.get("fields", []) for f in v.split(",") if f.strip()]
        return (call.arg("jql", ""), fields, call.int_arg("maxResults", 50, 0),
                call.arg("nextPageToken"))
    body = call.json_object(SEARCH_KEYS)
    jql, fields, limit = body.get("jql", ""), body.get("fields", []), body.get("maxResults", 50)
    token = body.get("nextPageToken")
    if not isinstance(jql, str) or not isinstance(token, (str, type(None))):
        raise ApiError(400, "jql and nextPageToken must be strings.")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ApiError(400, "fields must be a list of strings.")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ApiError(400, "maxResults must be a non-negative integer.")
    return jql, fields, limit, token


def decode_page_token(token):
    if token is None:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii").split(":")[1])
    except (ValueError, IndexError, UnicodeError):
        offset = -1
    if offset < 0:
        raise ApiError(400, "The nextPageToken is invalid.")
    return offset


def search(call):
    jql, fields, limit, token = search_params(call)
    matches, sort = compile_jql(jql)
    offset = decode_page_token(token)
    only_ids = all(f in ("id", "key") for f in fields)
    limit = min(limit or 50, 5000 if only_ids else 100)
    visible_before = now_ms() - STATE.config["search_lag_ms"]
    hits = sort([i for i in STATE.issues
                 if not i["deleted"] and i["created"] <= visible_before and matches(i)])
    page = hits[offset:offset + limit]
    result = {"issues": [issue_bean(call, i, fields) for i in page],
              "isLast": offset + limit >= len(hits)}
    if not result["isLast"]:
        result["nextPageToken"] = base64.urlsafe_b64encode(b"offset:%d" % (offset + limit)).decode()
    return 200, result


def get_issue(call):
    issue = require_issue(call, "platform")
    wanted = [f.strip() for v in call.query.get("fields", []) for f in v.split(",") if f.strip()]
    return 200, issue_bean(call, issue, wanted or ["*all"])


def apply_update_ops(issue, fields, update):
    """Fold an edit's `update` operations (set/add/remove) into its `fields` map."""
    if not isinstance(update, dict):
        raise ApiError(400, None, {"update": "update must be an object."})
    for fid, ops in update.items():
        value = fields.get(fid, issue["fields"].get(fid))
        for op in ops if isinstance(ops, list) else [None]:
            verb, arg = next(iter(op.items())) if isinstance(op, dict) and len(op) == 1 else (None, None)
            if verb == "set":
                value = arg
            elif verb in ("add", "remove") and isinstance(value, (list, type(None))):
                value = [v for v in value or [] if v != arg] + ([arg] if verb == "add" else [])
            else:
                raise ApiError(400, None, {fid: "Unsupported update operation for %s." % fid})
        fields[fid] = value


def edit_issue(call):
    issue = require_issue(call, "platform")
    body = call.json_object()
    fields = body.get("fields", {})
    if not isinstance(fields, dict):
        raise ApiError(400, None, {"fields": "fields must be an object."})
    fields = dict(fields)
    apply_update_ops(issue, fields, body.get("update", {}))
    errors = validate_values(fields, adf_ok=True, creating=False)
    if errors:
        raise ApiError(400, None, errors)
    for fid, value in fields.items():
        if value is None:
            issue["fields"].pop(fid, None)
        else:
            issue["fields"][fid] = value
    issue["updated"] = now_ms()
    return 204, None


def delete_issue(call):
    issue = require_issue(call, "platform")
    issue["deleted"] = True
    issue["attachments"] = []
    return 204, None


# --- customers (API) ----------------------------------------------------------

EXPERIMENTAL = ("This API is experimental. Experimental APIs are not guaranteed to be stable within the "
                "preview period. You must set the header 'X-ExperimentalApi: opt-in' to opt into using this API.")
EMAIL_RE = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\.]+(\.[^@\s<>()\[\],;:\"\\.]+)+")


def require_policy(name):
    if not STATE.customer_policy[name]:
        raise ApiError(403, "You do not have permission to perform this operation.")


def customer_dto(call, account):
    link = "%s/rest/api/2/user?accountId=%s" % (call.base, account["accountId"])
    dto = {"accountId": account["accountId"], "displayName": account["displayName"], "active": True,
           "timeZone": "Etc/UTC", "_links": {"self": link, "jiraRest": link}}
    if not account["hide_email"]:
        dto["emailAddress"] = account["email"]
    return dto


def matches_query(account, query):
    """JSM and Jira match the query against the name and the address, ignoring case."""
    query = query.lower()
    return not query or query in account["displayName"].lower() or \
        (not account["hide_email"] and query in account["email"].lower())


def get_desk_customers(call):
    if (call.headers.get("X-ExperimentalApi") or "").lower() != "opt-in":
        raise ApiError(412, EXPERIMENTAL)
    require_desk(call)
    require_policy("may_view")
    start, limit = call.int_arg("start", 0, 0), call.int_arg("limit", 50, 1)
    query = call.arg("query", "")
    found = [a for a in STATE.accounts.values()
             if a["accountId"] in STATE.desk_customers and matches_query(a, query)]
    page = found[start:start + limit]
    return 200, paged(call, [customer_dto(call, a) for a in page], start, limit, len(found),
                      "%s/servicedesk/%s/customer" % (JSM, call.params["sd"]))


def create_customer(call):
    body = call.json_object({"email", "displayName", "fullName"})
    require_policy("may_create")
    mail = body.get("email")
    if not isinstance(mail, str) or not EMAIL_RE.fullmatch(mail):
        raise ApiError(400, "The email address '%s' is invalid." % mail)
    if mail.lower() in STATE.accounts:
        strict = (call.arg("strictConflictStatusCode", "false") or "").lower() == "true"
        raise ApiError(409 if strict else 400, "An account already exists for this email")
    name = body.get("displayName") or body.get("fullName") or mail
    return 201, customer_dto(call, add_account(STATE, mail, name))


def add_desk_customers(call):
    require_desk(call)
    body = call.json_object({"accountIds", "usernames"})
    require_policy("may_add")
    ids = body.get("accountIds") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ApiError(400, "accountIds must be a list of strings.")
    unknown = [i for i in ids if account_by_id(STATE, i) is None]
    for aid in ids:
        if aid not in unknown:
            STATE.desk_customers.add(aid)
    if unknown:
        raise ApiError(400, "The following users do not exist: %s" % ", ".join(unknown))
    return 204, None


def search_users(call):
    query = call.arg("query")
    if not query:
        raise ApiError(400, "One of 'query', 'accountId' or 'property' must be specified.")
    start, limit = call.int_arg("startAt", 0, 0), call.int_arg("maxResults", 50, 1)
    if not STATE.customer_policy["may_search"]:
        return 200, []   # Jira answers users without Browse users and groups with nothing
    found = [a for a in STATE.accounts.values() if matches_query(a, query)]
    users = []
    for account in found[start:start + limit]:
        user = {"self": "%s/rest/api/3/user?accountId=%s" % (call.base, account["accountId"]),
                "accountId": account["accountId"], "accountType": "customer",
                "displayName": account["displayName"], "active": True}
        if not account["hide_email"]:
            user["emailAddress"] = account["email"]
        users.append(user)
    return 200, users


PERMISSION_POLICY = {"ADMINISTER": "may_create", "ADMINISTER_PROJECTS": "may_add"}


def my_permissions(call):
    keys = [k for k in (call.arg("permissions") or "").split(",") if k]
    if not keys:
        raise ApiError(400, "The permissions query parameter is required.")
    result = {}
    for key in keys:
        have = STATE.customer_policy[PERMISSION_POLICY[key]] if key in PERMISSION_POLICY else True
        result[key] = {"id": str(len(result) + 1), "key": key, "name": key.replace("_", " ").title(),
                       "type": "GLOBAL" if key == "ADMINISTER" else "PROJECT", "description": "",
                       "havePermission": have}
    return 200, {"permissions": result}


def on_behalf_reporter(body):
    """The customer a request is raised on behalf of, or None; 400 unless a customer of the desk."""
    aid = body.get("raiseOnBehalfOf")
    if aid is None:
        return None
    account = account_by_id(STATE, aid)
    if account is None or aid not in STATE.desk_customers:
        message = "The customer '%s' does not have permission to raise requests in this service desk." % aid
        raise ApiError(400, CREATE_FAILED + " " + message, {"raiseOnBehalfOf": message})
    return account


def admin_customers(data, query):
    unknown = set(data) - {"accounts", "policy"}
    if unknown:
        raise AdminError("unknown keys %s" % sorted(unknown))
    policy = data.get("policy", {})
    if not isinstance(policy, dict) or set(policy) - set(CUSTOMER_POLICY) or \
            not all(isinstance(v, bool) for v in policy.values()):
        raise AdminError("policy is an object of %s -> bool" % sorted(CUSTOMER_POLICY))
    accounts = data.get("accounts", [])
    if not isinstance(accounts, list) or not all(isinstance(a, dict) and isinstance(a.get("email"), str)
                                                 for a in accounts):
        raise AdminError("accounts is a list of {email, displayName, on_desk, hide_email}")
    STATE.customer_policy.update(policy)
    for raw in accounts:
        account = add_account(STATE, raw["email"], raw.get("displayName"), bool(raw.get("hide_email")))
        if raw.get("on_desk", True):
            STATE.desk_customers.add(account["accountId"])
    return admin_customers_state(data, query)


def admin_customers_state(data, query):
    return 200, {"accounts": [dict(a) for a in STATE.accounts.values()], "desk": sorted(STATE.desk_customers),
                 "policy": dict(STATE.customer_policy)}


Route = namedtuple("Route", "method pattern kind handler")
ROUTES = [Route(method, re.compile(pattern), kind, handler) for method, pattern, kind, handler in [
    ("GET", JSM + r"/servicedesk/(?P<sd>[^/]+)", "servicedesk", get_service_desk),
    ("GET", JSM + r"/servicedesk/(?P<sd>[^/]+)/requesttype/(?P<rt>[^/]+)", "requesttype", get_request_type),
    ("GET", JSM + r"/servicedesk/(?P<sd>[^/]+)/requesttype/(?P<rt>[^/]+)/field", "fields",
     get_request_type_fields),
    ("POST", JSM + r"/servicedesk/(?P<sd>[^/]+)/attachTemporaryFile", "attach_temp", attach_temporary_file),
    ("POST", JSM + r"/request", "create", create_request),
    ("GET", JSM + r"/request/(?P<key>[^/]+)", "get_request", get_request),
    ("POST", JSM + r"/request/(?P<key>[^/]+)/attachment", "attach", attach_files),
    ("GET", JSM + r"/request/(?P<key>[^/]+)/attachment", "list_attachments", list_attachments),
    ("GET", PLATFORM + r"/myself", "myself", get_myself),
    ("GET", PLATFORM + r"/search/jql", "search", search),
    ("POST", PLATFORM + r"/search/jql", "search", search),
    ("GET", PLATFORM + r"/issue/(?P<key>[^/]+)", "get_issue", get_issue),
    ("PUT", PLATFORM + r"/issue/(?P<key>[^/]+)", "edit_issue", edit_issue),
    ("DELETE", PLATFORM + r"/issue/(?P<key>[^/]+)", "delete_issue", delete_issue),
    ("GET", JSM + r"/servicedesk/(?P<sd>[^/]+)/customer", "desk_customers", get_desk_customers),
    ("POST", JSM + r"/servicedesk/(?P<sd>[^/]+)/customer", "add_customer", add_desk_customers),
    ("POST", JSM + r"/customer", "create_customer", create_customer),
    ("GET", PLATFORM + r"/user/search", "user_search", search_users),
    ("GET", PLATFORM + r"/mypermissions", "mypermissions", my_permissions),
]]


def match_route(method, path):
    """(route, path params, allowed methods when only the method is wrong)."""
    allowed = []
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match and route.method == method:
            return route, {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}, []
        if match:
            allowed.append(route.method)
    return None, {}, allowed


# --- admin API (called with STATE.lock held) -------------------------------

def int_setting(data, key, default):
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AdminError("%s must be a non-negative integer" % key)
    return value


def parse_fault_rule(raw):
    keys = {"kind", "action", "times", "probability", "retry_after", "latency_ms"}
    if not isinstance(raw, dict) or set(raw) - keys:
        raise AdminError("a rule is an object with keys %s" % sorted(keys))
    rule = {"kind": raw.get("kind", "any"), "action": str(raw.get("action")),
            "times": None if raw.get("times") is None else int_setting(raw, "times", 0),
            "probability": raw.get("probability", 1),
            "retry_after": int_setting(raw, "retry_after", 1),
            "latency_ms": int_setting(raw, "latency_ms", 0)}
    if rule["kind"] not in KINDS + ("any",):
        raise AdminError("unknown kind %r" % rule["kind"])
    if rule["action"] not in FAULT_ACTIONS:
        raise AdminError("unknown action %r" % rule["action"])
    if not isinstance(rule["probability"], (int, float)) or not 0 <= rule["probability"] <= 1:
        raise AdminError("probability must be a number in [0, 1]")
    return rule


FIELD_KEYS = {"fieldId", "name", "description", "required", "visible", "validValues",
              "defaultValues", "presetValues", "jiraSchema"}


def parse_field(raw):
    if not isinstance(raw, dict) or set(raw) - FIELD_KEYS or not isinstance(raw.get("fieldId"), str) \
            or not isinstance(raw.get("name"), str) or not isinstance(raw.get("jiraSchema"), dict) \
            or "type" not in raw["jiraSchema"]:
        raise AdminError("a field is a RequestTypeFieldDTO with fieldId, name and jiraSchema.type")
    return dict({"description": "", "required": False, "visible": True, "validValues": [],
                 "defaultValues": [], "presetValues": []}, **raw)


def admin_reset(data, query):
    STATE.reset()
    return 200, {}


def admin_state(data, query):
    include_deleted = query.get("include_deleted", [""])[-1].lower() in ("1", "true", "yes")
    requests = [{"issueId": i["id"], "issueKey": i["key"], "serviceDeskId": i["serviceDeskId"],
                 "requestTypeId": i["requestTypeId"], "fields": i["fields"],
                 "labels": i["fields"].get("labels") or [], "deleted": i["deleted"],
                 "created": jira_time(i["created"]), "reporter": i["reporter"],
                 "reporterAccountId": i.get("reporterAccountId") or account_id(i["reporter"]),
                 "attachments": [{"id": a["id"], "filename": a["filename"], "size": len(a["data"]),
                                  "public": a["public"], "content": a["data"].decode("utf-8", "replace")}
                                 for a in i["attachments"]],
                 "comments": i["comments"]}
                for i in STATE.issues if include_deleted or not i["deleted"]]
    return 200, {"requests": requests, "temporary_files": len(STATE.temp_files)}


def admin_stats(data, query):
    return 200, {"calls": dict(STATE.calls), "total_calls": STATE.total_calls,
                 "connections": STATE.connections, "rate_limited": STATE.rate_limited,
                 "first_call_ms": STATE.first_call_ms, "last_call_ms": STATE.last_call_ms,
                 "in_flight_peak": STATE.in_flight_peak, "spans_ms": dict(STATE.spans)}


def admin_stats_reset(data, query):
    STATE.reset_stats()
    return 200, {}


def admin_config(data, query):
    unknown = set(data) - {"search_lag_ms", "forbid", "fields", "service_desk_exists", "latency_ms", "jitter_ms",
                           "rate_limit"}
    if unknown:
        raise AdminError("unknown config keys %s" % sorted(unknown))
    update = {key: int_setting(data, key, 0) for key in ("search_lag_ms", "latency_ms", "jitter_ms") if key in data}
    if "rate_limit" in data:
        limit = data["rate_limit"] or DEFAULT_RATE_LIMIT
        if not isinstance(limit, dict) or set(limit) - {"rate", "burst"} or \
                not all(isinstance(limit.get(k), (int, float)) and limit.get(k) > 0 for k in ("rate", "burst")):
            raise AdminError("rate_limit must be {\"rate\": positive number, \"burst\": positive number}")
        update["rate_limit"] = {"rate": limit["rate"], "burst": limit["burst"]}
        STATE.buckets = {}
    for key in ("forbid", "service_desk_exists"):
        if key in data and not isinstance(data[key], bool):
            raise AdminError("%s must be a boolean" % key)
        if key in data:
            update[key] = data[key]
    if "fields" in data:
        if not isinstance(data["fields"], list):
            raise AdminError("fields must be a list")
        update["fields"] = [parse_field(f) for f in data["fields"]]
    STATE.config.update(update)
    return 200, STATE.config


def admin_set_faults(data, query):
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise AdminError("rules must be a list")
    STATE.faults = Faults(int_setting(data, "seed", 0), [parse_fault_rule(r) for r in rules])
    return 200, {}


def admin_clear_faults(data, query):
    STATE.faults = Faults()
    return 200, {}


def admin_create_request(data, query):
    values = data.get("requestFieldValues")
    if isinstance(values, dict):
        values = dict(values)
        if "labels" in data:
            values["labels"] = data["labels"]
    else:
        values = data
    issue = STATE.add_issue(SERVICE_DESK["id"], REQUEST_TYPE["id"], values, "orphan@example.com")
    return 201, {"issueId": issue["id"], "issueKey": issue["key"]}


ADMIN_ROUTES = {
    ("POST", "/_admin/reset"): admin_reset,
    ("GET", "/_admin/state"): admin_state,
    ("GET", "/_admin/stats"): admin_stats,
    ("POST", "/_admin/stats/reset"): admin_stats_reset,
    ("POST", "/_admin/config"): admin_config,
    ("POST", "/_admin/faults"): admin_set_faults,
    ("DELETE", "/_admin/faults"): admin_clear_faults,
    ("POST", "/_admin/request"): admin_create_request,
    ("POST", "/_admin/customers"): admin_customers,
    ("GET", "/_admin/customers"): admin_customers_state,
}


# --- HTTP -------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120

    def version_string(self):
        return "jsm-test-server/1.0"

    def setup(self):
        super().setup()
        self.counted = False
        self.rl_headers = []

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            self.send_json(400, {"error": "Bad request body framing."})
            return
        try:
            if url.path == "/_admin" or url.path.startswith("/_admin/"):
                self.serve_admin(url.path, url.query, body)
            elif url.path.startswith("/rest/"):
                self.serve_api(url.path, url.query, body)
            else:
                self.send_json(404, {"error": "Not found."})
        except OSError:  # the client went away mid-answer
            self.close_connection = True
        except Exception:  # a bug in this server: answer 500, keep serving
            traceback.print_exc()
            self.close_connection = True
            self.send_json(500, {"error": "Internal error in the test server."})

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = dispatch

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self.read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def read_chunked(self):
        data = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"x", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    def serve_admin(self, path, query, body):
        handler = ADMIN_ROUTES.get((self.command, path))
        if handler is None:
            known = any(p == path for _, p in ADMIN_ROUTES)
            self.send_json(405 if known else 404, {"error": "No such admin route."})
            return
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
            if not isinstance(data, dict):
                raise AdminError("the body must be a JSON object")
            with STATE.lock:
                status, payload = handler(data, urllib.parse.parse_qs(query))
                payload = json.loads(json.dumps(payload))
        except (AdminError, ValueError) as err:
            status, payload = 400, {"error": str(err)}
        self.send_json(status, payload)

    def serve_api(self, path, query, body):
        api = "jsm" if path.startswith(JSM + "/") else "platform"
        route, params, allowed = match_route(self.command, path)
        self.rl_headers = []
        with STATE.lock:
            STATE.in_flight += 1
            STATE.in_flight_peak = max(STATE.in_flight_peak, STATE.in_flight)
        self.in_flight_counted = True
        try:
            self.serve_api_call(api, path, route, params, allowed, query, body)
        finally:
            self.leave_flight()
            self.rl_headers = []

    def leave_flight(self):
        """A call stops counting as in flight once its answer starts going out:
        the client may start its next call the moment it reads the answer,
        before this thread gets to run again, and that must not look like one
        call too many in flight."""
        if getattr(self, "in_flight_counted", False):
            self.in_flight_counted = False
            with STATE.lock:
                STATE.in_flight -= 1

    def serve_api_call(self, api, path, route, params, allowed, query, body):
        rule, within_limit = self.account_call(route)
        action = rule["action"] if rule else None
        if not within_limit:
            self.send_json(429, error_body(api, ApiError(429, STATUS_FAULTS["429"])))
        elif route is None:
            err = ApiError(405, "Method not allowed.", headers=[("Allow", ", ".join(allowed))]) \
                if allowed else ApiError(404, "No such resource: %s" % path)
            self.send_json(err.status, error_body(api, err), err.headers)
        elif action == "reset":
            self.drop_connection(abortive=True)
        elif action in STATUS_FAULTS:
            headers = [("Retry-After", str(rule["retry_after"]))] if action == "429" else []
            err = ApiError(int(action), STATUS_FAULTS[action])
            self.send_json(err.status, error_body(api, err), headers)
        else:
            status, payload, headers = self.perform(api, route, params, query, body)
            if action == "lost":
                self.drop_connection(abortive=False)
            elif action in GARBLED_FAULTS and 200 <= status < 300:
                self.send_garbled(action, status, payload)
            else:
                self.send_raw(status, payload, headers)

    def send_garbled(self, action, status, payload):
        """The operation is committed; its answer is spoiled (see GARBLED_FAULTS)."""
        html = "text/html; charset=iso-8859-1"
        if action == "html_502":
            self.send_raw(502, b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
                               b"Gateway</h1></center><hr><center>nginx</center></body></html>", (), html)
        elif action == "maintenance_page":
            self.send_raw(503, b"<!DOCTYPE html><html><body><h1>We'll be back soon</h1><p>Jira is down for "
                               b"scheduled maintenance.</p></body></html>", (), html)
        elif action == "truncated_json":
            self.send_raw(status, (payload or b"{}")[:max(1, len(payload or b"{}") // 2)])
        elif action == "empty_201":
            self.send_raw(201, b"")
        else:
            self.send_raw(200, json.dumps({"status": "OK", "result": {"accepted": True}}).encode())

    def account_call(self, route):
        """Count the call, take a token, apply configured latency: (the fault rule
        that fires or None, whether the call is within the rate limit)."""
        with STATE.lock:
            STATE.total_calls += 1
            STATE.connections += not self.counted
            stamp = now_ms()
            STATE.first_call_ms = STATE.first_call_ms or stamp
            STATE.last_call_ms = stamp
            if route:
                STATE.calls[route.kind] += 1
                STATE.spans[route.kind] = [STATE.spans.get(route.kind, [stamp])[0], stamp]
            within, self.rl_headers = STATE.take_token((self.command, route.kind if route else "none"))
            STATE.rate_limited += not within
            delay, rule = STATE.faults.pick(route.kind) if route and within else (0, None)
            delay += STATE.config["latency_ms"]
            if STATE.config["jitter_ms"]:
                delay += STATE.rng.uniform(0, STATE.config["jitter_ms"])
        self.counted = True
        if delay:
            time.sleep(delay / 1000)
        return rule, within

    def perform(self, api, route, params, query, body):
        """Authorize and run a route's handler: (status, encoded body or None, headers)."""
        try:
            self.authorize()
            with STATE.lock:
                status, payload = route.handler(Call(self, params, query, body))
                return status, None if payload is None else json.dumps(payload).encode(), []
        except ApiError as err:
            return err.status, json.dumps(error_body(api, err)).encode(), err.headers

    def authorize(self):
        settings = self.server.settings
        scheme, _, credentials = (self.headers.get("Authorization") or "").strip().partition(" ")
        expected = None
        if scheme.lower() == "basic":
            expected = ("%s:%s" % (settings.email, settings.token)).encode()
            try:
                credentials = base64.b64decode(credentials.strip(), validate=True)
            except ValueError:
                credentials = b""
        elif scheme.lower() == "bearer" and settings.bearer:
            expected, credentials = settings.bearer.encode(), credentials.strip().encode()
        if expected is None or not hmac.compare_digest(credentials, expected):
            raise ApiError(401, STATUS_FAULTS["401"])
        with STATE.lock:
            if STATE.config["forbid"]:
                raise ApiError(403, STATUS_FAULTS["403"])

    def send_json(self, status, payload, headers=()):
        self.send_raw(status, json.dumps(payload).encode(), headers)

    def send_raw(self, status, body, headers=(), content_type="application/json;charset=UTF-8"):
        self.leave_flight()
        self.send_response(status)
        names = {name.lower() for name, _ in headers}
        for name, value in list(headers) + [h for h in self.rl_headers if h[0].lower() not in names]:
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", content_type)
        if status != 204:
            self.send_header("Content-Length", str(len(body or b"")))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and status != 204:
            self.wfile.write(body)

    def drop_connection(self, abortive):
        """Close without answering: RST when abortive, else a plain FIN (empty reply)."""
        self.close_connection = True
        try:
            if abortive:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.rfile.close()
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_message(self, fmt, *args):
        if not self.server.settings.quiet:
            sys.stderr.write("jsm_server: %s\n" % (fmt % args))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, settings):
        super().__init__(address, Handler)
        self.settings = settings


def write_port_file(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as handle:
        handle.write("%d\n" % port)
    os.replace(tmp, path)


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Stateful JSM test server for wf2jsm.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the port number here once listening")
    parser.add_argument("--email", default="demo@example.com")
    parser.add_argument("--token", default="demo-token")
    parser.add_argument("--bearer", help="also accept 'Authorization: Bearer BEARER'")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    if args.host != "localhost" and not args.host.startswith("127."):
        parser.error("--host must be a loopback address")
    return args


def main(argv=None):
    args = parse_args(argv)
    server = Server((args.host, args.port), args)
    host, port = server.server_address[:2]
    if args.port_file:
        write_port_file(args.port_file, port)
    print("jsm_server listening on http://%s:%d" % (host, port), flush=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while not stop.wait(1):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
