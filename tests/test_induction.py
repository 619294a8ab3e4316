"""The BPTT algorithm for every sequence length: the induction and its lemmas.

The lemmas are run on the algorithm's corrected lines, as parsed from note.md
(proved), on its lines as written, and on false variants of them (refuted by the same code), so the proof method is itself
tested.  The direct check on unrolled RNNs (derivations/unrolled.py) stays the
independent one.
"""
import json
import pickle

import pytest
import sympy as sp

from derivations.concrete import PROVED, REFUTED
from derivations.functions import elementwise, hadamard, sigma, sigma_prime
from derivations.induction import (
    input_lemma,
    output_lemma,
    prove_all_T,
    sharing_generic,
    sharing_lemma,
    sharing_unrolled,
    step_lemma,
    weight_lemma,
)
from derivations.note.step_model import line as parsed_line


@pytest.fixture(scope="module")
def result():
    return prove_all_T()


def test_every_T_is_proved(result):
    assert result["verdict"] == PROVED
    assert result["method"] == "induction"
    names = [lem["name"] for lem in result["lemmas"]]
    for part in ("base case", "step lemma", "parameter-sharing", "dW_xh", "dW_hh", "dW_hy", "dX", "dh_t"):
        assert any(part in n for n in names), part
    assert all(lem["verdict"] == PROVED for lem in result["lemmas"])
    assert "every T" in result["combination"] and "Base case" in result["combination"]


def test_result_is_plain_data(result):
    assert json.loads(json.dumps(result)) == result
    pickle.dumps(result)


def test_fast(result):
    assert result["seconds"] < 30


# ------------------------------------------------------------------ false variants

def dZ(s):
    return hadamard(elementwise(sigma_prime, s.W_xh * s.X + s.W_hh * s.h_prev), s.dh)


def test_step_lemma_refutes_the_note_as_written():
    # The note's line: W_hh where W_hh^T belongs.
    lem = step_lemma(dh_prev_rule=parsed_line("bptt-dh_prev").build)
    assert lem["verdict"] == REFUTED
    assert lem["counterexample"]["claimed"] != lem["counterexample"]["truth"]


@pytest.mark.parametrize("dh_prev_rule, dh_rule", [
    (None, lambda s: s.W_hy.T * s.dS),                                  # dh_next dropped from dh
    (None, lambda s: s.dh_next),                                        # the output term dropped
    (lambda s: s.W_hh.T * s.dh, None),                                  # sigma' dropped
    (lambda s: s.W_hh.T * hadamard(elementwise(sigma, s.W_xh * s.X + s.W_hh * s.h_prev), s.dh), None),
    (lambda s: -s.W_hh.T * dZ(s), None),                                # wrong sign
], ids=["no-dh_next", "no-output-term", "no-sigma-prime", "sigma-for-sigma-prime", "wrong-sign"])
def test_step_lemma_refutes_false_variants(dh_prev_rule, dh_rule):
    assert step_lemma(dh_prev_rule=dh_prev_rule, dh_rule=dh_rule)["verdict"] == REFUTED


def test_step_lemma_proves_an_equivalent_writing():
    # sigma' written as sigma (1 - sigma), Hadamard factors swapped: still the gradient.
    def rule(s):
        a = s.W_xh * s.X + s.W_hh * s.h_prev
        return s.W_hh.T * hadamard(s.dh, elementwise(lambda x: sigma(x) * (1 - sigma(x)), a))
    assert step_lemma(dh_prev_rule=rule)["verdict"] == PROVED


def test_output_and_input_lemmas_refute_false_variants():
    assert output_lemma()["verdict"] == PROVED
    assert output_lemma(dh_rule=lambda s: s.dh_next + s.W_hy.T * s.dS * 2)["verdict"] == REFUTED
    assert input_lemma()["verdict"] == PROVED
    assert input_lemma(dX_rule=lambda s: s.W_xh.T * s.dh)["verdict"] == REFUTED


@pytest.mark.parametrize("name, rule", [
    ("dW_xh", lambda s: dZ(s) * s.X.T),                                 # dW_xh_next dropped
    ("dW_hh", lambda s: s.dW_hh_next + dZ(s) * s.h.T),                  # h_t where h_{t-1} belongs
    ("dW_hy", lambda s: s.dW_hy_next + s.dS * s.h_prev.T),              # h_{t-1} where h_t belongs
], ids=["dW_xh-no-next", "dW_hh-h_t", "dW_hy-h_prev"])
def test_weight_lemmas(name, rule):
    assert weight_lemma(name)["verdict"] == PROVED
    assert weight_lemma(name, rule=rule)["verdict"] == REFUTED


def test_weight_lemma_catches_a_missing_transpose():
    # The note's (16) in the algorithm: h_{t-1} without the transpose does not compose.
    lem = weight_lemma("dW_hh", rule=parsed_line("bptt-dW_hh").build)
    assert lem["verdict"] == "ill-typed"


def test_parameter_sharing():
    assert all(sharing_generic(T) for T in (1, 2, 3))
    # Only the last copy's gradient is not the shared gradient.
    assert not sharing_generic(3, lambda F, copies: sp.diff(F(*copies), copies[-1]))
    assert not sharing_unrolled(2, only_last=True)
    assert sharing_lemma(only_last=True)["verdict"] != PROVED
