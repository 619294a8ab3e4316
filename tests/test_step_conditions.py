"""A condition between steps, `\\mathbb{1}[t = T]`: a line that holds differently at the ends of the sequence.

A many-to-one network reads its state at the last step only, so dh_t is V^T (p - e_k) at t = T and what
h_{t+1} passes back before; one line says both with the condition.  A Jacobian ∂b_t/∂b_{t+1} is zero at
t = T, where b_{T+1} is a constant zero.  The truth of every line comes from finite differences of the
parsed form (fd.truth, NumPy, no engine); the explicit engine must refute exactly the false ones, and the
structural engine must prove the true ones for every T and never a false one, even with its quick
numeric look (which would otherwise stop it early on a wrong line) switched off.
"""
import dataclasses

import fd
import pytest

from derivations.analyses.derive import derived_rhs
from derivations.engines import explicit, recurrence
from derivations.engines.verdicts import PROVED, REFUTED
from derivations.form import ir
from derivations.form.printer import to_latex
from derivations.latex.errors import DerivationErrors
from derivations.latex.reader import parse_derivation, parse_statement

MANY_TO_ONE = r"""# many to one
$$ W \in \mathbb{R}^{H \times H}, \quad U \in \mathbb{R}^{H \times D}, \quad V \in \mathbb{R}^{K \times H}, \quad c \in \mathbb{R}^{K} $$
$$ x_t \in \mathbb{R}^{D}, \quad h_0 \in \mathbb{R}^{H}, \quad k \in \{1, \dots, K\} $$
$$ h_t := \tanh(W h_{t-1} + U x_t), \quad p := \operatorname{softmax}(V h_T + c), \quad L := -\log p_k $$
$$ dh_t := \frac{\partial L}{\partial h_t} $$
"""
BACK = r"W^{\top} \left( (1 - h_{t+1}^2) \circ dh_{t+1} \right)"
LINES = [  # dh_t = ...
    rf"\mathbb{{1}}[t = T] V^{{\top}} (p - e_k) + {BACK}",
    rf"\mathbf{{1}}_{{t = T}} V^{{\top}} (p - e_k) + \mathbb{{1}}_{{t < T}} {BACK}",
    rf"\mathbb{{1}}\{{t \ge T\}} V^{{\top}} (p - e_k) + \mathbb{{1}}[t \le T - 1] {BACK}",
    rf"V^{{\top}} (p - e_k) \mathbb{{1}}[t = T] + {BACK}",
    rf"\mathbb{{1}}[t < T] V^{{\top}} (p - e_k) + {BACK}",
    rf"\mathbb{{1}}[t = T] V^{{\top}} (p - e_k) + \mathbb{{1}}[t > 1] {BACK}",
    rf"\mathbb{{1}}[t \neq T] V^{{\top}} (p - e_k) + {BACK}",
    rf"\mathbb{{1}}[t = T] V^{{\top}} (p - e_k) + \mathbb{{1}}[t < T - 1] {BACK}",     # not at t = T - 1
    rf"\mathbb{{1}}[t = T] V^{{\top}} (p - e_k) + \mathbb{{1}}[t \ne 2] {BACK}",      # not at t = 2
    rf"\mathbb{{1}}[t = T] V^{{\top}} (p - e_k) + \mathbb{{1}}[t + 1 \le T] {BACK}",
    rf"\mathbb{{1}}[t = T] V^{{\top}} (p - e_k) + {BACK} - \mathbb{{1}}[t = 3] \mathbb{{1}}[t = T - 3] {BACK}",  # T = 6
    rf"\mathbb{{1}}[t = T] V^{{\top}} (p - e_k) + {BACK} - \mathbb{{1}}[t = 1] \mathbb{{1}}[t = T - 1] {BACK}",  # T = 2
    rf"\mathbb{{1}}[t = T] V^{{\top}} (p - e_k) + {BACK} - \mathbb{{1}}[t = 2] \mathbb{{1}}[t = 1] {BACK}",      # never
    r"\mathbb{1}[t = T] V^{\top} (p - e_k)",
    r"V^{\top} (p - e_k)",
]


def _claim(head, line):
    ctx = parse_derivation(head + f"$$ {line} $$\n", "s.md").contexts[0]
    return ctx, ctx.claims[-1]


