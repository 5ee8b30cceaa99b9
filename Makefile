# Every target sets up .venv itself on a fresh machine (CPU build of torch first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: bench bench-full test test-all lint docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[bench,anchors,fast,docs]' \
		'pytest>=8' 'hypothesis>=6.100' 'ruff>=0.5' 'mypy>=1.10'
	touch $(STAMP)

# The headline claims of every suite at quick scale (the runner prints its estimate).
bench: $(STAMP)
	$(VENV)/bin/itersolve bench --headline --scale quick --out bench-results

# Every case of every suite at quick scale (over an hour); --scale full for papers.
bench-full: $(STAMP)
	$(VENV)/bin/itersolve bench --scale quick --out bench-results-full

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest -q tests src/itersolve

test-all: lint
	$(VENV)/bin/pytest -q -m 'not gpu' tests src/itersolve

# The Sphinx site (API reference, family pages, gallery) in docs/_build/html;
# any warning fails the build.
docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

clean:
	rm -rf $(VENV) bench-results .pytest_cache .mypy_cache .ruff_cache \
		docs/_build docs/_generated docs/auto_examples docs/families/generated \
		docs/reference/generated docs/generated
