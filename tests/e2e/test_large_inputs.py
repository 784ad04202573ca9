"""Correctness at the sizes the hot path was optimised for: megabyte bodies with `model` last,
rewrites at the body's very end, uploads that arrive in many pieces, and long streams."""
import hashlib
import json

import requests


def padded_body(size: int, model: str) -> str:
    """A chat body of about `size` bytes whose last key is `model`, ending right after it."""
    head = '{"messages":[{"role":"user","content":"'
    tail = f'"}}],"stream":false,"model":"{model}"}}'
    filler = ("lorem \\\"ipsum\\\" model: dolor " * (size // 28 + 1))[: size - len(head) - len(tail)]
    return head + filler + tail


def test_megabyte_body_with_model_last_reaches_the_model_rewritten_exactly(sims, router):
    m1 = sims("m1", ttft_ms=1, output_tokens=2)
    r = router([m1], {"default": ["m1"]}, upstream_names={"m1": "vendor/a-much-longer-upstream-name"})
    body = padded_body(1_000_000, "default")
    resp = r.envoy.post("/v1/chat/completions", body)
    assert resp.status_code == 200, resp.text[:300]
    received = m1.stats()["last_request"]["body"]
    expected = body[: -len('"default"}')] + '"vendor/a-much-longer-upstream-name"}'
    assert len(received) == len(expected)
    assert hashlib.sha256(received.encode()).hexdigest() == hashlib.sha256(expected.encode()).hexdigest()


def test_chunked_upload_in_small_pieces_is_rewritten_at_its_very_end(sims, router):
    m1 = sims("m1", ttft_ms=1, output_tokens=2)
    r = router([m1], {"default": ["m1"]}, upstream_names={"m1": "x"})
    body = padded_body(200_000, "default").encode()

    def pieces():
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    resp = requests.post(f"{r.envoy.url}/v1/chat/completions", data=pieces(),
                         headers={"content-type": "application/json"}, timeout=20)
    assert resp.status_code == 200, resp.text[:300]
    received = json.loads(m1.stats()["last_request"]["body"])
    assert received["model"] == "x"
    assert received["messages"] == json.loads(body)["messages"]


def test_failover_resends_the_megabyte_body_rewritten_for_the_second_model(sims, router):
    m1 = sims("m1", ttft_ms=1, output_tokens=2, fail="503")
    m2 = sims("m2", ttft_ms=1, output_tokens=2)
    r = router([m1, m2], {"default": ["m1", "m2"]}, upstream_names={"m1": "one", "m2": "second-model"})
    body = padded_body(1_000_000, "default")
    resp = r.envoy.post("/v1/chat/completions", body)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers["x-model-router-model"] == "m2"
    received = m2.stats()["last_request"]["body"]
    assert received == body[: -len('"default"}')] + '"second-model"}'


def test_stream_of_thousands_of_events_arrives_whole_and_is_measured(sims, router):
    events = 5000
    m1 = sims("m1", ttft_ms=1, output_tokens=events, tokens_per_sec=100_000)
    r = router([m1], {"default": ["m1"]})
    body = {"model": "default:throughput", "stream": True, "max_tokens": events,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "count"}]}
    resp = r.envoy.post("/v1/chat/completions", body, stream=True, timeout=60)
    assert resp.status_code == 200
    contents, usage, done = 0, None, False
    for line in resp.iter_lines():
        if not line.startswith(b"data: "):
            continue
        data = line[len(b"data: "):]
        if data == b"[DONE]":
            done = True
            continue
        chunk = json.loads(data)
        if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
            contents += 1
        if chunk.get("usage"):
            usage = chunk["usage"]
    assert done and contents == events and usage["completion_tokens"] == events
    model = next(m for m in requests.get(f"{r.envoy.url}/model-router/status", timeout=5).json()["models"] if m["name"] == "m1")
    assert model["samples"] >= 1 and model["tokens_per_sec"] > 0
