//! Where rows go: partition keys and the two bucket layouts, Security Lake's custom
//! source (`ext/…`, the default) and a mirror of its native layout (`aws/…`).

use std::fmt;

use trailhouse_ocsf::{OcsfClass, Source};

/// Version segment of the custom-source layout (`ext/{name}/{version}/…`).
pub const EXT_SOURCE_VERSION: &str = "1.0";
/// Version segment of the native layout (`aws/{SOURCE}/2.0/…`, OCSF 1.1.0).
pub const NATIVE_SOURCE_VERSION: &str = "2.0";

/// The bucket layout of the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Security Lake custom sources: `ext/{SOURCE}_{CLASS}/1.0/region=…/accountId=…/
    /// eventDay=…/`, one OCSF class per source name, as custom sources require.
    #[default]
    Ext,
    /// Security Lake's native layout, for a bucket of the user's own:
    /// `aws/{SOURCE}/2.0/region=…/accountId=…/eventDay=…/`.
    Native,
}

impl Layout {
    /// Parses `ext` or `native`.
    pub fn parse(s: &str) -> Option<Layout> {
        match s {
            "ext" | "custom" => Some(Layout::Ext),
            "native" | "aws" => Some(Layout::Native),
            _ => None,
        }
    }
}

/// Why a partition key was refused: a value that could escape or corrupt the prefix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartitionError {
    /// Not `[a-z0-9-]`, starting with a letter.
    #[error("invalid region {0:?} for a partition path")]
    Region(String),
    /// Not digits only.
    #[error("invalid account {0:?} for a partition path")]
    Account(String),
    /// Not a plausible `YYYYMMDD`.
    #[error("invalid event day {0}")]
    Day(u32),
}

/// One partition: source, class, region, account and UTC event day. Values are
/// validated on construction, so a key's path never leaves its prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    source: Source,
    class: OcsfClass,
    region: String,
    account: String,
    day: u32,
}

impl PartitionKey {
    /// Builds a key, refusing values that are not a region, an account or a day.
    pub fn new(
        source: Source,
        class: OcsfClass,
        region: &str,
        account: &str,
        day: u32,
    ) -> Result<Self, PartitionError> {
        if !is_region(region) {
            return Err(PartitionError::Region(region.to_string()));
        }
        if !is_account(account) {
            return Err(PartitionError::Account(account.to_string()));
        }
        let (m, d) = (day / 100 % 100, day % 100);
        if !(1..=12).contains(&m)
            || !(1..=31).contains(&d)
            || !(19_700_101..=99_991_231).contains(&day)
        {
            return Err(PartitionError::Day(day));
        }
        Ok(PartitionKey {
            source,
            class,
            region: region.to_string(),
            account: account.to_string(),
            day,
        })
    }

    /// The source.
    pub fn source(&self) -> Source {
        self.source
    }
    /// The OCSF class.
    pub fn class(&self) -> OcsfClass {
        self.class
    }
    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }
    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }
    /// The event day as `YYYYMMDD`.
    pub fn day(&self) -> u32 {
        self.day
    }

    /// Whether the key's values equal these (to reuse a key without allocating).
    pub fn matches(
        &self,
        source: Source,
        class: OcsfClass,
        region: &str,
        account: &str,
        day: u32,
    ) -> bool {
        self.source == source
            && self.class == class
            && self.day == day
            && self.region == region
            && self.account == account
    }

    /// The custom-source name of this key's (source, class): e.g.
    /// `CLOUD_TRAIL_MGMT_API_ACTIVITY`.
    pub fn ext_source_name(&self) -> String {
        format!("{}_{}", self.source.name(), self.class.snake())
    }

    /// The partition's directory in the lake, relative to the lake root, with a
    /// trailing `/`.
    pub fn dir(&self, layout: Layout) -> String {
        match layout {
            Layout::Ext => format!(
                "ext/{}/{EXT_SOURCE_VERSION}/region={}/accountId={}/eventDay={}/",
                self.ext_source_name(),
                self.region,
                self.account,
                self.day
            ),
            Layout::Native => format!(
                "aws/{}/{NATIVE_SOURCE_VERSION}/region={}/accountId={}/eventDay={}/",
                self.source.name(),
                self.region,
                self.account,
                self.day
            ),
        }
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}/{}",
            self.source.name(),
            self.class.name(),
            self.region,
            self.account,
            self.day
        )
    }
}

