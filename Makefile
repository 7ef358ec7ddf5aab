# vida-loader developer commands. `make` alone lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
JOB ?=
DEMO_DOCS ?= 50000
DEMO_JOBS ?= 4
MANIFEST_DIR ?= partitions

.DEFAULT_GOAL := help
.PHONY: help install browser demo demo-cosmos test lint verify-counts bench bench-faults bench-generate bench-ru bench-indexes bench-transform bench-live bench-dump bench-dask bench-startup clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@if $(BIN)/python -m pip show bson >/dev/null 2>&1; then \
		echo "the standalone 'bson' package shadows pymongo's bson: remove it" >&2; exit 1; fi
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with test extras (quick when done)

demo: install ## two local servers, 50k service orders with 4 indexes, then config check, plan (4 partitions), run -j 4, status, verify, report, indexes diff, a second job with a transform
	timeout 900 $(BIN)/python -m vida_loader.dev.demo --docs $(DEMO_DOCS) --jobs $(DEMO_JOBS)

demo-cosmos: install ## make demo, reading through a Cosmos DB stand-in at 3,000 RU/s: RU estimate, budget, RU live
	timeout 900 $(BIN)/python -m vida_loader.dev.demo --docs 20000 --jobs $(DEMO_JOBS) --cosmos 3000

browser: ## Debian's chromium, for the test that opens the report as a user sees it (installed when missing)
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium (the report's browser test)" >&2; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo "sudo -n" ); \
		export DEBIAN_FRONTEND=noninteractive; \
		timeout 600 $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || { \
			timeout 300 $$SUDO apt-get update -q >/dev/null 2>&1; \
			timeout 600 $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null; }; }

test: install browser ## run the whole test suite (unit, integration against real local servers, CLI)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install ## every benchmark: copy speed, faults, generate, RU, indexes, transforms, live view, deep verify, follow, dump/restore -> bench/results*.json
	timeout 5400 $(BIN)/python benchmarks/bench_copy.py
	timeout 1200 $(BIN)/python benchmarks/bench_faults.py
	timeout 1800 $(BIN)/python benchmarks/bench_generate.py
	timeout 1800 $(BIN)/python benchmarks/bench_ru.py
	timeout 5400 $(BIN)/python benchmarks/bench_indexes.py
	timeout 1200 $(BIN)/python benchmarks/bench_transform.py
	timeout 1200 $(BIN)/python benchmarks/bench_live.py
	timeout 3600 $(BIN)/python benchmarks/bench_verify.py
	timeout 1800 $(BIN)/python benchmarks/bench_follow.py
	timeout 1800 $(BIN)/python benchmarks/bench_dump.py

bench-faults: install ## what throttling and a 10 s target outage cost a run -> bench/results-faults.json
	timeout 1200 $(BIN)/python benchmarks/bench_faults.py

bench-generate: install ## generate speed per core and against the server's ingest -> bench/results-generate.json
	timeout 1800 $(BIN)/python benchmarks/bench_generate.py

bench-ru: install ## RU used, throttling, --max-rus and w=0/w=1 against a Cosmos DB stand-in -> bench/results-ru.json
	timeout 1800 $(BIN)/python benchmarks/bench_ru.py

bench-indexes: install ## 200k orders with 3 indexes: builds after the data vs indexes during the load -> bench/results-indexes.json
	timeout 5400 $(BIN)/python benchmarks/bench_indexes.py

bench-transform: install ## client CPU per document: raw copy vs filter, identity and rename transforms -> bench/results-transform.json
	timeout 1200 $(BIN)/python benchmarks/bench_transform.py

bench-verify: install ## verify --deep against one plain read of the source, and its peak memory 100k -> 1M documents -> bench/results-verify.json
	timeout 3600 $(BIN)/python benchmarks/bench_verify.py
	timeout 1800 $(BIN)/python benchmarks/bench_follow.py

bench-follow: install ## run --follow at 200 writes/s: catch-up time, lag p50/p95, apply rate vs plain upserts -> bench/results-follow.json
	timeout 1800 $(BIN)/python benchmarks/bench_follow.py

bench-dump: install ## dump (plain, gzip) and restore against run on the same data, file sizes -> bench/results-dump.json
	timeout 1800 $(BIN)/python benchmarks/bench_dump.py

bench-dask: install ## run on a local Dask cluster (2 workers) vs the local pool, both -j 2, same job -> bench/results-dask.json
	timeout 1800 $(BIN)/python benchmarks/bench_dask.py

bench-startup: install ## CPU of --version, --help, status and a spawned worker, beside the bare interpreter -> bench/results-startup.json
	timeout 600 $(BIN)/python benchmarks/bench_startup.py

bench-live: install ## what the live view costs a run: throughput with the view, plain lines, nothing -> bench/results-live.json
	timeout 1200 $(BIN)/python benchmarks/bench_live.py

lint: install ## ruff and mypy
	$(BIN)/ruff check vida_loader tests benchmarks examples
	$(BIN)/ruff format --check vida_loader tests benchmarks examples
	$(BIN)/mypy

verify-counts: install ## count every partition on both sides: make verify-counts JOB=x [MANIFEST_DIR=dir]
	$(BIN)/vida-loader verify $(if $(JOB),--job '$(JOB)') --manifest-dir '$(MANIFEST_DIR)'

clean: ## remove the virtualenv, caches and build files (keeps partitions/)
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
