"""Repairs: the smallest edits of a wrong claim that make the engines prove it.

Where it sits: a claim the engines refute or find ill-typed -> **single edits
of its intermediate form** (this module) -> each candidate pruned by shape
(`shapes.Typer`), then re-checked by the same engines and the same `combine`
rule as any claim (`runner.prove_parsed`) -> the proved candidates, ranked,
printed back in the file's own notation (`latex.printer`).

A repair is only ever reported when the engines prove the edited statement:
it is a proof, not a guess.  The ranking says which of the proved edits is the
most plausible reading of what the author meant.

Edits (one small function per kind, `EDITS[kind](node, ctx, typer)` yields the
replacements of one subexpression, like `rewrites.RULES`):

  add-transpose, remove-transpose             X -> X^T, X^T -> X
  product-to-hadamard, hadamard-to-product    A \\cdot B -> A \\circ B, and back
  column-to-diagonal, diagonal-to-column      u -> diag(u), diag(u) -> u
  add-derivative, remove-derivative           f(x) -> f'(x) (also h -> σ'(a) where h := σ(a)), and back
  swap-derivative-formula                     h∘(1 - h) (σ' through its value) <-> 1 - h^2 (tanh')
  add-square, remove-square                   x -> x^2 (element-wise), x^2 -> x
  shift-time                                  t -> t ± 1 on one occurrence
  swap-operands                               A B -> B A
  move-factor                                 A B C -> A C B, ...: one factor of a longer product moved
  replace-symbol                              a quantity -> another declared or defined one of the same
                                              shape (under ∂: any quantity, the shapes decide)
  add-term                                    X -> X + u, u a term another statement of the context
                                              gives for the same left-hand side
  drop-term                                   a + b + c -> a + c
  flip-sign                                   X -> -X, -X -> X
  derived-part                                a part of the line -> the part of the derived right-hand
                                              side that stands in its place (the same sum over the same
                                              index, its body another: 2 q for q^2)
and one edit of a whole claim, `last-step` (t -> T throughout: the line holds at the last step only).

`single_edits(claim, ctx)` yields (kind, side, new claim) for every edit at
every position of both sides (shape pruning is the caller's: a mutation test
wants the ill-typed ones too); `search(ctx, claim)` is the repair search.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

from ..form import ir
from ..form.printer import Printer, to_latex
from ..form.shapes import IllTyped, Typer, with_indices
from .spelling import definition_at, normal_form, shift_steps, styles

ONE = ir.Number(Fraction(1))
PROVED, REFUTED, ILL_TYPED, CONFLICT, CHECKED = "proved", "refuted", "ill-typed", "conflict", "checked"

# Edits that change only how a value is written down, not which value is meant: a transpose of a
# vector, \cdot for \circ, a column for the diagonal matrix it stands for.  A line that does not
# type-check and is repaired by one of them is a notation slip (`severity`).
NOTATION_KINDS = ("add-transpose", "remove-transpose", "product-to-hadamard", "hadamard-to-product",
                  "column-to-diagonal", "diagonal-to-column")
NOTATION, SUBSTANTIVE = "notation", "substantive"

# Plausibility of each kind of edit, most plausible first (the ranking's second key, after the number
# of edits): the notation slips, then derivative slips, a step off by one, operands in the wrong order,
# the wrong quantity, a missing or extra term, a sign, a part taken from the derived form (the least specific
# edit: it says only that the derived line writes it so), and last a line that holds only at the last step.
KIND_ORDER = (*NOTATION_KINDS, "add-derivative", "remove-derivative", "swap-derivative-formula", "add-square",
              "remove-square", "add-factor", "symmetrize", "shift-time", "reverse-step", "swap-operands",
              "move-factor",
              "replace-symbol", "add-term", "drop-term", "flip-sign", "derived-part", "last-step")
# Edits that never make a repair (they stay mutations for the soundness tests): a line that holds at the last
# step only says less than the line the author wrote.
NOT_REPAIRS = ("last-step",)


# ---------------------------------------------------------------- helpers

def _shape(e, typer):
    try:
        return typer.infer(e)
    except IllTyped:
        return None


def _is_scalar(e, typer) -> bool:
    s = _shape(e, typer)
    return s is not None and typer.scalar(s)


def _is_vector(e, typer) -> bool:
    """A column or a row (one of its dimensions is 1 at every size, the other not)."""
    s = _shape(e, typer)
    return s is not None and (typer.eq(s[0], 1) != typer.eq(s[1], 1))


def _quantities(ctx) -> list[str]:
    """Names a quantity may be replaced by: declared matrices (not an initial state alone) and defined ones."""
    out = []
    for name, d in ctx.declarations.items():
        if d.kind == "matrix" and not d.initial:
            out.append(name)
    for name in ctx.definitions:
        if name not in out:
            out.append(name)
    return out


def _derivative_name(ctx, name: str, depth: int = 4) -> bool:
    """A name for a derivative (dh := ∂ℓ/∂h, or dV := dv of such a name): not a variable one may differentiate by."""
    d = ctx.definitions.get(name)
    if d is not None and isinstance(d.expr, ir.Ref) and depth > 0:
        return _derivative_name(ctx, d.expr.name, depth - 1)
    return d is not None and d.notation


def _function_has_derivative(ctx, fn: str) -> bool:
    if fn in ("sigma", "tanh", "relu"):
        return True
    d = ctx.declarations.get(fn)
    return d is not None and d.kind == "function"


def _one_minus_of(e):
    if isinstance(e, ir.Add) and len(e.terms) == 2 and e.terms[0] == ONE and isinstance(e.terms[1], ir.Neg):
        return e.terms[1].arg
    return None


# ---------------------------------------------------------------- the edits, one function per kind

def add_transpose(e, ctx, typer):
    """X -> X^T; a product's transpose written out, (a δ^T)^T as δ a^T, the way a reader simplifies it.  A
    Jacobian read in a declared numerator layout (a transpose not written) may be written transposed."""
    if isinstance(e, (ir.Number, ir.Neg)) or (isinstance(e, ir.Transpose) and not e.implied) \
            or _is_scalar(e, typer):
        return
    style = styles(ctx)["transpose"]
    if isinstance(e, ir.MatMul) and not e.norm:
        from .derive import left_nested, transpose
        yield left_nested(transpose(e, style))
        return
    yield ir.Transpose(e, style)


def remove_transpose(e, ctx, typer):
    # Only a written one: a Jacobian's implied transpose (numerator layout) is no part of what the author wrote,
    # and the line without it would print the same.
    if isinstance(e, ir.Transpose) and not e.implied:
        yield e.arg


def product_to_hadamard(e, ctx, typer):
    if isinstance(e, ir.MatMul):
        yield ir.Hadamard(e.left, e.right, styles(ctx)["op"])


def hadamard_to_product(e, ctx, typer):
    if isinstance(e, ir.Hadamard):
        yield ir.MatMul(e.left, e.right, styles(ctx)["dot"])


def column_to_diagonal(e, ctx, typer):
    if isinstance(e, (ir.Number, ir.Diag, ir.Neg)):
        return
    s = _shape(e, typer)
    if s is not None and typer.eq(s[1], 1) and not typer.eq(s[0], 1):
        yield ir.Diag(e)


def diagonal_to_column(e, ctx, typer):
    if isinstance(e, ir.Diag):
        yield e.arg


def _derivative_of(e: ir.Apply) -> ir.Apply:
    # ReLU's derivative is written as the indicator 1[z > 0], as people write it (not ReLU'(z)).
    return ir.Apply("ind", e.arg) if e.function == "relu" else ir.Apply(e.function, e.arg, 1)


def add_derivative(e, ctx, typer):
    if isinstance(e, ir.Apply) and e.derivative == 0 and _function_has_derivative(ctx, e.function):
        yield _derivative_of(e)
    elif isinstance(e, ir.Ref):
        body = definition_at(ctx, e)
        if isinstance(body, ir.Apply) and body.derivative == 0 and _function_has_derivative(ctx, body.function):
            yield _derivative_of(body)


def remove_derivative(e, ctx, typer):
    if isinstance(e, ir.Apply) and e.derivative == 1:
        yield ir.Apply(e.function, e.arg, 0)


def swap_derivative_formula(e, ctx, typer):
    """σ' written through the value, h∘(1 - h), for tanh' through it, 1 - h^2; and back."""
    if isinstance(e, ir.Hadamard):
        for x, y in ((e.left, e.right), (e.right, e.left)):
            if _one_minus_of(y) == x:
                yield ir.Add((ONE, ir.Neg(ir.Power(x, 2))))
                return
    x = _one_minus_of(e)
    if x is not None:
        square = x.arg if isinstance(x, ir.Power) and x.exponent == 2 else \
            x.left if isinstance(x, ir.Hadamard) and x.left == x.right else None
        if square is not None:
            yield ir.Hadamard(square, ir.Add((ONE, ir.Neg(square))), styles(ctx)["op"])


def add_square(e, ctx, typer):
    """x -> x^2 of a column (1 - h -> 1 - h^2): a value squared element-wise, never a weight matrix."""
    s = _shape(e, typer) if isinstance(e, (ir.Ref, ir.Apply)) else None
    if s is not None and typer.eq(s[1], 1) and not typer.eq(s[0], 1):
        yield ir.Power(e, 2)


def remove_square(e, ctx, typer):
    if isinstance(e, ir.Power) and e.exponent == 2:
        yield e.arg


def shift_time(e, ctx, typer):
    if isinstance(e, ir.Ref) and e.time is not None:
        for k in (-1, 1):
            t = e.time.shifted(k)
            if t.var is None and t.offset < 0:
                continue
            yield ir.Ref(e.name, t, sup=e.sup)          # in the author's notation (h^{(t)} or h_t)


def reverse_step(e, ctx, typer):
    """The step on the other side: every t + k in a subexpression (one k, not 0) as t - k -- the recurrence of
    a backward direction written as a forward one (b_{t+1} for b_{t-1}, a term at t + 1 for one at t - 1)."""
    if isinstance(e, ir.Sum):
        return
    offsets = {r.time.offset for r in ir.refs(e) if r.time is not None and r.time.var == "t"}
    if len(offsets) != 1 or 0 in offsets:
        return
    (k,) = offsets
    yield shift_steps(e, "t", -2 * k)


def swap_operands(e, ctx, typer):
    if isinstance(e, ir.MatMul) and e.left != e.right:
        yield ir.MatMul(e.right, e.left, e.dot)


def _product_factors(e) -> list:
    """The factors of a product a b c however it nests (a squared norm is one factor)."""
    if isinstance(e, ir.MatMul) and not e.norm:
        return _product_factors(e.left) + _product_factors(e.right)
    return [e]


def move_factor(e, ctx, typer):
    """A product of three or more factors with one of them moved to another place: W^T (∇L) diag(u) ->
    W^T diag(u) (∇L), the factors in the order the product needs (Deep Learning 10.21 as printed).  Two
    factors are swap-operands'; the product is rebuilt as a reader writes it, a b c."""
    if not isinstance(e, ir.MatMul) or e.norm:
        return
    parts = _product_factors(e)
    if len(parts) < 3:
        return
    seen = {tuple(parts)}
    for i, factor in enumerate(parts):
        rest = parts[:i] + parts[i + 1:]
        for j in range(len(parts)):
            order = (*rest[:j], factor, *rest[j:])
            if order in seen:
                continue
            seen.add(order)
            out = order[0]
            for x in order[1:]:
                out = ir.MatMul(out, x, e.dot)
            yield out


