"""End-to-end tests of the Lambda mode (`trailhouse lambda`, and the same binary named `bootstrap`)
against the moto S3/SQS server of conftest (127.0.0.1 only — never real AWS).

1. `trailhouse lambda --event FILE` on a Lambda SQS event built from the emulator's own S3
   notifications (real messageId / receiptHandle / body / md5OfBody / attributes, the s3:TestEvent
   included) plus one message naming a missing object: only that message is reported in
   `batchItemFailures`, everything else is in the lake exactly once.
2. The failure is retryable: once the object exists, re-invoking with only that record succeeds.
3. Other message shapes and an unparseable body in one event: all succeed, the body is quarantined.
4. An unwritable lake: every object message is a batch item failure, the s3:TestEvent is not.
5. The Lambda Runtime API loop: a minimal Runtime API emulator (http.server) drives `bootstrap`
   through two invocations; cold start and per-invocation overhead are measured (reported in
   /tmp/trailhouse-lambda-timings.json, never asserted).

Run: TRAILHOUSE_BIN=... $VENV/bin/python -m pytest -p no:cacheprovider -q tests/python/test_lambda.py
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import queue as queue_mod
import signal
import statistics
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote_plus

import pytest

import emulator as E
from test_worker import assert_lake_confined, check_lake

TIMINGS_PATH = Path("/tmp/trailhouse-lambda-timings.json")
RUNTIME_PREFIX = "/2018-06-01/runtime"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def lambda_bin(trailhouse_bin) -> str:
    """The binary, provided it has the `lambda` subcommand (fail, never skip)."""
    p = subprocess.run([trailhouse_bin, "lambda", "--help"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        pytest.fail(f"`{trailhouse_bin} lambda --help` failed ({p.returncode}): no `lambda` command?\n"
                    f"{p.stderr[-2000:]}", pytrace=False)
    return trailhouse_bin


def base_env(emu: E.Emulator, **extra: str) -> dict[str, str]:
    """The process environment: no AWS_* of the caller, the emulator's endpoint and fake credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRAILHOUSE_"))}
    env.update(emu.env())
    env.setdefault("RUST_BACKTRACE", "1")
    env.update(extra)
    return env


def sqs_record(m: dict, queue_arn: str) -> dict:
    """A received SQS message (boto3 shape) as Lambda passes it in an SQS event record."""
    return {
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": dict(m.get("Attributes", {})),
        "messageAttributes": {},
        "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": E.REGION,
    }


def sqs_event(messages: list[dict], queue_arn: str) -> dict:
    return {"Records": [sqs_record(m, queue_arn) for m in messages]}


def receive_all(emu: E.Emulator, url: str, want: int, timeout: float = 15) -> list[dict]:
    """Receives (and leaves in flight, like the Lambda poller) until `want` messages are held."""
    got: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while len(got) < want:
        r = emu.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    VisibilityTimeout=600, AttributeNames=["All"])
        for m in r.get("Messages", []):
            got[m["MessageId"]] = m
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(got)} of {want} messages received within {timeout}s")
    return list(got.values())


@dataclass
class Invocation:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    cmd: list[str]

    def response(self) -> dict:
        lines = [l for l in self.stdout.splitlines() if l.strip()]
        assert lines, f"no response on stdout (exit {self.rc})\n{self.tail()}"
        try:
            return json.loads(lines[-1])
        except ValueError:
            raise AssertionError(f"last stdout line is not JSON: {lines[-1][:500]!r}\n{self.tail()}") from None

    def failures(self) -> list[str]:
        r = self.response()
        assert set(r) >= {"batchItemFailures"}, f"response has no batchItemFailures: {r}"
        items = r["batchItemFailures"]
        assert all(set(i) == {"itemIdentifier"} for i in items), f"unexpected item shape: {items}"
        return [i["itemIdentifier"] for i in items]

    def tail(self, n: int = 60) -> str:
        lines = self.stderr.splitlines()
        return (f"--- cmd: {' '.join(self.cmd)}\n--- stdout:\n{self.stdout[-2000:]}\n"
                f"--- stderr (last {min(n, len(lines))} of {len(lines)} lines):\n" + "\n".join(lines[-n:]))


