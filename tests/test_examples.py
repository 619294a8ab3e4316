"""The example derivations in examples/: every claim gets its verdict from the engines.

What is expected of each example is its author's intention, read from the file
itself: a line whose `> Comment:` says it is deliberately wrong must come out
refuted or ill-typed, every other line proved.  The min-char-rnn file is the
issue's own example, whose one wrong line (the sigmoid's derivative used for
tanh) is `dWxh-sigmoid`.
"""
from pathlib import Path

import pytest

from derivations.running.runner import load_document

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.md"))


@pytest.fixture(scope="module", params=EXAMPLES, ids=lambda p: p.stem)
def checked(request, example_report):
    return example_report(request.param)


def deliberately_wrong(doc) -> set:
    return {cid for cid, f in doc.fields.items() if "deliberately wrong" in (f["comment"] or "").lower()}


def test_every_example_has_a_deliberately_wrong_line(checked):
    doc, _ = checked
    assert deliberately_wrong(doc) or doc.path.stem == "min_char_rnn"


def test_wrong_lines_are_refuted_or_ill_typed_and_every_other_line_is_proved(checked):
    doc, report = checked
    wrong = deliberately_wrong(doc) or {"dWxh-sigmoid"}
    assert wrong <= set(doc.ids)
    for c in report["claims"]:
        if c["id"] in wrong:
            assert c["verdict"] in ("refuted", "ill-typed"), (c["id"], c["reason"])
        else:
            assert c["verdict"] == "proved", (c["id"], c["reason"])
    assert report["conflicts"] == []


def test_every_deliberately_wrong_line_gets_a_proved_repair_or_derived_line_and_a_severity(checked):
    """The repair search ran in the same run (derivations/analyses/repair.py): each wrong line has a ranked list of
    repairs that keep its left-hand side's subject, or the right-hand side derived from the definitions (a
    line missing four terms is not one edit away), each re-checked here from its printing; a proved line has
    no search at all."""
    from derivations.analyses import repair
    from derivations.form import ir
    from derivations.latex.reader import parse_statement
    doc, report = checked
    wrong = deliberately_wrong(doc) or {"dWxh-sigmoid"}
    for c in report["claims"]:
        if c["id"] not in wrong:
            assert c["search"] is None and c["repairs"] == [] and c["severity"] is None, c["id"]
            continue
        assert c["repairs"] or c["derived"], (c["id"], c["search"])
        assert all(r["verdict"] == "proved" for r in c["repairs"])
        assert c["severity"] == repair.severity(c["verdict"], c["repairs"])
        ctx, claim = doc.parsed[c["id"]]
        shown = c["repairs"][0]["latex"] if c["repairs"] else c["derived"]["latex"]
        lhs, rhs = parse_statement(shown, ctx)
        assert repair.keeps_subject(ctx, claim, ir.Claim("x", "", lhs, rhs)), shown
        assert repair.check(ctx, ir.Claim(c["id"] + "~", "", lhs, rhs))["verdict"] == "proved", shown


def test_report_fields_say_where_each_claim_is_written(checked):
    doc, report = checked
    lines = doc.path.read_text().splitlines()
    for c in report["claims"]:
        assert c["source"] == "latex" and c["label"]
        written = lines[c["line"] - 1]
        assert "$$" in written
        # The LaTeX in the report is the statement as written in the file (a chain's link: its two sides).
        first = c["latex"].split("=")[0].strip()
        assert first.split()[0] in written or first.split()[0] in "\n".join(lines[c["line"] - 1:c["line"] + 3])


def test_min_char_rnn_gives_exactly_the_issues_verdicts():
    doc = load_document(Path(__file__).resolve().parent.parent / "examples" / "min_char_rnn.md")
    assert doc.ids == ["dy", "dWhy", "dby", "dh", "dWhh", "dWxh", "dbh", "dh0", "dWxh-sigmoid"]


def test_the_report_of_every_example_renders_html_and_pdf(checked):
    """A user's file, with its own labels and comments (inline $...$, backslashes), must not break the report."""
    import shutil

    from reports.render import render_reports
    _, report = checked
    files, note = render_reports(report, None)
    assert b"<math" in files["report.html"]
    if shutil.which("pdflatex"):
        assert files.get("report.pdf", b"").startswith(b"%PDF"), note
