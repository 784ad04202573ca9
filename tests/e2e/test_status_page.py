"""The live status page (`<status_path>/ui`) in headless Chromium, against real Envoy.

Chromium runs offline: every flag below keeps it from calling home, and the page itself may
only talk to the router. Set UPDATE_SCREENSHOT=1 to rewrite docs/status-page.png.
"""
from __future__ import annotations

import base64
import http.server
import json
import os
import select
import shutil
import struct
import subprocess
import threading
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from harness import ROOT

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--no-default-browser-check",
    "--hide-scrollbars", "--mute-audio",
]
SCREENSHOT_DOC = ROOT / "docs" / "status-page.png"


def chromium_binary() -> str | None:
    # Debian's /usr/bin/chromium wrapper adds --enable-remote-extensions; the binary itself
    # starts with exactly the flags given here.
    for candidate in (os.environ.get("CHROMIUM"), "/usr/lib/chromium/chromium",
                      shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


CHROMIUM = chromium_binary()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def chromium(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
    out = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


class Browser:
    """Chromium driven over the DevTools protocol on a pipe (fds 3 and 4): no port, no deps."""

    def __init__(self, tmp_path: Path, width: int, height: int):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes():
            # Through high numbers first, so neither pipe end is overwritten by the other.
            os.dup2(to_browser_r, 100)
            os.dup2(from_browser_w, 101)
            os.dup2(100, 3)
            os.dup2(101, 4)

        profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
        self.proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipes, pass_fds=(3, 4),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id, self._buffer, self.session = 0, b"", None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def call(self, method: str, timeout: float = 30, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:  # events and other replies are not ours
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError(f"{method}: no reply from Chromium in {timeout}s")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError(f"{method}: Chromium exited ({self.proc.poll()})")
            self._buffer += chunk

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(expression):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not shown within {timeout}s")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)


class Dom(HTMLParser):
    """Rows of the page's tables as {model: {cell class: text}}, chart paths, the message."""

    def __init__(self, html: str):
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.paths: dict[str, list[str]] = {}
        self.message = ""
        self.message_class = ""
        self._row = None
        self._cell = None
        self._svg = None
        self._in_message = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-model" in a:
            self._row = self.rows.setdefault(a["data-model"], {})
        elif tag == "td" and self._row is not None:
            self._cell = (a.get("class") or "name").split()[0]
            self._row[self._cell] = ""
        elif tag == "path" and "data-model" in a:
            self.paths.setdefault(self._svg, []).append(a["data-model"])
        elif tag == "svg":
            self._svg = a.get("id")
        elif a.get("id") == "msg":
            self._in_message = True
            self.message_class = a.get("class") or ""

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None
        elif tag == "td":
            self._cell = None
        elif tag == "div":
            self._in_message = False

    def handle_data(self, data):
        if self._row is not None and self._cell:
            self._row[self._cell] += data
        if self._in_message:
            self.message += data


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB(A) pixels of an 8-bit truecolour PNG, decoded with zlib."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    previous = bytearray(stride)
    pixels = []
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, cur = line[0], bytearray(line[1:])
        for i in range(stride):
            left = cur[i - bpp] if i >= bpp else 0
            up = previous[i]
            up_left = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                cur[i] = (cur[i] + left) & 0xFF
            elif kind == 2:
                cur[i] = (cur[i] + up) & 0xFF
            elif kind == 3:
                cur[i] = (cur[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
                cur[i] = (cur[i] + pred) & 0xFF
        pixels.extend(bytes(cur[x:x + 3]) for x in range(0, stride, bpp))
        previous = cur
    return width, height, pixels


def status(router) -> dict:
    # A new connection each time, so either Envoy worker may answer.
    return requests.get(f"{router.envoy.url}/model-router/status", timeout=5,
                        headers={"connection": "close"}).json()


@pytest.fixture
def busy_router(sims, router):
    """Three models of different speeds, one outside the pool, with streamed traffic behind them."""
    fast = sims("fast", ttft_ms=20, tokens_per_sec=400, output_tokens=8)
    balanced = sims("balanced", ttft_ms=60, tokens_per_sec=150, output_tokens=8)
    big = sims("big", ttft_ms=120, tokens_per_sec=60, output_tokens=8)
    r = router([fast, balanced, big], {"default": ["big", "balanced", "fast"]})
    sent = {"fast": 0, "balanced": 0, "big": 0}
    for model in ("fast", "balanced", "big", "fast", "balanced", "big", "fast"):
        r.envoy.stream_chat(model)
        sent[model] += 1
    for _ in range(3):
        r.envoy.stream_chat("default")  # failover: big is first in the pool
        sent["big"] += 1
    return r, sent


def test_status_counts_every_pick_across_workers(busy_router):
    r, sent = busy_router
    # Envoy keeps one counter per name for both workers, whichever of them answers.
    for _ in range(4):
        picks = {m["name"]: m["picks"] for m in status(r)["models"]}
        assert picks == sent


def test_page_is_served_below_the_status_path_as_html(busy_router):
    r, _ = busy_router
    page = requests.get(f"{r.envoy.url}/model-router/status/ui", timeout=5)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and "https://" not in page.text and "http://" not in page.text
    assert requests.post(f"{r.envoy.url}/model-router/status/ui", timeout=5).status_code == 405


def test_page_renders_models_live_numbers_and_charts(busy_router, tmp_path):
    r, sent = busy_router
    expected = {m["name"]: m for m in status(r)["models"]}
    # Virtual time runs the page's one-second polls without waiting for them in real time.
    out = chromium(tmp_path, f"{r.envoy.url}/model-router/status/ui",
                   "--virtual-time-budget=4000", "--dump-dom")
    dom = Dom(out.stdout)
    assert dom.message_class == "", dom.message
    assert "3 models" in dom.message
    assert set(dom.rows) == {"fast", "balanced", "big"}
    for name, row in dom.rows.items():
        want = expected[name]
        assert row["state"] == "ready"
        assert row["ttft"] == f"{want['ttft_ms']:.1f}", (name, row)
        assert row["tps"] == f"{want['tokens_per_sec']:.1f}", (name, row)
        assert row["slope"] == f"{want['load_slope_ttft']:.2f}", (name, row)
        assert row["picks"] == str(sent[name]), (name, row)
        # No traffic while the page polls: two polls or more give a rate, and it is zero.
        assert row["rate"] == "0.0", (name, row)
        assert row["inflight"] == "0"
    for chart in ("ttft", "tps"):
        assert sorted(dom.paths.get(chart, [])) == ["balanced", "big", "fast"], dom.paths


def test_page_says_when_the_router_is_unreachable(tmp_path):
    page = (ROOT / "src" / "status_page.html").read_bytes()  # the bytes the .wasm embeds

    class RouterThatWentAway(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/model-router/status/ui":
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
            else:
                self.close_connection = True  # no answer at all: a network error

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RouterThatWentAway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model-router/status/ui"
        out = chromium(tmp_path, url, "--virtual-time-budget=4000", "--dump-dom")
    finally:
        server.shutdown()
        thread.join(timeout=10)
    dom = Dom(out.stdout)
    assert dom.message_class == "err", dom.message
    assert "router unreachable at /model-router/status" in dom.message
    assert dom.rows == {}


def test_page_follows_live_traffic_and_screenshot_is_not_blank(busy_router, tmp_path):
    r, _ = busy_router
    stop = threading.Event()

    def traffic():
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            for model in ("default:latency", "default:throughput", "fast"):
                r.envoy.stream_chat(model)

    browser = Browser(tmp_path, 1180, 490)
    worker = threading.Thread(target=traffic, daemon=True)
    try:
        browser.call("Page.navigate", url=f"{r.envoy.url}/model-router/status/ui")
        browser.wait_for("document.querySelectorAll('tr[data-model]').length === 3", 20, "the models")
        worker.start()
        # Live: picks/s of fast (picked directly in every round) rises above zero.
        browser.wait_for("parseFloat(document.querySelector('tr[data-model=fast] .rate').textContent) > 0",
                         30, "a positive picks/s")
        # Real seconds of history, so the charts draw lines rather than single points.
        seconds = 40 if os.environ.get("UPDATE_SCREENSHOT") == "1" else 4
        time.sleep(seconds)
        lines = browser.evaluate("[...document.querySelectorAll('#ttft path')].map(p => p.getAttribute('d'))")
        assert len(lines) == 3 and all(d.count("L") >= 2 for d in lines), lines
        shot = browser.screenshot()
    finally:
        stop.set()
        if worker.is_alive():
            worker.join(timeout=30)
        browser.close()
    width, height, pixels = png_pixels(shot)
    assert (width, height) == (1180, 490)
    colours = set(pixels)
    not_white = sum(1 for p in pixels if p != b"\xff\xff\xff")
    assert len(colours) > 50, f"{len(colours)} colours: a blank or flat page"
    assert not_white > len(pixels) // 100, "almost everything is white"
    # Line colours of the first two models (#1f77b4, #d62728), also their table swatches.
    assert b"\x1f\x77\xb4" in colours and b"\xd6\x27\x28" in colours
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        SCREENSHOT_DOC.write_bytes(shot)
