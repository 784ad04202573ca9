"""Routing quality: does `default:latency` / `default:throughput` pick the fast model, and follow it?

Three simulated models that slow down with concurrency (`concurrency_slowdown`, like a queueing
server) stream chat completions. Two scenarios:

- latency: TTFT differs (m1 fastest, m3 slowest), same token rate; halfway through, the TTFTs
  of m1 and m3 are swapped at runtime via `/sim/config`.
- throughput: token rate differs (m1 fastest, m3 slowest), same TTFT; swapped halfway likewise.

Each scenario runs the same closed-loop load (N client threads, fixed duration) under four
policies, each against fresh simulators and a fresh Envoy + router (no leftover live stats):

- router:     `default:latency` / `default:throughput`
- oracle:     the client sends the exact model name that is best right now, from the simulators'
              configured speeds and the bench's own in-flight count per model
              (TTFT * (1 + slowdown * in_flight), or tokens/s / (1 + slowdown * in_flight))
- pool order: `default` (failover: the first model while healthy)
- random:     an exact model name, uniformly at random

Measured per request on the client: TTFT (first SSE event with non-empty content), tokens/s
(usage.completion_tokens / (end - first token)), the model that served it
(`x-model-router-model`). Writes bench/results/routing.md and bench/results/routing.png.

Usage: python3 bench/routing.py [--quick] [--duration S] [--workers N] [--slowdown F]
       [--settings JSON] [--out-dir DIR]
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from harness import ENVOY, WASM, Router, Sim  # noqa: E402

MODELS = ["m1", "m2", "m3"]  # pool order of `default`
NEW_BEST = "m3"  # best model after the swap in both scenarios
POLICIES = ["router", "oracle", "pool order", "random"]
OUTPUT_TOKENS = 40  # simulator maximum; each request asks for max_tokens in MAX_TOKENS
MAX_TOKENS = (20, 40)
REQUEST_TIMEOUT = 30.0  # seconds, per request
MAX_REQUESTS_PER_WORKER = 5000
FOLLOW_WINDOW = 1.0  # sliding window for the share going to the new best model
FOLLOW_HOLD = 2.0  # the share must stay above 50% this long
FOLLOW_LIMIT = 5.0  # floor: swap followed within this many seconds
ROLLING = 2.0  # plot: rolling-mean window, seconds

SCENARIOS = {
    "latency": {
        "strategy": "default:latency",
        "objective": "ttft",
        "config": {
            "m1": {"ttft_ms": 120, "tokens_per_sec": 100},
            "m2": {"ttft_ms": 250, "tokens_per_sec": 100},
            "m3": {"ttft_ms": 400, "tokens_per_sec": 100},
        },
        "swap_key": "ttft_ms",
    },
    "throughput": {
        "strategy": "default:throughput",
        "objective": "tps",
        "config": {
            "m1": {"ttft_ms": 100, "tokens_per_sec": 150},
            "m2": {"ttft_ms": 100, "tokens_per_sec": 80},
            "m3": {"ttft_ms": 100, "tokens_per_sec": 40},
        },
        "swap_key": "tokens_per_sec",
    },
}


def swapped(config: dict, key: str) -> dict:
    new = {m: dict(c) for m, c in config.items()}
    new["m1"][key], new["m3"][key] = config["m3"][key], config["m1"][key]
    return new


class Oracle:
    """Picks the best exact model from configured speeds and the bench's in-flight counts."""

    def __init__(self, objective: str, config: dict, slowdown: float):
        self.objective, self.config, self.slowdown = objective, config, slowdown
        self.lock = threading.Lock()
        self.in_flight = {m: 0 for m in MODELS}

    def expected(self, m: str) -> float:
        load = 1 + self.slowdown * self.in_flight[m]
        if self.objective == "ttft":
            return self.config[m]["ttft_ms"] * load  # lower is better
        return -self.config[m]["tokens_per_sec"] / load  # negated: lower is better

    def pick(self) -> str:
        with self.lock:
            best = min(MODELS, key=lambda m: (self.expected(m), MODELS.index(m)))
            self.in_flight[best] += 1
            return best

    def done(self, m: str):
        with self.lock:
            self.in_flight[m] -= 1

    def set_config(self, config: dict):
        with self.lock:
            self.config = config


