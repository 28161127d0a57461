"""Fetch the JavaScript and CSS that asv's web page loads from CDNs, from the npm registry, into
ffnbench/report/asv_www/ (with each package's licence text), and write its manifest
SOURCES.json; `ffnbench history --site DIR` serves the page with these copies (docs/asv.md,
"The asv page offline").

    python scripts/vendor_asv_assets.py           # re-fetch, rewrite asv_www/ and SOURCES.json
    python scripts/vendor_asv_assets.py --check   # re-fetch, compare with the committed copies

It needs `npm` (only `npm pack`: nothing is installed) and the asv of requirements.txt: each
CDN address is looked up in asv's own template (asv/www/index.html), whose integrity hash (SRI)
tells whether the npm file is byte for byte the CDN's file. Every package must carry the MIT
licence, checked from its package.json and its licence text (or, for flot-orderbars, which has
no licence file, the file's own header). Run it when asv is upgraded: a template that loads a
CDN address not listed in ASSETS is refused, and so is a published page (ffnbench.report.asv_site).
"""
import argparse
import base64
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "ffnbench" / "report" / "asv_www"
MIT = "Permission is hereby granted, free of charge"

# (CDN address in asv's template, npm package, version, file in the package); the local name
# is the file's base name. stupidtable: the CDN serves 1.0.1, npm has only 1.1.3 (the same
# API: stupidtable(), stupidsort(dir), the aftertablesort event); flot: npm has no minified files;
# blueimp-md5: its unminified source, which a reader (and a link checker) can read.
ASSETS = [
    ("https://code.jquery.com/jquery-3.3.1.min.js", "jquery", "3.3.1", "dist/jquery.min.js"),
    ("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js",
     "flot", "0.8.3", "jquery.flot.js"),
    ("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js",
     "flot", "0.8.3", "jquery.flot.time.js"),
    ("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js",
     "flot", "0.8.3", "jquery.flot.selection.js"),
    ("https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js",
     "flot", "0.8.3", "jquery.flot.categories.js"),
    ("https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js",
     "flot-orderbars", "1.0.0", "js/jquery.flot.orderBars.js"),
    ("https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js",
     "stupid-table-plugin", "1.1.3", "stupidtable.min.js"),
    ("https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js",
     "blueimp-md5", "2.19.0", "js/md5.js"),
    ("https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js",
     "bootstrap", "3.1.1", "dist/js/bootstrap.min.js"),
    ("https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css",
     "bootstrap", "3.1.1", "dist/css/bootstrap.min.css"),
]
CDN_VERSION = {"stupid-table-plugin": "1.0.1"}  # where the CDN's version is not npm's
# the licence text in each package (None: none there; the file's header states the licence)
LICENCE_FILES = {"jquery": "LICENSE.txt", "flot": "LICENSE.txt", "flot-orderbars": None,
                 "stupid-table-plugin": "LICENSE", "blueimp-md5": "LICENSE.txt",
                 "bootstrap": "LICENSE"}
NOTES = {
    "flot": "npm's flot 0.8.3 has no minified files: the unminified sources (the CDN's files are "
            "their minified form)",
    "flot-orderbars": "no licence file in the package: MIT by its package.json and the "
                      "file's own header, kept in the file",
    "stupid-table-plugin": "the CDN's 1.0.1 is not on npm; 1.1.3 is the only npm version and "
                           "keeps the API asv uses (stupidtable(), stupidsort(dir), "
                           "aftertablesort with column and direction)",
    "blueimp-md5": "md5.js, the unminified source of the CDN's md5.min.js (same package and "
                   "version): readable, where the minified text reads like file names",
    "bootstrap": "bootstrap.min.css names the glyphicons fonts (../fonts/), which asv's page "
                 "never uses: not vendored",
}


def sri(data, algorithm):
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def template_integrity():
    """{CDN address: its integrity attribute} of every remote <script>/<link> in asv's template."""
    import asv
    text = (Path(asv.__file__).parent / "www" / "index.html").read_text()
    found = {}
    for tag in re.findall(r"<(?:script|link)\b[^>]*>", text):
        url = re.search(r'\b(?:src|href)="([^"]+)"', tag)
        if url and re.match(r"(https?:)?//", url.group(1)):
            integrity = re.search(r'\bintegrity="([^"]+)"', tag)
            found[url.group(1)] = integrity.group(1) if integrity else None
    return found, asv.__version__


