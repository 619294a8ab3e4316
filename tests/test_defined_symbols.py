"""Issue 8: defined symbols stay defined, and a counterexample is re-checked on the model.

A BPTT line may write sigma'(a_t) as h_t∘(1 - h_t), h_t = sigma(a_t).  That is
true, and every engine must prove it: the step symbol h is h_t, never a free
vector.  A "counterexample" that gives h a value of its own (h = (-1/3, 2/3),
which no sigmoid takes) is a defect of the engine, and `recheck.confirm` says so.
"""
import pytest
import sympy as sp
from sympy.matrices.expressions.special import OneMatrix

from derivations.concrete import PROVED, REFUTED, explicit, statements_at
from derivations.concrete import prove as prove_concrete
from derivations.functions import hadamard, sigma
from derivations.generic import prove_all_sizes, step_statement
from derivations.graph import check_algorithm
from derivations.induction import output_lemma, step_lemma, weight_lemma
from derivations.note.bptt import algorithm_lines
from derivations.note.step_model import line as parsed_line
from derivations.note.step_model import step_claim
from derivations.recheck import EngineDefect, NoDifference, confirm
from derivations.registry import BPTT_SHAPES, Claim
from derivations.runner import load_claims
from derivations.statement import dims
from derivations.unrolled import step_definitions, step_symbols

CLAIMS = load_claims()


def one_minus(h):
    return OneMatrix(*h.shape) - h


def dh_prev_via_h(s):
    """The issue's line: dh_prev = W_hh^T (h ∘ (1 - h) ∘ dh)."""
    return s.W_hh.T * hadamard(s.h, one_minus(s.h), s.dh)


def dW_hh_via_h(s):
    """dW_hh = dW_hh_next + (h ∘ (1 - h) ∘ dh) h_prev^T."""
    return s.dW_hh_next + hadamard(s.h, one_minus(s.h), s.dh) * s.h_prev.T


ISSUE_LINES = {"dh_prev": dh_prev_via_h, "dW_hh": dW_hh_via_h}


def line(lhs, build):
    return Claim(id=f"issue8-{lhs}", label="", latex="", section="tests", build=build, shapes=BPTT_SHAPES, lhs=lhs)


@pytest.mark.parametrize("lhs", ISSUE_LINES)
def test_issue_line_is_proved_for_all_sizes(lhs):
    out = prove_all_sizes(line(lhs, ISSUE_LINES[lhs]))
    assert out.verdict == PROVED, (out.reason, out.counterexample)


@pytest.mark.parametrize("lhs", ISSUE_LINES)
def test_issue_line_is_proved_through_time(lhs):
    out = prove_concrete(line(lhs, ISSUE_LINES[lhs]))
    assert out.verdict == PROVED, out.reason


def test_issue_lines_are_proved_by_the_induction_lemmas():
    assert step_lemma(dh_prev_rule=dh_prev_via_h)["verdict"] == PROVED
    assert weight_lemma("dW_hh", rule=dW_hh_via_h)["verdict"] == PROVED


@pytest.mark.parametrize("replace", [{"dh_prev": dh_prev_via_h}, {"dW_hh": dW_hh_via_h}, ISSUE_LINES],
                         ids=["dh_prev", "dW_hh", "both"])
def test_issue_lines_are_proved_by_the_unrolled_graph(replace):
    lines = algorithm_lines("bptt-algorithm-corrected")
    lines.update({name: line(name, build) for name, build in replace.items()})
    verdict, reason, _ = check_algorithm(lines, {"H": 2, "E": 3, "V": 2, "T": 4})
    assert verdict == PROVED, reason


def test_the_unrolled_engine_binds_h_to_h_t():
    # A line that returns h itself is, at step t, sigma(W_xh X_t + W_hh eta): no free h left.
    claim = Claim(id="h", label="", latex="", section="tests", build=lambda s: s.h, shapes=BPTT_SHAPES, lhs="dh")
    for st in statements_at(claim, {"H": 2, "E": 2, "V": 2, "T": 2}):
        names = {str(x) for x in st.claimed.free_symbols}
        assert not any(n.startswith("h[") for n in names), names
        assert all(isinstance(e, sigma) for e in st.claimed)
        assert {"eta[0]", "eta[1]"} <= names


