//! The fast path of record parsing: one JSON object's members as borrowed key and
//! raw-value slices, read in one pass without serde.
//!
//! It accepts a subset of what serde_json accepts and reads it the same way, so that
//! serde_json stays the judge: whatever this scan does not take ([`Stop::Other`]:
//! invalid JSON, a key with escapes, nesting deeper than [`MAX_DEPTH`], more members
//! than a record may have) is parsed again by serde_json, which says what is wrong or
//! takes it. The rules are serde_json's (1.0, `ignore_value` and the map access of
//! its slice reader): no trailing commas, no leading zeros, strings without raw
//! control characters, escapes `\" \\ \/ \b \f \n \r \t \uXXXX` (any four hex digits,
//! as serde_json skips them in raw values), JSON whitespace only, UTF-8 keys and
//! values. The differential tests below hold it to that.
//!
//! Where the time goes: most of a record's bytes are in strings (requestParameters,
//! responseElements, policies), so strings are skipped 16 bytes at a time (SSE2 on
//! x86_64; elsewhere two 8-byte words, the test serde_json uses). Nothing here
//! recurses, whatever the nesting.

use std::borrow::Cow;

use crate::record::RawJson;

/// Nesting inside one value that the scan follows; deeper values go to serde_json.
pub(crate) const MAX_DEPTH: usize = 128;

/// Why the scan stopped without an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The bytes ended inside the object: it may go on in bytes not yet read.
    Eof,
    /// Not for this scan to decide (invalid, escaped key, too deep, too many members).
    Other,
}

/// Members of one object: keys and raw values borrowed from the input, in order.
pub(crate) type Members<'a> = Vec<(Cow<'a, str>, RawJson<'a>)>;

/// The bytes to scan, and the same bytes as a `str` when they are known to be UTF-8
/// (then keys and values are sliced from it, and the object is not checked again).
#[derive(Clone, Copy)]
pub(crate) struct Input<'a> {
    pub bytes: &'a [u8],
    pub text: Option<&'a str>,
}

/// Scans the object starting at the input's first byte (no whitespace before it) and
/// returns its members and the offset just past its closing brace. An object of more
/// than `max_members` members is left to serde_json.
///
/// Bytes not known to be UTF-8 are checked once, the whole object at its end, rather
/// than key by key and value by value: every byte between the members is ASCII (the
/// scan checked each), so the object is UTF-8 exactly when all its members are, and
/// one pass over a record costs a fraction of 30-odd short ones.
pub(crate) fn object(
    input: Input<'_>,
    capacity: usize,
    max_members: usize,
) -> Result<(Members<'_>, usize), Stop> {
    let b = input.bytes;
    match input.text {
        Some(text) => {
            let mut members = Vec::with_capacity(capacity);
            let end = spans(b, max_members, |span| {
                members.push(member(text, span)?);
                Ok(())
            })?;
            Ok((members, end))
        }
        None => {
            let mut spans_found = Vec::with_capacity(capacity);
            let end = spans(b, max_members, |span| {
                spans_found.push(span);
                Ok(())
            })?;
            let text = std::str::from_utf8(&b[..end]).map_err(|_| Stop::Other)?;
            let mut members = Vec::with_capacity(spans_found.len());
            for span in spans_found {
                members.push(member(text, span)?);
            }
            Ok((members, end))
        }
    }
}

/// Where one member lies in the object's bytes: its key's text (inside the quotes)
/// and its raw value.
#[derive(Clone, Copy)]
struct Span {
    key: (usize, usize),
    value: (usize, usize),
}

/// The member at `span` of `text`. Every cut the scan makes is next to an ASCII byte
/// (a quote, brace, bracket, comma, colon, digit or letter of a literal), so on a
/// character boundary.
#[inline(always)]
fn member(text: &str, span: Span) -> Result<(Cow<'_, str>, RawJson<'_>), Stop> {
    let key = text.get(span.key.0..span.key.1).ok_or(Stop::Other)?;
    let raw = text.get(span.value.0..span.value.1).ok_or(Stop::Other)?;
    Ok((Cow::Borrowed(key), RawJson::new(raw)))
}

