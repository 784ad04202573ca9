//! `model-router envoy --xds-dir` and `model-router apply`, without a running Envoy (the
//! end-to-end reload test, tests/e2e/test_reload.py, runs them against a real one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_model-router");
const RESOURCE_FILES: [&str; 5] = [
    "lds.yaml",
    "rds.yaml",
    "cds.yaml",
    "ecds-model_router.yaml",
    "ecds-model_router_attempt.yaml",
];

fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "model-router-xds-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(pool: &[&str], extra_models: &[&str]) -> String {
    let mut models: Vec<String> = ["a", "b"]
        .iter()
        .chain(extra_models)
        .enumerate()
        .map(|(i, m)| {
            format!(
                r#"{{"name":"{m}","endpoint":"http://127.0.0.1:{}"}}"#,
                1000 + i
            )
        })
        .collect();
    models.dedup();
    let pool: Vec<String> = pool.iter().map(|m| format!("\"{m}\"")).collect();
    format!(
        r#"{{"models":[{}],"pools":{{"default":[{}]}}}}"#,
        models.join(","),
        pool.join(",")
    )
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(BIN).args(args).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A setup in `work/xds` from `json`; the admin port is one nothing listens on, so
/// `apply` finds no Envoy.
fn set_up(work: &Path, json: &str) -> PathBuf {
    let config = work.join("router.json");
    std::fs::write(&config, json).unwrap();
    let dir = work.join("xds");
    let r = run(&[
        "envoy",
        config.to_str().unwrap(),
        "--xds-dir",
        dir.to_str().unwrap(),
        "--admin",
        "127.0.0.1:1",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    dir
}

fn read_all(dir: &Path) -> Vec<(String, String)> {
    RESOURCE_FILES
        .iter()
        .map(|f| (f.to_string(), std::fs::read_to_string(dir.join(f)).unwrap()))
        .collect()
}

fn apply(work: &Path, dir: &Path, json: &str) -> Run {
    let path = work.join("edited.json");
    std::fs::write(&path, json).unwrap();
    run(&[
        "apply",
        path.to_str().unwrap(),
        "--xds-dir",
        dir.to_str().unwrap(),
    ])
}

fn version(text: &str) -> &str {
    text.lines()
        .find_map(|l| l.strip_prefix("version_info: "))
        .unwrap()
}

#[test]
fn xds_dir_writes_a_bootstrap_that_watches_listener_and_clusters() {
    let work = temp_dir();
    let dir = set_up(&work, &config(&["a", "b"], &[]));
    let dir = std::fs::canonicalize(dir).unwrap();
    let bootstrap = std::fs::read_to_string(dir.join("envoy.yaml")).unwrap();
    assert!(bootstrap.contains("dynamic_resources:"));
    assert!(!bootstrap.contains("static_resources:"));
    for file in ["lds.yaml", "cds.yaml"] {
        assert!(
            bootstrap.contains(&format!("path: \"{}\"", dir.join(file).display())),
            "{file}: an absolute path, since Envoy resolves against its own directory"
        );
    }
    assert!(bootstrap.contains(&format!(
        "watched_directory:\n        path: \"{}\"",
        dir.display()
    )));

    let listener = std::fs::read_to_string(dir.join("lds.yaml")).unwrap();
    assert!(listener.contains("rds:\n"));
    assert!(
        !listener.contains("virtual_hosts:"),
        "the route lives in rds.yaml"
    );
    for role in ["model_router", "model_router_attempt"] {
        assert!(listener.contains(&format!("- name: {role}\n")), "{role}");
        assert!(listener.contains(&format!("ecds-{role}.yaml")), "{role}");
        let ecds = std::fs::read_to_string(dir.join(format!("ecds-{role}.yaml"))).unwrap();
        assert!(ecds.contains(&format!("root_id: {role}\n")), "{role}");
        assert!(
            ecds.contains("value: \"{\\\"models\\\""),
            "{role}: embedded config"
        );
    }
    assert!(
        !listener.contains("configuration:"),
        "filter configs live in ecds files"
    );
    let clusters = std::fs::read_to_string(dir.join("cds.yaml")).unwrap();
    for name in [
        "mr.model.0",
        "mr.model.1",
        "mr.pool.0.from.0",
        "mr.pool.0.from.1",
    ] {
        assert!(clusters.contains(&format!("name: {name}\n")), "{name}");
    }
    let routes = std::fs::read_to_string(dir.join("rds.yaml")).unwrap();
    assert!(routes.contains("cluster_header: x-model-router-cluster"));
}

#[test]
fn xds_dir_refuses_to_overwrite_a_setup() {
    let work = temp_dir();
    let dir = set_up(&work, &config(&["a", "b"], &[]));
    let before = read_all(&dir);
    let r = run(&[
        "envoy",
        work.join("router.json").to_str().unwrap(),
        "--xds-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("model-router apply"), "{}", r.stderr);
    assert_eq!(read_all(&dir), before);
}

#[test]
fn apply_refuses_bad_or_renumbering_configs_without_touching_files() {
    let work = temp_dir();
    let dir = set_up(&work, &config(&["a", "b"], &[]));
    let before = read_all(&dir);
    let state = std::fs::read_to_string(dir.join("model-router-state.json")).unwrap();
    let cases = [
        ("invalid", config(&["a", "zz"], &[]), "pools.default[1]"),
        ("not json", "{".to_string(), "router.json"),
        (
            "inserted model",
            r#"{"models":[{"name":"new","endpoint":"http://127.0.0.1:9"},{"name":"a","endpoint":"http://127.0.0.1:1000"},{"name":"b","endpoint":"http://127.0.0.1:1001"}],"pools":{"default":["a","b"]}}"#.to_string(),
            "models[0] was \"a\" and is now \"new\"",
        ),
        (
            "pool sorted before",
            r#"{"models":[{"name":"a","endpoint":"http://127.0.0.1:1000"},{"name":"b","endpoint":"http://127.0.0.1:1001"}],"pools":{"cheap":["b"],"default":["a","b"]}}"#.to_string(),
            "pool number 0",
        ),
    ];
    for (what, json, want) in &cases {
        let r = apply(&work, &dir, json);
        assert_eq!(r.code, 1, "{what}: {}", r.stdout);
        let want = if *what == "not json" {
            "edited.json"
        } else {
            want
        };
        assert!(r.stderr.contains(want), "{what}: {}", r.stderr);
        assert_eq!(
            read_all(&dir),
            before,
            "{what}: files must stay as they were"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("model-router-state.json")).unwrap(),
            state,
            "{what}"
        );
    }
}

#[test]
fn apply_rewrites_only_what_the_edit_changes() {
    let work = temp_dir();
    let dir = set_up(&work, &config(&["a", "b"], &[]));
    let before = read_all(&dir);
    // A reordered pool changes the aggregate clusters and the filters' config; the
    // listener and route stay byte-identical, so Envoy drains nothing.
    let r = apply(&work, &dir, &config(&["b", "a"], &[]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("no Envoy answered"), "{}", r.stdout);
    let after = read_all(&dir);
    for ((name, old), (_, new)) in before.iter().zip(&after) {
        let changes = matches!(
            name.as_str(),
            "cds.yaml" | "ecds-model_router.yaml" | "ecds-model_router_attempt.yaml"
        );
        assert_eq!(old != new, changes, "{name}");
        assert_eq!(
            version(old) != version(new),
            changes,
            "{name}: version follows content"
        );
    }
    let state = std::fs::read_to_string(dir.join("model-router-state.json")).unwrap();
    assert!(state.contains(r#"[\"b\",\"a\"]"#), "{state}");
    // Appending a model is allowed, and the next apply compares against this one.
    let r = apply(&work, &dir, &config(&["c", "a"], &["c"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let clusters = std::fs::read_to_string(dir.join("cds.yaml")).unwrap();
    assert!(clusters.contains("name: mr.model.2\n"));
    assert!(!clusters.contains("name: mr.pool.0.from.2\n"));
}

#[test]
fn apply_needs_a_setup() {
    let work = temp_dir();
    let r = apply(&work, &work.join("nothing-here"), &config(&["a"], &[]));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("cannot open"), "{}", r.stderr);
    let r = apply(&work, &work, &config(&["a"], &[]));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("holds no model-router setup"),
        "{}",
        r.stderr
    );
}
