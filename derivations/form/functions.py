"""Every function the engines use, in one place: the symbolic ones they prove with, the ones a file
declares, and the real ones every counterexample is computed with.

* `f`, `fp`   -- Lemma 1's "any differentiable element-wise f" and its
                 derivative.  `f` is an undefined function whose `fdiff` is the
                 undefined `fp`, so SymPy's chain rule produces `fp(z)` exactly
                 where the note writes f'(z).
* `sigma`     -- the logistic sigmoid.  Its derivative is declared as
                 sigma*(1 - sigma) (the note's Comment 2); the claims of the note
                 prove that against 1/(1 + exp(-x)).  Keeping sigma opaque stops
                 SymPy from expanding exponentials of exponentials through time.
* `tanh`, `indicator`, `relu` -- the other element-wise functions of the format.
* `user_function`, `apply_function` -- a declared g : R -> R, and one entry of
                 any function applied.
* the real functions (`real`, `MPMATH_FUNCTIONS`, `MP_APPLY`) -- σ as
                 1/(1 + e^{-x}), tanh, exp, log, 1[x > 0] as numbers, and one
                 concrete instance of a generic f.
"""
from __future__ import annotations

import mpmath
import sympy as sp


class fp(sp.Function):
    """f' -- the derivative of the generic element-wise function `f`."""

    def _eval_evalf(self, prec):
        # No number: f is generic.  (SymPy's default looks its class name up in mpmath, where `fp` is
        # mpmath's float context, not a function: calling it crashed the engines.)
        return None


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


# ---------------------------------------------------------------- the functions a file declares

class UserFunction(sp.Function):
    """Base of the element-wise functions a file declares (f : R -> R); derivative named f'."""


_USER: dict = {}


def user_function(name: str, derivative: int = 0):
    """The SymPy function for a declared f (derivative 0) or f' (1); f is the note's generic `f`."""
    if name == "f":
        return f if derivative == 0 else fp
    key = (name, derivative)
    if key not in _USER:
        if derivative == 0:
            prime = lambda: user_function(name, 1)
            _USER[key] = type(name, (UserFunction,), {"fdiff": lambda self, argindex=1: prime()(self.args[0])})
        else:
            _USER[key] = type(name + "'" * derivative, (UserFunction,), {})
    return _USER[key]


_X = sp.Dummy("x", real=True)
# Derivatives of the built-in functions, as SymPy computes them (σ's is the declared σ(1 - σ)).
_DERIVATIVE = {"sigma": sp.diff(sigma(_X), _X), "tanh": sp.diff(tanh(_X), _X), "exp": sp.exp(_X), "log": 1 / _X,
               "relu": sp.diff(relu(_X), _X), "ind": sp.diff(indicator(_X), _X)}
_FUNCTION = {"sigma": sigma, "tanh": tanh, "exp": sp.exp, "log": sp.log, "relu": relu, "ind": indicator}


def apply_function(name: str, derivative: int, x):
    """One entry of \\sigma(x), \\tanh'(x), f'(x), ... as SymPy; None for a derivative it does not know."""
    if name in _FUNCTION:
        if derivative == 0:
            return _FUNCTION[name](x)
        return _DERIVATIVE[name].xreplace({_X: x}) if derivative == 1 else None
    if derivative > 1:
        return None
    return user_function(name, derivative)(x)


# ---------------------------------------------------------------- the real functions
#
# What every counterexample is computed with: σ as 1/(1 + e^{-x}), tanh, exp, log, 1[x > 0], and for a
# generic f (declared, not defined) one concrete instance.  Engines never prove with these: they give
# numbers.

# A concrete f with f' consistent with it, exact on rationals (used only to evaluate, never to prove).
F_INSTANCE, FP_INSTANCE = "x**3 + x**2 + 2*x + 1", "3*x**2 + 2*x + 2"


def _f_instance(x):
    return x ** 3 + x ** 2 + 2 * x + 1


def _fp_instance(x):
    return 3 * x ** 2 + 2 * x + 2


def real(expr):
    """Generic functions replaced by concrete ones so that an expression has a value; σ keeps 1/(1+e^-x).

    The instance of a generic f has an odd and an even part, so that neither a
    sign slip inside f nor one inside f' can agree by accident.
    """
    expr = sp.sympify(expr).replace(f, _f_instance).replace(fp, _fp_instance)
    for (name, d), cls in list(_USER.items()):
        expr = expr.replace(cls, _f_instance if d == 0 else _fp_instance)
    if expr.has(sp.Derivative, sp.Subs):
        # f'' (a line that differentiates f' again) is the instance's own derivative, 6x + 2.
        expr = expr.replace(lambda x: isinstance(x, sp.Derivative), _derivative_value).doit()
    return expr


def _derivative_value(d):
    """d/dx of an expression, where x may be an expression itself (f'(W h) differentiated at W h)."""
    body, subs = d.expr, {}
    variables = []
    for v, n in d.variable_count:
        if not isinstance(v, sp.Symbol):
            x = sp.Dummy("x")
            body, subs[x] = body.subs(v, x), v
            v = x
        variables.append((v, n))
    return sp.diff(body, *variables).subs(subs)


def real_indicator(x):
    """1[x > 0] as a number; NaN at the kink (within 10^-(digits/2) of 0, so that a value that is 0 but
    computed with rounding counts as 0): a point there is never a counterexample (explicit.py skips it)."""
    if abs(x) <= mpmath.mpf(10) ** (-(mpmath.mp.dps // 2)):
        return mpmath.nan
    return mpmath.mpf(1) if x > 0 else mpmath.mpf(0)


MPMATH_FUNCTIONS = {"sigma": lambda x: 1 / (1 + mpmath.exp(-x)), "indicator": real_indicator}


# The functions `mp_function` evaluates itself, by class (σ and 1[x > 0] as above; tanh SymPy's or ours).
MP_APPLY = {sp.exp: mpmath.exp, sp.log: mpmath.log, sp.tanh: mpmath.tanh, tanh: mpmath.tanh,
             sigma: MPMATH_FUNCTIONS["sigma"], indicator: real_indicator}
