"""The declared reading `> Jacobians: numerator layout` (docs/derivation-format.md, Semantics).

Under it ∂a/∂b of two columns is the Jacobian with entry [i, j] = ∂a_i/∂b_j (the transpose of the format's
default, denominator layout); a gradient of a scalar is unchanged.  Each line's truth is computed here, in
NumPy, by central finite differences of forward passes written in this file (nothing of the reader or the
engines): the numerator-layout Jacobian J[i, j] = ∂a_i/∂b_j, and each side of a line as the NumPy product it
states.  A true line must be proved, a false one refuted, one whose shapes do not compose ill-typed.
"""
import numpy as np
import pytest

from derivations.form import ir
from derivations.form.printer import to_latex
from derivations.latex.errors import DerivationErrors
from derivations.latex.reader import parse_derivation, parse_statement
from derivations.outputs.assembly import run
from derivations.running.runner import load_document

DECLARED = "> Jacobians: numerator layout\n"

LAYER = r"""# A tanh layer, its Jacobians written in numerator layout

$$ W \in \mathbb{R}^{n \times n}, \quad V \in \mathbb{R}^{m \times n}, \quad x \in \mathbb{R}^{n} $$

$$ h := \tanh(W x), \quad o := V h, \quad \ell := \|o\|^2 $$

$$ \frac{\partial h}{\partial x} = \operatorname{diag}(1 - h^2) W \tag{jacobian} $$

{declared}
$$ \frac{\partial o}{\partial x} = \frac{\partial o}{\partial h} \frac{\partial h}{\partial x} \tag{chain} $$

$$ \frac{\partial o}{\partial x} = V \operatorname{diag}(1 - h^2) W \tag{chain-written-out} $$

$$ \frac{\partial \ell}{\partial x} = \left( \frac{\partial o}{\partial x} \right)^\top \frac{\partial \ell}{\partial o} \tag{gradient} $$

$$ \frac{\partial \ell}{\partial o} = 2 o \tag{scalar} $$

$$ \frac{\partial h}{\partial x} = W^\top \operatorname{diag}(1 - h^2) \tag{denominator-form} $$

$$ \frac{\partial o}{\partial x} = \frac{\partial h}{\partial x} \frac{\partial o}{\partial h} \tag{denominator-order} $$
"""


# ---------------------------------------------------------------- the truth, by finite differences

EPS = 1e-6


def _jacobian(f, x):
    """Entry [i, j] = ∂f_i/∂x_j (numerator layout), by central differences."""
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = EPS
        cols.append((f(x + e) - f(x - e)) / (2 * EPS))
    return np.stack(cols, axis=1)


def _layer_sides(rng, n=3, m=2):
    """{claim id: (lhs, rhs)} of LAYER's lines, each side the NumPy value of what the line states in numerator
    layout, its derivatives by finite differences of the forward pass."""
    W, V, x = rng.normal(size=(n, n)), rng.normal(size=(m, n)), rng.normal(size=n)

    def h_of(x_):
        return np.tanh(W @ x_)

    def o_of_h(h_):
        return V @ h_

    def o_of(x_):
        return o_of_h(h_of(x_))

    def loss_of_o(o_):
        return np.array([o_ @ o_])

    h, o = h_of(x), o_of(x)
    J_hx, J_oh, J_ox = _jacobian(h_of, x), _jacobian(o_of_h, h), _jacobian(o_of, x)
    grad_x = _jacobian(lambda x_: loss_of_o(o_of(x_)), x)[0]        # a gradient: shaped like x
    grad_o = _jacobian(loss_of_o, o)[0]
    D = np.diag(1 - h ** 2)

    def product(a, b):
        return a @ b if a.shape[1] == b.shape[0] else None          # None: the shapes do not compose
    return {
        "jacobian": (J_hx, D @ W),
        "chain": (J_ox, product(J_oh, J_hx)),
        "chain-written-out": (J_ox, V @ D @ W),
        "gradient": (grad_x, J_ox.T @ grad_o),
        "scalar": (grad_o, 2 * o),
        "denominator-form": (J_hx, W.T @ D),
        "denominator-order": (J_ox, product(J_hx, J_oh)),
    }


def _truth(sides: dict) -> dict:
    out = {}
    for cid, (lhs, rhs) in sides.items():
        if rhs is None or lhs.shape != rhs.shape:
            out[cid] = "ill-typed"
        else:
            out[cid] = "true" if np.allclose(lhs, rhs, rtol=1e-5, atol=1e-7) else "false"
    return out


def _truths(points=3) -> dict:
    """A line is true when it holds at every random point tried, false when it fails at one."""
    rng = np.random.default_rng(0)
    found = [_truth(_layer_sides(rng)) for _ in range(points)]
    return {cid: ("false" if any(f[cid] == "false" for f in found) else found[0][cid]) for cid in found[0]}


@pytest.fixture(scope="module")
def truths():
    return _truths()


