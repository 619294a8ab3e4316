"""Algorithms: a loop t = T, ..., 1 of ordered updates, read both as a program and as claims.

A derivation may state its backward pass as the algorithm a reader would run
(docs/derivation-format.md, "Algorithms"):

    $$ \\textbf{for } t = T, \\dots, 1 $$
    $$ dh_t = W_{hy}^{\\top} dy_t + W_{hh}^{\\top} ((1 - h_{t+1}^2) \\circ dh_{t+1}) $$
    $$ dW_{hh} \\mathrel{+}= ((1 - h_t^2) \\circ dh_t) h_{t-1}^{\\top} $$
    $$ \\textbf{end for} $$

Every name a line assigns stands for what it is defined as (dh_t := ∂ℓ/∂h_t,
dW_{hh} := ∂ℓ/∂W_{hh}), or is a derivative written out (∂ℓ_t/∂h_{t-1}).  The
loop is correct for every T when (this module checks the first two when the file
is read; the engines prove the third):

1. every value a line reads is one the loop has computed by then: by an earlier
   line of the same step, or at a later step (t+1, t+2, ...), which the loop
   ran before;
2. where no step has computed it yet (t near T), the loop starts it at zero, and
   what it stands for is zero there: a quantity past step T (∂ℓ/∂h_{T+1},
   ∂ℓ_{T+1}/∂W) is zero by the semantics of a derivation file;
3. every line holds when each value it reads is what that value stands for: a
   line `x = e` is its own claim; `dW \\mathrel{+}= e` adds e at every step, and
   is read as the claim dW = \\sum_{t=1}^{T} e.

Then, by induction over the order the loop runs in (steps T down to 1, lines in
order within a step), every value the loop computes is what it stands for.

This module only reads the intermediate form; `derivations.engines.program` runs a loop
on numbers (the explicit check and the diagnosis).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import ir

# The loop's first and last blocks, as a reader renders them: \textbf{for } t = T, \dots, 1 (or
# "t = T down to 1", "t = T to 1") and \textbf{end for}.  Commands that only style the words are dropped.
_STYLE = re.compile(r"\\(?:textbf|text|mathbf|mathrm|textrm|operatorname)\s*\{([^{}]*)\}")
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad(?![A-Za-z])|~")
LOOP_DOWN = re.compile(r"^for\s+(?P<var>[a-z])\s*=\s*T\s*(?:,\s*(?:\\[lc]?dots|\.\.\.|…)\s*,|down\s*to|to|\\to|"
                       r"\\downarrow)\s*1\s*(?::|do)?$")
LOOP_UP = re.compile(r"^for\s+(?P<var>[a-z])\s*=\s*1\s*(?:,\s*(?:\\[lc]?dots|\.\.\.|…)\s*,|to|\\to)\s*T\s*(?::|do)?$")
LOOP_END = re.compile(r"^end(?:\s*for)?$")


def _plain(text: str) -> str:
    text = _SPACING.sub(" ", text)
    for _ in range(3):
        text = _STYLE.sub(r" \1 ", text)
    return " ".join(text.split()).strip().rstrip(".")


def loop_line(text: str) -> tuple[str, str | None] | None:
    """("for", step variable), ("up", variable), ("end", None) for a loop's first or last block, else None."""
    plain = _plain(text)
    m = LOOP_DOWN.match(plain)
    if m:
        return "for", m.group("var")
    m = LOOP_UP.match(plain)
    if m:
        return "up", m.group("var")
    if LOOP_END.match(plain):
        return "end", None
    return None


# ---------------------------------------------------------------- steps

def _times(e: ir.Expr, var: str):
    """The steps written with `var` free in e, in walk order (a sum over `var` binds its body)."""
    if isinstance(e, ir.Ref):
        if e.time is not None and e.time.var == var:
            yield e.time
        return
    if isinstance(e, (ir.Component, ir.Basis)):
        yield from _times(e.index, var)
        if isinstance(e, ir.Component):
            yield from _times(e.arg, var)
        return
    if isinstance(e, ir.Sum):
        yield from (x for x in (e.lo, e.hi) if x.var == var)
        if e.var == var:
            return
    for c in e.children():
        yield from _times(c, var)


def _retime(e: ir.Expr, var: str, new) -> ir.Expr:
    """e with every free step var+k written new(k) (a Time); a sum over var keeps its body."""
    if isinstance(e, ir.Ref):
        if e.time is not None and e.time.var == var:
            return ir.Ref(e.name, new(e.time.offset), span=e.span, sup=e.sup)
        return e
    if isinstance(e, ir.Component):
        return ir.Component(_retime(e.arg, var, new), _retime(e.index, var, new), span=e.span)
    if isinstance(e, ir.Basis):
        return ir.Basis(_retime(e.index, var, new), e.style, span=e.span)
    if isinstance(e, ir.Sum):
        lo = new(e.lo.offset) if e.lo.var == var else e.lo
        hi = new(e.hi.offset) if e.hi.var == var else e.hi
        body = e.body if e.var == var else _retime(e.body, var, new)
        return ir.Sum(e.var, lo, hi, body, e.short, span=e.span)
    kids = e.children()
    return e.rebuild(tuple(_retime(k, var, new) for k in kids)) if kids else e


