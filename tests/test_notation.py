"""Notation of issue 18: forms people write in gradient derivations, read with their usual meaning.

Parse tests compare with the intermediate form of the spelling the format already read
(so a new spelling means exactly what the old one did) and print back (parse(print(x)) == x,
in the author's notation where it has one).  Where a form brings new semantics (ReLU and its
indicator, the ones vector, squared norms, binary labels) a true and a false line are checked
by the engine, with the truth decided here, by finite differences in NumPy.
"""
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from derivations.engines import allsizes, explicit
from derivations.engines.verdicts import PROVED, REFUTED
from derivations.form import ir
from derivations.form.printer import claim_latex, to_latex
from derivations.latex.errors import DerivationErrors
from derivations.latex.reader import parse_derivation, parse_statement

HEAD = r"""# Notation

$$ W_f, W_i, W_o \in \mathbb{R}^{H \times E}, \quad x_t \in \mathbb{R}^{E}, \quad h_0 \in \mathbb{R}^{H} $$

$$ W^{(1)} \in \mathbb{R}^{H \times E}, \quad W^{(2)} \in \mathbb{R}^{H \times H}, \quad L \in \mathbb{R}, \quad w, z \in \mathbb{R}^{E} $$

$$ y \in \{0, 1\}, \quad g : \mathbb{R} \to \mathbb{R} $$

$$ \boldsymbol{h}^{(t)} := \tanh(W_f \boldsymbol{x}^{(t)} + W^{(2)} \boldsymbol{h}^{(t-1)}) $$

$$ h^{(1)}_t := \tanh(W_i x_t) $$

$$ \delta^{h}_t := \frac{\partial L}{\partial h_t}, \quad \delta^o_t := \frac{\partial L}{\partial h^{(1)}_t}, \quad \delta_{x,t} := \frac{\partial L}{\partial x_t} $$

$$ \hat{\boldsymbol{y}} := \sigma(w^T z) $$
"""

T = ir.Time("t")


def ctx_of():
    return parse_derivation(HEAD, "n.md").contexts[0]


def read(line):
    return parse_statement(line, ctx_of())


def same(line):
    """Both sides of a line, which must mean the same expression; and each prints back to itself."""
    ctx = ctx_of()
    lhs, rhs = parse_statement(line, ctx)
    assert parse_statement(claim_latex(lhs, rhs), ctx) == (lhs, rhs), claim_latex(lhs, rhs)
    return lhs, rhs


def error_of(text):
    with pytest.raises(DerivationErrors) as info:
        parse_derivation(text, "bad.md")
    return info.value.errors[0]


# ---------------------------------------------------------------- declarations


def test_several_names_in_one_declaration_share_its_shape():
    ctx = ctx_of()
    shapes = {n: ctx.declarations[n].shape for n in ("W_f", "W_i", "W_o")}
    assert len(set(shapes.values())) == 1 and ctx.declarations["W_f"].shape[0] == ir.size("H")
    assert ctx.declarations["w"].shape == ctx.declarations["z"].shape


def test_several_functions_in_one_declaration():
    ctx = parse_derivation(r"""# F
$$ f, g : \mathbb{R} \to \mathbb{R}, \quad z \in \mathbb{R}^{n} $$
$$ f(z) = \operatorname{g}(z) $$
""", "f.md").contexts[0]
    assert ctx.declarations["f"].kind == ctx.declarations["g"].kind == "function"
    assert ctx.claims[0].rhs == ir.Apply("g", ir.Ref("z"))


def test_a_comma_still_separates_statements_when_no_declaration_follows():
    ctx = parse_derivation(r"""# S
$$ a, b \in \mathbb{R}^{n}, \quad c := a + b, \quad c = b + a $$
""", "s.md").contexts[0]
    assert set(ctx.declarations) == {"a", "b"} and "c" in ctx.definitions and len(ctx.claims) == 1


def test_a_binary_label_is_a_scalar_marked_binary():
    d = ctx_of().declarations["y"]
    assert d.binary and d.kind == "matrix" and d.shape == (1, 1)
    assert "\\{0, 1\\}" in error_of("# B\n$$ y \\in \\{0, 2\\} $$\n").message


# ---------------------------------------------------------------- superscripts


def test_the_step_as_a_superscript_is_the_step():
    lhs, rhs = same(r"\boldsymbol{h}^{(t)} = h_t")
    assert lhs == rhs == ir.Ref("h", T)
    lhs, rhs = same(r"\boldsymbol{h}^{(t-1)\top} W^{(2)} = h_{t-1}^\top W^{(2)}")
    assert lhs == rhs and lhs.left == ir.Transpose(ir.Ref("h", ir.Time("t", -1)), "\\top")
    assert to_latex(lhs) == r"h^{(t-1)\top} W^{(2)}"          # printed as written
    assert same(r"h^{(t)T} = h_t^T")[0] == ir.Transpose(ir.Ref("h", T), "T")


