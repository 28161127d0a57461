"""asv suite for ffnbench: epoch time, test error and peak memory across commits.

Every engine gets FFNBENCH_BENCH_THREADS threads (default 1; 0 leaves the pools alone).
The reference machine has 2 shared cores; with 2-thread BLAS/OpenMP pools the same epoch
varied up to 100-fold whenever another process (asv's own included) took a core. The
variables cover engines imported after this package; _common.py limits the pools that
are already loaded (asv's runner imports numpy, via pympler, before the suite).
"""
import os

THREADS = int(os.environ.get("FFNBENCH_BENCH_THREADS", "1"))
if THREADS:
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[_var] = str(THREADS)
