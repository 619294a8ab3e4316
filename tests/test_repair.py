"""The repair search (derivations/analyses/repair.py): single edits of a wrong line, re-checked by the engines.

The note's hand-written corrections are the oracle: the search, run on an
as-written line alone, must find the correction among its three best repairs.
Nothing here names a repair or a count: which lines are wrong, what corrects
them and what severity they have all come from note.md, the examples and the
engines.
"""
from pathlib import Path

import pytest

from derivations.analyses import repair, spelling
from derivations.form import ir
from derivations.form.shapes import Typer
from derivations.latex.reader import parse_derivation, parse_statement
from derivations.outputs import assembly
from derivations.running.runner import load_document, prove_parsed, repair_claim, wants_repair

ROOT = Path(__file__).resolve().parent.parent
NOTE = ROOT / "derivations" / "note" / "note.md"
EXAMPLES = sorted((ROOT / "examples").glob("*.md"))
BUDGET = 120.0          # generous: the ranking does not depend on the budget, only where a search stops


def _verdict(doc, cid):
    return prove_parsed((str(doc.path), cid))["verdict"] if cid in doc.parsed else None


@pytest.fixture(scope="module")
def note():
    return load_document(NOTE)


def _search(doc, cid, verdict):
    return repair_claim((str(doc.path), cid, verdict, BUDGET, None))


# ---------------------------------------------------------------- the edits

SMALL = r"""# Edits

$$ W \in \mathbb{R}^{m \times n}, \quad A \in \mathbb{R}^{n \times n}, \quad B \in \mathbb{R}^{n \times n}, \quad h \in \mathbb{R}^{n}, \quad u \in \mathbb{R}^{n}, \quad x_t \in \mathbb{R}^{n}, \quad f : \mathbb{R} \to \mathbb{R}, \quad \ell \in \mathbb{R} $$

$$ Z := W h, \quad g := \sigma(u) $$

$$ A^{\top} h - A \cdot (u \circ h) + f(Z) + \operatorname{diag}(g) \cdot h = -x_{t} + B h \circ u^2 - g \circ (1 - g) + f'(h) \tag{e} $$
"""


@pytest.fixture(scope="module")
def small():
    ctx = parse_derivation(SMALL, "small.md").contexts[0]
    return ctx, ctx.claims[0]


def _made(kind, claim, ctx, guide=None):
    return [new for e, new in repair.edits(claim, ctx, guide=guide) if e.kind == kind]


@pytest.mark.parametrize("kind", sorted(repair.EDITS) + ["last-step"])
def test_every_edit_kind_applies_somewhere_and_changes_the_claim(kind, small):
    ctx, claim = small
    made = _made(kind, claim, ctx)
    if kind == "add-term":       # needs another statement of the same quantity: tested below
        return
    if kind == "last-step":      # needs a free step t
        claim = ir.Claim("t", "t", ir.Ref("x", ir.Time("t")), ir.Ref("x", ir.Time("t")))
        made = _made(kind, claim, ctx)
    if kind == "add-factor":     # needs a derived right-hand side with a factor the line lacks
        made = _made(kind, claim, ctx, guide=ir.Hadamard(ir.Ref("h"), ir.Apply("sigma", ir.Ref("u"), 1)))
        assert any("\\sigma'(u)" in repair.statement_latex(new) for new in made)
    if kind == "reverse-step":   # needs a step t + k, k not 0
        claim = ir.Claim("r", "r", ir.Ref("x", ir.Time("t")), ir.Ref("x", ir.Time("t", -1)))
        made = _made(kind, claim, ctx)
        assert [repair.statement_latex(new) for new in made] == ["x_t = x_{t+1}"]
    if kind == "move-factor":    # needs a product of three factors: A h diag(u) -> A diag(u) h, ...
        claim = ir.Claim("m", "m", ir.Ref("h"), ir.MatMul(ir.MatMul(ir.Ref("A"), ir.Ref("h")), ir.Diag(ir.Ref("u"))))
        made = _made(kind, claim, ctx)
        assert "h = A \\operatorname{diag}(u) h" in [repair.statement_latex(new) for new in made]
    if kind == "symmetrize":     # needs 2 A of a square A
        claim = ir.Claim("q", "q", ir.Ref("h"), ir.MatMul(ir.Number(2), ir.MatMul(ir.Ref("A"), ir.Ref("h"))))
        made = _made(kind, claim, ctx)
        assert [repair.statement_latex(new) for new in made] == ["h = (A + A^{\\top}) h"]
    if kind == "derived-part":   # needs a derived right-hand side that writes a part of the line otherwise
        guide = repair.replace_at(claim.rhs, (1,), ir.Ref("u"))
        made = _made(kind, claim, ctx, guide=guide)
        assert [new.rhs for new in made] == [guide]
    assert made, kind
    assert all((new.lhs, new.rhs) != (claim.lhs, claim.rhs) for new in made), kind


