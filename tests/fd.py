"""Finite-difference truth for the statements of a derivation file, independent of the engines.

A claim's truth here comes from numbers: every quantity is computed forward in
NumPy float64 from random inputs (σ as 1/(1 + e^{-x})), and every derivative
∂a/∂b a claim writes is a central finite difference -- b perturbed entry by
entry, everything downstream of it computed again.  Nothing here uses SymPy or
the engines; only the parsed intermediate form (what the file says) is read.

`truth(ctx, claim)` is "true" when both sides agree at every step t of every
length T tried (1 .. a few steps past the claim's reach), "false" with where
they differ otherwise, "ill-typed" when the shapes do not match.
"""
from __future__ import annotations

import itertools

import numpy as np
import sympy as sp

from derivations.form import ir
from derivations.form.shapes import with_indices


def _sigma(x):
    return 1 / (1 + np.exp(-x))


def _indicator(x):
    """1[x > 0]; at exactly 0 (a kink, where ReLU has no derivative) NaN, so a line never agrees there."""
    return np.where(x > 0, 1.0, np.where(x < 0, 0.0, np.nan))


FUNCTIONS = {
    "sigma": (_sigma, lambda x: _sigma(x) * (1 - _sigma(x))),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "exp": (np.exp, np.exp),
    "log": (np.log, lambda x: 1 / x),
    "relu": (lambda x: np.maximum(0.0, x), _indicator),
    "ind": (_indicator, lambda x: np.where(x != 0, 0.0, np.nan)),
}
# A declared f : R -> R (Lemma 1's generic f) is this one, with f' and f'': neither even nor odd, so that a
# sign slip inside f or f' never agrees by accident.
GENERIC = (lambda x: x ** 3 + x ** 2 + 2 * x + 1, lambda x: 3 * x ** 2 + 2 * x + 2, lambda x: 6 * x + 2)
EPS = 1e-6


class ShapeError(Exception):
    pass


