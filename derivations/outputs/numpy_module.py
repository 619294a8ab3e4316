"""A NumPy module from any verified derivation file: forward pass, loss, and gradients by its proved lines.

Where it sits: derivation file -> intermediate form (`derivations.form.ir`) -> proofs (`derivations.running.runner`)
-> **code** (this module) -> `<out>/<stem>.py` beside the report.  The bundled note's module is made the
same way and kept in the repository as numeric/rnn_core.py (`NOTE_MODULE`; `verify` without a file and
scripts/generate_numeric.py write it); numeric/rnn.py adds token ids, sampling and argument checks around it.

What the module computes, for one context of the file (the one with a loss):

* the forward pass: every definition in dependency order; a definition that reads itself at another
  step (h_t := tanh(W h_{t-1} + ...)) runs in a loop over t, every other one for all steps at once;
* the loss, summed over the batch;
* the gradient of the loss with respect to every free input, in the order of the backward recurrence.
  The adjoint of a quantity is the right-hand side of the file's first *proved* line that states it
  (∂ℓ/∂q = ..., or dq = ... where dq := ∂ℓ/∂q), printed with a `# claim: <id> (line N)` comment.  A
  refuted or ill-typed line is never printed: its proved repair is, or else the adjoint is derived by
  reverse mode over the definitions (one vector-Jacobian rule per operation, `VJP` below), marked
  `# derived`.  A proved line is used only where everything it reads is already computed at that point of
  the backward pass (dh_t reading dh_{t+1} inside the loop that runs t = T..1).

Batching and layout: a column that depends on the data (x_t, h_t, p_t) is one column per example, stored
transposed, as the rows of an array (B, size): the product W h is printed h @ W.T, and over all steps at
once it is one matrix product (`_mm`), since a step sequence is stored with its step first,
(T + 2P, B, size), padded with P zero steps at each end (a quantity outside 1..T is zero; position P - 1
holds a declared initial state h_0), so h_{t-1} at every t is one slice and the steps and examples of a
slice are the rows of one matrix.  A weight is shared by the batch; its gradient sums over the steps and
examples, which is what the summed loss needs: Σ_t a_t b_t^T is one product of the stacked rows
(`_outer`), Σ_t a_t of a bias one sum (`_sum_to`).  The interface keeps the file's columns: the module
transposes its inputs and outputs (x given (T, size, B)).

Memory: the per-step quantities only the loss reads, each at its own step (scores, probabilities, a per-step
loss: `_tail`), and the backward statements that read them or their gradients (`_chunked`) run in
loss_and_grads on chunks of steps once an array of them would exceed WHOLE_ELEMENTS numbers, each chunk
seeing every step array as a window (a view) of its steps, so that no (T, B, V) array is held; forward()
still returns every step.  The printed lines are the same lines, for the chunk's steps 1..n.

API: `Unsupported`, `generate(ctx, claims, path) -> (source, summary)`, `module_for(doc, report)`.
"""
from __future__ import annotations

import ast
import builtins
import keyword
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import jinja2
import sympy as sp

from ..form import algorithm, ir
from ..form.shapes import IllTyped, Typer

TEMPLATES = Path(__file__).resolve().parent / "templates"
# The bundled note's module: numeric/rnn_core.py, which numeric/rnn.py (tokens, sampling, checks) calls.
NOTE_MODULE = Path(__file__).resolve().parents[2] / "numeric" / "rnn_core.py"
NOTE_COMMAND = "python scripts/generate_numeric.py"
ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                         keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
ENV.filters["py"] = lambda x: repr(x)          # Python literals (None, tuples), not JSON

SHARED, COL, ROW, OUTER, DIAG = "shared", "col", "row", "outer", "diag"
# Names the generated code uses for itself; a quantity of the same name gets a trailing underscore.
RESERVED = {"np", "T", "B", "t", "P", "size", "params", "inputs", "grads", "dtype", "loss", "values", "arrays",
            "out", "PARAMS", "INPUTS", "SHAPES", "INDEX_RANGE", "BINARY", "LENGTH"}


class Unsupported(Exception):
    """A construct the generator cannot translate; the message says which."""


class NotAvailable(Unsupported):
    """A line reads an adjoint that is not computed yet at the point where it would be printed."""


# ---------------------------------------------------------------- element-wise functions
# Each built-in function: its value, its derivative (f'(x), written \tanh'(x)), and the vector-Jacobian
# product of each, given the argument {x}, the value {y} of the node and its adjoint {g}.

FUNCTIONS = {
    # name: (value, derivative value, VJP of f, VJP of f')
    "sigma": ("_sigmoid({x})", "_dsigmoid({x})", "{g} * {y} * (1 - {y})",
              "{g} * _dsigmoid({x}) * (1 - 2 * _sigmoid({x}))"),
    "tanh": ("np.tanh({x})", "(1 - np.tanh({x}) ** 2)", "{g} * (1 - {y} ** 2)",
             "{g} * (-2 * np.tanh({x}) * (1 - np.tanh({x}) ** 2))"),
    "exp": ("np.exp({x})", "np.exp({x})", "{g} * {y}", "{g} * np.exp({x})"),
    "log": ("np.log({x})", "(1 / {x})", "{g} / {x}", "-{g} / {x} ** 2"),
    "relu": ("np.maximum({x}, 0)", "_step({x})", "{g} * _step({x})", None),
    "ind": ("_step({x})", "np.zeros_like({x})", None, None),
}


# ---------------------------------------------------------------- values

@dataclass(frozen=True)
class Val:
    """A translated expression: its code, its layout and whether it carries a leading step axis.

    kind SHARED: a plain array (a weight), as the math has it; COL: (..., B, rows), one column per example
    stored as a row (a per-example scalar is (..., B, 1)); ROW: the transpose of a COL, held as the same
    array; OUTER: Σ ± a b^T per example, kept as its factors until summed over the batch (`parts`:
    (sign, a, b)); DIAG: diag(u), kept as u.
    """
    code: str
    kind: str
    steps: bool = False
    parts: tuple = ()


def _paren(code: str) -> str:
    """code as one operand: a name, an indexed name or a call stays as it is; anything else in parentheses."""
    if re.fullmatch(r"[\w.]+(\[[^\[\]]*\])?", code) or _balanced_call(code):
        return code
    return f"({code})"


def _balanced_call(code: str) -> bool:
    """code is one call or one parenthesized group: f(...), (...)."""
    m = re.match(r"[\w.]*\(", code)
    if not m or not code.endswith(")"):
        return False
    depth = 0
    for i, ch in enumerate(code):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(code) - 1 and i >= m.end() - 1:
            return False
    return True


# Helpers of the template that write their result into a given array (`out=`): one temporary and one copy
# fewer for a quantity of every step, the largest arrays of a module ((T, B, V) scores and probabilities).
_INTO = ("_mm(", "_softmax(", "_minus_onehot(")


def _store(target: str, code: str) -> str:
    """`target = code`, or `helper(..., out=target)` when code is one call of such a helper and target is
    a part of a stored array."""
    if "[" in target and code.startswith(_INTO) and _balanced_call(code):
        return f"{code[:-1]}, out={target})"
    return f"{target} = {code}"


def _plus(k: int) -> str:
    return "" if k == 0 else f" + {k}" if k > 0 else f" - {-k}"


def ascii_name(name: str) -> str:
    r"""A Python name for a quantity as written: W_{xh} -> W_xh, \hat{f} -> f_hat, d\tilde{h} -> dh_tilde."""
    s = re.sub(r"\\(hat|tilde|bar|check|dot)\{([^{}]*)\}", r"\2_\1", name)
    s = re.sub(r"\\(mathbf|boldsymbol|vec|mathcal|mathrm|operatorname)\{([^{}]*)\}", r"\2", s)
    s = s.replace("\\", "")
    s = re.sub(r"[^0-9A-Za-z_]+", "_", s)
    s = re.sub(r"_+", "_", s).strip("_") or "q"
    return "q" + s if s[0].isdigit() else s


# ---------------------------------------------------------------- the plan: what the context defines

@dataclass
class Plan:
    ctx: ir.Context
    loss: str
    params: list                  # shared inputs (weights, biases): their names
    inputs: list                  # per-example inputs: step inputs, initial states, indices, columns
    batched: set                  # names whose value is per example
    order: list                   # groups of defined names in forward order: ("loop", [names], direction) | ("all", [name])
    consumers: dict               # name -> [defined names whose definition reads it]
    py: dict = field(default_factory=dict)     # name -> Python name (forward value)
    adj: dict = field(default_factory=dict)    # name -> Python name of its adjoint
    notation: dict = field(default_factory=dict)  # notation name dq -> (quantity q, time var)
    pad: int = 1
    cites: dict = field(default_factory=dict)     # claim id -> [(id, line)] of the lines its rewrite rests on


def _forward_defs(ctx):
    return {n: d for n, d in ctx.definitions.items() if not d.notation}


def _loss_of(ctx, typer) -> str:
    defs = _forward_defs(ctx)
    read = {r.name for d in defs.values() for r in ir.refs(d.expr)}
    candidates = []
    for name, d in defs.items():
        if name in read or ctx.is_sequence(name):
            continue
        try:
            shape = typer.infer(d.target)
        except IllTyped:
            continue
        if sp.sympify(shape[0]) == 1 and sp.sympify(shape[1]) == 1:
            candidates.append(name)
    if not candidates:
        raise Unsupported("no loss: no scalar defined quantity that nothing else reads")
    differentiated = [c.lhs.of.name for c in ctx.claims if isinstance(c.lhs, ir.Deriv)
                      and isinstance(c.lhs.of, ir.Ref)]
    differentiated += [d.expr.of.name for d in ctx.definitions.values() if d.notation
                       and isinstance(d.expr.of, ir.Ref)]
    return max(candidates, key=lambda n: (differentiated.count(n), -candidates.index(n)))


def _is_data_column(ctx, name) -> bool:
    """A column that a matrix multiplies (W x) is an example; one only added (+ b) is a bias."""
    for d in _forward_defs(ctx).values():
        for node in d.expr.walk():
            if isinstance(node, ir.MatMul) and isinstance(node.right, ir.Ref) and node.right.name == name:
                return True
    return False


