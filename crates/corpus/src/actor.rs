//! Who made a call (`userIdentity`) and from where (`sourceIPAddress`,
//! `userAgent`, `tlsDetails`), with the shapes each identity type has in real
//! trails.

use crate::json::{Json, push_int};
use crate::record::Rec;
use crate::rng::{B64, HEX, Rng, UPPER_B32, mix};
use crate::time::push_event_time;
use crate::world::{Account, Role, RoleKind, User, World};

/// The principal behind a record.
pub(crate) enum Actor<'w> {
    /// An IAM user with a long-term key, or signed in to the console.
    User { user: &'w User, console: bool },
    /// A role session.
    Role {
        role: &'w Role,
        session: String,
        console: bool,
        /// A service acting with the session (`userIdentity.invokedBy`).
        invoked_by: Option<&'static str>,
    },
    /// The account root user.
    Root { console: bool },
    /// An AWS service (`{"type":"AWSService","invokedBy":…}`).
    Service(&'static str),
    /// A service event's identity: `accountId` + `invokedBy`, no `type`.
    ServiceAccount(&'static str),
    /// A federation-token session of an IAM user.
    Federated { user: &'w User, name: &'static str },
    /// A SAML identity calling AssumeRoleWithSAML.
    Saml { name: &'static str },
    /// An OIDC identity calling AssumeRoleWithWebIdentity.
    WebId { provider: String, sub: String },
    /// A principal of another account (`type` AWSAccount).
    External { account: &'w str, principal: String },
    /// An unauthenticated S3 request.
    Anonymous,
    /// An IAM Identity Center user.
    IdentityCenter { user_id: &'w str },
    /// `type` Unknown, as sign-in events for directory users have it.
    Unknown { name: &'static str },
}

/// Everything a template needs to build one record.
pub(crate) struct Ctx<'a> {
    pub rng: &'a mut Rng,
    pub world: &'a World,
    pub acct: &'a Account,
    pub region: &'a str,
    /// `eventTime`, epoch seconds.
    pub time: i64,
}

const HUMAN_SESSIONS: &[&str] = &[
    "alice",
    "bob",
    "carol.jones",
    "botocore-session-1709971234",
    "terraform-20240309101112345600000001",
    "mallory",
];

pub(crate) const BROWSERS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.80",
];

const CLI: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.164.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/ec2.describe-instances",
    "aws-cli/2.13.25 Python/3.11.5 Darwin/23.2.0 exe/x86_64 prompt/off command/s3api.get-bucket-policy",
    "aws-cli/1.32.60 md/Botocore#1.34.60 ua/2.0 os/windows#10 md/arch#amd64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy botocore/1.34.60",
];

const SDK: &[&str] = &[
    "Boto3/1.34.54 md/Botocore#1.34.54 ua/2.0 os/linux#5.10.210-201.852.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.54",
    "aws-sdk-go-v2/1.25.2 os/linux lang/go#1.22.0 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.149.1",
    "aws-sdk-java/2.25.6 Linux/5.10.209-198.858.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
    "aws-sdk-js/3.529.1 ua/2.0 os/linux#5.10.210 lang/js md/nodejs#20.11.1 api/s3#3.529.1",
    "aws-sdk-go/1.50.38 (go1.21.8; linux; amd64)",
    "[aws-sdk-java/1.12.671 Linux/5.10.210-201.852.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/11.0.22+7-LTS java/11.0.22 vendor/Amazon.com_Inc. cfg/retry-mode/standard]",
];

const LAMBDA_UA: &[&str] = &[
    "Boto3/1.34.42 md/Botocore#1.34.42 ua/2.0 os/linux#5.10.209-220.815.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.42",
    "aws-sdk-nodejs/2.1550.0 linux/v18.19.0 exec-env/AWS_Lambda_nodejs18.x promise",
    "aws-sdk-js/3.496.0 ua/2.0 os/linux#5.10.209 lang/js md/nodejs#20.11.0 exec-env/AWS_Lambda_nodejs20.x api/dynamodb#3.496.0",
];

const EKS_UA: &[&str] = &[
    "aws-sdk-go/1.50.10 (go1.21.6; linux; amd64) karpenter.sh-v0.35.0",
    "aws-sdk-go-v2/1.24.1 os/linux lang/go#1.21.6 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.141.0 ft/ddb-hll exec-env/eks",
];

const TERRAFORM: &str = "APN/1.0 HashiCorp/1.0 Terraform/1.7.4 (+https://www.terraform.io) terraform-provider-aws/5.40.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.2 os/linux lang/go#1.21.8 md/GOOS#linux md/GOARCH#amd64 api/iam#1.31.1";

const CONSOLE_JAVA: &str = "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488 Linux/5.10.219-186.866.amzn2int.x86_64 OpenJDK_64-Bit_Server_VM/25.372-b08 java/1.8.0_372 vendor/Oracle_Corporation cfg/retry-mode/standard]";

/// User agents that need escaping (quotes, backslashes, control characters) or
/// carry non-ASCII text.
const ODD_UA: &[&str] = &[
    "Mozilla/5.0 \"quoted\" (X11; Linux x86_64) C:\\Program Files\\Agent\\agent.exe",
    "python-requests/2.31.0 ünïcødé/✓ 日本語 🚀",
    "custom-agent/1.0\ttab\u{1}ctl",
];

/// Pre-escaped JSON string content: `\u` escapes (with a surrogate pair) and `\/`.
const ESCAPED_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) \\u00e9l\\u00e8ve/1.0 \\ud83d\\ude80 https:\\/\\/example.com\\/agent";

impl<'a> Ctx<'a> {
    // ----- identities -------------------------------------------------------------

    /// A session of a role of `kind` in this account.
    pub(crate) fn role(&mut self, kind: RoleKind) -> Actor<'a> {
        let acct: &'a Account = self.acct;
        let role = acct.role_of(self.rng, kind);
        let session = match kind {
            RoleKind::Human => (self.rng.pick_str(HUMAN_SESSIONS)).to_string(),
            RoleKind::Sso => self.rng.pick(&acct.sso_users).1.to_string(),
            RoleKind::Ec2 => self.rng.pick_str(&acct.instances).to_string(),
            RoleKind::Lambda => (self.rng.pick_str(&acct.functions)).to_string(),
            RoleKind::Eks => {
                let mut s = String::from("aws-go-sdk-1709971");
                self.rng.push_chars(&mut s, 3, b"0123456789");
                s
            }
            RoleKind::Ci => {
                if self.rng.chance(0.6) {
                    "GitHubActions".to_string()
                } else {
                    let mut s = String::from("github-actions-run-82801");
                    self.rng.push_chars(&mut s, 3, b"0123456789");
                    s
                }
            }
            RoleKind::ServiceLinked => {
                if role.name.ends_with("AutoScaling") {
                    "AutoScaling".to_string()
                } else {
                    "AWSConfig-Describe".to_string()
                }
            }
        };
        let invoked_by = match kind {
            RoleKind::ServiceLinked if role.name.ends_with("AutoScaling") => {
                Some("autoscaling.amazonaws.com")
            }
            RoleKind::ServiceLinked => Some("config.amazonaws.com"),
            _ => None,
        };
        let console = matches!(kind, RoleKind::Human | RoleKind::Sso) && self.rng.chance(0.45);
        Actor::Role {
            role,
            session,
            console,
            invoked_by,
        }
    }

    /// An IAM user.
    pub(crate) fn user(&mut self, console: bool) -> Actor<'a> {
        let acct: &'a Account = self.acct;
        Actor::User {
            user: self.rng.pick(&acct.users),
            console,
        }
    }

    /// Machines: instance profiles, Lambda functions, EKS pods, CI, service-linked roles.
    pub(crate) fn automation(&mut self) -> Actor<'a> {
        match self.rng.weighted(&[30, 25, 15, 12, 8, 10]) {
            0 => self.role(RoleKind::Ec2),
            1 => self.role(RoleKind::Lambda),
            2 => self.role(RoleKind::Eks),
            3 => self.role(RoleKind::Ci),
            4 => self.role(RoleKind::ServiceLinked),
            _ => {
                let console = false;
                self.user(console)
            }
        }
    }

    /// People: SSO and admin role sessions, IAM users, rarely root or a federation token.
    pub(crate) fn human(&mut self) -> Actor<'a> {
        match self.rng.weighted(&[40, 20, 28, 3, 4, 5]) {
            0 => self.role(RoleKind::Sso),
            1 => self.role(RoleKind::Human),
            2 => {
                let console = self.rng.chance(0.4);
                self.user(console)
            }
            3 => Actor::Root {
                console: self.rng.chance(0.8),
            },
            4 => {
                let acct: &'a Account = self.acct;
                let user = &acct.users[3];
                Actor::Federated {
                    user,
                    name: self.rng.pick_str(&["bob", "build-42", "ops"]),
                }
            }
            _ => {
                let mut principal = String::new();
                let world: &'a World = self.world;
                let ext = self.rng.pick_str(&world.external_accounts);
                principal.push_str("AROA");
                self.rng.push_chars(&mut principal, 17, UPPER_B32);
                principal.push_str(":cross-account-audit");
                Actor::External {
                    account: ext,
                    principal,
                }
            }
        }
    }

    /// Anyone, weighted like a real trail (mostly machines).
    pub(crate) fn caller(&mut self) -> Actor<'a> {
        if self.rng.chance(0.7) {
            self.automation()
        } else {
            self.human()
        }
    }

    /// A session's `creationDate`: before the start of the event's hour (sessions
    /// are keyed by hour, see [`Ctx::session_rng`]).
    fn push_creation(&mut self, out: &mut String) {
        let back = self.rng.range(30, 4 * 3600) as i64;
        push_event_time(out, self.time.div_euclid(3600) * 3600 - back);
    }

    /// The random stream of a principal's session in the event's hour, so that the
    /// calls of one session share their access key, `creationDate`, MFA flag, source
    /// address and user agent, as they do in real trails. None for services and
    /// one-off principals.
    fn session_rng(&self, a: &Actor<'_>, stream: u64) -> Option<Rng> {
        let h = self.world.salt ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let h = match a {
            Actor::User { user, console } => mix(h, &user.id) ^ *console as u64,
            Actor::Role {
                role,
                session,
                console,
                ..
            } => mix(mix(h, &role.id), session) ^ (*console as u64) << 1,
            Actor::Root { console } => mix(h, &self.acct.id) ^ 4 ^ *console as u64,
            Actor::Federated { user, name } => mix(mix(h, &user.id), name),
            Actor::IdentityCenter { user_id } => mix(h, user_id),
            _ => return None,
        };
        Some(Rng::derive(h, self.time.div_euclid(3600) as u64))
    }

    fn key_into(&mut self, out: &mut String, prefix: &str) {
        out.push_str(prefix);
        self.rng.push_chars(out, 16, UPPER_B32);
    }

    /// The ARN of an actor, for error messages.
    pub(crate) fn arn_of(&self, a: &Actor<'_>) -> String {
        let id = &self.acct.id;
        match a {
            Actor::User { user, .. } => format!("arn:aws:iam::{id}:user/{}", user.name),
            Actor::Role { role, session, .. } => {
                format!("arn:aws:sts::{id}:assumed-role/{}/{session}", role.name)
            }
            Actor::Root { .. } => format!("arn:aws:iam::{id}:root"),
            Actor::Federated { name, .. } => format!("arn:aws:sts::{id}:federated-user/{name}"),
            Actor::External { account, .. } => format!("arn:aws:iam::{account}:root"),
            _ => format!("arn:aws:iam::{id}:root"),
        }
    }

    /// Writes `userIdentity` for `a` into `r.ui`.
    pub(crate) fn identity(&mut self, r: &mut Rec, a: &Actor<'_>) {
        let saved = self
            .session_rng(a, 1)
            .map(|s| std::mem::replace(self.rng, s));
        self.identity_body(r, a);
        if let Some(saved) = saved {
            *self.rng = saved;
        }
    }

    fn identity_body(&mut self, r: &mut Rec, a: &Actor<'_>) {
        let acct: &'a Account = self.acct;
        let id = acct.id.as_str();
        let mut scratch = String::with_capacity(48);
        let ui = &mut r.ui;
        ui.clear();
        let mut j = Json::new(ui);
        j.open();
        match a {
            Actor::User { user, console } => {
                j.str("type", "IAMUser");
                j.str("principalId", &user.id);
                j.key("arn");
                arn_into(j.buf(), "iam", id, "user/", user.name);
                j.done();
                j.str("accountId", id);
                if *console {
                    self.key_into(&mut scratch, "ASIA");
                    j.str("accessKeyId", &scratch);
                } else {
                    j.str("accessKeyId", &user.key);
                }
                j.str("userName", user.name);
                if *console {
                    j.obj("sessionContext");
                    j.obj("sessionIssuer");
                    j.close();
                    j.obj("webIdFederationData");
                    j.close();
                    j.obj("attributes");
                    scratch.clear();
                    self.push_creation(&mut scratch);
                    j.str("creationDate", &scratch);
                    j.str(
                        "mfaAuthenticated",
                        if self.rng.chance(0.6) {
                            "true"
                        } else {
                            "false"
                        },
                    );
                    j.close();
                    j.close();
                }
            }
            Actor::Role {
                role,
                session,
                invoked_by,
                ..
            } => {
                let mfa = role.kind == RoleKind::Human && self.rng.chance(0.5);
                j.str("type", "AssumedRole");
                j.key("principalId");
                {
                    let b = j.buf();
                    b.push('"');
                    b.push_str(&role.id);
                    b.push(':');
                    crate::json::escape_into(b, session);
                    b.push('"');
                }
                j.done();
                j.key("arn");
                {
                    let b = j.buf();
                    b.push_str("\"arn:aws:sts::");
                    b.push_str(id);
                    b.push_str(":assumed-role/");
                    b.push_str(role.name);
                    b.push('/');
                    crate::json::escape_into(b, session);
                    b.push('"');
                }
                j.done();
                j.str("accountId", id);
                self.key_into(&mut scratch, "ASIA");
                j.str("accessKeyId", &scratch);
                j.obj("sessionContext");
                j.obj("sessionIssuer");
                j.str("type", "Role");
                j.str("principalId", &role.id);
                j.key("arn");
                {
                    let b = j.buf();
                    b.push_str("\"arn:aws:iam::");
                    b.push_str(id);
                    b.push_str(":role");
                    b.push_str(role.path);
                    b.push_str(role.name);
                    b.push('"');
                }
                j.done();
                j.str("accountId", id);
                j.str("userName", role.name);
                j.close();
                match role.kind {
                    RoleKind::Eks => {
                        j.obj("webIdFederationData");
                        j.key("federatedProvider");
                        {
                            let b = j.buf();
                            b.push_str("\"arn:aws:iam::");
                            b.push_str(id);
                            b.push_str(":oidc-provider/oidc.eks.");
                            b.push_str(self.region);
                            b.push_str(".amazonaws.com/id/");
                            b.push_str(&acct.oidc_id);
                            b.push('"');
                        }
                        j.done();
                        j.obj("attributes");
                        j.close();
                        j.close();
                    }
                    RoleKind::Ci => {
                        j.obj("webIdFederationData");
                        j.key("federatedProvider");
                        {
                            let b = j.buf();
                            b.push_str("\"arn:aws:iam::");
                            b.push_str(id);
                            b.push_str(":oidc-provider/token.actions.githubusercontent.com\"");
                        }
                        j.done();
                        j.obj("attributes");
                        j.close();
                        j.close();
                    }
                    _ => {
                        if self.rng.chance(0.6) {
                            j.obj("webIdFederationData");
                            j.close();
                        }
                    }
                }
                j.obj("attributes");
                scratch.clear();
                self.push_creation(&mut scratch);
                j.str("creationDate", &scratch);
                j.str("mfaAuthenticated", if mfa { "true" } else { "false" });
                j.close();
                if role.kind == RoleKind::Human && self.rng.chance(0.3) {
                    j.str(
                        "sourceIdentity",
                        self.rng.pick_str(&["alice", "bob@example.com"]),
                    );
                }
                if role.kind == RoleKind::Ec2 {
                    j.str(
                        "ec2RoleDelivery",
                        if self.rng.chance(0.8) { "2.0" } else { "1.0" },
                    );
                }
                j.close();
                if role.kind == RoleKind::Lambda && r.minor >= 11 {
                    j.obj("inScopeOf");
                    j.str("issuerType", "AWS::Lambda::Function");
                    j.key("credentialsIssuedTo");
                    {
                        let b = j.buf();
                        b.push_str("\"arn:aws:lambda:");
                        b.push_str(self.region);
                        b.push(':');
                        b.push_str(id);
                        b.push_str(":function:");
                        b.push_str(session);
                        b.push('"');
                    }
                    j.done();
                    j.close();
                }
                if let Some(by) = invoked_by {
                    j.str("invokedBy", by);
                }
            }
            Actor::Root { console } => {
                j.str("type", "Root");
                j.str("principalId", id);
                j.key("arn");
                arn_into(j.buf(), "iam", id, "", "root");
                j.done();
                j.str("accountId", id);
                self.key_into(&mut scratch, if *console { "ASIA" } else { "AKIA" });
                j.str("accessKeyId", &scratch);
                if *console {
                    j.obj("sessionContext");
                    j.obj("sessionIssuer");
                    j.close();
                    j.obj("webIdFederationData");
                    j.close();
                    j.obj("attributes");
                    scratch.clear();
                    self.push_creation(&mut scratch);
                    j.str("creationDate", &scratch);
                    j.str("mfaAuthenticated", "true");
                    j.close();
                    j.close();
                }
            }
            Actor::Service(by) => {
                j.str("type", "AWSService");
                j.str("invokedBy", by);
            }
            Actor::ServiceAccount(by) => {
                j.str("accountId", id);
                j.str("invokedBy", by);
            }
            Actor::Federated { user, name } => {
                j.str("type", "FederatedUser");
                j.key("principalId");
                {
                    let b = j.buf();
                    b.push('"');
                    b.push_str(id);
                    b.push(':');
                    b.push_str(name);
                    b.push('"');
                }
                j.done();
                j.key("arn");
                arn_into(j.buf(), "sts", id, "federated-user/", name);
                j.done();
                j.str("accountId", id);
                self.key_into(&mut scratch, "ASIA");
                j.str("accessKeyId", &scratch);
                j.obj("sessionContext");
                j.obj("sessionIssuer");
                j.str("type", "IAMUser");
                j.str("principalId", &user.id);
                j.key("arn");
                arn_into(j.buf(), "iam", id, "user/", user.name);
                j.done();
                j.str("accountId", id);
                j.str("userName", user.name);
                j.close();
                j.obj("webIdFederationData");
                j.close();
                j.obj("attributes");
                scratch.clear();
                self.push_creation(&mut scratch);
                j.str("creationDate", &scratch);
                j.str("mfaAuthenticated", "false");
                j.close();
                j.close();
            }
            Actor::Saml { name } => {
                j.str("type", "SAMLUser");
                scratch.clear();
                self.rng.push_chars(&mut scratch, 27, B64);
                scratch.push('=');
                j.key("principalId");
                {
                    let b = j.buf();
                    b.push('"');
                    crate::json::escape_into(b, &scratch);
                    b.push(':');
                    crate::json::escape_into(b, name);
                    b.push('"');
                }
                j.done();
                j.str("userName", name);
                j.str("identityProvider", &scratch);
            }
            Actor::WebId { provider, sub } => {
                j.str("type", "WebIdentityUser");
                j.key("principalId");
                {
                    let b = j.buf();
                    b.push('"');
                    crate::json::escape_into(b, provider);
                    b.push_str(":sts.amazonaws.com:");
                    crate::json::escape_into(b, sub);
                    b.push('"');
                }
                j.done();
                j.str("userName", sub);
                j.str("identityProvider", provider);
            }
            Actor::External { account, principal } => {
                j.str("type", "AWSAccount");
                j.str("principalId", principal);
                j.str("accountId", account);
            }
            Actor::Anonymous => {
                j.str("type", "AWSAccount");
                j.str("principalId", "");
                j.str("accountId", "anonymous");
            }
            Actor::IdentityCenter { user_id, .. } => {
                j.str("type", "IdentityCenterUser");
                j.str("accountId", id);
                j.obj("onBehalfOf");
                j.str("userId", user_id);
                j.key("identityStoreArn");
                {
                    let b = j.buf();
                    b.push_str("\"arn:aws:identitystore::");
                    b.push_str(id);
                    b.push_str(":identitystore/");
                    b.push_str(&acct.identity_store);
                    b.push('"');
                }
                j.done();
                j.close();
                scratch.clear();
                self.rng.push_chars(&mut scratch, 43, B64);
                j.str("credentialId", &scratch);
            }
            Actor::Unknown { name } => {
                j.str("type", "Unknown");
                j.str("principalId", id);
                j.str("arn", "");
                j.str("accountId", id);
                j.str("accessKeyId", "");
                j.str("userName", name);
            }
        }
        j.close();
    }

    // ----- where from -------------------------------------------------------------

    /// Sets `sourceIPAddress`, `userAgent`, `tlsDetails` and
    /// `sessionCredentialFromConsole` for a call by `a` (call after [`Ctx::begin`]).
    /// `host` is the TLS host header (default: the service's regional endpoint).
    pub(crate) fn client(&mut self, r: &mut Rec, a: &Actor<'_>, host: Option<&str>) {
        let saved = self
            .session_rng(a, 2)
            .map(|s| std::mem::replace(self.rng, s));
        self.client_body(r, a, host);
        if let Some(saved) = saved {
            *self.rng = saved;
        }
    }

    fn client_body(&mut self, r: &mut Rec, a: &Actor<'_>, host: Option<&str>) {
        match a {
            Actor::Service(p) | Actor::ServiceAccount(p) => {
                if self.rng.chance(0.1) {
                    r.ip.set("AWS Internal");
                    r.ua.set("AWS Internal");
                } else {
                    r.ip.set(p);
                    r.ua.set(p);
                }
                return;
            }
            Actor::Role {
                invoked_by: Some(p),
                ..
            } => {
                r.ip.set(p);
                r.ua.set(p);
                return;
            }
            _ => {}
        }
        let console = matches!(
            a,
            Actor::User { console: true, .. }
                | Actor::Role { console: true, .. }
                | Actor::Root { console: true }
        );
        if console {
            self.public_ip(r);
            match self.rng.weighted(&[50, 33, 10, 4, 3]) {
                0 => r.ua.set("AWS Internal"),
                1 => r.ua.set(self.rng.pick_str(BROWSERS)),
                2 => r.ua.set(CONSOLE_JAVA),
                3 => r.ua.set(self.rng.pick_str(ODD_UA)),
                _ => {
                    r.ua.set(ESCAPED_UA);
                    r.ua.escaped = true;
                }
            }
            r.console = true;
        } else {
            let kind = match a {
                Actor::Role { role, .. } => Some(role.kind),
                _ => None,
            };
            match kind {
                Some(RoleKind::Ec2) => {
                    if self.rng.chance(0.5) {
                        self.private_ip(r);
                        if self.rng.chance(0.6) {
                            let v = r.vpce.start();
                            v.push_str("vpce-");
                            self.rng.push_chars(v, 17, HEX);
                            r.vpce_account.set(&self.acct.id);
                        }
                    } else {
                        self.public_ip(r);
                    }
                    r.ua.set(self.rng.pick_str(SDK));
                }
                Some(RoleKind::Lambda) => {
                    self.aws_ip(r);
                    r.ua.set(self.rng.pick_str(LAMBDA_UA));
                }
                Some(RoleKind::Eks) => {
                    self.aws_ip(r);
                    r.ua.set(self.rng.pick_str(EKS_UA));
                }
                Some(RoleKind::Ci) => {
                    self.public_ip(r);
                    r.ua.set(if self.rng.chance(0.6) {
                        TERRAFORM
                    } else {
                        self.rng.pick_str(CLI)
                    });
                }
                _ => {
                    if matches!(a, Actor::Anonymous) {
                        self.public_ip(r);
                        r.ua.set(if self.rng.chance(0.5) {
                            "curl/8.5.0"
                        } else {
                            self.rng.pick_str(BROWSERS)
                        });
                    } else if matches!(
                        a,
                        Actor::IdentityCenter { .. } | Actor::Unknown { .. } | Actor::Saml { .. }
                    ) {
                        self.public_ip(r);
                        r.ua.set(self.rng.pick_str(BROWSERS));
                    } else {
                        self.public_ip(r);
                        match self.rng.weighted(&[45, 25, 20, 6, 4]) {
                            0 => r.ua.set(self.rng.pick_str(CLI)),
                            1 => r.ua.set(self.rng.pick_str(SDK)),
                            2 => r.ua.set(TERRAFORM),
                            3 => r.ua.set(self.rng.pick_str(ODD_UA)),
                            _ => {
                                r.ua.set(ESCAPED_UA);
                                r.ua.escaped = true;
                            }
                        }
                    }
                }
            }
        }
        self.tls(r, host);
    }

    /// `tlsDetails` with `host` (default: the service's endpoint in this region).
    pub(crate) fn tls(&mut self, r: &mut Rec, host: Option<&str>) {
        let v13 = self.rng.chance(0.75);
        let mut j = r.tls.json();
        j.open();
        j.str("tlsVersion", if v13 { "TLSv1.3" } else { "TLSv1.2" });
        j.str(
            "cipherSuite",
            if v13 {
                "TLS_AES_128_GCM_SHA256"
            } else {
                "ECDHE-RSA-AES128-GCM-SHA256"
            },
        );
        j.key("clientProvidedHostHeader");
        let b = j.buf();
        b.push('"');
        match host {
            Some(h) => crate::json::escape_into(b, h),
            None => {
                let svc = r.source.strip_suffix(".amazonaws.com").unwrap_or(r.source);
                b.push_str(svc);
                if !matches!(svc, "iam" | "route53" | "cloudfront" | "organizations") {
                    b.push('.');
                    b.push_str(self.region);
                }
                b.push_str(".amazonaws.com");
            }
        }
        b.push('"');
        j.done();
        j.close();
    }

    /// A public client IPv4 (80%) or IPv6 address.
    pub(crate) fn public_ip(&mut self, r: &mut Rec) {
        let v6 = self.rng.chance(0.2);
        let s = r.ip.start();
        if v6 {
            push_ipv6(self.rng, s);
        } else {
            let first = *self
                .rng
                .pick(&[24u8, 46, 67, 73, 81, 86, 92, 98, 176, 185, 203, 212, 217]);
            push_ipv4(self.rng, s, first);
        }
    }

    /// A private VPC address.
    pub(crate) fn private_ip(&mut self, r: &mut Rec) {
        let s = r.ip.start();
        if self.rng.chance(0.7) {
            push_ipv4(self.rng, s, 10);
        } else {
            s.push_str("172.31.");
            push_int(s, self.rng.below(256) as i64);
            s.push('.');
            push_int(s, self.rng.range(1, 254) as i64);
        }
    }

    /// An address in AWS's public ranges (Lambda, NAT gateways).
    pub(crate) fn aws_ip(&mut self, r: &mut Rec) {
        let s = r.ip.start();
        let first = *self.rng.pick(&[3u8, 13, 18, 34, 35, 44, 52, 54]);
        push_ipv4(self.rng, s, first);
    }

    /// A session-credentials object body (`accessKeyId`, `sessionToken`,
    /// `expiration` in STS's Java date form), written as field `credentials`.
    pub(crate) fn credentials(&mut self, j: &mut Json<'_>, duration: i64) {
        j.obj("credentials");
        j.key("accessKeyId");
        {
            let b = j.buf();
            b.push('"');
            b.push_str("ASIA");
            self.rng.push_chars(b, 16, UPPER_B32);
            b.push('"');
        }
        j.done();
        j.key("sessionToken");
        {
            let b = j.buf();
            b.push_str("\"IQoJb3JpZ2luX2VjE");
            self.rng.push_chars(b, 340, B64);
            b.push('"');
        }
        j.done();
        let narrow = self.rng.chance(0.3);
        j.str(
            "expiration",
            &crate::time::java_date(self.time + duration, true, narrow),
        );
        j.close();
    }
}

