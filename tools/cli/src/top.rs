//! `model-router top`: a terminal view of a running router, polled from its status JSON.
//!
//! The screen is a pure function of the current document, the previous one and the time
//! between them; the loop around it only fetches, measures time and redraws.

use crate::args::TopOptions;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The whole exchange, not each read: a router that trickles bytes cannot stall the view.
const RESPONSE_DEADLINE: Duration = Duration::from_secs(5);
const MAX_RESPONSE_BYTES: usize = 8 << 20;
/// Home the cursor and clear the screen, so each frame replaces the last.
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

/// What `top` shows of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub name: String,
    pub state: String,
    pub cooldown_remaining_ms: u64,
    pub in_flight: u64,
    pub ttft_ms: Option<f64>,
    pub tokens_per_sec: Option<f64>,
    pub error_rate: Option<f64>,
    /// Cumulative first picks of all kinds; `None` when the router could not read them.
    pub picks: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub pools: Vec<(String, Vec<String>)>,
    pub models: Vec<ModelRow>,
}

impl Snapshot {
    pub fn from_json(doc: &Value) -> Result<Snapshot, String> {
        let not_status = || "the answer is not a model-router status document".to_string();
        let models = doc["models"]
            .as_array()
            .ok_or_else(not_status)?
            .iter()
            .map(|m| {
                Some(ModelRow {
                    name: m["name"].as_str()?.to_string(),
                    state: m["state"].as_str().unwrap_or("?").to_string(),
                    cooldown_remaining_ms: m["cooldown_remaining_ms"].as_u64().unwrap_or(0),
                    in_flight: m["in_flight"].as_u64().unwrap_or(0),
                    ttft_ms: m["ttft_ms"].as_f64(),
                    tokens_per_sec: m["tokens_per_sec"].as_f64(),
                    error_rate: m["error_rate"].as_f64(),
                    picks: m["picks"].as_u64(),
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(not_status)?;
        let pools = doc["pools"]
            .as_array()
            .ok_or_else(not_status)?
            .iter()
            .map(|p| {
                let members = p["models"].as_array()?;
                Some((
                    p["alias"].as_str()?.to_string(),
                    members
                        .iter()
                        .filter_map(|m| m.as_str().map(String::from))
                        .collect(),
                ))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(not_status)?;
        Ok(Snapshot { pools, models })
    }

    fn model(&self, name: &str) -> Option<&ModelRow> {
        self.models.iter().find(|m| m.name == name)
    }
}

/// Picks per second between two snapshots; unknown for the first one, and when the count
/// went down (Envoy restarted in between).
fn picks_per_second(now: &ModelRow, previous: Option<&Snapshot>, elapsed: Duration) -> Option<f64> {
    let before = previous?.model(&now.name)?.picks?;
    let after = now.picks?;
    let seconds = elapsed.as_secs_f64();
    (after >= before && seconds > 0.0).then(|| (after - before) as f64 / seconds)
}

fn number(value: Option<f64>, digits: usize) -> String {
    value
        .filter(|v| v.is_finite())
        .map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

const HEADER: [&str; 8] = [
    "MODEL", "STATE", "INFLIGHT", "TTFT_MS", "TOKENS/S", "PICKS/S", "PICKS", "ERRORS",
];

fn row(m: &ModelRow, previous: Option<&Snapshot>, elapsed: Duration) -> [String; 8] {
    let state = if m.state == "cooling" {
        format!("cooling:{:.1}s", m.cooldown_remaining_ms as f64 / 1000.0)
    } else {
        m.state.clone()
    };
    [
        m.name.clone(),
        state,
        m.in_flight.to_string(),
        number(m.ttft_ms, 1),
        number(m.tokens_per_sec, 1),
        number(picks_per_second(m, previous, elapsed), 1),
        m.picks.map_or_else(|| "-".to_string(), |p| p.to_string()),
        number(m.error_rate.map(|e| e * 100.0), 1) + "%",
    ]
}

/// The view as plain text: one table per pool (models in pool order), then the models that
/// are in no pool. Columns line up across all tables.
pub fn render(current: &Snapshot, previous: Option<&Snapshot>, elapsed: Duration) -> String {
    let mut sections: Vec<(String, Vec<&ModelRow>)> = current
        .pools
        .iter()
        .map(|(alias, members)| {
            let rows = members.iter().filter_map(|n| current.model(n)).collect();
            (format!("pool {alias}"), rows)
        })
        .collect();
    let outside: Vec<&ModelRow> = current
        .models
        .iter()
        .filter(|m| !current.pools.iter().any(|(_, ms)| ms.contains(&m.name)))
        .collect();
    if !outside.is_empty() {
        sections.push(("models outside pools".to_string(), outside));
    }
    let tables: Vec<(String, Vec<[String; 8]>)> = sections
        .into_iter()
        .map(|(title, rows)| {
            let rows = rows.iter().map(|m| row(m, previous, elapsed)).collect();
            (title, rows)
        })
        .collect();
    let mut widths = HEADER.map(str::len);
    for cells in tables.iter().flat_map(|(_, rows)| rows) {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut out = String::from(" ");
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            // Names and states read left to right; numbers line up on the right.
            if i < 2 {
                out.push_str(&format!(" {cell:<width$}"));
            } else {
                out.push_str(&format!("  {cell:>width$}"));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = String::new();
    for (title, rows) in &tables {
        out.push_str(&format!("{title}\n"));
        out.push_str(&line(&HEADER));
        for cells in rows {
            out.push_str(&line(&cells.each_ref().map(String::as_str)));
        }
        out.push('\n');
    }
    if tables.is_empty() {
        out.push_str("the router has no models\n");
    }
    out
}

/// `http://host[:port][/path]`, split for a plain HTTP/1.1 request.
#[derive(Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host[:port]` as written, for the Host header.
    pub authority: String,
    pub host: String,
    pub port: u16,
    pub path: String,
}

pub fn parse_url(url: &str) -> Result<HttpUrl, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only plain http:// URLs are supported"))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let bad = || format!("{url}: expected http://HOST[:PORT]/PATH");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 80,
        Some(p) => p.parse().map_err(|_| bad())?,
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok(HttpUrl {
        authority: authority.to_string(),
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

/// Splits an HTTP/1.1 response into status and body, undoing chunked transfer encoding.
/// `Ok(None)`: not complete yet. The body ends at its length or last chunk, so the answer is
/// read without waiting for the close: Envoy holds a connection it closes for up to a second
/// (its delayed close) waiting for the client to close first. `closed` says the server has
/// closed; what is missing then never comes.
pub fn parse_response(raw: &[u8], closed: bool) -> Result<Option<(u16, Vec<u8>)>, String> {
    let incomplete = |what: &str| {
        if closed {
            Err(format!("the response ended {what}"))
        } else {
            Ok(None)
        }
    };
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return incomplete("inside its headers");
    };
    let head = String::from_utf8_lossy(&raw[..end]);
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("the response has no HTTP status line")?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        }
    }
    if chunked {
        return match dechunk(body)? {
            Some(body) => Ok(Some((status, body))),
            None => incomplete("inside a chunked body"),
        };
    }
    match length {
        Some(n) if n > body.len() => incomplete(&format!("after {} of {n} body bytes", body.len())),
        Some(n) => Ok(Some((status, body[..n].to_vec()))),
        None if closed => Ok(Some((status, body.to_vec()))),
        None => Ok(None),
    }
}

/// The body of a chunked message; `Ok(None)` until its last chunk has arrived.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            // The message ends with an empty line, after any trailer fields.
            let ended = rest.starts_with(b"\r\n") || rest.windows(4).any(|w| w == b"\r\n\r\n");
            return Ok(ended.then_some(out));
        }
        let Some(chunk) = rest.get(..size) else {
            return Ok(None);
        };
        out.extend_from_slice(chunk);
        let Some(after) = rest.get(size + 2..) else {
            return Ok(None);
        };
        rest = after;
    }
}

fn connect(url: &HttpUrl) -> Result<TcpStream, String> {
    let addrs = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?;
    let mut last = format!("{} resolves to no address", url.host);
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// One GET with every step bounded in time and size.
fn get(url: &HttpUrl) -> Result<(u16, Vec<u8>), String> {
    let deadline = Instant::now() + RESPONSE_DEADLINE;
    let mut stream = connect(url)?;
    stream
        .set_write_timeout(Some(RESPONSE_DEADLINE))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\
         User-Agent: model-router-top\r\n\r\n",
        url.path, url.authority
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "no complete answer within {} s",
                RESPONSE_DEADLINE.as_secs()
            ));
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        let closed = match stream.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading the answer: {e}")),
        };
        if let Some(response) = parse_response(&raw, closed)? {
            return Ok(response);
        }
        if raw.len() > MAX_RESPONSE_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_RESPONSE_BYTES} bytes"
            ));
        }
    }
}

