//! The per-attempt context (router `upstream_http_filters`): runs once per try, after Envoy
//! picked the host, so it knows which model this attempt goes to.

use super::cooldown_store;
use super::host::{self, Buffer, Map};
use crate::attempt::{rewritten_length, AttemptInfo};
use crate::cooldown::parse_retry_after_ms;
use crate::prepared::Prepared;
use crate::topology::{ATTEMPT_HEADER, METADATA_MODEL_KEY, METADATA_NAMESPACE};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::ops::Range;
use std::rc::Rc;

pub struct Attempt {
    prepared: Option<Rc<Prepared>>,
    model: Option<usize>,
    /// The body's `model` token still to be rewritten.
    pending_rewrite: Option<Range<usize>>,
    attempt_count: Option<Vec<u8>>,
    got_response: bool,
}

impl Attempt {
    pub fn new(prepared: Option<Rc<Prepared>>) -> Self {
        Attempt {
            prepared,
            model: None,
            pending_rewrite: None,
            attempt_count: None,
            got_response: false,
        }
    }
}

fn host_model() -> Option<usize> {
    let path = [
        "xds",
        "upstream_host_metadata",
        "filter_metadata",
        METADATA_NAMESPACE,
        METADATA_MODEL_KEY,
    ];
    let raw = host::property(&path).ok()??;
    std::str::from_utf8(&raw)
        .ok()?
        .trim_matches('"')
        .parse()
        .ok()
}

fn header_str(map: Map, name: &str) -> Option<String> {
    let raw = host::header(map, name).ok()??;
    String::from_utf8(raw).ok()
}

fn set(map: Map, name: &str, value: &str) {
    if let Err(e) = host::set_header(map, name, value) {
        log::warn!(
            "model-router: could not set {name} on an attempt (status {})",
            e.0
        );
    }
}

/// Statuses that say "this model is busy or broken right now", not "this request is bad".
fn is_model_failure(status: u32) -> bool {
    status == 429 || status >= 500
}

impl Context for Attempt {
    fn on_done(&mut self) -> bool {
        // No response at all: refused, reset, or timed out before the first byte.
        if !self.got_response {
            if let (Some(p), Some(m)) = (&self.prepared, self.model) {
                cooldown_store::record_failure(p, m, None);
            }
        }
        true
    }
}

impl HttpContext for Attempt {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(prepared) = self.prepared.clone() else {
            return Action::Continue;
        };
        let info = header_str(Map::RequestHeaders, ATTEMPT_HEADER)
            .map(|v| AttemptInfo::decode(&v))
            .unwrap_or_default();
        self.attempt_count = host::header(Map::RequestHeaders, "x-envoy-attempt-count")
            .ok()
            .flatten();
        self.model = host_model();
        let Some(model) = self.model.and_then(|m| prepared.model(m)) else {
            log::warn!("model-router: attempt to a host without model metadata");
            return Action::Continue;
        };
        set(Map::RequestHeaders, ":authority", &model.authority);
        if let Some(auth) = &model.authorization {
            set(Map::RequestHeaders, "authorization", auth);
        }
        if let (Some(token), Some(length)) = (info.model_token, info.body_len) {
            if let Some(new_length) = rewritten_length(length, &token, model.upstream_token.len()) {
                // Envoy does not fix Content-Length after a body rewrite.
                set(
                    Map::RequestHeaders,
                    "content-length",
                    &new_length.to_string(),
                );
                self.pending_rewrite = Some(token);
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(token) = self.pending_rewrite.clone() else {
            return Action::Continue;
        };
        if body_size < token.end {
            return if end_of_stream {
                Action::Continue
            } else {
                Action::Pause
            };
        }
        self.pending_rewrite = None;
        let (Some(prepared), Some(model)) = (&self.prepared, self.model) else {
            return Action::Continue;
        };
        let Some(model) = prepared.model(model) else {
            return Action::Continue;
        };
        // This Envoy only replaces buffer prefixes: rewrite everything up to the token's end.
        let mut prefix = match host::buffer(Buffer::RequestBody, 0, token.start) {
            Ok(p) if p.len() == token.start => p,
            _ => {
                log::error!("model-router: could not read the body prefix for the model rewrite");
                let _ = host::send_response(500, &[], b"");
                return Action::Pause;
            }
        };
        prefix.extend_from_slice(model.upstream_token.as_bytes());
        if let Err(e) = host::set_buffer(Buffer::RequestBody, 0, token.end, &prefix) {
            log::error!("model-router: body rewrite failed (status {})", e.0);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.got_response = true;
        let (Some(prepared), Some(model)) = (self.prepared.clone(), self.model) else {
            return Action::Continue;
        };
        let status = header_str(Map::ResponseHeaders, ":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if is_model_failure(status) {
            let retry_after = header_str(Map::ResponseHeaders, "retry-after")
                .and_then(|v| parse_retry_after_ms(&v));
            cooldown_store::record_failure(&prepared, model, retry_after);
        } else {
            cooldown_store::record_success(&prepared, model);
        }
        if let Some(m) = prepared.config.model(model) {
            set(Map::ResponseHeaders, "x-model-router-model", &m.name);
        }
        if let Some(count) = self
            .attempt_count
            .as_deref()
            .and_then(|c| std::str::from_utf8(c).ok())
        {
            set(Map::ResponseHeaders, "x-model-router-attempts", count);
        }
        Action::Continue
    }
}
