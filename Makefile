# The two commands the README opens with: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -n 2

.PHONY: demo test install install-dev browser bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Install, import the BBC news sample into demo.db, create an admin and serve on 127.0.0.1:8000.
demo: $(VENV)/.installed
	$(VENV)/bin/labelloop demo --db sqlite:///demo.db

## Debian's chromium for the browser tests (never `playwright install`: no downloads here).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
	      || echo "could not install chromium: browser tests will not run"; \
	  else echo "chromium missing (apt-get install chromium): browser tests will not run"; fi; }

## Create/update the venv with the dev extras and run the whole suite (SQLite and PostgreSQL).
test: $(VENV)/.installed-dev browser
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	@echo "see benchmarks/README.md: each script prints JSON"

clean:
	rm -rf $(VENV) .pytest_cache tests/artefacts
