# Everything a fresh machine with only python3 and pip needs: `make test`, `make demo`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch is pinned first, then the package is installed under a constraint that keeps it:
# an unpinned torch would pull a different (CUDA) build and gigabytes of packages.
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed
# The GPU install's versions (constraints/gpu.txt: what `pip install ".[vllm]"` resolves, vLLM left out).
FLOOR_VENV := .venv-floor
FLOOR_PY := $(FLOOR_VENV)/bin/python
FLOOR_STAMP := $(FLOOR_VENV)/.installed
GPU_CONSTRAINTS := constraints/gpu.txt

.PHONY: install test test-fast test-floor demo clean

$(STAMP): pyproject.toml workshop/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==$(TORCH_VERSION)"
	echo "torch==$(TORCH_VERSION)" > $(VENV)/constraints.txt
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -e ".[test]" -e workshop
	touch $(STAMP)

install: $(STAMP)

$(FLOOR_STAMP): pyproject.toml workshop/pyproject.toml $(GPU_CONSTRAINTS)
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_PY) -m pip install -q --upgrade pip
	$(FLOOR_PY) -m pip install -q -c $(GPU_CONSTRAINTS) "torch==$(TORCH_VERSION)"
	$(FLOOR_PY) -m pip install -q -c $(GPU_CONSTRAINTS) -e ".[test]" -e workshop
	touch $(FLOOR_STAMP)

# The suite on WORKERS processes (pytest-xdist; each test file stays on one worker, so that its module
# fixtures are built once), listing the 15 slowest tests so that creep shows.
WORKERS ?= 2
PYTEST := HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n $(WORKERS) --dist loadfile --durations=15

test: $(STAMP)
	$(PYTEST) src workshop tests

test-fast: $(STAMP)
	$(PYTEST) -m "not slow" src workshop tests

# The fast tests on the versions a GPU user gets (transformers 5.17, torch 2.13, ...), without vLLM itself.
test-floor: $(FLOOR_STAMP)
	HF_HUB_OFFLINE=1 REFINE_RFT_CONSTRAINTS=$(GPU_CONSTRAINTS) $(FLOOR_PY) -m pytest -q -n $(WORKERS) --dist loadfile --durations=15 -m "not slow" src workshop tests

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/refine-rft-workshop demo

clean:
	rm -rf $(VENV) $(FLOOR_VENV) .pytest_cache runs/demo
