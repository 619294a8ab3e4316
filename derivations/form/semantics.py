"""The meaning of a context at explicit sizes: a graph of defined quantities over free inputs.

Where it sits: intermediate form (`derivations.form.ir`) -> **this model** -> the
"concrete" engine (`derivations.engines.explicit`) -> verdicts.

At explicit sizes (H = 2, V = 3, ...) and a sequence length T, every free
input (a declared matrix, a declared sequence at each step, an initial state,
the gradient of an abstract loss) becomes a matrix of SymPy symbols, and every
defined quantity at each step becomes a *node*: a matrix of value symbols
(h_2[0], ...), each with its defining expression in terms of earlier symbols.
Defined quantities therefore stay defined: nothing downstream may treat h_2[0]
as free, because its definition travels with it (`definitions`), and a
numeric point is always a point of the free inputs from which every node is
recomputed (`forward`).

Semantics (docs/derivation-format.md):
- a quantity at a step outside 1..T is zero, except a declared initial state;
- ∂a/∂x is the total derivative through every definition and every step
  (SymPy's `diff` of each node's own definition, combined by the chain rule),
  as textbooks mean it; a context that declares `Derivatives: earlier steps
  held fixed` reads ∂a_s/∂x with the quantities at steps before s held fixed
  (the note's ℓ_t, the loss from step t on as a function of the state
  entering step t);
- a loss that is declared (ℓ ∈ ℝ) but not defined is an arbitrary function of
  the quantities whose gradient is given: a name both declared and defined as
  that gradient (dv ∈ ℝ^m, dv := ∂ℓ/∂V) is a free input, and ℓ = Σ <dv, V>
  has exactly those first derivatives, which are all a gradient uses.
"""
from __future__ import annotations

import itertools
from functools import cached_property

import mpmath
import sympy as sp

from . import ir
from .functions import MP_APPLY, MPMATH_FUNCTIONS, apply_function, real
from .indexform import diff_entry
from .printer import to_latex
from .shapes import IllTyped, Typer, declared_size, fmt, is_scalar_shape


class ShapeMismatch(Exception):
    """Shapes do not compose at these explicit sizes."""


def _sym(name: str, i: int, j: int, cols: int, binary: bool = False) -> sp.Symbol:
    clean = name.replace("\\", "")
    text = f"{clean}[{i}]" if cols == 1 else f"{clean}[{i},{j}]"
    # A binary label (y \in \{0, 1\}) is an integer symbol: the counterexample sampler gives it 0 or 1.
    return sp.Symbol(text, integer=True, nonnegative=True) if binary else sp.Symbol(text, real=True)


