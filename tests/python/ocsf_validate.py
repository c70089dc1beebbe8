#!/usr/bin/env python3
"""Validate JSON Lines of OCSF events against the official OCSF 1.1.0 schema (profiles cloud+datetime).

Each row's class is chosen by its ``class_uid``; the JSON Schema comes from the ``ocsf-json-schema`` package.

Usage:
    python ocsf_validate.py [FILE...]            # JSON Lines; no FILE or "-" reads stdin
    python ocsf_validate.py --explain-class 6003 # required / at-least-one rules of a class

Exit status: 0 all rows valid (and at least one row), 1 some row invalid,
2 usage, I/O or JSON parse error, or no rows at all.

Offline: the schema is the compiled export ``ocsf_json_schema/ocsf/1.1.0.json`` shipped in the package.
The generated schemas are JSON Schema draft 2020-12 with ``additionalProperties: false`` on every object
that declares attributes, ``enum``/``const`` for every enumerated ``*_id``, ``pattern`` for OCSF regex
types (datetime_t, ip_t, ...) and ``anyOf``/``oneOf`` of ``required`` for OCSF ``at_least_one``/``just_one``.
"""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from functools import lru_cache

from jsonschema.validators import validator_for
from ocsf_json_schema import OcsfJsonSchema, OcsfJsonSchemaEmbedded, get_ocsf_schema

OCSF_VERSION = "1.1.0"
PROFILES = ["cloud", "datetime"]
MAX_REPORTED_ROWS = 20
MAX_MESSAGE = 300


@lru_cache(maxsize=1)
def _ocsf() -> OcsfJsonSchemaEmbedded:
    return OcsfJsonSchemaEmbedded(OcsfJsonSchema(get_ocsf_schema(OCSF_VERSION)))


def class_name(name_or_uid: str | int) -> str:
    """Schema key of a class given its uid (6003), key (api_activity) or caption ("API Activity")."""
    text = str(name_or_uid).strip()
    if text.isdigit():
        return _ocsf().lookup_class_name_from_uid(int(text))
    return text.lower().replace(" ", "_")


@lru_cache(maxsize=None)
def class_schema(name: str) -> dict:
    """Self-contained JSON Schema (nested objects under $defs) for one class, with our profiles."""
    return _ocsf().get_class_schema(name, PROFILES)


def _uses_format(node) -> bool:
    if isinstance(node, dict):
        return isinstance(node.get("format"), str) or any(_uses_format(v) for v in node.values())
    return isinstance(node, list) and any(_uses_format(v) for v in node)


@lru_cache(maxsize=None)
def class_validator(name: str):
    schema = class_schema(name)
    cls = validator_for(schema)  # draft 2020-12, from the schema's own "$schema"
    cls.check_schema(schema)
    # The generator expresses OCSF types with "pattern", not "format"; only check formats if present.
    checker = cls.FORMAT_CHECKER if _uses_format(schema) else None
    return cls(schema, format_checker=checker)


def _message(err) -> str:
    """jsonschema's message, made readable for OCSF at_least_one / just_one constraints."""
    subs = err.schema.get(err.validator) if err.validator in ("anyOf", "oneOf") else None
    if subs and all(set(s) == {"required"} and len(s["required"]) == 1 for s in subs):
        names = [s["required"][0] for s in subs]
        present = [n for n in names if isinstance(err.instance, dict) and n in err.instance]
        if err.validator == "anyOf":
            return f"needs at least one of {names} (OCSF at_least_one)"
        return f"needs exactly one of {names}, has {present} (OCSF just_one)"
    if err.validator in ("pattern", "maxLength"):  # don't echo huge regexes / strings
        value, rule = _clip(repr(err.instance), 80), _clip(str(err.validator_value), 80)
        return f"{value} does not match OCSF pattern {rule}" if err.validator == "pattern" \
            else f"string of length {len(err.instance)} is longer than maxLength {rule}: {value}"
    return _clip(err.message, MAX_MESSAGE)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def validate_row(row) -> tuple[str, list[tuple[str, str]]]:
    """Return (class label, [(json path, message), ...]); an empty list means the row is valid."""
    if not isinstance(row, dict):
        return "?", [("$", f"row is not a JSON object but {type(row).__name__}")]
    uid = row.get("class_uid")
    try:
        # Select the class even from a mistyped uid ("6003"), so the type error itself gets reported.
        name = class_name(int(uid)) if not isinstance(uid, bool) else None
    except (TypeError, ValueError):
        name = None
    if name is None:
        return "?", [("$.class_uid", f"cannot select an OCSF {OCSF_VERSION} class from class_uid {uid!r}")]
    errors = sorted(class_validator(name).iter_errors(row), key=lambda e: (e.json_path, e.message))
    return f"{uid} {name}", [(e.json_path, _message(e)) for e in errors]


