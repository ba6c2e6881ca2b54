# Two set-up commands, on a fresh machine with only python3 and make:
#   make demo   - install everything, run the whole pipeline on the bundled credit data
#   make test   - install everything, run the whole test suite
# uv is bootstrapped into .tools/ when it is not on PATH.

SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif
export UV_LINK_MODE ?= copy
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: demo test sync bench clean

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv

.venv/.synced: uv.lock pyproject.toml runtime/pyproject.toml converters/pyproject.toml | $(UV)
	$(UV) sync --frozen --python python3
	touch $@

sync: .venv/.synced

demo: sync
	$(UV) run --frozen --no-sync edgefin demo --out runs/demo

test: sync
	$(UV) run --frozen --no-sync pytest -q

bench: sync
	$(UV) run --frozen --no-sync python benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache
