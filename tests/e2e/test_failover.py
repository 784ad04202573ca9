"""Sequential failover through Envoy's retry policy, in real Envoy with the real .wasm."""
import time

import pytest


def body_model(sim) -> str:
    last = sim.stats()["last_request"]
    import json
    return json.loads(last["body"])["model"]


def test_default_pool_is_served_by_its_first_model(trio):
    r = trio.envoy.chat("default")
    assert r.status_code == 200, r.text
    assert r.headers["x-model-router-model"] == "m1"
    assert r.headers["x-model-router-attempts"] == "1"
    assert trio.received() == {"m1": 1, "m2": 0, "m3": 0}
    assert body_model(trio.sims["m1"]) == "up/m1"
    assert r.json()["model"] == "up/m1"


@pytest.mark.parametrize("fault", ["429", "503", "500", "refuse", "reset"])
def test_first_model_failure_is_served_by_second_model_in_the_same_request(trio, fault):
    trio.sims["m1"].set(fail=fault)
    r = trio.envoy.chat("default")
    assert r.status_code == 200, r.text
    assert r.headers["x-model-router-model"] == "m2"
    assert r.headers["x-model-router-attempts"] == "2"
    assert body_model(trio.sims["m2"]) == "up/m2"
    assert trio.received()["m3"] == 0


def test_two_models_down_503_and_refused_third_serves(trio):
    trio.sims["m1"].set(fail="503")
    trio.sims["m2"].set(fail="refuse")
    r = trio.envoy.chat("default")
    assert r.status_code == 200, r.text
    assert r.headers["x-model-router-model"] == "m3"
    assert r.headers["x-model-router-attempts"] == "3"
    assert body_model(trio.sims["m3"]) == "up/m3"


def test_all_down_answers_an_openai_error_after_one_attempt_per_model(trio):
    trio.sims["m1"].set(fail="503")
    trio.sims["m2"].set(fail="429")
    trio.sims["m3"].set(fail="refuse")
    started = time.monotonic()
    r = trio.envoy.chat("default", timeout=10)
    elapsed = time.monotonic() - started
    assert r.status_code in (429, 503), r.text
    error = r.json()["error"]
    assert error["message"] and "type" in error and "code" in error
    assert trio.received() == {"m1": 1, "m2": 1, "m3": 0}
    # Bounded, not a performance figure: all three attempts fail fast, nothing waits on a timeout.
    assert elapsed < 5, elapsed


def test_all_refused_gets_an_openai_shaped_error_not_an_envoy_page(trio):
    for sim in trio.sims.values():
        sim.set(fail="refuse")
    r = trio.envoy.chat("default", timeout=10)
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert "upstream" in error["message"]
    assert error["type"] == "upstream_error"


def test_model_in_cooldown_is_skipped_by_the_next_request_without_being_tried(trio):
    trio.sims["m1"].set(fail="429", retry_after=30)
    assert trio.envoy.chat("default").headers["x-model-router-model"] == "m2"
    trio.sims["m1"].reset()
    for _ in range(5):
        r = trio.envoy.chat("default")
        assert r.headers["x-model-router-model"] == "m2"
        assert r.headers["x-model-router-attempts"] == "1"
    assert trio.sims["m1"].requests() == 0


def test_cooldown_ends_and_the_first_model_serves_again(sims, router):
    models = [sims(f"m{i}", ttft_ms=5, output_tokens=2) for i in (1, 2)]
    r = router(models, {"default": ["m1", "m2"]}, settings={"cooldown_base_ms": 300, "cooldown_max_ms": 300})
    models[0].set(fail="503")
    assert r.envoy.chat("default").headers["x-model-router-model"] == "m2"
    models[0].set(fail="none")
    time.sleep(0.5)
    assert r.envoy.chat("default").headers["x-model-router-model"] == "m1"


