"""Shapes of the intermediate form's expressions, for every size at once.

Sizes are SymPy symbols (H, V, m, n: positive integers) or numbers, so a shape
that composes here composes at every size.  A failure names the operation
and both operands in the author's notation, each formula between $...$ (the
report typesets it): "the product $W_{hh} \\cdot h_{t-1}$ does not compose: H×H
times ...".  Typing follows the format's rules:
- A B composes when A's columns equal B's rows; a scalar (1×1 for every size)
  times anything scales it;
- u∘v needs equal shapes; a number added to a matrix is that number times the
  all-ones matrix (1 - h);
- ∂s/∂X of a scalar s has X's shape; ∂a/∂b of columns is b-rows × a-rows
  (denominator layout).
"""
from __future__ import annotations

from dataclasses import replace

import sympy as sp

from . import ir
from .printer import POSTFIX, PRODUCT, TERM, Printer, to_latex


def _operand(e, least) -> str:
    """An operand in a message, parenthesized where the grammar would need it."""
    return Printer().at(e, least)

ONE = sp.Integer(1)


class IllTyped(Exception):
    """The shapes do not compose; `node` is where."""

    def __init__(self, message: str, node: ir.Expr | None = None):
        super().__init__(message)
        self.node = node


def same(a, b) -> bool:
    return sp.expand(sp.sympify(a) - sp.sympify(b)) == 0


def fmt(shape) -> str:
    return f"{shape[0]}×{shape[1]}"


def is_scalar_shape(shape) -> bool:
    return same(shape[0], 1) and same(shape[1], 1)


def is_literal(e: ir.Expr) -> bool:
    """A number as written (1 in 1 - h): broadcast when added to a matrix."""
    return isinstance(e, ir.Number) or (isinstance(e, ir.Neg) and is_literal(e.arg))


