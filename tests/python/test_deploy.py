"""Checks of the deployment templates: deploy/cloudformation (cfn-lint, then the security
properties the templates promise, read with a YAML loader that understands CloudFormation's
short tags) and deploy/kubernetes (every manifest parses; non-root, read-only worker; KEDA
scales the Deployment; only documented TRAILHOUSE_* variables). Nothing here calls AWS.

Run: $VENV/bin/python -m pytest -p no:cacheprovider -q tests/python/test_deploy.py
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CFN_DIR = ROOT / "deploy" / "cloudformation"
K8S_DIR = ROOT / "deploy" / "kubernetes"
TEMPLATES = sorted(p for p in CFN_DIR.glob("*.y*ml"))
EXAMPLES = sorted((CFN_DIR / "examples").glob("*.json"))
MAIN_TEMPLATE = CFN_DIR / "trailhouse.yaml"

# `trailhouse run` environment variables, as documented (used when the binary is not built).
DOCUMENTED_RUN_ENV = {
    "TRAILHOUSE_LOG_FORMAT", "TRAILHOUSE_QUEUE_URL", "TRAILHOUSE_LAKE", "TRAILHOUSE_LAYOUT",
    "TRAILHOUSE_CONCURRENCY", "TRAILHOUSE_FLUSH_BYTES", "TRAILHOUSE_FLUSH_INTERVAL",
    "TRAILHOUSE_MAX_BUFFER_BYTES", "TRAILHOUSE_VISIBILITY_TIMEOUT", "TRAILHOUSE_HEARTBEAT_INTERVAL",
    "TRAILHOUSE_WAIT_TIME", "TRAILHOUSE_METRICS_ADDR", "TRAILHOUSE_S3_PATH_STYLE",
    "TRAILHOUSE_SHUTDOWN_TIMEOUT", "TRAILHOUSE_IDLE_EXIT",
}
# Variables of the AWS SDK's standard configuration chain that a manifest may also set.
AWS_SDK_ENV = {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"}

# The only actions that may have Resource "*" in an identity policy: AWS offers no
# resource-level permission for them.
STAR_RESOURCE_ACTIONS = {"ecr:GetAuthorizationToken"}


# --------------------------------------------------------------------------- YAML with CFN tags


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short tags into their long JSON form
    (`!Ref X` -> {"Ref": "X"}, `!GetAtt A.B` -> {"Fn::GetAtt": ["A", "B"]}, ...)."""


def _cfn_constructor(tag: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if tag == "Ref":
            return {"Ref": value}
        if tag == "Condition":
            return {"Condition": value}
        if tag == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {f"Fn::{tag}": value}

    return construct


for _tag in ("Ref", "Condition", "Sub", "GetAtt", "Join", "If", "Equals", "Not", "And", "Or", "Select",
             "Split", "FindInMap", "ImportValue", "Base64", "Cidr", "GetAZs", "Contains", "Length",
             "ToJsonString", "Transform", "EachMemberEquals", "EachMemberIn", "RefAll", "ValueOf",
             "ValueOfAll"):
    CfnLoader.add_constructor(f"!{_tag}", _cfn_constructor(_tag))


def load_cfn(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=CfnLoader)  # noqa: S506 (a SafeLoader subclass)


@pytest.fixture(scope="module")
def tpl() -> dict:
    return load_cfn(MAIN_TEMPLATE)


NO_VALUE = {"Ref": "AWS::NoValue"}


def branches(x):
    """Every value `x` can take through Fn::If (both branches; AWS::NoValue dropped)."""
    if isinstance(x, dict) and set(x) == {"Fn::If"}:
        _, a, b = x["Fn::If"]
        for v in (a, b):
            yield from branches(v)
    elif x != NO_VALUE:
        yield x


def as_list(x) -> list:
    out = []
    for v in branches(x):
        if isinstance(v, list):
            for item in v:
                out.extend(branches(item))
        else:
            out.append(v)
    return out


def render(x) -> list[str]:
    """A resource/ARN expression as strings, in Fn::Sub syntax: `!GetAtt A.Arn` -> "${A.Arn}"."""
    out = []
    for v in branches(x):
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict) and "Fn::Sub" in v:
            s = v["Fn::Sub"]
            out.append(s if isinstance(s, str) else s[0])
        elif isinstance(v, dict) and "Fn::GetAtt" in v:
            out.append("${" + ".".join(v["Fn::GetAtt"]) + "}")
        elif isinstance(v, dict) and "Ref" in v:
            out.append("${" + v["Ref"] + "}")
        else:
            out.append(json.dumps(v, sort_keys=True))
    return out


