"""Each statement of the note gets a computed verdict; the note's errors are found.

The expectations here are our reading of the note (which lines are wrong, and
how), checked against what the engines compute; no verdict is stored anywhere.
The note is read from its LaTeX (derivations/note/note.md); a chain a = b = c
is one claim per link, id-1, id-2, ...
"""
import autograd.numpy as anp
import fd
import numpy as np
import pytest
import sympy as sp
from autograd import grad
from oracle import difference

from derivations.engines.verdicts import ILL_TYPED, PROVED, REFUTED
from derivations.outputs import assembly
from derivations.running.runner import load_document

# Lines (links of chains) of the note that the verifier must find wrong, and how.
WRONG_AS_WRITTEN = {
    "lemma1-dz-1": ILL_TYPED,        # "dv = ∂ℓ/∂h": an m-vector called the gradient w.r.t. the n-vector h
    "lemma1-dz-2": ILL_TYPED,        # "∂ℓ/∂h = f'(Wh)∘dv": f'(Wh)∘dv is ∂ℓ/∂Z
    "lemma1-dW-2": ILL_TYPED,        # (f'(Wh) · dV) h^T: matrix product where ∘ is meant
    "lemma2-du-proof-2": ILL_TYPED,  # f(v) · dS with a vector for the Jacobian diag(f(v))
    "stacking-entries": REFUTED,     # W_xh's entries repeated in place of W_hh's
    "bptt-dW_hh": ILL_TYPED,         # (...) · h_{t-1} without the transpose
    "bptt-dh_prev": REFUTED,         # W_hh where W_hh^T belongs
    "bptt-algorithm": ILL_TYPED,     # the algorithm run with its lines as written
}


@pytest.fixture(scope="module")
def report(note_report):
    return note_report


def test_every_claim_has_a_verdict_from_an_engine(report):
    assert [c["id"] for c in report["claims"]] == load_document().ids
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


def _note_claims():
    doc = load_document()
    return [pytest.param(*doc.parsed[cid], id=cid) for cid in doc.ids]


@pytest.mark.parametrize("ctx, claim", _note_claims())
def test_every_verdict_agrees_with_the_numbers(report, ctx, claim):
    """Each claim of note.md against its truth by numbers, independently of the engines (tests/oracle.py:
    NumPy forward passes, σ real, every defined quantity recomputed, finite differences; a whole algorithm
    run as a reader runs its loop, fd.algorithm_truth): true is proved, false refuted or ill-typed."""
    entry = next(c for c in report["claims"] if c["id"] == claim.id)
    if claim.algorithm is not None:
        (alg,) = [a for a in ctx.algorithms.values() if a.id == claim.id]
        truth = fd.algorithm_truth(ctx, alg)
        false = truth != "true"
    else:
        false = difference(ctx, claim) is not None
    assert entry["verdict"] in ((REFUTED, ILL_TYPED) if false else (PROVED,)), (entry["verdict"], entry["reason"])
    assert false == (claim.id in WRONG_AS_WRITTEN)


def test_ill_typed_reason_names_the_failing_product(report):
    entry = next(c for c in report["claims"] if c["id"] == "bptt-dW_hh")
    assert "\\cdot h_{t-1}$ does not compose" in entry["reason"] and "H×1 times H×1" in entry["reason"]


def test_every_claim_of_the_note_that_the_notation_can_express_is_read_from_its_latex(report):
    sources = {c["id"]: c["source"] for c in report["claims"]}
    # Every statement, the entries and the tool's own lemma included, is read from its LaTeX (the
    # readings of the entries written with \cdots are `> Reading:` lines); no Python builder is left.
    assert {cid: s for cid, s in sources.items() if s != "latex"} == {}
    for c in report["claims"]:
        assert c["line"] >= 1 and c["latex"]
        if c["depends_on_reading"]:
            assert c["reading"]


