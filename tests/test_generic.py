"""The "all sizes" engine: the note's claims for every dimension, and its false lines caught.

Each expectation is our reading of the note; the verdicts are computed.  The
engine is also run on claims made up here that are false in the ways a
derivation goes wrong (a missing transpose, a missing sigma', a wrong sign, a
dropped future term), to show it does not prove what it should not.
"""
import pickle
import time
from types import SimpleNamespace

import pytest
import sympy as sp

import derivations.note  # noqa: F401  (registers the claims)
from derivations.concrete import ILL_TYPED, PROVED, REFUTED
from derivations.concrete import prove as prove_concrete
from derivations.functions import diag, elementwise, f, fp, hadamard, sigma, sigma_prime
from derivations.generic import METHOD, IndexForm, is_zero, prove_all_sizes, size_symbol
from derivations.note.step_model import step_claim
from derivations.registry import CLAIMS, MN_SHAPES, N_SHAPES, RNN_SHAPES, Claim
from derivations.statement import Equals, Gradient, Jacobian, Statement


def claim(claim_id):
    """A registered builder, or a line of the BPTT algorithm as parsed from note.md (in the step symbols).

    The note's other statements are read from its LaTeX and proved by the engines of
    derivations.allsizes and derivations.explicit (tests/test_claims.py, tests/test_explicit.py)."""
    return CLAIMS[claim_id] if claim_id in CLAIMS else step_claim(claim_id)

PROVED_FOR_ALL_SIZES = [
    "def1",
    "lemma1-dh", "lemma1-dW-corrected", "lemma1-dz-corrected", "lemma1-jacobian-f",
    "lemma1-chain",
    "cor1-dh", "cor1-dW",
    "lemma2-du", "lemma2-dv", "lemma2-dv-chain", "lemma2-du-proof-corrected",
    "cor2-du", "cor2-dv",
    "eq9", "eq10", "eq15", "eq16",
    "bptt-dX", "bptt-dh_prev-corrected",
    "bptt-dW_xh", "bptt-dW_hh-corrected", "bptt-dW_hy", "bptt-dh",
]

# The note's lines that are wrong for general sizes, and how.
WRONG_AS_WRITTEN = {
    "bptt-dW_hh": ILL_TYPED,         # (...) · h_{t-1}: 1 column against H rows
    "bptt-dh_prev": REFUTED,         # W_hh where W_hh^T belongs (square, so it composes)
}

# Claims whose builders need explicit integer sizes (the number of steps T, an
# explicit one-hot or range(m)): the engine says "not applicable".
NOT_APPLICABLE = ["bptt-algorithm"]


@pytest.mark.parametrize("claim_id", PROVED_FOR_ALL_SIZES)
def test_claim_is_proved_for_all_sizes(claim_id):
    out = prove_all_sizes(claim(claim_id))
    assert out.verdict == PROVED, out.reason
    assert out.method == METHOD
    assert out.shapes and all(isinstance(v, str) for v in out.shapes[0].values())


@pytest.mark.parametrize("claim_id, verdict", WRONG_AS_WRITTEN.items())
def test_wrong_line_fails(claim_id, verdict):
    out = prove_all_sizes(claim(claim_id))
    assert out.verdict == verdict, out.reason
    if verdict == REFUTED:
        cex = out.counterexample
        assert cex["claimed"] != cex["truth"] and cex["at"]
    else:
        assert "×" in out.reason or "compose" in out.reason


@pytest.mark.parametrize("claim_id", NOT_APPLICABLE)
def test_needs_explicit_sizes(claim_id):
    if claim_id in CLAIMS:
        assert prove_all_sizes(CLAIMS[claim_id]) is None


def test_whole_pass_is_fast_and_plain_data():
    t0 = time.perf_counter()
    outcomes = {c.id: prove_all_sizes(c) for c in CLAIMS.values()}
    assert time.perf_counter() - t0 < 30
    pickle.dumps(outcomes)          # the runner ships outcomes between processes


# ------------------------------------------------------------------ made-up false claims

def made_up(build, shapes=MN_SHAPES, lhs=None, id="made-up"):
    return Claim(id=id, label=id, latex="", section="test", build=build, shapes=tuple(shapes), lhs=lhs)


def lemma1(d):
    W, h, dV = sp.MatrixSymbol("W", d.m, d.n), sp.MatrixSymbol("h", d.n, 1), sp.MatrixSymbol("dV", d.m, 1)
    return W, h, dV, dV.T * elementwise(f, W * h)


def hidden(d):
    """One RNN step seen through dh: the names, the pre-activation a and the loss <dh, sigma(a)>."""
    M = sp.MatrixSymbol
    s = SimpleNamespace(W_xh=M("W_xh", d.H, d.E), W_hh=M("W_hh", d.H, d.H), X=M("X", d.E, 1),
                        h_prev=M("h_prev", d.H, 1), dh=M("dh", d.H, 1))
    s.a = s.W_xh * s.X + s.W_hh * s.h_prev
    s.loss = s.dh.T * elementwise(sigma, s.a)
    return s


