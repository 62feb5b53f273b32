# make demo: set up and run the sample jobs; make test: set up and run the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DB := .notebookjobs/demo.duckdb

.PHONY: demo test test-portable setup clean lab soak lint floors matrix wheel

# make lint: ruff, mypy, the import contracts (pyproject.toml) and vulture (no dead
# code) alone (make test runs them first)
lint: setup
	$(PY) -m ruff check notebookjobs tests
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m vulture

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,notebooks,lab,dashboard,dask]'
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
	$(VENV)/bin/lint-imports
	$(PY) -m vulture
	$(MAKE) --no-print-directory floors
	@mkdir -p build; status=0; \
	$(PY) scripts/install_matrix.py > build/matrix.log 2>&1 & matrix=$$!; \
	$(PY) -m pytest -q tests $(NOTEBOOKS) --nbval --nbval-sanitize-with notebooks/sanitize.cfg \
	    || status=1; \
	$(MAKE) --no-print-directory test-portable || status=1; \
	wait $$matrix || status=1; \
	cat build/matrix.log; exit $$status

# make test-portable (make test runs it after the whole suite): the suites that exercise each
# OS-specific call run a second time on the path macOS takes (SPEC §20): NOTEBOOKJOBS_PORTABLE=1,
# and tests/portable/sitecustomize.py takes select.epoll and os.fdatasync away from every Python
# process they start (PYTHONPATH absolute: the workers and children run in other folders).
# The worker (drain, cancel of a whole tree, kill -9), the pool (poller, parent watch, output
# pipe), the journal (durable sync, its lock), a foreground run's lock, the worker's stop, the
# socket path rule; ~3 min on 2 busy cores.
PORTABLE_SUITES := tests/test_worker.py tests/test_pool.py tests/test_journal.py \
	tests/faults/test_owners.py tests/faults/test_stop.py tests/test_socket.py \
	tests/test_system.py::test_the_portable_run_took_away_what_macos_lacks
test-portable: setup
	NOTEBOOKJOBS_PORTABLE=1 PYTHONPATH=$(CURDIR)/tests/portable$${PYTHONPATH:+:$$PYTHONPATH} \
	    $(PY) -m pytest -q $(PORTABLE_SUITES)

# make wheel: the wheel of the current source in dist/, built from a clean copy of it (a module
# deleted since the last build must not ship from build/lib: scripts/build_wheel.py)
wheel: setup
	$(PY) scripts/build_wheel.py dist

# make matrix: the install matrix (make test runs it beside pytest): the wheel installed, not
# editable, into a venv per extra (none, dashboard, notebooks, dask; .venv-matrix/, rebuilt when
# pyproject.toml changes), and in each the walk of tests/wheel_walk.py (init, dispatch, the
# worker, status, schedules, history; the page, a notebook job, a Dask worker). MATRIX=dask
# for one.
matrix: setup
	$(PY) scripts/install_matrix.py $(MATRIX)

# make floors: the dependency floors of pyproject.toml, tested. A venv of its own holds the lowest
# version of every dependency (scripts/floors.py writes the pins; rebuilt when pyproject.toml
# changes); the wheel of the current source is installed into it each time, then
# tests/floors_smoke.py runs init, dispatch, the workers and history there (about 40 s; the
# first build of the venv about 1.5 min).
FLOORS_VENV := .venv-floors
FLOORS_DIR := build/floors

$(FLOORS_VENV)/.installed: pyproject.toml scripts/floors.py | setup
	rm -rf $(FLOORS_VENV) $(FLOORS_DIR)
	mkdir -p $(FLOORS_DIR)
	$(PY) scripts/floors.py > $(FLOORS_DIR)/constraints.txt
	$(PY) scripts/build_wheel.py $(FLOORS_DIR)/wheel
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install --quiet -c $(FLOORS_DIR)/constraints.txt \
	    $(FLOORS_DIR)/wheel/notebookjobs-*.whl
	touch $@

floors: $(FLOORS_VENV)/.installed
	$(PY) scripts/build_wheel.py $(FLOORS_DIR)/wheel
	$(FLOORS_VENV)/bin/python -m pip install --quiet --no-deps --force-reinstall \
	    $(FLOORS_DIR)/wheel/notebookjobs-*.whl
	$(FLOORS_VENV)/bin/python tests/floors_smoke.py

clean:
	rm -rf $(VENV) $(FLOORS_VENV) .venv-matrix .notebookjobs logs

# make soak: the fault suite of SPEC §14 at length (a few minutes on 2 cores): the property tests
# with more examples and the tests marked soak, then tests/faults/soak.py (kill -9 x 30 rounds with
# thousands of jobs and a torn journal record each, >= 100 malformed messages, a nearly full disk
# as root), whose table of figures comes last.
# SOAK_ARGS=--rounds 50, SOAK_EXAMPLES=500 to go further.
SOAK_EXAMPLES ?= 300
SOAK_TESTS := tests/faults/test_property_dispatch.py tests/faults/test_property_whitelist.py \
	tests/faults/test_property_socket.py tests/faults/test_forged_messages.py \
	tests/faults/test_property_journal.py
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
# (takes many minutes), the dashboard's figures (benchmarks/dashboard_bench.py, its section), then the Dask executor on 1, 2 and 4 Dask workers into benchmarks/DASK.md;
# make bench-quick, or make bench ARGS=--quick: a few minutes, benchmarks/out/.
.PHONY: bench bench-quick

$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

bench: setup $(VENV)/.bench-installed
	@status=0; \
	$(PY) benchmarks/run.py $(ARGS) || status=1; \
	$(PY) benchmarks/dashboard_bench.py $(ARGS) || status=1; \
	$(PY) benchmarks/dask_bench.py $(ARGS) || status=1; \
	exit $$status

bench-quick:
	$(MAKE) bench ARGS=--quick
