//! What one attempt says about its model, decided from the attempt's events (time passed in).
//!
//! The per-attempt filter feeds headers, body chunks and the end; the meter answers with what
//! to record. Failures count against the model and never as fast samples: an attempt that
//! fails after `t` ms without a first token records "TTFT ≥ t" (censored) and an error.
//!
//! Times and rates are reported as measured, with the number of other requests that were in
//! flight on the model when the attempt started: the stats turn them into what an idle model
//! would show, with the model's own fitted load slope (`stats::LineFit::load_slope`). Ranking multiplies
//! the current load back in, so load is counted once, at decision time, and a model is not
//! penalised twice for traffic it was already carrying when it was measured.

use crate::sse::SseScanner;

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// The first output token arrived.
    FirstToken { ttft_ms: u64 },
    /// The response ended normally: also ends the model's cooldown. Not earlier: a stream
    /// that starts with 200 and then stalls or breaks is not a recovery.
    Completed {
        /// Output tokens/s over the streamed part, when there was one to measure.
        tokens_per_sec: Option<f64>,
        ok: bool,
    },
    /// The model failed this attempt: busy, broken or silent.
    Failed {
        elapsed_ms: u64,
        /// Whether a first token had already arrived (then TTFT is not censored).
        had_first_token: bool,
        retry_after_ms: Option<u64>,
    },
}

#[derive(Debug, Clone)]
pub struct AttemptMeter {
    started_ms: u64,
    /// Other requests in flight on the model when the attempt started.
    others: u32,
    status: Option<u32>,
    streaming: bool,
    scanner: SseScanner,
    first_token_ms: Option<u64>,
    output_events: u64,
    completion_tokens: Option<u64>,
    error_event: bool,
    ended: bool,
}

/// Statuses that say "this model is busy or broken right now", not "this request is bad".
pub fn is_model_failure(status: u32) -> bool {
    status == 429 || status >= 500
}

impl AttemptMeter {
    /// `others`: requests in flight on the model besides this one.
    pub fn start(now_ms: u64, others: u32) -> Self {
        AttemptMeter {
            started_ms: now_ms,
            others,
            status: None,
            streaming: false,
            scanner: SseScanner::new(),
            first_token_ms: None,
            output_events: 0,
            completion_tokens: None,
            error_event: false,
            ended: false,
        }
    }

    /// Other requests in flight on the model when the attempt started; the records' load.
    pub fn others(&self) -> u32 {
        self.others
    }

