"""A fleet is many Envoys, each learning from its own traffic (docs/scale-out.md): two
replicas in front of the same simulated models."""
import collections
import threading

import pytest
import requests

from harness import Router


@pytest.fixture
def replicas(tmp_path):
    """Factory: two routers (two Envoy processes) with the same config and models."""
    started = []

    def make(models, pools, settings=None):
        pair = []
        for name in ("replica-a", "replica-b"):
            workdir = tmp_path / name
            workdir.mkdir()
            pair.append(Router(workdir, models, pools, settings=settings))
        started.extend(pair)
        return pair

    yield make
    for r in started:
        r.stop()


def status(r) -> dict:
    models = requests.get(f"{r.envoy.url}/model-router/status", timeout=5,
                          headers={"connection": "close"}).json()["models"]
    return {m["name"]: m for m in models}


def test_each_replica_learns_the_fast_model_from_its_own_traffic(sims, replicas):
    quick = sims("quick", ttft_ms=30, tokens_per_sec=200, output_tokens=5)
    steady = sims("steady", ttft_ms=250, tokens_per_sec=200, output_tokens=5)
    a, b = replicas([quick, steady], {"default": ["steady", "quick"]})

    for _ in range(4):  # cold start: a measures both models
        a.envoy.stream_chat("default:latency")
    picks_a = collections.Counter(a.envoy.stream_chat("default:latency") for _ in range(20))
    assert picks_a["quick"] >= 16, picks_a
    assert status(a)["quick"]["samples"] > 0

    # Nothing a learned reached b: it has no numbers and starts cold.
    assert {m["samples"] for m in status(b).values()} == {0}, status(b)
    learned_by_a = {name: m["samples"] for name, m in status(a).items()}
    for _ in range(4):
        b.envoy.stream_chat("default:latency")
    picks_b = collections.Counter(b.envoy.stream_chat("default:latency") for _ in range(20))
    assert picks_b["quick"] >= 16, picks_b
    # ...and b's traffic taught a nothing either.
    assert {name: m["samples"] for name, m in status(a).items()} == learned_by_a


def test_each_replica_pays_its_own_first_failover(sims, replicas):
    bad = sims("bad", ttft_ms=5, output_tokens=3, fail="503")
    good = sims("good", ttft_ms=5, output_tokens=3)
    # A cooldown far longer than the test, so each replica meets the failure exactly once.
    a, b = replicas([bad, good], {"default": ["bad", "good"]},
                    settings={"cooldown_base_ms": 600000, "cooldown_max_ms": 600000})

    attempts = []
    for r in (a, a, b, b):
        resp = r.envoy.chat("default")
        assert resp.status_code == 200 and resp.headers["x-model-router-model"] == "good"
        attempts.append(resp.headers["x-model-router-attempts"])
    # a fails over once, then skips bad; b learns nothing from a and fails over once too.
    assert attempts == ["2", "1", "2", "1"], attempts
    assert bad.requests() == 2, "bad is tried once per replica"
    assert status(a)["bad"]["state"] == "cooling"
    assert status(b)["bad"]["state"] == "cooling"


def test_in_flight_counts_are_per_replica(sims, replicas):
    slow = sims("slow", ttft_ms=5, tokens_per_sec=10, output_tokens=40)  # about 4 s per stream
    other = sims("other", ttft_ms=5, output_tokens=3)
    a, b = replicas([slow, other], {"default": ["slow", "other"]})
    started = threading.Semaphore(0)

    def hold_stream():
        with a.envoy.post("/v1/chat/completions", {"model": "slow", "stream": True, "messages": []},
                          stream=True, timeout=30) as resp:
            for n, _ in enumerate(resp.iter_content(chunk_size=None)):
                if n == 0:
                    started.release()

    streams = [threading.Thread(target=hold_stream, daemon=True) for _ in range(3)]
    for t in streams:
        t.start()
    for _ in streams:
        assert started.acquire(timeout=20), "a stream did not start"
    # The load term that spreads traffic sees a's three streams on a only: b would send
    # its next request to slow as if slow were idle.
    assert slow.stats()["in_flight"] == 3
    assert status(a)["slow"]["in_flight"] == 3, status(a)["slow"]
    assert status(b)["slow"]["in_flight"] == 0, status(b)["slow"]
    for t in streams:
        t.join(timeout=30)
        assert not t.is_alive()
