"""The package's layers, checked from the source: arrows point one way, no command imports
another, no import cycle, and the parser starts without the heavy libraries."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "ffnbench"
# each layer may import only from the layers after it (and from itself, except commands)
LAYERS = ("cli", "parser", "commands", "report", "studies", "run", "core", "impls")


def _modules():
    """{dotted name: path} of every module of the package, impls included."""
    found = {f"ffnbench.{'.'.join(p.relative_to(PKG).with_suffix('').parts)}": p
             for p in PKG.rglob("*.py")}
    found.update({f"ffnbench.impls.{p.stem}": p for p in (ROOT / "impls").glob("*.py")})
    return {name.removesuffix(".__init__"): path for name, path in found.items()}


def _layer(name):
    """ffnbench.run.cache -> run; ffnbench.cli -> cli; the package itself -> ffnbench."""
    return name.split(".")[1] if "." in name else name


def _imports(name, path):
    """The ffnbench modules `name` imports at module level (not inside functions)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in tree.body:
        nodes = [node] if isinstance(node, (ast.Import, ast.ImportFrom)) else [
            n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))
        ] if isinstance(node, ast.Try) else []
        for n in nodes:
            if isinstance(n, ast.Import):
                out |= {a.name for a in n.names if a.name.startswith("ffnbench")}
                continue
            base = n.module or ""
            if n.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - n.level + 1] + ([n.module] if n.module else []))
            if not base.startswith("ffnbench"):
                continue
            for a in n.names:  # `from . import x` may name a module
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return out


MODULES = _modules()
GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_every_layer_has_modules():
    assert {_layer(n) for n in MODULES} >= set(LAYERS)


@pytest.mark.parametrize("name", sorted(n for n in MODULES if _layer(n) in LAYERS))
def test_arrows_point_one_way(name):
    mine = LAYERS.index(_layer(name))
    for target in GRAPH[name]:
        layer = _layer(target)
        if layer not in LAYERS:  # the package itself (__version__)
            continue
        theirs = LAYERS.index(layer)
        assert theirs > mine or (theirs == mine and layer != "commands"), (
            f"{name} ({_layer(name)}) imports {target} ({layer})")


def test_no_import_cycle():
    state = {}

    def visit(n, path):
        if state.get(n) == "done":
            return
        assert state.get(n) != "open", " -> ".join(path + [n])
        state[n] = "open"
        for m in GRAPH.get(n, ()):
            if m in MODULES and m != "ffnbench":
                visit(m, path + [n])
        state[n] = "done"

    for n in MODULES:
        visit(n, [])


def test_modules_stay_small():
    long = {str(p.relative_to(ROOT)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long


def test_the_parser_imports_no_heavy_library():
    code = ("import sys, ffnbench.cli; ffnbench.cli.build_parser();"
            "print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'matplotlib', 'numba', 'torch',"
            " 'jax', 'distributed', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
