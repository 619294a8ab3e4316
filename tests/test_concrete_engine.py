"""The concrete engine refutes false claims: every verdict kind is reachable.

Each false claim is a small, plausible slip (a missing transpose, a missing
sigma', a dropped future term, a wrong sign); an engine that can only say
"proved" fails these tests.
"""
import sympy as sp

from derivations.concrete import ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED, prove
from derivations.functions import elementwise, fp, hadamard, sigma_prime
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
