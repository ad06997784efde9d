# make book   build the HTML book into _build/html (creates .venv on first use)
# make test   unit + property tests, every notebook under nbval (strict), warning-free build
# make check-html   build, then load every page in headless Chromium
# make bench  the measured benchmark suite, sized to this machine's device
# make check-colab   run every notebook in a cached venv mirroring Colab (STACK=old: older)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0

.PHONY: book test unit notebooks build-strict check-html bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --keep-going
	@echo "Book: $(CURDIR)/_build/html/index.html"

test: unit notebooks build-strict

unit: $(STAMP)
	$(PY) -m pytest tests -q -p no:cacheprovider

notebooks: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
	  --nbval-cell-timeout=600 --nbval-sanitize-with tests/nbval_sanitize.cfg book

build-strict: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo "Book: $(CURDIR)/_build/html/index.html"

# Debian's Chromium, driven by Playwright (which never downloads a browser of its own here).
check-html: build-strict
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
	$(PY) tools/check_html.py _build/html

bench: $(STAMP)
	$(PY) -m attn_lib.bench

# The stack's venv is built once and cached outside the checkout (see tools/check_colab.py).
STACK ?= colab
.PHONY: check-colab check-colab-old
check-colab: $(STAMP)
	$(PY) tools/check_colab.py --stack $(STACK)

check-colab-old: $(STAMP)
	$(PY) tools/check_colab.py --stack old

clean:
	rm -rf _build
