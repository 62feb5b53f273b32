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
	$(PY) -m pip install --quiet -e '.[test,notebooks]'
	touch $@

demo: setup
	rm -f $(DEMO_DB) $(DEMO_DB).wal .notebookjobs/sample-state/*.count
	NOTEBOOKJOBS_DB=$(DEMO_DB) $(PY) scripts/demo.py

NOTEBOOKS := notebooks/quickstart.ipynb notebooks/history.ipynb

# The notebooks run against a throw-away queue; a worker they leave behind is stopped.
test: setup
	@nbqueue=$$(mktemp -d)/queue.duckdb; \
	NOTEBOOKJOBS_DB=$$nbqueue $(PY) -m pytest -q tests $(NOTEBOOKS) --nbval \
	    --nbval-sanitize-with notebooks/sanitize.cfg; status=$$?; \
	NOTEBOOKJOBS_DB=$$nbqueue $(PY) -m notebookjobs worker stop >/dev/null 2>&1; \
	exit $$status

clean:
	rm -rf $(VENV) .notebookjobs logs
