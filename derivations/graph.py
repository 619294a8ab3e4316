"""Engine "unrolled graph": the whole BPTT algorithm for long sequences, in polynomial time.

The fully expanded check (claim `bptt-algorithm-corrected`, engine "concrete")
grows about 3.5x per time step, because the entries of products of T symbolic
W_hh matrices have exponentially many monomials.  Here the unrolled network is
kept as a graph with one intermediate symbol per hidden unit and step:

    h_t[i] := sigma(a_t[i]),  a_t = W_xh X_t + W_hh h_{t-1}   (h_{t-1} a symbol)
    L = sum_t <dS_t, W_hy h_t>                                 (abstract loss)

SymPy differentiates each node's own definition, and the generic multivariate
chain rule (reverse accumulation over the graph, which knows nothing of the
note) gives the adjoint of every node as a new symbol A_t[i] with a small
defining expression.  The BPTT algorithm is run with the same intermediate
symbols, and its quantities are matched to the graph's, step by step:

    dh_t (algorithm, with dh_{t+1} := A_{t+1})  ==  A_t (chain rule)
    dW, dX_t, dh_0 (algorithm, every dh_t := A_t)  ==  the chain rule's

Each comparison is an exact zero of a small polynomial (sigma atoms made
independent, as in the concrete engine), so the cost is polynomial in T.  When
a comparison fails, both sides are evaluated at random rational inputs with
50-digit arithmetic; a difference there is a counterexample.
"""
from __future__ import annotations

import random

import sympy as sp

from .concrete import ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED, Outcome, explicit, is_exactly_zero
from .functions import explain_shape_error
from .statement import dims
from .unrolled import WEIGHTS, Unrolled, bind, carried_shapes, run_algorithm, step_symbols

# Sizes this engine proves the whole algorithm at: long sequences.
GRAPH_SHAPES = ({"H": 2, "E": 2, "V": 2, "T": 6}, {"H": 3, "E": 2, "V": 3, "T": 8})


def _vec(name, n):
    return sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"{name}[{i}]", real=True))


class Graph(Unrolled):
    """The unrolled RNN as a graph of small node definitions, and its chain rule."""

    def __init__(self, H, E, V, T):
        super().__init__(H, E, V, T)
        self.h = {0: self.h0, **{t: _vec(f"h_{t}", H) for t in range(1, T + 1)}}   # intermediates
        self.A = {t: _vec(f"A_{t}", H) for t in range(1, T + 1)}     # adjoint symbols dL/dh_t
        self.node = {t: self.cell(t, self.h[t - 1]) for t in range(1, T + 1)}   # definition of h_t
        self.loss = sum((self.step_loss(t, self.h[t]) for t in range(1, T + 1)), sp.Integer(0))

    def _through_nodes(self, x):
        """sum over nodes h_t[i] of A_t[i] * d(definition of h_t[i])/dx -- SymPy's local derivatives."""
        return sum((self.A[t][i] * sp.diff(self.node[t][i], x)
                    for t in range(1, self.T + 1) for i in range(self.H) if self.node[t][i].has(x)), sp.Integer(0))

    def adjoint_definition(self, t):
        """Reverse accumulation: A_t = dL/dh_t (direct) + sum over consumers of h_t."""
        return self.h[t].applyfunc(lambda v: sp.diff(self.loss, v) + self._through_nodes(v))

    def gradient(self, M):
        """dL/dM for an input or parameter M, through every use of it."""
        return M.applyfunc(lambda v: sp.diff(self.loss, v) + self._through_nodes(v))

    def values(self, t):
        """Step symbols of the BPTT algorithm bound to the graph's symbols at step t."""
        return {"X": self.X[t], "h_prev": self.h[t - 1], "h": self.h[t], "dS": self.dS[t], **self.W}


def _run_matched(g: Graph, updates, s):
    """Run the algorithm, t = T..1, feeding dh_t := A_t (its dh_t is matched to the graph's A_t)."""
    return run_algorithm(g.T, updates, s, g.values, carried_shapes(g.W, g.H), feed_dh=lambda t, dh: g.A[t])