def replace_symbol(e, ctx, typer, naming: bool = False):
    """Another declared or defined quantity (under ∂, naming: a variable, not a name for a derivative).

    Its shape need only be compatible: the search keeps the edited statements that type-check (W_hh for
    W_xh in a block row [W_xh W_xh] changes the block's width and makes the product compose)."""
    if not isinstance(e, ir.Ref):
        return
    if naming and e.name in ctx.definitions and ctx.definitions[e.name].notation:
        return
    for name in _quantities(ctx):
        if name == e.name or (naming and _derivative_name(ctx, name)):
            continue
        if ctx.is_sequence(name):
            if e.time is None:
                continue
            new = ir.Ref(name, e.time)
        else:
            new = ir.Ref(name)
        if _shape(new, typer) is not None:
            yield new


def drop_term(e, ctx, typer):
    if isinstance(e, ir.Add) and len(e.terms) >= 2:
        for n in range(len(e.terms)):
            rest = e.terms[:n] + e.terms[n + 1:]
            yield rest[0] if len(rest) == 1 else ir.Add(rest)


def flip_sign(e, ctx, typer):
    if isinstance(e, ir.Neg):
        yield e.arg
        return
    if isinstance(e, ir.Number):
        return
    if isinstance(e, ir.Add):
        for n, t in enumerate(e.terms):
            if n == 0 and isinstance(t, ir.Number):
                continue
            flipped = t.arg if isinstance(t, ir.Neg) else ir.Neg(t)
            yield ir.Add(e.terms[:n] + (flipped,) + e.terms[n + 1:])
    yield ir.Neg(e)


