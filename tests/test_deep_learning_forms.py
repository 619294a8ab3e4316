"""The Deep Learning book's forms of section 10.2.2 (issue 18): L^{(t)} beside L, entry-wise lines, \\tau as
the last step, the copies W^{(t)} of a weight and sums over entries \\sum_i (docs/derivation-format.md).

The copies and sums over entries are written out by the reader (latex/copies.py); here their value is
checked against the book's own definition by finite differences that share nothing with that code: a copy
W^{(t)} is W perturbed with every quantity before step t held at its value (tests/fd.py's frozen run), so
that only W's use at step t moves, and Σ_i g_i ∇ q_i is summed entry by entry.
"""
import fd
import numpy as np
import pytest

from derivations.form import ir
from derivations.form.printer import to_latex
from derivations.latex.errors import DerivationErrors
from derivations.latex.reader import parse_derivation, parse_statement

HEAD = r"""# RNN
$$ \boldsymbol{W} \in \mathbb{R}^{H \times H}, \quad \boldsymbol{U} \in \mathbb{R}^{H \times D}, \quad \boldsymbol{V} \in \mathbb{R}^{K \times H}, \quad \boldsymbol{b} \in \mathbb{R}^{H}, \quad \boldsymbol{c} \in \mathbb{R}^{K} $$
$$ \boldsymbol{x}^{(t)} \in \mathbb{R}^{D}, \quad \boldsymbol{h}^{(0)} \in \mathbb{R}^{H}, \quad y^{(t)} \in \{1, \dots, K\} $$
$$ \boldsymbol{a}^{(t)} = \boldsymbol{b} + \boldsymbol{W} \boldsymbol{h}^{(t-1)} + \boldsymbol{U} \boldsymbol{x}^{(t)} $$
$$ \boldsymbol{h}^{(t)} = \tanh(\boldsymbol{a}^{(t)}) $$
$$ \boldsymbol{o}^{(t)} = \boldsymbol{c} + \boldsymbol{V} \boldsymbol{h}^{(t)} $$
$$ \hat{\boldsymbol{y}}^{(t)} = \operatorname{softmax}(\boldsymbol{o}^{(t)}) $$
$$ L = \sum_t L^{(t)} $$
$$ L^{(t)} := -\log \left( \hat{\boldsymbol{y}}^{(t)} \right)_{y^{(t)}} $$
"""


def _context(extra=""):
    return parse_derivation(HEAD + extra, "dl.md").contexts[0]


def _errors(extra):
    with pytest.raises(DerivationErrors) as e:
        parse_derivation(HEAD + extra, "dl.md")
    return [(x.message, x.hint or "") for x in e.value.errors]


# ---------------------------------------------------------------- L^{(t)} beside L, \tau

def test_the_per_step_loss_is_a_sequence_of_its_own_beside_the_total():
    ctx = _context(r"$$ \frac{\partial L}{\partial L^{(t)}} = 1 \tag{10.17} $$" "\n")
    assert "L" in ctx.definitions and not ctx.is_sequence("L")
    (claim,) = ctx.claims
    per_step = claim.lhs.wrt
    assert per_step.name != "L" and ctx.is_sequence(per_step.name) and per_step.time == ir.Time("t")
    assert to_latex(claim.lhs) == r"\frac{\partial L}{\partial L^{(t)}}"       # printed back as written
    assert parse_statement(to_latex(claim.lhs) + " = 1", ctx)[0] == claim.lhs
    assert fd.truth(ctx, claim)[0] == "true"


def test_a_sequence_beside_a_line_about_its_step_is_no_per_step_pair():
    # h^{(t)} defined and a claim `h = \tanh(a)` (h at step t): not a total h beside its terms
    ctx = _context(r"$$ \boldsymbol{h} = \tanh(\boldsymbol{a}) $$" "\n")
    (claim,) = ctx.claims
    assert claim.lhs == ir.Ref("h", ir.Time("t"))


