"""Print the intermediate form back as LaTeX, in the author's own notation.

The inverse of parsing: `parse(print(x)) == x` (tested on every claim and on
random expressions).  Transposes, products and Hadamard products keep the
spelling the author used; parentheses are the fewest the grammar needs.
Repairs and diagnostics are shown through this printer, never as SymPy's repr.
"""
from __future__ import annotations

from fractions import Fraction

from . import ir

# the key of a per-step term X^{(t)} beside X (resolve.py; written here to keep the printer free of the resolver)
PER_STEP = "^{(\\cdot)}"

# Binding strength of each level of the grammar: sum < term (\circ, \sum) < product < postfix < atom.
SUM, TERM, PRODUCT, POSTFIX, ATOM = range(5)


def name_latex(name: str, time: ir.Time | None = None) -> str:
    """W_xh -> W_{xh}; ell-like names keep their command; at a step: h_t, \\delta_{h,t}, W^{(1)}_t."""
    if name.endswith(PER_STEP):          # L^{(t)}, a total's term at a step (resolve.PER_STEP)
        return f"{name[:-len(PER_STEP)]}^{{({time if time is not None else 't'})}}"
    if "_" not in name:
        return name + (time_latex(time) if time is not None else "")
    base, sub = name.split("_", 1)
    if time is not None:                 # a name with a subscript, at a step: \delta_{h,t}
        return f"{base}_{{{sub},{time}}}"
    return f"{base}_{sub}" if len(sub) == 1 else f"{base}_{{{sub}}}"


def time_latex(t: ir.Time) -> str:
    text = str(t)
    return f"_{text}" if len(text) == 1 else f"_{{{text}}}"


def ends_in_superscript(e: ir.Expr) -> bool:
    """A quantity printed with a superscript of its own (h^{(t)}, W^{(1)}, \\delta^{h}): another ^ after it
    would be a double superscript."""
    return isinstance(e, ir.Ref) and (e.sup or ("^" in e.name and e.time is None))


def merged_superscript(e: ir.Ref, extra: str) -> str | None:
    """h^{(t-1)\\top}, W^{(1)T}: a step or a layer and a transpose in one superscript, as the author writes it."""
    if e.name.endswith(PER_STEP) and e.time is not None:
        return f"{e.name[:-len(PER_STEP)]}^{{({e.time}){extra}}}"
    if e.sup:
        return f"{name_latex(e.name)}^{{({e.time}){extra}}}"
    if e.name.endswith(")}") and e.time is None:
        return f"{e.name[:-1]}{extra}}}"
    return None


# How each spelling of ReLU and of its derivative 1[x > 0] prints (ir.Apply.style).
_INDICATOR = {"\\mathbb{1}[": ("\\mathbb{1}[", "]"), "\\mathbb{1}(": ("\\mathbb{1}(", ")"),
              "\\mathbb{I}[": ("\\mathbb{I}[", "]"), "\\mathbb{I}(": ("\\mathbb{I}(", ")"),
              "\\mathbb{1}_": ("\\mathbb{1}_{", "}"), "\\mathbb{I}_": ("\\mathbb{I}_{", "}"), "1_": ("1_{", "}"),
              "\\mathbb{1}{": ("\\mathbb{1}\\{", "\\}"), "\\mathbb{I}{": ("\\mathbb{I}\\{", "\\}")}
# A condition between steps also as \mathbf{1}_{t = T} (the one-hot column's spelling, read as a condition there).
_STEP_INDICATOR = {**_INDICATOR, "\\mathbf{1}_": ("\\mathbf{1}_{", "}"), "\\boldsymbol{1}_": ("\\boldsymbol{1}_{", "}"),
                   "\\bm{1}_": ("\\bm{1}_{", "}"), "\\vec{1}_": ("\\vec{1}_{", "}")}


SUM_OVER = "\\sum_"           # the style of the ones of a sum over entries: \sum_i (resolve._entry_sum)


def is_entry_sum(e: ir.Expr) -> bool:
    return isinstance(e, ir.MatMul) and isinstance(e.left, ir.Transpose) and isinstance(e.left.arg, ir.Ones) \
        and e.left.arg.style.startswith(SUM_OVER)


