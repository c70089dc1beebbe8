//! Streaming reader of CloudTrail log files (`{"Records":[...]}`, gzip or plain JSON).
//! It yields each record's raw bytes in turn; memory is bounded by the largest record.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use flate2::bufread::MultiGzDecoder;

use crate::record::{ParseError, PrefixError, Record};

/// Why a log file could not be read to its end.
///
/// Every variant says how far the reader got, so a user can find the spot: `record`
/// is the index (0-based) of the record being read when the error happened, and
/// `offset` the byte offset in the decompressed stream.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The gzip stream or the underlying reader failed (corrupt or truncated gzip,
    /// I/O error).
    #[error("{kind} at decompressed offset {offset} (record {record}): {source}")]
    Io {
        /// What was being read: "gzip stream" or "input".
        kind: &'static str,
        /// Decompressed bytes read before the failure.
        offset: u64,
        /// Index of the record being read.
        record: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The stream ended in the middle of the JSON document.
    #[error("truncated: input ended at offset {offset} inside record {record}")]
    Truncated {
        /// Decompressed bytes read.
        offset: u64,
        /// Index of the record being read.
        record: u64,
    },
    /// The document is JSON-like but not a CloudTrail log file.
    #[error("not a CloudTrail log file: {reason}")]
    NotCloudTrail {
        /// What was found instead.
        reason: String,
    },
    /// The bytes are not the JSON that was expected at this point.
    #[error("invalid JSON at offset {offset} (record {record}): expected {expected}")]
    Syntax {
        /// Decompressed offset of the offending byte.
        offset: u64,
        /// Index of the record being read.
        record: u64,
        /// What the reader expected.
        expected: &'static str,
    },
    /// One record is larger than the configured bound.
    #[error("record {record} is larger than the limit of {limit} bytes")]
    RecordTooLarge {
        /// Index of the record.
        record: u64,
        /// The limit in bytes.
        limit: usize,
    },
}

/// How the bytes of an object were encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// gzip (one or more members), recognised by its magic bytes, not by name.
    Gzip,
    /// Plain JSON text.
    Plain,
}

/// Default bound on one record's size: CloudTrail events are at most a few hundred KB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 32 << 20;
const READ_CHUNK: usize = 256 << 10;
/// The largest buffer [`LogReader::into_buffer`] hands back as it is.
const RETAINED_BUFFER: usize = 4 * READ_CHUNK;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    TopLevel { first: bool },
    InRecords { first: bool },
    Done,
}

/// Reads records one at a time from a CloudTrail log file.
///
/// `next_record` returns the raw bytes of the next element of the `Records` array; the
/// slice is valid until the next call. The outer document is checked as it streams:
/// a missing `Records` key, a `Records` that is not an array, trailing bytes or a
/// truncated stream are errors, reported with the record index.
pub struct LogReader<R> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    state: State,
    index: u64,
    consumed: u64,
    max_record_bytes: usize,
    saw_records: bool,
}

impl LogReader<Box<dyn Read + Send>> {
    /// Opens a log file from any reader, detecting gzip by its magic bytes.
    pub fn open<R: Read + Send + 'static>(reader: R) -> Result<(Self, Encoding), ReadError> {
        Self::open_in(reader, Vec::new())
    }

    /// [`open`](Self::open), reading into `buf`: the buffer of an earlier reader
    /// ([`into_buffer`](LogReader::into_buffer)), whatever it holds. A caller that
    /// reads many files saves allocating and zeroing a buffer for each (256 KiB; for a
    /// trail file of a few records, more than its decompressed size).
    pub fn open_in<R: Read + Send + 'static>(
        reader: R,
        buf: Vec<u8>,
    ) -> Result<(Self, Encoding), ReadError> {
        Self::open_with(reader, buf, false)
    }

    /// [`open_in`](Self::open_in), inflating a gzip stream on a thread of its own,
    /// a few buffers ahead of the reader ([`InflateAhead`]): for a large object
    /// that one thread reads and maps while cores are idle, which takes inflating
    /// (about a tenth of mapping it) off that thread. The same records, bytes and
    /// errors.
    pub fn open_ahead<R: Read + Send + 'static>(
        reader: R,
        buf: Vec<u8>,
    ) -> Result<(Self, Encoding), ReadError> {
        Self::open_with(reader, buf, true)
    }

    fn open_with<R: Read + Send + 'static>(
        reader: R,
        buf: Vec<u8>,
        ahead: bool,
    ) -> Result<(Self, Encoding), ReadError> {
        let mut buffered = BufReader::with_capacity(64 << 10, reader);
        let head = buffered.fill_buf().map_err(|source| ReadError::Io {
            kind: "input",
            offset: 0,
            record: 0,
            source,
        })?;
        let (src, encoding): (Box<dyn Read + Send>, _) = if head.starts_with(&[0x1f, 0x8b]) {
            let decoder = MultiGzDecoder::new(buffered);
            let src: Box<dyn Read + Send> = if ahead {
                match InflateAhead::start(decoder) {
                    Ok(ahead) => Box::new(ahead),
                    // No thread could be started: inflated here, as without `ahead`.
                    Err(decoder) => Box::new(decoder),
                }
            } else {
                Box::new(decoder)
            };
            (src, Encoding::Gzip)
        } else {
            (Box::new(buffered), Encoding::Plain)
        };
        Ok((LogReader::with_buffer(src, buf), encoding))
    }
}