def test_tau_is_the_last_step_and_a_bound_tau_stays_bound():
    ctx = _context(r"$$ \nabla_{\boldsymbol{h}^{(\tau)}} L = \boldsymbol{V}^\top \nabla_{\boldsymbol{o}^{(\tau)}} L $$"
                   "\n" r"$$ \nabla_{\boldsymbol{h}^{(t)}} L = \sum_{\tau=t}^{T} \nabla_{\boldsymbol{h}^{(\tau)}} L $$" "\n")
    first, second = ctx.claims
    assert first.lhs.wrt == ir.Ref("h", ir.Time("T"))
    assert second.rhs.var == "\\tau" and second.rhs.body.wrt.time == ir.Time("\\tau")


# ---------------------------------------------------------------- entry-wise lines

def test_an_entrywise_line_is_the_same_line_of_whole_columns():
    ctx = _context(
        r"$$ (\nabla_{\boldsymbol{o}^{(t)}} L)_i = \frac{\partial L}{\partial o_i^{(t)}} = \hat{y}_i^{(t)} - \mathbf{1}_{i = y^{(t)}} $$"
        "\n" r"$$ \nabla_{\boldsymbol{o}^{(t)}} L = \frac{\partial L}{\partial \boldsymbol{o}^{(t)}} = \hat{\boldsymbol{y}}^{(t)} - e_{y^{(t)}} $$" "\n")
    a1, a2, b1, b2 = ctx.claims
    assert (a1.lhs, a1.rhs) == (b1.lhs, b1.rhs)
    assert a2.lhs == b2.lhs and a2.rhs.terms[0] == b2.rhs.terms[0]
    assert a2.rhs.terms[1].arg.index == b2.rhs.terms[1].arg.index           # 1_{i = y} is e_y
    assert all(fd.truth(ctx, c)[0] == "true" for c in ctx.claims)


def test_products_and_functions_of_entries_are_element_wise():
    ctx = _context(r"$$ (\nabla_{\boldsymbol{a}^{(t)}} L)_i = (1 - (h_i^{(t)})^2) \frac{\partial L}{\partial h_i^{(t)}} $$"
                   "\n" r"$$ (\nabla_{\boldsymbol{a}^{(t)}} L)_i = \tanh'(a_i^{(t)}) (\nabla_{\boldsymbol{h}^{(t)}} L)_i $$" "\n")
    assert all(isinstance(c.rhs, ir.Hadamard) for c in ctx.claims)
    assert all(fd.truth(ctx, c)[0] == "true" for c in ctx.claims)


@pytest.mark.parametrize("line, message", [
    (r"(\nabla_{\boldsymbol{h}^{(t)}} L)_i = W_i", "needs W to be a column"),
    (r"(\nabla_{\boldsymbol{h}^{(t)}} L)_i = \frac{\partial o^{(t)}}{\partial h_i^{(t)}}", "to be a scalar"),
    (r"(\nabla_{\boldsymbol{h}^{(t)}} L)_i = L", "every member is an entry i"),
    (r"(\nabla_{\boldsymbol{h}^{(t)}} L)_i = h_i^{(t)} + L", "a term without the entry index"),
    (r"(\nabla_{\boldsymbol{h}^{(t)}} L)_i = \operatorname{softmax}(h_i^{(t)})", "not read as an entry"),
    (r"(\nabla_{\boldsymbol{h}^{(t)}} L)_i = \nabla_{\boldsymbol{W}^{(t)}} h_i^{(t)}", "only inside a sum over entries"),
])
def test_an_entrywise_line_that_is_no_line_of_columns_says_to_write_the_column(line, message):
    ((got, hint),) = _errors(f"$$ {line} $$\n")
    assert message in got, got
    assert r"write the whole column, e.g. \nabla_{o^{(t)}} L = \hat{y}^{(t)} - e_{y^{(t)}}" in hint


