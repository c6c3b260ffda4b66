# Two entry points (see README): `make book` and `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
CHROMIUM := /usr/bin/chromium

.PHONY: book test chromium clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## Execute every chapter at the default preset and render the book into _build/html.
book: $(STAMP)
	$(PY) -m lib.book build --preset default --rerun

## Library tests, doctests, every chapter at the ci preset, the book build, and a browser pass.
test: $(STAMP) chromium
	$(PY) -m pytest

# Debian's Chromium drives the browser tests (Playwright cannot download its own offline).
chromium:
	@test -x $(CHROMIUM) || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

clean:
	rm -rf _build book/chapters data/cache notebooks/*.ipynb
