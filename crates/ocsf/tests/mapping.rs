//! Mapping behaviour over the variety of real CloudTrail: identity types, endpoints,
//! classes, the schema-validity additions, and records that must be refused.

use serde_json::{Value, json};
use trailhouse_ocsf::json::to_json_array;
use trailhouse_ocsf::{MapError, ObjectContext, OcsfBuilder, OcsfClass, Source};

fn base(event_source: &str, event_name: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::123456789012:user/alice",
                          "accountId": "123456789012", "accessKeyId": "AKIAEXAMPLE", "userName": "alice"},
        "eventTime": "2024-03-09T12:00:00Z",
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "198.51.100.7",
        "userAgent": "aws-cli/2.15",
        "requestParameters": null,
        "responseElements": null,
        "requestID": "req-1",
        "eventID": "evt-1",
        "readOnly": true,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management"
    })
}

fn map_with(rec: &Value, ctx: &ObjectContext) -> Result<(Value, Source), MapError> {
    let bytes = serde_json::to_vec(rec).unwrap();
    let mut b = OcsfBuilder::new();
    let source = b.append_bytes(&bytes, ctx)?.source;
    let batch = b.finish().unwrap();
    let rows: Value = serde_json::from_slice(&to_json_array(&batch).unwrap()).unwrap();
    Ok((rows[0].clone(), source))
}

fn map(rec: &Value) -> Value {
    map_with(rec, &ObjectContext::default()).unwrap().0
}

