# grokbook: `make book` builds the book, `make test` runs every test. Both install first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= book
CHAPTER ?= all

.PHONY: install book chapters html test lint bench clean

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
	$(BIN)/jupyter-book build . -W --keep-going

## test: unit tests, CLI, determinism, and every chapter re-run at the ci profile (nbval), on
## two workers of one thread each (a chapter's cells stay on one worker)
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check src tests book

clean:
	rm -rf _build .pytest_cache