    fn elapsed(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.started_ms)
    }

    pub fn on_response_headers(
        &mut self,
        status: u32,
        event_stream: bool,
        retry_after_ms: Option<u64>,
        now_ms: u64,
    ) -> Option<Record> {
        self.status = Some(status);
        if is_model_failure(status) {
            self.ended = true;
            return Some(Record::Failed {
                elapsed_ms: self.elapsed(now_ms),
                had_first_token: false,
                retry_after_ms,
            });
        }
        self.streaming = event_stream && (200..300).contains(&status);
        None
    }

    /// Whether body chunks need to be read at all (only streamed successes are measured).
    pub fn wants_body(&self) -> bool {
        self.streaming && !self.ended
    }

    /// `now_ms` is only called for the first output token: later chunks need no clock.
    pub fn on_body_chunk(&mut self, chunk: &[u8], now_ms: impl FnOnce() -> u64) -> Option<Record> {
        if !self.wants_body() {
            return None;
        }
        let report = self.scanner.feed(chunk);
        self.absorb(
            report.output_events,
            report.completion_tokens,
            report.error_event,
        );
        if report.output_events > 0 && self.first_token_ms.is_none() {
            let now_ms = now_ms();
            self.first_token_ms = Some(now_ms);
            return Some(Record::FirstToken {
                ttft_ms: self.elapsed(now_ms),
            });
        }
        None
    }

    fn absorb(&mut self, events: u32, tokens: Option<u64>, error: bool) {
        self.output_events += u64::from(events);
        if tokens.is_some() {
            self.completion_tokens = tokens;
        }
        self.error_event |= error;
    }

    /// The response's last byte arrived.
    pub fn on_end_of_stream(&mut self, now_ms: u64) -> Option<Record> {
        if self.ended || self.status.is_none() {
            return None;
        }
        self.ended = true;
        if !self.streaming {
            return Some(Record::Completed {
                tokens_per_sec: None,
                ok: true,
            });
        }
        let tail = self.scanner.finish();
        self.absorb(tail.output_events, tail.completion_tokens, tail.error_event);
        if self.error_event {
            return Some(Record::Failed {
                elapsed_ms: self.elapsed(now_ms),
                had_first_token: self.first_token_ms.is_some(),
                retry_after_ms: None,
            });
        }
        Some(Record::Completed {
            tokens_per_sec: self.tokens_per_sec(now_ms),
            ok: true,
        })
    }

    /// Tokens after the first over the time since the first: the decode rate, without TTFT.
    fn tokens_per_sec(&self, now_ms: u64) -> Option<f64> {
        let first = self.first_token_ms?;
        let tokens = self.completion_tokens.unwrap_or(self.output_events);
        let span_ms = now_ms.saturating_sub(first);
        (tokens >= 2 && span_ms > 0).then(|| (tokens - 1) as f64 * 1000.0 / span_ms as f64)
    }

    /// Whether the attempt is over without a normal end, so [`Self::on_done`] will judge it.
    pub fn unfinished(&self) -> bool {
        !self.ended
    }

    /// The attempt is over. Without a normal end it failed: refused, reset, timed out, or
    /// cut mid-stream; unless the client went away first, which says nothing about the model.
    pub fn on_done(&mut self, now_ms: u64, client_gone: bool) -> Option<Record> {
        if self.ended {
            return None;
        }
        self.ended = true;
        if client_gone {
            return None;
        }
        Some(Record::Failed {
            elapsed_ms: self.elapsed(now_ms),
            had_first_token: self.first_token_ms.is_some(),
            retry_after_ms: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(content: &str) -> String {
        format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{content}\"}}}}]}}\n\n")
    }

    #[test]
    fn streamed_success_records_ttft_then_decode_rate() {
        let mut m = AttemptMeter::start(1000, 0);
        assert_eq!(m.on_response_headers(200, true, None, 1010), None);
        let role =
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
        assert_eq!(
            m.on_body_chunk(role.as_bytes(), || 1020),
            None,
            "role-only chunk is no token"
        );
        assert_eq!(
            m.on_body_chunk(event("a").as_bytes(), || 1250),
            Some(Record::FirstToken { ttft_ms: 250 })
        );
        for i in 0..10 {
            assert_eq!(
                m.on_body_chunk(event("b").as_bytes(), || 1300 + i * 100),
                None
            );
        }
        m.on_body_chunk(b"data: [DONE]\n\n", || 2250);
        // 11 tokens, 10 after the first, over 1000 ms.
        assert_eq!(
            m.on_end_of_stream(2250),
            Some(Record::Completed {
                tokens_per_sec: Some(10.0),
                ok: true
            })
        );
        assert_eq!(m.on_done(2300, false), None);
    }

    #[test]
    fn chunks_after_the_first_token_need_no_clock() {
        let mut m = AttemptMeter::start(0, 0);
        m.on_response_headers(200, true, None, 0);
        m.on_body_chunk(event("a").as_bytes(), || 10);
        let read = std::cell::Cell::new(false);
        m.on_body_chunk(event("b").as_bytes(), || {
            read.set(true);
            20
        });
        assert!(!read.get(), "one host call per chunk saved");
    }

    #[test]
    fn usage_completion_tokens_beat_event_counts() {
        let mut m = AttemptMeter::start(0, 0);
        m.on_response_headers(200, true, None, 0);
        m.on_body_chunk(event("abc").as_bytes(), || 100);
        m.on_body_chunk(
            b"data: {\"choices\":[],\"usage\":{\"completion_tokens\":41}}\n\n",
            || 1100,
        );
        assert_eq!(
            m.on_end_of_stream(1100),
            Some(Record::Completed {
                tokens_per_sec: Some(40.0),
                ok: true
            })
        );
    }

    #[test]
    fn streamed_responses_api_feeds_ttft_and_decode_rate() {
        let mut m = AttemptMeter::start(0, 0);
        m.on_response_headers(200, true, None, 0);
        let created = "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"output\":[],\"usage\":null}}\n\n";
        assert_eq!(m.on_body_chunk(created.as_bytes(), || 5), None);
        let delta = |text: &str| {
            format!("event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"delta\":\"{text}\"}}\n\n")
        };
        assert_eq!(
            m.on_body_chunk(delta("a").as_bytes(), || 100),
            Some(Record::FirstToken { ttft_ms: 100 })
        );
        m.on_body_chunk(delta("b").as_bytes(), || 600);
        let completed = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"output\":[{\"content\":[{\"text\":\"ab\"}]}],\"usage\":{\"input_tokens\":3,\"output_tokens\":21}}}\n\n";
        m.on_body_chunk(completed.as_bytes(), || 1100);
        // 21 tokens by usage, 20 after the first, over 1000 ms.
        assert_eq!(
            m.on_end_of_stream(1100),
            Some(Record::Completed {
                tokens_per_sec: Some(20.0),
                ok: true
            })
        );
    }

    #[test]
    fn failures_are_never_fast_samples() {
        let cases: &[(&str, u32, Option<u64>)] = &[
            ("429", 429, Some(2000)),
            ("503", 503, None),
            ("500", 500, None),
        ];
        for (name, status, retry_after) in cases {
            let mut m = AttemptMeter::start(0, 0);
            let r = m.on_response_headers(*status, false, *retry_after, 7);
            assert_eq!(
                r,
                Some(Record::Failed {
                    elapsed_ms: 7,
                    had_first_token: false,
                    retry_after_ms: *retry_after
                }),
                "{name}"
            );
            assert_eq!(m.on_done(8, false), None, "{name}: recorded once");
        }
    }

    #[test]
    fn no_response_or_cut_stream_fails_the_attempt() {
        let mut refused = AttemptMeter::start(0, 0);
        assert!(matches!(
            refused.on_done(3, false),
            Some(Record::Failed {
                elapsed_ms: 3,
                had_first_token: false,
                ..
            })
        ));
        let mut cut = AttemptMeter::start(0, 0);
        cut.on_response_headers(200, true, None, 5);
        cut.on_body_chunk(event("x").as_bytes(), || 50);
        assert!(matches!(
            cut.on_done(900, false),
            Some(Record::Failed {
                had_first_token: true,
                ..
            })
        ));
    }

    #[test]
    fn a_client_that_goes_away_says_nothing_about_the_model() {
        let mut waiting = AttemptMeter::start(0, 0);
        assert_eq!(waiting.on_done(1000, true), None);
        let mut streaming = AttemptMeter::start(0, 0);
        streaming.on_response_headers(200, true, None, 5);
        streaming.on_body_chunk(event("x").as_bytes(), || 50);
        assert!(streaming.unfinished());
        assert_eq!(streaming.on_done(900, true), None);
    }

    #[test]
    fn error_event_mid_stream_is_a_failure() {
        let mut m = AttemptMeter::start(0, 0);
        m.on_response_headers(200, true, None, 1);
        m.on_body_chunk(event("x").as_bytes(), || 10);
        m.on_body_chunk(b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n", || 20);
        assert!(matches!(
            m.on_end_of_stream(21),
            Some(Record::Failed {
                had_first_token: true,
                ..
            })
        ));
    }

    #[test]
    fn non_streamed_success_is_a_healthy_outcome_without_samples() {
        let mut m = AttemptMeter::start(0, 0);
        assert_eq!(m.on_response_headers(200, false, None, 300), None);
        assert!(!m.wants_body());
        assert_eq!(
            m.on_end_of_stream(400),
            Some(Record::Completed {
                tokens_per_sec: None,
                ok: true
            })
        );
    }

    #[test]
    fn samples_are_reported_as_measured_with_the_load_they_were_taken_under() {
        let mut m = AttemptMeter::start(0, 2);
        m.on_response_headers(200, true, None, 1);
        assert_eq!(
            m.on_body_chunk(event("a").as_bytes(), || 400),
            Some(Record::FirstToken { ttft_ms: 400 })
        );
        m.on_body_chunk(event("b").as_bytes(), || 500);
        m.on_body_chunk(event("c").as_bytes(), || 600);
        // 2 tokens after the first in 200 ms.
        assert_eq!(
            m.on_end_of_stream(600),
            Some(Record::Completed {
                tokens_per_sec: Some(10.0),
                ok: true
            })
        );
        assert_eq!(m.others(), 2);
    }

    #[test]
    fn client_errors_are_not_model_failures() {
        for status in [400, 401, 404, 413, 422] {
            assert!(!is_model_failure(status), "{status}");
        }
        for status in [429, 500, 502, 503, 504] {
            assert!(is_model_failure(status), "{status}");
        }
    }
}
