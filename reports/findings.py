"""What is wrong with the note, in words: the report dict read the way a reader asks about it.

One source for the terminal summary (`derivations.outputs.cli`) and the report's
headline and errata (`reports.render`), so that both say the same thing.
Everything here is computed from the report dict; no verdict, count or label
is typed in.  Verdicts are data: one this module does not know (a future
engine's) is still listed, after the known ones, under its own name.
"""
from __future__ import annotations

import re

PROVED = "proved"
# How a statement that is not proved is described, most serious first: a refuted
# line computes a wrong value, so it comes before one that does not type-check.
PROBLEMS = {
    "refuted": "compute{s} a wrong value",
    "ill-typed": "do{es} not type-check",
    "conflict": "get{s} contradicting verdicts from the engines",
    "inconclusive": "could not be decided",
    "checked": "{is,are} only checked at small sizes and lengths, not proved",
}
# What a statement of each kind is called in a sentence.
NOUNS = {"as-written": "line", "corrected": "correction", "supporting": "tool lemma"}


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 line', '2 lines', '0 processes' (pass `many` when adding an s is wrong)."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _verb(verdict: str, n: int) -> str:
    phrase = PROBLEMS.get(verdict, f"{{is,are}} {verdict}")
    if "{is,are}" in phrase:
        return phrase.replace("{is,are}", "is" if n == 1 else "are")
    return phrase.replace("{s}", "s" if n == 1 else "").replace("{es}", "es" if n == 1 else "")


def plain(text: str) -> str:
    """A reason or comment for the terminal: its formulas, which the engines and files write between $...$
    (the report typesets them), as their LaTeX without the dollars."""
    return re.sub(r"(?<!\\)\$", "", text or "")


def severity(verdict: str) -> int:
    """Sort key: known problems in PROBLEMS' order, then any other verdict, proved last."""
    if verdict == PROVED:
        return len(PROBLEMS) + 1
    return list(PROBLEMS).index(verdict) if verdict in PROBLEMS else len(PROBLEMS)


# How serious an erratum is (derivations.analyses.repair.severity, from the verdict and the best repair found):
# a substantive one misleads whoever follows it (code that follows it is wrong); a notation slip does
# not type-check and one change of notation repairs it.  Substantive errata lead.
SEVERITIES = {
    "substantive": "Substantive (code that follows {them} is wrong)",
    "notation": "Notation slips (one change of notation repairs {each})",
}


def severity_rank(c: dict) -> int:
    sev = c.get("severity")
    return list(SEVERITIES).index(sev) if sev in SEVERITIES else len(SEVERITIES)


def wrong_claims(report: dict) -> list[dict]:
    """Every claim that is not proved: the note's own lines first, the substantive errata before the
    notation slips, the most serious verdict first, then in the note's order."""
    order = {c["id"]: i for i, c in enumerate(report["claims"])}
    wrong = [c for c in report["claims"] if c["verdict"] != PROVED]
    return sorted(wrong, key=lambda c: (c["kind"] != "as-written", severity_rank(c), severity(c["verdict"]),
                                        order[c["id"]]))


def groups(report: dict) -> list[dict]:
    """The headline's clauses: claims not proved, grouped by (kind, severity, verdict), each with its phrase."""
    out: list[dict] = []
    for c in wrong_claims(report):
        key = (c["kind"], c.get("severity"), c["verdict"])
        if not out or (out[-1]["kind"], out[-1]["severity"], out[-1]["verdict"]) != key:
            out.append({"kind": c["kind"], "severity": c.get("severity"), "verdict": c["verdict"], "claims": []})
        out[-1]["claims"].append(c)
    for g in out:
        n = len(g["claims"])
        g["subject"] = plural(n, NOUNS.get(g["kind"], "statement"))
        g["phrase"] = _verb(g["verdict"], n)
        g["severity_title"] = _severity_title(g["severity"], n)
    return out


def _severity_title(sev: str | None, n: int) -> str | None:
    if sev not in SEVERITIES:
        return None
    return SEVERITIES[sev].replace("{them}", "it" if n == 1 else "them").replace("{each}", "it" if n == 1
                                                                                 else "each")


def best_repair(claim: dict) -> dict | None:
    """The first of the claim's ranked repairs (each proved by the engines), or None."""
    return (claim.get("repairs") or [None])[0]


