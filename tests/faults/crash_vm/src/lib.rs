//! Answers every request itself with the instant its VM started, and traps when the request
//! carries `x-crash-vm`. A new start instant after a trap shows that Envoy reloaded the VM.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::cell::Cell;
use std::time::UNIX_EPOCH;

thread_local! {
    static STARTED_NS: Cell<u128> = const { Cell::new(0) };
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _: usize) -> bool {
        let now = self
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        STARTED_NS.with(|s| {
            if s.get() == 0 {
                s.set(now)
            }
        });
        true
    }

    // The generated bootstrap hands the router config to every role: accept anything.
    fn on_configure(&mut self, _: usize) -> bool {
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request;

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        if self.get_http_request_header("x-crash-vm").is_some() {
            // panic = "abort": the VM traps, which is the failure FAIL_RELOAD is for.
            panic!("crash requested by the test");
        }
        let body = format!("vm started {}", STARTED_NS.with(Cell::get));
        self.send_http_response(200, vec![], Some(body.as_bytes()));
        Action::Pause
    }
}
