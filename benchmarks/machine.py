"""Register this computer with asv under a name: python -m benchmarks.machine NAME.

asv's own `asv machine --yes --machine NAME` stores only the name; this stores what asv
detects (os, arch, cpu, num_cpu, ram) under NAME, and refuses when results/asv already holds
a machine of that name with another arch, cpu or core count, so that results of one
computer never land in another's history. (Not a benchmark: asv imports it and finds none.)
"""
import json
import sys
from pathlib import Path


def main(name, results_dir="results/asv"):
    from asv.machine import Machine, MachineCollection
    info = dict(Machine.get_defaults(), machine=name)
    committed = Path(results_dir) / name / "machine.json"
    if committed.is_file():
        known = json.loads(committed.read_text())
        for key in ("arch", "cpu", "num_cpu"):
            if str(known.get(key)) != str(info[key]):
                sys.exit(f"this computer is not '{name}' ({key} {info[key]!r}, recorded "
                         f"{known.get(key)!r}): name it, e.g. make history ASV_MACHINE=$(hostname)")
    MachineCollection.save(name, info)
    print(f"asv machine '{name}': {info['cpu']}, {info['num_cpu']} CPUs, {info['os']}")


if __name__ == "__main__":
    main(*sys.argv[1:])
