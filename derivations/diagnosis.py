"""The BPTT algorithm as a whole, localised: which outputs come out right or wrong, and which line is to blame.

The whole-algorithm claims (`derivations.note.bptt`) say only "the algorithm as
written is ill-typed" and "the corrected one is proved".  This module says what
a reader who runs the note's algorithm actually gets:

* it runs the note's lines (parsed from note.md, read through the same lowering
  as `derivations.note.step_model`: ∂ℓ_t/∂h_t is dh, ∂ℓ_{t+1}/∂W is what the
  later steps passed back, T_rnn Z_t is its definition), evaluated numerically
  at 50 significant digits, from t = T down to 1, for T = 1, 2, 3 at random
  points; the loss is the note's softmax cross-entropy and dS_t comes from the
  note's own ∂ℓ_t/∂S_t line;
* it compares each output (dW_xh, dW_hh, dW_hy, dh_0, every dX_t) with the true
  gradient of the unrolled loss, computed independently by forward-mode
  differentiation (dual numbers through σ(x) = 1/(1 + e^{−x}), softmax and log:
  no backward formula, no σ′ is used);
* it replaces the lines that have a replacement (by default the note's proved
  corrections, `Corrects: <id>`; the source is a parameter) in every
  combination, and blames each wrong output on the lines of the smallest sets
  whose replacement makes it right, with the length T from which each of them
  matters;
* a line that does not type-check (its product does not compose) is also run
  the way NumPy would run code that follows it with 1-D vectors (· of two 1-D
  arrays is np.dot, their inner product; ᵀ of a 1-D array does nothing; a
  scalar added to a matrix is broadcast), to say what such code would silently
  compute and whether that is right.

Everything the report says about the algorithm (`algorithm_diagnosis` in
report.json, the sentence of the headline) is built from these runs.
"""
from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass
from fractions import Fraction
from types import SimpleNamespace

import mpmath
import numpy as np

from . import ir
from .note import step_model
from .note.bptt import AS_WRITTEN_LINES

DIGITS = 50                           # significant digits of every evaluation
TOLERANCE = mpmath.mpf(10) ** -30     # relative: "right" means equal to 30 digits; wrong outputs differ by O(1)
SIZES = {"H": 3, "E": 2, "V": 4}      # all different, none 1: a transpose or a swapped operand cannot pass by shape
LENGTHS = (1, 2, 3)
POINTS = 2                            # random points per length; an output is right when it is right at each
SEED = 20240611
MAX_REPLACED = 3                      # blame sets larger than this (short of all lines) are not searched

DS_LINE = "bptt-dS"
# The algorithm's lines, quantity -> id in note.md, in the order they run within a step (after dS).
LINES = AS_WRITTEN_LINES
ORDER = ("dh", "dW_hy", "dW_xh", "dW_hh", "dX", "dh_prev")
OUTPUTS = ("dW_xh", "dW_hh", "dW_hy", "dh_0", "dX_t")
VECTORS = {"X", "h", "h_prev", "dS", "dh", "dh_next", "P", "onehot"}   # columns: 1-D arrays in the NumPy reading
WEIGHTS = ("W_xh", "W_hh", "W_hy")
RIGHT, WRONG, NOT_COMPUTED = "right", "wrong", "not computed"


class IllTyped(Exception):
    """A product, sum or ∘ whose shapes do not compose (the matrix reading of the line)."""


class Missing(Exception):
    """The line reads a quantity that an earlier ill-typed line did not compute."""


# ---------------------------------------------------------------- evaluating a line numerically

def _mp(x):
    return mpmath.mpf(x.numerator) / x.denominator if isinstance(x, Fraction) else mpmath.mpf(x)


def _sigma(x):
    return 1 / (1 + mpmath.exp(-x))


_SIGMA = np.frompyfunc(_sigma, 1, 1)
_SIGMA_PRIME = np.frompyfunc(lambda x: _sigma(x) * (1 - _sigma(x)), 1, 1)   # σ′ as the note declares it (Comment 2)


def _shape(x) -> str:
    return "×".join(map(str, np.shape(x))) or "scalar"