def _terms(e):
    return e.terms if isinstance(e, ir.Add) else (e,)


def add_term(e, ctx, typer, claim=None, guide=None):
    """X -> X + u where another statement of the context writes u as a term of the same left-hand side, or
    the derived right-hand side (`guide`) has u as a term."""
    if claim is None:
        return
    own = _shape(e, typer)
    seen = set()
    present = set(_terms(e))
    if guide is not None:
        for term in _terms(guide):
            if term in present or term in seen or isinstance(term, ir.Number):
                continue
            seen.add(term)
            s = _shape(term, typer)
            if s is not None and own is not None and typer.eq_shape(s, own):
                yield ir.Add((*_terms(e), term))
    for other in ctx.claims:
        # Not from a correction: the search must find a repair from the line and its context alone.
        if other.kind == "corrected" or other.lhs is None or other.id == claim.id or other.group and other.group == claim.group \
                or other.lhs != claim.lhs:
            continue
        for term in _terms(other.rhs):
            if term in present or term in seen or isinstance(term, ir.Number):
                continue
            seen.add(term)
            s = _shape(term, typer)
            if s is None or own is None or not typer.eq_shape(s, own):
                continue
            yield ir.Add((*_terms(e), term))


def _factors(e: ir.Expr) -> list:
    """The operands of the element-wise products and the diagonals of a derived right-hand side: the factors
    an author's line may lack (diag(1 - h_t^2), f_{t+1})."""
    out = []
    for n in e.walk():
        items = (n.left, n.right) if isinstance(n, ir.Hadamard) else (n.arg,) if isinstance(n, ir.Diag) else ()
        for x in items:
            if x not in out and not isinstance(x, ir.Number):
                out.append(x)
    return out


def add_factor(e, ctx, typer, guide=None):
    """X -> X ∘ u (or diag(u) X, as the file writes it) for a factor u of the derived right-hand side that the
    line does not have: the missing factor of tanh's derivative, the forget gate."""
    if guide is None or isinstance(e, (ir.Number, ir.Neg, ir.Add, ir.Sum)):
        return
    own = _shape(e, typer)
    if own is None or not typer.eq(own[1], 1):
        return
    from .derive import style_of
    diag = style_of(ctx)["diag"]
    present = set(e.walk())
    for u in _factors(guide):
        if u in present or not typer.eq_shape(_shape(u, typer) or (None, None), own):
            continue
        yield ir.MatMul(ir.Diag(u), e, styles(ctx)["dot"]) if diag else ir.Hadamard(e, u, styles(ctx)["op"])
    # A matrix the derived form multiplies by and the line lacks: W^T (f'(Wh) ∘ dv) for f'(Wh) ∘ dv.
    lefts = []
    for n in guide.walk():
        if isinstance(n, ir.MatMul) and not isinstance(n.left, (ir.Number, ir.Diag)) and n.left not in lefts:
            lefts.append(n.left)
    for a in lefts:
        s = _shape(a, typer)
        if a in present or s is None or typer.eq(s[1], 1) or _is_vector(a, typer):
            continue
        yield ir.MatMul(a, e, styles(ctx)["dot"])


def symmetrize(e, ctx, typer):
    """2 A -> A + A^T for a square A (the gradient of x^T A x is (A + A^T) x, 2 A x only for a symmetric A)."""
    if not isinstance(e, ir.MatMul) or e.left != ir.Number(Fraction(2)):
        return
    right = e.right
    a, rest = (right.left, right.right) if isinstance(right, ir.MatMul) else (right, None)
    s = _shape(a, typer)
    if s is None or not typer.eq(s[0], s[1]) or typer.scalar(s):
        return
    both = ir.Add((a, ir.Transpose(a, styles(ctx)["transpose"])))
    yield both if rest is None else ir.MatMul(both, rest, right.dot)


def _same_node(a: ir.Expr, b: ir.Expr) -> bool:
    """The same operation with the same attributes (what it is of aside): a node of one tree and of the other
    that stand for each other, so that their children are aligned one to one."""
    kids = a.children()
    return type(a) is type(b) and bool(kids) and len(kids) == len(b.children()) and a.rebuild(b.children()) == b


