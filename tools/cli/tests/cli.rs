//! The `model-router` binary end to end: `check`, `envoy`, usage, and (when Envoy is on PATH)
//! `envoy --mode validate` on what it generates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use model_router::config::RouterConfig;
use model_router::topology::{self, ClusterKind};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_model-router");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn demo_json() -> PathBuf {
    repo_root().join("envoy/demo.json")
}

/// A fresh directory for one test's files.
fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "model-router-cli-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_config(json: &str) -> PathBuf {
    let path = temp_dir().join("config.json");
    std::fs::write(&path, json).unwrap();
    path
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    run_with(Command::new(BIN).args(args))
}

fn run_with(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn envoy_yaml(config: &Path, extra: &[&str]) -> String {
    let mut args = vec!["envoy", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run(&args);
    assert_eq!(out.code, 0, "envoy failed: {}", out.stderr);
    out.stdout
}

/// `n` local models `m0..m{n-1}` in one pool `big`, plus optional extra model objects.
fn pool_config(n: usize, extra_models: &[&str]) -> String {
    let mut models: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"name": "m{i}", "endpoint": "http://127.0.0.1:{}"}}"#,
                20000 + i
            )
        })
        .collect();
    let mut members: Vec<String> = (0..n).map(|i| format!("\"m{i}\"")).collect();
    for extra in extra_models {
        models.push((*extra).to_string());
        let v: serde_json::Value = serde_json::from_str(extra).unwrap();
        members.push(format!("\"{}\"", v["name"].as_str().unwrap()));
    }
    format!(
        r#"{{"models": [{}], "pools": {{"big": [{}]}}}}"#,
        models.join(", "),
        members.join(", ")
    )
}

/// The configuration strings embedded in the bootstrap's Wasm filters, decoded.
fn embedded_configs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].trim() == "\"@type\": type.googleapis.com/google.protobuf.StringValue")
        .map(|w| {
            let quoted = w[1].trim().strip_prefix("value: ").unwrap();
            serde_json::from_str::<String>(quoted).unwrap()
        })
        .collect()
}

