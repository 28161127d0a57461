"""Register this computer with asv under a name: python -m benchmarks.machine NAME.

asv's own `asv machine --yes --machine NAME` stores only the name; this stores what asv
detects (os, arch, cpu, num_cpu, ram) plus what changes results and speed (the CPU's family
and model, its vector instruction sets, the BLAS library and the kernels it picked) under
NAME, and refuses when results/asv already holds a machine of that name that differs in any
of them, so that results of one computer never land in another's history. asv copies these
fields into results/asv/NAME/machine.json. (Not a benchmark: asv imports it and finds none.)
"""
import json
import platform
import socket
import sys
from pathlib import Path

# vector instruction sets that change both speed and rounding (vector width, FMA contraction
# in BLAS and in numba's LLVM code), in /proc/cpuinfo's spelling
ISA = ("avx512f", "avx2", "fma", "avx", "sse4_2")
IDENTITY = ("arch", "cpu", "cpu_family", "cpu_model", "cpu_isa", "num_cpu", "blas")


def _cpuinfo(path="/proc/cpuinfo"):
    """The first processor's 'key: value' lines, or {} where there is no /proc/cpuinfo."""
    try:
        text = Path(path).read_text()
    except OSError:
        return {}
    first = text.split("\n\n")[0]
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}


def _blas():
    """'openblas Haswell'-style names of the BLAS libraries numpy and scipy loaded."""
    import numpy  # noqa: F401  the libraries must be loaded to be seen
    try:
        import scipy.linalg  # noqa: F401
    except ImportError:
        pass
    from threadpoolctl import threadpool_info
    names = {f"{i.get('internal_api')} {i.get('architecture', '')}".strip()
             for i in threadpool_info() if i.get("user_api") == "blas"}
    return ", ".join(sorted(names))


def identity(cpuinfo=None):
    """This computer's fields beyond asv's defaults."""
    info = _cpuinfo() if cpuinfo is None else cpuinfo
    flags = set(info.get("flags", "").split())
    return {"cpu_family": info.get("cpu family", platform.processor()),
            "cpu_model": info.get("model", ""),
            "cpu_isa": " ".join(f for f in ISA if f in flags),
            "blas": _blas()}


def described(info):
    """asv's os and ram fields as a stable description: the kernel version without the VM
    image's build tag ("Linux 6.18.44-fc-v657" -> "Linux 6.18.44") and the memory in GiB to
    0.1. asv draws one graph per distinct machine description, and both fields changed
    between boots of the same VM type, which split one machine's history into two graphs."""
    out = dict(info)
    if "os" in out:
        system, _, release = str(out["os"]).partition(" ")
        out["os"] = f"{system} {release.split('-')[0]}".strip()
    if str(out.get("ram", "")).isdigit():
        out["ram"] = f"{int(out['ram']) / 2**30:.1f} GiB"
    return out


def mismatch(name, info, recorded):
    """One line saying why this computer is not the recorded `name`, or None.

    Only fields the record holds are compared (older records lack the newer ones)."""
    for key in IDENTITY:
        if key in recorded and str(recorded[key]) != str(info.get(key)):
            suggestion = f"{socket.gethostname().split('.')[0]}-{info.get('num_cpu')}core"
            return (f"this computer is not '{name}' ({key} {info.get(key)!r} here, recorded "
                    f"{recorded[key]!r}): record it under its own name, e.g. "
                    f"make history ASV_MACHINE={suggestion}")
    return None


def main(name, results_dir="results/asv"):
    from asv.machine import Machine, MachineCollection
    info = described(dict(Machine.get_defaults(), machine=name, **identity()))
    committed = Path(results_dir) / name / "machine.json"
    if committed.is_file():
        reason = mismatch(name, info, json.loads(committed.read_text()))
        if reason:
            sys.exit(reason)
    MachineCollection.save(name, info)
    print(f"asv machine '{name}': {info['cpu']} (family {info['cpu_family']}, model "
          f"{info['cpu_model']}; {info['cpu_isa']}), {info['num_cpu']} CPUs, BLAS {info['blas']}, "
          f"{info['os']}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python -m benchmarks.machine NAME [RESULTS_DIR]")
    main(*sys.argv[1:])
