"""The right-hand side a gradient line should have, derived from the file's definitions.

Where it sits: a wrong line ∂ℓ/∂q = (author's formula) -> **the adjoint equation of q,
written in the intermediate form with the file's own names** (this module) -> proved
by the same engines as any claim (`repair.check`) -> shown as "the right-hand side is"
and used to guide the repair search (the terms and factors it has that the author's
line lacks).

The derivation is reverse mode on the intermediate form: ∂ℓ/∂q_s is the sum, over
every definition c that reads q (at its own step, the step before or after), of the
vector-Jacobian product of c's definition with the adjoint of c at the step that
reads q_s.  The adjoint of c is the file's name for it when it has one (dh_t for
∂ℓ/∂h_t), else its own equation opened (a quantity read by one definition only), else
∂ℓ/∂c written out.  A weight read at every step gets Σ_t; a softmax under the
cross-entropy -Σ_t log (p_t)_{k_t} gives p_t - e_{k_t}; an undefined loss adds the
gradient the file gives by name (dU); a Jacobian ∂c/∂q of a column is the same
products seeded with the identity, through the definitions that reach c, where every
factor is at c's step, and otherwise one level from c's side with the file's Jacobians
(∂b_{t+1}/∂b_{t+3}) U_b^T diag(1 - b_t^2), which holds at the ends of the sequence too
(`Deriver.jacobian_equation`).  A quantity read at one fixed step only (p := softmax(V h_T + c))
gives a term that exists at that step alone, with its condition: 1[t = T] V^T (p - e_k).  What
is not written here (a second derivative, a sum over steps inside a definition) gives no
derived line.  Nothing here is trusted: the
result is only shown when the engines prove (or, said so, check) `lhs = derived`.

A line about a value (f = ..., f a name the file defines as a forward quantity) gets the value instead
(`value_forms`): the members of the chain that defines it, the closest in form to the author's line first,
then the definition's right-hand side, each as the file writes it.

The file's notation is kept: diag(u) v where its statements write \\operatorname{diag},
u ∘ v (or ⊙) otherwise; tanh'(a) as 1 - h^2 and σ'(a) as h ∘ (1 - h) where h := tanh(a)
or σ(a) is defined; transposes pushed onto the factors (δ a^T, not (a δ^T)^T).
"""
from __future__ import annotations

from fractions import Fraction

from ..form import ir
from ..form.shapes import IllTyped, Typer, with_indices
from .spelling import normal_form, shift_steps, styles

ONE = ir.Number(Fraction(1))
# The seed of a Jacobian ∂c/∂q of a column c: the identity, which no statement writes; a product with it is
# its other factor and an element-wise product with it a diagonal matrix, so it never reaches a result.
IDENTITY = ir.Ref("\\mathbb{I}")


class Unsupported(Exception):
    """A form whose vector-Jacobian product is not written here: no derived right-hand side."""


# ---------------------------------------------------------------- the subject of a statement

def subject(ctx: ir.Context, e: ir.Expr):
    """(of, wrt) when `e` is a derivative ∂of/∂wrt of named quantities (a gradient or a Jacobian), or a name for
    one (dh_t := ∂ℓ/∂h_t, at e's step); None otherwise.  A sign or a transpose around it is looked through."""
    while isinstance(e, (ir.Neg, ir.Transpose)):
        e = e.arg
    if isinstance(e, ir.Deriv) and isinstance(e.of, ir.Ref) and isinstance(e.wrt, ir.Ref):
        return e.of, e.wrt
    if isinstance(e, ir.Ref):
        d = ctx.definitions.get(e.name)
        if d is not None and d.notation and isinstance(d.expr.of, ir.Ref) and isinstance(d.expr.wrt, ir.Ref):
            body = _at(d, e.time)
            if body is not None and isinstance(body.of, ir.Ref) and isinstance(body.wrt, ir.Ref):
                return body.of, body.wrt
    return None


def chain_subject(ctx: ir.Context, claim: ir.Claim):
    """(the subject, the derivative it is of) for a link b = c of a chain a = b = c whose left-hand side b is no
    derivative but is said equal to one, a, by the link before it (the Deep Learning book's 10.20-10.21: ∇_h L =
    (∂h'/∂h)^T ∇_{h'} L + ... = W^T ...); None otherwise.  Only what to derive: the derived line is b = derived,
    proved on its own like any (a wrong link a = b gives no proof of it)."""
    for before in ctx.claims:
        if before is claim or not before.group or before.group != claim.group or before.lhs is None \
                or before.rhs != claim.lhs or not isinstance(before.lhs, (ir.Deriv, ir.Ref)):
            continue
        sub = subject(ctx, before.lhs)
        if sub is not None:
            return sub, before.lhs
    return None


def _shift(e: ir.Expr, var: str, k: int) -> ir.Expr:
    return shift_steps(e, var, k)


def _at(d: ir.Definition, time: ir.Time | None):
    """The definition's body at `time` (its target's step moved there), or None when it cannot be placed."""
    target = d.target.time
    if target is None or target.var is None:
        return d.expr if time is None or target == time else None
    if time is None:
        return None
    if time.var is None:
        # an absolute step: write the body with the step variable replaced by a number
        return _absolute(d.expr, target.var, time.offset - target.offset)
    if time.var != target.var:
        return _rename(_shift(d.expr, target.var, time.offset - target.offset), target.var, time.var)
    return _shift(d.expr, target.var, time.offset - target.offset)


