#!/usr/bin/env python3
"""Build the OpenAPI document(s) Prism validates against (Python stdlib only).

    python3 contract/overlay.py [--contracts DIR] [--overlay FILE] [--out DIR]

1. Reads Atlassian's published descriptions from DIR (default: ../shared/contracts
   beside the repository, or $CONTRACTS_DIR). They are never modified.
2. Applies contract/overlay.json, OpenAPI Overlay 1.0 style: each action has a
   JSONPath `target` (subset: $, .name, ['name'], .*, [*]) and either
   `update` (objects are merged recursively, other values replaced; if the target
   is an array the update value is appended unless already present) or
   `remove: true`, or `x-transform` (a named computed fix implemented below).
   An action whose target matches nothing is an error: a stale overlay must fail
   loudly, not silently stop patching.
3. Merges the two patched documents into one, build/merged.openapi.json.

Why one merged document and one Prism rather than two Prism instances: wf2jsm
takes a single JIRA_BASE_URL for both APIs, so a single proxy endpoint must serve
/rest/servicedeskapi/... and /rest/api/3/...; Prism validates against exactly one
document, and two instances would need a path-routing proxy in front of them
(another moving part that could itself hide or alter traffic). The path sets are
disjoint (checked below), so a merge loses nothing. Component names that occur in
both documents are renamed in the JSM copy with the prefix "Jsm" (and every $ref
to them rewritten), so each schema keeps exactly its own document's definition even
where the two differ (JsonNode does). The two OAuth2 schemes are the same
authorization server, so their scope lists are united; basicAuth is identical.

Also writes build/operations.json, the (method, path template) -> operationId
index that contract/report.py uses to name the operation of a violation.
"""
import argparse
import copy
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSM_PREFIX = "Jsm"


class OverlayError(Exception):
    pass


# --- JSONPath subset --------------------------------------------------------

_TOKEN = re.compile(r"""\.(\*|[A-Za-z0-9_$@{}\-]+)|\[(\*|'[^']*'|"[^"]*"|\d+)\]""")


def parse_path(expr):
    if not expr.startswith("$"):
        raise OverlayError(f"JSONPath must start with $: {expr}")
    pos, steps = 1, []
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise OverlayError(f"unsupported JSONPath syntax at {expr[pos:]!r} in {expr}")
        tok = m.group(1) if m.group(1) is not None else m.group(2)
        if tok == "*":
            steps.append(("*", None))
        elif tok[0] in "'\"":
            steps.append(("key", tok[1:-1]))
        elif m.group(2) is not None and tok.isdigit():
            steps.append(("index", int(tok)))
        else:
            steps.append(("key", tok))
        pos = m.end()
    return steps


def select(doc, expr):
    """Return [(parent, key)] for each node matched; (None, None) means the root."""
    nodes = [(None, None, doc)]
    for kind, arg in parse_path(expr):
        nxt = []
        for _parent, _key, value in nodes:
            if kind == "*":
                if isinstance(value, dict):
                    nxt.extend((value, k, v) for k, v in value.items())
                elif isinstance(value, list):
                    nxt.extend((value, i, v) for i, v in enumerate(value))
            elif kind == "key" and isinstance(value, dict) and arg in value:
                nxt.append((value, arg, value[arg]))
            elif kind == "index" and isinstance(value, list) and arg < len(value):
                nxt.append((value, arg, value[arg]))
        nodes = nxt
    return [(p, k) for p, k, _v in nodes]


def deep_merge(target, update):
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(target.get(k), dict):
            deep_merge(target[k], v)
        else:
            target[k] = copy.deepcopy(v)


# --- computed transforms ------------------------------------------------------

def parse_json_string_example(media_type_obj):
    """A Media Type Object whose `example` is JSON text: replace it by its value."""
    if not isinstance(media_type_obj, dict):
        return False
    ex = media_type_obj.get("example")
    if not isinstance(ex, str) or ex.strip()[:1] not in ("{", "["):
        return False
    try:
        media_type_obj["example"] = json.loads(ex)
    except ValueError:
        return False
    return True


TRANSFORMS = {"parse-json-string-example": parse_json_string_example}


def apply_action(doc, action):
    """Apply one overlay action; return the number of nodes changed."""
    target = action["target"]
    matches = select(doc, target)
    if not matches:
        raise OverlayError(f"target matches nothing: {target}")
    changed = 0
    if action.get("remove"):
        for parent, key in matches:
            del parent[key]
            changed += 1
    elif "x-transform" in action:
        fn = TRANSFORMS.get(action["x-transform"])
        if fn is None:
            raise OverlayError(f"unknown x-transform {action['x-transform']!r}")
        changed = sum(1 for parent, key in matches if fn(parent[key] if parent is not None else doc))
    elif "update" in action:
        upd = action["update"]
        for parent, key in matches:
            node = doc if parent is None else parent[key]
            if isinstance(node, list):
                if upd not in node:
                    node.append(copy.deepcopy(upd))
                    changed += 1
            elif isinstance(node, dict) and isinstance(upd, dict):
                deep_merge(node, upd)
                changed += 1
            else:
                raise OverlayError(f"cannot update a {type(node).__name__} at {target}")
    else:
        raise OverlayError(f"action without update/remove/x-transform: {target}")
    return changed


