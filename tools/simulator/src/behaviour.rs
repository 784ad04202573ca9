//! What to answer: routing, fail modes, pacing and the OpenAI endpoints.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::control;
use crate::http::{self, ConnMode, Head};
use crate::openai::{self, ChunkBuilder, TextKind};
use crate::state::{Config, FailMode, InFlight, Shared};

/// How long `hang` and `stall-mid-stream` hold a connection at most.
pub const HANG_LIMIT: Duration = Duration::from_secs(600);

/// What the connection loop should do after a request was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
}

/// Per-connection context.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    /// True on the main (API) port, false on the admin port.
    pub on_main: bool,
    pub conn_id: u64,
}

fn after(conn: ConnMode) -> Next {
    if conn.keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    }
}

/// Writes a complete JSON response.
pub fn send_json(
    stream: &mut impl Write,
    status: u16,
    extra: &[(&str, &str)],
    body: &str,
    conn: ConnMode,
) -> io::Result<Next> {
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    stream.write_all(&http::encode_response(
        status,
        &headers,
        body.as_bytes(),
        conn,
    ))?;
    stream.flush()?;
    Ok(after(conn))
}

/// Writes an OpenAI-shaped error response.
pub fn send_error(
    stream: &mut impl Write,
    status: u16,
    extra: &[(&str, &str)],
    message: &str,
    kind: &str,
    code: &str,
    conn: ConnMode,
) -> io::Result<Next> {
    send_json(
        stream,
        status,
        extra,
        &openai::error_body(message, kind, code),
        conn,
    )
}

/// Handles one fully read request.
pub fn handle(ctx: &Ctx, head: &Head, body: &[u8], stream: &mut TcpStream) -> io::Result<Next> {
    let conn = ConnMode::of(head);
    let path = head.path();
    if path == "/sim" || path.starts_with("/sim/") {
        return control::handle(ctx, head, body, stream, conn);
    }
    if ctx.on_main && (path == "/v1" || path.starts_with("/v1/")) {
        return api(ctx, head, body, stream, conn);
    }
    let msg = format!("Invalid URL ({} {})", head.method, path);
    send_error(
        stream,
        404,
        &[],
        &msg,
        "invalid_request_error",
        "unknown_url",
        conn,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Text(TextKind),
    Embeddings,
    Responses,
    Models,
}

fn route(method: &str, path: &str) -> Result<Endpoint, u16> {
    let (endpoint, wanted) = match path {
        "/v1/chat/completions" => (Endpoint::Text(TextKind::Chat), "POST"),
        "/v1/completions" => (Endpoint::Text(TextKind::Completion), "POST"),
        "/v1/embeddings" => (Endpoint::Embeddings, "POST"),
        "/v1/responses" => (Endpoint::Responses, "POST"),
        "/v1/models" => (Endpoint::Models, "GET"),
        _ => return Err(404),
    };
    if method == wanted {
        Ok(endpoint)
    } else {
        Err(405)
    }
}

/// Pacing of one request under the queueing model.
struct Pace<'a> {
    shared: &'a Shared,
    cfg: &'a Config,
    /// The request body's size: prefill time grows with it.
    prompt_kb: f64,
}

impl Pace<'_> {
    fn ttft(&self, in_flight: u64) -> Duration {
        let jitter = if self.cfg.ttft_jitter > 0.0 {
            (self.cfg.ttft_jitter * self.shared.standard_normal()).exp()
        } else {
            1.0
        };
        let idle_ms = self.cfg.ttft_ms as f64 + self.cfg.prefill_ms_per_kib * self.prompt_kb;
        Duration::from_secs_f64(idle_ms / 1000.0 * self.cfg.slowdown_factor(in_flight) * jitter)
    }

    /// Gap to the next token, using the load right now.
    fn token_gap(&self) -> Duration {
        let rate = self.cfg.tokens_per_sec / self.cfg.slowdown_factor(self.shared.in_flight());
        Duration::from_secs_f64(1.0 / rate)
    }
}

fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        thread::sleep(deadline - now);
    }
}

/// Holds the connection without answering until the client goes away or
/// `HANG_LIMIT` passes. Anything the client sends meanwhile is discarded.
pub fn hang(stream: &mut TcpStream) {
    let deadline = Instant::now() + HANG_LIMIT;
    if stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .is_err()
    {
        return;
    }
    let mut scratch = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut scratch) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

