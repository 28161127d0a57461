"""Every `ffnbench` example of README.md and docs/ parses as written and writes under build/
(never into the committed results/); `make examples` runs them (scripts/examples.py), and
test_cli_habits runs the history command on the committed asv results."""
import runpy
import shlex
from pathlib import Path

import pytest

from ffnbench import cli

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = runpy.run_path(str(ROOT / "scripts" / "examples.py"))
EXAMPLES = SCRIPT["examples"]()


def test_the_examples_are_found():
    commands = [c for *_, c in EXAMPLES]
    assert "ffnbench compare --no-scaling --datasets white --out build/speed" in commands
    assert sum(c.startswith("ffnbench sweep") for c in commands) >= 4 and len(commands) >= 20


@pytest.mark.parametrize("where, line, command", EXAMPLES, ids=[f"{w}:{n}" for w, n, _ in EXAMPLES])
def test_every_example_parses_and_writes_under_build(where, line, command):
    args = cli.build_parser().parse_args(shlex.split(command)[1:])  # SystemExit on a bad option
    out = getattr(args, "out", None)
    if out is not None:
        assert not Path(out).parts[:1] == ("results",), f"{where}:{line} writes into results/"
