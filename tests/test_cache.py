"""The proof cache: keyed by content, never trusted when an entry does not check out."""
import dataclasses
import json

import sympy

from derivations import cache as cache_mod
from derivations.cache import ProofCache, claim_key
from derivations.runner import load_claims

RESULT = {"verdict": "proved", "reason": "r", "methods": [], "shapes": [], "seconds": 0.1, "counterexample": None}


def test_key_follows_the_encoding_the_note_and_sympy(monkeypatch):
    claim = load_claims()["eq9"]
    key = claim_key(claim)
    assert claim_key(claim) == key
    assert claim_key(dataclasses.replace(claim, shapes=claim.shapes[:1])) != key
    monkeypatch.setattr(cache_mod, "_note_sources", lambda: ["another note"])
    assert claim_key(claim) != key
    monkeypatch.undo()
    monkeypatch.setattr(sympy, "__version__", "0.0")
    assert claim_key(claim) != key


def test_round_trip_and_rejections(tmp_path):
    c = ProofCache(tmp_path)
    assert c.get("eq9", "k") is None and c.misses == 1
    c.put("eq9", "k", RESULT)
    assert c.get("eq9", "k") == RESULT and c.hits == 1
    assert c.get("eq10", "k") is None                    # stored for another claim
    path = tmp_path / "k.json"
    entry = json.loads(path.read_text())
    entry["result"]["verdict"] = "refuted"               # tampered: checksum fails
    path.write_text(json.dumps(entry))
    assert c.get("eq9", "k") is None
    path.write_text("{truncated")                        # corrupt
    assert c.get("eq9", "k") is None
    assert c.rejected == 3


def test_disabled_cache_neither_reads_nor_writes(tmp_path):
    c = ProofCache(tmp_path, enabled=False)
    c.put("eq9", "k", RESULT)
    assert not list(tmp_path.iterdir()) and c.get("eq9", "k") is None
