//! A capped build log that stores what a terminal would have shown.
//!
//! Docker build output and git's progress redraw a line with `\r`; stored raw,
//! one progress bar would be thousands of lines of noise. The log keeps, per
//! line, only the last redraw, and keeps its size bounded because a build's
//! output is written by the repository's owner, not by us.

use std::collections::VecDeque;

/// The start of a build is kept up to this many bytes: it shows what was built
/// and how, which the tail no longer does once the middle is dropped.
const HEAD_BYTES: usize = 64 * 1024;

/// Appended to a line that was cut to fit.
const ELLIPSIS: &str = "…";

/// Slack kept beyond the line cap in a pending segment, so that a cut still has
/// whole UTF-8 characters to cut at and so that "longer than the cap" stays
/// visible after the rest of the segment is thrown away.
const SEGMENT_SLACK: usize = 4;

/// A build log that folds `\r` redraws, splits on `\n` and stays within a byte budget.
///
/// The first lines (up to 64 KiB, at most half the budget) are kept as the head;
/// after them the most recent lines are kept in the remaining budget, and the
/// lines dropped in between are replaced in [`BuildLog::text`] by one marker line
/// `… N lines omitted …`.
#[derive(Debug, Clone)]
pub struct BuildLog {
    max_bytes: usize,
    head_budget: usize,
    line_cap: usize,
    head: Vec<String>,
    head_bytes: usize,
    head_closed: bool,
    tail: VecDeque<String>,
    tail_bytes: usize,
    omitted: usize,
    cut_lines: bool,
    pending: Pending,
}

impl BuildLog {
    /// Creates an empty log whose [`text`](Self::text) stays within `max_bytes`
    /// (plus the omission marker line).
    #[must_use]
    pub fn new(max_bytes: usize) -> Self {
        let line_cap = max_bytes / 4;
        Self {
            max_bytes,
            // At most half the budget, so that the end of a long build — where
            // the error usually is — always has room.
            head_budget: HEAD_BYTES.min(max_bytes / 2),
            line_cap,
            head: Vec::new(),
            head_bytes: 0,
            head_closed: false,
            tail: VecDeque::new(),
            tail_bytes: 0,
            omitted: 0,
            cut_lines: false,
            pending: Pending::new(line_cap + SEGMENT_SLACK),
        }
    }

    /// Feeds raw output; returns the lines completed by this chunk (for live streaming).
    ///
    /// A `\r` or a multi-byte UTF-8 character may be split across chunks: bytes
    /// are only decoded once their line is complete. A line longer than a quarter
    /// of the budget comes back cut, as it is stored.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut rest = chunk;
        while let Some(at) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.pending.extend(&rest[..at]);
            if rest[at] == b'\n' {
                let raw = self.pending.take_line();
                lines.push(self.complete(&raw));
            } else {
                self.pending.carriage_return();
            }
            rest = &rest[at + 1..];
        }
        self.pending.extend(rest);
        lines
    }

    /// Ends the input: a pending partial line is completed (returned if non-empty).
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let raw = self.pending.take_line();
        Some(self.complete(&raw))
    }

    /// The stored text: completed lines joined with '\n' (each line followed by '\n').
    #[must_use]
    pub fn text(&self) -> String {
        let mut text = String::with_capacity(self.head_bytes + self.tail_bytes + 64);
        for line in &self.head {
            text.push_str(line);
            text.push('\n');
        }
        if self.omitted > 0 {
            text.push_str(&omitted_marker(self.omitted));
            text.push('\n');
        }
        for line in &self.tail {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Whether anything was left out: lines dropped from the middle or a line cut short.
    #[must_use]
    pub fn truncated(&self) -> bool {
        self.omitted > 0 || self.cut_lines
    }

    fn complete(&mut self, raw: &Segment) -> String {
        let mut line = String::from_utf8_lossy(&raw.bytes).into_owned();
        if raw.overflow || line.len() > self.line_cap {
            cut(&mut line, self.line_cap);
            self.cut_lines = true;
        }
        self.store(line.clone());
        line
    }

    fn store(&mut self, line: String) {
        let cost = line.len() + 1;
        // Once one line misses the head, the head is closed for good: a later
        // short line slipped in would make the head skip lines silently.
        if !self.head_closed && self.head_bytes + cost <= self.head_budget {
            self.head_bytes += cost;
            self.head.push(line);
            return;
        }
        self.head_closed = true;
        self.tail_bytes += cost;
        self.tail.push_back(line);
        while self.head_bytes + self.tail_bytes > self.max_bytes {
            let Some(dropped) = self.tail.pop_front() else {
                break;
            };
            self.tail_bytes -= dropped.len() + 1;
            self.omitted += 1;
        }
    }
}

/// The line that stands for the lines dropped between head and tail.
fn omitted_marker(count: usize) -> String {
    format!("{ELLIPSIS} {count} lines omitted {ELLIPSIS}")
}

/// Cuts `line` to at most `cap` bytes, ellipsis included, on a character boundary.
fn cut(line: &mut String, cap: usize) {
    let mut end = cap.saturating_sub(ELLIPSIS.len()).min(line.len());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line.truncate(end);
    line.push_str(ELLIPSIS);
}

/// Raw bytes of one `\r`-delimited piece of a line, capped in memory.
#[derive(Debug, Clone, Default)]
struct Segment {
    bytes: Vec<u8>,
    /// Bytes were thrown away because the segment outgrew its cap.
    overflow: bool,
}

impl Segment {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty() && !self.overflow
    }
}

