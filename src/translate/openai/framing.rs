//! Server-sent-event framing for a stream decoder: bytes in any chunking → the `data` of
//! each complete event. Lines end in LF or CRLF; `data:` with or without a space; comment
//! lines and other fields (`event:`, `id:`, `retry:`) are ignored; several `data:` lines
//! of one event join with `\n`.
//!
//! Linear: each byte is searched once (`searched` remembers how far the unfinished line was
//! already searched), and held bytes move at most once (a consumed prefix is drained once
//! per `feed`, after which an unfinished line sits at the start and only grows).

use memchr::memchr;

#[derive(Debug)]
pub struct SseFraming {
    /// Bytes of the unfinished line (plus, during a feed, the lines not yet consumed).
    buf: Vec<u8>,
    /// How far into `buf` no line end exists.
    searched: usize,
    /// The `data` of the event being read.
    data: Vec<u8>,
    has_data: bool,
    max_event: usize,
}

/// An event grew past the limit without ending.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge;

impl SseFraming {
    pub fn new(max_event: usize) -> Self {
        SseFraming {
            buf: Vec::new(),
            searched: 0,
            data: Vec::new(),
            has_data: false,
            max_event,
        }
    }

    /// Appends `chunk` and calls `on_event` with the data of each event it completes.
    /// Stops early (keeping the rest) when `on_event` returns `false`.
    pub fn feed<E>(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(&[u8]) -> Result<bool, E>,
    ) -> Result<Result<(), TooLarge>, E> {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        let mut keep_going = true;
        while keep_going {
            let Some(off) = memchr(b'\n', &self.buf[self.searched..]) else {
                self.searched = self.buf.len();
                break;
            };
            let end = self.searched + off;
            let mut line = &self.buf[start..end];
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            }
            if line.is_empty() {
                if self.has_data {
                    keep_going = on_event(&self.data)?;
                    self.data.clear();
                    self.has_data = false;
                }
            } else if let Some(value) = line.strip_prefix(b"data:") {
                let value = value.strip_prefix(b" ").unwrap_or(value);
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            start = end + 1;
            self.searched = start;
        }
        if start > 0 {
            self.buf.drain(..start);
            self.searched -= start;
        }
        if self.data.len() + self.buf.len() > self.max_event {
            return Ok(Err(TooLarge));
        }
        Ok(Ok(()))
    }

    /// The body ended: the data of an event that was complete but for its blank line (some
    /// servers end with `data: [DONE]\n` or no newline at all), if any.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.buf);
        let mut line = rest.as_slice();
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        self.searched = 0;
        if self.has_data {
            self.has_data = false;
            Some(std::mem::take(&mut self.data))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(f: &mut SseFraming, chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        f.feed::<()>(chunk, |d| {
            out.push(String::from_utf8_lossy(d).into_owned());
            Ok(true)
        })
        .unwrap()
        .unwrap();
        out
    }

    #[test]
    fn frames_lf_crlf_comments_and_multiline() {
        let mut f = SseFraming::new(1 << 20);
        let got = events(
            &mut f,
            b": keep-alive\n\nevent: x\ndata:{\"a\":1}\r\n\r\ndata: one\ndata: two\n\nid: 3\n\n",
        );
        assert_eq!(got, vec!["{\"a\":1}", "one\ntwo"]);
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let stream = b"data: a\r\n\r\ndata:b\n\n: c\n\ndata: [DONE]\n\n";
        for cut in 0..=stream.len() {
            let mut f = SseFraming::new(1 << 20);
            let mut got = events(&mut f, &stream[..cut]);
            got.extend(events(&mut f, &stream[cut..]));
            assert_eq!(got, vec!["a", "b", "[DONE]"], "cut at {cut}");
        }
    }

    #[test]
    fn oversized_event_is_refused() {
        let mut f = SseFraming::new(16);
        assert!(f
            .feed::<()>(b"data: 0123456789", |_| Ok(true))
            .unwrap()
            .is_ok());
        assert_eq!(
            f.feed::<()>(b"0123456789", |_| Ok(true)).unwrap(),
            Err(TooLarge)
        );
    }

    #[test]
    fn finish_returns_an_unterminated_last_event() {
        let mut f = SseFraming::new(1 << 20);
        assert!(events(&mut f, b"data: [DONE]").is_empty());
        assert_eq!(f.finish().as_deref(), Some(&b"[DONE]"[..]));
        assert_eq!(f.finish(), None);
    }
}
