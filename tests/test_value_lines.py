"""A wrong line about a defined value (not a derivative) gets its derived right-hand side: the value the file's
definitions give it (derivations/analyses/derive.py `value_forms`), shown only when the engines prove it.

Which lines are wrong is decided here by numbers: both sides evaluated in NumPy at random inputs
(tests/fd.py, which reads only the parsed file), never typed in.  Each shown line is parsed back from its
printing and proved again, as tests/test_repair_coverage.py does.
"""
from pathlib import Path

import fd
import pytest

from derivations.analyses import repair
from derivations.analyses.derive import value_forms
from derivations.form import ir
from derivations.latex.reader import parse_statement
from derivations.running.runner import load_document

VALUES = r"""# A defined value

$$ A \in \mathbb{R}^{m \times n}, \quad v \in \mathbb{R}^{n}, \quad b \in \mathbb{R}^{m} $$

$$ g(v, A) = \|A v + b\|^2 = \sum_i (A v + b)_i^2 \tag{g-chain} $$

$$ g = \sum_i (A v + b)_i^2 \tag{g-right} $$

$$ g = \sum_i (A v)_i^2 + \sum_i b_i^2 \tag{g-wrong} $$

$$ g = \sum_i 2 (A v + b)_i \tag{g-doubled} $$

# A value at every step

$$ W \in \mathbb{R}^{n \times n}, \quad U \in \mathbb{R}^{n \times e}, \quad x_t \in \mathbb{R}^{e}, \quad h_0 \in \mathbb{R}^{n} $$

$$ h_t := \tanh(W h_{t-1} + U x_t) $$

$$ h_t = \tanh(W h_{t-1} + U x_t) \tag{h-right} $$

$$ h_t = \sigma(W h_{t-1} + U x_t) \tag{h-wrong} $$
"""
WRONG = ("g-wrong", "g-doubled", "h-wrong")
RIGHT = ("g-right", "h-right")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from derivations.outputs.assembly import run
    from derivations.running.cache import ProofCache
    tmp = tmp_path_factory.mktemp("values")
    path = tmp / "values.md"
    path.write_text(VALUES)
    doc = load_document(path)
    out = run(jobs=1, document=doc, repair_budget=60.0, cache=ProofCache(tmp / "cache"))
    return doc, {c["id"]: c for c in out["claims"]}


@pytest.mark.parametrize("cid", WRONG + RIGHT)
def test_which_lines_are_wrong_is_decided_by_numbers(cid, report):
    doc, claims = report
    ctx, claim = doc.parsed[cid]
    truth = fd.truth(ctx, claim, points=3)[0]
    assert truth == ("false" if cid in WRONG else "true")
    assert claims[cid]["verdict"] == ("refuted" if cid in WRONG else "proved")


def _reproved(ctx, claim, latex) -> ir.Claim:
    """The shown statement parsed back from its printing and proved again, about the line's own subject."""
    lhs, rhs = parse_statement(latex, ctx)
    new = ir.Claim(claim.id + "~shown", "", lhs, rhs)
    assert repair.keeps_subject(ctx, claim, new)
    assert repair.check(ctx, new)["verdict"] == "proved"
    assert fd.truth(ctx, new, points=3)[0] == "true"
    return new


@pytest.mark.parametrize("cid", WRONG)
def test_a_wrong_value_line_shows_its_derived_right_hand_side_proved(cid, report):
    doc, claims = report
    ctx, claim = doc.parsed[cid]
    derived = claims[cid]["derived"]
    assert derived is not None and derived["verdict"] == "proved"
    new = _reproved(ctx, claim, derived["latex"])
    assert new.lhs == claim.lhs


@pytest.mark.parametrize("cid", ["g-wrong", "g-doubled"])
def test_the_derived_value_is_the_chain_member_closest_to_the_line(cid, report):
    """The author wrote a sum over entries: the derived line is the chain's sum over entries, as the file
    writes it, not the norm that defines g (which would also say only what g's definition says)."""
    doc, claims = report
    ctx, claim = doc.parsed[cid]
    member = next(c.rhs for c in ctx.claims if c.id == "g-chain")
    assert value_forms(ctx, claim)[0] == member
    new = _reproved(ctx, claim, claims[cid]["derived"]["latex"])
    assert new.rhs == member and not repair.trivial(ctx, new)


