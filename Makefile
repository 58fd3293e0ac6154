# wm_jax: every target installs what it needs from nothing into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax
export XLA_FLAGS ?= --xla_cpu_multi_thread_eigen=true

.PHONY: setup test test-slow play bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,sources]'
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

play: setup
	@if $(BIN)/wm --help | grep -q " play "; then $(BIN)/wm play; else \
	  echo "No trained world ships yet (the Play issue brings them and 'wm play')."; \
	  echo "Meanwhile: $(BIN)/wm info tiny   or   $(BIN)/python benchmarks/step_latency.py"; exit 1; fi

bench: setup
	$(BIN)/python benchmarks/step_latency.py --config tiny

clean:
	rm -rf $(VENV) .cache
