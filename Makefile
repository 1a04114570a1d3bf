# `make demo` and `make test` work on a fresh clone: both create the virtualenvs and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# The demo's own virtualenv: the package and Airflow only, none of the test, dev or ui extras.
DEMO_VENV := .venv-demo
DEMO_BIN := $(DEMO_VENV)/bin
DEMO_INSTALLED := $(DEMO_VENV)/.installed
DEMO_LOG := $(DEMO_VENV)/install.log

# The oldest Airflow the provider supports, in a virtualenv of its own.
AIRFLOW2_VENV := .venv-airflow2
AIRFLOW2_BIN := $(AIRFLOW2_VENV)/bin
AIRFLOW2_INSTALLED := $(AIRFLOW2_VENV)/.installed
AIRFLOW2_SPEC := apache-airflow==2.11.*
# Airflow 2.11 warns at import that timer metrics switch to milliseconds in Airflow 3, unless the
# switch is made now; the CLI tests require output free of warnings.
AIRFLOW2_ENV := AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY=True
# One end-to-end DAG run on Airflow 2.11 (the whole e2e suite runs on Airflow 3).
AIRFLOW2_E2E := tests/example_dags/test_example_dags.py::test_insert_dag_passes_the_new_id_downstream
# The fast tier: unit and contract tests, in-process against the fake CRM; no Airflow processes,
# no browser, no build.
FAST_TESTS := not e2e and not ui and not packaging
# Tests run on both cores (pytest-xdist): each worker has its own AIRFLOW_HOME, fake CRMs on free
# loopback ports and, for the end-to-end tests, its own Airflow processes; those are handed out a
# file at a time, since the tests of a file share a scheduler stack or an Airflow DB run.
PARALLEL := -n 2
PARALLEL_E2E := -n 2 --dist loadfile

.PHONY: install demo test test-fast test-airflow3 test-airflow2 lint format clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev,ui]'
	touch $(INSTALLED)

# pip's output goes to a file, shown only when the install fails.
$(DEMO_INSTALLED): pyproject.toml
	@echo "make demo: installing the package and Airflow into $(DEMO_VENV), once (pip's output: $(DEMO_LOG))"
	@test -x $(DEMO_BIN)/python || $(PYTHON) -m venv $(DEMO_VENV)
	@{ $(DEMO_BIN)/python -m pip install --upgrade pip && $(DEMO_BIN)/python -m pip install -e .; } \
		> $(DEMO_LOG) 2>&1 || { tail -n 30 $(DEMO_LOG); echo "make demo: pip failed, see $(DEMO_LOG)"; exit 1; }
	@touch $(DEMO_INSTALLED)

$(AIRFLOW2_INSTALLED): pyproject.toml
	test -x $(AIRFLOW2_BIN)/python || $(PYTHON) -m venv $(AIRFLOW2_VENV)
	$(AIRFLOW2_BIN)/python -m pip install --quiet --upgrade pip
	$(AIRFLOW2_BIN)/python -m pip install --quiet '$(AIRFLOW2_SPEC)' apache-airflow-providers-common-compat -e '.[test]'
	touch $(AIRFLOW2_INSTALLED)

install: $(INSTALLED)

# Prints a short report; Airflow's own logs go to the file it names.
demo: $(DEMO_INSTALLED)
	@$(DEMO_BIN)/python example_dags/run_demo.py

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint test-airflow3 test-airflow2

# The unit and contract tests on Airflow 3, in under 2 minutes: the loop while changing code.
test-fast: $(INSTALLED)
	$(BIN)/python -m pytest $(PARALLEL) -m '$(FAST_TESTS)'

# Everything, on Airflow 3: the fast tier, then the end-to-end, packaging and UI tests.
test-airflow3: test-fast
	$(BIN)/python -m pytest $(PARALLEL_E2E) -m 'not ($(FAST_TESTS))'

# Airflow 2.11: the unit and contract tests, then one end-to-end DAG run. The UI tests need
# Airflow 3's api-server; packaging does not depend on the Airflow version. The engines' own tests
# (tests/loads) run on Airflow 3 only: the engines import no Airflow (tests/test_layers.py), and
# the operator and hook tests run them on 2.11 too.
test-airflow2: $(AIRFLOW2_INSTALLED)
	$(AIRFLOW2_ENV) $(AIRFLOW2_BIN)/python -m pytest $(PARALLEL) -m '$(FAST_TESTS)' --ignore=tests/loads
	$(AIRFLOW2_ENV) $(AIRFLOW2_BIN)/python -m pytest $(AIRFLOW2_E2E)

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(AIRFLOW2_VENV) .airflow build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache tests/artifacts