def _absolute(e: ir.Expr, var: str, step: int) -> ir.Expr:
    def fn(x):
        if isinstance(x, ir.Ref) and x.time is not None and x.time.var == var:
            return ir.Ref(x.name, ir.Time(None, step + x.time.offset), sup=x.sup)
        if isinstance(x, ir.StepIf):
            return x.renamed(lambda s: ir.Time(None, step + s.offset) if s.var == var else s)
        return x
    return ir.transform(e, fn)


def _rename(e: ir.Expr, var: str, new: str) -> ir.Expr:
    def fn(x):
        if isinstance(x, ir.Ref) and x.time is not None and x.time.var == var:
            return ir.Ref(x.name, ir.Time(new, x.time.offset), sup=x.sup)
        if isinstance(x, ir.StepIf):
            return x.renamed(lambda s: ir.Time(new, s.offset) if s.var == var else s)
        return x
    return ir.transform(e, fn)


# ---------------------------------------------------------------- style

def style_of(ctx: ir.Context) -> dict:
    st = dict(styles(ctx))
    diag = had = 0
    for c in ctx.claims:
        for side in (c.lhs, c.rhs):
            if side is None:
                continue
            for n in side.walk():
                diag += isinstance(n, ir.Diag)
                had += isinstance(n, ir.Hadamard)
    st["diag"] = diag > had
    # tanh' written as 1 - \tanh^2(x), as the file writes it, rather than \tanh'(x)
    st["tanh_squared"] = any(isinstance(n, ir.Power) and n.prefix and isinstance(n.arg, ir.Apply)
                             and n.arg.function == "tanh" for c in ctx.claims for side in (c.lhs, c.rhs)
                             if side is not None for n in side.walk())
    return st


# ---------------------------------------------------------------- the derivation

