//! Listening sockets and per-connection threads.
//!
//! The main listener can be closed (`fail: refuse`) and re-bound at runtime;
//! [`set_gate`] and [`sync_gate`] drive that from the control API.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::behaviour::{self, send_error, Ctx, Next};
use crate::http::{ConnMode, HttpError, RequestReader};
use crate::state::{lock, Shared};

const CONN_STACK: usize = 256 * 1024;
const GATE_WAIT: Duration = Duration::from_secs(3);

/// Records whether the main listener should be open and wakes its thread.
/// Call with the config lock held.
pub fn set_gate(shared: &Shared, want_open: bool) {
    lock(&shared.gate).want_open = want_open;
    shared.gate_cv.notify_all();
}

/// Brings the main listener in line with the gate and waits (bounded) until
/// it is. When closing, also shuts the read side of open main-port
/// connections (except `skip`) so idle keep-alive connections close and busy
/// ones close after their current response.
pub fn sync_gate(shared: &Shared, skip: Option<u64>) {
    let want_open = lock(&shared.gate).want_open;
    if !want_open {
        for (id, conn) in lock(&shared.conns).iter() {
            if Some(*id) != skip {
                let _ = conn.shutdown(Shutdown::Read);
            }
        }
        // Wake the accept loop so it notices and drops the socket.
        let _ = TcpStream::connect_timeout(&shared.listen_addr, Duration::from_millis(500));
    }
    let deadline = Instant::now() + GATE_WAIT;
    let mut gate = lock(&shared.gate);
    while gate.is_open != gate.want_open {
        let now = Instant::now();
        if now >= deadline {
            eprintln!("model-sim: main listener did not reach the requested state in time");
            return;
        }
        gate = shared
            .gate_cv
            .wait_timeout(gate, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn mark_open(shared: &Shared, open: bool) {
    lock(&shared.gate).is_open = open;
    shared.gate_cv.notify_all();
}

fn want_open(shared: &Shared) -> bool {
    lock(&shared.gate).want_open
}

/// Binds the main address again, retrying while it is unavailable, unless
/// the gate closes meanwhile.
fn rebind(shared: &Shared) -> Option<TcpListener> {
    loop {
        if !want_open(shared) {
            return None;
        }
        match TcpListener::bind(shared.listen_addr) {
            Ok(l) => return Some(l),
            Err(e) => {
                eprintln!(
                    "model-sim: re-binding {} failed: {e}; retrying",
                    shared.listen_addr
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Runs the main listener forever, closing and re-opening it as the gate says.
pub fn run_main_listener(shared: Arc<Shared>, initial: TcpListener) {
    let mut listener = Some(initial);
    loop {
        if let Some(l) = listener.take() {
            mark_open(&shared, true);
            accept_until_closed(&shared, &l);
            drop(l);
            mark_open(&shared, false);
        }
        // Closed: wait until asked to open again.
        {
            let mut gate = lock(&shared.gate);
            while !gate.want_open {
                gate = shared.gate_cv.wait(gate).unwrap_or_else(|e| e.into_inner());
            }
        }
        listener = rebind(&shared);
    }
}

fn accept_until_closed(shared: &Arc<Shared>, listener: &TcpListener) {
    loop {
        if !want_open(shared) {
            return;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                if !want_open(shared) {
                    return;
                }
                spawn_connection(shared, stream, true);
            }
            Err(e) => {
                eprintln!("model-sim: accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Runs the admin listener forever.
pub fn run_admin_listener(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => spawn_connection(&shared, stream, false),
            Err(e) => {
                eprintln!("model-sim: admin accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, stream: TcpStream, on_main: bool) {
    let shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("model-sim-conn".to_string())
        .stack_size(CONN_STACK)
        .spawn(move || serve_connection(&shared, stream, on_main));
    if let Err(e) = spawned {
        // The stream moved into the failed closure and is closed with it.
        eprintln!("model-sim: cannot spawn connection thread: {e}");
    }
}

/// Removes a main-port connection from the registry when it ends.
struct Registration<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        lock(&self.shared.conns).remove(&self.id);
    }
}

fn serve_connection(shared: &Arc<Shared>, stream: TcpStream, on_main: bool) {
    let _ = stream.set_nodelay(true);
    let conn_id = shared.next_conn_id();
    let _registration = if on_main {
        stream.try_clone().ok().map(|clone| {
            lock(&shared.conns).insert(conn_id, clone);
            Registration {
                shared: shared.as_ref(),
                id: conn_id,
            }
        })
    } else {
        None
    };
    let ctx = Ctx {
        shared,
        on_main,
        conn_id,
    };
    let mut reader = RequestReader::new(stream);
    while let Some(Next::KeepAlive) = serve_one(&ctx, &mut reader) {}
    let _ = reader.get_mut().shutdown(Shutdown::Both);
}

/// Reads and answers one request; `None` or `Close` ends the connection.
fn serve_one(ctx: &Ctx, reader: &mut RequestReader<TcpStream>) -> Option<Next> {
    let head = match reader.read_head() {
        Ok(Some(h)) => h,
        Ok(None) => return None,
        Err(e) => {
            reject(reader.get_mut(), &e);
            return None;
        }
    };
    if head.expects_continue()
        && reader
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .is_err()
    {
        return None;
    }
    let body = match reader.read_body(&head) {
        Ok(b) => b,
        Err(e) => {
            reject(reader.get_mut(), &e);
            return None;
        }
    };
    let next = behaviour::handle(ctx, &head, &body, reader.get_mut()).ok()?;
    if head.keep_alive() {
        Some(next)
    } else {
        Some(Next::Close)
    }
}

/// Answers a request that could not be parsed, if the socket still works.
fn reject(stream: &mut TcpStream, err: &HttpError) {
    if let Some(status) = err.status() {
        let _ = send_error(
            stream,
            status,
            &[],
            &err.message(),
            "invalid_request_error",
            "bad_http_request",
            ConnMode::closing(),
        );
    }
}
