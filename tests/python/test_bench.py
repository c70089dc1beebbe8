"""bench/e2e.py end to end on the repository's samples: every tool reads the same records
and the figures it reports are consistent. Nothing here is timed; speed is what the
benchmark reports, not what a test asserts."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_e2e_bench_reports_floor_trailhouse_and_duckdb_on_the_same_records(tmp_path: Path, trailhouse_bin):
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench/e2e.py"), "--bin", trailhouse_bin, "--corpus", str(ROOT / "samples"),
         "--work", str(tmp_path / "work"), "--cores", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    figures = json.loads(out.read_text())
    runs = {(r["tool"], r["threads"]): r for r in figures["runs"]}
    assert set(runs) == {(t, n) for t in ("floor", "trailhouse", "duckdb") for n in (1, 2)}
    # samples/ holds 601 CloudTrail records, one an exact duplicate: the floor reads 601,
    # trailhouse and the DuckDB peer both write 600 rows.
    for (tool, _), r in runs.items():
        assert r["records"] == (601 if tool == "floor" else 600), r
        assert r["rss"] > 0 and r["secs"] > 0
    # Both trailhouse runs wrote the same lake (replay is deterministic).
    assert runs[("trailhouse", 1)]["out_bytes"] == runs[("trailhouse", 2)]["out_bytes"] > 0
    assert runs[("duckdb", 1)]["out_bytes"] > 0
    # Uncompressed bytes are the floor's count of the decompressed JSON.
    assert figures["bytes_uncompressed"] > figures["bytes_stored"] > 0
    for k in ("trailhouse_over_floor_time_1", "trailhouse_over_duckdb_speed_2", "trailhouse_scaling",
              "output_over_gzip_input"):
        assert figures["ratios"][k] > 0, k
    # The table the README quotes.
    assert "| trailhouse | 1 core |" in proc.stdout and "| duckdb | 2 cores |" in proc.stdout