/// The scan of [`object`]: hands each member's [`Span`] to `found`, in order, and
/// returns the offset just past the closing brace.
fn spans(
    b: &[u8],
    max_members: usize,
    mut found: impl FnMut(Span) -> Result<(), Stop>,
) -> Result<usize, Stop> {
    if b.first() != Some(&b'{') {
        return Err(Stop::Other);
    }
    let mut count = 0;
    let mut i = ws(b, 1)?;
    if b[i] == b'}' {
        return Ok(i + 1);
    }
    loop {
        if b[i] != b'"' {
            return Err(Stop::Other);
        }
        let (key_end, escaped) = string(b, i + 1)?;
        if escaped {
            // serde_json unescapes keys; rare enough to leave to it.
            return Err(Stop::Other);
        }
        let key = (i + 1, key_end - 1);
        i = ws(b, key_end)?;
        if b[i] != b':' {
            return Err(Stop::Other);
        }
        let start = ws(b, i + 1)?;
        let end = value(b, start)?;
        if count == max_members {
            return Err(Stop::Other);
        }
        count += 1;
        found(Span {
            key,
            value: (start, end),
        })?;
        i = ws(b, end)?;
        match b[i] {
            b',' => i = ws(b, i + 1)?,
            b'}' => return Ok(i + 1),
            _ => return Err(Stop::Other),
        }
    }
}

/// The first offset from `i` that is not JSON whitespace; `Eof` when there is none.
#[inline]
fn ws(b: &[u8], mut i: usize) -> Result<usize, Stop> {
    while let Some(&c) = b.get(i) {
        if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
            return Ok(i);
        }
        i += 1;
    }
    Err(Stop::Eof)
}

/// Skips one value starting at `b[i]` (its first byte); returns the offset past it.
/// Inlined into both instances of [`spans`], as it was into the one scan loop before
/// them: called instead, parsing the benchmark's records took 5 % more instructions.
#[inline(always)]
fn value(b: &[u8], mut i: usize) -> Result<usize, Stop> {
    // The open containers, innermost in the lowest bit: 1 for an object.
    let mut objects: u128 = 0;
    let mut depth = 0usize;
    loop {
        // At the start of a value.
        match *b.get(i).ok_or(Stop::Eof)? {
            b'"' => i = string(b, i + 1)?.0,
            open @ (b'{' | b'[') => {
                i = ws(b, i + 1)?;
                let close = if open == b'{' { b'}' } else { b']' };
                if b[i] == close {
                    i += 1;
                } else {
                    if depth == MAX_DEPTH {
                        return Err(Stop::Other);
                    }
                    depth += 1;
                    objects = objects << 1 | u128::from(open == b'{');
                    if open == b'{' {
                        i = member_key(b, i)?;
                    }
                    continue;
                }
            }
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            b'-' | b'0'..=b'9' => i = number(b, i)?,
            _ => return Err(Stop::Other),
        }
        // After a value: a comma goes on to the next one, closers end containers.
        loop {
            if depth == 0 {
                return Ok(i);
            }
            let in_object = objects & 1 == 1;
            i = ws(b, i)?;
            match b[i] {
                b',' => {
                    i = ws(b, i + 1)?;
                    if in_object {
                        i = member_key(b, i)?;
                    }
                    break;
                }
                b'}' if in_object => {}
                b']' if !in_object => {}
                _ => return Err(Stop::Other),
            }
            i += 1;
            depth -= 1;
            objects >>= 1;
        }
    }
}

/// Skips `"key" :` and the whitespace after it, from the key's opening quote.
fn member_key(b: &[u8], i: usize) -> Result<usize, Stop> {
    if b[i] != b'"' {
        return Err(Stop::Other);
    }
    let i = ws(b, string(b, i + 1)?.0)?;
    if b[i] != b':' {
        return Err(Stop::Other);
    }
    ws(b, i + 1)
}

fn literal(b: &[u8], i: usize, word: &[u8]) -> Result<usize, Stop> {
    let end = i + word.len();
    match b.get(i..end) {
        Some(w) if w == word => Ok(end),
        Some(_) => Err(Stop::Other),
        None if word.starts_with(&b[i..]) => Err(Stop::Eof),
        None => Err(Stop::Other),
    }
}