def invoke(bin_path: str, emu: E.Emulator, lake: str, event: dict, path: Path, *args: str,
           timeout: float = 60) -> Invocation:
    """`trailhouse lambda --lake LAKE --event FILE`: one SQS event, the response on stdout."""
    path.write_text(json.dumps(event, indent=1))
    cmd = [bin_path, "lambda", "--lake", lake, "--event", str(path), *args]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=base_env(emu))
    return Invocation(p.returncode, p.stdout, p.stderr, time.monotonic() - t0, cmd)


def merge_manifests(*ms: dict) -> dict:
    """The manifest of several disjoint corpora processed together (ids, per-partition/class counts)."""
    out = {"event_ids": [], "rows_by_partition": Counter(), "rows_by_class": Counter(),
           "records_valid": 0, "duplicate_event_ids": 0}
    for m in ms:
        out["event_ids"] += m["event_ids"]
        out["rows_by_partition"].update(m["rows_by_partition"])
        out["rows_by_class"].update(m["rows_by_class"])
        out["records_valid"] += m["records_valid"]
        out["duplicate_event_ids"] += m["duplicate_event_ids"]
    out["rows_by_partition"] = dict(out["rows_by_partition"])
    out["rows_by_class"] = dict(out["rows_by_class"])
    return out


# --------------------------------------------------------------------------- 1 + 2: --event


@dataclass
class Handled:
    """State shared by tests 1 and 2: the trail, the lake, the first invocation."""
    tmp: Path
    bucket: str
    lake: str
    q: E.Queue
    corpus: Path          # root of both corpora (a/ uploaded, b/ the missing object)
    manifest_a: dict
    manifest_b: dict
    missing_key: str
    missing_file: Path
    missing_record: dict
    messages: list[dict]
    test_event_ids: list[str]
    first: Invocation
    event: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def handled(emu, lambda_bin, tmp_path_factory) -> Handled:
    tmp = tmp_path_factory.mktemp("lambda-event")
    bucket = emu.bucket("lam-trail")
    lake_bucket = emu.bucket("lam-lake")
    lake = f"s3://{lake_bucket}/lake"
    q = emu.queue("lam", visibility=30, max_receive=None)
    emu.notify_sqs(bucket, q.arn)  # moto sends an s3:TestEvent now

    corpus = tmp / "corpus"
    ma = E.generate(corpus / "a", 7, tmp / "a.manifest.json", accounts=2, days=1, files=8, records_per_file=20)
    mb = E.generate(corpus / "b", 202, tmp / "b.manifest.json", accounts=1, days=1, files=1, records_per_file=25)
    assert ma["duplicate_event_ids"] > 0, "corpus a is meant to contain duplicate deliveries"
    assert not set(ma["event_ids"]) & set(mb["event_ids"]), "corpora a and b share event ids"
    keys = emu.upload_tree(bucket, corpus / "a")
    (missing_file,) = [p for p in (corpus / "b").rglob("*") if p.is_file()]
    missing_key = missing_file.relative_to(corpus / "b").as_posix()
    assert missing_key not in keys

    msgs = receive_all(emu, q.url, len(keys) + 1)
    bodies = [json.loads(m["Body"]) for m in msgs]
    test_event_ids = [m["MessageId"] for m, b in zip(msgs, bodies) if b.get("Event") == "s3:TestEvent"]
    assert len(test_event_ids) == 1, f"expected one s3:TestEvent among {len(msgs)} messages"
    notified = {E.unquote_s3_key(b["Records"][0]["s3"]["object"]["key"]) for b in bodies if "Records" in b}
    assert notified == set(keys), f"notifications {sorted(notified)} != uploaded {sorted(keys)}"

    # A real notification body, its key changed to an object that does not exist (yet).
    template = next(b for b in bodies if "Records" in b)
    body = json.loads(json.dumps(template))
    body["Records"][0]["s3"]["object"]["key"] = quote_plus(missing_key)
    body["Records"][0]["s3"]["object"]["size"] = missing_file.stat().st_size
    emu.send(q.url, json.dumps(body))
    (missing_msg,) = receive_all(emu, q.url, 1)
    msgs.append(missing_msg)

    event = sqs_event(msgs, q.arn)
    first = invoke(lambda_bin, emu, lake, event, tmp / "event-1.json")
    print(f"first invocation: exit {first.rc} in {first.seconds:.2f}s, stdout {first.stdout.strip()[:300]}")
    return Handled(tmp, bucket, lake, q, corpus, ma, mb, missing_key, missing_file,
                   sqs_record(missing_msg, q.arn), msgs, test_event_ids, first, event)