class Evaluator(step_model.Lowering):
    """A line of the note in the step quantities, evaluated on arrays of 50-digit numbers.

    The matrix reading (numpy_1d False): columns are n×1 arrays and every
    product, sum and ∘ must compose exactly, as in the engines (IllTyped
    otherwise).  The NumPy reading (numpy_1d True): columns are 1-D arrays, ·
    is np.dot, ∘ is *, ᵀ is .T and sums broadcast, as NumPy does; what NumPy
    did that the matrix reading does not allow is recorded in `events`.
    """

    def __init__(self, ctx, values: dict, numpy_1d: bool = False):
        super().__init__(ctx, SimpleNamespace(**values))
        self.values, self.numpy_1d, self.events = values, numpy_1d, []

    def __call__(self, e):
        out = super().__call__(e)       # a derivative is looked up in `values` by the lowering (_Deriv)
        if out is None:
            raise Missing(f"{type(e).__name__} not computed")
        return out

    def _get(self, name):
        value = self.values.get(name)
        if value is None:
            raise Missing(name)
        return value

    def _Ref(self, e: ir.Ref):
        if e == ir.Ref("P", step_model.T):
            return self._get("P")
        table = {("X", step_model.T): "X", ("h", step_model.T): "h", ("h", step_model.PREV): "h_prev",
                 **{(w, None): w for w in WEIGHTS}}
        if (e.name, e.time) in table:
            return self._get(table[(e.name, e.time)])
        return super()._Ref(e)

    def _Basis(self, e: ir.Basis):
        if e.index != ir.Ref("y", step_model.T):
            raise step_model.NotApplicable("a basis column at another index than y_t")
        return self._get("onehot")

    def _Number(self, e: ir.Number):
        return np.array(_mp(e.value), dtype=object)

    def _Add(self, e: ir.Add):
        terms = [self(t) for t in e.terms]
        if self.numpy_1d:
            shapes = {np.shape(t) for t in terms}
            if len(shapes) > 1:
                widest = max(shapes, key=len)
                small = [_shape(t) for t in terms if np.shape(t) != widest]
                big = next(src for t, src in zip(terms, e.terms) if np.shape(t) == widest)
                self.events.append({"what": "broadcast", "shapes": [_shape(t) for t in terms],
                                    "text": f"+ adds the {' and '.join(small)} to every entry of the "
                                            f"{'×'.join(map(str, widest))} {plain(big)}",
                                    "short": "added to every entry" if not widest or len(widest) == 2
                                    else "added to every entry of a vector"})
            out = terms[0]
            for t in terms[1:]:
                out = out + t
            return out
        shapes = [np.shape(t) for t, src in zip(terms, e.terms) if not step_model._literal(src)]
        if len(set(shapes)) > 1:
            raise IllTyped("a sum of " + " and ".join(_shape(t) for t in terms))
        shape = shapes[0] if shapes else ()
        out = None
        for t, src in zip(terms, e.terms):
            x = t * np.ones(shape, dtype=object) if step_model._literal(src) else t
            out = x if out is None else out + x
        return out

    def _MatMul(self, e: ir.MatMul):
        a, b = self(e.left), self(e.right)
        if self.numpy_1d:
            if np.ndim(a) == 1 and np.ndim(b) == 1:
                self.events.append({"what": "inner product", "shapes": [_shape(a), _shape(b)],
                                    "text": f"· of the 1-D arrays {plain(e.left)} and {plain(e.right)} is np.dot, "
                                            "their inner product, a scalar",
                                    "short": "np.dot of two 1-D vectors, a scalar"})
            return np.dot(a, b)
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            return a * b
        if a.shape[1] != b.shape[0]:
            raise IllTyped(f"the product of a {_shape(a)} and a {_shape(b)} matrix does not compose")
        return a.dot(b)

    def _Hadamard(self, e: ir.Hadamard):
        a, b = self(e.left), self(e.right)
        if not self.numpy_1d and np.shape(a) != np.shape(b):
            raise IllTyped(f"∘ of a {_shape(a)} and a {_shape(b)} matrix")
        return a * b

    def _Transpose(self, e: ir.Transpose):
        a = self(e.arg)
        if self.numpy_1d and np.ndim(a) == 1:
            self.events.append({"what": "no-op transpose", "shapes": [_shape(a)],
                                "text": "ᵀ of a 1-D array does nothing", "short": "a transpose that does nothing"})
        return a.T

    def _Power(self, e: ir.Power):
        a = self(e.arg)
        return a ** e.exponent

    def _Apply(self, e: ir.Apply):
        if e.function != "sigma" or e.derivative not in (0, 1):
            raise step_model.NotApplicable(f"the function {e.function}")
        return (_SIGMA if e.derivative == 0 else _SIGMA_PRIME)(self(e.arg))

    def _Block(self, e: ir.Block):
        rows = [[self(x) for x in row] for row in e.rows]
        if len(rows) == 1:
            parts = rows[0]
            if not self.numpy_1d and len({np.shape(p)[0] for p in parts}) > 1:
                raise IllTyped("a block row of blocks with different numbers of rows")
            return np.hstack(parts)
        if all(len(r) == 1 for r in rows):
            parts = [r[0] for r in rows]
            if self.numpy_1d:
                return np.concatenate(parts)
            if len({np.shape(p)[1] for p in parts}) > 1:
                raise IllTyped("a block column of blocks with different numbers of columns")
            return np.vstack(parts)
        return np.block(rows)


