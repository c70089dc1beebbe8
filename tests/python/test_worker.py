"""End-to-end tests of the streaming worker `trailhouse run` against a moto S3/SQS/SNS server.

Each test builds its own buckets and queues (unique names on one session-wide moto server on
127.0.0.1 — never real AWS), uploads a corpus made by `trailhouse generate` (whose manifest
says what a correct pipeline produces), runs the real binary ($TRAILHOUSE_BIN, default
/work/target/debug/trailhouse) as a subprocess, and reads back the lake bucket (Parquet via
pyarrow, quarantine), the queue, the dead-letter queue, the worker's --summary and /metrics.

On failure the worker's stderr and summary are printed (conftest `workers` fixture).
Run: TRAILHOUSE_BIN=... $VENV/bin/python -m pytest -p no:cacheprovider -q tests/python/test_worker.py
"""
from __future__ import annotations

import gzip
import json
import re
import signal
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote_plus

import pytest

import emulator as E

CLASSES = ("API Activity", "Authentication", "Account Change")
CLASS_UID = {"API Activity": 6003, "Authentication": 3002, "Account Change": 3001}


# --------------------------------------------------------------------------- shared checks


def corpus_copies(root: Path) -> Counter:
    """How many times each eventID occurs in the readable log files under `root` (duplicate deliveries)."""
    c = Counter()
    for p in root.rglob("*"):
        if not p.is_file() or "/CloudTrail/" not in p.as_posix():
            continue
        try:
            raw = p.read_bytes()
            doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
            recs = doc["Records"]
        except Exception:
            continue
        if isinstance(recs, list):
            c.update(r["eventID"] for r in recs if isinstance(r, dict) and isinstance(r.get("eventID"), str))
    return c


def check_lake(emu, lake: str, manifest: dict, corpus: Path, allowed_extra: set[str] = frozenset(),
               allow_dup_rows: bool = False) -> list[E.Row]:
    """The lake holds every valid record of the manifest exactly once, in the right partition and class.

    `allowed_extra`: event ids that may appear although the manifest does not list them (the
    records before the cut of the truncated hostile object). Returns the rows.
    """
    rows, bad = E.lake_rows(emu, lake)
    assert not bad, f"{len(bad)} Parquet keys/rows outside the ext layout or with the wrong class: {bad[:5]}"
    assert rows, f"no rows in {lake}"
    want = set(manifest["event_ids"])
    per_id = Counter(r.event_id for r in rows)
    got = set(per_id)
    missing = want - got
    extra = got - want - set(allowed_extra)
    dups = {i: n for i, n in per_id.items() if n > 1}
    where = {r.event_id: r.partition for r in rows}
    assert not missing, f"{len(missing)} of {len(want)} valid event ids missing from the lake, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{len(extra)} unexpected event ids in the lake, e.g. {[(i, where[i]) for i in sorted(extra)[:5]]}"
    if not allow_dup_rows:
        assert not dups, (f"{len(dups)} event ids written more than once ({sum(dups.values()) - len(dups)} extra rows), "
                          f"e.g. {[(i, n, where[i]) for i, n in list(dups.items())[:5]]}")
    # Reconstruct the manifest's per-partition / per-class counts (which count every delivered
    # copy) from the unique rows: each row stands for all copies of its eventID in the corpus.
    copies = corpus_copies(corpus)
    seen, parts, classes = set(), Counter(), Counter()
    for r in rows:
        if r.event_id not in want or r.event_id in seen:
            continue
        seen.add(r.event_id)
        n = max(copies.get(r.event_id, 1), 1)
        parts[r.partition] += n
        classes[r.class_uid] += n
    want_parts = manifest["rows_by_partition"]
    diff = {p: (parts.get(p, 0), want_parts.get(p, 0)) for p in set(parts) | set(want_parts)
            if parts.get(p, 0) != want_parts.get(p, 0)}
    assert not diff, f"rows per partition differ (lake, manifest): {dict(sorted(diff.items())[:8])}"
    want_classes = {CLASS_UID[k]: v for k, v in manifest["rows_by_class"].items()}
    assert dict(classes) == want_classes, f"rows per class_uid: lake {dict(classes)} != manifest {want_classes}"
    # Each generated CloudTrail Insights file (a Start and an End record) becomes two
    # Detection Finding rows.
    if "objects_skipped_insight" in manifest:  # a whole corpus's manifest
        findings = E.finding_keys(emu, lake)
        assert len(findings) == 2 * manifest["objects_skipped_insight"], findings
    return rows


