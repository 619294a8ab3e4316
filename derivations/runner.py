"""Run every claim through every engine, in parallel, with a cache.

note (derivations.note) -> proofs (this module) -> code (codegen) -> report.
Each claim is proved in a worker process (claims are independent); what comes
back is plain data, ready for report.json.
"""
from __future__ import annotations

import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict

import numpy
import sympy

from . import concrete, graph
from .cache import ProofCache, claim_key, sources_key
from .concrete import CONFLICT, ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED, VERDICTS
from .registry import AS_WRITTEN, CLAIMS, CORRECTED, check_references

TOOL = "bptt-verifier 0.1.0"
# Engines that do not contradict each other combine to the worst verdict: a
# shape failure, then a counterexample, then an undecided case; "proved" needs
# every engine to prove.  One engine proving what another refutes or finds
# ill-typed is a contradiction: the claim's verdict is CONFLICT (an engine error).
SEVERITY = (ILL_TYPED, REFUTED, INCONCLUSIVE, PROVED)
AGAINST = (REFUTED, ILL_TYPED)


def combine(methods: list) -> dict:
    """The combined verdict of the engines' entries: verdict, reason, counterexample (and the conflict)."""
    proved = [m for m in methods if m["verdict"] == PROVED]
    against = [m for m in methods if m["verdict"] in AGAINST]
    if proved and against:
        sides = [f"{m['method']}: {m['verdict']} ({m['reason']})" for m in proved + against]
        return {"verdict": CONFLICT,
                "reason": "the engines disagree, which is an error of the tool, not a verdict: " + "; ".join(sides),
                "counterexample": next((m.get("counterexample") for m in against if m.get("counterexample")), None),
                "conflict": [{k: m.get(k) for k in ("method", "verdict", "reason", "counterexample", "shapes")}
                             for m in proved + against]}
    decisive = min(methods, key=lambda m: SEVERITY.index(m["verdict"]))
    return {"verdict": decisive["verdict"],
            "reason": decisive["reason"] if decisive["verdict"] != PROVED else
            "; ".join(f"{m['method']}: {m['reason']}" for m in methods),
            "counterexample": decisive.get("counterexample"),
            "conflict": None}


def _engines():
    """(name, prove) pairs; prove(claim) returns an Outcome, or None where it does not apply."""
    from .generic import prove_all_sizes
    return [("concrete", concrete.prove), ("all sizes", prove_all_sizes), ("unrolled graph", graph.prove_by_graph)]


def _extra_modules():
    """Engine code beyond the concrete engine's, part of every cache key."""
    from . import generic
    return (generic, graph)


def load_claims():
    from . import note  # noqa: F401 - registers the claims in the note's order
    check_references()
    return CLAIMS


def prove_claim(claim_id: str) -> dict:
    """Every engine on one claim; the combined verdict.  Runs in a worker."""
    claim = load_claims()[claim_id]
    methods = []
    for name, engine in _engines():
        start = time.perf_counter()
        outcome = engine(claim)
        if outcome is None:           # the engine does not apply to this claim
            continue
        entry = asdict(outcome)
        entry["method"] = name
        entry["seconds"] = round(time.perf_counter() - start, 3)
        entry["shapes"] = [{k: str(v) if not isinstance(v, int) else v for k, v in s.items()}
                           for s in entry["shapes"]]
        methods.append(entry)
    return {
        **combine(methods),
        "methods": methods,
        "shapes": methods[0]["shapes"],
        "seconds": round(sum(m["seconds"] for m in methods), 3),
    }


# The claim whose statement the induction proves for every T, and the induction's job in the pool.
INDUCTION_CLAIM = "bptt-algorithm-corrected"
INDUCTION_JOB = "induction (all T)"


def _induction(_=None) -> dict:
    """The all-T proof of the BPTT algorithm (a job of the pool, cached like a claim)."""
    from . import induction
    return induction.prove_all_T()


def _induction_key() -> str:
    from . import generic, induction
    return sources_key((induction, generic), "induction")


def _with_induction(result: dict, induction: dict) -> dict:
    """Add the induction as one more method of the corrected whole-algorithm claim."""
    method = {"method": "all T (induction)", "verdict": induction["verdict"], "shapes": [induction["sizes"]],
              "seconds": induction["seconds"], "reason": induction["combination"], "counterexample": None}
    methods = [*result["methods"], method]
    combined = combine(methods)
    if combined["verdict"] == PROVED:
        combined["reason"] = result["reason"]
    return {**result, **combined, "methods": methods, "seconds": round(result["seconds"] + induction["seconds"], 3)}


