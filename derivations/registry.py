"""The registry of Python builders: the helper lemmas' and the whole algorithm's, for the old engines' tests.

Every statement of the note lives in derivations/note/note.md and is read from
its LaTeX.  The builders registered here state the helper lemmas, (9), (10),
(15), (16) and the whole algorithm once more as SymPy matrix expressions: the
targets of the soundness tests (`derivations.soundness`) and of the engines
that work on builders (concrete, generic, graph, induction).  The mechanism of
`> Python: <id>` in note.md (a statement checked by the builder of that id)
remains; no line of the note uses it.

A builder is a small function that builds the statement at given sizes, next to
its label and LaTeX.  It is registered with the `@claim` decorator, the way
autograd registers a derivative rule with `defvjp`: a plain ordered dict, no
magic.  The order of registration is the order of the note.  `relies_on` and
`corrects` may name a registered builder or a claim (or chain) of note.md.
"""
from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

AS_WRITTEN = "as-written"      # the note's line, encoded as the note writes it
CORRECTED = "corrected"        # our repair of a line that the verifier refutes
SUPPORTING = "supporting"      # a lemma the tool itself relies on (not in the note)
KINDS = (AS_WRITTEN, CORRECTED, SUPPORTING)

# Shapes the concrete engine tries, per family of dimension names.  Every
# family has a size-1 case, a square case and non-square cases.
MN_SHAPES = ({"m": 1, "n": 1}, {"m": 2, "n": 2}, {"m": 2, "n": 3}, {"m": 3, "n": 2})
N_SHAPES = ({"n": 1}, {"n": 2}, {"n": 3}, {"n": 4})
V_SHAPES = ({"V": 1}, {"V": 2}, {"V": 3}, {"V": 4})
RNN_SHAPES = (
    {"H": 1, "E": 1, "V": 1},
    {"H": 2, "E": 2, "V": 2},
    {"H": 2, "E": 3, "V": 3},
    {"H": 3, "E": 2, "V": 2},
)
# Through-time claims: every line of the BPTT algorithm at T = 1, 2, 3.
BPTT_SHAPES = (
    {"H": 1, "E": 1, "V": 1, "T": 2},
    {"H": 2, "E": 2, "V": 2, "T": 1},
    {"H": 2, "E": 2, "V": 2, "T": 2},
    {"H": 2, "E": 3, "V": 2, "T": 3},
)


@dataclass(frozen=True)
class Claim:
    id: str
    label: str
    latex: str
    section: str
    build: Callable = field(repr=False)
    shapes: tuple = MN_SHAPES
    kind: str = AS_WRITTEN
    corrects: str | None = None
    relies_on: tuple = ()
    comment: str = ""
    # For a line of the BPTT algorithm: the quantity it updates ("dW_hh", "dh", ...).
    # Its builder then returns the update as a matrix expression in the step
    # symbols of `derivations.unrolled`, checked at every t of an unrolled RNN.
    lhs: str | None = None
    # The part of the statement the notation can express, as LaTeX in its context of note.md (the
    # repair search edits it: a builder has no intermediate form), and what that part leaves out.
    expressible: str | None = None
    not_expressed: str = ""

    def fingerprint(self) -> str:
        """Content hash of the encoding: what the cache keys proofs by."""
        text = "\n".join([self.id, self.label, self.latex, self.kind, str(self.corrects),
                          repr(self.shapes), inspect.getsource(self.build)])
        return hashlib.sha256(text.encode()).hexdigest()


CLAIMS: dict[str, Claim] = {}


def claim(id, label, latex, *, section, shapes=MN_SHAPES, kind=AS_WRITTEN, corrects=None,
          relies_on=(), comment="", lhs=None, expressible=None, not_expressed=""):
    """Register the decorated builder as the claim `id` of the note."""
    if kind not in KINDS:
        raise ValueError(f"claim {id!r}: kind must be one of {KINDS}, got {kind!r}")

    def register(build):
        if id in CLAIMS:
            raise ValueError(f"claim {id!r} is registered twice")
        CLAIMS[id] = Claim(id=id, label=label, latex=latex.strip(), section=section, build=build,
                           shapes=tuple(shapes), kind=kind, corrects=corrects,
                           relies_on=tuple(relies_on), comment=comment, lhs=lhs,
                           expressible=expressible, not_expressed=not_expressed)
        return build

    return register


def corrections_of(claim_id: str) -> list[Claim]:
    return [c for c in CLAIMS.values() if c.corrects == claim_id]


def _note_ids() -> set:
    """The ids of note.md's claims and of its chains (a chain a = b = c is one group id)."""
    from .note.step_model import note_derivation
    return {x for c in note_derivation().claims for x in (c.id, c.group)}


def check_references() -> None:
    """Every `relies_on` and `corrects` names a registered claim or a claim (or chain) of note.md."""
    known = set(CLAIMS) | _note_ids()
    for c in CLAIMS.values():
        for dep in c.relies_on:
            if dep not in known:
                raise ValueError(f"claim {c.id!r} relies on {dep!r}, which is neither registered nor in note.md")
        if c.corrects is not None and c.corrects not in known:
            raise ValueError(f"claim {c.id!r} corrects {c.corrects!r}, which is neither registered nor in note.md")
