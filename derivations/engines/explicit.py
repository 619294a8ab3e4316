"""Engine "concrete" for claims of a derivation file: exact equality at explicit sizes.

Where it sits: intermediate form -> model at explicit sizes (`semantics.Model`)
-> **this engine** -> verdict with its evidence.

For each size (every size symbol 1; all 2; non-square), sequence length T
(1, 2, 3 for a context with time), value of every index (k_t) and step t, both
sides are evaluated on the model.  Their difference is then:

1. tested for an exact zero with every node value (h_2[0], p_1[1], ...) and
   every function application (σ(a), tanh(a), exp(a), f(a)) taken as an
   independent symbol -- a zero there is a zero at the true values, so it is
   a proof;
2. if not, evaluated at points of the free inputs, every node recomputed
   from its definition with the real functions at 60 digits: a clear
   difference is a counterexample (refuted);
3. if the difference is too small to tell, node symbols are unfolded into
   their definitions one level at a time and step 1 repeated.

A counterexample is always a point of the free inputs only, and `replay`
reproduces it from scratch (a fresh model, nothing shared with the search).
"""
from __future__ import annotations

import dataclasses
import itertools
import random
import time

import mpmath
import sympy as sp

from ..form import ir
from ..form.functions import sigma, sigmoid_definition
from ..form.semantics import Model, ShapeMismatch, index_assignments
from ..form.shapes import IllTyped, Typer, fmt, shape_problem, with_indices
from .verdicts import ILL_TYPED, INCONCLUSIVE, PROVED, REFUTED, EngineDefect, Outcome

METHOD = "concrete"
MAX_UNFOLD = 20
CLEAR = sp.Rational(1, 10)          # a counterexample should differ by at least 10% (relative)
DIGITS = 60


# ---------------------------------------------------------------- which sizes

SMALL = 4            # a declared number above this is replaced by a size of the engine's choosing
AS_DECLARED = 12     # ... unless the file uses such a number as a value: then up to this, the declared sizes


def shrink(ctx: ir.Context, claim: ir.Claim | None = None) -> ir.Context:
    """The context with every declared number above SMALL (W ∈ R^{256×784}) made a size symbol (N256).

    The engine expands matrices entry by entry, so it works at small sizes of its own choosing; equal
    numbers stay equal (one symbol each) and different ones stay different, and a relation the definitions
    and claims need between the declared numbers stays true (W ∈ R^{6×9} multiplying [h; x] with h ∈ R^6,
    x ∈ R^3: N9 is N6 + 3, `_keep_relations`).  The all-sizes engines read the declared numbers as they are.
    A \\mathbf{1} sized by a declared number reads the same table (`shapes.declared_size`).  `claim`: the
    claim worked on (None: every claim of the context), whose numbers decide whether small sizes of our own
    may stand for the declared ones (`_size_like_values`).  Cached per context and claim: the same copy for
    the search and the replay.
    """
    key = (id(ctx), id(claim))
    if key in _SHRUNK and _SHRUNK[key][0] is ctx:
        return _SHRUNK[key][1]
    big = sorted({int(n) for d in ctx.declarations.values() for x in d.shape
                  for n in sp.sympify(x).atoms(sp.Integer) if n > SMALL})
    out = ctx
    if big and _size_like_values(ctx, claim):
        # softmax(0 x) = 1/6 (1 + 0 x) for x ∈ R^6 is true at 6 alone: a claim that may read a declared number
        # as a value is checked at the declared sizes, or not at all (`too_big`), never at sizes of our own.
        if max(big) > AS_DECLARED:
            out = dataclasses.replace(ctx)
            out.too_big = max(big)
        big = []
    if big:
        table = _keep_relations(ctx, {n: ir.size_symbol(f"N{n}") for n in big})
        out = _with_sizes(ctx, table)
        out.replaced = dict(table)
    if len(_SHRUNK) > 64:
        _SHRUNK.clear()
    _SHRUNK[key] = (ctx, out)
    return out


def looking_context(ctx: ir.Context, claim: ir.Claim) -> ir.Context | None:
    """The context a quick look at numbers works in (a difference there only ever skips work, never refutes):
    small sizes of our own where the claim's value reads no size, else the declared sizes (up to AS_DECLARED),
    else None (no look)."""
    small = shrink(ctx, claim)
    if getattr(small, "too_big", None):
        return None
    if small is ctx or _sizes_only_as_sizes(small, claim):
        return small
    return ctx if max(small.replaced) <= AS_DECLARED else None


def _sizes_only_as_sizes(ctx: ir.Context, claim: ir.Claim) -> bool:
    """In index notation at the sizes of `shrink` (N6, N9 symbols), does every size stand only as a range of
    an index, never as a value (Σ_k 1 = N)?  Then an entry that differs at N6 = 2 differs at 6 too: its
    difference is a sum of the same terms.  False where the index form does not apply (unknown: no)."""
    from ..form.indexform import NotApplicable, canonical
    from . import allsizes
    sizes = {x for v in getattr(ctx, "replaced", {}).values() for x in sp.sympify(v).free_symbols}
    floor = allsizes.local_floor(claim, ctx) if ctx.has_time and ctx.length is None else None
    if ctx.has_time and ctx.length is None and floor is None:
        return False
    try:
        ix = allsizes.Entries(ctx, floor)
        for lhs, rhs in allsizes.block_pairs(ix, claim):
            rows, cols = ix.shape(lhs)
            i, j = ix.index("i", rows), ix.index("j", cols)
            if _as_value(canonical(ix.entry(lhs, i, j) - ix.entry(rhs, i, j), ix.ranges), sizes):
                return False
    except (NotApplicable, IllTyped, TypeError, ValueError):
        return False
    return True