def test_event_handler_end_to_end(emu, handled: Handled):
    """Real S3→SQS messages (TestEvent included) + one naming a missing object: exactly that one fails,
    every valid record of the uploaded corpus is in the lake exactly once."""
    h = handled
    inv = h.first
    assert inv.rc == 0, f"exit {inv.rc}\n{inv.tail()}"
    failures = inv.failures()
    missing_id = h.missing_record["messageId"]
    assert failures == [missing_id], \
        f"batchItemFailures {failures}, expected exactly the missing object's message [{missing_id}]\n{inv.tail()}"
    rows = check_lake(emu, h.lake, h.manifest_a, h.corpus / "a")
    assert len(rows) == h.manifest_a["records_valid"] - h.manifest_a["duplicate_event_ids"]
    assert not set(h.manifest_b["event_ids"]) & {r.event_id for r in rows}
    assert_lake_confined(emu, h.lake)
    q = E.read_quarantine(emu, h.lake)
    assert not (q.objects or q.records or q.messages or q.other), f"quarantine not empty: {q}"
    assert h.missing_key in inv.stderr or quote_plus(h.missing_key) in inv.stderr, \
        f"stderr does not name the missing key {h.missing_key!r}\n{inv.tail()}"
    print("stderr names the missing key", "plain" if h.missing_key in inv.stderr else "URL-encoded only")
    # One invocation = one flush: one Parquet file per partition.
    files = E.parquet_keys(emu, h.lake)
    parts = {E.parse_ext_key(k[len(E.split_lake(h.lake)[1]):])[0] for k in files}
    print(f"{len(files)} Parquet files for {len(parts)} partitions; {len(rows)} rows")
    assert len(files) == len(parts), f"{len(files)} files for {len(parts)} partitions: {files}"


def test_partial_failure_is_retryable(emu, lambda_bin, handled: Handled):
    """Upload the missing object, re-invoke with only the failed record: no failure, its rows land once."""
    h = handled
    assert h.first.rc == 0 and h.first.failures() == [h.missing_record["messageId"]], \
        "precondition (test 1's failure report) not met"
    emu.s3.put_object(Bucket=h.bucket, Key=h.missing_key, Body=h.missing_file.read_bytes())
    before = set(E.parquet_keys(emu, h.lake))
    inv = invoke(lambda_bin, emu, h.lake, {"Records": [h.missing_record]}, h.tmp / "event-2.json")
    print(f"retry invocation: exit {inv.rc} in {inv.seconds:.2f}s, stdout {inv.stdout.strip()[:300]}")
    assert inv.rc == 0, f"exit {inv.rc}\n{inv.tail()}"
    assert inv.failures() == [], f"retry still reports failures\n{inv.tail()}"
    new = set(E.parquet_keys(emu, h.lake)) - before
    assert new, "the retry wrote no Parquet file"
    rows = check_lake(emu, h.lake, merge_manifests(h.manifest_a, h.manifest_b), h.corpus)
    ids_b = set(h.manifest_b["event_ids"])
    assert {r.event_id for r in rows if r.key in new} == ids_b, "the new files hold other rows than object b's"
    assert_lake_confined(emu, h.lake)


# --------------------------------------------------------------------------- 3: shapes + garbage


