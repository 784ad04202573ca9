//! The Envoy v3 bootstrap that runs a router config: one listener, the two Wasm filter roles,
//! one cluster per model and one aggregate cluster per (pool, first model) for failover.
//!
//! Cluster names and filter ids come from `model_router::topology`, which the filter uses
//! too, so the generated config and the filter cannot drift apart. The reasons behind the
//! settings are measured Envoy 1.40 behaviour; the YAML comments say which.

use crate::args::EnvoyOptions;
use crate::xds::Discovered;
use crate::yaml::{quote, Yaml};
use model_router::access_log::{filter_state_key, ATTEMPT_PROPERTY, DECISION_PROPERTY};
use model_router::config::{Model, Pool, RouterConfig};
use model_router::metrics::TAG_EXTRACTORS;
use model_router::topology::{
    self, ClusterKind, CLUSTER_HEADER, METADATA_MODEL_KEY, METADATA_NAMESPACE, ROOT_ID_ATTEMPT,
    ROOT_ID_DOWNSTREAM, VM_ID,
};
use std::net::SocketAddr;

/// Headroom above `max_body_bytes` for headers and framing in the buffer limits.
pub const BUFFER_HEADROOM_BYTES: u64 = 64 * 1024;
/// Generous enough never to bind: Envoy's defaults (e.g. 3 concurrent retries per cluster)
/// turn failovers into the failing model's 503 under modest concurrency.
const CIRCUIT_BREAKER_LIMIT: u32 = 100_000;
pub const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
pub const ROUTE_CONFIG_NAME: &str = "model_router";

pub struct Inputs<'a> {
    pub config: &'a RouterConfig,
    /// The router config exactly as the filter will receive it (compact JSON).
    pub config_json: &'a str,
    pub options: &'a EnvoyOptions,
    /// The command line that produced this bootstrap, for the header comment.
    pub invocation: &'a str,
}

pub fn render(inputs: &Inputs<'_>) -> String {
    let mut y = Yaml::default();
    header(&mut y, inputs);
    admin(&mut y, inputs.options.admin);
    stats_config(&mut y);
    y.blank();
    y.line(0, "static_resources:");
    listener(&mut y, inputs);
    clusters(&mut y, inputs);
    y.finish()
}

/// Bytes a request body may take while the filter buffers it, plus headroom.
pub fn buffer_limit(config: &RouterConfig) -> u64 {
    config.settings.max_body_bytes + BUFFER_HEADROOM_BYTES
}

/// Envoy retries a request this many times at most; the downstream filter lowers it per
/// request with `x-envoy-max-retries` (pool size - 1, or 0 for a single model).
pub fn num_retries(config: &RouterConfig) -> usize {
    config.max_pool_len().saturating_sub(1).max(1)
}

/// A protobuf JSON `Duration` ("60s", "1.500s").
pub fn duration_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

/// Every distinct `api_key_env`, in model order: the VM may read only these host variables.
pub fn api_key_envs(config: &RouterConfig) -> Vec<&str> {
    let mut envs: Vec<&str> = Vec::new();
    for env in config
        .models
        .iter()
        .filter_map(|m| m.api_key_env.as_deref())
    {
        if !envs.contains(&env) {
            envs.push(env);
        }
    }
    envs
}

pub(crate) fn header(y: &mut Yaml, inputs: &Inputs<'_>) {
    let config = inputs.config;
    let options = inputs.options;
    y.comment(
        0,
        "Envoy bootstrap for model-router. Generated; do not edit by hand: change the",
    );
    y.comment(0, "router config and regenerate with:");
    y.comment(0, format!("  {}", inputs.invocation));
    y.comment(0, "");
    let mut run = String::from("envoy -c <this file>");
    if let Some(n) = options.concurrency_hint {
        run.push_str(&format!(" --concurrency {n}"));
    }
    if let Some(level) = &options.log_level {
        run.push_str(&format!(" --log-level {level}"));
    }
    y.comment(0, format!("Run: {run}"));
    if options.concurrency_hint.is_none() {
        y.comment(0, "(Envoy starts one worker, each with its own Wasm VM, per CPU unless --concurrency is given.)");
    }
    y.comment(
        0,
        format!(
            "The Wasm module path {} is used as written: Envoy resolves a relative path",
            options.wasm
        ),
    );
    y.comment(0, "against its own working directory.");
    let envs = api_key_envs(config);
    if !envs.is_empty() {
        y.comment(
            0,
            format!(
                "Start Envoy with these variables set (API keys the filter reads): {}",
                envs.join(", ")
            ),
        );
    }
    y.comment(0, "");
    y.comment(0, format!("Models ({}):", config.models.len()));
    for (id, model) in config.models.iter().enumerate() {
        y.comment(
            0,
            format!(
                "  {}  {}",
                topology::model_cluster(id),
                describe_model(model)
            ),
        );
    }
    if !config.pools.is_empty() {
        y.comment(0, format!("Pools ({}):", config.pools.len()));
        for pool in &config.pools {
            y.comment(
                0,
                format!("  {}: {}", pool.alias, model_names(config, &pool.members)),
            );
        }
    }
    y.blank();
}

