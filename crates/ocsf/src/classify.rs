//! Which OCSF class, activity and Security Lake source a CloudTrail event belongs to,
//! decided from `eventSource` + `eventName` (and the event's category) as the
//! reference mapping describes (security-lake-spec.md §2).

/// The OCSF 1.1.0 classes CloudTrail maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OcsfClass {
    /// Account Change (3001), category Identity & Access Management.
    AccountChange,
    /// Authentication (3002), category Identity & Access Management.
    Authentication,
    /// API Activity (6003), category Application Activity.
    ApiActivity,
}

impl OcsfClass {
    /// All classes, in `class_uid` order.
    pub const ALL: [OcsfClass; 3] = [
        OcsfClass::AccountChange,
        OcsfClass::Authentication,
        OcsfClass::ApiActivity,
    ];

    /// `class_uid`.
    pub fn uid(self) -> i32 {
        match self {
            OcsfClass::AccountChange => 3001,
            OcsfClass::Authentication => 3002,
            OcsfClass::ApiActivity => 6003,
        }
    }

    /// `class_name`.
    pub fn name(self) -> &'static str {
        match self {
            OcsfClass::AccountChange => "Account Change",
            OcsfClass::Authentication => "Authentication",
            OcsfClass::ApiActivity => "API Activity",
        }
    }

    /// `category_uid`.
    pub fn category_uid(self) -> i32 {
        match self {
            OcsfClass::ApiActivity => 6,
            _ => 3,
        }
    }

    /// `category_name`.
    pub fn category_name(self) -> &'static str {
        match self {
            OcsfClass::ApiActivity => "Application Activity",
            _ => "Identity & Access Management",
        }
    }

    /// The class name in `UPPER_SNAKE` form, used in custom-source names.
    pub fn snake(self) -> &'static str {
        match self {
            OcsfClass::AccountChange => "ACCOUNT_CHANGE",
            OcsfClass::Authentication => "AUTHENTICATION",
            OcsfClass::ApiActivity => "API_ACTIVITY",
        }
    }

    /// The class for a `class_uid`.
    pub fn from_uid(uid: i32) -> Option<OcsfClass> {
        OcsfClass::ALL.into_iter().find(|c| c.uid() == uid)
    }

    /// `activity_name` for an `activity_id` of this class (OCSF 1.1.0 enums).
    pub fn activity_name(self, id: i32) -> &'static str {
        match (self, id) {
            (_, 0) => "Unknown",
            (_, 99) => "Other",
            (OcsfClass::ApiActivity, 1) => "Create",
            (OcsfClass::ApiActivity, 2) => "Read",
            (OcsfClass::ApiActivity, 3) => "Update",
            (OcsfClass::ApiActivity, 4) => "Delete",
            (OcsfClass::Authentication, 1) => "Logon",
            (OcsfClass::Authentication, 2) => "Logoff",
            (OcsfClass::Authentication, 3) => "Authentication Ticket",
            (OcsfClass::Authentication, 4) => "Service Ticket Request",
            (OcsfClass::Authentication, 5) => "Service Ticket Renew",
            (OcsfClass::AccountChange, 1) => "Create",
            (OcsfClass::AccountChange, 2) => "Enable",
            (OcsfClass::AccountChange, 3) => "Password Change",
            (OcsfClass::AccountChange, 4) => "Password Reset",
            (OcsfClass::AccountChange, 5) => "Disable",
            (OcsfClass::AccountChange, 6) => "Delete",
            (OcsfClass::AccountChange, 7) => "Attach Policy",
            (OcsfClass::AccountChange, 8) => "Detach Policy",
            (OcsfClass::AccountChange, 9) => "Lock",
            (OcsfClass::AccountChange, 10) => "MFA Factor Enable",
            (OcsfClass::AccountChange, 11) => "MFA Factor Disable",
            _ => "Unknown",
        }
    }
}

