# Every target bootstraps .venv by itself from the pinned requirements.txt.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: batch peer precision bench-compare contest examples readings setup test reproduce fresh-reproduce results table duplicates methods compare bound figures history history-site clean sweep
# one target at a time even under make -j: compare's single-core timings must not share
# the machine with table's worker processes
.NOTPARALLEL:

# TORCH=cpu: torch's CPU wheels instead of PyPI's default on Linux, the CUDA build (with its
# nvidia-* wheels, about 2.6 GB); nothing here needs a GPU. The index is added to pip's own
# settings (pip.conf, PIP_* variables), never replacing them, and is checked first, so an
# index that cannot be reached fails in seconds instead of pip retrying for minutes.
TORCH ?= pypi
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_TORCH := $(if $(filter cpu,$(TORCH)),--extra-index-url $(TORCH_CPU_INDEX) --timeout 15)

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@case "$(TORCH)" in cpu|pypi) ;; *) echo "make: TORCH=$(TORCH): use TORCH=cpu or TORCH=pypi" >&2; exit 2;; esac
	@if [ "$(TORCH)" = cpu ] && ! $(PYTHON) -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1].rstrip('/') + '/torch/', timeout=10)" "$(TORCH_CPU_INDEX)" 2>/dev/null; then \
	  echo "make: TORCH=cpu: cannot reach $(TORCH_CPU_INDEX) within 10 s; set TORCH_CPU_INDEX to a mirror, or leave TORCH unset for PyPI's torch" >&2; exit 2; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(PIP_TORCH) -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# pytest workers (pytest-xdist): one per core, at most 4 (each imports every engine)
PYTEST_OPTS ?= -n auto --maxprocesses 4

test: $(STAMP)  # a plain `pip install .` (no extras) in a fresh venv must run; then pytest
	PYTHON=$(PYTHON) bash scripts/check_base_install.sh
	$(BIN)/python -m pytest -q $(PYTEST_OPTS)

# Where table, methods, compare and figures write, and what compare measures. `make reproduce`
# recomputes into build/reproduce (never results/) with a shorter compare, then checks every
# number against the committed results; `make results` deliberately refreshes results/.
# The budget of make reproduce (<= 5 min on 2 cores) is set here: each new backend or table
# protocol adds to it; e.g. REPRODUCE_COMPARE_OPTS="--no-scaling --repeat 3 --datasets white"
# halves the comparison; with REPRODUCE_VERIFY= (not strict) verify checks just the rows it made.
OUT ?= results
TABLE_OPTS ?= --protocol all
COMPARE_OPTS ?=
REPRODUCE_DIR := build/reproduce
REPRODUCE_COMPARE_OPTS ?= --no-scaling --repeat 3
# what make reproduce must make: verify --strict fails if a file is missing or lacks a committed row
REPRODUCE_VERIFY ?= --strict --expect table.csv,runs.csv,baselines.csv,ablation.md,methods.csv,speed.csv

reproduce: OUT = $(REPRODUCE_DIR)
reproduce: COMPARE_OPTS = $(REPRODUCE_COMPARE_OPTS)
reproduce: TABLE_CACHE = $(REPRODUCE_DIR)/.cache/table
reproduce: fresh-reproduce table methods compare figures  # the main job: recompute, then verify
	$(BIN)/ffnbench verify $(REPRODUCE_VERIFY) $(REPRODUCE_DIR) results

duplicates: $(STAMP)  # baselines and best FFN, random vs grouped split -> OUT/duplicates.md, OUT/grouped/
	$(BIN)/ffnbench duplicates --out $(OUT) --cache-dir $(TABLE_CACHE)

readings: $(STAMP)  # the article protocol under each reading of its input scaling -> OUT/readings.{md,csv}
	$(BIN)/ffnbench readings --out $(OUT) --cache-dir $(TABLE_CACHE)

precision: $(STAMP)  # the table's settings in float32 against float64 -> OUT/precision.{md,csv}, precision_runs.csv
	$(BIN)/ffnbench precision --out $(OUT) --cache-dir $(TABLE_CACHE)

contest: $(STAMP)  # FFN vs forest vs boosting, tuned alike by cross-validation -> OUT/contest.{md,csv}
	$(BIN)/ffnbench contest --out $(OUT) --cache-dir $(TABLE_CACHE)

fresh-reproduce:
	rm -rf $(REPRODUCE_DIR)

results: table methods compare bound figures  # refresh the committed results/ (then review the diff)

TABLE_CACHE ?= .cache/table

