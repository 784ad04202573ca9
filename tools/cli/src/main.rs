//! `model-router`: checks router configs with the filter's own validation and generates the
//! Envoy bootstrap that runs them, and shows a running router live (`top`). See
//! `model-router --help`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod args;
mod bootstrap;
mod top;
mod xds;
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
        Command::Apply { config, xds_dir } => apply(&config, &xds_dir, &argv),
        Command::Top(options) => {
            top::run(&options).map_err(|e| Failure(format!("model-router top: {e}")))
        }
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

/// Loads and validates a config, and its compact form: the filter receives the config as
/// one compact JSON string, so validate and plan from exactly that string and the clusters
/// match what the filter computes.
fn load_compact(path: &str) -> Result<(RouterConfig, String), Failure> {
    let (_, bytes) = load(path)?;
    let compact = serde_json::from_slice::<serde_json::Value>(&bytes)
        .map(|v| v.to_string())
        .map_err(|e| Failure(format!("{path}: {e}")))?;
    let config = RouterConfig::from_json(compact.as_bytes())
        .map_err(|errors| Failure(format!("{path} (compacted): {errors}")))?;
    Ok((config, compact))
}

fn invocation(argv: &[String]) -> String {
    std::iter::once("model-router".to_string())
        .chain(argv.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn envoy(path: &str, options: &EnvoyOptions, argv: &[String]) -> Result<(), Failure> {
    let (config, compact) = load_compact(path)?;
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
    let invocation = invocation(argv);
    let inputs = bootstrap::Inputs {
        config: &config,
        config_json: &compact,
        options,
        invocation: &invocation,
    };
    if let Some(dir) = &options.xds_dir {
        return set_up_xds(dir, path, &inputs);
    }
    let yaml = bootstrap::render(&inputs);
    std::io::stdout()
        .lock()
        .write_all(yaml.as_bytes())
        .map_err(|e| Failure(format!("model-router: cannot write the bootstrap: {e}")))
}

fn set_up_xds(dir: &str, config_path: &str, inputs: &bootstrap::Inputs<'_>) -> Result<(), Failure> {
    let fail = |e: String| Failure(format!("model-router: {e}"));
    let absolute = xds::absolute_dir(dir, true).map_err(fail)?;
    if xds::read_state(&absolute).map_err(fail)?.is_some() {
        return Err(fail(format!(
            "{dir} already holds a model-router setup; change its router config with \
             `model-router apply {config_path} --xds-dir {dir}`, or remove the directory to \
             start over"
        )));
    }
    let written = xds::set_up(&absolute, inputs).map_err(fail)?;
    for file in written {
        println!("wrote {}", file.display());
    }
    println!(
        "run:   envoy -c {} --drain-time-s 600",
        absolute.join(xds::BOOTSTRAP_FILE).display()
    );
    println!("apply: model-router apply CONFIG --xds-dir {dir}");
    Ok(())
}

fn apply(path: &str, dir: &str, argv: &[String]) -> Result<(), Failure> {
    let fail = |e: String| Failure(format!("model-router apply: {e}"));
    let absolute = xds::absolute_dir(dir, false).map_err(fail)?;
    let state = xds::read_state(&absolute).map_err(fail)?.ok_or_else(|| {
        fail(format!(
            "{dir} holds no model-router setup; create one with \
             `model-router envoy {path} --xds-dir {dir}`"
        ))
    })?;
    let old = RouterConfig::from_json(state.config_json.as_bytes()).map_err(|errors| {
        fail(format!(
            "the applied config in {dir} no longer validates: {errors}"
        ))
    })?;
    let (config, compact) = load_compact(path)?;
    print_warnings(&config);
    let conflicts = xds::renumbering_conflicts(&old, &config);
    if !conflicts.is_empty() {
        let mut message = format!(
            "{path}: refused; nothing changed. Requests routed by the old and the new config \
             overlap during an apply, so cluster numbers must keep their meaning ({} problem{}):",
            conflicts.len(),
            if conflicts.len() == 1 { "" } else { "s" }
        );
        for conflict in conflicts {
            message.push_str(&format!("\n  - {conflict}"));
        }
        message.push_str(&format!(
            "\nTo renumber anyway, regenerate into a new directory and restart Envoy from it \
             (`model-router envoy {path} --xds-dir NEWDIR`)."
        ));
        return Err(Failure(message));
    }
    let invocation = invocation(argv);
    let old_inputs = bootstrap::Inputs {
        config: &old,
        config_json: &state.config_json,
        options: &state.options,
        invocation: &invocation,
    };
    let new_inputs = bootstrap::Inputs {
        config: &config,
        config_json: &compact,
        options: &state.options,
        invocation: &invocation,
    };
    match xds::apply(&absolute, &old_inputs, &new_inputs).map_err(fail)? {
        xds::Applied::Confirmed { changed } => {
            println!(
                "applied: Envoy runs the new config ({})",
                changed_files(&changed)
            )
        }
        xds::Applied::NotRunning { changed, why } => println!(
            "written ({}); no Envoy answered ({why}): it loads them when it starts",
            changed_files(&changed)
        ),
    }
    Ok(())
}

fn changed_files(names: &[String]) -> String {
    if names.is_empty() {
        "no file changed".into()
    } else {
        format!("changed: {}", names.join(", "))
    }
}
