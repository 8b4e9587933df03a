# aiops-stream — common tasks. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
AIOPS   = $(BIN)/aiops
DATA   ?= ../shared/data

.PHONY: install kafka-up kafka-down kafka-status worker demo test test-unit test-kafka check fmt \
        bench bench-nab bench-loghub bench-rca bench-predict bench-detectors bench-pipeline bench-e2e bench-chaos bench-cardinality bench-soak clean

$(BIN)/aiops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/aiops

kafka-up: install
	$(AIOPS) kafka up

kafka-down: install
	$(AIOPS) kafka down

kafka-status: install
	$(AIOPS) kafka status

worker: kafka-up
	$(AIOPS) worker

## The main job end to end: local Kafka, a worker, a sample fault scenario, what came out.
demo: kafka-up
	$(AIOPS) demo

## Every test, the Kafka ones included (they start the local broker when none is running).
test: kafka-up
	$(BIN)/pytest -q --doctest-modules detectors rca ingest streams notify console tests

test-unit: install
	$(BIN)/pytest -q -m "not kafka" tests

test-kafka: kafka-up
	$(BIN)/pytest -q -m kafka tests

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench-nab: install
	$(BIN)/python -m benchmarks.nab --data $(DATA)/nab/data --labels $(DATA)/nab/labels/windows.json --out build/nab

bench-loghub: install
	$(BIN)/python -m benchmarks.loghub --data $(DATA)/loghub

bench-rca: install
	$(BIN)/python -m benchmarks.rca --data $(DATA)/rca/sock-shop

bench-predict: install
	$(BIN)/python -m benchmarks.predict --data $(DATA)/nab --split report --seed 2

bench-detectors: install
	$(BIN)/python -m benchmarks.detectors

bench-pipeline: install
	$(BIN)/python -m benchmarks.pipeline

bench-e2e: kafka-up
	$(BIN)/python -m benchmarks.e2e

bench-chaos: install
	$(BIN)/python -m benchmarks.chaos

bench-cardinality: kafka-up
	$(BIN)/python -m benchmarks.cardinality

bench-soak: kafka-up
	$(BIN)/python -m benchmarks.soak --minutes 30

bench: bench-nab bench-loghub bench-rca bench-predict bench-detectors bench-pipeline

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
