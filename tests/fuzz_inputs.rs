//! Bounded, deterministic fuzzing of the three parsers that read untrusted bytes: request
//! bodies (`body_scan::find_model`), upstream SSE streams (`sse::SseScanner`) and router
//! configs (`config::RouterConfig::from_json`).
//!
//! Each target starts from the seed corpus in `tests/fuzz_corpus/<target>/`, applies seeded
//! mutations (bit flips, byte and token inserts, deletes, duplication, splices, truncation,
//! nesting bombs, huge numbers, invalid UTF-8, duplicate keys) and checks every input for
//! panics (caught with `catch_unwind`, reported with the input in hex) and cheap invariants.
//! Mutants that reach an interesting outcome are kept, so the corpus grows a little. No
//! dependencies: a xorshift generator, fixed seeds and fixed execution counts, so every run
//! sees the same inputs. `cargo test --test fuzz_inputs -- --nocapture` prints the figures.
//!
//! `FUZZ_SCALE=10 cargo test --release --test fuzz_inputs -- --nocapture` runs longer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use model_router::body_scan::{find_model, ScanError, MAX_DEPTH};
use model_router::config::RouterConfig;
use model_router::sse::{ChunkReport, SseScanner};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Instant;

// ------------------------------------------------------------------------------------------
// The engine

/// xorshift64*: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }
}

/// Inputs never grow beyond this (nesting bombs are cut to fit).
const MAX_INPUT: usize = 16 * 1024;
/// Kept mutants on top of the seeds, and the largest input worth keeping (small parents keep
/// each execution cheap).
const MAX_KEPT: usize = 256;
const MAX_KEPT_LEN: usize = 4 * 1024;

fn scale() -> usize {
    std::env::var("FUZZ_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&s| s >= 1)
        .unwrap_or(1)
}

fn load_seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fuzz_corpus")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Byte strings worth inserting whole: JSON and SSE structure, tricky escapes, extremes.
const COMMON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\\",
    b"\\\"",
    b"\\u",
    b"\\u0065",
    b"\\ud800",
    b"\\udc00",
    b"\\ud83d\\ude00",
    b"\\u0000",
    b"true",
    b"false",
    b"null",
    b"-",
    b"0",
    b"-0.0e-0",
    b"1e999999",
    b"18446744073709551615",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"1.7976931348623157e309",
    b" ",
    b"\t",
    b"\n",
    b"\r",
    b"\r\n",
    b"\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe2\x82",
    b"\x00",
    b"\x7f",
];

struct Target {
    name: &'static str,
    tokens: &'static [&'static [u8]],
    /// Key/value pairs spliced right after an object's `{` (duplicate keys).
    pairs: &'static [&'static [u8]],
}

fn pick<'a>(rng: &mut Rng, list: &[&'a [u8]]) -> &'a [u8] {
    list[rng.below(list.len())]
}

fn insert_at(input: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let at = at.min(input.len());
    input.splice(at..at, bytes.iter().copied());
}

