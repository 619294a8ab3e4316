"""Print the intermediate form back as LaTeX, in the author's own notation.

The inverse of parsing: `parse(print(x)) == x` (tested on every claim and on
random expressions).  Transposes, products and Hadamard products keep the
spelling the author used; parentheses are the fewest the grammar needs.
Repairs and diagnostics are shown through this printer, never as SymPy's repr.
"""
from __future__ import annotations

from fractions import Fraction

from .. import ir

# Binding strength of each level of the grammar: sum < term (\circ, \sum) < product < postfix < atom.
SUM, TERM, PRODUCT, POSTFIX, ATOM = range(5)


def name_latex(name: str) -> str:
    """W_xh -> W_{xh}; ell-like names keep their command."""
    if name.startswith("\\") or "_" not in name:
        return name
    base, sub = name.split("_", 1)
    return f"{base}_{sub}" if len(sub) == 1 else f"{base}_{{{sub}}}"


def time_latex(t: ir.Time) -> str:
    text = str(t)
    return f"_{text}" if len(text) == 1 else f"_{{{text}}}"


def level(e: ir.Expr) -> int:
    if isinstance(e, ir.Add):
        return SUM
    if isinstance(e, ir.Neg):
        return SUM
    if isinstance(e, (ir.Hadamard, ir.Sum)):
        return TERM
    if isinstance(e, ir.MatMul):
        return TERM if isinstance(e.right, ir.Sum) else PRODUCT
    if isinstance(e, (ir.Transpose, ir.Power)) and not (isinstance(e, ir.Power) and e.prefix):
        return POSTFIX
    if isinstance(e, ir.Number) and e.value < 0:
        return SUM
    if isinstance(e, ir.Apply) and e.function not in ir.BUILTIN_FUNCTIONS:
        # f(x) is a name beside a parenthesis: a superscript after it would bind to the parenthesis.
        return POSTFIX
    if isinstance(e, ir.Power) and e.prefix:
        return POSTFIX
    return ATOM


class Printer:
    def __init__(self):
        self.spans: dict = {}

    def __call__(self, e: ir.Expr) -> str:
        return self.p(e)

    def at(self, e: ir.Expr, least: int) -> str:
        text = self.p(e)
        return text if level(e) >= least else f"({text})"

    def p(self, e: ir.Expr) -> str:
        method = getattr(self, "_" + type(e).__name__)
        return method(e)

    def _Ref(self, e: ir.Ref) -> str:
        return name_latex(e.name) + (time_latex(e.time) if e.time is not None else "")

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
        left = self.at(e.left, PRODUCT)
        if isinstance(e.right, ir.Sum) and not e.dot:
            return f"{left} {self.p(e.right)}"
        right = self.at(e.right, POSTFIX)
        return f"{left} \\cdot {right}" if e.dot else f"{left} {right}"

    def _Hadamard(self, e: ir.Hadamard) -> str:
        return f"{self.at(e.left, TERM)} \\{e.op} {self.at(e.right, PRODUCT)}"

    def _Div(self, e: ir.Div) -> str:
        return f"\\frac{{{self.p(e.num)}}}{{{self.p(e.den)}}}"

    def _Transpose(self, e: ir.Transpose) -> str:
        return self.at(e.arg, ATOM) + "^" + e.style

    def _Power(self, e: ir.Power) -> str:
        if e.prefix and isinstance(e.arg, ir.Apply):
            fn = self._function(e.arg)
            return f"{fn}^{e.exponent}{self._argument(e.arg.arg)}"
        exponent = str(e.exponent) if 0 <= e.exponent < 10 else f"{{{e.exponent}}}"
        return self.at(e.arg, ATOM) + "^" + exponent

    def _function(self, e: ir.Apply) -> str:
        head = ir.BUILTIN_FUNCTIONS.get(e.function, name_latex(e.function))
        return head + "'" * e.derivative

    def _argument(self, arg: ir.Expr) -> str:
        return f"({self.p(arg)})"

    def _Apply(self, e: ir.Apply) -> str:
        return self._function(e) + self._argument(e.arg)

    def _Softmax(self, e: ir.Softmax) -> str:
        return f"\\operatorname{{softmax}}({self.p(e.arg)})"

    def _Diag(self, e: ir.Diag) -> str:
        return f"\\operatorname{{diag}}({self.p(e.arg)})"

    def _Component(self, e: ir.Component) -> str:
        return f"({self.p(e.arg)})_{{{self._Ref(e.index)}}}"

    def _Basis(self, e: ir.Basis) -> str:
        index = self._Ref(e.index)
        if e.style == "e":
            return f"e_{{{index}}}"
        if e.style == "1":
            return f"1_{{{index}}}"
        return f"1_{{{e.style} = {index}}}"

    def _Sum(self, e: ir.Sum) -> str:
        body = self.at(e.body, TERM)
        if e.short:
            head = f"\\sum_{e.var}" if len(e.var) == 1 else f"\\sum_{{{e.var}}}"
        else:
            head = f"\\sum_{{{e.var}={e.lo}}}^{{{e.hi}}}"
        return f"{head} {body}"

    def _Deriv(self, e: ir.Deriv) -> str:
        return f"\\frac{{\\partial {self.p(e.of)}}}{{\\partial {self.p(e.wrt)}}}"

    def _Block(self, e: ir.Block) -> str:
        rows = " \\\\ ".join(" & ".join(self.p(x) for x in row) for row in e.rows)
        return f"\\begin{{bmatrix}} {rows} \\end{{bmatrix}}"


def to_latex(e: ir.Expr) -> str:
    return Printer()(e)


def claim_latex(lhs: ir.Expr, rhs: ir.Expr) -> str:
    return f"{to_latex(lhs)} = {to_latex(rhs)}"


def number(value) -> ir.Number:
    return ir.Number(Fraction(value))
