"""The `ffnbench` command line."""
import argparse
import errno
import os
import signal
import sys
import textwrap
import warnings
from dataclasses import fields

try:  # the heavy imports (numpy, pandas, the commands): Ctrl-C here is one line too
    import numpy as np

    from impls import ACTIVATIONS, BACKENDS, LOSSES, OPTIMIZERS, declarations

    from . import __version__, compare, harness, history, sweep, verify
    from . import table as table_cmd
    from .config import DATASETS, DEVICES, INITS, SCALINGS, SPLITS, STOPS, TASK_LOSSES, TrainConfig
    from .errors import UserError
    from .fileio import atomic_write, check_writable_dir, to_json
except KeyboardInterrupt:
    print("ffnbench: interrupted", file=sys.stderr)
    sys.exit(130)


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
               "NumPy, Numba and PyTorch on the UCI wine data; same weights, how fast.")
EXAMPLES = """examples:
  ffnbench train --backend numba --dataset red       train one network, print its test error
  ffnbench table --settings 7,8 --out build/try      reproduce two rows of the published table
  ffnbench verify build/try results                  check them against the committed results
  ffnbench compare --no-scaling                      time every backend on the same work
  ffnbench history                                   draw the asv history (results/asv)
'ffnbench COMMAND --help' describes each command."""


def _or(names):
    return " | ".join(names)


