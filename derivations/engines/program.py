"""An algorithm's loop run on the explicit model: the check at small sizes and lengths, and its replay.

`derivations.form.algorithm` reads a loop t = T, ..., 1 of updates; this module runs
it as a reader would run it, on the unrolled model of the explicit engine
(`semantics.Model`: every quantity of the forward pass from the free inputs,
with the real functions), and compares every value the loop computes with what
it stands for (dh_t with ∂ℓ/∂h_t, the total dW with ∂ℓ/∂W), each computed by the
model's own differentiation of the loss: no line of the file is used for the truth.

A value the loop reads is taken from what the loop computed (by an earlier line
of the step, or at a later step); where it has computed nothing yet, the loop
starts from zero.  The check is exact at each size and length tried (the
explicit engine's zero test), and a difference is a counterexample that a fresh
model reproduces from the free inputs alone (`replay`).

`prove(ctx, claim)` is the explicit engine for a whole-algorithm claim: it
refutes or finds the loop ill-typed, or says it is right at the sizes tried.
The proof for every T is not here: it is the induction of `algorithm`, over the
verdicts of the loop's lines (`for_every_T`).
"""
from __future__ import annotations

import time

import mpmath
import sympy as sp

from ..form import algorithm, ir
from ..form.semantics import Model, ShapeMismatch
from ..form.shapes import IllTyped, shape_problem
from .explicit import DIGITS, agree, numeric_difference, plan, sample_indices, shrink, where_text
from .verdicts import ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED, EngineDefect, Outcome

METHOD = "concrete"
ALL_T = "all T (algorithm)"
LENGTHS = (1, 2, 3)             # lengths the loop is run at (the lines themselves are checked further)
BUDGET = 4.0                    # seconds after which no new size is started
POINTS = 2                      # random points of the free inputs per size


class NotComputed(Exception):
    """A line could not be run (its product does not compose): what reads its value is not computed."""


def _updates(ctx: ir.Context, alg: ir.Algorithm) -> list:
    """(update, its right-hand side with names that read gradients written out, the nodes it reads)."""
    out = []
    for k, u in enumerate(alg.updates):
        out.append((u, algorithm.inline(ctx, u.rhs), {r.node for r in algorithm.reads(ctx, alg, k)}))
    return out


def run(model: Model, ctx: ir.Context, alg: ir.Algorithm, T: int) -> tuple[dict, dict, dict]:
    """({key: value}, {key: (update index, step)}, failed): the loop run from t = T down to 1.

    key: the target at its step (ir with numbered steps).  A line that does not compose leaves its
    target out (and every line that reads it), recorded in `failed` {update index: reason}."""
    values, where, failed, failed_keys = {}, {}, {}, set()
    lines = _updates(ctx, alg)
    base = type(model).evaluate
    for t in range(T, 0, -1):
        env = {"T": T, alg.var: t}
        for k, (u, rhs, reads) in enumerate(lines):
            def evaluate(e, env, reads=reads, t=t, k=k):
                if e not in reads and isinstance(e, (ir.Ref, ir.Deriv)) and algorithm.is_gradient_name(ctx, e):
                    # Every gradient a line reads is one the loop computes (algorithm.check): one read here
                    # that is not would be taken at its true value, and hide a wrong loop.
                    raise RuntimeError(f"{alg.id}: line {k + 1} reads {e} outside the loop's values (a gap in "
                                       "derivations.form.algorithm.check)")
                if e in reads:
                    key = algorithm.absolute(e, {alg.var: t})
                    if key in values:
                        return values[key]
                    if key in failed_keys:
                        raise NotComputed(key)
                    return model.zeros(e)
                return base(model, e, env)
            model.evaluate = evaluate
            key = algorithm.absolute(u.target, {alg.var: t})
            try:
                value = evaluate(rhs, env)
            except (ShapeMismatch, IllTyped, NotComputed) as e:
                failed.setdefault(k, str(e))
                failed_keys.add(key)
                continue
            finally:
                del model.evaluate
            if u.op == "+=":
                value = values.get(key, sp.zeros(*value.shape)) + value
            values[key] = value
            where[key] = (k, t)
    return values, where, failed


def truth(model: Model, ctx: ir.Context, key: ir.Expr, T: int) -> sp.Matrix:
    """What a value of the loop stands for, by the model's own differentiation."""
    return model.evaluate(key, {"T": T})


