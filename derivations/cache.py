"""A proof cache keyed by the content of a claim's encoding and SymPy's version.

A cached result is only a shortcut: an entry whose key, claim id or checksum
does not match, or that does not parse, is ignored (and later overwritten),
never trusted.  The cache lives outside the repository, in the user's cache
directory, so the tracked tree never holds proof results.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
import tempfile
from pathlib import Path

import sympy

from . import concrete, functions, recheck, registry, statement, unrolled

# The code every claim's meaning depends on besides its own module.
_ENGINE_MODULES = (concrete, functions, recheck, registry, statement, unrolled)


def default_dir() -> Path:
    base = os.environ.get("BPTT_VERIFIER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "bptt-verifier")
    return Path(base)


def _source(module) -> str:
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return module.__name__


def _note_sources() -> list[str]:
    """Every section of the note (a claim may use another section's helpers), and the text of the
    contexts of note.md whose lines the whole algorithm and the induction run (parsed from the LaTeX)."""
    from . import note
    from .note import step_model
    from .note.bptt import WHOLE_ALGORITHM
    lines = {cid for chosen in WHOLE_ALGORITHM.values() for cid in chosen.values()}
    return [_source(sys.modules[name]) for name in sorted(sys.modules)
            if name.startswith(note.__name__ + ".")] + [step_model.contexts_text(lines)]


def sources_key(extra_modules=(), *fields) -> str:
    """sha256 of `fields`, the note's and the engines' sources, and SymPy's version."""
    parts = [*fields, sympy.__version__, *_note_sources()]
    parts += [_source(m) for m in (*_ENGINE_MODULES, *extra_modules)]
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()


def claim_key(claim, extra_modules=()) -> str:
    """sha256 of the claim's fields, the note's and the engines' sources, and SymPy's version."""
    return sources_key(extra_modules, claim.fingerprint())


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
