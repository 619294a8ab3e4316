"""The declared reading `> Jacobians: numerator layout` (docs/derivation-format.md, Semantics).

The format reads ∂a/∂b of two columns in denominator layout (entry [j, i] = ∂a_i/∂b_j).  A context that
declares numerator layout means entry [i, j], the transpose.  The reader says so once, in the intermediate
form: every such Jacobian is wrapped in a transpose marked `implied` (`numerator_layout`), so that every
engine, the repair search, the layout hint and the code generator read the same value, and the printer
shows the line as the author wrote it (an implied transpose prints as its argument alone).  A gradient of a
scalar is unchanged: shaped like the variable in either layout.
"""
from __future__ import annotations

from . import ir
from .shapes import IllTyped, Typer, is_scalar_shape, same


def is_jacobian(typer: Typer, node: ir.Expr) -> bool | None:
    """Whether `node` is a derivative of a column (not a scalar) with respect to a column; None when the shapes
    of its parts cannot be told yet (a quantity defined further down, while the file is read)."""
    if not isinstance(node, ir.Deriv):
        return False
    try:
        of, wrt = typer.infer(node.of), typer.infer(node.wrt)
    except IllTyped:
        return None
    return same(of[1], 1) and same(wrt[1], 1) and not is_scalar_shape(of)


def numerator_layout(e: ir.Expr, typer: Typer) -> ir.Expr:
    """`e` with every Jacobian of columns read in numerator layout: wrapped in an implied transpose.

    Idempotent (a Jacobian already wrapped is left alone), so the reader may apply it while a file is read,
    where the shapes are known, and once more at the end for what could not be typed before."""
    if isinstance(e, ir.Transpose) and e.implied:
        return e
    kids = e.children()
    if kids:
        new = tuple(numerator_layout(k, typer) for k in kids)
        if new != kids:
            e = e.rebuild(new)
    if is_jacobian(typer, e):
        return ir.Transpose(e, implied=True)
    return e


def has_implied(e: ir.Expr) -> bool:
    """Whether the numerator reading changed `e` (it holds a Jacobian read transposed)."""
    return any(isinstance(n, ir.Transpose) and n.implied for n in e.walk())
