//! Streaming accounting of OpenAI server-sent-event responses (Chat Completions, legacy
//! Completions and the Responses API): how many events carried generated output, whether the
//! stream finished with `[DONE]`, the reported output token count, and mid-stream errors.
//!
//! The scanner is a byte-at-a-time state machine over SSE lines and the JSON inside them, so
//! a line split anywhere across chunks needs no carried copy: the state itself is the carry.
//! That keeps a stream's cost at a few dozen bytes with no buffer and no allocation at all,
//! and lines of any length are judged exactly as short ones (no degraded mode is needed).
//!
//! What is understood, and what is not:
//! - Lines end at `\n` or `\r` (so `\r\n` and bare `\r` both work); only `data:` lines are read,
//!   with or without the space after the colon. Comments, `event:`, `id:` are skipped.
//! - Each `data:` line is one event. SSE lets one event span several `data:` lines; OpenAI
//!   style servers never do that, and such a split JSON is read line by line.
//! - Strings are tracked with their escapes, so quotes inside content can never look like keys.
//!   A string is a key when a `:` follows it; keys written with escapes (`"con\u0074ent"`)
//!   are not recognised, as no provider writes its own field names that way.
//! - An event is output-bearing at the first of: a non-empty `content`, `reasoning_content`,
//!   `reasoning`, `refusal`, `text` or `delta` string; a non-empty `tool_calls` array; a
//!   non-empty `function_call` object. It is counted as soon as that is seen, so the chunk that
//!   carries the first output byte is the one that reports it.
//! - Responses API events say what they are in a top-level `type` (`response.output_text.delta`,
//!   `response.function_call_arguments.delta`, …): their output is the string `delta`. Their
//!   `.done` and `response.completed` events repeat the whole output under `text`; once a line's
//!   `type` starts with `response.`, `text` and its kin no longer count on that line. OpenAI
//!   writes `type` first; a server that writes it last gets those echoes counted as output
//!   events, which only matters when the stream reports no usage (TTFT is set by the earlier
//!   deltas either way).
//! - The output token count is `completion_tokens` (chat, completions) or `output_tokens`
//!   (Responses API), read only directly inside a `usage` object.
//! - An error event has a top-level `error` key whose value is an object or a string
//!   (`"error":null` is not an error), or a top-level `type` of `error` or `response.failed`
//!   (the Responses API's failures).

/// What one chunk (or the end of the stream) contained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkReport {
    /// Events carrying generated output, each counted once however many fields it has.
    pub output_events: u32,
    /// A `data: [DONE]` line ended here.
    pub done: bool,
    /// The last `usage.completion_tokens` (or `usage.output_tokens`) that ended here.
    pub completion_tokens: Option<u64>,
    pub error_event: bool,
}

impl ChunkReport {
    /// Adds a later report to this one, to total a stream.
    pub fn merge(&mut self, later: ChunkReport) {
        self.output_events = self.output_events.saturating_add(later.output_events);
        self.done |= later.done;
        self.completion_tokens = later.completion_tokens.or(self.completion_tokens);
        self.error_event |= later.error_event;
    }
}

/// Longest key the scanner needs to recognise (`reasoning_content`, `completion_tokens`), and
/// the longest `type` value it needs to tell apart (`response.failed`).
const KEY_CAP: usize = 17;

/// Top-level `type` values of Responses API events.
const RESPONSES_TYPE_PREFIX: &[u8] = b"response.";

/// Keys whose value matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Text,
    /// A string here is output (Responses API); an object is a chat delta, read as JSON.
    Delta,
    Type,
    ToolCalls,
    FunctionCall,
    Error,
    Usage,
    CompletionTokens,
    Other,
}