def _bptt_sides(cex):
    """Both sides of the note's dh_{t-1} line at its counterexample, by autograd on the forward pass alone.

    ℓ_t is the loss from step t to T as a function of h_{t-1} (the note's reading); the line claims
    ∂ℓ_t/∂h_{t-1} = W_hh (σ'(a_t) ∘ ∂ℓ_t/∂h_t).  Nothing of the verifier is used but the inputs.
    """
    shape, t = cex["shape"], cex["t"]
    T, H, E, V = shape["T"], shape["H"], shape["E"], shape["V"]
    v = {k: float(sp.Rational(x)) for k, x in cex["values"].items()}

    def matrix(name, rows, cols):
        return np.array([[v[f"{name}[{i},{j}]" if cols > 1 else f"{name}[{i}]"] for j in range(cols)]
                         for i in range(rows)])
    W_xh, W_hh, W_hy = matrix("W_xh", H, E), matrix("W_hh", H, H), matrix("W_hy", V, H)
    X = {s: matrix(f"X_{s}", E, 1) for s in range(1, T + 1)}
    y = {step: value for name, step, value in cex["indices"]}
    h = {0: matrix("h_0", H, 1)}
    for s in range(1, T + 1):
        h[s] = 1 / (1 + np.exp(-(W_xh @ X[s] + W_hh @ h[s - 1])))

    def loss_from(k, state):                      # Σ_{s=k}^{T} -log softmax(W_hy h_s)[y_s], h_{k-1} = state
        total = 0.0
        for s in range(k, T + 1):
            state = 1 / (1 + anp.exp(-(anp.dot(W_xh, X[s]) + anp.dot(W_hh, state))))
            scores = anp.dot(W_hy, state)
            total = total - (scores[y[s] - 1, 0] - anp.log(anp.sum(anp.exp(scores))))
        return total

    def loss_through_h(state):                    # ℓ_t as a function of h_t
        scores = anp.dot(W_hy, state)
        return -(scores[y[t] - 1, 0] - anp.log(anp.sum(anp.exp(scores)))) + loss_from(t + 1, state)
    truth = grad(lambda state: loss_from(t, state))(h[t - 1])
    dh = grad(loss_through_h)(h[t])
    claimed = W_hh @ (h[t] * (1 - h[t]) * dh)
    i, j = cex["entry"]
    return claimed[i, j], truth[i, j]


def _stacking_sides(cex):
    """Both sides of the stacking's entries as written, W_xh X_t + W_hh h_{t-1} and [W_xh W_xh] [X_t; h_{t-1}],
    at its counterexample, with NumPy alone (the note's sizes: W_xh square)."""
    v = {k: float(sp.Rational(x)) for k, x in cex["values"].items()}
    H = len([k for k in v if k.startswith("h_0[")])

    def matrix(name, rows, cols):
        return np.array([[v[f"{name}[{i},{j}]" if cols > 1 else f"{name}[{i}]"] for j in range(cols)]
                         for i in range(rows)])
    W_xh, W_hh, X, h0 = matrix("W_xh", H, H), matrix("W_hh", H, H), matrix("X_1", H, 1), matrix("h_0", H, 1)
    lhs = W_xh @ X + W_hh @ h0
    rhs = np.hstack([W_xh, W_xh]) @ np.vstack([X, h0])
    i, j = cex["entry"]
    return lhs[i, j], rhs[i, j]


@pytest.mark.parametrize("claim_id", [k for k, v in WRONG_AS_WRITTEN.items() if v == REFUTED])
def test_counterexamples_are_real(report, claim_id):
    cex = next(c for c in report["claims"] if c["id"] == claim_id)["counterexample"]
    assert cex is not None
    if claim_id == "stacking-entries":
        sides = _stacking_sides(cex)
        shown = {float(cex["claimed_precise"]), float(cex["truth_precise"])}
        assert all(any(side == pytest.approx(x, rel=1e-12, abs=1e-12) for x in shown) for side in sides)
        assert sides[0] != pytest.approx(sides[1]) and cex["clear_margin"]
        return
    if claim_id == "bptt-dh_prev":
        claimed, truth = _bptt_sides(cex)
        assert claimed == pytest.approx(float(cex["claimed_precise"]), rel=1e-9)
        assert truth == pytest.approx(float(cex["truth_precise"]), rel=1e-9)
        assert cex["clear_margin"] and abs(claimed - truth) / max(abs(claimed), abs(truth)) >= 0.1
        return
    raise AssertionError(f"no independent re-check written for {claim_id}")


