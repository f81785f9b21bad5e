# Sparkify warehouse: local entry points. `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# make backfill FROM=… TO=… [SOURCE=…] [WAREHOUSE=…]
FROM ?=
TO ?=
SOURCE ?=
WAREHOUSE ?=
# The demo's sample: one public-sized day.
DEMO_DAY ?= 2018-11-01
SAMPLE := .local/sample

.DEFAULT_GOAL := help
.PHONY: help venv sample-data demo backfill report test lint pg-start pg-stop clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

venv: $(STAMP) ## Create .venv with the pinned requirements

$(STAMP): requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -r requirements.txt -c constraints.txt
	touch $@

sample-data: $(STAMP) ## Generate one day of sample data in .local/sample
	$(PY) tools/generate_data.py --out $(SAMPLE) --start $(DEMO_DAY) --days 1

demo: sample-data ## Set everything up, backfill one day, show what landed
	$(PY) tools/backfill.py --from $(DEMO_DAY)T00:00 --to $(DEMO_DAY)T23:00 --source file://$(abspath $(SAMPLE))
	$(PY) tools/report.py

backfill: $(STAMP) ## Run the DAG for every hour FROM..TO (ISO, UTC) [SOURCE=uri] [WAREHOUSE=uri]
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make backfill FROM=2018-11-01T00:00 TO=2018-11-01T23:00 [SOURCE=file:///… | s3://…] [WAREHOUSE=postgresql://…]"; exit 2; }
	$(PY) tools/backfill.py --from "$(FROM)" --to "$(TO)" --source "$(SOURCE)" --warehouse "$(WAREHOUSE)"

report: $(STAMP) ## Show what the warehouse holds [WAREHOUSE=uri]
	$(PY) tools/report.py --warehouse "$(WAREHOUSE)"

test: $(STAMP) ## Run the test suite (starts the embedded PostgreSQL itself)
	$(PY) -m pytest tests

lint: $(STAMP) ## Lint the Python with ruff (Airflow rules included)
	$(VENV)/bin/ruff check dags plugins tools tests

pg-start: $(STAMP) ## Start the embedded PostgreSQL
	$(PY) tools/local_pg.py start

pg-stop: $(STAMP) ## Stop the embedded PostgreSQL
	$(PY) tools/local_pg.py stop

clean: ## Stop the embedded PostgreSQL and delete .local (warehouse, Airflow home, sample data)
	-test -x $(PY) && $(PY) tools/local_pg.py stop
	rm -rf .local
