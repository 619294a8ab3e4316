"""The soundness tests' oracle (tests/oracle.py) tells equal, different and ill-typed apart, by numbers.

It decides, independently of the engines, whether an edited claim still holds: the property tests
(test_mutations.py, test_rewrites.py) and benchmarks/soundness_parsed.py rest on it.
"""
from oracle import changes_value, difference

from derivations.form import ir
from derivations.latex.reader import parse_derivation

HEAD = r"""# A sigmoid RNN with an abstract loss

$$ W_{xh} \in \mathbb{R}^{H \times E}, \quad W_{hh} \in \mathbb{R}^{H \times H}, \quad W_{hy} \in \mathbb{R}^{V \times H} $$

$$ X_t \in \mathbb{R}^{E}, \quad h_0 \in \mathbb{R}^{H}, \quad \ell \in \mathbb{R} $$

$$ STATE, \quad S_t := W_{hy} h_t $$

$$ dS_t \in \mathbb{R}^{V}, \quad dS_t := \frac{\partial \ell}{\partial S_t} $$

$$ dh_t := \frac{\partial \ell}{\partial h_t} $$
"""
DEFINED = r"h_t := \sigma(W_{xh} X_t + W_{hh} h_{t-1})"
FREE = r"h_t \in \mathbb{R}^{H}"          # the same name, an input: nothing ties it to σ


def claim(line, state=DEFINED):
    ctx = parse_derivation(HEAD.replace("STATE", state) + f"\n$$ {line} $$\n", "t.md").contexts[0]
    return ctx, ctx.claims[-1]


TRUE = r"dh_t = W_{hy}^T dS_t + W_{hh}^T (\sigma'(W_{xh} X_{t+1} + W_{hh} h_t) \circ dh_{t+1})"
VIA_H = r"dh_t = W_{hy}^T dS_t + W_{hh}^T (h_{t+1} \circ (1 - h_{t+1}) \circ dh_{t+1})"


def test_a_true_line_and_its_writing_through_the_defined_state_hold():
    assert not changes_value(*claim(TRUE))
    assert not changes_value(*claim(VIA_H))


def test_a_slip_changes_the_value():
    for line in (TRUE.replace("W_{hh}^T (", "W_{hh} ("),                       # the transpose dropped
                 TRUE.replace("+ W_{hh}^T", "- W_{hh}^T"),                      # a sign
                 TRUE.replace(r"\sigma'", r"\sigma"),                           # σ for σ'
                 r"dh_t = W_{hy}^T dS_t"):                                      # the future dropped
        assert changes_value(*claim(line)), line


def test_a_line_that_does_not_compose_is_told_apart():
    where = difference(*claim(r"dh_t = W_{hy} dS_t + W_{hh}^T dh_{t+1}"))
    assert where is not None and ("compose" in where or "against" in where), where
    assert changes_value(*claim(r"dh_t = dh_t^T dh_t"))


def test_the_defined_state_is_recomputed_from_its_definition():
    # h∘(1 - h) is σ'(a) only because h := σ(a): with h an input of its own, the same line is false.
    ctx, c = claim(VIA_H, FREE)
    assert "h" not in ctx.definitions
    assert changes_value(ctx, c)


def test_sigma_is_the_real_sigmoid():
    # σ'(x) = σ(x)(1 - σ(x)) holds and σ'(x) = σ(x)^2 does not: σ is 1/(1 + e^{-x}), not a symbol.
    head = r"""# σ

$$ x \in \mathbb{R}^{n}, \quad y := \sigma(x) $$
"""
    ctx = parse_derivation(head + "\n$$ \\sigma'(x) = y \\circ (1 - y) $$\n\n$$ \\sigma'(x) = y \\circ y $$\n",
                           "s.md").contexts[0]
    right, wrong = ctx.claims
    assert not changes_value(ctx, right) and changes_value(ctx, wrong)
    assert isinstance(ctx.definitions["y"].expr, ir.Apply)