def test_a_layer_superscript_is_a_name_of_its_own_printed_as_written():
    lhs, rhs = same(r"W^{(1)T} h_t = W^{(1)\top} h_t")
    assert lhs.left.arg == ir.Ref("W^{(1)}") and ir.Ref("W^{(1)}") != ir.Ref("W^{(2)}")
    assert to_latex(lhs) == r"W^{(1)T} h_t" and to_latex(rhs) == r"W^{(1)\top} h_t"
    lhs, _ = same(r"h^{(1)}_t = h^{(1)}_t")
    assert lhs == ir.Ref("h^{(1)}", T) and to_latex(lhs) == "h^{(1)}_t"
    assert "h^{(1)}" in ctx_of().definitions and "h" in ctx_of().definitions


def test_decorated_names_are_names_of_their_own():
    ctx = ctx_of()
    assert {"\\delta^{h}", "\\delta^{o}", "\\delta_x", "\\hat{y}"} <= set(ctx.definitions)
    lhs, _ = same(r"\delta^{h}_t + \delta^o_t + \delta_{x,t}^\top W_f^\top = \delta^{h}_{t} + \delta^{o}_t + \delta_{x,t}^T W_f^T")
    assert lhs.terms[0] == ir.Ref("\\delta^{h}", T) and lhs.terms[2].left.arg == ir.Ref("\\delta_x", T)
    assert "\\delta_{x,t}" in to_latex(lhs)
    assert same(r"\hat{\boldsymbol{y}} = \boldsymbol{\hat{y}}")[0] == ir.Ref("\\hat{y}")


def test_an_undeclared_superscripted_name_says_how_to_declare_it():
    err = error_of(HEAD + "\n$$ \\delta^{q}_t = h_t $$\n")
    assert "\\delta^{q}" in err.message and "declare" in err.hint


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("spelling", [r"\nabla_w L", r"\nabla_{\boldsymbol{w}} L", r"\partial L / \partial w",
                                      r"\frac{dL}{dw}", r"\frac{d L}{d w}", r"\frac{\partial L}{\partial w}"])
def test_every_spelling_of_a_gradient_is_the_derivative(spelling):
    lhs, _ = same(f"{spelling} = w")
    assert lhs == ir.Deriv(ir.Ref("L"), ir.Ref("w"))
    assert "nabla" not in spelling or to_latex(lhs).startswith("\\nabla_{w}")


def test_nabla_with_respect_to_a_step_superscript():
    lhs, _ = same(r"\nabla_{\boldsymbol{h}^{(t)}} L = \delta^{h}_t")
    assert lhs == ir.Deriv(ir.Ref("L"), ir.Ref("h", T))


def test_a_quotient_written_with_a_slash_says_what_to_write():
    err = error_of(HEAD + "\n$$ L / L = L $$\n")
    assert "\\frac{a}{b}" in err.hint and "\\partial L / \\partial w" in err.hint


# ---------------------------------------------------------------- functions


def test_a_function_without_parentheses_takes_the_next_factor():
    lhs, rhs = same(r"\log \sigma(w^T z) + \log \hat{y} = \log(\sigma(w^T z)) + \log(\hat{y})")
    assert lhs == rhs and lhs.terms[0] == ir.Apply("log", ir.Apply("sigma", ir.MatMul(
        ir.Transpose(ir.Ref("w"), "T"), ir.Ref("z"))))
    assert to_latex(lhs) == r"\log \sigma(w^T z) + \log \hat{y}"          # printed as written
    assert to_latex(same(r"(\log \hat{y})^2 = \log \hat{y} \, L")[0]) == r"(\log \hat{y})^2"
    assert "(\\log p)^2" in error_of(HEAD + "\n$$ \\log \\hat{y}^2 = L $$\n").message


@pytest.mark.parametrize("spelling", [r"\max(0, z)", r"\max(z, 0)", r"\max\{0, z\}", r"\operatorname{ReLU}(z)", r"\mathrm{ReLU}(z)",
                                      r"\text{ReLU}(z)", r"\mathrm{relu}(z)", r"\operatorname{relu}(z)"])
def test_every_spelling_of_relu(spelling):
    lhs, _ = same(f"{spelling} = z")
    assert lhs == ir.Apply("relu", ir.Ref("z"))
    assert to_latex(lhs) == spelling                        # printed as written


@pytest.mark.parametrize("spelling", [r"\mathbb{1}[z > 0]", r"\mathbb{1}\{z > 0\}", r"\mathbb{1}_{z > 0}", r"1_{z > 0}", r"\mathbb{I}[z > 0]",
                                      r"H(z)", r"\operatorname{H}(z)", r"\operatorname{ReLU}'(z)"])
def test_every_spelling_of_relus_derivative(spelling):
    lhs, _ = same(f"{spelling} = z")
    if "ReLU" in spelling:
        assert lhs == ir.Apply("relu", ir.Ref("z"), 1)
    else:
        assert lhs == ir.Apply("ind", ir.Ref("z"))
    assert to_latex(lhs) == spelling


