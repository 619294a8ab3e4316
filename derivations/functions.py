"""The functions and matrix operations the note writes, as SymPy objects.

Every claim in `derivations.note` is written with these helpers, so that one
encoding serves three readers: the concrete engine (explicit small matrices),
the all-sizes engine (index notation) and the code generator (NumPy printing).

* `f`, `fp`   -- Lemma 1's "any differentiable element-wise f" and its
                 derivative.  `f` is an undefined function whose `fdiff` is the
                 undefined `fp`, so SymPy's chain rule produces `fp(z)` exactly
                 where the note writes f'(z).
* `sigma`     -- the logistic sigmoid.  Its derivative is declared as
                 sigma*(1 - sigma) (the note's Comment 2); the verifier proves
                 that declaration against 1/(1 + exp(-x)) before relying on it.
                 Keeping sigma opaque stops SymPy from expanding exponentials
                 of exponentials when it differentiates an unrolled RNN.
"""
from __future__ import annotations

import itertools

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.matrices.expressions.hadamard import HadamardProduct


class fp(sp.Function):
    """f' -- the derivative of the generic element-wise function `f`."""


class f(sp.Function):
    """A generic differentiable element-wise function (Lemma 1, Lemma 2)."""

    def fdiff(self, argindex=1):
        return fp(self.args[0])


def sigmoid_definition(x):
    """The forward pass as the note writes it: 1 / (1 + e^{-x})."""
    return 1 / (1 + sp.exp(-x))


