"""A corpus of derivations transcribed from textbooks and course notes (issue 18, item 4).

tests/corpus/ holds derivations written as their sources write them (each file's header names the
source and says what was added: declarations of shapes, and a marked section of deliberately wrong
lines).  For every file: it is read without error, and every claim's verdict agrees with the truth
decided here by finite differences (tests/fd.py: NumPy forward passes, nothing of the engines):
a true line is proved for every size (and every T), a false one refuted or ill-typed, an ill-typed
one ill-typed.

Where the verifier does not do so for a line that is true, the line stays in the corpus and its
test is an expected failure, listed below with the reason.
"""
from functools import cache
from pathlib import Path

import fd
import pytest

from derivations.engines.verdicts import ILL_TYPED, PROVED, REFUTED
from derivations.latex.files import read_derivation
from derivations.latex.reader import parse_derivation
from derivations.outputs.assembly import run
from derivations.running.runner import load_document

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
FILES = sorted(p for p in CORPUS.iterdir() if p.suffix in (".md", ".tex", ".ipynb"))

# True lines of a source that the verifier does not prove for every size and every T: (file, claim id) -> why.
NOT_PROVED = {
}

@cache
def _checked(path: Path):
    doc = load_document(path)
    report = run(document=doc, jobs=1, repairs=False)
    d = read_derivation(path)
    truths = {c.id: fd.truth(ctx, c) for ctx in d.contexts for c in ctx.claims if c.lhs is not None}
    return report, truths


def _claims():
    out = []
    for path in FILES:
        for claim in read_derivation(path).claims:
            if claim.lhs is None:
                continue
            why = NOT_PROVED.get((path.stem, claim.id))
            marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
            out.append(pytest.param(path, claim.id, marks=marks, id=f"{path.stem}:{claim.id}"))
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_corpus_file_is_read_as_written_and_says_where_it_comes_from(path):
    d = read_derivation(path)                                          # raises on any error
    text = path.read_text()
    assert d.claims and "deliberately wrong" in text.lower()
    assert "declaration" in text.lower()                               # the header says what was added


def test_the_corpus_has_markdown_and_latex_true_and_false_lines():
    assert {p.suffix for p in FILES} >= {".md", ".tex"}
    kinds = {t for p in FILES for t, _ in _checked(p)[1].values()}
    assert kinds >= {"true", "false", "ill-typed"}


@pytest.mark.parametrize("path, claim_id", _claims())
def test_every_verdict_agrees_with_finite_differences(path, claim_id):
    report, truths = _checked(path)
    (c,) = [c for c in report["claims"] if c["id"] == claim_id]
    truth, where = truths[claim_id]
    if truth == "true":
        assert c["verdict"] == PROVED, (c["verdict"], c["reason"])
        assert c["scope"] in ("for every size", "for every size and every T"), c["scope"]
    elif truth == "false":
        assert c["verdict"] in (REFUTED, ILL_TYPED), (where, c["verdict"], c["reason"])
    else:
        assert c["verdict"] == ILL_TYPED, (where, c["verdict"], c["reason"])


def test_every_expected_failure_names_a_claim_of_the_corpus():
    ids = {(p.stem, c.id) for p in FILES for c in read_derivation(p).claims}
    assert set(NOT_PROVED) <= ids


FD_LINES = r"""# fd
$$ z, w \in \mathbb{R}^{n}, \quad y \in \{0, 1\} $$
$$ \max(0, z) = z \odot \mathbb{1}[z > 0] \tag{relu} $$
$$ \max(0, z) = z \tag{relu-wrong} $$
$$ y^2 = y \tag{binary} $$
$$ \mathbf{1}^\top (z \odot w) = z^\top w \tag{ones} $$
$$ \|z\|^2 = z^\top z \tag{norm} $$
"""


def test_finite_differences_read_relu_the_indicator_binary_labels_ones_and_norms():
    ctx = parse_derivation(FD_LINES, "fd.md").contexts[0]
    got = {c.id: fd.truth(ctx, c)[0] for c in ctx.claims}
    assert got == {"relu": "true", "relu-wrong": "false", "binary": "true", "ones": "true", "norm": "true"}


def test_each_form_of_the_deep_learning_book_has_a_wrong_variant_that_is_refuted():
    """L^{(t)} (10.17), an entry-wise line (10.18), \\tau (10.19), a copy b^{(t)} (10.23), a sum over entries
    (10.24) and both with the copies W^{(t)}, U^{(t)} (10.25, 10.27): a deliberately wrong line of each is false
    by finite differences and refuted (a counterexample), never proved."""
    report, truths = _checked(CORPUS / "goodfellow_10_2_2.md")
    verdicts = {c["id"]: c["verdict"] for c in report["claims"]}
    for cid in ("wrong-10-17", "wrong-10-18-2", "wrong-10-18-sign", "wrong-10-19", "wrong-10-23", "wrong-10-24",
                "wrong-10-25", "wrong-10-27"):
        assert truths[cid][0] == "false" and verdicts[cid] == REFUTED, (cid, truths[cid], verdicts[cid])