def one_request(session: requests.Session, url: str, model: str, max_tokens: int, t0: float,
                prompt: str = "hello") -> dict:
    """One streamed chat completion; times are seconds since the run's t0."""
    body = {"model": model, "stream": True, "stream_options": {"include_usage": True},
            "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]}
    rec = {"sent": model, "start": time.monotonic() - t0, "ok": False, "served": None,
           "ttft": None, "tps": None, "tokens": None, "end": None, "error": None}
    start = time.monotonic()
    try:
        with session.post(url, json=body, stream=True, timeout=REQUEST_TIMEOUT) as r:
            rec["served"] = r.headers.get("x-model-router-model")
            if r.status_code != 200:
                rec["error"] = f"HTTP {r.status_code}: {r.text[:200]}"
                return rec
            first = None
            done = False
            buf = b""
            for chunk in r.iter_content(chunk_size=None):
                now = time.monotonic()
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        done = True
                        continue
                    event = json.loads(payload)
                    for choice in event.get("choices") or []:
                        if first is None and (choice.get("delta") or {}).get("content"):
                            first = now
                    usage = event.get("usage")
                    if usage:
                        rec["tokens"] = usage.get("completion_tokens")
                if done:
                    break
            end = time.monotonic()
            if not done or first is None or not rec["tokens"]:
                rec["error"] = f"incomplete stream (done={done}, first token={first is not None}, usage={rec['tokens']})"
                return rec
            rec.update(ok=True, ttft=(first - start) * 1000, end=end - t0,
                       tps=rec["tokens"] / (end - first) if end > first else None)
            return rec
    except requests.RequestException as e:
        rec["error"] = f"{type(e).__name__}: {e}"[:200]
        return rec


def worker(idx: int, policy: str, strategy: str, url: str, oracle: Oracle, t0: float,
           stop_at: float, seed: int, out: list):
    rng = random.Random(seed * 1000 + idx)
    session = requests.Session()
    for _ in range(MAX_REQUESTS_PER_WORKER):
        if time.monotonic() >= stop_at:
            break
        max_tokens = rng.randint(*MAX_TOKENS)
        if policy == "router":
            model = strategy
        elif policy == "pool order":
            model = "default"
        elif policy == "random":
            model = rng.choice(MODELS)
        else:
            model = oracle.pick()
        try:
            rec = one_request(session, url, model, max_tokens, t0)
        finally:
            if policy == "oracle":
                oracle.done(model)
        out.append(rec)  # list.append is atomic under the GIL
        if not rec["ok"]:
            time.sleep(0.05)  # no hot loop on errors
    session.close()


def router_status(router: Router) -> str:
    """The router's status endpoint, if this build has one (diagnostics on stdout only)."""
    try:
        r = requests.get(f"{router.envoy.url}/model-router/status", timeout=2)
        return f"HTTP {r.status_code} {r.text[:1500]}"
    except requests.RequestException as e:
        return f"unavailable: {e}"


def run_one(scenario: str, policy: str, args, seed: int) -> dict:
    spec = SCENARIOS[scenario]
    before = spec["config"]
    after = swapped(before, spec["swap_key"])
    sims = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    router = None
    try:
        for m in MODELS:
            sims.append(Sim(m, ttft_ms=before[m]["ttft_ms"], tokens_per_sec=before[m]["tokens_per_sec"],
                            output_tokens=OUTPUT_TOKENS, concurrency_slowdown=args.slowdown,
                            ttft_jitter=args.ttft_jitter))
        router = Router(tmp, sims, {"default": list(MODELS)}, settings=args.settings)
        url = f"{router.envoy.url}/v1/chat/completions"
        oracle = Oracle(spec["objective"], before, args.slowdown)
        records: list = []
        t0 = time.monotonic()
        stop_at = t0 + args.duration
        threads = [threading.Thread(target=worker, daemon=True,
                                    args=(i, policy, spec["strategy"], url, oracle, t0, stop_at, seed, records))
                   for i in range(args.workers)]
        for t in threads:
            t.start()
        time.sleep(max(0.0, t0 + args.duration / 2 - time.monotonic()))
        if policy == "router":
            print(f"    status before swap: {router_status(router)}", flush=True)
        by_name = {s.name: s for s in sims}
        for m in ("m1", "m3"):
            by_name[m].set(**{spec["swap_key"]: after[m][spec["swap_key"]]})
        oracle.set_config(after)
        swap_at = time.monotonic() - t0
        time.sleep(max(0.0, stop_at - time.monotonic()))
        join_deadline = time.monotonic() + REQUEST_TIMEOUT + 5
        for t in threads:
            t.join(timeout=max(0.1, join_deadline - time.monotonic()))
        stuck = sum(t.is_alive() for t in threads)
        if policy == "router":
            print(f"    status at end: {router_status(router)}", flush=True)
        sim_counts = {s.name: s.requests() for s in sims}
        log = router.envoy.log_text()
        problems = [ln for ln in log.splitlines() if "[error]" in ln or "[critical]" in ln]
        if problems:
            print(f"    envoy log: {len(problems)} error lines, last: {problems[-1][:300]}", flush=True)
        return {"scenario": scenario, "policy": policy, "records": list(records), "swap_at": swap_at,
                "duration": args.duration, "stuck_workers": stuck, "sim_counts": sim_counts,
                "envoy_errors": len(problems)}
    finally:
        if router is not None:
            router.stop()
            try:
                router.envoy.log_path.unlink()
            except OSError:
                pass
        for s in sims:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- analysis

def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else float("nan")


def shares(records) -> dict:
    n = len(records)
    return {m: (sum(r["served"] == m for r in records) / n if n else float("nan")) for m in MODELS}


def share_series(records, model, start, stop, window=FOLLOW_WINDOW, step=0.05):
    """(t, share of requests started in (t - window, t] that `model` served) on a grid."""
    starts = sorted((r["start"], r["served"] == model) for r in records if r["ok"])
    out = []
    t = start
    while t <= stop + 1e-9:
        inside = [hit for s, hit in starts if t - window < s <= t]
        out.append((t, sum(inside) / len(inside) if inside else None))
        t += step
    return out


def follow_time(run) -> float | None:
    """Seconds after the swap until the new best model's 1 s share first exceeds 50% and stays
    above for 2 s (all within the run); None if that never happens."""
    series = share_series(run["records"], NEW_BEST, run["swap_at"], run["duration"])
    for i, (t, share) in enumerate(series):
        if share is None or share <= 0.5 or t + FOLLOW_HOLD > run["duration"]:
            continue
        hold = [s for (u, s) in series[i:] if u <= t + FOLLOW_HOLD + 1e-9]
        if all(s is not None and s > 0.5 for s in hold):
            return t - run["swap_at"]
    return None


def overtake_time(run, old="m1", new=NEW_BEST) -> float | None:
    """Diagnostic: seconds after the swap until, in the 1 s window, the new best model serves more
    requests than the old best and keeps doing so for 2 s."""
    starts = sorted((r["start"], r["served"]) for r in run["records"] if r["ok"])
    grid = []
    t = run["swap_at"]
    while t <= run["duration"] + 1e-9:
        inside = [m for s, m in starts if t - FOLLOW_WINDOW < s <= t]
        grid.append((t, inside.count(new) > inside.count(old)))
        t += 0.05
    for i, (t, ahead) in enumerate(grid):
        if ahead and t + FOLLOW_HOLD <= run["duration"] and all(
                a for (u, a) in grid[i:] if u <= t + FOLLOW_HOLD + 1e-9):
            return t - run["swap_at"]
    return None


def summarize(run) -> dict:
    ok = [r for r in run["records"] if r["ok"]]
    pre = [r for r in ok if r["start"] < run["swap_at"]]
    post = [r for r in ok if r["start"] >= run["swap_at"]]
    return {
        "requests": len(ok),
        "errors": len(run["records"]) - len(ok),
        "ttft_mean": mean(r["ttft"] for r in ok),
        "ttft_p90": percentile([r["ttft"] for r in ok], 0.9),
        "tps_mean": mean(r["tps"] for r in ok),
        "tps_total": sum(r["tokens"] for r in ok) / run["duration"],
        "share_pre": shares(pre),
        "share_post": shares(post),
        "ttft_pre": mean(r["ttft"] for r in pre),
        "ttft_post": mean(r["ttft"] for r in post),
        "tps_pre": mean(r["tps"] for r in pre),
        "tps_post": mean(r["tps"] for r in post),
        "follow": follow_time(run),
        "overtake": overtake_time(run),
        "share_early": shares([r for r in post if r["start"] < run["swap_at"] + FOLLOW_LIMIT]),
        "share_late": shares([r for r in post if r["start"] >= run["swap_at"] + FOLLOW_LIMIT]),
        "misrouted": sum(1 for r in ok if r["sent"] in MODELS and r["served"] != r["sent"]),
    }


def fmt_share(s: dict) -> str:
    return " / ".join(f"{100 * s[m]:.0f}" if s[m] == s[m] else "-" for m in MODELS)


def fmt_follow(t) -> str:
    return "not followed" if t is None else f"{t:.2f} s"


# ---------------------------------------------------------------- plot

def rolling(records, key, stop, window=ROLLING, step=0.25):
    pts = sorted((r["start"], r[key]) for r in records if r["ok"] and r[key] is not None)
    xs, ys = [], []
    t = window / 2
    while t <= stop + 1e-9:
        inside = [v for s, v in pts if t - window < s <= t]
        if inside:
            xs.append(t)
            ys.append(statistics.fmean(inside))
        t += step
    return xs, ys


def plot(runs: dict, path: Path, quick: bool):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"router": "tab:red", "oracle": "tab:green", "pool order": "tab:blue", "random": "tab:gray"}
    model_colors = {"m1": "tab:purple", "m2": "tab:orange", "m3": "tab:cyan"}
    fig, axes = plt.subplots(2, 2, figsize=(14, 9), sharex="col")
    panels = [("latency", "ttft", "TTFT", "TTFT, ms (lower is better)"),
              ("throughput", "tps", "tokens/s", "output tokens/s per request (higher is better)")]
    for col, (scenario, key, metric, label) in enumerate(panels):
        ax = axes[0][col]
        swap_at = None
        for policy in POLICIES:
            run = runs[(scenario, policy)]
            swap_at = run["swap_at"]
            xs, ys = rolling(run["records"], key, run["duration"])
            name = SCENARIOS[scenario]["strategy"] if policy == "router" else policy
            ax.plot(xs, ys, color=colors[policy], lw=2.2 if policy == "router" else 1.4, label=name)
        ax.axvline(swap_at, color="black", ls="--", lw=1)
        ax.text(swap_at, 0.99, " swap m1<->m3", transform=ax.get_xaxis_transform(), va="top", fontsize=9)
        ax.set_title(f"{scenario} scenario: {metric} ({ROLLING:.0f} s rolling mean, by request start)",
                     fontsize=10)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9, loc="best", framealpha=0.9)

        ax = axes[1][col]
        run = runs[(scenario, "router")]
        for m in MODELS:
            series = share_series(run["records"], m, FOLLOW_WINDOW, run["duration"], step=0.1)
            ax.plot([t for t, s in series], [100 * s if s is not None else float("nan") for t, s in series],
                    color=model_colors[m], lw=1.6, label=m)
        ax.axvline(run["swap_at"], color="black", ls="--", lw=1)
        ax.axvspan(run["swap_at"], min(run["duration"], run["swap_at"] + FOLLOW_LIMIT), color="gold",
                   alpha=0.15, label=f"first {FOLLOW_LIMIT:.0f} s after swap")
        ax.text(run["swap_at"], 0.99, " best: m1 -> m3", transform=ax.get_xaxis_transform(), va="top",
                fontsize=9)
        ax.axhline(50, color="black", lw=0.8, ls=":")
        ax.set_ylim(-2, 102)
        ax.set_title(f"{SCENARIOS[scenario]['strategy']}: share of requests per model "
                     f"({FOLLOW_WINDOW:.0f} s window, by request start)", fontsize=10)
        ax.set_ylabel("% of requests")
        ax.set_xlabel("seconds since start of run")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9, loc="best", framealpha=0.9)
    fig.suptitle("model-router routing quality" + (" (QUICK RUN, not the real numbers)" if quick else ""),
                 fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------- report

def sh(cmd) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=ROOT)
        return (out.stdout + out.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores ({cpu}), Linux {platform.release()}"


def build_info() -> str:
    head = sh(["git", "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "status", "--porcelain", "--", "src", "tools", "Cargo.toml", "Cargo.lock"])
    try:
        digest = hashlib.sha256(Path(WASM).read_bytes()).hexdigest()[:12]
    except OSError:
        digest = "missing"
    state = "with uncommitted changes under src/ or tools/" if dirty else "clean"
    return f"git {head} ({state}); {Path(WASM).name} sha256 {digest}"


def report(runs: dict, args, wall: float, out_dir: Path, png: Path) -> str:
    summ = {k: summarize(v) for k, v in runs.items()}
    envoy_version = sh([ENVOY, "--version"]).split("version: ")[-1]
    cmd = " ".join(["bench/.venv/bin/python", "bench/routing.py", *sys.argv[1:]])
    lines = [
        "# Routing quality" + (" (QUICK RUN: debugging only, not the real numbers)" if args.quick else ""),
        "",
        f"Command: `make bench-routing` (runs `{cmd}`).",
        f"Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. "
        f"Wall-clock time of the whole bench: {wall:.0f} s.",
        f"Machine: {machine()}. Envoy {envoy_version}, `--concurrency 2`. Build: {build_info()}.",
        "",
        "## Setup",
        "",
        f"- Three simulated models `m1`, `m2`, `m3` (`target/release/model-sim`), pool `default` = "
        f"`[m1, m2, m3]`, router settings: {json.dumps(args.settings) if args.settings else 'defaults'}.",
        f"- Every model: `--concurrency-slowdown {args.slowdown}` (with k requests in flight, TTFT x (1+F(k-1)) "
        f"and token rate / (1+F(k-1))), `--output-tokens {OUTPUT_TOKENS}`; each request asks for "
        f"`max_tokens` uniformly in {MAX_TOKENS[0]}..{MAX_TOKENS[1]} (seeded), streamed with "
        "`stream_options.include_usage`."
        + (f" Each TTFT is spread log-normally around its value: `--ttft-jitter {args.ttft_jitter}` "
           f"(x exp({args.ttft_jitter} z), z standard normal)." if args.ttft_jitter else ""),
        "- Latency scenario: TTFT m1/m2/m3 = "
        + " / ".join(str(SCENARIOS['latency']['config'][m]['ttft_ms']) for m in MODELS)
        + f" ms, {SCENARIOS['latency']['config']['m1']['tokens_per_sec']} tokens/s each. "
        "Throughput scenario: tokens/s m1/m2/m3 = "
        + " / ".join(str(SCENARIOS['throughput']['config'][m]['tokens_per_sec']) for m in MODELS)
        + f", TTFT {SCENARIOS['throughput']['config']['m1']['ttft_ms']} ms each. "
        f"Halfway (t = {args.duration / 2:.0f} s) m1's and m3's values are swapped via `POST /sim/config`, "
        "so the best model goes from m1 to m3.",
        f"- Load: {args.workers} closed-loop client threads (next request as soon as the last one ends), "
        f"{args.duration:.0f} s per policy per scenario; requests started in that time are counted. "
        "Each (scenario, policy) run gets fresh simulators and a fresh Envoy + router.",
        "- Policies: **router** = `default:latency` / `default:throughput`; **oracle** = the exact model "
        "name that is best now given the configured speeds and the bench's own in-flight count per model "
        f"(TTFT x (1+{args.slowdown} x in_flight), tokens/s / (1+{args.slowdown} x in_flight)); "
        "**pool order** = `default` (failover); **random** = an exact model name uniformly at random. "
        "All go through the same Envoy.",
        "- Client-side measurements: TTFT = time from sending to the first SSE event with non-empty "
        "content; tokens/s = `usage.completion_tokens` / (end of stream - first token); the serving model "
        "from `x-model-router-model`. Shares are by request start time, before / after the swap.",
        f"- Time to follow the swap: seconds after the swap until m3's share of the requests started in "
        f"the last {FOLLOW_WINDOW:.0f} s first exceeds 50% and stays above for {FOLLOW_HOLD:.0f} s.",
        "- \"mean tokens/s\" is the mean of the per-request rates (the floor's metric); \"all models' "
        "tokens/s\" is the completion tokens of all counted requests / the run's duration (system "
        "throughput under this closed loop).",
        "- The oracle is greedy per request: it gives the next request the best expected value under the "
        "current load. That is the reference for TTFT, but not an upper bound on the mean of per-request "
        "tokens/s: spreading load more evenly raises every request's rate (and the closed loop then sends "
        "more requests), so a policy that spreads more can beat it on that metric.",
        "",
        "## Results",
        "",
        "| scenario | policy | requests | errors | mean TTFT ms | p90 TTFT ms | mean tokens/s | "
        "all models' tokens/s | share % m1/m2/m3 before swap | share % m1/m2/m3 after swap | "
        "swap followed after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        for policy in POLICIES:
            if (scenario, policy) not in summ:
                continue
            s = summ[(scenario, policy)]
            name = f"`{SCENARIOS[scenario]['strategy']}`" if policy == "router" else policy
            lines.append(
                f"| {scenario} | {name} | {s['requests']} | {s['errors']} | {s['ttft_mean']:.0f} | "
                f"{s['ttft_p90']:.0f} | {s['tps_mean']:.1f} | {s['tps_total']:.0f} | {fmt_share(s['share_pre'])} | "
                f"{fmt_share(s['share_post'])} | {fmt_follow(s['follow'])} |")
    lines += [
        "",
        "Before / after the swap (means over requests started in each half):",
        "",
        "| scenario | policy | TTFT ms before | TTFT ms after | tokens/s before | tokens/s after |",
        "|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        for policy in POLICIES:
            if (scenario, policy) not in summ:
                continue
            s = summ[(scenario, policy)]
            name = f"`{SCENARIOS[scenario]['strategy']}`" if policy == "router" else policy
            lines.append(f"| {scenario} | {name} | {s['ttft_pre']:.0f} | {s['ttft_post']:.0f} | "
                         f"{s['tps_pre']:.1f} | {s['tps_post']:.1f} |")

    lines += [
        "",
        "Swap diagnostics (router and oracle): the floor's criterion above, then when the new best model "
        f"m3 first serves more requests than m1 in the {FOLLOW_WINDOW:.0f} s window (held {FOLLOW_HOLD:.0f} s), "
        f"and the shares in the first {FOLLOW_LIMIT:.0f} s after the swap and after that:",
        "",
        "| scenario | policy | m3 > 50% (floor) after | m3 > m1 after | share % m1/m2/m3, "
        f"first {FOLLOW_LIMIT:.0f} s after swap | share % m1/m2/m3, rest of run |",
        "|---|---|---|---|---|---|",
    ]
    for scenario in SCENARIOS:
        for policy in ("router", "oracle"):
            if (scenario, policy) not in summ:
                continue
            s = summ[(scenario, policy)]
            name = f"`{SCENARIOS[scenario]['strategy']}`" if policy == "router" else policy
            lines.append(f"| {scenario} | {name} | {fmt_follow(s['follow'])} | {fmt_follow(s['overtake'])} | "
                         f"{fmt_share(s['share_early'])} | {fmt_share(s['share_late'])} |")

    floors = []
    lat_r, lat_o = summ.get(("latency", "router")), summ.get(("latency", "oracle"))
    thr_r, thr_o = summ.get(("throughput", "router")), summ.get(("throughput", "oracle"))
    if lat_r and lat_o:
        floors.append((lat_r["ttft_mean"] <= 1.2 * lat_o["ttft_mean"],
                       f"`default:latency` mean TTFT {lat_r['ttft_mean']:.0f} ms <= 1.2 x oracle's "
                       f"{lat_o['ttft_mean']:.0f} ms = {1.2 * lat_o['ttft_mean']:.0f} ms"))
    if thr_r and thr_o:
        floors.append((thr_r["tps_mean"] >= 0.85 * thr_o["tps_mean"],
                       f"`default:throughput` mean tokens/s {thr_r['tps_mean']:.1f} >= 0.85 x oracle's "
                       f"{thr_o['tps_mean']:.1f} = {0.85 * thr_o['tps_mean']:.1f}"))
    for scenario, s in (("latency", lat_r), ("throughput", thr_r)):
        if s is None:
            continue
        floors.append((s["follow"] is not None and s["follow"] <= FOLLOW_LIMIT,
                       f"`{SCENARIOS[scenario]['strategy']}` follows the swap within {FOLLOW_LIMIT:.0f} s: "
                       f"{fmt_follow(s['follow'])}"))
    lines += ["", "## Floors (reported, not asserted)", ""]
    lines += [f"- **{'PASS' if ok else 'FAIL'}** {text}" for ok, text in floors]
    notes = []
    for (scenario, policy), run in runs.items():
        if run["stuck_workers"]:
            notes.append(f"{scenario}/{policy}: {run['stuck_workers']} client threads still busy at the end")
        if run["envoy_errors"]:
            notes.append(f"{scenario}/{policy}: {run['envoy_errors']} error lines in Envoy's log")
        mis = summarize(run)["misrouted"]
        if mis:
            notes.append(f"{scenario}/{policy}: {mis} requests for an exact model name served by another model")
        errs = [r["error"] for r in run["records"] if not r["ok"]]
        if errs:
            notes.append(f"{scenario}/{policy}: {len(errs)} failed requests, e.g. {errs[0]}")
    if notes:
        lines += ["", "Problems seen during the run:", ""] + [f"- {n}" for n in notes]
    if png is not None:
        lines += ["", f"![TTFT / tokens/s over time and the router's share per model]({png.name})",
                  "", f"Plot: [{png.name}]({png.name}).", ""]
    else:
        lines += ["", "No plot: it needs every scenario and policy (`--only` was given).", ""]
    text = "\n".join(lines)
    (out_dir / "routing.md").write_text(text)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 s per run, for debugging the bench")
    ap.add_argument("--duration", type=float, help="seconds per policy per scenario (default 40, quick 8)")
    ap.add_argument("--workers", type=int, default=8, help="concurrent client threads")
    ap.add_argument("--slowdown", type=float, default=0.3, help="simulators' --concurrency-slowdown")
    ap.add_argument("--ttft-jitter", type=float, default=0.0,
                    help="simulators' --ttft-jitter: log-normal spread of each TTFT (default 0: exact)")
    ap.add_argument("--settings", type=json.loads, default=None,
                    help="router config `settings` as JSON (default: the router's defaults)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", nargs="*", metavar="SCENARIO/POLICY", default=None,
                    help="run only these runs, e.g. latency/router (for tuning; the report then "
                         "covers only them)")
    ap.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--dump-records", action="store_true",
                    help="also write every run's per-request records to routing-records.json (for tuning)")
    args = ap.parse_args()
    if args.duration is None:
        args.duration = 8.0 if args.quick else 40.0
    if not (2 <= args.duration <= 300 and 1 <= args.workers <= 64):
        ap.error("--duration must be 2..300 s and --workers 1..64")
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "routing.png"

    began = time.monotonic()
    runs = {}
    for scenario in SCENARIOS:
        for policy in POLICIES:
            if args.only is not None and f"{scenario}/{policy}" not in args.only:
                continue
            print(f"{scenario} / {policy}: {args.duration:.0f} s, {args.workers} workers", flush=True)
            run = runs[(scenario, policy)] = run_one(scenario, policy, args, args.seed)
            s = summarize(run)
            print(f"    {s['requests']} ok, {s['errors']} errors, TTFT mean {s['ttft_mean']:.0f} ms, "
                  f"tokens/s {s['tps_mean']:.1f}, share before {fmt_share(s['share_pre'])}, "
                  f"after {fmt_share(s['share_post'])}, follow {fmt_follow(s['follow'])}, "
                  f"m3>m1 after {fmt_follow(s['overtake'])}, misrouted {s['misrouted']}, "
                  f"sims saw {run['sim_counts']}", flush=True)
    wall = time.monotonic() - began
    if args.dump_records:
        dump = [{k: v for k, v in run.items()} for run in runs.values()]
        (out_dir / "routing-records.json").write_text(json.dumps(dump))
    if len(runs) == len(SCENARIOS) * len(POLICIES):
        plot(runs, png, args.quick)
    else:
        png = None
    print(report(runs, args, wall, out_dir, png))
    print(f"wrote {out_dir / 'routing.md'}{f' and {png}' if png else ''} in {wall:.0f} s")


if __name__ == "__main__":
    main()
