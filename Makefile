# make demo: set up and run the sample jobs; make test: set up and run the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DB := .notebookjobs/demo.duckdb

.PHONY: demo test setup clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: setup
	rm -f $(DEMO_DB) $(DEMO_DB).wal .notebookjobs/sample-state/*.count
	NOTEBOOKJOBS_DB=$(DEMO_DB) $(PY) scripts/demo.py

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .notebookjobs logs