def _read_rows(paths: list[str]):
    """Yield (source, line number, parsed JSON) for each non-blank line; raises OSError / ValueError."""
    for path in paths or ["-"]:
        with (nullcontext(sys.stdin) if path == "-" else open(path, encoding="utf-8")) as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield path, lineno, json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{lineno}: invalid JSON: {e}") from None


def validate_files(paths: list[str], out=sys.stdout) -> int:
    total = invalid = 0
    report: list[str] = []
    try:
        for path, lineno, row in _read_rows(paths):
            total += 1
            label, errors = validate_row(row)
            if not errors:
                continue
            invalid += 1
            if invalid <= MAX_REPORTED_ROWS:
                meta = row.get("metadata") if isinstance(row, dict) else None
                muid = meta.get("uid") if isinstance(meta, dict) else None
                report.append(f"{path}:{lineno}: class {label}, metadata.uid {muid!r}: {len(errors)} error(s)")
                report.extend(f"    {p}: {m}" for p, m in errors)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"validated {total} rows: {total - invalid} valid, {invalid} invalid", file=out)
    for line in report:
        print(line, file=out)
    if invalid > MAX_REPORTED_ROWS:
        print(f"... {invalid - MAX_REPORTED_ROWS} more invalid rows not shown", file=out)
    if total == 0:
        print("error: no rows to validate", file=sys.stderr)
        return 2
    return 1 if invalid else 0


def _rules(schema: dict) -> list[str]:
    out = []
    if schema.get("required"):
        out.append(f"required: {schema['required']}")
    for key, label in (("anyOf", "at_least_one"), ("oneOf", "just_one")):
        if key in schema:
            out.append(f"{label}: {[s['required'][0] for s in schema[key]]}")
    return out


def explain_class(name_or_uid: str, out=sys.stdout) -> int:
    try:
        name = class_name(name_or_uid)
        schema = class_schema(name)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    props = schema["properties"]
    raw_attrs = _ocsf().schema.schema["classes"][name]["attributes"]  # the export, for "recommended"
    recommended = sorted(a for a, d in raw_attrs.items() if a in props and d.get("requirement") == "recommended")
    print(f"class {name} ({schema['title']}), OCSF {OCSF_VERSION}, profiles {PROFILES}", file=out)
    print(f"  additionalProperties: {schema['additionalProperties']}", file=out)
    for rule in _rules(schema):
        print(f"  {rule}", file=out)
    print(f"  recommended (not enforced): {recommended}", file=out)
    for attr, p in sorted(props.items()):
        if "const" in p or "enum" in p:
            print(f"  {attr}: {'const ' + repr(p['const']) if 'const' in p else 'enum ' + repr(p['enum'])}", file=out)
    refs = {a: (p.get("$ref") or p.get("items", {}).get("$ref", "")).rsplit("/", 1)[-1] for a, p in props.items()}
    print("  object attributes: " + ", ".join(f"{a}{'[]' if props[a].get('type') == 'array' else ''}->{o}"
                                              for a, o in sorted(refs.items()) if o), file=out)
    print("objects reachable from this class (only those with rules):", file=out)
    for obj, sub in sorted(schema.get("$defs", {}).items()):
        rules = _rules(sub)
        if rules:
            print(f"  {obj}: " + "; ".join(rules), file=out)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="JSON Lines files ('-' or none = stdin)")
    ap.add_argument("--explain-class", metavar="NAME_OR_UID", help="print the rules of one class and exit")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    if args.explain_class:
        return explain_class(args.explain_class)
    return validate_files(args.files)


if __name__ == "__main__":
    sys.exit(main())