/// `"arn:aws:{svc}::{acct}:{kind}{name}"` with quotes, `name` escaped.
fn arn_into(b: &mut String, svc: &str, acct: &str, kind: &str, name: &str) {
    b.push_str("\"arn:aws:");
    b.push_str(svc);
    b.push_str("::");
    b.push_str(acct);
    b.push(':');
    b.push_str(kind);
    crate::json::escape_into(b, name);
    b.push('"');
}

/// Appends `first.x.y.z`.
pub(crate) fn push_ipv4(rng: &mut Rng, s: &mut String, first: u8) {
    push_int(s, first as i64);
    s.push('.');
    push_int(s, rng.below(256) as i64);
    s.push('.');
    push_int(s, rng.below(256) as i64);
    s.push('.');
    push_int(s, rng.range(1, 254) as i64);
}

/// Appends a global-unicast IPv6 address, sometimes in `::` short form.
pub(crate) fn push_ipv6(rng: &mut Rng, s: &mut String) {
    s.push_str(rng.pick_str(&[
        "2600:1f18",
        "2a05:d018",
        "2406:da1c",
        "2001:db8",
        "2a02:8109",
    ]));
    let short = rng.chance(0.4);
    let groups = if short { 3 } else { 6 };
    if short {
        s.push(':');
    }
    for _ in 0..groups {
        s.push(':');
        let v = rng.below(0x10000);
        let mut started = false;
        for shift in [12, 8, 4, 0] {
            let d = (v >> shift) & 0xf;
            if d != 0 || started || shift == 0 {
                s.push(HEX[d as usize] as char);
                started = true;
            }
        }
    }
}
