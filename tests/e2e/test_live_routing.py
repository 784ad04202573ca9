"""`:latency` and `:throughput` route on live numbers measured from real traffic in Envoy."""
import collections
from concurrent.futures import ThreadPoolExecutor

import requests


def served(router, model: str, n: int) -> collections.Counter:
    return collections.Counter(router.envoy.stream_chat(model) for _ in range(n))


def status(router) -> dict:
    # A new connection each time, so both Envoy workers get to answer.
    return requests.get(f"{router.envoy.url}/model-router/status", timeout=5,
                        headers={"connection": "close"}).json()


def two_speeds(sims, router, **settings):
    """`quick` answers first but streams slowly; `steady` starts late but streams fast."""
    quick = sims("quick", ttft_ms=30, tokens_per_sec=25, output_tokens=5)
    steady = sims("steady", ttft_ms=250, tokens_per_sec=250, output_tokens=5)
    return router([quick, steady], {"default": ["steady", "quick"]}, settings=settings or None)


def test_latency_goes_to_fast_ttft_and_throughput_to_fast_stream(sims, router):
    r = two_speeds(sims, router)
    served(r, "default:latency", 4)  # warm-up: cold-start probes measure both
    latency = served(r, "default:latency", 20)
    throughput = served(r, "default:throughput", 20)
    assert latency["quick"] >= 16, latency
    assert throughput["steady"] >= 16, throughput
    resp = r.envoy.chat("default:latency")
    assert resp.headers["x-model-router-strategy"] == "latency"


def test_responses_explain_why_the_model_went_first(sims, router):
    r = two_speeds(sims, router)
    first = r.envoy.chat("default:latency")
    assert first.headers["x-model-router-pick"] == "cold-start", first.headers
    served(r, "default:latency", 4)
    picks = collections.Counter(r.envoy.chat("default:latency").headers["x-model-router-pick"]
                                for _ in range(10))
    assert picks["best"] >= 7 and set(picks) <= {"best", "explore"}, picks
    failover = r.envoy.chat("default")
    assert failover.headers["x-model-router-strategy"] == "failover"
    assert "x-model-router-pick" not in failover.headers


def test_routing_follows_a_speed_swap_at_runtime(sims, router):
    # A larger exploration share than the default keeps this sequential test short.
    r = two_speeds(sims, router, explore_share=0.2)
    served(r, "default:latency", 4)
    assert served(r, "default:latency", 10)["quick"] >= 6
    r.sims["quick"].set(ttft_ms=250)
    r.sims["steady"].set(ttft_ms=30)
    recent = collections.deque(maxlen=10)
    for _ in range(60):
        recent.append(r.envoy.stream_chat("default:latency"))
        if len(recent) == 10 and recent.count("steady") >= 8:
            break
    assert recent.count("steady") >= 8, list(recent)


def test_each_model_s_load_slope_is_learned_and_routes_concurrent_traffic(sims, router):
    """One model is faster idle but queues (each request in flight adds a full TTFT); the other
    batches (no slowdown). The router fits each one's slope from its own traffic, and under
    concurrent load the batching model takes most requests."""
    queueing = sims("queueing", ttft_ms=60, tokens_per_sec=400, output_tokens=4, concurrency_slowdown=1.0)
    batching = sims("batching", ttft_ms=80, tokens_per_sec=400, output_tokens=4, concurrency_slowdown=0.0)
    r = router([queueing, batching], {"default": ["queueing", "batching"]})
    with ThreadPoolExecutor(max_workers=6) as pool:
        for width in [1, 2, 4, 6] * 3:
            for name in ("queueing", "batching"):
                list(pool.map(lambda _: r.envoy.stream_chat(name), range(width)))
        slopes = {m["name"]: m["load_slope_ttft"] for m in status(r)["models"]}
        assert slopes["queueing"] > 0.6, slopes
        assert slopes["batching"] < 0.25, slopes
        served_by = collections.Counter()
        for _ in range(4):
            served_by.update(pool.map(lambda _: r.envoy.stream_chat("default:latency"), range(6)))
    assert served_by["batching"] >= 16, served_by


