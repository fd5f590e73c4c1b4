# Everything a fresh machine with only python3 and pip needs: `make test`, `make demo`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch is pinned first, then the package is installed under a constraint that keeps it:
# an unpinned torch would pull a different (CUDA) build and gigabytes of packages.
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

.PHONY: install test test-fast demo clean

$(STAMP): pyproject.toml workshop/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==$(TORCH_VERSION)"
	echo "torch==$(TORCH_VERSION)" > $(VENV)/constraints.txt
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e ".[test]" -e workshop
	touch $(STAMP)

install: $(STAMP)

# The suite on WORKERS processes (pytest-xdist; each test file stays on one worker, so that its module
# fixtures are built once), listing the 15 slowest tests so that creep shows.
WORKERS ?= 2
PYTEST := HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n $(WORKERS) --dist loadfile --durations=15

test: $(STAMP)
	$(PYTEST) src workshop tests

test-fast: $(STAMP)
	$(PYTEST) -m "not slow" src workshop tests

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/refine-rft-workshop demo

clean:
	rm -rf $(VENV) .pytest_cache runs/demo
