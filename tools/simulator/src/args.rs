//! Command-line parsing.

use std::net::{IpAddr, SocketAddr};

use serde_json::Value;

use crate::state::Config;

pub const USAGE: &str = "\
usage: model-sim --listen 127.0.0.1:18081 [--admin 127.0.0.1:19081] [--model NAME]
                 [--ttft-ms 50] [--tokens-per-sec 200] [--output-tokens 16]
                 [--fail MODE] [--retry-after SECS] [--fail-after-events N]
                 [--concurrency-slowdown F] [--ttft-jitter S]
                 [--prefill-ms-per-kib R]

  --listen ADDR              main (OpenAI API) address, loopback only (default 127.0.0.1:18081;
                             port 0 picks a free port)
  --admin ADDR               control API address, loopback only (default 127.0.0.1:0)
  --model NAME               model name reported by /v1/models and x-sim-model (default sim)
  --ttft-ms MS               time to first token (default 50)
  --tokens-per-sec R         output token rate (default 200)
  --output-tokens N          tokens per completion, capped by max_tokens (default 16)
  --fail MODE                none|429|503|500|refuse|reset|hang|close-mid-stream|stall-mid-stream
  --retry-after SECS         Retry-After value for --fail 429 (default 1)
  --fail-after-events N      SSE events sent before a mid-stream failure (default 3)
  --concurrency-slowdown F   with k in flight, TTFT*(1+F*(k-1)) and rate/(1+F*(k-1)) (default 0)
  --ttft-jitter S            each TTFT times exp(S*z), z standard normal: log-normal spread
                             around the median TTFT (default 0: exact)
  --prefill-ms-per-kib R     TTFT grows by R ms per KiB of request body, like prefill (default 0)
";

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub config: Config,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Run(Options),
    Help,
}

/// Flag name -> `Config` field it sets.
const CONFIG_FLAGS: &[(&str, &str)] = &[
    ("--model", "model"),
    ("--ttft-ms", "ttft_ms"),
    ("--tokens-per-sec", "tokens_per_sec"),
    ("--output-tokens", "output_tokens"),
    ("--fail", "fail"),
    ("--retry-after", "retry_after"),
    ("--fail-after-events", "fail_after_events"),
    ("--concurrency-slowdown", "concurrency_slowdown"),
    ("--ttft-jitter", "ttft_jitter"),
    ("--prefill-ms-per-kib", "prefill_ms_per_kib"),
];

/// Parses a loopback `IP:PORT` (`localhost:PORT` is accepted too).
pub fn parse_loopback_addr(flag: &str, text: &str) -> Result<SocketAddr, String> {
    let normalized = match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text.to_string(),
    };
    let addr: SocketAddr = normalized
        .parse()
        .map_err(|_| format!("{flag}: '{text}' is not an IP:PORT address"))?;
    let loopback = match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback(),
    };
    if !loopback {
        return Err(format!(
            "{flag}: '{text}' is not a loopback address; model-sim only binds loopback"
        ));
    }
    Ok(addr)
}

