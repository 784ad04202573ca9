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

#[cfg(test)]
mod tests {
    use super::*;

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
