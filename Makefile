# The project's commands. `make setup` once, then `make test` or `make demo`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
BROKERS ?= 1
# Markers CI runs: everything except the GPU path (needs an NVIDIA GPU), the compose profile
# (needs a Docker engine) and the vLLM conformance suite (its own environment: make conformance).
MARKERS ?= not gpu and not docker and not conformance
PYTEST_ARGS ?=

.PHONY: lock setup test test-unit conformance demo stack-up stack-down stack-status lint infra-up infra-down infra-status topics clean help gpu-check bench

help:
	@echo "make setup      venv with the locked Python deps + Kafka jars + PostgreSQL binaries"
	@echo "                + the independent Java log verifier (idempotent)"
	@echo "make lock       re-resolve uv.lock after editing pyproject.toml (ARGS=--upgrade-package X)"
	@echo "make test       start Kafka + PostgreSQL, run unit + integration tests, stop them"
	@echo "make test-unit  the unit tests alone (no Kafka, no PostgreSQL; about a minute)"
	@echo "make demo       the main job: local stack + an adapter's journey through it"
	@echo "make stack-up   the demo's stack left running for your own adapter (README: Try your own)"
	@echo "make stack-down unregister the stack's replicas and stop its services"
	@echo "make lint       ruff, mypy (shared/, services/, adapterctl/), import-linter contracts"
	@echo "make infra-up   start Kafka (BROKERS=1|3) and PostgreSQL and leave them running"
	@echo "make infra-down stop them; leaves no java or postgres process of ours"
	@echo "make bench      every benchmark -> benchmarks/results.json and RESULTS.md"
	@echo "make gpu-check  the evaluator on an NVIDIA GPU: transformers, and vLLM if installed"
	@echo "                (never needed by CI; fails saying 'nothing ran' without a GPU)"
	@echo "make conformance our activator against vLLM's own HTTP layer (own venv, no GPU)"

# Installs are locked: uv.lock pins every package (direct and transitive) for every extra.
# `uv sync --locked` refuses a lock that no longer matches pyproject.toml, and installs
# exactly what the lock says (removing anything else). To change a dependency, edit
# pyproject.toml and run `make lock` (README: "Upgrading a dependency").
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
EXTRAS := --extra dev --extra eval --extra archive-s3

$(VENV)/.uv: Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(UV) --version 2>/dev/null | grep -q " $(UV_VERSION) " || $(PY) -m pip install -q "uv==$(UV_VERSION)"
	@touch $@

$(VENV)/.stamp: pyproject.toml uv.lock | $(VENV)/.uv
	$(UV) sync --locked $(EXTRAS) --python $(PY)
	@sha256sum pyproject.toml uv.lock > $@

# Re-resolve after editing pyproject.toml; `make lock ARGS="--upgrade-package torch"` moves one
# package. It needs only uv, not a synced environment (which a stale lock would refuse).
lock: | $(VENV)/.uv
	$(UV) lock --python $(PY) $(ARGS)

setup: $(VENV)/.stamp
	infra/kafka/fetch.sh
	infra/prometheus/fetch.sh
	verifiers/java/build.sh
	@command -v /usr/lib/postgresql/15/bin/initdb >/dev/null || infra/postgres/install.sh
	@# The approval page's browser test drives Debian's chromium, never a downloaded browser.
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
		echo "chromium is not installed: the browser test will be skipped (marker: browser)"

# The test session starts the infrastructure itself (tests/conftest.py runs infra/up.sh)
# and stops what it started, so `make test` alone is honest on a fresh machine.
test: setup
	$(PY) -m pytest -m "$(MARKERS)" $(PYTEST_ARGS)

test-unit: $(VENV)/.stamp
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

demo: setup
	$(PY) infra/demo.py

# The demo's stack without the journey, left running; `source var/stack/env.sh` to use it.
stack-up: setup
	$(PY) infra/stack.py up

stack-down: $(VENV)/.stamp
	$(PY) infra/stack.py down

stack-status: $(VENV)/.stamp
	$(PY) infra/stack.py status

# Benchmarks need the local stack: figures are ratios against baselines from the same run.
bench: setup
	BROKERS=$(BROKERS) infra/up.sh
	$(PY) -m benchmarks.run_all

# Exits non-zero with one line saying "nothing ran" where no CUDA device is visible;
# GPU_CHECK_ARGS=--require-vllm fails too when vllm is not installed
# (services/gpu_evaluator/README.md, "GPU check").
gpu-check: $(VENV)/.stamp
	@$(PY) infra/gpu_check.py $(GPU_CHECK_ARGS)

# The activator's vLLM client against vLLM's own HTTP layer over a stub engine (README:
# "Conformance against vLLM"). Its own environment, synced from the same lock with the gpu
# extra (vllm at the locked version; its torch is the main venv's, hardlinked from uv's cache).
CONFORMANCE_VENV := var/conformance/venv

$(CONFORMANCE_VENV)/.stamp: pyproject.toml uv.lock | $(VENV)/.stamp
	UV_PROJECT_ENVIRONMENT=$(CONFORMANCE_VENV) $(UV) sync --locked --extra gpu --extra dev --python $(PYTHON)
	@sha256sum pyproject.toml uv.lock > $@

conformance: $(CONFORMANCE_VENV)/.stamp
	$(CONFORMANCE_VENV)/bin/python -m pytest -m conformance tests/conformance $(PYTEST_ARGS)

lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check shared services adapterctl tests infra benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

infra-up: setup
	BROKERS=$(BROKERS) infra/up.sh

infra-down:
	infra/down.sh

infra-status:
	infra/status.sh

topics: $(VENV)/.stamp
	set -a; source var/infra.env; $(PY) -m shared.kafka.provision

clean: infra-down
	rm -rf var
