"""What the soundness tests and benchmark need: targets, an independent numeric oracle, every engine's verdict.

A target is a true statement of the note -- a line of the BPTT algorithm, as
parsed from note.md and lowered to the step symbols (`derivations.note.step_model`),
or a helper lemma (its registered builder) -- with its right-hand side as a
matrix expression at symbolic sizes, ready for `derivations.edits`.  `edited(target, expr)` is the claim
with that right-hand side; `verdicts` runs every engine that applies to it;
`classify` decides, independently of the engines, whether an edited right-hand
side is equivalent to the original, different, or ill-typed: NumPy evaluates
both at random points of the free inputs, with every defined quantity (h_t)
computed from its definition.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.special import Identity, OneMatrix, ZeroMatrix

from .concrete import ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED
from .generic import size_symbol
from .registry import Claim
from .statement import Gradient, Jacobian, Statement, dims

# The note's BPTT lines and the helper lemmas with a single matrix statement.
LINES = ("bptt-dh", "bptt-dW_hy", "bptt-dW_xh", "bptt-dW_hh-corrected", "bptt-dX", "bptt-dh_prev-corrected")
LEMMAS = ("def1", "lemma1-dh", "lemma1-dz-corrected", "lemma1-dW-corrected", "lemma1-chain", "lemma1-jacobian-f",
          "cor1-dh", "cor1-dW", "lemma2-du", "lemma2-du-proof-corrected", "lemma2-dv-chain",
          "lemma2-dv", "cor2-du", "cor2-dv", "eq9", "eq10", "eq15", "eq16")
# Sizes of the numeric oracle: all different, so a shape slip never composes by accident.
ORACLE_SIZES = {"H": 2, "E": 3, "V": 4, "m": 3, "n": 2}
# Shapes of the concrete engine for an edited line (T = 2: a step with a future and one without).
LINE_SHAPES = ({"H": 1, "E": 1, "V": 1, "T": 2}, {"H": 2, "E": 3, "V": 2, "T": 2})
GRAPH_SHAPE = {"H": 2, "E": 3, "V": 2, "T": 3}


@dataclass
class Target:
    id: str
    claim: Claim
    expr: object                     # the right-hand side at symbolic sizes
    sizes: dict                      # size name -> its symbol
    definitions: dict = field(default_factory=dict)
    pool: set = field(default_factory=set)        # matrix symbols an edit may substitute

    @property
    def is_line(self) -> bool:
        return self.claim.lhs is not None

    def context(self) -> dict:
        return {"definitions": self.definitions, "pool": self.pool}


def _claims():
    from .runner import load_claims
    return load_claims()


def target(claim_id: str) -> Target:
    if claim_id in LINES:
        from .note.step_model import step_claim
        claim = step_claim(claim_id)
    else:
        claim = _claims()[claim_id]
    if claim.lhs is not None:
        from .unrolled import step_definitions, step_symbols
        sizes = {n: size_symbol(n) for n in ("H", "E", "V")}
        s = step_symbols(dims(**sizes))
        pool = {v for v in vars(s).values() if isinstance(v, sp.MatrixSymbol)}
        return Target(claim_id, claim, claim.build(s), sizes, step_definitions(s), pool)
    sizes = {n: size_symbol(n) for n in claim.shapes[0]}
    st = claim.build(dims(**sizes))
    truth = st.truth
    if isinstance(truth, Gradient):
        parts = [st.claimed, truth.loss, truth.wrt]
    elif isinstance(truth, Jacobian):
        parts = [st.claimed, truth.of, truth.wrt]
    else:
        parts = [st.claimed, truth.expr]
    pool = set().union(*(sp.sympify(p).atoms(sp.MatrixSymbol) for p in parts)) | set(st.defined)
    return Target(claim_id, claim, st.claimed, sizes, dict(st.defined), pool)


def targets() -> list[Target]:
    return [target(c) for c in (*LINES, *LEMMAS)]


# ---------------------------------------------------------------- the edited claim

def edited(t: Target, expr, shapes=None) -> Claim:
    """The target's claim with right-hand side `expr` (built at each engine's sizes by substitution)."""
    if t.is_line:
        def build(s):
            at = {t.sizes["H"]: s.W_hh.shape[0], t.sizes["E"]: s.W_xh.shape[1], t.sizes["V"]: s.W_hy.shape[0]}
            return expr.xreplace(at)
    else:
        def build(d):
            st = t.claim.build(d)
            at = {sym: sp.sympify(getattr(d, name)) for name, sym in t.sizes.items()}
            return Statement(expr.xreplace(at), st.truth, st.where, st.defined)
    return Claim(id=f"edited:{t.id}", label=f"edited {t.id}", latex="", section="edits", build=build,
                 shapes=tuple(shapes or t.claim.shapes), lhs=t.claim.lhs)


# ---------------------------------------------------------------- the numeric oracle

class _IllTyped(Exception):
    pass


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# The same concrete f as the counterexamples' (derivations.recheck): neither f nor f' even or odd.
_FUNCTIONS = {"sigma": _sigmoid, "f": lambda x: x ** 3 + x ** 2 + 2 * x + 1, "fp": lambda x: 3 * x ** 2 + 2 * x + 2}


def evaluate(M, env: dict) -> np.ndarray:
    """M with NumPy: env maps matrix symbol names to arrays; a shape slip raises."""
    if isinstance(M, sp.MatrixSymbol):
        return env[M.name]
    if isinstance(M, sp.Transpose):
        return evaluate(M.arg, env).T
    if isinstance(M, sp.MatMul):
        coeff = float(sp.Mul(*[a for a in M.args if not isinstance(a, sp.MatrixExpr)]))
        out = None
        for a in (a for a in M.args if isinstance(a, sp.MatrixExpr)):
            v = evaluate(a, env)
            if out is not None and out.shape[1] != v.shape[0]:
                raise _IllTyped(f"product {out.shape} · {v.shape}")
            out = v if out is None else out @ v
        return coeff * out
    if isinstance(M, (sp.MatAdd, HadamardProduct)):
        vals = [evaluate(a, env) for a in M.args]
        if any(v.shape != vals[0].shape for v in vals):
            raise _IllTyped(f"{type(M).__name__} of {[v.shape for v in vals]}")
        out = vals[0]
        for v in vals[1:]:
            out = out + v if isinstance(M, sp.MatAdd) else out * v
        return out
    if isinstance(M, ElementwiseApplyFunction):
        x = M.function.variables[0]
        fn = sp.lambdify(x, M.function.expr, modules=[_FUNCTIONS, "numpy"])
        return np.vectorize(fn, otypes=[float])(evaluate(M.expr, env))
    if isinstance(M, DiagMatrix):
        u = evaluate(M.args[0], env)
        if 1 not in u.shape:
            raise _IllTyped(f"diag of {u.shape}")
        return np.diag(u.ravel())
    if isinstance(M, (OneMatrix, ZeroMatrix, Identity)):
        shape = tuple(int(n) for n in M.shape)
        return np.ones(shape) if isinstance(M, OneMatrix) else np.zeros(shape) if isinstance(M, ZeroMatrix) \
            else np.eye(shape[0])
    if isinstance(M, sp.BlockMatrix):
        rows = [[evaluate(b, env) for b in row] for row in M.blocks.tolist()]
        try:
            return np.block(rows)
        except ValueError as e:
            raise _IllTyped(str(e)) from None
    if isinstance(M, sp.MatrixBase):
        return np.array(M.tolist(), dtype=float)
    raise TypeError(f"no numeric value for {type(M).__name__}")


EQUIVALENT, DIFFERENT = "equivalent", "different"


def classify(t: Target, expr, points: int = 3, seed: int = 0) -> str:
    """EQUIVALENT, DIFFERENT or ILL_TYPED: `expr` against the target's own right-hand side, numerically."""
    at = {sym: sp.Integer(ORACLE_SIZES[name]) for name, sym in t.sizes.items()}
    original, variant = t.expr.xreplace(at), None
    try:
        variant = expr.xreplace(at)
    except sp.ShapeError:
        return ILL_TYPED
    rng = np.random.default_rng(seed)
    definitions = {k.xreplace(at): v.xreplace(at) for k, v in t.definitions.items()}
    symbols = (original.atoms(sp.MatrixSymbol) | variant.atoms(sp.MatrixSymbol)
               | set().union(*(v.atoms(sp.MatrixSymbol) for v in definitions.values())))
    for _ in range(points):
        env = {M.name: rng.normal(size=tuple(int(n) for n in M.shape)) for M in symbols if M not in definitions}
        for D, definition in definitions.items():
            env[D.name] = evaluate(definition, env)
        want = evaluate(original, env)
        try:
            got = evaluate(variant, env)
        except _IllTyped:
            return ILL_TYPED
        if got.shape != want.shape:
            return ILL_TYPED
        if not np.allclose(got, want, rtol=1e-9, atol=1e-9):
            return DIFFERENT
    return EQUIVALENT