def rows_by_class(rows: list[E.Row]) -> dict[str, int]:
    names = {v: k for k, v in CLASS_UID.items()}
    c = Counter(names[r.class_uid] for r in rows)
    return {k: v for k, v in c.items() if v}


def assert_queue_empty(emu, q: E.Queue, what: str = "") -> None:
    main, dlq = emu.counts(q.url), emu.counts(q.dlq_url) if q.dlq_url else (0, 0)
    assert main == (0, 0), f"{what}queue not empty: {main[0]} visible, {main[1]} in flight"
    if dlq != (0, 0):
        bodies = [m["Body"][:300] for m in emu.drain_messages(q.dlq_url, wait=0.3)]
        raise AssertionError(f"{what}DLQ holds {sum(dlq)} messages: {bodies}")


def assert_lake_confined(emu, lake: str) -> None:
    """Nothing in the lake bucket outside prefix/ext/ and prefix/_quarantine/."""
    bucket, prefix = E.split_lake(lake)
    stray = [k for k in emu.list_keys(bucket) if not (k.startswith(prefix + "ext/") or k.startswith(prefix + "_quarantine/"))]
    assert not stray, f"objects outside {prefix}ext/ and {prefix}_quarantine/: {stray[:10]}"


def check_summary_clean(s: dict, manifest: dict, rows: list[E.Row], n_objects: int, n_messages: int,
                        test_events: int, files: int) -> None:
    """Counters of a run that processed a clean corpus once."""
    problems = []

    def eq(k, want):
        if s.get(k) != want:
            problems.append(f"{k}={s.get(k)!r} want {want!r}")

    eq("messages_received", n_messages)
    eq("messages_deleted", n_messages)
    eq("messages_quarantined", 0)
    eq("test_events", test_events)
    eq("objects_processed", n_objects)
    eq("objects_quarantined", 0)
    eq("objects_failed", 0)
    eq("objects_skipped_digest", 0)
    eq("objects_skipped_insight", 0)
    eq("records_read", manifest["records_total"])
    eq("records_quarantined", 0)
    eq("duplicates_dropped", manifest["duplicate_event_ids"])
    eq("rows_written", rows_by_class(rows))
    eq("files_written", files)
    rw = s.get("rows_written") or {}
    if isinstance(rw, dict) and isinstance(s.get("records_read"), int):
        total = sum(rw.values()) + (s.get("duplicates_dropped") or 0) + (s.get("records_quarantined") or 0)
        if total != s["records_read"]:
            problems.append(f"records_read {s['records_read']} != rows {sum(rw.values())} + duplicates + quarantined")
    assert not problems, "summary inconsistent: " + "; ".join(problems) + f"\nsummary: {json.dumps(s)}"


class Trail:
    """A trail bucket, a lake bucket and a queue with a DLQ for one test."""

    def __init__(self, emu, tmp: Path, stem: str, visibility: int = 30, max_receive: int | None = 3):
        self.emu, self.tmp = emu, tmp
        self.bucket = emu.bucket(stem + "-trail")
        self.lake_bucket = emu.bucket(stem + "-lake")
        self.lake = f"s3://{self.lake_bucket}/lake"
        self.q = emu.queue(stem, visibility=visibility, max_receive=max_receive)
        self.corpus = tmp / "corpus"
        self.manifest: dict = {}
        self.keys: dict[str, int] = {}

    def generate(self, seed: int, **opts) -> dict:
        self.manifest = E.generate(self.corpus, seed, self.tmp / "manifest.json", **opts)
        return self.manifest

    def upload(self) -> dict[str, int]:
        self.keys = self.emu.upload_tree(self.bucket, self.corpus)
        return self.keys


FAST = ("--wait-time", "1s")


# --------------------------------------------------------------------------- 0. the emulator itself


