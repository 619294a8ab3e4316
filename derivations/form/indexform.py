"""Index notation's normal form: what decides, exactly, that an index-form difference is zero.

The engines for every size (`allsizes`, `recurrence`) write each side of a claim
entry by entry in index notation with symbolic sizes: a product is a Sum over a
dummy index, a transpose swaps the indices, u∘v multiplies entries, diag(u) is
δ(i, j) u_i, f(M) applies f to an entry, and a matrix symbol is an IndexedBase
whose entries SymPy's `diff` treats as independent variables.  This module holds
what they share:

* `diff_entry`: SymPy's `diff` of an index-form expression, with the derivative of
  an entry d W[k, l] / d W[p, q] = δ(k, p) δ(l, q) as our own `Delta` (SymPy's
  own matrix calculus, `MatrixExpr.diff`, is never used: it is known to give wrong
  results for Hadamard products and element-wise functions);
* `canonical`: products of sums multiplied out, every Sum opened with a fresh
  dummy, Kronecker deltas eliminated exactly (Σ_k δ(k, e) g(k) = g(e) when e ranges
  over the same set as k), the remaining dummies renamed canonically so that two
  alpha-equivalent terms print the same;
* `is_zero`: the exact zero test -- `expand`, then `cancel` for rational functions
  such as the softmax, each function application an entry of a tensor of its own
  (exp(-x) meets exp(x)), σ(-x) = 1 - σ(x) (exact for 1/(1 + e^{-x})); never a blind
  `simplify`, and a non-zero residue is never called proved.
"""
from __future__ import annotations

import itertools

import sympy as sp
from sympy.core.function import ArgumentIndexError

from .functions import sigma, sigmoid_definition


class NotApplicable(Exception):
    """The expression uses something with no index form here (explicit entries, ...)."""


def size_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, integer=True, positive=True)


# ---------------------------------------------------------------- index notation

def fresh(name="k"):
    return sp.Dummy(name, integer=True, nonnegative=True)


class Delta(sp.KroneckerDelta):
    """δ(i, j) of two indices, as the index forms of derivations files write it (allsizes, recurrence).

    SymPy's KroneckerDelta asks, each time one is built, whether i - j is zero through the assumption
    system; the normal form rebuilds deltas at every substitution, and those questions were a fifth of a
    structural proof's time.  Here: δ(i, i) = 1, δ of two different integers is 0, the arguments in
    SymPy's order; anything but symbols and integers as SymPy does.  A delta left unevaluated is still
    exact (the normal form eliminates it), so fewer evaluations never make a false equality true.
    """

    @classmethod
    def eval(cls, i, j, delta_range=None):
        if delta_range is not None or not all(isinstance(x, (sp.Symbol, sp.Integer)) for x in (i, j)):
            return sp.KroneckerDelta.eval.__func__(cls, i, j, delta_range)
        if i == j:
            return sp.Integer(1)
        if isinstance(i, sp.Integer) and isinstance(j, sp.Integer):
            return sp.Integer(0)
        if sp.default_sort_key(j) < sp.default_sort_key(i):
            return cls(j, i)
        return None


def _as_delta(e):
    """SymPy's KroneckerDeltas in e written as Delta, so that the two meet."""
    table = {d: Delta(*d.args) for d in e.atoms(sp.KroneckerDelta) if type(d) is sp.KroneckerDelta}
    return e.xreplace(table) if table else e