/// Answers a request that failed because of the configured fail mode, or
/// returns `None` when the request should be served normally.
fn apply_fail_mode(
    cfg: &Config,
    streaming: bool,
    stream: &mut TcpStream,
    conn: ConnMode,
) -> Option<io::Result<Next>> {
    let sim = [("x-sim-model", cfg.model.as_str())];
    let result = match cfg.fail {
        FailMode::None => return None,
        FailMode::CloseMidStream | FailMode::StallMidStream if streaming => return None,
        FailMode::TooManyRequests => {
            let retry = cfg.retry_after.to_string();
            let headers = [sim[0], ("Retry-After", retry.as_str())];
            let msg = format!(
                "Rate limit reached for {} (simulated). Please try again in {}s.",
                cfg.model, cfg.retry_after
            );
            send_error(
                stream,
                429,
                &headers,
                &msg,
                "requests",
                "rate_limit_exceeded",
                conn,
            )
        }
        FailMode::Unavailable => send_error(
            stream,
            503,
            &sim,
            "The server is overloaded or not ready yet (simulated).",
            "server_error",
            "service_unavailable",
            conn,
        ),
        FailMode::Internal => send_error(
            stream,
            500,
            &sim,
            "The server had an error while processing your request (simulated).",
            "server_error",
            "internal_error",
            conn,
        ),
        // A request that slipped in on a connection opened before `refuse`.
        FailMode::Refuse | FailMode::Reset | FailMode::CloseMidStream => Ok(Next::Close),
        FailMode::Hang | FailMode::StallMidStream => {
            hang(stream);
            Ok(Next::Close)
        }
    };
    Some(result)
}

/// Handles a `/v1/*` request on the main port.
fn api(
    ctx: &Ctx,
    head: &Head,
    body: &[u8],
    stream: &mut TcpStream,
    conn: ConnMode,
) -> io::Result<Next> {
    let shared = ctx.shared.as_ref();
    let cfg = shared.config();
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    shared.record_request(head, body, parsed.as_ref());
    let in_flight = InFlight::enter(shared);
    let sim = [("x-sim-model", cfg.model.as_str())];

    let endpoint = match route(&head.method, head.path()) {
        Ok(e) => e,
        Err(status) => {
            let (msg, code) = if status == 405 {
                (
                    format!("Method {} not allowed for {}", head.method, head.path()),
                    "method_not_allowed",
                )
            } else {
                (
                    format!("Invalid URL ({} {})", head.method, head.path()),
                    "unknown_url",
                )
            };
            return send_error(
                stream,
                status,
                &sim,
                &msg,
                "invalid_request_error",
                code,
                conn,
            );
        }
    };
    let wants_stream = parsed
        .as_ref()
        .and_then(|v| v.get("stream"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let streaming = wants_stream && matches!(endpoint, Endpoint::Text(_) | Endpoint::Responses);
    if let Some(result) = apply_fail_mode(&cfg, streaming, stream, conn) {
        return result;
    }

    let pace = Pace {
        shared,
        cfg: &cfg,
        prompt_kb: body.len() as f64 / 1024.0,
    };
    let created = openai::now_secs();
    if endpoint == Endpoint::Models {
        thread::sleep(pace.ttft(in_flight.level));
        let body = openai::models_list(&cfg.model, created).to_string();
        return send_json(stream, 200, &sim, &body, conn);
    }
    let req = match parsed {
        Some(v @ Value::Object(_)) => v,
        _ => {
            return send_error(
                stream,
                400,
                &sim,
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
                "invalid_json",
                conn,
            )
        }
    };
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(&cfg.model)
        .to_string();
    let prompt = openai::prompt_tokens(&req);
    let n = output_tokens(&cfg, &req, endpoint);
    let tool = openai::forced_tool(&req);

    match endpoint {
        Endpoint::Text(kind) if streaming => {
            let include_usage = req
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let job = StreamJob {
                kind,
                model: &model,
                n,
                prompt,
                include_usage,
                in_flight: in_flight.level,
                tool: tool.as_deref().filter(|_| kind == TextKind::Chat),
            };
            stream_text(shared, stream, conn, &pace, &job)
        }
        Endpoint::Text(kind) => {
            generate(&pace, in_flight.level, n);
            let id = openai::id_for(kind, shared.next_response_id());
            let tool = tool.as_deref().filter(|_| kind == TextKind::Chat);
            let body = openai::completion(kind, &id, created, &model, n, prompt, tool).to_string();
            send_json(stream, 200, &sim, &body, conn)
        }
        Endpoint::Responses => {
            let shape = openai::ResponseShape {
                n_id: shared.next_response_id(),
                created,
                model: &model,
                n,
                prompt,
                tool: tool.as_deref(),
            };
            if streaming {
                return stream_response(stream, conn, &pace, shape, in_flight.level);
            }
            generate(&pace, in_flight.level, n);
            let body = shape.object(true).to_string();
            send_json(stream, 200, &sim, &body, conn)
        }
        Endpoint::Embeddings | Endpoint::Models => {
            thread::sleep(pace.ttft(in_flight.level));
            let body = openai::embeddings(&model, &req).to_string();
            send_json(stream, 200, &sim, &body, conn)
        }
    }
}

/// Output length: the configured count, capped by the request's limit.
fn output_tokens(cfg: &Config, req: &Value, endpoint: Endpoint) -> u64 {
    let keys: &[&str] = match endpoint {
        Endpoint::Responses => &["max_output_tokens"],
        _ => &["max_tokens", "max_completion_tokens"],
    };
    keys.iter()
        .filter_map(|k| req.get(*k).and_then(Value::as_u64))
        .fold(cfg.output_tokens, u64::min)
}

/// Waits as long as producing `n` tokens takes, without sending anything.
fn generate(pace: &Pace, in_flight: u64, n: u64) {
    let mut at = Instant::now() + pace.ttft(in_flight);
    sleep_until(at);
    for _ in 0..n {
        at += pace.token_gap();
        sleep_until(at);
    }
}

struct StreamJob<'a> {
    kind: TextKind,
    model: &'a str,
    n: u64,
    prompt: u64,
    include_usage: bool,
    in_flight: u64,
    /// Answer with a call of this function instead of text (chat only).
    tool: Option<&'a str>,
}

/// Writes SSE events, each as its own HTTP chunk, and counts them against
/// the mid-stream failure budget.
struct Emitter<'a> {
    stream: &'a mut TcpStream,
    chunked: bool,
    pending: Vec<u8>,
    /// Events still allowed before a mid-stream failure; `None` = unlimited.
    budget: Option<u64>,
}

