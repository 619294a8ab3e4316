"""A proof cache: results stored under a key (engines.sources_key: a claim's context as written, the
engines' sources, SymPy's version).

A cached result is only a shortcut: an entry whose key, claim id or checksum
does not match, or that does not parse, is ignored (and later overwritten),
never trusted.  The cache lives outside the repository, in the user's cache
directory, so the tracked tree never holds proof results.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import sympy


def default_dir() -> Path:
    base = os.environ.get("BPTT_VERIFIER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "bptt-verifier")
    return Path(base)


def _checksum(result) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()


class ProofCache:
    def __init__(self, directory: Path | None = None, enabled: bool = True):
        self.directory = Path(directory) if directory else default_dir()
        self.enabled = enabled
        self.hits = self.misses = self.rejected = 0

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def get(self, claim_id: str, key: str):
        if not self.enabled:
            return None
        try:
            entry = json.loads(self._path(key).read_text())
            ok = (entry["key"] == key and entry["claim"] == claim_id and entry["sympy"] == sympy.__version__
                  and entry["checksum"] == _checksum(entry["result"]))
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            self.rejected += 1
            self.misses += 1
            return None
        self.hits += 1
        return entry["result"]

    def put(self, claim_id: str, key: str, result) -> None:
        if not self.enabled:
            return
        entry = {"key": key, "claim": claim_id, "sympy": sympy.__version__, "result": result,
                 "checksum": _checksum(result)}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                json.dump(entry, fh)
            os.replace(tmp, self._path(key))
        except OSError:
            pass  # an unwritable cache only costs time
