//! Where the lake lives: a local folder or an S3 prefix, behind one small type.
//! S3 writes are conditional (`If-None-Match: *`): file names are derived from their
//! content, so an object that already exists holds the same rows and a retry does
//! not multiply files. Large files go up in parts.

use std::path::PathBuf;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::notification::ObjectRef;
use crate::quarantine::{QUARANTINE_DIR, safe_name, write_atomic};

/// Above this size a Parquet file is uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 64 << 20;
const PART_SIZE: usize = 16 << 20;

/// A failed store operation, with the location it concerned.
#[derive(Debug, thiserror::Error)]
#[error("{op} {location}: {message}")]
pub struct StoreError {
    /// What was attempted (`put`, `get`, `copy`).
    pub op: &'static str,
    /// `s3://bucket/key` or a path.
    pub location: String,
    /// The error, as the SDK or the OS put it.
    pub message: String,
}

/// The lake root.
#[derive(Debug, Clone)]
pub enum Lake {
    /// A local folder.
    Local(PathBuf),
    /// An S3 bucket and key prefix (empty or ending in `/`).
    S3 {
        /// Client for the lake bucket.
        client: Client,
        /// Bucket.
        bucket: String,
        /// Prefix, empty or ending in `/`.
        prefix: String,
    },
}

/// Splits `s3://bucket/prefix` into bucket and prefix (normalized to end in `/`).
pub fn parse_s3_uri(uri: &str) -> Option<(String, String)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Some((bucket.to_string(), prefix))
}

/// An SDK error with its whole source chain: the SDK's own Display is terse
/// ("service error"); the chain says what happened (NoSuchKey, AccessDenied, …).
pub fn sdk_error_message<E: std::error::Error>(e: &E) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// A [`StoreError`] for an SDK call on `location`.
pub(crate) fn sdk_error<E: std::error::Error>(
    op: &'static str,
    location: String,
    e: E,
) -> StoreError {
    StoreError {
        op,
        location,
        message: sdk_error_message(&e),
    }
}

impl Lake {
    /// Where `rel` lives, for messages.
    pub fn location(&self, rel: &str) -> String {
        match self {
            Lake::Local(root) => root.join(rel).display().to_string(),
            Lake::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}{rel}"),
        }
    }

    /// Writes `bytes` at `rel` (relative to the lake root). Returns false when the
    /// object already existed (S3 conditional write refused: same name, same rows).
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<bool, StoreError> {
        match self {
            Lake::Local(root) => {
                let path = root.join(rel);
                blocking("put", &path, move |p| write_atomic(p, &bytes)).await?;
                Ok(true)
            }
            Lake::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}{rel}");
                if bytes.len() > MULTIPART_THRESHOLD {
                    return multipart(client, bucket, &key, bytes).await;
                }
                let r = client
                    .put_object()
                    .bucket(bucket)
                    .key(&key)
                    .if_none_match("*")
                    .body(ByteStream::from(bytes))
                    .send()
                    .await;
                match r {
                    Ok(_) => Ok(true),
                    Err(e) if is_precondition_failed(&e) => Ok(false),
                    Err(e) => Err(sdk_error("put", format!("s3://{bucket}/{key}"), e)),
                }
            }
        }
    }

    /// Copies a whole source object into the quarantine (server-side within S3; a
    /// streamed download for a local lake) and writes its reason beside it.
    pub async fn quarantine_object(
        &self,
        s3: &Client,
        src: &ObjectRef,
        reason: &str,
        records_delivered: u64,
    ) -> Result<(), StoreError> {
        let name = safe_name(&format!("{}/{}", src.bucket, src.key));
        let rel = format!("{QUARANTINE_DIR}/objects/{name}");
        let src_loc = format!("s3://{}/{}", src.bucket, src.key);
        match self {
            Lake::S3 {
                client,
                bucket,
                prefix,
            } => {
                client
                    .copy_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{rel}"))
                    .copy_source(format!("{}/{}", src.bucket, url_encode_key(&src.key)))
                    .send()
                    .await
                    .map_err(|e| sdk_error("copy", src_loc.clone(), e))?;
            }
            Lake::Local(root) => {
                let obj = s3
                    .get_object()
                    .bucket(&src.bucket)
                    .key(&src.key)
                    .send()
                    .await
                    .map_err(|e| sdk_error("get", src_loc.clone(), e))?;
                let path = root.join(&rel);
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|e| StoreError {
                            op: "put",
                            location: path.display().to_string(),
                            message: e.to_string(),
                        })?;
                }
                let mut file = tokio::fs::File::create(&path)
                    .await
                    .map_err(|e| StoreError {
                        op: "put",
                        location: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                let mut body = obj.body.into_async_read();
                tokio::io::copy(&mut body, &mut file)
                    .await
                    .map_err(|e| StoreError {
                        op: "copy",
                        location: src_loc.clone(),
                        message: e.to_string(),
                    })?;
            }
        }
        let note = serde_json::json!({
            "object": src_loc,
            "reason": reason,
            "records_delivered_before_error": records_delivered,
            "copy": name,
        });
        let mut text = serde_json::to_vec_pretty(&note).unwrap_or_default();
        text.push(b'\n');
        self.overwrite(&format!("{rel}.reason.json"), text).await
    }

    /// Files under `rel_prefix` (relative to the lake root, ending in `/`), as paths
    /// relative to the lake root, sorted. A missing folder lists nothing.
    pub async fn list(&self, rel_prefix: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Lake::Local(root) => {
                let root = root.clone();
                blocking("list", &root.join(rel_prefix), move |start| {
                    let mut out = Vec::new();
                    let mut stack = vec![start.to_path_buf()];
                    while let Some(dir) = stack.pop() {
                        let entries = match std::fs::read_dir(&dir) {
                            Ok(e) => e,
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                            Err(e) => return Err(e),
                        };
                        for entry in entries {
                            let entry = entry?;
                            let path = entry.path();
                            if entry.file_type()?.is_dir() {
                                stack.push(path);
                            } else if let Ok(rel) = path.strip_prefix(&root) {
                                out.push(rel.to_string_lossy().replace('\\', "/"));
                            }
                        }
                    }
                    out.sort();
                    Ok(out)
                })
                .await
            }
            Lake::S3 {
                client,
                bucket,
                prefix,
            } => {
                let full = format!("{prefix}{rel_prefix}");
                // Sorted keys minus a common prefix stay sorted.
                Ok(crate::plan::objects(client, bucket, &full)
                    .await?
                    .into_iter()
                    .filter_map(|(k, _)| k.strip_prefix(prefix.as_str()).map(str::to_string))
                    .collect())
            }
        }
    }

    /// Reads the whole file at `rel`.
    pub async fn get(&self, rel: &str) -> Result<bytes::Bytes, StoreError> {
        match self {
            Lake::Local(root) => blocking("get", &root.join(rel), |p| std::fs::read(p))
                .await
                .map(bytes::Bytes::from),
            Lake::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}{rel}");
                let loc = format!("s3://{bucket}/{key}");
                let resp = client
                    .get_object()
                    .bucket(bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| sdk_error("get", loc.clone(), e))?;
                resp.body
                    .collect()
                    .await
                    .map(|b| b.into_bytes())
                    .map_err(|e| StoreError {
                        op: "get",
                        location: loc,
                        message: e.to_string(),
                    })
            }
        }
    }

    /// Writes a file that may be rewritten (quarantine notes): unconditional.
    pub async fn overwrite(&self, rel: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        match self {
            Lake::Local(_) => self.put(rel, bytes).await.map(|_| ()),
            Lake::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!("{prefix}{rel}");
                client
                    .put_object()
                    .bucket(bucket)
                    .key(&key)
                    .body(ByteStream::from(bytes))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error("put", format!("s3://{bucket}/{key}"), e))
            }
        }
    }
}

