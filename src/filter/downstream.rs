//! The downstream context: strips spoofable headers, reads the body, sets the cluster.

use super::host::{self, Buffer, Map};
use super::live_store::SharedLive;
use super::metrics::Metrics;
use crate::access_log;
use crate::errors::ClientError;
use crate::header_map;
use crate::prepared::Prepared;
use crate::request::{self, BodyAction, HeadersAction, RequestHead, Route};
use crate::resolve::Target;
use crate::status;
use crate::strategy::PickReason;
use crate::topology::{ATTEMPT_HEADER, CLUSTER_HEADER};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;

pub struct Downstream {
    prepared: Option<Rc<Prepared>>,
    metrics: Rc<Metrics>,
    context_id: u32,
    reading_body: bool,
    /// The routed strategy, echoed in `x-model-router-strategy`.
    strategy: Option<&'static str>,
    /// Why the ranking chose the first model, echoed in `x-model-router-pick`.
    pick: Option<&'static str>,
}

impl Downstream {
    pub fn new(prepared: Option<Rc<Prepared>>, metrics: Rc<Metrics>, context_id: u32) -> Self {
        Downstream {
            prepared,
            metrics,
            context_id,
            reading_body: false,
            strategy: None,
            pick: None,
        }
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// Answers locally; `Pause` keeps the request from going on while the reply is sent.
fn respond(status: u32, body: &str) -> Action {
    respond_as(status, JSON, body)
}

fn respond_as(status: u32, content_type: (&str, &str), body: &str) -> Action {
    if let Err(e) = host::send_response(status, &[content_type], body.as_bytes()) {
        log::warn!(
            "model-router: could not send a local reply (status {})",
            e.0
        );
    }
    Action::Pause
}

fn respond_error(error: &ClientError) -> Action {
    respond(error.status, &error.body())
}

fn set_request_header(name: &str, value: &str) -> bool {
    match host::set_header(Map::RequestHeaders, name, value) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("model-router: could not set {name} (status {})", e.0);
            false
        }
    }
}

/// Reads what routing needs from the request headers and removes the reserved ones.
fn read_head(raw: &[u8], end_of_stream: bool) -> Result<RequestHead<'_>, ClientError> {
    let mut head = RequestHead {
        method: b"",
        path: b"",
        content_length: None,
        end_of_stream,
    };
    for (name, value) in header_map::pairs(raw) {
        match name {
            b":method" => head.method = value,
            b":path" => head.path = value,
            b"content-length" => {
                head.content_length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok())
            }
            _ if request::is_reserved_header(name)
                && host::remove_header(Map::RequestHeaders, name).is_err() =>
            {
                return Err(ClientError::internal("could not remove a reserved header"));
            }
            _ => {}
        }
    }
    Ok(head)
}

impl Downstream {
    /// Sets the headers that send the request to its cluster with its retry budget.
    fn send_on(&mut self, route: &Route<'_>) -> Action {
        let target = route.decision.target;
        self.metrics.picked(&route.decision);
        // Observability: one host call for access logs (filter state wasm.<property>).
        if let Some(p) = &self.prepared {
            let value = access_log::describe_decision(&p.config, &route.decision);
            let _ = host::set_property(access_log::DECISION_PROPERTY, value.as_bytes());
        }
        if let Target::Pool { strategy, .. } = target {
            self.strategy = Some(strategy.as_str());
        }
        self.pick = route.decision.reason.map(PickReason::as_str);
        let retries = route.decision.max_retries.to_string();
        let ok = set_request_header(CLUSTER_HEADER, route.cluster)
            && set_request_header("x-envoy-max-retries", &retries)
            && set_request_header(ATTEMPT_HEADER, &route.attempt_info)
            && route.per_try_timeout_ms.is_none_or(|ms| {
                set_request_header("x-envoy-upstream-rq-per-try-timeout-ms", &ms.to_string())
            });
        if !ok {
            return respond_error(&ClientError::internal("could not set routing headers"));
        }
        // The route was matched before the cluster header existed.
        if let Err(e) = host::clear_route_cache() {
            log::warn!("model-router: clear_route_cache failed (status {})", e.0);
        }
        Action::Continue
    }
}

impl Context for Downstream {}

impl HttpContext for Downstream {
    fn on_http_request_headers(&mut self, _headers: usize, end_of_stream: bool) -> Action {
        let Some(prepared) = self.prepared.clone() else {
            return respond_error(&ClientError::internal(
                "model-router has no valid configuration",
            ));
        };
        let Ok(raw) = host::headers(Map::RequestHeaders) else {
            return respond_error(&ClientError::internal("could not read the request headers"));
        };
        let head = match read_head(&raw, end_of_stream) {
            Ok(head) => head,
            Err(error) => return respond_error(&error),
        };
        match request::on_headers(&prepared, &head) {
            HeadersAction::Reply { status, body } => respond(status, &body),
            HeadersAction::ReadBody => {
                self.reading_body = true;
                // Needs `allow_on_headers_stop_iteration: true`, or the body never arrives.
                Action::Pause
            }
            HeadersAction::Status => {
                let now_ms = host::now_ms();
                let mut live = SharedLive {
                    prepared: &prepared,
                    now_ms,
                };
                let picks = self.metrics.pick_totals();
                respond(200, &status::render(&prepared, now_ms, &mut live, &picks))
            }
            HeadersAction::StatusPage => respond_as(
                200,
                ("content-type", "text/html; charset=utf-8"),
                status::PAGE_HTML,
            ),
            HeadersAction::Passthrough { cluster } => {
                set_request_header(CLUSTER_HEADER, cluster);
                set_request_header("x-envoy-max-retries", "0");
                Action::Continue
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.reading_body {
            return Action::Continue;
        }
        let Some(prepared) = self.prepared.clone() else {
            return Action::Continue;
        };
        let limit = prepared.config.settings.max_body_bytes;
        if body_size as u64 > limit {
            self.reading_body = false;
            return respond_error(&ClientError::body_too_large(limit));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.reading_body = false;
        let body = match host::buffer(Buffer::RequestBody, 0, body_size) {
            Ok(b) => b,
            Err(_) => {
                return respond_error(&ClientError::internal("could not read the request body"))
            }
        };
        let now_ns = host::now_ns();
        let mut live = SharedLive {
            prepared: &prepared,
            now_ms: now_ns / 1_000_000,
        };
        // Exploration only needs independent-looking draws per request, not secrecy.
        let random = now_ns ^ (u64::from(self.context_id) << 40);
        match request::on_body(&prepared, &body, now_ns / 1_000_000, &mut live, random) {
            BodyAction::Reply(error) => respond_error(&error),
            BodyAction::Route(route) => self.send_on(&route),
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let explained = [
            ("x-model-router-strategy", self.strategy),
            ("x-model-router-pick", self.pick),
        ];
        for (name, value) in explained {
            let Some(value) = value else { continue };
            if let Err(e) = host::set_header(Map::ResponseHeaders, name, value) {
                log::warn!("model-router: could not set {name} (status {})", e.0);
            }
        }
        Action::Continue
    }
}
