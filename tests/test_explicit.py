"""The engines that read the intermediate form: concrete (explicit sizes, steps) and all sizes.

Each proof method is shown refuting false claims; true claims written in
unusual but valid ways are proved; counterexamples reproduce from the free
inputs alone, every defined quantity recomputed from its definition.
"""
import fd
import pytest
import sympy as sp
from oracle import changes_value

from derivations.engines import allsizes, explicit
from derivations.engines.verdicts import ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED
from derivations.latex.reader import parse_derivation

SIGMOID_RNN = r"""# A sigmoid RNN with an abstract loss

$$ W_{xh} \in \mathbb{R}^{H \times E}, \quad W_{hh} \in \mathbb{R}^{H \times H}, \quad W_{hy} \in \mathbb{R}^{V \times H} $$

$$ X_t \in \mathbb{R}^{E}, \quad h_0 \in \mathbb{R}^{H}, \quad \ell \in \mathbb{R} $$

$$ h_t := \sigma(W_{xh} X_t + W_{hh} h_{t-1}), \quad S_t := W_{hy} h_t $$

$$ dS_t \in \mathbb{R}^{V}, \quad dS_t := \frac{\partial \ell}{\partial S_t} $$

$$ dh_t := \frac{\partial \ell}{\partial h_t} $$
"""

LEMMA = r"""# Lemma 1

$$ W \in \mathbb{R}^{m \times n}, \quad h \in \mathbb{R}^{n}, \quad \ell \in \mathbb{R}, \quad f : \mathbb{R} \to \mathbb{R} $$

$$ V := f(W h), \quad dv \in \mathbb{R}^{m}, \quad dv := \frac{\partial \ell}{\partial V} $$
"""


def claim_in(head: str, line: str):
    d = parse_derivation(head + f"\n$$ {line} $$\n", "t.md")
    ctx = d.contexts[0]
    return ctx, ctx.claims[-1]


def concrete(head, line):
    ctx, c = claim_in(head, line)
    return explicit.prove(ctx, c)


def all_sizes(head, line):
    ctx, c = claim_in(head, line)
    return allsizes.prove(ctx, c)


# ---------------------------------------------------------------- true, in many spellings

@pytest.mark.parametrize("line", [
    r"dh_t = W_{hy}^T dS_t + W_{hh}^T (\sigma'(W_{xh} X_{t+1} + W_{hh} h_t) \circ dh_{t+1})",
    r"dh_t = W_{hy}^T dS_t + W_{hh}^T (h_{t+1} \circ (1 - h_{t+1}) \circ dh_{t+1})",
    r"dh_t = W_{hy}^\top dS_t + (dh_{t+1}^T \operatorname{diag}(h_{t+1} - h_{t+1}^2) W_{hh})^T",
    r"\frac{\partial \ell}{\partial W_{hh}} = \sum_{t=1}^{T} (h_t \circ (1 - h_t) \circ dh_t) h_{t-1}^T",
    r"\frac{\partial \ell}{\partial h_0} = W_{hh}^T ((h_1 - \sigma^2(W_{xh} X_1 + W_{hh} h_0)) \circ dh_1)",
    r"dh_t = W_{hy}^T dS_t + W_{hh}^T (\sigma'(-W_{xh} X_{t+1} - W_{hh} h_t) \circ dh_{t+1})",   # σ' is even
])
def test_true_rnn_lines_in_unusual_spellings_are_proved(line):
    out = concrete(SIGMOID_RNN, line)
    assert out.verdict == PROVED, out.reason


