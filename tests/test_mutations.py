"""Soundness, property-based: a single slip in a true line is never proved (issue 8).

From true claims (the pool of tests/test_rewrites.py: the note's lemmas and
lines, the examples' lines), Hypothesis draws one single edit of the kinds a
derivation gets wrong (derivations/analyses/repair.py's edits: a transpose added or
removed, a product for a ∘ and back, swapped operands, f for f′ and back, a
symbol replaced by another of a compatible shape, t for t±1, a dropped term, a
flipped sign, ...).  Some edits are equivalent by accident (commuting a ∘,
shifting a step in a line about the last step): whether an edit changes the
value is decided by numbers (tests/oracle.py: both sides in NumPy at random
inputs, σ as 1/(1 + e^{-x}), every defined quantity recomputed from its
definition, every derivative a finite difference; sizes 2, 3, 4, ..., every T
up to a few steps past the claim's reach; nothing of the engines) -- never
assumed.  An edit that changes the value
must come out refuted or ill-typed from the engines combined; one that does
not must never be refuted.  A fixed seed and a bounded number of examples keep
CI's time; `benchmarks/soundness_parsed.py` tries every edit of every claim.
"""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import changes_value
from test_rewrites import POOL

from derivations import engines
from derivations.analyses.repair import single_edits
from derivations.engines.verdicts import ILL_TYPED, REFUTED
from derivations.form import ir

LIMIT = 30.0             # seconds per engine and mutation (verify's default is 300)


def engines_verdict(ctx, claim) -> dict:
    """Every engine of parsed claims, combined as `verify` does, with a time limit per engine (an engine
    stopped there counts as inconclusive, as in `verify`)."""
    return engines.run_engines(engines.parsed_engines(), (ctx, claim), claim.id, LIMIT)


@st.composite
def mutated(draw):
    ctx, claim = draw(st.sampled_from(POOL))
    options = list(single_edits(claim, ctx))
    kind, _, new = draw(st.sampled_from(options))
    return ctx, claim, kind, new


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_a_single_edit_that_changes_the_value_is_refuted_or_ill_typed(case):
    ctx, original, kind, claim = case
    out = engines_verdict(ctx, claim)
    where = (original.id, kind, out["reason"])
    if changes_value(ctx, claim):
        assert out["verdict"] in (REFUTED, ILL_TYPED), where
    else:
        assert out["verdict"] not in (REFUTED, ILL_TYPED), where


def test_every_pool_claim_has_edits_of_the_kinds_that_matter():
    kinds = {k for ctx, c in POOL for k, _, _ in single_edits(c, ctx)}
    assert {"add-transpose", "remove-transpose", "product-to-hadamard", "hadamard-to-product", "swap-operands",
            "add-derivative", "remove-derivative", "shift-time", "drop-term", "flip-sign",
            "replace-symbol"} <= kinds


def test_a_stacked_input_at_another_step_is_not_read_as_this_steps():
    # Found by the property test above: an engine (the note's one-step model) read Z_{t-1} as Z_t, proving
    # a false line (a conflict with the concrete engine).  The line is false, and refuted.
    ctx, claim = next((x, c) for x, c in POOL if c.id == "bptt-dh_prev-corrected")
    shifted = [new for kind, _, new in single_edits(claim, ctx) if kind == "shift-time"
               and any(isinstance(n, ir.Ref) and n.name == "Z" and n.time != ir.Time("t") for n in new.rhs.walk())]
    assert shifted
    for new in shifted:
        assert changes_value(ctx, new)
        assert engines_verdict(ctx, new)["verdict"] == REFUTED


def test_no_single_edit_of_the_lemma_1_chain_crashes_an_engine():
    # Found by benchmarks/soundness_parsed.py: ∂(dW h)/∂h differentiates f' again (f'' of the generic f),
    # which the numbers could not evaluate and the index form could not expand: an engine error.
    ctx, claim = next((x, c) for x, c in POOL if c.id == "lemma1-chain-3")
    for kind, _, new in single_edits(claim, ctx):
        engines_verdict(ctx, new)                 # raises EngineCrash on an engine error
