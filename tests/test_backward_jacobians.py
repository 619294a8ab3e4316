"""Jacobians in a context with only a backward direction (b_t := tanh(W_b x_t + U_b b_{t+1})): a quantity depends on
its own step and later ones, and the structural engine's forward-mode walk goes toward later steps
(recurrence.Steps.jacobian).  True lines are proved for every T; the false ones of the same files never are
(test_recurrence's test_the_structural_engine_proves_no_false_line covers every adversarial file)."""
from pathlib import Path

import pytest

from derivations.engines import recurrence
from derivations.running.runner import load_document

ADVERSARIAL = Path(__file__).resolve().parent / "derivations" / "adversarial"


@pytest.mark.parametrize("name, cid", [("a8.md", "chain"), ("a10.md", "bx"), ("a10.md", "pb"),
                                       ("a10.md", "zero-before")])
def test_a_true_jacobian_of_a_backward_direction_is_proved(name, cid):
    ctx, claim = load_document(ADVERSARIAL / name).parsed[cid]
    out = recurrence.prove(ctx, claim)
    assert out is not None and out.verdict == "proved", out


@pytest.mark.parametrize("name, cid", [("a8.md", "chain-wrong-order"), ("a8.md", "zero1-wrong"),
                                       ("a9.md", "x1")])
def test_a_false_one_is_not(name, cid, monkeypatch):
    monkeypatch.setattr(recurrence, "_differs_at_numbers", lambda ctx, claim: False)
    ctx, claim = load_document(ADVERSARIAL / name).parsed[cid]
    out = recurrence.prove(ctx, claim)
    assert out is None or out.verdict != "proved"


def test_both_directions_are_still_left_to_the_explicit_engine():
    """c1: f reads f_{t-1} and b_t, b reads b_{t+1}: a walk one way would miss paths."""
    ctx, claim = load_document(ADVERSARIAL / "c1.md").parsed["fb"]
    out = recurrence.prove(ctx, claim)
    assert out is None or out.verdict != "proved"