# ---------------------------------------------------------------- the lines and their replacements

@dataclass(frozen=True)
class Line:
    """A statement that can stand in the algorithm: from note.md, or a replacement (e.g. a repair)."""
    id: str
    label: str
    latex: str
    ctx: object
    claim: object
    quantity: str

    def evaluate(self, values: dict, numpy_1d: bool = False):
        ev = Evaluator(self.ctx, values, numpy_1d)
        return ev(self.claim.rhs), ev.events


def note_line(claim_id: str) -> Line:
    ctx, claim = step_model._parsed(claim_id)
    quantity = "dS" if claim_id == DS_LINE else step_model.Lowering(ctx, None).lhs(claim.lhs)
    return Line(claim_id, claim.label, claim.source.latex, ctx, claim, quantity)


def as_line(statement, replaces: Line) -> Line:
    """A replacement: a claim id of note.md, an ir.Claim in the replaced line's context, or a Line."""
    if isinstance(statement, Line):
        return statement
    if isinstance(statement, str):
        return note_line(statement)
    if isinstance(statement, ir.Claim):
        quantity = step_model.Lowering(replaces.ctx, None).lhs(statement.lhs)
        latex = statement.source.latex if statement.source is not None else _latex(statement)
        return Line(statement.id, statement.label or statement.id, latex, replaces.ctx, statement, quantity)
    raise TypeError(f"a replacement must be a claim id, an ir.Claim or a Line, not {type(statement).__name__}")


def _latex(claim) -> str:
    from .latex.printer import claim_latex
    return claim_latex(claim.lhs, claim.rhs)


def note_corrections(lines: dict = LINES) -> dict:
    """{line id: the id of its correction} for the algorithm's lines that note.md corrects (`Corrects:`)."""
    wanted = set(lines.values())
    out = {}
    for ctx in step_model.note_derivation().contexts:
        for c in ctx.claims:
            if c.corrects in wanted and c.corrects not in out:
                out[c.corrects] = c.id
    return out


# ---------------------------------------------------------------- the true gradient, by forward-mode differentiation

class Dual:
    """a + b ε with ε² = 0: one directional derivative, exact up to the working precision."""
    __slots__ = ("a", "b")

    def __init__(self, a, b=0):
        self.a, self.b = a, b

    @staticmethod
    def of(x):
        return x if isinstance(x, Dual) else Dual(x, 0)

    def __add__(self, o):
        o = Dual.of(o)
        return Dual(self.a + o.a, self.b + o.b)
    __radd__ = __add__

    def __neg__(self):
        return Dual(-self.a, -self.b)

    def __sub__(self, o):
        return self + (-Dual.of(o))

    def __rsub__(self, o):
        return Dual.of(o) - self

    def __mul__(self, o):
        o = Dual.of(o)
        return Dual(self.a * o.a, self.a * o.b + self.b * o.a)
    __rmul__ = __mul__

    def __truediv__(self, o):
        o = Dual.of(o)
        return Dual(self.a / o.a, (self.b * o.a - self.a * o.b) / (o.a * o.a))

    def __rtruediv__(self, o):
        return Dual.of(o) / self

    def exp(self):
        e = mpmath.exp(self.a)
        return Dual(e, e * self.b)

    def log(self):
        return Dual(mpmath.log(self.a), self.b / self.a)