def test_edits_do_what_their_names_say(small):
    ctx, claim = small
    text = {k: [repair.statement_latex(c) for c in _made(k, claim, ctx)] for k in repair.EDITS}
    assert any("A h" in t.split("=")[0] for t in text["remove-transpose"])
    assert any("A^{\\top} \\cdot (u \\circ h)" in t for t in text["add-transpose"])
    assert any("A \\circ (u \\circ h)" in t for t in text["product-to-hadamard"])
    assert any("A \\cdot (u \\cdot h)" in t or "A \\cdot (u h)" in t for t in text["hadamard-to-product"])
    assert any("f'(Z)" in t for t in text["add-derivative"])
    assert any("\\sigma'(u)" in t for t in text["add-derivative"])        # g := σ(u) -> σ'(u)
    assert any("1 - g^2" in t for t in text["swap-derivative-formula"])
    assert any("x_{t-1}" in t for t in text["shift-time"]) and any("x_{t+1}" in t for t in text["shift-time"])
    assert any("\\operatorname{diag}(h)" in t for t in text["column-to-diagonal"])
    assert any("\\operatorname{diag}" not in t.split("=")[0] for t in text["diagonal-to-column"])
    assert any("= x_{t}" in t or "= x_t" in t for t in text["flip-sign"])
    assert any(t.split("=")[0].strip().startswith("-") for t in text["flip-sign"])
    assert any("u^2" not in t and "u" in t.split("=")[1] for t in text["remove-square"])


def test_an_edit_that_does_not_type_check_is_pruned_before_any_engine(small):
    ctx, claim = small
    typer = Typer(ctx)
    edited = list(repair.edits(claim, ctx, typer))
    typed = [new for _, new in edited if repair.type_checks(new, typer)]
    assert len(typed) < len(edited)          # some edits break the shapes (A^T on a column, W for A, ...)
    ranked, pruned = repair.candidates(ctx, claim, typer)
    assert pruned > 0 and all(repair.type_checks(c.claim, typer) for c in ranked)


def test_add_term_takes_a_term_another_statement_gives_for_the_same_quantity():
    text = r"""# Terms

$$ a \in \mathbb{R}^{n}, \quad b \in \mathbb{R}^{n}, \quad c \in \mathbb{R}^{n} $$

$$ s := a + b + c $$

$$ s = a + b + c \tag{full} $$

$$ s = a + b \tag{short} $$
"""
    ctx = parse_derivation(text, "terms.md").contexts[0]
    short = next(c for c in ctx.claims if c.id == "short")
    added = [repair.statement_latex(n) for k, _, n in repair.single_edits(short, ctx) if k == "add-term"]
    assert added == ["s = a + b + c"]


def test_a_correction_is_never_a_source_of_terms(note):
    """The search must find a repair from the line and its context alone, not copy the file's correction."""
    for (ctx, claim) in note.parsed.values():
        if claim.kind != "as-written" or claim.lhs is None:       # a whole algorithm is searched line by line
            continue
        corrections = [c for c in ctx.claims if c.kind == "corrected" and c.lhs is not None]
        for kind, _, new in repair.single_edits(claim, ctx):
            if kind == "add-term":
                assert not any(spelling.same_statement(ctx, (new.lhs, new.rhs), (c.lhs, c.rhs)) for c in corrections)


# ---------------------------------------------------------------- the note's errata

def _errata(doc):
    """(as-written group, its wrong claims, the correcting claims) for every correction in the file."""
    by_group: dict = {}
    for cid, f in doc.fields.items():
        by_group.setdefault(f["group"] or cid, []).append(cid)
    out = []
    for group, ids in by_group.items():
        fixes = sorted({x for cid in ids for x in doc.fields[cid]["corrected_by"]})
        if fixes and doc.fields[ids[0]]["kind"] == "as-written":
            out.append((group, ids, fixes))
    return out


@pytest.fixture(scope="module")
def note_searches(note):
    """The repair search on every wrong as-written line of the note, each on its own."""
    out = {}
    for group, ids, fixes in _errata(note):
        for cid in ids:
            if cid in note.parsed:
                verdict = _verdict(note, cid)
            else:
                continue
            if wants_repair(note, cid, {"verdict": verdict}):
                out[cid] = (verdict, _search(note, cid, verdict))
    return out


def _statement(doc, cid):
    if cid in doc.parsed:
        ctx, c = doc.parsed[cid]
        return ctx, (c.lhs, c.rhs)
    return None, None


def _correction_rank(doc, cid, search, fixes) -> int | None:
    """The 1-based rank of the first repair that says what one of the correcting claims (or links) says."""
    ctx = doc.contexts[cid]
    targets = [_statement(doc, f)[1] for f in fixes]
    targets += [_statement(doc, x)[1] for f in fixes for x in doc.fields if doc.fields[x]["group"] == f]
    targets = [t for t in targets if t is not None]
    for rank, r in enumerate(search["repairs"], 1):
        found = parse_statement(r["latex"], ctx)
        if any(spelling.same_statement(ctx, found, t) for t in targets):
            return rank
    return None


def test_the_note_has_errata_with_wrong_lines(note, note_searches):
    assert len(_errata(note)) >= 6 and len(note_searches) >= 6


def _fix_statements(doc, cid):
    """The (lhs, rhs) of every claim (or chain link) that corrects the erratum `cid` belongs to."""
    for group, ids, fixes in _errata(doc):
        if cid in ids:
            targets = [_statement(doc, f)[1] for f in fixes]
            targets += [_statement(doc, x)[1] for f in fixes for x in doc.fields if doc.fields[x]["group"] == f]
            return [t for t in targets if t is not None]
    return []


