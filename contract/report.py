#!/usr/bin/env python3
"""Turn Prism's output into named contract violations (Python stdlib only).

    python3 contract/report.py --build DIR --from MARK --to MARK
                               [--expect TEXT ...] [--list] [--quiet]

Reads, for the exchanges between two marks (GET /__contract_mark__/NAME requests
that run.sh sends through the chain; Prism answers them 404 and logs them):
  DIR/logs/prism.log   Prism's own log (its pretty, signale-formatted output):
                       "Request received" and "Request terminated with error:
                       <type>: <title>" lines name the method and path; VALIDATOR
                       "Violation: <location> <message>" lines carry the violations
                       that Prism let through (warnings, when --errors is set).
  DIR/logs/tap.jsonl   what the client got back (contract/tap.py): Prism's
                       problem+json bodies (422 request violations, 500 response
                       violations, 401 security, 404 unknown route) and the
                       sl-violations header, i.e. the field and the rule.
  DIR/operations.json  (method, path template) -> operationId of the merged spec.

Prints one line per violation, e.g.
  VIOLATION createCustomerRequest request body/serviceDeskId: must be string  (POST /rest/servicedeskapi/request -> 422)
Every error that Prism's log reports must be matched by a recorded exchange; one
that is not (say the tap lost it) is still reported from the log alone, so the
log is the authority on *whether* something was wrong and the tap only adds the
detail. Exit status: without --expect, 1 if there is any violation; with
--expect, 0 only if every TEXT occurs in some violation line ("caught"), which
is how the negative test proves that the checker bites.
"""
import argparse
import json
import os
import re
import sys
from collections import Counter

MARK = "/__contract_mark__/"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
RECEIVED = re.compile(r"\[HTTP SERVER\] (\w+) (\S+) .*Request received")
TERMINATED = re.compile(r"\[HTTP SERVER\] (\w+) (\S+) .*Request terminated with error: (\S+?): (.*)$")
VALIDATOR = re.compile(r"\[VALIDATOR\]\s+\S+\s+(\w+)\s+Violation: (\S*) (.*)$")
# Prism problem types -> (side, location) when only the log knows of an error.
LOG_ONLY = {"UNPROCESSABLE_ENTITY": ("request", "-"), "VIOLATIONS": ("response", "-"),
            "UNAUTHORIZED": ("request", "security"), "NO_PATH_MATCHED_ERROR": ("request", "route"),
            "NO_METHOD_MATCHED_ERROR": ("request", "route")}
MSG_PREFIX = re.compile(r"^(Request|Response) (body|headers?|query|path)( (property|parameter) \S+)? ")


class Operations:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            ops = json.load(f)
        self.ops = []
        for op in ops:
            parts = op["path"].strip("/").split("/")
            rx = "/" + "/".join("[^/]+" if re.fullmatch(r"\{[^}]+\}", p) else re.escape(p) for p in parts)
            params = sum(1 for p in parts if p.startswith("{"))
            self.ops.append((re.compile(rx + "/?$"), params, op))

    def name(self, method, path):
        # Like Prism's router: a literal path beats a template (fewest parameters wins).
        cands = sorted(((params, op["path"], op) for rx, params, op in self.ops
                        if op["method"] == method.upper() and rx.match(path)), key=lambda c: c[:2])
        if not cands:
            return f"<{method.upper()} {path}: no such operation>"
        op = cands[0][2]
        return op["operationId"] or f"<{method.upper()} {op['path']}>"


def between(items, is_mark, start, end):
    """Items strictly between mark `start` and mark `end` (by mark name)."""
    out, inside, seen_start, seen_end = [], False, False, False
    for it in items:
        name = is_mark(it)
        if name == start:
            inside, seen_start, out = True, True, []
            continue
        if name == end and inside:
            seen_end = True
            break
        if inside and name is None:
            out.append(it)
    return out, seen_start and seen_end


def read_tap(path):
    entries = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    entries.append(json.loads(line))
    return entries


def read_prism_log(path):
    """Events from Prism's log: ('mark', name) / ('error', method, path, type, title)
    / ('violation', method, path, severity, location, message)."""
    events, current = [], (None, None)
    if not os.path.exists(path):
        return events
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = ANSI.sub("", raw.rstrip("\n"))
            m = RECEIVED.search(line)
            if m:
                current = (m.group(1).upper(), m.group(2).split("?")[0])
                if current[1].startswith(MARK):
                    events.append(("mark", current[1][len(MARK):]))
                continue
            m = TERMINATED.search(line)
            if m:
                p = m.group(2).split("?")[0]
                if not p.startswith(MARK):
                    events.append(("error", m.group(1).upper(), p, m.group(3), m.group(4)))
                continue
            m = VALIDATOR.search(line)
            if m:
                events.append(("violation", current[0], current[1], m.group(1), m.group(2), m.group(3)))
    return events


def side_and_location(loc, default_side):
    loc = [str(x) for x in (loc or [])]
    side = default_side
    if loc and loc[0] in ("request", "response"):
        side, loc = loc[0], loc[1:]
    return side, "/".join(loc) or "-"


