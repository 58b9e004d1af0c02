# `make run`: the optimizer comparison on the bundled digits (no download).
# `make test`: the test suite.
# Both create the virtual environment .venv and install what they need.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum setup.py | cut -d' ' -f1)
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: run test

run: $(STAMP)
	$(VENV)/bin/python -m keras_signadam compare

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 tests

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[test]"
	rm -f $(VENV)/.installed-*
	touch $@