class Run:
    """One forward pass at numbers.  `changed`: {(name, step): value} put in place of a computed or given
    value (a perturbation); `frozen_before`: defined quantities at steps before it are taken from `base`."""

    def __init__(self, ctx: ir.Context, sizes: dict, T: int, inputs: dict, indices: dict, changed=None,
                 frozen_before=None, base=None):
        self.ctx, self.sizes, self.T = ctx, sizes, T
        self.inputs, self.indices = inputs, indices
        self.changed = changed or {}
        self.frozen_before, self.base = frozen_before, base
        self.memo: dict = {}

    # ---------------------------------------------------------------- values

    def value(self, name: str, step):
        key = (name, step)
        if key in self.changed:
            return self.changed[key]
        ctx = self.ctx
        decl = ctx.declarations.get(name)
        if step is not None and step == 0 and (name + "_0") in ctx.declarations:
            return self.inputs[(name, 0)]
        named = ctx.definitions.get(name)
        if step is not None and decl is None and named is not None and named.notation:
            return self.ev(named.expr, self.env_for(named, step))  # dh_0 := ∂L/∂h_0, whatever the step
        if step is not None and not 1 <= step <= self.T:
            return None                                 # zero, of the quantity's shape
        if decl is not None and decl.kind == "matrix" and (name not in ctx.definitions
                                                           or ctx.definitions[name].notation):
            if name in self.abstract():
                return self.abstract_loss(name)
            return self.inputs[(name, step if decl.sequence else None)]
        d = ctx.definitions[name]
        if d.notation:
            return self.ev(d.expr, self.env_for(d, step))
        if self.frozen_before is not None and step is not None and step < self.frozen_before:
            return self.base.value(name, step)
        if key not in self.memo:
            self.memo[key] = self.ev(d.expr, self.env_for(d, step))
        return self.memo[key]

    def env_for(self, d: ir.Definition, step):
        env = {"T": self.T}
        if d.target.time is not None and d.target.time.var is not None:
            env[d.target.time.var] = step - d.target.time.offset
        return env

    def abstract(self) -> dict:
        """Declared scalars that are not defined but differentiated (with given gradients): {name: given}."""
        out = {}
        for n, d in self.ctx.definitions.items():
            if d.notation and n in self.ctx.declarations and isinstance(d.expr.of, ir.Ref) \
                    and d.expr.of.name not in self.ctx.definitions and isinstance(d.expr.wrt, ir.Ref):
                out.setdefault(d.expr.of.name, {})[d.expr.wrt.name] = n
        return out

    def abstract_loss(self, name):
        """ℓ = Σ over the quantities o with a given gradient g of <g, o> (the format's abstract loss)."""
        total = 0.0
        for o, g in self.abstract()[name].items():
            steps = range(1, self.T + 1) if self.ctx.is_sequence(o) else [None]
            for s in steps:
                v = self.value(o, s)
                gv = self.inputs[(g, s if self.ctx.declarations[g].sequence else None)]
                if v is not None:
                    total += float(np.sum(gv * v))
        return np.array([[total]])

    def shape_of(self, e):
        from derivations.form.shapes import Typer
        rows, cols = Typer(self.ctx).infer(e)
        sub = {ir.size_symbol(k): v for k, v in self.sizes.items()}
        return int(sp.sympify(rows).xreplace(sub)), int(sp.sympify(cols).xreplace(sub))

    def ev(self, e: ir.Expr, env: dict):
        out = getattr(self, "_" + type(e).__name__)(e, env)
        return out

    def _Ref(self, e, env):
        step = e.time.at(env) if e.time is not None else None
        v = self.value(e.name, step)
        return np.zeros(self.shape_of(e)) if v is None else v

    def _Number(self, e, env):
        return np.array([[float(e.value)]])

    def _StepIf(self, e, env):
        return np.array([[1.0 if e.holds(env) else 0.0]])

    def _Add(self, e, env):
        vals = [self.ev(t, env) for t in e.terms]
        shape = max((v.shape for v in vals), key=lambda s: s[0] * s[1])
        for v in vals:
            if v.shape != shape and v.shape != (1, 1):
                raise ShapeError(f"sum of {shape} and {v.shape}")
        return sum(vals[1:], vals[0])

    def _Neg(self, e, env):
        return -self.ev(e.arg, env)

    def _MatMul(self, e, env):
        a, b = self.ev(e.left, env), self.ev(e.right, env)
        if a.shape == (1, 1) and self.shape_of(e.left) == (1, 1) and a.shape[1] != b.shape[0]:
            return a[0, 0] * b
        if b.shape == (1, 1) and self.shape_of(e.right) == (1, 1) and a.shape[1] != b.shape[0]:
            return a * b[0, 0]
        if a.shape[1] != b.shape[0]:
            raise ShapeError(f"product of {a.shape} and {b.shape}")
        return a @ b

    def _Hadamard(self, e, env):
        a, b = self.ev(e.left, env), self.ev(e.right, env)
        if a.shape != b.shape:
            raise ShapeError(f"element-wise product of {a.shape} and {b.shape}")
        return a * b

    def _Div(self, e, env):
        return self.ev(e.num, env) / self.ev(e.den, env)

    def _Transpose(self, e, env):
        return self.ev(e.arg, env).T

    def _Power(self, e, env):
        return self.ev(e.arg, env) ** e.exponent

    def _Apply(self, e, env):
        fn = FUNCTIONS.get(e.function, GENERIC)[e.derivative]
        return fn(self.ev(e.arg, env))

    def _Softmax(self, e, env):
        a = self.ev(e.arg, env)
        z = np.exp(a - a.max())
        return z / z.sum()

    def _Diag(self, e, env):
        a = self.ev(e.arg, env)
        return np.diag(a[:, 0])

    def index(self, ref: ir.Ref, env) -> int:
        step = ref.time.at(env) if ref.time is not None else None
        if (ref.name, step) not in self.indices:
            raise ShapeError(f"the index {ref.name} has no value at step {step}")     # read past the end
        return self.indices[(ref.name, step)]

    def _Component(self, e, env):
        a, k = self.ev(e.arg, env), self.index(e.index, env)
        if not 1 <= k <= a.shape[0]:
            raise ShapeError(f"entry {k} of a column of {a.shape[0]}")        # an entry index past the column
        return a[k - 1:k, :1]

    def _MatrixEntry(self, e, env):
        i, j = self.index(e.row, env), self.index(e.col, env)
        a = self.ev(e.arg, env)
        if not (1 <= i <= a.shape[0] and 1 <= j <= a.shape[1]):
            raise ShapeError(f"entry [{i}, {j}] of a {a.shape} matrix")
        return a[i - 1:i, j - 1:j]

    def _Kronecker(self, e, env):
        return np.array([[1.0 if self.index(e.a, env) == self.index(e.b, env) else 0.0]])

    def _Basis(self, e, env):
        n = self.shape_of(e)[0]
        out = np.zeros((n, 1))
        out[self.index(e.index, env) - 1, 0] = 1
        return out

    def _Sum(self, e, env):
        lo, hi = e.lo.at(env), e.hi.at(env)
        terms = [self.ev(e.body, {**env, e.var: s}) for s in range(lo, hi + 1)]
        return sum(terms[1:], terms[0]) if terms else np.zeros(self.shape_of(e))

    def _Ones(self, e, env):
        return np.ones(self.shape_of(e))

    def _Block(self, e, env):
        return np.block([[self.ev(x, env) for x in row] for row in e.rows])

    def _Deriv(self, e: ir.Deriv, env):
        """Central differences: perturb each entry of the quantity differentiated with respect to."""
        wrt = e.wrt
        step = wrt.time.at(env) if wrt.time is not None else None
        base = self.ev(wrt, env)
        of0 = self.ev(e.of, env)
        outside = step is not None and not (1 <= step <= self.T or (step == 0 and wrt.name + "_0"
                                                                   in self.ctx.declarations))
        frozen = None
        if self.ctx.held_fixed and isinstance(e.of, ir.Ref) and e.of.time is not None:
            frozen = e.of.time.at(env)
        cols = []
        for k in range(base.size):
            if outside:
                cols.append(np.zeros(of0.size))
                continue
            parts = []
            for sign in (1, -1):
                v = base.copy().reshape(-1)
                v[k] += sign * EPS
                run = self.perturbed(wrt.name, step, v.reshape(base.shape), frozen)
                parts.append(run.ev(e.of, env).reshape(-1))
            cols.append((parts[0] - parts[1]) / (2 * EPS))
        grad = np.array(cols)                            # row k: d of / d wrt_k
        if of0.shape == (1, 1):
            return grad[:, 0].reshape(base.shape)
        if of0.shape[1] == 1 and base.shape[1] == 1:
            return grad                                  # denominator layout: [j, i] = d of_i / d wrt_j
        raise ShapeError(f"a derivative of a {of0.shape} matrix with respect to a {base.shape} matrix")

    def perturbed(self, name, step, value, frozen):
        changed = dict(self.changed)
        decl = self.ctx.declarations.get(name)
        inputs = self.inputs
        if decl is not None and decl.kind == "matrix" and name not in self.ctx.definitions:
            inputs = dict(self.inputs)
            inputs[(name, step if decl.sequence else None)] = value
        elif step == 0 and (name + "_0") in self.ctx.declarations:
            inputs = dict(self.inputs)
            inputs[(name, 0)] = value
        else:
            changed[(name, step)] = value
        return Run(self.ctx, self.sizes, self.T, inputs, self.indices, changed, frozen, self if frozen else None)