/// Applies 1 to 4 mutations (half the time just one).
fn mutate(rng: &mut Rng, t: &Target, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = if rng.chance(2) { 1 } else { 2 + rng.below(3) };
    for _ in 0..rounds {
        let len = out.len();
        let pos = if len == 0 { 0 } else { rng.below(len + 1) };
        match rng.below(14) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.next() as u8;
            }
            2 => insert_at(&mut out, pos, &[rng.next() as u8]),
            3 | 4 => {
                let token = if rng.chance(2) {
                    pick(rng, t.tokens)
                } else {
                    pick(rng, COMMON_TOKENS)
                };
                insert_at(&mut out, pos, token);
            }
            5 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                out.drain(start..end);
            }
            6 if len > 0 => {
                // Duplicate a range in place.
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let copy = out[start..end].to_vec();
                insert_at(&mut out, end, &copy);
            }
            7 if !corpus.is_empty() => {
                // Splice: our head, another input's tail.
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(other.len() + 1);
                out.truncate(pos);
                out.extend_from_slice(&other[cut..]);
            }
            8 => out.truncate(pos),
            9 => {
                // Nesting bomb: many openers (sometimes closed again) at one spot.
                let depth = 1 + rng.below(1_200);
                let (open, close): (&[u8], &[u8]) = match rng.below(3) {
                    0 => (b"[", b"]"),
                    1 => (b"{\"a\":", b"}"),
                    _ => (b"{\"model\":[", b"]}"),
                };
                let mut bomb = open.repeat(depth);
                if rng.chance(2) {
                    bomb.push(b'1');
                    bomb.extend(close.repeat(depth));
                }
                insert_at(&mut out, pos, &bomb);
            }
            10 => {
                // A huge number.
                let mut n = b"-".repeat(rng.below(2));
                n.extend(b"9".repeat(1 + rng.below(400)));
                if rng.chance(2) {
                    n.extend_from_slice(b".5e+");
                    n.extend(b"9".repeat(1 + rng.below(12)));
                }
                insert_at(&mut out, pos, &n);
            }
            11 if !t.pairs.is_empty() => {
                // Duplicate keys: a pair right after some `{`.
                let opens: Vec<usize> = (0..len).filter(|&i| out[i] == b'{').collect();
                if !opens.is_empty() {
                    let at = opens[rng.below(opens.len())] + 1;
                    insert_at(&mut out, at, pick(rng, t.pairs));
                }
            }
            12 if len > 0 => {
                // Invalid UTF-8 inside whatever is there (often a string).
                let bad: &[u8] = pick(rng, &[b"\xff", b"\xc3", b"\xed\xbf\xbf", b"\xf8\x88"]);
                insert_at(&mut out, pos, bad);
            }
            _ => {
                // Swap two bytes.
                if len > 1 {
                    let (a, b) = (rng.below(len), rng.below(len));
                    out.swap(a, b);
                }
            }
        }
    }
    out.truncate(MAX_INPUT);
    out
}

#[derive(Default)]
struct Stats {
    executions: usize,
    seeds: usize,
    kept: usize,
}

/// Runs `check` on every seed, then on `executions` mutants. `check` returns whether the
/// input is worth keeping (a new or rare outcome), or an invariant violation.
fn fuzz(
    target: &Target,
    seed: u64,
    executions: usize,
    mut check: impl FnMut(&[u8]) -> Result<bool, String>,
) -> Stats {
    let started = Instant::now();
    let seeds = load_seeds(target.name);
    let mut stats = Stats {
        seeds: seeds.len(),
        ..Stats::default()
    };
    let mut corpus = seeds.clone();
    let mut rng = Rng::new(seed);
    let mut run = |input: &[u8], iteration: usize, stats: &mut Stats| -> bool {
        stats.executions += 1;
        match catch_unwind(AssertUnwindSafe(|| check(input))) {
            Ok(Ok(keep)) => keep,
            Ok(Err(violation)) => panic!(
                "fuzz {}: invariant broken at iteration {iteration} (seed {seed:#x}): {violation}\n\
                 input ({} bytes, hex): {}",
                target.name,
                input.len(),
                hex(input)
            ),
            Err(_) => panic!(
                "fuzz {}: panic at iteration {iteration} (seed {seed:#x}) on input ({} bytes, hex): {}",
                target.name,
                input.len(),
                hex(input)
            ),
        }
    };
    for s in &seeds {
        run(s, 0, &mut stats);
    }
    for iteration in 1..=executions {
        let parent = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, target, parent, &corpus);
        if run(&input, iteration, &mut stats)
            && stats.kept < MAX_KEPT
            && input.len() <= MAX_KEPT_LEN
        {
            corpus.push(input);
            stats.kept += 1;
        }
    }
    println!(
        "fuzz {}: {} executions, corpus {} seeds + {} kept mutants, crashes: 0, {:.2} s",
        target.name,
        stats.executions,
        stats.seeds,
        stats.kept,
        started.elapsed().as_secs_f64()
    );
    stats
}