def _keeps_subject(doc, cid, statement) -> bool:
    """The statement is about what the wrong line is about (repair.keeps_subject): could be a repair of it."""
    if cid not in doc.parsed:
        return True
    ctx, claim = doc.parsed[cid]
    return repair.keeps_subject(ctx, claim, ir.Claim("x", "", *statement))


def test_every_wrong_line_of_the_note_gets_a_proved_repair_or_says_why_not(note, note_searches):
    """A repair or the derived right-hand side, both proved; or, for a line whose only fixes change what it is
    about (the note's own correction included), the search says so."""
    for cid, (verdict, found) in note_searches.items():
        assert all(r["verdict"] == "proved" for r in found["repairs"])
        ctx = note.contexts[cid]
        for r in found["repairs"]:               # none says only what its names say (dv = ∂ℓ/∂V)
            assert not repair.trivial(ctx, ir.Claim("x", "", *parse_statement(r["latex"], ctx))), r["latex"]
            if cid in note.parsed:
                assert _keeps_subject(note, cid, parse_statement(r["latex"], ctx)), r["latex"]
        assert not found["search"]["budget_exhausted"], cid
        assert found["search"]["tried"] >= 1
        if found["repairs"] or found.get("derived"):
            assert not found.get("derived") or found["derived"]["verdict"] == "proved"
            continue
        assert "change what the line is about" in found["search"]["note"], (cid, found["search"])
        fixes = _fix_statements(note, cid)
        assert fixes and not any(_keeps_subject(note, cid, f) for f in fixes), cid


def test_the_hand_written_correction_is_among_the_top_three(note, note_searches):
    """For each erratum, the search on its wrong line(s) alone rediscovers the note's correction.

    The dv line of Lemma 1 (`dv = ∂ℓ/∂h = f'(Wh)∘dv`) is two links: its second, ∂ℓ/∂h = f'(Wh)∘dv, is one
    edit from the correction's ∂ℓ/∂Z = f'(Z)∘dv; its first, dv = ∂ℓ/∂h, is two edits (dv and h) from the
    correction's dZ = ∂ℓ/∂Z, and single edits already repair it (dv = ∂ℓ/∂V): that link is the part of the
    dv line a single edit does not express, and the erratum counts when one of its links finds the correction.
    """
    missing, checked = [], 0
    for group, ids, fixes in _errata(note):
        # A correction that changes what a line is about (∂ℓ/∂Z for ∂ℓ/∂h) is no repair of that line (issue 19):
        # such links are held to the test above instead.
        searched = [cid for cid in ids if cid in note_searches
                    and any(_keeps_subject(note, cid, f) for f in _fix_statements(note, cid))]
        if not searched:
            continue
        checked += 1
        ranks = {cid: _correction_rank(note, cid, note_searches[cid][1], fixes) for cid in searched}
        if not any(r is not None and r <= 3 for r in ranks.values()):
            missing.append((group, ranks))
    assert not missing and checked >= 4


def test_a_single_wrong_link_finds_its_correction_first_or_second(note, note_searches):
    """Errata whose as-written line has one wrong link: the correction ranks high, not just somewhere."""
    for group, ids, fixes in _errata(note):
        searched = [cid for cid in ids if cid in note_searches]
        if len(searched) == 1:
            rank = _correction_rank(note, searched[0], note_searches[searched[0]][1], fixes)
            assert rank is not None and rank <= 3, (group, rank)


def test_repairs_print_back_to_the_same_statement(note, note_searches):
    """parse(print(repair)) == repair for every repair the search finds on the note."""
    for cid, (_, found) in note_searches.items():
        ctx = note.contexts[cid]
        for r in found["repairs"]:
            lhs, rhs = parse_statement(r["latex"], ctx)
            assert repair.statement_latex(ir.Claim("x", "x", lhs, rhs)) == r["latex"]
        # and the IR the search built is the IR the printed line parses to
        if cid in note.parsed:
            c = note.parsed[cid][1]
            typer = Typer(ctx)
            from derivations.analyses.derive import derived_rhs
            built = {cand.latex: cand.claim for cand in repair.candidates(ctx, c, typer, guide=derived_rhs(ctx, c))[0]}
            for r in found["repairs"]:
                assert parse_statement(r["latex"], ctx) == (built[r["latex"]].lhs, built[r["latex"]].rhs)


def test_every_candidate_of_every_wrong_line_prints_back():
    """The printer round-trips every type-checked single edit of every as-written line of the note and the
    examples (no engine needed): a repair shown is a repair one can paste back into the file."""
    for path in [NOTE, *EXAMPLES]:
        doc = load_document(path)
        for cid, (ctx, claim) in doc.parsed.items():
            if claim.kind != "as-written" or claim.lhs is None:   # a whole algorithm: its lines are the claims
                continue
            for cand in repair.candidates(ctx, claim, Typer(ctx))[0]:
                assert parse_statement(cand.latex, ctx) == (cand.claim.lhs, cand.claim.rhs), (cid, cand.latex)