fn observables(row: &Value) -> Vec<(String, i64)> {
    row["observables"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    (
                        o["name"].as_str().unwrap().to_string(),
                        o["type_id"].as_i64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn aws_service_identity_and_service_principal_source() {
    let mut r = base("sts.amazonaws.com", "GetCallerIdentity");
    r["userIdentity"] = json!({"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"});
    r["sourceIPAddress"] = json!("cloudformation.amazonaws.com");
    let row = map(&r);
    assert_eq!(
        row["actor"]["user"],
        json!({"type": "AWSService", "name": "cloudformation.amazonaws.com"})
    );
    assert_eq!(row["actor"]["invoked_by"], "cloudformation.amazonaws.com");
    assert_eq!(
        row["src_endpoint"],
        json!({"domain": "cloudformation.amazonaws.com", "svc_name": "cloudformation.amazonaws.com"})
    );
    assert!(observables(&row).contains(&("src_endpoint.domain".into(), 1)));
    assert!(
        !observables(&row)
            .iter()
            .any(|(n, _)| n == "actor.user.name"),
        "fallback name is not a user name"
    );
}

#[test]
fn aws_internal_ipv6_and_missing_source_address() {
    let mut r = base("ec2.amazonaws.com", "DescribeInstances");
    r["sourceIPAddress"] = json!("AWS Internal");
    let row = map(&r);
    assert_eq!(
        row["src_endpoint"],
        json!({"domain": "AWS Internal", "svc_name": "AWS Internal"})
    );
    assert!(
        !observables(&row)
            .iter()
            .any(|(n, _)| n == "src_endpoint.domain")
    );

    r["sourceIPAddress"] = json!("2001:db8::1");
    assert_eq!(map(&r)["src_endpoint"], json!({"ip": "2001:db8::1"}));

    r.as_object_mut().unwrap().remove("sourceIPAddress");
    r["vpcEndpointId"] = json!("vpce-0abc");
    assert_eq!(map(&r)["src_endpoint"], json!({"uid": "vpce-0abc"}));
    r.as_object_mut().unwrap().remove("vpcEndpointId");
    assert_eq!(
        map(&r)["src_endpoint"],
        json!({"svc_name": "ec2.amazonaws.com"})
    );
}

#[test]
fn assume_role_is_authentication_with_session() {
    let mut r = base("sts.amazonaws.com", "AssumeRole");
    r["requestParameters"] =
        json!({"roleArn": "arn:aws:iam::123456789012:role/Deploy", "roleSessionName": "ci-42"});
    r["responseElements"] = json!({
        "credentials": {"accessKeyId": "ASIAEXAMPLE", "sessionToken": "tok", "expiration": "Mar 9, 2024, 1:00:00 PM"},
        "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLE:ci-42", "arn": "arn:aws:sts::123456789012:assumed-role/Deploy/ci-42"}
    });
    let row = map(&r);
    assert_eq!(row["class_uid"], 3002);
    assert_eq!(row["type_uid"], 300201);
    assert_eq!(row["activity_name"], "Logon");
    assert_eq!(
        row["user"],
        json!({"uid": "arn:aws:iam::123456789012:role/Deploy", "uid_alt": "AIDAEXAMPLE", "name": "ci-42"})
    );
    assert_eq!(
        row["session"],
        json!({"uid": "arn:aws:sts::123456789012:assumed-role/Deploy/ci-42", "uid_alt": "AROAEXAMPLE:ci-42",
               "credential_uid": "ASIAEXAMPLE", "issuer": "arn:aws:iam::123456789012:role/Deploy"})
    );
    // Authentication needs dst_endpoint or service: the service authenticated to.
    assert_eq!(
        row["dst_endpoint"],
        json!({"svc_name": "sts.amazonaws.com"})
    );
    assert_eq!(
        row["status"], "Other",
        "Security Lake quirk for successful AssumeRole"
    );
    assert!(
        row["api"]["request"]["data"]
            .as_str()
            .unwrap()
            .contains("roleSessionName")
    );

    r["errorCode"] = json!("AccessDenied");
    r["errorMessage"] = json!("not authorized");
    let row = map(&r);
    assert_eq!(row["status"], "Failure");
    assert_eq!(row["api"]["response"]["error"], "AccessDenied");
    assert_eq!(row["api"]["response"]["message"], "not authorized");
}

#[test]
fn failed_console_login_hidden_user() {
    let mut r = base("signin.amazonaws.com", "ConsoleLogin");
    r["userIdentity"] = json!({"type": "IAMUser", "principalId": "", "accountId": "123456789012", "accessKeyId": "",
                               "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"});
    r["responseElements"] = json!({"ConsoleLogin": "Failure"});
    r["errorMessage"] = json!("Failed authentication");
    r["additionalEventData"] = json!({"LoginTo": "https://console.aws.amazon.com/", "MobileVersion": "No", "MFAUsed": "No"});
    r["eventType"] = json!("AwsConsoleSignIn");
    r.as_object_mut().unwrap().remove("requestID");
    let row = map(&r);
    assert_eq!(row["class_name"], "Authentication");
    assert_eq!(row["status"], "Failure");
    assert_eq!(row["is_mfa"], false);
    assert_eq!(row["api"]["request"]["uid"], "''");
    assert_eq!(
        row["user"],
        json!({"uid_alt": "", "name": "HIDDEN_DUE_TO_SECURITY_REASONS"})
    );
    assert_eq!(
        row["dst_endpoint"]["svc_name"],
        "https://console.aws.amazon.com/"
    );
    assert_eq!(row["unmapped"]["additionalEventData.MobileVersion"], "No");
    assert!(row["unmapped"].get("additionalEventData.LoginTo").is_none());
    assert!(row["unmapped"].get("additionalEventData.MFAUsed").is_none());
}

#[test]
fn identity_center_user_on_behalf_of() {
    let mut r = base("sso.amazonaws.com", "ListAccounts");
    r["userIdentity"] = json!({"type": "IdentityCenterUser", "accountId": "123456789012",
        "onBehalfOf": {"userId": "u-123", "identityStoreArn": "arn:aws:identitystore::123456789012:identitystore/d-1"},
        "credentialId": "cred-9"});
    let row = map(&r);
    assert_eq!(
        row["actor"]["user"],
        json!({"type": "IdentityCenterUser", "uid_alt": "u-123", "account": {"uid": "123456789012"}, "credential_uid": "cred-9"})
    );
    // Not in Security Lake's v2 table (idp.uid), so it stays unmapped.
    assert_eq!(
        row["unmapped"]["userIdentity.onBehalfOf.identityStoreArn"],
        "arn:aws:identitystore::123456789012:identitystore/d-1"
    );
    assert!(
        row["unmapped"]
            .get("userIdentity.onBehalfOf.userId")
            .is_none()
    );
}

#[test]
fn assumed_role_session_context() {
    let mut r = base("ec2.amazonaws.com", "RunInstances");
    r["userIdentity"] = json!({"type": "AssumedRole", "principalId": "AROA:bob", "arn": "arn:aws:sts::123456789012:assumed-role/Dev/bob",
        "accountId": "123456789012", "accessKeyId": "ASIA1",
        "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROA", "arn": "arn:aws:iam::123456789012:role/Dev",
                                             "accountId": "123456789012", "userName": "Dev"},
                           "webIdFederationData": {"federatedProvider": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
                                                   "attributes": {"sub": "repo:x"}},
                           "attributes": {"creationDate": "2024-03-09T11:00:00Z", "mfaAuthenticated": "true"},
                           "sourceIdentity": "bob@example.com"}});
    let row = map(&r);
    assert_eq!(row["activity_id"], 1);
    assert_eq!(
        row["actor"]["session"],
        json!({"created_time_dt": "2024-03-09T11:00:00Z", "is_mfa": true, "issuer": "arn:aws:iam::123456789012:role/Dev"})
    );
    assert_eq!(
        row["actor"]["idp"]["name"],
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    );
    let um = &row["unmapped"];
    assert_eq!(
        um["userIdentity.sessionContext.sessionIssuer.userName"],
        "Dev"
    );
    assert_eq!(
        um["userIdentity.sessionContext.webIdFederationData.attributes.sub"],
        "repo:x"
    );
    assert_eq!(
        um["userIdentity.sessionContext.sourceIdentity"],
        "bob@example.com"
    );
    assert!(
        um.get("userIdentity.sessionContext.attributes.creationDate")
            .is_none()
    );
    assert!(um.get("userIdentity.arn").is_none());
}

