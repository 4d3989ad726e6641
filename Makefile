# Two commands do all set-up on a fresh machine: `make run` and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
export PREFECT_HOME ?= $(abspath .prefect)
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

PREFECT_PORT ?= 4200
MLFLOW_PORT ?= 5000

.PHONY: install run test test-fast coverage lint ui serve tracking-server lock

install: $(VENV)/.installed

# requirements.lock pins every transitive dependency (made by `make lock`); pyproject.toml
# holds the direct pins. Installing under the lock as constraints gives the same tree every day.
$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

lock:  ## re-resolve pyproject.toml in a scratch venv and write requirements.lock
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip==26.3
	.lock-venv/bin/pip install --quiet -e ".[dev]"
	{ sed -n '1,3p' requirements.lock; .lock-venv/bin/pip freeze --exclude-editable | \
	  grep -v '^-e' | sed 's/+cpu$$//'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

run: install  ## the whole pipeline on the default (digits), through the Prefect flow
	$(PY) flows/pipeline.py

# The whole suite on 2 xdist workers: most of its time is end-to-end pipelines and servers in
# child processes, one core each. `make test-fast` is the edit loop (no pipeline, server or
# subprocess chain, ~1 min); `make coverage` the suite under line coverage of src/ and flows/.
TEST_WORKERS ?= 2
test: install  ## the test suite
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=25

test-fast: install
	$(PY) -m pytest -m "not slow" -n $(TEST_WORKERS) --dist worksteal

coverage: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal --cov --cov-report=term

lint: install  ## ruff and mypy, configured in pyproject.toml (CI runs them before the tests)
	$(VENV)/bin/ruff check src flows bench tests
	$(VENV)/bin/mypy

ui: install  ## the MLflow UI over the local store, on http://127.0.0.1:5000
	$(PY) -m augflow.cli relocate-mlflow   # a moved checkout's store points at its own artifacts
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db --host 127.0.0.1 --port $(MLFLOW_PORT)

# A shared MLflow tracking server for a team: its store is MLFLOW_DB (SQLite beside the checkout
# by default; a PostgreSQL URL for a shared one, e.g.
# MLFLOW_DB=postgresql://augflow:PW@db-host:5432/mlflow make tracking-server), its artifacts
# MLFLOW_ARTIFACTS (a directory or s3://...). Pipelines use it with tracking.uri: http://HOST:PORT.
MLFLOW_HOST ?= 127.0.0.1
MLFLOW_DB ?= sqlite:///mlflow/server.db
MLFLOW_ARTIFACTS ?= mlflow/server-artifacts
tracking-server: install
	$(VENV)/bin/mlflow server --backend-store-uri $(MLFLOW_DB) \
	  --artifacts-destination $(MLFLOW_ARTIFACTS) --host $(MLFLOW_HOST) --port $(MLFLOW_PORT)

# A local Prefect server (UI + scheduler) on 127.0.0.1, and the deployment served against it:
# nightly at 02:00 UTC by default; CRON="*/30 * * * *" make serve to change it. The UI is told
# its own API's URL, so `make serve PREFECT_PORT=4255` shows that server, not one on 4200.
# Its database is SQLite under PREFECT_HOME unless PREFECT_SERVER_DATABASE_CONNECTION_URL says
# otherwise (Prefect's own setting, passed through), e.g. postgresql+asyncpg://augflow:PW@db-host/prefect
CRON ?= 0 2 * * *
serve: install
	PREFECT_SERVER_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api \
	$(VENV)/bin/prefect server start --host 127.0.0.1 --port $(PREFECT_PORT) & \
	server=$$!; trap "kill $$server" EXIT INT TERM; \
	until curl -sf http://127.0.0.1:$(PREFECT_PORT)/api/health >/dev/null; do sleep 1; done; \
	PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api $(PY) flows/serve.py --cron "$(CRON)"