def _matvec(W, v):
    return [sum((W[i][j] * v[j] for j in range(len(v))), Dual(0)) for i in range(len(W))]


def unrolled_loss(p: dict, T: int):
    """The note's loss of the whole sequence, Σ_t −log softmax(W_hy h_t)[y_t], h_t = 1/(1 + e^{−(W_xh X_t + W_hh h_{t−1})}),
    on nested lists of Duals (written from the forward pass only)."""
    h, total = p["h_0"], Dual(0)
    for t in range(1, T + 1):
        a = [x + y for x, y in zip(_matvec(p["W_xh"], p[f"X_{t}"]), _matvec(p["W_hh"], h))]
        h = [1 / (1 + (-x).exp()) for x in a]
        S = _matvec(p["W_hy"], h)
        Z = sum((s.exp() for s in S), Dual(0))
        total = total - (S[p["y"][t - 1]].exp() / Z).log()
    return total


def true_gradients(point: dict, T: int) -> dict:
    """∂(loss)/∂(each input), one forward pass per coordinate: {name: array shaped like the input}."""
    names = [*WEIGHTS, "h_0", *(f"X_{t}" for t in range(1, T + 1))]
    out = {}
    for name in names:
        shape = point[name].shape
        grad = np.empty(shape, dtype=object)
        for i, j in itertools.product(range(shape[0]), range(shape[1])):
            p = {"y": point["y"]}
            for n in names:
                rows = [[Dual(point[n][r, c], 1 if (n, r, c) == (name, i, j) else 0) for c in range(point[n].shape[1])]
                        for r in range(point[n].shape[0])]
                p[n] = rows if n in WEIGHTS else [row[0] for row in rows]
            grad[i, j] = unrolled_loss(p, T).b
        out[name] = grad
    return out


# ---------------------------------------------------------------- running the algorithm

def random_point(rng: random.Random, T: int, sizes: dict = SIZES) -> dict:
    """Inputs at small exact rationals in [−1, 1] (σ not saturated), targets uniformly among the V words."""
    H, E, V = sizes["H"], sizes["E"], sizes["V"]

    def mat(r, c):
        return np.array([[_mp(Fraction(rng.randint(-12, 12), rng.choice((4, 6, 8, 12)))) for _ in range(c)]
                         for _ in range(r)], dtype=object)
    point = {"W_xh": mat(H, E), "W_hh": mat(H, H), "W_hy": mat(V, H), "h_0": mat(H, 1),
             **{f"X_{t}": mat(E, 1) for t in range(1, T + 1)}}
    point["y"] = [rng.randrange(V) for _ in range(T)]
    return point


def _forward(point: dict, T: int):
    """h_0..h_T and P_1..P_T from the forward pass (σ = 1/(1 + e^{−x}), softmax)."""
    hs, ps = [point["h_0"]], [None]
    for t in range(1, T + 1):
        hs.append(_SIGMA(point["W_xh"].dot(point[f"X_{t}"]) + point["W_hh"].dot(hs[-1])))
        S = point["W_hy"].dot(hs[-1])
        e = np.frompyfunc(mpmath.exp, 1, 1)(S)
        ps.append(e / sum(e.ravel()))
    return hs, ps


def _as_1d(values: dict) -> dict:
    return {k: (v.ravel() if k in VECTORS and v is not None else v) for k, v in values.items()}


