//! The `/sim/*` control API (admin port, and the main port too).

use std::io;
use std::net::TcpStream;

use serde_json::Value;

use crate::behaviour::{send_error, send_json, Ctx, Next};
use crate::http::{ConnMode, Head};
use crate::server;
use crate::state::{lock, FailMode};

pub fn handle(
    ctx: &Ctx,
    head: &Head,
    body: &[u8],
    stream: &mut TcpStream,
    conn: ConnMode,
) -> io::Result<Next> {
    let shared = ctx.shared;
    match (head.method.as_str(), head.path()) {
        ("GET", "/sim/config") => {
            let body = serde_json::to_string(&shared.config()).unwrap_or_default();
            send_json(stream, 200, &[], &body, conn)
        }
        ("POST", "/sim/config") => update_config(ctx, body, stream, conn),
        ("GET", "/sim/stats") => {
            send_json(stream, 200, &[], &shared.stats_json().to_string(), conn)
        }
        ("POST", "/sim/reset") => {
            shared.reset_stats();
            send_json(stream, 200, &[], &shared.stats_json().to_string(), conn)
        }
        (_, "/sim/config") | (_, "/sim/stats") | (_, "/sim/reset") => {
            let msg = format!("Method {} not allowed for {}", head.method, head.path());
            send_error(
                stream,
                405,
                &[],
                &msg,
                "invalid_request_error",
                "method_not_allowed",
                conn,
            )
        }
        (method, path) => {
            let msg = format!("Invalid URL ({method} {path})");
            send_error(
                stream,
                404,
                &[],
                &msg,
                "invalid_request_error",
                "unknown_url",
                conn,
            )
        }
    }
}

fn bad_request(stream: &mut TcpStream, msg: &str, conn: ConnMode) -> io::Result<Next> {
    send_error(
        stream,
        400,
        &[],
        msg,
        "invalid_request_error",
        "invalid_config",
        conn,
    )
}

fn update_config(
    ctx: &Ctx,
    body: &[u8],
    stream: &mut TcpStream,
    conn: ConnMode,
) -> io::Result<Next> {
    let patch: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad_request(stream, &format!("invalid JSON: {e}"), conn),
        }
    };
    let shared = ctx.shared;
    let updated = {
        let mut cfg = lock(&shared.config);
        match cfg.with_patch(&patch) {
            Ok(next) => {
                *cfg = next.clone();
                // Under the config lock so concurrent updates cannot reorder.
                server::set_gate(shared, next.fail != FailMode::Refuse);
                next
            }
            Err(msg) => {
                drop(cfg);
                return bad_request(stream, &msg, conn);
            }
        }
    };
    let skip = if ctx.on_main { Some(ctx.conn_id) } else { None };
    server::sync_gate(shared, skip);
    let body = serde_json::to_string(&updated).unwrap_or_default();
    send_json(stream, 200, &[], &body, conn)
}
