# grokbook: `make book` builds the book, `make test` runs every test. Both install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= book
CHAPTER ?= all
# npm copies of the CDN assets and axe-core for check-html (see check-html below)
NPM_DIR := _build/npm

.PHONY: install book chapters html check-html check-download test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3"
	touch $@

## book: execute every chapter at the book profile (in place), then build the HTML
book: chapters html

## chapters: execute CHAPTER (default all) at PROFILE (default book), in place
chapters: install
	$(BIN)/grokbook run $(CHAPTER) --profile $(PROFILE) --inplace

## html: build _build/html from the committed notebooks, warnings as errors
html: install
	rm -rf _build/html  # Sphinx 7.4 does not overwrite a copied static file (_static/*.css)
	$(BIN)/jupyter-book build . -W --keep-going

## check-download: a chapter (DOWNLOAD, default 01_grokking) downloaded as a notebook runs in a
## fresh virtual environment that has only Jupyter: its first cell installs grokbook from a
## local clone of this repository (its committed HEAD), then every cell runs at the ci profile
DOWNLOAD ?= 01_grokking
check-download: install
	$(BIN)/python devtools/check_download.py $(DOWNLOAD)

## check-html: build the HTML, then open every page in headless Chromium (desktop and phone
## widths, offline: CDN assets come from npm copies) and fail on rendering, link and
## accessibility defects; screenshots and report.json in _build/check-html/. Needs Debian's
## chromium (apt-get install chromium) and npm.
check-html: install html $(NPM_DIR)/node_modules/.package-lock.json
	$(BIN)/python devtools/check_html.py --node-modules $(NPM_DIR)/node_modules

# npm ci (package.json, package-lock.json) when the copies are missing or older than the lock.
# Installed under _build/, not at the root: Sphinx would read the Markdown files in
# node_modules' hidden folders (.github/*.md), which only_build_toc_files does not exclude,
# and -W fails the build. Move back to the root once _config.yml excludes node_modules.
$(NPM_DIR)/node_modules/.package-lock.json: package.json package-lock.json
	mkdir -p $(NPM_DIR)
	cp package.json package-lock.json $(NPM_DIR)/
	cd $(NPM_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## test: unit tests, CLI, determinism, and every chapter re-run at the ci profile (nbval), on
## two workers of one thread each (a chapter's cells stay on one worker; the slowest files
## first, in the order of conftest.py's SLOWEST_FIRST)
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

lint: install
	$(BIN)/ruff check src tests book devtools

clean:
	rm -rf _build .pytest_cache
