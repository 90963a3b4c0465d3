# Setup and main jobs of the SEMICON workbench. Every target creates .venv on first use.
#   make demo   train on the embedded typefaces data (CPU, offline) and print the run folder and mAP
#   make test   run the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_NAME ?= demo-$(shell date +%Y%m%d-%H%M%S)
DEMO_DIR := outputs/typefaces/$(RUN_NAME)
PYTEST_ARGS ?=

.PHONY: demo test evaluate attention browser-check install install-dev lab clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	mkdir -p $(DEMO_DIR)
	$(VENV)/bin/papermill notebooks/train.ipynb $(DEMO_DIR)/train.ipynb \
		-p dataset typefaces -p run_name $(RUN_NAME) -p progress text --log-output
	$(PY) -m semicon_core.summary $(DEMO_DIR)

test: $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# Evaluate and visualise an existing run: make evaluate RUN_NAME=demo-20261204-210000
evaluate: $(VENV)/.installed
	$(VENV)/bin/papermill notebooks/evaluate.ipynb $(DEMO_DIR)/evaluate.ipynb \
		-p dataset typefaces -p run_name $(RUN_NAME) -p progress text --log-output

attention: $(VENV)/.installed
	$(VENV)/bin/papermill notebooks/attention.ipynb $(DEMO_DIR)/attention.ipynb \
		-p run_dir $(DEMO_DIR) --log-output

# Needs Debian's chromium (apt-get install chromium); never runs `playwright install`.
browser-check: $(VENV)/.installed-dev
	$(PY) -m pip install -e ".[lab,browser]"
	$(PY) -m pytest -m browser tests/browser

lab: $(VENV)/.installed
	$(PY) -m pip install -e ".[lab]"
	$(VENV)/bin/jupyter lab notebooks

clean-venv:
	rm -rf $(VENV)
