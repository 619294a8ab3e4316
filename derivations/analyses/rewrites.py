"""Equivalent rewrites of an expression of the intermediate form: the same value, written otherwise.

Used by the soundness property tests (tests/test_rewrites.py): a true claim
rewritten in any of these ways must still be proved by every engine that
applies -- a verifier that refutes h∘(1-h) where it proves σ'(a) cannot be
trusted.  Each rule is one small function; `rewrites(e, ctx)` gives every
single rewrite of every subexpression, as (kind, new expression).

The rules (each an identity of matrix algebra, valid for every size):
  double-transpose     X = (X^T)^T
  transpose-product    (A B)^T = B^T A^T, and back
  hadamard-commute     a∘b = b∘a
  hadamard-associate   (a∘b)∘c = a∘(b∘c)
  diag-for-hadamard    u∘v = diag(u) v   (columns)
  sigma-prime          σ'(a) = σ(a)∘(1 - σ(a)), or h∘(1 - h) where the context defines h := σ(a)
  tanh-prime           tanh'(a) = 1 - tanh(a)^2, or 1 - h∘h where h := tanh(a)
  distribute           A (B + C) = A B + A C,  (B + C)∘D = B∘D + C∘D
  commute-sum          a + b = b + a
  move-scalar          c (A B) = A (c B)   (c a number)
"""
from __future__ import annotations

from fractions import Fraction

from ..form import ir
from ..form.shapes import IllTyped, Typer

ONE = ir.Number(Fraction(1))


def _is_column(e, typer) -> bool:
    try:
        return typer.eq(typer.infer(e)[1], 1)
    except IllTyped:
        return False


def double_transpose(e, ctx, typer):
    if not isinstance(e, (ir.Number, ir.Transpose)):
        yield ir.Transpose(ir.Transpose(e))


def transpose_product(e, ctx, typer):
    if isinstance(e, ir.Transpose) and isinstance(e.arg, ir.MatMul):
        yield ir.MatMul(ir.Transpose(e.arg.right, e.style), ir.Transpose(e.arg.left, e.style), e.arg.dot)
    if isinstance(e, ir.MatMul):
        yield ir.Transpose(ir.MatMul(ir.Transpose(e.right), ir.Transpose(e.left), e.dot))


def hadamard_commute(e, ctx, typer):
    if isinstance(e, ir.Hadamard):
        yield ir.Hadamard(e.right, e.left, e.op)


def hadamard_associate(e, ctx, typer):
    if isinstance(e, ir.Hadamard) and isinstance(e.left, ir.Hadamard):
        yield ir.Hadamard(e.left.left, ir.Hadamard(e.left.right, e.right, e.op), e.op)
    if isinstance(e, ir.Hadamard) and isinstance(e.right, ir.Hadamard):
        yield ir.Hadamard(ir.Hadamard(e.left, e.right.left, e.op), e.right.right, e.op)


def diag_for_hadamard(e, ctx, typer):
    if isinstance(e, ir.Hadamard) and _is_column(e.left, typer):
        yield ir.MatMul(ir.Diag(e.left), e.right)


def _defined_as(ctx, function, arg):
    """Refs h such that the context defines h := function(arg) (with arg at h's step)."""
    for name, d in ctx.definitions.items():
        if d.notation or not isinstance(d.expr, ir.Apply) or d.expr.function != function or d.expr.derivative:
            continue
        target = d.target.time
        if target is None:
            if d.expr.arg == arg:
                yield ir.Ref(name)
            continue
        # Try the step of the argument: shift the definition's argument by k and compare.
        for k in (-1, 0, 1):
            shifted = ir.transform(d.expr.arg, lambda n, k=k, var=target.var: ir.Ref(n.name, n.time.shifted(k))
                                   if isinstance(n, ir.Ref) and n.time is not None and n.time.var == var
                                   else n)
            if shifted == arg:
                yield ir.Ref(name, target.shifted(k))