class Model(ir.Visitor):
    """One context at explicit sizes, length T and index values: free inputs, nodes, derivatives."""

    def __init__(self, ctx: ir.Context, sizes: dict, T: int | None = None, indices: dict | None = None):
        self.ctx = ctx
        self.sizes = {ir.size_symbol(k) if isinstance(k, str) else k: v for k, v in sizes.items()}
        self.T = T
        self.indices = dict(indices or {})        # (index name, step) -> 1-based value
        self.typer = Typer(ctx)
        self.inputs: dict = {}                     # (name, step) -> matrix of free symbols
        self.nodes: dict = {}                      # (name, step) -> matrix of value symbols
        self.definitions: dict = {}                # value symbol -> its defining expression
        self.step_of: dict = {}                    # value symbol -> its step (None: not a sequence)
        self.depends: dict = {}                    # value symbol -> every symbol it depends on
        self.order: list = []                      # value symbols, each after what it depends on
        self.consumers: dict = {}                  # symbol -> node symbols whose definition uses it
        self.adjoints: dict = {}                   # (loss symbol, cut, symbol) -> adjoint symbol
        self.adjoint_symbols: set = set()
        self._adjoint_of: dict = {}                # definition -> adjoint symbol (one symbol per quantity)
        self.kin: dict = {}                        # symbol -> symbols of its own kind it depends on
        self._busy: set = set()
        self._dmemo: dict = {}
        self._real: dict = {}

    # ---------------------------------------------------------------- shapes and names

    def dims(self, shape) -> tuple[int, int]:
        return tuple(int(sp.sympify(s).xreplace(self.sizes)) for s in shape)

    def zeros(self, e: ir.Expr) -> sp.Matrix:
        return sp.zeros(*self.dims(self.typer.infer(e)))

    @cached_property
    def abstract_losses(self) -> set:
        """Scalars declared but not defined that are differentiated somewhere: arbitrary losses."""
        ctx = self.ctx
        exprs = [d.expr for d in ctx.definitions.values()] + [x for c in ctx.claims if c.lhs is not None
                                                              for x in (c.lhs, c.rhs)]
        out = set()
        for e in exprs:
            for node in e.walk():
                if isinstance(node, ir.Deriv) and isinstance(node.of, ir.Ref):
                    d = ctx.declarations.get(node.of.name)
                    if d is not None and d.kind == "matrix" and node.of.name not in ctx.definitions \
                            and is_scalar_shape(d.shape):
                        out.add(node.of.name)
        return out

    def given(self, loss: str) -> dict:
        """{quantity: name of its given gradient} of the abstract loss `loss`: names declared *and* defined as
        ∂loss/∂quantity.  Only that loss's: a gradient given for another loss (∂m/∂z) says nothing of this one.
        Two names for the same gradient are one value (`same_given`): the first is the loss's."""
        return given_gradients(self.ctx, loss)

    @cached_property
    def same_given(self) -> dict:
        """{name: the first name given for the same gradient}, for a second name of a given gradient."""
        out, first = {}, {}
        for n, d in self.ctx.definitions.items():
            if d.notation and n in self.ctx.declarations and isinstance(d.expr.of, ir.Ref) \
                    and isinstance(d.expr.wrt, ir.Ref):
                key = (d.expr.of.name, d.expr.wrt.name, d.expr.wrt.time)
                if key in first:
                    out[n] = first[key]
                else:
                    first[key] = n
        return out

    # ---------------------------------------------------------------- values

    def _free(self, key, shape) -> sp.Matrix:
        if key not in self.inputs:
            name, step = key
            label = name if step is None else f"{name}_{step}"
            r, c = self.dims(shape)
            decl = self.ctx.declarations.get(name)
            binary = decl is not None and decl.binary
            self.inputs[key] = sp.Matrix(r, c, lambda i, j: _sym(label, i, j, c, binary))
        return self.inputs[key]

    @cached_property
    def input_symbols(self) -> set:
        return set()

    def step_in_range(self, step) -> bool:
        return step is None or (self.T is not None and 1 <= step <= self.T)

    def value(self, ref: ir.Ref, env: dict) -> sp.Matrix:
        """The value of a quantity as written (at the step its time index gives)."""
        if ref.name in self.same_given:             # gU and dU both := ∂ℓ/∂U: one value
            ref = ir.Ref(self.same_given[ref.name], ref.time)
        ctx, name = self.ctx, ref.name
        step = ref.time.at(env) if ref.time is not None else None
        decl = ctx.declarations.get(name)
        if decl is not None and decl.kind == "index":
            raise IllTyped(f"{name} is an index, not a matrix")
        if ref.time is not None and step == 0 and (name + "_0") in ctx.declarations:
            return self._free((name, 0), ctx.declarations[name + "_0"].shape)
        named = ctx.definitions.get(name)
        if decl is None and named is not None and named.notation and step is not None:
            # A name for a derivative is its definition at any step: dh_0 := ∂L/∂h_0 is the gradient of the
            # initial state h_0; past T the derivative itself is zero.
            return self.evaluate(named.expr, self._env_for(named, step, env))
        if not self.step_in_range(step):
            return self.zeros(ref)
        if name in self.abstract_losses:
            return self.abstract_loss(name)
        if decl is not None and decl.kind == "matrix":
            # Declared: a free input (a given gradient is declared and defined: its definition only
            # says which quantity it is the gradient at).
            return self._free((name, step if decl.sequence else None), decl.shape)
        definition = ctx.definitions.get(name)
        if definition is None:
            raise IllTyped(f"{name} is neither declared nor defined")
        if definition.notation:
            return self.evaluate(definition.expr, self._env_for(definition, step, env))
        return self.node(name, step, env)

    def _env_for(self, definition: ir.Definition, step, env) -> dict:
        out = {"T": env.get("T", self.T)}
        if definition.target.time is not None and definition.target.time.var is not None:
            out[definition.target.time.var] = step - definition.target.time.offset
        return out

    def node(self, name: str, step, env) -> sp.Matrix:
        key = (name, step)
        if key in self.nodes:
            return self.nodes[key]
        if key in self._busy:
            raise IllTyped(f"{name} is defined in terms of itself at step {step}")
        self._busy.add(key)
        try:
            definition = self.ctx.definitions[name]
            expr = self.evaluate(definition.expr, self._env_for(definition, step, env))
        finally:
            self._busy.discard(key)
        label = name if step is None else f"{name}_{step}"
        values = sp.Matrix(expr.rows, expr.cols, lambda i, j: _sym(label, i, j, expr.cols))
        for v, e in zip(values, expr):
            self._define(v, e, step)
            for s in e.free_symbols:
                self.consumers.setdefault(s, []).append(v)
        self.nodes[key] = values
        return values

    def _define(self, v, e, step, adjoint=False):
        self.definitions[v] = e
        self.step_of[v] = step
        deps = set(e.free_symbols)
        for s in list(deps):
            deps |= self.depends.get(s, set())
        self.depends[v] = deps
        # Dependencies among symbols of the same kind (nodes on nodes, adjoints on adjoints): which
        # symbol of a difference to open first (`unfold_pair`).
        same_kind = {x for x in e.free_symbols if (x in self.adjoint_symbols) == adjoint and x in self.definitions}
        for x in list(same_kind):
            same_kind |= self.kin.get(x, set())
        self.kin[v] = same_kind
        if adjoint:
            self.adjoint_symbols.add(v)
        self.order.append(v)

    def abstract_loss(self, name: str) -> sp.Matrix:
        """ℓ = sum over the quantities o with a given gradient g of <g, o>.

        It is a node like a defined quantity, so that its derivatives are adjoints.
        """
        key = (name, None)
        if key in self.nodes:
            return self.nodes[key]
        given = self.given(name)
        if not given:
            raise IllTyped(f"{name} is declared but not defined, and no gradient of it is given "
                           f"(declare one, e.g. dv \\in \\mathbb{{R}}^{{n}}, dv := \\frac{{\\partial {name}}}{{\\partial V}})")
        total = sp.Integer(0)
        steps = range(1, (self.T or 0) + 1)
        for o, g in given.items():
            for step in (steps if self.ctx.is_sequence(o) else [None]):
                value = self.value(ir.Ref(o, ir.Time("t") if step is not None else None), {"T": self.T, "t": step})
                decl = self.ctx.declarations[g]
                G = self._free((g, step if decl.sequence else None), decl.shape)
                total += sum((a * b for a, b in zip(G, value)), sp.Integer(0))
        v = _sym(name, 0, 0, 1)
        self._define(v, total, None)
        for s in total.free_symbols:
            self.consumers.setdefault(s, []).append(v)
        self.nodes[key] = sp.Matrix([[v]])
        return self.nodes[key]

    # ---------------------------------------------------------------- evaluation

    def evaluate(self, e: ir.Expr, env: dict) -> sp.Matrix:
        return self.visit(e, env)

    def _Ref(self, e, env):
        return self.value(e, env)

    def _Number(self, e, env):
        return sp.Matrix([[sp.Rational(e.value.numerator, e.value.denominator)]])

    def _StepIf(self, e, env):
        return sp.Matrix([[1 if e.holds({"T": self.T, **env}) else 0]])

    def _Add(self, e, env):
        values = [(t, self.evaluate(t, env)) for t in e.terms]
        shaped = [v for t, v in values if not _literal(t)]
        shape = shaped[0].shape if shaped else (1, 1)
        total = sp.zeros(*shape)
        for t, v in values:
            if _literal(t) and v.shape == (1, 1):
                v = sp.ones(*shape) * v[0, 0]
            if v.shape != shape:
                raise ShapeMismatch(f"the sum ${to_latex(e)}$: {fmt(shape)} plus {fmt(v.shape)}")
            total += v
        return total

    def _Neg(self, e, env):
        return -self.evaluate(e.arg, env)

    def _scalar(self, e) -> bool:
        try:
            return is_scalar_shape(self.typer.infer(e))
        except IllTyped:
            return False

    def _MatMul(self, e, env):
        a, b = self.evaluate(e.left, env), self.evaluate(e.right, env)
        if a.shape == (1, 1) and self._scalar(e.left):
            return a[0, 0] * b
        if b.shape == (1, 1) and self._scalar(e.right):
            return a * b[0, 0]
        if a.shape[1] != b.shape[0]:
            raise ShapeMismatch(f"the product ${to_latex(e.left)} \\cdot {to_latex(e.right)}$: "
                                f"{fmt(a.shape)} times {fmt(b.shape)}")
        return a * b

    def _Hadamard(self, e, env):
        a, b = self.evaluate(e.left, env), self.evaluate(e.right, env)
        if a.shape != b.shape:
            raise ShapeMismatch(f"the element-wise product ${to_latex(e)}$: {fmt(a.shape)} and {fmt(b.shape)}")
        return a.multiply_elementwise(b)

    def _Div(self, e, env):
        a, b = self.evaluate(e.num, env), self.evaluate(e.den, env)
        if b.shape == (1, 1):
            return a / b[0, 0]
        if a.shape == (1, 1):
            return b.applyfunc(lambda x: a[0, 0] / x)
        if a.shape != b.shape:
            raise ShapeMismatch(f"${to_latex(e)}$: {fmt(a.shape)} over {fmt(b.shape)}")
        return sp.Matrix(a.rows, a.cols, lambda i, j: a[i, j] / b[i, j])

    def _Transpose(self, e, env):
        return self.evaluate(e.arg, env).T

    def _Power(self, e, env):
        return self.evaluate(e.arg, env).applyfunc(lambda x: x ** e.exponent)

    def _Apply(self, e, env):
        a = self.evaluate(e.arg, env)
        out = a.applyfunc(lambda x: apply_function(e.function, e.derivative, x))
        if any(x is None for x in out):
            raise IllTyped(f"{e.function} has no derivative of order {e.derivative} here")
        return out

    def _Softmax(self, e, env):
        a = self.evaluate(e.arg, env)
        if a.cols != 1:
            raise ShapeMismatch(f"softmax of a {fmt(a.shape)} matrix")
        total = sum((sp.exp(x) for x in a), sp.Integer(0))
        return a.applyfunc(lambda x: sp.exp(x) / total)

    def _Ones(self, e, env):
        return sp.ones(*self.dims((declared_size(self.ctx, e.size), 1)))

    def _Diag(self, e, env):
        a = self.evaluate(e.arg, env)
        if a.cols != 1:
            raise ShapeMismatch(f"diag of a {fmt(a.shape)} matrix")
        return sp.diag(*a)

    def index_value(self, ref: ir.Ref, env) -> int:
        step = ref.time.at(env) if ref.time is not None else None
        if (ref.name, step) not in self.indices:
            raise IllTyped(f"the index {ref.name} has no value at step {step}")
        return self.indices[(ref.name, step)]

    def _Component(self, e, env):
        a = self.evaluate(e.arg, env)
        if a.cols != 1:
            raise ShapeMismatch(f"a component of a {fmt(a.shape)} matrix")
        k = self.index_value(e.index, env)
        if not 1 <= k <= a.rows:
            raise IllTyped(f"the index {e.index.name} = {k} is past the {a.rows} entries of a column")
        return sp.Matrix([[a[k - 1, 0]]])

    def _MatrixEntry(self, e, env):
        a = self.evaluate(e.arg, env)
        i, j = self.index_value(e.row, env), self.index_value(e.col, env)
        if not (1 <= i <= a.rows and 1 <= j <= a.cols):
            raise IllTyped(f"the entry [{i}, {j}] is past the {fmt(a.shape)} matrix")
        return sp.Matrix([[a[i - 1, j - 1]]])

    def _Kronecker(self, e, env):
        return sp.Matrix([[1 if self.index_value(e.a, env) == self.index_value(e.b, env) else 0]])

    def _Basis(self, e, env):
        n = self.dims(self.typer.infer(e))[0]
        k = self.index_value(e.index, env)
        return sp.Matrix(n, 1, lambda i, _: 1 if i == k - 1 else 0)

    def _Sum(self, e, env):
        lo, hi = e.lo.at(env), e.hi.at(env)
        total = None
        for s in range(lo, hi + 1):
            v = self.evaluate(e.body, {**env, e.var: s})
            total = v if total is None else total + v
        return total if total is not None else self.zeros(e)

    def _Block(self, e, env):
        rows = [[self.evaluate(x, env) for x in row] for row in e.rows]
        try:
            return sp.Matrix(sp.BlockMatrix(rows).as_explicit())
        except (ValueError, sp.ShapeError) as err:
            raise ShapeMismatch(f"the blocks of ${to_latex(e)}$ do not fit together ({err})") from None

    def _Deriv(self, e: ir.Deriv, env):
        of = self.evaluate(e.of, env)
        wrt_ref = e.wrt
        step = wrt_ref.time.at(env) if wrt_ref.time is not None else None
        decl = self.ctx.declarations.get(wrt_ref.name)
        definition = self.ctx.definitions.get(wrt_ref.name)
        if definition is not None and definition.notation:
            raise IllTyped(f"${to_latex(wrt_ref)}$ names a derivative; differentiate with respect to a quantity")
        wrt = self.value(wrt_ref, env)
        outside = not self.step_in_range(step) and not (step == 0 and (wrt_ref.name + "_0") in self.ctx.declarations)
        if decl is not None and not decl.sequence and wrt_ref.time is None:
            outside = False
        cut = None
        if self.ctx.held_fixed and isinstance(e.of, ir.Ref) and e.of.time is not None:
            cut = e.of.time.at(env)         # the file's reading: the steps before the quantity's are held fixed
        if of.shape == (1, 1):
            if outside:
                return sp.zeros(*wrt.shape)
            if of[0, 0] in self.definitions:      # a named scalar (a loss): reverse mode, adjoint symbols
                return wrt.applyfunc(lambda x: self.gradient(of[0, 0], x, cut))
            return wrt.applyfunc(lambda x: self.total(of[0, 0], x, cut))
        if of.cols == 1 and wrt.cols == 1:
            if outside:
                return sp.zeros(wrt.rows, of.rows)
            return sp.Matrix(wrt.rows, of.rows, lambda j, i: self.total(of[i, 0], wrt[j, 0], cut))
        raise ShapeMismatch(f"${to_latex(e)}$: a derivative of a {fmt(of.shape)} matrix with respect to a "
                            f"{fmt(wrt.shape)} matrix")

    # ---------------------------------------------------------------- the chain rule

    def _uses(self, loss, x, cut):
        """The nodes through which x reaches `loss`, steps before `cut` held fixed."""
        out = []
        for c in self.consumers.get(x, ()):
            if c != loss and c not in self.depends.get(loss, ()):
                continue
            step = self.step_of.get(c)
            if cut is not None and step is not None and step < cut:
                continue
            out.append(c)
        return out

    def gradient(self, loss, x, cut):
        """∂loss/∂x: the adjoint symbol of a node x, or the sum over the uses of an input x."""
        if x == loss:
            return sp.Integer(1)
        if x in self.definitions:
            return self.adjoint(loss, x, cut)
        return sum((self.adjoint(loss, c, cut) * diff_entry(self.definitions[c], x)
                    for c in self._uses(loss, x, cut)), sp.Integer(0))

    def adjoint(self, loss, n, cut):
        """A symbol for ∂loss/∂n, defined by reverse accumulation over n's uses (SymPy's local derivatives)."""
        if n == loss:
            return sp.Integer(1)
        key = (loss, cut, n)
        if key not in self.adjoints:
            uses = self._uses(loss, n, cut)
            if not uses:
                self.adjoints[key] = sp.Integer(0)
                return self.adjoints[key]
            definition = sum((self.adjoint(loss, c, cut) * diff_entry(self.definitions[c], n) for c in uses),
                             sp.Integer(0))
            # Two adjoints with the same definition are the same quantity (∂ℓ_t/∂h_s and ∂ℓ_{t+1}/∂h_s
            # for s > t): one symbol, so that both sides of a recurrence meet without opening the future.
            a = self._adjoint_of.get(definition)
            if a is None:
                a = sp.Symbol(f"d{loss}/d{n}" + (f"|{cut}" if cut is not None else ""), real=True)
                self._define(a, definition, None, adjoint=True)
                self._adjoint_of[definition] = a
            self.adjoints[key] = a
        return self.adjoints[key]

    def total(self, expr, x, cut):
        """d expr / d x through every node expr depends on; nodes at steps before `cut` held fixed."""
        expr = sp.sympify(expr)
        out = diff_entry(expr, x) if expr.has(x) else sp.Integer(0)
        for n in expr.free_symbols:
            if n == x or n not in self.definitions:
                continue
            dn = self._dnode(n, x, cut)
            if dn != 0:
                out += diff_entry(expr, n) * dn
        return out

    def _dnode(self, n, x, cut):
        if n == x:
            return sp.Integer(1)
        if x not in self.depends.get(n, ()):
            return sp.Integer(0)
        step = self.step_of.get(n)
        if cut is not None and step is not None and step < cut:
            return sp.Integer(0)
        key = (n, x, cut)
        if key not in self._dmemo:
            self._dmemo[key] = self.total(self.definitions[n], x, cut)
        return self._dmemo[key]

    # ---------------------------------------------------------------- numbers

    def free_symbols(self) -> list:
        """Every free input symbol created so far, in a stable order."""
        return [s for key in sorted(self.inputs, key=lambda k: (str(k[0]), k[1] if k[1] is not None else -1))
                for s in self.inputs[key]]

    def needed(self, exprs) -> set:
        """Every symbol (node, adjoint or input) some expressions depend on, through every definition."""
        need = set()
        for e in exprs:
            for s in sp.sympify(e).free_symbols:
                need.add(s)
                need |= self.depends.get(s, set())
        return need

    def inputs_of(self, exprs) -> list:
        """The free inputs some expressions depend on, through every definition, in free_symbols' order.

        A model is shared by the claims of a process, so it holds the inputs of
        every claim seen so far; a counterexample names only its own claim's.
        """
        need = self.needed(exprs)
        return [s for s in self.free_symbols() if s in need]

    def unfold_pair(self, left, right):
        """Open definitions on both sides of an equation until they meet.

        A symbol present on one side only is opened first, unless another
        one-sided symbol of its kind is made of it (open ∂ℓ/∂h_1 before the
        ∂ℓ/∂h_2 it is made of; a node before the nodes it is made of): the
        two sides are then opened to the same depth and meet in the same
        symbols.  When every symbol is on both sides, the outermost are opened.
        Each opening replaces a symbol by its definition: an exact equality.
        """
        ls = {x for x in left.free_symbols if x in self.definitions}
        rs = {x for x in right.free_symbols if x in self.definitions}
        one_sided = ls ^ rs

        def blocked(x):
            # By a one-sided symbol of its kind made of it, or by a forward node on the other side whose
            # definition (however deep) holds it: opening x first would put the sides at different depths.
            # (An adjoint on the other side does not block: it is made of the forward nodes only once
            # differentiated, so waiting for it would never open x.)
            other = rs - ls if x in ls else ls - rs
            return (any(x in self.kin[y] for y in one_sided if y != x)
                    or any(x in self.depends[y] for y in other if y not in self.adjoint_symbols))
        chosen = {x for x in one_sided if not blocked(x)}
        if not chosen:
            present = ls | rs
            chosen = {x for x in present if not any(x in self.kin[y] for y in present if y != x)}
        table = {x: self.definitions[x] for x in chosen}
        return left.xreplace(table), right.xreplace(table)

    def unfold(self, e):
        """Replace the latest node symbols of e by their definitions, one level.

        Only nodes that no other node of e depends on are opened (p before the
        y it is made of), so both sides of a difference are opened to the
        same depth and meet in the same symbols.
        """
        present = [s for s in e.free_symbols if s in self.definitions]
        below = set()
        for s in present:
            below |= self.depends[s]
        table = {s: self.definitions[s] for s in present if s not in below}
        return e.xreplace(table) if table else e

    def forward(self, point: dict, digits: int = 60, only=None) -> dict:
        """Every node's (and adjoint's) value at a point of the free inputs, with the real functions.

        mpmath at `digits` digits; the inputs are exact rationals.  Each
        definition is compiled once (`mp_function`) and evaluated in order, so
        every defined quantity is recomputed from the free inputs.  `only`:
        the nodes some expressions need (`needed`); the others are skipped.
        """
        with mpmath.workdps(digits):
            values = {k: mpmath.mpf(v.p) / v.q for k, v in point.items()}
            for v in self.order:
                if only is not None and v not in only:
                    continue
                args, fn = self.compiled(v)
                values[v] = fn(*(values[a] for a in args))
        return values

    def compiled(self, v, expr=None):
        """(arguments, mpmath function) of a definition (or of `expr`), with real σ, tanh, f."""
        key = v if expr is None else ("expr", expr)
        if key not in self._real:
            e = real(self.definitions[v] if expr is None else expr)
            args = sorted(e.free_symbols, key=str)
            self._real[key] = (args, mp_function(args, [e], one=True))
        return self._real[key]

    def numeric_many(self, exprs, values: dict, digits: int = 60) -> list:
        """The values of several expressions (both sides of a claim, entry by entry), compiled once."""
        exprs = tuple(sp.sympify(e) for e in exprs)
        key = ("many", exprs)
        if key not in self._real:
            es = [real(e) for e in exprs]
            args = sorted(set().union(*(e.free_symbols for e in es)), key=str)
            self._real[key] = (args, mp_function(args, es))
        args, fn = self._real[key]
        with mpmath.workdps(digits):
            return list(fn(*(values[a] for a in args)))

    def numeric(self, expr, values: dict, digits: int = 60):
        """The value of an expression in free inputs and node symbols, given `forward`'s values."""
        with mpmath.workdps(digits):
            args, fn = self.compiled(None, sp.sympify(expr))
            return fn(*(values[a] for a in args))


