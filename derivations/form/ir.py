"""The one intermediate form: what a derivation file says, as typed expressions.

Where it sits: derivation file (LaTeX) -> **parse** (`derivations.latex`) -> this
form -> engines -> repairs -> report and code.  Every engine reads only this.

An expression is a tree of small frozen dataclasses.  Nodes compare by
structure (so `parse(print(x)) == x` is a plain `==`), and carry the source
span they were parsed from outside that comparison, for located errors.
A node also keeps the notation the author chose where two spellings mean the
same (``\\cdot`` or juxtaposition, ``^\\top`` or ``^T``, ``\\circ`` or ``\\odot``),
so a repaired line is printed back in the author's own notation.

A derivation is a list of contexts (a level-1 heading starts a new one); a
context holds declarations (names and shapes), definitions (``:=``) and claims
(``=``).  Semantics are written once, in docs/derivation-format.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

import sympy as sp

# ---------------------------------------------------------------- time indices


@dataclass(frozen=True)
class Time:
    """A step index: `var + offset` (t-1, t+1, T) or an absolute step (var None: 0, 1)."""
    var: str | None
    offset: int = 0

    def shifted(self, k: int) -> Time:
        return Time(self.var, self.offset + k)

    def at(self, values: dict) -> int:
        """The step number once the variables are given (values: {"t": 2, "T": 3})."""
        return (values[self.var] if self.var is not None else 0) + self.offset

    def __str__(self):
        if self.var is None:
            return str(self.offset)
        if self.offset == 0:
            return self.var
        return f"{self.var}{'+' if self.offset > 0 else '-'}{abs(self.offset)}"


# ---------------------------------------------------------------- expressions

def _span():
    return field(default=None, compare=False, repr=False)


class Expr:
    """Base of every expression node (a frozen dataclass).

    CHILDREN names the fields that hold its children, in order: each holds one expression, a tuple of them
    (the terms of a sum) or a tuple of rows of them (a block matrix).  `children` and `rebuild` read it;
    every other field (the spelling, the span, the index of (p_t)_{k_t}) is kept by a rebuild."""
    span: tuple | None
    CHILDREN: tuple = ()

    def _holds(self):
        """(field name, value, kind) of every field holding children: kind "one", "terms" or "rows"."""
        for name in self.CHILDREN:
            v = getattr(self, name)
            if isinstance(v, Expr):
                yield name, v, "one"
            elif v and isinstance(v[0], tuple):
                yield name, v, "rows"
            else:
                yield name, v, "terms"

    def children(self) -> tuple:
        out = []
        for _, v, kind in self._holds():
            if kind == "one":
                out.append(v)
            elif kind == "terms":
                out.extend(v)
            else:
                out.extend(x for row in v for x in row)
        return tuple(out)

    def rebuild(self, children) -> Expr:
        """The same node with new children (in the order `children()` gives them)."""
        it = iter(children)
        changes = {}
        for name, v, kind in self._holds():
            if kind == "one":
                changes[name] = next(it)
            elif kind == "terms":
                changes[name] = tuple(next(it) for _ in v)
            else:
                changes[name] = tuple(tuple(next(it) for _ in row) for row in v)
        return replace(self, **changes) if changes else self

    def walk(self):
        """Every node of the tree, parents before children."""
        yield self
        for c in self.children():
            yield from c.walk()


@dataclass(frozen=True)
class Ref(Expr):
    """A declared or defined quantity, at a step when it is a sequence: W_xh, h_{t-1}, dh_t."""
    name: str
    time: Time | None = None
    span: tuple | None = _span()
    # Written with the step as a superscript (\boldsymbol{h}^{(t)}, the Deep Learning book's notation):
    # the same quantity, printed back the way the author wrote it.
    sup: bool = field(default=False, compare=False, repr=False)


@dataclass(frozen=True)
class Number(Expr):
    """A numeric literal; added to a matrix it means that number times the all-ones matrix (1 - h)."""
    value: Fraction
    span: tuple | None = _span()


@dataclass(frozen=True)
class Add(Expr):
    """a + b - c: the terms, a subtracted one wrapped in Neg."""
    CHILDREN = ("terms",)
    terms: tuple
    span: tuple | None = _span()


@dataclass(frozen=True)
class Neg(Expr):
    CHILDREN = ("arg",)
    arg: Expr
    span: tuple | None = _span()


@dataclass(frozen=True)
class MatMul(Expr):
    """A B or A \\cdot B: the matrix product (or a scalar times a matrix)."""
    CHILDREN = ("left", "right")
    left: Expr
    right: Expr
    dot: bool = False          # written with \cdot
    span: tuple | None = _span()
    # x^T x written as a squared norm (\|x\|^2, \|x\|_2^2, \lVert x \rVert^2): its spelling only.
    norm: str | None = field(default=None, compare=False, repr=False)

    def rebuild(self, children):
        # The spelling \|x\|^2 exists only while the product is x^T x.
        left, right = children
        norm = self.norm if isinstance(left, Transpose) and left.arg == right else None
        return replace(self, left=left, right=right, norm=norm)


@dataclass(frozen=True)
class Hadamard(Expr):
    """a \\circ b (or \\odot): the element-wise product."""
    CHILDREN = ("left", "right")
    left: Expr
    right: Expr
    op: str = "circ"
    span: tuple | None = _span()


@dataclass(frozen=True)
class Div(Expr):
    """\\frac{a}{b} of scalars (or a matrix over a scalar)."""
    CHILDREN = ("num", "den")
    num: Expr
    den: Expr
    span: tuple | None = _span()



TRANSPOSE_STYLES = ("T", "{T}", "\\top", "{\\top}", "{\\mathsf T}", "{\\mathsf{T}}", "\\intercal", "{\\intercal}",
                    "\\mathsf{T}")


@dataclass(frozen=True)
class Transpose(Expr):
    """A^T.  `implied`: not written -- the transpose a context's `> Jacobians: numerator layout` puts around
    a Jacobian ∂a/∂b of columns (form/jacobians.py); printed as its argument alone, as the author wrote it."""
    CHILDREN = ("arg",)
    arg: Expr
    style: str = "\\top"
    span: tuple | None = _span()
    implied: bool = False


@dataclass(frozen=True)
class Power(Expr):
    """x^n element-wise (v^2 of a vector is v∘v); `prefix` keeps the spelling \\sigma^2(x)."""
    CHILDREN = ("arg",)
    arg: Expr
    exponent: int
    prefix: bool = False
    span: tuple | None = _span()

    def rebuild(self, children):
        # The spelling \sigma^2(x) exists only while the base is a function applied.
        return replace(self, arg=children[0], prefix=self.prefix and isinstance(children[0], Apply))


# Element-wise functions the format knows, with how they print.  relu is max(0, x); ind is the
# indicator 1[x > 0], ReLU's derivative (both defined where x != 0: docs/derivation-format.md).
BUILTIN_FUNCTIONS = {"sigma": "\\sigma", "tanh": "\\tanh", "exp": "\\exp", "log": "\\log",
                     "relu": "\\operatorname{ReLU}", "ind": "\\mathbb{1}"}


@dataclass(frozen=True)
class Apply(Expr):
    """An element-wise function, or its derivative (derivative=1): \\sigma(a), \\tanh'(a), f'(Wh)."""
    CHILDREN = ("arg",)
    function: str
    arg: Expr
    derivative: int = 0
    span: tuple | None = _span()
    # How it was written where there are several spellings (\max(0, z), \mathrm{ReLU}, 1_{z>0},
    # \operatorname{g}), so that a repair prints in the author's notation; no part of the meaning.
    style: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Softmax(Expr):
    CHILDREN = ("arg",)
    arg: Expr
    span: tuple | None = _span()


@dataclass(frozen=True)
class Diag(Expr):
    """diag(u): the square matrix with the column u on its diagonal."""
    CHILDREN = ("arg",)
    arg: Expr
    span: tuple | None = _span()


@dataclass(frozen=True)
class Component(Expr):
    """(p_t)_{k_t}: one entry of a column, at an index quantity (or a free entry index of a claim)."""
    CHILDREN = ("arg",)
    arg: Expr
    index: Ref
    span: tuple | None = _span()
    style: str | None = field(default=None, compare=False, repr=False)     # "sub": written q_k, not (q)_{k}


@dataclass(frozen=True)
class MatrixEntry(Expr):
    """W_{i,j}, \\frac{\\partial q_k}{\\partial W_{i,j}}: entry [row, col] of a matrix, at free entry indices
    of a claim (Claim.indices gives their ranges).  `style` is the spelling only: "comma" (W_{i,j}), "run"
    (W_{ij}), and "deriv-" before either for ∂s/∂W_{i,j}, which is entry [i, j] of ∂s/∂W (arg: that Deriv)."""
    CHILDREN = ("arg",)
    arg: Expr
    row: Ref
    col: Ref
    span: tuple | None = _span()
    style: str = field(default="comma", compare=False, repr=False)


@dataclass(frozen=True)
class Kronecker(Expr):
    """\\mathbf{1}_{k=i}, \\delta_{ki}: 1 where two free entry indices of a claim are equal, else 0 (a scalar).
    `style` is the spelling only (the printer writes it back)."""
    a: Ref
    b: Ref
    span: tuple | None = _span()
    style: str = field(default="\\mathbf{1}_", compare=False, repr=False)


@dataclass(frozen=True)
class Basis(Expr):
    """e_{k_t} (or 1_{y = y_t}): the standard basis column at an index quantity."""
    index: Ref
    style: str = "e"            # "e" or the bound letter of 1_{y = ...}
    span: tuple | None = _span()


@dataclass(frozen=True)
class Sum(Expr):
    """\\sum_{var=lo}^{hi} body over time steps (\\sum_t is lo=1, hi=T, `short`)."""
    CHILDREN = ("body",)
    var: str
    lo: Time
    hi: Time
    body: Expr
    short: bool = False
    span: tuple | None = _span()


@dataclass(frozen=True)
class Deriv(Expr):
    """\\frac{\\partial of}{\\partial wrt}, denominator layout.

    A scalar `of` gives the gradient, shaped like `wrt`; a column `of` with a
    column `wrt` gives the Jacobian whose entry [j, i] is d of_i / d wrt_j.
    """
    CHILDREN = ("of", "wrt")
    of: Expr
    wrt: Expr
    span: tuple | None = _span()
    # "frac", "nabla" (\nabla_{w} L) or "slash" (\partial L / \partial w): the spelling only.
    style: str = field(default="frac", compare=False, repr=False)


@dataclass(frozen=True)
class Ones(Expr):
    """\\mathbf{1}: the column of ones whose size the context requires (`size`, given by shapes.size_ones)."""
    size: object = None
    style: str = field(default="\\mathbf{1}", compare=False, repr=False)
    span: tuple | None = _span()


# The relations a condition between two steps may state, with their meaning on step numbers.
STEP_RELATIONS = {"=": lambda a, b: a == b, "\\ne": lambda a, b: a != b, "<": lambda a, b: a < b,
                  "\\le": lambda a, b: a <= b, ">": lambda a, b: a > b, "\\ge": lambda a, b: a >= b}


@dataclass(frozen=True)
class StepIf(Expr):
    """\\mathbb{1}[t = T]: the scalar 1 at the steps where a condition between two steps holds, else 0.

    A line that holds differently at the ends of the sequence is one line with it: dh_t = 1[t = T] V^T (p - e_k)
    + W^T ((1 - h_{t+1}^2) ∘ dh_{t+1}) for a loss read at the last step only."""
    left: Time
    relation: str                  # a key of STEP_RELATIONS
    right: Time
    span: tuple | None = _span()
    style: str = field(default="\\mathbb{1}[", compare=False, repr=False)   # how it was written

    def holds(self, values: dict) -> bool:
        return STEP_RELATIONS[self.relation](self.left.at(values), self.right.at(values))

    def shifted(self, var: str, k: int) -> StepIf:
        """The condition with the step variable `var` moved by k (t -> t + k)."""
        return self.renamed(lambda x: x.shifted(k) if x.var == var else x)

    def renamed(self, fn) -> StepIf:
        """The condition with each of its two steps replaced by fn(step)."""
        return replace(self, left=fn(self.left), right=fn(self.right))


def negated(c: StepIf) -> StepIf:
    """1[not c]: the complementary relation (= and ≠, < and ≥, > and ≤)."""
    other = {"=": "\\ne", "\\ne": "=", "<": "\\ge", "\\ge": "<", ">": "\\le", "\\le": ">"}
    return replace(c, relation=other[c.relation])


def implies(a: StepIf, b: StepIf) -> bool:
    """Does a imply b at every 1 <= t <= T?  Each compares t, T or a number with unit coefficients, so its truth
    is constant past its largest offset in each of t and T - t: the steps up to twice that, and more, decide."""
    reach = 2 * max(abs(x.offset) for c in (a, b) for x in (c.left, c.right)) + 8
    if reach > 64:
        return False                  # (not shown: the caller keeps the factor it would have left out)
    return all(b.holds({"t": t, "T": T}) for T in range(1, reach + 1) for t in range(1, T + 1)
               if a.holds({"t": t, "T": T}))


@dataclass(frozen=True)
class Block(Expr):
    """\\begin{bmatrix} A & B \\\\ C & D \\end{bmatrix}: rows of blocks."""
    CHILDREN = ("rows",)
    rows: tuple
    span: tuple | None = _span()
    style: str | None = field(default=None, compare=False)     # "list": written [a, b] (columns stacked)



class Visitor:
    """Dispatch by the node's class: `visit(node, *args)` calls the rule `_<Class>(node, *args)`.

    The typer, the printer, the model and the engines walk the intermediate form this way (the reader
    walks its syntax tree the same way); a node with no rule goes to `missing`, which says so."""

    def visit(self, node, *args):
        rule = getattr(self, "_" + type(node).__name__, None)
        return self.missing(node, *args) if rule is None else rule(node, *args)

    def missing(self, node, *args):
        raise TypeError(f"{type(self).__name__} has no rule for {type(node).__name__}")


def transform(e: Expr, fn) -> Expr:
    """Bottom-up rewrite: fn(node with rewritten children) for every node."""
    kids = e.children()
    if kids:
        new = tuple(transform(k, fn) for k in kids)
        if new != kids:
            e = e.rebuild(new)
    return fn(e)


def refs(e: Expr) -> list[Ref]:
    """Every quantity an expression mentions, including the index of a component or basis column."""
    out = []
    for node in e.walk():
        if isinstance(node, Ref):
            out.append(node)
        elif isinstance(node, (Component, Basis)):
            out.append(node.index)
        elif isinstance(node, MatrixEntry):
            out += [node.row, node.col]
        elif isinstance(node, Kronecker):
            out += [node.a, node.b]
    return out


def has_derivative(ctx, e: Expr, seen=None) -> bool:
    """Does e hold a derivative, itself or through the definitions it reads (da_t := (1 - h_t^2) ∘ dh_t with
    dh_t := ∂ℓ/∂h_t)?  Such a name is part of the backward pass, never a quantity the forward pass computes."""
    seen = seen if seen is not None else set()
    for n in e.walk():
        if isinstance(n, Deriv):
            return True
        if isinstance(n, Ref) and n.name in ctx.definitions and n.name not in seen:
            d = ctx.definitions[n.name]
            seen.add(n.name)
            if d.notation or has_derivative(ctx, d.expr, seen):
                return True
    return False


def time_vars(e: Expr) -> set[str]:
    """The time variables an expression uses freely (a Sum binds its own)."""
    if isinstance(e, Ref):
        return {e.time.var} if e.time is not None and e.time.var is not None else set()
    if isinstance(e, (Component, Basis)):
        own = time_vars(e.index)
        return own | (time_vars(e.arg) if isinstance(e, Component) else set())
    if isinstance(e, StepIf):
        return {x.var for x in (e.left, e.right) if x.var is not None}
    if isinstance(e, Sum):
        bounds = {x.var for x in (e.lo, e.hi) if x.var is not None}
        return (time_vars(e.body) - {e.var}) | bounds
    out = set()
    for c in e.children():
        out |= time_vars(c)
    return out


# ---------------------------------------------------------------- statements


@dataclass
class Source:
    """Where a statement is written: file, line, the exact LaTeX as written."""
    path: str
    line: int
    latex: str
    column: int = 1
    cell: int | None = None       # in a notebook: the cell, and `line` is the line in that cell


@dataclass
class Declaration:
    """x \\in R^{a x b}, k_t \\in {1..V}, f : R -> R."""
    name: str
    kind: str                        # "matrix", "index" or "function"
    shape: tuple = (1, 1)            # sizes (SymPy expressions); an index's range is (size, 1)
    sequence: bool = False           # declared with subscript t: one value per step
    initial: bool = False            # h_0: the state before step 1
    binary: bool = False             # y \in \{0, 1\}: a scalar that is 0 or 1
    entry: bool = False              # a free entry index of a line of entries (shapes.with_indices): its range is checked
    source: Source | None = None


@dataclass
class Definition:
    """target := expr.  A target with time t defines a whole sequence."""
    target: Ref
    expr: Expr
    source: Source | None = None

    @property
    def notation(self) -> bool:
        """A name for a derivative (dh_t := ∂ℓ/∂h_t), as opposed to a forward quantity."""
        return isinstance(self.expr, Deriv)


@dataclass
class Claim:
    """lhs = rhs, as written, with its label and where it stands."""
    id: str
    label: str
    lhs: Expr
    rhs: Expr
    source: Source | None = None
    section: str = ""
    reading: str = ""                # how a garbled passage of a transcription was read
    depends_on_reading: bool = False
    comment: str = ""
    kind: str = "as-written"         # "as-written", "corrected" (links `corrects`) or "supporting"
    corrects: str | None = None
    remark: str | None = None        # a trailing \text{...} such as "(by 3)"
    group: str = ""                  # the id of its block (a chain's links share it; `corrects` may name it)
    algorithm: str | None = None     # the whole algorithm of this id (lhs and rhs None): every output it computes
    # A line of entries (∂q_k/∂W_{i,j} = 1_{k=i} x_j): its free entry indices, letter -> range (a size); the
    # line states its equality for every value of each (`shapes.with_indices` declares them for the engines).
    indices: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Update:
    """One line of an algorithm's loop: `target = rhs`, or `target \\mathrel{+}= rhs` (an accumulator).

    A line with = is also a claim of its own (`claim`); a line with += is read as the claim
    target = \\sum_{t=1}^{T} rhs (generated, `claim` names it)."""
    target: Expr
    rhs: Expr
    op: str                          # "=" or "+="
    claim: str                       # the claim that states the line
    source: Source | None = field(default=None, compare=False)


@dataclass
class Algorithm:
    """A loop t = T, ..., 1 of ordered updates (docs/derivation-format.md, Algorithms)."""
    id: str
    label: str
    updates: tuple                   # Update, in the order they run within a step
    source: Source | None = None
    corrections: dict = field(default_factory=dict)    # claim id of a line -> the Update that corrects it
    var: str = "t"


@dataclass
class Context:
    """What the statements of one part of a file share: names, shapes, definitions."""
    title: str
    declarations: dict = field(default_factory=dict)     # name -> Declaration
    definitions: dict = field(default_factory=dict)      # name -> Definition (sequences keyed by base name)
    claims: list = field(default_factory=list)
    length: int | None = None        # T := 1: a context about one step, checked at that T only
    text: str = ""                   # its blocks as written (what a cached proof of its claims is keyed by)
    held_fixed: bool = False         # "> Reading: earlier steps held fixed": ∂q_t/∂x holds the steps before t
    numerator: bool = False          # "> Jacobians: numerator layout": ∂a/∂b of columns is read transposed
    algorithms: dict = field(default_factory=dict)       # id -> Algorithm (a whole algorithm's claim names it)

    def sizes(self) -> list[sp.Symbol]:
        """The size symbols the declarations use (H, V, m, n), in order of first use."""
        out = []
        for d in self.declarations.values():
            for s in d.shape:
                for sym in sorted(sp.sympify(s).free_symbols, key=str):
                    if sym not in out:
                        out.append(sym)
        return out

    def is_sequence(self, name: str) -> bool:
        d = self.declarations.get(name)
        if d is not None and d.sequence:
            return True
        df = self.definitions.get(name)
        return df is not None and df.target.time is not None and df.target.time.var is not None

    @property
    def has_time(self) -> bool:
        return any(self.is_sequence(n) for n in {*self.declarations, *self.definitions})


@dataclass
class Derivation:
    path: str
    title: str
    contexts: list

    @property
    def claims(self) -> list[Claim]:
        return [c for ctx in self.contexts for c in ctx.claims]

    def context_of(self, claim_id: str) -> Context:
        for ctx in self.contexts:
            if any(c.id == claim_id for c in ctx.claims):
                return ctx
        raise KeyError(claim_id)


def size(text) -> sp.Expr:
    """A size as written (H, 256, 4*H, H+D): a sum of products of positive integer symbols and numbers."""
    total = sp.Integer(0)
    for term in str(text).split("+"):
        out = sp.Integer(1)
        for part in term.split("*"):
            part = part.strip()
            out *= sp.Integer(int(part)) if part.isdigit() else size_symbol(part)
        total += out
    return total


def size_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, integer=True, positive=True)