/// The Security Lake source a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Management events (`CLOUD_TRAIL_MGMT`).
    CloudTrailMgmt,
    /// S3 data events (`S3_DATA`).
    S3Data,
    /// Lambda data events (`LAMBDA_EXECUTION`).
    LambdaExecution,
    /// Other non-management events (data events of other services, network activity
    /// events). Security Lake has no source for these; trailhouse keeps them under
    /// this name rather than dropping them.
    CloudTrailData,
}

impl Source {
    /// All sources.
    pub const ALL: [Source; 4] = [
        Source::CloudTrailMgmt,
        Source::S3Data,
        Source::LambdaExecution,
        Source::CloudTrailData,
    ];

    /// The source name as Security Lake spells it.
    pub fn name(self) -> &'static str {
        match self {
            Source::CloudTrailMgmt => "CLOUD_TRAIL_MGMT",
            Source::S3Data => "S3_DATA",
            Source::LambdaExecution => "LAMBDA_EXECUTION",
            Source::CloudTrailData => "CLOUD_TRAIL_DATA",
        }
    }
}

/// What [`classify`] needs to know about an event.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventFacts<'a> {
    /// `eventSource`, e.g. `iam.amazonaws.com`.
    pub event_source: &'a str,
    /// `eventName`, e.g. `CreateUser`.
    pub event_name: &'a str,
    /// `eventCategory` (`Management`, `Data`, `NetworkActivity`, `Insight`), if any.
    pub event_category: Option<&'a str>,
    /// `managementEvent`, if present and boolean.
    pub management_event: Option<bool>,
    /// `eventType`, e.g. `AwsApiCall`.
    pub event_type: Option<&'a str>,
    /// Whether `resources[]` names an `AWS::S3::Object` (old S3 data events carry
    /// neither `eventCategory` nor `managementEvent`).
    pub has_s3_object_resource: bool,
}

const AUTHENTICATION_SIGNIN: &[&str] = &[
    "ConsoleLogin",
    "ExternalIdPDirectoryLogin",
    "CheckMfa",
    "CredentialChallenge",
    "CredentialVerification",
    "UserAuthentication",
];
const AUTHENTICATION_STS: &[&str] = &[
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
];
/// Account Change event names (the reference pipeline's list, spec §2.2).
const ACCOUNT_CHANGE: &[&str] = &[
    "UpdateRole",
    "AttachUserPolicy",
    "PutRolePermissionsBoundary",
    "DeletePolicy",
    "RemoveUserFromGroup",
    "ChangePassword",
    "CreateAccessKey",
    "AttachGroupPolicy",
    "ResyncMFADevice",
    "DeleteRolePolicy",
    "PutUserPermissionsBoundary",
    "CreateUser",
    "CreateServiceLinkedRole",
    "PutRolePolicy",
    "DetachGroupPolicy",
    "UpdateAccessKey",
    "CreateInstanceProfile",
    "CreateRole",
    "DeleteUserPermissionsBoundary",
    "DeleteAccountAlias",
    "PutGroupPolicy",
    "CreateLoginProfile",
    "DeleteGroupPolicy",
    "DeleteLoginProfile",
    "DeleteUserPolicy",
    "DeactivateMFADevice",
    "RemoveRoleFromInstanceProfile",
    "UpdateUser",
    "EnableMFADevice",
    "DeleteUser",
    "AddRoleToInstanceProfile",
    "UpdateAccountEmailAddress",
    "UpdateRoleDescription",
    "DetachUserPolicy",
    "UpdateAssumeRolePolicy",
    "DeleteGroup",
    "DeleteServiceLinkedRole",
    "DeleteAccessKey",
    "AddUserToGroup",
    "DeleteVirtualMFADevice",
    "FinalizeSmsMfaRegistration",
    "DeleteRolePermissionsBoundary",
    "DetachRolePolicy",
    "DeleteInstanceProfile",
    "UpdateGroup",
    "UpdateLoginProfile",
    "RequestSmsMfaRegistration",
    "DeleteRole",
    "PutUserPolicy",
    "CreateVirtualMFADevice",
    "AttachRolePolicy",
    "EmailUpdated",
    "AccountNameUpdated",
    "PasswordUpdated",
    "DeleteAccountPasswordPolicy",
    "UpdateAccountPasswordPolicy",
    "UpdateAccountName",
    "TagInstanceProfile",
    "TagRole",
    "TagUser",
    "UntagInstanceProfile",
    "UntagRole",
    "UntagUser",
    "CreateAccountAlias",
];
/// Services whose events can be account changes. Event names such as `CreateUser`
/// exist in many services (Transfer, MQ, QuickSight …); only these are IAM accounts.
const ACCOUNT_CHANGE_SOURCES: &[&str] = &[
    "iam.amazonaws.com",
    "signin.amazonaws.com",
    "account.amazonaws.com",
];

