"""Proof engine "all sizes": exact equality for every dimension, in index notation.

Where the concrete engine checks a claim at a few explicit shapes, this engine
builds it once with symbolic sizes (SymPy integer Symbols m, n, H, E, V) and
proves entry [i, j] of both sides equal for symbolic i, j in range.

The route, in the flow note -> proof -> code -> report:

1. every matrix expression becomes index notation by our own small converter
   (`entry`): a product is a Sum over a dummy index, a transpose swaps the
   indices, u∘v multiplies entries, diag(u) is KroneckerDelta(i, j) u_i, f(M)
   applies f to an entry.  Matrix symbols become IndexedBase entries W[i, j],
   so SymPy's `diff` treats each entry as an independent variable and gives
   d W[k, l] / d W[p, q] = KroneckerDelta(k, p) KroneckerDelta(l, q).
   (SymPy's own matrix calculus, `MatrixExpr.diff`, is never used: it is known
   to give wrong results for Hadamard products and element-wise functions.)
2. the truth is SymPy's `diff` of the index-form loss with respect to the
   entry wrt[i, j] (a `Gradient`), of[j] with respect to wrt[i] (a `Jacobian`),
   or the entry of another expression (`Equals`).
3. both sides are put in a normal form (`canonical`): products of sums are
   multiplied out, every Sum is opened with a fresh dummy, KroneckerDeltas are
   eliminated exactly (sum_k delta(k, e) g(k) = g(e) when e ranges over the
   same set as k), and the remaining dummies are renamed canonically, so two
   alpha-equivalent terms print the same.  The difference is then reduced with
   `expand` (and `cancel` for rational functions such as the softmax) -- no
   `simplify` on large trees; a non-zero residue is never called proved.
4. a non-zero residue is refuted by the concrete engine's counterexample
   search at small integer sizes; a shape that does not compose for symbolic
   sizes is ill-typed.
"""
from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.special import Identity, OneMatrix, ZeroMatrix

from .concrete import ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED, Outcome, check_statement
from .functions import typecheck
from .indexform import NotApplicable, fresh, is_zero, size_symbol
from .statement import Equals, Gradient, Jacobian, Statement, dims, resolved

METHOD = "all sizes"


def _is_one(n) -> bool:
    return sp.sympify(n) == 1


class IndexForm:
    """Index notation for matrix expressions; remembers every index's range."""

    def __init__(self):
        self.ranges: dict = {}          # free or bound index symbol -> its size

    def index(self, name, size):
        """A free index over 0..size-1, or the integer 0 when size is 1."""
        if _is_one(size):
            return sp.Integer(0)
        sym = sp.Symbol(name, integer=True, nonnegative=True)
        self.ranges[sym] = size
        return sym

    def entry(self, M, i, j):
        """Entry [i, j] of the matrix expression M, as a scalar with Sums."""
        if isinstance(M, sp.MatrixExpr) and M.has(sp.BlockMatrix):
            M = sp.block_collapse(M)
        if isinstance(M, sp.MatrixSymbol):
            return sp.IndexedBase(M.name)[i, j]
        if isinstance(M, sp.Transpose):
            return self.entry(M.arg, j, i)
        if isinstance(M, sp.MatAdd):
            return sp.Add(*(self.entry(a, i, j) for a in M.args))
        if isinstance(M, sp.MatMul):
            coeff, mats = M.as_coeff_matrices()
            out, row, dummies = [coeff], i, []
            for k, A in enumerate(mats):
                if k == len(mats) - 1:
                    col = j
                elif _is_one(A.shape[1]):
                    col = sp.Integer(0)
                else:
                    col = fresh()
                    self.ranges[col] = A.shape[1]
                    dummies.append(col)
                out.append(self.entry(A, row, col))
                row = col
            body = sp.Mul(*out)
            for c in reversed(dummies):
                body = sp.Sum(body, (c, 0, self.ranges[c] - 1))
            return body
        if isinstance(M, HadamardProduct):
            return sp.Mul(*(self.entry(a, i, j) for a in M.args))
        if isinstance(M, ElementwiseApplyFunction):
            return M.function(self.entry(M.expr, i, j))
        if isinstance(M, DiagMatrix):
            u = M.args[0]
            return sp.KroneckerDelta(i, j) * (self.entry(u, i, 0) if _is_one(u.shape[1]) else self.entry(u, 0, i))
        if isinstance(M, Identity):
            return sp.KroneckerDelta(i, j)
        if isinstance(M, ZeroMatrix):
            return sp.Integer(0)
        if isinstance(M, OneMatrix):
            return sp.Integer(1)
        if isinstance(M, sp.MatrixBase) and isinstance(i, sp.Integer) and isinstance(j, sp.Integer):
            return M[int(i), int(j)]
        if not isinstance(M, (sp.MatrixExpr, sp.MatrixBase)) and _is_one(i + 1) and _is_one(j + 1):
            return sp.sympify(M)          # a scalar seen as a 1x1 matrix
        raise NotApplicable(f"no index form for {type(M).__name__}")

    def scalar(self, loss):
        """The index form of a 1x1 matrix expression (a loss)."""
        shape = getattr(loss, "shape", (1, 1))
        if not (_is_one(shape[0]) and _is_one(shape[1])):
            raise sp.ShapeError(f"the loss must be a scalar, got shape {shape}")
        return self.entry(loss, sp.Integer(0), sp.Integer(0))


