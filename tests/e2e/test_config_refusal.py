"""A bad router config fails loudly: in `model-router check` and in Envoy itself."""
import json
import re
import subprocess

from harness import CLI, Envoy, free_port, generate_bootstrap


def config_with_models(n: int) -> dict:
    models = [{"name": f"m{i}", "endpoint": f"http://127.0.0.1:{20000 + i}"} for i in range(n)]
    return {"models": models, "pools": {"default": [m["name"] for m in models]}}


def test_21_model_pool_is_refused_by_check(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config_with_models(21)))
    out = subprocess.run([str(CLI), "check", str(path)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert "pools.default" in out.stderr and "20" in out.stderr


def test_21_model_pool_is_refused_by_envoy_with_the_message_in_its_log(tmp_path):
    port, admin = free_port(), free_port()
    bootstrap = generate_bootstrap(config_with_models(20), tmp_path, port, admin)
    # Smuggle a 21-model config into a valid bootstrap, as a hand-written config could.
    bad = json.dumps(json.dumps(config_with_models(21)))
    text = bootstrap.read_text()
    text = re.sub(r'value: "\{.*\}"', lambda _: f"value: {bad}", text)
    bootstrap.write_text(text)
    envoy = Envoy(bootstrap, port, admin, expect_ready=False)
    try:
        try:
            envoy.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        log = envoy.log_text()
        assert "refused its configuration" in log, log[-3000:]
        assert "pools.default" in log
    finally:
        envoy.stop()
