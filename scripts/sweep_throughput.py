"""Sweep throughput in runs per second: in-process, the local process pool, and Dask
LocalClusters of 1 and 2 single-threaded workers, on the same runs (distinct seeds, a fresh
cache each time, so every run is trained).

    python scripts/sweep_throughput.py [--runs 60] [--epochs 160] [--repeat 3] [--out REPORT]

Each engine is started and warmed up (one run per worker: imports, numba's cached kernels)
before the clock starts, so the numbers are steady-state throughput, not start-up; the
engines are timed in turns and the best of --repeat timings counts (as timeit does: other
processes only ever slow a run). Beside
runs/s it reports the seconds a run spends training inside its worker: when 2 workers give
less than twice 1 worker while runs themselves got slower, the cores were shared (other
processes, or two vCPUs that are one physical core); when runs kept their speed, the loss
is the engine's own overhead between runs.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ffnbench.core.config import TrainConfig  # noqa: E402
from ffnbench.run import executors, grid, machine  # noqa: E402
from ffnbench.run.cache import Cache  # noqa: E402

ENGINES = {  # label -> open_executor arguments
    "in-process (1 run at a time)": dict(engine="local", jobs=1),
    "local pool, 2 processes": dict(engine="local", jobs=2),
    "Dask LocalCluster, 1 worker": dict(engine="dask", workers=1),
    "Dask LocalCluster, 2 workers": dict(engine="dask", workers=2),
}


def measure(engines, configs, warm, repeat):
    """{label: (best runs per second, mean seconds per run inside the worker then)}: all
    engines are open at once and timed in turns, so a busy spell hits them alike."""
    opened = {}
    best = dict.fromkeys(engines, (0.0, 0.0))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for label, options in engines.items():
                opened[label] = executors.open_executor(**options, log=open(os.devnull, "w"))
                executor, in_flight = opened[label]
                grid.run_grid(warm, executor, Cache(Path(tmp) / f"warm {label}"),
                              in_flight=in_flight, progress=False)
            for k in range(repeat):
                for label, (executor, in_flight) in opened.items():
                    t0 = time.perf_counter()
                    results, _ = grid.run_grid(configs, executor, Cache(Path(tmp) / f"{k} {label}"),
                                               in_flight=in_flight, progress=False)
                    rate = len(configs) / (time.perf_counter() - t0)
                    run = sum(r["run_seconds"] for r in results) / len(results)
                    best[label] = max(best[label], (rate, run))
                    print(f"{label}: {rate:.2f} runs/s", file=sys.stderr)
    finally:
        for executor, _ in opened.values():
            executors.close_executor(executor)
    return best


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=60, help="timed runs per engine (default %(default)s)")
    p.add_argument("--epochs", type=int, default=160, help="epochs per run, no early stopping "
                   "(default %(default)s: runs of about 0.1 s or more on red wine)")
    p.add_argument("--repeat", type=int, default=3, help="timings per engine, the best counts "
                   "(default %(default)s)")
    p.add_argument("--hidden", default="30,10", help="hidden layers (default %(default)s)")
    p.add_argument("--out", help="also write the markdown table to this file")
    args = p.parse_args(argv)

    def config(seed):
        return TrainConfig(backend="numba", dataset="red", hidden=args.hidden, epochs=args.epochs,
                           patience=0, seed=seed)

    configs = [config(s) for s in range(args.runs)]
    warm = [config(10_000 + s) for s in range(2)]
    rows = measure(ENGINES, configs, warm, args.repeat)
    one = rows["Dask LocalCluster, 1 worker"]
    info = machine.machine_info()
    lines = [f"Sweep throughput: {args.runs} runs of numba, red wine, hidden {args.hidden}, "
             f"{args.epochs} epochs, best of {args.repeat}; {info['cpu_model']}, "
             f"{info['cpu_cores']} cores", "",
             "| engine | runs/s | × Dask 1 worker | seconds per run in its worker |",
             "|---|---|---|---|"]
    for label, (rate, run) in rows.items():
        lines.append(f"| {label} | {rate:.2f} | {rate / one[0]:.2f} | {run:.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