def test_the_one_step_model_defines_h():
    s = step_symbols(dims(H=2, E=2, V=2))
    st = step_statement("dh_prev", dh_prev_via_h(s), s)
    assert st.defined == step_definitions(s)
    assert set(st.defined) == {s.h}


# ------------------------------------------------------------------ re-checking counterexamples

def _issue_point():
    """The sides of the dh_prev line at H = 2 (h kept as a symbol), and the issue's 'counterexample'."""
    s = step_symbols(dims(H=2, E=2, V=2))
    st = step_statement("dh_prev", dh_prev_via_h(s), s)
    from derivations.concrete import entry_definitions, truth_of
    claimed, truth = explicit(st.claimed), truth_of(st.truth)
    definitions = entry_definitions(st.defined)
    free = sorted((claimed.free_symbols | truth.free_symbols | set().union(*(
        e.free_symbols for e in definitions.values()))) - set(definitions), key=str)
    values = {x: sp.Rational((-1) ** n * (n % 3 + 1), 2) for n, x in enumerate(free)}
    return claimed, truth, definitions, values


def test_a_point_that_sets_a_defined_quantity_is_an_engine_defect():
    claimed, truth, definitions, values = _issue_point()
    h0, h1 = sorted(definitions, key=str)
    with pytest.raises(EngineDefect, match="defined quantities"):
        confirm(claimed, truth, {**values, h0: sp.Rational(-1, 3), h1: sp.Rational(2, 3)}, definitions)


def test_a_true_line_has_no_counterexample_on_the_model():
    # With h recomputed from its definition the two sides agree: reporting a
    # refutation here would be an engine defect.
    claimed, truth, definitions, values = _issue_point()
    with pytest.raises(NoDifference):
        confirm(claimed, truth, values, definitions)


def test_a_point_must_give_every_free_input_a_value():
    claimed, truth, definitions, values = _issue_point()
    fewer = dict(list(values.items())[1:])
    with pytest.raises(EngineDefect, match="without a value|cannot be computed"):
        confirm(claimed, truth, fewer, definitions)


@pytest.mark.parametrize("claim_id", ["bptt-dh_prev"])
def test_reported_counterexamples_hold_free_inputs_only(claim_id):
    claim = CLAIMS[claim_id] if claim_id in CLAIMS else step_claim(claim_id)
    for out in (prove_concrete(claim), prove_all_sizes(claim)):
        assert out.verdict == REFUTED
        names = set(out.counterexample["values"])
        assert not any(n.startswith(("h[", "h_t")) for n in names), names


def test_false_line_reading_h_is_refuted_with_free_values_only():
    # dW_hy with h_{t-1} where h_t belongs, and dh with a stray h: refuted, and no value for h.
    false = {"dW_hy": lambda s: s.dW_hy_next + s.dS * s.h_prev.T, "dh": lambda s: s.dh_next + s.W_hy.T * s.dS + s.h}
    for lhs, build in false.items():
        for out in (prove_all_sizes(line(lhs, build)), prove_concrete(line(lhs, build))):
            assert out.verdict == REFUTED, out.reason
            assert not any(n.startswith("h[") for n in out.counterexample["values"])
    assert output_lemma(dh_rule=false["dh"])["verdict"] == REFUTED


def test_graph_counterexample_holds_inputs_only():
    lines = algorithm_lines("bptt-algorithm-corrected")
    lines["dh_prev"] = parsed_line("bptt-dh_prev")
    verdict, _, cex = check_algorithm(lines, {"H": 2, "E": 2, "V": 2, "T": 3})
    assert verdict == REFUTED
    assert all(n.startswith(("h_0[", "X_", "dS_", "W_")) for n in cex["values"]), cex["values"]