def sigma_prime(e, ctx, typer):
    if isinstance(e, ir.Apply) and e.function == "sigma" and e.derivative == 1:
        s = ir.Apply("sigma", e.arg)
        yield ir.Hadamard(s, ir.Add((ONE, ir.Neg(s))))
        yield ir.Add((s, ir.Neg(ir.Power(s, 2))))
        for h in _defined_as(ctx, "sigma", e.arg):
            yield ir.Hadamard(h, ir.Add((ONE, ir.Neg(h))))


def tanh_prime(e, ctx, typer):
    if isinstance(e, ir.Apply) and e.function == "tanh" and e.derivative == 1:
        yield ir.Add((ONE, ir.Neg(ir.Power(ir.Apply("tanh", e.arg), 2))))
        for h in _defined_as(ctx, "tanh", e.arg):
            yield ir.Add((ONE, ir.Neg(ir.Hadamard(h, h))))


def distribute(e, ctx, typer):
    if isinstance(e, ir.MatMul) and isinstance(e.right, ir.Add):
        yield ir.Add(tuple(_distribute_term(t, lambda x: ir.MatMul(e.left, x, e.dot)) for t in e.right.terms))
    if isinstance(e, ir.Hadamard) and isinstance(e.left, ir.Add) \
            and not any(isinstance(t, ir.Number) or isinstance(t, ir.Neg) and isinstance(t.arg, ir.Number)
                        for t in e.left.terms):
        yield ir.Add(tuple(_distribute_term(t, lambda x: ir.Hadamard(x, e.right, e.op)) for t in e.left.terms))


def _distribute_term(t, wrap):
    return ir.Neg(wrap(t.arg)) if isinstance(t, ir.Neg) else wrap(t)


def commute_sum(e, ctx, typer):
    if isinstance(e, ir.Add) and len(e.terms) >= 2 and not isinstance(e.terms[-1], ir.Neg):
        yield ir.Add((e.terms[-1], *e.terms[:-1]))


def move_scalar(e, ctx, typer):
    if isinstance(e, ir.MatMul) and isinstance(e.left, ir.Number) and isinstance(e.right, ir.MatMul):
        inner = e.right
        yield ir.MatMul(inner.left, ir.MatMul(e.left, inner.right), inner.dot)


RULES = {
    "double-transpose": double_transpose,
    "transpose-product": transpose_product,
    "hadamard-commute": hadamard_commute,
    "hadamard-associate": hadamard_associate,
    "diag-for-hadamard": diag_for_hadamard,
    "sigma-prime": sigma_prime,
    "tanh-prime": tanh_prime,
    "distribute": distribute,
    "commute-sum": commute_sum,
    "move-scalar": move_scalar,
}


def _positions(e):
    """(path, node) for every subexpression that may be rewritten; a path is the child indices from the root.

    Not inside a derivative's ∂X: X names the quantity (the variable must stay a name), and a named
    ∂ℓ_t keeps its meaning only as a name (quantities before step t held fixed).
    """
    yield (), e
    for k, c in enumerate(e.children()):
        if isinstance(e, ir.Deriv) and (k == 1 or isinstance(c, ir.Ref)):
            continue
        for path, node in _positions(c):
            yield (k, *path), node


def _replace_at(e, path, new):
    if not path:
        return new
    kids = list(e.children())
    kids[path[0]] = _replace_at(kids[path[0]], path[1:], new)
    return e.rebuild(tuple(kids))


def rewrites(e: ir.Expr, ctx: ir.Context) -> list[tuple[str, ir.Expr]]:
    """Every single rewrite of every subexpression that keeps the expression well typed."""
    typer = Typer(ctx)
    out = []
    for path, node in _positions(e):
        for kind, rule in RULES.items():
            for new in rule(node, ctx, typer):
                candidate = _replace_at(e, path, new)
                try:
                    typer.infer(candidate)
                except IllTyped:
                    continue
                out.append((kind, candidate))
    return out
