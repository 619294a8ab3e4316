"""Section 5 of the note: Backward Pass - Continue: the builders
of (9), (10), (15), (16) (targets of the soundness tests; the statements themselves are read from note.md).

One step on its own: the gradient dh_t reaching h_t is known, and the loss is
seen through it, l = <dh_t, h_t> with h_t = sigma(W_xh X_t + W_hh h_{t-1}),
or through dS_t for the output layer, l = <dS_t, W_hy h_t>.  The symbol h is
that h_t (`defined`), so a line may write sigma'(a_t) as h∘(1 - h).
"""
from ..functions import block_col, block_row, dot, elementwise, hadamard, sigma, sigma_prime
from ..registry import RNN_SHAPES, claim
from ..statement import Gradient, Statement
from .forward_pass import rnn_symbols

SECTION = "Backward pass"


def hidden_loss(s):
    """<dh_t, h_t>: the loss as one step of the recurrence sees it."""
    return s["dh"].T * elementwise(sigma, s["W_xh"] * s["X"] + s["W_hh"] * s["h_prev"])


def defined(s):
    """h is h_t = sigma(W_xh X_t + W_hh h_{t-1}), never a free vector."""
    return {s["h"]: elementwise(sigma, s["W_xh"] * s["X"] + s["W_hh"] * s["h_prev"])}


def stacked_preactivation(s):
    """T_rnn Z_t: [W_xh W_hh] [X_t; h_{t-1}] (the note's garbled 'T_rnn' is W_rnn = [W_xh W_hh])."""
    return dot(block_row(s["W_xh"], s["W_hh"]), block_col(s["X"], s["h_prev"]))


@claim("eq9", "(9): dh_t = W_hy^T dS_t",
       r"S_t = W_{hy} h_t \Rightarrow dh_t = W_{hy}^{\mathsf T} \cdot dS_t \quad \text{(by 3)}",
       section=SECTION, shapes=RNN_SHAPES, relies_on=("cor1-dh",))
def eq9(d):
    s = rnn_symbols(d)
    return Statement(s["W_hy"].T * s["dS"], Gradient(s["dS"].T * s["W_hy"] * s["h"], s["h"]), defined=defined(s))


@claim("eq10", "(10): dW_hy = dS_t h_t^T",
       r"dW_{hy} = dS_t \cdot h_t^{\mathsf T} \quad \text{(by 4)}",
       section=SECTION, shapes=RNN_SHAPES, relies_on=("cor1-dW",))
def eq10(d):
    s = rnn_symbols(d)
    return Statement(s["dS"] * s["h"].T, Gradient(s["dS"].T * s["W_hy"] * s["h"], s["W_hy"]), defined=defined(s))


@claim("eq15", "(15): dW_xh",
       r"dW_{xh} = (\sigma'(T_{rnn} Z_t) \circ dh_t) \cdot X_t^{\mathsf T}",
       section=SECTION, shapes=RNN_SHAPES, relies_on=("stacked-gradient",))
def eq15(d):
    s = rnn_symbols(d)
    return Statement(hadamard(elementwise(sigma_prime, stacked_preactivation(s)), s["dh"]) * s["X"].T,
                     Gradient(hidden_loss(s), s["W_xh"]), defined=defined(s))


@claim("eq16", "(16): dW_hh",
       r"dW_{hh} = (\sigma'(T_{rnn} Z_t) \circ dh_t) \cdot h_{t-1}^{\mathsf T}",
       section=SECTION, shapes=RNN_SHAPES, relies_on=("stacked-gradient",))
def eq16(d):
    s = rnn_symbols(d)
    return Statement(hadamard(elementwise(sigma_prime, stacked_preactivation(s)), s["dh"]) * s["h_prev"].T,
                     Gradient(hidden_loss(s), s["W_hh"]), defined=defined(s))