def _verdicts_follow_the_truth(ctx, claim):
    """fd.truth decides the line; the structural engine proves it exactly when it is true, and the explicit
    engine refutes it exactly when it is false."""
    truth, where = fd.truth(ctx, claim)
    structural = recurrence.prove(ctx, claim)
    if truth == "true":
        assert structural is not None and structural.verdict == PROVED, structural
        assert explicit.prove(ctx, claim).verdict != REFUTED
    else:
        assert truth == "false", where
        assert structural is None or structural.verdict != PROVED, structural
        assert explicit.prove(ctx, claim).verdict == REFUTED


@pytest.fixture
def no_quick_look(monkeypatch):
    """The structural engine alone: its numeric shortcut for wrong lines switched off."""
    monkeypatch.setattr(recurrence, "_differs_at_numbers", lambda ctx, claim: False)


@pytest.mark.parametrize("line", LINES)
def test_a_line_with_a_condition_between_steps_is_proved_exactly_when_it_holds(line, no_quick_look):
    ctx, claim = _claim(MANY_TO_ONE, f"dh_t = {line}")
    _verdicts_follow_the_truth(ctx, claim)


SUMS = [  # dL/dU = ...
    r"\sum_{t=1}^{T} ((1 - h_t^2) \circ dh_t) x_t^{\top}",
    (r"\sum_{t=1}^{T} ((1 - h_t^2) \circ dh_t) x_t^{\top} - \sum_{t=1}^{T} \mathbb{1}[t = 2] \mathbb{1}[t = T - 2] "
    r"((1 - h_t^2) \circ dh_t) x_t^{\top}"),                                                        # false at T = 4
    r"\sum_{t=1}^{T} \mathbb{1}[t > 1] ((1 - h_t^2) \circ dh_t) x_t^{\top}",                         # false at t = 1
]


@pytest.mark.parametrize("line", SUMS)
def test_a_sum_over_steps_with_conditions_is_proved_exactly_when_it_holds(line, no_quick_look):
    ctx, claim = _claim(MANY_TO_ONE, f"\\frac{{\\partial L}}{{\\partial U}} = {line}")
    _verdicts_follow_the_truth(ctx, claim)


def test_the_truth_of_the_lines_is_not_all_one_way():
    truths = {fd.truth(*_claim(MANY_TO_ONE, f"dh_t = {line}"))[0] for line in LINES}
    assert truths == {"true", "false"}


@pytest.mark.parametrize("text, want", [
    (r"\mathbb{1}[t = T]", ir.StepIf(ir.Time("t"), "=", ir.Time("T"))),
    (r"\mathbb{1}_{t < T}", ir.StepIf(ir.Time("t"), "<", ir.Time("T"))),
    (r"\mathbf{1}_{t = T}", ir.StepIf(ir.Time("t"), "=", ir.Time("T"))),
    (r"1_{t < T}", ir.StepIf(ir.Time("t"), "<", ir.Time("T"))),
    (r"\mathbb{I}[t > 1]", ir.StepIf(ir.Time("t"), ">", ir.Time(None, 1))),
    (r"\mathbb{1}\{t \leq T - 1\}", ir.StepIf(ir.Time("t"), "\\le", ir.Time("T", -1))),
    (r"\mathbb{1}[t + 1 \ne T]", ir.StepIf(ir.Time("t", 1), "\\ne", ir.Time("T"))),
    (r"\mathbb{1}[t \geqslant 2]", ir.StepIf(ir.Time("t"), "\\ge", ir.Time(None, 2))),
])
def test_every_spelling_of_a_condition_is_read_and_printed_back_as_written(text, want):
    ctx, _ = _claim(MANY_TO_ONE, f"dh_t = {text} {BACK}")
    _, read = parse_statement(f"dh_t = {text} {BACK}", ctx)
    assert read.left.left == want
    printed = to_latex(read)
    assert parse_statement(f"dh_t = {printed}", ctx)[1] == read
    assert printed.startswith(text.split("t")[0])          # the author's spelling of the indicator


@pytest.mark.parametrize("text", [r"\mathbb{1}[z < 1]", r"\mathbb{1}[s < T]", r"\mathbb{1}_{h_t < 1}"])
def test_a_condition_that_is_not_between_steps_is_an_error_that_says_what_is_read(text):
    head = MANY_TO_ONE + "$$ z \\in \\mathbb{R} $$\n"
    with pytest.raises(DerivationErrors) as e:
        parse_derivation(head + f"$$ dh_t = {text} {BACK} $$\n", "s.md")
    (err,) = e.value.errors
    assert "between two steps" in err.message and "\\mathbb{1}[t < T]" in err.hint