def _as_value(e, sizes: set) -> bool:
    """Does a size symbol occur in `e` other than as the bound of a sum?"""
    if isinstance(e, sp.Sum):
        return _as_value(e.function, sizes)
    if e in sizes:
        return True
    return any(_as_value(a, sizes) for a in e.args)


def _size_like_values(ctx: ir.Context, claim: ir.Claim | None = None) -> bool:
    """Does a definition, or the claim (a loop's lines; every claim of the context when None), hold a number
    with a numerator or denominator above SMALL (1/6, 10): a number that may stand for a declared size, so
    that the claim may hold at that size alone?"""
    claims = ctx.claims if claim is None else [claim]
    exprs = [d.expr for d in ctx.definitions.values()] + [x for c in claims for x in (c.lhs, c.rhs) if x is not None]
    for c in claims:
        if c.algorithm and c.algorithm in ctx.algorithms:
            exprs += [x for u in ctx.algorithms[c.algorithm].updates for x in (u.target, u.rhs)]
    return any(isinstance(n, ir.Number) and max(abs(n.value.numerator), n.value.denominator) > SMALL
               for e in exprs for n in e.walk())


def _with_sizes(ctx: ir.Context, table: dict) -> ir.Context:
    """The context with each declared number n of `table` read as table[n]."""
    swap = {sp.Integer(n): v for n, v in table.items()}
    declarations = {name: dataclasses.replace(d, shape=tuple(sp.sympify(x).xreplace(swap) for x in d.shape))
                    for name, d in ctx.declarations.items()}
    out = dataclasses.replace(ctx, declarations=declarations)
    out.replaced = dict(table)
    return out


def _keep_relations(ctx: ir.Context, table: dict) -> dict:
    """The table with the relations between declared numbers that typing the context needs kept: where two
    shapes must be equal (N9 against N6 + 3) and are at the declared numbers, the largest number's symbol is
    solved for (N9 = N6 + 3).  A shape that differs at the declared numbers too is left to fail (ill-typed)."""
    from ..form.shapes import IllTyped
    declared = {v: sp.Integer(n) for n, v in table.items()}
    found: list = []

    class Recording(Typer):
        def eq(self, a, b) -> bool:
            if super().eq(a, b):
                return True
            d = sp.expand(self.res(a) - self.res(b))
            if d.free_symbols and d.free_symbols <= set(declared) and d.xreplace(declared) == 0:
                found.append(d)
                return True
            return False
    for _ in range(4):                                    # a solved relation may let typing go further
        found.clear()
        typer = Recording(_with_sizes(ctx, table))
        for name in ctx.definitions:
            try:
                typer.quantity(name)
            except IllTyped:
                pass
        for c in ctx.claims:
            for side in (c.lhs, c.rhs):
                try:
                    if side is not None:
                        typer.infer(side)
                except IllTyped:
                    pass
        if not found:
            return table
        for d in found:
            d = sp.expand(d.xreplace({x: table[int(n)] for x, n in declared.items() if table[int(n)] != x}))
            symbols = sorted((x for x in d.free_symbols if x in declared), key=lambda x: -int(declared[x]))
            if not symbols:
                continue
            top = symbols[0]
            solved = sp.solve(d, top)
            if len(solved) != 1:
                continue
            n = int(declared[top])
            table = {k: sp.expand(v.xreplace({top: solved[0]})) for k, v in table.items()}
            table[n] = solved[0]
    return table


_SHRUNK: dict = {}


def _replaced_note(ctx: ir.Context) -> str:
    table = getattr(ctx, "replaced", None)
    if not table:
        return ""
    return (" (the declared sizes " + ", ".join(str(n) for n in sorted(table)) + " are replaced by small ones "
            "here: this engine works entry by entry)")


def plan(ctx: ir.Context) -> list[dict]:
    """The sizes (and lengths T) a context is checked at: size 1, square, non-square, all different; T = 1, 2, 3.

    Every two size symbols differ in at least one shape (a line true only when H = V
    must not pass): with three sizes or more, the last shape gives them 1, 2, 3, ...
    """
    names = [str(s) for s in ctx.sizes()]
    ones = {n: 1 for n in names}
    twos = {n: 2 for n in names}
    up = {n: 2 + (k % 2) for k, n in enumerate(names)}
    down = {n: 3 - (k % 2) for k, n in enumerate(names)}
    # 1, 2, 3, ...: every pair apart at the least cost (a larger size costs more in a model through time).
    distinct = {n: 1 + k for k, n in enumerate(names)}
    shapes = []
    for s in (ones, twos, up, down, distinct):
        if s not in shapes:
            shapes.append(s)
    if not ctx.has_time:
        return shapes
    if ctx.length is not None:
        return [{**s, "T": ctx.length} for s in shapes]
    # Through time, each shape costs a model unrolled over T steps: two non-square ones, at T = 2 only
    # ((2, 3, 2, ..) and all different; with two sizes, (2, 3) and (3, 2)).
    out = [{**ones, "T": T} for T in (1, 2, 3)] + [{**twos, "T": T} for T in (1, 2, 3)]
    for s in (up, distinct if len(names) > 2 else down):
        if s not in (ones, twos) and {**s, "T": 2} not in out:
            out.append({**s, "T": 2})
    return out


