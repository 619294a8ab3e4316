"""Proof engine "concrete": exact equality at explicit small shapes.

For each shape the claim is built with explicit matrices of symbols, the truth
is computed by SymPy (the derivative of the forward definition), and the
difference is reduced exactly (expand, then cancel).  The outcome per shape is
one of: zero (proved there), a shape failure (ill-typed), a counterexample
(refuted: numbers at which both sides differ, re-checked at 50 digits), or
undecided (inconclusive -- never counted as proved).

Quantities the model defines (`Statement.defined`, e.g. h = h_t) are replaced
by their definitions in both sides -- in the truth after differentiating --
so only free inputs are left; a counterexample is a point of those and is
re-checked on the model (`derivations.recheck.confirm`) before it is reported.
"""
from __future__ import annotations

import random

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement
from sympy.matrices.expressions.special import Identity, OneMatrix, ZeroMatrix

from .functions import explain_shape_error, f, fp, sigma, typecheck
from .recheck import EngineDefect, confirm, f_instance, fp_instance
from .statement import Equals, Gradient, Jacobian, Statement, dims, resolved

# The verdict names and the engine outcome are defined once, in derivations.verdicts (re-exported here).
from .verdicts import CHECKED, CONFLICT, ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED, VERDICTS, Outcome  # noqa: F401

# ---------------------------------------------------------------- explicit form

def explicit(M, bind=None) -> sp.Matrix:
    """The explicit matrix of a matrix expression, entries as plain symbols.

    MatrixSymbol entries W[i, j] become Symbols named "W[i,j]" so that SymPy's
    `diff` and `subs` treat them as ordinary independent variables -- or, for a
    MatrixSymbol in `bind`, the entries of the explicit matrix it is bound to.
    The expression is evaluated node by node (products, sums, transposes, ∘,
    diag, element-wise functions, blocks); SymPy's own `as_explicit` is only a
    fallback, as it leaves unevaluated sums in the transpose of a product.
    """
    bind = bind or {}
    if isinstance(M, sp.MatrixExpr) and not isinstance(M, sp.MatrixBase):
        return _explicit(M, bind)
    return _elements(sp.Matrix(M if isinstance(M, sp.MatrixBase) else [[M]]), bind)


def _elements(M: sp.Matrix, bind) -> sp.Matrix:
    """Entries W[i, j] of matrix symbols (or of bound ones, or of expressions) inside M, as plain values."""
    elements = {}
    for e in M.atoms(MatrixElement):
        if e.parent in bind:
            elements[e] = bind[e.parent][e.i, e.j]
        elif isinstance(e.parent, sp.MatrixSymbol):
            elements[e] = entry_symbol(e)
        else:                                     # an entry of an expression, e.g. z[i] for z = W h
            elements[e] = explicit(e.parent, bind)[e.i, e.j]
    return M.xreplace(elements)


def _explicit(M, bind) -> sp.Matrix:
    if isinstance(M, sp.MatrixSymbol):
        if M in bind:
            return sp.Matrix(bind[M])
        return sp.Matrix(*M.shape, lambda i, j: entry_symbol(M[i, j]))
    if isinstance(M, sp.MatrixBase):
        return _elements(sp.Matrix(M), bind)
    if isinstance(M, sp.Transpose):
        return _explicit(M.arg, bind).T
    if isinstance(M, sp.MatMul):
        coeff = _elements(sp.Matrix([[sp.Mul(*[a for a in M.args if not isinstance(a, sp.MatrixExpr)])]]), bind)
        out = None
        for A in (a for a in M.args if isinstance(a, sp.MatrixExpr)):
            value = _explicit(A, bind)
            out = value if out is None else out * value
        return coeff[0, 0] * out
    if isinstance(M, sp.MatAdd):
        out = _explicit(M.args[0], bind)
        for A in M.args[1:]:
            out = out + _explicit(A, bind)
        return out
    if isinstance(M, HadamardProduct):
        out = _explicit(M.args[0], bind)
        for A in M.args[1:]:
            out = out.multiply_elementwise(_explicit(A, bind))
        return out
    if isinstance(M, ElementwiseApplyFunction):
        return _explicit(M.expr, bind).applyfunc(M.function)
    if isinstance(M, DiagMatrix):
        return sp.diag(*_explicit(M.args[0], bind))
    if isinstance(M, Identity):
        return sp.eye(M.rows)
    if isinstance(M, ZeroMatrix):
        return sp.zeros(*M.shape)
    if isinstance(M, OneMatrix):
        return sp.ones(*M.shape)
    if isinstance(M, sp.BlockMatrix):
        return sp.Matrix.vstack(*(sp.Matrix.hstack(*(_explicit(b, bind) for b in row)) for row in M.blocks.tolist()))
    return _elements(sp.Matrix(M.as_explicit()), bind)


