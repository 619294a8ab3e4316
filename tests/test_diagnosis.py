"""The note's whole-algorithm diagnosis, by the same path as every file's (`program.diagnose`).

Which values the note's BPTT loop computes right or wrong, from which T, and which lines to blame: each
status is compared with the truth by finite differences of the forward pass (tests/fd.py, no line of the
note used for the truth, σ as 1/(1 + e^-x)).  The loop as written has a line that does not compose
(∂ℓ_t/∂W_hh, a missing transpose): its values are "not computed", and the truth of the others is taken on
the loop with that line replaced by its correction, which changes no other value.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import fd
import pytest

from derivations.engines import program
from derivations.form import algorithm
from derivations.latex.files import read_derivation
from reports import findings

NOTE = Path(__file__).resolve().parent.parent / "derivations" / "note" / "note.md"


@pytest.fixture(scope="module")
def note_loop():
    d = read_derivation(NOTE)
    (ctx, alg), = [(c, a) for c in d.contexts for a in c.algorithms.values() if a.id == "bptt-algorithm"]
    return ctx, alg


@pytest.fixture(scope="module")
def diag(note_loop):
    ctx, alg = note_loop
    return program.diagnose(ctx, alg, dict(alg.corrections))


def _output(d, claim_id):
    return next(o for o in d["outputs"].values() if o["line"] == claim_id)


def _statuses(ctx, alg, T) -> dict:
    """{claim id of a line: "right" | "wrong"} by finite differences, for the loop `alg` at length T."""
    statuses = fd.loop_statuses(ctx, alg, T)
    out = {}
    for u in alg.updates:
        mine = [s for key, s in statuses.items() if algorithm.offset(key, u.target) is not None
                or any(algorithm.absolute(u.target, {"t": t}) == key for t in range(1, T + 1))]
        out[u.claim] = "wrong" if "wrong" in mine else "right"
    return out


def test_the_ill_typed_line_is_found_and_its_values_are_not_computed(note_loop, diag):
    lines = {line["id"]: line for line in diag["lines"]}
    assert not lines["bptt-dW_hh"]["type_checks"] and "compose" in lines["bptt-dW_hh"]["problem"]
    assert all(line["type_checks"] for cid, line in lines.items() if cid != "bptt-dW_hh")
    assert _output(diag, "bptt-dW_hh")["as_written"] == program.NOT_COMPUTED
    with pytest.raises((fd.ShapeError, ValueError)):
        fd.loop_statuses(*note_loop, 2)          # the truth agrees: the loop as written does not run


def test_every_value_as_written_is_classified_as_finite_differences_say(note_loop, diag):
    ctx, alg = note_loop
    # Only the line that does not compose replaced (by the note's correction of it): the others as written.
    fixed = alg.corrections["bptt-dW_hh"]
    runnable = dataclasses.replace(alg, updates=tuple(fixed if u.claim == "bptt-dW_hh" else u for u in alg.updates))
    seen = set()
    for T in diag["lengths"]:
        truth = _statuses(ctx, runnable, T)
        for u in alg.updates:
            if u.claim == "bptt-dW_hh":
                continue
            got = _output(diag, u.claim)["by_T"][str(T)]
            assert got == truth[u.claim], (u.claim, T, got, truth[u.claim])
            seen.add(got)
    assert seen == {"right", "wrong"}            # the note's loop has both


def test_the_blamed_lines_corrected_make_every_value_right(note_loop, diag):
    ctx, alg = note_loop
    blamed = {b["line"] for o in diag["outputs"].values() for b in o["blame"]}
    assert blamed == {"bptt-dW_hh", "bptt-dh_prev"}
    corrected = dataclasses.replace(alg, updates=tuple(alg.corrections.get(u.claim, u) for u in alg.updates))
    for T in diag["lengths"]:
        assert set(_statuses(ctx, corrected, T).values()) == {"right"}
    assert diag["all_replaced_right"]


def test_a_correction_that_is_wrong_does_not_fix_the_loop(note_loop):
    ctx, alg = note_loop
    # "Correct" ∂ℓ_t/∂h_{t-1} by the line as written (no transpose): the values it feeds stay wrong.
    same = dict(alg.corrections)
    same["bptt-dh_prev"] = next(u for u in alg.updates if u.claim == "bptt-dh_prev")
    d = program.diagnose(ctx, alg, same)
    assert not d["all_replaced_right"]
    assert not _output(d, "bptt-dh_prev")["fixed"]


def test_the_change_a_reader_must_make_is_the_one_difference(diag):
    for r in diag["replacements"]:
        old, new = r["change"]["old_latex"], r["change"]["new_latex"]
        assert old and new and old != new
        assert new in r["latex"]
    assert "W_hh^T for W_hh" in diag["sentence"] and "h_{t-1}^T for h_{t-1}" in diag["sentence"]


def test_the_note_report_carries_the_diagnosis(note_report):
    d = note_report["algorithm_diagnosis"]
    by_id = {c["id"]: c for c in note_report["claims"]}
    for r in d["replacements"]:
        assert by_id[r["replacement"]]["verdict"] == "proved"
        assert by_id[r["replacement"]]["corrects"] == r["line"]
    assert d["sentence"] in findings.headline(note_report)
    rows = findings.diagnosis_rows(note_report)
    assert [r["as_written"] for r in rows] == [o["as_written"] for o in d["outputs"].values()]
    # ∂ℓ_t/∂X_t is wrong at every step but the last: the table says so.
    assert any(r["output"].endswith("(t < T)") for r in rows)


def test_the_report_shows_the_diagnosis_table_from_the_data():
    import sys
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest_report import sample_report

    from reports.render import render_html
    report = sample_report()
    d = report["algorithm_diagnosis"]
    html = render_html(report)
    part = html[html.index('<section id="algorithm">'):html.index("</section>", html.index('<section id="algorithm">'))]
    rows = part.split("<tbody>")[1].split("</tbody>")[0].split("<tr")[1:]
    assert len(rows) == len(d["outputs"])
    for row, entry in zip(rows, d["outputs"].values()):
        assert f"<td>{entry['as_written']}</td>" in row
        assert (f"T = {entry['wrong_from_T']}" in row) == (entry["wrong_from_T"] is not None)
