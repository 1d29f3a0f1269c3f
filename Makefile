# ParkOps: `make run` serves the demo campus, `make test` runs the suite (embedded services).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install xmlsec1 run test test-services test-browser fuzz-api lint format clean bench-ingest bench-read bench-pages bench-checkout bench-push

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/parkops db upgrade
	$(BIN)/parkops seed-demo
	$(BIN)/parkops run

# The SSO tests sign SAML answers with pysaml2, which needs Debian's xmlsec1: installed here if missing.
xmlsec1:
	@command -v xmlsec1 >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq xmlsec1 >/dev/null; } || { echo "the SSO tests need xmlsec1 (apt-get install xmlsec1)" >&2; exit 1; }

test: install xmlsec1
	$(BIN)/pytest -m "not browser and not services"

# The same suite on real PostgreSQL, Redis and Mosquitto (see .ci/run for the variables), plus the
# tests marked ``services`` that need those servers' own binaries (a broker restart, say).
test-services: install xmlsec1
	$(BIN)/pytest -m "not browser"

# Journeys in Debian's Chromium driven by Playwright (apt-get install chromium).
test-browser: install xmlsec1
	$(BIN)/pytest -m browser

# Random examples against the OpenAPI document, a few minutes (tests/api/fuzz_openapi.py; the fixed set
# runs in make test). PARKOPS_FUZZ_EXAMPLES: examples per operation. Uses the PARKOPS_TEST_* services.
fuzz-api: install
	$(BIN)/pytest tests/api/fuzz_openapi.py

# Performance figures (README, "Performance"). bench-read empties the PostgreSQL database and the
# Redis database it is given (defaults: parkops_bench, Redis db 14).
bench-ingest: install
	$(BIN)/python bench/ingest.py

bench-read: install
	$(BIN)/python bench/read.py

bench-pages: install
	$(BIN)/python bench/pages.py

# Empties the PostgreSQL database it is given (default: parkops_bench).
bench-checkout: install
	$(BIN)/python bench/checkout.py

# Opens 2,000 streams; uses PARKOPS_REDIS_URL if set (publishes only), else a private redis-server.
bench-push: install
	$(BIN)/python bench/push.py

# ruff, the import contracts (pyproject.toml: layers, no Dash/Flask/jobs in services and models, no
# import circle), then mypy over dashboard/, workers/ and models/.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
