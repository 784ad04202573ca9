//! The one file that calls the proxy-wasm host.
//!
//! The SDK's own wrappers panic on any status they do not expect (and on non-UTF-8 header
//! values), and a panic kills the worker's VM for every request. These wrappers call the
//! ABI directly and hand every failure back as a `Result` for the caller to handle.

use crate::header_map;
use std::ptr::{null, null_mut};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

pub type HostResult<T> = Result<T, HostError>;

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const CAS_MISMATCH: u32 = 8;

#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Map {
    RequestHeaders = 0,
    ResponseHeaders = 2,
}

#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Buffer {
    RequestBody = 0,
    ResponseBody = 1,
    PluginConfiguration = 7,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_buffer_bytes(
        buffer: u32,
        start: usize,
        max_size: usize,
        out_data: *mut *mut u8,
        out_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer: u32,
        start: usize,
        size: usize,
        data: *const u8,
        data_size: usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: u32, out_data: *mut *mut u8, out_size: *mut usize) -> u32;
    fn proxy_replace_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_size: usize) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        out_data: *mut *mut u8,
        out_size: *mut usize,
        out_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        out_data: *mut *mut u8,
        out_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path: *const u8,
        path_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_current_time_nanoseconds(out_time: *mut u64) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, out_id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
    fn proxy_get_metric(id: u32, out_value: *mut u64) -> u32;
    fn proxy_call_foreign_function(
        name: *const u8,
        name_size: usize,
        args: *const u8,
        args_size: usize,
        out_data: *mut *mut u8,
        out_size: *mut usize,
    ) -> u32;
}

/// Takes ownership of memory the host wrote through the SDK's exported allocator.
fn owned(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    // SAFETY: the host allocated `size` bytes at `data` with `proxy_on_memory_allocate`,
    // which the SDK implements as a `Vec<u8>` of exactly that capacity.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

fn status(code: u32) -> HostResult<()> {
    if code == OK {
        Ok(())
    } else {
        Err(HostError(code))
    }
}

/// Wall-clock nanoseconds since the Unix epoch (the ABI has no monotonic clock).
pub fn now_ns() -> u64 {
    let mut nanos = 0u64;
    // SAFETY: the host writes one u64 through the pointer.
    let code = unsafe { proxy_get_current_time_nanoseconds(&mut nanos) };
    if code == OK {
        nanos
    } else {
        0
    }
}

pub fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

pub fn buffer(which: Buffer, start: usize, max: usize) -> HostResult<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: out-pointers are valid; the returned memory is taken by `owned`.
    let code = unsafe { proxy_get_buffer_bytes(which as u32, start, max, &mut data, &mut size) };
    match code {
        OK => Ok(owned(data, size).unwrap_or_default()),
        NOT_FOUND => Ok(Vec::new()),
        other => Err(HostError(other)),
    }
}

/// Replaces bytes `start..start+size` of a buffer. This Envoy only accepts `start == 0`.
pub fn set_buffer(which: Buffer, start: usize, size: usize, value: &[u8]) -> HostResult<()> {
    // SAFETY: `value` outlives the call.
    status(unsafe {
        proxy_set_buffer_bytes(which as u32, start, size, value.as_ptr(), value.len())
    })
}

/// All headers in wire format; iterate them with [`header_map::pairs`].
pub fn headers(map: Map) -> HostResult<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: as in `buffer`.
    status(unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) })?;
    Ok(owned(data, size).unwrap_or_default())
}

pub fn set_header(map: Map, name: &str, value: &str) -> HostResult<()> {
    // SAFETY: both slices outlive the call.
    status(unsafe {
        proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub fn remove_header(map: Map, name: &[u8]) -> HostResult<()> {
    // SAFETY: `name` outlives the call.
    status(unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

pub fn send_response(status_code: u32, headers: &[(&str, &str)], body: &[u8]) -> HostResult<()> {
    let headers = header_map::serialize(headers);
    let details = b"model_router";
    // SAFETY: all slices outlive the call; -1 means "not gRPC".
    status(unsafe {
        proxy_send_local_response(
            status_code,
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// The value and its compare-and-swap token (0 when the key does not exist yet).
pub fn shared_data(key: &str) -> HostResult<(Option<Vec<u8>>, u32)> {
    let (mut data, mut size, mut cas) = (null_mut(), 0usize, 0u32);
    // SAFETY: as in `buffer`.
    let code =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match code {
        OK => Ok((owned(data, size), cas)),
        NOT_FOUND => Ok((None, 0)),
        other => Err(HostError(other)),
    }
}

pub enum CasOutcome {
    Written,
    Conflict,
}

pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> HostResult<CasOutcome> {
    // SAFETY: both slices outlive the call.
    let code =
        unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    match code {
        OK => Ok(CasOutcome::Written),
        CAS_MISMATCH => Ok(CasOutcome::Conflict),
        other => Err(HostError(other)),
    }
}

/// Reads a property such as `["plugin_root_id"]`; `None` when the host has no value.
pub fn property(path: &[&str]) -> HostResult<Option<Vec<u8>>> {
    let serialized = path.join("\0");
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: as in `buffer`.
    let code =
        unsafe { proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size) };
    match code {
        OK => Ok(owned(data, size)),
        NOT_FOUND => Ok(None),
        other => Err(HostError(other)),
    }
}

/// Sets a one-segment property; Envoy keeps it as filter state `wasm.<name>`, which access
/// logs print with `%FILTER_STATE(wasm.<name>:PLAIN)%`.
pub fn set_property(name: &str, value: &[u8]) -> HostResult<()> {
    // SAFETY: both slices outlive the call.
    status(unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

/// Makes Envoy re-match the route after the cluster header changed in the body phase.
pub fn clear_route_cache() -> HostResult<()> {
    let name = b"clear_route_cache";
    let (mut data, mut size) = (null_mut(), 0usize);
    // SAFETY: as in `buffer`; any result bytes are freed by `owned`.
    let code = unsafe {
        proxy_call_foreign_function(name.as_ptr(), name.len(), null(), 0, &mut data, &mut size)
    };
    drop(owned(data, size));
    status(code)
}

#[derive(Clone, Copy)]
#[repr(u32)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
}

pub fn define_metric(kind: MetricKind, name: &str) -> HostResult<u32> {
    let mut id = 0u32;
    // SAFETY: `name` outlives the call; the host writes one u32.
    status(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Metrics are best effort: a failed update must never disturb a request.
pub fn increment_metric(id: u32, offset: i64) {
    // SAFETY: plain values only.
    let _ = unsafe { proxy_increment_metric(id, offset) };
}

pub fn record_metric(id: u32, value: u64) {
    // SAFETY: plain values only.
    let _ = unsafe { proxy_record_metric(id, value) };
}

/// A counter's or gauge's current value. Envoy keeps one stat per name for all workers, so
/// a counter reads the same total on every worker.
pub fn metric(id: u32) -> HostResult<u64> {
    let mut value = 0u64;
    // SAFETY: the host writes one u64 through the pointer.
    status(unsafe { proxy_get_metric(id, &mut value) })?;
    Ok(value)
}
