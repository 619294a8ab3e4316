"""The soundness tests' oracle: whether a claim parsed from a file is false, decided by numbers alone.

`changes_value(ctx, claim)` evaluates both sides of the claim in NumPy float64
(tests/fd.py): random inputs, σ as 1/(1 + e^{-x}) and every other function
real (a declared f is x³ + x² + 2x + 1), every defined quantity recomputed
from its definition, every derivative a central finite difference of the
forward pass.  Nothing of the engines is used -- no SymPy model, no symbolic
difference -- only the parsed intermediate form, which says what the file
means.  Sizes 2, 3, 4, ... (one per size symbol, all different, so that a
shape slip does not compose by accident) and every length T from 1 to a few
steps past the claim's reach.

Used by the property tests (tests/test_mutations.py, tests/test_rewrites.py)
and the soundness benchmark (benchmarks/soundness_parsed.py).
"""
from __future__ import annotations

import fd
import numpy as np

from derivations.form import ir
from derivations.form.shapes import IllTyped

TOLERANCE = 1e-5          # relative: finite differences, nested ones included, are far more accurate


def _sizes(ctx: ir.Context) -> dict:
    return {str(n): 2 + k for k, n in enumerate(ctx.sizes())}


def _lengths(ctx: ir.Context, claim: ir.Claim) -> list:
    if ctx.length:
        return [ctx.length]
    return list(range(1, fd.reach(claim) + 4)) if ctx.has_time else [None]


def difference(ctx: ir.Context, claim: ir.Claim, points: int = 2, seed: int = 0) -> str | None:
    """Where the claim's sides differ or do not compose ("T=.., t=..: ..."), or None when they agree."""
    rng = np.random.default_rng(seed)
    sizes = _sizes(ctx)
    uses_t = "t" in ir.time_vars(claim.lhs) | ir.time_vars(claim.rhs)
    for T in _lengths(ctx, claim):
        for _ in range(points):
            inputs, indices = fd.draw(ctx, sizes, T or 0, rng)
            run = fd.Run(ctx, sizes, T or 0, inputs, indices)
            for t in (range(1, T + 1) if uses_t and T else [None]):
                env = {"T": T, "t": t}
                try:
                    a, b = run.ev(claim.lhs, env), run.ev(claim.rhs, env)
                # IllTyped: the shape of a zero or a ones matrix asked of an ill-typed part (diag of a row);
                # ValueError: NumPy's own shape slips
                except (fd.ShapeError, IllTyped, ValueError) as e:
                    return f"T={T}, t={t}: does not compose ({e})"
                if a.shape != b.shape:
                    return f"T={T}, t={t}: {a.shape} against {b.shape}"
                scale = max(1.0, float(np.abs(a).max(initial=0)), float(np.abs(b).max(initial=0)))
                if not float(np.abs(a - b).max(initial=0)) <= TOLERANCE * scale:      # NaN counts as a difference
                    return f"T={T}, t={t}: {a.ravel()[:4]} against {b.ravel()[:4]}"
    return None


def changes_value(ctx: ir.Context, claim: ir.Claim, points: int = 2, seed: int = 0) -> bool:
    """Whether the claim is false: its sides differ, or do not compose, at some size, length and step."""
    return difference(ctx, claim, points, seed) is not None
