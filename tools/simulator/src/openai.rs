//! OpenAI-shaped JSON documents.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// Which text-generation endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    Chat,
    Completion,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `{"error":{"message","type","param":null,"code"}}`
pub fn error_body(message: &str, kind: &str, code: &str) -> String {
    json!({
        "error": {"message": message, "type": kind, "param": null, "code": code}
    })
    .to_string()
}

/// The text of token `i` (1-based).
pub fn token_text(i: u64) -> String {
    format!("tok{i} ")
}

/// The concatenation of the first `n` tokens, as a stream would deliver it.
pub fn full_text(n: u64) -> String {
    (1..=n).map(token_text).collect()
}

fn count_words(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.split_whitespace().count() as u64,
        Value::Array(items) => items.iter().map(count_words).sum(),
        Value::Object(map) => ["content", "text", "input"]
            .iter()
            .filter_map(|k| map.get(*k))
            .map(count_words)
            .sum(),
        _ => 0,
    }
}

/// A crude prompt size: whitespace-separated words in the prompt fields.
pub fn prompt_tokens(body: &Value) -> u64 {
    ["messages", "prompt", "input"]
        .iter()
        .filter_map(|k| body.get(*k))
        .map(count_words)
        .sum()
}

pub fn usage(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

pub fn id_for(kind: TextKind, n: u64) -> String {
    match kind {
        TextKind::Chat => format!("chatcmpl-sim-{n}"),
        TextKind::Completion => format!("cmpl-sim-{n}"),
    }
}

/// The function a request makes the model call: the first tool for `tool_choice: "required"`,
/// or the one `tool_choice` names (chat: `{"function":{"name"}}`, Responses: `{"name"}`).
/// With `"auto"` or no choice the simulator answers with text, so answers stay predictable.
pub fn forced_tool(req: &Value) -> Option<String> {
    let tools = req.get("tools")?.as_array()?;
    let name_of = |v: &Value| {
        v.pointer("/function/name")
            .or_else(|| v.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match req.get("tool_choice")? {
        Value::String(s) if s == "required" => tools.first().and_then(name_of),
        choice @ Value::Object(_) => name_of(choice),
        _ => None,
    }
}

/// The pieces in which a tool call's `arguments` stream: `{"text":"tok1 tok2 … "}` with one
/// token per piece, the JSON punctuation riding on the first and last. Always at least one.
pub fn tool_argument_pieces(n: u64) -> Vec<String> {
    if n == 0 {
        return vec![r#"{"text":""}"#.to_string()];
    }
    (1..=n)
        .map(|i| {
            let open = if i == 1 { r#"{"text":""# } else { "" };
            let close = if i == n { r#""}"# } else { "" };
            format!("{open}{}{close}", token_text(i))
        })
        .collect()
}

pub fn tool_arguments(n: u64) -> String {
    tool_argument_pieces(n).concat()
}

/// A complete non-streamed completion; `tool` makes a chat answer a call of that function.
pub fn completion(
    kind: TextKind,
    id: &str,
    created: u64,
    model: &str,
    n: u64,
    prompt: u64,
    tool: Option<&str>,
) -> Value {
    let (object, choice) = match (kind, tool) {
        (TextKind::Chat, Some(name)) => (
            "chat.completion",
            json!({
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "id": format!("call_{id}"),
                        "type": "function",
                        "function": {"name": name, "arguments": tool_arguments(n)},
                    }],
                },
                "finish_reason": "tool_calls",
            }),
        ),
        (TextKind::Chat, None) => (
            "chat.completion",
            json!({
                "index": 0,
                "message": {"role": "assistant", "content": full_text(n)},
                "finish_reason": "stop",
            }),
        ),
        (TextKind::Completion, _) => (
            "text_completion",
            json!({
                "index": 0,
                "text": full_text(n),
                "logprobs": null,
                "finish_reason": "stop",
            }),
        ),
    };
    json!({
        "id": id,
        "object": object,
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage(prompt, n),
    })
}

/// Builds the events of one streamed completion.
pub struct ChunkBuilder<'a> {
    pub kind: TextKind,
    pub id: &'a str,
    pub created: u64,
    pub model: &'a str,
    /// With `stream_options.include_usage`, every chunk carries `"usage"`.
    pub include_usage: bool,
}

impl ChunkBuilder<'_> {
    fn object(&self) -> &'static str {
        match self.kind {
            TextKind::Chat => "chat.completion.chunk",
            TextKind::Completion => "text_completion",
        }
    }

    fn chunk(&self, choice: Value) -> String {
        let mut v = json!({
            "id": self.id,
            "object": self.object(),
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        });
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        v.to_string()
    }

    /// The chat role-only chunk.
    pub fn role(&self) -> String {
        self.chunk(json!({
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": null,
            "finish_reason": null,
        }))
    }

    pub fn content(&self, text: &str) -> String {
        match self.kind {
            TextKind::Chat => self.chunk(json!({
                "index": 0,
                "delta": {"content": text},
                "logprobs": null,
                "finish_reason": null,
            })),
            TextKind::Completion => self.chunk(json!({
                "index": 0,
                "text": text,
                "logprobs": null,
                "finish_reason": null,
            })),
        }
    }

    /// One piece of a chat tool call's arguments; the first also names the call and function.
    pub fn tool_call(&self, first: Option<&str>, arguments: &str) -> String {
        let mut call = json!({"index": 0, "function": {"arguments": arguments}});
        if let Some(name) = first {
            call["id"] = json!(format!("call_{}", self.id));
            call["type"] = json!("function");
            call["function"]["name"] = json!(name);
        }
        self.chunk(json!({
            "index": 0,
            "delta": {"tool_calls": [call]},
            "logprobs": null,
            "finish_reason": null,
        }))
    }

    pub fn finish(&self, reason: &str) -> String {
        match self.kind {
            TextKind::Chat => self.chunk(json!({
                "index": 0,
                "delta": {},
                "logprobs": null,
                "finish_reason": reason,
            })),
            TextKind::Completion => self.chunk(json!({
                "index": 0,
                "text": "",
                "logprobs": null,
                "finish_reason": reason,
            })),
        }
    }

    /// The trailing usage chunk (empty `choices`).
    pub fn usage(&self, prompt: u64, completion: u64) -> String {
        json!({
            "id": self.id,
            "object": self.object(),
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage(prompt, completion),
        })
        .to_string()
    }
}