@pytest.fixture(scope="module")
def declared(tmp_path_factory):
    path = tmp_path_factory.mktemp("numerator") / "layer.md"
    path.write_text(LAYER.replace("{declared}", DECLARED))
    return run(jobs=1, document=load_document(path), repairs=False)


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    path = tmp_path_factory.mktemp("denominator") / "layer.md"
    path.write_text(LAYER.replace("{declared}", ""))
    return run(jobs=1, document=load_document(path), repairs=False)


def _by_id(report):
    return {c["id"]: c for c in report["claims"]}


# ---------------------------------------------------------------- verdicts against the truth

def test_the_finite_differences_tell_the_two_layouts_apart(truths):
    # The test is only as good as its truths: the numerator-layout lines are true, their denominator-layout
    # counterparts (a square W that is not symmetric) false, the chain in the other order ill-typed.
    assert truths["jacobian"] == truths["chain"] == truths["gradient"] == "true"
    assert truths["denominator-form"] == "false" and truths["denominator-order"] == "ill-typed"


def test_every_verdict_under_the_declaration_agrees_with_finite_differences(declared, truths):
    by_id = _by_id(declared)
    assert set(by_id) == set(truths)
    for cid, truth in truths.items():
        c = by_id[cid]
        if truth == "true":
            assert c["verdict"] == "proved", (cid, c["verdict"], c["reason"])
        elif truth == "false":
            assert c["verdict"] == "refuted", (cid, c["verdict"], c["reason"])
        else:
            assert c["verdict"] == "ill-typed", (cid, c["verdict"], c["reason"])


def test_without_the_declaration_the_format_reads_denominator_layout(default, truths):
    by_id = _by_id(default)
    # diag(1 - h^2) W is the numerator-layout Jacobian; read in denominator layout the line is false, and the
    # hint says in which layout it is true.
    assert truths["jacobian"] == "true" and by_id["jacobian"]["verdict"] == "refuted"
    assert by_id["jacobian"]["layout"].startswith("True in numerator layout")
    assert by_id["denominator-form"]["verdict"] == "proved"


def test_the_hint_under_the_declaration_names_the_default_layout(declared):
    c = _by_id(declared)["denominator-form"]
    assert c["verdict"] == "refuted"
    assert c["layout"].startswith("True in denominator layout") and "True in numerator layout" not in c["layout"]


def test_the_claims_whose_meaning_changes_say_so(declared):
    by_id = _by_id(declared)
    for cid in ("jacobian", "chain", "chain-written-out", "gradient", "denominator-form", "denominator-order"):
        assert by_id[cid]["depends_on_reading"] and "numerator layout" in by_id[cid]["reading"], cid
    assert not by_id["scalar"]["depends_on_reading"]        # a gradient of a scalar alone: the same in both


# ---------------------------------------------------------------- the intermediate form and its printing

def _context(text):
    return parse_derivation(text, "layer.md").contexts[0]


def test_a_jacobian_is_read_transposed_and_printed_as_written():
    ctx = _context(LAYER.replace("{declared}", DECLARED))
    assert ctx.numerator
    claims = {c.id: c for c in ctx.claims}
    lhs = claims["jacobian"].lhs
    assert isinstance(lhs, ir.Transpose) and lhs.implied and isinstance(lhs.arg, ir.Deriv)
    assert to_latex(lhs) == r"\frac{\partial h}{\partial x}"
    # a gradient of a scalar is not transposed
    assert isinstance(claims["scalar"].lhs, ir.Deriv)
    for c in ctx.claims:                              # printed, and read back in the same context: the same
        assert parse_statement(f"{to_latex(c.lhs)} = {to_latex(c.rhs)}", ctx) == (c.lhs, c.rhs), c.id


def test_an_unknown_layout_and_a_name_for_a_jacobian_are_errors():
    with pytest.raises(DerivationErrors) as e:
        _context(LAYER.replace("{declared}", "> Jacobians: row layout\n"))
    assert "not a layout of Jacobians" in str(e.value)
    named = LAYER.replace("{declared}", DECLARED) + "\n$$ J := \\frac{\\partial h}{\\partial x} $$\n"
    with pytest.raises(DerivationErrors) as e:
        _context(named)
    assert "names a Jacobian" in str(e.value)


# ---------------------------------------------------------------- a copy's Jacobian (Deep Learning 10.23)

RNN = r"""# An RNN with the book's copies, in numerator layout

$$ \boldsymbol{W}, \boldsymbol{V} \in \mathbb{R}^{H \times H}, \quad \boldsymbol{b} \in \mathbb{R}^{H}, \quad \boldsymbol{x}^{(t)} \in \mathbb{R}^{H}, \quad \boldsymbol{h}^{(0)} \in \mathbb{R}^{H} $$

$$ \boldsymbol{h}^{(t)} = \tanh(\boldsymbol{b} + \boldsymbol{W} \boldsymbol{h}^{(t-1)} + \boldsymbol{x}^{(t)}) $$

$$ \boldsymbol{o}^{(t)} = \boldsymbol{V} \boldsymbol{h}^{(t)} $$

$$ \frac{\partial \boldsymbol{o}^{(t)}}{\partial \boldsymbol{b}^{(t)}} = \boldsymbol{V} \operatorname{diag}\left(1 - \left(\boldsymbol{h}^{(t)}\right)^2\right) \tag{copy} $$

> Jacobians: numerator layout

$$ \frac{\partial \boldsymbol{o}^{(t)}}{\partial \boldsymbol{b}^{(t)}} = \operatorname{diag}\left(1 - \left(\boldsymbol{h}^{(t)}\right)^2\right) \boldsymbol{V}^\top \tag{copy-denominator-form} $$
"""


