//! Event templates. Each one fills a [`Rec`] with one kind of CloudTrail event and
//! declares, in [`TEMPLATES`], the OCSF class and Security Lake source a correct
//! pipeline must give it. These declarations are the corpus's ground truth.

use crate::actor::{Actor, BROWSERS, Ctx};
use crate::json::{Json, escape_into};
use crate::record::{Category, Rec};
use crate::rng::{ALNUM, B64, HEX, Rng, UPPER_B32, mix};
use crate::time::{event_time, java_date, push_event_time};
use crate::world::{Account, RoleKind};

/// OCSF class of a template's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Class {
    /// Account Change (3001).
    AccountChange,
    /// Authentication (3002).
    Authentication,
    /// API Activity (6003).
    ApiActivity,
}

impl Class {
    pub(crate) fn uid(self) -> u32 {
        match self {
            Class::AccountChange => 3001,
            Class::Authentication => 3002,
            Class::ApiActivity => 6003,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Class::AccountChange => "Account Change",
            Class::Authentication => "Authentication",
            Class::ApiActivity => "API Activity",
        }
    }
}

/// The class name for a `class_uid` of [`Class`].
pub(crate) fn class_name(uid: u32) -> &'static str {
    [
        Class::AccountChange,
        Class::Authentication,
        Class::ApiActivity,
    ]
    .into_iter()
    .find(|c| c.uid() == uid)
    .map_or("Unknown", Class::name)
}

/// Security Lake source of a template's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Src {
    Mgmt,
    S3,
    Lambda,
    Data,
}

impl Src {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Src::Mgmt => "CLOUD_TRAIL_MGMT",
            Src::S3 => "S3_DATA",
            Src::Lambda => "LAMBDA_EXECUTION",
            Src::Data => "CLOUD_TRAIL_DATA",
        }
    }
}

