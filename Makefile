# Two commands from a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=
# Most of the suite waits on servers and processes, not the CPU: four workers on two cores.
PYTEST_WORKERS ?= 4
# The fault tests each start several processes (web, workers, servers): fewer at once.
FAULT_WORKERS ?= 3

.PHONY: install run test faults lint docs docs-erd docs-config docs-notifications erd screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $(STAMP)

install: $(STAMP)

## Create the environment, migrate, and run web + worker + beat (`crm dev`).
run: $(STAMP)
	$(BIN)/crm dev --host $(HOST) --port $(PORT)

## Create the environment and run the test suite, the fault-injection tests apart.
test: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal -m "not faults" $(PYTEST_ARGS)

## The fault-injection tests (servers restarted, workers killed, a full disk), with a
## summary table at the end. They all live in tests/integration: only that is collected.
faults: $(STAMP)
	$(BIN)/pytest -n $(FAULT_WORKERS) --dist worksteal -m faults $(PYTEST_ARGS) tests/integration

## Lint, formatting, layer contracts and types.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

## Build the documentation site into ./site; a broken link or a page left out of the nav fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## Refresh the generated parts of the docs: the ER diagram, the configuration reference and
## the notification schemas.
docs-erd: $(STAMP)
	$(BIN)/crm erd --write-into docs/data-model.md

docs-config: $(STAMP)
	$(BIN)/crm config-docs --write-into docs/configuration.md

docs-notifications: $(STAMP)
	$(BIN)/crm notifications-docs --write-into docs/notifications.md

## Screenshots of every console page at 1280 and 390 px into docs/console/ (needs Chromium,
## PostgreSQL and Redis, as the browser tests do).
screenshots: $(STAMP)
	CRM_SCREENSHOT_DIR=docs/console $(BIN)/pytest tests/console/test_screenshots.py tests/console/test_screenshots_work.py -p no:cacheprovider -q

## Print the ER diagram of the data model.
erd: $(STAMP)
	$(BIN)/crm erd

clean:
	rm -rf $(VENV) var site .pytest_cache .mypy_cache .ruff_cache .hypothesis
