//! Records, batches and a partition key shared by this crate's integration tests.

use arrow_array::RecordBatch;
use trailhouse_lake::PartitionKey;
use trailhouse_ocsf::{ObjectContext, OcsfBuilder, OcsfClass, Source};

/// A CloudTrail management event with this eventID and eventTime.
pub fn record(id: &str, time: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","principalId":"AIDA","arn":"arn:aws:iam::123456789012:user/a","accountId":"123456789012","userName":"a"}},"eventTime":"{time}","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","sourceIPAddress":"10.0.0.1","userAgent":"ua","requestParameters":{{"x":1}},"responseElements":null,"requestID":"r","eventID":"{id}","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management"}}"#
    )
}

/// The OCSF rows of `records`.
pub fn batch(records: &[String]) -> RecordBatch {
    let ctx = ObjectContext::default();
    let mut b = OcsfBuilder::new();
    for r in records {
        b.append_bytes(r.as_bytes(), &ctx).unwrap();
    }
    b.finish().unwrap()
}

/// The partition of [`record`]'s events.
pub fn key() -> PartitionKey {
    PartitionKey::new(
        Source::CloudTrailMgmt,
        OcsfClass::ApiActivity,
        "us-east-1",
        "123456789012",
        20240102,
    )
    .unwrap()
}
