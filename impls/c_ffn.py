"""C backend: the same backpropagation in plain C (impls/c/ffn.c), called through ctypes,
in float64 or float32 (hp.dtype).

The C source is compiled with the system C compiler ($CC, else cc) on first use, with
-O3 -march=native and without fast-math (IEEE rounding, so the weights agree with the
other backends to round-off), into a per-user cache: $FFNBENCH_CACHE, else
$XDG_CACHE_HOME/ffnbench, else ~/.cache/ffnbench. The library's name is a hash of the
source, the compiler's identity, the flags and the CPU, so an edited source or another
compiler builds anew; the build goes to a temporary file that is renamed into place, so
parallel workers that compile at once never load a half-written library.

One source, one library per dtype: -DFFN_REAL=double or -DFFN_REAL=float makes ffn.c's
arithmetic type, so float32 is float maths throughout (expf, tanhf, float sums), not
double maths rounded at the end. The define is among the flags, so it is in the hash and
in the name (ffn-float32-<hash>.so): both libraries live side by side in the cache. The
float64 one is built on import (a compiler that cannot build it makes the backend
unavailable, in one line); the float32 one on the first float32 state. A float32 state
holds theta, Adam's moments, X and Y in float32 (pointers typed by the arrays' dtype, so
ctypes refuses a float64 array where the library wants floats); to_numpy, predict and
gradients return float64 copies of its float32 values. The hyper-parameters stay double
in the Net and Hyper structures: ffn.c makes them real where it uses them.
"""
import ctypes
import hashlib
import os
import platform
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import DELTA_SCALE, BackendUnavailable, Declaration, find_tool

DECLARATION = Declaration(
    name="c", devices=("cpu",), extra=None, packages=(), gradients="hand-written",
    sources=("c_ffn.py", "c/ffn.c"), tools=("cc",), refuses=(),
)
SOURCE = Path(__file__).with_name("c") / "ffn.c"
FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-std=c99", "-shared", "-fPIC")
REAL = {"float64": "double", "float32": "float"}  # hp.dtype -> ffn.c's FFN_REAL
ACT = {"sigmoid": 0, "tanh": 1, "relu": 2}  # the enums at the top of ffn.c
OUT = {"mse": 0, "bce": 1, "ce": 2}  # linear, sigmoid, softmax output
OPT = {"sgd": 0, "adam": 1}
i64, f64, f32 = ctypes.c_int64, ctypes.c_double, ctypes.c_float
P_f64, P_f32, P_i64 = ctypes.POINTER(f64), ctypes.POINTER(f32), ctypes.POINTER(i64)
PTR = {np.dtype(np.float64): P_f64, np.dtype(np.float32): P_f32, np.dtype(np.int64): P_i64}


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


def flags(dtype="float64"):
    """The compiler flags of the `dtype` library: FLAGS and the type of ffn.c's real."""
    return (*FLAGS, f"-DFFN_REAL={REAL[dtype]}")


def build(dtype="float64"):
    """Path of the compiled `dtype` library, compiling it if this source/compiler/flags/CPU
    has none."""
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
                                     " ".join(flags(dtype)).encode(), _cpu().encode()])).hexdigest()
    lib = cache_dir() / f"ffn-{dtype}-{key[:20]}.so"
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
        out = subprocess.run([cc, *flags(dtype), "-o", tmp, str(SOURCE), "-lm"], capture_output=True,
                             text=True, timeout=300)
        if out.returncode:
            lines = (out.stderr or out.stdout).strip().splitlines() or ["no message"]
            _fail(f"{cc} could not compile {SOURCE.name}: {lines[0]}")
        os.replace(tmp, lib)  # atomic: a parallel worker sees no library or a whole one
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


