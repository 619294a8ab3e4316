"""Give the names of parsed syntax their meaning in a context: quantities, steps, functions.

A name with subscript t (or t-1, t+1, T, 0, 1) is a sequence at a step when
its base is a sequence of the context (declared `x_t \\in ...` or defined
`h_t := ...`); otherwise the subscript is part of the name (W_{xh}, b_h, W_1).
A run of letters that is not a declared name is read as a product of declared
names when it splits into them (`Wh` is W h).  A declared function followed by
a parenthesis is applied (f(Wh), f'(Z)); anything else side by side is a
matrix product.  Semantics are documented in docs/derivation-format.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from fractions import Fraction

from ..form import ir
from .errors import DerivationError
from .syntax import (
    SUM_OVER_ENTRIES,
    Args,
    BareApply,
    Cases,
    Condition,
    DotsSum,
    Frac,
    Indicator,
    Juxt,
    Name,
    Paren,
    Statement,
    Sup,
    TimeSum,
    split_top_level,
    syntax_children,
)

TIME_VARS = ("t", "T", "s", "k", "tau", "\\tau")
TRANSPARENT = ("vec", "mathbf", "boldsymbol", "bm")
# The mark of a per-step term written X^{(t)} beside a total X without steps (Deep Learning 10.13,
# L = \\sum_t L^{(t)}): the sequence is keyed X^{(\\cdot)}, printed back X^{(t)}.
PER_STEP = "^{(\\cdot)}"


# Letters that are an entry index of an entry-wise line, (\nabla_{o} L)_i = \hat{y}_i - \mathbf{1}_{i = y}, when
# the context has no quantity of that name (docs/derivation-format.md).
ENTRY_LETTERS = ("i", "j")
# More letters of a line of entries, \frac{\partial q_k}{\partial W_{i,j}} = \mathbf{1}_{k=i} x_j, in a context
# without sequences (where k may be a step, it stays one).
MORE_LETTERS = ("k", "l")


@dataclass(frozen=True)
class Entry(ir.Expr):
    """Entry i of a column, in an entry-wise line (never leaves the reader: `entrywise` turns the line into
    the same line of whole columns).  `derivative`: ∂L/∂o_i, which needs a scalar L."""
    CHILDREN = ("arg",)
    arg: ir.Expr
    derivative: bool = False
    span: tuple | None = field(default=None, compare=False, repr=False)
    letter: str = field(default="i", compare=False, repr=False)      # the entry index as written (i, k)


@dataclass(frozen=True)
class MatrixEntryMark(ir.Expr):
    """W_{i,j} (or W_{ij}) of a matrix, and ∂s/∂W_{i,j} (`arg` the Deriv, style "deriv-..."), at free entry
    indices: read only in a line of entries (reader.entries_line makes it an ir.MatrixEntry)."""
    CHILDREN = ("arg",)
    arg: ir.Expr
    row: str
    col: str
    style: str = "comma"
    span: tuple | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DeltaMark(ir.Expr):
    """\\mathbf{1}_{k=i}, \\mathbb{1}[k = i], \\delta_{ki}: the Kronecker delta of two free entry indices, read
    only in a line of entries (reader.entries_line makes it an ir.Kronecker)."""
    a: str
    b: str
    style: str
    span: tuple | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class BasisMark(ir.Expr):
    """e_{k} at a free entry index k (a derived line of entries, (e_{k} x^T)_{i,j}): read only in a line of
    entries (reader.entries_line makes it an ir.Basis)."""
    letter: str
    span: tuple | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class EntryGrad(ir.Expr):
    """\\nabla_{W^{(t)}} h_i^{(t)} (or \\nabla_{V} o_i^{(t)}): the gradient of entry i of a quantity at a step,
    read only inside a sum over entries (\\sum_i), which writes it out (copies.py); never leaves the reader."""
    of: ir.Ref
    wrt: ir.Ref
    copy: bool
    span: tuple | None = field(default=None, compare=False, repr=False)


class EntryError(Exception):
    def __init__(self, message, node, hint=""):
        super().__init__(message)
        self.node, self.hint = node, hint


WHOLE_COLUMN = ("write the whole column, e.g. \\nabla_{o^{(t)}} L = \\hat{y}^{(t)} - e_{y^{(t)}} for "
                "(\\nabla_{o^{(t)}} L)_i = \\hat{y}_i^{(t)} - \\mathbf{1}_{i=y^{(t)}}")


def entrywise(e: ir.Expr) -> tuple[ir.Expr, bool, list]:
    """A member of an entry-wise line as the column whose entry i it is: (the column, whether it had an
    entry i, [(node, "scalar" | "column")] the shapes that reading needs, checked once the context is known).

    Entry i of a column is the column; a number or a scalar factor without i stays as it is (c x_i is entry i
    of c x); two entries side by side are the element-wise product (x_i y_i of x ∘ y), an element-wise
    function, power or division applies to the column, a sum over steps sums the columns, ∂L/∂o_i of a
    scalar L is entry i of ∂L/∂o.  Anything else that holds an entry i (a transpose, a softmax, a derivative
    of an entry) is an EntryError: the line is not the same line of columns."""
    checks: list = []

    def go(n):
        if isinstance(n, Entry):
            inner, had, _ = entrywise(n.arg)
            if had:
                raise EntryError("an entry of an entry is not read", n, WHOLE_COLUMN)
            if n.derivative:
                checks.append((inner.of, "scalar"))
                checks.append((inner.wrt, "column"))
            else:
                checks.append((inner, "column"))
            return inner, True
        if isinstance(n, (ir.Add, ir.Neg, ir.Apply, ir.Power, ir.Sum, ir.MatMul, ir.Hadamard, ir.Div)):
            kids = [go(k) for k in n.children()]
            had = [k[1] for k in kids]
            out = n.rebuild(tuple(k[0] for k in kids)) if kids else n
            if not any(had):
                return n, False
            if isinstance(n, ir.Add):
                from ..form.shapes import is_literal
                for (k, h), orig in zip(kids, n.terms):
                    if not h and not is_literal(k):
                        raise EntryError("a term without the entry index in an entry-wise sum is not read", orig,
                                         WHOLE_COLUMN)
            elif isinstance(n, ir.MatMul):
                if all(had):            # x_i y_i: entry i of x ∘ y
                    return ir.Hadamard(out.left, out.right, "circ", span=n.span), True
                checks.append((out.right if had[0] else out.left, "scalar"))
            elif isinstance(n, ir.Hadamard) and not all(had):
                raise EntryError("an entry times a matrix element-wise is not read", n, WHOLE_COLUMN)
            elif isinstance(n, ir.Div):
                if not had[0]:
                    raise EntryError("a division by an entry is not read", n, WHOLE_COLUMN)
                if not had[1]:
                    checks.append((out.den, "scalar"))
            return out, True
        kids = n.children()
        if any(go(k)[1] for k in kids):
            raise EntryError("an entry i inside this is not read as an entry of a column", n, WHOLE_COLUMN)
        return n, False

    out, had = go(e)
    return out, had, checks


class Scope:
    """What a context has declared so far: names, sequences, functions, index quantities."""

    def __init__(self):
        self.names: dict[str, str] = {}          # name -> "matrix" | "index" | "defined"
        self.sequences: set[str] = set()
        self.functions: set[str] = set()
        self.initial: set[str] = set()
        self.bound: list[str] = []                # time variables bound by enclosing sums
        self.per_step: set[str] = set()           # X with a per-step term X^{(t)} beside X itself (PER_STEP)

    def knows(self, name: str) -> bool:
        return name in self.names

    @classmethod
    def of(cls, ctx) -> Scope:
        """The scope a finished context gives: every name it declares or defines."""
        s = cls()
        for name, d in ctx.declarations.items():
            if d.kind == "function":
                s.functions.add(name)
            elif d.initial:
                s.initial.add(d.name)
                s.sequences.add(d.name)
            else:
                s.names[name] = d.kind
                if d.sequence:
                    s.sequences.add(name)
        for name, df in ctx.definitions.items():
            s.names.setdefault(name, "defined")
            if df.target.time is not None and df.target.time.var is not None:
                s.sequences.add(name)
        s.per_step = {n[:-len(PER_STEP)] for n in s.sequences if n.endswith(PER_STEP)}
        return s


def name_key(base: str, decoration: str | None = None) -> str:
    if decoration and decoration not in TRANSPARENT:
        return f"\\{decoration}{{{base}}}"
    return base


def sub_text(sub) -> str | None:
    """The letters or digits of a subscript that is part of a name (xh in W_{xh}), else None."""
    if isinstance(sub, Name) and sub.sub is None and not sub.primes and sub.decoration is None:
        return sub.base
    if isinstance(sub, ir.Number) and sub.value.denominator == 1 and sub.value >= 0:
        return str(sub.value.numerator)
    return None


def full_name(base: str, sub) -> str:
    text = sub_text(sub)
    return f"{base}_{text}" if text is not None else base


def unpair(node):
    """\\delta_{h,t} -> the name \\delta_h with subscript t (a name with a subscript, at a step)."""
    if isinstance(node, Name) and isinstance(node.sub, tuple) and node.sub[0] == "pair" \
            and sub_text(node.sub[1]) is not None:
        return Name(full_name(name_key(node.base, node.decoration), node.sub[1]), node.sub[2], node.primes,
                    span=node.span)
    return node


def layer_name(key: str, x) -> str | None:
    """W^{(1)}: a name of its own, keyed as written (the printer prints it back as written)."""
    text = sub_text(x)
    return f"{key}^{{({text})}}" if text is not None else None


def superscript_name(node, sequences, known=lambda name: True, per_step=()) -> Name | None:
    """The name a superscript belongs to, as a plain Name, or None when the superscript is an operation.

    h^{(t)} is h at step t when h is a sequence (the Deep Learning book's notation); W^{(1)} and
    h^{(1)} (a layer) are names of their own, as is \\delta^{h} (a letter that is no transpose or power);
    a subscript after the superscript belongs to the whole name (h^{(1)}_t, \\delta^{h}_t).
    `known(name)` says whether a name is declared, defined or a function.  A name X in `per_step` (a total
    X without steps beside its per-step terms X^{(t)}) gives the sequence X^{(\\cdot)} at the step.
    """
    if not isinstance(node, Sup) or not isinstance(node.base, Name) or node.base.primes:
        return None
    n, v = node.base, node.value
    key = name_key(n.base, n.decoration)
    if node.kind == "expr" and isinstance(v, Paren) and v.sub is None:
        x = v.expr
        layer = layer_name(key, x)
        if key in per_step and is_time_like(x) and n.sub is None and node.sub is None \
                and not (isinstance(x, ir.Number) and layer and known(layer)):
            return Name(key + PER_STEP, x, 0, span=node.span, step_sup=True)
        if key in sequences and is_time_like(x) and n.sub is None and node.sub is None \
                and not (isinstance(x, ir.Number) and layer and known(layer)):
            return Name(n.base, x, 0, n.decoration, span=node.span, step_sup=True)
        if layer is not None:
            return Name(layer, node.sub if node.sub is not None else n.sub, 0, span=node.span)
        return None
    if node.kind == "expr" and isinstance(v, Name) and v.sub is None and not v.primes and v.decoration is None \
            and n.sub is None:
        whole = f"{key}^{{{v.base}}}"
        if known(whole):
            return Name(whole, node.sub, 0, span=node.span)
    return None


def sequence_key(node, per_step=()) -> str | None:
    """The sequence a declaration or definition target introduces with step t (h_t, h^{(t)}, h^{(1)}_t,
    \\delta_{h,t}), or None; read before any name is known."""
    node = superscript_name(node, _Everything(), per_step=per_step) or node
    node = unpair(node)
    if isinstance(node, Name) and isinstance(node.sub, Name) and node.sub.base == "t" and node.sub.sub is None:
        return name_key(node.base, node.decoration)
    return None


class _Everything:
    def __contains__(self, item):
        return True


def as_time(sub, scope: Scope, err) -> ir.Time:
    """A subscript read as a step: t, t-1, t+1, T, 0, 3, t=T (Comment 1's ℓ_{t=T})."""
    if isinstance(sub, tuple) and sub[0] == "eq":
        return as_time(sub[2], scope, err)
    if isinstance(sub, ir.Number) and sub.value.denominator == 1:
        return ir.Time(None, int(sub.value))
    if isinstance(sub, Name) and sub.sub is None and not sub.primes:
        return ir.Time(sub.base, 0)
    if isinstance(sub, ir.Add) and len(sub.terms) == 2:
        base, off = sub.terms
        sign = 1
        if isinstance(off, ir.Neg):
            off, sign = off.arg, -1
        if isinstance(off, ir.Number) and off.value.denominator == 1:
            t = as_time(base, scope, err)
            if t.var is not None and t.offset == 0:
                return ir.Time(t.var, sign * int(off.value))
    raise err("this subscript is not a step (write t, t-1, t+1, T or a number)", sub)


def is_time_like(sub) -> bool:
    """Could this subscript be a step index at all?"""
    if isinstance(sub, tuple) and sub[0] == "eq":
        return True
    if isinstance(sub, ir.Number):
        return True
    if isinstance(sub, Name):
        return sub.sub is None and sub.base in TIME_VARS
    if isinstance(sub, ir.Add) and len(sub.terms) == 2:
        return is_time_like(sub.terms[0])
    return False


class Resolver(ir.Visitor):
    """Syntax -> the intermediate form, in one scope; errors are DerivationErrors located by span."""

    def __init__(self, scope: Scope, error):
        self.scope = scope
        self.error = error           # error(message, node, hint="") -> DerivationError
        self.entry: set[str] = set()  # the letters read as an entry index (a claim's line, ENTRY_LETTERS)
        self.entry_used: set[str] = set()   # those a line uses freely (one at most: x_i = y_j is no column line)
        self.definitions: dict = {}   # the context's definitions so far (the reader's): copies are written out
        self.copies_used: set = set()  # the copies (W^{(t)}) a line was read through, said next to it
        # Under `> Jacobians: numerator layout`: the shape of an expression in the context so far (the reader's),
        # and whether a line's copy Jacobian was read transposed (said next to it).
        self.shape = None
        self.transposed_copies = False
        self.checks: list = []        # (node, "scalar" | "column"): shapes a sum over entries needs (entrywise)

    def entry_letters(self) -> set[str]:
        """The entry indices a claim may use: i, j when no quantity, function or sequence is named so (and k, l
        in a context without sequences)."""
        letters = ENTRY_LETTERS + (MORE_LETTERS if not self.scope.sequences else ())
        return {x for x in letters if not self.known(x) and x not in self.scope.initial}

    def letter_pair(self, sub) -> tuple[str, str] | None:
        """The two entry indices of an entry of a matrix, W_{i,j} or W_{ij}, or None."""
        if isinstance(sub, tuple) and sub[0] in ("pair", "eq") and all(
                isinstance(x, Name) and x.sub is None and not x.primes and x.decoration is None
                and x.base in self.entry for x in sub[1:]):
            pair = (sub[1].base, sub[2].base)
        elif isinstance(sub, Name) and sub.sub is None and not sub.primes and sub.decoration is None \
                and len(sub.base) == 2 and all(x in self.entry for x in sub.base):
            pair = (sub.base[0], sub.base[1])
        else:
            return None
        self.entry_used.update(pair)
        return pair

    def matrix_entry(self, node: Name, key: str):
        """W_{i,j}, W_{ij} of a known W (not a name W_{ij} of its own): entry [i, j], or None."""
        if not isinstance(node.sub, (tuple, Name)) or not (self.scope.knows(key) and key not in self.scope.sequences):
            return None
        if isinstance(node.sub, Name) and self.known(full_name(key, node.sub)):
            return None
        if isinstance(node.sub, tuple) and node.sub[0] != "pair":
            return None
        pair = self.letter_pair(node.sub)
        if pair is None:
            return None
        style = "comma" if isinstance(node.sub, tuple) else "run"
        return MatrixEntryMark(self.ref(Name(node.base, None, node.primes, node.decoration, span=node.span)),
                               *pair, style, span=node.span)

    def kronecker(self, node: Name, key: str):
        """\\delta_{ki}, \\delta_{k,i} (no quantity of that name): the Kronecker delta of two entry indices, or None."""
        if key != "\\delta" or node.primes or self.known(full_name(key, node.sub)):
            return None
        pair = self.letter_pair(node.sub)
        if pair is None:
            return None
        return DeltaMark(*pair, "\\delta," if isinstance(node.sub, tuple) else "\\delta", span=node.span)

    def is_entry(self, sub) -> bool:
        found = isinstance(sub, Name) and sub.sub is None and not sub.primes and sub.decoration is None \
            and sub.base in self.entry
        if found:
            self.entry_used.add(sub.base)
        return found

    def err(self, message, node, hint=""):
        return self.error(message, node, hint)

    # ---------------------------------------------------------------- names

    def split_letters(self, text: str) -> list[str] | None:
        """`Wh` -> ["W", "h"] when every piece is a declared name (longest piece first)."""
        if not text:
            return []
        for cut in range(len(text), 0, -1):
            head = text[:cut]
            if self.scope.knows(head) or head in self.scope.functions:
                rest = self.split_letters(text[cut:])
                if rest is not None:
                    return [head, *rest]
        return None

    def ref(self, node: Name):
        """A name -> Ref, Basis, a function marker ("fn", name, primes), or a product of names."""
        s = self.scope
        key = name_key(node.base, node.decoration)
        special = (self.matrix_entry(node, key) or self.kronecker(node, key)) if self.entry else None
        if special is not None:
            return special
        node = unpair(node)
        key = name_key(node.base, node.decoration)
        if node.sub is not None and self.is_entry(node.sub) and not self.known(full_name(key, node.sub)) \
                and (s.knows(key) or key in s.sequences):
            # o_i: entry i of the column o, in an entry-wise line
            return Entry(self.ref(Name(node.base, None, node.primes, node.decoration, span=node.span)),
                         span=node.span, letter=node.sub.base)
        if node.sub is not None:
            if (key in s.sequences or key in s.initial) and is_time_like(node.sub):
                time = self.last_step(as_time(node.sub, s, self.err))
                if time.var is not None and time.var not in ("t", "T") and time.var not in s.bound:
                    raise self.err(f"the step variable {time.var} is not bound by a sum here", node,
                                   "write the last step as T (h^{(T)}, h_T): \\tau is read only as a step bound by "
                                   "a sum, \\sum_{\\tau=t}^{T}" if time.var in ("\\tau", "tau") else "")
                return self._primed(ir.Ref(key, time, span=node.span, sup=node.step_sup), node)
            whole = full_name(key, node.sub)
            if s.knows(whole):
                return self._primed(ir.Ref(whole, span=node.span), node)
            if whole in s.functions:
                return ("fn", whole, node.primes)
            if key == "e" and not s.knows("e") and self.is_entry(node.sub):
                return BasisMark(node.sub.base, span=node.span)        # e_{k}, k a free entry index
            if key == "e" and not s.knows("e"):
                return ir.Basis(self.index(node.sub, node), "e", span=node.span)
            if key in s.sequences:
                raise self.err(f"{key} is a sequence: its subscript must be a step such as t, t-1 or 0", node)
            text = sub_text(node.sub)
            if s.knows(key) and text is not None and s.names.get(text) == "index":
                # p_k: the entry of the column p at the index k (as (p)_{k}); p_k is no name of its own here.
                return ir.Component(ir.Ref(key, span=node.span), self.index(node.sub, node), span=node.span)
            hint = self._did_you_mean(key if is_time_like(node.sub) else whole)
            raise self.err(f"undeclared symbol {whole}", node, hint)
        if key in s.functions:
            return ("fn", key, node.primes)
        if s.knows(key):
            if key in s.sequences:
                # A sequence written without a step, in a line about step t, is its value at t
                # (the note's \vec{h} in the dW_hy line); documented in the format.
                return self._primed(ir.Ref(key, ir.Time("t"), span=node.span), node)
            return self._primed(ir.Ref(key, span=node.span), node)
        pieces = self.split_letters(key) if node.decoration is None and key.isalpha() else None
        if pieces and len(pieces) > 1:
            out = None
            for i, p in enumerate(pieces):
                last = i == len(pieces) - 1
                piece = self.ref(Name(p, node.sub if last else None, node.primes if last else 0, span=node.span))
                out = piece if out is None else ir.MatMul(out, piece, span=node.span)
            return out
        raise self.err(f"undeclared symbol {key}", node, self._stepless(key) or self._did_you_mean(key))

    def last_step(self, time: ir.Time) -> ir.Time:
        """\\tau not bound by a sum is the last step T (the Deep Learning book writes the length \\tau)."""
        if time.var in ("\\tau", "tau") and time.var not in self.scope.bound:
            return ir.Time("T", time.offset)
        return time

    def _stepless(self, key: str) -> str:
        """The hint for X^{(t)} of a name X without steps (Deep Learning 10.17's L^{(t)}, 10.23's b^{(t)})."""
        m = re.fullmatch(r"(.+)\^\{\((t[^)]*)\)\}", key)
        if not m or not self.scope.knows(m.group(1)) or m.group(1) in self.scope.sequences:
            return ""
        base, step = m.groups()
        if self.scope.names.get(base) == "defined":
            return (f"{base} has no steps, so {key} (its term at step {step}) is not read: define the per-step term "
                    f"and the total from it, {base}^{{(t)}} := ... and {base} = \\sum_t {base}^{{(t)}} (or name it "
                    f"\\ell^{{(t)}} := ... with {base} := \\sum_t \\ell^{{(t)}}, and write \\ell^{{({step})}} for {key})")
        return (f"{base} has no steps, so {key} (its copy used at step {step}) is read only in the derivative of a "
                f"quantity at step {step} (\\frac{{\\partial h^{{({step})}}}}{{\\partial {key}}}): differentiate with "
                f"respect to {base} itself, write \\nabla_{{{base}}} L = \\sum_t (the term of step t), e.g. "
                f"\\nabla_{{{base}}} L = \\sum_t \\operatorname{{diag}}(1 - (h^{{(t)}})^2) \\nabla_{{h^{{(t)}}}} L "
                f"for h^{{(t)}} = \\tanh({base} + ...)")

    def _primed(self, ref, node):
        if node.primes:
            raise self.err(f"{node.base}' : only a declared function has a derivative f'", node)
        return ref

    def _did_you_mean(self, name: str) -> str:
        import difflib
        if name in ("\\delta", "\\Delta"):
            # \delta h_t for "the gradient at h_t": a name of its own is written with a sub- or superscript.
            return (f"\\delta h_t is {name} times h_t; name a gradient {name}^{{h}}_t or {name}_{{h,t}} "
                    f"(e.g. {name}^{{h}}_t := \\frac{{\\partial L}}{{\\partial h_t}})")
        rest = name[1:]
        if name.startswith("d") and (self.scope.knows(rest) or rest in self.scope.sequences):
            # dy_t for a known y: most likely a name for a derivative that was never defined.
            step = "_t" if rest in self.scope.sequences else ""
            return (f"a name for a derivative is defined first: {name}{step} := "
                    f"\\frac{{\\partial \\ell}}{{\\partial {rest}{step}}}")
        close = difflib.get_close_matches(name, list(self.scope.names) + list(self.scope.functions), n=1)
        if close:
            return f"did you mean {close[0]}?"
        return "declare it, e.g. " + name + (" \\in \\mathbb{R}^{n}" if name.isalpha() else "")

    def index(self, sub, node) -> ir.Ref:
        """The index of a component or basis column: a declared index quantity such as k_t."""
        if isinstance(sub, tuple) and sub[0] == "eq":
            sub = sub[2]
        if isinstance(sub, Sup) and sub.transpose is None:
            # y^{(t)}: an index at a step written as a superscript (the Deep Learning book's notation).
            named = superscript_name(sub, self.scope.sequences | self.scope.initial, self.known,
                                     self.scope.per_step)
            if named is not None:
                sub = named
        if not isinstance(sub, Name):
            raise self.err("an index must be a declared index quantity such as k_t", node)
        if not self.scope.knows(name_key(sub.base, sub.decoration)) and name_key(sub.base) not in self.scope.sequences:
            raise self.err(f"undeclared index {sub.base}", node,
                           f"declare it: {sub.base} \\in \\{{1, \\dots, n\\}} (or {sub.base}_t for one per step)")
        r = self.ref(sub)
        if not isinstance(r, ir.Ref) or self.scope.names.get(r.name) != "index":
            raise self.err(f"{sub.base} is not declared as an index (k_t \\in \\{{1, \\dots, V\\}})", node)
        return r

    # ---------------------------------------------------------------- expressions

    def expr(self, node) -> ir.Expr:
        return self.visit(node)

    def missing(self, node):
        raise self.err(f"unsupported construct ({type(node).__name__})", node)

    def _Name(self, node: Name):
        r = self.ref(node)
        if isinstance(r, tuple):
            raise self.err(f"the function {r[1]} needs an argument in parentheses", node)
        return r

    def known(self, name: str) -> bool:
        return self.scope.knows(name) or name in self.scope.functions or name in self.scope.sequences

    def _BareApply(self, node: BareApply):
        return self.expr(node.node)

    def _Ones(self, node):
        return node

    def _Args(self, node: Args):
        raise self.err("(a, b) is not read here", node,
                       "columns stacked into one are written [a, b]; a function of named arguments f(x, W) = ... is "
                       "read only as the definition of a new name f (write f := ... when f is used before)")

    def _SetOf(self, node):
        raise self.err("a set \\{...\\} is read only as the written argument of a quantity", node,
                       "L(\\{x^{(1)}, \\dots, x^{(\\tau)}\\}) is L, its arguments naming what it depends on")

    def _Given(self, node):
        raise self.err("(a \\mid b) is read only as the written arguments of a quantity", node,
                       "p(y^{(t)} \\mid x^{(1)}, \\dots, x^{(t)}) is p at step t, defined by a line p(...) := ...")

    def _Number(self, node):
        return node

    def _Add(self, node):
        return ir.Add(tuple(self.expr(t) for t in node.terms), span=node.span)

    def _Neg(self, node):
        return ir.Neg(self.expr(node.arg), span=node.span)

    def _Hadamard(self, node):
        return ir.Hadamard(self.expr(node.left), self.expr(node.right), node.op, span=node.span)

    def _Juxt(self, node: Juxt):
        if isinstance(node.left, Name) and node.left.base == "H" and node.left.sub is None \
                and node.left.decoration is None and not node.left.primes and not self.known("H") \
                and isinstance(node.right, Paren) and node.right.sub is None and not node.dot:
            # H(z), the Heaviside step, = 1[z > 0]; only when H is no quantity or function of the context
            # (a size H is not: sizes are never applied to anything).
            return ir.Apply("ind", self.expr(node.right.expr), span=node.span, style="H")
        if isinstance(node.left, Juxt) and isinstance(node.left.right, Name) and isinstance(node.right, Paren) \
                and node.right.sub is None and node.left.right.sub is None \
                and node.left.right.base in self.scope.functions:
            # h \cdot f'(z) groups as (h \cdot f')(z): a declared function takes the argument after it first.
            inner = node.left.right
            span = (inner.span[0], node.right.span[1]) if inner.span and node.right.span else node.span
            return self._Juxt(Juxt(node.left.left, Juxt(inner, node.right, span=span), node.left.dot,
                                   span=node.span))
        named = self.named_value(node)
        if named is not None:
            return named
        left = self.ref(node.left) if isinstance(node.left, Name) else self.expr(node.left)
        if isinstance(left, tuple):               # a declared function, applied
            _, fname, primes = left
            arg = node.right.expr if isinstance(node.right, Paren) and node.right.sub is None else node.right
            if node.dot:
                raise self.err(f"write {fname}(x), not {fname} \\cdot x", node)
            return ir.Apply(fname, self.expr(arg), primes, span=node.span)
        return ir.MatMul(left, self.expr(node.right), node.dot, span=node.span, norm=node.norm)

    def named_value(self, node: Juxt) -> ir.Ref | None:
        """f(x, W) or f(q) of a value f the context defines (CS231n writes f(q) = \\|q\\|^2, then f(x, W) =
        \\|W \\cdot x\\|^2 with q = W \\cdot x): f itself, when its arguments reach through the definitions the
        inputs f depends on, and no others; otherwise they would be another quantity's, an error."""
        f = None if node.dot else _named_arguments(node)
        key = name_key(f.base, f.decoration) if f is not None else None
        if key is None or key not in self.definitions or self.definitions[key].target.time is not None:
            return None
        args = [self.expr(a) for a in (node.right.parts if isinstance(node.right, Args) else (node.right.expr,))]
        reached = set().union(*(self.inputs(a) for a in args))
        own = self.inputs(ir.Ref(key))
        if reached != own:
            raise self.err(f"{key} is written with arguments that depend on {', '.join(sorted(reached))}, but {key} "
                           f"depends on {', '.join(sorted(own))}", node,
                           f"write the arguments {key} is defined with, or give the other quantity another name")
        for a in args:
            self.read_through(key, a)
        return ir.Ref(key, span=node.span)

    def read_through(self, key: str, arg: ir.Expr):
        """f(q) with q := W x, where f's definition writes W x: f reads it as q (the same value for every input,
        and what the arguments say: f is a function of q, so ∂f/∂q is the slides' 2q, not zero)."""
        d = self.definitions.get(arg.name) if isinstance(arg, ir.Ref) and arg.time is None else None
        if d is None or d.notation or arg.name == key:
            return
        f = self.definitions[key]
        folded = ir.transform(f.expr, lambda n: arg if n == d.expr else n)
        if folded != f.expr:
            self.definitions[key] = replace(f, expr=folded)

    def inputs(self, e: ir.Expr, seen=None) -> set:
        """The quantities e depends on that no definition computes (through the definitions so far)."""
        seen = set() if seen is None else seen
        out = set()
        for r in ir.refs(e):
            if r.name in seen:
                continue
            seen.add(r.name)
            d = self.definitions.get(r.name)
            out |= {r.name} if d is None else self.inputs(d.expr, seen)
        return out

    def _Paren(self, node: Paren):
        inner = self.expr(node.expr)
        if node.sub is None:
            return inner
        if self.is_entry(node.sub):
            # (\nabla_{o} L)_i: entry i, in an entry-wise line
            return Entry(inner, span=node.span, letter=node.sub.base)
        pair = self.letter_pair(node.sub) if isinstance(node.sub, tuple) and node.sub[0] == "pair" else None
        if pair is not None:
            return MatrixEntryMark(inner, *pair, span=node.span)      # (e_k x^T)_{i,j}: entry [i, j]
        return ir.Component(inner, self.index(node.sub, node), span=node.span)

    def _Sup(self, node: Sup):
        if node.kind == "expr" and isinstance(node.base, Frac) and node.base.style == "nabla" \
                and isinstance(node.value, Paren) and node.sub is None and node.transpose is None:
            # \nabla_{V} o_i^{(t)}: the step belongs to the quantity differentiated, not to the gradient
            f = node.base
            return self.expr(Frac(Sup(f.num, "expr", node.value, span=node.span), f.den, f.partial, span=node.span,
                                  style=f.style))
        if node.kind == "expr" and node.transpose is None and isinstance(node.base, Name):
            # o_i^{(t)}, h^{(t)}_i: entry i of the column at a step, in an entry-wise line
            n = node.base
            if node.sub is None and self.is_entry(n.sub) and not self.known(full_name(name_key(n.base, n.decoration),
                                                                                      n.sub)):
                inner = Sup(Name(n.base, None, n.primes, n.decoration, span=n.span), node.kind, node.value,
                            span=node.span)
                return Entry(self.expr(inner), span=node.span, letter=n.sub.base)
            if self.is_entry(node.sub) and n.sub is None:
                inner = Sup(n, node.kind, node.value, span=node.span)
                return Entry(self.expr(inner), span=node.span, letter=node.sub.base)
        named = superscript_name(node, self.scope.sequences | self.scope.initial, self.known, self.scope.per_step)
        if named is not None:
            out = self._Name(named)
            return ir.Transpose(out, node.transpose, span=node.span) if node.transpose else out
        if node.sub is not None and node.kind in ("transpose", "power") and isinstance(node.base, Name):
            # W^T_{xh}: a subscript after a transpose or power; the name is W_{xh}.
            raise self.err("a subscript after a transpose or a power", node,
                           f"write the subscript first: {to_text(node.base)}_{{...}}^{{...}}")
        if node.sub is not None or node.transpose is not None:
            what = to_text(node)
            raise self.err(f"undeclared symbol {what}: a name with a superscript (a layer, a letter) is a name of its "
                           "own", node, f"declare it, e.g. {what} \\in \\mathbb{{R}}^{{n}}, or {what}_t := ... for a "
                           "sequence")
        if node.kind == "transpose":
            return ir.Transpose(self.expr(node.base), node.value, span=node.span)
        if node.kind == "power":
            return ir.Power(self.expr(node.base), node.value, span=node.span)
        if isinstance(node.base, Name) and node.base.base == "e" and node.base.sub is None \
                and not self.scope.knows("e"):
            return ir.Apply("exp", self.expr(node.value), span=node.span)
        if isinstance(node.base, Name) and node.kind == "expr" and isinstance(node.value, (Name, Paren)):
            raise self.err(f"undeclared symbol {to_text(node)}", node,
                           "a superscript that is no transpose or power is part of a name: declare it, e.g. "
                           "\\delta^{h}_t := ... or W^{(1)} \\in \\mathbb{R}^{m \\times n}")
        raise self.err("this superscript is neither a transpose (^T, ^\\top), a whole power nor e^{x}", node)

    def _Frac(self, node: Frac):
        if not node.partial:
            d = self._d_fraction(node)
            if d is not None:
                return d
        copy = self.copy_of(node.den) if node.partial else None
        if copy is not None:
            return self._copy_derivative(node, *copy)
        num, den = self.expr(node.num), self.expr(node.den)
        if node.partial and isinstance(num, Entry) and not num.derivative and isinstance(num.arg, ir.Ref) \
                and num.arg.time is not None and isinstance(den, ir.Ref) and den.time is None \
                and self.scope.names.get(den.name) == "matrix":
            return EntryGrad(num.arg, den, False, span=node.span)     # \nabla_{V} o_i^{(t)}, inside \sum_i
        if node.partial and isinstance(den, Entry) and isinstance(den.arg, ir.Ref):
            # ∂L/∂o_i: entry i of ∂L/∂o (for a scalar L; entrywise checks it)
            return Entry(ir.Deriv(num, den.arg, span=node.span, style=node.style), True, span=node.span,
                         letter=den.letter)
        if node.partial and isinstance(den, MatrixEntryMark) and isinstance(den.arg, ir.Ref) \
                and not den.style.startswith("deriv-"):
            # ∂q_k/∂W_{i,j}: entry [i, j] of ∂q_k/∂W (a line of entries checks that q_k is a scalar)
            return MatrixEntryMark(ir.Deriv(num, den.arg, span=node.span, style=node.style), den.row, den.col,
                                   "deriv-" + den.style, span=node.span)
        if node.partial:
            if not isinstance(den, ir.Ref):
                raise self.err("differentiate with respect to a named quantity (define it with := first)", node)
            return ir.Deriv(num, den, span=node.span, style=node.style)
        return ir.Div(num, den, span=node.span)

    def copy_of(self, node):
        """W^{(t)} of a weight W declared without steps: (W, the step), the book's copy of W used only at step t
        (Deep Learning 10.2.2), or None."""
        if not (isinstance(node, Sup) and node.kind == "expr" and node.sub is None and node.transpose is None
                and isinstance(node.base, Name) and node.base.sub is None and not node.base.primes
                and isinstance(node.value, Paren) and node.value.sub is None and is_time_like(node.value.expr)
                and not isinstance(node.value.expr, ir.Number)):
            return None
        key = name_key(node.base.base, node.base.decoration)
        if self.scope.names.get(key) != "matrix" or key in self.scope.sequences or key in self.scope.per_step \
                or self.known(f"{key}^{{({sub_text(node.value.expr)})}}"):
            return None
        return ir.Ref(key, span=node.span), self.last_step(as_time(node.value.expr, self.scope, self.err))

    def _copy_derivative(self, node: Frac, wrt: ir.Ref, time: ir.Time):
        """∂h^{(t)}/∂b^{(t)}: the Jacobian of h^{(t)} through the copy of b used at step t, written out; and
        \\nabla_{W^{(t)}} h_i^{(t)} inside a sum over entries."""
        num = self.expr(node.num)
        copy = f"{wrt.name}^{{({time})}}"
        if isinstance(num, Entry) and not num.derivative and isinstance(num.arg, ir.Ref) and num.arg.time == time:
            return EntryGrad(num.arg, wrt, True, span=node.span)
        if isinstance(num, ir.Ref) and num.time == time and num.name in self.scope.sequences:
            return self.in_layout(num, self.local(num, wrt, time, None, node), node)
        raise self.err(f"the copy {copy} of {wrt.name} (its use at step {time}) is read only in the derivative of "
                       f"a quantity at step {time}: \\frac{{\\partial h^{{({time})}}}}{{\\partial {copy}}} or "
                       f"\\sum_i (...) \\nabla_{{{copy}}} h_i^{{({time})}}", node,
                       f"differentiate with respect to {wrt.name} itself: \\nabla_{{{wrt.name}}} L = \\sum_t "
                       f"(the term of step t)")

    def in_layout(self, of: ir.Ref, jacobian: ir.Expr, node) -> ir.Expr:
        """A copy's written-out Jacobian (denominator layout) in the layout the context declares: under
        `> Jacobians: numerator layout` the transpose, for a column `of`; a scalar's gradient is unchanged."""
        if self.shape is None:
            return jacobian
        from ..form.shapes import IllTyped, is_scalar_shape
        try:
            shape = self.shape(of)
        except IllTyped:
            raise self.err(f"the shape of {of.name} is not known on this line: under `Jacobians: numerator layout` "
                           f"it says whether the derivative is a Jacobian (read transposed) or a gradient", node,
                           f"declare what {of.name} is computed from above this line") from None
        if is_scalar_shape(shape):
            return jacobian
        self.transposed_copies = True
        return ir.Transpose(jacobian, "\\top")

    def local(self, of: ir.Ref, wrt: ir.Ref, time: ir.Time, g, node, copy=True):
        """Σ_i g_i ∂of_i/∂wrt through wrt's use at the step (g None: the Jacobian), written out (copies.py)."""
        from .copies import Local, Unsupported
        where = f"{wrt.name}^{{({time})}}" if copy else wrt.name
        d = self.definitions.get(of.name)
        if d is None or d.notation:
            raise self.err(f"{of.name} is not defined before this line: its derivative with respect to {where} is "
                           "written out from its definition", node, f"define {of.name} first (above this line)")
        local = Local(self.definitions, wrt, time)
        local.jacobian = g is None
        try:
            if not copy and local.reaches_elsewhere(of):
                raise self.err(f"{wrt.name} reaches {of.name} through another step, so the total derivative "
                               f"\\nabla_{{{wrt.name}}} is not the use at step {time} alone", node,
                               f"write the copy used at step {time}, \\nabla_{{{wrt.name}^{{({time})}}}}, or the "
                               "matrix product it is")
            out = local.vjp(of, g)
            if copy:
                self.copies_used.add(where)
        except Unsupported as e:
            raise self.err(f"the derivative with respect to {where} cannot be written out: {e}", node,
                           SUM_OVER_ENTRIES) from None
        if out is None:
            raise self.err(f"{of.name} does not read {wrt.name} at step {time}", node,
                           "the derivative is zero: leave the term out")
        return out

    def _d_fraction(self, node: Frac):
        """\\frac{dL}{dw}, \\frac{d L}{d w}: the derivative (the same total derivative as with \\partial),
        when d is no quantity of the context and dL, dw are no names of their own."""
        if self.known("d"):
            return None
        parts = [self._after_d(x) for x in (node.num, node.den)]
        if None in parts:
            return None
        num, den = (self.expr(x) for x in parts)
        if not isinstance(den, ir.Ref):
            raise self.err("differentiate with respect to a named quantity (define it with := first)", node)
        return ir.Deriv(num, den, span=node.span)

    def _after_d(self, x):
        if isinstance(x, Juxt) and not x.dot and isinstance(x.left, Name) and x.left.base == "d" \
                and x.left.sub is None and x.left.decoration is None and not x.left.primes:
            return x.right
        if isinstance(x, Name) and x.decoration is None and len(x.base) > 1 and x.base.startswith("d") \
                and not x.primes and not self.known(name_key(x.base)) \
                and not self.known(full_name(x.base, x.sub)):
            return Name(x.base[1:], x.sub, 0, span=x.span)
        return None

    def _Indicator(self, node: Indicator):
        sub = node.sub
        if isinstance(sub, tuple) and sub[0] == "eq" and self.is_step(sub[1]) and self.is_step(sub[2]):
            return self._Condition(Condition(sub[1], "=", sub[2], span=node.span,
                                             style=("1" if node.head == "1" else node.head) + "_"))
        pair = self.letter_pair(sub) if isinstance(sub, tuple) and sub[0] in ("eq", "pair") else None
        if pair is not None:
            # \mathbf{1}_{k=i}: both sides entry indices, the Kronecker delta
            return DeltaMark(*pair, node.head + "_", span=node.span)
        style = sub[1].base if isinstance(sub, tuple) and isinstance(sub[1], Name) else "1"
        if node.head != "1":
            style = f"{node.head}|{style}"
        out = ir.Basis(self.index(sub, node), style, span=node.span)
        if isinstance(sub, tuple) and self.is_entry(sub[1]):
            return Entry(out, span=node.span, letter=sub[1].base)    # 1_{i = y}: entry i of the one-hot column e_y
        return out

    def is_step(self, x) -> bool:
        """Is x a step of a condition (t, T, t + 1, a number; a sum's own variable), not an index or a value?"""
        if isinstance(x, ir.Number):
            return x.value.denominator == 1
        if not is_time_like(x) or (isinstance(x, Name) and self.known(x.base)):
            return False
        try:
            time = self.last_step(as_time(x, self.scope, self.err))
        except (DerivationError, ValueError):               # (whichever error the caller's factory makes)
            return False                                    # T - t, 2t: no step of the form t + k
        return time.var is None or time.var in ("t", "T") or time.var in self.scope.bound

    def _Condition(self, node: Condition):
        """1[t < T]: a condition between two steps (ir.StepIf); 1[k = i] of two entry indices, the Kronecker delta;
        of values, only ReLU's 1[z > 0] is read."""
        pair = self.letter_pair(("eq", node.left, node.right)) if node.relation == "=" else None
        if pair is not None:
            return DeltaMark(*pair, node.style, span=node.span)
        if not (self.is_step(node.left) and self.is_step(node.right)):
            raise self.err("an indicator is read as ReLU's derivative 1[z > 0], as a condition between two steps "
                           "(t, T, t + 1 or a number) or as the indicator of an equality of two entry indices",
                           node, "compare a value with 0, \\mathbb{1}[z > 0], two steps, \\mathbb{1}[t < T], or "
                           "two entry indices in a line of entries, \\mathbb{1}[k = i]")
        left, right = (self.last_step(as_time(x, self.scope, self.err)) for x in (node.left, node.right))
        return ir.StepIf(left, node.relation, right, span=node.span, style=node.style)

    def _Cases(self, node: Cases):
        """Each row's value times its conditions and the negations of the rows above it (the first row that holds
        gives the value; a negation the row's own conditions imply is left out): [t = T] a + [t ≠ T] b.  A row
        whose value is 0 adds nothing (its conditions still rule out the rows below)."""
        terms, above = [], []
        for value, when in node.rows:
            own = [self._Condition(c) for c in when] if when is not None else []
            factors = list(own)
            for conj in above:
                if any(ir.implies(o, ir.negated(c)) for o in own for c in conj):
                    continue                                # a row above that cannot hold where this one does
                if len(conj) == 1:
                    factors.append(ir.negated(conj[0]))
                else:                                       # not (a and b): 1 - [a][b]
                    both = conj[0]
                    for c in conj[1:]:
                        both = ir.MatMul(both, c, span=node.span)
                    factors.append(ir.Add((ir.Number(Fraction(1)), ir.Neg(both)), span=node.span))
            above.append(own)
            term = self.expr(value)
            if isinstance(term, ir.Number) and term.value == 0:
                continue
            for c in reversed(factors):
                term = ir.MatMul(c, term, span=node.span)
            terms.append(term)
        if not terms:
            return ir.Number(Fraction(0), span=node.span)
        return terms[0] if len(terms) == 1 else ir.Add(tuple(terms), span=node.span)

    def _TimeSum(self, node: TimeSum):
        if node.var in ENTRY_LETTERS and not self.known(node.var):
            return self._entry_sum(node)
        if not self.scope.sequences:
            raise self.err(f"\\sum_{{{node.var}}} sums over the time steps 1..T, but this part of the file has no "
                           "sequence (no name declared or defined with subscript t)", node,
                           "only sums over time steps are part of the notation: write a sum over entries as a "
                           "matrix product" if node.var not in TIME_VARS else
                           "declare the sequences first, e.g. x_t \\in \\mathbb{R}^{n}" + (
                               " (a sum over the entries of a column is written \\sum_i or \\sum_j, e.g. "
                               "\\sum_i q_i^2)" if node.var == "k" else ""))
        inner = node.body
        if isinstance(inner, TimeSum) and not (inner.var in ENTRY_LETTERS and not self.known(inner.var)):
            raise self.err("a sum over steps inside a sum over steps is not read (only a sum over entries, \\sum_i, "
                           "inside one)", inner, "write the inner sum as a quantity of its own, defined with :=")
        if node.short:
            lo, hi = ir.Time(None, 1), ir.Time("T")
        else:
            lo = self.last_step(as_time(node.lo, self.scope, self.err))
            hi = self.last_step(as_time(node.hi, self.scope, self.err))
        self.scope.bound.append(node.var)
        try:
            body = self.expr(node.body)
        finally:
            self.scope.bound.pop()
        out = ir.Sum(node.var, lo, hi, body, node.short, span=node.span)
        if node.coefficient is not None:
            out = ir.MatMul(self.expr(node.coefficient), out, span=node.span)
        return out

    def _entry_sum(self, node: TimeSum, size: str | None = None):
        """A sum over the entries i of a column (docs/derivation-format.md, Sums over entries).

        \\sum_i E with E written with a free entry index i (q_i^2, (W \\cdot x)_i^2, x_i y_i): 1^T c, c the
        column whose entry i is E (resolve.entrywise, as for an entry-wise line).  \\sum_i (\\partial L /
        \\partial h_i^{(t)}) \\nabla_{W^{(t)}} h_i^{(t)} (Deep Learning 10.25): the vector-Jacobian product of the
        column of the coefficients with the gradient of entry i, written out (copies.py).  `size`: the sum
        ends at that size (q_1 + \\dots + q_n, \\sum_{i=1}^{n}), which must be the column's, checked once the
        context is known (reader.check_entries)."""
        if not node.short:
            lo, hi = node.lo, node.hi
            if not (isinstance(lo, ir.Number) and lo.value == 1 and isinstance(hi, Name) and hi.sub is None
                    and not hi.primes and hi.decoration is None and not self.known(hi.base)):
                raise self.err(f"a sum over entries runs from {node.var} = 1 to the column's size: "
                               f"\\sum_{{{node.var}=1}}^{{n}} or \\sum_{node.var}", node,
                               f"write \\sum_{node.var} (every entry {node.var} of the column)")
            size = hi.base
        saved, used, self.entry = self.entry, self.entry_used, {node.var}
        self.entry_used = set()
        try:
            body = self.expr(node.body)
        finally:
            self.entry, self.entry_used = saved, used        # the sum binds its letter
        sized = [] if size is None else [("size", size)]
        if node.coefficient is None and isinstance(body, ir.MatMul):
            grads = [x for x in (body.left, body.right) if isinstance(x, EntryGrad)]
            if len(grads) == 1:
                grad = grads[0]
                other = body.right if body.left is grad else body.left
                try:
                    g, had, checks = entrywise(other)
                except EntryError as e:
                    raise self.err(e.args[0], e.node, e.hint) from None
                if had and not any(isinstance(n, EntryGrad) for n in g.walk()):
                    self.checks.extend(checks)
                    self.checks.extend(((g, "column"), (grad.of, "column")))
                    self.checks.extend((replace(g, span=node.span), what) for what in sized)
                    return self.local(grad.of, grad.wrt, grad.of.time, g, node, copy=grad.copy)
        if not any(isinstance(n, EntryGrad) for n in body.walk()):
            try:
                column, had, checks = entrywise(body)
            except EntryError as e:
                raise self.err(f"{e.args[0]} (in a sum over entries, \\sum_{node.var})", e.node,
                               _SUM_BODY.format(v=node.var)) from None
            if not had:
                raise self.err(f"the term of a sum over entries (\\sum_{node.var}) is written with the entry "
                               f"{node.var} (q_{node.var}^2, (W \\cdot x)_{node.var}^2)", node,
                               _SUM_BODY.format(v=node.var))
            self.checks.extend(checks)                    # entries of columns, scalar factors
            self.checks.extend((replace(column, span=node.span), what) for what in sized)   # located at the sum
            ones = ir.Ones(style=f"\\sum_{node.var}", span=node.span)      # printed back as the sum it was
            out = ir.MatMul(ir.Transpose(ones, "\\top", span=node.span), column, span=node.span)
            if node.coefficient is not None:
                out = ir.MatMul(self.expr(node.coefficient), out, span=node.span)
            return out
        raise self.err(f"a sum over entries (\\sum_{node.var}) is read only as \\sum_{node.var} (the entry {node.var} of a "
                       f"column) \\nabla_{{W}} h_{node.var}^{{(t)}} (a gradient of entry {node.var})", node, SUM_OVER_ENTRIES)

    def _DotsSum(self, node: DotsSum):
        """q_1^2 + \\dots + q_n^2 (CS231n): the term at 1, \\dots, the same term at the size n of the column; read
        as \\sum_i q_i^2, the size checked once the context is known.  Anything else is an error."""
        used = set()

        def letters(n):
            if isinstance(n, Name):
                used.add(n.base)
            for c in syntax_children(n):
                letters(c)
        letters(node.first)
        letters(node.last)
        free = [x for x in ENTRY_LETTERS if not self.known(x) and x not in self.scope.initial and x not in used]
        sizes: set = set()
        if free:
            body = _at_entry(node.first, node.last, free[0], sizes)
        if not free or body is None or len(sizes) != 1:
            raise self.err("a sum written with \\dots is read only as the term at 1, \\dots, the same term at the "
                           "column's size n (q_1^2 + \\dots + q_n^2)", node,
                           "write it as a sum over entries, \\sum_i q_i^2 for q_1^2 + \\dots + q_n^2")
        (size,) = sizes
        return self._entry_sum(TimeSum(free[0], None, None, body, True, span=node.span), size=size)

    def _Apply(self, node: ir.Apply):
        if node.function not in ir.BUILTIN_FUNCTIONS and node.function not in self.scope.functions:
            f = node.function
            raise self.err(f"undeclared function {f}", node, f"declare it: {f} : \\mathbb{{R}} \\to \\mathbb{{R}} "
                           "(ReLU is \\operatorname{ReLU}(z) or \\max(0, z))")
        return ir.Apply(node.function, self.expr(node.arg), node.derivative, span=node.span, style=node.style)

    def _Power(self, node: ir.Power):
        return ir.Power(self.expr(node.arg), node.exponent, node.prefix, span=node.span)

    def _Softmax(self, node):
        return ir.Softmax(self.expr(node.arg), span=node.span)

    def _Diag(self, node):
        return ir.Diag(self.expr(node.arg), span=node.span)

    def _Block(self, node: ir.Block):
        return ir.Block(tuple(tuple(self.expr(e) for e in row) for row in node.rows), span=node.span, style=node.style)

    # ---------------------------------------------------------------- targets

    def target(self, node: Name) -> tuple[str, ir.Time | None]:
        """The name a declaration or definition introduces, and its step (x_t -> ("x", t))."""
        if isinstance(node, Sup) and node.transpose is None:
            # A target introduces its name: W^{(1)} is a layer's name, except h^{(0)} of a sequence h
            # (its initial state, as h_0).
            node = superscript_name(node, self.scope.sequences | self.scope.initial,
                                    lambda name: not name.endswith("^{(0)}"), self.scope.per_step) or node
        node = unpair(node)
        if not isinstance(node, Name) or node.primes:
            raise self.err("the left-hand side of := or \\in must be a single name", node)
        key = name_key(node.base, node.decoration)
        if node.sub is None:
            return key, None
        if isinstance(node.sub, Name) and node.sub.sub is None and node.sub.base == "t":
            return key, ir.Time("t")
        if isinstance(node.sub, ir.Add) and isinstance(node.sub.terms[0], Name) and node.sub.terms[0].base == "t":
            raise self.err(f"a quantity is defined at the step t: {key}_t := ..., not at {sub_text(node.sub) or 't + k'}",
                           node, "write the step before as t - 1 on the right-hand side")
        if isinstance(node.sub, ir.Number) and node.sub.value == 0 and key in self.scope.sequences:
            return key, ir.Time(None, 0)
        return full_name(key, node.sub), None


_SUM_BODY = ("the term of \\sum_{v} is entry {v} of a column: q_{v}^2, (W \\cdot x)_{v}^2, 2 x_{v} y_{v} (its sum is "
             "\\mathbf{{1}}^\\top c, c the column of those entries); or write the sum as a matrix product, e.g. "
             "q^\\top q for \\sum_{v} q_{v}^2")


def _at_entry(first, last, letter: str, sizes: set):
    """first (the term at 1) and last (the same term at n) as one term written with the entry `letter`, every
    place where first has 1 and last a letter n (collected in `sizes`) written `letter`; None when the two
    differ otherwise (or nowhere)."""
    import dataclasses

    def go(a, b):
        if a == b and type(a) is type(b):
            return a
        if isinstance(a, ir.Number) and a.value == 1 and isinstance(b, Name) and b.sub is None and not b.primes \
                and b.decoration is None:
            sizes.add(b.base)
            return Name(letter, span=b.span)
        if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
            parts = [go(x, y) for x, y in zip(a, b)]
            return None if any(p is None for p, x in zip(parts, a) if x is not None) else tuple(parts)
        if type(a) is not type(b) or not dataclasses.is_dataclass(a) or isinstance(a, ir.Number):
            return None
        changes = {}
        for f in dataclasses.fields(a):
            x, y = getattr(a, f.name), getattr(b, f.name)
            if not f.compare or x == y:
                continue
            got = go(x, y)
            if got is None:
                return None
            changes[f.name] = got
        return dataclasses.replace(a, **changes)

    out = go(first, last)
    return out if out is not None and sizes else None


def to_text(node) -> str:
    """A syntax node as LaTeX, for a message (a name with its superscript)."""
    if isinstance(node, Name):
        return name_key(node.base, node.decoration)
    if isinstance(node, Sup) and isinstance(node.base, Name):
        v = node.value
        inner = f"({sub_text(v.expr)})" if isinstance(v, Paren) and sub_text(v.expr) is not None else \
            v.base if isinstance(v, Name) else "..."
        return f"{to_text(node.base)}^{{{inner}}}"
    return "this"


def number(value) -> ir.Number:
    return ir.Number(Fraction(value))


# ---------------------------------------------------------------- definitions written with =

def definitions_written_eq(statements: list, scope: Scope) -> list:
    """The statements `name = expr` that define `name` (textbooks write 10.8 as `a^{(t)} = b + W h^{(t-1)} + ...`,
    CS231n `q = W \\cdot x`), turned into definitions in place; returns them.

    The rule (docs/derivation-format.md): a statement of exactly two members whose left-hand side is one
    name (with a step, written h_t or h^{(t)}) that the context neither declares nor defines -- anywhere,
    with `\\in` or `:=`, or with an earlier `=` -- is a definition.  A line about a name that is declared or
    defined stays a claim; a run of declared letters (`Wh`) is a product, a size (H) or T is no quantity,
    and a name that by convention is a derivative's (dh for a quantity h, \\delta^{h}_t) is never defined so.
    The reader checks afterwards that the right-hand side is a forward computation (no derivative, no
    name for one): `dh_t = W^T dy_t` with dh_t undefined is an error, never a definition.
    """
    probe = Scope()
    per_step = scope.per_step
    probe.per_step = set(per_step)
    probe.sequences = set(scope.sequences) | {k for st in statements if st.kind == "chain" and len(st.parts) == 2
                                              for k in [sequence_key(st.parts[0], per_step)] if k}
    probe.initial = set(scope.initial)
    resolver = Resolver(probe, lambda msg, node, hint="": ValueError(msg))

    def key(node):
        try:
            name, time = resolver.target(node)
        except ValueError:
            return None
        return None if time is not None and time.var is None else name     # h_0: no definition of h

    sizes = {x for st in statements if st.kind == "declaration" for d in st.parts[1][1]
             for x in re.findall(r"[A-Za-z]+", str(d))}
    known = set(scope.functions) | sizes | {"T"}
    for st in statements:
        if st.kind in ("declaration", "definition"):
            known.add(sequence_key(st.parts[0], per_step) or key(st.parts[0]))
    indices = {key(st.parts[0]) for st in statements if st.kind == "declaration" and st.parts[1][0] == "index"}
    letters = Scope()
    letters.names = {k: "matrix" for k in known if k}
    found = []
    for st in statements:
        if st.kind != "chain":
            continue
        lhs = _named_arguments(st.parts[0]) or st.parts[0]
        if isinstance(lhs, Name):
            if lhs.primes or (isinstance(lhs.sub, tuple) and lhs.sub[0] != "pair"):
                continue
        elif superscript_name(lhs, probe.sequences, per_step=per_step) is None:
            continue
        plain = unpair(superscript_name(lhs, probe.sequences, per_step=per_step) or lhs)
        if isinstance(plain, Name) and plain.sub is not None and name_key(plain.base, plain.decoration) in \
                probe.sequences and not (isinstance(plain.sub, Name) and plain.sub.base == "t"
                                         and plain.sub.sub is None):
            continue                                  # h_T = ... of a sequence h: a claim at a step
        if isinstance(plain, Name) and isinstance(plain.sub, Name) and plain.sub.sub is None \
                and name_key(plain.base, plain.decoration) in known and key(plain.sub) in indices:
            continue                                  # S_y of a quantity S at a declared index y: an entry, a claim
        k = sequence_key(lhs, per_step) or key(lhs)
        if k is None or k in known or len(Resolver(letters, None).split_letters(k) or []) > 1:
            continue
        if (k.startswith("d") and k[1:] in known | probe.sequences) or k.startswith(("\\delta", "\\Delta")):
            continue                                  # dh, \delta^{h}: a derivative's name, by convention
        known.add(k)
        letters.names[k] = "matrix"
        if len(st.parts) > 2:
            # L = \sum_t L^{(t)} = -\sum_t \log p^{(t)} (Deep Learning 10.12-10.14): the first link defines L,
            # the rest of the chain is claimed
            st.rest = Statement("chain", st.parts[1:], (st.parts[1].span or st.span)[:1] + st.span[1:],
                                " = ".join(p.strip() for p in split_top_level(st.latex, "=")[1:]))
            st.rest.after_definition = True
        st.kind, st.written_eq, st.parts = "definition", True, (lhs, st.parts[1])
        found.append(st)
    return found


def per_step_names(statements: list) -> set[str]:
    """The names X written both without steps and with a step superscript X^{(t)} as what a statement
    introduces (Deep Learning 10.13: L = \\sum_t L^{(t)}, the total loss and its term at step t): X^{(t)} is
    then a sequence of its own, X^{(\\cdot)}, and X the quantity without steps.

    X without steps counts when it is declared or defined (\\in, :=), or is the left-hand side of a line
    `X = ...` whose right-hand side writes X^{(...)}; X^{(t)} when it is declared or defined, or is the
    left-hand side of a line `X^{(t)} = ...`.  A sequence h^{(t)} beside a line `h = \\tanh(a)` about step t
    is not such a pair (its right-hand side does not write h^{(t)})."""
    def stepped(node):
        if isinstance(node, Sup) and node.kind == "expr" and node.sub is None and node.transpose is None \
                and isinstance(node.base, Name) and node.base.sub is None and not node.base.primes \
                and isinstance(node.value, Paren) and node.value.sub is None and isinstance(node.value.expr, Name) \
                and node.value.expr.base == "t" and node.value.expr.sub is None:
            return name_key(node.base.base, node.base.decoration)
        return None

    def plain(node):
        if isinstance(node, Name) and node.sub is None and not node.primes:
            return name_key(node.base, node.decoration)
        return None

    def writes_stepped(e, key):
        found = []

        def visit(n):
            if isinstance(n, Sup) and isinstance(n.base, Name) and n.base.sub is None \
                    and name_key(n.base.base, n.base.decoration) == key and isinstance(n.value, Paren):
                found.append(n)
            for c in syntax_children(n):
                visit(c)
        visit(e)
        return bool(found)

    with_steps, without = set(), set()
    for st in statements:
        if st.kind in ("declaration", "definition") or st.kind == "chain":
            target = st.parts[0]
            k = stepped(target)
            if k is not None:
                with_steps.add(k)
            k = plain(target)
            if k is not None and (st.kind != "chain" or writes_stepped(st.parts[1], k)):
                without.add(k)
    return with_steps & without


def _named_arguments(node):
    """f in `f(x, W)` or `f(q)`, a function of named arguments on the left of `=` (CS231n), else None: the
    definition is of the value f (the arguments name what it depends on; ∂f/∂W differentiates it)."""
    if not (isinstance(node, Juxt) and not node.dot and isinstance(node.left, Name) and node.left.sub is None
            and not node.left.primes):
        return None
    args = node.right.parts if isinstance(node.right, Args) else \
        (node.right.expr,) if isinstance(node.right, Paren) and node.right.sub is None else ()
    if args and all(isinstance(a, Name) or (isinstance(a, Sup) and superscript_name(a, _Everything()))
                    for a in args):
        return node.left
    return None


# ---------------------------------------------------------------- two columns side by side in a definition

def _replace(e: ir.Expr, old: ir.Expr, new: ir.Expr) -> ir.Expr:
    if e is old:
        return new
    kids = e.children()
    return e.rebuild(tuple(_replace(k, old, new) for k in kids)) if kids else e


def hadamard_juxtapositions(ctx: ir.Context) -> dict:
    """Definitions where two columns of one size side by side (Graves 2013, (9): `c_t = f_t c_{t-1} + ...`)
    are read as their element-wise product: {name: [the products so read]}.

    Only in a definition, only where the matrix product does not compose (n x 1 times n x 1 with n not 1
    for every size); the product in a claim stays ill-typed (a missing ^T is reported), and every claim
    that reads such a definition says so in its reading (docs/derivation-format.md).  It is printed back
    as `f_t \\circ c_{t-1}`, which means the same in any context.
    """
    import sympy as sp

    from ..form.shapes import IllTyped, Typer, is_scalar_shape

    class Recording(Typer):
        def _MatMul(self, e):
            try:
                return super()._MatMul(e)
            except IllTyped as x:
                if x.node is e and not hasattr(x, "factors"):
                    x.factors = (self.infer(e.left), self.infer(e.right))
                raise

    read: dict = {}
    budget = sum(1 for d in ctx.definitions.values() for n in d.expr.walk() if isinstance(n, ir.MatMul))
    for _ in range(budget):
        changed = False
        for name in list(ctx.definitions):
            try:
                # a fresh typer from each definition: its own earlier step is then its initial state's shape
                Recording(ctx).quantity(name)
            except IllTyped as x:
                node, factors = x.node, getattr(x, "factors", None)
                if factors is None or not isinstance(node, ir.MatMul) or node.dot or node.norm is not None:
                    continue
                # the product may sit in a definition typed on the way (c_t's, typed from h_t's)
                owner = next((n for n, d in ctx.definitions.items() if any(e is node for e in d.expr.walk())), None)
                (r1, c1), (r2, c2) = factors
                if owner is None or any(sp.sympify(v).atoms(sp.Dummy) for v in (r1, c1, r2, c2)) \
                        or sp.expand(sp.sympify(r1) - r2) != 0 or sp.sympify(c1) != 1 or sp.sympify(c2) != 1 \
                        or is_scalar_shape(factors[0]):
                    continue
                d = ctx.definitions[owner]
                d.expr = _replace(d.expr, node, ir.Hadamard(node.left, node.right, "circ", span=node.span))
                read.setdefault(owner, []).append(node)
                changed = True
                break
        if not changed:
            break
    return read