FORWARD = r"""# forward
$$ W \in \mathbb{R}^{H \times H}, \quad U \in \mathbb{R}^{H \times D}, \quad x_t \in \mathbb{R}^{D} $$
$$ h_t := \tanh(W h_{t-1} + U x_t) $$
"""
BACKWARD = r"""# backward
$$ U_b \in \mathbb{R}^{H \times H}, \quad W_b \in \mathbb{R}^{H \times D}, \quad x_t \in \mathbb{R}^{D} $$
$$ b_t := \tanh(W_b x_t + U_b b_{t+1}) $$
"""


@pytest.mark.parametrize("head, lhs, condition", [
    (FORWARD, r"\frac{\partial h_t}{\partial h_{t-1}}", "t > 1"),      # h_0 is no input: a constant zero
    (FORWARD.replace(r"x_t \in", r"h_0 \in \mathbb{R}^{H}, \quad x_t \in"),
     r"\frac{\partial h_t}{\partial h_{t-1}}", None),                 # h_0 declared: an input at every t
    (BACKWARD, r"\frac{\partial b_t}{\partial b_{t+1}}", "t < T"),     # b_{T+1} is a constant zero
])
def test_the_derived_jacobian_of_a_step_next_to_the_ends_carries_its_condition(head, lhs, condition):
    ctx, claim = _claim(head, f"{lhs} = 0")
    assert fd.truth(ctx, claim)[0] == "false"
    derived = derived_rhs(ctx, claim)
    assert derived is not None
    conditions = [n for n in derived.walk() if isinstance(n, ir.StepIf)]
    assert [f"{c.left} {c.relation} {c.right}" for c in conditions] == ([condition] if condition else [])
    right = dataclasses.replace(claim, rhs=derived)
    assert fd.truth(ctx, right)[0] == "true"
    assert recurrence.prove(ctx, right).verdict == PROVED
    if condition:                          # the same line without its condition is false at the end it names
        bare = dataclasses.replace(claim, rhs=ir.transform(derived, lambda n: ir.Number(1) if isinstance(
            n, ir.StepIf) else n))
        assert fd.truth(ctx, bare)[0] == "false"
        assert explicit.prove(ctx, bare).verdict == REFUTED


def test_a_gradient_read_at_the_last_step_only_is_derived_with_its_condition():
    ctx, claim = _claim(MANY_TO_ONE, r"dh_t = V^{\top} (p - e_k)")
    assert fd.truth(ctx, claim)[0] == "false"
    derived = derived_rhs(ctx, claim)
    assert "\\mathbb{1}[t = T]" in to_latex(derived)
    right = dataclasses.replace(claim, rhs=derived)
    assert fd.truth(ctx, right)[0] == "true"
    assert recurrence.prove(ctx, right).verdict == PROVED


CASES = [  # dh_t = \begin{cases} ... \end{cases}
    rf"\begin{{cases}} V^{{\top}} (p - e_k) & t = T \\ {BACK} & t < T \end{{cases}}",
    rf"\begin{{cases}} V^{{\top}} (p - e_k), & \text{{if }} t = T, \\ {BACK}, & \text{{otherwise}}. \end{{cases}}",
    rf"\begin{{cases}} {BACK} & t < T \\ V^{{\top}} (p - e_k) & \text{{otherwise}} \end{{cases}}",
    rf"\begin{{cases}} V^{{\top}} (p - e_k) & t < T \\ {BACK} & \text{{otherwise}} \end{{cases}}",
    rf"\begin{{cases}} V^{{\top}} (p - e_k) & t = T \\ {BACK} & t > 1 \end{{cases}}",
    rf"\begin{{cases}} V^{{\top}} (p - e_k) & t \ge T - 1 \\ {BACK} & \text{{else}} \end{{cases}}",
]


@pytest.mark.parametrize("line", CASES)
def test_a_line_by_cases_is_the_first_row_whose_condition_holds(line, no_quick_look):
    ctx, claim = _claim(MANY_TO_ONE, f"dh_t = {line}")
    _verdicts_follow_the_truth(ctx, claim)
    _, read = parse_statement(f"dh_t = {line}", ctx)
    assert parse_statement(f"dh_t = {to_latex(read)}", ctx)[1] == read      # printed back as indicators


def test_the_rows_of_cases_are_read_in_order():
    # Two rows whose conditions overlap at t = T: the first one gives the value there.
    ctx, _ = _claim(MANY_TO_ONE, r"dh_t = dh_t")
    _, first = parse_statement(r"dh_t = \begin{cases} dh_t & t \ge T \\ 2 dh_t & t \ge 1 \end{cases}", ctx)
    for T in range(1, 5):
        for t in range(1, T + 1):
            factors = [[n for n in term.walk() if isinstance(n, ir.StepIf)] for term in first.terms]
            live = [all(c.holds({"t": t, "T": T}) for c in f) for f in factors]
            assert live == [t >= T, t < T]


