"""The note moves from Python builders to its LaTeX (note.md): where both exist, they say the same thing.

A statement of note.md that still has an old builder of the same id (or, for a
chain a = b = c split into links id-1, id-2, ..., of its group id) is compared
with that builder, exactly: each side of the parsed statement evaluated on the
model of its context (`derivations.semantics.Model`, every node and adjoint
symbol unfolded into the free inputs) against the builder's `claimed`
expression and its truth (SymPy's derivative, or the other writing of an
Equals), at two explicit sizes.  Where a builder checks less than the LaTeX
shows (a chain), it is compared with the links it does check.  The builders
left are the helper lemmas' (the soundness tests' targets); the BPTT lines have
none any more: they live in note.md only, and `derivations.note.step_model`
lowers them for the engines in step symbols and for the code generator.

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
from derivations.semantics import Model
from derivations.statement import dims

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
    if _builder_of(_c) is not None and _c.algorithm is None:     # a whole algorithm is its loop in note.md
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


# ---------------------------------------------------------------- the statements

@dataclass
class Spec:
    """How a builder's statement and the parsed one line up.

    compare: (builder part, parsed claim id, side): "claimed" is the builder's
    right-hand side, "truth" SymPy's value it is checked against.  names: a
    builder symbol -> the file's name, or a function of the model giving the
    value of the quantity it stands for.  sizes: the model's sizes; `builder`
    gives the builder's from them.
    """
    compare: list
    names: dict = field(default_factory=dict)
    sizes: tuple = ()
    builder: object = None


def value(ctx_name):
    """The value, in the free inputs, of the file's quantity `ctx_name` at step 1 (a defined quantity)."""
    def at(model):
        ref = ir.Ref(ctx_name, ir.Time("t") if model.ctx.is_sequence(ctx_name) else None)
        return unfolded(model, model.value(ref, ENV))
    return at


MN = ({"m": 2, "n": 3}, {"m": 3, "n": 2})
N = ({"n": 2}, {"n": 3})
RNN = ({"H": 2, "E": 3, "V": 2}, {"H": 3, "E": 2, "V": 3})
ENV = {"T": 1, "t": 1}          # a context with time is compared at its step t = 1 of T = 1

# Lemma 1 and Corollary 1: the builder's dV is the file's dv (which reads dV := dv).
LEMMA1 = {"dV": "dv"}
# Backward pass, output layer (T := 1): the builder's dS and h are dS_1 and h_1 (an input there;
# the builder's `defined` h = h_t is not applied: the file's context does not define h_t).
OUTPUT_LAYER = {"dS": "dS_1", "h": "h_1"}
# Backward pass, hidden layer (T := 1): X_1, h_0 and the given gradient dh_1.
HIDDEN_LAYER = {"X": "X_1", "h_prev": "h_0", "dh": "dh_1"}

SPECS = {
    # ---- Forward pass
    # ---- Definition 1 (the builder's claimed side is the file's left-hand side)
    "def1": Spec([("claimed", "def1", "lhs"), ("truth", "def1", "rhs")], {}, N),
    # ---- Lemma 1
    "lemma1-dh": Spec([("claimed", "lemma1-dh-2", "rhs"), ("truth", "lemma1-dh-2", "lhs"),
                       ("truth", "lemma1-dh-1", "lhs"), ("truth", "lemma1-dh-1", "rhs")], LEMMA1, MN),
    # The builder's Z is free; the file's Z is W h: Z maps to that value.
    "lemma1-dz-corrected": Spec([("claimed", "lemma1-dz-corrected-2", "rhs"),
                                 ("truth", "lemma1-dz-corrected-2", "lhs"),
                                 ("truth", "lemma1-dz-corrected-1", "lhs")], {**LEMMA1, "Z": value("Z")}, MN),
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
    "eq15": Spec([("claimed", "eq15", "rhs"), ("truth", "eq15", "lhs")], HIDDEN_LAYER, RNN),
    "eq16": Spec([("claimed", "eq16", "rhs"), ("truth", "eq16", "lhs")], HIDDEN_LAYER, RNN),
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


def _model(ctx, sizes) -> Model:
    return Model(ctx, sizes, 1 if ctx.has_time else None)


@pytest.mark.parametrize("bid", sorted(PAIRS))
def test_a_parsed_statement_says_what_its_builder_says(bid):
    spec, builder = SPECS[bid], BUILDERS[bid]
    for sizes in spec.sizes:
        bsizes = spec.builder(sizes) if spec.builder else sizes
        for st in _statements(builder, bsizes):
            for part, cid, side in spec.compare:
                ctx, claim = PARSED[cid]
                model = _model(ctx, sizes)
                parsed = unfolded(model, model.evaluate(getattr(claim, side), ENV))
                built = renamed(_part(st, part), spec.names, model)
                assert_same(built, parsed, f"{bid} {part} against {cid} {side} at {sizes} {st.where}")


# Links of a chain that the builder does not state at all (it checks the chain's ends only).
NOT_STATED = {
    # ∂V/∂h · ∂ℓ/∂V = ∂Z/∂h · ∂V/∂Z · ∂ℓ/∂V: the builder states ∂ℓ/∂h = W^T diag(f'(Wh)) dV (links 1 and 3).
    "lemma1-chain-2",
}


def test_every_statement_with_a_builder_is_compared():
    """The pairs are computed from note.md and the registry: each one has a comparison, and no other."""
    assert set(SPECS) == set(PAIRS)
    for bid, spec in SPECS.items():
        assert {cid for _, cid, _ in spec.compare} <= set(PAIRS[bid]), bid
    # A builder is compared with every link of its chain.
    unchecked = {cid for bid, spec in SPECS.items() for cid in PAIRS[bid]} - \
        {cid for spec in SPECS.values() for _, cid, _ in spec.compare}
    assert unchecked == NOT_STATED, unchecked


def test_no_builder_is_left_for_a_line_of_the_algorithm():
    """The BPTT lines exist only as note.md writes them: no registered builder updates a step quantity."""
    assert [c.id for c in BUILDERS.values() if c.lhs is not None] == []
    for cid in ("bptt-dh", "bptt-dW_hh", "bptt-dh_prev-corrected", "forward-h", "comment2", "stacking"):
        assert cid not in BUILDERS
