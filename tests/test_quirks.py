"""The printed article code's maths quirks (ffnbench.impls.HyperParams input_activation, grad_bug,
relu_grad0) on the wine data and on a hand-checked net (ffnbench.impls.checks covers every switch
with every optimiser, loss and activation on synthetic data), and the harness side of the
article protocol: its stopping rule, the grouped split and sample scaling."""
from dataclasses import replace

import numpy as np
import pytest

from ffnbench import impls
from ffnbench.core import harness
from ffnbench.core.config import TrainConfig

from conftest import BACKENDS, max_weight_diff, subset

def _refused(backend, hp):
    """The backends that cannot express the quirks (Declaration.refuses) sit these out."""
    return impls.refusal(backend, hp, 1)


def _run_all(cfg, n_train):
    """Every backend that can express the quirks ends with torch's weights on the same wine
    subset (max |dW| <= 1e-12); the others refuse them (tests/test_backends.py lists which)."""
    prepared = subset(harness.prepare(TrainConfig(**cfg)), n_train)
    ref = harness.train(TrainConfig(backend="torch", **cfg), prepared)[1]
    assert max_weight_diff(ref, prepared.params) > 1e-4  # training really moved them
    hp = TrainConfig(**cfg).hp
    for backend in (b for b in BACKENDS if b != "torch" and not _refused(b, hp)):
        w = harness.train(TrainConfig(backend=backend, **cfg), prepared)[1]
        assert max_weight_diff(w, ref) <= 1e-12, backend


def test_raw_input_with_activation_agrees():
    """The article protocol's data: unscaled inputs through tanh, U[0, 1) weights and biases."""
    _run_all(dict(dataset="white", hidden=(7, 3), activation="tanh", lr=0.001, l2=0.1,
                  init="uniform01", scaling="none", epochs=3, patience=0, seed=1,
                  input_activation=True, grad_bug=True), 150)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_grad_bug_by_hand(backend_name):
    """1-1-1-1 relu net, x = 2, y = 0, W = (0.5, 2, 3), b = (-1, 0, 0.5), relu'(0) = 1:
    z1 = 0.5 * 2 - 1 = 0, a1 = 0, z2 = 2 * 0 + 0 = 0, a2 = 0, yhat = 0.5, delta3 = 2 * 0.5 = 1.
    Buggy weight gradients use the input before its activation: dW3 = delta3 z2 = 0,
    delta2 = W3 delta3 relu'(0) = 3, dW2 = delta2 z1 = 0, delta1 = W2 delta2 relu'(0) = 6,
    dW1 = delta1 x = 12; db = delta = (6, 3, 1). With input activation too, z1 = 0.5 relu(2) - 1
    = 0 still, and dW1 still uses the raw x = 2 (not f(x), which here is also 2).
    With x = -2 and input activation: f(x) = 0, z1 = -1, z2 = 0, yhat = 0.5 again, delta2 = 3,
    dW2 = delta2 z1 = -3 (the true gradient, delta2 a1, is 0), delta1 = W2 delta2 relu'(-1) = 0."""
    params = [(np.array([[0.5]]), np.array([-1.0])), (np.array([[2.0]]), np.array([0.0])),
              (np.array([[3.0]]), np.array([0.5]))]
    hp = impls.HyperParams(activation="relu", lr=0.1, l2=0.0, grad_bug=True, relu_grad0=1.0)
    if _refused(backend_name, hp._replace(input_activation=True)):
        pytest.skip(_refused(backend_name, hp._replace(input_activation=True)))
    backend = impls.load(backend_name)
    g = backend.gradients(backend.from_numpy(params, hp), np.array([[2.0]]), np.array([[0.0]]))
    assert [(gW[0, 0], gb[0]) for gW, gb in g] == [(12.0, 6.0), (0.0, 3.0), (0.0, 1.0)]
    hp = hp._replace(input_activation=True)
    state = backend.from_numpy(params, hp)
    assert backend.predict(state, np.array([[-2.0]]))[0, 0] == 0.5  # relu(-2) = 0 in, z1 = -1
    g = backend.gradients(state, np.array([[-2.0]]), np.array([[0.0]]))
    assert [(gW[0, 0], gb[0]) for gW, gb in g] == [(0.0, 0.0), (-3.0, 3.0), (0.0, 1.0)]
    # the textbook gradient of the same net and sample differs: dW1 = delta1 a0 with relu'(0) = 0
    hp = impls.HyperParams(activation="relu", lr=0.1, l2=0.0)
    g = backend.gradients(backend.from_numpy(params, hp), np.array([[2.0]]), np.array([[0.0]]))
    assert [(gW[0, 0], gb[0]) for gW, gb in g] == [(0.0, 0.0), (0.0, 0.0), (0.0, 1.0)]


# --- the harness side: stopping rule, grouped split, sample scaling ---------------------