def diff_entry(e, x):
    """d e / d x of an index-form scalar e with respect to one entry x = W[i, j]: SymPy's `diff`, rule by rule.

    The rules are SymPy's own: sum, product, power (constant exponent) and chain rule (with each function's
    `fdiff`), d W[k, l] / d W[i, j] = δ(k, i) δ(l, j), and a Sum differentiated under its sign (its limits
    are sizes, not entries).  What is left out is what `diff` does around them: it asks of every
    intermediate result whether it is zero, through SymPy's assumption system, which on the structural
    engine's long sums costs more than the derivative itself.  A term that is zero without looking so is
    kept and vanishes in the normal form.  Anything else (a power with x in its exponent, a Piecewise, a
    function with a derivative rule of its own, x inside an index) is left to `sp.diff`.
    """
    base = x.base if isinstance(x, sp.Indexed) else None
    memo: dict = {}

    def d(e):
        if e not in memo:
            memo[e] = rule(e)
        return memo[e]

    def rule(e):
        if e.is_Number or isinstance(e, sp.NumberSymbol):
            return sp.Integer(0)
        if isinstance(e, sp.Symbol):
            return sp.Integer(1 if e == x else 0)
        if isinstance(e, sp.Indexed) and base is not None and not any(k.has(x) for k in e.indices):
            if e.base != base:
                return sp.Integer(0)
            if len(e.indices) == len(x.indices):
                return sp.Mul(*(Delta(a, b) for a, b in zip(e.indices, x.indices)))
        elif isinstance(e, sp.KroneckerDelta) and not e.has(x):
            return sp.Integer(0)
        elif isinstance(e, sp.Add):
            return sp.Add(*(d(a) for a in e.args))
        elif isinstance(e, sp.Mul):
            terms = []
            for k, a in enumerate(e.args):
                da = d(a)
                if da != 0:
                    terms.append(sp.Mul(*e.args[:k], da, *e.args[k + 1:]))
            return sp.Add(*terms)
        elif isinstance(e, sp.Pow) and not e.exp.has(x):
            db = d(e.base)
            return sp.Integer(0) if db == 0 else e.exp * e.base ** (e.exp - 1) * db
        elif isinstance(e, sp.Sum) and not any(lim.has(x) for limit in e.limits for lim in limit[1:]) \
                and not set(e.variables) & x.free_symbols:
            db = d(e.function)
            return sp.Integer(0) if db == 0 else sp.Sum(db, *e.limits)
        elif isinstance(e, sp.Function) and type(e)._eval_derivative is sp.Function._eval_derivative:
            terms = []
            for k, a in enumerate(e.args, 1):
                da = d(a)
                if da != 0:
                    try:
                        terms.append(e.fdiff(k) * da)
                    except ArgumentIndexError:
                        terms.append(sp.Function.fdiff(e, k) * da)
            return sp.Add(*terms)
        return _as_delta(sp.diff(e, x))

    return d(sp.sympify(e))


# ---------------------------------------------------------------- normal form

def _terms(e, ranges, taken: set, memo: dict):
    """e as a list of (bound dummies, factors): products of sums multiplied out.

    taken: the symbols free in the whole expression or already bound in it.  A Sum's variable is kept
    when it is a Dummy (a variable the index forms bind, never a name of anything else) not taken yet,
    and renamed to a fresh one otherwise, so that two sums multiplied into one term never share a
    variable and none captures a free symbol.  Renaming only where needed: a renaming rebuilds the whole
    body of the sum, and nested sums made it quadratic.
    """
    if isinstance(e, sp.Add):
        return [t for a in e.args for t in _terms(a, ranges, taken, memo)]
    if isinstance(e, sp.Mul):
        out = [([], [])]
        for a in e.args:
            parts = _terms(a, ranges, taken, memo)     # once per factor (the terms of different products
            out = [(b1 + b2, f1 + f2) for (b1, f1) in out for (b2, f2) in parts]    # may share variables)
        return out
    if isinstance(e, sp.Sum):
        body, bound, table = e.function, [], {}
        for (k, lo, hi) in e.limits:
            var = k
            if not (isinstance(k, sp.Dummy) and lo == 0 and k not in taken):
                var = fresh(str(k))
                table[k] = var + lo
            taken.add(k)
            taken.add(var)
            ranges[var] = sp.expand(hi - lo + 1)
            bound.append(var)
        if table:
            body = body.xreplace(table)
        return [(bound + b, f) for (b, f) in _terms(body, ranges, taken, memo)]
    if isinstance(e, sp.Pow) and e.exp.is_Integer and e.exp > 0 and (e.base.is_Add or e.base.has(sp.Sum)):
        return _terms(sp.Mul(*([e.base] * int(e.exp)), evaluate=False), ranges, taken, memo)
    return [([], [_leaf(e, ranges, memo)])]


def _leaf(e, ranges, memo):
    """A factor that is not split further; sums inside its arguments are normalised."""
    if isinstance(e, (sp.KroneckerDelta, sp.Indexed, sp.Symbol, sp.Number)) or not e.args:
        return e
    if not e.has(sp.Sum):
        return e
    return e.func(*(canonical(a, ranges, memo) for a in e.args))


def _free(e, memo: dict) -> set:
    """e.free_symbols, each shared subexpression visited once (SymPy's walks a shared subtree each time)."""
    key = ("free", e)
    if key in memo:
        return memo[key]
    if isinstance(e, sp.Symbol):
        out = {e}
    elif isinstance(e, sp.Indexed):
        out = set().union(*(_free(k, memo) for k in e.indices))
    elif isinstance(e, sp.Sum):
        out = _free(e.function, memo) - set(e.variables)
        for limit in e.limits:
            out = out | set().union(*(_free(x, memo) for x in limit[1:]))
    elif not e.args or (type(e).free_symbols is not sp.Basic.free_symbols and not isinstance(e, sp.Function)):
        out = set(e.free_symbols)          # a leaf, or another node that binds variables (Subs, Derivative)
    else:
        out = set().union(*(_free(a, memo) for a in e.args))
    memo[key] = out
    return out


