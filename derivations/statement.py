"""What a claim says, in a form every engine can check.

A claim's builder returns one or more `Statement`s: the note's right-hand side
(`claimed`, a SymPy matrix expression) and how SymPy computes the truth it must
equal (`truth`).  The truth is never typed in: it is SymPy's own derivative of
a forward definition (`Gradient`, `Jacobian`) or another writing of the same
quantity (`Equals`).
"""
from __future__ import annotations

from dataclasses import dataclass
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


def dims(**sizes) -> SimpleNamespace:
    return SimpleNamespace(**sizes)
