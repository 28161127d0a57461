"""Facts about the machine a run or a measurement ran on, and its thread pools."""
import os
import platform
import socket
import subprocess
import sys
import time
from functools import lru_cache

from .. import impls


def default_jobs():
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@lru_cache(maxsize=None)
def cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what platform knows of it."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_info():
    """Where a run ran: host, CPU, cores and the numeric libraries (BLAS via threadpoolctl)."""
    from importlib.metadata import PackageNotFoundError, version
    from threadpoolctl import threadpool_info

    cpu = cpu_model()
    libs = {}
    for name in ("numpy", "numba", "torch"):
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            libs[name] = None
    load_blas()
    blas = sorted({f"{i.get('internal_api')} {i.get('version')} ({i.get('threading_layer', '?')})"
                   for i in threadpool_info() if i.get("user_api") == "blas"})
    return {"host": socket.gethostname(), "cpu_model": cpu, "cpu_cores": default_jobs(),
            "python": platform.python_version(), **libs, "blas": "; ".join(blas) or None}


def load_blas():
    """Load numpy's BLAS and scipy's copy (numba's kernels call BLAS through it), so that
    threadpoolctl sees, limits and reports both in every process alike."""
    import numpy  # noqa: F401
    try:
        import scipy.linalg.cython_blas  # noqa: F401
    except ImportError:
        pass


def one_thread_per_run():
    """A worker runs one training at a time per thread: BLAS and torch get one thread each,
    so runs in flight never multiply the cores they use. Set for the whole process, before
    every run (under a millisecond), so libraries loaded by an earlier run are covered too."""
    from threadpoolctl import threadpool_limits
    load_blas()
    threadpool_limits(1)
    if "torch" in sys.modules and sys.modules["torch"].get_num_threads() != 1:
        sys.modules["torch"].set_num_threads(1)



def limit_threads(n):
    """One BLAS/torch thread pool size for every engine (the comparison is per core)."""
    from threadpoolctl import threadpool_limits
    load_blas()  # scipy's copy too (numba's BLAS): a library loaded later is not limited
    limiter = threadpool_limits(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    if n == 1 and "XLA_FLAGS" not in os.environ:  # read when JAX first runs something
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return limiter


def measure_peak(n=1024, repeat=5, dtype="float64"):
    """GFLOP/s of a `dtype` n x n matmul, best of `repeat`, under the current thread limit."""
    import numpy as np
    rng = np.random.default_rng(0)
    A, B = rng.random((n, n)).astype(dtype), rng.random((n, n)).astype(dtype)
    A @ B
    best = min(_seconds(lambda: A @ B) for _ in range(repeat))
    return 2 * n ** 3 / best / 1e9


def _seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# Variables that make a BLAS use other kernels than it would pick for this CPU itself
FORCING = ("OPENBLAS_CORETYPE", "MKL_DEBUG_CPU_TYPE", "MKL_ENABLE_INSTRUCTIONS")
_PEAK_CODE = """
import json, sys, time
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
threadpool_limits(1)
n, repeat, dtype = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
A, B = np.random.default_rng(0).random((2, n, n)).astype(dtype)
A @ B
best = float("inf")
for _ in range(repeat):
    t0 = time.perf_counter(); A @ B; best = min(best, time.perf_counter() - t0)
lib = next((i for i in threadpool_info() if i.get("user_api") == "blas"
            and "numpy" in i.get("filepath", "")), None) or {}
print(json.dumps({"gflops": 2 * n ** 3 / best / 1e9, "library": lib.get("internal_api"),
                  "version": lib.get("version"), "kernels": lib.get("architecture")}))
"""


@lru_cache(maxsize=None)
def reference_peak(n=1024, repeat=5, dtype="float64"):
    """The peak every "% of peak" is stated against: numpy's BLAS, one thread, a `dtype`
    (float64, or float32 for the float32 runs: sgemm) n x n matmul, best of `repeat`, with
    the kernels the library picks for this CPU by itself.
    It runs in a fresh Python without the variables that force other kernels (FORCING), so
    the number is the same whatever this process's environment says (OPENBLAS_CORETYPE=Haswell
    makes OpenBLAS run AVX2 kernels on an AVX-512 CPU, at about 60 % of their rate).
    {"gflops", "blas": "openblas 0.3.31, SkylakeX kernels"}; None if it cannot run."""
    import json
    env = {k: v for k, v in os.environ.items() if k not in FORCING}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        done = subprocess.run([sys.executable, "-c", _PEAK_CODE, str(n), str(repeat), dtype], env=env,
                              capture_output=True, text=True, timeout=300)
        got = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return {"gflops": got["gflops"],
            "blas": f"{got['library']} {got['version']}, {got['kernels']} kernels"}


def theoretical_peak(cpuinfo="/proc/cpuinfo"):
    """Single-core float64 FMA peak from what the CPU says of itself: vector lanes (8 with
    AVX-512, 4 with AVX2, 2 with SSE2) x 2 flops per FMA x 2 FMA pipes (assumed: x86 cores
    since Haswell; Zen 4 runs a 512-bit FMA as two 256-bit halves) x the clock /proc/cpuinfo
    reports (in a VM the base clock: a boost clock makes the real peak higher). None where
    /proc/cpuinfo is missing. {"gflops", "how"}."""
    try:
        with open(cpuinfo) as f:
            first = f.read().split("\n\n")[0]
    except OSError:
        return None
    info = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}
    flags = set(info.get("flags", "").split())
    try:
        ghz = float(info["cpu MHz"]) / 1e3
    except (KeyError, ValueError):
        return None
    lanes, isa = next(((n, isa) for isa, n in (("avx512f", 8), ("avx", 4), ("sse2", 2))
                       if isa in flags), (1, "scalar"))
    per_cycle = lanes * (2 if "fma" in flags else 1) * 2
    return {"gflops": per_cycle * ghz,
            "how": f"{isa}: {per_cycle} flops per cycle (2 pipes assumed) x {ghz:.2f} GHz reported"}