/// One kind of event, with its expected labels.
pub(crate) struct Template {
    /// Short name, for tests and debugging.
    #[cfg_attr(not(test), allow(dead_code))]
    pub id: &'static str,
    /// Relative frequency.
    pub weight: u32,
    pub class: Class,
    pub src: Src,
    /// A global-service event (IAM): delivered in us-east-1 when the corpus has it.
    pub global: bool,
    /// Only drawn when large payloads are asked for.
    pub large_only: bool,
    pub build: fn(&mut Ctx<'_>, &mut Rec),
}

const fn t(
    id: &'static str,
    weight: u32,
    class: Class,
    src: Src,
    build: fn(&mut Ctx<'_>, &mut Rec),
) -> Template {
    Template {
        id,
        weight,
        class,
        src,
        global: false,
        large_only: false,
        build,
    }
}

const fn global(mut x: Template) -> Template {
    x.global = true;
    x
}

const fn large(mut x: Template) -> Template {
    x.large_only = true;
    x
}

use Class::{AccountChange as ACCT, ApiActivity as API, Authentication as AUTH};

/// Every template, weighted roughly like a real organisation trail: mostly role
/// sessions and AWS services reading, KMS and STS traffic, S3 object access.
pub(crate) const TEMPLATES: &[Template] = &[
    t("kms_crypto", 130, API, Src::Mgmt, kms_crypto),
    t("sts_assume_role", 115, AUTH, Src::Mgmt, sts_assume_role),
    t("ec2_describe", 110, API, Src::Mgmt, ec2_describe),
    t("misc_api", 150, API, Src::Mgmt, misc_api),
    t("s3_bucket", 40, API, Src::Mgmt, s3_bucket),
    t("ec2_write", 18, API, Src::Mgmt, ec2_write),
    global(t("iam_read", 22, API, Src::Mgmt, iam_read)),
    t("sts_other", 6, API, Src::Mgmt, sts_other),
    t("switch_role", 3, API, Src::Mgmt, switch_role),
    t("sso_portal", 8, API, Src::Mgmt, sso_portal),
    t("console_action", 4, API, Src::Mgmt, console_action),
    t("service_event", 10, API, Src::Mgmt, service_event),
    t("cfn_invoked", 8, API, Src::Mgmt, cfn_invoked),
    large(t(
        "large_task_definition",
        12,
        API,
        Src::Mgmt,
        large_task_definition,
    )),
    t("assume_role_saml", 8, AUTH, Src::Mgmt, assume_role_saml),
    t(
        "assume_role_web_identity",
        14,
        AUTH,
        Src::Mgmt,
        assume_role_web_identity,
    ),
    t("console_login", 9, AUTH, Src::Mgmt, console_login),
    t(
        "console_login_failure",
        4,
        AUTH,
        Src::Mgmt,
        console_login_failure,
    ),
    t("check_mfa", 2, AUTH, Src::Mgmt, check_mfa),
    t("idc_signin", 4, AUTH, Src::Mgmt, idc_signin),
    t("external_idp_login", 1, AUTH, Src::Mgmt, external_idp_login),
    global(t("iam_change", 22, ACCT, Src::Mgmt, iam_change)),
    t("s3_object", 95, API, Src::S3, s3_object),
    t("s3_object_legacy", 3, API, Src::S3, s3_object_legacy),
    t("lambda_invoke", 30, API, Src::Lambda, lambda_invoke),
    t("dynamodb_data", 16, API, Src::Data, dynamodb_data),
    t("network_activity", 4, API, Src::Data, network_activity),
];

// ----- shared helpers ----------------------------------------------------------------

/// Management-event versions, 1.02 … 1.11, mostly 1.08+.
fn mgmt_version(c: &mut Ctx<'_>) -> u8 {
    const V: [u8; 10] = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    V[c.rng.weighted(&[2, 1, 2, 14, 2, 3, 45, 14, 10, 7])]
}

/// Versions with every modern field (1.08 … 1.11).
fn modern_version(c: &mut Ctx<'_>) -> u8 {
    [8, 9, 10, 11][c.rng.weighted(&[40, 25, 20, 15])]
}

impl Ctx<'_> {
    /// Sets the fields every record has; templates override what differs.
    pub(crate) fn begin(
        &mut self,
        r: &mut Rec,
        source: &'static str,
        name: &'static str,
        minor: u8,
    ) {
        r.minor = minor;
        r.time = self.time;
        r.source = source;
        r.name = name;
        r.region.clear();
        r.region.push_str(self.region);
        self.rng.push_uuid(&mut r.event_id);
        let id = r.request_id.start();
        self.rng.push_uuid(id);
        r.recipient.set(&self.acct.id);
        if minor <= 2 && self.rng.chance(0.5) {
            // Early records sometimes lack recipientAccountId.
            r.recipient.clear();
        }
        r.read_only = Some(true);
    }

    /// An S3-style request id (16 upper-case alphanumerics).
    fn s3_request_id(&mut self, r: &mut Rec) {
        let id = r.request_id.start();
        self.rng
            .push_chars(id, 16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
    }

    /// `errorCode` (+ `errorMessage`) with `responseElements` null.
    fn fail(&mut self, r: &mut Rec, code: &'static str, message: Option<&str>) {
        r.error_code = Some(code);
        if let Some(m) = message {
            r.error_message.set(m);
        }
        r.resp.null();
    }

    /// An IAM-style AccessDenied message for `action` by `a`.
    fn denied(&self, a: &Actor<'_>, action: &str, resource: Option<&str>) -> String {
        let arn = self.arn_of(a);
        match resource {
            Some(res) => format!(
                "User: {arn} is not authorized to perform: {action} on resource: {res} because no identity-based policy allows the {action} action"
            ),
            None => format!(
                "User: {arn} is not authorized to perform: {action} because no identity-based policy allows the {action} action"
            ),
        }
    }

    /// Writes `[{"accountId":…,"type":…,"ARN":…}]` as `resources`.
    fn resource(&mut self, r: &mut Rec, ty: &str, arn: &str) {
        self.resources(r, &[(ty, arn)]);
    }

    /// Writes `resources` with one element per (type, ARN), all in this account.
    fn resources(&mut self, r: &mut Rec, items: &[(&str, &str)]) {
        let mut j = r.resources.json();
        j.open_arr();
        for (ty, arn) in items {
            j.open();
            j.str("accountId", &self.acct.id);
            j.str("type", ty);
            j.str("ARN", arn);
            j.close();
        }
        j.close_arr();
    }

    /// `arn:aws:{svc}:{region}:{account}:{rest}`.
    fn arn(&self, svc: &str, rest: &str) -> String {
        let mut s = String::with_capacity(40 + rest.len());
        s.push_str("arn:aws:");
        s.push_str(svc);
        s.push(':');
        s.push_str(self.region);
        s.push(':');
        s.push_str(&self.acct.id);
        s.push(':');
        s.push_str(rest);
        s
    }

    fn role_arn(&self, acct: &str, path: &str, name: &str) -> String {
        format!("arn:aws:iam::{acct}:role{path}{name}")
    }

    fn uuid(&mut self) -> String {
        self.rng.uuid()
    }

    fn chars(&mut self, n: usize, set: &[u8]) -> String {
        self.rng.chars(n, set)
    }
}

/// A string field built from parts (each escaped), without a temporary String.
fn cat(j: &mut Json<'_>, k: &str, parts: &[&str]) {
    j.key(k);
    let b = j.buf();
    b.push('"');
    for p in parts {
        escape_into(b, p);
    }
    b.push('"');
    j.done();
}

// ----- management: API Activity ------------------------------------------------------

fn kms_crypto(c: &mut Ctx<'_>, r: &mut Rec) {
    let name =
        ["Decrypt", "GenerateDataKey", "Encrypt", "DescribeKey"][c.rng.weighted(&[55, 30, 10, 5])];
    let acct = c.acct;
    let key = c.rng.pick_str(&acct.kms_keys);
    let actor = match c.rng.weighted(&[45, 30, 25]) {
        0 => Actor::Service(c.rng.pick_str(&[
            "secretsmanager.amazonaws.com",
            "ssm.amazonaws.com",
            "logs.amazonaws.com",
            "sns.amazonaws.com",
            "dynamodb.amazonaws.com",
            "s3.amazonaws.com",
        ])),
        1 => c.role(RoleKind::Lambda),
        _ => c.automation(),
    };
    let v = if c.rng.chance(0.85) {
        modern_version(c)
    } else {
        mgmt_version(c)
    };
    c.begin(r, "kms.amazonaws.com", name, v);
    c.identity(r, &actor);
    c.client(r, &actor, None);
    let key_arn = c.arn("kms", &format!("key/{key}"));
    let region = c.region;
    {
        let mut j = r.req.json();
        j.open();
        if name == "DescribeKey" {
            j.str("keyId", "alias/aws/secretsmanager");
        } else {
            j.obj("encryptionContext");
            match &actor {
                Actor::Service("secretsmanager.amazonaws.com") => {
                    cat(
                        &mut j,
                        "SecretARN",
                        &[
                            "arn:aws:secretsmanager:",
                            region,
                            ":",
                            &acct.id,
                            ":secret:prod/orders/db-Xy12Ab",
                        ],
                    );
                    j.str("SecretVersionId", &c.rng.uuid());
                }
                Actor::Service("s3.amazonaws.com") => {
                    cat(
                        &mut j,
                        "aws:s3:arn",
                        &[
                            "arn:aws:s3:::",
                            c.rng.pick_str(&acct.buckets),
                            "/exports/2024/part-0001.parquet",
                        ],
                    );
                }
                Actor::Service("dynamodb.amazonaws.com") => {
                    j.str("aws:dynamodb:tableName", "Orders");
                    j.str("aws:dynamodb:subscriberId", &acct.id);
                }
                Actor::Service("logs.amazonaws.com") => {
                    cat(
                        &mut j,
                        "aws:logs:arn",
                        &[
                            "arn:aws:logs:",
                            region,
                            ":",
                            &acct.id,
                            ":log-group:/aws/lambda/orders-api",
                        ],
                    );
                }
                Actor::Role { role, session, .. } if role.kind == RoleKind::Lambda => {
                    cat(
                        &mut j,
                        "aws:lambda:FunctionArn",
                        &[
                            "arn:aws:lambda:",
                            region,
                            ":",
                            &acct.id,
                            ":function:",
                            session,
                        ],
                    );
                }
                _ => {
                    let vol = c.chars(17, HEX);
                    cat(&mut j, "aws:ebs:id", &["vol-", &vol]);
                }
            }
            j.close();
            if name != "Decrypt" {
                if c.rng.chance(0.5) {
                    j.str("keyId", &key_arn);
                } else {
                    j.str("keyId", "alias/aws/s3");
                }
            }
            if name == "GenerateDataKey" {
                j.str("keySpec", "AES_256");
            }
            j.str("encryptionAlgorithm", "SYMMETRIC_DEFAULT");
        }
        j.close();
    }
    r.resp.null();
    c.resource(r, "AWS::KMS::Key", &key_arn);
    if c.rng.chance(0.015) {
        let msg = c.denied(&actor, &format!("kms:{name}"), Some(&key_arn));
        c.fail(r, "AccessDenied", Some(&msg));
    }
}

fn ec2_describe(c: &mut Ctx<'_>, r: &mut Rec) {
    const NAMES: &[&str] = &[
        "DescribeInstances",
        "DescribeInstanceStatus",
        "DescribeSecurityGroups",
        "DescribeVolumes",
        "DescribeNetworkInterfaces",
        "DescribeSubnets",
        "DescribeVpcs",
        "DescribeRegions",
        "DescribeAvailabilityZones",
        "DescribeSnapshots",
        "DescribeImages",
        "DescribeTags",
        "DescribeLaunchTemplateVersions",
    ];
    let name = c.rng.pick_str(NAMES);
    let actor = if c.rng.chance(0.75) {
        c.automation()
    } else {
        c.human()
    };
    let v = mgmt_version(c);
    c.begin(r, "ec2.amazonaws.com", name, v);
    c.identity(r, &actor);
    c.client(r, &actor, None);
    let acct = c.acct;
    {
        let mut j = r.req.json();
        j.open();
        match name {
            "DescribeInstances" | "DescribeInstanceStatus" => {
                if c.rng.chance(0.5) {
                    j.obj("instancesSet");
                    j.arr("items");
                    for _ in 0..c.rng.range(1, 3) {
                        j.open();
                        j.str("instanceId", c.rng.pick_str(&acct.instances));
                        j.close();
                    }
                    j.close_arr();
                    j.close();
                    j.obj("filterSet");
                    j.close();
                } else {
                    j.int("maxResults", 1000);
                    j.obj("instancesSet");
                    j.close();
                    j.obj("filterSet");
                    j.arr("items");
                    j.open();
                    j.str("name", "instance-state-name");
                    j.obj("valueSet");
                    j.arr("items");
                    j.open();
                    j.str("value", "running");
                    j.close();
                    j.close_arr();
                    j.close();
                    j.close();
                    j.close_arr();
                    j.close();
                }
                if name == "DescribeInstanceStatus" {
                    j.bool("includeAllInstances", true);
                }
            }
            "DescribeRegions" => {
                j.obj("regionSet");
                j.close();
            }
            "DescribeAvailabilityZones" => {
                j.obj("availabilityZoneSet");
                j.close();
                j.obj("availabilityZoneIdSet");
                j.close();
            }
            "DescribeSecurityGroups" | "DescribeSubnets" | "DescribeVpcs" => {
                j.obj("filterSet");
                j.arr("items");
                j.open();
                j.str("name", "vpc-id");
                j.obj("valueSet");
                j.arr("items");
                j.open();
                let vpc = c.chars(17, HEX);
                cat(&mut j, "value", &["vpc-", &vpc]);
                j.close();
                j.close_arr();
                j.close();
                j.close();
                j.close_arr();
                j.close();
            }
            "DescribeImages" => {
                j.obj("executableBySet");
                j.close();
                j.obj("imagesSet");
                j.arr("items");
                j.open();
                let ami = c.chars(17, HEX);
                cat(&mut j, "imageId", &["ami-", &ami]);
                j.close();
                j.close_arr();
                j.close();
                j.obj("ownersSet");
                j.close();
                j.bool("includeDeprecated", false);
            }
            _ => {
                j.int("maxResults", 500);
                j.obj("filterSet");
                j.close();
            }
        }
        j.close();
    }
    r.resp.null();
    let roll = c.rng.below(100);
    if roll < 5 {
        let msg = format!(
            "You are not authorized to perform this operation. {}",
            c.denied(&actor, &format!("ec2:{name}"), None)
        );
        c.fail(r, "Client.UnauthorizedOperation", Some(&msg));
    } else if roll < 8 {
        c.fail(
            r,
            "Client.RequestLimitExceeded",
            Some("Request limit exceeded."),
        );
    }
}

/// How a [`MISC`] entry fills `requestParameters`.
#[derive(Clone, Copy)]
enum Req {
    Null,
    Empty,
    Body(fn(&mut Ctx<'_>, &mut Json<'_>)),
}

/// Who typically makes a [`MISC`] call.
#[derive(Clone, Copy)]
enum Who {
    Any,
    Ec2,
    Service(&'static str),
}

struct Misc {
    source: &'static str,
    name: &'static str,
    read_only: bool,
    who: Who,
    req: Req,
    resp: Option<&'static str>,
}

const fn m(source: &'static str, name: &'static str, read_only: bool, who: Who, req: Req) -> Misc {
    Misc {
        source,
        name,
        read_only,
        who,
        req,
        resp: None,
    }
}

const MISC: &[Misc] = &[
    m(
        "sts.amazonaws.com",
        "GetCallerIdentity",
        true,
        Who::Any,
        Req::Null,
    ),
    m(
        "cloudtrail.amazonaws.com",
        "LookupEvents",
        true,
        Who::Any,
        Req::Body(|c, j| {
            j.int("maxResults", 50);
            j.arr("lookupAttributes");
            j.open();
            j.str("attributeKey", "EventName");
            j.str("attributeValue", "ConsoleLogin");
            j.close();
            j.close_arr();
            j.key("startTime");
            let b = j.buf();
            b.push('"');
            push_event_time(b, c.time - 86_400);
            b.push('"');
            j.done();
        }),
    ),
    m(
        "cloudtrail.amazonaws.com",
        "DescribeTrails",
        true,
        Who::Any,
        Req::Body(|_, j| {
            j.arr("trailNameList");
            j.close_arr();
            j.bool("includeShadowTrails", true);
        }),
    ),
    m(
        "cloudtrail.amazonaws.com",
        "GetTrailStatus",
        true,
        Who::Any,
        Req::Body(|c, j| {
            j.str("name", &c.arn("cloudtrail", "trail/org-trail"));
        }),
    ),
    m(
        "cloudtrail.amazonaws.com",
        "StopLogging",
        false,
        Who::Any,
        Req::Body(|c, j| {
            j.str("name", &c.arn("cloudtrail", "trail/org-trail"));
        }),
    ),
    m(
        "lambda.amazonaws.com",
        "ListFunctions20150331",
        true,
        Who::Any,
        Req::Null,
    ),
    m(
        "lambda.amazonaws.com",
        "GetFunction20150331v2",
        true,
        Who::Any,
        Req::Body(|c, j| {
            j.str("functionName", c.rng.pick_str(&c.acct.functions));
        }),
    ),
    m(
        "lambda.amazonaws.com",
        "UpdateFunctionConfiguration20150331v2",
        false,
        Who::Any,
        Req::Body(|c, j| {
            j.str("functionName", c.rng.pick_str(&c.acct.functions));
            j.int("timeout", 30);
            j.int("memorySize", 512);
            j.obj("environment");
            j.close();
        }),
    ),
    m(
        "logs.amazonaws.com",
        "DescribeLogGroups",
        true,
        Who::Any,
        Req::Body(|_, j| {
            j.str("logGroupNamePrefix", "/aws/lambda/");
        }),
    ),
    m(
        "logs.amazonaws.com",
        "CreateLogStream",
        false,
        Who::Service("lambda.amazonaws.com"),
        Req::Body(|c, j| {
            cat(
                j,
                "logGroupName",
                &["/aws/lambda/", c.rng.pick_str(&c.acct.functions)],
            );
            let id = c.chars(32, HEX);
            cat(j, "logStreamName", &["2024/03/09/[$LATEST]", &id]);
        }),
    ),
    m(
        "logs.amazonaws.com",
        "PutRetentionPolicy",
        false,
        Who::Any,
        Req::Body(|_, j| {
            j.str("logGroupName", "/ecs/orders \"prod\"");
            j.int("retentionInDays", 30);
        }),
    ),
    m(
        "ssm.amazonaws.com",
        "GetParameter",
        true,
        Who::Any,
        Req::Body(|_, j| {
            j.str("name", "/prod/orders/db-password");
            j.bool("withDecryption", true);
        }),
    ),
    m(
        "ssm.amazonaws.com",
        "GetParameters",
        true,
        Who::Any,
        Req::Body(|_, j| {
            j.arr("names");
            j.val_str("/app/feature-flags");
            j.val_str("/app/réglages/délai");
            j.close_arr();
            j.bool("withDecryption", false);
        }),
    ),
    m(
        "ssm.amazonaws.com",
        "UpdateInstanceInformation",
        false,
        Who::Ec2,
        Req::Body(|c, j| {
            j.str("instanceId", c.rng.pick_str(&c.acct.instances));
            j.str("agentVersion", "3.3.40.0");
            j.str("agentStatus", "Active");
            j.str("platformType", "Linux");
            j.str("platformName", "Amazon Linux");
            j.str("platformVersion", "2023");
            j.str("iPAddress", "10.0.1.23");
            j.str("computerName", "ip-10-0-1-23.ec2.internal");
            j.str("agentName", "amazon-ssm-agent");
            cat(j, "availabilityZone", &[c.region, "a"]);
        }),
    ),
    m(
        "secretsmanager.amazonaws.com",
        "GetSecretValue",
        true,
        Who::Any,
        Req::Body(|c, j| {
            j.str(
                "secretId",
                &c.arn("secretsmanager", "secret:prod/orders/db-Xy12Ab"),
            );
        }),
    ),
    m(
        "dynamodb.amazonaws.com",
        "DescribeTable",
        true,
        Who::Any,
        Req::Body(|c, j| {
            j.str("tableName", c.rng.pick_str(&c.acct.tables));
        }),
    ),
    m(
        "ecr.amazonaws.com",
        "GetAuthorizationToken",
        true,
        Who::Ec2,
        Req::Null,
    ),
    m(
        "autoscaling.amazonaws.com",
        "DescribeAutoScalingGroups",
        true,
        Who::Any,
        Req::Body(|_, j| {
            j.int("maxRecords", 100);
        }),
    ),
    m(
        "elasticloadbalancing.amazonaws.com",
        "DescribeTargetHealth",
        true,
        Who::Any,
        Req::Body(|c, j| {
            let id = c.chars(16, HEX);
            j.str(
                "targetGroupArn",
                &c.arn(
                    "elasticloadbalancing",
                    &format!("targetgroup/orders-api/{id}"),
                ),
            );
        }),
    ),
    m(
        "monitoring.amazonaws.com",
        "DescribeAlarms",
        true,
        Who::Any,
        Req::Body(|_, j| {
            j.int("maxRecords", 100);
            j.str("alarmNamePrefix", "prod-");
        }),
    ),
    m(
        "config.amazonaws.com",
        "PutEvaluations",
        false,
        Who::Service("config.amazonaws.com"),
        Req::Body(|c, j| {
            j.arr("evaluations");
            j.open();
            j.str("complianceResourceType", "AWS::EC2::Instance");
            j.str("complianceResourceId", c.rng.pick_str(&c.acct.instances));
            j.str("complianceType", "NON_COMPLIANT");
            j.str(
                "annotation",
                "Instance has a public IP; see \"ec2-no-public-ip\" rule.",
            );
            j.key("orderingTimestamp");
            let b = j.buf();
            b.push('"');
            push_event_time(b, c.time - 600);
            b.push('"');
            j.done();
            j.close();
            j.close_arr();
            let token = c.chars(120, B64);
            j.str("resultToken", &token);
            j.bool("testMode", false);
        }),
    ),
    m(
        "guardduty.amazonaws.com",
        "ListDetectors",
        true,
        Who::Any,
        Req::Empty,
    ),
    Misc {
        resp: Some("{\"directConnectGateways\":[]}"),
        ..m(
            "directconnect.amazonaws.com",
            "DescribeDirectConnectGateways",
            true,
            Who::Any,
            Req::Null,
        )
    },
    m(
        "apigateway.amazonaws.com",
        "GetVpcLinks",
        true,
        Who::Any,
        Req::Body(|_, j| {
            j.int("limit", 500);
        }),
    ),
    m(
        "ecs.amazonaws.com",
        "ListClusters",
        true,
        Who::Any,
        Req::Null,
    ),
    m(
        "rds.amazonaws.com",
        "DescribeDBInstances",
        true,
        Who::Any,
        Req::Body(|_, j| {
            j.int("maxRecords", 100);
        }),
    ),
    m(
        "cloudformation.amazonaws.com",
        "DescribeStacks",
        true,
        Who::Any,
        Req::Body(|c, j| {
            let id = c.uuid();
            j.str(
                "stackName",
                &c.arn("cloudformation", &format!("stack/orders-api/{id}")),
            );
        }),
    ),
];

fn misc_api(c: &mut Ctx<'_>, r: &mut Rec) {
    let e = c.rng.pick(MISC);
    let actor = match e.who {
        Who::Any => c.caller(),
        Who::Ec2 => c.role(RoleKind::Ec2),
        Who::Service(s) => Actor::Service(s),
    };
    let v = mgmt_version(c);
    c.begin(r, e.source, e.name, v);
    r.read_only = Some(e.read_only);
    if e.source == "apigateway.amazonaws.com" {
        r.api_version = Some("2015-07-09");
    }
    c.identity(r, &actor);
    c.client(r, &actor, None);
    match e.req {
        Req::Null => {
            // Sometimes absent altogether rather than null.
            if !c.rng.chance(0.1) {
                r.req.null();
            }
        }
        Req::Empty => {
            r.req.json().val_raw("{}");
        }
        Req::Body(f) => {
            let mut j = r.req.json();
            j.open();
            f(c, &mut j);
            j.close();
        }
    }
    match e.resp {
        Some(raw) => r.resp.json().val_raw(raw),
        None => r.resp.null(),
    }
    let roll = c.rng.below(1000);
    let prefix = e.source.split('.').next().unwrap_or("");
    if roll < 20 {
        c.fail(r, "ThrottlingException", Some("Rate exceeded"));
    } else if roll < 45 {
        let json_protocol = matches!(
            prefix,
            "ssm" | "secretsmanager" | "logs" | "lambda" | "dynamodb" | "ecr" | "cloudtrail"
        );
        let code = if json_protocol {
            "AccessDeniedException"
        } else {
            "AccessDenied"
        };
        let msg = c.denied(&actor, &format!("{prefix}:{}", e.name), None);
        c.fail(r, code, Some(&msg));
    } else if roll < 50 && e.name == "GetSecretValue" {
        c.fail(
            r,
            "ResourceNotFoundException",
            Some("Secrets Manager can't find the specified secret."),
        );
    }
}

/// S3 `additionalEventData`.
fn s3_aed(c: &mut Ctx<'_>, r: &mut Rec, bytes_in: i64, bytes_out: i64, sse: bool) {
    let tls13 = c.rng.chance(0.7);
    let mut j = r.aed.json();
    j.open();
    j.str("SignatureVersion", "SigV4");
    j.str(
        "CipherSuite",
        if tls13 {
            "TLS_AES_128_GCM_SHA256"
        } else {
            "ECDHE-RSA-AES128-GCM-SHA256"
        },
    );
    j.int("bytesTransferredIn", bytes_in);
    if sse {
        j.str("SSEApplied", "Default_SSE_S3");
    }
    j.str("AuthenticationMethod", "AuthHeader");
    j.key("x-amz-id-2");
    {
        let b = j.buf();
        b.push('"');
        c.rng.push_chars(b, 75, B64);
        b.push_str("=\"");
    }
    j.done();
    j.int("bytesTransferredOut", bytes_out);
    j.close();
}

fn s3_host(bucket: &str, region: &str) -> String {
    format!("{bucket}.s3.{region}.amazonaws.com")
}

fn s3_bucket(c: &mut Ctx<'_>, r: &mut Rec) {
    let name = [
        "ListBuckets",
        "GetBucketAcl",
        "GetBucketPolicy",
        "GetBucketLocation",
        "GetBucketVersioning",
        "PutBucketPolicy",
        "GetBucketEncryption",
    ][c.rng.weighted(&[20, 15, 15, 15, 10, 5, 10])];
    let acct = c.acct;
    let bucket = c.rng.pick_str(&acct.buckets);
    let actor = match c.rng.weighted(&[40, 35, 20, 5]) {
        0 => Actor::Service(c.rng.pick_str(&[
            "config.amazonaws.com",
            "access-analyzer.amazonaws.com",
            "securityhub.amazonaws.com",
        ])),
        1 => c.human(),
        2 => c.automation(),
        _ => Actor::Root { console: true },
    };
    let v = mgmt_version(c);
    c.begin(r, "s3.amazonaws.com", name, v);
    c.s3_request_id(r);
    r.read_only = Some(name != "PutBucketPolicy");
    c.identity(r, &actor);
    let host = if name == "ListBuckets" {
        "s3.amazonaws.com".to_string()
    } else {
        s3_host(bucket, c.region)
    };
    c.client(r, &actor, Some(&host));
    {
        let mut j = r.req.json();
        j.open();
        match name {
            "ListBuckets" => j.str("Host", &host),
            "PutBucketPolicy" => {
                j.obj("bucketPolicy");
                j.str("Version", "2012-10-17");
                j.arr("Statement");
                j.open();
                j.str("Sid", "AllowSSLRequestsOnly");
                j.str("Effect", "Deny");
                j.str("Principal", "*");
                j.str("Action", "s3:*");
                j.arr("Resource");
                j.val_str(&format!("arn:aws:s3:::{bucket}"));
                j.val_str(&format!("arn:aws:s3:::{bucket}/*"));
                j.close_arr();
                j.obj("Condition");
                j.obj("Bool");
                j.str("aws:SecureTransport", "false");
                j.close();
                j.close();
                j.close();
                j.close_arr();
                j.close();
                j.str("bucketName", bucket);
                j.str("Host", &host);
                j.str("policy", "");
            }
            _ => {
                j.str("bucketName", bucket);
                j.str("Host", &host);
                let sub = match name {
                    "GetBucketAcl" => "acl",
                    "GetBucketPolicy" => "policy",
                    "GetBucketLocation" => "location",
                    "GetBucketVersioning" => "versioning",
                    _ => "encryption",
                };
                j.str(sub, "");
            }
        }
        j.close();
    }
    r.resp.null();
    s3_aed(c, r, 0, 0, false);
    if name != "ListBuckets" {
        c.resource(r, "AWS::S3::Bucket", &format!("arn:aws:s3:::{bucket}"));
    }
    if name == "GetBucketPolicy" && c.rng.chance(0.3) {
        c.fail(
            r,
            "NoSuchBucketPolicy",
            Some("The bucket policy does not exist"),
        );
    } else if c.rng.chance(0.02) {
        c.fail(r, "AccessDenied", Some("Access Denied"));
    }
}

fn ec2_write(c: &mut Ctx<'_>, r: &mut Rec) {
    let name = [
        "RunInstances",
        "TerminateInstances",
        "CreateTags",
        "StopInstances",
        "AuthorizeSecurityGroupIngress",
    ][c.rng.weighted(&[25, 15, 30, 15, 15])];
    let actor = match c.rng.weighted(&[30, 20, 25, 25]) {
        0 => c.role(RoleKind::ServiceLinked),
        1 => c.role(RoleKind::Eks),
        2 => c.role(RoleKind::Ci),
        _ => c.human(),
    };
    let v = if c.rng.chance(0.8) {
        modern_version(c)
    } else {
        mgmt_version(c)
    };
    c.begin(r, "ec2.amazonaws.com", name, v);
    r.read_only = Some(false);
    c.identity(r, &actor);
    c.client(r, &actor, None);
    let acct = c.acct;
    let instance = c.rng.pick_str(&acct.instances);
    let req_id = c.uuid();
    let mut req = r.req.json();
    let mut resp = r.resp.json();
    req.open();
    resp.open();
    resp.str("requestId", &req_id);
    match name {
        "RunInstances" => {
            let ami = c.chars(17, HEX);
            let subnet = c.chars(17, HEX);
            let vpc = c.chars(17, HEX);
            let sg = c.chars(17, HEX);
            req.obj("instancesSet");
            req.arr("items");
            req.open();
            cat(&mut req, "imageId", &["ami-", &ami]);
            req.int("minCount", 1);
            req.int("maxCount", 1);
            req.close();
            req.close_arr();
            req.close();
            req.str("userData", "<sensitiveDataRemoved>");
            req.str("instanceType", "t3.micro");
            req.obj("blockDeviceMapping");
            req.close();
            req.obj("monitoring");
            req.bool("enabled", false);
            req.close();
            req.bool("disableApiTermination", false);
            req.bool("disableApiStop", false);
            req.str("clientToken", &c.rng.uuid());
            req.obj("networkInterfaceSet");
            req.arr("items");
            req.open();
            req.int("deviceIndex", 0);
            cat(&mut req, "subnetId", &["subnet-", &subnet]);
            req.bool("associatePublicIpAddress", true);
            req.close();
            req.close_arr();
            req.close();
            req.obj("iamInstanceProfile");
            req.str("name", "app-server-ec2");
            req.close();
            req.obj("tagSpecificationSet");
            req.arr("items");
            req.open();
            req.str("resourceType", "instance");
            req.arr("tags");
            req.open();
            req.str("key", "Name");
            req.str("value", "web-1 «blue»");
            req.close();
            req.close_arr();
            req.close();
            req.close_arr();
            req.close();

            let res = c.chars(17, HEX);
            cat(&mut resp, "reservationId", &["r-", &res]);
            resp.str("ownerId", &acct.id);
            resp.obj("groupSet");
            resp.close();
            resp.obj("instancesSet");
            resp.arr("items");
            resp.open();
            resp.str("instanceId", instance);
            cat(&mut resp, "imageId", &["ami-", &ami]);
            resp.str("currentInstanceBootMode", "uefi");
            resp.obj("instanceState");
            resp.int("code", 0);
            resp.str("name", "pending");
            resp.close();
            resp.str("privateDnsName", "ip-10-0-1-23.ec2.internal");
            resp.int("amiLaunchIndex", 0);
            resp.obj("productCodes");
            resp.close();
            resp.str("instanceType", "t3.micro");
            resp.int("launchTime", c.time * 1000);
            resp.obj("placement");
            cat(&mut resp, "availabilityZone", &[c.region, "a"]);
            resp.str("tenancy", "default");
            resp.close();
            resp.obj("monitoring");
            resp.str("state", "disabled");
            resp.close();
            cat(&mut resp, "subnetId", &["subnet-", &subnet]);
            cat(&mut resp, "vpcId", &["vpc-", &vpc]);
            resp.str("privateIpAddress", "10.0.1.23");
            resp.obj("stateReason");
            resp.str("code", "pending");
            resp.str("message", "pending");
            resp.close();
            resp.str("architecture", "x86_64");
            resp.str("rootDeviceType", "ebs");
            resp.str("rootDeviceName", "/dev/xvda");
            resp.obj("blockDeviceMapping");
            resp.close();
            resp.str("virtualizationType", "hvm");
            resp.str("hypervisor", "xen");
            resp.obj("groupSet");
            resp.arr("items");
            resp.open();
            cat(&mut resp, "groupId", &["sg-", &sg]);
            resp.str("groupName", "default");
            resp.close();
            resp.close_arr();
            resp.close();
            resp.bool("sourceDestCheck", true);
            resp.bool("ebsOptimized", false);
            resp.bool("enaSupport", true);
            resp.obj("cpuOptions");
            resp.int("coreCount", 1);
            resp.int("threadsPerCore", 2);
            resp.close();
            resp.obj("capacityReservationSpecification");
            resp.str("capacityReservationPreference", "open");
            resp.close();
            resp.obj("enclaveOptions");
            resp.bool("enabled", false);
            resp.close();
            resp.obj("metadataOptions");
            resp.str("state", "pending");
            resp.str("httpTokens", "required");
            resp.int("httpPutResponseHopLimit", 2);
            resp.str("httpEndpoint", "enabled");
            resp.str("httpProtocolIpv4", "enabled");
            resp.str("httpProtocolIpv6", "disabled");
            resp.str("instanceMetadataTags", "disabled");
            resp.close();
            resp.obj("maintenanceOptions");
            resp.str("autoRecovery", "default");
            resp.close();
            resp.obj("privateDnsNameOptions");
            resp.str("hostnameType", "ip-name");
            resp.bool("enableResourceNameDnsARecord", false);
            resp.bool("enableResourceNameDnsAAAARecord", false);
            resp.close();
            resp.close();
            resp.close_arr();
            resp.close();
        }
        "TerminateInstances" | "StopInstances" => {
            req.obj("instancesSet");
            req.arr("items");
            req.open();
            req.str("instanceId", instance);
            req.close();
            req.close_arr();
            req.close();
            if name == "StopInstances" {
                req.bool("force", false);
            }
            resp.obj("instancesSet");
            resp.arr("items");
            resp.open();
            resp.str("instanceId", instance);
            resp.obj("currentState");
            let (code, state) = if name == "StopInstances" {
                (64, "stopping")
            } else {
                (32, "shutting-down")
            };
            resp.int("code", code);
            resp.str("name", state);
            resp.close();
            resp.obj("previousState");
            resp.int("code", 16);
            resp.str("name", "running");
            resp.close();
            resp.close();
            resp.close_arr();
            resp.close();
        }
        "CreateTags" => {
            req.obj("resourcesSet");
            req.arr("items");
            req.open();
            req.str("resourceId", instance);
            req.close();
            req.close_arr();
            req.close();
            req.obj("tagSet");
            req.arr("items");
            req.open();
            req.str("key", "Name");
            req.str("value", "web \"blue\" ☁ C:\\temp");
            req.close();
            req.open();
            req.str("key", "karpenter.sh/nodepool");
            req.str("value", "default");
            req.close();
            req.close_arr();
            req.close();
            resp.bool("_return", true);
        }
        _ => {
            let sg = c.chars(17, HEX);
            let rule = c.chars(17, HEX);
            cat(&mut req, "groupId", &["sg-", &sg]);
            req.obj("ipPermissions");
            req.arr("items");
            req.open();
            req.str("ipProtocol", "tcp");
            req.int("fromPort", 22);
            req.int("toPort", 22);
            req.obj("groups");
            req.close();
            req.obj("ipRanges");
            req.arr("items");
            req.open();
            req.str("cidrIp", "0.0.0.0/0");
            req.str("description", "ssh from anywhere \\o/");
            req.close();
            req.close_arr();
            req.close();
            req.obj("ipv6Ranges");
            req.close();
            req.obj("prefixListIds");
            req.close();
            req.close();
            req.close_arr();
            req.close();
            resp.bool("_return", true);
            resp.obj("securityGroupRuleSet");
            resp.arr("items");
            resp.open();
            resp.str("groupOwnerId", &acct.id);
            cat(&mut resp, "groupId", &["sg-", &sg]);
            cat(&mut resp, "securityGroupRuleId", &["sgr-", &rule]);
            resp.bool("isEgress", false);
            resp.str("ipProtocol", "tcp");
            resp.int("fromPort", 22);
            resp.int("toPort", 22);
            resp.str("cidrIpv4", "0.0.0.0/0");
            resp.str("description", "ssh from anywhere \\o/");
            resp.close();
            resp.close_arr();
            resp.close();
        }
    }
    req.close();
    resp.close();
    if c.rng.chance(0.04) {
        let msg = format!(
            "You are not authorized to perform this operation. {}",
            c.denied(&actor, &format!("ec2:{name}"), None)
        );
        c.fail(r, "Client.UnauthorizedOperation", Some(&msg));
    }
}

fn iam_read(c: &mut Ctx<'_>, r: &mut Rec) {
    let name = [
        "ListRoles",
        "GetRole",
        "ListAttachedRolePolicies",
        "GetUser",
        "ListUsers",
        "GenerateCredentialReport",
        "GetAccountAuthorizationDetails",
        "ListMFADevices",
        "GetAccountSummary",
    ][c.rng.weighted(&[15, 20, 15, 10, 10, 5, 5, 10, 10])];
    let actor = match c.rng.weighted(&[50, 40, 10]) {
        0 => c.automation(),
        1 => c.human(),
        _ => Actor::Service("access-analyzer.amazonaws.com"),
    };
    let v = mgmt_version(c);
    c.begin(r, "iam.amazonaws.com", name, v);
    c.identity(r, &actor);
    c.client(r, &actor, None);
    let acct = c.acct;
    match name {
        "GetRole" | "ListAttachedRolePolicies" => {
            let role = c.rng.pick(&acct.roles).name;
            let mut j = r.req.json();
            j.open();
            j.str("roleName", role);
            j.close();
        }
        "GetUser" | "ListMFADevices" => {
            let user = c.rng.pick(&acct.users).name;
            let mut j = r.req.json();
            j.open();
            j.str("userName", user);
            j.close();
        }
        "GetAccountAuthorizationDetails" => {
            r.req.json().val_raw(
                "{\"filter\":[\"User\",\"Role\",\"Group\",\"LocalManagedPolicy\",\"AWSManagedPolicy\"]}",
            );
        }
        "ListRoles" => r.req.json().val_raw("{\"maxItems\":1000}"),
        _ => r.req.null(),
    }
    if name == "GenerateCredentialReport" {
        r.resp.json().val_raw(
            "{\"state\":\"STARTED\",\"description\":\"No report exists. Starting a new report generation task\"}",
        );
    } else {
        r.resp.null();
    }
    if c.rng.chance(0.03) {
        let msg = c.denied(&actor, &format!("iam:{name}"), None);
        c.fail(r, "AccessDenied", Some(&msg));
    }
}

fn sts_other(c: &mut Ctx<'_>, r: &mut Rec) {
    let name = [
        "GetSessionToken",
        "DecodeAuthorizationMessage",
        "GetAccessKeyInfo",
    ][c.rng.weighted(&[60, 25, 15])];
    let actor = c.user(false);
    let v = modern_version(c);
    c.begin(r, "sts.amazonaws.com", name, v);
    c.identity(r, &actor);
    c.client(r, &actor, Some("sts.amazonaws.com"));
    match name {
        "GetSessionToken" => {
            let mut j = r.req.json();
            j.open();
            j.int("durationSeconds", 43_200);
            if let Actor::User { user, .. } = &actor {
                cat(
                    &mut j,
                    "serialNumber",
                    &["arn:aws:iam::", &c.acct.id, ":mfa/", user.name],
                );
                j.str("tokenCode", "HIDDEN_DUE_TO_SECURITY_REASONS");
            }
            j.close();
            let mut k = r.resp.json();
            k.open();
            c.credentials(&mut k, 43_200);
            k.close();
        }
        "DecodeAuthorizationMessage" => {
            let blob = c.chars(180, B64);
            let mut j = r.req.json();
            j.open();
            j.str("encodedMessage", &blob);
            j.close();
            r.resp.null();
        }
        _ => {
            let key = c.chars(16, UPPER_B32);
            let mut j = r.req.json();
            j.open();
            cat(&mut j, "accessKeyId", &["AKIA", &key]);
            j.close();
            r.resp.null();
        }
    }
}

fn switch_role(c: &mut Ctx<'_>, r: &mut Rec) {
    let mut actor = c.role(RoleKind::Human);
    if let Actor::Role { console, .. } = &mut actor {
        *console = true;
    }
    let v = modern_version(c);
    c.begin(r, "signin.amazonaws.com", "SwitchRole", v);
    r.event_type = "AwsConsoleSignIn";
    r.request_id.clear();
    r.read_only = Some(false);
    c.identity(r, &actor);
    c.public_ip(r);
    r.ua.set(c.rng.pick_str(BROWSERS));
    r.req.null();
    r.resp.json().val_raw("{\"SwitchRole\":\"Success\"}");
    let user = c.rng.pick(&c.acct.users).name;
    let mut j = r.aed.json();
    j.open();
    cat(
        &mut j,
        "SwitchFrom",
        &["arn:aws:iam::", &c.acct.id, ":user/", user],
    );
    cat(
        &mut j,
        "RedirectTo",
        &[
            "https://",
            c.region,
            ".console.aws.amazon.com/console/home?region=",
            c.region,
            "#",
        ],
    );
    j.close();
}

fn sso_portal(c: &mut Ctx<'_>, r: &mut Rec) {
    let acct = c.acct;
    let user_id = &c.rng.pick(&acct.sso_users).0;
    let actor = Actor::IdentityCenter { user_id };
    let ev =
        ["ListAccounts", "ListAccountRoles", "GetRoleCredentials"][c.rng.weighted(&[30, 30, 40])];
    let v = [10, 11][c.rng.index(2)];
    c.begin(r, "sso.amazonaws.com", ev, v);
    c.identity(r, &actor);
    let host = format!("portal.sso.{}.amazonaws.com", c.region);
    c.client(r, &actor, Some(&host));
    match ev {
        "ListAccounts" => r.req.null(),
        _ => {
            let mut j = r.req.json();
            j.open();
            j.str("accountId", &acct.id);
            if ev == "GetRoleCredentials" {
                j.str(
                    "roleName",
                    c.rng.pick_str(&["AdministratorAccess", "ReadOnlyAccess"]),
                );
            }
            j.close();
        }
    }
    r.resp.null();
}

fn console_action(c: &mut Ctx<'_>, r: &mut Rec) {
    let (source, name) = [
        ("account.amazonaws.com", "GetAccountInformation"),
        ("health.amazonaws.com", "DescribeEventAggregates"),
        ("ce.amazonaws.com", "GetCostAndUsage"),
    ][c.rng.index(3)];
    let mut actor = c.role(RoleKind::Sso);
    if let Actor::Role { console, .. } = &mut actor {
        *console = true;
    }
    let v = modern_version(c);
    c.begin(r, source, name, v);
    r.event_type = "AwsConsoleAction";
    c.identity(r, &actor);
    c.client(r, &actor, None);
    r.req.null();
    r.resp.null();
}

fn service_event(c: &mut Ctx<'_>, r: &mut Rec) {
    let acct = c.acct;
    if c.rng.chance(0.6) {
        let key = c.rng.pick_str(&acct.kms_keys);
        let actor = Actor::ServiceAccount("kms.amazonaws.com");
        let v = modern_version(c);
        c.begin(r, "kms.amazonaws.com", "RotateKey", v);
        c.identity(r, &actor);
        c.client(r, &actor, None);
        r.request_id.clear();
        r.read_only = Some(false);
        r.event_type = "AwsServiceEvent";
        r.req.null();
        r.resp.null();
        let key_arn = c.arn("kms", &format!("key/{key}"));
        c.resource(r, "AWS::KMS::Key", &key_arn);
        let mut j = r.service_details.json();
        j.open();
        j.str("keyId", key);
        j.close();
    } else {
        // A service event without sourceIPAddress, userAgent, requestParameters or
        // responseElements.
        let actor = Actor::ServiceAccount("backup.amazonaws.com");
        let v = modern_version(c);
        c.begin(r, "backup.amazonaws.com", "BackupJobCompleted", v);
        c.identity(r, &actor);
        r.request_id.clear();
        r.read_only = Some(false);
        r.event_type = "AwsServiceEvent";
        let job = c.uuid();
        let plan = c.uuid();
        let vol = c.chars(17, HEX);
        let size = c.rng.range(1 << 20, 1 << 36) as i64;
        let region = c.region;
        let mut j = r.service_details.json();
        j.open();
        j.str("backupJobId", &job);
        j.str("backupPlanId", &plan);
        j.str("backupVaultName", "Default");
        cat(
            &mut j,
            "resourceArn",
            &["arn:aws:ec2:", region, ":", &acct.id, ":volume/vol-", &vol],
        );
        j.str("resourceType", "EBS");
        j.str("state", "COMPLETED");
        j.int("backupSizeInBytes", size);
        j.str("completionDate", &event_time(c.time));
        j.close();
    }
}

fn cfn_invoked(c: &mut Ctx<'_>, r: &mut Rec) {
    let mut actor = c.role(RoleKind::Human);
    if let Actor::Role {
        invoked_by,
        console,
        ..
    } = &mut actor
    {
        *invoked_by = Some("cloudformation.amazonaws.com");
        *console = false;
    }
    let which = c.rng.index(4);
    let (source, name) = [
        ("ec2.amazonaws.com", "CreateSecurityGroup"),
        ("lambda.amazonaws.com", "CreateFunction20150331"),
        ("logs.amazonaws.com", "CreateLogGroup"),
        ("sns.amazonaws.com", "CreateTopic"),
    ][which];
    let v = modern_version(c);
    c.begin(r, source, name, v);
    r.read_only = Some(false);
    c.identity(r, &actor);
    c.client(r, &actor, None);
    let suffix = c.chars(12, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
    let acct = c.acct;
    match which {
        0 => {
            let vpc = c.chars(17, HEX);
            let sg = c.chars(17, HEX);
            let rid = c.uuid();
            let mut j = r.req.json();
            j.open();
            cat(&mut j, "groupName", &["orders-api-ApiSg-", &suffix]);
            j.str(
                "groupDescription",
                "Security group for \"orders\" API — managed by CloudFormation",
            );
            cat(&mut j, "vpcId", &["vpc-", &vpc]);
            j.close();
            let mut k = r.resp.json();
            k.open();
            k.str("requestId", &rid);
            k.bool("_return", true);
            cat(&mut k, "groupId", &["sg-", &sg]);
            k.close();
        }
        1 => {
            let region = c.region;
            let mut j = r.req.json();
            j.open();
            cat(&mut j, "functionName", &["orders-api-Fn-", &suffix]);
            j.str("runtime", "python3.12");
            cat(
                &mut j,
                "role",
                &[
                    "arn:aws:iam::",
                    &acct.id,
                    ":role/service-role/orders-api-exec",
                ],
            );
            j.str("handler", "app.handler");
            j.obj("code");
            j.close();
            j.int("timeout", 30);
            j.int("memorySize", 256);
            j.bool("publish", false);
            j.obj("tags");
            j.str("aws:cloudformation:stack-name", "orders-api");
            cat(
                &mut j,
                "aws:cloudformation:stack-id",
                &[
                    "arn:aws:cloudformation:",
                    region,
                    ":",
                    &acct.id,
                    ":stack/orders-api/",
                    &suffix,
                ],
            );
            j.close();
            j.close();
            r.resp.null();
        }
        2 => {
            let mut j = r.req.json();
            j.open();
            cat(
                &mut j,
                "logGroupName",
                &["/aws/lambda/orders-api-Fn-", &suffix],
            );
            j.close();
            r.resp.null();
        }
        _ => {
            let arn = c.arn("sns", "alerts-prod");
            let mut j = r.req.json();
            j.open();
            j.str("name", "alerts-prod");
            j.close();
            let mut k = r.resp.json();
            k.open();
            k.str("topicArn", &arn);
            k.close();
        }
    }
}

/// ECS task families and how many environment variables each one's definition has.
const TASK_FAMILIES: &[(&str, u64)] = &[
    ("orders", 180),
    ("payments", 420),
    ("search-indexer", 260),
    ("ingest", 880),
    ("web", 150),
    ("billing-batch", 640),
];

/// The value of a task's `i`th environment variable, like real configuration: flags,
/// numbers, hosts and URLs, ARNs, now and then an opaque token or a value that needs
/// escaping.
fn setting_value(rng: &mut Rng, family: &str, acct: &Account, region: &str, i: usize) -> String {
    const WORDS: &[&str] = &[
        "cache", "queue", "retry", "timeout", "batch", "pool", "events", "audit", "export",
        "catalog", "ledger", "session", "metrics", "search", "notify",
    ];
    let word = rng.pick_str(WORDS);
    match rng.weighted(&[14, 14, 5, 16, 12, 10, 8, 6, 5, 4, 3, 3]) {
        0 => rng.pick_str(&["true", "false"]).to_string(),
        1 => rng
            .pick_str(&[
                "1", "3", "5", "10", "30", "60", "100", "250", "1000", "8080",
            ])
            .to_string(),
        2 => rng
            .pick_str(&["INFO", "WARN", "DEBUG", "production", "json", "utf-8"])
            .to_string(),
        3 => format!("{word}.{family}.internal"),
        4 => format!(
            "https://{word}.{family}.internal:{}/v{}",
            8000 + rng.below(100),
            1 + rng.below(3)
        ),
        5 => format!("arn:aws:sqs:{region}:{}:{family}-{word}", acct.id),
        6 => format!(
            "arn:aws:secretsmanager:{region}:{}:secret:{family}/{word}-{}",
            acct.id,
            rng.chars(6, ALNUM)
        ),
        7 => format!(
            "postgres://{family}-{word}.cluster-{}.{region}.rds.amazonaws.com:5432/{family}?sslmode=require",
            rng.chars(12, ALNUM).to_lowercase()
        ),
        8 => format!("s3://{family}-{word}-{}/{region}/", acct.id),
        9 => rng.chars(32, B64),
        10 => format!("ünïcødé \"{word}\" for {family}"),
        _ => format!("C:\\{family}\\{word}\\{i}"),
    }
}

/// An ECS task definition with hundreds of environment variables: tens of KB in
/// both requestParameters and responseElements. Like a real deployment pipeline, each
/// account registers a few families again and again: a family's variables stay the
/// same from one revision to the next except for a few changed values and the image,
/// so these payloads are as repetitive as real ones, not random text.
fn large_task_definition(c: &mut Ctx<'_>, r: &mut Rec) {
    let actor = c.role(RoleKind::Ci);
    let v = modern_version(c);
    c.begin(r, "ecs.amazonaws.com", "RegisterTaskDefinition", v);
    r.read_only = Some(false);
    c.identity(r, &actor);
    c.client(r, &actor, None);
    let &(family, vars) = c.rng.pick(TASK_FAMILIES);
    let vars = vars as usize;
    let sha = c.chars(40, HEX);
    let revision = c.rng.range(1, 400) as i64;
    let acct = c.acct;
    let region = c.region;
    let image = format!(
        "{}.dkr.ecr.{region}.amazonaws.com/{family}:sha-{sha}",
        acct.id
    );
    // The family's settings in this account and region: the same stream every time.
    let mut stable = Rng::derive(
        mix(mix(mix(0xcbf2_9ce4_8422_2325, &acct.id), region), family),
        0x7a5c_def0,
    );
    let mut values = Vec::with_capacity(vars);
    for i in 0..vars {
        let v = if c.rng.chance(0.02) {
            // Changed in this revision; the stable stream still advances.
            setting_value(&mut stable, family, acct, region, i);
            setting_value(c.rng, family, acct, region, i)
        } else {
            setting_value(&mut stable, family, acct, region, i)
        };
        values.push(v);
    }
    let container = |j: &mut Json<'_>| {
        j.arr("containerDefinitions");
        j.open();
        j.str("name", "app");
        j.str("image", &image);
        j.int("cpu", 256);
        j.int("memory", 512);
        j.bool("essential", true);
        j.arr("environment");
        for (i, v) in values.iter().enumerate() {
            j.open();
            j.key("name");
            let b = j.buf();
            b.push('"');
            b.extend(family.chars().map(|ch| match ch {
                '-' => '_',
                ch => ch.to_ascii_uppercase(),
            }));
            b.push_str("_SETTING_");
            crate::json::push_int(b, i as i64);
            b.push('"');
            j.done();
            j.str("value", v);
            j.close();
        }
        j.close_arr();
        j.obj("logConfiguration");
        j.str("logDriver", "awslogs");
        j.obj("options");
        j.str("awslogs-group", "/ecs/orders");
        j.str("awslogs-region", region);
        j.str("awslogs-stream-prefix", "app");
        j.close();
        j.close();
        j.close();
        j.close_arr();
    };
    {
        let mut j = r.req.json();
        j.open();
        j.str("family", family);
        container(&mut j);
        j.str("networkMode", "awsvpc");
        j.arr("requiresCompatibilities");
        j.val_str("FARGATE");
        j.close_arr();
        j.str("cpu", "256");
        j.str("memory", "512");
        j.close();
    }
    let mut k = r.resp.json();
    k.open();
    k.obj("taskDefinition");
    cat(
        &mut k,
        "taskDefinitionArn",
        &[
            "arn:aws:ecs:",
            region,
            ":",
            &acct.id,
            ":task-definition/",
            family,
            ":",
            &revision.to_string(),
        ],
    );
    container(&mut k);
    k.str("family", family);
    k.int("revision", revision);
    k.str("status", "ACTIVE");
    k.str("networkMode", "awsvpc");
    k.close();
    k.close();
}

// ----- Authentication ----------------------------------------------------------------

fn sts_assume_role(c: &mut Ctx<'_>, r: &mut Rec) {
    let world = c.world;
    let acct = c.acct;
    // Who calls, and which role they assume (possibly in another account).
    let who = c.rng.weighted(&[55, 25, 10, 10]);
    let (actor, target_acct, role, session) = match who {
        0 => {
            let svc = c.rng.pick_str(&[
                "lambda.amazonaws.com",
                "ec2.amazonaws.com",
                "ecs-tasks.amazonaws.com",
                "config.amazonaws.com",
                "autoscaling.amazonaws.com",
            ]);
            let (kind, session) = match svc {
                "lambda.amazonaws.com" => (
                    RoleKind::Lambda,
                    (c.rng.pick_str(&acct.functions)).to_string(),
                ),
                "ec2.amazonaws.com" => (RoleKind::Ec2, c.rng.pick_str(&acct.instances).to_string()),
                "ecs-tasks.amazonaws.com" => (RoleKind::Lambda, c.chars(32, HEX)),
                _ => (RoleKind::ServiceLinked, "AWSConfig-Describe".to_string()),
            };
            let role = acct.role_of(c.rng, kind);
            (Actor::Service(svc), acct.id.as_str(), role, session)
        }
        1 => {
            let actor = c.human();
            let target = c.rng.pick(&world.accounts);
            let role = target.role_of(c.rng, RoleKind::Human);
            let session = (c
                .rng
                .pick_str(&["alice", "bob", "audit-session", "AWSCLI-Session"]))
            .to_string();
            (actor, target.id.as_str(), role, session)
        }
        2 => {
            let actor = c.user(false);
            let role = acct.role_of(c.rng, RoleKind::Human);
            (actor, acct.id.as_str(), role, "terraform".to_string())
        }
        _ => {
            let actor = c.role(RoleKind::Ci);
            let target = c.rng.pick(&world.accounts);
            let role = target.role_of(c.rng, RoleKind::Human);
            (
                actor,
                target.id.as_str(),
                role,
                "GitHubActions-deploy".to_string(),
            )
        }
    };
    let v = if c.rng.chance(0.8) {
        modern_version(c)
    } else {
        mgmt_version(c)
    };
    c.begin(r, "sts.amazonaws.com", "AssumeRole", v);
    c.identity(r, &actor);
    let global_endpoint = c.rng.chance(0.3);
    c.client(
        r,
        &actor,
        if global_endpoint {
            Some("sts.amazonaws.com")
        } else {
            None
        },
    );
    let role_arn = c.role_arn(target_acct, role.path, role.name);
    let cross = target_acct != acct.id;
    {
        let mut j = r.req.json();
        j.open();
        j.str("roleArn", &role_arn);
        j.str("roleSessionName", &session);
        if c.rng.chance(0.4) {
            j.int("durationSeconds", 3600);
        }
        if cross && c.rng.chance(0.5) {
            j.str("externalId", "HIDDEN_DUE_TO_SECURITY_REASONS");
        }
        j.close();
    }
    {
        let mut k = r.resp.json();
        k.open();
        c.credentials(&mut k, 3600);
        k.obj("assumedRoleUser");
        k.key("assumedRoleId");
        {
            let b = k.buf();
            b.push('"');
            b.push_str(&role.id);
            b.push(':');
            escape_into(b, &session);
            b.push('"');
        }
        k.done();
        cat(
            &mut k,
            "arn",
            &[
                "arn:aws:sts::",
                target_acct,
                ":assumed-role/",
                role.name,
                "/",
                &session,
            ],
        );
        k.close();
        if c.rng.chance(0.1) {
            k.int("packedPolicySize", c.rng.range(5, 40) as i64);
        }
        k.close();
    }
    {
        let mut j = r.resources.json();
        j.open_arr();
        j.open();
        j.str("accountId", target_acct);
        j.str("type", "AWS::IAM::Role");
        j.str("ARN", &role_arn);
        j.close();
        j.close_arr();
    }
    if cross || c.rng.chance(0.5) {
        let s = r.shared.start();
        c.rng.push_uuid(s);
    }
    if c.rng.chance(0.03) {
        let msg = c.denied(&actor, "sts:AssumeRole", Some(&role_arn));
        c.fail(r, "AccessDenied", Some(&msg));
    }
}

fn assume_role_saml(c: &mut Ctx<'_>, r: &mut Rec) {
    let acct = c.acct;
    let name = c.rng.pick(&acct.sso_users).1;
    let actor = Actor::Saml { name };
    let role = acct.role_of(c.rng, RoleKind::Sso);
    let v = modern_version(c);
    c.begin(r, "sts.amazonaws.com", "AssumeRoleWithSAML", v);
    c.identity(r, &actor);
    c.client(r, &actor, Some("sts.amazonaws.com"));
    let role_arn = c.role_arn(&acct.id, role.path, role.name);
    let provider = format!(
        "arn:aws:iam::{}:saml-provider/AWSSSO_{}_DO_NOT_DELETE",
        acct.id,
        c.chars(16, HEX)
    );
    {
        let mut j = r.req.json();
        j.open();
        let assertion = c.chars(32, b"abcdef0123456789");
        cat(&mut j, "sAMLAssertionID", &["_", &assertion]);
        j.str("roleSessionName", name);
        j.str("principalArn", &provider);
        j.str("roleArn", &role_arn);
        j.int("durationSeconds", 43_200);
        j.close();
    }
    {
        let mut k = r.resp.json();
        k.open();
        c.credentials(&mut k, 43_200);
        k.obj("assumedRoleUser");
        k.key("assumedRoleId");
        {
            let b = k.buf();
            b.push('"');
            b.push_str(&role.id);
            b.push(':');
            escape_into(b, name);
            b.push('"');
        }
        k.done();
        cat(
            &mut k,
            "arn",
            &[
                "arn:aws:sts::",
                &acct.id,
                ":assumed-role/",
                role.name,
                "/",
                name,
            ],
        );
        k.close();
        k.str("subject", name);
        k.str("subjectType", "persistent");
        let iss = c.chars(20, B64);
        cat(
            &mut k,
            "issuer",
            &[
                "https://portal.sso.",
                c.region,
                ".amazonaws.com/saml/assertion/",
                &iss,
            ],
        );
        k.str("audience", "https://signin.aws.amazon.com/saml");
        let nq = c.chars(27, B64);
        cat(&mut k, "nameQualifier", &[&nq, "="]);
        k.close();
    }
    c.resources(
        r,
        &[
            ("AWS::IAM::Role", &role_arn),
            ("AWS::IAM::SAMLProvider", &provider),
        ],
    );
    let s = r.shared.start();
    c.rng.push_uuid(s);
}

fn assume_role_web_identity(c: &mut Ctx<'_>, r: &mut Rec) {
    let acct = c.acct;
    let eks = c.rng.chance(0.6);
    let (provider, sub, role) = if eks {
        let provider = format!(
            "arn:aws:iam::{}:oidc-provider/oidc.eks.{}.amazonaws.com/id/{}",
            acct.id, c.region, acct.oidc_id
        );
        let sub = (c.rng.pick_str(&[
            "system:serviceaccount:karpenter:karpenter",
            "system:serviceaccount:kube-system:aws-load-balancer-controller",
        ]))
        .to_string();
        (provider, sub, acct.role_of(c.rng, RoleKind::Eks))
    } else {
        let provider = "token.actions.githubusercontent.com".to_string();
        let sub = (c.rng.pick_str(&[
            "repo:acme/orders-api:ref:refs/heads/main",
            "repo:acme/infra:environment:prod",
        ]))
        .to_string();
        (provider, sub, acct.role_of(c.rng, RoleKind::Ci))
    };
    let session = if eks {
        format!("botocore-session-1709{}", c.chars(6, b"0123456789"))
    } else {
        "GitHubActions".to_string()
    };
    let actor = Actor::WebId {
        provider: provider.clone(),
        sub: sub.clone(),
    };
    let v = modern_version(c);
    c.begin(r, "sts.amazonaws.com", "AssumeRoleWithWebIdentity", v);
    c.identity(r, &actor);
    c.aws_ip(r);
    r.ua.set(if eks {
        "aws-sdk-go/1.50.10 (go1.21.6; linux; amd64) karpenter.sh-v0.35.0"
    } else {
        "aws-sdk-nodejs/2.1550.0 linux/v20.11.1 configure-aws-credentials-for-github-actions promise"
    });
    c.tls(r, None);
    let role_arn = c.role_arn(&acct.id, role.path, role.name);
    {
        let mut j = r.req.json();
        j.open();
        j.str("roleArn", &role_arn);
        j.str("roleSessionName", &session);
        if !eks {
            j.int("durationSeconds", 3600);
        }
        j.close();
    }
    {
        let mut k = r.resp.json();
        k.open();
        c.credentials(&mut k, 3600);
        k.str("subjectFromWebIdentityToken", &sub);
        k.obj("assumedRoleUser");
        k.key("assumedRoleId");
        {
            let b = k.buf();
            b.push('"');
            b.push_str(&role.id);
            b.push(':');
            escape_into(b, &session);
            b.push('"');
        }
        k.done();
        cat(
            &mut k,
            "arn",
            &[
                "arn:aws:sts::",
                &acct.id,
                ":assumed-role/",
                role.name,
                "/",
                &session,
            ],
        );
        k.close();
        k.str("provider", &provider);
        k.str("audience", "sts.amazonaws.com");
        k.close();
    }
    r.aed
        .json()
        .val_raw("{\"identityProviderConnectionVerificationMethod\":\"IAMTrustStore\"}");
    c.resource(r, "AWS::IAM::Role", &role_arn);
    let s = r.shared.start();
    c.rng.push_uuid(s);
}

/// `LoginTo` URLs of console sign-ins.
const LOGIN_TO: &[&str] = &[
    "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_us-east-1_c63e1a5c1c9b4e3f",
    "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1#",
    "https://console.aws.amazon.com/ec2/v2/home?region=eu-west-1&state=hashArgs%23Instances%3A&isauthcode=true",
];

fn console_login(c: &mut Ctx<'_>, r: &mut Rec) {
    let acct = c.acct;
    let kind = c.rng.weighted(&[50, 15, 35]);
    let v = if c.rng.chance(0.85) {
        modern_version(c)
    } else {
        [5, 6, 7][c.rng.index(3)]
    };
    c.begin(r, "signin.amazonaws.com", "ConsoleLogin", v);
    r.event_type = "AwsConsoleSignIn";
    r.request_id.clear();
    r.read_only = Some(false);
    let mut mfa = c.rng.chance(0.6);
    {
        let ui = &mut r.ui;
        ui.clear();
        let mut j = Json::new(ui);
        j.open();
        match kind {
            0 => {
                let user = c.rng.pick(&acct.users);
                j.str("type", "IAMUser");
                j.str("principalId", &user.id);
                cat(
                    &mut j,
                    "arn",
                    &["arn:aws:iam::", &acct.id, ":user/", user.name],
                );
                j.str("accountId", &acct.id);
                if c.rng.chance(0.5) {
                    j.str("accessKeyId", "");
                }
                j.str("userName", user.name);
            }
            1 => {
                j.str("type", "Root");
                j.str("principalId", &acct.id);
                cat(&mut j, "arn", &["arn:aws:iam::", &acct.id, ":root"]);
                j.str("accountId", &acct.id);
                j.str("accessKeyId", "");
                mfa = true;
            }
            _ => {
                let role = acct.role_of(c.rng, RoleKind::Sso);
                let email = c.rng.pick(&acct.sso_users).1;
                j.str("type", "AssumedRole");
                j.key("principalId");
                {
                    let b = j.buf();
                    b.push('"');
                    b.push_str(&role.id);
                    b.push(':');
                    escape_into(b, email);
                    b.push('"');
                }
                j.done();
                cat(
                    &mut j,
                    "arn",
                    &[
                        "arn:aws:sts::",
                        &acct.id,
                        ":assumed-role/",
                        role.name,
                        "/",
                        email,
                    ],
                );
                j.str("accountId", &acct.id);
                j.str("accessKeyId", "");
                j.obj("sessionContext");
                j.obj("sessionIssuer");
                j.str("type", "Role");
                j.str("principalId", &role.id);
                cat(
                    &mut j,
                    "arn",
                    &["arn:aws:iam::", &acct.id, ":role", role.path, role.name],
                );
                j.str("accountId", &acct.id);
                j.str("userName", role.name);
                j.close();
                j.obj("webIdFederationData");
                j.close();
                j.obj("attributes");
                j.str("creationDate", &event_time(c.time));
                j.str("mfaAuthenticated", "false");
                j.close();
                j.close();
                mfa = false;
            }
        }
        j.close();
    }
    c.public_ip(r);
    r.ua.set(c.rng.pick_str(BROWSERS));
    r.req.null();
    r.resp.json().val_raw("{\"ConsoleLogin\":\"Success\"}");
    let login_to = c.rng.pick_str(LOGIN_TO);
    let mut j = r.aed.json();
    j.open();
    if kind != 2 {
        j.str("LoginTo", login_to);
    }
    j.str("MobileVersion", "No");
    j.str("MFAUsed", if mfa { "Yes" } else { "No" });
    if mfa {
        let dev = c.rng.chars(26, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        if kind == 1 {
            cat(
                &mut j,
                "MFAIdentifier",
                &["arn:aws:iam::", &acct.id, ":mfa/root-account-mfa-device"],
            );
        } else {
            cat(
                &mut j,
                "MFAIdentifier",
                &["arn:aws:iam::", &acct.id, ":u2f/user/alice/default-", &dev],
            );
        }
    }
    if kind == 2 {
        cat(
            &mut j,
            "SamlProviderArn",
            &[
                "arn:aws:iam::",
                &acct.id,
                ":saml-provider/AWSSSO_0123456789abcdef_DO_NOT_DELETE",
            ],
        );
    }
    j.close();
}

fn console_login_failure(c: &mut Ctx<'_>, r: &mut Rec) {
    let acct = c.acct;
    let v = modern_version(c);
    c.begin(r, "signin.amazonaws.com", "ConsoleLogin", v);
    r.event_type = "AwsConsoleSignIn";
    r.request_id.clear();
    r.read_only = Some(false);
    let known = c.rng.chance(0.4);
    {
        let ui = &mut r.ui;
        ui.clear();
        let mut j = Json::new(ui);
        j.open();
        j.str("type", "IAMUser");
        if known {
            let user = c.rng.pick(&acct.users);
            j.str("principalId", &user.id);
            j.str("accountId", &acct.id);
            j.str("accessKeyId", "");
            j.str("userName", user.name);
        } else {
            j.str("accountId", &acct.id);
            j.str("accessKeyId", "");
            j.str("userName", "HIDDEN_DUE_TO_SECURITY_REASONS");
        }
        j.close();
    }
    c.public_ip(r);
    r.ua.set(c.rng.pick_str(BROWSERS));
    r.error_message.set("Failed authentication");
    r.req.null();
    r.resp.json().val_raw("{\"ConsoleLogin\":\"Failure\"}");
    let login_to = c.rng.pick_str(LOGIN_TO);
    let mut j = r.aed.json();
    j.open();
    j.str("LoginTo", login_to);
    j.str("MobileVersion", "No");
    j.str("MFAUsed", "No");
    j.close();
}

fn check_mfa(c: &mut Ctx<'_>, r: &mut Rec) {
    let acct = c.acct;
    let v = modern_version(c);
    c.begin(r, "signin.amazonaws.com", "CheckMfa", v);
    r.event_type = "AwsConsoleSignIn";
    r.request_id.clear();
    r.read_only = Some(false);
    let user = c.rng.pick(&acct.users);
    {
        let ui = &mut r.ui;
        ui.clear();
        let mut j = Json::new(ui);
        j.open();
        j.str("type", "IAMUser");
        j.str("principalId", &user.id);
        cat(
            &mut j,
            "arn",
            &["arn:aws:iam::", &acct.id, ":user/", user.name],
        );
        j.str("accountId", &acct.id);
        j.str("accessKeyId", "");
        j.str("userName", user.name);
        j.close();
    }
    c.public_ip(r);
    r.ua.set(c.rng.pick_str(BROWSERS));
    r.req.null();
    r.resp.json().val_raw("{\"CheckMfa\":\"Success\"}");
    let mfa_type = c.rng.pick_str(&["Virtual MFA", "U2F MFA"]);
    let mut j = r.aed.json();
    j.open();
    j.str("MfaType", mfa_type);
    j.close();
}

fn idc_signin(c: &mut Ctx<'_>, r: &mut Rec) {
    let acct = c.acct;
    let (user_id, name) = c.rng.pick(&acct.sso_users);
    let actor = if c.rng.chance(0.6) {
        Actor::IdentityCenter { user_id }
    } else {
        Actor::Unknown { name }
    };
    let ev = [
        "CredentialChallenge",
        "UserAuthentication",
        "CredentialVerification",
    ][c.rng.index(3)];
    let v = [9, 10, 11][c.rng.index(3)];
    c.begin(r, "signin.amazonaws.com", ev, v);
    r.event_type = "AwsServiceEvent";
    r.request_id.clear();
    r.read_only = Some(false);
    c.identity(r, &actor);
    c.public_ip(r);
    r.ua.set(c.rng.pick_str(BROWSERS));
    r.req.null();
    r.resp.null();
    let ok = c.rng.chance(0.92);
    let wf = c.uuid();
    let cred = c.rng.pick_str(&["PASSWORD", "TOTP", "WEBAUTHN"]);
    {
        let mut j = r.aed.json();
        j.open();
        j.str("AuthWorkflowID", &wf);
        if ev == "UserAuthentication" {
            cat(
                &mut j,
                "LoginTo",
                &["https://", &acct.identity_store, ".awsapps.com/start/"],
            );
        }
        j.str("CredentialType", cred);
        j.close();
    }
    let mut j = r.service_details.json();
    j.open();
    j.str(ev, if ok { "Success" } else { "Failure" });
    j.close();
    if !ok {
        r.error_message.set("Failed authentication");
    }
}

fn external_idp_login(c: &mut Ctx<'_>, r: &mut Rec) {
    let acct = c.acct;
    let name = c.rng.pick(&acct.sso_users).1;
    let actor = Actor::Unknown { name };
    let v = [9, 10, 11][c.rng.index(3)];
    c.begin(r, "signin.amazonaws.com", "ExternalIdPDirectoryLogin", v);
    r.event_type = "AwsServiceEvent";
    r.request_id.clear();
    r.read_only = Some(false);
    c.identity(r, &actor);
    c.public_ip(r);
    r.ua.set(c.rng.pick_str(BROWSERS));
    r.req.null();
    r.resp.null();
    let wf = c.uuid();
    {
        let mut j = r.aed.json();
        j.open();
        j.str("AuthWorkflowID", &wf);
        cat(
            &mut j,
            "LoginTo",
            &["https://", &acct.identity_store, ".awsapps.com/start/"],
        );
        j.close();
    }
    r.service_details
        .json()
        .val_raw("{\"ExternalIdPDirectoryLogin\":\"Success\"}");
}

// ----- Account Change ----------------------------------------------------------------

const NEW_USERS: &[&str] = &[
    "test_user2",
    "svc-reporting",
    "o'brien",
    "zoë",
    "ci+deploy@example.com",
];
const NEW_ROLES: &[&str] = &[
    "orders-api-exec",
    "DataLakeReader",
    "break-glass",
    "eks-pod-identity-ébène",
];
const POLICIES: &[&str] = &[
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/ReadOnlyAccess",
    "arn:aws:iam::aws:policy/AmazonS3FullAccess",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
];

const TRUST_POLICY: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\n      \"Effect\": \"Allow\",\n      \"Principal\": {\"Service\": \"lambda.amazonaws.com\"},\n      \"Action\": \"sts:AssumeRole\"\n    }\n  ]\n}";
const TRUST_POLICY_ENCODED: &str = "%7B%0A%20%20%22Version%22%3A%20%222012-10-17%22%2C%0A%20%20%22Statement%22%3A%20%5B%0A%20%20%20%20%7B%0A%20%20%20%20%20%20%22Effect%22%3A%20%22Allow%22%2C%0A%20%20%20%20%20%20%22Principal%22%3A%20%7B%22Service%22%3A%20%22lambda.amazonaws.com%22%7D%2C%0A%20%20%20%20%20%20%22Action%22%3A%20%22sts%3AAssumeRole%22%0A%20%20%20%20%7D%0A%20%20%5D%0A%7D";

fn iam_change(c: &mut Ctx<'_>, r: &mut Rec) {
    const NAMES: &[&str] = &[
        "CreateUser",
        "CreateRole",
        "DeleteRole",
        "AttachRolePolicy",
        "AttachUserPolicy",
        "DetachRolePolicy",
        "CreateAccessKey",
        "DeleteUser",
        "UpdateLoginProfile",
        "TagRole",
        "PutRolePolicy",
        "CreateLoginProfile",
        "AddUserToGroup",
        "EnableMFADevice",
        "CreateServiceLinkedRole",
        "UpdateAssumeRolePolicy",
        "DeleteAccessKey",
    ];
    let name = c.rng.pick_str(NAMES);
    let acct = c.acct;
    let actor = if name == "CreateServiceLinkedRole" {
        let mut a = c.role(RoleKind::Human);
        if let Actor::Role {
            invoked_by,
            console,
            ..
        } = &mut a
        {
            *invoked_by = Some("autoscaling.amazonaws.com");
            *console = false;
        }
        a
    } else {
        match c.rng.weighted(&[50, 30, 15, 5]) {
            0 => {
                let kind = if c.rng.chance(0.6) {
                    RoleKind::Sso
                } else {
                    RoleKind::Human
                };
                c.role(kind)
            }
            1 => c.role(RoleKind::Ci),
            2 => c.user(false),
            _ => Actor::Root { console: true },
        }
    };
    let v = mgmt_version(c);
    c.begin(r, "iam.amazonaws.com", name, v);
    r.read_only = Some(false);
    c.identity(r, &actor);
    c.client(r, &actor, None);
    let user = c.rng.pick_str(NEW_USERS);
    let role = c.rng.pick_str(NEW_ROLES);
    let policy = c.rng.pick_str(POLICIES);
    let narrow = c.rng.chance(0.3);
    let created = java_date(c.time, false, narrow);
    let id = &acct.id;
    let mut req = r.req.json();
    req.open();
    let mut resp_null = true;
    let mut resp = r.resp.json();
    resp.open();
    match name {
        "CreateUser" => {
            req.str("userName", user);
            if c.rng.chance(0.3) {
                req.arr("tags");
                req.open();
                req.str("key", "owner");
                req.str("value", "zoë 🚀 \"platform\"");
                req.close();
                req.close_arr();
            }
            let uid = c.chars(17, UPPER_B32);
            resp.obj("user");
            resp.str("path", "/");
            resp.str("userName", user);
            cat(&mut resp, "userId", &["AIDA", &uid]);
            cat(&mut resp, "arn", &["arn:aws:iam::", id, ":user/", user]);
            resp.str("createDate", &created);
            resp.close();
            resp_null = false;
        }
        "CreateRole" => {
            req.str("roleName", role);
            req.str("description", "Allows Lambda functions to call AWS services.\n\t(managed by \"terraform\" \\ infra)");
            req.str("assumeRolePolicyDocument", TRUST_POLICY);
            req.int("maxSessionDuration", 3600);
            let rid = c.chars(17, UPPER_B32);
            resp.obj("role");
            resp.str("assumeRolePolicyDocument", TRUST_POLICY_ENCODED);
            cat(&mut resp, "arn", &["arn:aws:iam::", id, ":role/", role]);
            cat(&mut resp, "roleId", &["AROA", &rid]);
            resp.str("createDate", &created);
            resp.str("roleName", role);
            resp.str("path", "/");
            resp.close();
            resp_null = false;
        }
        "CreateServiceLinkedRole" => {
            req.str("aWSServiceName", "autoscaling.amazonaws.com");
            let rid = c.chars(17, UPPER_B32);
            resp.obj("role");
            resp.str("path", "/aws-service-role/autoscaling.amazonaws.com/");
            resp.str("roleName", "AWSServiceRoleForAutoScaling");
            cat(&mut resp, "roleId", &["AROA", &rid]);
            cat(
                &mut resp,
                "arn",
                &[
                    "arn:aws:iam::",
                    id,
                    ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
                ],
            );
            resp.str("createDate", &created);
            resp.close();
            resp_null = false;
        }
        "DeleteRole" => req.str("roleName", role),
        "AttachRolePolicy" | "DetachRolePolicy" => {
            req.str("roleName", role);
            req.str("policyArn", policy);
        }
        "AttachUserPolicy" => {
            req.str("userName", user);
            req.str("policyArn", policy);
        }
        "CreateAccessKey" => {
            req.str("userName", user);
            let key = c.chars(16, UPPER_B32);
            resp.obj("accessKey");
            resp.str("userName", user);
            cat(&mut resp, "accessKeyId", &["AKIA", &key]);
            resp.str("status", "Active");
            resp.str("createDate", &created);
            resp.close();
            resp_null = false;
        }
        "DeleteAccessKey" => {
            req.str("userName", user);
            let key = c.chars(16, UPPER_B32);
            cat(&mut req, "accessKeyId", &["AKIA", &key]);
        }
        "DeleteUser" => req.str("userName", user),
        "UpdateLoginProfile" => {
            req.str("userName", user);
            req.bool("passwordResetRequired", true);
        }
        "CreateLoginProfile" => {
            req.str("userName", user);
            req.bool("passwordResetRequired", true);
            resp.obj("loginProfile");
            resp.str("userName", user);
            resp.str("createDate", &created);
            resp.bool("passwordResetRequired", true);
            resp.close();
            resp_null = false;
        }
        "TagRole" => {
            req.str("roleName", role);
            req.arr("tags");
            req.open();
            req.str("key", "owner");
            req.str("value", "zoë 🚀");
            req.close();
            req.open();
            req.str("key", "cost-center");
            req.str("value", "\"42\"\u{7}");
            req.close();
            req.close_arr();
        }
        "PutRolePolicy" | "UpdateAssumeRolePolicy" => {
            req.str("roleName", role);
            if name == "PutRolePolicy" {
                req.str("policyName", "inline-s3-read");
                req.str(
                    "policyDocument",
                    "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"s3:GetObject\"],\"Resource\":\"arn:aws:s3:::acme-prod-assets/*\"}]}",
                );
            } else {
                req.str("policyDocument", TRUST_POLICY);
            }
        }
        "AddUserToGroup" => {
            req.str("groupName", "Developers");
            req.str("userName", user);
        }
        _ => {
            req.str("userName", user);
            cat(
                &mut req,
                "serialNumber",
                &["arn:aws:iam::", id, ":mfa/", user],
            );
            req.str("authenticationCode1", "HIDDEN_DUE_TO_SECURITY_REASONS");
            req.str("authenticationCode2", "HIDDEN_DUE_TO_SECURITY_REASONS");
        }
    }
    req.close();
    resp.close();
    if resp_null {
        r.resp.null();
    }
    let roll = c.rng.below(100);
    if roll < 3 {
        c.fail(
            r,
            "NoSuchEntity",
            Some(&format!("The user with name {user} cannot be found.")),
        );
    } else if roll < 5 && name == "CreateRole" {
        c.fail(
            r,
            "EntityAlreadyExists",
            Some(&format!("Role with name {role} already exists.")),
        );
    } else if roll < 8 {
        let msg = c.denied(
            &actor,
            &format!("iam:{name}"),
            Some(&format!("arn:aws:iam::{id}:user/{user}")),
        );
        c.fail(r, "AccessDenied", Some(&msg));
    }
}

// ----- data events ---------------------------------------------------------------------

const ODD_KEYS: &[&str] = &[
    "reports/Q1 résumé \"final\".pdf",
    "exports/data+set=1/part-00000.parquet",
    "C:\\backup\\db.bak",
    "uploads/日本語/ファイル.txt",
    "tmp/a%20b/c d.json",
    "🚀/launch.md",
    "logs/tab\there.log",
];

fn object_key(c: &mut Ctx<'_>) -> String {
    if c.rng.chance(0.15) {
        return (c.rng.pick_str(ODD_KEYS)).to_string();
    }
    let mut k = String::with_capacity(64);
    k.push_str(c.rng.pick_str(&[
        "logs/app/",
        "images/original/",
        "exports/orders/",
        "AWSLogs/",
        "static/js/",
    ]));
    let (y, m, d) = crate::time::civil_from_days(c.time.div_euclid(86_400));
    k.push_str(&format!("{y}/{m:02}/{d:02}/"));
    c.rng
        .push_chars(&mut k, 12, b"abcdefghijklmnopqrstuvwxyz0123456789");
    k.push_str(
        c.rng
            .pick_str(&[".json.gz", ".jpg", ".parquet", ".js", ".csv"]),
    );
    k
}

fn s3_object_body(c: &mut Ctx<'_>, r: &mut Rec, legacy: bool) {
    // Old records are only recognisable as data events by their object resource,
    // so the legacy form never uses the bucket-level ListObjects.
    let list_weight = if legacy { 0 } else { 8 };
    let name = [
        "GetObject",
        "PutObject",
        "HeadObject",
        "ListObjects",
        "DeleteObject",
    ][c.rng.weighted(&[50, 25, 12, list_weight, 5])];
    let acct = c.acct;
    let bucket = c.rng.pick_str(&acct.buckets);
    let actor = match c.rng.weighted(&[35, 20, 15, 10, 3, 12, 5]) {
        0 => c.role(RoleKind::Ec2),
        1 => c.role(RoleKind::Lambda),
        2 => Actor::Service(c.rng.pick_str(&[
            "cloudtrail.amazonaws.com",
            "config.amazonaws.com",
            "logging.s3.amazonaws.com",
        ])),
        3 => c.human(),
        4 if name == "GetObject" => Actor::Anonymous,
        5 => c.user(false),
        _ => {
            let ext = c.rng.pick_str(&c.world.external_accounts);
            let mut p = String::from("AROA");
            c.rng.push_chars(&mut p, 17, UPPER_B32);
            p.push_str(":replication");
            Actor::External {
                account: ext,
                principal: p,
            }
        }
    };
    let v = if legacy {
        5
    } else {
        [8, 9, 10, 11][c.rng.weighted(&[30, 25, 25, 20])]
    };
    c.begin(r, "s3.amazonaws.com", name, v);
    r.category = Category::Data;
    r.read_only = Some(matches!(name, "GetObject" | "HeadObject" | "ListObjects"));
    c.s3_request_id(r);
    c.identity(r, &actor);
    let host = s3_host(bucket, c.region);
    c.client(r, &actor, Some(&host));
    let key = object_key(c);
    {
        let mut j = r.req.json();
        j.open();
        if name == "ListObjects" {
            j.str("list-type", "2");
            j.str("bucketName", bucket);
            j.str("encoding-type", "url");
            j.str("max-keys", "1000");
            j.str("prefix", "logs/app/");
            j.str("delimiter", "/");
            j.str("Host", &host);
        } else {
            j.str("bucketName", bucket);
            j.str("Host", &host);
            j.str("key", &key);
            if name == "PutObject" && c.rng.chance(0.5) {
                j.str("x-amz-acl", "bucket-owner-full-control");
            }
        }
        j.close();
    }
    let size = c.rng.range(0, 5 << 20) as i64;
    if name == "PutObject" {
        let mut j = r.resp.json();
        j.open();
        j.str("x-amz-server-side-encryption", "AES256");
        if c.rng.chance(0.4) {
            let ver = c.chars(
                32,
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._",
            );
            j.str("x-amz-version-id", &ver);
        }
        j.close();
    } else {
        r.resp.null();
    }
    let (bin, bout) = match name {
        "PutObject" => (size, 0),
        "GetObject" => (0, size),
        "ListObjects" => (0, c.rng.range(300, 90_000) as i64),
        _ => (0, 0),
    };
    s3_aed(c, r, bin, bout, name != "ListObjects");
    {
        let mut j = r.resources.json();
        j.open_arr();
        if name != "ListObjects" {
            j.open();
            j.str("type", "AWS::S3::Object");
            cat(&mut j, "ARN", &["arn:aws:s3:::", bucket, "/", &key]);
            j.close();
        }
        j.open();
        j.str("accountId", &acct.id);
        j.str("type", "AWS::S3::Bucket");
        cat(&mut j, "ARN", &["arn:aws:s3:::", bucket]);
        j.close();
        j.close_arr();
    }
    if matches!(actor, Actor::External { .. } | Actor::Service(_)) || c.rng.chance(0.1) {
        let s = r.shared.start();
        c.rng.push_uuid(s);
    }
    if !legacy && !r.vpce.on && c.rng.chance(0.1) {
        let ve = r.vpce.start();
        ve.push_str("vpce-");
        c.rng.push_chars(ve, 17, HEX);
        r.vpce_account.set(&acct.id);
    }
    let roll = c.rng.below(100);
    if roll < 3 {
        c.fail(r, "AccessDenied", Some("Access Denied"));
    } else if roll < 5 && name == "GetObject" {
        c.fail(r, "NoSuchKey", Some("The specified key does not exist."));
    }
}

fn s3_object(c: &mut Ctx<'_>, r: &mut Rec) {
    s3_object_body(c, r, false);
}

/// An S3 object event as trails wrote them at eventVersion 1.05: no
/// `eventCategory`, no `managementEvent`, no `tlsDetails`.
fn s3_object_legacy(c: &mut Ctx<'_>, r: &mut Rec) {
    s3_object_body(c, r, true);
}

fn lambda_invoke(c: &mut Ctx<'_>, r: &mut Rec) {
    let acct = c.acct;
    let func = c.rng.pick_str(&acct.functions);
    let actor = match c.rng.weighted(&[50, 30, 20]) {
        0 => Actor::Service(c.rng.pick_str(&[
            "apigateway.amazonaws.com",
            "events.amazonaws.com",
            "s3.amazonaws.com",
            "sqs.amazonaws.com",
        ])),
        1 => c.role(RoleKind::Lambda),
        _ => c.caller(),
    };
    let v = modern_version(c);
    c.begin(r, "lambda.amazonaws.com", "Invoke", v);
    r.category = Category::Data;
    r.read_only = Some(false);
    c.identity(r, &actor);
    c.client(r, &actor, None);
    let fn_arn = c.arn("lambda", &format!("function:{func}"));
    {
        let mut j = r.req.json();
        j.open();
        j.str("functionName", &fn_arn);
        match &actor {
            Actor::Service("s3.amazonaws.com") => {
                cat(
                    &mut j,
                    "sourceArn",
                    &["arn:aws:s3:::", c.rng.pick_str(&acct.buckets)],
                );
            }
            Actor::Service(_) => {
                j.str("invocationType", "Event");
            }
            _ => {
                j.str("invocationType", "RequestResponse");
                j.str("logType", "None");
                j.str("qualifier", "$LATEST");
            }
        }
        j.close();
    }
    r.resp.null();
    {
        let mut j = r.aed.json();
        j.open();
        cat(&mut j, "functionVersion", &[&fn_arn, ":$LATEST"]);
        j.close();
    }
    c.resource(r, "AWS::Lambda::Function", &fn_arn);
    if c.rng.chance(0.02) {
        c.fail(r, "TooManyRequestsException", Some("Rate Exceeded."));
    }
}

fn dynamodb_data(c: &mut Ctx<'_>, r: &mut Rec) {
    let acct = c.acct;
    let table = c.rng.pick_str(&acct.tables);
    let name = ["GetItem", "PutItem", "Query", "UpdateItem"][c.rng.weighted(&[50, 20, 20, 10])];
    let actor = if c.rng.chance(0.7) {
        c.role(RoleKind::Lambda)
    } else {
        c.automation()
    };
    let v = modern_version(c);
    c.begin(r, "dynamodb.amazonaws.com", name, v);
    r.category = Category::Data;
    r.read_only = Some(matches!(name, "GetItem" | "Query"));
    c.identity(r, &actor);
    c.client(r, &actor, None);
    {
        let mut j = r.req.json();
        j.open();
        j.str("tableName", table);
        match name {
            "Query" => {
                j.str(
                    "keyConditionExpression",
                    "pk = :pk AND begins_with(sk, :prefix)",
                );
                j.bool("consistentRead", false);
            }
            _ => {
                j.obj("key");
                j.str("pk", "HIDDEN_DUE_TO_SECURITY_REASONS");
                j.str("sk", "HIDDEN_DUE_TO_SECURITY_REASONS");
                j.close();
                if name == "GetItem" {
                    j.bool("consistentRead", c.rng.chance(0.3));
                    j.str("projectionExpression", "#s, total, \"createdAt\"");
                }
            }
        }
        j.close();
    }
    r.resp.null();
    let arn = c.arn("dynamodb", &format!("table/{table}"));
    c.resource(r, "AWS::DynamoDB::Table", &arn);
    if c.rng.chance(0.02) {
        c.fail(
            r,
            "ProvisionedThroughputExceededException",
            Some("The level of configured provisioned throughput for the table was exceeded."),
        );
    }
}

fn network_activity(c: &mut Ctx<'_>, r: &mut Rec) {
    let (source, name) = [
        ("kms.amazonaws.com", "ListKeys"),
        ("ec2.amazonaws.com", "DescribeInstances"),
        ("secretsmanager.amazonaws.com", "GetSecretValue"),
        ("cloudtrail.amazonaws.com", "LookupEvents"),
    ][c.rng.index(4)];
    let acct = c.acct;
    let actor = if c.rng.chance(0.5) {
        let ext = c.rng.pick_str(&c.world.external_accounts);
        let mut p = String::from("AIDA");
        c.rng.push_chars(&mut p, 17, UPPER_B32);
        Actor::External {
            account: ext,
            principal: p,
        }
    } else {
        c.role(RoleKind::Ec2)
    };
    let v = [10, 11][c.rng.index(2)];
    c.begin(r, source, name, v);
    r.category = Category::NetworkActivity;
    r.event_type = "AwsVpceEvent";
    c.identity(r, &actor);
    c.private_ip(r);
    r.ua.set(c.rng.pick_str(&[
        "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023",
        "Boto3/1.34.54 md/Botocore#1.34.54 ua/2.0 os/linux",
    ]));
    r.req.null();
    r.resp.null();
    let s = r.shared.start();
    c.rng.push_uuid(s);
    let ve = r.vpce.start();
    ve.push_str("vpce-");
    c.rng.push_chars(ve, 17, HEX);
    r.vpce_account.set(&acct.id);
    if c.rng.chance(0.7) {
        r.error_code = Some("VpceAccessDenied");
        r.error_message
            .set("The request was denied due to a VPC endpoint policy");
    }
}