/// Parses the arguments after the program name.
pub fn parse_args<I, S>(args: I) -> Result<Parsed, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut listen: SocketAddr = ([127, 0, 0, 1], 18081).into();
    let mut admin: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut config = Config::default();
    let mut it = args.into_iter().map(Into::into);
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Parsed::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let known =
            flag == "--listen" || flag == "--admin" || CONFIG_FLAGS.iter().any(|(f, _)| *f == flag);
        if !known {
            return Err(format!("unknown argument '{arg}'"));
        }
        let value = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => return Err(format!("{flag} needs a value")),
        };
        match flag.as_str() {
            "--listen" => listen = parse_loopback_addr(&flag, &value)?,
            "--admin" => admin = parse_loopback_addr(&flag, &value)?,
            _ => {
                let field = CONFIG_FLAGS
                    .iter()
                    .find(|(f, _)| *f == flag)
                    .map(|(_, field)| *field)
                    .unwrap_or_default();
                let json = if field == "model" || field == "fail" {
                    Value::String(value.clone())
                } else {
                    serde_json::from_str(&value)
                        .map_err(|_| format!("{flag}: '{value}' is not a number"))?
                };
                config
                    .set_field(field, &json)
                    .map_err(|e| format!("{flag}: {e}"))?;
            }
        }
    }
    Ok(Parsed::Run(Options {
        listen,
        admin,
        config,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::state::FailMode;

    fn run(args: &[&str]) -> Options {
        match parse_args(args.iter().copied()) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("expected options, got {other:?}"),
        }
    }

    #[test]
    fn no_arguments_gives_documented_defaults() {
        let o = run(&[]);
        assert_eq!(o.listen, "127.0.0.1:18081".parse().unwrap());
        assert_eq!(o.admin, "127.0.0.1:0".parse().unwrap());
        assert_eq!(o.config, Config::default());
        assert_eq!(o.config.model, "sim");
        assert_eq!(o.config.ttft_ms, 50);
        assert_eq!(o.config.tokens_per_sec, 200.0);
        assert_eq!(o.config.output_tokens, 16);
        assert_eq!(o.config.fail, FailMode::None);
        assert_eq!(o.config.retry_after, 1);
        assert_eq!(o.config.fail_after_events, 3);
        assert_eq!(o.config.concurrency_slowdown, 0.0);
    }

    #[test]
    fn every_flag_is_applied() {
        let o = run(&[
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:19081",
            "--model",
            "gpt-x",
            "--ttft-ms",
            "5",
            "--tokens-per-sec",
            "1000.5",
            "--output-tokens",
            "3",
            "--fail",
            "close-mid-stream",
            "--retry-after",
            "7",
            "--fail-after-events",
            "2",
            "--concurrency-slowdown",
            "0.25",
        ]);
        assert_eq!(o.listen.port(), 0);
        assert_eq!(o.admin.port(), 19081);
        assert_eq!(o.config.model, "gpt-x");
        assert_eq!(o.config.ttft_ms, 5);
        assert_eq!(o.config.tokens_per_sec, 1000.5);
        assert_eq!(o.config.output_tokens, 3);
        assert_eq!(o.config.fail, FailMode::CloseMidStream);
        assert_eq!(o.config.retry_after, 7);
        assert_eq!(o.config.fail_after_events, 2);
        assert_eq!(o.config.concurrency_slowdown, 0.25);
    }

    #[test]
    fn flag_equals_value_form_is_accepted() {
        let o = run(&["--fail=429", "--ttft-ms=0", "--listen=localhost:1234"]);
        assert_eq!(o.config.fail, FailMode::TooManyRequests);
        assert_eq!(o.config.ttft_ms, 0);
        assert_eq!(o.listen, "127.0.0.1:1234".parse().unwrap());
    }

    #[test]
    fn later_flags_override_earlier_ones() {
        assert_eq!(run(&["--model", "a", "--model", "b"]).config.model, "b");
    }

    #[test]
    fn help_is_recognised() {
        assert_eq!(parse_args(["--help"]), Ok(Parsed::Help));
        assert_eq!(parse_args(["--ttft-ms", "1", "-h"]), Ok(Parsed::Help));
    }

    #[test]
    fn bad_arguments_are_errors() {
        for args in [
            &["--bogus"][..],
            &["--ttft-ms"],
            &["--ttft-ms", "soon"],
            &["--ttft-ms", "-5"],
            &["--tokens-per-sec", "0"],
            &["--fail", "sometimes"],
            &["--listen", "nonsense"],
            &["--listen", "0.0.0.0:18081"],
            &["--admin", "10.0.0.1:1"],
            &["positional"],
        ] {
            assert!(
                parse_args(args.iter().copied()).is_err(),
                "{args:?} should fail"
            );
        }
    }

    #[test]
    fn ipv6_loopback_is_allowed() {
        assert_eq!(
            run(&["--listen", "[::1]:0"]).listen,
            "[::1]:0".parse().unwrap()
        );
    }
}