class Deriver:
    def __init__(self, ctx: ir.Context, loss: ir.Ref, depth: int = 2, jacobian: bool = False):
        self.ctx, self.loss, self.depth = ctx, loss, depth
        self.typer = Typer(ctx)
        self.style = style_of(ctx)
        # A Jacobian ∂c/∂q of a column c (denominator layout): the vector-Jacobian products with the identity
        # as the seed, through every definition that reaches c (others add nothing).
        self.jacobian = jacobian
        self.seed = IDENTITY if jacobian else ONE
        # A loss at a step (ℓ_t, ℓ_{t+2}): only the definitions that reach it count, and no name of the file
        # (dh_t := ∂L/∂h_t is another loss's) stands for its adjoints: ∂ℓ_t/∂h_s is written out.
        self.per_step = loss.time is not None and not jacobian
        # Quantities whose gradient the file's statements write out as ∂ℓ/∂q (no name of their own).
        self.written = {n.wrt.name for c in ctx.claims for side in (c.lhs, c.rhs) if side is not None
                        for n in side.walk() if isinstance(n, ir.Deriv) and n.of == loss and isinstance(n.wrt, ir.Ref)}

    # -- shapes
    def shape(self, e):
        try:
            return self.typer.infer(e)
        except IllTyped as err:
            raise Unsupported(str(err)) from err

    def scalar(self, e) -> bool:
        if IDENTITY in ir.refs(e):
            return False
        return self.typer.scalar(self.shape(e))

    def column(self, e) -> bool:
        if IDENTITY in ir.refs(e):
            return False
        s = self.shape(e)
        return self.typer.eq(s[1], 1)

    # -- building blocks in the file's notation
    def had(self, bar, factor):
        """bar ∘ factor (the adjoint first, as textbooks write dh_t ∘ o_t), or diag(factor) bar."""
        if factor == ONE:
            return bar
        if bar == IDENTITY:
            return ir.Diag(factor)
        if not self.column(bar):               # a Jacobian's rows scaled: diag(factor) J
            return ir.MatMul(ir.Diag(factor), bar, self.style["dot"])
        if self.style["diag"] and self.column(factor):
            return ir.MatMul(ir.Diag(factor), bar, self.style["dot"])
        return ir.Hadamard(bar, factor, self.style["op"])

    def mul(self, a, b):
        if a in (ONE, IDENTITY):
            return b
        if b in (ONE, IDENTITY):
            return a
        if isinstance(a, ir.Neg):
            return neg(self.mul(a.arg, b))
        if isinstance(b, ir.Neg):
            return neg(self.mul(a, b.arg))
        return ir.MatMul(a, b, self.style["dot"])

    def tr(self, e):
        return transpose(e, self.style["transpose"], self)

    def derivative(self, a: ir.Apply) -> ir.Expr:
        """f'(x), written through the defined value where the file defines h := tanh(x) or σ(x)."""
        if a.function == "relu":
            return ir.Apply("ind", a.arg)
        if a.derivative != 0 or a.function in ("ind",):
            raise Unsupported("a second derivative")
        if a.function == "exp":
            return a
        if a.function == "log":
            return ir.Div(ONE, a.arg)
        value = self.named_value(a)
        if value is not None and a.function == "tanh":
            return ir.Add((ONE, ir.Neg(ir.Power(value, 2))))
        if a.function == "tanh" and self.style.get("tanh_squared"):      # the file writes 1 - tanh^2(c_t)
            return ir.Add((ONE, ir.Neg(ir.Power(ir.Apply("tanh", a.arg), 2, prefix=True))))
        if value is not None and a.function == "sigma":
            return ir.Hadamard(value, ir.Add((ONE, ir.Neg(value))), self.style["op"])
        return ir.Apply(a.function, a.arg, 1, style=a.style)

    def named_value(self, a: ir.Apply):
        """h_t when h_t := a (the same function of the same argument), else None."""
        for name, d in self.ctx.definitions.items():
            if d.notation or not isinstance(d.expr, ir.Apply) or d.expr.function != a.function:
                continue
            target = d.target.time
            if target is None:
                if d.expr == a:
                    return ir.Ref(name)
                continue
            vars_ = {r.time.var for r in ir.refs(a) if r.time is not None and r.time.var}
            steps = [ir.Time(var, target.offset + k) for var in vars_ for k in range(-5, 6)] if vars_ else \
                [ir.Time(None, k) for k in range(5)]
            for t in steps:
                if _at(d, t) == a:
                    return ir.Ref(name, t)
        return None

    # -- the vector-Jacobian product of one expression, for the occurrences of `target`
    def vjp(self, e: ir.Expr, bar: ir.Expr, target: ir.Ref) -> list:
        if not any(r == target for r in ir.refs(e)):
            return []
        if isinstance(e, ir.Ref):
            return [bar]
        if isinstance(e, ir.Add):
            return [x for t in e.terms for x in self.vjp(t, bar, target)]
        if isinstance(e, ir.Neg):
            return self.vjp(e.arg, neg(bar), target)
        if isinstance(e, ir.Transpose):
            return self.vjp(e.arg, self.tr(bar), target)
        if isinstance(e, ir.MatMul):
            a, b = e.left, e.right
            out = []
            if self.scalar(a) and not self.scalar(b):
                if any(r == target for r in ir.refs(a)):
                    if not self.column(b):
                        raise Unsupported("a scalar times a matrix")
                    out += self.vjp(a, self.mul(self.tr(b), bar), target)
                out += self.vjp(b, self.mul(a, bar), target)
                return out
            if self.scalar(b) and not self.scalar(a):
                if any(r == target for r in ir.refs(b)):
                    if not self.column(a):
                        raise Unsupported("a matrix times a scalar")
                    out += self.vjp(b, self.mul(self.tr(a), bar), target)
                out += self.vjp(a, self.mul(bar, b), target)
                return out
            out += self.vjp(a, self.mul(bar, self.tr(b)), target)
            out += self.vjp(b, self.mul(self.tr(a), bar), target)
            return out
        if isinstance(e, ir.Hadamard):
            return self.vjp(e.left, self.had(bar, e.right), target) + self.vjp(e.right, self.had(bar, e.left), target)
        if isinstance(e, ir.Apply):
            return self.vjp(e.arg, self.had(bar, self.derivative(e)), target)
        if isinstance(e, ir.Power) and e.exponent == 2:
            return self.vjp(e.arg, ir.MatMul(ir.Number(Fraction(2)), self.had(bar, e.arg)), target)
        if isinstance(e, ir.Div) and not any(r == target for r in ir.refs(e.den)):
            return self.vjp(e.num, ir.Div(bar, e.den), target)
        raise Unsupported(f"the derivative through {type(e).__name__}")

    # -- adjoints
    def name_of_adjoint(self, q: ir.Ref):
        """The file's name for ∂ℓ/∂q at q's step (dh_{t+1}), or None."""
        if self.per_step:
            return None
        for name, d in self.ctx.definitions.items():
            if not d.notation or d.expr.of != self.loss or not isinstance(d.expr.wrt, ir.Ref) \
                    or d.expr.wrt.name != q.name:
                continue
            wt, tt = d.expr.wrt.time, d.target.time
            if wt is None and q.time is None and tt is None:
                return ir.Ref(name)
            if wt is not None and q.time is not None and tt is not None and wt.var is not None and tt.var == wt.var:
                k = q.time.offset - wt.offset
                return ir.Ref(name, ir.Time(q.time.var, tt.offset + k)) if q.time.var is not None \
                    else ir.Ref(name, ir.Time(None, q.time.offset - wt.offset + tt.offset))
        return None

    def given(self, q: ir.Ref):
        """dU where the loss is not defined and dU is declared and named ∂ℓ/∂U: the loss's own use of q."""
        if self.loss.name in self.ctx.definitions:
            return None
        named = self.name_of_adjoint(q)
        if named is not None and named.name in self.ctx.declarations:
            return named
        return None

    def reaches(self, q: ir.Ref, limit: int = 60) -> bool:
        """Does the differentiated quantity depend on q (at its step)?"""
        return self.depends(self.loss, q, limit)

    def adjoint(self, q: ir.Ref, depth: int) -> ir.Expr:
        if q == self.loss:
            return self.seed
        if self.jacobian:
            if depth > 0:
                return self.equation(q, depth - 1)
            raise Unsupported("a chain of Jacobians longer than the derivation opens")
        named = self.name_of_adjoint(q)
        if named is not None:
            return named
        if q.name in self.written or self.per_step:      # the file writes ∂ℓ/∂q itself (∂ℓ/∂ẑ_{t+1}): so do we
            return ir.Deriv(self.loss, q)
        if depth > 0 and len(self.consumers(q)) == 1:
            try:
                return self.equation(q, depth - 1)
            except Unsupported:
                pass
        return ir.Deriv(self.loss, q)

    def step_before(self, d: ir.Definition):
        """(s, d's body at step s): a step variable for the uses up to the loss's step, named apart from it."""
        if self.loss.time.var is None or self.loss.time.offset != 0:
            raise Unsupported("a sum over the steps up to a step other than t")
        taken = {self.loss.time.var, "T"}
        var = next(v for v in ("s", "k", "u", "r", "j") if v not in taken and v not in self.ctx.declarations)
        return var, _at(d, ir.Time(var))

    def cross_entropy(self, name: str):
        """The index k when the loss is -Σ_t log (name_t)_{k_t} and name_t := softmax(...): the gradient at the
        softmax's argument is then name_t - e_{k_t}, as every textbook writes it."""
        loss = self.ctx.definitions.get(self.loss.name)
        d = self.ctx.definitions.get(name)
        if loss is None or d is None or not isinstance(d.expr, ir.Softmax) or d.target.time is None:
            return None
        e = loss.expr
        if not (isinstance(e, ir.Neg) and isinstance(e.arg, ir.Sum)):
            return None
        s = e.arg
        body = s.body
        if not (s.lo == ir.Time(None, 1) and s.hi == ir.Time("T") and isinstance(body, ir.Apply)
                and body.function == "log" and body.derivative == 0 and isinstance(body.arg, ir.Component)):
            return None
        comp = body.arg
        if comp.arg == ir.Ref(name, ir.Time(s.var)) and comp.index.time == ir.Time(s.var):
            return comp.index.name
        return None

    def consumers(self, q: ir.Ref) -> list:
        """(name, step of the consumer, its body there) for every definition that reads q (q at its step)."""
        out = []
        for name, d in self.ctx.definitions.items():
            if d.notation or ir.has_derivative(self.ctx, d.expr):
                continue                      # a name for a derivative, or for an expression with one (da_t)
            target = d.target.time
            if target is None and q.time is not None and q.time.var not in (None, "T") and q.time.offset == 0 \
                    and any(isinstance(n, ir.Sum) for n in d.expr.walk()) \
                    and any(r.name == q.name for r in ir.refs(d.expr)):
                one = _term_at(d.expr, q)         # L := Σ_t L^{(t)}: the one term that reads L^{(t)}
                if one is not None:
                    out.append((name, None, one))
                    continue
            if target is None or target.var is None:
                if any(r == q for r in ir.refs(d.expr)):
                    out.append((name, None, d.expr))
                elif q.time is not None and q.time.var not in (None, "T"):
                    # read at one fixed step only (p := softmax(V h_T)): a term that exists at that step alone
                    out += [(name, ("fixed", r.time), d.expr) for r in dict.fromkeys(ir.refs(d.expr))
                            if r.name == q.name and r.time is not None and r.time.var in (None, "T")]
                continue
            offsets = {r.time.offset - target.offset for r in ir.refs(d.expr)
                       if r.name == q.name and r.time is not None and r.time.var == target.var}
            if any(isinstance(n, ir.Sum) for n in d.expr.walk()):
                if any(r.name == q.name for r in ir.refs(d.expr)):
                    raise Unsupported("a sum over steps inside a definition")
                continue
            if q.time is None:
                if any(r == q for r in ir.refs(d.expr)):
                    out.append((name, "every", d.expr))
                continue
            for k in sorted(offsets):
                step = q.time.shifted(-k)
                if step.var is None and step.offset < 1:
                    continue
                body = _at(d, step)
                if body is not None:
                    out.append((name, step, body))
        return out

    def at_fixed_step(self, name: str, fixed: ir.Time, body: ir.Expr, q: ir.Ref, depth: int) -> list:
        """The terms of ∂ℓ/∂q_t through a definition without steps that reads q at one fixed step only (a
        many-to-one network: p := softmax(V h_T + c), L := -log p_k): they exist at that step alone, so each
        carries the condition, 1[t = T] V^T (p - e_k), in the file's spelling of one."""
        if self.jacobian or self.per_step:
            raise Unsupported("a quantity read at one step only")
        at = ir.Ref(q.name, fixed)
        k = self.fixed_cross_entropy(name)
        if k is not None:                     # the cross-entropy -log p_k of p := softmax(y): p - e_k at y
            bars = self.vjp(body.arg, ir.Add((ir.Ref(name), ir.Neg(ir.Basis(k)))), at)
        else:
            bars = self.vjp(body, self.adjoint(ir.Ref(name), depth), at)
        condition = ir.StepIf(q.time, "=", fixed, style=self.style["step_if"])
        return [self.mul(condition, simplify(x)) for x in bars]

    def fixed_cross_entropy(self, name: str):
        """The index k when the loss is -log p_k and p := softmax(...), both without steps; else None."""
        loss, d = self.ctx.definitions.get(self.loss.name), self.ctx.definitions.get(name)
        if loss is None or d is None or not isinstance(d.expr, ir.Softmax) or d.target.time is not None:
            return None
        e = loss.expr
        if isinstance(e, ir.Neg) and isinstance(e.arg, ir.Apply) and e.arg.function == "log" \
                and e.arg.derivative == 0 and isinstance(e.arg.arg, ir.Component) and e.arg.arg.arg == ir.Ref(name):
            return e.arg.arg.index
        return None

    def depends(self, x: ir.Ref, q: ir.Ref, limit: int = 60) -> bool:
        """Does x depend on q (at its step)?  A walk back through the definitions."""
        seen, todo = set(), [x]
        while todo and len(seen) < limit:
            y = todo.pop()
            if y == q:
                return True
            if y in seen:
                continue
            seen.add(y)
            d = self.ctx.definitions.get(y.name)
            if d is None or d.notation:
                continue
            body = _at(d, y.time)
            if body is not None:
                # within a window of steps: a recurrence read backwards would otherwise never end
                todo += [r for r in ir.refs(body) if r.time is None or abs(r.time.offset) <= 8]
        return False

    def through_inputs(self, q: ir.Ref, style: str = "frac") -> ir.Expr:
        """∂c/∂q of a column c at a step, one level from c's side: Σ over what c's definition reads that depends
        on q, (∂r/∂q) (∂c/∂r)|local, with ∂r/∂q the file's Jacobian (the identity for r = q).

        The form that holds at every step t: ∂b_{t+1}/∂b_{t+3} is zero where b_{t+3} lies past T (a quantity
        outside 1..T is a constant zero), while its local factors opened, U_b^T diag(1 - b_{t+2}^2), are not.
        So the reverse-mode product opened through other steps is exact only away from the ends of the
        sequence; c's own step always exists (the claim is at t = 1..T), and so do its local factors."""
        c = self.loss
        d = self.ctx.definitions.get(c.name)
        if d is None or d.notation:
            raise Unsupported("a Jacobian of a quantity without a definition")
        body = _at(d, c.time)
        if body is None:
            raise Unsupported("a definition that cannot be placed at the step")
        terms = []
        for r in dict.fromkeys(x for x in ir.refs(body) if x.time is not None or x == q):
            if r != q and not (r.name in self.ctx.definitions and self.depends(r, q)):
                continue
            if r != q and isinstance(self.ctx.definitions[r.name].expr, ir.Block):
                raise Unsupported("a Jacobian through a block-matrix view (read through its blocks)")
            local = self.vjp(body, IDENTITY, r)
            if not local:
                continue
            factor = IDENTITY if r == q else ir.Deriv(r, q, style=style)
            if r == q and self.inside_when(q) is not None:
                factor = self.inside_when(q)      # read directly: nothing at a step where q is a constant zero
            terms += [self.mul(factor, x) for x in local]
        if not terms:
            raise Unsupported("nothing the definition reads depends on the quantity")
        return simplify(plus([simplify(x) for x in terms]))

    def inside_when(self, q: ir.Ref):
        """The condition under which q, read at a step other than the differentiated quantity's own, lies inside
        1..T (a declared initial state q_0 counts): 1[t < T] for q_{t+1}, 1[t > 1] for q_{t-1}; None when it
        always does.  Outside, q is a constant zero and no derivative with respect to it is other than zero."""
        own = self.loss.time
        if q.time is None or own is None or q.time.var is None or q.time.var != own.var:
            return None
        k = q.time.offset - own.offset
        if k > 0:                                                # t + k <= T
            return ir.StepIf(own, "<", ir.Time("T", 1 - k), style=self.style["step_if"])
        first = 0 if (q.name + "_0") in self.ctx.declarations else 1
        if k < 0 and 1 + k < first:                              # t + k >= first, false at the first step
            return ir.StepIf(own, ">", ir.Time(None, first - k - 1), style=self.style["step_if"])
        return None

    def jacobian_equation(self, q: ir.Ref, style: str = "frac"):
        """∂c/∂q of columns: the product of local Jacobians opened (reverse mode) where every factor is at c's
        own step; else one level from c's side (`through_inputs`), which also holds at the ends of the
        sequence (a chain through another step, b_t to b_{t+3}, is zero past T where its opened factors are
        not) and needs no end where the dependence runs through every earlier step (f_t on b_t through
        f_{t-1}, b_{t-1})."""
        try:
            near = self.through_inputs(q, style)
        except Unsupported:
            near = None
        at_own_step = (q.time == self.loss.time and near is not None
                       and all(x.of.time == self.loss.time for x in near.walk() if isinstance(x, ir.Deriv)))
        if near is None or at_own_step or not any(isinstance(x, ir.Deriv) for x in near.walk()):
            try:
                opened = self.equation(q)
            except Unsupported:
                opened = None
            if opened is not None and (near is None or all(
                    r.time is None or r.time == self.loss.time for r in ir.refs(opened))):
                # every step between c's and q's lies inside 1..T where q does: one condition for the product
                cond = self.inside_when(q)
                return opened if cond is None else left_nested(self.mul(cond, opened))
        return near

    def equation(self, q: ir.Ref, depth: int | None = None) -> ir.Expr:
        """∂ℓ/∂q: the sum over q's consumers of their vector-Jacobian products."""
        depth = self.depth if depth is None else depth
        terms = []
        given = self.given(q)
        if given is not None:                 # an undefined loss: its gradient at q is given by name
            terms.append(given)
        summed = []
        for name, step, body in self.consumers(q):
            if (self.jacobian or self.per_step and step != "every") \
                    and not self.reaches(ir.Ref(name, step) if isinstance(step, ir.Time) else ir.Ref(name)):
                continue
            if name == self.loss.name and (not self.jacobian or step is None or ir.Ref(name, step) == self.loss):
                terms += self.vjp(body, self.seed, q)
                continue
            if step == "every":
                d = self.ctx.definitions[name]
                var = d.target.time.var
                if self.per_step:
                    # ∂ℓ_t/∂W of a loss at a step: W's uses at every step s up to t, Σ_{s=1}^{t}
                    var, body = self.step_before(d)
                    if name == self.loss.name:
                        raise Unsupported("a loss at a step that reads a weight itself")
                    summed += self.vjp(body, self.adjoint(ir.Ref(name, ir.Time(var)), depth), q)
                    continue
                bar = self.adjoint(ir.Ref(name, d.target.time), depth)
                summed += self.vjp(body, bar, q)
                continue
            if isinstance(step, tuple):
                terms += self.at_fixed_step(name, step[1], body, q, depth)
                continue
            k = self.cross_entropy(name) if isinstance(step, ir.Time) else None
            if k is not None:                 # p_t := softmax(y_t) under the cross-entropy: p_t - e_{k_t} at y_t
                terms += self.vjp(body.arg, ir.Add((ir.Ref(name, step), ir.Neg(ir.Basis(ir.Ref(k, step))))), q)
                continue
            bar = self.adjoint(ir.Ref(name, step), depth)
            terms += self.vjp(body, bar, q)
        if summed:
            body = plus([simplify(x) for x in summed])
            terms.append(ir.Sum(var, ir.Time(None, 1), self.loss.time if self.per_step else ir.Time("T"), body,
                                short=False))
        if not terms:
            raise Unsupported("nothing reads the quantity")
        return simplify(plus([simplify(x) for x in terms]))


