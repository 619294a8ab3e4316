"""Run every claim of a derivation through every engine, in parallel, with a cache.

derivation file (parsed by derivations.latex) -> proofs (this module) -> code
and report.  A document is a derivation file: the bundled note
(derivations/note/note.md) or a user's file, read and proved the same way.
Each claim is proved in a worker process (claims are independent); what comes
back is plain data, ready for report.json.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..analyses.layout import numerator_layout_note, reading_note
from ..engines import TIME_LIMIT, combine, sources_key

# The engines a worker runs, by these names: tests replace them here (monkeypatch) to make an engine fail.
from ..engines import algorithm_engines as _algorithm_engines
from ..engines import parsed_engines as _parsed_engines
from ..engines import parsed_modules as _parsed_modules
from ..engines import run_engines as _run_engines
from ..engines.verdicts import CONFLICT, ILL_TYPED, PROVED, REFUTED
from .cache import ProofCache

AS_WRITTEN = "as-written"      # a claim's kind (ir.Claim.kind)
# Where a claim's result came from (its `origin` in report.json): the engines in this run, the cache, or the
# engines in this run stopped by the time limit (such a result is never cached).
PROVED_NOW, FROM_CACHE, CUT_SHORT = "this run", "cache", "time limit"

NOTE = Path(__file__).resolve().parents[1] / "note" / "note.md"


@dataclass
class Document:
    """A derivation to verify: its claims in the file's order, each with its report fields."""
    path: Path
    derivation: object
    fields: dict = field(default_factory=dict)        # claim id -> fields of report.json
    parsed: dict = field(default_factory=dict)        # claim id -> (context, ir.Claim) for claims parsed from LaTeX
    contexts: dict = field(default_factory=dict)      # claim id -> its context

    @property
    def is_note(self) -> bool:
        return self.path.resolve() == NOTE

    @property
    def ids(self) -> list:
        return list(self.fields)


@lru_cache(maxsize=8)
def _read(path: str, mtime: float):
    from ..latex.files import read_derivation
    return read_derivation(path)


def load_document(path=None) -> Document:
    """The bundled note (path None) or a user's derivation file; DerivationErrors when it does not read."""
    from ..latex.errors import DerivationError, DerivationErrors
    path = Path(path) if path is not None else NOTE
    try:
        derivation = _read(str(path), path.stat().st_mtime)
    except FileNotFoundError:
        raise DerivationErrors([DerivationError(f"{path}: no such file")]) from None
    doc = Document(path, derivation)
    errors = []
    for ctx in derivation.contexts:
        for c in ctx.claims:
            doc.contexts[c.id] = ctx
            common = {"id": c.id, "section": c.section, "kind": c.kind, "corrects": c.corrects, "group": c.group,
                      "comment": c.comment, "reading": c.reading, "depends_on_reading": c.depends_on_reading,
                      "line": c.source.line, "remark": c.remark}
            if c.source.cell is not None:           # a notebook: `line` is the line in that cell
                common["cell"] = c.source.cell
            doc.fields[c.id] = {**common, "label": c.label, "latex": c.source.latex, "source": "latex",
                                "relies_on": []}
            doc.parsed[c.id] = (ctx, c)
    if not errors and not doc.fields:
        errors.append(DerivationError(f"{path}: no statement to check: a claim is an equation a = b in a "
                                      "$$ ... $$ block (in a .tex file: equation, align or \\[ \\]; see "
                                      "docs/derivation-format.md)"))
    if errors:
        raise DerivationErrors(errors)
    for cid, f in doc.fields.items():
        f["corrected_by"] = [x for x, g in doc.fields.items() if g["corrects"] is not None
                             and g["corrects"] in (cid, f["group"])]
    return doc


def prove_parsed(job) -> dict:
    """Every engine on one claim of a derivation file.  Runs in a worker: job = (path, claim id[, limit])."""
    path, claim_id, *rest = job
    ctx, claim = load_document(path).parsed[claim_id]
    cell = f"cell {claim.source.cell}:" if claim.source and claim.source.cell is not None else ""
    where = f"{path}:{cell}{claim.source.line}: {claim.id}" if claim.source else claim.id
    if claim.algorithm:
        # A whole algorithm: its loop run at small sizes here; the proof for every T comes from its lines'
        # verdicts once they are all back (`_with_lines`).
        return _run_engines(_algorithm_engines(), (ctx, claim), where, rest[0] if rest else TIME_LIMIT)
    return _run_engines(_parsed_engines(), (ctx, claim), where, rest[0] if rest else TIME_LIMIT)


def parsed_key(ctx, claim) -> str:
    """sha256 of the claim's context as written (every block of it), its id, the engines' sources, SymPy's version."""
    return sources_key(_parsed_modules(), "parsed", claim.id, ctx.text)


