//! model-sim: an OpenAI-compatible upstream simulator for end-to-end tests
//! and benchmarks. See README.md for flags and the control API.

mod args;
mod behaviour;
mod control;
mod http;
mod openai;
mod server;
mod state;

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;

use args::{parse_args, Parsed, USAGE};
use state::Shared;

fn bind(what: &str, addr: std::net::SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|e| format!("cannot bind {what} address {addr}: {e}"))
}

fn run() -> Result<(), String> {
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return Ok(());
        }
        Err(e) => return Err(format!("{e}\n{USAGE}")),
    };
    let main_listener = bind("--listen", opts.listen)?;
    let admin_listener = bind("--admin", opts.admin)?;
    let listen_addr = main_listener.local_addr().map_err(|e| e.to_string())?;
    let admin_addr = admin_listener.local_addr().map_err(|e| e.to_string())?;
    let model = opts.config.model.clone();
    let shared = Arc::new(Shared::new(opts.config, listen_addr));

    let admin_shared = Arc::clone(&shared);
    thread::Builder::new()
        .name("model-sim-admin".to_string())
        .spawn(move || server::run_admin_listener(admin_shared, admin_listener))
        .map_err(|e| format!("cannot start admin listener: {e}"))?;
    let main_shared = Arc::clone(&shared);
    let main_thread = thread::Builder::new()
        .name("model-sim-listen".to_string())
        .spawn(move || server::run_main_listener(main_shared, main_listener))
        .map_err(|e| format!("cannot start main listener: {e}"))?;
    // With `--fail refuse` the main socket must be closed before we say ready.
    server::sync_gate(&shared, None);

    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "model-sim listening on {listen_addr} admin {admin_addr} model {model}"
    );
    let _ = out.flush();
    drop(out);

    // The listeners run until the process is signalled.
    let _ = main_thread.join();
    Err("main listener stopped unexpectedly".to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("model-sim: {e}");
            ExitCode::from(2)
        }
    }
}