def run_algorithm(lines: dict, point: dict, T: int, numpy_reading: frozenset = frozenset()) -> dict:
    """Run the algorithm made of `lines` (quantity -> Line, with "dS") from t = T down to 1.

    As `derivations.unrolled.run_algorithm`: what a step computes is carried to
    the step before as ∂ℓ_{t+1}/∂h_t (dh_prev) and ∂ℓ_{t+1}/∂W (the dW lines).
    A line that does not type-check computes nothing (None, and every line
    reading its output computes nothing), unless its quantity is in
    `numpy_reading`: then it runs as NumPy would run it on 1-D vectors.
    Returns {output: array, or None}, and {quantity: (problem, events)} per line.
    """
    H = SIZES["H"]
    hs, ps = _forward(point, T)
    carried = {"dh_next": np.zeros((H, 1), dtype=object),
               **{f"d{w}_next": np.zeros(point[w].shape, dtype=object) for w in WEIGHTS}}
    out, notes = {}, {}
    for t in range(T, 0, -1):
        onehot = np.zeros((SIZES["V"], 1), dtype=object)
        onehot[point["y"][t - 1], 0] = 1
        values = {"X": point[f"X_{t}"], "h_prev": hs[t - 1], "h": hs[t], "P": ps[t], "onehot": onehot,
                  **{w: point[w] for w in WEIGHTS}, **carried}
        for quantity in ("dS", *ORDER):
            values[quantity] = _step(lines[quantity], values, quantity in numpy_reading, notes)
        out[f"dX_{t}"] = values["dX"]
        carried = {"dh_next": values["dh_prev"], **{f"d{w}_next": values[f"d{w}"] for w in WEIGHTS}}
    out.update({f"d{w}": carried[f"d{w}_next"] for w in WEIGHTS}, dh_0=carried["dh_next"])
    return out, notes


def _step(line: Line, values: dict, numpy_reading: bool, notes: dict):
    want = _quantity_shape(line.quantity, values)
    try:
        value, _ = line.evaluate(values)
    except Missing:
        return None
    except IllTyped as e:
        notes.setdefault(line.quantity, {"problem": str(e)})
        if not numpy_reading:
            return None
        try:
            value, events = line.evaluate(_as_1d(values), numpy_1d=True)
        except Missing:
            return None
        except (ValueError, TypeError) as error:       # NumPy itself refuses the operation
            notes[line.quantity].update(numpy_error=str(error))
            return None
        notes[line.quantity].setdefault("events", events)
        notes[line.quantity].setdefault("numpy_shape", _shape(value))
        if np.ndim(value) == 1 and len(want) == 2 and want[1] == 1:
            value = value.reshape(want)
        if np.ndim(value) == 0:
            value = value * np.ones(want, dtype=object)       # a scalar where a matrix is wanted: NumPy broadcasts it
        return value if np.shape(value) == want else None
    if np.shape(value) != want:
        notes.setdefault(line.quantity, {"problem": f"it gives a {_shape(value)} matrix where {line.quantity} is "
                                                    f"{'×'.join(map(str, want))}"})
        return None
    return value


def _quantity_shape(quantity: str, values: dict) -> tuple:
    of = {"dS": "P", "dh": "h", "dh_prev": "h_prev", "dX": "X", **{f"d{w}": w for w in WEIGHTS}}
    return np.shape(values[of[quantity]])


def _status(got, truth) -> tuple[str, float | None]:
    if got is None:
        return NOT_COMPUTED, None
    scale = max(max(abs(x) for x in truth.ravel()), mpmath.mpf(1) / 10 ** 6)
    diff = max(abs(a - b) for a, b in zip(got.ravel(), truth.ravel())) / scale
    return (RIGHT if diff <= TOLERANCE else WRONG), float(diff)


def classify(outputs: dict, truths: dict, T: int) -> dict:
    """{output name (dW_xh, ..., dh_0, dX_1, ...): (status, relative difference)}."""
    truth_of = {"dW_xh": "W_xh", "dW_hh": "W_hh", "dW_hy": "W_hy", "dh_0": "h_0",
                **{f"dX_{t}": f"X_{t}" for t in range(1, T + 1)}}
    return {name: _status(outputs[name], truths[src]) for name, src in truth_of.items()}


# ---------------------------------------------------------------- the diagnosis

def _worst(statuses) -> str:
    statuses = list(statuses)
    for s in (NOT_COMPUTED, WRONG):
        if s in statuses:
            return s
    return RIGHT


def diagnose(replacements: dict | None = None, lengths=LENGTHS, points: int = POINTS, seed: int = SEED) -> dict:
    """The whole algorithm as written, localised (the `algorithm_diagnosis` of report.json).

    `replacements`: {line id: replacement statement} (a note.md claim id, an
    ir.Claim or a Line); default: the note's corrections (`note_corrections`).
    The caller passes only proved ones.
    """
    with mpmath.workdps(DIGITS):
        return _diagnose(replacements, lengths, points, seed)