def level(e: ir.Expr) -> int:
    if isinstance(e, ir.Transpose) and e.implied:
        return level(e.arg)             # not written: it binds as what the author wrote
    if isinstance(e, ir.Add):
        return SUM
    if isinstance(e, ir.Neg):
        return SUM
    if isinstance(e, (ir.Hadamard, ir.Sum)):
        return TERM
    if isinstance(e, ir.MatMul) and e.norm:
        return POSTFIX                  # \|x\|^2 carries its own superscript
    if is_entry_sum(e):
        return TERM                     # \sum_i q_i^2, as a sum over steps
    if isinstance(e, ir.Apply) and e.style == "bare" and bare_argument(e.arg):
        return POSTFIX                  # (\log p)^2: a superscript would otherwise seem to bind to p
    if isinstance(e, ir.MatMul):
        return TERM if isinstance(e.right, ir.Sum) else PRODUCT
    if isinstance(e, (ir.Transpose, ir.Power)) and not (isinstance(e, ir.Power) and e.prefix):
        return POSTFIX
    if isinstance(e, ir.Number) and e.value < 0:
        return SUM
    if isinstance(e, ir.Apply) and (e.function not in ir.BUILTIN_FUNCTIONS or e.style == "H"):
        # f(x) is a name beside a parenthesis: a superscript after it would bind to the parenthesis.
        return POSTFIX
    if isinstance(e, ir.Deriv) and e.style != "frac":
        return POSTFIX                  # (\nabla_w L)^\top: a superscript must not seem to bind to L
    if isinstance(e, ir.Power) and e.prefix:
        return POSTFIX
    return ATOM


def bare_argument(arg: ir.Expr) -> bool:
    """An argument that can follow a function without parentheses and be read back as its argument:
    one factor (a name, \\sigma(x), (p)_k), never a product or a superscripted factor."""
    if isinstance(arg, ir.Ref):
        return not ends_in_superscript(arg)
    return isinstance(arg, (ir.Component, ir.Softmax, ir.Diag)) or \
        (isinstance(arg, ir.Apply) and arg.function in ir.BUILTIN_FUNCTIONS and arg.style in (None, "bare")
         and arg.function not in ("relu", "ind"))


