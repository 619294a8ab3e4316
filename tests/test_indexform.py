"""The index-notation helpers of the structural engines: the exact zero test and the derivative of an entry.

derivations.engines.allsizes and derivations.engines.recurrence write each entry of a claim in
index notation (sums over dummy indices, Kronecker deltas) and decide it with
`is_zero`; their derivatives are `diff_entry`.  These helpers are tested here
on their own: the zero test is not fooled (σ' against 1/(1 + e^{-x}), a one-hot
picking a row and not a column, a sum's variable kept apart from the same
symbol outside it), and `diff_entry` is SymPy's `diff`, exactly.  (The engine
that built index forms from the Python builders, with its tests, is gone: the
engines of parsed claims are tested in test_explicit.py, test_recurrence.py.)

They live in derivations/form/indexform.py.
"""
import sympy as sp

from derivations.form.functions import f, sigma
from derivations.form.indexform import is_zero, size_symbol


def _index(name, size, ranges):
    """A free index over 0..size-1, its range recorded."""
    sym = sp.Symbol(name, integer=True, nonnegative=True)
    ranges[sym] = size
    return sym


def test_index_zero_test_is_not_fooled():
    n = size_symbol("n")
    ranges = {}
    i = _index("i", n, ranges)
    z = sp.IndexedBase("Z")[i, 0]
    truth = sp.diff(1 / (1 + sp.exp(-z)), z)
    assert is_zero(sigma(z) - sigma(z) ** 2 - truth, ranges)
    assert not is_zero(sigma(z) + sigma(z) ** 2 - truth, ranges)
    # A one-hot picks a row, not a column.
    V = size_symbol("V")
    wt = _index("w_t", V, ranges)
    v = sp.Dummy("v", integer=True)
    ranges[v] = V
    We = sp.IndexedBase("We")
    pick = sp.Sum(We[v, i] * sp.KroneckerDelta(v, wt), (v, 0, V - 1))
    assert is_zero(pick - We[wt, i], ranges)
    assert not is_zero(pick - We[i, wt], ranges)


def _index_expressions():
    """Index forms like the structural engine's: entries, sums over dummies, tanh, σ, exp, log, powers."""
    from derivations.form.functions import tanh
    from derivations.form.indexform import fresh
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
    # index forms' own, indexform.Delta, the same δ without its evaluation through the assumption system).
    from derivations.form.indexform import Delta, diff_entry

    def _as_delta(e):
        return e.xreplace({d: Delta(*d.args) for d in e.atoms(sp.KroneckerDelta) if type(d) is sp.KroneckerDelta})
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
    from derivations.form.indexform import fresh
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
