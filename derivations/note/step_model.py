"""The note's BPTT lines, parsed from note.md, in the one-step model of `derivations.unrolled`.

The algorithm's lines read quantities of one step (X_t, h_{t-1}, h_t, dS_t)
and what the later steps passed back (∂ℓ_{t+1}/∂h_t, ∂ℓ_{t+1}/∂W).  With the
note's reading of ℓ_t (the loss from step t on, as a function of h_{t-1}),
each derivative the lines write is one of the step symbols:

    ∂ℓ_t/∂S_t -> dS      ∂ℓ_t/∂h_t -> dh      ∂ℓ_{t+1}/∂h_t -> dh_next
    ∂ℓ_{t+1}/∂W -> dW_next  (W = W_xh, W_hh, W_hy)

and the left-hand side ∂ℓ_t/∂Q names the quantity the line updates (dh, dW_xh,
dX, dh_prev, ...).  Lowered this way, a line parsed from the LaTeX serves the
engines that work in step symbols -- all sizes (one step, symbolic H, E, V),
the unrolled graph (the whole algorithm at T = 6, 8), the induction (every T)
-- and the code generator, which prints the very expression that was parsed
and proved.  The lowering applies only where the context defines the note's
RNN exactly (checked below); anything else is NotApplicable.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import sympy as sp
from sympy.matrices.expressions.special import OneMatrix

from .. import ir
from ..functions import block_col, block_row, dot, elementwise, hadamard, sigma, sigma_prime

NOTE = Path(__file__).with_name("note.md")
WEIGHTS = ("W_xh", "W_hh", "W_hy")
T = ir.Time("t")
PREV, NEXT = ir.Time("t", -1), ir.Time("t", 1)


class NotApplicable(Exception):
    """The claim is not a line of the note's algorithm in the one-step model."""


def _is_note_rnn(ctx: ir.Context, loss: bool = True) -> bool:
    """The context defines h_t = σ(W_xh X_t + W_hh h_{t-1}), S_t = W_hy h_t and ℓ_t from step t to T.

    With loss=False the loss may be missing: the forward pass defines h_t and S_t only, and its
    lines lower without derivatives.
    """
    d = ctx.definitions
    want_h = ir.Apply("sigma", ir.Add((ir.MatMul(ir.Ref("W_xh"), ir.Ref("X", T)),
                                       ir.MatMul(ir.Ref("W_hh"), ir.Ref("h", PREV)))))
    ell = d.get("\\ell")
    rnn = ("h" in d and _plain(d["h"].expr) == want_h and "S" in d
           and _plain(d["S"].expr) == ir.MatMul(ir.Ref("W_hy"), ir.Ref("h", T)))
    if not loss and ell is None:
        return rnn
    return (rnn and ell is not None and ell.target.time == T and isinstance(ell.expr, ir.Neg)
            and isinstance(ell.expr.arg, ir.Sum) and ell.expr.arg.lo == T and ell.expr.arg.hi == ir.Time("T"))


def _plain(e: ir.Expr) -> ir.Expr:
    """The expression without the author's spelling (\\cdot or juxtaposition)."""
    return ir.transform(e, lambda n: ir.MatMul(n.left, n.right) if isinstance(n, ir.MatMul) else n)


