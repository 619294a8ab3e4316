"""The LaTeX reader: grammar, names, steps, located errors, and printing back (parse(print(x)) == x)."""
from fractions import Fraction
from pathlib import Path

import pytest

from derivations.form import ir
from derivations.form.printer import claim_latex, to_latex
from derivations.latex.errors import DerivationErrors
from derivations.latex.files import read_derivation
from derivations.latex.reader import parse_derivation, parse_statement

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.md"))

HEAD = r"""# Test

$$ W_{xh} \in \mathbb{R}^{H \times V}, \quad W_{hh} \in \mathbb{R}^{H \times H}, \quad b_h \in \mathbb{R}^{H} $$

$$ x_t \in \mathbb{R}^{V}, \quad h_0 \in \mathbb{R}^{H}, \quad k_t \in \{1, \dots, V\}, \quad f : \mathbb{R} \to \mathbb{R} $$

$$ h_t := \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h) $$

$$ \ell := -\sum_{t=1}^{T} \log (\operatorname{softmax}(W_{xh}^\top h_t))_{k_t} $$

$$ dh_t := \frac{\partial \ell}{\partial h_t} $$
"""


def ctx_of(extra: str = "") -> ir.Context:
    return parse_derivation(HEAD + extra, "test.md").contexts[0]


def parse(text: str):
    return parse_statement(text, ctx_of())


T = ir.Time("t")


def test_names_steps_and_products():
    lhs, rhs = parse(r"dh_t = W_{hh}^{\top} h_{t-1} + b_h")
    assert lhs == ir.Ref("dh", T)
    assert rhs == ir.Add((ir.MatMul(ir.Transpose(ir.Ref("W_hh"), "{\\top}"), ir.Ref("h", ir.Time("t", -1))),
                          ir.Ref("b_h")))


@pytest.mark.parametrize("sup", ["T", "{T}", "\\top", "{\\top}", "{\\mathsf T}", "{\\mathsf{T}}", "\\intercal"])
def test_every_transpose_spelling(sup):
    _, rhs = parse(f"dh_t = W_{{hh}}^{sup} h_t")
    assert isinstance(rhs.left, ir.Transpose) and rhs.left.arg == ir.Ref("W_hh")


def test_cdot_and_juxtaposition_are_the_same_product_in_their_own_spelling():
    _, a = parse(r"dh_t = W_{hh} \cdot h_t")
    _, b = parse(r"dh_t = W_{hh} h_t")
    assert a.dot and not b.dot and (a.left, a.right) == (b.left, b.right)


def test_hadamard_binds_looser_than_a_product():
    _, rhs = parse(r"dh_t = W_{hh} h_t \circ W_{hh} h_t")
    assert isinstance(rhs, ir.Hadamard) and isinstance(rhs.left, ir.MatMul) and isinstance(rhs.right, ir.MatMul)


def test_square_of_a_vector_ones_minus_and_sigma_squared():
    _, rhs = parse(r"dh_t = (1 - h_t^2) \circ \sigma^2(h_t)")
    one_minus, sq = rhs.left, rhs.right
    assert one_minus == ir.Add((ir.Number(Fraction(1)), ir.Neg(ir.Power(ir.Ref("h", T), 2))))
    assert sq == ir.Power(ir.Apply("sigma", ir.Ref("h", T)), 2, prefix=True)


def test_functions_derivatives_components_and_basis():
    _, rhs = parse(r"dh_t = f'(W_{hh} h_t) \circ \tanh'(h_t) (\operatorname{softmax}(x_t))_{k_t}")
    assert isinstance(rhs.left, ir.Apply) and rhs.left.function == "f" and rhs.left.derivative == 1
    assert isinstance(rhs.right, ir.MatMul)
    _, e = parse(r"dh_t = e_{k_t} + 1_{y = k_t}")
    assert e.terms[0] == ir.Basis(ir.Ref("k", T), "e") and e.terms[1] == ir.Basis(ir.Ref("k", T), "y")


def test_letters_split_into_declared_names():
    ctx = parse_derivation(r"""# L
$$ W \in \mathbb{R}^{m \times n}, \quad h \in \mathbb{R}^{n}, \quad f : \mathbb{R} \to \mathbb{R} $$
$$ f(Wh) = f(W h) $$
""", "x.md").contexts[0]
    c = ctx.claims[0]
    assert c.lhs == c.rhs == ir.Apply("f", ir.MatMul(ir.Ref("W"), ir.Ref("h")))


