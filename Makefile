# Sparkify warehouse: local entry points. `make` (or `make help`) lists them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Installed once per change of the pinned files.
STAMP := $(VENV)/.installed

# make backfill FROM=… TO=… [SOURCE=…] [WAREHOUSE=…]; make report [WAREHOUSE=…]
FROM ?=
TO ?=
SOURCE ?=
WAREHOUSE ?=
# A warehouse may be connection JSON, quotes and all: recipes read it from the environment, never re-quoted.
export SOURCE WAREHOUSE
# make airflow [PORT=8080] [EXECUTOR=local|celery] [WORKERS=2]
EXECUTOR ?=
WORKERS ?=
SAMPLE := .local/sample
# The demo: a generated week (the generator's --end is excluded), its first day backfilled and
# reported; the other six are there to backfill by date (make backfill, or the UI's backfill form).
DEMO_START := 2018-11-01
DEMO_END := 2018-11-08

.DEFAULT_GOAL := help
.PHONY: help venv sample-data demo backfill backfill-range report test test-unit test-services ui-screenshot lint bench bench-catalog bench-redshift bench-big-hour bench-airflow airflow airflow-stop pg-start pg-stop clean

help: ## List the targets
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create .venv with the pinned requirements (requirements-dev.txt, requirements.txt, constraints.txt) and the project editable

# The project itself goes in editable, without dependencies (pyproject.toml): the tools, benchmarks and
# tests import sparkify (plugins/sparkify), tools and tests from the working tree.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install -qq -e . --no-deps
	touch $@

sample-data: $(STAMP) ## Generate a week of sample data (2018-11-01..07) into .local/sample
	$(PY) tools/generate_data.py --out $(SAMPLE) --start $(DEMO_START) --end $(DEMO_END)

demo: sample-data ## Everything from nothing: venv, a sample week, backfill of its first day, report
	$(PY) tools/backfill.py --from $(DEMO_START)T00:00 --to $(DEMO_START)T23:00 --source file://$(abspath $(SAMPLE))
	$(PY) tools/report.py

backfill: backfill-range $(STAMP) ## Run the DAG for every hour FROM..TO (ISO, UTC) [SOURCE=uri] [WAREHOUSE=uri|json]
	$(PY) tools/backfill.py --from "$(FROM)" --to "$(TO)" $(if $(SOURCE),--source "$$SOURCE") $(if $(WAREHOUSE),--warehouse "$$WAREHOUSE")

# Checked before anything is installed.
backfill-range:
	@if [ -z "$(FROM)" ] || [ -z "$(TO)" ]; then \
		echo "make backfill needs FROM and TO (interval starts, ISO, UTC; both included), e.g."; \
		echo "  make backfill FROM=2018-11-01T00:00 TO=2018-11-01T23:00 [SOURCE=file:///… | s3://bucket/prefix] [WAREHOUSE=postgresql://… | redshift://… | connection JSON]"; \
		exit 2; \
	fi

report: $(STAMP) ## Show what the warehouse holds [WAREHOUSE=uri]
	$(PY) tools/report.py $(if $(WAREHOUSE),--warehouse "$$WAREHOUSE")

test: $(STAMP) ## Run the test suite (it starts the embedded PostgreSQL itself)
	$(PY) -m pytest -q tests

test-unit: $(STAMP) ## Only the unit tier (tests/unit, the package's pure logic: seconds)
	$(PY) -m pytest -q tests/unit

test-services: $(STAMP) ## Only the tests that start the real Airflow services (part of `make test` too)
	$(PY) -m pytest -q -m services tests

ui-screenshot: $(STAMP) ## Refresh the README's UI screenshots, docs/ui-*.png, from the browser test (needs chromium)
	SPARKIFY_UI_SCREENSHOTS=docs $(PY) -m pytest -q -m services tests/services/test_browser.py

lint: $(STAMP) ## ruff (Airflow rules included), sqlfluff on include/sql and plugins/sparkify/sql (.sqlfluff), mypy --strict on dags and plugins, the paths and anchors docs and comments cite
	$(PY) -m ruff check dags plugins tools tests bench
	$(PY) tools/lint_sql.py lint include/sql plugins/sparkify/sql
	$(PY) -m mypy
	$(PY) tools/check_docs.py

bench: $(STAMP) ## Run the benchmarks (minutes; figures in bench/results, see bench/README.md)
	$(PY) bench/staging.py --memory-gb 2
	$(PY) bench/pipeline.py

bench-catalog: $(STAMP) ## S3 and SQS requests per hourly run: song catalogs of 1,000 to 100,000 files with and without the queue, event objects against history (minutes)
	$(PY) bench/catalog_requests.py

bench-big-hour: $(STAMP) ## The big hour: make backfill of 2 M events in one hour against a server-side CSV COPY (minutes)
	$(PY) bench/big_hour.py

bench-redshift: $(STAMP) ## What an hourly run costs on Redshift by staging unit (COPYs, statements, Data API batches, S3 requests) for 1, 12 and 60 objects an hour, no cluster (a minute)
	$(PY) bench/redshift_cost.py

bench-airflow: $(STAMP) ## A month backfilled with `airflow backfill create` under the real scheduler (minutes)
	$(PY) bench/airflow_backfill.py --hourly-days 1

airflow: sample-data ## Start Airflow (UI on PORT, default 8080) [EXECUTOR=celery [WORKERS=2]]; Ctrl-C stops it
	$(PY) tools/airflow_services.py run --port $(or $(PORT),8080) $(if $(SOURCE),--source "$$SOURCE") $(if $(WAREHOUSE),--warehouse "$$WAREHOUSE") $(if $(EXECUTOR),--executor "$(EXECUTOR)") $(if $(WORKERS),--workers "$(WORKERS)")

airflow-stop: $(STAMP) ## Stop an Airflow started with `make airflow` (or `tools/airflow_services.py start`)
	$(PY) tools/airflow_services.py stop

pg-start: $(STAMP) ## Start the embedded PostgreSQL (databases airflow and sparkify)
	$(PY) tools/local_pg.py start

pg-stop: $(STAMP) ## Stop the embedded PostgreSQL
	$(PY) tools/local_pg.py stop

clean: ## Stop the embedded PostgreSQL and delete .local (warehouse, Airflow home, sample data)
	@if [ -x $(PY) ]; then $(PY) tools/local_pg.py stop; fi
	rm -rf .local
