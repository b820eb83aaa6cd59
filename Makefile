# batchscribe: make run, make test. Everything else is for contributors.
#
# Every install uses the exact versions in uv.lock. After changing dependencies in pyproject.toml,
# run `make lock` and commit pyproject.toml and uv.lock together.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1

# uv installs from the lock. pip puts it in a folder of its own (.tools), outside .venv, so
# syncing .venv to the lock never removes it. Use one already on PATH with `make install UV=uv`.
UV_VERSION := 0.13.8
TOOLS := .tools
UV_STAMP := $(TOOLS)/.uv-$(UV_VERSION)
UV ?= $(TOOLS)/bin/uv
UV_DEP := $(if $(filter $(TOOLS)/bin/uv,$(UV)),$(UV_STAMP))
# Use the Python given above, never download one; the project venv is .venv.
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# --locked: refuse to install when pyproject.toml changed and uv.lock was not updated.
SYNC := $(UV) sync --locked --quiet
STALE_HINT := echo "make: installing from uv.lock failed; if it is out of date with pyproject.toml, run 'make lock' and commit both" >&2; exit 1

# Reinstall only when the lock or the project definition changes: quick when nothing changed.
DEV_STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run

.PHONY: install system-deps run serve test lint bench lock upgrade clean

$(UV_STAMP):
	rm -rf $(TOOLS)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(TOOLS) uv==$(UV_VERSION)
	touch $@

# Contributors: the service, the local emulator (extra `local`) and the dev tools (group `dev`),
# nothing else (packages not in the lock are removed).
$(DEV_STAMP): uv.lock pyproject.toml | $(UV_DEP)
	$(SYNC) --extra local || { $(STALE_HINT); }
	touch $@ $(RUN_STAMP)

# Running: the service and the local emulator, without the dev tools. --inexact keeps the dev
# tools of an earlier `make install` instead of removing them.
$(RUN_STAMP): uv.lock pyproject.toml | $(UV_DEP)
	$(SYNC) --extra local --no-dev --inexact || { $(STALE_HINT); }
	touch $@

install: $(DEV_STAMP)

# Debian packages the test suite needs (espeak-ng makes speech fixtures; chromium for page tests).
system-deps:
	@bash scripts/install_system_deps.sh

run: $(RUN_STAMP)
	PORT=$(PORT) HOST=$(HOST) $(BIN)/batchscribe local

serve: $(RUN_STAMP)
	$(BIN)/batchscribe serve --host $(HOST) --port $(PORT)

test: install system-deps
	rm -f .coverage .coverage.*
	COVERAGE_FILE=$(CURDIR)/.coverage COVERAGE_PROCESS_START=$(CURDIR)/pyproject.toml $(BIN)/python -m pytest --cov=batchscribe --cov-report=term $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests testkit bench scripts
	$(BIN)/ruff format --check src tests testkit bench scripts
	$(BIN)/mypy src testkit

# Resolve pyproject.toml's ranges into uv.lock, keeping locked versions that still fit.
lock: $(UV_DEP)
	$(UV) lock

# Move every locked version to the newest release its range allows (then run the tests).
upgrade: $(UV_DEP)
	$(UV) lock --upgrade

bench: install system-deps
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* build *.egg-info