# --- merge ----------------------------------------------------------------------

def rename_refs(node, renames):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v in renames:
                node[k] = renames[v]
            else:
                rename_refs(v, renames)
    elif isinstance(node, list):
        for v in node:
            rename_refs(v, renames)


def merge(jsm, platform):
    jsm = copy.deepcopy(jsm)
    overlap = set(jsm["paths"]) & set(platform["paths"])
    if overlap:
        raise OverlayError(f"documents share paths, cannot merge: {sorted(overlap)}")
    merged = copy.deepcopy(platform)
    renames = {}
    for section, comps in jsm.get("components", {}).items():
        if section == "securitySchemes":
            continue
        theirs = platform.get("components", {}).get(section, {})
        for name in list(comps):
            if name in theirs:
                new = JSM_PREFIX + name
                if new in comps or new in theirs:
                    raise OverlayError(f"cannot rename {section}/{name}: {new} exists")
                comps[new] = comps.pop(name)
                renames[f"#/components/{section}/{name}"] = f"#/components/{section}/{new}"
    rename_refs(jsm, renames)
    for section, comps in jsm.get("components", {}).items():
        dst = merged.setdefault("components", {}).setdefault(section, {})
        for name, value in comps.items():
            if section == "securitySchemes" and name in dst:
                a, b = dst[name], value
                if a.get("type") == "oauth2" and b.get("type") == "oauth2":
                    for flow, spec in b.get("flows", {}).items():
                        tgt = a.setdefault("flows", {}).setdefault(flow, copy.deepcopy(spec))
                        if tgt.get("authorizationUrl") != spec.get("authorizationUrl") or tgt.get("tokenUrl") != spec.get("tokenUrl"):
                            raise OverlayError(f"OAuth2 flow {flow} differs between the documents")
                        tgt.setdefault("scopes", {}).update(spec.get("scopes", {}))
                elif {k: v for k, v in a.items() if k != "description"} != {k: v for k, v in b.items() if k != "description"}:
                    raise OverlayError(f"security scheme {name} differs between the documents")
                continue
            dst[name] = value
    merged["paths"].update(jsm["paths"])
    known = {t.get("name") for t in merged.get("tags", [])}
    merged.setdefault("tags", []).extend(t for t in jsm.get("tags", []) if t.get("name") not in known)
    merged["info"] = {
        "title": "Jira platform REST v3 + Jira Service Management REST (merged, patched for contract tests)",
        "version": f"platform {platform['info'].get('version')} + jsm {jsm['info'].get('version')}",
        "description": "Generated by contract/overlay.py from ../shared/contracts; do not edit.",
    }
    merged.pop("x-atlassian-narrative", None)
    return merged, renames


def operation_index(doc):
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS and isinstance(op, dict):
                ops.append({"method": method.upper(), "path": path, "operationId": op.get("operationId", "")})
    return ops


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contracts", default=os.environ.get("CONTRACTS_DIR") or os.path.join(ROOT, "..", "shared", "contracts"))
    ap.add_argument("--overlay", default=os.path.join(HERE, "overlay.json"))
    ap.add_argument("--out", default=os.path.join(HERE, "build"))
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()

    with open(args.overlay, encoding="utf-8") as f:
        overlay = json.load(f)
    docs = {}
    for key, fname in overlay["x-documents"].items():
        path = os.path.join(args.contracts, fname)
        try:
            with open(path, encoding="utf-8") as f:
                docs[key] = json.load(f)
        except OSError as e:
            sys.exit(f"overlay: cannot read {path}: {e.strerror}")

    report = []
    try:
        for i, action in enumerate(overlay["actions"], 1):
            doc = action.get("x-document")
            if doc not in docs:
                raise OverlayError(f"action {i}: x-document must be one of {sorted(docs)}")
            for field in ("x-patch", "x-why", "x-refs"):
                if not action.get(field):
                    raise OverlayError(f"action {i} ({action.get('target')}): missing {field}")
            try:
                n = apply_action(docs[doc], action)
            except OverlayError as e:
                raise OverlayError(f"action {i} [{action['x-patch']}]: {e}") from None
            report.append((action["x-patch"], doc, action["target"], n))
        merged, renames = merge(docs["jsm"], docs["platform"])
    except OverlayError as e:
        sys.exit(f"overlay: {e}")

    os.makedirs(args.out, exist_ok=True)
    outputs = {
        "jsm.patched.json": docs["jsm"],
        "platform.patched.json": docs["platform"],
        "merged.openapi.json": merged,
        "operations.json": operation_index(merged),
    }
    for name, value in outputs.items():
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            json.dump(value, f, indent=1 if name == "operations.json" else None, ensure_ascii=False)
    if not args.quiet:
        for patch, doc, target, n in report:
            print(f"overlay: {patch:38} {doc:8} {n:4} node(s)  {target}")
        print(f"overlay: merged {len(merged['paths'])} paths; renamed {len(renames)} JSM components "
              f"with prefix {JSM_PREFIX} -> {os.path.relpath(os.path.join(args.out, 'merged.openapi.json'), ROOT)}")


if __name__ == "__main__":
    main()