fn classify(name: &[u8]) -> Key {
    match name {
        b"content" | b"reasoning_content" | b"reasoning" | b"refusal" | b"text" => Key::Text,
        b"delta" => Key::Delta,
        b"type" => Key::Type,
        b"tool_calls" => Key::ToolCalls,
        b"function_call" => Key::FunctionCall,
        b"error" => Key::Error,
        b"usage" => Key::Usage,
        b"completion_tokens" | b"output_tokens" => Key::CompletionTokens,
        _ => Key::Other,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line: how many bytes of `data` matched so far.
    Field(u8),
    /// Nothing more to learn on this line.
    Skip,
    /// After `data:`, before the payload.
    DataStart,
    /// Bytes of `[DONE]` matched so far.
    Done(u8),
    /// JSON, between tokens.
    Json,
    Str,
    StrEscape,
    /// A string just closed: a `:` makes it a key.
    AfterStr,
    /// After a key's `:`, before its value.
    Value(Key),
    /// The first byte inside a text value's string decides whether it is empty.
    TextFirst,
    /// The first byte inside a `tool_calls`/`function_call` container, which closes with this.
    ContainerFirst(u8),
    /// Digits of `completion_tokens`.
    Number,
}

#[derive(Debug, Clone)]
pub struct SseScanner {
    state: State,
    /// Open JSON containers on this line.
    depth: u32,
    /// Depth inside the current `usage` object; 0 when not in one.
    usage_depth: u32,
    key: [u8; KEY_CAP],
    /// Bytes captured of the current string; more than `KEY_CAP` means "too long to be a key"
    /// (`key` then holds its first `KEY_CAP` bytes).
    key_len: usize,
    key_escaped: bool,
    /// The current string is the value of the line's top-level `type`.
    in_type_value: bool,
    /// This line's top-level `type` said it is a Responses API event.
    line_responses: bool,
    number: u64,
    line_output: bool,
    line_error: bool,
    saw_done: bool,
}

impl Default for SseScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl SseScanner {
    pub const fn new() -> Self {
        SseScanner {
            state: State::Field(0),
            depth: 0,
            usage_depth: 0,
            key: [0; KEY_CAP],
            key_len: 0,
            key_escaped: false,
            in_type_value: false,
            line_responses: false,
            number: 0,
            line_output: false,
            line_error: false,
            saw_done: false,
        }
    }

    /// Whether a `data: [DONE]` line has ended so far.
    pub fn saw_done(&self) -> bool {
        self.saw_done
    }

    pub fn feed(&mut self, chunk: &[u8]) -> ChunkReport {
        let mut report = ChunkReport::default();
        let mut i = 0;
        while i < chunk.len() {
            // Fast paths: most bytes are inside content strings or in lines we skip.
            let rest = chunk.get(i..).unwrap_or_default();
            match self.state {
                State::Skip => {
                    i += rest.iter().position(|&b| is_eol(b)).unwrap_or(rest.len());
                }
                State::Str => {
                    let run = rest
                        .iter()
                        .position(|&b| matches!(b, b'"' | b'\\' | b'\n' | b'\r'))
                        .unwrap_or(rest.len());
                    self.capture(rest.get(..run).unwrap_or_default());
                    i += run;
                }
                _ => {}
            }
            let Some(&b) = chunk.get(i) else { break };
            i += 1;
            if is_eol(b) {
                self.end_line(&mut report);
            } else {
                self.step(b, &mut report);
            }
        }
        report
    }

    /// Ends the stream: a last line without a line break still counts.
    pub fn finish(&mut self) -> ChunkReport {
        let mut report = ChunkReport::default();
        self.end_line(&mut report);
        report
    }

    fn end_line(&mut self, report: &mut ChunkReport) {
        match self.state {
            State::Done(6) => {
                report.done = true;
                self.saw_done = true;
            }
            State::Number => report.completion_tokens = Some(self.number),
            _ => {}
        }
        self.state = State::Field(0);
        self.depth = 0;
        self.usage_depth = 0;
        self.in_type_value = false;
        self.line_responses = false;
        self.line_output = false;
        self.line_error = false;
    }

    fn step(&mut self, b: u8, report: &mut ChunkReport) {
        match self.state {
            State::Field(n) => {
                self.state = match (n, b) {
                    (4, b':') => State::DataStart,
                    (0..=3, _) if b"data".get(usize::from(n)) == Some(&b) => State::Field(n + 1),
                    // Comments (`: ping`), `event:`, `id:`, `retry:` and anything else.
                    _ => State::Skip,
                };
            }
            State::Skip => {}
            State::DataStart => match b {
                b' ' | b'\t' => {}
                b'[' => self.state = State::Done(1),
                b'{' => self.json(b),
                _ => self.state = State::Skip,
            },
            State::Done(n) => {
                self.state = match b"[DONE]".get(usize::from(n)) {
                    Some(&want) if want == b => State::Done(n + 1),
                    None if is_ws(b) => State::Done(n),
                    _ => State::Skip,
                };
            }
            State::Json => self.json(b),
            State::Str => match b {
                b'"' => {
                    if self.in_type_value {
                        self.in_type_value = false;
                        self.judge_type(report);
                    }
                    self.state = State::AfterStr;
                }
                b'\\' => {
                    self.key_escaped = true;
                    self.state = State::StrEscape;
                }
                _ => self.capture(&[b]),
            },
            // The escaped byte cannot end the string, whatever it is.
            State::StrEscape => self.state = State::Str,
            State::AfterStr => {
                if b == b':' {
                    let key = match self.key.get(..self.key_len) {
                        Some(name) if !self.key_escaped => classify(name),
                        _ => Key::Other,
                    };
                    self.state = State::Value(key);
                } else if !is_ws(b) {
                    self.json(b);
                }
            }
            State::Value(key) => {
                if is_ws(b) {
                    return;
                }
                match (key, b) {
                    (Key::Text, b'"') if !self.line_responses => {
                        self.open_string();
                        self.state = State::TextFirst;
                    }
                    (Key::Delta, b'"') => {
                        self.open_string();
                        self.state = State::TextFirst;
                    }
                    (Key::Type, b'"') if self.depth == 1 => {
                        self.open_string();
                        self.in_type_value = true;
                    }
                    (Key::ToolCalls, b'[') | (Key::FunctionCall, b'{') => {
                        self.depth = self.depth.saturating_add(1);
                        self.state = State::ContainerFirst(if b == b'[' { b']' } else { b'}' });
                    }
                    (Key::Error, b'{' | b'"') if self.depth == 1 => {
                        self.error(report);
                        self.json(b);
                    }
                    (Key::Usage, b'{') => {
                        self.json(b);
                        self.usage_depth = self.depth;
                    }
                    (Key::CompletionTokens, b'0'..=b'9')
                        if self.usage_depth != 0 && self.depth == self.usage_depth =>
                    {
                        self.number = u64::from(b - b'0');
                        self.state = State::Number;
                    }
                    _ => self.json(b),
                }
            }
            State::TextFirst => {
                if b == b'"' {
                    self.state = State::AfterStr;
                } else {
                    self.output(report);
                    self.state = State::Str;
                    self.step(b, report);
                }
            }
            State::ContainerFirst(close) => {
                if b == close {
                    self.depth = self.depth.saturating_sub(1);
                    self.state = State::Json;
                } else if !is_ws(b) {
                    self.output(report);
                    self.json(b);
                }
            }
            State::Number => {
                if b.is_ascii_digit() {
                    self.number = self
                        .number
                        .saturating_mul(10)
                        .saturating_add(u64::from(b - b'0'));
                } else {
                    report.completion_tokens = Some(self.number);
                    self.json(b);
                }
            }
        }
    }

    /// A byte between JSON tokens.
    fn json(&mut self, b: u8) {
        self.state = State::Json;
        match b {
            b'"' => self.open_string(),
            b'{' | b'[' => self.depth = self.depth.saturating_add(1),
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth < self.usage_depth {
                    self.usage_depth = 0;
                }
            }
            _ => {}
        }
    }

    fn open_string(&mut self) {
        self.key_len = 0;
        self.key_escaped = false;
        self.state = State::Str;
    }

    /// Keeps the first `KEY_CAP` bytes of a string and whether it was longer.
    fn capture(&mut self, bytes: &[u8]) {
        let room = KEY_CAP.saturating_sub(self.key_len);
        let take = bytes.len().min(room);
        if let (Some(slot), Some(head)) = (
            self.key.get_mut(self.key_len..self.key_len + take),
            bytes.get(..take),
        ) {
            slot.copy_from_slice(head);
        }
        self.key_len = if bytes.len() > room {
            KEY_CAP + 1
        } else {
            self.key_len + take
        };
    }

    /// The line's top-level `type` string just closed.
    fn judge_type(&mut self, report: &mut ChunkReport) {
        if self.key_escaped {
            return;
        }
        let captured = self
            .key
            .get(..self.key_len.min(KEY_CAP))
            .unwrap_or_default();
        let complete = self.key_len <= KEY_CAP;
        let failed = complete && (captured == b"error" || captured == b"response.failed");
        if captured.starts_with(RESPONSES_TYPE_PREFIX) {
            self.line_responses = true;
        }
        if failed {
            self.error(report);
        }
    }

    fn error(&mut self, report: &mut ChunkReport) {
        if !self.line_error {
            self.line_error = true;
            report.error_event = true;
        }
    }

    fn output(&mut self, report: &mut ChunkReport) {
        if !self.line_output {
            self.line_output = true;
            report.output_events = report.output_events.saturating_add(1);
        }
    }
}