def _ill_typed(ctx: ir.Context, alg: ir.Algorithm) -> str | None:
    """A line whose two sides do not have the same shape for every size (the first), or None."""
    for k, u in enumerate(alg.updates, start=1):
        problem = shape_problem(ctx, u.target, u.rhs, "gives a {b} value for a {a} target", "does not compose: {error}")
        if problem is not None:
            return f"line {k} of the loop ({u.claim}) {problem}"
    return None


def _shapes(ctx: ir.Context) -> list[dict]:
    shapes = [s for s in plan(ctx) if s.get("T") in LENGTHS]
    # Where a slip shows first: sizes apart from 1, then the longest sequence.
    return sorted(shapes, key=lambda s: (min([v for k, v in s.items() if k != "T"] or [2]) < 2, -s.get("T", 0)))


def _order(ctx: ir.Context, keys) -> list:
    """Totals first (the algorithm's outputs), then per-step values from step 1 up."""
    def rank(key):
        steps = [r.time.offset for r in ir.refs(key) if r.time is not None and r.time.var is None]
        return (bool(steps), min(steps) if steps else 0)
    return sorted(keys, key=rank)


def prove(ctx: ir.Context, claim: ir.Claim, budget: float | None = None) -> Outcome:
    """The loop run at small sizes and T = 1, 2, 3: refuted (a value it computes differs from what it stands
    for), ill-typed, or right at every size tried (never a proof for every T: see `for_every_T`)."""
    alg = ctx.algorithms[claim.algorithm]
    original, ctx = ctx, shrink(ctx, claim)
    if getattr(ctx, "too_big", None):
        return Outcome(INCONCLUSIVE, METHOD, [], f"the file writes a number that may stand for a declared size, "
                                                 f"so the loop cannot be run at small sizes, and {ctx.too_big} "
                                                 "is too large to run it at")
    replaced = ctx is not original
    ill = _ill_typed(ctx, alg)
    if ill is not None:
        return Outcome(ILL_TYPED, METHOD, [], ill)
    started, tried = time.perf_counter(), []
    budget = BUDGET if budget is None else budget
    for shape in _shapes(ctx):
        if tried and time.perf_counter() - started > budget:
            break
        tried.append(shape)
        T = shape["T"]
        sizes = {k: v for k, v in shape.items() if k != "T"}
        for indices in sample_indices(ctx, sizes, T):
            model = Model(ctx, sizes, T, indices)
            values, where, failed = run(model, ctx, alg, T)
            if failed:
                k, why = min(failed.items())
                return Outcome(ILL_TYPED, METHOD, tried, f"line {k + 1} of the loop ({alg.updates[k].claim}) cannot "
                                                         f"be run at {where_text(shape, None, indices)}: {why}")
            keys = _order(ctx, values)
            # All values at once, as one column (one numeric model for the whole run): the numbers at random
            # points of the free inputs, to DIGITS digits, as the explicit engine's search does.
            flat = [(key, i, j) for key in keys for i in range(values[key].rows) for j in range(values[key].cols)]
            got = sp.Matrix([values[key][i, j] for key, i, j in flat])
            truths = {key: truth(model, ctx, key, T) for key in keys}
            true = sp.Matrix([truths[key][i, j] for key, i, j in flat])
            at = where_text(shape, None, indices)
            cex = numeric_difference(model, true, got, seed=f"{claim.id}|{at}", tries=POINTS + 2,
                                     give_up_after=POINTS)
            if cex is None:
                continue
            from ..form.printer import to_latex
            key, i, j = flat[cex["entry"][0]]
            k, t = where[key]
            cex.update(at=at, shape=dict(shape), t=t, output=to_latex(key), entry=[i, j], line=alg.updates[k].claim,
                       indices=[[name, step, v] for (name, step), v in indices.items()])
            confirm(original, alg, cex)
            return Outcome(REFUTED, METHOD, tried,
                           f"run from t = {T} down to 1 at {at}, the loop computes ${to_latex(key)}$ (last set by "
                           f"line {k + 1}, {alg.updates[k].claim}, at t = {t}) different from what it stands for"
                           + _replaced(replaced), cex)
    lengths = sorted({s["T"] for s in tried})
    return Outcome(PROVED, METHOD, tried,
                   f"run at {len(tried)} sizes (T = {', '.join(map(str, lengths))}; one or two values of each index), "
                   f"every value the loop computes equals what it stands for, to {DIGITS} digits at {POINTS} random "
                   "points each (numbers, not a proof)" + _replaced(replaced))