#[test]
fn s3_data_event_resources_and_sources() {
    let mut r = base("s3.amazonaws.com", "GetObject");
    r["eventCategory"] = json!("Data");
    r["managementEvent"] = json!(false);
    r["resources"] = json!([
        {"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::bkt/key.txt"},
        {"accountId": "123456789012", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::bkt"},
        {"type": "AWS::S3::Object", "ARNPrefix": "arn:aws:s3:::bkt/logs/"}
    ]);
    r["additionalEventData"] =
        json!({"bytesTransferredIn": 0, "bytesTransferredOut": 33120, "x-amz-id-2": "abc=="});
    let (row, source) = map_with(&r, &ObjectContext::default()).unwrap();
    assert_eq!(source, Source::S3Data);
    assert_eq!(
        row["resources"],
        json!([{"uid": "arn:aws:s3:::bkt/key.txt", "type": "AWS::S3::Object"},
               {"uid": "arn:aws:s3:::bkt", "owner": {"account": {"uid": "123456789012"}}, "type": "AWS::S3::Bucket"}])
    );
    assert_eq!(
        row["unmapped"]["resources[].ARNPrefix"],
        "arn:aws:s3:::bkt/logs/"
    );
    assert_eq!(row["unmapped"]["resources[].type"], "AWS::S3::Object");
    assert_eq!(
        row["unmapped"]["additionalEventData.bytesTransferredOut"],
        "33120"
    );
    assert_eq!(row["metadata"]["product"]["feature"]["name"], "Data");
    let obs = observables(&row);
    assert_eq!(
        obs.iter()
            .filter(|(n, t)| n == "resources[].uid" && *t == 10)
            .count(),
        2
    );
}

#[test]
fn account_change_policy_and_target() {
    let mut r = base("iam.amazonaws.com", "AttachRolePolicy");
    r["requestParameters"] =
        json!({"roleName": "Deploy", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"});
    r["resources"] =
        json!([{"ARN": "arn:aws:iam::123456789012:role/Deploy", "type": "AWS::IAM::Role"}]);
    let row = map(&r);
    assert_eq!(row["class_uid"], 3001);
    assert_eq!(row["type_name"], "Account Change: Attach Policy");
    assert_eq!(
        row["policy"],
        json!({"uid": "arn:aws:iam::aws:policy/AdministratorAccess"})
    );
    assert_eq!(row["user"], json!({"name": "Deploy"}));
    // resources[] is an API Activity attribute: in other classes it stays unmapped.
    assert!(row.get("resources").is_none());
    assert_eq!(
        row["unmapped"]["resources[].ARN"],
        "arn:aws:iam::123456789012:role/Deploy"
    );

    let mut r = base("iam.amazonaws.com", "UpdateAccountPasswordPolicy");
    r["requestParameters"] = json!({"minimumPasswordLength": 14});
    let row = map(&r);
    assert_eq!(
        row["user"],
        json!({"uid": "arn:aws:iam::123456789012:user/alice", "uid_alt": "AIDAEXAMPLE", "name": "alice"}),
        "no target account in the event: the caller's own"
    );
}

#[test]
fn fallbacks_and_lenient_types() {
    let ctx = ObjectContext {
        account: Some("999999999999".into()),
        region: Some("us-west-2".into()),
    };
    let mut r = base("ec2.amazonaws.com", "DescribeRegions");
    let o = r.as_object_mut().unwrap();
    o.remove("recipientAccountId");
    o.remove("awsRegion");
    o.remove("eventCategory");
    o.remove("userIdentity");
    o.insert(
        "requestParameters".into(),
        serde_json::from_str(r#"{ "a" : [ 1 , 2 ] , "s" : "x y" }"#).unwrap(),
    );
    let row = map_with(&r, &ctx).unwrap().0;
    assert_eq!(row["cloud"]["region"], "us-west-2");
    assert_eq!(
        row["metadata"]["product"]["feature"]["name"],
        "Management, Data, and Insights"
    );
    assert_eq!(
        row["actor"]["user"],
        json!({"type": "Unknown", "name": "Unknown"})
    );
    assert_eq!(row["unmapped"]["readOnly"], "true");
    assert!(row["unmapped"].get("recipientAccountId").is_none());
}

#[test]
fn records_that_must_be_refused() {
    let ctx = ObjectContext::default();
    type Case = (Value, fn(&MapError) -> bool);
    let cases: Vec<Case> = vec![
        (
            {
                let mut r = base("a.amazonaws.com", "X");
                r.as_object_mut().unwrap().remove("eventTime");
                r
            },
            |e| matches!(e, MapError::Missing("eventTime")),
        ),
        (
            {
                let mut r = base("a.amazonaws.com", "X");
                r.as_object_mut().unwrap().remove("eventID");
                r
            },
            |e| matches!(e, MapError::Missing("eventID")),
        ),
        (
            {
                let mut r = base("a.amazonaws.com", "X");
                r["eventTime"] = json!("not-a-time");
                r
            },
            |e| matches!(e, MapError::BadTime(_)),
        ),
        (
            {
                let mut r = base("a.amazonaws.com", "X");
                r["eventTime"] = json!("1969-12-31T23:59:59Z");
                r
            },
            |e| matches!(e, MapError::BadTime(_)),
        ),
        (
            {
                let mut r = base("a.amazonaws.com", "X");
                r["awsRegion"] = json!("../../etc");
                r
            },
            |e| matches!(e, MapError::BadRegion(_)),
        ),
        (
            {
                let mut r = base("a.amazonaws.com", "X");
                r["recipientAccountId"] = json!("12/../34");
                r
            },
            |e| matches!(e, MapError::BadAccount(_)),
        ),
        (
            {
                let mut r = base("a.amazonaws.com", "X");
                r["recipientAccountId"] = json!("123456789012\u{0}");
                r
            },
            |e| matches!(e, MapError::BadAccount(_)),
        ),
        (
            {
                let mut r = base("a.amazonaws.com", "X");
                r["eventType"] = json!("AwsCloudTrailInsight");
                r
            },
            |e| matches!(e, MapError::InsightRecord),
        ),
        (
            {
                let mut r = base("a.amazonaws.com", "X");
                r.as_object_mut().unwrap().remove("recipientAccountId");
                r.as_object_mut().unwrap().remove("userIdentity");
                r
            },
            |e| matches!(e, MapError::Missing("recipientAccountId")),
        ),
    ];
    let mut b = OcsfBuilder::new();
    for (rec, check) in cases {
        let bytes = serde_json::to_vec(&rec).unwrap();
        let err = b.append_bytes(&bytes, &ctx).unwrap_err();
        assert!(check(&err), "{err:?}");
    }
    for bad in [&b"5"[..], b"[]", b"{", b"{}"] {
        assert!(b.append_bytes(bad, &ctx).is_err());
    }
    assert_eq!(b.len(), 0, "refused records append nothing");
    assert_eq!(b.finish().unwrap().num_rows(), 0);
}

#[test]
fn lone_surrogate_escapes_are_kept_not_taken_for_absent() {
    // Fuzz finding (fuzz/ `strings`, `json_record`): a string with an escape that is
    // no Unicode scalar read as a missing field, so the key's region stood in for the
    // record's and an errorCode was lost (status Success).
    let ctx = ObjectContext {
        account: Some("123456789012".into()),
        region: Some("us-east-1".into()),
    };
    let raw = |r: &Value, escape: &str| serde_json::to_string(r).unwrap().replace("@@", escape);
    let mut b = OcsfBuilder::new();

    let mut r = base("ec2.amazonaws.com", "DescribeInstances");
    r["awsRegion"] = json!("@@");
    let err = b
        .append_bytes(raw(&r, r"\ud800").as_bytes(), &ctx)
        .unwrap_err();
    assert!(matches!(err, MapError::BadRegion(_)), "{err:?}");

    let mut r = base("ec2.amazonaws.com", "DescribeInstances");
    r["errorCode"] = json!("Denied@@");
    b.append_bytes(raw(&r, r"\udc00").as_bytes(), &ctx).unwrap();
    let batch = b.finish().unwrap();
    let rows: Value = serde_json::from_slice(&to_json_array(&batch).unwrap()).unwrap();
    assert_eq!(rows[0]["status"], "Failure");
    assert_eq!(rows[0]["api"]["response"]["error"], r"Denied\udc00");
    assert_eq!(rows[0]["cloud"]["region"], "eu-west-1");
}

#[test]
fn lanes_hold_the_rows_routed_to_them_and_a_refused_route_appends_nothing() {
    let ctx = ObjectContext::default();
    let mut b = OcsfBuilder::new();
    // Rows go to the lane of their region: eu-west-1 → 2, us-east-1 → 0 (lane 1 is
    // never named), in record order within each lane.
    let regions = [
        "eu-west-1",
        "us-east-1",
        "eu-west-1",
        "us-east-1",
        "eu-west-1",
    ];
    for (i, region) in regions.iter().enumerate() {
        let mut r = base("ec2.amazonaws.com", "DescribeVpcs");
        r["awsRegion"] = json!(region);
        r["eventID"] = json!(format!("evt-{i}"));
        let bytes = serde_json::to_vec(&r).unwrap();
        let rec = trailhouse_cloudtrail::Record::parse(&bytes).unwrap();
        let info = b
            .append_to(&rec, &ctx, |info| {
                Ok(Some(if info.region == "eu-west-1" { 2 } else { 0 }))
            })
            .unwrap();
        assert_eq!(info.region, *region);
    }
    // A route that finds no partition refuses the record; no lane gets a row.
    let bytes = serde_json::to_vec(&base("ec2.amazonaws.com", "DescribeVpcs")).unwrap();
    let rec = trailhouse_cloudtrail::Record::parse(&bytes).unwrap();
    let err = b
        .append_to(&rec, &ctx, |_| Err("no such partition".to_string()))
        .unwrap_err();
    assert_eq!(err, MapError::NoPartition("no such partition".into()));
    assert_eq!(b.len(), 5);
    // A route that keeps the record elsewhere accepts it (the row's facts come back)
    // and no lane gets a row.
    let info = b.append_to(&rec, &ctx, |_| Ok(None)).unwrap();
    assert_eq!(
        (&*info.region, info.class),
        ("eu-west-1", OcsfClass::ApiActivity)
    );
    assert_eq!(b.len(), 5);

    let ids = |batch: &arrow_array::RecordBatch| -> Vec<String> {
        let rows: Value = serde_json::from_slice(&to_json_array(batch).unwrap()).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{}@{}", r["metadata"]["uid"], r["cloud"]["region"]))
            .collect()
    };
    let lane2 = b.finish_lane(2).unwrap();
    assert_eq!(
        ids(&lane2),
        [
            r#""evt-0"@"eu-west-1""#,
            r#""evt-2"@"eu-west-1""#,
            r#""evt-4"@"eu-west-1""#
        ]
    );
    assert_eq!(b.len(), 2);
    assert_eq!(b.finish_lane(1).unwrap().num_rows(), 0);
    assert_eq!(b.finish_lane(7).unwrap().num_rows(), 0, "a lane never made");
    assert_eq!(
        ids(&b.finish().unwrap()),
        [r#""evt-1"@"us-east-1""#, r#""evt-3"@"us-east-1""#]
    );
    assert!(b.is_empty());

    // Finished lanes take rows again, and their batches fit their rows: the slack of
    // a builder's growth (here 3 values of ~1 KB: capacity 1, 2, then 4 KB) is not
    // carried into the batch.
    let mut r = base("ec2.amazonaws.com", "DescribeVpcs");
    r["requestParameters"] = json!({"filter": "x".repeat(1000)});
    let bytes = serde_json::to_vec(&r).unwrap();
    let rec = trailhouse_cloudtrail::Record::parse(&bytes).unwrap();
    for _ in 0..3 {
        b.append_to(&rec, &ctx, |_| Ok(Some(2))).unwrap();
    }
    let batch = b.finish_lane(2).unwrap();
    assert_eq!(ids(&batch), [r#""evt-1"@"eu-west-1""#; 3]);
    let data = batch.column_by_name("api").unwrap();
    let data = data
        .as_any()
        .downcast_ref::<arrow_array::StructArray>()
        .unwrap();
    let req = data.column_by_name("request").unwrap();
    let req = req
        .as_any()
        .downcast_ref::<arrow_array::StructArray>()
        .unwrap();
    let json = req.column_by_name("data").unwrap();
    let values = json
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap()
        .values();
    assert!(values.len() > 3000);
    assert!(
        values.capacity() < values.len() + 64,
        "{} bytes held for {}",
        values.capacity(),
        values.len()
    );
}
