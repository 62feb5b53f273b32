# make demo: set up and run the sample jobs; make test: set up and run the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DB := .notebookjobs/demo.duckdb

.PHONY: demo test setup clean lab soak lint

# make lint: ruff and mypy alone (make test runs them first)
lint: setup
	$(PY) -m ruff check notebookjobs tests
	$(PY) -m mypy

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,notebooks,lab]'
	touch $@

demo: setup
	rm -f $(DEMO_DB) $(DEMO_DB).wal .notebookjobs/sample-state/*.count
	NOTEBOOKJOBS_DB=$(DEMO_DB) $(PY) scripts/demo.py

# dashboard last: it leaves its worker running, for the dashboard to show; the test stops it.
NOTEBOOKS := notebooks/quickstart.ipynb notebooks/history.ipynb notebooks/workflows.ipynb \
	notebooks/dashboard.ipynb

# The notebooks run on queues of their own (notebooks/conftest.py). The browser test needs
# Debian's chromium: installed here when it is missing and we may (as root, as CI runs).
test: setup
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	        -o DPkg::Lock::Timeout=300 chromium; fi
	$(PY) -m ruff check notebookjobs tests
	$(PY) -m mypy
	$(PY) -m pytest -q tests $(NOTEBOOKS) --nbval --nbval-sanitize-with notebooks/sanitize.cfg

clean:
	rm -rf $(VENV) .notebookjobs logs

# make soak: the fault suite of SPEC §14 at length (a few minutes on 2 cores): the property tests
# with more examples and the tests marked soak, then tests/faults/soak.py (kill -9 x 30 rounds with
# thousands of jobs, >= 100 malformed messages), whose table of figures comes last.
# SOAK_ARGS=--rounds 50, SOAK_EXAMPLES=500 to go further.
SOAK_EXAMPLES ?= 300
SOAK_TESTS := tests/faults/test_property_dispatch.py tests/faults/test_property_whitelist.py \
	tests/faults/test_property_socket.py tests/faults/test_forged_messages.py
soak: setup
	@status=0; \
	NJ_SOAK=1 NJ_FAULT_EXAMPLES=$(SOAK_EXAMPLES) $(PY) -m pytest -q $(SOAK_TESTS) || status=1; \
	$(PY) tests/faults/soak.py $(SOAK_ARGS) || status=1; \
	exit $$status

# make lab: JupyterLab on the project, on 127.0.0.1; the http://127.0.0.1:8888/lab/tree/...?token=
# address it prints opens notebooks/dashboard.ipynb.
lab: setup
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --no-browser \
	    --LabApp.default_url=/lab/tree/notebooks/dashboard.ipynb \
	    $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# make bench: notebookjobs against Huey (SPEC §13), every figure 3 times, into benchmarks/RESULTS.md
# (takes many minutes); make bench-quick, or make bench ARGS=--quick: under a minute, benchmarks/out/.
.PHONY: bench bench-quick

$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

bench: setup $(VENV)/.bench-installed
	$(PY) benchmarks/run.py $(ARGS)

bench-quick:
	$(MAKE) bench ARGS=--quick