def test_sums_over_steps_and_derivatives():
    lhs, rhs = parse(r"\frac{\partial \ell}{\partial W_{hh}} = \sum_{t=1}^{T} dh_t h_{t-1}^\top + \sum_t b_h")
    assert lhs == ir.Deriv(ir.Ref("\\ell"), ir.Ref("W_hh"))
    first, second = rhs.terms
    assert first.var == "t" and first.lo == ir.Time(None, 1) and first.hi == ir.Time("T") and not first.short
    assert second.short


def test_chain_gives_one_claim_per_link_with_its_own_latex():
    ctx = ctx_of(r"""
$$ dh_t = \frac{\partial \ell}{\partial h_t} = W_{hh} h_t \tag{chain} $$
""")
    a, b = ctx.claims
    assert (a.id, b.id) == ("chain-1", "chain-2")
    assert a.source.latex == r"dh_t = \frac{\partial \ell}{\partial h_t}"
    assert b.source.latex == r"\frac{\partial \ell}{\partial h_t} = W_{hh} h_t"
    assert a.rhs == b.lhs


def test_blockquote_after_a_block_sets_reading_id_and_correction():
    ctx = ctx_of(r"""
$$ dh_t = W_{hh} h_t $$

> Id: wrong-line
> Reading: the transcription's "W" is read as W_hh.

$$ dh_t = W_{hh}^T h_t $$

> Corrects: wrong-line
""")
    wrong, fixed = ctx.claims
    assert wrong.id == "wrong-line" and wrong.depends_on_reading and "read as W_hh" in wrong.reading
    assert fixed.kind == "corrected" and fixed.corrects == "wrong-line"


def test_a_level_one_heading_starts_a_new_context():
    d = parse_derivation(HEAD + "\n# Other\n\n$$ u \\in \\mathbb{R}^n $$\n\n$$ u = u $$\n", "x.md")
    assert [c.title for c in d.contexts] == ["Test", "Other"]
    assert "W_xh" not in d.contexts[1].declarations


def _errors(text):
    with pytest.raises(DerivationErrors) as info:
        parse_derivation(text, "bad.md")
    return info.value.errors


def test_undeclared_symbol_is_located_with_a_caret_and_a_suggestion():
    (err,) = _errors(HEAD + "\n$$ dh_t = W_{hx} h_t $$\n")
    text = err.render()
    line = (HEAD + "\n").count("\n") + 1
    assert f"bad.md:{line}:" in text and "undeclared symbol W_hx" in text and "did you mean" in text
    source, caret = text.splitlines()[1:3]
    assert caret.index("^") == source.index("W_{hx}")


def test_syntax_error_says_what_was_expected():
    (err,) = _errors(HEAD + "\n$$ dh_t = W_{hh} + $$\n")
    assert "unexpected the end of the block" in err.message or "expected" in err.message


def test_unsupported_command_is_named():
    (err,) = _errors(HEAD + "\n$$ dh_t = \\oint h_t $$\n")
    assert "unsupported command \\oint" in err.message


def test_unclosed_block_and_several_errors_are_reported_together():
    errors = _errors(HEAD + "\n$$ dh_t = q_t $$\n\n$$ dh_t = z_t $$\n\n$$ dh_t = h_t\n")
    assert len(errors) == 3
    assert "never closed" in errors[-1].message


def test_declared_twice_is_an_error():
    (err,) = _errors(HEAD + "\n$$ b_h \\in \\mathbb{R}^{V} $$\n")
    assert "b_h is declared twice" in err.message


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_claim_prints_back_to_itself(path):
    d = read_derivation(path)
    for ctx in d.contexts:
        for c in ctx.claims:
            text = claim_latex(c.lhs, c.rhs)
            assert parse_statement(text, ctx) == (c.lhs, c.rhs), text


def test_printing_keeps_the_authors_notation():
    _, rhs = parse(r"dh_t = W_{hh}^{\mathsf T} \cdot (h_t \odot h_t)")
    assert to_latex(rhs) == r"W_{hh}^{\mathsf T} \cdot (h_t \odot h_t)"


