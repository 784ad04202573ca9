//! Minimal HTTP/1.x request parser and response encoder.
//!
//! Supports what the simulator needs: request line + headers (bounded to
//! [`MAX_HEAD_BYTES`]), bodies framed by `Content-Length` or
//! `Transfer-Encoding: chunked` (bounded to [`MAX_BODY_BYTES`]), pipelined
//! requests on a keep-alive connection, and reads that arrive in arbitrary
//! pieces.

use std::io::{self, Read};

/// Upper bound for the request line plus headers (and, separately, trailers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Upper bound for a decoded request body.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Upper bound for one chunk-size line in a chunked body.
const MAX_CHUNK_LINE: usize = 4 * 1024;
const READ_SIZE: usize = 16 * 1024;

#[derive(Debug)]
pub enum HttpError {
    /// The socket failed; nothing more can be sent.
    Io(io::Error),
    /// The peer closed the connection in the middle of a request.
    UnexpectedEof,
    BadRequest(String),
    HeadTooLarge,
    BodyTooLarge,
    NotImplemented(String),
}

impl HttpError {
    /// The status to answer with, or `None` when the connection is unusable.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Io(_) | HttpError::UnexpectedEof => None,
            HttpError::BadRequest(_) => Some(400),
            HttpError::HeadTooLarge => Some(431),
            HttpError::BodyTooLarge => Some(413),
            HttpError::NotImplemented(_) => Some(501),
        }
    }

    pub fn message(&self) -> String {
        match self {
            HttpError::Io(e) => format!("i/o error: {e}"),
            HttpError::UnexpectedEof => "connection closed mid-request".to_string(),
            HttpError::BadRequest(m) => format!("malformed HTTP request: {m}"),
            HttpError::HeadTooLarge => {
                format!("request line and headers exceed {MAX_HEAD_BYTES} bytes")
            }
            HttpError::BodyTooLarge => format!("request body exceeds {MAX_BODY_BYTES} bytes"),
            HttpError::NotImplemented(m) => format!("not implemented: {m}"),
        }
    }
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}

fn bad(msg: impl Into<String>) -> HttpError {
    HttpError::BadRequest(msg.into())
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(usize),
    Chunked,
}

/// Request line and headers. Header names are lowercased.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub headers: Vec<(String, String)>,
    pub framing: BodyFraming,
}

impl Head {
    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the connection stays open after the response.
    pub fn keep_alive(&self) -> bool {
        if self.minor_version == 0 {
            self.header_has_token("connection", "keep-alive")
        } else {
            !self.header_has_token("connection", "close")
        }
    }

    /// Whether the client waits for `100 Continue` before sending its body.
    pub fn expects_continue(&self) -> bool {
        self.minor_version >= 1
            && self.framing != BodyFraming::None
            && self
                .header("expect")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
    }
}