def entry_symbol(e: MatrixElement) -> sp.Symbol:
    name, i, j = e.parent.name, e.i, e.j
    return sp.Symbol(f"{name}[{i}]" if e.parent.shape[1] == 1 else f"{name}[{i},{j}]", real=True)


def truth_of(truth) -> sp.Matrix:
    """SymPy's own value of the left-hand side."""
    if isinstance(truth, Equals):
        return explicit(truth.expr)
    wrt = explicit(truth.wrt)
    if isinstance(truth, Gradient):
        loss = explicit(truth.loss)
        if loss.shape != (1, 1):
            raise sp.ShapeError(f"the loss must be a scalar, got shape {loss.shape}")
        return wrt.applyfunc(lambda w: sp.diff(loss[0, 0], w))
    if isinstance(truth, Jacobian):
        of = explicit(truth.of)
        return sp.Matrix(len(wrt), len(of), lambda j, i: sp.diff(of[i], wrt[j]))
    raise TypeError(f"unknown truth {truth!r}")


# ---------------------------------------------------------------- exact zero test

def atomize_sigmas(exprs):
    """Replace every sigma(...) by a fresh symbol, innermost first.

    Both sides are then polynomials in independent symbols; if their difference
    is zero for independent values it is zero at sigma's true values too, so a
    zero here is a proof.  sigma(-x) becomes 1 - (the atom of sigma(x)), which
    is exact for the real sigmoid.  (A non-zero here is not a refutation: that is decided
    numerically with the real sigmoid.)
    """
    exprs = list(exprs)
    table: dict = {}
    while True:
        atoms = set().union(*(e.atoms(sigma) for e in exprs)) if exprs else set()
        inner = [a for a in atoms if not a.args[0].has(sigma)]
        if not inner:
            return exprs
        mapping = {}
        for a in inner:
            key = sp.expand(a.args[0])
            # sigma(-x) = 1 - sigma(x), an identity of 1/(1 + e^{-x}): one atom for x and -x.
            negated = key.could_extract_minus_sign()
            key = -key if negated else key
            if key not in table:
                table[key] = sp.Symbol(f"s{len(table)}", real=True)
            mapping[a] = 1 - table[key] if negated else table[key]
        exprs = [e.xreplace(mapping) for e in exprs]


def is_exactly_zero(d) -> bool:
    """Exact test: expand, then cancel; sigma rewritten as exp only as a last step."""
    if d == 0:
        return True
    (a,) = atomize_sigmas([d])
    if sp.expand(a) == 0:
        return True
    if sp.cancel(sp.together(sp.expand(a))) == 0:
        return True
    # Only a statement that sets the opaque sigma against its definition (both
    # sigma and exp present) needs sigma rewritten; elsewhere the rewrite would
    # only build towers of exponentials for cancel to choke on.
    if d.has(sigma) and d.has(sp.exp):
        return sp.cancel(sp.together(sp.expand(d.rewrite(sp.exp)))) == 0
    return False


# ---------------------------------------------------------------- counterexamples

def instantiate(expr):
    """Replace the generic functions by concrete ones so the expression has a value."""
    return expr.replace(f, f_instance).replace(fp, fp_instance)


