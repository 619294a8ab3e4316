"""Engines that disagree are an engine error, not a vote (issue 8).

A deliberately broken engine (monkeypatched to return a wrong verdict) must
make `verify` stop with exit status 2, name both engines and their evidence in
the terminal, and write nothing.
"""
import json

import pytest

from derivations.engines import allsizes, combine, explicit
from derivations.engines.verdicts import CHECKED, CONFLICT, ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED, VERDICTS, Outcome
from derivations.outputs import assembly
from derivations.outputs.cli import main
from derivations.running import runner
from derivations.running.runner import load_document

FAKE_CEX = {"values": {"W_hy[0,0]": "1"}, "entry": [0, 0], "claimed": "1.0", "truth": "2.0", "at": "H=1"}


def m(method, verdict, reason="", counterexample=None):
    return {"method": method, "verdict": verdict, "reason": reason or f"{method} says {verdict}",
            "counterexample": counterexample, "shapes": []}


@pytest.mark.parametrize("verdicts, expected", [
    ((PROVED, PROVED), PROVED),
    ((PROVED, INCONCLUSIVE), PROVED),              # one exact proof; the other engine decided nothing
    ((INCONCLUSIVE, INCONCLUSIVE), INCONCLUSIVE),
    ((REFUTED, ILL_TYPED), ILL_TYPED),
    ((REFUTED, INCONCLUSIVE), REFUTED),
    ((PROVED, REFUTED), CONFLICT),
    ((ILL_TYPED, PROVED), CONFLICT),
    ((PROVED, INCONCLUSIVE, REFUTED), CONFLICT),
    ((INCONCLUSIVE, PROVED), CHECKED),             # only the engine at explicit sizes finds them equal
    ((INCONCLUSIVE, PROVED, PROVED), CHECKED),
])
def test_combine(verdicts, expected):
    # The first engine proves for every size (engines.GENERAL); the others work at explicit sizes.
    names = ["all sizes", "concrete", "another explicit engine"]
    methods = [m(names[n], v) for n, v in enumerate(verdicts)]
    out = combine(methods)
    assert out["verdict"] == expected
    if expected == CONFLICT:
        named = {c["method"] for c in out["conflict"]}
        assert named == {x["method"] for x in methods if x["verdict"] in (PROVED, REFUTED, ILL_TYPED)}
        assert all(x["method"] in out["reason"] for x in methods if x["method"] in named)
    else:
        assert out["conflict"] is None


def test_conflict_is_a_verdict_the_report_knows():
    from reports.render import VERDICTS as RENDERED
    assert CONFLICT in VERDICTS and CONFLICT in RENDERED


def _broken_all_sizes(monkeypatch, target):
    """The real engines on the parsed claims, except that "all sizes" refutes `target` (which it proves)."""
    real = runner._parsed_engines()

    def broken(engine):
        def prove(ctx, claim):
            out = engine(ctx, claim)
            if claim.id == target and out is not None:
                return Outcome(REFUTED, allsizes.METHOD, out.shapes, "deliberately broken engine", dict(FAKE_CEX))
            return out
        return prove
    monkeypatch.setattr(runner, "_parsed_engines",
                        lambda: [(name, broken(e) if name == "all sizes" else e) for name, e in real])


def test_a_broken_engine_makes_verify_exit_2_and_says_why(monkeypatch, capsys):
    _broken_all_sizes(monkeypatch, "eq9")
    assert main(["--only", "eq9", "--jobs", "1", "--no-cache"]) == 2
    out, err = capsys.readouterr()
    assert "conflict" in out
    assert "engines disagree" in err and "eq9" in err and "nothing was written" in err
    assert "concrete: proved" in err and "all sizes: refuted -- deliberately broken engine" in err
    assert "W_hy[0,0]" in err                       # the broken engine's evidence


