# Two commands do all set-up: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# pip's log is kept quiet; the machine's local wheel index prints harmless "ignored" warnings.
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install demo test lint schemas bench-ingest clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[dev]' 2>&1 | grep -v "is ignored: it is neither" || true
	@$(BIN)/python -c "import marc_batch, torch, prefect" || (echo "install failed" >&2; exit 1)
	# The embedded MovieLens-100K ships inside the recbole wheel; its dependencies are not needed.
	$(PIP) install --no-deps 'recbole==1.2.1' 2>&1 | grep -v "is ignored: it is neither" || true
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/marc-batch ingest --dataset ml-100k

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/marc-batch schemas --check
	$(BIN)/python -m pytest

schemas: install
	$(BIN)/marc-batch schemas

bench-ingest: install
	$(BIN)/python benchmarks/validate_1m.py --rows 1000000 --out benchmarks/results/validate_1m.json

clean:
	rm -rf $(VENV) marc-store .pytest_cache .ruff_cache