def test_without_a_chain_the_definition_at_the_lines_step_is_the_value(report):
    doc, claims = report
    ctx, claim = doc.parsed["h-wrong"]
    new = _reproved(ctx, claim, claims["h-wrong"]["derived"]["latex"])
    assert new.rhs == ctx.definitions["h"].expr


def test_the_doubled_entry_is_repaired_by_the_aligned_part_of_the_derived_sum(report):
    """Σ_i 2 (A v + b)_i: the same sum over the same column as the derived Σ_i (A v + b)_i^2, another body;
    the repair replaces the body and nothing else, and is proved."""
    doc, claims = report
    ctx, claim = doc.parsed["g-doubled"]
    repairs = claims["g-doubled"]["repairs"]
    assert repairs, claims["g-doubled"]["search"]
    best = repairs[0]
    (edit,) = best["edits"]
    assert edit["kind"] == "derived-part" and edit["side"] == "rhs"
    before = parse_statement(f"g = {edit['before']}", ctx)[1]
    assert before == claim.rhs.right                  # the sum's body, not the sum
    _reproved(ctx, claim, best["latex"])


@pytest.mark.parametrize("cid", RIGHT)
def test_a_right_value_line_gets_nothing(cid, report):
    _, claims = report
    c = claims[cid]
    assert c["repairs"] == [] and c["derived"] is None and c["severity"] is None


def test_the_definition_restated_is_shown_as_the_value_never_as_a_repair():
    """s := a + b and the line s = c + c: s = a + b is what s's definition says (true by its names alone).  It is
    shown as the derived line, marked so, and never offered as a repair (two derived-part edits write it); it
    answers nothing a pair of edits could, so the pairs are still tried."""
    text = r"""# Pairs

$$ a \in \mathbb{R}^{n}, \quad b \in \mathbb{R}^{n}, \quad c \in \mathbb{R}^{n} $$

$$ s := a + b $$

$$ s = c + c \tag{two-slips} $$
"""
    from derivations.latex.reader import parse_derivation
    ctx = parse_derivation(text, "pairs.md").contexts[0]
    claim = ctx.claims[0]
    assert fd.truth(ctx, claim, points=3)[0] == "false"
    out = repair.search(ctx, claim, budget=60)
    derived = out["derived"]
    assert derived["verdict"] == "proved" and derived.get("restates_definition")
    assert parse_statement(derived["latex"], ctx) == (claim.lhs, ctx.definitions["s"].expr)
    assert out["search"]["pairs"] > 0
    for r in out["repairs"]:
        assert not repair.trivial(ctx, ir.Claim("x", "", *parse_statement(r["latex"], ctx)))
        assert r["latex"] != derived["latex"]


def test_a_derivative_line_is_no_value_line():
    doc = load_document(Path(__file__).resolve().parent / "corpus" / "cs231n_lecture4.md")
    ctx, claim = doc.parsed["wrong-named-grad-x-order"]
    assert value_forms(ctx, claim) == []


def test_a_wrong_member_of_the_chain_is_never_shown_the_next_form_is():
    """The chain's own second link is wrong (p = ‖v‖² = Σ_i 2 v_i): its member is the closest in form to the line
    Σ_i 3 v_i, but the engines do not prove p = Σ_i 2 v_i, so the derived line is the next form, the definition."""
    text = r"""# A wrong chain

$$ v \in \mathbb{R}^{n} $$

$$ p(v) = \|v\|^2 = \sum_i 2 v_i \tag{p-chain} $$

$$ p = \sum_i 3 v_i \tag{p-wrong} $$
"""
    from derivations.latex.reader import parse_derivation
    ctx = parse_derivation(text, "chain.md").contexts[0]
    claim = next(c for c in ctx.claims if c.id == "p-wrong")
    link = next(c for c in ctx.claims if c.id == "p-chain")
    assert fd.truth(ctx, claim, points=3)[0] == "false" and fd.truth(ctx, link, points=3)[0] == "false"
    forms = value_forms(ctx, claim)
    assert forms == [link.rhs, ctx.definitions["p"].expr]
    out = repair.search(ctx, claim, budget=60)
    derived = out["derived"]
    assert derived["verdict"] == "proved"
    assert parse_statement(derived["latex"], ctx) == (claim.lhs, ctx.definitions["p"].expr)
    for r in out["repairs"]:
        new = ir.Claim("x", "", *parse_statement(r["latex"], ctx))
        assert fd.truth(ctx, new, points=3)[0] == "true"
