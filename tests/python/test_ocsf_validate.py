"""Tests for ocsf_validate.py: the official OCSF 1.1.0 goldens pass and real mapping mistakes are caught.

Run: VENV=$(.ci/python-env.sh | tail -1); "$VENV/bin/python" -m pytest -q tests/python
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "ocsf_validate.py"
sys.path.insert(0, str(HERE))
import ocsf_validate  # noqa: E402

# The published Security Lake samples, vendored with the Rust golden tests.
GOLDEN_DIR = HERE.parents[1] / "crates" / "ocsf" / "tests" / "golden"
GOLDENS = {
    6003: GOLDEN_DIR / "generic_api_activity.ocsf",
    3002: GOLDEN_DIR / "authentication.ocsf",
    3001: GOLDEN_DIR / "account_change.ocsf",
}


def golden(class_uid: int) -> dict:
    path = GOLDENS[class_uid]
    assert path.is_file(), f"golden sample missing: {path} (set TRAILHOUSE_SHARED to the shared/ folder)"
    return json.loads(path.read_text())  # pretty-printed, one object per file


def run_cli(tmp_path: Path, rows: list, *args: str, raw: str | None = None) -> subprocess.CompletedProcess:
    """Write rows as JSON Lines (or `raw` text) and run the validator CLI on that file."""
    f = tmp_path / "rows.jsonl"
    f.write_text(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in rows))
    return subprocess.run([sys.executable, str(SCRIPT), *args, str(f)], capture_output=True, text=True)


def errors_of(row: dict) -> list[tuple[str, str]]:
    return ocsf_validate.validate_row(row)[1]


# --- goldens ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("class_uid", sorted(GOLDENS))
def test_golden_is_valid(class_uid):
    assert errors_of(golden(class_uid)) == []


def test_cli_accepts_all_goldens(tmp_path):
    res = run_cli(tmp_path, [golden(uid) for uid in sorted(GOLDENS)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[0] == "validated 3 rows: 3 valid, 0 invalid"


# --- real errors are rejected ----------------------------------------------------------------------

def test_class_uid_of_wrong_type_is_rejected(tmp_path):
    row = golden(6003)
    row["class_uid"] = "6003"
    res = run_cli(tmp_path, [row])
    assert res.returncode == 1
    assert "validated 1 rows: 0 valid, 1 invalid" in res.stdout
    assert "$.class_uid: '6003' is not of type 'integer'" in res.stdout
    # The report names the line, the class and metadata.uid.
    assert "rows.jsonl:1: class 6003 api_activity, metadata.uid '71c88be9-ea5c-43c7-8c82-example'" in res.stdout


@pytest.mark.parametrize("class_uid, attr", [(6003, "time"), (6003, "cloud"), (3001, "user"), (3002, "type_uid")])
def test_missing_required_attribute_is_rejected(class_uid, attr):
    row = golden(class_uid)
    del row[attr]
    assert ("$", f"'{attr}' is a required property") in errors_of(row)


def test_src_endpoint_with_only_domain_is_rejected(tmp_path):
    row = golden(6003)
    row["src_endpoint"] = {"domain": "cloudformation.amazonaws.com"}
    (path, msg), = errors_of(row)
    assert path == "$.src_endpoint" and "at least one of" in msg and "'hostname'" in msg
    assert run_cli(tmp_path, [row]).returncode == 1
    row["src_endpoint"] = {"hostname": "cloudformation.amazonaws.com"}  # the valid way to say it
    assert errors_of(row) == []


def test_actor_user_with_only_type_is_rejected():
    row = golden(6003)
    row["actor"] = {"user": {"type": "AWSService"}}
    assert errors_of(row) == [("$.actor.user", "needs at least one of ['account', 'name', 'uid'] (OCSF at_least_one)")]


@pytest.mark.parametrize("mutate, path", [
    (lambda r: r.update(extra_field=1), "$"),                                  # additionalProperties: false
    (lambda r: r["cloud"].update(extra_field=1), "$.cloud"),                   # ... on nested objects too
    (lambda r: r.update(type_uid=600305), "$.type_uid"),                       # enum
    (lambda r: r.update(time_dt="2023-09-21 22:22:52Z"), "$.time_dt"),       # datetime_t pattern needs 'T'
    (lambda r: r.update(dst_endpoint=None), "$.dst_endpoint"),                 # null is not an object
    (lambda r: r.update(unmapped="x"), "$.unmapped"),                          # unmapped must be an object
    (lambda r: r["metadata"]["product"].pop("vendor_name"), "$.metadata.product"),
])
def test_other_schema_violations_are_rejected(mutate, path):
    row = golden(6003)
    mutate(row)
    assert path in [p for p, _ in errors_of(row)]


def test_unknown_class_uid_is_an_invalid_row(tmp_path):
    res = run_cli(tmp_path, [{"class_uid": 9999}])
    assert res.returncode == 1 and "cannot select an OCSF 1.1.0 class" in res.stdout


def test_at_most_20_invalid_rows_are_printed(tmp_path):
    bad = golden(6003)
    bad["severity_id"] = 7
    res = run_cli(tmp_path, [golden(3001)] + [bad] * 25)
    assert res.returncode == 1
    assert res.stdout.splitlines()[0] == "validated 26 rows: 1 valid, 25 invalid"
    assert res.stdout.count("$.severity_id") == 20 and "5 more invalid rows not shown" in res.stdout


# --- usage / input errors exit 2 -------------------------------------------------------------------

def test_empty_input_exits_2(tmp_path):
    assert run_cli(tmp_path, [], raw="").returncode == 2
    assert run_cli(tmp_path, [], raw="\n  \n").returncode == 2
    res = subprocess.run([sys.executable, str(SCRIPT)], input="", capture_output=True, text=True)
    assert res.returncode == 2 and "no rows" in res.stderr


def test_bad_json_and_missing_file_exit_2(tmp_path):
    res = run_cli(tmp_path, [], raw=json.dumps(golden(6003)) + "\n{not json\n")
    assert res.returncode == 2 and "rows.jsonl:2: invalid JSON" in res.stderr
    res = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "absent.jsonl")], capture_output=True)
    assert res.returncode == 2


def test_stdin_is_read(tmp_path):
    res = subprocess.run([sys.executable, str(SCRIPT), "-"], input=json.dumps(golden(3002)) + "\n",
                         capture_output=True, text=True)
    assert res.returncode == 0 and "validated 1 rows: 1 valid, 0 invalid" in res.stdout


# --- --explain-class ------------------------------------------------------------------------------

def test_explain_class_shows_rules():
    res = subprocess.run([sys.executable, str(SCRIPT), "--explain-class", "6003"], capture_output=True, text=True)
    assert res.returncode == 0
    out = res.stdout
    assert "required: ['activity_id', 'actor', 'api', 'category_uid', 'class_uid', 'cloud', 'metadata', " \
           "'severity_id', 'src_endpoint', 'time', 'type_uid']" in out
    assert "  user: at_least_one: ['account', 'name', 'uid']" in out
    assert "  network_endpoint: at_least_one: ['ip', 'uid', 'name', 'hostname', 'svc_name', " in out
    by_name = subprocess.run([sys.executable, str(SCRIPT), "--explain-class", "API Activity"],
                             capture_output=True, text=True)
    assert by_name.stdout == out
    assert subprocess.run([sys.executable, str(SCRIPT), "--explain-class", "nope"]).returncode == 2

