"""The note's RNN as SymPy matrix symbols, and the softmax cross-entropy at explicit sizes.

The forward pass's statements are read from note.md; these are the symbols the helper lemmas' builders
and the tests' made-up claims are written in."""
import sympy as sp


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