def test_latency_sends_long_prompts_to_the_model_with_the_faster_prefill(sims, router):
    """`snappy` answers short prompts first but its prefill is slow; `prefill` starts later but
    reads long prompts quickly. The router fits each one's TTFT per KiB of request body and
    ranks by the TTFT predicted for the request's own size."""
    snappy = sims("snappy", ttft_ms=20, prefill_ms_per_kib=8, tokens_per_sec=400, output_tokens=4)
    prefill = sims("prefill", ttft_ms=150, prefill_ms_per_kib=0.3, tokens_per_sec=400, output_tokens=4)
    r = router([snappy, prefill], {"default": ["snappy", "prefill"]})
    short, long = "hi", "x" * 40_000
    for name in ("snappy", "prefill"):
        for prompt in (short, long) * 4:
            r.envoy.stream_chat(name, prompt)
    fitted = {m["name"]: m["ttft_ms_per_kib"] for m in status(r)["models"]}
    assert fitted["snappy"] > 4 and fitted["prefill"] < 1.5, fitted
    for prompt, want in ((short, "snappy"), (long, "prefill")):
        picks = collections.Counter(r.envoy.stream_chat("default:latency", prompt) for _ in range(10))
        assert picks[want] >= 8, (len(prompt), picks)


def test_model_that_breaks_streams_loses_latency_traffic(sims, router):
    flaky = sims("flaky", ttft_ms=20, tokens_per_sec=200, output_tokens=6, fail="close-mid-stream",
                 fail_after_events=2)
    solid = sims("solid", ttft_ms=120, tokens_per_sec=200, output_tokens=6)
    r = router([flaky, solid], {"default": ["flaky", "solid"]},
               settings={"cooldown_base_ms": 20, "cooldown_max_ms": 20})
    picks = collections.Counter()
    for _ in range(30):
        with r.envoy.post("/v1/chat/completions", {"model": "default:latency", "stream": True, "messages": []},
                          stream=True, timeout=20) as resp:
            try:
                for _ in resp.iter_lines():
                    pass
            except requests.exceptions.ChunkedEncodingError:
                pass  # the flaky model cut the stream: what the router must learn from
            picks[resp.headers.get("x-model-router-model")] += 1
    assert picks["solid"] >= 24, picks
    flaky_status = next(m for m in status(r)["models"] if m["name"] == "flaky")
    assert flaky_status["error_rate"] > 0.5, flaky_status


def test_live_numbers_are_shared_by_all_workers_and_visible(sims, router):
    r = two_speeds(sims, router)
    served(r, "default:latency", 6)
    served(r, "default:throughput", 6)
    snapshots = [status(r) for _ in range(8)]
    numbers = [[(m["name"], m["ttft_ms"], m["tokens_per_sec"], m["samples"]) for m in s["models"]]
               for s in snapshots]
    assert all(n == numbers[0] for n in numbers), numbers
    models = {m["name"]: m for m in snapshots[0]["models"]}
    assert 20 <= models["quick"]["ttft_ms"] <= 200, models["quick"]
    assert 150 <= models["steady"]["ttft_ms"] <= 600, models["steady"]
    assert models["steady"]["tokens_per_sec"] > 3 * models["quick"]["tokens_per_sec"], models
    assert snapshots[0]["pools"] == [{"alias": "default", "models": ["steady", "quick"]}]
    prom = requests.get(f"{r.envoy.admin}/stats/prometheus", timeout=5).text
    assert 'model_router_ttft_ms{model="quick"}' in prom
    assert 'model_router_picks{pool="default",strategy="throughput",model="steady"}' in prom


def test_status_endpoint_can_be_disabled(sims, router):
    sim = sims("s", ttft_ms=1)
    r = router([sim], {"default": ["s"]}, settings={"status_path": ""})
    assert requests.get(f"{r.envoy.url}/model-router/status", timeout=5).status_code == 404


def test_client_that_gives_up_does_not_count_against_the_model(sims, router):
    slow = sims("slow", ttft_ms=2000, output_tokens=2)
    r = router([slow], {"default": ["slow"]})
    for _ in range(3):
        try:
            r.envoy.chat("default", timeout=0.3)
        except requests.exceptions.ReadTimeout:
            pass
    model = status(r)["models"][0]
    assert (model["state"], model["consecutive_failures"], model["error_rate"]) == ("ready", 0, 0.0), model
