# Two commands set everything up on a fresh machine with Python >= 3.11 and pip:
#   make demo   -> virtual environment, full install, digitize + classify the bundled example
#   make test   -> virtual environment, full install, the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-all

.PHONY: demo test lint docs install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m examples.demo --out out/demo

test: $(STAMP)
	$(BIN)/python -m ruff check ecgdigitize ecgclassify tests benchmarks examples
	$(BIN)/python -m pytest -q -p no:cacheprovider --timeout=900

lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy

docs: $(STAMP)
	$(BIN)/python -m mkdocs build --strict

clean:
	rm -rf $(VENV) site out build *.egg-info