/// The partition directory of Detection Finding rows (insights), in either layout:
/// Security Lake has no native source for insights, so they are always a custom
/// source, `ext/CLOUD_TRAIL_INSIGHTS_DETECTION_FINDING/1.0/region=…/accountId=…/eventDay=…/`.
pub fn findings_dir(region: &str, account: &str, day: u32) -> Result<String, PartitionError> {
    // Validate through the one constructor (region, account and day rules).
    let key = PartitionKey::new(
        Source::CloudTrailMgmt,
        OcsfClass::ApiActivity,
        region,
        account,
        day,
    )?;
    Ok(format!(
        "ext/{}/{EXT_SOURCE_VERSION}/region={}/accountId={}/eventDay={}/",
        trailhouse_ocsf::finding::SOURCE_NAME,
        key.region,
        key.account,
        key.day
    ))
}

fn is_region(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_account(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Every (source, class) directory prefix a layout can hold, with the custom-source
/// or native source name it carries. Used by DDL and by readers of the lake.
pub fn table_prefixes(layout: Layout) -> Vec<(String, Source, Option<OcsfClass>)> {
    let mut out = Vec::new();
    for source in Source::ALL {
        match layout {
            Layout::Ext => {
                for class in OcsfClass::ALL {
                    if source != Source::CloudTrailMgmt && class != OcsfClass::ApiActivity {
                        continue; // data events are always API Activity
                    }
                    let name = format!("{}_{}", source.name(), class.snake());
                    out.push((
                        format!("ext/{name}/{EXT_SOURCE_VERSION}/"),
                        source,
                        Some(class),
                    ));
                }
            }
            Layout::Native => out.push((
                format!("aws/{}/{NATIVE_SOURCE_VERSION}/", source.name()),
                source,
                None,
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let k = PartitionKey::new(
            Source::CloudTrailMgmt,
            OcsfClass::ApiActivity,
            "us-east-1",
            "123456789012",
            20230921,
        )
        .unwrap();
        assert_eq!(
            k.dir(Layout::Ext),
            "ext/CLOUD_TRAIL_MGMT_API_ACTIVITY/1.0/region=us-east-1/accountId=123456789012/eventDay=20230921/"
        );
        assert_eq!(
            k.dir(Layout::Native),
            "aws/CLOUD_TRAIL_MGMT/2.0/region=us-east-1/accountId=123456789012/eventDay=20230921/"
        );
        let k = PartitionKey::new(
            Source::S3Data,
            OcsfClass::ApiActivity,
            "eu-west-2",
            "1",
            20240101,
        )
        .unwrap();
        assert_eq!(
            k.dir(Layout::Native),
            "aws/S3_DATA/2.0/region=eu-west-2/accountId=1/eventDay=20240101/"
        );
        assert_eq!(Layout::parse("native"), Some(Layout::Native));
        assert_eq!(Layout::parse("x"), None);
    }

    #[test]
    fn hostile_values_never_reach_a_path() {
        let mk = |r: &str, a: &str, d| {
            PartitionKey::new(Source::CloudTrailMgmt, OcsfClass::ApiActivity, r, a, d)
        };
        assert!(matches!(
            mk("../../etc", "1", 20240101),
            Err(PartitionError::Region(_))
        ));
        assert!(matches!(
            mk("us-east-1/..", "1", 20240101),
            Err(PartitionError::Region(_))
        ));
        assert!(matches!(
            mk("us-east-1", "12/../34", 20240101),
            Err(PartitionError::Account(_))
        ));
        assert!(matches!(
            mk("us-east-1", "", 20240101),
            Err(PartitionError::Account(_))
        ));
        assert!(matches!(
            mk("us-east-1", "1", 20241301),
            Err(PartitionError::Day(_))
        ));
        assert!(matches!(
            mk("us-east-1", "1", 7),
            Err(PartitionError::Day(_))
        ));
    }

    #[test]
    fn ext_prefixes_have_one_class_each() {
        let p = table_prefixes(Layout::Ext);
        assert_eq!(p.len(), 6);
        assert!(
            p.iter()
                .any(|(d, _, _)| d == "ext/CLOUD_TRAIL_MGMT_AUTHENTICATION/1.0/")
        );
        assert_eq!(table_prefixes(Layout::Native).len(), 4);
    }
}
