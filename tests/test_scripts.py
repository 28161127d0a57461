"""Every script under scripts/ (run by make targets and the docs, not by the package) loads:
its imports resolve and every name its definitions use at load time exists. A script's
`main` is not run here (each takes minutes); the make targets run them. The former
scripts/methods.py and scripts/duplicates.py are the subcommands `ffnbench methods` and
`ffnbench duplicates` now: their modules load the same way."""
import importlib
import importlib.util
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parent.parent / "scripts").glob("*.py"))
FORMER_SCRIPTS = ("ffnbench.commands.duplicates", "ffnbench.commands.methods")


def test_there_are_scripts():
    assert {p.name for p in SCRIPTS} >= {"bench_compare.py", "examples.py", "python_ops.py",
                                        "sweep_throughput.py"}


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_script_loads(path, monkeypatch):
    monkeypatch.syspath_prepend(str(path.parent))
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # top level only: main() is behind __name__ == "__main__"
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"


@pytest.mark.parametrize("name", FORMER_SCRIPTS)
def test_former_script_command_loads(name):
    module = importlib.import_module(name)  # its imports resolve; main() is not run here
    assert callable(getattr(module, "main", None)), f"{name} has no main()"