class Lowering:
    """IR of the note's BPTT context -> matrix expressions in the step symbols `s`."""

    def __init__(self, ctx: ir.Context, s, derivatives: bool = True):
        if not _is_note_rnn(ctx, loss=derivatives):
            raise NotApplicable("the context is not the note's RNN")
        self.ctx, self.s, self.derivatives = ctx, s, derivatives

    def lhs(self, e: ir.Expr) -> str:
        """The quantity a line updates, from its left-hand side ∂ℓ_t/∂Q."""
        if not (isinstance(e, ir.Deriv) and e.of == ir.Ref("\\ell", T) and isinstance(e.wrt, ir.Ref)):
            raise NotApplicable("the left-hand side is not ∂ℓ_t/∂(a quantity)")
        w = e.wrt
        table = {("h", T): "dh", ("X", T): "dX", ("h", PREV): "dh_prev",
                 **{(name, None): f"d{name}" for name in WEIGHTS}}
        if (w.name, w.time) not in table:
            raise NotApplicable(f"no step quantity for ∂ℓ_t/∂{w.name}")
        return table[(w.name, w.time)]

    def __call__(self, e: ir.Expr):
        method = getattr(self, "_" + type(e).__name__, None)
        if method is None:
            raise NotApplicable(f"no step-model form for {type(e).__name__}")
        return method(e)

    def _Ref(self, e: ir.Ref):
        s = self.s
        table = {("X", T): s.X, ("h", T): s.h, ("h", PREV): s.h_prev, **{(w, None): getattr(s, w) for w in WEIGHTS}}
        if (e.name, e.time) in table:
            return table[(e.name, e.time)]
        definition = self.ctx.definitions.get(e.name)
        if (definition is not None and not definition.notation and e.name in ("T_rnn", "Z")
                and e.time == definition.target.time):
            # The stacked weight and input at the step they are defined for: their definitions.  (Z at
            # another step is another quantity, which the one-step model does not have.)
            return self(definition.expr)
        raise NotApplicable(f"{e.name} at {e.time} is not a step quantity")

    def _Deriv(self, e: ir.Deriv):
        if not self.derivatives:
            raise NotApplicable("a derivative where the context defines no loss")
        s, of, w = self.s, e.of, e.wrt
        if of == ir.Ref("\\ell", T):
            if w == ir.Ref("S", T):
                return s.dS
            if w == ir.Ref("h", T):
                return s.dh
        if of == ir.Ref("\\ell", NEXT):
            if w == ir.Ref("h", T):
                return s.dh_next
            if isinstance(w, ir.Ref) and w.name in WEIGHTS and w.time is None:
                return getattr(s, f"d{w.name}_next")
        raise NotApplicable("a derivative that is not one of the step symbols")

    def _Add(self, e: ir.Add):
        shape = None
        terms = []
        for t in e.terms:
            terms.append(self(t))
            if not isinstance(t, (ir.Number, ir.Neg)) or not _literal(t):
                shape = terms[-1].shape
        out = None
        for t, x in zip(e.terms, terms):
            if _literal(t) and shape is not None:
                x = x * OneMatrix(*shape) if not isinstance(x, sp.MatrixExpr) else x
            out = x if out is None else out + x
        return out

    def _Neg(self, e: ir.Neg):
        return -self(e.arg)

    def _Number(self, e: ir.Number):
        return sp.Rational(e.value.numerator, e.value.denominator)

    def _MatMul(self, e: ir.MatMul):
        return dot(self(e.left), self(e.right))

    def _Hadamard(self, e: ir.Hadamard):
        return hadamard(self(e.left), self(e.right))

    def _Transpose(self, e: ir.Transpose):
        return self(e.arg).T

    def _Power(self, e: ir.Power):
        x = self(e.arg)
        return hadamard(*([x] * e.exponent))

    def _Apply(self, e: ir.Apply):
        if e.function != "sigma" or e.derivative not in (0, 1):
            raise NotApplicable(f"the function {e.function}")
        return elementwise(sigma if e.derivative == 0 else sigma_prime, self(e.arg))

    def _Block(self, e: ir.Block):
        rows = [[self(x) for x in row] for row in e.rows]
        if len(rows) == 1:
            return block_row(*rows[0])
        if all(len(r) == 1 for r in rows):
            return block_col(*(r[0] for r in rows))
        return sp.BlockMatrix(rows)


def _literal(e) -> bool:
    return isinstance(e, ir.Number) or (isinstance(e, ir.Neg) and _literal(e.arg))


class Line:
    """One line of the algorithm, parsed from note.md: `build(s)` is its update in step symbols."""

    def __init__(self, ctx: ir.Context, claim: ir.Claim):
        self.ctx, self.claim, self.id, self.label = ctx, claim, claim.id, claim.label
        self.quantity = Lowering(ctx, None).lhs(claim.lhs)

    def build(self, s):
        return Lowering(self.ctx, s)(self.claim.rhs)


