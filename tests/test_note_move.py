"""The note moves from Python builders to its LaTeX (note.md): where both exist, they say the same thing.

A statement of note.md that still has an old builder of the same id (or, for a
chain a = b = c split into links id-1, id-2, ..., of its group id) is compared
with that builder, exactly:

* a line of the BPTT algorithm: the parsed line lowered to the step symbols
  (`derivations.note.step_model`) against the builder's update, both as
  explicit matrices at three sizes -- the difference expands to zero;
* any other statement: each side of the parsed statement evaluated on the
  model of its context (`derivations.semantics.Model`, every node and adjoint
  symbol unfolded into the free inputs) against the builder's `claimed`
  expression and its truth (SymPy's derivative, or the other writing of an
  Equals), at one or two explicit sizes.  Where a builder checks less than the
  LaTeX shows (a chain), it is compared with the links it does check.

The two encodings name the inputs differently (the builder's dV is the file's
dv, h_prev is h_0, X is X_1 at step t = 1, ...); the mapping is written per
section below.  A builder symbol that stands for a quantity the file defines
(Lemma 1's Z is W h there, the softmax's scores S are W_hy h_t) maps to that
quantity's value.  Nothing is compared numerically: every difference must
expand (and, with σ opened as 1/(1 + e^{-x}), cancel) to zero.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
import sympy as sp

from derivations import ir
from derivations.concrete import explicit, truth_of
from derivations.functions import sigma, sigmoid_definition
from derivations.note import step_model
from derivations.runner import load_claims
from derivations.semantics import Model, ShapeMismatch
from derivations.statement import dims
from derivations.unrolled import step_symbols

BUILDERS = load_claims()
DERIVATION = step_model.note_derivation()
PARSED = {c.id: (ctx, c) for ctx in DERIVATION.contexts for c in ctx.claims if c.python is None}


def _builder_of(claim) -> str | None:
    if claim.id in BUILDERS:
        return claim.id
    return claim.group if claim.group in BUILDERS else None


# Every parsed statement that still has a builder: {builder id: [parsed ids]}.
PAIRS: dict = {}
for _cid, (_ctx, _c) in PARSED.items():
    if _builder_of(_c) is not None:
        PAIRS.setdefault(_builder_of(_c), []).append(_cid)


# ---------------------------------------------------------------- exact equality

def _zero(x) -> bool:
    """Exactly zero: expanded, else over one denominator with σ opened as 1/(1 + e^{-x})."""
    x = sp.expand(x)
    if x == 0:
        return True
    x = sp.together(x.replace(sigma, sigmoid_definition))
    return sp.expand(sp.fraction(x)[0]) == 0


def assert_same(a: sp.Matrix, b: sp.Matrix, what: str):
    assert a.shape == b.shape, f"{what}: {a.shape} against {b.shape}"
    assert set(map(str, sp.Matrix(a).free_symbols)) == set(map(str, sp.Matrix(b).free_symbols)), \
        f"{what}: inputs {sorted(map(str, a.free_symbols))} against {sorted(map(str, b.free_symbols))}"
    bad = [(i, j) for i in range(a.rows) for j in range(a.cols) if not _zero(a[i, j] - b[i, j])]
    assert not bad, f"{what}: entries {bad} differ: {a[bad[0]]} against {b[bad[0]]}"


# ---------------------------------------------------------------- the BPTT lines

# Lines the step model lowers and a builder with a left-hand side (the quantity it updates) encodes.
LINES = sorted(cid for cid in PAIRS if BUILDERS[cid].lhs is not None)
LINE_SIZES = ({"H": 2, "E": 3, "V": 2}, {"H": 3, "E": 2, "V": 3}, {"H": 2, "E": 2, "V": 4})
# bptt-dW_hh as written multiplies two H×1 columns: both encodings compose at H = 1 only.
H_ONE = ({"H": 1, "E": 2, "V": 3}, {"H": 1, "E": 3, "V": 2})


@pytest.mark.parametrize("cid", LINES)
def test_a_parsed_bptt_line_is_its_builders_update(cid):
    line, builder = step_model.line(cid), BUILDERS[cid]
    assert line.quantity == builder.lhs
    ill_typed = cid == "bptt-dW_hh"
    for sizes in (H_ONE if ill_typed else LINE_SIZES):
        s = step_symbols(dims(**sizes))
        assert_same(explicit(line.build(s)), explicit(builder.build(s)), f"{cid} at {sizes}")
    if ill_typed:
        s = step_symbols(dims(H=2, E=3, V=2))
        for build in (line.build, builder.build):
            with pytest.raises(sp.ShapeError, match="does not compose"):
                build(s)


# ---------------------------------------------------------------- the other statements

@dataclass
class Spec:
    """How a builder's statement and the parsed one line up.

    compare: (builder part, parsed claim id, side): "claimed" is the builder's
    right-hand side, "truth" SymPy's value it is checked against.  names: a
    builder symbol -> the file's name, or a function of the model giving the
    value of the quantity it stands for.  sizes: the model's sizes; `builder`
    gives the builder's from them.  index: the file's index values for the
    builder's k-th statement (a builder returning one statement per target word).
    """
    compare: list
    names: dict = field(default_factory=dict)
    sizes: tuple = ()
    builder: object = None
    index: object = None
    ill_typed: tuple = ()        # sizes where both encodings fail to compose


def value(ctx_name):
    """The value, in the free inputs, of the file's quantity `ctx_name` at step 1 (a defined quantity)."""
    def at(model):
        ref = ir.Ref(ctx_name, ir.Time("t") if model.ctx.is_sequence(ctx_name) else None)
        return unfolded(model, model.value(ref, ENV))
    return at


