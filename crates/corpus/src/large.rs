//! [`crate::large_log_file`]: one big log file streamed through gzip.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::engine::{Generator, lag};
use crate::rng::Rng;
use crate::templates::{Class, Src};
use crate::time::{DAY, days_from_civil, event_day, is_valid_date};
use crate::world::World;
use crate::{Manifest, PartitionExpect};

/// Account, region and delivery time from a CloudTrail log-file name.
fn parse_name(path: &Path) -> (Option<String>, Option<String>, Option<i64>) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut parts = name.split('_');
    let (Some(acct), Some("CloudTrail"), Some(region), Some(stamp)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return (None, None, None);
    };
    let acct =
        (acct.len() == 12 && acct.bytes().all(|b| b.is_ascii_digit())).then(|| acct.to_string());
    let region_ok = !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let region = region_ok.then(|| region.to_string());
    let time = parse_stamp(stamp);
    (acct, region, time)
}

/// `YYYYMMDDTHHmmZ` to epoch seconds.
fn parse_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (y, m, d, hh, mm) = (
        num(0..4)?,
        num(4..6)?,
        num(6..8)?,
        num(9..11)?,
        num(11..13)?,
    );
    if !is_valid_date(y as i32, m, d) || hh > 23 || mm > 59 {
        return None;
    }
    Some(days_from_civil(y as i32, m, d) * DAY + (hh * 3600 + mm * 60) as i64)
}

pub(crate) fn write(path: &Path, seed: u64, target: u64) -> io::Result<Manifest> {
    let (acct, region, delivery) = parse_name(path);
    let region = region.unwrap_or_else(|| "us-east-1".to_string());
    let delivery = delivery.unwrap_or(days_from_civil(2024, 3, 9) * DAY + 12 * 3600);
    let mut world_rng = Rng::derive(seed, u64::MAX);
    let regions = [region.clone()];
    let world = match acct {
        Some(a) => World::with_ids(&mut world_rng, vec![a], &regions),
        None => World::new(&mut world_rng, 1, &regions),
    };
    let account = world.accounts[0].id.clone();
    let mut engine = Generator::new(world, false);
    let mut rng = Rng::derive(seed, 0x1a29_e000);

    let file = File::create(path)?;
    let mut gz = GzEncoder::new(BufWriter::with_capacity(1 << 20, file), Compression::new(6));
    const CHUNK: usize = 1 << 20;
    let mut buf = String::with_capacity(CHUNK + 64 * 1024);
    buf.push_str("{\"Records\":[");
    let mut flushed = 0u64;
    let mut n = 0u64;
    let mut counts: BTreeMap<(Src, Class, i64), u64> = BTreeMap::new();
    loop {
        let time = delivery - lag(&mut rng);
        let t = engine.build(&mut rng, 0, 0, time);
        let start = buf.len();
        if n > 0 {
            buf.push(',');
        }
        engine.rec.emit(&mut buf);
        if n > 0 && flushed + buf.len() as u64 + 2 > target {
            buf.truncate(start);
            break;
        }
        n += 1;
        *counts
            .entry((t.src, t.class, engine.rec.time.div_euclid(DAY)))
            .or_default() += 1;
        if buf.len() >= CHUNK {
            gz.write_all(buf.as_bytes())?;
            flushed += buf.len() as u64;
            buf.clear();
        }
    }
    buf.push_str("]}");
    gz.write_all(buf.as_bytes())?;
    flushed += buf.len() as u64;
    gz.finish()?.flush()?;

    let mut m = Manifest {
        objects_total: 1,
        log_objects: 1,
        records_total: n,
        records_valid: n,
        uncompressed_bytes: flushed,
        ..Manifest::default()
    };
    for ((src, class, day), count) in counts {
        let e = PartitionExpect {
            source: src.name().to_string(),
            class_uid: class.uid(),
            region: region.clone(),
            account: account.clone(),
            event_day: event_day(day * DAY),
        };
        *m.rows_by_class.entry(class.name().to_string()).or_default() += count;
        *m.rows_by_partition.entry(e.to_string()).or_default() += count;
    }
    Ok(m)
}
