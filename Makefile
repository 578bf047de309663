# Each target sets up what it needs: a virtualenv in .venv with the pinned dev dependencies and the
# project itself (editable), which installs the genviral-relay command.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: demo test lint typecheck unit functional infra reliability bench bench-burst schema monitoring openapi venv clean

demo: $(STAMP) ## Run the whole flow locally: Genviral emulator + moto + the real handlers
	$(BIN)/python -m local demo

test: lint typecheck ## The full suite: lint, types, template lint and every test
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src local tests bench
	$(BIN)/ruff format --check src local tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

functional: $(STAMP)
	$(BIN)/python -m pytest -q tests/functional

infra: $(STAMP)
	$(BIN)/python -m pytest -q tests/infra

TRIALS ?= 10
reliability: $(STAMP) ## The fault matrix with TRIALS trials per fault; writes bench/RELIABILITY.md
	PYTHONPATH=src:. $(BIN)/python -m bench.reliability --trials $(TRIALS)

POSTS ?= 1000
bench: $(STAMP) ## The simulated-week benchmark with POSTS posts (writes bench/RESULTS.md), then the webhooks'
	PYTHONPATH=src:. $(BIN)/python -m bench.polling --posts $(POSTS)
	PYTHONPATH=src:. $(BIN)/python -m bench.webhooks

bench-burst: $(STAMP) ## Bursts of posts due in the same minute, Genviral answering slowly; writes bench/BURST.md
	PYTHONPATH=src:. $(BIN)/python -m bench.burst

schema: $(STAMP) ## Regenerate events/schema/relay-event.schema.json and the registry schemas in template.yaml
	PYTHONPATH=src:. $(BIN)/python -m tools.event_schema

monitoring: $(STAMP) ## Regenerate the alarms and the dashboard in template.yaml from tools/monitoring.py
	PYTHONPATH=src:. $(BIN)/python -m tools.monitoring

openapi: $(STAMP) ## Regenerate docs/openapi.json, the OpenAPI document of the HTTP API, from its routes
	PYTHONPATH=src:. $(BIN)/python -m tools.openapi

venv: $(STAMP)

$(STAMP): requirements-dev.txt pyproject.toml src/genviral_relay/__init__.py  # the version: installed metadata
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .  # the genviral-relay command
	@touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