def test_first_rise_stops_at_the_first_non_falling_epoch_and_keeps_its_weights():
    cfg = TrainConfig(backend="numpy", dataset="red", hidden=(6,), activation="tanh", lr=0.05,
                      l2=0.0, epochs=60, seed=2, stop="first-rise")
    result, weights = harness.train(cfg)
    h = result["val_mse_history"]
    assert result["epochs_run"] == len(h) < 60  # it stopped before the cap
    assert all(b < a for a, b in zip(h[:-2], h[1:-1])) and h[-1] >= h[-2]
    # no restore: the weights are those after the last epoch, not after the best one
    plain, w_last = harness.train(TrainConfig(**{**cfg.to_dict(), "stop": "patience",
                                                 "patience": 0, "epochs": len(h)}))
    assert max_weight_diff(weights, w_last) == 0.0
    assert result["val_mse"] == pytest.approx(h[-1]) and result["best_epoch"] == len(h) - 1


def test_grouped_split_keeps_every_copy_of_a_wine_in_one_part():
    from ffnbench.core import data
    X, y, _ = data.load("white")
    groups = data.duplicate_groups(X, y)
    assert groups.max() + 1 < len(y)  # the file has duplicates to keep together
    parts = data.split(len(y), 3, groups=groups)
    sets = [set(groups[p]) for p in parts]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sorted(np.concatenate(parts)) == list(range(len(y)))
    for part, share in zip(parts, (0.70, 0.15, 0.15)):
        assert abs(len(part) - share * len(y)) <= 10  # the largest white group has 8 copies
    again = data.split(len(y), 3, groups=groups)
    assert all((a == b).all() for a, b in zip(parts, again))  # seeded
    other = data.split(len(y), 4, groups=groups)
    assert not (parts[2] == other[2][:len(parts[2])]).all()


def test_duplicate_groups_by_hand():
    from ffnbench.core import data
    X = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [3.0, 4.0]])
    g = data.duplicate_groups(X, np.array([5.0, 5.0, 6.0, 5.0]))  # row 2: same inputs, other quality
    assert g[0] == g[1] and len({g[0], g[2], g[3]}) == 3


def test_sample_maxmin_maps_each_row_to_0_1():
    from ffnbench.core import data
    X = np.array([[1.0, 3.0, 2.0], [-4.0, 0.0, 4.0], [7.0, 7.0, 7.0]])
    got = data.scale("sample-maxmin", X[:1], X)
    assert got.tolist() == [[0.0, 1.0, 0.5], [0.0, 0.5, 1.0], [0.0, 0.0, 0.0]]


def test_article_protocol_diverges_where_the_article_printed_nan():
    """Setting #3 (50,30,20,10,5 tanh, lr 0.1) on white under the article protocol: NaN in
    the first epoch, as published (the full check is `ffnbench table --protocol article
    --settings 3 --datasets white --seeds 3`)."""
    from ffnbench.studies import table
    s = table.load_settings()[2]
    spec = table.Spec(protocols=("article",), datasets=("white",), seeds=1, backend="numba")
    result, _ = harness.train(replace(spec.config(s, "white", "article", 0), epochs=3))
    assert result["diverged"] and result["diverged_epoch"] == 1
    textbook = replace(spec.config(s, "white", "article", 0), epochs=1, grad_bug=False,
                       input_activation=False)
    assert not harness.train(textbook)[0]["diverged"]  # the quirks, not the data, blow it up


def test_baselines_fit_on_the_training_part_and_beat_the_mean():
    from ffnbench.studies import baselines
    b = baselines.baseline_runs(("red",), 1)
    assert set(b["setting"]) == {"mean", "least squares", "random forest", "gradient boosting",
                                 "RBF SVR"}
    mean = b[b["setting"] == "mean"].iloc[0]
    assert mean["test_prediction_sd"] < 1e-12  # a constant: collapsed by definition
    for _, r in b[b["setting"] != "mean"].iterrows():
        assert r["val_mse"] < mean["val_mse"] and r["test_mse"] < mean["test_mse"], r["setting"]
    grouped = baselines.baseline_runs(("red",), 1, split="grouped", strong=False)
    assert len(grouped) == 2 and grouped["test_mse"].iloc[0] != mean["test_mse"]


def test_train_command_takes_every_quirk(capsys):
    from ffnbench import cli
    code = cli.main(["train", "--backend", "numpy", "--hidden", "5", "--activation", "relu",
                     "--epochs", "2", "--input-activation", "--grad-bug", "--relu-grad0", "1",
                     "--stop", "first-rise", "--scaling", "sample-maxmin", "--split", "grouped",
                     "--json"])
    import json
    config = json.loads(capsys.readouterr().out)["config"]
    assert code == 0
    assert (config["input_activation"], config["grad_bug"], config["relu_grad0"], config["stop"],
            config["scaling"], config["split"]) == (True, True, 1.0, "first-rise", "sample-maxmin", "grouped")