@pytest.mark.parametrize("line, verdict", [
    (r"dh_t = W_{hy}^T dS_t + W_{hh} (h_{t+1} \circ (1 - h_{t+1}) \circ dh_{t+1})", REFUTED),      # W_hh^T
    (r"dh_t = W_{hy}^T dS_t + W_{hh}^T dh_{t+1}", REFUTED),                                         # no σ'
    (r"dh_t = W_{hy}^T dS_t", REFUTED),                                                             # no future
    (r"dh_t = W_{hy}^T dS_t - W_{hh}^T (h_{t+1} \circ (1 - h_{t+1}) \circ dh_{t+1})", REFUTED),     # sign
    (r"\frac{\partial \ell}{\partial W_{hh}} = \sum_{t=1}^{T} (h_t \circ (1 - h_t) \circ dh_t) h_{t-1}", ILL_TYPED),
    (r"dh_t = W_{hy}^T dS_{t+1} + W_{hh}^T (h_{t+1} \circ (1 - h_{t+1}) \circ dh_{t+1})", REFUTED),  # t+1
])
def test_false_rnn_lines_are_refuted_or_ill_typed(line, verdict):
    out = concrete(SIGMOID_RNN, line)
    assert out.verdict == verdict, out.reason


@pytest.mark.parametrize("line, verdict", [
    (r"\frac{\partial \ell}{\partial h} = W^T (f'(W h) \circ dv)", PROVED),
    (r"\frac{\partial \ell}{\partial h} = (dv^T \operatorname{diag}(f'(Wh)) W)^\top", PROVED),
    (r"\frac{\partial \ell}{\partial W} = (f'(W h) \circ dv) h^T", PROVED),
    (r"\frac{\partial \ell}{\partial h} = W^T (f(W h) \circ dv)", REFUTED),            # f for f'
    (r"\frac{\partial \ell}{\partial h} = -W^T (f'(W h) \circ dv)", REFUTED),          # sign
    (r"\frac{\partial \ell}{\partial h} = W (f'(W h) \circ dv)", ILL_TYPED),           # missing transpose
    (r"\frac{\partial \ell}{\partial W} = (f'(W h) \cdot dv) h^T", ILL_TYPED),         # · for ∘
])
@pytest.mark.parametrize("engine", [concrete, all_sizes], ids=["concrete", "all sizes"])
def test_both_engines_prove_lemma_1_and_refute_its_mutations(engine, line, verdict):
    out = engine(LEMMA, line)
    if engine is all_sizes and verdict == REFUTED:
        # All sizes proves or finds no zero; the counterexample is the concrete engine's.
        assert out.verdict != PROVED
    else:
        assert out.verdict == verdict, out.reason


# ---------------------------------------------------------------- made-up slips, for both engines

SQUARE = r"""# A square layer

$$ W \in \mathbb{R}^{n \times n}, \quad h \in \mathbb{R}^{n}, \quad u \in \mathbb{R}^{n}, \quad v \in \mathbb{R}^{n},
   \quad f : \mathbb{R} \to \mathbb{R} $$

$$ Z := W h, \quad V := f(Z) $$
"""

# Claims false in the ways a derivation goes wrong (ported from the index-form engine of the Python
# builders); the truth of each is decided by numbers here (tests/oracle.py), never typed in.
MADE_UP = [
    (LEMMA, r"\frac{\partial \ell}{\partial W} = h (f'(W h) \circ dv)^T", ILL_TYPED),          # dW transposed
    (SQUARE, r"\frac{\partial Z}{\partial h} = W", REFUTED),                                   # W for W^T
    (SQUARE, r"\frac{\partial Z}{\partial h} = W^T", PROVED),
    (SQUARE, r"\frac{\partial V}{\partial Z} = f'(Z)", ILL_TYPED),                             # a vector, not diag
    (SQUARE, r"\operatorname{diag}(u) v = v", REFUTED),
    (SQUARE, r"\operatorname{diag}(u) v = u \circ v", PROVED),
    (SIGMOID_RNN, r"\frac{\partial \ell}{\partial W_{xh}} = \sum_{t=1}^{T} dh_t X_t^T", REFUTED),   # no σ'
    (SIGMOID_RNN, (r"\frac{\partial \ell}{\partial W_{xh}} = \sum_{t=1}^{T} (\sigma(W_{xh} X_t + W_{hh} h_{t-1}) "
                   r"\circ dh_t) X_t^T"), REFUTED),                                              # σ for σ'
    (SIGMOID_RNN, (r"\frac{\partial \ell}{\partial W_{xh}} = \sum_{t=1}^{T} (\sigma'(W_{xh} X_t + W_{hh} h_{t-1}) "
                   r"\circ dh_t) X_t^T"), PROVED),
    (SIGMOID_RNN, r"\frac{\partial \ell}{\partial X_t} = W_{xh} (h_t \circ (1 - h_t) \circ dh_t)", ILL_TYPED),
    (SIGMOID_RNN, r"\frac{\partial \ell}{\partial X_t} = W_{xh}^T (h_t \circ (1 - h_t) \circ dh_t)", PROVED),
    (SIGMOID_RNN, r"\frac{\partial \ell}{\partial h_0} = W_{hh}^T (\sigma'(W_{xh} X_1 + W_{hh} h_0) \circ (-dh_1))",
     REFUTED),                                                                                      # sign
    (SIGMOID_RNN, r"\frac{\partial \ell}{\partial W_{hy}} = \sum_{t=1}^{T} dS_t h_{t-1}^T", REFUTED),  # h_{t-1}
]