/// The inputs of an embeddings request, one entry per vector to return.
pub fn embedding_inputs(body: &Value) -> Vec<Value> {
    match body.get("input") {
        Some(Value::Array(items)) if items.iter().all(Value::is_number) && !items.is_empty() => {
            vec![Value::Array(items.clone())]
        }
        Some(Value::Array(items)) => items.clone(),
        Some(other) => vec![other.clone()],
        None => Vec::new(),
    }
}

/// A small deterministic unit vector derived from the input text.
pub fn embedding_vector(input: &Value) -> Vec<f64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let raw: Vec<f64> = (0..8)
        .map(|i| {
            let bits = (h.rotate_left(i * 8) & 0xffff) as f64;
            bits / 65535.0 * 2.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        return raw;
    }
    raw.iter()
        .map(|x| ((x / norm) * 1e6).round() / 1e6)
        .collect()
}

/// A vector as `encoding_format: "base64"` sends it: little-endian f32s, base64 with padding.
pub fn base64_f32(values: &[f64]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group.first().copied().unwrap_or(0),
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Embeddings as floats, or base64 when the request asks (the official SDKs ask by default).
pub fn embeddings(model: &str, body: &Value) -> Value {
    let inputs = embedding_inputs(body);
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let vector = embedding_vector(input);
            let embedding = if base64 {
                json!(base64_f32(&vector))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let prompt: u64 = inputs.iter().map(count_words).sum();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    })
}

/// What a Responses API answer holds: text, or a call of the named function.
pub struct ResponseShape<'a> {
    pub n_id: u64,
    pub created: u64,
    pub model: &'a str,
    pub n: u64,
    pub prompt: u64,
    pub tool: Option<&'a str>,
}

impl ResponseShape<'_> {
    fn item_id(&self) -> String {
        match self.tool {
            Some(_) => format!("fc_sim_{}", self.n_id),
            None => format!("msg_sim_{}", self.n_id),
        }
    }

    /// The output item, finished (`done`) or as first announced (empty, in progress).
    fn item(&self, done: bool) -> Value {
        let status = if done { "completed" } else { "in_progress" };
        match self.tool {
            Some(name) => json!({
                "type": "function_call",
                "id": self.item_id(),
                "call_id": format!("call_sim_{}", self.n_id),
                "name": name,
                "arguments": if done { tool_arguments(self.n) } else { String::new() },
                "status": status,
            }),
            None => json!({
                "type": "message",
                "id": self.item_id(),
                "status": status,
                "role": "assistant",
                "content": if done { json!([self.text_part(true)]) } else { json!([]) },
            }),
        }
    }

    fn text_part(&self, done: bool) -> Value {
        let text = if done {
            full_text(self.n)
        } else {
            String::new()
        };
        json!({"type": "output_text", "text": text, "annotations": []})
    }

    /// The response object: `completed` with output and usage, or `in_progress` and empty.
    pub fn object(&self, done: bool) -> Value {
        json!({
            "id": format!("resp_sim_{}", self.n_id),
            "object": "response",
            "created_at": self.created,
            "status": if done { "completed" } else { "in_progress" },
            "error": null,
            "incomplete_details": null,
            "instructions": null,
            "model": self.model,
            "output": if done { json!([self.item(true)]) } else { json!([]) },
            "parallel_tool_calls": true,
            "temperature": null,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": null,
            "metadata": {},
            "usage": if done {
                json!({
                    "input_tokens": self.prompt,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": self.n,
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": self.prompt + self.n,
                })
            } else {
                Value::Null
            },
        })
    }
}

