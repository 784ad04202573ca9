//! The downstream decisions, as pure functions: what to do with a request's headers, and
//! where its body sends it. The filter shell only carries these out.

use crate::attempt::AttemptInfo;
use crate::body_scan::find_model;
use crate::errors::ClientError;
use crate::prepared::Prepared;
use crate::resolve::{decide, resolve, LiveData, RouteDecision};
use std::borrow::Cow;

/// Client headers that could steer routing, retries or the per-attempt filter. They are
/// removed before anything else looks at the request.
pub fn is_reserved_header(name: &[u8]) -> bool {
    starts_with_ignore_case(name, b"x-model-router-") || starts_with_ignore_case(name, b"x-envoy-")
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

#[derive(Debug, PartialEq, Eq)]
pub enum HeadersAction<'a> {
    /// Answer locally with this status and JSON body.
    Reply { status: u32, body: Cow<'a, str> },
    /// A routed request: wait for the whole body.
    ReadBody,
    /// Not a model request: send it on unchanged.
    Passthrough { cluster: &'a str },
    /// Answer with the live status document.
    Status,
    /// Answer with the live status page (HTML), served at `<status_path>/ui`.
    StatusPage,
}

/// Where the live page is served, below the status document's own path.
pub const STATUS_PAGE_SUFFIX: &str = "/ui";

pub struct RequestHead<'a> {
    pub method: &'a [u8],
    pub path: &'a [u8],
    pub content_length: Option<u64>,
    /// The request has no body.
    pub end_of_stream: bool,
}

fn reply(error: ClientError) -> HeadersAction<'static> {
    HeadersAction::Reply {
        status: error.status,
        body: Cow::Owned(error.body()),
    }
}