@pytest.mark.parametrize("head, line, verdict", MADE_UP, ids=[f"{n}" for n in range(len(MADE_UP))])
def test_made_up_slips_are_refuted_or_ill_typed_by_both_engines(head, line, verdict):
    ctx, c = claim_in(head, line)
    assert changes_value(ctx, c) == (verdict != PROVED), line          # the truth, by numbers
    out = explicit.prove(ctx, c)
    assert out.verdict == verdict, (line, out.reason)
    other = allsizes.prove(ctx, c)
    if other is not None:
        # All sizes proves, finds the shapes wrong, or finds no zero (the counterexample is the explicit engine's).
        assert other.verdict == verdict if verdict != REFUTED else other.verdict != PROVED, (line, other.reason)


def test_a_true_line_whose_difference_does_not_reduce_to_zero_is_inconclusive_not_proved(monkeypatch):
    # An exact zero test that cannot decide (as expand and cancel cannot show sin² + cos² = 1), and no
    # point where the sides differ: the honest answer is "inconclusive", never "proved".
    monkeypatch.setattr(explicit, "exactly_zero", lambda d: False)
    out = concrete(LEMMA, r"\frac{\partial \ell}{\partial h} = W^T (f'(W h) \circ dv)")
    assert out.verdict == INCONCLUSIVE, out.reason


# ---------------------------------------------------------------- counterexamples


def test_counterexample_names_only_free_inputs_and_reproduces_from_them():
    ctx, c = claim_in(SIGMOID_RNN, r"dh_t = W_{hy}^T dS_t + W_{hh} (h_{t+1} \circ (1 - h_{t+1}) \circ dh_{t+1})")
    out = explicit.prove(ctx, c)
    cex = out.counterexample
    assert out.verdict == REFUTED and cex["clear_margin"] and cex["relative_difference"] >= 0.1
    assert not any(name.startswith(("h_1", "h_2", "h_3", "S_")) for name in cex["values"])
    assert all(sp.Rational(v).is_Rational for v in cex["values"].values())
    lhs, rhs = explicit.replay(ctx, c, cex)
    assert abs(lhs - rhs) > 1e-20
    assert explicit.show_mp(lhs) == cex["truth"] and explicit.show_mp(rhs) == cex["claimed"]


SCALARS = r"""# Scalars

$$ x \in \mathbb{R}, \quad y \in \mathbb{R} $$
"""


def _scalar_point(cex):
    return {k.split("[")[0]: sp.Rational(v) for k, v in cex["values"].items()}


def test_a_counterexample_has_exact_rational_values_and_a_clear_margin():
    out = concrete(SCALARS, r"x y + x = x y")
    cex = out.counterexample
    p = _scalar_point(cex)
    # The claim's right-hand side is "claimed", its left-hand side the "truth": exact, no 0.250000.
    assert sp.Rational(cex["claimed"]) == p["x"] * p["y"] and sp.Rational(cex["truth"]) == p["x"] * p["y"] + p["x"]
    relative = abs(p["x"]) / max(abs(p["x"] * p["y"]), abs(p["x"] * p["y"] + p["x"]))
    assert cex["clear_margin"] and relative >= sp.Rational(1, 10)
    assert abs(relative - cex["relative_difference"]) <= 0.005 * relative


