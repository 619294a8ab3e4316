"""The repair search (derivations/repair.py): single edits of a wrong line, re-checked by the engines.

The note's hand-written corrections are the oracle: the search, run on an
as-written line alone, must find the correction among its three best repairs.
Nothing here names a repair or a count: which lines are wrong, what corrects
them and what severity they have all come from note.md, the examples and the
engines.
"""
from pathlib import Path

import pytest

from derivations import ir, repair
from derivations.latex.reader import parse_derivation, parse_statement
from derivations.runner import load_claims, load_document, prove_claim, prove_parsed, repair_claim, wants_repair
from derivations.shapes import Typer

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


def _made(kind, claim, ctx):
    return [new for k, _, new in repair.single_edits(claim, ctx) if k == kind]


@pytest.mark.parametrize("kind", sorted(repair.EDITS) + ["last-step"])
def test_every_edit_kind_applies_somewhere_and_changes_the_claim(kind, small):
    ctx, claim = small
    made = _made(kind, claim, ctx)
    if kind == "add-term":       # needs another statement of the same quantity: tested below
        return
    if kind == "last-step":      # needs a free step t
        claim = ir.Claim("t", "t", ir.Ref("x", ir.Time("t")), ir.Ref("x", ir.Time("t")))
        made = _made(kind, claim, ctx)
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
                assert not any(repair.same_statement(ctx, (new.lhs, new.rhs), (c.lhs, c.rhs)) for c in corrections)


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
            elif load_claims()[cid].expressible:       # a builder: only its expressible part is searched
                verdict = prove_claim(cid)["verdict"]
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
        if any(repair.same_statement(ctx, found, t) for t in targets):
            return rank
    return None


def test_the_note_has_errata_with_wrong_lines(note, note_searches):
    assert len(_errata(note)) >= 6 and len(note_searches) >= 6


def test_every_wrong_line_of_the_note_gets_a_proved_repair_or_says_why_not(note_searches):
    for cid, (verdict, found) in note_searches.items():
        assert found["repairs"], (cid, found["search"])
        assert all(r["verdict"] == "proved" for r in found["repairs"])
        assert not found["search"]["budget_exhausted"], cid
        assert found["search"]["tried"] >= 1


def test_the_hand_written_correction_is_among_the_top_three(note, note_searches):
    """For each erratum, the search on its wrong line(s) alone rediscovers the note's correction.

    The dv line of Lemma 1 (`dv = ∂ℓ/∂h = f'(Wh)∘dv`) is two links: its second, ∂ℓ/∂h = f'(Wh)∘dv, is one
    edit from the correction's ∂ℓ/∂Z = f'(Z)∘dv; its first, dv = ∂ℓ/∂h, is two edits (dv and h) from the
    correction's dZ = ∂ℓ/∂Z, and single edits already repair it (dv = ∂ℓ/∂V): that link is the part of the
    dv line a single edit does not express, and the erratum counts when one of its links finds the correction.
    """
    missing = []
    for group, ids, fixes in _errata(note):
        searched = [cid for cid in ids if cid in note_searches]
        if not searched:
            continue
        ranks = {cid: _correction_rank(note, cid, note_searches[cid][1], fixes) for cid in searched}
        if not any(r is not None and r <= 3 for r in ranks.values()):
            missing.append((group, ranks))
    assert not missing


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
            built = {cand.latex: cand.claim for cand in repair.candidates(ctx, c, typer)[0]}
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
        best = found["repairs"][0]
        if verdict == "refuted":
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


def test_a_builder_without_an_expressible_part_is_not_searched(note):
    python = [cid for cid, f in note.fields.items() if f["source"] == "python"]
    from derivations.runner import _repair_target
    for cid in python:
        _ctx, claim, why = _repair_target(note, cid)
        if load_claims()[cid].expressible:
            assert claim is not None and why
        else:
            assert claim is None and "Python builder" in why


def test_the_marked_repair_boxes_the_changed_part(note_searches):
    for (_, found) in note_searches.values():
        for r in found["repairs"]:
            assert r["marked"].count("\\boxed{") == 1
            assert r["edits"][-1]["after"] in r["marked"]