/// Runs file-system work for `op` on `path` off the async reactor; errors name both.
async fn blocking<T: Send + 'static>(
    op: &'static str,
    path: &std::path::Path,
    f: impl FnOnce(&std::path::Path) -> std::io::Result<T> + Send + 'static,
) -> Result<T, StoreError> {
    let location = path.display().to_string();
    let path = path.to_path_buf();
    match tokio::task::spawn_blocking(move || f(&path)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(StoreError {
            op,
            location,
            message: e.to_string(),
        }),
        Err(e) => Err(StoreError {
            op,
            location,
            message: e.to_string(),
        }),
    }
}

fn is_precondition_failed<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> bool
where
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::SdkError;
    match e {
        SdkError::ServiceError(s) => {
            let raw = format!("{:?}", s.raw());
            raw.contains("status: StatusCode(412)") || raw.contains("PreconditionFailed")
        }
        _ => false,
    }
}

/// Percent-encodes a key for `x-amz-copy-source` (everything but unreserved and `/`).
fn url_encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Abandons a multipart upload (best effort: the lake's lifecycle rule removes
/// leftovers).
async fn abort(client: &Client, bucket: &str, key: &str, upload_id: &str) {
    let _ = client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await;
}

async fn multipart(
    client: &Client,
    bucket: &str,
    key: &str,
    bytes: Vec<u8>,
) -> Result<bool, StoreError> {
    let loc = format!("s3://{bucket}/{key}");
    let up = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| sdk_error("put", loc.clone(), e))?;
    let upload_id = up.upload_id().unwrap_or_default().to_string();
    let mut parts = Vec::new();
    for (i, chunk) in bytes.chunks(PART_SIZE).enumerate() {
        let n = i as i32 + 1;
        let r = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload_id)
            .part_number(n)
            .body(ByteStream::from(chunk.to_vec()))
            .send()
            .await;
        match r {
            Ok(p) => parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .set_e_tag(p.e_tag().map(str::to_string))
                    .build(),
            ),
            Err(e) => {
                abort(client, bucket, key, &upload_id).await;
                return Err(sdk_error("put", loc, e));
            }
        }
    }
    let r = client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&upload_id)
        .if_none_match("*")
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await;
    match r {
        Ok(_) => Ok(true),
        Err(e) if is_precondition_failed(&e) => {
            abort(client, bucket, key, &upload_id).await;
            Ok(false)
        }
        Err(e) => Err(sdk_error("put", loc, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_uris() {
        assert_eq!(parse_s3_uri("s3://b"), Some(("b".into(), String::new())));
        assert_eq!(parse_s3_uri("s3://b/"), Some(("b".into(), String::new())));
        assert_eq!(
            parse_s3_uri("s3://b/p/q"),
            Some(("b".into(), "p/q/".into()))
        );
        assert_eq!(parse_s3_uri("s3://b/p/"), Some(("b".into(), "p/".into())));
        assert_eq!(parse_s3_uri("s3:///p"), None);
        assert_eq!(parse_s3_uri("/tmp/lake"), None);
    }

    #[test]
    fn copy_source_keys_are_encoded() {
        assert_eq!(
            url_encode_key("AWSLogs/1/a b+c%.json.gz"),
            "AWSLogs/1/a%20b%2Bc%25.json.gz"
        );
    }
}
