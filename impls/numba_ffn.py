"""Numba backend: a whole epoch in one jitted kernel over a flat parameter vector, in
float64 or float32 (hp.dtype: every array of the state and every float the kernels compute
with, each kernel compiled once per dtype; see "Precision" below).

All weights and biases live in one vector `theta`; layer l's W (row-major,
(fan_out, fan_in)) starts at woff[l] and its b at boff[l]; predict's activations and
pre-activations of all layers share flat buffers indexed by aoff. Per-sample SGD works on a
padded, transposed copy of theta for the epoch (see _sgd_epoch).
Kernels are module-level functions of arrays, scalars and small named records (cache=True),
so compiled code is reused across processes; the Python functions at the bottom adapt the
backend contract to them. The records (NamedTuples, defined below: numba passes them as plain
structs and kernels read them by field name, never by position) a kernel takes:

    net     = Net(sizes, woff, boff, aoff)        int64 arrays: the layer layout
    maths   = Maths(activation, output, scale, l2, input_activation, grad_bug, relu_grad0)
    opt     = Opt(optimizer, batch, lr, beta1, beta2, eps, t)   t: Adam's step count so far
    moments = Moments(first, second)              Adam's running moments, updated in place
    pnet    = Padded(sizes, widths, woff, boff, aoff)   the per-sample kernel's padded layout
"""
from functools import partial
from math import exp, sqrt
from typing import NamedTuple

import numpy as np
from llvmlite import binding as llvm
from numba import njit, typeof, types
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import overload

from . import DELTA_SCALE, Declaration

DECLARATION = Declaration(
    name="numba", devices=("cpu",), extra="numba", packages=("numba",), gradients="hand-written",
    sources=("numba_ffn.py",), tools=(), refuses=(),
)
# numba kernels branch on small integers; these names are the only place they are spelled
SIGMOID, TANH, RELU = 0, 1, 2  # hidden activations
LINEAR, SIGMOID_OUT, SOFTMAX = 0, 1, 2  # output activations (by loss)
SGD, ADAM = 0, 1  # optimisers
ACTIVATION = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU}
OUTPUT = {"mse": LINEAR, "bce": SIGMOID_OUT, "ce": SOFTMAX}
OPTIMIZER = {"sgd": SGD, "adam": ADAM}


# The kernels' records. Each field has one type in every run of a dtype (from_numpy and
# train_epoch convert: int, bool, an int64/uint64 array, or a float of the run's dtype), so a
# kernel is compiled once per dtype, not again for an int where a float was before.
class Net(NamedTuple):
    """The layer layout of theta, all int64 arrays: sizes (L+1,) layer widths n_0..n_L; layer
    l's W at woff[l], its b at boff[l]; layer l's part of a flat per-sample buffer at aoff[l]."""
    sizes: np.ndarray
    woff: np.ndarray
    boff: np.ndarray
    aoff: np.ndarray


class Maths(NamedTuple):
    """What the network computes: activation (SIGMOID, TANH, RELU), output (LINEAR,
    SIGMOID_OUT, SOFTMAX), scale = DELTA_SCALE[loss], the l2 penalty and the printed code's
    quirks; scale, l2 and relu_grad0 are of the run's dtype."""
    activation: int
    output: int
    scale: float
    l2: float
    input_activation: bool
    grad_bug: bool
    relu_grad0: float


class Opt(NamedTuple):
    """The mini-batch optimiser: optimizer (SGD, ADAM), samples per update, Adam's
    parameters (float64 in either precision: the kernel rounds what it forms from them) and
    t, its step count so far."""
    optimizer: int
    batch: int
    lr: float
    beta1: float
    beta2: float
    eps: float
    t: int


class Moments(NamedTuple):
    """Adam's running moments of the gradient, of theta's dtype: first (mean), second
    (uncentred variance)."""
    first: np.ndarray
    second: np.ndarray
# error_model="numpy": x / 0.0 gives inf or nan (a diverged run, which the harness records)
# instead of a Python ZeroDivisionError check on every division, which keeps LLVM from
# vectorising the loop around it. fastmath "contract": a multiply-add may be one FMA, rounded
# once (tanh's polynomial is a chain of them); no other flag, so sums keep their order and
# inf and nan propagate.
jit = partial(njit, cache=True, error_model="numpy", fastmath={"contract"})
# Precision: a run's arrays and its records' floats are all of hp.dtype, and every float
# constant a kernel computes with is written real(c), where real is the float type of the
# values at hand (real = X.dtype.type for an array X, type(x) for a number x). numba, like
# numpy, types a bare 1.0 as float64, and float32 with float64 gives float64, so one bare
# constant or float64 accumulator would turn a float32 run's arithmetic into float64 (the
# tests type each kernel for float32 and look for a float64 variable). In a float64 run
# real(c) is c itself, so the float64 code is the one bare constants would give. A comparison
# with 0.0 or a store of it needs no real(): both are exact in either precision. Kernels are
# compiled per argument types, so each dtype gets its own code; where float32 needs other
# numbers, not only another type (tanh's exp), _tanh picks a twin by the dtype.


