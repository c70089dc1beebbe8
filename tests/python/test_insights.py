"""`trailhouse insights` end to end: a generated trail with known bursts → replay → insights.

Checks against the generator's manifest (not against trailhouse's own output): every injected
burst is found with its start/end minute, type and attributions; the Detection Finding rows are
valid OCSF 1.1.0; a rerun adds nothing; the CloudTrail Insights files it writes have the real
record format and, delivered like a trail's, are ingested into the same table; an S3 lake (moto)
gives the same insights as the local one.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ocsf_validate  # noqa: E402
from test_lake_ocsf import to_ocsf  # noqa: E402

FINDINGS = "ext/CLOUD_TRAIL_INSIGHTS_DETECTION_FINDING/1.0"


def run(bin_: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([bin_, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TRAILHOUSE_LOG": "error", **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def finding_rows(lake: Path) -> list[dict]:
    rows = []
    for f in sorted((lake / FINDINGS).rglob("*.parquet")):
        for row in pq.read_table(f).to_pylist():
            rows.append({k: to_ocsf(v, k) for k, v in row.items() if v is not None
                         and k not in {"region", "accountid"}})
    return rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory, trailhouse_bin):
    root = tmp_path_factory.mktemp("insights")
    run(trailhouse_bin, "generate", "--insights-demo", "--out", str(root / "trail"), "--start", "2024-03-04",
        "--days", "9", "--seed", "3", "--manifest", str(root / "manifest.json"))
    run(trailhouse_bin, "replay", str(root / "trail"), "--lake", str(root / "lake"))
    out = run(trailhouse_bin, "insights", "--lake", str(root / "lake"), "--records", str(root / "records"),
              "--summary", str(root / "summary.json"))
    return root, json.loads((root / "manifest.json").read_text()), out.stdout


def test_every_injected_burst_is_found_exactly(demo):
    root, manifest, stdout = demo
    bursts = manifest["bursts"]
    assert len(bursts) == 4
    summary = json.loads((root / "summary.json").read_text())
    assert summary["insights"] == len(bursts), stdout
    rows = finding_rows(root / "lake")
    starts = {(r["api"]["operation"], r["finding_info"]["types"][0]): r for r in rows if r["activity_id"] == 1}
    ends = {(r["api"]["operation"], r["finding_info"]["types"][0]): r for r in rows if r["activity_id"] == 3}
    for b in bursts:
        key = (b["eventName"], b["insightType"])
        assert key in starts and key in ends, (key, stdout)
        s, e = starts[key], ends[key]
        assert s["finding_info"]["uid"] == e["finding_info"]["uid"]
        assert s["time_dt"] == b["start"] and e["time_dt"] == b["end"]
        assert s["api"]["service"]["name"] == b["eventSource"]
        assert s["evidences"][0]["actor"]["user"]["uid"] == b["userIdentityArn"]
        raw = json.loads(e["raw_data"])
        attrs = {a["attribute"]: a for a in raw["insightDetails"]["insightContext"]["attributions"]}
        assert attrs["userAgent"]["insight"][0]["value"] == b["userAgent"]
        assert attrs["errorCode"]["insight"][0]["value"] == (b["errorCode"] or "null")
        assert s["metadata"]["product"]["name"] == "trailhouse insights"
        assert s["cloud"]["account"]["uid"] == b["account"]


def test_finding_rows_are_valid_ocsf(demo):
    root, _, _ = demo
    rows = finding_rows(root / "lake")
    assert len(rows) == 8
    bad = [(r["metadata"]["uid"], e) for r in rows for _, e in [ocsf_validate.validate_row(r)] if e]
    assert not bad, bad[:3]
    assert {r["class_uid"] for r in rows} == {2004}


def test_records_have_cloudtrails_format(demo):
    root, manifest, _ = demo
    files = sorted((root / "records").rglob("*.json.gz"))
    assert len(files) == len(manifest["bursts"])
    for f in files:
        assert "/CloudTrail-Insight/us-east-1/" in str(f) and "_CloudTrail-Insight_us-east-1_" in f.name
        recs = json.loads(gzip.decompress(f.read_bytes()))["Records"]
        assert [r["insightDetails"]["state"] for r in recs] == ["Start", "End"]
        for r in recs:
            assert r["eventType"] == "AwsCloudTrailInsight" and r["eventCategory"] == "Insight"
            assert r["sharedEventID"] == recs[0]["sharedEventID"] and r["eventID"] != r["sharedEventID"]
            st = r["insightDetails"]["insightContext"]["statistics"]
            assert st["baselineDuration"] == 10080 and st["insightDuration"] >= 1
            assert st["insight"]["average"] > st["baseline"]["average"]
            attrs = r["insightDetails"]["insightContext"]["attributions"]
            assert [a["attribute"] for a in attrs] == ["userIdentityArn", "userAgent", "errorCode"]
            assert all(len(a["insight"]) <= 5 and len(a["baseline"]) <= 5 for a in attrs)


def test_a_rerun_gives_the_same_insights_not_more(demo, trailhouse_bin):
    root, _, stdout = demo
    before = {p.relative_to(root): p.read_bytes() for p in (root / "lake" / FINDINGS).rglob("*.parquet")}
    again = run(trailhouse_bin, "insights", "--lake", str(root / "lake"))
    after = {p.relative_to(root): p.read_bytes() for p in (root / "lake" / FINDINGS).rglob("*.parquet")}
    assert again.stdout == stdout
    assert after.keys() == before.keys()


def test_delivered_insights_files_are_ingested_beside_ours(demo, trailhouse_bin, tmp_path):
    root, manifest, _ = demo
    lake = tmp_path / "lake"
    out = run(trailhouse_bin, "replay", str(root / "records"), "--lake", str(lake), "--summary",
              str(tmp_path / "s.json"))
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["findings_written"] == 2 * len(manifest["bursts"]), out.stderr
    assert s["objects_quarantined"] == 0
    rows = finding_rows(lake)
    assert len(rows) == 2 * len(manifest["bursts"])
    assert {r["metadata"]["product"]["name"] for r in rows} == {"CloudTrail"}
    bad = [e for r in rows for _, e in [ocsf_validate.validate_row(r)] if e]
    assert not bad, bad[:3]


def test_a_bad_insights_file_is_quarantined_with_its_reason(trailhouse_bin, tmp_path):
    trail = tmp_path / "trail/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2024/03/11"
    trail.mkdir(parents=True)
    bad = trail / "111122223333_CloudTrail-Insight_us-east-1_20240311T0200Z_bad.json.gz"
    bad.write_bytes(gzip.compress(b'{"Records":[{"eventType":"AwsCloudTrailInsight","awsRegion":"../x"}]}'))
    run(trailhouse_bin, "replay", str(tmp_path / "trail"), "--lake", str(tmp_path / "lake"),
        "--summary", str(tmp_path / "s.json"))
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["objects_quarantined"] == 1 and s["findings_written"] == 0
    notes = list((tmp_path / "lake").rglob("*.reason.json"))
    assert len(notes) == 1 and "record 0" in notes[0].read_text()
    assert not (tmp_path / "lake" / FINDINGS).exists()


def test_an_s3_lake_gives_the_same_insights(demo, emu, trailhouse_bin):
    root, _, stdout = demo
    bucket = emu.bucket("lake")
    emu.upload_tree(bucket, root / "lake")
    for key in emu.list_keys(bucket, FINDINGS):
        emu.s3.delete_object(Bucket=bucket, Key=key)
    assert not emu.list_keys(bucket, FINDINGS)
    out = run(trailhouse_bin, "insights", "--lake", f"s3://{bucket}/", env=emu.env())
    assert out.stdout == stdout
    keys = emu.list_keys(bucket, FINDINGS)
    local = sorted(str(p.relative_to(root / "lake")) for p in (root / "lake" / FINDINGS).rglob("*.parquet"))
    assert sorted(keys) == local