def _term_at(e: ir.Expr, q: ir.Ref):
    """e with each sum over every step that reads q (at the sum's own step) replaced by its term at q's step,
    the only one that reads q_t (L := Σ_{s=1}^{T} L^{(s)} read at q = L^{(t)} is L^{(t)}); None when q is read
    otherwise (outside a sum, at another step of it, or in a sum over part of the steps)."""
    def walk(x):
        if isinstance(x, ir.Sum):
            reads = [r for r in ir.refs(x.body) if r.name == q.name]
            if not reads:
                return x
            if x.lo != ir.Time(None, 1) or x.hi != ir.Time("T") or any(r.time != ir.Time(x.var) for r in reads):
                raise Unsupported("a sum that reads the quantity at another step")
            return _rename(x.body, x.var, q.time.var)
        if isinstance(x, ir.Ref):
            if x.name == q.name:
                raise Unsupported("the quantity read outside a sum over the steps")
            return x
        kids = x.children()
        return x.rebuild(tuple(walk(c) for c in kids)) if kids else x
    try:
        return walk(e)
    except Unsupported:
        return None


def neg(e):
    return e.arg if isinstance(e, ir.Neg) else ir.Neg(e)


def plus(terms):
    flat = []
    for t in terms:
        flat += list(t.terms) if isinstance(t, ir.Add) else [t]
    return flat[0] if len(flat) == 1 else ir.Add(tuple(flat))


