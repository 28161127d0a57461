"""`ffnbench train`: one network, one backend, one or several seeds."""
from dataclasses import fields

import numpy as np

from ..core import harness
from ..core.config import TrainConfig
from ..core.errors import UserError
from ..core.fileio import atomic_write, check_writable_dir, to_json
from ..report import train as report


def main(args):
    # every train option's dest is the TrainConfig field of the same name
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1, got {args.seeds}")
    if args.seeds > 1:
        if args.save_weights is not None:
            raise UserError("--save-weights saves one run: use it without --seeds")
        results = harness.train_seeds(config, args.seeds)
        summary = harness.seed_summary(results)
        print(to_json({"runs": results, "summary": summary}) if args.json
              else report.seeds_text(results, summary))
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
    print(to_json(result) if args.json else report.summary(result))
    if failed:
        raise UserError(f"--save-weights {failed}; the result above is complete")
