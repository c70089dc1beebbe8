//! The S3 key layout CloudTrail delivers to, `[prefix/]AWSLogs/[o-org/]{account}/
//! {CloudTrail|CloudTrail-Digest|CloudTrail-Insight}/{region}/YYYY/MM/DD/{file}`.

/// What an object key names, judged from the key alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    /// A CloudTrail log file.
    Log(KeyParts),
    /// A digest file (integrity validation); not a log, skipped by the pipeline.
    Digest(KeyParts),
    /// A CloudTrail Insights file; a different record shape, skipped as a log.
    Insight(KeyParts),
    /// Something else (no `AWSLogs/` layout). The content decides whether it is a log.
    Other,
}

/// The parts of a key in CloudTrail's layout. Values are taken from the key as they
/// are; callers validate them before using them in paths.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyParts {
    /// Everything before `AWSLogs/` (without the trailing slash), possibly empty.
    pub prefix: String,
    /// The organization id of an organization trail (`o-...`).
    pub org_id: Option<String>,
    /// The account segment.
    pub account: String,
    /// The region segment.
    pub region: String,
    /// The delivery date `YYYYMMDD` from the path, when the segments are digits.
    pub day: Option<u32>,
}

/// Classifies an object key (an S3 key or a relative local path with `/`).
pub fn classify_key(key: &str) -> KeyKind {
    let file = key.rsplit('/').next().unwrap_or(key);
    let Some(at) = find_awslogs(key) else {
        // Without the layout, trust the file name CloudTrail gives these files.
        if file.contains("_CloudTrail-Digest_") {
            return KeyKind::Digest(KeyParts::default());
        }
        if file.contains("_CloudTrail-Insight_") {
            return KeyKind::Insight(KeyParts::default());
        }
        // A log file moved out of its tree still names its account and region:
        // `{account}_CloudTrail_{region}_{YYYYMMDDTHHmmZ}_{unique}.json.gz`.
        return file_name_parts(file).map_or(KeyKind::Other, KeyKind::Log);
    };
    let prefix = key[..at].trim_end_matches('/').to_string();
    let mut segs = key[at + "AWSLogs/".len()..].split('/');
    let mut first = segs.next().unwrap_or("");
    let mut org_id = None;
    if first.starts_with("o-") {
        org_id = Some(first.to_string());
        first = segs.next().unwrap_or("");
    }
    let account = first.to_string();
    let service = segs.next().unwrap_or("");
    let region = segs.next().unwrap_or("").to_string();
    let (y, m, d) = (segs.next(), segs.next(), segs.next());
    let day = match (y, m, d) {
        (Some(y), Some(m), Some(d))
            if y.len() == 4
                && m.len() == 2
                && d.len() == 2
                && [y, m, d]
                    .iter()
                    .all(|s| s.bytes().all(|b| b.is_ascii_digit())) =>
        {
            format!("{y}{m}{d}").parse().ok()
        }
        _ => None,
    };
    let parts = KeyParts {
        prefix,
        org_id,
        account,
        region,
        day,
    };
    match service {
        "CloudTrail" => KeyKind::Log(parts),
        "CloudTrail-Digest" => KeyKind::Digest(parts),
        "CloudTrail-Insight" => KeyKind::Insight(parts),
        _ if file.contains("_CloudTrail-Digest_") => KeyKind::Digest(parts),
        _ if file.contains("_CloudTrail-Insight_") => KeyKind::Insight(parts),
        _ => KeyKind::Other,
    }
}

fn file_name_parts(file: &str) -> Option<KeyParts> {
    let mut it = file.splitn(4, '_');
    let (account, tag, region, rest) = (it.next()?, it.next()?, it.next()?, it.next()?);
    if tag != "CloudTrail"
        || account.is_empty()
        || !account.bytes().all(|b| b.is_ascii_digit())
        || region.is_empty()
    {
        return None;
    }
    let day = rest
        .get(..8)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok());
    Some(KeyParts {
        prefix: String::new(),
        org_id: None,
        account: account.to_string(),
        region: region.to_string(),
        day,
    })
}

fn find_awslogs(key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = key[from..].find("AWSLogs/") {
        let at = from + i;
        if at == 0 || key.as_bytes()[at - 1] == b'/' {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Whether `s` can be an AWS region in a partition path: 1 to 32 of `a-z`, `0-9`, `-`,
/// starting with a letter. This keeps `/`, `..`, `=` and control bytes out of paths.
pub fn is_valid_region(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `s` can be an AWS account id in a partition path: 1 to 32 ASCII digits.
/// (Real ones have 12; sample data often has other lengths.)
pub fn is_valid_account(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys() {
        let k = "AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz";
        assert_eq!(
            classify_key(k),
            KeyKind::Log(KeyParts {
                prefix: String::new(),
                org_id: None,
                account: "111122223333".into(),
                region: "us-east-2".into(),
                day: Some(20150801),
            })
        );
        let k = "my/prefix/AWSLogs/o-fxozgwu6rc/123456789015/CloudTrail/ca-central-1/2020/09/23/x.json.gz";
        match classify_key(k) {
            KeyKind::Log(p) => {
                assert_eq!(p.prefix, "my/prefix");
                assert_eq!(p.org_id.as_deref(), Some("o-fxozgwu6rc"));
                assert_eq!(p.account, "123456789015");
                assert_eq!(p.region, "ca-central-1");
                assert_eq!(p.day, Some(20200923));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn digest_and_insight_keys() {
        let d = "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_trail_us-east-1_20150817T150131Z.json.gz";
        assert!(matches!(classify_key(d), KeyKind::Digest(_)));
        let i = "x/AWSLogs/o-fxozgwu6rc/123456789015/CloudTrail-Insight/ca-central-1/2020/09/23/123456789015_CloudTrail-Insight_ca-central-1_20200923T0516Z_KL5e9VCV2SS7IqzB.json.gz";
        assert!(matches!(classify_key(i), KeyKind::Insight(_)));
        assert!(matches!(
            classify_key("loose/1_CloudTrail-Digest_x.json.gz"),
            KeyKind::Digest(_)
        ));
        assert_eq!(classify_key("some/other/file.json.gz"), KeyKind::Other);
        // A log file outside its tree: the name still gives account and region.
        match classify_key(
            "flat/111122223333_CloudTrail_eu-west-1_20240309T1200Z_abcdefghijklmnop.json.gz",
        ) {
            KeyKind::Log(p) => {
                assert_eq!(
                    (p.account.as_str(), p.region.as_str(), p.day),
                    ("111122223333", "eu-west-1", Some(20240309))
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(classify_key("x/abc_CloudTrail_r_1.json.gz"), KeyKind::Other);
        assert_eq!(
            classify_key("notAWSLogs/1/CloudTrail/r/2020/01/01/f"),
            KeyKind::Other
        );
    }

    #[test]
    fn partition_values() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "cn-north-1",
            "us-gov-west-1",
            "x",
        ] {
            assert!(is_valid_region(ok), "{ok}");
        }
        for bad in [
            "",
            "../../etc",
            "us/east",
            "US-EAST-1",
            "us east",
            "1us",
            "-",
            "a=b",
            "us-east-1\0",
        ] {
            assert!(!is_valid_region(bad), "{bad:?}");
        }
        for ok in ["123456789012", "1111111111111", "1"] {
            assert!(is_valid_account(ok), "{ok}");
        }
        for bad in [
            "",
            "12/../34",
            "123456789012\0",
            "abc",
            "１２３",
            "-1",
            &"9".repeat(33),
        ] {
            assert!(!is_valid_account(bad), "{bad:?}");
        }
    }
}
