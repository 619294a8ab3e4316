"""Engine "unrolled graph": proves the corrected algorithm at long T, refutes false ones."""
import pytest

from derivations.concrete import ILL_TYPED, PROVED, REFUTED, explicit, is_exactly_zero, truth_of
from derivations.graph import check_algorithm, prove_by_graph
from derivations.note.bptt import algorithm_lines
from derivations.note.step_model import line as parsed_line
from derivations.registry import BPTT_SHAPES, Claim
from derivations.runner import load_claims
from derivations.statement import dims

CLAIMS = load_claims()


def lines(**replace):
    chosen = algorithm_lines("bptt-algorithm-corrected")       # the lines as parsed from note.md
    for name, build in replace.items():
        chosen[name] = Claim(id=f"false-{name}", label="", latex="", section="tests", build=build,
                             shapes=BPTT_SHAPES, lhs=name)
    return chosen


@pytest.mark.parametrize("shape", [{"H": 1, "E": 1, "V": 1, "T": 3}, {"H": 2, "E": 3, "V": 2, "T": 5},
                                   {"H": 3, "E": 2, "V": 3, "T": 8}])
def test_corrected_algorithm_is_proved(shape):
    assert check_algorithm(lines(), shape)[0] == PROVED


@pytest.mark.parametrize("name,build", [
    ("dh_prev", lambda s: s.W_hh * s.dh),                                                   # no sigma', no transpose
    ("dh", lambda s: s.W_hy.T * s.dS),                                                     # dropped future term
    ("dW_hy", lambda s: s.dW_hy_next - s.dS * s.h.T),                                      # wrong sign
    ("dW_xh", lambda s: s.dW_xh_next + s.dh * s.X.T),                                      # missing sigma'
])
def test_false_lines_are_refuted_with_a_counterexample(name, build):
    verdict, reason, cex = check_algorithm(lines(**{name: build}), {"H": 2, "E": 2, "V": 2, "T": 3})
    assert verdict == REFUTED, reason
    assert cex["values"] and cex["claimed"] != cex["truth"]


def test_ill_typed_line_is_reported():
    verdict, reason, _ = check_algorithm(lines(dW_hh=parsed_line("bptt-dW_hh").build), {"H": 2, "E": 2, "V": 2, "T": 2})
    assert verdict == ILL_TYPED and "does not compose" in reason


def test_engine_applies_only_to_the_whole_algorithm():
    assert prove_by_graph(CLAIMS["eq9"]) is None
    out = prove_by_graph(CLAIMS["bptt-algorithm"], shapes=({"H": 2, "E": 2, "V": 2, "T": 2},))
    assert out.verdict == ILL_TYPED


@pytest.fixture()
def note_with_a_wrong_corrected_line(tmp_path, monkeypatch):
    """note.md with the corrected dh_{t-1} line written as the note does (W_hh where W_hh^T belongs)."""
    from derivations.note import step_model
    text = step_model.NOTE.read_text(encoding="utf-8")
    right = r"= W_{hh}^{\mathsf T} \cdot (\sigma'"
    assert text.count(right) == 1
    edited = tmp_path / "note.md"
    edited.write_text(text.replace(right, r"= W_{hh} \cdot (\sigma'"), encoding="utf-8")
    monkeypatch.setattr(step_model, "NOTE", edited)
    step_model.note_derivation.cache_clear()
    yield
    step_model.note_derivation.cache_clear()


def test_the_whole_algorithm_runs_the_lines_as_parsed_from_the_latex(note_with_a_wrong_corrected_line, monkeypatch):
    """Every engine of the corrected algorithm (concrete, unrolled graph, induction) follows note.md,
    and so does the cache key of its proofs."""
    from derivations import cache, induction
    from derivations.note import step_model
    from derivations.note.bptt import algorithm_lines
    lines = algorithm_lines("bptt-algorithm-corrected")
    assert all(isinstance(x, step_model.Line) for x in lines.values())
    assert prove_by_graph(CLAIMS["bptt-algorithm-corrected"], shapes=({"H": 2, "E": 2, "V": 2, "T": 2},)).verdict \
        == REFUTED
    # The concrete engine's statements (the algorithm run on the unrolled RNN, T = 1): dh_0 is wrong.
    (st,) = [st for st in CLAIMS["bptt-algorithm-corrected"].build(dims(H=2, E=2, V=2, T=1)) if st.where == "dh_0"]
    assert not all(is_exactly_zero(x) for x in explicit(st.claimed) - truth_of(st.truth))
    assert induction.step_lemma()["verdict"] == REFUTED
    edited_key = cache.claim_key(CLAIMS["bptt-algorithm-corrected"])
    monkeypatch.undo()                                  # note.md as it is
    step_model.note_derivation.cache_clear()
    assert cache.claim_key(CLAIMS["bptt-algorithm-corrected"]) != edited_key
    assert prove_by_graph(CLAIMS["bptt-algorithm-corrected"], shapes=({"H": 2, "E": 2, "V": 2, "T": 2},)).verdict \
        == PROVED