/// Skips a number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number(b: &[u8], mut i: usize) -> Result<usize, Stop> {
    let digits = |b: &[u8], mut i: usize| -> Result<(usize, usize), Stop> {
        let from = i;
        while let Some(c) = b.get(i) {
            if !c.is_ascii_digit() {
                return Ok((i, i - from));
            }
            i += 1;
        }
        Err(Stop::Eof)
    };
    if b[i] == b'-' {
        i += 1;
    }
    match *b.get(i).ok_or(Stop::Eof)? {
        b'0' => {
            i += 1;
            if b.get(i).ok_or(Stop::Eof)?.is_ascii_digit() {
                return Err(Stop::Other);
            }
        }
        b'1'..=b'9' => i = digits(b, i)?.0,
        _ => return Err(Stop::Other),
    }
    if b[i] == b'.' {
        let (end, n) = digits(b, i + 1)?;
        if n == 0 {
            return Err(Stop::Other);
        }
        i = end;
    }
    if matches!(b[i], b'e' | b'E') {
        i += 1;
        if matches!(*b.get(i).ok_or(Stop::Eof)?, b'+' | b'-') {
            i += 1;
        }
        let (end, n) = digits(b, i)?;
        if n == 0 {
            return Err(Stop::Other);
        }
        i = end;
    }
    Ok(i)
}

/// Skips a string's contents from just after its opening quote; returns the offset
/// past the closing quote and whether the string has escapes.
fn string(b: &[u8], mut i: usize) -> Result<(usize, bool), Stop> {
    let mut escaped = false;
    loop {
        i = special(b, i);
        match *b.get(i).ok_or(Stop::Eof)? {
            b'"' => return Ok((i + 1, escaped)),
            b'\\' => {
                escaped = true;
                match *b.get(i + 1).ok_or(Stop::Eof)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        let hex = b.get(i + 2..i + 6).ok_or(Stop::Eof)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(Stop::Other);
                        }
                        i += 6;
                    }
                    _ => return Err(Stop::Other),
                }
            }
            // A raw control character.
            _ => return Err(Stop::Other),
        }
    }
}

/// Bytes a string's scan stops at: its end, an escape, or a (forbidden) control
/// character.
#[inline]
fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

const LANES: usize = 16;

/// The offset of the first special byte at or after `i`, or `b.len()`.
#[inline]
fn special(b: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = b.get(i..i + LANES) {
        let mask = special_mask(chunk.try_into().expect("LANES bytes"));
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += LANES;
    }
    while i < b.len() && !is_special(b[i]) {
        i += 1;
    }
    i
}

/// A mask of the special bytes of `chunk`: zero when it has none, else its lowest
/// set bit is the first one's offset. Three SSE2 compares and a move mask.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn special_mask(chunk: &[u8; LANES]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: the build targets SSE2 (cfg above; every x86_64 CPU has it), and the
    // unaligned load reads the 16 bytes of `chunk`.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // c <= 0x1F exactly where min(c, 0x1F) == c (unsigned).
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
    }
}

/// [`special_mask`] where SSE2 is not there (aarch64 among others).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
fn special_mask(chunk: &[u8; LANES]) -> u32 {
    special_mask_words(chunk)
}