LONGEST = 6            # every length up to this one is searched for a counterexample
FARTHEST = 12          # and the two just past a claim's reach, up to this one


def reach(claim: ir.Claim) -> int:
    """How far in time a claim looks: the spread of its step offsets (t-1 .. t+2 -> 3) and its constant steps.

    A line true for short sequences can be false for longer ones (a truncated
    backward recurrence is exact up to its horizon); sequences a few steps
    longer than what the line reads are searched for a counterexample.
    """
    offsets, constants = [0], [0]
    for side in (claim.lhs, claim.rhs):
        for node in side.walk():
            times = [node.time] if isinstance(node, ir.Ref) and node.time is not None else []
            times += [node.lo, node.hi] if isinstance(node, ir.Sum) else []
            for at in times:
                if at.var == "t":
                    offsets.append(at.offset)
                elif at.var is None:
                    constants.append(at.offset)
                elif at.var == "T":
                    constants.append(-at.offset)
    return max(max(offsets) - min(offsets), max(constants), _condition_reach(claim))


def _condition_reach(claim: ir.Claim) -> int:
    """The longest sequence at which the claim's conditions between steps can first hold together (1[t = 3]
    1[t = T - 3] at T = 6): the sum of their offsets, at most FARTHEST."""
    total = sum(abs(x.offset) for side in (claim.lhs, claim.rhs) for n in side.walk() if isinstance(n, ir.StepIf)
                for x in (n.left, n.right))
    return min(total, FARTHEST)


def longer_sequences(ctx: ir.Context, claim: ir.Claim) -> list[dict]:
    """Sizes for the numeric search beyond T = 3 (square, 2 per size), up to a few steps past the claim's reach."""
    if not ctx.has_time or ctx.length is not None:
        return []
    twos = {str(n): 2 for n in ctx.sizes()}
    lengths = list(range(4, min(LONGEST, max(4, reach(claim) + 3)) + 1))
    # A line that reads far ahead (dh_{t+8}) is exact until its far step falls inside the sequence: look
    # just past its reach too (T = reach + 1, + 2), up to FARTHEST.
    lengths += [T for T in (reach(claim) + 1, reach(claim) + 2) if LONGEST < T <= FARTHEST]
    # conditions between steps: every length up to where they can first hold together, and one past it
    lengths += [T for T in range(LONGEST + 1, _condition_reach(claim) + 2) if T <= FARTHEST and T not in lengths]
    return [{**twos, "T": T} for T in lengths]


def sample_indices(ctx, sizes, T) -> list[dict]:
    """Two index assignments for a long sequence (all first class, then alternating): a search, not a proof."""
    values = {k if isinstance(k, sp.Symbol) else ir.size_symbol(k): v for k, v in sizes.items()}
    slots = [((name, step), int(sp.sympify(d.shape[0]).xreplace(values))) for name, d in ctx.declarations.items()
             if d.kind == "index" for step in ((range(1, T + 1)) if d.sequence else [None])]
    first = {slot: 1 for slot, _ in slots}
    other = {slot: 1 + k % min(2, n) for k, (slot, n) in enumerate(slots)}
    return [first] + ([other] if other != first else [])


def where_text(shape: dict, t=None, indices=None) -> str:
    parts = [f"{k}={v}" for k, v in shape.items()]
    if t is not None:
        parts.append(f"t={t}")
    for (name, step), v in (indices or {}).items():
        parts.append(f"{name.replace(chr(92), '')}_{step}={v}" if step is not None else f"{name}={v}")
    return ", ".join(parts)


_MODELS: dict = {}


def model_at(ctx, shape: dict, indices: dict) -> Model:
    """One model per context, size, length and index values, shared by the claims of a process."""
    sizes = tuple((k, v) for k, v in shape.items() if k != "T")
    key = (id(ctx), sizes, shape.get("T"), tuple(sorted(indices.items(), key=str)))
    if key not in _MODELS:
        if len(_MODELS) > 256:
            _MODELS.clear()
        _MODELS[key] = (ctx, Model(ctx, dict(sizes), shape.get("T"), dict(indices)))
    return _MODELS[key][1]


# ---------------------------------------------------------------- exact zero

def atomize(exprs):
    """Every function application replaced by a symbol keyed by its (expanded) argument, innermost first.

    The difference is then a rational function of independent symbols; if it
    is zero there, it is zero at the true values of the applications (a proof).
    exp is split first, exp(c1 m1 + c2 m2) = A1^c1 A2^c2 (exact), so that
    SymPy's own exp(2y) and exp(-y) meet exp(y) as one symbol; σ(-x) is written
    1 - σ(x) (exact), so that σ'(-x) meets σ'(x).
    """
    exprs = list(exprs)
    table: dict = {}

    def atom(func, args):
        key = (func, tuple(sp.expand(x) for x in args))
        if key not in table:
            table[key] = sp.Symbol(f"_a{len(table)}", real=True)
        return table[key]

    def split_exp(arg):
        out = sp.Integer(1)
        for term in sp.Add.make_args(sp.expand(arg)):
            coeff, rest = term.as_coeff_Mul()
            out *= sp.exp(coeff) if rest == 1 else atom(sp.exp, (rest,)) ** coeff
        return out

    while True:
        apps = set()
        for e in exprs:
            apps |= {a for a in e.atoms(sp.Function) if not any(arg.atoms(sp.Function) for arg in a.args)}
        apps = {a for a in apps if not (a.func == sp.exp and a.args[0].is_number)}
        if not apps:
            return exprs
        mapping = {a: split_exp(a.args[0]) if a.func == sp.exp else
                   1 - atom(sigma, (-a.args[0],)) if a.func == sigma and sp.expand(a.args[0]).could_extract_minus_sign()
                   else atom(a.func, a.args) for a in apps}
        exprs = [e.xreplace(mapping) for e in exprs]


