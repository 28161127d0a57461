"""The `ffnbench` command line's parser: every command's options, and nothing else. It
imports only modules free of numpy and pandas (the backend registry, config, the cache's
name), so `ffnbench --help` starts at once; the commands are imported when they run."""
import argparse
import textwrap

from . import __version__
from .core.config import (DATASETS, DEVICES, EXECUTORS, INITS, NETS, PROTOCOLS,
                          REGRESSION_DATASETS, RUN_LIMIT, SCALINGS, SPLITS, STOPS, TASK_LOSSES, TrainConfig)
from .impls import ACTIVATIONS, BACKENDS, DTYPES, LOSSES, OPTIMIZERS, declarations
from .run.cache import CACHE_DIR
from .run.machine import default_jobs


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps prose, keeps the examples' lines; shows every real default a help text lacks."""

    def _fill_text(self, text, width, indent):
        return "\n".join(line if line.startswith(" ") or len(line) <= width else
                         textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
                         for line in text.splitlines())

    def _get_help_string(self, action):
        help = action.help or ""
        if "default" in help or action.default in (None, False, argparse.SUPPRESS) \
                or not action.option_strings:
            return help
        return help + " (default %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line, without the usage block."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


DESCRIPTION = ("ffnbench: one feed-forward network trained by backpropagation in pure Python, "
               "NumPy, Numba, PyTorch, JAX, C and scikit-learn on the UCI wine data; same "
               "weights, how fast.")
EXAMPLES = """examples:
  ffnbench train --backend numba --dataset red       train one network, print its test error
  ffnbench table --settings 7,8 --out build/try      reproduce two rows of the published table
  ffnbench verify build/try results                  check them against the committed results
  ffnbench compare --no-scaling                      time every backend on the same work
  ffnbench history                                   draw the asv history (results/asv)
'ffnbench COMMAND --help' describes each command."""


def _or(names):
    return " | ".join(names)


def _float32_backends():  # those that do not refuse it
    return ", ".join(n for n, d in declarations().items() if "float32" not in dict(d.refuses))


def _add_train_options(p):
    d = TrainConfig()
    p.add_argument("--backend", default=d.backend, choices=BACKENDS, help="(default %(default)s)")
    p.add_argument("--dataset", default=d.dataset, choices=DATASETS, help="(default %(default)s)")
    p.add_argument("--hidden", default=",".join(map(str, d.hidden)),
                   help="hidden layer sizes, comma-separated (default %(default)s)")
    p.add_argument("--activation", default=d.activation, choices=ACTIVATIONS,
                   help="(default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default %(default)s)")
    p.add_argument("--l2", type=float, default=d.l2, help="L2 penalty on weights (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="split, initial weights and order (default %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="maximum epochs (default %(default)s)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="stop after this many epochs without a better validation MSE (log-loss for "
                        "classification) and restore the best weights; 0 = train exactly "
                        "--epochs (default %(default)s)")
    p.add_argument("--init", default=d.init, choices=INITS,
                   help="auto: Glorot for sigmoid/tanh, He for relu (default %(default)s)")
    p.add_argument("--scaling", default=d.scaling, choices=SCALINGS, help="(default %(default)s)")
    p.add_argument("--device", default=d.device, choices=DEVICES, help="(default %(default)s); "
                   + "; ".join(f"{dev}: {', '.join(n for n, dec in declarations().items() if dev in dec.devices)}"
                               for dev in DEVICES if dev != "cpu"))
    p.add_argument("--loss", default=None, choices=LOSSES,
                   help=" | ".join(f"{k} ({v} output)" for k, v in LOSSES.items()) + "; default per task: "
                        + ", ".join(f"{t} {ls[0]}" for t, ls in TASK_LOSSES.items()))
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS,
                   help="(default %(default)s)")
    p.add_argument("--batch-size", default=str(d.batch_size),
                   help="samples per update, or 'full' for full-batch gradient descent; "
                        "1 = per-sample SGD as published (default %(default)s)")
    p.add_argument("--beta1", type=float, default=d.beta1, help="Adam (default %(default)s)")
    p.add_argument("--beta2", type=float, default=d.beta2, help="Adam (default %(default)s)")
    p.add_argument("--eps", type=float, default=d.eps, help="Adam (default %(default)s)")
    p.add_argument("--dtype", default=d.dtype, choices=DTYPES,
                   help="the arithmetic: float64 (every backend, the same weights to round-off) "
                        f"or float32 ({_float32_backends()}) (default %(default)s)")
    add_quirk_options(p, d)  # d: train's defaults are TrainConfig's
    p.add_argument("--data-dir", default=None,
                   help="read the wine CSVs from this directory (default: the copy installed "
                        "with ffnbench)")
    p.add_argument("--allow-unverified", action="store_true",
                   help="accept CSVs whose sha256 differs from the UCI files (still validated)")


def add_quirk_options(p, d=None):
    """The printed article code's quirks (docs/protocol.md), for train and table; table
    passes d=None: an option left unset keeps its protocol's choice."""
    pick = (lambda v: None) if d is None else (lambda v: v)
    default = "the protocol's" if d is None else "%(default)s"
    d = d or TrainConfig()
    p.add_argument("--stop", default=pick(d.stop), choices=STOPS, help="first-rise stops at the "
                   "first epoch whose validation error is not lower than the one before and keeps "
                   f"its weights; --epochs stays a cap (default {default})")
    p.add_argument("--split", default=pick(d.split), choices=SPLITS, help="grouped keeps all copies "
                   "of an identical wine (inputs and quality) in one part (default random)")
    p.add_argument("--input-activation", action="store_true", default=pick(d.input_activation),
                   help="apply the hidden activation to the input too: a(0) = f(x)")
    p.add_argument("--grad-bug", action="store_true", default=pick(d.grad_bug),
                   help="weight gradient from the layer input before its activation (x, z), "
                        "as the printed code has it")
    p.add_argument("--relu-grad0", type=float, default=pick(d.relu_grad0),
                   help=f"relu'(0): 0 (autograd) or 1 (the printed code) (default {default})")


def _command(sub, name, **kwargs):
    """A subcommand's parser; cli imports ffnbench.commands.<name> when it runs."""
    p = sub.add_parser(name, **kwargs)
    p.set_defaults(command=name)
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true",
                      help="print only errors and warnings (no progress, no summary lines)")
    talk.add_argument("-v", "--verbose", action="store_true",
                      help="print detail too: each finished run, Dask's worker events")
    return p


