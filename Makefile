# The two commands that do everything on a fresh machine:
#   make repro [PRESET=smoke]   install, then run the pipeline (default: the embedded corpus)
#   make test                   install, then lint and run the test suite
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PRESET ?= default
TOOL ?= dvc
APT_PACKAGES := build-essential espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox \
	asterisk-core-sounds-fr-g722 asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722 git chromium
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: repro test install apt ui compile bench

repro: install
	maskscope repro --tool $(TOOL) $(if $(PRESET),--preset $(PRESET))

test: install
	$(BIN)/ruff check src pipelines tests benchmarks
	$(BIN)/ruff format --check src pipelines tests benchmarks
	$(BIN)/python -m pipelines.compile --check
	$(BIN)/python -m pytest -q --timeout 1500

install: apt $(VENV)/.installed

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The venv is rebuilt when the dependency pins change.
$(VENV)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip "setuptools<81" wheel
	$(BIN)/pip install -q -c requirements.lock -e ".[dev,cluster]"
	touch $@

compile: install
	$(BIN)/python -m pipelines.compile

ui: install
	maskscope ui

bench: install
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_streaming.py