/// Counts outcomes; an outcome seen fewer than `rare` times so far makes the input worth keeping.
#[derive(Default)]
struct Outcomes(std::collections::BTreeMap<String, usize>);

impl Outcomes {
    fn note(&mut self, outcome: String, rare: usize) -> bool {
        let n = self.0.entry(outcome).or_default();
        *n += 1;
        *n <= rare
    }
}

// ------------------------------------------------------------------------------------------
// Request bodies: find_model against serde_json

/// What serde_json sees at the top level: every `model` key's value (serde_json keeps only
/// the last of duplicate keys in a `Value`, so the keys are walked one by one here).
enum Top {
    Object(Vec<serde_json::Value>),
    NotObject,
}

impl<'de> de::Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        let mut models = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: serde_json::Value = map.next_value()?;
            if key == "model" {
                models.push(value);
            }
        }
        Ok(Top::Object(models))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::NotObject)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_str<E>(self, _: &str) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
    fn visit_unit<E>(self) -> Result<Top, E> {
        Ok(Top::NotObject)
    }
}

/// What find_model must answer for a body serde_json parses.
fn expected_scan(top: &Top) -> Result<String, ScanError> {
    match top {
        Top::NotObject => Err(ScanError::NotAnObject),
        Top::Object(models) => match models.as_slice() {
            [] => Err(ScanError::MissingModel),
            [serde_json::Value::String(s)] => Ok(s.clone()),
            [_] => Err(ScanError::ModelNotString),
            _ => Err(ScanError::DuplicateModel),
        },
    }
}

#[derive(Default)]
struct BodyFigures {
    /// Inputs serde_json parsed too (and agreed on).
    agreed: usize,
    /// Inputs find_model accepted although serde_json refuses them, by serde_json's reason.
    lenient: std::collections::BTreeMap<String, usize>,
    /// Valid JSON refused as nested deeper than MAX_DEPTH.
    too_deep: usize,
}

/// Deepest container nesting of valid JSON.
fn json_depth(json: &[u8]) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn check_body(
    body: &[u8],
    outcomes: &mut Outcomes,
    figures: &mut BodyFigures,
) -> Result<bool, String> {
    let got = find_model(body);
    if let Ok(m) = &got {
        let token = body.get(m.token.clone()).ok_or_else(|| {
            format!(
                "token {:?} outside the body ({} bytes)",
                m.token,
                body.len()
            )
        })?;
        if token.len() < 2 || token.first() != Some(&b'"') || token.last() != Some(&b'"') {
            return Err(format!("token {:?} is not a quoted string", m.token));
        }
        // The token alone decodes (per serde_json) to the name we report, unless serde_json
        // refuses the token: it rejects what we never accept for a model either.
        if let Ok(decoded) = serde_json::from_slice::<String>(token) {
            if decoded != m.name {
                return Err(format!(
                    "token decodes to {decoded:?}, find_model says {:?}",
                    m.name
                ));
            }
        }
    }
    let got_simple = got.map(|m| m.name.into_owned());
    // Differential check: whenever serde_json parses the body, both must name the same model
    // (or the same reason there is none). Malformed bodies serde_json rejects are not
    // compared: the scanner is deliberately lenient about number syntax, escapes and UTF-8
    // outside the model string, which cannot change which model a body names.
    match serde_json::from_slice::<Top>(body) {
        // Nesting deeper than MAX_DEPTH is refused as a resource limit; serde_json may still
        // parse it (it skips ignored values without a depth limit).
        Ok(_) if got_simple == Err(ScanError::TooDeep) => {
            let depth = json_depth(body);
            if depth <= MAX_DEPTH {
                return Err(format!("TooDeep at nesting depth {depth}"));
            }
            figures.too_deep += 1;
        }
        Ok(top) => {
            let want = expected_scan(&top);
            if got_simple != want {
                return Err(format!(
                    "serde_json reads {want:?}, find_model says {got_simple:?}"
                ));
            }
            figures.agreed += 1;
        }
        Err(e) if got_simple.is_ok() => {
            let reason = e.to_string();
            let reason = reason
                .split(" at line")
                .next()
                .unwrap_or_default()
                .to_string();
            *figures.lenient.entry(reason).or_default() += 1;
        }
        Err(_) => {}
    }
    let class = match &got_simple {
        Ok(_) => "ok".to_string(),
        Err(ScanError::Malformed { expected, .. }) => format!("malformed: {expected}"),
        Err(e) => format!("{e:?}"),
    };
    // Keep rare outcomes, and more of the valid JSON, so mutants stay near real bodies.
    let valid = serde_json::from_slice::<IgnoredAny>(body).is_ok();
    Ok(outcomes.note(class.clone(), 8) || (valid && outcomes.note(format!("valid {class}"), 32)))
}

