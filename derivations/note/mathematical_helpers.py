"""Section 4 of the note: Mathematical Helpers (Definition 1, Lemmas 1-2, Corollaries 1-2).

Lemma 1 and 2 are stated for a generic element-wise f; its derivative is the
undefined function fp, so SymPy's chain rule writes f'(z) as fp(z).  The loss
is seen through the known upstream gradient dV (or dS): for any loss l(V),
dl/dh = (dV/dh) dl/dV, so differentiating <dV, V> with dV held fixed gives
exactly the backward rule a lemma claims.
"""
import sympy as sp

from ..functions import diag, elementwise, f, fp, hadamard
from ..registry import CORRECTED, N_SHAPES, claim
from ..statement import Equals, Gradient, Jacobian, Statement

SECTION = "Mathematical helpers"


def lemma1_symbols(d):
    """Lemma 1: W is m×n, h is n, V = f(W h) is m, dV = dl/dV is known."""
    W, h, dV = sp.MatrixSymbol("W", d.m, d.n), sp.MatrixSymbol("h", d.n, 1), sp.MatrixSymbol("dV", d.m, 1)
    return W, h, dV, dV.T * elementwise(f, W * h)


def lemma2_symbols(d):
    """Lemma 2: U, V, S are vectors of size n, S = U∘f(V), dS = dl/dS is known."""
    U, V, dS = (sp.MatrixSymbol(name, d.n, 1) for name in ("U", "V", "dS"))
    return U, V, dS, dS.T * hadamard(U, elementwise(f, V))


# ------------------------------------------------------------------ Definition 1

@claim("def1", "Definition 1", r"\operatorname{diag}(u) \cdot v = u \circ v",
       section=SECTION, shapes=N_SHAPES)
def definition_1(d):
    u, v = sp.MatrixSymbol("u", d.n, 1), sp.MatrixSymbol("v", d.n, 1)
    return Statement(diag(u) * v, Equals(hadamard(u, v)))


# ------------------------------------------------------------------ Lemma 1

@claim("lemma1-dh", "Lemma 1 (1): dh",
       r"dh = \frac{\partial \ell}{\partial h} = W^{\mathsf T} \cdot (f'(W \cdot h) \circ dv)",
       section=SECTION, relies_on=("lemma1-jacobian-Wh", "lemma1-jacobian-f", "def1"))
def lemma1_dh(d):
    W, h, dV, loss = lemma1_symbols(d)
    return Statement(W.T * hadamard(elementwise(fp, W * h), dV), Gradient(loss, h))


@claim("lemma1-dz-corrected", "Lemma 1: dZ (corrected)",
       r"dZ = \frac{\partial \ell}{\partial Z} = f'(Z) \circ dv,\quad Z = W h",
       section=SECTION, kind=CORRECTED, corrects="lemma1-dz")
def lemma1_dz(d):
    Z, dV = sp.MatrixSymbol("Z", d.m, 1), sp.MatrixSymbol("dV", d.m, 1)
    return Statement(hadamard(elementwise(fp, Z), dV), Gradient(dV.T * elementwise(f, Z), Z))


@claim("lemma1-dW-corrected", "Lemma 1 (2): dW (corrected, as in the proof's last line)",
       r"dW = (f'(W \cdot h) \circ dv) \cdot h^{\mathsf T}",
       section=SECTION, kind=CORRECTED, corrects="lemma1-dW", relies_on=("lemma1-rows",))
def lemma1_dW(d):
    W, h, dV, loss = lemma1_symbols(d)
    return Statement(hadamard(elementwise(fp, W * h), dV) * h.T, Gradient(loss, W))


@claim("lemma1-chain", "Lemma 1 proof: chain rule",
       r"\frac{\partial \ell}{\partial h} = \frac{\partial W h}{\partial h} \cdot "
       r"\operatorname{diag}(f'(Z)) \cdot dV",
       section=SECTION, relies_on=("lemma1-jacobian-Wh", "lemma1-jacobian-f"))
def lemma1_chain(d):
    W, h, dV, loss = lemma1_symbols(d)
    return Statement(W.T * diag(elementwise(fp, W * h)) * dV, Gradient(loss, h))


@claim("lemma1-jacobian-f", "Lemma 1 proof: ∂f(Z)/∂Z = diag(f'(Z))",
       r"\frac{\partial f(Z)}{\partial Z} = \operatorname{diag}(f'(Z))",
       section=SECTION, shapes=N_SHAPES)
def lemma1_jacobian_f(d):
    Z = sp.MatrixSymbol("Z", d.n, 1)
    return Statement(diag(elementwise(fp, Z)), Jacobian(elementwise(f, Z), Z))