# ---------------------------------------------------------------- the engines

def _line_lemma(lhs, build):
    from . import induction
    if lhs == "dh":
        return induction.output_lemma(dh_rule=build)
    if lhs == "dh_prev":
        return induction.step_lemma(dh_prev_rule=build)
    if lhs == "dX":
        return induction.input_lemma(dX_rule=build)
    return induction.weight_lemma(lhs, rule=build)


def verdicts(t: Target, expr, graph: bool = True) -> dict:
    """{engine: (verdict, reason)} for the target with right-hand side expr, from every applicable engine."""
    from .concrete import prove
    from .generic import prove_all_sizes
    out = {}
    claim = edited(t, expr, LINE_SHAPES if t.is_line else None)
    concrete = prove(claim)
    out["concrete"] = (concrete.verdict, concrete.reason)
    general = prove_all_sizes(claim)
    out["all sizes"] = (general.verdict, general.reason) if general is not None else (INCONCLUSIVE, "not applicable")
    if t.is_line:
        lemma = _line_lemma(t.claim.lhs, claim.build)
        out["induction"] = (lemma["verdict"], lemma["reason"])
        if graph:
            from .graph import check_algorithm
            from .note.bptt import algorithm_lines
            lines = algorithm_lines("bptt-algorithm-corrected")
            lines[t.claim.lhs] = claim
            verdict, reason, _ = check_algorithm(lines, GRAPH_SHAPE, seed=f"edited:{t.id}")
            out["unrolled graph"] = (verdict, reason)
    return out


