//! The quarantine: what could not be mapped, kept with its reason, under
//! `<lake>/_quarantine/`. Objects are copied whole (`objects/`); bad records are
//! written one JSON line each with the object key, record index, reason and the
//! original bytes (`records/`). Names derive from the object key by hash, so no key
//! can place a file outside the quarantine, and a rerun rewrites the same files.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

/// Directory under the lake root that holds the quarantine.
pub const QUARANTINE_DIR: &str = "_quarantine";

/// A file-system name for an object key: a hash of the whole key (unique, fixed
/// length) and the key's last segment reduced to safe characters (readable).
pub fn safe_name(key: &str) -> String {
    let base: String = key
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    let base = base.trim_start_matches('.');
    format!("{:016x}-{}", xxh3_64(key.as_bytes()), base)
}

#[derive(Serialize)]
struct RecordLine<'a> {
    object: &'a str,
    record_index: u64,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_hex: Option<String>,
}

#[derive(Serialize)]
struct ObjectNote<'a> {
    object: &'a str,
    reason: &'a str,
    records_delivered_before_error: u64,
    copy: &'a str,
}

/// One quarantined record as a JSON line (with its newline): object key, record
/// index, reason, and the original bytes as text, or as hex when not UTF-8. The one
/// format of `_quarantine/records/*.jsonl`, local or S3.
pub fn record_line(key: &str, index: u64, reason: &str, bytes: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(bytes).ok();
    let line = RecordLine {
        object: key,
        record_index: index,
        reason,
        record: text,
        record_hex: if text.is_none() {
            Some(hex(bytes))
        } else {
            None
        },
    };
    // Serializing strings and integers cannot fail.
    let mut buf = serde_json::to_vec(&line).unwrap_or_default();
    buf.push(b'\n');
    buf
}

/// Writes quarantined objects and records under one lake root.
pub struct Quarantine {
    root: PathBuf,
    opened: HashSet<String>,
}

impl Quarantine {
    /// A quarantine under `<lake>/_quarantine`.
    pub fn new(lake: &Path) -> Self {
        Quarantine {
            root: lake.join(QUARANTINE_DIR),
            opened: HashSet::new(),
        }
    }

    /// Appends one bad record of object `key`. The first record of an object in this
    /// run truncates that object's file, so reruns do not accumulate.
    pub fn record(&mut self, key: &str, index: u64, reason: &str, bytes: &[u8]) -> io::Result<()> {
        let name = safe_name(key);
        let dir = self.root.join("records");
        fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.jsonl"));
        let fresh = self.opened.insert(name);
        let mut f: File = if fresh {
            File::create(&path)?
        } else {
            OpenOptions::new().append(true).open(&path)?
        };
        let buf = record_line(key, index, reason, bytes);
        f.write_all(&buf)
    }

    /// Quarantines a whole object: `bytes` (its original content) and a note with the
    /// reason next to it.
    pub fn object(
        &mut self,
        key: &str,
        reason: &str,
        records_delivered: u64,
        bytes: &[u8],
    ) -> io::Result<PathBuf> {
        let name = safe_name(key);
        let dir = self.root.join("objects");
        fs::create_dir_all(&dir)?;
        let copy = dir.join(&name);
        write_atomic(&copy, bytes)?;
        self.note(key, reason, records_delivered, &name)?;
        Ok(copy)
    }
}

impl Quarantine {
    /// Quarantines a whole object stored in a local file, copying it without reading
    /// it into memory.
    pub fn object_file(
        &mut self,
        key: &str,
        reason: &str,
        records_delivered: u64,
        src: &Path,
    ) -> io::Result<PathBuf> {
        let name = safe_name(key);
        let dir = self.root.join("objects");
        fs::create_dir_all(&dir)?;
        let copy = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        fs::copy(src, &tmp)?;
        fs::rename(&tmp, &copy)?;
        self.note(key, reason, records_delivered, &name)?;
        Ok(copy)
    }

    fn note(&self, key: &str, reason: &str, records_delivered: u64, name: &str) -> io::Result<()> {
        let note = ObjectNote {
            object: key,
            reason,
            records_delivered_before_error: records_delivered,
            copy: name,
        };
        let mut text = serde_json::to_vec_pretty(&note).map_err(io::Error::other)?;
        text.push(b'\n');
        write_atomic(
            &self
                .root
                .join("objects")
                .join(format!("{name}.reason.json")),
            &text,
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a file so readers never see it half-written: a temporary name in the same
/// directory, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent"))?;
    fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
    }
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_quarantine() {
        for key in [
            "../../etc/passwd",
            "/abs/path",
            "a/b/../..",
            "..",
            "",
            "x\0y",
            "ok/name.json.gz",
        ] {
            let n = safe_name(key);
            assert!(
                !n.contains('/') && !n.contains('\\') && !n.starts_with('.'),
                "{key:?} -> {n}"
            );
            assert!(n.len() >= 17);
        }
        assert_ne!(safe_name("a/x.gz"), safe_name("b/x.gz"));
        assert!(safe_name("p/1_CloudTrail_x.json.gz").ends_with("-1_CloudTrail_x.json.gz"));
    }

    #[test]
    fn records_and_objects_are_kept_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Quarantine::new(dir.path());
        q.record(
            "k/a.json.gz",
            3,
            "record has no eventTime",
            br#"{"eventID":"x"}"#,
        )
        .unwrap();
        q.record("k/a.json.gz", 5, "bad", b"\xff\x00").unwrap();
        let lines = fs::read_to_string(
            dir.path()
                .join("_quarantine/records")
                .join(format!("{}.jsonl", safe_name("k/a.json.gz"))),
        )
        .unwrap();
        let rows: Vec<serde_json::Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["record_index"], 3);
        assert_eq!(rows[0]["record"], r#"{"eventID":"x"}"#);
        assert_eq!(rows[1]["record_hex"], "ff00");
        // A new run truncates.
        let mut q2 = Quarantine::new(dir.path());
        q2.record("k/a.json.gz", 1, "r", b"{}").unwrap();
        let lines = fs::read_to_string(
            dir.path()
                .join("_quarantine/records")
                .join(format!("{}.jsonl", safe_name("k/a.json.gz"))),
        )
        .unwrap();
        assert_eq!(lines.lines().count(), 1);

        let copy = q
            .object("../evil.json.gz", "corrupt gzip", 0, b"\x1f\x8bjunk")
            .unwrap();
        assert!(copy.starts_with(dir.path().join("_quarantine/objects")));
        assert_eq!(fs::read(&copy).unwrap(), b"\x1f\x8bjunk");
        let note: serde_json::Value = serde_json::from_slice(
            &fs::read(copy.with_file_name(format!("{}.reason.json", safe_name("../evil.json.gz"))))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(note["reason"], "corrupt gzip");
        assert_eq!(note["object"], "../evil.json.gz");
    }
}