class sigma(sp.Function):
    """The logistic sigmoid with the derivative of Comment 2 (proved there)."""

    def fdiff(self, argindex=1):
        s = sigma(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sigmoid_definition(x)

    def _eval_evalf(self, prec):
        return sigmoid_definition(self.args[0])._eval_evalf(prec)


class tanh(sp.tanh):
    """tanh as the engines build it (semantics.apply_function): SymPy's, without the evaluation it tries
    on every construction.

    SymPy's tanh asks of a symbolic argument whether it is zero or a multiple of iπ each time it is
    built, through the assumption system; the structural engine builds (and rebuilds, by substitution
    and differentiation) tanh of long sums, and the explicit engine's compiler rebuilds every
    expression once more: those questions were a third of the time of the stacked RNN's claims.
    Kept: tanh of a number, and tanh(-x) = -tanh(x), so that x and -x meet.  Its derivative is
    1 - tanh^2 in this same class.  Numbers print and compile as SymPy's tanh.  Fewer rewritings
    never make a false equality true.
    """

    @classmethod
    def eval(cls, arg):
        if arg.is_Number:
            if not arg.is_finite:
                return sp.tanh.eval(arg)          # ±1, or nan
            if arg.is_zero:
                return sp.Integer(0)
            return -cls(-arg) if arg.is_negative else None
        if arg.could_extract_minus_sign():
            return -cls(-arg)
        return None

    def fdiff(self, argindex=1):
        return 1 - self.func(self.args[0]) ** 2


class indicator(sp.Function):
    """1[x > 0]: ReLU's derivative, and ReLU itself is x * 1[x > 0] (exact, at every x).

    Its derivative is 0, which is true at every x != 0; at the kink x = 0 nothing is
    differentiable and no number is ever taken there (the real counterpart is NaN
    within 1e-(digits/2) of 0, and a point where a value is NaN is never a counterexample).
    1[x > 0]^n = 1[x > 0] (n >= 1) is built in, so that ReLU's identities hold exactly.
    """

    @classmethod
    def eval(cls, x):
        if x.is_extended_positive:
            return sp.Integer(1)
        if x.is_extended_negative:
            return sp.Integer(0)
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    def _eval_power(self, exponent):
        if exponent.is_Integer and exponent > 0:
            return self
        return None


def relu(x):
    """max(0, x) = x * 1[x > 0]."""
    return x * indicator(x)


def sigma_prime(x):
    """sigma'(x) written as in Comment 2: sigma(x) - sigma(x)^2."""
    return sigma(x) - sigma(x) ** 2


_x = sp.Dummy("x")


def elementwise(fn, M):
    """fn applied to every entry of the matrix expression M (the note's f(Wh))."""
    return ElementwiseApplyFunction(sp.Lambda(_x, fn(_x)), M)


def hadamard(*Ms):
    """The note's u∘v (element-wise product)."""
    return HadamardProduct(*Ms)


def diag(u):
    """diag(u): the square matrix with the vector u on its diagonal."""
    return DiagMatrix(u)


def block_row(*Ms):
    """[A B]: matrices side by side."""
    return sp.BlockMatrix([list(Ms)])


def block_col(*Ms):
    """[A; B]: matrices stacked."""
    return sp.BlockMatrix([[M] for M in Ms])


class _NotePrinter(sp.printing.str.StrPrinter):
    """Prints matrix expressions the way the note writes them: f'(W*h), u∘v."""

    def _print_ElementwiseApplyFunction(self, expr):
        var, body = expr.function.variables[0], expr.function.expr
        if body == sigma_prime(var):
            name = "σ'"
        elif isinstance(body, sp.Function) and body.args == (var,):
            name = self._print(body.func)
        else:
            name = f"({self._print(var)} ↦ {self._print(body)})"
        return f"{name}({self._print(expr.expr)})"

    def _print_BlockMatrix(self, expr):
        rows = expr.blocks.tolist()
        return "[" + "; ".join(" ".join(self._print(b) for b in row) for row in rows) + "]"

    def _print_HadamardProduct(self, expr):
        return "∘".join(self.parenthesize(a, 50) for a in expr.args)


def describe(M) -> str:
    """A short, note-like text for a matrix expression, with its shape."""
    return f"{_NotePrinter().doprint(M)} ({M.shape[0]}×{M.shape[1]})"


def _count(n, noun: str) -> str:
    """"1 column", "2 columns", "m columns" (a symbolic size reads as plural)."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def dot(A, B):
    """The note's "·" (matrix product), failing with both operands named."""
    if A.shape[1] != B.shape[0]:
        raise sp.ShapeError(f"the product {describe(A)} · {describe(B)} does not compose: "
                            f"{_count(A.shape[1], 'column')} against {_count(B.shape[0], 'row')}")
    return A * B


def explain_shape_error(error: sp.ShapeError) -> str:
    """Name the operands of a failed product or sum, whoever raised it.

    `dot` already says which product fails; SymPy's own `A*B` and `A+B` only
    say "Matrices are not aligned", so the operands are read from the frame of
    SymPy's shape check.
    """
    if isinstance(error, IllFormed) or "does not compose" in str(error):
        return str(error)
    tb, operands = error.__traceback__, None
    while tb is not None:
        local = tb.tb_frame.f_locals
        if isinstance(local.get("A"), sp.MatrixExpr) and isinstance(local.get("B"), sp.MatrixExpr):
            operands = ("product", " · ".join(describe(M) for M in (local["A"], local["B"])))
        elif isinstance(local.get("args"), tuple) and local["args"] and all(
                isinstance(a, sp.MatrixExpr) for a in local["args"]):
            operands = ("sum", " + ".join(describe(M) for M in local["args"]))
        tb = tb.tb_next
    if operands is None:
        return f"the shapes do not compose ({error})"
    kind, text = operands
    return f"the {kind} {text} does not compose"


class IllFormed(sp.ShapeError):
    """An expression that cannot mean anything as written: shapes that do not compose, or a line
    of the algorithm that reads the quantity it computes.  Reported as ill-typed."""


def _same(a, b) -> bool:
    return sp.expand(sp.sympify(a) - sp.sympify(b)) == 0


def typecheck(M) -> None:
    """Raise ShapeError, naming the operands, where a product, sum or ∘ inside M does not compose.

    SymPy checks shapes when it multiplies matrices of integer sizes, but not
    for symbolic sizes (H·E against H·1 builds silently) nor for expressions
    built with the constructors (MatMul(A, B)), as edited expressions are.
    """
    if not isinstance(M, sp.MatrixExpr) or isinstance(M, sp.MatrixSymbol):
        return
    for a in M.args:
        typecheck(a)
    if isinstance(M, sp.MatMul):
        mats = [a for a in M.args if isinstance(a, sp.MatrixExpr)]
        for A, B in itertools.pairwise(mats):
            if not _same(A.shape[1], B.shape[0]):
                raise IllFormed(f"the product {describe(A)} · {describe(B)} does not compose: "
                                    f"{_count(A.shape[1], 'column')} against {_count(B.shape[0], 'row')}")
    elif isinstance(M, (sp.MatAdd, HadamardProduct)):
        mats = [a for a in M.args if isinstance(a, sp.MatrixExpr)]
        for B in mats[1:]:
            if not (_same(mats[0].shape[0], B.shape[0]) and _same(mats[0].shape[1], B.shape[1])):
                kind = "sum" if isinstance(M, sp.MatAdd) else "element-wise product"
                sep = " + " if isinstance(M, sp.MatAdd) else " ∘ "
                raise IllFormed(f"the {kind} {sep.join(describe(A) for A in (mats[0], B))} does not compose")
    elif isinstance(M, DiagMatrix):
        u = M.args[0]
        if not (_same(u.shape[1], 1) or _same(u.shape[0], 1)):
            raise IllFormed(f"diag of {describe(u)}, which is not a vector")