def test_a_counterexample_without_a_clear_margin_says_so():
    # The sides differ by y while both are about 1000 x: under 1% at every small input.
    out = concrete(SCALARS, r"1000 x = 1000 x + y")
    cex = out.counterexample
    assert out.verdict == REFUTED and not cex["clear_margin"]
    assert 0 < cex["relative_difference"] < 0.1 and cex["claimed"] != cex["truth"]


def test_irrational_values_show_at_most_six_significant_digits():
    import math
    out = concrete(SCALARS, r"\sigma(x) = \sigma(2 x)")
    cex = out.counterexample
    x = float(_scalar_point(cex)["x"])
    for side, value in (("truth", 1 / (1 + math.exp(-x))), ("claimed", 1 / (1 + math.exp(-2 * x)))):
        assert cex[side] == f"{value:.6g}"
        assert len(cex[side].lstrip("-0.").replace(".", "")) <= 6
    assert cex["clear_margin"]


def test_a_counterexample_is_deterministic():
    explicit._MODELS.clear()
    first = concrete(SIGMOID_RNN, r"dh_t = W_{hy}^T dS_t").counterexample
    explicit._MODELS.clear()
    assert concrete(SIGMOID_RNN, r"dh_t = W_{hy}^T dS_t").counterexample == first


def test_replay_refuses_a_point_that_sets_a_defined_quantity():
    ctx, c = claim_in(SIGMOID_RNN, r"dh_t = W_{hy}^T dS_t")
    cex = dict(explicit.prove(ctx, c).counterexample)
    cex["values"] = {**cex["values"], "h_1[0]": "1/2"}
    with pytest.raises(ValueError, match="free inputs"):
        explicit.replay(ctx, c, cex)


def test_replay_refuses_a_point_without_a_value_for_every_free_input():
    ctx, c = claim_in(SIGMOID_RNN, r"dh_t = W_{hy}^T dS_t")
    cex = dict(explicit.prove(ctx, c).counterexample)
    cex["values"] = dict(list(cex["values"].items())[1:])
    with pytest.raises(ValueError, match="missing"):
        explicit.replay(ctx, c, cex)


def test_a_point_where_a_true_line_holds_is_no_refutation_but_an_engine_defect():
    # The issue's line, σ'(a) written h∘(1 - h): true, with h recomputed from its definition.  A point
    # (here the counterexample of the same line with W_hh for W_hh^T: the same free inputs) is no
    # refutation of it, and neither is a point that gives h a value of its own.
    true = r"dh_t = W_{hy}^T dS_t + W_{hh}^T (h_{t+1} \circ (1 - h_{t+1}) \circ dh_{t+1})"
    ctx, c = claim_in(SIGMOID_RNN, true.replace("W_{hh}^T", "W_{hh}"))
    cex = explicit.prove(ctx, c).counterexample
    ctx, c = claim_in(SIGMOID_RNN, true)
    with pytest.raises(Exception, match="both sides agree"):         # EngineDefect
        explicit.confirm(ctx, c, cex)
    with pytest.raises(Exception, match="free inputs"):
        explicit.confirm(ctx, c, {**cex, "values": {**cex["values"], "h_1[0]": "-1/3"}})


# ---------------------------------------------------------------- semantics


def test_steps_outside_the_sequence_are_zero_and_h0_is_the_initial_state():
    assert concrete(SIGMOID_RNN, r"dh_T = W_{hy}^T dS_T").verdict == PROVED
    assert concrete(SIGMOID_RNN, r"h_{T+1} = 0 h_1").verdict == PROVED
    assert concrete(SIGMOID_RNN, r"h_0 = 0 h_1").verdict == REFUTED


