//! The simulated organisation: accounts with their users, roles, buckets,
//! functions, tables, keys and instances, drawn once per seed so that records
//! refer to a consistent set of principals and resources.

use crate::rng::{HEX, Rng, UPPER_B32};

/// What a role is used for; decides its session names and call patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RoleKind {
    /// Human operators (console or CLI), possibly through SSO.
    Human,
    /// An IAM Identity Center permission-set role (`AWSReservedSSO_*`).
    Sso,
    /// An EC2 instance profile role.
    Ec2,
    /// A Lambda execution role.
    Lambda,
    /// A role assumed through EKS IRSA (web identity).
    Eks,
    /// CI/CD assumed through GitHub's OIDC provider (web identity).
    Ci,
    /// A service-linked role.
    ServiceLinked,
}

/// An IAM role.
pub(crate) struct Role {
    pub name: &'static str,
    pub path: &'static str,
    pub id: String,
    pub kind: RoleKind,
}

/// An IAM user.
pub(crate) struct User {
    pub name: &'static str,
    pub id: String,
    pub key: String,
}

/// One AWS account of the corpus.
pub(crate) struct Account {
    pub id: String,
    pub users: Vec<User>,
    pub roles: Vec<Role>,
    pub buckets: Vec<String>,
    pub functions: Vec<&'static str>,
    pub tables: Vec<&'static str>,
    pub kms_keys: Vec<String>,
    pub instances: Vec<String>,
    pub identity_store: String,
    pub oidc_id: String,
    pub sso_users: Vec<(String, &'static str)>,
}

/// Everything records are drawn from.
pub(crate) struct World {
    pub accounts: Vec<Account>,
    pub regions: Vec<String>,
    /// Accounts outside the corpus (callers from other organisations).
    pub external_accounts: Vec<String>,
    /// Index of `us-east-1` in `regions`, where global-service events land.
    pub global_region: Option<usize>,
    /// Seeds per-session attributes (see `Ctx::session_rng`).
    pub salt: u64,
}

const USER_NAMES: &[&str] = &[
    "alice",
    "bob",
    "carol.jones",
    "deploy-bot",
    "jenkins",
    "terraform",
    "svc-backup",
    "admin@example.com",
    "dev_ops+ci",
    "mallory",
];

const ROLES: &[(&str, &str, RoleKind)] = &[
    ("Admin", "/", RoleKind::Human),
    ("ReadOnly", "/", RoleKind::Human),
    ("OrganizationAccountAccessRole", "/", RoleKind::Human),
    (
        "AWSReservedSSO_AdministratorAccess_4f1c2e8d9a7b6c5d",
        "/aws-reserved/sso.amazonaws.com/",
        RoleKind::Sso,
    ),
    (
        "AWSReservedSSO_ReadOnlyAccess_1a2b3c4d5e6f7a8b",
        "/aws-reserved/sso.amazonaws.com/eu-west-1/",
        RoleKind::Sso,
    ),
    ("app-server-ec2", "/", RoleKind::Ec2),
    ("eks-node-group-role", "/", RoleKind::Ec2),
    ("orders-api-exec", "/service-role/", RoleKind::Lambda),
    ("image-resize-exec", "/service-role/", RoleKind::Lambda),
    ("karpenter-controller", "/", RoleKind::Eks),
    ("github-actions-deploy", "/ci/", RoleKind::Ci),
    (
        "AWSServiceRoleForAutoScaling",
        "/aws-service-role/autoscaling.amazonaws.com/",
        RoleKind::ServiceLinked,
    ),
    (
        "AWSServiceRoleForConfig",
        "/aws-service-role/config.amazonaws.com/",
        RoleKind::ServiceLinked,
    ),
];

const BUCKET_STEMS: &[&str] = &[
    "acme-prod-assets",
    "acme-data-lake-raw",
    "cf-templates-1x2y3z4w5v6u",
    "aws-cloudtrail-logs",
    "backups.acme.example",
];

const FUNCTIONS: &[&str] = &[
    "orders-api",
    "image-resize",
    "slack-notifier",
    "cost-report-generator",
];

const TABLES: &[&str] = &["Orders", "sessions", "feature-flags"];

const SSO_USERS: &[&str] = &[
    "alice@example.com",
    "bob@example.com",
    "zoë.müller@example.de",
    "o'neil@example.com",
];

/// AWS principal ids: a four-letter prefix and 17 base32 characters.
pub(crate) fn principal_id(rng: &mut Rng, prefix: &str) -> String {
    let mut s = String::with_capacity(21);
    s.push_str(prefix);
    rng.push_chars(&mut s, 17, UPPER_B32);
    s
}

/// Access key ids: a four-letter prefix and 16 base32 characters.
pub(crate) fn access_key(rng: &mut Rng, prefix: &str) -> String {
    let mut s = String::with_capacity(20);
    s.push_str(prefix);
    rng.push_chars(&mut s, 16, UPPER_B32);
    s
}

/// An EC2-style id: prefix and 17 hex digits.
pub(crate) fn ec2_id(rng: &mut Rng, prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 17);
    s.push_str(prefix);
    rng.push_chars(&mut s, 17, HEX);
    s
}