KILLED = (REFUTED, ILL_TYPED)
__all__ = ["DIFFERENT", "EQUIVALENT", "ILL_TYPED", "KILLED", "PROVED", "Target", "classify", "edited",
           "evaluate", "target", "targets", "verdicts"]


# ---------------------------------------------------------------- the oracle for parsed claims

def changes_value(ctx, claim, points: int = 3, seed: str = "oracle") -> bool:
    """Whether a claim parsed from a file is false (its sides differ, or do not compose) -- by numbers.

    Sizes 2, 3, 4, ... (one per size symbol, all different, so that a shape slip
    does not compose by accident) and T = 3; a few random rational inputs; every
    defined quantity and every derivative computed from the file's definitions
    at 40 digits (`semantics.Model.forward`).  This shares the model's semantics
    with the concrete engine, not its proof: no symbolic difference, no
    unfolding, larger sizes.  A difference above 1e-20 (relative) is a change.
    """
    import random

    import mpmath

    from . import explicit
    from .semantics import Model, ShapeMismatch
    sizes = {str(n): 2 + k for k, n in enumerate(ctx.sizes())}
    T = ctx.length or (3 if ctx.has_time else None)
    for indices in explicit.sample_indices(ctx, sizes, T or 1):
        model = Model(ctx, sizes, T, dict(indices))
        for t in explicit.steps_of(claim, T):
            try:
                lhs, rhs = explicit._sides(model, claim, {"T": T, "t": t})
            except ShapeMismatch:
                return True
            if lhs.shape != rhs.shape:
                return True
            rng = random.Random(f"{seed}|{claim.id}|{t}")
            for _ in range(points):
                values = model.forward(explicit.rational_point(model.free_symbols(), rng), 40)
                numbers = model.numeric_many([*lhs, *rhs], values, 40)
                with mpmath.workdps(40):
                    for a, b in zip(numbers[:len(lhs)], numbers[len(lhs):]):
                        if abs(a - b) > mpmath.mpf(10) ** -20 * max(abs(a), abs(b), 1):
                            return True
    return False