@pytest.mark.parametrize("spelling, function", [(r"\operatorname{sigmoid}(z)", "sigma"), (r"\mathrm{tanh}(z)", "tanh"),
                                                (r"\operatorname{log}(z)", "log")])
def test_builtin_functions_in_operatorname_are_the_builtins(spelling, function):
    lhs, _ = same(f"{spelling} = z")
    assert lhs == ir.Apply(function, ir.Ref("z")) and to_latex(lhs) == spelling
    assert same(r"\text{softmax}(z) = z")[0] == ir.Softmax(ir.Ref("z"))


def test_h_applied_is_the_step_function_only_when_h_is_no_quantity():
    ctx = parse_derivation(r"""# H
$$ H \in \mathbb{R}^{n \times n}, \quad z \in \mathbb{R}^{n} $$
$$ H(z) = H z $$
""", "h.md").contexts[0]
    c = ctx.claims[0]
    assert c.lhs == c.rhs == ir.MatMul(ir.Ref("H"), ir.Ref("z"))


def test_a_declared_function_written_with_operatorname():
    lhs, rhs = same(r"\operatorname{g}(z) = g(z)")
    assert lhs == rhs == ir.Apply("g", ir.Ref("z")) and to_latex(lhs) == r"\operatorname{g}(z)"
    err = error_of(HEAD + "\n$$ \\operatorname{q}(z) = z $$\n")
    assert "undeclared function q" in err.message and "q : \\mathbb{R} \\to \\mathbb{R}" in err.hint


def test_max_and_indicators_other_than_relus_are_errors_that_say_what_is_read():
    assert "\\max(0, z)" in error_of(HEAD + "\n$$ \\max(1, z) = z $$\n").message
    err = error_of(HEAD + "\n$$ \\mathbb{1}[z > 1] = z $$\n")
    assert "1[z > 0]" in err.message and "between two steps" in err.message and "\\mathbb{1}[t < T]" in err.hint


# ---------------------------------------------------------------- ones, norms


def test_the_ones_vector_gets_its_size_from_the_context():
    lhs, _ = same(r"\mathbf{1}^\top z = w^\top \mathbf{1}")
    assert lhs.left == ir.Transpose(ir.Ones(ir.size("E")), "\\top") and to_latex(lhs) == r"\mathbf{1}^\top z"
    err = error_of(HEAD + "\n$$ \\mathbf{1} = \\mathbf{1} $$\n")
    assert "size of \\mathbf{1}" in err.message


@pytest.mark.parametrize("spelling", [r"\|w\|^2", r"\|w\|_2^2", r"\lVert w \rVert^2", r"\| w \|^{2}"])
def test_a_squared_norm_is_the_inner_product(spelling):
    lhs, _ = same(f"{spelling} = L")
    assert lhs == ir.MatMul(ir.Transpose(ir.Ref("w"), "T"), ir.Ref("w"))
    assert to_latex(lhs).replace(" ", "") == spelling.replace(" ", "").replace("{2}", "2")   # as written


def test_a_norm_that_is_not_squared_says_what_to_write():
    assert "write \\|w - z\\|^2" in error_of(HEAD + "\n$$ \\|w - z\\| = L $$\n").message


# ---------------------------------------------------------------- semantics, against NumPy


def numeric_gradient(f, X, eps=1e-6):
    G = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        d = np.zeros_like(X)
        d[idx] = eps
        G[idx] = (f(X + d) - f(X - d)) / (2 * eps)
    return G


def verdict(head, line):
    ctx = parse_derivation(head + f"\n$$ {line} $$\n", "t.md").contexts[0]
    return explicit.prove(ctx, ctx.claims[-1])


def agrees(candidate, truth, points):
    return all(np.allclose(candidate(*p), truth(*p), atol=1e-5) for p in points)


RELU = r"""# ReLU
$$ W \in \mathbb{R}^{n \times m}, \quad x \in \mathbb{R}^{m}, \quad v \in \mathbb{R}^{n} $$
$$ z := W x, \quad h := \max(0, z), \quad L := v^\top h $$
"""


def _relu_points():
    rng = np.random.default_rng(0)
    return [(rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=2)) for _ in range(3)]


def _relu_truth(W, x, v):
    return numeric_gradient(lambda M: v @ np.maximum(0, M @ x), W)