impl Emitter<'_> {
    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            self.stream.write_all(&self.pending)?;
            self.pending.clear();
        }
        self.stream.flush()
    }

    fn push_body(&mut self, data: &[u8]) {
        if self.chunked {
            self.pending.extend_from_slice(&http::encode_chunk(data));
        } else {
            self.pending.extend_from_slice(data);
        }
    }

    /// Sends one `data: ...` event; returns false once the budget is used up.
    fn event(&mut self, json: &str) -> io::Result<bool> {
        self.send(format!("data: {json}\n\n"))
    }

    /// Sends one `event: NAME` + `data: ...` event, as the Responses API streams.
    fn named_event(&mut self, (name, json): &(String, String)) -> io::Result<bool> {
        self.send(format!("event: {name}\ndata: {json}\n\n"))
    }

    fn send(&mut self, event: String) -> io::Result<bool> {
        self.push_body(event.as_bytes());
        self.flush()?;
        if let Some(b) = self.budget.as_mut() {
            *b = b.saturating_sub(1);
        }
        Ok(!self.exhausted())
    }

    fn exhausted(&self) -> bool {
        self.budget == Some(0)
    }
}

/// Ends a stream the way the mid-stream fail mode says.
fn abort(fail: FailMode, stream: &mut TcpStream) -> io::Result<Next> {
    if fail == FailMode::StallMidStream {
        hang(stream);
    }
    Ok(Next::Close)
}

/// Whether the fail mode cuts streams after `fail_after_events` events.
fn cuts_mid_stream(fail: FailMode) -> bool {
    matches!(fail, FailMode::CloseMidStream | FailMode::StallMidStream)
}

/// An emitter whose first write sends the SSE response head; HTTP/1.0 has no chunked
/// encoding, so there the body is delimited by closing.
fn sse_emitter<'a>(
    stream: &'a mut TcpStream,
    conn: ConnMode,
    pace: &Pace,
) -> (Emitter<'a>, ConnMode) {
    let conn = ConnMode {
        keep_alive: conn.keep_alive && !conn.http10,
        http10: conn.http10,
    };
    let mut headers = vec![
        ("Content-Type", "text/event-stream"),
        ("Cache-Control", "no-cache"),
        ("x-sim-model", pace.cfg.model.as_str()),
    ];
    if !conn.http10 {
        headers.push(("Transfer-Encoding", "chunked"));
    }
    let mut head = http::encode_head(200, &headers, conn);
    head.extend_from_slice(b"\r\n");
    let em = Emitter {
        stream,
        chunked: !conn.http10,
        pending: head,
        budget: cuts_mid_stream(pace.cfg.fail).then_some(pace.cfg.fail_after_events),
    };
    (em, conn)
}

/// Ends a stream normally: `data: [DONE]` (chat and completions only) and the last chunk.
fn end_stream(mut em: Emitter, conn: ConnMode, done_line: bool) -> io::Result<Next> {
    if done_line {
        em.push_body(b"data: [DONE]\n\n");
    }
    if em.chunked {
        em.pending.extend_from_slice(http::LAST_CHUNK);
    }
    em.flush()?;
    Ok(after(conn))
}