def _depth(e):
    """The highest depth tag of the canonical dummies already inside e (0 if none)."""
    ds = [int(str(s).split("_")[0][1:]) for s in e.atoms(sp.Symbol) if str(s).startswith("κ")]
    return max(ds, default=0)


def _size_of(x, ranges):
    if isinstance(x, sp.Integer):
        return None
    return ranges.get(x)


def _eliminate_deltas(bound, factors, ranges):
    """sum_k delta(k, e) g(k) = g(e) for e ranging like k; delta(i, j) g(j) = delta(i, j) g(i)."""
    bound, factors = list(bound), list(factors)
    # The eliminations are collected as one substitution (every eliminated dummy -> what it equals), the
    # deltas read through it, and the other factors rewritten once at the end: rewriting every factor at
    # each elimination was most of the normal form's time on long products.
    sub: dict = {}
    deltas = [n for n, fac in enumerate(factors) if isinstance(fac, sp.KroneckerDelta)]
    gone: set = set()
    changed = True
    while changed:
        changed = False
        for n in deltas:
            if n in gone:
                continue
            a, b = (x.xreplace(sub) for x in factors[n].args[:2])
            if a == b:                        # δ(b, b) = 1 once a dummy is replaced
                gone.add(n)
                changed = True
                break
            if b in bound and a not in bound:
                a, b = b, a
            if a not in bound:
                continue
            size_a = ranges[a]
            ok = (b in bound or isinstance(b, sp.Symbol)) and _size_of(b, ranges) is not None \
                and sp.expand(_size_of(b, ranges) - size_a) == 0
            ok = ok or (isinstance(b, sp.Integer) and b == 0)
            if not ok:
                continue
            sub = {k: v.xreplace({a: b}) for k, v in sub.items()}
            sub[a] = b
            gone.add(n)
            bound.remove(a)
            changed = True
            break
    if sub or gone:
        factors = [fac.xreplace(sub) for n, fac in enumerate(factors) if n not in gone]
    # Deltas between free indices: rewrite the other factors on the equality case.
    for n, fac in enumerate(factors):
        if isinstance(fac, sp.KroneckerDelta):
            a, b = fac.args[:2]
            if a in bound or b in bound or not (isinstance(a, sp.Symbol) and isinstance(b, sp.Symbol)):
                continue
            lo, hi = sorted((a, b), key=str)
            factors = [fac.func(lo, hi) if m == n else r.xreplace({hi: lo})
                       for m, r in enumerate(factors)]
    return bound, factors


def _independent(bound, factors) -> list[list]:
    """The bound dummies in groups that share no factor (connected components)."""
    groups = [[k] for k in bound]
    for fac in factors:
        touched = [g for g in groups if any(fac.has(k) for k in g)]
        if len(touched) > 1:
            merged = [k for g in touched for k in g]
            groups = [g for g in groups if g not in touched] + [merged]
    return groups


def canonical(e, ranges, memo: dict | None = None):
    """A closed normal form of the scalar e: equal (alpha-equivalent) inputs give equal outputs.

    memo: normal forms already computed with these ranges (the same function argument recurs in many
    terms); a caller that keeps one across calls keeps the ranges of their free indices unchanged.
    """
    e = sp.sympify(e)
    memo = {} if memo is None else memo
    key = ("canonical", e)
    if key not in memo:
        memo[key] = _canonical(e, ranges, memo)
    return memo[key]