/// Bytes per buffer of [`InflateAhead`].
const AHEAD_CHUNK: usize = 256 << 10;

/// Buffers [`InflateAhead`]'s thread may have filled and not yet handed over.
const AHEAD_BUFFERS: usize = 2;

/// A stream read on a thread of its own (one per stream; it ends with the stream,
/// or as soon as this reader is dropped), a few buffers ahead (`AHEAD_BUFFERS` of
/// `AHEAD_CHUNK` bytes, private constants of this module). Its bytes, and then its
/// error if it fails, come out as the stream gave them, so a reader sees the same
/// bytes, offsets and errors. Should the thread stop before the stream's end (a
/// panic in the decoder), the reader gets an error saying so, not a shorter stream.
pub struct InflateAhead {
    /// Filled buffers, in order; an empty one marks the end of the stream.
    filled: Receiver<io::Result<Vec<u8>>>,
    /// Buffers read, handed back to be filled again.
    spent: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl InflateAhead {
    /// Starts reading `src` on a new thread; `src` back if no thread can be started.
    pub fn start<R: Read + Send + 'static>(src: R) -> Result<Self, R> {
        let (src_tx, src_rx) = sync_channel::<R>(1);
        let (fill_tx, filled) = sync_channel(AHEAD_BUFFERS);
        let (spent, spent_rx) = sync_channel::<Vec<u8>>(AHEAD_BUFFERS + 1);
        let started = std::thread::Builder::new()
            .name("trailhouse-inflate".into())
            .spawn(move || {
                if let Ok(src) = src_rx.recv() {
                    inflate(src, &fill_tx, &spent_rx);
                }
            });
        if started.is_err() {
            return Err(src);
        }
        // The thread waits for it: the send cannot fail.
        let _ = src_tx.send(src);
        Ok(InflateAhead {
            filled,
            spent,
            buf: Vec::new(),
            pos: 0,
            done: false,
        })
    }
}

/// [`InflateAhead`]'s thread: reads `src` into buffers until its end (then sends an
/// empty buffer) or its error (then sends the error), or until the reader is gone.
fn inflate(
    mut src: impl Read,
    filled: &SyncSender<io::Result<Vec<u8>>>,
    spent: &Receiver<Vec<u8>>,
) {
    loop {
        let mut buf = spent.try_recv().unwrap_or_default();
        buf.resize(AHEAD_CHUNK, 0);
        let mut len = 0;
        let mut end = Ok(false);
        while len < buf.len() {
            match src.read(&mut buf[len..]) {
                Ok(0) => {
                    end = Ok(true);
                    break;
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    end = Err(e);
                    break;
                }
            }
        }
        buf.truncate(len);
        // A send fails once the reader is gone: then stop.
        if len > 0 && filled.send(Ok(buf)).is_err() {
            return;
        }
        match end {
            Ok(false) => {}
            Ok(true) => {
                let _ = filled.send(Ok(Vec::new()));
                return;
            }
            Err(e) => {
                let _ = filled.send(Err(e));
                return;
            }
        }
    }
}

impl Read for InflateAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.buf.len() || out.is_empty() || self.done {
                let n = out.len().min(self.buf.len() - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            let next = match self.filled.recv() {
                Ok(Ok(next)) => next,
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Err(io::Error::other(
                        "the thread inflating the stream stopped before its end",
                    ));
                }
            };
            self.done = next.is_empty();
            let spent = std::mem::replace(&mut self.buf, next);
            self.pos = 0;
            let _ = self.spent.try_send(spent);
        }
    }
}

