//! AWS `application/vnd.amazon.eventstream` framing (Bedrock ConverseStream, InvokeModel
//! streams), read incrementally as bytes arrive.
//!
//! ```text
//! ┌──────────────┬───────────────┬──────────────┬─────────┬─────────┬─────────────┐
//! │ total len u32│ headers len u32│ prelude CRC32│ headers │ payload │ message CRC32│
//! └──────────────┴───────────────┴──────────────┴─────────┴─────────┴─────────────┘
//!   big-endian     big-endian      of 8 bytes                         of all before it
//! ```
//!
//! Every length read off the wire is checked before it is used: a frame longer than the
//! decoder's limit is refused from its prelude alone, before any of it is buffered.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;

/// Prelude (12 bytes) + message CRC (4 bytes): the smallest possible frame.
const OVERHEAD: usize = 16;
const PRELUDE: usize = 12;

/// One header value, by its wire type tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Bytes,
}

impl Frame {
    /// The value of a string header (`:event-type`, `:message-type`, ...), if present.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Why bytes are not an eventstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The prelude's total length is below 16 or above the decoder's limit.
    FrameLength {
        total: u32,
        max: usize,
    },
    /// The headers length does not fit in the frame.
    HeadersLength {
        headers: u32,
        total: u32,
    },
    PreludeCrc,
    MessageCrc,
    /// A header is cut short, has an unknown type tag or a name/string that is not UTF-8.
    Header(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::FrameLength { total, max } => {
                write!(
                    f,
                    "eventstream frame of {total} bytes (must be 16 to {max})"
                )
            }
            FrameError::HeadersLength { headers, total } => write!(
                f,
                "eventstream headers of {headers} bytes do not fit a frame of {total}"
            ),
            FrameError::PreludeCrc => f.write_str("eventstream prelude CRC mismatch"),
            FrameError::MessageCrc => f.write_str("eventstream message CRC mismatch"),
            FrameError::Header(why) => write!(f, "eventstream header: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Reads frames from bytes fed in arbitrary pieces, keeping a partial frame between calls.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame: usize,
    /// Set once an error was returned: the stream is not resynchronisable, so every later
    /// call repeats the error instead of reading garbage as frames.
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// `max_frame`: the longest frame accepted (total length, prelude and CRC included).
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max_frame: max_frame.max(OVERHEAD),
            failed: None,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held that do not make a whole frame yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.try_next() {
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf = BytesMut::new();
                Err(e)
            }
            ok => ok,
        }
    }

    fn try_next(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(prelude) = self.buf.get(..PRELUDE) else {
            return Ok(None);
        };
        let total = be_u32(prelude, 0);
        let headers_len = be_u32(prelude, 4);
        // Check the CRC first: a corrupted length must not be believed (nor reported as
        // the frame's length).
        if crc32fast::hash(&prelude[..8]) != be_u32(prelude, 8) {
            return Err(FrameError::PreludeCrc);
        }
        let total_len = usize::try_from(total).unwrap_or(usize::MAX);
        if total_len < OVERHEAD || total_len > self.max_frame {
            return Err(FrameError::FrameLength {
                total,
                max: self.max_frame,
            });
        }
        let headers_usize = usize::try_from(headers_len).unwrap_or(usize::MAX);
        if headers_usize > total_len - OVERHEAD {
            return Err(FrameError::HeadersLength {
                headers: headers_len,
                total,
            });
        }
        if self.buf.len() < total_len {
            // Reserve what the frame still needs (bounded by max_frame, checked above).
            self.buf.reserve(total_len - self.buf.len());
            return Ok(None);
        }
        let mut frame = self.buf.split_to(total_len).freeze();
        let body_end = total_len - 4;
        let want = be_u32(&frame, body_end);
        if crc32fast::hash(&frame[..body_end]) != want {
            return Err(FrameError::MessageCrc);
        }
        let headers = parse_headers(&frame[PRELUDE..PRELUDE + headers_usize])?;
        frame.truncate(body_end);
        frame.advance(PRELUDE + headers_usize);
        Ok(Some(Frame {
            headers,
            payload: frame,
        }))
    }
}

/// Big-endian u32 at `at`; callers have checked `b.len() >= at + 4`.
fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_be_bytes(w)
}

/// Reads the header block, every length checked against what is left.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Header(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FrameError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
}