def test_a_definition_that_does_not_compose_is_an_error_of_the_file_at_its_line():
    (err,) = _errors(HEAD + "\n$$ q_t := W_{xh} h_t $$\n")
    assert "the definition of q does not compose" in err.message and "H×V times H×1" in err.message
    assert err.location.source_line.startswith("$$ q_t := W_{xh} h_t")


def test_a_missing_closing_dollars_is_named_and_does_not_cascade():
    errors = _errors(HEAD + "\n$$ q_t := W_{hh} h_t\n\n$$ dh_t = q_t $$\n")
    assert len(errors) == 1 and "closing $$ missing" in errors[0].message


def test_sizes_need_times_between_them():
    (err,) = _errors(HEAD.replace(r"W_{xh} \in \mathbb{R}^{H \times V}", r"W_{xh} \in \mathbb{R}^{H x V}"))
    assert "\\times" in err.message.split("; expected ", 1)[1]       # among what is expected (with +, a sum)


def test_a_closing_dollars_followed_by_the_next_block_says_the_closing_dollars_are_missing():
    (err,) = _errors(HEAD + "\n$$ q_t := W_{hh} h_t\n$$ dh_t = q_t $$\n")
    assert "closing $$ missing" in err.message
    assert err.location.source_line.startswith("$$ q_t := W_{hh} h_t")


def test_text_after_a_closing_dollars_is_an_error_not_silently_dropped():
    (err,) = _errors(HEAD + "\n$$ dh_t = h_t $$ $$ dh_t = q_t $$\n")
    assert "not read" in err.message


def test_a_sum_over_steps_in_a_part_without_sequences_is_an_error():
    text = ("# Dense\n\n$$ W \\in \\mathbb{R}^{m \\times n}, \\quad x \\in \\mathbb{R}^{n}, \\quad "
            "\\ell \\in \\mathbb{R} $$\n\n$$ z := W x $$\n\n$$ \\frac{\\partial \\ell}{\\partial W} = "
            "\\sum_{t} \\frac{\\partial \\ell}{\\partial z} x^T $$\n")
    (err,) = _errors(text)
    assert "sums over the time steps" in err.message and "no sequence" in err.message
    # \sum_i is a sum over entries, read without sequences: its term must be written with the entry i
    (err,) = _errors(text.replace("\\sum_{t}", "\\sum_{i}"))
    assert "is written with the entry i" in err.message and "\\mathbf{1}^\\top c" in err.hint


def test_a_definition_that_does_not_compose_is_reported_once_not_at_every_definition_using_it():
    errors = _errors(HEAD + "\n$$ q_t := W_{xh} h_t $$\n\n$$ r_t := W_{hh} q_t $$\n\n$$ u_t := r_t + q_t $$\n")
    assert len(errors) == 1 and "the definition of q does not compose" in errors[0].message


def test_the_derivative_of_a_decorated_quantity_is_one_name():
    text = HEAD + ("\n$$ \\tilde{h}_t := \\tanh(h_t), \\quad d\\tilde{h}_t := \\frac{\\partial \\ell}{\\partial "
                   "\\tilde{h}_t} $$\n\n$$ d\\tilde{h}_t = d\\tilde{h}_t $$\n")
    d = parse_derivation(text, "x.md")
    (claim,) = d.claims
    assert claim.lhs == ir.Ref("d\\tilde{h}", ir.Time("t"))
    assert "d\\tilde{h}" in d.contexts[0].definitions


def test_a_tag_used_twice_is_an_error():
    errors = _errors(HEAD + "\n$$ dh_t = dh_t \\tag{same} $$\n\n$$ h_t = h_t \\tag{same} $$\n")
    assert len(errors) == 1 and "\\tag{same} is used twice" in errors[0].message


@pytest.mark.parametrize("line, hint", [
    ("dh_t = \\sigam(h_t)", "did you mean \\sigma?"),
    ("dh_t = h_t ∘ h_t", "write \\circ for ∘"),
    ("dh_t = W_{hh}ᵀ h_t", "write ^T for ᵀ"),
])
def test_typos_and_unicode_get_a_hint(line, hint):
    (err,) = _errors(HEAD + f"\n$$ {line} $$\n")
    assert hint in err.render()


