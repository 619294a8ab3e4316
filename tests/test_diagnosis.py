"""The whole-algorithm diagnosis (derivations.diagnosis): its classification of the note's outputs as right or
wrong, the lines it blames and the NumPy reading, each checked against computations of its own.

The oracle here is independent of the diagnosis's truth (dual numbers at 50 digits): central finite
differences of the unrolled loss in float64, written below from the forward pass alone, with a loose relative
tolerance.  No verdict or count is typed in: each test derives what it expects from these computations.
"""
from __future__ import annotations

import random

import mpmath
import numpy as np
import pytest
import sympy as sp

from derivations import diagnosis as D
from derivations import ir
from derivations.note import step_model
from derivations.runner import _diagnosis_of_proved
from derivations.unrolled import step_symbols
from reports import findings

RIGHT_TOL = 1e-5      # finite differences in float64: agreement to this relative difference counts as right
WRONG_TOL = 1e-2      # ... and a difference beyond this as wrong (nothing in between is accepted)


@pytest.fixture(scope="module")
def diag():
    return D.diagnose()


# --- an independent oracle: the loss in float64 and its finite-difference gradient -----------------------------

def _loss(p: dict, T: int) -> float:
    h, total = p["h_0"], 0.0
    for t in range(1, T + 1):
        h = 1.0 / (1.0 + np.exp(-(p["W_xh"] @ p[f"X_{t}"] + p["W_hh"] @ h)))
        S = p["W_hy"] @ h
        total -= S[p["y"][t - 1], 0] - np.log(np.sum(np.exp(S)))
    return total


