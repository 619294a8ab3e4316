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
rules applied to the index form (`generic.diff_entry`), which yields Kronecker deltas.

It applies to contexts without steps (an MLP, the note's lemmas).  A context
with steps is checked at explicit T by the concrete engine (and, for the
note's algorithm, for every T by the induction).  A difference that does not
reduce to zero is never called proved: it is handed to the concrete engine,
whose counterexamples reproduce from the free inputs.
"""
from __future__ import annotations

import sympy as sp

from ..form import ir
from ..form.functions import apply_function
from ..form.indexform import Delta, NotApplicable, diff_entry, fresh, is_zero
from ..form.semantics import given_gradients
from ..form.shapes import IllTyped, Typer, fmt, is_scalar_shape, same, with_indices
from .verdicts import ILL_TYPED, INCONCLUSIVE, PROVED, Outcome

METHOD = "all sizes"


class Entries(ir.Visitor):
    """Entry [i, j] of an expression of one context, in index notation, for symbolic sizes."""

    def __init__(self, ctx: ir.Context, local_floor: int | None = None):
        self.ctx = ctx
        self.typer = Typer(ctx)
        self.ranges: dict = {}
        self.keep: set = set()           # defined quantities kept as symbols (a derivative's variable)
        # Steps.  A context about one step (T := 1) is evaluated at t = T = 1.  Otherwise a claim without
        # derivatives or sums over time is step-local: steps are offsets from t, a defined quantity at an
        # offset >= local_floor is its definition, one below it a free symbol (a proof for every value of
        # it is a proof for its value; a non-zero is never a refutation here).
        self.fixed = ctx.length
        self.env = {"t": 1, "T": ctx.length} if ctx.length is not None else {"t": 0}
        self.local_floor = local_floor

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
        d = fresh(name)
        self.ranges[d] = size
        return d, d

    def summed(self, body, d):
        return body if d is None else sp.Sum(body, (d, 0, self.ranges[d] - 1))

    # ---------------------------------------------------------------- quantities

    def given(self, loss: str) -> dict:
        """The gradients given of the abstract loss `loss` (semantics.given_gradients): that loss's only."""
        return given_gradients(self.ctx, loss)

    def step(self, time: ir.Time | None):
        if time is None:
            return None
        if time.var is None:
            return time.offset if self.fixed else ("abs", time.offset)
        if time.var == "T":
            if not self.fixed:
                raise NotApplicable("a step counted from T")
            return self.fixed + time.offset
        return self.env[time.var] + time.offset

    def binary_powers(self, d):
        """d with y^n written y for every entry of a binary label (y \\in \\{0, 1\\}, n >= 1): exact, as
        0^n = 0 and 1^n = 1 (so that σ(z) - y^2 = σ(z) - y is proved)."""
        names = {n for n, decl in self.ctx.declarations.items() if decl.binary}
        if not names:
            return d

        def binary(e):
            if not (e.is_Pow and e.exp.is_Integer and e.exp > 0 and isinstance(e.base, sp.Indexed)):
                return False
            base = e.base.base.name
            return any(base == n or base.startswith((n + "_", n + "@")) for n in names)
        return d.replace(binary, lambda e: e.base)

    def symbol(self, name: str, step):
        """The IndexedBase of a free quantity (at a step: h_0, or h@-1 for h_{t-1} in a step-local claim)."""
        if step is None:
            return sp.IndexedBase(name)
        if isinstance(step, tuple):
            return sp.IndexedBase(f"{name}_{step[1]}")
        return sp.IndexedBase(f"{name}_{step}" if self.fixed else f"{name}@{step:+d}")

    def ref(self, e: ir.Ref, i, j):
        ctx, name = self.ctx, e.name
        step = self.step(e.time)
        decl = ctx.declarations.get(name)
        definition = ctx.definitions.get(name)
        if decl is not None and decl.kind == "index":
            raise IllTyped(f"{name} is an index, not a matrix")
        if self.fixed and isinstance(step, int) and not 1 <= step <= self.fixed:
            if step == 0 and (name + "_0") in ctx.declarations:
                return self.symbol(name, 0)[i, j]
            return sp.Integer(0)                  # a quantity at a step outside 1..T
        if (name, step) in self.keep or (decl is not None and decl.kind == "matrix" and (
                definition is None or definition.notation) and not self._abstract(name)):
            return self.symbol(name, step)[i, j]
        if self._abstract(name):
            return self.abstract_loss(name)
        if definition is None:
            raise IllTyped(f"{name} is neither declared nor defined")
        if isinstance(step, tuple) or (not self.fixed and step is not None and step < self.local_floor):
            return self.symbol(name, step)[i, j]  # below the claim's earliest step: free (see __init__)
        return self.at_step(definition, step, lambda: self.entry(definition.expr, i, j))

    def at_step(self, definition: ir.Definition, step, compute):
        """compute() with the definition's step variable at `step`."""
        target = definition.target.time
        if target is None or target.var is None:
            return compute()
        saved = dict(self.env)
        self.env[target.var] = step - target.offset
        try:
            return compute()
        finally:
            self.env = saved

    def _abstract(self, name):
        decl = self.ctx.declarations.get(name)
        return (decl is not None and decl.kind == "matrix" and name not in self.ctx.definitions
                and is_scalar_shape(decl.shape) and any(
                    d.notation and isinstance(d.expr.of, ir.Ref) and d.expr.of.name == name
                    for d in self.ctx.definitions.values()))

    def abstract_loss(self, name):
        """ℓ = Σ over quantities o with a given gradient g of Σ_ab g[a, b] o[a, b] (see semantics.py)."""
        given = self.given(name)
        if not given:
            raise NotApplicable(f"{name} has no given gradient")
        total = sp.Integer(0)
        for o, g in given.items():
            sequence = self.ctx.is_sequence(o)
            if sequence and not self.fixed:
                raise NotApplicable("an abstract loss of a sequence, at unknown T")
            for step in (range(1, self.fixed + 1) if sequence else [None]):
                ref = ir.Ref(o, ir.Time("t") if sequence else None)
                rows, cols = self.shape(ref)
                a, da = self.dummy(rows, "a")
                b, db = self.dummy(cols, "b")
                saved = dict(self.env)
                if step is not None:
                    self.env["t"] = step
                try:
                    term = self.symbol(g, step if self.ctx.declarations[g].sequence else None)[a, b] \
                        * self.entry(ref, a, b)
                finally:
                    self.env = saved
                total += self.summed(self.summed(term, db), da)
        return total

    # ---------------------------------------------------------------- expressions

    def entry(self, e: ir.Expr, i, j):
        return self.visit(e, i, j)

    def missing(self, e, i, j):
        raise NotApplicable(f"no index form for {type(e).__name__}")

    def _Ref(self, e, i, j):
        return self.ref(e, i, j)

    def _Number(self, e, i, j):
        return sp.Rational(e.value.numerator, e.value.denominator)

    def _StepIf(self, e, i, j):
        raise NotApplicable("a condition between steps")   # Steps (the recurrence engine) decides it per case

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
        if isinstance(e.left, (ir.Block, ir.Ref)) or isinstance(e.right, (ir.Block, ir.Ref)):
            via_blocks = self._MatMul_blocks(e, i, j)
            if via_blocks is not None:
                return via_blocks
        a, b = self.shape(e.left), self.shape(e.right)
        # A factor that is zero here (1[t = T] away from T) makes the product zero: the other factor is not read,
        # so a term that exists only at one step is never opened at the others.
        if is_scalar_shape(a):
            left = self.entry(e.left, 0, 0)
            return left * self.entry(e.right, i, j) if left != 0 else sp.Integer(0)
        if is_scalar_shape(b):
            right = self.entry(e.right, 0, 0)
            return self.entry(e.left, i, j) * right if right != 0 else sp.Integer(0)
        k, d = self.dummy(a[1])
        left = self.entry(e.left, i, k)
        return self.summed(left * self.entry(e.right, k, j), d) if left != 0 else sp.Integer(0)

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

    def _Ones(self, e, i, j):
        return sp.Integer(1)

    def _Diag(self, e, i, j):
        return Delta(i, j) * self.entry(e.arg, i, 0)

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
        return Delta(i, self._index(e.index))

    def _MatrixEntry(self, e, i, j):
        return self.entry(e.arg, self._index(e.row), self._index(e.col))

    def _Kronecker(self, e, i, j):
        return Delta(self._index(e.a), self._index(e.b))

    def _Sum(self, e, i, j):
        if not self.fixed:
            raise NotApplicable("a sum over steps")
        out = sp.Integer(0)
        for s_ in range(self.step(e.lo), self.step(e.hi) + 1):
            saved = dict(self.env)
            self.env[e.var] = s_
            try:
                out += self.entry(e.body, i, j)
            finally:
                self.env = saved
        return out

    def _Block(self, e, i, j):
        grid = self.blocks(e)
        if grid is not None and len(grid) == 1 and len(grid[0]) == 1:
            return self.entry(grid[0][0], i, j)
        raise NotApplicable("a block matrix inside an expression (its blocks are compared one by one)")

    # ---------------------------------------------------------------- block matrices

    def blocks(self, e: ir.Expr):
        """The grid of blocks an expression is made of ([A B] [X; h] -> [[A X + B h]]), or None."""
        if isinstance(e, ir.Block):
            return [list(row) for row in e.rows]
        if isinstance(e, ir.Ref) and e.name in self.ctx.definitions and e.name not in self.ctx.declarations \
                and not self.ctx.definitions[e.name].notation and e.time == self.ctx.definitions[e.name].target.time:
            return self.blocks(self.ctx.definitions[e.name].expr)       # Z_t := [X_t; h_{t-1}], read at t
        if isinstance(e, ir.Transpose):
            g = self.blocks(e.arg)
            return None if g is None else [[ir.Transpose(g[r][c], e.style) for r in range(len(g))]
                                           for c in range(len(g[0]))]
        if isinstance(e, ir.MatMul):
            a, b = self.blocks(e.left), self.blocks(e.right)
            if a is None and b is None:
                return None
            a = a or [[e.left]]
            b = b or [[e.right]]
            if len(a[0]) == 1 and len(b) == 1:                     # a column of blocks times a row of blocks
                return [[ir.MatMul(x[0], y, e.dot) for y in b[0]] for x in a]
            if len(a[0]) != len(b):
                return None
            for k in range(len(b)):
                if not self.typer.eq(self.shape(a[0][k])[1], self.shape(b[k][0])[0]):
                    return None
            return [[ir.Add(tuple(ir.MatMul(a[r][k], b[k][c], e.dot) for k in range(len(b))))
                     if len(b) > 1 else ir.MatMul(a[r][0], b[0][c], e.dot)
                     for c in range(len(b[0]))] for r in range(len(a))]
        return None

    def _MatMul_blocks(self, e, i, j):
        grid = self.blocks(e)
        if grid is not None:
            if len(grid) == 1 and len(grid[0]) == 1:
                return self.entry(grid[0][0], i, j)
            raise NotApplicable("a product of block matrices that is not one block")
        return None

    def _Deriv(self, e: ir.Deriv, i, j):
        wrt = e.wrt
        if not isinstance(wrt, ir.Ref) or (wrt.time is not None and not self.fixed):
            raise NotApplicable("a derivative with respect to a quantity at a step")
        if isinstance(e.of, ir.Ref) and e.of.time is not None and not self.fixed:
            raise NotApplicable("a derivative of a quantity at a step")
        step = self.step(wrt.time)
        if self.fixed and isinstance(step, int) and not 0 <= step <= self.fixed:
            return sp.Integer(0)                  # a quantity outside the steps is a constant zero
        definition = self.ctx.definitions.get(wrt.name)
        kept = definition is not None and not definition.notation and wrt.name not in self.ctx.declarations \
            and not (self.fixed and step == 0)
        of_shape = self.shape(e.of)
        key = (wrt.name, step)
        if kept:
            self.keep.add(key)
        base = self.symbol(wrt.name, step)
        try:
            if is_scalar_shape(of_shape):
                of = self.entry(e.of, sp.Integer(0), sp.Integer(0))
                out = diff_entry(of, base[i, j])
            else:
                # Jacobian of columns, denominator layout: [i, j] = d of_j / d wrt_i.
                of = self.entry(e.of, j, sp.Integer(0))
                out = diff_entry(of, base[i, sp.Integer(0)])
        finally:
            if kept:
                self.keep.discard(key)
        if kept:
            # The variable is a defined quantity: at the point, it is its definition.
            out = out.replace(lambda x: isinstance(x, sp.Indexed) and x.base == base,
                              lambda x: self.at_step(definition, step,
                                                     lambda: self.entry(definition.expr, *x.indices)))
        return out


def local_floor(claim: ir.Claim, ctx: ir.Context | None = None):
    """The earliest step offset a step-local claim writes (None when it is not step-local).

    A defined quantity at a later step (h_{t+1}) is not step-local: its definition
    holds only up to T, and at t = T the file's semantics make h_{T+1} zero -- the
    concrete engine, which unrolls to T, decides such a line.
    """
    offsets = []
    for side in (claim.lhs, claim.rhs):
        for node in side.walk():
            if isinstance(node, (ir.Deriv, ir.Sum)):
                return None
            if isinstance(node, ir.Ref) and node.time is not None:
                if node.time.var != "t":
                    return None
                definition = ctx.definitions.get(node.name) if ctx is not None else None
                if node.time.offset > 0 and definition is not None and not definition.notation:
                    return None
                offsets.append(node.time.offset)
    return min(offsets, default=0)


def block_pairs(ix: Entries, claim: ir.Claim):
    """(lhs, rhs) pairs to compare: the two sides, or block by block when both are block matrices."""
    a, b = ix.blocks(claim.lhs), ix.blocks(claim.rhs)
    if a is not None and b is not None and len(a) == len(b) and all(len(x) == len(y) for x, y in zip(a, b)):
        pairs = [(x, y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)]
        # Block by block only where the blocks line up ([h; x] against [x; h] of the same total size does not).
        if all(ix.typer.eq(ix.shape(x)[0], ix.shape(y)[0]) and ix.typer.eq(ix.shape(x)[1], ix.shape(y)[1])
               for x, y in pairs):
            return pairs
    return [(claim.lhs, claim.rhs)]


def prove(ctx: ir.Context, claim: ir.Claim) -> Outcome | None:
    """The all-sizes verdict on one claim, or None where the engine does not apply."""
    ctx = with_indices(ctx, claim)      # a line of entries: for symbolic values of its free entry indices
    floor = None
    if ctx.has_time and ctx.length is None:
        floor = local_floor(claim, ctx)
        if floor is None:
            return None                      # through time: the concrete engine, at T = 1, 2, 3
    sizes = [{str(s): str(s) for s in ctx.sizes()}]
    typer = Typer(ctx)
    try:
        a, b = typer.infer(claim.lhs), typer.infer(claim.rhs)
    except IllTyped as e:
        return Outcome(ILL_TYPED, METHOD, sizes, f"for symbolic sizes: {e}")
    if not (same(a[0], b[0]) and same(a[1], b[1])):
        return Outcome(ILL_TYPED, METHOD, sizes, f"for symbolic sizes the left-hand side is {fmt(a)} but the "
                                                 f"right-hand side is {fmt(b)}")
    ix = Entries(ctx, floor)
    try:
        for lhs, rhs in block_pairs(ix, claim):
            ra, ca = ix.shape(lhs)
            # The entry of a side that is no scalar, named apart from the free entry indices of a line of
            # entries (i, j there are the line's own, for every value).
            row, col = ("i", "j") if not claim.indices else ("i_entry", "j_entry")
            i, j = ix.index(row, ra), ix.index(col, ca)
            difference = ix.entry(lhs, i, j) - ix.entry(rhs, i, j)
            if difference.has(sp.Derivative, sp.Subs):
                # f'' of a generic f (a line that differentiates f' again): outside the index form.
                return Outcome(INCONCLUSIVE, METHOD, sizes, "the line needs a second derivative of a generic "
                                                            "function, which the index form does not handle")
            if not is_zero(ix.binary_powers(difference), ix.ranges):
                break
        else:
            where = " (one step, T = 1)" if ctx.length else " (at a step t, for every earlier state)" \
                if floor is not None else ""
            what = (f"both sides, in index notation for symbolic sizes and symbolic entry indices "
                    f"{', '.join(claim.indices)}, reduce" if claim.indices else
                    "entry [i, j] of both sides, in index notation for symbolic sizes and symbolic i, j, reduces")
            return Outcome(PROVED, METHOD, sizes, what + " to the same normal form" + where)
    except NotApplicable:
        return None
    return Outcome(INCONCLUSIVE, METHOD, sizes, "the index-form difference did not reduce to zero (the concrete "
                                                "engine decides it at explicit sizes)")