def test_the_report_names_both_engines_and_is_not_cached(monkeypatch, tmp_path):
    _broken_all_sizes(monkeypatch, "eq9")
    cache = runner.ProofCache(tmp_path / "cache")
    report = assembly.run(["eq9", "eq10"], jobs=1, cache=cache)
    assert report["conflicts"] == ["eq9"] and not report["ok"]
    assert report["summary"][CONFLICT] == 1
    entry = next(c for c in report["claims"] if c["id"] == "eq9")
    assert entry["verdict"] == CONFLICT
    assert [(c["method"], c["verdict"]) for c in entry["conflict"]] == [("concrete", PROVED), ("all sizes", REFUTED)]
    assert entry["counterexample"] == FAKE_CEX
    json.dumps(report)
    # Only eq10's result is kept: an engine error is never cached.
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1
    # The report still renders (HTML and TeX) with the new verdict.
    from reports.render import render_html, render_tex
    # One styling for the verdict: its colour and label in VERDICT_STYLE, its class "vconflict".
    html = render_html(report)
    assert '<span class="badge vconflict">conflict — engines disagree</span>' in html
    assert '<article class="claim vconflict-claim" id="claim-eq9">' in html
    assert r"\badge{vconflict}" in render_tex(report)


def _fast_engines(monkeypatch, refute):
    """Instant fake engines: every claim proved by one, `refute` refuted by the other."""
    def concrete(claim, budget=None):
        return Outcome(PROVED, "concrete", [{"n": 1}], "fake proof")

    def other(claim):
        if claim.id == refute:
            return Outcome(REFUTED, "all sizes", [{"n": "n"}], "deliberately broken engine", dict(FAKE_CEX))
        return Outcome(PROVED, "all sizes", [{"n": "n"}], "fake proof")
    monkeypatch.setattr(runner, "_parsed_engines", lambda: [("concrete", lambda ctx, c, budget=None: concrete(c)),
                                                            ("all sizes", lambda ctx, c: other(c))])
    monkeypatch.setattr(runner, "_algorithm_engines", lambda: [("concrete", lambda ctx, c, budget=None: concrete(c))])
    # The note-only induction job, while the runner still has it (raising=False: nothing to replace once it is gone).
    monkeypatch.setattr(runner, "_induction", lambda _=None: {
        "verdict": PROVED, "method": "induction", "seconds": 0.0, "sizes": {}, "lemmas": [], "combination": "fake"},
        raising=False)


def test_a_full_run_with_a_conflict_writes_nothing(monkeypatch, tmp_path, capsys):
    from derivations.outputs.numpy_module import NOTE_MODULE
    before = NOTE_MODULE.stat().st_mtime_ns if NOTE_MODULE.exists() else None
    _fast_engines(monkeypatch, refute="bptt-dW_hy")
    out = tmp_path / "out"
    assert main(["--out", str(out), "--jobs", "1", "--no-cache", "--quiet"]) == 2
    assert not out.exists()                                        # no report.json, html, tex, pdf, not even the directory
    after = NOTE_MODULE.stat().st_mtime_ns if NOTE_MODULE.exists() else None
    assert before == after                                         # numeric/rnn_core.py not regenerated
    err = capsys.readouterr().err
    assert "bptt-dW_hy" in err and "engine error" in err


def test_without_a_conflict_the_same_fake_run_writes_the_report(monkeypatch, tmp_path):
    _fast_engines(monkeypatch, refute=None)
    out = tmp_path / "out"
    assert main(["--out", str(out), "--jobs", "1", "--no-cache", "--quiet", "--no-codegen"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["conflicts"] == [] and len(report["claims"]) == len(load_document().ids)


def test_a_parsed_claims_refutation_is_replayed_from_the_free_inputs(monkeypatch, capsys):
    # The engine on parsed claims: a zero test that fails and a "counterexample" at a point where the
    # sides agree.  Replayed on a fresh model from the free inputs, it is an engine error, not a verdict.
    monkeypatch.setattr(explicit, "exactly_zero", lambda d: False)

    def fake(model, lhs, rhs, seed, **kw):
        return {"values": {str(s): "1/2" for s in model.inputs_of([*lhs, *rhs])}, "entry": [0, 0], "claimed": "1",
                "truth": "2", "relative_difference": 0.5, "clear_margin": True}
    monkeypatch.setattr(explicit, "numeric_difference", fake)
    assert main(["--only", "eq9", "--jobs", "1", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "engine error" in err and "both sides agree" in err and "nothing was written" in err