def test_a_quantity_at_a_step_holds_earlier_steps_fixed():
    # A loss linear in the scores from step t on (g_s fixed vectors), so that ∂ℓ_t/∂S_s = g_s.
    head = r"""# A sigmoid RNN, a loss from step t on

$$ W_{xh} \in \mathbb{R}^{H \times E}, \quad W_{hh} \in \mathbb{R}^{H \times H}, \quad W_{hy} \in \mathbb{R}^{V \times H} $$

$$ X_t \in \mathbb{R}^{E}, \quad h_0 \in \mathbb{R}^{H}, \quad g_t \in \mathbb{R}^{V} $$

$$ h_t := \sigma(W_{xh} X_t + W_{hh} h_{t-1}), \quad S_t := W_{hy} h_t, \quad \ell_t := \sum_{s=t}^{T} g_s^T S_s $$

> Derivatives: earlier steps held fixed

$$ dh_t := \frac{\partial \ell_1}{\partial h_t} $$
"""
    # ∂ℓ_t/∂W_hh counts only the uses of W_hh at steps t..T (the note's reading of ℓ_t).
    line = (r"\frac{\partial \ell_t}{\partial W_{hh}} = \frac{\partial \ell_{t+1}}{\partial W_{hh}} + "
            r"(h_t \circ (1 - h_t) \circ \frac{\partial \ell_t}{\partial h_t}) h_{t-1}^T")
    assert concrete(head, line).verdict == PROVED
    total = (r"\frac{\partial \ell_1}{\partial W_{hh}} = \sum_{t=1}^{T} (h_t \circ (1 - h_t) \circ dh_t) h_{t-1}^T")
    assert concrete(head, total).verdict == PROVED
    for text in (line, total):                  # the truth by finite differences, with the same reading
        assert fd.truth(*claim_in(head, text))[0] == "true"


def test_a_backward_recurrence_truncated_beyond_the_checked_lengths_is_refuted_on_a_longer_sequence():
    # Exact for T ≤ 3 (two steps ahead reach the end of the sequence), wrong from T = 4 on: dS_{t+3}
    # is dropped.  Proving at T = 1, 2, 3 alone would call it proved.
    truncated = (r"dh_t = W_{hy}^T dS_t + W_{hh}^T (h_{t+1} \circ (1 - h_{t+1}) \circ (W_{hy}^T dS_{t+1} + "
                 r"W_{hh}^T (h_{t+2} \circ (1 - h_{t+2}) \circ W_{hy}^T dS_{t+2})))")
    ctx, c = claim_in(SIGMOID_RNN, truncated)
    out = explicit.prove(ctx, c)
    assert out.verdict == REFUTED, out.reason
    assert out.counterexample["shape"]["T"] >= 4
    lhs, rhs = explicit.replay(ctx, c, out.counterexample)
    assert abs(lhs - rhs) > 1e-20
    # The full recurrence, the same length of line, is proved, with the longer lengths said to be numeric.
    full = concrete(SIGMOID_RNN, r"dh_t = W_{hy}^T dS_t + W_{hh}^T (h_{t+1} \circ (1 - h_{t+1}) \circ dh_{t+1})")
    assert full.verdict == PROVED and "numerically" in full.reason


def test_a_counterexample_names_only_its_own_claims_inputs_whatever_ran_before():
    # The models are shared by the claims of a process: the first claim creates y (through L);
    # the second's counterexample must neither need nor name it, and must be the same as alone.
    head = r"""# Least squares

$$ x \in \mathbb{R}^{D}, \quad y \in \mathbb{R}^{C}, \quad W \in \mathbb{R}^{C \times D} $$

$$ z := W x, \quad L := \frac{1}{2} (z - y)^\top (z - y) $$
"""
    d = parse_derivation(head + "\n$$ \\frac{\\partial L}{\\partial x} = W^\\top (z - y) $$\n\n"
                         "$$ \\frac{\\partial z}{\\partial x} = W $$\n", "t.md")
    ctx = d.contexts[0]
    first, second = ctx.claims
    assert explicit.prove(ctx, first).verdict == PROVED
    after = explicit.prove(ctx, second)
    assert after.verdict == ILL_TYPED and after.counterexample is not None
    assert not any(name.startswith("y") for name in after.counterexample["values"])
    explicit._MODELS.clear()
    alone = explicit.prove(parse_derivation(head + "\n$$ \\frac{\\partial z}{\\partial x} = W $$\n", "u.md")
                           .contexts[0], second)
    assert alone.counterexample["values"] == after.counterexample["values"]


