# Developer tasks. `make test` lints and runs the suite (`make test-all`: every test on every
# database, as CI does); `make demo` shows a rebuild end to end.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-install
LINT_DIRS := $(wildcard reindex tests example benchmarks scripts)

.PHONY: venv demo lint test test-all suites postgres-tests mariadb-tests stream-tests test-postgres test-mariadb test-stream test-compat clean

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

# The tests mostly wait (on subprocesses, servers, databases), so they run in several
# processes (pytest-xdist), each with its own test database and search server; -rs says
# at the end why a test was skipped. PYTEST_WORKERS=1 runs them in one process.
PYTEST_WORKERS ?= 4
# The tests marked `stream` need the logical-decoding cluster (test-stream): in the other runs
# they skip, even under CI's REINDEX_REQUIRE_LOGICAL=1 (which makes them fail off that cluster).
PYTEST = REINDEX_REQUIRE_LOGICAL= $(BIN)/pytest -n $(PYTEST_WORKERS) -rs

lint: venv
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

# A newcomer's check: the whole suite on SQLite; on
# PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306), when they answer, the tests
# of what differs between databases (marked `database`, see tests/conftest.py); the
# stream's tests on a private logical-decoding cluster, when PostgreSQL's server is installed.
test: lint
	@$(MAKE) --no-print-directory suites PG_SELECT="-m database" PG_WHAT="the tests marked 'database'" \
		ALSO="; 'make test-all' runs the whole suite on PostgreSQL too, as CI does"

# The full matrix, what CI (.ci/run) runs: `make test`, then the rest of the suite on
# PostgreSQL (the tests not marked `database`). CI sets REINDEX_REQUIRE_POSTGRES=1,
# REINDEX_REQUIRE_MARIADB=1 and REINDEX_REQUIRE_LOGICAL=1, so that a missing server fails
# instead of being skipped.
test-all: test
	@$(MAKE) --no-print-directory postgres-tests PG_SELECT="-m 'not database'" PG_WHAT="the tests not marked 'database'"

suites: venv
	@echo "runs: the whole suite on SQLite, $(PG_WHAT) on PostgreSQL, the change queue's tests on MariaDB,"
	@echo "      the stream's tests on a logical-decoding cluster of their own"
	@echo "      ($(PYTEST_WORKERS) processes each; a database that does not answer is skipped$(ALSO))"
	@echo "== SQLite: the whole suite"
	$(PYTEST)
	@$(MAKE) --no-print-directory postgres-tests
	@$(MAKE) --no-print-directory mariadb-tests
	@$(MAKE) --no-print-directory stream-tests

postgres-tests: venv
	@if $(BIN)/python scripts/pg_ready.py; then \
		echo "== PostgreSQL: $(PG_WHAT)"; \
		echo "REINDEX_TEST_DB=postgres $(PYTEST) $(PG_SELECT)"; \
		REINDEX_TEST_DB=postgres $(PYTEST) $(PG_SELECT); \
	elif [ -n "$$REINDEX_REQUIRE_POSTGRES" ]; then \
		echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; \
	else \
		echo "== PostgreSQL: skipped: no server on 127.0.0.1:5432"; \
	fi

mariadb-tests: venv
	@if $(BIN)/python scripts/mariadb_ready.py; then \
		echo "== MariaDB: the change queue's tests"; \
		$(MAKE) --no-print-directory test-mariadb; \
	elif [ -n "$$REINDEX_REQUIRE_MARIADB" ]; then \
		echo "MariaDB is not reachable on 127.0.0.1:3306" >&2; exit 1; \
	else \
		echo "== MariaDB: skipped: no server on 127.0.0.1:3306"; \
	fi

stream-tests: venv
	@if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then \
		echo "== PostgreSQL with wal_level = logical: the stream's tests"; \
		$(MAKE) --no-print-directory test-stream; \
	elif [ -n "$$REINDEX_REQUIRE_LOGICAL" ]; then \
		echo "initdb and pg_ctl are not on the PATH: cannot start the logical-decoding cluster" >&2; exit 1; \
	else \
		echo "== PostgreSQL with wal_level = logical: skipped: no initdb and pg_ctl on the PATH"; \
	fi

test-postgres: venv
	REINDEX_TEST_DB=postgres $(PYTEST)

# Where SKIP LOCKED matters: the change queue's tests on MariaDB.
QUEUE_TESTS := tests/test_queue.py tests/test_queue_faults.py tests/test_queue_batches.py
test-mariadb: venv
	REINDEX_TEST_DB=mariadb $(PYTEST) $(QUEUE_TESTS)

# The tests marked `stream` on a private PostgreSQL cluster with wal_level = logical, started on a
# free port and removed after (scripts/logical_cluster.py). One process: a test may restart the
# cluster under every connection.
test-stream: venv
	$(BIN)/python scripts/logical_cluster.py run -- $(BIN)/pytest -rs -m stream

# The oldest supported pair: Django 4.2 LTS with the elasticsearch 8.x client, on SQLite.
COMPAT := .venv-compat
test-compat:
	test -x $(COMPAT)/bin/python || $(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install -q -e '.[dev]' 'Django>=4.2,<4.3' 'elasticsearch>=8.13,<9'
	REINDEX_REQUIRE_LOGICAL= $(COMPAT)/bin/pytest -q

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .hypothesis example/*.sqlite3 example/testserver.log
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
