"""An RNN unrolled over T steps at an explicit small size: SymPy's ground truth.

The per-step loss is abstract: l_t = <dS_t, S_t> with dS_t a vector of free
symbols.  The chain rule only ever uses dl_t/dS_t at the current point, so this
proves the backward recurrences for *any* per-step loss, while the softmax
cross-entropy gradient dS_t = p_t - 1_{y=y_t} is proved on its own (claim "dS").
The sigmoid is the opaque `sigma`, so nothing grows exponentials of
exponentials, and every derivative here is SymPy's own `diff`.

Semantics of the note's BPTT lines (l_t in the algorithm is the loss from step
t to T, seen as a function of the state h_{t-1} entering step t):
  dW_next  = d(l_{t+1} + ... + l_T)/dW with h_t held fixed (what steps > t added)
  dh_next  = d(l_{t+1} + ... + l_T)/dh_t
  dh       = d(l_t + ... + l_T)/dh_t
  dW       = d(l_t + ... + l_T)/dW with h_{t-1} held fixed
  dX, dh_prev = d(l_t + ... + l_T)/dX_t, /dh_{t-1}
"""
from __future__ import annotations

from functools import cache
from types import SimpleNamespace

import sympy as sp

from .concrete import explicit
from .functions import IllFormed, elementwise, sigma, typecheck
from .statement import Equals, Statement, dims

WEIGHTS = ("W_xh", "W_hh", "W_hy")


def step_symbols(d) -> SimpleNamespace:
    """The names one step of the BPTT algorithm reads, as matrix symbols.

    Columns are examples: B = 1 is the note's single sequence; the generated
    code uses the same expressions with B columns (a batch).
    """
    H, E, V, B = d.H, d.E, d.V, getattr(d, "B", 1)
    M = sp.MatrixSymbol
    return SimpleNamespace(
        W_xh=M("W_xh", H, E), W_hh=M("W_hh", H, H), W_hy=M("W_hy", V, H),
        X=M("X", E, B), h_prev=M("h_prev", H, B), h=M("h", H, B), dS=M("dS", V, B),
        dh=M("dh", H, B), dh_next=M("dh_next", H, B),
        dW_xh_next=M("dW_xh_next", H, E), dW_hh_next=M("dW_hh_next", H, H), dW_hy_next=M("dW_hy_next", V, H),
    )


def step_definitions(s) -> dict:
    """The step symbols the model defines: h is h_t = sigma(W_xh X + W_hh h_prev).

    Everything else a line reads is free in the one-step model: the inputs X,
    the weights, the incoming state h_prev and the upstream gradients dS, dh,
    dh_next, dW_*_next.  (Unrolled, the engine binds h to h_t directly.)
    """
    return {s.h: elementwise(sigma, s.W_xh * s.X + s.W_hh * s.h_prev)}


def line_update(lhs: str, build, s):
    """A line's update in the step symbols, checked: its shapes compose, and it does not read what it computes.

    The dh line computes dh; reading dh there would be a circular update (and
    "dh = dh" would hold for any dh), so it is ill-formed, as in every engine.
    """
    update = build(s)                 # raises ShapeError for an ill-typed line
    typecheck(update)
    if lhs == "dh" and update.has(s.dh):
        raise IllFormed("the dh line reads dh, the quantity it computes (a circular update)")
    want = quantity_shape(lhs, s)
    if any(sp.expand(sp.sympify(a) - sp.sympify(b)) != 0 for a, b in zip(update.shape, want)):
        raise IllFormed(f"the right-hand side is {update.shape[0]}×{update.shape[1]} but the quantity it "
                        f"claims to be, {lhs}, is {want[0]}×{want[1]}")
    return update


def quantity_shape(lhs: str, s) -> tuple:
    """The shape of the quantity a line computes: that of the variable it is the gradient for."""
    of = {"dh": s.h, "dh_prev": s.h_prev, "dX": s.X, "dW_xh": s.W_xh, "dW_hh": s.W_hh, "dW_hy": s.W_hy}
    return of[lhs].shape


def _vector(name, n):
    return sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"{name}[{i}]", real=True))


def _grad(loss, wrt: sp.Matrix) -> sp.Matrix:
    return wrt.applyfunc(lambda w: sp.diff(loss, w))