def stacked_preactivation(model):
    """T_rnn Z_t at t = 1, in the free inputs: [W_xh W_hh] [X_1; h_0]."""
    T_rnn, Z = ir.Ref("T_rnn"), ir.Ref("Z", ir.Time("t"))
    return unfolded(model, model.evaluate(ir.MatMul(T_rnn, Z), ENV))


MN = ({"m": 2, "n": 3}, {"m": 3, "n": 2})
N = ({"n": 2}, {"n": 3})
RNN = ({"H": 2, "E": 3, "V": 2}, {"H": 3, "E": 2, "V": 3})
ENV = {"T": 1, "t": 1}          # a context with time is compared at its step t = 1 of T = 1

# Forward pass: the builder's one step reads X and h_prev; the file's step 1 reads X_1 and h_0.
STEP_ONE = {"X": "X_1", "h_prev": "h_0"}
# Lemma 1 and Corollary 1: the builder's dV is the file's dv (which reads dV := dv).
LEMMA1 = {"dV": "dv"}
# Backward pass, output layer (T := 1): the builder's dS and h are dS_1 and h_1 (an input there;
# the builder's `defined` h = h_t is not applied: the file's context does not define h_t).
OUTPUT_LAYER = {"dS": "dS_1", "h": "h_1"}
# Backward pass, hidden layer (T := 1): X_1, h_0 and the given gradient dh_1.
HIDDEN_LAYER = {"X": "X_1", "h_prev": "h_0", "dh": "dh_1"}

