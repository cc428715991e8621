# nsd: two commands do everything on a fresh machine.
#   make demo   install, then run the main job on the shipped example data
#   make test   install, then check notebooks/package sync and run every notebook as a test
# Override the torch build for a GPU machine, e.g. `make demo TORCH="torch==2.13.0 --index-url ..."`.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
JOBS   ?= 2
STAMP  := $(VENV)/.nsd-installed

.PHONY: install demo test sync-check clean-venv docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Install torch first (pinned CPU wheel by default), then the package and the dev tools.
$(STAMP): $(BIN)/python settings.ini setup.py
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/nsd demo --out figures/demo

# The package must equal what the notebooks export, and the notebooks must be clean.
sync-check: install
	$(BIN)/nbdev_export
	@if [ -n "$$(git status --porcelain -- nsd)" ]; then \
	  echo "nsd/ is not in sync with nbs/ (run nbdev_export and commit):"; git status --porcelain -- nsd; exit 1; fi
	$(BIN)/nbdev_clean
	@if [ -n "$$(git status --porcelain -- nbs)" ]; then \
	  echo "notebooks are not clean (run nbdev_clean and commit):"; git status --porcelain -- nbs; exit 1; fi

test: sync-check
	$(BIN)/python tools/run_tests.py --jobs $(JOBS)

# The book: every chapter (nbs/*.ipynb, in order) executed and rendered to HTML in _docs/, with _docs/index.html.
docs: install
	$(BIN)/python tools/make_docs.py --jobs $(JOBS)

clean-venv:
	rm -rf $(VENV)
