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

/// A complete non-streamed completion.
pub fn completion(
    kind: TextKind,
    id: &str,
    created: u64,
    model: &str,
    n: u64,
    prompt: u64,
) -> Value {
    let text = full_text(n);
    match kind {
        TextKind::Chat => json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }],
            "usage": usage(prompt, n),
        }),
        TextKind::Completion => json!({
            "id": id,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "text": text,
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": usage(prompt, n),
        }),
    }
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

    pub fn finish(&self) -> String {
        match self.kind {
            TextKind::Chat => self.chunk(json!({
                "index": 0,
                "delta": {},
                "logprobs": null,
                "finish_reason": "stop",
            })),
            TextKind::Completion => self.chunk(json!({
                "index": 0,
                "text": "",
                "logprobs": null,
                "finish_reason": "stop",
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

pub fn embeddings(model: &str, body: &Value) -> Value {
    let inputs = embedding_inputs(body);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            json!({"object": "embedding", "index": i, "embedding": embedding_vector(input)})
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

/// A minimal completed Responses API object.
pub fn response_object(n_id: u64, created: u64, model: &str, n: u64, prompt: u64) -> Value {
    json!({
        "id": format!("resp_sim_{n_id}"),
        "object": "response",
        "created_at": created,
        "status": "completed",
        "model": model,
        "output": [{
            "type": "message",
            "id": format!("msg_sim_{n_id}"),
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": full_text(n), "annotations": []}],
        }],
        "usage": {
            "input_tokens": prompt,
            "output_tokens": n,
            "total_tokens": prompt + n,
        },
    })
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
    fn error_body_has_openai_shape() {
        let v: Value = serde_json::from_str(&error_body("m", "t", "c")).unwrap();
        assert_eq!(
            v,
            json!({"error": {"message": "m", "type": "t", "param": null, "code": "c"}})
        );
    }
}