def _truths(g: Graph):
    truths = {f"dh_{t}": g.adjoint_definition(t) for t in range(1, g.T + 1)}
    truths.update({f"d{w}": g.gradient(g.W[w]) for w in WEIGHTS})
    truths.update({f"dX_{t}": g.gradient(g.X[t]) for t in range(1, g.T + 1)}, dh_0=g.gradient(g.h[0]))
    return truths


def _numeric_counterexample(g: Graph, d, updates, s, seed):
    """Both sides with every node evaluated at random rationals, 50 digits: differ -> counterexample."""
    rng = random.Random(seed)
    inputs = [*g.h[0], *(x for t in g.X for x in g.X[t]), *(x for t in g.dS for x in g.dS[t]),
              *(w for W in g.W.values() for w in W)]
    point = {v: sp.Rational(rng.choice([-3, -2, -1, 1, 2, 3]), rng.choice([1, 2, 3])) for v in inputs}
    for t in range(1, g.T + 1):          # forward pass, numerically
        point.update({g.h[t][i]: g.node[t][i].xreplace(point).evalf(50) for i in range(g.H)})
    adjoint = {}
    for t in range(g.T, 0, -1):          # the chain rule, numerically
        rhs = g.adjoint_definition(t).xreplace(point).xreplace(adjoint)
        adjoint.update({g.A[t][i]: sp.N(rhs[i], 50) for i in range(g.H)})
    truth = {k: v.xreplace(point).xreplace(adjoint).evalf(50) for k, v in _truths(g).items()
             if not k.startswith("dh_") or k == "dh_0"}
    # The algorithm on its own outputs (no matching), numerically.
    got = run_algorithm(g.T, updates, s, lambda t: {k: v.xreplace(point) for k, v in g.values(t).items()},
                        carried_shapes(g.W, g.H),
                        evaluate=lambda expr, values: explicit(expr, bind(s, values)).evalf(50))
    for name, want in truth.items():
        for idx in range(len(want)):
            if abs(sp.N(got[name][idx] - want[idx], 50)) > sp.Float("1e-30"):
                return {"values": {str(k): str(v) for k, v in point.items() if k in set(inputs)},
                        "entry": [idx // want.cols, idx % want.cols], "quantity": name,
                        "claimed": str(sp.N(got[name][idx], 15)), "truth": str(sp.N(want[idx], 15))}
    return None


def check_algorithm(lines: dict, shape: dict, seed: str = "graph"):
    """(verdict, reason, counterexample) for the algorithm made of `lines` at one shape."""
    d = dims(**shape)
    s = step_symbols(d)
    try:
        updates = {name: claim.build(s) for name, claim in lines.items()}
    except sp.ShapeError as e:
        return ILL_TYPED, explain_shape_error(e), None
    g = Graph(d.H, d.E, d.V, d.T)
    got, truths = _run_matched(g, updates, s), _truths(g)
    for name, want in truths.items():
        if got[name].shape != want.shape:
            return ILL_TYPED, f"{name} is {got[name].shape} but the chain rule gives {want.shape}", None
        if not all(is_exactly_zero(x) for x in got[name] - want):
            cex = _numeric_counterexample(g, d, updates, s, seed)
            if cex is not None:
                return REFUTED, f"{name} does not match the chain rule", cex
            return INCONCLUSIVE, f"{name} did not reduce to the chain rule's and no counterexample was found", None
    return PROVED, None, None


def prove_by_graph(claim, shapes=GRAPH_SHAPES):
    """Engine entry point: applies to the whole-algorithm claims only."""
    from .note.bptt import WHOLE_ALGORITHM
    from .registry import CLAIMS
    if claim.id not in WHOLE_ALGORITHM:
        return None
    lines = {name: CLAIMS[cid] for name, cid in WHOLE_ALGORITHM[claim.id].items()}
    tried = []
    for shape in shapes:
        verdict, reason, cex = check_algorithm(lines, shape, seed=f"{claim.id}|{shape}")
        where = ", ".join(f"{k}={v}" for k, v in shape.items())
        tried.append(shape)
        if verdict != PROVED:
            if cex is not None:
                cex["at"] = where
            return Outcome(verdict, "unrolled graph", tried, f"at {where}: {reason}", cex)
    return Outcome(PROVED, "unrolled graph", tried,
                   "every dh_t, dW, dX_t and dh_0 of the algorithm equals the chain rule over the unrolled graph "
                   f"(exact, T up to {max(s['T'] for s in shapes)})")