def transpose(e, style="\\top", deriver=None):
    """e^T with the transpose pushed onto the factors: (a b^T)^T = b a^T, (x^T)^T = x; a transposed
    column stays one (x^T), a scalar or symmetric diagonal loses it.  A transpose that is not written (a
    Jacobian read in a declared numerator layout) stays: without it the Jacobian would print as the same
    \\frac and be read back transposed."""
    if isinstance(e, ir.Transpose) and not e.implied:
        return e.arg
    if isinstance(e, (ir.Number, ir.Diag)):
        return e
    if isinstance(e, ir.Neg):
        return ir.Neg(transpose(e.arg, style, deriver))
    if isinstance(e, ir.MatMul):
        return ir.MatMul(transpose(e.right, style, deriver), transpose(e.left, style, deriver), e.dot)
    if isinstance(e, ir.Add):
        return ir.Add(tuple(transpose(t, style, deriver) for t in e.terms))
    if deriver is not None:
        try:
            if deriver.scalar(e):
                return e
        except Unsupported:
            pass
    return ir.Transpose(e, style)


def simplify(e: ir.Expr) -> ir.Expr:
    """Double negations and transposes gone, a sign in a product moved in front, products by 1 dropped."""
    def fn(x):
        if isinstance(x, ir.Neg) and isinstance(x.arg, ir.Neg):
            return x.arg.arg
        if isinstance(x, ir.Transpose) and isinstance(x.arg, ir.Transpose) and not x.arg.implied:
            return x.arg.arg
        if isinstance(x, (ir.MatMul, ir.Hadamard)):
            left, right = x.left, x.right
            if isinstance(x, ir.MatMul) and left == ONE:
                return right
            if right == ONE:
                return left
            if isinstance(left, ir.Neg) or isinstance(right, ir.Neg):
                inner = x.rebuild((neg(left) if isinstance(left, ir.Neg) else left,
                                   neg(right) if isinstance(right, ir.Neg) else right))
                return inner if isinstance(left, ir.Neg) and isinstance(right, ir.Neg) else ir.Neg(inner)
        if isinstance(x, ir.Add):
            return plus(x.terms)
        return x
    return left_nested(ir.transform(e, fn))


