"""A counterexample is a point of the free inputs, re-checked on the model before it is reported.

Every path that reports "refuted" (the concrete engine, the all-sizes engine
through it, the induction's lemmas through it, the unrolled graph) hands its
counterexample to `confirm`, which

1. refuses a point that assigns a value to a defined quantity (h_t, a node of
   the unrolled graph, an adjoint): those are never free;
2. recomputes every defined quantity from its definition, in dependency order,
   from the free values alone;
3. evaluates both sides with the real functions -- sigma as 1/(1 + e^{-x}), and
   for Lemma 1's generic f the concrete f(x) = x^3 + x^2 + 2x + 1 with
   f'(x) = 3x^2 + 2x + 2 --
   at 50 significant digits;
4. returns the first entry where the sides differ, or raises `NoDifference`:
   an engine that claims a difference the model does not have is defective,
   and its "refutation" must not be reported.
"""
from __future__ import annotations

import sympy as sp

from .functions import f, fp, sigma, sigmoid_definition

DIGITS = 50
# Far above the rounding of 50-digit arithmetic, far below any real difference.
TOLERANCE = sp.Float("1e-30", DIGITS)


from .verdicts import EngineDefect


class NoDifference(EngineDefect):
    """At the reported point, with every defined quantity recomputed, both sides agree."""


def f_instance(x):
    """A concrete f for Lemma 1's generic one, exact on rationals.

    Neither f nor f' is even or odd, so no sign slip (f'(-z) for f'(z)) agrees
    with the generic statement by accident.
    """
    return x ** 3 + x ** 2 + 2 * x + 1


def fp_instance(x):
    """Its derivative."""
    return 3 * x ** 2 + 2 * x + 2


F_INSTANCE = {"f(x)": "x**3 + x**2 + 2*x + 1", "f'(x)": "3*x**2 + 2*x + 2"}


def real_functions(expr):
    """expr with the real sigmoid and the concrete f, f' in place of the opaque functions."""
    return expr.replace(sigma, sigmoid_definition).replace(f, f_instance).replace(fp, fp_instance)


def _number(expr, known):
    return sp.N(real_functions(sp.sympify(expr).xreplace(known)), DIGITS)


def model_values(values: dict, definitions: dict) -> dict:
    """The value of every defined quantity, computed from the free values only."""
    assigned = set(values) & set(definitions)
    if assigned:
        raise EngineDefect("the counterexample assigns values to defined quantities "
                           f"({', '.join(sorted(map(str, assigned)))}); only free inputs may be chosen")
    known = dict(values)
    pending = dict(definitions)
    while pending:
        ready = [s for s, e in pending.items() if sp.sympify(e).free_symbols <= set(known)]
        if not ready:
            missing = set().union(*(sp.sympify(e).free_symbols for e in pending.values())) - set(known) - set(pending)
            raise EngineDefect("defined quantities cannot be computed from the free values: "
                               f"{', '.join(sorted(map(str, missing))) or 'circular definitions'}")
        for s in ready:
            known[s] = _number(pending.pop(s), known)
    return {s: known[s] for s in definitions}


def _needed(symbols: set, definitions: dict) -> dict:
    """The definitions the symbols depend on, directly or through other definitions."""
    needed, todo = {}, [x for x in symbols if x in definitions]
    while todo:
        x = todo.pop()
        if x not in needed:
            needed[x] = definitions[x]
            todo.extend(y for y in sp.sympify(definitions[x]).free_symbols if y in definitions)
    return needed


def _as_dict(sides):
    return sides if isinstance(sides, dict) else {None: sides}


def confirm(claimed, truth, values: dict, definitions: dict | None = None) -> dict:
    """Re-check a counterexample on the model; the counterexample as reported.

    `claimed` and `truth` are explicit matrices (or dicts name -> matrix, for
    several quantities); their entries may use defined symbols, which
    `definitions` maps to their definitions.  `values` gives the free inputs.
    Raises EngineDefect when the point is not a point of the free inputs, and
    NoDifference when both sides agree there.
    """
    definitions = definitions or {}
    claimed, truth = _as_dict(claimed), _as_dict(truth)
    used = set().union(*(sp.Matrix(m).free_symbols for side in (claimed, truth) for m in side.values()))
    assigned = set(values) & set(definitions)
    if assigned:
        raise EngineDefect("the counterexample assigns values to defined quantities "
                           f"({', '.join(sorted(map(str, assigned)))}); only free inputs may be chosen")
    known = {**values, **model_values(values, _needed(used, definitions))}
    for name, want in truth.items():
        got = claimed[name]
        symbols = set(sp.Matrix(got).free_symbols) | set(sp.Matrix(want).free_symbols)
        if symbols - set(known):
            raise EngineDefect("the counterexample leaves "
                               f"{', '.join(sorted(map(str, symbols - set(known))))} without a value")
        for i in range(want.rows):
            for j in range(want.cols):
                c, t = _number(got[i, j], known), _number(want[i, j], known)
                if abs(c - t) > TOLERANCE * max(1, abs(t)):
                    out = {"values": {str(s): str(v) for s, v in values.items()}, "entry": [i, j],
                           "claimed": str(sp.N(c, 15)), "truth": str(sp.N(t, 15))}
                    if name is not None:
                        out["quantity"] = name
                    if any(sp.Matrix(m).has(f, fp) for m in (got, want)):
                        out["values"].update(F_INSTANCE)
                    return out
    raise NoDifference("the engine reported a counterexample, but with every defined quantity recomputed "
                       "from the free values and the real functions both sides agree there")
