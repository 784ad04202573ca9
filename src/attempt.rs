//! What the downstream filter tells each per-attempt filter, carried in one request header:
//! where the body's `model` token sits and how long the original body is, so each attempt can
//! rewrite it for its own model without scanning the body again.
//!
//! Every attempt sees the same request header map (Envoy shares it across retries), so the
//! header cannot be removed by one attempt without blinding the next one, and it must carry
//! the original length: an earlier attempt already changed Content-Length.

use std::fmt::Write;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttemptInfo {
    /// The `model` value's string token in the body, quotes included.
    pub model_token: Option<Range<usize>>,
    /// Length of the body as the client sent it.
    pub body_len: Option<usize>,
}

impl AttemptInfo {
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(24);
        if let Some(t) = &self.model_token {
            let _ = write!(out, "token={}-{}", t.start, t.end);
        }
        if let Some(len) = self.body_len {
            let _ = write!(out, ";len={len}");
        }
        out
    }

    /// Unknown parts are ignored; a malformed token means "do not rewrite".
    pub fn decode(value: &str) -> Self {
        let mut info = AttemptInfo::default();
        for part in value.split(';') {
            if let Some(range) = part.strip_prefix("token=") {
                info.model_token = range.split_once('-').and_then(|(a, b)| {
                    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
                    (a < b).then_some(a..b)
                });
            } else if let Some(len) = part.strip_prefix("len=") {
                info.body_len = len.parse().ok();
            }
        }
        info
    }
}

/// The Content-Length after replacing `token` with `new_token_len` bytes.
pub fn rewritten_length(
    original: usize,
    token: &Range<usize>,
    new_token_len: usize,
) -> Option<usize> {
    if token.end > original {
        return None;
    }
    Some(original - token.len() + new_token_len)
}

/// What an attempt reads from the request headers it shares with every other attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttemptRequestHead<'a> {
    pub info: AttemptInfo,
    /// Envoy's `x-envoy-attempt-count` (1 for the first try), echoed to the client.
    pub attempt_count: Option<&'a [u8]>,
}

impl<'a> AttemptRequestHead<'a> {
    pub fn read(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let mut head = AttemptRequestHead::default();
        for (name, value) in pairs {
            if name == crate::topology::ATTEMPT_HEADER.as_bytes() {
                head.info = std::str::from_utf8(value)
                    .map_or_else(|_| AttemptInfo::default(), AttemptInfo::decode);
            } else if name == b"x-envoy-attempt-count" {
                head.attempt_count = Some(value);
            }
        }
        head
    }
}

/// What an attempt reads from its upstream's response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpstreamResponseHead {
    /// 0 when missing or unreadable.
    pub status: u32,
    pub event_stream: bool,
    pub retry_after_ms: Option<u64>,
}

impl UpstreamResponseHead {
    pub fn read<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let mut head = UpstreamResponseHead::default();
        for (name, value) in pairs {
            let text = || std::str::from_utf8(value).ok();
            match name {
                b":status" => head.status = text().and_then(|s| s.parse().ok()).unwrap_or(0),
                b"content-type" => head.event_stream = value.starts_with(b"text/event-stream"),
                b"retry-after" => {
                    head.retry_after_ms = text().and_then(crate::cooldown::parse_retry_after_ms)
                }
                _ => {}
            }
        }
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_head_finds_attempt_info_and_count_among_other_headers() {
        let pairs: [(&[u8], &[u8]); 4] = [
            (b":path", b"/v1/chat/completions"),
            (b"x-model-router-attempt", b"token=9-18;len=40"),
            (b"x-envoy-attempt-count", b"2"),
            (b"content-length", b"40"),
        ];
        let head = AttemptRequestHead::read(pairs.into_iter());
        assert_eq!(head.info.model_token, Some(9..18));
        assert_eq!(head.info.body_len, Some(40));
        assert_eq!(head.attempt_count, Some(&b"2"[..]));
        let none = AttemptRequestHead::read([(&b":path"[..], &b"/"[..])].into_iter());
        assert_eq!(none, AttemptRequestHead::default());
    }

    type Pairs<'a> = &'a [(&'a [u8], &'a [u8])];

    #[test]
    fn response_head_reads_status_stream_and_retry_after() {
        let cases: [(Pairs, UpstreamResponseHead); 4] = [
            (
                &[(b":status", b"429"), (b"retry-after", b"3")],
                UpstreamResponseHead {
                    status: 429,
                    event_stream: false,
                    retry_after_ms: Some(3000),
                },
            ),
            (
                &[
                    (b":status", b"200"),
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                ],
                UpstreamResponseHead {
                    status: 200,
                    event_stream: true,
                    retry_after_ms: None,
                },
            ),
            (
                &[
                    (b":status", b"2x0"),
                    (b"retry-after", b"Wed, 21 Oct 2015 07:28:00 GMT"),
                ],
                UpstreamResponseHead::default(),
            ),
            (&[(b":status", b"\xff")], UpstreamResponseHead::default()),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                UpstreamResponseHead::read(pairs.iter().copied()),
                expected,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn attempt_info_round_trips_and_tolerates_garbage() {
        let info = AttemptInfo {
            model_token: Some(9..16),
            body_len: Some(40),
        };
        assert_eq!(AttemptInfo::decode(&info.encode()), info);
        for bad in ["", "token=", "token=5-3", "token=a-b", "x=1"] {
            assert_eq!(AttemptInfo::decode(bad).model_token, None, "{bad}");
            assert_eq!(AttemptInfo::decode(bad).body_len, None, "{bad}");
        }
    }

    #[test]
    fn rewritten_length_accounts_for_the_new_token() {
        assert_eq!(rewritten_length(100, &(10..15), 9), Some(104));
        assert_eq!(rewritten_length(10, &(5..15), 3), None);
    }
}
