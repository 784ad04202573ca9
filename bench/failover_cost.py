"""Failover cost: added latency per failed attempt, measured side by side in one run.

Three simulated models answer instantly; the router sees 0, 1 or 2 failing models in front of
the healthy one. Cooldown is 1 ms so every request meets the failures again. Reports medians
and p90 over the same number of sequential requests per scenario, and the added time per
failed attempt relative to the all-healthy case.

Usage: python3 bench/failover_cost.py [--requests N] [--out bench/results/failover.md]
"""
import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from harness import Router, Sim  # noqa: E402

SCENARIOS = [
    ("healthy", {}, 0),
    ("m1 503", {"m1": "503"}, 1),
    ("m1 429", {"m1": "429"}, 1),
    ("m1 refused", {"m1": "refuse"}, 1),
    ("m1 reset", {"m1": "reset"}, 1),
    ("m1 503, m2 refused", {"m1": "503", "m2": "refuse"}, 2),
]


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "failover.md"))
    args = ap.parse_args()
    sims = [Sim(f"m{i}", ttft_ms=0, output_tokens=1, retry_after=0) for i in (1, 2, 3)]
    tmp = Path(tempfile.mkdtemp())
    router = Router(tmp, sims, {"default": ["m1", "m2", "m3"]},
                    settings={"cooldown_base_ms": 1, "cooldown_max_ms": 1})
    session = requests.Session()
    body = '{"model":"default","messages":[{"role":"user","content":"hi"}]}'
    rows = []
    try:
        for name, faults, failed_attempts in SCENARIOS:
            for sim in sims:
                sim.set(fail=faults.get(sim.name, "none"))
            times = []
            for i in range(args.requests + 20):
                time.sleep(0.002)  # lets the 1 ms cooldown lapse
                t0 = time.perf_counter()
                r = session.post(f"{router.envoy.url}/v1/chat/completions", data=body,
                                 headers={"content-type": "application/json"}, timeout=10)
                elapsed = time.perf_counter() - t0
                assert r.status_code == 200, (name, r.status_code, r.text)
                assert r.headers["x-model-router-attempts"] == str(failed_attempts + 1), name
                if i >= 20:  # warm-up
                    times.append(elapsed * 1000)
            rows.append((name, failed_attempts, statistics.median(times), percentile(times, 0.9)))
    finally:
        router.stop()
        for sim in sims:
            sim.stop()
    base = rows[0][2]
    envoy_version = subprocess.run(["envoy", "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Failover cost",
        "",
        f"Command: `make bench-failover` ({args.requests} sequential requests per scenario after 20 warm-up, "
        "non-streamed, simulated models answering at once, cooldown 1 ms so each request meets the failure).",
        f"Machine: {platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores; "
        f"{envoy_version.split('version: ')[-1]}; Envoy --concurrency 2.",
        "",
        "| scenario | failed attempts | median ms | p90 ms | added per failed attempt, ms (median) |",
        "|---|---|---|---|---|",
    ]
    for name, failed, median, p90 in rows:
        per = f"{(median - base) / failed:.3f}" if failed else "-"
        lines.append(f"| {name} | {failed} | {median:.3f} | {p90:.3f} | {per} |")
    lines.append("")
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