fn stream_text(
    shared: &Shared,
    stream: &mut TcpStream,
    conn: ConnMode,
    pace: &Pace,
    job: &StreamJob,
) -> io::Result<Next> {
    let fail = pace.cfg.fail;
    let (mut em, conn) = sse_emitter(stream, conn, pace);
    let start = Instant::now();
    let id = openai::id_for(job.kind, shared.next_response_id());
    let chunks = ChunkBuilder {
        kind: job.kind,
        id: &id,
        created: openai::now_secs(),
        model: job.model,
        include_usage: job.include_usage,
    };

    em.flush()?;
    if em.exhausted() {
        return abort(fail, em.stream);
    }
    if job.kind == TextKind::Chat && !em.event(&chunks.role())? {
        return abort(fail, em.stream);
    }
    let outputs: Vec<String> = match job.tool {
        Some(name) => openai::tool_argument_pieces(job.n)
            .iter()
            .enumerate()
            .map(|(i, piece)| chunks.tool_call((i == 0).then_some(name), piece))
            .collect(),
        None => (1..=job.n)
            .map(|i| chunks.content(&openai::token_text(i)))
            .collect(),
    };
    let mut at = start + pace.ttft(job.in_flight);
    for output in &outputs {
        sleep_until(at);
        if !em.event(output)? {
            return abort(fail, em.stream);
        }
        at += pace.token_gap();
    }
    let reason = if job.tool.is_some() {
        "tool_calls"
    } else {
        "stop"
    };
    if !em.event(&chunks.finish(reason))? {
        return abort(fail, em.stream);
    }
    if job.include_usage && !em.event(&chunks.usage(job.prompt, job.n))? {
        return abort(fail, em.stream);
    }
    if cuts_mid_stream(fail) {
        // The budget outlasted the stream: still never send [DONE].
        return abort(fail, em.stream);
    }
    end_stream(em, conn, true)
}

/// A streamed Responses API answer: lifecycle events with the headers, one delta event per
/// output piece at the token rate after TTFT, then the `.done` events and
/// `response.completed`. Like OpenAI, no `[DONE]` line.
fn stream_response(
    stream: &mut TcpStream,
    conn: ConnMode,
    pace: &Pace,
    shape: openai::ResponseShape,
    in_flight: u64,
) -> io::Result<Next> {
    let fail = pace.cfg.fail;
    let (mut em, conn) = sse_emitter(stream, conn, pace);
    let start = Instant::now();
    let mut events = openai::ResponseEvents { shape, sequence: 0 };
    em.flush()?;
    if em.exhausted() {
        return abort(fail, em.stream);
    }
    for event in events.opening() {
        if !em.named_event(&event)? {
            return abort(fail, em.stream);
        }
    }
    let mut at = start + pace.ttft(in_flight);
    for event in events.deltas() {
        sleep_until(at);
        if !em.named_event(&event)? {
            return abort(fail, em.stream);
        }
        at += pace.token_gap();
    }
    for event in events.closing() {
        if !em.named_event(&event)? {
            return abort(fail, em.stream);
        }
    }
    if cuts_mid_stream(fail) {
        return abort(fail, em.stream);
    }
    end_stream(em, conn, false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_known_paths_and_rejects_wrong_methods() {
        assert_eq!(
            route("POST", "/v1/chat/completions"),
            Ok(Endpoint::Text(TextKind::Chat))
        );
        assert_eq!(
            route("POST", "/v1/completions"),
            Ok(Endpoint::Text(TextKind::Completion))
        );
        assert_eq!(route("GET", "/v1/models"), Ok(Endpoint::Models));
        assert_eq!(route("GET", "/v1/chat/completions"), Err(405));
        assert_eq!(route("POST", "/v1/nope"), Err(404));
    }

    #[test]
    fn max_tokens_caps_output_only_when_smaller() {
        let cfg = Config {
            output_tokens: 10,
            ..Config::default()
        };
        let chat = Endpoint::Text(TextKind::Chat);
        assert_eq!(output_tokens(&cfg, &json!({"max_tokens": 4}), chat), 4);
        assert_eq!(output_tokens(&cfg, &json!({"max_tokens": 40}), chat), 10);
        assert_eq!(
            output_tokens(&cfg, &json!({"max_completion_tokens": 2}), chat),
            2
        );
        assert_eq!(output_tokens(&cfg, &json!({}), chat), 10);
        assert_eq!(
            output_tokens(&cfg, &json!({"max_output_tokens": 3}), Endpoint::Responses),
            3
        );
    }

    #[test]
    fn send_error_writes_an_openai_error_with_extra_headers() {
        let mut out = Vec::new();
        let conn = ConnMode {
            keep_alive: true,
            http10: false,
        };
        let next = send_error(
            &mut out,
            429,
            &[("Retry-After", "2")],
            "slow down",
            "requests",
            "rate_limit_exceeded",
            conn,
        )
        .unwrap();
        assert_eq!(next, Next::KeepAlive);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
        assert!(text.contains("\r\nRetry-After: 2\r\n"));
        let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["param"], Value::Null);
    }
}
