"""Helpers for the end-to-end tests of `trailhouse run` against a local S3/SQS/SNS emulator.

Everything here talks to a moto server on 127.0.0.1 (never to real AWS): starting and
stopping it, creating buckets, queues (with a dead-letter queue), SNS topics and bucket
notifications, uploading a generated CloudTrail corpus, running the worker as a
subprocess, and reading back what it wrote (Parquet rows, quarantine, queue state).

moto facts these helpers rely on (moto 5.2.5, checked by test_emulator_self_check):
- configuring a bucket notification sends an `s3:TestEvent` to each target;
- S3 event records carry the key URL-encoded (`quote_plus`: `/` → `%2F`, space → `+`);
- S3 → SNS → SQS wraps the S3 event in an SNS envelope unless raw delivery is on;
- `/moto-api/reset` wipes every test's state, so each test uses unique names instead.
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import boto3
from botocore.config import Config

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

# Class name in the `ext` layout's source directory → OCSF class_uid.
CLASS_DIRS = {"API_ACTIVITY": 6003, "AUTHENTICATION": 3002, "ACCOUNT_CHANGE": 3001}
SOURCES = {"CLOUD_TRAIL_MGMT", "S3_DATA", "LAMBDA_EXECUTION", "CLOUD_TRAIL_DATA"}
EXT_KEY = re.compile(
    r"^ext/(?P<source>[A-Z0-9_]+?)_(?P<cls>API_ACTIVITY|AUTHENTICATION|ACCOUNT_CHANGE)/1\.0/"
    r"region=(?P<region>[a-z0-9-]+)/accountId=(?P<account>[0-9]+)/eventDay=(?P<day>[0-9]{8})/"
    r"(?P<name>[0-9a-f]{32})\.parquet$"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(stem: str) -> str:
    """A bucket/queue name unique to this call (lowercase, ≤ 63 characters)."""
    stem = re.sub(r"[^a-z0-9-]", "-", stem.lower())[:40].strip("-")
    return f"{stem}-{uuid.uuid4().hex[:12]}"


def wait_for(pred: Callable[[], object], timeout: float, interval: float = 0.2, what: str = "condition"):
    """Polls `pred` until it returns a truthy value (returned) or `timeout` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- moto server