@pytest.mark.parametrize("line, candidate", [
    (r"\nabla_W L = (v \odot \mathbb{1}[z > 0]) x^\top", lambda W, x, v: np.outer(v * (W @ x > 0), x)),
    (r"\frac{dL}{dW} = (v \odot \operatorname{ReLU}'(z)) x^\top", lambda W, x, v: np.outer(v * (W @ x > 0), x)),
    (r"\partial L / \partial W = (v \odot H(W x)) x^\top", lambda W, x, v: np.outer(v * (W @ x > 0), x)),
    (r"\nabla_W L = (v \odot \max(0, z)) x^\top", lambda W, x, v: np.outer(v * np.maximum(0, W @ x), x)),
    (r"\nabla_W L = v x^\top", lambda W, x, v: np.outer(v, x)),
    (r"\nabla_W L = (v \odot \mathbb{1}[-z > 0]) x^\top", lambda W, x, v: np.outer(v * (W @ x < 0), x)),
])
def test_relu_lines_are_proved_exactly_when_finite_differences_agree(line, candidate):
    truth = agrees(candidate, _relu_truth, _relu_points())
    assert verdict(RELU, line).verdict == (PROVED if truth else REFUTED)
    # The all-sizes engine (index notation) proves the true lines too, and never a false one.
    ctx = parse_derivation(RELU + f"\n$$ {line} $$\n", "t.md").contexts[0]
    assert (allsizes.prove(ctx, ctx.claims[-1]).verdict == PROVED) == truth


def test_relus_identities_are_proved_exactly():
    for line in (r"h = z \odot \mathbb{1}[z > 0]", r"h \odot \mathbb{1}[z > 0] = h",
                 r"\mathbb{1}[z > 0] \odot \mathbb{1}[z > 0] = \mathbb{1}[z > 0]"):
        assert verdict(RELU, line).verdict == PROVED, line


def test_no_refutation_rests_on_a_value_at_the_kink():
    """1[a - b > 0] + 1[b - a > 0] = 1 fails only at a = b, where ReLU has no derivative: the sampler's
    small rationals put a = b often, and such a point must never be a counterexample."""
    head = "# K\n$$ a, b \\in \\mathbb{R}^{n} $$\n"
    # (With 1[0 > 0] taken as 0 this line is refuted at a[0] = b[0] = -1/2: the search does reach the kink.)
    out = verdict(head, r"\mathbb{1}[a - b > 0] + \mathbb{1}[b - a > 0] = \mathbf{1}")
    assert out.verdict != REFUTED, out.counterexample
    from derivations.form.functions import MPMATH_FUNCTIONS
    with mpmath.workdps(60):
        rounded_zero = mpmath.mpf(1) / 3 + mpmath.mpf(1) / 6 - mpmath.mpf(1) / 2
        assert mpmath.isnan(MPMATH_FUNCTIONS["indicator"](rounded_zero))
        assert MPMATH_FUNCTIONS["indicator"](mpmath.mpf("1e-20")) == 1


SOFTMAX = r"""# Softmax
$$ u, g \in \mathbb{R}^{n} $$
$$ p := \operatorname{softmax}(u), \quad L := g^\top p $$
"""


def _softmax(u):
    e = np.exp(u - u.max())
    return e / e.sum()


@pytest.mark.parametrize("line, candidate", [
    (r"\nabla_u L = p \odot (g - \mathbf{1} p^\top g)", lambda u, g: _softmax(u) * (g - _softmax(u) @ g)),
    (r"\nabla_u L = p \odot g - \mathbf{1} p^\top g", lambda u, g: _softmax(u) * g - _softmax(u) @ g),
    (r"\nabla_u L = p \odot (g - \mathbf{1}^\top g \, p)", lambda u, g: _softmax(u) * (g - g.sum() * _softmax(u))),
])
def test_lines_with_the_ones_vector_against_finite_differences(line, candidate):
    rng = np.random.default_rng(1)
    points = [(rng.normal(size=3), rng.normal(size=3)) for _ in range(3)]
    truth = agrees(candidate, lambda u, g: numeric_gradient(lambda x: g @ _softmax(x), u), points)
    assert verdict(SOFTMAX, line).verdict == (PROVED if truth else REFUTED)


NORM = r"""# Least squares
$$ W \in \mathbb{R}^{n \times m}, \quad x \in \mathbb{R}^{m}, \quad t \in \mathbb{R}^{n} $$
$$ r := W x - t, \quad L := \|r\|^2 $$
"""


@pytest.mark.parametrize("line, candidate", [
    (r"\nabla_W L = 2 r x^\top", lambda W, x, t: 2 * np.outer(W @ x - t, x)),
    (r"\nabla_W L = r x^\top", lambda W, x, t: np.outer(W @ x - t, x)),
    (r"L = \lVert W x - t \rVert_2^2", None),
])
def test_squared_norm_lines_against_finite_differences(line, candidate):
    rng = np.random.default_rng(2)
    points = [(rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=2)) for _ in range(3)]
    if candidate is None:       # a claim about L itself: both sides are numbers
        truth = True
    else:
        truth = agrees(candidate, lambda W, x, t: numeric_gradient(lambda M: np.sum((M @ x - t) ** 2), W), points)
    assert verdict(NORM, line).verdict == (PROVED if truth else REFUTED)