def violations_from_entry(e, ops):
    """Violations recorded for one exchange of the tap log."""
    op = ops.name(e["method"], e["path"])
    ctx = f"{e['method']} {e['path']} -> {e.get('status')}"
    found = []

    def add(side, loc, severity, message):
        message = MSG_PREFIX.sub("", message or "").strip()
        found.append({"operation": op, "side": side, "location": loc, "severity": severity,
                      "message": message, "context": ctx, "method": e["method"], "path": e["path"]})

    if "error" in e:
        add("transport", "-", "Error", e["error"])
        return found
    problem = e.get("problem") or {}
    ptype = str(problem.get("type", "")).rsplit("#", 1)[-1]
    default_side = "response" if ptype == "VIOLATIONS" else "request"
    details = e.get("sl_violations") or problem.get("validation") or []
    for v in details:
        side, loc = side_and_location(v.get("location"), default_side)
        add(side, loc, v.get("severity", "Error"), v.get("message", ""))
    if problem and not details:
        title = problem.get("title", "")
        where = {"UNAUTHORIZED": "security", "NO_PATH_MATCHED_ERROR": "route",
                 "NO_METHOD_MATCHED_ERROR": "route", "NO_SERVER_MATCHED_ERROR": "route",
                 "INVALID_CONTENT_TYPE": "content-type", "NOT_ACCEPTABLE": "accept"}.get(ptype, "prism")
        add("request" if where != "prism" else "proxy", where, "Error", f"{title} ({ptype})" if ptype else title)
    elif "problem_raw" in e or "sl_violations_raw" in e:
        add("proxy", "-", "Error", e.get("problem_raw") or e.get("sl_violations_raw"))
    return found


def format_violation(v):
    sev = "" if v["severity"] == "Error" else f" ({v['severity'].lower()})"
    return f"VIOLATION {v['operation']} {v['side']} {v['location']}: {v['message']}{sev}  ({v['context']})"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(here, "build"))
    ap.add_argument("--from", dest="start", required=True)
    ap.add_argument("--to", dest="end", required=True)
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--list", action="store_true", help="also list every exchange")
    ap.add_argument("--quiet", action="store_true", help="print nothing but violations")
    args = ap.parse_args()

    ops = Operations(os.path.join(args.build, "operations.json"))
    tap_all = read_tap(os.path.join(args.build, "logs", "tap.jsonl"))
    log_all = read_prism_log(os.path.join(args.build, "logs", "prism.log"))
    tap_mark = lambda e: e["path"][len(MARK):] if e["path"].startswith(MARK) else None
    log_mark = lambda ev: ev[1] if ev[0] == "mark" else None
    entries, ok_tap = between(tap_all, tap_mark, args.start, args.end)
    events, ok_log = between(log_all, log_mark, args.start, args.end)
    if not (ok_tap and ok_log):
        print(f"report: marks {args.start}..{args.end} not found in "
              f"{'the tap log' if not ok_tap else 'Prism log'}; cannot tell what happened", file=sys.stderr)
        return 2

    violations = []
    problem_seen = Counter()
    warn_seen = Counter()
    for e in entries:
        vs = violations_from_entry(e, ops)
        violations.extend(vs)
        if e.get("problem") is not None or "problem_raw" in e:
            problem_seen[(e["method"], e["path"])] += 1
        if e.get("sl_violations") and not e.get("problem"):
            warn_seen[(e["method"], e["path"])] += len(e["sl_violations"])
        if args.list:
            print(f"  exchange {e['method']} {e['target']} -> {e.get('status')}")
    # Prism's log is the authority: anything it flagged that the tap did not see
    # in a problem answer is reported from the log alone.
    for ev in events:
        if ev[0] == "error":
            key = (ev[1], ev[2])
            if problem_seen[key] > 0:
                problem_seen[key] -= 1
                continue
            ptype = ev[3].rsplit("#", 1)[-1]
            side, where = LOG_ONLY.get(ptype, ("proxy", "-"))
            violations.append({"operation": ops.name(ev[1], ev[2]), "side": side, "location": where,
                               "severity": "Error", "message": f"{ev[4]} ({ptype}; only in Prism's log)",
                               "context": f"{ev[1]} {ev[2]}", "method": ev[1], "path": ev[2]})
        elif ev[0] == "violation":
            key = (ev[1], ev[2])
            if warn_seen[key] > 0:
                warn_seen[key] -= 1
                continue
            side, loc = side_and_location(ev[4].split("."), "request")
            violations.append({"operation": ops.name(ev[1] or "?", ev[2] or "?"), "side": side, "location": loc,
                               "severity": {"warn": "Warning", "warning": "Warning", "info": "Information"}.get(ev[3], "Error"),
                               "message": MSG_PREFIX.sub("", ev[5]) + " (only in Prism's log)",
                               "context": f"{ev[1]} {ev[2]}", "method": ev[1], "path": ev[2]})

    lines = [format_violation(v) for v in violations]
    for line in lines:
        print(line)
    if args.expect:
        missing = 0
        for text in args.expect:
            hit = next((l for l in lines if text in l), None)
            if hit:
                if not args.quiet:
                    print(f"caught: {text}")
            else:
                missing += 1
                print(f"NOT caught: {text}")
        return 1 if missing else 0
    if not args.quiet:
        print(f"report: {len(entries)} exchange(s), {len(violations)} violation(s) between {args.start} and {args.end}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
