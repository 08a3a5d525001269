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
export TQDM_DISABLE := 1
# Figures: chapter kernels (papermill, nbval, colab-check) draw with ipykernel's inline backend so that
# every figure is stored as image/png; only the unit tests, which store nothing, use Agg. Never export
# MPLBACKEND=Agg for everything: the kernels inherit it and silently store no picture.
INLINE := module://matplotlib_inline.backend_inline
# Chapters that `make test` runs Colab-like (the full set: `make colab-check`, in the GitHub workflow).
COLAB_FAST ?= 01 12

.PHONY: venv book execute html html-strict test unit nbval lint browser gpu-check colab-check \
	colab-check-fast sync readme repo-url data ewt-key clean

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

## make test: lint, unit tests, nbval over every chapter, strict HTML build, browser check, and
## chapters $(COLAB_FAST) Colab-like (about 14 min on 2 cores; the full Colab run is `make colab-check`).
test: venv lint unit nbval html-strict browser colab-check-fast
	@echo "make test: all checks passed"

## make lint: ruff, the generated README section and install cells in sync, actionlint on the workflows.
lint: venv
	$(BIN)/ruff check seqtag tests tools book setup.py
	$(BIN)/python tools/readme_results.py --check
	$(BIN)/python tools/sync_install_cells.py --check
	@$(BIN)/python tools/actionlint.py

unit: venv
	MPLBACKEND=Agg $(BIN)/python tools/pytest_ok_if_empty.py tests -q -m "not browser"

## make browser: open the built HTML in headless Chromium (installs Debian's chromium if root).
browser: venv
	@command -v chromium >/dev/null || command -v google-chrome >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ echo "installing Debian's chromium and chromium-driver for the browser check"; \
		  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		  chromium chromium-driver >/dev/null); } || echo "no chromium: browser checks will be skipped"; }
	$(BIN)/python tools/pytest_ok_if_empty.py tests/test_html.py -q -m browser

nbval: venv
	MPLBACKEND=$(INLINE) $(BIN)/python tools/pytest_ok_if_empty.py --nbval --nbval-current-env \
		--nbval-sanitize-with book/nbval_sanitize.cfg --nbval-cell-timeout=1200 -p no:randomly book -q

## make colab-check: every chapter as Colab runs it (fresh environment per chapter holding only
## Colab's preinstalled packages, google.colab present, working directory elsewhere, the install cell
## pointed at this checkout). One line per chapter with its time.
colab-check: venv
	$(BIN)/python tools/colab_check.py

colab-check-fast: venv
	$(BIN)/python tools/colab_check.py $(addprefix --only ,$(COLAB_FAST))

## make gpu-check: run every chapter with -p device cuda into GPU_OUT (a temporary folder by default),
## with the GPU record (machine.json) and the chapter log; book/results/gpu_check.json (GPU_RECORD) gets
## per chapter ok or the error, and seconds; fails when any chapter fails on the GPU.
gpu-check: venv
	$(BIN)/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else \
		'gpu-check: no CUDA device here (torch.cuda.is_available() is False)')"
	@out="$${GPU_OUT:-$$(mktemp -d)}"; mkdir -p "$$out"; echo "gpu-check: writing to $$out"; \
	$(BIN)/python -c "import sys; from seqtag.io import write_json; from seqtag.runtime import machine; \
		write_json(sys.argv[1], machine('cuda'))" "$$out/machine.json" && \
	$(BIN)/python tools/run_chapters.py --keep-going --out "$$out" -p device cuda \
		--record "$${GPU_RECORD:-book/results/gpu_check.json}" 2>&1 | tee "$$out/chapters.log"; \
	exit "$${PIPESTATUS[0]}"

## make data: the EWT files, read from SEQTAG_DATA or downloaded once by the loader (sha256-checked).
data: venv
	$(BIN)/python -c "from seqtag.data import ewt_path; [print(ewt_path(s)) for s in ('train', 'dev', 'test')]"

## make ewt-key: a cache key from the EWT files' sha256 (CI caches the download under it).
ewt-key:
	@python3 tools/ewt_key.py

## make sync: install cells (extras, URL, hidden tags) derived from each chapter; README generated part.
sync: venv
	$(BIN)/python tools/sync_install_cells.py
	$(BIN)/python tools/readme_results.py

readme: venv
	$(BIN)/python tools/readme_results.py

## make repo-url URL=https://github.com/you/your-fork : a fork's one command (config, cells, badges).
repo-url: venv
	@test -n "$(URL)" || { echo "usage: make repo-url URL=https://github.com/OWNER/REPO"; exit 2; }
	$(BIN)/python tools/sync_install_cells.py --set-url "$(URL)"
	$(BIN)/python tools/readme_results.py

clean:
	rm -rf _build
