"""Every registered backend passes impls.checks (its declaration, hand-checked steps,
gradients, and the torch reference's weights for every optimiser x loss x activation x
quirk switch), and trains the real wine data to the reference's weights. What a backend
declares it cannot express (Declaration.refuses) is skipped with its reason, and the skips
are listed here in full."""
from functools import lru_cache

import numpy as np
import pytest

from ffnbench import impls
from ffnbench.core import harness
from ffnbench.core.config import TrainConfig
from ffnbench.impls import checks

from conftest import BACKENDS, max_weight_diff, subset

REFERENCE = "torch"  # autograd + torch.optim: the hand-written backends are checked against it
LOSSES, ACTIVATIONS = ("mse", "bce", "ce"), ("sigmoid", "tanh", "relu")
# Every backend's Declaration.refuses (impls.FEATURES), and what of the common checks each
# refusal skips: the features that refuse it -> the checks' names for what is skipped
REFUSES = {"sklearn": {"adam", "input_activation", "grad_bug", "relu_grad0", "softmax2"},
           "python": {"float32"}}
FLOAT32_SKIPS = {("float32",): [*(c.id for c in checks.float32_cases()), "float32 against float64"]}
SKIPS = {"python": FLOAT32_SKIPS, "sklearn": {
    ("adam",): ["one Adam step", *(f"adam-5-{loss}-{a}-plain" for loss in LOSSES for a in ACTIVATIONS),
                "adam-1-mse-tanh-plain", "adam-5-mse-tanh-plain-float32", "adam-1-bce-relu-plain-float32"],
    ("input_activation",): ["hand gradients {'input_activation': True}, x=-1.0",
                            "finite differences, mse relu {'input_activation': True}",
                            *(f"sgd-1-{loss}-{a}-input_activation" for loss in LOSSES for a in ACTIVATIONS)],
    ("grad_bug",): ["hand gradients {'grad_bug': True}, x=1.0",
                    *(f"sgd-1-{loss}-{a}-grad_bug" for loss in LOSSES for a in ACTIVATIONS)],
    ("relu_grad0",): ["hand gradients {'relu_grad0': 1.0}, x=-1.0",
                      *(f"sgd-1-{loss}-relu-relu_grad0" for loss in LOSSES)],
    # all quirks at once; relu'(0) is refused only where it matters, with relu
    ("input_activation", "grad_bug"): [
        "hand gradients {'input_activation': True, 'grad_bug': True}, x=-1.0",
        *(f"sgd-1-{loss}-{a}-all_quirks" for loss in LOSSES for a in ("sigmoid", "tanh"))],
    ("input_activation", "grad_bug", "relu_grad0"): [
        *(f"sgd-1-{loss}-relu-all_quirks" for loss in LOSSES), "sgd-1-mse-relu-all_quirks-float32"],
    ("adam", "input_activation", "grad_bug"): ["adam-5-bce-tanh-all_quirks", "adam-5-ce-sigmoid-all_quirks",
                                               "adam-5-bce-tanh-all_quirks-float32"],
    ("adam", "input_activation", "grad_bug", "relu_grad0"): ["adam-5-mse-relu-all_quirks"],
    # softmax2 (ce with two outputs) never arises here: the checks' ce has 3 outputs
}}


