# The two commands that do everything on a fresh machine:
#   make repro [PRESET=smoke]   install, then run the pipeline (default: the embedded corpus)
#   make test                   install, then lint and run the test suite
#   make test-fast              install, then lint and run the unit tests (no end-to-end runs)
#   make test-slurm             install (SLURM, munge, MariaDB too), then the smoke DAG through a one-node SLURM cluster
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PRESET ?= default
TOOL ?= dvc
APT_PACKAGES := build-essential espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox \
	asterisk-core-sounds-fr-g722 asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722 festvox-ru \
	fillets-ng-data-cs fillets-ng-data-nl lincity-ng-data git chromium
# the one-node cluster of tests/slurm_cluster.py: SLURM 22.05, its job accounting (slurmdbd on MariaDB), munge
SLURM_APT_PACKAGES := slurm-wlm slurmdbd munge mariadb-server
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: repro test test-fast test-slurm lint install apt apt-slurm ui compile bench

repro: install
	maskscope repro --tool $(TOOL) $(if $(PRESET),--preset $(PRESET))

test: lint
	$(BIN)/python -m pytest -q --timeout 1500 --durations=20 -m "not slurm"

test-fast: lint
	$(BIN)/python -m pytest -q --timeout 600 -m "not e2e and not slurm"

test-slurm: lint apt-slurm
	$(BIN)/python -m pytest -q --timeout 3600 --durations=20 -m slurm

lint: install
	$(BIN)/ruff check src pipelines tests benchmarks
	$(BIN)/ruff format --check src pipelines tests benchmarks
	$(BIN)/python -m pipelines.compile --check

install: apt $(VENV)/.installed

# $(call apt_install,PACKAGES): install those of PACKAGES that are missing
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

apt:
	$(call apt_install,$(APT_PACKAGES))

# Debian starts no daemon on install here (no init system); the test starts and stops its own.
apt-slurm:
	$(call apt_install,$(SLURM_APT_PACKAGES))

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