def _canonical(e, ranges, memo):
    if not e.has(sp.Sum) and not e.has(sp.KroneckerDelta):
        return sp.expand(e)
    out = []
    for bound, factors in _terms(e, ranges, set(_free(e, memo)), memo):
        bound, factors = _eliminate_deltas(bound, factors, ranges)
        product = sp.Mul(*factors)
        if product == 0:
            continue
        coeff = sp.Integer(1)
        for k in list(bound):                 # a dummy nothing depends on counts its range
            if not product.has(k):
                coeff *= ranges[k]
                bound.remove(k)
        inner = [f for f in sp.Mul.make_args(product) if any(f.has(k) for k in bound)]
        outer = [f for f in sp.Mul.make_args(product) if not any(f.has(k) for k in bound)]
        coeff *= sp.Mul(*outer)
        if not bound:
            out.append(coeff)
            continue
        groups = _independent(bound, inner)
        if len(groups) > 1:
            # Σ_a Σ_b f(a) g(b) = (Σ_a f(a)) (Σ_b g(b)): each factor in its own canonical form, so that a
            # double sum meets the product of the single sums it is.
            product = sp.Integer(1)
            for group in groups:
                facs = [f for f in inner if any(f.has(k) for k in group)]
                product *= canonical(sp.Sum(sp.Mul(*facs), *[(k, 0, ranges[k] - 1) for k in group]), ranges, memo)
            out.append(coeff * product)
            continue
        body = sp.Mul(*inner)
        # Named one level above the sums already closed inside (in function
        # arguments), so renaming can never capture one of theirs.
        depth = _depth(body) + 1
        names = [sp.Symbol(f"κ{depth}_{n}", integer=True, nonnegative=True) for n in range(len(bound))]
        perms = itertools.permutations(bound) if len(bound) <= 5 else [tuple(sorted(bound, key=str))]
        best = None
        for perm in perms:
            renamed = body.xreplace(dict(zip(perm, names)))
            key = (str(renamed), tuple(str(ranges[k]) for k in perm))
            if best is None or key < best[0]:
                best = (key, renamed, perm)
        _, renamed, perm = best
        limits = [(nm, 0, ranges[k] - 1) for nm, k in zip(names, perm)]
        out.append(coeff * sp.Sum(renamed, *limits))
    return sp.expand(sp.Add(*out))


def _rewrite_sigma(e):
    return e.replace(sigma, sigmoid_definition)


def _sigma_of_positive(e):
    """sigma(-x) -> 1 - sigma(x) (exact for 1/(1 + e^{-x})), so that x and -x share one sigma."""
    return e.replace(sigma, lambda x: 1 - sigma(-x) if x.could_extract_minus_sign() else sigma(x))


def applications_as_entries(e, ranges: dict):
    """Every element-wise function application replaced by an entry of a tensor of its own, innermost first.

    tanh(Σ_k U[a, k] h[k]) becomes F3[a]: one tensor per application up to the names of its free indices
    (its argument in canonical form, the indices as placeholders), so that the normal form never
    re-evaluates functions of long sums.  Exact: equal arguments give equal values.  σ(-x) is written
    1 - σ(x) first (exact for 1/(1 + e^{-x})), so that the two meet.
    """
    table: dict = {}

    def tensor(func, arg):
        idx = sorted((s for s in arg.free_symbols if s in ranges), key=str)
        best = None
        for perm in itertools.permutations(idx) if len(idx) <= 3 else [tuple(idx)]:
            holes = {s: sp.Symbol(f"_p{n}", integer=True) for n, s in enumerate(perm)}
            key = (func, str(canonical(arg.xreplace(holes), dict(ranges))))
            if best is None or key < best[0]:
                best = (key, perm)
        key, perm = best
        if key not in table:
            table[key] = sp.IndexedBase(f"F{len(table)}")
        return table[key][perm] if perm else sp.Symbol(table[key].name, real=True)

    while True:
        apps = {a for a in e.atoms(sp.Function) if not any(x.atoms(sp.Function) for x in a.args)
                and not isinstance(a, sp.KroneckerDelta)}
        if not apps:
            return e
        mapping = {}
        for a in apps:
            if len(a.args) != 1:
                mapping[a] = tensor(a.func, sp.Tuple(*a.args))
            elif a.func == sigma and sp.expand(a.args[0]).could_extract_minus_sign():
                mapping[a] = 1 - tensor(sigma, sp.expand(-a.args[0]))
            elif a.func == sp.exp and sp.expand(a.args[0]).could_extract_minus_sign():
                mapping[a] = 1 / tensor(sp.exp, sp.expand(-a.args[0]))
            else:
                mapping[a] = tensor(a.func, sp.expand(a.args[0]))
        e = e.xreplace(mapping)


def is_zero(d, ranges) -> bool:
    """Exact zero test of an index-form difference (expand, then cancel)."""
    c = canonical(d, ranges)
    if c == 0:
        return True
    if sp.cancel(sp.together(c)) == 0:
        return True
    if d.atoms(sp.Function) - d.atoms(sp.KroneckerDelta):
        # The same, every function application an entry of its own tensor: exp(-x) meets exp(x).
        a = canonical(applications_as_entries(d, dict(ranges)), ranges)
        if a == 0 or sp.cancel(sp.together(a)) == 0:
            return True
    if c.has(sigma):
        r = canonical(_sigma_of_positive(c), ranges)
        if r == 0 or sp.cancel(sp.together(r)) == 0:
            return True
    if c.has(sigma) and c.has(sp.exp):
        r = canonical(_rewrite_sigma(d), ranges)
        return r == 0 or sp.cancel(sp.together(r)) == 0
    return False
