"""The note's Backpropagation_Through_Time_Vanilla_RNN() as a whole.

Its lines are statements of note.md, read from their LaTeX and proved one by
one; `step_model` lowers each to a matrix expression in the step symbols
(`derivations.unrolled.step_symbols`).  The whole-algorithm claims below run
those parsed lines from t = T down to 1 on an RNN unrolled over T = 1, 2, 3
steps and compare the results with SymPy's derivative of the unrolled loss;
the "unrolled graph" engine and the induction run the same lines, and the code
generator prints them into the numeric module.
"""

from ..registry import BPTT_SHAPES, CORRECTED, claim
from ..statement import Equals, Statement

SECTION = "BPTT algorithm"


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
