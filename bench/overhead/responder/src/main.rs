//! Static upstream for bench/overhead: `overhead-responder 127.0.0.1:PORT`.
//!
//! Reads each HTTP/1.1 request (Content-Length or chunked body), discards the body and answers
//! a fixed chat completion at once. One thread per connection, keep-alive. Prints
//! `listening on ADDR` once bound. Loopback only.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

const BODY: &str = r#"{"id":"chatcmpl-static","object":"chat.completion","created":0,"model":"static","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#;

fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .expect("usage: overhead-responder 127.0.0.1:PORT");
    assert!(addr.ip().is_loopback(), "loopback addresses only");
    let listener = TcpListener::bind(addr).expect("bind");
    println!("listening on {}", listener.local_addr().expect("addr"));
    io::stdout().flush().ok();
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        BODY.len(),
        BODY
    )
    .into_bytes();
    let response: &'static [u8] = Box::leak(response.into_boxed_slice());
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        thread::spawn(move || {
            let _ = serve(conn, response);
        });
    }
}

fn serve(conn: TcpStream, response: &[u8]) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::with_capacity(256 * 1024, conn);
    let mut line = String::new();
    let mut sink = vec![0u8; 256 * 1024];
    loop {
        // Request line and headers.
        let mut content_length: u64 = 0;
        let mut chunked = false;
        let mut first = true;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(()); // peer closed
            }
            let l = line.trim_end();
            if l.is_empty() {
                if first {
                    continue;
                }
                break;
            }
            first = false;
            if let Some((name, value)) = l.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.to_ascii_lowercase().contains("chunked");
                } else if name.eq_ignore_ascii_case("expect") {
                    writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                }
            }
        }
        if chunked {
            loop {
                line.clear();
                reader.read_line(&mut line)?;
                let size_text = line.trim_end().split(';').next().unwrap_or("0");
                let size = u64::from_str_radix(size_text.trim(), 16).unwrap_or(0);
                if size == 0 {
                    // Trailers until the empty line.
                    loop {
                        line.clear();
                        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                discard(&mut reader, &mut sink, size + 2)?; // chunk data + CRLF
            }
        } else {
            discard(&mut reader, &mut sink, content_length)?;
        }
        writer.write_all(response)?;
    }
}

fn discard<R: Read>(reader: &mut R, sink: &mut [u8], mut left: u64) -> io::Result<()> {
    while left > 0 {
        let want = left.min(sink.len() as u64) as usize;
        let n = reader.read(&mut sink[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        left -= n as u64;
    }
    Ok(())
}