/// Reads requests from a byte stream, keeping leftover bytes between calls so
/// that pipelined requests are not lost.
pub struct RequestReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: Read> RequestReader<R> {
    pub fn new(inner: R) -> Self {
        RequestReader {
            inner,
            buf: Vec::new(),
        }
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Reads more bytes into the buffer; returns how many (0 at EOF).
    fn fill(&mut self) -> Result<usize, HttpError> {
        let mut tmp = [0u8; READ_SIZE];
        loop {
            match self.inner.read(&mut tmp) {
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(HttpError::Io(e)),
            }
        }
    }

    /// Makes sure at least `n` bytes are buffered.
    fn ensure(&mut self, n: usize) -> Result<(), HttpError> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(HttpError::UnexpectedEof);
            }
        }
        Ok(())
    }

    /// Takes one line (without its line ending) from the buffer.
    fn read_line(
        &mut self,
        limit: usize,
        too_long: fn() -> HttpError,
    ) -> Result<Vec<u8>, HttpError> {
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + pos;
                if end > limit {
                    return Err(too_long());
                }
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            scanned = self.buf.len();
            if scanned > limit {
                return Err(too_long());
            }
            if self.fill()? == 0 {
                return Err(HttpError::UnexpectedEof);
            }
        }
    }

    /// Reads the next request line and headers. Returns `Ok(None)` when the
    /// peer closed the connection cleanly between requests.
    pub fn read_head(&mut self) -> Result<Option<Head>, HttpError> {
        let mut scanned = 0;
        loop {
            // Tolerate empty lines before a request line (RFC 9112 §2.2).
            let blank = self
                .buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if blank > 0 {
                self.buf.drain(..blank);
                scanned = 0;
            }
            if let Some(end) = find_head_end(&self.buf, scanned) {
                if end > MAX_HEAD_BYTES {
                    return Err(HttpError::HeadTooLarge);
                }
                let head = parse_head(&self.buf[..end])?;
                self.buf.drain(..end);
                return Ok(Some(head));
            }
            if self.buf.len() >= MAX_HEAD_BYTES {
                return Err(HttpError::HeadTooLarge);
            }
            scanned = self.buf.len().saturating_sub(2);
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(HttpError::UnexpectedEof)
                };
            }
        }
    }

    /// Reads the body that belongs to `head`.
    pub fn read_body(&mut self, head: &Head) -> Result<Vec<u8>, HttpError> {
        match head.framing {
            BodyFraming::None => Ok(Vec::new()),
            BodyFraming::Length(n) => {
                if n > MAX_BODY_BYTES {
                    return Err(HttpError::BodyTooLarge);
                }
                self.ensure(n)?;
                Ok(self.buf.drain(..n).collect())
            }
            BodyFraming::Chunked => self.read_chunked(),
        }
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line(MAX_CHUNK_LINE, || bad("chunk size line too long"))?;
            let size = parse_chunk_size(&line)?;
            if size == 0 {
                self.skip_trailers()?;
                return Ok(body);
            }
            if body.len().saturating_add(size) > MAX_BODY_BYTES {
                return Err(HttpError::BodyTooLarge);
            }
            self.ensure(size + 1)?;
            body.extend_from_slice(&self.buf[..size]);
            if self.buf[size] == b'\n' {
                self.buf.drain(..size + 1);
            } else {
                self.ensure(size + 2)?;
                if &self.buf[size..size + 2] != b"\r\n" {
                    return Err(bad("chunk data not followed by CRLF"));
                }
                self.buf.drain(..size + 2);
            }
        }
    }

    fn skip_trailers(&mut self) -> Result<(), HttpError> {
        let mut total = 0usize;
        loop {
            let line = self.read_line(MAX_HEAD_BYTES, || HttpError::HeadTooLarge)?;
            if line.is_empty() {
                return Ok(());
            }
            total += line.len() + 2;
            if total > MAX_HEAD_BYTES {
                return Err(HttpError::HeadTooLarge);
            }
        }
    }
}

/// Index just past the blank line that ends the head, searching from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < buf.len() {
        if buf[i] == b'\n' {
            match buf.get(i + 1) {
                Some(b'\n') => return Some(i + 2),
                Some(b'\r') if buf.get(i + 2) == Some(&b'\n') => return Some(i + 3),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_head(raw: &[u8]) -> Result<Head, HttpError> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty());
    let request_line = lines.next().ok_or_else(|| bad("empty request"))?;
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err(bad("request line must be 'METHOD TARGET VERSION'")),
    };
    if !is_token(method) {
        return Err(bad("invalid method"));
    }
    if target.is_empty() {
        return Err(bad("empty request target"));
    }
    let minor_version = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err(bad(format!("unsupported version '{version}'"))),
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            return Err(bad("obsolete header line folding"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("header line without ':'"))?;
        if !is_token(name) {
            return Err(bad("invalid header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let framing = body_framing(&headers)?;
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        minor_version,
        headers,
        framing,
    })
}

fn body_framing(headers: &[(String, String)]) -> Result<BodyFraming, HttpError> {
    let codings: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n == "transfer-encoding")
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    if !codings.is_empty() {
        // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3).
        if codings.iter().all(|c| c == "chunked") {
            return Ok(BodyFraming::Chunked);
        }
        return Err(HttpError::NotImplemented(format!(
            "transfer-encoding '{}'",
            codings.join(", ")
        )));
    }
    let mut length: Option<usize> = None;
    for (_, v) in headers.iter().filter(|(n, _)| n == "content-length") {
        for item in v.split(',') {
            let item = item.trim();
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("invalid content-length"));
            }
            // Anything too long to parse is certainly too large.
            let n: usize = item.parse().map_err(|_| HttpError::BodyTooLarge)?;
            if length.is_some_and(|l| l != n) {
                return Err(bad("conflicting content-length values"));
            }
            length = Some(n);
        }
    }
    match length {
        Some(n) if n > MAX_BODY_BYTES => Err(HttpError::BodyTooLarge),
        Some(0) | None => Ok(BodyFraming::None),
        Some(n) => Ok(BodyFraming::Length(n)),
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    let text = std::str::from_utf8(line).map_err(|_| bad("chunk size is not ASCII"))?;
    let size = text.split(';').next().unwrap_or("").trim();
    if size.is_empty() || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("invalid chunk size"));
    }
    let digits = size.trim_start_matches('0');
    if digits.len() > 8 {
        return Err(HttpError::BodyTooLarge);
    }
    usize::from_str_radix(if digits.is_empty() { "0" } else { digits }, 16)
        .map_err(|_| bad("invalid chunk size"))
}

