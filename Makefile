# gan-cli: `make help` lists the targets. Everything installs into a local virtual environment.
.DEFAULT_GOAL := help
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FASHION_MNIST := /usr/share/datasets/fashion-mnist
ARGS ?=
THREADS ?= 0

.PHONY: help install data browser train test test-fast lint bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'

install: $(STAMP) data browser ## Virtual environment .venv with gan-cli, its dependencies, the offline data and Chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[dev,all]'
	touch $@

data: ## Fashion-MNIST from Debian's dataset-fashion-mnist package (the default dataset, offline)
	@if [ -d $(FASHION_MNIST) ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "Fashion-MNIST: no apt-get here; see README (Data) for other sources"; exit 0; fi; \
	SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq dataset-fashion-mnist

browser: ## Headless Chromium from Debian's chromium package (the browser tests of gan-report's pages)
	@if command -v chromium >/dev/null; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "Chromium: no apt-get here; the browser tests skip without it"; exit 0; fi; \
	SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium

train: install ## Set up, then train the default experiment offline (ARGS="loss=hinge ..." to change it)
	$(BIN)/gan-train $(ARGS)

test: install ## Set up, then run the whole test suite (what CI runs)
	$(BIN)/python -m pytest -m "slow or not slow" -n 2 --dist worksteal --durations=25

test-fast: install ## The fast selection: skips tests marked slow
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=10

lint: install ## ruff
	$(BIN)/ruff check gan_cli tests scripts

bench: install ## gan-cli against plain loops, then the data path (docs/performance.md; THREADS=1)
	$(BIN)/python scripts/bench_train.py --threads $(THREADS)
	$(BIN)/python scripts/bench_data.py --threads $(THREADS)

clean: ## Remove the virtual environment and caches (keeps outputs/)
	rm -rf $(VENV) .pytest_cache .ruff_cache