def test_severity_of_the_note_errata_comes_from_the_verdict_and_the_best_repair(note_searches):
    seen = set()
    for (verdict, found) in note_searches.values():
        sev = repair.severity(verdict, found["repairs"])
        best = found["repairs"][0] if found["repairs"] else None
        if verdict == "refuted" or best is None:
            assert sev == repair.SUBSTANTIVE
        elif best["notation"] and len(best["edits"]) == 1:
            assert sev == repair.NOTATION
        else:
            assert sev == repair.SUBSTANTIVE
        seen.add(sev)
    assert seen == {repair.NOTATION, repair.SUBSTANTIVE}       # the note has both kinds


def test_a_notation_edit_is_one_that_changes_only_how_a_value_is_written():
    ctx = parse_derivation(SMALL, "small.md").contexts[0]
    typer = Typer(ctx)
    h, A = ir.Ref("h"), ir.Ref("A")
    assert repair._is_notation(repair.Edit("add-transpose", "rhs", (), h, ir.Transpose(h)), typer)
    assert not repair._is_notation(repair.Edit("add-transpose", "rhs", (), A, ir.Transpose(A)), typer)
    assert repair._is_notation(repair.Edit("product-to-hadamard", "rhs", (), ir.MatMul(h, h), ir.Hadamard(h, h)),
                               typer)
    assert not repair._is_notation(repair.Edit("replace-symbol", "rhs", (), A, ir.Ref("B")), typer)


# ---------------------------------------------------------------- the examples
# Every deliberately wrong example line gets a proved repair: tests/test_examples.py, on the report of a
# whole run (the searches run in the proving pool there).


# ---------------------------------------------------------------- the search itself

def test_a_true_line_gets_no_repair_search(note):
    cid = next(c for c, (_, claim) in note.parsed.items() if claim.kind == "as-written")
    assert not wants_repair(note, cid, {"verdict": "proved"})
    assert not wants_repair(note, next(c for c, f in note.fields.items() if f["kind"] == "corrected"),
                            {"verdict": "refuted"})


def test_a_candidate_that_crashes_an_engine_is_recorded_not_fatal(note, monkeypatch):
    ctx, claim = note.parsed["lemma1-dW-2"] if "lemma1-dW-2" in note.parsed else next(
        x for x in note.parsed.values() if x[1].kind == "as-written")
    calls = []

    def crash(ctx, claim):
        calls.append(claim)
        raise RuntimeError("engine crashed on purpose")
    monkeypatch.setattr(repair, "_numerically_different", crash)
    out = repair.search(ctx, claim, budget=30)
    assert calls and out["repairs"] == []
    assert len(out["search"]["errors"]) == out["search"]["tried"] > 0
    assert "crashed on purpose" in out["search"]["errors"][0]["error"]


def test_a_search_cut_short_by_its_budget_says_so(note):
    ctx, claim = next(x for x in note.parsed.values() if x[1].kind == "as-written")
    out = repair.search(ctx, claim, budget=0.0)
    assert out["search"]["budget_exhausted"] is True
    assert out["search"]["tried"] == 0


def test_a_candidate_that_makes_an_engine_run_away_is_stopped_at_the_budget(note, monkeypatch):
    import time
    ctx, claim = next(x for x in note.parsed.values() if x[1].kind == "as-written")
    monkeypatch.setattr(repair, "_numerically_different", lambda ctx, claim: False)

    def spin(ctx, claim):
        while True:
            pass
    monkeypatch.setattr(repair, "check", spin)
    start = time.perf_counter()
    out = repair.search(ctx, claim, budget=1.0)
    assert out["search"]["budget_exhausted"] is True and out["repairs"] == []
    assert time.perf_counter() - start < 10


def test_pairs_are_tried_only_where_no_single_edit_is_proved():
    text = r"""# Pairs

$$ a \in \mathbb{R}^{n}, \quad b \in \mathbb{R}^{n}, \quad c \in \mathbb{R}^{n} $$

$$ s := a + b $$

$$ s = c + c \tag{two-slips} $$
"""
    ctx = parse_derivation(text, "pairs.md").contexts[0]
    claim = ctx.claims[0]
    out = repair.search(ctx, claim, budget=60)
    assert out["search"]["pairs"] > 0
    assert out["repairs"] and all(len(r["edits"]) == 2 for r in out["repairs"])
    lhs, rhs = parse_statement(out["repairs"][0]["latex"], ctx)
    assert repair.check(ctx, ir.Claim("x", "", lhs, rhs))["verdict"] == "proved"


def test_the_marked_repair_boxes_the_changed_part(note_searches):
    for (_, found) in note_searches.values():
        for r in found["repairs"]:
            assert r["marked"].count("\\boxed{") == 1
            assert r["edits"][-1]["after"] in r["marked"]


# ---------------------------------------------------------------- derive, then align (issue 19)
# Six wrong lines a user wrote: the repair shown first must keep the line's subject, be proved, and be true by
# finite differences (tests/fd.py, no engine); the derived right-hand side must be true by the same numbers.

