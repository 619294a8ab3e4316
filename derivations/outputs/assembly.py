"""The report's data: what a run's results say, put together for the outputs (report.json, the page, the
terminal).

The runner proves; this module says what the proofs reach and how a claim was read (`scope`,
`semantic_notes`), how serious a wrong line is (`add_repairs`: its severity from its repairs), and the
facts of the headline (`relied_on_proved`: every statement proved as written or through a proved
correction).  It reads results and the document; it runs no engine.
"""
from __future__ import annotations

import platform
import time

import numpy
import sympy

from ..engines import GENERAL
from ..engines.verdicts import CHECKED, CONFLICT, ILL_TYPED, PROVED, REFUTED, VERDICTS
from ..running import runner

TOOL = "bptt-verifier 0.1.0"
CORRECTED = "corrected"      # a claim's kind (ir.Claim.kind)


def scope(result: dict, ctx=None) -> str | None:
    """How far a proof (or a check) reaches, in words: "for every size (and T)" or "at the sizes tried (T ≤ 3)"."""
    proved = [m for m in result["methods"] if m["verdict"] == PROVED]
    if result["verdict"] not in (PROVED, CHECKED) or not proved:
        return None
    through_time = ctx is not None and ctx.has_time and ctx.length is None
    if any(m["method"] in GENERAL for m in proved):
        return "for every size" + (" and every T" if through_time else "")
    lengths = [s["T"] for m in proved for s in m["shapes"] if isinstance(s.get("T"), int)]
    return "at the sizes tried" + (f", T ≤ {max(lengths)}" if through_time and lengths else "")


def semantic_notes(claim, ctx=None) -> list[str]:
    """What a reader may take otherwise in a claim's semantics, said next to it (one sentence): ∂E_t/∂U of
    a quantity at a step is taken with the steps before t held fixed (docs/derivation-format.md)."""
    from ..form import ir
    if (ctx is not None and not ctx.held_fixed) or claim.lhs is None:
        return []                         # the default: total derivatives, what a reader takes them to be

    def name(n):                          # plain text: \ell -> ℓ, W_{hh} stays W_hh
        return {"\\ell": "ℓ", "\\mathcal{L}": "𝓛"}.get(n, n.lstrip("\\"))
    read = []
    for side in (claim.lhs, claim.rhs):
        for node in side.walk():
            if (isinstance(node, ir.Deriv) and isinstance(node.of, ir.Ref) and node.of.time is not None
                    and isinstance(node.wrt, ir.Ref) and node.wrt.time is None):
                step = str(node.of.time)
                of = f"{name(node.of.name)}_{step if len(step) == 1 else '{' + step + '}'}"
                item = (f"∂{of}/∂{name(node.wrt.name)} counts the uses of {name(node.wrt.name)} from step {step} on"
                        if not read else f"∂{of}/∂{name(node.wrt.name)} those from step {step} on")
                if item not in read:
                    read.append(item)
    if not read:
        return []
    return ["Earlier steps held fixed (docs/derivation-format.md): " + ", ".join(read)
            + "; the total derivative through every step may differ."]


def run(ids=None, **options) -> dict:
    """Prove the claims `ids` (default: all) of a document (default: the note) and return the report dict
    (runner.prove's options: jobs, cache, progress, document, time_limit, repairs, repair_budget)."""
    return assemble(runner.prove(ids, **options))


def assemble(proofs: runner.Proofs) -> dict:
    """The report dict of a run: each claim's fields as written, its result, scope, notes, repairs and severity
    (the file's order, whatever order the workers finished in), the summary, the diagnosis, the facts of the
    headline."""
    doc, ids, results, cache = proofs.document, proofs.ids, proofs.results, proofs.cache
    seconds, diagnosis, searches = proofs.seconds, proofs.diagnosis, proofs.searches
    entries = [{**doc.fields[cid], **results[cid]} for cid in ids]
    for e in entries:
        ctx, claim = doc.parsed[e["id"]]
        e["scope"] = scope(e, ctx)
        e["notes"] = semantic_notes(claim, ctx)
    summary = {v: sum(e["verdict"] == v for e in entries) for v in VERDICTS}
    report = {
        "tool": TOOL,
        "document": {"path": "derivations/note/note.md" if doc.is_note else str(doc.path),
                     "title": doc.derivation.title, "note": doc.is_note, "statements": len(doc.ids)},
        "date": time.strftime("%Y-%m-%d"),
        "versions": {"python": platform.python_version(), "sympy": sympy.__version__, "numpy": numpy.__version__},
        "total_seconds": round(seconds, 2),
        "summary": summary,
        "cache": {"hits": cache.hits, "misses": cache.misses, "rejected": cache.rejected},
        "claims": entries,
    }
    if diagnosis is not None:
        report["algorithm_diagnosis"] = diagnosis
    report["conflicts"] = [e["id"] for e in entries if e["verdict"] == CONFLICT]
    report["ok"] = relied_on_proved(report) and not report["conflicts"]
    if searches is not None:
        add_repairs(report, searches)
    else:
        # Every claim has the fields the report reads; a wrong line's severity is unknown without a search.
        for c in report["claims"]:
            wrong = c["verdict"] in (REFUTED, ILL_TYPED)
            c.update(repairs=[], search={"skipped": "--no-repairs"} if wrong else None, severity=None, derived=None)
    return report


def relied_on_proved(report) -> bool:
    """Every statement of the note is proved, as written or through a proved correction."""
    by_id = {e["id"]: e for e in report["claims"]}
    for e in report["claims"]:
        if e["kind"] == CORRECTED or e["verdict"] == PROVED:
            continue
        if not any(by_id.get(fix, {}).get("verdict") == PROVED for fix in e["corrected_by"]):
            return False
    return True


def add_repairs(report: dict, searches: dict) -> None:
    """Each claim's `repairs`, `search` and, for a wrong claim, its `severity` (derivations.analyses.repair.severity):
    from its repairs, or from its verdict alone when no search was made."""
    from ..analyses.repair import severity
    for c in report["claims"]:
        found = searches.get(c["id"])
        c["repairs"] = found["repairs"] if found else []
        c["search"] = found["search"] if found else None
        c["derived"] = found.get("derived") if found else None
        c["severity"] = None
    for c in report["claims"]:
        if c["verdict"] not in (REFUTED, ILL_TYPED):
            continue
        searched = c["repairs"] or c["search"] and "skipped" not in c["search"]
        c["severity"] = severity(c["verdict"], c["repairs"] if searched else [])
        c["severity_from"] = "repairs" if searched else "verdict"
