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


def test_mixed_trail_files_replay_into_one_file_per_partition(tmp_path: Path, trailhouse_bin):
    """bench/mixed_trail.py (the Memory section's mixed inputs): its files are CloudTrail that
    `replay` reads whole, past the 64 partitions a chunk builds in Arrow (the rest waits as JSON),
    and with room in memory writes one file per partition."""
    key = "AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/01/111111111111_CloudTrail_us-east-1_20240301T0000Z_mix.json.gz"
    for name, args in [("mixed", ["2e6", "30", "4", "2"]), ("adversarial", ["--adversarial", "2"])]:
        trail = tmp_path / name
        cmd = [sys.executable, str(ROOT / "bench/mixed_trail.py")]
        cmd += [args[0], str(trail / key), *args[1:]] if args[0] == "--adversarial" else [str(trail / key), *args]
        gen = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert gen.returncode == 0, gen.stderr[-2000:]
        records = int(gen.stdout.split()[0])
        lake = tmp_path / f"{name}-lake"
        p = subprocess.run([trailhouse_bin, "replay", str(trail), "--lake", str(lake), "--log-format", "json"],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-4000:]
        files = sorted(lake.rglob("*.parquet"))
        partitions = {f.parent for f in files}
        print(f"{name}: {records} records, {len(files)} files, {len(partitions)} partitions")
        assert len(partitions) > 64, f"{name}: only {len(partitions)} partitions"
        assert len(files) == len(partitions), f"{name}: {len(files)} files for {len(partitions)} partitions"
        rows = sum(pq_rows(f) for f in files)
        assert rows == records, f"{name}: {rows} rows for {records} records"


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows
