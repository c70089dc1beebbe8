//! The published Security Lake mapping samples must come out equal, field for field.

use serde_json::Value;
use trailhouse_cloudtrail::time::parse_rfc3339_ms;
use trailhouse_ocsf::json::to_json_array;
use trailhouse_ocsf::{ObjectContext, OcsfBuilder};

fn golden(name: &str) -> (Vec<u8>, Value) {
    let dir = "tests/golden/";
    let raw = std::fs::read(format!("{dir}{name}.raw")).unwrap();
    let ocsf: Value =
        serde_json::from_slice(&std::fs::read(format!("{dir}{name}.ocsf")).unwrap()).unwrap();
    (raw, ocsf)
}

fn map_one(raw: &[u8]) -> Value {
    let ctx = ObjectContext::default();
    let mut b = OcsfBuilder::new();
    b.append_bytes(raw, &ctx).expect("golden record maps");
    let batch = b.finish().unwrap();
    let rows: Value = serde_json::from_slice(&to_json_array(&batch).unwrap()).unwrap();
    rows[0].clone()
}

/// Makes representation-only differences equal: instants in `*_dt` fields (the
/// samples print local offsets), and the order of observables (no consistent order
/// across the samples).
fn normalize(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k.ends_with("_dt")
                    && let Some(ms) = val.as_str().and_then(parse_rfc3339_ms)
                {
                    *val = Value::from(ms);
                    continue;
                }
                normalize(val);
            }
            if let Some(Value::Array(obs)) = map.get_mut("observables") {
                obs.sort_by_key(|o| (o["name"].to_string(), o["value"].to_string()));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

fn diff(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => diff(&format!("{path}.{k}"), wv, gv, out),
                    None => out.push(format!("{path}.{k}: missing, want {wv}")),
                }
            }
            for (k, gv) in g {
                if !w.contains_key(k) {
                    out.push(format!("{path}.{k}: unexpected {gv}"));
                }
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                diff(&format!("{path}[{i}]"), wv, gv, out);
            }
        }
        _ if want != got => out.push(format!("{path}: want {want}, got {got}")),
        _ => {}
    }
}

fn assert_golden(name: &str) {
    let (raw, mut want) = golden(name);
    let mut got = map_one(&raw);
    normalize(&mut want);
    normalize(&mut got);
    let mut out = Vec::new();
    diff("", &want, &got, &mut out);
    assert!(
        out.is_empty(),
        "{name} differs from Security Lake's output:\n{}",
        out.join("\n")
    );
}

#[test]
fn api_activity_sample() {
    assert_golden("generic_api_activity");
}

#[test]
fn account_change_sample() {
    assert_golden("account_change");
}

#[test]
fn authentication_sample() {
    assert_golden("authentication");
}

#[test]
fn time_dt_renders_as_rfc3339_utc() {
    let (raw, _) = golden("generic_api_activity");
    let got = map_one(&raw);
    assert_eq!(got["time_dt"], "2023-09-21T22:22:52Z");
    assert_eq!(got["time"], 1_695_334_972_000i64);
}
