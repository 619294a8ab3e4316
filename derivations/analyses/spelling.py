"""The same statement, however spelled: the author's spellings of a context (transpose, product, ∘), a
statement moved by k steps, the definitions opened, and the normal form two statements that say the same
thing in other words share.  Used by the repair search (repair.py) and the derived lines (derive.py).
"""
from __future__ import annotations

from ..form import ir

_STYLES: dict = {}


def styles(ctx) -> dict:
    """The author's spellings in this context (counted once per context): {"transpose", "dot", "op"}."""
    key = (id(ctx), ctx.text)
    if key not in _STYLES:
        _STYLES[key] = _count_styles(ctx)
    return _STYLES[key]


def _count_styles(ctx) -> dict:
    """The author's spellings in this context: transpose style, \\cdot or juxtaposition, \\circ or \\odot, and
    how a condition between steps is written (\\mathbb{1}[t = T], \\mathbf{1}_{t = T})."""
    counts = {"transpose": {}, "dot": {}, "op": {}, "step_if": {}}
    exprs = [d.expr for d in ctx.definitions.values()] + [x for c in ctx.claims for x in (c.lhs, c.rhs)
                                                          if x is not None]
    for e in exprs:
        for n in e.walk():
            if isinstance(n, ir.Transpose) and not n.implied:      # an implied one is not written
                counts["transpose"][n.style] = counts["transpose"].get(n.style, 0) + 1
            elif isinstance(n, ir.MatMul):
                counts["dot"][n.dot] = counts["dot"].get(n.dot, 0) + 1
            elif isinstance(n, ir.Hadamard):
                counts["op"][n.op] = counts["op"].get(n.op, 0) + 1
            elif isinstance(n, ir.StepIf):
                counts["step_if"][n.style] = counts["step_if"].get(n.style, 0) + 1
    default = {"transpose": "\\top", "dot": False, "op": "circ", "step_if": "\\mathbb{1}["}
    return {k: max(v, key=v.get) if v else default[k] for k, v in counts.items()}


def shift_steps(e: ir.Expr, var: str, k: int) -> ir.Expr:
    """e with every free step `var` moved by k (a sum binding `var` is left alone)."""
    if k == 0:
        return e
    if isinstance(e, ir.Ref):
        return ir.Ref(e.name, e.time.shifted(k)) if e.time is not None and e.time.var == var else e
    if isinstance(e, ir.StepIf):
        return e.shifted(var, k)
    if isinstance(e, ir.Sum) and e.var == var:
        lo = e.lo.shifted(k) if e.lo.var == var else e.lo
        hi = e.hi.shifted(k) if e.hi.var == var else e.hi
        return ir.Sum(e.var, lo, hi, e.body, e.short)
    if isinstance(e, (ir.Component, ir.Basis)):
        index = shift_steps(e.index, var, k)
        if isinstance(e, ir.Basis):
            return ir.Basis(index, e.style)
        return ir.Component(shift_steps(e.arg, var, k), index)
    kids = e.children()
    return e.rebuild(tuple(shift_steps(c, var, k) for c in kids)) if kids else e


def definition_at(ctx, ref: ir.Ref):
    """What `ref` is defined as, at its step (h_{t+1} -> σ(W x_{t+1} + ...)), or None."""
    d = ctx.definitions.get(ref.name)
    if d is None:
        return None
    target = d.target.time
    if target is None or target.var is None:
        return d.expr if ref.time is None or target == ref.time else None
    if ref.time is None or ref.time.var != target.var and ref.time.var is not None:
        return None
    if ref.time.var is None:          # an absolute step of a sequence defined at t
        return None
    return shift_steps(d.expr, target.var, ref.time.offset - target.offset)


def _recursive(ctx, name: str) -> bool:
    d = ctx.definitions.get(name)
    return d is not None and any(r.name == name for r in ir.refs(d.expr))


def normal_form(ctx: ir.Context, e: ir.Expr, depth: int = 8, keep_given: bool = False) -> ir.Expr:
    """e with every defined name opened (not a name under ∂, nor a sequence defined through itself) and one
    spelling of each operation: two statements with equal normal forms say the same thing in other words
    (dW for ∂ℓ/∂W, f'(Z) for f'(W h) where Z := W h, \\cdot or juxtaposition)."""
    def norm(x, depth):
        if isinstance(x, ir.Ref):
            # keep_given: a gradient given by name (declared and defined, dU := ∂ℓ/∂U) is the loss's direct use
            # of U, a part of the total ∂ℓ/∂U: not the same thing.
            given = keep_given and x.name in ctx.declarations
            body = definition_at(ctx, x) if depth > 0 and not _recursive(ctx, x.name) and not given else None
            return norm(body, depth - 1) if body is not None else ir.Ref(x.name, x.time)
        if isinstance(x, ir.Deriv):
            of = x.of if isinstance(x.of, ir.Ref) else norm(x.of, depth)
            return ir.Deriv(ir.Ref(of.name, of.time) if isinstance(of, ir.Ref) else of, x.wrt)
        if isinstance(x, ir.MatMul):
            return ir.MatMul(norm(x.left, depth), norm(x.right, depth))
        if isinstance(x, ir.Hadamard):
            return ir.Hadamard(norm(x.left, depth), norm(x.right, depth))
        if isinstance(x, ir.Transpose):
            return ir.Transpose(norm(x.arg, depth))
        kids = x.children()
        return x.rebuild(tuple(norm(k, depth) for k in kids)) if kids else x
    return norm(e, depth)


def same_statement(ctx: ir.Context, a: tuple, b: tuple) -> bool:
    """(lhs, rhs) pairs that say the same thing: equal normal forms, either way round."""
    na = tuple(normal_form(ctx, x) for x in a)
    nb = tuple(normal_form(ctx, x) for x in b)
    return na == nb or na == nb[::-1]
