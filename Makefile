# The book's two commands: `make book` (execute chapters, render HTML) and `make test` (check all).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Read corpora from ../shared/data when it is there (CI), else the loader's download cache.
ifneq ($(wildcard ../shared/data),)
export SEQTAG_DATA ?= $(abspath ../shared/data)
endif
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
export TQDM_DISABLE := 1

.PHONY: venv book execute html html-strict test unit nbval lint browser gpu-check clean

$(STAMP): requirements.txt pyproject.toml setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

## make book: execute every chapter with papermill (outputs stored in book/), then render HTML.
book: venv execute html

execute: venv
	$(BIN)/python tools/run_chapters.py

## make html: render the stored outputs only (fast).
html: venv
	$(BIN)/jupyter-book build . --path-output . -q
	@echo "HTML: $(abspath _build/html/index.html)"

html-strict: venv
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . --path-output . -W -n --keep-going -q

## make test: unit tests, nbval over every chapter, strict HTML build.
test: venv lint unit nbval html-strict browser
	@echo "make test: all checks passed"

lint: venv
	$(BIN)/ruff check seqtag tests tools book

unit: venv
	$(BIN)/python tools/pytest_ok_if_empty.py tests -q -m "not browser"

## make browser: open the built HTML in headless Chromium (installs Debian's chromium if root).
browser: venv
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ echo "installing Debian's chromium and chromium-driver for the browser check"; \
		  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		  chromium chromium-driver >/dev/null); } || echo "no chromium: browser checks will be skipped"; }
	$(BIN)/python tools/pytest_ok_if_empty.py tests/test_html.py -q -m browser

nbval: venv
	$(BIN)/python tools/pytest_ok_if_empty.py --nbval --nbval-current-env \
		--nbval-sanitize-with book/nbval_sanitize.cfg --nbval-cell-timeout=1200 -p no:randomly book -q

## make gpu-check: run every chapter with -p device cuda into a temporary folder.
gpu-check: venv
	$(BIN)/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else \
		'gpu-check: no CUDA device here (torch.cuda.is_available() is False)')"
	$(BIN)/python tools/run_chapters.py --out "$$(mktemp -d)" -p device cuda

clean:
	rm -rf _build