def _loop_claim(ctx: ir.Context, alg: ir.Algorithm) -> ir.Claim | None:
    """The claim that is the whole loop `alg` (what `prove` shrinks the context for)."""
    return next((c for c in ctx.claims if c.algorithm == alg.id), None)


def _replaced(replaced: bool) -> str:
    return " (declared numbers replaced by small sizes here)" if replaced else ""


def replay(ctx: ir.Context, alg: ir.Algorithm, cex: dict) -> tuple:
    """The computed and the true entry at a counterexample, from a fresh model and the free inputs alone."""
    from ..form.printer import to_latex
    ctx = shrink(ctx, _loop_claim(ctx, alg))
    shape = cex["shape"]
    T = shape["T"]
    indices = {(name, step): v for name, step, v in cex.get("indices", [])}
    model = Model(ctx, {k: v for k, v in shape.items() if k != "T"}, T, indices)
    values, _, _ = run(model, ctx, alg, T)
    (key,) = [k for k in values if to_latex(k) == cex["output"]]
    got, true = values[key], truth(model, ctx, key, T)
    by_name = {str(s): s for s in model.inputs_of([*got, *true])}
    missing = set(by_name) - set(cex["values"])
    if missing:
        raise ValueError(f"the counterexample does not give the free inputs {sorted(missing)}")
    point = {**{s: sp.Integer(0) for s in model.free_symbols()},
             **{by_name[k]: sp.Rational(v) for k, v in cex["values"].items() if k in by_name}}
    numbers = model.forward(point, DIGITS)
    i, j = cex["entry"]
    return model.numeric(got[i, j], numbers), model.numeric(true[i, j], numbers)


def confirm(ctx: ir.Context, alg: ir.Algorithm, cex: dict) -> None:
    """A refutation stands only when a fresh model, from the free inputs alone, finds the values apart."""
    try:
        got, true = replay(ctx, alg, cex)
    except ValueError as e:
        raise EngineDefect(f"{alg.id}: {e}") from None
    with mpmath.workdps(DIGITS):
        if agree(got, true):
            raise EngineDefect(f"{alg.id}: at the reported counterexample the loop's value and the truth agree "
                               f"({mpmath.nstr(got, 15)}) when recomputed from the free inputs")


def for_every_T(alg: ir.Algorithm, results: dict) -> dict:
    """The induction of `derivations.form.algorithm` over the verdicts of the loop's lines: a method entry.

    Proved for every size and every T when every line is proved so (the reader has checked that each
    value a line reads is computed before it, or starts at zero where what it stands for is zero).
    It never refutes: a wrong line makes the whole loop undecided here, and the loop's own run decides."""
    lines = algorithm.line_claims(alg)
    missing = [c for c in lines if c not in results]
    if missing:
        verdict, reason = INCONCLUSIVE, f"the lines {', '.join(missing)} were not checked in this run"
    else:
        open_lines = [f"{c} ({results[c]['verdict']})" for c in lines if results[c]["verdict"] != PROVED]
        if open_lines:
            verdict = INCONCLUSIVE
            reason = ("the induction over the loop needs every line proved for every size and every T; not so: "
                      + ", ".join(open_lines))
        else:
            verdict = PROVED
            reason = ("every line of the loop is proved for every size and every T (" + ", ".join(lines) + "); each "
                      "value a line reads is computed before it (earlier in the step, or at a later step), or is "
                      "zero where the loop starts it at zero: by induction from t = T down to 1, every value the "
                      "loop computes is what it stands for")
    return {"method": ALL_T, "verdict": verdict, "shapes": [], "seconds": 0.0, "reason": reason,
            "counterexample": None}


# ---------------------------------------------------------------- the diagnosis: which outputs, which line

RIGHT, WRONG, NOT_COMPUTED = "right", "wrong", "not computed"
MAX_REPLACED = 3                 # sets of more replaced lines than this are not tried
DIAGNOSIS_POINTS = 2
TOLERANCE = mpmath.mpf(10) ** -30


