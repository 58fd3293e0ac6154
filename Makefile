# wm_jax: every target installs what it needs from nothing into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax
export XLA_FLAGS ?= --xla_cpu_multi_thread_eigen=true

.PHONY: setup lint test test-slow play bench browser photos clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,sources]'
	touch $(STAMP)

# Bug-finding rules only (pyproject.toml [tool.ruff]); a second or two.
lint: setup
	$(BIN)/ruff check .

# Two workers, one file each at a time (module-scoped fixtures are built once per file), the
# slowest files first (tests/file_seconds.json, tests/conftest.py); the 15 slowest tests are listed
# at the end, to keep the suite under its 10-minute budget.
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=15

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

# Wallpaper and game-art packages whose pictures the `pan` world trains on (data/photo_library.py;
# BUILD_NOTES "Photographs for `pan`"). Idempotent: installs only what is missing; needs root.
# Not part of `make test`. Then: .venv/bin/python -m wm_jax.datasets.photo_library --out recordings/pan_photos
PHOTO_PACKAGES := plasma-workspace-wallpapers mate-backgrounds ukui-wallpapers lomiri-wallpapers-16.04 \
	lomiri-wallpapers-20.04 wesnoth-1.16-data wesnoth-1.16-did wesnoth-1.16-dm wesnoth-1.16-httt wesnoth-1.16-l \
	wesnoth-1.16-sota wesnoth-1.16-trow wesnoth-1.16-tsg wesnoth-1.16-ttb hedgewars-data supertux-data \
	tuxmath-data tuxtype-data
photos: setup
	@missing=$$(for p in $(PHOTO_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "photos: all $(words $(PHOTO_PACKAGES)) packages installed"; \
	elif [ "$$(id -u)" != 0 ]; then echo "make photos: run as root, or: sudo apt-get install -y --no-install-recommends $$missing" >&2; exit 1; \
	else apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; fi
	$(BIN)/python -c "import sklearn" 2>/dev/null || $(BIN)/python -m pip install --quiet scikit-learn

bench: setup
	$(BIN)/wm bench --config tiny --quantize int8 --out results/bench_tiny.json

clean:
	rm -rf $(VENV) .cache
