//! Finds the top-level `model` of a JSON request body in one structural pass.
//!
//! No DOM is built: nested values are skipped, and only the `model` string is decoded (and
//! only allocates when it contains escapes). The pass still walks the whole body, so broken
//! structure and a second top-level `model` are caught: the router and the upstream must
//! never disagree on which model a body names.

use std::borrow::Cow;
use std::ops::Range;

/// Deeper nesting is refused rather than tracked (the stack below holds this many levels).
pub const MAX_DEPTH: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelField<'a> {
    /// Byte range of the value's whole string token, quotes included.
    pub token: Range<usize>,
    pub name: Cow<'a, str>,
    /// The body asks for a streamed response (top-level `"stream": true`).
    pub streamed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// Not JSON, or JSON cut short; `at` is the byte offset where it went wrong.
    Malformed {
        at: usize,
        expected: &'static str,
    },
    NotAnObject,
    TooDeep,
    MissingModel,
    ModelNotString,
    ModelNotUtf8,
    DuplicateModel,
}

pub fn find_model(body: &[u8]) -> Result<ModelField<'_>, ScanError> {
    let mut s = Scanner { b: body, i: 0 };
    s.skip_ws();
    match s.peek() {
        Some(b'{') => s.i += 1,
        Some(_) => {
            // Tell "valid JSON that is not an object" from garbage.
            return match s.skip_value() {
                Ok(()) => Err(ScanError::NotAnObject),
                Err(e) => Err(e),
            };
        }
        None => return Err(s.malformed("a JSON object")),
    }
    let mut model: Option<Result<ModelField<'_>, ScanError>> = None;
    let mut streamed = false;
    s.skip_ws();
    if s.peek() == Some(b'}') {
        s.i += 1;
    } else {
        loop {
            s.skip_ws();
            let key = s.string()?;
            s.skip_ws();
            s.expect(b':', "':' after an object key")?;
            s.skip_ws();
            if key_is_model(body, &key) {
                if model.is_some() {
                    // Keep walking only to report broken structure first.
                    s.skip_value()?;
                    s.finish_object()?;
                    return Err(ScanError::DuplicateModel);
                }
                model = Some(if s.peek() == Some(b'"') {
                    let start = s.i;
                    let content = s.string()?;
                    decode_model(body, start..s.i, content)
                } else {
                    s.skip_value()?;
                    Err(ScanError::ModelNotString)
                });
            } else {
                let value_start = s.i;
                s.skip_value()?;
                if body.get(key.content.clone()) == Some(b"stream") {
                    streamed = body.get(value_start..s.i) == Some(b"true");
                }
            }
            s.skip_ws();
            match s.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(s.malformed_before("',' or '}' in the top-level object")),
            }
        }
    }
    s.skip_ws();
    if s.i != body.len() {
        return Err(s.malformed("the end of the body after the top-level object"));
    }
    let mut field = model.unwrap_or(Err(ScanError::MissingModel))?;
    field.streamed = streamed;
    Ok(field)
}

/// Writes `value` as a JSON string token, quotes included.
pub fn json_string(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

/// The string token's content between its quotes, and whether it has escapes.
struct StringToken {
    content: Range<usize>,
    escaped: bool,
}

fn key_is_model(body: &[u8], key: &StringToken) -> bool {
    let raw = body.get(key.content.clone()).unwrap_or_default();
    if !key.escaped {
        return raw == b"model";
    }
    // `"mod\u0065l"` is `model` to every JSON parser upstream, so it must be to us too.
    raw.len() <= 64 && unescape(raw).as_deref() == Some("model")
}

fn decode_model(
    body: &[u8],
    token: Range<usize>,
    content: StringToken,
) -> Result<ModelField<'_>, ScanError> {
    let raw = body.get(content.content).unwrap_or_default();
    let name = if content.escaped {
        Cow::Owned(unescape(raw).ok_or(ScanError::ModelNotUtf8)?)
    } else {
        Cow::Borrowed(std::str::from_utf8(raw).map_err(|_| ScanError::ModelNotUtf8)?)
    };
    Ok(ModelField {
        token,
        name,
        streamed: false,
    })
}

