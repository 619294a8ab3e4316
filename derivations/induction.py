"""The BPTT algorithm proved for every sequence length T, by induction on t = T, ..., 1.

The concrete engine checks each line of the algorithm on RNNs unrolled over
T = 1, 2, 3 (`derivations.unrolled`), which stays the independent check.  This
module proves the lines for every T: each lemma below is an identity proved by
the "all sizes" engine (`derivations.generic`) with symbolic sizes H, E, V, and
the lemmas combine by induction.

Notation (as in `derivations.unrolled`): L_{>=t} = l_t + ... + l_T is the loss
from step t on, as a function of the state h_{t-1} entering step t and of the
copies of the weights used at steps t, ..., T;  h_t = sigma(W_xh X_t + W_hh h_{t-1});
l_t = <dS_t, W_hy h_t> (any per-step loss: only dl_t/dS_t = dS_t is used, and
the softmax cross-entropy value of dS_t is proved on its own, claim "dS").

The one-step model.  The induction hypothesis says d L_{>t}/d h_t = dh_next and
d L_{>t}/d W = dW_next (h_t held fixed).  L_{>t} is not known in closed form, so
the step lemmas use the abstract future loss

    L_{>t}(h, W_xh', W_hh', W_hy') = <dh_next, h> + sum_W <dW_next, W'>

with dh_next, dW_next free symbols.  That is valid because the chain rule at a
point only uses the first derivatives of L_{>t} at that point: any L_{>t} with
those gradients gives the same d L_{>=t}, and this linear one has exactly
them.  (<A, W> is the Frobenius pairing, written 1^T (A∘W) 1.)

The step symbol h is h_t, never a free vector: a line that reads h (dW_hy's
dS_t h_t^T, or sigma'(a_t) written as h_t∘(1 - h_t)) is checked with h := h_t,
and the output lemma's derivative with respect to h is taken at h = h_t.
"""
from __future__ import annotations

import time
from types import SimpleNamespace

import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.special import OneMatrix, ZeroMatrix

from .concrete import ILL_TYPED, PROVED, REFUTED
from .functions import elementwise, sigma
from .generic import RNN_TRIALS, IndexForm, is_zero, prove_statements, size_symbol
from .statement import Gradient, Statement, dims
from .unrolled import line_update, step_definitions, step_symbols

METHOD = "induction"
SIZES = ("H", "E", "V")
WEIGHTS = ("W_xh", "W_hh", "W_hy")


def _symbols():
    return {n: size_symbol(n) for n in SIZES}


def _pairing(A, W):
    """<A, W> = sum_ij A_ij W_ij: a loss whose gradient with respect to W is A."""
    return OneMatrix(1, A.shape[0]) * HadamardProduct(A, W) * OneMatrix(A.shape[1], 1)


def model(sizes=None) -> SimpleNamespace:
    """The step symbols with h_t, the abstract future loss and L_{>=t} at symbolic sizes."""
    s = step_symbols(dims(**(sizes or _symbols())))
    s.h_t = step_definitions(s)[s.h]
    s.future = s.dh_next.T * s.h_t + sum((_pairing(getattr(s, f"d{w}_next"), getattr(s, w)) for w in WEIGHTS[1:]),
                                         _pairing(s.dW_xh_next, s.W_xh))
    s.loss = s.dS.T * s.W_hy * s.h_t + s.future            # L_{>=t}(h_{t-1}, W)
    return s


def _statement(s, claimed, truth, where) -> Statement:
    """A lemma's statement; the step symbol h is h_t, in the line and (after differentiating) in the truth."""
    return Statement(claimed, truth, where=where, defined={s.h: s.h_t})


def _rule(claim_id):
    from .note.step_model import line
    return line(claim_id).build


# The algorithm's lines that the induction proves: the corrected lines as parsed from note.md,
# lowered to the step symbols.
RULES = {"dh": "bptt-dh", "dh_prev": "bptt-dh_prev-corrected", "dX": "bptt-dX",
         "dW_xh": "bptt-dW_xh", "dW_hh": "bptt-dW_hh-corrected", "dW_hy": "bptt-dW_hy"}


def _in_model(s, rule, dh_rule, lhs):
    """A line's update with dh := the dh line, and h := h_t, so it is a function of step t's inputs."""
    dh = line_update("dh", dh_rule, s)
    return line_update(lhs, rule, s).xreplace({s.dh: dh}).xreplace({s.h: s.h_t})