def aligned_parts(written: ir.Expr, derived: ir.Expr, path=()):
    """(path, part of `derived`) for each subexpression of the author's `written` that the derived form writes
    otherwise at the same place: the two trees walked together while their operations agree (Σ_i over the
    same column, a product with the same left factor); where they part, the derived part stands for the
    written one.  A node under which several children differ is offered whole too (one edit for all of
    them).  The whole expression is not: that is the derived line itself, shown as such."""
    if written == derived:
        return
    if not _same_node(written, derived):
        if path:
            yield path, derived
        return
    differ = [k for k, (a, b) in enumerate(zip(written.children(), derived.children())) if a != b]
    for k in differ:
        yield from aligned_parts(written.children()[k], derived.children()[k], (*path, k))
    if len(differ) > 1 and path:
        yield path, derived


def derived_part(e, ctx, typer, part=None):
    """X -> the derived right-hand side's part aligned with X (`aligned_parts`): the smallest edit that writes
    what the derived form writes there (the sum's body 2 (W x)_i as (W x)_i^2), guided, never guessed."""
    if part is not None and part != e:
        yield part


EDITS = {
    "add-transpose": add_transpose,
    "remove-transpose": remove_transpose,
    "product-to-hadamard": product_to_hadamard,
    "hadamard-to-product": hadamard_to_product,
    "column-to-diagonal": column_to_diagonal,
    "diagonal-to-column": diagonal_to_column,
    "add-derivative": add_derivative,
    "remove-derivative": remove_derivative,
    "swap-derivative-formula": swap_derivative_formula,
    "add-square": add_square,
    "remove-square": remove_square,
    "shift-time": shift_time,
    "swap-operands": swap_operands,
    "move-factor": move_factor,
    "reverse-step": reverse_step,
    "replace-symbol": replace_symbol,
    "add-term": add_term,
    "drop-term": drop_term,
    "flip-sign": flip_sign,
    "add-factor": add_factor,
    "symmetrize": symmetrize,
    "derived-part": derived_part,
}
# Edits of a name under ∂ (the variable, or the differentiated quantity): it must stay a name.
NAME_EDITS = ("shift-time", "replace-symbol")
# A sign on a factor of a product is the same edit as on the product, and a term's sign is flipped by
# the edit of its sum: tried there only.
_FACTOR_PARENTS = (ir.MatMul, ir.Hadamard, ir.Neg, ir.Transpose, ir.Power, ir.Add)


# ---------------------------------------------------------------- positions and single edits

def positions(e: ir.Expr, path=(), parent=None):
    """(path, node, parent, naming) for every subexpression; naming: a name under ∂ (only renamed or shifted)."""
    yield path, e, parent, False
    for k, c in enumerate(e.children()):
        if isinstance(e, ir.Deriv) and isinstance(c, ir.Ref):
            yield (*path, k), c, e, True
            continue
        if isinstance(e, ir.Deriv) and k == 1:
            continue
        yield from positions(c, (*path, k), e)


def replace_at(e: ir.Expr, path, new: ir.Expr) -> ir.Expr:
    if not path:
        return new
    kids = list(e.children())
    kids[path[0]] = replace_at(kids[path[0]], path[1:], new)
    return e.rebuild(tuple(kids))


def node_at(e: ir.Expr, path) -> ir.Expr:
    for k in path:
        e = e.children()[k]
    return e


@dataclass(frozen=True)
class Edit:
    """One edit: its kind, the side ("lhs", "rhs", or "both" for last-step), where, and the new subexpression."""
    kind: str
    side: str
    path: tuple
    before: ir.Expr
    after: ir.Expr


def _last_step(claim: ir.Claim):
    """t -> T throughout (the line holds at the last step only), when the claim has a free step t."""
    if "t" not in ir.time_vars(claim.lhs) | ir.time_vars(claim.rhs):
        return None

    def at_T(e):
        if isinstance(e, ir.Ref) and e.time is not None and e.time.var == "t":
            return ir.Ref(e.name, ir.Time("T", e.time.offset))
        if isinstance(e, ir.StepIf):
            return e.renamed(lambda s: ir.Time("T", s.offset) if s.var == "t" else s)
        if isinstance(e, ir.Sum) and e.var == "t":
            return e
        kids = e.children()
        return e.rebuild(tuple(at_T(c) for c in kids)) if kids else e
    return at_T(claim.lhs), at_T(claim.rhs)


def _guide_at(guide, parent):
    """The part of the derived right-hand side that stands where `parent`'s child stands: a sum's body inside
    the author's sum over the steps, the whole of it elsewhere."""
    if guide is not None and isinstance(parent, ir.Sum):
        return guide.body if isinstance(guide, ir.Sum) else None
    return guide