def test_event_other_shapes_and_garbage(emu, lambda_bin, tmp_path):
    """SNS envelope, EventBridge, CloudTrail SNS, an enveloped TestEvent and an unparseable body in
    one event: no failure; the body is quarantined under _quarantine/messages/; every record lands."""
    bucket = emu.bucket("lam3-trail")
    lake = f"s3://{emu.bucket('lam3-lake')}/lake"
    q = emu.queue("lam3", max_receive=None)
    m = E.generate(tmp_path / "corpus", 303, tmp_path / "m.json", accounts=1, days=1, files=4, records_per_file=20)
    sizes = emu.upload_tree(bucket, tmp_path / "corpus")
    keys = sorted(sizes)
    bodies = {
        "s3-in-envelope": E.sns_envelope(E.s3_event(bucket, keys[0], sizes[keys[0]])),
        "eventbridge": E.eventbridge_object_created(bucket, keys[1], sizes[keys[1]]),
        "cloudtrail-sns": E.sns_envelope(E.cloudtrail_sns_message(bucket, keys[2:4])),
        "testevent-envelope": E.sns_envelope(E.s3_test_event(bucket)),
    }
    for b in bodies.values():
        emu.send(q.url, b)
    garbage_id = emu.send(q.url, "this is not a notification")
    msgs = receive_all(emu, q.url, len(bodies) + 1)
    inv = invoke(lambda_bin, emu, lake, sqs_event(msgs, q.arn), tmp_path / "event.json")
    assert inv.rc == 0, f"exit {inv.rc}\n{inv.tail()}"
    assert inv.failures() == [], f"failures reported for valid shapes / a quarantined body\n{inv.tail()}"
    check_lake(emu, lake, m, tmp_path / "corpus")
    qu = E.read_quarantine(emu, lake)
    names = [n for n in qu.messages if garbage_id in n]
    assert names and "this is not a notification" in qu.messages[names[0]], \
        f"the unparseable body (message {garbage_id}) is not in _quarantine/messages/: {sorted(qu.messages)}"
    assert len(qu.messages) == 1 and not qu.objects and not qu.records, f"unexpected quarantine: {qu}"


def fake_message(body: dict) -> dict:
    """An SQS message (boto3 shape) as the poller would hand it over, for `--event`."""
    text = json.dumps(body)
    return {"MessageId": str(uuid.uuid4()), "ReceiptHandle": uuid.uuid4().hex, "Body": text,
            "MD5OfBody": hashlib.md5(text.encode()).hexdigest(), "Attributes": {}}


def test_a_mixed_object_maps_as_its_records_do_in_their_own_objects(emu, lambda_bin, tmp_path):
    """One object mixing the records of ~200 partitions (a merge or an export of trails: a chunk
    keeps the records past its 64th partition as JSON, mapped when the partition is written) gives
    the same rows as the same records in their own trail files, column for column, and one file per
    partition."""
    import pyarrow.parquet as pq

    corpus = tmp_path / "corpus"
    E.generate(corpus, 606, tmp_path / "m.json", accounts=12, days=2, files=36, records_per_file=20)
    # Records that name their own account and region: in any object they map to the same row.
    by_part: dict[tuple, list[dict]] = {}
    for f in sorted(p for p in corpus.rglob("*.json.gz")):
        for r in json.loads(gzip.decompress(f.read_bytes()))["Records"]:
            if r.get("recipientAccountId") and r.get("awsRegion"):
                key = (r["recipientAccountId"], r["awsRegion"], r["eventTime"][:10], r.get("eventSource"))
                by_part.setdefault(key, []).append(r)
    mixed = []
    while any(by_part.values()):
        mixed += [q.pop(0) for q in by_part.values() if q]
    assert len(mixed) > 500, len(mixed)

    # The same records as trail files of their own (grouped as the generator made them) ...
    own = tmp_path / "own"
    for f in sorted(p for p in corpus.rglob("*.json.gz")):
        recs = [r for r in json.loads(gzip.decompress(f.read_bytes()))["Records"]
                if r.get("recipientAccountId") and r.get("awsRegion")]
        dest = own / f.relative_to(corpus)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(gzip.compress(json.dumps({"Records": recs}).encode()))
    # ... and as one object.
    mixed_key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/09/111122223333_CloudTrail_us-east-1_20240309T0000Z_mix.json.gz"
    body = gzip.compress(json.dumps({"Records": mixed}).encode())

    bucket = emu.bucket("lam6-trail")
    sizes = emu.upload_tree(bucket, own)
    emu.s3.put_object(Bucket=bucket, Key=mixed_key, Body=body)
    arn = f"arn:aws:sqs:{E.REGION}:{E.ACCOUNT}:lam6"
    lakes = {}
    for name, keys in [("own", sorted(sizes)), ("mixed", [mixed_key])]:
        lake = f"s3://{emu.bucket('lam6-' + name)}/lake"
        size = lambda k: sizes.get(k, len(body))
        event = sqs_event([fake_message(E.s3_event(bucket, k, size(k))) for k in keys], arn)
        inv = invoke(lambda_bin, emu, lake, event, tmp_path / f"event-{name}.json", timeout=180)
        assert inv.rc == 0 and inv.failures() == [], f"{name}: exit {inv.rc}\n{inv.tail()}"
        lakes[name] = lake

    def rows(lake: str) -> tuple[dict[str, dict], int, int]:
        bucket, prefix = E.split_lake(lake)
        out, files, parts = {}, 0, set()
        for key in E.parquet_keys(emu, lake):
            files += 1
            parts.add(E.parse_ext_key(key[len(prefix):])[0])
            for r in pq.read_table(io.BytesIO(emu.get(bucket, key))).to_pylist():
                assert out.setdefault(r["metadata"]["uid"], r) == r, f"two rows of {r['metadata']['uid']}"
        return out, files, len(parts)

    own_rows, _, _ = rows(lakes["own"])
    mixed_rows, files, parts = rows(lakes["mixed"])
    print(f"{len(mixed)} records, {len(mixed_rows)} rows, {files} files for {parts} partitions")
    assert parts > 64, f"only {parts} partitions: the mix does not reach the JSON path"
    assert files == parts, f"{files} files for {parts} partitions"
    assert set(mixed_rows) == set(own_rows)
    differ = [uid for uid in own_rows if own_rows[uid] != mixed_rows[uid]]
    assert not differ, f"{len(differ)} rows differ, e.g. {differ[0]}: {own_rows[differ[0]]} != {mixed_rows[differ[0]]}"