def _lemma(name, statement_text, statements, seed, how, sizes_note="symbolic sizes H, E, V"):
    """Prove the statements (a list, or a function building it) and report the lemma as plain data."""
    t0 = time.perf_counter()
    symbols = _symbols()
    try:
        if callable(statements):
            statements = statements()
        out = prove_statements(statements, symbols, RNN_TRIALS, seed, how)
        verdict, reason, cex = out.verdict, out.reason, out.counterexample
    except sp.ShapeError as e:
        verdict, reason, cex = ILL_TYPED, " ".join(str(e).split()), None
    lemma = {"name": name, "statement": statement_text, "verdict": verdict,
             "reason": f"{reason} [{sizes_note}]", "seconds": round(time.perf_counter() - t0, 3)}
    if cex is not None:
        lemma["counterexample"] = cex
    return lemma


# ---------------------------------------------------------------- the lemmas

def output_lemma(dh_rule=None) -> dict:
    """d/dh_t of l_t(h_t) + L_{>t}(h_t) = dh_next + W_hy^T dS_t (the dh line; (9) and Comment 1)."""
    s = model()
    dh_rule = dh_rule or _rule(RULES["dh"])
    loss = s.dS.T * s.W_hy * s.h + s.dh_next.T * s.h

    def statements():
        return [_statement(s, line_update("dh", dh_rule, s), Gradient(loss, s.h), "dh")]
    return _lemma("output lemma (dh_t)",
                  r"\frac{\partial (\ell_t + L_{>t})}{\partial h_t} = dh_{next} + W_{hy}^{\mathsf T} dS_t",
                  statements, "induction|dh", "d/dh of <dS_t, W_hy h> + <dh_next, h>, in index notation")


def step_lemma(dh_prev_rule=None, dh_rule=None) -> dict:
    """The gradient reaching h_{t-1} through one step is W_hh^T (sigma'(a_t) ∘ dh_t).

    `dh_prev_rule(s)` and `dh_rule(s)` are candidate updates in the step
    symbols (defaults: the corrected claims); pass a false one to see it refuted.
    """
    s = model()

    def statements():
        candidate = _in_model(s, dh_prev_rule or _rule(RULES["dh_prev"]), dh_rule or _rule(RULES["dh"]), "dh_prev")
        return [_statement(s, candidate, Gradient(s.loss, s.h_prev), "dh_prev")]
    return _lemma("step lemma (dh_{t-1})",
                  r"L_{\ge t}(h_{t-1}) = \ell_t(h_t) + L_{>t}(h_t),\ \frac{\partial L_{>t}}{\partial h_t} = "
                  r"dh_{next} \Rightarrow \frac{\partial L_{\ge t}}{\partial h_{t-1}} = W_{hh}^{\mathsf T}"
                  r"(\sigma'(a_t) \circ (dh_{next} + W_{hy}^{\mathsf T} dS_t))",
                  statements, "induction|dh_prev", "d L_{>=t}/d h_{t-1} in index notation, L_{>t} abstract")


def input_lemma(dX_rule=None, dh_rule=None) -> dict:
    """X_t is used at step t only: d L_{>=t}/d X_t = W_xh^T (sigma'(a_t) ∘ dh_t)."""
    s = model()

    def statements():
        candidate = _in_model(s, dX_rule or _rule(RULES["dX"]), dh_rule or _rule(RULES["dh"]), "dX")
        return [_statement(s, candidate, Gradient(s.loss, s.X), "dX")]
    return _lemma("input lemma (dX_t)",
                  r"\frac{\partial L_{\ge t}}{\partial X_t} = W_{xh}^{\mathsf T}(\sigma'(a_t) \circ dh_t)",
                  statements, "induction|dX", "d L_{>=t}/d X_t in index notation, L_{>t} abstract")


def weight_lemma(name, rule=None, dh_rule=None) -> dict:
    """A shared weight: d L_{>=t}/dW = dW_next + step t's contribution.

    W appears at step t and (through the future loss) at every later step; by the
    parameter-sharing lemma its gradient is the sum over the copies: the copy of
    step t gives (sigma'(a_t)∘dh_t) X_t^T, (...) h_{t-1}^T or dS_t h_t^T, the later
    copies give dW_next (induction hypothesis).
    """
    s = model()

    def statements():
        candidate = _in_model(s, rule or _rule(RULES[name]), dh_rule or _rule(RULES["dh"]), name)
        return [_statement(s, candidate, Gradient(s.loss, getattr(s, name[1:])), name)]
    contribution = {"dW_xh": r"(\sigma'(a_t) \circ dh_t) X_t^{\mathsf T}",
                    "dW_hh": r"(\sigma'(a_t) \circ dh_t) h_{t-1}^{\mathsf T}",
                    "dW_hy": r"dS_t h_t^{\mathsf T}"}[name]
    sub = name.split("_")[1]                      # "xh": W_{xh} in LaTeX, not W_x h
    return _lemma(f"weight-gradient step lemma ({name})",
                  rf"\frac{{\partial L_{{\ge t}}}}{{\partial W_{{{sub}}}}} = dW_{{{sub},\mathrm{{next}}}} + {contribution}",
                  statements, f"induction|{name}", f"d L_{{>=t}}/d {name[1:]} in index notation, L_{{>t}} abstract")


