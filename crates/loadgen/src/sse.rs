//! A Server-Sent Events parser for the hot path: it takes the body's bytes as they arrive, in
//! chunks split anywhere, and hands out each event with the arrival instant of the chunk that
//! completed it. It follows the WHATWG event-stream rules: lines end in LF, CRLF or CR (a CRLF
//! may be split between chunks); lines starting with `:` are comments; `data:` lines (one optional
//! space after the colon) accumulate, joined by `\n`; a blank line dispatches the event; an event
//! with no `data` line is not dispatched; a field with no colon is a field with an empty value.

use std::borrow::Cow;

/// One dispatched event. Its data borrows the parser's buffer (no copy per event on the hot
/// path); [`Event::into_owned`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a, T> {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The data lines, joined with `\n` (invalid UTF-8 replaced).
    pub data: Cow<'a, str>,
    /// When the chunk that completed the event arrived.
    pub at: T,
}

impl<T> Event<'_, T> {
    /// The event with its data copied out of the parser.
    pub fn into_owned(self) -> Event<'static, T> {
        Event {
            event: self.event,
            data: Cow::Owned(self.data.into_owned()),
            at: self.at,
        }
    }
}

/// Most bytes one event (its pending line plus its data) may hold by default: past this the
/// parser stops buffering and reports [`SseParser::overflowed`]. An OpenAI chunk is a few hundred
/// bytes; a server that sends hundreds of megabytes without a line end is broken or hostile.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 16 << 20;