# ---------------------------------------------------------------- drawing inputs, deciding a claim

def draw(ctx: ir.Context, sizes: dict, T: int, rng) -> tuple[dict, dict]:
    sub = {ir.size_symbol(k): v for k, v in sizes.items()}
    inputs, indices = {}, {}
    for name, d in ctx.declarations.items():
        dims = tuple(int(sp.sympify(x).xreplace(sub)) for x in d.shape)
        if d.kind == "index":
            for s in (range(1, T + 1) if d.sequence else [None]):
                indices[(name, s)] = int(rng.integers(1, dims[0] + 1))
        elif d.kind == "matrix":
            if name.endswith("_0") and name[:-2] in ctx.definitions:
                inputs[(name[:-2], 0)] = rng.uniform(-1, 1, dims)
            for s in (range(1, T + 1) if d.sequence else [None]):
                # a binary label (y \in \{0, 1\}) is 0 or 1
                inputs[(name, s)] = (rng.integers(0, 2, dims).astype(float) if d.binary
                                     else rng.uniform(-1, 1, dims))
    return inputs, indices


def every_entry(ctx: ir.Context, claim: ir.Claim, sizes: dict, drawn: dict) -> list[dict]:
    """The drawn index values with every value of each free entry index of the claim (one assignment when it
    has none): a line of entries states its equality for every value."""
    sub = {ir.size_symbol(k): v for k, v in sizes.items()}
    letters = list(claim.indices)
    ranges = [range(1, int(sp.sympify(claim.indices[x]).xreplace(sub)) + 1) for x in letters]
    return [{**drawn, **{(x, None): v for x, v in zip(letters, values)}} for values in itertools.product(*ranges)]


def reach(claim: ir.Claim) -> int:
    out = conditions = 0
    for side in (claim.lhs, claim.rhs):
        for n in side.walk():
            if isinstance(n, ir.Ref) and n.time is not None and n.time.var == "t":
                out = max(out, abs(n.time.offset))
            if isinstance(n, ir.StepIf):           # 1[t = 3] 1[t = T - 3] holds together at T = 6 only
                conditions += abs(n.left.offset) + abs(n.right.offset)
    return max(out, conditions)


