"""Every `ffnbench ...` example of README.md and docs/*.md, as written: `list` prints them,
`run` runs them one after the other in a fresh clone of this work tree (`make examples`) and
then checks that none changed a committed file. Examples that name a machine or file of the
reader's own (a scheduler address, my.toml, NAME) cannot run here; tests/test_examples.py
checks that every example, those included, parses and writes under build/."""
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# a machine, file or name the reader supplies: parsed by the tests, not run
PLACEHOLDER = re.compile(r"tcp://|\bmy\.toml\b|\bNAME\b|\bmine\b|\bmyhost")


def examples(root=ROOT):
    """[(file, line number, command)] of every `ffnbench` line in a ```sh block, with
    continuation lines joined and the comment dropped."""
    found = []
    for path in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        block, pending = False, None
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("```"):
                block = line.strip() == "```sh"
                continue
            if not block:
                continue
            if pending is not None:
                line, start = pending[1] + " " + line.strip(), pending[0]
            else:
                start = n
            if line.rstrip().endswith("\\"):
                pending = (start, line.rstrip()[:-1].rstrip())
                continue
            pending = None
            command = " ".join(shlex.split(line, comments=True))
            for prefix in (".venv/bin/ffnbench ", "ffnbench "):
                if command.startswith(prefix):
                    found.append((path.relative_to(root).as_posix(), start,
                                  "ffnbench " + command[len(prefix):]))
    return found


def run(clone_dir):
    clone = Path(clone_dir)
    subprocess.run(["rm", "-rf", str(clone)], check=True)
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    bin_dir = Path(sys.executable).parent  # the venv whose ffnbench runs the examples
    failed = []
    for where, line, command in examples(clone):
        if PLACEHOLDER.search(command):
            print(f"skip  {where}:{line}: {command} (names the reader's own machine or file)")
            continue
        t0 = time.perf_counter()
        done = subprocess.run(f"{bin_dir}/{command}", shell=True, cwd=clone,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
        print(f"{status:<5} {where}:{line}: {command}  [{time.perf_counter() - t0:.0f} s]",
              flush=True)
        if done.returncode != 0:
            failed.append(command)
            print("      " + "\n      ".join(done.stderr.strip().splitlines()[-3:]))
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=clone,
                             capture_output=True, text=True, check=True).stdout
    if changed:
        print(f"committed files changed by the examples:\n{changed}")
    print(f"examples: {len(failed)} failed; committed files {'CHANGED' if changed else 'untouched'}")
    return 1 if failed or changed else 0


def main(argv):
    if argv[:1] == ["list"]:
        for where, line, command in examples():
            print(f"{where}:{line}: {command}")
        return 0
    if argv[:1] == ["run"] and len(argv) == 2:
        return run(argv[1])
    return "usage: examples.py list | run CLONE_DIR"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