def test_a_line_true_only_when_two_sizes_are_equal_is_refuted():
    # Both sides are sums of all-ones columns: H = V at every size tried by a (2, 3, 2) pattern.
    line = r"(1 - h_t + h_t)^T (1 - h_t + h_t) = (1 - S_t + S_t)^T (1 - S_t + S_t)"
    out = concrete(SIGMOID_RNN, line)
    assert out.verdict == REFUTED, out.reason
    shape = out.counterexample["shape"]
    assert shape["H"] != shape["V"]


def test_a_line_about_the_next_step_is_refuted_at_the_last_step_by_every_engine_that_applies():
    # h_{T+1} is zero (a quantity after the last step), not its definition: the all-sizes engine,
    # which would open h_{t+1} by its definition, must not apply; no conflict.
    ctx, c = claim_in(SIGMOID_RNN, r"h_{t+1} = \sigma(W_{xh} X_{t+1} + W_{hh} h_t)")
    assert allsizes.prove(ctx, c) is None
    out = explicit.prove(ctx, c)
    assert out.verdict == REFUTED and "outside the steps" in out.reason
    assert all_sizes(SIGMOID_RNN, r"h_t = \sigma(W_{xh} X_t + W_{hh} h_{t-1})").verdict == PROVED


def test_the_numbers_are_lambdifys():
    # The explicit engine evaluates its expressions by walking them (semantics.mp_function), not by compiling
    # each with lambdify: the same numbers, to far below the 10^-30 a difference must exceed.
    import mpmath

    from derivations.form.functions import MPMATH_FUNCTIONS, indicator, sigma, tanh
    from derivations.form.semantics import mp_function
    x, y, z = sp.symbols("x y z", real=True)
    exprs = [tanh(x * y - sp.Rational(1, 3)) + sp.exp(-x) / (1 + y ** 2), sp.log(z ** 2 + 1) * sigma(x - y) ** 3,
             indicator(x) * x, sp.sqrt(z ** 2 + 1), (x + y) ** -2, sp.tanh(z) - tanh(z), sp.Float("0.1") * x]
    ours = mp_function([x, y, z], exprs)
    theirs = sp.lambdify([x, y, z], exprs, modules=[MPMATH_FUNCTIONS, "mpmath"])
    with mpmath.workdps(60):
        for point in ([1, 2, 3], [-3, 5, -1], [2, -7, 4]):
            values = [mpmath.mpf(v) / 7 for v in point]
            for a, b in zip(ours(*values), theirs(*values)):
                assert abs(a - b) <= mpmath.mpf(10) ** -55 * max(1, abs(b))
    assert mp_function([x], [sp.Piecewise((x, x > 0), (0, True))], one=True)(mpmath.mpf(2)) == 2   # lambdify's


def test_a_function_with_no_real_value_at_a_point_is_no_counterexample_nor_a_crash():
    # log of a negative number is complex in mpmath: once a crash of the engine (a fresh-eyes trial).
    text = r"""# log

$$ u \in \mathbb{R}^{n}, \quad v \in \mathbb{R}^{n} $$

$$ \log(u \circ v) = \log(u) + \log(v) \tag{log-product} $$

$$ \log(u) - \log(v) = \log(u \circ v) \tag{log-wrong} $$
"""
    ctx = parse_derivation(text, "log.md").contexts[0]
    right, wrong = ctx.claims
    assert explicit.prove(ctx, right).verdict != REFUTED          # true wherever log is real
    out = explicit.prove(ctx, wrong)
    assert out.verdict == REFUTED
    explicit.confirm(ctx, wrong, dict(out.counterexample))       # replays from the free inputs


