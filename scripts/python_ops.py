"""What one per-sample SGD step of the pure-Python backend costs per weight, operation by
operation, under whichever CPython runs this (no dependencies): `python3.11 scripts/python_ops.py`,
then the same with 3.12 / 3.13 to see what a newer interpreter (and math.sumprod) buys.

The rows are the layer shapes of the [50,30,20,10,5] net (11 inputs, 1 output); each
operation is timed over all of them, best of 7, and reported in ns per weight touched.
"""
import math
import platform
import random
import sys
import timeit
from operator import mul

SIZES = (11, 50, 30, 20, 10, 5, 1)
rng = random.Random(0)
LAYERS = [[[rng.uniform(-0.3, 0.3) for _ in range(nin)] for _ in range(nout)]
          for nin, nout in zip(SIZES[:-1], SIZES[1:])]
ACTS = [[rng.uniform(-1, 1) for _ in range(n)] for n in SIZES]
WEIGHTS = sum(nin * nout for nin, nout in zip(SIZES[:-1], SIZES[1:]))
BACK = WEIGHTS - SIZES[0] * SIZES[1]  # no delta for the inputs


def forward_map():  # the backend's forward: one sum(map(mul, row, a)) per unit
    for W, a in zip(LAYERS, ACTS):
        [sum(map(mul, row, a)) for row in W]


def forward_sumprod():  # Python 3.12+: math.sumprod (extended-precision accumulation)
    for W, a in zip(LAYERS, ACTS):
        [math.sumprod(row, a) for row in W]


def backward_columns():  # the backend's W^T delta: sum(map(mul, col, delta)) over zip(*W)
    for W, d in zip(LAYERS[1:], ACTS[2:]):
        [sum(map(mul, col, d)) for col in zip(*W)]


def update_comprehension():  # the update with the decay: two multiplies and a subtract
    for W, a, d in zip(LAYERS, ACTS, ACTS[1:]):
        W[:] = [[w * 0.999 - k * ai for w, ai in zip(row, a)] for row, k in zip(W, d)]


def update_scaled():  # the backend's update: the decay in a running scale, one multiply
    for W, a, d in zip(LAYERS, ACTS, ACTS[1:]):
        W[:] = [[w - c * ai for w, ai in zip(row, a)] for row, c in zip(W, d)]


def float_alloc():  # the floor of the update: one float object made per weight
    for W in LAYERS:
        for row in W:
            [w * 0.999 for w in row]


OPS = [("forward sum(map(mul))", forward_map, WEIGHTS),
       ("backward columns zip(*W)", backward_columns, BACK),
       ("update with decay (before)", update_comprehension, WEIGHTS),
       ("update, running scale", update_scaled, WEIGHTS),
       ("floor: one float op per weight", float_alloc, WEIGHTS)]
if hasattr(math, "sumprod"):
    OPS.insert(1, ("forward math.sumprod", forward_sumprod, WEIGHTS))


def main():
    print(f"CPython {platform.python_version()} ({sys.executable})")
    print(f"{'operation':34} ns/weight")
    step = 0.0
    for name, fn, per in OPS:
        t = min(timeit.repeat(fn, number=200, repeat=7)) / 200 / per * 1e9
        print(f"{name:34} {t:6.1f}")
        if "sumprod" not in name and "floor" not in name and "before" not in name:
            step += t * per
    print(f"one step (forward, backward, update): {step / 1e3:.0f} µs, "
          f"{6 * WEIGHTS / step:.3f} GFLOP/s at 6 flops per weight")


if __name__ == "__main__":
    main()
