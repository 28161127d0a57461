"""The parsers of the studies built on the table's runs: methods, duplicates, readings,
contest and precision (parser.py builds them into its command line)."""
from .core.config import PRECISION_MARGIN, REGRESSION_DATASETS
from .impls import BACKENDS
from .parser import _command, add_grid_options
from .run.cache import CACHE_DIR
from .run.machine import default_jobs


def _methods(sub):
    p = _command(sub, "methods", help="optimisers and classification over 20 seeds",
                 description="Train the optimiser and classification study (Adam, mini-batch "
                             "and full-batch SGD, the color and quality-class tasks) over 20 "
                             "seeds each; write OUT/methods.csv and methods.md.",
                 epilog="example:\n  ffnbench methods --out build/methods")
    p.add_argument("--out", default="build/methods",
                   help="directory for methods.csv and methods.md, made if missing")
    p.add_argument("--backend", default="numba", choices=BACKENDS,
                   help="results are the same (default %(default)s)")


def _pool_options(p):
    """--jobs and --cache-dir of the studies that run tables on the local pool."""
    p.add_argument("--jobs", type=int, default=None,
                   help=f"worker processes (default: the cores, here {default_jobs()})")
    p.add_argument("--cache-dir", default=CACHE_DIR, help="finished runs, one JSON file each")


def _duplicates(sub):
    p = _command(sub, "duplicates", help="how much the duplicate wines flatter each model",
                 description="Run the `modern` table and its baselines with the random and "
                             "with the grouped split (every copy of an identical wine in one "
                             "part); write OUT/duplicates.md and the grouped table to "
                             "OUT/grouped/.",
                 epilog="example:\n  ffnbench duplicates --out build/dup")
    p.add_argument("--out", default="build/duplicates",
                   help="directory for duplicates.md and grouped/, made if missing")
    _pool_options(p)


def _readings(sub):
    p = _command(sub, "readings", help="the printed code under each reading of its input scaling",
                 description="Run the `article` protocol (every quirk of the printed code) once "
                             "per reading of the input scaling the printed code leaves open "
                             "(none, minmax, standard, sample-maxmin); write OUT/readings.md "
                             "and readings.csv: per published cell, the verdict under each.",
                 epilog="example:\n  ffnbench readings --out build/readings")
    p.add_argument("--out", default="build/readings",
                   help="directory for readings.md and readings.csv, made if missing")
    p.add_argument("--seeds", type=int, default=20, help="seeds per setting (default %(default)s)")
    _pool_options(p)


def _contest(sub):
    p = _command(sub, "contest", help="FFN, forest and boosting tuned the same way, then tested",
                 description="Tune the FFN, a random forest and gradient boosting with the same "
                             "budget by the same cross-validation on training + validation, "
                             "refit each on all of it and test once, on the random and the "
                             "grouped split; write OUT/contest.csv and contest.md with the "
                             "paired differences. Needs scikit-learn and numba.",
                 epilog="example:\n  ffnbench contest --seeds 5 --out build/contest")
    p.add_argument("--out", default="build/contest",
                   help="directory for contest.csv and contest.md, made if missing")
    p.add_argument("--seeds", type=int, default=10, help="seeds (splits) (default %(default)s)")
    p.add_argument("--datasets", default=",".join(REGRESSION_DATASETS),
                   help="comma-separated (default %(default)s)")
    _pool_options(p)


def _precision(sub):
    p = _command(sub, "precision", help="the table's test error in float32 against float64",
                 description="Train every run of the table's settings twice, in float64 and in "
                             "float32, from the same split, initial weights and sample order; "
                             "write OUT/precision.md, precision.csv (per setting: the paired "
                             "test-MSE difference float32 - float64 with its interval, and "
                             "whether it lies within +-DELTA) and precision_runs.csv.",
                 epilog="example:\n  ffnbench precision --settings 4,8 --seeds 5 --out build/precision")
    p.add_argument("--out", default="build/precision",
                   help="directory for precision.md, precision.csv and precision_runs.csv, made if missing")
    add_grid_options(p, protocol="both", backend_help="a backend that takes both precisions")
    p.add_argument("--delta", type=float, default=PRECISION_MARGIN,
                   help="the margin of test MSE within which the two precisions count as equal "
                        "(default %(default)s)")
    _pool_options(p)


COMMANDS = (_methods, _duplicates, _readings, _contest, _precision)