def left_nested(e: ir.Expr) -> ir.Expr:
    """a (b c) as (a b) c and a ∘ (b ∘ c) as (a ∘ b) ∘ c: the same value, printed as a reader writes it
    (a b c, a ∘ b ∘ c), without the parentheses of the order the derivation built it in."""
    def factors(x, kind):
        if type(x) is kind and not (kind is ir.MatMul and x.norm):
            return factors(x.left, kind) + factors(x.right, kind)
        return [x]

    def fn(x):
        if isinstance(x, (ir.MatMul, ir.Hadamard)) and not (isinstance(x, ir.MatMul) and x.norm):
            parts = factors(x, type(x))
            out = parts[0]
            for part in parts[1:]:
                out = x.rebuild((out, part))
            return out
        return x
    return ir.transform(e, fn)


def with_backward_names(ctx: ir.Context, e: ir.Expr) -> ir.Expr:
    """e with each part that is the file's name for a backward-pass expression at some step written as that
    name (da_{t+1} for (1 - h_{t+1}^2) ∘ dh_{t+1} where da_t := (1 - h_t^2) ∘ dh_t): the file's own words.
    Parts compare by their normal forms, ∘ in either order and diag(u) v as u ∘ v."""
    names = {n: d for n, d in ctx.definitions.items() if not d.notation and n not in ctx.declarations
             and d.target.time is not None and d.target.time.var is not None and ir.has_derivative(ctx, d.expr)}
    if not names:
        return e
    typer, seen = Typer(ctx), {}

    def canon(x):
        """x's normal form, ∘ sorted, diag(u) v as u ∘ v; once per expression (every part meets every name)."""
        if x not in seen:
            seen[x] = ir.transform(normal_form(ctx, x), one_spelling)
        return seen[x]

    def one_spelling(n):
        if isinstance(n, ir.MatMul) and isinstance(n.left, ir.Diag):
            try:
                column = typer.eq(typer.infer(n.right)[1], 1)
            except IllTyped:
                column = False
            if column:
                n = ir.Hadamard(n.left.arg, n.right)
        if isinstance(n, ir.Hadamard):
            return ir.Hadamard(*sorted((n.left, n.right), key=repr))
        return n

    def named(x):
        steps = {r.time for r in ir.refs(x) if r.time is not None and r.time.var is not None}
        if not steps or isinstance(x, ir.Ref):
            return None
        for name, d in names.items():
            for step in steps:
                body = _at(d, step)
                if body is not None and canon(body) == canon(x):
                    return ir.Ref(name, step)
        return None

    def fold(x):
        if isinstance(x, ir.MatMul) and isinstance(x.left, ir.MatMul) and not x.norm and not x.left.norm:
            inner = named(ir.MatMul(x.left.right, x.right, x.dot))   # W^T diag(u) v, left-nested: W^T (diag(u) v)
            if inner is not None:
                return ir.MatMul(x.left.left, inner, x.dot)
        return named(x) or x
    return ir.transform(e, fold)