fn describe_model(model: &Model) -> String {
    let scheme = if model.endpoint.tls { "https" } else { "http" };
    format!(
        "{:?} -> {scheme}://{} (upstream model {:?})",
        model.name,
        model.endpoint.authority(),
        model.upstream_model
    )
}

fn model_names(config: &RouterConfig, ids: &[usize]) -> String {
    ids.iter()
        .map(|&id| config.model(id).map_or("?", |m| m.name.as_str()))
        .collect::<Vec<_>>()
        .join(" -> ")
}

fn socket_address(y: &mut Yaml, depth: usize, addr: SocketAddr) {
    y.line(depth, "socket_address:");
    y.line(
        depth + 1,
        format!("address: {}", quote(&addr.ip().to_string())),
    );
    y.line(depth + 1, format!("port_value: {}", addr.port()));
}

pub(crate) fn admin(y: &mut Yaml, addr: SocketAddr) {
    y.line(0, "admin:");
    y.line(1, "address:");
    socket_address(y, 2, addr);
}

fn listener(y: &mut Yaml, inputs: &Inputs<'_>) {
    y.line(1, "listeners:");
    y.line(1, "- name: model_router");
    listener_fields(y, inputs, None);
}

/// The listener's fields (depth 2), after the line that opens it. With `discovered`, the
/// route and both Wasm filters are references to files Envoy watches instead of inline.
pub(crate) fn listener_fields(y: &mut Yaml, inputs: &Inputs<'_>, discovered: Option<&Discovered>) {
    let config = inputs.config;
    let limit = buffer_limit(config);
    y.line(2, "address:");
    socket_address(y, 3, inputs.options.listen);
    y.comment(
        2,
        "The filter buffers the whole request body before routing, and buffered bytes",
    );
    y.comment(
        2,
        "count against this limit (default 1 MiB; a larger body gets 413).",
    );
    y.line(2, format!("per_connection_buffer_limit_bytes: {limit}"));
    y.line(2, "filter_chains:");
    y.line(2, "- filters:");
    y.line(3, "- name: envoy.filters.network.http_connection_manager");
    y.line(4, "typed_config:");
    let d = 5;
    y.line(d, "\"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager");
    y.line(d, "stat_prefix: model_router");
    y.line(d, "codec_type: AUTO");
    y.line(d, "use_remote_address: true");
    y.comment(
        d,
        "No whole-request deadline: streamed completions can run for minutes. A stream",
    );
    let idle = duration_ms(config.settings.stream_idle_timeout_ms);
    y.comment(
        d,
        format!("idle for {idle} (settings.stream_idle_timeout_ms) is closed instead."),
    );
    y.line(d, format!("stream_idle_timeout: {idle}"));
    y.line(d, "request_timeout: 0s");
    access_log(y, d);
    local_reply_config(y, d);
    match discovered {
        None => route_config(y, d, config),
        Some(files) => files.route_reference(y, d),
    }
    y.line(d, "http_filters:");
    y.comment(
        d,
        "Downstream role: reads the body's model, picks the model or pool cluster and sets",
    );
    y.comment(d, format!("{CLUSTER_HEADER} and x-envoy-max-retries."));
    wasm_filter(y, d, inputs, ROOT_ID_DOWNSTREAM, discovered);
    y.line(d, "- name: envoy.filters.http.router");
    y.line(d + 1, "typed_config:");
    y.line(
        d + 2,
        "\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
    );
    y.comment(
        d + 2,
        "The attempt role runs once per attempt, after Envoy picked the host: it reads the",
    );
    y.comment(
        d + 2,
        "host's model metadata and rewrites the body's model, :authority and authorization.",
    );
    y.line(d + 2, "upstream_http_filters:");
    wasm_filter(y, d + 2, inputs, ROOT_ID_ATTEMPT, discovered);
    y.line(d + 2, "- name: envoy.filters.http.upstream_codec");
    y.line(d + 3, "typed_config:");
    y.line(d + 4, "\"@type\": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec");
}

