//! Where a lake is: a local folder or `s3://bucket/prefix`, as an object store, the
//! URL DataFusion knows it by, and the prefix inside the store.

use std::net::IpAddr;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use url::Url;

use crate::QueryError;

/// How to reach S3. Unset fields come from the environment, as the AWS CLI and the
/// other `trailhouse` commands read it.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint URL (S3-compatible stores, emulators). Default: `AWS_ENDPOINT_URL_S3`,
    /// then `AWS_ENDPOINT_URL`, else AWS.
    pub endpoint: Option<String>,
    /// Region. Default: `AWS_REGION`, then `AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-hosted style.
    pub path_style: bool,
    /// Credentials to use. `None`: object_store's chain (`AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, web identity, ECS, instance
    /// metadata).
    pub credentials: Option<S3Credentials>,
}

/// Static S3 credentials (e.g. resolved by the AWS SDK's default chain).
#[derive(Clone, Default)]
pub struct S3Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token, for temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A lake's location, resolved.
pub(crate) struct Location {
    /// The store holding the lake.
    pub store: Arc<dyn ObjectStore>,
    /// The URL the store is registered under in DataFusion (`file:///`, `s3://bucket`).
    pub store_url: Url,
    /// The lake's root inside the store (no trailing `/`; empty for a bucket root).
    pub root: StorePath,
    /// How the lake was named, for messages.
    pub display: String,
}

impl Location {
    /// The `ListingTableUrl` string of a folder `rel` (relative to the root, `/`
    /// separated, no leading or trailing `/`).
    pub fn table_url(&self, rel: &str) -> String {
        let mut path = self.root.to_string();
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(rel);
        let base = self.store_url.as_str().trim_end_matches('/');
        format!("{base}/{path}/")
    }

    /// The store path of `rel` below the root.
    pub fn path(&self, rel: &str) -> StorePath {
        let mut p = self.root.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }
}

/// Resolves `lake`: `s3://bucket[/prefix]` or a local folder that must exist.
pub(crate) fn locate(lake: &str, s3: &S3Options) -> Result<Location, QueryError> {
    if let Some(rest) = lake.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(QueryError::Lake(format!("{lake}: no bucket in the S3 URI")));
        }
        let store = s3_store(bucket, s3)?;
        let store_url = Url::parse(&format!("s3://{bucket}"))
            .map_err(|e| QueryError::Lake(format!("{lake}: {e}")))?;
        let root = StorePath::parse(prefix.trim_matches('/'))
            .map_err(|e| QueryError::Lake(format!("{lake}: {e}")))?;
        return Ok(Location {
            store,
            store_url,
            root,
            display: lake.to_string(),
        });
    }
    if lake.contains("://") {
        return Err(QueryError::Lake(format!(
            "{lake}: a lake is a local folder or s3://bucket/prefix"
        )));
    }
    let dir = std::path::Path::new(lake);
    let meta = std::fs::metadata(dir)
        .map_err(|e| QueryError::Lake(format!("{lake}: cannot open the lake folder: {e}")))?;
    if !meta.is_dir() {
        return Err(QueryError::Lake(format!("{lake}: not a folder")));
    }
    let abs = dir
        .canonicalize()
        .map_err(|e| QueryError::Lake(format!("{lake}: {e}")))?;
    let root = StorePath::from_filesystem_path(&abs)
        .map_err(|e| QueryError::Lake(format!("{lake}: {e}")))?;
    let store_url = Url::parse("file:///").map_err(|e| QueryError::Lake(e.to_string()))?;
    Ok(Location {
        store: Arc::new(LocalFileSystem::new()),
        store_url,
        root,
        display: lake.to_string(),
    })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether `endpoint`'s host is a loopback address (`localhost`, 127.0.0.0/8, ::1).
fn is_loopback(endpoint: &str) -> bool {
    let Ok(url) = Url::parse(endpoint) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn s3_store(bucket: &str, o: &S3Options) -> Result<Arc<dyn ObjectStore>, QueryError> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let region = o
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_string());
    b = b.with_region(region);
    let endpoint = o
        .endpoint
        .clone()
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    if let Some(ep) = endpoint {
        if ep.starts_with("http://") {
            // Plain HTTP only to this machine (an emulator), or when asked explicitly.
            let asked = env("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            if !is_loopback(&ep) && !asked {
                return Err(QueryError::Lake(format!(
                    "endpoint {ep} is plain HTTP and not loopback; use https, or set \
                     AWS_ALLOW_HTTP=true"
                )));
            }
            b = b.with_allow_http(true);
        }
        if o.path_style {
            b = b.with_endpoint(ep);
        } else {
            // Virtual-hosted style on a custom endpoint, as the AWS SDK does it:
            // the bucket becomes the first label of the host.
            let mut url =
                Url::parse(&ep).map_err(|e| QueryError::Lake(format!("endpoint {ep}: {e}")))?;
            let host = url.host_str().unwrap_or_default().to_string();
            url.set_host(Some(&format!("{bucket}.{host}")))
                .map_err(|e| QueryError::Lake(format!("endpoint {ep}: {e}")))?;
            b = b
                .with_endpoint(url.as_str().trim_end_matches('/'))
                .with_virtual_hosted_style_request(true);
        }
    } else {
        b = b.with_virtual_hosted_style_request(!o.path_style);
    }
    if let Some(c) = &o.credentials {
        b = b
            .with_access_key_id(&c.access_key_id)
            .with_secret_access_key(&c.secret_access_key);
        if let Some(t) = &c.session_token {
            b = b.with_token(t);
        }
    }
    let store = b
        .build()
        .map_err(|e| QueryError::Lake(format!("s3://{bucket}: {e}")))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback() {
        assert!(is_loopback("http://127.0.0.1:5000"));
        assert!(is_loopback("http://localhost:9000/"));
        assert!(is_loopback("http://[::1]:80"));
        assert!(!is_loopback("http://example.com"));
        assert!(!is_loopback("not a url"));
    }
}
