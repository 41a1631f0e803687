# Quick start: `make demo` (set up, seed, configure, run) and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA ?= $(CURDIR)/data
export COMPLIANCE_DATA_DIR ?= $(DATA)
# One environment: the CLI's loader reads $COMPLIANCE_ENV_FILE (default $(DATA)/compliance.env,
# written by the demo), the process environment winning, and fixes DAGSTER_HOME.
LOAD_ENV := exports="$$($(BIN)/compliance-reports env --shell)" && eval "$$exports"

# `dagster dev` and `dagster definitions validate` warn that `dg` supersedes them on every start.
# `dg` works too ([tool.dg] in pyproject.toml; `dg dev`, `dg check defs`, `dg list defs`, run
# after `$(LOAD_ENV)`), but these targets keep the dagster CLI, so exactly those two messages
# are ignored.
dev validate: export PYTHONWARNINGS = ignore:Function `dev_command` is superseded,ignore:Function `definitions_validate_command` is superseded

.PHONY: demo dev test test-fast lint validate benchmarks benchmarks-quick demo-reset dagster-home

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

dagster-home: $(STAMP)
	$(BIN)/compliance-reports env

## demo: create the embedded databases, seed demo data, apply examples/, run the reports
demo: $(STAMP)
	$(BIN)/compliance-reports demo run --examples examples

## demo-reset: forget the demo's databases, Dagster runs and files
demo-reset:
	rm -rf $(DATA)

## dev: the Dagster webserver and daemon on the demo's DAGSTER_HOME (http://127.0.0.1:3000),
## with the demo's mail catcher on the port recorded in the environment file
dev: $(STAMP)
	$(LOAD_ENV) && { \
	$(BIN)/compliance-reports demo mail-catcher & catcher=$$!; \
	trap 'kill $$catcher 2>/dev/null' EXIT; \
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000; }

## test: the whole suite (PostgreSQL tests need the server on 127.0.0.1:5432)
test: $(STAMP)
	$(BIN)/pytest

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow and not postgres"

validate: $(STAMP)
	$(LOAD_ENV) && $(BIN)/dagster definitions validate -w workspace.yaml

## benchmarks: every benchmarks/*.py (PostgreSQL on 127.0.0.1:5432); each prints its ratio
## against a baseline measured in the same run; all run, the status says if any missed
benchmarks: $(STAMP)
	status=0; for b in benchmarks/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || status=1; done; exit $$status

## benchmarks-quick: the same at smaller sizes (BENCH_QUICK=1: 200k events instead of 1M-2M)
benchmarks-quick:
	BENCH_QUICK=1 $(MAKE) benchmarks
