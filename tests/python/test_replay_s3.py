"""End-to-end tests of `trailhouse replay s3://trail[/prefix] --lake …` (replay of a trail bucket
by (account, region, day) prefix, with filters, a checkpoint, or `--enqueue` to SQS) against the
moto S3/SQS server of conftest (127.0.0.1 only — never real AWS).

1. An organization trail under a key prefix: every valid record in the lake, partitions as the
   manifest says, summary consistent (days_planned = the day folders present). A hostile corpus
   (plain trail, no prefix): bad objects and records quarantined as in the worker.
2. Filters (--from/--to, --accounts, --regions): the lake holds exactly the records of the files
   under the selected folders; corrupt decoys in unselected folders are never read (nothing
   quarantined), and moto's request log shows no GET/LIST outside the selection.
3. Checkpoint (local file and s3://…): an interrupted range resumes without redoing or skipping
   a day; an unreadable checkpoint stops the replay before anything is written; a day with an
   object that cannot be fetched (GLACIER: InvalidObjectState) is not recorded, and is redone
   once the object is readable again — without duplicating the rows of its other objects.
4. Idempotence: replaying the same range again (other concurrency, a sub-range, a local lake)
   writes the same files: no duplicate rows.
5. `--enqueue`: messages cover every log object exactly once; `trailhouse run` drains them into
   a second lake with every valid record exactly once.

What "exactly once" means here: a day prefix is one batch, and duplicates are dropped within a
batch (same eventID and time in a partition). A record delivered twice in *different* day
folders (the generator makes such duplicate deliveries) may therefore have one row per day folder
holding a copy (fewer when two batches write an identical, hence same-named, file); every other
record exactly one. `expected_counts` computes this from the uploaded files themselves, and
`batch_model` the summary's rows_written / files_written (one file per day batch and partition).

Run: TRAILHOUSE_BIN=... $VENV/bin/python -m pytest -p no:cacheprovider -q tests/python/test_replay_s3.py
"""
from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

import emulator as E
from test_worker import CLASS_UID, assert_lake_confined, assert_queue_empty, check_lake

FOLDER = re.compile(r"^(?P<base>(?:.*/)?AWSLogs/)(?:(?P<org>o-[^/]+)/)?(?P<account>[^/]+)/CloudTrail/"
                    r"(?P<region>[^/]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/$")
LOG_LINE = re.compile(r'"(?P<method>GET|PUT|POST|HEAD|DELETE) (?P<target>\S+) HTTP/[0-9.]+"')
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def replay_bin(trailhouse_bin) -> str:
    """The binary, provided `replay` knows s3:// sources (--checkpoint and --enqueue); fail, never skip."""
    p = subprocess.run([trailhouse_bin, "replay", "--help"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0 or "--checkpoint" not in p.stdout or "--enqueue" not in p.stdout:
        pytest.fail(f"`{trailhouse_bin} replay --help` shows no --checkpoint/--enqueue: no S3 replay?\n"
                    f"{(p.stdout + p.stderr)[-2000:]}", pytrace=False)
    return trailhouse_bin


@dataclass
class Run:
    rc: int
    stderr: str
    summary: dict
    seconds: float
    cmd: list[str]

    def tail(self, n: int = 40) -> str:
        lines = self.stderr.splitlines()
        return (f"--- cmd: {' '.join(self.cmd)}\n--- summary: {json.dumps(self.summary)}\n"
                f"--- stderr (last {min(n, len(lines))} of {len(lines)} lines):\n" + "\n".join(lines[-n:]))


class Replayer:
    """Runs `trailhouse replay` as a subprocess against the emulator; keeps every run for diagnostics."""

    def __init__(self, bin_path: str, emu: E.Emulator, tmp: Path):
        self.bin, self.emu, self.tmp = bin_path, emu, tmp
        self.runs: list[Run] = []

    def __call__(self, source: str, lake: str, *args: str, timeout: float = 90) -> Run:
        summary_path = self.tmp / f"replay-{len(self.runs)}.summary.json"
        cmd = [self.bin, "replay", source, "--lake", lake, "--summary", str(summary_path), *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRAILHOUSE_"))}
        env.update(self.emu.env())
        env.setdefault("RUST_BACKTRACE", "1")
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        r = Run(p.returncode, p.stderr, summary, time.monotonic() - t0, cmd)
        self.runs.append(r)
        print(f"replay exit {r.rc} in {r.seconds:.2f}s: {' '.join(cmd[2:])}\n  summary: {json.dumps(summary)}")
        return r


@pytest.fixture
def replay(request, replay_bin, emu, tmp_path):
    r = Replayer(replay_bin, emu, tmp_path)
    yield r
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for run in r.runs:
            print("\n===== replay run\n" + run.tail(60))


def folder_of(key: str) -> re.Match | None:
    """The day folder match of an object key (`…/AWSLogs/[o-…/]acct/CloudTrail/region/Y/M/D/`), or None."""
    return FOLDER.match(key.rsplit("/", 1)[0] + "/")


def day_of(m: re.Match) -> str:
    return f"{m['y']}-{m['m']}-{m['d']}"


def folders(keys) -> dict[str, list[str]]:
    """Day folder (key prefix ending in '/') → the keys directly in it, for keys under …/CloudTrail/…/Y/M/D/."""
    out: dict[str, list[str]] = {}
    for k in sorted(keys):
        m = folder_of(k)
        if m:
            out.setdefault(m.group(0), []).append(k)
    return out


def read_records(raw: bytes) -> list[dict] | None:
    """The Records of a log file (gzip or plain JSON); None when unreadable."""
    try:
        doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        recs = doc["Records"]
    except Exception:
        return None
    return [r for r in recs if isinstance(r, dict)] if isinstance(recs, list) else None


def expected_counts(corpus: Path, keys, valid: set[str]) -> Counter:
    """Rows each valid eventID should have after a replay of `keys` (local files under `corpus`):
    one per distinct day folder holding a copy (a day is one batch; duplicates drop within it)."""
    per_id: dict[str, set[str]] = {}
    for k in keys:
        m = folder_of(k)
        if not m:
            continue
        recs = read_records((corpus / k).read_bytes())
        for r in recs or ():
            i = r.get("eventID")
            if isinstance(i, str) and i in valid:
                per_id.setdefault(i, set()).add(m.group(0))
    return Counter({i: len(f) for i, f in per_id.items()})


def assert_rows(emu, lake: str, want: Counter, allowed_extra: set[str] = frozenset()) -> list[E.Row]:
    """The lake holds each event id of `want` (id → day folders holding a copy) once if it is in one
    folder, and at least once, at most once per folder, otherwise; ids in `allowed_extra` any number
    of times; nothing else. (Two day batches whose rows of a partition are identical yield the same
    content-named file, so a cross-folder duplicate may also collapse to one row.)"""
    rows, bad = E.lake_rows(emu, lake)
    assert not bad, f"{len(bad)} Parquet keys/rows outside the ext layout or with the wrong class: {bad[:5]}"
    got = Counter(r.event_id for r in rows)
    where = {}
    for r in rows:
        where.setdefault(r.event_id, []).append(r.key.rsplit("/", 1)[-1][:8] + "@" + r.partition)
    missing = {i: n for i, n in want.items() if got.get(i, 0) == 0}
    extra = {i: n for i, n in got.items() if i not in want and i not in allowed_extra}
    dups = {i: got[i] for i, n in want.items() if n == 1 and got.get(i, 0) > 1}
    over = {i: (got[i], n) for i, n in want.items() if n > 1 and got.get(i, 0) > n}
    assert not missing, f"{len(missing)} of {len(want)} expected event ids missing from {lake}, e.g. {sorted(missing)[:5]}"
    assert not extra, (f"{len(extra)} event ids in {lake} that are not in the selected files, e.g. "
                       f"{[(i, where[i]) for i in sorted(extra)[:5]]}")
    assert not dups, (f"{len(dups)} event ids (each in one day folder) written more than once "
                      f"({sum(dups.values()) - len(dups)} extra rows), e.g. {[(i, where[i]) for i in sorted(dups)[:4]]}")
    assert not over, (f"{len(over)} event ids with more rows than day folders holding them (rows, folders), e.g. "
                      f"{[(i, over[i], where[i]) for i in sorted(over)[:4]]}")
    multi = [i for i, n in want.items() if n > 1]
    if multi:
        print(f"{len(multi)} ids delivered in several day folders: {sum(got[i] for i in multi)} rows for "
              f"{sum(want[i] for i in multi)} folder copies ({sum(got[i] == 1 for i in multi)} collapsed to one row)")
    return rows


def batch_model(corpus: Path, keys, valid: set[str], rows: list[E.Row]) -> tuple[dict[str, int], int]:
    """What a replay of `keys` writes, a day folder being one batch: (rows_written by class name, files_written).

    Each day batch writes, per partition it touches, one file of its distinct records (duplicates drop
    within a batch); the partition and class of each record are taken from the lake rows. Of an
    unreadable object, the ids of its readable prefix that are in the lake count for its folder."""
    where = {r.event_id: (r.partition, r.class_uid) for r in rows}
    per_folder: dict[str, set[str]] = {}
    for k in keys:
        m = folder_of(k)
        if not m:
            continue
        raw = (corpus / k).read_bytes()
        recs = read_records(raw)
        if recs is None:
            ids = E.ids_in_prefix_of(raw) & set(where)
        else:
            ids = {r.get("eventID") for r in recs} & valid
        per_folder.setdefault(m.group(0), set()).update(ids)
    names = {v: k for k, v in CLASS_UID.items()}
    by_class, files = Counter(), set()
    for folder, ids in per_folder.items():
        for i in ids:
            if i in where:
                part, uid = where[i]
                by_class[names[uid]] += 1
                files.add((folder, part))
    return dict(by_class), len(files)


def summary_problems(s: dict, **want) -> list[str]:
    return [f"{k}={s.get(k)!r} want {v!r}" for k, v in want.items() if s.get(k) != v]


def check_summary(run: Run, model: tuple[dict[str, int], int] | None = None, **want) -> None:
    """The summary has every documented key, the wanted values, `model`'s (rows_written, files_written)
    and consistent totals."""
    s = run.summary
    assert s, f"no summary written\n{run.tail()}"
    for k in ("days_planned", "days_skipped", "days_done", "days_failed", "objects", "messages_enqueued",
              "records_read", "rows_written", "files_written", "objects_quarantined", "records_quarantined"):
        assert k in s, f"summary has no {k!r}: {json.dumps(s)}"
    problems = summary_problems(s, **want)
    if model is not None:
        problems += summary_problems(s, rows_written=model[0], files_written=model[1])
    rw = s.get("rows_written") or {}
    if isinstance(rw, dict) and isinstance(s.get("records_read"), int):
        total = (sum(rw.values()) + (s.get("duplicates_dropped") or 0) + (s.get("records_quarantined") or 0)
                 + (s.get("rows_discarded") or 0))
        if total != s["records_read"]:
            problems.append(f"records_read {s['records_read']} != rows {sum(rw.values())} + duplicates_dropped "
                            f"{s.get('duplicates_dropped')} + records_quarantined {s.get('records_quarantined')} "
                            f"+ rows_discarded {s.get('rows_discarded')}")
    if s.get("days_planned") != (s.get("days_skipped") or 0) + (s.get("days_done") or 0) + (s.get("days_failed") or 0):
        problems.append("days_planned != days_skipped + days_done + days_failed")
    assert not problems, "summary: " + "; ".join(problems) + f"\n{json.dumps(s)}"


def lake_files(emu, lake: str) -> dict[str, int]:
    """Parquet files of an S3 lake relative to its prefix → size."""
    bucket, prefix = E.split_lake(lake)
    return {k[len(prefix):]: n for k, n in emu.list_keys(bucket, prefix + "ext/").items() if k.endswith(".parquet")}


def s3_requests(moto_server, bucket: str) -> list[tuple[str, str, dict]]:
    """(method, key or '', query) of every request moto logged for `bucket` (path-style addressing)."""
    out = []
    for line in ANSI.sub("", moto_server.log_path.read_text(errors="replace")).splitlines():
        m = LOG_LINE.search(line)
        if not m:
            continue
        u = urlsplit(m["target"])
        path = unquote(u.path).lstrip("/")
        b, _, key = path.partition("/")
        if b == bucket:
            out.append((m["method"], key, {k: v[0] for k, v in parse_qs(u.query).items()}))
    return out


@dataclass
class Trail:
    """A generated corpus uploaded to its own trail bucket."""
    emu: E.Emulator
    tmp: Path
    bucket: str
    corpus: Path
    manifest: dict
    keys: dict[str, int] = field(default_factory=dict)

    @classmethod
    def make(cls, emu, tmp: Path, stem: str, seed: int, **opts) -> "Trail":
        corpus = tmp / f"corpus-{stem}"
        m = E.generate(corpus, seed, tmp / f"manifest-{stem}.json", **opts)
        bucket = emu.bucket(stem + "-trail")
        t = cls(emu, tmp, bucket, corpus, m)
        t.keys = emu.upload_tree(bucket, corpus)
        return t

    @property
    def valid(self) -> set[str]:
        return set(self.manifest["event_ids"])

    def log_keys(self) -> list[str]:
        return sorted(k for k in self.keys if folder_of(k))

    def folders(self) -> dict[str, list[str]]:
        return folders(self.keys)

    def model(self, rows: list[E.Row], keys=None) -> tuple[dict[str, int], int]:
        return batch_model(self.corpus, self.log_keys() if keys is None else keys, self.valid, rows)

    def expected(self, keys=None) -> Counter:
        return expected_counts(self.corpus, self.log_keys() if keys is None else keys, self.valid)

    def folder_ids(self, folder_list) -> set[str]:
        return {f"s3://{self.bucket}/{f}" for f in folder_list}


# --------------------------------------------------------------------------- 1. whole trail


def test_org_trail_with_prefix(emu, tmp_path, replay):
    """Organization trail (AWSLogs/o-abc123/…) under logs/ct/, 3 accounts × 2 regions × 3 days."""
    t = Trail.make(emu, tmp_path, "rp1", 101, org_id="o-abc123", prefix="logs/ct", accounts=3,
                   regions="us-east-1,eu-west-1", days=3, files=40, records_per_file=15)
    fs = t.folders()
    assert all(f.startswith("logs/ct/AWSLogs/o-abc123/") for f in fs), sorted(fs)[:3]
    assert len(t.log_keys()) == len(t.keys) == t.manifest["objects_total"]
    lake = f"s3://{emu.bucket('rp1-lake')}/p"
    r = replay(f"s3://{t.bucket}/logs/ct", lake)
    assert r.rc == 0, f"replay exit {r.rc}\n{r.tail()}"

    want = t.expected()
    assert set(want) == t.valid
    rows = assert_rows(emu, lake, want)
    # Right partition and class for every id (per-partition counts of the manifest, every copy counted).
    check_lake(emu, lake, t.manifest, t.corpus, allow_dup_rows=True)
    assert_lake_confined(emu, lake)
    q = E.read_quarantine(emu, lake)
    assert not (q.objects or q.records or q.messages or q.other), f"quarantine not empty for a clean corpus: {q}"
    check_summary(r, t.model(rows), days_planned=len(fs), days_done=len(fs), days_skipped=0, days_failed=0,
                  objects=len(t.keys), messages_enqueued=0, records_read=t.manifest["records_total"],
                  objects_quarantined=0, records_quarantined=0)

    # The same trail named down to its AWSLogs/ folder, into another lake prefix: the same file names.
    lake2 = f"s3://{E.split_lake(lake)[0]}/q"
    r2 = replay(f"s3://{t.bucket}/logs/ct/AWSLogs/", lake2)
    assert r2.rc == 0, f"replay of …/AWSLogs/ exit {r2.rc}\n{r2.tail()}"
    assert r2.summary.get("days_planned") == len(fs), r2.summary
    assert set(lake_files(emu, lake2)) == set(lake_files(emu, lake)), "same trail, other lake prefix: other files"


def test_hostile_trail_quarantine(emu, tmp_path, replay, moto_server):
    """A hostile corpus (plain AWSLogs/ at the bucket root, source without prefix): corrupt objects
    → _quarantine/objects/ (byte copies with a reason), bad records → _quarantine/records/; digest
    and Insights folders are not CloudTrail/ folders and are never planned; exit 0."""
    t = Trail.make(emu, tmp_path, "rp1h", 111, hostile=True, accounts=2, regions="us-east-1,eu-west-1",
                   days=2, files=16, records_per_file=12)
    m = t.manifest
    assert m["objects_quarantined"] > 0 and m["records_quarantined"] > 0
    side = [k for k in t.keys if "/CloudTrail-Digest/" in k or "/CloudTrail-Insight/" in k]
    assert side, "the hostile corpus is meant to hold digest and Insights files"
    lake = f"s3://{emu.bucket('rp1h-lake')}/lake"
    r = replay(f"s3://{t.bucket}", lake)
    assert r.rc == 0, f"replay exit {r.rc}\n{r.tail()}"

    q = E.read_quarantine(emu, lake)
    by_content = {(t.corpus / k).read_bytes(): k for k in t.keys}
    assert len(q.objects) == m["objects_quarantined"], \
        f"{len(q.objects)} objects quarantined, manifest says {m['objects_quarantined']}: {sorted(q.objects)}"
    assert set(q.reasons) >= set(q.objects), f"quarantined objects without a reason: {set(q.objects) - set(q.reasons)}"
    not_copies = [n for n, b in q.objects.items() if b not in by_content]
    assert not not_copies, f"quarantined objects that are not byte copies of an uploaded object: {not_copies}"
    n_lines = sum(len(v) for v in q.records.values())
    assert n_lines == m["records_quarantined"], f"{n_lines} quarantined record lines, manifest {m['records_quarantined']}"

    allowed = set().union(*(E.ids_in_prefix_of(b) for b in q.objects.values()))
    want = t.expected()
    for i in allowed:
        want.pop(i, None)
    assert set(want) | allowed >= t.valid
    rows = assert_rows(emu, lake, want, allowed_extra=allowed)
    assert_lake_confined(emu, lake)
    fs = t.folders()
    check_summary(r, t.model(rows), days_planned=len(fs), days_done=len(fs),
                  days_failed=0, days_skipped=0, objects=len(t.log_keys()), messages_enqueued=0,
                  objects_quarantined=m["objects_quarantined"], records_quarantined=m["records_quarantined"])
    touched = [k for meth, k, _ in s3_requests(moto_server, t.bucket) if meth == "GET" and "/CloudTrail-" in k]
    assert not touched, f"digest/Insights objects were read: {touched}"


# --------------------------------------------------------------------------- 2. filters


def decoy(key: str) -> bytes:
    """A corrupt .json.gz (gzip magic, then garbage): quarantined if ever read."""
    return b"\x1f\x8b\x08\x00" + b"not really gzip: " + key.encode()


def test_filters_read_only_the_selection(emu, tmp_path, replay, moto_server):
    t = Trail.make(emu, tmp_path, "rp2", 202, accounts=3, regions="us-east-1,eu-west-1", days=3,
                   files=48, records_per_file=10)
    fs = {f: folder_of(f) for f in t.folders()}
    days = sorted({day_of(m) for m in fs.values()})
    accounts = sorted({m["account"] for m in fs.values()})
    assert len(days) == 3 and len(accounts) == 3, (days, accounts)
    mid = days[1]
    # The (account, region) with the most files on the middle day.
    counts = Counter({(m["account"], m["region"]): len(t.folders()[f]) for f, m in fs.items() if day_of(m) == mid})
    (acct, region), _ = counts.most_common(1)[0]
    other_acct = next(a for a in accounts if a != acct)
    third_acct = next(a for a in accounts if a not in (acct, other_acct))
    other_region = "eu-west-1" if region == "us-east-1" else "us-east-1"
    y, mo, d = mid.split("-")
    selected = f"AWSLogs/{acct}/CloudTrail/{region}/{y}/{mo}/{d}/"
    assert selected in fs

    def name(a, r, ymd):
        tag = zlib.crc32((a + r + ymd).encode())
        return f"{a}_CloudTrail_{r}_{ymd.replace('/', '')}T0101Z_Decoy{tag:010d}.json.gz"

    decoys = {}
    for a, r, ymd in [(acct, region, f"{y}/{mo}/{days[0][-2:]}"), (acct, region, f"{y}/{mo}/{days[2][-2:]}"),
                      (other_acct, region, f"{y}/{mo}/{d}"), (acct, other_region, f"{y}/{mo}/{d}"),
                      (acct, region, f"{y}/{int(mo) + 1:02d}/{d}"), (acct + "9", region, f"{y}/{mo}/{d}")]:
        key = f"AWSLogs/{a}/CloudTrail/{r}/{ymd}/{name(a, r, ymd)}"
        decoys[key] = decoy(key)
        emu.s3.put_object(Bucket=t.bucket, Key=key, Body=decoys[key])
    # Decoys next to the selected day that a prefix match without the trailing '/' would catch.
    for key in [f"AWSLogs/{acct}/CloudTrail/{region}/{y}/{mo}/{d}-old/{name(acct, region, 'x')}",
                f"AWSLogs/{acct}/CloudTrail/{region}-old/{y}/{mo}/{d}/{name(acct, region, 'y')}"]:
        decoys[key] = decoy(key)
        emu.s3.put_object(Bucket=t.bucket, Key=key, Body=decoys[key])
    all_keys = set(t.keys) | set(decoys)

    # A: one day (enumerated), one account, one region.
    lake_a = f"s3://{emu.bucket('rp2a-lake')}/p"
    r = replay(f"s3://{t.bucket}", lake_a, "--from", mid, "--to", mid, "--accounts", acct, "--regions", region)
    assert r.rc == 0, f"replay exit {r.rc}\n{r.tail()}"
    sel_keys = t.folders()[selected]
    want = t.expected(sel_keys)
    assert want and all(n == 1 for n in want.values())
    q = E.read_quarantine(emu, lake_a)
    assert not (q.objects or q.records or q.messages or q.other), \
        f"something outside the selection was read (quarantined): {sorted(q.objects)} {sorted(q.records)}"
    rows = assert_rows(emu, lake_a, want)
    assert {(r_.partition.split('/')[2], r_.partition.split('/')[3]) for r_ in rows} == {(region, acct)}
    check_summary(r, t.model(rows, sel_keys), days_planned=1, days_done=1, days_skipped=0,
                  days_failed=0, objects=len(sel_keys), objects_quarantined=0, records_quarantined=0,
                  messages_enqueued=0)
    reqs = s3_requests(moto_server, t.bucket)
    gets = [k for meth, k, qs in reqs if meth == "GET" and k]
    lists = [qs.get("prefix", "") for meth, k, qs in reqs if meth == "GET" and not k and qs.get("list-type") == "2"]
    if not reqs:
        print("note: moto's request log shows no request for the trail bucket; the decoys alone prove the selection")
    else:
        assert sorted(gets) == sorted(sel_keys), \
            f"objects read outside the selected folder {selected}: {sorted(set(gets) - set(sel_keys))[:5]}"
        stray = [p for p in lists if not selected.startswith(p)]
        assert not stray, f"prefixes listed that are not the selected folder or one of its parents: {stray}"
        print(f"requests for the trail bucket: {len(gets)} GetObject, {len(lists)} ListObjectsV2 {sorted(set(lists))}")

    # B: --from only (days listed, not enumerated), two accounts, every region.
    lake_b = f"s3://{emu.bucket('rp2b-lake')}/p"
    r = replay(f"s3://{t.bucket}", lake_b, "--from", mid.replace("-", ""), "--accounts", f"{acct},{third_acct}")
    assert r.rc == 0, f"replay exit {r.rc}\n{r.tail()}"

    def in_b(key: str) -> bool:
        m = folder_of(key)
        return bool(m) and m["account"] in (acct, third_acct) and day_of(m) >= mid

    sel_b = sorted(k for k in all_keys if in_b(k))
    want_b = t.expected([k for k in sel_b if k in t.keys])
    decoys_b = {decoys[k] for k in sel_b if k in decoys}
    # In B's selection: the day after, the other region, the next month, the "-old" region.
    assert len(decoys_b) == 4, sorted(k for k in sel_b if k in decoys)
    q = E.read_quarantine(emu, lake_b)
    assert set(q.objects.values()) == decoys_b, (
        f"quarantined {sorted(q.objects)}, expected exactly the decoys under the selection "
        f"{sorted(k for k in sel_b if k in decoys)}")
    rows = assert_rows(emu, lake_b, want_b)
    n_folders = len(folders(sel_b))
    check_summary(r, t.model(rows, [k for k in sel_b if k in t.keys]), days_planned=n_folders, days_done=n_folders,
                  days_failed=0, objects=len(sel_b), objects_quarantined=len(decoys_b), records_quarantined=0)


# --------------------------------------------------------------------------- 3. checkpoint


def read_checkpoint(raw: bytes) -> set[str]:
    doc = json.loads(raw)
    assert isinstance(doc, dict) and isinstance(doc.get("done"), list), f"not a checkpoint: {doc}"
    return set(doc["done"])


@pytest.mark.parametrize("where", ["file", "s3"])
def test_checkpoint_resume(emu, tmp_path, replay, where):
    """--to day2 with a checkpoint, then the whole range with the same checkpoint: days of run 1 skipped,
    each record once, the checkpoint lists every day folder; a third run does nothing."""
    t = Trail.make(emu, tmp_path, f"rp3{where}", 303, accounts=2, regions="us-east-1,eu-west-1", days=3,
                   files=30, records_per_file=10)
    lake_bucket = emu.bucket(f"rp3{where}-lake")
    lake = f"s3://{lake_bucket}/p"
    if where == "file":
        cp = str(tmp_path / "state" / "cp.json")
        (tmp_path / "state").mkdir()
        read_cp = lambda: read_checkpoint(Path(cp).read_bytes())  # noqa: E731
    else:
        cp = f"s3://{lake_bucket}/checkpoints/cp.json"
        read_cp = lambda: read_checkpoint(emu.get(lake_bucket, "checkpoints/cp.json"))  # noqa: E731
    fs = t.folders()
    days = sorted({day_of(folder_of(f)) for f in fs})
    first = [f for f in fs if day_of(folder_of(f)) <= days[1]]
    assert 0 < len(first) < len(fs)

    r1 = replay(f"s3://{t.bucket}", lake, "--to", days[1], "--checkpoint", cp)
    assert r1.rc == 0, f"run 1 exit {r1.rc}\n{r1.tail()}"
    keys_1 = [k for f in first for k in fs[f]]
    rows_1 = assert_rows(emu, lake, t.expected(keys_1))
    check_summary(r1, t.model(rows_1, keys_1), days_planned=len(first), days_done=len(first), days_skipped=0,
                  days_failed=0, objects=len(keys_1))
    assert read_cp() == t.folder_ids(first), f"checkpoint after run 1: {sorted(read_cp())}"
    files_1 = lake_files(emu, lake)

    r2 = replay(f"s3://{t.bucket}", lake, "--checkpoint", cp)
    assert r2.rc == 0, f"run 2 exit {r2.rc}\n{r2.tail()}"
    rest = [f for f in fs if f not in first]
    assert read_cp() == t.folder_ids(fs), \
        f"checkpoint after run 2 misses {sorted(t.folder_ids(fs) - read_cp())[:3]}, extra {sorted(read_cp() - t.folder_ids(fs))[:3]}"
    want = t.expected()
    rows = assert_rows(emu, lake, want)
    files_2 = lake_files(emu, lake)
    assert set(files_1) <= set(files_2), "run 2 removed files of run 1"
    keys_2 = [k for f in rest for k in fs[f]]
    check_summary(r2, t.model(rows, keys_2), days_planned=len(fs), days_skipped=len(first), days_done=len(rest),
                  days_failed=0, objects=len(keys_2))

    r3 = replay(f"s3://{t.bucket}", lake, "--checkpoint", cp)
    assert r3.rc == 0, f"run 3 exit {r3.rc}\n{r3.tail()}"
    check_summary(r3, days_planned=len(fs), days_skipped=len(fs), days_done=0, objects=0, files_written=0,
                  rows_written={}, records_read=0)
    assert lake_files(emu, lake) == files_2
    if where == "s3":
        bucket, prefix = E.split_lake(lake)
        stray = [k for k in emu.list_keys(lake_bucket)
                 if not k.startswith((prefix + "ext/", prefix + "_quarantine/")) and k != "checkpoints/cp.json"]
        assert not stray, f"objects in the lake bucket besides the lake and the checkpoint: {stray}"
    else:
        assert_lake_confined(emu, lake)


def test_unreadable_checkpoint_stops_before_writing(emu, tmp_path, replay):
    """A checkpoint that is not a trailhouse checkpoint: exit non-zero naming it, nothing written,
    the file left as it was (never silently replaced by an empty checkpoint)."""
    t = Trail.make(emu, tmp_path, "rp3x", 323, accounts=1, regions="us-east-1", days=1, files=3,
                   records_per_file=5)
    lake_bucket = emu.bucket("rp3x-lake")
    cp = tmp_path / "cp.json"
    cp.write_text('{"completed": 3}')
    r = replay(f"s3://{t.bucket}", f"s3://{lake_bucket}/p", "--checkpoint", str(cp))
    assert r.rc != 0, f"an unreadable checkpoint was accepted\n{r.tail()}"
    assert "checkpoint" in r.stderr.lower() or str(cp) in r.stderr, f"stderr does not say what is wrong\n{r.tail()}"
    assert cp.read_text() == '{"completed": 3}', "the unreadable checkpoint was overwritten"
    assert not emu.list_keys(lake_bucket), f"written despite the bad checkpoint: {sorted(emu.list_keys(lake_bucket))[:3]}"


def test_failed_day_not_checkpointed_then_redone(emu, tmp_path, replay):
    """One object of one day cannot be fetched (GLACIER: GetObject → InvalidObjectState): the run exits
    non-zero, that day is failed and absent from the checkpoint, every other day is recorded. Once the
    object is readable, a rerun with the checkpoint redoes only that day: each record once."""
    t = Trail.make(emu, tmp_path, "rp3f", 313, accounts=2, regions="us-east-1", days=3, files=24,
                   records_per_file=10)
    lake = f"s3://{emu.bucket('rp3f-lake')}/p"
    cp = tmp_path / "cp.json"
    fs = t.folders()
    bad_folder = max(fs, key=lambda f: len(fs[f]))
    assert len(fs[bad_folder]) >= 3
    bad_key = fs[bad_folder][len(fs[bad_folder]) // 2]
    body = (t.corpus / bad_key).read_bytes()
    emu.s3.put_object(Bucket=t.bucket, Key=bad_key, Body=body, StorageClass="GLACIER")

    r1 = replay(f"s3://{t.bucket}", lake, "--checkpoint", str(cp))
    assert r1.rc != 0, f"a run with a failed object should exit non-zero\n{r1.tail()}"
    assert bad_key in r1.stderr, f"stderr does not name the failed object {bad_key}\n{r1.tail()}"
    rows1, _ = E.lake_rows(emu, lake)
    # A day is written whole or not at all: nothing of the failed day is in the lake
    # (its readable objects were read, then discarded, and counted as rows_discarded).
    bad_day_keys = [k for k in t.log_keys() if k in set(fs[bad_folder])]
    check_summary(r1, t.model(rows1, [k for k in t.log_keys() if k not in set(bad_day_keys)]), days_planned=len(fs),
                  days_done=len(fs) - 1, days_failed=1, days_skipped=0, objects=len(t.keys), objects_quarantined=0)
    assert r1.summary.get("rows_discarded", 0) > 0, r1.summary
    # Ids only in the failed day (duplicate deliveries also live in other days' files).
    bad_day_ids = set(t.expected(bad_day_keys)) - set(t.expected([k for k in t.log_keys() if k not in set(bad_day_keys)]))
    assert bad_day_ids, "the failed day has records of its own"
    assert not bad_day_ids & {x.event_id for x in rows1}, "rows of the failed day were written"
    failed = r1.summary.get("objects_failed")
    assert failed in ([f"s3://{t.bucket}/{bad_key}"], 1), f"objects_failed={failed!r}"
    done = read_checkpoint(cp.read_bytes())
    assert done == t.folder_ids(f for f in fs if f != bad_folder), f"checkpoint after the failure: {sorted(done)}"
    q = E.read_quarantine(emu, lake)
    assert not q.objects, f"an object that could not be fetched was quarantined: {sorted(q.objects)}"
    # The other days are complete; the failed object's records are not in the lake.
    partial = t.expected([k for k in t.log_keys() if k != bad_key])
    bad_ids = {i for i in t.expected([bad_key])} - set(partial)
    assert not bad_ids & {x.event_id for x in rows1}, "records of the object that failed are in the lake"
    files_1 = lake_files(emu, lake)

    emu.s3.put_object(Bucket=t.bucket, Key=bad_key, Body=body)  # "restored"
    r2 = replay(f"s3://{t.bucket}", lake, "--checkpoint", str(cp))
    assert r2.rc == 0, f"rerun exit {r2.rc}\n{r2.tail()}"
    assert read_checkpoint(cp.read_bytes()) == t.folder_ids(fs)
    files_2 = lake_files(emu, lake)
    new = sorted(set(files_2) - set(files_1))
    print(f"files: {len(files_1)} after the failed run, {len(files_2)} after the rerun; new: {new}")
    rows2 = assert_rows(emu, lake, t.expected())
    check_summary(r2, t.model(rows2, fs[bad_folder]), days_planned=len(fs), days_skipped=len(fs) - 1,
                  days_done=1, days_failed=0, objects=len(fs[bad_folder]))


# --------------------------------------------------------------------------- 4. idempotence


def test_replay_again_writes_the_same_files(emu, tmp_path, replay):
    t = Trail.make(emu, tmp_path, "rp4", 404, org_id="o-idem42", accounts=2, regions="us-east-1,eu-west-1",
                   days=2, files=28, records_per_file=15)
    lake = f"s3://{emu.bucket('rp4-lake')}/p"
    src = f"s3://{t.bucket}"
    want = t.expected()

    r1 = replay(src, lake, "--concurrency", "8")
    assert r1.rc == 0, f"run 1 exit {r1.rc}\n{r1.tail()}"
    files_1 = lake_files(emu, lake)
    rows_1 = assert_rows(emu, lake, want)
    model = t.model(rows_1)
    fs = t.folders()
    check_summary(r1, model, days_planned=len(fs), days_done=len(fs), days_failed=0, objects=len(t.keys))
    assert model[1] >= len(files_1)

    r2 = replay(src, lake, "--concurrency", "1")
    assert r2.rc == 0, f"run 2 exit {r2.rc}\n{r2.tail()}"
    files_2 = lake_files(emu, lake)
    assert set(files_2) == set(files_1), (
        f"second replay changed the lake's files: {len(set(files_2) - set(files_1))} new, e.g. "
        f"{sorted(set(files_2) - set(files_1))[:3]}; {len(set(files_1) - set(files_2))} gone")
    assert_rows(emu, lake, want)
    same_size = sum(files_1[k] == files_2[k] for k in files_1)
    print(f"{len(files_1)} files; {same_size} with identical sizes after the second replay")
    check_summary(r2, model, days_planned=len(fs), days_done=len(fs), days_failed=0, objects=len(t.keys))

    # A sub-range (one day) rewrites a subset of the same files.
    day = min(day_of(folder_of(f)) for f in t.folders())
    r3 = replay(src, lake, "--from", day, "--to", day)
    assert r3.rc == 0, f"run 3 exit {r3.rc}\n{r3.tail()}"
    assert set(lake_files(emu, lake)) == set(files_1), "replaying one day again added files"
    assert_rows(emu, lake, want)
    day_keys = [k for f, ks in fs.items() if day_of(folder_of(f)) == day for k in ks]
    n_combos = len({(folder_of(f)["account"], folder_of(f)["region"]) for f in fs})
    check_summary(r3, t.model(rows_1, day_keys), days_planned=n_combos, days_failed=0, objects=len(day_keys))

    # A local lake gets the same file names.
    local = tmp_path / "local-lake"
    r4 = replay(src, str(local))
    assert r4.rc == 0, f"run 4 (local lake) exit {r4.rc}\n{r4.tail()}"
    local_files = {p.relative_to(local).as_posix() for p in local.rglob("*.parquet")}
    assert local_files == set(files_1), (
        f"local lake files differ from the S3 lake's: only local {sorted(local_files - set(files_1))[:3]}, "
        f"only S3 {sorted(set(files_1) - local_files)[:3]}")


# --------------------------------------------------------------------------- 5. --enqueue


def test_enqueue_then_workers_drain(emu, tmp_path, replay, workers):
    t = Trail.make(emu, tmp_path, "rp5", 505, prefix="trails/main", accounts=2, regions="us-east-1",
                   days=2, files=50, records_per_file=5)
    fs = t.folders()
    assert max(len(v) for v in fs.values()) > 10, "a day folder with more than 10 objects is needed"
    q = emu.queue("rp5", visibility=30, max_receive=5)
    lake_bucket = emu.bucket("rp5-lake")
    lake1, lake2 = f"s3://{lake_bucket}/p", f"s3://{lake_bucket}/p2"
    cp = tmp_path / "enqueue-cp.json"

    r = replay(f"s3://{t.bucket}/trails/main", lake1, "--enqueue", q.url, "--checkpoint", str(cp))
    assert r.rc == 0, f"replay --enqueue exit {r.rc}\n{r.tail()}"
    assert not emu.list_keys(lake_bucket), "--enqueue wrote to the lake"
    n_msgs = sum(-(-len(v) // 10) for v in fs.values())  # per day, chunks of up to 10 keys
    check_summary(r, days_planned=len(fs), days_done=len(fs), days_skipped=0, days_failed=0,
                  objects=len(t.keys), messages_enqueued=n_msgs, records_read=0, files_written=0)
    assert read_checkpoint(cp.read_bytes()) == t.folder_ids(fs)

    # The same replay again: everything checkpointed, nothing sent.
    r = replay(f"s3://{t.bucket}/trails/main", lake1, "--enqueue", q.url, "--checkpoint", str(cp))
    assert r.rc == 0, f"second replay --enqueue exit {r.rc}\n{r.tail()}"
    check_summary(r, days_planned=len(fs), days_skipped=len(fs), days_done=0, messages_enqueued=0)

    # Read every message (then make them visible again for the worker).
    msgs = emu.drain_messages(q.url, wait=0.5)
    assert len(msgs) == n_msgs, f"{len(msgs)} messages on the queue, expected {n_msgs}"
    sent = Counter()
    for m in msgs:
        body = json.loads(m["Body"])
        assert set(body) == {"s3Bucket", "s3ObjectKey"}, body
        assert body["s3Bucket"] == t.bucket and isinstance(body["s3ObjectKey"], list), body
        assert 1 <= len(body["s3ObjectKey"]) <= 10, f"{len(body['s3ObjectKey'])} keys in one message"
        assert len({folder_of(k).group(0) for k in body["s3ObjectKey"]}) == 1, f"one message spans days: {body}"
        sent.update(body["s3ObjectKey"])
    twice = [k for k, n in sent.items() if n > 1]
    assert not twice, f"objects enqueued more than once: {twice[:5]}"
    assert set(sent) == set(t.keys), (f"enqueued keys differ from the uploaded objects: missing "
                                      f"{sorted(set(t.keys) - set(sent))[:3]}, extra {sorted(set(sent) - set(t.keys))[:3]}")
    for i in range(0, len(msgs), 10):
        emu.sqs.change_message_visibility_batch(QueueUrl=q.url, Entries=[
            {"Id": str(j), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for j, m in enumerate(msgs[i:i + 10])])

    w = workers(q.url, lake2, "--idle-exit", "3s", "--wait-time", "1s", "--s3-path-style")
    rc = w.wait(60)
    assert rc == 0, f"worker exit {rc}\n{w.stderr_tail()}"
    assert_queue_empty(emu, q)
    rows = check_lake(emu, lake2, t.manifest, t.corpus)
    assert len(rows) == t.manifest["records_valid"] - t.manifest["duplicate_event_ids"]
    assert_lake_confined(emu, lake2)
    s = w.summary()
    assert s.get("messages_received") == n_msgs and s.get("messages_deleted") == n_msgs, s
    assert s.get("objects_processed") == len(t.keys) and s.get("records_read") == t.manifest["records_total"], s