fn account_id(rng: &mut Rng, leading_zero: bool) -> String {
    let mut s = String::with_capacity(12);
    if leading_zero {
        s.push('0');
    } else {
        s.push((b'1' + rng.below(9) as u8) as char);
    }
    rng.push_chars(&mut s, 11, b"0123456789");
    s
}

impl World {
    /// Draws a world of `accounts` accounts (at least one) over `regions`.
    pub(crate) fn new(rng: &mut Rng, accounts: usize, regions: &[String]) -> Self {
        let mut ids: Vec<String> = Vec::new();
        while ids.len() < accounts.max(1) {
            // The second account starts with 0: account ids are strings, not numbers.
            let id = account_id(rng, ids.len() == 1);
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Self::with_ids(rng, ids, regions)
    }

    /// A world whose accounts have the given ids (at least one).
    pub(crate) fn with_ids(rng: &mut Rng, ids: Vec<String>, regions: &[String]) -> Self {
        let accounts = ids.into_iter().map(|id| Account::new(rng, id)).collect();
        let regions: Vec<String> = if regions.is_empty() {
            vec!["us-east-1".to_string()]
        } else {
            regions.to_vec()
        };
        let global_region = regions.iter().position(|r| r == "us-east-1");
        World {
            accounts,
            regions,
            external_accounts: vec![account_id(rng, false), account_id(rng, false)],
            global_region,
            salt: rng.next_u64(),
        }
    }
}

impl Account {
    fn new(rng: &mut Rng, id: String) -> Self {
        let users = USER_NAMES
            .iter()
            .map(|&name| User {
                name,
                id: principal_id(rng, "AIDA"),
                key: access_key(rng, "AKIA"),
            })
            .collect();
        let roles = ROLES
            .iter()
            .map(|&(name, path, kind)| Role {
                name,
                path,
                id: principal_id(rng, "AROA"),
                kind,
            })
            .collect();
        let buckets = BUCKET_STEMS
            .iter()
            .map(|stem| {
                if stem.contains('.') {
                    format!("{id}.{stem}")
                } else {
                    format!("{stem}-{id}")
                }
            })
            .collect();
        let kms_keys = (0..3).map(|_| rng.uuid()).collect();
        let instances = (0..6).map(|_| ec2_id(rng, "i-")).collect();
        let identity_store = format!("d-{}", rng.chars(10, b"0123456789abcdef"));
        let oidc_id = rng.chars(32, b"0123456789ABCDEF");
        let sso_users = SSO_USERS.iter().map(|&name| (rng.uuid(), name)).collect();
        Account {
            id,
            users,
            roles,
            buckets,
            functions: FUNCTIONS.to_vec(),
            tables: TABLES.to_vec(),
            kms_keys,
            instances,
            identity_store,
            oidc_id,
            sso_users,
        }
    }

    /// Roles of the given kind (every kind has at least one).
    pub(crate) fn role_of(&self, rng: &mut Rng, kind: RoleKind) -> &Role {
        let n = self.roles.iter().filter(|r| r.kind == kind).count();
        let k = rng.index(n);
        self.roles
            .iter()
            .filter(|r| r.kind == kind)
            .nth(k)
            .expect("every role kind is present")
    }
}