def resources_of(tpl: dict, *types: str) -> dict:
    return {k: r for k, r in tpl["Resources"].items() if r["Type"] in types}


def policy_documents(tpl: dict):
    """(resource, kind, document) for every policy in the template; kind is "identity",
    "trust", "resource" (bucket/queue policy) or "key" (KMS key policy)."""
    for name, r in tpl["Resources"].items():
        p = r.get("Properties", {})
        t = r["Type"]
        if t == "AWS::IAM::Role":
            yield name, "trust", p["AssumeRolePolicyDocument"]
            for pol in p.get("Policies", []):
                yield name, "identity", pol["PolicyDocument"]
        elif t in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            yield name, "identity", p["PolicyDocument"]
        elif t in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            yield name, "resource", p["PolicyDocument"]
        elif t == "AWS::KMS::Key":
            yield name, "key", p["KeyPolicy"]


def statements(doc: dict) -> list[dict]:
    return [s for s in as_list(doc["Statement"]) if isinstance(s, dict)]


def actions(stmt: dict) -> list[str]:
    return as_list(stmt.get("Action", [])) + as_list(stmt.get("NotAction", []))


def identity_allows(tpl: dict):
    for name, kind, doc in policy_documents(tpl):
        if kind == "identity":
            for s in statements(doc):
                if s["Effect"] == "Allow":
                    yield name, s


def param_default(tpl: dict, name: str):
    return tpl["Parameters"][name]["Default"]


# --------------------------------------------------------------------------- cfn-lint


def cfn_lint_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("cfn-lint")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("cfn-lint")
    if not found:
        pytest.fail("cfn-lint is not installed (it is pinned in tests/python/requirements.txt)", pytrace=False)
    return [found]