fn access_log(y: &mut Yaml, d: usize) {
    let decision = filter_state_key(DECISION_PROPERTY);
    let attempt = filter_state_key(ATTEMPT_PROPERTY);
    let format = format!(
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%\" \
         %RESPONSE_CODE% %RESPONSE_FLAGS% %FILTER_STATE({decision}:PLAIN)% \
         %FILTER_STATE({attempt}:PLAIN)% cluster=%REQ(X-MODEL-ROUTER-CLUSTER)% \
         upstream=%UPSTREAM_HOST% %DURATION%ms\n"
    );
    y.comment(
        d,
        "The filter's decision and last attempt are filter state (logfmt values, \"-\" when",
    );
    y.comment(
        d,
        format!(
            "unset): {decision} = pool=<alias|-> strategy=<failover|latency|throughput|direct>"
        ),
    );
    y.comment(
        d,
        format!("first=<model>, {attempt} = model=<model> attempt=<n>."),
    );
    y.line(d, "access_log:");
    y.line(d, "- name: envoy.access_loggers.stdout");
    y.line(d + 1, "typed_config:");
    y.line(
        d + 2,
        "\"@type\": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
    );
    y.line(d + 2, "log_format:");
    y.line(d + 3, "text_format_source:");
    y.line(d + 4, format!("inline_string: {}", quote(&format)));
}

/// Turns the `key.value` pairs of the router's stat names into Prometheus labels
/// (`model_router_picks{pool,strategy,model}`, `model_router_<stat>{model}`).
pub(crate) fn stats_config(y: &mut Yaml) {
    y.comment(
        0,
        "Cuts pool, strategy and model out of the router's stat names into Prometheus labels.",
    );
    y.line(0, "stats_config:");
    y.line(1, "stats_tags:");
    for extractor in TAG_EXTRACTORS {
        y.line(1, format!("- tag_name: {}", extractor.tag_name));
        y.line(2, format!("regex: {}", quote(extractor.regex)));
    }
}

fn local_reply_config(y: &mut Yaml, d: usize) {
    y.comment(
        d,
        "Errors Envoy itself generates (connect failure, retries exhausted, overflow,",
    );
    y.comment(
        d,
        "timeout, no route) carry a response flag; answer those in OpenAI's error shape.",
    );
    y.comment(
        d,
        "The filter's own replies have no response flag and keep their body.",
    );
    y.line(d, "local_reply_config:");
    y.line(d + 1, "mappers:");
    y.line(d + 1, "- filter:");
    y.line(d + 3, "response_flag_filter: {}");
    y.line(d + 2, "body_format_override:");
    y.line(d + 3, "content_type: application/json");
    y.line(d + 3, "json_format:");
    y.line(d + 4, "error:");
    y.line(d + 5, "message: \"%LOCAL_REPLY_BODY%\"");
    y.line(d + 5, "type: upstream_error");
    y.line(d + 5, "param: null");
    y.line(d + 5, "code: \"%RESPONSE_CODE_DETAILS%\"");
}

fn route_config(y: &mut Yaml, d: usize, config: &RouterConfig) {
    y.line(d, "route_config:");
    route_config_fields(y, d + 1, config);
}