table: $(STAMP)  # the published wine-quality table, every protocol -> OUT/{table.csv,table.md,ablation.md}
	$(BIN)/ffnbench table $(TABLE_OPTS) --out $(OUT) --cache-dir $(TABLE_CACHE) --no-progress

methods: $(STAMP)  # optimisers and classification over 20 seeds -> OUT/methods.{csv,md}
	$(BIN)/ffnbench methods --out $(OUT)

compare: $(STAMP)  # per-epoch speed of every backend -> OUT/speed.{csv,md}, OUT/figures/speed_*.png
	$(BIN)/ffnbench compare --out $(OUT) $(COMPARE_OPTS)

# the batch-size sweep of every backend on the largest net (about 10 minutes on 2 cores)
BATCH_SWEEP := 1,2,4,8,16,32,64,128,256,512,1024

batch: $(STAMP)  # µs per sample against the batch size, every backend -> OUT/batch/{speed.csv,speed.md,figures/speed_batch.png}
	$(BIN)/ffnbench compare --no-scaling --hidden 50,100,60,30,20,10 --datasets white --batch-sizes $(BATCH_SWEEP) --repeat 3 --out $(OUT)/batch > /dev/null

peer: $(STAMP)  # every backend against scikit-learn's MLP, float64 and float32, batch 1/32/256 -> OUT/peer/
	$(BIN)/ffnbench compare --no-scaling --datasets white --batch-sizes 1,32,256 --dtypes float64,float32 --repeat 3 --out $(OUT)/peer > /dev/null

bound: $(STAMP)  # the per-sample bound, every backend against it, numpy's call floor -> OUT/bound.{csv,md}, bound_*.csv, numpy_calls.csv
	$(BIN)/ffnbench bound --out $(OUT)

# SWEEP: a grid file under sweeps/; results/sweeps/<its name>/ gets runs.csv, summary.md, figures
# (ffnbench's own default is build/sweeps/<its name>: only make writes results/)
SWEEP ?= sweeps/wine.toml

sweep: $(STAMP)  # the committed >= 1,000-run sweep on a Dask LocalCluster of this machine's cores
	$(BIN)/ffnbench sweep $(SWEEP) --executor dask --out results/sweeps/$(basename $(notdir $(SWEEP)))

# ASV_MACHINE: the machine the developers measure on now (docs/asv.md); name yours otherwise.
# HISTORY_RANGE: which commits `make history` measures: ALL (main's first-parent line) or an
# asv range such as main~20..main or HASHFILE:FILE; commits already measured are skipped.
# HISTORY_MACHINES: the recorded machines the figures show, one above the other (empty: all of them).
ASV_MACHINE ?= ffnbench-zen5-2core
HISTORY_RANGE ?= ALL
HISTORY_MACHINES ?=

figures: $(STAMP)  # the history figures and regressions.md, from the committed asv results (no benchmark run)
	$(BIN)/ffnbench history --regressions --out $(OUT)/figures $(if $(HISTORY_MACHINES),--machine $(HISTORY_MACHINES)) > /dev/null

history: $(STAMP)  # asv results of every commit of HISTORY_RANGE not yet measured -> results/asv, figures
	$(BIN)/python -m benchmarks.machine $(ASV_MACHINE)
	$(BIN)/asv run --machine $(ASV_MACHINE) --skip-existing-commits $(HISTORY_RANGE)
	$(MAKE) figures

# SITE: where history-site writes asv's web page (serve it: python -m http.server -d $(SITE))
SITE ?= build/html

history-site: $(STAMP)  # asv's web page of results/asv, working offline (no CDN) -> SITE
	$(BIN)/ffnbench history --site $(SITE)

# BASE: the revision bench-compare measures the work tree against; BENCH_FACTOR: the slowdown
# that fails it; BENCH: a regular expression choosing benchmarks (empty: all, ~4 minutes)
BASE ?= main
BENCH_FACTOR ?= 1.15
BENCH ?=

bench-compare: $(STAMP)  # the work tree against BASE by asv continuous; exit 1 on a slowdown > BENCH_FACTOR
	$(BIN)/python scripts/bench_compare.py $(BASE) --factor $(BENCH_FACTOR) $(if $(BENCH),--bench '$(BENCH)')

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# every ffnbench example of README.md and docs/, as written, in a fresh clone under build/
# (a few minutes: it trains the sweep and the full speed comparison); fails if one fails or
# if one changed a committed file
examples: $(STAMP)
	$(BIN)/python scripts/examples.py run build/examples