LOGISTIC = r"""# Logistic regression
$$ w, x \in \mathbb{R}^{m}, \quad y \in \{0, 1\} $$
$$ L := -y \log \sigma(w^T x) - (1 - y) \log(1 - \sigma(w^T x)) $$
"""


@pytest.mark.parametrize("line, candidate", [
    (r"\nabla_w L = (\sigma(w^T x) - y) x", lambda w, x, y: (1 / (1 + np.exp(-w @ x)) - y) * x),
    (r"\nabla_w L = (\sigma(w^T x) - 1) x", lambda w, x, y: (1 / (1 + np.exp(-w @ x)) - 1) * x),
    (r"\nabla_w L = (y - \sigma(w^T x)) x", lambda w, x, y: (y - 1 / (1 + np.exp(-w @ x))) * x),
])
def test_binary_label_lines_against_finite_differences(line, candidate):
    rng = np.random.default_rng(3)
    points = [(rng.normal(size=3), rng.normal(size=3), y) for y in (0, 1) for _ in range(2)]

    def truth_of(w, x, y):
        s = lambda v: 1 / (1 + np.exp(-v))
        return numeric_gradient(lambda u: -y * np.log(s(u @ x)) - (1 - y) * np.log(1 - s(u @ x)), w)
    truth = agrees(candidate, truth_of, points)
    out = verdict(LOGISTIC, line)
    assert out.verdict == (PROVED if truth else REFUTED)
    if out.verdict == REFUTED:
        y = [v for k, v in out.counterexample["values"].items() if k.startswith("y")]
        assert y and all(Fraction(v) in (0, 1) for v in y), out.counterexample["values"]


@pytest.mark.parametrize("line, hint", [
    (r"\nabla L = w", r"write \nabla_{w} L"),
    (r"\mathbb{1}^\top w = L", r"write the column of ones as \mathbf{1}"),
    (r"\delta h_t = h_t", r"name a gradient \delta^{h}_t or \delta_{h,t}"),
])
def test_a_form_written_otherwise_gets_the_exact_replacement(line, hint):
    assert hint in error_of(HEAD + f"\n$$ {line} $$\n").hint


BOOK = r"""# An RNN in the Deep Learning book's notation

$$ \boldsymbol{U} \in \mathbb{R}^{H \times E}, \quad \boldsymbol{W} \in \mathbb{R}^{H \times H}, \quad \boldsymbol{V} \in \mathbb{R}^{O \times H}, \quad \boldsymbol{b} \in \mathbb{R}^{H}, \quad \boldsymbol{c} \in \mathbb{R}^{O} $$

$$ \boldsymbol{x}^{(t)} \in \mathbb{R}^{E}, \quad \boldsymbol{h}^{(0)} \in \mathbb{R}^{H}, \quad L \in \mathbb{R} $$

$$ \boldsymbol{a}^{(t)} := \boldsymbol{b} + \boldsymbol{W}\boldsymbol{h}^{(t-1)} + \boldsymbol{U}\boldsymbol{x}^{(t)} $$

$$ \boldsymbol{h}^{(t)} := \tanh(\boldsymbol{a}^{(t)}), \quad \boldsymbol{o}^{(t)} := \boldsymbol{c} + \boldsymbol{V}\boldsymbol{h}^{(t)} $$

$$ g_t \in \mathbb{R}^{O}, \quad g_t := \nabla_{\boldsymbol{o}^{(t)}} L $$

$$ \nabla_{\boldsymbol{h}^{(t)}} L = \boldsymbol{W}^\top \operatorname{diag}(1 - (\boldsymbol{h}^{(t+1)})^2) \nabla_{\boldsymbol{h}^{(t+1)}} L + \boldsymbol{V}^\top g_t $$

$$ \nabla_{\boldsymbol{W}} L = \sum_t \operatorname{diag}(1 - (\boldsymbol{h}^{(t)})^2) (\nabla_{\boldsymbol{h}^{(t)}} L) \boldsymbol{h}^{(t-1)\top} $$
"""

SUBSCRIPTS = r"""# The same RNN with subscripts

$$ U \in \mathbb{R}^{H \times E}, \quad W \in \mathbb{R}^{H \times H}, \quad V \in \mathbb{R}^{O \times H}, \quad b \in \mathbb{R}^{H}, \quad c \in \mathbb{R}^{O} $$

$$ x_t \in \mathbb{R}^{E}, \quad h_0 \in \mathbb{R}^{H}, \quad L \in \mathbb{R} $$

$$ a_t := b + W h_{t-1} + U x_t $$

$$ h_t := \tanh(a_t), \quad o_t := c + V h_t $$

$$ g_t \in \mathbb{R}^{O}, \quad g_t := \frac{\partial L}{\partial o_t} $$

$$ \frac{\partial L}{\partial h_t} = W^\top \operatorname{diag}(1 - h_{t+1}^2) \frac{\partial L}{\partial h_{t+1}} + V^\top g_t $$

$$ \frac{\partial L}{\partial W} = \sum_t \operatorname{diag}(1 - h_t^2) \frac{\partial L}{\partial h_t} h_{t-1}^\top $$
"""


