"""An independent reference for the generated modules: the file's definitions read literally, one example
and one step at a time, in autograd.numpy, and differentiated by HIPS autograd.

Nothing here shares code with derivations/outputs/numpy_module.py's translation or its reverse mode: a quantity
at a step is its definition evaluated at that step (recursively, memoized), a step outside 1..T is zero
except a declared initial state, ∑_t is a Python sum, a product with a 1 x 1 factor is a scaling (the
format's semantics, docs/derivation-format.md).  Only the parsed intermediate form is read.
"""
from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import sympy as sp
from autograd import grad

from derivations.form import ir
from derivations.form.shapes import Typer


def _sigma(x):
    return 1 / (1 + anp.exp(-x))


def _ind(x):
    return (x > 0) * 1.0


FUNCTIONS = {
    "sigma": (_sigma, lambda x: _sigma(x) * (1 - _sigma(x))),
    "tanh": (anp.tanh, lambda x: 1 - anp.tanh(x) ** 2),
    "exp": (anp.exp, anp.exp),
    "log": (anp.log, lambda x: 1 / x),
    "relu": (lambda x: anp.maximum(x, 0.0), _ind),
    "ind": (_ind, lambda x: 0.0 * x),
}


class Example:
    """One example of a batch: every quantity of the context at every step, evaluated on demand."""

    def __init__(self, ctx, data: dict, sizes: dict, T: int, b: int, batched: set):
        self.ctx, self.data, self.sizes, self.T, self.b = ctx, data, sizes, T, b
        self.batched = batched       # the declared inputs given one column per example
        self.memo: dict = {}

    def shape(self, name):
        d = self.ctx.declarations[name]
        return tuple(int(sp.sympify(s).subs(self.sizes)) for s in d.shape)

    def column(self, array):
        return array[..., self.b:self.b + 1]

    def quantity(self, name: str, step):
        key = (name, step)
        if key not in self.memo:
            self.memo[key] = self._quantity(name, step)
        return self.memo[key]

    def _quantity(self, name, step):
        ctx = self.ctx
        if ctx.is_sequence(name) and not 1 <= step <= self.T:
            if step == 0 and name + "_0" in ctx.declarations:
                return self.column(self.data[name + "_0"])
            rows = Typer(self.ctx).infer(ir.Ref(name, ir.Time("t")))[0]
            return anp.zeros((int(sp.sympify(rows).subs(self.sizes)), 1))
        d = ctx.definitions.get(name)
        if d is not None and not d.notation:
            var = d.target.time.var if d.target.time is not None else None
            return self.eval(d.expr, {var: step} if var else {})
        decl = ctx.declarations[name]
        if decl.kind == "index":
            return int(self.data[name][step - 1, self.b] if decl.sequence else self.data[name][self.b]) + 1
        value = self.data[name]
        if decl.sequence:
            return self.column(value[step - 1])
        return self.column(value) if name in self.batched else value

    def step(self, time: ir.Time | None, env: dict):
        if time is None:
            return None
        base = env["T"] if time.var == "T" else env[time.var] if time.var else 0
        return base + time.offset

    def eval(self, e, env):
        env = {**env, "T": self.T}
        return getattr(self, "_" + type(e).__name__)(e, env)

    def _Ref(self, e, env):
        d = self.ctx.declarations.get(e.name)
        if d is not None and d.initial and e.time is None:
            return self.quantity(e.name[:-2], 0)
        return self.quantity(e.name, self.step(e.time, env))

    def _Number(self, e, env):
        return float(e.value)

    def _Ones(self, e, env):
        return anp.ones((int(sp.sympify(e.size).subs(self.sizes)), 1))

    def _Add(self, e, env):
        out = self.eval(e.terms[0], env)
        for t in e.terms[1:]:
            out = out + self.eval(t, env)
        return out

    def _Neg(self, e, env):
        return -self.eval(e.arg, env)

    def _MatMul(self, e, env):
        a, b = self.eval(e.left, env), self.eval(e.right, env)
        if anp.shape(a) == (1, 1) and anp.shape(b) != (1, 1):
            return a[0, 0] * b
        if anp.shape(b) == (1, 1) and anp.shape(a) != (1, 1):
            return a * b[0, 0]
        return anp.dot(a, b)

    def _Hadamard(self, e, env):
        return self.eval(e.left, env) * self.eval(e.right, env)

    def _Div(self, e, env):
        den = self.eval(e.den, env)
        return self.eval(e.num, env) / (den[0, 0] if anp.shape(den) == (1, 1) else den)

    def _Transpose(self, e, env):
        return anp.transpose(self.eval(e.arg, env))

    def _Power(self, e, env):
        return self.eval(e.arg, env) ** e.exponent

    def _Apply(self, e, env):
        return FUNCTIONS[e.function][e.derivative](self.eval(e.arg, env))

    def _Softmax(self, e, env):
        y = self.eval(e.arg, env)
        z = anp.exp(y - anp.max(y))
        return z / anp.sum(z)

    def _Component(self, e, env):
        k = self.quantity(e.index.name, self.step(e.index.time, env))
        return self.eval(e.arg, env)[k - 1:k, :]

    def _Basis(self, e, env):
        k = self.quantity(e.index.name, self.step(e.index.time, env))
        n = int(sp.sympify(self.ctx.declarations[e.index.name].shape[0]).subs(self.sizes))
        return np.eye(n)[:, k - 1:k]

    def _Sum(self, e, env):
        lo, hi = self.step(e.lo, env), self.step(e.hi, env)
        return sum(self.eval(e.body, {**env, e.var: s}) for s in range(lo, hi + 1))

    def _Diag(self, e, env):
        return anp.diag(self.eval(e.arg, env)[:, 0])


def reference_loss(ctx, loss: str, data: dict, sizes: dict, T: int, B: int, batched: set) -> float:
    """The loss summed over the B examples, each evaluated on its own."""
    return sum(Example(ctx, data, sizes, T, b, batched).quantity(loss, None)[0, 0] for b in range(B))


def reference_grads(ctx, loss, arrays: dict, names: list, sizes, T, B, batched) -> tuple:
    """(loss, {name: gradient}) by autograd, for the float arrays named `names`."""
    fixed = {n: a for n, a in arrays.items() if n not in names}

    def f(free):
        return reference_loss(ctx, loss, {**fixed, **free}, sizes, T, B, batched)
    free = {n: arrays[n] for n in names}
    return f(free), grad(f)(free)
