//! `model-router`: checks router configs with the filter's own validation and generates the
//! Envoy bootstrap that runs them. See `model-router --help`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod args;
mod bootstrap;
mod yaml;

use args::{Command, EnvoyOptions};
use model_router::config::RouterConfig;
use std::io::{Read, Write};
use std::process::ExitCode;

/// A failure to report on stderr with exit status 1.
struct Failure(String);

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = match args::parse(&argv) {
        Ok(command) => command,
        Err(why) => {
            eprintln!("model-router: {why}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            print!("{}", args::USAGE);
            Ok(())
        }
        Command::Check { config } => check(&config),
        Command::Envoy { config, options } => envoy(&config, &options, &argv),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// Reads and validates a config exactly as the filter will.
fn load(path: &str) -> Result<(RouterConfig, Vec<u8>), Failure> {
    let mut bytes = Vec::new();
    let read = if path == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(path).map(|b| bytes = b)
    };
    read.map_err(|e| Failure(format!("model-router: cannot read {path}: {e}")))?;
    let config =
        RouterConfig::from_json(&bytes).map_err(|errors| Failure(format!("{path}: {errors}")))?;
    Ok((config, bytes))
}

/// Warnings that do not make the config invalid but will bite at run time.
fn warnings(config: &RouterConfig) -> Vec<String> {
    let mut out = Vec::new();
    for (i, model) in config.models.iter().enumerate() {
        let Some(env) = &model.api_key_env else {
            continue;
        };
        if std::env::var_os(env).is_none_or(|v| v.is_empty()) {
            out.push(format!(
                "models[{i}].api_key_env: {env} (API key of model {:?}) is unset or empty in \
                 this environment; start Envoy with it set, or the filter refuses its configuration",
                model.name
            ));
        }
    }
    out
}

fn print_warnings(config: &RouterConfig) {
    for warning in warnings(config) {
        eprintln!("warning: {warning}");
    }
}

fn check(path: &str) -> Result<(), Failure> {
    let (config, _) = load(path)?;
    print_warnings(&config);
    println!("{}", summary(&config));
    Ok(())
}

/// `ok: 3 models, 1 pool (default: 3 models)`.
fn summary(config: &RouterConfig) -> String {
    let mut line = format!(
        "ok: {}, {}",
        plural(config.models.len(), "model"),
        plural(config.pools.len(), "pool")
    );
    if !config.pools.is_empty() {
        let pools: Vec<String> = config
            .pools
            .iter()
            .map(|p| format!("{}: {}", p.alias, plural(p.members.len(), "model")))
            .collect();
        line.push_str(&format!(" ({})", pools.join(", ")));
    }
    line
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn envoy(path: &str, options: &EnvoyOptions, argv: &[String]) -> Result<(), Failure> {
    let (_, bytes) = load(path)?;
    // The filter receives the config as one compact JSON string; validate and plan from
    // exactly that string so the clusters match what the filter computes.
    let compact = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map(|v| v.to_string())
        .map_err(|e| Failure(format!("{path}: {e}")))?;
    let config = RouterConfig::from_json(compact.as_bytes())
        .map_err(|errors| Failure(format!("{path} (compacted): {errors}")))?;
    print_warnings(&config);
    if !std::path::Path::new(&options.wasm).exists() {
        eprintln!(
            "note: {} does not exist here (yet); Envoy needs it at that path, relative to \
             its working directory",
            options.wasm
        );
    }
    if config.models.iter().any(|m| m.endpoint.tls)
        && !std::path::Path::new(&options.ca_bundle).exists()
    {
        eprintln!(
            "warning: --ca-bundle {} does not exist here; Envoy needs it to verify https models",
            options.ca_bundle
        );
    }
    let invocation = std::iter::once("model-router".to_string())
        .chain(argv.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let yaml = bootstrap::render(&bootstrap::Inputs {
        config: &config,
        config_json: &compact,
        options,
        invocation: &invocation,
    });
    std::io::stdout()
        .lock()
        .write_all(yaml.as_bytes())
        .map_err(|e| Failure(format!("model-router: cannot write the bootstrap: {e}")))
}
