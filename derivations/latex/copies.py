"""The Deep Learning book's local derivatives at a step, written out as the expressions they are.

Section 10.2.2 of the book differentiates with respect to copies: W^{(t)} is "a copy of W used only
at time step t", so ∂h^{(t)}/∂b^{(t)} (10.23) is the Jacobian of h^{(t)} through b's use at step t only,
and Σ_i (∂L/∂h_i^{(t)}) ∇_{W^{(t)}} h_i^{(t)} (10.25) is the vector-Jacobian product of ∂L/∂h^{(t)} with
the derivative of h^{(t)} through that use.  The engines know total derivatives only; the reader writes
such a derivative out, here, from the definitions of the quantities at step t (reverse mode over the
expressions: a sum, a product with a factor free of the copy, ∘, an element-wise function, softmax,
a power, a division by a factor free of the copy), every quantity at another step held fixed: that
is what a copy used at step t means.  Anything else is an error that says so (`Unsupported`).

A sum over entries with a weight that is no copy, Σ_i (∂L/∂o_i^{(t)}) ∇_{V} o_i^{(t)} (10.24), is the
same expression when V reaches o^{(t)} only within step t (no quantity of another step that o^{(t)}
reads depends on V); otherwise it is an error (`Unsupported`), since the total derivative is meant.
Semantics: docs/derivation-format.md.
"""
from __future__ import annotations

from fractions import Fraction

from ..form import ir


class Unsupported(Exception):
    """The local derivative cannot be written out; the message says why."""


def at_step(e: ir.Expr, var: str, time: ir.Time) -> ir.Expr:
    """A definition's expression (written at step `var`) at the step `time`."""
    def fix(n):
        if isinstance(n, ir.Ref) and n.time is not None and n.time.var == var:
            return ir.Ref(n.name, ir.Time(time.var, time.offset + n.time.offset), span=n.span, sup=n.sup)
        return n
    if any(isinstance(n, ir.Sum) and n.var == var for n in e.walk()):
        raise Unsupported("a definition that sums over its own step")
    return ir.transform(e, fix)


