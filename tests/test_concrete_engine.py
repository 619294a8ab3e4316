"""The concrete engine refutes false claims: every verdict kind is reachable.

Each false claim is a small, plausible slip (a missing transpose, a missing
sigma', a dropped future term, a wrong sign); an engine that can only say
"proved" fails these tests.
"""
import pytest
import sympy as sp

from derivations.concrete import ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED, counterexample, prove
from derivations.functions import elementwise, fp, hadamard, sigma, sigma_prime
from derivations.note.backward_pass import hidden_loss
from derivations.note.forward_pass import cross_entropy, one_hot, rnn_symbols, scores, softmax
from derivations.note.mathematical_helpers import lemma1_symbols
from derivations.registry import BPTT_SHAPES, MN_SHAPES, RNN_SHAPES, V_SHAPES, Claim
from derivations.statement import Equals, Gradient, Statement


def make(build, shapes, lhs=None):
    return Claim(id="false", label="false", latex="", section="tests", build=build, shapes=shapes, lhs=lhs)


def test_missing_transpose_is_ill_typed_when_not_square():
    def build(d):
        W, h, dV, loss = lemma1_symbols(d)
        return Statement(W * hadamard(elementwise(fp, W * h), dV), Gradient(loss, h))
    out = prove(make(build, MN_SHAPES))
    assert out.verdict == ILL_TYPED
    assert "does not compose" in out.reason or "quantity it claims" in out.reason


def test_missing_transpose_is_refuted_when_square():
    def build(d):
        s = rnn_symbols(d)
        upstream = hadamard(elementwise(sigma_prime, s["W_xh"] * s["X"] + s["W_hh"] * s["h_prev"]), s["dh"])
        return Statement(s["W_hh"] * upstream, Gradient(hidden_loss(s), s["h_prev"]))
    out = prove(make(build, ({"H": 2, "E": 1, "V": 1},)))
    assert out.verdict == REFUTED
    assert out.counterexample["values"] and out.counterexample["claimed"] != out.counterexample["truth"]


def test_missing_sigma_prime_is_refuted():
    def build(d):
        s = rnn_symbols(d)
        return Statement(s["dh"] * s["X"].T, Gradient(hidden_loss(s), s["W_xh"]))
    assert prove(make(build, RNN_SHAPES)).verdict == REFUTED


def test_dropped_future_term_is_refuted_through_time():
    out = prove(make(lambda s: s.dS * s.h.T, BPTT_SHAPES, lhs="dW_hy"))
    assert out.verdict == REFUTED
    assert "T=2" in out.counterexample["at"] or "T=3" in out.counterexample["at"]


def test_dropped_future_gradient_into_h_is_refuted():
    out = prove(make(lambda s: s.W_hy.T * s.dS, BPTT_SHAPES, lhs="dh"))
    assert out.verdict == REFUTED


def test_wrong_sign_of_softmax_gradient_is_refuted():
    def build(d):
        S = scores(d.V)
        return [Statement(one_hot(d.V, y) - softmax(S), Equals(S.applyfunc(lambda s, y=y: sp.diff(cross_entropy(S, y), s))))
                for y in range(d.V)]
    assert prove(make(build, V_SHAPES)).verdict == REFUTED


def test_true_claim_is_proved():
    def build(d):
        S = scores(d.V)
        return [Statement(softmax(S) - one_hot(d.V, y), Equals(S.applyfunc(lambda s, y=y: sp.diff(cross_entropy(S, y), s))))
                for y in range(d.V)]
    assert prove(make(build, V_SHAPES)).verdict == PROVED


def test_undecidable_by_expand_and_cancel_is_inconclusive_not_proved():
    # sin^2 + cos^2 = 1 is true, but expand/cancel cannot show it and no
    # counterexample exists: the honest answer is "inconclusive".
    x = sp.Symbol("x", real=True)
    build = lambda d: Statement(sp.Matrix([[sp.sin(x) ** 2 + sp.cos(x) ** 2]]), Equals(sp.Matrix([[1]])))
    out = prove(make(build, ({},)))
    assert out.verdict == INCONCLUSIVE


# --- counterexamples a reader believes -------------------------------------------------

x, y = sp.symbols("x y", real=True)


