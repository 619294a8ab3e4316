"""Engine "all T" (structural): a claim through time, proved for every size and every sequence length.

Where it sits: intermediate form -> **adjoint equations at a generic step, in
index notation with symbolic sizes** -> the normal form of `derivations.generic`
-> a proof, or "cannot decide" (this engine never refutes: a refutation comes
from the explicit engine, with a counterexample).

The reverse-mode (adjoint) equations of a context are derived from its
definitions once, symbolically.  For a loss ℓ and a quantity q at step s,

    ∂ℓ/∂q_s = (the loss's direct use of q_s)
              + Σ over consumers c of q at step s      (∂c_s/∂q_s)ᵀ ∂ℓ/∂c_s
              + Σ over consumers c of q at step s + 1  (∂c_{s+1}/∂q_s)ᵀ ∂ℓ/∂c_{s+1}

where a consumer is a defined sequence whose definition reads q (at its own
step, or at the step before), and the local Jacobians are SymPy's derivatives
of the definitions' index forms.  Both sides of a claim are written at a
step t; every adjoint at a step up to t + K (K: the latest step the claim
differentiates at) is opened by its equation, and what flows back into a
quantity q_{t+K} from step t + K + 1 is one opaque symbol G_q (the induction
hypothesis: whatever the later steps pass back).  Forward quantities are
symbols, opened into their definitions when the two sides do not meet
otherwise.  Equal normal forms are then a proof for every value of G_q and of
the state entering the earliest step, hence for every T.

Which steps t are covered: the expressions depend on t and T only through
which of the steps t + o they read exist (1 <= t + o <= T) and whether the
future exists past t + K.  With d0 = t - 1 and d1 = T - t, every position
d0 in {0, .., R0 - 1, "R0 or more"} and d1 in {0, .., R1, "more than R1"}
(R0, R1: how far back and forward the claim reads) is a case of its own;
together they are every 1 <= t <= T, for every T.  A step outside 1..T is
zero (a declared initial state h_0 is the step 0); the future past T is zero.

A Jacobian in a context with both directions (f reads f_{t-1}, b reads b_{t+1}) runs through every
earlier step: it is kept whole, one symbol per (quantity, step, quantity, step), opened one level at a
time by its forward equation, zero at a step outside 1..T or where no path of definitions leads.  A
derivative with respect to a block view Z_t := [x_t; h_{t-1}] reads Z as one sequence per block
(`split_views`).

A sum over the steps of a weight gradient, ∂ℓ/∂W = Σ_t (...), is compared term
by term: the uses of W at step t against the summand at t (equal terms are
sufficient, so a difference is "cannot decide", never a refutation).  Σ_t ∂ℓ_t/∂W
of a per-step loss is ∂(Σ_t ℓ_t)/∂W (linearity of the derivative).
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import time

import sympy as sp

from ..form import ir
from ..form.indexform import NotApplicable, applications_as_entries, diff_entry, is_zero
from ..form.shapes import IllTyped, Typer, is_scalar_shape, same, with_indices
from .allsizes import Entries, block_pairs
from .verdicts import INCONCLUSIVE, PROVED, Outcome

METHOD = "all T (recurrence)"
MAX_REACH = 4            # steps a claim may read ahead or behind (each is a case of its own)
BUDGET = 8.0             # seconds; checked between rounds of opening definitions
MAX_OPEN = 4             # quantities opened one at a time (the latest first) before opening them all
# The offset of step T from a generic step t far from T: past every step the equations open, so a loss at
# step T (a many-to-one network's) has no term there and reaches them through what later steps pass back.
FAR = 10 ** 6


class Loss:
    """A scalar loss as the adjoint equations see it: a per-step term summed over steps lo..hi.

    lo, hi: an offset from the claim's step t, or None for the first step (lo) and T (hi).
    An abstract loss (declared, not defined) has no term but given gradients {quantity: gradient name}.
    """

    def __init__(self, body: ir.Expr | None, lo=None, hi=None, given: dict | None = None, name: str = ""):
        self.body, self.lo, self.hi, self.given = body, lo, hi, given or {}
        text = repr((body, lo, hi, sorted(self.given.items()), name if body is None else ""))
        self.key = "L" + hashlib.sha1(text.encode()).hexdigest()[:6]
        # What the steps past t + K pass back depends on the terms from there to hi only: two losses that
        # differ in lo alone share it (the claim's K is at least lo - 1, see `prove`).
        future = repr((body, hi, sorted(self.given.items()), name if body is None else ""))
        self.future_key = "L" + hashlib.sha1(future.encode()).hexdigest()[:6]

    def covers(self, o) -> bool:
        return (self.lo is None or o >= self.lo) and (self.hi is None or o <= self.hi)


def _rename_step(e: ir.Expr, var: str, to: str = "t") -> ir.Expr:
    """The body of a sum over `var`, written with the step variable `to`."""
    if var == to:
        return e

    def ref(n):
        if n.time is not None and n.time.var == var:
            return ir.Ref(n.name, ir.Time(to, n.time.offset), span=n.span)
        return n

    def fix(n):
        if isinstance(n, ir.Ref):
            return ref(n)
        if isinstance(n, ir.StepIf):
            return n.renamed(lambda s: ir.Time(to, s.offset) if s.var == var else s)
        if isinstance(n, ir.Component):                      # the index is not a child: (p_s)_{y_s}
            return ir.Component(n.arg, ref(n.index), span=n.span)
        if isinstance(n, ir.Basis):
            return ir.Basis(ref(n.index), n.style, span=n.span)
        return n
    return ir.transform(e, fix)


def _sum_body(e: ir.Expr):
    """(body at step t, lo) of Σ_{var=lo}^{T} body written with a scale (-Σ, c Σ) outside; else None.

    The body must read quantities at its own step only (a term that also read h_{t-1} would use h_s in
    two terms, which the direct term of the equations does not count)."""
    if isinstance(e, ir.Neg):
        inner = _sum_body(e.arg)
        return None if inner is None else (ir.Neg(inner[0]), inner[1])
    if isinstance(e, ir.MatMul) and isinstance(e.left, ir.Number):
        inner = _sum_body(e.right)
        return None if inner is None else (ir.MatMul(e.left, inner[0]), inner[1])
    if isinstance(e, ir.Sum) and e.hi == ir.Time("T"):
        if any(r.time is not None and r.time != ir.Time(e.var) for r in ir.refs(e.body)):
            return None
        return _rename_step(e.body, e.var), e.lo
    return None


class Steps(Entries):
    """Index forms at a step t of a context through time, at one position (d0 = t - 1, d1 = T - t).

    d0 or d1 None: far from the start or the end (the generic case).  Steps are offsets from t.
    """

    def __init__(self, ctx: ir.Context, d0, d1, floor: int, K: int, K_lo: int = 0):
        super().__init__(ctx)
        self.fixed = None
        self.env = {"t": 0}
        self.d0, self.d1, self.floor, self.K, self.K_lo = d0, d1, floor, K, K_lo
        self.ceiling = K                # forward quantities are opened at steps floor..ceiling only
        # The cases' reach (prove): "far from T" (d1 None) is every d1 > reach, "far from 1" every d0 >= reach_back;
        # None while the first look gathers them.  A condition between steps is decided only within them.
        self.reach = self.reach_back = None
        self.recording = True          # the steps the claim itself reads (not the local Jacobians')
        self.read: set = set()         # offsets the expressions read
        self.adjoint_offsets: set = set()
        self.nodes: dict = {}          # IndexedBase of a forward quantity at a step -> (name, offset)
        self.adjoints: dict = {}       # IndexedBase of an adjoint -> (loss, name, offset)
        # IndexedBase of a Jacobian kept whole (both directions) -> (of, its step, wrt, its step); `subject`:
        # those the left-hand side reads, opened first (`_open_jacobians`)
        self.jacobians: dict = {}
        self.subject: set = set()
        self._paths = None
        self.losses: dict = {}
        self.layout = _Layout(ctx)

    # ---------------------------------------------------------------- steps

    def step(self, time):
        if time is None:
            return None
        if time.var is None:
            if self.d0 is None:
                raise NotApplicable("an absolute step in a claim about a generic step")
            return time.offset - 1 - self.d0
        if time.var == "T":
            if self.d1 is None:
                raise NotApplicable("a step counted from T in a claim about a generic step")
            return self.d1 + time.offset
        return self.env[time.var] + time.offset

    def _StepIf(self, e: ir.StepIf, i, j):
        return sp.Integer(1 if ir.STEP_RELATIONS[e.relation](self.step_difference(e.left, e.right), 0) else 0)

    def step_difference(self, a: ir.Time, b: ir.Time) -> int:
        """a - b at this position, or a number of its sign where the position leaves it open.

        Each case decides it: t + x against T + y differ by x - y - d1, and "far from T" (d1 None) is every
        d1 > the claim's reach, which counts x - y as a step the claim reads; t + x against a step c differ by
        1 + d0 + x - c, and "far from 1" is every d0 >= the reach back, which counts x - c."""
        def split(time):                        # ("t", offset from t) | ("T", offset) | (None, step)
            if time.var in (None, "T"):
                return time.var, time.offset
            if time.var not in self.env:
                raise NotApplicable(f"a condition on the step {time.var}")
            return "t", self.env[time.var] + time.offset
        (ka, xa), (kb, xb) = split(a), split(b)
        if ka == kb:
            return xa - xb
        if ka != "t" and kb == "t":
            return -self.step_difference(b, a)
        if ka == "t":
            if self.recording:
                self.read.add(xa - xb)
            far = self.d1 is None if kb == "T" else self.d0 is None
            if far and (self.reach if kb == "T" else self.reach_back) is not None and \
                    (xa - xb > self.reach if kb == "T" else xa - xb < -self.reach_back):
                # (a condition met only beyond the cases, 1[t = 3] 1[t = T - 3] at T = 6: no case has it)
                raise NotApplicable("a condition between steps farther from an end than the cases reach")
            if kb == "T":
                return -1 if self.d1 is None else xa - xb - self.d1
            return 1 if self.d0 is None else 1 + self.d0 + xa - xb
        if self.d0 is None or self.d1 is None:           # T against a fixed step, far from one end
            raise NotApplicable("a condition between T and a fixed step, away from the ends")
        T = 1 + self.d0 + self.d1
        return (T + xa - xb) if ka == "T" else (xa - T - xb)

    def inside(self, o) -> bool:
        return (self.d0 is None or o >= -self.d0) and (self.d1 is None or o <= self.d1)

    def initial(self, o) -> bool:
        return self.d0 is not None and o == -self.d0 - 1

    def is_view(self, name) -> bool:
        d = self.ctx.definitions.get(name)
        return d is not None and isinstance(d.expr, ir.Block) and d.target.time is not None

    def node(self, name, o):
        base = sp.IndexedBase(f"{name}@{o:+d}")
        self.nodes[base] = (name, o)
        return base

    # ---------------------------------------------------------------- quantities

    def ref(self, e: ir.Ref, i, j):
        ctx, name = self.ctx, e.name
        o = self.step(e.time)
        decl = ctx.declarations.get(name)
        definition = ctx.definitions.get(name)
        if decl is not None and decl.kind == "index":
            raise IllTyped(f"{name} is an index, not a matrix")
        if o is not None:
            if self.recording:
                self.read.add(o)
            notation = decl is None and definition is not None and definition.notation
            if not self.inside(o) and not notation:       # a name for a derivative is its definition anywhere
                if self.initial(o) and (name + "_0") in ctx.declarations:
                    return sp.IndexedBase(f"{name}_0")[i, j]
                return sp.Integer(0)
        if decl is not None and decl.kind == "matrix" and (definition is None or definition.notation):
            if definition is None and self._abstract_name(name):
                raise NotApplicable(f"the loss {name} used as a value")
            return self.symbol(name, o)[i, j]
        if definition is None:
            raise IllTyped(f"{name} is neither declared nor defined")
        if definition.notation or o is None or name in self.layout.derived:
            # A name for a derivative (or for an expression with one), or a quantity without steps (a stacked
            # weight): its definition.
            return self.at_step(definition, o, lambda: self.entry(definition.expr, i, j))
        return self.node(name, o)[i, j]     # a forward quantity is a symbol, opened later when needed

    def symbol(self, name, step):
        if step is None:
            return sp.IndexedBase(name)
        return sp.IndexedBase(f"{name}@{step:+d}")

    def _abstract_name(self, name) -> bool:
        decl = self.ctx.declarations.get(name)
        return decl is not None and name not in self.ctx.definitions and is_scalar_shape(decl.shape)

    def _index(self, ref: ir.Ref):
        decl = self.ctx.declarations[ref.name]
        o = self.step(ref.time)
        if o is not None and not self.inside(o):
            raise IllTyped(f"the index {ref.name} has no value at a step outside 1..T")
        sym = sp.Symbol(ref.name if o is None else f"{ref.name}@{o:+d}", integer=True, nonnegative=True)
        self.ranges[sym] = decl.shape[0]
        return sym

    def _Sum(self, e, i, j):
        raise NotApplicable("a sum over steps inside a term")

    def blocks(self, e: ir.Expr):
        """As Entries.blocks, and through a sum over the steps: Σ_t a_t [x_t^T  h_{t-1}^T] is a row of sums."""
        if isinstance(e, ir.Sum):
            grid = super().blocks(e.body)
            return None if grid is None else [[ir.Sum(e.var, e.lo, e.hi, x, e.short) for x in row] for row in grid]
        return super().blocks(e)

    # ---------------------------------------------------------------- derivatives

    def loss(self, of: ir.Expr) -> tuple[Loss, int | None]:
        """The loss a derivative is taken of: (Loss, the offset of its step or None)."""
        if not isinstance(of, ir.Ref):
            raise NotApplicable("a derivative of an expression")
        ctx, name = self.ctx, of.name
        definition = ctx.definitions.get(name)
        decl = ctx.declarations.get(name)
        if of.time is None:
            if definition is None:
                if decl is None or not is_scalar_shape(decl.shape):
                    raise NotApplicable(f"a derivative of {name}")
                return Loss(None, given=self.given(name), name=name), None
            if definition.notation or not is_scalar_shape(self.shape(of)):
                raise NotApplicable(f"a derivative of {name}")
            found = _sum_body(definition.expr)
            if found is None or found[1] != ir.Time(None, 1):
                raise NotApplicable(f"{name} is not a sum over the steps 1..T")
            return Loss(found[0]), None
        o = FAR if (of.time.var == "T" and of.time.offset == 0 and self.d1 is None) else self.step(of.time)
        if definition is None or definition.notation or not is_scalar_shape(self.shape(of)):
            raise NotApplicable(f"a derivative of {name} at a step")
        var = definition.target.time.var
        suffix = _sum_body(definition.expr)
        if suffix is not None and suffix[1] == ir.Time(var, 0):
            return Loss(_rename_step(suffix[0], "t"), lo=o, hi=None), o     # the loss from step t to T
        if any(isinstance(n, ir.Sum) for n in definition.expr.walk()) or any(
                r.time is not None and r.time != ir.Time(var) for r in ir.refs(definition.expr)):
            raise NotApplicable(f"{name}_t reads other steps than its own")
        shifted = _rename_step(definition.expr, var) if var != "t" else definition.expr
        return Loss(shifted, lo=o, hi=o), o                                  # one step's term

    def jacobian(self, e: ir.Deriv, i, j):
        """Entry [i, j] of ∂a_s/∂b_r of columns (denominator layout: ∂a_s[j]/∂b_r[i]).

        Total through every quantity from step r on; with the context's reading "earlier steps held
        fixed" (docs/derivation-format.md), through the quantities from step s on only.
        """
        of, wrt = e.of, e.wrt
        if (isinstance(of, ir.Ref) and isinstance(wrt, ir.Ref) and of.time is not None and wrt.time is None
                and of.name in self.ctx.definitions and _is_weight(self.ctx, wrt)
                and self.layout.step_local(self.ctx, wrt.name)):
            return self.local_jacobian(of, wrt, i, j)
        if not (isinstance(of, ir.Ref) and isinstance(wrt, ir.Ref) and of.time is not None
                and wrt.time is not None and of.name in self.ctx.definitions):
            raise NotApplicable("a Jacobian other than of a quantity at a step with respect to one at a step")
        # Only a backward direction (b_t reads b_{t+1}, nothing reads an earlier step): a quantity depends on its
        # own step and later ones only, and the walk below follows the definitions toward later steps instead.
        backward = bool(self.layout.prev_step) and not self.layout.next_step
        if self.is_view(wrt.name) or self.is_view(of.name):
            raise NotApplicable("a Jacobian of a block-matrix view")
        s, r = self.step(of.time), self.step(wrt.time)
        if self.recording:
            self.read.update((s, r))
        if self.layout.prev_step and not backward:
            # With both directions a quantity depends on earlier and later steps: the forward-mode walk below,
            # which follows definitions one way, would miss paths (f_t on b_t through f_{t-1}, b_{t-1}, ...).
            # The Jacobian is kept whole, a symbol opened one level at a time by its forward equation.
            if self.ctx.held_fixed:
                raise NotApplicable("a Jacobian with earlier steps held fixed, in a context with both directions")
            return self.whole_jacobian(of.name, s, wrt.name, r, i, j)
        if not self.inside(s) or not (self.inside(r) or self.initial(r)):
            return sp.Integer(0)
        if backward:
            if r < s or not self.inside(r):
                return sp.Integer(0)   # nothing depends on an earlier step
            var = (self.node(wrt.name, r) if wrt.name in self.ctx.definitions
                   else self.symbol(wrt.name, r))[i, sp.Integer(0)]
            return self.tangent(self.local(of.name, s, j, sp.Integer(0)), var, s, highest=r)
        if r > s:
            return sp.Integer(0)       # forward directions only (above): nothing depends on a later step
        defined = wrt.name in self.ctx.definitions and self.inside(r)
        var = (self.node(wrt.name, r) if defined else sp.IndexedBase(f"{wrt.name}_0") if not self.inside(r)
               else self.symbol(wrt.name, r))[i, sp.Integer(0)]
        lowest = s if self.ctx.held_fixed else r
        return self.tangent(self.local(of.name, s, j, sp.Integer(0)), var, lowest)

    def local_jacobian(self, of: ir.Ref, wrt: ir.Ref, i, j):
        """Entry [i, j] of ∂a_s/∂c for a column c without steps whose every use stays within its step (a bias
        of a read-out, o_t := c + V h_t): only the uses at step s reach a_s, so forward mode through the
        quantities of step s alone is the total derivative (Deep Learning 10.22's (∂o^{(t)}/∂c)^T)."""
        if self.layout.prev_step:
            raise NotApplicable("a Jacobian in a context with a backward direction")
        if self.is_view(of.name):
            raise NotApplicable("a Jacobian of a block-matrix view")
        _, cols = self.shape(wrt)
        if cols != 1:
            raise NotApplicable("a Jacobian with respect to a matrix")
        s = self.step(of.time)
        if self.recording:
            self.read.add(s)
        if not self.inside(s):
            return sp.Integer(0)
        var = self.symbol(wrt.name, None)[i, sp.Integer(0)]
        return self.tangent(self.local(of.name, s, j, sp.Integer(0)), var, s)

    def _wrt_entry(self, wrt: str, r: int, i):
        """Entry [i, 0] of the quantity differentiated with respect to, in the symbols `local` writes."""
        if not self.inside(r):
            return sp.IndexedBase(f"{wrt}_0")[i, sp.Integer(0)]          # a declared initial state
        if wrt in self.ctx.definitions:
            return self.node(wrt, r)[i, sp.Integer(0)]
        return self.symbol(wrt, r)[i, sp.Integer(0)]

    def whole_jacobian(self, of: str, s: int, wrt: str, r: int, i, j):
        """Entry [i, j] of ∂of_s/∂wrt_r (denominator layout) as one symbol, where a step outside 1..T or an
        input other than wrt_r gives zero and wrt_r itself the identity."""
        if not self.inside(s):
            return sp.Integer(0)                  # a quantity at a step outside 1..T is a constant zero
        if not (self.inside(r) or (self.initial(r) and (wrt + "_0") in self.ctx.declarations)):
            return sp.Integer(0)
        if of == wrt and s == r:
            return sp.KroneckerDelta(i, j)
        for name in (of, wrt):                    # a name for a derivative, a loss from a step on, a view
            if name in self.ctx.definitions and name not in self.layout.sequences:
                raise NotApplicable(f"a Jacobian of or with respect to {name}, which is not a forward sequence")
        if of not in self.ctx.definitions:
            return sp.Integer(0)                  # an input (x_s): depends on nothing
        if not self.may_depend(of, s, wrt, r):
            return sp.Integer(0)
        for name in (of, wrt):
            if name in self.ctx.definitions and not same(self.shape(ir.Ref(name, ir.Time("t")))[1], 1):
                raise NotApplicable("a Jacobian of a matrix")
        base = sp.IndexedBase(f"J:{of}@{s:+d}/{wrt}@{r:+d}")
        self.jacobians[base] = (of, s, wrt, r)
        if self.recording:
            self.subject.add(base)
        return base[i, j]

    def may_depend(self, of: str, s: int, wrt: str, r: int) -> bool:
        """Can of_s depend on wrt_r at all?  A path of definitions from of to wrt (each read at the step before,
        its own or the next), with a read of an earlier step on it if r < s and of a later one if r > s: b_t
        reads b_{t+1} and x_t only, so nothing of f and no b_{t-1} reaches it."""
        if self._paths is None:
            edges = {}
            for c in self.layout.sequences:
                d = self.ctx.definitions[c]
                edges[c] = {(x.name, x.time.offset - d.target.time.offset) for x in _reads(self.ctx, d.expr)
                            if x.time is not None}
            paths = set()                         # (from, to, a read of an earlier step on it, of a later one)
            todo = [(c, n, lag < 0, lag > 0) for c in edges for n, lag in edges[c]]
            while todo:
                p = todo.pop()
                if p in paths:
                    continue
                paths.add(p)
                c, n, back, ahead = p
                todo += [(c, m, back or lag < 0, ahead or lag > 0) for m, lag in edges.get(n, ())]
            self._paths = paths
        return any(c == of and n == wrt and (r >= s or back) and (r <= s or ahead)
                   for c, n, back, ahead in self._paths)

    def open_jacobian(self, base, i, j):
        """Entry [i, j] of a whole Jacobian by its forward equation, one level: ∂of_s/∂w_r = Σ over what of_s's
        definition reads, (∂c/∂w_r)(∂of_s/∂c)|local, with c = w_r read directly giving its local derivative."""
        of, s, wrt, r = self.jacobians[base]
        expr = self.local(of, s, j, sp.Integer(0))
        var = self._wrt_entry(wrt, r, i)
        out = diff_entry(expr, var)
        for b in {x.base for x in expr.atoms(sp.Indexed) if x.base in self.nodes and x.base != var.base}:
            name, o = self.nodes[b]
            rows, cols = self.shape(ir.Ref(name, ir.Time("t")))
            if not same(cols, 1):
                raise NotApplicable("a Jacobian through a matrix")
            m, dm = self.dummy(rows, "m")
            outer = diff_entry(expr, b[m, sp.Integer(0)])
            if outer == 0:
                continue
            inner = self.unrecorded(lambda name=name, o=o, m=m: self.whole_jacobian(name, o, wrt, r, i, m))
            if inner != 0:
                out += self.summed(outer * inner, dm)
        # f_s[j] where its definition's value tanh(...) reappears in the derivative (1 - tanh(...)^2): the same
        # value, in the symbol a line writes (1 - f_t^2), so that the sides can meet before anything is opened
        return out.xreplace({expr: self.node(of, s)[j, sp.Integer(0)]}) if expr.is_Function else out

    def tangent(self, expr, var, lowest: int, highest: int | None = None):
        """d expr / d var through every quantity at a step from `lowest` on (forward mode, in index form).

        expr is in quantity symbols (as `local` writes a definition); each quantity B it reads that may
        depend on var contributes Σ_mn ∂expr/∂B[m, n] · d B[m, n]/d var, B's definition opened one level
        in the same form.  The result is in the same symbols as the adjoint equations' local Jacobians.
        highest: the walk of a backward direction, through the quantities at steps lowest..highest (var's step).
        """
        out = diff_entry(expr, var)
        _, at = self.nodes.get(var.base, (None, None))
        for base in {x.base for x in expr.atoms(sp.Indexed) if x.base in self.nodes and x.base != var.base}:
            name, o = self.nodes[base]
            if highest is not None:
                if o < lowest or o > highest or not self.inside(o):
                    continue
            elif o < lowest or (at is not None and o < at) or not self.inside(o):
                continue
            rows, cols = self.shape(ir.Ref(name, ir.Time("t")))
            m, dm = self.dummy(rows, "m")
            n, dn = self.dummy(cols, "n")
            outer = diff_entry(expr, base[m, n])
            if outer == 0:
                continue
            inner = self.tangent(self.local(name, o, m, n), var, lowest, highest)
            if inner != 0:
                out += self.summed(self.summed(outer * inner, dn), dm)
        return out

    def _Deriv(self, e: ir.Deriv, i, j):
        wrt = e.wrt
        if not isinstance(wrt, ir.Ref):
            raise NotApplicable("a derivative with respect to an expression")
        if not is_scalar_shape(self.shape(e.of)):
            return self.jacobian(e, i, j)
        loss, at = self.loss(e.of)
        if at is not None and not self.inside(at):
            return sp.Integer(0)             # a quantity at a step outside 1..T is a constant zero
        decl = self.ctx.declarations.get(wrt.name)
        definition = self.ctx.definitions.get(wrt.name)
        if wrt.time is None:
            if at is not None and at != FAR and self.ctx.held_fixed and _is_weight(self.ctx, wrt):
                return self.uses_from(loss, wrt.name, i, j, at)
            if at is not None and at != FAR and loss.lo == loss.hi == at and _is_weight(self.ctx, wrt) \
                    and self.layout.step_local(self.ctx, wrt.name):
                # ∂ℓ_t/∂W of one step's loss, where W's uses reach no later step (a read-out W_hy): the uses
                # at earlier steps do not reach ℓ_t, so the total derivative is the use at step t.
                return self.weight_gradient(loss, wrt.name, i, j, at)
            raise NotApplicable("a derivative with respect to a quantity without steps (a sum over t)")
        if definition is not None and definition.notation:
            raise IllTyped(f"{wrt.name} names a derivative; differentiate with respect to a quantity")
        if self.is_view(wrt.name):
            raise NotApplicable("a derivative with respect to a block-matrix view (its blocks are read instead)")
        o = self.step(wrt.time)
        if self.recording:
            self.read.add(o)
        if not self.inside(o):
            if not (self.initial(o) and (wrt.name + "_0") in self.ctx.declarations):
                return sp.Integer(0)
        elif decl is not None and definition is None and not decl.sequence:
            raise NotApplicable(f"{wrt.name} has no steps")
        return self.adjoint(loss, wrt.name, o)[i, j]

    def adjoint(self, loss: Loss, name: str, o: int):
        base = sp.IndexedBase(f"∂{loss.key}/∂{name}@{o:+d}")
        self.adjoints[base] = (loss, name, o)
        self.losses[loss.key] = loss
        self.adjoint_offsets.add(o)
        return base

    # ---------------------------------------------------------------- the adjoint equations

    def local(self, consumer: str, at: int, a, b):
        """Entry [a, b] of a consumer's definition at a step, every quantity a symbol."""
        d = self.ctx.definitions[consumer]
        return self.unrecorded(lambda: self.at_step(d, at, lambda: self.entry(d.expr, a, b)))

    def unrecorded(self, compute):
        """compute() without adding to the steps the claim reads (a local Jacobian's reads are not the claim's)."""
        saved, self.recording = self.recording, False
        try:
            return compute()
        finally:
            self.recording = saved

    def contract(self, loss: Loss, consumer: str, at: int, var, i, j):
        """Σ_ab ∂ℓ/∂consumer_at[a, b] · ∂consumer_at[a, b]/∂var[i, j]."""
        rows, cols = self.shape(ir.Ref(consumer, ir.Time("t")))
        a, da = self.dummy(rows, "a")
        b, db = self.dummy(cols, "b")
        local = diff_entry(self.local(consumer, at, a, b), var)
        if local == 0:
            return sp.Integer(0)
        return self.summed(self.summed(self.adjoint(loss, consumer, at)[a, b] * local, db), da)

    def direct(self, loss: Loss, name: str, o: int, var):
        """The loss's own use of a quantity at step o (its term at o), entry var."""
        if not self.inside(o) or not loss.covers(o):
            return sp.Integer(0)
        if loss.body is None:
            g = loss.given.get(name)
            if g is None:
                return sp.Integer(0)
            return self.symbol(g, o if self.ctx.declarations[g].sequence else None)[var.indices]
        saved = dict(self.env)
        self.env["t"] = o
        try:
            term = self.unrecorded(lambda: self.entry(loss.body, sp.Integer(0), sp.Integer(0)))
        finally:
            self.env = saved
        return diff_entry(term, var)

    def equation(self, loss: Loss, name: str, o: int, i, j):
        """Entry [i, j] of ∂ℓ/∂name_o by the adjoint equation (adjoints at o and o + 1; G past t + K)."""
        if not self.inside(o) and not self.initial(o):
            return sp.Integer(0)
        var = (sp.IndexedBase(f"{name}_0") if not self.inside(o) else self.node(name, o) if
               name in self.ctx.definitions else self.symbol(name, o))[i, j]
        out = sp.Integer(0)
        if self.inside(o):
            out += self.direct(loss, name, o, var)
            for c in self.layout.same_step.get(name, ()):
                out += self.contract(loss, c, o, var, i, j)
        later = self.layout.next_step.get(name, ())
        future = self.d1 is None or o < self.d1
        if later and future and (loss.hi is None or o < loss.hi):
            if o < self.K:
                for c in later:
                    out += self.contract(loss, c, o + 1, var, i, j)
            else:
                # What steps past t + K pass back to name_{t+K}: one opaque symbol per quantity.
                out += sp.IndexedBase(f"G{loss.future_key}/{name}@{o:+d}")[i, j]
        earlier = self.layout.prev_step.get(name, ())
        past = self.d0 is None or o > -self.d0                     # the step o - 1 exists
        if earlier and past:
            if loss.lo is not None:
                raise NotApplicable("a loss from a step on, in a context with a backward direction")
            if o > self.K_lo:
                for c in earlier:
                    out += self.contract(loss, c, o - 1, var, i, j)
            else:
                # What steps before t + K_lo pass back through the backward direction.
                out += sp.IndexedBase(f"B{loss.future_key}/{name}@{o:+d}")[i, j]
        return out

    def expand(self, e):
        """Open every adjoint up to step t + K by its equation, until none is left."""
        for _ in range(200):
            found = {x for x in e.atoms(sp.Indexed) if x.base in self.adjoints}
            if not found:
                return e
            table = {}
            for x in found:
                loss, name, o = self.adjoints[x.base]
                table[x] = self.equation(loss, name, o, *x.indices)
            e = e.xreplace(table)
        raise NotApplicable("the adjoint equations did not close")

    def weight_gradient(self, loss: Loss, name: str, i, j, at: int = 0):
        """Entry [i, j] of the uses at step t (+ at) of a weight W (∂ℓ/∂W is the sum of these over t)."""
        var = self.symbol(name, None)[i, j]
        out = self.direct(loss, name, at, var) if loss.body is not None else sp.Integer(0)
        for c in self.layout.sequences:
            out += self.contract(loss, c, at, var, i, j)
        return out

    def uses_from(self, loss: Loss, name: str, i, j, at: int):
        """Entry [i, j] of ∂ℓ_{t+at}/∂W with the steps before t + at held fixed (docs/derivation-format.md): the
        uses of W at steps t + at .. T.  Those up to t + K are opened; those past t + K are one opaque symbol,
        keyed like G by what the later steps pass back, so that ∂ℓ_t/∂W and ∂ℓ_{t+1}/∂W (losses that differ in
        their first step alone) share it: past t + K, where both losses cover every step (K >= lo - 1 of each),
        their adjoints are the same in a context without a backward direction."""
        if self.layout.prev_step:
            raise NotApplicable("the uses of a weight from a step on, in a context with a backward direction")
        out = sp.Integer(0)
        for o in range(at, self.K + 1):
            if self.inside(o) and (loss.hi is None or o <= loss.hi):
                out += self.weight_gradient(loss, name, i, j, o)
        beyond = max(at, self.K + 1)
        if (loss.hi is None or beyond <= loss.hi) and (self.d1 is None or beyond <= self.d1):
            out += sp.IndexedBase(f"U{loss.future_key}/{name}@{beyond:+d}")[i, j]
        return out

    def open_nodes(self, e, functions_only: bool = False, every: bool = False):
        """Forward quantities replaced by their definitions.

        functions_only: every quantity defined as a function of something (f_t := σ(f̂_t), p_t :=
        softmax(y_t)), repeated until none is left: the form the sides are compared in first (a Jacobian
        writes σ'(f̂) where a line writes f ∘ (1 - f)).  Otherwise the latest quantity present (the
        highest step, then the last in the step's order of definitions) at steps floor..ceiling, one
        level: opened in that order, both sides pass through the same forms and meet where they agree.
        """
        for _ in range(50):
            present = {}
            for x in e.atoms(sp.Indexed):
                if x.base in self.nodes:
                    name, o = self.nodes[x.base]
                    definition = self.ctx.definitions[name]
                    if functions_only and not isinstance(definition.expr, (ir.Apply, ir.Softmax)):
                        continue
                    if self.floor <= o <= self.ceiling and self.inside(o):
                        present.setdefault((o, self.layout.order.get(name, 0), name), []).append(x)
            if not present:
                return e
            chosen = present if functions_only or every else {max(present): present[max(present)]}
            table = {}
            for (o, _, name), xs in chosen.items():
                definition = self.ctx.definitions[name]
                for x in xs:
                    table[x] = self.at_step(definition, o, lambda d=definition, x=x: self.entry(d.expr, *x.indices))
            e = e.xreplace(table)
            if not functions_only:
                return e
        return e


class _Layout:
    """Who reads whom: for each quantity, the defined sequences that read it at their own step or the next."""

    def __init__(self, ctx: ir.Context):
        # A sequence defined as a block matrix (Z_t := [X_t; h_{t-1}]) is a view of its blocks, read through
        # them (Entries.blocks), not a quantity of its own.
        # A sequence defined by a sum over steps (the note's ℓ_t, the loss from step t to T) is a loss the
        # equations read through its terms (Loss), not a quantity of its own; nothing may read it.
        stepped = [n for n, d in ctx.definitions.items()
                   if not d.notation and d.target.time is not None and d.target.time.var is not None
                   and not isinstance(d.expr, ir.Block)]
        summed = {n for n in stepped if any(isinstance(x, ir.Sum) for x in ctx.definitions[n].expr.walk())}
        # A name for an expression with a derivative in it (δ_t := dh_t ∘ (1 - h_t^2)) is read as what it
        # stands for, like a name for a derivative: not a forward quantity, and nothing forward may read it.
        self.derived = {n for n in stepped if ir.has_derivative(ctx, ctx.definitions[n].expr)}
        self.sequences = [n for n in stepped if n not in summed and n not in self.derived]
        for n in self.sequences:
            if any(r.name in self.derived for r in ir.refs(ctx.definitions[n].expr)):
                raise NotApplicable(f"{n} reads a quantity defined with a derivative")
        for n, d in ctx.definitions.items():
            if not d.notation and any(r.name in summed for r in ir.refs(d.expr)):
                raise NotApplicable(f"{n} reads a quantity defined by a sum over steps")
        self.same_step: dict = {}
        self.next_step: dict = {}
        self.prev_step: dict = {}
        for n, d in ctx.definitions.items():
            if n in self.sequences or d.notation or isinstance(d.expr, ir.Block):
                continue
            # A quantity without steps that reads one at a step (m := W h_T, a pooled state) would be a
            # consumer the equations below do not have; a loss Σ_{t=1}^{T} (term at t) is the one exception.
            if (d.target.time is None and _sum_body(d.expr) is None
                    and any(r.time is not None for r in _reads(ctx, d.expr))):
                raise NotApplicable(f"{n} reads a quantity at a step")
        for c in self.sequences:
            d = ctx.definitions[c]
            var = d.target.time.var
            for r in _reads(ctx, d.expr):
                if r.time is not None and r.time.var != var:
                    raise NotApplicable(f"{c} reads {r.name} at a fixed step")
                if r.time is None:
                    continue
                lag = d.target.time.offset - r.time.offset
                if lag == 0:
                    self.same_step.setdefault(r.name, []).append(c)
                elif lag == 1:
                    self.next_step.setdefault(r.name, []).append(c)
                elif lag == -1:                                   # a backward direction: b_t := g(b_{t+1})
                    self.prev_step.setdefault(r.name, []).append(c)
                else:
                    raise NotApplicable(f"{c} reads {r.name} {lag} steps back")
        # The order of definitions within a step: a quantity after those it reads at its own step.
        self.order: dict = {}
        remaining = list(self.sequences)
        while remaining:
            ready = [c for c in remaining if not any(c in self.same_step.get(q, ()) for q in remaining if q != c)]
            if not ready:
                raise NotApplicable("definitions that read each other at the same step")
            for c in sorted(ready):
                self.order[c] = len(self.order)
                remaining.remove(c)
        for table in (self.same_step, self.next_step, self.prev_step):
            for k in table:
                table[k] = sorted(set(table[k]))


    def step_local(self, ctx: ir.Context, name: str) -> bool:
        """Does every use of `name` stay within its step (no path to a quantity another step reads)?"""
        users = [c for c in self.sequences if any(r.name == name for r in _reads(ctx, ctx.definitions[c].expr))]
        seen, todo = set(), list(users)
        while todo:
            q = todo.pop()
            if q in seen:
                continue
            seen.add(q)
            if self.next_step.get(q) or self.prev_step.get(q):
                return False
            todo += self.same_step.get(q, [])
        return True


def _reads(ctx: ir.Context, e: ir.Expr, seen=None):
    """The quantities at steps an expression reads, through definitions without steps (a stacked weight)."""
    seen = seen if seen is not None else set()
    for r in ir.refs(e):
        d = ctx.definitions.get(r.name)
        if r.time is None and d is not None and not d.notation and r.name not in seen:
            seen.add(r.name)
            yield from _reads(ctx, d.expr, seen)
        elif d is not None and isinstance(d.expr, ir.Block) and r.time is not None and d.target.time is not None:
            shift = r.time.offset - d.target.time.offset             # a view: what its blocks read, at r's step
            for x in _reads(ctx, d.expr, seen):
                yield x if x.time is None or x.time.var != d.target.time.var else \
                    ir.Ref(x.name, ir.Time(r.time.var, x.time.offset + shift))
        else:
            yield r


# ---------------------------------------------------------------- the claim's form

class _Weight:
    """∂loss/∂W of a weight W used at every step: the sum over t of its uses at t (uses_only: without the
    gradient an abstract loss gives W by name, which `_without_given` compares outside the sum)."""

    def __init__(self, of: ir.Expr, name: str, uses_only: bool = False):
        self.of, self.name, self.uses_only = of, name, uses_only


class _Given:
    """dU, the gradient an abstract loss gives a weight by name (dU ∈ ℝ^{H×H}, dU := ∂ℓ/∂U): a term outside
    the sum over the steps."""

    def __init__(self, name: str):
        self.name = name


def _given_name(ctx, name: str):
    """(loss, weight) when `name` is declared and defined as ∂ℓ/∂W of an abstract loss ℓ and a weight W."""
    d = ctx.definitions.get(name)
    if d is None or not d.notation or name not in ctx.declarations or ctx.declarations[name].sequence:
        return None
    of, wrt = d.expr.of, d.expr.wrt
    if isinstance(of, ir.Ref) and of.time is None and of.name not in ctx.definitions and _is_weight(ctx, wrt):
        return of, wrt.name
    return None


def _without_given(ctx, left: list, right: list) -> tuple[list, list]:
    """Both sides' sums over the steps with the given gradients of the weights taken out: ∂ℓ/∂U of an abstract
    loss is dU (its own use of U) plus the sum over t of U's uses, so ∂ℓ/∂U = dU + Σ_t (...) holds when the
    given terms are the same on both sides and the sums agree term by term."""
    def first(name):                      # gU and dU both := ∂ℓ/∂U: the first, as semantics.same_given
        key = _given_name(ctx, name)
        return next((n for n in ctx.definitions if key is not None and _given_name(ctx, n) == key), name)

    def split(parts):
        out, given = [], []
        for sign, x in parts:
            if isinstance(x, _Given):
                given.append((sign, first(x.name)))
                continue
            if isinstance(x, _Weight) and isinstance(x.of, ir.Ref):
                for n in ctx.definitions:
                    if _given_name(ctx, n) == (x.of, x.name):
                        given.append((sign, n))
                        x = _Weight(x.of, x.name, uses_only=True)
                        break
            out.append((sign, x))
        return out, given
    (left, a), (right, b) = split(left), split(right)
    if sorted(a) != sorted(b):
        raise NotApplicable("a given gradient of a weight on one side only")
    return left, right


def _is_weight(ctx, e) -> bool:
    if not isinstance(e, ir.Ref) or e.time is not None:
        return False
    d = ctx.declarations.get(e.name)
    return d is not None and d.kind == "matrix" and not d.sequence and e.name not in ctx.definitions


def _open_notation(ctx, e: ir.Expr) -> ir.Expr:
    """A name for a derivative without steps (dW := ∂ℓ/∂W) replaced by what it names."""
    def fix(n):
        if isinstance(n, ir.Ref) and n.time is None:
            d = ctx.definitions.get(n.name)
            if d is not None and d.notation and n.name not in ctx.declarations:
                return d.expr
        return n
    return ir.transform(e, fix)


def summands(ctx, e: ir.Expr) -> list:
    """A side that is a sum over every step, as [(sign, summand)]: a summand is an expression at step t
    or a _Weight; None when the side is not such a sum (then the claim is compared step by step)."""
    e = _open_notation(ctx, e)
    if isinstance(e, ir.Add):
        out = []
        for term in e.terms:
            part = summands(ctx, term)
            if part is None:
                return None
            out += part
        return out
    if isinstance(e, ir.Neg):
        part = summands(ctx, e.arg)
        return None if part is None else [(-s, x) for s, x in part]
    if isinstance(e, ir.Ref) and e.time is None and _given_name(ctx, e.name) is not None:
        return [(1, _Given(e.name))]
    if isinstance(e, ir.Deriv) and _is_weight(ctx, e.wrt) and not (isinstance(e.of, ir.Ref) and e.of.time is not None
                                                                   and e.of.time != ir.Time("T")):
        # ∂ℓ/∂W of the loss, or of a loss at the last step (ℓ_T): the sum over t of W's uses at t.
        return [(1, _Weight(e.of, e.wrt.name))]
    if isinstance(e, ir.Sum) and e.lo == ir.Time(None, 1) and e.hi == ir.Time("T"):
        body = _rename_step(e.body, e.var)
        if isinstance(body, ir.Deriv) and _is_weight(ctx, body.wrt) and isinstance(body.of, ir.Ref) \
                and body.of.time == ir.Time("t"):
            # Σ_t ∂ℓ_t/∂W = ∂(Σ_t ℓ_t)/∂W: the weight gradient of the loss whose term at t is ℓ_t.
            return [(1, _Weight(ir.Sum("t", ir.Time(None, 1), ir.Time("T"), body.of), body.wrt.name))]
        if any(isinstance(n, ir.Sum) for n in body.walk()):
            return None
        return [(1, body)]
    return None


def _value(ix: Steps, part, i, j):
    sign, x = part
    if isinstance(x, _Weight):
        if isinstance(x.of, ir.Sum):
            loss = Loss(x.of.body)
        else:
            loss, at = ix.loss(x.of)
            if at is not None and x.of.time != ir.Time("T"):
                raise NotApplicable("a per-step loss differentiated with respect to a weight")
            if loss.body is None and x.name in loss.given and not x.uses_only:
                # ℓ = <dW, W> + ...: a term outside the sum over steps, which term by term cannot compare.
                raise NotApplicable("a given gradient of a weight")
        return sign * ix.weight_gradient(loss, x.name, i, j)
    return sign * ix.entry(x, i, j)


def _at_last_step(parts) -> bool:
    """Is a sum over the steps only weight gradients of a loss at the last step (ℓ_T)?"""
    return all(isinstance(x, _Weight) and isinstance(x.of, ir.Ref) and x.of.time == ir.Time("T") for _, x in parts)


def _offsets(claim: ir.Claim, summed: bool = False) -> set:
    """The steps a claim reads; summed (compared term by term over t): not the step of a loss at T that a
    weight gradient is taken of (∂ℓ_T/∂W is a sum over every step)."""
    out = set()

    def visit(node):
        if summed and isinstance(node, ir.Deriv) and isinstance(node.of, ir.Ref) and node.of.time == ir.Time("T") \
                and isinstance(node.wrt, ir.Ref):
            # (inside a summand: ∂ℓ_T/∂h_t, the adjoint of the loss at T at the summand's step)
            visit(node.wrt)
            return
        if isinstance(node, ir.Ref) and node.time is not None:
            out.add(node.time)
        for c in node.children():
            visit(c)
    for side in (claim.lhs, claim.rhs):
        visit(side)
    return out


def _anchor(claim: ir.Claim, summed: bool):
    """Which of d0, d1 a claim fixes: a claim about step t fixes neither; h_0, h_1 only fix t = 1 (d0 = 0);
    h_T only fix t = T (d1 = 0)."""
    times = _offsets(claim, summed)
    vars_ = {t.var for t in times if not (summed and t.var not in (None, "T"))}
    if summed or "t" in {t.var for t in times}:
        # A line with a condition between steps (1[t = T] V^T (p_T - e_k)) reads a fixed step only where the
        # condition holds: each case evaluates it there, and a fixed step read away from it is NotApplicable
        # (Steps.step), so such a line is about step t.
        conditioned = not summed and any(isinstance(n, ir.StepIf) for side in (claim.lhs, claim.rhs)
                                         for n in side.walk())
        if any(t.var is None or t.var == "T" for t in times) and not conditioned:
            raise NotApplicable("a claim about step t that also reads a fixed step")
        return "t"
    if vars_ <= {None}:
        return "start"
    if vars_ <= {"T"}:
        return "end"
    raise NotApplicable("a claim reading steps from the start and from T")


def _difference(ix: Steps, lhs, rhs, i, j, summed):
    if summed is not None:
        left, right = summed
        return sum((_value(ix, p, i, j) for p in left), sp.Integer(0)) - \
            sum((_value(ix, p, i, j) for p in right), sp.Integer(0))
    left, right = ix.entry(lhs, i, j), ix.entry(rhs, i, j)
    ix.subject = {b for b in ix.subject if b in left.atoms(sp.IndexedBase)}     # the left-hand side's (_holds)
    return left - right


def _build(ctx, pair, summed, d0, d1, floor, K, K_lo=0, ceiling=None, reach_back=None):
    """(the index form, the difference of the two sides' entries [i, j]) at one position, adjoints unopened."""
    lhs, rhs = pair
    ix = Steps(ctx, d0, d1, floor, K, K_lo)
    ix.ceiling = max(K, ceiling if ceiling is not None else K)
    ix.reach, ix.reach_back = ceiling, reach_back
    ra, ca = ix.shape(lhs)
    i, j = ix.index("i", ra), ix.index("j", ca)
    return ix, _difference(ix, lhs, rhs, i, j, summed)


def _condition_offsets(pair) -> set:
    """The offsets Steps.step_difference reads for each condition between steps of the two sides: t + x against
    T + y or a step c reads x - y or x - c (a sum's variable stands for t, as its summands are compared)."""
    out = set()
    for side in pair:
        for n in side.walk():
            if not isinstance(n, ir.StepIf):
                continue
            a, b = (n.left, n.right) if n.left.var not in (None, "T") else (n.right, n.left)
            if a.var not in (None, "T") and b.var in (None, "T"):
                out.add(a.offset - b.offset)
    return out


def _zero(ix: Steps, d) -> bool:
    return is_zero(applications_as_entries(ix.binary_powers(d), ix.ranges), ix.ranges)


class OutOfTime(Exception):
    """The engine's own budget ran out between two rounds of opening (an answer would come too late)."""


def _opened_fully(ix: Steps, d):
    for _ in range(200):
        opened = ix.open_nodes(d, every=True)
        if opened == d:
            return d
        d = opened
    return d


def _open_jacobians(ix: Steps, d, which) -> sp.Expr:
    table = {x: ix.open_jacobian(x.base, *x.indices) for x in d.atoms(sp.Indexed) if x.base in which}
    return d.xreplace(table)


def _holds(ix: Steps, d, deadline: float = float("inf")) -> bool:
    """Is the difference zero once the adjoints are opened (and, if needed, the forward quantities)?

    Whole Jacobians (a context with both directions) are opened one level by their forward equation: first
    those of the left-hand side (a line that writes ∂f_t/∂b_t one level on, through ∂f_{t-1}/∂b_t, meets it
    there), then every one, once more; each is an identity, and what stays a symbol is any value at all."""
    if not any(x.base in ix.jacobians for x in d.atoms(sp.Indexed)):
        return _holds_as_is(ix, d, deadline)
    # (compared as they stand only when nothing opens: a side that reads the left-hand side's Jacobian itself
    # is opened alike)
    first = d
    for which in (set(ix.subject), set(ix.jacobians)):
        if time.perf_counter() > deadline:
            raise OutOfTime
        opened = _open_jacobians(ix, d, which)
        if opened == d:
            continue
        d = opened
        if _zero(ix, ix.expand(d)) or _holds_as_is(ix, d, deadline):
            return True
    return False if d != first else _holds_as_is(ix, d, deadline)


def _holds_as_is(ix: Steps, d, deadline: float = float("inf")) -> bool:
    d = ix.open_nodes(ix.expand(d), functions_only=True)
    if d.has(sp.Derivative, sp.Subs):
        raise NotApplicable("a second derivative of a generic function")
    if _zero(ix, d):
        return True
    for _ in range(MAX_OPEN):
        if time.perf_counter() > deadline:
            raise OutOfTime
        opened = ix.open_nodes(d)
        if opened == d:
            return False
        d = opened
        if _zero(ix, d):
            return True
    # Last: every quantity from floor to ceiling opened all the way down, one form for both sides.
    if time.perf_counter() > deadline:
        raise OutOfTime
    return _zero(ix, _opened_fully(ix, d))


def _is_through_time(ctx, claim) -> bool:
    """A derivative (or a name for one), a sum over the steps or a condition between steps: what the all-sizes
    engine leaves to others."""
    for side in (claim.lhs, claim.rhs):
        for n in side.walk():
            if isinstance(n, (ir.Deriv, ir.Sum, ir.StepIf)):
                return True
            if isinstance(n, ir.Ref) and n.name in ctx.definitions and ctx.definitions[n.name].notation:
                return True
    return False


def lift_last_step(ctx: ir.Context, claim: ir.Claim) -> tuple[ir.Context, ir.Claim]:
    """A quantity without steps that reads the sequences at step T only (p := softmax(V h_T), L := -log p_k:
    a many-to-one network) written as a sequence at step T (p_t := softmax(V h_t), read as p_T): the same
    values and the same total derivatives, in the form the equations read (a loss at one step)."""
    if ctx.held_fixed:
        return ctx, claim                 # ∂L_T/∂x would then hold the steps before T fixed: not the same
    last = ir.Time("T")
    lifted: set = set()
    changed = True
    while changed:
        changed = False
        for n, d in ctx.definitions.items():
            if n in lifted or d.notation or d.target.time is not None or isinstance(d.expr, ir.Block) \
                    or n in ctx.declarations or any(isinstance(x, ir.Sum) for x in d.expr.walk()):
                continue
            refs = ir.refs(d.expr)
            at_T = [r for r in refs if r.time == last or (r.time is None and r.name in lifted)]
            if at_T and all(r.time is None or r.time == last for r in refs):
                lifted.add(n)
                changed = True
    if not lifted:
        return ctx, claim

    def at(time_for_lifted, time_for_T):
        def fix(n):
            if isinstance(n, ir.Ref):
                if n.name in lifted and n.time is None:
                    return ir.Ref(n.name, time_for_lifted, span=n.span, sup=n.sup)
                if n.time == last and time_for_T is not None:
                    return ir.Ref(n.name, time_for_T, span=n.span, sup=n.sup)
            return n
        return lambda e: ir.transform(e, fix)
    inside, outside = at(ir.Time("t"), ir.Time("t")), at(last, None)
    definitions = {}
    for n, d in ctx.definitions.items():
        if n in lifted:
            definitions[n] = ir.Definition(ir.Ref(n, ir.Time("t")), inside(d.expr), d.source)
        else:
            definitions[n] = ir.Definition(d.target, outside(d.expr), d.source)
    new = dataclasses.replace(ctx, definitions=definitions, claims=[])
    return new, dataclasses.replace(claim, lhs=outside(claim.lhs), rhs=outside(claim.rhs))


def lift_per_step(ctx: ir.Context, claim: ir.Claim) -> tuple[ir.Context, ir.Claim]:
    """A claim about a per-step loss ℓ_t with a sum over the steps up to t (the total derivative of ℓ_t with
    respect to a weight, ∂ℓ_t/∂W = Σ_{s=1}^{t} (...)), read at t = T: the same claim.

    When every definition reads its own step or earlier ones (no backward direction, no sum over steps) and
    the claim reads nothing after step t -- weights, quantities at t or before, at s or before inside a sum
    over s = 1..t, derivatives of ℓ_t only, no name for a derivative (dh_t := ∂L/∂h_t reads every step) --
    every value the claim reads at step t of a sequence of T steps is its value in the same sequence cut after
    step t.  So the claim for every t ≤ T and every T is the claim at t = T for every T: the form the
    equations read, a loss at the last step and a sum over every step."""
    if ctx.held_fixed:
        return ctx, claim
    sides = (claim.lhs, claim.rhs)
    sums = [n for side in sides for n in side.walk() if isinstance(n, ir.Sum)]
    if not sums or any(x.lo != ir.Time(None, 1) or x.hi != ir.Time("t") for x in sums):
        return ctx, claim
    bound = {x.var for x in sums}
    if bound & {"t", "T"}:
        return ctx, claim
    for d in ctx.definitions.values():
        own = d.target.time
        if d.notation or own is None:
            continue
        if own.var is None or any(isinstance(x, ir.Sum) for x in d.expr.walk()):
            return ctx, claim
        if any(r.time is not None and (r.time.var != own.var or r.time.offset > own.offset) for r in ir.refs(d.expr)):
            return ctx, claim
        # a quantity without steps that reads the sequences (m := V h_T, Σ_t x_t) would read past step t
        if any(r.time is None and not _reads_no_step(ctx, r.name) for r in ir.refs(d.expr)):
            return ctx, claim
    for side in sides:
        for r in ir.refs(side):
            if r.time is None:
                if r.name in ctx.definitions or r.name not in ctx.declarations:
                    return ctx, claim
            elif (r.time.var not in {"t"} | bound or r.time.offset > 0
                  or r.name in ctx.definitions and ctx.definitions[r.name].notation):
                return ctx, claim
        for n in side.walk():
            if isinstance(n, ir.Deriv) and not (isinstance(n.of, ir.Ref) and n.of.time == ir.Time("t")
                                                and n.of.name in ctx.definitions
                                                and not ctx.definitions[n.of.name].notation):
                return ctx, claim

    def at_T(r: ir.Ref) -> ir.Ref:
        if r.time is not None and r.time.var == "t":
            return ir.Ref(r.name, ir.Time("T", r.time.offset), span=r.span, sup=r.sup)
        return r

    def fix(n):
        if isinstance(n, ir.Ref):
            return at_T(n)
        if isinstance(n, ir.Component):
            return ir.Component(n.arg, at_T(n.index), span=n.span)
        if isinstance(n, ir.Basis):
            return ir.Basis(at_T(n.index), n.style, span=n.span)
        if isinstance(n, ir.Sum) and n.hi == ir.Time("t"):
            return ir.Sum(n.var, n.lo, ir.Time("T"), n.body, n.short, span=n.span)
        return n
    return ctx, dataclasses.replace(claim, lhs=ir.transform(claim.lhs, fix), rhs=ir.transform(claim.rhs, fix))


def _reads_no_step(ctx: ir.Context, name: str, depth: int = 8) -> bool:
    """Is `name` declared, or defined (a name for a derivative excepted) through quantities without steps only?"""
    d = ctx.definitions.get(name)
    if d is None:
        return name in ctx.declarations and not ctx.declarations[name].sequence
    if d.notation or d.target.time is not None or depth == 0 or any(isinstance(x, ir.Sum) for x in d.expr.walk()):
        return False
    return all(r.time is None and _reads_no_step(ctx, r.name, depth - 1) for r in ir.refs(d.expr))


def _stacked_uses(ctx: ir.Context, e: ir.Expr, name: str, out: list) -> bool:
    """Collect the block columns W multiplies in e (W [h_{t-1}; x_t]); False if W is used otherwise."""
    if isinstance(e, ir.MatMul) and e.left == ir.Ref(name) and isinstance(e.right, ir.Block) \
            and len(e.right.rows) > 1 and all(len(row) == 1 for row in e.right.rows):
        out.append(e.right)
        return all(_stacked_uses(ctx, row[0], name, out) for row in e.right.rows)
    if isinstance(e, ir.Ref):
        return e.name != name
    return all(_stacked_uses(ctx, c, name, out) for c in e.children())


def split_stacked(ctx: ir.Context, claim: ir.Claim) -> tuple[ir.Context, ir.Claim]:
    """A weight that multiplies a stacked column only (W_f [h_{t-1}, x_t], Olah's LSTM) written as its column
    blocks, one per block of the column (W_f = [W_f⟨1⟩ W_f⟨2⟩], W_f [h; x] = W_f⟨1⟩ h + W_f⟨2⟩ x): the same
    values, and ∂ℓ/∂W_f is the block row [∂ℓ/∂W_f⟨1⟩  ∂ℓ/∂W_f⟨2⟩], compared block by block."""
    typer = Typer(ctx)
    parts = {}
    for name, decl in ctx.declarations.items():
        if decl.kind != "matrix" or decl.sequence or name in ctx.definitions or len(decl.shape) != 2:
            continue
        uses: list = []
        if not all(_stacked_uses(ctx, d.expr, name, uses) for d in ctx.definitions.values()) or not uses:
            continue
        try:
            heights = [tuple(typer.infer(row[0])[0] for row in block.rows) for block in uses]
        except IllTyped:
            continue
        first = heights[0]
        if any(len(h) != len(first) or not all(typer.eq(a, b) for a, b in zip(h, first)) for h in heights) \
                or sp.simplify(sum(sp.sympify(h) for h in first) - sp.sympify(decl.shape[1])) != 0:
            continue
        parts[name] = [f"{name}⟨{k}⟩" for k in range(1, len(first) + 1)]
        for part, height in zip(parts[name], first):
            ctx = dataclasses.replace(ctx, declarations={**ctx.declarations, part: ir.Declaration(
                part, "matrix", (decl.shape[0], height), source=decl.source)})
    if not parts:
        return ctx, claim

    def fix(n):
        if isinstance(n, ir.MatMul) and isinstance(n.left, ir.Ref) and n.left.name in parts \
                and n.left.time is None and isinstance(n.right, ir.Block):
            return ir.Add(tuple(ir.MatMul(ir.Ref(p), row[0], n.dot) for p, row in zip(parts[n.left.name], n.right.rows)))
        if isinstance(n, ir.Deriv) and isinstance(n.wrt, ir.Ref) and n.wrt.name in parts and n.wrt.time is None:
            return ir.Block(((*(ir.Deriv(n.of, ir.Ref(p)) for p in parts[n.wrt.name]),),))
        return n

    def whole(n):                          # W_f alone in a claim: its block row
        if isinstance(n, ir.Ref) and n.name in parts and n.time is None:
            return ir.Block((tuple(ir.Ref(p) for p in parts[n.name]),))
        return n
    definitions = {n: ir.Definition(d.target, ir.transform(d.expr, fix), d.source) for n, d in ctx.definitions.items()}
    ctx = dataclasses.replace(ctx, definitions=definitions,
                              declarations={n: d for n, d in ctx.declarations.items() if n not in parts})
    sides = [ir.transform(ir.transform(side, fix), whole) for side in (claim.lhs, claim.rhs)]
    return ctx, dataclasses.replace(claim, lhs=sides[0], rhs=sides[1])


def split_views(ctx: ir.Context, claim: ir.Claim) -> tuple[ir.Context, ir.Claim]:
    """A view Z_t := [x_t; h_{t-1}] that a claim differentiates with respect to (∂ℓ/∂Z_t) written as one
    sequence per block, Z⟨1⟩_t := x_t, Z⟨2⟩_t := h_{t-1}, each definition that reads Z_t reading [Z⟨1⟩_t;
    Z⟨2⟩_t] instead: the same values, and Z_t's own derivative (a change of Z_t reaches only what reads
    Z_t) is the column of its blocks' [∂ℓ/∂Z⟨1⟩_t; ∂ℓ/∂Z⟨2⟩_t], compared block by block."""
    def view(name):
        d = ctx.definitions.get(name)
        return d is not None and isinstance(d.expr, ir.Block) and d.target.time is not None \
            and d.target.time.var is not None and all(len(row) == 1 for row in d.expr.rows) and len(d.expr.rows) > 1
    wanted = {n.wrt.name for side in (claim.lhs, claim.rhs) for n in side.walk()
              if isinstance(n, ir.Deriv) and isinstance(n.wrt, ir.Ref) and n.wrt.time is not None and view(n.wrt.name)}
    if not wanted or ctx.held_fixed:
        return ctx, claim
    parts, definitions = {}, dict(ctx.definitions)
    for name in sorted(wanted):
        d = ctx.definitions[name]
        parts[name] = [f"{name}⟨{k}⟩" for k in range(1, len(d.expr.rows) + 1)]
        for part, row in zip(parts[name], d.expr.rows):
            definitions[part] = ir.Definition(ir.Ref(part, d.target.time), row[0], d.source)

    def stacked(ref: ir.Ref) -> ir.Block:
        return ir.Block(tuple((ir.Ref(p, ref.time),) for p in parts[ref.name]))

    def fix(n):                            # from the top: a derivative's Z_t is not read as its blocks
        if isinstance(n, ir.Deriv) and isinstance(n.wrt, ir.Ref) and n.wrt.name in parts and n.wrt.time is not None:
            return ir.Block(tuple((ir.Deriv(fix(n.of), ir.Ref(p, n.wrt.time)),) for p in parts[n.wrt.name]))
        if isinstance(n, ir.Ref) and n.name in parts and n.time is not None:
            return stacked(n)
        kids = n.children()
        return n.rebuild(tuple(fix(c) for c in kids)) if kids else n
    for n, d in ctx.definitions.items():
        if n not in parts and not d.notation:
            definitions[n] = ir.Definition(d.target, fix(d.expr), d.source)
    for n in parts:
        d = ctx.definitions[n]
        definitions[n] = ir.Definition(d.target, stacked(d.target), d.source)
    new = dataclasses.replace(ctx, definitions=definitions, claims=[])
    return new, dataclasses.replace(claim, lhs=fix(claim.lhs), rhs=fix(claim.rhs))


def prove(ctx: ir.Context, claim: ir.Claim) -> Outcome | None:
    """The structural verdict on a claim through time: PROVED for every size and T, INCONCLUSIVE, or None."""
    if not ctx.has_time or ctx.length is not None or not _is_through_time(ctx, claim):
        return None
    if with_indices(ctx, claim) is not ctx:
        return None                  # a line of entries (free entry indices): not read here
    original = (ctx, claim)
    ctx, claim = split_views(*split_stacked(*lift_last_step(*lift_per_step(*original))))
    sizes = [{str(s): str(s) for s in ctx.sizes()}]
    typer = Typer(ctx)
    try:
        a, b = typer.infer(claim.lhs), typer.infer(claim.rhs)
    except IllTyped:
        return None
    if not (same(a[0], b[0]) and same(a[1], b[1])):
        return None
    if _differs_at_numbers(*original):
        return Outcome(INCONCLUSIVE, METHOD, sizes, "the two sides differ at numbers (the explicit engine's quick "
                                                    "look), so there is nothing to prove")
    deadline = time.perf_counter() + BUDGET
    try:
        cases = 0
        for pair in block_pairs(Steps(ctx, None, None, 0, 0), claim):
            left, right = summands(ctx, pair[0]), summands(ctx, pair[1])
            if (left is None) != (right is None) and _at_last_step(left or right):
                left = right = None       # ∂ℓ_T/∂V = (p_T - e_k) h_T^T: compared at t = T as it is written
            if (left is None) != (right is None):
                raise NotApplicable("one side is a sum over the steps and the other is not")
            if left is not None and right is not None:
                left, right = _without_given(ctx, left, right)
            summed = (left, right) if left is not None else None
            anchor = _anchor(claim, summed is not None)
            start = 0 if anchor == "start" else None
            end = 0 if anchor == "end" else None
            # A first look at the generic step: how far back and ahead the claim reads and differentiates.
            look, _ = _build(ctx, pair, summed, start, end, 0, 0)
            K = max(look.adjoint_offsets | {lo.hi for lo in look.losses.values() if lo.hi is not None and lo.hi < FAR}
                    | {lo.lo - 1 for lo in look.losses.values() if lo.lo is not None and lo.lo < FAR} | {0})
            look.read |= _condition_offsets(pair)     # (a condition the first look skipped, behind a zero factor)
            floor = min(look.read | {0})
            K_lo = min(look.adjoint_offsets | {0})
            reach_back, reach = max(0, -floor), max(look.read | {K, 0})
            if look.layout.prev_step:
                reach_back += 1          # the step before t + K_lo exists or not: one case more
            if reach > MAX_REACH or reach_back > MAX_REACH:
                return Outcome(INCONCLUSIVE, METHOD, sizes, f"the line reads or compares steps "
                                                            f"{max(reach, reach_back)} away from t; this engine goes to "
                                                            f"{MAX_REACH}")
            d0s = [start] if anchor == "start" else [None, *range(reach_back)]
            d1s = [end] if anchor == "end" else [None, *range(reach + 1)]
            for d0, d1 in itertools.product(d0s, d1s):
                cases += 1
                if not _holds(*_build(ctx, pair, summed, d0, d1, floor, K, K_lo, reach, reach_back), deadline):
                    return Outcome(INCONCLUSIVE, METHOD, sizes,
                                   f"the adjoint equations do not reduce the difference to zero {_position(d0, d1)} "
                                   "(this engine never refutes; the explicit engine decides)")
    except (NotApplicable, IllTyped):
        return None
    except OutOfTime:
        return Outcome(INCONCLUSIVE, METHOD, sizes, f"stopped at this engine's budget of {BUDGET:g} s between two "
                                                    "rounds of opening definitions (the explicit engine decides)")
    return Outcome(PROVED, METHOD, sizes, "for every size and every T: both sides, with the adjoints opened by "
                                          "the reverse-mode equations at a step t, agree in index notation "
                                          f"({cases} cases: a generic step and the steps next to 1 and T)")


def _differs_at_numbers(ctx, claim) -> bool:
    """One point of one small shape, every quantity recomputed from random inputs: do the sides differ?

    A shortcut for wrong lines (opening their definitions would only grow); never part of a proof.
    """
    from . import explicit
    try:
        return explicit.quick_look(ctx, claim)
    except Exception:  # noqa: BLE001 - the explicit engine decides such a line on its own, and says why
        return False


def _position(d0, d1) -> str:
    parts = []
    if d0 is not None:
        parts.append("at t = 1" if d0 == 0 else f"at t = {d0 + 1}")
    if d1 is not None:
        parts.append("t = T" if d1 == 0 else f"t = T - {d1}")
    return ("at a generic step" if not parts else "at " + ", ".join(p.replace("at ", "") for p in parts))