def _diagnosis_sizes(ctx: ir.Context) -> dict:
    """Sizes all different and none 1 (a transpose or a swapped operand cannot pass by shape)."""
    return {str(s): 2 + k for k, s in enumerate(ctx.sizes())}


def _statuses(ctx, alg, T, sizes, indices, seed) -> dict:
    """{(update index, step): status} of every value the loop should compute, worst over random points."""
    model = Model(ctx, sizes, T, indices)
    values, _, _ = run(model, ctx, alg, T)
    expected = [(k, t, algorithm.absolute(u.target, {alg.var: t})) for k, u in enumerate(alg.updates)
                for t in range(T, 0, -1)]
    # The last line to set a value decides it: a per-step value set again by a later step is judged once.
    last = {}
    for k, t, key in expected:
        last.setdefault(key, (k, t))
    keys = list(last)
    computed = [key for key in keys if key in values]
    exprs = [x for key in computed for pair in zip(values[key], truth(model, ctx, key, T)) for x in pair]
    import random

    from .explicit import rational_point
    rng = random.Random(seed)
    out = {last[key]: NOT_COMPUTED for key in keys if key not in values}
    if not exprs:
        return out
    free, needed = model.inputs_of(exprs), model.needed(exprs)
    status = {key: RIGHT for key in computed}
    for _ in range(DIAGNOSIS_POINTS):
        point = rational_point(free, rng)
        numbers = model.numeric_many(exprs, model.forward(point, DIGITS, only=needed), DIGITS)
        pos = 0
        for key in computed:
            n = values[key].rows * values[key].cols
            with mpmath.workdps(DIGITS):
                for a, b in zip(numbers[pos:pos + 2 * n:2], numbers[pos + 1:pos + 2 * n:2]):
                    if abs(a - b) > TOLERANCE * max(1, abs(a), abs(b)):
                        status[key] = WRONG
            pos += 2 * n
    out.update({last[key]: s for key, s in status.items()})
    return out


def _worst(statuses) -> str:
    statuses = set(statuses)
    return NOT_COMPUTED if NOT_COMPUTED in statuses else WRONG if WRONG in statuses else RIGHT


