"""Everything that is not the maths: data, split, scaling, initial weights, sample order,
early stopping, divergence, evaluation and timing — done once, for every backend alike."""
import time
from dataclasses import dataclass, replace

import numpy as np

from .. import impls

from .. import __version__
from . import data, memory
from .errors import UserError

INIT_STREAM, ORDER_STREAM = 1, 2  # see data.SPLIT_STREAM
AUTO_INIT = {"sigmoid": "glorot", "tanh": "glorot", "relu": "he"}


def _glorot(rng, fan_in, fan_out):
    lim = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, (fan_out, fan_in)), np.zeros(fan_out)


def _he(rng, fan_in, fan_out):
    lim = np.sqrt(6.0 / fan_in)  # He-uniform: variance 2 / fan_in
    return rng.uniform(-lim, lim, (fan_out, fan_in)), np.zeros(fan_out)


def _uniform01(rng, fan_in, fan_out):  # the published code's choice, biases included
    return rng.random((fan_out, fan_in)), rng.random(fan_out)


INITS = {"glorot": _glorot, "he": _he, "uniform01": _uniform01}


def init_params(sizes, activation, init, seed):
    """Canonical initial weights [(W (fan_out, fan_in), b (fan_out,)), ...] from the seed."""
    rng = np.random.default_rng([seed, INIT_STREAM])
    draw = INITS[AUTO_INIT[activation] if init == "auto" else init]
    return [draw(rng, fan_in, fan_out) for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]


def epoch_orders(seed, n):
    """The sample order of epoch 1, 2, ...: the same for every backend."""
    rng = np.random.default_rng([seed, ORDER_STREAM])
    while True:
        yield rng.permutation(n)


@dataclass
class Prepared:
    """A run's scaled data parts (X (m, 11), Y (m, n_out)) and its initial weights."""

    X: dict
    Y: dict
    params: list
    classes: tuple | None = None  # class names, for classification datasets


def _targets(target, loss, n_classes):
    """Targets as the backends see them: (m, 1) values or 0/1 labels, or (m, K) one-hot."""
    if loss == "ce":
        return np.eye(n_classes)[target]
    return target.reshape(-1, 1).astype(np.float64)


def prepare(config):
    X, target, classes = data.load_task(config.dataset, config.data_dir, config.allow_unverified)
    labels = None if classes is None else target
    groups = data.duplicate_groups(X, target) if config.split == "grouped" else None
    parts = dict(zip(("train", "val", "test"), data.split(len(target), config.seed, labels, groups)))
    Xs = {k: np.ascontiguousarray(data.scale(config.scaling, X[parts["train"]], X[idx]))
          for k, idx in parts.items()}
    Ys = {k: _targets(target[idx], config.loss, len(classes or ())) for k, idx in parts.items()}
    sizes = (X.shape[1], *config.hidden, Ys["train"].shape[1])
    memory.check(config, sizes, {k: len(idx) for k, idx in parts.items()})  # before allocating
    return Prepared(Xs, Ys, init_params(sizes, config.activation, config.init, config.seed), classes)


def regression_metrics(yhat, y):
    """MSE, RMSE, MAE and the share of |yhat - y| <= T for T = 0.5, 1.0 (Cortez et al.)."""
    e = np.abs(np.ravel(yhat) - np.ravel(y))
    mse = float(np.mean(e * e))
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(e)),
            "acc_0_5": float(np.mean(e <= 0.5)), "acc_1_0": float(np.mean(e <= 1.0))}


def classification_metrics(P, Y):
    """Accuracy, log-loss (clipped logs) and confusion matrix (rows true, columns predicted)
    from predicted probabilities P and targets Y, both (m, 1) for bce or (m, K) for ce."""
    P = np.clip(P, 1e-15, 1 - 1e-15)
    if Y.shape[1] == 1:  # binary: P is the probability of class 1
        true, pred = Y[:, 0].astype(int), (P[:, 0] >= 0.5).astype(int)
        log_loss = -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P))
        K = 2
    else:
        true, pred = Y.argmax(axis=1), P.argmax(axis=1)
        log_loss = -np.mean(np.log(P[np.arange(len(Y)), true]))
        K = Y.shape[1]
    confusion = np.zeros((K, K), dtype=int)
    np.add.at(confusion, (true, pred), 1)
    return {"accuracy": float(np.mean(true == pred)), "log_loss": float(log_loss),
            "confusion": confusion.tolist()}


METRICS = {"regression": (regression_metrics, "mse"),  # task -> (metrics, early-stopping
           "binary": (classification_metrics, "log_loss"),  # criterion on validation)
           "multiclass": (classification_metrics, "log_loss")}


def _finite(params):
    return all(np.isfinite(W).all() and np.isfinite(b).all() for W, b in params)


def load_backend(config):
    """The backend module of a (validated) config; UserError if it cannot run here."""
    try:
        return impls.load(config.backend)
    except impls.BackendUnavailable as e:
        raise UserError(str(e)) from None


def training_data(X, Y, dtype):
    """X, Y as a run trains on them: cast once to its dtype (as they are for float64), so no
    backend converts them in its timed epochs."""
    return X.astype(dtype, copy=False), Y.astype(dtype, copy=False)


def timed_epoch(backend, state, X, Y, order):
    """Seconds of one training epoch, the device's queued work included."""
    t0 = time.perf_counter()
    backend.train_epoch(state, X, Y, order)
    backend.synchronize(state)
    return time.perf_counter() - t0


