"""Observability the Envoy way, in real Envoy with the real .wasm: the router's decisions in
filter state (printed by the generated access log), its stats as labelled Prometheus metrics,
and the Grafana dashboard checked against a live scrape."""
from __future__ import annotations

import json
import re

import requests

from harness import ROOT, wait_until

DASHBOARD = ROOT / "deploy" / "grafana" / "model-router-dashboard.json"

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape(value: str) -> str:
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def scrape(router) -> list[tuple[str, dict, float]]:
    """`/stats/prometheus` as (metric, labels, value) samples."""
    text = requests.get(f"{router.envoy.admin}/stats/prometheus", timeout=5).text
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"unparseable Prometheus line: {line!r}"
        labels = {k: unescape(v) for k, v in LABEL_RE.findall(m.group(2) or "")}
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def value(samples, metric: str, **labels) -> float | None:
    """The sample of `metric` whose labels are exactly `labels`."""
    for name, have, v in samples:
        if name == metric and have == labels:
            return v
    return None


def access_lines(router, path="/v1/chat/completions") -> list[str]:
    return [ln for ln in router.envoy.log_text().splitlines() if f'"POST {path}"' in ln]


def wait_for_access_lines(router, n: int) -> list[str]:
    # Envoy flushes access logs every 10 s by default (--file-flush-interval-msec).
    return wait_until(lambda: len(access_lines(router)) >= n and access_lines(router), 30,
                      f"{n} access log lines")


def test_access_log_names_pool_strategy_first_model_and_serving_attempt(trio):
    trio.sims["m1"].set(fail="503")
    r = trio.envoy.chat("default")
    assert r.status_code == 200 and r.headers["x-model-router-attempts"] == "2", r.text
    trio.sims["m1"].set(fail="none")
    direct = trio.envoy.chat("m3")
    assert direct.status_code == 200, direct.text
    lines = wait_for_access_lines(trio, 2)
    failover, named = lines[0], lines[1]
    # The downstream filter's decision, then the last attempt's value set by the upstream filter.
    assert "pool=default strategy=failover first=m1 model=m2 attempt=2 " in failover, failover
    assert "pool=- strategy=direct first=m3 model=m3 attempt=1 " in named, named


def test_access_log_prints_a_dash_for_requests_the_router_did_not_route(trio):
    assert requests.get(f"{trio.envoy.url}/v1/models", timeout=5).status_code == 200
    line = wait_until(lambda: [ln for ln in trio.envoy.log_text().splitlines()
                               if '"GET /v1/models"' in ln], 30, "access log line")[0]
    assert " 200 - - - cluster=- " in line, line


def test_model_names_with_dots_colons_and_slashes_are_exact_prometheus_labels(sims, router):
    dotted, coloned = sims("gpt-4.1", ttft_ms=5, output_tokens=4), sims("qwen:7b/chat", ttft_ms=5, output_tokens=4)
    r = router([dotted, coloned], {"team.a": ["gpt-4.1", "qwen:7b/chat"]})
    before = scrape(r)
    for label in ("gpt-4.1", "qwen:7b/chat"):
        for metric in ("model_router_attempts", "model_router_failures",
                       "model_router_ttft_ms", "model_router_tokens_per_sec"):
            assert value(before, metric, model=label) == 0, (metric, label)
        assert value(before, "model_router_picks", strategy="direct", model=label) == 0
        for strategy in ("failover", "latency", "throughput"):
            assert value(before, "model_router_picks", pool="team.a", strategy=strategy, model=label) == 0

    for _ in range(3):
        r.envoy.stream_chat("team.a")
    r.envoy.stream_chat("qwen:7b/chat")
    dotted.set(fail="503")
    assert r.envoy.chat("team.a").headers["x-model-router-model"] == "qwen:7b/chat"

    after = scrape(r)
    assert value(after, "model_router_picks", pool="team.a", strategy="failover", model="gpt-4.1") == 4
    assert value(after, "model_router_picks", strategy="direct", model="qwen:7b/chat") == 1
    assert value(after, "model_router_attempts", model="gpt-4.1") == 4
    assert value(after, "model_router_attempts", model="qwen:7b/chat") == 2
    assert value(after, "model_router_failures", model="gpt-4.1") == 1
    assert value(after, "model_router_failures", model="qwen:7b/chat") == 0
    assert value(after, "model_router_ttft_ms", model="gpt-4.1") > 0
    assert value(after, "model_router_tokens_per_sec", model="qwen:7b/chat") > 0
    # No router stat is left with its pairs in the name: every one was cut into labels.
    leftovers = {name for name, _, _ in after if name.startswith("model_router_")} - {
        "model_router_picks", "model_router_attempts", "model_router_failures",
        "model_router_ttft_ms", "model_router_tokens_per_sec"}
    assert not leftovers, leftovers