/// [`special_mask`] eight bytes at a time, by serde_json's test in
/// `skip_to_escape`: the high bit of each byte of `(y - 0x0101..) & !y` is set where
/// that byte of `y` is zero, exactly up to the first zero (a borrow may set bits
/// above it). Only the first special byte's bit is set.
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2"),
    allow(
        dead_code,
        reason = "tested against the SSE2 version; used on other CPUs"
    )
)]
fn special_mask_words(chunk: &[u8; LANES]) -> u32 {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let zero = |y: u64| y.wrapping_sub(ONES) & !y;
    for (half, bytes) in chunk.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let quote = zero(x ^ (ONES * u64::from(b'"')));
        let backslash = zero(x ^ (ONES * u64::from(b'\\')));
        let hits = (quote | backslash | control) & HIGH;
        if hits != 0 {
            return 1 << (hits.trailing_zeros() / 8 + 8 * half as u32);
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use crate::record::{PrefixError, Record};

    /// Every record of the sample trail files in `samples/`.
    fn sample_records() -> Vec<Vec<u8>> {
        let dir = "../../samples/AWSLogs";
        let mut files = Vec::new();
        let mut todo = vec![std::path::PathBuf::from(dir)];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else if p.to_string_lossy().ends_with(".json.gz") {
                    files.push(p);
                }
            }
        }
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let mut gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(f).unwrap());
            let mut doc = Vec::new();
            gz.read_to_end(&mut doc).unwrap();
            let mut r = crate::LogReader::new(&doc[..]);
            while let Some(rec) = r.next_record().unwrap() {
                out.push(rec.to_vec());
            }
        }
        out
    }

    /// The next number of a xorshift64 sequence (deterministic test inputs).
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Values with every rule of the grammar at work, valid and not.
    const VALUES: &[&str] = &[
        // valid
        "0",
        "-0",
        "12",
        "-12.5",
        "1e5",
        "1E+5",
        "2.5e-10",
        "0.0",
        "true",
        "false",
        "null",
        "\"\"",
        "\"plain\"",
        "\"\\\"q\\\\ \\/ \\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\uD83D\\ude00\"",
        "\"\\ud800\"",
        "\"é – ☃ 😀\"",
        "[]",
        "[ ]",
        "{}",
        "{ }",
        "[1,2 , 3]",
        "{\"a\" : [ {\"b\":null}, \"c\" ] , \"d\":{}}",
        "[[[[[]]]]]",
        "\"{not an object}\"",
        " \t\n\r1",
        // invalid
        "01",
        "-",
        "-a",
        "1.",
        ".5",
        "1e",
        "1e+",
        "+1",
        "tru",
        "nul",
        "True",
        "nan",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"tab\tinside\"",
        "\"nl\ninside\"",
        "\"\u{1}\"",
        "[1,]",
        "{\"a\":1,}",
        "[,1]",
        "{,}",
        "{\"a\"}",
        "{\"a\" 1}",
        "{1:2}",
        "{'a':1}",
        "[1 2]",
        "[1}",
        "{\"a\":1]",
        "[{}}",
        "\"open",
        "[",
        "{\"a\":",
        "}",
        "]",
        "\u{c}1",
        "1\u{c}",
    ];

    #[test]
    fn takes_what_serde_json_takes_and_nothing_else() {
        let mut taken = 0;
        for v in VALUES {
            for doc in [
                format!("{{\"k\":{v}}}"),
                format!("{{\"a\":1, \"k\" :{v} ,\"z\":[{v}]}}"),
                format!("{{\"k\":{{\"n\":[{v},{{\"m\":{v}}}]}}}}"),
            ] {
                taken += usize::from(Record::check_scan_against_serde(doc.as_bytes()));
            }
        }
        // The valid values, three documents each (the whitespace before `1` is JSON's).
        assert_eq!(taken, 26 * 3);
        // Raw bytes that are not UTF-8, in a key and in a value.
        for doc in [
            &b"{\"k\xff\":1}"[..],
            b"{\"k\":\"\xc3\"}",
            b"{\"k\":[\"\xed\xa0\x80\"]}",
        ] {
            assert!(!Record::check_scan_against_serde(doc));
            assert!(Record::parse(doc).is_err());
        }
    }

    #[test]
    fn leaves_escaped_keys_deep_nesting_and_huge_records_to_serde_json() {
        // An empty container opens no level to follow: `n` brackets are `n - 1` levels.
        let deep = |n: usize| format!("{{\"k\":{}{}}}", "[".repeat(n), "]".repeat(n));
        for (doc, scanned) in [
            (r#"{"k\u0065y":1}"#.to_string(), false),
            (r#"{"key":{"n\u0065sted":1}}"#.to_string(), true),
            (deep(super::MAX_DEPTH + 1), true),
            (deep(super::MAX_DEPTH + 2), false),
        ] {
            assert_eq!(
                Record::check_scan_against_serde(doc.as_bytes()),
                scanned,
                "{doc}"
            );
            // Whoever reads it, the record is read.
            assert!(Record::parse(doc.as_bytes()).is_ok(), "{doc}");
        }
        let escaped = Record::parse(br#"{"k\u0065y":1}"#).unwrap();
        assert_eq!(escaped.other("key").unwrap().get(), "1");
        let many: Vec<String> = (0..65_535).map(|i| format!("\"k{i}\":{i}")).collect();
        let many = format!("{{{}}}", many.join(","));
        assert_eq!(
            Record::parse_prefix(many.as_bytes()).unwrap_err(),
            PrefixError::Other
        );
    }

    #[test]
    fn both_chunk_tests_find_the_first_special_byte() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let interesting = [
            b'"', b'\\', 0, 0x1F, 0x20, b'!', b'#', b'[', b']', 0x7F, 0x80, 0xA2, 0xDC, 0xFF,
        ];
        for round in 0..20_000 {
            let mut chunk = [0u8; super::LANES];
            for c in &mut chunk {
                // Mostly plain bytes, so that many chunks have no special byte or one late.
                let r = (xorshift(&mut state) >> 32) as usize;
                *c = if r.is_multiple_of(8) {
                    interesting[r / 8 % interesting.len()]
                } else {
                    b'a' + (r % 26) as u8
                };
            }
            let first = chunk.iter().position(|&c| super::is_special(c));
            let found = |mask: u32| (mask != 0).then(|| mask.trailing_zeros() as usize);
            assert_eq!(
                found(super::special_mask(&chunk)),
                first,
                "{round}: {chunk:?}"
            );
            assert_eq!(
                found(super::special_mask_words(&chunk)),
                first,
                "{round}: {chunk:?}"
            );
        }
    }

    #[test]
    fn a_record_cut_anywhere_is_incomplete_or_refused() {
        let rec = br#"{"a":-1.5e+3,"b":[true,false,null],"c":{"d":"\u00e9\"x"},"e":"tail"}"#;
        for cut in 0..rec.len() {
            let part = &rec[..cut];
            assert!(!Record::check_scan_against_serde(part), "{cut}");
            // Cut inside the record, the scan asks for more, never calls it invalid.
            if cut > 0 {
                assert_eq!(
                    Record::parse_prefix(part).unwrap_err(),
                    PrefixError::Incomplete
                );
            }
        }
        assert!(Record::check_scan_against_serde(rec));
        // What follows the record is not looked at.
        let (_, end) = Record::parse_prefix(&[&rec[..], b",{\"next\""].concat()).unwrap();
        assert_eq!(end, rec.len());
    }

    /// The sample records, each taken whole, then changed a byte at a time (a
    /// replaced, inserted or removed byte; the new bytes are JSON's structural and
    /// troublesome ones): the scan must agree with serde_json on every one.
    #[test]
    fn agrees_with_serde_json_on_real_records_and_their_mutations() {
        let records = sample_records();
        assert!(records.len() >= 500, "{}", records.len());
        for r in &records {
            assert!(Record::check_scan_against_serde(r));
        }
        const BYTES: &[u8] = b"\"\\{}[],: \t\n0-.eE+u/tfn\x01\x7f\xc3\xff";
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| (xorshift(&mut state) % n as u64) as usize;
        let (mut taken, mut refused) = (0, 0);
        for r in records.iter().take(200) {
            for _ in 0..100 {
                let mut m = r.clone();
                let at = next(m.len());
                match next(3) {
                    0 => m[at] = BYTES[next(BYTES.len())],
                    1 => m.insert(at, BYTES[next(BYTES.len())]),
                    _ => {
                        m.remove(at);
                    }
                }
                if Record::check_scan_against_serde(&m) {
                    taken += 1;
                } else {
                    refused += 1;
                }
            }
        }
        // Both outcomes are exercised (many changes land inside strings and stay valid).
        assert!(
            taken > 2_000 && refused > 2_000,
            "{taken} taken, {refused} refused"
        );
    }
}
