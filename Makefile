# The one entry point for humans and CI. `make demo` and `make test` work on a fresh
# machine with only python3 and the package registries.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo dev worker test check lint format histories clean

$(STAMP): pyproject.toml
	@echo "install: creating $(VENV) and installing opsready with its dev tools (about a minute)"
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install  ## start Temporal + a worker, run the demo scenarios, stop everything
	$(VENV)/bin/opsready demo

dev: install  ## Temporal dev server (UI on :8233) + a worker, in the foreground
	$(VENV)/bin/opsready dev

worker: install  ## a worker against TEMPORAL_ADDRESS (default localhost:7233)
	$(VENV)/bin/opsready worker

check: install  ## lint, format check, types (strict on workflows/)
	@echo "check: ruff, ruff format, mypy"
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: check  ## everything CI runs
	PYTHONUNBUFFERED=1 $(VENV)/bin/pytest -q

histories: install  ## re-record the golden histories under tests/histories/
	$(VENV)/bin/opsready history record --out tests/histories

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .temporal .opsready .pytest_cache .mypy_cache .ruff_cache
