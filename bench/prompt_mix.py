"""Prompt sizes: does `default:latency` send each request to the model that answers *its* size first?

Three simulated models whose TTFT grows with the request body at different rates (prefill),
and slows down with concurrency like the routing bench's: m1 starts fast but reads slowly,
m3 starts slowly but reads fast, m2 is in between. Requests carry prompts of 0.5, 8, 32 or
64 KiB (uniformly, seeded), so the best model depends on the request. Policies, each against
fresh simulators and a fresh Envoy + router, the same closed-loop load:

- router:           `default:latency` with this checkout's module
- router (baseline): the same with `--baseline-wasm` (e.g. a module built before the prefill
                    fit), when given
- oracle:           the exact model with the lowest expected TTFT for this request's size,
                    from the configured speeds and the bench's own in-flight counts
- random:           an exact model name, uniformly at random
- pool order:       `default` (failover: m1 while healthy)

Measured on the client: TTFT (first SSE event with content) and the serving model. Writes
bench/results/prompt-mix.md.

Usage: bench/.venv/bin/python bench/prompt_mix.py [--duration S] [--baseline-wasm PATH]
"""
from __future__ import annotations

import argparse
import datetime
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import routing  # noqa: E402  (the routing bench: request, stats and report helpers; puts tests/e2e on the path)
import harness  # noqa: E402
from routing import MODELS, MAX_TOKENS, REQUEST_TIMEOUT, mean, one_request, percentile  # noqa: E402

SIZES_KIB = [0.5, 8, 32, 64]
SLOWDOWN = 0.3
SPEEDS = {  # TTFT = ttft_ms + prefill_ms_per_kib x KiB, before the queueing slowdown
    "m1": {"ttft_ms": 40, "prefill_ms_per_kib": 6.0},
    "m2": {"ttft_ms": 120, "prefill_ms_per_kib": 2.0},
    "m3": {"ttft_ms": 220, "prefill_ms_per_kib": 0.2},
}
# The body's JSON around the prompt, so a prompt of n characters makes a body of about n bytes.
BODY_OVERHEAD = 170


def prompt_of(kib: float) -> str:
    return "x" * max(1, int(kib * 1024) - BODY_OVERHEAD)


class Oracle:
    def __init__(self):
        self.lock = threading.Lock()
        self.in_flight = {m: 0 for m in MODELS}

    def pick(self, kib: float) -> str:
        def expected(m):
            s = SPEEDS[m]
            return (s["ttft_ms"] + s["prefill_ms_per_kib"] * kib) * (1 + SLOWDOWN * self.in_flight[m])
        with self.lock:
            best = min(MODELS, key=lambda m: (expected(m), MODELS.index(m)))
            self.in_flight[best] += 1
            return best

    def done(self, m: str):
        with self.lock:
            self.in_flight[m] -= 1


def worker(idx, policy, url, oracle, t0, stop_at, seed, out):
    rng = random.Random(seed * 1000 + idx)
    session = requests.Session()
    prompts = {kib: prompt_of(kib) for kib in SIZES_KIB}
    for _ in range(routing.MAX_REQUESTS_PER_WORKER):
        if time.monotonic() >= stop_at:
            break
        kib = rng.choice(SIZES_KIB)
        max_tokens = rng.randint(*MAX_TOKENS)
        if policy.startswith("router"):
            model = "default:latency"
        elif policy == "pool order":
            model = "default"
        elif policy == "random":
            model = rng.choice(MODELS)
        else:
            model = oracle.pick(kib)
        try:
            rec = one_request(session, url, model, max_tokens, t0, prompts[kib])
        finally:
            if policy == "oracle":
                oracle.done(model)
        rec["kib"] = kib
        out.append(rec)
        if not rec["ok"]:
            time.sleep(0.05)
    session.close()