# ---------------------------------------------------------------- one statement

def _shape_equal(a, b) -> bool:
    return all(sp.expand(sp.sympify(x) - sp.sympify(y)) == 0 for x, y in zip(a, b))


def _fmt_shape(s):
    return f"{s[0]}×{s[1]}"


def truth_entry(truth, ix: IndexForm, i, j):
    """SymPy's value of the left-hand side at [i, j] (index notation)."""
    if isinstance(truth, Equals):
        return ix.entry(truth.expr, i, j)
    if isinstance(truth, Gradient):
        wrt = truth.wrt
        if not isinstance(wrt, sp.MatrixSymbol):
            raise NotApplicable("gradient with respect to a non-symbol")
        return sp.diff(ix.scalar(truth.loss), sp.IndexedBase(wrt.name)[i, j])
    if isinstance(truth, Jacobian):
        of, wrt = truth.of, truth.wrt
        if not (_is_one(of.shape[1]) and _is_one(wrt.shape[1]) and isinstance(wrt, sp.MatrixSymbol)):
            raise NotApplicable("a Jacobian of anything but a column with respect to a column symbol")
        # entry [i, j] is d of_j / d wrt_i (denominator layout); both are columns.
        return sp.diff(ix.entry(of, j, sp.Integer(0)), sp.IndexedBase(wrt.name)[i, sp.Integer(0)])
    raise TypeError(f"unknown truth {truth!r}")


def truth_shape(truth):
    if isinstance(truth, Equals):
        return truth.expr.shape
    if isinstance(truth, Gradient):
        return truth.wrt.shape
    if isinstance(truth, Jacobian):
        return (truth.wrt.shape[0], truth.of.shape[0])
    raise TypeError(f"unknown truth {truth!r}")


def _blocks(truth):
    """A gradient with respect to a block row/column: one gradient per block."""
    if isinstance(truth, Gradient) and isinstance(truth.wrt, sp.BlockMatrix):
        return [[Gradient(truth.loss, b) for b in row] for row in truth.wrt.blocks.tolist()]
    return None


def bind_defined(e, defined: dict, ix: IndexForm):
    """Entries of defined matrix symbols in the index form e replaced by their definitions' entries."""
    if not defined:
        return e
    by_name = {D.name: definition for D, definition in defined.items()}
    return e.replace(lambda x: isinstance(x, sp.Indexed) and str(x.base.label) in by_name,
                     lambda x: ix.entry(by_name[str(x.base.label)], *x.indices))


