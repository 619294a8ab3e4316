"""What a proof reaches and how a claim was read, said next to its verdict.

`scope`: a claim proved only by the engine at explicit sizes and lengths holds
there; one proved by an engine for symbolic sizes (or the induction) holds for
every size (and T).  `notes`: a derivative of a quantity at a step is taken with
the earlier steps held fixed, which a reader may take otherwise.
"""
from derivations import engines
from derivations.latex.reader import parse_derivation
from derivations.outputs import assembly

FILE = r"""# Lemma

$$ W \in \mathbb{R}^{m \times n}, \quad h \in \mathbb{R}^{n}, \quad \ell \in \mathbb{R} $$

$$ z := W h, \quad dz \in \mathbb{R}^{m}, \quad dz := \frac{\partial \ell}{\partial z} $$

$$ \frac{\partial \ell}{\partial h} = W^T dz \tag{dh} $$
"""


def test_scope_says_whether_a_proof_holds_for_every_size_or_only_where_it_was_tried():
    from derivations.latex.reader import parse_derivation
    ctx = parse_derivation(FILE.replace("h \\in", "h_t \\in").replace("W h,", "W h_T,")
                           .replace("\\partial h}", "\\partial h_t}"), "x.md").contexts[0]
    assert ctx.has_time

    def result(*methods):
        ms = [{"method": name, "verdict": v, "shapes": [{"m": 2, "T": t} for t in (1, 2, 3)]} for name, v in methods]
        return {"verdict": engines.combine([{**m, "reason": ""} for m in ms])["verdict"], "methods": ms}
    assert assembly.scope(result(("concrete", "proved")), ctx) == "at the sizes tried, T ≤ 3"
    assert assembly.scope(result(("concrete", "proved"), ("all sizes", "proved")), ctx) == "for every size and every T"
    assert assembly.scope(result(("concrete", "proved"), ("all sizes", "inconclusive")), ctx).startswith("at the")
    assert assembly.scope(result(("concrete", "refuted")), ctx) is None


def test_a_derivative_of_a_quantity_at_a_step_carries_a_note_on_how_it_is_read():
    text = r"""# Per-step loss

$$ W \in \mathbb{R}^{H \times D}, \quad U \in \mathbb{R}^{H \times H}, \quad x_t \in \mathbb{R}^{D}, \quad h_0 \in \mathbb{R}^{H} $$

$$ h_t := \sigma(W x_t + U h_{t-1}), \quad E_t := h_t^T h_t $$

$$ \frac{\partial E_t}{\partial U} = 2 (h_t \circ (1 - h_t) \circ h_t) h_{t-1}^T $$

$$ \frac{\partial E_t}{\partial h_t} = 2 h_t $$
"""
    first, second = parse_derivation(text, "x.md").claims
    (note,) = assembly.semantic_notes(first)
    assert "∂E_t/∂U counts the uses of U from step t on" in note and "held fixed" in note
    assert assembly.semantic_notes(second) == []