class Printer(ir.Visitor):
    def __init__(self):
        self.spans: dict = {}

    def __call__(self, e: ir.Expr) -> str:
        return self.p(e)

    def at(self, e: ir.Expr, least: int) -> str:
        text = self.p(e)
        return text if level(e) >= least else f"({text})"

    def p(self, e: ir.Expr) -> str:
        return self.visit(e)

    def _Ref(self, e: ir.Ref) -> str:
        if e.sup and e.time is not None and "_" not in e.name and not e.name.endswith(PER_STEP):
            return f"{name_latex(e.name)}^{{({e.time})}}"
        return name_latex(e.name, e.time)

    def _Ones(self, e: ir.Ones) -> str:
        return "\\mathbf{1}" if e.style.startswith(SUM_OVER) else e.style

    def _Number(self, e: ir.Number) -> str:
        v = e.value
        if v.denominator == 1:
            return str(v.numerator)
        return f"\\frac{{{v.numerator}}}{{{v.denominator}}}"

    def _Add(self, e: ir.Add) -> str:
        out = []
        for n, term in enumerate(e.terms):
            if isinstance(term, ir.Neg):
                body = self.at(term.arg, TERM)
                out.append(f"- {body}" if n else f"-{body}")
            else:
                body = self.at(term, TERM)
                out.append(f"+ {body}" if n else body)
        return " ".join(out)

    def _Neg(self, e: ir.Neg) -> str:
        return "-" + self.at(e.arg, TERM)

    def _MatMul(self, e: ir.MatMul) -> str:
        if e.norm and isinstance(e.left, ir.Transpose) and e.left.arg == e.right:
            inner, sub = self.p(e.right), "_2" if e.norm.endswith("_2") else ""
            if e.norm.startswith("\\lVert"):
                return f"\\lVert {inner} \\rVert{sub}^2"
            return f"\\|{inner}\\|{sub}^2"
        summed = self.entry_sum(e)
        if summed is not None:
            return summed
        left = self.at(e.left, PRODUCT)
        if (isinstance(e.right, ir.Sum) or is_entry_sum(e.right)) and not e.dot:
            return f"{left} {self.p(e.right)}"
        right = self.at(e.right, POSTFIX)
        return f"{left} \\cdot {right}" if e.dot else f"{left} {right}"

    def entry_sum(self, e: ir.MatMul) -> str | None:
        """1^T c read from \\sum_i (W \\cdot x)_i^2 (resolve._entry_sum marks the ones so): printed back as a sum
        over the entries, its term written with the entry i; None where the term has no such writing here."""
        ones = e.left.arg if isinstance(e.left, ir.Transpose) else None
        if not (isinstance(ones, ir.Ones) and ones.style.startswith(SUM_OVER)):
            return None
        letter = ones.style[len(SUM_OVER):]
        term = self.entry(e.right, letter)
        return None if term is None else f"\\sum_{letter} {term}"

    def entry(self, e: ir.Expr, i: str) -> str | None:
        """Entry i of a column, as an entry-wise line writes it: q_i, (W \\cdot x)_i^2, x_i y_i, 2 q_i."""
        if isinstance(e, ir.Ref) and e.time is None and "_" not in e.name and not e.name.startswith("\\"):
            return f"{name_latex(e.name)}_{i}"
        if isinstance(e, ir.Power) and not e.prefix and 0 <= e.exponent < 10:
            inner = self.entry(e.arg, i)
            return None if inner is None else f"{inner}^{e.exponent}"
        if isinstance(e, ir.Hadamard) and e.op != "*":
            a, b = self.entry(e.left, i), self.entry(e.right, i)
            return None if a is None or b is None else f"{a} {b}"
        if isinstance(e, ir.MatMul) and isinstance(e.left, ir.Number) and e.left.value > 0 and not e.norm:
            inner = self.entry(e.right, i)
            return None if inner is None else f"{self.p(e.left)} {inner}"
        if isinstance(e, (ir.MatMul, ir.Add)) and not (isinstance(e, ir.MatMul) and e.norm):
            return f"({self.p(e)})_{i}"
        return None

    def _Hadamard(self, e: ir.Hadamard) -> str:
        op = "*" if e.op == "*" else f"\\{e.op}"
        return f"{self._factor(e.left, TERM)} {op} {self._factor(e.right, PRODUCT)}"

    def _factor(self, x: ir.Expr, least: int) -> str:
        """An operand of ∘: a matrix product in parentheses, (W^T δ) ∘ f'(z), although the grammar binds the
        product first: the reader of W^T δ ∘ f'(z) may well take it as W^T (δ ∘ f'(z))."""
        if isinstance(x, ir.MatMul) and not x.norm and not isinstance(x.left, ir.Number):
            return f"({self.p(x)})"
        return self.at(x, least)

    def _Div(self, e: ir.Div) -> str:
        return f"\\frac{{{self.p(e.num)}}}{{{self.p(e.den)}}}"

    def _Transpose(self, e: ir.Transpose) -> str:
        if e.implied:                   # the transpose a declared numerator layout reads: not written
            return self.p(e.arg)
        if ends_in_superscript(e.arg):
            merged = merged_superscript(e.arg, e.style) if not e.style.startswith("{") else None
            return merged or f"({self.p(e.arg)})^{e.style}"
        return self.at(e.arg, ATOM) + "^" + e.style

    def _Power(self, e: ir.Power) -> str:
        if e.prefix and isinstance(e.arg, ir.Apply):
            fn = self._function(e.arg)
            return f"{fn}^{e.exponent}{self._argument(e.arg.arg)}"
        exponent = str(e.exponent) if 0 <= e.exponent < 10 else f"{{{e.exponent}}}"
        if ends_in_superscript(e.arg):
            return f"({self.p(e.arg)})^{exponent}"
        return self.at(e.arg, ATOM) + "^" + exponent

    def _function(self, e: ir.Apply) -> str:
        head = ir.BUILTIN_FUNCTIONS.get(e.function, name_latex(e.function))
        if e.style and e.style.startswith("\\") and e.style not in _INDICATOR:
            # \operatorname{ReLU}, \mathrm{relu}, \text{ReLU}, \operatorname{H}; \operatorname{g} of a declared g
            head = e.style if "{" in e.style else f"{e.style}{{{e.function}}}"
        elif e.style == "H":
            head = "H"
        return head + "'" * e.derivative

    def _argument(self, arg: ir.Expr) -> str:
        return f"({self.p(arg)})"

    def _Apply(self, e: ir.Apply) -> str:
        if e.function == "relu" and not e.derivative and e.style and e.style.startswith("max"):
            opening, closing = ("\\{", "\\}") if e.style.endswith("{") else ("(", ")")
            pair = f"0, {self.p(e.arg)}" if e.style.startswith("max{") or e.style == "max" else f"{self.p(e.arg)}, 0"
            return f"\\max{opening}{pair}{closing}"
        if e.style == "bare" and bare_argument(e.arg):
            return f"{self._function(e)} {self.p(e.arg)}"          # \log p, \log \sigma(w^T x), as written
        if e.function == "ind" and not e.derivative and (e.style in _INDICATOR or e.style is None):
            opening, closing = _INDICATOR.get(e.style, _INDICATOR["\\mathbb{1}["])
            return f"{opening}{self.p(e.arg)} > 0{closing}"
        return self._function(e) + self._argument(e.arg)

    def _StepIf(self, e: ir.StepIf) -> str:
        opening, closing = _STEP_INDICATOR.get(e.style, _INDICATOR["\\mathbb{1}["])
        return f"{opening}{e.left} {e.relation} {e.right}{closing}"

    def _Softmax(self, e: ir.Softmax) -> str:
        return f"\\operatorname{{softmax}}({self.p(e.arg)})"

    def _Diag(self, e: ir.Diag) -> str:
        return f"\\operatorname{{diag}}({self.p(e.arg)})"

    def _Component(self, e: ir.Component) -> str:
        if e.style == "sub" and isinstance(e.arg, ir.Ref) and e.arg.time is None and "_" not in e.arg.name \
                and not ends_in_superscript(e.arg):
            return f"{self._Ref(e.arg)}_{{{self._Ref(e.index)}}}"           # q_{k}, as written
        return f"({self.p(e.arg)})_{{{self._Ref(e.index)}}}"

    def _MatrixEntry(self, e: ir.MatrixEntry) -> str:
        style = e.style
        if style.startswith("deriv-") and isinstance(e.arg, ir.Deriv):
            # ∂s/∂W_{i,j}: entry [i, j] of ∂s/∂W, printed as written (the variable's entry)
            d = e.arg
            wrt = ir.MatrixEntry(d.wrt, e.row, e.col, style=style[len("deriv-"):])
            return self._Deriv(ir.Deriv(d.of, wrt, style=d.style))
        row, col = self._Ref(e.row), self._Ref(e.col)
        sub = f"{row}{col}" if style == "run" else f"{row},{col}"
        if isinstance(e.arg, ir.Ref) and e.arg.time is None and "_" not in e.arg.name \
                and not ends_in_superscript(e.arg):
            return f"{self._Ref(e.arg)}_{{{sub}}}"
        return f"({self.p(e.arg)})_{{{row},{col}}}"

    def _Kronecker(self, e: ir.Kronecker) -> str:
        a, b = self._Ref(e.a), self._Ref(e.b)
        if e.style == "\\delta":
            return f"\\delta_{{{a}{b}}}"
        if e.style == "\\delta,":
            return f"\\delta_{{{a},{b}}}"
        if e.style.endswith(("[", "(")):
            return f"{e.style}{a} = {b}{']' if e.style.endswith('[') else ')'}"
        return f"{e.style}{{{a}={b}}}"

    def _Basis(self, e: ir.Basis) -> str:
        index = self._Ref(e.index)
        if e.style == "e":
            return f"e_{{{index}}}"
        if e.style == "1":
            return f"1_{{{index}}}"
        if "|" in e.style:                   # \mathbf{1}_{i = y^{(t)}}
            head, letter = e.style.split("|", 1)
            return f"{head}_{{{letter} = {index}}}"
        return f"1_{{{e.style} = {index}}}"

    def _Sum(self, e: ir.Sum) -> str:
        body = self.at(e.body, TERM)
        if e.short:
            head = f"\\sum_{e.var}" if len(e.var) == 1 else f"\\sum_{{{e.var}}}"
        else:
            head = f"\\sum_{{{e.var}={e.lo}}}^{{{e.hi}}}"
        return f"{head} {body}"

    def _Deriv(self, e: ir.Deriv) -> str:
        if e.style == "nabla":
            return f"\\nabla_{{{self.p(e.wrt)}}} {self.at(e.of, ATOM)}"
        if e.style == "slash":
            return f"\\partial {self.at(e.of, ATOM)} / \\partial {self.at(e.wrt, ATOM)}"
        return f"\\frac{{\\partial {self.p(e.of)}}}{{\\partial {self.p(e.wrt)}}}"

    def _Block(self, e: ir.Block) -> str:
        if e.style == "list" and all(len(row) == 1 for row in e.rows):
            return "[" + ", ".join(self.p(row[0]) for row in e.rows) + "]"
        rows = " \\\\ ".join(" & ".join(self.p(x) for x in row) for row in e.rows)
        return f"\\begin{{bmatrix}} {rows} \\end{{bmatrix}}"


def to_latex(e: ir.Expr) -> str:
    return Printer()(e)


def claim_latex(lhs: ir.Expr, rhs: ir.Expr) -> str:
    return f"{to_latex(lhs)} = {to_latex(rhs)}"


def number(value) -> ir.Number:
    return ir.Number(Fraction(value))
