//! `unmapped` as Security Lake writes it: every CloudTrail field that no OCSF column
//! took, flattened to dotted keys with string values (`a.b`, arrays as `a[].b` with
//! the elements' values comma-joined, nulls and empty objects omitted).

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use trailhouse_cloudtrail::record::{BorrowedStr, RawJson};

/// Rows with more distinct keys than this look keys up through an index rather
/// than by scanning (real records have a handful; hostile ones may have 100,000s).
const SCAN_LIMIT: usize = 32;

/// One row's entries in first-seen order, their buffers reused from row to row.
#[derive(Default)]
struct Entries {
    list: Vec<(String, String)>,
    len: usize,
    /// Key → position, built only once a row passes `SCAN_LIMIT` keys.
    index: HashMap<String, usize>,
}

impl Entries {
    fn clear(&mut self) {
        self.len = 0;
        if !self.index.is_empty() {
            self.index.clear();
        }
    }

    /// Adds one value; a key seen before in this row gets it comma-joined.
    fn push(&mut self, key: &str, value: &str) {
        let found = if self.len <= SCAN_LIMIT {
            self.list[..self.len].iter().position(|(k, _)| k == key)
        } else {
            if self.index.is_empty() {
                for (i, (k, _)) in self.list[..self.len].iter().enumerate() {
                    self.index.insert(k.clone(), i);
                }
            }
            self.index.get(key).copied()
        };
        if let Some(i) = found {
            let v = &mut self.list[i].1;
            v.push(',');
            v.push_str(value);
            return;
        }
        if self.len == self.list.len() {
            self.list.push((String::new(), String::new()));
        }
        let (k, v) = &mut self.list[self.len];
        k.clear();
        k.push_str(key);
        v.clear();
        v.push_str(value);
        if !self.index.is_empty() {
            self.index.insert(key.to_string(), self.len);
        }
        self.len += 1;
    }
}

/// The unmapped entries of one row, reusing its buffers from row to row.
#[derive(Default)]
pub struct Unmapped {
    entries: Entries,
    path: String,
}

impl Unmapped {
    /// Starts a new row.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Number of entries in the current row.
    pub fn len(&self) -> usize {
        self.entries.len
    }

    /// Whether the current row has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.len == 0
    }

    /// The current row's entries in first-seen order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.list[..self.entries.len]
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value under `key` in the current row.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Adds one value; a key seen before in this row (array elements, duplicate JSON
    /// keys) gets the value comma-joined to what it has.
    pub fn push(&mut self, key: &str, value: &str) {
        self.entries.push(key, value);
    }

    /// Flattens `raw` under the key `prefix`. Members whose path relative to `prefix`
    /// is listed in `skip` (for example `sessionContext.attributes.creationDate`) were
    /// mapped to a column and are left out.
    ///
    /// # Errors
    /// Only when `raw` cannot be walked (nesting deeper than the JSON parser allows).
    pub fn flatten(
        &mut self,
        prefix: &str,
        raw: RawJson<'_>,
        skip: &[&str],
    ) -> Result<(), serde_json::Error> {
        self.path.clear();
        self.path.push_str(prefix);
        let seed = Flat {
            path: &mut self.path,
            entries: &mut self.entries,
            skip,
            root: prefix.len(),
        };
        let mut de = serde_json::Deserializer::from_str(raw.get());
        seed.deserialize(&mut de)
    }
}

struct Flat<'u> {
    path: &'u mut String,
    entries: &'u mut Entries,
    skip: &'u [&'u str],
    root: usize,
}

impl Flat<'_> {
    fn reborrow(&mut self) -> Flat<'_> {
        Flat {
            path: self.path,
            entries: self.entries,
            skip: self.skip,
            root: self.root,
        }
    }

    fn emit(self, value: &str) {
        self.entries.push(self.path, value);
    }

    fn skipped(&self) -> bool {
        !self.skip.is_empty() && self.path.len() > self.root && {
            let rel = &self.path[self.root + 1..];
            self.skip.contains(&rel)
        }
    }
}