/// The typed events of one streamed Responses API answer, numbered in order as OpenAI does.
pub struct ResponseEvents<'a> {
    pub shape: ResponseShape<'a>,
    pub sequence: u64,
}

impl ResponseEvents<'_> {
    /// `(event type, JSON data)`; the type is also the data's first field, `type`, followed by
    /// `sequence_number`, in the order OpenAI writes them (serde_json would sort them).
    fn event(&mut self, kind: &str, data: Value) -> (String, String) {
        let rest = data.to_string();
        let fields = rest
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .unwrap_or_default();
        let sep = if fields.is_empty() { "" } else { "," };
        let head = format!(
            r#"{{"type":{},"sequence_number":{}"#,
            json!(kind),
            self.sequence
        );
        self.sequence += 1;
        (kind.to_string(), format!("{head}{sep}{fields}}}"))
    }

    /// Sent with the headers, before any output.
    pub fn opening(&mut self) -> Vec<(String, String)> {
        let mut events = vec![
            self.event(
                "response.created",
                json!({"response": self.shape.object(false)}),
            ),
            self.event(
                "response.in_progress",
                json!({"response": self.shape.object(false)}),
            ),
            self.event(
                "response.output_item.added",
                json!({"output_index": 0, "item": self.shape.item(false)}),
            ),
        ];
        if self.shape.tool.is_none() {
            let part = json!({
                "item_id": self.shape.item_id(),
                "output_index": 0,
                "content_index": 0,
                "part": self.shape.text_part(false),
            });
            events.push(self.event("response.content_part.added", part));
        }
        events
    }

    /// The output pieces, one event each: text tokens or tool-call argument pieces.
    pub fn deltas(&mut self) -> Vec<(String, String)> {
        let item_id = self.shape.item_id();
        match self.shape.tool {
            Some(_) => tool_argument_pieces(self.shape.n)
                .into_iter()
                .map(|piece| {
                    let data = json!({"item_id": item_id, "output_index": 0, "delta": piece});
                    self.event("response.function_call_arguments.delta", data)
                })
                .collect(),
            None => (1..=self.shape.n)
                .map(|i| {
                    let data = json!({
                        "item_id": item_id,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": token_text(i),
                        "logprobs": [],
                    });
                    self.event("response.output_text.delta", data)
                })
                .collect(),
        }
    }

    /// After the last output: the `.done` echoes and `response.completed` with usage.
    pub fn closing(&mut self) -> Vec<(String, String)> {
        let item_id = self.shape.item_id();
        let mut events = Vec::new();
        match self.shape.tool {
            Some(name) => {
                let data = json!({
                    "item_id": item_id,
                    "output_index": 0,
                    "name": name,
                    "arguments": tool_arguments(self.shape.n),
                });
                events.push(self.event("response.function_call_arguments.done", data));
            }
            None => {
                let text = json!({
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "text": full_text(self.shape.n),
                    "logprobs": [],
                });
                events.push(self.event("response.output_text.done", text));
                let part = json!({
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "part": self.shape.text_part(true),
                });
                events.push(self.event("response.content_part.done", part));
            }
        }
        let item = json!({"output_index": 0, "item": self.shape.item(true)});
        events.push(self.event("response.output_item.done", item));
        let done = json!({"response": self.shape.object(true)});
        events.push(self.event("response.completed", done));
        events
    }
}