class MotoServer:
    """A moto server subprocess on a free port of 127.0.0.1."""

    def __init__(self, log_path: Path, start_timeout: float = 20.0):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        exe = Path(sys.executable).parent / "moto_server"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "moto.server"]
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [*cmd, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, **CREDS, "AWS_DEFAULT_REGION": REGION},
        )
        deadline = time.monotonic() + start_timeout
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto_server did not answer within {start_timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# --------------------------------------------------------------------------- AWS resources


@dataclass
class Queue:
    name: str
    url: str
    arn: str
    dlq_url: str | None = None
    dlq_arn: str | None = None


class Emulator:
    """boto3 clients pointed at the moto server, and resource helpers."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                     connect_timeout=5, read_timeout=30)
        self.s3 = self.session.client("s3", endpoint_url=endpoint, config=cfg)
        self.sqs = self.session.client("sqs", endpoint_url=endpoint, config=cfg)
        self.sns = self.session.client("sns", endpoint_url=endpoint, config=cfg)

    # ---- environment for the worker
    def env(self) -> dict[str, str]:
        return {
            **CREDS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "TRAILHOUSE_S3_PATH_STYLE": "true",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    # ---- S3
    def bucket(self, stem: str) -> str:
        name = unique(stem)
        self.s3.create_bucket(Bucket=name)
        return name

    def notify_sqs(self, bucket: str, queue_arn: str, prefix: str | None = "AWSLogs/",
                   suffix: str | None = ".json.gz") -> None:
        """S3 → SQS for ObjectCreated (moto sends an s3:TestEvent on configuration)."""
        self.s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={"QueueConfigurations": [{
                "Id": "trail-to-sqs", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
                **_filter(prefix, suffix)}]},
        )

    def notify_sns(self, bucket: str, topic_arn: str, prefix: str | None = "AWSLogs/",
                   suffix: str | None = ".json.gz") -> None:
        """S3 → SNS for ObjectCreated (moto publishes an s3:TestEvent on configuration)."""
        self.s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={"TopicConfigurations": [{
                "Id": "trail-to-sns", "TopicArn": topic_arn, "Events": ["s3:ObjectCreated:*"],
                **_filter(prefix, suffix)}]},
        )

    def upload_tree(self, bucket: str, root: Path, workers: int = 8) -> dict[str, int]:
        """Uploads every file under `root` with its relative path as the key; returns {key: size}."""
        files = sorted(p for p in root.rglob("*") if p.is_file())
        keys = {p.relative_to(root).as_posix(): p.stat().st_size for p in files}

        def put(p: Path) -> None:
            key = p.relative_to(root).as_posix()
            if p.stat().st_size > 64 << 20:
                self.s3.upload_file(str(p), bucket, key)  # multipart
            else:
                self.s3.put_object(Bucket=bucket, Key=key, Body=p.read_bytes())

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(put, files))
        return keys

    def list_keys(self, bucket: str, prefix: str = "") -> dict[str, int]:
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = o["Size"]
        return out

    def get(self, bucket: str, key: str) -> bytes:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    # ---- SQS
    def queue(self, stem: str, visibility: int = 30, max_receive: int | None = 5) -> Queue:
        """A standard queue; with `max_receive`, a DLQ and a redrive policy."""
        name = unique(stem)
        attrs = {"VisibilityTimeout": str(visibility), "MessageRetentionPeriod": "3600"}
        dlq_url = dlq_arn = None
        if max_receive is not None:
            dlq_url = self.sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
            dlq_arn = self.queue_arn(dlq_url)
            attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn,
                                                 "maxReceiveCount": str(max_receive)})
        url = self.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        return Queue(name, url, self.queue_arn(url), dlq_url, dlq_arn)

    def queue_arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def counts(self, url: str) -> tuple[int, int]:
        """(ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible)."""
        a = self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

    def wait_drained(self, url: str, timeout: float, worker: "Worker | None" = None, settle: float = 0.0) -> float:
        """Waits until the queue holds no message, visible or in flight; returns the seconds waited.

        Fails early (with the worker's stderr) if `worker` exits non-zero meanwhile.
        """
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            vis, inflight = self.counts(url)
            if vis == 0 and inflight == 0:
                if settle <= 0:
                    return time.monotonic() - t0
                time.sleep(settle)
                if self.counts(url) == (0, 0):
                    return time.monotonic() - t0
                continue
            if worker is not None and worker.proc.poll() not in (None, 0):
                raise AssertionError(
                    f"worker exited with {worker.proc.returncode} while the queue still held "
                    f"{vis} visible + {inflight} in-flight messages\n{worker.stderr_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"queue not drained after {timeout}s: {vis} visible, {inflight} in flight"
                    + (f"\n{worker.stderr_tail()}" if worker else ""))
            time.sleep(0.25)

    def send(self, url: str, body: str | dict) -> str:
        if not isinstance(body, str):
            body = json.dumps(body)
        return self.sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]

    def drain_messages(self, url: str, wait: float = 1.0, delete: bool = False) -> list[dict]:
        """Receives every visible message (with its attributes); deletes them if asked."""
        out, empty_since = [], None
        while True:
            r = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                         VisibilityTimeout=60, AttributeNames=["All"])
            msgs = r.get("Messages", [])
            if not msgs:
                empty_since = empty_since or time.monotonic()
                if time.monotonic() - empty_since >= wait:
                    return out
                time.sleep(0.1)
                continue
            empty_since = None
            out.extend(msgs)
            if delete:
                for m in msgs:
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    # ---- SNS
    def topic(self, stem: str) -> str:
        return self.sns.create_topic(Name=unique(stem))["TopicArn"]

    def subscribe(self, topic_arn: str, queue_arn: str, raw: bool) -> str:
        return self.sns.subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
            Attributes={"RawMessageDelivery": "true" if raw else "false"}, ReturnSubscriptionArn=True,
        )["SubscriptionArn"]


def _filter(prefix: str | None, suffix: str | None) -> dict:
    rules = []
    if prefix:
        rules.append({"Name": "prefix", "Value": prefix})
    if suffix:
        rules.append({"Name": "suffix", "Value": suffix})
    return {"Filter": {"Key": {"FilterRules": rules}}} if rules else {}


# --------------------------------------------------------------------------- message bodies


def s3_event(bucket: str, key: str, size: int = 0, encode: bool = True) -> dict:
    """An S3 ObjectCreated:Put notification as S3 sends it (key URL-encoded)."""
    from urllib.parse import quote_plus

    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2024-03-09T12:00:00.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "manual",
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key) if encode else key, "size": size,
                          "eTag": "0123456789abcdef0123456789abcdef", "sequencer": "0065F0000000000000"}},
    }]}


def cloudtrail_sns_message(bucket: str, keys: list[str]) -> dict:
    """CloudTrail's own SNS notification (keys plain)."""
    return {"s3Bucket": bucket, "s3ObjectKey": list(keys)}


def eventbridge_object_created(bucket: str, key: str, size: int = 0) -> dict:
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Object Created", "source": "aws.s3",
        "account": ACCOUNT, "time": "2024-03-09T12:00:00Z", "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": size, "etag": "b1946ac92492d2347c6235b4d2611184",
                              "sequencer": "617f08299329d189"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": ACCOUNT,
                   "source-ip-address": "1.2.3.4", "reason": "PutObject"},
    }


