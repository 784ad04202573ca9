"""Short form of the reliability fault suite (tests/faults/faults.py): the floors that hold today.

Each scenario starts three fresh simulated models and a fresh router, drives 8 concurrent
workers of mixed streamed and non-streamed `default` requests for about 2 s and injects one
fault at run time. `make faults` runs the long form and writes docs/reliability.md.

Timing checks here are only generous hang bounds, never performance figures.
"""
import collections
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
import faults  # noqa: E402

FORM = faults.QUICK
COOLDOWN_MAX_S = faults.SETTINGS["cooldown_max_ms"] / 1000
ATTEMPT_TIMEOUT_S = faults.SETTINGS["attempt_timeout_ms"] / 1000


def run(name):
    o = faults.run_scenario(name, FORM)
    print(f"{name}: sent {o.sent}, ok {o.count('ok')}, clean {o.count('clean')}, "
          f"lost {o.count('lost')}; " + "; ".join(faults.notes(o)))
    # The load really ran, with both kinds of request.
    assert o.sent >= 40, o.sent
    assert any(r.streamed for r in o.results) and any(not r.streamed for r in o.results)
    return o


def failed_over(o) -> int:
    return sum(r.attempts not in (None, "1") for r in o.results)


def lost_summary(o) -> str:
    return faults.fmt_counter(faults.lost_how(o))


# baseline, 429-storm, 503, 500, refuse, hang, flap
BEFORE_FIRST_BYTE = [s.name for s in faults.SCENARIOS if s.before_first_byte and s.healthy_left]


@pytest.mark.parametrize("name", BEFORE_FIRST_BYTE)
def test_faults_before_the_first_byte_are_absorbed_by_failover(name):
    o = run(name)
    assert o.count("lost") == 0, lost_summary(o)
    assert o.count("ok") == o.sent, faults.fmt_counter(
        collections.Counter(r.how for r in o.results if r.outcome != "ok"))
    served = faults.served_by(o)
    if name == "baseline":
        assert served == {"m1": o.sent} and failed_over(o) == 0
        return
    # The fault was met (some request failed over within itself) and traffic moved to m2.
    assert failed_over(o) >= 1, faults.attempts_dist(o)
    assert served["m2"] > 0 and served["m3"] == 0, served
    # Hang bound: a hung first model costs at most one per-try timeout, never the deadline.
    worst = max(r.latency for r in o.results)
    assert worst < ATTEMPT_TIMEOUT_S + 2, worst


def test_all_down_answers_quickly_with_openai_errors_and_one_attempt_per_model():
    o = run("all-down")
    assert o.count("lost") == 0, lost_summary(o)
    fault_at = o.marks["fault_at"]
    after = [r for r in o.results if r.start >= fault_at + 0.05]
    assert len(after) >= 20
    assert all(r.outcome == "clean" and r.status in (429, 500, 503) for r in after), \
        faults.fmt_counter(collections.Counter(r.how for r in after))
    # At most one attempt per model: the header never exceeds the pool size, and no model
    # read more requests than were sent.
    assert all(r.attempts is not None and 1 <= int(r.attempts) <= 3 for r in after)
    assert all(n <= o.sent for n in o.received.values()), (o.received, o.sent)
    # Bounded: every answer comes back well inside the client deadline, nothing waits on a timeout.
    assert max(r.latency for r in after) < 2.0


def test_recovery_returns_traffic_to_the_first_model_within_the_cooldown():
    o = run("recovery")
    assert o.count("lost") == 0, lost_summary(o)
    f = faults.recovery_figures(o)
    down = f["down"]
    assert down and all(r.outcome == "clean" for r in down)
    assert f["after_heal"] > 0 and f["after_heal_ok"] == f["after_heal"]
    assert f["back_on_m1_s"] is not None and f["back_on_m1_s"] <= COOLDOWN_MAX_S + 1.0, f
    assert f["settled"] > 0 and f["settled_on_m1"] == f["settled"], f


def mid_stream_checks(o, moves_away: bool):
    """What holds today for a fault after the first byte; the rest is a documented gap."""
    after = [r for r in o.results if r.start >= o.marks["fault_at"]]
    # Non-streamed requests meet the fault before their first byte: failover absorbs it.
    plain = [r for r in o.results if not r.streamed]
    assert all(r.outcome == "ok" for r in plain), faults.fmt_counter(
        collections.Counter(r.how for r in plain if r.outcome != "ok"))
    # Only streams that were on the broken model are lost; healthy models lose nothing.
    lost = [r for r in o.results if r.outcome == "lost"]
    assert all(r.streamed and r.model == "m1" for r in lost), lost_summary(o)
    # The client is never held past its own deadline (the route's idle timeout is 300 s).
    assert max(r.latency for r in o.results) <= FORM.deadline + 1.0
    assert any(r.outcome == "ok" and r.model == "m2" for r in after)
    if moves_away:
        # A cut attempt counts as a failure, so cooldown moves later requests away from the
        # broken model: without it every stream would start on m1 (the pool's first model)
        # and be lost.
        streamed_after = [r for r in after if r.streamed]
        assert streamed_after and len(lost) <= len(streamed_after) / 2, \
            (len(lost), len(streamed_after))
    return lost


def test_close_mid_stream_cuts_only_streams_on_the_broken_model_and_never_hangs():
    o = run("close-mid-stream")
    lost = mid_stream_checks(o, moves_away=True)
    # Documented gap: a cut stream is truncated (no [DONE], no SSE error event). It ends at
    # once, not at a timeout.
    assert all(r.latency < 2.0 for r in lost), lost_summary(o)


def test_stall_mid_stream_loses_only_streams_on_the_broken_model():
    o = run("stall-mid-stream")
    # Documented gaps, not asserted: a stalled stream waits for the client's own deadline (or
    # Envoy's 300 s route idle timeout), and its 200 headers count as a success for m1, so
    # streams keep landing on m1 while only the hanging non-streamed requests cool it down.
    mid_stream_checks(o, moves_away=False)


def test_stalled_stream_is_closed_by_the_idle_timeout_and_cools_the_model(sims, router):
    """A stream that stalls after its 200 ends at settings.stream_idle_timeout_ms, and the
    model is not treated as healthy for having started: the next request skips it."""
    import time as _time
    import requests as _requests
    stall = sims("stall", ttft_ms=1, output_tokens=8, fail="stall-mid-stream", fail_after_events=2)
    ok = sims("ok", ttft_ms=1, output_tokens=2)
    r = router([stall, ok], {"default": ["stall", "ok"]},
               settings={"attempt_timeout_ms": 1000, "stream_idle_timeout_ms": 1500,
                         "cooldown_base_ms": 30000, "cooldown_max_ms": 30000})
    started = _time.monotonic()
    with r.envoy.post("/v1/chat/completions", {"model": "default", "stream": True, "messages": []},
                      stream=True, timeout=15) as resp:
        assert resp.headers["x-model-router-model"] == "stall"
        try:
            for _ in resp.iter_lines():
                pass
        except _requests.exceptions.RequestException:
            pass
    assert _time.monotonic() - started < 10
    assert r.envoy.chat("default").headers["x-model-router-model"] == "ok"