LSTM_DC = r"""# An LSTM through time, with a given gradient of its read-out

$$ W_f, W_i, W_o, W_g \in \mathbb{R}^{H \times D}, \quad U_f, U_i, U_o, U_g \in \mathbb{R}^{H \times H}, \quad W_y \in \mathbb{R}^{K \times H} $$

$$ x_t \in \mathbb{R}^{D}, \quad h_0 \in \mathbb{R}^{H}, \quad c_0 \in \mathbb{R}^{H}, \quad \ell \in \mathbb{R} $$

$$ f_t := \sigma(W_f x_t + U_f h_{t-1}), \quad i_t := \sigma(W_i x_t + U_i h_{t-1}), \quad o_t := \sigma(W_o x_t + U_o h_{t-1}), \quad g_t := \tanh(W_g x_t + U_g h_{t-1}) $$

$$ c_t := f_t \circ c_{t-1} + i_t \circ g_t, \quad h_t := o_t \circ \tanh(c_t), \quad y_t := W_y h_t $$

$$ dy_t \in \mathbb{R}^{K}, \quad dy_t := \frac{\partial \ell}{\partial y_t}, \quad dh_t := \frac{\partial \ell}{\partial h_t}, \quad dc_t := \frac{\partial \ell}{\partial c_t} $$

$$ dc_t = dh_t \circ o_t \circ (1 - \tanh^2(c_t)) + dc_{t+1} \tag{dc-no-forget} $$
"""

QUADRATIC = r"""# A quadratic form

$$ x \in \mathbb{R}^{n}, \quad S \in \mathbb{R}^{n \times n} $$

$$ f := x^{\top} S x $$

$$ \frac{\partial f}{\partial x} = 2 S x \tag{quad-2Sx} $$
"""

OUTER = r"""# A layer's weight gradient written the wrong way round

$$ a_1 \in \mathbb{R}^{n}, \quad W_2 \in \mathbb{R}^{m \times n}, \quad \ell \in \mathbb{R} $$

$$ z_2 := W_2 a_1 $$

$$ \delta_2 \in \mathbb{R}^{m}, \quad \delta_2 := \frac{\partial \ell}{\partial z_2} $$

$$ \frac{\partial \ell}{\partial W_2} = a_1 \delta_2^{\top} \tag{dW2-outer} $$
"""

BACKPROP = r"""# Back-propagation through one layer, with the transpose left out

$$ x \in \mathbb{R}^{p}, \quad W_1 \in \mathbb{R}^{n \times p}, \quad W_2 \in \mathbb{R}^{m \times n}, \quad \ell \in \mathbb{R} $$

$$ z_1 := W_1 x, \quad a_1 := \tanh(z_1), \quad z_2 := W_2 a_1 $$

$$ \delta_2 \in \mathbb{R}^{m}, \quad \delta_2 := \frac{\partial \ell}{\partial z_2}, \quad \delta_1 := \frac{\partial \ell}{\partial z_1} $$

$$ \delta_1 = W_2 \delta_2 \odot \tanh'(z_1) \tag{delta1-no-transpose} $$
"""


def _inline(text, cid):
    doc = parse_derivation(text, f"{cid}.md")
    ctx = doc.context_of(cid)
    return ctx, next(c for c in ctx.claims if c.id == cid)


def _from_file(path, cid):
    doc = load_document(ROOT / path)
    return doc.parsed[cid]


ISSUE_CASES = {
    "db-no-diag": lambda: _from_file("tests/derivations/tanh_rnn.md", "db-no-diag"),
    "dc-no-forget": lambda: _inline(LSTM_DC, "dc-no-forget"),
    "dz-sign": lambda: _from_file("tests/derivations/gru.md", "dz-sign"),
    "quad-2Sx": lambda: _inline(QUADRATIC, "quad-2Sx"),
    "dW2-outer": lambda: _inline(OUTER, "dW2-outer"),
    "delta1-no-transpose": lambda: _inline(BACKPROP, "delta1-no-transpose"),
}
ISSUE_BUDGET = 30.0        # seconds, the search's own budget (each of these takes a few seconds)


@pytest.fixture(scope="module")
def issue_searches():
    import fd
    out = {}
    for cid, make in ISSUE_CASES.items():
        ctx, claim = make()
        verdict = repair.check(ctx, claim)["verdict"]
        out[cid] = (ctx, claim, verdict, fd.truth(ctx, claim)[0],
                    repair.search(ctx, claim, budget=ISSUE_BUDGET, verdict=verdict))
    return out


def _subject(ctx, e):
    from derivations.analyses.derive import subject
    return subject(ctx, e)


@pytest.mark.parametrize("cid", sorted(ISSUE_CASES))
def test_the_issue_lines_are_wrong_by_the_numbers(cid, issue_searches):
    _, _, verdict, truth, _ = issue_searches[cid]
    assert verdict in ("refuted", "ill-typed") and truth in ("false", "ill-typed"), (verdict, truth)


