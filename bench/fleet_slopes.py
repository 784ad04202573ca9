"""What load slope does each replica of a fleet fit, when it sees only its own in-flight count?

Two Envoys (two routers) in front of one simulated model that slows down by 0.5 x its TTFT
per request in flight, whichever replica sent it. Both replicas get bursts of 1-6 concurrent
streamed requests, either the same burst sizes at the same time ("together") or sizes drawn
independently ("independent"). Prints each replica's fitted `load_slope_ttft`, idle TTFT and
sample count from its status endpoint. Cited in docs/scale-out.md.

Usage: tests/.venv/bin/python bench/fleet_slopes.py   (after `make build`)
"""
import random
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from harness import Router, Sim  # noqa: E402

BURSTS = 16
WIDTHS = [1, 2, 4, 6]


def run(mode: str):
    sim = Sim("q", ttft_ms=80, tokens_per_sec=400, output_tokens=4, concurrency_slowdown=0.5)
    tmp = Path(tempfile.mkdtemp(prefix="fleet-slopes-"))
    replicas = []
    try:
        for name in ("a", "b"):
            (tmp / name).mkdir()
            replicas.append(Router(tmp / name, [sim], {"default": ["q"]}))
        rng = random.Random(1)
        with ThreadPoolExecutor(max_workers=2 * max(WIDTHS)) as pool:
            for i in range(BURSTS):
                width_a = WIDTHS[i % len(WIDTHS)]
                width_b = width_a if mode == "together" else rng.choice(WIDTHS)
                jobs = [pool.submit(replicas[0].envoy.stream_chat, "q") for _ in range(width_a)]
                jobs += [pool.submit(replicas[1].envoy.stream_chat, "q") for _ in range(width_b)]
                for job in jobs:
                    job.result()
        for name, r in zip("ab", replicas):
            m = requests.get(f"{r.envoy.url}/model-router/status", timeout=5,
                             headers={"connection": "close"}).json()["models"][0]
            print(f"{mode:11s} replica {name}: load_slope_ttft {m['load_slope_ttft']:.2f}, "
                  f"idle TTFT {m['ttft_ms']:.0f} ms, samples {m['samples']}")
    finally:
        for r in replicas:
            r.stop()
        sim.stop()


if __name__ == "__main__":
    for mode in ("together", "independent"):
        run(mode)
