# Conveyor: `make run` (the whole stack) and `make test` (the whole suite). See README.md.
# The newest Python from 3.13 down to 3.11 that runs (a pyenv shim without that version counts as missing).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null && { command -v $$p; break; }; done)
LOCK   := requirements.lock
VENV   := .venv
BIN    := $(VENV)/bin
NODES  ?= 1

.PHONY: run test test-faults test-pg kafka bench venv lock jars system lint clean

$(BIN)/.installed: $(LOCK)
	@test -n "$(PYTHON)" || { echo "Conveyor needs Python 3.11, 3.12 or 3.13 and found none: apt-get install python3 python3-venv, or set PYTHON=/path/to/python3.x" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else "Conveyor needs Python 3.11 to 3.13 (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.13")'
	@echo "[setup] creating $(VENV) with $$($(PYTHON) -V) and installing $(LOCK) (every hash checked) ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	@touch $@

venv: $(BIN)/.installed

# Re-resolve requirements.lock (pinned, with hashes) from pyproject.toml's dependencies and its "test" extra,
# after editing them. The same file installs on Python 3.11, 3.12 and 3.13.
lock:
	@test -x var/pip-tools/bin/pip-compile || { $(PYTHON) -m venv var/pip-tools && var/pip-tools/bin/pip install -q pip-tools==7.7.0; }
	var/pip-tools/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links --extra test -o $(LOCK) pyproject.toml

system:
	@bin/ensure-system run

jars: venv
	@$(BIN)/python broker/launch.py --resolve-only

run: system venv jars
	@$(BIN)/python broker/stack.py

kafka: system venv
	@$(BIN)/python broker/launch.py --nodes $(NODES)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: venv jars
	@bin/ensure-system test
	$(MAKE) lint
	$(BIN)/python -m pytest --ignore=tests/faults

# Breaking things for real: kill -9, crash points, a 3-node cluster losing leaders, PostgreSQL and Redis
# outages, oversell, poison on every topic, schemathesis. Longer; .ci/run runs it after `make test`.
# Full sizes of the issue (1000 orders under kill -9, 20 oversell rounds on each database); a caller's
# FAULTS_* variables win, e.g. `FAULTS_KILL_ORDERS=200 make test-faults` for a quick run.
FAULTS_KILL_ORDERS ?= 1000
FAULTS_OVERSELL_ROUNDS ?= 20
FAULTS_PG_OVERSELL_ROUNDS ?= 20
export FAULTS_KILL_ORDERS FAULTS_OVERSELL_ROUNDS FAULTS_PG_OVERSELL_ROUNDS

test-faults: venv jars
	@bin/ensure-system test
	$(BIN)/python -m pytest tests/faults

# The integration tests again, every database on a throwaway PostgreSQL.
test-pg: venv jars
	@bin/ensure-system test
	CONVEYOR_TEST_POSTGRES=1 $(BIN)/python -m pytest -p tests.faults.pg_plugin eventbus tests/test_saga_e2e.py \
		tests/test_saga_unit.py shop/tests/test_api.py dashboard/tests/test_read_model.py shipping/tests/test_courier.py \
		--deselect eventbus/tests/test_integration.py::test_a_transient_database_error_is_retried_not_dead_lettered

bench: system venv jars
	@$(BIN)/python bench/run.py

clean:
	rm -rf var/kafka var/kafka-cluster var/*.sqlite3* var/log var/redis var/prometheus
