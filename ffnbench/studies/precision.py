"""float32 beside float64 on the table's settings: every run of a table Spec trained once in
each precision on the same split, initial weights and sample order, and the paired
difference of their test MSE.

The margin (core.config.PRECISION_MARGIN) says what "the same test error" means here: 0.001
of test MSE, 0.1 to 0.25 % of the table's test errors (0.43 to 0.80 under `modern` and
`minmax-uniform`) and under a thirtieth of their spread over seeds (sd 0.033 to 0.14): far
below what the table's intervals resolve. A setting is "within" when the simultaneous 95 %
interval of its mean difference lies inside ±the margin (Bonferroni over the rows of one
comparison, so all of them hold together).
"""
from dataclasses import replace

import numpy as np
import pandas as pd

from ..core.config import PRECISION_MARGIN
from . import stats

KEY = ["protocol", "setting", "dataset", "seed"]
# what each precision contributes per run (the predictions' sd tells a collapsed run)
RUN_COLUMNS = ["test_mse", "diverged", "best_epoch", "test_prediction_sd"]
COLUMNS = ["protocol", "dataset", "setting", "hidden", "activation", "lr", "l2", "n_seeds",
           "n_paired", "diverged_float64_only", "diverged_float32_only", "diverged_both",
           "test_mse_float64_mean", "diff", "diff_sd", "ci_low", "ci_high", "max_abs_diff",
           "share_within", "same_best_epoch", "within"]


def specs(spec):
    """(float64 spec, float32 spec): the same runs in each precision."""
    base = tuple((k, v) for k, v in spec.overrides if k != "dtype")
    return replace(spec, overrides=base), replace(spec, overrides=(*base, ("dtype", "float32")))


def pair(runs64, runs32):
    """One row per run of KEY: RUN_COLUMNS of each precision side by side (_float64, _float32)."""
    a, b = (df[KEY + RUN_COLUMNS] for df in (runs64, runs32))
    paired = a.merge(b, on=KEY, suffixes=("_float64", "_float32"), validate="one_to_one")
    if len(paired) != len(a) or len(paired) != len(b):
        raise ValueError(f"the two precisions' runs do not pair up ({len(a)}, {len(b)}, {len(paired)} paired)")
    return paired


def summarise(paired, settings, delta=PRECISION_MARGIN, level=stats.LEVEL):
    """precision.csv: per protocol x dataset x setting, the paired test-MSE difference
    float32 - float64 over the seeds where both finished, its simultaneous `level` interval,
    the largest single difference, the share of pairs within ±delta, how often early
    stopping kept the same epoch, and the divergences of each precision alone.
    settings: number -> studies.table.Setting."""
    groups = paired.groupby(["protocol", "dataset", "setting"], sort=False)
    simultaneous = 1 - (1 - level) / max(groups.ngroups, 1)  # Bonferroni over the rows
    rows = []
    for (protocol, dataset, number), g in groups:
        d64, d32 = g["diverged_float64"].astype(bool), g["diverged_float32"].astype(bool)
        both = g[~d64 & ~d32]
        diff = (both["test_mse_float32"] - both["test_mse_float64"]).to_numpy()
        st = stats.paired(diff, level=simultaneous)
        s = settings[number]
        rows.append({
            "protocol": protocol, "dataset": dataset, "setting": number,
            "hidden": ",".join(map(str, s.hidden)), "activation": s.activation, "lr": s.lr,
            "l2": s.l2, "n_seeds": len(g), "n_paired": len(both),
            "diverged_float64_only": int((d64 & ~d32).sum()),
            "diverged_float32_only": int((d32 & ~d64).sum()), "diverged_both": int((d64 & d32).sum()),
            "test_mse_float64_mean": both["test_mse_float64"].mean(), **st,
            "max_abs_diff": float(np.abs(diff).max()) if len(diff) else np.nan,
            "share_within": float(np.mean(np.abs(diff) <= delta)) if len(diff) else np.nan,
            "same_best_epoch": float((both["best_epoch_float64"] == both["best_epoch_float32"]).mean())
            if len(both) else np.nan,
            "within": bool(-delta <= st["ci_low"] and st["ci_high"] <= delta),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def diverged_alone(paired):
    """{precision: (runs that diverged in it alone, the largest sd of the other precision's
    test predictions over those runs)}: a twin that predicts a constant had collapsed."""
    out = {}
    for mine, other in (("float32", "float64"), ("float64", "float32")):
        alone = paired[paired[f"diverged_{mine}"].astype(bool) & ~paired[f"diverged_{other}"].astype(bool)]
        out[mine] = (len(alone), alone[f"test_prediction_sd_{other}"].max() if len(alone) else np.nan)
    return out
