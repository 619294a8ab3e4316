"""The verdicts and what one engine returns: defined once, read by every engine, the runner and the outputs.

An engine says PROVED, REFUTED, ILL_TYPED or INCONCLUSIVE about one claim (an `Outcome`).  The runner
combines them: CONFLICT when one engine proves what another refutes or finds ill-typed (an engine error,
verify exits 2, never a vote); CHECKED when only engines working at explicit sizes and lengths found no
difference (evidence, never "proved").
"""
from __future__ import annotations

from dataclasses import dataclass, field

PROVED, REFUTED, ILL_TYPED, INCONCLUSIVE = "proved", "refuted", "ill-typed", "inconclusive"
CONFLICT = "conflict"
CHECKED = "checked"
VERDICTS = (PROVED, REFUTED, ILL_TYPED, INCONCLUSIVE, CONFLICT, CHECKED)


class EngineDefect(RuntimeError):
    """An engine reported something the model contradicts (a counterexample whose sides agree when recomputed
    from its free inputs): an error of the tool, not a verdict."""


@dataclass
class Outcome:
    """What one engine found for one claim."""
    verdict: str
    method: str
    shapes: list = field(default_factory=list)
    reason: str = ""
    counterexample: dict | None = None