def warm_up(backend, params, hp, X, Y, device):
    """Seconds to compile/initialise, kept out of the epoch timings: an epoch over two
    samples of the full X and Y, so a compiling engine (JAX) sees the shapes it will time."""
    t0 = time.perf_counter()
    state = backend.from_numpy(params, hp, device)
    backend.train_epoch(state, X, Y, np.arange(min(2, len(X)), dtype=np.int64))
    backend.predict(state, X[:2])
    backend.synchronize(state)
    return time.perf_counter() - t0


def flat_metrics(task, metrics):
    """The headline numbers as top-level keys, e.g. test_mse or test_accuracy."""
    if task == "regression":
        return {**{f"{k}_mse": metrics[k]["mse"] for k in ("train", "val", "test")},
                **{f"test_{m}": metrics["test"].get(m) for m in ("rmse", "mae", "acc_0_5", "acc_1_0",
                                                                 "prediction_sd")}}
    return {**{f"{k}_log_loss": metrics[k]["log_loss"] for k in ("train", "val", "test")},
            **{f"{k}_accuracy": metrics[k]["accuracy"] for k in ("train", "val", "test")},
            "test_confusion": metrics["test"]["confusion"]}


def train(config, prepared=None):
    """Train one run; returns (result dict, final weights [(W, b), ...])."""
    backend = load_backend(config)
    p = prepared or prepare(config)
    hp, X, Y = config.hp, p.X, p.Y
    evaluate, criterion = METRICS[config.task]
    best = (np.inf, 0, None)  # (validation criterion, epoch, weights)
    history, seconds, diverged_epoch = [], [], None
    orders = epoch_orders(config.seed, len(X["train"]))
    X_train, Y_train = training_data(X["train"], Y["train"], hp.dtype)
    with np.errstate(all="ignore"):  # overflow is expected in a diverging run
        warmup = warm_up(backend, p.params, hp, X_train, Y_train, config.device)
        state = backend.from_numpy(p.params, hp, config.device)
        for epoch in range(1, config.epochs + 1):
            order = next(orders)
            seconds.append(timed_epoch(backend, state, X_train, Y_train, order))
            weights = backend.to_numpy(state)
            val = evaluate(backend.predict(state, X["val"]), Y["val"])[criterion]
            if not (_finite(weights) and np.isfinite(val)):
                diverged_epoch = epoch
                break
            history.append(val)
            if val < best[0]:
                best = (val, epoch, weights)
            if config.stop == "first-rise":  # the printed code: no patience, no restore
                if len(history) > 1 and val >= history[-2]:
                    break
            elif config.patience and epoch - best[1] >= config.patience:
                break
        if config.stop == "patience" and config.patience and diverged_epoch is None:
            weights = best[2]  # early stopping restores the best weights
            state = backend.from_numpy(weights, hp, config.device)
        if diverged_epoch:  # the run ended in NaN/inf: a result, reported like the published table
            metrics = {k: dict.fromkeys(evaluate(Y[k], Y[k]), None) for k in X}  # same keys
            if config.task == "regression":
                metrics["test"]["prediction_sd"] = None
        else:
            P = {k: backend.predict(state, X[k]) for k in X}
            metrics = {k: evaluate(P[k], Y[k]) for k in X}
            if config.task == "regression":  # a (near-)constant net shows as a tiny spread
                metrics["test"]["prediction_sd"] = float(np.std(P["test"]))
    result = {
        "backend": config.backend, "dataset": config.dataset, "task": config.task,
        "config": config.to_dict(), "classes": p.classes,
        "device": str(state.get("device", config.device)),  # torch may fall back to cpu
        **flat_metrics(config.task, metrics), "metrics": metrics,
        "epochs_run": epoch, "best_epoch": best[1] if history else None,
        "diverged": diverged_epoch is not None, "diverged_epoch": diverged_epoch,
        f"val_{criterion}_history": history,
        "seconds_per_epoch": float(np.median(seconds)), "warmup_seconds": warmup,
        "n_weights": int(sum(W.size + b.size for W, b in p.params)),
        **{f"n_{k}": len(X[k]) for k in X}, "ffnbench_version": __version__,
    }
    return result, weights


TIMING_KEYS = ("seconds_per_epoch", "warmup_seconds")  # the only numbers that vary run to run


HEADLINE = {"regression": ("test_mse", "test_mae", "test_acc_0_5", "test_acc_1_0"),
            "binary": ("test_accuracy", "test_log_loss"),
            "multiclass": ("test_accuracy", "test_log_loss")}


def train_seeds(config, n):
    """Results of n runs with seeds config.seed, ..., config.seed + n - 1."""
    return [train(replace(config, seed=config.seed + k))[0] for k in range(n)]


def seed_summary(results):
    """Mean, sd, min and max of the headline test metrics over the runs that did not diverge."""
    ok = [r for r in results if not r["diverged"]]
    summary = {}
    for key in HEADLINE[results[0]["task"]]:
        v = np.array([r[key] for r in ok], dtype=float)
        summary[key] = ({"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                         "min": float(v.min()), "max": float(v.max())} if len(v) else None)
    return {"seeds": [r["config"]["seed"] for r in results], "diverged": len(results) - len(ok),
            "metrics": summary}
