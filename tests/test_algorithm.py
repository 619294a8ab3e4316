"""Algorithms (issue 15, item 4): a loop t = T, ..., 1 of ordered updates, checked for every T.

Every verdict here is compared with the truth decided by numbers, independently of the engines:
tests/fd.py runs each loop in NumPy as a reader would (reads of the loop's values from what it
computed, zero where it has computed nothing yet) and compares every value with what it stands for
by finite differences of the forward pass (`fd.algorithm_truth`, `fd.loop_statuses`); each line
claim with `fd.truth`.
"""
from functools import cache
from pathlib import Path

import fd
import pytest

from derivations.engines import program
from derivations.engines.verdicts import ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED
from derivations.form import algorithm
from derivations.latex.errors import DerivationErrors
from derivations.latex.files import read_derivation
from derivations.latex.reader import parse_derivation
from derivations.outputs.assembly import run
from derivations.running.runner import load_document

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "tests" / "derivations" / "algorithms").glob("*.md"))


@cache
def _report(path: Path):
    return run(document=load_document(path), jobs=1, repairs=False)


def _algorithms(path):
    d = read_derivation(path)
    return [(ctx, alg) for ctx in d.contexts for alg in ctx.algorithms.values()]


def _whole(path):
    return [pytest.param(path, alg.id, id=f"{path.stem}:{alg.id}") for _, alg in _algorithms(path)]


