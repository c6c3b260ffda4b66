# Two entry points (see README): `make book` and `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
CHROMIUM := /usr/bin/chromium
## Preset of `make book`: ci (minutes), default, paper. `make book PRESET=ci`.
PRESET ?= default
## Set TORCH_INDEX to install torch from another index first, e.g. the CPU-only wheels:
## make book TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=

# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine a training loop
# with torch's default (spinning) threads ran 10-20x slower (benchmarks/threads.py).
# Read when torch starts, so it is exported before Python runs; kernels inherit it.
export OMP_WAIT_POLICY := PASSIVE

.PHONY: book test chromium clean clean-cache status

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX),$(PY) -m pip install --quiet torch==2.13.0 --index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## Execute the chapters that are not fresh at $(PRESET) (source, parameters or lib code
## changed, or a failed run) and render the book into _build/html.
book: $(STAMP)
	$(PY) -m lib.book build --preset $(PRESET)

## Each chapter at $(PRESET): fresh, stale (and why) or failed.
status: $(STAMP)
	$(PY) -m lib.book status --preset $(PRESET)

## Library tests, doctests, every chapter at the ci preset, the book build, and a browser pass.
test: $(STAMP) chromium
	$(PY) -m pytest

# Debian's Chromium drives the browser tests (Playwright cannot download its own offline).
chromium:
	@test -x $(CHROMIUM) || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

## Remove the rendered book and executed chapters; keeps data/cache (results, trained weights).
clean:
	rm -rf _build book/chapters notebooks/*.ipynb

## Remove the cache too: joblib results, trained weights, sweep cells, chapter times.
clean-cache: clean
	rm -rf data/cache
