# rescue: developer entry points. `make test` and `make drill` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: test lint pytest deps venv bench pyz iso drill clean

test: deps venv lint pytest

deps:
	bash build/system-deps.sh

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check rescue tests build bench
	$(BIN)/ruff format --check rescue tests build bench
	@if command -v shellcheck >/dev/null; then shellcheck $$(git ls-files '*.sh'); fi

pytest: venv
	$(BIN)/pytest $(PYTEST_ARGS)

bench: deps venv
	$(BIN)/python -m bench $(BENCH_ARGS)

pyz: venv
	$(BIN)/python build/pyz.py

clean:
	rm -rf $(VENV) dist build/out .pytest_cache