def base_case() -> dict:
    """t = T: with dh_next = 0 and dW_next = 0 every line gives the gradient of l_T alone."""
    s = model()
    zero = {s.dh_next: ZeroMatrix(*s.dh_next.shape),
            **{getattr(s, f"d{w}_next"): ZeroMatrix(*getattr(s, f"d{w}_next").shape) for w in WEIGHTS}}
    l_T = s.dS.T * s.W_hy * s.h_t
    dh_rule = _rule(RULES["dh"])
    statements = [_statement(s, line_update("dh", dh_rule, s).xreplace(zero), Gradient(s.dS.T * s.W_hy * s.h, s.h),
                             "dh")]
    for lhs, wrt in (("dh_prev", s.h_prev), ("dX", s.X), ("dW_xh", s.W_xh), ("dW_hh", s.W_hh), ("dW_hy", s.W_hy)):
        update = _in_model(s, _rule(RULES[lhs]), dh_rule, lhs).xreplace(zero)
        statements.append(_statement(s, update, Gradient(l_T, wrt), lhs))
    return _lemma("base case (t = T)",
                  r"dh_{next} = 0,\ dW_{next} = 0 \Rightarrow \text{every line gives } "
                  r"\partial \ell_T / \partial(h_T, h_{T-1}, X_T, W_{xh}, W_{hh}, W_{hy})",
                  statements, "induction|base", "each line at t = T against the gradient of l_T alone")


# ---------------------------------------------------------------- parameter sharing (Comment 1)

class _Fk(sp.Function):
    """The k-th partial derivative of the generic function F (k is the first argument)."""


def _generic_F(T):
    """F of T arguments whose partials are the undefined _Fk(k, ...): SymPy's chain rule is under test."""

    class F(sp.Function):
        nargs = T

        def fdiff(self, argindex=1):
            return _Fk(argindex, *self.args)

    return F


def sharing_generic(T, summed=None) -> bool:
    """d/dw F(w, ..., w) = sum_t (d_t F)(w, ..., w) for a generic F of T arguments.

    This is the statement entry by entry: a weight's entry w is fed to the T
    copies; every other entry is held fixed.  `summed(F, copies)` replaces the
    claimed right-hand side (for testing false variants).
    """
    F = _generic_F(T)
    w = sp.Symbol("w", real=True)
    copies = sp.symbols(f"w_1:{T + 1}", real=True)
    total = sp.diff(F(*[w] * T), w)
    if summed is None:
        claimed = sum(sp.diff(F(*copies), c) for c in copies)
    else:
        claimed = summed(F, copies)
    claimed = claimed.xreplace({c: w for c in copies})
    return sp.expand(total - claimed) == 0


def _unrolled_index(ix, T, copies: bool):
    """Index form of l_1 + ... + l_T for an RNN with weight copies per step (or shared)."""
    H, E, V = (size_symbol(n) for n in SIZES)
    M = sp.MatrixSymbol

    def W(name, t):
        shape = {"W_xh": (H, E), "W_hh": (H, H), "W_hy": (V, H)}[name]
        return M(f"{name}_{t}" if copies else name, *shape)

    h, loss = M("h_0", H, 1), sp.Integer(0)
    for t in range(1, T + 1):
        h = elementwise(sigma, W("W_xh", t) * M(f"X_{t}", E, 1) + W("W_hh", t) * h)
        loss = loss + ix.scalar(M(f"dS_{t}", V, 1).T * W("W_hy", t) * h)
    return loss, {"W_xh": (H, E), "W_hh": (H, H), "W_hy": (V, H)}


