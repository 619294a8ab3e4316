"""The note's Backpropagation_Through_Time_Vanilla_RNN(): each line, checked at every step.

Each builder returns the line's update as a matrix expression in the step
symbols (`derivations.unrolled.step_symbols`); the engine evaluates it at every
t of an RNN unrolled over T = 1, 2, 3 steps and compares it with SymPy's
derivative of the unrolled loss.  These same expressions are what the code
generator prints into the numeric module.
"""
import sympy as sp

from ..functions import dot, elementwise, hadamard, sigma_prime
from ..registry import BPTT_SHAPES, CORRECTED, claim
from ..statement import Equals, Statement
from .forward_pass import cross_entropy, one_hot, scores, softmax

SECTION = "BPTT algorithm"


def dZ(s):
    """sigma'(T_rnn Z_t) ∘ dl_t/dh_t: the gradient at the pre-activation (Lemma 1, f = sigma)."""
    return hadamard(elementwise(sigma_prime, s.W_xh * s.X + s.W_hh * s.h_prev), s.dh)


@claim("bptt-dS", "BPTT: ∂l_t/∂S_t",
       r"\frac{\partial \ell_t}{\partial S_t} = P_t - 1_{y = y_t}",
       section=SECTION, shapes=({"V": 1}, {"V": 2}, {"V": 3}), relies_on=("dS",),
       comment="The algorithm's first line is the softmax cross-entropy gradient of the forward pass.")
def bptt_dS(d):
    S = scores(d.V)
    return [Statement(softmax(S) - one_hot(d.V, y), Equals(S.applyfunc(lambda s, y=y: sp.diff(cross_entropy(S, y), s))),
                      where=f"y_t={y}")
            for y in range(d.V)]


@claim("bptt-dW_hy", "BPTT: ∂l_t/∂W_hy (10)",
       r"\frac{\partial \ell_t}{\partial W_{hy}} = \frac{\partial \ell_{t+1}}{\partial W_{hy}} + "
       r"\frac{\partial \ell_t}{\partial S_t} \cdot \vec{h}^{\mathsf T}",
       section=SECTION, shapes=BPTT_SHAPES, lhs="dW_hy", relies_on=("eq10", "comment1"),
       comment="The note's h without a time index is h_t.")
def bptt_dW_hy(s):
    return s.dW_hy_next + s.dS * s.h.T


@claim("bptt-dh", "BPTT: ∂l_t/∂h_t (9)",
       r"\frac{\partial \ell_t}{\partial h_t} = \frac{\partial \ell_{t+1}}{\partial h_t} + "
       r"W_{hy}^{\mathsf T} \cdot \frac{\partial \ell_t}{\partial S_t}",
       section=SECTION, shapes=BPTT_SHAPES, lhs="dh", relies_on=("eq9", "comment1"))
def bptt_dh(s):
    return s.dh_next + s.W_hy.T * s.dS


@claim("bptt-dW_xh", "BPTT: ∂l_t/∂W_xh (15)",
       r"\frac{\partial \ell_t}{\partial W_{xh}} = \frac{\partial \ell_{t+1}}{\partial W_{xh}} + "
       r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t}) \cdot X_t^{\mathsf T}",
       section=SECTION, shapes=BPTT_SHAPES, lhs="dW_xh", relies_on=("eq15", "comment1"))
def bptt_dW_xh(s):
    return s.dW_xh_next + dZ(s) * s.X.T


@claim("bptt-dW_hh", "BPTT: ∂l_t/∂W_hh (16) (as written)",
       r"\frac{\partial \ell_t}{\partial W_{hh}} = \frac{\partial \ell_{t+1}}{\partial W_{hh}} + "
       r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t}) \cdot h_{t-1}",
       section=SECTION, shapes=BPTT_SHAPES, lhs="dW_hh",
       comment="The transpose of h_{t-1} is missing; (16) above has it.")
def bptt_dW_hh_as_written(s):
    return s.dW_hh_next + dot(dZ(s), s.h_prev)


@claim("bptt-dW_hh-corrected", "BPTT: ∂l_t/∂W_hh (16) (corrected)",
       r"\frac{\partial \ell_t}{\partial W_{hh}} = \frac{\partial \ell_{t+1}}{\partial W_{hh}} + "
       r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t}) \cdot h_{t-1}^{\mathsf T}",
       section=SECTION, shapes=BPTT_SHAPES, lhs="dW_hh", kind=CORRECTED, corrects="bptt-dW_hh",
       relies_on=("eq16", "comment1"))
