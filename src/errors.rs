//! Errors the router answers itself, in OpenAI's shape:
//! `{"error":{"message","type","param","code"}}`, so SDKs raise their proper error classes.

use crate::body_scan::ScanError;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub status: u32,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: &'static str,
}

impl ClientError {
    fn invalid_request(
        status: u32,
        code: &'static str,
        param: Option<&'static str>,
        message: String,
    ) -> Self {
        ClientError {
            status,
            message,
            kind: "invalid_request_error",
            param,
            code,
        }
    }

    pub fn body(&self) -> String {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
        .to_string()
    }

    pub fn from_scan(error: ScanError) -> Self {
        let (code, param, message) = match error {
            ScanError::Malformed { at, expected } => (
                "invalid_json",
                None,
                format!("We could not parse the JSON body of your request: expected {expected} at byte {at}."),
            ),
            ScanError::NotAnObject => (
                "invalid_json",
                None,
                "The request body must be a JSON object.".to_string(),
            ),
            ScanError::TooDeep => (
                "invalid_json",
                None,
                format!("The JSON body is nested deeper than {} levels.", crate::body_scan::MAX_DEPTH),
            ),
            ScanError::MissingModel => (
                "missing_model",
                Some("model"),
                "You must provide a model parameter.".to_string(),
            ),
            ScanError::ModelNotString => (
                "invalid_type",
                Some("model"),
                "The model parameter must be a string.".to_string(),
            ),
            ScanError::ModelNotUtf8 => (
                "invalid_value",
                Some("model"),
                "The model parameter is not a valid UTF-8 string.".to_string(),
            ),
            ScanError::DuplicateModel => (
                "duplicate_model",
                Some("model"),
                "The request body has more than one top-level \"model\" key; send exactly one.".to_string(),
            ),
        };
        Self::invalid_request(400, code, param, message)
    }

    pub fn unknown_model(requested: &str) -> Self {
        Self::invalid_request(
            404,
            "model_not_found",
            Some("model"),
            format!("The model `{requested}` does not exist: it is neither a model nor a pool of this router. GET /v1/models lists what is served."),
        )
    }

    pub fn unknown_strategy(requested: &str, alias: &str) -> Self {
        Self::invalid_request(
            404,
            "model_not_found",
            Some("model"),
            format!("The model `{requested}` does not exist: pool `{alias}` has the strategies `{alias}` (failover), `{alias}:latency` and `{alias}:throughput`."),
        )
    }

    pub fn body_too_large(limit: u64) -> Self {
        Self::invalid_request(
            413,
            "request_too_large",
            None,
            format!("The request body is larger than this router accepts ({limit} bytes)."),
        )
    }

    pub fn body_required() -> Self {
        Self::invalid_request(
            400,
            "missing_body",
            None,
            "This endpoint needs a JSON request body with a model parameter.".to_string(),
        )
    }

    /// `allowed` is the method the path takes, e.g. "POST with a JSON body" or "GET".
    pub fn method_not_allowed(method: &str, path: &str, allowed: &str) -> Self {
        Self::invalid_request(
            405,
            "method_not_allowed",
            None,
            format!("{method} is not supported on {path}; use {allowed}."),
        )
    }

    pub fn unknown_path(path: &str) -> Self {
        Self::invalid_request(
            404,
            "unknown_url",
            None,
            format!("Unrecognized request URL ({path}): this router serves the OpenAI model endpoints and GET /v1/models."),
        )
    }

    pub fn internal(message: &str) -> Self {
        ClientError {
            status: 500,
            message: message.to_string(),
            kind: "server_error",
            param: None,
            code: "router_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_openai_shape_and_status() {
        let cases = [
            (
                ClientError::from_scan(ScanError::DuplicateModel),
                400,
                "duplicate_model",
            ),
            (
                ClientError::from_scan(ScanError::MissingModel),
                400,
                "missing_model",
            ),
            (
                ClientError::from_scan(ScanError::Malformed {
                    at: 3,
                    expected: "x",
                }),
                400,
                "invalid_json",
            ),
            (ClientError::unknown_model("nope"), 404, "model_not_found"),
            (ClientError::body_too_large(10), 413, "request_too_large"),
        ];
        for (error, status, code) in cases {
            let v: serde_json::Value = serde_json::from_str(&error.body()).unwrap();
            assert_eq!(error.status, status);
            assert_eq!(v["error"]["code"], code);
            assert!(v["error"]["message"].as_str().unwrap().len() > 10);
            assert!(v["error"]["type"].is_string());
            assert!(v["error"].as_object().unwrap().contains_key("param"));
        }
    }

    #[test]
    fn user_text_is_escaped_in_error_bodies() {
        let body = ClientError::unknown_model("a\"}b").body();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains("a\"}b"));
    }
}