class Typer(ir.Visitor):
    """infer(e) -> (rows, cols), in one context; definitions are typed once and remembered.

    A sequence defined through itself at another step (c_t := f_t ∘ c_{t-1},
    f_t := σ(U h_{t-1}), h_t := tanh(c_t)) gets an unknown shape while its own
    definition is typed; the unknown is fixed by the first shape it must equal
    (unification), whatever the order the definitions are met in.
    """

    def __init__(self, ctx: ir.Context):
        self.ctx = ctx
        self.memo: dict = {}
        self.busy: set = set()
        self.unknown: dict = {}          # name -> (rows, cols) unknowns, while its definition is typed
        self.bound: dict = {}            # unknown -> what it was found equal to
        self.ones: list = []             # (\mathbf{1} node, its unknown size), while size_ones types it

    def res(self, x):
        x = sp.sympify(x)
        while x in self.bound:
            x = self.bound[x]
        return x.xreplace(self.bound) if x.free_symbols & set(self.bound) else x

    def shape_res(self, shape):
        return (self.res(shape[0]), self.res(shape[1]))

    def eq(self, a, b) -> bool:
        """a = b for every size, binding an unknown to the other side when one is unknown."""
        a, b = self.res(a), self.res(b)
        if sp.expand(a - b) == 0:
            return True
        for u, v in ((a, b), (b, a)):
            if isinstance(u, sp.Dummy) and u.name.startswith("shape"):
                self.bound[u] = v
                return True
        return False

    def eq_shape(self, a, b) -> bool:
        return self.eq(a[0], b[0]) and self.eq(a[1], b[1])

    def scalar(self, shape) -> bool:
        return is_scalar_shape(self.shape_res(shape))

    def quantity(self, name: str, initial: bool = False):
        ctx = self.ctx
        if name in self.memo:
            return self.shape_res(self.memo[name])
        decl = ctx.declarations.get(name)
        if decl is None and initial:
            decl = ctx.declarations.get(name + "_0")
        if decl is not None and decl.kind == "matrix":
            shape = decl.shape
        elif decl is not None and decl.kind == "index":
            raise IllTyped(f"{name} is an index (a number between 1 and {decl.shape[0]}), not a matrix")
        elif name in ctx.definitions:
            if name in self.busy:
                initial = ctx.declarations.get(name + "_0")
                if initial is not None:          # h_t := f(h_{t-1}): h has the shape of its initial state
                    return initial.shape
                if name not in self.unknown:
                    self.unknown[name] = (sp.Dummy(f"shape_{name}_rows"), sp.Dummy(f"shape_{name}_cols"))
                return self.shape_res(self.unknown[name])
            self.busy.add(name)
            try:
                shape = self.infer(ctx.definitions[name].expr)
            finally:
                self.busy.discard(name)
            if name in self.unknown:
                self.eq_shape(self.unknown[name], shape)
            shape = self.shape_res(shape)
            if not self.busy and any(isinstance(x, sp.Dummy) for d in shape for x in sp.sympify(d).atoms(sp.Dummy)):
                raise IllTyped(f"the shape of {name} cannot be told from its definition")
        else:
            raise IllTyped(f"{name} is neither declared nor defined")
        self.memo[name] = shape
        return shape

    def infer(self, e: ir.Expr):
        return self.shape_res(self.visit(e))

    def _Ref(self, e: ir.Ref):
        initial = e.time is not None and e.time.var is None and e.time.offset == 0
        if e.name in self.ctx.definitions or e.name in self.ctx.declarations:
            return self.quantity(e.name)
        return self.quantity(e.name, initial=initial)

    def _Number(self, e):
        return (ONE, ONE)

    def _StepIf(self, e):
        return (ONE, ONE)

    def _Add(self, e: ir.Add):
        shapes = [(t, self.infer(t)) for t in e.terms]
        matrices = [(t, s) for t, s in shapes if not is_literal(t)]
        if not matrices:
            return (ONE, ONE)
        first_t, first = matrices[0]
        for t, s in matrices[1:]:
            if not self.eq_shape(s, first):
                raise IllTyped(f"the sum ${_operand(first_t, TERM)} + {_operand(t, TERM)}$ does not compose: "
                               f"{fmt(first)} plus {fmt(s)}", e)
        return first

    def _Neg(self, e):
        return self.infer(e.arg)

    def _MatMul(self, e: ir.MatMul):
        a, b = self.infer(e.left), self.infer(e.right)
        if self.scalar(a):
            return b
        if self.scalar(b):
            return a
        if not self.eq(a[1], b[0]):
            raise IllTyped(f"the product ${_operand(e.left, PRODUCT)} \\cdot {_operand(e.right, POSTFIX)}$ does not "
                           f"compose: "
                           f"{fmt(a)} times {fmt(b)} ({_plural(a[1], 'column')} against {_plural(b[0], 'row')})",
                           e)
        return (a[0], b[1])

    def _Hadamard(self, e: ir.Hadamard):
        a, b = self.infer(e.left), self.infer(e.right)
        if not self.eq_shape(a, b):
            raise IllTyped(f"the element-wise product ${_operand(e.left, TERM)} \\circ {_operand(e.right, PRODUCT)}$ "
                           f"needs equal "
                           f"shapes: {fmt(a)} and {fmt(b)}", e)
        return a

    def _Div(self, e: ir.Div):
        a, b = self.infer(e.num), self.infer(e.den)
        if self.scalar(b):
            return a
        if self.scalar(a) or self.eq_shape(a, b):
            return b
        raise IllTyped(f"$\\frac{{{to_latex(e.num)}}}{{{to_latex(e.den)}}}$: {fmt(a)} over {fmt(b)}", e)

    def _Transpose(self, e):
        a = self.infer(e.arg)
        return (a[1], a[0])

    def _Power(self, e):
        return self.infer(e.arg)

    def _Apply(self, e):
        return self.infer(e.arg)

    def _column(self, e, what):
        a = self.infer(e)
        if not self.eq(a[1], 1):
            raise IllTyped(f"{what} of ${to_latex(e)}$ needs a column, not {fmt(a)}", e)
        return a

    def _Ones(self, e: ir.Ones):
        if e.size is not None:
            return (declared_size(self.ctx, e.size), ONE)
        # Not sized yet (size_ones): an unknown size, fixed by the first shape it must equal.
        unknown = sp.Dummy("shape_ones")
        self.ones.append((e, unknown))
        return (unknown, ONE)

    def _Softmax(self, e):
        return self._column(e.arg, "softmax")

    def _Diag(self, e):
        a = self._column(e.arg, "diag")
        return (a[0], a[0])

    def _Component(self, e):
        rows, _ = self._column(e.arg, "a component")
        self._in_range(e.index, rows, e)
        return (ONE, ONE)

    def _in_range(self, index: ir.Ref, size, e):
        """A free entry index of a line of entries runs over the size it indexes (x_i with i over n, x ∈ R^d:
        ill-typed, as a product that does not compose is)."""
        decl = self.ctx.declarations.get(index.name)
        if decl is not None and decl.entry and not self.eq(decl.shape[0], size):
            raise IllTyped(f"in ${to_latex(e)}$ the entry index {index.name} runs over {decl.shape[0]} entries, "
                           f"but it indexes {size}", e)

    def _MatrixEntry(self, e: ir.MatrixEntry):
        rows, cols = self.infer(e.arg)          # ∂s/∂W of a scalar s is shaped like W
        self._in_range(e.row, rows, e)
        self._in_range(e.col, cols, e)
        return (ONE, ONE)

    def _Kronecker(self, e: ir.Kronecker):
        return (ONE, ONE)

    def _Basis(self, e: ir.Basis):
        decl = self.ctx.declarations.get(e.index.name)
        if decl is None:             # e_k of a free entry index not yet declared (free_indices, with_indices)
            raise IllTyped(f"the index {e.index.name} has no range here", e)
        return (decl.shape[0], ONE)

    def _Sum(self, e):
        return self.infer(e.body)

    def _Deriv(self, e: ir.Deriv):
        of, wrt = self.infer(e.of), self.infer(e.wrt)
        if self.scalar(of):
            return wrt
        if self.eq(of[1], 1) and self.eq(wrt[1], 1):
            return (wrt[0], of[0])
        raise IllTyped(f"$\\frac{{\\partial {to_latex(e.of)}}}{{\\partial {to_latex(e.wrt)}}}$: a derivative of a "
                       f"{fmt(of)} matrix with respect to a {fmt(wrt)} matrix is not defined here "
                       "(gradients of scalars and Jacobians of columns are)", e)

    def _Block(self, e: ir.Block):
        widths = None
        height = ONE * 0
        for row in e.rows:
            shapes = [self.infer(x) for x in row]
            h = shapes[0][0]
            for x, s in zip(row, shapes):
                if not self.eq(s[0], h):
                    raise IllTyped(f"the blocks of a row of ${to_latex(e)}$ have different heights ({fmt(s)})", e)
            w = sum((s[1] for s in shapes), ONE * 0)
            if widths is not None and not self.eq(w, widths):
                raise IllTyped(f"the rows of ${to_latex(e)}$ have different widths", e)
            widths = w
            height += h
        return (height, widths)