pub fn on_headers<'a>(prepared: &'a Prepared, head: &RequestHead<'_>) -> HeadersAction<'a> {
    let path = String::from_utf8_lossy(head.path);
    let bare_path = path.split_once('?').map_or(&*path, |(p, _)| p);
    let method = String::from_utf8_lossy(head.method);
    if let Some(status_path) = prepared.config.settings.status_path.as_deref() {
        let action = match bare_path.strip_prefix(status_path) {
            Some("") => Some(HeadersAction::Status),
            Some(STATUS_PAGE_SUFFIX) => Some(HeadersAction::StatusPage),
            _ => None,
        };
        if let Some(action) = action {
            return if method == "GET" {
                action
            } else {
                reply(ClientError::method_not_allowed(&method, bare_path, "GET"))
            };
        }
    }
    if bare_path == "/v1/models" || bare_path.starts_with("/v1/models/") {
        if method != "GET" {
            return reply(ClientError::method_not_allowed(&method, bare_path, "GET"));
        }
        return match bare_path.strip_prefix("/v1/models/") {
            None => HeadersAction::Reply {
                status: 200,
                body: Cow::Borrowed(&prepared.models_list_body),
            },
            Some(id) => match crate::models_list::retrieve_body(&prepared.config, id) {
                Some(body) => HeadersAction::Reply {
                    status: 200,
                    body: Cow::Owned(body),
                },
                None => reply(ClientError::unknown_model(id)),
            },
        };
    }
    if prepared.config.is_routed_path(bare_path) && method == "POST" {
        if head.end_of_stream {
            return reply(ClientError::body_required());
        }
        let limit = prepared.config.settings.max_body_bytes;
        if head.content_length.is_some_and(|n| n > limit) {
            return reply(ClientError::body_too_large(limit));
        }
        return HeadersAction::ReadBody;
    }
    match &prepared.passthrough_cluster {
        Some(cluster) => HeadersAction::Passthrough { cluster },
        None if prepared.config.is_routed_path(bare_path) => reply(
            ClientError::method_not_allowed(&method, bare_path, "POST with a JSON body"),
        ),
        None => reply(ClientError::unknown_path(bare_path)),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum BodyAction<'a> {
    Reply(ClientError),
    Route(Route<'a>),
}

#[derive(Debug, PartialEq, Eq)]
pub struct Route<'a> {
    pub cluster: &'a str,
    pub decision: RouteDecision,
    /// Value of the attempt header for the per-attempt filter.
    pub attempt_info: String,
    /// Per-attempt deadline overriding the route's (streamed first-byte) one.
    pub per_try_timeout_ms: Option<u64>,
}

pub fn on_body<'a>(
    prepared: &'a Prepared,
    body: &[u8],
    now_ms: u64,
    live: &mut impl LiveData,
    random: u64,
) -> BodyAction<'a> {
    let field = match find_model(body) {
        Ok(field) => field,
        Err(e) => return BodyAction::Reply(ClientError::from_scan(e)),
    };
    let target = match resolve(&prepared.config, &field.name) {
        Ok(t) => t,
        Err(e) => return BodyAction::Reply(e),
    };
    let Some(decision) = decide(
        &prepared.config,
        target,
        now_ms,
        live,
        random,
        crate::stats::prompt_kib(body.len()),
        &prepared.rank_policy,
    ) else {
        return BodyAction::Reply(ClientError::internal("pool has no models"));
    };
    let Some(cluster) = prepared.cluster_for(&decision) else {
        return BodyAction::Reply(ClientError::internal("no cluster for the routing decision"));
    };
    let per_try_timeout_ms =
        (!field.streamed).then_some(prepared.config.settings.non_stream_attempt_timeout_ms);
    let attempt_info = AttemptInfo {
        model_token: Some(field.token),
        body_len: Some(body.len()),
    }
    .encode();
    BodyAction::Route(Route {
        cluster,
        decision,
        attempt_info,
        per_try_timeout_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouterConfig;

    fn prepared(settings: &str) -> Prepared {
        let json = format!(
            r#"{{"models":[{{"name":"a","endpoint":"http://127.0.0.1:1"}},{{"name":"b","endpoint":"http://127.0.0.1:2"}}],
                "pools":{{"default":["a","b"]}},"settings":{{{settings}}}}}"#
        );
        Prepared::new(RouterConfig::from_json(json.as_bytes()).unwrap(), |_| None).unwrap()
    }

    fn healthy() -> crate::resolve::tests::Table {
        crate::resolve::tests::Table(vec![(0, None, None, 0); 2], Vec::new())
    }

    fn head<'a>(method: &'a str, path: &'a str, len: Option<u64>, eos: bool) -> RequestHead<'a> {
        RequestHead {
            method: method.as_bytes(),
            path: path.as_bytes(),
            content_length: len,
            end_of_stream: eos,
        }
    }

    fn status(action: &HeadersAction<'_>) -> u32 {
        match action {
            HeadersAction::Reply { status, .. } => *status,
            HeadersAction::ReadBody => 0,
            HeadersAction::Passthrough { .. } => 1,
            HeadersAction::Status => 2,
            HeadersAction::StatusPage => 3,
        }
    }

    #[test]
    fn headers_phase_decisions() {
        let p = prepared(r#""max_body_bytes":2048"#);
        let cases = [
            (head("GET", "/v1/models", None, true), 200),
            (head("GET", "/v1/models/default:latency", None, true), 200),
            (head("GET", "/v1/models/nope", None, true), 404),
            (head("DELETE", "/v1/models", None, true), 405),
            (head("POST", "/v1/chat/completions", Some(100), false), 0),
            (head("POST", "/v1/chat/completions?x=1", None, false), 0),
            (head("POST", "/v1/chat/completions", None, true), 400),
            (head("POST", "/v1/chat/completions", Some(4096), false), 413),
            (head("GET", "/v1/chat/completions", None, true), 405),
            (head("GET", "/healthz", None, true), 404),
            (head("GET", "/model-router/status", None, true), 2),
            (head("POST", "/model-router/status", None, true), 405),
            (head("GET", "/model-router/status?x=1", None, true), 2),
            (head("GET", "/model-router/status/ui", None, true), 3),
            (
                head("GET", "/model-router/status/ui?refresh=1", None, true),
                3,
            ),
            (head("POST", "/model-router/status/ui", None, true), 405),
            (head("GET", "/model-router/status/uix", None, true), 404),
            (head("GET", "/model-router/statusui", None, true), 404),
            (head("GET", "/model-router/status/", None, true), 404),
            (head("POST", "/v1/files", Some(10), false), 404),
        ];
        for (h, want) in cases {
            assert_eq!(
                status(&on_headers(&p, &h)),
                want,
                "{} {}",
                String::from_utf8_lossy(h.method),
                String::from_utf8_lossy(h.path)
            );
        }
    }

    #[test]
    fn a_disabled_or_moved_status_path_takes_its_page_along() {
        let disabled = prepared(r#""status_path":"""#);
        let moved = prepared(r#""status_path":"/ops/live""#);
        let cases = [
            (&disabled, "/model-router/status", 404),
            (&disabled, "/model-router/status/ui", 404),
            (&disabled, "/ui", 404),
            (&moved, "/ops/live", 2),
            (&moved, "/ops/live/ui", 3),
            (&moved, "/model-router/status/ui", 404),
        ];
        for (p, path, want) in cases {
            assert_eq!(
                status(&on_headers(p, &head("GET", path, None, true))),
                want,
                "{path}"
            );
        }
    }

    #[test]
    fn other_paths_pass_through_to_the_configured_model() {
        let p = prepared(r#""passthrough_model":"b""#);
        assert_eq!(
            on_headers(&p, &head("POST", "/v1/files", Some(10), false)),
            HeadersAction::Passthrough {
                cluster: "mr.model.1"
            }
        );
    }

    #[test]
    fn body_routes_pool_and_reports_the_model_token() {
        let p = prepared("");
        let body = br#"{"model":"default","stream":true}"#;
        let BodyAction::Route(route) = on_body(&p, body, 0, &mut healthy(), 0) else {
            panic!("expected a route")
        };
        assert_eq!(route.cluster, "mr.pool.0.from.0");
        assert_eq!(route.decision.max_retries, 1);
        assert_eq!(route.attempt_info, "token=9-18;len=33");
        assert_eq!(
            route.per_try_timeout_ms, None,
            "streamed: the route's first-byte deadline"
        );
        let BodyAction::Route(unstreamed) =
            on_body(&p, br#"{"model":"default"}"#, 0, &mut healthy(), 0)
        else {
            panic!("expected a route")
        };
        assert_eq!(unstreamed.per_try_timeout_ms, Some(300_000));
    }

    #[test]
    fn body_errors_become_client_errors() {
        let p = prepared("");
        let cases: &[(&[u8], u32, &str)] = &[
            (b"not json", 400, "invalid_json"),
            (br#"{"model":"a","model":"b"}"#, 400, "duplicate_model"),
            (br#"{"messages":[]}"#, 400, "missing_model"),
            (br#"{"model":7}"#, 400, "invalid_type"),
            (br#"{"model":"gpt-5"}"#, 404, "model_not_found"),
        ];
        for (body, status, code) in cases {
            let BodyAction::Reply(e) = on_body(&p, body, 0, &mut healthy(), 0) else {
                panic!("expected an error for {}", String::from_utf8_lossy(body))
            };
            assert_eq!((e.status, e.code), (*status, *code));
        }
    }

    #[test]
    fn reserved_headers_are_recognised_in_any_case() {
        for name in [
            "x-model-router-cluster",
            "X-Envoy-Max-Retries",
            "x-envoy-retry-on",
            "X-MODEL-ROUTER-ATTEMPT",
        ] {
            assert!(is_reserved_header(name.as_bytes()), "{name}");
        }
        for name in ["authorization", "x-model", "x-envoy", "content-type"] {
            assert!(!is_reserved_header(name.as_bytes()), "{name}");
        }
    }
}