@jit(inline="always")
def _sigmoid(z):
    one = type(z)(1.0)
    if z >= 0.0:
        return one / (one + exp(-z))
    e = exp(z)
    return e / (one + e)


LOG2E, LN2_HI, LN2_LO = 1.4426950408889634, 6.93147180369123816490e-01, 1.90821492927058770002e-10
# float32's split of ln 2 (fdlibm's expf): LN2_HI32 has 15 significant bits, so q LN2_HI32 is
# exact for the |q| <= 29 of _tanh32
LN2_HI32, LN2_LO32 = 6.9314575195e-01, 1.4286067653e-06


@jit(inline="always")
def _exp_reduced(r):
    """exp(r) for |r| <= ln(2)/2: Taylor series to r^13 (truncation < 5e-18) in Estrin's
    scheme: pairs of terms, then pairs of pairs, ..., joined with r^2, r^4, r^8, so the
    longest chain of dependent multiply-adds is 5 long, not Horner's 13, and a vectorised
    loop over many values is not held up by that chain."""
    r2 = r * r
    r4 = r2 * r2
    p01 = 1.0 + r
    p23 = 1.0 / 2.0 + r * (1.0 / 6.0)
    p45 = 1.0 / 24.0 + r * (1.0 / 120.0)
    p67 = 1.0 / 720.0 + r * (1.0 / 5040.0)
    p89 = 1.0 / 40320.0 + r * (1.0 / 362880.0)
    p1011 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0)
    p1213 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0)
    p03 = p01 + r2 * p23
    p47 = p45 + r2 * p67
    p811 = p89 + r2 * p1011
    return (p03 + r4 * p47) + (r4 * r4) * (p811 + r4 * p1213)


@jit(inline="always")
def _exp_reduced32(r):
    """_exp_reduced in float32: the Taylor series to r^7 (truncation < 8e-9 relative, below
    float32's rounding, 2^-24 = 6e-8), the first half of _exp_reduced's Estrin scheme."""
    real = type(r)
    r2 = r * r
    r4 = r2 * r2
    p01 = real(1.0) + r
    p23 = real(1.0 / 2.0) + r * real(1.0 / 6.0)
    p45 = real(1.0 / 24.0) + r * real(1.0 / 120.0)
    p67 = real(1.0 / 720.0) + r * real(1.0 / 5040.0)
    return (p01 + r2 * p23) + r4 * (p45 + r2 * p67)


def _tanh64(z, lo, n):
    """z[lo:lo+n] <- tanh(z[lo:lo+n]) = 1 - 2 / (exp(2z) + 1) in place, |error| < 4e-16.
    llvmlite has no vector math library, so math.exp would stay a scalar call per element;
    instead exp is written out as exp(x) = 2^q exp(r), q = round(x / ln 2), 2^q built as
    the bits of a float64 (exponent field q + 1023): one loop free of calls and memory
    scratch, which LLVM vectorises. q is rounded by np.rint, an intrinsic no fastmath flag
    may rewrite (the trick (y + 1.5 2^52) - 1.5 2^52 is exact only evaluated as written), so
    the per-sample kernel can inline this under its flags."""
    for i in range(lo, lo + n):
        x = min(max(2.0 * z[i], -40.0), 40.0)  # tanh(20) is 1.0 in float64; nan stays nan
        q = np.rint(x * LOG2E)
        two_q = np.int64((np.int64(q) + 1023) << 52).view(np.float64)  # a bit cast
        z[i] = 1.0 - 2.0 / (_exp_reduced((x - q * LN2_HI) - q * LN2_LO) * two_q + 1.0)


def _tanh32(z, lo, n):
    """_tanh64 in float32, |error| < 1.8e-7 (1.5 float32 eps, as _tanh64's is 2 float64 eps):
    2^q built as the bits of a float32 (exponent field q + 127, shifted by 23), exp(r) to r^7,
    and the clamp where tanh is 1.0 in float32."""
    real = z.dtype.type
    for i in range(lo, lo + n):
        x = min(max(real(2.0) * z[i], real(-20.0)), real(20.0))  # tanh(10) is 1.0 in float32
        q = np.rint(x * real(LOG2E))
        two_q = np.int32((np.int32(q) + 127) << 23).view(np.float32)  # a bit cast
        r = (x - q * real(LN2_HI32)) - q * real(LN2_LO32)
        z[i] = real(1.0) - real(2.0) / (_exp_reduced32(r) * two_q + real(1.0))