/// The route configuration's fields at depth `d`.
pub(crate) fn route_config_fields(y: &mut Yaml, d: usize, config: &RouterConfig) {
    let limit = buffer_limit(config);
    y.line(d, format!("name: {ROUTE_CONFIG_NAME}"));
    y.line(d, "virtual_hosts:");
    y.line(d, "- name: model_router");
    let v = d + 1;
    y.line(v, "domains: [\"*\"]");
    y.comment(
        v,
        "Sends x-envoy-attempt-count upstream, so the attempt role knows its attempt.",
    );
    y.line(v, "include_request_attempt_count: true");
    y.line(v, "routes:");
    y.line(v, "- match:");
    y.line(v + 2, "prefix: /");
    y.comment(
        v + 1,
        "Retries replay a buffered copy of the body: a body larger than this limit silently",
    );
    y.comment(
        v + 1,
        "disables them (retry_or_shadow_abandoned). Successor of the deprecated",
    );
    y.comment(v + 1, "per_request_buffer_limit_bytes (Envoy >= 1.36).");
    y.line(v + 1, format!("request_body_buffer_limit: {limit}"));
    y.line(v + 1, "route:");
    let r = v + 2;
    y.comment(
        r,
        "The downstream filter names the cluster: one model, or a pool's aggregate.",
    );
    y.line(r, format!("cluster_header: {CLUSTER_HEADER}"));
    y.comment(
        r,
        "No overall deadline (the default 15 s cuts long streams with a 200 and no [DONE]);",
    );
    y.comment(
        r,
        "per_try_timeout bounds each attempt until its response starts, idle_timeout the stream.",
    );
    y.line(r, "timeout: 0s");
    y.line(
        r,
        format!(
            "idle_timeout: {}",
            duration_ms(config.settings.stream_idle_timeout_ms)
        ),
    );
    y.line(r, "retry_policy:");
    let p = r + 1;
    y.line(
        p,
        "retry_on: \"5xx,reset,connect-failure,refused-stream,retriable-status-codes\"",
    );
    y.line(p, "retriable_status_codes: [429]");
    y.comment(
        p,
        "The largest pool's size - 1; x-envoy-max-retries sets each request's exact count.",
    );
    y.line(p, format!("num_retries: {}", num_retries(config)));
    y.line(
        p,
        format!(
            "per_try_timeout: {}",
            duration_ms(config.settings.attempt_timeout_ms)
        ),
    );
    y.comment(
        p,
        "Failover should be immediate; the default 25 ms base backoff adds up per model.",
    );
    y.line(p, "retry_back_off:");
    y.line(p + 1, "base_interval: 0.001s");
    y.line(p + 1, "max_interval: 0.005s");
    y.comment(
        p,
        "Each retry moves to the aggregate's next priority, i.e. the pool's next model.",
    );
    y.comment(p, "Without it every retry stays on the first model.");
    y.line(p, "retry_priority:");
    y.line(p + 1, "name: envoy.retry_priorities.previous_priorities");
    y.line(p + 1, "typed_config:");
    y.line(p + 2, "\"@type\": type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig");
    y.line(p + 2, "update_frequency: 1");
}

/// One Wasm filter entry (list item at `depth`): both roles share one VM (same `vm_id`,
/// module and configuration) and differ in `name` / `root_id`.
fn wasm_filter(
    y: &mut Yaml,
    d: usize,
    inputs: &Inputs<'_>,
    root_id: &str,
    discovered: Option<&Discovered>,
) {
    if let Some(files) = discovered {
        return files.filter_reference(y, d, root_id);
    }
    y.line(d, "- name: envoy.filters.http.wasm");
    y.line(d + 1, "typed_config:");
    wasm_typed_config(y, d + 2, inputs, root_id);
}

/// The Wasm filter's `typed_config` fields at depth `d`.
pub(crate) fn wasm_typed_config(y: &mut Yaml, d: usize, inputs: &Inputs<'_>, root_id: &str) {
    let envs = api_key_envs(inputs.config);
    y.line(d, format!("\"@type\": {WASM_TYPE}"));
    y.line(d, "config:");
    let c = d + 1;
    y.line(c, format!("name: {root_id}"));
    y.line(c, format!("root_id: {root_id}"));
    y.line(c, "vm_config:");
    y.line(c + 1, format!("vm_id: {VM_ID}"));
    y.line(c + 1, "runtime: envoy.wasm.runtime.v8");
    y.line(c + 1, "code:");
    y.line(c + 2, "local:");
    y.line(c + 3, format!("filename: {}", quote(&inputs.options.wasm)));
    if !envs.is_empty() {
        y.line(c + 1, "environment_variables:");
        y.line(c + 2, "host_env_keys:");
        for env in &envs {
            y.line(c + 2, format!("- {}", quote(env)));
        }
    }
    y.line(c, "configuration:");
    y.line(
        c + 1,
        "\"@type\": type.googleapis.com/google.protobuf.StringValue",
    );
    y.line(c + 1, format!("value: {}", quote(inputs.config_json)));
    y.comment(
        c,
        "A panic in the VM reloads it after about a second instead of failing forever.",
    );
    y.line(c, "failure_policy: FAIL_RELOAD");
    y.comment(
        c,
        "Lets the body callbacks run after the headers callback paused (Envoy >= 1.35).",
    );
    y.line(c, "allow_on_headers_stop_iteration: true");
}