class Unrolled:
    def __init__(self, H, E, V, T):
        self.H, self.E, self.V, self.T = H, E, V, T
        self.W = {name: explicit(sp.MatrixSymbol(name, *shape))
                  for name, shape in (("W_xh", (H, E)), ("W_hh", (H, H)), ("W_hy", (V, H)))}
        self.X = {t: _vector(f"X_{t}", E) for t in range(1, T + 1)}
        self.dS = {t: _vector(f"dS_{t}", V) for t in range(1, T + 1)}
        self.h0 = _vector("h_0", H)

    def cell(self, t, h_prev):
        """h_t = sigma(W_xh X_t + W_hh h_{t-1})."""
        return (self.W["W_xh"] * self.X[t] + self.W["W_hh"] * h_prev).applyfunc(sigma)

    def step_loss(self, t, h):
        """l_t = <dS_t, S_t>, S_t = W_hy h_t."""
        return (self.dS[t].T * self.W["W_hy"] * h)[0, 0]

    def loss_from(self, t, h_prev):
        """l_t + ... + l_T with h_{t-1} = h_prev."""
        total, h = sp.Integer(0), h_prev
        for k in range(t, self.T + 1):
            h = self.cell(k, h)
            total += self.step_loss(k, h)
        return total

    def states(self):
        """h_0, h_1, ..., h_T of the whole sequence."""
        hs = [self.h0]
        for t in range(1, self.T + 1):
            hs.append(self.cell(t, hs[-1]))
        return hs

    def at_step(self, t):
        """(bindings of the step symbols, SymPy's truths) at step t.

        The state entering step t is a free vector eta: every identity is checked
        for an arbitrary incoming state, which is stronger than at one state.
        """
        eta, zeta = _vector("eta", self.H), _vector("zeta", self.H)
        h_t = self.cell(t, eta)
        tail = self.loss_from(t, eta)
        tail_next = self.loss_from(t + 1, zeta)      # 0 when t == T
        at_h_t = dict(zip(zeta, h_t))
        truths = {f"d{name}": _grad(tail, self.W[name]) for name in WEIGHTS}
        truths.update(
            dh=_grad(self.step_loss(t, zeta) + tail_next, zeta).xreplace(at_h_t),
            dX=_grad(tail, self.X[t]),
            dh_prev=_grad(tail, eta),
        )
        bindings = {"X": self.X[t], "h_prev": eta, "h": h_t, "dS": self.dS[t], "dh": truths["dh"],
                    "dh_next": _grad(tail_next, zeta).xreplace(at_h_t), **self.W}
        for name in WEIGHTS:
            bindings[f"d{name}_next"] = _grad(tail_next, self.W[name]).xreplace(at_h_t)
        return bindings, truths


@cache
def unrolled(H, E, V, T) -> Unrolled:
    return Unrolled(H, E, V, T)


@cache
def _step(H, E, V, T, t):
    return unrolled(H, E, V, T).at_step(t)


def bind(s: SimpleNamespace, values: dict) -> dict:
    """Map the step symbols to explicit matrices."""
    return {getattr(s, name): value for name, value in values.items()}


def through_time(claim, shape) -> list[Statement]:
    """One statement per step t = 1..T: the claimed update against SymPy's truth."""
    d = dims(**shape)
    s = step_symbols(d)
    update = line_update(claim.lhs, claim.build, s)
    out = []
    for t in range(1, d.T + 1):
        values, truths = _step(d.H, d.E, d.V, d.T, t)
        out.append(Statement(explicit(update, bind(s, values)), Equals(truths[claim.lhs]), where=f"t={t}"))
    return out


def run_algorithm(T, updates: dict, s, inputs_at, zeros: dict, evaluate=None, feed_dh=None) -> dict:
    """Run the BPTT algorithm's update lines from t = T down to 1.

    `updates` maps each quantity ("dh", "dW_xh", "dW_hh", "dW_hy", "dX",
    "dh_prev") to its update expression in the step symbols `s`; `inputs_at(t)`
    gives the values of X, h_prev, h, dS and the weights at step t; `zeros`
    the shapes of dh_next and dW_*_next before the last step.  The lines' own
    outputs are carried from step to step.  `feed_dh(t, dh)` may replace the
    dh the line computed by another value (the graph engine feeds its adjoint
    symbol); `evaluate(expr, values)` turns an update into a matrix.
    Returns dh_t, dX_t for every t, the accumulated dW_* and dh_0.
    """
    evaluate = evaluate or (lambda expr, values: explicit(expr, bind(s, values)))
    carried = {name: sp.zeros(*shape) for name, shape in zeros.items()}
    out = {}
    for t in range(T, 0, -1):
        values = {**inputs_at(t), **carried}
        out[f"dh_{t}"] = dh = evaluate(updates["dh"], values)
        values["dh"] = feed_dh(t, dh) if feed_dh else dh
        here = {n: evaluate(updates[n], values) for n in ("dW_xh", "dW_hh", "dW_hy", "dX", "dh_prev")}
        out[f"dX_{t}"] = here["dX"]
        carried = {"dh_next": here["dh_prev"], **{f"d{w}_next": here[f"d{w}"] for w in WEIGHTS}}
    out.update({f"d{w}": carried[f"d{w}_next"] for w in WEIGHTS}, dh_0=carried["dh_next"])
    return out


def carried_shapes(W: dict, H: int) -> dict:
    return {"dh_next": (H, 1), **{f"d{w}_next": W[w].shape for w in WEIGHTS}}


def run_bptt(d, lines: dict) -> dict:
    """Run the algorithm made of `lines` (quantity -> claim) on the unrolled RNN.

    Nothing of SymPy's truth enters the run, so agreement with `whole_truths`
    checks the algorithm end to end.
    """
    rnn = unrolled(d.H, d.E, d.V, d.T)
    s = step_symbols(d)
    hs = rnn.states()
    return run_algorithm(d.T, {name: line_update(name, claim.build, s) for name, claim in lines.items()}, s,
                         lambda t: {"X": rnn.X[t], "h_prev": hs[t - 1], "h": hs[t], "dS": rnn.dS[t], **rnn.W},
                         carried_shapes(rnn.W, d.H))


def whole_truths(d) -> dict:
    """SymPy's derivative of the whole unrolled loss l_1 + ... + l_T."""
    rnn = unrolled(d.H, d.E, d.V, d.T)
    loss = rnn.loss_from(1, rnn.h0)
    truths = {f"d{w}": _grad(loss, rnn.W[w]) for w in WEIGHTS}
    truths["dh_0"] = _grad(loss, rnn.h0)
    truths.update({f"dX_{t}": _grad(loss, rnn.X[t]) for t in range(1, d.T + 1)})
    return truths
