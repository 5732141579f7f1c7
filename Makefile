# The two user commands: `make demo` and `make test`. Everything else here is their setup.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Setup reruns only when pyproject.toml changes: the stamps carry its hash.
HASH := $(shell sha256sum pyproject.toml | cut -c1-12)
DEMO_STAMP := $(VENV)/.setup-all-$(HASH)
TEST_STAMP := $(VENV)/.setup-all-dev-$(HASH)

.PHONY: demo test test-slow

demo: $(DEMO_STAMP)
	$(BIN)/garagelab tour

# the local model stack (llama-server + a small GGUF) lives in ~/.cache/garagelab, outside the
# clone: built once (about 10 min on 2 cores), a no-op check afterwards
# each system's tests in a process of their own: in one process for the whole suite, the first
# `import triton` (PyTorch imports it lazily) after a test rendered with MuJoCo (EGL: Mesa's
# software renderer loads the system's libLLVM) segfaults in libtriton's own LLVM; reproduced
# with a 32 x 32 mujoco.Renderer render followed by `import triton`
# `make test` leaves out the tests marked slow (each over about 10 s on 2 cores: the learning
# runs, profile fits, replicated searches, the tour) to stay under 15 minutes; `make test-slow`
# runs just those, and CI (.ci/run) runs both. pytest's status 5 means "no test selected".
pytest_each_suite = set -e; for suite in $(wildcard tests/[a-z]*/); do $(BIN)/pytest -m "$(1)" $$suite || [ $$? -eq 5 ]; done
test: $(TEST_STAMP)
	$(BIN)/python -m garagelab.llm.install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(call pytest_each_suite,not slow)

test-slow: $(TEST_STAMP)
	$(BIN)/python -m garagelab.llm.install
	$(call pytest_each_suite,slow)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(DEMO_STAMP): | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[all]'
	touch $@

$(TEST_STAMP): | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[all,dev]'
	touch $@