@pytest.mark.parametrize("cid", sorted(ISSUE_CASES))
def test_the_repair_shown_first_keeps_the_subject_is_proved_and_true(cid, issue_searches):
    import fd
    ctx, claim, _, _, found = issue_searches[cid]
    assert found["repairs"], found["search"]
    best = found["repairs"][0]
    lhs, rhs = parse_statement(best["latex"], ctx)
    assert _subject(ctx, lhs) == _subject(ctx, claim.lhs) is not None
    assert lhs == claim.lhs                      # these lines are fixed in their formula, not in their name
    assert repair.check(ctx, ir.Claim("again", "", lhs, rhs))["verdict"] == "proved"
    assert fd.truth(ctx, ir.Claim("fd", "", lhs, rhs))[0] == "true"
    assert not any(e["kind"] == "last-step" for r in found["repairs"] for e in r["edits"])


@pytest.mark.parametrize("cid", sorted(ISSUE_CASES))
def test_the_derived_right_hand_side_is_true(cid, issue_searches):
    """The right-hand side derived from the definitions, in the file's names: proved and true by the numbers."""
    import fd
    ctx, claim, _, _, found = issue_searches[cid]
    derived = found["derived"]
    assert derived is not None and derived["verdict"] == "proved", found["search"].get("derived_not_proved")
    lhs, rhs = parse_statement(derived["latex"], ctx)
    assert lhs == claim.lhs
    assert fd.truth(ctx, ir.Claim("fd", "", lhs, rhs))[0] == "true"


def test_the_derived_right_hand_side_keeps_the_files_notation(issue_searches):
    """tanh_rnn.md writes diag(1 - h_t^2) and dh_t: so does the derived line; the LSTM line keeps ∘ and dc_{t+1}."""
    tanh = issue_searches["db-no-diag"][4]["derived"]["rhs"]
    assert "\\operatorname{diag}(1 - h_t^2)" in tanh and "dh_t" in tanh and "\\circ" not in tanh
    lstm = issue_searches["dc-no-forget"][4]["derived"]["rhs"]
    assert "dc_{t+1} \\circ f_{t+1}" in lstm and "\\operatorname{diag}" not in lstm


def test_a_transposed_product_is_shown_written_out(issue_searches):
    """(a_1 δ_2^T)^T is shown as δ_2 a_1^T: no repair and no derived line transposes a product."""
    for ctx, _, _, _, found in issue_searches.values():
        shown = [r["latex"] for r in found["repairs"]] + ([found["derived"]["latex"]] if found["derived"] else [])
        for latex in shown:
            _, rhs = parse_statement(latex, ctx)
            assert not any(isinstance(n, ir.Transpose) and isinstance(n.arg, ir.MatMul) for n in rhs.walk()), latex
    best = issue_searches["dW2-outer"][4]["repairs"][0]
    assert best["edit"] == "add-transpose" and best["latex"].endswith("\\delta_2 a_1^{\\top}")


def test_fewer_and_smaller_edits_rank_first(issue_searches):
    for _, _, _, _, found in issue_searches.values():
        sizes = [len(r["edits"]) for r in found["repairs"]]
        assert sizes == sorted(sizes)


def test_every_printed_repair_parses_back_to_its_intermediate_form(issue_searches):
    """parse(print(x)) == x for every candidate the guided search builds (the repairs shown are among them)
    and every derived line, on the issue's lines and every wrong line of the examples."""
    from derivations.analyses.derive import derived_rhs
    cases = [(ctx, claim) for ctx, claim, _, _, _ in issue_searches.values()]
    for path in EXAMPLES:
        doc = load_document(path)
        cases += [(ctx, c) for ctx, c in doc.parsed.values() if c.kind == "as-written"]
    checked = 0
    for ctx, claim in cases:
        guide = derived_rhs(ctx, claim)
        if guide is not None:
            assert parse_statement(repair.statement_latex(ir.Claim("d", "", claim.lhs, guide)), ctx) == \
                (claim.lhs, guide)
        for cand in repair.candidates(ctx, claim, Typer(ctx), guide=guide)[0]:
            assert parse_statement(cand.latex, ctx) == (cand.claim.lhs, cand.claim.rhs), cand.latex
            checked += 1
    assert checked > 100
    # the product inside ∘ keeps its parentheses, for a reader who would bind ∘ first
    best = issue_searches["delta1-no-transpose"][4]["repairs"][0]["latex"]
    assert best.split("=")[1].strip().startswith("(W_2^") and "\\delta_2) \\odot" in best


def test_no_candidate_changes_the_subject_or_says_nothing():
    """∂L/∂c = Σ_t do_t for ∂L/∂b = Σ_t dh_t (another parameter), a line about the last step only, a statement
    true by its names (dv = ∂ℓ/∂V): never candidates."""
    ctx, claim = _from_file("tests/derivations/tanh_rnn.md", "db-no-diag")
    from derivations.analyses.derive import derived_rhs
    ranked, pruned = repair.candidates(ctx, claim, Typer(ctx), guide=derived_rhs(ctx, claim))
    assert pruned > 0
    for cand in ranked:
        assert _subject(ctx, cand.claim.lhs) == _subject(ctx, claim.lhs), cand.latex
        assert not repair.trivial(ctx, cand.claim)
    every = [new for _, new in repair.edits(claim, ctx)]
    assert any(_subject(ctx, new.lhs) != _subject(ctx, claim.lhs) for new in every)   # such edits exist


# ---------------------------------------------------------------- words for users (issue 19, item 4)

