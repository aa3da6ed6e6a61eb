# gpulake: `make demo` runs the main job offline, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# What the demo needs (the CLI extra) and what packaging needs (the core), without the test toolchain.
CLI_STAMP := $(VENV)/.installed-cli
CORE_STAMP := $(VENV)/.installed-core
# AWS provider 6.25.0's schema, read from this wheel's jsii manifest by the Terraform tests (never imported).
PROVIDER_WHEEL := $(VENV)/wheels/cdktf_cdktf_provider_aws-21.22.1-py3-none-any.whl
# checkov pins old boto3 and breaks python-hcl2: it gets a virtualenv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# The real `aws` CLI (awscli v1 from PyPI) pins botocore: it gets a virtualenv of its own too.
AWSCLI_VENV := .venv-awscli
AWSCLI_STAMP := $(AWSCLI_VENV)/.installed
# Debian packages the tests start themselves (PostgreSQL, InfluxDB, promtool, Chromium, npm) or run (systemd-analyze).
SYSTEM_STAMP := $(VENV)/.system-deps
# Test-only TimescaleDB (PGlite WASM build) served over the wire protocol.
TIMESCALE_STAMP := tests/timescale/node_modules/.installed

.PHONY: install demo test lint bench package clean scanner

install: $(SYSTEM_STAMP) $(STAMP) $(PROVIDER_WHEEL) $(CHECKOV_STAMP) $(AWSCLI_STAMP) $(TIMESCALE_STAMP)

$(AWSCLI_STAMP):
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install --quiet awscli
	touch $(AWSCLI_STAMP)

$(SYSTEM_STAMP): scripts/install_system_deps.sh | $(STAMP)
	sh scripts/install_system_deps.sh
	touch $(SYSTEM_STAMP)

$(TIMESCALE_STAMP): tests/timescale/package.json | $(SYSTEM_STAMP)
	cd tests/timescale && npm install --legacy-peer-deps --no-audit --no-fund --loglevel=error
	touch $(TIMESCALE_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP) $(CLI_STAMP) $(CORE_STAMP)

$(CLI_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[cli]"
	touch $(CLI_STAMP) $(CORE_STAMP)

$(CORE_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $(CORE_STAMP)

$(PROVIDER_WHEEL): | $(STAMP)
	$(PY) -m pip download --quiet --no-deps --dest $(VENV)/wheels cdktf-cdktf-provider-aws==21.22.1

$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==3.3.30
	touch $(CHECKOV_STAMP)

demo: $(CLI_STAMP)
	sh scripts/install_system_deps.sh postgres
	$(PY) automated_pipeline.py demo

# The compiled modules (dcgm scanner, table cells), built in place beside their Python twins
# (skipped without a C compiler).
scanner: | $(VENV)/bin/python
	$(PY) setup.py -q build_ext --inplace || echo "no compiled modules: gpulake runs the pure-Python twins"

# Debian's arm64 CPython unpacked for qemu-user: the tests that import the Lambda (aarch64) builds.
AARCH64_PYTHON := build/aarch64-python/usr/bin/python3.11
$(AARCH64_PYTHON): scripts/aarch64_python.sh | $(SYSTEM_STAMP)
	sh scripts/aarch64_python.sh build/aarch64-python

test: install scanner $(AARCH64_PYTHON)
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check lambda loaders gpulake_cli scripts tests automated_pipeline.py

bench: install scanner
	$(PY) scripts/bench_ingest.py
	$(PY) scripts/bench_load.py
	$(PY) scripts/bench_sync.py

package: $(CORE_STAMP)
	$(PY) scripts/package_lambda.py --layers

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(AWSCLI_VENV) tests/timescale/node_modules build dist demo-output
	rm -f lambda/gpulake/formats/*.so