def sns_envelope(inner: dict | str, topic_arn: str = f"arn:aws:sns:{REGION}:{ACCOUNT}:trail") -> dict:
    return {
        "Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": topic_arn,
        "Message": inner if isinstance(inner, str) else json.dumps(inner),
        "Timestamp": "2024-03-09T12:00:00.000Z", "SignatureVersion": "1", "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/x.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def s3_test_event(bucket: str) -> dict:
    return {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-03-09T12:00:00.000Z",
            "Bucket": bucket, "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}


# --------------------------------------------------------------------------- trailhouse binary


def trailhouse_bin() -> str:
    return os.environ.get("TRAILHOUSE_BIN", "/work/target/debug/trailhouse")


def generate(out: Path, seed: int, manifest: Path | None = None, **opts) -> dict:
    """Runs `trailhouse generate`; returns the manifest. opts: accounts=2, hostile=True, large_file="150MB"…"""
    manifest = manifest or out.with_name(out.name + ".manifest.json")
    args = [trailhouse_bin(), "generate", "--out", str(out), "--seed", str(seed), "--manifest", str(manifest)]
    for k, v in opts.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            args.append(flag)
        elif v not in (None, False):
            args += [flag, str(v)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"generate failed ({p.returncode}): {' '.join(args)}\n{p.stderr}"
    return json.loads(manifest.read_text())


class Worker:
    """`trailhouse run` as a subprocess; stderr goes to a file kept for diagnostics."""

    def __init__(self, emu: Emulator, queue_url: str, lake: str, workdir: Path, args: Iterable[str] = (),
                 env: dict[str, str] | None = None, name: str = "worker", use_env_for_target: bool = False):
        workdir.mkdir(parents=True, exist_ok=True)
        n = 0
        while (workdir / f"{name}-{n}.stderr").exists():
            n += 1
        self.stderr_path = workdir / f"{name}-{n}.stderr"
        self.summary_path = workdir / f"{name}-{n}.summary.json"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        full_env.update(emu.env())
        full_env.setdefault("RUST_BACKTRACE", "1")
        full_env.update(env or {})
        args = list(args)
        if "--summary" not in args:
            args += ["--summary", str(self.summary_path)]
        if use_env_for_target:
            full_env["TRAILHOUSE_QUEUE_URL"] = queue_url
            full_env["TRAILHOUSE_LAKE"] = lake
            self.cmd = [trailhouse_bin(), "run", *args]
        else:
            self.cmd = [trailhouse_bin(), "run", "--queue-url", queue_url, "--lake", lake, *args]
        self._err = open(self.stderr_path, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=self._err, stderr=subprocess.STDOUT, env=full_env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        """Waits for exit; on timeout kills the process and fails with its stderr."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker still running after {timeout}s (killed)\n{self.stderr_tail()}")
        self._err.flush()
        return rc

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def terminate_and_wait(self, timeout: float = 30) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr_tail(self, n: int = 60) -> str:
        lines = self.stderr().splitlines()
        return f"--- {self.stderr_path} (last {min(n, len(lines))} of {len(lines)} lines; cmd: {' '.join(self.cmd)})\n" + "\n".join(lines[-n:])

    def summary(self) -> dict:
        assert self.summary_path.exists(), f"no summary written at {self.summary_path}\n{self.stderr_tail()}"
        return json.loads(self.summary_path.read_text())

    def close(self) -> None:
        self.kill()
        self._err.close()


# --------------------------------------------------------------------------- reading the lake


@dataclass(frozen=True)
class Row:
    partition: str  # manifest form: SOURCE/class_uid/region/account/YYYYMMDD
    event_id: str
    class_uid: int
    time: int
    key: str


def split_lake(lake: str) -> tuple[str, str]:
    """s3://bucket/prefix → (bucket, 'prefix/') ('' for no prefix)."""
    assert lake.startswith("s3://"), lake
    bucket, _, prefix = lake[5:].partition("/")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/" if prefix else "")


def parse_ext_key(rel: str) -> tuple[str, int] | None:
    """'ext/SOURCE_CLASS/1.0/region=…/accountId=…/eventDay=…/hex.parquet' → (manifest partition, class_uid)."""
    m = EXT_KEY.match(rel)
    if not m or m["source"] not in SOURCES:
        return None
    uid = CLASS_DIRS[m["cls"]]
    return f"{m['source']}/{uid}/{m['region']}/{m['account']}/{m['day']}", uid


def lake_rows(emu: Emulator, lake: str) -> tuple[list[Row], list[str]]:
    """Every row of every Parquet file under `lake`/ext/, and the keys that do not fit the layout."""
    import pyarrow.parquet as pq

    bucket, prefix = split_lake(lake)
    rows, bad = [], []
    for key in sorted(emu.list_keys(bucket, prefix + "ext/")):
        rel = key[len(prefix):]
        if rel.startswith(FINDINGS_PREFIX):
            continue  # Detection Findings from Insights files: see finding_keys
        parsed = parse_ext_key(rel)
        if parsed is None:
            bad.append(key)
            continue
        part, uid = parsed
        table = pq.read_table(io.BytesIO(emu.get(bucket, key)), columns=["metadata", "class_uid", "time"])
        for r in table.to_pylist():
            if r["class_uid"] != uid:
                bad.append(f"{key}: row {r['metadata'].get('uid')} has class_uid {r['class_uid']}")
            rows.append(Row(part, r["metadata"]["uid"], r["class_uid"], r["time"], key))
    return rows, bad


FINDINGS_PREFIX = "ext/CLOUD_TRAIL_INSIGHTS_DETECTION_FINDING/1.0/"


def finding_keys(emu: Emulator, lake: str) -> list[str]:
    """Parquet keys of the Detection Finding table (one row each)."""
    bucket, prefix = split_lake(lake)
    return [k for k in emu.list_keys(bucket, prefix + FINDINGS_PREFIX) if k.endswith(".parquet")]


def parquet_keys(emu: Emulator, lake: str) -> list[str]:
    bucket, prefix = split_lake(lake)
    return [k for k in emu.list_keys(bucket, prefix + "ext/") if k.endswith(".parquet")]


@dataclass
class Quarantine:
    objects: dict[str, bytes] = field(default_factory=dict)   # name → bytes (the copied object)
    reasons: dict[str, dict] = field(default_factory=dict)    # name (without .reason.json) → reason JSON
    records: dict[str, list[str]] = field(default_factory=dict)  # file name → lines
    messages: dict[str, str] = field(default_factory=dict)    # file name → content
    other: list[str] = field(default_factory=list)            # keys under _quarantine/ that fit nowhere


def read_quarantine(emu: Emulator, lake: str) -> Quarantine:
    bucket, prefix = split_lake(lake)
    q = Quarantine()
    base = prefix + "_quarantine/"
    for key in sorted(emu.list_keys(bucket, base)):
        rel = key[len(base):]
        kind, _, name = rel.partition("/")
        if kind == "objects" and name.endswith(".reason.json"):
            try:
                q.reasons[name[: -len(".reason.json")]] = json.loads(emu.get(bucket, key))
            except ValueError:
                q.reasons[name[: -len(".reason.json")]] = {"unparseable": emu.get(bucket, key).decode(errors="replace")}
        elif kind == "objects":
            q.objects[name] = emu.get(bucket, key)
        elif kind == "records" and name.endswith(".jsonl"):
            q.records[name] = [l for l in emu.get(bucket, key).decode(errors="replace").splitlines() if l.strip()]
        elif kind == "messages":
            q.messages[name] = emu.get(bucket, key).decode(errors="replace")
        else:
            q.other.append(key)
    return q


def ids_in_prefix_of(gz: bytes) -> set[str]:
    """eventIDs readable in the decompressible prefix of a (possibly truncated) gzip object."""
    try:
        text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(gz)
    except zlib.error:
        return set()
    return {m.decode() for m in re.findall(rb'"eventID"\s*:\s*"([^"]+)"', text)}


# --------------------------------------------------------------------------- metrics


def scrape(addr: str, timeout: float = 5) -> dict[str, float]:
    """GET http://addr/metrics → {'name' or 'name{labels}': value} (Prometheus text format)."""
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=timeout) as r:
        assert r.status == 200, r.status
        text = r.read().decode()
    return parse_prometheus(text)


def parse_prometheus(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)', line)
        if m:
            name = m.group(1)
            if "{" in name:  # normalise label spacing/quoting order
                base, labels = name.split("{", 1)
                pairs = sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels))
                name = base + "{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}"
            out[name] = float(m.group(2))
    return out


def unquote_s3_key(key: str) -> str:
    """The object key of an S3 event record (URL-encoded with quote_plus) in plain form."""
    from urllib.parse import unquote_plus

    return unquote_plus(key)
