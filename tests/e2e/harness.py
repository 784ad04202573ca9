"""Processes for end-to-end tests: simulated models and a real Envoy running the real .wasm.

Everything binds 127.0.0.1; every wait is bounded.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
WASM = Path(os.environ.get("MODEL_ROUTER_WASM", ROOT / "build" / "model_router.wasm"))
CLI = Path(os.environ.get("MODEL_ROUTER_CLI", ROOT / "target" / "release" / "model-router"))
SIM = Path(os.environ.get("MODEL_SIM", ROOT / "target" / "release" / "model-sim"))
ENVOY = os.environ.get("ENVOY", "envoy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            last_error = e
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s (last error: {last_error})")


class Sim:
    """One simulated OpenAI-compatible model (tools/simulator)."""

    def __init__(self, name: str, **flags):
        self.name = name
        args = [str(SIM), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--model", name]
        for key, value in flags.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        # "model-sim listening on 127.0.0.1:P admin 127.0.0.1:Q model NAME"
        words = line.split()
        if "listening" not in words:
            raise RuntimeError(f"model-sim did not start: {line!r}")
        self.port = int(words[words.index("on") + 1].rsplit(":", 1)[1])
        self.admin = f"http://127.0.0.1:{words[words.index('admin') + 1].rsplit(':', 1)[1]}"
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def set(self, **config):
        r = requests.post(f"{self.admin}/sim/config", json=config, timeout=5)
        r.raise_for_status()
        return r.json()

    def stats(self) -> dict:
        return requests.get(f"{self.admin}/sim/stats", timeout=5).json()

    def reset(self):
        requests.post(f"{self.admin}/sim/reset", timeout=5).raise_for_status()

    def requests(self) -> int:
        return self.stats()["requests"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def generate_bootstrap(config: dict, workdir: Path, port: int, admin: int) -> Path:
    config_path = workdir / "router.json"
    config_path.write_text(json.dumps(config))
    out = subprocess.run(
        [str(CLI), "envoy", str(config_path), "--wasm", str(WASM),
         "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}"],
        capture_output=True, text=True, timeout=30,
    )
    if out.returncode != 0:
        raise RuntimeError(f"model-router envoy failed: {out.stderr}")
    path = workdir / "envoy.yaml"
    path.write_text(out.stdout)
    return path


class Envoy:
    """A real Envoy process; `bootstrap` is a path to its YAML."""

    def __init__(self, bootstrap: Path, port: int, admin: int, env: dict | None = None,
                 concurrency: int = 2, expect_ready: bool = True):
        self.port, self.admin_port = port, admin
        self.url = f"http://127.0.0.1:{port}"
        self.admin = f"http://127.0.0.1:{admin}"
        self.log_path = Path(tempfile.mkstemp(prefix="envoy-", suffix=".log")[1])
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [ENVOY, "-c", str(bootstrap), "--concurrency", str(concurrency),
             "--use-dynamic-base-id", "--log-level", "warn",
             "--component-log-level", "wasm:info"],
            stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        )
        if expect_ready:
            try:
                wait_until(self._ready, 30, "envoy")
            except TimeoutError:
                self.stop()
                raise RuntimeError(f"envoy did not start:\n{self.log_text()[-4000:]}")

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"envoy exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
        r = requests.get(f"{self.admin}/ready", timeout=1)
        if r.status_code != 200:
            return False
        # The listener answers once its workers have loaded the Wasm VMs.
        return requests.get(f"{self.url}/v1/models", timeout=2).status_code == 200

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stat(self, name: str) -> int:
        text = requests.get(f"{self.admin}/stats?filter=^{name}$", timeout=5).text
        for line in text.splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    def post(self, path: str, body, headers: dict | None = None, timeout: float = 20, **kw):
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        hdrs = {"content-type": "application/json", **(headers or {})}
        return requests.post(f"{self.url}{path}", data=data, headers=hdrs, timeout=timeout, **kw)

    def chat(self, model: str, timeout: float = 20, **extra):
        body = {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}
        return self.post("/v1/chat/completions", body, timeout=timeout)

    def stream_chat(self, model: str, prompt: str = "hi") -> str:
        """One streamed chat completion (with usage), read to the end; returns the serving model."""
        body = {"model": model, "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": prompt}]}
        with self.post("/v1/chat/completions", body, stream=True, timeout=20) as resp:
            assert resp.status_code == 200, resp.text
            for _ in resp.iter_lines():
                pass
            return resp.headers["x-model-router-model"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class Router:
    """Simulated models + the generated Envoy config + Envoy, torn down together."""

    def __init__(self, tmp: Path, models: list[Sim], pools: dict, settings: dict | None = None,
                 upstream_names: dict | None = None, extra_model_fields: dict | None = None,
                 env: dict | None = None):
        self.sims = {s.name: s for s in models}
        entries = []
        for s in models:
            entry = {"name": s.name, "endpoint": s.endpoint,
                     "upstream_model": (upstream_names or {}).get(s.name, f"up/{s.name}")}
            entry.update((extra_model_fields or {}).get(s.name, {}))
            entries.append(entry)
        self.config = {"models": entries, "pools": pools}
        if settings:
            self.config["settings"] = settings
        port, admin = free_port(), free_port()
        bootstrap = generate_bootstrap(self.config, tmp, port, admin)
        self.envoy = Envoy(bootstrap, port, admin, env=env)

    def received(self) -> dict[str, int]:
        return {name: s.requests() for name, s in self.sims.items()}

    def stop(self):
        self.envoy.stop()


def sim_config(models: list[Sim], pools: dict, settings: dict | None = None) -> dict:
    """A router config for simulated models, each under its own name (upstream `up/NAME`)."""
    config = {"models": [{"name": s.name, "endpoint": s.endpoint, "upstream_model": f"up/{s.name}"}
                         for s in models],
              "pools": pools}
    if settings:
        config["settings"] = settings
    return config


class RouterXds:
    """Simulated models + Envoy running from a watched file setup (`model-router envoy
    --xds-dir`), whose router config `apply` changes while Envoy runs."""

    def __init__(self, tmp: Path, models: list[Sim], pools: dict, settings: dict | None = None,
                 env: dict | None = None):
        self.tmp = tmp
        self.sims = {s.name: s for s in models}
        self.config = sim_config(models, pools, settings)
        self.dir = tmp / "xds"
        self.applied = 0
        port, admin = free_port(), free_port()
        config_path = tmp / "router.json"
        config_path.write_text(json.dumps(self.config))
        out = subprocess.run(
            [str(CLI), "envoy", str(config_path), "--xds-dir", str(self.dir), "--wasm", str(WASM),
             "--listen", f"127.0.0.1:{port}", "--admin", f"127.0.0.1:{admin}"],
            capture_output=True, text=True, timeout=30,
        )
        if out.returncode != 0:
            raise RuntimeError(f"model-router envoy --xds-dir failed: {out.stderr}")
        self.envoy = Envoy(self.dir / "envoy.yaml", port, admin, env=env)

    def add_sim(self, sim: Sim):
        self.sims[sim.name] = sim

    def apply(self, config: dict) -> subprocess.CompletedProcess:
        """`model-router apply` with `config`; the caller checks the outcome."""
        self.applied += 1
        path = self.tmp / f"router-{self.applied}.json"
        path.write_text(json.dumps(config))
        return subprocess.run([str(CLI), "apply", str(path), "--xds-dir", str(self.dir)],
                              capture_output=True, text=True, timeout=60)

    def resource_files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.dir.glob("*.yaml"))}

    def status(self) -> dict:
        # A new connection each time, so every worker gets to answer.
        return requests.get(f"{self.envoy.url}/model-router/status", timeout=5,
                            headers={"connection": "close"}).json()

    def stop(self):
        self.envoy.stop()