def test_the_books_notation_means_the_subscript_notation_and_prints_back_as_written():
    book, plain = (parse_derivation(text, "b.md").contexts[0] for text in (BOOK, SUBSCRIPTS))
    assert {n: (d.shape, d.sequence, d.initial) for n, d in book.declarations.items()} == \
        {n: (d.shape, d.sequence, d.initial) for n, d in plain.declarations.items()}
    assert {n: d.expr for n, d in book.definitions.items()} == {n: d.expr for n, d in plain.definitions.items()}
    assert [(c.lhs, c.rhs) for c in book.claims] == [(c.lhs, c.rhs) for c in plain.claims]
    printed = claim_latex(book.claims[1].lhs, book.claims[1].rhs)
    assert r"\nabla_{h^{(t)}} L" in printed and r"h^{(t-1)\top}" in printed
    assert parse_statement(printed, book) == (book.claims[1].lhs, book.claims[1].rhs)


@pytest.mark.parametrize("line, lhs, rhs", [
    (r"y^2 = y", lambda y: y ** 2, lambda y: y),
    (r"y (1 - y) = 0", lambda y: y * (1 - y), lambda y: 0),
    (r"y^2 = 1", lambda y: y ** 2, lambda y: 1),
    (r"(1 - y)^2 = 1 - y", lambda y: (1 - y) ** 2, lambda y: 1 - y),
    (r"(1 - y)^2 = y", lambda y: (1 - y) ** 2, lambda y: y),
])
def test_a_binary_label_takes_exactly_the_values_0_and_1(line, lhs, rhs):
    """Proved exactly when true at y = 0 and y = 1 (not for every real y), refuted otherwise."""
    truth = all(np.isclose(lhs(y), rhs(y)) for y in (0, 1))
    assert verdict(LOGISTIC, line).verdict == (PROVED if truth else REFUTED)


def test_an_index_at_a_step_written_as_a_superscript():
    # The Deep Learning book's target y^{(t)}: (\hat{y}^{(t)})_{y^{(t)}} is the entry at the index y_t.
    ctx = parse_derivation(r"""# I
$$ o_t \in \mathbb{R}^{K}, \quad y^{(t)} \in \{1, \dots, K\} $$
$$ \hat{\boldsymbol{y}}^{(t)} := \operatorname{softmax}(\boldsymbol{o}^{(t)}) $$
$$ \left( \hat{\boldsymbol{y}}^{(t)} \right)_{y^{(t)}} = (\hat{y}_t)_{y_t} $$
""", "i.md").contexts[0]
    (claim,) = ctx.claims
    assert claim.lhs == claim.rhs == ir.Component(ir.Ref("\\hat{y}", T), ir.Ref("y", T))


# ---------------------------------------------------------------- definitions written with =

EQ_HEAD = r"""# Eq
$$ W \in \mathbb{R}^{H \times D}, \quad U \in \mathbb{R}^{H \times H}, \quad x_t \in \mathbb{R}^{D}, \quad h_0 \in \mathbb{R}^{H}, \quad v \in \mathbb{R}^{H} $$
"""


def test_a_new_name_written_equal_to_a_forward_expression_is_defined():
    d = parse_derivation(EQ_HEAD + r"""
$$ \boldsymbol{a}^{(t)} = W \boldsymbol{x}^{(t)} + U \boldsymbol{h}^{(t-1)} \tag{10.8} $$
$$ h_t = \tanh(a_t) $$
$$ q = W x_1 $$
$$ L := \sum_t v^T h_t $$
$$ q = W x_1 \tag{again} $$
$$ h_t = \tanh(W x_t + U h_{t-1}) \tag{claim} $$
""", "eq.md")
    ctx = d.contexts[0]
    assert ctx.definitions["a"].target == ir.Ref("a", T) and ctx.definitions["h"].target == ir.Ref("h", T)
    assert ctx.definitions["q"].expr == ir.MatMul(ir.Ref("W"), ir.Ref("x", ir.Time(None, 1)))
    # a line about a name defined before (with = or :=) is a claim
    assert [c.id for c in ctx.claims] == ["again", "claim"]


@pytest.mark.parametrize("line, needle", [
    (r"dh_t = U^T h_t", "undeclared symbol dh_t"),              # dh for a quantity h: a derivative's name
    (r"\delta^{q}_t = h_t", "undeclared symbol \\delta^{q}"),
    (r"g_t = \frac{\partial L}{\partial h_t}", "defines g_t only when its right-hand side computes forward"),
])
def test_a_line_about_a_derivative_is_never_taken_for_a_definition(line, needle):
    text = EQ_HEAD + "$$ h_t := \\tanh(W x_t + U h_{t-1}), \\quad L := \\sum_t v^T h_t $$\n"
    err = error_of(text + f"$$ {line} $$\n")
    assert needle in err.message