#[test]
fn fuzz_find_model() {
    const TARGET: Target = Target {
        name: "body",
        tokens: &[
            b"\"model\"",
            b"\"model\":",
            b"\"mod\\u0065l\"",
            b"\"\\u006d\\u006f\\u0064\\u0065\\u006c\"",
            b"\"model\":\"x\",",
            b"\"messages\":[]",
            b"\"stream\":true",
            b"{\"model\":\"a\"}",
        ],
        pairs: &[
            b"\"model\":\"dup\",",
            b"\"mod\\u0065l\":\"dup\",",
            b"\"model\":null,",
            b"\"model\":1,",
            b"\"x\":1,",
        ],
    };
    let mut outcomes = Outcomes::default();
    let mut figures = BodyFigures::default();
    let stats = fuzz(&TARGET, 0xB0D7_5CA1, 30_000 * scale(), |input| {
        check_body(input, &mut outcomes, &mut figures)
    });
    println!(
        "fuzz body: {} of {} inputs parsed by serde_json too, all agreeing ({} more refused as \
         too deep); accepted by find_model but refused by serde_json: {:?}; outcomes: {:?}",
        figures.agreed, stats.executions, figures.too_deep, figures.lenient, outcomes.0
    );
    assert!(
        figures.agreed > stats.executions / 20,
        "the fuzz rarely reached valid JSON"
    );
    assert!(outcomes.0.contains_key("ok") && outcomes.0.contains_key("DuplicateModel"));
}

// ------------------------------------------------------------------------------------------
// SSE: chunking never changes totals, lines are independent, [DONE] matches a reference

fn scan(pieces: &[&[u8]]) -> (ChunkReport, bool) {
    let mut s = SseScanner::new();
    let mut total = ChunkReport::default();
    for piece in pieces {
        total.merge(s.feed(piece));
    }
    total.merge(s.finish());
    (total, s.saw_done())
}

/// `data:` + spaces/tabs + `[DONE]` + spaces/tabs, on a line ended by `\n`, `\r` or the end.
fn reference_done(stream: &[u8]) -> bool {
    stream.split(|&b| b == b'\n' || b == b'\r').any(|line| {
        line.strip_prefix(b"data:").is_some_and(|rest| {
            let trim = |s: &[u8]| -> Vec<u8> {
                s.iter()
                    .copied()
                    .skip_while(|&b| b == b' ' || b == b'\t')
                    .collect()
            };
            let mut rest = trim(rest);
            rest.reverse();
            let mut rest = trim(&rest);
            rest.reverse();
            rest == b"[DONE]"
        })
    })
}

