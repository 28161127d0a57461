"""The numba backend in float32 (hp.dtype), beyond the common checks (impls.checks'
check_float32 and float32 cases, run by test_backends.py, and test_dtype.py's wine data):
the state and the kernels' arithmetic are float32 (every variable numba types in a float32
kernel is float32, not only what is stored); the padded per-sample kernel on widths wider
than a float32 register and with every quirk agrees with torch's float32; the float32 tanh
and its exp's bit trick; and float64 still gives torch's float64 weights to round-off."""
import numpy as np
import pytest

from ffnbench import impls
from ffnbench.impls import checks

numba = pytest.importorskip("numba")
from numba.core import ir  # noqa: E402
from numba.core.compiler import CompilerBase, DefaultPassBuilder  # noqa: E402
from numba.core.compiler_machinery import FunctionPass, PassManager, register_pass  # noqa: E402

nb = impls.load("numba")
EPS32 = checks.EPS32
from test_numba_kernel import SIZES, padded_problem  # noqa: E402  float32 pads 13, 9, 17 to 16, 16, 32


def _is_float32(A):
    return np.array_equal(np.asarray(A).astype(np.float32), A)


def test_a_float32_state_and_what_it_gives_back_are_float32():
    """from_numpy makes every array of the state and every float of the records float32;
    per-sample SGD and Adam train it; to_numpy, predict and gradients give float64 arrays
    holding float32 numbers."""
    params, X, Y = checks.synthetic("ce")
    for optimizer, batch in (("sgd", 1), ("adam", 5)):
        hp = impls.HyperParams("tanh", 0.05, 0.05, loss="ce", optimizer=optimizer,
                               batch_size=batch, dtype="float32")
        state = nb.from_numpy(params, hp)
        arrays = [state["theta"], *state["bufs"], *state["moments"]]
        assert all(A.dtype == np.float32 for A in arrays)
        maths = state["maths"]
        assert all(type(x) is np.float32 for x in (maths.scale, maths.l2, maths.relu_grad0))
        for epoch in range(2):
            nb.train_epoch(state, X, Y, np.random.default_rng(epoch).permutation(len(X)))
        assert state["theta"].dtype == np.float32
        w = nb.to_numpy(state)
        outputs = [A for pair in w for A in pair] + [nb.predict(state, X)]
        outputs += [g for pair in nb.gradients(state, X, Y) for g in pair]
        assert all(A.dtype == np.float64 and _is_float32(A) for A in outputs)
        assert not np.allclose(w[0][0], params[0][0])  # it trained


# Typing only (numba's own passes, no code generation): a fresh compile of a kernel stops after
# its typing and inlining, and reports the types of its variables.
class _Typed(Exception):
    pass


@register_pass(mutates_CFG=False, analysis_only=True)
class _StopAfterTyping(FunctionPass):
    _name = "ffnbench_stop_after_typing"

    def __init__(self):
        FunctionPass.__init__(self)

    def run_pass(self, state):
        literal = {inst.target.name
                   for block in state.func_ir.blocks.values() for inst in block.body
                   if isinstance(inst, ir.Assign)
                   and isinstance(inst.value, (ir.Const, ir.Global, ir.FreeVar))}
        raise _Typed({name: t for name, t in state.typemap.items() if name not in literal})


class _TypeOnly(CompilerBase):
    def define_pipelines(self):
        pm = PassManager("type only")
        pm.passes.extend(DefaultPassBuilder.define_untyped_pipeline(self.state).passes)
        pm.passes.extend(DefaultPassBuilder.define_typed_pipeline(self.state).passes)
        pm.add_pass(_StopAfterTyping, "report the types")
        pm.finalize()
        return [pm]


def _float64_variables(kernel, args):
    """The variables of kernel, compiled for args, that numba types as float64 (or arrays and
    tuples of them), leaving out literal constants and globals: these are only ever cast
    (real(c)) or compared."""
    fresh = numba.njit(pipeline_class=_TypeOnly, error_model="numpy")(kernel)
    with pytest.raises(_Typed) as typed:
        fresh.compile(tuple(numba.typeof(a) for a in args))
    return sorted(name for name, t in typed.value.args[0].items() if "float64" in str(t))