def test_a_forward_line_over_a_name_for_a_derivative_is_no_definition():
    text = EQ_HEAD + ("$$ h_t := \\tanh(W x_t + U h_{t-1}), \\quad L := \\sum_t v^T h_t $$\n"
                      "$$ g_t := \\frac{\\partial L}{\\partial h_t} $$\n$$ m_t = (1 - h_t^2) \\circ g_t $$\n")
    err = error_of(text)
    assert "undeclared symbol m_t" in err.message and ":=" in err.hint


def test_a_product_of_declared_letters_or_a_size_is_not_defined_by_equals():
    err = error_of(EQ_HEAD + "$$ H = 3 $$\n")
    assert "undeclared symbol H" in err.message
    d = parse_derivation(EQ_HEAD + "$$ Uv = U v $$\n", "eq.md")
    assert d.claims[0].lhs == ir.MatMul(ir.Ref("U"), ir.Ref("v"))


# ---------------------------------------------------------------- \textrm subscripts, trailing commas, aligned in $$

def test_a_subscript_in_a_text_font_is_the_plain_subscript():
    head = HEAD + "$$ W_{xi} \\in \\mathbb{R}^{H \\times E}, \\quad b_i \\in \\mathbb{R}^{H} $$\n"
    ctx = parse_derivation(head, "n.md").contexts[0]
    plain = parse_statement(r"W_{xi} x_t + b_i = W_{xi} x_t + b_i", ctx)
    for spelling in (r"W_{\textrm{xi}} x_t + b_\textrm{i}", r"W_{\text{xi}} x_t + b_{\mathrm{i}}"):
        assert parse_statement(f"{spelling} = W_{{xi}} x_t + b_i", ctx) == plain


def test_a_row_may_end_in_a_comma_and_an_aligned_display_in_markdown_is_rows():
    rows = ("$$\n\\begin{aligned}\nu_t &= \\tanh(W_f x_t),\\\\\nv_t &= \\sigma(W_i x_t) \\\\\n"
            "p_t &= u_t \\circ v_t,\n\\end{aligned}\n$$\n")
    one = "$$ u_t := \\tanh(W_f x_t), \\quad v_t := \\sigma(W_i x_t), \\quad p_t := u_t \\circ v_t $$\n"
    a, b = (parse_derivation(HEAD + x, "n.md").contexts[0] for x in (rows, one))
    assert {n: d.expr for n, d in a.definitions.items()} == {n: d.expr for n, d in b.definitions.items()}
    assert "p" in a.definitions


# ---------------------------------------------------------------- *, columns side by side, [a, b], f(x, W)

COLS = r"""# Cols
$$ U \in \mathbb{R}^{H \times H}, \quad V \in \mathbb{R}^{H \times (H + D)}, \quad x_t \in \mathbb{R}^{D}, \quad h_0, c_0 \in \mathbb{R}^{H} $$
$$ f_t := \sigma(U h_{t-1}), \quad g_t := \tanh(V [h_{t-1}, x_t]) $$
"""


def test_a_star_is_the_element_wise_product_and_a_number_before_it_scales():
    ctx = parse_derivation(COLS + "$$ c_t = f_t * c_{t-1} + 2 * g_t $$\n$$ h_t = c_t $$\n", "s.md").contexts[0]
    plain = parse_derivation(COLS + "$$ c_t := f_t \\circ c_{t-1} + 2 g_t $$\n$$ h_t := c_t $$\n", "s.md").contexts[0]
    assert ctx.definitions["c"].expr == ir.Add((ir.Hadamard(ir.Ref("f", T), ir.Ref("c", ir.Time("t", -1)), "*"),
                                                ir.MatMul(ir.Number(Fraction(2)), ir.Ref("g", T))))
    assert to_latex(ctx.definitions["c"].expr) == "f_t * c_{t-1} + 2 g_t"
    assert ctx.definitions["c"].expr.terms[1] == plain.definitions["c"].expr.terms[1]


def test_columns_side_by_side_are_element_wise_in_a_definition_only_and_claims_say_so():
    text = COLS + ("$$ c_t = f_t c_{t-1} + g_t $$\n$$ h_t = c_t $$\n"
                   "$$ \\ell := \\sum_t h_t^T h_t $$\n$$ \\frac{\\partial \\ell}{\\partial c_T} = 2 c_T \\tag{a} $$\n")
    ctx = parse_derivation(text, "s.md").contexts[0]
    assert ctx.definitions["c"].expr.terms[0] == ir.Hadamard(ir.Ref("f", T), ir.Ref("c", ir.Time("t", -1)))
    (claim,) = ctx.claims
    assert claim.depends_on_reading and "f_t c_{t-1}" in claim.reading and "element-wise" in claim.reading
    # in a claim the product stays a matrix product: ill-typed, so a missing ^T is reported
    _, rhs = parse_statement(r"c_t = f_t c_{t-1}", ctx)
    assert rhs == ir.MatMul(ir.Ref("f", T), ir.Ref("c", ir.Time("t", -1)))
    # a row times a column (h^T c) composes and is never read element-wise
    ctx2 = parse_derivation(COLS + "$$ h_t := g_t, \\quad s_t := h_{t-1}^T g_t $$\n", "s.md").contexts[0]
    assert isinstance(ctx2.definitions["s"].expr, ir.MatMul)


