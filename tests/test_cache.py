"""The proof cache: keyed by content, never trusted when an entry does not check out."""
import json

import sympy

from derivations.latex.reader import parse_derivation
from derivations.running.cache import ProofCache
from derivations.running.runner import parsed_key

RESULT = {"verdict": "proved", "reason": "r", "methods": [], "shapes": [], "seconds": 0.1, "counterexample": None}

FILE = r"""# Lemma

$$ W \in \mathbb{R}^{m \times n}, \quad h \in \mathbb{R}^{n}, \quad \ell \in \mathbb{R} $$

$$ z := W h, \quad dz \in \mathbb{R}^{m}, \quad dz := \frac{\partial \ell}{\partial z} $$

$$ \frac{\partial \ell}{\partial h} = W^T dz \tag{dh} $$
"""


def _key(text):
    ctx = parse_derivation(text, "x.md").contexts[0]
    return parsed_key(ctx, ctx.claims[0])


def test_key_follows_the_context_as_written_the_engines_and_sympy(monkeypatch):
    key = _key(FILE)
    assert _key(FILE) == key
    assert _key(FILE.replace("z := W h", "z := \\tanh(W h)")) != key       # a definition of the context
    assert _key(FILE + "\nSome prose after it.\n") == key                     # prose is no part of it
    monkeypatch.setattr(sympy, "__version__", "0.0")
    assert _key(FILE) != key


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