def run_cfn_lint(*args: str) -> subprocess.CompletedProcess:
    # --info: informational findings count too. Exit code 0 = no error, warning or info.
    return subprocess.run(cfn_lint_cmd() + ["--info", "--format", "parseable", *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_there_are_templates():
    assert MAIN_TEMPLATE in TEMPLATES
    assert EXAMPLES, "deploy/cloudformation/examples/*.json: one parameter set per deployment mode"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_clean(template: Path):
    """No errors, no warnings, no informational findings, with the parameters' defaults."""
    p = run_cfn_lint("--", str(template))
    assert p.returncode == 0 and not p.stdout.strip(), \
        f"cfn-lint {template.name} (exit {p.returncode}):\n{p.stdout}{p.stderr[-3000:]}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_cfn_lint_clean_with_example_parameters(example: Path, tmp_path: Path, tpl: dict):
    """Each documented deployment (fargate / lambda / kubernetes, each route and encryption)
    lints clean with its real parameter values, which exercises the other branches of
    every Fn::If and the patterns the defaults do not reach."""
    params = json.loads(example.read_text())
    for p in params:
        assert p["ParameterKey"] in tpl["Parameters"], f"{example.name}: unknown {p['ParameterKey']}"
        assert isinstance(p["ParameterValue"], str), "CloudFormation parameter values are strings"
        # cfn-lint wants a list for list-typed parameters (the AWS CLI takes "a,b").
        if tpl["Parameters"][p["ParameterKey"]]["Type"] == "CommaDelimitedList":
            p["ParameterValue"] = p["ParameterValue"].split(",")
    f = tmp_path / example.name
    f.write_text(json.dumps(params))
    p = run_cfn_lint("--parameter-files", str(f), "--", str(MAIN_TEMPLATE))
    assert p.returncode == 0 and not p.stdout.strip(), \
        f"cfn-lint with {example.name} (exit {p.returncode}):\n{p.stdout}{p.stderr[-3000:]}"


def test_examples_cover_every_mode_and_route():
    modes, routes = set(), set()
    for e in EXAMPLES:
        d = {p["ParameterKey"]: p["ParameterValue"] for p in json.loads(e.read_text())}
        modes.add(d.get("ComputeMode", "fargate"))
        routes.add(d.get("TrailNotificationRoute", "eventbridge"))
    assert modes == {"fargate", "lambda", "kubernetes"}
    assert routes == {"eventbridge", "new-bucket", "cloudtrail-sns"}


def test_lambda_examples_keep_the_visibility_timeout_rule(tpl: dict):
    """SQS: visibility >= function timeout; AWS: >= 6 x timeout + batching window."""
    for e in EXAMPLES:
        d = {p["ParameterKey"]: p["ParameterValue"] for p in json.loads(e.read_text())}
        if d.get("ComputeMode") != "lambda":
            continue
        get = lambda k: int(d.get(k, param_default(tpl, k)))  # noqa: E731
        window = get("LambdaMaximumBatchingWindowInSeconds")
        assert 6 * get("LambdaTimeout") + window <= get("QueueVisibilityTimeout"), e.name
        assert get("LambdaBatchSize") <= 10 or window >= 1, e.name


# --------------------------------------------------------------------------- IAM


def test_no_star_action_anywhere(tpl: dict):
    for name, kind, doc in policy_documents(tpl):
        for s in statements(doc):
            acts = actions(s)
            assert "*" not in acts, f"{name}: Action \"*\" in {s}"
            if s["Effect"] == "Allow" and kind in ("identity", "resource"):
                # Service-wide wildcards (s3:*, sqs:*) only ever appear in Deny statements,
                # and in the KMS key policy's standard account-root statement.
                assert not any("*" in a for a in acts), f"{name}: wildcard action in an Allow: {s}"


def test_star_resource_only_where_aws_requires_it(tpl: dict):
    for name, kind, doc in policy_documents(tpl):
        for s in statements(doc):
            res = as_list(s.get("Resource", []))
            if "*" not in res:
                continue
            if kind == "key":
                continue  # a KMS key policy's Resource is always "*" ("this key")
            assert kind == "identity" and s["Effect"] == "Allow", f"{name}: Resource \"*\" in {s}"
            assert set(actions(s)) <= STAR_RESOURCE_ACTIONS, \
                f"{name}: Resource \"*\" is only for {sorted(STAR_RESOURCE_ACTIONS)}, not {actions(s)}"


def test_star_principal_only_in_deny(tpl: dict):
    for name, kind, doc in policy_documents(tpl):
        for s in statements(doc):
            if s.get("Principal") in ("*", {"AWS": "*"}):
                assert s["Effect"] == "Deny", f"{name}: public Allow {s}"


def test_put_object_only_under_the_lake_prefix(tpl: dict):
    """Every identity grant of an S3 write action is on LAKE_BUCKET/LAKE_PREFIX/* and nothing
    wider: never the whole bucket, never the trail bucket."""
    write = re.compile(r"^s3:(Put|Delete|Abort|Restore|Replicate|Create|Copy)", re.I)
    seen_put = False
    for name, s in identity_allows(tpl):
        acts = actions(s)
        if not any(a.startswith("s3:") and write.match(a) for a in acts):
            continue
        assert set(acts) <= {"s3:PutObject", "s3:AbortMultipartUpload"}, f"{name}: {acts}"
        seen_put = seen_put or "s3:PutObject" in acts
        for r in render(s["Resource"]):
            assert r == "${LakeBucket.Arn}/${LakePrefix}/*", f"{name}: S3 write on {r!r}, not the lake prefix"
    assert seen_put, "no role may write the lake?"


def test_trail_bucket_is_read_only_under_its_prefix(tpl: dict):
    seen = False
    for name, s in identity_allows(tpl):
        for r in render(s.get("Resource", [])):
            if "TrailBucketName" in r:
                seen = True
                assert actions(s) == ["s3:GetObject"], f"{name}: {actions(s)} on the trail bucket"
                assert r.endswith("/${TrailKeyPrefix}*"), r
    assert seen


def test_queue_actions_are_the_worker_s_and_on_the_queue(tpl: dict):
    needed = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"}
    worker = tpl["Resources"]["WorkerPolicy"]["Properties"]["PolicyDocument"]
    got = set()
    for s in statements(worker):
        sqs = [a for a in actions(s) if a.startswith("sqs:")]
        if sqs:
            assert render(s["Resource"]) == ["${Queue.Arn}"], s
            got |= set(sqs)
    assert got == needed
    for name, s in identity_allows(tpl):
        for a in actions(s):
            if a.startswith("sqs:"):
                assert a in needed and render(s["Resource"]) == ["${Queue.Arn}"], f"{name}: {a} {s['Resource']}"


def test_kms_grants_are_scoped_to_the_keys_and_to_s3(tpl: dict):
    kms = {}
    for name, s in identity_allows(tpl):
        acts = [a for a in actions(s) if a.startswith("kms:")]
        if not acts:
            continue
        assert "Resource" in s and "*" not in as_list(s["Resource"]), s
        assert s["Condition"]["StringEquals"]["kms:ViaService"] == {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}
        kms[s["Sid"]] = set(acts)
    assert kms["DecryptTrailLogFiles"] == {"kms:Decrypt"}
    # Decrypt too: S3 needs it to complete a multipart upload under SSE-KMS.
    assert kms["EncryptLakeFiles"] == {"kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt"}


def test_every_worker_role_gets_the_worker_policy(tpl: dict):
    roles = resources_of(tpl, "AWS::IAM::Role")
    for role in ("TaskRole", "FunctionRole"):
        assert {"Ref": "WorkerPolicy"} in roles[role]["Properties"]["ManagedPolicyArns"]
    assert "WorkerPolicyArn" in tpl["Outputs"]  # for the Kubernetes pods' role


# --------------------------------------------------------------------------- queue, bucket


def test_queue_redrives_to_the_dlq(tpl: dict):
    q = tpl["Resources"]["Queue"]["Properties"]
    dlq = tpl["Resources"]["DeadLetterQueue"]["Properties"]
    assert q["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert q["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert param_default(tpl, "MaxReceiveCount") == 5
    assert q["VisibilityTimeout"] == {"Ref": "QueueVisibilityTimeout"} and param_default(tpl, "QueueVisibilityTimeout") == 600
    assert q["MessageRetentionPeriod"] == 4 * 86400
    assert dlq["MessageRetentionPeriod"] == 14 * 86400
    assert q["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True


def test_dlq_alarm(tpl: dict):
    a = tpl["Resources"]["DeadLetterQueueAlarm"]["Properties"]
    assert a["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}
    assert a["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert a["Threshold"] == 0 and a["ComparisonOperator"] == "GreaterThanThreshold"
    assert a["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], NO_VALUE]}


def test_every_bucket_blocks_public_access_and_is_encrypted(tpl: dict):
    buckets = resources_of(tpl, "AWS::S3::Bucket")
    assert {"LakeBucket", "TrailBucket"} <= set(buckets)
    policies = {render(r["Properties"]["Bucket"])[0]: r for r in resources_of(tpl, "AWS::S3::BucketPolicy").values()}
    for name, b in buckets.items():
        p = b["Properties"]
        assert p["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}, name
        sse = p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert set(as_list(sse["SSEAlgorithm"])) <= {"AES256", "aws:kms"} and as_list(sse["SSEAlgorithm"]), name
        assert p["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}], name
        assert b.get("DeletionPolicy") == "Retain", f"{name}: deleting the stack must not delete data"
        # TLS only.
        pol = policies["${" + name + "}"]
        deny = [s for s in statements(pol["Properties"]["PolicyDocument"]) if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in deny), name


def test_lake_bucket_encryption_follows_the_parameter(tpl: dict):
    sse = tpl["Resources"]["LakeBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == {"Fn::If": ["LakeKms", "aws:kms", "AES256"]}
    assert tpl["Parameters"]["LakeEncryption"]["AllowedValues"] == ["SSE-S3", "SSE-KMS"]


def test_lake_lifecycle(tpl: dict):
    rules = {r["Id"]: r for r in tpl["Resources"]["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert "Prefix" not in rules["abort-incomplete-multipart-uploads"]  # whole bucket
    q = rules["expire-quarantine"]
    assert q["Prefix"] == {"Fn::Sub": "${LakePrefix}/_quarantine/"}
    assert q["ExpirationInDays"] == {"Ref": "QuarantineExpirationDays"}
    t = rules["transition-lake-files"]
    assert t["Transitions"][0]["StorageClass"] == {"Ref": "TransitionStorageClass"}
    assert "TransitionDays" in json.dumps(t)


# --------------------------------------------------------------------------- routes


def test_routes_deliver_to_the_queue_with_a_scoped_queue_policy(tpl: dict):
    R = tpl["Resources"]
    rule = R["TrailObjectCreatedRule"]
    assert rule["Condition"] == "RouteEventBridge"
    pat = rule["Properties"]["EventPattern"]
    assert pat["source"] == ["aws.s3"] and pat["detail-type"] == ["Object Created"]
    assert pat["detail"]["bucket"]["name"] == [{"Ref": "TrailBucketName"}]
    assert pat["detail"]["object"]["key"] == [{"prefix": {"Ref": "TrailKeyPrefix"}}]
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["Queue", "Arn"]}

    nb = R["TrailBucket"]
    assert nb["Condition"] == "RouteNewBucket"
    assert nb["DependsOn"] == "QueuePolicy"  # S3 validates the destination on creation
    qc = nb["Properties"]["NotificationConfiguration"]["QueueConfigurations"][0]
    assert qc["Queue"] == {"Fn::GetAtt": ["Queue", "Arn"]}

    assert R["TrailTopicSubscription"]["Properties"]["Endpoint"] == {"Fn::GetAtt": ["Queue", "Arn"]}

    senders = {}
    for s in statements(R["QueuePolicy"]["Properties"]["PolicyDocument"]):
        if s["Effect"] == "Allow":
            assert actions(s) == ["sqs:SendMessage"], s
            assert "aws:SourceArn" in json.dumps(s["Condition"]), f"unscoped sender {s}"
            senders[s["Principal"]["Service"]] = s
    assert set(senders) == {"events.amazonaws.com", "s3.amazonaws.com", "sns.amazonaws.com"}
    assert senders["events.amazonaws.com"]["Condition"]["ArnEquals"]["aws:SourceArn"] == \
        {"Fn::GetAtt": ["TrailObjectCreatedRule", "Arn"]}


# --------------------------------------------------------------------------- compute


def documented_env(command: str = "run") -> set[str]:
    """The variables `trailhouse COMMAND --help` lists when the binary is built (for `lambda`,
    those of `run` while the binary has no `lambda` command yet); otherwise the documented
    list of `run`."""
    binary = Path(os.environ.get("TRAILHOUSE_BIN", "/work/target/debug/trailhouse"))
    if not binary.is_file():
        return set(DOCUMENTED_RUN_ENV)
    p = subprocess.run([str(binary), command, "--help"], capture_output=True, text=True, timeout=30)
    if p.returncode != 0 and command != "run":
        return documented_env("run")
    names = set(re.findall(r"\[env: ([A-Z0-9_]+)=", p.stdout))
    assert p.returncode == 0 and names, f"`{binary} {command} --help` lists no [env: ...]: {p.stderr[-2000:]}"
    return names


def test_fargate_task(tpl: dict):
    td = tpl["Resources"]["TaskDefinition"]["Properties"]
    (c,) = td["ContainerDefinitions"]
    assert c["StopTimeout"] >= 120, "SIGTERM must leave time to drain and flush"
    assert c["ReadonlyRootFilesystem"] is True
    assert c["LogConfiguration"]["LogDriver"] == "awslogs"
    assert c["Image"] == {"Ref": "ContainerImage"}
    assert td["RequiresCompatibilities"] == ["FARGATE"] and td["NetworkMode"] == "awsvpc"
    assert td["TaskRoleArn"] == {"Fn::GetAtt": ["TaskRole", "Arn"]}
    env = {e["Name"]: e["Value"] for e in as_list(c["Environment"])}
    allowed = documented_env("run") | AWS_SDK_ENV
    assert set(env) <= allowed, f"undocumented variables: {set(env) - allowed}"
    assert env["TRAILHOUSE_QUEUE_URL"] == {"Ref": "Queue"}
    assert env["TRAILHOUSE_LAKE"] == {"Fn::Sub": "s3://${LakeBucket}/${LakePrefix}"}
    # Outbound HTTPS only.
    sg = tpl["Resources"]["TaskSecurityGroup"]["Properties"]
    assert [(e["IpProtocol"], e["FromPort"], e["ToPort"]) for e in sg["SecurityGroupEgress"]] == [("tcp", 443, 443)]
    assert "SecurityGroupIngress" not in sg


def test_fargate_service_scales_on_queue_depth(tpl: dict):
    R = tpl["Resources"]
    assert "DesiredCount" not in R["Service"]["Properties"]  # Application Auto Scaling owns it
    st = R["ScalableTarget"]["Properties"]
    assert st["MinCapacity"] == {"Ref": "MinTasks"} and st["MaxCapacity"] == {"Ref": "MaxTasks"}
    queue_alarms = []
    for name, a in resources_of(tpl, "AWS::CloudWatch::Alarm").items():
        text = json.dumps(a["Properties"])
        actions_ = json.dumps(a["Properties"].get("AlarmActions", []))
        if "ApproximateNumberOfMessagesVisible" in text and '"Queue", "QueueName"' in text and "Policy" in actions_:
            queue_alarms.append(name)
            for pol in re.findall(r'"Ref": "(\w+Policy)"', actions_):
                assert R[pol]["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
                assert R[pol]["Properties"]["ScalingTargetId"] == {"Ref": "ScalableTarget"}
    assert queue_alarms, "no scaling policy driven by the queue's depth"


def test_lambda_function_and_event_source(tpl: dict):
    R = tpl["Resources"]
    fn = R["Function"]["Properties"]
    assert fn["Runtime"] == "provided.al2023" and fn["Handler"] == "bootstrap"
    assert set(fn["Code"]) >= {"S3Bucket", "S3Key"}
    assert set(fn["Environment"]["Variables"]) <= documented_env("lambda") | AWS_SDK_ENV
    esm = R["FunctionEventSource"]["Properties"]
    assert "ReportBatchItemFailures" in esm["FunctionResponseTypes"]
    assert esm["EventSourceArn"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert esm["BatchSize"] == {"Ref": "LambdaBatchSize"}
    assert esm["MaximumBatchingWindowInSeconds"] == {"Ref": "LambdaMaximumBatchingWindowInSeconds"}
    batch, window = param_default(tpl, "LambdaBatchSize"), param_default(tpl, "LambdaMaximumBatchingWindowInSeconds")
    assert (batch, window) == (100, 60)
    assert batch <= 10 or window >= 1, "a standard queue needs a batching window for batches above 10"
    assert tpl["Parameters"]["LambdaMaximumBatchingWindowInSeconds"]["MaxValue"] == 300
    # SQS: visibility timeout >= function timeout; AWS recommends 6x (+ the window).
    timeout, vis = param_default(tpl, "LambdaTimeout"), param_default(tpl, "QueueVisibilityTimeout")
    assert 6 * timeout + window <= vis


def test_compute_is_chosen_by_conditions(tpl: dict):
    R = tpl["Resources"]
    assert tpl["Parameters"]["ComputeMode"]["AllowedValues"] == ["fargate", "lambda", "kubernetes"]
    for name in ("Cluster", "TaskDefinition", "Service", "ScalableTarget", "TaskRole", "TaskExecutionRole"):
        assert R[name]["Condition"] == "IsFargate", name
    for name in ("Function", "FunctionEventSource", "FunctionRole"):
        assert R[name]["Condition"] == "IsLambda", name
    for name in ("LakeBucket", "Queue", "DeadLetterQueue", "WorkerPolicy", "QueuePolicy", "DeadLetterQueueAlarm"):
        assert "Condition" not in R[name], f"{name} is shared by every mode"


# --------------------------------------------------------------------------- Kubernetes


K8S_FILES = sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def k8s() -> dict:
    """(kind, name) -> document, for every document of every manifest."""
    docs = {}
    for f in K8S_FILES:
        for d in yaml.safe_load_all(f.read_text()):
            if d is None:
                continue
            assert {"apiVersion", "kind", "metadata"} <= set(d), f"{f.name}: {d}"
            key = (d["kind"], d["metadata"]["name"])
            assert key not in docs, f"duplicate {key}"
            docs[key] = d
    return docs


def the(k8s: dict, kind: str) -> dict:
    found = [d for (k, _), d in k8s.items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_k8s_manifests_parse_and_are_listed(k8s: dict):
    kinds = {k for k, _ in k8s}
    assert {"Namespace", "ServiceAccount", "Deployment", "Service", "ScaledObject", "TriggerAuthentication",
            "PodDisruptionBudget"} <= kinds
    kust = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    assert sorted(kust["resources"]) == sorted(p.name for p in K8S_FILES)
    ns = the(k8s, "Namespace")["metadata"]["name"]
    for (kind, name), d in k8s.items():
        if kind != "Namespace":
            assert d["metadata"].get("namespace") == ns, f"{kind}/{name} is not in {ns}"


def test_k8s_deployment_is_non_root_and_read_only(k8s: dict):
    dep = the(k8s, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"].get("runAsUser", 1) != 0
    assert pod["terminationGracePeriodSeconds"] >= 120
    assert pod["serviceAccountName"] == the(k8s, "ServiceAccount")["metadata"]["name"]
    assert "replicas" not in dep["spec"], "KEDA owns the replica count"
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
        assert sc.get("runAsNonRoot", True) is True and sc.get("runAsUser", 1) != 0


def _bytes(q: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "": 1}
    m = re.fullmatch(r"(\d+)([KMG]i(?:B)?|)", q)
    assert m, q
    return int(m.group(1)) * units[m.group(2)]


def test_k8s_worker_container(k8s: dict):
    dep = the(k8s, "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    allowed = documented_env("run") | AWS_SDK_ENV
    assert set(env) <= allowed, f"undocumented variables: {set(env) - allowed}"
    assert {"TRAILHOUSE_QUEUE_URL", "TRAILHOUSE_LAKE", "TRAILHOUSE_METRICS_ADDR"} <= set(env)
    # Memory: the limit leaves room above the worker's buffer bound (default 256 MiB).
    buffer = _bytes(env.get("TRAILHOUSE_MAX_BUFFER_BYTES") or "256MiB")
    res = c["resources"]
    assert _bytes(res["limits"]["memory"]) >= 3 * buffer
    assert _bytes(res["requests"]["memory"]) <= _bytes(res["limits"]["memory"])
    # Probes and the Service use the metrics port the worker listens on.
    port = int(env["TRAILHOUSE_METRICS_ADDR"].rsplit(":", 1)[1])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == port
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] in ("metrics", port), probe
    svc = the(k8s, "Service")
    assert svc["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert svc["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    for sel in (svc["spec"]["selector"], the(k8s, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                dep["spec"]["selector"]["matchLabels"]):
        assert sel.items() <= labels.items(), f"selector {sel} does not match the pods {labels}"


def test_k8s_keda_scales_the_deployment_on_the_queue(k8s: dict):
    dep = the(k8s, "Deployment")
    so = the(k8s, "ScaledObject")
    ref = so["spec"]["scaleTargetRef"]
    assert ref["name"] == dep["metadata"]["name"] and ref.get("kind", "Deployment") == "Deployment"
    (sqs,) = [t for t in so["spec"]["triggers"] if t["type"] == "aws-sqs-queue"]
    md = sqs["metadata"]
    assert int(md["queueLength"]) >= 1 and md["awsRegion"]
    env = {e["name"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert md.get("queueURL") or md["queueURLFromEnv"] in env
    auth = the(k8s, "TriggerAuthentication")
    assert sqs["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert auth["spec"]["podIdentity"]["provider"] == "aws"
    assert so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]


def test_k8s_kustomize_builds():
    """`kubectl kustomize` renders the directory (when kubectl is installed here)."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl not installed; the manifests are still checked above")
    p = subprocess.run([kubectl, "kustomize", str(K8S_DIR)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(p.stdout) if d]
    assert "Deployment" in kinds and "ScaledObject" in kinds