def add_run_options(parser, cache_help):
    """--jobs, --executor, --workers, --scheduler, --cache-dir, --fresh, --no-progress: the
    same for every command that runs a grid; cache_help: what the cache holds, for --help."""
    parser.add_argument("--jobs", type=int, default=None,
                        help=f"with --executor local: worker processes (default: the cores, "
                             f"here {default_jobs()})")
    parser.add_argument("--executor", default="local", choices=EXECUTORS,
                        help="local: a process pool of --jobs workers on this machine; dask: a "
                             "Dask cluster, see --workers and --scheduler (default %(default)s)")
    parser.add_argument("--workers", type=int, default=None,
                        help="with --executor dask: start a local Dask cluster of N single-"
                             "threaded worker processes (default: the cores)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="with --executor dask: use the running cluster whose scheduler is "
                             "at ADDRESS, e.g. tcp://10.0.0.5:8786 (default: dask's configuration, "
                             "e.g. DASK_SCHEDULER_ADDRESS; without one, a local cluster)")
    parser.add_argument("--scheduler-file", default=None, metavar="FILE",
                        help="with --executor dask: use the cluster whose scheduler wrote FILE "
                             "(dask scheduler --scheduler-file FILE; dask-mpi, dask-jobqueue)")
    parser.add_argument("--cache-dir", default=CACHE_DIR, help=f"{cache_help} (default %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="ignore cached runs (and replace them)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress (a bar on a terminal, else a line every 30 s)")
    parser.add_argument("--yes", action="store_true",
                        help=f"start even more than {RUN_LIMIT:,} runs (refused without it)")
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON on stdout (the files are written too)")


def add_grid_options(p, protocol, backend_help):
    """Which runs of the published table: --seeds, --backend, --datasets, --protocol, --settings."""
    p.add_argument("--seeds", type=int, default=20, help="seeds (splits) per setting (default %(default)s)")
    p.add_argument("--backend", default="numba", choices=BACKENDS, help=f"{backend_help} (default %(default)s)")
    p.add_argument("--datasets", default=",".join(REGRESSION_DATASETS), help="comma-separated (default %(default)s)")
    p.add_argument("--protocol", default=protocol,
                   help=f"{' | '.join(PROTOCOLS)}, a comma list of them, or all (default "
                        "%(default)s; published = minmax-uniform, both = modern,minmax-uniform); "
                        "see docs/protocol.md")
    p.add_argument("--settings", default=None,
                   help="only these rows of the published table, e.g. 1,8 (default: all 15)")


def _table(sub):
    p = _command(sub, "table", help="reproduce the published wine-quality table (docs/protocol.md)",
                 description="Train every setting of the published table on both wine "
                             "datasets over several seeds under one or more protocols; write "
                             "OUT/table.csv, OUT/table.md and, for several protocols, "
                             "OUT/ablation.md. Finished runs are cached, so "
                             "an interrupted run resumes where it stopped.",
                 epilog="example (two rows of the table, then checked against the committed "
                        "results):\n  ffnbench table --settings 7,8 --out build/try\n"
                        "  ffnbench verify build/try results")
    add_grid_options(p, protocol="modern", backend_help="results are the same")
    p.add_argument("--scaling", default=None,
                   help=f"{' | '.join(SCALINGS)}: override every protocol's feature scaling")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs, help="maximum epochs (default %(default)s)")
    p.add_argument("--patience", type=int, default=TrainConfig.patience,
                   help="early-stopping patience in epochs (default %(default)s)")
    p.add_argument("--out", default="build/table",
                   help="directory for table.csv, table.md and runs.csv, made if missing "
                        "(default %(default)s; `make results` writes results/)")
    add_run_options(p, "finished runs, one JSON file each")
    add_quirk_options(p)