def shift(e: ir.Expr, d: int, var: str = "t") -> ir.Expr:
    """e with every free step var+k written var+k+d."""
    return e if d == 0 else _retime(e, var, lambda k: ir.Time(var, k + d))


def _fix(e: ir.Expr, var: str, value: int) -> ir.Expr:
    """e with var given its value: var+k is the step value+k."""
    return _retime(e, var, lambda k: ir.Time(None, value + k))


def _rename_var(e: ir.Expr, var: str, to: str) -> ir.Expr:
    """e with the step variable var written to."""
    return _retime(e, var, lambda k: ir.Time(to, k))


def offset(read: ir.Expr, target: ir.Expr, var: str = "t") -> int | None:
    """d such that the target written d steps later is the read (dh_{t+1} is dh_t one step later), or None."""
    a, b = list(_times(read, var)), list(_times(target, var))
    if len(a) != len(b):
        return None
    d = (a[0].offset - b[0].offset) if a else 0
    return d if shift(target, d, var) == read else None


def absolute(e: ir.Expr, values: dict) -> ir.Expr:
    """e at numbered steps: every free step variable given its value (the key of a value the loop computed)."""
    out = e
    for var, value in values.items():
        out = _fix(out, var, value)
    return out


# ---------------------------------------------------------------- what a value stands for

def is_gradient_name(ctx: ir.Context, e: ir.Expr) -> bool:
    """A name defined as a derivative (dh_t := ∂ℓ/∂h_t), or a derivative written out; not a given gradient
    (declared and defined: g_t \\in \\mathbb{R}^H, g_t := ∂ℓ/∂o_t is an input of the file)."""
    if isinstance(e, ir.Deriv):
        return True
    d = ctx.definitions.get(e.name) if isinstance(e, ir.Ref) else None
    return d is not None and d.notation and e.name not in ctx.declarations


def meaning(ctx: ir.Context, e: ir.Expr) -> ir.Expr:
    """What a value stands for: a name for a derivative opened at the read's step (dh_{t+1} -> ∂ℓ/∂h_{t+1})."""
    if isinstance(e, ir.Ref) and is_gradient_name(ctx, e):
        return opened(ctx, e)
    return e


def opened(ctx: ir.Context, r: ir.Ref) -> ir.Expr:
    """The definition of a name at the step it is read at (δ_{t+1} := its body, one step later)."""
    d = ctx.definitions[r.name]
    own = d.target.time
    if own is None or own.var is None or r.time is None:
        return d.expr
    here = "\0"
    body = shift(_rename_var(d.expr, own.var, here), r.time.offset - own.offset, here)
    return _fix(body, here, 0) if r.time.var is None else _rename_var(body, here, r.time.var)


def inline(ctx: ir.Context, e: ir.Expr, depth: int = 0) -> ir.Expr:
    """e with every name for an expression that reads a gradient (δ_t := dh_t ∘ (1 - h_t^2)) written out:
    what the loop computes is then read where the line reads it."""
    if depth > 20:                   # definitions do not refer to each other in a circle (the reader checks)
        return e

    def fix(n):
        if isinstance(n, ir.Ref) and n.name in ctx.definitions and n.name not in ctx.declarations \
                and not ctx.definitions[n.name].notation and _contains_gradient(ctx, ctx.definitions[n.name].expr):
            return inline(ctx, opened(ctx, n), depth + 1)
        return n
    return ir.transform(e, fix)


def zero_past_the_end(e: ir.Expr, var: str, d: int) -> bool:
    """Is e zero at every step t with t + d > T, by the rule that a quantity past step T is zero?

    A quantity at step var+k with k >= d lies past T there; a derivative of such a quantity, or with
    respect to one, is zero; so is a product with a zero factor.  Anything else: not shown zero (False).
    """
    if isinstance(e, ir.Ref):
        return e.time is not None and e.time.var == var and e.time.offset >= d
    if isinstance(e, ir.Deriv):
        return zero_past_the_end(e.of, var, d) or zero_past_the_end(e.wrt, var, d)
    if isinstance(e, (ir.MatMul, ir.Hadamard)):
        return zero_past_the_end(e.left, var, d) or zero_past_the_end(e.right, var, d)
    if isinstance(e, ir.Add):
        return all(zero_past_the_end(x, var, d) for x in e.terms)
    if isinstance(e, (ir.Neg, ir.Transpose)):
        return zero_past_the_end(e.arg, var, d)
    return False


# ---------------------------------------------------------------- the loop's reads

@dataclass(frozen=True)
class Read:
    """A value a line reads: the node as written, and the lines that compute it (line index, steps later)."""
    node: ir.Expr
    sources: tuple                   # (index of the update, d): the update's target written d steps later is the node


@dataclass(frozen=True)
class Problem:
    """Something that makes the loop not run as written, at a line (index) and a node of it."""
    index: int
    node: ir.Expr | None
    message: str
    hint: str = ""