def dh_missing_transpose(d):          # W (fp(Wh)∘dV): W is m×n, the bracket is m×1
    W, h, dV, loss = lemma1(d)
    return Statement(W * hadamard(elementwise(fp, W * h), dV), Gradient(loss, h))


def dh_wrong_sign(d):
    W, h, dV, loss = lemma1(d)
    return Statement(-W.T * hadamard(elementwise(fp, W * h), dV), Gradient(loss, h))


def dh_f_for_fprime(d):
    W, h, dV, loss = lemma1(d)
    return Statement(W.T * hadamard(elementwise(f, W * h), dV), Gradient(loss, h))


def dW_transposed(d):                 # h (fp∘dV)^T is n×m, dW is m×n
    W, h, dV, loss = lemma1(d)
    return Statement(h * hadamard(elementwise(fp, W * h), dV).T, Gradient(loss, W))


def jacobian_not_transposed(d):       # square W: dWh/dh claimed W instead of W^T
    W, h = sp.MatrixSymbol("W", d.n, d.n), sp.MatrixSymbol("h", d.n, 1)
    return Statement(W, Jacobian(W * h, h))


def jacobian_f_as_vector(d):          # f'(Z) instead of diag(f'(Z))
    Z = sp.MatrixSymbol("Z", d.n, 1)
    return Statement(elementwise(fp, Z), Jacobian(elementwise(f, Z), Z))


def diag_times_is_matrix(d):          # diag(u) v  claimed equal to diag(u∘v)
    u, v = sp.MatrixSymbol("u", d.n, 1), sp.MatrixSymbol("v", d.n, 1)
    return Statement(diag(u) * v, Equals(sp.MatrixSymbol("v", d.n, 1)))


def dW_xh_missing_sigma_prime(d):
    s = hidden(d)
    return Statement(s.dh * s.X.T, Gradient(s.loss, s.W_xh))


def dW_xh_sigma_for_sigma_prime(d):
    s = hidden(d)
    return Statement(hadamard(elementwise(sigma, s.a), s.dh) * s.X.T, Gradient(s.loss, s.W_xh))


def dh_prev_wrong_sign(d):
    s = hidden(d)
    return Statement(s.W_hh.T * hadamard(elementwise(sigma_prime, s.a), -s.dh), Gradient(s.loss, s.h_prev))


def dX_missing_transpose(d):          # W_xh (σ'∘dh): H×E times H×1
    s = hidden(d)
    return Statement(s.W_xh * hadamard(elementwise(sigma_prime, s.a), s.dh), Gradient(s.loss, s.X))


FALSE_CLAIMS = [
    (dh_missing_transpose, MN_SHAPES, ILL_TYPED),
    (dh_wrong_sign, MN_SHAPES, REFUTED),
    (dh_f_for_fprime, MN_SHAPES, REFUTED),
    (dW_transposed, MN_SHAPES, ILL_TYPED),
    (jacobian_not_transposed, N_SHAPES, REFUTED),
    (jacobian_f_as_vector, N_SHAPES, ILL_TYPED),
    (diag_times_is_matrix, N_SHAPES, REFUTED),
    (dW_xh_missing_sigma_prime, RNN_SHAPES, REFUTED),
    (dW_xh_sigma_for_sigma_prime, RNN_SHAPES, REFUTED),
    (dh_prev_wrong_sign, RNN_SHAPES, REFUTED),
    (dX_missing_transpose, RNN_SHAPES, ILL_TYPED),
]


@pytest.mark.parametrize("build, shapes, verdict", FALSE_CLAIMS, ids=[b.__name__ for b, _, _ in FALSE_CLAIMS])
def test_made_up_false_claim_fails(build, shapes, verdict):
    out = prove_all_sizes(made_up(build, shapes))
    assert out.verdict == verdict, out.reason


# BPTT lines with a dropped or wrong term, in the step symbols.
FALSE_LINES = [
    ("dh", lambda s: s.W_hy.T * s.dS),                                    # future term dropped
    ("dh", lambda s: s.dh_next - s.W_hy.T * s.dS),                        # wrong sign
    ("dW_hy", lambda s: s.dS * s.h.T),                                    # dW_hy_next dropped
    ("dW_xh", lambda s: s.dW_xh_next + hadamard(s.h, s.dh) * s.X.T),      # σ' replaced by σ
    ("dh_prev", lambda s: s.W_hh.T * s.dh),                               # σ' dropped
]


@pytest.mark.parametrize("lhs, build", FALSE_LINES, ids=[f"{lhs}-{n}" for n, (lhs, _) in enumerate(FALSE_LINES)])
def test_false_bptt_line_is_refuted(lhs, build):
    out = prove_all_sizes(made_up(build, RNN_SHAPES, lhs=lhs))
    assert out.verdict == REFUTED, out.reason


def test_true_bptt_line_made_up_here_is_proved():
    # The same update as bptt-dh_prev-corrected, written with an explicit Hadamard order.
    def build(s):
        a = s.W_xh * s.X + s.W_hh * s.h_prev
        return s.W_hh.T * hadamard(s.dh, elementwise(sigma_prime, a))
    assert prove_all_sizes(made_up(build, RNN_SHAPES, lhs="dh_prev")).verdict == PROVED