def test_definitions_in_a_circle_are_an_error_not_a_crash():
    (err,) = _errors(HEAD + "\n$$ a_t := b_t + h_t, \\quad b_t := 2 a_t $$\n\n$$ a_t = b_t $$\n")
    assert "refer to each other in a circle (a → b → a)" in err.message


def test_a_backward_recurrence_is_no_circle():
    d = parse_derivation(HEAD + "\n$$ g_t := \\tanh(W_{hh} g_{t+1} + W_{xh} x_t) $$\n\n$$ g_t = g_t $$\n", "x.md")
    assert "g" in d.contexts[0].definitions


@pytest.mark.parametrize("display", ["\\[ dh_t = W_{hh} h_t \\]", "\\begin{equation}\ndh_t = W_{hh} h_t\n\\end{equation}",
                                     "\\begin{align*}\n  dh_t &= W_{hh} h_t\n\\end{align*}"])
def test_latex_display_math_in_markdown_reads_as_a_dollars_block(display):
    dollars = ctx_of("\n$$ dh_t = W_{hh} h_t $$\n\n> Id: x\n").claims
    claims = ctx_of("\n" + display + "\n\n> Id: x\n").claims
    assert [(c.id, c.lhs, c.rhs) for c in claims] == [(c.id, c.lhs, c.rhs) for c in dollars] and len(claims) == 1


@pytest.mark.parametrize("display", ["\\begin{alignat}{2}\nh_t &= h_t\n\\end{alignat}", "\\[ h_t = h_t"])
def test_display_math_the_format_does_not_read_is_an_error_not_a_pass(display):
    errors = _errors(HEAD + "\n" + display + "\n")
    assert any("is not read" in e.message or "never closed" in e.message for e in errors)


def test_a_file_with_nothing_to_check_is_an_error(tmp_path):
    from derivations.running.runner import load_document
    path = tmp_path / "prose.md"
    path.write_text("# Prose\n\nNo equations here.\n\n$$ h \\in \\mathbb{R}^{n} $$\n")
    with pytest.raises(DerivationErrors) as info:
        load_document(path)
    (err,) = info.value.errors
    assert "no statement to check" in err.message


def test_an_undefined_name_for_a_derivative_gets_its_definition_as_hint():
    (err,) = _errors(HEAD + "\n$$ dx_t = x_t $$\n")
    assert "dx_t := \\frac{\\partial \\ell}{\\partial x_t}" in err.render()


def test_a_name_defined_with_and_without_a_step_says_so():
    errors = _errors(HEAD.replace("$$ dh_t :=", "$$ \\ell_t := \\log(h_t)^T h_t $$\n\n$$ dh_t :="))
    assert any("once with a step" in e.message for e in errors)


# ---------------------------------------------------------------- robustness: any text reads or fails, quickly

class _TooSlow(Exception):
    pass


