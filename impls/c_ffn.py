"""C backend: the same backpropagation in plain C (impls/c/ffn.c), called through ctypes.

The C source is compiled with the system C compiler ($CC, else cc) on first use, with
-O3 -march=native and without fast-math (IEEE rounding, so the weights agree with the
other backends to round-off), into a per-user cache: $FFNBENCH_CACHE, else
$XDG_CACHE_HOME/ffnbench, else ~/.cache/ffnbench. The library's name is a hash of the
source, the compiler's identity, the flags and the CPU, so an edited source or another
compiler builds anew; the build goes to a temporary file that is renamed into place, so
parallel workers that compile at once never load a half-written library.
"""
import ctypes
import hashlib
import os
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from . import DELTA_SCALE, BackendUnavailable, Declaration, find_tool

DECLARATION = Declaration(
    name="c", devices=("cpu",), extra=None, packages=(), gradients="hand-written",
    sources=("c_ffn.py", "c/ffn.c"), tools=("cc",),
    refuses=(("float32", "impls/c/ffn.c is written for double only"),),
)
SOURCE = Path(__file__).with_name("c") / "ffn.c"
FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-std=c99", "-shared", "-fPIC")
ACT = {"sigmoid": 0, "tanh": 1, "relu": 2}  # the enums at the top of ffn.c
OUT = {"mse": 0, "bce": 1, "ce": 2}  # linear, sigmoid, softmax output
OPT = {"sgd": 0, "adam": 1}
i64, f64 = ctypes.c_int64, ctypes.c_double
P_f64, P_i64 = ctypes.POINTER(f64), ctypes.POINTER(i64)


class Net(ctypes.Structure):  # net_t in ffn.c
    _fields_ = [("L", i64), ("sizes", P_i64), ("act", i64), ("out", i64), ("delta_scale", f64),
                ("input_activation", i64), ("grad_bug", i64), ("relu_grad0", f64)]


class Hyper(ctypes.Structure):  # hyper_t in ffn.c
    _fields_ = [("lr", f64), ("l2", f64), ("beta1", f64), ("beta2", f64), ("eps", f64),
                ("optimizer", i64)]


def cache_dir():
    base = os.environ.get("FFNBENCH_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ffnbench"
    return Path(base)


def _cpu():
    try:
        return next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), platform.processor())
    except OSError:
        return platform.processor()


def _fail(message):
    raise BackendUnavailable(f"backend 'c': {message}")


def build():
    """Path of the compiled library, compiling it if this source/compiler/flags/CPU has none."""
    cc = find_tool("cc")
    if cc is None:
        _fail("no C compiler found (set $CC or put cc on PATH)")
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                                 timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        _fail(f"the C compiler {cc} does not run ({e})")
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, cc.encode(), version.encode(),
                                     " ".join(FLAGS).encode(), _cpu().encode()])).hexdigest()
    lib = cache_dir() / f"ffn-{key[:20]}.so"
    if lib.exists():
        return lib
    try:
        lib.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib.parent)
        os.close(fd)
    except OSError as e:
        _fail(f"cannot write its compiled library under {lib.parent} ({e.strerror}; "
              "set FFNBENCH_CACHE to a writable directory)")
    try:
        out = subprocess.run([cc, *FLAGS, "-o", tmp, str(SOURCE), "-lm"], capture_output=True,
                             text=True, timeout=300)
        if out.returncode:
            lines = (out.stderr or out.stdout).strip().splitlines() or ["no message"]
            _fail(f"{cc} could not compile {SOURCE.name}: {lines[0]}")
        os.replace(tmp, lib)  # atomic: a parallel worker sees no library or a whole one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


def _load():
    lib = ctypes.CDLL(str(build()))
    sig = {"ffn_sgd_epoch": [ctypes.POINTER(Net), ctypes.POINTER(Hyper), P_f64, P_f64, P_f64, P_i64, i64],
           "ffn_gradient": [ctypes.POINTER(Net), f64, P_f64, P_f64, P_f64, i64, P_f64],
           "ffn_batch_epoch": [ctypes.POINTER(Net), ctypes.POINTER(Hyper), P_f64, P_f64, P_f64,
                               P_i64, i64, i64, P_f64, P_f64, P_i64],
           "ffn_predict": [ctypes.POINTER(Net), P_f64, P_f64, i64, P_f64]}
    for name, args in sig.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, ctypes.c_int
    return lib


LIB = _load()


def _ptr(a, kind=P_f64):
    return a.ctypes.data_as(kind)


def _check(code):
    if code:
        raise MemoryError("the C backend could not allocate its work buffers")


def from_numpy(params, hp, device="cpu"):
    sizes = np.array([params[0][0].shape[1]] + [len(b) for _, b in params], dtype=np.int64)
    theta = np.concatenate([np.concatenate([np.ravel(W), b]) for W, b in params]).astype(np.float64)
    net = Net(len(params), _ptr(sizes, P_i64), ACT[hp.activation], OUT[hp.loss],
              DELTA_SCALE[hp.loss], int(hp.input_activation), int(hp.grad_bug), hp.relu_grad0)
    hyper = Hyper(hp.lr, hp.l2, hp.beta1, hp.beta2, hp.eps, OPT[hp.optimizer])
    state = {"hp": hp, "theta": theta, "sizes": sizes, "net": net, "hyper": hyper}
    if hp.optimizer == "adam":
        state["adam"] = (np.zeros_like(theta), np.zeros_like(theta), np.zeros(1, np.int64))
    return state  # "sizes" stays referenced: net points into it


def to_numpy(state):
    out, o, sizes = [], 0, state["sizes"]
    for nin, nout in zip(sizes[:-1], sizes[1:]):
        W = state["theta"][o:o + nin * nout].reshape(nout, nin).copy()
        o += nin * nout
        out.append((W, state["theta"][o:o + nout].copy()))
        o += nout
    return out


def _arrays(X, Y):
    return np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(Y, dtype=np.float64)


def train_epoch(state, X, Y, order):
    hp, (X, Y) = state["hp"], _arrays(X, Y)
    order = np.ascontiguousarray(order, dtype=np.int64)
    net, hyper, theta = ctypes.byref(state["net"]), ctypes.byref(state["hyper"]), state["theta"]
    if hp.per_sample_sgd:
        _check(LIB.ffn_sgd_epoch(net, hyper, _ptr(theta), _ptr(X), _ptr(Y), _ptr(order, P_i64),
                                 len(order)))
        return
    M, G, t = state.get("adam") or (theta, theta, np.zeros(1, np.int64))  # unused by SGD
    _check(LIB.ffn_batch_epoch(net, hyper, _ptr(theta), _ptr(X), _ptr(Y), _ptr(order, P_i64),
                               len(order), hp.batch(len(order)), _ptr(M), _ptr(G), _ptr(t, P_i64)))


def synchronize(state):
    """Nothing to wait for: the work is done when train_epoch returns."""


def predict(state, X):
    X = np.ascontiguousarray(X, dtype=np.float64)
    out = np.empty((len(X), int(state["sizes"][-1])))
    _check(LIB.ffn_predict(ctypes.byref(state["net"]), _ptr(state["theta"]), _ptr(X), len(X),
                           _ptr(out)))
    return out


def gradients(state, X, Y):
    X, Y = _arrays(X, Y)
    grad = np.empty_like(state["theta"])
    _check(LIB.ffn_gradient(ctypes.byref(state["net"]), state["hp"].l2, _ptr(state["theta"]),
                            _ptr(X), _ptr(Y), len(X), _ptr(grad)))
    return to_numpy({"theta": grad, "sizes": state["sizes"]})