def run_one(policy: str, args, wasm: str | None) -> list:
    sims, router = [], None
    own_wasm = harness.WASM
    tmp = Path(tempfile.mkdtemp(prefix="bench-prompt-"))
    try:
        for m in MODELS:
            sims.append(routing.Sim(m, tokens_per_sec=100, output_tokens=routing.OUTPUT_TOKENS,
                                    concurrency_slowdown=SLOWDOWN, **SPEEDS[m]))
        # The harness puts its module path into every generated bootstrap.
        harness.WASM = Path(wasm) if wasm else own_wasm
        router = routing.Router(tmp, sims, {"default": list(MODELS)})
        url = f"{router.envoy.url}/v1/chat/completions"
        records: list = []
        t0 = time.monotonic()
        stop_at = t0 + args.duration
        oracle = Oracle()
        threads = [threading.Thread(target=worker, daemon=True,
                                    args=(i, policy, url, oracle, t0, stop_at, args.seed, records))
                   for i in range(args.workers)]
        for t in threads:
            t.start()
        deadline = stop_at + REQUEST_TIMEOUT + 5
        for t in threads:
            t.join(timeout=max(0.1, deadline - time.monotonic()))
        return list(records)
    finally:
        harness.WASM = own_wasm
        if router is not None:
            router.stop()
        for s in sims:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def summarize(records, warmup: float) -> dict:
    ok = [r for r in records if r["ok"] and r["start"] >= warmup]
    by_size = {}
    for kib in SIZES_KIB:
        rs = [r for r in ok if r["kib"] == kib]
        n = len(rs) or 1
        by_size[kib] = {"ttft": mean(r["ttft"] for r in rs),
                        "share": {m: sum(r["served"] == m for r in rs) / n for m in MODELS}}
    return {"requests": len(ok), "errors": sum(not r["ok"] for r in records),
            "ttft_mean": mean(r["ttft"] for r in ok),
            "ttft_p90": percentile([r["ttft"] for r in ok], 0.9), "by_size": by_size}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per policy (default 30)")
    ap.add_argument("--warmup", type=float, default=5.0,
                    help="requests started before this many seconds are not counted (default 5)")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--baseline-wasm", help="also run the router with this module, for comparison")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "prompt-mix.md"))
    args = ap.parse_args()
    if not (5 <= args.duration <= 300 and 0 <= args.warmup < args.duration and 1 <= args.workers <= 64):
        ap.error("--duration 5..300, --warmup below it, --workers 1..64")
    policies = [("router", None)]
    if args.baseline_wasm:
        policies.append(("router (baseline)", args.baseline_wasm))
    policies += [("oracle", None), ("random", None), ("pool order", None)]
    began = time.monotonic()
    results = {}
    for policy, wasm in policies:
        print(f"{policy}: {args.duration:.0f} s, {args.workers} workers", flush=True)
        s = results[policy] = summarize(run_one(policy, args, wasm), args.warmup)
        print(f"    {s['requests']} ok, {s['errors']} errors, TTFT mean {s['ttft_mean']:.0f} ms, "
              f"p90 {s['ttft_p90']:.0f} ms", flush=True)
    wall = time.monotonic() - began

    cmd = " ".join(["bench/.venv/bin/python", "bench/prompt_mix.py", *sys.argv[1:]])
    speeds = ", ".join(f"{m} {SPEEDS[m]['ttft_ms']} ms + {SPEEDS[m]['prefill_ms_per_kib']} ms/KiB"
                       for m in MODELS)
    lines = [
        "# Routing by prompt size",
        "",
        f"Command: `make bench-prompt` (runs `{cmd}`).",
        f"Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. "
        f"Wall-clock time: {wall:.0f} s.",
        f"Machine: {routing.machine()}. Build: {routing.build_info()}."
        + (f" Baseline module: `{args.baseline_wasm}`." if args.baseline_wasm else ""),
        "",
        "## Setup",
        "",
        f"- Pool `default` = `[m1, m2, m3]`, router settings: defaults. Idle TTFT = overhead + "
        f"prefill x request KiB: {speeds}; every model `--concurrency-slowdown {SLOWDOWN}`, "
        f"100 tokens/s, `max_tokens` {MAX_TOKENS[0]}..{MAX_TOKENS[1]}, streamed.",
        f"- Requests: prompts of {', '.join(str(k) for k in SIZES_KIB)} KiB of body, uniformly "
        f"(seeded); {args.workers} closed-loop clients for {args.duration:.0f} s per policy; requests "
        f"started in the first {args.warmup:.0f} s (warm-up: the router is learning) are not counted.",
        "- Idle best model by size: 0.5 and 8 KiB m1, 32 KiB m2, 64 KiB m3. The oracle also "
        "counts its own in-flight requests per model (TTFT x (1 + 0.3 x in flight)).",
        "",
        "## Results",
        "",
        "| policy | requests | errors | mean TTFT ms | p90 TTFT ms | "
        + " | ".join(f"TTFT ms at {k} KiB" for k in SIZES_KIB) + " | "
        + " | ".join(f"share % m1/m2/m3 at {k} KiB" for k in SIZES_KIB) + " |",
        "|---|---|---|---|---|" + "---|" * (2 * len(SIZES_KIB)),
    ]
    for policy, _ in policies:
        s = results[policy]
        name = "`default:latency`" + (" (baseline module)" if policy == "router (baseline)" else "") \
            if policy.startswith("router") else policy
        cells = [f"{s['by_size'][k]['ttft']:.0f}" for k in SIZES_KIB]
        cells += [" / ".join(f"{100 * s['by_size'][k]['share'][m]:.0f}" for m in MODELS) for k in SIZES_KIB]
        lines.append(f"| {name} | {s['requests']} | {s['errors']} | {s['ttft_mean']:.0f} | "
                     f"{s['ttft_p90']:.0f} | " + " | ".join(cells) + " |")
    r, o = results["router"], results["oracle"]
    lines += ["", f"`default:latency` mean TTFT is {r['ttft_mean'] / o['ttft_mean']:.2f}x the oracle's"
              + (f"; the baseline module's {results['router (baseline)']['ttft_mean'] / o['ttft_mean']:.2f}x."
                 if args.baseline_wasm else "."), ""]
    out = Path(args.out)
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out} in {wall:.0f} s")


if __name__ == "__main__":
    main()