def _sweep(sub):
    p = _command(sub, "sweep", help="train every combination of a grid file's options over seeds",
                 description="Train every combination of the train options in GRID.toml "
                             "(each a value or a list; seeds = N), on the local pool or a "
                             "Dask cluster; write OUT/runs.csv (and runs.parquet), "
                             "OUT/summary.md and figures. Finished runs are cached, so "
                             "an interrupted sweep resumes where it stopped.",
                 epilog="examples:\n  ffnbench sweep sweeps/wine.toml --executor dask --workers 2\n"
                        "  ffnbench sweep my.toml --executor dask --scheduler tcp://host:8786")
    p.add_argument("grid", metavar="GRID.toml", help="the grid file (see docs/sweeps.md)")
    p.add_argument("--out", default=None,
                   help="directory for the results, made if missing (default build/sweeps/<grid "
                        "file name>; `make sweep` writes results/sweeps/)")
    add_run_options(p, "finished runs, one JSON file each, shared with `ffnbench table`")


def _compare(sub):
    p = _command(sub, "compare", help="time every backend on the same training work",
                 description="Train every backend from the same initial weights in the same "
                             "sample order, time its epochs (one thread per engine, after a "
                             "JIT warm-up), check that all end with the same weights, and "
                             "write OUT/speed.csv, speed.md and OUT/figures/speed_*.png.",
                 epilog="example:\n  ffnbench compare --no-scaling --datasets white "
                        "--out build/speed")
    p.add_argument("--backends", default=None,
                   help=f"comma-separated, of {', '.join(BACKENDS)} (default: all that can "
                        "run here; those that cannot are named on stderr)")
    p.add_argument("--hidden", action="append",
                   help="an architecture, e.g. 50,30,20,10,5; repeat the option for several "
                        "(default: " + " / ".join(",".join(map(str, h)) for h in NETS) + ")")
    p.add_argument("--datasets", default="red,white", help="comma-separated (default %(default)s)")
    p.add_argument("--batch-sizes", default="1,256",
                   help="comma-separated; 1 = per-sample SGD, 'full' allowed (default %(default)s)")
    p.add_argument("--dtypes", default=DTYPES[0], help=f"comma-separated, of {', '.join(DTYPES)}: "
                   f"each compared on its own (float32: {_float32_backends()}); the scaling "
                   "study runs in the first (default %(default)s)")
    p.add_argument("--repeat", type=int, default=5, help="timed epochs per case (default %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for every engine, BLAS and torch (default %(default)s: per core)")
    p.add_argument("--scaling", action=argparse.BooleanOptionalAction, default=True,
                   help="also run the width/depth scaling study (default on)")
    p.add_argument("--out", default="build/compare",
                   help="directory for speed.csv/.md and figures/, made if missing (default "
                        "%(default)s; `make results` writes results/)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")