def blockers(report: dict) -> list[dict]:
    """Statements that keep the derivation from being proved: not proved, and no proved correction
    (the rule of derivations.running.runner.relied_on_proved, restated to name them)."""
    by_id = {c["id"]: c for c in report["claims"]}
    return [c for c in report["claims"]
            if c["kind"] != "corrected" and c["verdict"] != PROVED
            and not any(by_id.get(fix, {}).get("verdict") == PROVED for fix in c.get("corrected_by", []))]


def subject(report: dict) -> str:
    """What the report is about: "the note", or the derivation file's title."""
    doc = report.get("document") or {"note": True}
    return "the note" if doc.get("note", True) else f"“{doc.get('title') or doc.get('path')}”"


def status(report: dict) -> dict:
    """The report's verdict in words: kind ('proved', 'corrected', 'failed'), a title and a sentence."""
    what = subject(report)
    if not report["ok"]:
        blocking = blockers(report)
        missing = [f"“{c['label']}”" for c in blocking]
        others: list = []
        # The sentence, and its pieces for a page that links each statement: before, blocking, others, after.
        before, after = f"The derivation of {what} is not proved: ", \
            (" has" if len(missing) == 1 else " have") + " no proof or proved correction."
        return {"kind": "failed", "title": "Not proved.",
                "sentence": before + (", ".join(missing) or "see below") + after,
                "before": before, "blocking": blocking, "others": others, "after": after}
    wrong = [c for c in wrong_claims(report) if c["kind"] == "as-written"]
    if wrong:
        return {"kind": "corrected", "title": "The derivation relies on corrections.",
                "sentence": f"{plural(len(wrong), 'line')} of {what} {'is' if len(wrong) == 1 else 'are'} wrong "
                            f"as written; {'it has' if len(wrong) == 1 else 'each has'} a proved correction, "
                            "given with it below, and with the corrections every statement the derivation "
                            "relies on is proved."}
    n, total = len(report["claims"]), (report.get("document") or {}).get("statements", len(report["claims"]))
    every = "Every statement" if n == total else f"Every checked statement ({n} of {total})"
    return {"kind": "proved", "title": "Proved.", "sentence": f"{every} of {what} is proved as written{reach(report)}."}


def reach(report: dict) -> str:
    """", N of them only at the sizes and lengths tried" when some proofs do not hold for every size."""
    tried = [c for c in report["claims"] if (c.get("scope") or "").startswith("at ")]
    if not tried:
        return ""
    many = len(tried) == len([c for c in report["claims"] if c["verdict"] == PROVED])
    return (f", {'all' if many and len(tried) > 1 else len(tried)} of {'them' if len(tried) > 1 else 'it'} "
            "only at the sizes and sequence lengths tried (no engine for every size applies)"
            if not (len(tried) == 1 and many) else
            ", only at the sizes and sequence lengths tried (no engine for every size applies)")


def headline(report: dict) -> str:
    """Which lines are wrong and how, the substantive errata first; for the note, what its algorithm computes
    wrong and what a reader must change, in one sentence (the whole algorithm's diagnosis); then whether the
    derivation stands."""
    sentences, current, clauses = [], None, []

    def flush():
        if clauses:
            text = "; ".join(clauses) + "."
            sentences.append(text[:1].upper() + text[1:])
    for g in groups(report):
        sev = g["severity"] if g["severity"] in SEVERITIES else None
        if sev != current or not clauses:
            flush()
            clauses, current = [], sev
            title = _severity_title(sev, sum(len(x["claims"]) for x in groups(report) if x["severity"] == sev))
            prefix = f"{title}: " if title else ""
        else:
            prefix = ""
        clauses.append(prefix + f"{g['subject']} {g['phrase']}: " + ", ".join(f"“{c['label']}”" for c in g["claims"]))
    flush()
    return " ".join(s for s in (*sentences, algorithm_sentence(report), status(report)["sentence"]) if s)


# ---------------------------------------------------------------- the algorithm as a whole

def algorithm_sentence(report: dict) -> str:
    """The whole-algorithm diagnosis in one sentence (derivations.engines.program.diagnose builds it from its runs), or ''."""
    return (report.get("algorithm_diagnosis") or {}).get("sentence", "")


def diagnosis_rows(report: dict) -> list[dict]:
    """The diagnosis as a table: per output, as written, from which T it is wrong, the lines to blame."""
    d = report.get("algorithm_diagnosis")
    if not d:
        return []
    names = {line["id"]: line["name"] for line in d["lines"]}
    rows = []
    for o in d["outputs"].values():
        output = o["output"]
        if o.get("steps_pattern") == "t < T":
            output += " (t < T)"
        rows.append({"output": output, "as_written": o["as_written"], "wrong_from_T": o["wrong_from_T"],
                     "blame": [{**b, "name": names.get(b["line"], b["line"])} for b in o["blame"]]})
    return rows


