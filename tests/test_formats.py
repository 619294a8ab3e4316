"""Files: .md, .tex and .ipynb read into the same claims; bytes that are no derivation give located errors."""
import json
from pathlib import Path

import pytest

from derivations.latex.errors import DerivationErrors
from derivations.latex.files import read_derivation
from derivations.latex.reader import parse_statement
from derivations.outputs.cli import main

ROOT = Path(__file__).resolve().parent.parent
FORMS = [ROOT / "examples" / f"min_char_rnn.{ext}" for ext in ("md", "tex", "ipynb")]


def _claims(path):
    d = read_derivation(path)
    return [(c.id, c.lhs, c.rhs, c.kind, c.corrects) for c in d.claims]


def _model(path):
    """What each context declares and defines (the intermediate form, sources left out)."""
    d = read_derivation(path)
    return [(sorted((n, x.kind, x.shape, x.sequence) for n, x in c.declarations.items()),
             sorted((n, x.target, x.expr) for n, x in c.definitions.items()), c.length) for c in d.contexts]


@pytest.mark.parametrize("path", FORMS[1:], ids=lambda p: p.suffix)
def test_the_tex_and_notebook_versions_of_an_example_give_the_markdown_claims(path):
    md = _claims(FORMS[0])
    assert len(md) == 9
    assert _claims(path) == md
    assert _model(path) == _model(FORMS[0])


def test_the_three_forms_get_the_same_verdicts():
    from derivations.outputs.assembly import run
    from derivations.running.cache import ProofCache
    from derivations.running.runner import load_document
    subset = ["dy", "dWhh", "dh0", "dWxh-sigmoid"]
    verdicts = []
    for path in FORMS:
        report = run(subset, document=load_document(path), jobs=1, repairs=False,
                     cache=ProofCache(None, enabled=False))
        verdicts.append([(c["id"], c["verdict"]) for c in report["claims"]])
    assert verdicts[0] == verdicts[1] == verdicts[2]
    assert {v for _, v in verdicts[0]} == {"proved", "refuted"}      # the example's deliberate error is found