def free_indices(ctx: ir.Context, exprs) -> dict:
    """letter -> (its range, the node that gives it) for each free entry index of a line of entries: the size
    it first indexes (k in q_k: q's rows; i, j in W_{i,j}: W's rows and columns).  Another use over another
    size is left to the typer, which finds the line ill-typed there (Typer._in_range)."""
    typer, ranges = Typer(ctx), {}
    for e in exprs:
        for n in e.walk():
            try:
                if isinstance(n, ir.Component) and n.index.name not in ctx.declarations:
                    uses = [(n.index.name, typer.infer(n.arg)[0])]
                elif isinstance(n, ir.MatrixEntry):
                    rows, cols = typer.infer(n.arg)
                    uses = [(n.row.name, rows), (n.col.name, cols)]
                else:
                    continue
            except IllTyped:
                continue                  # a member that does not compose (or reads e_k): no range from it
            for name, size in uses:
                ranges.setdefault(name, (size, n))
    return ranges


_WITH_INDICES: dict = {}


def with_indices(ctx: ir.Context, claim: ir.Claim) -> ir.Context:
    """The context in which a line of entries is checked: its free entry indices declared as index quantities
    (k \\in \\{1, \\dots, n\\}), so that the engines try every value of each.  Claim-local: another claim
    of the context is not checked for every value of them.  The context itself for any other claim; one copy
    per context and claim (the engines cache models by the context's identity)."""
    indices = claim.indices or _free_indices(ctx, claim)
    if not indices or all(n in ctx.declarations for n in indices):
        return ctx
    key = (id(ctx), claim.id, tuple(indices.items()))
    found = _WITH_INDICES.get(key)
    if found is not None and found[0] is ctx:
        return found[1]
    out = replace(ctx, declarations={**ctx.declarations, **{
        name: ir.Declaration(name, "index", (size, 1), entry=True) for name, size in indices.items()}})
    if len(_WITH_INDICES) > 256:
        _WITH_INDICES.clear()
    _WITH_INDICES[key] = (ctx, out)      # the context kept alive with its copy: its id is not reused
    return out


