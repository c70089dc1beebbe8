"""Writes one CloudTrail log file that mixes many partitions, for the README's Memory
section ("Inputs that spread over many partitions", "A mix of many partitions waits as
JSON"): no trail writes such a file (one file is one account and region), but a merge
or an export of trails can.

    python3 bench/mixed_trail.py OUT.json.gz BYTES ACCOUNTS REGIONS DAYS
        the sample trails' records, each re-addressed to a random account, region and
        time, until BYTES of JSON (the README: 3e8 200 4 3, and 1.5e8 50 4 1)
    python3 bench/mixed_trail.py --adversarial OUT.json.gz CHUNKS
        CHUNKS × 4,096 records, each 4,096 opening with 64 records of rare partitions
        and going on with one dominant partition, so that a replay's chunks (4,096
        rows) keep the dominant partition's records as JSON in every chunk

Put OUT under a trail-like folder, e.g.
DIR/AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/01/111111111111_CloudTrail_us-east-1_20240301T0000Z_mix.json.gz,
and replay DIR (`replay_bench DIR`, or `trailhouse replay DIR --lake LAKE`).
"""
import glob
import gzip
import json
import os
import random
import sys
import uuid

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples")
REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2",
           "eu-central-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1",
           "ca-central-1", "eu-north-1", "ap-south-1", "eu-west-3", "ap-northeast-2",
           "us-gov-west-1", "me-south-1", "af-south-1", "eu-south-1"]


def write(out, records):
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    n = written = 0
    with gzip.open(out, "wb", compresslevel=1) as g:
        g.write(b'{"Records":[')
        for r in records:
            b = json.dumps(r, separators=(",", ":")).encode()
            if n:
                g.write(b",")
            g.write(b)
            n += 1
            written += len(b)
        g.write(b"]}")
    print(n, "records", written, "bytes of record JSON")


def mixed(target_bytes, accounts, regions, days):
    recs = []
    for f in sorted(glob.glob(os.path.join(SAMPLES, "AWSLogs", "**", "*.json.gz"), recursive=True)):
        recs += json.load(gzip.open(f))["Records"]
    rng = random.Random(5)
    accts = [f"{rng.randrange(10**11, 10**12):012d}" for _ in range(accounts)]
    regs = REGIONS[:regions]
    written = 0
    while written < target_bytes:
        r = dict(rng.choice(recs))
        r["recipientAccountId"] = rng.choice(accts)
        r["awsRegion"] = rng.choice(regs)
        d, s = rng.randrange(days), rng.randrange(86400)
        r["eventTime"] = f"2024-03-{1 + d:02d}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"
        r["eventID"] = str(uuid.UUID(int=rng.getrandbits(128)))
        written += len(json.dumps(r, separators=(",", ":"))) + 1
        yield r


def adversarial(chunks):
    def rec(i, acct, region, day):
        return {"eventVersion": "1.08",
                "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE",
                                 "arn": f"arn:aws:iam::{acct}:user/u", "accountId": acct, "userName": "u"},
                "eventTime": f"2024-03-{day:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "awsRegion": region,
                "sourceIPAddress": "10.0.0.1", "userAgent": "aws-cli/2",
                "requestParameters": {"instancesSet": {"items": [{"instanceId": f"i-{i:016x}"}]}},
                "responseElements": None, "requestID": f"{i:032x}",
                "eventID": f"{i >> 48:08x}-0000-0000-0000-{i & (2**48 - 1):012x}", "readOnly": True,
                "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": acct,
                "eventCategory": "Management"}
    n = 0
    for c in range(chunks):
        for j in range(4096):
            if j < 64:
                k = c * 64 + j
                yield rec(n, f"{100000000000 + k % 640:012d}", REGIONS[k % 5], 1 + k // 640 % 3)
            else:
                yield rec(n, "999999999999", "us-east-1", 1)
            n += 1


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "--adversarial":
        write(a[1], adversarial(int(a[2])))
    elif len(a) == 5:
        write(a[0], mixed(int(float(a[1])), int(a[2]), int(a[3]), int(a[4])))
    else:
        sys.exit(__doc__)