def _is_algorithm(doc: Document, cid: str) -> bool:
    return cid in doc.parsed and doc.parsed[cid][1].algorithm is not None


def _with_lines(result: dict, alg, results: dict) -> dict:
    """Add the induction over a loop's lines (`program.for_every_T`) as one more method of a whole algorithm."""
    from ..engines import program
    methods = [*result["methods"], program.for_every_T(alg, results)]
    return {**result, **combine(methods), "methods": methods}


def _algorithm_diagnosis(doc: Document, ids, results: dict, cache, searches: dict | None = None) -> dict | None:
    """For the first whole algorithm of a file that is refuted or ill-typed: which values it computes wrong,
    and which lines to blame (`program.diagnose`).  A line is replaced by the file's correction of it
    (`Corrects:`) when that is proved in this run, else by its best proved repair (`searches`)."""
    from ..engines import program
    for cid in ids:
        ctx, claim = doc.parsed.get(cid, (None, None))
        if claim is None or not claim.algorithm or claim.kind != AS_WRITTEN \
                or results.get(cid, {}).get("verdict") not in (REFUTED, ILL_TYPED):
            continue
        alg = ctx.algorithms[claim.algorithm]
        proved = {line: u for line, u in alg.corrections.items() if results.get(u.claim, {}).get("verdict") == PROVED}
        repaired = {line: u for line, u in _repaired_lines(ctx, alg, results, searches or {}).items()
                    if line not in proved}
        key = sources_key(_parsed_modules(), "algorithm diagnosis", cid, ctx.text, " ".join(sorted(proved)),
                          " ".join(f"{line}={u.source.latex}" for line, u in sorted(repaired.items())))
        found = cache.get("diagnosis " + cid, key)
        if found is None:
            found = program.diagnose(ctx, alg, {**proved, **repaired})
            if found is None:
                return None
            cache.put("diagnosis " + cid, key, found)
        unused = [{"replacement": u.claim, "verdict": results.get(u.claim, {}).get("verdict", "not checked in this run")}
                  for line, u in alg.corrections.items() if line not in proved]
        source = "the file's corrections (Corrects:), proved in this run" if proved else ""
        if repaired:
            source = (source + "; " if source else "") + "the best proved repair of each other wrong line"
        return {**found, "replacement_source": source or "none: no line of the loop has a proved correction",
                "replacements_not_used": unused}
    return None


def _repaired_lines(ctx, alg, results: dict, searches: dict) -> dict:
    """{line id: the Update of its best proved repair} for the wrong lines of a loop, where the repair keeps
    what the line sets (a repair of dW = Σ_t e keeps the sum: its summand is the new line)."""
    from ..form import ir
    from ..latex.errors import DerivationError, DerivationErrors
    from ..latex.reader import parse_statement
    out = {}
    for u in alg.updates:
        if results.get(u.claim, {}).get("verdict") not in (REFUTED, ILL_TYPED):
            continue
        for rep in (searches.get(u.claim) or {}).get("repairs", []):
            if rep.get("verdict") != PROVED:
                continue
            try:
                lhs, rhs = parse_statement(rep["latex"], ctx)
            except (DerivationError, DerivationErrors):   # printed in a form that does not read back: not used
                continue
            if u.op == "+=":
                if not (isinstance(rhs, ir.Sum) and rhs.var == alg.var and rhs.lo == ir.Time(None, 1)
                        and rhs.hi == ir.Time("T")):
                    continue
                rhs = rhs.body
            if lhs != u.target:
                continue
            out[u.claim] = ir.Update(u.target, rhs, u.op, u.claim, ir.Source("", 0, rep["latex"]))
            break
    return out


def _pool_map(fn_by_key: dict, jobs: int, on_result):
    """Run {key: (fn, arg)} on `jobs` processes (or in-process for jobs == 1).

    on_result(key, result) may return more jobs {key: (fn, arg)}, submitted to the same pool (the repair
    search of a claim starts as soon as its proof is back, on a worker that would otherwise wait).
    """
    if jobs == 1:
        queue = list(fn_by_key.items())
        while queue:
            key, (fn, arg) = queue.pop(0)
            queue += list((on_result(key, fn(arg)) or {}).items())
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(fn, arg): key for key, (fn, arg) in fn_by_key.items()}
        while futures:
            fut = next(as_completed(futures))
            key = futures.pop(fut)
            for more_key, (fn, arg) in (on_result(key, fut.result()) or {}).items():
                futures[pool.submit(fn, arg)] = more_key


# ---------------------------------------------------------------- repairs

REPAIR_BUDGET = 60.0        # seconds of search for a whole file's wrong claims, shared (a search ends at the file's
                            # deadline: a line repaired quickly leaves the time to the others)
REPAIR_LINE_CAP = 30.0      # and at most this long on one line, so that one line cannot starve the others
REPAIR_JOB = "repair: "     # a repair job's key in the pool: REPAIR_JOB + claim id


