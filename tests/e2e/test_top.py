"""`model-router top --once` against a real router."""
from __future__ import annotations

import subprocess
import threading
import time

from harness import CLI, free_port


def top(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), "top", "--once", *args], capture_output=True, text=True, timeout=60)


def sections(text: str) -> dict[str, list[list[str]]]:
    """{section title: [cells of each model row]}; the column header row is left out."""
    out: dict[str, list[list[str]]] = {}
    title = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            title = line.strip()
            out[title] = []
        elif not line.split()[0] == "MODEL":
            out[title].append(line.split())
    return out


def chat(router, model: str):
    resp = router.envoy.post("/v1/chat/completions",
                             {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    return resp


def test_top_once_shows_pools_models_numbers_and_picks_per_second(sims, router):
    models = [sims(f"m{i}", ttft_ms=10, output_tokens=4) for i in (1, 2, 3)]
    r = router(models, {"default": ["m1", "m2"]})
    for _ in range(5):
        chat(r, "default")  # failover: m1 first
    for _ in range(3):
        chat(r, "m2")
    # While top measures, only m3 gets traffic: its picks/s is positive, the others' zero.
    stop = threading.Event()

    def traffic():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            chat(r, "m3")

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        out = top("--url", f"{r.envoy.url}/model-router/status", "--interval", "2")
    finally:
        stop.set()
        worker.join(timeout=30)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout, "--once prints plain text"
    tables = sections(out.stdout)
    assert list(tables) == ["pool default", "models outside pools"], out.stdout
    assert [row[0] for row in tables["pool default"]] == ["m1", "m2"]
    rows = {row[0]: row for rows in tables.values() for row in rows}
    # MODEL STATE INFLIGHT TTFT_MS TOKENS/S PICKS/S PICKS ERRORS
    for name in ("m1", "m2", "m3"):
        assert rows[name][1] == "ready", out.stdout
        assert float(rows[name][3]) > 0, out.stdout  # TTFT measured from streamed traffic
        assert rows[name][7] == "0.0%", out.stdout
    assert (rows["m1"][6], rows["m2"][6]) == ("5", "3"), out.stdout
    assert (rows["m1"][5], rows["m2"][5]) == ("0.0", "0.0"), out.stdout
    assert float(rows["m3"][5]) > 0, out.stdout
    assert int(rows["m3"][6]) > 0, out.stdout


def test_top_shows_cooling_models(sims, router):
    good, bad = sims("good", ttft_ms=5), sims("bad", ttft_ms=5)
    r = router([bad, good], {"default": ["bad", "good"]}, settings={"cooldown_base_ms": 30000})
    bad.set(fail="503")
    chat(r, "default")  # bad fails, good answers; bad cools down for 30 s
    out = top("--url", f"{r.envoy.url}/model-router/status", "--interval", "0.2")
    assert out.returncode == 0, out.stderr
    rows = {row[0]: row for row in sections(out.stdout)["pool default"]}
    assert rows["bad"][1].startswith("cooling:"), out.stdout
    assert rows["good"][1] == "ready", out.stdout


def test_top_explains_an_unreachable_router_or_a_wrong_path(trio):
    nothing = f"http://127.0.0.1:{free_port()}/model-router/status"
    out = top("--url", nothing, "--interval", "0.2")
    assert out.returncode == 1
    assert f"cannot reach the router at {nothing}" in out.stderr
    assert out.stdout == ""
    wrong = f"{trio.envoy.url}/not-the-status"
    out = top("--url", wrong, "--interval", "0.2")
    assert out.returncode == 1
    assert f"{wrong} answered HTTP 404" in out.stderr