def edits(claim: ir.Claim, ctx: ir.Context, typer: Typer | None = None,
          guide: ir.Expr | None = None) -> Iterator[tuple[Edit, ir.Claim]]:
    """Every single edit of the claim (both sides, every position), as (Edit, edited claim); not pruned.
    `guide`: the derived right-hand side, whose terms and factors the line may lack (add-term, add-factor)."""
    if claim.lhs is None or claim.rhs is None:       # a loop of an algorithm: its lines are edited one by one
        return
    typer = typer or Typer(ctx)
    # Where the derived right-hand side writes the line's formula otherwise, part by part (derived-part).
    parts = dict(aligned_parts(claim.rhs, guide)) if guide is not None else {}
    for side in ("rhs", "lhs"):
        root = getattr(claim, side)
        for path, node, parent, naming in positions(root):
            for kind, fn in EDITS.items():
                if naming and kind not in NAME_EDITS:
                    continue
                if kind == "flip-sign" and isinstance(parent, _FACTOR_PARENTS) and not isinstance(node, ir.Neg):
                    continue
                if kind == "add-transpose" and isinstance(parent, ir.Transpose):
                    continue
                if kind == "move-factor" and isinstance(parent, ir.MatMul) and not parent.norm:
                    continue             # a part of a longer product: its factors are moved from the whole
                if kind == "add-term":     # on the formula side: at its root, a sum of terms, a sum's body
                    if side != "rhs" or path and not isinstance(node, ir.Add) and not isinstance(parent, ir.Sum):
                        continue
                    made = fn(node, ctx, typer, claim=claim,
                              guide=_guide_at(guide, parent) if side == "rhs" and (not path or isinstance(parent, ir.Sum))
                              else None)
                elif kind == "add-factor":
                    if side != "rhs":
                        continue
                    made = fn(node, ctx, typer, guide=guide)
                elif kind == "derived-part":
                    made = fn(node, ctx, typer, part=parts.get(path) if side == "rhs" and not naming else None)
                elif kind == "replace-symbol":
                    made = fn(node, ctx, typer, naming=naming)
                else:
                    made = fn(node, ctx, typer)
                for new in made:
                    edited = replace_at(root, path, new)
                    yield Edit(kind, side, path, node, new), replace(claim, **{side: edited})
    both = _last_step(claim)
    if both is not None:
        yield Edit("last-step", "both", (), claim.rhs, both[1]), replace(claim, lhs=both[0], rhs=both[1])


def single_edits(claim: ir.Claim, ctx: ir.Context) -> Iterator[tuple[str, str, ir.Claim]]:
    """(kind, side, new claim) for every single edit of the claim, at every position of lhs and rhs.

    Not pruned by shape: a mutation may well be ill-typed (the repair search drops those).
    """
    for e, new in edits(claim, ctx):
        yield e.kind, e.side, new


def type_checks(claim: ir.Claim, typer: Typer) -> bool:
    try:
        a, b = typer.infer(claim.lhs), typer.infer(claim.rhs)
    except IllTyped:
        return False
    except Exception:  # noqa: BLE001 - a shape the typer cannot handle is no repair
        return False
    return typer.eq_shape(a, b)


# ---------------------------------------------------------------- ranking

def _failure_path(claim: ir.Claim, typer: Typer):
    """(side, path) of the subexpression where the claim's typing fails, or None (sides differ, or typed)."""
    for side in ("lhs", "rhs"):
        try:
            typer.infer(getattr(claim, side))
        except IllTyped as e:
            if e.node is None:
                return None
            for path, node, _, _ in positions(getattr(claim, side)):
                if node is e.node:
                    return side, path
            return None
    return None


def _changed_chars(old: str, new: str) -> int:
    """Characters that differ between two printings, once their common beginning and end are set aside."""
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return (len(old) - prefix - suffix) + (len(new) - prefix - suffix)


def _local(edit: Edit, locus) -> int:
    """0 when the edit is at or inside the subexpression that fails to type-check (or there is none)."""
    if locus is None:
        return 0
    side, path = locus
    return 0 if edit.side == side and tuple(edit.path[:len(path)]) == tuple(path) else 1


def rank_key(chain: list[Edit], old_latex: str, new_latex: str, locus) -> tuple:
    """Fewer edits; the more plausible kinds; at the failing subexpression; the formula (rhs) before the name
    it is said to equal (lhs); fewer characters changed; then the position."""
    return (len(chain),
            sorted(KIND_ORDER.index(e.kind) for e in chain),
            sum(_local(e, locus) for e in chain),
            [e.side != "rhs" for e in chain],
            _changed_chars(old_latex, new_latex),
            [e.path for e in chain])


# ---------------------------------------------------------------- printing with the change marked

class _Marking(Printer):
    """The printer, with the node at `path` wrapped as \\boxed{...} (display only: not parsed back)."""

    def __init__(self, target):
        super().__init__()
        self.target = target

    def p(self, e):
        text = super().p(e)
        return f"\\boxed{{{text}}}" if e is self.target else text


def marked_latex(claim: ir.Claim, chain: list[Edit]) -> str:
    """The repaired statement with the last edit's new subexpression boxed (for display: \\boxed is not
    part of the format)."""
    if not chain:
        return f"{to_latex(claim.lhs)} = {to_latex(claim.rhs)}"
    last = chain[-1]
    if last.side == "both":
        return f"\\boxed{{{to_latex(claim.lhs)} = {to_latex(claim.rhs)}}}"
    target = node_at(getattr(claim, last.side), last.path)
    # Mark by identity: the node object of the edited tree.
    lhs = _Marking(target).p(claim.lhs) if last.side == "lhs" else to_latex(claim.lhs)
    rhs = _Marking(target).p(claim.rhs) if last.side == "rhs" else to_latex(claim.rhs)
    return f"{lhs} = {rhs}"


def statement_latex(claim: ir.Claim) -> str:
    return f"{to_latex(claim.lhs)} = {to_latex(claim.rhs)}"


# ---------------------------------------------------------------- the same statement, however spelled

# ---------------------------------------------------------------- checking a candidate

def check(ctx: ir.Context, claim: ir.Claim) -> dict:
    """The engines of parsed claims on one statement, combined as for any claim (engines.combine)."""
    from ..engines import CROSS_CHECK_BUDGET, EXPLICIT, GENERAL, combine, entry, parsed_engines
    methods = []
    # As engines.run_engines: the explicit engine last, and only a cross-check within its small budget once an
    # engine for every size has proved the candidate (finding a difference then is a conflict, never a repair).
    for name, engine in sorted(parsed_engines(), key=lambda e: e[0] == EXPLICIT):
        start = time.perf_counter()
        cross = name == EXPLICIT and any(m["verdict"] == PROVED and m["method"] in GENERAL for m in methods)
        outcome = engine(ctx, claim, budget=CROSS_CHECK_BUDGET) if cross else engine(ctx, claim)
        if outcome is not None:
            methods.append(entry(name, outcome, start))
    return {**combine(methods), "methods": methods}


