//! End-to-end checks against the real binary over loopback sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Sim {
    child: Child,
    main: String,
    admin: String,
}

impl Sim {
    /// A model that answers at once, `output_tokens` tokens at 1000 tokens/s.
    fn fast(output_tokens: u32) -> Sim {
        let tokens = output_tokens.to_string();
        Sim::start(&[
            "--ttft-ms",
            "0",
            "--tokens-per-sec",
            "1000",
            "--output-tokens",
            &tokens,
        ])
    }

    fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_model-sim"))
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn model-sim");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        // model-sim listening on A admin B model NAME
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[..3], ["model-sim", "listening", "on"], "{line}");
        Sim {
            main: words[3].to_string(),
            admin: words[5].to_string(),
            child,
        }
    }

    fn config(&self, patch: Value) -> Value {
        let resp = request(&self.admin, "POST", "/sim/config", &patch.to_string());
        assert_eq!(resp.status, 200, "{}", resp.body);
        resp.json()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = raw.split_once("\r\n").expect("chunk size line");
        let n = usize::from_str_radix(size, 16).expect("hex size");
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        raw = &rest[n + 2..];
    }
}

/// One request on a fresh `Connection: close` connection.
fn request(addr: &str, method: &str, path: &str, body: &str) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\nX-Test: yes\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("complete head");
    let status = head[9..12].parse().expect("status");
    let mut resp = Resp {
        status,
        head: head.to_string(),
        body: body.to_string(),
    };
    if resp.header("transfer-encoding").as_deref() == Some("chunked") {
        resp.body = dechunk(body);
    }
    resp
}

fn events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("data event").to_string())
        .collect()
}

#[test]
fn streamed_chat_sends_role_tokens_finish_usage_and_done() {
    let sim = Sim::fast(3);
    let body = json!({"model": "asked", "stream": true, "stream_options": {"include_usage": true}});
    let resp = request(&sim.main, "POST", "/v1/chat/completions", &body.to_string());
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(resp.header("x-sim-model").as_deref(), Some("sim"));
    let ev = events(&resp.body);
    assert_eq!(ev.len(), 7, "{ev:?}");
    assert_eq!(ev.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = ev[..6]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "tok1 ");
    assert_eq!(chunks[1]["model"], "asked");
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 3);
}

/// `(event name, data)` of a stream whose events carry `event:` lines.
fn named_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').expect("event and data lines");
            let name = name.strip_prefix("event: ").expect("event line");
            let data = data.strip_prefix("data: ").expect("data line");
            (
                name.to_string(),
                serde_json::from_str(data).expect("JSON data"),
            )
        })
        .collect()
}

#[test]
fn streamed_responses_send_typed_events_deltas_and_completed_without_done() {
    let sim = Sim::fast(3);
    let body = json!({"model": "asked", "stream": true, "input": "a b"});
    let resp = request(&sim.main, "POST", "/v1/responses", &body.to_string());
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert!(!resp.body.contains("[DONE]"));
    let ev = named_events(&resp.body);
    let deltas: Vec<&str> = ev
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, v)| v["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, ["tok1 ", "tok2 ", "tok3 "]);
    assert_eq!(ev[0].0, "response.created");
    let (last, done) = ev.last().unwrap();
    assert_eq!(last, "response.completed");
    assert_eq!(done["response"]["model"], "asked");
    assert_eq!(done["response"]["usage"]["output_tokens"], 3);
    assert_eq!(done["response"]["usage"]["input_tokens"], 2);
}