def bptt_dW_hh(s):
    return s.dW_hh_next + dZ(s) * s.h_prev.T


@claim("bptt-dX", "BPTT: ∂l_t/∂X_t",
       r"\frac{\partial \ell_t}{\partial X_t} = W_{xh}^{\mathsf T} \cdot "
       r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t})",
       section=SECTION, shapes=BPTT_SHAPES, lhs="dX", relies_on=("lemma1-dh", "comment2"))
def bptt_dX(s):
    return s.W_xh.T * dZ(s)


@claim("bptt-dh_prev", "BPTT: ∂l_t/∂h_{t-1} (as written)",
       r"\frac{\partial \ell_t}{\partial h_{t-1}} = W_{hh} \cdot "
       r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t})",
       section=SECTION, shapes=BPTT_SHAPES, lhs="dh_prev",
       comment="W_hh is square, so the line composes, but Lemma 1 (1) needs W_hh^T.")
def bptt_dh_prev_as_written(s):
    return s.W_hh * dZ(s)


@claim("bptt-dh_prev-corrected", "BPTT: ∂l_t/∂h_{t-1} (corrected)",
       r"\frac{\partial \ell_t}{\partial h_{t-1}} = W_{hh}^{\mathsf T} \cdot "
       r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t})",
       section=SECTION, shapes=BPTT_SHAPES, lhs="dh_prev", kind=CORRECTED, corrects="bptt-dh_prev",
       relies_on=("lemma1-dh", "comment2"))
def bptt_dh_prev(s):
    return s.W_hh.T * dZ(s)


# The algorithm as a whole: its lines run from t = T down to 1 on their own
# outputs, against SymPy's derivative of the whole unrolled loss.

AS_WRITTEN_LINES = {"dh": "bptt-dh", "dW_hy": "bptt-dW_hy", "dW_xh": "bptt-dW_xh", "dW_hh": "bptt-dW_hh",
                    "dX": "bptt-dX", "dh_prev": "bptt-dh_prev"}
CORRECTED_LINES = {**AS_WRITTEN_LINES, "dW_hh": "bptt-dW_hh-corrected", "dh_prev": "bptt-dh_prev-corrected"}
# The lines each whole-algorithm claim runs, by their ids in note.md: parsed from its LaTeX and
# lowered to the step symbols (`step_model.line`), also by the "unrolled graph" engine and the induction.
WHOLE_ALGORITHM = {"bptt-algorithm": AS_WRITTEN_LINES, "bptt-algorithm-corrected": CORRECTED_LINES}


def algorithm_lines(claim_id: str) -> dict:
    """{quantity: the line of note.md, parsed and lowered to the step symbols} of a whole-algorithm claim."""
    from .step_model import line
    out = {name: line(cid) for name, cid in WHOLE_ALGORITHM[claim_id].items()}
    wrong = {name: x.quantity for name, x in out.items() if x.quantity != name}
    if wrong:
        raise ValueError(f"{claim_id}: lines that update another quantity than their slot: {wrong}")
    return out


def _whole_algorithm(d, claim_id):
    from ..unrolled import run_bptt, whole_truths
    got = run_bptt(d, algorithm_lines(claim_id))
    truths = whole_truths(d)
    return [Statement(got[name], Equals(truths[name]), where=name) for name in truths]


@claim("bptt-algorithm", "BPTT algorithm, whole (as written)",
       r"\text{Backpropagation\_Through\_Time\_Vanilla\_RNN}() \text{ with its lines as written}",
       section=SECTION, shapes=BPTT_SHAPES, relies_on=tuple(AS_WRITTEN_LINES.values()),
       comment="Runs every line of the algorithm from t = T down to 1 and compares dW_xh, dW_hh, "
               "dW_hy, dh_0 and every dX_t with SymPy's derivative of the whole unrolled loss.")
def bptt_algorithm_as_written(d):
    return _whole_algorithm(d, "bptt-algorithm")


@claim("bptt-algorithm-corrected", "BPTT algorithm, whole (corrected)",
       r"\text{Backpropagation\_Through\_Time\_Vanilla\_RNN}() \text{ with } h_{t-1}^{\mathsf T} "
       r"\text{ and } W_{hh}^{\mathsf T}",
       section=SECTION, shapes=BPTT_SHAPES, kind=CORRECTED, corrects="bptt-algorithm",
       relies_on=tuple(CORRECTED_LINES.values()))
def bptt_algorithm(d):
    return _whole_algorithm(d, "bptt-algorithm-corrected")