def test_counterexample_has_a_clear_margin_and_exact_rational_values():
    cex = counterexample(sp.Matrix([[x * y + x]]), sp.Matrix([[x * y]]), seed="margin")
    point = {x: sp.Rational(cex["values"]["x"]), y: sp.Rational(cex["values"]["y"])}
    claimed, truth = (x * y + x).xreplace(point), (x * y).xreplace(point)
    assert sp.Rational(cex["claimed"]) == claimed and sp.Rational(cex["truth"]) == truth   # exact, no 3.50000
    assert cex["clear_margin"]
    relative = abs(claimed - truth) / max(abs(claimed), abs(truth))
    assert relative >= sp.Rational(1, 10) and abs(relative - cex["relative_difference"]) <= 0.005 * relative


def test_counterexample_without_a_clear_margin_keeps_the_best_and_says_so():
    # The sides differ by y/1000 while x >= 1/3 in size: under 1% at every small input.
    claimed, truth = sp.Matrix([[x]]), sp.Matrix([[x + y / 1000]])
    cex = counterexample(claimed, truth, seed="close", tries=6)
    assert cex is not None and not cex["clear_margin"]
    assert 0 < cex["relative_difference"] < 0.1
    assert cex["claimed"] != cex["truth"]
    # The best of the tries is kept: more tries (the same seeded sequence, longer) never do worse.
    margins = [counterexample(claimed, truth, seed="close", tries=k)["relative_difference"] for k in range(1, 7)]
    assert margins == sorted(margins) and margins[-1] == cex["relative_difference"]


def test_irrational_values_show_at_most_six_significant_digits():
    cex = counterexample(sp.Matrix([[sigma(x)]]), sp.Matrix([[sigma(2 * x)]]), seed="sigma")
    point = {x: sp.Rational(cex["values"]["x"])}
    for side, expr in (("claimed", sigma(x)), ("truth", sigma(2 * x))):
        value = float(sp.N(expr.xreplace(point), 30))
        assert cex[side] == f"{value:.6g}"
        assert len(cex[side].lstrip("-0.").replace(".", "")) <= 6
    assert cex["clear_margin"] and cex["claimed"] != cex["truth"]


def test_counterexample_is_deterministic():
    args = (sp.Matrix([[x * y + x]]), sp.Matrix([[x * y]]))
    assert counterexample(*args, seed="s") == counterexample(*args, seed="s")


def test_shape_errors_count_columns_and_rows_in_words():
    from derivations.functions import dot
    with pytest.raises(sp.ShapeError, match="1 column against 2 rows"):
        dot(sp.MatrixSymbol("A", 2, 1), sp.MatrixSymbol("B", 2, 1))
    with pytest.raises(sp.ShapeError, match="2 columns against 1 row$"):
        dot(sp.MatrixSymbol("A", 2, 2), sp.MatrixSymbol("B", 1, 1))


def test_the_clear_margin_point_is_confirmed_on_the_model():
    # The sides as a statement writes them use a defined symbol d = x + y; the search runs on the
    # free inputs (d replaced), the reported entry is re-checked on the model with d recomputed.
    from derivations.recheck import NoDifference
    d = sp.Symbol("d", real=True)
    model = (sp.Matrix([[d * x, 0]]), sp.Matrix([[d * y, 0]]), {d: x + y})
    free = [m.xreplace({d: x + y}) for m in model[:2]]
    cex = counterexample(*free, seed="model", model=model)
    assert set(cex["values"]) == {"x", "y"} and cex["entry"] == [0, 0] and cex["clear_margin"]
    point = {s: sp.Rational(cex["values"][str(s)]) for s in (x, y)}
    assert sp.Rational(cex["claimed"]) == ((x + y) * x).xreplace(point)
    assert sp.Float(cex["claimed_precise"]) == sp.Float(sp.Rational(cex["claimed"]), 15)
    # A model on which the two sides agree (here: d defined so that they do) refutes nothing.
    agreeing = (sp.Matrix([[d * x]]), sp.Matrix([[d * x]]), {d: x + y})
    with pytest.raises(NoDifference):
        counterexample(sp.Matrix([[x * x]]), sp.Matrix([[x * y]]), seed="model", model=agreeing)
