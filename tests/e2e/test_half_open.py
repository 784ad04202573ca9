"""Half-open probing: when a model's cooldown runs out, one request probes it; the others keep
skipping it until the probe answers. A model that is still broken costs one attempt per
cooldown, not one per request that arrived meanwhile; a healed one gets its traffic back.

Counts here are bounded by elapsed time only through generous margins (a herd would be an
order of magnitude above them), never asserted as latencies.
"""
import collections
import threading
import time

from harness import wait_until

COOLDOWN_MS = 500
ATTEMPT_TIMEOUT_MS = 1000
WORKERS = 16
LOAD_S = 4.0


def load(router, seconds: float, workers: int):
    """Closed-loop workers sending `default` requests, half of them streamed."""
    results = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(i):
        n = 0
        while not stop.is_set():
            streamed = (i + n) % 2 == 0
            n += 1
            r = router.envoy.chat("default", timeout=10, stream=streamed)
            with lock:
                results.append((r.status_code, r.headers.get("x-model-router-model"), r.text))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(15)
    assert not any(t.is_alive() for t in threads), "a client outlived its 10 s timeout"
    return results


def test_a_model_still_broken_at_cooldown_expiry_gets_one_probe_per_cooldown_then_its_traffic_back(
        sims, router):
    broken = sims("broken", ttft_ms=5, output_tokens=4)
    spare = sims("spare", ttft_ms=5, output_tokens=4)
    r = router([broken, spare], {"default": ["broken", "spare"]},
               settings={"cooldown_base_ms": COOLDOWN_MS, "cooldown_max_ms": COOLDOWN_MS,
                         "attempt_timeout_ms": ATTEMPT_TIMEOUT_MS,
                         "non_stream_attempt_timeout_ms": ATTEMPT_TIMEOUT_MS})
    # A fast failure puts `broken` in cooldown; from then on it hangs, so every request that
    # reaches it while it is still broken holds its attempt for the whole attempt timeout.
    broken.set(fail="503")
    assert r.envoy.chat("default").headers["x-model-router-model"] == "spare"
    broken.set(fail="hang")
    broken.reset()

    started = time.monotonic()
    results = load(r, LOAD_S, WORKERS)
    elapsed = time.monotonic() - started
    reached_broken = broken.requests()
    outcomes = collections.Counter((status, model) for status, model, _ in results)
    print(f"{len(results)} requests in {elapsed:.1f} s: {dict(outcomes)}; "
          f"broken model received {reached_broken}")
    # Failover hides the broken model from every client.
    assert all(status == 200 and model == "spare" for status, model, _ in results), outcomes
    assert len(results) >= 4 * WORKERS
    # Probes are at least one cooldown apart (a failed probe cools the model down again, and a
    # probe's lease lasts one attempt timeout), so over `elapsed` seconds at most
    # elapsed / cooldown + 1 of them. Without the lease every worker's next request would
    # reach it at each expiry: about WORKERS per period, several times this bound.
    bound = int(elapsed * 1000 / COOLDOWN_MS) + 1
    assert 1 <= reached_broken <= bound, (reached_broken, bound)

    # Healed: the next probe succeeds and the pool's first model serves again.
    broken.set(fail="none")
    wait_until(lambda: r.envoy.chat("default").headers.get("x-model-router-model") == "broken",
               timeout=(COOLDOWN_MS + 2 * ATTEMPT_TIMEOUT_MS) / 1000 + 5, what="traffic back on broken")
    after = [r.envoy.chat("default").headers.get("x-model-router-model") for _ in range(10)]
    assert after == ["broken"] * 10, after


def test_a_recovering_model_is_probed_by_one_request_of_a_concurrent_burst(sims, router):
    slow = sims("slow", ttft_ms=400, output_tokens=2)
    spare = sims("spare", ttft_ms=5, output_tokens=2)
    r = router([slow, spare], {"default": ["slow", "spare"]},
               settings={"cooldown_base_ms": COOLDOWN_MS, "cooldown_max_ms": COOLDOWN_MS})
    slow.set(fail="503")
    assert r.envoy.chat("default").headers["x-model-router-model"] == "spare"
    slow.set(fail="none")
    slow.reset()
    time.sleep(COOLDOWN_MS / 1000 + 0.2)  # the cooldown has run out: `slow` is half-open
    # A burst arrives together while the probe (400 ms to answer) is out: only one request
    # may go to `slow`; the rest are served by `spare`.
    barrier = threading.Barrier(12)
    served = []

    def one():
        barrier.wait(5)
        served.append(r.envoy.chat("default").headers.get("x-model-router-model"))

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    counts = collections.Counter(served)
    assert sum(counts.values()) == 12
    assert counts["slow"] == 1 and slow.requests() == 1, counts
    # The probe completed: `slow` is healthy and first in the pool again.
    assert r.envoy.chat("default").headers["x-model-router-model"] == "slow"


def test_a_model_past_its_cooldown_but_never_probed_still_takes_failover(sims, router):
    """After a fleet-wide outage the pool's first model serves again and the others are never
    chosen first, so nobody probes them. They must still catch a failure of the first model:
    storm control skips only models cooling down or being probed. (Found by the soak: 63
    requests failed cleanly while two healthy models sat unprobed.)"""
    first = sims("first", ttft_ms=5, output_tokens=2)
    second = sims("second", ttft_ms=5, output_tokens=2)
    r = router([first, second], {"default": ["first", "second"]},
               settings={"cooldown_base_ms": 300, "cooldown_max_ms": 300})
    first.set(fail="503")
    second.set(fail="503")
    assert r.envoy.chat("default").status_code == 503  # both fail: both cool down
    first.set(fail="none")
    second.set(fail="none")
    time.sleep(0.5)  # both past their cooldown
    assert r.envoy.chat("default").headers["x-model-router-model"] == "first"  # its probe
    first.set(fail="503")
    resp = r.envoy.chat("default")
    assert resp.status_code == 200, resp.text
    assert (resp.headers["x-model-router-model"], resp.headers["x-model-router-attempts"]) == \
        ("second", "2")
