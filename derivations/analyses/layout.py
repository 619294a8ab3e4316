"""Which layout a wrong Jacobian line would be true in.

The format reads ∂a/∂b of two columns in denominator layout: entry [j, i] is
∂a_i/∂b_j (docs/derivation-format.md).  Many texts use numerator layout, entry
[i, j], the transpose.  A line that is wrong as written may be the right
statement in the other layout; this is checked, not guessed: every Jacobian of
the claim (a derivative of a column with respect to a column) is replaced by
its transpose, and the explicit engine proves the claim so read.  Only then
does the report say that the line is true in numerator layout -- or, in a context
that declares `> Jacobians: numerator layout` (where every Jacobian is read
transposed already), true in denominator layout, the format's default.
"""
from __future__ import annotations

import re

from ..engines import explicit
from ..engines.verdicts import ILL_TYPED, PROVED, REFUTED
from ..form import ir
from ..form.printer import to_latex
from ..form.shapes import IllTyped, Typer, is_scalar_shape, same


def jacobians(ctx: ir.Context, claim: ir.Claim) -> list[ir.Deriv]:
    """The claim's derivatives of a column (not a scalar) with respect to a column, in order."""
    typer, out = Typer(ctx), []
    for side in (claim.lhs, claim.rhs):
        for node in side.walk():
            if not isinstance(node, ir.Deriv) or node in out:
                continue
            try:
                of, wrt = typer.infer(node.of), typer.infer(node.wrt)
            except IllTyped:
                continue
            if same(of[1], 1) and same(wrt[1], 1) and not is_scalar_shape(of):
                out.append(node)
    return out


def _transposed(e: ir.Expr, targets) -> ir.Expr:
    if e in targets:
        return ir.Transpose(e)
    kids = e.children()
    return e.rebuild([_transposed(k, targets) for k in kids]) if kids else e


def numerator_layout_note(ctx: ir.Context, claim: ir.Claim, verdict: str) -> str | None:
    """For a refuted or ill-typed claim with a Jacobian: the note that it is true in the other layout (numerator,
    or denominator where the context declares numerator layout), when the explicit engine proves it with every
    Jacobian transposed; else None."""
    if verdict not in (REFUTED, ILL_TYPED):
        return None
    found = jacobians(ctx, claim)
    if not found:
        return None
    read = ir.Claim(claim.id, claim.label, _transposed(claim.lhs, found), _transposed(claim.rhs, found),
                    kind=claim.kind)
    try:
        outcome = explicit.prove(ctx, read, budget=2.0)   # a hint, at the sizes it reaches in about 2 s
    except Exception:                      # noqa: BLE001 - a note is optional: no proof, no note
        return None
    if outcome.verdict != PROVED:
        return None
    if ctx.numerator:
        # Each Jacobian is read transposed already (an implied transpose around it): transposed once more, it is
        # the format's own reading.
        return ("True in denominator layout: this part of the file declares `Jacobians: numerator layout`, so "
                + ", ".join(f"${to_latex(j)}$" for j in found) + " is read with entry [i, j] = "
                + ", ".join(f"${_entry(j.of, 'i')} / {_entry(j.wrt, 'j')}$" for j in found)
                + "; read in denominator layout (entry [j, i], the format's default), the line is proved by the "
                "explicit engine.")
    return ("True in numerator layout: the file's format reads " + ", ".join(f"${to_latex(j)}$" for j in found)
            + " in denominator layout (entry [j, i] = " + ", ".join(f"${_entry(j.of, 'i')} / {_entry(j.wrt, 'j')}$"
                                                                  for j in found)
            + "); read in numerator layout (entry [i, j], the transpose), the line is proved by the explicit engine.")


def _entry(e: ir.Expr, index: str) -> str:
    """∂z_i, or ∂(h_t)_i for a name that has a subscript already."""
    latex = to_latex(e)
    return f"\\partial {latex}_{index}" if re.fullmatch(r"[A-Za-z]", latex) else f"\\partial ({latex})_{index}"


# ---------------------------------------------------------------- which reading of a derivative at a step

def per_step_derivatives(ctx: ir.Context, claim: ir.Claim) -> list[ir.Deriv]:
    """The claim's derivatives whose reading matters: of a quantity at a step (ℓ_t, c_t) with respect to
    something that also acts at earlier steps (a weight, or a quantity at an earlier step).  Total derivatives
    count those earlier uses; with earlier steps held fixed they are not counted."""
    out = []
    for side in (claim.lhs, claim.rhs):
        for node in side.walk():
            if not (isinstance(node, ir.Deriv) and isinstance(node.of, ir.Ref) and isinstance(node.wrt, ir.Ref)):
                continue
            of, wrt = node.of.time, node.wrt.time
            if of is None or node in out:
                continue
            earlier = wrt is None or (wrt.var == of.var and wrt.offset < of.offset)
            if earlier and (wrt is not None or not ctx.is_sequence(node.wrt.name)):
                out.append(node)
    return out


def reading_note(ctx: ir.Context, claim: ir.Claim, verdict: str) -> str | None:
    """For a refuted or ill-typed claim with a derivative of a quantity at a step: the note that it is true in
    the other reading (total derivatives, or earlier steps held fixed), when the explicit engine proves it so
    read; else None."""
    if verdict not in (REFUTED, ILL_TYPED) or not ctx.has_time:
        return None
    found = per_step_derivatives(ctx, claim)
    if not found:
        return None
    from dataclasses import replace
    other = replace(ctx, held_fixed=not ctx.held_fixed)
    try:
        outcome = explicit.prove(other, claim, budget=2.0)    # a hint, at the sizes it reaches in about 2 s
    except Exception:                      # noqa: BLE001 - a note is optional: no proof, no note
        return None
    if outcome.verdict != PROVED:
        return None
    named = ", ".join(f"${to_latex(d)}$" for d in found)
    if ctx.held_fixed:
        return ("True with total derivatives: this part of the file declares `Derivatives: earlier steps held "
                f"fixed`, so {named} leaves out what acts through the steps before; read as total derivatives "
                "(the format's default), the line is proved by the explicit engine.")
    return (f"True with earlier steps held fixed: the format reads {named} as a total derivative (through every "
            "earlier step, its default); with the steps before held fixed (a context may declare "
            "`> Derivatives: earlier steps held fixed`), the line is proved by the explicit engine.")
