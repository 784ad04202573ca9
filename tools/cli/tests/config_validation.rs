//! Validation of router configs through the library the filter itself uses
//! (`RouterConfig::from_json`): every refusal names the field and says what is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use model_router::config::{RouterConfig, Settings};

fn model(name: &str) -> String {
    format!(r#"{{"name": "{name}", "endpoint": "http://127.0.0.1:8000"}}"#)
}

fn models(n: usize) -> Vec<String> {
    (0..n).map(|i| model(&format!("m{i}"))).collect()
}

fn names(n: usize) -> String {
    (0..n)
        .map(|i| format!("\"m{i}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A config with models `m0..m{n-1}` and the given `pools` / `settings` JSON objects.
fn config(n: usize, pools: &str, settings: &str) -> String {
    format!(
        r#"{{"models": [{}], "pools": {pools}, "settings": {settings}}}"#,
        models(n).join(", ")
    )
}

fn with_models(models: &[String]) -> String {
    format!(r#"{{"models": [{}]}}"#, models.join(", "))
}

fn endpoint(url: &str) -> String {
    with_models(&[format!(r#"{{"name": "a", "endpoint": "{url}"}}"#)])
}

fn pool(alias: &str) -> String {
    config(2, &format!(r#"{{"{alias}": ["m0", "m1"]}}"#), "{}")
}

fn settings(settings: &str) -> String {
    config(1, "{}", settings)
}

/// Refused configs: (what, config, field, words the message must contain).
fn refusals() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let long_alias = "a".repeat(65);
    vec![
        // Models.
        (
            "no models",
            r#"{"models": []}"#.to_string(),
            "models",
            "at least one model",
        ),
        (
            "models missing",
            r#"{"pools": {}}"#.to_string(),
            "(document)",
            "missing field `models`",
        ),
        (
            "duplicate model",
            with_models(&[model("a"), model("b"), model("a")]),
            "models[2].name",
            "duplicate model name \"a\"",
        ),
        (
            "empty model name",
            with_models(&[model("")]),
            "models[0].name",
            "1 to 256",
        ),
        (
            "overlong model name",
            with_models(&[model(&"n".repeat(257))]),
            "models[0].name",
            "1 to 256",
        ),
        (
            "non-ASCII model name",
            with_models(&[model("modèle")]),
            "models[0].name",
            "printable ASCII",
        ),
        (
            "empty upstream_model",
            with_models(&[r#"{"name": "a", "endpoint": "http://h", "upstream_model": ""}"#.into()]),
            "models[0].upstream_model",
            "1 to 256",
        ),
        // Endpoints.
        (
            "URL without scheme",
            endpoint("127.0.0.1:8000"),
            "models[0].endpoint",
            "http:// or https://",
        ),
        (
            "ftp URL",
            endpoint("ftp://host"),
            "models[0].endpoint",
            "http:// or https://",
        ),
        (
            "URL with a path",
            endpoint("http://host/v1"),
            "models[0].endpoint",
            "without a path",
        ),
        (
            "URL with a query",
            endpoint("http://host?x=1"),
            "models[0].endpoint",
            "without a path",
        ),
        (
            "URL without host",
            endpoint("https://"),
            "models[0].endpoint",
            "no host",
        ),
        (
            "URL with port 0",
            endpoint("http://host:0"),
            "models[0].endpoint",
            "port",
        ),
        (
            "URL with port 65536",
            endpoint("http://host:65536"),
            "models[0].endpoint",
            "port",
        ),
        (
            "URL with a bad port",
            endpoint("http://host:http"),
            "models[0].endpoint",
            "port",
        ),
        (
            "URL with credentials",
            endpoint("http://user:pw@host"),
            "models[0].endpoint",
            "credentials",
        ),
        (
            "URL with a bad host",
            endpoint("http://bad host"),
            "models[0].endpoint",
            "not a DNS name",
        ),
        (
            "IPv6 without ]",
            endpoint("http://[::1:80"),
            "models[0].endpoint",
            "']'",
        ),
        // api_key_env.
        (
            "api_key_env starting with a digit",
            with_models(&[
                r#"{"name": "a", "endpoint": "http://h", "api_key_env": "1KEY"}"#.into(),
            ]),
            "models[0].api_key_env",
            "not an environment variable name",
        ),
        (
            "api_key_env with a dash",
            with_models(&[
                r#"{"name": "a", "endpoint": "http://h", "api_key_env": "MY-KEY"}"#.into(),
            ]),
            "models[0].api_key_env",
            "not an environment variable name",
        ),
        (
            "empty api_key_env",
            with_models(&[r#"{"name": "a", "endpoint": "http://h", "api_key_env": ""}"#.into()]),
            "models[0].api_key_env",
            "not an environment variable name",
        ),
        // Pools.
        (
            "21 models in a pool",
            config(21, &format!(r#"{{"big": [{}]}}"#, names(21)), "{}"),
            "pools.big",
            "has 21 models; a pool holds 1 to 20",
        ),
        (
            "empty pool",
            config(1, r#"{"p": []}"#, "{}"),
            "pools.p",
            "has 0 models",
        ),
        (
            "pool not a list",
            config(1, r#"{"p": "m0"}"#, "{}"),
            "pools.p",
            "must be a list",
        ),
        (
            "pool member not a string",
            config(1, r#"{"p": ["m0", 7]}"#, "{}"),
            "pools.p[1]",
            "must be a model name",
        ),
        (
            "unknown model in pool",
            config(2, r#"{"p": ["m0", "ghost"]}"#, "{}"),
            "pools.p[1]",
            "unknown model \"ghost\"",
        ),
        (
            "model twice in a pool",
            config(2, r#"{"p": ["m0", "m1", "m0"]}"#, "{}"),
            "pools.p[2]",
            "listed twice",
        ),
        (
            "pools not an object",
            config(1, r#"["m0"]"#, "{}"),
            "(document)",
            "expected a map",
        ),
        // Aliases.
        (
            "alias with a space",
            pool("my pool"),
            "pools.my pool",
            "contains ' '",
        ),
        (
            "alias with ':'",
            pool("fast:latency"),
            "pools.fast:latency",
            "contains ':'",
        ),
        ("alias with ','", pool("a,b"), "pools.a,b", "contains ','"),
        (
            "alias with a tab",
            pool("a\\tb"),
            "pools.a\tb",
            "contains '\\t'",
        ),
        (
            "alias with non-ASCII",
            pool("schnell\u{e9}"),
            "pools.schnell\u{e9}",
            "printable ASCII",
        ),
        (
            "65-character alias",
            pool(&long_alias),
            "pools.aaaaaaaa",
            "1 to 64 characters",
        ),
        ("empty alias", pool(""), "pools.", "1 to 64 characters"),
        (
            "aliases differing only in case",
            config(2, r#"{"Fast": ["m0"], "fast": ["m1"]}"#, "{}"),
            "pools.",
            "duplicate pool alias",
        ),
        (
            "alias equal to a model name",
            config(2, r#"{"m1": ["m0", "m1"]}"#, "{}"),
            "pools.m1",
            "also a model name",
        ),
        // Unknown fields, at every level.
        (
            "unknown top-level field",
            r#"{"models": [], "routes": {}}"#.to_string(),
            "(document)",
            "unknown field `routes`",
        ),
        (
            "unknown model field",
            with_models(&[r#"{"name": "a", "endpoint": "http://h", "weight": 3}"#.into()]),
            "(document)",
            "unknown field `weight`",
        ),
        (
            "unknown settings field",
            settings(r#"{"cooldown_ms": 5}"#),
            "(document)",
            "unknown field `cooldown_ms`",
        ),
        (
            "wrong type",
            settings(r#"{"attempt_timeout_ms": "60s"}"#),
            "(document)",
            "invalid type",
        ),
        (
            "negative number",
            settings(r#"{"max_body_bytes": -1}"#),
            "(document)",
            "invalid",
        ),
        (
            "not JSON",
            "{\"models\": [".to_string(),
            "(document)",
            "EOF",
        ),
        ("not an object", "[]".to_string(), "(document)", "expected"),
        // Settings bounds.
        (
            "cooldown_base_ms 0",
            settings(r#"{"cooldown_base_ms": 0}"#),
            "settings.cooldown_base_ms",
            "at least 1",
        ),
        (
            "cooldown_max_ms below base",
            settings(r#"{"cooldown_base_ms": 5000, "cooldown_max_ms": 4999}"#),
            "settings.cooldown_max_ms",
            "below cooldown_base_ms",
        ),
        (
            "cooldown_max_ms below the default base",
            settings(r#"{"cooldown_max_ms": 10}"#),
            "settings.cooldown_max_ms",
            "below cooldown_base_ms (1000)",
        ),
        (
            "attempt_timeout_ms 0",
            settings(r#"{"attempt_timeout_ms": 0}"#),
            "settings.attempt_timeout_ms",
            "at least 1",
        ),
        (
            "max_body_bytes too small",
            settings(r#"{"max_body_bytes": 1023}"#),
            "settings.max_body_bytes",
            "between 1024 and 1073741824",
        ),
        (
            "max_body_bytes too large",
            settings(r#"{"max_body_bytes": 1073741825}"#),
            "settings.max_body_bytes",
            "between 1024 and 1073741824",
        ),
        (
            "routed path without /",
            settings(r#"{"routed_paths": ["v1/chat/completions"]}"#),
            "settings.routed_paths[0]",
            "starting with '/'",
        ),
        (
            "routed path with a query",
            settings(r#"{"routed_paths": ["/ok", "/v1/x?y"]}"#),
            "settings.routed_paths[1]",
            "without a query",
        ),
        (
            "passthrough_model unknown",
            settings(r#"{"passthrough_model": "ghost"}"#),
            "settings.passthrough_model",
            "unknown model \"ghost\"",
        ),
    ]
}

#[test]
fn invalid_configs_are_refused_naming_the_field() {
    for (what, json, field, words) in refusals() {
        let errors = match RouterConfig::from_json(json.as_bytes()) {
            Ok(_) => panic!("{what}: accepted {json}"),
            Err(errors) => errors,
        };
        let hit = errors
            .0
            .iter()
            .find(|e| e.field.starts_with(field) && e.message.contains(words));
        assert!(
            hit.is_some(),
            "{what}: want field {field:?} with {words:?}, got:\n{errors}"
        );
        // The Display form (what `model-router check` prints) carries the same line.
        let shown = errors.to_string();
        assert!(
            shown.starts_with("invalid model-router config ("),
            "{what}: {shown}"
        );
        assert!(shown.contains(words), "{what}: {shown}");
    }
}

#[test]
fn valid_configs_at_the_limits_are_accepted() {
    let alias64 = "A".repeat(64);
    let cases: Vec<(&str, String)> = vec![
        (
            "one model, no pools or settings",
            r#"{"models": [{"name": "a", "endpoint": "http://h"}]}"#.into(),
        ),
        (
            "20 models in a pool",
            config(20, &format!(r#"{{"big": [{}]}}"#, names(20)), "{}"),
        ),
        ("one-model pool", config(1, r#"{"solo": ["m0"]}"#, "{}")),
        (
            "64-character alias",
            config(1, &format!(r#"{{"{alias64}": ["m0"]}}"#), "{}"),
        ),
        (
            "alias with punctuation",
            config(1, r#"{"team/fast-v2.1_@x": ["m0"]}"#, "{}"),
        ),
        (
            "two pools sharing models",
            config(2, r#"{"a": ["m0", "m1"], "b": ["m1", "m0"]}"#, "{}"),
        ),
        (
            "model names with ':' and ',' (only aliases forbid them)",
            with_models(&[model("vendor/model:free"), model("a,b")]),
        ),
        (
            "https, IPv6 and DNS endpoints",
            with_models(&[
                r#"{"name": "a", "endpoint": "https://api.example.com"}"#.into(),
                r#"{"name": "b", "endpoint": "http://[::1]:8080/"}"#.into(),
                r#"{"name": "c", "endpoint": "http://model_host.internal:1"}"#.into(),
            ]),
        ),
        (
            "api_key_env",
            with_models(&[
                r#"{"name": "a", "endpoint": "https://h", "api_key_env": "_OPENAI_API_KEY_2"}"#
                    .into(),
            ]),
        ),
        (
            "settings at their bounds",
            settings(
                r#"{"cooldown_base_ms": 1, "cooldown_max_ms": 1, "attempt_timeout_ms": 1,
                    "max_body_bytes": 1024, "routed_paths": [], "passthrough_model": "m0"}"#,
            ),
        ),
        (
            "max_body_bytes at 1 GiB",
            settings(r#"{"max_body_bytes": 1073741824}"#),
        ),
    ];
    for (what, json) in cases {
        if let Err(errors) = RouterConfig::from_json(json.as_bytes()) {
            panic!("{what}: refused:\n{errors}");
        }
    }
}

#[test]
fn all_errors_are_reported_in_one_pass() {
    let json = r#"{"models": [
            {"name": "a", "endpoint": "nope"},
            {"name": "a", "endpoint": "http://h", "api_key_env": "9"}],
        "pools": {"bad alias": ["ghost"]},
        "settings": {"attempt_timeout_ms": 0, "passthrough_model": "ghost"}}"#;
    let errors = RouterConfig::from_json(json.as_bytes()).unwrap_err();
    let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
    for want in [
        "models[0].endpoint",
        "models[1].name",
        "models[1].api_key_env",
        "pools.bad alias",
        "pools.bad alias[0]",
        "settings.attempt_timeout_ms",
        "settings.passthrough_model",
    ] {
        assert!(fields.contains(&want), "missing {want} in {fields:?}");
    }
    let shown = errors.to_string();
    assert!(shown.starts_with(&format!(
        "invalid model-router config ({} errors)",
        errors.0.len()
    )));
    assert_eq!(
        shown.lines().count(),
        errors.0.len() + 1,
        "one line per error"
    );
}

#[test]
fn defaults_fill_in_missing_settings_and_upstream_model() {
    let c = RouterConfig::from_json(
        br#"{"models": [{"name": "a", "endpoint": "https://h"}, {"name": "b", "endpoint": "http://h:81", "upstream_model": "vendor/b"}]}"#,
    )
    .unwrap();
    assert_eq!(c.models[0].upstream_model, "a");
    assert_eq!(c.models[1].upstream_model, "vendor/b");
    assert_eq!(c.models[0].endpoint.port, 443);
    assert!(c.models[0].endpoint.tls);
    let s = &c.settings;
    assert_eq!(s.cooldown_base_ms, Settings::DEFAULT_COOLDOWN_BASE_MS);
    assert_eq!(s.cooldown_max_ms, Settings::DEFAULT_COOLDOWN_MAX_MS);
    assert_eq!(s.attempt_timeout_ms, Settings::DEFAULT_ATTEMPT_TIMEOUT_MS);
    assert_eq!(s.max_body_bytes, Settings::DEFAULT_MAX_BODY_BYTES);
    assert_eq!(s.routed_paths, Settings::DEFAULT_ROUTED_PATHS);
    assert_eq!(s.passthrough_model, None);
    assert_eq!(c.max_pool_len(), 1, "no pools: one attempt");
}

#[test]
fn pool_aliases_resolve_case_insensitively_and_keep_their_order() {
    let c =
        RouterConfig::from_json(config(3, r#"{"Default": ["m2", "m0", "m1"]}"#, "{}").as_bytes())
            .unwrap();
    for alias in ["Default", "default", "DEFAULT", "dEfAuLt"] {
        let id = c.pool_by_alias(alias).unwrap_or_else(|| panic!("{alias}"));
        assert_eq!(c.pool(id).unwrap().members, [2, 0, 1]);
        assert_eq!(c.pool(id).unwrap().alias, "Default");
    }
    assert_eq!(c.pool_by_alias("defaults"), None);
    assert_eq!(c.pool_by_alias(&"d".repeat(65)), None);
    assert_eq!(c.model_by_name("m2"), Some(2));
    assert_eq!(c.model_by_name("M2"), None, "model names are exact");
    assert_eq!(c.max_pool_len(), 3);
}
