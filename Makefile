# Every target bootstraps .venv by itself from the pinned requirements.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test reproduce table methods compare figures history clean sweep
# one target at a time even under make -j: compare's single-core timings must not share
# the machine with table's worker processes
.NOTPARALLEL:

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

reproduce: table methods compare figures  # the main job, on the embedded defaults

table: $(STAMP)  # the published wine-quality table, both protocols -> results/table.{csv,md}
	$(BIN)/ffnbench table --protocol both

methods: $(STAMP)  # optimisers and classification over 5 seeds -> results/methods.md
	$(BIN)/python scripts/methods.py

compare: $(STAMP)  # per-epoch speed of every backend -> results/speed.{csv,md}, figures
	$(BIN)/ffnbench compare

# SWEEP: a grid file under sweeps/; results/sweeps/<its name>/ gets runs.csv, summary.md, figures
SWEEP ?= sweeps/wine.toml

sweep: $(STAMP)  # the committed >= 1,000-run sweep on a Dask LocalCluster of this machine's cores
	$(BIN)/ffnbench sweep $(SWEEP) --executor dask

# ASV_MACHINE: the reference machine of results/asv (README); name yours otherwise
ASV_MACHINE ?= ffnbench-ref-2core

figures: $(STAMP)  # the history figures, from the committed asv results (no benchmark run)
	$(BIN)/ffnbench history --machine $(ASV_MACHINE)

history: $(STAMP)  # asv results of every commit of main not yet measured -> results/asv, html, figures
	$(BIN)/python -m benchmarks.machine $(ASV_MACHINE)
	$(BIN)/asv run --machine $(ASV_MACHINE) --skip-existing-commits ALL
	$(BIN)/asv publish
	$(MAKE) figures ASV_MACHINE=$(ASV_MACHINE)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