def aligned(derived: ir.Expr, written: ir.Expr, ctx: ir.Context) -> ir.Expr:
    """The derived terms in the order of the author's terms they match (equal once names are opened), the
    others after; a sum over the steps written as the author writes it (\\sum_t or \\sum_{t=1}^{T})."""
    short = any(isinstance(n, ir.Sum) and n.short for n in written.walk())
    if short:
        derived = ir.transform(derived, lambda x: ir.Sum(x.var, x.lo, x.hi, x.body, True)
                               if isinstance(x, ir.Sum) else x)
    terms = list(derived.terms) if isinstance(derived, ir.Add) else [derived]
    if len(terms) < 2:
        return derived
    mine = [normal_form(ctx, t) for t in (written.terms if isinstance(written, ir.Add) else (written,))]

    def place(t):
        n = normal_form(ctx, t)
        return mine.index(n) if n in mine else len(mine)
    return ir.Add(tuple(sorted(terms, key=place)))


# ---------------------------------------------------------------- the entry point

def entry_rhs(ctx: ir.Context, claim: ir.Claim):
    """The right-hand side of a line of entries ∂q_k/∂W_{i,j} = ... (∂q_k/∂x_j = ...), or None: entry [i, j] of
    ∂q_k/∂W, which is reverse mode from q seeded with e_k (∂(e_k^T q)/∂W): (e_{k} x^T)_{i,j} for q = W x."""
    lhs = claim.lhs
    outer = lhs.arg if isinstance(lhs, (ir.MatrixEntry, ir.Component)) else None
    if not (isinstance(outer, ir.Deriv) and isinstance(outer.of, ir.Component) and isinstance(outer.of.arg, ir.Ref)
            and isinstance(outer.wrt, ir.Ref) and outer.of.arg.time is None and outer.wrt.time is None):
        return None
    if isinstance(lhs, ir.MatrixEntry) and not lhs.style.startswith("deriv-"):
        return None
    ctx = with_indices(ctx, claim)
    if ctx.has_time:
        return None                          # read at one step only: not written here
    try:
        d = Deriver(ctx, outer.of.arg)
        d.seed = ir.Basis(outer.of.index)    # the adjoint of q for its entry k: e_k
        grad = d.equation(outer.wrt)
    except (Unsupported, IllTyped, KeyError, RecursionError):
        return None
    if isinstance(lhs, ir.MatrixEntry):
        return ir.MatrixEntry(grad, lhs.row, lhs.col)
    return ir.Component(grad, lhs.index)