def exactly_zero(d) -> bool:
    """Exact: expand, then cancel, applications independent; σ as 1/(1+e^-x) only when e^x is present too.

    A binary label (an integer symbol of the model, y \\in \\{0, 1\\}) takes its two values: zero at
    y = 0 and at y = 1, for every value of the other symbols, is zero (so y^2 = y is proved).
    """
    d = sp.sympify(d)
    if d == 0:
        return True
    if _exactly_zero(d):
        return True
    binary = sorted((s for s in d.free_symbols if s.is_integer), key=str)
    if binary and len(binary) <= 4:
        return all(_exactly_zero(d.xreplace(dict(zip(binary, map(sp.Integer, values)))))
                   for values in itertools.product((0, 1), repeat=len(binary)))
    return False


def _exactly_zero(d) -> bool:
    if d == 0:
        return True
    (a,) = atomize([d])
    if not _vanishes_at_a_point(a):
        # Nonzero at one point of its (independent) symbols: not identically zero, no need to expand.
        # (Only a zero needs the exact test below; the point is a shortcut, never a proof.)
        if not (d.has(sigma) and d.has(sp.exp)):
            return False
        # σ and e^x are related (σ(x) = 1/(1 + e^{-x})): clearly nonzero at a point with the real σ is
        # nonzero too.  (Saying "not zero" never proves a line; a refutation still needs its own point.)
        if _clearly_nonzero(d):
            return False
    elif _numerator_vanishes(a):
        return True
    # A statement that sets the opaque σ against its definition needs σ opened; elsewhere opening it
    # would only build towers of exponentials.
    if d.has(sigma) and d.has(sp.exp):
        (b,) = atomize([d.replace(sigma, sigmoid_definition)])
        return _numerator_vanishes(b)
    return False


def _vanishes_at_a_point(a) -> bool:
    """The rational function `a` of independent symbols at a fixed rational point: is it 0 there?

    Exact arithmetic; a point where a denominator vanishes is replaced by the next one.
    """
    symbols = sorted(a.free_symbols, key=str)
    rng = random.Random(len(symbols))
    for _ in range(3):
        point = {s: sp.Rational(rng.randint(-97, 97) or 1, rng.randint(1, 89)) for s in symbols}
        value = a.xreplace(point)
        if value.is_number and value.is_finite:
            return value == 0
    return True                        # no usable point: let the exact test decide


def _clearly_nonzero(d) -> bool:
    """|d| > 1e-20 at one rational point, every function real, at DIGITS digits (False where it has no value)."""
    from ..form.semantics import mp_function
    symbols = sorted(d.free_symbols, key=str)
    point = rational_point(symbols, random.Random(len(symbols) + 1))
    with mpmath.workdps(DIGITS):
        try:
            value = mp_function(symbols, [d], one=True)(*(mpmath.mpf(v.p) / v.q for v in point.values()))
        except (ZeroDivisionError, ValueError, TypeError):
            return False
        return _real_number(value) and abs(value) > mpmath.mpf(10) ** -20


def _numerator_vanishes(a) -> bool:
    """A rational function of independent symbols is zero iff its numerator over one denominator expands to 0.

    (No gcd is needed to decide zero, which is what makes `cancel` slow on softmax terms.)
    """
    a = sp.expand(a)
    if a == 0:
        return True
    numerator, _ = sp.fraction(sp.together(a))
    return sp.expand(numerator) == 0


# ---------------------------------------------------------------- numbers

def rational_point(symbols, rng) -> dict:
    """Small exact inputs (|x| <= 1), so that σ and tanh are not saturated and the sides stay readable;
    a binary label (an integer symbol, y \\in \\{0, 1\\}) is 0 or 1."""
    return {s: sp.Integer(rng.choice([0, 1])) if s.is_integer else
            sp.Rational(rng.choice([-2, -1, 1, 2]), rng.choice([2, 3, 4])) for s in symbols}


def _relative(a, b):
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale != 0 else 0


def show(x) -> str:
    """An exact rational as it is; anything else with 6 significant digits."""
    x = sp.sympify(x)
    if x.is_Rational:
        return str(x)
    return f"{float(x):.6g}"


