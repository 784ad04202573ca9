//! Exports for timing `body_scan::find_model` from JavaScript.

use model_router::body_scan::find_model;

static mut BODY: Vec<u8> = Vec::new();

/// Makes room for a body of `len` bytes and returns where to write it.
#[no_mangle]
pub extern "C" fn body_buffer(len: usize) -> *mut u8 {
    // SAFETY: single-threaded Wasm; the JavaScript caller holds no other reference.
    unsafe {
        let body = &mut *std::ptr::addr_of_mut!(BODY);
        body.clear();
        body.resize(len, 0);
        body.as_mut_ptr()
    }
}

/// Scans the body `rounds` times; returns the model token's end (or -1 on a scan error), so
/// the work cannot be optimised away and the caller can check it.
#[no_mangle]
pub extern "C" fn scan(rounds: u32) -> i64 {
    // SAFETY: as above.
    let body = unsafe { &*std::ptr::addr_of!(BODY) };
    let mut result = -1;
    for _ in 0..rounds {
        result = match find_model(std::hint::black_box(body)) {
            Ok(field) => field.token.end as i64,
            Err(_) => -1,
        };
    }
    result
}