/// Cluster blocks by name (each `  - name: ...` item under `clusters:`).
fn cluster_blocks(yaml: &str) -> Vec<(String, String)> {
    let (_, clusters) = yaml.split_once("\n  clusters:\n").unwrap();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in clusters.lines() {
        if let Some(name) = line.strip_prefix("  - name: ") {
            out.push((name.to_string(), String::new()));
        } else if let Some((_, block)) = out.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

#[test]
fn help_prints_usage_and_exits_zero() {
    for args in [
        &["--help"][..],
        &["help"],
        &["-h"],
        &["envoy", "x", "--help"],
    ] {
        let out = run(args);
        assert_eq!(out.code, 0, "{args:?}");
        assert!(out.stdout.contains("model-router envoy CONFIG"), "{args:?}");
        assert!(out.stdout.contains("--concurrency-hint"), "{args:?}");
    }
}

#[test]
fn bad_usage_exits_two_with_usage_on_stderr() {
    let demo = demo_json();
    let demo = demo.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[], "no command"),
        (&["launch"], "unknown command"),
        (&["check"], "missing CONFIG"),
        (&["envoy", demo, "--bogus", "1"], "unknown option --bogus"),
        (&["envoy", demo, "--listen", "localhost:80"], "IP:PORT"),
        (&["envoy", demo, "--log-level", "chatty"], "--log-level"),
        (
            &["envoy", demo, "--concurrency-hint", "many"],
            "--concurrency-hint",
        ),
    ];
    for (args, want) in cases {
        let out = run(args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("Usage:"), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn check_accepts_the_demo_config() {
    let out = run(&["check", demo_json().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.trim(),
        "ok: 3 models, 1 pool (default: 3 models)"
    );
}

#[test]
fn check_reads_standard_input_for_dash() {
    let mut child = Command::new(BIN)
        .args(["check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let demo = std::fs::read(demo_json()).unwrap();
    child.stdin.take().unwrap().write_all(&demo).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("ok: 3 models"));
}

#[test]
fn check_refuses_invalid_configs_naming_the_field() {
    let m = |name: &str| format!(r#"{{"name": "{name}", "endpoint": "http://127.0.0.1:1"}}"#);
    let pool21 = pool_config(21, &[]);
    let cases: Vec<(&str, String, &[&str])> = vec![
        (
            "21-model pool",
            pool21,
            &["pools.big", "21 models", "1 to 20"],
        ),
        (
            "duplicate model",
            format!(r#"{{"models": [{}, {}]}}"#, m("a"), m("a")),
            &["models[1].name", "duplicate model name \"a\""],
        ),
        (
            "unknown model in pool",
            format!(
                r#"{{"models": [{}], "pools": {{"p": ["a", "ghost"]}}}}"#,
                m("a")
            ),
            &["pools.p[1]", "unknown model \"ghost\""],
        ),
        (
            "bad URL",
            r#"{"models": [{"name": "a", "endpoint": "ftp://x"}]}"#.into(),
            &["models[0].endpoint", "http:// or https://"],
        ),
        (
            "URL with a path",
            r#"{"models": [{"name": "a", "endpoint": "http://x/v1"}]}"#.into(),
            &["models[0].endpoint", "without a path"],
        ),
        (
            "bad alias",
            format!(
                r#"{{"models": [{}], "pools": {{"my pool": ["a"]}}}}"#,
                m("a")
            ),
            &["pools.my pool", "contains ' '"],
        ),
        (
            "unknown field",
            format!(r#"{{"models": [{}], "extra": 1}}"#, m("a")),
            &["(document)", "unknown field `extra`"],
        ),
        (
            "unknown model field",
            r#"{"models": [{"name": "a", "endpoint": "http://x", "weight": 2}]}"#.into(),
            &["(document)", "unknown field `weight`"],
        ),
        ("not JSON", "{models".into(), &["(document)"]),
    ];
    for (what, json, wants) in cases {
        let path = write_config(&json);
        let out = run(&["check", path.to_str().unwrap()]);
        assert_eq!(out.code, 1, "{what}: {}", out.stdout);
        assert!(out.stdout.is_empty(), "{what}: {}", out.stdout);
        assert!(
            out.stderr.contains("invalid model-router config"),
            "{what}: {}",
            out.stderr
        );
        for want in wants {
            assert!(
                out.stderr.contains(want),
                "{what}: want {want:?} in {}",
                out.stderr
            );
        }
    }
}

#[test]
fn check_lists_every_error_at_once() {
    let path = write_config(
        r#"{"models": [{"name": "a", "endpoint": "gopher://x", "api_key_env": "1X"}],
            "pools": {"p": ["zzz"]}, "settings": {"attempt_timeout_ms": 0}}"#,
    );
    let out = run(&["check", path.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    for want in [
        "(4 errors)",
        "models[0].endpoint",
        "models[0].api_key_env",
        "pools.p[0]",
        "settings.attempt_timeout_ms",
    ] {
        assert!(out.stderr.contains(want), "want {want:?} in {}", out.stderr);
    }
}

#[test]
fn check_and_envoy_fail_on_a_missing_file() {
    for cmd in ["check", "envoy"] {
        let out = run(&[cmd, "/nonexistent/model-router.json"]);
        assert_eq!(out.code, 1, "{cmd}");
        assert!(out.stderr.contains("cannot read"), "{cmd}: {}", out.stderr);
    }
}

#[test]
fn unset_api_key_env_warns_but_passes() {
    let path = write_config(
        r#"{"models": [{"name": "a", "endpoint": "https://api.example.com",
                        "api_key_env": "MODEL_ROUTER_TEST_SURELY_UNSET_KEY"}]}"#,
    );
    let unset = run_with(
        Command::new(BIN)
            .args(["check", path.to_str().unwrap()])
            .env_remove("MODEL_ROUTER_TEST_SURELY_UNSET_KEY"),
    );
    assert_eq!(unset.code, 0, "{}", unset.stderr);
    assert!(
        unset.stderr.contains("warning: models[0].api_key_env"),
        "{}",
        unset.stderr
    );
    assert!(unset.stderr.contains("MODEL_ROUTER_TEST_SURELY_UNSET_KEY"));

    let set = run_with(
        Command::new(BIN)
            .args(["check", path.to_str().unwrap()])
            .env("MODEL_ROUTER_TEST_SURELY_UNSET_KEY", "sk-test"),
    );
    assert_eq!(set.code, 0);
    assert!(!set.stderr.contains("warning"), "{}", set.stderr);
}

#[test]
fn envoy_refuses_an_invalid_config_and_prints_nothing() {
    let path = write_config(r#"{"models": []}"#);
    let out = run(&["envoy", path.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("models: at least one model"),
        "{}",
        out.stderr
    );
}

#[test]
fn envoy_emits_one_cluster_per_model_and_one_aggregate_per_pool_start() {
    let json = r#"{"models": [
        {"name": "a", "endpoint": "http://127.0.0.1:1"},
        {"name": "b", "endpoint": "http://10.0.0.2:2"},
        {"name": "c", "endpoint": "http://models.internal:3"}],
      "pools": {"one": ["c", "a", "b"], "two": ["b", "c"]}}"#;
    let config = RouterConfig::from_json(json.as_bytes()).unwrap();
    let yaml = envoy_yaml(&write_config(json), &[]);
    let blocks = cluster_blocks(&yaml);
    let plan = topology::clusters(&config);
    assert_eq!(blocks.len(), 3 + 3 + 2);
    assert_eq!(
        blocks.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        plan.iter().map(|p| p.name.as_str()).collect::<Vec<_>>()
    );
    for ((name, block), plan) in blocks.iter().zip(&plan) {
        match &plan.kind {
            ClusterKind::Model(id) => {
                let model = config.model(*id).unwrap();
                assert!(block.contains(&format!("cluster_name: {name}\n")), "{name}");
                assert!(
                    block.contains(&format!("model: \"{id}\"\n")),
                    "{name}: metadata"
                );
                assert!(
                    block.contains("model_router:\n"),
                    "{name}: metadata namespace"
                );
                assert!(block.contains(&format!("port_value: {}\n", model.endpoint.port)));
                assert!(
                    block.contains("http_protocol_options: {}"),
                    "{name}: HTTP/1.1"
                );
                assert!(block.contains("idle_timeout: 60s"), "{name}");
                assert!(
                    block.contains("min_retry_concurrency: 1000\n"),
                    "{name}: retry budget"
                );
                assert!(block.contains("per_connection_buffer_limit_bytes: 8454144"));
                if model.endpoint.is_ip() {
                    assert!(block.contains("type: STATIC\n"), "{name}");
                } else {
                    assert!(block.contains("type: STRICT_DNS\n"), "{name}");
                    assert!(block.contains("dns_lookup_family: V4_PREFERRED"), "{name}");
                }
                assert!(!block.contains("transport_socket"), "{name}: plain http");
            }
            ClusterKind::Failover(order) => {
                assert!(block.contains("lb_policy: CLUSTER_PROVIDED"), "{name}");
                assert!(block.contains("name: envoy.clusters.aggregate"), "{name}");
                assert!(
                    block.contains("min_retry_concurrency: 1000\n"),
                    "{name}: retry budget"
                );
                let listed: Vec<String> = block
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix("- mr.model."))
                    .map(|id| topology::model_cluster(id.parse().unwrap()))
                    .collect();
                let want: Vec<String> = order.iter().map(|&m| topology::model_cluster(m)).collect();
                assert_eq!(listed, want, "{name}");
            }
        }
    }
    // The comment above each aggregate names its pool and the model order.
    assert!(yaml.contains("# pool \"one\", tried in order: c -> a -> b"));
    assert!(yaml.contains("# pool \"one\", tried in order: a -> b -> c"));
    assert!(yaml.contains("# pool \"two\", tried in order: c -> b"));
}

#[test]
fn envoy_route_carries_the_failover_retry_policy() {
    let yaml = envoy_yaml(&demo_json(), &[]);
    for want in [
        "include_request_attempt_count: true",
        "cluster_header: x-model-router-cluster",
        "timeout: 0s",
        "idle_timeout: 300s",
        "retry_on: \"5xx,reset,connect-failure,refused-stream,retriable-status-codes\"",
        "retriable_status_codes: [429]",
        "num_retries: 2",
        "per_try_timeout: 60s",
        "base_interval: 0.001s",
        "max_interval: 0.005s",
        "name: envoy.retry_priorities.previous_priorities",
        "PreviousPrioritiesConfig",
        "update_frequency: 1",
        "request_body_buffer_limit: 8454144",
    ] {
        assert!(yaml.contains(want), "missing {want:?}");
    }
}

#[test]
fn envoy_retry_count_and_timeouts_follow_the_config() {
    let json = r#"{"models": [{"name": "solo", "endpoint": "http://127.0.0.1:1"}],
                   "settings": {"attempt_timeout_ms": 2500, "max_body_bytes": 1048576}}"#;
    let yaml = envoy_yaml(&write_config(json), &[]);
    assert!(
        yaml.contains("num_retries: 1\n"),
        "at least one retry even without pools"
    );
    assert!(yaml.contains("per_try_timeout: 2.500s\n"));
    assert_eq!(
        yaml.matches("per_connection_buffer_limit_bytes: 1114112\n")
            .count(),
        2
    );
    assert!(yaml.contains("request_body_buffer_limit: 1114112\n"));

    let yaml = envoy_yaml(&write_config(&pool_config(20, &[])), &[]);
    assert!(yaml.contains("num_retries: 19\n"));
}

#[test]
fn envoy_listener_hcm_and_local_replies_are_configured() {
    let yaml = envoy_yaml(&demo_json(), &[]);
    for want in [
        "per_connection_buffer_limit_bytes: 8454144",
        "codec_type: AUTO",
        "stat_prefix: model_router",
        "stream_idle_timeout: 300s",
        "request_timeout: 0s",
        "use_remote_address: true",
        "envoy.access_loggers.stdout",
        "%REQ(X-MODEL-ROUTER-CLUSTER)%",
        "%FILTER_STATE(wasm.model_router.decision:PLAIN)%",
        "%FILTER_STATE(wasm.model_router.attempt:PLAIN)%",
        "stats_config:",
        "- tag_name: pool",
        "- tag_name: strategy",
        "- tag_name: model",
        "- tag_name: model_router_cluster",
        "%RESPONSE_CODE%",
        "%RESPONSE_FLAGS%",
        "%DURATION%",
        "response_flag_filter: {}",
        "content_type: application/json",
        "message: \"%LOCAL_REPLY_BODY%\"",
        "type: upstream_error",
        "param: null",
        "code: \"%RESPONSE_CODE_DETAILS%\"",
    ] {
        assert!(yaml.contains(want), "missing {want:?}");
    }
    assert_eq!(
        yaml.matches("- filter:").count(),
        1,
        "exactly one local reply mapper"
    );
}

#[test]
fn envoy_addresses_default_to_loopback_and_follow_flags() {
    let yaml = envoy_yaml(&demo_json(), &[]);
    let (admin, rest) = yaml.split_once("static_resources:").unwrap();
    assert!(admin.contains("address: \"127.0.0.1\"\n      port_value: 9901\n"));
    assert!(rest.contains("address: \"127.0.0.1\"\n        port_value: 10000\n"));
    let addresses: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("address: \""))
        .collect();
    assert!(
        addresses.iter().all(|a| a.starts_with("127.")),
        "nothing listens or connects off loopback in the demo: {addresses:?}"
    );

    let yaml = envoy_yaml(
        &demo_json(),
        &["--listen", "0.0.0.0:8080", "--admin=[::1]:9000"],
    );
    assert!(yaml.contains("address: \"0.0.0.0\"\n        port_value: 8080\n"));
    assert!(yaml.contains("address: \"::1\"\n      port_value: 9000\n"));
}

#[test]
fn envoy_installs_both_wasm_roles_in_order() {
    let yaml = envoy_yaml(&demo_json(), &["--wasm", "some/dir/router.wasm"]);
    assert_eq!(
        yaml.matches("allow_on_headers_stop_iteration: true")
            .count(),
        2
    );
    assert_eq!(yaml.matches("failure_policy: FAIL_RELOAD").count(), 2);
    assert_eq!(yaml.matches("vm_id: model_router\n").count(), 2);
    assert_eq!(yaml.matches("runtime: envoy.wasm.runtime.v8").count(), 2);
    assert_eq!(
        yaml.matches("filename: \"some/dir/router.wasm\"").count(),
        2,
        "the --wasm path is kept exactly as given"
    );
    assert!(
        !yaml.contains("environment_variables"),
        "no api_key_env in the demo"
    );
    let order = [
        "- name: envoy.filters.http.wasm",
        "root_id: model_router\n",
        "- name: envoy.filters.http.router",
        "upstream_http_filters:",
        "- name: envoy.filters.http.wasm",
        "name: model_router_attempt\n",
        "root_id: model_router_attempt\n",
        "- name: envoy.filters.http.upstream_codec",
        "UpstreamCodec",
        "clusters:",
    ];
    let mut at = 0;
    for piece in order {
        let found = yaml[at..]
            .find(piece)
            .unwrap_or_else(|| panic!("{piece:?} out of order"));
        at += found + piece.len();
    }
}

#[test]
fn envoy_default_wasm_path_is_the_build_output() {
    let yaml = envoy_yaml(&demo_json(), &[]);
    assert!(yaml.contains("filename: \"build/model_router.wasm\""));
}

#[test]
fn envoy_embedded_config_round_trips() {
    for json in [
        std::fs::read_to_string(demo_json()).unwrap(),
        pool_config(19, &[r#"{"name": "x/y:z", "endpoint": "https://a.example", "api_key_env": "K"}"#]),
        r#"{"models": [{"name": "quote\"and\\back", "endpoint": "http://h:1",
             "upstream_model": "tab\there"}],
            "settings": {"routed_paths": ["/v1/chat/completions"], "passthrough_model": "quote\"and\\back"}}"#
            .to_string(),
    ] {
        let original = RouterConfig::from_json(json.as_bytes()).unwrap();
        let yaml = envoy_yaml(&write_config(&json), &[]);
        let embedded = embedded_configs(&yaml);
        assert_eq!(embedded.len(), 2, "one per Wasm role");
        assert_eq!(embedded[0], embedded[1]);
        assert!(!embedded[0].contains('\n'), "compact JSON");
        let parsed = RouterConfig::from_json(embedded[0].as_bytes()).unwrap();
        assert_eq!(parsed, original);
    }
}

#[test]
fn envoy_https_models_verify_the_upstream_certificate() {
    let json = r#"{"models": [
        {"name": "dns", "endpoint": "https://api.example.com", "api_key_env": "EXAMPLE_KEY"},
        {"name": "ip", "endpoint": "https://192.0.2.7:8443", "api_key_env": "EXAMPLE_KEY"},
        {"name": "other", "endpoint": "https://other.example:443", "api_key_env": "OTHER_KEY"}]}"#;
    let yaml = envoy_yaml(&write_config(json), &["--ca-bundle", "/opt/ca.pem"]);
    let blocks = cluster_blocks(&yaml);
    let (_, dns) = &blocks[0];
    assert!(dns.contains("type: STRICT_DNS"));
    assert!(dns.contains("name: envoy.transport_sockets.tls"));
    assert!(dns.contains("sni: \"api.example.com\""));
    assert!(dns.contains("filename: \"/opt/ca.pem\""));
    assert!(dns.contains("- san_type: DNS\n"));
    assert!(dns.contains("exact: \"api.example.com\""));
    assert!(dns.contains("port_value: 443\n"));
    let (_, ip) = &blocks[1];
    assert!(ip.contains("type: STATIC"));
    assert!(!ip.contains("sni:"), "no SNI for an IP address");
    assert!(ip.contains("- san_type: IP_ADDRESS\n"));
    assert!(ip.contains("exact: \"192.0.2.7\""));
    // Each key variable is passed to the VM once, in model order.
    assert_eq!(yaml.matches("host_env_keys:").count(), 2);
    let keys: Vec<&str> = yaml
        .lines()
        .skip_while(|l| !l.contains("host_env_keys:"))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("- \""))
        .map(str::trim)
        .collect();
    assert_eq!(keys, ["- \"EXAMPLE_KEY\"", "- \"OTHER_KEY\""]);
}