def _within(seconds, fn, *args):
    """fn(*args), failing the test instead of hanging when it takes longer than `seconds`."""
    import signal

    def alarm(*_):
        raise _TooSlow(f"took longer than {seconds} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


VALID = "# T\n\nsome prose{}more\n\n$$ x \\in \\mathbb{{R}}^{{n}} $$\n\n$$ x = x $$\n"


@pytest.mark.parametrize("sep", ["\f", "\v", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r"])
def test_a_character_splitlines_breaks_at_in_the_prose_changes_nothing(sep):
    # str.splitlines() breaks at these and "\n"-counting did not: the reader looped forever.
    d = _within(5, parse_derivation, VALID.format(sep), "x.md")
    (claim,) = d.claims
    assert claim.source.line == 7 and claim.source.column == 4


def test_crlf_line_ends_read_like_lf():
    lf = parse_derivation(VALID.format(" "), "x.md")
    crlf = parse_derivation(VALID.format(" ").replace("\n", "\r\n"), "x.md")
    assert [(c.id, c.lhs, c.rhs, c.source.line) for c in lf.claims] == \
        [(c.id, c.lhs, c.rhs, c.source.line) for c in crlf.claims]


def _located_errors_within(seconds, text):
    with pytest.raises(DerivationErrors) as info:
        _within(seconds, parse_derivation, text, "bad.md")
    errors = info.value.errors
    assert errors and all(e.location is not None for e in errors[:-1])
    return errors


@pytest.mark.parametrize("body, needle", [
    ("(" * 10_000, "characters long"),
    ("(" * 25 + "h_t" + ")" * 25, "nested more than"),
    ("\\frac{" * 25 + "h_t" + "}{2}" * 25, "nested more than"),
    (" + ".join(["h_t"] * 300), "more than 400 tokens"),      # a deep left-nested tree: RecursionError before
    (" ".join(["h"] * 600), "more than 400 tokens"),
])
def test_a_block_too_long_or_too_deep_is_a_located_error_not_a_recursion_error(body, needle):
    errors = _located_errors_within(5, HEAD + f"\n$$ dh_t = {body} $$\n")
    assert any(needle in e.message for e in errors)
    assert errors[0].location.line == (HEAD + "\n").count("\n") + 1


def test_random_printable_text_gives_located_errors_quickly_and_stops_at_a_bound():
    import random
    import string

    from derivations.latex.reader import MAX_ERRORS
    rng = random.Random(1)
    text = "".join(rng.choice(string.printable + "$$$$\\") for _ in range(100_000))
    errors = _located_errors_within(10, text)
    assert len(errors) <= MAX_ERRORS + 1
    assert len(errors) < MAX_ERRORS or "reading stopped" in errors[-1].message


@pytest.mark.parametrize("text", [
    "$$ " + "a" * 30_000 + "\n\n$$",             # names guessed from a broken block: was quadratic
    "# x" + " " * 30_000 + "y\n\n$$ x = x $$\n",  # a heading of spaces: was quadratic
    "$$ x $$\n" * 20_000,
])
def test_long_runs_are_read_in_linear_time(text):
    _located_errors_within(5, text)


def test_a_declared_and_defined_quantity_is_defined_and_its_shape_checked():
    # h \in R^H next to h := ... is an annotation: the engines see h's definition, never a free h.
    ok = r"""# A layer

$$ W \in \mathbb{R}^{H \times D}, \quad x \in \mathbb{R}^{D}, \quad h \in \mathbb{R}^{H}, \quad h := \tanh(W x) $$

$$ \ell \in \mathbb{R}, \quad g \in \mathbb{R}^{H}, \quad g := \frac{\partial \ell}{\partial h} $$

$$ \frac{\partial \ell}{\partial x} = W^{\top} ((1 - h^2) \circ g) \tag{dx} $$
"""
    ctx = parse_derivation(ok, "a.md").contexts[0]
    assert "h" not in ctx.declarations and "h" in ctx.definitions
    assert "g" in ctx.declarations                   # a given gradient of the abstract loss ℓ stays given
    wrong = ok.replace(r"h \in \mathbb{R}^{H}", r"h \in \mathbb{R}^{D}")
    (err,) = _errors(wrong)
    assert err.location.line == 3 and "h is declared D×1 but its definition gives H×1" in err.message


def test_a_correction_true_of_anything_is_an_error():
    # A proved correction stands for the line it corrects in the whole derivation's verdict: one whose two
    # sides are the same says nothing of it (a fresh-eyes trial's "h_t = h_t  > Corrects: wrong").
    text = HEAD + r"""
$$ \frac{\partial \ell}{\partial b_h} = \sum_{t=1}^{T} h_t \tag{wrong} $$

$$ \frac{\partial \ell}{\partial b_h} = \frac{\partial \ell}{\partial b_h} \tag{fix} $$

> Corrects: wrong
"""
    (err,) = _errors(text)
    assert "fix corrects wrong with a line whose right-hand side holds its left-hand side" in err.message
    # Written less plainly (a second fresh-eyes trial): the left-hand side inside the right-hand side.
    for rhs in (r"\left( \frac{\partial \ell}{\partial b_h} \right) + 0",
                r"2 \frac{\partial \ell}{\partial b_h} - \frac{\partial \ell}{\partial b_h}"):
        (err,) = _errors(text.replace(r"= \frac{\partial \ell}{\partial b_h} \tag{fix}", f"= {rhs} \\tag{{fix}}"))
        assert "holds its left-hand side" in err.message, rhs
