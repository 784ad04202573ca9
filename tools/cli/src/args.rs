//! Command-line parsing, by hand: three commands and a handful of flags do not need a crate.

use std::net::SocketAddr;
use std::time::Duration;

pub const USAGE: &str = "\
model-router: check model-router configs and generate the Envoy bootstrap that runs them

Usage:
  model-router check CONFIG
  model-router envoy CONFIG [OPTIONS] > envoy.yaml
  model-router envoy CONFIG --xds-dir DIR [OPTIONS]
  model-router apply CONFIG --xds-dir DIR
  model-router top [--url URL] [--interval SECONDS] [--once]
  model-router help | --help | -h

CONFIG is a router config JSON file, or - for standard input.

check    validates CONFIG exactly as the filter does and prints a summary; warns about
         api_key_env variables unset in this environment.
envoy    validates CONFIG and prints a complete Envoy v3 bootstrap (YAML) to stdout.

envoy options:
  --wasm PATH             the filter module (default: build/model_router.wasm); written as
                          given, so Envoy resolves a relative path against its working directory
  --listen HOST:PORT      where the router listens (default: 127.0.0.1:10000)
  --admin HOST:PORT       Envoy's admin interface (default: 127.0.0.1:9901)
  --ca-bundle PATH        CA certificates that verify https:// models
                          (default: /etc/ssl/certs/ca-certificates.crt)
  --concurrency-hint N    worker threads to suggest in the bootstrap's run line
                          (envoy --concurrency N); Envoy's own default is one per CPU
  --log-level LEVEL       log level to suggest in the run line (envoy --log-level LEVEL):
                          trace, debug, info, warning, error, critical or off
  --xds-dir DIR           instead of printing one static bootstrap, write DIR/envoy.yaml
                          plus the listener, route, clusters and Wasm filter configs as
                          files Envoy watches, so `apply` can change them while Envoy runs
                          (run Envoy with: envoy -c DIR/envoy.yaml). DIR must not hold a
                          setup already

apply    validates CONFIG and makes the Envoy running from --xds-dir DIR use it, without
         a restart: requests in flight finish on the old config, the next ones use the new
         one, live stats and cooldowns are kept. Refuses (changing nothing) an invalid
         config or one that renumbers existing models or pools; waits until Envoy reports
         the new config and puts the old files back if Envoy refuses it.

HOST must be an IP address (Envoy listens on addresses, not names); write IPv6 as [::1]:10000.

top      live view of a running router: each pool's models with state (ready/cooling),
         in-flight attempts, TTFT, output tokens/s, picks per second, total picks and
         error rate, redrawn in the terminal until Ctrl-C. It polls the router's status
         JSON (settings.status_path); a browser view with charts is at that path + /ui.

