"""The verdicts of the note and of every file of examples/, claim by claim, against a stored snapshot.

A refactor of the engines or of the note's encoding must not change what the report says: each
claim's verdict, its scope, the engines that decided it and what each said, the inputs of its
counterexample, its best repair (or derived line) when the repair search
finished within its budget, its severity, the note's algorithm diagnosis.  Only deterministic fields are kept (no timings, no search counters, no reason
sentences, which quote engine internals).

After an intended change, write the snapshots again and review the diff:

    UPDATE_SNAPSHOTS=1 python -m pytest -q tests/test_verdict_snapshots.py && git diff tests/snapshots/
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOTS = Path(__file__).parent / "snapshots" / "verdicts"
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".md", ".tex", ".ipynb"))
UPDATE = bool(os.environ.get("UPDATE_SNAPSHOTS"))


def _counterexample(cx: dict | None) -> dict | None:
    """The inputs of a counterexample (where, which entry, the values): not the printed numbers."""
    if not cx:
        return None
    return {k: cx[k] for k in ("at", "entry", "values", "indices", "functions") if k in cx}


def _repair(r: dict) -> dict:
    return {"latex": r["latex"], "edit": r.get("edit"), "verdict": r["verdict"]}


def claim_snapshot(c: dict) -> dict:
    """What must not change for one claim of a report."""
    return {
        "verdict": c["verdict"],
        "scope": c["scope"],
        "kind": c["kind"],
        "corrects": c["corrects"],
        "corrected_by": c["corrected_by"],
        "methods": [{"method": m["method"], "verdict": m["verdict"],
                     "counterexample": _counterexample(m.get("counterexample"))} for m in c["methods"]],
        "counterexample": _counterexample(c["counterexample"]),
        # The best repair: the ones after it depend on how far the search got within its time budget.
        "repair": _repair(c["repairs"][0]) if c["repairs"] else None,
        "derived": (c["derived"] or {}).get("latex"),
        "severity": c["severity"],
        # False when the repair search stopped at its time budget: what it found then depends on the machine's load.
        "search_complete": None if not c.get("search") else not c["search"].get("budget_exhausted", False),
    }


def _comparable(snap: dict, other: dict) -> dict:
    """A claim's snapshot without the search's findings when either search was cut by its time budget."""
    if snap.get("search_complete") is False or other.get("search_complete") is False:
        return {k: v for k, v in snap.items() if k not in ("repair", "derived", "search_complete")}
    return snap


def _diagnosis(d: dict | None) -> dict | None:
    if not d:
        return None
    outputs = {name: {k: v for k, v in o.items() if k in ("as_written", "by_T", "blame", "fixed_by", "fixed",
                                                             "wrong_from_T", "wrong_steps", "steps_pattern")}
               for name, o in d.get("outputs", {}).items()}
    lines = [{k: v for k, v in line.items() if k in ("id", "quantity", "type_checks", "replaced_by")}
             for line in d.get("lines", [])]
    return {"outputs": outputs, "lines": lines}


def report_snapshot(report: dict) -> dict:
    return {
        "ok": report["ok"],
        "conflicts": [c if isinstance(c, str) else c.get("id") for c in report["conflicts"]],
        "algorithm_diagnosis": _diagnosis(report.get("algorithm_diagnosis")),
        "claims": {c["id"]: claim_snapshot(c) for c in report["claims"]},
    }


def _compare(name: str, report: dict) -> None:
    path = SNAPSHOTS / f"{name}.json"
    got = report_snapshot(report)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
        return
    assert path.exists(), f"no snapshot {path.name}: run with UPDATE_SNAPSHOTS=1"
    want = json.loads(path.read_text())
    # Round-trip through JSON so tuples and lists, int keys and str keys compare alike.
    got = json.loads(json.dumps(got))
    assert sorted(got["claims"]) == sorted(want["claims"]), "the claim ids changed"
    for cid, snap in want["claims"].items():
        mine = got["claims"][cid]
        assert _comparable(mine, snap) == _comparable(snap, mine), f"{name}: claim {cid} changed"
    assert {k: v for k, v in got.items() if k != "claims"} == {k: v for k, v in want.items() if k != "claims"}


def test_note_matches_its_snapshot(note_report):
    _compare("note", note_report)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_matches_its_snapshot(path, example_report):
    _, report = example_report(path)
    _compare(path.name, report)
