"""Section 2 of the note: Forward Pass, and the softmax cross-entropy gradient."""
import sympy as sp

from ..registry import RNN_SHAPES, V_SHAPES, claim
from ..statement import Equals, Statement

SECTION = "Forward pass"


def rnn_symbols(d):
    """The note's names at sizes H (hidden), E (embedding), V (vocabulary)."""
    return {
        "W_xh": sp.MatrixSymbol("W_xh", d.H, d.E),
        "W_hh": sp.MatrixSymbol("W_hh", d.H, d.H),
        "W_hy": sp.MatrixSymbol("W_hy", d.V, d.H),
        "X": sp.MatrixSymbol("X", d.E, 1),
        "h_prev": sp.MatrixSymbol("h_prev", d.H, 1),
        "h": sp.MatrixSymbol("h", d.H, 1),
        "dS": sp.MatrixSymbol("dS", d.V, 1),
        "dh": sp.MatrixSymbol("dh", d.H, 1),
    }


def one_hot(V, y):
    """1_{y = y_t}: the column with a single 1 at the target's row."""
    return sp.Matrix(V, 1, lambda i, _: 1 if i == y else 0)


def scores(V):
    return sp.Matrix(V, 1, lambda i, _: sp.Symbol(f"S[{i}]", real=True))


def softmax(S):
    """p_t(y) = e^{S_t(y)} / sum_{y'} e^{S_t(y')}."""
    total = sum(sp.exp(s) for s in S)
    return S.applyfunc(lambda s: sp.exp(s) / total)


def cross_entropy(S, y):
    """loss_t = -log p_t(y_t)."""
    return -sp.log(softmax(S)[y])


@claim("embedding", "Forward: X_t = We[w_t]",
       r"W_e = \{\text{hello}: X_1, \text{what}: X_2, \dots\},\quad X_t = W_e^{\mathsf T}\, 1_{w = w_t}",
       section=SECTION, shapes=({"V": 1, "E": 1}, {"V": 2, "E": 3}, {"V": 3, "E": 2}),
       comment="The lookup of a word's embedding is a product with a one-hot column "
               "(row w_t of We); the generated code uses the cheaper row lookup.")
def embedding_lookup(d):
    We = sp.MatrixSymbol("We", d.V, d.E)
    return [Statement(We.T * one_hot(d.V, w), Equals(We[w, :].T), where=f"w_t={w}")
            for w in range(d.V)]


@claim("forward-S", "Forward: S_t",
       r"S_t = W_{hy} h_t = \begin{bmatrix} S_t(y_1) \\ \vdots \\ S_t(y_m) \end{bmatrix}",
       section=SECTION, shapes=RNN_SHAPES,
       comment="Row y of W_hy h_t is the score of word y: sum_j W_hy[y, j] h_t[j].")
def forward_S(d):
    s = rnn_symbols(d)
    rows = sp.Matrix(d.V, 1, lambda y, _: sum(s["W_hy"][y, j] * s["h"][j, 0] for j in range(d.H)))
    return Statement(s["W_hy"] * s["h"], Equals(rows))


@claim("dS-target", "dS_t(y_t)",
       r"dS_t(y_t) = \frac{e^{S_t(y_t)}}{\sum_{y' \in Y} e^{S_t(y')}} - 1 = p_t(y_t) - 1",
       section=SECTION, shapes=V_SHAPES)
def dS_at_target(d):
    S = scores(d.V)
    return [Statement(sp.Matrix([[softmax(S)[y] - 1]]),
                      Equals(sp.Matrix([[sp.diff(cross_entropy(S, y), S[y])]])), where=f"y_t={y}")
            for y in range(d.V)]


@claim("dS-other", "dS_t(y), y ≠ y_t",
       r"dS_t(y) = \frac{e^{S_t(y)}}{\sum_{y' \in Y} e^{S_t(y')}} = p_t(y)",
       section=SECTION, shapes=V_SHAPES)
def dS_elsewhere(d):
    S = scores(d.V)
    return [Statement(sp.Matrix([[softmax(S)[y]]]),
                      Equals(sp.Matrix([[sp.diff(cross_entropy(S, yt), S[y])]])), where=f"y_t={yt}, y={y}")
            for yt in range(d.V) for y in range(d.V) if y != yt]


@claim("dS", "dS_t = p_t - 1_{y=y_t}",
       r"dS_t = \frac{\partial \mathrm{loss}_t}{\partial S_t} = "
       r"\begin{bmatrix} p_t(y_1) \\ \vdots \\ p_t(y_t) - 1 \\ \vdots \\ p_t(y_m) \end{bmatrix} = p_t - 1_{y = y_t}",
       section=SECTION, shapes=V_SHAPES, relies_on=("dS-target", "dS-other"))
def dS_vector(d):
    S = scores(d.V)
    return [Statement(softmax(S) - one_hot(d.V, y), Equals(S.applyfunc(lambda s, y=y: sp.diff(cross_entropy(S, y), s))),
                      where=f"y_t={y}")
            for y in range(d.V)]