top options:
  --url URL               the status endpoint, plain http
                          (default: http://127.0.0.1:10000/model-router/status)
  --interval SECONDS      time between polls, 0.2 to 3600 (default: 1)
  --once                  print one plain-text snapshot and exit, with picks/s measured
                          over one interval (two polls); exit status 1 if unreachable

Exit status: 0 success, 1 invalid config or unreadable file, 2 bad usage.
";

pub const DEFAULT_WASM: &str = "build/model_router.wasm";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10000";
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9901";
pub const DEFAULT_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
pub const DEFAULT_STATUS_URL: &str = "http://127.0.0.1:10000/model-router/status";
const LOG_LEVELS: [&str; 8] = [
    "trace", "debug", "info", "warning", "warn", "error", "critical", "off",
];

#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Check {
        config: String,
    },
    Envoy {
        config: String,
        options: EnvoyOptions,
    },
    Top(TopOptions),
    Apply {
        config: String,
        xds_dir: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopOptions {
    pub url: String,
    pub interval: Duration,
    pub once: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvoyOptions {
    /// Write a watched file setup into this directory instead of printing a bootstrap.
    pub xds_dir: Option<String>,
    pub wasm: String,
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub ca_bundle: String,
    pub concurrency_hint: Option<u32>,
    pub log_level: Option<String>,
}

/// Parses `args` (without the program name). `Err` is a usage problem (exit status 2).
pub fn parse(args: &[String]) -> Result<Command, String> {
    if args.first().is_some_and(|a| a == "help") || args.iter().any(|a| a == "--help" || a == "-h")
    {
        return Ok(Command::Help);
    }
    let Some((command, rest)) = args.split_first() else {
        return Err("no command given".into());
    };
    match command.as_str() {
        "check" => {
            let (config, flags) = split_positional(rest)?;
            if let Some((flag, _)) = flags.first() {
                return Err(format!("check takes no options, got {flag}"));
            }
            Ok(Command::Check { config })
        }
        "envoy" => {
            let (config, flags) = split_positional(rest)?;
            Ok(Command::Envoy {
                config,
                options: envoy_options(&flags)?,
            })
        }
        "top" => top_options(rest).map(Command::Top),
        "apply" => {
            let (config, flags) = split_positional(rest)?;
            let mut xds_dir = None;
            for (flag, value) in &flags {
                match flag.as_str() {
                    "--xds-dir" => xds_dir = Some(non_empty_path(flag, value)?),
                    _ => return Err(format!("apply takes only --xds-dir, got {flag}")),
                }
            }
            let xds_dir = xds_dir.ok_or("apply needs --xds-dir DIR (the running setup)")?;
            Ok(Command::Apply { config, xds_dir })
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

/// `top` has no positional argument, and `--once` takes no value.
fn top_options(args: &[String]) -> Result<TopOptions, String> {
    let mut options = TopOptions {
        url: DEFAULT_STATUS_URL.into(),
        interval: Duration::from_secs(1),
        once: false,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--once" {
            options.once = true;
            continue;
        }
        if !arg.starts_with("--") {
            return Err(if arg.starts_with('-') {
                format!("unknown option {arg}")
            } else {
                format!("top takes no arguments, got {arg:?}")
            });
        }
        let (flag, value) = match arg.split_once('=') {
            Some((flag, value)) => (flag, value.to_string()),
            None => (
                arg.as_str(),
                iter.next()
                    .filter(|v| !v.starts_with("--"))
                    .ok_or_else(|| format!("{arg} needs a value"))?
                    .clone(),
            ),
        };
        match flag {
            "--url" => {
                if !value.starts_with("http://") {
                    return Err(format!(
                        "--url {value:?}: expected a plain http:// URL such as {DEFAULT_STATUS_URL}"
                    ));
                }
                options.url = value;
            }
            "--interval" => {
                let seconds = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (0.2..=3600.0).contains(s))
                    .ok_or_else(|| {
                        format!("--interval {value:?}: expected seconds from 0.2 to 3600")
                    })?;
                options.interval = Duration::from_secs_f64(seconds);
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(options)
}

/// Splits arguments into the one positional CONFIG and `(--flag, value)` pairs.
fn split_positional(args: &[String]) -> Result<(String, Vec<(String, String)>), String> {
    let mut config = None;
    let mut flags = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg.starts_with("--") {
            let (flag, value) = match arg.split_once('=') {
                Some((flag, value)) => (flag.to_string(), value.to_string()),
                None => {
                    let value = iter
                        .next()
                        .filter(|v| !v.starts_with("--"))
                        .ok_or_else(|| format!("{arg} needs a value"))?;
                    (arg.clone(), value.clone())
                }
            };
            flags.push((flag, value));
        } else if arg.starts_with('-') && arg != "-" {
            return Err(format!("unknown option {arg}"));
        } else if config.is_some() {
            return Err(format!("unexpected argument {arg:?}; give one CONFIG file"));
        } else {
            config = Some(arg.clone());
        }
    }
    let config = config.ok_or("missing CONFIG (a router config JSON file)")?;
    Ok((config, flags))
}

fn envoy_options(flags: &[(String, String)]) -> Result<EnvoyOptions, String> {
    let mut options = EnvoyOptions {
        wasm: DEFAULT_WASM.into(),
        listen: parse_address("--listen", DEFAULT_LISTEN)?,
        admin: parse_address("--admin", DEFAULT_ADMIN)?,
        ca_bundle: DEFAULT_CA_BUNDLE.into(),
        concurrency_hint: None,
        log_level: None,
        xds_dir: None,
    };
    for (flag, value) in flags {
        match flag.as_str() {
            "--wasm" => options.wasm = non_empty_path(flag, value)?,
            "--listen" => options.listen = parse_address(flag, value)?,
            "--admin" => options.admin = parse_address(flag, value)?,
            "--ca-bundle" => options.ca_bundle = non_empty_path(flag, value)?,
            "--concurrency-hint" => {
                let n = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1024).contains(n))
                    .ok_or_else(|| format!("{flag} {value:?}: expected a number from 1 to 1024"))?;
                options.concurrency_hint = Some(n);
            }
            "--xds-dir" => options.xds_dir = Some(non_empty_path(flag, value)?),
            "--log-level" => {
                let level = value.to_ascii_lowercase();
                if !LOG_LEVELS.contains(&level.as_str()) {
                    return Err(format!(
                        "{flag} {value:?}: expected one of {}",
                        LOG_LEVELS.join(", ")
                    ));
                }
                options.log_level = Some(level);
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.listen == options.admin {
        return Err(format!(
            "--listen and --admin are both {}; they need different ports",
            options.listen
        ));
    }
    Ok(options)
}

fn non_empty_path(flag: &str, value: &str) -> Result<String, String> {
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(format!("{flag} needs a file path"));
    }
    Ok(value.to_string())
}

fn parse_address(flag: &str, value: &str) -> Result<SocketAddr, String> {
    value.parse::<SocketAddr>().map_err(|_| {
        format!(
            "{flag} {value:?}: expected IP:PORT such as 127.0.0.1:10000 or [::1]:10000 \
             (Envoy listens on IP addresses, not host names)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn envoy_flags_take_space_or_equals_and_defaults_apply() {
        let Ok(Command::Envoy { config, options }) = parse(&args(
            "envoy c.json --listen=0.0.0.0:8080 --admin [::1]:9000 --concurrency-hint 4 --log-level INFO",
        )) else {
            panic!("should parse");
        };
        assert_eq!(config, "c.json");
        assert_eq!(options.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(options.admin.to_string(), "[::1]:9000");
        assert_eq!(options.wasm, DEFAULT_WASM);
        assert_eq!(options.ca_bundle, DEFAULT_CA_BUNDLE);
        assert_eq!(options.concurrency_hint, Some(4));
        assert_eq!(options.log_level.as_deref(), Some("info"));
    }

    #[test]
    fn top_flags_and_defaults() {
        let cases: &[(&str, &str, f64, bool)] = &[
            ("top", DEFAULT_STATUS_URL, 1.0, false),
            ("top --once", DEFAULT_STATUS_URL, 1.0, true),
            (
                "top --url=http://127.0.0.1:8/s --interval 0.5 --once",
                "http://127.0.0.1:8/s",
                0.5,
                true,
            ),
            (
                "top --interval=2 --url http://[::1]:9/x",
                "http://[::1]:9/x",
                2.0,
                false,
            ),
        ];
        for &(line, url, seconds, once) in cases {
            assert_eq!(
                parse(&args(line)),
                Ok(Command::Top(TopOptions {
                    url: url.into(),
                    interval: Duration::from_secs_f64(seconds),
                    once,
                })),
                "{line}"
            );
        }
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        let cases: &[(&str, &str)] = &[
            ("", "no command"),
            ("frobnicate x", "unknown command"),
            ("check", "missing CONFIG"),
            ("check a b", "unexpected argument"),
            ("check a --wasm x", "no options"),
            ("envoy a --bogus 1", "unknown option --bogus"),
            ("envoy a -x", "unknown option -x"),
            ("envoy a --wasm", "needs a value"),
            (
                "envoy a --wasm --listen 127.0.0.1:1",
                "--wasm needs a value",
            ),
            ("envoy a --listen localhost:1", "IP:PORT"),
            ("envoy a --listen 127.0.0.1", "IP:PORT"),
            ("envoy a --concurrency-hint 0", "1 to 1024"),
            ("envoy a --log-level loud", "expected one of"),
            ("envoy a --listen 127.0.0.1:9901", "different ports"),
            ("apply a", "needs --xds-dir"),
            ("apply a --wasm x.wasm --xds-dir d", "only --xds-dir"),
            ("apply --xds-dir d", "missing CONFIG"),
            ("top --url https://x/status", "plain http://"),
            ("top --url", "needs a value"),
            ("top --interval 0", "0.2 to 3600"),
            ("top --interval soon", "0.2 to 3600"),
            ("top --bogus 1", "unknown option --bogus"),
            ("top config.json", "no arguments"),
            ("top -x", "unknown option -x"),
        ];
        for (line, want) in cases {
            match parse(&args(line)) {
                Err(e) => assert!(e.contains(want), "{line:?}: {e}"),
                Ok(c) => panic!("{line:?} parsed as {c:?}"),
            }
        }
    }

    #[test]
    fn xds_dir_selects_the_watched_file_setup() {
        let Ok(Command::Envoy { options, .. }) = parse(&args("envoy c.json --xds-dir out")) else {
            panic!("should parse");
        };
        assert_eq!(options.xds_dir.as_deref(), Some("out"));
        assert_eq!(
            parse(&args("apply c.json --xds-dir=out")),
            Ok(Command::Apply {
                config: "c.json".into(),
                xds_dir: "out".into()
            })
        );
    }

    #[test]
    fn help_wins_anywhere() {
        for line in [
            "help",
            "help envoy",
            "--help",
            "-h",
            "envoy x --help",
            "check -h",
        ] {
            assert_eq!(parse(&args(line)), Ok(Command::Help), "{line}");
        }
    }
}