def test_index_form_of_a_product_is_a_sum():
    m, n = size_symbol("m"), size_symbol("n")
    W, h = sp.MatrixSymbol("W", m, n), sp.MatrixSymbol("h", n, 1)
    ix = IndexForm()
    i = ix.index("i", m)
    e = ix.entry(W * h, i, sp.Integer(0))
    assert isinstance(e, sp.Sum) and e.limits[0][2] == n - 1


def test_agrees_with_concrete_engine_on_a_refuted_line():
    # Both engines refute the as-written dh_prev; the all-sizes counterexample is
    # the concrete engine's own search at a small size.
    assert prove_concrete(step_claim("bptt-dh_prev")).verdict == REFUTED
    assert prove_all_sizes(step_claim("bptt-dh_prev")).counterexample["values"]


def test_index_zero_test_is_not_fooled():
    n = size_symbol("n")
    ix = IndexForm()
    i = ix.index("i", n)
    z = sp.IndexedBase("Z")[i, 0]
    truth = sp.diff(1 / (1 + sp.exp(-z)), z)
    assert is_zero(sigma(z) - sigma(z) ** 2 - truth, ix.ranges)
    assert not is_zero(sigma(z) + sigma(z) ** 2 - truth, ix.ranges)
    # A one-hot picks a row, not a column.
    V = size_symbol("V")
    wt = ix.index("w_t", V)
    v = sp.Dummy("v", integer=True)
    ix.ranges[v] = V
    We = sp.IndexedBase("We")
    pick = sp.Sum(We[v, i] * sp.KroneckerDelta(v, wt), (v, 0, V - 1))
    assert is_zero(pick - We[wt, i], ix.ranges)
    assert not is_zero(pick - We[i, wt], ix.ranges)


def _index_expressions():
    """Index forms like the structural engine's: entries, sums over dummies, tanh, σ, exp, log, powers."""
    from derivations.functions import tanh
    from derivations.generic import fresh
    H = size_symbol("H")
    i, j = (sp.Symbol(n, integer=True, nonnegative=True) for n in "ij")
    k, m = fresh("k"), fresh("m")
    W, h, g = sp.IndexedBase("W"), sp.IndexedBase("h"), sp.IndexedBase("g")
    z = sp.Sum(W[i, k] * h[k, 0], (k, 0, H - 1))
    zm = sp.Sum(W[m, k] * h[k, 0], (k, 0, H - 1))
    yield W, {i: H, j: H, k: H, m: H}, [
        tanh(z) * g[i, 0], sigma(z) ** 2 - 1 / (1 + sp.exp(-z)), sp.log(1 + sp.exp(z)) * W[j, i],
        sp.Sum(g[m, 0] * (1 - tanh(zm) ** 2) * W[m, i], (m, 0, H - 1)), z ** 3, f(z) * g[j, 0]]


def test_diff_entry_is_sympys_derivative():
    # The structural engine's own differentiation (without SymPy's checks of every intermediate result)
    # against SymPy's diff, exactly, for every form it meets (SymPy's Kronecker deltas written as the
    # index forms' own, generic.Delta, the same δ without its evaluation through the assumption system).
    from derivations.generic import _as_delta, diff_entry
    for W, ranges, exprs in _index_expressions():
        p, q = sp.Symbol("p", integer=True, nonnegative=True), sp.Symbol("q", integer=True, nonnegative=True)
        ranges = {**ranges, p: ranges[next(iter(ranges))], q: ranges[next(iter(ranges))]}
        for e in exprs:
            ours, theirs = diff_entry(e, W[p, q]), _as_delta(sp.diff(e, W[p, q]))
            assert is_zero(ours - theirs, dict(ranges)), e
            assert not is_zero(ours, dict(ranges)), e


def test_normal_form_keeps_a_sums_variable_apart_from_the_same_symbol_outside_it():
    # The normal form keeps a sum's own variable where it can (no renaming): never when the same symbol
    # is also free outside the sum, where keeping it would capture it (f(k) Σ_k g(k) is not Σ_k f(k) g(k)).
    from derivations.generic import fresh
    H = size_symbol("H")
    k = fresh("k")
    g = sp.IndexedBase("g")
    ranges = {k: H}
    outside = g[k, 0] * sp.Sum(g[k, 1], (k, 0, H - 1))
    inside = sp.Sum(g[k, 0] * g[k, 1], (k, 0, H - 1))
    assert not is_zero(outside - inside, ranges)
    twice = sp.Sum(g[k, 0], (k, 0, H - 1)) * sp.Sum(g[k, 1], (k, 0, H - 1))     # one variable, two sums
    assert not is_zero(twice - inside, ranges)
    assert is_zero(twice - sp.Sum(g[k, 1], (k, 0, H - 1)) * sp.Sum(g[k, 0], (k, 0, H - 1)), ranges)
