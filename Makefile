# moe-zoo: every target does its own set-up; `make demo` and `make test-all` work on a fresh clone.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --locked --no-sync
PACKAGES := $(notdir $(wildcard packages/*))
STAMP := .venv/.moe-zoo-installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg
export MOE_ZOO_UV := $(UV)

.PHONY: install demo test-all test-root lint help $(addprefix test-,$(PACKAGES)) $(addprefix bench-,$(PACKAGES))

help:
	@echo "make install | demo | test-all | test-<package> | bench-<package> | lint"
	@echo "packages: $(PACKAGES)"

# Re-syncs only when the lock or a pyproject changed (or the venv is missing).
$(STAMP): pyproject.toml uv.lock $(wildcard packages/*/pyproject.toml) $(wildcard packages/*/apt.txt)
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	bash scripts/install-system-packages.sh
	$(UV) sync --locked --all-extras --all-packages
	@touch $@

install: $(STAMP)

demo: install
	$(RUN) moe-zoo demo

test-all: install
	$(RUN) pytest tests $(addsuffix /tests,$(addprefix packages/,$(PACKAGES)))

test-root: install
	$(RUN) pytest tests

$(addprefix test-,$(PACKAGES)): test-%: install
	$(RUN) pytest packages/$*/tests

$(addprefix bench-,$(PACKAGES)): bench-%: install
	$(RUN) python packages/$*/benchmarks/run.py

lint: install
	$(RUN) ruff check .

# moe-core on a CUDA machine (tests, bf16 benchmark, domain training steps; installs nothing):
# make gpu-check GPU_CHECK_OUT=<report folder> [GPU_CHECK_PYTHON=python3]; refuses without CUDA.
# See packages/moe-core/README.md.
.PHONY: gpu-check
gpu-check:
	$(or $(GPU_CHECK_PYTHON),$(RUN) python) packages/moe-core/benchmarks/gpu_check.py --out $(or $(GPU_CHECK_OUT),gpu-check-report)
