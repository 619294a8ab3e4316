"""Running the engines on one claim: each engine under a time limit, their verdicts combined, the
cross-check of a proof bounded.

Shared by the scheduler (runner.py, every claim of a file in worker processes) and the repair search
(repair.py, each candidate line): neither imports the other for it.
"""
from __future__ import annotations

import hashlib
import inspect
import os
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict

import sympy

from ..form import functions
from . import verdicts
from .verdicts import CHECKED, CONFLICT, ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED, Outcome

# Engines that do not contradict each other combine to the worst decided verdict:
# a shape failure, then a counterexample, then a proof; an engine that could not
# decide ("inconclusive") adds nothing, and is listed with its reason.  One engine
# proving what another refutes or finds ill-typed is a contradiction: the claim's
# verdict is CONFLICT (an engine error).
SEVERITY = (ILL_TYPED, REFUTED, INCONCLUSIVE, PROVED)
AGAINST = (REFUTED, ILL_TYPED)
# Engines whose proof holds for every size (and, for a claim through time, every T).  A claim that only
# the others find equal -- at the sizes and lengths they tried -- is CHECKED, never PROVED.
GENERAL = ("all sizes", "all T (recurrence)", "all T (algorithm)")


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
    decided = [m for m in methods if m["verdict"] != INCONCLUSIVE] or methods
    decisive = min(decided, key=lambda m: SEVERITY.index(m["verdict"]))
    if decisive["verdict"] == PROVED and not any(m["method"] in GENERAL for m in proved):
        return {"verdict": CHECKED,
                "reason": "checked, not proved: equal at the sizes and lengths tried, and no engine proves the "
                          "line for every size and every T (" + "; ".join(f"{m['method']}: {m['reason']}"
                                                                          for m in methods) + ")",
                "counterexample": None, "conflict": None}
    return {"verdict": decisive["verdict"],
            "reason": decisive["reason"] if decisive["verdict"] != PROVED else
            "; ".join(f"{m['method']}: {m['reason']}" for m in methods),
            "counterexample": decisive.get("counterexample"),
            "conflict": None}


def entry(name: str, outcome, start: float) -> dict:
    entry = asdict(outcome)
    entry["method"] = name
    entry["seconds"] = round(time.perf_counter() - start, 3)
    entry["shapes"] = [{k: str(v) if not isinstance(v, int) else v for k, v in s.items()} for s in entry["shapes"]]
    return entry


def result(methods: list) -> dict:
    return {**combine(methods), "methods": methods, "shapes": methods[0]["shapes"] if methods else [],
            "seconds": round(sum(m["seconds"] for m in methods), 3)}


# Seconds one engine may spend on one claim before it is stopped and the claim left inconclusive
# for that engine (0: no limit).  A derivation that makes an engine explode must not hang `verify`.
TIME_LIMIT = 300.0


class EngineCrash(RuntimeError):
    """An engine raised an exception on a claim: an error of the tool, named by claim and engine."""


class TimeLimit(BaseException):
    """Raised by the alarm inside an engine.  A BaseException, so the engines' own `except Exception`
    (a SymPy routine that failed: try another way) does not swallow it."""


@contextmanager
def time_limit(seconds: float):
    """Stop the block after `seconds` with TimeLimit (POSIX, main thread: where workers run jobs)."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeLimit
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _where_raised(exc: BaseException) -> str:
    """file:line of the innermost frame of the project that raised (for a bug report)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f"{os.sep}derivations{os.sep}" in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f" at derivations{f.filename.rsplit(os.sep + 'derivations', 1)[1]}:{f.lineno}"


# Seconds the explicit engine may spend cross-checking a claim that an engine for every size has proved:
# the proof stands; the cross-check looks for a contradiction (a conflict) at small sizes, within a budget.
CROSS_CHECK_SECONDS = 6.0
# The structural engine stops here (its own budget is checked only between rounds of opening); past it
# the explicit engine decides the claim.
RECURRENCE_SECONDS = 20.0
# After this many seconds the cross-check starts no new size (past its first CROSS_CHECK_MIN_SIZES): half a
# second, so that a claim proved for every size stays within the 2 s a claim may take.
CROSS_CHECK_BUDGET = 0.5
EXPLICIT = "concrete"


