# Quick start: `make demo` (set up, seed, configure, run) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA ?= $(CURDIR)/data
export COMPLIANCE_DATA_DIR ?= $(DATA)
export DAGSTER_HOME ?= $(DATA)/dagster_home

.PHONY: demo dev test test-fast lint validate benchmarks benchmarks-quick demo-reset dagster-home

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

dagster-home:
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## demo: create the embedded databases, seed demo data, apply examples/, run the reports
demo: $(STAMP) dagster-home
	$(BIN)/compliance-reports demo run --examples examples

## demo-reset: forget the demo's databases, Dagster runs and files
demo-reset:
	rm -rf $(DATA)

## dev: the Dagster webserver and daemon on the demo's DAGSTER_HOME (http://127.0.0.1:3000)
dev: $(STAMP) dagster-home
	set -a; [ ! -f $(DATA)/demo.env ] || . $(DATA)/demo.env; set +a; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

## test: the whole suite (PostgreSQL tests need the server on 127.0.0.1:5432)
test: $(STAMP)
	$(BIN)/pytest

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not postgres"

validate: $(STAMP) dagster-home
	$(BIN)/dagster definitions validate -w workspace.yaml

## benchmarks: every benchmarks/*.py (PostgreSQL on 127.0.0.1:5432); each prints its ratio
## against a baseline measured in the same run; all run, the status says if any missed
benchmarks: $(STAMP)
	status=0; for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || status=1; done; exit $$status

## benchmarks-quick: the same at smaller sizes (BENCH_QUICK=1: 200k events instead of 1M-2M)
benchmarks-quick:
	BENCH_QUICK=1 $(MAKE) benchmarks
