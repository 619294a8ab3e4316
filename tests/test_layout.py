"""A wrong Jacobian line that is true in numerator layout: the report says so, from a proof, not a guess.

The format reads ∂a/∂b of columns in denominator layout (entry [j, i] = ∂a_i/∂b_j); for z = W h that
Jacobian is W^T, so "∂z/∂h = W" is the numerator-layout statement.  derivations.analyses.layout transposes every
Jacobian of a wrong line and asks the explicit engine; the note appears only when that reading is proved.
"""
import pytest

from derivations.analyses import layout
from derivations.engines import explicit
from derivations.latex.reader import parse_derivation
from derivations.outputs.assembly import run
from derivations.outputs.cli import summary
from derivations.running.runner import load_document
from reports.render import mathml, render_html

FILE = r"""# Jacobians of linear maps

$$ W \in \mathbb{R}^{n \times n}, \quad A \in \mathbb{R}^{m \times n}, \quad h \in \mathbb{R}^{n} $$

$$ z := W h, \quad y := A h $$

$$ \frac{\partial z}{\partial h} = W \tag{square-numerator} $$

$$ \frac{\partial y}{\partial h} = A \tag{wide-numerator} $$

$$ \frac{\partial z}{\partial h} = 2 W \tag{wrong-in-both} $$

$$ \frac{\partial y}{\partial h} = A^{\top} \tag{denominator} $$

$$ \frac{\partial z}{\partial h} + W = 2 W \tag{jacobian-inside} $$
"""


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    path = tmp_path_factory.mktemp("layout") / "jacobians.md"
    path.write_text(FILE)
    return run(jobs=1, document=load_document(path))


def test_a_wrong_jacobian_line_true_in_numerator_layout_says_so(checked):
    by_id = {c["id"]: c for c in checked["claims"]}
    assert by_id["denominator"]["verdict"] == "proved" and by_id["denominator"]["layout"] is None
    for cid in ("square-numerator", "wide-numerator", "jacobian-inside"):
        c = by_id[cid]
        assert c["verdict"] in ("refuted", "ill-typed"), cid
        assert c["layout"].startswith("True in numerator layout") and "denominator layout" in c["layout"], cid
    # Transposing the Jacobian does not make this one true: no note.
    assert by_id["wrong-in-both"]["verdict"] == "refuted" and by_id["wrong-in-both"]["layout"] is None


def test_the_note_is_typeset_in_the_report_and_plain_in_the_terminal(checked):
    html = render_html(checked)
    item = html[html.index('id="erratum-square-numerator"'):]
    item = item[:item.index("</li>\n")]
    assert 'class="layout-note"' in item and str(mathml(r"\frac{\partial z}{\partial h}", "inline")) in item
    text = summary(checked, {})
    assert "layout: True in numerator layout" in text and "$" not in text


def test_the_note_comes_from_the_engine_on_the_transposed_reading():
    d = parse_derivation(FILE, "t.md")
    ctx = d.contexts[0]
    claims = {c.id: c for c in ctx.claims}
    square = claims["square-numerator"]
    assert [j.of.name for j in layout.jacobians(ctx, square)] == ["z"]
    assert layout.numerator_layout_note(ctx, square, "proved") is None        # only for a wrong line
    # The same reading written out by hand is what the engine proves.
    by_hand = parse_derivation(FILE + "\n$$ (\\frac{\\partial z}{\\partial h})^{\\top} = W \\tag{by-hand} $$\n", "t.md")
    assert explicit.prove(by_hand.contexts[0], by_hand.contexts[0].claims[-1]).verdict == "proved"
    assert layout.numerator_layout_note(ctx, claims["wrong-in-both"], "refuted") is None