def _leaky_sum(z):  # the slip the check is for: a bare 0.0 makes the sum float64
    s = 0.0
    for i in range(z.shape[0]):
        s += z[i]
    return s


def _kernel_args(state, X, Y):
    f32 = np.float32
    theta, net, maths, (A, Z) = state["theta"], state["net"], state["maths"], state["bufs"]
    opt = nb.Opt(optimizer=nb.ADAM, batch=5, lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, t=0)
    work = np.empty(nb._work_size(net.sizes, 5), np.float32)
    return {"_sgd_epoch": (theta, net, X, Y, np.arange(len(X)), maths, f32(0.05)),
            "_batch_gradient": (theta, net, X, Y, np.arange(5), maths, theta.copy(), work),
            "_batch_epoch": (theta, net, X, Y, np.arange(len(X)), maths, opt, state["moments"]),
            "_forward": (theta, net, A, Z, X[0], maths),
            "_output": (X.copy(), nb.SOFTMAX),
            "_predict": (theta, net, A, Z, X, maths)}


def test_the_float32_kernels_compute_in_float32():
    """Every kernel, typed for a float32 run, has no float64 variable: no constant, accumulator
    or parameter promotes its arithmetic (activation, loss and optimiser are run-time values,
    so each kernel's typing covers all of their code, tanh's float32 twin included). The
    check finds the slip it looks for, and float64 runs are typed float64."""
    params, X, Y = checks.synthetic("ce")
    hp = impls.HyperParams("tanh", 0.05, 0.05, loss="ce", dtype="float32")
    state = nb.from_numpy(params, hp)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    for name, args in _kernel_args(state, X32, Y32).items():
        found = _float64_variables(getattr(nb, name).py_func, args)
        # the Opt record holds Adam's float64 parameters, which only _optimiser_constants and
        # _bias_corrected read (they round what they form to float32, as torch.optim does)
        assert [v for v in found if v not in ("opt", "arg.opt")] == [], name
    opt = _kernel_args(state, X32, Y32)["_batch_epoch"][6]
    for out in (nb._optimiser_constants(opt, state["theta"]), nb._bias_corrected(opt, 3, state["theta"])):
        assert all(float(np.float32(v)) == v for v in out), out  # float32 numbers (boxed as float)
    assert nb._optimiser_constants(opt, state["theta"])[4] == np.float32(1.0 - 0.999)  # rounded once
    assert "s" in {name.split(".")[0] for name in _float64_variables(_leaky_sum, (X32[0],))}
    assert "z" in _float64_variables(_leaky_sum, (X[0],))


@pytest.mark.parametrize("activation,loss,quirks", [
    ("tanh", "ce", {}),
    ("relu", "mse", {"grad_bug": True, "relu_grad0": 0.5}),
    ("sigmoid", "bce", {"input_activation": True}),
])
def test_padded_float32_kernel_agrees_with_torch_float32(activation, loss, quirks):
    """test_numba_kernel's widths (wider than one float32 register and not a multiple of it,
    rows left over after the groups of four and two) and quirks, 3 epochs of per-sample SGD:
    float32 ends within float32_tolerance of torch's float32, with float32 numbers that are
    not the float64 run's; the float64 run, compiled beside it, is torch's to 1e-12."""
    params, X, Y = padded_problem(loss)
    out = {}
    for name in ("numba", "torch"):
        for dtype in ("float32", "float64"):
            backend = impls.load(name)
            state = backend.from_numpy(params, impls.HyperParams(activation, 0.01, 0.01, loss=loss,
                                                                 dtype=dtype, **quirks))
            for epoch in range(3):
                backend.train_epoch(state, X, Y, np.random.default_rng(epoch).permutation(40))
            out[name, dtype] = backend.to_numpy(state)
    w32, ref32 = out["numba", "float32"], out["torch", "float32"]
    assert all(_is_float32(A) for pair in w32 for A in pair)
    tol = checks.float32_tolerance(3 * 40, checks.max_abs(ref32))
    assert checks.max_diff(w32, ref32) <= tol
    assert checks.max_diff(w32, out["numba", "float64"]) > EPS32 * 0.5  # not float64 rounded
    assert checks.max_diff(out["numba", "float64"], out["torch", "float64"]) <= 1e-12
    assert not np.allclose(w32[0][0], params[0][0])  # it did train


