"""Engine "all sizes" for claims of a derivation file: one proof for every size at once.

Where it sits: intermediate form -> **index notation with symbolic sizes** ->
the normal form of `derivations.generic` (sums opened, Kronecker deltas
eliminated exactly, dummies renamed canonically) -> a zero, or not.

Entry [i, j] of each side is built for symbolic sizes (H, V, m, n: positive
integers) and symbolic i, j: a product is a Sum over a dummy index, u∘v
multiplies entries, diag(u) is δ(i, j) u_i, softmax(y)_i is
e^{y_i} / Σ_k e^{y_k}, a one-hot column e_k is δ(i, k), and a declared
matrix W is IndexedBase entries W[i, j].  Definitions are substituted (they
stay defined: a defined quantity is never an independent symbol), except the
quantity a derivative is taken with respect to, which is differentiated as a
symbol and replaced by its definition afterwards.  The derivative is SymPy's
`diff` of the index form, which yields Kronecker deltas.

It applies to contexts without steps (an MLP, the note's lemmas).  A context
with steps is checked at explicit T by the concrete engine (and, for the
note's algorithm, for every T by the induction).  A difference that does not
reduce to zero is never called proved: it is handed to the concrete engine,
whose counterexamples reproduce from the free inputs.
"""
from __future__ import annotations

import sympy as sp

from . import ir
from .concrete import ILL_TYPED, INCONCLUSIVE, PROVED, Outcome
from .generic import NotApplicable, _fresh, is_zero
from .semantics import apply_function
from .shapes import IllTyped, Typer, fmt, is_scalar_shape, same

METHOD = "all sizes"


