VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install test lint format docs clean

install:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.lock
	$(PIP) install -q --no-deps --no-build-isolation -e .

test:
	$(PY) -m ruff check neuralc tests bench
	$(PY) -m pytest -q -n 2

lint:
	$(PY) -m ruff check neuralc tests bench
	$(PY) -m ruff format --check neuralc tests bench

format:
	$(PY) -m ruff format neuralc tests bench

docs:
	$(PY) -m neuralc.docs_gen > docs/layers.md
	$(PY) -m neuralc.ir.kernel docs/dialects.md

clean:
	rm -rf $(VENV) build *.egg-info
