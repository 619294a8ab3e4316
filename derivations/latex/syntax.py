"""Parse one display block of a derivation file into syntax: statements of unresolved names.

The grammar (`grammar.lark`) is LALR with a contextual lexer; the transformer
below has one method per rule.  What a name means (a quantity at a step, a
function, a product of two declared letters) is decided later, by
`resolve.py`, once every declaration of the context is known; here a name is
only its letters, subscript and primes.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ..form import ir
from .errors import DerivationError, locate

_GRAMMAR = (Path(__file__).parent / "grammar.lark").read_text()
PARSER = Lark(_GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False)


def _span():
    return field(default=None, compare=False, repr=False)


# ---------------------------------------------------------------- syntax-only nodes


@dataclass(frozen=True)
class Name(ir.Expr):
    """Letters with an optional subscript and primes, not yet resolved: W_{xh}, dh_t, f', \\vec{h}."""
    base: str
    sub: object = None             # an expression, an ("eq", lhs, rhs) pair, or None
    primes: int = 0
    decoration: str | None = None
    span: tuple | None = _span()
    step_sup: bool = field(default=False, compare=False)   # the step was written as a superscript h^{(t)}


@dataclass(frozen=True)
class Juxt(ir.Expr):
    """Two factors side by side (or with \\cdot): a product, or a function applied to its argument."""
    CHILDREN = ("left", "right")
    left: ir.Expr
    right: ir.Expr
    dot: bool = False
    span: tuple | None = _span()
    norm: str | None = None        # x^T x written \|x\|^2 (the spelling, for printing back)


@dataclass(frozen=True)
class Paren(ir.Expr):
    """( expr ) with an optional subscript: (p_t)_{k_t} is a component."""
    expr: ir.Expr
    sub: object = None
    span: tuple | None = _span()


@dataclass(frozen=True)
class Sup(ir.Expr):
    """base ^ something: a transpose, a power, or e^{x}."""
    base: ir.Expr
    kind: str                      # "transpose", "power", "expr"
    value: object                  # the style of a transpose, the exponent, or the expression
    span: tuple | None = _span()
    sub: object = None             # a subscript after it: h^{(1)}_t, \delta^{h}_t
    transpose: str | None = None   # a transpose in the same superscript: h^{(t-1)\top}, W^{(1)T}


@dataclass(frozen=True)
class Frac(ir.Expr):
    num: ir.Expr
    den: ir.Expr
    partial: bool                  # \frac{\partial a}{\partial b}
    span: tuple | None = _span()
    style: str = "frac"            # "nabla" (\nabla_w L), "slash" (\partial L / \partial w)


@dataclass(frozen=True)
class BareApply(ir.Expr):
    """A function applied without parentheses (\\log p): its argument is the next factor only."""
    node: ir.Expr
    span: tuple | None = _span()


@dataclass(frozen=True)
class Indicator(ir.Expr):
    """1_{y = y_t}: the one-hot column at an index."""
    sub: object
    span: tuple | None = _span()
    head: str = "1"                # or \mathbf{1} (\mathbf{1}_{i = y^{(t)}}, Deep Learning 10.18)


@dataclass(frozen=True)
class Condition(ir.Expr):
    """\\mathbb{1}[t < T], 1_{t = T}: the indicator of a condition, read by resolve.py as one between steps."""
    left: object
    relation: str                  # a key of ir.STEP_RELATIONS
    right: object
    span: tuple | None = _span()
    style: str = "\\mathbb{1}["


@dataclass(frozen=True)
class Cases(ir.Expr):
    """\\begin{cases} a & t = T \\\\ b & \\text{otherwise} \\end{cases}: (value, conditions that all hold, or
    None for otherwise) rows."""
    rows: tuple
    span: tuple | None = _span()


# A relation as written -> its key in ir.STEP_RELATIONS.
RELATIONS = {"=": "=", "<": "<", "\\lt": "<", ">": ">", "\\gt": ">", "\\le": "\\le", "\\leq": "\\le",
             "\\leqslant": "\\le", "\\ge": "\\ge", "\\geq": "\\ge", "\\geqslant": "\\ge",
             "\\ne": "\\ne", "\\neq": "\\ne"}


@dataclass(frozen=True)
class Args(ir.Expr):
    """(x, W): the arguments of a function of named arguments, f(x, W) = ... (a definition's target)."""
    parts: tuple
    span: tuple | None = _span()


@dataclass(frozen=True)
class SetOf(ir.Expr):
    """\\{x^{(1)}, \\dots, x^{(\\tau)}\\}: a set of steps, read only as a written argument of a name."""
    items: tuple
    span: tuple | None = _span()


@dataclass(frozen=True)
class Given(ir.Expr):
    """(y^{(t)} \\mid x^{(1)}, \\dots): what a probability is of, and what it is conditioned on."""
    of: ir.Expr
    items: tuple
    span: tuple | None = _span()


@dataclass(frozen=True)
class TimeSum(ir.Expr):
    var: str
    lo: object                     # expressions, resolved to time indices later
    hi: object
    body: ir.Expr
    short: bool = False
    coefficient: ir.Expr | None = None
    span: tuple | None = _span()


@dataclass(frozen=True)
class DotsSum(ir.Expr):
    """first + \\dots + last (CS231n's q_1^2 + \\dots + q_n^2): read only as the sum over the entries i of a
    column, first the term at i = 1 and last the same term at the column's size n (resolve.py)."""
    CHILDREN = ("first", "last")
    first: ir.Expr
    last: ir.Expr
    span: tuple | None = _span()


# ---------------------------------------------------------------- statements