def derived_rhs(ctx: ir.Context, claim: ir.Claim):
    """The right-hand side the claim's left-hand side has by the file's definitions, or None.

    For a left-hand side that is a gradient of a scalar or a Jacobian (or the file's name for one), or that the
    link before it in its chain says is one (`chain_subject`), and for a name the file defines as a value (its
    best form, `value_forms`); the caller proves `lhs = derived` before showing it."""
    if claim.lhs is None:
        return None
    if claim.indices or isinstance(claim.lhs, (ir.MatrixEntry, ir.Component)):
        return entry_rhs(ctx, claim)
    sub, lhs = subject(ctx, claim.lhs), claim.lhs
    if sub is None:
        sub, lhs = chain_subject(ctx, claim) or (None, None)
    if sub is None or not isinstance(lhs, (ir.Deriv, ir.Ref)):
        forms = value_forms(ctx, claim)          # a defined value (f := ‖W x‖²): the best of its forms
        return forms[0] if forms else None
    of, wrt = sub
    try:
        d = Deriver(ctx, of)
        if not d.scalar(of):
            # Not under a declared numerator layout either: the products below build the denominator-layout
            # Jacobian, and their factors ∂r/∂q would print as the transposes the file's reading makes of them.
            if ctx.held_fixed or ctx.numerator or not (d.column(of) and d.column(wrt)):
                return None
            d = Deriver(ctx, of, depth=4, jacobian=True)
            out = d.jacobian_equation(wrt, getattr(lhs, "style", "frac"))
            return None if out is None or IDENTITY in ir.refs(out) else aligned(out, claim.rhs, ctx)
        if of.time is not None and ctx.held_fixed:
            return None                   # a loss at a step with the earlier steps held fixed: not derived here
        return aligned(with_backward_names(ctx, d.equation(wrt)), claim.rhs, ctx)
    except (Unsupported, IllTyped, KeyError, RecursionError):
        return None


# ---------------------------------------------------------------- the value of a defined quantity

def value_subject(ctx: ir.Context, e: ir.Expr):
    """(the definition, its body at e's step) when `e` is a name the file defines as a forward value (f := ‖W x‖²,
    h_t := tanh(...)), None otherwise: a derivative, a name for one (dh_t := ∂ℓ/∂h_t, or dV := dv of such a
    name) and an expression are no value line's subject."""
    if not isinstance(e, ir.Ref):
        return None
    d = ctx.definitions.get(e.name)
    if d is None or d.notation:
        return None
    body = _at(d, e.time)
    if body is None or any(isinstance(n, ir.Deriv) for n in normal_form(ctx, body).walk()):
        return None
    return d, body


def chain_members(ctx: ir.Context, d: ir.Definition, claim: ir.Claim) -> list:
    """What the file claims equal to the definition's right-hand side, in the order it writes them: the
    members of the chain that defines it (f(x, W) = ‖W x‖² = Σ_i (W x)_i², whose first equality defines f and
    whose links are claims from the body on), at the definition's own step.

    Followed link by link from the body as written (a link's left-hand side is the member before it), so a
    line elsewhere about the same name (another wrong line, f = Σ_i q_i) is never taken for a member; nor are
    the line's own chain and a correction (a value must come from the file's definitions, not its errata)."""
    members, known = [], [d.expr]
    grown = True
    while grown:
        grown = False
        for c in ctx.claims:
            if c.lhs is None or c.rhs is None or c.kind == "corrected" or c.id == claim.id \
                    or (claim.group and c.group == claim.group):
                continue
            for a, b in ((c.lhs, c.rhs), (c.rhs, c.lhs)):
                if a in known and b not in known and not _mentions(b, d.target):
                    known.append(b)
                    members.append(b)
                    grown = True
    return members


def _mentions(e: ir.Expr, target: ir.Ref) -> bool:
    # f = f + 0 says nothing of f's value: a member that reads the quantity at its own step is no value of it.
    return any(r.name == target.name and r.time == target.time for r in ir.refs(e))


def _subtrees(ctx: ir.Context, e: ir.Expr) -> set:
    # One spelling of each product (\cdot or juxtaposition), no name opened: the author's forms compared as written.
    return set(normal_form(ctx, e, depth=0).walk())


def closeness(ctx: ir.Context, a: ir.Expr, b: ir.Expr) -> float:
    """How much of their form two expressions share: the subexpressions both have, of those either has (a sum
    over entries is closer to a sum over entries than to the norm it equals)."""
    sa, sb = _subtrees(ctx, a), _subtrees(ctx, b)
    return len(sa & sb) / max(1, len(sa | sb))


def value_forms(ctx: ir.Context, claim: ir.Claim) -> list:
    """The right-hand sides a value line's left-hand side has by the file, best first: the members of the
    chain that defines it, the closest in form to the author's right-hand side first, then the definition's
    right-hand side.  Each at the line's step, in the file's own writing; [] for a line about no defined value.
    None of them is trusted: the search shows one only when the engines prove `lhs = it`."""
    found = value_subject(ctx, claim.lhs) if claim.lhs is not None and claim.rhs is not None else None
    if found is None:
        return []
    d, body = found
    members = []
    for m in chain_members(ctx, d, claim):
        at = _at(ir.Definition(d.target, m), claim.lhs.time)
        if at is not None and at not in members and at != body:
            members.append(at)
    members.sort(key=lambda m: -closeness(ctx, m, claim.rhs))      # stable: the chain's order among equals
    return [*members, body]


def derived_forms(ctx: ir.Context, claim: ir.Claim) -> list:
    """Every right-hand side worth proving for the claim's left-hand side, best first: the derived gradient or
    Jacobian for a derivative (or a name for one, or what the link before says is one), a line of entries', else
    the value forms of a defined quantity (`value_forms`)."""
    if claim.lhs is None:
        return []
    entries = claim.indices or isinstance(claim.lhs, (ir.MatrixEntry, ir.Component))
    if not entries and subject(ctx, claim.lhs) is None and chain_subject(ctx, claim) is None:
        return value_forms(ctx, claim)
    rhs = derived_rhs(ctx, claim)
    return [] if rhs is None else [rhs]
