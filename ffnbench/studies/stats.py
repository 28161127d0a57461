"""The statistics every comparison in the results states: a paired difference over seeds
with its t confidence interval and p-value, Holm's correction of a family of p-values, and
the prediction interval of one more seed's result (what a single published run is judged
against)."""
import numpy as np
from scipy import stats

LEVEL = 0.95  # confidence and prediction intervals
ALPHA = 0.05  # level of the corrected tests


def paired(diff, level=LEVEL):
    """Per-seed differences (NaN dropped) -> {diff: mean, diff_sd, ci_low, ci_high, p}: the
    two-sided one-sample t-test of mean 0 (= the paired t-test) and its `level` interval.
    One pair: the difference only; no spread: the sign decides (p 0 or 1, a zero-width CI)."""
    d = np.asarray(diff, dtype=float)
    d = d[~np.isnan(d)]
    out = dict.fromkeys(("diff", "diff_sd", "ci_low", "ci_high", "p"), np.nan)
    if len(d) == 0:
        return out
    mean = float(d.mean())
    out["diff"] = mean
    if len(d) < 2:
        return out
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(abs(mean), 1e-300):
        return {**out, "diff_sd": 0.0, "ci_low": mean, "ci_high": mean,
                "p": 1.0 if mean == 0 else 0.0}
    test = stats.ttest_1samp(d, 0.0)
    ci = test.confidence_interval(level)
    return {**out, "diff_sd": sd, "ci_low": float(ci.low), "ci_high": float(ci.high),
            "p": float(test.pvalue)}


def holm(p):
    """Holm's step-down adjustment of the p-values of one family (NaN: not in the family):
    reject the adjusted p below alpha and the family-wise error rate is at most alpha."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def prediction_interval(values, level=LEVEL):
    """(low, high): where one more seed's value falls with probability `level`, for values
    from a normal distribution: mean ± t(n-1) sd sqrt(1 + 1/n). NaN below two values."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) < 2:
        return np.nan, np.nan
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) * np.sqrt(1 + 1 / len(v))
    return float(v.mean() - half), float(v.mean() + half)


def welch(mean_a, sd_a, n_a, mean_b, sd_b, n_b, level=LEVEL):
    """(b - a, ci_low, ci_high, p) of two independent samples given by their summaries:
    Welch's t-test (unequal variances) and its `level` interval."""
    test = stats.ttest_ind_from_stats(mean_b, sd_b, n_b, mean_a, sd_a, n_a, equal_var=False)
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    half = stats.t.ppf(0.5 + level / 2, df) * np.sqrt(va + vb)
    diff = mean_b - mean_a
    return float(diff), float(diff - half), float(diff + half), float(test.pvalue)
