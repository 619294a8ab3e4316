"""What a claim says, in a form every engine can check.

A claim's builder returns one or more `Statement`s: the note's right-hand side
(`claimed`, a SymPy matrix expression) and how SymPy computes the truth it must
equal (`truth`).  The truth is never typed in: it is SymPy's own derivative of
a forward definition (`Gradient`, `Jacobian`) or another writing of the same
quantity (`Equals`).

`defined` names the quantities the model defines (h_t = sigma(W_xh X_t +
W_hh h_{t-1}), ...): a matrix symbol mapped to its definition in the other
symbols.  Every engine substitutes the definitions into both sides -- into the
truth after differentiating, so a gradient with respect to a defined symbol is
the derivative at the point the definition gives -- and a counterexample
assigns values to the remaining (free) symbols only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import sympy as sp


@dataclass
class Gradient:
    """d loss / d wrt in denominator layout (same shape as `wrt`), as the note uses."""
    loss: object          # a 1x1 matrix expression (or scalar) -- the loss
    wrt: sp.MatrixSymbol


@dataclass
class Jacobian:
    """d of / d wrt in denominator layout: entry [j, i] is d of_i / d wrt_j."""
    of: object
    wrt: sp.MatrixSymbol


@dataclass
class Equals:
    """The truth is given by another expression of the same quantity."""
    expr: object


@dataclass
class Statement:
    claimed: object
    truth: Gradient | Jacobian | Equals
    where: str = ""                                  # e.g. "t=2" for a through-time line
    defined: dict = field(default_factory=dict)      # MatrixSymbol -> its definition (never free)


def resolved(defined: dict) -> dict:
    """The definitions with every defined symbol inside them replaced by its own definition."""
    out = dict(defined)
    for _ in range(len(out) + 1):
        new = {k: v.xreplace(out) for k, v in out.items()}
        if new == out:
            return out
        out = new
    raise ValueError(f"the definitions of {', '.join(map(str, defined))} are circular")


def dims(**sizes) -> SimpleNamespace:
    return SimpleNamespace(**sizes)
