"""The shared harness: determinism, split, scaling, initial weights, early stopping, divergence."""
import numpy as np
import pytest

from ffnbench.core import data, harness
from ffnbench.core.config import TrainConfig

from conftest import BACKENDS, subset


def _without_timing(result):
    return {k: v for k, v in result.items() if k not in harness.TIMING_KEYS}


def test_same_seed_gives_identical_numbers():
    cfg = TrainConfig(backend="numba", dataset="red", hidden=(10,), epochs=5, patience=2, seed=7)
    a, b = harness.train(cfg)[0], harness.train(cfg)[0]
    assert _without_timing(a) == _without_timing(b)


def test_different_seeds_give_different_splits_weights_and_orders():
    s0, s1 = data.split(1599, 0), data.split(1599, 1)
    assert not np.array_equal(s0[0], s1[0])
    p0 = harness.init_params((11, 10, 1), "tanh", "auto", 0)
    p1 = harness.init_params((11, 10, 1), "tanh", "auto", 1)
    assert not np.array_equal(p0[0][0], p1[0][0])
    assert not np.array_equal(next(harness.epoch_orders(0, 50)), next(harness.epoch_orders(1, 50)))


@pytest.mark.parametrize("n", [1599, 4898, 10])
def test_split_sizes_and_disjointness(n):
    train, val, test = data.split(n, 0)
    assert (len(train), len(val)) == (int(0.7 * n), int(0.15 * n))
    assert len(test) == n - int(0.7 * n) - int(0.15 * n)
    assert sorted(np.concatenate([train, val, test])) == list(range(n))


def test_scaling_is_fitted_on_the_training_part_only():
    for kind in ("standard", "minmax"):
        p = harness.prepare(TrainConfig(dataset="white", scaling=kind))
        Xtr = p.X["train"]
        if kind == "standard":
            assert np.allclose(Xtr.mean(0), 0, atol=1e-9) and np.allclose(Xtr.std(0), 1)
            assert not np.allclose(p.X["test"].mean(0), 0, atol=1e-3)
        else:
            assert np.allclose(Xtr.min(0), 0) and np.allclose(Xtr.max(0), 1)
    raw = harness.prepare(TrainConfig(dataset="red", scaling="none"))
    X, _, _ = data.load("red")
    assert np.array_equal(raw.X["train"], X[data.split(len(X), 0)[0]])


def test_initialisations():
    sizes = (11, 50, 30, 1)
    uni = harness.init_params(sizes, "tanh", "uniform01", 0)
    assert all(0 <= W.min() and W.max() < 1 and 0 <= b.min() and b.max() < 1 for W, b in uni)
    for act, lim in (("tanh", lambda fi, fo: np.sqrt(6 / (fi + fo))), ("relu", lambda fi, fo: np.sqrt(6 / fi))):
        for W, b in harness.init_params(sizes, act, "auto", 0):
            fo, fi = W.shape
            assert np.abs(W).max() <= lim(fi, fo) and np.abs(W).max() > 0.8 * lim(fi, fo)
            assert not b.any()
    # the split does not depend on the initialisation: same seed, different init, same data
    a = harness.prepare(TrainConfig(init="glorot", seed=4))
    b = harness.prepare(TrainConfig(init="uniform01", seed=4))
    assert np.array_equal(a.X["test"], b.X["test"])


def test_early_stopping_restores_the_best_weights():
    cfg = TrainConfig(backend="numba", dataset="red", hidden=(30,), activation="tanh", lr=0.02,
                      l2=0.0, epochs=200, patience=3, seed=0)
    r = harness.train(cfg)[0]
    assert r["epochs_run"] < 200 and r["epochs_run"] - r["best_epoch"] == 3
    assert r["val_mse"] == pytest.approx(min(r["val_mse_history"]), rel=1e-12)
    assert r["val_mse_history"][r["best_epoch"] - 1] == min(r["val_mse_history"])


def test_patience_zero_trains_exactly_n_epochs():
    r = harness.train(TrainConfig(backend="numba", hidden=(5,), epochs=4, patience=0))[0]
    assert r["epochs_run"] == 4 and len(r["val_mse_history"]) == 4
    assert r["val_mse"] == pytest.approx(r["val_mse_history"][-1], rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_is_recorded_not_raised(backend):
    cfg = TrainConfig(backend=backend, dataset="red", hidden=(20, 20), activation="tanh",
                      lr=0.5, l2=0.0, epochs=5, patience=0)
    prepared = subset(harness.prepare(cfg), 200)
    r = harness.train(cfg, prepared)[0]
    assert r["diverged"] is True and r["diverged_epoch"] == 1
    assert r["test_mse"] is None and r["metrics"]["test"]["mae"] is None


def test_metrics_on_a_hand_checked_case():
    m = harness.regression_metrics(np.array([5.0, 6.0, 7.5]), np.array([5.0, 5.4, 6.0]))
    assert m["mse"] == pytest.approx((0 + 0.36 + 2.25) / 3)
    assert m["mae"] == pytest.approx((0 + 0.6 + 1.5) / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(m["mse"]))
    assert (m["acc_0_5"], m["acc_1_0"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))


def test_stratified_split_keeps_class_shares():
    X, labels, classes = data.load_task("white-quality-class")
    assert classes == (3, 4, 5, 6, 7, 8, 9) and len(labels) == 4898
    train, val, test = data.split(len(labels), 0, labels)
    assert sorted(np.concatenate([train, val, test])) == list(range(len(labels)))
    for c in range(len(classes)):
        n_c = np.sum(labels == c)
        assert np.sum(labels[train] == c) == int(0.7 * n_c)
        assert np.sum(labels[val] == c) == int(0.15 * n_c)


def test_color_dataset_is_both_files():
    X, labels, classes = data.load_task("color")
    assert classes == ("red", "white") and X.shape == (6497, 11)
    assert np.sum(labels == 0) == 1599 and np.sum(labels == 1) == 4898


def test_classification_metrics_by_hand():
    P = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.25, 0.25]])
    Y = np.eye(3)[[0, 1, 1]]
    m = harness.classification_metrics(P, Y)
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["log_loss"] == pytest.approx(-(np.log(0.7) + np.log(0.8) + np.log(0.25)) / 3)
    assert m["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]
    b = harness.classification_metrics(np.array([[0.9], [0.4]]), np.array([[1.0], [1.0]]))
    assert b["accuracy"] == 0.5 and b["confusion"] == [[0, 0], [1, 1]]
    assert b["log_loss"] == pytest.approx(-(np.log(0.9) + np.log(0.4)) / 2)


def test_full_batch_is_one_update_per_epoch():
    """Full-batch GD: the epoch's result does not depend on the sample order."""
    cfg = TrainConfig(backend="numpy", hidden=(5,), batch_size="full", epochs=1, patience=0)
    p = harness.prepare(cfg)
    from ffnbench import impls
    backend = impls.load("numpy")
    a, b = (backend.from_numpy(p.params, cfg.hp) for _ in range(2))
    n = len(p.X["train"])
    backend.train_epoch(a, p.X["train"], p.Y["train"], np.arange(n))
    backend.train_epoch(b, p.X["train"], p.Y["train"], np.arange(n)[::-1])
    assert all(np.allclose(Wa, Wb, atol=1e-14) for (Wa, _), (Wb, _) in
               zip(backend.to_numpy(a), backend.to_numpy(b)))


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    import os
    from ffnbench.core.fileio import atomic_write
    target = tmp_path / "result.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write("half of the new")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["result.csv"]
    with atomic_write(target) as f:
        f.write("new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o644 == 0o644  # readable like any file, not mkstemp's 0600