/// Incremental SSE parser. Feed it with [`SseParser::push`]; call [`SseParser::finish`] at the
/// end of the body to learn whether a partial event was left (a cut-off stream). Memory is
/// bounded: an event larger than its limit stops the parser ([`SseParser::overflowed`]).
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    event: Option<String>,
    /// The previous chunk ended in CR: an LF at the start of the next one belongs to it.
    after_cr: bool,
    /// Bytes received in all.
    bytes: u64,
    /// Most bytes one event may buffer.
    max_event_bytes: usize,
    /// An event grew past `max_event_bytes`: nothing more is parsed.
    overflow: bool,
    /// Events whose data was not valid UTF-8.
    invalid_utf8: u64,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::with_limit(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// A parser with nothing buffered and the default event limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser whose events may hold at most `max_event_bytes` (line plus data).
    pub fn with_limit(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            event: None,
            after_cr: false,
            bytes: 0,
            max_event_bytes,
            overflow: false,
            invalid_utf8: 0,
        }
    }

    /// True once an event grew past the limit (the stream is then a protocol error).
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Events dispatched whose data was not valid UTF-8 (replaced in [`Event::data`]).
    pub fn invalid_utf8(&self) -> u64 {
        self.invalid_utf8
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Feeds one chunk that arrived at `at`; every event it completes goes to `emit`.
    pub fn push<T: Copy>(&mut self, chunk: &[u8], at: T, mut emit: impl FnMut(Event<'_, T>)) {
        self.bytes += chunk.len() as u64;
        // An empty chunk (an empty DATA frame) must not clear a pending CR: the LF that follows
        // still ends the same line (found by the sse fuzz target).
        if self.overflow || chunk.is_empty() {
            return;
        }
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some((&b'\n', tail)) = rest.split_first() {
                rest = tail;
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = rest.split_at(pos);
            let is_cr = tail[0] == b'\r';
            rest = &tail[1..];
            if is_cr {
                match rest.first() {
                    Some(&b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            if self.line.is_empty() {
                self.process_line_slice(head, at, &mut emit);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.process_line_slice(&line, at, &mut emit);
                self.line = line;
                self.line.clear();
            }
            if self.data.len() > self.max_event_bytes {
                self.overflow();
                return;
            }
        }
        if self.line.len() + rest.len() + self.data.len() > self.max_event_bytes {
            self.overflow();
            return;
        }
        self.line.extend_from_slice(rest);
    }

    fn overflow(&mut self) {
        self.overflow = true;
        self.line = Vec::new();
        self.data = Vec::new();
        self.has_data = false;
    }

    fn process_line_slice<T: Copy>(
        &mut self,
        line: &[u8],
        at: T,
        emit: &mut impl FnMut(Event<'_, T>),
    ) {
        if line.is_empty() {
            if self.has_data {
                // Valid UTF-8 (the normal case) is borrowed as is; only broken bytes cost a copy.
                let data = match std::str::from_utf8(&self.data) {
                    Ok(s) => Cow::Borrowed(s),
                    Err(_) => {
                        self.invalid_utf8 += 1;
                        String::from_utf8_lossy(&self.data)
                    }
                };
                emit(Event {
                    event: self.event.take(),
                    data,
                    at,
                });
            }
            self.data.clear();
            self.has_data = false;
            self.event = None;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {} // id, retry and unknown fields do not matter to a benchmark
        }
    }

    /// Ends the stream; true if an event (or a line) was left incomplete.
    pub fn finish(&mut self) -> bool {
        let partial = !self.line.is_empty() || self.has_data;
        self.line.clear();
        self.data.clear();
        self.has_data = false;
        self.event = None;
        partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<Event<'static, usize>> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            p.push(c, i, |e| out.push(e.into_owned()));
        }
        out
    }

    #[test]
    fn openai_stream() {
        let body = b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n";
        let ev = parse_all(&[body]);
        let data: Vec<&str> = ev.iter().map(|e| e.data.as_ref()).collect();
        assert_eq!(data, ["{\"a\":1}", "{\"a\":2}", "[DONE]"]);
    }

    #[test]
    fn comments_multiline_crlf_and_fields() {
        let body =
            b": keep-alive\r\nevent: delta\r\ndata: one\r\ndata:two\r\nid: 7\r\n\r\ndata\n\n";
        let ev = parse_all(&[body]);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].event.as_deref(), Some("delta"));
        assert_eq!(ev[0].data, "one\ntwo");
        assert_eq!(ev[1].data, "");
        assert_eq!(ev[1].event, None);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert!(parse_all(&[b"event: x\n\n: c\n\n"]).is_empty());
    }

    #[test]
    fn timestamp_is_the_completing_chunk() {
        let ev = parse_all(&[b"data: a", b"bc\n", b"\ndata: x\n\n"]);
        assert_eq!(ev[0].data, "abc");
        assert_eq!(ev[0].at, 2);
        assert_eq!(ev[1].at, 2);
    }

    #[test]
    fn cr_split_from_lf_is_one_line_end() {
        let ev = parse_all(&[b"data: a\r", b"\n\r", b"\n"]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data, "a");
        // The CR in chunk 1 already ends the blank line; the LF in chunk 2 only completes it.
        assert_eq!(ev[0].at, 1);
    }

    #[test]
    fn an_event_past_the_limit_stops_the_parser_without_growing() {
        let mut p = SseParser::with_limit(1024);
        let mut n = 0;
        p.push(b"data: small\n\n", 0, |_| n += 1);
        assert_eq!(n, 1);
        // One line of 300 kB in 3 kB chunks, never ended.
        for _ in 0..100 {
            p.push(&[b'x'; 3000], 0, |_| n += 1);
        }
        assert!(p.overflowed());
        assert!(p.line.capacity() <= 4096 && p.data.capacity() <= 4096);
        // Many data lines that add up past the limit, each line short.
        let mut p = SseParser::with_limit(1024);
        for _ in 0..200 {
            p.push(b"data: 0123456789\n", 0, |_| n += 1);
        }
        assert!(p.overflowed());
        assert_eq!(n, 1);
    }

    #[test]
    fn an_empty_chunk_between_cr_and_lf_is_one_line_end() {
        let ev = parse_all(&[b"\nda", b"", b"ta\r", b"", b"\n"]);
        assert!(ev.is_empty(), "{ev:?}");
        assert_eq!(parse_all(&[b"data: a\r", b"", b"\n\r\n"])[0].data, "a");
    }

    #[test]
    fn invalid_utf8_is_counted() {
        let mut p = SseParser::new();
        let mut got = Vec::new();
        p.push(b"data: ok\n\ndata: \xff\xfe\n\n", 0, |e| {
            got.push(e.into_owned())
        });
        assert_eq!(got.len(), 2);
        assert_eq!(p.invalid_utf8(), 1);
        assert_eq!(got[1].data, "\u{fffd}\u{fffd}");
    }

    #[test]
    fn finish_reports_a_cut_stream() {
        let mut p = SseParser::new();
        p.push(b"data: {\"a\":", 0, |_| {});
        assert!(p.finish());
        p.push(b"data: x\n\n", 0, |_| {});
        assert!(!p.finish());
    }

    /// Serializes events with a random line ending per line, random comments and multi-line data.
    fn encode(
        events: &[(Option<String>, Vec<String>)],
        endings: &[usize],
        comments: &[bool],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        let mut k = 0usize;
        let mut eol = |out: &mut Vec<u8>| {
            let mut e = endings[k % endings.len()] % 3;
            // A lone CR followed by a lone LF would be one CRLF ending, not two.
            if e == 0 && out.last() == Some(&b'\r') {
                e = 1;
            }
            out.extend_from_slice([&b"\n"[..], b"\r\n", b"\r"][e]);
            k += 1;
        };
        for (i, (event, lines)) in events.iter().enumerate() {
            if comments[i % comments.len()] {
                out.extend_from_slice(b": ping");
                eol(&mut out);
            }
            if let Some(e) = event {
                out.extend_from_slice(format!("event: {e}").as_bytes());
                eol(&mut out);
            }
            for l in lines {
                out.extend_from_slice(format!("data: {l}").as_bytes());
                eol(&mut out);
            }
            eol(&mut out);
        }
        out
    }

    proptest! {
        /// Any events, any line endings, split at any points: the same events come out, each
        /// stamped with the chunk that held its last byte.
        #[test]
        fn random_chunk_boundaries(
            events in proptest::collection::vec(
                (proptest::option::of("[a-z]{1,8}"), proptest::collection::vec("[ -~]{0,40}", 1..4)),
                1..12),
            endings in proptest::collection::vec(0usize..3, 1..8),
            comments in proptest::collection::vec(any::<bool>(), 1..4),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let body = encode(&events, &endings, &comments);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
            points.push(0);
            points.push(body.len());
            points.sort_unstable();
            points.dedup();
            let chunks: Vec<&[u8]> = points.windows(2).map(|w| &body[w[0]..w[1]]).collect();
            let got = parse_all(&chunks);
            prop_assert_eq!(got.len(), events.len());
            for (g, (event, lines)) in got.iter().zip(&events) {
                prop_assert_eq!(&g.event, event);
                // A data line is `data: ` + text: the parser strips one space, so a text that
                // starts with a space keeps it.
                let want = lines.join("\n");
                prop_assert_eq!(g.data.as_ref(), want.as_str());
            }
            // Each event's stamp is the chunk holding the byte that ended it (its blank line).
            let mut ends = Vec::new();
            let mut p = SseParser::new();
            let mut offset = 0usize;
            for (i, c) in chunks.iter().enumerate() {
                p.push(c, i, |e| ends.push((e.at, offset + c.len())));
                offset += c.len();
            }
            for w in ends.windows(2) {
                prop_assert!(w[0].0 <= w[1].0);
            }
            prop_assert!(!p.finish() || body.ends_with(b"\r"));
        }
    }
}
