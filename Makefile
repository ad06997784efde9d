# make book   build the HTML book into _build/html (creates .venv on first use)
# make test   unit + property tests, every notebook under nbval (strict), warning-free build
# make check-html   build, then load every page in headless Chromium
# make bench  the measured benchmark suite, sized to this machine's device
# make check-portable   nbval under every OpenBLAS kernel set this CPU runs, 1 and 2 threads
# make check-colab   run every notebook in a cached venv mirroring Colab (STACK=old: older)
# make width-report   code and printed lines wider than the page column, per notebook
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONHASHSEED := 0

.PHONY: book test unit notebooks build-strict check-html bench clean check-portable width-report

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

# Stored outputs must not depend on the BLAS kernel or the thread count. OpenBLAS picks its
# kernels by CPU (SkylakeX with AVX-512, Haswell with AVX2); OPENBLAS_CORETYPE forces one,
# so one machine replays the others. Only kernel sets this CPU can execute are run.
PORTABLE_CORETYPES ?= $(strip \
  $(if $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo y),SkylakeX) \
  $(if $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo y),Haswell) \
  $(if $(shell grep -qw avx /proc/cpuinfo 2>/dev/null && echo y),Sandybridge) \
  $(if $(filter aarch64 arm64,$(shell uname -m)),ARMV8))
PORTABLE_THREADS ?= 1 2

PORTABLE_RUNS := $(foreach c,$(PORTABLE_CORETYPES),$(foreach t,$(PORTABLE_THREADS),portable-$(c)-$(t)))

# One nbval run per kernel set and thread count; `make -j4 check-portable` runs them side by side.
check-portable: $(PORTABLE_RUNS)
	@test -n "$(PORTABLE_CORETYPES)" || { echo "no OpenBLAS kernel set known for this CPU"; exit 1; }
	@echo "check-portable passed: OPENBLAS_CORETYPE in {$(PORTABLE_CORETYPES)} x {$(PORTABLE_THREADS)} thread(s)"

portable-%: $(STAMP)
	@echo "== check-portable: OPENBLAS_CORETYPE=$(word 1,$(subst -, ,$*)), $(word 2,$(subst -, ,$*)) thread(s)"
	OPENBLAS_CORETYPE=$(word 1,$(subst -, ,$*)) OMP_NUM_THREADS=$(word 2,$(subst -, ,$*)) \
	  OPENBLAS_NUM_THREADS=$(word 2,$(subst -, ,$*)) MKL_NUM_THREADS=$(word 2,$(subst -, ,$*)) \
	  $(PY) -m pytest -q -p no:cacheprovider --nbval --nbval-current-env --nbval-cell-timeout=600 \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg book

bench: $(STAMP)
	$(PY) -m attn_lib.bench

# The stack's venv is built once and cached outside the checkout (see tools/check_colab.py).
STACK ?= colab
.PHONY: check-colab check-colab-old
check-colab: $(STAMP)
	$(PY) tools/check_colab.py --stack $(STACK)

check-colab-old: $(STAMP)
	$(PY) tools/check_colab.py --stack old

width-report: $(STAMP)
	$(PY) tools/width_report.py

clean:
	rm -rf _build

# make check-gpu [PY=python3] [WHEELS=.gpu-wheels]   on a CUDA GPU: every notebook under nbval
# (strict), the GPU-only tests and the suite; writes book/data/notebooks-<device>-<date>.json
# beside the suite's bench-<device>-<date>.json (tools/check_gpu.py). It needs no .venv: PY
# may be any Python with a CUDA torch, Triton and the test stack; WHEELS installs that stack
# offline first (pip --no-index --find-links). On a machine without a GPU it exits 2.
# make gpu-wheels   (with network) the stack's cp312 manylinux wheels into .gpu-wheels/
# CHECK_GPU_ARGS passes options (e.g. "--suite quick"; tools/check_gpu.py --help lists them).
GPU_WHEELS ?= .gpu-wheels
CHECK_GPU_ARGS ?=
# PY, unless it is the default .venv's Python and there is no .venv: then $(PYTHON).
CHECK_GPU_PY = $(if $(filter $(VENV)/bin/python,$(PY)),$(if $(wildcard $(PY)),$(PY),$(PYTHON)),$(PY))
.PHONY: check-gpu gpu-wheels
check-gpu:
	$(CHECK_GPU_PY) tools/check_gpu.py $(if $(WHEELS),--wheels $(WHEELS)) $(CHECK_GPU_ARGS)

gpu-wheels:
	$(PYTHON) tools/check_gpu.py --download-wheels $(GPU_WHEELS)

# Tests of the tests: every mutant in tests/mutants.toml (small bugs in attn_lib), applied one
# at a time to a scratch copy, must make its covering tests fail (tools/mutants.py).
.PHONY: check-mutants
check-mutants: $(STAMP)
	$(PY) tools/mutants.py