def _numerically_different(ctx: ir.Context, claim: ir.Claim) -> bool:
    """A quick look before the engines: do the two sides differ at one rational point of one size?

    Only ever used to skip a candidate (a difference at a point is a refutation); never to prove one.
    """
    from ..engines import explicit
    from ..form.semantics import index_assignments
    ctx = with_indices(ctx, claim)              # a line of entries: its free entry indices get values too
    ctx = explicit.looking_context(ctx, claim)     # small sizes of its own where the value reads no size
    if ctx is None:
        return False
    shapes = explicit.plan(ctx)
    # The size where most slips show: every size at least 2, not all equal (a non-square matrix), short T.
    shape = min(shapes, key=lambda s: (min((v for k, v in s.items() if k != "T"), default=2) < 2,
                                       len({v for k, v in s.items() if k != "T"}) < 2, s.get("T") or 0))
    T = shape.get("T")
    sizes = {k: v for k, v in shape.items() if k != "T"}
    indices = next(iter(index_assignments(ctx, sizes, T)), {})
    model = explicit.model_at(ctx, shape, indices)
    for t in explicit.steps_of(claim, T):
        lhs, rhs = explicit.both_sides(model, claim, {"T": T, "t": t})
        if lhs.shape != rhs.shape:
            return True
        # three points: one can sit where both sides vanish (ReLU off, a kink skipped), three rarely do
        if explicit.numeric_difference(model, lhs, rhs, f"repair|{claim.id}", tries=3, give_up_after=3) is not None:
            return True
    return False


@dataclass
class Candidate:
    chain: list
    claim: ir.Claim
    latex: str
    key: tuple

    @property
    def edit(self) -> str:
        return " + ".join(e.kind for e in self.chain)


def keeps_subject(ctx: ir.Context, old: ir.Claim, new: ir.Claim) -> bool:
    """The edited statement is about what the line is about: the same derivative (what is differentiated, with
    respect to what, at which step) or the same quantity on the side that names it.  A repair may rewrite the
    formula, never the statement's subject (∂L/∂c for ∂L/∂b is another claim, not a fix)."""
    from .derive import subject
    for side in ("lhs", "rhs"):
        was = getattr(old, side)
        who = subject(ctx, was)
        if who is None and side == "lhs":
            bare = was
            while isinstance(bare, (ir.Neg, ir.Transpose)):
                bare = bare.arg
            if isinstance(bare, ir.Ref):
                who = ("quantity", bare)
        if who is None:
            if side == "lhs":
                continue
            return True
        now = getattr(new, side)
        if who[0] == "quantity":
            while isinstance(now, (ir.Neg, ir.Transpose)):
                now = now.arg
            return now == who[1]
        return subject(ctx, now) == who
    return True


def trivial(ctx: ir.Context, claim: ir.Claim) -> bool:
    """A statement true by its names alone (dv = ∂ℓ/∂V where dv := ∂ℓ/∂V), or x = x + y: saying it fixes nothing."""
    if claim.lhs == claim.rhs or normal_form(ctx, claim.lhs) == normal_form(ctx, claim.rhs):
        return True
    # x = x + y says only that y is zero: no statement about x either.  Here a gradient given by name stays
    # a name: ∂ℓ/∂U = dU + Σ_t ... (dU the loss's direct use of U) is no such statement.
    lhs, rhs = normal_form(ctx, claim.lhs, keep_given=True), normal_form(ctx, claim.rhs, keep_given=True)
    return isinstance(rhs, ir.Add) and lhs in rhs.terms


def candidates(ctx: ir.Context, claim: ir.Claim, typer: Typer, pairs: bool = False, deadline=None,
               guide: ir.Expr | None = None, counts: dict | None = None):
    """The type-checked statements one edit (or two, `pairs`) away that keep the line's subject and say
    something, deduplicated by their printing, ranked."""
    if claim.lhs is None or claim.rhs is None:       # a loop of an algorithm: its lines are edited one by one
        return [], 0
    old = statement_latex(claim)
    locus = _failure_path(claim, typer)
    seen = {old}
    said_before = set()
    out, pruned, not_fixes = [], 0, 0
    firsts = [(e, new) for e, new in edits(claim, ctx, typer, guide) if e.kind not in NOT_REPAIRS]
    for first, once in firsts:
        chains = [([first], once)]
        if pairs:
            if deadline is not None and time.perf_counter() > deadline:
                break
            chains = [([first, second], twice) for second, twice in edits(once, ctx, typer, guide)
                      if second.kind not in NOT_REPAIRS]
        for chain, new in chains:
            latex = statement_latex(new)
            if latex in seen:
                continue
            seen.add(latex)
            said = (normal_form(ctx, new.lhs), normal_form(ctx, new.rhs))
            if said in said_before:           # the same statement spelled otherwise (∘ for ⊙): tried once
                continue
            said_before.add(said)
            # A statement whose two sides say the same by their names says nothing, and one about another
            # derivative is no fix of this one: never a repair.
            if not type_checks(new, typer):
                pruned += 1
                continue
            if not keeps_subject(ctx, claim, new) or trivial(ctx, new):
                not_fixes += 1
                continue
            out.append(Candidate(chain, new, latex, rank_key(chain, old, latex, locus)))
    out.sort(key=lambda c: c.key)
    if counts is not None:
        counts["another_subject_or_empty"] = counts.get("another_subject_or_empty", 0) + not_fixes
    return out, pruned