def _tanh(z, lo, n):
    """z[lo:lo+n] <- tanh(z[lo:lo+n]) in place: _tanh64 or _tanh32, by z's dtype. In a kernel
    the choice is made when it is compiled (the overload below), and the twin's code is
    inlined as an inline="always" function's would be, under the kernel's fastmath flags.
    The twins clamp with min and max, not a conditional expression: numba's inlining of an
    overload warns (NumbaIRAssumptionWarning) about the branches of one; max(x, c) is the
    same select, and keeps a nan x (c > nan is false)."""
    (_tanh32 if z.dtype == np.float32 else _tanh64)(z, lo, n)


@overload(_tanh, inline="always")
def _tanh_of_dtype(z, lo, n):
    return _tanh32 if z.dtype == types.float32 else _tanh64


@jit(inline="always")
def _activate(z, lo, n, act):
    """z[lo:lo+n] <- f(z[lo:lo+n]) in place on a 1-D array (no view of the part made)."""
    if act == TANH:
        _tanh(z, lo, n)
    elif act == SIGMOID:
        for i in range(lo, lo + n):
            z[i] = _sigmoid(z[i])
    else:
        zero = z.dtype.type(0.0)
        for i in range(lo, lo + n):
            z[i] = z[i] if z[i] > 0.0 else zero


@jit(inline="always")
def _fprime(a, act):
    """f'(z) from the activation's output a; for relu this is relu'(0) = 0 (a = 0 for all
    z <= 0), so a relu'(0) other than 0 needs z itself: see _relu_prime."""
    real = type(a)
    if act == SIGMOID:
        return a * (real(1.0) - a)
    if act == TANH:
        return real(1.0) - a * a
    return real(1.0) if a > 0.0 else real(0.0)


@jit(inline="always")
def _relu_prime(z, grad0):
    real = type(z)
    return real(1.0) if z > 0.0 else (grad0 if z == 0.0 else real(0.0))


@jit()
def _output(z, out):
    """The output activation, in place on one sample's z(L) (1-D) or a batch's (2-D rows)."""
    if out == SIGMOID_OUT:
        for k in np.ndindex(z.shape):
            z[k] = _sigmoid(z[k])
    elif out == SOFTMAX:
        r = z.reshape((-1, z.shape[-1]))
        for n in range(r.shape[0]):
            top = r[n].max()
            for k in range(r.shape[1]):
                r[n, k] = exp(r[n, k] - top)
            r[n] /= r[n].sum()


@jit(inline="always")
def _keeps_z(maths):
    """Whether the backward pass needs z(l) itself: the grad bug, or relu'(0) != 0."""
    return maths.grad_bug or (maths.activation == RELU and maths.relu_grad0 != 0.0)


# The per-sample kernels index per-layer views (W = theta[...].reshape) with plain range
# variables, never flat index arithmetic (theta[r + i]): numba can then prove the indices
# non-negative, drop its wrap-around checks, and LLVM vectorises the inner loops.

@jit(inline="always")
def _dot(row, a, n):
    """sum_i row[i] a[i] with 4 accumulators, so the adds do not wait on each other."""
    s0 = s1 = s2 = s3 = row.dtype.type(0.0)
    i = 0
    while i + 4 <= n:
        s0 += row[i] * a[i]
        s1 += row[i + 1] * a[i + 1]
        s2 += row[i + 2] * a[i + 2]
        s3 += row[i + 3] * a[i + 3]
        i += 4
    for i in range(i, n):
        s0 += row[i] * a[i]
    return (s0 + s1) + (s2 + s3)


@jit(inline="always")
def _layer(theta, net, buf, l):
    """Views of layer l: W (n_l+1, n_l), b (n_l+1,), its input part and output part of buf."""
    sizes, woff, boff, aoff = net.sizes, net.woff, net.boff, net.aoff
    nin, nout = sizes[l], sizes[l + 1]
    return (theta[woff[l]:boff[l]].reshape((nout, nin)), theta[boff[l]:boff[l] + nout],
            buf[aoff[l]:aoff[l] + nin], buf[aoff[l + 1]:aoff[l + 1] + nout])


@jit(inline="always")
def _part(buf, net, l):
    """Layer l's part of a flat per-sample buffer (a(l), z(l) or delta(l))."""
    return buf[net.aoff[l]:net.aoff[l] + net.sizes[l]]


