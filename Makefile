# pvbess-twin — every target installs what it needs (a fresh machine needs only python3).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Two installs: the run time (what `twin run`, `report`, `ab`, `hil` ... need; the `rl`
# controller runs ONNX on onnxruntime) and, on top, the dev tools + the training extra
# (torch, Stable-Baselines3) that only the tests, the benchmarks and `twin train` use.
RUNTIME_STAMP := $(VENV)/.runtime-stamp
DEV_STAMP := $(VENV)/.dev-stamp

.PHONY: install install-runtime demo test test-fast bench lint sysdeps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $(RUNTIME_STAMP)

$(DEV_STAMP): pyproject.toml $(RUNTIME_STAMP)
	$(PY) -m pip install -q -e '.[dev,train]'
	# NREL BLAST-Lite, the reference the ageing tests compare the twin's port with: its
	# 1.1.1 pins numpy < 2 (the port needs none of it), so it comes without its pins.
	$(PY) -m pip install -q --no-deps 'blast-lite==1.1.1'
	$(PY) -m pip install -q h5pyd geopy
	touch $(DEV_STAMP)

## The run time only (no torch): enough for every command but 'twin train'.
install-runtime: $(RUNTIME_STAMP)

## Everything: run time, dev tools (pytest, ruff, mypy) and the training extra.
install: $(DEV_STAMP)

## Debian packages the tests use (real Prometheus, headless Chromium); installed when missing.
sysdeps:
	@bash scripts/sysdeps.sh

## The main job: a year of the Iquitos site, KPI table printed, outputs and report in runs/annual.
demo: install-runtime
	$(VENV)/bin/twin run scenarios/annual.yaml --out runs/annual
	$(VENV)/bin/twin report runs/annual --out runs/annual/report
	@echo "report: $(CURDIR)/runs/annual/report/report.html"

## The whole test suite (CI runs this; slow tests included).
test: install sysdeps
	$(PY) -m pytest -q -n 2 --dist loadfile

## Quick loop while developing: skip tests marked slow.
test-fast: install
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow"

## Benchmarks: printed figures, never asserted; each beside a reference measured in the same
## run (bare loop, two bare loops in parallel, bare Twin.step ...), medians of 3, load average.
bench: install
	$(PY) benchmarks/annual.py
	@test ! -f benchmarks/memory.py || $(PY) benchmarks/memory.py
	$(PY) benchmarks/trials.py
	$(PY) benchmarks/rl.py
	$(PY) benchmarks/report.py
	$(PY) benchmarks/optimal.py
	$(PY) benchmarks/hil.py
	$(PY) benchmarks/metrics_scrape.py

lint: install
	$(VENV)/bin/ruff check twin adapters controllers simulators tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