def test_emulator_self_check(emu, tmp_path):
    """Documents the moto behaviour the worker tests rely on (needs no trailhouse binary)."""
    b = emu.bucket("selfcheck")
    q = emu.queue("selfcheck", visibility=1, max_receive=1)
    emu.notify_sqs(b, q.arn)  # prefix AWSLogs/, suffix .json.gz
    key = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/09/a b=c+d.json.gz"
    emu.s3.put_object(Bucket=b, Key=key, Body=b"x")
    emu.s3.put_object(Bucket=b, Key="AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/09/plain.json", Body=b"x")
    emu.s3.put_object(Bucket=b, Key="elsewhere/x.json.gz", Body=b"x")
    msgs = [json.loads(m["Body"]) for m in emu.drain_messages(q.url, wait=0.3, delete=True)]
    tests = [m for m in msgs if m.get("Event") == "s3:TestEvent"]
    events = [m for m in msgs if "Records" in m]
    assert len(tests) == 1 and tests[0]["Bucket"] == b, msgs  # TestEvent on configuration
    assert len(events) == 1, f"filters: only the .json.gz under AWSLogs/ is notified: {msgs}"
    rec = events[0]["Records"][0]
    assert rec["eventSource"] == "aws:s3" and rec["eventName"] == "ObjectCreated:Put", rec
    assert rec["s3"]["bucket"]["name"] == b
    assert rec["s3"]["object"]["key"] == quote_plus(key), rec["s3"]["object"]["key"]  # '/'→%2F, ' '→+
    assert "%2F" in rec["s3"]["object"]["key"] and "a+b%3Dc%2Bd" in rec["s3"]["object"]["key"]

    # Redrive: after maxReceiveCount receives, the next receive moves the message to the DLQ untouched.
    mid = emu.send(q.url, "poison body")
    r1 = emu.sqs.receive_message(QueueUrl=q.url, WaitTimeSeconds=1, AttributeNames=["All"])["Messages"]
    assert r1[0]["MessageId"] == mid and r1[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert emu.counts(q.url) == (0, 1)  # in flight
    time.sleep(1.3)
    assert emu.sqs.receive_message(QueueUrl=q.url, WaitTimeSeconds=1).get("Messages") is None
    dl = emu.drain_messages(q.dlq_url, wait=0.3)
    assert [m["Body"] for m in dl] == ["poison body"], dl

    # S3 → SNS → SQS: an SNS envelope without raw delivery, the bare S3 event with it.
    b2, t = emu.bucket("selfcheck-sns"), emu.topic("selfcheck")
    q_env, q_raw = emu.queue("selfcheck-env", max_receive=None), emu.queue("selfcheck-raw", max_receive=None)
    emu.subscribe(t, q_env.arn, raw=False)
    emu.subscribe(t, q_raw.arn, raw=True)
    emu.notify_sns(b2, t)
    emu.s3.put_object(Bucket=b2, Key="AWSLogs/1/CloudTrail/us-east-1/k.json.gz", Body=b"x")
    env = [json.loads(m["Body"]) for m in emu.drain_messages(q_env.url, wait=0.3)]
    raw = [json.loads(m["Body"]) for m in emu.drain_messages(q_raw.url, wait=0.3)]
    assert len(env) == 2 and all(m["Type"] == "Notification" and m["TopicArn"] == t for m in env), env
    inner = [json.loads(m["Message"]) for m in env]  # Message is a JSON *string*
    assert sorted(inner, key=str) == sorted(raw, key=str), (inner, raw)
    assert {("Event" in m, "Records" in m) for m in raw} == {(True, False), (False, True)}, raw


# --------------------------------------------------------------------------- 1. S3 → SQS


def test_s3_to_sqs_clean_corpus(emu, tmp_path, workers):
    """Every valid record exactly once, right partitions and classes, queue and DLQ empty, summary consistent."""
    t = Trail(emu, tmp_path, "t1")
    emu.notify_sqs(t.bucket, t.q.arn)
    m = t.generate(11, accounts=2, days=1, files=8, records_per_file=40)
    assert m["duplicate_event_ids"] > 0, "corpus meant to contain duplicate deliveries"
    t.upload()
    w = workers(t.q.url, t.lake, "--idle-exit", "3s", *FAST)
    rc = w.wait(60)
    assert rc == 0, f"worker exit {rc}\n{w.stderr_tail()}"
    assert_queue_empty(emu, t.q)
    rows = check_lake(emu, t.lake, m, t.corpus)
    assert len(rows) == m["records_valid"] - m["duplicate_event_ids"]
    assert_lake_confined(emu, t.lake)
    q = E.read_quarantine(emu, t.lake)
    assert not (q.objects or q.records or q.messages or q.other), f"quarantine not empty for a clean corpus: {q}"
    check_summary_clean(w.summary(), m, rows, n_objects=len(t.keys), n_messages=len(t.keys) + 1,
                        test_events=1, files=len(E.parquet_keys(emu, t.lake)))


# --------------------------------------------------------------------------- 2. S3 → SNS → SQS


@pytest.mark.parametrize("raw", [False, True], ids=["envelope", "raw"])
def test_s3_to_sns_to_sqs(emu, tmp_path, workers, raw):
    t = Trail(emu, tmp_path, "t2raw" if raw else "t2env")
    topic = emu.topic("t2")
    emu.subscribe(topic, t.q.arn, raw=raw)
    emu.notify_sns(t.bucket, topic)
    m = t.generate(21 + raw, accounts=2, days=1, files=6, records_per_file=30)
    t.upload()
    body = json.loads(emu.sqs.receive_message(QueueUrl=t.q.url, VisibilityTimeout=0,
                                              WaitTimeSeconds=1)["Messages"][0]["Body"])
    assert ("Type" in body) == (not raw), f"delivery shape not as configured: {body}"
    w = workers(t.q.url, t.lake, "--idle-exit", "3s", *FAST)
    rc = w.wait(60)
    assert rc == 0, f"worker exit {rc}"
    assert_queue_empty(emu, t.q)
    rows = check_lake(emu, t.lake, m, t.corpus)
    check_summary_clean(w.summary(), m, rows, n_objects=len(t.keys), n_messages=len(t.keys) + 1,
                        test_events=1, files=len(E.parquet_keys(emu, t.lake)))


# --------------------------------------------------------------------------- 3. other message shapes


def test_other_message_shapes(emu, tmp_path, workers):
    """CloudTrail's SNS notification (bare and in an SNS envelope, several keys per message), an
    EventBridge "Object Created" event, s3:TestEvents (bare and enveloped): all processed and deleted.
    Queue and lake are given through TRAILHOUSE_QUEUE_URL / TRAILHOUSE_LAKE here."""
    t = Trail(emu, tmp_path, "t3")  # no bucket notification: the test sends every message itself
    m = t.generate(31, accounts=2, days=1, files=5, records_per_file=30)
    keys = sorted(t.upload())
    assert len(keys) == 5
    sent = {
        "cloudtrail-sns-bare": emu.send(t.q.url, E.cloudtrail_sns_message(t.bucket, keys[0:2])),
        "cloudtrail-sns-envelope": emu.send(t.q.url, E.sns_envelope(E.cloudtrail_sns_message(t.bucket, keys[2:3]))),
        "eventbridge": emu.send(t.q.url, E.eventbridge_object_created(t.bucket, keys[3], t.keys[keys[3]])),
        "s3-event-in-envelope": emu.send(t.q.url, E.sns_envelope(E.s3_event(t.bucket, keys[4], t.keys[keys[4]]))),
        "testevent": emu.send(t.q.url, E.s3_test_event(t.bucket)),
        "testevent-envelope": emu.send(t.q.url, E.sns_envelope(E.s3_test_event(t.bucket))),
    }
    w = workers(t.q.url, t.lake, "--idle-exit", "3s", *FAST, use_env_for_target=True)
    rc = w.wait(60)
    assert rc == 0, f"worker exit {rc}"
    assert_queue_empty(emu, t.q)
    rows = check_lake(emu, t.lake, m, t.corpus)
    q = E.read_quarantine(emu, t.lake)
    assert not q.messages, f"messages quarantined although every shape is valid: {q.messages}"
    check_summary_clean(w.summary(), m, rows, n_objects=len(keys), n_messages=len(sent),
                        test_events=2, files=len(E.parquet_keys(emu, t.lake)))


# --------------------------------------------------------------------------- 4. hostile corpus


def test_hostile_corpus(emu, tmp_path, workers):
    """Corrupt objects → _quarantine/objects/ with a reason; bad records → _quarantine/records/;
    digest and insight files skipped; every message deleted; nothing written elsewhere."""
    t = Trail(emu, tmp_path, "t4")
    # No suffix filter: the hostile corpus holds a valid uncompressed `.json` log whose records
    # the manifest counts as valid (CloudTrail itself only writes .json.gz).
    emu.notify_sqs(t.bucket, t.q.arn, prefix="AWSLogs/", suffix=None)
    m = t.generate(41, accounts=2, days=1, files=8, records_per_file=30, hostile=True)
    assert (m["objects_quarantined"], m["records_quarantined"]) == (5, 8), m
    t.upload()
    w = workers(t.q.url, t.lake, "--idle-exit", "3s", *FAST)
    rc = w.wait(60)
    assert rc == 0, f"worker exit {rc}"
    assert_queue_empty(emu, t.q)

    q = E.read_quarantine(emu, t.lake)
    uploaded = {p.relative_to(t.corpus).as_posix(): p.read_bytes() for p in t.corpus.rglob("*") if p.is_file()}
    by_content = {v: k for k, v in uploaded.items()}
    assert not q.other, f"unexpected keys under _quarantine/: {q.other}"
    assert not q.messages, f"no message should be quarantined: {list(q.messages)}"
    assert len(q.objects) == m["objects_quarantined"], \
        f"{len(q.objects)} quarantined objects, manifest says {m['objects_quarantined']}: {sorted(q.objects)}"
    no_reason = sorted(set(q.objects) - set(q.reasons))
    assert not no_reason, f"quarantined objects without a .reason.json: {no_reason}"
    assert all(q.reasons[n] for n in q.objects), {n: q.reasons[n] for n in q.objects}
    not_copies = [n for n, b in q.objects.items() if b not in by_content]
    assert not not_copies, f"quarantined objects that are not byte copies of an uploaded object: {not_copies}"
    origins = sorted(by_content[b] for b in q.objects.values())
    assert all("/CloudTrail/" in k for k in origins), origins
    n_lines = sum(len(v) for v in q.records.values())
    assert n_lines == m["records_quarantined"], \
        f"{n_lines} quarantined record lines, manifest says {m['records_quarantined']}: { {k: len(v) for k, v in q.records.items()} }"
    for name, lines in q.records.items():
        for line in lines:
            json.loads(line)  # each line is JSON

    # The truncated gzip's records before the cut may (or may not) have been written.
    allowed = set().union(*(E.ids_in_prefix_of(b) for b in q.objects.values()))
    rows = check_lake(emu, t.lake, m, t.corpus, allowed_extra=allowed)
    assert_lake_confined(emu, t.lake)

    s = w.summary()
    problems = [f"{k}={s.get(k)!r} want {v!r}" for k, v in {
        "objects_quarantined": m["objects_quarantined"], "records_quarantined": m["records_quarantined"],
        "objects_skipped_digest": m["objects_skipped_digest"], "objects_skipped_insight": m["objects_skipped_insight"],
        "messages_received": len(t.keys) + 1, "messages_deleted": len(t.keys) + 1, "test_events": 1,
        "messages_quarantined": 0, "objects_failed": 0, "rows_written": rows_by_class(rows),
        "files_written": len(E.parquet_keys(emu, t.lake)),
    }.items() if s.get(k) != v]
    assert not problems, "summary: " + "; ".join(problems) + f"\n{json.dumps(s)}"


# --------------------------------------------------------------------------- 5. poison messages


def test_poison_messages_go_to_dlq(emu, tmp_path, workers):
    """A missing object and a missing bucket: never deleted, redriven to the DLQ untouched after
    maxReceiveCount receives; an unparseable body is quarantined and deleted; the rest is processed."""
    t = Trail(emu, tmp_path, "t5", visibility=2, max_receive=2)
    emu.notify_sqs(t.bucket, t.q.arn)
    m = t.generate(51, accounts=1, days=1, files=3, records_per_file=20)
    t.upload()
    missing_key = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/09/123456789012_CloudTrail_us-east-1_20240309T0000Z_MissingObject0001.json.gz"
    ghost_bucket = E.unique("t5-no-such-bucket")
    ghost_key = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/09/123456789012_CloudTrail_us-east-1_20240309T0001Z_GhostBucketKey001.json.gz"
    poison = {
        json.dumps(E.s3_event(t.bucket, missing_key, 1234)),
        json.dumps(E.s3_event(ghost_bucket, ghost_key, 1234)),
    }
    for body in poison:
        emu.send(t.q.url, body)
    hello_id = emu.send(t.q.url, "hello")

    w = workers(t.q.url, t.lake, "--visibility-timeout", "2s", "--heartbeat-interval", "500ms",
                "--flush-interval", "1s", *FAST)

    def settled():
        dlq, main = emu.counts(t.q.dlq_url), emu.counts(t.q.url)
        return dlq == (2, 0) and main == (0, 0)

    try:
        E.wait_for(settled, 45, 0.5, "2 poison messages in the DLQ and the main queue empty")
    except AssertionError as e:
        raise AssertionError(f"{e}: main {emu.counts(t.q.url)}, DLQ {emu.counts(t.q.dlq_url)}") from None
    rc = w.terminate_and_wait(30)
    assert rc == 0, f"worker exit {rc} after SIGTERM"

    dl = emu.drain_messages(t.q.dlq_url, wait=0.3)
    assert {x["Body"] for x in dl} == poison, f"DLQ bodies differ from what was sent: {[x['Body'][:200] for x in dl]}"
    assert all(int(x["Attributes"]["ApproximateReceiveCount"]) >= 2 for x in dl), [x["Attributes"] for x in dl]

    err = w.stderr()
    assert missing_key in err, f"stderr does not name the missing key {missing_key!r}\n{w.stderr_tail()}"
    assert ghost_key in err or ghost_bucket in err, f"stderr names neither {ghost_bucket!r} nor {ghost_key!r}"

    q = E.read_quarantine(emu, t.lake)
    # `{message-id}.json`; the worker prefixes names with a 16-hex hash as replay does for objects.
    names = [n for n in q.messages if re.fullmatch(rf"(?:[0-9a-f]{{16}}-)?{re.escape(hello_id)}\.json", n)]
    assert names, f"'hello' (message {hello_id}) not quarantined as [hash-]{hello_id}.json: {sorted(q.messages)}"
    assert "hello" in q.messages[names[0]], q.messages[names[0]]
    assert len(q.messages) == 1 and not q.objects, f"only 'hello' should be quarantined: {sorted(q.messages)} {sorted(q.objects)}"
    check_lake(emu, t.lake, m, t.corpus)

    s = w.summary()
    assert s.get("messages_quarantined") == 1, s
    assert s.get("objects_processed") == len(t.keys), s
    assert s.get("test_events") == 1, s
    # 3 objects + TestEvent + hello deleted; the poison ones received ≥ 2 times each, never deleted.
    assert s.get("messages_deleted") == len(t.keys) + 2, s
    assert s.get("messages_received", 0) >= len(t.keys) + 2 + 2 * 2, s
    assert s.get("objects_failed", 0) >= 4, f"4 failed attempts (2 objects × 2 receives) expected: {s}"


# --------------------------------------------------------------------------- 6. kill -9


@pytest.mark.slow
def test_kill9_and_restart_loses_nothing(emu, tmp_path, workers):
    """kill -9 after the first Parquet file; a new worker on the same queue completes the lake.
    Duplicates are allowed only for objects whose messages were in flight at the kill."""
    t = Trail(emu, tmp_path, "t6", visibility=4, max_receive=5)
    emu.notify_sqs(t.bucket, t.q.arn)
    rpf = 40
    m = t.generate(61, accounts=14, days=1, files=40, records_per_file=rpf)
    assert m["duplicate_event_ids"] == 0  # so every duplicate row comes from the kill
    t.upload()
    args = ("--flush-bytes", "32KiB", "--flush-interval", "1s", "--concurrency", "1",
            "--visibility-timeout", "4s", "--heartbeat-interval", "1s", *FAST)
    w1 = workers(t.q.url, t.lake, *args)
    E.wait_for(lambda: E.parquet_keys(emu, t.lake) or not w1.alive(), 30, 0.05, "the first Parquet file")
    assert w1.alive(), f"worker 1 exited ({w1.proc.returncode}) before writing anything\n{w1.stderr_tail()}"
    w1.signal(signal.SIGKILL)
    w1.proc.wait(10)
    visible, inflight = emu.counts(t.q.url)
    files_at_kill = len(E.parquet_keys(emu, t.lake))
    print(f"at kill: {files_at_kill} Parquet files, queue {visible} visible / {inflight} in flight of {len(t.keys) + 1} messages")
    assert visible + inflight > 0, "the first worker had finished before the kill: nothing was tested"

    w2 = workers(t.q.url, t.lake, *args)
    E.wait_for(lambda: emu.counts(t.q.url) == (0, 0), 50, 0.5, "queue drained by worker 2")
    rc = w2.terminate_and_wait(30)
    assert rc == 0, f"worker 2 exit {rc}"
    assert_queue_empty(emu, t.q)

    rows = check_lake(emu, t.lake, m, t.corpus, allow_dup_rows=True)
    dup_rows = len(rows) - len({r.event_id for r in rows})
    bound = inflight * rpf
    print(f"duplicate rows after kill -9 + restart: {dup_rows} (bound: {inflight} in flight × {rpf} = {bound})")
    assert dup_rows <= bound, f"{dup_rows} duplicate rows > {bound} (in-flight messages at kill × records per file)"


# --------------------------------------------------------------------------- 7. slow object, heartbeat


@pytest.mark.slow
def test_slow_object_heartbeat_keeps_message_invisible(emu, tmp_path, workers):
    """A 200 MB log takes longer than the 2 s visibility timeout: the heartbeat keeps its message
    invisible, so it is received once and its records are written exactly once. (A short timeout
    and a large object keep a wide margin on a fast, quiet machine too.)"""
    t = Trail(emu, tmp_path, "t7", visibility=2, max_receive=3)
    emu.notify_sqs(t.bucket, t.q.arn)
    m = t.generate(71, large_file="200MB")
    t.upload()
    assert len(t.keys) == 1, t.keys
    w = workers(t.q.url, t.lake, "--visibility-timeout", "2s", "--heartbeat-interval", "500ms",
                "--idle-exit", "3s", *FAST)
    samples, t0 = [], time.monotonic()  # (seconds since start, visible, in flight)
    while w.alive() and time.monotonic() - t0 < 90:
        samples.append((round(time.monotonic() - t0, 1), *emu.counts(t.q.url)))
        time.sleep(0.25)
    rc = w.wait(5)
    assert rc == 0, f"worker exit {rc}"
    # Once the worker holds the message (0 visible, 1 in flight), it must never be visible again.
    held = [ts for ts, vis, infl in samples if (vis, infl) == (0, 1)]
    first = next((i for i, s in enumerate(samples) if s[1:] == (0, 1)), len(samples))
    reappeared = [s for s in samples[first:] if s[1] > 0]
    held_for = held[-1] - held[0] if held else 0.0
    print(f"message held in flight for {held_for:.1f}s; samples (t, visible, in flight): {samples}")
    assert held_for > 2.0, (f"message in flight for only {held_for:.1f}s: not longer than the 2 s visibility timeout, "
                            "so the heartbeat was not exercised (use a larger --large-file)")
    assert not reappeared, f"the message became visible again while being processed: {samples}"
    assert_queue_empty(emu, t.q)

    rows, bad = E.lake_rows(emu, t.lake)
    assert not bad, bad[:5]
    ids = Counter(r.event_id for r in rows)
    dups = [i for i, n in ids.items() if n > 1]
    assert len(rows) == m["records_valid"] and not dups, \
        f"{len(rows)} rows for {m['records_valid']} records, {len(dups)} ids twice, e.g. {dups[:3]}"
    assert dict(Counter(r.partition for r in rows)) == m["rows_by_partition"]
    s = w.summary()
    assert s.get("messages_received") == 2, f"the large object's message was received more than once: {s}"
    assert s.get("objects_processed") == 1 and s.get("records_read") == m["records_total"], s


# --------------------------------------------------------------------------- 8. SIGTERM


def test_sigterm_flushes_buffered_messages(emu, tmp_path, workers):
    """SIGTERM with everything buffered (flush interval 5m): exit 0 within 30 s, nothing lost."""
    t = Trail(emu, tmp_path, "t8")
    emu.notify_sqs(t.bucket, t.q.arn)
    m = t.generate(81, accounts=2, days=1, files=6, records_per_file=30)
    t.upload()
    addr = f"127.0.0.1:{E.free_port()}"
    w = workers(t.q.url, t.lake, "--flush-interval", "5m", "--metrics-addr", addr)  # default long poll (20 s)
    n = len(t.keys)
    E.wait_for(lambda: emu.counts(t.q.url) == (0, n) or not w.alive(), 30, 0.2,
               f"all {n} object messages received and held in flight")
    assert w.alive(), f"worker exited early ({w.proc.returncode})"

    def processed():
        try:
            return E.scrape(addr, 2).get("trailhouse_objects_processed_total") == n
        except Exception:
            return False

    try:
        E.wait_for(processed, 15, 0.3, "objects_processed_total == objects")
    except AssertionError as e:
        print(f"note: {e}; sending SIGTERM anyway")
    files_before = E.parquet_keys(emu, t.lake)
    assert not files_before, f"flushed before SIGTERM despite --flush-interval 5m: {files_before[:3]}"
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    rc = w.wait(30)
    took = time.monotonic() - t0
    print(f"exit {rc} {took:.1f}s after SIGTERM")
    assert rc == 0, f"exit code {rc} after SIGTERM"
    assert took < 30
    assert_queue_empty(emu, t.q, "after SIGTERM: ")
    rows = check_lake(emu, t.lake, m, t.corpus)
    s = w.summary()
    assert s.get("messages_deleted") == n + 1 and s.get("rows_written") == rows_by_class(rows), s


def test_unwritable_lake_deletes_no_object_message(emu, tmp_path, workers):
    """The lake bucket does not exist: no row can be made durable, so no object message may be
    deleted — including those whose rows waited in a processor for the next objects (carried)
    after their objects were done. Only the s3:TestEvent is. At exit every object message is
    made visible again for another try."""
    t = Trail(emu, tmp_path, "t8u", max_receive=None)
    emu.notify_sqs(t.bucket, t.q.arn)
    t.generate(83, accounts=2, days=1, files=6, records_per_file=10)
    t.upload()
    n = len(t.keys)
    ghost = E.unique("t8u-no-such-lake")
    w = workers(t.q.url, f"s3://{ghost}/lake", "--flush-interval", "1s", "--idle-exit", "4s", *FAST)
    rc = w.wait(60)
    assert rc == 0, f"worker exit {rc}\n{w.stderr_tail()}"
    s = w.summary()
    assert s.get("objects_processed") == n, s
    assert s.get("messages_deleted") == 1, f"only the TestEvent may be deleted: {s}"
    assert s.get("messages_released") == n, f"every object message released for another try: {s}"
    visible, inflight = emu.counts(t.q.url)
    assert visible + inflight == n, f"queue holds {visible} visible + {inflight} in flight, want the {n} object messages"
    assert ghost in w.stderr_tail(200), "stderr does not name the lake bucket"


# --------------------------------------------------------------------------- 9. metrics


METRICS = ["trailhouse_messages_received_total", "trailhouse_messages_deleted_total",
           "trailhouse_objects_processed_total", "trailhouse_records_read_total",
           "trailhouse_records_quarantined_total", "trailhouse_objects_quarantined_total",
           "trailhouse_flushes_total", "trailhouse_bytes_in_total", "trailhouse_bytes_out_total",
           "trailhouse_lag_seconds", "trailhouse_buffer_bytes", "trailhouse_messages_in_flight"]


def test_metrics_match_summary(emu, tmp_path, workers):
    t = Trail(emu, tmp_path, "t9")
    emu.notify_sqs(t.bucket, t.q.arn, prefix="AWSLogs/", suffix=None)
    m = t.generate(91, accounts=2, days=1, files=6, records_per_file=30, hostile=True)
    t.upload()
    addr = f"127.0.0.1:{E.free_port()}"
    w = workers(t.q.url, t.lake, "--metrics-addr", addr, "--flush-interval", "1s", *FAST)
    E.wait_for(lambda: emu.counts(t.q.url) == (0, 0) or not w.alive(), 45, 0.3, "queue drained")
    assert w.alive(), f"worker exited ({w.proc.returncode})"
    time.sleep(1.5)  # let a final flush / gauges settle
    mt = E.scrape(addr)
    rc = w.terminate_and_wait(30)
    assert rc == 0, f"worker exit {rc}"
    s = w.summary()
    print("metrics:", {k: v for k, v in mt.items() if k.startswith("trailhouse_")})
    print("summary:", json.dumps(s))

    absent = [k for k in METRICS if k not in mt]
    assert not absent, f"metrics missing from /metrics: {absent}"
    problems = []
    for metric, key in [("messages_received_total", "messages_received"), ("messages_deleted_total", "messages_deleted"),
                        ("objects_processed_total", "objects_processed"), ("records_read_total", "records_read"),
                        ("records_quarantined_total", "records_quarantined"),
                        ("objects_quarantined_total", "objects_quarantined")]:
        if mt["trailhouse_" + metric] != s.get(key):
            problems.append(f"trailhouse_{metric}={mt['trailhouse_' + metric]} but summary {key}={s.get(key)}")
    for cls, n in (s.get("rows_written") or {}).items():
        k = f'trailhouse_rows_written_total{{class="{cls}"}}'
        if mt.get(k) != n:
            problems.append(f"{k}={mt.get(k)} but summary rows_written[{cls}]={n}")
    if mt["trailhouse_flushes_total"] < 1:
        problems.append("trailhouse_flushes_total < 1")
    lake_bucket, lake_prefix = E.split_lake(t.lake)
    parquet = sum(emu.list_keys(lake_bucket, lake_prefix + "ext/").values())
    print(f"Parquet bytes in the lake: {parquet}; trailhouse_bytes_out_total: {mt['trailhouse_bytes_out_total']}")
    if not (0 < mt["trailhouse_bytes_out_total"]):
        problems.append(f"trailhouse_bytes_out_total={mt['trailhouse_bytes_out_total']}, Parquet in lake {parquet} bytes")
    uploaded = sum(t.keys.values())
    if not (0 < mt["trailhouse_bytes_in_total"] <= uploaded):
        problems.append(f"trailhouse_bytes_in_total={mt['trailhouse_bytes_in_total']}, uploaded {uploaded} bytes")
    for g in ("trailhouse_buffer_bytes", "trailhouse_messages_in_flight"):
        if mt[g] != 0:
            problems.append(f"{g}={mt[g]} with the queue drained and everything flushed")
    if mt["trailhouse_lag_seconds"] < 0:
        problems.append(f"trailhouse_lag_seconds={mt['trailhouse_lag_seconds']}")
    assert not problems, "metrics vs summary: " + "; ".join(problems)
    assert s.get("messages_received") == len(t.keys) + 1 and s.get("objects_quarantined") == m["objects_quarantined"], s