# ---------------------------------------------------------------- copies and sums over entries, by the book's definition

def _copy_gradient(run, q, X, t, g, held):
    """Σ_i g_i ∂q_i^{(t)}/∂X, by central differences; held: the copy X^{(t)} (steps before t held fixed)."""
    base = run.inputs[(X, None)]
    out = np.zeros(base.shape)
    for k in range(base.size):
        values = []
        for sign in (1, -1):
            v = base.copy().reshape(-1)
            v[k] += sign * fd.EPS
            values.append(run.perturbed(X, None, v.reshape(base.shape), t if held else None).value(q, t))
        out.flat[k] = (g.T @ (values[0] - values[1])).item() / (2 * fd.EPS)
    return out


def _copy_jacobian(run, q, X, t):
    """∂q^{(t)}/∂X^{(t)} in denominator layout ([j, i] = ∂q_i/∂X_j), the steps before t held fixed."""
    base = run.inputs[(X, None)]
    rows = []
    for k in range(base.size):
        values = []
        for sign in (1, -1):
            v = base.copy().reshape(-1)
            v[k] += sign * fd.EPS
            values.append(run.perturbed(X, None, v.reshape(base.shape), t).value(q, t))
        rows.append(((values[0] - values[1]) / (2 * fd.EPS)).reshape(-1))
    return np.array(rows)


SUMS = [  # the member as written, the quantity, the weight, the coefficients' quantity, a copy?
    (r"\sum_t \sum_i \left( \frac{\partial L}{\partial h_i^{(t)}} \right) \nabla_{\boldsymbol{W}^{(t)}} h_i^{(t)}",
     "h", "W", "h", True),                                                          # 10.25
    (r"\sum_t \sum_i \left( \frac{\partial L}{\partial h_i^{(t)}} \right) \nabla_{\boldsymbol{U}^{(t)}} h_i^{(t)}",
     "h", "U", "h", True),                                                          # 10.27
    (r"\sum_t \sum_i \left( \frac{\partial L}{\partial o_i^{(t)}} \right) \nabla_{\boldsymbol{V}} o_i^{(t)}",
     "o", "V", "o", False),                                                         # 10.24
    (r"\sum_t \sum_i \left( \frac{\partial L}{\partial h_i^{(t)}} \right) \nabla_{\boldsymbol{W}^{(t)}} a_i^{(t)}",
     "a", "W", "h", True),                                                          # wrong-10.25's member
    (r"\sum_t \sum_i \left( \frac{\partial L}{\partial o_i^{(t)}} \right) \nabla_{\boldsymbol{V}} \hat{y}_i^{(t)}",
     "\\hat{y}", "V", "o", False),                                                  # wrong-10.24's member
    (r"\sum_t \sum_i \left( \frac{\partial L}{\partial a_i^{(t)}} \right) \nabla_{\boldsymbol{U}^{(t)}} h_i^{(t)}",
     "h", "U", "a", True),                                                          # wrong-10.27's member
    (r"\sum_t \sum_i \left( \frac{\partial L}{\partial h_i^{(t)}} \right) \nabla_{\boldsymbol{b}^{(t)}} h_i^{(t)}",
     "h", "b", "h", True),
]


@pytest.mark.parametrize("member, q, X, coefficient, copy", SUMS, ids=[f"{s[1]}-{s[2]}-{s[3]}" for s in SUMS])
def test_a_sum_over_entries_is_the_books_chain_rule_term_by_term(member, q, X, coefficient, copy):
    ctx = _context()
    _, written = parse_statement(f"\\nabla_{{{X}}} L = {member}", ctx)
    assert not any(isinstance(n, ir.Deriv) and n.wrt == ir.Ref(X) for n in written.walk())   # written out
    rng = np.random.default_rng(1)
    sizes = {"H": 3, "D": 2, "K": 4}
    for T in (1, 2, 3):
        inputs, indices = fd.draw(ctx, sizes, T, rng)
        run = fd.Run(ctx, sizes, T, inputs, indices)
        expected = sum(_copy_gradient(run, q, X, t, run.ev(ir.Deriv(ir.Ref("L"), ir.Ref(coefficient, ir.Time("t"))),
                                                           {"T": T, "t": t}), copy)
                       for t in range(1, T + 1))
        got = run.ev(written, {"T": T})
        assert np.allclose(got, expected, atol=1e-6), (T, got, expected)


