"""Soundness, property-based: a true claim written another valid way is still proved (issue 8).

From claims the engines prove (the note's, the examples'), Hypothesis draws
chains of equivalent rewrites (derivations/rewrites.py: transposes of
transposes, (AB)^T = B^T A^T, Hadamard factors commuted and re-associated,
diag(u) v for u∘v, σ'(a) as σ(a)∘(1 - σ(a)) or as h∘(1 - h) through the
defined h, tanh' likewise, distributed products, sums reordered, scalars
moved).  Every rewrite must be proved by every engine that applies, and must
print back to the same intermediate form (parse(print(x)) == x).
A fixed seed and a bounded number of examples keep CI's time; the benchmark
`benchmarks/soundness.py` runs more.
"""
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derivations import allsizes, explicit, ir
from derivations.verdicts import INCONCLUSIVE, PROVED
from derivations.latex.files import read_derivation
from derivations.latex.printer import claim_latex
from derivations.latex.reader import parse_derivation, parse_statement
from derivations.rewrites import rewrites

ROOT = Path(__file__).resolve().parent.parent
# True claims, cheap to prove: the note's lemmas and the min-char-rnn example's lines.
POOL_IDS = {
    ROOT / "derivations" / "note" / "note.md": ["def1", "lemma1-dh-2", "lemma1-dW-corrected", "lemma1-chain-3",
                                              "cor1-dh", "lemma2-dv", "lemma2-du-proof-corrected-2", "eq16",
                                              "bptt-dh_prev-corrected", "comment2-1"],
    ROOT / "examples" / "min_char_rnn.md": ["dh", "dWhh", "dh0", "dbh"],
    ROOT / "examples" / "mlp.md": ["dz1", "dW1"],
}


# Lines that write σ' and tanh' of the very pre-activation the state is defined by, so that the
# rewrites through the defined state (h∘(1 - h), 1 - h∘h) are drawn too.
DERIVATIVES = r"""# Sigmoid and tanh RNNs, abstract loss

$$ W_{xh} \in \mathbb{R}^{H \times E}, \quad W_{hh} \in \mathbb{R}^{H \times H}, \quad W_{hy} \in \mathbb{R}^{V \times H} $$

$$ X_t \in \mathbb{R}^{E}, \quad h_0 \in \mathbb{R}^{H}, \quad g_0 \in \mathbb{R}^{H}, \quad \ell \in \mathbb{R} $$

$$ h_t := \sigma(W_{xh} X_t + W_{hh} h_{t-1}), \quad g_t := \tanh(W_{xh} X_t + W_{hh} g_{t-1}) $$

$$ S_t := W_{hy} h_t + W_{hy} g_t, \quad dS_t \in \mathbb{R}^{V}, \quad dS_t := \frac{\partial \ell}{\partial S_t} $$

$$ dh_t := \frac{\partial \ell}{\partial h_t}, \quad dg_t := \frac{\partial \ell}{\partial g_t} $$

$$ dh_t = W_{hy}^T dS_t + W_{hh}^T (\sigma'(W_{xh} X_{t+1} + W_{hh} h_t) \circ dh_{t+1}) \tag{sigmoid} $$

$$ dg_t = W_{hy}^T dS_t + W_{hh}^T (\tanh'(W_{xh} X_{t+1} + W_{hh} g_t) \circ dg_{t+1}) \tag{tanh} $$
"""


def _pool():
    out = []
    for path, ids in POOL_IDS.items():
        d = read_derivation(path)
        for ctx in d.contexts:
            out += [(ctx, c) for c in ctx.claims if c.id in ids]
    ctx = parse_derivation(DERIVATIVES, "derivatives.md").contexts[0]
    return out + [(ctx, c) for c in ctx.claims]


POOL = _pool()


def test_the_pool_is_what_it_says():
    assert sorted(c.id for _, c in POOL) == sorted([i for ids in POOL_IDS.values() for i in ids]
                                                   + ["sigmoid", "tanh"])


@st.composite
def rewritten(draw):
    ctx, claim = draw(st.sampled_from(POOL))
    lhs, rhs, kinds = claim.lhs, claim.rhs, []
    for _ in range(draw(st.integers(1, 3))):
        side = draw(st.sampled_from(["lhs", "rhs"]))
        options = rewrites(lhs if side == "lhs" else rhs, ctx)
        if not options:
            continue
        kind, new = draw(st.sampled_from(options))
        kinds.append(kind)
        lhs, rhs = (new, rhs) if side == "lhs" else (lhs, new)
    return ctx, ir.Claim(claim.id + "~", claim.label, lhs, rhs, claim.source), kinds


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(rewritten())
def test_every_equivalent_rewrite_is_proved_and_prints_back(case):
    ctx, claim, kinds = case
    text = claim_latex(claim.lhs, claim.rhs)
    assert parse_statement(text, ctx) == (claim.lhs, claim.rhs), text
    out = explicit.prove(ctx, claim)
    assert out.verdict == PROVED, (kinds, text, out.reason)
    other = allsizes.prove(ctx, claim)
    assert other is None or other.verdict in (PROVED, INCONCLUSIVE), (kinds, text, other.reason)


@pytest.mark.parametrize("kind", ["sigma-prime", "tanh-prime"])
def test_derivatives_written_through_the_defined_state_are_among_the_rewrites(kind):
    found = [(ctx, c, new) for ctx, c in POOL for k, new in rewrites(c.rhs, ctx) if k == kind
             and any(isinstance(n, ir.Ref) and n.name in ("h", "g") and n.time == ir.Time("t", 1)
                     for n in new.walk())]
    assert found, kind
    ctx, c, new = found[0]
    assert explicit.prove(ctx, ir.Claim(c.id + "~", c.label, c.lhs, new, c.source)).verdict == PROVED