def diagnose(ctx: ir.Context, alg: ir.Algorithm, replacements: dict, lengths=LENGTHS) -> dict | None:
    """Which values of the loop as written come out right or wrong, from which T, and which lines to blame.

    replacements: {claim id of a line: the Update that replaces it} (the file's proved corrections).  The
    loop is run with every set of up to MAX_REPLACED of them; a wrong output is blamed on the lines of the
    smallest sets whose replacement makes it right at every length.
    """
    import itertools
    started = time.perf_counter()
    ctx = shrink(ctx, _loop_claim(ctx, alg))
    if getattr(ctx, "too_big", None):
        return None                     # the loop cannot be run at small sizes (`shrink`): no diagnosis
    sizes = _diagnosis_sizes(ctx)
    index = {k: u.claim for k, u in enumerate(alg.updates)}
    usable = {cid: u for cid, u in replacements.items()
              if cid in index.values() and u.target == alg.updates[list(index.values()).index(cid)].target}
    candidates = [index[k] for k in sorted(index) if index[k] in usable]
    sets = [frozenset(s) for n in range(min(len(candidates), MAX_REPLACED) + 1)
            for s in itertools.combinations(candidates, n)]
    if len(candidates) > MAX_REPLACED:
        sets.append(frozenset(candidates))
    runs = {}
    for replaced in sets:
        variant = ir.Algorithm(alg.id, alg.label, tuple(usable[u.claim] if u.claim in replaced else u
                                                        for u in alg.updates), alg.source)
        per_T = {}
        for T in lengths:
            indices = next(iter(sample_indices(ctx, sizes, T)), {})
            per_T[T] = _statuses(ctx, variant, T, sizes, indices, seed=f"diagnosis|{alg.id}|{T}")
        runs[replaced] = per_T
    outputs = {}
    for k, u in enumerate(alg.updates):
        name = plain(u.target)

        def by_T(per_T, k=k):
            return {T: _worst(s for (i, _), s in statuses.items() if i == k) for T, statuses in per_T.items()}

        def first_bad(statuses):
            return min((T for T, s in statuses.items() if s != RIGHT), default=None)
        as_written = by_T(runs[frozenset()])
        fixing = [s for s, per_T in runs.items() if first_bad(by_T(per_T)) is None]
        minimal = [s for s in fixing if not any(o < s for o in fixing)]
        blame = []
        for line in [c for c in candidates if any(c in s for s in minimal)]:
            smallest = min((s for s in minimal if line in s), key=len)
            without = by_T(runs[smallest - {line}])
            blame.append({"line": line, "from_T": first_bad(without), "status": _worst(without.values())})
        first = first_bad(as_written)
        wrong_steps = {str(T): sorted(t for (i, t), s in statuses.items() if i == k and s != RIGHT)
                       for T, statuses in runs[frozenset()].items()}
        if alg.var in ir.time_vars(u.target) and _before_last(wrong_steps):
            outputs_pattern = {"steps_pattern": "t < T"}       # wrong at every step but the last
        else:
            outputs_pattern = {}
        outputs[name] = {**outputs_pattern, "output": name, "line": u.claim, "as_written": _worst(as_written.values()),
                         "wrong_from_T": first, "by_T": {str(T): s for T, s in as_written.items()},
                         "blame": blame, "wrong_steps": wrong_steps if alg.var in ir.time_vars(u.target) else None,
                         "fixed_by": [sorted(s, key=candidates.index) for s in sorted(minimal, key=len)] if first else [],
                         "fixed": bool(fixing) or first is None}
    from ..form.printer import to_latex
    changes = []
    for cid in candidates:
        old = alg.updates[list(index.values()).index(cid)]
        pair = edit_pair(old.rhs, usable[cid].rhs)
        added = _added_terms(old.rhs, usable[cid].rhs)
        text = (f"write + {' + '.join(plain(t) for t in added)} after the last term" if added else
                f"write {plain(pair[1])} for {plain(pair[0])}" if pair else "write the corrected line")
        changes.append({"line": cid, "replacement": usable[cid].claim, "label": usable[cid].claim,
                        "latex": usable[cid].source.latex if usable[cid].source else to_latex(usable[cid].rhs),
                        "change": {"text": text, "old_latex": to_latex(pair[0]) if pair else None,
                                   "new_latex": to_latex(pair[1]) if pair else None}})
    every = frozenset(candidates)
    all_right = every in runs and all(s == RIGHT for per in runs[every].values() for s in per.values())
    problems = {u.claim: _type_problem(ctx, u) for u in alg.updates}
    lines = [{"id": u.claim, "quantity": plain(u.target), "name": f"the {plain(u.target)} line",
              "label": u.claim, "type_checks": problems[u.claim] is None, "problem": problems[u.claim],
              "replaced_by": usable[u.claim].claim if u.claim in usable else None} for u in alg.updates]
    d = {"claim": alg.id, "sizes": sizes, "lengths": list(lengths), "points_per_length": DIAGNOSIS_POINTS,
         "digits": DIGITS, "tolerance": "1e-30",
         "truth": "derivative of the unrolled loss by the explicit model (reverse accumulation over the forward "
                  "pass from the free inputs, with the real functions); no line of the file is used",
         "outputs": outputs, "lines": lines, "replacements": changes, "all_replaced_right": all_right}
    d["sentence"] = sentence(d, alg.label)
    d["seconds"] = round(time.perf_counter() - started, 2)
    return d


def _before_last(wrong_steps: dict) -> bool:
    """Is a value wrong exactly at the steps before the last, at every length (and wrong somewhere)?"""
    return any(wrong_steps.values()) and all(steps == list(range(1, int(T))) for T, steps in wrong_steps.items())


def _type_problem(ctx: ir.Context, u: ir.Update) -> str | None:
    """Why a line of the loop does not compose, or None (its value has the shape of what it sets)."""
    return shape_problem(ctx, u.target, u.rhs, "it sets a {a} value to a {b} one")


def _added_terms(old: ir.Expr, new: ir.Expr) -> list:
    """The terms a replacement adds to a line, when it keeps every term of it in order (a missing term)."""
    before = list(old.terms) if isinstance(old, ir.Add) else [old]
    after = list(new.terms) if isinstance(new, ir.Add) else [new]
    if len(after) <= len(before) or after[:len(before)] != before:
        return []
    return after[len(before):]


