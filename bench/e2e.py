#!/usr/bin/env python3
"""End-to-end benchmark of trailhouse, with its floor and a peer, in one run.

On the same CloudTrail files (generated if the corpus folder does not exist), for one
core and for all cores, each run in its own process:

- floor       `trailhouse floor`: gunzip + record reader + a full JSON parse of each
              record, nothing else: the least any tool must do with these files;
- trailhouse  `trailhouse replay` into a fresh local lake (parse, map to OCSF, sorted
              zstd Parquet in the Security Lake layout);
- duckdb      `bench/duckdb_peer.py`: the same job done by DuckDB as far as SQL can
              express it (see that script for what it maps).

"One core" pins the process to one CPU with `taskset -c 0` (trailhouse's replay
has a reader, an aggregator and an encoder thread even with `--threads 1`, so
pinning, not the flag, is what makes it one core). Peak RSS is the child's
`ru_maxrss` from wait4. MB/s are megabytes (10^6) of uncompressed JSON per second of
wall time, with the byte count taken from the floor run for every row.

Output size is also compared with the same rows written with GZIP, the codec of
Security Lake's own CloudTrail files (`gzip_codec_bytes`).

Prints a Markdown table and the ratios the README quotes, and with --json writes
every figure. Timings on a shared machine are noisy: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GENERATE = (
    "--seed 21 --accounts 8 --days 3 --files 240 --records-per-file 1000 --large-payloads"
)


def run_child(cmd: list[str], cores: list[int] | None) -> tuple[float, int, str]:
    """Runs cmd to completion; returns (wall seconds, peak RSS bytes, stdout)."""
    if cores is not None:
        cmd = ["taskset", "-c", ",".join(map(str, cores))] + cmd
    with tempfile.TemporaryFile(mode="w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        # Not communicate()/wait(): they reap the child and its rusage with it. Drain
        # stdout (stderr goes to a file, so neither pipe can fill), then wait4 for the
        # rusage of exactly this child.
        out = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read()[-4000:]}")
    return wall, usage.ru_maxrss * 1024, out


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def parquet_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.parquet") if p.is_file())


def gzip_codec_bytes(lake: Path) -> int:
    """Bytes of the lake's files rewritten by pyarrow with GZIP (zlib level 6), the
    codec of Security Lake's own CloudTrail files (parquet-mr; observed in AWS's
    published samples): the same rows in the same files and order, dictionary-encoded,
    1 MB pages, no embedded Arrow schema (parquet-mr writes none). A stand-in for "Security Lake's output for the same records", which
    this machine cannot produce: its writer's other choices are not known."""
    import pyarrow.parquet as pq

    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "f.parquet"
        for f in sorted(lake.rglob("*.parquet")):
            src = pq.ParquetFile(f)
            pq.write_table(src.read(), out, compression="gzip", compression_level=6,
                           use_dictionary=True,
                           row_group_size=max(src.metadata.num_rows, 1),
                           data_page_size=1 << 20, store_schema=False)
            total += out.stat().st_size
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("TRAILHOUSE_BIN", "target/release/trailhouse"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/trailhouse-bench"))
    ap.add_argument("--corpus", type=Path, help="CloudTrail files (default: WORK/corpus, generated)")
    ap.add_argument("--generate", default=DEFAULT_GENERATE, help="`trailhouse generate` flags")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="'all cores' (default: all)")
    ap.add_argument("--no-peer", action="store_true", help="leave DuckDB out")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()

    bin_ = str(Path(args.bin).resolve())
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus or args.work / "corpus"
    if not corpus.exists():
        print(f"generating {corpus} ({args.generate})", file=sys.stderr)
        subprocess.run([bin_, "generate", "--out", str(corpus), *args.generate.split()], check=True)
    gz_bytes = dir_bytes(corpus)

    # Warm the page cache so the first measured run does not pay for the disk.
    run_child([bin_, "floor", str(corpus), "--threads", str(args.cores)], None)

    settings = [("1 core", 1, [0]), (f"{args.cores} cores", args.cores, None)]
    runs: list[dict] = []
    for label, threads, cores in settings:
        wall, rss, out = run_child([bin_, "floor", str(corpus), "--threads", str(threads)], cores)
        floor = json.loads(out)
        runs.append(dict(tool="floor", cores=label, threads=threads, secs=wall, rss=rss,
                         records=floor["records_read"], out_bytes=0))
        uncompressed = floor["bytes_uncompressed"]

        lake = args.work / f"lake-{threads}"
        shutil.rmtree(lake, ignore_errors=True)
        summary_file = args.work / f"summary-{threads}.json"
        wall, rss, _ = run_child([bin_, "replay", str(corpus), "--lake", str(lake),
                                  "--threads", str(threads), "--summary", str(summary_file)], cores)
        s = json.loads(summary_file.read_text())
        runs.append(dict(tool="trailhouse", cores=label, threads=threads, secs=wall, rss=rss,
                         records=sum(s["rows_written"].values()), out_bytes=parquet_bytes(lake)))

        if not args.no_peer:
            out_dir = args.work / f"duckdb-{threads}"
            shutil.rmtree(out_dir, ignore_errors=True)
            wall, rss, out = run_child([sys.executable, str(ROOT / "bench/duckdb_peer.py"),
                                        "--input", str(corpus), "--out", str(out_dir),
                                        "--threads", str(threads)], cores)
            peer = json.loads(out.strip().splitlines()[-1])
            runs.append(dict(tool="duckdb", cores=label, threads=threads, secs=wall, rss=rss,
                             records=peer["records"], out_bytes=peer["output_bytes"],
                             version=peer.get("duckdb_version")))

    for r in runs:
        r["mb_per_sec"] = uncompressed / 1e6 / r["secs"]
        r["records_per_sec"] = r["records"] / r["secs"]

    def find(tool: str, threads: int) -> dict | None:
        return next((r for r in runs if r["tool"] == tool and r["threads"] == threads), None)

    print(f"corpus: {corpus} — {uncompressed / 1e6:.0f} MB of JSON, {gz_bytes / 1e6:.0f} MB as "
          f"stored, {find('floor', 1)['records']} records\n")
    print("| run | cores | MB/s | records/s | output / JSON | peak RSS |")
    print("|---|---|---|---|---|---|")
    for r in runs:
        out = f"{r['out_bytes'] / uncompressed:.3f}" if r["out_bytes"] else "–"
        print(f"| {r['tool']} | {r['cores']} | {r['mb_per_sec']:.1f} | {r['records_per_sec']:,.0f} "
              f"| {out} | {r['rss'] / 2**20:.0f} MiB |")

    ratios = {}
    for _, threads, _ in settings:
        th, fl, dk = find("trailhouse", threads), find("floor", threads), find("duckdb", threads)
        ratios[f"trailhouse_over_floor_time_{threads}"] = th["secs"] / fl["secs"]
        if dk:
            ratios[f"trailhouse_over_duckdb_speed_{threads}"] = dk["secs"] / th["secs"]
            ratios[f"output_trailhouse_over_duckdb_{threads}"] = th["out_bytes"] / dk["out_bytes"]
    ratios["trailhouse_scaling"] = find("trailhouse", 1)["secs"] / find("trailhouse", args.cores)["secs"]
    ratios["output_over_gzip_input"] = find("trailhouse", 1)["out_bytes"] / gz_bytes
    ratios["output_trailhouse_over_gzip_codec"] = (
        find("trailhouse", 1)["out_bytes"] / gzip_codec_bytes(args.work / "lake-1"))
    print()
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}")

    if args.json:
        args.json.write_text(json.dumps(dict(corpus=str(corpus), bytes_uncompressed=uncompressed,
                                             bytes_stored=gz_bytes, runs=runs, ratios=ratios),
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