def test_unwritable_lake_fails_every_object_message(emu, lambda_bin, tmp_path):
    """The lake bucket does not exist: no object can be made durable, so every object message is a
    batch item failure (exit 0, the response still printed); the s3:TestEvent is not."""
    bucket = emu.bucket("lam5-trail")
    q = emu.queue("lam5", max_receive=None)
    emu.notify_sqs(bucket, q.arn)
    E.generate(tmp_path / "corpus", 505, tmp_path / "m.json", accounts=1, days=1, files=2, records_per_file=10)
    keys = emu.upload_tree(bucket, tmp_path / "corpus")
    msgs = receive_all(emu, q.url, len(keys) + 1)
    test_ids = {m["MessageId"] for m in msgs if json.loads(m["Body"]).get("Event") == "s3:TestEvent"}
    ghost = E.unique("lam5-no-such-lake")
    inv = invoke(lambda_bin, emu, f"s3://{ghost}/lake", sqs_event(msgs, q.arn), tmp_path / "event.json")
    assert inv.rc == 0, f"exit {inv.rc}\n{inv.tail()}"
    want = {m["MessageId"] for m in msgs} - test_ids
    got = inv.failures()
    assert sorted(got) == sorted(want), f"batchItemFailures {got}, expected every object message {sorted(want)}\n{inv.tail()}"
    assert ghost in inv.stderr, f"stderr does not name the lake bucket {ghost}\n{inv.tail()}"


# --------------------------------------------------------------------------- 4: Runtime API


