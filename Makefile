# Two commands do everything on a fresh machine with Python 3.11+:
#   make book   create .venv, install, build the HTML book into _build/html
#   make test   create .venv if missing, lint, run the unit tests, the notebooks
#               in quick mode under nbval, and a warnings-as-errors book build
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
QUICK_DIR := _build/quick-notebooks

.PHONY: book test lint format unit notebooks book-strict benchmark clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[book,test]'
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build .
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

test: lint unit notebooks book-strict

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  # also tidies the parameters cell papermill injects into a re-run chapter
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unit: $(STAMP)
	$(BIN)/python -m pytest tests

notebooks: $(STAMP)
	rm -rf $(QUICK_DIR)
	$(BIN)/python -m spaceship_utils.quick_mode notebooks $(QUICK_DIR)
	$(BIN)/python -m pytest --nbval-lax -p no:cacheprovider $(QUICK_DIR)

book-strict: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bench_data_and_scoring.py

clean:
	rm -rf _build