def test_a_side_written_0_is_the_zero_of_the_other_sides_shape():
    # "= 0" against a column or a matrix means its zero, as in a textbook (once ill-typed: a fresh-eyes trial).
    text = r"""# zero

$$ W \in \mathbb{R}^{m \times n}, \quad x \in \mathbb{R}^{n}, \quad \ell := \mathbf{1}^\top W x $$

$$ \frac{\partial \ell}{\partial x} = 0 \tag{dx-zero} $$

$$ \frac{\partial \ell}{\partial W} = 0 \tag{dW-zero} $$

$$ \frac{\partial \ell}{\partial x} - W^\top \mathbf{1} = 0 \tag{dx-minus} $$

$$ \frac{\partial \ell}{\partial W} - \mathbf{1} x^\top = 0 \tag{dW-minus} $$
"""
    ctx = parse_derivation(text, "zero.md").contexts[0]
    for c in ctx.claims:
        truth = fd.truth(ctx, c)[0]
        assert truth in ("true", "false"), c.id                  # typed: the zero has the other side's shape
        assert explicit.prove(ctx, c).verdict == (PROVED if truth == "true" else REFUTED), c.id
    assert {fd.truth(ctx, c)[0] for c in ctx.claims} == {"true", "false"}       # both kinds are tested


def test_a_binary_labels_powers_are_the_label_for_every_size():
    # y ∈ {0, 1}: y^2 = y, so σ(z) - y^2 is the logistic gradient; the engine for every size proves it
    # (it was only checked, a fresh-eyes trial), and a wrong line stays unproved.  Truth by finite differences.
    text = r"""# binary

$$ w \in \mathbb{R}^{D}, \quad x \in \mathbb{R}^{D}, \quad y \in \{0, 1\} $$

$$ z := w^\top x, \quad L := -y \log \sigma(z) - (1 - y) \log (1 - \sigma(z)) $$

$$ \frac{\partial L}{\partial z} = \sigma(z) - y^2 \tag{squared} $$

$$ \frac{\partial L}{\partial w} = (\sigma(z) - y^3) x \tag{cubed} $$

$$ \frac{\partial L}{\partial z} = \sigma(z) - 2 y^2 \tag{wrong} $$
"""
    ctx = parse_derivation(text, "binary.md").contexts[0]
    for c in ctx.claims:
        out = allsizes.prove(ctx, c)
        if fd.truth(ctx, c)[0] == "true":
            assert out.verdict == PROVED, c.id
        else:
            assert out.verdict != PROVED and explicit.prove(ctx, c).verdict == REFUTED, c.id
    assert {fd.truth(ctx, c)[0] for c in ctx.claims} == {"true", "false"}


def test_a_number_that_may_be_a_size_keeps_the_declared_sizes_for_its_claim_only():
    # softmax(0 u) = (1/n) 1 holds at u's declared size alone: never refuted at a size of the engine's own.
    # Too large to work at (784), that claim is left undecided by this engine; the context's other claims
    # still work at small sizes (a wrong one is refuted).  Truths by finite differences (at 6: fd reads sizes).
    small = r"""# uniform

$$ u \in \mathbb{R}^{6}, \quad v \in \mathbb{R}^{6} $$

$$ \operatorname{softmax}(0 u) = \frac{1}{6} (1 + 0 u) \tag{uniform} $$

$$ \operatorname{softmax}(0 u) = \frac{1}{2} (1 + 0 u) \tag{uniform-wrong} $$

$$ u \circ v = v \circ u + u \tag{wrong} $$
"""
    ctx = parse_derivation(small, "u.md").contexts[0]
    for c in ctx.claims:
        assert explicit.prove(ctx, c).verdict == (PROVED if fd.truth(ctx, c)[0] == "true" else REFUTED), c.id
    big = parse_derivation(small.replace("{6}", "{784}"), "u.md").contexts[0]
    uniform, _, wrong = big.claims
    assert explicit.prove(big, uniform).verdict == INCONCLUSIVE
    assert explicit.prove(big, wrong).verdict == REFUTED