@jit()
def _forward(theta, net, A, Z, x, maths):
    """a(0) = x (f(x) with input_activation), then a(l) = f(W a(l-1) + b) layer by layer
    into the flat buffer A; Z gets u(0) = x and z(l) when _keeps_z(maths)."""
    act = maths.activation
    keep_z = _keeps_z(maths)
    L = net.sizes.shape[0] - 1
    a0 = _part(A, net, 0)
    a0[:] = x
    if keep_z:
        _part(Z, net, 0)[:] = x  # the raw input, even under input_activation
    if maths.input_activation:
        _activate(a0, 0, a0.shape[0], act)
    for l in range(L):
        W, b, a, z = _layer(theta, net, A, l)
        for j in range(z.shape[0]):
            z[j] = _dot(W[j], a, a.shape[0]) + b[j]
        if l < L - 1:
            if keep_z:
                _part(Z, net, l + 1)[:] = z
            _activate(z, 0, z.shape[0], act)
    _output(_part(A, net, L), maths.output)


@jit(inline="always")
def _times_fprime(d, a, z, maths):
    """d <- d * f'(z) elementwise, one branch per layer, not per element."""
    act, grad0 = maths.activation, maths.relu_grad0
    if act == RELU and grad0 != 0.0:
        for i in range(d.shape[0]):
            d[i] *= _relu_prime(z[i], grad0)
    else:
        for i in range(d.shape[0]):
            d[i] *= _fprime(a[i], act)


# Per-sample SGD keeps every W(l) transposed, as WT (n_l, n_l+1): row i holds the weights out
# of input i. The forward pass adds a(l-1)[i] WT[i] into z, four rows at a time; the backward
# pass reads row i once for both delta(l-1)[i] = WT[i] . delta(l) (old weights) and its own
# update WT[i] <- WT[i] (1 - lr l2) - lr u[i] delta(l), two rows per pass over delta(l).
# Every inner loop runs along a row, contiguous, so LLVM vectorises it.
#
# What else the per-sample kernel does to stay near its bound (see docs/speed.md):
# - Rows, biases and each layer's part of a, z and delta are padded with zeros to a multiple
#   of one AVX-512 register, VECTOR_BYTES: 8 doubles or 16 floats (docs/speed.md compares
#   twice and four times that in float64). LLVM
#   leaves what its vector loop does not cover to a scalar loop, whose dot product waits on
#   one add after the other; the layers here are 1-100 wide, so unpadded much of their work
#   would run there. The pad weights stay zero: they are updated with delta = 0, and the
#   activations of the pad (f(0), computed with the rest so that loop has no remainder
#   either) are never an input row. The vectors start on a 64-byte boundary, so every row
#   is aligned: no vector load or store straddles two cache lines.
# - It indexes flat vectors (weights, a, z, delta) with uint64 offsets: no per-layer views,
#   lists or slice assignments, each a library call per layer and sample, and unsigned
#   indices need no wrap-around check, which would keep LLVM from vectorising.
# - Its vectorised loops run one SIMD register per iteration (see _compile_uninterleaved).
# - It is compiled with two fastmath flags: "contract" (a multiply-add is one FMA, rounded
#   once) and "reassoc" (a dot product may be summed in a few partial sums, as BLAS and the
#   C backend's omp simd do); no others, so inf and nan still propagate. The activations are
#   inlined under the same flags (tanh is written to allow it), with no call and no view
#   per layer: a call costs a reference count up and down for each array it is passed.
PER_SAMPLE_FLAGS = {"contract", "reassoc"}
VECTOR_BYTES = 64
U0, U1, U2, U3, U4 = (np.uint64(k) for k in range(5))  # unsigned literals for indices


class Padded(NamedTuple):
    """The per-sample kernel's padded layout (_padded_layout), all uint64 arrays: real and
    padded layer widths; where WT(l) (sizes[l] rows of widths[l+1]) and b(l) (widths[l+1])
    start in the padded weights; layer l's part of a flat per-sample buffer (widths[l] long)."""
    sizes: np.ndarray
    widths: np.ndarray
    woff: np.ndarray
    boff: np.ndarray
    aoff: np.ndarray


def _itemsize(like):
    """The bytes of one number of like's dtype, uint64: in a kernel a constant (the overload
    below), where like.itemsize would be read from the array at run time and LLVM would no
    longer know the bounds of what is computed from it."""
    return np.uint64(like.itemsize)


