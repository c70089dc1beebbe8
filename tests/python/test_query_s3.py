"""`trailhouse query --lake s3://…` against the moto S3 server of conftest (127.0.0.1 only, never
real AWS): a small lake is replayed locally, uploaded under a key prefix, and the same SQL run on
the local folder and on the bucket must give the same rows, in CSV and in JSON Lines. Also: a
partition filter and a sample query from schemas/queries, and a clear error for a bucket prefix
that holds no lake.

Run: TRAILHOUSE_BIN=... $VENV/bin/python -m pytest -p no:cacheprovider -q tests/python/test_query_s3.py
"""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

import emulator as E

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def query_bin(trailhouse_bin) -> str:
    """The binary, provided it has `query`; fail, never skip."""
    p = subprocess.run([trailhouse_bin, "query", "--help"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0 or "--lake" not in p.stdout:
        pytest.fail(f"`{trailhouse_bin} query --help` failed: no query command?\n{p.stderr[-2000:]}",
                    pytrace=False)
    return trailhouse_bin


def run_query(bin_: str, lake: str, sql: str, fmt: str, env: dict | None = None,
              check: bool = True) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "TRAILHOUSE_LOG": "error", **(env or {})}
    p = subprocess.run([bin_, "query", "--lake", lake, "--format", fmt, sql],
                       capture_output=True, text=True, timeout=120, env=full_env)
    if check:
        assert p.returncode == 0, f"query failed ({p.returncode}) on {lake}: {sql}\n{p.stderr[-3000:]}"
    return p


@pytest.fixture(scope="module")
def lakes(tmp_path_factory, emu, query_bin):
    """(local lake folder, s3:// URI of the same lake uploaded under a prefix)."""
    tmp = tmp_path_factory.mktemp("query")
    trail, lake = tmp / "trail", tmp / "lake"
    E.generate(trail, seed=5, files=8, records_per_file=60)
    p = subprocess.run([query_bin, "replay", str(trail), "--lake", str(lake), "--threads", "1"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TRAILHOUSE_LOG": "error"})
    assert p.returncode == 0, p.stderr[-3000:]
    bucket = emu.bucket("query-lake")
    keys = emu.upload_tree(bucket, lake)
    assert any(k.endswith(".parquet") for k in keys)
    # Keys under a prefix, as a lake inside a shared bucket.
    for k in list(keys):
        emu.s3.copy_object(Bucket=bucket, Key=f"security/lake/{k}", CopySource={"Bucket": bucket, "Key": k})
    return lake, f"s3://{bucket}/security/lake"


SQL = ("SELECT metadata.uid AS id, api.operation AS op, actor.\"user\".uid AS who, status, "
       "region, accountid, eventday FROM cloudtrail ORDER BY id")


def test_s3_lake_csv_and_json_equal_local(lakes, emu, query_bin):
    local, s3 = lakes
    env = emu.env()
    want = list(csv.DictReader(io.StringIO(run_query(query_bin, str(local), SQL, "csv").stdout)))
    assert len(want) > 100
    got = list(csv.DictReader(io.StringIO(run_query(query_bin, s3, SQL, "csv", env).stdout)))
    assert got == want

    lines = run_query(query_bin, s3, SQL, "json", env).stdout.splitlines()
    rows = [json.loads(l) for l in lines]
    assert [r["id"] for r in rows] == [r["id"] for r in want]
    # Nulls are explicit in JSON; empty in CSV.
    assert [{k: ("" if v is None else v) for k, v in r.items()} for r in rows] == want


def test_s3_partition_filter_and_sample(lakes, emu, query_bin):
    local, s3 = lakes
    env = emu.env()
    day_sql = ("SELECT eventday, count(*) AS n FROM api_activity "
               "WHERE eventday = (SELECT min(eventday) FROM api_activity) GROUP BY eventday")
    a = run_query(query_bin, s3, day_sql, "json", env).stdout
    b = run_query(query_bin, str(local), day_sql, "json").stdout
    assert a == b and json.loads(a.splitlines()[0])["n"] > 0
    sample = (ROOT / "schemas/queries/top_users_and_roles.sql").read_text()
    # The sample's window is relative to today; the corpus is of 2024: widen it.
    sample = sample.replace("current_date - INTERVAL '30' DAY", "DATE '2000-01-01'")
    a = run_query(query_bin, s3, sample, "json-array", env).stdout
    b = run_query(query_bin, str(local), sample, "json-array").stdout
    assert a == b and len(json.loads(a)) > 0


def test_s3_errors_are_clear(lakes, emu, query_bin):
    _, s3 = lakes
    env = emu.env()
    p = run_query(query_bin, s3 + "-nothing-here", "SELECT 1", "csv", env, check=False)
    assert p.returncode != 0 and "no tables" in p.stderr, p.stderr
    p = run_query(query_bin, s3, "SELEC oops", "csv", env, check=False)
    assert p.returncode != 0 and "error" in p.stderr.lower() and "panick" not in p.stderr, p.stderr