def _sccs(graph: dict) -> list:
    """Tarjan's strongly connected components, each a list, in reverse topological order."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def make_plan(ctx: ir.Context) -> Plan:
    typer = Typer(ctx)
    defs = _forward_defs(ctx)
    loss = _loss_of(ctx, typer)
    params, inputs = [], []
    for name, d in ctx.declarations.items():
        if d.kind != "matrix" and d.kind != "index":
            continue
        if name in defs:
            continue
        if d.kind == "index" or d.sequence or d.initial or d.binary or (sp.sympify(d.shape[1]) == 1
                                                                         and _is_data_column(ctx, name)):
            if d.kind == "matrix" and sp.sympify(d.shape[1]) != 1:
                raise Unsupported(f"{name}: a matrix per step or per example (only columns are batched)")
            inputs.append(name)
        else:
            params.append(name)
    initial_of = {n: n[:-2] for n in inputs if ctx.declarations[n].initial}
    batched = set(inputs) | set(initial_of.values())
    deps = {n: {r.name for r in ir.refs(d.expr)} for n, d in defs.items()}
    changed = True
    while changed:
        changed = False
        for n in defs:
            if n not in batched and deps[n] & batched:
                batched.add(n)
                changed = True
    for n in batched & set(defs):
        shape = typer.infer(defs[n].target)
        if sp.sympify(shape[1]) != 1:
            raise Unsupported(f"{n}: a per-example matrix (only columns are batched)")
    # Forward order: strongly connected components of "reads", each a loop when it reads itself at
    # another step, else computed for all steps at once.
    graph = {n: sorted(deps[n] & set(defs), key=list(defs).index) for n in defs}
    order = []
    for comp in reversed(_sccs(graph)):
        comp.sort(key=list(defs).index)
        offsets = {r.time.offset for n in comp for r in ir.refs(defs[n].expr)
                   if r.name in comp and r.time is not None and r.time.var is not None}
        if len(comp) == 1 and offsets <= {0}:
            if comp[0] in deps[comp[0]] and offsets == {0}:
                raise Unsupported(f"{comp[0]} is defined through itself at the same step")
            order.append(("all", comp, 0))
            continue
        signs = {(o > 0) - (o < 0) for o in offsets} - {0}
        if len(signs) != 1:
            raise Unsupported(f"{', '.join(comp)} read each other both at earlier and later steps")
        order.append(("loop", _same_step_order(comp, defs), -signs.pop()))
    order = _topological(order, deps)
    consumers = {}
    for n, d in defs.items():
        for r in ir.refs(d.expr):
            consumers.setdefault(r.name, [])
            if n not in consumers[r.name]:
                consumers[r.name].append(n)
    for n, base in initial_of.items():
        consumers.setdefault(n, list(consumers.get(base, [])))
    plan = Plan(ctx, loss, params, inputs, batched, order, consumers)
    _name(plan)
    offsets = [abs(r.time.offset) for e in _all_exprs(ctx) for r in ir.refs(e)
               if r.time is not None and r.time.var not in (None, "T")]
    plan.pad = max([1] + offsets)
    return plan


def _all_exprs(ctx):
    for d in ctx.definitions.values():
        yield d.expr
    for c in ctx.claims:
        if c.lhs is not None:              # a whole algorithm: its lines are claims of their own
            yield c.lhs
            yield c.rhs


def _same_step_order(comp, defs) -> list:
    """The members of a loop in the order one step computes them (reads at the same step first)."""
    done, out = set(), []
    while len(out) < len(comp):
        progress = False
        for n in comp:
            if n in done:
                continue
            same = {r.name for r in ir.refs(defs[n].expr) if r.name in comp and r.name != n
                    and (r.time is None or r.time.offset == 0)}
            if same <= done:
                out.append(n)
                done.add(n)
                progress = True
        if not progress:
            raise Unsupported(f"{', '.join(comp)} read each other at the same step in a cycle")
    return out


def _topological(groups, deps) -> list:
    """Groups in an order where every group comes after the groups it reads (already Tarjan's order;
    kept stable)."""
    placed, out = set(), []
    pending = list(groups)
    while pending:
        for g in pending:
            needs = set().union(*(deps[n] for n in g[1])) - set(g[1])
            if needs <= placed | {x for x in needs if all(x not in h[1] for h in groups)}:
                out.append(g)
                placed |= set(g[1])
                pending.remove(g)
                break
        else:
            raise Unsupported("the definitions read each other in a cycle")
    return out


def _name(plan: Plan):
    """Python names: the file's (W_xh, h_0, f_hat); an adjoint takes the file's name for it (dh := ∂ℓ/∂h)
    when there is one, else d_<name>."""
    used = set(RESERVED)

    def fresh(base):
        name = base
        while name in used or keyword.iskeyword(name):
            name += "_"
        used.add(name)
        return name

    ctx = plan.ctx
    for n in plan.params + plan.inputs + list(_forward_defs(ctx)):
        plan.py[n] = fresh(ascii_name(n))
    for n, d in ctx.definitions.items():
        of, wrt = (d.expr.of, d.expr.wrt) if d.notation else (None, None)
        if isinstance(of, ir.Ref) and of.name == plan.loss and of.time is None and isinstance(wrt, ir.Ref) \
                and (wrt.time is None and d.target.time is None or _generic(d.target, d.expr)):
            plan.notation[n] = wrt.name
            if wrt.name not in plan.adj:
                plan.adj[wrt.name] = fresh(ascii_name(n))
    for n in list(plan.py):
        if n not in plan.adj and not (n in plan.inputs and ctx.declarations[n].kind == "index"):
            plan.adj[n] = fresh("d_" + plan.py[n])


def _generic(target: ir.Ref, expr: ir.Deriv) -> bool:
    """dq_t := ∂ℓ/∂q_t: the same step on both sides (a name for the adjoint of the whole sequence)."""
    w = expr.wrt
    return (isinstance(w, ir.Ref) and target.time is not None and w.time is not None
            and target.time.var is not None and target.time == w.time)


# ---------------------------------------------------------------- a context in the form the module computes

def prepared(ctx: ir.Context, verdicts: dict | None = None) -> tuple[ir.Context, dict]:
    """(ctx', cites): the context the module is generated from, and {claim id: [(claim, line)]} of the other
    proved lines a rewritten line also rests on.  Two rewrites, each an identity, so a line proved of ctx
    is proved of ctx' (the translated line says which lines it comes from):

    * a name for a stacked matrix (T := [W U], Z_t := [x_t; h_{t-1}]) is replaced by its blocks, and a block
      row times a block column is multiplied out (block multiplication): [W U] [x_t; h_{t-1}] = W x_t + U h_{t-1};
    * a loss from step t to T with the earlier steps held fixed (ℓ_t := Σ_{s=t}^T l_s, read "earlier steps
      held fixed", the note's BPTT) is read through the whole loss ℓ = ℓ_1 (`_whole_loss`);
    * a name for an expression of the backward pass (da_t := (1 - h_t^2) ∘ dh_t) is its definition there."""
    ctx = _inline_backward_names(_inline_blocks(ctx))
    return _whole_loss(ctx, verdicts or {})


def _block_product(e: ir.Expr) -> ir.Expr:
    """[A_1 … A_n] [B_1; …; B_n] = A_1 B_1 + … + A_n B_n; any other node as it is."""
    if isinstance(e, ir.MatMul) and isinstance(e.left, ir.Block) and isinstance(e.right, ir.Block):
        row, col = e.left.rows, e.right.rows
        if len(row) == 1 and all(len(r) == 1 for r in col) and len(row[0]) == len(col):
            terms = tuple(ir.MatMul(a, r[0]) for a, r in zip(row[0], col))
            return terms[0] if len(terms) == 1 else ir.Add(terms)
    return e


def _inline_blocks(ctx: ir.Context) -> ir.Context:
    blocks = {n for n, d in _forward_defs(ctx).items() if isinstance(d.expr, ir.Block)}

    def open_(e):
        if isinstance(e, ir.Ref) and e.name in blocks:
            return algorithm.opened(ctx, e)
        return _block_product(e)
    return _without_names(ctx, blocks, lambda e: ir.transform(e, open_))


def _inline_backward_names(ctx: ir.Context) -> ir.Context:
    """Every use of a name for an expression with a derivative (da_t := (1 - h_t^2) ∘ dh_t) replaced by that
    expression at its step (algorithm.inline): the backward pass computes it where it is read, the forward
    pass never."""
    names = {n for n, d in _forward_defs(ctx).items() if n not in ctx.declarations and ir.has_derivative(ctx, d.expr)}
    return _without_names(ctx, names, lambda e: algorithm.inline(ctx, e))


def _without_names(ctx: ir.Context, names: set, rewrite) -> ir.Context:
    """The context without the definitions of `names`, every other definition and claim rewritten (each use of
    a name written out by `rewrite`)."""
    if not names:
        return ctx

    def fix(e):
        return None if e is None else rewrite(e)
    definitions = {n: replace(d, expr=fix(d.expr)) for n, d in ctx.definitions.items() if n not in names}
    claims = [replace(c, lhs=fix(c.lhs), rhs=fix(c.rhs)) for c in ctx.claims]
    return replace(ctx, definitions=definitions, claims=claims)


def _suffix_loss(ctx: ir.Context):
    """(name, step variable, the body l_s) of a definition ℓ_t := Σ_{s=t}^T l_s (or -Σ ...) that nothing reads."""
    defs = _forward_defs(ctx)
    read = {r.name for d in defs.values() for r in ir.refs(d.expr)}
    for n, d in defs.items():
        t = d.target.time
        e = d.expr.arg if isinstance(d.expr, ir.Neg) else d.expr
        if n in read or t is None or t.var is None or t.offset != 0 or not isinstance(e, ir.Sum):
            continue
        if e.lo == ir.Time(t.var, 0) and e.hi == ir.Time("T", 0) and t.var not in ir.time_vars(e.body):
            return n, t.var
    return None


def _whole_loss(ctx: ir.Context, verdicts: dict) -> tuple[ir.Context, dict]:
    """A loss ℓ_t from step t to T, derivatives holding the steps before t fixed, read through ℓ = ℓ_1.

    When no definition reads a later step (h_t reads h_{t-1}, never h_{t+1}), a quantity q_t reaches only
    the terms of steps t..T, so with the steps before t held fixed:
      ∂ℓ_t/∂q_t = ∂ℓ/∂q_t (the terms before t do not read q_t; so for every step k, ∂ℓ_{t+k}/∂q_{t+k});
      ∂ℓ_t/∂W = ∂ℓ_{t+1}/∂W + g_t for a weight W gives ∂ℓ/∂W = Σ_{t=1}^T g_t (ℓ_{T+1} is the empty sum, 0);
      ∂ℓ_t/∂h_{t-1} = c_t (a proved line) gives ∂ℓ/∂h_0 = c_1 (the steps before 1 are none), and a line
      reading ∂ℓ_{t+1}/∂h_t reads c_{t+1} instead (at t = T both are 0: c_{T+1} reads ∂ℓ/∂h_{T+1} = 0).
    A line left with a derivative of ℓ_t in any other form is not translated (its gradient is derived)."""
    found = _suffix_loss(ctx) if ctx.held_fixed else None
    if found is None:
        return ctx, {}
    loss, var = found
    defs = _forward_defs(ctx)
    def later(time):                      # a step that may lie after the step reading it: t+1, T, step 2
        return time is not None and (time.var == "T" or time.var is None and time.offset >= 1
                                     or time.var is not None and time.offset > 0)
    if any(later(r.time) for d in defs.values() for r in ir.refs(d.expr)):
        return ctx, {}                    # a definition reads a later step: ∂ℓ_t/∂q_t need not be ∂ℓ/∂q_t

    def of_loss(e, k=None):
        return isinstance(e, ir.Deriv) and isinstance(e.of, ir.Ref) and e.of.name == loss and \
            e.of.time is not None and e.of.time.var == var and (k is None or e.of.time.offset == k) and \
            isinstance(e.wrt, ir.Ref)

    def step_of(e):
        w = e.wrt.time
        return None if w is None or w.var != var else w.offset - e.of.time.offset

    carry = {}                            # q -> (claim, c_t) from a proved ∂ℓ_t/∂q_{t-1} = c_t
    for c in ctx.claims:
        if c.lhs is not None and of_loss(c.lhs, 0) and ctx.is_sequence(c.lhs.wrt.name) and \
                step_of(c.lhs) == -1 and verdicts.get(c.id) == "proved":
            carry.setdefault(c.lhs.wrt.name, (c, c.rhs))
    cites = {}

    def whole(e, used):
        def fn(x):
            if not of_loss(x):
                return x
            q, k = x.wrt.name, x.of.time.offset
            if ctx.is_sequence(q) and step_of(x) == 0:
                return ir.Deriv(ir.Ref(loss), x.wrt)
            if ctx.is_sequence(q) and step_of(x) == -1 and q in carry:
                claim, c = carry[q]
                used.append(claim)
                return whole(algorithm.shift(c, k, var), used)
            return x
        return ir.transform(e, fn)

    claims = []
    for c in ctx.claims:
        if c.lhs is None:
            claims.append(c)
            continue
        used = []
        lhs, rhs = c.lhs, c.rhs
        if of_loss(lhs, 0) and not ctx.is_sequence(lhs.wrt.name) and lhs.wrt.time is None \
                and isinstance(rhs, ir.Add):
            rest = [x for x in rhs.terms if x != ir.Deriv(ir.Ref(loss, ir.Time(var, 1)), lhs.wrt)]
            if len(rest) == len(rhs.terms) - 1:
                body = rest[0] if len(rest) == 1 else ir.Add(tuple(rest))
                lhs, rhs = ir.Deriv(ir.Ref(loss), lhs.wrt), ir.Sum(var, ir.Time(None, 1), ir.Time("T", 0), body)
        elif of_loss(lhs, 0) and ctx.is_sequence(lhs.wrt.name) and step_of(lhs) == -1:
            initial = lhs.wrt.name + "_0"
            if initial not in ctx.declarations or not ctx.declarations[initial].initial:
                claims.append(c)
                continue
            lhs, rhs = ir.Deriv(ir.Ref(loss), ir.Ref(initial)), algorithm.absolute(whole(rhs, used), {var: 1})
        claims.append(replace(c, lhs=whole(lhs, used), rhs=whole(rhs, used)))
        if used:
            cites[c.id] = list(dict.fromkeys((u.id, u.source.line if u.source else None) for u in used))
    d = ctx.definitions[loss]
    body = d.expr.arg if isinstance(d.expr, ir.Neg) else d.expr
    total = replace(body, lo=ir.Time(None, 1))
    definitions = {n: (replace(x, target=ir.Ref(loss), expr=ir.Neg(total) if isinstance(d.expr, ir.Neg) else total)
                       if n == loss else replace(x, expr=whole(x.expr, [])) if x.notation else x)
                   for n, x in ctx.definitions.items()}
    return replace(ctx, definitions=definitions, claims=claims), cites


# ---------------------------------------------------------------- translation of expressions

@dataclass(frozen=True)
class Hoisted(ir.Expr):
    """Terms of a loop's line computed for every step before the loop (W_xh x_t + b_h, W_hy^T dy_t):
    one product over all steps instead of one per step.  The loop reads step t of the array."""
    name: str
    kind: str
    span: tuple | None = None


ALL = ("all",)          # a step variable standing for every step 1..T at once
CONDITION = "float("    # the code of a condition between steps, a number: never transposed (_rows)
LOOP = ("loop",)        # the step variable is the loop's `t`


def _envkey(env: dict) -> tuple:
    return tuple(sorted(env.items()))


class Emitter:
    """Prints IR expressions as NumPy code (`value`) and reverse mode through them (`push`).

    `env` maps a step variable of the IR (t, s) to where it stands: LOOP (the loop's `t`), ALL (every step
    at once: a slice, a leading step axis) or ("fixed", k) (step k).  `avail(q, time, env)` says whether
    the adjoint of q at that step is computed at the point being printed; `want(q, time, env)` which
    leaves a push accumulates into.
    """

    def __init__(self, plan: Plan, avail=lambda q, time, env: True):
        self.plan = plan
        self.ctx = plan.ctx
        self.typer = Typer(plan.ctx)
        self.avail = avail
        self.lines: list = []
        self.indent = 1
        self.memo: dict = {}
        self.count = 0
        self.reads: set = set()          # quantities whose adjoint a translated line reads
        self.comment = "# derived"
        self.known: dict = {}            # code -> the array slice a line of the file assigned it to
        self.hoisted: list = []          # the arrays of hoisted terms of the loop being printed

    def end_loop(self):
        """After a loop: its hoisted terms (an array of every step each) are freed."""
        self.indent -= 1
        if self.hoisted:
            self.emit(f"del {', '.join(self.hoisted)}")
        self.hoisted = []

    # ---- output

    def emit(self, line: str, comment: str | None = None):
        self.lines.append("    " * self.indent + line + (f"  {comment}" if comment else ""))

    def temp(self, code: str, prefix: str = "g") -> str:
        self.count += 1
        name = f"{prefix}{self.count}"
        self.emit(f"{name} = {code}", self.comment)
        return name

    def hold(self, v: Val, prefix: str = "g") -> Val:
        """v in a temporary when its code is more than a name (it is about to be used twice)."""
        if v.kind in (OUTER, DIAG) or re.fullmatch(r"[\w.]+(\[[^\[\]]*\])?", v.code):
            return v
        return Val(self.temp(v.code, prefix), v.kind, v.steps, v.parts)

    # ---- shapes and names

    def scalar(self, e) -> bool:
        try:
            r, c = self.typer.infer(e)
        except IllTyped as err:
            raise Unsupported(f"does not type-check: {err}") from None
        return sp.sympify(r) == 1 and sp.sympify(c) == 1

    def rows(self, e) -> str:
        return size_code(self.typer.infer(e)[0])

    def normal(self, ref: ir.Ref) -> tuple:
        """(quantity, step) of a reference: h_0 declared as an initial state is h at step 0."""
        d = self.ctx.declarations.get(ref.name)
        if d is not None and d.initial and ref.time is None:
            return ref.name[:-2], ir.Time(None, 0)
        return ref.name, ref.time

    def is_seq(self, name: str) -> bool:
        return self.ctx.is_sequence(name)

    def at(self, array: str, time: ir.Time | None, env: dict, clip: tuple | None = None) -> tuple:
        """(code, has a step axis) of a sequence's array at a step.  Step s is at position s + P - 1."""
        P = self.plan.pad
        if time is None:
            raise Unsupported(f"{array} is a sequence, written without its step")
        if time.var is None:
            return f"{array}[{time.offset + P - 1}]", False
        if time.var == "T":
            return f"{array}[T{_plus(time.offset + P - 1)}]", False
        pos = env.get(time.var)
        if pos is None:
            raise Unsupported(f"the step {time.var} is bound by nothing here")
        if pos == LOOP:
            return f"{array}[t{_plus(time.offset + P - 1)}]", False
        if pos[0] == "fixed":
            return f"{array}[{pos[1] + time.offset + P - 1}]", False
        lo, hi = clip if clip else (1, 0)       # the steps 1 + lo - 1 .. T - hi of the variable
        start, stop = lo + time.offset + P - 1, time.offset + P - hi
        return f"{array}[{start}:T{_plus(stop)}]", True

    # ---- values

    def value(self, e: ir.Expr, env: dict) -> Val:
        key = (id(e), _envkey(env))
        if key in self.memo:
            return self.memo[key]
        handler = getattr(self, "_v_" + type(e).__name__, None)
        if handler is None:
            raise Unsupported(f"no translation for {type(e).__name__}")
        v = handler(e, env)
        # The same expression already stored by an earlier line (Σ_t (p_t - e_{k_t}) after dy_t = p_t - e_{k_t}):
        # read the array instead of computing it again.
        known = self.known.get(v.code) if v.kind == COL else None
        return Val(known, v.kind, v.steps) if known else v

    def operand(self, e, env) -> Val:
        """The value of e, held in a temporary when it is an expression: a VJP rule uses it again."""
        key = (id(e), _envkey(env))
        if key not in self.memo:
            v = self.value(e, env)
            if v.kind not in (OUTER, DIAG) and not re.fullmatch(r"[\w.]+(\[[^\[\]]*\])?", v.code) \
                    and not re.fullmatch(r"[-\d.]+", v.code):
                v = Val(self.temp(v.code, "v"), v.kind, v.steps)
            self.memo[key] = v
        return self.memo[key]

    def _v_Ref(self, e, env):
        plan = self.plan
        if e.name in plan.notation:
            return self.adjoint(plan.notation[e.name], e.time, env)
        name, time = self.normal(e)
        kind = COL if name in plan.batched else SHARED
        if name not in plan.py:
            raise Unsupported(f"{name} is neither declared nor defined as a quantity")
        if self.is_seq(name):
            code, steps = self.at(plan.py[name], time, env)
            return Val(code, kind, steps)
        return Val(plan.py[name], kind)

    def adjoint(self, q: str, time, env) -> Val:
        if q not in self.plan.adj:
            raise Unsupported(f"the gradient with respect to {q}")
        if not self.avail(q, time, env):
            raise NotAvailable(f"reads the gradient with respect to {q} at {time}, not computed yet at that point")
        self.reads.add(q if not (time is not None and time.var is None and time.offset == 0
                                 and q + "_0" in self.ctx.declarations) else q + "@0")
        kind = COL if q in self.plan.batched else SHARED
        if self.is_seq(q):
            code, steps = self.at(self.plan.adj[q], time, env)
            return Val(code, kind, steps)
        return Val(self.plan.adj[q], kind)

    def _v_Hoisted(self, e, env):
        return Val(f"{e.name}[t - 1]", e.kind)

    def hoist(self, expr, var: str, independent) -> ir.Expr:
        """expr with the terms of its top sum (or of the sum inside its top function) that `independent`
        accepts computed before the loop, when one of them is a product."""
        inner = isinstance(expr, ir.Apply) and isinstance(expr.arg, ir.Add)
        add = expr.arg if inner else expr
        if not isinstance(add, ir.Add):
            return expr
        free = [x for x in add.terms if independent(x)]
        rest = [x for x in add.terms if not independent(x)]
        if not any(isinstance(n, ir.MatMul) for x in free for n in x.walk()):
            return expr
        emitted = len(self.lines)
        try:
            v = self.value(ir.Add(tuple(free)) if len(free) > 1 else free[0], {var: ALL})
        except Unsupported:                   # (1[t = T] V^T (p - e_k) is computed in the loop, per step)
            del self.lines[emitted:]
            return expr
        if v.kind != COL or not v.steps:
            return expr
        node = Hoisted(self.temp(v.code, "pre"), v.kind)
        self.hoisted.append(node.name)
        new = ir.Add((node, *rest)) if rest else node
        return expr.rebuild((new,)) if inner else new

    def _v_Number(self, e, env):
        v = e.value
        return Val(str(v.numerator) if v.denominator == 1 else repr(float(v)), SHARED)

    def _v_StepIf(self, e, env):
        """1[t = T] at the loop's step (or a fixed one): 1.0 or 0.0, a number that scales what it multiplies."""
        def step(time):
            if time.var is None:
                return str(time.offset)
            if time.var == "T":
                return f"T{_plus(time.offset)}"
            pos = env.get(time.var)
            if pos == LOOP:
                return f"t{_plus(time.offset)}"
            if pos is not None and pos[0] == "fixed":
                return str(pos[1] + time.offset)
            raise Unsupported("a condition between steps in a definition, the loss or a sum over the steps: the "
                              "generated code reads a condition only in a line of a loop over the steps (a "
                              "backward recurrence such as dh_t = 1[t = T] ...)")
        op = {"=": "==", "\\ne": "!=", "\\le": "<=", "\\ge": ">="}.get(e.relation, e.relation)
        return Val(f"{CONDITION}{step(e.left)} {op} {step(e.right)})", SHARED)

    def _v_Ones(self, e, env):
        return Val(f"np.ones(({size_code(e.size)}, 1), dtype)", SHARED)

    def _v_Add(self, e, env):
        basis = [t for t in e.terms if isinstance(t, ir.Neg) and isinstance(t.arg, ir.Basis)]
        if len(basis) == 1 and len(e.terms) > 1:
            # x - e_k: one entry per column changed, without building the one-hot columns
            rest = [t for t in e.terms if t is not basis[0]]
            x = self.value(ir.Add(tuple(rest)) if len(rest) > 1 else rest[0], env)
            k, ksteps = self._index(basis[0].arg.index, env)
            if x.kind == COL and x.steps == ksteps:
                return Val(f"_minus_onehot({x.code}, {k})", COL, x.steps)
        vals = [self.value(t, env) for t in e.terms]
        kinds = {v.kind for v in vals}
        steps = any(v.steps for v in vals)
        if OUTER in kinds:
            if kinds != {OUTER}:
                raise Unsupported("a sum of an outer product and something else")
            return Val("", OUTER, steps, tuple(p for v in vals for p in v.parts))
        if DIAG in kinds:
            raise Unsupported("a sum with diag(...)")
        kind = ROW if ROW in kinds else COL if COL in kinds else SHARED
        codes = [_rows(v, kind) for v in vals]
        code = codes[0]
        for c in codes[1:]:
            code += f" - {_paren(c[1:])}" if c.startswith("-") and not c.startswith("-(") \
                else f" - {c[1:]}" if c.startswith("-(") else f" + {c}"
        return Val(code, kind, steps)

    def _v_Neg(self, e, env):
        v = self.value(e.arg, env)
        if v.kind == OUTER:
            return Val("", OUTER, v.steps, tuple((-s, a, b) for s, a, b in v.parts))
        if v.kind == DIAG:
            raise Unsupported("-diag(...)")
        return Val(f"-{_paren(v.code)}", v.kind, v.steps)

    def _v_Transpose(self, e, env):
        v = self.value(e.arg, env)
        if v.kind == SHARED and self.scalar(e.arg):
            return v                          # a scalar is its own transpose (float(t < T) has no .T)
        if v.kind == SHARED:
            return Val(f"{_paren(v.code)}.T", SHARED)
        if v.kind == OUTER:
            return Val("", OUTER, v.steps, tuple((s, b, a) for s, a, b in v.parts))
        if v.kind == DIAG or self.scalar(e.arg):
            return v
        return Val(v.code, ROW if v.kind == COL else COL, v.steps)

    def _v_Power(self, e, env):
        v = self.value(e.arg, env)
        if v.kind in (OUTER, DIAG):
            raise Unsupported("a power of a matrix per example")
        return Val(f"{_paren(v.code)} ** {e.exponent}", v.kind, v.steps)

    def _v_Hadamard(self, e, env):
        a, b = self.value(e.left, env), self.value(e.right, env)
        return _elementwise(a, b, "*")

    def _v_Div(self, e, env):
        a, b = self.value(e.num, env), self.value(e.den, env)
        return _elementwise(a, b, "/")

    def _v_Apply(self, e, env):
        rule = FUNCTIONS.get(e.function)
        if rule is None:
            raise Unsupported(f"the function {e.function} has no numeric definition (σ, tanh, exp, log and ReLU do)")
        if e.derivative > 1:
            raise Unsupported(f"the derivative of order {e.derivative} of {e.function}")
        logp = self._log_softmax_entry(e, env)
        if logp is not None:
            return logp
        v = self.value(e.arg, env)
        if v.kind in (OUTER, DIAG):
            raise Unsupported(f"{e.function} of a matrix per example")
        return Val(rule[e.derivative].format(x=v.code), v.kind, v.steps)

    def _log_softmax_entry(self, e, env) -> Val | None:
        """log p_k where the file defines p := softmax(s): `_log_take(p, s, k)`, the log of the stored p_k, or
        s_k - log Σ e^s (the same number) where p_k is too small to hold its digits: finite where p_k underflows."""
        arg = e.arg
        if not (e.function == "log" and e.derivative == 0 and isinstance(arg, ir.Component)
                and isinstance(arg.arg, ir.Ref)):
            return None
        d = _forward_defs(self.ctx).get(arg.arg.name)
        if d is None or not isinstance(d.expr, ir.Softmax):
            return None
        p = self.value(arg.arg, env)
        s = self.value(algorithm.opened(self.ctx, arg.arg).arg, env)
        k, ksteps = self._index(arg.index, env)
        if p.kind != COL or s.kind != COL or p.steps != s.steps:
            return None
        return Val(f"_log_take({p.code}, {s.code}, {k})", COL, p.steps or ksteps)

    def _v_Softmax(self, e, env):
        v = self.value(e.arg, env)
        return Val(f"_softmax({v.code})", v.kind, v.steps)

    def _index(self, ref: ir.Ref, env) -> tuple:
        name = ref.name
        if name not in self.plan.py:
            raise Unsupported(f"the index {name}")
        if self.is_seq(name):
            return self.at(self.plan.py[name], ref.time, env)
        return self.plan.py[name], False

    def _v_Component(self, e, env):
        v = self.value(e.arg, env)
        k, ksteps = self._index(e.index, env)
        if v.kind not in (COL, SHARED):
            raise Unsupported("an entry of a matrix")
        return Val(f"_take({v.code}, {k})", COL, v.steps or ksteps)

    def _v_Basis(self, e, env):
        k, steps = self._index(e.index, env)
        n = size_code(self.ctx.declarations[e.index.name].shape[0])
        return Val(f"_onehot({k}, {n}, dtype)", COL, steps)

    def _sum_env(self, e, env) -> dict:
        if e.lo != ir.Time(None, 1) or e.hi != ir.Time("T", 0):
            raise Unsupported("a sum over part of the steps")
        return {**env, e.var: ALL}

    def _v_Sum(self, e, env):
        v = self.value(e.body, self._sum_env(e, env))
        if v.kind == OUTER:
            return v                       # summed over the steps with the batch, by _outer
        if v.kind == DIAG:
            raise Unsupported("a sum of diag(...)")
        if not v.steps:
            return Val(f"T * {_paren(v.code)}", v.kind)
        return Val(f"np.sum({v.code}, axis=0)", v.kind)

    def _v_Deriv(self, e, env):
        if not (isinstance(e.of, ir.Ref) and e.of.name == self.plan.loss and e.of.time is None
                and isinstance(e.wrt, ir.Ref)):
            raise Unsupported("a derivative that is not the gradient of the loss (a Jacobian, or ∂ℓ_t)")
        name, time = self.normal(e.wrt)
        return self.adjoint(name, time, env)

    def _v_Diag(self, e, env):
        v = self.value(e.arg, env)
        if v.kind not in (COL, SHARED):
            raise Unsupported("diag of a matrix")
        return Val("", DIAG, v.steps, (v,))

    def _v_MatMul(self, e, env):
        a, b = self.value(e.left, env), self.value(e.right, env)
        sa, sb = self.scalar(e.left), self.scalar(e.right)
        if sa or sb:
            s, m = (a, b) if sa else (b, a)
            if m.kind == OUTER:
                return Val("", OUTER, m.steps or s.steps,
                           tuple((sign, _elementwise(x, s, "*"), y) for sign, x, y in m.parts))
            if m.kind == DIAG:
                return Val("", DIAG, m.steps or s.steps, (_elementwise(m.parts[0], s, "*"),))
            if s.kind != SHARED and m.kind == SHARED and not sp.sympify(self.typer.infer(
                    e.right if sa else e.left)[1]) == 1:
                raise Unsupported("a per-example scalar times a matrix")
            return _elementwise(a, b, "*")
        return matmul(a, b)


    # ---- reverse mode: one vector-Jacobian rule per operation

    def reaches(self, e, env, want) -> bool:
        """Whether a leaf `want` accepts lies under e (only those paths are differentiated)."""
        if isinstance(e, ir.Ref):
            if e.name in self.plan.notation:
                return False
            name, time = self.normal(e)
            return want(name, time, env)
        if isinstance(e, (ir.Number, ir.Ones, ir.Basis)):
            return False
        if isinstance(e, ir.Apply) and FUNCTIONS.get(e.function, (0, 0, 0, 0))[2 + min(e.derivative, 1)] is None:
            return False
        if isinstance(e, ir.Sum):
            return self.reaches(e.body, self._sum_env(e, env), want)
        return any(self.reaches(c, env, want) for c in e.children())

    def push(self, e, g: Val, env, want):
        """Accumulate the adjoint g of e into the adjoints of the leaves under e that `want` accepts."""
        if not self.reaches(e, env, want):
            return
        if isinstance(e, ir.Ref):
            self.accumulate(e, g, env)
            return
        rule = getattr(self, "_d_" + type(e).__name__, None)
        if rule is None:
            raise Unsupported(f"no derivative rule for {type(e).__name__}")
        if g.kind != SHARED:
            v = self.value(e, env)
            if v.kind == SHARED:         # a shared subexpression: its adjoint summed over steps and examples
                g = Val(reduce_shared(g, f"np.shape({v.code})"), SHARED)
        if g.kind not in (COL, SHARED) and not isinstance(e, (ir.Transpose, ir.Add, ir.Neg, ir.MatMul)):
            raise Unsupported(f"the adjoint of a {type(e).__name__} is a matrix per example")
        rule(e, g, env, want)

    def _d_Add(self, e, g, env, want):
        g = self.hold(g)
        for term in e.terms:
            self.push(term, g, env, want)

    def _d_Neg(self, e, g, env, want):
        if g.kind == OUTER:
            self.push(e.arg, Val("", OUTER, g.steps, tuple((-s, a, b) for s, a, b in g.parts)), env, want)
        else:
            self.push(e.arg, Val(f"-{_paren(g.code)}", g.kind, g.steps), env, want)

    def _d_Transpose(self, e, g, env, want):
        if g.kind == OUTER:
            g = Val("", OUTER, g.steps, tuple((s, b, a) for s, a, b in g.parts))
        elif g.kind == SHARED:
            g = Val(f"{_paren(g.code)}.T", SHARED)
        elif not self.scalar(e):
            g = Val(g.code, ROW if g.kind == COL else COL, g.steps)
        self.push(e.arg, g, env, want)

    def _d_Power(self, e, g, env, want):
        x = self.operand(e.arg, env)
        n = e.exponent
        factor = f"{n} * {_paren(x.code)}" + (f" ** {n - 1}" if n > 2 else "") if n != 1 else "1"
        self.push(e.arg, Val(f"{_paren(g.code)} * {factor}", g.kind, g.steps or x.steps), env, want)

    def _d_Hadamard(self, e, g, env, want):
        g = self.hold(g)
        for this, other in ((e.left, e.right), (e.right, e.left)):
            if self.reaches(this, env, want):
                self.push(this, _elementwise(g, self.operand(other, env), "*"), env, want)

    def _d_Div(self, e, g, env, want):
        g = self.hold(g)
        den = self.operand(e.den, env)
        self.push(e.num, _elementwise(g, den, "/"), env, want)
        if self.reaches(e.den, env, want):
            num = self.operand(e.num, env)
            d = Val(f"-{_paren(g.code)} * {_paren(num.code)} / {_paren(den.code)} ** 2", g.kind, g.steps)
            if self.scalar(e.den) and not self.scalar(e.num):
                d = Val(f"np.sum({d.code}, axis=-1, keepdims=True)", d.kind, d.steps)
            self.push(e.den, d, env, want)

    def _d_Apply(self, e, g, env, want):
        rule = FUNCTIONS[e.function][2 + e.derivative]
        # tanh and σ need only their value (stored, for a definition's top function), not the argument
        x = self.operand(e.arg, env) if "{x}" in rule else None
        y = self.operand(e, env) if "{y}" in rule else None
        code = rule.format(g=_paren(g.code), x=_paren(x.code) if x else "", y=_paren(y.code) if y else "")
        self.push(e.arg, Val(code, g.kind, g.steps or any(v.steps for v in (x, y) if v)), env, want)

    def _d_Softmax(self, e, g, env, want):
        p = self.operand(e, env)
        g = self.hold(g)
        code = f"{p.code} * ({g.code} - np.sum({p.code} * {g.code}, axis=-1, keepdims=True))"
        self.push(e.arg, Val(code, COL if COL in (p.kind, g.kind) else p.kind, p.steps or g.steps), env, want)

    def _d_Component(self, e, g, env, want):
        k, steps = self._index(e.index, env)
        n = self.rows(e.arg)
        self.push(e.arg, Val(f"_onehot({k}, {n}, dtype) * {_paren(g.code)}", COL, steps or g.steps), env, want)

    def _d_Sum(self, e, g, env, want):
        # Every step's term gets the sum's adjoint: broadcast over the step axis.
        self.push(e.body, g, self._sum_env(e, env), want)

    def _d_MatMul(self, e, g, env, want):
        A, B = e.left, e.right
        wa, wb = self.reaches(A, env, want), self.reaches(B, env, want)
        if self.scalar(A) or self.scalar(B):
            g = self.hold(g)
            for this, other in ((A, B), (B, A)):
                if self.reaches(this, env, want):
                    d = _elementwise(g, self.operand(other, env), "*")
                    if self.scalar(this) and not self.scalar(other):
                        d = Val(f"np.sum({d.code}, axis=-1, keepdims=True)", d.kind, d.steps)
                    self.push(this, d, env, want)
            return
        if isinstance(A, ir.Diag):                       # diag(u) b = u ∘ b
            self.push(ir.Hadamard(A.arg, B), g, env, want)
            return
        a = self.operand(A, env) if wb else None
        b = self.operand(B, env) if wa else None
        g = self.hold(g) if wa and wb else g
        ka = self.value(A, env).kind if a is None else a.kind
        kb = self.value(B, env).kind if b is None else b.kind
        if g.kind == OUTER:
            raise Unsupported("the adjoint of a product is a matrix per example")
        if (ka, kb) in ((SHARED, COL), (SHARED, SHARED)):
            if wa:   # dA = g b^T (summed over the batch when A is shared)
                self.push(A, Val("", OUTER, g.steps or b.steps, ((1, g, b),)) if kb == COL
                          else Val(f"{_paren(g.code)} @ {_paren(b.code)}.T", SHARED), env, want)
            if wb:   # dB = A^T g, as rows: g^T A
                self.push(B, Val(mm(g.code, a.code, g.steps), g.kind, g.steps) if kb == COL
                          else Val(f"{_paren(a.code)}.T @ {_paren(g.code)}", SHARED), env, want)
        elif (ka, kb) == (ROW, COL):                     # a^T b, a per-example scalar
            if wa:
                self.push(A, Val(f"{_paren(g.code)} * {_paren(b.code)}", ROW, g.steps or b.steps), env, want)
            if wb:
                self.push(B, Val(f"{_paren(a.code)} * {_paren(g.code)}", COL, g.steps or a.steps), env, want)
        elif (ka, kb) == (ROW, SHARED):                  # a^T W: g is a row
            if wa:   # (W g)^T = g^T W^T
                self.push(A, Val(mm(g.code, f"{_paren(b.code)}.T", g.steps), ROW, g.steps), env, want)
            if wb:
                self.push(B, Val("", OUTER, g.steps or a.steps, ((1, a, g),)), env, want)
        else:
            raise Unsupported(f"the derivative of a product of a {ka} and a {kb} value")

    def accumulate(self, ref: ir.Ref, g: Val, env):
        """adjoint(leaf) += g, reduced to the leaf's layout (a weight sums over the batch and the steps)."""
        name, time = self.normal(ref)
        plan = self.plan
        arr = plan.adj[name]
        if g.kind in (OUTER, DIAG) and name in plan.batched:
            raise Unsupported(f"the adjoint of {name} is a matrix per example")
        if self.is_seq(name):
            clip = None
            if time is not None and time.var is not None and env.get(time.var) == ALL and time.offset != 0:
                # Only the steps whose target lies in 1..T (or at a declared initial state) receive.
                lo = 0 if name + "_0" in self.ctx.declarations else 1
                clip = (max(1, lo - time.offset), max(0, time.offset))
            target, _ = self.at(arr, time, env, clip)
            code = g.code
            if clip and g.steps and clip != (1, 0):
                code = f"{_paren(code)}[{clip[0] - 1 or ''}:{'T - ' + str(clip[1]) if clip[1] else ''}]"
            self.emit(f"{target} += {code}", self.comment)
        elif name in plan.batched:
            self.emit(f"{arr} += {f'np.sum({g.code}, axis=0)' if g.steps else g.code}", self.comment)
        else:
            self.emit(f"{arr} += {reduce_shared(g, arr + '.shape')}", self.comment)


    # ---- a gradient line

    def assign(self, turn, lhs, rhs, comment: str | None = None):
        """adjoint(turn.key) = rhs: a line of the file (or its repair), at the turn's point of the backward pass."""
        plan, key = self.plan, turn.key
        time = _lhs_time(lhs)
        env = _env_for(time, turn)
        v = self.value(rhs, env)
        q = key.removesuffix("@0")
        if key.endswith("@0"):
            if v.kind != COL or v.steps:
                raise Unsupported("the gradient of an initial state is one column per example")
            self.emit(f'grads["{plan.py[q + "_0"]}"] = _columns({v.code})', comment)
            return
        batched = q in plan.batched
        if batched and v.kind != COL:
            raise Unsupported(f"the gradient of {q} is a column per example, the line gives a {v.kind} value")
        if batched and v.steps and not self.is_seq(q):
            raise Unsupported(f"the line has a step where {q} has none")
        code = v.code if batched else reduce_shared(v, f"{plan.py[q]}.shape")
        if turn.mode == "leaf":
            if self.is_seq(q) and not v.steps:
                code = f"np.broadcast_to({code}, {plan.py[q]}[{plan.pad}:T + {plan.pad}].shape)"
            # a product just computed is nothing else's: its columns are a view of it (no copy of every step)
            columns = "_columns_of_new(" if code.startswith("_mm(") and _balanced_call(code) else "_columns("
            self.emit(f'grads["{plan.py[q]}"] = {columns + code + ")" if batched else code}', comment)
            return
        target = self.at(plan.adj[q], time, env)[0] if self.is_seq(q) else plan.adj[q]
        self.emit(_store(target, code), comment)
        if turn.mode == "all" and batched:
            self.known[code] = target


def _sum_to(g: Val, shape: str) -> str:
    return f"_sum_to({g.code}, {shape})"


def reduce_shared(g: Val, shape: str) -> str:
    """A contribution to a shared array: outer products and per-example columns summed over the batch."""
    if g.kind == OUTER:
        return outer_code(g)
    if g.kind == DIAG:
        raise Unsupported("diag(...) as the gradient of a weight")
    if g.kind == SHARED and not g.steps:
        return g.code
    return _sum_to(g, shape)


def _rows(v: Val, kind: str) -> str:
    """v's code where it meets a per-example value: a shared column (a bias) as a row, b.T."""
    if v.kind == SHARED and kind != SHARED and not re.fullmatch(r"[-\d.]+", v.code) and not v.code.startswith(CONDITION):
        return f"{_paren(v.code)}.T"
    return v.code


def _elementwise(a: Val, b: Val, op: str) -> Val:
    if OUTER in (a.kind, b.kind) or DIAG in (a.kind, b.kind):
        raise Unsupported("an element-wise product with a matrix per example")
    kinds = {a.kind, b.kind}
    kind = ROW if ROW in kinds else COL if COL in kinds else SHARED
    if ROW in kinds and COL in kinds:
        raise Unsupported("an element-wise product of a row and a column")
    return Val(f"{_paren(_rows(a, kind))} {op} {_paren(_rows(b, kind))}", kind, a.steps or b.steps)


def mm(rows: str, matrix: str, steps: bool) -> str:
    """Per-example rows times a shared matrix: one product for every step and example (`_mm`)."""
    matrix = matrix.removesuffix(".T.T")       # (W^T)^T is W
    return f"_mm({rows}, {matrix})" if steps else f"{_paren(rows)} @ {_paren(matrix)}"


def matmul(a: Val, b: Val) -> Val:
    """The product a b of two values that are not scalars, by their layouts (see Val)."""
    steps = a.steps or b.steps
    pair = (a.kind, b.kind)
    if pair == (SHARED, SHARED):
        return Val(f"{_paren(a.code)} @ {_paren(b.code)}", SHARED)
    if pair == (SHARED, COL):                    # (W x)^T = x^T W^T: rows times W.T
        return Val(mm(b.code, f"{_paren(a.code)}.T", steps), COL, steps)
    if pair == (ROW, COL):                       # a per-example scalar
        return Val(f"np.sum({_paren(a.code)} * {_paren(b.code)}, axis=-1, keepdims=True)", COL, steps)
    if pair == (ROW, SHARED):                    # a^T W
        return Val(mm(a.code, b.code, steps), ROW, steps)
    if pair in ((COL, ROW), (SHARED, ROW), (COL, SHARED)):
        if pair == (COL, SHARED):                # a w^T with w a shared row: w held as a column
            b = Val(f"{_paren(b.code)}.T", SHARED)
        return Val("", OUTER, steps, ((1, a, b),))
    if pair == (DIAG, COL):
        return _elementwise(a.parts[0], b, "*")
    if pair == (ROW, DIAG):
        return Val(_elementwise(a, b.parts[0], "*").code, ROW, steps)      # (u ∘ a)^T
    if pair == (DIAG, OUTER):
        return Val("", OUTER, steps, tuple((s, _elementwise(a.parts[0], x, "*"), y) for s, x, y in b.parts))
    if pair == (SHARED, OUTER):
        return Val("", OUTER, steps, tuple((s, matmul(a, x), y) for s, x, y in b.parts))
    if pair == (OUTER, SHARED):                  # x y^T W = x (W^T y)^T
        return Val("", OUTER, steps, tuple((s, x, Val(mm(y.code, b.code, y.steps), y.kind, y.steps))
                                           for s, x, y in a.parts))
    if pair == (OUTER, COL):                     # x (y^T c)
        terms = [f"{'-' if s < 0 else ''}{_paren(_rows(x, COL))} * np.sum({_paren(_rows(y, COL))} * "
                 f"{_paren(b.code)}, axis=-1, keepdims=True)" for s, x, y in a.parts]
        code = terms[0]
        for t in terms[1:]:
            code += f" - {t[1:]}" if t.startswith("-") else f" + {t}"
        return Val(code, COL, steps)
    raise Unsupported(f"a product of a {a.kind} and a {b.kind} value")


def size_code(x) -> str:
    """A size as Python: H -> size["H"], 4*H -> 4 * size["H"]."""
    x = sp.sympify(x)
    if x.is_Integer:
        return str(int(x))
    if x.is_Symbol:
        return f'size["{x.name}"]'
    if x.is_Mul:
        return " * ".join(size_code(a) for a in x.args)
    if x.is_Add:
        return "(" + " + ".join(size_code(a) for a in x.args) + ")"
    raise Unsupported(f"the size {x}")


def outer_code(v: Val) -> str:
    """An OUTER value summed over steps and the batch: Σ ± _outer(a, b)."""
    code = ""
    for s, a, b in v.parts:
        term = f"_outer({a.code}, {b.code})"
        code += (f" - {term}" if s < 0 else f" + {term}") if code else (f"-{term}" if s < 0 else term)
    return code


# ---------------------------------------------------------------- which line computes each gradient

@dataclass
class Source:
    """Where the adjoint of one quantity comes from: a proved line, a proved repair, or derived."""
    how: str                               # "claim", "repair" or "derived"
    claim: object = None                   # the ir.Claim (for a repair: the wrong line it replaces)
    lhs: object = None
    rhs: object = None
    edit: str = ""                         # a repair's edit
    reads: set = field(default_factory=set)
    passed_over: list = field(default_factory=list)   # (claim, verdict or why) of lines not used
    cites: list = field(default_factory=list)         # [(id, line)] of the other lines the printed one rests on


def _targets(lhs: ir.Expr, rhs: ir.Expr, plan: Plan) -> list:
    """[(key, lhs, rhs)] the gradient lines a claim states: key q (every step of q, or q itself),
    or q@0 (a declared initial state).  A block row [∂ℓ/∂W ∂ℓ/∂U ∂ℓ/∂b] = Σ_t g [x^T h^T 1] is split."""
    if isinstance(lhs, ir.Block):
        row = lhs.rows[0] if len(lhs.rows) == 1 else None
        body, wrap = (rhs.body, lambda b: ir.Sum(rhs.var, rhs.lo, rhs.hi, b, rhs.short)) \
            if isinstance(rhs, ir.Sum) else (rhs, lambda b: b)
        if row is None or not (isinstance(body, ir.MatMul) and isinstance(body.right, ir.Block)
                               and len(body.right.rows) == 1 and len(body.right.rows[0]) == len(row)):
            return []
        out = []
        for part, factor in zip(row, body.right.rows[0]):
            piece = body.left if factor == ir.Number(1) else ir.MatMul(body.left, factor)
            out += _targets(part, wrap(piece), plan)
        return out
    q, time = None, None
    if isinstance(lhs, ir.Ref) and lhs.name in plan.notation:
        q, time = plan.notation[lhs.name], lhs.time
    elif isinstance(lhs, ir.Deriv) and isinstance(lhs.of, ir.Ref) and lhs.of.name == plan.loss \
            and lhs.of.time is None and isinstance(lhs.wrt, ir.Ref):
        q, time = lhs.wrt.name, lhs.wrt.time
        d = plan.ctx.declarations.get(q)
        if d is not None and d.initial and time is None:
            q, time = q[:-2], ir.Time(None, 0)
    if q is None or q == plan.loss or q not in plan.adj and q + "_0" not in plan.ctx.declarations:
        return []
    if plan.ctx.is_sequence(q):
        if time is not None and time.var is None and time.offset == 0 and q + "_0" in plan.ctx.declarations:
            return [(q + "@0", lhs, rhs)]
        if time is None or time.var in (None, "T"):
            return []                      # a line about one step only
        return [(q, lhs, rhs)]
    return [(q, lhs, rhs)] if time is None else []


def _candidates(plan: Plan, verdicts: dict, repairs: dict) -> dict:
    """key -> [(kind, claim, lhs, rhs, edit)] in the order to try: proved lines, then proved repairs of wrong
    lines; and key -> [(claim, verdict)] of the lines that state it and are not proved."""
    from ..latex.reader import parse_statement
    good, wrong = {}, {}
    for c in plan.ctx.claims:
        if c.lhs is None:                  # a whole algorithm: its lines are claims of their own
            continue
        verdict = verdicts.get(c.id)
        for key, lhs, rhs in _targets(c.lhs, c.rhs, plan):
            if verdict == "proved":
                good.setdefault(key, []).append(("claim", c, lhs, rhs, ""))
            else:
                wrong.setdefault(key, []).append((c, verdict or "not checked"))
                for fix in repairs.get(c.id, []):
                    if fix.get("verdict") != "proved":
                        continue
                    try:
                        flhs, frhs = parse_statement(fix["latex"], plan.ctx)
                    except Exception:  # noqa: BLE001, S112 - a repair that does not read back is not used
                        continue
                    for fkey, a, b in _targets(flhs, frhs, plan):
                        if fkey == key:
                            good.setdefault("repair:" + key, []).append(("repair", c, a, b, fix.get("edit", "")))
    out = {}
    for key in {k.removeprefix("repair:") for k in good}:
        out[key] = good.get(key, []) + good.get("repair:" + key, [])
    return out, wrong


@dataclass
class Turn:
    """One point of the backward pass: the adjoint of `key` is computed here."""
    key: str
    mode: str                               # "loop", "all" (every step at once, or no step) or "leaf"
    group: tuple | None = None
    complete: set = field(default_factory=set)
    done_now: set = field(default_factory=set)


def _turns(plan: Plan) -> list:
    turns, complete = [], {plan.loss}
    for group in reversed(plan.order):
        mode, members, _ = group
        if mode == "loop":
            done = set()
            for q in reversed(members):
                turns.append(Turn(q, "loop", group, set(complete), set(done)))
                done.add(q)
        else:
            turns.append(Turn(members[0], "all", group, set(complete)))
        complete |= set(members)
    for n in plan.params + plan.inputs:
        d = plan.ctx.declarations[n]
        if d.kind == "index":
            continue
        turns.append(Turn(n[:-2] + "@0" if d.initial else n, "leaf", None, set(complete)))
    return turns


def _avail(plan: Plan, turn: Turn):
    def avail(q, time, env):
        if q in turn.complete:
            return True
        if turn.mode != "loop" or q not in turn.group[1]:
            return False
        if time is None or time.var in (None, "T") or env.get(time.var) != LOOP:
            return False
        ahead = time.offset * turn.group[2]        # steps already done lie ahead of t in time's direction
        return ahead >= 1 or ahead == 0 and q in turn.done_now
    return avail


def _env_for(lhs_time, turn: Turn) -> dict:
    if lhs_time is None or lhs_time.var is None:
        return {}
    return {lhs_time.var: LOOP if turn.mode == "loop" else ALL}


def _lhs_time(lhs):
    if isinstance(lhs, ir.Ref):
        return lhs.time
    if isinstance(lhs, ir.Deriv):
        return lhs.wrt.time
    return None


def choose(plan: Plan, verdicts: dict, repairs: dict) -> dict:
    """key -> Source for every adjoint the backward pass may compute."""
    good, wrong = _candidates(plan, verdicts, repairs)
    chosen = {}
    for turn in _turns(plan):
        src = Source("derived", passed_over=[(c, v) for c, v in wrong.get(turn.key, [])])
        for kind, claim, lhs, rhs, edit in good.get(turn.key, []):
            trial = Emitter(plan, _avail(plan, turn))
            try:
                trial.assign(turn, lhs, rhs)
            except Unsupported as e:
                src.passed_over.append((claim, f"proved, not used: {e}"))
                continue
            src = Source(kind, claim, lhs, rhs, edit, trial.reads, src.passed_over, plan.cites.get(claim.id, []))
            break
        chosen[turn.key] = src
    return chosen


def needed(plan: Plan, chosen: dict) -> set:
    """The adjoints the gradients of the free inputs need: a line's reads, a derived adjoint's consumers."""
    work = [t.key for t in _turns(plan) if t.mode == "leaf"]
    out = set()
    while work:
        key = work.pop()
        if key in out or key == plan.loss:
            continue
        out.add(key)
        src = chosen.get(key)
        if src is not None and src.how != "derived":
            work += sorted(src.reads)
        else:
            work += plan.consumers.get(key.removesuffix("@0"), [])
    return out


# ---------------------------------------------------------------- the module

def _cited(src: Source) -> str:
    """The claim a printed line comes from, and the other lines its rewrite rests on: `id (line N), ...`."""
    c = src.claim
    out = f"{c.id} (line {c.source.line})" if c.source else c.id
    return ", ".join([out] + [f"{cid} (line {line})" if line else cid for cid, line in src.cites])


def _comment(src: Source) -> str:
    c = src.claim
    line = f" (line {c.source.line})" if c.source else ""
    if src.how == "claim":
        return f"# claim: {_cited(src)}"
    return f"# repair of claim: {c.id}{line}: {src.edit}"


def _tail(plan: Plan) -> set:
    """The loss and the per-step quantities that only the loss (or another of them) reads, each at its own
    step: the part of the forward pass that can run on a chunk of steps at a time (the output layer: scores,
    probabilities, the loss), since step t of each reads the other quantities at steps near t only and nothing
    outside reads it.  Empty when the loss is not a sum over the steps 1..T."""
    ctx = plan.ctx
    defs = _forward_defs(ctx)
    d = defs[plan.loss]
    body = d.expr.arg if isinstance(d.expr, ir.Neg) else d.expr
    if not (isinstance(body, ir.Sum) and body.lo == ir.Time(None, 1) and body.hi == ir.Time("T", 0)) \
            or ctx.is_sequence(plan.loss) or any(isinstance(x, ir.Sum) for x in body.body.walk()):
        return set()

    def steps_ok(e, var):          # every step read is var + k (|k| <= P), never a fixed step or T
        return all(r.time is None or r.time.var == var and abs(r.time.offset) <= plan.pad for r in ir.refs(e))

    read = {plan.loss: (body.body, body.var)}
    if not steps_ok(body.body, body.var):
        return set()
    single = {g[1][0] for g in plan.order if g[0] == "all"}
    tail = {plan.loss}
    changed = True
    while changed:
        changed = False
        for n, dn in defs.items():
            if n in tail or n not in single or not ctx.is_sequence(n) or n not in plan.batched:
                continue
            var = dn.target.time.var if dn.target.time is not None else None
            users = plan.consumers.get(n, [])
            if var is None or not users or not set(users) <= tail or \
                    any(isinstance(x, ir.Sum) for x in dn.expr.walk()) or not steps_ok(dn.expr, var):
                continue
            if all(r.time == ir.Time(read[u][1], 0) for u in users for r in ir.refs(read[u][0]) if r.name == n):
                tail.add(n)
                read[n] = (dn.expr, var)
                changed = True
    return tail if len(tail) > 1 else set()


def _forward_lines(plan: Plan, tail: set = frozenset()) -> tuple[list, list]:
    """The forward pass's lines, and apart those of the quantities in `tail` (run on chunks of steps)."""
    em = Emitter(plan)
    ctx, P = plan.ctx, plan.pad
    defs = _forward_defs(ctx)
    main, chunk = em.lines, []
    for n in plan.inputs:                    # columns per example become rows (see the module docstring)
        d = ctx.declarations[n]
        if d.sequence and not d.initial:
            em.emit(f'{plan.py[n]} = _steps(arrays["{plan.py[n]}"], {P})')
        elif d.kind == "index":
            em.emit(f'{plan.py[n]} = arrays["{plan.py[n]}"]')
        else:
            em.emit(f'{plan.py[n]} = arrays["{plan.py[n]}"].T')
    for n in plan.params:
        em.emit(f'{plan.py[n]} = arrays["{plan.py[n]}"]')
    for group in [g for g in plan.order if g[1][0] not in tail] + [g for g in plan.order if g[1][0] in tail]:
        mode, members, direction = group
        em.lines = chunk if members[0] in tail else main
        for n in members:
            if ctx.is_sequence(n):
                rows = size_code(em.typer.infer(defs[n].target)[0])
                em.emit(f'{plan.py[n]} = _steps_array("{plan.py[n]}", (T + {2 * P}, B, {rows}), dtype)')
                if n + "_0" in ctx.declarations:
                    em.emit(f"{plan.py[n]}[{P - 1}] = {plan.py[n + '_0']}")
        exprs = {n: defs[n].expr for n in members}
        if mode == "loop":
            for n in members:
                var = defs[n].target.time.var
                em.comment = f"# definition of {n} (line {defs[n].source.line}): its terms without {', '.join(members)}"
                exprs[n] = em.hoist(exprs[n], var, lambda x, m=set(members): not {r.name for r in ir.refs(x)} & m)
            em.emit(f"for t in {'range(1, T + 1)' if direction > 0 else 'range(T, 0, -1)'}:")
            em.indent += 1
        for n in members:
            d = defs[n]
            var = d.target.time.var if d.target.time is not None else None
            env = {var: LOOP if mode == "loop" else ALL} if var else {}
            v = em.value(exprs[n], env)
            target = em.at(plan.py[n], d.target.time, env)[0] if var else plan.py[n]
            src = d.source
            em.emit(_store(target, v.code), f"# definition of {n} (line {src.line})" if src else None)
        if mode == "loop":
            em.end_loop()
    return main, chunk


def _backward_lines(plan: Plan, chosen: dict, need: set) -> list:
    em = Emitter(plan)
    ctx, P = plan.ctx, plan.pad
    defs = _forward_defs(ctx)

    def derived(name, time):
        key = name + "@0" if time is not None and time.var is None and time.offset == 0 and \
            name + "_0" in ctx.declarations else name
        return key in need and chosen.get(key, Source("derived")).how == "derived" or \
            key != name and name in need and chosen[name].how == "derived"

    def adjoint_at(n, env):
        d = defs[n]
        if ctx.is_sequence(n):
            code, steps = em.at(plan.adj[n], d.target.time, env)
            return Val(code, COL if n in plan.batched else SHARED, steps)
        return Val(plan.adj[n], COL if n in plan.batched else SHARED)

    def env_of(n, pos):
        t = defs[n].target.time
        return {t.var: pos} if t is not None and t.var is not None else {}

    def push_def(n, env, want):
        """Reverse mode through n's definition; its root's value is the stored array (tanh(a) is h)."""
        d = defs[n]
        stored = em.at(plan.py[n], d.target.time, env)[0] if ctx.is_sequence(n) else plan.py[n]
        em.memo[(id(d.expr), _envkey(env))] = Val(stored, COL if n in plan.batched else SHARED,
                                                 ctx.is_sequence(n) and ALL in env.values())
        em.push(d.expr, adjoint_at(n, env), env, want)

    em.emit(f"{plan.adj[plan.loss]} = np.ones_like({plan.py[plan.loss]})", "# the loss, summed over the batch")
    for n in list(plan.params) + list(plan.inputs) + list(defs):
        decl = ctx.declarations.get(n)
        if n == plan.loss or n not in plan.adj or decl is not None and decl.initial:
            continue                      # an initial state's adjoint is its sequence's, at step 0
        if not (n in need or n + "@0" in need):
            continue
        if n in chosen and chosen[n].how != "derived" and not (ctx.is_sequence(n) and n in defs):
            continue                      # assigned by its line; a sequence's array keeps zero padding
        em.emit(f"{plan.adj[n]} = np.zeros_like({plan.py[n]})")
    for group in reversed(plan.order):
        mode, members, direction = group
        inside = set(members)
        if mode == "all":
            n = members[0]
            if n != plan.loss and n not in need:
                continue
            env = env_of(n, ALL)
            src = chosen.get(n)
            if n != plan.loss and src.how != "derived":
                em.assign(Turn(n, "all"), src.lhs, _stored_forms(src.rhs, plan), _comment(src))
            push_def(n, env, lambda q, time, env: derived(q, time))
            continue
        if not any(n in need for n in members):
            continue
        rhs = {}
        for n in members:
            src = chosen[n]
            if n in need and src.how != "derived":
                em.comment = _comment(src)
                var = _lhs_time(src.lhs).var
                rhs[n] = em.hoist(src.rhs, var, lambda x, m=inside: not _reads_adjoint_of(x, m, plan))
                em.comment = "# derived"
        # Chains of ∘ a line of the loop has already computed are read from its array (_reuse): first from the
        # lines printed earlier in the same iteration, then, with those substitutions made, from any line at a
        # later step (computed by an earlier iteration of a loop running down from T).
        printed = [n for n in reversed(members) if n in rhs]
        var = {n: _lhs_time(chosen[n].lhs).var for n in printed}
        same = {}
        for i, n in enumerate(printed):
            rhs[n] = _stored_forms(rhs[n], plan, var[n])
            same[n] = _reuse(rhs[n], [(chosen[m].lhs, same[m], (0,)) for m in printed[:i]], var[n], plan)
        for i, n in enumerate(printed):
            later = [(chosen[m].lhs, form, range(1, P + 1)) for m in printed for form in (same[m], rhs[m])] \
                if direction > 0 else []
            rhs[n] = _reuse(same[n], later, var[n], plan)
        em.emit(f"for t in {'range(T, 0, -1)' if direction > 0 else 'range(1, T + 1)'}:")
        em.indent += 1
        em.memo.clear()
        for n in reversed(members):
            if n not in need:
                continue
            src = chosen[n]
            if src.how != "derived":
                em.assign(Turn(n, "loop"), src.lhs, rhs[n], _comment(src))
            env = env_of(n, LOOP)
            push_def(n, env, lambda q, time, env, inside=inside: q in inside and derived(q, time))
        em.end_loop()
        em.memo.clear()
        for n in members:
            if n in need:
                env = env_of(n, ALL)
                push_def(n, env, lambda q, time, env, inside=inside: q not in inside and derived(q, time))
    # A declared initial state whose sequence has a line of its own: its gradient is derived from the
    # uses of h_{t-1} at step 1.
    for key in sorted(k for k in need if k.endswith("@0") and chosen[k].how == "derived"):
        q = key.removesuffix("@0")
        if q in need and chosen[q].how == "derived":
            continue
        for c in plan.consumers.get(q, []):
            if c in need or c == plan.loss:
                env = env_of(c, ("fixed", 1))
                push_def(c, env, lambda n, time, env, q=q: n == q and time is not None and time.var is not None
                        and time.offset == -1)
    for turn in _turns(plan):
        if turn.mode != "leaf":
            continue
        src = chosen[turn.key]
        q = turn.key.removesuffix("@0")
        if src.how != "derived":
            em.assign(turn, src.lhs, _stored_forms(src.rhs, plan), _comment(src))
        elif turn.key.endswith("@0"):
            em.emit(f'grads["{plan.py[q + "_0"]}"] = _columns({plan.adj[q]}[{P - 1}])', "# derived")
        elif ctx.is_sequence(q):
            em.emit(f'grads["{plan.py[q]}"] = _columns({plan.adj[q]}[{P}:T + {P}])', "# derived")
        elif q in plan.batched:
            em.emit(f'grads["{plan.py[q]}"] = _columns({plan.adj[q]})', "# derived")
        else:
            em.emit(f'grads["{plan.py[q]}"] = {plan.adj[q]}', "# derived")
    return em.lines


def _in_place(lines: list, plan: Plan) -> list:
    """The backward lines with a gradient of every step that a helper computes from a forward array no later
    line reads written over that array: bptt-dS's dS = P - e_y over P, one copy of a (T, B, V) array and one
    fresh array fewer.  Only when the gradient's array is read nowhere before (it was only zeros), the forward
    array's padding steps are zeros (no declared initial state is stored in it), and both have one shape."""
    shapes = {plan.py[n]: (n, str(Typer(plan.ctx).infer(d.target)[0])) for n, d in _forward_defs(plan.ctx).items()
              if plan.ctx.is_sequence(n)}
    out = list(lines)
    for i, line in enumerate(out):
        m = re.match(r"(\s*)_minus_onehot\((\w+)(\[[^\]]*\]), (.*), out=(\w+)\3\)(  #.*)?$", line)
        if not m:
            continue
        indent, src, span, rest, dst, comment = m.groups()
        init = [j for j in range(i) if re.fullmatch(rf"\s*{dst} = np\.zeros_like\((\w+)\)", out[j])]
        if len(init) != 1 or src not in shapes or shapes[src][0] + "_0" in plan.ctx.declarations:
            continue
        like = re.fullmatch(rf"\s*{dst} = np\.zeros_like\((\w+)\)", out[init[0]]).group(1)
        if like not in shapes or shapes[like][1] != shapes[src][1] or \
                any(re.search(rf"\b{src}\b", x) for x in out[i + 1:] if x is not None) or \
                any(re.search(rf"\b{dst}\b", x) for x in out[init[0] + 1:i] if x is not None):
            continue
        out[init[0]] = None
        out[i] = (f"{indent}{dst} = {src}  # {src} is not read again: its array takes the gradient\n"
                  f"{indent}_minus_onehot({src}{span}, {rest}, out={src}{span}){comment or ''}")
    return [x for x in out if x is not None]


# ---------------------------------------------------------------- the output layer by chunks of steps

_LOCAL = {"np", "T", "B", "size", "dtype", "grads", "range", "len", "float", "int"}


def _statements(lines: list) -> list:
    """Lines (one indent deep) grouped into top-level statements: [(text, ast node)]."""
    flat = [x for line in lines for x in line.split("\n")]
    groups = []
    for line in flat:
        if line.startswith("    ") and not line.startswith("     ") or not groups:
            groups.append([line])
        else:
            groups[-1].append(line)
    out = []
    for g in groups:
        text = "\n".join(x[4:] for x in g)
        out.append((g, ast.parse(text).body[0]))
    return out


def _names(node) -> tuple[set, set]:
    """(read, written) names of a statement; grads["k"] counts as the name grads["k"], a slice or an `out=`
    target writes its array, `x += ...` reads and writes x."""
    read, written = set(), set()

    def base(t):
        while isinstance(t, ast.Subscript):
            if isinstance(t.value, ast.Name) and t.value.id == "grads" and isinstance(t.slice, ast.Constant):
                return f'grads["{t.slice.value}"]'
            t = t.value
        return t.id if isinstance(t, ast.Name) else None

    for n in ast.walk(node):
        if isinstance(n, ast.Subscript) and base(n) and base(n).startswith("grads["):
            (written if isinstance(n.ctx, ast.Store) else read).add(base(n))
        elif isinstance(n, ast.Name):
            (written if isinstance(n.ctx, ast.Store) else read).add(n.id)
        if isinstance(n, (ast.Assign, ast.AugAssign)):
            for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                if base(t):
                    written.add(base(t))
            if isinstance(n, ast.AugAssign) and base(n.target):
                read.add(base(n.target))
        if isinstance(n, ast.Call):
            for k in n.keywords:
                if k.arg == "out" and base(k.value):
                    written.add(base(k.value))
    read.discard("grads")
    return read, written


def _free(statements: list) -> list:
    """The names the statements read before assigning them (not the module's helpers, nor T, B, size, dtype)."""
    bound, free = set(), []
    for _, node in statements:
        read, written = _names(node)
        for n in sorted(read):
            if n not in bound and n not in free and not n.startswith(("_", "grads[")) and n not in _LOCAL \
                    and n not in dir(builtins):
                free.append(n)
        bound |= {n for n in written if not n.startswith("grads[")}
    return free


def _freed(lines: list, keep: set) -> list:
    """The backward lines with `del name` after the last statement that reads each array a statement assigned
    (a gradient of every step, a term hoisted out of a loop), so that it is not held while later lines
    allocate theirs; not the names in `keep` (read after the lines)."""
    stmts = _statements(lines)
    assigned, last, deleted = set(), {}, set()
    for i, (_, node) in enumerate(stmts):
        if isinstance(node, ast.Delete):
            deleted |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            continue
        read, written = _names(node)
        if isinstance(node, ast.Assign):
            assigned |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for n in read | written:
            last[n] = i
    out = []
    for i, (text, _) in enumerate(stmts):
        out += text
        gone = sorted(n for n in assigned if last.get(n) == i and n not in keep and n not in deleted)
        if gone:
            out.append(f"    del {', '.join(gone)}")
    return out


def _chunked(plan: Plan, tail: set, tail_forward: list, backward: list) -> tuple[dict | None, list]:
    """The backward pass with every statement that reads a quantity of `tail` (or its gradient) moved into a
    function the module runs on one chunk of steps at a time, with the forward lines of `tail`
    (`_chunk_forward`), so that no array holds a tail quantity of every step: (what the template needs, the
    remaining backward lines), or (None, backward) when the statements do not allow it.  A chunk function
    sees every array of steps as a window (a view of steps s - P .. s + n - 1 + P, its own steps 1..n), so a
    line printed for steps 1..T reads and writes steps s..s + n - 1: a slice `[k:T + k]` (never a fixed step,
    T, or a clipped range), += into a gradient array outside it; what it assigns and a later line reads is
    either the loss (its sum over the chunks), a term hoisted out of a loop (`preN`, stacked over the chunks),
    or the gradient of a weight or of a column per example (summed)."""
    if not tail:
        return None, backward
    ctx, P = plan.ctx, plan.pad
    defs = _forward_defs(ctx)
    seqs = [n for n in list(defs) + plan.inputs if ctx.is_sequence(n) and not
            (n in ctx.declarations and ctx.declarations[n].initial)]
    step_arrays = {plan.py[n] for n in seqs} | {plan.adj[n] for n in seqs if n in plan.adj}
    local = {plan.py[n] for n in tail} | {plan.adj[n] for n in tail if n in plan.adj}
    loss = plan.py[plan.loss]
    summed = {f'grads["{plan.py[n]}"]' for n in plan.params + plan.inputs
              if not ctx.is_sequence(n) and ctx.declarations[n].kind != "index"}
    stmts = _statements(backward)
    chunk, temps = [], set()
    for i, (_, node) in enumerate(stmts):
        read, written = _names(node)
        if (read | written) & (local | temps):
            chunk.append(i)
            if isinstance(node, ast.Assign):
                temps |= {t.id for t in node.targets if isinstance(t, ast.Name) and not re.fullmatch(r"pre\d+", t.id)}
    if not chunk:
        return None, backward
    chunk_set = set(chunk)

    def slices_ok(node):
        for n in ast.walk(node):
            if isinstance(n, (ast.For, ast.While)):
                return False
            if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id in step_arrays:
                m = re.fullmatch(r"(\d+):T(?: \+ (\d+))?", ast.unparse(n.slice))
                if not m or (m.group(2) or "0") != m.group(1) or n.value.id in local and int(m.group(1)) != P:
                    return False
        subscripted = {id(n.value) for n in ast.walk(node) if isinstance(n, ast.Subscript)}
        return not any(isinstance(n, ast.Name) and n.id in step_arrays - local and id(n) not in subscripted
                       for n in ast.walk(node))

    if not all(slices_ok(stmts[i][1]) for i in chunk):
        return None, backward
    names = [_names(node) for _, node in stmts]

    def commute(j, k):             # statements j and k may run in either order
        (rj, wj), (rk, wk) = names[j], names[k]
        return not (wk & rj or wj & rk or wj & wk)

    # The call takes the place of one of the chunk's statements: every other one moves to it, past the
    # statements in between, which must commute with it.
    for first in chunk:
        if all(commute(j, k) for j in chunk for k in range(min(j, first) + 1, max(j, first))
               if k not in chunk_set):
            break
    else:
        return None, backward
    outside_after = set()
    for k in range(first + 1, len(stmts)):
        if k not in chunk_set:
            outside_after |= names[k][0]
    assigned = []
    for i in chunk:
        node = stmts[i][1]
        _, written = _names(node)
        if isinstance(node, ast.Assign):
            assigned += [n for n in written if isinstance(node.targets[0], ast.Name) and n not in assigned]
    exports, kinds = [loss], ["sum"]          # the loss: the sum of the chunks' sums
    for n in assigned:
        if n in outside_after:
            if n == loss or not re.fullmatch(r"pre\d+", n):
                return None, backward
            exports.append(n)
            kinds.append("steps")
    grads_set = {n for i in chunk for n in _names(stmts[i][1])[1] if n.startswith("grads[")}
    if not grads_set <= summed:
        return None, backward
    body = [stmts[i] for i in chunk]
    tail_values = [plan.py[n] for n in defs if n in tail]
    forward_stmts = _statements(tail_forward)
    widths = []
    for n in [n for n in defs if n in tail]:
        if ctx.is_sequence(n):
            w = size_code(Typer(ctx).infer(defs[n].target)[0])
            if w not in widths:
                widths.append(w)
    free = _free(body)
    info = {
        "forward": [line for text, _ in forward_stmts for line in text],
        "forward_free": _free(forward_stmts),
        "backward": [line for text, _ in body for line in text],
        "from_forward": [n for n in free if n in tail_values] + ([loss] if loss not in free else []),
        "from_window": [n for n in free if n not in tail_values],
        "exports": exports,
        "kinds": kinds,
        "widths": widths,
        "step_arrays": sorted(step_arrays),
        "tail": [n for n in defs if n in tail],
        "tail_values": tail_values,
    }
    call = (f"{', '.join(exports)}{',' if len(exports) == 1 else ''} = _by_chunks(_chunk_backward, locals(), T, B, "
            f"({', '.join(widths)},), {tuple(kinds)!r}, grads)  # the lines reading "
            f"{', '.join(tail_values)}, a chunk of steps at a time")
    rest = []
    for i, (text, _) in enumerate(stmts):
        if i == first:
            rest.append("    " + call)
        if i not in chunk_set:
            rest += text
    return info, rest


def _stored_forms(expr, plan: Plan, var: str | None = None):
    """expr with σ(a_t), σ'(a_t), tanh(a_t), tanh'(a_t) written with the stored p_t when the file defines
    p_t := σ(a_t) (or tanh): σ' = p ∘ (1 − p), tanh' = 1 − p², since the forward pass already computed p.  Only
    at steps 1..T, where the stored array holds σ(a): at the step the definition is written at (every step of
    a sum, the loop's t, step 1), or at var + k (k ≥ 1) in a chain of ∘ that holds a gradient at step var + k or
    later, which is zero past T where the stored array holds zeros (dh_t's (σ'(a_{t+1}) ∘ dh_{t+1}))."""
    outputs = {(d.expr.function, d.expr.arg): d.target for d in _forward_defs(plan.ctx).values()
               if isinstance(d.expr, ir.Apply) and d.expr.derivative == 0 and d.expr.function in ("sigma", "tanh")}

    def match(e):
        """(the stored quantity, k): e is σ or σ' (tanh, tanh') of a stored quantity's argument at step var + k."""
        if not (isinstance(e, ir.Apply) and e.derivative <= 1):
            return None
        if (e.function, e.arg) in outputs:
            return outputs[(e.function, e.arg)], 0
        for (function, arg), p in outputs.items():
            pv = p.time.var if p.time is not None else None
            if function != e.function or pv is None:
                continue
            if algorithm.absolute(arg, {pv: 1}) == e.arg:
                return algorithm.absolute(p, {pv: 1}), 0
            for k in range(1, plan.pad + 1):
                if pv == var and algorithm.shift(arg, k, var) == e.arg:
                    return algorithm.shift(p, k, var), k
        return None

    def form(e, p):
        if e.derivative == 0:
            return p
        if e.function == "sigma":
            return ir.Hadamard(p, ir.Add((ir.Number(1), ir.Neg(p))))
        return ir.Add((ir.Number(1), ir.Neg(ir.Power(p, 2))))

    def walk(e):
        if isinstance(e, ir.Hadamard):
            factors = _chain(e)
            out = []
            for i, x in enumerate(factors):
                m = match(x)
                others = factors[:i] + factors[i + 1:]
                if m and (m[1] == 0 or any((_adjoint_step(y, plan, var) or 0) >= m[1] for y in others)):
                    out.append(form(x, m[0]))
                else:
                    out.append(walk(x))
            chain = out[0]
            for x in out[1:]:
                chain = ir.Hadamard(chain, x)
            return chain
        m = match(e)
        if m and m[1] == 0:
            return form(e, m[0])
        kids = e.children()
        if not kids:
            return e
        new = tuple(walk(c) for c in kids)
        return e if new == kids else e.rebuild(new)
    return walk(expr)


def _chain(e) -> list:
    """The factors of a chain of ∘ (a ∘ b ∘ c), in order."""
    return _chain(e.left) + _chain(e.right) if isinstance(e, ir.Hadamard) else [e]


def _adjoint_step(e, plan: Plan, var: str):
    """The offset k of an adjoint read at step var + k (dh_{t+1}, ∂ℓ/∂c_t), or None."""
    if isinstance(e, ir.Ref) and e.name in plan.notation:
        time = e.time
    elif isinstance(e, ir.Deriv) and isinstance(e.wrt, ir.Ref) and isinstance(e.of, ir.Ref) \
            and e.of.name == plan.loss:
        time = e.wrt.time
    else:
        return None
    return time.offset if time is not None and time.var == var else None


def _reuse(expr, lines: list, var: str, plan: Plan):
    """expr with each chain of ∘ that holds every factor of a line the loop has already computed, at step
    var + k, reading that line's array instead: in an LSTM, dh_t's term U_f^T (f_{t+1} ∘ (1 − f_{t+1}) ∘ df_{t+1})
    is ∂ℓ/∂f̂_{t+1}, which the previous iteration stored.  `lines` are (lhs, rhs, shifts k allowed):
    k = 0 for a line printed earlier in the same iteration, k ≥ 1 for any line of a loop running down from T.
    Past the end (t + k > T) the stored array holds zeros; the chain is zero there too only when one of its
    factors is a gradient at step t + k or later, which is required."""
    def subset(small, big):
        rest = list(big)
        for x in small:
            if x not in rest:
                return None
            rest.remove(x)
        return rest

    def walk(e):
        if isinstance(e, ir.Hadamard):
            factors = _chain(e)
            used = []
            for lhs, rhs, shifts in lines:
                line = _chain(rhs)
                if len(line) < 2:
                    continue
                for k in shifts:
                    moved = [algorithm.shift(x, k, var) for x in line]
                    rest = subset(moved, factors)
                    if rest is None or k > 0 and not any((_adjoint_step(x, plan, var) or 0) >= k for x in moved):
                        continue
                    used.append(algorithm.shift(lhs, k, var))
                    factors = rest
                    break
            if used:
                out = used[0]
                for x in used[1:] + [walk(x) for x in factors]:
                    out = ir.Hadamard(out, x)
                return out
        kids = e.children()
        if not kids or isinstance(e, ir.Sum):
            return e
        new = tuple(walk(c) for c in kids)
        return e if new == kids else e.rebuild(new)
    return walk(expr)


def _reads_adjoint_of(e, names: set, plan: Plan) -> bool:
    """Whether e reads the adjoint of one of `names` (dh_{t+1}, ∂ℓ/∂c_t)."""
    for n in e.walk():
        if isinstance(n, ir.Ref) and plan.notation.get(n.name) in names:
            return True
        if isinstance(n, ir.Deriv) and isinstance(n.wrt, ir.Ref) and n.wrt.name in names:
            return True
    return False


def _shape_entry(plan: Plan, name: str) -> tuple:
    """How an input is given: its dimensions (size names or numbers), with T and B for steps and examples."""
    d = plan.ctx.declarations[name]

    def dim(x):
        x = sp.sympify(x)
        if x.is_Integer:
            return int(x)
        if x.is_Symbol:
            return x.name
        raise Unsupported(f"{name}: the size {x} is not one name or number")
    if d.kind == "index":
        return ("T", "B") if d.sequence else ("B",)
    rows = dim(d.shape[0])
    if name in plan.params:
        return (rows, dim(d.shape[1]))
    return ("T", rows, "B") if d.sequence and not d.initial else (rows, "B")


def generate(ctx: ir.Context, verdicts: dict, repairs: dict, source_name: str, title: str,
             command: str | None = None) -> tuple[str, dict]:
    """The module's source for one context, and what it used: {gradient: how} for the docstring and the report."""
    suffix = _suffix_loss(ctx) if ctx.held_fixed else None
    ctx, cites = prepared(ctx, verdicts)
    plan = make_plan(ctx)
    plan.cites = cites
    chosen = choose(plan, verdicts, repairs)
    need = needed(plan, chosen)
    tail = _tail(plan)
    forward, tail_forward = _forward_lines(plan, tail)
    backward = _in_place(_backward_lines(plan, chosen, need), plan)
    # The forward arrays the backward pass writes over (dS over P): what keep= asks of them is copied first.
    written_over = sorted({m for line in backward for m in re.findall(r"# (\w+) is not read again: its array", line)})
    chunk, backward = _chunked(plan, tail, tail_forward, backward)
    if chunk is not None:
        written_over = sorted(set(written_over) | set(chunk["tail_values"]))
    backward = _freed(backward, {plan.py[plan.loss]})
    if chunk is None:                     # the whole forward pass as one
        forward = forward + tail_forward
    summary = _summary(plan, chosen, need)
    if suffix and plan.loss == suffix[0] and not ctx.is_sequence(plan.loss):
        loss = plan.py[plan.loss]
        summary["reading"] = (f"The file's {suffix[0]}_{suffix[1]} is the loss from step {suffix[1]} to T, its "
                              f"derivatives holding the earlier steps fixed; the module computes {loss} = "
                              f"{suffix[0]}_1, the whole loss, and reads each line through it (numpy_module."
                              f"_whole_loss): a line about {suffix[0]}_{suffix[1]} gives the gradient of {loss}.")
    shapes = {plan.py[n]: _shape_entry(plan, n) for n in plan.params + plan.inputs}
    index_range = {plan.py[n]: str(sp.sympify(plan.ctx.declarations[n].shape[0]))
                   for n in plan.inputs if plan.ctx.declarations[n].kind == "index"}
    binary = [plan.py[n] for n in plan.inputs if plan.ctx.declarations[n].binary]
    for n, size in index_range.items():
        if not any(size in s for m, s in shapes.items() if m not in index_range):
            raise Unsupported(f"the size {size} of the index {n} is the size of no array")
    values = {plan.py[n]: (f'_columns(values["{plan.py[n]}"][{plan.pad}:T + {plan.pad}])' if ctx.is_sequence(n)
                           else f'_columns(values["{plan.py[n]}"])' if n in plan.batched
                           else f'values["{plan.py[n]}"]') for n in _forward_defs(ctx)}
    source = ENV.get_template("numpy_module_any.py.j2").render(
        title=title.replace(chr(34) * 3, chr(39) * 3), source=source_name, params=[plan.py[n] for n in plan.params],
        inputs=[plan.py[n] for n in plan.inputs], shapes=shapes, index_range=index_range, binary=binary,
        pad=plan.pad, length=ctx.length, forward=forward, backward=backward, values=values, chunk=chunk, written_over=written_over,
        loss=plan.py[plan.loss], loss_name=plan.loss, summary=summary, command=command or f"verify {source_name}")
    compile(source, source_name, "exec")
    return source, summary


def _summary(plan: Plan, chosen: dict, need: set) -> dict:
    """For the docstring and report.json: each gradient printed, where it comes from, and lines not used."""
    out = {"from_file": [], "from_repairs": [], "derived": [], "not_used": [], "claims_used": [], "reading": ""}
    for key in sorted(need, key=lambda k: [t.key for t in _turns(plan)].index(k) if k in chosen else 0):
        src = chosen.get(key)
        if src is None:
            continue
        q = key.removesuffix("@0")
        name = plan.py[q + "_0"] if key.endswith("@0") else plan.py.get(q, q)
        c = src.claim
        where = f"{c.id} (line {c.source.line})" if c is not None and c.source else ""
        if src.how == "claim":
            out["from_file"].append(f"{name}: {_cited(src)}")
            for cid in [c.id] + [cid for cid, _ in src.cites]:
                if cid not in out["claims_used"]:
                    out["claims_used"].append(cid)
        elif src.how == "repair":
            out["from_repairs"].append(f"{name}: the proved repair of {where} ({src.edit})")
        else:
            out["derived"].append(name)
        for claim, why in src.passed_over:
            line = f" (line {claim.source.line})" if claim.source else ""
            out["not_used"].append(f"{claim.id}{line}, for {name}: {why}")
    return out


def module_for(doc, report: dict, command: str | None = None) -> tuple[str | None, dict]:
    """The module for a verified file, or (None, {"error": why}); never raises for a file it cannot translate."""
    verdicts = {c["id"]: c["verdict"] for c in report["claims"]}
    repairs = {c["id"]: c.get("repairs") or [] for c in report["claims"]}
    contexts = []
    for ctx in doc.derivation.contexts:
        try:
            ready = prepared(ctx, verdicts)[0]
            plan = make_plan(ready)
        except Unsupported as e:
            contexts.append((ctx, None, str(e)))
            continue
        lines = sum(len(_targets(c.lhs, c.rhs, plan)) for c in ready.claims if c.lhs is not None)
        contexts.append((ctx, lines, ""))
    usable = [x for x in contexts if x[1] is not None]
    if not usable:
        why = "; ".join(f"{ctx.title}: {err}" for ctx, _, err in contexts) or "no context"
        return None, {"error": f"no context of the file can be translated ({why})", "claims_used": []}
    ctx = max(usable, key=lambda x: x[1])[0]
    try:
        source, summary = generate(ctx, verdicts, repairs, Path(doc.path).name, ctx.title, command)
    except Unsupported as e:
        return None, {"error": f"{ctx.title}: {e}", "claims_used": []}
    return source, {"context": ctx.title, **summary}