/// Standard reason phrase for the statuses the simulator sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// How the response should treat the connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnMode {
    pub keep_alive: bool,
    pub http10: bool,
}

impl ConnMode {
    pub fn of(head: &Head) -> Self {
        ConnMode {
            keep_alive: head.keep_alive(),
            http10: head.minor_version == 0,
        }
    }

    pub fn closing() -> Self {
        ConnMode {
            keep_alive: false,
            http10: false,
        }
    }

    fn header(&self) -> Option<&'static str> {
        if !self.keep_alive {
            Some("close")
        } else if self.http10 {
            Some("keep-alive")
        } else {
            None
        }
    }
}

/// Status line and headers, without Content-Length or framing.
pub fn encode_head(status: u16, headers: &[(&str, &str)], conn: ConnMode) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    if let Some(c) = conn.header() {
        out.push_str("Connection: ");
        out.push_str(c);
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// A complete response with a Content-Length body.
pub fn encode_response(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    conn: ConnMode,
) -> Vec<u8> {
    let mut out = encode_head(status, headers, conn);
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// One chunk of a chunked response body (must not be empty).
pub fn encode_chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// The terminating chunk of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// A reader that hands out its data a few bytes at a time.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn reader(data: &[u8], step: usize) -> RequestReader<Trickle> {
        RequestReader::new(Trickle {
            data: data.to_vec(),
            pos: 0,
            step,
        })
    }

    fn read_one(data: &[u8], step: usize) -> Result<(Head, Vec<u8>), HttpError> {
        let mut r = reader(data, step);
        let head = r.read_head()?.expect("a request");
        let body = r.read_body(&head)?;
        Ok((head, body))
    }

    #[test]
    fn parses_content_length_body() {
        let req = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"model\":\"m\"}";
        let (head, body) = read_one(req, 4096).unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(head.path(), "/v1/chat/completions");
        assert_eq!(head.header("content-type"), Some("application/json"));
        assert_eq!(head.framing, BodyFraming::Length(13));
        assert_eq!(body, b"{\"model\":\"m\"}");
    }

    #[test]
    fn parses_chunked_body_with_extensions_and_trailers() {
        let req = b"POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n";
        let (head, body) = read_one(req, 4096).unwrap();
        assert_eq!(head.framing, BodyFraming::Chunked);
        assert_eq!(body, b"hello, world");
    }

    #[test]
    fn byte_at_a_time_reads_give_the_same_request() {
        let chunked = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n3\r\nabc\r\n0\r\n\r\n";
        for step in [1, 2, 3, 7] {
            let (head, body) = read_one(chunked, step).unwrap();
            assert_eq!(head.path(), "/a");
            assert_eq!(body, b"0123456789abc", "step {step}");
        }
        let sized = b"POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        for step in [1, 2, 5] {
            let (_, body) = read_one(sized, step).unwrap();
            assert_eq!(body, b"hello", "step {step}");
        }
    }

    #[test]
    fn pipelined_requests_are_read_in_order() {
        let data = b"POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /two HTTP/1.1\r\n\r\nPOST /three HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n";
        let mut r = reader(data, 4096);
        let mut seen = Vec::new();
        while let Some(head) = r.read_head().unwrap() {
            let body = r.read_body(&head).unwrap();
            seen.push((head.path().to_string(), body));
        }
        assert_eq!(
            seen,
            vec![
                ("/one".to_string(), b"abc".to_vec()),
                ("/two".to_string(), vec![]),
                ("/three".to_string(), b"z".to_vec()),
            ]
        );
    }

    #[test]
    fn clean_eof_between_requests_is_not_an_error() {
        let mut r = reader(b"", 10);
        assert!(r.read_head().unwrap().is_none());
    }

    #[test]
    fn eof_inside_head_or_body_is_unexpected() {
        let mut r = reader(b"GET / HTTP/1.1\r\nHost", 10);
        assert!(matches!(r.read_head(), Err(HttpError::UnexpectedEof)));
        let err = read_one(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 10).unwrap_err();
        assert!(matches!(err, HttpError::UnexpectedEof));
    }

    #[test]
    fn header_names_are_lowercased_and_values_trimmed() {
        let (head, _) = read_one(
            b"GET /x?y=1 HTTP/1.1\r\nX-Custom-Thing:   v a l  \r\n\r\n",
            4096,
        )
        .unwrap();
        assert_eq!(
            head.headers,
            vec![("x-custom-thing".to_string(), "v a l".to_string())]
        );
        assert_eq!(head.path(), "/x");
        assert_eq!(head.target, "/x?y=1");
    }

    #[test]
    fn bare_newlines_are_accepted() {
        let (head, body) = read_one(b"POST /n HTTP/1.1\nContent-Length: 2\n\nok", 4096).unwrap();
        assert_eq!(head.path(), "/n");
        assert_eq!(body, b"ok");
    }

    #[test]
    fn oversized_head_is_rejected() {
        let mut req = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES + 10));
        req.extend_from_slice(b"\r\n\r\n");
        let mut r = reader(&req, 8192);
        assert!(matches!(r.read_head(), Err(HttpError::HeadTooLarge)));
    }

    #[test]
    fn oversized_content_length_is_rejected_before_reading_the_body() {
        let req = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        let mut r = reader(req.as_bytes(), 4096);
        assert!(matches!(r.read_head(), Err(HttpError::BodyTooLarge)));
        let huge = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert!(matches!(
            reader(huge, 4096).read_head(),
            Err(HttpError::BodyTooLarge)
        ));
    }

    #[test]
    fn oversized_chunked_body_is_rejected() {
        let req = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            MAX_BODY_BYTES + 1
        );
        assert!(matches!(
            read_one(req.as_bytes(), 4096),
            Err(HttpError::BodyTooLarge)
        ));
        let absurd = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n";
        assert!(matches!(
            read_one(absurd, 4096),
            Err(HttpError::BodyTooLarge)
        ));
    }

    #[test]
    fn malformed_requests_are_bad_requests() {
        for req in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n",
        ] {
            let err = reader(req, 4096).read_head().unwrap_err();
            assert_eq!(
                err.status(),
                Some(400),
                "{:?}",
                String::from_utf8_lossy(req)
            );
        }
        let bad_chunk = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(read_one(bad_chunk, 4096).unwrap_err().status(), Some(400));
        let missing_crlf =
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n";
        assert_eq!(
            read_one(missing_crlf, 4096).unwrap_err().status(),
            Some(400)
        );
    }

    #[test]
    fn unknown_transfer_encoding_is_not_implemented() {
        let err = reader(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            4096,
        )
        .read_head()
        .unwrap_err();
        assert_eq!(err.status(), Some(501));
    }

    #[test]
    fn transfer_encoding_wins_over_content_length() {
        let req = b"POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
        let (head, body) = read_one(req, 4096).unwrap();
        assert_eq!(head.framing, BodyFraming::Chunked);
        assert_eq!(body, b"hi");
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        let parse = |raw: &[u8]| reader(raw, 4096).read_head().unwrap().unwrap();
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").keep_alive());
        assert!(!parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive());
        assert!(!parse(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    }

    #[test]
    fn expect_continue_only_matters_with_a_body() {
        let parse = |raw: &[u8]| reader(raw, 4096).read_head().unwrap().unwrap();
        assert!(
            parse(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
                .expects_continue()
        );
        assert!(!parse(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n").expects_continue());
    }

    #[test]
    fn leading_blank_lines_are_skipped() {
        let (head, _) = read_one(b"\r\n\r\nGET /ok HTTP/1.1\r\n\r\n", 1).unwrap();
        assert_eq!(head.path(), "/ok");
    }

    #[test]
    fn response_encoding_sets_length_and_connection() {
        let out = encode_response(
            404,
            &[("Content-Type", "application/json")],
            b"{}",
            ConnMode {
                keep_alive: false,
                http10: false,
            },
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
        );
        assert_eq!(
            encode_chunk(b"0123456789abcdef!"),
            b"11\r\n0123456789abcdef!\r\n"
        );
    }
}
