"""asv's web page, offline: `asv publish` writes a site whose index.html loads jQuery, flot,
stupidtable, blueimp-md5 and bootstrap from CDNs, so without a network it is blank. `localise`
copies the vendored copies of asv_www/ (SOURCES.json: package, version, sha256, licence, and
whether each equals the CDN's file; scripts/vendor_asv_assets.py refreshes them) into the site
and points every such <script>/<link> at them; `publish` runs asv publish, then localises."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..core.errors import UserError
from ..core.fileio import atomic_write

ASSETS = Path(__file__).resolve().parent / "asv_www"
VENDOR = "vendor"  # the site's folder for the copies
_TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.IGNORECASE)
_URL = re.compile(r"""\b(src|href)\s*=\s*(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_REMOTE = re.compile(r"(?:https?:)?//", re.IGNORECASE)
# the CDN-only attributes of a localised tag; integrity stays where the file is the CDN's own
_DROP = ("crossorigin", "referrerpolicy")


def manifest():
    """The vendored files' manifest, asv_www/SOURCES.json."""
    return json.loads((ASSETS / "SOURCES.json").read_text())


def _localised_tag(tag, entry):
    url = _URL.search(tag)
    tag = f'{tag[:url.start(3)]}{VENDOR}/{entry["file"]}{tag[url.end(3):]}'
    drop = _DROP if entry["same_as_cdn"] else (*_DROP, "integrity")
    for name in drop:
        tag = re.sub(rf"""\s+{name}\s*=\s*(["']).*?\1""", "", tag,
                     flags=re.IGNORECASE | re.DOTALL)
    return tag


def localised(text, where="page"):
    """`text` (an html page) with every CDN <script>/<link> pointing at vendor/; a remote
    address the manifest does not know is a UserError (asv newer than the vendored files)."""
    known = {e["cdn"]: e for e in manifest()["files"]}

    def replace(match):
        url = _URL.search(match.group(0))
        if not url or not _REMOTE.match(url.group(3).strip()):
            return match.group(0)
        address = url.group(3).strip()
        if address not in known:
            raise UserError(f"{where} loads {address}, which ffnbench has no copy of (asv "
                            f"newer than {manifest()['asv']}?): run scripts/vendor_asv_assets.py")
        return _localised_tag(match.group(0), known[address])

    return _TAG.sub(replace, text)


def localise(html_dir):
    """Make the site asv published in `html_dir` work offline: copy the vendored files into
    html_dir/vendor/ and rewrite the CDN addresses of every .html file to them. Every page is
    rewritten in memory first, so an unknown CDN address leaves the site untouched; each page
    is then replaced whole. Returns the pages rewritten."""
    html_dir = Path(html_dir)
    if not (html_dir / "index.html").is_file():
        raise UserError(f"{html_dir}: no index.html; not a site asv published")
    pages = {}
    for page in sorted(html_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        new = localised(text, where=str(page))
        if new != text:
            pages[page] = new
    vendor = html_dir / VENDOR
    try:
        vendor.mkdir(exist_ok=True)
        for entry in manifest()["files"]:
            shutil.copyfile(ASSETS / entry["file"], vendor / entry["file"])
        for licence in sorted(ASSETS.glob("LICENSE-*.txt")):
            shutil.copyfile(licence, vendor / licence.name)
        shutil.copyfile(ASSETS / "SOURCES.json", vendor / "SOURCES.json")
    except OSError as e:
        raise UserError(f"{vendor}: cannot write ({e.strerror or e})") from None
    for page, text in pages.items():
        with atomic_write(page) as f:
            f.write(text)
    return sorted(pages)


def _is_site(path):
    return (path / "index.html").is_file() and (path / "index.json").is_file()


def publish(html_dir, results_dir="results/asv", config="asv.conf.json"):
    """`asv publish` of `results_dir` with asv's `config` into `html_dir`, then `localise`.
    asv empties html_dir first, so it must be absent, empty or a site asv published before.
    Returns the html files rewritten."""
    html_dir, results_dir, config = Path(html_dir).resolve(), Path(results_dir), Path(config)
    if html_dir.exists() and not html_dir.is_dir():
        raise UserError(f"--site {html_dir}: not a directory")
    if html_dir.is_dir() and any(html_dir.iterdir()) and not _is_site(html_dir):
        raise UserError(f"--site {html_dir}: not empty and not an asv site (asv publish would "
                        "delete what is there): give a new directory")
    if not config.is_file():
        raise UserError(f"{config}: no asv configuration; run from a clone of ffnbench")
    if not (results_dir / "benchmarks.json").is_file():
        raise UserError(f"{results_dir}: no asv results (no benchmarks.json)")
    try:
        from asv.util import load_json
    except ImportError:
        raise UserError("--site needs asv: pip install asv (requirements.txt pins it)") from None
    # a copy of the configuration in a temporary directory, where asv runs (it changes to
    # its config's directory): every path in it made absolute, the results and site ours
    base = config.resolve().parent
    conf = load_json(str(config), js_comments=True)
    for key in ("repo", "benchmark_dir", "env_dir"):
        if isinstance(conf.get(key), str) and (base / conf[key]).exists():
            conf[key] = str((base / conf[key]).resolve())
    conf["results_dir"] = str(results_dir.resolve())
    conf["html_dir"] = str(html_dir)
    with tempfile.TemporaryDirectory(prefix="ffnbench-asv-") as tmp:
        tmp_config = Path(tmp) / "asv.conf.json"
        tmp_config.write_text(json.dumps(conf))
        done = subprocess.run([sys.executable, "-m", "asv", "publish", "--no-pull",
                               "--config", str(tmp_config)], cwd=tmp, capture_output=True,
                              text=True, env={**os.environ, "PYTHONUTF8": "1"})
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        raise UserError(f"asv publish failed (exit {done.returncode}): {lines[-1]}")
    return localise(html_dir)