def test_the_jacobian_of_a_copy_is_the_books():
    ctx = _context()
    _, written = parse_statement(r"\nabla_{b} L = \sum_t \left( \frac{\partial \boldsymbol{h}^{(t)}}{\partial "
                                 r"\boldsymbol{b}^{(t)}} \right)^\top \nabla_{\boldsymbol{h}^{(t)}} L", ctx)
    rng = np.random.default_rng(2)
    sizes = {"H": 3, "D": 2, "K": 4}
    for T in (1, 2, 3):
        inputs, indices = fd.draw(ctx, sizes, T, rng)
        run = fd.Run(ctx, sizes, T, inputs, indices)
        expected = sum(_copy_jacobian(run, "h", "b", t).T @ run.ev(ir.Deriv(ir.Ref("L"), ir.Ref("h", ir.Time("t"))),
                                                                     {"T": T, "t": t}) for t in range(1, T + 1))
        assert np.allclose(run.ev(written, {"T": T}), expected, atol=1e-6)


@pytest.mark.parametrize("line, message, instead", [
    ((r"\nabla_{\boldsymbol{W}} L = \sum_t \sum_i \left( \frac{\partial L}{\partial h_i^{(t)}} \right) "
     r"\nabla_{\boldsymbol{W}} h_i^{(t)}"), "W reaches h through another step", r"write the copy used at step t, \nabla_{W^{(t)}}"),
    (r"\nabla_{\boldsymbol{W}} L = \sum_t \frac{\partial L}{\partial \boldsymbol{W}^{(t)}}",
     "is read only in the derivative of a quantity at step t", r"\nabla_{W} L = \sum_t"),
    ((r"\nabla_{\boldsymbol{U}} L = \sum_t \sum_i \left( \frac{\partial L}{\partial h_i^{(t)}} \right) "
     r"\nabla_{\boldsymbol{U}^{(t)}} h_i^{(t+1)}"), "is read only in the derivative of a quantity at step t", r"\nabla_{U} L"),
    (r"\nabla_{\boldsymbol{V}} L = \sum_t \sum_i \nabla_{\boldsymbol{V}} o_i^{(t)}",
     "a sum over entries (\\sum_i) is read only as", r"\nabla_{V} L = \sum_t (\nabla_{o^{(t)}} L) h^{(t)\top}"),
    ((r"\nabla_{\boldsymbol{c}} L = \sum_t \sum_i \left( \frac{\partial L}{\partial h_i^{(t)}} \right) "
     r"\nabla_{\boldsymbol{c}^{(t)}} h_i^{(t)}"), "h does not read c at step t", "leave the term out"),
])
def test_a_copy_or_sum_over_entries_not_read_says_what_to_write(line, message, instead):
    ((got, hint),) = _errors(f"$$ {line} $$\n")
    assert message in got and instead in hint, (got, hint)


def test_a_copy_through_a_quantity_without_steps_and_a_sum_inside_a_sum_are_errors():
    head = r"""# Shared
$$ W \in \mathbb{R}^{H \times H}, \quad b \in \mathbb{R}^{H}, \quad x_t \in \mathbb{R}^{H}, \quad h_0 \in \mathbb{R}^{H} $$
$$ p := W b, \quad h_t := \tanh(W h_{t-1} + p + x_t), \quad L := \sum_t \mathbf{1}^\top h_t $$
"""
    line = (r"\nabla_{W} L = \sum_t \sum_i \left( \frac{\partial L}{\partial h_i^{(t)}} \right) \nabla_{W^{(t)}} "
            r"h_i^{(t)}")
    with pytest.raises(DerivationErrors) as e:
        parse_derivation(head + f"$$ {line} $$\n", "shared.md")
    ((err,),) = [e.value.errors]
    assert "p, a quantity without steps computed from W" in err.message
    with pytest.raises(DerivationErrors) as e:
        parse_derivation(head + r"$$ L = \sum_t \sum_{s=1}^{t} \mathbf{1}^\top h_s $$" "\n", "nested.md")
    ((err,),) = [e.value.errors]
    assert "a sum over steps inside a sum over steps is not read" in err.message


