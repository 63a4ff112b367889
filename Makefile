# newsqa task runner. `make demo` = README command 1, `make test` = README command 2.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
QUESTION ?= Who boycotted the Sochi conference?

.PHONY: setup demo test unit lint typecheck bench clean

$(BIN)/newsqa: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: 2.13.0 is the local CPU wheel (other specs pull CUDA builds).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/newsqa

setup: $(BIN)/newsqa

demo: setup
	$(BIN)/newsqa index corpus
	$(BIN)/newsqa ask "$(QUESTION)"

test: setup
	$(BIN)/python -m pytest -q -rs tests

unit: setup
	$(BIN)/python -m pytest -q tests/unit

lint: setup
	$(BIN)/ruff check qa tests bench
	$(BIN)/ruff format --check qa tests bench

typecheck: setup
	$(BIN)/mypy qa

clean:
	rm -rf index/HEAD index/store-* index/gens index/.lock