#[test]
fn forced_tool_choice_answers_with_a_tool_call_streamed_or_not() {
    let sim = Sim::fast(2);
    let tools = json!([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]);
    let plain = json!({"model": "m", "tools": tools, "tool_choice": "required"});
    let v = request(
        &sim.main,
        "POST",
        "/v1/chat/completions",
        &plain.to_string(),
    )
    .json();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "lookup");
    assert_eq!(call["function"]["arguments"], r#"{"text":"tok1 tok2 "}"#);

    let streamed = json!({"model": "m", "stream": true, "tools": tools, "tool_choice": "required"});
    let resp = request(
        &sim.main,
        "POST",
        "/v1/chat/completions",
        &streamed.to_string(),
    );
    let chunks: Vec<Value> = events(&resp.body)
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0"))
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["function"]["name"], "lookup");
    let args: String = calls
        .iter()
        .map(|c| c["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(args, r#"{"text":"tok1 tok2 "}"#);
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn non_streamed_completion_respects_max_tokens_and_timing() {
    let sim = Sim::start(&[
        "--ttft-ms",
        "100",
        "--tokens-per-sec",
        "20",
        "--output-tokens",
        "50",
    ]);
    let started = Instant::now();
    let resp = request(
        &sim.main,
        "POST",
        "/v1/completions",
        r#"{"model":"m","prompt":"a b","max_tokens":2}"#,
    );
    let took = started.elapsed();
    assert_eq!(resp.status, 200);
    let v = resp.json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "tok1 tok2 ");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4})
    );
    // 100 ms + 2 tokens at 20/s = 200 ms.
    assert!(took >= Duration::from_millis(190), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn rate_limit_mode_answers_429_with_retry_after() {
    let sim = Sim::start(&["--fail", "429", "--retry-after", "4"]);
    let resp = request(
        &sim.main,
        "POST",
        "/v1/chat/completions",
        r#"{"model":"m"}"#,
    );
    assert_eq!(resp.status, 429);
    assert_eq!(resp.header("retry-after").as_deref(), Some("4"));
    assert_eq!(resp.json()["error"]["code"], "rate_limit_exceeded");
}

#[test]
fn refuse_closes_the_port_until_mode_changes_back() {
    let sim = Sim::start(&["--ttft-ms", "0"]);
    assert_eq!(sim.config(json!({"fail": "refuse"}))["fail"], "refuse");
    let err = TcpStream::connect(&sim.main).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    sim.config(json!({"fail": "none"}));
    assert_eq!(request(&sim.main, "GET", "/v1/models", "").status, 200);
}

#[test]
fn close_mid_stream_stops_after_the_configured_events() {
    let sim = Sim::start(&["--ttft-ms", "0", "--tokens-per-sec", "1000"]);
    sim.config(json!({"fail": "close-mid-stream", "fail_after_events": 2}));
    let mut s = TcpStream::connect(&sim.main).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = r#"{"model":"m","stream":true}"#;
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"));
    assert_eq!(text.matches("data: ").count(), 2, "{text}");
    assert!(!text.contains("[DONE]"));
    assert!(!text.ends_with("0\r\n\r\n"));
}

#[test]
fn stats_count_requests_by_body_model_and_keep_the_last_request() {
    let sim = Sim::start(&["--ttft-ms", "0", "--output-tokens", "1"]);
    sim.config(json!({"fail": "503"}));
    for model in ["a", "b", "a"] {
        let body = json!({"model": model}).to_string();
        assert_eq!(
            request(&sim.main, "POST", "/v1/chat/completions", &body).status,
            503
        );
    }
    let stats = request(&sim.admin, "GET", "/sim/stats", "").json();
    assert_eq!(stats["requests"], 3);
    assert_eq!(stats["by_model"], json!({"a": 2, "b": 1}));
    assert_eq!(stats["in_flight"], 0);
    assert_eq!(stats["last_request"]["path"], "/v1/chat/completions");
    assert_eq!(stats["last_request"]["headers"]["x-test"], "yes");
    assert_eq!(stats["last_request"]["body"], r#"{"model":"a"}"#);
    request(&sim.main, "POST", "/sim/reset", "");
    let stats = request(&sim.main, "GET", "/sim/stats", "").json();
    assert_eq!(stats["requests"], 0);
    assert_eq!(stats["last_request"], Value::Null);
}

#[test]
fn invalid_config_updates_are_rejected_and_change_nothing() {
    let sim = Sim::start(&[]);
    let before = request(&sim.admin, "GET", "/sim/config", "").json();
    for bad in [
        r#"{"nope":1}"#,
        r#"{"ttft_ms":1,"fail":"maybe"}"#,
        "not json",
    ] {
        assert_eq!(
            request(&sim.admin, "POST", "/sim/config", bad).status,
            400,
            "{bad}"
        );
    }
    assert_eq!(request(&sim.admin, "GET", "/sim/config", "").json(), before);
}