def _diagnose(replacements, lengths, points, seed) -> dict:
    start = time.perf_counter()
    base = {q: note_line(cid) for q, cid in LINES.items()}
    base["dS"] = note_line(DS_LINE)
    if replacements is None:
        replacements = note_corrections()
    by_id = {line.id: q for q, line in base.items()}
    unknown = [cid for cid in replacements if cid not in by_id]
    if unknown:
        raise ValueError(f"replacements for lines that are not the algorithm's: {unknown}")
    fixes = {cid: as_line(stmt, base[by_id[cid]]) for cid, stmt in replacements.items()}
    for cid, fix in fixes.items():
        if fix.quantity != base[by_id[cid]].quantity:
            raise ValueError(f"the replacement {fix.id} of {cid} computes {fix.quantity}, "
                             f"not {base[by_id[cid]].quantity}")
    candidates = [base[q].id for q in ("dS", *ORDER) if base[q].id in fixes]

    rng = random.Random(seed)
    cases = [(T, random_point(rng, T)) for T in lengths for _ in range(points)]
    truths = [true_gradients(point, T) for T, point in cases]

    def lines_with(replaced) -> dict:
        return {q: (fixes[line.id] if line.id in replaced else line) for q, line in base.items()}

    runs, problems = {}, {}
    # Every combination of replacements up to MAX_REPLACED lines at once, and all of them together.
    for k in sorted({*range(min(len(candidates), MAX_REPLACED) + 1), len(candidates)}):
        for subset in itertools.combinations(candidates, k):
            per_case = []
            for (T, point), truth in zip(cases, truths):
                outputs, notes = run_algorithm(lines_with(subset), point, T)
                per_case.append((T, classify(outputs, truth, T)))
                for q, note in notes.items():
                    problems.setdefault(lines_with(subset)[q].id, note["problem"])
            runs[frozenset(subset)] = per_case

    outputs = {name: _output(name, runs, candidates, lengths) for name in OUTPUTS}
    lines_view = _lines_view(base, fixes, problems, candidates)
    readings = _numpy_readings(base, fixes, problems, cases, truths, candidates)
    everything = frozenset(candidates)
    all_right = all(s == RIGHT for _, statuses in runs[everything] for s, _ in statuses.values())
    result = {
        "sizes": dict(SIZES), "lengths": list(lengths), "points_per_length": points, "digits": DIGITS,
        "tolerance": f"1e-{-int(mpmath.log10(TOLERANCE))}",
        "truth": "forward-mode derivative (dual numbers) of the unrolled softmax cross-entropy loss, "
                 "σ(x) = 1/(1 + e^{−x}); no backward formula",
        "outputs": outputs,
        "lines": lines_view,
        "replacements": [{"line": cid, "replacement": fixes[cid].id, "label": fixes[cid].label,
                          "latex": fixes[cid].latex, "change": describe_change(base[by_id[cid]], fixes[cid])}
                         for cid in candidates],
        "all_replaced_right": all_right,
        "numpy_readings": readings,
    }
    result["sentence"] = sentence(result)
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def _statuses(per_case, name: str) -> dict:
    """{T: worst status of `name` over the points at T}; dX_t: over every step, with the wrong steps."""
    by_T: dict = {}
    for T, statuses in per_case:
        if name == "dX_t":
            picked = {k: s for k, (s, _) in statuses.items() if k.startswith("dX_")}
        else:
            picked = {name: statuses[name][0]}
        by_T.setdefault(T, []).append(picked)
    out = {}
    for T, dicts in by_T.items():
        steps = {k: _worst(d[k] for d in dicts) for k in dicts[0]}
        out[T] = {"status": _worst(steps.values()),
                  "steps": sorted(int(k[3:]) for k, s in steps.items() if s != RIGHT) if name == "dX_t" else None}
    return out


def _first_bad(by_T: dict):
    return min((T for T, v in by_T.items() if v["status"] != RIGHT), default=None)


