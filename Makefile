# One task file, mirrored by .ci/run. Every target sets up what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM := /usr/bin/chromium

.PHONY: setup demo test lint format typecheck pytest bench clean browser reference-env backends backends-env
BACKENDS_STAMP := $(VENV)/.backends-stamp
PG_INITDB := $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,web]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install sawubona with its development tools

demo: setup ## build the demo world, load it, analyse it, write the report (and serve the web app)
	$(BIN)/sawubona demo $(ARGS)

test: setup lint typecheck browser reference-env backends-env pytest ## everything CI runs: ruff, mypy, all of pytest (PostgreSQL and Spark included)

reference-env: ## lifetimes 0.11.3 in its own virtualenv: the drift lens's reference implementation
	bash bench/reference_env.sh

browser: $(CHROMIUM) ## Debian's Chromium for the browser tests (Playwright drives it)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

backends-env: $(BACKENDS_STAMP) ## PostgreSQL server, Java 17 and the postgres/spark extras for the cross-backend tests
	@if [ -z "$(PG_INITDB)" ] || ! command -v java >/dev/null; then \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			postgresql openjdk-17-jre-headless; fi

$(BACKENDS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev,web,postgres,spark]'
	touch $(BACKENDS_STAMP)

backends: setup backends-env ## only the cross-backend tests (PostgreSQL, Spark)
	$(BIN)/pytest tests/test_backends.py $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest $(PYTEST_ARGS)

bench: setup reference-env ## measure the DESIGN.md §7 targets; appends to bench/RESULTS.md
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) bench/.ref-venv .pytest_cache .mypy_cache .ruff_cache sawubona-demo sawubona.duckdb
