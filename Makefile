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

.PHONY: install run test lint erd readme-erd clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Create the environment, migrate, and run web + worker + beat (`crm dev`).
run: $(STAMP)
	$(BIN)/crm dev --host $(HOST) --port $(PORT)

## Create the environment and run the whole test suite.
test: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

## Lint, formatting, layer contracts and types.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

## Print the ER diagram of the data model; `make readme-erd` refreshes the README copy.
erd: $(STAMP)
	$(BIN)/crm erd

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis

readme-erd: $(STAMP)
	$(BIN)/crm erd --write-into README.md