class RuntimeAPI:
    """A minimal Lambda Runtime API on 127.0.0.1: hands out queued events on GET .../invocation/next
    (long-polling while none is queued) and records responses, invocation errors and init errors."""

    def __init__(self):
        self.pending: queue_mod.Queue = queue_mod.Queue()
        self.lock = threading.Lock()
        self.next_gets: list[float] = []                   # monotonic time of each GET /next
        self.dispatched: dict[str, float] = {}             # request id → time the event was handed out
        self.responses: dict[str, tuple[float, bytes]] = {}
        self.errors: dict[str, tuple[float, bytes, dict]] = {}
        self.init_errors: list[tuple[bytes, dict]] = []
        self.unknown: list[str] = []
        self.stopping = threading.Event()
        self.generation = 0  # bumped per bootstrap process: stale long-polls of a dead one give up
        self.done = threading.Condition(self.lock)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *a):  # quiet
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != RUNTIME_PREFIX + "/invocation/next":
                    api.unknown.append(f"GET {self.path}")
                    return self._reply(404, b'{"errorMessage":"not found"}')
                with api.lock:
                    api.next_gets.append(time.monotonic())
                    gen = api.generation
                while True:
                    if api.stopping.is_set() or api.generation != gen:
                        self.close_connection = True
                        return
                    try:
                        rid, payload = api.pending.get(timeout=0.05)
                        if api.generation != gen:  # taken by a stale poll: give it back
                            api.pending.put((rid, payload))
                            self.close_connection = True
                            return
                        break
                    except queue_mod.Empty:
                        if api.stopping.is_set():
                            self.close_connection = True
                            return
                with api.lock:
                    api.dispatched[rid] = time.monotonic()
                self._reply(200, payload, {
                    "Lambda-Runtime-Aws-Request-Id": rid,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 60_000),
                    "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:{E.REGION}:{E.ACCOUNT}:function:trailhouse",
                    "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
                })

            def do_POST(self):
                body = self._body()
                now = time.monotonic()
                path = self.path
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                with api.lock:
                    if path == RUNTIME_PREFIX + "/init/error":
                        api.init_errors.append((body, hdrs))
                    elif path.startswith(RUNTIME_PREFIX + "/invocation/") and path.endswith("/response"):
                        api.responses[path.split("/")[-2]] = (now, body)
                    elif path.startswith(RUNTIME_PREFIX + "/invocation/") and path.endswith("/error"):
                        api.errors[path.split("/")[-2]] = (now, body, hdrs)
                    else:
                        api.unknown.append(f"POST {path}")
                        api.done.notify_all()
                        return self._reply(404, b'{"errorMessage":"not found"}')
                    api.done.notify_all()
                self._reply(202, b'{"status":"OK"}')

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

        self.server = Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def queue(self, event: dict | bytes) -> str:
        rid = str(uuid.uuid4())
        self.pending.put((rid, event if isinstance(event, bytes) else json.dumps(event).encode()))
        return rid

    def wait_result(self, rid: str, timeout: float, proc: subprocess.Popen | None = None) -> str:
        """Waits for the response or error of `rid`; returns 'response' or 'error'."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while rid not in self.responses and rid not in self.errors and not self.init_errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no result for invocation {rid} within {timeout}s")
                if proc is not None and proc.poll() is not None:
                    raise AssertionError(f"bootstrap exited with {proc.returncode} before answering {rid}")
                self.done.wait(min(left, 0.1))
            if self.init_errors:
                raise AssertionError(f"init error posted: {self.init_errors}")
            return "response" if rid in self.responses else "error"

    def close(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


class Bootstrap:
    """The binary started as `bootstrap` (a symlink of that name) against a RuntimeAPI."""

    def __init__(self, bin_path: str, workdir: Path, api: RuntimeAPI, env: dict[str, str], n: int):
        link = workdir / "bootstrap"
        if not link.exists():
            link.symlink_to(bin_path)
        self.stderr_path = workdir / f"bootstrap-{n}.stderr"
        self._err = open(self.stderr_path, "wb")
        full = {**env, "AWS_LAMBDA_RUNTIME_API": api.address, "AWS_LAMBDA_FUNCTION_NAME": "trailhouse",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"2024/03/09/[$LATEST]{uuid.uuid4().hex}",
                "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/trailhouse", "_HANDLER": "bootstrap",
                "LAMBDA_TASK_ROOT": str(workdir)}
        self.spawned = time.monotonic()
        self.proc = subprocess.Popen([str(link)], stdout=self._err, stderr=subprocess.STDOUT, env=full, cwd=workdir)

    def stderr(self) -> str:
        if not self._err.closed:
            self._err.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int | None:
        """SIGTERM (as Lambda does at shutdown), then SIGKILL after 5 s; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        return self.proc.returncode


