"""The run cache: one JSON file per finished run, named by `cache_key` (the run's whole
config, the backend, ffnbench's version and the bytes of the code that decides its numbers),
written atomically, checked on every read. Free of numpy and pandas (the parser reads
CACHE_DIR)."""
import hashlib
import json
import os
import time
import warnings
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from .. import __version__, impls
from ..core.fileio import atomic_write, ensure_dir

CACHE_DIR = ".cache/table"  # the default run cache, shared by table and sweep (same key, same run)
# The sources that decide a run's numbers: their bytes are part of the cache key, so an
# edited harness or backend never serves stale results while the version stays the same.
HARNESS_CODE = [Path(__file__).parents[1] / "core" / n for n in ("harness.py", "data.py", "config.py")]


def code_files(backend):
    """The files whose bytes decide a run's numbers: the harness and the backend's
    declared sources (a C file or kernel module as well as its Python module)."""
    return [*HARNESS_CODE, *impls.source_paths(backend)]


@lru_cache(maxsize=None)  # once per process: the code it runs was imported once too
def code_fingerprint(backend):
    """sha256 of `code_files(backend)`."""
    h = hashlib.sha256()
    for f in code_files(backend):
        h.update(f.read_bytes())
    return h.hexdigest()


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=None)
def study_fingerprint(module_file, packages=("numpy", "scikit-learn")):
    """sha256 of a study's own module, the harness code and the installed versions of
    `packages`: what decides the numbers of a cached sub-result (baselines, contest)."""
    h = hashlib.sha256()
    for f in (Path(module_file), *HARNESS_CODE):
        h.update(f.read_bytes())
    h.update(repr([_version(p) for p in packages]).encode())
    return h.hexdigest()


def key_fields(config, version=__version__, code=None):
    """What identifies a run's result: full config (seed included), backend, version, code."""
    code = code_fingerprint(config.backend) if code is None else code
    return {"config": config.to_dict(), "backend": config.backend, "version": version,
            "code": code}


def cache_key(config, version=__version__, code=None):
    """sha256 of the canonical JSON of `key_fields`."""
    return fields_key(key_fields(config, version, code))


def fields_key(fields):
    """The cache file name of an entry identified by `fields`: sha256 of their canonical JSON."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _digest(fields, result):
    """sha256 of an entry's canonical JSON: any edit of a stored number is seen."""
    text = json.dumps({**fields, "result": result}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class InvalidEntry(Exception):
    """A cache file that is not a result of the requested run (reason in the message)."""


_NUMBER = (int, float)


RESULT_TYPES = {  # the keys a result must have (those its readers use), with their types
    "backend": str, "dataset": str, "task": str, "config": dict, "metrics": dict,
    "diverged": bool, "epochs_run": int, "seconds_per_epoch": _NUMBER,
    "warmup_seconds": _NUMBER, "run_seconds": _NUMBER,
}


def check_envelope(entry, fields):
    """The result in cache file `entry` (parsed JSON) if it was stored for `fields` and not
    edited since, else InvalidEntry saying why (any kind of entry: runs, baselines)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("result"), dict):
        raise InvalidEntry("not a cache entry (an object with a result)")
    stored = {k: entry.get(k) for k in fields}
    if stored != fields:
        diff = next(k for k in fields if stored[k] != fields[k])
        raise InvalidEntry(f"stored for another run ({diff} differs from the requested one)")
    if entry.get("sha256") != _digest(fields, entry["result"]):
        raise InvalidEntry("its checksum does not match its content")
    return entry["result"]


def check_entry(entry, fields):
    """The run result in cache file `entry`, or InvalidEntry saying why not: wrong shape or
    types, made for another run than `fields`, or edited since stored."""
    result = check_envelope(entry, fields)
    for k, t in RESULT_TYPES.items():
        if not isinstance(result.get(k), t) or (t is _NUMBER and isinstance(result[k], bool)):
            raise InvalidEntry(f"result field {k!r} is missing or of the wrong type")
    if result["config"] != fields["config"] or result["backend"] != fields["backend"]:
        raise InvalidEntry("its result belongs to another run")
    return result


class Cache:
    """One JSON file per finished run under `root`; `fresh` ignores (and overwrites) it.
    An entry that fails `check` (default `check_entry`, a run's) is moved to root/invalid/
    and counted in `invalid`."""

    def __init__(self, root, fresh=False, check=check_entry):
        self.root, self.fresh, self.check = Path(root), fresh, check
        self.invalid = []  # (file name, reason) of the entries set aside

    def path(self, key):
        return self.root / f"{key}.json"

    def get(self, key, fields=None):
        """The stored result of the run `fields` (its `key_fields`), or None to run it."""
        if self.fresh:
            return None
        path = self.path(key)
        try:
            if not path.exists() and not path.is_symlink():
                return None
            if not path.is_file():
                raise InvalidEntry("not a regular file")
            if path.stat().st_size > 2**24:
                raise InvalidEntry("larger than any result")
            entry = json.loads(path.read_text())
            if fields is None and isinstance(entry, dict):  # no run named: as stored
                fields = {k: entry.get(k) for k in ("config", "backend", "version", "code")}
            return self.check(entry, fields)
        except (OSError, ValueError, RecursionError, InvalidEntry) as e:
            self._set_aside(path, e)
            return None

    def _set_aside(self, path, why):
        reason = str(why) if isinstance(why, InvalidEntry) else f"unreadable ({type(why).__name__})"
        self.invalid.append((path.name, reason))
        aside = self.root / "invalid"
        try:  # kept for inspection, out of the way of the rerun's entry
            aside.mkdir(exist_ok=True)
            os.replace(path, aside / f"{path.stem}.{time.time_ns()}{path.suffix}")
        except OSError:
            pass  # put() then reports the path that cannot be replaced

    def report_invalid(self):
        """One warning line for the entries set aside by get(), if any."""
        if self.invalid:
            name, reason = self.invalid[0]
            more = f" and {len(self.invalid) - 1} more" if len(self.invalid) > 1 else ""
            warnings.warn(f"cache {self.root}: {name}{more} set aside in "
                          f"{self.root / 'invalid'} ({reason}); those runs are redone")

    def put(self, key, fields, result):
        """Store `result` under `key`, with the `key_fields` it was made from."""
        ensure_dir(self.root, "--cache-dir")
        with atomic_write(self.path(key)) as f:
            json.dump({**fields, "result": result, "sha256": _digest(fields, result)}, f)