def _add_train_options(p):
    d = TrainConfig()
    p.add_argument("--backend", default=d.backend, help=f"{_or(BACKENDS)} (default %(default)s)")
    p.add_argument("--dataset", default=d.dataset,
                   help=f"{_or(DATASETS)} (default %(default)s)")
    p.add_argument("--hidden", default=",".join(map(str, d.hidden)),
                   help="hidden layer sizes, comma-separated (default %(default)s)")
    p.add_argument("--activation", default=d.activation, help=f"{_or(ACTIVATIONS)} (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default %(default)s)")
    p.add_argument("--l2", type=float, default=d.l2, help="L2 penalty on weights (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="split, initial weights and order (default %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="maximum epochs (default %(default)s)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="stop after this many epochs without a better validation MSE (log-loss for "
                        "classification) and restore the best weights; 0 = train exactly "
                        "--epochs (default %(default)s)")
    p.add_argument("--init", default=d.init,
                   help=f"{_or(INITS)} (auto: Glorot for sigmoid/tanh, He for relu)")
    p.add_argument("--scaling", default=d.scaling, help=f"{_or(SCALINGS)} (default %(default)s)")
    p.add_argument("--device", default=d.device, help=f"{_or(DEVICES)} (default %(default)s); "
                   + "; ".join(f"{dev}: {', '.join(n for n, dec in declarations().items() if dev in dec.devices)}"
                               for dev in DEVICES if dev != "cpu"))
    p.add_argument("--loss", default=None,
                   help=" | ".join(f"{k} ({v} output)" for k, v in LOSSES.items()) + "; default per task: "
                        + ", ".join(f"{t} {ls[0]}" for t, ls in TASK_LOSSES.items()))
    p.add_argument("--optimizer", default=d.optimizer, help=f"{_or(OPTIMIZERS)} (default %(default)s)")
    p.add_argument("--batch-size", default=str(d.batch_size),
                   help="samples per update, or 'full' for full-batch gradient descent; "
                        "1 = per-sample SGD as published (default %(default)s)")
    p.add_argument("--beta1", type=float, default=d.beta1, help="Adam (default %(default)s)")
    p.add_argument("--beta2", type=float, default=d.beta2, help="Adam (default %(default)s)")
    p.add_argument("--eps", type=float, default=d.eps, help="Adam (default %(default)s)")
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
    p.add_argument("--stop", default=pick(d.stop), help=f"{_or(STOPS)}: first-rise stops at the "
                   "first epoch whose validation error is not lower than the one before and keeps "
                   f"its weights; --epochs stays a cap (default {default})")
    p.add_argument("--split", default=pick(d.split), help=f"{_or(SPLITS)}: grouped keeps all copies "
                   "of an identical wine (inputs and quality) in one part (default random)")
    p.add_argument("--input-activation", action="store_true", default=pick(d.input_activation),
                   help="apply the hidden activation to the input too: a(0) = f(x)")
    p.add_argument("--grad-bug", action="store_true", default=pick(d.grad_bug),
                   help="weight gradient from the layer input before its activation (x, z), "
                        "as the printed code has it")
    p.add_argument("--relu-grad0", type=float, default=pick(d.relu_grad0),
                   help=f"relu'(0): 0 (autograd) or 1 (the printed code) (default {default})")


def _config(args):
    # every train option's dest is the TrainConfig field of the same name
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


def _scores(r):
    if r["task"] == "regression":
        return (f"  test MSE {r['test_mse']:.4f}  RMSE {r['test_rmse']:.4f}  MAE {r['test_mae']:.4f}"
                f"  acc@0.5 {r['test_acc_0_5']:.1%}  acc@1.0 {r['test_acc_1_0']:.1%}\n"
                f"  train MSE {r['train_mse']:.4f}  val MSE {r['val_mse']:.4f}")
    return (f"  test accuracy {r['test_accuracy']:.2%}  log-loss {r['test_log_loss']:.4f}"
            f"  (classes {', '.join(map(str, r['classes']))})\n"
            f"  confusion (rows true, columns predicted): {r['test_confusion']}")


def _summary(r):
    c = r["config"]
    head = (f"{r['backend']} on {r['dataset']}: hidden {c['hidden']}, {c['activation']}, "
            f"{c['loss']} loss, {c['optimizer']} batch {c['batch_size']}, lr {c['lr']}, "
            f"l2 {c['l2']}, seed {c['seed']} (device {r['device']})")
    if r["diverged"]:
        body = f"  DIVERGED (NaN/inf) in epoch {r['diverged_epoch']}"
    else:
        body = f"  {r['epochs_run']} epochs, best at epoch {r['best_epoch']}\n" + _scores(r)
    timing = (f"  {1e3 * r['seconds_per_epoch']:.2f} ms/epoch (median), "
              f"warm-up {r['warmup_seconds']:.2f} s")
    return "\n".join((head, body, timing))


def _seeds_text(results, summary):
    lines = [_summary(r) for r in results]
    lines.append(f"over {len(results)} seeds {summary['seeds']} ({summary['diverged']} diverged):")
    for key, m in summary["metrics"].items():
        lines.append(f"  {key:>14}: " + ("n/a (all diverged)" if m is None else
                     f"{m['mean']:.4f} ± {m['sd']:.4f} (min {m['min']:.4f}, max {m['max']:.4f})"))
    return "\n".join(lines)


def cmd_train(args):
    config = _config(args)
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    if args.seeds > 1:
        if args.save_weights is not None:
            raise UserError("--save-weights saves one run: use it without --seeds")
        results = harness.train_seeds(config, args.seeds)
        summary = harness.seed_summary(results)
        print(to_json({"runs": results, "summary": summary}) if args.json
              else _seeds_text(results, summary))
        return
    if args.save_weights is not None:
        check_writable_dir(args.save_weights, "--save-weights")
    result, weights = harness.train(config)
    failed = None
    if args.save_weights is not None:
        arrays = {f"{k}{l + 1}": a for l, wb in enumerate(weights) for k, a in zip("Wb", wb)}
        try:
            with atomic_write(args.save_weights, "wb") as f:
                np.savez(f, **arrays)
        except UserError as e:  # the run is done: print it, then report the failed write
            failed = e
    print(to_json(result) if args.json else _summary(result))
    if failed:
        raise UserError(f"--save-weights {failed}; the result above is complete")


def build_parser():
    parser = Parser(prog="ffnbench", description=DESCRIPTION, epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                metavar="COMMAND")
    p = sub.add_parser("train", help="train one network with one backend",
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
    p.set_defaults(func=cmd_train)
    add_quirk_options(table_cmd.add_parser(sub))
    sweep.add_parser(sub)
    compare.add_parser(sub)
    history.add_parser(sub)
    verify.add_parser(sub)
    return parser


_WARNED = set()


def _warning_line(message, category, *_args, **_kw):
    """Each warning once, as one line (the same warning may come from several call sites)."""
    if str(message) not in _WARNED:
        _WARNED.add(str(message))
        print(f"ffnbench: warning: {message}", file=sys.stderr)


class Terminated(KeyboardInterrupt):
    """SIGTERM: unwinds like Ctrl-C, so workers and their semaphores are cleaned up."""


def _terminate(signum, frame):
    raise Terminated()


_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT, errno.EBADF}


def _quiet_stdout():
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a file (tests) or closed
        pass


def main(argv=None):
    as_command = argv is None  # the console script, not a call from Python (tests)
    argv = sys.argv[1:] if argv is None else argv
    if not argv:  # a bare call: what the command can do, not one error line
        build_parser().print_help(sys.stderr)
        return 2
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # usage errors (one line, see Parser) and --help
            return e.code
        warnings.showwarning = _warning_line
        _WARNED.clear()  # once per command
        if sys.stdout is None:  # `>&-`: Python would drop every line printed, silently
            print("ffnbench: error: standard output is closed", file=sys.stderr)
            return 1
        if as_command and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # the command
            signal.signal(signal.SIGTERM, _terminate)
        try:
            code = args.func(args)
            sys.stdout.flush()  # a write error on stdout shows here, not at exit
        except UserError as e:
            print(f"ffnbench: error: {e}", file=sys.stderr)
            return 2
    except Terminated:
        print("ffnbench: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("ffnbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `ffnbench ... | head`: the reader has gone; end quietly
        _quiet_stdout()
        return 141
    except OSError as e:  # files are UserErrors (fileio, data): this is stdout failing
        if e.filename is not None or e.errno not in _OUTPUT_ERRNOS:
            raise
        _quiet_stdout()
        print(f"ffnbench: error: cannot write the output ({e.strerror})", file=sys.stderr)
        return 1
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