def numeric_difference(model: Model, lhs: sp.Matrix, rhs: sp.Matrix, seed: str, tries: int = 12,
                       give_up_after: int | None = None):
    """The most convincing point where lhs != rhs: a counterexample dict, or None.

    Points are small exact rationals of the free inputs; every node is
    recomputed from them (`Model.forward`).  `give_up_after`: stop when that
    many points showed no difference at all (a shortcut for true claims).
    """
    rng = random.Random(seed)
    # Only the inputs the two sides depend on are drawn and reported: the point is then the same
    # whatever other claims this process has seen (the shared model's other inputs are set to 0).
    free = model.inputs_of([*lhs, *rhs])
    needed = model.needed([*lhs, *rhs])
    best, equal_points = None, 0
    for _ in range(tries):
        point = rational_point(free, rng)
        values = model.forward(point, DIGITS, only=needed)
        differs = False
        with mpmath.workdps(DIGITS):
            numbers = model.numeric_many([*lhs, *rhs], values, DIGITS)
            if not all(_real_number(x) for x in [*numbers, *values.values()]):
                continue                   # ReLU's kink (1[x > 0] at x = 0), the log of a negative number:
                                           # no counterexample where a function has no real value
            for idx in range(len(lhs)):
                a, b = numbers[idx], numbers[len(lhs) + idx]
                if agree(a, b):
                    continue
                differs = True
                rel = abs(a - b) / max(abs(a), abs(b))
                # A clear counterexample differs by 10% and is not a difference of two tiny numbers.
                if max(abs(a), abs(b)) < mpmath.mpf("1e-3"):
                    rel /= 1000
                if best is None or rel > best[0]:
                    best = (rel, point, idx, a, b)
        if best is not None and best[0] >= CLEAR:
            break
        if not differs:
            equal_points += 1
            if give_up_after is not None and best is None and equal_points >= give_up_after:
                return None
    if best is None:
        return None
    rel, point, idx, a, b = best
    return {
        "values": {str(s): str(v) for s, v in point.items()},
        "entry": [idx // lhs.cols, idx % lhs.cols],
        "claimed": show_mp(b), "truth": show_mp(a),
        "claimed_precise": show_mp(b, 15), "truth_precise": show_mp(a, 15),
        "relative_difference": float(f"{float(rel):.3g}"),
        "clear_margin": bool(rel >= CLEAR),
        "functions": _function_note(lhs, rhs),
    }


def _real_number(x) -> bool:
    """A real number (not NaN, not complex: log of a negative number is complex in mpmath)."""
    if isinstance(x, mpmath.mpc):
        return False
    try:
        return not mpmath.isnan(x)
    except TypeError:
        return True


def show_mp(x, digits: int = 6) -> str:
    """x with `digits` significant digits; within 1e-40 of 0 (20 digits above DIGITS' rounding) it is a zero: 0."""
    if abs(x) < mpmath.mpf(10) ** (20 - DIGITS):
        return "0"
    return f"{float(x):.6g}" if digits == 6 else mpmath.nstr(x, digits)


def _function_note(lhs, rhs) -> dict:
    from ..form.functions import F_INSTANCE, FP_INSTANCE, UserFunction
    from ..form.functions import f as f_generic
    from ..form.functions import fp as fp_generic
    both = sp.Matrix.hstack(lhs, rhs) if lhs.rows == rhs.rows else lhs

    def generic(a):                 # a declared φ is named φ, not f; all share the one instance
        if a.func is f_generic or a.func is fp_generic:
            return "f"
        return a.func.__name__.rstrip("'") if isinstance(a, UserFunction) else None
    out = {}
    for name in sorted({n for a in both.atoms(sp.Function) if (n := generic(a))}):
        out.update({f"{name}(x)": F_INSTANCE, f"{name}'(x)": FP_INSTANCE})
    return out


# ---------------------------------------------------------------- one claim

def both_sides(model: Model, claim: ir.Claim, env: dict):
    return model.evaluate(claim.lhs, env), model.evaluate(claim.rhs, env)


def check_point(model: Model, claim: ir.Claim, env: dict, seed: str, look_first: bool = False):
    """(verdict, detail) of one claim on one model at one step.

    `look_first`: look at numbers before opening any definition (a wrong line is then refuted before its
    definitions are opened, which can explode); the caller asks for it once per claim, as it costs a
    compilation of the model's nodes.
    """
    try:
        lhs, rhs = both_sides(model, claim, env)
    except ShapeMismatch as e:
        return ILL_TYPED, str(e)
    return compare(model, lhs, rhs, seed, look_first)


def compare(model: Model, lhs: sp.Matrix, rhs: sp.Matrix, seed: str, look_first: bool = False):
    """(verdict, detail) of lhs = rhs on one model: an exact zero difference, opening definitions as needed,
    or a point where the two differ (numbers recomputed from the free inputs)."""
    if lhs.shape != rhs.shape:
        return ILL_TYPED, f"the left-hand side is {fmt(lhs.shape)} but the right-hand side is {fmt(rhs.shape)}"
    if any(sp.sympify(x).has(sp.Derivative, sp.Subs) for x in (*lhs, *rhs)):
        # f'' of a generic f (a line that differentiates f' again): no exact form here, numbers only.
        cex = numeric_difference(model, lhs, rhs, seed)
        if cex is not None:
            return REFUTED, cex
        return INCONCLUSIVE, ("the line needs a second derivative of a generic function; no point was found "
                              "where the sides differ")
    sides = {k: (sp.sympify(a), sp.sympify(b)) for k, (a, b) in enumerate(zip(lhs, rhs))}
    pending = [k for k, (a, b) in sides.items() if not exactly_zero(a - b)]
    for round in range(MAX_UNFOLD):
        if not pending:
            return PROVED, None
        if round == 3 or (round == 0 and look_first):
            # Opening definitions gets dearer with every round: first look for numbers that differ
            # (a quick look before the first round, a longer one before the fourth).
            cex = numeric_difference(model, lhs, rhs, seed, give_up_after=1 if round == 0 else 2)
            if cex is not None:
                return REFUTED, cex
        opened = {k: model.unfold_pair(*sides[k]) for k in pending}
        if all(opened[k] == sides[k] for k in pending):
            break                                  # nothing left to open
        sides.update(opened)
        pending = [k for k in pending if not exactly_zero(sides[k][0] - sides[k][1])]
    if not pending:
        return PROVED, None
    cex = numeric_difference(model, lhs, rhs, seed)
    if cex is not None:
        return REFUTED, cex
    return INCONCLUSIVE, "the difference did not reduce to zero and no point was found where the sides differ"


def quick_look(ctx: ir.Context, claim: ir.Claim) -> bool:
    """Do the two sides clearly differ at one rational point of one small shape (sizes apart, T = 2)?

    A shortcut other engines take before opening definitions; a refutation is always `prove`'s.
    """
    ctx = with_indices(ctx, claim)
    ctx = looking_context(ctx, claim)
    if ctx is None:
        return False
    shapes = plan(ctx)
    shape = min(shapes, key=lambda s: (min((v for k, v in s.items() if k != "T"), default=2) < 2,
                                       len({v for k, v in s.items() if k != "T"}) < 2, abs((s.get("T") or 2) - 2)))
    T = shape.get("T")
    indices = next(iter(index_assignments(ctx, {k: v for k, v in shape.items() if k != "T"}, T)), {})
    model = model_at(ctx, shape, indices)
    for t in steps_of(claim, T):
        lhs, rhs = both_sides(model, claim, {"T": T, "t": t})
        if lhs.shape != rhs.shape:
            return False
        cex = numeric_difference(model, lhs, rhs, f"quick|{claim.id}", tries=2, give_up_after=1)
        if cex is not None and cex["clear_margin"]:
            return True
    return False


def symbolic_type(ctx: ir.Context, claim: ir.Claim):
    """None when both sides have the same shape for every size, else the reason."""
    return shape_problem(ctx, claim.lhs, claim.rhs)


def _outside(ctx: ir.Context, claim: ir.Claim, env: dict) -> str:
    """A note when the failing step makes the line read a quantity outside 1..T (zero by the semantics)."""
    T = env.get("T")
    if T is None or any(isinstance(n, ir.StepIf) for side in (claim.lhs, claim.rhs) for n in side.walk()):
        return ""           # (a line with conditions between steps says itself what holds at the ends)
    out = []
    free = {v for v in ir.time_vars(claim.lhs) | ir.time_vars(claim.rhs) if env.get(v) is not None}

    def visit(node):
        if isinstance(node, ir.Sum):
            return             # steps under a sum are the sum's own
        if isinstance(node, ir.MatMul) and any(isinstance(x, ir.StepIf) and not x.holds(env)
                                               for x in (node.left, node.right)):
            return             # read under a condition that does not hold at this step: not read
        if isinstance(node, ir.Ref) and node.time is not None and (node.time.var in free or node.time.var is None):
            step = node.time.at(env)
            outside = step > T or step < 0 or (step == 0 and _initial_name(ctx, node.name) not in ctx.declarations)
            if outside and (node.name, step) not in out:
                out.append((node.name, step))
        for c in node.children():
            visit(c)
    visit(claim.lhs)
    visit(claim.rhs)
    if not out:
        return ""
    names = ", ".join(f"{n}_{s}" for n, s in out)
    return (f" (at this step the line reads {names}, outside the steps 1..{T}: zero by the semantics of a "
            "derivation file; write it one step earlier to state it for every step)")


def _initial_name(ctx: ir.Context, name: str) -> str:
    """h_0 for h, and for dh := ∂L/∂h_t too: dh_0 is the gradient of the declared initial state h_0."""
    d = ctx.definitions.get(name)
    if d is not None and d.notation and isinstance(d.expr.wrt, ir.Ref):
        name = d.expr.wrt.name
    return name + "_0"


def steps_of(claim: ir.Claim, T):
    """The steps t a claim is checked at: every t = 1..T when it mentions t, else once."""
    uses_t = "t" in ir.time_vars(claim.lhs) | ir.time_vars(claim.rhs)
    return list(range(1, T + 1)) if (uses_t and T) else [None]


def prove(ctx: ir.Context, claim: ir.Claim, shapes=None, budget: float | None = None,
          as_declared: bool = False) -> Outcome:
    """The concrete engine's verdict on one claim of a parsed derivation.

    budget: seconds after which no new size is started (the cross-check of a claim another engine has
    proved): the reason then says which sizes and lengths were covered, and no longer sequence is searched.
    Declared numbers above SMALL are replaced by small sizes first (`shrink`), and the reason says so;
    `as_declared`: at the declared sizes themselves.
    """
    ctx = with_indices(ctx, claim)      # a line of entries: at every value of its free entry indices
    original, ctx = ctx, (ctx if as_declared else shrink(ctx, claim))
    if getattr(ctx, "too_big", None):
        return Outcome(INCONCLUSIVE, METHOD, [], f"the file writes a number that may stand for a declared size "
                                                 f"(a value such as 1/n), so this engine, which works entry by "
                                                 f"entry, cannot replace the declared sizes by small ones, and "
                                                 f"{ctx.too_big} is too large to work at")
    if ctx is not original:
        out = prove(ctx, claim, shapes, budget)
        if out.verdict == REFUTED and not _sizes_only_as_sizes(ctx, claim):
            # (1/4) 1ᵀ1 = 3/2 holds at the declared 6 alone: a line whose value may read a size is never
            # refuted at a size of our own -- it is checked at the declared sizes, or left undecided.
            if max(ctx.replaced) <= AS_DECLARED:
                out = prove(original, claim, None, budget, as_declared=True)
                return dataclasses.replace(out, reason=out.reason + " (at the declared sizes: the line's value "
                                                                   "may depend on what a size is)")
            return Outcome(INCONCLUSIVE, METHOD, [], "it differs at small sizes of this engine's own, but its "
                                                     "value may depend on what a size is (a sum of a constant "
                                                     f"over a dimension), and {max(ctx.replaced)} is too large "
                                                     "to work at")
        return dataclasses.replace(out, reason=out.reason + _replaced_note(ctx))
    shapes = shapes or plan(ctx)
    ill = symbolic_type(ctx, claim)
    if ill is not None:
        return _ill_typed(ctx, claim, shapes, ill)
    if budget is not None:
        # A cross-check spends its budget where a slip shows first: sizes apart from 1, a short sequence.
        shapes = sorted(shapes, key=lambda s: (s.get("T", 0) > 2, min([v for k, v in s.items() if k != "T"] or [2]) < 2,
                                               s.get("T", 0), sum(v for k, v in s.items() if k != "T")))
        return _cross_check(ctx, claim, shapes, budget)
    tried, failures, looked, skip = [], [], False, None
    for shape, indices, model, env, where in _points(ctx, claim, shapes):
        if shape not in tried:
            tried.append(shape)
        if model is skip:
            continue                # a failure without a counterexample here: on to the next model
        # One look at numbers per claim, on the first shape with a size above 1 (at size 1 a
        # softmax is constant and many wrong lines hold).
        look = not looked and any(v > 1 for k, v in shape.items() if k != "T")
        looked = looked or look
        try:
            verdict, detail = check_point(model, claim, env, seed=f"{claim.id}|{where}", look_first=look)
        except IllTyped as e:
            verdict, detail = ILL_TYPED, str(e)
        if verdict == PROVED:
            continue
        if verdict == REFUTED:
            failures.append((REFUTED, f"at {where} the two sides differ" + _outside(ctx, claim, env),
                             _located(ctx, claim, detail, shape, indices, env, where)))
            break
        failures.append((verdict, f"at {where}: {detail}", None))
        skip = model
    if not failures:
        found = search_longer(ctx, claim)
        if found is not None:
            shape, cex = found
            tried.append(shape)
            failures.append((REFUTED, f"at {cex['at']} the two sides differ", cex))
    shape_names = [{k: v for k, v in s.items()} for s in tried]
    if not failures:
        longer = longer_sequences(ctx, claim)
        horizon = (f" and every step t of sequences of T ≤ {max(s['T'] for s in tried)} steps; no difference at "
                   f"T = {', '.join(str(s['T']) for s in longer)} (numerically; no proof for every T here)"
                   if longer else " and every step t" if ctx.has_time else "")
        return Outcome(PROVED, METHOD, shape_names, f"exact zero difference at all {len(tried)} sizes" + horizon)
    kind, reason, cex = min(failures, key=lambda x: (ILL_TYPED, REFUTED, INCONCLUSIVE).index(x[0]))
    return Outcome(kind, METHOD, shape_names, reason, cex)


CROSS_CHECK_POINTS = 2       # random points per size and step of a cross-check
# The sizes a cross-check always covers, whatever its budget: the first two in its order are sizes of 2 at
# T = 1 and T = 2 (every step of a short sequence, both of its ends), where an engine's false proof of a
# step t shows (tests/test_recurrence.py breaks the structural engine and counts on it); on a loaded
# machine a budget alone could stop after the first.
CROSS_CHECK_MIN_SIZES = 2


def _cross_check(ctx: ir.Context, claim: ir.Claim, shapes: list, budget: float) -> Outcome:
    """The cross-check of a claim an engine has proved for every size: it looks for a contradiction, numbers
    at random points of the free inputs at each size (every defined quantity recomputed from them, 60
    digits), one or two values of each index, until `budget` seconds have passed.  A difference is a
    counterexample (replayed before it is reported: a conflict with the proof); none is evidence only,
    which the proof does not need (no exact opening of definitions here: that is what made a cross-check
    cost seconds)."""
    started, tried = time.perf_counter(), []
    for shape, indices, model, env, where in _points(ctx, claim, shapes, sample_indices):
        if shape not in tried:
            if len(tried) >= CROSS_CHECK_MIN_SIZES and time.perf_counter() - started > budget:
                break
            tried.append(shape)
        try:
            lhs, rhs = both_sides(model, claim, env)
        except (ShapeMismatch, IllTyped) as e:
            return Outcome(ILL_TYPED, METHOD, tried, f"at {where}: {e}")
        if lhs.shape != rhs.shape:
            return Outcome(ILL_TYPED, METHOD, tried, f"at {where} the left-hand side is {fmt(lhs.shape)} but the "
                                                     f"right-hand side is {fmt(rhs.shape)}")
        cex = numeric_difference(model, lhs, rhs, f"{claim.id}|{where}", tries=CROSS_CHECK_POINTS + 2,
                                 give_up_after=CROSS_CHECK_POINTS)
        if cex is not None:
            return Outcome(REFUTED, METHOD, tried, f"at {where} the two sides differ" + _outside(ctx, claim, env),
                           _located(ctx, claim, cex, shape, indices, env, where))
    lengths = [s["T"] for s in tried if "T" in s]
    every = len(tried) == len(shapes)
    return Outcome(PROVED, METHOD, tried, f"cross-check: no difference at {'all ' if every else ''}{len(tried)} sizes"
                   + (f" (T ≤ {max(lengths)})" if lengths else "") + f", numbers at {CROSS_CHECK_POINTS} random points "
                   "of the free inputs at each" + ("" if every else "; stopped there, at the cross-check budget"))


def _ill_typed(ctx: ir.Context, claim: ir.Claim, shapes: list, ill: str) -> Outcome:
    """Ill-typed for general sizes is the verdict; numbers where the line happens to compose (a size 1)
    are shown beside it, as what code that follows the line would compute there.  Numbers only: no
    exact proof is attempted for a line that is wrong anyway (opening its definitions can explode)."""
    tried = []
    for shape, indices, model, env, where in _points(ctx, claim, shapes):
        if shape not in tried:
            tried.append(shape)
        try:
            lhs, rhs = both_sides(model, claim, env)
        except (ShapeMismatch, IllTyped):
            continue
        if lhs.shape != rhs.shape:
            continue
        cex = numeric_difference(model, lhs, rhs, f"{claim.id}|{where}", tries=8, give_up_after=3)
        if cex is not None:
            return Outcome(ILL_TYPED, METHOD, tried, f"{ill} (where it happens to compose, at {where} "
                                                     "the two sides differ)",
                           _located(ctx, claim, cex, shape, indices, env, where))
    return Outcome(ILL_TYPED, METHOD, tried, ill)


def search_longer(ctx: ir.Context, claim: ir.Claim):
    """(shape, counterexample) on a sequence longer than T = 3, or None: numbers only, replayed before use."""
    for shape, indices, model, env, where in _points(ctx, claim, longer_sequences(ctx, claim), sample_indices):
        lhs, rhs = both_sides(model, claim, env)
        cex = numeric_difference(model, lhs, rhs, f"{claim.id}|{where}", tries=6, give_up_after=2)
        if cex is not None:
            return shape, _located(ctx, claim, cex, shape, indices, env, where)
    return None


def _points(ctx: ir.Context, claim: ir.Claim, shapes, assignments=None):
    """(shape, index values, model, env, where) for every shape, index assignment and step a claim is
    checked at, in that order."""
    for shape in shapes:
        T = shape.get("T")
        sizes = {k: v for k, v in shape.items() if k != "T"}
        for indices in (assignments or index_assignments)(ctx, sizes, T):
            model = model_at(ctx, shape, indices)
            for t in steps_of(claim, T):
                yield shape, indices, model, {"T": T, "t": t}, where_text(shape, t, indices)


def _located(ctx: ir.Context, claim: ir.Claim, cex: dict, shape, indices, env, where) -> dict:
    """A counterexample with where it was found, replayed from the free inputs before it is used."""
    cex.update(at=where, shape=dict(shape), t=env["t"],
               indices=[[name, step, v] for (name, step), v in indices.items()])
    confirm(ctx, claim, cex)
    return cex


# ---------------------------------------------------------------- reproducing a counterexample

def replay(ctx: ir.Context, claim: ir.Claim, cex: dict) -> tuple:
    """Both sides at a counterexample's free inputs, from a fresh model: (lhs entry, rhs entry) as numbers.

    Nothing is shared with the search: the model is rebuilt, every defined
    quantity recomputed from the free inputs with the real functions.
    """
    ctx = with_indices(ctx, claim)      # the values of a line's free entry indices are in cex["indices"]
    shrunk = shrink(ctx, claim)
    # At the engine's own sizes (N6 in the shape), or at the declared ones (a line that reads a size's value).
    if {str(s) for s in shrunk.sizes()} <= set(cex["shape"]):
        ctx = shrunk
    shape, t = cex["shape"], cex.get("t")
    indices = {(name, step): v for name, step, v in cex.get("indices", [])}
    T = shape.get("T")
    model = Model(ctx, {k: v for k, v in shape.items() if k != "T"}, T, indices)
    lhs, rhs = both_sides(model, claim, {"T": T, "t": t})
    by_name = {str(s): s for s in model.inputs_of([*lhs, *rhs])}
    missing = set(by_name) - set(cex["values"])
    extra = set(cex["values"]) - set(by_name)
    if missing or extra:
        raise ValueError(f"the counterexample does not name exactly the free inputs the claim depends on "
                         f"(missing {sorted(missing)}, extra {sorted(extra)})")
    point = {**{s: sp.Integer(0) for s in model.free_symbols()},
             **{by_name[k]: sp.Rational(v) for k, v in cex["values"].items()}}
    values = model.forward(point, DIGITS)
    i, j = cex["entry"]
    return model.numeric(lhs[i, j], values), model.numeric(rhs[i, j], values)


def agree(a, b) -> bool:
    """Two numbers computed at DIGITS digits are the same value (within 1e-30, relative past 1)."""
    return abs(a - b) <= mpmath.mpf(10) ** (-30) * max(1, abs(a), abs(b))


def confirm(ctx: ir.Context, claim: ir.Claim, cex: dict) -> None:
    """A refutation is reported only when a fresh model, from the free inputs alone, finds the sides apart.

    Anything else is a defect of the engine (EngineDefect, exit 2), never a verdict.
    """
    try:
        lhs, rhs = replay(ctx, claim, cex)
    except ValueError as e:
        raise EngineDefect(f"{claim.id}: {e}") from None
    with mpmath.workdps(DIGITS):
        if agree(lhs, rhs):
            raise EngineDefect(f"{claim.id}: at the reported counterexample both sides agree "
                               f"({mpmath.nstr(lhs, 15)}) when recomputed from the free inputs")
