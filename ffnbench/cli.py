"""The `ffnbench` command line."""
import argparse
import json
import sys
import warnings
from dataclasses import fields

import numpy as np

from impls import ACTIVATIONS, BACKENDS, LOSSES, OPTIMIZERS

from . import compare, harness, history, sweep
from . import table as table_cmd
from .config import DATASETS, DEVICES, INITS, SCALINGS, TASK_LOSSES, TrainConfig
from .errors import UserError
from .fileio import atomic_write, check_writable_dir


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line, without the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


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
    p.add_argument("--device", default=d.device, help=f"{_or(DEVICES)}, torch backend only (default %(default)s)")
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
    p.add_argument("--data-dir", default=None, help="read the wine CSVs from this directory instead")
    p.add_argument("--allow-unverified", action="store_true",
                   help="accept CSVs whose sha256 differs from the UCI files (still validated)")


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
        if args.save_weights:
            raise UserError("--save-weights saves one run: use it without --seeds")
        results = harness.train_seeds(config, args.seeds)
        summary = harness.seed_summary(results)
        print(json.dumps({"runs": results, "summary": summary}, indent=2) if args.json
              else _seeds_text(results, summary))
        return
    if args.save_weights:
        check_writable_dir(args.save_weights)
    result, weights = harness.train(config)
    if args.save_weights:
        arrays = {f"{k}{l + 1}": a for l, wb in enumerate(weights) for k, a in zip("Wb", wb)}
        with atomic_write(args.save_weights, "wb") as f:
            np.savez(f, **arrays)
    print(json.dumps(result, indent=2) if args.json else _summary(result))


def build_parser():
    parser = Parser(prog="ffnbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    p = sub.add_parser("train", help="train one network with one backend")
    _add_train_options(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--seeds", type=int, default=1,
                   help="train with seeds --seed, --seed+1, ... and summarise the test metrics "
                        "(mean ± sd over the runs that did not diverge)")
    p.add_argument("--save-weights", metavar="FILE.npz",
                   help="save the final weights (W1, b1, W2, ... as float64)")
    p.set_defaults(func=cmd_train)
    table_cmd.add_parser(sub)
    sweep.add_parser(sub)
    compare.add_parser(sub)
    history.add_parser(sub)
    return parser


def _warning_line(message, category, *_args, **_kw):
    print(f"ffnbench: warning: {message}", file=sys.stderr)


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # usage errors (one line, see Parser) and --help
        return e.code
    warnings.showwarning = _warning_line
    try:
        args.func(args)
    except UserError as e:
        print(f"ffnbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ffnbench: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
