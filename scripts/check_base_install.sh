#!/usr/bin/env bash
# A plain `pip install .` (no extras) into a fresh virtual environment: the commands that need
# no optional engine run, and one that needs a missing engine says in one line which extra
# installs it (exit status 2). `make test` runs this after pytest; PYTHON picks the interpreter.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "check_base_install: $*" >&2; exit 1; }

"${PYTHON:-python3}" -m venv "$work/venv" || fail "cannot create a venv"
"$work/venv/bin/python" -m pip install --quiet "$root" 2>&1 | grep -v "^WARNING: Location" || true
ff="$work/venv/bin/ffnbench"
[ -x "$ff" ] || fail "pip install . made no ffnbench command"
cd "$work"  # away from the clone: the installed copy runs
"$work/venv/bin/python" - <<'PY' || fail "the base install pulled in an optional engine"
import importlib.util, sys
sys.exit(any(importlib.util.find_spec(m) for m in ("numba", "torch", "jax", "distributed", "sklearn", "pyarrow")))
PY

run() {  # run "what" CMD...: must exit 0 without a traceback
    local what=$1; shift
    "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; fail "$what failed"; }
    ! grep -q Traceback "$work/err" || { cat "$work/err" >&2; fail "$what printed a traceback"; }
}
run "--version" "$ff" --version
run "--help" "$ff" --help
for c in train table sweep compare bound history verify methods duplicates; do run "$c --help" "$ff" "$c" --help; done
run "train --backend numpy" "$ff" train --backend numpy --epochs 2 --patience 0
run "train --backend python" "$ff" train --backend python --hidden 10 --epochs 1 --patience 0
run "table --backend numpy" "$ff" table --backend numpy --settings 7 --datasets red --seeds 1 --epochs 2 \
    --out table --cache-dir cache --no-progress --jobs 1
run "verify" "$ff" verify table table
printf 'backend = "python"\nhidden = "10"\nlr = [0.01, 0.1]\nepochs = 1\nseeds = 1\n' >grid.toml
run "sweep --backend python" "$ff" sweep grid.toml --out sweep --cache-dir cache --no-progress --jobs 1
mkdir -p speed
run "compare --backends numpy,python" "$ff" compare --backends numpy,python --hidden 10 --datasets red \
    --batch-sizes 1 --repeat 1 --no-scaling --out speed
run "history" "$ff" history --results "$root/results/asv" --out figures

for engine in numba torch jax; do  # a missing engine: one line naming its extra, exit 2
    "$ff" train --backend "$engine" >"$work/out" 2>"$work/err"
    rc=$?
    [ "$rc" = 2 ] || fail "train --backend $engine exited $rc, not 2"
    [ "$(wc -l <"$work/err")" = 1 ] && grep -q "pip install 'ffnbench\[$engine\]'" "$work/err" \
        || { cat "$work/err" >&2; fail "train --backend $engine did not name its extra in one line"; }
done
"$ff" sweep grid.toml --executor dask --out s2 2>"$work/err"
[ $? = 2 ] && grep -q "ffnbench\[dask\]" "$work/err" || fail "--executor dask without distributed"
echo "check_base_install: a plain pip install runs every command that needs no optional engine"
