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


def test_both_directions_a_false_line_is_not_proved():
    """c1: f reads f_{t-1} and b_t, b reads b_{t+1}: a walk one way would miss paths (f_t reads b_t through
    f_{t-1}, b_{t-1}), and the line as written misses them."""
    ctx, claim = load_document(ADVERSARIAL / "c1.md").parsed["fb"]
    out = recurrence.prove(ctx, claim)
    assert out is None or out.verdict != "proved"


C1_LINES = [
    ((r"\frac{\partial f_t}{\partial b_t} = A^{\top} \operatorname{diag}(1 - f_t^2) + \frac{\partial f_{t-1}}{\partial b_t} "
     r"U_f^{\top} \operatorname{diag}(1 - f_t^2)"), True),
    ((r"\frac{\partial f_t}{\partial b_{t+3}} = \frac{\partial f_{t-1}}{\partial b_{t+3}} U_f^{\top} \operatorname{diag}"
     r"(1 - f_t^2) + \frac{\partial b_t}{\partial b_{t+3}} A^{\top} \operatorname{diag}(1 - f_t^2)"), True),
    ((r"\frac{\partial f_t}{\partial x_{t+3}} = \frac{\partial f_{t-1}}{\partial x_{t+3}} U_f^{\top} \operatorname{diag}"
     r"(1 - f_t^2) + \frac{\partial b_t}{\partial x_{t+3}} A^{\top} \operatorname{diag}(1 - f_t^2)"), True),
    ((r"\frac{\partial f_t}{\partial b_{t-1}} = \frac{\partial f_{t-1}}{\partial b_{t-1}} U_f^{\top} "
     r"\operatorname{diag}(1 - f_t^2)"), True),
    (r"\frac{\partial f_t}{\partial f_{t-1}} = U_f^{\top} \operatorname{diag}(1 - f_t^2)", True),
    ((r"\frac{\partial f_t}{\partial f_{t-2}} = \frac{\partial f_{t-1}}{\partial f_{t-2}} U_f^{\top} "
     r"\operatorname{diag}(1 - f_t^2)"), True),
    (r"\frac{\partial b_t}{\partial f_t} = A - A", True),
    ((r"\frac{\partial b_t}{\partial b_{t+2}} = \frac{\partial b_{t+1}}{\partial b_{t+2}} U_b^{\top} "
     r"\operatorname{diag}(1 - b_t^2)"), True),
    (r"\frac{\partial f_t}{\partial b_t} = A^{\top} \operatorname{diag}(1 - f_t^2)", False),
    ((r"\frac{\partial f_t}{\partial b_t} = A^{\top} \operatorname{diag}(1 - f_t^2) + \frac{\partial f_{t-1}}{\partial "
     r"b_{t-1}} U_f^{\top} \operatorname{diag}(1 - f_t^2)"), False),
    ((r"\frac{\partial f_t}{\partial b_{t+3}} = \frac{\partial f_{t-1}}{\partial b_{t+3}} U_f^{\top} \operatorname{diag}"
     r"(1 - f_t^2)"), False),
    ((r"\frac{\partial f_t}{\partial b_{t-1}} = \frac{\partial f_{t-1}}{\partial b_{t-1}} U_f "
     r"\operatorname{diag}(1 - f_t^2)"), False),
    ((r"\frac{\partial f_t}{\partial f_{t-2}} = \frac{\partial f_{t-1}}{\partial f_{t-2}} U_f^{\top} "
     r"\operatorname{diag}(1 - f_{t-1}^2)"), False),
    ((r"\frac{\partial b_t}{\partial b_{t+2}} = \frac{\partial b_{t+1}}{\partial b_{t+2}} U_b "
     r"\operatorname{diag}(1 - b_t^2)"), False),
    (r"\frac{\partial f_t}{\partial b_{t+1}} = A - A", False),
]


@pytest.mark.parametrize("latex, true", C1_LINES, ids=range(len(C1_LINES)))
def test_both_directions_a_jacobian_is_kept_whole_and_opened_one_level(latex, true, monkeypatch):
    """c1 (f reads f_{t-1} and b_t, b reads b_{t+1}): ∂f_t/∂b_t runs through every earlier step, so the structural
    engine keeps a Jacobian whole, a symbol opened one level by its forward equation (zero at a step outside
    1..T or where no path of definitions leads).  Lines one level on are proved for every T; the truth of
    each line is by finite differences (tests/fd.py), and a false one is never proved (the quick look at
    numbers that would refuse it first is switched off)."""
    import fd

    from derivations.form import ir
    from derivations.latex.reader import parse_statement
    monkeypatch.setattr(recurrence, "_differs_at_numbers", lambda ctx, claim: False)
    ctx, _ = load_document(ADVERSARIAL / "c1.md").parsed["fb"]
    lhs, rhs = parse_statement(latex, ctx)
    claim = ir.Claim("line", "", lhs, rhs)
    assert (fd.truth(ctx, claim)[0] == "true") == true
    out = recurrence.prove(ctx, claim)
    assert (out is not None and out.verdict == "proved") == true, out