/// Whether a JSON value carries generated output the way the scanner defines it.
fn has_output(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Object(map) => map.iter().any(|(k, v)| {
            let own = match (k.as_str(), v) {
                (
                    "content" | "reasoning_content" | "reasoning" | "refusal" | "text",
                    Value::String(s),
                ) => !s.is_empty(),
                ("delta", Value::String(s)) => !s.is_empty(),
                ("tool_calls", Value::Array(a)) => !a.is_empty(),
                ("function_call", Value::Object(o)) => !o.is_empty(),
                _ => false,
            };
            own || has_output(v)
        }),
        Value::Array(items) => items.iter().any(has_output),
        _ => false,
    }
}

/// One `data:` line whose payload serde_json reads as an object, with no escapes anywhere
/// (the scanner does not recognise escaped key names, by design): whatever serde_json sees
/// (the last of duplicate keys) the scanner must have seen too.
fn check_sse_line(line: &[u8], report: &ChunkReport) -> Result<bool, String> {
    let Some(payload) = line.strip_prefix(b"data:") else {
        return Ok(false);
    };
    if payload.contains(&b'\\') {
        return Ok(false);
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(payload) else {
        return Ok(false);
    };
    let line_text = String::from_utf8_lossy(line);
    if matches!(
        map.get("error"),
        Some(serde_json::Value::Object(_) | serde_json::Value::String(_))
    ) && !report.error_event
    {
        return Err(format!("missed the error event in {line_text:?}"));
    }
    // Responses API events: `type` decides. Their `.done` echoes repeat the output under
    // `text`, which the scanner ignores only once it has seen `type` (key order, which
    // serde_json does not keep), so only the `delta` string is checked on those lines.
    let responses_type = map
        .get("type")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    if matches!(responses_type.as_deref(), Some("error" | "response.failed")) && !report.error_event
    {
        return Err(format!("missed the error event in {line_text:?}"));
    }
    let value = serde_json::Value::Object(map);
    if responses_type.is_some_and(|t| t.starts_with("response.")) {
        let delta = value.get("delta").and_then(serde_json::Value::as_str);
        if delta.is_some_and(|d| !d.is_empty()) && report.output_events != 1 {
            return Err(format!(
                "{} output events for the delta in {line_text:?}",
                report.output_events
            ));
        }
        return Ok(true);
    }
    if has_output(&value) && report.output_events != 1 {
        return Err(format!(
            "{} output events for {line_text:?}",
            report.output_events
        ));
    }
    // usage.completion_tokens at the top level, when it is the only one on the line.
    let tokens = value
        .get("usage")
        .and_then(|u| u.get("completion_tokens"))
        .and_then(serde_json::Value::as_u64);
    let occurrences = |needle: &[u8]| line.windows(needle.len()).filter(|w| *w == needle).count();
    if let Some(n) = tokens {
        if occurrences(b"\"usage\"") == 1
            && occurrences(b"\"completion_tokens\"") == 1
            && report.completion_tokens != Some(n)
        {
            return Err(format!(
                "completion_tokens {:?}, serde_json reads {n} in {line_text:?}",
                report.completion_tokens
            ));
        }
    }
    Ok(true)
}

fn check_sse(
    stream: &[u8],
    rng: &mut Rng,
    outcomes: &mut Outcomes,
    json_lines: &mut usize,
) -> Result<bool, String> {
    let (whole, saw_done) = scan(&[stream]);
    if saw_done != whole.done {
        return Err(format!(
            "saw_done() {saw_done} but the totals say {}",
            whole.done
        ));
    }
    if whole.done != reference_done(stream) {
        return Err(format!(
            "done {} but the reference says the opposite",
            whole.done
        ));
    }
    // Random chunkings, from single bytes to a few large pieces.
    for _ in 0..3 {
        let mut pieces = Vec::new();
        let mut rest = stream;
        let max = 1 + rng.below(stream.len().clamp(1, 64));
        while !rest.is_empty() {
            let n = (1 + rng.below(max)).min(rest.len());
            let (head, tail) = rest.split_at(n);
            pieces.push(head);
            rest = tail;
            if rng.chance(4) {
                pieces.push(&[]); // empty chunks happen too
            }
        }
        let (chunked, _) = scan(&pieces);
        if chunked != whole {
            return Err(format!(
                "chunking changed the totals: {chunked:?} vs {whole:?} (pieces of up to {max} bytes)"
            ));
        }
    }
    // Every line is judged on its own: scanning line by line gives the same totals, and each
    // line that is plain JSON agrees with serde_json.
    let mut by_line = ChunkReport::default();
    for line in stream.split_inclusive(|&b| b == b'\n' || b == b'\r') {
        let report = scan(&[line]).0;
        *json_lines += usize::from(check_sse_line(line, &report)?);
        by_line.merge(report);
    }
    if by_line != whole {
        return Err(format!("line by line {by_line:?} vs whole {whole:?}"));
    }
    let class = format!(
        "events>0:{} done:{} tokens:{} error:{}",
        whole.output_events > 0,
        whole.done,
        whole.completion_tokens.is_some(),
        whole.error_event
    );
    Ok(outcomes.note(class, 8))
}

#[test]
fn fuzz_sse_scanner() {
    const TARGET: Target = Target {
        name: "sse",
        tokens: &[
            b"data:",
            b"data: ",
            b"data: [DONE]\n\n",
            b"[DONE]",
            b": ping\n",
            b"event: x\n",
            b"\n\n",
            b"\"content\":\"x\"",
            b"\"content\":\"\"",
            b"\"reasoning_content\":\"r\"",
            b"\"tool_calls\":[{}]",
            b"\"function_call\":{\"name\":\"f\"}",
            b"\"error\":{\"message\":\"m\"}",
            b"\"error\":\"e\"",
            b"\"usage\":{\"completion_tokens\":",
            b"\"completion_tokens\":99999999999999999999999",
            b"data: {\"choices\":[{\"delta\":{\"content\":\"",
        ],
        pairs: &[
            b"\"error\":null,",
            b"\"error\":{},",
            b"\"content\":\"dup\",",
            b"\"usage\":{\"completion_tokens\":7},",
        ],
    };
    let mut outcomes = Outcomes::default();
    let mut rng = Rng::new(0x55E0_C4A7);
    let mut json_lines = 0;
    let stats = fuzz(&TARGET, 0x55E5_EED5, 4_000 * scale(), |input| {
        check_sse(input, &mut rng, &mut outcomes, &mut json_lines)
    });
    println!(
        "fuzz sse: {json_lines} data lines cross-checked with serde_json; outcomes: {:?}",
        outcomes.0
    );
    assert!(stats.executions > 0 && outcomes.0.len() >= 4);
    assert!(
        json_lines > stats.executions / 4,
        "the fuzz rarely reached JSON data lines"
    );
}

// ------------------------------------------------------------------------------------------
// Router configs: never panic; what is accepted is consistent

fn check_config(bytes: &[u8], outcomes: &mut Outcomes) -> Result<bool, String> {
    let parsed = RouterConfig::from_json(bytes);
    let again = RouterConfig::from_json(bytes);
    if parsed != again {
        return Err("two parses of the same bytes differ".into());
    }
    let config = match parsed {
        Ok(config) => config,
        Err(errors) => {
            if errors.0.is_empty() {
                return Err("rejected without naming an error".into());
            }
            let _ = errors.to_string();
            let class = format!(
                "err:{}",
                errors.0[0].field.split(['[', '.']).next().unwrap_or("")
            );
            // Keep rare errors, and more of the valid JSON, so mutants stay near real configs.
            let valid = serde_json::from_slice::<IgnoredAny>(bytes).is_ok();
            return Ok(outcomes.note(class.clone(), 8)
                || (valid && outcomes.note(format!("valid {class}"), 32)));
        }
    };
    if config.models.is_empty() {
        return Err("accepted with no models".into());
    }
    for (id, m) in config.models.iter().enumerate() {
        if m.name.is_empty()
            || m.name.len() > 256
            || !m.name.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(format!("accepted model name {:?}", m.name));
        }
        if config.model_by_name(&m.name) != Some(id) {
            return Err(format!("model {:?} does not resolve to itself", m.name));
        }
        if m.upstream_model.is_empty() || m.upstream_model.len() > 256 {
            return Err(format!("accepted upstream_model {:?}", m.upstream_model));
        }
    }
    for (id, p) in config.pools.iter().enumerate() {
        let mut seen = p.members.clone();
        seen.sort_unstable();
        seen.dedup();
        if p.members.is_empty()
            || p.members.len() > 20
            || seen.len() != p.members.len()
            || p.members.iter().any(|&m| config.model(m).is_none())
        {
            return Err(format!(
                "accepted pool {:?} with members {:?}",
                p.alias, p.members
            ));
        }
        for alias in [
            p.alias.clone(),
            p.alias.to_ascii_uppercase(),
            p.alias.to_ascii_lowercase(),
        ] {
            if config.pool_by_alias(&alias) != Some(id) {
                return Err(format!("pool alias {alias:?} does not resolve to its pool"));
            }
        }
        if config.model_by_name(&p.alias).is_some() {
            return Err(format!("alias {:?} is also a model name", p.alias));
        }
    }
    let s = &config.settings;
    let sane = s.cooldown_base_ms >= 1
        && s.cooldown_max_ms >= s.cooldown_base_ms
        && s.attempt_timeout_ms >= 1
        && (1024..=1 << 30).contains(&s.max_body_bytes)
        && s.routed_paths
            .iter()
            .all(|p| p.starts_with('/') && !p.contains('?'))
        && s.passthrough_model
            .is_none_or(|m| config.model(m).is_some())
        && (0.0..=10.0).contains(&s.load_factor)
        && (0.0..=0.5).contains(&s.explore_share)
        && (1..=1_000_000).contains(&s.max_concurrent_failovers);
    if !sane {
        return Err(format!("accepted settings {s:?}"));
    }
    let _ = config.max_pool_len();
    let _ = config.is_routed_path("/v1/chat/completions?x=1");
    Ok(outcomes.note(format!("ok:{} pools", config.pools.len().min(3)), 16))
}