def _finite_differences(p: dict, T: int, eps: float = 1e-6) -> dict:
    out = {}
    for name in ("W_xh", "W_hh", "W_hy", "h_0", *(f"X_{t}" for t in range(1, T + 1))):
        grad = np.zeros_like(p[name])
        for idx in np.ndindex(*p[name].shape):
            plus = {**p, name: p[name].copy()}
            minus = {**p, name: p[name].copy()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            grad[idx] = (_loss(plus, T) - _loss(minus, T)) / (2 * eps)
        out[name] = grad
    return out


def _float_point(seed: int, T: int) -> tuple[dict, dict]:
    """A random point as the diagnosis takes it (50-digit numbers) and the same point in float64."""
    with mpmath.workdps(D.DIGITS):
        point = D.random_point(random.Random(seed), T)
    as_float = {k: (v if k == "y" else np.vectorize(float)(v).astype(float)) for k, v in point.items()}
    return point, as_float


def _lines(replaced=()):
    base = {q: D.note_line(cid) for q, cid in D.LINES.items()}
    base["dS"] = D.note_line(D.DS_LINE)
    fixes = D.note_corrections()
    return {q: (D.note_line(fixes[line.id]) if line.id in replaced else line) for q, line in base.items()}


def _fd_status(outputs: dict, fd: dict, T: int) -> dict:
    """{output: right / wrong / not computed} against the finite differences; in between fails the test."""
    of = {"dW_xh": "W_xh", "dW_hh": "W_hh", "dW_hy": "W_hy", "dh_0": "h_0",
          **{f"dX_{t}": f"X_{t}" for t in range(1, T + 1)}}
    out = {}
    for name, src in of.items():
        if outputs[name] is None:
            out[name] = D.NOT_COMPUTED
            continue
        got = np.vectorize(float)(outputs[name]).astype(float)
        rel = np.max(np.abs(got - fd[src])) / max(np.max(np.abs(fd[src])), 1e-6)
        assert rel < RIGHT_TOL or rel > WRONG_TOL, f"{name}: relative difference {rel} is neither right nor wrong"
        out[name] = D.RIGHT if rel < RIGHT_TOL else D.WRONG
    return out


def _run(lines, point, T, numpy_reading=frozenset()):
    with mpmath.workdps(D.DIGITS):
        return D.run_algorithm(lines, point, T, numpy_reading)[0]


def _summary(statuses_by_T: dict, output: str) -> dict:
    """{T: status} of one output (dX_t: the worst over its steps), as the diagnosis summarises it."""
    out = {}
    for T, statuses in statuses_by_T.items():
        picked = [s for k, s in statuses.items() if (k.startswith("dX_") if output == "dX_t" else k == output)]
        out[T] = D._worst(picked)
    return out


FD_SEEDS = (11, 12)


@pytest.fixture(scope="module")
def fd_cases():
    cases = []
    for T in D.LENGTHS:
        for seed in FD_SEEDS:
            point, as_float = _float_point(seed * 10 + T, T)
            cases.append((T, point, as_float, _finite_differences(as_float, T)))
    return cases


def _statuses_under(lines, fd_cases, numpy_reading=frozenset()) -> dict:
    """{output: {T: status}} of the algorithm made of `lines`, judged by finite differences."""
    by_T: dict = {}
    for T, point, _, fd in fd_cases:
        statuses = _fd_status(_run(lines, point, T, numpy_reading), fd, T)
        merged = by_T.setdefault(T, {})
        for k, s in statuses.items():
            merged[k] = D._worst([merged.get(k, D.RIGHT), s])
    return {o: _summary(by_T, o) for o in D.OUTPUTS}


# --- the classification -----------------------------------------------------------------------------------------

def test_outputs_as_written_classified_as_finite_differences_say(diag, fd_cases):
    judged = _statuses_under(_lines(), fd_cases)
    for o in D.OUTPUTS:
        entry = diag["outputs"][o]
        assert entry["by_T"] == {str(T): s for T, s in judged[o].items()}, o
        first = min((T for T, s in judged[o].items() if s != D.RIGHT), default=None)
        assert entry["wrong_from_T"] == first, o
    # Something is right and something is wrong: a diagnosis that calls everything wrong (or right) fails here.
    kinds = {diag["outputs"][o]["as_written"] for o in D.OUTPUTS}
    assert D.RIGHT in kinds and (kinds - {D.RIGHT})


def test_the_true_gradient_agrees_with_finite_differences(fd_cases):
    for T, point, _, fd in fd_cases:
        with mpmath.workdps(D.DIGITS):
            truth = D.true_gradients(point, T)
        for name, grad in truth.items():
            got = np.vectorize(float)(grad).astype(float)
            assert np.max(np.abs(got - fd[name])) <= RIGHT_TOL * max(np.max(np.abs(fd[name])), 1e-6), name


def test_the_numeric_lines_agree_with_the_sympy_lowering():
    """Each line that type-checks, evaluated by the diagnosis, equals the same line lowered by step_model to
    SymPy matrix expressions and evaluated there: the two readings of the note's LaTeX agree."""
    sizes = D.SIZES
    s = step_symbols(type("d", (), {**sizes, "B": 1})())
    rng = np.random.default_rng(3)
    values = {name: rng.uniform(-1, 1, getattr(s, name).shape)
              for name in ("W_xh", "W_hh", "W_hy", "X", "h_prev", "dS", "dh", "dh_next",
                           "dW_xh_next", "dW_hh_next", "dW_hy_next")}
    values["h"] = 1 / (1 + np.exp(-(values["W_xh"] @ values["X"] + values["W_hh"] @ values["h_prev"])))
    checked = 0
    for cid in {*D.LINES.values(), *D.note_corrections().values()}:
        line = D.note_line(cid)
        try:
            expr = step_model.line(cid).build(s)
        except sp.ShapeError:
            with pytest.raises(D.IllTyped):
                line.evaluate({k: np.array(v, dtype=object) for k, v in values.items()})
            continue
        subs = {getattr(s, k): sp.Matrix(v) for k, v in values.items()}
        want = np.array(sp.Matrix(expr.subs(subs).doit()).evalf(30).tolist(), dtype=float)
        got, _ = line.evaluate({k: np.array([[mpmath.mpf(float(x)) for x in row] for row in v], dtype=object)
                                for k, v in values.items()})
        assert np.allclose(np.vectorize(float)(got).astype(float), want, rtol=1e-12, atol=1e-12), cid
        checked += 1
    assert checked >= len(D.LINES) - 1


# --- blame --------------------------------------------------------------------------------------------------------

def test_replacing_the_blamed_lines_fixes_the_output_and_other_lines_do_not(diag, fd_cases):
    candidates = [r["line"] for r in diag["replacements"]]
    blamed_somewhere = False
    for o in D.OUTPUTS:
        entry = diag["outputs"][o]
        if entry["as_written"] == D.RIGHT:
            assert not entry["blame"], o
            continue
        blamed = [b["line"] for b in entry["blame"]]
        blamed_somewhere = blamed_somewhere or bool(blamed)
        # Replacing the blamed lines makes the output right (judged by finite differences) ...
        fixed = _statuses_under(_lines(blamed), fd_cases)[o]
        assert all(s == D.RIGHT for s in fixed.values()), (o, blamed, fixed)
        # ... and leaving out any one of them does not, nor does replacing only lines not blamed.
        for line in blamed:
            without = _statuses_under(_lines([b for b in blamed if b != line]), fd_cases)[o]
            assert any(s != D.RIGHT for s in without.values()), (o, line)
            first = min(T for T, s in without.items() if s != D.RIGHT)
            assert first == next(b["from_T"] for b in entry["blame"] if b["line"] == line), (o, line)
        others = [c for c in candidates if c not in blamed]
        if others:
            still = _statuses_under(_lines(others), fd_cases)[o]
            assert any(s != D.RIGHT for s in still.values()), (o, others)
    assert blamed_somewhere


def test_with_every_replacement_every_output_is_right(diag, fd_cases):
    judged = _statuses_under(_lines([r["line"] for r in diag["replacements"]]), fd_cases)
    assert diag["all_replaced_right"] == all(s == D.RIGHT for by_T in judged.values() for s in by_T.values())


def test_a_broken_replacement_leaves_the_outputs_wrong():
    """The correction of the dh_{t-1} line replaced by the as-written line itself: nothing it was blamed
    for gets fixed, and the diagnosis says so."""
    good = D.diagnose()
    broken = D.diagnose({**D.note_corrections(), "bptt-dh_prev": "bptt-dh_prev"})
    blamed = [o for o in D.OUTPUTS if any(b["line"] == "bptt-dh_prev" for b in good["outputs"][o]["blame"])]
    assert blamed
    for o in blamed:
        assert not broken["outputs"][o]["fixed"], o
        assert all(b["line"] != "bptt-dh_prev" for b in broken["outputs"][o]["blame"]), o
    assert not broken["all_replaced_right"]
    assert "no replacement makes it right" in broken["sentence"]
    assert "every output is right" not in broken["sentence"]


def test_a_replacement_may_be_a_parsed_statement():
    """The repair search's statements come as ir.Claims in the line's context: the same correction, parsed from
    its LaTeX, gives the same diagnosis as the note's claim id."""
    from derivations.latex.reader import parse_statement
    ctx, fix = step_model._parsed("bptt-dh_prev-corrected")
    lhs, rhs = parse_statement(fix.source.latex, ctx)
    claim = ir.Claim(id="repair-of-dh_prev", label="a repair", lhs=lhs, rhs=rhs)
    by_id = D.diagnose()
    by_claim = D.diagnose({**D.note_corrections(), "bptt-dh_prev": claim})
    assert by_claim["outputs"] == by_id["outputs"]
    assert "repair-of-dh_prev" in [r["replacement"] for r in by_claim["replacements"]]


def test_only_proved_replacements_are_used():
    replacements = D.note_corrections()
    first = next(iter(replacements.values()))
    results = {fix: {"verdict": "proved"} for fix in replacements.values()}
    results[first] = {"verdict": "refuted"}
    from derivations.cache import ProofCache
    d = _diagnosis_of_proved(D.diagnose(replacements), replacements, results, ProofCache(enabled=False))
    assert first not in [r["replacement"] for r in d["replacements"]]
    assert d["replacements_not_used"] == [{"replacement": first, "verdict": "refuted"}]


# --- the NumPy reading ----------------------------------------------------------------------------------------------

def _numpy_as_written(p: dict, T: int, fixed_dh_prev: bool) -> np.ndarray:
    """The note's algorithm written as NumPy code with 1-D vectors, line by line as the note writes it (its
    ∂ℓ_t/∂W_hh line as written: np.dot of two 1-D arrays); returns dW_hh."""
    sig = lambda x: 1 / (1 + np.exp(-x))
    W_xh, W_hh, W_hy = p["W_xh"], p["W_hh"], p["W_hy"]
    hs = [p["h_0"].ravel()]
    for t in range(1, T + 1):
        hs.append(sig(W_xh @ p[f"X_{t}"].ravel() + W_hh @ hs[-1]))
    dW_hh, dh_next = np.zeros_like(W_hh), np.zeros(W_hh.shape[0])
    for t in range(T, 0, -1):
        S = W_hy @ hs[t]
        P = np.exp(S) / np.sum(np.exp(S))
        dS = P - np.eye(len(P))[p["y"][t - 1]]
        dh = dh_next + np.dot(W_hy.T, dS)
        a = W_xh @ p[f"X_{t}"].ravel() + W_hh @ hs[t - 1]
        g = sig(a) * (1 - sig(a)) * dh
        dW_hh = dW_hh + np.dot(g, hs[t - 1].T)             # the line as written, as NumPy runs it
        dh_next = np.dot(W_hh.T if fixed_dh_prev else W_hh, g)
    return dW_hh


def test_numpy_reading_is_what_numpy_code_computes_and_is_judged_right(diag, fd_cases):
    readings = {r["line"]: r for r in diag["numpy_readings"]}
    ill_typed = [line["id"] for line in diag["lines"] if not line["type_checks"]]
    assert sorted(readings) == sorted(ill_typed) and ill_typed
    reading = readings["bptt-dW_hh"]
    for run in reading["runs"]:
        fixed = "bptt-dh_prev" in run["replaced"]
        lines = _lines(run["replaced"])
        statuses = {}
        for T, point, as_float, fd in fd_cases:
            got = _run(lines, point, T, numpy_reading=frozenset({"dW_hh"}))["dW_hh"]
            numpy_code = _numpy_as_written(as_float, T, fixed)
            assert np.allclose(np.vectorize(float)(got).astype(float), numpy_code, rtol=1e-10, atol=1e-12)
            rel = np.max(np.abs(numpy_code - fd["W_hh"])) / max(np.max(np.abs(fd["W_hh"])), 1e-6)
            assert rel < RIGHT_TOL or rel > WRONG_TOL
            statuses[T] = D._worst([statuses.get(T, D.RIGHT), D.RIGHT if rel < RIGHT_TOL else D.WRONG])
        want_first = min((T for T, s in statuses.items() if s != D.RIGHT), default=None)
        assert run["outputs"]["dW_hh"]["wrong_from_T"] == want_first
        assert any("np.dot" in text for text in run["what_numpy_does"])


# --- words and the report -------------------------------------------------------------------------------------------

def test_the_sentence_follows_the_data(diag):
    text = diag["sentence"]
    for o in D.OUTPUTS:
        assert D._output_text(diag["outputs"][o]) in text
    changed = {**diag, "outputs": {**diag["outputs"], "dW_hy": {**diag["outputs"]["dW_hy"], "as_written": D.WRONG,
                                                                    "wrong_from_T": 3, "blame": []}}}
    other = D.sentence(changed)
    assert other != text and "dW_hy is wrong for T ≥ 3" in other
    for r in diag["replacements"]:
        assert r["change"]["text"].removeprefix("write ") in text


def test_the_change_a_reader_must_make_is_the_one_difference(diag):
    for r in diag["replacements"]:
        old, new = r["change"]["old_latex"], r["change"]["new_latex"]
        written = step_model._parsed(r["line"])[1].source.latex
        # The one place where the right-hand sides differ, put into the line as written, gives the replacement.
        places = [i for i in range(len(written)) if written.startswith(old, i)]
        assert any(written[:i] + new + written[i + len(old):] == r["latex"] for i in places), (written, old, new)


def test_the_note_report_carries_the_diagnosis(note_report):
    d = note_report["algorithm_diagnosis"]
    by_id = {c["id"]: c for c in note_report["claims"]}
    for r in d["replacements"]:
        assert by_id[r["replacement"]]["verdict"] == "proved"
        assert by_id[r["replacement"]]["corrects"] == r["line"]
    assert d["sentence"] in findings.headline(note_report)
    rows = findings.diagnosis_rows(note_report)
    assert [r["output"].split(" ")[0] for r in rows] == list(D.OUTPUTS)


def test_the_report_shows_the_diagnosis_table_from_the_data():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest_report import sample_report

    from reports.render import render_html, render_tex
    report = sample_report()
    d = report["algorithm_diagnosis"]
    html = render_html(report)
    part = html[html.index('<section id="algorithm">'):html.index("</section>", html.index('<section id="algorithm">'))]
    rows = part.split("<tbody>")[1].split("</tbody>")[0].split("<tr")[1:]
    assert len(rows) == len(D.OUTPUTS)
    for row, o in zip(rows, D.OUTPUTS):
        entry = d["outputs"][o]
        assert f"<td>{entry['as_written']}</td>" in row
        assert (f"T = {entry['wrong_from_T']}" in row) == (entry["wrong_from_T"] is not None)
        for b in entry["blame"]:
            assert f'href="#claim-{b["line"]}"' in row
    header = html[html.index("<header"):html.index("</header>")]
    assert 'class="algorithm-sentence"' in header
    # The erratum of the claim the diagnosis belongs to links to it (here moved onto an erratum of the sample).
    assert 'class="algorithm-link"' not in html
    report["algorithm_diagnosis"]["claim"] = "bptt-dW_hh"
    html = render_html(report)
    erratum = html[html.index('id="erratum-bptt-dW_hh"'):]
    assert 'class="algorithm-link"' in erratum[:erratum.index("</li>")]
    tex = render_tex(report)
    assert r"\section{The algorithm as a whole}" in tex and r"\ref{sec:algorithm}" in tex
    # Without a diagnosis (a user's file) there is no section.
    del report["algorithm_diagnosis"]
    assert 'id="algorithm"' not in render_html(report) and "The algorithm as a whole" not in render_tex(report)

