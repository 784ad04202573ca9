"""What the router answers itself: errors in OpenAI's shape, the model list, pass-through."""

import pytest
import requests


def assert_openai_error(resp, status, code):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code, error
    assert error["message"]


BAD_BODIES = [
    ("invalid json", b"{not json", 400, "invalid_json"),
    ("truncated", b'{"model":"default","messages":[', 400, "invalid_json"),
    ("array", b'[{"model":"default"}]', 400, "invalid_json"),
    ("missing model", b'{"messages":[]}', 400, "missing_model"),
    ("model only nested", b'{"x":{"model":"default"}}', 400, "missing_model"),
    ("number model", b'{"model":42}', 400, "invalid_type"),
    ("null model", b'{"model":null}', 400, "invalid_type"),
    ("duplicate model", b'{"model":"m1","model":"default"}', 400, "duplicate_model"),
    ("unknown model", b'{"model":"gpt-9"}', 404, "model_not_found"),
    ("unknown strategy", b'{"model":"default:cheapest"}', 404, "model_not_found"),
    ("invalid utf-8", b'{"model":"\xff\xfe"}', 400, "invalid_value"),
]


@pytest.mark.parametrize("name,body,status,code", BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_bad_requests_get_openai_errors_and_reach_no_model(trio, name, body, status, code):
    resp = trio.envoy.post("/v1/chat/completions", body)
    assert_openai_error(resp, status, code)
    assert sum(trio.received().values()) == 0


def test_body_over_the_limit_is_413(sims, router):
    sim = sims("m", ttft_ms=1)
    r = router([sim], {"default": ["m"]}, settings={"max_body_bytes": 4096})
    big = b'{"model":"default","pad":"' + b"x" * 5000 + b'"}'
    assert_openai_error(r.envoy.post("/v1/chat/completions", big), 413, "request_too_large")
    # Chunked upload without Content-Length: caught while the body streams in.
    chunks = iter([big[:3000], big[3000:]])
    resp = requests.post(f"{r.envoy.url}/v1/chat/completions", data=chunks,
                         headers={"content-type": "application/json"}, timeout=10)
    assert_openai_error(resp, 413, "request_too_large")
    assert sim.requests() == 0


def test_models_list_has_models_pools_and_strategies(trio):
    resp = requests.get(f"{trio.envoy.url}/v1/models", timeout=5)
    assert resp.status_code == 200
    ids = [m["id"] for m in resp.json()["data"]]
    assert ids == ["m1", "m2", "m3", "default", "default:latency", "default:throughput"]
    one = requests.get(f"{trio.envoy.url}/v1/models/default:latency", timeout=5)
    assert one.json()["id"] == "default:latency"
    assert_openai_error(requests.get(f"{trio.envoy.url}/v1/models/nope", timeout=5), 404, "model_not_found")
    assert sum(trio.received().values()) == 0


def test_other_paths_are_404_without_a_passthrough_model(trio):
    assert_openai_error(requests.get(f"{trio.envoy.url}/healthz", timeout=5), 404, "unknown_url")


def test_other_paths_pass_through_untouched_to_the_passthrough_model(sims, router):
    a, b = sims("a", ttft_ms=1), sims("b", ttft_ms=1)
    r = router([a, b], {"default": ["a", "b"]}, settings={"passthrough_model": "b"})
    resp = requests.post(f"{r.envoy.url}/v1/files", data=b"raw bytes", timeout=5)
    assert resp.status_code == 404  # the simulator's own answer for an unknown path
    last = b.stats()["last_request"]
    assert last["path"] == "/v1/files" and last["body"] == "raw bytes"
    assert a.requests() == 0


def test_request_without_body_on_a_model_path_is_400(trio):
    resp = requests.post(f"{trio.envoy.url}/v1/chat/completions", timeout=5)
    assert_openai_error(resp, 400, "missing_body")


def test_http2_client_is_routed(trio):
    # Prior-knowledge h2c with curl, when available.
    import shutil
    import subprocess
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    out = subprocess.run(
        ["curl", "-s", "--http2-prior-knowledge", "-D", "-", f"{trio.envoy.url}/v1/chat/completions",
         "-H", "content-type: application/json", "-d", '{"model":"default","messages":[]}'],
        capture_output=True, text=True, timeout=20)
    assert "HTTP/2 200" in out.stdout, out.stdout
    assert "x-model-router-model: m1" in out.stdout
