# The two commands of the README:
#   make demo   harvest the bundled sample from a local OAI-PMH provider, index it, search it
#   make test   lint, type-check and run the whole test suite (what .ci/run calls)
# Both set up everything they need first (virtualenv, packages, Debian's redis-server).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck redis-server chromium clean bench constraints

# The project with its `dev` (lint, types, tests) and `demo` (the demo's OAI-PMH provider)
# extras, at the versions pinned in constraints.txt, which the Docker image installs too.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt -e '.[dev,demo]'
	@touch $(STAMP)

# Pin what the virtualenv holds now (after changing a dependency in pyproject.toml).
constraints:
	$(BIN)/python -m pip install --quiet -e '.[dev,demo]'
	{ echo "# Pinned versions of every dependency of ernte[dev,demo], frozen from .venv by"; \
	  echo "# \`make constraints\`. Used by the Makefile and the Dockerfile (pip install -c)."; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt
	@touch $(STAMP)

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing Debian's redis-server (tests start their own on loopback)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq redis-server >/dev/null; }

# The browser test of `ernte serve` drives Debian's headless Chromium; where it cannot be
# installed, that test skips and prints why (the rest of the suite still runs).
chromium:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  echo "installing Debian's chromium + chromium-driver (for the browser test of ernte serve)"; \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	  || echo "could not install chromium: the browser test will be skipped"; }

demo: $(STAMP)
	$(BIN)/ernte demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) redis-server chromium lint typecheck
	$(BIN)/pytest -rs --durations=15

bench: $(STAMP)
	@echo "benchmarks are run one by one, see bench/README.md"

clean:
	rm -rf $(VENV) data dist build .pytest_cache .mypy_cache .ruff_cache