@dataclass
class Statement:
    kind: str                      # "declaration", "function", "definition", "chain", "update"
    parts: tuple
    span: tuple                    # (start, end) offsets in the block
    latex: str = ""
    written_eq: bool = False       # a definition written `name = expr` (resolve.definitions_written_eq)
    rest: Statement | None = None  # L = a = b written so: the chain a = b claimed after L := a
    after_definition: bool = False  # this is such a rest: its first member's row is the definition's


def split_top_level(text: str, sep: str) -> list[str]:
    """`text` cut at every `sep` outside brackets."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


@dataclass
class Block:
    """One $$ ... $$ block: its statements, an optional \\tag and a trailing \\text remark."""
    statements: list
    tag: str | None
    remark: str | None
    text: str
    offset: int                    # where the block's text starts in the file
    written: list = field(default_factory=list)   # (name, its written arguments, the step t+k they give, span)


def _sp(meta):
    return (meta.start_pos, meta.end_pos) if getattr(meta, "start_pos", None) is not None else None


def _time_or_expr(tok):
    return tok


def _written_arguments(node) -> bool:
    """(y \\mid x), (\\{...\\}, \\{...\\}) or (\\{...\\}): the arguments of a quantity written with them."""
    if isinstance(node, Given):
        return True
    if isinstance(node, Args):
        return all(isinstance(p, SetOf) for p in node.parts)
    return isinstance(node, Paren) and node.sub is None and isinstance(node.expr, SetOf)


def _t_offset(e) -> int | None:
    """k for the step t + k (t, t-1, t+1), None for another step (1, \\tau) or anything else."""
    if isinstance(e, Name) and e.base == "t" and e.sub is None and not e.primes and e.decoration is None:
        return 0
    if isinstance(e, ir.Add) and len(e.terms) == 2 and _t_offset(e.terms[0]) == 0:
        k = e.terms[1]
        sign = -1 if isinstance(k, ir.Neg) else 1
        k = k.arg if isinstance(k, ir.Neg) else k
        if isinstance(k, ir.Number) and k.value.denominator == 1:
            return sign * int(k.value)
    return None


def _steps(node) -> list:
    """(offset, the step as written, written as a superscript) for every step of the arguments."""
    out = []
    if isinstance(node, Sup) and node.kind == "expr" and isinstance(node.value, Paren):
        out.append((_t_offset(node.value.expr), node.value, True))
    if isinstance(node, Name) and node.sub is not None and not isinstance(node.sub, tuple):
        out.append((_t_offset(node.sub), node.sub, False))
    for k in syntax_children(node):
        out += _steps(k)
    return out


def syntax_children(n) -> tuple:
    """The sub-expressions of a syntax or expression node (names' subscripts included)."""
    if isinstance(n, tuple):
        return tuple(x for x in n if not isinstance(x, str))
    if isinstance(n, Name):
        return (n.sub,) if n.sub is not None else ()
    if isinstance(n, Sup):
        return (n.base, n.value) if not isinstance(n.value, (str, int)) else (n.base,)
    if isinstance(n, Paren):
        return (n.expr,)
    if isinstance(n, Frac):
        return (n.num, n.den)
    if isinstance(n, TimeSum):
        return (n.body,) + ((n.coefficient,) if n.coefficient is not None else ())
    if isinstance(n, DotsSum):
        return (n.first, n.last)
    if isinstance(n, (BareApply,)):
        return (n.node,)
    if isinstance(n, Args):
        return n.parts
    if isinstance(n, SetOf):
        return n.items
    if isinstance(n, Given):
        return (n.of,) + n.items
    if isinstance(n, Condition):
        return (n.left, n.right)
    if isinstance(n, Cases):
        return tuple(x for value, when in n.rows for x in (value, *(when or ())))
    if isinstance(n, ir.Expr):
        return n.children()
    return ()


@v_args(meta=True)
class ToSyntax(Transformer):
    """One method per grammar rule: builds the syntax nodes above."""

    def __init__(self, text: str = ""):
        super().__init__()
        self.text = text               # the block, for messages that quote it
        self.written = []              # names written with their arguments: (as written, as read)

    # statements ---------------------------------------------------------
    def start(self, meta, items):
        return items[0]

    def statements(self, meta, items):
        out = []
        for i in items:
            out.extend(i if isinstance(i, list) else [i] if isinstance(i, Statement) else [])
        return out

    def declaration(self, meta, items):
        # W_f, W_i, W_o \in R^{H x E}: one statement per name, each with the whole declaration's text.
        space = items[-1]
        names = [i for i in items[:-2] if not isinstance(i, Token)]
        return [Statement("declaration", (name, space), _sp(meta)) for name in names]

    def function_declaration(self, meta, items):
        # f, g : R -> R: one statement per name, as for a declaration of several names.
        names = [i for i in items if not isinstance(i, Token)]
        if not all(isinstance(name, Name) for name in names):
            raise ValueError("a function is declared by its name alone: f : \\mathbb{R} \\to \\mathbb{R}")
        return [Statement("function", (name,), _sp(meta)) for name in names]

    def definition(self, meta, items):
        name, _, expr = items
        return Statement("definition", (name, expr), _sp(meta))

    def chain(self, meta, items):
        return Statement("chain", tuple(items), _sp(meta))

    def update(self, meta, items):
        name, _, expr = items
        return Statement("update", (name, expr), _sp(meta))

    def scalar_space(self, meta, items):
        return ("matrix", (1, 1))

    def real_space(self, meta, items):
        return ("matrix", items[1])

    def index_space(self, meta, items):
        first = int(items[1])
        if first != 1:
            raise ValueError("an index set must start at 1: write \\{1, \\dots, V\\}")
        return ("index", (items[5], "1"))

    def binary_space(self, meta, items):
        if (str(items[1]), str(items[3])) != ("0", "1"):
            raise ValueError("a set of two numbers is read only as a binary label: write \\{0, 1\\}")
        return ("binary", ("1", "1"))

    def one_dim(self, meta, items):
        return (_size_text(items[0]), "1")

    def two_dims(self, meta, items):
        return (items[0], items[2])

    def size_sum(self, meta, items):
        return "+".join(str(i) for i in items if not (isinstance(i, Token) and i.type == "PLUS"))

    def paren_dim(self, meta, items):
        return items[1]

    def size(self, meta, items):
        return "*".join(str(i) for i in items)          # H, 256 or 4H

    # expressions ----------------------------------------------------------
    def add(self, meta, items):
        left, _, right = items
        terms = left.terms if isinstance(left, ir.Add) and not getattr(left, "_closed", False) else (left,)
        return ir.Add(terms + (right,), span=_sp(meta))

    def dots_add(self, meta, items):
        left, _, _, _, right = items
        # a + q_1 + \dots + q_n: the term before \dots is the first term of the sum over entries
        terms = left.terms if isinstance(left, ir.Add) and not getattr(left, "_closed", False) else (left,)
        start = terms[-1].span[0] if terms[-1].span else None
        end = _sp(meta)[1] if _sp(meta) else None
        out = DotsSum(terms[-1], right, span=(start, end) if start is not None and end is not None else _sp(meta))
        return ir.Add(terms[:-1] + (out,), span=_sp(meta)) if len(terms) > 1 else out

    def sub(self, meta, items):
        left, _, right = items
        terms = left.terms if isinstance(left, ir.Add) else (left,)
        return ir.Add(terms + (ir.Neg(right, span=right.span),), span=_sp(meta))

    def neg(self, meta, items):
        return ir.Neg(items[1], span=_sp(meta))

    def time_sum(self, meta, items):
        _, limits, body = items
        var, lo, hi, short = limits
        return TimeSum(var, lo, hi, body, short, span=_sp(meta))

    def double_sum(self, meta, items):
        _, outer, op, inner, body = items
        span = _sp(meta)
        inside = TimeSum(*inner[:3], body, inner[3], span=(op.start_pos, span[1]) if span else None)
        return TimeSum(*outer[:3], inside, outer[3], span=span)

    def scaled_time_sum(self, meta, items):
        coefficient, _, limits, body = items
        var, lo, hi, short = limits
        return TimeSum(var, lo, hi, body, short, coefficient, span=_sp(meta))

    def full_limits(self, meta, items):
        var, lo, hi = str(items[0]), items[1], items[2]
        if isinstance(hi, Token):
            hi = Name(str(hi), span=(hi.start_pos, hi.end_pos))
        return var, lo, hi, False

    def short_limits(self, meta, items):
        return str(items[0]), None, None, True

    def hadamard(self, meta, items):
        left, op, right = items
        if str(op) == "*":
            if isinstance(left, ir.Number):          # 2 * x: a number scales
                return Juxt(left, right, span=_sp(meta))
            return ir.Hadamard(left, right, "*", span=_sp(meta))
        return ir.Hadamard(left, right, "odot" if "odot" in str(op) else "circ", span=_sp(meta))

    def juxt(self, meta, items):
        left, right = items
        if _written_arguments(right):
            return self.with_arguments(left, right, _sp(meta))
        return Juxt(left, right, False, span=_sp(meta))

    def with_arguments(self, left, args, span):
        """`left` followed by written arguments: they belong to the name that ends it (2 \\log p(y \\mid x))."""
        if isinstance(left, Name) and not left.primes:
            return self.written_name(left, args)
        if isinstance(left, Juxt) and not left.dot:
            return Juxt(left.left, self.with_arguments(left.right, args, span), False, span=span)
        if isinstance(left, BareApply) and isinstance(left.node, ir.Apply):
            # \log p_{\text{model}}(y^{(t)} \mid ...): the function's argument is the name with its arguments
            f = left.node
            arg = self.with_arguments(f.arg, args, span)
            return BareApply(ir.Apply(f.function, arg, f.derivative, span=span, style=f.style), span=span)
        raise ValueError("arguments written as sets of steps or with \\mid are read only as a quantity's: "
                         "L(\\{x^{(1)}, \\dots, x^{(\\tau)}\\}), p(y^{(t)} \\mid x^{(1)}, \\dots, x^{(t)})")

    def written_name(self, name: Name, args) -> ir.Expr:
        """A quantity written with what it depends on, L(\\{x^{(1)}, ..., x^{(\\tau)}\\}, ...) or
        p_{\\text{model}}(y^{(t)} \\mid \\{x^{(1)}, ..., x^{(t)}\\}) (Deep Learning 10.12, 10.14): the quantity
        itself, at the latest step t the arguments name (none: the quantity of the whole sequence).  The
        arguments only say what it depends on; the reader says so next to every line that has them."""
        # the step of what a probability is of (p(y^{(t)} \\mid x^{(1)}, ..., x^{(t+1)}) is p at t); sets of steps
        # alone name the whole sequence (L(\\{x^{(1)}, ..., x^{(\\tau)}\\})): through step t they are ambiguous
        steps = [s for s in _steps(args.of if isinstance(args, Given) else args) if s[0] is not None]
        if steps and not isinstance(args, Given):
            raise ValueError("sets of steps up to t as a quantity's arguments are not read (its value over steps 1 to t, "
                             "or at step t?): write the quantity at step t as a name of its own, or its arguments "
                             "up to the last step, L(\\{x^{(1)}, \\dots, x^{(\\tau)}\\})")
        def text(span):        # as written: one space between words, \\text{model} back from _{     model}
            return re.sub(r"_\{\s+", r"_{", " ".join(self.text[span[0]:span[1]].split()))
        written = (text(name.span), text(args.span)) if name.span and args.span else ("", "")
        if not steps:
            self.written.append(written + (None, name.span))
            return name
        offset, paren, superscript = max(steps, key=lambda s: s[0])
        self.written.append(written + (offset, name.span))
        step = paren.expr if isinstance(paren, Paren) else paren
        if name.sub is not None:           # p_{\\text{model}} at step t: as \\delta_{h,t} is \\delta_h at t
            return Name(name.base, ("pair", name.sub, step), name.primes, name.decoration, span=name.span)
        if superscript:
            return Sup(name, "expr", Paren(step, span=paren.span), span=name.span)
        return Name(name.base, step, name.primes, name.decoration, span=name.span)

    def set_of(self, meta, items):
        return SetOf(tuple(i for i in items if not isinstance(i, Token)), span=_sp(meta))

    def dots(self, meta, items):
        return Name("\\dots", span=_sp(meta))

    def given(self, meta, items):
        parts = [i for i in items if not isinstance(i, Token)]
        return Given(parts[0], tuple(parts[1:]), span=_sp(meta))

    def dot(self, meta, items):
        return Juxt(items[0], items[2], True, span=_sp(meta))

    def superscript(self, meta, items):
        base, sup = items[0], items[1]
        kind, value = sup[0], sup[1]
        transpose = sup[2] if len(sup) > 2 else None
        sub = items[2] if len(items) > 2 else None
        after_bare_function = isinstance(base, BareApply)
        if after_bare_function:
            raise ValueError("a superscript after a function applied without parentheses is ambiguous: write "
                             "\\log(p^2) or (\\log p)^2")
        if transpose is not None and not (kind == "expr" and isinstance(value, Paren)):
            raise ValueError("a transpose in a superscript follows a step or a layer, as in h^{(t-1)\\top}")
        return Sup(base, kind, value, span=_sp(meta), sub=sub, transpose=transpose)

    def sup_expr_transpose(self, meta, items):
        return ("expr", items[0], " ".join(str(items[1]).split()))

    def sup_single(self, meta, items):
        ch = str(items[0])
        if ch == "T":
            return ("transpose", "T")
        if ch.isdigit():
            return ("power", int(ch))
        return ("expr", Name(ch, span=_sp(meta)))

    def sup_command(self, meta, items):
        return ("transpose", " ".join(str(items[0]).split()))

    def sup_command_group(self, meta, items):
        return ("transpose", "{" + " ".join(str(items[0]).split()) + "}")

    def sup_expr(self, meta, items):
        e = items[0]
        if isinstance(e, Name) and e.base == "T" and e.sub is None and not e.primes:
            return ("transpose", "{T}")
        if isinstance(e, ir.Number) and e.value.denominator == 1:
            return ("power", int(e.value))
        if isinstance(e, Juxt) and not e.dot and isinstance(e.left, Paren) and isinstance(e.right, Name) \
                and e.right.base == "T" and e.right.sub is None and not e.right.primes:
            return ("expr", e.left, "T")                 # h^{(t)T}: the step, then a transpose
        if isinstance(e, Sup) and e.kind == "transpose" and isinstance(e.base, Paren) and e.sub is None:
            return ("expr", e.base, e.value)             # h^{(t)^\top} (Deep Learning 10.24): the same
        return ("expr", e)

    def apply(self, meta, items):
        head = str(items[0])
        style = None
        if head.startswith("\\") and "{" in head:      # \operatorname{ReLU}, \mathrm{relu}, \text{ReLU}, \operatorname{g}
            command, inner = re.match(r"\\([A-Za-z]+)\s*\{\s*([A-Za-z]+)\s*\}", head).groups()
            func, style = _NAMED.get(inner, inner), f"\\{command}{{{inner}}}"
            if func == inner and inner not in _NAMED:
                style = f"\\{command}"                # a declared function: \operatorname{g}
        else:
            func = head[1:]
            func = {"ln": "log"}.get(func, func)
        primes = next((i for i in items[1:-1] if isinstance(i, int)), 0)
        power = next((i for i in items[1:-1] if isinstance(i, tuple)), None)
        arg = items[-1]
        bare = not isinstance(arg, Paren) or arg.sub is not None
        node = ir.Apply(func, arg, primes, span=_sp(meta), style=style or ("bare" if bare else None))
        if power is not None:
            kind, value = power
            if kind != "power":
                raise ValueError(f"\\{func}^{{...}} must be a whole power, as in \\sigma^2(x)")
            node = ir.Power(node, value, prefix=True, span=_sp(meta))
        return BareApply(node, span=_sp(meta)) if bare else node

    def max_zero(self, meta, items):
        a, b = items[2], items[4]
        zero = [isinstance(x, ir.Number) and x.value == 0 for x in (a, b)]
        braces = "{" if str(items[1]).strip().startswith(("\\{", "\\lbrace")) else ""
        if zero == [True, False]:
            return ir.Apply("relu", b, span=_sp(meta), style="max" + braces)
        if zero == [False, True]:
            return ir.Apply("relu", a, span=_sp(meta), style="max-right" + braces)
        raise ValueError("\\max is read only as ReLU, \\max(0, z): the element-wise maximum of z and 0")

    def indicator_of(self, meta, items):
        head = re.sub(r"\s+", "", str(items[0]))           # \mathbb{1} or \mathbb{I}
        (_, relation, left, right), = [i for i in items[1:] if isinstance(i, tuple)]
        bracket = next((str(i).strip()[-1] for i in items[1:] if isinstance(i, Token) and i.type in ("LPAR", "SETOPEN")),
                       None)
        return _indicator(left, relation, right, head + (bracket or "_"), _sp(meta))

    def condition(self, meta, items):
        rel = next((i for i in items if isinstance(i, Token)), "=")
        left, right = [i for i in items if not isinstance(i, Token)]
        return ("cond", RELATIONS[re.sub(r"\s+", "", str(rel))], left, right)

    def nabla(self, meta, items):
        return Frac(items[2], items[1], True, span=_sp(meta), style="nabla")

    def slash_partial(self, meta, items):
        return Frac(items[1], items[4], True, span=_sp(meta), style="slash")

    def ones(self, meta, items):
        return ir.Ones(None, re.sub(r"\s+", "", str(items[0])), span=_sp(meta))

    def norm(self, meta, items):
        expr = items[1]
        tail = items[3] if len(items) > 3 else None
        if tail is None:
            inner = self.text[items[0].end_pos:items[2].start_pos].strip() or "x"
            raise ValueError(f"a norm is read only squared, as x^T x: write \\|{inner}\\|^2")
        # \|x\|^2 is x^T x: read as that product (and printed so).
        style = ("\\lVert" if "lVert" in str(items[0]) else "\\|") + ("_2" if tail == "_2" else "")
        return Juxt(Sup(expr, "transpose", "T", span=expr.span), expr, span=_sp(meta), norm=style)

    def norm_tail(self, meta, items):
        sub = str(items[0]) if len(items) == 2 else "2"
        if sub != "2" or items[-1] != ("power", 2):
            raise ValueError("a norm is read only as the squared Euclidean norm: write \\|x\\|^2 or \\|x\\|_2^2")
        return "_2" if len(items) == 2 else "^2"

    def fsup(self, meta, items):
        return items[0]

    def primes(self, meta, items):
        return len(items)

    def name_atom(self, meta, items):
        return items[0]

    def inner(self, meta, items):
        if len(items) == 1:
            return (None, str(items[0]))
        return (str(items[0])[1:].strip(), str(items[1]))

    def name(self, meta, items):
        base = items[0]
        sub = next((i for i in items[1:] if not isinstance(i, int)), None)
        primes = next((i for i in items[1:] if isinstance(i, int)), 0)
        decoration = None
        if isinstance(base, tuple):
            decoration, base = base
        return Name(str(base), sub, primes, decoration, span=_sp(meta))

    def d_decorated(self, meta, items):
        # d\tilde{h} is one name, spelled without spaces: dh's kin for a decorated h.
        return re.sub(r"\s+", "", str(items[0]))

    def decorated(self, meta, items):
        # \hat{\boldsymbol{y}} and \boldsymbol{\hat{y}} are \hat{y}: a bold or vector mark means nothing here.
        outer = str(items[0])[1:].strip()
        inner, letters = items[1]
        if inner is None or inner in _TRANSPARENT:
            return (outer, letters)
        if outer in _TRANSPARENT:
            return (inner, letters)
        raise ValueError(f"\\{outer}{{\\{inner}{{...}}}}: one decoration at most (\\hat{{y}}, \\tilde{{h}})")

    def sub_single(self, meta, items):
        tok = items[0]
        s = str(tok)
        if s.isdigit():
            return ir.Number(Fraction(int(s)), span=(tok.start_pos, tok.end_pos))
        return Name(s, span=(tok.start_pos, tok.end_pos))

    def sub_group(self, meta, items):
        return items[0]

    def sub_equation(self, meta, items):
        return ("eq", items[0], items[1])

    def sub_pair(self, meta, items):
        return ("pair", items[0], items[2])             # \delta_{h,t}: the name \delta_h at step t

    def sub_greater(self, meta, items):
        return ("gt", items[0], items[2])               # 1_{z>0}: an indicator

    def sub_relation(self, meta, items):
        return ("rel", RELATIONS[re.sub(r"\s+", "", str(items[1]))], items[0], items[2])   # 1_{t<T}

    def number(self, meta, items):
        return ir.Number(Fraction(str(items[0])), span=_sp(meta))

    def indicator(self, meta, items):
        tok, sub = items
        if isinstance(sub, tuple) and sub[0] in ("gt", "rel") and str(tok) == "1":
            relation = ">" if sub[0] == "gt" else sub[1]
            return _indicator(sub[-2], relation, sub[-1], "1_", _sp(meta))
        if str(tok) != "1":
            raise ValueError("only 1_{...} (an indicator column) may carry a subscript after a number")
        return Indicator(sub, span=_sp(meta))

    def ones_indicator(self, meta, items):
        tok, sub = items
        if isinstance(sub, tuple) and sub[0] == "pair":
            sub = ("eq", sub[1], sub[2])                # 𝟏_{i,y^{(t)}} (Deep Learning 10.18): 1 where i = y^{(t)}
        if isinstance(sub, tuple) and sub[0] in ("gt", "rel"):                  # \mathbf{1}_{t < T}
            relation = ">" if sub[0] == "gt" else sub[1]
            return Condition(sub[-2], relation, sub[-1], span=_sp(meta), style=re.sub(r"\s+", "", str(tok)) + "_")
        if not (isinstance(sub, tuple) and sub[0] == "eq"):
            raise ValueError("\\mathbf{1} with a subscript is read only as the one-hot column \\mathbf{1}_{i = k} "
                             "(1 at the index k)")
        return Indicator(sub, span=_sp(meta), head=re.sub(r"\s+", "", str(tok)))

    def concat(self, meta, items):
        # [h_{t-1}, x_t]: the columns stacked (Olah's LSTM), the block column [h_{t-1}; x_t].
        brackets = [str(i).strip()[-1] for i in items if isinstance(i, Token) and i.type in ("LPAR", "RPAR")]
        parts = [i for i in items if not isinstance(i, Token)]
        if brackets != ["[", "]"]:
            return Args(tuple(parts), span=_sp(meta))      # f(x, W): only as a definition's target (resolve.py)
        return ir.Block(tuple((p,) for p in parts), span=_sp(meta), style="list")

    def paren(self, meta, items):
        expr = items[1]
        sub = items[3] if len(items) > 3 else None
        return Paren(expr, sub, span=_sp(meta))

    def frac(self, meta, items):
        num, den = items[1], items[2]
        pn, pd = isinstance(num, tuple), isinstance(den, tuple)
        if pn != pd:
            raise ValueError("a derivative needs \\partial in both the numerator and the denominator")
        if pn:
            num, den = num[1], den[1]
        return Frac(num, den, pn, span=_sp(meta))

    def deriv_operator(self, meta, items):
        wrt, operand = [i for i in items if not isinstance(i, Token)]
        return Frac(operand, wrt, True, span=_sp(meta), style="operator")

    def partial(self, meta, items):
        return ("partial", items[1])

    def cases(self, meta, items):
        return Cases(tuple(r for r in items if isinstance(r, tuple)), span=_sp(meta))

    def case_row(self, meta, items):
        value, when = [i for i in items if not (isinstance(i, Token) and i.type == "COMMA")]
        if when is None:                                                # \text{otherwise}
            return (value, None)
        return (value, tuple(Condition(left, relation, right, span=_sp(meta)) for _, relation, left, right in when))

    def conditions(self, meta, items):
        return [i for i in items if isinstance(i, tuple)]

    def otherwise(self, meta, items):
        return None

    def case_if(self, meta, items):
        return items[1]                                                  # \text{if } t = T: the condition

    def block(self, meta, items):
        return ir.Block(items[1], span=_sp(meta))

    def rows(self, meta, items):
        return tuple(r for r in items if isinstance(r, tuple))

    def row(self, meta, items):
        return tuple(items)

    def operator(self, meta, items):
        op, expr = str(items[0]), items[2]
        kind = "softmax" if "softmax" in op else "diag"
        return (ir.Softmax if kind == "softmax" else ir.Diag)(expr, span=_sp(meta))


_TRANSPARENT = ("vec", "mathbf", "boldsymbol", "bm")
# The spellings of ReLU and of the Heaviside step inside \operatorname{...}, \mathrm{...}, \text{...}.
_NAMED = {"ReLU": "relu", "relu": "relu", "Relu": "relu", "RELU": "relu", "H": "ind",
          "sigmoid": "sigma", "sigma": "sigma", "tanh": "tanh", "exp": "exp", "log": "log", "ln": "log"}


def _indicator(arg, relation, bound, style, span):
    """1[z > 0] in any spelling: ReLU's derivative, element-wise; any other condition is one between steps
    (1[t = T]), which resolve.py reads once it knows the names."""
    if relation == ">" and isinstance(bound, ir.Number) and bound.value == 0:
        return ir.Apply("ind", arg, span=span, style=style)
    return Condition(arg, relation, bound, span=span, style=style)


def _size_text(tok) -> str:
    return str(tok)


# ---------------------------------------------------------------- entry point

_FRIENDLY = {
    "CIRC": "\\circ", "CDOT": "\\cdot", "PLUS": "+", "MINUS": "-", "LPAR": "(", "RPAR": ")", "NAME": "a name",
    "SINGLE": "a letter or digit", "INT": "a number", "DEFEQ": ":=", "EQUAL": "=", "COMMA": ",", "IN": "\\in",
    "$END": "the end of the block", "QUAD": "\\quad", "TAG": "\\tag{...}", "FUNC": "a function",
    "FRAC": "\\frac", "SUMOP": "\\sum", "GREEK": "a Greek letter", "TEXT": "\\text{...}", "RBRACE": "}",
    "LBRACE": "{", "CIRCUMFLEX": "^", "__ANON_0": "}", "REALS": "\\mathbb{R}", "BEGIN_MATRIX": "\\begin{bmatrix}",
    "TIMES": "\\times", "DOTS": "\\dots", "SETCLOSE": "\\}", "NORM_CLOSE": "\\| (closing the norm)",
    "GT": ">", "SLASH": "/", "STAR": "*", "ONES": "\\mathbf{1}", "NABLA": "\\nabla", "OPFUNC": "\\operatorname{...}",
}


def _expected(exc) -> str:
    names = sorted({_FRIENDLY.get(t, t.lower()) for t in getattr(exc, "expected", set()) or set()})
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")


# What ends a block besides its statements: a remark such as \text{(by 3)}, then \tag{label}.
_TAIL = re.compile(r"(?:(?:,|\\q?quad(?![A-Za-z]))\s*)*(?:\\(?:text|mbox|textrm)\s*\{(?P<remark>[^{}]*)\}\s*)?"
                   r"\.?\s*(?:\\tag\*?\s*\{(?P<tag>[^{}]*)\}\s*)?$")


def split_tail(text: str):
    """(statements' text, tag, remark): the block without its trailing remark and tag."""
    for m in _TAIL.finditer(text):
        if m.group("remark") is not None or m.group("tag") is not None:
            return text[:m.start()], (m.group("tag") or "").strip() or None, (m.group("remark") or "").strip() or None
    return text, None, None


# The commands the grammar reads, for "did you mean" (a typo such as \sigam or \cric).
KNOWN_COMMANDS = ("\\sigma", "\\tanh", "\\exp", "\\log", "\\ln", "\\circ", "\\odot", "\\cdot", "\\frac",
                  "\\dfrac", "\\partial", "\\sum", "\\top", "\\intercal", "\\mathsf", "\\operatorname",
                  "\\mathrm", "\\diag", "\\left", "\\right", "\\begin", "\\end", "\\in", "\\mathbb",
                  "\\times", "\\quad", "\\qquad", "\\dots", "\\ldots", "\\cdots", "\\to", "\\coloneqq",
                  "\\vec", "\\mathbf", "\\boldsymbol", "\\hat", "\\tilde", "\\bar", "\\ell", "\\tag",
                  "\\text", "\\alpha", "\\beta", "\\gamma", "\\delta", "\\epsilon", "\\theta",
                  "\\lambda", "\\mu", "\\tau", "\\phi", "\\omega", "\\nabla", "\\max", "\\lVert",
                  "\\rVert", "\\gt")
# Characters typed as Unicode that the notation spells as LaTeX.
UNICODE = {"∘": "\\circ", "⊙": "\\odot", "·": "\\cdot", "⋅": "\\cdot", "ᵀ": "^T", "⊤": "^\\top",
           "×": "\\times", "∂": "\\partial", "σ": "\\sigma", "ℓ": "\\ell", "∑": "\\sum", "Σ": "\\sum",
           "∈": "\\in", "−": "-", "′": "'", "≔": ":=", "ℝ": "\\mathbb{R}", "…": "\\dots"}


# Limits on one block, far above what a person writes (the longest block of the note and the
# examples is 353 characters, 168 tokens, brackets 4 deep).  The parser and the transformer
# recurse once per nested bracket and per operand of a long sum or product: past about 450
# operands Python's recursion limit is hit, so a block is refused before that, with the reason.
MAX_BLOCK_CHARS = 2000
MAX_BLOCK_TOKENS = 400
MAX_NESTING = 20
_TOKEN = re.compile(r"\\[A-Za-z]+|[A-Za-z0-9]+|\S")
_OPEN, _CLOSE = "({[", ")}]"


def check_size(text: str, offset: int, file_text: str, path: str) -> None:
    """A located DerivationError when a block is too long, has too many tokens or nests too deeply."""
    if len(text) > MAX_BLOCK_CHARS:
        raise DerivationError(f"this block is {len(text)} characters long; the reader reads blocks of up to "
                              f"{MAX_BLOCK_CHARS}", locate(file_text, offset, path),
                              "split it into several blocks, one statement each (is a closing $$ missing?)")
    for tokens, m in enumerate(_TOKEN.finditer(text), start=1):
        if tokens > MAX_BLOCK_TOKENS:
            raise DerivationError(f"this block has more than {MAX_BLOCK_TOKENS} tokens (names, numbers, commands, "
                                  "signs); the reader stops here", locate(file_text, offset + m.start(), path),
                                  "split it into several blocks, one statement each, or name a part with :=")
    depth = 0
    for i, ch in enumerate(text):
        if ch in _OPEN:
            depth += 1
            if depth > MAX_NESTING:
                raise DerivationError(f"brackets nested more than {MAX_NESTING} deep", locate(file_text, offset + i, path),
                                      "name an inner part with := and use its name")
        elif ch in _CLOSE:
            depth = max(0, depth - 1)


# W_{\textrm{xi}}, b_\textrm{i}, p_{\text{model}}: a subscript in a text font is the same subscript (W_{xi}).
_TEXT_SUB = re.compile(r"_\s*(?:\{\s*\\(?:textrm|text|mathrm)\s*\{\s*([A-Za-z0-9]+)\s*\}\s*\}"
                       r"|\\(?:textrm|text|mathrm)\s*\{\s*([A-Za-z0-9]+)\s*\})")


def plain_subscripts(text: str) -> str:
    """Every subscript in \\textrm, \\text or \\mathrm spelled _{xi}, padded with spaces to the same length
    (so every offset stays)."""
    def plain(m):
        inner = m.group(1) or m.group(2)
        return "_{" + " " * (len(m.group()) - len(inner) - 3) + inner + "}"
    return _TEXT_SUB.sub(plain, text)


def mark_norms(text: str) -> str:
    """\\| x \\| with its closing bar spelled |\\ (same length, so every offset stays): the grammar then
    tells an opening bar from a closing one without looking ahead."""
    out, opening = [], True
    for piece in re.split(r"(\\\|)", text):
        if piece == "\\|":
            out.append("\\|" if opening else "|\\")
            opening = not opening
        else:
            out.append(piece)
    return "".join(out)


# A sum over entries, and what to write instead (Deep Learning 10.24 and 10.25 with their matrix forms).
SUM_OVER_ENTRIES = (
    "write it as a matrix product, e.g. \\nabla_{V} L = \\sum_t (\\nabla_{o^{(t)}} L) h^{(t)\\top} for "
    "\\sum_t \\sum_i (\\partial L / \\partial o_i^{(t)}) \\nabla_{V} o_i^{(t)}, and \\nabla_{W} L = \\sum_t "
    "\\operatorname{diag}(1 - (h^{(t)})^2) (\\nabla_{h^{(t)}} L) h^{(t-1)\\top} for \\sum_t \\sum_i "
    "(\\partial L / \\partial h_i^{(t)}) \\nabla_{W^{(t)}} h_i^{(t)} with h^{(t)} = \\tanh(b + W h^{(t-1)} + ...)")

# What people write that the notation spells otherwise, with the exact replacement.
_INSTEAD = [
    (re.compile(r"\\\|([^|]*?)\\\|(?!\s*[\^_])"), lambda m: f"write \\|{m.group(1)}\\|^2 (the squared norm)"),
    (re.compile(r"\\mathbb\s*\{\s*1\s*\}(?!\s*[\[(_])"),
     lambda m: "\\mathbb{1} is read as an indicator, \\mathbb{1}[z > 0]; write the column of ones as \\mathbf{1}"),
    (re.compile(r"[+-]\s*(?:\\[lc]?dots(?![A-Za-z])|\.\.\.)|(?:\\[lc]?dots(?![A-Za-z])|\.\.\.)\s*-"),
     lambda m: "a sum with \\dots is read only as q_1^2 + \\dots + q_n^2 (the term at 1, \\dots, the same term at "
               "the column's size n): write it as a sum over entries, \\sum_i q_i^2"),
    (re.compile(r"\\sum_\{?\s*[ijkn]\s*\}?(?![A-Za-z=])"),
     lambda m: "a sum over entries is read as \\sum_i (a term written with the entry i), e.g. \\sum_i q_i^2, "
               "q_1^2 + \\dots + q_n^2, or as the Deep Learning book's \\sum_i (entry i of a column) \\nabla_{W} h_i^{(t)}; "
               "otherwise " + SUM_OVER_ENTRIES),
    (re.compile(r"\)\s*_\{?\s*[ij]\s*\}?(?![A-Za-z])|[A-Za-z}]_\{?\s*[ij]\s*\}?\s*\^\s*\{\s*\("),
     lambda m: "an entry with a free index i (x_i, (\\nabla_{o} L)_i) is not read: write the whole column, e.g. "
               "\\nabla_{o^{(t)}} L = \\hat{y}^{(t)} - e_{y^{(t)}} for "
               "(\\nabla_{o^{(t)}} L)_i = \\hat{y}_i^{(t)} - \\mathbf{1}_{i=y^{(t)}}"),
    (re.compile(r"\\nabla(?![A-Za-z])(?!\s*_)\s*(\S*)"),
     lambda m: f"write \\nabla_{{w}} {m.group(1) or 'L'} (the variable as a subscript) or "
               f"\\frac{{\\partial {m.group(1) or 'L'}}}{{\\partial w}}"),
]


def _instead(text: str) -> str:
    for pattern, hint in _INSTEAD:
        m = pattern.search(text)
        if m:
            return hint(m)
    return ""


def parse_block(text: str, offset: int, file_text: str, path: str) -> Block:
    """Parse one block; offsets in errors and spans are made absolute in the file."""
    full = text
    check_size(text, offset, file_text, path)
    text, tag, remark = split_tail(plain_subscripts(text))
    text = mark_norms(text)
    try:
        tree = PARSER.parse(text)
        to_syntax = ToSyntax(text)
        statements = to_syntax.transform(tree)
    except UnexpectedCharacters as e:
        bad = text[e.pos_in_stream:e.pos_in_stream + 1]
        if bad == "\\":
            m = re.match(r"\\[A-Za-z]+|\\.", text[e.pos_in_stream:])
            cmd = m.group() if m else "\\"
            if cmd in ("\\tag", "\\text"):
                raise DerivationError(f"{cmd}{{...}} must close its brace and end the block",
                                      locate(file_text, offset + e.pos_in_stream, path, len(cmd))) from None
            near = difflib.get_close_matches(cmd, KNOWN_COMMANDS, n=1, cutoff=0.7)
            raise DerivationError(f"unsupported command {cmd}",
                                  locate(file_text, offset + e.pos_in_stream, path, len(cmd)),
                                  hint=_instead(text) or ((f"did you mean {near[0]}? " if near else "") +
                                  "see docs/derivation-format.md for the notation the parser reads")) from None
        expected = _expected(e)
        raise DerivationError(f"unexpected character {bad!r}" + (f"; expected {expected}" if expected else ""),
                              locate(file_text, offset + e.pos_in_stream, path),
                              hint=f"write {UNICODE[bad]} for {bad}" if bad in UNICODE else _instead(text)) from None
    except UnexpectedToken as e:
        tok = e.token
        pos = tok.start_pos if tok.start_pos is not None else len(text)
        if tok.type == "$END":
            end = len(text.rstrip())
            raise DerivationError(f"the statement ends too early; expected {_expected(e)}",
                                  locate(file_text, offset + end, path)) from None
        hint = _instead(text)
        if not hint and tok.type == "SLASH":
            hint = "write a quotient as \\frac{a}{b}; a derivative as \\partial L / \\partial w or \\frac{\\partial L}{\\partial w}"
        raise DerivationError(f"unexpected {str(tok)!r}; expected {_expected(e)}",
                              locate(file_text, offset + pos, path, max(1, len(str(tok)))), hint=hint) from None
    except UnexpectedEOF as e:
        raise DerivationError(f"the block ends too early; expected {_expected(e)}",
                              locate(file_text, offset + len(text), path)) from None
    except UnexpectedInput as e:  # pragma: no cover - the cases above are the ones LALR raises
        raise DerivationError(str(e), locate(file_text, offset + getattr(e, "pos_in_stream", 0), path)) from None
    except RecursionError:     # a safety net under check_size: a located error, never a crash
        raise DerivationError("this block nests too deeply to read", locate(file_text, offset, path),
                              "split it into several blocks, or name an inner part with :=") from None
    except VisitError as e:
        if isinstance(e.orig_exc, RecursionError):
            raise DerivationError("this block nests too deeply to read", locate(file_text, offset, path),
                                  "split it into several blocks, or name an inner part with :=") from None
        node = getattr(e.obj, "meta", None)
        pos = getattr(node, "start_pos", 0) or 0
        end = getattr(node, "end_pos", pos + 1) or pos + 1
        raise DerivationError(str(e.orig_exc), locate(file_text, offset + pos, path, end - pos)) from None
    for st in statements:
        st.latex = text[st.span[0]:st.span[1]].strip()
    return Block(statements, tag, remark, full, offset, to_syntax.written)
