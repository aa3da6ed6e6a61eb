# gpulake: `make demo` runs the main job offline, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench package clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: install
	$(PY) automated_pipeline.py demo

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check lambda scripts tests automated_pipeline.py

bench: install
	$(PY) scripts/bench_ingest.py

package: install
	$(PY) scripts/package_lambda.py

clean:
	rm -rf $(VENV) build dist demo-output
