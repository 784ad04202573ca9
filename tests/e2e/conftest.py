import pytest

from harness import CLI, SIM, WASM, Router, RouterXds, Sim


def pytest_sessionstart(session):
    missing = [str(p) for p in (WASM, CLI, SIM) if not p.exists()]
    if missing:
        raise pytest.UsageError(f"build first (make build): missing {', '.join(missing)}")


@pytest.fixture
def sims():
    """Factory for simulated models; all are stopped after the test."""
    started = []

    def make(name, **flags):
        sim = Sim(name, **flags)
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


def stopped_after_test(kind, tmp_path):
    """A factory for `kind(tmp_path, models, pools, **kw)`; all it made are stopped after the test."""
    started = []

    def make(models, pools, **kw):
        r = kind(tmp_path, models, pools, **kw)
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def router(tmp_path):
    """Factory for a router (generated config + real Envoy) in front of given sims."""
    yield from stopped_after_test(Router, tmp_path)


@pytest.fixture
def xds_router(tmp_path):
    """Factory for a router run from `model-router envoy --xds-dir` (file-based xDS)."""
    yield from stopped_after_test(RouterXds, tmp_path)


@pytest.fixture
def trio(sims, router):
    """The standard pool: default = [m1, m2, m3], each a fast simulated model."""
    models = [sims(f"m{i}", ttft_ms=5, output_tokens=4) for i in (1, 2, 3)]
    return router(models, {"default": ["m1", "m2", "m3"]}, settings={"cooldown_base_ms": 2000})