SPECS = {
    # ---- Forward pass
    "forward-h": Spec([("claimed", "forward-h-1", "rhs"), ("claimed", "forward-h-2", "lhs"),
                       ("truth", "forward-h-2", "rhs"), ("claimed", "forward-h-1", "lhs")],
                      STEP_ONE, RNN),
    # ---- Definition 1 (the builder's claimed side is the file's left-hand side)
    "def1": Spec([("claimed", "def1", "lhs"), ("truth", "def1", "rhs")], {}, N),
    # ---- Lemma 1
    "lemma1-dh": Spec([("claimed", "lemma1-dh-2", "rhs"), ("truth", "lemma1-dh-2", "lhs"),
                       ("truth", "lemma1-dh-1", "lhs"), ("truth", "lemma1-dh-1", "rhs")], LEMMA1, MN),
    "lemma1-dz": Spec([("claimed", "lemma1-dz-2", "rhs"), ("truth", "lemma1-dz-2", "lhs"),
                       ("truth", "lemma1-dz-1", "rhs")], LEMMA1, MN),
    # The builder's Z is free; the file's Z is W h: Z maps to that value.
    "lemma1-dz-corrected": Spec([("claimed", "lemma1-dz-corrected-2", "rhs"),
                                 ("truth", "lemma1-dz-corrected-2", "lhs"),
                                 ("truth", "lemma1-dz-corrected-1", "lhs")], {**LEMMA1, "Z": value("Z")}, MN),
    "lemma1-dW": Spec([("claimed", "lemma1-dW-2", "rhs"), ("truth", "lemma1-dW-2", "lhs"),
                       ("truth", "lemma1-dW-1", "lhs")], LEMMA1, ({"m": 1, "n": 2}, {"m": 1, "n": 3}),
                      ill_typed=MN),
    "lemma1-dW-corrected": Spec([("claimed", "lemma1-dW-corrected", "rhs"), ("truth", "lemma1-dW-corrected", "lhs")],
                                LEMMA1, MN),
    # The builder checks link 3 (= link 4's left-hand side) against ∂ℓ/∂h (link 1's left-hand side).
    "lemma1-chain": Spec([("claimed", "lemma1-chain-3", "rhs"), ("claimed", "lemma1-chain-4", "lhs"),
                          ("truth", "lemma1-chain-1", "lhs")], LEMMA1, MN),
    "lemma1-jacobian-f": Spec([("claimed", "lemma1-jacobian-f", "rhs"), ("truth", "lemma1-jacobian-f", "lhs")],
                              {"Z": value("Z")}, ({"m": 2, "n": 3}, {"m": 3, "n": 3}),
                              builder=lambda m: {"n": m["m"]}),
    # ---- Corollary 1
    "cor1-dh": Spec([("claimed", "cor1-dh", "rhs"), ("truth", "cor1-dh", "lhs")], LEMMA1, MN),
    "cor1-dW": Spec([("claimed", "cor1-dW", "rhs"), ("truth", "cor1-dW", "lhs")], LEMMA1, MN),
    # ---- Lemma 2 (the same names U, V, dS in both)
    "lemma2-du": Spec([("claimed", "lemma2-du", "rhs"), ("truth", "lemma2-du", "lhs")], {}, N),
    "lemma2-du-proof": Spec([("claimed", "lemma2-du-proof-2", "rhs"), ("truth", "lemma2-du-proof-1", "lhs"),
                             ("truth", "lemma2-du-proof-1", "rhs")], {}, ({"n": 1},), ill_typed=N),
    "lemma2-du-proof-corrected": Spec([("claimed", "lemma2-du-proof-corrected-2", "rhs"),
                                       ("truth", "lemma2-du-proof-corrected-1", "lhs"),
                                       ("truth", "lemma2-du-proof-corrected-1", "rhs")], {}, N),
    "lemma2-dv-chain": Spec([("claimed", "lemma2-dv-chain-2", "rhs"), ("truth", "lemma2-dv-chain-1", "lhs"),
                             ("truth", "lemma2-dv-chain-1", "rhs")], {}, N),
    "lemma2-dv": Spec([("claimed", "lemma2-dv", "rhs"), ("truth", "lemma2-dv", "lhs")], {}, N),
    # ---- Corollary 2
    "cor2-du": Spec([("claimed", "cor2-du", "rhs"), ("truth", "cor2-du", "lhs")], {}, N),
    "cor2-dv": Spec([("claimed", "cor2-dv", "rhs"), ("truth", "cor2-dv", "lhs")], {}, N),
    # ---- Backward pass
    "eq9": Spec([("claimed", "eq9", "rhs"), ("truth", "eq9", "lhs")], OUTPUT_LAYER, RNN),
    "eq10": Spec([("claimed", "eq10", "rhs"), ("truth", "eq10", "lhs")], OUTPUT_LAYER, RNN),
    "stacking": Spec([("claimed", "stacking", "rhs"), ("truth", "stacking", "lhs")], HIDDEN_LAYER, RNN),
    "stacked-gradient": Spec([("claimed", "stacked-gradient", "rhs"), ("truth", "stacked-gradient", "lhs")],
                             HIDDEN_LAYER, RNN),
    "eq15": Spec([("claimed", "eq15", "rhs"), ("truth", "eq15", "lhs")], HIDDEN_LAYER, RNN),
    "eq16": Spec([("claimed", "eq16", "rhs"), ("truth", "eq16", "lhs")], HIDDEN_LAYER, RNN),
    # ---- BPTT algorithm, the statements that are not updates of a step symbol
    # The builder's scores S are free; the file's S_t is W_hy h_t.  One statement per target word y_t.
    "bptt-dS": Spec([("claimed", "bptt-dS", "rhs"), ("truth", "bptt-dS", "lhs")], {"S": value("S")},
                    ({"H": 1, "E": 1, "V": 2}, {"H": 2, "E": 1, "V": 3}), builder=lambda m: {"V": m["V"]},
                    index=lambda k: {("y", 1): k + 1}),
    # The builder's σ'(Z) for a free Z; the file's argument is T_rnn Z_t.  The builder checks link 1
    # (σ' = σ - σ², against the derivative of 1/(1 + e^{-x})); link 2 spells T_rnn Z_t out as blocks,
    # which the builder does not state: its two sides are the builder's σ(Z) - σ²(Z) at that Z.
    "comment2": Spec([("claimed", "comment2-1", "rhs"), ("truth", "comment2-1", "lhs"),
                      ("claimed", "comment2-2", "lhs"), ("claimed", "comment2-2", "rhs")], {"Z": stacked_preactivation},
                     ({"H": 2, "E": 1, "V": 1}, {"H": 3, "E": 2, "V": 1}), builder=lambda m: {"n": m["H"]}),
}