def npm_pack(package, version, into):
    """The tarball of package@version from the npm registry: (its path, npm's integrity)."""
    done = subprocess.run(["npm", "pack", "--json", "--pack-destination", str(into),
                           f"{package}@{version}"], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"npm pack {package}@{version} failed: {error}")
    info, = json.loads(done.stdout)
    return Path(into) / info["filename"], info["integrity"]


def read_member(tgz, path):
    with tarfile.open(tgz) as tar:
        return tar.extractfile(f"package/{path}").read()


def check_mit(package, tgz, data):
    """The evidence that `package` is MIT, or exit."""
    meta = json.loads(read_member(tgz, "package.json"))
    declared = meta.get("license") or (meta.get("licenses") or [{}])[0]
    declared = declared.get("type") if isinstance(declared, dict) else declared
    if declared not in (None, "MIT"):
        sys.exit(f"{package}: package.json says licence {declared!r}, not MIT")
    if LICENCE_FILES[package]:
        text = read_member(tgz, LICENCE_FILES[package]).decode()
        if MIT not in text:
            sys.exit(f"{package}: {LICENCE_FILES[package]} is not the MIT licence text")
        return text
    if declared != "MIT" or b"MIT license" not in data[:2000]:
        sys.exit(f"{package}: no licence file and no MIT statement in package.json and the file")
    return None


def fetch(into):
    """{local file name: bytes} of every asset and licence, and the manifest describing them."""
    integrity, asv_version = template_integrity()
    unknown = sorted(set(integrity) - {cdn for cdn, *_ in ASSETS})
    if unknown:
        sys.exit(f"asv {asv_version}'s template loads {', '.join(unknown)}: add it to ASSETS")
    files, packages, entries = {}, {}, []
    tarballs = {}
    for cdn, package, version, path in ASSETS:
        if cdn not in integrity:
            sys.exit(f"asv {asv_version}'s template no longer loads {cdn}: drop it from ASSETS")
        if (package, version) not in tarballs:
            tarballs[package, version] = npm_pack(package, version, into)
        tgz, tar_integrity = tarballs[package, version]
        data = read_member(tgz, path)
        name = Path(path).name
        if package not in packages:
            text = check_mit(package, tgz, data)
            licence_file = f"LICENSE-{package}.txt" if text else None
            if text:
                files[licence_file] = text.encode()
            packages[package] = {"version": version, "npm_integrity": tar_integrity,
                                 "licence": "MIT", "licence_file": licence_file,
                                 "licence_source": LICENCE_FILES[package] or "package.json and "
                                                   "the file's header"}
            if package in NOTES:
                packages[package]["note"] = NOTES[package]
        expected = integrity[cdn]
        same = bool(expected) and sri(data, expected.split("-")[0]) == expected
        files[name] = data
        entries.append({"file": name, "package": package, "version": version, "path": path,
                        "sha256": hashlib.sha256(data).hexdigest(), "licence": "MIT",
                        "cdn": cdn, "cdn_version": CDN_VERSION.get(package, version),
                        "cdn_integrity": expected, "same_as_cdn": same})
    manifest = {"about": "asv's CDN files, from the npm registry, for its page offline; "
                         "written by scripts/vendor_asv_assets.py",
                "asv": asv_version, "packages": packages, "files": entries}
    files["SOURCES.json"] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true",
                   help="compare a fresh fetch with the committed files; write nothing")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = fetch(tmp)
    if args.check:
        committed = {f.name: f.read_bytes() for f in OUT.iterdir() if f.is_file()}
        differ = sorted(n for n in files.keys() | committed.keys()
                        if files.get(n) != committed.get(n))
        if differ:
            sys.exit(f"{OUT} differs from a fresh fetch in: {', '.join(differ)}")
        print(f"{OUT}: {len(files)} files, as fetched")
        return
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in OUT.iterdir():
        if stale.is_file() and stale.name not in files:
            stale.unlink()
    for name, data in files.items():
        (OUT / name).write_bytes(data)
    same = sum(e["same_as_cdn"] for e in json.loads(files["SOURCES.json"])["files"])
    print(f"wrote {len(files)} files to {OUT} ({same} of {len(ASSETS)} assets equal the CDN's)")


if __name__ == "__main__":
    main()