def _copy_truths(H=3, T=2):
    """At every step t of a sequence of T: the Jacobian of o^{(t)} through b's use at step t alone (h^{(t-1)}
    held), numerator layout, against each line's right-hand side."""
    rng = np.random.default_rng(1)
    W, V, b = rng.normal(size=(H, H)), rng.normal(size=(H, H)), rng.normal(size=H)
    xs, h0 = rng.normal(size=(T, H)), rng.normal(size=H)
    hs = [h0]
    for t in range(T):
        hs.append(np.tanh(b + W @ hs[-1] + xs[t]))
    out = {"copy": "true", "copy-denominator-form": "true"}
    for t in range(1, T + 1):
        def o_of(b_copy, t=t):
            return V @ np.tanh(b_copy + W @ hs[t - 1] + xs[t - 1])
        J = _jacobian(o_of, b)
        D = np.diag(1 - hs[t] ** 2)
        for cid, rhs in (("copy", V @ D), ("copy-denominator-form", D @ V.T)):
            if not np.allclose(J, rhs, rtol=1e-5, atol=1e-7):
                out[cid] = "false"
    return out


def test_a_copys_jacobian_is_read_in_the_declared_layout(tmp_path):
    truths = _copy_truths()
    assert truths == {"copy": "true", "copy-denominator-form": "false"}
    path = tmp_path / "rnn.md"
    path.write_text(RNN)
    by_id = _by_id(run(jobs=1, document=load_document(path), repairs=False))
    assert by_id["copy"]["verdict"] == "proved", by_id["copy"]["reason"]
    assert by_id["copy-denominator-form"]["verdict"] == "refuted", by_id["copy-denominator-form"]["reason"]
    assert by_id["copy"]["depends_on_reading"] and "numerator layout" in by_id["copy"]["reading"]


def test_no_right_hand_side_is_derived_for_a_jacobian_read_in_numerator_layout():
    # The derivation builds the denominator-layout Jacobian, whose factors ∂r/∂q would print as the transposes
    # the file's reading makes of them: nothing is derived (the repair search still edits the line).
    from derivations.analyses.derive import derived_rhs
    ctx = _context(LAYER.replace("{declared}", DECLARED))
    claims = {c.id: c for c in ctx.claims}
    assert derived_rhs(ctx, claims["denominator-form"]) is None
    assert derived_rhs(ctx, claims["scalar"]) is not None                    # a gradient of a scalar is


def test_a_latex_document_declares_it_in_a_comment_after_a_display(tmp_path):
    from derivations.latex.files import read_derivation
    path = tmp_path / "layer.tex"
    path.write_text("\\documentclass{article}\n\\begin{document}\n\\section{Layer}\n"
                    "\\[ W \\in \\mathbb{R}^{n \\times n}, \\quad x \\in \\mathbb{R}^{n} \\]\n"
                    "\\[ h := \\tanh(W x) \\]\n"
                    "\\begin{equation}\n\\frac{\\partial h}{\\partial x} = \\operatorname{diag}(1 - h^2) W "
                    "\\label{jac}\n\\end{equation}\n% Jacobians: numerator layout\n\\end{document}\n")
    (ctx,) = read_derivation(path).contexts
    (claim,) = ctx.claims
    assert ctx.numerator and claim.depends_on_reading
    assert isinstance(claim.lhs, ir.Transpose) and claim.lhs.implied


def test_deep_learning_10_21_as_printed_gets_the_factors_in_the_order_the_product_needs():
    """10.21's left-hand side is 10.20's right-hand side (numerator layout, declared); its right-hand side as the
    book prints it, W^T (∇L) diag(1 - h^2) + V^T (∇L), does not compose.  The best proved repair keeps the
    left-hand side and moves diag(...) before the gradient."""
    from pathlib import Path

    from derivations.analyses import repair
    from derivations.latex.files import read_derivation
    path = Path(__file__).parent / "corpus" / "goodfellow_10_2_2.md"
    (ctx,) = read_derivation(path).contexts
    claim = next(c for c in ctx.claims if c.id == "10-21")
    found = repair.search(ctx, claim, budget=60.0)
    best = found["repairs"][0]
    assert best["edit"] == "move-factor"
    lhs, rhs = parse_statement(best["latex"], ctx)
    assert lhs == claim.lhs
    assert to_latex(rhs) == (r"W^\top \operatorname{diag}(1 - (h^{(t+1)})^2) \nabla_{h^{(t+1)}} L"
                             r" + V^\top \nabla_{o^{(t)}} L")
    assert repair.check(ctx, ir.Claim("10-21~best", "", lhs, rhs))["verdict"] == "proved"