/// Decodes JSON string content; `None` for bad escapes, lone surrogates or invalid UTF-8.
fn unescape(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match chars.next()? {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let high = hex4(&mut chars)?;
                if (0xD800..0xDC00).contains(&high) {
                    if chars.next()? != '\\' || chars.next()? != 'u' {
                        return None;
                    }
                    let low = hex4(&mut chars)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return None;
                    }
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?
                } else {
                    char::from_u32(high)?
                }
            }
            _ => return None,
        };
        out.push(decoded);
    }
    Some(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

/// Length of the leading run of bytes that need no attention inside a string: anything but
/// `"`, `\` and control bytes. Request bodies are mostly string content (prompts), so this
/// loop is the scan's hot spot.
///
/// Built with `-C target-feature=+simd128`, the Wasm module tests 16 bytes per step with
/// SIMD128 (see docs/performance.md for whether that pays in Envoy's V8); otherwise the word
/// version below runs, the same in wasm32 as on the host.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn plain_run(bytes: &[u8]) -> usize {
    use core::arch::wasm32::{
        u8x16_bitmask, u8x16_eq, u8x16_lt, u8x16_splat, v128, v128_load, v128_or,
    };
    let (quote, backslash, space) = (u8x16_splat(b'"'), u8x16_splat(b'\\'), u8x16_splat(0x20));
    let mut blocks = bytes.chunks_exact(16);
    let mut run = 0;
    for block in &mut blocks {
        // SAFETY: `block` is exactly 16 readable bytes; wasm loads need no alignment.
        let v = unsafe { v128_load(block.as_ptr().cast::<v128>()) };
        let hits = v128_or(
            v128_or(u8x16_eq(v, quote), u8x16_eq(v, backslash)),
            u8x16_lt(v, space),
        );
        let mask = u8x16_bitmask(hits);
        if mask != 0 {
            return run + mask.trailing_zeros() as usize;
        }
        run += 16;
    }
    run + plain_run_words(blocks.remainder())
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn plain_run(bytes: &[u8]) -> usize {
    plain_run_words(bytes)
}

/// Eight bytes per step with word arithmetic.
fn plain_run_words(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Flags bytes of `x` that are below `n` (n <= 128); the lowest flag is always exact.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGHS;
    let mut words = bytes.chunks_exact(8);
    let mut run = 0;
    for chunk in &mut words {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(chunk);
        let w = u64::from_le_bytes(raw);
        let hits = below(w ^ (ONES * u64::from(b'"')), 1)
            | below(w ^ (ONES * u64::from(b'\\')), 1)
            | below(w, 0x20);
        if hits != 0 {
            return run + (hits.trailing_zeros() / 8) as usize;
        }
        run += 8;
    }
    run + words
        .remainder()
        .iter()
        .take_while(|&&c| c != b'"' && c != b'\\' && c >= 0x20)
        .count()
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek();
        self.i += 1;
        c
    }

    fn malformed(&self, expected: &'static str) -> ScanError {
        ScanError::Malformed {
            at: self.i,
            expected,
        }
    }

    /// For errors found after `next()` moved past the offending byte.
    fn malformed_before(&self, expected: &'static str) -> ScanError {
        ScanError::Malformed {
            at: self.i.saturating_sub(1).min(self.b.len()),
            expected,
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8, expected: &'static str) -> Result<(), ScanError> {
        if self.next() == Some(c) {
            Ok(())
        } else {
            Err(self.malformed_before(expected))
        }
    }

    /// Consumes a string token starting at `"`.
    fn string(&mut self) -> Result<StringToken, ScanError> {
        self.expect(b'"', "a string")?;
        let start = self.i;
        let mut escaped = false;
        let rest = self.b.get(start..).unwrap_or_default();
        let mut j = 0;
        loop {
            j += plain_run(rest.get(j..).unwrap_or_default());
            let Some(&c) = rest.get(j) else { break };
            match c {
                b'"' => {
                    self.i = start + j + 1;
                    return Ok(StringToken {
                        content: start..start + j,
                        escaped,
                    });
                }
                // The escaped byte can be anything here; `unescape` judges it where it matters.
                b'\\' => {
                    escaped = true;
                    j += 2;
                }
                0..=0x1f => {
                    self.i = start + j;
                    return Err(self.malformed("no raw control characters inside a string"));
                }
                _ => j += 1,
            }
        }
        self.i = self.b.len();
        Err(self.malformed("the closing '\"' of a string"))
    }

    fn scalar(&mut self) -> Result<(), ScanError> {
        let rest = self.b.get(self.i..).unwrap_or_default();
        for literal in [&b"true"[..], b"false", b"null"] {
            if rest.starts_with(literal) {
                self.i += literal.len();
                return Ok(());
            }
        }
        let len = rest
            .iter()
            .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .count();
        match rest.first() {
            Some(b'-' | b'0'..=b'9') if len > 0 => {
                self.i += len;
                Ok(())
            }
            _ => Err(self.malformed("a JSON value")),
        }
    }

    /// Skips one value of any kind, iteratively so hostile nesting cannot blow the stack.
    fn skip_value(&mut self) -> Result<(), ScanError> {
        // One bit per open container: 1 = object, 0 = array.
        let mut stack = [0u64; MAX_DEPTH / 64];
        let mut depth = 0usize;
        loop {
            // Expecting a value.
            self.skip_ws();
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    if depth == MAX_DEPTH {
                        return Err(ScanError::TooDeep);
                    }
                    let is_object = open == b'{';
                    if let Some(word) = stack.get_mut(depth / 64) {
                        let bit = 1u64 << (depth % 64);
                        *word = if is_object { *word | bit } else { *word & !bit };
                    }
                    depth += 1;
                    self.i += 1;
                    self.skip_ws();
                    let close = if is_object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                        depth -= 1;
                    } else if is_object {
                        self.object_key()?;
                        continue;
                    } else {
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                _ => self.scalar()?,
            }
            // After a value: close containers or move to the next element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let top_is_object = stack
                    .get((depth - 1) / 64)
                    .is_some_and(|w| w & (1u64 << ((depth - 1) % 64)) != 0);
                self.skip_ws();
                match (self.next(), top_is_object) {
                    (Some(b','), true) => {
                        self.skip_ws();
                        self.object_key()?;
                        break;
                    }
                    (Some(b','), false) => break,
                    (Some(b'}'), true) | (Some(b']'), false) => depth -= 1,
                    (_, true) => return Err(self.malformed_before("',' or '}' in an object")),
                    (_, false) => return Err(self.malformed_before("',' or ']' in an array")),
                }
            }
        }
    }

    fn object_key(&mut self) -> Result<(), ScanError> {
        self.string()?;
        self.skip_ws();
        self.expect(b':', "':' after an object key")
    }

    /// After a duplicate `model`: walk the rest of the top-level object for structure errors.
    fn finish_object(&mut self) -> Result<(), ScanError> {
        loop {
            self.skip_ws();
            match self.next() {
                Some(b',') => {
                    self.skip_ws();
                    self.object_key()?;
                    self.skip_value()?;
                }
                Some(b'}') => return Ok(()),
                _ => return Err(self.malformed_before("',' or '}' in the top-level object")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(body: &str) -> Result<String, ScanError> {
        find_model(body.as_bytes()).map(|m| m.name.into_owned())
    }

    #[test]
    fn finds_top_level_model_wherever_it_stands() {
        let cases: &[(&str, &str)] = &[
            (r#"{"model":"a"}"#, "a"),
            (r#" { "model" : "gpt-4o" , "stream": true } "#, "gpt-4o"),
            (
                r#"{"messages":[{"role":"user","content":"hi"}],"model":"last"}"#,
                "last",
            ),
            (r#"{"a":{"model":"nested"},"model":"top"}"#, "top"),
            (
                r#"{"a":[{"model":"x"},["model"]],"model":"top","b":{"c":{"model":1}}}"#,
                "top",
            ),
            (r#"{"model":"default:latency"}"#, "default:latency"),
            (
                r#"{"model":"with \"quote\" and \\ and \u00e9"}"#,
                "with \"quote\" and \\ and é",
            ),
            (r#"{"mod\u0065l":"escaped-key"}"#, "escaped-key"),
            (r#"{"model":"\ud83d\ude00"}"#, "😀"),
            (
                r#"{"x":"}{][\"","model":"m","n":-1.5e+3,"t":true,"f":false,"z":null}"#,
                "m",
            ),
            ("{\n\t\"model\"\r\n:\n\"ws\"\n}\n", "ws"),
        ];
        for (body, want) in cases {
            assert_eq!(name(body).as_deref(), Ok(*want), "{body}");
        }
    }

    #[test]
    fn top_level_stream_true_is_noticed() {
        let cases: &[(&str, bool)] = &[
            (r#"{"model":"a","stream":true}"#, true),
            (r#"{"stream" : true ,"model":"a"}"#, true),
            (r#"{"model":"a","stream":false}"#, false),
            (r#"{"model":"a","stream":"true"}"#, false),
            (r#"{"model":"a","x":{"stream":true}}"#, false),
            (r#"{"model":"a"}"#, false),
        ];
        for (body, want) in cases {
            assert_eq!(
                find_model(body.as_bytes()).unwrap().streamed,
                *want,
                "{body}"
            );
        }
    }

    #[test]
    fn token_range_covers_the_quoted_value() {
        let body = r#"{"stream":true,"model":"big"}"#;
        let m = find_model(body.as_bytes()).unwrap();
        assert_eq!(&body[m.token.clone()], "\"big\"");
        assert!(
            matches!(m.name, Cow::Borrowed(_)),
            "no escapes, no allocation"
        );
    }

    #[test]
    fn refuses_bodies_the_upstream_could_read_differently() {
        let cases: &[(&str, ScanError)] = &[
            (r#"{"model":"a","model":"b"}"#, ScanError::DuplicateModel),
            (
                r#"{"model":"a","x":1,"mod\u0065l":"b"}"#,
                ScanError::DuplicateModel,
            ),
            (r#"{"model":1}"#, ScanError::ModelNotString),
            (r#"{"model":null}"#, ScanError::ModelNotString),
            (r#"{"model":{"name":"a"}}"#, ScanError::ModelNotString),
            (
                r#"{"messages":[],"x":{"model":"nested"}}"#,
                ScanError::MissingModel,
            ),
            ("{}", ScanError::MissingModel),
            ("[1,2]", ScanError::NotAnObject),
            (r#""model""#, ScanError::NotAnObject),
            (r#"{"model":"\ud800"}"#, ScanError::ModelNotUtf8),
            (r#"{"model":"\q"}"#, ScanError::ModelNotUtf8),
        ];
        for (body, want) in cases {
            assert_eq!(name(body), Err(*want), "{body}");
        }
        assert_eq!(
            find_model(b"{\"model\":\"\xff\"}").map(|m| m.name.into_owned()),
            Err(ScanError::ModelNotUtf8)
        );
    }

    #[test]
    fn malformed_structure_is_caught_even_after_the_model() {
        let cases = [
            "",
            "   ",
            "{",
            r#"{"model":"a""#,
            r#"{"model":"a",}"#,
            r#"{"model":"a"} x"#,
            r#"{"model":"a","b":[1,2}"#,
            r#"{"model":"a","b":{"c":1]}"#,
            r#"{"model":"a","b":{"c"}}"#,
            r#"{"model":"a","b":tru}"#,
            r#"{"model":"a","b":"unterminated}"#,
            "{\"model\":\"a\nb\"}",
            r#"{"model" "a"}"#,
            r#"{model:"a"}"#,
            r#"{"model":"a","b":[1 2]}"#,
            r#"{"model":"a","model":"b""#,
        ];
        for body in cases {
            assert!(
                matches!(name(body), Err(ScanError::Malformed { .. })),
                "{body:?} gave {:?}",
                name(body)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!(
            "{{\"a\":{}1{},\"model\":\"m\"}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(name(&deep), Err(ScanError::TooDeep));
        let ok = format!(
            "{{\"a\":{}1{},\"model\":\"m\"}}",
            "[".repeat(500),
            "]".repeat(500)
        );
        assert_eq!(name(&ok).as_deref(), Ok("m"));
    }

    #[test]
    fn large_body_with_model_last() {
        let filler = "x".repeat(1 << 20);
        let body =
            format!(r#"{{"messages":[{{"role":"user","content":"{filler}"}}],"model":"big"}}"#);
        let m = find_model(body.as_bytes()).unwrap();
        assert_eq!(m.name, "big");
        assert_eq!(m.token.end, body.len() - 1);
    }

    #[test]
    fn every_truncation_of_a_valid_body_is_an_error() {
        let body = r#"{"messages":[{"role":"user","content":"hi \"there\""}],"model":"m","n":12}"#;
        for cut in 0..body.len() {
            assert!(find_model(&body.as_bytes()[..cut]).is_err(), "cut at {cut}");
        }
        assert!(find_model(body.as_bytes()).is_ok());
    }

    #[test]
    fn plain_run_stops_exactly_at_the_first_special_byte() {
        for len in 0..40 {
            for special in [b'"', b'\\', b'\n', 0x00, 0x1f] {
                for at in 0..=len {
                    let mut bytes = vec![b'a'; len];
                    // Bytes just above the specials must not stop the run.
                    for (k, b) in bytes.iter_mut().enumerate() {
                        *b = [b'a', 0x20, 0x23, 0x5d, 0xff, 0x80][k % 6];
                    }
                    if at < len {
                        bytes[at] = special;
                    }
                    assert_eq!(plain_run(&bytes), at, "len {len} special {special} at {at}");
                }
            }
        }
    }

    #[test]
    fn json_string_escapes_for_rewrites() {
        assert_eq!(json_string("org/big-70b"), "\"org/big-70b\"");
        assert_eq!(json_string("a\"b"), "\"a\\\"b\"");
    }
}
