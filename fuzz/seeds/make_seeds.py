#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/seeds/<target>/ (idempotent).

Records are the golden samples (crates/ocsf/tests/golden/*.raw) and records in the
shapes of crates/ocsf/tests/mapping.rs; log files are built from them (plain, gzip,
multi-member gzip, truncated gzip, BOM, extra top-level keys, bad records mixed in).
The `log_file` inputs start with one selector byte: bits 0-2 pick the S3 key, bits
3-4 the processor's chunk size (see fuzz_targets/log_file.rs).
"""

import copy
import gzip
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(ROOT, "crates", "ocsf", "tests", "golden")

# Selector bytes of log_file (keys in fuzz_targets/log_file.rs).
KEY_LOG, KEY_DIGEST, KEY_DOTDOT, KEY_PLAIN, KEY_ORG, KEY_HOSTILE, KEY_INSIGHT, KEY_EMPTY = range(8)
CHUNK_8192, CHUNK_1, CHUNK_2, CHUNK_3 = (0 << 3, 1 << 3, 2 << 3, 3 << 3)


def golden():
    out = {}
    for name in sorted(os.listdir(GOLDEN)):
        if name.endswith(".raw"):
            with open(os.path.join(GOLDEN, name), "rb") as f:
                out[name[:-4]] = f.read()
    return out


def base(source, name):
    return {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE",
                         "arn": "arn:aws:iam::123456789012:user/alice", "accountId": "123456789012",
                         "accessKeyId": "AKIAEXAMPLE", "userName": "alice"},
        "eventTime": "2024-03-09T12:00:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15",
        "requestParameters": None,
        "responseElements": None,
        "requestID": "req-1",
        "eventID": "evt-1",
        "readOnly": True,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management",
    }


def shaped():
    """Records in the shapes of crates/ocsf/tests/mapping.rs."""
    recs = {}
    r = base("sts.amazonaws.com", "GetCallerIdentity")
    r["userIdentity"] = {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
    r["sourceIPAddress"] = "cloudformation.amazonaws.com"
    recs["aws_service"] = r

    r = base("ec2.amazonaws.com", "DescribeInstances")
    r["sourceIPAddress"] = "AWS Internal"
    recs["aws_internal"] = r
    r = copy.deepcopy(r)
    r["sourceIPAddress"] = "2001:db8::1"
    recs["ipv6"] = r
    r = copy.deepcopy(r)
    del r["sourceIPAddress"]
    r["vpcEndpointId"] = "vpce-0abc"
    recs["vpce"] = r

    r = base("sts.amazonaws.com", "AssumeRole")
    r["requestParameters"] = {"roleArn": "arn:aws:iam::123456789012:role/Deploy", "roleSessionName": "ci-42"}
    r["responseElements"] = {
        "credentials": {"accessKeyId": "ASIAEXAMPLE", "sessionToken": "tok", "expiration": "Mar 9, 2024, 1:00:00 PM"},
        "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLE:ci-42",
                            "arn": "arn:aws:sts::123456789012:assumed-role/Deploy/ci-42"}}
    recs["assume_role"] = r
    r = copy.deepcopy(r)
    r["errorCode"] = "AccessDenied"
    r["errorMessage"] = "not authorized"
    recs["assume_role_denied"] = r

    r = base("signin.amazonaws.com", "ConsoleLogin")
    r["userIdentity"] = {"type": "IAMUser", "principalId": "", "accountId": "123456789012", "accessKeyId": "",
                         "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"}
    r["responseElements"] = {"ConsoleLogin": "Failure"}
    r["errorMessage"] = "Failed authentication"
    r["additionalEventData"] = {"LoginTo": "https://console.aws.amazon.com/", "MobileVersion": "No", "MFAUsed": "No"}
    r["eventType"] = "AwsConsoleSignIn"
    del r["requestID"]
    recs["console_login_failed"] = r

    r = base("sso.amazonaws.com", "ListAccounts")
    r["userIdentity"] = {"type": "IdentityCenterUser", "accountId": "123456789012",
                         "onBehalfOf": {"userId": "u-123",
                                        "identityStoreArn": "arn:aws:identitystore::123456789012:identitystore/d-1"},
                         "credentialId": "cred-9"}
    recs["identity_center"] = r

    r = base("ec2.amazonaws.com", "RunInstances")
    r["userIdentity"] = {
        "type": "AssumedRole", "principalId": "AROA:bob", "arn": "arn:aws:sts::123456789012:assumed-role/Dev/bob",
        "accountId": "123456789012", "accessKeyId": "ASIA1",
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": "AROA", "arn": "arn:aws:iam::123456789012:role/Dev",
                              "accountId": "123456789012", "userName": "Dev"},
            "webIdFederationData": {
                "federatedProvider": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
                "attributes": {"sub": "repo:x"}},
            "attributes": {"creationDate": "2024-03-09T11:00:00Z", "mfaAuthenticated": "true"},
            "sourceIdentity": "bob@example.com"}}
    recs["assumed_role_session"] = r

    r = base("s3.amazonaws.com", "GetObject")
    r["eventCategory"] = "Data"
    r["managementEvent"] = False
    r["resources"] = [
        {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::bkt/key.txt"},
        {"accountId": "123456789012", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::bkt"},
        {"type": "AWS::S3::Object", "ARNPrefix": "arn:aws:s3:::bkt/logs/"}]
    r["additionalEventData"] = {"bytesTransferredIn": 0, "bytesTransferredOut": 33120, "x-amz-id-2": "abc=="}
    recs["s3_data"] = r
    r = copy.deepcopy(r)
    for k in ("eventCategory", "managementEvent"):
        del r[k]
    recs["s3_data_old"] = r

    r = base("lambda.amazonaws.com", "Invoke")
    for k in ("eventCategory", "managementEvent"):
        del r[k]
    recs["lambda_invoke_old"] = r

    r = base("iam.amazonaws.com", "AttachRolePolicy")
    r["requestParameters"] = {"roleName": "Deploy", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}
    r["resources"] = [{"ARN": "arn:aws:iam::123456789012:role/Deploy", "type": "AWS::IAM::Role"}]
    recs["attach_role_policy"] = r

    r = base("iam.amazonaws.com", "UpdateAccountPasswordPolicy")
    r["requestParameters"] = {"minimumPasswordLength": 14}
    recs["password_policy"] = r

    r = base("iam.amazonaws.com", "UpdateAccessKey")
    r["requestParameters"] = {"accessKeyId": "AKIA2", "status": "Inactive", "userName": "bob"}
    recs["update_access_key"] = r

    r = base("iam.amazonaws.com", "CreateUser")
    r["requestParameters"] = {"userName": "dave"}
    r["responseElements"] = {"user": {"arn": "arn:aws:iam::123456789012:user/dave", "userId": "AIDAD",
                                      "userName": "dave", "createDate": "Mar 9, 2024, 12:00:00 PM"}}
    recs["create_user"] = r

    r = base("ec2.amazonaws.com", "DescribeRegions")
    for k in ("recipientAccountId", "awsRegion", "eventCategory", "userIdentity"):
        del r[k]
    r["requestParameters"] = {"a": [1, 2], "s": "x y"}
    recs["fallbacks"] = r

    r = base("ec2.amazonaws.com", "DescribeRegions")
    r["eventTime"] = "2024-03-09T23:30:00-01:00"  # the next UTC day
    r["awsRegion"] = "ap-southeast-2"
    recs["offset_next_day"] = r

    # Refused.
    r = base("a.amazonaws.com", "X")
    del r["eventTime"]
    recs["no_event_time"] = r
    r = base("a.amazonaws.com", "X")
    r["eventTime"] = "1969-12-31T23:59:59Z"
    recs["before_1970"] = r
    r = base("a.amazonaws.com", "X")
    r["awsRegion"] = "../../etc"
    recs["bad_region"] = r
    r = base("a.amazonaws.com", "X")
    r["recipientAccountId"] = "12/../34"
    recs["bad_account"] = r
    r = base("a.amazonaws.com", "X")
    r["eventType"] = "AwsCloudTrailInsight"
    recs["insight"] = r
    return recs


def log_doc(records, extra_top=None, indent=None):
    parts = []
    for rec in records:
        parts.append(rec if isinstance(rec, bytes) else json.dumps(rec, indent=indent).encode())
    body = b'{"Records":[' + b",".join(parts) + b"]}"
    if extra_top:
        body = b"{" + extra_top + b"," + body[1:]
    return body


def gz(b):
    return gzip.compress(b, compresslevel=6, mtime=0)


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    for t in ("log_file", "record", "json_record", "strings", "notification"):
        shutil.rmtree(os.path.join(HERE, t), ignore_errors=True)
    g = golden()
    s = shaped()
    compact = {k: json.dumps(v, separators=(",", ":")).encode() for k, v in s.items()}

    # record / json_record: each golden and shaped record (json_record gets them all,
    # record the goldens, a few shapes and some non-records).
    for k, raw in g.items():
        write("record", f"golden_{k}.json", raw)
        write("json_record", f"golden_{k}.json", raw)
    for k, raw in compact.items():
        write("json_record", f"{k}.json", raw)
    for k in ("assume_role", "s3_data", "console_login_failed", "fallbacks", "bad_region"):
        write("record", f"{k}.json", json.dumps(s[k], indent=1).encode())
    write("record", "dup_keys.json", b'{"eventName":"A","eventName":"B","eventTime":"2024-01-01T00:00:00Z",'
          b'"eventTime":"2024-01-02T00:00:00Z","eventID":"e","eventSource":"s3.amazonaws.com",'
          b'"awsRegion":"us-east-1","recipientAccountId":"1","userIdentity":{"arn":"x"},"userIdentity":{"arn":"y"}}')
    write("record", "not_object.json", b"[1,2,3]")

    # log_file.
    goldens = list(g.values())
    good = [s[k] for k in ("aws_service", "assume_role", "s3_data", "attach_role_policy",
                           "console_login_failed", "offset_next_day", "lambda_invoke_old")]
    doc = log_doc(goldens + good)
    write("log_file", "gzip_golden", bytes([KEY_LOG | CHUNK_8192]) + gz(log_doc(goldens)))
    write("log_file", "plain_mixed_chunk2", bytes([KEY_LOG | CHUNK_2]) + doc)
    write("log_file", "gzip_mixed_org_chunk1", bytes([KEY_ORG | CHUNK_1]) + gz(doc))
    write("log_file", "gzip_truncated", bytes([KEY_LOG]) + gz(doc)[: len(gz(doc)) // 2])
    write("log_file", "gzip_multimember", bytes([KEY_PLAIN | CHUNK_3])
          + gz(doc[:100]) + gz(doc[100:]))
    write("log_file", "gzip_trailing_garbage", bytes([KEY_LOG]) + gz(log_doc(goldens[:1])) + b"\x00garbage")
    bad = [b"7", b'"s"', b"[1]", b"{}", json.dumps(s["no_event_time"]).encode(),
           json.dumps(s["bad_region"]).encode(), b'{"eventTime":{"x":[1,{"y":"]}"}]}}']
    write("log_file", "bad_records_bom_extra_keys", bytes([KEY_DOTDOT | CHUNK_1]) + b"\xef\xbb\xbf "
          + log_doc(goldens[:1] + bad + goldens[1:], extra_top=b'"x":{"Records":[1]}', indent=1)
          + b'\n')
    write("log_file", "fallbacks_hostile_key", bytes([KEY_HOSTILE | CHUNK_2]) + log_doc([s["fallbacks"], s["aws_internal"]]))
    write("log_file", "fallbacks_log_key", bytes([KEY_LOG | CHUNK_1]) + gz(log_doc([s["fallbacks"], s["ipv6"]])))
    write("log_file", "digest", bytes([KEY_DIGEST]) + b'{"awsAccountId":"123456789012","logFiles":[]}')
    write("log_file", "insight", bytes([KEY_INSIGHT]) + log_doc([s["insight"]]))
    write("log_file", "empty_key_empty_records", bytes([KEY_EMPTY]) + b'{"Records":[]}')
    write("log_file", "truncated_plain", bytes([KEY_PLAIN]) + doc[: len(doc) * 2 // 3])
    write("log_file", "not_cloudtrail", bytes([KEY_PLAIN]) + b'{"foo":[1,2]}')
    write("log_file", "trailing_bytes", bytes([KEY_PLAIN]) + log_doc(goldens[:1]) + b" x")

    # strings.
    for i, t in enumerate([
        "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz",
        "my/prefix/AWSLogs/o-fxozgwu6rc/123456789015/CloudTrail/ca-central-1/2020/09/23/x.json.gz",
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_trail_us-east-1_20150817T150131Z.json.gz",
        "loose/1_CloudTrail-Insight_x.json.gz",
        "notAWSLogs/1/CloudTrail/r/2020/01/01/f",
        "2023-09-21T22:22:52Z",
        "2024-01-02T03:04:05.123456789Z",
        "2024-01-01T22:04:05-05:00",
        "2024-02-29T23:59:60+23:59",
        "9999-12-31T23:59:59.999-23:59",
        "1970-01-01T00:00:00.000+00:01",
        "2024-01-02 03:04:05z",
        '{ "a" : [ 1 , 2 ] , "s" : "x y \\" z" }',
        '[{"ARN":"a1","type":"T"},{"ARN":"a2","accountId":"1"},{"ARN":null}]',
        '{"k":"1","k":"2","n":1.5e300,"e":{},"x":{"y":[[]]}}',
        '"\\u00e9\\ud83d\\ude00"',
        "\t-1.0E+2 \n",
    ]):
        write("strings", f"s{i:02}", t.encode())

    # notification: SQS bodies of every shape the worker accepts.
    key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/09/111122223333_CloudTrail_us-east-1_20240309T1200Z_abc.json.gz"
    s3 = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                       "eventName": "ObjectCreated:Put",
                       "s3": {"bucket": {"name": "trail-bucket"},
                              "object": {"key": key.replace("_", "%5F") + "+x%2By", "size": 1024, "eTag": "abc"}}},
                      {"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
                       "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]}
    notes = {
        "s3_event": s3,
        "sns_envelope": {"Type": "Notification", "Message": json.dumps(s3)},
        "eventbridge": {"source": "aws.s3", "detail-type": "Object Created",
                        "detail": {"bucket": {"name": "trail-bucket"}, "object": {"key": key, "size": 5, "etag": "e"}}},
        "cloudtrail_sns": {"s3Bucket": "trail-bucket", "s3ObjectKey": [key, key + "2"]},
        "test_event": {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "trail-bucket"},
    }
    for k, v in notes.items():
        write("notification", k, json.dumps(v).encode())
    write("notification", "form_keys", b"a+b%20c%2x%%41%e2%82%ac%FF/%")



if __name__ == "__main__":
    main()
