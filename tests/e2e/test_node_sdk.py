"""The official `openai` npm client works unchanged through the router.

tests/node/client_checks.mjs holds the checks (chat and legacy completions plain and streamed,
tool calls, the Responses API plain and streamed, embeddings through a pool, the model list,
and the router's errors as the client's own error classes). One Node process runs them all
against one router; each check is reported here as its own test.
"""
import os
import shutil
import subprocess

import pytest

from harness import ROOT, Router, Sim
from test_openai_sdk import Unreachable

NODE_DIR = ROOT / "tests" / "node"
SCRIPT = NODE_DIR / "client_checks.mjs"
NODE = os.environ.get("NODE", shutil.which("node") or "node")


def list_checks() -> list[str]:
    try:
        out = subprocess.run([NODE, str(SCRIPT), "--list"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        # Collected as one failing test instead of none, so a missing Node.js is never silent.
        return [f"node-unavailable:{e}"]
    return out.stdout.split() or [f"node-list-failed:{out.stderr.strip()}"]


CHECKS = list_checks()


@pytest.fixture(scope="module")
def node_results(tmp_path_factory):
    """Starts default = [m1, m2, m3], `limited` (always 429) and `gone` (refused), runs every
    check once, and returns {check: (passed, line)} plus the raw run."""
    sims = [Sim(f"m{i}", ttft_ms=5, output_tokens=4) for i in (1, 2, 3)]
    sims.append(Sim("limited", fail="429", retry_after=7))
    router = None
    try:
        router = Router(tmp_path_factory.mktemp("node"), [*sims, Unreachable("gone")],
                        {"default": ["m1", "m2", "m3"]})
        run = subprocess.run([NODE, str(SCRIPT), f"{router.envoy.url}/v1"], capture_output=True,
                             text=True, timeout=300, cwd=NODE_DIR)
    finally:
        if router:
            router.stop()
        for s in sims:
            s.stop()
    results = {}
    for line in run.stdout.splitlines():
        verdict, _, rest = line.partition(" ")
        name = rest.split(":", 1)[0]
        if verdict in ("ok", "FAIL"):
            results[name] = (verdict == "ok", line)
    return results, run


@pytest.mark.parametrize("check", CHECKS)
def test_official_node_client(node_results, check):
    results, run = node_results
    assert check in results, (
        f"check {check} did not report (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    passed, line = results[check]
    assert passed, line


def test_node_checks_exit_status_matches_their_reports(node_results):
    results, run = node_results
    assert run.returncode == (0 if all(ok for ok, _ in results.values()) else 1), run.stderr
    assert sorted(results) == sorted(CHECKS)
