# wm_jax: every target installs what it needs from nothing into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax
export XLA_FLAGS ?= --xla_cpu_multi_thread_eigen=true

.PHONY: setup test test-slow play bench browser clean

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

# Serves the default world (`pan`; `doom` is in the page's selector) on http://127.0.0.1:8000/.
# Other worlds: make play PLAY_ARGS="--world doom" or PLAY_ARGS="--checkpoint DIR".
PLAY_ARGS ?=
play: setup
	$(BIN)/wm play $(PLAY_ARGS)

# Headless Chromium + chromedriver from Debian for the browser test (tests/test_play_browser.py).
# Idempotent: installs only what is missing; needs root (CI is root).
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null)"; \
	elif [ "$$(id -u)" != 0 ]; then echo "make browser: run as root, or: sudo apt-get install -y chromium chromium-driver" >&2; exit 1; \
	else apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; fi

bench: setup
	$(BIN)/wm bench --config tiny --quantize int8 --out results/bench_tiny.json

clean:
	rm -rf $(VENV) .cache