def check_symbolic(st: Statement):
    """(verdict, reason) at symbolic sizes: PROVED, ILL_TYPED or None (not zero: try to refute).

    Defined symbols (`st.defined`) take their definitions: in the claimed side
    as matrix expressions, in the truth entry by entry after differentiating.
    """
    claimed, truth = st.claimed, st.truth
    defined = resolved(st.defined)
    typecheck(claimed)
    blocks = _blocks(truth)
    if blocks is not None:
        c = sp.block_collapse(claimed)
        if not isinstance(c, sp.BlockMatrix) or c.blockshape != (len(blocks), len(blocks[0])):
            raise NotApplicable("block gradient against a claim without the same block structure")
        pairs = [(c.blocks[a, b], blocks[a][b]) for a in range(len(blocks)) for b in range(len(blocks[0]))]
    else:
        pairs = [(claimed, truth)]
    for cl, tr in pairs:
        ts = truth_shape(tr)
        if not _shape_equal(cl.shape, ts):
            return ILL_TYPED, (f"the right-hand side is {_fmt_shape(cl.shape)} but the quantity it claims "
                               f"to be is {_fmt_shape(ts)}")
        ix = IndexForm()
        i, j = ix.index("i", ts[0]), ix.index("j", ts[1])
        d = ix.entry(cl.xreplace(defined), i, j) - bind_defined(truth_entry(tr, ix, i, j), defined, ix)
        if not is_zero(d, ix.ranges):
            return None, "the index-form difference did not reduce to zero"
    return PROVED, None


def _instantiate(st: Statement, sizes: dict) -> Statement:
    """The statement at explicit integer sizes (MatrixSymbol shapes substituted)."""
    sub = lambda e: e.xreplace(sizes) if hasattr(e, "xreplace") else e
    t = st.truth
    if isinstance(t, Gradient):
        t = Gradient(sub(t.loss), sub(t.wrt))
    elif isinstance(t, Jacobian):
        t = Jacobian(sub(t.of), sub(t.wrt))
    else:
        t = Equals(sub(t.expr))
    return Statement(sub(st.claimed), t, st.where, {sub(k): sub(v) for k, v in st.defined.items()})


def refute(st: Statement, symbols: dict, trial_sizes, seed: str):
    """A counterexample at small integer sizes, found by the concrete engine, or None."""
    for sizes in trial_sizes:
        sub = {symbols[k]: sp.Integer(v) for k, v in sizes.items() if k in symbols}
        try:
            verdict, detail = check_statement(_instantiate(st, sub), seed=f"{seed}|{sizes}")
        except (sp.ShapeError, ValueError, TypeError):
            continue
        if verdict == REFUTED:
            detail["at"] = ", ".join(f"{k}={v}" for k, v in sizes.items() if k in symbols)
            return detail
    return None


def prove_statements(statements, symbols: dict, trial_sizes, seed: str, how: str) -> Outcome:
    """The all-sizes verdict for a list of statements built at symbolic sizes."""
    shapes = [{k: str(v) for k, v in symbols.items()}]
    for st in statements:
        where = f" ({st.where})" if st.where else ""
        try:
            verdict, reason = check_symbolic(st)
        except sp.ShapeError as e:
            return Outcome(ILL_TYPED, METHOD, shapes, f"for symbolic sizes{where}: {e}")
        if verdict == ILL_TYPED:
            return Outcome(ILL_TYPED, METHOD, shapes, f"for symbolic sizes{where}: {reason}")
        if verdict is None:
            cex = refute(st, symbols, trial_sizes, seed)
            if cex is not None:
                return Outcome(REFUTED, METHOD, shapes,
                               f"entry [i, j] of the two sides differs for symbolic sizes{where}; "
                               f"at {cex['at']} the concrete engine finds numbers where they differ", cex)
            return Outcome(INCONCLUSIVE, METHOD, shapes, f"{reason}{where}, and no counterexample was found")
    return Outcome(PROVED, METHOD, shapes, how)


# ---------------------------------------------------------------- claims

HOW = ("entry [i, j] of both sides in index notation, for symbolic sizes and symbolic i, j, "
       "reduces to the same normal form (sums opened, Kronecker deltas eliminated exactly)")


def _size_names(claim):
    names = list(claim.shapes[0].keys()) if claim.shapes else []
    return [n for n in names if n != "T"]


