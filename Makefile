# pvbess-twin — every target installs what it needs (a fresh machine needs only python3).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast bench lint sysdeps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,train]'
	touch $(STAMP)

install: $(STAMP)

## Debian packages the tests use (real Prometheus, headless Chromium); installed when missing.
sysdeps:
	@bash scripts/sysdeps.sh

## The main job: a year of the Iquitos site, KPI table printed, outputs and report in runs/annual.
demo: install
	$(VENV)/bin/twin run scenarios/annual.yaml --out runs/annual
	$(VENV)/bin/twin report runs/annual --out runs/annual/report
	@echo "report: $(CURDIR)/runs/annual/report/report.html"

## The whole test suite (CI runs this; slow tests included).
test: install sysdeps
	$(PY) -m pytest -q -n 2 --dist loadfile

## Quick loop while developing: skip tests marked slow.
test-fast: install
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow"

## Benchmarks: printed figures, never asserted.
bench: install
	$(PY) benchmarks/annual.py
	$(PY) benchmarks/report.py
	$(PY) benchmarks/hil.py
	$(PY) benchmarks/optimal.py
	$(PY) benchmarks/trials.py
	$(PY) benchmarks/metrics_scrape.py
	$(PY) benchmarks/rl.py

lint: install
	$(VENV)/bin/ruff check twin adapters controllers simulators tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf runs .pytest_cache .mypy_cache .ruff_cache