PER_STEP = r"""# A per-step loss, read with total derivatives

$$ W \in \mathbb{R}^{H \times D}, \quad U \in \mathbb{R}^{H \times H}, \quad x_t \in \mathbb{R}^{D}, \quad h_0 \in \mathbb{R}^{H} $$

$$ h_t := \sigma(W x_t + U h_{t-1}), \quad E_t := h_t^T h_t $$

$$ \frac{\partial E_t}{\partial U} = 2 (h_t \circ (1 - h_t) \circ h_t) h_{t-1}^T \tag{one-step-only} $$

$$ \frac{\partial E_t}{\partial U} = 3 (h_t \circ (1 - h_t) \circ h_t) h_{t-1}^T \tag{wrong-either-way} $$
"""


@pytest.fixture(scope="module")
def per_step_report(tmp_path_factory):
    from derivations.outputs.assembly import run
    path = tmp_path_factory.mktemp("reading") / "per_step.md"
    path.write_text(PER_STEP)
    return run(jobs=1, document=load_document(path), repair_budget=30.0)


def test_a_wrong_line_true_in_the_other_reading_says_which_reading_was_used(per_step_report):
    """∂E_t/∂U counting only step t's use of U is false as a total derivative (the default) and true with the
    earlier steps held fixed: the claim says so; a line false in both readings says nothing of the kind."""
    import fd
    by_id = {c["id"]: c for c in per_step_report["claims"]}
    ctx, claim = parse_derivation(PER_STEP, "p.md").contexts[0], None
    claim = next(c for c in ctx.claims if c.id == "one-step-only")
    assert fd.truth(ctx, claim)[0] == "false"                                   # total derivatives: false
    from dataclasses import replace
    assert repair.check(replace(ctx, held_fixed=True), claim)["verdict"] in ("proved", "checked")
    note = by_id["one-step-only"]["other_reading"]
    assert by_id["one-step-only"]["verdict"] == "refuted"
    assert note.startswith("True with earlier steps held fixed") and "total derivative" in note
    assert by_id["wrong-either-way"]["verdict"] == "refuted" and by_id["wrong-either-way"]["other_reading"] is None


def test_no_user_facing_text_says_registered(per_step_report):
    from derivations.outputs.cli import summary
    from reports.render import render_html
    text = summary(per_step_report, {}) + render_html(per_step_report)
    assert "reading: True with earlier steps held fixed" in summary(per_step_report, {})
    assert "registered" not in text.lower()
    assert "registered" not in (ROOT / "docs" / "derivation-format.md").read_text().lower()


# ---------------------------------------------------------------- the budget is per file, and what was found is kept

def test_a_search_cut_short_is_cached_with_where_it_stopped(tmp_path):
    """A rerun of an unchanged file with the same budget takes the search from the cache, cut short or not: it
    does not spend the budget again, and it says how far the search got.  A rerun with a larger budget goes on
    from where the cut-short search stopped (the candidates it tried are not tried again)."""
    from derivations.outputs.assembly import run
    from derivations.running.cache import ProofCache
    path = tmp_path / "quad.md"
    path.write_text(QUADRATIC)
    first = run(jobs=1, document=load_document(path), cache=ProofCache(tmp_path / "cache"), repair_budget=0.0)
    (c,) = [c for c in first["claims"] if c["id"] == "quad-2Sx"]
    assert c["search"]["budget_exhausted"] and c["search"]["tried"] == 0 and c["repairs"] == []
    assert c["search"]["stopped"].startswith("cut short") and c["search"]["resume"]["tried"] == []
    same = run(jobs=1, document=load_document(path), cache=ProofCache(tmp_path / "cache"), repair_budget=0.0)
    (d,) = [d for d in same["claims"] if d["id"] == "quad-2Sx"]
    assert d["search"] == c["search"] and same["cache"]["misses"] == 0
    # a larger budget: the search goes on, and is kept finished
    more = run(jobs=1, document=load_document(path), cache=ProofCache(tmp_path / "cache"), repair_budget=60.0)
    (e,) = [e for e in more["claims"] if e["id"] == "quad-2Sx"]
    assert e["repairs"] and not e["search"]["budget_exhausted"] and "resumed" in e["search"]
    again = run(jobs=1, document=load_document(path), cache=ProofCache(tmp_path / "cache"), repair_budget=60.0)
    (f,) = [f for f in again["claims"] if f["id"] == "quad-2Sx"]
    assert f["search"] == e["search"] and f["repairs"] == e["repairs"]


def test_a_resumed_search_does_not_try_again_what_it_tried(monkeypatch):
    """Resuming a search cut short after some candidates: those are skipped (by fingerprint), the proved ones
    kept, and the search counts every candidate tried in all."""
    from derivations.analyses.derive import derived_rhs
    ctx, claim = _inline(QUADRATIC, "quad-2Sx")
    whole = repair.search(ctx, claim, budget=60.0, verdict="refuted")
    assert whole["repairs"] and not whole["search"]["budget_exhausted"]
    ranked, _ = repair.candidates(ctx, claim, repair.Typer(ctx), guide=derived_rhs(ctx, claim))
    first = repair._tag(ranked[0].latex)
    earlier = {"repairs": [], "search": {"resume": {"tried": [first], "seconds": 1.0, "derived": None}}}
    seen = []
    real = repair._try

    def spy(ctx_, claim_, cand, cache, info):
        seen.append(repair._tag(cand.latex))
        return real(ctx_, claim_, cand, cache, info)
    monkeypatch.setattr(repair, "_try", spy)
    again = repair.search(ctx, claim, budget=60.0, verdict="refuted", resume=earlier)
    assert first not in seen and again["search"]["resumed"]["tried_before"] == 1
    assert again["search"]["budget_seconds"] == 61.0 and again["repairs"]
    assert again["search"]["tried"] == whole["search"]["tried"] or again["search"]["tried"] >= 2