def _output(name: str, runs: dict, candidates: list, lengths) -> dict:
    as_written = _statuses(runs[frozenset()], name)
    first = _first_bad(as_written)
    fixing = [s for s, per_case in runs.items() if _first_bad(_statuses(per_case, name)) is None]
    minimal = [s for s in fixing if not any(o < s for o in fixing)]
    blamed = [c for c in candidates if any(c in s for s in minimal)]
    blame = []
    for line in blamed:
        smallest = min((s for s in minimal if line in s), key=len)
        without = _statuses(runs[smallest - {line}], name)
        blame.append({"line": line, "from_T": _first_bad(without),
                      "status": _worst(v["status"] for v in without.values())})
    statuses = {v["status"] for v in as_written.values()}
    entry = {
        "output": name,
        "as_written": NOT_COMPUTED if NOT_COMPUTED in statuses else (WRONG if WRONG in statuses else RIGHT),
        "wrong_from_T": first,
        "by_T": {str(T): v["status"] for T, v in sorted(as_written.items())},
        "blame": blame,
        "fixed_by": [sorted(s, key=candidates.index) for s in sorted(minimal, key=len)] if first else [],
        "fixed": bool(fixing) or first is None,
    }
    if name == "dX_t":
        entry["wrong_steps"] = {str(T): v["steps"] for T, v in sorted(as_written.items())}
        entry["steps_pattern"] = _steps_pattern(as_written)
    return entry


def _steps_pattern(by_T: dict) -> str | None:
    """'t < T' when exactly the steps before the last are wrong at every length; 'every t'; else None."""
    if all(v["steps"] == list(range(1, T)) for T, v in by_T.items()) and any(v["steps"] for v in by_T.values()):
        return "t < T"
    if all(v["steps"] == list(range(1, T + 1)) for T, v in by_T.items()):
        return "every t"
    return None


def _lines_view(base: dict, fixes: dict, problems: dict, candidates: list) -> list:
    out = []
    for q in ("dS", *ORDER):
        line = base[q]
        out.append({"id": line.id, "quantity": q, "name": line_name(line), "label": line.label,
                    "type_checks": line.id not in problems, "problem": problems.get(line.id),
                    "replaced_by": fixes[line.id].id if line.id in fixes else None})
    return out


def _numpy_readings(base, fixes, problems, cases, truths, candidates) -> list:
    """Each algorithm line that does not type-check, run as NumPy runs it on 1-D vectors: with the other
    lines as written, and with the other lines replaced."""
    out = []
    for q in ORDER:
        line = base[q]
        if line.id not in problems:
            continue
        reading = {"line": line.id, "name": line_name(line), "quantity": q, "problem": problems[line.id],
                   "runs": []}
        others = [c for c in candidates if c != line.id]
        for label, replaced in (("others as written", ()), ("others replaced", tuple(others))):
            if label == "others replaced" and not others:
                continue
            lines = {k: (fixes[v.id] if v.id in replaced else v) for k, v in base.items()}
            per_case, events, shape, error = [], [], None, None
            for (T, point), truth in zip(cases, truths):
                outputs, notes = run_algorithm(lines, point, T, numpy_reading=frozenset({q}))
                per_case.append((T, classify(outputs, truth, T)))
                note = notes.get(q, {})
                events = events or note.get("events", [])
                shape = shape or note.get("numpy_shape")
                error = error or note.get("numpy_error")
            outputs = {name: _statuses(per_case, name) for name in OUTPUTS}
            reading["runs"].append({
                "others": label, "replaced": list(replaced),
                "what_numpy_does": [e["text"] for e in _unique(events)],
                "in_short": [e["short"] for e in _unique(events)], "line_gives": shape, "numpy_error": error,
                "outputs": {name: {"as_run": _worst(v["status"] for v in by_T.values()), "wrong_from_T": _first_bad(by_T)}
                            for name, by_T in outputs.items()},
            })
        out.append(reading)
    return out


def _unique(events):
    seen, out = set(), []
    for e in events:
        if e["text"] not in seen:
            seen.add(e["text"])
            out.append(e)
    return out


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
    from .latex.printer import to_latex
    return to_latex(e)


def _operand(e: ir.Expr) -> str:
    """An operand of a product in plain text: a sum (or a negation) in parentheses, (1 − z_{t+1})."""
    return f"({plain(e)})" if isinstance(e, (ir.Add, ir.Neg)) else plain(e)


def line_name(line: Line) -> str:
    """The line by what it computes: 'the ∂ℓ_t/∂h_{t-1} line'."""
    return f"the {plain(line.claim.lhs)} line"


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