# Two sides closer than this (relative to the larger) read like rounding, not like an error.
CLEAR_MARGIN = sp.Rational(1, 10)
WHOLE_TRIES = 10   # tries with whole numbers before small fractions


def _point(rng, symbols, whole: bool) -> dict:
    """Small exact inputs: whole numbers first (easiest to check by hand), then small fractions."""
    denominators = [1] if whole else [1, 2, 3]
    return {s: sp.Rational(rng.choice([-3, -2, -1, 1, 2, 3]), rng.choice(denominators)) for s in symbols}


def _shown(exact, approx, other) -> str:
    """A value as a reader checks it: exact when rational (7/2, not 3.50000000000000), else 6 significant
    digits -- more only when 6 would print two different values alike (a difference below the clear margin)."""
    if exact.is_Rational:
        return str(exact)
    for digits in range(6, 16):
        text = f"{float(approx):.{digits}g}"
        if text != f"{float(other):.{digits}g}":
            return text
    return text


def _measure(claimed: sp.Matrix, truth: sp.Matrix, point: dict):
    """At `point`: the first entry where the sides differ by CLEAR_MARGIN, else the one where they differ
    most, as (relative difference, (i, j), exact claimed, exact truth, claimed, truth at 50 digits);
    None when they agree everywhere.  A difference must be far above the 50-digit rounding."""
    best = None
    for (i, j) in ((i, j) for i in range(claimed.rows) for j in range(claimed.cols)):
        exact_c = instantiate(sp.sympify(claimed[i, j].xreplace(point)))
        exact_t = instantiate(sp.sympify(truth[i, j].xreplace(point)))
        c, t = exact_c.evalf(50), exact_t.evalf(50)
        gap = abs(sp.N(c - t, 50))
        if gap <= sp.Float("1e-30"):
            continue
        relative = gap / max(abs(c), abs(t))
        if best is None or relative > best[0]:
            best = (relative, (i, j), exact_c, exact_t, c, t)
        if relative >= CLEAR_MARGIN:
            break
    return best


def search(claimed: sp.Matrix, truth: sp.Matrix, seed: str, tries: int = 20):
    """A point of the free symbols (small exact rationals) at which claimed != truth, or None.

    Seeded, so reports are reproducible.  Looks for a point where the two sides
    differ by at least CLEAR_MARGIN relative to the larger one; when no try gets
    there, the point of the largest relative difference found.
    """
    rng = random.Random(seed)
    symbols = sorted(claimed.free_symbols | truth.free_symbols, key=str)
    best = None
    for k in range(tries):
        point = _point(rng, symbols, whole=k < WHOLE_TRIES)
        measured = _measure(claimed, truth, point)
        if measured is None:
            continue
        if best is None or measured[0] > best[0]:
            best = (measured[0], point)
        if measured[0] >= CLEAR_MARGIN:
            break
    return None if best is None else best[1]


def counterexample(claimed: sp.Matrix, truth: sp.Matrix, seed: str, tries: int = 20, model=None):
    """A counterexample (exact free values where claimed != truth, confirmed on the model), or None.

    `claimed` and `truth` are in free symbols only; `model` is (claimed, truth,
    definitions) as the statement writes them, defined symbols kept, for the
    re-check.  The point comes from `search` (a clear margin when there is
    one, else `clear_margin: False`); the entry reported is re-checked on the
    model by `recheck.confirm`, which raises `recheck.NoDifference` when the
    model does not confirm it.
    """
    point = search(claimed, truth, seed, tries)
    if point is None:
        return None
    mc, mt, definitions = model or (claimed, truth, {})
    measured = _measure(claimed, truth, point)
    if measured is None:
        # The sides agree at the point the search returned: the model decides (NoDifference when it agrees).
        confirm(mc, mt, point, definitions)
        raise EngineDefect("the model differs at a point where the sides in free inputs agree: "
                           "the definitions were not substituted faithfully")
    relative, (i, j), exact_c, exact_t, c, t = measured
    checked = confirm(sp.Matrix([[mc[i, j]]]), sp.Matrix([[mt[i, j]]]), point, definitions)
    return {**checked, "entry": [i, j],
            "claimed": _shown(exact_c, c, t), "truth": _shown(exact_t, t, c),
            # 15 digits, from the re-check on the model, for an independent check of the shown values
            "claimed_precise": checked["claimed"], "truth_precise": checked["truth"],
            "relative_difference": float(f"{float(relative):.3g}"), "clear_margin": bool(relative >= CLEAR_MARGIN)}