def test_streamed_request_passes_through_event_by_event(sims, router):
    sim = sims("s", ttft_ms=5, tokens_per_sec=20, output_tokens=10)
    r = router([sim], {"default": ["s"]})
    arrivals = []
    with r.envoy.post("/v1/chat/completions",
                      {"model": "default", "stream": True, "messages": []}, stream=True) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith(b"data:"):
                arrivals.append((time.monotonic(), line))
    assert arrivals[-1][1] == b"data: [DONE]"
    content_events = [t for t, line in arrivals if b'"content":"tok' in line]
    assert len(content_events) == 10
    # Tokens are 50 ms apart at the source; buffered delivery would bunch them together.
    assert content_events[-1] - content_events[0] > 0.3


def test_client_sent_routing_headers_are_ignored(trio):
    spoofed = {
        "x-model-router-cluster": "mr.model.2",
        "x-model-router-attempt": "token=0-1;len=1",
        "x-envoy-max-retries": "0",
        "x-envoy-retry-on": "",
    }
    trio.sims["m1"].set(fail="503")
    r = trio.envoy.post("/v1/chat/completions", {"model": "default", "messages": []}, headers=spoofed)
    assert r.status_code == 200, r.text
    assert r.headers["x-model-router-model"] == "m2"
    assert trio.received()["m3"] == 0
    assert body_model(trio.sims["m2"]) == "up/m2"


def test_exact_model_name_goes_to_that_model_only(trio):
    r = trio.envoy.chat("m3")
    assert r.headers["x-model-router-model"] == "m3"
    assert body_model(trio.sims["m3"]) == "up/m3"
    trio.sims["m2"].set(fail="503")
    r = trio.envoy.chat("m2")
    assert r.status_code == 503
    assert trio.received() == {"m1": 0, "m2": 1, "m3": 1}


def test_twenty_model_pool_fails_over_to_its_last_model(sims, router):
    models = [sims(f"p{i}", ttft_ms=1, output_tokens=1) for i in range(20)]
    for sim in models[:19]:
        sim.set(fail="503")
    r = router(models, {"big-pool": [s.name for s in models]})
    resp = r.envoy.chat("big-pool", timeout=20)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-model-router-model"] == "p19"
    assert resp.headers["x-model-router-attempts"] == "20"
    assert all(n == 1 for n in r.received().values())


def test_api_key_from_environment_replaces_client_authorization(sims, router):
    sim = sims("keyed", ttft_ms=1)
    r = router([sim], {"default": ["keyed"]},
               extra_model_fields={"keyed": {"api_key_env": "MR_TEST_KEY"}},
               env={"MR_TEST_KEY": "sk-test-123"})
    resp = r.envoy.post("/v1/chat/completions", {"model": "default", "messages": []},
                        headers={"authorization": "Bearer client-token"})
    assert resp.status_code == 200
    headers = sim.stats()["last_request"]["headers"]
    assert headers["authorization"] == "Bearer sk-test-123"
    assert "sk-test-123" not in resp.text and "sk-test-123" not in str(resp.headers)
    assert "sk-test-123" not in r.envoy.log_text()


def test_body_with_model_last_and_escapes_is_rewritten_exactly(trio):
    body = '{"messages":[{"role":"user","content":"a \\"model\\": \\"x\\" b"}],"stream":false,"model":"DEFAULT"}'
    r = trio.envoy.post("/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    import json
    received = json.loads(trio.sims["m1"].stats()["last_request"]["body"])
    assert received == {**json.loads(body), "model": "up/m1"}


def test_non_streamed_requests_get_the_longer_attempt_deadline(sims, router):
    """The first-byte deadline (attempt_timeout_ms) is for streams; a non-streamed answer only
    starts when the completion is done, so it gets non_stream_attempt_timeout_ms instead."""
    slow = sims("slow", ttft_ms=1500, output_tokens=2)
    fast = sims("fast", ttft_ms=1, output_tokens=2)
    r = router([slow, fast], {"default": ["slow", "fast"]},
               settings={"attempt_timeout_ms": 500, "non_stream_attempt_timeout_ms": 3000,
                         "stream_idle_timeout_ms": 8000})
    resp = r.envoy.chat("default")
    assert resp.status_code == 200, resp.text
    assert (resp.headers["x-model-router-model"], resp.headers["x-model-router-attempts"]) == ("slow", "1")
    slow.set(fail="hang")
    resp = r.envoy.chat("default", timeout=20)
    assert resp.headers["x-model-router-model"] == "fast"
