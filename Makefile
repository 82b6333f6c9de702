# The hub's set-up in two commands: `make demo` and `make test`. `make` lists every target.
#
# Needs only Python >= 3.11 and make: everything else is installed into .venv, and installed
# again only when pyproject.toml changes. Every target can be run again safely.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.hub-installed
PYTHON ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help install demo test test-services lint format bench bench-mappings bench-mllp bench-ingest clean

help: ## List the targets (the default)
	@echo "usage: make TARGET   (first time: make demo, or make test)"
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:[^#]*## / {printf "  %-14s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv with the first Python >= 3.11 found and install the hub (-e .[dev])

$(BIN)/python:
	@PYTHON="$(PYTHON)" bash scripts/bootstrap $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "error: $(VENV) has Python < 3.11: run 'make clean' first" >&2; exit 1; }
	@echo "installing the hub and its dev tools into $(VENV)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --editable '.[dev]'
	@touch $@

demo: $(STAMP) ## Install, feed the example sources through the hub, show the shared record, keep serving it
	$(BIN)/hub demo

test: $(STAMP) test-services ## Install the dev environment and run the whole suite (conformance on the embedded store and on HAPI): ruff check, ruff format --check, pytest
	@status=0; \
	echo "--- ruff check"; $(BIN)/ruff check . || status=1; \
	echo "--- ruff format --check"; $(BIN)/ruff format --check . || status=1; \
	echo "--- pytest"; HUB_TEST_FHIR_URL=$$(bash scripts/hapi url) $(BIN)/pytest $(PYTEST_ARGS) || status=1; \
	exit $$status

# PostgreSQL for the hub's state (the tests run every state test on SQLite and PostgreSQL), and
# HAPI FHIR on it for the conformance suite's remote backend (scripts/hapi: built with Maven the
# first time, started on 127.0.0.1:8090). Each is installed and started only when missing.
test-services: ## Start the services the tests need: PostgreSQL and HAPI FHIR (scripts/postgres, scripts/hapi)
	@url=$$(bash scripts/postgres start); echo "test-services: PostgreSQL at $$url"
	@url=$$(bash scripts/hapi start); echo "test-services: HAPI FHIR at $$url"

lint: $(STAMP) ## Check the code without changing it: ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Rewrite the code in place: ruff check --fix and ruff format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## Benchmark the embedded store: hub bench store (100,000 patients; BENCH_ARGS="--patients 2000")
	$(BIN)/hub bench store $(BENCH_ARGS)

bench-mappings: $(STAMP) ## Benchmark the mappings: hub bench mappings (100,000 records of each kind)
	$(BIN)/hub bench mappings $(BENCH_ARGS)

bench-mllp: $(STAMP) ## Benchmark MLLP ingestion end to end: hub bench mllp (ACK latency, messages/s applied)
	$(BIN)/hub bench mllp $(BENCH_ARGS)

bench-ingest: $(STAMP) ## Benchmark file ingestion: hub bench ingest (1,000,000 CSV rows, peak memory)
	$(BIN)/hub bench ingest $(BENCH_ARGS)

clean: ## Stop the test HAPI FHIR and PostgreSQL; remove .venv, .hub-data, .build and caches (nothing tracked by git)
	-@bash scripts/hapi stop
	-@bash scripts/postgres stop
	rm -rf $(VENV) .hub-data .pytest_cache .ruff_cache .build hub.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
