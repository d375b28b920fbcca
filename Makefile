# xflow: two commands do all the set-up on a fresh machine.
#   make figures   bootstrap .venv, execute every notebook (quick profile), write figures/
#   make test      bootstrap .venv, run pytest (unit tests + notebook smoke runs)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.xflow-installed
QUICK ?= 1

.PHONY: all bootstrap figures test test-all lab bench report clean-cache dot kernel

all: test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,peers]'
	touch $(STAMP)

dot:
	@if ! command -v dot >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing graphviz (dot) with apt-get"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null) \
	      || echo "warning: apt-get could not install graphviz; rendering will raise a clear error"; \
	  else \
	    echo "note: Graphviz 'dot' is missing; install it (apt-get install graphviz / brew install graphviz / conda install graphviz) to render graphs"; \
	  fi; \
	fi

kernel: $(STAMP)
	@$(PY) -m ipykernel install --sys-prefix --name xflow --display-name "xflow (.venv)" >/dev/null

bootstrap: $(STAMP) dot kernel

figures: bootstrap
	XFLOW_QUICK=$(QUICK) $(VENV)/bin/xflow notebooks run --all --quick=$(QUICK)

test: bootstrap
	$(PY) -m pytest -q

test-all: bootstrap
	$(PY) -m pytest -q -m ''

lab: bootstrap
	JUPYTER_PATH=$(VENV)/share/jupyter $(VENV)/bin/jupyter lab notebooks/

report: bootstrap
	$(VENV)/bin/xflow report

bench: bootstrap
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

clean-cache:
	rm -rf $${XFLOW_CACHE:-$$HOME/.cache/xflow}