@lru_cache(maxsize=None)
def library(dtype):
    """The `dtype` library, loaded, with its kernels' signatures (P: a pointer to its real)."""
    lib, P = ctypes.CDLL(str(build(dtype))), PTR[np.dtype(dtype)]
    sig = {"ffn_sgd_epoch": [ctypes.POINTER(Net), ctypes.POINTER(Hyper), P, P, P, P_i64, i64],
           "ffn_gradient": [ctypes.POINTER(Net), f64, P, P, P, i64, P],
           "ffn_batch_epoch": [ctypes.POINTER(Net), ctypes.POINTER(Hyper), P, P, P,
                               P_i64, i64, i64, P, P, P_i64],
           "ffn_predict": [ctypes.POINTER(Net), P, P, i64, P]}
    for name, args in sig.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, ctypes.c_int
    return lib


library("float64")  # now: a compiler that cannot build it makes the backend unavailable


def _ptr(a):
    return a.ctypes.data_as(PTR[a.dtype])


def _check(code):
    if code:
        raise MemoryError("the C backend could not allocate its work buffers")


def from_numpy(params, hp, device="cpu"):
    sizes = np.array([params[0][0].shape[1]] + [len(b) for _, b in params], dtype=np.int64)
    theta = np.concatenate([np.concatenate([np.ravel(W), b]) for W, b in params]).astype(hp.dtype)
    net = Net(len(params), _ptr(sizes), ACT[hp.activation], OUT[hp.loss],
              DELTA_SCALE[hp.loss], int(hp.input_activation), int(hp.grad_bug), hp.relu_grad0)
    hyper = Hyper(hp.lr, hp.l2, hp.beta1, hp.beta2, hp.eps, OPT[hp.optimizer])
    state = {"hp": hp, "theta": theta, "sizes": sizes, "net": net, "hyper": hyper,
             "lib": library(hp.dtype)}
    if hp.optimizer == "adam":
        state["adam"] = (np.zeros_like(theta), np.zeros_like(theta), np.zeros(1, np.int64))
    return state  # "sizes" stays referenced: net points into it


def to_numpy(state):
    out, o, sizes = [], 0, state["sizes"]
    for nin, nout in zip(sizes[:-1], sizes[1:]):
        W = state["theta"][o:o + nin * nout].reshape(nout, nin).astype(np.float64)  # a copy
        o += nin * nout
        out.append((W, state["theta"][o:o + nout].astype(np.float64)))
        o += nout
    return out


def _arrays(state, *arrays):  # as they are where they match (the harness casts them once)
    return (np.ascontiguousarray(A, dtype=state["theta"].dtype) for A in arrays)


def train_epoch(state, X, Y, order):
    hp, (X, Y), lib = state["hp"], _arrays(state, X, Y), state["lib"]
    order = np.ascontiguousarray(order, dtype=np.int64)
    net, hyper, theta = ctypes.byref(state["net"]), ctypes.byref(state["hyper"]), state["theta"]
    if hp.per_sample_sgd:
        _check(lib.ffn_sgd_epoch(net, hyper, _ptr(theta), _ptr(X), _ptr(Y), _ptr(order),
                                 len(order)))
        return
    M, G, t = state.get("adam") or (theta, theta, np.zeros(1, np.int64))  # unused by SGD
    _check(lib.ffn_batch_epoch(net, hyper, _ptr(theta), _ptr(X), _ptr(Y), _ptr(order),
                               len(order), hp.batch(len(order)), _ptr(M), _ptr(G), _ptr(t)))


def synchronize(state):
    """Nothing to wait for: the work is done when train_epoch returns."""


def predict(state, X):
    (X,) = _arrays(state, X)
    out = np.empty((len(X), int(state["sizes"][-1])), X.dtype)
    _check(state["lib"].ffn_predict(ctypes.byref(state["net"]), _ptr(state["theta"]), _ptr(X),
                                    len(X), _ptr(out)))
    return out.astype(np.float64, copy=False)


def gradients(state, X, Y):
    X, Y = _arrays(state, X, Y)
    grad = np.empty_like(state["theta"])
    _check(state["lib"].ffn_gradient(ctypes.byref(state["net"]), state["hp"].l2, _ptr(state["theta"]),
                            _ptr(X), _ptr(Y), len(X), _ptr(grad)))
    return to_numpy({"theta": grad, "sizes": state["sizes"]})
