# Conveyor: `make run` (the whole stack) and `make test` (the whole suite). See README.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
NODES  ?= 1

.PHONY: run test kafka bench venv jars system lint test-pg clean

$(BIN)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Conveyor needs Python 3.11 (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.11")'
	@echo "[setup] creating $(VENV) and installing requirements.txt ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -r requirements.txt
	@touch $@

venv: $(BIN)/.installed

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
	$(BIN)/python -m pytest

bench: system venv jars
	@$(BIN)/python bench/run.py

clean:
	rm -rf var/kafka var/kafka-cluster var/*.sqlite3* var/log var/redis var/prometheus