def _history(sub):
    p = _command(sub, "history", help="draw the asv history (speed and test error per commit)",
                 description="Draw the asv results (speed and test error of every backend "
                             "across commits) as PNG figures; nothing is measured. Record "
                             "results first with asv (see docs/asv.md).",
                 epilog="example:\n  ffnbench history --machine ffnbench-ref-2core "
                        "--out build/figures")
    p.add_argument("--results", default="results/asv", help="asv results directory (default %(default)s)")
    p.add_argument("--out", default="build/figures",
                   help="directory for the PNGs, made if missing (default %(default)s; "
                        "`make figures` writes results/figures/)")
    p.add_argument("--machine", help="whose results to draw, e.g. NAME or NAME1,NAME2, one "
                                     "above the other (default: every machine recorded)")
    p.add_argument("--json", action="store_true",
                   help="print the values drawn (per machine, commit and benchmark) as JSON")
    p.add_argument("--regressions", action="store_true",
                   help="also name the commits where a benchmark stepped, by asv's step "
                        "detection: OUT/regressions.md, printed too (needs asv)")
    p.add_argument("--threshold", type=float, default=0.05,
                   help="smallest relative step named by --regressions (default %(default)s)")
    p.add_argument("--site", metavar="DIR",
                   help="instead of the figures: asv's web page of the results (asv publish) "
                        "into DIR, made to work offline (its CDN scripts replaced by copies "
                        "shipped with ffnbench); serve DIR over http to view it, e.g. "
                        "python -m http.server -d DIR")


def _verify(sub):
    p = _command(sub,
        "verify", help="check freshly computed results against the committed ones",
        description="Compare every CSV and markdown result file present in both directories: "
                    "numbers must agree (to the 6 significant digits written), text must be "
                    "equal, timings are shown side by side but never fail. Rows are matched by "
                    "key, so a partial run is checked against just its rows. Exit status 0: "
                    "everything in common matched; 1: a mismatch (the first cells are named); "
                    "2: bad input.",
        epilog="example:\n  ffnbench table --settings 7,8 --out build/try\n  "
               "ffnbench verify build/try results")
    p.add_argument("new", help="directory of freshly computed results, e.g. build/reproduce")
    p.add_argument("committed", nargs="?", default="results",
                   help="directory of the committed results (default %(default)s)")
    p.add_argument("--timings", action="store_true",
                   help="list every timing cell side by side (default: a median ratio per column)")
    p.add_argument("--strict", action="store_true",
                   help="a full rerun: every committed row of a CSV in common must be here too "
                        "(make reproduce uses it)")
    p.add_argument("--expect", metavar="FILES",
                   help="comma-separated result files (paths under NEW) that must exist, e.g. "
                        "table.csv,runs.csv")
    p.add_argument("--json", action="store_true",
                   help="print the verdicts as one JSON object instead of lines")


def _bound(sub):
    p = _command(sub, "bound", help="measure the per-sample SGD bound on this machine",
                 description="Measure the per-sample SGD bound of every speed net on this "
                             "machine (the work per sample at the rates one core reaches on "
                             "long rows, and the activations, docs/speed.md), the short-row "
                             "micro-benchmarks, every backend's per-sample time against the "
                             "bound and numpy's call floor; write OUT/bound.csv, "
                             "bound_rows.csv, bound_backends.csv, numpy_calls.csv and "
                             "bound.md. Needs numba.",
                 epilog="example:\n  ffnbench bound --out build/bound")
    p.add_argument("--out", default="build/bound",
                   help="directory for bound.csv, bound_rows.csv and bound.md, made if missing")
    p.add_argument("--inputs", type=int, default=11, help="input features of the nets")
    p.add_argument("--repeat", type=int, default=3,
                   help="timed epochs per backend and net, after one untimed (default %(default)s)")


def build_parser():
    from . import parser_studies  # the studies' commands, built with this module's helpers
    parser = Parser(prog="ffnbench", description=DESCRIPTION, epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                metavar="COMMAND")
    p = _command(sub, "train", help="train one network with one backend",
                 description="Train one network with one backend on one wine dataset "
                             "(70/15/15 split, early stopping on the validation part) "
                             "and print its test metrics and timing.",
                 epilog="example:\n  ffnbench train --backend numba --dataset red "
                        "--hidden 50,30,20,10,5 --activation tanh --seeds 5")
    _add_train_options(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--seeds", type=int, default=1,
                   help="train with seeds --seed, --seed+1, ... and summarise the test metrics "
                        "(mean ± sd over the runs that did not diverge)")
    p.add_argument("--save-weights", metavar="FILE.npz",
                   help="save the final weights (W1, b1, W2, ... as float64)")
    for add in (_table, _sweep, _compare, _bound, _history, _verify, *parser_studies.COMMANDS):
        add(sub)
    return parser


