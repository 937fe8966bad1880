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

PY_SOURCES := rescue tests build bench drill iso

lint: venv
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	shellcheck $$(git ls-files | xargs grep -lE '^#!(/usr)?/bin/(env )?(ba)?sh' 2>/dev/null)

pytest: venv
	$(BIN)/pytest $(PYTEST_ARGS)

bench: deps venv
	$(BIN)/python -m bench $(BENCH_ARGS)

pyz: venv
	$(BIN)/python build/pyz.py

# The recovery drill (drill/run.py): patched tgt tape, QEMU guests, backup, wipe, restore, compare, report.
drill: deps venv
	$(BIN)/python -m drill $(DRILL_ARGS)

# `make iso` builds the small rescue ISO dist/rescue.iso; `make iso ISO=some-live.iso` adds rescue to that ISO
# instead (dist/<name>-rescue.iso).
iso: pyz
	@if [ -n "$(ISO)" ]; then \
		python3 -m iso.remaster "$(ISO)" "dist/$$(basename "$(ISO)" .iso)-rescue.iso"; \
	else \
		python3 -m iso.mkimage --out dist/rescue.iso; \
	fi

clean:
	rm -rf $(VENV) dist build/out .pytest_cache