def test_padding_and_alignment_follow_the_itemsize():
    """A row is padded to one 64-byte register of the dtype: 16 floats, 8 doubles; the
    padded buffers start on a 64-byte boundary in both."""
    f32, f64 = np.zeros(1, np.float32), np.zeros(1)
    assert (nb._per_register(f32), nb._per_register(f64)) == (16, 8)
    sizes = np.array(SIZES, dtype=np.int64)
    assert nb._padded_layout(sizes, nb._per_register(f32)).widths.tolist() == [16, 16, 16, 32, 16]
    assert nb._padded_layout(sizes, nb._per_register(f64)).widths.tolist() == [16, 16, 16, 24, 8]
    for like in (f32, f64):
        for n in (1, 13, 100):
            buf = nb._aligned_zeros(np.uint64(n), like)
            assert buf.dtype == like.dtype and buf.shape == (n,) and buf.ctypes.data % 64 == 0


@pytest.mark.parametrize("fastmath", [False, True], ids=["plain", "per-sample-flags"])
def test_float32_tanh_matches_numpy_float32(fastmath):
    """The float32 twin of the written-out tanh: within 1.5 float32 eps (1.8e-7, absolute, as
    the float64 one is held to 4e-16) of tanh over z in [-25, 25], exactly +-1 where float32's
    tanh is (from |z| = 9.0109 on; the clamp is at |z| = 10), its exp's 2^q built right for
    every q up to the clamp's +-29, float32 all through, and nan in gives nan out - also under
    the per-sample kernel's fastmath flags. Applied to a part of the array, as the kernels do."""
    from ffnbench.impls.numba_ffn import PER_SAMPLE_FLAGS, _tanh

    @numba.njit(error_model="numpy", fastmath=PER_SAMPLE_FLAGS if fastmath else False)
    def tanh_(z, lo):
        _tanh(z, np.uint64(lo), np.uint64(z.shape[0] - lo))

    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0.0, 4.0, 20000), rng.normal(0.0, 1e-3, 1000),
                        np.linspace(-25.0, 25.0, 50001), np.linspace(9.0, 9.02, 2001),
                        np.linspace(-9.02, -9.0, 2001), [0.0, -0.0, 1e-30, 700.0, -700.0]])
    z = z.astype(np.float32)
    got = np.concatenate([np.float32([3.0, -5.0]), z])
    tanh_(got, 2)
    assert got.dtype == np.float32 and got[0] == 3.0 and got[1] == -5.0
    got = got[2:]
    exact = np.tanh(z.astype(np.float64))
    assert np.max(np.abs(got - exact)) <= 1.5 * EPS32
    assert np.max(np.abs(got - np.tanh(z))) <= 1.5 * EPS32
    ones = np.abs(exact.astype(np.float32)) == 1.0  # where tanh rounds to +-1 in float32
    assert np.abs(z[ones]).min() == pytest.approx(9.0109, abs=1e-4)
    assert np.array_equal(got[np.abs(z) >= 9.02], np.sign(z[np.abs(z) >= 9.02]))
    special = np.float32([np.inf, -np.inf, np.nan, 10.0, -10.0, 3e38])
    tanh_(special, 0)
    assert special.tolist()[:2] == [1.0, -1.0] and np.isnan(special[2])
    assert special.tolist()[3:] == [1.0, -1.0, 1.0]