impl<R: Read> LogReader<R> {
    /// Wraps an already decompressed JSON stream.
    pub fn new(src: R) -> Self {
        LogReader::with_buffer(src, Vec::new())
    }

    /// [`new`](Self::new), reading into `buf` (see [`open_in`](LogReader::open_in)).
    pub fn with_buffer(src: R, mut buf: Vec<u8>) -> Self {
        if buf.len() < READ_CHUNK {
            buf.resize(READ_CHUNK, 0);
        }
        LogReader {
            src,
            buf,
            pos: 0,
            len: 0,
            eof: false,
            state: State::Start,
            index: 0,
            consumed: 0,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            saw_records: false,
        }
    }

    /// The reader's buffer, for the next file's reader
    /// ([`open_in`](LogReader::open_in)). A buffer that a large record grew past
    /// 1 MiB comes back at the usual 256 KiB, so a caller keeping it keeps at most
    /// 1 MiB.
    pub fn into_buffer(self) -> Vec<u8> {
        let mut buf = self.buf;
        if buf.len() > RETAINED_BUFFER {
            buf.truncate(READ_CHUNK);
            buf.shrink_to_fit();
        }
        buf
    }

    /// Sets the largest record accepted (default [`DEFAULT_MAX_RECORD_BYTES`]).
    pub fn with_max_record_bytes(mut self, limit: usize) -> Self {
        self.max_record_bytes = limit.max(1024);
        self
    }

    /// Index of the next record to be returned (= records returned so far).
    pub fn records_read(&self) -> u64 {
        self.index
    }