/// Envoy limits on each cluster. Only the retry limit is meant to bind: the others are far
/// above what one Envoy serves, because Envoy's defaults (e.g. 3 concurrent retries per
/// cluster) turn failovers into the failing model's 503 under modest concurrency.
fn circuit_breakers(y: &mut Yaml, d: usize, config: &RouterConfig) {
    y.line(d, "circuit_breakers:");
    y.line(d + 1, "thresholds:");
    y.line(d + 1, format!("- max_connections: {CIRCUIT_BREAKER_LIMIT}"));
    y.line(
        d + 2,
        format!("max_pending_requests: {CIRCUIT_BREAKER_LIMIT}"),
    );
    y.line(d + 2, format!("max_requests: {CIRCUIT_BREAKER_LIMIT}"));
    y.comment(
        d + 2,
        "Replaces max_retries. A pool (aggregate) cluster counts no requests of its own, so",
    );
    y.comment(
        d + 2,
        "the floor is the cap: settings.max_concurrent_failovers retries in flight at once.",
    );
    y.line(d + 2, "retry_budget:");
    y.line(d + 3, "budget_percent: {value: 0}");
    y.line(
        d + 3,
        format!(
            "min_retry_concurrency: {}",
            config.settings.max_concurrent_failovers
        ),
    );
}

fn clusters(y: &mut Yaml, inputs: &Inputs<'_>) {
    y.line(1, "clusters:");
    cluster_items(y, inputs, None, &|_| true);
}

/// The clusters as list items at depth 1, those whose name `keep` accepts. With
/// `resource_type`, each item starts with that `@type` (an xDS resource).
pub(crate) fn cluster_items(
    y: &mut Yaml,
    inputs: &Inputs<'_>,
    resource_type: Option<&str>,
    keep: &dyn Fn(&str) -> bool,
) {
    let config = inputs.config;
    for plan in topology::clusters(config) {
        if !keep(&plan.name) {
            continue;
        }
        y.blank();
        let head = ItemHead {
            name: &plan.name,
            resource_type,
        };
        match &plan.kind {
            ClusterKind::Model(id) => {
                if let Some(model) = config.model(*id) {
                    model_cluster(y, inputs, head, *id, model);
                }
            }
            ClusterKind::Failover(order) => aggregate_cluster(y, config, head, order),
        }
    }
}

/// How a cluster's list item opens: `- name: N`, or `- "@type": T` then `name: N`.
#[derive(Clone, Copy)]
struct ItemHead<'a> {
    name: &'a str,
    resource_type: Option<&'a str>,
}

impl ItemHead<'_> {
    fn write(self, y: &mut Yaml) {
        match self.resource_type {
            None => y.line(1, format!("- name: {}", self.name)),
            Some(resource_type) => {
                y.line(1, format!("- \"@type\": {resource_type}"));
                y.line(2, format!("name: {}", self.name));
            }
        }
    }
}

