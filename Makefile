# Developer tasks. `make test` lints and runs the suite; `make demo` shows a rebuild end to end.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-install
LINT_DIRS := $(wildcard reindex tests example benchmarks scripts)

.PHONY: venv demo test test-postgres test-mariadb test-compat clean

venv: $(STAMP)

# Reinstall only when the package's metadata changes.
# pip's output goes to $(VENV)/pip.log, shown when it fails.
$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing reindex and its development tools into $(VENV) (log: $(VENV)/pip.log)"
	@$(BIN)/python -m pip install -e '.[dev]' > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log >&2; exit 1; }
	@touch $@

demo: venv
	@scripts/demo.sh

# The suite on SQLite, then on PostgreSQL when one answers on 127.0.0.1:5432, then the
# change queue's tests on MariaDB when one answers on 127.0.0.1:3306 (CI sets
# REINDEX_REQUIRE_POSTGRES=1 and REINDEX_REQUIRE_MARIADB=1 so that a missing server fails instead).
test: venv
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/pytest
	@if $(BIN)/python scripts/pg_ready.py; then \
		REINDEX_TEST_DB=postgres $(BIN)/pytest; \
	elif [ -n "$$REINDEX_REQUIRE_POSTGRES" ]; then \
		echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; \
	else \
		echo "skipped the PostgreSQL run: no server on 127.0.0.1:5432"; \
	fi
	@if $(BIN)/python scripts/mariadb_ready.py; then \
		$(MAKE) --no-print-directory test-mariadb; \
	elif [ -n "$$REINDEX_REQUIRE_MARIADB" ]; then \
		echo "MariaDB is not reachable on 127.0.0.1:3306" >&2; exit 1; \
	else \
		echo "skipped the MariaDB run: no server on 127.0.0.1:3306"; \
	fi

test-postgres: venv
	REINDEX_TEST_DB=postgres $(BIN)/pytest

# Where SKIP LOCKED matters: the change queue's tests on MariaDB.
QUEUE_TESTS := tests/test_queue.py tests/test_queue_faults.py
test-mariadb: venv
	REINDEX_TEST_DB=mariadb $(BIN)/pytest $(QUEUE_TESTS)

# The oldest supported pair: Django 4.2 LTS with the elasticsearch 8.x client, on SQLite.
COMPAT := .venv-compat
test-compat:
	test -x $(COMPAT)/bin/python || $(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install -q -e '.[dev]' 'Django>=4.2,<4.3' 'elasticsearch>=8.13,<9'
	$(COMPAT)/bin/pytest -q

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .hypothesis example/*.sqlite3 example/testserver.log
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
