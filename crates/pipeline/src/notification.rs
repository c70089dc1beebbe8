//! What an SQS message says: the objects it names. Every shape that reaches a trail
//! queue is accepted (security-lake-spec.md §6): S3 event notifications (keys
//! URL-encoded), the same inside an SNS envelope (raw delivery on or off),
//! EventBridge "Object Created" events, CloudTrail's own SNS notification, and the
//! `s3:TestEvent` sent when a notification is configured. Parsing is lenient:
//! emulators and older senders leave fields out.

use serde_json::Value;

/// One S3 object named by a notification.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// Bucket name.
    pub bucket: String,
    /// Object key, decoded.
    pub key: String,
    /// Size in bytes, when the notification gives it.
    pub size: Option<u64>,
    /// ETag, when the notification gives it.
    pub etag: Option<String>,
}

/// What a message body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// Objects to process (possibly none, e.g. only `ObjectRemoved` events).
    Objects(Vec<ObjectRef>),
    /// `s3:TestEvent`: acknowledge and drop.
    TestEvent,
    /// Not a notification this worker understands; the reason says why.
    Unrecognized(String),
}

/// Parses an SQS message body.
pub fn parse(body: &str) -> Notification {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => match classify(&v, 0) {
            Notification::Objects(objects) => Notification::Objects(once_each(objects)),
            other => other,
        },
        Err(e) => Notification::Unrecognized(format!("body is not JSON: {e}")),
    }
}

/// Names each (bucket, key) once, whatever the shape: a multipart upload can be
/// announced twice, and CloudTrail's `s3ObjectKey` list is not promised unique.
fn once_each(mut objects: Vec<ObjectRef>) -> Vec<ObjectRef> {
    objects.sort();
    objects.dedup_by(|a, b| a.bucket == b.bucket && a.key == b.key);
    objects
}