fn model_cluster(y: &mut Yaml, inputs: &Inputs<'_>, head: ItemHead<'_>, id: usize, model: &Model) {
    let name = head.name;
    let endpoint = &model.endpoint;
    let is_ip = endpoint.is_ip();
    y.comment(1, format!("model {}", describe_model(model)));
    head.write(y);
    let d = 2;
    if is_ip {
        y.line(d, "type: STATIC");
    } else {
        y.line(d, "type: STRICT_DNS");
        y.line(d, "dns_lookup_family: V4_PREFERRED");
    }
    y.line(d, "connect_timeout: 2s");
    y.line(
        d,
        format!(
            "per_connection_buffer_limit_bytes: {}",
            buffer_limit(inputs.config)
        ),
    );
    y.line(d, "load_assignment:");
    y.line(d + 1, format!("cluster_name: {name}"));
    y.line(d + 1, "endpoints:");
    y.line(d + 1, "- lb_endpoints:");
    y.line(d + 2, "- endpoint:");
    y.line(d + 4, "address:");
    y.line(d + 5, "socket_address:");
    y.line(d + 6, format!("address: {}", quote(&endpoint.host)));
    y.line(d + 6, format!("port_value: {}", endpoint.port));
    y.comment(
        d + 3,
        "The attempt role reads which model this host serves from here.",
    );
    y.line(d + 3, "metadata:");
    y.line(d + 4, "filter_metadata:");
    y.line(d + 5, format!("{METADATA_NAMESPACE}:"));
    y.line(
        d + 6,
        format!("{METADATA_MODEL_KEY}: {}", quote(&id.to_string())),
    );
    if endpoint.tls {
        y.line(d, "transport_socket:");
        y.line(d + 1, "name: envoy.transport_sockets.tls");
        y.line(d + 1, "typed_config:");
        let t = d + 2;
        y.line(t, "\"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
        if !is_ip {
            y.line(t, format!("sni: {}", quote(&endpoint.host)));
        }
        y.line(t, "common_tls_context:");
        y.line(t + 1, "validation_context:");
        y.line(t + 2, "trusted_ca:");
        y.line(
            t + 3,
            format!("filename: {}", quote(&inputs.options.ca_bundle)),
        );
        y.comment(
            t + 2,
            "Without a SAN matcher Envoy accepts any certificate the CA signed.",
        );
        y.line(t + 2, "match_typed_subject_alt_names:");
        y.line(
            t + 2,
            format!("- san_type: {}", if is_ip { "IP_ADDRESS" } else { "DNS" }),
        );
        y.line(t + 3, "matcher:");
        y.line(t + 4, format!("exact: {}", quote(&endpoint.host)));
    }
    y.line(d, "typed_extension_protocol_options:");
    y.line(
        d + 1,
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions:",
    );
    y.line(
        d + 2,
        "\"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    );
    y.line(d + 2, "common_http_protocol_options:");
    y.line(d + 3, "idle_timeout: 60s");
    y.line(d + 2, "explicit_http_config:");
    y.line(d + 3, "http_protocol_options: {}");
    circuit_breakers(y, d, inputs.config);
}

fn aggregate_cluster(y: &mut Yaml, config: &RouterConfig, head: ItemHead<'_>, order: &[usize]) {
    let name = head.name;
    let alias = pool_of_cluster(config, name).map_or("?", |p| p.alias.as_str());
    y.comment(
        1,
        format!(
            "pool {alias:?}, tried in order: {}",
            model_names(config, order)
        ),
    );
    head.write(y);
    let d = 2;
    y.line(d, "connect_timeout: 2s");
    y.line(d, "lb_policy: CLUSTER_PROVIDED");
    y.line(d, "cluster_type:");
    y.line(d + 1, "name: envoy.clusters.aggregate");
    y.line(d + 1, "typed_config:");
    y.line(
        d + 2,
        "\"@type\": type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig",
    );
    y.comment(
        d + 2,
        "Priorities in this order; previous_priorities steps through them on retries.",
    );
    y.line(d + 2, "clusters:");
    for &id in order {
        y.line(d + 2, format!("- {}", topology::model_cluster(id)));
    }
    circuit_breakers(y, d, config);
}

/// The pool an aggregate cluster belongs to, found by its topology name.
fn pool_of_cluster<'c>(config: &'c RouterConfig, name: &str) -> Option<&'c Pool> {
    config.pools.iter().enumerate().find_map(|(id, pool)| {
        (0..pool.members.len())
            .any(|first| topology::pool_cluster(id, first) == name)
            .then_some(pool)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_protobuf_json() {
        for (ms, want) in [(60_000, "60s"), (1, "0.001s"), (1_500, "1.500s"), (0, "0s")] {
            assert_eq!(duration_ms(ms), want);
        }
    }
}
