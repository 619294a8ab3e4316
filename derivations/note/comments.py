"""The note's closing Comments: gradients add over time (Comment 2, sigma' = sigma - sigma^2, is read
from note.md), and the tool's lemma on the opaque sigma."""
import sympy as sp

from ..functions import sigma, sigmoid_definition
from ..registry import SCALAR, SUPPORTING, claim
from ..statement import Equals, Gradient, Statement
from ..unrolled import WEIGHTS, unrolled

SECTION = "Comments"


@claim("comment1", "Comment 1: gradients add over time",
       r"\frac{\partial \ell_{total}}{\partial W} = \frac{\partial (\ell_{t=T} + \ell_{t=T-1} + \dots + "
       r"\ell_{t=1})}{\partial W} = \frac{\partial \ell_{t=T}}{\partial W} + \dots + "
       r"\frac{\partial \ell_{t=1}}{\partial W}",
       section=SECTION,
       shapes=({"H": 1, "E": 1, "V": 1, "T": 2}, {"H": 2, "E": 2, "V": 2, "T": 2}, {"H": 2, "E": 3, "V": 2, "T": 3}),
       comment="The note lists W_hy, W_hh and h_t as aggregated through time; its algorithm "
               "accumulates W_xh too, as this identity requires for every shared weight.")
def comment1(d):
    rnn = unrolled(d.H, d.E, d.V, d.T)
    hs = rnn.states()
    per_step = [rnn.step_loss(t, hs[t]) for t in range(1, d.T + 1)]
    total = sum(per_step)
    out = []
    for name in WEIGHTS:
        W = rnn.W[name]
        summed = sum((W.applyfunc(lambda w, l_t=l_t: sp.diff(l_t, w)) for l_t in per_step), sp.zeros(*W.shape))
        out.append(Statement(summed, Gradient(sp.Matrix([[total]]), W), where=name))
    return out


@claim("sigma-derivative", "Tool lemma: the opaque σ differentiates as σ(1 − σ)",
       r"\frac{d}{dx}\,\sigma(x) \overset{\text{SymPy}}{=} \frac{d}{dx}\,\frac{1}{1 + e^{-x}}",
       section=SECTION, shapes=SCALAR, kind=SUPPORTING, relies_on=("comment2",),
       comment="The verifier keeps sigma opaque for speed; this checks its declared derivative "
               "against the derivative of the definition.")
def sigma_derivative(d):
    x = sp.Symbol("x", real=True)
    return Statement(sp.Matrix([[sp.diff(sigma(x), x)]]), Equals(sp.Matrix([[sp.diff(sigmoid_definition(x), x)]])))