def test_whole_algorithm_is_proved_for_every_T(report):
    """Its loop run at T <= 3, and for every T by induction over its lines (the loop of note.md, as any
    file's)."""
    entry = next(c for c in report["claims"] if c["id"] == "bptt-algorithm-corrected")
    methods = {m["method"]: m["verdict"] for m in entry["methods"]}
    assert methods["concrete"] == PROVED and methods["all T (algorithm)"] == PROVED
    assert set(methods.values()) == {PROVED}
    assert entry["scope"] == "for every size and every T" and entry["source"] == "latex"


def test_every_statement_typesets_as_mathml(report):
    from reports.render import mathml
    for c in report["claims"]:
        assert "tex-fallback" not in mathml(c["latex"]), c["id"]


# The note's statements that were Python builders, now read from their LaTeX: each, made false in one place
# and checked in its own context, is found wrong (the reading does not make any line true by construction).
FALSE_VARIANTS = {
    "embedding": (r"W_e^{\mathsf T} e_{w} = W_e^{\mathsf T} \mathbf{1}", REFUTED),
    "forward-S": (r"S_y = e_y^{\mathsf T} W_{hy} h + S_k", REFUTED),
    "dS-target-1": (r"dS_k = \frac{e^{S_k}}{\mathbf{1}^{\mathsf T} e^{S}}", REFUTED),
    "dS-other-2": (r"dS \circ (\mathbf{1} - e_k) = p", REFUTED),
    "dS-2": (r"\frac{\partial \ell}{\partial S} = p + 1_{y = k}", REFUTED),
    "lemma1-jacobian-Wh": (r"\frac{\partial Wh}{\partial h} = W", ILL_TYPED),
    "lemma1-rows": (r"e_i^{\mathsf T} \cdot dW = f(Z_i) \cdot dv_i \cdot h^{\mathsf T}", REFUTED),
    "cor1-fprime": (r"\frac{\partial V}{\partial Z} = \operatorname{diag}(\mathbf{1} + \mathbf{1})", REFUTED),
    "comment1-2": (r"\frac{\partial \ell_{total}}{\partial W_{hh}} = 2 \sum_{t=1}^{T} \frac{\partial \ell_t}{\partial W_{hh}}",
                   REFUTED),
    "sigma-derivative": (r"\frac{\partial \sigma(x)}{\partial x} = \frac{\partial}{\partial x} \frac{1}{1 + e^{x}}",
                         REFUTED),
}


@pytest.mark.parametrize("claim_id", sorted(FALSE_VARIANTS))
def test_a_false_variant_of_a_former_builder_is_found_wrong(claim_id):
    from derivations.analyses import repair
    from derivations.form import ir
    from derivations.latex.reader import parse_statement
    note = load_document()
    ctx, _ = note.parsed[claim_id]
    latex, verdict = FALSE_VARIANTS[claim_id]
    lhs, rhs = parse_statement(latex, ctx)
    assert repair.check(ctx, ir.Claim(claim_id + "~", "", lhs, rhs))["verdict"] == verdict


def test_the_engines_and_the_cache_key_follow_note_md_as_written(tmp_path):
    # The corrected dh_{t-1} line written as the note's own (W_hh where W_hh^T belongs), in a copy of note.md:
    # the line, and the whole algorithm that uses it, are read from that text; so is their cache key.
    from derivations.running import runner
    text = runner.NOTE.read_text(encoding="utf-8")
    right = r"= W_{hh}^{\mathsf T} \cdot (\sigma'"
    assert text.count(right) == 1
    edited = tmp_path / "note.md"
    edited.write_text(text.replace(right, r"= W_{hh} \cdot (\sigma'"), encoding="utf-8")
    note, copy = load_document(), load_document(edited)
    for cid in ("bptt-dh_prev-corrected", "bptt-algorithm-corrected"):
        assert runner.parsed_key(*copy.parsed[cid]) != runner.parsed_key(*note.parsed[cid])
    assert difference(*copy.parsed["bptt-dh_prev-corrected"]) is not None          # false, by the numbers
    report = assembly.run(["bptt-dh_prev-corrected"], document=copy, jobs=1, repairs=False)
    assert report["claims"][0]["verdict"] == REFUTED