    /// Decompressed bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.consumed + self.pos as u64
    }

    /// Returns the next record's raw JSON bytes, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, ReadError> {
        if !self.seek_record()? {
            return Ok(None);
        }
        let (start, end) = self.scan_value()?;
        self.end_record(end);
        Ok(Some(&self.buf[start..end]))
    }

    /// Reads the next record and hands `f` its raw JSON bytes with the bytes parsed as
    /// a [`Record`] (or why they are not one); `None` at the end of the file.
    ///
    /// Same records, bytes and errors as [`next_record`](Self::next_record) followed
    /// by [`Record::parse`], in one pass over the bytes instead of two: the record is
    /// parsed where it lies in the buffer ([`Record::parse_prefix`]), and the parser's
    /// end is the record's end. Only when that fails (a record not valid JSON, one the
    /// fast scan leaves to serde_json, or one not wholly read in after one more refill)
    /// does the reader find the record's extent as `next_record` does and parse the
    /// extent with `Record::parse`, so errors read the same.
    pub fn next_record_with<T>(
        &mut self,
        f: impl FnOnce(&[u8], Result<Record<'_>, ParseError>) -> T,
    ) -> Result<Option<T>, ReadError> {
        if !self.seek_record()? {
            return Ok(None);
        }
        // A record cut off by the end of the buffer is tried once more after one
        // refill (which reads up to `READ_CHUNK` more): records of a few hundred KB are
        // parsed in place too, and no record is parsed in place more than twice.
        for attempt in 0..2 {
            if attempt > 0 && !self.fill()? {
                break;
            }
            let start = self.pos;
            match Record::parse_prefix(&self.buf[start..self.len]) {
                Ok((rec, len)) => {
                    let end = start + len;
                    let out = f(&self.buf[start..end], Ok(rec));
                    self.end_record(end);
                    return Ok(Some(out));
                }
                Err(PrefixError::Incomplete) => continue,
                Err(PrefixError::Other) => break,
            }
        }
        let (start, end) = self.scan_value()?;
        self.end_record(end);
        let bytes = &self.buf[start..end];
        Ok(Some(f(bytes, Record::parse(bytes))))
    }

    fn end_record(&mut self, end: usize) {
        self.pos = end;
        self.index += 1;
        self.state = State::InRecords { first: false };
    }

    /// Reads through the document's structure up to the first byte of the next
    /// record. False at the end of the document.
    fn seek_record(&mut self) -> Result<bool, ReadError> {
        loop {
            match self.state {
                State::Done => return Ok(false),
                State::Start => {
                    self.skip_ws_and_bom()?;
                    match self.peek_byte()? {
                        Some(b'{') => {
                            self.pos += 1;
                            self.state = State::TopLevel { first: true };
                        }
                        Some(_) => {
                            return Err(ReadError::NotCloudTrail {
                                reason: "the document is not a JSON object".into(),
                            });
                        }
                        None => {
                            return Err(ReadError::NotCloudTrail {
                                reason: "the file is empty".into(),
                            });
                        }
                    }
                }
                State::TopLevel { first } => {
                    self.skip_ws()?;
                    match self.peek_byte()? {
                        Some(b'}') => {
                            self.pos += 1;
                            self.expect_end()?;
                            self.state = State::Done;
                            if !self.saw_records {
                                return Err(ReadError::NotCloudTrail {
                                    reason: "no \"Records\" array".into(),
                                });
                            }
                            return Ok(false);
                        }
                        Some(b',') if !first => {
                            self.pos += 1;
                            self.skip_ws()?;
                        }
                        Some(_) if first => {}
                        Some(_) => return Err(self.syntax("',' or '}' after a top-level value")),
                        None => return Err(self.truncated()),
                    }
                    let key = self.scan_value()?;
                    let is_records = {
                        let k = &self.buf[key.0..key.1];
                        if k.first() != Some(&b'"') {
                            return Err(self.syntax("a string key"));
                        }
                        k == b"\"Records\""
                    };
                    self.pos = key.1;
                    self.skip_ws()?;
                    if self.peek_byte()? != Some(b':') {
                        return Err(self.syntax("':' after a key"));
                    }
                    self.pos += 1;
                    self.skip_ws()?;
                    if is_records {
                        if self.peek_byte()? != Some(b'[') {
                            return Err(ReadError::NotCloudTrail {
                                reason: "\"Records\" is not an array".into(),
                            });
                        }
                        self.pos += 1;
                        self.saw_records = true;
                        self.state = State::InRecords { first: true };
                    } else {
                        let skipped = self.scan_value()?;
                        self.pos = skipped.1;
                        self.state = State::TopLevel { first: false };
                    }
                }
                State::InRecords { first } => {
                    self.skip_ws()?;
                    match self.peek_byte()? {
                        Some(b']') => {
                            self.pos += 1;
                            self.state = State::TopLevel { first: false };
                            continue;
                        }
                        Some(b',') if !first => {
                            self.pos += 1;
                            self.skip_ws()?;
                        }
                        Some(_) if first => {}
                        Some(_) => return Err(self.syntax("',' or ']' between records")),
                        None => return Err(self.truncated()),
                    }
                    return Ok(true);
                }
            }
        }
    }

    fn syntax(&self, expected: &'static str) -> ReadError {
        ReadError::Syntax {
            offset: self.bytes_read(),
            record: self.index,
            expected,
        }
    }

    fn truncated(&self) -> ReadError {
        ReadError::Truncated {
            offset: self.bytes_read() + (self.len - self.pos) as u64,
            record: self.index,
        }
    }

    /// Reads more bytes, keeping `buf[pos..len]`. Returns false at end of input.
    fn fill(&mut self) -> Result<bool, ReadError> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 && self.buf.len() - self.len < READ_CHUNK {
            self.buf.copy_within(self.pos..self.len, 0);
            self.consumed += self.pos as u64;
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() - self.len < READ_CHUNK {
            let pending = self.len - self.pos;
            if pending > self.max_record_bytes {
                return Err(ReadError::RecordTooLarge {
                    record: self.index,
                    limit: self.max_record_bytes,
                });
            }
            self.buf.resize(self.len + READ_CHUNK, 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.len += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    let kind = if matches!(
                        source.kind(),
                        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
                    ) || source.kind() == io::ErrorKind::UnexpectedEof
                    {
                        "gzip stream"
                    } else {
                        "input"
                    };
                    return Err(ReadError::Io {
                        kind,
                        offset: self.consumed + self.len as u64,
                        record: self.index,
                        source,
                    });
                }
            }
        }
    }

    fn peek_byte(&mut self) -> Result<Option<u8>, ReadError> {
        if self.pos == self.len && !self.fill()? {
            return Ok(None);
        }
        Ok(Some(self.buf[self.pos]))
    }

    fn skip_ws(&mut self) -> Result<(), ReadError> {
        loop {
            while self.pos < self.len {
                match self.buf[self.pos] {
                    b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
                    _ => return Ok(()),
                }
            }
            if !self.fill()? {
                return Ok(());
            }
        }
    }

    fn skip_ws_and_bom(&mut self) -> Result<(), ReadError> {
        while self.len - self.pos < 3 && self.fill()? {}
        if self.buf[self.pos..self.len].starts_with(&[0xEF, 0xBB, 0xBF]) {
            self.pos += 3;
        }
        self.skip_ws()
    }

    fn expect_end(&mut self) -> Result<(), ReadError> {
        self.skip_ws()?;
        match self.peek_byte()? {
            None => Ok(()),
            Some(_) => Err(self.syntax("end of file after the top-level object")),
        }
    }

    /// Finds the extent of the JSON value starting at `pos`, reading more input as
    /// needed. Returns absolute offsets into `buf` (valid until the next fill).
    fn scan_value(&mut self) -> Result<(usize, usize), ReadError> {
        let mut scan = ValueScan::default();
        loop {
            let start = self.pos;
            if let Some(end) = scan.advance(&self.buf[start..self.len]) {
                if end == 0 {
                    return Err(self.syntax("a JSON value"));
                }
                return Ok((start, start + end));
            }
            let before = self.pos;
            if !self.fill()? {
                return match scan.finish_at_eof() {
                    Some(end) => Ok((self.pos, self.pos + end)),
                    None => Err(self.truncated()),
                };
            }
            // `fill` may have moved the pending bytes to the front; the scan state is
            // relative to the value start, so it stays valid.
            debug_assert!(self.pos <= before);
        }
    }
}