class Local:
    """Derivatives of the quantities of one step through the direct use of `wrt` at that step."""

    def __init__(self, definitions: dict, wrt: ir.Ref, time: ir.Time):
        self.definitions, self.wrt, self.time = definitions, wrt, time
        self._depends: dict = {}
        self.jacobian = False            # the whole Jacobian (vjp called with g None): wrt must be a column

    def opened(self, ref: ir.Ref) -> ir.Expr | None:
        """The definition of a quantity at the step, or None (an input, another step: held fixed)."""
        d = self.definitions.get(ref.name)
        if d is None or d.notation or ref.time != self.time:
            return None
        if d.target.time is None or d.target.time.var is None:
            return None
        return at_step(d.expr, d.target.time.var, self.time)

    def uses(self, name: str, seen=None) -> bool:
        """Whether the quantity `name` (at any step) is computed from `wrt` at all."""
        seen = set() if seen is None else seen
        if name == self.wrt.name:
            return True
        if name in seen:
            return False
        seen.add(name)
        d = self.definitions.get(name)
        return d is not None and not d.notation and any(self.uses(r.name, seen) for r in ir.refs(d.expr))

    def depends(self, e: ir.Expr) -> bool:
        """Whether e reads `wrt` at the step (directly or through a quantity of the step)."""
        for n in e.walk():
            if isinstance(n, ir.Ref):
                if n.name == self.wrt.name and n.time is None:
                    return True
                if n.time is None and n.name in self.definitions and self.uses(n.name):
                    raise Unsupported(f"{n.name}, a quantity without steps computed from {self.wrt.name}, is read "
                                      "(it is no use of the weight at one step)")
                if n.time == self.time and n.name in self.definitions:
                    if n.name not in self._depends:
                        self._depends[n.name] = False            # a cycle within a step is not a model
                        body = self.opened(n)
                        self._depends[n.name] = body is not None and self.depends(body)
                    if self._depends[n.name]:
                        return True
            elif isinstance(n, ir.Deriv) and (self.depends(n.of) or self.depends(n.wrt)):
                raise Unsupported("a derivative inside the definition")
        return False

    def vjp(self, e: ir.Expr, g: ir.Expr | None) -> ir.Expr | None:
        """Σ_i g_i ∂e_i/∂wrt through the use at the step (g None: the Jacobian, denominator layout);
        None when e does not read wrt at the step."""
        if not self.depends(e):
            return None
        if isinstance(e, ir.Ref):
            if e.name == self.wrt.name and e.time is None:
                if g is None:
                    raise Unsupported(f"the derivative of {e.name} with respect to itself")
                return g
            return self.vjp(self.opened(e), g)
        if isinstance(e, ir.Add):
            parts = [p for p in (self.vjp(t, g) for t in e.terms) if p is not None]
            return parts[0] if len(parts) == 1 else ir.Add(tuple(parts))
        if isinstance(e, ir.Neg):
            return ir.Neg(self.vjp(e.arg, g))
        if isinstance(e, ir.MatMul):
            parts = []
            if self.depends(e.left):
                if g is None or self.jacobian:
                    raise Unsupported(f"the Jacobian of a column with respect to the matrix {self.wrt.name} (write a "
                                      f"sum over entries, \\sum_i (...) \\nabla_{{{self.wrt.name}^{{(t)}}}} h_i^{{(t)}})")
                if not (isinstance(e.left, ir.Ref) and e.left.name == self.wrt.name):
                    raise Unsupported("a product whose left factor reads the weight other than as the weight itself")
                parts.append(ir.MatMul(g, ir.Transpose(e.right, "\\top")))
            if self.depends(e.right):
                parts.append(self.vjp(e.right, _left(ir.Transpose(e.left, "\\top"), g)))
            return parts[0] if len(parts) == 1 else ir.Add(tuple(parts))
        if isinstance(e, ir.Hadamard):
            parts = []
            if self.depends(e.left):
                parts.append(self.vjp(e.left, _left(ir.Diag(e.right), g)))
            if self.depends(e.right):
                parts.append(self.vjp(e.right, _left(ir.Diag(e.left), g)))
            return parts[0] if len(parts) == 1 else ir.Add(tuple(parts))
        if isinstance(e, ir.Apply) and e.derivative == 0:
            # f'(a), element-wise; ReLU's is the indicator 1[a > 0], the indicator's is 0 (where a != 0)
            if e.function == "ind":
                return None
            slope = ir.Apply("ind", e.arg) if e.function == "relu" else ir.Apply(e.function, e.arg, 1)
            return self.vjp(e.arg, _left(ir.Diag(slope), g))
        if isinstance(e, ir.Power) and e.exponent == 2:
            return self.vjp(e.arg, _left(ir.MatMul(ir.Number(Fraction(2)), ir.Diag(e.arg)), g))
        if isinstance(e, ir.Softmax):
            s = e
            jac = ir.Add((ir.Diag(s), ir.Neg(ir.MatMul(s, ir.Transpose(s, "\\top")))))
            return self.vjp(e.arg, _left(jac, g))
        if isinstance(e, ir.Div) and not self.depends(e.den):
            return self.vjp(e.num, _left_div(g, e.den))
        raise Unsupported(f"a {type(e).__name__.lower()} that reads the weight")

    def reaches_elsewhere(self, ref: ir.Ref) -> bool:
        """Whether `wrt` reaches the quantity through a quantity of another step (its derivative through the
        use at the step is then not its total derivative)."""
        def through(e):
            for n in e.walk():
                if isinstance(n, ir.Ref) and n.name in self.definitions:
                    if n.time == self.time:
                        body = self.opened(n)
                        if body is not None and n.name not in visited:
                            visited.add(n.name)
                            if through(body):
                                return True
                    elif n.name != self.wrt.name and self.uses(n.name):
                        return True
            return False
        visited: set = set()
        return through(ref)


def _left(m: ir.Expr, g: ir.Expr | None) -> ir.Expr:
    return m if g is None else ir.MatMul(m, g)


def _left_div(g: ir.Expr | None, den: ir.Expr) -> ir.Expr:
    if g is None:
        raise Unsupported("a Jacobian through a division")
    return ir.Div(g, den)