def sentence(d: dict, label: str) -> str:
    """One sentence from the computed data only: which values come out right and wrong, from which T, why."""
    names = {line["id"]: line["name"] for line in d["lines"]}
    outs = list(d["outputs"].values())
    parts = []
    right = [o["output"] for o in outs if o["as_written"] == RIGHT]
    if right:
        parts.append(f"{join_words(right)} {'is' if len(right) == 1 else 'are'} right")
    groups: dict = {}                 # outputs wrong in the same way, for the same lines
    for o in outs:
        if o["as_written"] != RIGHT:
            key = (o["as_written"], o["wrong_from_T"], tuple(b["line"] for b in o["blame"]))
            groups.setdefault(key, []).append(o["output"])
    for (status, first, blamed_lines), items in groups.items():
        many = len(items) > 1
        what = (f"{'are' if many else 'is'} not computed (a line {'they need' if many else 'it needs'} does not "
                "compose)" if status == NOT_COMPUTED else f"{'are' if many else 'is'} wrong for T ≥ {first}")
        because = f", because of {join_words([names[line] for line in blamed_lines])}" if blamed_lines else ""
        parts.append(f"{join_words(items)} {what}{because}")
    blamed = {b["line"] for o in outs for b in o["blame"]}
    changes = [f"{c['change']['text'].removeprefix('write ')} in {names[c['line']]}"
               for c in d["replacements"] if c["line"] in blamed]
    if changes:
        check = ("with these changes every value is right" if d["all_replaced_right"]
                 else "even with these changes some values are still wrong")
        parts.append(f"a reader must write {join_words(changes)}: {check} (checked for T = "
                     f"{', '.join(map(str, d['lengths']))})")
    return f"In “{label}” as written, " + "; ".join(parts) + "."


# ---------------------------------------------------------------- words

def plain(e: ir.Expr) -> str:
    """An expression in plain text for a sentence and the terminal: W_hh^T, h_{t-1}, ∂ℓ_t/∂h_{t-1}."""
    if isinstance(e, ir.Ref):
        name = {"\\ell": "ℓ"}.get(e.name, e.name)
        if e.time is None:
            return name
        sub = str(e.time)
        return f"{name}_{sub}" if len(sub) == 1 else f"{name}_{{{sub}}}"
    if isinstance(e, ir.Transpose):
        inner = plain(e.arg)
        return (inner if isinstance(e.arg, ir.Ref) else f"({inner})") + "^T"
    if isinstance(e, ir.Deriv):
        return f"∂{plain(e.of)}/∂{plain(e.wrt)}"
    if isinstance(e, ir.MatMul):
        left, right = _operand(e.left), _operand(e.right)
        return f"{left} · {right}" if e.dot else f"{left} {right}"
    if isinstance(e, ir.Hadamard):
        return f"({_operand(e.left)} ∘ {_operand(e.right)})"
    if isinstance(e, ir.Apply):
        fn = {"sigma": "σ"}.get(e.function, e.function) + "′" * e.derivative
        return f"{fn}({plain(e.arg)})"
    if isinstance(e, ir.Add):
        out = plain(e.terms[0])
        for t in e.terms[1:]:
            out += f" − {_operand(t.arg)}" if isinstance(t, ir.Neg) else f" + {plain(t)}"
        return out
    if isinstance(e, ir.Neg):
        return f"−{plain(e.arg)}"
    from ..form.printer import to_latex
    return to_latex(e)


def _operand(e: ir.Expr) -> str:
    """An operand of a product in plain text: a sum (or a negation) in parentheses, (1 − z_{t+1})."""
    return f"({plain(e)})" if isinstance(e, (ir.Add, ir.Neg)) else plain(e)


def edit_pair(a: ir.Expr, b: ir.Expr):
    """The smallest pair of subtrees where `b` differs from `a` (one place), or None when they differ in several."""
    if a == b:
        return None
    ka, kb = a.children(), b.children()
    if type(a) is type(b) and len(ka) == len(kb) and ka and a.rebuild(kb) == b:
        diffs = [(x, y) for x, y in zip(ka, kb) if x != y]
        if len(diffs) == 1:
            return edit_pair(*diffs[0])
    return (a, b)


def join_words(items: list[str]) -> str:
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
