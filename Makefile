# ILP Gateway: `make run` serves the API on 127.0.0.1:8080/fhir; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FHIR_PACKAGE := .cache/fhir/hl7.fhir.r4.examples-4.0.1/package/package.json
# A first look needs no token: `make run` serves without authentication (loopback only, with a
# loud warning) unless ILP_AUTH is set in the environment (docs/security.md).
ILP_AUTH ?= off

.PHONY: install run test lint fhir-package bench clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

fhir-package: $(FHIR_PACKAGE)

$(FHIR_PACKAGE): | $(VENV)/.installed
	ILP_PACKAGE_CACHE=.cache/fhir $(BIN)/ilp package fetch

run: install fhir-package
	$(BIN)/ilp db upgrade
	$(BIN)/ilp profiles load
	$(BIN)/ilp demo load
	ILP_AUTH=$(ILP_AUTH) $(BIN)/ilp serve

test: install fhir-package
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/crud.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
