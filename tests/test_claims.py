"""Each statement of the note gets a computed verdict; the note's errors are found.

The expectations here are our reading of the note (which lines are wrong, and
how), checked against what the engines compute; no verdict is stored anywhere.
"""
import mpmath
import pytest
import sympy as sp

from derivations.concrete import ILL_TYPED, PROVED, REFUTED, explicit, instantiate, statements_at, truth_of
from derivations.registry import AS_WRITTEN, CLAIMS, CORRECTED, SUPPORTING
from derivations.runner import load_claims, run

NOTE_SECTIONS = ["Forward pass", "Mathematical helpers", "Backward pass", "BPTT algorithm", "Comments"]

# Lines of the note that the verifier must find wrong, and how.
WRONG_AS_WRITTEN = {
    "lemma1-dz": ILL_TYPED,          # calls f'(Wh)∘dv the gradient w.r.t. h
    "lemma1-dW": ILL_TYPED,          # (f'(Wh) · dV) h^T: matrix product where ∘ is meant
    "lemma2-du-proof": ILL_TYPED,    # f(v) · dS with a vector for the Jacobian diag(f(v))
    "stacking-entries": REFUTED,     # W_xh's entries repeated in place of W_hh's
    "bptt-dW_hh": ILL_TYPED,         # (...) · h_{t-1} without the transpose
    "bptt-dh_prev": REFUTED,         # W_hh where W_hh^T belongs
    "bptt-algorithm": ILL_TYPED,     # the algorithm run with its lines as written
}


@pytest.fixture(scope="module")
def report():
    return run(jobs=2)


def test_registry_follows_the_note():
    claims = list(load_claims().values())
    sections = [c.section for c in claims]
    assert [s for i, s in enumerate(sections) if i == 0 or sections[i - 1] != s] == NOTE_SECTIONS
    for c in claims:
        assert c.kind in (AS_WRITTEN, CORRECTED, SUPPORTING)
        assert (c.kind == CORRECTED) == (c.corrects is not None)
        assert c.latex and c.label


def test_every_claim_has_a_verdict_from_an_engine(report):
    assert [c["id"] for c in report["claims"]] == list(CLAIMS)
    for c in report["claims"]:
        assert c["methods"], c["id"]
        assert c["verdict"] in {m["verdict"] for m in c["methods"]}


@pytest.mark.parametrize("claim_id,verdict", sorted(WRONG_AS_WRITTEN.items()))
def test_wrong_lines_of_the_note_are_found(report, claim_id, verdict):
    entry = next(c for c in report["claims"] if c["id"] == claim_id)
    assert entry["verdict"] == verdict, entry["reason"]
    assert entry["corrected_by"], "a wrong line is linked to its correction"
    for fix in entry["corrected_by"]:
        assert next(c for c in report["claims"] if c["id"] == fix)["verdict"] == PROVED


def test_every_other_statement_is_proved(report):
    for c in report["claims"]:
        if c["id"] not in WRONG_AS_WRITTEN:
            assert c["verdict"] == PROVED, (c["id"], c["reason"])
    assert report["ok"]


def test_ill_typed_reason_names_the_failing_product(report):
    entry = next(c for c in report["claims"] if c["id"] == "bptt-dW_hh")
    assert "h_prev" in entry["reason"] and "does not compose" in entry["reason"]


def _recheck(claim_id, cex):
    """Evaluate both sides at the engine's counterexample, independently: exact values and mpmath's."""
    claim = CLAIMS[claim_id]
    _, _, where = cex["at"].partition(", t=")
    shape = {k: int(v) for k, v in (kv.split("=") for kv in cex["at"].split(", ") if not kv.startswith("t="))}
    statements = statements_at(claim, shape)
    st = next(s for s in statements if not where or s.where == f"t={where}")
    point = {sp.Symbol(name, real=True): sp.Rational(v) for name, v in cex["values"].items() if "(" not in name}
    i, j = cex["entry"]
    exact = [instantiate(side[i, j].xreplace(point)) for side in (explicit(st.claimed), truth_of(st.truth))]
    with mpmath.workdps(40):
        left, right = (sp.N(e, 40) for e in exact)
    return left, right, exact


def _reads_as(shown: str, exact, value) -> bool:
    """The value a reader sees: exact when rational, else `value` to at most 6 significant digits."""
    if exact.is_Rational:
        return sp.Rational(shown) == exact
    return shown == f"{float(value):.6g}"


@pytest.mark.parametrize("claim_id", [k for k, v in WRONG_AS_WRITTEN.items() if v == REFUTED])
def test_counterexamples_are_real(report, claim_id):
    cex = next(c for c in report["claims"] if c["id"] == claim_id)["counterexample"]
    assert cex is not None
    left, right, exact = _recheck(claim_id, cex)
    assert abs(left - right) > 1e-10
    assert abs(left - sp.Float(cex["claimed_precise"])) < 1e-9 and abs(right - sp.Float(cex["truth_precise"])) < 1e-9
    # Convincing: the two sides differ by a clear margin, shown exactly or to 6 digits.
    relative = abs(left - right) / max(abs(left), abs(right))
    assert cex["clear_margin"] and relative >= 0.1
    assert abs(relative - cex["relative_difference"]) <= 0.005 * relative
    assert _reads_as(cex["claimed"], exact[0], left) and _reads_as(cex["truth"], exact[1], right)
    assert cex["claimed"] != cex["truth"]


def test_whole_algorithm_is_proved_three_ways(report):
    """Directly at T <= 3, on the unrolled graph at T = 6 and 8, and for every T by induction."""
    entry = next(c for c in report["claims"] if c["id"] == "bptt-algorithm-corrected")
    methods = {m["method"]: m["verdict"] for m in entry["methods"]}
    assert methods == {"concrete": PROVED, "unrolled graph": PROVED, "all T (induction)": PROVED}
    assert report["induction"]["verdict"] == PROVED
    assert all(lemma["verdict"] == PROVED for lemma in report["induction"]["lemmas"])


def test_every_statement_typesets_as_mathml():
    from reports.render import mathml
    for c in load_claims().values():
        assert "tex-fallback" not in mathml(c.latex), c.id