def severity(verdict: str, repairs: list) -> str | None:
    """notation: the line does not type-check and one notation edit (a transpose of a vector, \\cdot for
    \\circ, a column for a diagonal) repairs it; substantive: every other wrong line (it type-checks and
    computes another value, or needs more than a change of notation)."""
    if verdict not in (REFUTED, ILL_TYPED):
        return None
    best = repairs[0] if repairs else None
    if verdict == ILL_TYPED and best is not None and len(best["edits"]) == 1 and best.get("notation"):
        return NOTATION
    return SUBSTANTIVE


def _tag(latex: str) -> str:
    """A short fingerprint of a candidate's printing: what a search cut short records as tried."""
    import hashlib
    return hashlib.sha1(latex.encode()).hexdigest()[:12]


def search(ctx: ir.Context, claim: ir.Claim, budget: float = 10.0, verdict: str | None = None,
           cache=None, keep: int = 5, trace: bool = False, resume: dict | None = None) -> dict:
    """The repair search on one wrong claim: {"repairs": [...ranked...], "search": {...}}.

    Single edits first, in rank order; pairs only where no single edit is proved, within the time
    budget (seconds of this search).  A candidate that crashes an engine is skipped and recorded.

    A search cut short says where it stopped (search.resume: the candidates it tried, by fingerprint, and the
    seconds spent so far); `resume` is such an earlier result of the same search: the candidates it tried
    are not tried again, its proved repairs and its derived line are kept, and the budget is what this run
    adds (search.budget_seconds counts both).
    """
    start = time.perf_counter()
    earlier = (resume or {}).get("search", {}).get("resume") if resume else None
    from ..engines import TimeLimit, time_limit
    deadline = start + budget
    typer = Typer(ctx)
    for name in ctx.definitions:            # type every definition once, before any edit
        try:
            typer.quantity(name)
        except IllTyped:
            pass
    info = {"singles": 0, "pairs": 0, "tried": 0, "pruned_by_shape": 0, "another_subject_or_empty": 0, "refuted_quickly": 0,
            "checked_by_engines": 0, "from_cache": 0, "budget_seconds": budget, "budget_exhausted": False,
            "errors": [], "conflicts": []}
    repairs = []
    done: set = set()                       # fingerprints of the candidates tried by this search and its earlier runs
    if earlier is not None:
        repairs = list(resume.get("repairs", []))
        done = set(earlier.get("tried", []))
        info["resumed"] = {"after_seconds": earlier.get("seconds", 0.0), "tried_before": len(done)}
        info["budget_seconds"] = round(earlier.get("seconds", 0.0) + budget, 3)
    # Derive first: the right-hand side the definitions give, in the file's names, shown when proved and used
    # to guide the edits (the terms and factors it has that the line lacks).
    from .derive import derived_forms
    forms = derived_forms(ctx, claim)
    guide = forms[0] if forms else None
    derived = None
    before = (earlier or {}).get("derived")
    if before is not None and before.get("verdict") in (PROVED, CHECKED, REFUTED, ILL_TYPED):
        derived = before                    # decided by the earlier run: not proved again
        guide = next((f for f in forms if to_latex(f) == before.get("rhs")), guide)
    elif time.perf_counter() > deadline:
        info["budget_exhausted"] = True
        info["stopped"] = "cut short before the first candidate"
    else:
        # Three quarters of the line's budget at most: the derived line answers the line when no edit does (the
        # structural engine may take half a minute on one), and the single edits are mostly refuted at numbers.
        # (All of it when resuming a search whose derived line the earlier run's share did not decide.)
        share = min(deadline, time.perf_counter() + budget * (1.0 if earlier is not None else 0.75))
        derived, guide = _derive(ctx, claim, forms, share, cache, info) or (None, guide)
    for pairs in (False, True):
        # Pairs only where no single edit is proved and the derived right-hand side is not (it answers the line;
        # a defined value's definition restated tells what the name is, but says only what its names say).
        if pairs and (repairs or time.perf_counter() > deadline
                      or derived and derived["verdict"] == PROVED and not derived.get("restates_definition")):
            break
        ranked, pruned = candidates(ctx, claim, typer, pairs=pairs, deadline=deadline, guide=guide, counts=info)
        info["pruned_by_shape"] += pruned
        info["pairs" if pairs else "singles"] = len(ranked)
        for n, cand in enumerate(ranked):
            if len(repairs) >= keep:          # tried in rank order: the best ones are found
                info["stopped"] = f"{keep} repairs found"
                break
            tag = _tag(cand.latex)
            if tag in done:                   # tried by the run this one resumes
                continue
            if time.perf_counter() > deadline:
                info["budget_exhausted"] = True
                info["stopped"] = f"cut short at candidate {n + 1} of {len(ranked)}"
                break
            done.add(tag)
            info["tried"] += 1
            t0 = time.perf_counter()
            try:
                # One candidate that makes an engine explode must not hold the search past its budget.
                with time_limit(max(1.0, deadline - t0)):
                    outcome = _try(ctx, claim, cand, cache, info)
            except TimeLimit:
                done.discard(tag)             # not decided: a resumed search tries it again
                info["budget_exhausted"] = True
                info["stopped"] = f"cut short at candidate {n + 1} of {len(ranked)}"
                break
            if trace:
                print(f"{time.perf_counter() - t0:6.2f}s {outcome:<12} {cand.edit} {cand.latex}", flush=True)
            if outcome == PROVED:
                repairs.append(_repair_entry(cand, typer, round(time.perf_counter() - t0, 3)))
        if info["budget_exhausted"]:
            break
    info.pop("_memo", None)
    info["seconds"] = round(time.perf_counter() - start, 3)
    if earlier is not None:
        info["tried"] += len(earlier.get("tried", []))
    if info["budget_exhausted"]:
        # Where it stopped, for a run with more budget to go on from (runner.repair_job): the candidates tried
        # (a ranking cut short by the budget is not the same list again, so by fingerprint, not by position),
        # the derived line when it was decided, and the seconds spent by this search and those it resumed.
        info["resume"] = {"tried": sorted(done),
                          "seconds": round(info["seconds"] + (earlier or {}).get("seconds", 0.0), 3),
                          "derived": derived if derived and derived["verdict"] in (PROVED, CHECKED, REFUTED,
                                                                                   ILL_TYPED)
                          and not derived.get("forms_left") else None}
    if pairs and not repairs and not info["budget_exhausted"]:
        info["note"] = "no single edit or pair of edits is proved"
        if info.get("another_subject_or_empty"):
            info["note"] += (f"; {info['another_subject_or_empty']} edits were not tried because they change what the "
                             "line is about (the derivative or quantity on its left) or say only what its names say")
    out = {"repairs": repairs[:keep], "proved_count": len(repairs), "search": info,
           # Shown when proved, or checked (equal at the sizes and lengths tried, said so where it is shown);
           # never when refuted, inconclusive or cut short.
           "derived": derived if derived and derived["verdict"] in (PROVED, CHECKED) else None}
    if derived and derived["verdict"] != PROVED:
        info["derived_not_proved"] = derived
    if verdict is not None:                 # the as-written claim's verdict, when the caller knows it
        out["severity"] = severity(verdict, repairs)
    return out


