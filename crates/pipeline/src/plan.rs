//! The replay plan of a trail bucket: which `(account, region, day)` prefixes to
//! read, found from CloudTrail's key layout so that nothing is listed that will not
//! be read. It never relies on "start after the last key seen" (a known cause of
//! silently skipped files in other tools): each day prefix is listed whole.

use aws_sdk_s3::Client;

use crate::store::{StoreError, sdk_error};

/// What to replay.
#[derive(Debug, Clone, Default)]
pub struct PlanFilter {
    /// First day (`YYYYMMDD`), inclusive.
    pub from: Option<u32>,
    /// Last day (`YYYYMMDD`), inclusive.
    pub to: Option<u32>,
    /// Only these accounts (empty: all).
    pub accounts: Vec<String>,
    /// Only these regions (empty: all).
    pub regions: Vec<String>,
}

/// One day of one account and region: `…/AWSLogs/[o-org/]{account}/CloudTrail/{region}/YYYY/MM/DD/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct DayPrefix {
    /// The key prefix, ending in `/`.
    pub prefix: String,
    /// The account.
    pub account: String,
    /// The region.
    pub region: String,
    /// The day, `YYYYMMDD`.
    pub day: u32,
}

/// Lists the common prefixes directly under `prefix`.
async fn children(s3: &Client, bucket: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error("list", format!("s3://{bucket}/{prefix}"), e))?;
        for p in page.common_prefixes() {
            if let Some(p) = p.prefix() {
                out.push(p.to_string());
            }
        }
    }
    Ok(out)
}

/// The last path segment of a prefix ending in `/`.
fn segment(prefix: &str) -> &str {
    prefix
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
}

/// Every day from `from` to `to` (`YYYYMMDD`, inclusive), in order.
pub fn days_between(from: u32, to: u32) -> Vec<u32> {
    use trailhouse_cloudtrail::time::{parse_rfc3339_ms, utc_day};
    let ms = |d: u32| {
        parse_rfc3339_ms(&format!(
            "{:04}-{:02}-{:02}T00:00:00Z",
            d / 10000,
            d / 100 % 100,
            d % 100
        ))
    };
    let (Some(mut t), Some(end)) = (ms(from), ms(to)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while t <= end {
        out.push(utc_day(t));
        t += 86_400_000;
    }
    out
}

/// Plans the replay of `bucket` under `base` (a prefix before `AWSLogs/`, or one
/// that already ends in `AWSLogs/`).
pub async fn plan(
    s3: &Client,
    bucket: &str,
    base: &str,
    filter: &PlanFilter,
) -> Result<Vec<DayPrefix>, StoreError> {
    let base = base.trim_start_matches('/');
    let awslogs = if base.is_empty() {
        "AWSLogs/".to_string()
    } else if base.trim_end_matches('/').ends_with("AWSLogs") {
        format!("{}/", base.trim_end_matches('/'))
    } else {
        format!("{}/AWSLogs/", base.trim_end_matches('/'))
    };
    // Accounts, through organization ids where the trail is an organization trail.
    let mut accounts: Vec<(String, String)> = Vec::new();
    for p in children(s3, bucket, &awslogs).await? {
        let seg = segment(&p).to_string();
        if seg.starts_with("o-") {
            for a in children(s3, bucket, &p).await? {
                accounts.push((segment(&a).to_string(), a));
            }
        } else {
            accounts.push((seg, p));
        }
    }
    accounts.retain(|(a, _)| filter.accounts.is_empty() || filter.accounts.contains(a));
    let mut out = Vec::new();
    for (account, acct_prefix) in accounts {
        for region_prefix in children(s3, bucket, &format!("{acct_prefix}CloudTrail/")).await? {
            let region = segment(&region_prefix).to_string();
            if !filter.regions.is_empty() && !filter.regions.contains(&region) {
                continue;
            }
            let days: Vec<u32> = match (filter.from, filter.to) {
                // A bounded range is enumerated, not listed.
                (Some(f), Some(t)) => days_between(f, t),
                _ => {
                    let mut found = Vec::new();
                    for y in children(s3, bucket, &region_prefix).await? {
                        for m in children(s3, bucket, &y).await? {
                            for d in children(s3, bucket, &m).await? {
                                let text = format!("{}{}{}", segment(&y), segment(&m), segment(&d));
                                if let Ok(day) = text.parse::<u32>() {
                                    found.push(day);
                                }
                            }
                        }
                    }
                    found.retain(|d| {
                        filter.from.is_none_or(|f| *d >= f) && filter.to.is_none_or(|t| *d <= t)
                    });
                    found
                }
            };
            for day in days {
                out.push(DayPrefix {
                    prefix: format!(
                        "{region_prefix}{:04}/{:02}/{:02}/",
                        day / 10000,
                        day / 100 % 100,
                        day % 100
                    ),
                    account: account.clone(),
                    region: region.clone(),
                    day,
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every object key under a prefix (all pages), with its size, sorted.
pub async fn objects(
    s3: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<(String, u64)>, StoreError> {
    let mut out = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error("list", format!("s3://{bucket}/{prefix}"), e))?;
        for o in page.contents() {
            if let Some(k) = o.key() {
                out.push((k.to_string(), o.size().unwrap_or(0).max(0) as u64));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_ranges() {
        assert_eq!(
            days_between(20240227, 20240302),
            vec![20240227, 20240228, 20240229, 20240301, 20240302]
        );
        assert_eq!(days_between(20241231, 20250101), vec![20241231, 20250101]);
        assert!(days_between(20240102, 20240101).is_empty());
        assert!(days_between(20241301, 20241302).is_empty());
        assert_eq!(segment("AWSLogs/o-abc/123/"), "123");
    }
}
