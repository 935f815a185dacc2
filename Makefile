# Two commands do everything on a fresh machine with Python 3.11+ and Node.js (npm):
#   make book   create .venv, install, fetch MathJax, build the HTML book into book/_build/html
#   make test   create .venv if missing, lint, run the unit tests, every chapter in
#               quick mode (papermill) and at its defaults (pytest --nbval), all in one
#               pytest run, a warnings-as-errors book build, and open
#               every page of that build in headless Chromium (`make browser`)
#   make test-exact   the chapters' outputs compared exactly (for a change that must not
#               move a single number)
# The book is built exactly as readers build it: `jupyter-book build book`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
QUICK_DIR := _build/quick-notebooks
BOOK_HTML := book/_build/html
MATHJAX_DIR := book/_mathjax
MATHJAX := $(MATHJAX_DIR)/node_modules/.installed-stamp
# pytest processes for the unit tests and the chapters (pytest-xdist): two, as many as the
# CI machine's cores; the chapters and the unit test files are shared out between them.
WORKERS ?= 2
# `make test` runs the chapters with TensorFlow's oneDNN kernels off, so the network floats
# differ from those the committed outputs were made with (by 1e-5 to 1e-3 px in a box, as
# they do on another CPU): every run checks what a reader on another CPU gets, within the
# tolerances of tests/nbval_numeric.py. `make test-exact` compares them exactly, with the
# default settings, on the machine that wrote the outputs.
# It also lifts any cap on oneDNN's instruction set (ONEDNN_MAX_CPU_ISA), which would make
# chapters 9-11 twice as slow; `make test CROSS_CPU=` runs the chapters under your own settings.
CROSS_CPU ?= -u ONEDNN_MAX_CPU_ISA TF_ENABLE_ONEDNN_OPTS=0

.PHONY: book test test-exact lint format unit notebooks checks book-strict browser mathjax benchmark clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[book,test]'
	touch $(STAMP)

# MathJax 3 from the npm registry, at the version locked in book/_mathjax/package-lock.json;
# the book serves it from its own HTML folder, so maths renders offline (no CDN).
$(MATHJAX): $(MATHJAX_DIR)/package.json $(MATHJAX_DIR)/package-lock.json
	cd $(MATHJAX_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

mathjax: $(MATHJAX)

book: $(STAMP) $(MATHJAX)
	$(BIN)/jupyter-book build book
	@echo "The book is at file://$(CURDIR)/$(BOOK_HTML)/index.html"

test: lint checks book-strict browser

lint: $(STAMP)  # the hooks of .pre-commit-config.yaml on every tracked file, offline
	PATH="$(CURDIR)/$(BIN):$$PATH" PRE_COMMIT_HOME="$(CURDIR)/$(VENV)/pre-commit-home" \
		$(BIN)/pre-commit run --all-files --show-diff-on-failure

format: $(STAMP)  # also tidies the parameters cell papermill injects into a re-run chapter
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unit: $(STAMP)
	$(BIN)/python -m pytest tests -m "not built_book and not quick_chapters" -n $(WORKERS)

# Every chapter twice: headlessly through papermill with its quick parameters
# (tests/test_quick_chapters.py; executed copies kept in _build/quick-notebooks), then the
# committed chapters at their defaults, strict, as readers type it (`pytest --nbval
# notebooks/`), a chapter per process.
notebooks: $(STAMP)
	rm -rf $(QUICK_DIR)
	env $(CROSS_CPU) $(BIN)/python -m pytest tests/test_quick_chapters.py notebooks --nbval \
		-n $(WORKERS) --dist loadfile

# The committed chapters at their defaults with every output compared exactly, under the
# default numerics: on the machine that wrote the outputs, for a refactor that must not
# change a single number.
test-exact: $(STAMP)
	$(BIN)/python -m pytest notebooks --nbval --nbval-exact -n $(WORKERS) --dist loadfile

# `unit` and `notebooks` in one pytest run, a test file or chapter at a time in each
# process, so that the two processes stay busy to the end.
checks: $(STAMP)
	rm -rf $(QUICK_DIR)
	env $(CROSS_CPU) $(BIN)/python -m pytest tests notebooks --nbval -m "not built_book" \
		-n $(WORKERS) --dist loadfile

book-strict: $(STAMP) $(MATHJAX)
	$(BIN)/jupyter-book build book -W -n --keep-going

# The pages of that build in headless Chromium (Debian's chromium and chromium-driver):
# maths typeset, images loaded, no spilled dropdowns, no output wider than the column,
# no figure shrunk below 0.8 of its width, a first screen of text, not code.
browser: book-strict
	$(BIN)/python -m pytest tests/test_book_html.py -m built_book

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bench_data_and_scoring.py

clean:
	rm -rf _build $(dir $(BOOK_HTML))
