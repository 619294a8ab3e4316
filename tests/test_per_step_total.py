"""The total derivative of a per-step loss with respect to a weight: ∂ℓ_t/∂W = Σ_{s=1}^{t} (W's use at step s).

The deriver writes it in the file's names (derivations/analyses/derive.py) and the structural engine proves it for every
T by reading the line at t = T (recurrence.lift_per_step): with no backward direction, nothing at step t reads a
later step, so the line for every t ≤ T is the line at t = T for every T.  Lines one slip away are never proved.
"""
from dataclasses import replace
from pathlib import Path

import pytest

from derivations.analyses import repair
from derivations.analyses.derive import derived_rhs
from derivations.engines import explicit, recurrence
from derivations.form.printer import to_latex
from derivations.latex.reader import parse_derivation
from derivations.running.runner import load_document

ROOT = Path(__file__).resolve().parent.parent
PER_STEP = (ROOT / "tests" / "derivations" / "per_step_loss.md").read_text().split("## Deliberately wrong")[0]

HH = r"\frac{\partial \ell_t}{\partial W_{hh}} = \sum_{s=1}^{t} \left( (1 - h_s^2) \circ \frac{\partial \ell_t}"
XH = r"\frac{\partial \ell_t}{\partial W_{xh}} = \sum_{s=1}^{t} \left( (1 - h_s^2) \circ \frac{\partial \ell_t}"
HY = r"\frac{\partial \ell_t}{\partial W_{hy}} = \sum_{s=1}^{t} "
# cid -> (the line, is it true)
LINES = {
    "right-Whh": (HH + r"{\partial h_s} \right) h_{s-1}^{\top}", True),
    "right-Why": (HY + r"\frac{\partial \ell_t}{\partial o_s} h_s^{\top}", True),
    "right-Wxh": (XH + r"{\partial h_s} \right) x_{s}^{\top}", True),
    "wrong-step": (HH + r"{\partial h_s} \right) h_{s}^{\top}", False),
    "wrong-every-step": (HY + r"(p_s - e_{k_s}) h_s^{\top}", False),
    "wrong-input-step": (XH + r"{\partial h_{s}} \right) x_{s-1}^{\top}", False),
    "wrong-adjoint-step": (HH + r"{\partial h_{s-1}} \right) h_{s-1}^{\top}", False),
}


@pytest.fixture(scope="module")
def doc():
    text = PER_STEP + "".join(f"\n$$ {latex} \\tag{{{cid}}} $$\n" for cid, (latex, _) in LINES.items())
    return parse_derivation(text, "per_step_total.md")


@pytest.mark.parametrize("cid", sorted(LINES))
def test_the_structural_engine_proves_the_total_derivative_and_no_slip_of_it(doc, cid):
    ctx = doc.context_of(cid)
    claim = next(c for c in ctx.claims if c.id == cid)
    out = recurrence.prove(ctx, claim)
    truth = explicit.prove(ctx, claim).verdict
    if LINES[cid][1]:
        assert out is not None and out.verdict == "proved", out
        assert truth == "proved"
    else:
        assert out is None or out.verdict != "proved"
        assert truth == "refuted"


def test_the_line_is_not_read_at_T_with_the_earlier_steps_held_fixed(doc):
    ctx = doc.context_of("right-Whh")
    claim = next(c for c in ctx.claims if c.id == "right-Whh")
    held = replace(ctx, held_fixed=True)
    assert recurrence.lift_per_step(held, claim) == (held, claim)
    assert recurrence.lift_per_step(ctx, claim)[1] != claim


def test_the_immediate_partial_gets_the_total_derivative_in_the_files_names():
    """per_step_loss.md's wrong line counts only step t's use of W_hh: the derived right-hand side is the sum over
    every step up to t, and the engines prove it."""
    path = ROOT / "tests" / "derivations" / "per_step_loss.md"
    ctx, claim = load_document(path).parsed["immediate-partial"]
    rhs = derived_rhs(ctx, claim)
    assert to_latex(rhs) == (r"\sum_{s=1}^{t} (\frac{\partial \ell_t}{\partial h_s} \circ (1 - h_s^2)) "
                             r"h_{s-1}^{\top}")
    assert repair.check(ctx, replace(claim, rhs=rhs))["verdict"] == "proved"


def test_a_context_where_step_t_reads_past_t_is_not_read_at_T():
    """m := U x_T is read by every h_t: the values at step t depend on the last step, so the line at t is not the
    line at T of a shorter sequence, and recurrence.lift_per_step leaves it alone."""
    text = (r"""# pooled

$$ W \in \mathbb{R}^{H \times H}, \quad U \in \mathbb{R}^{H \times D}, \quad V \in \mathbb{R}^{K \times H}, \quad """
            r"""x_t \in \mathbb{R}^{D}, \quad h_0 \in \mathbb{R}^{H}, \quad k_t \in \{1, \dots, K\} $$

$$ m := U x_T, \quad h_t := \tanh(W h_{t-1} + m), \quad o_t := V h_t, \quad p_t := \operatorname{softmax}(o_t), """
            r"""\quad \ell_t := -\log (p_t)_{k_t} $$

$$ \frac{\partial \ell_t}{\partial W} = \sum_{s=1}^{t} \left( (1 - h_s^2) \circ \frac{\partial \ell_t}"""
            r"""{\partial h_s} \right) h_{s-1}^{\top} \tag{sum} $$
""")
    ctx = parse_derivation(text, "pooled.md").contexts[0]
    claim = next(c for c in ctx.claims if c.id == "sum")
    assert recurrence.lift_per_step(ctx, claim) == (ctx, claim)