fn parse_headers(block: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut out = Vec::new();
    let mut c = Cursor(block);
    while !c.0.is_empty() {
        let [name_len] = c.array::<1>("cut in a name length")?;
        let name = c.take(usize::from(name_len), "cut in a name")?;
        let name = std::str::from_utf8(name)
            .map_err(|_| FrameError::Header("name is not UTF-8"))?
            .to_owned();
        let [tag] = c.array::<1>("cut before a value type")?;
        let value = match tag {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(c.array("cut in a byte")?)),
            3 => HeaderValue::Int16(i16::from_be_bytes(c.array("cut in an int16")?)),
            4 => HeaderValue::Int32(i32::from_be_bytes(c.array("cut in an int32")?)),
            5 => HeaderValue::Int64(i64::from_be_bytes(c.array("cut in an int64")?)),
            6 | 7 => {
                let len = u16::from_be_bytes(c.array("cut in a value length")?);
                let v = c.take(usize::from(len), "cut in a value")?;
                if tag == 6 {
                    HeaderValue::Bytes(v.to_vec())
                } else {
                    HeaderValue::String(
                        std::str::from_utf8(v)
                            .map_err(|_| FrameError::Header("string value is not UTF-8"))?
                            .to_owned(),
                    )
                }
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(c.array("cut in a timestamp")?)),
            9 => HeaderValue::Uuid(c.array("cut in a uuid")?),
            _ => return Err(FrameError::Header("unknown value type")),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// One frame with string headers, for tests and mock upstreams. Names over 255 bytes and
/// values over 65535 bytes are cut (they cannot be framed).
pub fn encode_frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut hb = Vec::new();
    for (name, value) in headers {
        let name = &name.as_bytes()[..name.len().min(255)];
        let value = &value.as_bytes()[..value.len().min(65535)];
        hb.push(name.len() as u8);
        hb.extend_from_slice(name);
        hb.push(7);
        hb.extend_from_slice(&(value.len() as u16).to_be_bytes());
        hb.extend_from_slice(value);
    }
    let total = OVERHEAD + hb.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(hb.len() as u32).to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&hb);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &[&str] = &[
        "amazon-bedrock-json-only-text-first.1",
        "amazon-bedrock-json-other-tool.1",
        "amazon-bedrock-json-tool-text-then-weather-then-json.1",
        "amazon-bedrock-json-tool.1",
        "amazon-bedrock-json-tool.2",
        "amazon-bedrock-json-tool.3",
        "amazon-bedrock-json-with-tool.1",
        "amazon-bedrock-json-with-tools.1",
        "amazon-bedrock-reasoning",
        "amazon-bedrock-text",
        "amazon-bedrock-tool-call.1",
        "amazon-bedrock-tool-no-args",
        "model-stream-error-exception",
    ];

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/bedrock/{name}.converse-stream.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn all_frames(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
        let mut d = FrameDecoder::new(1 << 20);
        d.feed(bytes);
        let mut out = Vec::new();
        while let Some(f) = d.next_frame()? {
            out.push(f);
        }
        assert_eq!(d.buffered(), 0, "bytes left over");
        Ok(out)
    }

    #[test]
    fn every_fixture_decodes() {
        for name in FIXTURES {
            let frames = all_frames(&fixture(name)).unwrap();
            assert!(!frames.is_empty(), "{name}");
            for f in &frames {
                let mt = f.header_str(":message-type").unwrap();
                assert!(mt == "event" || mt == "exception", "{name}: {mt}");
                let _: serde_json::Value = serde_json::from_slice(&f.payload).unwrap();
            }
        }
        let frames = all_frames(&fixture("model-stream-error-exception")).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[1].header_str(":exception-type"),
            Some("modelStreamErrorException")
        );
    }

    #[test]
    fn byte_by_byte_gives_the_same_frames() {
        let bytes = fixture("amazon-bedrock-reasoning");
        let whole = all_frames(&bytes).unwrap();
        let mut d = FrameDecoder::new(1 << 20);
        let mut got = Vec::new();
        for b in &bytes {
            d.feed(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn encode_round_trips() {
        let bytes = encode_frame(&[(":event-type", "x"), ("a", "")], b"{}");
        let frames = all_frames(&bytes).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].header_str(":event-type"), Some("x"));
        assert_eq!(frames[0].header_str("a"), Some(""));
        assert_eq!(frames[0].header_str("b"), None);
        assert_eq!(&frames[0].payload[..], b"{}");
    }

    #[test]
    fn a_flipped_bit_anywhere_is_an_error() {
        let good = encode_frame(
            &[(":event-type", "messageStart")],
            br#"{"role":"assistant"}"#,
        );
        // Prelude, prelude CRC, headers, payload, message CRC: every bit of every byte.
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                let mut d = FrameDecoder::new(1 << 20);
                d.feed(&bad);
                // A flipped length fails the prelude CRC at once: it never waits for
                // bytes the corrupted length announces.
                match d.next_frame() {
                    Err(_) => {}
                    Ok(None) => panic!("byte {i} bit {bit}: waited on a corrupted frame"),
                    Ok(Some(_)) => panic!("byte {i} bit {bit}: corrupted frame accepted"),
                }
            }
        }
    }

    #[test]
    fn errors_stick() {
        let mut bad = encode_frame(&[], b"x");
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let mut d = FrameDecoder::new(1024);
        d.feed(&bad);
        assert_eq!(d.next_frame(), Err(FrameError::MessageCrc));
        d.feed(&encode_frame(&[], b"y"));
        assert_eq!(d.next_frame(), Err(FrameError::MessageCrc));
    }

    /// A prelude with a valid CRC announcing `total` bytes.
    fn prelude(total: u32, headers: u32) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&headers.to_be_bytes());
        let crc = crc32fast::hash(&p);
        p.extend_from_slice(&crc.to_be_bytes());
        p
    }

    #[test]
    fn lengths_over_the_max_fail_without_buffering() {
        let mut d = FrameDecoder::new(1024);
        d.feed(&prelude(u32::MAX, 0));
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::FrameLength {
                total: u32::MAX,
                ..
            })
        ));
        assert!(
            d.buf.capacity() < 1 << 16,
            "allocated for the announced length"
        );

        let mut d = FrameDecoder::new(1024);
        d.feed(&prelude(1025, 0));
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::FrameLength { .. })
        ));

        // Exactly the max is fine (it waits for the rest).
        let mut d = FrameDecoder::new(1024);
        d.feed(&prelude(1024, 0));
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn short_and_inconsistent_lengths_fail() {
        for total in 0..16 {
            let mut d = FrameDecoder::new(1024);
            d.feed(&prelude(total, 0));
            assert!(matches!(
                d.next_frame(),
                Err(FrameError::FrameLength { .. })
            ));
        }
        let mut d = FrameDecoder::new(1024);
        d.feed(&prelude(20, 5));
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::HeadersLength { .. })
        ));
        let mut d = FrameDecoder::new(1024);
        d.feed(&prelude(20, u32::MAX));
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::HeadersLength { .. })
        ));
    }

    /// A frame built from a raw header block (valid CRCs).
    fn raw_frame(hb: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = (OVERHEAD + hb.len() + payload.len()) as u32;
        let mut out = prelude(total, hb.len() as u32);
        out.extend_from_slice(hb);
        out.extend_from_slice(payload);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    #[test]
    fn every_header_type_parses() {
        let mut hb = Vec::new();
        let mut h = |name: &str, tag: u8, v: &[u8]| {
            hb.push(name.len() as u8);
            hb.extend_from_slice(name.as_bytes());
            hb.push(tag);
            hb.extend_from_slice(v);
        };
        h("t", 0, &[]);
        h("f", 1, &[]);
        h("b", 2, &[0xff]);
        h("s", 3, &(-2i16).to_be_bytes());
        h("i", 4, &7i32.to_be_bytes());
        h("l", 5, &(-9i64).to_be_bytes());
        h("y", 6, &[0, 2, 1, 2]);
        h("z", 7, &[0, 2, b'h', b'i']);
        h("ts", 8, &1_700_000_000_000i64.to_be_bytes());
        h("u", 9, &[7u8; 16]);
        let frames = all_frames(&raw_frame(&hb, b"p")).unwrap();
        let want = vec![
            ("t".to_owned(), HeaderValue::Bool(true)),
            ("f".to_owned(), HeaderValue::Bool(false)),
            ("b".to_owned(), HeaderValue::Byte(-1)),
            ("s".to_owned(), HeaderValue::Int16(-2)),
            ("i".to_owned(), HeaderValue::Int32(7)),
            ("l".to_owned(), HeaderValue::Int64(-9)),
            ("y".to_owned(), HeaderValue::Bytes(vec![1, 2])),
            ("z".to_owned(), HeaderValue::String("hi".into())),
            ("ts".to_owned(), HeaderValue::Timestamp(1_700_000_000_000)),
            ("u".to_owned(), HeaderValue::Uuid([7u8; 16])),
        ];
        assert_eq!(frames[0].headers, want);
        assert_eq!(&frames[0].payload[..], b"p");
    }

    #[test]
    fn cut_and_unknown_headers_fail() {
        for hb in [
            &[5u8, b'a'][..],              // name cut
            &[1, b'a'][..],                // no type
            &[1, b'a', 4, 0, 0][..],       // int32 cut
            &[1, b'a', 7, 0, 9, b'x'][..], // string cut
            &[1, b'a', 10][..],            // unknown type
            &[1, 0xff, 0][..],             // name not UTF-8
            &[1, b'a', 7, 0, 1, 0xff][..], // value not UTF-8
            &[1, b'a', 9, 1, 2][..],       // uuid cut
        ] {
            let mut d = FrameDecoder::new(1024);
            d.feed(&raw_frame(hb, b""));
            assert!(
                matches!(d.next_frame(), Err(FrameError::Header(_))),
                "{hb:?}"
            );
        }
    }
}