def _repair_modules():
    # Everything a search's findings depend on: the edits, the derived line, the spellings, the engines.
    from ..analyses import derive, repair, spelling
    return (*_parsed_modules(), derive, repair, spelling)


def _repair_target(doc: Document, claim_id: str):
    """(context, ir.Claim, what is left out) the repair search edits, or (None, None, why there is none)."""
    ctx, claim = doc.parsed[claim_id]
    return ctx, claim, ""


def repair_key(doc: Document, claim_id: str) -> str | None:
    ctx, claim, _ = _repair_target(doc, claim_id)
    if claim is None:
        return None
    from ..form.printer import claim_latex
    return sources_key(_repair_modules(), "repair", claim_id, ctx.text, claim_latex(claim.lhs, claim.rhs))


def line_cap(repair_budget: float) -> float:
    """The seconds one line's search may take in all (over the runs that resume it), for a file's budget:
    REPAIR_LINE_CAP at the default budget, in proportion to a larger or smaller one."""
    return REPAIR_LINE_CAP * repair_budget / REPAIR_BUDGET


def resumable(found: dict, repair_budget: float) -> bool:
    """A cached search that was cut short and has had less time, over the runs so far, than one line may
    take at this run's budget: a rerun goes on from where it stopped instead of showing it again."""
    where = (found.get("search") or {}).get("resume")
    return bool(where) and where.get("seconds", 0.0) + 1.0 < line_cap(repair_budget)


def repair_claim(job) -> dict:
    """The repair search on one wrong claim.  Runs in a worker: job = (path, claim id, verdict, budget, cache
    [, cap, earlier]), budget the seconds it may take or ("until", t): the file's deadline, t a time.time(),
    and at most `cap` seconds (REPAIR_LINE_CAP by default) less those an earlier, cut-short run of the same
    search (`earlier`, which this one resumes) has spent."""
    from ..analyses import repair
    path, claim_id, verdict, budget, cache_dir, *more = job
    cap = more[0] if more else REPAIR_LINE_CAP
    earlier = more[1] if len(more) > 1 else None
    if earlier is not None:
        cap -= earlier["search"]["resume"].get("seconds", 0.0)
    if isinstance(budget, tuple):
        budget = max(0.0, min(cap, budget[1] - time.time()))
    doc = load_document(path)
    ctx, claim, left_out = _repair_target(doc, claim_id)
    if claim is None:
        return {"repairs": [], "search": {"skipped": left_out}}
    cache = ProofCache(cache_dir) if cache_dir else None
    out = repair.search(ctx, claim, budget=budget, verdict=verdict, cache=cache, resume=earlier)
    if left_out:
        from ..form.printer import claim_latex
        out["search"]["expressible"] = claim_latex(claim.lhs, claim.rhs)
        out["search"]["not_expressed"] = left_out
    return out


def wants_repair(doc: Document, claim_id: str, result: dict) -> bool:
    """An as-written claim that is refuted or ill-typed (never a proved one, nor a correction, nor a whole
    algorithm: its lines are searched one by one)."""
    if claim_id in doc.parsed and doc.parsed[claim_id][1].algorithm:
        return False
    return doc.fields[claim_id]["kind"] == AS_WRITTEN and result["verdict"] in (REFUTED, ILL_TYPED)


@dataclass
class Proofs:
    """What a run found: each claim's result (with its `origin`), the repair searches (None without repairs),
    the algorithm diagnosis, the seconds taken and the cache used; `assembly.assemble` makes the report."""
    document: Document
    ids: list
    results: dict
    searches: dict | None
    diagnosis: dict | None
    seconds: float
    cache: ProofCache


