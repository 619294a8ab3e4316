"""∂ℓ/∂U of an abstract loss that gives U's gradient by name (dU := ∂ℓ/∂U, declared): dU plus the sum over the
steps of U's uses.  The structural engine proves it by taking the given term out of both sides
(recurrence._without_given); a line with the given term missing, doubled or on one side only is never proved."""
from pathlib import Path

import pytest

from derivations.engines import explicit, recurrence
from derivations.latex.reader import parse_derivation

ROOT = Path(__file__).resolve().parent.parent
HEAD = "\n".join((ROOT / "tests" / "derivations" / "adversarial" / "a4.md").read_text().splitlines()[:9])
SUM = r"\sum_{t=1}^{T} \left( (1 - h_t^2) \circ dh_t \right) "
LINES = {
    "with-given": (r"\frac{\partial \ell}{\partial U} = dU + " + SUM + r"h_{t-1}^{\top}", True),
    "missing-given": (r"\frac{\partial \ell}{\partial U} = " + SUM + r"h_{t-1}^{\top}", False),
    "only-given": (r"\frac{\partial \ell}{\partial U} = dU", False),
    "twice": (r"\frac{\partial \ell}{\partial U} = dU + dU + " + SUM + r"h_{t-1}^{\top}", False),
    "wrong-step": (r"\frac{\partial \ell}{\partial U} = dU + " + SUM + r"h_{t}^{\top}", False),
}


@pytest.fixture(scope="module")
def ctx():
    text = HEAD + "".join(f"\n\n$$ {latex} \\tag{{{cid}}} $$" for cid, (latex, _) in LINES.items())
    return parse_derivation(text, "given.md").contexts[0]


@pytest.mark.parametrize("cid", sorted(LINES))
def test_the_given_gradient_is_compared_outside_the_sum(ctx, cid):
    claim = next(c for c in ctx.claims if c.id == cid)
    out = recurrence.prove(ctx, claim)
    if LINES[cid][1]:
        assert out is not None and out.verdict == "proved", out
        assert explicit.prove(ctx, claim).verdict == "proved"
    else:
        assert out is None or out.verdict != "proved"
        assert explicit.prove(ctx, claim).verdict == "refuted"