fn is_eol(b: u8) -> bool {
    b == b'\n' || b == b'\r'
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_whole(stream: &[u8]) -> ChunkReport {
        let mut s = SseScanner::new();
        let mut total = s.feed(stream);
        total.merge(s.finish());
        total
    }

    fn scan_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> ChunkReport {
        let mut s = SseScanner::new();
        let mut total = ChunkReport::default();
        for piece in pieces {
            total.merge(s.feed(piece));
        }
        total.merge(s.finish());
        total
    }

    fn report(output_events: u32, done: bool, tokens: Option<u64>, error: bool) -> ChunkReport {
        ChunkReport {
            output_events,
            done,
            completion_tokens: tokens,
            error_event: error,
        }
    }

    /// Role-only first chunk, content (with escaped quotes and a fake key inside), reasoning,
    /// a tool call, a finish chunk, a usage-only chunk, comments and `[DONE]`.
    const STREAM: &str = concat!(
        ": ping\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"think\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"he said \\\"content\\\":\\\"x\\\" \\\\\"},\"logprobs\":null}]}\n\n",
        "event: message\n",
        "data:{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\u00e9 ok\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":null},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":42,\"total_tokens\":51,\"completion_tokens_details\":{\"reasoning_tokens\":7}}}\n\n",
        "data: [DONE]\n\n",
    );

    const STREAM_TOTAL: ChunkReport = ChunkReport {
        output_events: 4,
        done: true,
        completion_tokens: Some(42),
        error_event: false,
    };

    #[test]
    fn whole_stream_counts_output_events_usage_and_done() {
        assert_eq!(scan_whole(STREAM.as_bytes()), STREAM_TOTAL);
    }

    #[test]
    fn split_at_every_byte_position_gives_the_same_totals() {
        let b = STREAM.as_bytes();
        for cut in 0..=b.len() {
            let (head, tail) = b.split_at(cut);
            assert_eq!(scan_pieces([head, tail]), STREAM_TOTAL, "cut at {cut}");
        }
        assert_eq!(scan_pieces(b.chunks(1)), STREAM_TOTAL, "one byte per chunk");
        for size in [2, 3, 7, 64] {
            assert_eq!(
                scan_pieces(b.chunks(size)),
                STREAM_TOTAL,
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn crlf_and_bare_cr_line_endings() {
        for eol in ["\r\n", "\r"] {
            let stream = STREAM.replace('\n', eol);
            let b = stream.as_bytes();
            assert_eq!(scan_whole(b), STREAM_TOTAL, "{eol:?}");
            for cut in 0..=b.len() {
                let (head, tail) = b.split_at(cut);
                assert_eq!(scan_pieces([head, tail]), STREAM_TOTAL, "{eol:?} cut {cut}");
            }
        }
    }

    #[test]
    fn one_chunk_reports_each_event_it_holds() {
        let mut s = SseScanner::new();
        let first = s.feed(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n\
              data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n\
              data: {\"choices\":[{\"delta\":{\"con",
        );
        assert_eq!(first, report(2, false, None, false));
        // The third event's output arrives with the byte after its opening quote.
        assert_eq!(s.feed(b"tent\":\""), report(0, false, None, false));
        assert_eq!(s.feed(b"c"), report(1, false, None, false));
        assert_eq!(
            s.feed(b"\"}}]}\n\ndata: [DONE]"),
            report(0, false, None, false)
        );
        assert!(!s.saw_done());
        assert_eq!(s.finish(), report(0, true, None, false));
        assert!(s.saw_done());
    }

    #[test]
    fn single_events_are_judged_by_what_they_carry() {
        let cases: &[(&str, ChunkReport, &str)] = &[
            (
                r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#,
                report(0, false, None, false),
                "role-only first chunk",
            ),
            (
                r#"{"choices":[{"delta":{"content":null}}]}"#,
                report(0, false, None, false),
                "null content",
            ),
            (
                r#"{"choices":[{"delta":{"content":"hi","reasoning_content":"x"}}]}"#,
                report(1, false, None, false),
                "two output fields, one event",
            ),
            (
                r#"{"choices":[{"delta":{"reasoning":"hmm"}}]}"#,
                report(1, false, None, false),
                "reasoning",
            ),
            (
                r#"{"choices":[{"delta":{"reasoning_content":""}}]}"#,
                report(0, false, None, false),
                "empty reasoning",
            ),
            (
                r#"{"choices":[{"delta":{"refusal":"no"}}]}"#,
                report(1, false, None, false),
                "refusal",
            ),
            (
                r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]}}]}"#,
                report(1, false, None, false),
                "tool call arguments",
            ),
            (
                r#"{"choices":[{"delta":{"tool_calls": [ ]}}]}"#,
                report(0, false, None, false),
                "empty tool calls",
            ),
            (
                r#"{"choices":[{"delta":{"tool_calls":null}}]}"#,
                report(0, false, None, false),
                "null tool calls",
            ),
            (
                r#"{"choices":[{"delta":{"function_call":{"name":"f"}}}]}"#,
                report(1, false, None, false),
                "legacy function call",
            ),
            (
                r#"{"choices":[{"delta":{"function_call":{}}}]}"#,
                report(0, false, None, false),
                "empty function call",
            ),
            (
                r#"{"object":"text_completion","choices":[{"text":" world","index":0,"logprobs":null}]}"#,
                report(1, false, None, false),
                "legacy completions text",
            ),
            (
                r#"{"choices":[{"text":"","finish_reason":"length"}]}"#,
                report(0, false, None, false),
                "legacy empty text",
            ),
            (
                r#"{"choices":[{"delta":{},"logprobs":{"content":[{"token":"a"}]}}]}"#,
                report(0, false, None, false),
                "logprobs content is not output",
            ),
            (
                r#"{"choices":[{"delta":{"content":"\"content\":\"x\",\"text\":\"y\""}}]}"#,
                report(1, false, None, false),
                "keys inside a string are content",
            ),
            (
                r#"{"choices":[{"delta":{"role":"assistant","content":"","x":"\\","y":"\"content\":\"z\""}}]}"#,
                report(0, false, None, false),
                "escaped quotes never open a key",
            ),
            (
                r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":17,"total_tokens":22}}"#,
                report(0, false, Some(17), false),
                "usage-only chunk",
            ),
            (
                r#"{"choices":[{"delta":{"content":"x"}}],"usage": {"completion_tokens" : 3}}"#,
                report(1, false, Some(3), false),
                "content with usage",
            ),
            (
                r#"{"choices":[{"delta":{"content":"x"}}],"usage":null}"#,
                report(1, false, None, false),
                "null usage",
            ),
            (
                r#"{"choices":[],"usage":{"completion_tokens_details":{"completion_tokens":9},"completion_tokens":4}}"#,
                report(0, false, Some(4), false),
                "only usage's own completion_tokens",
            ),
            (
                r#"{"x":{"completion_tokens":8}}"#,
                report(0, false, None, false),
                "completion_tokens outside usage",
            ),
            (
                r#"{"error":{"message":"overloaded","type":"server_error","code":null}}"#,
                report(0, false, None, true),
                "mid-stream error",
            ),
            (
                r#"{"error":"rate limited"}"#,
                report(0, false, None, true),
                "string error",
            ),
            (
                r#"{"error":null,"choices":[{"delta":{"content":"x"}}]}"#,
                report(1, false, None, false),
                "null error",
            ),
            (
                r#"{"choices":[{"delta":{"content":"x"},"error":{"m":1}}]}"#,
                report(1, false, None, false),
                "nested error key is not top-level",
            ),
            (
                r#"{"choices":[{"delta":{"content":"{\"error\":{}}"}}]}"#,
                report(1, false, None, false),
                "error inside content",
            ),
            (
                r#"{"type":"response.output_text.delta","item_id":"m","output_index":0,"delta":"hi"}"#,
                report(1, false, None, false),
                "responses text delta",
            ),
            (
                r#"{"type":"response.output_text.delta","delta":""}"#,
                report(0, false, None, false),
                "responses empty delta",
            ),
            (
                r#"{"type":"response.function_call_arguments.delta","delta":"{\"a\""}"#,
                report(1, false, None, false),
                "responses tool-call arguments delta",
            ),
            (
                r#"{"type":"response.reasoning_summary_text.delta","delta":"hmm"}"#,
                report(1, false, None, false),
                "responses reasoning delta",
            ),
            (
                r#"{"type":"response.created","sequence_number":0,"response":{"status":"in_progress","instructions":null,"output":[],"text":{"format":{"type":"text"}},"reasoning":{"effort":null},"usage":null}}"#,
                report(0, false, None, false),
                "responses created",
            ),
            (
                r#"{"type":"response.content_part.added","part":{"type":"output_text","text":"","annotations":[]}}"#,
                report(0, false, None, false),
                "responses empty part",
            ),
            (
                r#"{"type":"response.output_text.done","text":"tok1 tok2 "}"#,
                report(0, false, None, false),
                "responses text done echoes no output",
            ),
            (
                r#"{"type":"response.content_part.done","part":{"type":"output_text","text":"tok1 "}}"#,
                report(0, false, None, false),
                "responses part done echoes no output",
            ),
            (
                r#"{"type":"response.completed","response":{"status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"tok1 tok2 "}]}],"usage":{"input_tokens":4,"input_tokens_details":{"cached_tokens":0},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":6}}}"#,
                report(0, false, Some(2), false),
                "responses completed: output_tokens, no output",
            ),
            (
                r#"{"delta":"x","item_id":"m","type":"response.output_text.delta"}"#,
                report(1, false, None, false),
                "responses delta with type last",
            ),
            (
                r#"{"text":"whole","type":"response.output_text.done"}"#,
                report(1, false, None, false),
                "type last: the echo counts (documented; usage decides tokens)",
            ),
            (
                r#"{"type":"error","code":"server_error","message":"boom","param":null}"#,
                report(0, false, None, true),
                "responses error event",
            ),
            (
                r#"{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"x"}}}"#,
                report(0, false, None, true),
                "responses failed",
            ),
            (
                r#"{"type":"error","error":{"type":"overloaded_error"}}"#,
                report(0, false, None, true),
                "typed error with an error object counts once",
            ),
            (
                r#"{"type":"response.incomplete","response":{"status":"incomplete","usage":{"output_tokens":7}}}"#,
                report(0, false, Some(7), false),
                "responses incomplete is no error",
            ),
            (
                r#"{"type":"response.output_item.added","item":{"type":"error"}}"#,
                report(0, false, None, false),
                "nested type error is not top-level",
            ),
            (
                r#"{"type":"errors"}"#,
                report(0, false, None, false),
                "type that only starts with error",
            ),
            (
                r#"{"type":"response.failed.not"}"#,
                report(0, false, None, false),
                "type longer than response.failed",
            ),
            (
                r#"{"type":"\u0065rror"}"#,
                report(0, false, None, false),
                "escaped type is not judged",
            ),
            (
                r#"{"choices":[{"delta":{"content":"x"}}],"type":"chat"}"#,
                report(1, false, None, false),
                "a plain type changes nothing",
            ),
            (
                r#"{"x":{"output_tokens":8}}"#,
                report(0, false, None, false),
                "output_tokens outside usage",
            ),
            ("[DONE]", report(0, true, None, false), "done"),
            (
                "[DONE]  ",
                report(0, true, None, false),
                "done, trailing space",
            ),
            ("[DONE]x", report(0, false, None, false), "not done"),
            ("[DON", report(0, false, None, false), "cut done"),
        ];
        for (payload, want, why) in cases {
            for prefix in ["data: ", "data:", "data:  "] {
                let line = format!("{prefix}{payload}\n\n");
                assert_eq!(scan_whole(line.as_bytes()), *want, "{why}: {line}");
                let b = line.as_bytes();
                for cut in 0..=b.len() {
                    let (head, tail) = b.split_at(cut);
                    assert_eq!(scan_pieces([head, tail]), *want, "{why}: cut {cut}");
                }
            }
        }
    }

    /// A streamed Responses API answer as OpenAI sends it: `event:` lines, typed events, two
    /// text deltas, the `.done` echoes and `response.completed` with usage, no `[DONE]`.
    const RESPONSES_STREAM: &str = concat!(
        "event: response.created\n",
        "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"output\":[],\"text\":{\"format\":{\"type\":\"text\"}},\"usage\":null}}\n\n",
        "event: response.output_item.added\n",
        "data: {\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,\"item\":{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}\n\n",
        "event: response.content_part.added\n",
        "data: {\"type\":\"response.content_part.added\",\"sequence_number\":2,\"item_id\":\"msg_1\",\"part\":{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":3,\"item_id\":\"msg_1\",\"delta\":\"Hel\\\"lo\",\"logprobs\":[]}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_1\",\"delta\":\" world\",\"logprobs\":[]}\n\n",
        "event: response.output_text.done\n",
        "data: {\"type\":\"response.output_text.done\",\"sequence_number\":5,\"item_id\":\"msg_1\",\"text\":\"Hel\\\"lo world\"}\n\n",
        "event: response.content_part.done\n",
        "data: {\"type\":\"response.content_part.done\",\"sequence_number\":6,\"part\":{\"type\":\"output_text\",\"text\":\"Hel\\\"lo world\"}}\n\n",
        "event: response.completed\n",
        "data: {\"type\":\"response.completed\",\"sequence_number\":7,\"response\":{\"status\":\"completed\",\"output\":[{\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hel\\\"lo world\"}]}],\"usage\":{\"input_tokens\":3,\"output_tokens\":2,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":5}}}\n\n",
    );

    #[test]
    fn responses_stream_counts_deltas_and_output_tokens_across_any_chunking() {
        let want = report(2, false, Some(2), false);
        let b = RESPONSES_STREAM.as_bytes();
        assert_eq!(scan_whole(b), want);
        for cut in 0..=b.len() {
            let (head, tail) = b.split_at(cut);
            assert_eq!(scan_pieces([head, tail]), want, "cut at {cut}");
        }
        for size in [1, 2, 5, 64] {
            assert_eq!(scan_pieces(b.chunks(size)), want, "chunks of {size}");
        }
        // The first delta's chunk is the one that reports the first output.
        let first_delta = RESPONSES_STREAM.find("\"delta\":\"Hel").unwrap() + 9;
        let mut s = SseScanner::new();
        assert_eq!(s.feed(&b[..first_delta]).output_events, 0);
        assert_eq!(s.feed(&b[first_delta..first_delta + 1]).output_events, 1);
    }

    #[test]
    fn responses_failure_events_end_as_errors() {
        let failed = concat!(
            "event: response.output_text.delta\n",
            "data: {\"type\":\"response.output_text.delta\",\"delta\":\"a\"}\n\n",
            "event: error\n",
            "data: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"boom\"}\n\n",
        );
        assert_eq!(scan_whole(failed.as_bytes()), report(1, false, None, true));
        let b = failed.as_bytes();
        for cut in 0..=b.len() {
            let (head, tail) = b.split_at(cut);
            assert_eq!(scan_pieces([head, tail]), report(1, false, None, true));
        }
    }

    #[test]
    fn non_data_lines_are_ignored() {
        let stream = concat!(
            ": {\"choices\":[{\"delta\":{\"content\":\"comment\"}}]}\n",
            "event: {\"error\":{}}\n",
            "id: [DONE]\n",
            "retry: 100\n",
            "Data: {\"choices\":[{\"delta\":{\"content\":\"case\"}}]}\n",
            "data : {\"choices\":[{\"delta\":{\"content\":\"space\"}}]}\n",
            "dat\n",
            "data\n",
            "data: \"just a string\"\n",
            "\n\n",
        );
        assert_eq!(scan_whole(stream.as_bytes()), ChunkReport::default());
    }

    #[test]
    fn last_usage_in_a_chunk_wins() {
        let stream = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":{\"completion_tokens\":1}}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}],\"usage\":{\"completion_tokens\":2}}\n\n",
        );
        assert_eq!(
            scan_whole(stream.as_bytes()),
            report(2, false, Some(2), false)
        );
        // A number still being read when the stream ends is complete.
        let mut s = SseScanner::new();
        assert_eq!(
            s.feed(b"data: {\"usage\":{\"completion_tokens\":12")
                .completion_tokens,
            None
        );
        assert_eq!(s.feed(b"34").completion_tokens, None);
        assert_eq!(s.finish().completion_tokens, Some(1234));
        let huge = format!(
            "data: {{\"usage\":{{\"completion_tokens\":{}}}}}\n",
            "9".repeat(40)
        );
        assert_eq!(
            scan_whole(huge.as_bytes()).completion_tokens,
            Some(u64::MAX)
        );
    }

    #[test]
    fn lines_of_any_length_count_once() {
        let big = "x".repeat(1 << 20);
        let escaped = "\\\"".repeat(100_000);
        let cases: &[(String, u32)] = &[
            (
                format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{big}\"}}}}]}}\n\n"),
                1,
            ),
            (
                format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{escaped}\"}}}}]}}\n\n"),
                1,
            ),
            (
                format!(
                    "data: {{\"choices\":[{{\"delta\":{{\"tool_calls\":[{{\"function\":{{\"arguments\":\"{big}\"}}}}]}}}}]}}\n\n"
                ),
                1,
            ),
            // A huge field before the content must not hide or fake it.
            (
                format!("data: {{\"pad\":\"{big}\",\"choices\":[{{\"delta\":{{\"content\":\"\"}}}}]}}\n\n"),
                0,
            ),
            (
                format!("data: {{\"pad\":\"{escaped}\",\"choices\":[{{\"delta\":{{\"content\":\"y\"}}}}]}}\n\n"),
                1,
            ),
        ];
        for (line, want) in cases {
            let stream = format!("{line}{line}data: [DONE]\n\n");
            let b = stream.as_bytes();
            let expected = report(want * 2, true, None, false);
            assert_eq!(scan_whole(b), expected);
            assert_eq!(scan_pieces(b.chunks(16 * 1024 + 3)), expected);
            assert_eq!(scan_pieces(b.chunks(1000)), expected);
        }
    }

    #[test]
    fn scanner_state_stays_small() {
        assert!(std::mem::size_of::<SseScanner>() <= 64);
    }

    use crate::test_support::XorShift;

    #[test]
    fn garbage_never_panics_and_chunking_never_changes_totals() {
        // Mostly SSE/JSON punctuation so the fuzz reaches deep states, plus raw binary.
        const ALPHABET: &[u8] = b"data: {}[]\",:\\\n\r \tcontenxrusgl_kosDONE0123456789";
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut input = Vec::with_capacity(512);
        for _ in 0..20_000 {
            input.clear();
            let len = (rng.next() % 300) as usize;
            for _ in 0..len {
                let r = rng.next();
                input.push(if r.is_multiple_of(8) {
                    (r >> 8) as u8
                } else {
                    ALPHABET[((r >> 8) % ALPHABET.len() as u64) as usize]
                });
            }
            if rng.next().is_multiple_of(2) {
                input.splice(0..0, b"data: {\"choices\":[{\"delta\":".iter().copied());
            }
            let whole = scan_whole(&input);
            let step = 1 + (rng.next() % 17) as usize;
            assert_eq!(scan_pieces(input.chunks(step)), whole, "{input:?}");
        }
    }
}