def test_the_budget_is_shared_by_the_files_searches(monkeypatch, tmp_path):
    """Every search of a file ends at one deadline: each job is given the file's deadline, not seconds of its own."""
    from derivations.running import runner
    jobs = []
    real = runner.repair_claim

    def spy(job):
        jobs.append(job)
        return real(job)
    monkeypatch.setattr(runner, "repair_claim", spy)
    path = tmp_path / "two.md"
    path.write_text(QUADRATIC + "\n$$ \\frac{\\partial f}{\\partial x} = S x \\tag{quad-Sx} $$\n")
    assembly.run(jobs=1, document=load_document(path), repair_budget=30.0)
    deadlines = {job[3] for job in jobs}
    assert len(jobs) >= 2 and len(deadlines) == 1
    (budget,) = deadlines
    assert budget[0] == "until"


def test_trivial_means_true_by_the_names_alone(note):
    """dv = ∂ℓ/∂V is dv's definition; x = x + y says only y = 0; but ∂ℓ/∂U = dU + Σ_t ... with a given dU (the
    loss's direct use of U) is a statement about ∂ℓ/∂U."""
    ctx, _ = note.parsed["lemma1-dz-1"]
    dv = parse_statement(r"dv = \frac{\partial \ell}{\partial V}", ctx)
    assert repair.trivial(ctx, ir.Claim("x", "", *dv))
    assert repair.trivial(ctx, ir.Claim("x", "", *parse_statement(r"dv = dv + \frac{\partial \ell}{\partial h}", ctx)))
    doc = load_document(ROOT / "tests" / "derivations" / "adversarial" / "a4.md")
    ctx, _ = doc.parsed["dU-with-given"]
    given = doc.parsed["dU-with-given"][1]
    assert not repair.trivial(ctx, given)


def test_every_derived_line_of_the_examples_and_test_derivations_is_true_by_finite_differences():
    """The deriver is not trusted (a derived line is shown only when the engines prove it), but it should be
    right: on every line of these files that has a gradient or Jacobian on its left, the derived right-hand side
    agrees with finite differences (tests/fd.py) at every step of every T tried."""
    import fd

    from derivations.analyses.derive import derived_rhs
    files = [*EXAMPLES, *sorted((ROOT / "tests" / "derivations").glob("*.md"))]
    checked, wrong = 0, []
    for path in files:
        doc = load_document(path)
        for cid, (ctx, claim) in doc.parsed.items():
            rhs = derived_rhs(ctx, claim)
            if rhs is None:
                continue
            checked += 1
            truth = fd.truth(ctx, ir.Claim("derived", "", claim.lhs, rhs))[0]
            if truth != "true":
                wrong.append((path.name, cid, truth))
    assert checked >= 60 and not wrong


@pytest.mark.parametrize("name, cid", [("a8.md", "zero-wrong"), ("a8.md", "zero-x-wrong"), ("a9.md", "zero3-wrong"),
                                       ("a9.md", "zero4-wrong"), ("a9.md", "zero-x3-wrong"), ("a9.md", "x1"),
                                       ("c1.md", "fb3-zero-wrong"), ("c1.md", "fx3-zero-wrong"), ("c1.md", "fb")])
def test_a_jacobian_through_other_steps_is_derived_in_a_form_true_at_every_step(name, cid):
    """∂b_t/∂b_{t+3} is zero where b_{t+3} lies past T; the local factors opened (U_b^T diag(1 - b_{t+2}^2) ...)
    are not, so the opened product is false near T.  The derived line goes one level from the numerator's
    side, ∂b_{t+1}/∂b_{t+3} U_b^T diag(1 - b_t^2), the file's own Jacobian notation, true at every step (by
    finite differences here), and the structural engine proves it for every T (with both directions, c1, through
    the Jacobians it keeps whole: ∂f_t/∂b_t runs through f_{t-1}, b_{t-1} and every earlier step)."""
    import fd

    from derivations.analyses.derive import derived_rhs
    ctx, claim = load_document(ROOT / "tests" / "derivations" / "adversarial" / name).parsed[cid]
    rhs = derived_rhs(ctx, claim)
    assert rhs is not None and any(isinstance(n, ir.Deriv) for n in rhs.walk())
    derived = ir.Claim(cid + "~derived", "", claim.lhs, rhs)
    assert fd.truth(ctx, derived)[0] == "true"
    assert repair.keeps_subject(ctx, claim, derived) and not repair.trivial(ctx, derived)
    assert repair.check(ctx, derived)["verdict"] == "proved"