def test_runtime_api_loop(emu, lambda_bin, tmp_path):
    """`bootstrap` (a symlink) serves a small real batch, then TestEvent-only batches, through the
    Runtime API: responses as expected, no init/invocation error, the loop polls again afterwards.
    Three processes (3 cold starts, 9 TestEvent invocations) give the timings; only run 0 carries the
    real batch (so the lake is checked once, without duplicates)."""
    bucket = emu.bucket("lam4-trail")
    lake = f"s3://{emu.bucket('lam4-lake')}/lake"
    q = emu.queue("lam4", max_receive=None)
    emu.notify_sqs(bucket, q.arn)
    (test_msg,) = receive_all(emu, q.url, 1)
    assert json.loads(test_msg["Body"]).get("Event") == "s3:TestEvent", test_msg["Body"]
    m = E.generate(tmp_path / "corpus", 404, tmp_path / "m.json", accounts=1, days=1, files=3, records_per_file=20)
    keys = emu.upload_tree(bucket, tmp_path / "corpus")
    batch = receive_all(emu, q.url, len(keys))
    real_event = sqs_event(batch, q.arn)
    test_event = sqs_event([test_msg], q.arn)

    env = base_env(emu, TRAILHOUSE_LAKE=lake)
    runs, overhead_s, real_s, cold_s, turnaround_s = [], [], [], [], []
    api = RuntimeAPI()
    procs: list[Bootstrap] = []
    try:
        for run in range(3):
            with api.lock:
                api.generation += 1  # before queueing: a stale long-poll of the previous process must not take these
                n_gets = len(api.next_gets)
            rids = []
            if run == 0:
                rids.append(("real", api.queue(real_event)))
            for _ in range(3):
                rids.append(("test", api.queue(test_event)))
            b = Bootstrap(lambda_bin, tmp_path, api, env, run)
            procs.append(b)
            results = {}
            for kind, rid in rids:
                try:
                    results[rid] = api.wait_result(rid, 60, b.proc)
                except AssertionError as e:
                    raise AssertionError(f"run {run}, {kind} invocation: {e}\n--- bootstrap output:\n{b.stderr()[-4000:]}") from None
            first_get = api.next_gets[n_gets]
            cold_s.append(first_get - b.spawned)
            errors = {rid: api.errors[rid][1].decode(errors='replace') for _, rid in rids if rid in api.errors}
            assert not errors, f"run {run}: invocation errors posted: {errors}\n{b.stderr()[-4000:]}"
            for kind, rid in rids:
                t_resp, body = api.responses[rid]
                resp = json.loads(body)
                assert resp == {"batchItemFailures": []}, f"run {run}, {kind} batch: response {resp}\n{b.stderr()[-3000:]}"
                took = t_resp - api.dispatched[rid]
                (real_s if kind == "real" else overhead_s).append(took)
            # Runtime loop turnaround: POST /response → the next GET /next.
            with api.lock:
                gets = list(api.next_gets[n_gets:])
            for _, rid in rids[:-1]:
                t_resp = api.responses[rid][0]
                later = [g for g in gets if g >= t_resp]
                if later:
                    turnaround_s.append(later[0] - t_resp)
            # Wait for the loop to come back for the next event: the process is alive and polling.
            E.wait_for(lambda: len(api.next_gets) >= n_gets + len(rids) + 1 or b.proc.poll() is not None,
                       10, 0.02, "the next GET /invocation/next")
            assert b.proc.poll() is None, f"bootstrap exited ({b.proc.returncode}) after its invocations\n{b.stderr()[-3000:]}"
            rc = b.stop()
            runs.append({"run": run, "cold_start_s": round(cold_s[-1], 4), "exit_after_sigterm": rc})
            if run == 0:
                rows = check_lake(emu, lake, m, tmp_path / "corpus")
                print(f"run 0: {len(rows)} rows in the lake; bootstrap log tail:\n" + "\n".join(b.stderr().splitlines()[-8:]))
        assert not api.init_errors, f"init errors posted: {api.init_errors}"
        assert not api.errors, f"invocation errors posted: {api.errors}"
        assert not api.unknown, f"unexpected Runtime API requests: {api.unknown}"
    finally:
        for b in procs:
            b.stop()
        api.close()

    def stats(xs):
        ms = [x * 1000 for x in xs]
        return {"n": len(ms), "min_ms": round(min(ms), 2), "median_ms": round(statistics.median(ms), 2),
                "max_ms": round(max(ms), 2), "samples_ms": [round(x, 2) for x in ms]}

    timings = {
        "binary": lambda_bin,
        "binary_profile": "debug" if "/debug/" in lambda_bin else "release" if "/release/" in lambda_bin else "unknown",
        "cold_start": {"what": "process spawn -> first GET /runtime/invocation/next", **stats(cold_s)},
        "invocation_overhead": {"what": "s3:TestEvent-only batch: event handed out on GET /next -> POST /response",
                                **stats(overhead_s)},
        "loop_turnaround": {"what": "POST /response -> the next GET /next (same process)", **stats(turnaround_s)},
        "real_batch": {"what": f"{len(keys)} objects, {m['records_total']} records: GET /next -> POST /response "
                               "(moto on localhost)", **stats(real_s)},
        "runs": runs,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    TIMINGS_PATH.write_text(json.dumps(timings, indent=2) + "\n")
    print("lambda timings:", json.dumps(timings, indent=2))
    assert len(cold_s) == 3 and len(overhead_s) == 9 and real_s, "timings not measured"