def corrections(claim: dict, by_id: dict, known: dict | None = None) -> list[dict]:
    """The claims that correct `claim`: from the report, else (not checked in this run) from `known`."""
    out = []
    for fix in claim.get("corrected_by", []):
        if fix in by_id:
            out.append({**by_id[fix], "checked": True})
        elif known and fix in known:
            out.append({**known[fix], "id": fix, "verdict": None, "checked": False})
    return out


DERIVED = "The right-hand side is (derived from the file's definitions, proved by the engines)"
DERIVED_CHECKED = ("The right-hand side is (derived from the file's definitions; checked at the sizes and lengths "
                   "tried, not proved for every size)")


def derived_words(found: dict) -> str:
    return DERIVED if found["verdict"] == "proved" else DERIVED_CHECKED


def derived(claim: dict) -> dict | None:
    """The proved right-hand side the definitions give the line's left-hand side (repair.search), when it says
    more than the best repair: shown unless the best repair is that very statement."""
    found = claim.get("derived")
    if not found:
        return None
    best = best_repair(claim)
    return None if best is not None and best["latex"] == found["latex"] else found


def no_correction(report: dict, claim: dict) -> str:
    """What a reader is told under a wrong line that the file itself does not correct (terminal and report)."""
    where = "the note" if (report.get("document") or {"note": True}).get("note", True) else "the file"
    found = " (the repair above is proved by the engines)" if best_repair(claim) else ""
    return f"No correction is written in {where} for this line{found}."


# ---------------------------------------------------------------- counterexamples

_ENTRY_NAME = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<i>\d+)(?:,(?P<j>\d+))?\]$")


def percent(x: float) -> str:
    """A relative difference for a reader: 75%, 4%, 0.26% (two significant digits below 10%)."""
    if x >= 0.1:
        return f"{x:.0%}"
    return f"{float(f'{x * 100:.2g}'):g}%"


def counterexample_view(cx: dict, parsed: bool = False) -> dict:
    """A counterexample laid out for a reader: where, both sides, and the inputs as matrices.

    A Python builder knows which side is the truth (SymPy's derivative); a line parsed from a file
    is two sides the author wrote, so its values are named by side, not as claim and truth.
    """
    matrices: dict[str, dict] = {}
    scalars = []
    for name, value in cx["values"].items():
        m = _ENTRY_NAME.match(name)
        if m is None:
            scalars.append((name, value))
            continue
        entries = matrices.setdefault(m["name"], {})
        entries[(int(m["i"]), int(m["j"] or 0))] = value
    grid = []
    for name, entries in matrices.items():
        rows, cols = max(i for i, _ in entries) + 1, max(j for _, j in entries) + 1
        grid.append((name, [[entries.get((i, j), "?") for j in range(cols)] for i in range(rows)]))
    i, j = cx["entry"]
    relative = cx.get("relative_difference")
    return {
        "at": cx.get("at", ""),
        "quantity": cx.get("quantity"),
        "where": f"row {i + 1}, column {j + 1}",
        "claimed": cx["claimed"], "truth": cx["truth"],
        "sides": ([("the left-hand side is", cx["truth"]), ("the right-hand side", cx["claimed"])] if parsed else
                  [("the line gives", cx["claimed"]), ("the truth is", cx["truth"])]),
        "relative": None if relative is None else percent(relative),
        "clear": cx.get("clear_margin", True),
        "matrices": grid, "scalars": scalars,
    }


def matrix_text(rows: list[list[str]]) -> str:
    """[1/2, -1; 3, 0] -- a matrix on one terminal line, rows separated by ';'."""
    if len(rows) == 1 and len(rows[0]) == 1:
        return rows[0][0]
    return "[" + "; ".join(", ".join(r) for r in rows) + "]"


# ---------------------------------------------------------------- time

def timing_text(report: dict) -> str:
    """Wall-clock time, and proving time in this run apart from proofs taken from the cache."""
    t = report.get("timing")
    wall = f"{report['total_seconds']:.1f} s wall clock"
    if not t:
        return wall
    now, cached = t["proved_now"], t["from_cache"]
    parts = [wall, f"proving in this run {now['seconds']:.1f} s ({plural(now['proofs'], 'proof')})"]
    if cached["proofs"]:
        parts.append(f"{plural(cached['proofs'], 'proof')} from the cache (proved earlier in "
                     f"{cached['seconds']:.1f} s)")
    return "; ".join(parts)