impl<'de> DeserializeSeed<'de> for Flat<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flat<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.emit(if v { "true" } else { "false" });
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.emit(itoa::Buffer::new().format(v));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.emit(itoa::Buffer::new().format(v));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // Shortest text that reads back as the same number.
        self.emit(&format!("{v:?}"));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.emit(v);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let saved = self.path.len();
        self.path.push_str("[]");
        while seq.next_element_seed(self.reborrow())?.is_some() {}
        self.path.truncate(saved);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let saved = self.path.len();
        while let Some(BorrowedStr(key)) = map.next_key()? {
            self.path.truncate(saved);
            self.path.push('.');
            self.path.push_str(&key);
            if self.skipped() {
                map.next_value::<IgnoredAny>()?;
            } else {
                map.next_value_seed(self.reborrow())?;
            }
        }
        self.path.truncate(saved);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(prefix: &str, json: &str, skip: &[&str]) -> Vec<(String, String)> {
        let raw: Box<serde_json::value::RawValue> = serde_json::from_str(json).unwrap();
        let mut u = Unmapped::default();
        u.flatten(prefix, RawJson::from(&*raw), skip).unwrap();
        u.entries()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn scalars_become_strings() {
        assert_eq!(flat("readOnly", "false", &[]), kv(&[("readOnly", "false")]));
        assert_eq!(flat("n", "33120", &[]), kv(&[("n", "33120")]));
        assert_eq!(flat("n", "-7", &[]), kv(&[("n", "-7")]));
        assert_eq!(flat("n", "1.5", &[]), kv(&[("n", "1.5")]));
        assert_eq!(flat("s", r#""a\"b\u00e9""#, &[]), kv(&[("s", "a\"bé")]));
        assert_eq!(flat("e", r#""""#, &[]), kv(&[("e", "")]));
        assert!(flat("z", "null", &[]).is_empty());
    }

    #[test]
    fn objects_nest_with_dots_and_drop_nulls_and_empties() {
        let got = flat(
            "userIdentity",
            r#"{"type":"AssumedRole","sessionContext":{"sessionIssuer":{"type":"Role","userName":"Admin"},"webIdFederationData":{},"attributes":{"creationDate":"x","mfaAuthenticated":"false"}},"gone":null}"#,
            &[
                "type",
                "sessionContext.attributes.creationDate",
                "sessionContext.attributes.mfaAuthenticated",
            ],
        );
        assert_eq!(
            got,
            kv(&[
                ("userIdentity.sessionContext.sessionIssuer.type", "Role"),
                (
                    "userIdentity.sessionContext.sessionIssuer.userName",
                    "Admin"
                ),
            ])
        );
    }

    #[test]
    fn arrays_join_values_per_path() {
        let got = flat(
            "resources",
            r#"[{"ARN":"a1","type":"T"},{"ARN":"a2","accountId":"1"},{"ARN":null}]"#,
            &[],
        );
        assert_eq!(
            got,
            kv(&[
                ("resources[].ARN", "a1,a2"),
                ("resources[].type", "T"),
                ("resources[].accountId", "1")
            ])
        );
        assert_eq!(flat("a", r#"["x","y",3]"#, &[]), kv(&[("a[]", "x,y,3")]));
        assert_eq!(
            flat(
                "c",
                r#"{"s":{"conditions":[{"status":"False"},{"status":"False"}]}}"#,
                &[]
            ),
            kv(&[("c.s.conditions[].status", "False,False")])
        );
        assert!(flat("e", "[]", &[]).is_empty());
    }

    #[test]
    fn rows_reuse_buffers_and_merge_duplicates() {
        let mut u = Unmapped::default();
        let raw: Box<serde_json::value::RawValue> =
            serde_json::from_str(r#"{"k":"1","k":"2"}"#).unwrap();
        u.flatten("d", RawJson::from(&*raw), &[]).unwrap();
        assert_eq!(u.get("d.k"), Some("1,2"));
        u.clear();
        assert!(u.is_empty());
        u.push("x", "y");
        assert_eq!(u.entries().collect::<Vec<_>>(), vec![("x", "y")]);
    }

    #[test]
    fn large_rows_merge_duplicates_like_small_ones() {
        // Past SCAN_LIMIT keys the row is looked up through its index: same result.
        let mut u = Unmapped::default();
        for round in 0..2 {
            u.clear();
            for i in 0..(SCAN_LIMIT + 10) {
                u.push(&format!("k{i}"), "a");
            }
            u.push("k0", "b");
            u.push(&format!("k{}", SCAN_LIMIT + 9), "c");
            u.push("new", "d");
            assert_eq!(u.len(), SCAN_LIMIT + 11, "round {round}");
            assert_eq!(u.get("k0"), Some("a,b"));
            assert_eq!(u.get(&format!("k{}", SCAN_LIMIT + 9)), Some("a,c"));
            assert_eq!(u.entries().last(), Some(("new", "d")));
        }
        // A small row after a large one scans again.
        u.clear();
        u.push("x", "1");
        u.push("x", "2");
        assert_eq!(u.entries().collect::<Vec<_>>(), vec![("x", "1,2")]);
    }

    #[test]
    #[ignore = "a timing check (speed is measured by benchmarks, not unit tests): run with --ignored"]
    fn many_distinct_keys_flatten_in_linear_time() {
        // Found while fuzzing (fuzz/README.md): one record with n distinct unmapped
        // keys cost O(n^2) string compares (2.3 s for a 418 KB record with 40,000
        // keys) before rows past SCAN_LIMIT keys got an index.
        let n = 100_000;
        let mut json = String::from("{");
        for i in 0..n {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&format!("\"k{i}\":{i}"));
        }
        json.push('}');
        let raw: Box<serde_json::value::RawValue> = serde_json::from_str(&json).unwrap();
        let mut u = Unmapped::default();
        let t = std::time::Instant::now();
        u.flatten("x", RawJson::from(&*raw), &[]).unwrap();
        assert_eq!(u.len(), n);
        // 1.2 MB of JSON: linear work takes milliseconds.
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(
            flat("d", &deep, &[]),
            kv(&[(&format!("d{}", "[]".repeat(100)), "1")])
        );
        // serde_json accepts this as a raw value; walking it must fail cleanly.
        let deeper = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
        let raw: Box<serde_json::value::RawValue> = serde_json::from_str(&deeper).unwrap();
        assert!(
            Unmapped::default()
                .flatten("d", RawJson::from(&*raw), &[])
                .is_err()
        );
    }
}