/// Incremental scanner for the extent of one JSON value. It tracks nesting depth and
/// string state; validation of the value itself is left to the JSON parser.
#[derive(Default)]
struct ValueScan {
    /// Bytes of the value already scanned.
    done: usize,
    depth: u32,
    in_string: bool,
    escape: bool,
    kind: Option<u8>,
}

impl ValueScan {
    /// Scans `bytes` (the value from its first byte). Returns the end offset when the
    /// value is complete.
    fn advance(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = self.done;
        while i < bytes.len() {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                match memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    None => {
                        i = bytes.len();
                        break;
                    }
                    Some(off) => {
                        i += off;
                        if bytes[i] == b'\\' {
                            self.escape = true;
                        } else {
                            self.in_string = false;
                            if self.depth == 0 {
                                self.done = i + 1;
                                return Some(i + 1);
                            }
                        }
                        i += 1;
                    }
                }
                continue;
            }
            let b = bytes[i];
            if self.kind.is_none() {
                self.kind = Some(b);
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    if self.depth == 0 {
                        // A scalar ended at the enclosing container's close.
                        self.done = i;
                        return Some(i);
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.done = i + 1;
                        return Some(i + 1);
                    }
                }
                b',' | b' ' | b'\t' | b'\n' | b'\r' | b':' if self.depth == 0 => {
                    self.done = i;
                    return Some(i);
                }
                _ => {}
            }
            i += 1;
        }
        self.done = i;
        None
    }

    /// At end of input: a bare scalar (number, literal) is complete; anything open is not.
    fn finish_at_eof(&self) -> Option<usize> {
        let scalar = matches!(self.kind, Some(b) if b != b'{' && b != b'[' && b != b'"');
        (scalar && self.depth == 0 && !self.in_string && self.done > 0).then_some(self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn records(input: &[u8]) -> Result<Vec<String>, ReadError> {
        let (mut r, _) = LogReader::open(std::io::Cursor::new(input.to_vec()))?;
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push(String::from_utf8_lossy(rec).into_owned());
        }
        Ok(out)
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Every record, then the error that ended the reading, if any, as text.
    fn read_all(mut r: LogReader<Box<dyn Read + Send>>) -> (Vec<Vec<u8>>, Option<String>) {
        let mut out = Vec::new();
        loop {
            match r.next_record() {
                Ok(Some(rec)) => out.push(rec.to_vec()),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn inflating_ahead_gives_the_same_records_and_errors() {
        // ~3 MB of JSON in two gzip members: many of the thread's buffers, records
        // across their edges, and the member boundary.
        let record = |i: usize| format!(r#"{{"eventID":"{i}","pad":"{}"}}"#, "x".repeat(i % 700));
        let half = |r: std::ops::Range<usize>| r.map(record).collect::<Vec<_>>().join(",");
        let doc = format!(r#"{{"Records":[{},{}]}}"#, half(0..4000), half(4000..8000));
        let (a, b) = doc.split_at(doc.len() / 2);
        let full = [gz(a.as_bytes()), gz(b.as_bytes())].concat();
        let mut corrupt = full.clone();
        for b in corrupt.iter_mut().skip(full.len() / 3).take(64) {
            *b ^= 0x5a;
        }
        let inputs = [
            full.clone(),
            full[..full.len() * 2 / 3].to_vec(),
            corrupt,
            doc.clone().into_bytes(),
        ];
        for (i, input) in inputs.into_iter().enumerate() {
            let open = |ahead| {
                let cursor = std::io::Cursor::new(input.clone());
                let (r, _) = if ahead {
                    LogReader::open_ahead(cursor, Vec::new())
                } else {
                    LogReader::open_in(cursor, Vec::new())
                }
                .unwrap();
                read_all(r)
            };
            let (plain, ahead) = (open(false), open(true));
            assert_eq!(plain.1, ahead.1, "input {i}: the same error");
            assert!(plain.0 == ahead.0, "input {i}: the same records");
            match i {
                0 | 3 => assert_eq!((plain.0.len(), plain.1), (8000, None)),
                _ => assert!(plain.1.is_some() && plain.0.len() < 8000, "input {i}"),
            }
        }
    }

    #[test]
    fn a_thread_stopping_before_the_end_is_an_error_not_a_shorter_stream() {
        // A source that panics after its first bytes, on the inflating thread.
        struct Panics(std::io::Cursor<Vec<u8>>);
        impl Read for Panics {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.position() > 0 {
                    panic!("a bug in the decoder");
                }
                let n = buf.len().min(100);
                self.0.read(&mut buf[..n])
            }
        }
        let data = gz(br#"{"Records":[{"a":1},{"a":2}]}"#);
        let (r, _) = LogReader::open_ahead(Panics(std::io::Cursor::new(data)), Vec::new()).unwrap();
        let (records, error) = read_all(r);
        assert!(records.len() < 2);
        let error = error.expect("an error");
        assert!(error.contains("stopped before its end"), "{error}");
    }

    #[test]
    fn a_reader_dropped_early_stops_the_inflating_thread() {
        // An endless log file, gzipped as it is read: the thread would inflate it
        // forever unless it stops when the reader is gone.
        struct Endless(bool);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let next: &[u8] = if self.0 {
                    br#"{"a":1},"#
                } else {
                    br#"{"Records":["#
                };
                self.0 = true;
                let n = next.len().min(buf.len());
                buf[..n].copy_from_slice(&next[..n]);
                Ok(n)
            }
        }
        // The thread holds the only other handle of `alive`, in its source.
        struct Tracked<R> {
            src: R,
            _alive: std::sync::Arc<()>,
        }
        impl<R: Read> Read for Tracked<R> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.src.read(buf)
            }
        }
        let alive = std::sync::Arc::new(());
        let src = Tracked {
            src: flate2::read::GzEncoder::new(Endless(false), flate2::Compression::fast()),
            _alive: alive.clone(),
        };
        let (mut r, encoding) = LogReader::open_ahead(src, Vec::new()).unwrap();
        assert_eq!(encoding, Encoding::Gzip);
        for _ in 0..100_000 {
            assert_eq!(r.next_record().unwrap(), Some(&br#"{"a":1}"#[..]));
        }
        drop(r);
        let start = std::time::Instant::now();
        while std::sync::Arc::strong_count(&alive) > 1 {
            assert!(
                start.elapsed().as_secs() < 30,
                "the thread is still running"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn reads_plain_and_gzip_records() {
        let doc = br#"{"Records":[{"a":"x}{\"]"},{"b":[1,{"c":2}]} , 7, "s" ]}"#;
        let expect = vec![r#"{"a":"x}{\"]"}"#, r#"{"b":[1,{"c":2}]}"#, "7", r#""s""#];
        assert_eq!(records(doc).unwrap(), expect);
        assert_eq!(records(&gz(doc)).unwrap(), expect);
    }

    #[test]
    fn other_top_level_keys_are_skipped_and_bom_tolerated() {
        let doc = b"\xEF\xBB\xBF { \"x\" : {\"Records\":[1]}, \"Records\" : [ {\"k\":1} ] , \"y\":null }\n";
        assert_eq!(records(doc).unwrap(), vec![r#"{"k":1}"#]);
    }

    #[test]
    fn empty_records_array_is_fine() {
        assert!(records(br#"{"Records":[]}"#).unwrap().is_empty());
    }

    #[test]
    fn not_cloudtrail_documents_are_rejected() {
        for doc in [
            &br#"{"foo":[1,2]}"#[..],
            br#"{"Records":5}"#,
            br#"[1,2]"#,
            b"",
            b"hello world",
        ] {
            let err = records(doc).unwrap_err();
            assert!(
                matches!(err, ReadError::NotCloudTrail { .. }),
                "{:?} -> {err:?}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    #[test]
    fn truncation_and_garbage_are_errors_with_record_index() {
        let err = records(br#"{"Records":[{"a":1},{"b":"#).unwrap_err();
        assert!(
            matches!(err, ReadError::Truncated { record: 1, .. }),
            "{err:?}"
        );
        let err = records(br#"{"Records":[{"a":1}]} trailing"#).unwrap_err();
        assert!(matches!(err, ReadError::Syntax { .. }), "{err:?}");
        let err = records(br#"{"Records":[{"a":1} {"b":2}]}"#).unwrap_err();
        assert!(
            matches!(err, ReadError::Syntax { record: 1, .. }),
            "{err:?}"
        );
        let err = records(br#"{"Records":[{"a":1},]}"#).unwrap_err();
        assert!(
            matches!(err, ReadError::Syntax { record: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn corrupt_and_truncated_gzip_are_io_errors() {
        let mut doc = String::from(r#"{"Records":["#);
        for i in 0..2000 {
            if i > 0 {
                doc.push(',');
            }
            doc.push_str(&format!(
                r#"{{"eventID":"{i}","pad":"{}"}}"#,
                "x".repeat(i % 97)
            ));
        }
        doc.push_str("]}");
        let full = gz(doc.as_bytes());
        assert_eq!(records(&full).unwrap().len(), 2000);
        let cut = &full[..full.len() / 2];
        let err = records(cut).unwrap_err();
        assert!(
            matches!(err, ReadError::Io { .. } | ReadError::Truncated { .. }),
            "{err:?}"
        );
        let mut corrupt = full.clone();
        for b in corrupt.iter_mut().skip(20).take(200) {
            *b ^= 0x5a;
        }
        assert!(records(&corrupt).is_err());
    }

    #[test]
    fn records_larger_than_the_read_chunk_stream_through() {
        let big = "y".repeat(3 * READ_CHUNK + 17);
        let doc = format!(r#"{{"Records":[{{"big":"{big}"}},{{"n":1}}]}}"#);
        let out = records(doc.as_bytes()).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), big.len() + 10);
    }

    #[test]
    fn a_buffer_handed_on_reads_the_next_file_alone() {
        // Records filling most of the buffer, so that a cut copy of the same file read
        // next would find the rest of its last record in the buffer's stale bytes.
        let recs: Vec<String> = (0..200)
            .map(|i| format!(r#"{{"eventID":"{i}","pad":"{}"}}"#, "p".repeat(1000)))
            .collect();
        let doc = format!(r#"{{"Records":[{}]}}"#, recs.join(","));
        let read_all = |input: Vec<u8>, buf: Vec<u8>| {
            let (mut r, _) = LogReader::open_in(std::io::Cursor::new(input), buf).unwrap();
            let mut out = Vec::new();
            let end = loop {
                match r.next_record() {
                    Ok(Some(rec)) => out.push(String::from_utf8_lossy(rec).into_owned()),
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            (out, end, r.into_buffer())
        };
        let (first, end, buf) = read_all(gz(doc.as_bytes()), Vec::new());
        assert_eq!((first, end.is_none()), (recs.clone(), true));
        assert_eq!(buf.len(), READ_CHUNK);
        let cut = doc.len() - 1000;
        for input in [doc.as_bytes()[..cut].to_vec(), gz(&doc.as_bytes()[..cut])] {
            let (out, end, _) = read_all(input, buf.clone());
            let whole = recs
                .iter()
                .filter(|r| doc.find(*r).unwrap() + r.len() <= cut);
            assert_eq!(out, whole.cloned().collect::<Vec<_>>());
            assert!(matches!(end, Some(ReadError::Truncated { .. })), "{end:?}");
        }
        // A buffer grown by a large record is handed back at the usual size.
        let big = format!(r#"{{"Records":[{{"big":"{}"}}]}}"#, "y".repeat(2 << 20));
        let (out, _, buf) = read_all(big.into_bytes(), buf);
        assert_eq!((out.len(), buf.len()), (1, READ_CHUNK));
    }

    #[test]
    fn oversized_record_is_refused() {
        let big = "z".repeat(4 * READ_CHUNK);
        let doc = format!(r#"{{"Records":[{{"big":"{big}"}}]}}"#);
        let mut r = LogReader::new(std::io::Cursor::new(doc.into_bytes()))
            .with_max_record_bytes(READ_CHUNK);
        let err = loop {
            match r.next_record() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("expected an error"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, ReadError::RecordTooLarge { record: 0, .. }),
            "{err:?}"
        );
    }

    /// Hands out at most `step` bytes per read, so records straddle every refill.
    struct Trickle {
        data: Vec<u8>,
        off: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(self.step).min(self.data.len() - self.off);
            out[..n].copy_from_slice(&self.data[self.off..self.off + n]);
            self.off += n;
            Ok(n)
        }
    }

    /// Each record's bytes and parse (or the reader's error), as `Debug` text.
    fn outcomes(doc: &[u8], step: usize, limit: usize, fused: bool) -> Vec<String> {
        let src = Trickle {
            data: doc.to_vec(),
            off: 0,
            step,
        };
        let mut r = LogReader::new(src).with_max_record_bytes(limit);
        let mut out = Vec::new();
        loop {
            let next = if fused {
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
        out.push(format!(
            "{} records, {} bytes",
            r.records_read(),
            r.bytes_read()
        ));
        out
    }

    #[test]
    fn parsing_in_place_reads_what_splitting_then_parsing_reads() {
        let big = format!(r#"{{"big":"{}"}}"#, "y".repeat(READ_CHUNK + 5));
        let docs = [
            r#"{"Records":[{"a":"x}{\"]","a":2},{"b":[1,{"c":2}]} , 7, "s", [1], null]}"#
                .to_string(),
            r#" {"Records" : [ {"eventID":"\u00e9\ud800","e":{}} ,{"x":tru},{"y":1}]}"#.to_string(),
            r#"{"Records":[{"a":1},{"b":"#.to_string(),
            r#"{"Records":[{"a":1} {"b":2}]}"#.to_string(),
            r#"{"Records":[{"a":1}]} trailing"#.to_string(),
            format!(r#"{{"Records":[{big},{{"n":1}},{big}]}}"#),
            format!(r#"{{"Records":[{}1{}]}}"#, "[".repeat(200), "]".repeat(200)),
            format!(
                r#"{{"Records":[{{"d":{}1{}}}]}}"#,
                "[".repeat(200),
                "]".repeat(200)
            ),
        ];
        for doc in &docs {
            for step in [1, 3, 64, 4096, usize::MAX] {
                for limit in [DEFAULT_MAX_RECORD_BYTES, 1024] {
                    let expect = outcomes(doc.as_bytes(), step, limit, false);
                    let got = outcomes(doc.as_bytes(), step, limit, true);
                    assert_eq!(got, expect, "doc {:.60}…, {step} bytes per read", doc);
                }
            }
        }
        // The documents do reach every path: parsed, refused, and the reader's errors.
        let all: Vec<String> = docs
            .iter()
            .flat_map(|d| outcomes(d.as_bytes(), usize::MAX, 1024, true))
            .collect();
        for needle in [
            " Ok(Record",
            "Err(ParseError(\"record is not a JSON object\"))",
            "Err(ParseError(\"invalid JSON: expected ident",
            "error: truncated",
            "error: invalid JSON at offset",
            "error: record 0 is larger than the limit",
        ] {
            assert!(
                all.iter().any(|o| o.contains(needle)),
                "no outcome has {needle}"
            );
        }
    }

    #[test]
    fn memory_stays_bounded_for_many_records() {
        struct Gen {
            n: usize,
            i: usize,
            cur: Vec<u8>,
            off: usize,
        }
        impl Read for Gen {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.off == self.cur.len() {
                    self.cur.clear();
                    self.off = 0;
                    if self.i == 0 {
                        self.cur.extend_from_slice(br#"{"Records":["#);
                    } else if self.i <= self.n {
                        if self.i > 1 {
                            self.cur.push(b',');
                        }
                        self.cur
                            .extend_from_slice(br#"{"eventID":"abc","x":"0123456789"}"#);
                    } else if self.i == self.n + 1 {
                        self.cur.extend_from_slice(b"]}");
                    } else {
                        return Ok(0);
                    }
                    self.i += 1;
                }
                let n = out.len().min(self.cur.len() - self.off);
                out[..n].copy_from_slice(&self.cur[self.off..self.off + n]);
                self.off += n;
                Ok(n)
            }
        }
        let n = 300_000;
        for in_place in [false, true] {
            let mut r = LogReader::new(Gen {
                n,
                i: 0,
                cur: Vec::new(),
                off: 0,
            });
            let mut one = || {
                if in_place {
                    r.next_record_with(|_, rec| rec.is_ok()).unwrap()
                } else {
                    r.next_record().unwrap().map(|_| true)
                }
            };
            let mut count = 0;
            while let Some(parsed) = one() {
                assert!(parsed);
                count += 1;
            }
            assert_eq!(count, n);
            assert!(
                r.buf.len() <= 2 * READ_CHUNK,
                "buffer grew to {}",
                r.buf.len()
            );
        }
    }
}