def test_the_jacobian_through_a_matrix_copy_says_to_write_a_sum_over_entries():
    ((got, hint),) = _errors(r"$$ \nabla_{\boldsymbol{W}} L = \sum_t \frac{\partial \boldsymbol{h}^{(t)}}{\partial "
                             r"\boldsymbol{W}^{(t)}} $$" "\n")
    assert "the Jacobian of a column with respect to the matrix W" in got
    assert r"\nabla_{V} L = \sum_t (\nabla_{o^{(t)}} L) h^{(t)\top}" in hint


def test_an_entrywise_line_has_one_entry_index():
    ((got, hint),) = _errors(r"$$ (\nabla_{\boldsymbol{o}^{(t)}} L)_i = \hat{y}_j^{(t)} - \mathbf{1}_{i = y^{(t)}} $$" "\n")
    assert "uses one entry index: i and j" in got and "write the whole column" in hint
    ctx = _context(r"$$ \nabla_{\boldsymbol{W}} L = \sum_t \sum_i \left( \frac{\partial L}{\partial h_i^{(t)}} \right) "
                   r"\nabla_{\boldsymbol{W}^{(t)}} h_i^{(t)} $$" "\n")      # a bound i is no free index
    assert len(ctx.claims) == 1


def test_a_line_read_through_a_copy_says_so_next_to_it():
    # The engines check the written-out derivative, not the symbols on the page: the report says which
    # copy was read how (the claim's reading, plain text), and a line without a copy says nothing.
    ctx = _context(r"$$ \nabla_{\boldsymbol{b}} L = \sum_t \left( \frac{\partial \boldsymbol{h}^{(t)}}{\partial "
                   r"\boldsymbol{b}^{(t)}} \right)^\top \nabla_{\boldsymbol{h}^{(t)}} L \tag{copy} $$" "\n"
                   r"$$ \frac{\partial L}{\partial L^{(t)}} = 1 \tag{plain} $$" "\n")
    by_id = {c.id: c for c in ctx.claims}
    assert "b^(t): the copy of the weight used at that step only" in by_id["copy"].reading
    assert "{" not in by_id["copy"].reading and not by_id["copy"].depends_on_reading
    assert by_id["plain"].reading == ""


# ---------------------------------------------------------------- 10.12-10.14: a quantity written with its arguments

ROWS = r"""
\begin{align}
L(\{\boldsymbol{x}^{(1)}, \dots, \boldsymbol{x}^{(\tau)}\}, \{\boldsymbol{y}^{(1)}, \dots, \boldsymbol{y}^{(\tau)}\}) \tag{10.12} \\
&= \sum_t L^{(t)} \tag{10.13} \\
&= -\sum_t \log p_{\text{model}}(y^{(t)} \mid \{\boldsymbol{x}^{(1)}, \dots, \boldsymbol{x}^{(t)}\}) \tag{10.14}
\end{align}

$$ p_{\text{model}}(y^{(t)} \mid \{\boldsymbol{x}^{(1)}, \dots, \boldsymbol{x}^{(t)}\}) := %s $$

$$ L^{(t)} := -\log p_{\text{model}}(y^{(t)} \mid \{\boldsymbol{x}^{(1)}, \dots, \boldsymbol{x}^{(t)}\}) $$
"""
HEAD_FORWARD = HEAD[:HEAD.index("$$ L = ")]