def _errors(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(DerivationErrors) as info:
        read_derivation(path)
    return info.value.errors


def _read(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return read_derivation(path)


# ---------------------------------------------------------------- .tex

TEX_HEAD = r"""\documentclass{article}
\begin{document}
\section{Dense}
Prose with inline math $x = y$ and a comment % \begin{equation} x = y \end{equation}
\begin{equation*}
  W \in \mathbb{R}^{m \times n}, \quad x \in \mathbb{R}^{n}
\end{equation*}
"""


def test_a_tex_error_is_located_in_the_tex_file_with_its_line_and_caret(tmp_path):
    (err,) = _errors(tmp_path, "a.tex", TEX_HEAD + "\\begin{align}\n  W x &= V x \\label{v}\n\\end{align}\n")
    assert (err.location.line, err.location.column) == (9, 10) and "undeclared symbol V" in err.message
    source, caret = err.render().splitlines()[1:3]
    assert source.endswith("W x &= V x \\label{v}") and caret.index("^") == source.index("V x")
    assert err.render().startswith(f"{tmp_path / 'a.tex'}:9:10: error:")


def test_align_rows_are_statements_and_an_ampersand_row_continues_the_chain(tmp_path):
    d = _read(tmp_path, "a.tex", TEX_HEAD + r"""\begin{align}
  z &:= W x \\
  z &= W x \label{one} \\
    &= W \cdot x \tag{the same}
\end{align}
\begin{align*}
  z + z &= W x \\
        &\qquad + W x \label{indented}
\end{align*}
\[ z = z \\ x = x \]
\begin{align}
  \begin{bmatrix} z & z \end{bmatrix} &= \begin{bmatrix} W x & W x \end{bmatrix} \tag{block} \\
\end{align}
""")
    ids = [c.id for c in d.claims]
    # align numbers its rows one by one: each row's \label and \tag are those of the equality ending on it
    assert ids == ["one", "the-same", "indented", "Dense-3-1", "Dense-3-2", "block"]
    assert d.claims[2].rhs == parse_statement("z + z = W x + W x", d.contexts[0])[1]
    one, two = d.claims[:2]
    assert one.rhs == two.lhs and two.label == "the same" and one.label == "Dense, line 10"
    assert d.claims[3].source.line == d.claims[4].source.line == 17       # \\ in \[ \]: two statements


def test_a_label_is_the_id_a_tag_the_label_and_comments_after_a_display_say_what_a_blockquote_says(tmp_path):
    d = _read(tmp_path, "a.tex", TEX_HEAD + r"""\begin{equation}
  W x = x \label{eq:wrong} \tag{3}
\end{equation}
% Reading: W read as the identity
\begin{equation}
  W x = W^{\top} x \label{eq:fixed}
\end{equation}
% Corrects: eq:wrong
""")
    wrong, fixed = d.claims
    assert (wrong.id, wrong.label, wrong.reading) == ("eq:wrong", "3", "W read as the identity")
    assert fixed.corrects == "eq:wrong" and fixed.kind == "corrected"


def test_the_highest_sectioning_command_starts_a_context(tmp_path):
    body = r"""\chapter{One}
\section{Inputs}
\[ u \in \mathbb{R}^{n} \]
\section{Claims}
\[ u = u \]
\chapter{Two}
\[ v \in \mathbb{R}^{n}, \quad v = v \]
"""
    d = _read(tmp_path, "book.tex", "\\begin{document}\n" + body + "\\end{document}\n")
    assert [c.title for c in d.contexts] == ["One", "Two"]
    assert d.claims[0].section == "Claims"
    with pytest.raises(DerivationErrors) as info:       # u is not declared in the second chapter
        _read(tmp_path, "b.tex", "\\begin{document}\n" + body + "\\[ v = u \\]\n\\end{document}\n")
    assert "undeclared symbol u" in info.value.errors[0].message


@pytest.mark.parametrize("tail, needle", [
    ("\\begin{alignat}{2} x &= x \\end{alignat}\n", "\\begin{alignat} is not read"),
    ("\\begin{equation}\n x = x\n", "never closed"),
    ("\\begin{equation} x = x \\label{a} \\label{b} \\end{equation}\n", "two \\label"),
    ("\\[ x = x \\tag{t} \\]\n\\[ x = x \\tag{t} \\]\n", "\\tag{t} is used twice"),
])
def test_tex_that_is_not_read_is_an_error(tmp_path, tail, needle):
    errors = _errors(tmp_path, "a.tex", TEX_HEAD + tail)
    assert any(needle in e.message for e in errors), [e.message for e in errors]


# ---------------------------------------------------------------- .ipynb

def _notebook(*cells):
    return json.dumps({"cells": [{"cell_type": kind, "metadata": {}, "source": source} for kind, source in cells],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def test_a_notebook_error_names_the_cell_and_the_line_in_it(tmp_path):
    nb = _notebook(("markdown", ["# Dense\n", "\n", "$$ W \\in \\mathbb{R}^{m \\times n} $$"]),
                   ("code", "W = 1"),
                   ("markdown", ["Prose.\n", "\n", "$$ W = V $$\n"]))
    (err,) = _errors(tmp_path, "a.ipynb", nb)
    assert (err.location.cell, err.location.line, err.location.column) == (3, 3, 8)
    assert err.render().startswith(f"{tmp_path / 'a.ipynb'}:cell 3:line 3:col 8: error: undeclared symbol V")
    assert err.location.source_line == "$$ W = V $$"


def test_a_notebook_claim_knows_its_cell_and_a_block_cannot_run_into_the_next_cell(tmp_path):
    d = _read(tmp_path, "a.ipynb", _notebook(("markdown", "# D\n\n$$ W \\in \\mathbb{R}^{m \\times n} $$"),
                                             ("markdown", "$$ W = W $$")))
    (claim,) = d.claims
    assert (claim.source.cell, claim.source.line) == (2, 1) and claim.label == "D, cell 2, line 1"
    errors = _errors(tmp_path, "b.ipynb", _notebook(("markdown", "# D\n\n$$ W = W"), ("markdown", "W $$")))
    assert (errors[0].location.cell, errors[0].location.line) == (1, 3) and "closing $$ missing" in errors[0].message


def test_a_notebook_cell_may_use_align_as_jupyter_renders_it(tmp_path):
    d = _read(tmp_path, "a.ipynb", _notebook(
        ("markdown", "# D\n\n$$ W \\in \\mathbb{R}^{m \\times n} $$"),
        ("markdown", "Two lines:\n\\begin{align}\nW &= W \\tag{one} \\\\\n  &= 1 W\n\\end{align}\n> Comment: fine")))
    a, b = d.claims
    assert (a.id, b.id, a.comment) == ("one", "D-1-2", "fine") and (a.source.cell, a.source.line) == (2, 3)


@pytest.mark.parametrize("text, needle", [
    ("{\"cells\": [", "not JSON"),
    ("[1, 2]", "no list of \"cells\""),
    (json.dumps({"cells": [{"cell_type": "markdown", "source": 3}]}), "cell 1: its \"source\" is not text"),
])
def test_a_file_that_is_no_notebook_says_so(tmp_path, text, needle):
    (err,) = _errors(tmp_path, "a.ipynb", text)
    assert needle in err.message and err.location is not None


# ---------------------------------------------------------------- bytes that are no derivation

@pytest.mark.parametrize("data, needle, line, column", [
    (b"", "the file is empty", 1, 1),
    (b" \n\t\n", "only white space", 1, 1),
    (b"# T\n\n$$ x \xe9 y $$\n", "not UTF-8", 3, 6),
    (b"# T\n\n$$ x \xe2\x88\x98 \x00 $$\n", "a NUL byte", 3, 8),
])
def test_bytes_that_are_no_text_give_a_located_error(tmp_path, data, needle, line, column):
    (err,) = _errors(tmp_path, "a.md", data)
    assert needle in err.message and (err.location.line, err.location.column) == (line, column)


def test_a_byte_order_mark_is_not_read_as_text(tmp_path):
    path = tmp_path / "bom.md"
    path.write_bytes(b"\xef\xbb\xbf# T\n\n$$ x \\in \\mathbb{R}^{n} $$\n\n$$ x = x $$\n")
    assert read_derivation(path).contexts[0].title == "T"


@pytest.mark.parametrize("make", ["directory", "empty", "not utf-8", "nul", "huge line", "no such file"])
def test_verify_on_a_file_that_does_not_read_exits_2_without_a_traceback(tmp_path, capsys, make):
    path = tmp_path / "x.md"
    if make == "directory":
        path.mkdir()
    elif make != "no such file":
        path.write_bytes({"empty": b"", "not utf-8": b"$$ \xff $$\n", "nul": b"\x00" * 10,
                          "huge line": b"$$ " + b"a + " * 500_000 + b" $$\n"}[make])
    with pytest.raises(SystemExit) if make in ("directory", "no such file") else _nothing() as exit_:
        status = main([str(path), "--out", str(tmp_path / "out"), "--no-cache"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if exit_ is not None:
        assert exit_.value.code == 2 and str(path) in err
        return
    assert status == 2 and f"{path}:1:" in err and "nothing was checked or written" in err
    assert max(map(len, err.splitlines())) < 200           # a huge line is shown cut around the error
    assert not (tmp_path / "out").exists()


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