def _worth_proving(ctx: ir.Context, claim: ir.Claim, form: ir.Expr) -> bool:
    """A right-hand side that says something the line does not: not the line's own, and not true by its names
    alone -- except a defined value's definition restated (f = ‖W x‖² where f := ‖W x‖²), which tells a
    wrong value line what the name is (shown as the derived line, never as a repair: `candidates` drops it)."""
    from .derive import value_subject
    if form == claim.rhs:
        return False
    if not trivial(ctx, replace(claim, rhs=form)):
        return True
    found = value_subject(ctx, claim.lhs)
    return found is not None and found[1] == form


def _derive(ctx, claim, forms, share, cache, info):
    """(the derived line's entry, the form that guides the edits), or None when no form is worth proving.

    The forms are tried in order (the closest in form to the author's line first, `derive.value_forms`) until
    the engines prove one; else the first checked, else the first tried.  A form cut short by the time limit
    ends the tries (the derived line is then undecided, and a resumed search tries again)."""
    from ..engines import TimeLimit, time_limit
    tried, left = [], False
    for n, form in enumerate(f for f in forms if _worth_proving(ctx, claim, f)):
        if n and time.perf_counter() > share:
            left = True
            break
        whole = replace(claim, rhs=form)
        info["tried"] += 1
        latex = statement_latex(whole)
        t0 = time.perf_counter()
        try:
            with time_limit(max(1.0, share - t0)):
                outcome = _try(ctx, claim, Candidate([], whole, latex, ()), cache, info)
        except TimeLimit:
            outcome = "timed out"
        entry = {"latex": latex, "rhs": to_latex(form), "verdict": outcome,
                 "seconds": round(time.perf_counter() - t0, 3)}
        if trivial(ctx, whole):
            entry["restates_definition"] = True       # the value, but no answer that stops the search for edits
        tried.append((entry, form))
        if outcome in (PROVED, "timed out"):
            return entry, form
    if not tried:
        return None
    chosen = next((t for t in tried if t[0]["verdict"] == CHECKED), tried[0])
    if left:
        chosen[0]["forms_left"] = True        # not every form decided: not kept as decided for a resumed search
    return chosen


def _try(ctx, claim, cand, cache, info) -> str:
    """The combined verdict of the engines on one candidate ("refuted" when the quick look refutes it)."""
    from ..engines import parsed_modules, sources_key
    test = replace(cand.claim, id=f"{claim.id}~repair")
    memo = info.setdefault("_memo", {})
    if cand.latex in memo:                  # the same statement within this search (the derived line, written
        return memo[cand.latex]             # again by an edit): one proof
    key = sources_key(parsed_modules(), "repair-candidate", ctx.text, cand.latex) if cache else None
    result = cache.get(test.id, key) if cache else None
    if result is not None:
        info["from_cache"] += 1
    else:
        try:
            if _numerically_different(ctx, test):
                info["refuted_quickly"] += 1
                return REFUTED
            info["checked_by_engines"] += 1
            result = check(ctx, test)
        except Exception as e:  # noqa: BLE001 - an engine that fails on a candidate: skip it, say so
            info["errors"].append({"latex": cand.latex, "error": f"{type(e).__name__}: {e}"[:300]})
            return "error"
        if cache and result["verdict"] != CONFLICT:
            cache.put(test.id, key, {"verdict": result["verdict"], "reason": result["reason"]})
    if result["verdict"] == CONFLICT:
        info["conflicts"].append({"latex": cand.latex, "reason": result["reason"]})
    memo[cand.latex] = result["verdict"]
    return result["verdict"]


def _repair_entry(cand: Candidate, typer: Typer, seconds: float) -> dict:
    notation = all(_is_notation(e, typer) for e in cand.chain)
    return {"edit": cand.edit,
            "edits": [{"kind": e.kind, "side": e.side, "before": to_latex(e.before), "after": to_latex(e.after)}
                      for e in cand.chain],
            "latex": cand.latex,
            "marked": marked_latex(cand.claim, cand.chain),
            "verdict": PROVED, "notation": notation, "seconds": seconds}


def _is_notation(edit: Edit, typer: Typer) -> bool:
    """A notation edit: \\cdot/\\circ, column/diagonal, or a transpose of a vector."""
    if edit.kind not in NOTATION_KINDS:
        return False
    if edit.kind in ("add-transpose", "remove-transpose"):
        arg = edit.before if edit.kind == "add-transpose" else edit.after
        return _is_vector(arg, typer)
    return True