def test_a_quantity_written_with_its_arguments_is_the_quantity_at_the_step_they_reach():
    ctx = parse_derivation(HEAD_FORWARD + ROWS % r"\left( \hat{\boldsymbol{y}}^{(t)} \right)_{y^{(t)}}",
                           "dl.md").contexts[0]
    # L(\{...\}, \{...\}) = \sum_t L^{(t)} defines L (the first equality of the chain); p_model(y^{(t)} | ...) is
    # p_model at step t, defined by its own line
    assert "L" in ctx.definitions and not ctx.is_sequence("L")
    assert ctx.is_sequence("p_model") and ctx.definitions["p_model"].target.time == ir.Time("t")
    (claim,) = ctx.claims                                  # 10.14: what the chain claims after the definition
    assert claim.label == "10.14" and claim.id == "10-14"
    assert r"p_{model}(y^{(t)} \mid" in claim.reading and "as p_{model} at step t" in claim.reading
    assert r"\{\boldsymbol{y}^{(1)}, \dots, \boldsymbol{y}^{(\tau)}\}) as L;" in claim.reading
    assert fd.truth(ctx, claim)[0] == "true"


def test_a_wrong_definition_of_the_written_quantity_makes_the_chain_false():
    ctx = parse_derivation(HEAD_FORWARD + ROWS % r"\left( \hat{\boldsymbol{y}}^{(t)} \right)_{y^{(t)}}",
                           "dl.md").contexts[0]
    (claim,) = ctx.claims
    # the claim as written against a p_model that is not L^{(t)}'s: the same chain row is then false
    wrong = parse_derivation(HEAD_FORWARD + ROWS.replace(r"L^{(t)} := -\log", r"L^{(t)} := -2 \log")
                             % r"\left( \hat{\boldsymbol{y}}^{(t)} \right)_{y^{(t)}}", "dl.md").contexts[0]
    assert fd.truth(ctx, claim)[0] == "true" and fd.truth(wrong, wrong.claims[0])[0] == "false"


def test_one_name_written_with_two_sets_of_arguments_is_an_error():
    other = ROWS.replace(r"L^{(t)} := -\log p_{\text{model}}(y^{(t)} \mid \{\boldsymbol{x}^{(1)}, \dots, "
                         r"\boldsymbol{x}^{(t)}\})", r"L^{(t)} := -\log p_{\text{model}}(y^{(t)} \mid \boldsymbol{x}^{(t)})")
    with pytest.raises(DerivationErrors) as e:
        parse_derivation(HEAD_FORWARD + other % r"\left( \hat{\boldsymbol{y}}^{(t)} \right)_{y^{(t)}}", "dl.md")
    (msg, hint), = [(x.message, x.hint) for x in e.value.errors]
    assert r"p_{model} is written with the arguments (y^{(t)} \mid \boldsymbol{x}^{(t)}) here" in msg
    assert "give the other quantity another name" in hint


@pytest.mark.parametrize("line", [
    r"\{\boldsymbol{x}^{(1)}, \dots, \boldsymbol{x}^{(t)}\} = \boldsymbol{b}",
    r"\boldsymbol{b} + (\boldsymbol{b} \mid \boldsymbol{c}) = \boldsymbol{b}",
])
def test_a_set_or_a_condition_that_is_no_quantitys_argument_is_an_error(line):
    (msg, _), = _errors(f"$$ {line} $$\n")
    assert "read only as" in msg


def test_the_step_of_a_probability_is_that_of_what_it_is_of():
    # conditioned on x^{(t+1)} too: p_model is still the probability of y^{(t)}, at step t (it crashed the engines)
    ahead = (HEAD_FORWARD + ROWS % r"\left( \hat{\boldsymbol{y}}^{(t)} \right)_{y^{(t)}}").replace(
        r"\boldsymbol{x}^{(t)}\})", r"\boldsymbol{x}^{(t+1)}\})")
    ctx = parse_derivation(ahead, "dl.md").contexts[0]
    assert ctx.definitions["p_model"].target.time == ir.Time("t")
    assert fd.truth(ctx, ctx.claims[0])[0] == "true"