def _unless_refused(check, *args, **kw):
    """Run a check; skip the test, with the backend's reason, where it refuses every case."""
    try:
        return check(*args, **kw)
    except checks.Refused as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("check", [checks.check_declaration, checks.check_round_trip,
                                   checks.check_sgd_step, checks.check_adam_step,
                                   checks.check_gradients, checks.check_float32],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", BACKENDS)
def test_check(name, check):
    _unless_refused(check, name)


@pytest.mark.parametrize("quirks", [False, True], ids=["plain", "quirks"])
@pytest.mark.parametrize("check", [checks.check_hand_gradients, checks.check_finite_differences],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", BACKENDS)
def test_gradient_check(name, check, quirks):
    _unless_refused(check, name, quirks=quirks)


@lru_cache(maxsize=None)
def _weights(name, case):
    return checks.train(name, case)[0]


@pytest.mark.parametrize("case", checks.cases() + checks.float32_cases(), ids=lambda c: c.id)
@pytest.mark.parametrize("name", [b for b in BACKENDS if b != REFERENCE])
def test_same_weights_as_the_reference(name, case):
    why = impls.refusal(name, case.hp(), checks.N_OUT[case.loss])
    if why:  # before the reference trains for nothing
        pytest.skip(why)
    checks.check_same_as_reference(name, case, REFERENCE, _weights(REFERENCE, case))


@pytest.mark.parametrize("name", BACKENDS)
def test_the_checks_skip_exactly_what_a_backend_refuses(name):
    """A backend refuses what it declares and nothing else, and the common checks skip
    exactly the cases listed in SKIPS, each with the reason its declaration gives."""
    declared = dict(impls.declaration(name).refuses)
    assert set(declared) == REFUSES.get(name, set())
    if not declared:  # nothing to skip: no case is refused (and check_backend runs them all)
        assert not any(impls.refusal(name, c.hp(), checks.N_OUT[c.loss]) for c in checks.cases())
        return
    skipped = checks.check_backend(name, REFERENCE)
    got = {}
    for what, why in skipped:
        assert why.startswith(f"backend '{name}' cannot express ") and "\n" not in why, why
        got[what] = tuple(f for f, (option, _) in impls.FEATURES.items()
                          if f"{option}: {declared.get(f)}" in why)
    want = {what: features for features, whats in SKIPS.get(name, {}).items() for what in whats}
    assert got == want
    assert len(skipped) == len(want)  # each skipped once


def test_a_refused_feature_is_one_line_at_config_time(capsys):
    """TrainConfig refuses what the backend declares it cannot express: one UserError line,
    exit status 2 from the command line, before any data are read."""
    from ffnbench import cli
    from ffnbench.core.errors import UserError
    with pytest.raises(UserError, match="^backend 'sklearn' cannot express --optimizer adam: "
                                        "scikit-learn's Adam adds eps"):
        TrainConfig(backend="sklearn", optimizer="adam")
    with pytest.raises(UserError, match="--loss ce with two outputs"):
        TrainConfig(backend="sklearn", dataset="color", loss="ce")
    with pytest.raises(UserError, match="--input-activation: .*; nor --grad-bug: "):
        TrainConfig(backend="sklearn", input_activation=True, grad_bug=True)
    TrainConfig(backend="sklearn", activation="tanh", relu_grad0=1)  # relu'(0) unused: fine
    TrainConfig(backend="sklearn", dataset="red-quality-class", loss="ce")
    for name in (b for b in BACKENDS if not REFUSES.get(b, set()) - {"float32"}):
        TrainConfig(backend=name, optimizer="adam", dataset="color", loss="ce", input_activation=True,
                    grad_bug=True, relu_grad0=1, activation="relu")
    assert cli.main(["train", "--backend", "sklearn", "--optimizer", "adam", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot express --optimizer adam" in err, err


@pytest.mark.parametrize("name", [b for b in BACKENDS if "float32" in REFUSES.get(b, ())])
def test_float32_is_refused_in_one_line_where_declared(name, capsys):
    from ffnbench import cli
    assert cli.main(["train", "--backend", name, "--dtype", "float32", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"backend '{name}' cannot express --dtype float32: " in err, err


def test_every_backend_is_declared_and_checked():
    """The registry and the declarations are the same list, and the reference is one of them."""
    assert list(impls.declarations()) == list(impls.BACKENDS)
    assert REFERENCE in BACKENDS
    assert any(d.gradients == "autograd" for d in impls.declarations().values())


def test_a_lost_declaration_line_is_a_clear_error(tmp_path, monkeypatch):
    """Each field is required: a module without one names it, and so does a wrong value."""
    source = impls._module_path("numpy").read_text()
    for field, line in (("devices", 'devices=("cpu",), '), ("sources", 'sources=("numpy_ffn.py",), ')):
        assert line in source
        path = tmp_path / "numpy_ffn.py"
        path.write_text(source.replace(line, ""))
        monkeypatch.setattr(impls, "_module_path", lambda name: path)
        impls.declaration.cache_clear()
        with pytest.raises(impls.BadDeclaration, match=f"lacks {field}"):
            impls.declaration("numpy")
    path.write_text(source.replace('sources=("numpy_ffn.py",)', 'sources=("elsewhere.py",)'))
    impls.declaration.cache_clear()
    with pytest.raises(impls.BadDeclaration, match="sources must include numpy_ffn.py"):
        impls.declaration("numpy")
    monkeypatch.undo()
    impls.declaration.cache_clear()


def test_every_file_of_impls_belongs_to_a_declaration():
    """A source file no backend declares would be left out of the result cache's key."""
    declared = {impls.HERE / s for d in impls.declarations().values() for s in d.sources}
    files = {p for p in impls.HERE.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert files - declared == {impls.HERE / "__init__.py", impls.HERE / "checks.py"}


def test_unavailable_names_the_package_and_the_extra(monkeypatch):
    monkeypatch.setattr(impls.importlib.util, "find_spec", lambda name: None)
    assert impls.unavailable("jax") == ("backend 'jax' needs the package 'jax', which is not "
                                        "installed (pip install 'ffnbench[jax]')")
    with pytest.raises(impls.BackendUnavailable, match="ffnbench\\[torch\\]"):
        impls.load("torch")
    assert impls.unavailable("numpy") is None  # the core install


REAL = [("red", (50, 30, 20, 10, 5), "tanh"), ("white", (10,), "relu")]
SUBSET = 200  # training samples: enough to move the weights, few enough for pure Python


@pytest.mark.parametrize("dataset, hidden, activation", REAL, ids=str)
def test_real_data_ends_with_the_same_weights(dataset, hidden, activation):
    """3 epochs of per-sample SGD on the wine data from the harness: max |dW| <= 1e-12."""
    cfg = dict(dataset=dataset, hidden=hidden, activation=activation, lr=0.01, l2=0.1,
               epochs=3, patience=0, seed=1)
    prepared = subset(harness.prepare(TrainConfig(**cfg)), SUBSET)
    ref = harness.train(TrainConfig(backend=REFERENCE, **cfg), prepared)[1]
    assert max_weight_diff(ref, prepared.params) > 1e-3  # training really moved them
    for name in (b for b in BACKENDS if b != REFERENCE):
        w = harness.train(TrainConfig(backend=name, **cfg), prepared)[1]
        assert max_weight_diff(w, ref) <= 1e-12, name


@pytest.mark.parametrize("fastmath", [False, True], ids=["plain", "per-sample-flags"])
def test_numba_vectorised_tanh_matches_numpy(fastmath):
    """The numba kernels' written-out exp: tanh within 4e-16 of numpy's over the whole range,
    saturating at +-1, and nan in gives nan out (so a diverging run is still caught) - also
    compiled with the per-sample kernel's fastmath flags, which it is inlined under. Applied
    to a part of the array only, as the kernels do: the rest stays as it was."""
    pytest.importorskip("numba")
    from numba import njit
    from ffnbench.impls.numba_ffn import PER_SAMPLE_FLAGS, _tanh

    @njit(error_model="numpy", fastmath=PER_SAMPLE_FLAGS if fastmath else False)
    def tanh_(z, lo):
        _tanh(z, np.uint64(lo), np.uint64(z.shape[0] - lo))

    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0.0, 4.0, 20000), rng.normal(0.0, 1e-6, 1000),
                        np.linspace(-25.0, 25.0, 5001), [0.0, -0.0, 1e-300, 700.0, -700.0]])
    got = np.concatenate([[3.0, -5.0], z])
    tanh_(got, 2)
    assert got[0] == 3.0 and got[1] == -5.0
    assert np.max(np.abs(got[2:] - np.tanh(z))) <= 4e-16
    special = np.array([np.inf, -np.inf, np.nan])
    tanh_(special, 0)
    assert special[0] == 1.0 and special[1] == -1.0 and np.isnan(special[2])


def test_the_result_cache_key_covers_every_declared_source(tmp_path, monkeypatch):
    """An edited C file (not only impls/<name>.py) gives table's cache a new key."""
    from ffnbench.run import cache
    for name in BACKENDS:
        assert set(impls.source_paths(name)) <= set(cache.code_files(name)), name
    assert impls.HERE / "c" / "ffn.c" in cache.code_files("c")
    for path in impls.source_paths("c"):
        copy = tmp_path / path.relative_to(impls.HERE)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())
    monkeypatch.setattr(impls, "HERE", tmp_path)
    cache.code_fingerprint.cache_clear()
    before = cache.code_fingerprint("c")
    (tmp_path / "c" / "ffn.c").write_text((tmp_path / "c" / "ffn.c").read_text() + "\n")
    cache.code_fingerprint.cache_clear()
    assert cache.code_fingerprint("c") != before
    monkeypatch.undo()
    cache.code_fingerprint.cache_clear()


def test_jax_on_cuda_falls_back_to_cpu_with_a_warning():
    jax_ffn = impls.load("jax")
    try:
        jax_ffn.jax.devices("gpu")
        pytest.skip("this machine has a GPU for JAX")
    except RuntimeError:
        pass
    with pytest.warns(RuntimeWarning, match="JAX has no GPU"):
        state = jax_ffn.from_numpy([(np.ones((1, 1)), np.zeros(1))], impls.HyperParams("tanh", 0.1, 0.0),
                                   "cuda")
    assert state["device"] == "cpu"


def test_the_checks_catch_a_backend_that_is_slightly_wrong(monkeypatch):
    """A gradient off by one part in a billion, or weights off by 1e-9, fail the checks."""
    numpy_ffn = impls.load("numpy")
    real_gradients, real_to_numpy = numpy_ffn.gradients, numpy_ffn.to_numpy
    monkeypatch.setattr(numpy_ffn, "gradients",
                        lambda s, X, Y: [(gW * (1 + 1e-9), gb) for gW, gb in real_gradients(s, X, Y)])
    with pytest.raises(AssertionError, match="backend 'numpy': gradients, mse"):
        checks.check_gradients("numpy")
    monkeypatch.setattr(numpy_ffn, "gradients", lambda s, X, Y: [(gW, gb + 1e-3) for gW, gb in
                                                                 real_gradients(s, X, Y)])
    with pytest.raises(AssertionError, match="finite differences"):
        checks.check_finite_differences("numpy", quirks=False)
    monkeypatch.setattr(numpy_ffn, "to_numpy", lambda s: [(W + 1e-9, b) for W, b in real_to_numpy(s)])
    case = checks.cases()[0]
    with pytest.raises(AssertionError, match=f"{case.id}: max \\|dW\\| against c"):
        checks.check_same_as_reference("numpy", case, "c")