def step_statement(lhs: str, update, s) -> Statement:
    """One step of the BPTT algorithm: the update against the one-step gradient.

    The loss seen through one step is <dh, sigma(W_xh X + W_hh h_prev)> for the
    lines that read dh, <dS, W_hy h> + <dh_next, h> for dh itself.  An
    accumulated line adds the Frobenius pairing <dW_next, W> (written
    1^T (dW_next ∘ W) 1), whose gradient is dW_next: what later steps added.

    The step symbol h is defined, h = h_t = sigma(W_xh X + W_hh h_prev), in
    the line and in the truth (for the dh line after differentiating with
    respect to h: the derivative at the point h_t); X, h_prev, the weights and
    the upstream gradients dS, dh, dh_next, dW_*_next are free.
    """
    from .unrolled import step_definitions
    defined = step_definitions(s)
    h_t = defined[s.h]
    through_dh = s.dh.T * h_t

    def pairing(A, W):
        return OneMatrix(1, A.shape[0]) * HadamardProduct(A, W) * OneMatrix(A.shape[1], 1)

    losses = {
        "dX": (through_dh, s.X),
        "dh_prev": (through_dh, s.h_prev),
        "dW_xh": (through_dh + pairing(s.dW_xh_next, s.W_xh), s.W_xh),
        "dW_hh": (through_dh + pairing(s.dW_hh_next, s.W_hh), s.W_hh),
        "dW_hy": (s.dS.T * s.W_hy * s.h + pairing(s.dW_hy_next, s.W_hy), s.W_hy),
        "dh": (s.dS.T * s.W_hy * s.h + s.dh_next.T * s.h, s.h),
    }
    loss, wrt = losses[lhs]
    return Statement(update, Gradient(loss, wrt), where=f"one step, {lhs}", defined=defined)


RNN_TRIALS = ({"H": 2, "E": 2, "V": 2}, {"H": 2, "E": 3, "V": 2}, {"H": 3, "E": 2, "V": 3}, {"H": 1, "E": 1, "V": 1})


def _build(claim, symbols):
    d = dims(**symbols)
    if claim.lhs is not None:
        from .unrolled import line_update, step_symbols
        s = step_symbols(d)
        return [step_statement(claim.lhs, line_update(claim.lhs, claim.build, s), s)]
    built = claim.build(d)
    return list(built) if isinstance(built, (list, tuple)) else [built]


def _refute_where_it_composes(claim, trials):
    """A counterexample at a small size where an ill-typed line happens to compose (e.g. E = H)."""
    for sizes in trials:
        try:
            statements = _build(claim, {k: sp.Integer(v) for k, v in sizes.items()})
        except sp.ShapeError:
            continue
        for st in statements:
            try:
                verdict, detail = check_statement(st, seed=f"{claim.id}|{sizes}")
            except sp.ShapeError:
                continue
            if verdict == REFUTED:
                detail["at"] = ", ".join(f"{k}={v}" for k, v in sizes.items())
                return detail
    return None


def prove_all_sizes(claim) -> Outcome | None:
    """The "all sizes" outcome of a registered claim, or None when it is not amenable."""
    names = _size_names(claim)
    symbols = {n: size_symbol(n) for n in names}
    shapes = [{k: str(v) for k, v in symbols.items()}]
    trials = [dict(s) for s in claim.shapes] if claim.lhs is None else list(RNN_TRIALS)
    for t in trials:
        t.pop("T", None)
    try:
        statements = _build(claim, symbols)
    except sp.ShapeError as e:
        e = " ".join(str(e).split())          # block matrices print on several lines
        cex = _refute_where_it_composes(claim, trials)
        if cex is not None:
            return Outcome(REFUTED, METHOD, shapes,
                           f"for symbolic sizes it does not compose ({e}); at {cex['at']}, where it does, "
                           f"the concrete engine finds numbers where the two sides differ", cex)
        return Outcome(ILL_TYPED, METHOD, shapes, f"for symbolic sizes: {e}")
    except (TypeError, ValueError, AttributeError, IndexError, NotImplementedError):
        # A builder that needs explicit integer sizes: range(d.m), an explicit
        # one-hot column, sp.ones(d.n, 1), or the number of steps d.T.
        return None
    how = HOW + (" (one-step semantics: the loss seen through dh_t, dS_t and the later steps' gradients)"
                 if claim.lhs else "")
    try:
        return prove_statements(statements, symbols, trials, claim.id, how)
    except NotApplicable:
        return None