def test_one_quantity_written_at_two_steps_is_one_quantity_and_contexts_are_apart():
    at_two = HEAD_FORWARD + ROWS % r"\left( \hat{\boldsymbol{y}}^{(t)} \right)_{y^{(t)}}" + (
        r"$$ L^{(t-1)} = -\log p_{\text{model}}(y^{(t-1)} \mid \{\boldsymbol{x}^{(1)}, \dots, "
        r"\boldsymbol{x}^{(t-1)}\}) $$" "\n")
    assert len(parse_derivation(at_two, "dl.md").contexts[0].claims) == 2
    other = (HEAD_FORWARD + ROWS % r"\left( \hat{\boldsymbol{y}}^{(t)} \right)_{y^{(t)}}").replace(
        r"\{\boldsymbol{x}^{(1)}, \dots, \boldsymbol{x}^{(t)}\}", r"\boldsymbol{x}^{(t)}").replace("# RNN", "# Other")
    two = parse_derivation(HEAD_FORWARD + ROWS % r"\left( \hat{\boldsymbol{y}}^{(t)} \right)_{y^{(t)}}" + other,
                           "dl.md")
    assert len(two.contexts) == 2


def test_sets_of_steps_up_to_t_are_no_argument_read():
    line = (r"$$ L(\{\boldsymbol{x}^{(1)}, \dots, \boldsymbol{x}^{(t)}\}) = \sum_{s=1}^{t} L^{(s)} $$" "\n")
    (msg, _), = _errors(line)
    assert "sets of steps up to t" in msg and r"L(\{x^{(1)}, \dots, x^{(\tau)}\})" in msg


def test_written_arguments_in_sized_braces_are_read():
    ctx = parse_derivation((HEAD_FORWARD + ROWS % r"\left( \hat{\boldsymbol{y}}^{(t)} \right)_{y^{(t)}}").replace(
        r"\mid \{\boldsymbol{x}^{(1)}, \dots, \boldsymbol{x}^{(t)}\})",
        r"\mid \left\{\boldsymbol{x}^{(1)}, \dots, \boldsymbol{x}^{(t)}\right\})"), "dl.md").contexts[0]
    assert fd.truth(ctx, ctx.claims[0])[0] == "true"


CHAIN = r"""
\begin{align}
\frac{\partial L}{\partial L^{(t)}} &= %s \\
&= %s
\end{align}
"""


@pytest.mark.parametrize("rows, want", [
    # a \label on a numbered row is the id of the equality ending there, its \tag the label
    ((r"2 - 1 \tag{1} \label{eq:one}", r"2 \tag{2}"), [("eq:one", "1", "true"), ("2", "2", "false")]),
    # two equalities end on row 1: both carry its number
    ((r"1 = 2 - 1 \tag{1}", r"3 \tag{2}"), [("1-1", "1 [1/2]", "true"), ("1-2", "1 [2/2]", "true"),
                                             ("2", "2", "false")]),
    # an untagged row keeps an id of its own, not one made from another row's number
    ((r"1", r"3 \tag{3}"), [("RNN-1-1", "RNN, line 12 [1/2]", "true"), ("3", "3", "false")]),
    # a \label on every row: each is the id of its equality
    ((r"1 \label{eq:a}", r"2 - 1 \label{eq:b}"), [("eq:a", "RNN, line 12", "true"), ("eq:b", "RNN, line 12", "true")]),
])
def test_each_numbered_row_labels_the_equalities_ending_on_it(rows, want):
    ctx = _context(CHAIN % rows)
    assert [(c.id, c.label, fd.truth(ctx, c)[0]) for c in ctx.claims] == want