def test_picks_count_per_pool_strategy_and_first_model(trio):
    for model in ("default", "default", "default:latency", "default:throughput"):
        assert trio.envoy.chat(model).status_code == 200
    samples = scrape(trio)
    picks = {(l.get("pool"), l["strategy"]): 0.0 for n, l, _ in samples if n == "model_router_picks"}
    for name, labels, v in samples:
        if name == "model_router_picks":
            picks[(labels.get("pool"), labels["strategy"])] += v
    assert picks[("default", "failover")] == 2
    assert picks[("default", "latency")] == 1
    assert picks[("default", "throughput")] == 1
    assert picks[(None, "direct")] == 0
    assert value(samples, "model_router_picks", pool="default", strategy="failover", model="m1") == 2


# ---------------------------------------------------------------------------------------------
# The Grafana dashboard

METRIC_IN_EXPR = re.compile(r'\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)')
BY_CLAUSE = re.compile(r'\b(?:by|without)\s*\(([^)]*)\)')
LABEL_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"')
PROMQL_WORDS = {"rate", "irate", "increase", "sum", "avg", "max", "min", "histogram_quantile",
                "clamp_min", "topk", "count", "delta", "deriv", "label_replace", "vector"}


def dashboard_queries(dashboard: dict) -> list[str]:
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                exprs.append(node["expr"])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(dashboard)
    return exprs


def test_dashboard_is_valid_json_with_the_promised_panels():
    dashboard = json.loads(DASHBOARD.read_text())
    titles = [p["title"] for p in dashboard["panels"]]
    for wanted in ("Picks/s per model by strategy", "Time to first token", "Output tokens/s",
                   "Failures/s (each starts or extends a cooldown)", "Upstream retries/s",
                   "Requests/s by response class"):
        assert wanted in titles, titles
    assert all(p.get("targets") for p in dashboard["panels"] if p["type"] != "row")
    assert dashboard["templating"]["list"], "a datasource variable makes the dashboard importable"


def test_dashboard_only_queries_metrics_and_labels_a_live_router_exports(trio):
    trio.sims["m1"].set(fail="503")
    for model in ("default", "default:latency", "m2"):
        trio.envoy.chat(model)
    trio.envoy.stream_chat("default:throughput")
    samples = scrape(trio)
    labels_of: dict[str, set[str]] = {}
    for name, labels, _ in samples:
        labels_of.setdefault(name, set()).update(labels)

    dashboard = json.loads(DASHBOARD.read_text())
    for variable in dashboard["templating"]["list"]:
        for metric, label in re.findall(r"label_values\((\w+),\s*(\w+)\)", variable.get("definition", "")):
            assert label in labels_of.get(metric, set()), (metric, label)
    exprs = dashboard_queries(dashboard)
    assert exprs
    for expr in exprs:
        code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values are not metric names
        metrics = [m for m in METRIC_IN_EXPR.findall(code) if m not in PROMQL_WORDS]
        assert metrics, expr
        known = set()
        for metric in metrics:
            assert metric in labels_of, f"{metric} (in {expr!r}) is not exported"
            known |= labels_of[metric]
        used = set(LABEL_MATCHER.findall(expr))
        for clause in BY_CLAUSE.findall(expr):
            used |= {w.strip() for w in clause.split(",") if w.strip()}
        assert used <= known, f"{expr!r} uses labels {used - known} the metrics do not have"