/// The OCSF class of an event.
pub fn classify(event_source: &str, event_name: &str) -> OcsfClass {
    let auth = match event_source {
        "signin.amazonaws.com" | "sso.amazonaws.com" => AUTHENTICATION_SIGNIN.contains(&event_name),
        "sts.amazonaws.com" => AUTHENTICATION_STS.contains(&event_name),
        _ => false,
    };
    if auth {
        OcsfClass::Authentication
    } else if ACCOUNT_CHANGE_SOURCES.contains(&event_source) && ACCOUNT_CHANGE.contains(&event_name)
    {
        OcsfClass::AccountChange
    } else {
        OcsfClass::ApiActivity
    }
}

/// The Security Lake source of an event.
pub fn source(f: &EventFacts) -> Source {
    let management = match (f.management_event, f.event_category) {
        (Some(m), _) => m,
        (None, Some(cat)) => cat.eq_ignore_ascii_case("Management"),
        // Before eventVersion 1.06 neither field exists: S3 data events are recognised
        // by their object resources, Lambda ones by `Invoke`.
        (None, None) => {
            !(f.has_s3_object_resource
                || (f.event_source == "lambda.amazonaws.com" && f.event_name == "Invoke"))
        }
    };
    if management {
        return Source::CloudTrailMgmt;
    }
    // Network activity events (VPC endpoint access) are not data events of the service.
    if f.event_category
        .is_some_and(|c| c.eq_ignore_ascii_case("NetworkActivity"))
    {
        return Source::CloudTrailData;
    }
    match f.event_source {
        "s3.amazonaws.com" => Source::S3Data,
        "lambda.amazonaws.com" => Source::LambdaExecution,
        _ => Source::CloudTrailData,
    }
}

/// Verb prefixes of API names, in priority order (the reference pipeline's heuristic,
/// matched as camel-case prefixes rather than substrings, plus the obvious readers
/// `Head`, `BatchGet`, `Query`, `Scan`, `Select`, `Download`).
const API_VERBS: &[(&[&str], i32)] = &[
    (&["Create", "Run", "Generate"], 1),
    (
        &[
            "Get", "List", "Describe", "Search", "Lookup", "Head", "BatchGet", "Query", "Scan",
            "Select", "Download",
        ],
        2,
    ),
    (
        &[
            "Update",
            "Put",
            "Modify",
            "Add",
            "Remove",
            "Start",
            "Stop",
            "Attach",
            "Detach",
            "Associate",
            "Disassociate",
            "Tag",
            "Untag",
            "Enable",
            "Disable",
            "Register",
            "Deregister",
        ],
        3,
    ),
    (&["Delete", "Terminate"], 4),
];