def truth(ctx: ir.Context, claim: ir.Claim, seed: int = 0, points: int = 2) -> tuple[str, str]:
    """("true" | "false" | "ill-typed", where) for a claim, by numbers and finite differences.

    A line of entries (∂q_k/∂W_{i,j} = ...) is decided at every value of its free entry indices."""
    rng = np.random.default_rng(seed)
    ctx = with_indices(ctx, claim)
    names = [str(s) for s in ctx.sizes()]
    sizes = {n: 2 + k % 3 for k, n in enumerate(names)}          # 2, 3, 4, 2, ...: apart, small
    lengths = [ctx.length] if ctx.length else ([None] if not ctx.has_time else
                                                list(range(1, reach(claim) + 4)))
    for T in lengths:
        for _ in range(points):
            inputs, drawn = draw(ctx, sizes, T or 0, rng)
            uses_t = "t" in ir.time_vars(claim.lhs) | ir.time_vars(claim.rhs)
            for indices, t in itertools.product(every_entry(ctx, claim, sizes, drawn),
                                                range(1, T + 1) if uses_t and T else [None]):
                run = Run(ctx, sizes, T or 0, inputs, indices)
                env = {"T": T, "t": t}
                try:
                    a, b = run.ev(claim.lhs, env), run.ev(claim.rhs, env)
                except ShapeError as e:
                    return "ill-typed", str(e)
                if a.shape != b.shape:
                    return "ill-typed", f"{a.shape} vs {b.shape}"
                scale = max(1.0, float(np.abs(a).max()), float(np.abs(b).max()))
                if float(np.abs(a - b).max()) > 1e-5 * scale:
                    return "false", f"T={T}, t={t}: {a.ravel()[:4]} vs {b.ravel()[:4]}"
    return "true", ""


# ---------------------------------------------------------------- an algorithm's loop, run in NumPy

def _at(e: ir.Expr, var: str, t: int) -> ir.Expr:
    """e at step t: every step var+k written as the number t+k (sums keep their own variable)."""
    def fix(n):
        if isinstance(n, ir.Ref) and n.time is not None and n.time.var == var:
            return ir.Ref(n.name, ir.Time(None, t + n.time.offset))
        return n
    return ir.transform(e, fix)


class LoopRun(Run):
    """A forward pass whose reads of the loop's values come from `values` (what the loop computed so far)."""

    def __init__(self, *args, values=None, var="t", **kw):
        super().__init__(*args, **kw)
        self.values, self.var = values if values is not None else {}, var

    def is_gradient(self, e):
        d = self.ctx.definitions.get(e.name) if isinstance(e, ir.Ref) else None
        given = isinstance(e, ir.Ref) and e.name in self.ctx.declarations        # an input: g_t := ∂ℓ/∂o_t declared
        return isinstance(e, ir.Deriv) or (d is not None and isinstance(d.expr, ir.Deriv) and not given)

    def ev(self, e, env):
        if isinstance(e, (ir.Ref, ir.Deriv)) and env.get(self.var) is not None:
            key = _at(e, self.var, env[self.var])
            if key in self.values:
                return self.values[key]
            if self.is_gradient(e):
                return np.zeros(self.shape_of(e))      # the loop starts what it has not computed at zero
        return super().ev(e, env)


def run_loop(ctx: ir.Context, alg, sizes: dict, T: int, inputs: dict, indices: dict) -> dict:
    """{key at numbered steps: value}: the loop's lines run from t = T down to 1, as a reader runs them."""
    values: dict = {}
    for t in range(T, 0, -1):
        for u in alg.updates:
            run = LoopRun(ctx, sizes, T, inputs, indices, values=values)
            value = run.ev(u.rhs, {"T": T, "t": t})
            key = _at(u.target, "t", t)
            values[key] = values.get(key, 0) + value if u.op == "+=" else value
    return values


def loop_statuses(ctx: ir.Context, alg, T: int, seed: int = 0, points: int = 2) -> dict:
    """{key: "right" | "wrong"}: every value the loop computes against what it stands for, by finite
    differences of the forward pass (no line of the file is used for the truth); ShapeError when a line
    does not compose."""
    rng = np.random.default_rng(seed)
    names = [str(s) for s in ctx.sizes()]
    sizes = {n: 2 + k % 3 for k, n in enumerate(names)}
    out: dict = {}
    for _ in range(points):
        inputs, indices = draw(ctx, sizes, T, rng)
        values = run_loop(ctx, alg, sizes, T, inputs, indices)
        truth_run = Run(ctx, sizes, T, inputs, indices)
        for key, got in values.items():
            true = truth_run.ev(key, {"T": T})
            if got.shape != true.shape:
                raise ShapeError(f"{key}: {got.shape} vs {true.shape}")
            scale = max(1.0, float(np.abs(true).max()))
            wrong = float(np.abs(got - true).max()) > 1e-5 * scale
            out[key] = "wrong" if wrong or out.get(key) == "wrong" else "right"
    return out


def algorithm_truth(ctx: ir.Context, alg, lengths=(1, 2, 3, 4)) -> str:
    """"true" when every value the loop computes is what it stands for at every T tried, "false" when one is
    not, "ill-typed" when a line does not compose."""
    try:
        for T in lengths:
            if "wrong" in loop_statuses(ctx, alg, T).values():
                return "false"
    except (ShapeError, ValueError):
        return "ill-typed"
    return "true"