STEPS = [ir.Time("t"), ir.Time("t", 1), ir.Time("t", -2), ir.Time("T"), ir.Time("T", -1), ir.Time(None, 1),
         ir.Time(None, 3)]
CONDITIONS = [ir.StepIf(a, r, b) for a in STEPS[:3] for b in STEPS[3:] for r in ir.STEP_RELATIONS]


@pytest.mark.parametrize("a", CONDITIONS[::5], ids=str)
def test_negation_and_implication_of_conditions_agree_with_every_step(a):
    grid = [{"t": t, "T": T} for T in range(1, 25) for t in range(1, T + 1)]
    assert all(ir.negated(a).holds(v) != a.holds(v) for v in grid)
    for b in CONDITIONS:
        assert ir.implies(a, b) == all(b.holds(v) for v in grid if a.holds(v)), (a, b)


MORE_CASES = [  # dh_t - (what h_{t+1} passes back) = ...
    r"\begin{cases} V^{\top} (p - e_k) & t = T \\ 0 & \text{otherwise} \end{cases}",
    r"\begin{cases} 0 & t > 1, t < T \\ V^{\top} (p - e_k) & t = T \\ 0 & \text{otherwise} \end{cases}",
    (r"\begin{cases} V^{\top} (p - e_k) & t > 1 \text{ and } t = T \\ V^{\top} (p - e_k) & t = 1, t = T \\ "
     r"0 & \text{otherwise} \end{cases}"),
    r"\begin{cases} V^{\top} (p - e_k) & t > 1, t \le T \\ 0 & \text{otherwise} \end{cases}",
    r"\mathbb{1}_{\{t = T\}} V^{\top} (p - e_k)",
]


@pytest.mark.parametrize("line", MORE_CASES)
def test_rows_of_zeros_and_of_several_conditions(line, no_quick_look):
    ctx, claim = _claim(MANY_TO_ONE, f"dh_t - {BACK} = {line}")
    _verdicts_follow_the_truth(ctx, claim)
    _, read = parse_statement(f"dh_t = {line}", ctx)
    assert parse_statement(f"dh_t = {to_latex(read)}", ctx)[1] == read


def test_a_condition_that_is_no_step_of_the_form_t_plus_k_is_an_error_not_a_subscript():
    with pytest.raises(DerivationErrors) as e:
        parse_derivation(MANY_TO_ONE + r"$$ dh_t = \mathbb{1}[T - t = 0] V^{\top} (p - e_k) $$" + "\n", "s.md")
    (err,) = e.value.errors
    assert "between two steps" in err.message and "subscript" not in err.message


def test_a_counterexample_at_the_first_step_does_not_call_a_declared_initial_states_gradient_outside():
    ctx, claim = _claim(MANY_TO_ONE, r"dh_{t-1} = W \left( (1 - h_t^2) \circ dh_t \right)")
    out = explicit.prove(ctx, claim)
    assert out.verdict == REFUTED
    assert "dh_0" not in out.reason          # h_0 is declared: dh_0 is its gradient, inside the steps


def test_a_condition_far_away_is_read_and_never_proved_beyond_the_cases():
    # (ir.implies checks conditions step by step: past a bound it keeps the negation instead of checking)
    ctx, claim = _claim(MANY_TO_ONE, r"dh_t = \begin{cases} V^{\top} (p - e_k) & t < T - 99999 \\ "
                                     r"0 & t \ge T - 99999 \\ 0 & \text{otherwise} \end{cases}")
    out = recurrence.prove(ctx, claim)
    assert out is None or out.verdict != PROVED


def test_a_derived_line_uses_the_files_name_for_a_backward_pass_expression():
    from pathlib import Path

    from derivations.running.runner import load_document
    doc = load_document(Path(__file__).parent / "derivations" / "last_step_condition.md")
    ctx, claim = doc.parsed["dh-no-condition"]
    derived = derived_rhs(ctx, claim)
    assert ir.Ref("da", ir.Time("t", 1)) in ir.refs(derived)           # da_{t+1}, as the file names it
    right = dataclasses.replace(claim, rhs=derived)
    assert fd.truth(ctx, right)[0] == "true"
    assert recurrence.prove(ctx, right).verdict == PROVED