def _literal(e) -> bool:
    return isinstance(e, ir.Number) or (isinstance(e, ir.Neg) and _literal(e.arg))


def given_gradients(ctx: ir.Context, loss: str) -> dict:
    """{quantity: the first name declared *and* defined as ∂loss/∂quantity}: the gradients the file gives of a
    loss it declares without defining (an abstract loss), that loss's only."""
    out = {}
    for n, d in ctx.definitions.items():
        if d.notation and n in ctx.declarations and isinstance(d.expr.of, ir.Ref) and d.expr.of.name == loss \
                and isinstance(d.expr.wrt, ir.Ref):
            out.setdefault(d.expr.wrt.name, n)
    return out


def _mp_supported(e) -> bool:
    return all(isinstance(x, (sp.Add, sp.Mul, sp.Pow, sp.Symbol, sp.Rational, sp.Float)) or type(x) in MP_APPLY
               for x in sp.preorder_traversal(e))


def mp_function(args: list, exprs: list, one: bool = False):
    """A function of the values of `args` (mpmath numbers) giving the values of `exprs` (a list; the
    value itself with one=True), with real σ, tanh, exp, log and 1[x > 0].

    It walks each expression (a shared subexpression once) and does what lambdify's mpmath code would
    do, operation for operation; lambdify itself prints and compiles Python source for each expression,
    which cost more than all the evaluations of a claim (each is evaluated at two to a dozen points).
    An expression with anything else in it is left to lambdify.
    """
    if any(e.has(sp.zoo, sp.nan, sp.oo, -sp.oo) for e in exprs):
        def undefined(*values):      # log 0 of a quantity read past the ends of the sequence: no real value,
            return mpmath.nan if one else [mpmath.nan] * len(exprs)    # a point no engine may conclude from
        return undefined
    if not all(_mp_supported(e) for e in exprs):
        fn = sp.lambdify(args, exprs[0] if one else list(exprs), modules=[MPMATH_FUNCTIONS, "mpmath"])
        return fn
    position = {a: k for k, a in enumerate(args)}

    def fn(*values):
        memo: dict = {}

        def ev(x):
            if x in memo:
                return memo[x]
            if isinstance(x, sp.Symbol):
                out = values[position[x]]
            elif isinstance(x, sp.Rational):
                out = mpmath.mpf(x.p) / x.q
            elif isinstance(x, sp.Float):
                out = mpmath.mpf(x._mpf_)
            elif isinstance(x, sp.Add):
                out = ev(x.args[0])
                for a in x.args[1:]:
                    out = out + ev(a)
            elif isinstance(x, sp.Mul):
                out = ev(x.args[0])
                for a in x.args[1:]:
                    out = out * ev(a)
            elif isinstance(x, sp.Pow):
                out = ev(x.base) ** (int(x.exp) if x.exp.is_Integer else ev(x.exp))
            else:
                out = MP_APPLY[type(x)](ev(x.args[0]))
            memo[x] = out
            return out
        results = [ev(e) for e in exprs]
        return results[0] if one else results
    return fn


def index_assignments(ctx: ir.Context, sizes: dict, T: int | None) -> list[dict]:
    """Every value of every index quantity (k_t at each step, k alone): the loss differs with each."""
    slots = []
    for name, d in ctx.declarations.items():
        if d.kind != "index":
            continue
        n = int(sp.sympify(d.shape[0]).xreplace({ir.size_symbol(k) if isinstance(k, str) else k: v
                                                  for k, v in sizes.items()}))
        steps = range(1, (T or 0) + 1) if d.sequence else [None]
        slots += [((name, s), n) for s in steps]
    if not slots:
        return [{}]
    return [dict(zip([k for k, _ in slots], combo))
            for combo in itertools.product(*[range(1, n + 1) for _, n in slots])]