#[test]
fn envoy_run_hints_appear_in_the_header() {
    let yaml = envoy_yaml(
        &demo_json(),
        &["--concurrency-hint", "4", "--log-level", "debug"],
    );
    assert!(yaml.contains("# Run: envoy -c <this file> --concurrency 4 --log-level debug\n"));
    assert!(yaml.starts_with("# "));
}

#[test]
fn committed_demo_bootstrap_is_up_to_date() {
    let out = run_with(Command::new(BIN).current_dir(repo_root()).args([
        "envoy",
        "envoy/demo.json",
        "--wasm",
        "build/model_router.wasm",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let committed = std::fs::read_to_string(repo_root().join("envoy/demo-envoy.yaml")).unwrap();
    assert!(
        committed == out.stdout,
        "envoy/demo-envoy.yaml is stale; regenerate it with: \
         model-router envoy envoy/demo.json --wasm build/model_router.wasm > envoy/demo-envoy.yaml"
    );
}

// ---------------------------------------------------------------------------------------
// Envoy's own validation of the generated bootstrap.

fn envoy_on_path() -> bool {
    Command::new("envoy")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The smallest module Envoy's Wasm host accepts: validate mode loads the module, starts the
/// VM and calls `proxy_on_configure`, so the module must speak the proxy-wasm ABI. In WAT:
///
/// ```text
/// (module
///   (memory (export "memory") 1)
///   (func (export "proxy_abi_version_0_2_1"))
///   (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
///   (func (export "proxy_on_context_create") (param i32 i32))
///   (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
///   (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1))
/// ```
fn stub_proxy_wasm_module() -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn section(id: u8, items: &[Vec<u8>], out: &mut Vec<u8>) {
        let mut payload = Vec::new();
        leb(items.len(), &mut payload);
        items.iter().for_each(|i| payload.extend_from_slice(i));
        out.push(id);
        leb(payload.len(), out);
        out.extend_from_slice(&payload);
    }
    const I32: u8 = 0x7f;
    // Types: 0 () -> (), 1 (i32) -> i32, 2 (i32 i32) -> (), 3 (i32 i32) -> i32.
    let types = vec![
        vec![0x60, 0, 0],
        vec![0x60, 1, I32, 1, I32],
        vec![0x60, 2, I32, I32, 0],
        vec![0x60, 2, I32, I32, 1, I32],
    ];
    let functions = vec![vec![0], vec![1], vec![2], vec![3], vec![3]];
    let memory = vec![vec![0x00, 1]];
    let export = |name: &str, kind: u8, index: u8| {
        let mut e = Vec::new();
        leb(name.len(), &mut e);
        e.extend_from_slice(name.as_bytes());
        e.extend_from_slice(&[kind, index]);
        e
    };
    let exports = vec![
        export("proxy_abi_version_0_2_1", 0, 0),
        export("proxy_on_memory_allocate", 0, 1),
        export("proxy_on_context_create", 0, 2),
        export("proxy_on_vm_start", 0, 3),
        export("proxy_on_configure", 0, 4),
        export("memory", 2, 0),
    ];
    // Bodies: size, no locals, instructions, end. 0x41 = i32.const (LEB128 operand).
    let code = vec![
        vec![2, 0, 0x0b],
        vec![5, 0, 0x41, 0x80, 0x08, 0x0b],
        vec![2, 0, 0x0b],
        vec![4, 0, 0x41, 1, 0x0b],
        vec![4, 0, 0x41, 1, 0x0b],
    ];
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    section(1, &types, &mut module);
    section(3, &functions, &mut module);
    section(5, &memory, &mut module);
    section(7, &exports, &mut module);
    section(10, &code, &mut module);
    module
}

fn envoy_validate(config_json: &str, wasm: &Path, what: &str) {
    let dir = temp_dir();
    let config = dir.join("config.json");
    std::fs::write(&config, config_json).unwrap();
    let yaml = envoy_yaml(&config, &["--wasm", wasm.to_str().unwrap()]);
    let bootstrap = dir.join("envoy.yaml");
    std::fs::write(&bootstrap, &yaml).unwrap();
    // The filter refuses to configure when a model's api_key_env is unset in Envoy's env.
    let out = run_with(
        Command::new("envoy")
            .args(["--mode", "validate", "-c", bootstrap.to_str().unwrap()])
            .env("REMOTE_KEY", "sk-validate-only"),
    );
    let log = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{what}: envoy --mode validate failed:\n{log}");
    assert!(log.contains("OK"), "{what}: {log}");
    for line in log.lines() {
        assert!(
            !line.contains("Deprecated field") && !line.contains("[critical]"),
            "{what}: {line}"
        );
    }
}

fn validation_configs() -> Vec<(&'static str, String)> {
    vec![
        ("demo.json", std::fs::read_to_string(demo_json()).unwrap()),
        (
            "20-model pool with https models",
            pool_config(
                18,
                &[
                    r#"{"name": "remote", "endpoint": "https://api.example.com", "upstream_model": "big-model", "api_key_env": "REMOTE_KEY"}"#,
                    r#"{"name": "remote-ip", "endpoint": "https://192.0.2.7:8443"}"#,
                ],
            ),
        ),
    ]
}

#[test]
fn envoy_validates_generated_bootstraps() {
    if !envoy_on_path() {
        println!("note: envoy is not on PATH; skipping envoy --mode validate");
        return;
    }
    let wasm = temp_dir().join("stub.wasm");
    std::fs::write(&wasm, stub_proxy_wasm_module()).unwrap();
    for (what, json) in validation_configs() {
        envoy_validate(&json, &wasm, what);
    }
}

/// With the real filter, validate mode also runs its `on_configure` on the embedded config.
#[test]
fn envoy_validates_generated_bootstraps_with_the_real_filter() {
    let wasm = std::env::var_os("MODEL_ROUTER_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/wasm32-wasip1/release/model_router.wasm"));
    if !envoy_on_path() || !wasm.exists() {
        println!(
            "note: skipping: needs envoy on PATH and {} (set MODEL_ROUTER_WASM or build it)",
            wasm.display()
        );
        return;
    }
    for (what, json) in validation_configs() {
        envoy_validate(&json, &wasm, what);
    }
}