@overload(_itemsize, inline="always")
def _itemsize_of_dtype(like):
    size = np.uint64(like.dtype.bitwidth // 8)
    return lambda like: size


@jit(inline="always")
def _per_register(like):
    """How many numbers of like's dtype one vector register holds: 8 doubles, 16 floats."""
    return np.uint64(VECTOR_BYTES) // _itemsize(like)


@jit()
def _aligned_zeros(n, like):
    """np.zeros(n) of like's dtype starting on a 64-byte boundary: with rows of whole AVX-512
    registers every row is then aligned, and no vector load or store straddles two cache
    lines."""
    pad = _per_register(like)
    buf = np.zeros(n + pad, like.dtype)
    o = (pad - (np.uint64(buf.ctypes.data) // _itemsize(like)) % pad) % pad
    return buf[o:o + n]


@jit()
def _padded_layout(sizes, pad):
    """Padded(sizes=n, widths=p, woff=wo, boff=bo, aoff=ao), uint64: real and padded layer
    widths (n_l rounded up to a multiple of pad), where WT(l) (n_l rows of p_l+1) and b(l)
    (p_l+1) start in the padded weights, and layer l's part of a flat per-sample buffer (p_l
    long)."""
    L = sizes.shape[0] - 1
    n = sizes.astype(np.uint64)
    p = ((n + (pad - U1)) // pad) * pad
    wo, bo, ao = np.zeros(L, np.uint64), np.zeros(L, np.uint64), np.zeros(L + 2, np.uint64)
    k = U0
    for l in range(L):
        wo[l] = k
        bo[l] = k + n[l] * p[l + 1]
        k = bo[l] + p[l + 1]
    for l in range(L + 1):
        ao[l + 1] = ao[l] + p[l]
    return Padded(n, p, wo, bo, ao)


@jit()
def _to_padded(theta, net, T, pnet, back):
    """T (zeroed) <- theta's W(l) transposed and b(l), padded; back: theta <- T instead."""
    woff, boff = net.woff, net.boff
    n, p, wo, bo = pnet.sizes, pnet.widths, pnet.woff, pnet.boff
    for l in range(n.shape[0] - 1):
        nin, nout, w, b = n[l], n[l + 1], np.uint64(woff[l]), np.uint64(boff[l])
        for j in range(nout):
            for i in range(nin):
                if back:
                    theta[w + j * nin + i] = T[wo[l] + i * p[l + 1] + j]
                else:
                    T[wo[l] + i * p[l + 1] + j] = theta[w + j * nin + i]
            if back:
                theta[b + j] = T[bo[l] + j]
            else:
                T[bo[l] + j] = theta[b + j]


@jit(inline="always")
def _fprime_at(A, Z, k, act, relu_z, grad0):
    """f'(z) at flat index k, from a = A[k], or from z = Z[k] when relu'(0) is not 0."""
    return _relu_prime(Z[k], grad0) if relu_z else _fprime(A[k], act)


@jit(inline="always")
def _forward_padded(T, pnet, A, Z, X, s, maths):
    """_forward of sample X[s] on the padded transposed weights T into padded A and Z (see
    above)."""
    act, out = maths.activation, maths.output
    keep_z = _keeps_z(maths)
    n, p, wo, bo, ao = pnet.sizes, pnet.widths, pnet.woff, pnet.boff, pnet.aoff
    L = n.shape[0] - 1
    for i in range(n[0]):
        A[i] = X[s, i]
    if keep_z:
        for i in range(n[0]):
            Z[i] = X[s, i]  # the raw input, even under input_activation
    if maths.input_activation:
        _activate(A, U0, n[0], act)
    for l in range(L):
        nin, width, ai, zo = n[l], p[l + 1], ao[l], ao[l + 1]
        for j in range(width):
            A[zo + j] = T[bo[l] + j]
        i = U0
        while i + U4 <= nin:  # z += a[i] WT[i] + ... + a[i+3] WT[i+3]: z once per 4 rows
            a0, a1, a2, a3 = A[ai + i], A[ai + i + U1], A[ai + i + U2], A[ai + i + U3]
            r0 = wo[l] + i * width
            r1, r2, r3 = r0 + width, r0 + U2 * width, r0 + U3 * width
            for j in range(width):
                A[zo + j] += (a0 * T[r0 + j] + a1 * T[r1 + j]) + (a2 * T[r2 + j] + a3 * T[r3 + j])
            i += U4
        while i < nin:
            a0, r0 = A[ai + i], wo[l] + i * width
            for j in range(width):
                A[zo + j] += a0 * T[r0 + j]
            i += U1
        if l < L - 1:
            if keep_z:
                for j in range(n[l + 1]):
                    Z[zo + j] = A[zo + j]
            _activate(A, zo, width, act)  # the pad too: no scalar remainder
    if out != LINEAR:
        _output(A[ao[L]:ao[L] + n[L]], out)


@njit(cache=True, error_model="numpy", fastmath=PER_SAMPLE_FLAGS)
def _sgd_epoch(theta, net, X, Y, order, maths, lr):
    """Per-sample SGD over X[order] on padded transposed weights (see above), the backward
    pass fused with the update W <- W - lr (delta u^T + l2 W) = W (1 - lr l2) - (lr delta) u^T,
    where u = a(l-1), or x and z(l-1) under the grad bug."""
    real = theta.dtype.type
    act, scale, grad0 = maths.activation, maths.scale, maths.relu_grad0
    relu_z = act == RELU and grad0 != 0.0  # relu'(z) needs z itself
    pnet = _padded_layout(net.sizes, _per_register(theta))
    n, p, wo, bo, ao = pnet.sizes, pnet.widths, pnet.woff, pnet.boff, pnet.aoff
    L = n.shape[0] - 1
    T = _aligned_zeros(bo[L - 1] + p[L], theta)
    A, Z, D = (_aligned_zeros(ao[L + 1], theta), _aligned_zeros(ao[L + 1], theta),
               _aligned_zeros(ao[L + 1], theta))
    U = Z if maths.grad_bug else A  # what the weight gradient multiplies delta by
    decay = real(1.0) - lr * maths.l2
    _to_padded(theta, net, T, pnet, False)
    for s in order:
        _forward_padded(T, pnet, A, Z, X, s, maths)
        for j in range(n[L]):
            D[ao[L] + j] = scale * (A[ao[L] + j] - Y[s, j])  # dL/dz(L)
        for l in range(L - 1, -1, -1):
            nin, width, ui, do = n[l], p[l + 1], ao[l], ao[l + 1]
            if l == 0:  # first layer: no delta for the inputs
                for i in range(nin):
                    k, r = lr * U[ui + i], wo[l] + i * width
                    for j in range(width):
                        T[r + j] = T[r + j] * decay - k * D[do + j]
            else:
                i = U0
                while i + U2 <= nin:  # two rows per pass over delta(l)
                    k0, k1 = lr * U[ui + i], lr * U[ui + i + U1]
                    r0 = wo[l] + i * width
                    r1 = r0 + width
                    acc0 = acc1 = real(0.0)
                    for j in range(width):
                        dj = D[do + j]
                        w0, w1 = T[r0 + j], T[r1 + j]
                        acc0 += w0 * dj
                        acc1 += w1 * dj
                        T[r0 + j] = w0 * decay - k0 * dj
                        T[r1 + j] = w1 * decay - k1 * dj
                    D[ui + i] = acc0 * _fprime_at(A, Z, ui + i, act, relu_z, grad0)
                    D[ui + i + U1] = acc1 * _fprime_at(A, Z, ui + i + U1, act, relu_z, grad0)
                    i += U2
                while i < nin:
                    k, r = lr * U[ui + i], wo[l] + i * width
                    acc = real(0.0)  # delta(l-1)[i] from the old row, updating it on the way
                    for j in range(width):
                        w = T[r + j]
                        acc += w * D[do + j]
                        T[r + j] = w * decay - k * D[do + j]
                    D[ui + i] = acc * _fprime_at(A, Z, ui + i, act, relu_z, grad0)
                    i += U1
            for j in range(width):
                T[bo[l] + j] -= lr * D[do + j]
    _to_padded(theta, net, T, pnet, True)


@jit(inline="always")
def _weights(theta, net, l):
    """W(l+1) (n_l+1, n_l) and b(l+1) as views of a flat vector laid out like theta."""
    sizes, woff, boff = net.sizes, net.woff, net.boff
    return (theta[woff[l]:boff[l]].reshape((sizes[l + 1], sizes[l])),
            theta[boff[l]:boff[l] + sizes[l + 1]])


@jit()
def _work_size(sizes, m):
    """Length of _batch_gradient's scratch for a batch of m: a(1..L), two deltas, one gW."""
    gw = 0
    for l in range(sizes.shape[0] - 1):
        gw = max(gw, sizes[l] * sizes[l + 1])
    return m * (sizes[1:].sum() + 2 * sizes.max()) + gw


@jit(inline="always")
def _take(work, o, m, n):
    """(work[o:o + m n] as an (m, n) array, o + m n): the next piece of a flat scratch."""
    return work[o:o + m * n].reshape((m, n)), o + m * n


@jit()
def _batch_gradient(theta, net, X, Y, idx, maths, grad, work):
    """grad <- dJ/dtheta over the samples idx: the mean loss gradient plus l2 * W (with the
    quirks of maths). Matrix products go to BLAS; everything elementwise is one fused loop.
    Every array of a batch's size is a piece of work (_work_size long, made once per epoch):
    fresh arrays that large come from the system each time, with their page faults."""
    real = theta.dtype.type
    act, scale, l2, grad_bug = maths.activation, maths.scale, maths.l2, maths.grad_bug
    keep_z = _keeps_z(maths)
    sizes = net.sizes
    L = sizes.shape[0] - 1
    m = idx.shape[0]
    x = X[idx]  # (m, n_0)
    us = [x]  # u(l): x, then z(l) when keep_z
    a0 = x
    if maths.input_activation:
        a0 = x.copy()
        _activate(a0.reshape(-1), 0, a0.size, act)
    acts = [a0]  # a(l): (m, n_l)
    o = 0
    for l in range(L):
        W, b = _weights(theta, net, l)
        z, o = _take(work, o, m, sizes[l + 1])
        np.dot(acts[l], W.T, z)  # (m, n_l+1)
        for n in range(m):
            for j in range(z.shape[1]):
                z[n, j] += b[j]
        if l < L - 1:
            if keep_z:
                us.append(z.copy())
            _activate(z.reshape(-1), 0, z.size, act)
        else:
            _output(z, maths.output)
        acts.append(z)
    ping, pong = o, o + m * sizes.max()  # the two deltas, taking turns
    g_at = pong + m * sizes.max()
    delta, _ = _take(work, ping, m, sizes[L])  # (m, n_L) = dL/dz(L)
    for n in range(m):
        for j in range(delta.shape[1]):
            delta[n, j] = scale * (acts[L][n, j] - Y[idx[n], j])
    inv_m = real(1.0) / real(m)
    for l in range(L - 1, -1, -1):
        W, _ = _weights(theta, net, l)
        gW, gb = _weights(grad, net, l)
        g, _ = _take(work, g_at, sizes[l + 1], sizes[l])
        np.dot(delta.T, us[l] if grad_bug else acts[l], g)
        for j in range(gW.shape[0]):
            for i in range(gW.shape[1]):
                gW[j, i] = g[j, i] * inv_m + l2 * W[j, i]
        gb[:] = 0.0
        for n in range(m):
            for j in range(gb.shape[0]):
                gb[j] += delta[n, j]
        for j in range(gb.shape[0]):
            gb[j] *= inv_m
        if l:
            ping, pong = pong, ping
            below, _ = _take(work, ping, m, sizes[l])
            np.dot(delta, W, below)  # (m, n_l)
            delta = below
            # the whole batch as one flat loop: all three are C-contiguous (m, n_l)
            _times_fprime(delta.reshape(-1), acts[l].reshape(-1),
                          (us[l] if keep_z else acts[l]).reshape(-1), maths)


# Adam's scalars (1 - beta, the bias corrections, the step) are formed in float64 and rounded
# once to the run's dtype, as torch.optim forms them from Python floats. They live in these
# two functions (not inlined), so the kernel's own arithmetic is all in the run's dtype.
@jit(inline="never")
def _optimiser_constants(opt, like):
    """(lr, eps, beta2, 1 - beta1, 1 - beta2) in like's dtype."""
    real = like.dtype.type
    return (real(opt.lr), real(opt.eps), real(opt.beta2), real(1.0 - opt.beta1),
            real(1.0 - opt.beta2))


@jit(inline="never")
def _bias_corrected(opt, t, like):
    """(lr / (1 - beta1^t), sqrt(1 - beta2^t)) after t steps, in like's dtype."""
    real = like.dtype.type
    return real(opt.lr / (1.0 - opt.beta1 ** t)), real(sqrt(1.0 - opt.beta2 ** t))


@jit()
def _batch_epoch(theta, net, X, Y, order, maths, opt, moments):
    """Mini-batch SGD or Adam (torch.optim.Adam's arithmetic) over X[order]; moments, Adam's
    M and G, are updated in place. Returns Adam's step count after the epoch."""
    B, t = opt.batch, opt.t
    lr, eps, b2, c1, c2 = _optimiser_constants(opt, theta)
    M, G = moments.first, moments.second
    grad = np.empty_like(theta)
    work = np.empty(_work_size(net.sizes, min(B, order.shape[0])), theta.dtype)
    for start in range(0, order.shape[0], B):
        _batch_gradient(theta, net, X, Y, order[start:start + B], maths, grad, work)
        if opt.optimizer == SGD:
            for k in range(theta.shape[0]):
                theta[k] -= lr * grad[k]
        else:
            t += 1
            step, sqrt_bc2 = _bias_corrected(opt, t, theta)
            for k in range(theta.shape[0]):
                g = grad[k]
                M[k] += c1 * (g - M[k])
                G[k] = G[k] * b2 + c2 * g * g
                theta[k] -= step * (M[k] / (sqrt(G[k]) / sqrt_bc2 + eps))
    return t


@jit()
def _predict(theta, net, A, Z, X, maths):
    sizes = net.sizes
    L = sizes.shape[0] - 1
    out = np.empty((X.shape[0], sizes[L]), theta.dtype)
    for n in range(X.shape[0]):
        _forward(theta, net, A, Z, X[n], maths)
        out[n] = _part(A, net, L)
    return out


def from_numpy(params, hp, device="cpu"):
    sizes = np.array([params[0][0].shape[1]] + [W.shape[0] for W, _ in params], dtype=np.int64)
    woff, boff, k = [], [], 0
    for W, b in params:
        woff.append(k)
        boff.append(k + W.size)
        k += W.size + b.size
    theta = np.concatenate([np.concatenate([np.ravel(W), b]) for W, b in params])
    aoff = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    net = Net(sizes=sizes, woff=np.array(woff, dtype=np.int64),
              boff=np.array(boff, dtype=np.int64), aoff=aoff)
    dtype = np.dtype(hp.dtype)
    real = dtype.type  # the records' floats in the run's dtype, as the arrays (see Precision)
    maths = Maths(activation=ACTIVATION[hp.activation], output=OUTPUT[hp.loss],
                  scale=real(DELTA_SCALE[hp.loss]), l2=real(hp.l2),
                  input_activation=bool(hp.input_activation), grad_bug=bool(hp.grad_bug),
                  relu_grad0=real(hp.relu_grad0))
    return {"hp": hp, "theta": theta.astype(dtype), "net": net, "maths": maths,
            "bufs": (np.zeros(aoff[-1], dtype), np.zeros(aoff[-1], dtype)),  # A, Z for predict
            "moments": Moments(np.zeros(k, dtype), np.zeros(k, dtype)),  # Adam's M, G
            "t": 0}  # Adam's step count


def to_numpy(state):  # float64 copies
    return [tuple(a.astype(np.float64) for a in _weights(state["theta"], state["net"], l))
            for l in range(len(state["net"].sizes) - 1)]


def _in_dtype(state, *arrays):
    """X, Y, ... as arrays of the run's dtype (themselves where they are already)."""
    return (np.asarray(A, state["theta"].dtype) for A in arrays)


def _compile_uninterleaved(kernel, args):
    """kernel, compiled for args' types (once) with LLVM's loop vectoriser told to run one
    SIMD register per iteration, as clang's `#pragma clang loop interleave_count(1)` would,
    which numba cannot express. By default it unrolls a vectorised loop 2-4 times, which
    suits long loops; the per-sample kernel's rows are whole registers long but only 1-7 of
    them, so the unrolled body is mostly skipped and the rest runs through a remainder loop.
    The option is global to LLVM, so it is set only while this kernel compiles, under
    numba's compiler lock (no other compilation sees it); the code is cached as usual."""
    types_ = tuple(typeof(a) for a in args)
    compiled = getattr(kernel, "overloads", None)  # None: a plain function (NUMBA_DISABLE_JIT)
    if compiled is not None and types_ not in compiled:
        with global_compiler_lock:
            llvm.set_option("", "-force-vector-interleave=1")
            try:
                kernel.compile(types_)
            finally:
                llvm.set_option("", "-force-vector-interleave=0")  # 0: LLVM's own choice
    return kernel


def train_epoch(state, X, Y, order):
    hp, order = state["hp"], np.asarray(order, dtype=np.int64)
    X, Y = _in_dtype(state, X, Y)
    real = state["theta"].dtype.type
    if hp.per_sample_sgd:  # the published per-sample loop
        args = (state["theta"], state["net"], X, Y, order, state["maths"], real(hp.lr))
        _compile_uninterleaved(_sgd_epoch, args)(*args)
        return
    opt = Opt(optimizer=OPTIMIZER[hp.optimizer], batch=int(hp.batch(len(order))), lr=float(hp.lr),
              beta1=float(hp.beta1), beta2=float(hp.beta2), eps=float(hp.eps), t=int(state["t"]))
    state["t"] = _batch_epoch(state["theta"], state["net"], X, Y, order, state["maths"], opt,
                              state["moments"])


def predict(state, X):
    A, Z = state["bufs"]
    theta = state["theta"]
    out = _predict(theta, state["net"], A, Z, np.ascontiguousarray(X, dtype=theta.dtype),
                   state["maths"])
    return np.asarray(out, np.float64)  # a float64 copy of a float32 run's outputs


def gradients(state, X, Y):
    theta = state["theta"]
    grad = np.empty_like(theta)
    work = np.empty(_work_size(state["net"].sizes, len(X)), theta.dtype)
    _batch_gradient(theta, state["net"], *_in_dtype(state, X, Y), np.arange(len(X)),
                    state["maths"], grad, work)
    return to_numpy({**state, "theta": grad})


def synchronize(state):
    """Nothing to wait for: the work is done when train_epoch returns."""
