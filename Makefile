# The dev loop.  `make test` is the README's test command and what CI runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= config.json

.PHONY: setup run status test check lint types bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: setup
	$(VENV)/bin/rosey --config $(CONFIG) run

status: setup
	$(VENV)/bin/rosey --config $(CONFIG) status

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check rosey procs tests bench

types: setup
	$(VENV)/bin/mypy rosey procs bench

check: lint types test

bench: setup
	$(PY) -m bench.scenarios

clean:
	rm -rf $(VENV) run .pytest_cache .mypy_cache .ruff_cache