def _free_indices(ctx: ir.Context, claim: ir.Claim) -> dict:
    """The free entry indices of a claim built without them (a repair's line, a line parsed on its own)."""
    if claim.lhs is None or not any(isinstance(n, (ir.MatrixEntry, ir.Kronecker, ir.Component)) for side in
                                    (claim.lhs, claim.rhs) for n in side.walk()):
        return {}
    return {k: v for k, (v, _) in free_indices(ctx, [claim.lhs, claim.rhs]).items()
            if k not in ctx.declarations and k not in ctx.definitions}


def _plural(n, word):
    return f"{n} {word}" + ("" if same(n, 1) else "s")


def shape_of(e: ir.Expr, ctx: ir.Context):
    return Typer(ctx).infer(e)


def declared_size(ctx: ir.Context, size):
    """A size as the context reads it: a declared number replaced by the explicit engine's small size for it
    (explicit.shrink's table, `ctx.replaced`), so that a \\mathbf{1} sized 10 is as long as a column
    declared in R^{10}."""
    table = getattr(ctx, "replaced", None)
    if not table:
        return size
    return sp.sympify(size).xreplace({sp.Integer(n): v for n, v in table.items()})


def shape_problem(ctx: ir.Context, left: ir.Expr, right: ir.Expr,
                  says: str = "the left-hand side is {a} but the right-hand side is {b}",
                  fails: str = "{error}") -> str | None:
    """Why `left` = `right` does not type for every size -- a part that does not compose (`fails`, with the
    typer's {error}) or two shapes that differ (`says`, with {a} and {b}) -- or None."""
    typer = Typer(ctx)
    try:
        a, b = typer.infer(left), typer.infer(right)
    except IllTyped as e:
        return fails.format(error=e)
    if not (same(a[0], b[0]) and same(a[1], b[1])):
        return says.format(a=fmt(a), b=fmt(b))
    return None


def size_ones(ctx: ir.Context, exprs: list) -> list:
    """`exprs` (one definition, or both sides of a claim) with every \\mathbf{1} given the size its context
    requires: the unknown size of each is fixed by unification with what it is added to, multiplied with
    or compared with (the other side of the claim).  IllTyped when no context fixes it."""
    if not any(isinstance(n, ir.Ones) and n.size is None for e in exprs for n in e.walk()):
        return exprs
    typer = Typer(ctx)
    shapes = [typer.infer(e) for e in exprs]
    for other in shapes[1:]:
        typer.eq_shape(shapes[0], other)
    sizes = {}
    for node, unknown in typer.ones:
        size = typer.res(unknown)
        if size.atoms(sp.Dummy):
            raise IllTyped("the size of \\mathbf{1} cannot be told from what it is added to or multiplied with: "
                           "write it beside a quantity of the size it needs", node)
        sizes[id(node)] = size
    return [ir.transform(e, lambda n: ir.Ones(sizes[id(n)], n.style, span=n.span)
                         if isinstance(n, ir.Ones) and id(n) in sizes else n) for e in exprs]
