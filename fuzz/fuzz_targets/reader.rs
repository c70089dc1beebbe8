//! One object (gzip or plain) read both ways the record reader offers:
//! `next_record_with` (each record parsed where it lies in the buffer) and
//! `next_record` followed by `Record::parse`. Byte 0 picks how many bytes each read of
//! the object hands out (bits 0-2, so records straddle refills anywhere) and the
//! record size limit (bit 3: the default or the smallest); the rest is the object.
//!
//! Invariants: no panic; both ways give the same records (the same bytes and the same
//! parse, or the same refusal), then the same end or the same error, with the same
//! record count and byte offset.
#![no_main]

use std::io::{self, Cursor, Read};

use libfuzzer_sys::fuzz_target;
use trailhouse_cloudtrail::reader::DEFAULT_MAX_RECORD_BYTES;
use trailhouse_cloudtrail::{LogReader, Record};

const STEPS: [usize; 8] = [usize::MAX, 1, 2, 3, 7, 64, 4096, 65536];

/// Hands out at most `step` bytes per read.
struct Trickle {
    data: Cursor<Vec<u8>>,
    step: usize,
}

impl Read for Trickle {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(self.step);
        self.data.read(&mut out[..n])
    }
}

fn outcomes(body: &[u8], step: usize, limit: usize, in_place: bool) -> Vec<String> {
    let src = Trickle {
        data: Cursor::new(body.to_vec()),
        step,
    };
    let mut r = match LogReader::open(src) {
        Ok((r, _)) => r.with_max_record_bytes(limit),
        Err(e) => return vec![format!("open: {e}")],
    };
    let mut out = Vec::new();
    loop {
        let next = if in_place {
            r.next_record_with(|bytes, rec| format!("{bytes:?} {rec:?}"))
        } else {
            r.next_record()
                .map(|o| o.map(|bytes| format!("{bytes:?} {:?}", Record::parse(bytes))))
        };
        match next {
            Ok(Some(item)) => out.push(item),
            Ok(None) => break,
            Err(e) => {
                out.push(format!("error: {e}"));
                break;
            }
        }
    }
    out.push(format!("{} records, {} bytes", r.records_read(), r.bytes_read()));
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let step = STEPS[usize::from(sel & 7)];
    let limit = if sel & 8 == 0 { DEFAULT_MAX_RECORD_BYTES } else { 1024 };
    let in_place = outcomes(body, step, limit, true);
    let two_passes = outcomes(body, step, limit, false);
    assert!(in_place == two_passes, "{in_place:#?}\n!=\n{two_passes:#?}");
});