# ------------------------------------------------------------------ Corollary 1

@claim("cor1-dh", "Corollary 1 (3): dh = W^T dv",
       r"V = f(Wh) = Wh \Rightarrow dh = W^{\mathsf T} \cdot dv",
       section=SECTION, relies_on=("lemma1-dh", "cor1-fprime"))
def corollary1_dh(d):
    W, h, dV = sp.MatrixSymbol("W", d.m, d.n), sp.MatrixSymbol("h", d.n, 1), sp.MatrixSymbol("dV", d.m, 1)
    return Statement(W.T * dV, Gradient(dV.T * W * h, h))


@claim("cor1-dW", "Corollary 1 (4): dW = dv h^T",
       r"dW = dv \cdot h^{\mathsf T}",
       section=SECTION, relies_on=("lemma1-dW-corrected", "cor1-fprime"))
def corollary1_dW(d):
    W, h, dV = sp.MatrixSymbol("W", d.m, d.n), sp.MatrixSymbol("h", d.n, 1), sp.MatrixSymbol("dV", d.m, 1)
    return Statement(dV * h.T, Gradient(dV.T * W * h, W))


# ------------------------------------------------------------------ Lemma 2

@claim("lemma2-du", "Lemma 2 (5): du = f(v)∘dS",
       r"S = U \circ f(V) \Rightarrow du = f(v) \circ dS",
       section=SECTION, shapes=N_SHAPES)
def lemma2_du(d):
    U, V, dS, loss = lemma2_symbols(d)
    return Statement(hadamard(elementwise(f, V), dS), Gradient(loss, U))


@claim("lemma2-du-proof-corrected", "Lemma 2 proof: du (corrected)",
       r"du = \frac{\partial S}{\partial u} \cdot \frac{\partial \ell}{\partial S} = "
       r"\operatorname{diag}(f(v)) \cdot dS",
       section=SECTION, shapes=N_SHAPES, kind=CORRECTED, corrects="lemma2-du-proof", relies_on=("def1",))
def lemma2_du_proof(d):
    U, V, dS, loss = lemma2_symbols(d)
    return Statement(diag(elementwise(f, V)) * dS, Gradient(loss, U))


@claim("lemma2-dv-chain", "Lemma 2 proof: dv by the chain rule",
       r"dv = \frac{\partial S}{\partial V} \cdot \frac{\partial \ell}{\partial S} = "
       r"\frac{\partial f}{\partial V} \cdot \frac{\partial S}{\partial f} \cdot \frac{\partial \ell}{\partial S}",
       section=SECTION, shapes=N_SHAPES, relies_on=("lemma1-jacobian-f",),
       comment="With df/dV = diag(f'(V)) and dS/df = diag(U).")
def lemma2_dv_chain(d):
    U, V, dS, loss = lemma2_symbols(d)
    return Statement(diag(elementwise(fp, V)) * diag(U) * dS, Gradient(loss, V))


@claim("lemma2-dv", "Lemma 2 (6): dv = f'(V)∘U∘dS",
       r"dv = f'(V) \circ U \circ dS",
       section=SECTION, shapes=N_SHAPES, relies_on=("lemma2-dv-chain", "def1"))
def lemma2_dv(d):
    U, V, dS, loss = lemma2_symbols(d)
    return Statement(hadamard(elementwise(fp, V), U, dS), Gradient(loss, V))


# ------------------------------------------------------------------ Corollary 2

COROLLARY_2_NOTE = ("The note stops after 'If f(v) = v, then'; the conclusion encoded here is what "
                    "Lemma 2 gives with f' = 1.")


@claim("cor2-du", "Corollary 2: du = v∘dS (f(v) = v)",
       r"f(v) = v \Rightarrow du = v \circ dS", section=SECTION, shapes=N_SHAPES,
       relies_on=("lemma2-du",), comment=COROLLARY_2_NOTE)
def corollary2_du(d):
    U, V, dS = (sp.MatrixSymbol(name, d.n, 1) for name in ("U", "V", "dS"))
    return Statement(hadamard(V, dS), Gradient(dS.T * hadamard(U, V), U))


@claim("cor2-dv", "Corollary 2: dv = u∘dS (f(v) = v)",
       r"f(v) = v \Rightarrow dv = u \circ dS", section=SECTION, shapes=N_SHAPES,
       relies_on=("lemma2-dv",), comment=COROLLARY_2_NOTE)
def corollary2_dv(d):
    U, V, dS = (sp.MatrixSymbol(name, d.n, 1) for name in ("U", "V", "dS"))
    return Statement(hadamard(U, dS), Gradient(dS.T * hadamard(U, V), V))