def peaks(dtypes=("float64",)):
    """What every "% of peak" is stated against, and what stands beside it: {"peak_gflops",
    "peak_blas" (reference_peak, or this process's BLAS where no fresh Python can run),
    "blas_in_use" (the kernels this process's numpy runs), "theoretical_gflops",
    "theoretical_how"}, all float64's; for each other dtype asked, "peak_gflops_<dtype>"
    (float32: the same matmul in float32, the same way)."""
    out = {}
    for dtype in dict.fromkeys(("float64", *dtypes)):
        ref = reference_peak(dtype=dtype)
        if ref is None:
            ref = {"gflops": measure_peak(dtype=dtype),
                   "blas": f"{peak_blas()}, measured in this process"}
        else:
            ref = {**ref, "blas": ref["blas"] + " as the library picks them for this CPU"}
        if dtype == "float64":
            out.update(peak_gflops=ref["gflops"], peak_blas=ref["blas"])
        else:
            out[f"peak_gflops_{dtype}"] = ref["gflops"]
    theory = theoretical_peak() or {}
    return {**out, "blas_in_use": peak_blas(),
            "theoretical_gflops": theory.get("gflops"), "theoretical_how": theory.get("how")}


def peak_blas():
    """numpy's BLAS in this process: library, version and the kernels it picked (OpenBLAS
    picks by CPU unless OPENBLAS_CORETYPE says otherwise)."""
    from threadpoolctl import threadpool_info
    load_blas()
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    lib = next((i for i in libs if "numpy" in i.get("filepath", "")), libs[0] if libs else None)
    if lib is None:
        return None
    forced = os.environ.get("OPENBLAS_CORETYPE") if lib.get("internal_api") == "openblas" else None
    return (f"{lib.get('internal_api')} {lib.get('version')}, {lib.get('architecture')} kernels"
            + (f" (OPENBLAS_CORETYPE={forced} in the environment)" if forced else ""))


def cc_version():
    """The C backend's compiler, first line of `cc --version`, or None."""
    cc = impls.find_tool("cc")
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True,
                              timeout=60).stdout.splitlines()[0] if cc else None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def gpu_name():
    """The CUDA device torch sees, where torch is loaded and has one; else None."""
    torch = sys.modules.get("torch")
    return torch.cuda.get_device_name(0) if torch is not None and torch.cuda.is_available() else None