def sharing_unrolled(T=2, only_last=False) -> bool:
    """On the RNN itself: d L/dW (shared) = sum_t dL/dW_t (copies), symbolic H, E, V, T = 2."""
    ix = IndexForm()
    shared, shapes = _unrolled_index(ix, T, copies=False)
    per_copy, _ = _unrolled_index(ix, T, copies=True)
    ok = True
    for name, shape in shapes.items():
        i, j = ix.index("i", shape[0]), ix.index("j", shape[1])
        truth = sp.diff(shared, sp.IndexedBase(name)[i, j])
        steps = [T] if only_last else range(1, T + 1)
        claimed = sum(sp.diff(per_copy, sp.IndexedBase(f"{name}_{t}")[i, j]) for t in steps)
        # W_1 = ... = W_T = W, for every weight.
        claimed = claimed.xreplace({sp.IndexedBase(f"{w}_{t}"): sp.IndexedBase(w)
                                    for w in shapes for t in range(1, T + 1)})
        ok = ok and is_zero(claimed - truth, ix.ranges)
    return ok


def sharing_lemma(summed=None, only_last=False) -> dict:
    """Comment 1 as the multivariate chain rule; `summed`/`only_last` give false variants for tests."""
    t0 = time.perf_counter()
    generic = {T: sharing_generic(T, summed) for T in (1, 2, 3, 4)}
    unrolled = sharing_unrolled(2, only_last)
    ok = all(generic.values()) and unrolled
    return {"name": "parameter-sharing lemma (Comment 1)",
            "statement": r"L(W) = F(W, \dots, W) \Rightarrow \frac{dL}{dW} = \sum_t "
                         r"\frac{\partial F}{\partial W_t}\Big|_{W_1 = \dots = W_T = W}",
            "verdict": PROVED if ok else "inconclusive",
            "reason": ("for a generic F of T = 1..4 arguments (entry by entry, partials as undefined "
                       "functions), and on the RNN unrolled over T = 2 with a copy of W_xh, W_hh, W_hy per "
                       "step at symbolic sizes H, E, V (index notation); for general T by induction on the "
                       "number of copies: F(w, ..., w) = G(w, w) with G(u, v) = F(u, ..., u, v), the case "
                       "of two copies for G, the hypothesis for the first T - 1"
                       if ok else f"generic: {generic}, unrolled T=2: {unrolled}"),
            "seconds": round(time.perf_counter() - t0, 3)}


# ---------------------------------------------------------------- the theorem

COMBINATION = (
    "Theorem. For every T >= 1, running the lines from t = T down to 1, starting from dh_next = 0 and "
    "dW_next = 0, gives at each step t: dh = dL_{>=t}/dh_t, dh_prev = dL_{>=t}/dh_{t-1}, dX = dL_{>=t}/dX_t "
    "and dW = dL_{>=t}/dW (h_{t-1} held fixed, W shared by steps t..T); at t = 1 the accumulated dW_xh, "
    "dW_hh, dW_hy are dL/dW of the whole loss L = l_1 + ... + l_T and dh_prev is dL/dh_0. "
    "Proof by downward induction on t. Base case t = T: L_{>T} = 0, so its gradients are 0 = dh_next, "
    "dW_next (base-case lemma). Step: assume dh_next = dL_{>t}/dh_t and dW_next = dL_{>t}/dW. Then "
    "L_{>=t} = l_t(h_t) + L_{>t}(h_t, W) with h_t = sigma(W_xh X_t + W_hh h_{t-1}); the output lemma gives "
    "dh_t, the step and input lemmas give dh_{t-1} and dX_t, and the parameter-sharing lemma splits dW "
    "into the copy used at step t plus the copies of steps > t, which the weight-gradient step lemmas "
    "evaluate to the step's contribution plus dW_next. The dh_prev computed at t is the dh_next of step t-1, "
    "which closes the induction. Every lemma is proved with symbolic sizes H, E, V, so the result holds "
    "for every size and every sequence length; the softmax cross-entropy dS_t = p_t - 1_{y=y_t} is the "
    "claim dS (all sizes)."
)


def prove_all_T() -> dict:
    """The BPTT algorithm for every T: the lemmas, their verdicts and the combination (plain data)."""
    t0 = time.perf_counter()
    lemmas = [base_case(), output_lemma(), step_lemma(), input_lemma(),
              weight_lemma("dW_xh"), weight_lemma("dW_hh"), weight_lemma("dW_hy"), sharing_lemma()]
    bad = [lem for lem in lemmas if lem["verdict"] != PROVED]
    if not bad:
        verdict = PROVED
    elif any(lem["verdict"] == REFUTED for lem in bad):
        verdict = REFUTED
    else:
        verdict = bad[0]["verdict"]
    return {"verdict": verdict, "method": METHOD, "seconds": round(time.perf_counter() - t0, 3),
            "sizes": {n: n for n in SIZES}, "lemmas": lemmas,
            "combination": COMBINATION if verdict == PROVED else
            "Not combined: " + "; ".join(f"{lem['name']} is {lem['verdict']}" for lem in bad)}