@pytest.mark.parametrize("path, alg_id", [p for path in FILES for p in _whole(path)])
def test_a_whole_algorithms_verdict_agrees_with_running_it_in_numpy(path, alg_id):
    (ctx, alg), = [(c, a) for c, a in _algorithms(path) if a.id == alg_id]
    truth = fd.algorithm_truth(ctx, alg)
    (c,) = [c for c in _report(path)["claims"] if c["id"] == alg_id]
    methods = {m["method"]: m["verdict"] for m in c["methods"]}
    if truth == "true":
        assert c["verdict"] == PROVED, c["reason"]
        assert c["scope"] == "for every size and every T"
        assert methods[program.ALL_T] == PROVED                 # the proof for every T is the induction's
    elif truth == "false":
        assert c["verdict"] == REFUTED, c["reason"]
        assert methods[program.ALL_T] != PROVED                 # the induction never proves a wrong loop
        cex = c["counterexample"]
        statuses = fd.loop_statuses(ctx, alg, cex["shape"]["T"])
        assert "wrong" in statuses.values()
    else:
        assert c["verdict"] == ILL_TYPED, c["reason"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_line_of_a_loop_agrees_with_finite_differences(path):
    report = _report(path)
    by_id = {c["id"]: c for c in report["claims"]}
    for ctx, alg in _algorithms(path):
        for u in alg.updates:
            claim = next(c for c in ctx.claims if c.id == u.claim)
            truth, where = fd.truth(ctx, claim)
            got = by_id[u.claim]
            if truth == "true":
                assert got["verdict"] == PROVED and got["scope"] == "for every size and every T", (u.claim, got)
            else:
                assert got["verdict"] in (REFUTED, ILL_TYPED), (u.claim, where, got["verdict"])


def test_the_files_hold_right_wrong_and_ill_typed_loops():
    kinds = {fd.algorithm_truth(ctx, alg) for path in FILES for ctx, alg in _algorithms(path)}
    assert kinds == {"true", "false", "ill-typed"}


def test_the_diagnosis_of_a_wrong_loop_agrees_with_numpy_value_by_value():
    path = ROOT / "tests" / "derivations" / "algorithms" / "rnn_wrong.md"
    report = _report(path)
    d = report["algorithm_diagnosis"]
    (ctx, alg), = [(c, a) for c, a in _algorithms(path) if not a.id.endswith("-corrected")]
    assert d["claim"] == alg.id
    for T in d["lengths"]:
        statuses = fd.loop_statuses(ctx, alg, T)
        for k, u in enumerate(alg.updates):
            mine = [s for key, s in statuses.items() if algorithm.offset(key, u.target) is not None
                    or any(algorithm.absolute(u.target, {"t": t}) == key for t in range(1, T + 1))]
            expected = "wrong" if "wrong" in mine else "right"
            out = d["outputs"][next(n for n, o in d["outputs"].items() if o["line"] == u.claim)]
            assert out["by_T"][str(T)] == expected, (u.claim, T, out)
    # Every wrong value is blamed on the wrong line, and its correction makes every value right.
    wrong = [o for o in d["outputs"].values() if o["as_written"] != "right"]
    assert wrong and all([b["line"] for b in o["blame"]] == ["dh"] for o in wrong)
    assert d["all_replaced_right"]
    assert "dh_t line" in d["sentence"] and "W_hh^T for W_hh" in d["sentence"]


def test_the_induction_needs_every_line_proved():
    (_, alg), = _algorithms(FILES[0])[:1]
    proved = {u.claim: {"verdict": PROVED} for u in alg.updates}
    assert program.for_every_T(alg, proved)["verdict"] == PROVED
    for u in alg.updates:
        for other in (REFUTED, ILL_TYPED, "checked", INCONCLUSIVE):
            entry = program.for_every_T(alg, {**proved, u.claim: {"verdict": other}})
            assert entry["verdict"] == INCONCLUSIVE and u.claim in entry["reason"]
    missing = {k: v for k, v in proved.items() if k != alg.updates[0].claim}
    assert program.for_every_T(alg, missing)["verdict"] == INCONCLUSIVE


HEAD = r"""# RNN
$$ W \in \mathbb{R}^{H \times H}, \quad U \in \mathbb{R}^{H \times D}, \quad V \in \mathbb{R}^{K \times H} $$
$$ x_t \in \mathbb{R}^{D}, \quad h_0 \in \mathbb{R}^{H}, \quad k_t \in \{1, \dots, K\} $$
$$ h_t := \tanh(W h_{t-1} + U x_t), \quad p_t := \operatorname{softmax}(V h_t) $$
$$ L := -\sum_{t=1}^{T} \log (p_t)_{k_t} $$
$$ dh_t := \frac{\partial L}{\partial h_t}, \quad dW := \frac{\partial L}{\partial W}, \quad dV := \frac{\partial L}{\partial V} $$
"""
LOOP = "$$ \\textbf{{for }} t = T, \\dots, 1 $$\n\n{}\n$$ \\textbf{{end for}} $$\n"
DH = r"$$ dh_t = V^{\top} (p_t - e_{k_t}) + W^{\top} ((1 - h_{t+1}^2) \circ dh_{t+1}) $$" + "\n"
DW = r"$$ dW \mathrel{+}= ((1 - h_t^2) \circ dh_t) h_{t-1}^{\top} $$" + "\n"


def _errors(text):
    with pytest.raises(DerivationErrors) as e:
        parse_derivation(text, "a.md")
    return [(x.location.line if x.location else None, x.message) for x in e.value.errors]


def test_a_loop_reads_nothing_before_it_is_computed():
    assert parse_derivation(HEAD + LOOP.format(DH + DW), "a.md").claims[-1].algorithm
    line = HEAD.count("\n") + 3
    ((at, message),) = _errors(HEAD + LOOP.format(DW + DH))
    assert at == line and "before the loop computes it" in message
    # dh_{t-1} is computed at the next step the loop runs, after this one
    ((at, message),) = _errors(HEAD + LOOP.format(DH.replace("dh_{t+1}", "dh_{t-1}") + DW))
    assert "before the loop computes it" in message


def test_a_loop_starts_at_zero_only_what_is_zero_there():
    # dh_{t+1} read where dh is computed two steps earlier (as dh_{t-1} ... shifted): at t = T - 1, dh_T
    # would be read before any step computed it, and ∂L/∂h_T is not zero.
    two_back = DH.replace("dh_t =", "dh_{t-1} =").replace("h_{t+1}", "h_{t}").replace("dh_{t}", "dh_{t+1}")
    errors = _errors(HEAD + LOOP.format(two_back.replace("e_{k_t}", "e_{k_{t-1}}")))
    assert any("not zero there" in m or "before the loop computes it" in m for _, m in errors), errors


def test_a_loop_reads_only_gradients_it_computes():
    ((_, message),) = _errors(HEAD + LOOP.format(DW))
    assert "no line of the loop computes" in message


@pytest.mark.parametrize("text, message", [
    (HEAD + "$$ \\textbf{for } t = T, \\dots, 1 $$\n\n" + DH, "never closed"),
    (HEAD + DH + "\n$$ \\textbf{end for} $$\n", "closes no loop"),
    (HEAD + DW.replace("$$ dW", "$$ dW"), "outside a loop"),
    (HEAD + LOOP.format(DH + DW + DW), "added to twice"),
    (HEAD + LOOP.format(DH + DW + r"$$ dV \mathrel{+}= dW \, h_t $$" + "\n"), "reads a total"),
    (HEAD + "$$ \\textbf{for } t = 1, \\dots, T $$\n\n" + DH + "\n$$ \\textbf{end for} $$\n", "forward in time"),
    (HEAD + LOOP.format(DH + r"$$ h_t \mathrel{+}= dh_t $$" + "\n"), "is not defined as one"),
])
def test_a_loop_that_does_not_run_as_written_is_a_located_error(text, message):
    errors = _errors(text)
    assert any(message in m for _, m in errors), errors
    assert all(at is not None for at, _ in errors)


def test_a_total_is_read_as_the_sum_over_every_step():
    ctx = parse_derivation(HEAD + LOOP.format(DH + DW), "a.md").contexts[0]
    (total,) = [c for c in ctx.claims if c.lhs is not None and c.lhs == algorithm.ir.Ref("dW")]
    assert isinstance(total.rhs, algorithm.ir.Sum) and total.rhs.lo == algorithm.ir.Time(None, 1)
    assert "\\mathrel{+}=" in total.source.latex                    # shown as written
    assert fd.truth(ctx, total)[0] == "true"


def test_without_a_correction_in_the_file_a_line_is_blamed_through_its_proved_repair(tmp_path):
    text = (ROOT / "tests" / "derivations" / "algorithms" / "rnn.md").read_text()
    wrong = text.replace(r"+ W_{hh}^{\top} \left( (1 - h_{t+1}^2)", r"+ W_{hh} \left( (1 - h_{t+1}^2)")
    assert wrong != text
    path = tmp_path / "rnn_no_correction.md"
    path.write_text(wrong)
    (ctx, alg), = _algorithms(path)
    assert not alg.corrections and fd.algorithm_truth(ctx, alg) == "false"
    report = run(document=load_document(path), jobs=1, repairs=True)
    d = report["algorithm_diagnosis"]
    (dh,) = [u.claim for u in alg.updates if u.target == algorithm.ir.Ref("dh", algorithm.ir.Time("t"))]
    statuses = {T: fd.loop_statuses(ctx, alg, T) for T in d["lengths"]}
    for o in d["outputs"].values():
        if o["as_written"] == "wrong":
            assert [b["line"] for b in o["blame"]] == [dh], o
    wrong_T = {T for T, s in statuses.items() if "wrong" in s.values()}
    assert min(wrong_T) == min(o["wrong_from_T"] for o in d["outputs"].values() if o["wrong_from_T"])
    assert d["all_replaced_right"] and "repair" in d["replacement_source"]


# A fresh-eyes trial's loops (each once made the verifier say something false or miss a problem).
DELTA = r"$$ \delta_t := (1 - h_t \circ h_t) \circ dh_t, \quad G_t := \delta_t \, h_{t-1}^{\top} $$" + "\n"


@pytest.mark.parametrize("text, message", [
    # dh_t read through two names before its line has run: a reader adds zero at every step.
    (HEAD + DELTA + LOOP.format(r"$$ dW \mathrel{+}= G_t $$" + "\n" + DH), "before the loop computes it"),
    (HEAD + LOOP.format(DH + r"$$ dW = \sum_{t=1}^{T} ((1 - h_t^2) \circ dh_t) h_{t-1}^{\top} $$" + "\n"),
     "sums over the steps"),
    (HEAD + LOOP.format(DH + DW + r"$$ dW = ((1 - h_t^2) \circ dh_t) h_{t-1}^{\top} $$" + "\n"),
     "set with = and added to"),
    (HEAD + LOOP.format(""), "no line"),
    (HEAD + LOOP.format(DH + "\n> Id: dh\n\n" + DH + "\n> Corrects: dh\n\n" + DH + "\n> Corrects: dh\n"),
     "corrected twice"),
    (HEAD + LOOP.format(DH).replace("for }} t", "for } s").replace("for } t", "for } s"), "step is t"),
])
def test_a_loop_a_reader_cannot_run_as_written_is_an_error(text, message):
    errors = _errors(text)
    assert any(message in m for _, m in errors), errors


def test_a_loop_reads_a_given_gradient_as_an_input():
    text = r"""# Given
$$ W \in \mathbb{R}^{H \times H}, \quad x_t \in \mathbb{R}^{H}, \quad h_0 \in \mathbb{R}^{H}, \quad \ell \in \mathbb{R} $$
$$ h_t := \tanh(W h_{t-1} + x_t) $$
$$ g_t \in \mathbb{R}^{H}, \quad g_t := \frac{\partial \ell}{\partial h_t} $$
$$ dh_t := \frac{\partial \ell}{\partial h_t}, \quad dW := \frac{\partial \ell}{\partial W} $$
$$ \textbf{for } t = T, \dots, 1 $$
$$ dh_t = g_t + W^{\top} ((1 - h_{t+1}^2) \circ dh_{t+1}) $$
$$ dW \mathrel{+}= ((1 - h_t^2) \circ dh_t) h_{t-1}^{\top} $$
$$ \textbf{end for} $$
"""
    ctx = parse_derivation(text, "given.md").contexts[0]
    (alg,) = ctx.algorithms.values()
    assert fd.algorithm_truth(ctx, alg) == "true"
    c = next(c for c in ctx.claims if c.algorithm)
    assert program.prove(ctx, c).verdict == PROVED


def test_a_missing_term_is_said_as_the_term_to_add(tmp_path):
    text = (ROOT / "tests" / "derivations" / "algorithms" / "rnn.md").read_text()
    term = r" + W_{hh}^{\top} \left( (1 - h_{t+1}^2) \circ dh_{t+1} \right)"
    assert term in text
    path = tmp_path / "rnn_missing_term.md"
    path.write_text(text.replace(term, ""))
    (ctx, alg), = _algorithms(path)
    assert fd.algorithm_truth(ctx, alg) == "false"
    d = run(document=load_document(path), jobs=1, repairs=True)["algorithm_diagnosis"]
    (change,) = [c["change"]["text"] for c in d["replacements"]]
    assert change.startswith("write + ") and change.endswith("after the last term") and "W_hh^T" in change
    assert d["all_replaced_right"]
