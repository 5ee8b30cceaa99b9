# Every target sets up .venv itself on a fresh machine (CPU build of torch first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: bench test test-all lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[bench,anchors,fast]' \
		'pytest>=8' 'hypothesis>=6.100' 'ruff>=0.5' 'mypy>=1.10'
	touch $(STAMP)

bench: $(STAMP)
	$(VENV)/bin/itersolve bench --scale quick --out bench-results

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q tests src/itersolve

test-all: lint
	$(VENV)/bin/pytest -q -m 'not gpu' tests src/itersolve

clean:
	rm -rf $(VENV) bench-results .pytest_cache .mypy_cache .ruff_cache