def unfolded(model: Model, M) -> sp.Matrix:
    """M with every node and adjoint symbol replaced by its definition, until only free inputs are left."""
    M = sp.Matrix(M)
    while True:
        table = {x: model.definitions[x] for x in M.free_symbols if x in model.definitions}
        if not table:
            return M
        M = M.xreplace(table)


_ENTRY = re.compile(r"^(?P<name>[^\[]+)\[(?P<i>\d+)(?:,(?P<j>\d+))?\]$")


def renamed(M: sp.Matrix, names: dict, model: Model) -> sp.Matrix:
    """The builder's entries in the file's names (or in the value of the quantity a symbol stands for)."""
    values = {k: v(model) for k, v in names.items() if callable(v)}
    table = {}
    for x in M.free_symbols:
        m = _ENTRY.match(str(x))
        if m is None or m["name"] not in names:
            continue
        i, j = int(m["i"]), int(m["j"] or 0)
        new = names[m["name"]]
        if callable(new):
            table[x] = values[m["name"]][i, j]
        else:
            table[x] = sp.Symbol(f"{new}[{i}]" if m["j"] is None else f"{new}[{i},{j}]", real=True)
    return M.xreplace(table)


def _statements(builder, sizes):
    built = builder.build(dims(**sizes))
    return built if isinstance(built, list) else [built]


def _part(st, part) -> sp.Matrix:
    return explicit(st.claimed) if part == "claimed" else truth_of(st.truth)


def _model(ctx, sizes, indices=None) -> Model:
    return Model(ctx, sizes, 1 if ctx.has_time else None, indices or {})


OTHERS = sorted(set(PAIRS) - set(LINES))


@pytest.mark.parametrize("bid", OTHERS)
def test_a_parsed_statement_says_what_its_builder_says(bid):
    spec, builder = SPECS[bid], BUILDERS[bid]
    for sizes in spec.sizes:
        bsizes = spec.builder(sizes) if spec.builder else sizes
        for k, st in enumerate(_statements(builder, bsizes)):
            indices = spec.index(k) if spec.index else {}
            for part, cid, side in spec.compare:
                ctx, claim = PARSED[cid]
                model = _model(ctx, sizes, indices)
                parsed = unfolded(model, model.evaluate(getattr(claim, side), ENV))
                built = renamed(_part(st, part), spec.names, model)
                assert_same(built, parsed, f"{bid} {part} against {cid} {side} at {sizes} {st.where}")
    for sizes in spec.ill_typed:
        bsizes = spec.builder(sizes) if spec.builder else sizes
        with pytest.raises(sp.ShapeError):
            _statements(builder, bsizes)
        for part, cid, side in spec.compare:
            if part == "claimed":
                ctx, claim = PARSED[cid]
                with pytest.raises(ShapeMismatch):
                    _model(ctx, sizes).evaluate(getattr(claim, side), ENV)


# Links of a chain that the builder does not state at all (it checks the chain's ends only).
NOT_STATED = {
    # ∂V/∂h · ∂ℓ/∂V = ∂Z/∂h · ∂V/∂Z · ∂ℓ/∂V: the builder states ∂ℓ/∂h = W^T diag(f'(Wh)) dV (links 1 and 3).
    "lemma1-chain-2",
}


def test_every_statement_with_a_builder_is_compared():
    """The pairs are computed from note.md and the registry: each one has a comparison, and no other."""
    assert set(SPECS) == set(OTHERS)
    for bid, spec in SPECS.items():
        assert {cid for _, cid, _ in spec.compare} <= set(PAIRS[bid]), bid
    # A builder is compared with every link of its chain.
    unchecked = {cid for bid, spec in SPECS.items() for cid in PAIRS[bid]} - \
        {cid for spec in SPECS.values() for _, cid, _ in spec.compare}
    assert unchecked == NOT_STATED, unchecked