/// The line being received: what follows the last `\r`, and what preceded it.
#[derive(Debug, Clone)]
struct Pending {
    /// Bytes since the last `\r`.
    current: Segment,
    /// The last non-empty segment before `current`. A `\r` with nothing after it
    /// (the `\r` of `\r\n`, or a progress line ended by `\r` then `\n`) must not
    /// blank the line: a terminal would still show the earlier text.
    shown: Segment,
    /// Most bytes a segment keeps; a hostile build can print gigabytes without a newline.
    keep: usize,
}

impl Pending {
    fn new(keep: usize) -> Self {
        Self {
            current: Segment::default(),
            shown: Segment::default(),
            keep,
        }
    }

    fn extend(&mut self, data: &[u8]) {
        let room = self.keep.saturating_sub(self.current.bytes.len());
        let taken = room.min(data.len());
        self.current.bytes.extend_from_slice(&data[..taken]);
        if taken < data.len() {
            self.current.overflow = true;
        }
    }

    fn carriage_return(&mut self) {
        if !self.current.is_empty() {
            self.shown = std::mem::take(&mut self.current);
        }
    }

    fn is_empty(&self) -> bool {
        self.current.is_empty() && self.shown.is_empty()
    }

    /// Ends the line and returns the text a terminal would show for it.
    fn take_line(&mut self) -> Segment {
        let shown = std::mem::take(&mut self.shown);
        let current = std::mem::take(&mut self.current);
        if current.is_empty() { shown } else { current }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(log: &BuildLog) -> Vec<String> {
        log.text().lines().map(str::to_owned).collect()
    }

    #[test]
    fn carriage_return_redraw_within_a_chunk_keeps_the_last_redraw() {
        let mut log = BuildLog::new(1 << 20);
        let done =
            log.push(b"step 1\nDownloading 10%\rDownloading 55%\rDownloading 100%\nstep 2\n");
        assert_eq!(done, ["step 1", "Downloading 100%", "step 2"]);
        assert_eq!(log.text(), "step 1\nDownloading 100%\nstep 2\n");
        assert!(!log.truncated());
    }

    #[test]
    fn carriage_return_split_across_chunks() {
        let mut log = BuildLog::new(1 << 20);
        assert!(log.push(b"50%").is_empty());
        assert!(log.push(b"\r").is_empty());
        assert!(log.push(b"100%").is_empty());
        assert_eq!(log.push(b"\r"), Vec::<String>::new());
        assert_eq!(log.push(b"\nnext"), ["100%"]);
        assert_eq!(log.finish().as_deref(), Some("next"));
        assert_eq!(log.text(), "100%\nnext\n");
    }

    #[test]
    fn crlf_is_a_plain_line_end_even_when_split() {
        let mut log = BuildLog::new(1 << 20);
        assert_eq!(log.push(b"one\r\ntwo\r"), ["one"]);
        assert_eq!(log.push(b"\nthree\r\n"), ["two", "three"]);
        assert_eq!(log.text(), "one\ntwo\nthree\n");
    }

    #[test]
    fn redraw_then_crlf_keeps_the_redraw() {
        let mut log = BuildLog::new(1 << 20);
        assert_eq!(log.push(b"old text\rnew\r\n"), ["new"]);
        assert_eq!(log.push(b"\r\r\n"), [""]);
    }

    #[test]
    fn utf8_character_split_across_chunks() {
        let mut log = BuildLog::new(1 << 20);
        let text = "héllo → wörld\n".as_bytes();
        // Split inside "é" (2 bytes) and inside "→" (3 bytes).
        assert!(log.push(&text[..2]).is_empty());
        assert!(log.push(&text[2..8]).is_empty());
        assert_eq!(log.push(&text[8..]), ["héllo → wörld"]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut log = BuildLog::new(1 << 20);
        assert_eq!(
            log.push(b"bad \xff\xfe byte\n"),
            ["bad \u{fffd}\u{fffd} byte"]
        );
    }

    #[test]
    fn finish_completes_a_partial_line_once() {
        let mut log = BuildLog::new(1 << 20);
        assert!(log.push(b"no newline yet").is_empty());
        assert_eq!(log.finish().as_deref(), Some("no newline yet"));
        assert_eq!(log.finish(), None);
        assert_eq!(log.text(), "no newline yet\n");
    }

    #[test]
    fn finish_with_nothing_pending_or_only_carriage_returns() {
        let mut log = BuildLog::new(1 << 20);
        assert_eq!(log.finish(), None);
        log.push(b"done\n\r\r");
        assert_eq!(log.finish(), None);
        assert_eq!(log.text(), "done\n");
    }

    #[test]
    fn cap_keeps_head_and_tail_with_an_accurate_marker() {
        // 1000 bytes: a head of up to 500, then the tail.
        let mut log = BuildLog::new(1000);
        for i in 0..1000 {
            log.push(format!("line {i:04}\n").as_bytes()); // 9 bytes + '\n'
        }
        let lines = lines_of(&log);
        assert!(log.truncated());
        // 500 / 10 = 50 head lines; (1000 - 500) / 10 = 50 tail lines.
        assert_eq!(lines[0], "line 0000");
        assert_eq!(lines[49], "line 0049");
        assert_eq!(lines[50], "… 900 lines omitted …");
        assert_eq!(lines[51], "line 0950");
        assert_eq!(lines.last().map(String::as_str), Some("line 0999"));
        assert_eq!(lines.len(), 50 + 1 + 50);
        let stored: usize = lines
            .iter()
            .filter(|l| l.starts_with("line"))
            .map(|l| l.len() + 1)
            .sum();
        assert!(stored <= 1000);
    }

    #[test]
    fn head_is_at_most_64_kib() {
        let mut log = BuildLog::new(1 << 20);
        let line = "x".repeat(1023); // 1 KiB with the newline
        for _ in 0..2000 {
            log.push(format!("{line}\n").as_bytes());
        }
        assert_eq!(log.head.len(), 64);
        assert_eq!(log.head_bytes, 64 * 1024);
        assert!(log.head_bytes + log.tail_bytes <= 1 << 20);
        assert!(log.text().contains("lines omitted"));
    }

    #[test]
    fn long_line_is_cut_with_an_ellipsis() {
        let mut log = BuildLog::new(400); // lines up to 100 bytes
        let accents = "é".repeat(300); // 600 bytes
        let done = log.push(format!("{accents}\n").as_bytes());
        assert_eq!(done.len(), 1);
        let line = &done[0];
        assert!(line.len() <= 100, "{} bytes", line.len());
        assert!(line.ends_with('…'));
        assert!(line.trim_end_matches('…').chars().all(|c| c == 'é'));
        assert!(log.truncated());
        assert_eq!(log.text(), format!("{line}\n"));
    }

    #[test]
    fn endless_line_keeps_memory_bounded() {
        let mut log = BuildLog::new(400);
        let chunk = vec![b'a'; 4096];
        for _ in 0..256 {
            log.push(&chunk);
        }
        assert!(log.pending.current.bytes.len() <= 100 + SEGMENT_SLACK);
        let line = log.finish().unwrap_or_default();
        assert_eq!(line, format!("{}…", "a".repeat(97)));
    }

    #[test]
    fn line_exactly_at_the_cap_is_not_cut() {
        let mut log = BuildLog::new(400);
        let line = "b".repeat(100);
        assert_eq!(log.push(format!("{line}\n").as_bytes()), [line]);
        assert!(!log.truncated());
    }

    /// A tiny deterministic generator: the tests need variety, not quality.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, bound: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(self.0 >> 33).unwrap_or(0) % bound.max(1)
        }
    }

    #[test]
    fn text_never_exceeds_the_budget_plus_the_marker() {
        let alphabet: &[u8] = b"ab \r\n\r\n\xc3\xa9\xe2\x86\x92\xff";
        let mut rng = Lcg(42);
        for round in 0..300 {
            let max_bytes = rng.next(3000);
            let mut log = BuildLog::new(max_bytes);
            for _ in 0..rng.next(200) {
                let chunk: Vec<u8> = (0..rng.next(300))
                    .map(|_| alphabet[rng.next(alphabet.len())])
                    .collect();
                for line in log.push(&chunk) {
                    assert!(!line.contains('\n') && !line.contains('\r'));
                }
                let marker = if log.omitted > 0 {
                    omitted_marker(log.omitted).len() + 1
                } else {
                    0
                };
                assert!(
                    log.text().len() <= max_bytes + marker,
                    "round {round}: {} > {max_bytes} + {marker}",
                    log.text().len()
                );
            }
            log.finish();
            let marker = if log.omitted > 0 {
                omitted_marker(log.omitted).len() + 1
            } else {
                0
            };
            assert!(
                log.text().len() <= max_bytes + marker,
                "round {round} after finish"
            );
        }
    }
}
