# Every target bootstraps .venv by itself from the pinned requirements.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test reproduce table duplicates methods compare figures history clean
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

table: $(STAMP)  # the published wine-quality table, every protocol -> results/{table.csv,table.md,ablation.md}
	$(BIN)/ffnbench table --protocol all

duplicates: $(STAMP)  # baselines and best FFN, random vs grouped split -> results/duplicates.md, results/grouped/
	$(BIN)/python scripts/duplicates.py

methods: $(STAMP)  # optimisers and classification over 5 seeds -> results/methods.md
	$(BIN)/python scripts/methods.py

compare: $(STAMP)  # per-epoch speed of every backend -> results/speed.{csv,md}, figures
	$(BIN)/ffnbench compare

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