def run_engines(engines, args: tuple, where: str, limit: float) -> dict:
    """Every engine on one claim; an engine that raises is an EngineCrash naming the claim; one that
    runs past the time limit is inconclusive (and the result is not cached: a faster run may decide).

    The explicit engine runs last: once another engine has proved the claim for every size, it is a
    cross-check within CROSS_CHECK_SECONDS (what it covered is in its reason), and a cross-check cut
    short leaves the proof, and the result, as they are."""
    methods, timed_out = [], False
    for name, engine in sorted(engines, key=lambda e: e[0] == EXPLICIT):
        start = time.perf_counter()
        cross_check = name == EXPLICIT and any(m["verdict"] == PROVED and m["method"] in GENERAL for m in methods)
        seconds = min(limit or CROSS_CHECK_SECONDS, CROSS_CHECK_SECONDS) if cross_check else limit
        if name == "all T (recurrence)":
            seconds = min(limit or RECURRENCE_SECONDS, RECURRENCE_SECONDS)
        try:
            with time_limit(seconds):
                outcome = engine(*args, budget=CROSS_CHECK_BUDGET) if cross_check else engine(*args)
        except TimeLimit:
            timed_out = timed_out or not cross_check
            capped = name == "all T (recurrence)" and seconds == RECURRENCE_SECONDS
            outcome = Outcome(INCONCLUSIVE, name, [], f"stopped at the time limit of {seconds:g} s "
                                                        + ("(the cross-check of a proof)" if cross_check else
                                                           "(this engine's own; the explicit engine decides)" if capped
                                                           else "(verify --time-limit sets it; 0 for none)"))
        except Exception as e:  # any engine bug: name the claim, never a verdict
            raise EngineCrash(f"{where}: the {name} engine failed: {type(e).__name__}: {e}"
                              f"{_where_raised(e)}") from e
        if outcome is not None:           # None: the engine does not apply to this claim
            methods.append(entry(name, outcome, start))
    # The explicit engine's entry first, as it always was listed (its shapes are the claim's shapes).
    methods.sort(key=lambda m: m["method"] != EXPLICIT)
    out = result(methods)
    if timed_out:
        out["timed_out"] = True
    return out


def parsed_engines():
    """(name, prove) pairs for claims parsed from LaTeX; prove(ctx, claim) -> Outcome or None."""
    from . import allsizes, explicit, recurrence
    return [("concrete", explicit.prove), ("all sizes", allsizes.prove), (recurrence.METHOD, recurrence.prove)]


def algorithm_engines():
    """(name, prove) pairs for a whole algorithm (a loop of a file): its run on the explicit model."""
    from . import program
    return [(program.METHOD, program.prove)]


def parsed_modules():
    import sys

    from ..form import algorithm, indexform, ir, jacobians, printer, semantics, shapes
    from ..latex import blocks, copies, files, reader, resolve, syntax, tex
    from . import allsizes, explicit, program, recurrence
    # Every module that decides what a line means (the reader's, copies.py's written-out derivatives, the
    # declared numerator layout's jacobians.py) or what the engines say of it: a change in any of them is a new
    # cache key.
    return (algorithm, allsizes, explicit, indexform, ir, jacobians, program, recurrence, semantics, shapes, blocks,
            copies, files, printer, reader, resolve, syntax, tex, sys.modules[__name__])


# ---------------------------------------------------------------- the key of a result

# The code every result depends on besides the modules a caller names: the real functions (the
# counterexample oracle) and the verdict names.
_ENGINE_MODULES = (functions, verdicts)


def _source(module) -> str:
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return module.__name__


def sources_key(extra_modules=(), *fields) -> str:
    """sha256 of `fields` (a claim's context as written, its id), the engines' sources and SymPy's version."""
    parts = [*fields, sympy.__version__]
    parts += [_source(m) for m in (*_ENGINE_MODULES, *extra_modules)]
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()
