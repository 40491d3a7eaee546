# kto — QEMU-based kernel test orchestrator.
# `make run` runs the quick matrix (build, boot, judge); `make test` runs the tests.
# Both install what they need first (`make setup`, idempotent).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
KTO := $(VENV)/bin/kto
APT_PACKAGES := $(shell sed -e 's/\#.*//' configs/host/apt-packages.txt)
SETUP_STAMP := $(VENV)/.setup-done

.PHONY: setup run nightly demo bot-demo test test-faults test-slow lint format bench clean help

help:
	@echo "make setup  - install host packages (apt) and Python deps (venv); idempotent"
	@echo "make run    - the quick matrix (configs/matrix/quick.yaml): build, boot, judge"
	@echo "make nightly - the nightly matrix (configs/matrix/nightly.yaml)"
	@echo "make demo   - the seed scenarios against their baseline (configs/matrix/seeds.yaml)"
	@echo "make bot-demo - the bot end to end: a regression lands, the night bisects it, mails"
	@echo "               its author, and its fix is tested (bench/bot_e2e.py; ~17 min here)"
	@echo "make test   - run the test suite (unit + integration)"
	@echo "make test-faults - the fault-injection tests only (tests/faults)"
	@echo "make test-slow - only the tests too long for every run (1 GB flood, flaky real bisect)"
	@echo "make lint   - ruff check + format check + mypy"
	@echo "make bench  - run the benchmarks under bench/"

setup: $(SETUP_STAMP)
	@bash scripts/setup-host.sh $(APT_PACKAGES)
	@# Bytecode made once here: a kto start then loads it, even where the environment
	@# says not to write it (PYTHONDONTWRITEBYTECODE), instead of compiling ~50 modules.
	@$(VENV)/bin/python -m compileall -q orchestrator

$(SETUP_STAMP): pyproject.toml
	@bash scripts/setup-host.sh $(APT_PACKAGES)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	@# compat: the checkout's path in a .pth, not setuptools' import-hook finder, which costs
	@# every kto start ~10 ms of imports (issue 12's boot overhead)
	@# (setuptools warns that compat is transitional: pinned below 85 in pyproject.toml)
	$(VENV)/bin/pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	@touch $@

run: setup
	$(KTO) matrix quick

nightly: setup
	$(KTO) matrix nightly

# The seed scenarios are expected to FAIL (exit 1: NEW on the first night); anything worse
# (an interrupted run, bad input) still fails `make demo`.
demo: setup
	$(KTO) matrix seeds; rc=$$?; [ $$rc -le 1 ] || exit $$rc

# Real builds and boots: night 1, a moving branch, night 2 bisects and mails, kto test.
bot-demo: setup
	$(VENV)/bin/python bench/bot_e2e.py

# One pytest process: two workers (tried with pytest-xdist) were no faster here (17.3 min
# warm) and starved TCG guests into false rcutorture writer stalls.
test: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-faults: setup
	$(VENV)/bin/pytest tests/faults -m "slow or not slow" $(PYTEST_ARGS)

test-slow: setup
	$(VENV)/bin/pytest -m slow $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	for b in bench/*.py; do $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
