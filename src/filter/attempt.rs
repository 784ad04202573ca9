//! The per-attempt context (router `upstream_http_filters`): runs once per try, after Envoy
//! picked the host, so it knows which model this attempt goes to. It adapts the request to
//! that model and measures how the model did.

use super::host::{self, Buffer, Map};
use super::live_store;
use super::metrics::Metrics;
use crate::access_log;
use crate::attempt::{rewritten_length, AttemptRequestHead, UpstreamResponseHead};
use crate::header_map;
use crate::measure::AttemptMeter;
use crate::measure::Record;
use crate::prepared::Prepared;
use crate::topology::{METADATA_MODEL_KEY, METADATA_NAMESPACE};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::ops::Range;
use std::rc::Rc;

pub struct Attempt {
    prepared: Option<Rc<Prepared>>,
    metrics: Rc<Metrics>,
    model: Option<usize>,
    /// The body's `model` token still to be rewritten.
    pending_rewrite: Option<Range<usize>>,
    attempt_count: Option<Vec<u8>>,
    meter: Option<AttemptMeter>,
    /// The request body's size, for the model's prefill fit.
    prompt_kib: f64,
}

impl Attempt {
    pub fn new(prepared: Option<Rc<Prepared>>, metrics: Rc<Metrics>) -> Self {
        Attempt {
            prepared,
            metrics,
            model: None,
            pending_rewrite: None,
            attempt_count: None,
            meter: None,
            prompt_kib: 0.0,
        }
    }

    /// Runs `f` on the meter and records what it decided. The clock is read at most once,
    /// and not at all when nothing needs it (most chunks of a stream).
    fn measure(&mut self, f: impl FnOnce(&mut AttemptMeter, &mut Clock) -> Option<Record>) {
        let (Some(prepared), Some(model), Some(meter)) =
            (&self.prepared, self.model, &mut self.meter)
        else {
            return;
        };
        let mut clock = Clock(None);
        let Some(record) = f(meter, &mut clock) else {
            return;
        };
        let now = clock.now();
        if matches!(record, Record::Failed { .. }) {
            self.metrics.attempt_failed(model);
        }
        let others = meter.others();
        if let Some(view) =
            live_store::record(prepared, model, &record, others, self.prompt_kib, now)
        {
            self.metrics.live_numbers(model, &view);
        }
    }
}

/// The host clock, read on first use.
struct Clock(Option<u64>);

impl Clock {
    fn now(&mut self) -> u64 {
        *self.0.get_or_insert_with(host::now_ms)
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

fn set(map: Map, name: &str, value: &str) {
    if let Err(e) = host::set_header(map, name, value) {
        log::warn!(
            "model-router: could not set {name} on an attempt (status {})",
            e.0
        );
    }
}

impl Context for Attempt {
    fn on_done(&mut self) -> bool {
        if self.meter.as_ref().is_some_and(AttemptMeter::unfinished) {
            // Envoy names the cause; `downstream_remote_disconnect` and kin mean the client left.
            let client_gone = matches!(
                host::property(&["response", "code_details"]),
                Ok(Some(details)) if details.starts_with(b"downstream_")
            );
            self.measure(|meter, clock| meter.on_done(clock.now(), client_gone));
        }
        if let (Some(prepared), Some(model), Some(_)) = (&self.prepared, self.model, &self.meter) {
            let _ = live_store::in_flight_changed(prepared, model, false, host::now_ms());
        }
        true
    }
}

impl HttpContext for Attempt {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(prepared) = self.prepared.clone() else {
            return Action::Continue;
        };
        // One host call for all headers. Every attempt sees the same header map, so the
        // attempt info stays in it for the next attempt.
        let raw = host::headers(Map::RequestHeaders).unwrap_or_default();
        let head = AttemptRequestHead::read(header_map::pairs(&raw));
        self.attempt_count = head.attempt_count.map(<[u8]>::to_vec);
        let info = head.info;
        self.prompt_kib = info.body_len.map_or(0.0, crate::stats::prompt_kib);
        self.model = host_model();
        let Some(model_id) = self.model else {
            log::warn!("model-router: attempt to a host without model metadata");
            return Action::Continue;
        };
        let Some(model) = prepared.model(model_id) else {
            return Action::Continue;
        };
        let now = host::now_ms();
        let in_flight = live_store::in_flight_changed(&prepared, model_id, true, now);
        self.meter = Some(AttemptMeter::start(now, in_flight.saturating_sub(1)));
        self.metrics.attempt_started(model_id);
        // Observability: one host call for access logs; a later attempt overwrites it.
        if let Some(name) = prepared.config.model(model_id).map(|m| m.name.as_str()) {
            let attempt = self
                .attempt_count
                .as_deref()
                .and_then(|c| std::str::from_utf8(c).ok());
            let value = access_log::attempt_value(name, attempt.unwrap_or("?"));
            let _ = host::set_property(access_log::ATTEMPT_PROPERTY, value.as_bytes());
        }
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
        let Some(model) = self
            .prepared
            .as_ref()
            .zip(self.model)
            .and_then(|(p, m)| p.model(m))
        else {
            return Action::Continue;
        };
        // This Envoy only replaces buffer prefixes: rewrite everything up to the token's end.
        let mut prefix = match host::buffer(Buffer::RequestBody, 0, token.start) {
            Ok(p) if p.len() == token.start => p,
            _ => {
                log::error!("model-router: could not read the body prefix for the model rewrite");
                return Action::Continue;
            }
        };
        prefix.extend_from_slice(model.upstream_token.as_bytes());
        if let Err(e) = host::set_buffer(Buffer::RequestBody, 0, token.end, &prefix) {
            log::error!("model-router: body rewrite failed (status {})", e.0);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let raw = host::headers(Map::ResponseHeaders).unwrap_or_default();
        let head = UpstreamResponseHead::read(header_map::pairs(&raw));
        self.measure(|meter, clock| {
            meter.on_response_headers(
                head.status,
                head.event_stream,
                head.retry_after_ms,
                clock.now(),
            )
        });
        if end_of_stream {
            self.measure(|meter, clock| meter.on_end_of_stream(clock.now()));
        }
        let Some(prepared) = &self.prepared else {
            return Action::Continue;
        };
        if let Some(m) = self.model.and_then(|m| prepared.config.model(m)) {
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

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.meter.as_ref().is_some_and(AttemptMeter::wants_body) && body_size > 0 {
            if let Ok(chunk) = host::buffer(Buffer::ResponseBody, 0, body_size) {
                self.measure(|meter, clock| meter.on_body_chunk(&chunk, || clock.now()));
            }
        }
        if end_of_stream {
            self.measure(|meter, clock| meter.on_end_of_stream(clock.now()));
        }
        Action::Continue
    }
}
