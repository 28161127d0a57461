"""Every document the project points to exists: relative markdown links and *.md names."""
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)
MD_NAME = re.compile(r"(?<![\w/.-])([\w./-]*\w\.md)\b")
TEXT = {".md", ".py", ".toml", ".txt", ".cfg", ".ini", ".json", ".yml", ".yaml", ""}


def _tracked():
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [p for p in out.splitlines() if (ROOT / p).is_file()]


def _targets(paths):
    """(file, line number, target) of every relative link in the markdown files."""
    for rel in paths:
        if rel.endswith(".md"):
            for n, line in enumerate((ROOT / rel).read_text().splitlines(), 1):
                for target in LINK.findall(line):
                    if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
                        yield rel, n, target.split("#")[0]


def test_every_relative_markdown_link_exists():
    paths = _tracked()
    missing = [f"{rel}:{n}: {t}" for rel, n, t in _targets(paths)
               if t and not (ROOT / rel).parent.joinpath(t).exists()]
    assert not missing, "dangling links:\n" + "\n".join(missing)


def test_every_md_file_named_in_the_project_exists():
    paths = _tracked()
    names = {Path(p).name for p in paths if p.endswith(".md")}
    missing = []
    for rel in paths:
        if Path(rel).suffix not in TEXT or rel.startswith(("results/asv/", "tests/")):
            continue  # tests make up file names on purpose
        for n, line in enumerate((ROOT / rel).read_text(errors="replace").splitlines(), 1):
            for name in MD_NAME.findall(line):
                parts = name.lstrip("/").split("/")  # $(OUT)/table.md, OUT/table.md: a placeholder dir
                if name.startswith("/") or (len(parts) > 1 and parts[0].isupper()):
                    name = parts[-1]
                found = (ROOT / name).exists() or (ROOT / rel).parent.joinpath(name).exists() \
                    or ("/" not in name and name in names)
                if not found:
                    missing.append(f"{rel}:{n}: {name}")
    assert not missing, "documents named but not in the repository:\n" + "\n".join(missing)


def test_the_patterns_find_md_names_and_links():
    missing = "GONE" + ".md"  # built, so that this file does not name a missing document itself
    assert MD_NAME.findall(f"see {missing} §1 and docs/asv.md.") == [missing, "docs/asv.md"]
    assert LINK.findall("[a](docs/asv.md#y) ![b](results/f.png)") == ["docs/asv.md#y", "results/f.png"]
