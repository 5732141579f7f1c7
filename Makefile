# The two user commands: `make demo` and `make test`. Everything else here is their setup.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Setup reruns only when pyproject.toml changes: the stamps carry its hash.
HASH := $(shell sha256sum pyproject.toml | cut -c1-12)
DEMO_STAMP := $(VENV)/.setup-all-$(HASH)
TEST_STAMP := $(VENV)/.setup-all-dev-$(HASH)

.PHONY: demo test

demo: $(DEMO_STAMP)
	$(BIN)/garagelab tour

# the local model stack (llama-server + a small GGUF) lives in ~/.cache/garagelab, outside the
# clone: built once (about 10 min on 2 cores), a no-op check afterwards
# playground's tests run in a process of their own: with MuJoCo's GL stack loaded beside
# PyTorch and JAX for the whole session, the test process segfaulted late in the run
test: $(TEST_STAMP)
	$(BIN)/python -m garagelab.llm.install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest --ignore=tests/playground
	$(BIN)/pytest tests/playground

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(DEMO_STAMP): | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[all]'
	touch $@

$(TEST_STAMP): | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[all,dev]'
	touch $@