class Entries:
    """Entry [i, j] of an expression of one context, in index notation, for symbolic sizes."""

    def __init__(self, ctx: ir.Context):
        self.ctx = ctx
        self.typer = Typer(ctx)
        self.ranges: dict = {}
        self.keep: set = set()           # defined quantities kept as symbols (a derivative's variable)

    def shape(self, e):
        return self.typer.infer(e)

    def index(self, name, size):
        if same(size, 1):
            return sp.Integer(0)
        sym = sp.Symbol(name, integer=True, nonnegative=True)
        self.ranges[sym] = size
        return sym

    def dummy(self, size, name="k"):
        if same(size, 1):
            return sp.Integer(0), None
        d = _fresh(name)
        self.ranges[d] = size
        return d, d

    def summed(self, body, d):
        return body if d is None else sp.Sum(body, (d, 0, self.ranges[d] - 1))

    # ---------------------------------------------------------------- quantities

    def given(self) -> dict:
        out = {}
        for n, d in self.ctx.definitions.items():
            if d.notation and n in self.ctx.declarations and isinstance(d.expr.of, ir.Ref) \
                    and isinstance(d.expr.wrt, ir.Ref):
                out[d.expr.wrt.name] = n
        return out

    def ref(self, e: ir.Ref, i, j):
        ctx, name = self.ctx, e.name
        if e.time is not None:
            raise NotApplicable("a quantity at a step")
        decl = ctx.declarations.get(name)
        definition = ctx.definitions.get(name)
        if decl is not None and decl.kind == "index":
            raise IllTyped(f"{name} is an index, not a matrix")
        if name in self.keep or (decl is not None and decl.kind == "matrix" and (
                definition is None or definition.notation) and not self._abstract(name)):
            return sp.IndexedBase(name)[i, j]
        if self._abstract(name):
            return self.abstract_loss(name)
        if definition is None:
            raise IllTyped(f"{name} is neither declared nor defined")
        return self.entry(definition.expr, i, j)

    def _abstract(self, name):
        decl = self.ctx.declarations.get(name)
        return (decl is not None and decl.kind == "matrix" and name not in self.ctx.definitions
                and is_scalar_shape(decl.shape) and any(
                    d.notation and isinstance(d.expr.of, ir.Ref) and d.expr.of.name == name
                    for d in self.ctx.definitions.values()))

    def abstract_loss(self, name):
        """ℓ = Σ over quantities o with a given gradient g of Σ_ab g[a, b] o[a, b] (see semantics.py)."""
        given = self.given()
        if not given:
            raise NotApplicable(f"{name} has no given gradient")
        total = sp.Integer(0)
        for o, g in given.items():
            rows, cols = self.shape(ir.Ref(o))
            a, da = self.dummy(rows, "a")
            b, db = self.dummy(cols, "b")
            term = sp.IndexedBase(g)[a, b] * self.entry(ir.Ref(o), a, b)
            total += self.summed(self.summed(term, db), da)
        return total

    # ---------------------------------------------------------------- expressions

    def entry(self, e: ir.Expr, i, j):
        method = getattr(self, "_" + type(e).__name__, None)
        if method is None:
            raise NotApplicable(f"no index form for {type(e).__name__}")
        return method(e, i, j)

    def _Ref(self, e, i, j):
        return self.ref(e, i, j)

    def _Number(self, e, i, j):
        return sp.Rational(e.value.numerator, e.value.denominator)

    def _Add(self, e, i, j):
        shape = self.shape(e)
        out = sp.Integer(0)
        for t in e.terms:
            ts = self.shape(t)
            # A number added to a matrix is that number times the all-ones matrix: its entry is the number.
            out += self.entry(t, i, j) if not (is_scalar_shape(ts) and not is_scalar_shape(shape)) \
                else self.entry(t, sp.Integer(0), sp.Integer(0))
        return out

    def _Neg(self, e, i, j):
        return -self.entry(e.arg, i, j)

    def _MatMul(self, e, i, j):
        a, b = self.shape(e.left), self.shape(e.right)
        if is_scalar_shape(a):
            return self.entry(e.left, 0, 0) * self.entry(e.right, i, j)
        if is_scalar_shape(b):
            return self.entry(e.left, i, j) * self.entry(e.right, 0, 0)
        k, d = self.dummy(a[1])
        return self.summed(self.entry(e.left, i, k) * self.entry(e.right, k, j), d)

    def _Hadamard(self, e, i, j):
        return self.entry(e.left, i, j) * self.entry(e.right, i, j)

    def _Div(self, e, i, j):
        a, b = self.shape(e.num), self.shape(e.den)
        num = self.entry(e.num, 0, 0) if is_scalar_shape(a) else self.entry(e.num, i, j)
        den = self.entry(e.den, 0, 0) if is_scalar_shape(b) else self.entry(e.den, i, j)
        return num / den

    def _Transpose(self, e, i, j):
        return self.entry(e.arg, j, i)

    def _Power(self, e, i, j):
        return self.entry(e.arg, i, j) ** e.exponent

    def _Apply(self, e, i, j):
        out = apply_function(e.function, e.derivative, self.entry(e.arg, i, j))
        if out is None:
            raise IllTyped(f"{e.function} has no derivative of order {e.derivative} here")
        return out

    def _Softmax(self, e, i, j):
        rows, _ = self.shape(e.arg)
        k, d = self.dummy(rows, "y")
        return sp.exp(self.entry(e.arg, i, 0)) / self.summed(sp.exp(self.entry(e.arg, k, 0)), d)

    def _Diag(self, e, i, j):
        return sp.KroneckerDelta(i, j) * self.entry(e.arg, i, 0)

    def _index(self, ref: ir.Ref):
        """An index quantity k as a symbol in 0..n-1 (the file writes 1..n)."""
        decl = self.ctx.declarations[ref.name]
        if ref.time is not None:
            raise NotApplicable("an index at a step")
        sym = sp.Symbol(ref.name, integer=True, nonnegative=True)
        self.ranges[sym] = decl.shape[0]
        return sym

    def _Component(self, e, i, j):
        return self.entry(e.arg, self._index(e.index), sp.Integer(0))

    def _Basis(self, e, i, j):
        return sp.KroneckerDelta(i, self._index(e.index))

    def _Sum(self, e, i, j):
        raise NotApplicable("a sum over steps")

    def _Block(self, e, i, j):
        raise NotApplicable("a block matrix (checked at explicit sizes)")

    def _Deriv(self, e: ir.Deriv, i, j):
        wrt = e.wrt
        if not isinstance(wrt, ir.Ref) or wrt.time is not None:
            raise NotApplicable("a derivative with respect to a quantity at a step")
        kept = wrt.name in self.ctx.definitions and not self.ctx.definitions[wrt.name].notation \
            and wrt.name not in self.ctx.declarations
        of_shape = self.shape(e.of)
        if kept:
            self.keep.add(wrt.name)
        try:
            if is_scalar_shape(of_shape):
                of = self.entry(e.of, sp.Integer(0), sp.Integer(0))
                out = sp.diff(of, sp.IndexedBase(wrt.name)[i, j])
            else:
                # Jacobian of columns, denominator layout: [i, j] = d of_j / d wrt_i.
                of = self.entry(e.of, j, sp.Integer(0))
                out = sp.diff(of, sp.IndexedBase(wrt.name)[i, sp.Integer(0)])
        finally:
            if kept:
                self.keep.discard(wrt.name)
        if kept:
            # The variable is a defined quantity: at the point, it is its definition.
            definition = self.ctx.definitions[wrt.name].expr
            base = sp.IndexedBase(wrt.name)
            out = out.replace(lambda x: isinstance(x, sp.Indexed) and x.base == base,
                              lambda x: self.entry(definition, *x.indices))
        return out


def prove(ctx: ir.Context, claim: ir.Claim) -> Outcome | None:
    """The all-sizes verdict on one claim, or None where the engine does not apply (steps, blocks)."""
    if ctx.has_time:
        return None
    sizes = [{str(s): str(s) for s in ctx.sizes()}]
    typer = Typer(ctx)
    try:
        a, b = typer.infer(claim.lhs), typer.infer(claim.rhs)
    except IllTyped as e:
        return Outcome(ILL_TYPED, METHOD, sizes, f"for symbolic sizes: {e}")
    if not (same(a[0], b[0]) and same(a[1], b[1])):
        return Outcome(ILL_TYPED, METHOD, sizes, f"for symbolic sizes the left-hand side is {fmt(a)} but the "
                                                 f"right-hand side is {fmt(b)}")
    ix = Entries(ctx)
    i, j = ix.index("i", a[0]), ix.index("j", a[1])
    try:
        d = ix.entry(claim.lhs, i, j) - ix.entry(claim.rhs, i, j)
    except NotApplicable:
        return None
    if is_zero(d, ix.ranges):
        return Outcome(PROVED, METHOD, sizes, "entry [i, j] of both sides, in index notation for symbolic sizes "
                                              "and symbolic i, j, reduces to the same normal form")
    return Outcome(INCONCLUSIVE, METHOD, sizes, "the index-form difference did not reduce to zero (the concrete "
                                                "engine decides it at explicit sizes)")