def prove(ids=None, jobs: int | None = None, cache: ProofCache | None = None, progress=None,
          document: Document | None = None, time_limit: float = TIME_LIMIT, repairs: bool = True,
          repair_budget: float = REPAIR_BUDGET) -> Proofs:
    """Prove the claims `ids` (default: all) of a document (default: the note), in parallel, with a cache.

    With `repairs`, every as-written claim that is refuted or ill-typed gets a repair search
    (derivations.analyses.repair), in the same pool, as soon as its proof is back."""
    start = time.perf_counter()
    doc = document or load_document()
    ids = list(ids) if ids else doc.ids
    cache = cache or ProofCache(enabled=False)
    jobs = jobs or os.cpu_count() or 1

    results, todo, keys, from_cache = {}, {}, {}, set()
    shown: list = []                  # the claims whose progress line is printed, in order
    for cid in ids:
        keys[cid] = parsed_key(*doc.parsed[cid])
        job = (prove_parsed, (str(doc.path), cid, time_limit))
        hit = cache.get(cid, keys[cid])
        if hit is not None:
            results[cid] = {**hit, "origin": FROM_CACHE}
            if _is_algorithm(doc, cid):
                from_cache.add(cid)
            if progress and not _is_algorithm(doc, cid):
                shown.append(cid)
                progress(cid, hit, cached=True, done=len(shown), total=len(ids))
        else:
            todo[cid] = job
    searches, repair_keys = {}, {}
    cache_dir = str(cache.directory) if cache.enabled else None
    deadline = []                # the file's repair deadline, set when its first search is submitted

    def repair_job(cid):
        """{job key: job} for a claim's repair search, or {} (taken from the cache, or nothing to search)."""
        if not repairs or not wants_repair(doc, cid, results[cid]):
            return {}
        key = repair_key(doc, cid)
        if key is None:
            _, _, why = _repair_target(doc, cid)
            searches[cid] = {"repairs": [], "search": {"skipped": why}}
            return {}
        hit = cache.get(REPAIR_JOB + cid, key)
        if hit is not None and not resumable(hit, repair_budget):
            searches[cid] = hit
            return {}
        repair_keys[cid] = key
        if not deadline:
            deadline.append(time.time() + repair_budget)
        # A search cut short by an earlier run with less time goes on from where it stopped.
        return {REPAIR_JOB + cid: (repair_claim, (str(doc.path), cid, results[cid]["verdict"], ("until", deadline[0]),
                                                 cache_dir, line_cap(repair_budget), hit))}

    def record(key, result):
        if key.startswith(REPAIR_JOB):
            cid = key[len(REPAIR_JOB):]
            searches[cid] = result
            # Kept even when cut short by the budget: it says how far it got (search.tried of search.singles,
            # search.resume), and a rerun of an unchanged file with the same budget does not spend it again; a
            # rerun with a larger one goes on from there (`resumable`; --no-cache searches anew).
            cache.put(key, repair_keys[cid], result)
            return None
        # An engine error is never kept as a result, nor a verdict cut short by the time limit.
        if result["verdict"] != CONFLICT and not result.get("timed_out"):
            cache.put(key, keys[key], result)
        results[key] = {**result, "origin": CUT_SHORT if result.get("timed_out") else PROVED_NOW}
        if progress and not _is_algorithm(doc, key):       # an algorithm's verdict waits for its lines
            shown.append(key)
            progress(key, result, cached=False, done=len(shown), total=len(ids))
        return repair_job(key)

    # Claims taken from the cache start their repair searches at once.
    for cid in list(results):
        todo.update(repair_job(cid))
    # The longest jobs first, so that no worker is left with one at the end.
    todo = {key: todo[key] for key in sorted(todo, key=lambda key: _expected_cost(key, doc))}
    _pool_map(todo, min(jobs, max(1, len(todo))), record)
    for cid in ids:
        ctx, claim = doc.parsed.get(cid, (None, None))
        if claim is not None and claim.algorithm and cid in results:
            results[cid] = _with_lines(results[cid], ctx.algorithms[claim.algorithm], results)
            if progress:
                shown.append(cid)
                progress(cid, results[cid], cached=cid in from_cache, done=len(shown), total=len(ids))
    diagnosis = _algorithm_diagnosis(doc, ids, results, cache, searches)
    for cid in ids:
        results[cid]["layout"], results[cid]["other_reading"] = _reading_notes(doc, cid, results[cid]["verdict"], cache)
    return Proofs(doc, ids, results, searches if repairs else None, diagnosis, time.perf_counter() - start, cache)


def _expected_cost(key, doc) -> int:
    """Rank (0 = longest): a whole algorithm, claims through time and repair searches, the rest (stable)."""
    if key.startswith(REPAIR_JOB):
        return 2
    ctx, claim = doc.parsed[key]
    if claim.algorithm:
        return 0
    return 2 if ctx.has_time else 3


def _reading_notes(doc: Document, cid: str, verdict: str, cache) -> tuple:
    """(layout note, other-reading note) of a wrong parsed claim (derivations.analyses.layout): each an explicit proof
    of another reading, so cached like one (a rerun of an unchanged file does not prove them again)."""
    if cid not in doc.parsed or verdict not in (REFUTED, ILL_TYPED) or doc.parsed[cid][1].lhs is None:
        return None, None                 # (a loop of an algorithm has no sides to read otherwise)
    from ..analyses import layout
    ctx, claim = doc.parsed[cid]
    key = sources_key((*_parsed_modules(), layout), "reading notes", claim.id, ctx.text, verdict)
    hit = cache.get("notes: " + cid, key)
    if hit is not None:
        return hit["layout"], hit["reading"]
    notes = {"layout": numerator_layout_note(ctx, claim, verdict), "reading": reading_note(ctx, claim, verdict)}
    cache.put("notes: " + cid, key, notes)
    return notes["layout"], notes["reading"]


__all__ = ["AS_WRITTEN", "Proofs", "prove"]