def describe_change(line: Line, fix: Line) -> dict:
    """What a reader must change: 'write W_hh^T for W_hh' (from the two right-hand sides' one difference)."""
    from .latex.printer import to_latex
    pair = edit_pair(line.claim.rhs, fix.claim.rhs)
    if pair is None or line.claim.lhs != fix.claim.lhs:
        return {"text": f"write {fix.label}", "old_latex": None, "new_latex": fix.latex}
    old, new = pair
    return {"text": f"write {plain(new)} for {plain(old)}", "old_latex": to_latex(old), "new_latex": to_latex(new)}


def join_words(items: list[str]) -> str:
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _output_text(o: dict) -> str:
    if o["output"] == "dX_t" and o.get("steps_pattern") == "t < T":
        return "dX_t (t < T)"
    return "each dX_t" if o["output"] == "dX_t" else o["output"]


def _from(T) -> str:
    return f"for T ≥ {T}"


def _is(items) -> str:
    return "is" if len(items) == 1 else "are"


def sentence(d: dict) -> str:
    """One sentence, built from the computed data only: which outputs of the note's algorithm come out right
    and wrong, from which T, because of which line, what NumPy code would compute, and what to change."""
    names = {line["id"]: line["name"] for line in d["lines"]}
    outs = [d["outputs"][o] for o in OUTPUTS]
    parts = []
    right = [_output_text(o) for o in outs if o["as_written"] == RIGHT]
    if right:
        parts.append(f"{join_words(right)} {_is(right)} right")
    groups: dict = {}                      # wrong outputs, grouped by the lines to blame
    for o in outs:
        if o["as_written"] == WRONG:
            groups.setdefault(tuple(b["line"] for b in o["blame"]), []).append(o)
    for key, group in groups.items():
        by_from: dict = {}
        for o in group:
            by_from.setdefault(o["wrong_from_T"], []).append(_output_text(o))
        clauses = [f"{join_words(items)} {_is(items)} wrong {_from(T)}" for T, items in sorted(by_from.items())]
        because = (f", because of {join_words([names[k] for k in key])}" if key
                   else " (no replacement makes it right)" if d["replacements"]
                   else " (no proved replacement was tried, so no line is blamed)")
        parts.append(join_words(clauses) + because)
    for o in outs:
        if o["as_written"] != NOT_COMPUTED:
            continue
        typed = ([names[b["line"]] for b in o["blame"] if b["status"] == NOT_COMPUTED]
                 or [line["name"] for line in d["lines"] if not line["type_checks"]
                     and _output_of(line["quantity"]) == o["output"]] or ["a line"])
        rest = [b for b in o["blame"] if b["status"] == WRONG]
        text = f"{_output_text(o)} is not computed at all, because {join_words(typed)} does not type-check"
        if rest:
            text += (f" (corrected alone, {o['output']} is wrong {_from(min(b['from_T'] for b in rest))} "
                     f"because of {join_words([names[b['line']] for b in rest])})")
        parts.append(text)
    for r in d["numpy_readings"]:
        runs = {run["others"]: run for run in r["runs"]}
        run = runs.get("others replaced") or runs.get("others as written")
        out = run["outputs"].get(_output_of(r["quantity"])) if run else None
        if not run or not run["what_numpy_does"] or not out:
            continue
        verdict = f"wrong {_from(out['wrong_from_T'])}" if out["as_run"] == WRONG else out["as_run"]
        others = [names[cid] for cid in run["replaced"]]
        with_others = f" even with {join_words(others)} corrected" if others and out["as_run"] == WRONG else ""
        parts.append(f"NumPy code that follows {r['name']} with 1-D vectors would silently compute "
                     f"{', '.join(run['in_short'])}: a {_output_of(r['quantity'])} {verdict}{with_others}")
    blamed = {b["line"] for o in outs for b in o["blame"]}
    changes = [f"{c['change']['text'].removeprefix('write ')} in {names[c['line']]}"
               for c in d["replacements"] if c["line"] in blamed]
    if changes:
        check = ("with these changes every output is right" if d["all_replaced_right"]
                 else "even with these changes some outputs are still wrong")
        lengths = ", ".join(map(str, d["lengths"]))
        parts.append(f"a reader must write {join_words(changes)}: {check} (checked for T = {lengths})")
    return "In the BPTT algorithm as written, " + "; ".join(parts) + "."


def _output_of(quantity: str) -> str:
    return {"dh_prev": "dh_0", "dX": "dX_t"}.get(quantity, quantity)