fn classify(v: &Value, depth: u8) -> Notification {
    let Some(obj) = v.as_object() else {
        return Notification::Unrecognized("body is not a JSON object".into());
    };
    // SNS envelope: the real notification is a JSON string in `Message`.
    if obj.get("Type").and_then(Value::as_str) == Some("Notification") {
        let Some(inner) = obj.get("Message").and_then(Value::as_str) else {
            return Notification::Unrecognized("SNS envelope without a Message".into());
        };
        if depth > 0 {
            return Notification::Unrecognized("nested SNS envelopes".into());
        }
        return match serde_json::from_str::<Value>(inner) {
            Ok(inner) => classify(&inner, depth + 1),
            Err(e) => Notification::Unrecognized(format!("SNS Message is not JSON: {e}")),
        };
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Notification::TestEvent;
    }
    if let Some(records) = obj.get("Records").and_then(Value::as_array) {
        return s3_event(records);
    }
    if let (Some(bucket), Some(keys)) = (
        obj.get("s3Bucket").and_then(Value::as_str),
        obj.get("s3ObjectKey").and_then(Value::as_array),
    ) {
        // CloudTrail's SNS notification: keys are plain, not URL-encoded.
        let objects = keys
            .iter()
            .filter_map(Value::as_str)
            .map(|k| ObjectRef {
                bucket: bucket.to_string(),
                key: k.to_string(),
                size: None,
                etag: None,
            })
            .collect::<Vec<_>>();
        if objects.len() != keys.len() {
            return Notification::Unrecognized("s3ObjectKey holds a non-string".into());
        }
        return Notification::Objects(objects);
    }
    if obj.get("source").and_then(Value::as_str) == Some("aws.s3") {
        let detail_type = obj.get("detail-type").and_then(Value::as_str).unwrap_or("");
        if detail_type != "Object Created" {
            return Notification::Objects(Vec::new());
        }
        let detail = obj.get("detail");
        let bucket = detail
            .and_then(|d| d.pointer("/bucket/name"))
            .and_then(Value::as_str);
        let object = detail.and_then(|d| d.get("object"));
        let key = object.and_then(|o| o.get("key")).and_then(Value::as_str);
        return match (bucket, key) {
            (Some(b), Some(k)) => Notification::Objects(vec![ObjectRef {
                bucket: b.to_string(),
                key: k.to_string(),
                size: object.and_then(|o| o.get("size")).and_then(Value::as_u64),
                etag: object
                    .and_then(|o| o.get("etag"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }]),
            _ => Notification::Unrecognized(
                "EventBridge event without detail.bucket.name/object.key".into(),
            ),
        };
    }
    Notification::Unrecognized(
        "no Records, s3Bucket/s3ObjectKey, EventBridge event or s3:TestEvent".into(),
    )
}

fn s3_event(records: &[Value]) -> Notification {
    let mut out = Vec::new();
    for r in records {
        if r.get("eventSource").and_then(Value::as_str) != Some("aws:s3") {
            return Notification::Unrecognized(
                "Records entry whose eventSource is not aws:s3".into(),
            );
        }
        // Only creations name new trail objects; `eventName` has no `s3:` prefix.
        let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
        if !name.starts_with("ObjectCreated") {
            continue;
        }
        let bucket = r.pointer("/s3/bucket/name").and_then(Value::as_str);
        let key = r.pointer("/s3/object/key").and_then(Value::as_str);
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Notification::Unrecognized(
                "S3 event record without s3.bucket.name/s3.object.key".into(),
            );
        };
        out.push(ObjectRef {
            bucket: bucket.to_string(),
            key: form_decode(key),
            size: r.pointer("/s3/object/size").and_then(Value::as_u64),
            etag: r
                .pointer("/s3/object/eTag")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    Notification::Objects(out)
}

/// Decodes an S3 event key: form encoding (`+` is a space, `%XX` a byte). Invalid
/// escapes are kept as written; invalid UTF-8 is replaced, never fatal.
pub fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/09/111122223333_CloudTrail_us-east-1_20240309T1200Z_abc.json.gz";

    fn s3_body(key_encoded: &str) -> String {
        format!(
            r#"{{"Records":[{{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2024-03-09T12:00:01.000Z","eventName":"ObjectCreated:Put","s3":{{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{{"name":"trail-bucket","arn":"arn:aws:s3:::trail-bucket"}},"object":{{"key":"{key_encoded}","size":1024,"eTag":"abc","sequencer":"0A"}}}}}}]}}"#
        )
    }

    fn one(n: Notification) -> ObjectRef {
        match n {
            Notification::Objects(mut v) if v.len() == 1 => v.remove(0),
            other => panic!("expected one object, got {other:?}"),
        }
    }

    #[test]
    fn s3_event_keys_are_form_decoded() {
        let o = one(parse(&s3_body(&KEY.replace('/', "%2F"))));
        assert_eq!(o.bucket, "trail-bucket");
        assert_eq!(o.key, KEY);
        assert_eq!(o.size, Some(1024));
        assert_eq!(o.etag.as_deref(), Some("abc"));
        assert_eq!(one(parse(&s3_body("a+b%20c%2Bd%zz%"))).key, "a b c+d%zz%");
        assert_eq!(one(parse(&s3_body("caf%C3%A9"))).key, "café");
        assert_eq!(one(parse(&s3_body("bad%FF"))).key, "bad\u{FFFD}");
    }

    #[test]
    fn sns_envelopes_raw_or_not() {
        let inner = s3_body(KEY);
        let envelope = serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": inner, "Timestamp": "2024-03-09T12:00:02.000Z", "SignatureVersion": "1"
        });
        assert_eq!(one(parse(&envelope.to_string())).key, KEY);
        // Raw delivery: the body is the inner message itself.
        assert_eq!(one(parse(&inner)).key, KEY);
        let test_event = serde_json::json!({"Type": "Notification", "Message":
            r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2014-10-13T15:57:02.089Z","Bucket":"b"}"#});
        assert_eq!(parse(&test_event.to_string()), Notification::TestEvent);
    }

    #[test]
    fn cloudtrail_sns_notification_lists_plain_keys() {
        let body =
            format!(r#"{{"s3Bucket":"trail-bucket","s3ObjectKey":["{KEY}","a+b/c%2F.json.gz"]}}"#);
        match parse(&body) {
            Notification::Objects(v) => {
                assert_eq!(v.len(), 2);
                assert_eq!(v[0].key, KEY);
                assert_eq!(
                    v[1].key, "a+b/c%2F.json.gz",
                    "CloudTrail keys are not URL-encoded"
                );
            }
            other => panic!("{other:?}"),
        }
        let wrapped = serde_json::json!({"Type": "Notification", "Message": body});
        assert!(matches!(parse(&wrapped.to_string()), Notification::Objects(v) if v.len() == 2));
    }

    #[test]
    fn cloudtrail_sns_notification_names_each_object_once() {
        let body = format!(
            r#"{{"s3Bucket":"trail-bucket","s3ObjectKey":["{KEY}","other.json.gz","{KEY}"]}}"#
        );
        match parse(&body) {
            Notification::Objects(v) => {
                let keys: Vec<&str> = v.iter().map(|o| o.key.as_str()).collect();
                assert_eq!(keys, [KEY, "other.json.gz"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn eventbridge_object_created() {
        let body = format!(
            r#"{{"version":"0","id":"1","detail-type":"Object Created","source":"aws.s3","account":"1","time":"2021-11-12T00:00:00Z","region":"ca-central-1","resources":["arn:aws:s3:::b"],"detail":{{"version":"0","bucket":{{"name":"b"}},"object":{{"key":"{KEY}","size":5,"etag":"e"}},"reason":"PutObject"}}}}"#
        );
        let o = one(parse(&body));
        assert_eq!(
            (o.bucket.as_str(), o.key.as_str(), o.size),
            ("b", KEY, Some(5))
        );
        let deleted = body.replace("Object Created", "Object Deleted");
        assert_eq!(parse(&deleted), Notification::Objects(vec![]));
    }

    #[test]
    fn test_events_removals_and_duplicates() {
        assert_eq!(
            parse(
                r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2014-10-13T15:57:02.089Z","Bucket":"b","RequestId":"r","HostId":"h"}"#
            ),
            Notification::TestEvent
        );
        let removed = s3_body(KEY).replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert_eq!(parse(&removed), Notification::Objects(vec![]));
        // moto leaves out userIdentity and more; a multipart upload may be announced twice.
        let twice = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}},{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        assert_eq!(one(parse(twice)).key, "k");
    }

    #[test]
    fn poison_messages_are_unrecognized() {
        for body in [
            "not json",
            "[1,2]",
            "{}",
            r#"{"Type":"Notification"}"#,
            r#"{"Type":"Notification","Message":"{not json"}"#,
            r#"{"Records":[{"eventSource":"aws:sqs"}]}"#,
            r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{}}]}"#,
            r#"{"s3Bucket":"b","s3ObjectKey":[1]}"#,
            r#"{"source":"aws.s3","detail-type":"Object Created","detail":{}}"#,
        ] {
            assert!(
                matches!(parse(body), Notification::Unrecognized(_)),
                "{body}"
            );
        }
    }
}
