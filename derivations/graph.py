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
independent, as in the concrete engine), so the cost is polynomial in T.  The
node symbols h_t[i] are defined, not free: when a difference is not zero with
them independent (a line that writes sigma'(a_t) as h_t∘(1 - h_t) leaves h_t
where the chain rule has sigma(a_t)), every h_t[i] outside a sigma is unfolded
one level into its definition sigma(a_t[i]) and the difference tested again --
sound, since each replaced symbol equals its replacement at the true values
and zero for independent atoms is zero there.  When a comparison still
fails, the inputs (only they are free) are drawn at random, every node, adjoint
and algorithm quantity is recomputed from its definition with the real sigma at
50 digits (`derivations.recheck.confirm`); a difference there is a
counterexample.
"""
from __future__ import annotations

import random

import sympy as sp

from .concrete import ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED, Outcome, is_exactly_zero
from .functions import explain_shape_error, sigma
from .recheck import NoDifference, confirm
from .statement import dims
from .unrolled import WEIGHTS, Unrolled, carried_shapes, line_update, run_algorithm, step_symbols

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

    def unfold(self):
        """Each node symbol h_t[i] -> its definition sigma(a_t[i]), one level (a_t reads h_{t-1}'s symbols)."""
        return {self.h[t][i]: self.node[t][i] for t in range(1, self.T + 1) for i in range(self.H)}

    def definitions(self):
        """Every defined symbol of the graph: the nodes h_t[i] and the adjoints A_t[i]."""
        out = self.unfold()
        for t in range(1, self.T + 1):
            out.update(zip(self.A[t], self.adjoint_definition(t)))
        return out

    def inputs(self):
        """The free inputs: h_0, X_t, dS_t and the weights."""
        return [*self.h[0], *(x for t in self.X for x in self.X[t]), *(x for t in self.dS for x in self.dS[t]),
                *(w for W in self.W.values() for w in W)]


def _run_matched(g: Graph, updates, s):
    """Run the algorithm, t = T..1, feeding dh_t := A_t (its dh_t is matched to the graph's A_t)."""
    return run_algorithm(g.T, updates, s, g.values, carried_shapes(g.W, g.H), feed_dh=lambda t, dh: g.A[t])


def _truths(g: Graph):
    truths = {f"dh_{t}": g.adjoint_definition(t) for t in range(1, g.T + 1)}
    truths.update({f"d{w}": g.gradient(g.W[w]) for w in WEIGHTS})
    truths.update({f"dX_{t}": g.gradient(g.X[t]) for t in range(1, g.T + 1)}, dh_0=g.gradient(g.h[0]))
    return truths


def unfold_outside_sigma(x, unfold: dict):
    """x with the node symbols outside every sigma(...) replaced by their definitions (one level).

    Inside sigma(a_t) the node symbols h_{t-1} stay: there they are the
    arguments of the atom the chain rule produced.  Every replaced occurrence
    equals its replacement at the true values, so a zero here is a proof.
    """
    hidden = {a: sp.Dummy() for a in x.atoms(sigma)}
    return x.xreplace(hidden).xreplace(unfold).xreplace({v: k for k, v in hidden.items()})


def _is_zero(g: Graph, diff) -> bool:
    """Exact zero with the node symbols independent, else with them unfolded one level."""
    unfold = g.unfold()
    return all(is_exactly_zero(x) or is_exactly_zero(unfold_outside_sigma(x, unfold)) for x in diff)


def _numeric_counterexample(g: Graph, updates, s, seed, tries: int = 3):
    """Random inputs where the algorithm, run on its own outputs, and the chain rule differ (on the model)."""
    rng = random.Random(seed)
    D = {t: sp.Matrix(g.H, 1, lambda i, _, t=t: sp.Symbol(f"D_{t}[{i}]", real=True)) for t in range(1, g.T + 1)}
    # The algorithm on its own outputs: its dh_t is the symbol D_t, defined as the line's value.
    got = run_algorithm(g.T, updates, s, g.values, carried_shapes(g.W, g.H), feed_dh=lambda t, dh: D[t])
    definitions = g.definitions()
    for t in range(1, g.T + 1):
        definitions.update(zip(D[t], got[f"dh_{t}"]))
    truths = {k: v for k, v in _truths(g).items() if not k.startswith("dh_") or k == "dh_0"}
    claimed = {k: got[k] for k in truths}
    for _ in range(tries):
        point = {v: sp.Rational(rng.choice([-3, -2, -1, 1, 2, 3]), rng.choice([1, 2, 3])) for v in g.inputs()}
        try:
            return confirm(claimed, truths, point, definitions)
        except NoDifference:
            continue
    return None


def check_algorithm(lines: dict, shape: dict, seed: str = "graph"):
    """(verdict, reason, counterexample) for the algorithm made of `lines` at one shape."""
    d = dims(**shape)
    s = step_symbols(d)
    try:
        updates = {name: line_update(name, claim.build, s) for name, claim in lines.items()}
    except sp.ShapeError as e:
        return ILL_TYPED, explain_shape_error(e), None
    g = Graph(d.H, d.E, d.V, d.T)
    got, truths = _run_matched(g, updates, s), _truths(g)
    for name, want in truths.items():
        if got[name].shape != want.shape:
            return ILL_TYPED, f"{name} is {got[name].shape} but the chain rule gives {want.shape}", None
        if not _is_zero(g, got[name] - want):
            cex = _numeric_counterexample(g, updates, s, seed)
            if cex is not None:
                return REFUTED, f"{name} does not match the chain rule", cex
            return INCONCLUSIVE, f"{name} did not reduce to the chain rule's and no counterexample was found", None
    return PROVED, None, None


def prove_by_graph(claim, shapes=GRAPH_SHAPES):
    """Engine entry point: applies to the whole-algorithm claims only."""
    from .note.bptt import WHOLE_ALGORITHM, algorithm_lines
    if claim.id not in WHOLE_ALGORITHM:
        return None
    lines = algorithm_lines(claim.id)         # the lines parsed from note.md, in the step symbols
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