class Forward:
    """A line of the forward pass, parsed from note.md: h_t = (right-hand side), no derivatives.

    `build(s)` is the right-hand side in the step symbols (h_{t-1} -> h_prev, X_t -> X, the weights).
    """

    def __init__(self, ctx: ir.Context, claim: ir.Claim):
        self.ctx, self.claim, self.id, self.label = ctx, claim, claim.id, claim.label
        if claim.lhs != ir.Ref("h", T):
            raise NotApplicable(f"{claim.id} does not state h_t")
        self.quantity = "h"
        Lowering(ctx, None, derivatives=False)           # the context is the note's RNN

    def build(self, s):
        return Lowering(self.ctx, s, derivatives=False)(self.claim.rhs)


@cache
def note_derivation():
    from ..latex.files import read_derivation
    return read_derivation(NOTE)


def _parsed(claim_id: str):
    d = note_derivation()
    ctx = d.context_of(claim_id)
    return ctx, next(c for c in ctx.claims if c.id == claim_id)


def contexts_text(claim_ids) -> str:
    """The contexts of note.md holding these claims, as written (what a proof of the lines depends on)."""
    d = note_derivation()
    texts = []
    for ctx in d.contexts:
        if any(c.id in claim_ids for c in ctx.claims):
            texts.append(ctx.text)
    return "\n\0".join(texts)


def line(claim_id: str) -> Line:
    """The note's algorithm line `claim_id`, lowered (raises NotApplicable for anything else)."""
    return Line(*_parsed(claim_id))


def step_claim(claim_id: str):
    """A line as the step-symbol engines take a claim (`registry.Claim` with `lhs`): the concrete engine
    through time, "all sizes" on one step, the soundness tests' edits."""
    from ..registry import BPTT_SHAPES, Claim
    ln = line(claim_id)
    return Claim(id=ln.id, label=ln.label, latex=ln.claim.source.latex, section=ln.claim.section, build=ln.build,
                 shapes=BPTT_SHAPES, kind=ln.claim.kind, corrects=ln.claim.corrects, comment=ln.claim.comment,
                 lhs=ln.quantity)


def forward(claim_id: str) -> Forward:
    """The note's forward line `claim_id` (h_t = ...), lowered (raises NotApplicable for anything else)."""
    return Forward(*_parsed(claim_id))


def lower(ctx: ir.Context, claim: ir.Claim, s):
    """(quantity, update) of a claim in the step symbols `s`, or NotApplicable."""
    low = Lowering(ctx, s)
    return low.lhs(claim.lhs), low(claim.rhs)


ONE_STEP = (" (one-step semantics: the loss seen through dh_t, dS_t and the later steps' gradients; the line "
            "parsed from the LaTeX and lowered to the step symbols)")


def prove_one_step(ctx: ir.Context, claim: ir.Claim):
    """Engine "all sizes" for a line of the note's algorithm: one step, symbolic H, E, V; None elsewhere."""
    from ..concrete import ILL_TYPED, Outcome
    from ..generic import HOW, METHOD, RNN_TRIALS, prove_statements, size_symbol, step_statement
    from ..generic import NotApplicable as NoIndexForm
    from ..statement import dims
    from ..unrolled import step_symbols
    if not ctx.has_time or ctx.length is not None or not isinstance(claim.lhs, ir.Deriv) or not ctx.held_fixed:
        return None             # its step symbols read ∂ℓ_t/∂W with the earlier steps held fixed
    symbols = {n: size_symbol(n) for n in ("H", "E", "V")}
    shapes = [{k: str(v) for k, v in symbols.items()}]
    s = step_symbols(dims(**symbols))
    try:
        quantity, update = lower(ctx, claim, s)
    except NotApplicable:
        return None
    except sp.ShapeError as e:
        return Outcome(ILL_TYPED, METHOD, shapes, "for symbolic sizes: " + " ".join(str(e).split()))
    try:
        return prove_statements([step_statement(quantity, update, s)], symbols, list(RNN_TRIALS), claim.id,
                                HOW + ONE_STEP)
    except NoIndexForm:
        return None