#[test]
fn fuzz_router_config() {
    const TARGET: Target = Target {
        name: "config",
        tokens: &[
            b"\"models\":[]",
            b"{\"name\":\"n\",\"endpoint\":\"http://h\"}",
            b"\"endpoint\":\"https://[::1]:65535/\"",
            b"\"endpoint\":\"http://h:65536\"",
            b"\"upstream_model\":\"\"",
            b"\"api_key_env\":\"9X\"",
            b"\"pools\":{\"p\":[\"m\"]}",
            b"\"settings\":{}",
            b"\"cooldown_base_ms\":18446744073709551615",
            b"\"cooldown_max_ms\":0",
            b"\"max_body_bytes\":1073741825",
            b"\"load_factor\":1e308",
            b"\"explore_share\":-0.0",
            b"\"routed_paths\":[\"/\"]",
            b"\"status_path\":\"\"",
            b"\"passthrough_model\":\"m\"",
            b"\"unknown\":1",
        ],
        pairs: &[
            b"\"models\":[{\"name\":\"m\",\"endpoint\":\"http://h\"}],",
            b"\"settings\":{},",
            b"\"name\":\"dup\",",
            b"\"default\":[\"m\"],",
            b"\"DEFAULT\":[\"m\"],",
        ],
    };
    let mut outcomes = Outcomes::default();
    let stats = fuzz(&TARGET, 0xC0F1_6000, 12_000 * scale(), |input| {
        check_config(input, &mut outcomes)
    });
    println!("fuzz config: outcomes: {:?}", outcomes.0);
    assert!(stats.executions > 0);
    assert!(
        outcomes.0.keys().any(|k| k.starts_with("ok:")),
        "no valid config reached"
    );
}