def _pool_map(fn_by_key: dict, jobs: int, on_result):
    """Run {key: (fn, arg)} on `jobs` processes (or in-process for jobs == 1)."""
    if jobs == 1:
        for key, (fn, arg) in fn_by_key.items():
            on_result(key, fn(arg))
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(fn, arg): key for key, (fn, arg) in fn_by_key.items()}
        for fut in as_completed(futures):
            on_result(futures[fut], fut.result())


def run(ids=None, jobs: int | None = None, cache: ProofCache | None = None, progress=None) -> dict:
    """Prove the claims `ids` (default: all) and return the report dict."""
    start = time.perf_counter()
    claims = load_claims()
    ids = list(ids) if ids else list(claims)
    cache = cache or ProofCache(enabled=False)
    jobs = jobs or os.cpu_count() or 1
    extra = _extra_modules()

    results, todo = {}, {}
    keys = {cid: claim_key(claims[cid], extra) for cid in ids}
    for cid in ids:
        hit = cache.get(cid, keys[cid])
        if hit is not None:
            results[cid] = hit
            if progress:
                progress(cid, hit, cached=True, done=len(results), total=len(ids))
        else:
            todo[cid] = (prove_claim, cid)
    induction = None
    if INDUCTION_CLAIM in ids:
        induction_key = _induction_key()
        induction = cache.get("induction", induction_key)
        if induction is None:
            todo[INDUCTION_JOB] = (_induction, None)

    def record(key, result):
        nonlocal induction
        if key == INDUCTION_JOB:
            induction = result
            cache.put("induction", induction_key, result)
            return
        results[key] = result
        if result["verdict"] != CONFLICT:        # an engine error is never kept as a result
            cache.put(key, keys[key], result)
        if progress:
            progress(key, result, cached=False, done=len(results), total=len(ids))

    # The longest jobs first, so that no worker is left with one at the end.
    todo = {key: todo[key] for key in sorted(todo, key=lambda key: _expected_cost(key, claims))}
    _pool_map(todo, min(jobs, max(1, len(todo))), record)
    if induction is not None:
        results[INDUCTION_CLAIM] = _with_induction(results[INDUCTION_CLAIM], induction)
    return assemble(ids, results, induction, time.perf_counter() - start, cache)


def _expected_cost(key, claims) -> int:
    """Rank (0 = longest): the whole algorithm, the induction, lines through time, the rest (stable)."""
    from .note.bptt import WHOLE_ALGORITHM
    if key in WHOLE_ALGORITHM:
        return 0
    if key == INDUCTION_JOB:
        return 1
    return 2 if claims[key].lhs is not None else 3


def assemble(ids, results, induction, seconds, cache) -> dict:
    claims = load_claims()
    entries = []
    for cid in ids:   # the note's order, whatever order the workers finished in
        c = claims[cid]
        entries.append({
            "id": c.id, "label": c.label, "section": c.section, "latex": c.latex, "kind": c.kind,
            "corrects": c.corrects, "corrected_by": [x.id for x in claims.values() if x.corrects == c.id],
            "relies_on": list(c.relies_on), "comment": c.comment, **results[cid],
        })
    summary = {v: sum(e["verdict"] == v for e in entries) for v in VERDICTS}
    report = {
        "tool": TOOL,
        "date": time.strftime("%Y-%m-%d"),
        "versions": {"python": platform.python_version(), "sympy": sympy.__version__, "numpy": numpy.__version__},
        "total_seconds": round(seconds, 2),
        "summary": summary,
        "cache": {"hits": cache.hits, "misses": cache.misses, "rejected": cache.rejected},
        "claims": entries,
    }
    if induction is not None:
        report["induction"] = induction
    report["conflicts"] = [e["id"] for e in entries if e["verdict"] == CONFLICT]
    report["ok"] = relied_on_proved(report) and not report["conflicts"]
    return report


def relied_on_proved(report) -> bool:
    """Every statement of the note is proved, as written or through a proved correction."""
    by_id = {e["id"]: e for e in report["claims"]}
    for e in report["claims"]:
        if e["kind"] == CORRECTED or e["verdict"] == PROVED:
            continue
        if not any(by_id.get(fix, {}).get("verdict") == PROVED for fix in e["corrected_by"]):
            return False
    return report.get("induction", {}).get("verdict", PROVED) == PROVED


__all__ = ["AS_WRITTEN", "TOOL", "prove_claim", "run"]
