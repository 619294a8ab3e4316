"""Issue 19's done-when: every wrong line of examples/, of the test derivations and of the corpus is answered.

A line is wrong when the verifier refutes it (a counterexample) or finds it ill-typed; it is answered when
the report shows a proved repair that keeps its left-hand side's subject, or the right-hand side derived from
the file's definitions, proved.  Each shown statement is parsed back from its printing and proved again
here, so a report field alone never passes the test.

A whole algorithm (a loop) is not searched: its lines are, one by one, and they are claims of their own.

Lines that cannot be answered honestly are listed in UNANSWERED with the reason; each is an expected failure
of its own (`test_an_unanswered_line_is_still_unanswered`), shown as xfail in every run, never skipped.
Running every file takes minutes (one verify per file, cold): run one file with `-k a4`, say.  A file whose
searches the default budget cuts short (a loaded machine) is verified once more with twice the budget, resuming
them (`_report`).
"""
from pathlib import Path

import pytest

from derivations.analyses import repair
from derivations.form import ir
from derivations.latex.reader import parse_statement
from derivations.running.runner import load_document

ROOT = Path(__file__).resolve().parent.parent
FILES = [*sorted((ROOT / "examples").glob("*.md")), *sorted((ROOT / "tests" / "derivations").rglob("*.md")),
         *sorted(p for p in (ROOT / "tests" / "corpus").iterdir() if p.suffix in (".md", ".tex"))]
BUDGET = 60.0          # the default budget of a file's repair searches (runner.REPAIR_BUDGET)

# (file relative to the repository, claim id) -> why no proved repair or derived line can be shown.
UNANSWERED = {
}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


_RUNS: dict = {}


def _report(path: Path):
    """The file verified at the default repair budget; where a wrong line is left unanswered by a search the
    budget cut short (the budget is seconds: a loaded machine gets less done in it), verified once more with
    twice the budget and the same proof cache, which resumes those searches where they stopped (runner.resumable)
    and takes every proof from the cache.  The lines that needed it are in the report's `resumed_for_test`."""
    if path not in _RUNS:
        import tempfile

        from derivations.outputs.assembly import run
        from derivations.running.cache import ProofCache
        doc = load_document(path)
        cache = ProofCache(Path(tempfile.mkdtemp(prefix="coverage-cache-")))
        report = run(jobs=2, document=doc, repair_budget=BUDGET, cache=cache)
        short = [c["id"] for c in _wrong(doc, report) if (_rel(path), c["id"]) not in UNANSWERED
                 and (c["search"] or {}).get("budget_exhausted") and _answer(doc, c) is None]
        if short:
            report = run(jobs=2, document=doc, repair_budget=2 * BUDGET, cache=cache)
            report["resumed_for_test"] = short
        _RUNS[path] = (doc, report)
    return _RUNS[path]


def _answer(doc, c) -> str | None:
    """The shown statement that answers a wrong line, re-proved from its printing, or None."""
    ctx, claim = doc.parsed[c["id"]]
    shown = [r["latex"] for r in c["repairs"]]
    if c.get("derived") and c["derived"]["verdict"] == "proved":
        shown.append(c["derived"]["latex"])
    for latex in shown:
        lhs, rhs = parse_statement(latex, ctx)
        new = ir.Claim(c["id"] + "~answer", "", lhs, rhs)
        if repair.keeps_subject(ctx, claim, new) and not repair.trivial(ctx, new) \
                and repair.check(ctx, new)["verdict"] == "proved":
            return latex
    return None


def _wrong(doc, report):
    for c in report["claims"]:
        if c["verdict"] not in ("refuted", "ill-typed"):
            continue
        if c["id"] in doc.parsed and doc.parsed[c["id"]][1].algorithm:
            continue                     # a loop: its lines are claims of their own
        yield c


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_every_wrong_line_shows_a_proved_repair_or_derived_line(path):
    doc, report = _report(path)
    missing = []
    for c in _wrong(doc, report):
        if (_rel(path), c["id"]) in UNANSWERED:
            continue
        if _answer(doc, c) is None:
            missing.append((c["id"], c["verdict"], (c["search"] or {}).get("stopped"),
                            (c["search"] or {}).get("derived_not_proved")))
    assert not missing, f"resumed with twice the budget: {report.get('resumed_for_test')}"


@pytest.mark.parametrize("key", sorted(UNANSWERED), ids=lambda k: f"{k[0]}::{k[1]}")
def test_an_unanswered_line_is_still_unanswered(key, request):
    """Each line of UNANSWERED, with its reason: an expected failure, so that it shows in every run."""
    request.applymarker(pytest.mark.xfail(reason=UNANSWERED[key], strict=False))
    path = ROOT / key[0]
    doc, report = _report(path)
    (c,) = [c for c in report["claims"] if c["id"] == key[1]]
    assert c["verdict"] in ("refuted", "ill-typed")
    assert _answer(doc, c) is not None
