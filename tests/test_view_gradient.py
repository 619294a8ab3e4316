"""A gradient (or a Jacobian) with respect to a block view (c5: Z_t := [x_t; h_{t-1}], h_t := tanh(M Z_t)): a change of Z_t reaches only
what reads Z_t, so ∂ℓ/∂Z_t = M^T ((1 - h_t^2) ∘ dh_t), not the column of ∂ℓ/∂x_t and the total ∂ℓ/∂h_{t-1}.  The
structural engine writes Z as one sequence per block (recurrence.split_views) and proves such lines for every T;
the truth of each line is by finite differences (tests/fd.py), and a false one is never proved (the quick look at
numbers that would refuse it first is switched off)."""
from pathlib import Path

import pytest

from derivations.engines import recurrence
from derivations.form import ir
from derivations.latex.reader import parse_statement
from derivations.running.runner import load_document

C5 = Path(__file__).resolve().parent / "derivations" / "adversarial" / "c5.md"

LINES = [
    (r"\frac{\partial h_t}{\partial Z_t} = M^{\top} \operatorname{diag}(1 - h_t^2)", True),
    ((r"\frac{\partial h_{t+1}}{\partial Z_t} = M^{\top} \operatorname{diag}(1 - h_t^2) W_h^{\top} "
      r"\operatorname{diag}(1 - h_{t+1}^2)"), False),
    (r"\frac{\partial \ell}{\partial Z_t} = M^{\top} ((1 - h_t^2) \circ dh_t)", True),
    (r"\frac{\partial \ell}{\partial Z_{t+3}} = M^{\top} ((1 - h_{t+3}^2) \circ dh_{t+3})", True),
    ((r"\frac{\partial \ell}{\partial Z_t} = \begin{bmatrix} W_x^{\top} ((1 - h_t^2) \circ dh_t) \\ "
     r"W_h^{\top} ((1 - h_t^2) \circ dh_t) \end{bmatrix}"), True),
    (r"\frac{\partial \ell}{\partial Z_t} = M^{\top} dh_t", False),
    (r"\frac{\partial \ell}{\partial Z_{t+1}} = M^{\top} ((1 - h_t^2) \circ dh_t)", False),
    ((r"\frac{\partial \ell}{\partial Z_t} = \begin{bmatrix} W_x^{\top} ((1 - h_t^2) \circ dh_t) \\ dh_{t-1} "
     r"\end{bmatrix}"), False),
    ((r"\frac{\partial \ell}{\partial Z_t} = \begin{bmatrix} W_x^{\top} ((1 - h_t^2) \circ dh_t) \\ "
     r"W_h ((1 - h_t^2) \circ dh_t) \end{bmatrix}"), False),
]


@pytest.mark.parametrize("latex, true", LINES, ids=range(len(LINES)))
def test_a_gradient_with_respect_to_a_view_is_proved_block_by_block(latex, true, monkeypatch):
    import fd
    monkeypatch.setattr(recurrence, "_differs_at_numbers", lambda ctx, claim: False)
    ctx, _ = load_document(C5).parsed["dZ"]
    lhs, rhs = parse_statement(latex, ctx)
    claim = ir.Claim("line", "", lhs, rhs)
    assert (fd.truth(ctx, claim)[0] == "true") == true
    out = recurrence.prove(ctx, claim)
    assert (out is not None and out.verdict == "proved") == true, out