def test_a_bracketed_list_stacks_columns_and_a_size_may_be_a_sum():
    ctx = parse_derivation(COLS + "$$ h_t := g_t $$\n", "s.md").contexts[0]
    block = ctx.definitions["g"].expr.arg.right
    assert block == ir.Block(((ir.Ref("h", ir.Time("t", -1)),), (ir.Ref("x", T),)))
    assert to_latex(block) == "[h_{t-1}, x_t]"
    assert ctx.declarations["V"].shape == (ir.size_symbol("H"), ir.size_symbol("H") + ir.size_symbol("D"))
    err = error_of(COLS + "$$ h_t := g_t, \\quad q_t := \\tanh(V (h_{t-1}, x_t)) $$\n")
    assert "(a, b) is not read" in err.message and "[a, b]" in err.hint


def test_a_function_of_named_arguments_defines_its_value():
    head = "# F\n$$ W \\in \\mathbb{R}^{m \\times n}, \\quad x \\in \\mathbb{R}^{n} $$\n"
    a = parse_derivation(head + "$$ f(x, W) = \\|W \\cdot x\\|^2 $$\n", "f.md").contexts[0]
    b = parse_derivation(head + "$$ f := \\|W \\cdot x\\|^2 $$\n", "f.md").contexts[0]
    assert a.definitions["f"].expr == b.definitions["f"].expr and not a.claims


def test_the_derivative_as_an_operator_applies_to_the_product_after_it():
    lhs, rhs = same(r"\frac{\partial}{\partial w} L = \frac{\partial L}{\partial w}")
    assert lhs == rhs == ir.Deriv(ir.Ref("L"), ir.Ref("w"))
    lhs, _ = read(r"\frac{\partial}{\partial w} w^T z + L = L")
    assert lhs == ir.Add((ir.Deriv(ir.MatMul(ir.Transpose(ir.Ref("w"), "T"), ir.Ref("z")), ir.Ref("w")), ir.Ref("L")))


def test_the_entry_of_a_column_at_a_declared_index_may_be_written_p_k():
    import fd
    text = r"""# entry
$$ z \in \mathbb{R}^{n}, \quad k \in \{1, \dots, n\} $$
$$ p := \operatorname{softmax}(z), \quad L := -\log p_k $$
$$ \frac{\partial L}{\partial z} = p - e_k \tag{softmax} $$
$$ \frac{\partial L}{\partial z} = p + e_k \tag{wrong} $$
"""
    ctx = parse_derivation(text, "entry.md").contexts[0]
    assert ctx.definitions["L"].expr == parse_derivation(text.replace("p_k", "(p)_{k}"), "e.md").contexts[0] \
        .definitions["L"].expr
    assert {c.id: fd.truth(ctx, c)[0] for c in ctx.claims} == {"softmax": "true", "wrong": "false"}


def test_a_declared_function_after_a_product_sign_takes_its_argument_first():
    # h \cdot g'(z) is h times g'(z), not (h \cdot g') applied to z: the repair search prints such products
    # (Lemma 1's rows: (dv)_i \cdot f'((Z)_i) \cdot h^T), and they must read back.
    lhs, _ = same(r"W_f^T \cdot g'(z) = W_f^T g'(z)")
    assert lhs == ir.MatMul(ir.Transpose(ir.Ref("W_f"), "T"), ir.Apply("g", ir.Ref("z"), 1), True)
    lhs, _ = same(r"z^T \cdot g(z) \cdot y = y")
    assert lhs == ir.MatMul(ir.MatMul(ir.Transpose(ir.Ref("z"), "T"), ir.Apply("g", ir.Ref("z")), True),
                            ir.Ref("y"), True)


def test_an_entry_at_a_declared_index_on_the_left_of_equals_is_a_claim():
    # S_y = ... with S defined and y a declared index is the entry y of S, checked; never a definition of a
    # new name S_y (the line would silently vanish from the claims).
    import fd
    text = r"""# entry
$$ W \in \mathbb{R}^{V \times H}, \quad h \in \mathbb{R}^{H}, \quad y \in \{1, \dots, V\} $$
$$ S := W h $$
$$ S_y = e_y^{\mathsf T} W h \tag{row} $$
$$ S_y = e_y^{\mathsf T} W h + 1 \tag{wrong} $$
"""
    ctx = parse_derivation(text, "entry.md").contexts[0]
    assert "S_y" not in ctx.definitions
    assert {c.id: fd.truth(ctx, c)[0] for c in ctx.claims} == {"row": "true", "wrong": "false"}