# ---------------------------------------------------------------- one claim

def entry_definitions(defined: dict) -> dict:
    """{entry symbol of a defined matrix symbol: the entry of its explicit definition}."""
    out = {}
    for D, definition in defined.items():
        value = explicit(definition)
        out.update({entry_symbol(D[i, j]): value[i, j] for i in range(D.shape[0]) for j in range(D.shape[1])})
    return out


def check_statement(st: Statement, seed: str):
    """(verdict, detail) for one statement at one shape."""
    typecheck(st.claimed)
    truth = truth_of(st.truth)
    claimed = explicit(st.claimed)
    if claimed.shape != truth.shape:
        return ILL_TYPED, (f"the right-hand side is {claimed.shape[0]}×{claimed.shape[1]} but the "
                           f"quantity it claims to be is {truth.shape[0]}×{truth.shape[1]}")
    model = (claimed, truth, {})
    if st.defined:
        # Defined quantities take their definitions' values, in the truth after differentiating.
        definitions = entry_definitions(st.defined)
        everywhere = entry_definitions(resolved(st.defined))
        model = (claimed, truth, definitions)
        claimed, truth = claimed.xreplace(everywhere), truth.xreplace(everywhere)
    diff = claimed - truth
    if all(is_exactly_zero(d) for d in diff):
        return PROVED, None
    cex = counterexample(claimed, truth, seed, model=model)
    if cex is not None:
        return REFUTED, cex
    return INCONCLUSIVE, "the difference did not reduce to zero and no counterexample was found"


def statements_at(claim, shape) -> list[Statement]:
    if claim.lhs is not None:
        from .unrolled import through_time
        return through_time(claim, shape)
    built = claim.build(dims(**shape))
    return list(built) if isinstance(built, (list, tuple)) else [built]


def prove(claim, budget: float | None = None) -> Outcome:
    """Run the concrete engine on every shape of the claim (`budget`: accepted for the runner's cross-check;
    the note's Python builders are small and checked whole)."""
    tried, failures = [], []
    for shape in claim.shapes:
        where_shape = ", ".join(f"{k}={v}" for k, v in shape.items()) or "scalars"
        try:
            statements = statements_at(claim, shape)
        except sp.ShapeError as e:
            failures.append((ILL_TYPED, f"at {where_shape}: {explain_shape_error(e)}", None))
            tried.append(shape)
            continue
        for st in statements:
            where = f"{where_shape}{', ' + st.where if st.where else ''}"
            try:
                verdict, detail = check_statement(st, seed=f"{claim.id}|{where}")
            except sp.ShapeError as e:
                verdict, detail = ILL_TYPED, explain_shape_error(e)
            if verdict == ILL_TYPED:
                failures.append((verdict, f"at {where}: {detail}", None))
            elif verdict == REFUTED:
                detail["at"] = where
                failures.append((verdict, f"at {where} the two sides differ", detail))
            elif verdict == INCONCLUSIVE:
                failures.append((verdict, f"at {where}: {detail}", None))
        tried.append(shape)
    if not failures:
        return Outcome(PROVED, "concrete", tried,
                       f"exact zero difference at all {len(tried)} shapes")
    # A shape failure outranks a counterexample, which outranks an undecided case.
    kind, reason, cex = min(failures, key=lambda x: (ILL_TYPED, REFUTED, INCONCLUSIVE).index(x[0]))
    more = f" (and {len(failures) - 1} more failing case(s))" if len(failures) > 1 else ""
    return Outcome(kind, "concrete", tried, reason + more, cex)