/// Whether `name` starts with the camel-case word `verb` (`GetObject` yes, `Generate` no
/// for `Get`).
fn has_verb(name: &str, verb: &str) -> bool {
    name.starts_with(verb)
        && name[verb.len()..]
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The `activity_id` of an event of `class`. `detail` supplies request parameters
/// that some activities depend on (`UpdateAccessKey` enables or disables a key).
pub fn activity(class: OcsfClass, event_name: &str, access_key_status: Option<&str>) -> i32 {
    match class {
        OcsfClass::ApiActivity => API_VERBS
            .iter()
            .find(|(verbs, _)| verbs.iter().any(|v| has_verb(event_name, v)))
            .map_or(99, |(_, id)| *id),
        OcsfClass::Authentication => match event_name {
            "ConsoleLogin"
            | "ExternalIdPDirectoryLogin"
            | "UserAuthentication"
            | "AssumeRole"
            | "AssumeRoleWithSAML"
            | "AssumeRoleWithWebIdentity" => 1,
            _ => 99,
        },
        OcsfClass::AccountChange => account_change_activity(event_name, access_key_status),
    }
}

fn account_change_activity(name: &str, access_key_status: Option<&str>) -> i32 {
    match name {
        "ChangePassword" | "UpdateLoginProfile" | "PasswordUpdated" => 3,
        "EnableMFADevice" | "ResyncMFADevice" | "FinalizeSmsMfaRegistration" => 10,
        "DeactivateMFADevice" => 11,
        "UpdateAccessKey" => match access_key_status {
            Some(s) if s.eq_ignore_ascii_case("Active") => 2,
            Some(s) if s.eq_ignore_ascii_case("Inactive") => 5,
            _ => 99,
        },
        "AddRoleToInstanceProfile" | "AddUserToGroup" => 7,
        "RemoveRoleFromInstanceProfile" | "RemoveUserFromGroup" => 8,
        _ if has_verb(name, "Attach") => 7,
        _ if has_verb(name, "Detach") => 8,
        // Inline policies and permission boundaries: putting one attaches it,
        // deleting one detaches it.
        _ if has_verb(name, "Put")
            && (name.ends_with("Policy") || name.ends_with("PermissionsBoundary")) =>
        {
            7
        }
        _ if has_verb(name, "Delete")
            && name != "DeletePolicy"
            && name != "DeleteAccountPasswordPolicy"
            && (name.ends_with("Policy") || name.ends_with("PermissionsBoundary")) =>
        {
            8
        }
        _ if has_verb(name, "Create") => 1,
        _ if has_verb(name, "Delete") => 6,
        _ => 99,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OcsfClass::*;

    #[test]
    fn classes_follow_event_source_and_name() {
        assert_eq!(
            classify("signin.amazonaws.com", "ConsoleLogin"),
            Authentication
        );
        assert_eq!(classify("signin.amazonaws.com", "CheckMfa"), Authentication);
        assert_eq!(
            classify("sts.amazonaws.com", "AssumeRoleWithSAML"),
            Authentication
        );
        assert_eq!(
            classify("sso.amazonaws.com", "UserAuthentication"),
            Authentication
        );
        assert_eq!(classify("iam.amazonaws.com", "CreateUser"), AccountChange);
        assert_eq!(
            classify("iam.amazonaws.com", "RemoveRoleFromInstanceProfile"),
            AccountChange
        );
        // Same names in other services are plain API activity.
        assert_eq!(
            classify("transfer.amazonaws.com", "CreateUser"),
            ApiActivity
        );
        assert_eq!(
            classify("quicksight.amazonaws.com", "DeleteUser"),
            ApiActivity
        );
        assert_eq!(classify("sts.amazonaws.com", "ConsoleLogin"), ApiActivity);
        assert_eq!(
            classify("sts.amazonaws.com", "GetCallerIdentity"),
            ApiActivity
        );
        assert_eq!(classify("iam.amazonaws.com", "ListUsers"), ApiActivity);
        assert_eq!(
            classify(
                "directconnect.amazonaws.com",
                "DescribeDirectConnectGateways"
            ),
            ApiActivity
        );
    }

    #[test]
    fn api_activity_verbs_as_observed_in_security_lake_samples() {
        // spec §2.3, AWS-produced outputs.
        for (name, id) in [
            ("CreateLoadBalancer", 1),
            ("DeleteLoadBalancer", 4),
            ("DescribeDirectConnectGateways", 2),
            ("GetVpcLinks", 2),
            ("ListCloudFrontOriginAccessIdentities", 2),
            ("UpdateTrail", 3),
            ("UnknownAPI", 99),
            ("PutObject", 3),
            ("RunInstances", 1),
            ("TerminateInstances", 4),
            ("HeadObject", 2),
            ("GenerateDataKey", 1),
            ("Getaway", 99),
            ("Decrypt", 99),
            ("ConsoleLogin", 99),
            ("Invoke", 99),
        ] {
            assert_eq!(activity(ApiActivity, name, None), id, "{name}");
        }
    }

    #[test]
    fn account_change_and_authentication_activities() {
        for (name, id) in [
            ("CreateRole", 1),
            ("CreateUser", 1),
            ("DeleteRole", 6),
            ("AttachRolePolicy", 7),
            ("AttachUserPolicy", 7),
            ("RemoveRoleFromInstanceProfile", 8),
            ("DetachGroupPolicy", 8),
            ("PutRolePolicy", 7),
            ("DeleteRolePolicy", 8),
            ("DeleteUserPermissionsBoundary", 8),
            ("DeletePolicy", 6),
            ("ChangePassword", 3),
            ("EnableMFADevice", 10),
            ("DeactivateMFADevice", 11),
            ("TagRole", 99),
            ("UpdateAccountPasswordPolicy", 99),
        ] {
            assert_eq!(activity(AccountChange, name, None), id, "{name}");
        }
        assert_eq!(
            activity(AccountChange, "UpdateAccessKey", Some("Inactive")),
            5
        );
        assert_eq!(
            activity(AccountChange, "UpdateAccessKey", Some("Active")),
            2
        );
        assert_eq!(activity(Authentication, "ConsoleLogin", None), 1);
        assert_eq!(
            activity(Authentication, "AssumeRoleWithWebIdentity", None),
            1
        );
        assert_eq!(activity(Authentication, "CheckMfa", None), 99);
        for class in OcsfClass::ALL {
            assert_eq!(OcsfClass::from_uid(class.uid()), Some(class));
            assert_eq!(class.activity_name(99), "Other");
        }
        assert_eq!(AccountChange.activity_name(7), "Attach Policy");
    }

    #[test]
    fn sources() {
        let f = |src, name, cat, mgmt, s3obj| EventFacts {
            event_source: src,
            event_name: name,
            event_category: cat,
            management_event: mgmt,
            event_type: Some("AwsApiCall"),
            has_s3_object_resource: s3obj,
        };
        use Source::*;
        assert_eq!(
            source(&f(
                "s3.amazonaws.com",
                "GetObject",
                Some("Data"),
                Some(false),
                true
            )),
            S3Data
        );
        assert_eq!(
            source(&f(
                "s3.amazonaws.com",
                "ListBuckets",
                Some("Management"),
                Some(true),
                false
            )),
            CloudTrailMgmt
        );
        assert_eq!(
            source(&f(
                "lambda.amazonaws.com",
                "Invoke",
                Some("Data"),
                None,
                false
            )),
            LambdaExecution
        );
        assert_eq!(
            source(&f(
                "dynamodb.amazonaws.com",
                "GetItem",
                Some("Data"),
                Some(false),
                false
            )),
            CloudTrailData
        );
        assert_eq!(
            source(&f(
                "s3.amazonaws.com",
                "GetObject",
                Some("NetworkActivity"),
                None,
                false
            )),
            CloudTrailData
        );
        assert_eq!(
            source(&f(
                "ec2.amazonaws.com",
                "X",
                Some("NetworkActivity"),
                None,
                false
            )),
            CloudTrailData
        );
        // Old events without either field.
        assert_eq!(
            source(&f("s3.amazonaws.com", "GetObject", None, None, true)),
            S3Data
        );
        assert_eq!(
            source(&f("s3.amazonaws.com", "ListBuckets", None, None, false)),
            CloudTrailMgmt
        );
        assert_eq!(
            source(&f("lambda.amazonaws.com", "Invoke", None, None, false)),
            LambdaExecution
        );
        assert_eq!(
            source(&f("ec2.amazonaws.com", "RunInstances", None, None, false)),
            CloudTrailMgmt
        );
    }
}