def _contains_gradient(ctx: ir.Context, e: ir.Expr, seen: frozenset = frozenset()) -> bool:
    """Does e read a gradient, directly or through the definitions it reads (G_t := δ_t h^T, δ_t := dh_t ∘ …)?"""
    for n in e.walk():
        if isinstance(n, (ir.Ref, ir.Deriv)) and is_gradient_name(ctx, n):
            return True
        if isinstance(n, ir.Ref) and n.name in ctx.definitions and n.name not in seen \
                and n.name not in ctx.declarations \
                and _contains_gradient(ctx, ctx.definitions[n.name].expr, seen | {n.name}):
            return True
    return False


def reads(ctx: ir.Context, alg: ir.Algorithm, k: int, problems: list | None = None) -> list[Read]:
    """The values line k reads that lines of the loop compute; a read of a gradient no line computes is a Problem."""
    targets = [u.target for u in alg.updates]
    out = []

    def visit(e):
        sources = tuple((i, d) for i, target in enumerate(targets)
                        for d in [offset(e, target, alg.var)] if d is not None)
        if sources:
            out.append(Read(e, sources))
            return
        if isinstance(e, (ir.Ref, ir.Deriv)) and is_gradient_name(ctx, e):
            if problems is not None:
                problems.append(Problem(k, e, "this line reads a gradient that no line of the loop computes",
                                        "compute it in the loop, in a line before this one (or at a later step), "
                                        "written the same way"))
            return
        for c in e.children():
            visit(c)
    visit(inline(ctx, alg.updates[k].rhs))
    return out


def check(ctx: ir.Context, alg: ir.Algorithm) -> list[Problem]:
    """What keeps the loop from computing, by induction, the values its lines stand for (rules 1 and 2 above)."""
    problems: list[Problem] = []
    updates = alg.updates
    seen_accumulators: dict = {}
    for k, u in enumerate(updates):
        if not is_gradient_name(ctx, u.target):
            problems.append(Problem(k, u.target, "a line of the loop assigns a gradient: this name is not defined "
                                    "as one", "define it, e.g. dW := \\frac{\\partial L}{\\partial W}, or write the "
                                    "derivative itself"))
            continue
        if u.op == "+=":
            if alg.var in ir.time_vars(u.target):
                problems.append(Problem(k, u.target, "\\mathrel{+}= adds to a total over the steps, a value without "
                                        f"a step; this target has the step {alg.var}",
                                        "write the line with = (one value per step)"))
            elif u.target in seen_accumulators:
                problems.append(Problem(k, u.target, f"this total is added to twice in the loop (first in line "
                                        f"{seen_accumulators[u.target] + 1} of the loop)",
                                        "add both terms in one line"))
            seen_accumulators.setdefault(u.target, k)
    if not updates:
        problems.append(Problem(-1, None, "this loop has no line", "write its lines between the loop's first "
                                "and last blocks"))
    accumulators = {u.target for u in updates if u.op == "+="}
    for k, u in enumerate(updates):
        if u.op == "=" and u.target in accumulators:
            problems.append(Problem(k, u.target, "this total is set with = and added to with \\mathrel{+}= in "
                                    "the same loop", "add to it with \\mathrel{+}= only"))
        for n in inline(ctx, u.rhs).walk():
            if isinstance(n, ir.Sum) and (n.var == alg.var or _contains_gradient(ctx, n.body)):
                problems.append(Problem(k, n, "a line of the loop sums over the steps: at step t the loop has "
                                        "not computed the values of the steps before t",
                                        "add the step's term with \\mathrel{+}= instead"))
                break
    for k, u in enumerate(updates):
        for r in reads(ctx, alg, k, problems):
            if any(updates[i].op == "+=" for i, _ in r.sources) or r.node in accumulators:
                problems.append(Problem(k, r.node, "a line of the loop reads a total while the loop is adding to it",
                                        "read the total after the loop, or keep one value per step"))
                continue
            now = [i for i, d in r.sources if d == 0 and i < k]
            later = sorted(d for _, d in r.sources if d > 0)
            if not now and not later:
                problems.append(Problem(k, r.node, "this line reads a value before the loop computes it (at this step "
                                        "it is computed by a later line, or at an earlier step, which the loop runs "
                                        "after this one)", "compute it in a line before this one"))
                continue
            if not now and not zero_past_the_end(meaning(ctx, r.node), alg.var, later[0]):
                problems.append(Problem(k, r.node, f"at the last {'step' if later[0] == 1 else f'{later[0]} steps'} "
                                        "(t near T) no step has computed this value yet: the loop starts it at zero, "
                                        "but what it stands for is not zero there",
                                        "compute it in a line before this one"))
    return problems


def accumulated(alg_var: str, rhs: ir.Expr) -> ir.Expr:
    """What a line dW += e adds up over the loop: \\sum_{t=1}^{T} e."""
    return ir.Sum(alg_var, ir.Time(None, 1), ir.Time("T"), rhs)


def line_claims(alg: ir.Algorithm) -> list[str]:
    """The ids of the claims that state the loop's lines, in order."""
    return [u.claim for u in alg.updates]