pub fn models_list(model: &str, created: u64) -> Value {
    json!({
        "object": "list",
        "data": [{"id": model, "object": "model", "created": created, "owned_by": "model-sim"}],
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn full_text_is_the_concatenated_stream() {
        assert_eq!(full_text(3), "tok1 tok2 tok3 ");
        assert_eq!(full_text(0), "");
    }

    #[test]
    fn prompt_tokens_counts_words_in_messages_and_prompts() {
        let chat = json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello there world"}]},
        ]});
        assert_eq!(prompt_tokens(&chat), 5);
        assert_eq!(prompt_tokens(&json!({"prompt": ["a b", "c"]})), 3);
    }

    #[test]
    fn embeddings_return_one_unit_vector_per_input() {
        let v = embeddings("m", &json!({"input": ["a", "b c"]}));
        let data = v["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        for (i, item) in data.iter().enumerate() {
            assert_eq!(item["index"], i);
            let vec: Vec<f64> = serde_json::from_value(item["embedding"].clone()).unwrap();
            let norm: f64 = vec.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-3);
        }
        assert_eq!(
            embeddings("m", &json!({"input": [1, 2, 3]}))["data"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(embedding_vector(&json!("x")), embedding_vector(&json!("x")));
    }

    #[test]
    fn only_a_forcing_tool_choice_makes_a_tool_call() {
        let chat_tools = json!([
            {"type": "function", "function": {"name": "first"}},
            {"type": "function", "function": {"name": "second"}},
        ]);
        let responses_tools = json!([{"type": "function", "name": "lookup"}]);
        let cases = [
            (
                json!({"tools": chat_tools, "tool_choice": "required"}),
                Some("first"),
            ),
            (
                json!({"tools": chat_tools, "tool_choice": {"type": "function", "function": {"name": "second"}}}),
                Some("second"),
            ),
            (
                json!({"tools": responses_tools, "tool_choice": "required"}),
                Some("lookup"),
            ),
            (
                json!({"tools": responses_tools, "tool_choice": {"type": "function", "name": "lookup"}}),
                Some("lookup"),
            ),
            (json!({"tools": chat_tools, "tool_choice": "auto"}), None),
            (json!({"tools": chat_tools, "tool_choice": "none"}), None),
            (json!({"tools": chat_tools}), None),
            (json!({"tool_choice": "required"}), None),
            (json!({"tools": [], "tool_choice": "required"}), None),
        ];
        for (req, want) in cases {
            assert_eq!(forced_tool(&req).as_deref(), want, "{req}");
        }
    }

    #[test]
    fn tool_argument_pieces_join_into_a_json_object() {
        for n in [0, 1, 3] {
            let pieces = tool_argument_pieces(n);
            assert_eq!(pieces.len() as u64, n.max(1));
            let v: Value = serde_json::from_str(&pieces.concat()).unwrap();
            assert_eq!(v, json!({"text": full_text(n)}));
        }
    }

    #[test]
    fn streamed_response_events_are_numbered_and_end_completed_with_usage() {
        for tool in [None, Some("lookup")] {
            let mut events = ResponseEvents {
                shape: ResponseShape {
                    n_id: 7,
                    created: 1,
                    model: "m",
                    n: 2,
                    prompt: 3,
                    tool,
                },
                sequence: 0,
            };
            let mut all = events.opening();
            all.extend(events.deltas());
            all.extend(events.closing());
            for (i, (name, data)) in all.iter().enumerate() {
                assert!(
                    data.starts_with(&format!(r#"{{"type":"{name}","#)),
                    "{data}"
                );
                let v: Value = serde_json::from_str(data).unwrap();
                assert_eq!(v["type"], name.as_str());
                assert_eq!(v["sequence_number"], i);
            }
            let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names[0], "response.created");
            let delta = if tool.is_some() {
                "response.function_call_arguments.delta"
            } else {
                "response.output_text.delta"
            };
            assert_eq!(names.iter().filter(|n| **n == delta).count(), 2);
            let last: Value = serde_json::from_str(&all.last().unwrap().1).unwrap();
            assert_eq!(last["type"], "response.completed");
            assert_eq!(last["response"]["status"], "completed");
            assert_eq!(last["response"]["usage"]["output_tokens"], 2);
            let item = &last["response"]["output"][0];
            match tool {
                Some(name) => {
                    assert_eq!(item["name"], name);
                    assert_eq!(item["arguments"], tool_arguments(2));
                }
                None => assert_eq!(item["content"][0]["text"], "tok1 tok2 "),
            }
        }
    }

    #[test]
    fn base64_embeddings_are_little_endian_f32() {
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(base64_f32(&[0.0, 0.0, 0.0]), "AAAAAAAAAAAAAAAA");
        let v = embeddings("m", &json!({"input": "x", "encoding_format": "base64"}));
        let encoded = v["data"][0]["embedding"].as_str().unwrap();
        assert_eq!(encoded, base64_f32(&embedding_vector(&json!("x"))));
        assert_eq!(encoded.len(), 44, "8 floats = 32 bytes");
    }

    #[test]
    fn error_body_has_openai_shape() {
        let v: Value = serde_json::from_str(&error_body("m", "t", "c")).unwrap();
        assert_eq!(
            v,
            json!({"error": {"message": "m", "type": "t", "param": null, "code": "c"}})
        );
    }
}