/// Fetches and reads one status document; errors are whole sentences for the user.
fn fetch(url_text: &str, url: &HttpUrl) -> Result<Snapshot, String> {
    let (status, body) = get(url).map_err(|e| {
        format!(
            "cannot reach the router at {url_text}: {e}\n\
             Is it running? `make run` starts a demo router; --url points at another one."
        )
    })?;
    if status != 200 {
        let hint = if status == 404 {
            " (is settings.status_path different, or \"\" which turns the endpoint off?)"
        } else {
            ""
        };
        return Err(format!("{url_text} answered HTTP {status}{hint}"));
    }
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("{url_text} did not answer JSON: {e}"))?;
    Snapshot::from_json(&doc).map_err(|e| format!("{url_text}: {e}"))
}

fn title(options: &TopOptions) -> String {
    format!(
        "model-router top  {}  every {:.1} s  (Ctrl-C quits)\n\n",
        options.url,
        options.interval.as_secs_f64()
    )
}

pub fn run(options: &TopOptions) -> Result<(), String> {
    let url = parse_url(&options.url)?;
    if options.once {
        // Two polls one interval apart, so the snapshot has real picks per second.
        let first = fetch(&options.url, &url)?;
        let started = Instant::now();
        std::thread::sleep(options.interval);
        let second = fetch(&options.url, &url)?;
        print!("{}", render(&second, Some(&first), started.elapsed()));
        return Ok(());
    }
    let mut previous: Option<(Snapshot, Instant)> = None;
    let stdout = std::io::stdout();
    loop {
        let polled = Instant::now();
        let frame = match fetch(&options.url, &url) {
            Ok(snapshot) => {
                let last = previous.as_ref().map(|(s, at)| (s, polled - *at));
                let text = render(
                    &snapshot,
                    last.map(|(s, _)| s),
                    last.map_or(Duration::ZERO, |(_, e)| e),
                );
                previous = Some((snapshot, polled));
                text
            }
            // Keep polling: the router may be restarting.
            Err(message) => format!(
                "{message}\n\nretrying every {:.1} s\n",
                options.interval.as_secs_f64()
            ),
        };
        let mut out = stdout.lock();
        write!(out, "{CLEAR_SCREEN}{}{frame}", title(options))
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to the terminal: {e}"))?;
        drop(out);
        std::thread::sleep(options.interval.saturating_sub(polled.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(picks: [Option<u64>; 3]) -> Value {
        let picks = picks.map(|p| p.map_or(Value::Null, |t| json!(t)));
        json!({
            "now_ms": 1000,
            "pools": [{"alias": "default", "models": ["big", "fast"]}],
            "models": [
                {"name": "fast", "state": "ready", "cooldown_remaining_ms": 0, "in_flight": 2,
                 "ttft_ms": 12.34, "tokens_per_sec": 150.0, "error_rate": 0.0, "picks": picks[0]},
                {"name": "big", "state": "cooling", "cooldown_remaining_ms": 1500, "in_flight": 0,
                 "ttft_ms": null, "tokens_per_sec": null, "error_rate": 0.5, "picks": picks[1]},
                {"name": "solo", "state": "ready", "cooldown_remaining_ms": 0, "in_flight": 0,
                 "ttft_ms": 80.0, "tokens_per_sec": 20.25, "error_rate": 0.0, "picks": picks[2]},
            ],
        })
    }

    fn snapshot(picks: [Option<u64>; 3]) -> Snapshot {
        Snapshot::from_json(&doc(picks)).unwrap()
    }

    /// The cells of the row that starts with `model` in the section titled `section`.
    fn cells(text: &str, section: &str, model: &str) -> Vec<String> {
        let mut in_section = false;
        for line in text.lines() {
            if !line.starts_with(' ') {
                in_section = line == section;
            } else if in_section && line.split_whitespace().next() == Some(model) {
                return line.split_whitespace().map(String::from).collect();
            }
        }
        panic!("no row {model} under {section:?} in\n{text}");
    }

    #[test]
    fn pools_list_their_models_in_pool_order_and_the_rest_follow() {
        let text = render(&snapshot([Some(1), Some(2), Some(3)]), None, Duration::ZERO);
        let order: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| ["pool", "models", "big", "fast", "solo"].contains(w))
            .collect();
        assert_eq!(order, ["pool", "big", "fast", "models", "solo"], "{text}");
        assert_eq!(
            cells(&text, "pool default", "fast"),
            ["fast", "ready", "2", "12.3", "150.0", "-", "1", "0.0%"]
        );
        assert_eq!(
            cells(&text, "pool default", "big"),
            ["big", "cooling:1.5s", "0", "-", "-", "-", "2", "50.0%"]
        );
        assert_eq!(cells(&text, "models outside pools", "solo")[4], "20.2");
    }

    #[test]
    fn picks_per_second_come_from_the_previous_snapshot_and_elapsed_time() {
        let before = snapshot([Some(10), Some(5), None]);
        let after = snapshot([Some(40), Some(3), Some(7)]);
        let text = render(&after, Some(&before), Duration::from_secs(2));
        let rate = |model| cells(&text, "pool default", model)[5].clone();
        assert_eq!(rate("fast"), "15.0");
        assert_eq!(rate("big"), "-", "a counter that went down means a restart");
        assert_eq!(
            cells(&text, "models outside pools", "solo")[5],
            "-",
            "no earlier count"
        );
        let instant = render(&after, Some(&before), Duration::ZERO);
        assert_eq!(cells(&instant, "pool default", "fast")[5], "-");
    }

    #[test]
    fn columns_line_up_across_tables() {
        let text = render(
            &snapshot([Some(1), None, Some(123456)]),
            None,
            Duration::ZERO,
        );
        let table_lines: Vec<&str> = text.lines().filter(|l| l.starts_with(' ')).collect();
        assert_eq!(table_lines.len(), 5, "{text}");
        // The last column is right-aligned, so aligned columns mean equal line lengths.
        assert!(
            table_lines.iter().all(|l| l.len() == table_lines[0].len()),
            "{text}"
        );
    }

    #[test]
    fn documents_that_are_not_status_are_refused() {
        for bad in [
            json!({}),
            json!({"models": [], "pools": {}}),
            json!({"models": [{"state": "ready"}], "pools": []}),
            json!([1, 2]),
        ] {
            assert!(Snapshot::from_json(&bad).is_err(), "{bad}");
        }
        let empty = Snapshot::from_json(&json!({"models": [], "pools": []})).unwrap();
        assert_eq!(
            render(&empty, None, Duration::ZERO),
            "the router has no models\n"
        );
    }

    #[test]
    fn urls_split_into_host_port_and_path() {
        let cases = [
            (
                "http://127.0.0.1:10000/model-router/status",
                "127.0.0.1",
                10000,
                "/model-router/status",
            ),
            ("http://localhost/x?y=1", "localhost", 80, "/x?y=1"),
            ("http://[::1]:9/s", "::1", 9, "/s"),
            ("http://h:1", "h", 1, "/"),
        ];
        for (url, host, port, path) in cases {
            let u = parse_url(url).unwrap();
            assert_eq!(
                (u.host.as_str(), u.port, u.path.as_str()),
                (host, port, path),
                "{url}"
            );
        }
        for bad in [
            "https://h/s",
            "h:1/s",
            "http://:1/s",
            "http://h:port/s",
            "http://[::1/s",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_with_length_chunks_or_close_are_read() {
        let cases: &[(&[u8], u16, &[u8])] = &[
            (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", 200, b"{}"),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n",
                200,
                b"{\"a\":1}",
            ),
        ];
        for (raw, status, body) in cases {
            let want = Ok(Some((*status, body.to_vec())));
            // Complete by its own framing: no need to wait for the server to close.
            assert_eq!(
                parse_response(raw, false),
                want,
                "{}",
                String::from_utf8_lossy(raw)
            );
            assert_eq!(parse_response(raw, true), want);
            for cut in 0..raw.len() {
                assert_eq!(
                    parse_response(&raw[..cut], false),
                    Ok(None),
                    "open, cut at {cut}"
                );
                assert!(
                    parse_response(&raw[..cut], true).is_err(),
                    "closed, cut at {cut}"
                );
            }
        }
        let until_close = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(parse_response(until_close, false), Ok(None));
        assert_eq!(
            parse_response(until_close, true),
            Ok(Some((404, b"nope".to_vec())))
        );
        for bad in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(
                parse_response(bad, false).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn an_unreachable_router_gets_a_clear_message() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let text = format!("http://127.0.0.1:{port}/model-router/status");
        let err = fetch(&text, &parse_url(&text).unwrap()).unwrap_err();
        assert!(err.contains("cannot reach the router at"), "{err}");
        assert!(err.contains(&text), "{err}");
    }
}
