"""Tests of the report: what it says first, HTML structure and escaping, hostile input, a real
Chromium (desktop and phone widths), a real pdflatex, a snapshot.

Tools are optional on a developer machine (the test skips) but required in CI
(CI is set: the test fails), where scripts/system-deps.sh installs them.
"""
from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import time
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from conftest_report import (
    SAMPLE_CODE,
    html_structure,
    launch_chromium,
    require,
    sample_report,
    sync_playwright_or_skip,
)
from markupsafe import escape

from reports import findings, render, safe_math
from reports.render import (
    VERDICT_STYLE,
    compile_pdf,
    label_html,
    mathml,
    render_html,
    render_reports,
    render_tex,
    tex,
    tex_label,
    tex_math,
    write_reports,
)

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "snapshots" / "report_structure.txt"
SCREENSHOTS = ROOT / "reports" / "out"


def test_missing_tool_skips_locally_and_fails_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require(False, "a tool")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require(False, "a tool")
    require(True, "a tool")


@pytest.fixture(scope="module")
def report():
    return sample_report()


@pytest.fixture(scope="module")
def html(report):
    return render_html(report, SAMPLE_CODE)


class _Collect(HTMLParser):
    """Every element's (tag, attrs, ancestors), and the visible text outside <style> and code."""

    def __init__(self):
        super().__init__()
        self.elements, self.stack, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs), tuple(self.stack)))
        if tag not in ("meta", "br", "col"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data):
        if not {"style", "pre", "title"} & set(self.stack):
            self.text.append(data)


def parse(html) -> _Collect:
    p = _Collect()
    p.feed(html)
    return p


def elements(html):
    return [(tag, attrs) for tag, attrs, _ in parse(html).elements]


def page_text(html) -> str:
    return " ".join(" ".join(parse(html).text).split())


def section(html, start: str, end: str) -> str:
    """The HTML between two markers (e.g. the header)."""
    return html[html.index(start): html.index(end, html.index(start))]


# --- what a reader sees first -----------------------------------------------------------

def _as_written_wrong(report):
    return [c for c in report["claims"] if c["kind"] == "as-written" and c["verdict"] != "proved"]


def test_headline_says_what_is_wrong_from_the_data(report):
    for variant in (report, _with(report, "lemma1-dh", verdict="refuted", severity="substantive")):
        header = page_text(section(render_html(variant), "<header", "</header>"))
        for verdict, phrases in (("refuted", ("computes", "compute")), ("ill-typed", ("does not", "do not"))):
            for sev in ("substantive", "notation"):
                wrong = [c for c in _as_written_wrong(variant) if c["verdict"] == verdict and c["severity"] == sev]
                if wrong:
                    assert f"{sev} {findings.plural(len(wrong), 'line')} {phrases[len(wrong) != 1]}" in header
                for c in wrong:
                    assert page_text(str(label_html(c["label"]))) in header
    # The headline lists the refuted lines first: they compute a wrong value.
    listed = section(render_html(report), '<ul class="headline"', "</ul>")
    assert listed.index("compute a wrong value") < listed.index("type-check")


def test_headline_never_says_ok_while_as_written_lines_are_wrong(report):
    relies = render_html({**report, "ok": True})
    header = page_text(section(relies, "<header", "</header>"))
    assert "relies on corrections" in header and "OK" not in header.split()
    all_proved = _all_proved(report)
    header = page_text(section(render_html(all_proved), "<header", "</header>"))
    assert "proved as written" in header and "corrections" not in header
    assert 'class="erratum' not in render_html(all_proved)


def test_errata_come_first_and_list_the_wrong_lines_most_serious_first(html, report):
    order = ["refuted", "ill-typed", "conflict", "inconclusive"]
    severities = ["substantive", "notation", None]
    expected = [c["id"] for sev in severities for v in order for c in _as_written_wrong(report)
                if c["verdict"] == v and c.get("severity") == sev]
    listed = [a["id"].removeprefix("erratum-") for _, a in elements(html) if "erratum" in a.get("class", "").split()]
    assert listed == expected
    assert {"proved", "refuted", "ill-typed", "inconclusive"} <= {c["verdict"] for c in report["claims"]}
    ids = [a.get("id") for _, a in elements(html) if a.get("id")]
    assert ids.index("summary") < ids.index("errata") < min(ids.index(f"claim-{c['id']}") for c in report["claims"])


def _severity_variant(report, flip):
    """The sample with the severities of `flip` swapped (notation <-> substantive)."""
    other = {"notation": "substantive", "substantive": "notation"}
    variant = copy.deepcopy(report)
    for c in variant["claims"]:
        if c["id"] in flip:
            c["severity"] = other[c["severity"]]
    return variant


def test_substantive_errata_lead_the_headline_and_the_errata(report):
    for variant in (report, _severity_variant(report, {"lemma1-dW", "bptt-dh_prev"})):
        html = render_html(variant)
        header = section(html, "<header", "</header>")
        wrong = _as_written_wrong(variant)
        substantive = [c for c in wrong if c.get("severity") == "substantive"]
        notation = [c for c in wrong if c.get("severity") == "notation"]
        assert substantive and notation
        last_substantive = max(header.index(f'href="#erratum-{c["id"]}"') for c in substantive)
        assert all(header.index(f'href="#erratum-{c["id"]}"') > last_substantive for c in notation)
        listed = [a["id"].removeprefix("erratum-") for _, a in elements(html) if "erratum" in a.get("class", "").split()]
        assert listed[:len(substantive)] == [c["id"] for c in findings.wrong_claims(variant)][:len(substantive)]
        assert {c["id"] for c in substantive} == set(listed[:len(substantive)])
        sentence = findings.headline(variant)
        assert sentence.index("Substantive") < sentence.index("Notation")


def test_each_erratum_shows_its_severity_and_best_repair_with_the_change_boxed(html, report):
    for c in _as_written_wrong(report):
        item = section(html, f'id="erratum-{c["id"]}"', "</li>\n")
        text = page_text(item)
        if c.get("severity"):
            assert f"Severity: {c['severity']}" in text
        if c.get("repairs"):
            best = c["repairs"][0]
            assert str(mathml(best["marked"])) in item and "<menclose" in item
            assert best["edit"] in text
            if len(c["repairs"]) > 1:
                alternatives = section(item, '<details class="alternatives"', "</details>")
                assert all(r["edit"] in alternatives for r in c["repairs"][1:])
            else:
                assert 'class="alternatives"' not in item
        elif c.get("search"):
            assert "Repair search:" in text
    tex = render.render_tex(report)
    for c in _as_written_wrong(report):
        if c.get("repairs"):
            assert "\\boxed" in safe_math.tex_math(c["repairs"][0]["marked"], render.tex)
    assert tex.count("Repair found by search") == sum(bool(c.get("repairs")) for c in _as_written_wrong(report))


def test_each_erratum_has_why_counterexample_and_fix(html, report):
    by_id = {c["id"]: c for c in report["claims"]}
    for c in _as_written_wrong(report):
        item = section(html, f'id="erratum-{c["id"]}"', "</li>\n")
        text = page_text(item)
        if c["comment"]:
            assert page_text(str(label_html(c["comment"]))) in text
        assert str(label_html(c["reason"])) in item
        best = (c.get("repairs") or [None])[0]
        for fix in c["corrected_by"]:
            # A correction the repair search rediscovered is shown once: boxed, as the repair.
            found = best is not None and render._same_text(by_id[fix]["latex"], best["latex"])
            assert f'href="#claim-{fix}"' in item and str(mathml(best["marked"] if found else by_id[fix]["latex"])) in item
            assert ("repair search</strong> finds too" in item) or not found
        cx = c["counterexample"]
        if cx:
            assert f">{escape(cx['claimed'])}<" in item and f">{escape(cx['truth'])}<" in item
            where = findings.counterexample_view(cx)["where"]
            assert re.search(re.escape(where) + r": \w", text), text      # "column 1: the line gives"
            assert findings.percent(cx["relative_difference"]) in text


def test_counterexample_inputs_are_typeset_matrices(html, report):
    for c in report["claims"]:
        cx = c["counterexample"]
        if not cx:
            continue
        item = section(html, f'id="erratum-{c["id"]}"', "</li>\n")
        inputs = re.findall(r'<li class="statement">(.*?)</li>', item)
        view = findings.counterexample_view(cx)
        assert len(inputs) == len(view["matrices"]) + len(view["scalars"])
        for (name, rows), mml in zip(view["matrices"], inputs):
            # Every value's digits, row by row, in the typeset matrix (1/2 becomes a fraction: 1 then 2).
            digits = [d for row in rows for value in row for d in re.findall(r"\d+", value)]
            assert re.findall(r"<mn>(\d+)</mn>", mml)[-len(digits):] == digits, name
            assert "<mtable" in mml or len(rows) == len(rows[0]) == 1


def test_page_text_has_no_raw_python_or_latex(html):
    text = page_text(html)
    for raw in ("{'", "'}", "[{", "\\frac", "\\partial", "**", "3.50000"):
        assert raw not in text, raw


def test_time_separates_proving_from_the_cache(html, report):
    t = report["timing"]
    text = page_text(html)
    assert f"proving in this run {t['proved_now']['seconds']:.1f} s ({t['proved_now']['proofs']} proofs)" in text
    assert f"{t['from_cache']['proofs']} proofs from the cache (proved earlier in {t['from_cache']['seconds']:.1f} s)" in text


def test_plurals(report):
    one = _all_proved(report)
    one["claims"] = one["claims"][:1]
    one["claims"][0].update(verdict="refuted", kind="as-written", counterexample=None)
    one["summary"] = {"proved": 0, "refuted": 1}
    one["timing"] = {"wall_seconds": 1, "proved_now": {"proofs": 1, "seconds": 1}, "from_cache": {"proofs": 1, "seconds": 1}}
    text = page_text(render_html(one, "x = 1  # claim: forward-h\n"))
    assert "1 line computes a wrong value" in text
    assert not re.search(r"\b1 (lines|statements|proofs|columns|rows|corrections)\b", text), text


def test_any_verdict_renders_with_its_own_style(report):
    odd = _with(_with(report, "lemma1-dh", verdict="conflict"), "def1", verdict="undecidable")
    html = render_html(odd)
    assert "conflict — engines disagree" in html and ">undecidable<" in html
    colours = re.findall(r"\.v([a-z]+) \{ background: #([0-9A-F]{6}); \}", html)
    assert ("conflict", VERDICT_STYLE["conflict"]["colour"]) in colours
    assert len({c for _, c in colours if _ in ("proved", "refuted", "illtyped", "conflict", "inconclusive")}) == 5
    assert "undecidable" in {v for v, _ in colours}
    counts = page_text(section(html, '<ul class="counts">', "</ul>"))
    assert "conflict — engines disagree 1" in counts and "undecidable 1" in counts
    source = render_tex(odd)
    assert r"\definecolor{vconflict}{HTML}{" + VERDICT_STYLE["conflict"]["colour"] + "}" in source
    assert r"\badge{vundecidable}{undecidable}" in source


def test_primes_are_primes_and_labels_have_scripts():
    for latex in (r"f'(W h)", r"\sigma'(Z_t)"):
        out = str(mathml(latex))
        assert '<mo lspace="0" rspace="0">′</mo>' in out
        assert not re.search(r"<msup>(?:(?!</msup>).)*′", out), out     # not a superscript: Chromium draws f́
    assert str(label_html("(9): dh_t = W_hy^T dS_t")) == \
        "(9): dh<sub>t</sub> = W<sub>hy</sub><sup>T</sup> dS<sub>t</sub>"
    assert str(label_html("h_{t-1} <b>")) == "h<sub>t-1</sub> &lt;b&gt;"


# --- hostile input ------------------------------------------------------------------------

HOSTILE = [
    r"\text{<script>alert(1)</script>} x",
    r"\text{<img src=x onerror=alert(1)>}",
    r"\text{<math><mi onclick='alert(1)'>x</mi></math>} y",
    r"a \mathrm{<svg onload=alert(1)>}",
    r"\input{/etc/passwd}",
]


def _hostile_report(marker: Path | None = None) -> dict:
    r = sample_report()
    bad = list(HOSTILE)
    if marker is not None:
        bad += [rf"\input{{{marker}}}", rf"x^^5cinput{{{marker}}}", rf"\openin5={marker} \read5 to \x \x",
                r"\immediate\write18{touch pwned}", r"\openout3=pwned.tex \write3{x}", r"\catcode`\%=11",
                r"\def\loop{\loop}\loop", r"\csname input\endcsname{" + str(marker) + "}",
                r"\begin{bmatrix} a & b \\ c \end{pmatrix} } } x^a^b", "σ' ∘ 日"]
    for i, c in enumerate(r["claims"]):
        c["latex"] = bad[i % len(bad)]
        c["label"] = bad[(i + 1) % len(bad)] + " <script>alert(2)</script>"
        c["comment"] = "<img src=x onerror=alert(3)> " + bad[(i + 2) % len(bad)]
        c["reason"] = '"><script>alert(4)</script>'
    return r


def test_hostile_latex_puts_no_script_into_the_html():
    html = render_html(_hostile_report(), SAMPLE_CODE)
    for tag, attrs, ancestors in parse(html).elements:
        assert tag not in ("script", "img", "svg", "iframe", "object", "embed"), tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if "math" in ancestors:
            assert tag in safe_math.MATHML_ELEMENTS and set(attrs) <= safe_math.MATHML_ATTRIBUTES, (tag, attrs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html       # shown as the text it is


def test_tex_math_passes_only_whitelisted_commands():
    out = tex_math(r"\input{/etc/passwd} \write18{ls} \def\x{\x} \frac{a}{b} \text{\_x\input}")
    assert r"\frac {a}{b}" in out.replace("  ", " ")
    for command in ("input", "write", "def", "x"):
        assert not re.search(rf"\\{command}(?![A-Za-z])", out), command
    assert r"\text{\textbackslash{}input}" in out and r"\text{\_x\textbackslash{}input}" in out
    # TeX reads ^^5c as a backslash: two ^ never touch; braces and environments always close.
    assert "^^" not in tex_math("x^^5cinput") and "^^" not in tex_math("x^^^^005c")
    assert tex_math("{{a") == "{{a}}" and tex_math("a}") == r"a\}"
    assert tex_math(r"\begin{bmatrix} a & b") == r"\begin{bmatrix} a & b\end{bmatrix}"
    assert tex_math("a & b % c # $") == r"a \& b \% c \# \$"


def test_tex_labels_are_typeset_as_math():
    assert tex_label("(9): dh_t = W_hy^T dS_t") == \
        r"(9): \ensuremath{dh_{t}} = \ensuremath{W_{hy}^{\mathsf{T}}} \ensuremath{dS_{t}}"
    assert tex_label("∂l_t/∂h_{t-1}") == r"\ensuremath{\partial l_{t}}/\ensuremath{\partial h_{t-1}}"
    assert "textasciicircum" not in tex_label("W^T") and tex_label("a_{<b>}").count(r"\text{") == 1


# --- HTML details (unchanged behaviour) ---------------------------------------------------

def test_html_is_well_formed_and_offline(html):
    html_structure(html)  # raises on an unbalanced or unclosed element
    assert "<script" not in html.lower()
    assert "http://" not in html and "https://" not in html
    for tag, attrs in elements(html):
        assert "src" not in attrs, tag
        assert tag not in ("link", "img", "iframe", "object", "embed"), tag
        assert not attrs.get("href", "#").lstrip().startswith(("//", "file:", "data:")), attrs


def test_every_claim_has_a_section_and_its_label(html, report):
    ids = [a.get("id") for _, a in elements(html)]
    for c in report["claims"]:
        assert ids.count(f"claim-{c['id']}") == 1, c["id"]
        assert str(label_html(c["label"])) in html, c["label"]


def test_every_internal_link_has_a_target(html):
    els = elements(html)
    ids = {a["id"] for _, a in els if "id" in a}
    for _, a in els:
        if "href" in a:
            assert a["href"].startswith("#") and a["href"][1:] in ids, a["href"]


def test_text_from_claims_is_escaped(html):
    assert "&lt;script&gt;alert(" in html
    assert "<script>" not in html
    assert "Lemma 1 (1) &amp; Corollary 1 (3)" in html


def test_code_lines_link_to_their_claims(html):
    tagged = [line for line in SAMPLE_CODE.splitlines() if "# claim:" in line]
    assert tagged
    for line in tagged:
        for claim_id in line.split("# claim:")[1].split(","):
            assert f'<a href="#claim-{claim_id.strip()}">' in html
    assert "x &lt; y &amp;&amp; &#34;quoted&#34;" in html or "x &lt; y &amp;&amp; &quot;quoted&quot;" in html


def test_mathml_falls_back_to_escaped_source():
    assert mathml(r"\frac{a}{b}").startswith("<math")
    for bad in (r"\frac{1}{", r"\notacommand{x} < y"):
        out = mathml(bad)
        assert out.startswith('<code class="tex-fallback">') and "<math" not in out
    assert "&lt; y" in mathml(r"\notacommand{x} < y")


def test_missing_field_fails_loudly(report):
    broken = sample_report()
    del broken["claims"][0]["verdict"]
    with pytest.raises((jinja2.UndefinedError, KeyError)):
        render_html(broken)


# --- TeX, without TeX ------------------------------------------------------------------

def test_tex_escapes_text():
    assert tex("50% of {x_1} & #2 ~ $ \\ <b>") == (
        r"50\% of \{x\_1\} \& \#2 \textasciitilde{} \$ \textbackslash{} \ensuremath{<}b\ensuremath{>}")
    assert tex("σ ≠ ∘ × · ∂") == r"\ensuremath{\sigma} \ensuremath{\neq} \ensuremath{\circ} " \
                                 r"\ensuremath{\times} \ensuremath{\cdot} \ensuremath{\partial}"
    assert tex("日").isascii()


def test_tex_source_has_every_claim_and_its_math(report):
    source = render_tex(report, SAMPLE_CODE)
    assert source.startswith(r"\documentclass")
    for c in report["claims"]:
        assert tex_math(c["latex"]) in source
        assert tex_label(c["label"]) in source
    assert "<script>" not in source


def test_without_tex_there_is_no_pdf_but_a_hint(report, tmp_path, monkeypatch):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    paths = write_reports(report, tmp_path, None)
    assert paths["pdf"] is None and "texlive-latex-base" in paths["pdf_note"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.tex"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_report_files_respect_the_umask(report, tmp_path, monkeypatch, umask):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    old = os.umask(umask)
    try:
        write_reports(report, tmp_path, None)
    finally:
        os.umask(old)
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


# --- real TeX ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    require(shutil.which("pdflatex") is not None, "pdflatex")
    out = tmp_path_factory.mktemp("report")
    return write_reports(report, out, SAMPLE_CODE)


def _words(text):
    return re.findall(r"[A-Za-z0-9]+", unicodedata.normalize("NFKC", text))


def pdf_text(path) -> str:
    require(shutil.which("pdftotext") is not None, "pdftotext (poppler-utils)")
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True, text=True).stdout
    return unicodedata.normalize("NFKC", text).replace("-\n", "")


def test_pdf_has_every_label(written, report):
    assert sorted(p.name for p in written["html"].parent.iterdir()) == ["report.html", "report.pdf", "report.tex"]
    assert written["pdf_note"] == "compiled with pdflatex"
    text = pdf_text(written["pdf"])
    for c in report["claims"]:
        # Labels' symbols are typeset (W_hy^T: a subscript under a superscript), so pdftotext may give their
        # letters in another order: each word must be there, close to the label's first word.
        words = _words(c["label"])
        for m in re.finditer(re.escape(words[0]), text):
            if all(w in text[m.start(): m.start() + 30 * len(words)] for w in words):
                break
        else:
            pytest.fail(c["label"])
    assert "ˆ" not in text and "textasciicircum" not in text


def pdf_title(path) -> str:
    require(shutil.which("pdfinfo") is not None, "pdfinfo (poppler-utils)")
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, check=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("Title:")), "")


def test_pdf_has_the_document_title(written, report, tmp_path):
    assert pdf_title(written["pdf"]) == "Verification of " + render._view(report, None)["title"]
    titled = {**report, "document": {"note": False, "title": "W_hy & σ: 50% {of} the #1 \\input{x}",
                                     "path": "x.md", "statements": len(report["claims"])}}
    files, _ = render_reports(titled, None)
    (tmp_path / "titled.pdf").write_bytes(files["report.pdf"])
    assert pdf_title(tmp_path / "titled.pdf") == "Verification of W_hy & σ: 50% {of} the #1 \\input{x}"


def test_tex_log_is_clean(report, tmp_path):
    """No lost characters in the PDF text or its bookmarks (pdflatex only warns about those)."""
    require(shutil.which("pdflatex") is not None, "pdflatex")
    (tmp_path / "report.tex").write_text(render_tex(report, SAMPLE_CODE), encoding="utf-8")
    for _ in range(2):
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=tmp_path,
                       capture_output=True, check=True, stdin=subprocess.DEVNULL)
    log = (tmp_path / "report.log").read_text(errors="replace")
    assert "Token not allowed in a PDF string" not in log
    assert "Missing character" not in log
    assert "undefined references" not in log


def test_tex_error_raises_with_the_log():
    require(shutil.which("pdflatex") is not None, "pdflatex")
    with pytest.raises(RuntimeError, match="Undefined control sequence"):
        compile_pdf("\\documentclass{article}\\begin{document}\\nosuchcommand\\end{document}\n")


def test_pdflatex_has_a_time_limit():
    require(shutil.which("pdflatex") is not None, "pdflatex")
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="did not finish"):
        compile_pdf("\\def\\loop{\\loop}\\loop\n", timeout=2)
    assert time.monotonic() - start < 20


def test_hostile_latex_neither_reads_files_nor_runs_commands_nor_hangs(tmp_path, monkeypatch):
    require(shutil.which("pdflatex") is not None, "pdflatex")
    marker = tmp_path / "secret.tex"
    marker.write_text("SECRETMARKERCONTENTS\n")
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    files, _ = render_reports(_hostile_report(marker), SAMPLE_CODE)
    assert time.monotonic() - start < 60
    (tmp_path / "out.pdf").write_bytes(files["report.pdf"])
    text = pdf_text(tmp_path / "out.pdf")
    assert "SECRETMARKERCONTENTS" not in text and "SECRETMARKER" not in files["report.tex"].decode()
    assert "secret" in text                       # the file's name is shown, as the text it is
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned.tex").exists()


def test_a_formula_tex_rejects_does_not_cost_the_pdf(report):
    require(shutil.which("pdflatex") is not None, "pdflatex")
    bad = sample_report()
    bad["claims"][0]["latex"] = r"x^a^b \left( y"          # whitelisted commands, still a TeX error
    files, note = render_reports(bad, None)
    assert "report.pdf" in files and "source" in note
    assert r"\textasciicircum{}a" in render_tex(bad, None, math_as_source=True)


# --- real Chromium ----------------------------------------------------------------------

_FORMULAS_REACHABLE = """() => {
  // For every formula: the box it scrolls in, whether its whole width can be scrolled into view,
  // and whether a scrollbar is drawn when it overflows.
  const extent = (m) => {
    let left = Infinity, right = -Infinity;
    for (const e of [m, ...m.querySelectorAll('*')]) {
      const r = e.getBoundingClientRect();
      if (r.width > 0) { left = Math.min(left, r.left); right = Math.max(right, r.right); }
    }
    return [left, right];
  };
  return [...document.querySelectorAll('math')].map(m => {
    const box = m.closest('.statement, .scroll');
    if (!box) { const [l, r] = extent(m); return {box: false, fits: l >= -1 && r <= document.documentElement.clientWidth + 1}; }
    const style = getComputedStyle(box);
    const bar = box.offsetHeight - box.clientHeight - parseFloat(style.borderTopWidth) - parseFloat(style.borderBottomWidth);
    box.scrollLeft = 0;
    const b = box.getBoundingClientRect(), [l] = extent(m);
    box.scrollLeft = box.scrollWidth;
    const [, r] = extent(m);
    box.scrollLeft = 0;
    return {box: true, overflows: box.scrollWidth > box.clientWidth + 1, bar,
            left: l >= b.left - 1, right: r <= b.right + 1, boxFits: b.left >= -1 && b.right <= document.documentElement.clientWidth + 1};
  });
}"""

_WIDER_THAN_VIEWPORT = """() => [...document.querySelectorAll('body *')]
  .filter(e => !e.parentElement.closest('.statement, .scroll, pre, details:not([open])'))
  .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.left < -1 || r.right > document.documentElement.clientWidth + 1); })
  .map(e => e.tagName + '.' + e.className)"""


def test_chromium_renders_offline_math_and_fits_a_phone(written):
    sync_playwright = sync_playwright_or_skip()
    url = written["html"].resolve().as_uri()
    errors, requests = [], []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            boxes = page.eval_on_selector_all(
                "math", "els => els.map(e => [e instanceof MathMLElement, e.getBoundingClientRect().width,"
                        " e.getBoundingClientRect().height])")
            mtext_font = page.eval_on_selector("mtext", "e => getComputedStyle(e).fontFamily")
            desktop = page.evaluate(_FORMULAS_REACHABLE)

            page.set_viewport_size({"width": 400, "height": 800})
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            body_overflow = page.evaluate("document.body.scrollWidth - document.body.clientWidth")
            too_wide = page.evaluate(_WIDER_THAN_VIEWPORT)
            phone = page.evaluate(_FORMULAS_REACHABLE)
            # Screenshots last: a full-page screenshot resizes the page, and Chromium then leaves some
            # scroll boxes without their scrollbar until the next load.
            page.screenshot(path=str(SCREENSHOTS / "report-phone.png"), full_page=False)
            page.set_viewport_size({"width": 1280, "height": 900})
            page.screenshot(path=str(SCREENSHOTS / "report-desktop.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requests == [url]
    assert len(boxes) >= len(sample_report()["claims"])
    assert all(is_mathml and w > 0 and h > 0 for is_mathml, w, h in boxes), boxes
    assert not mtext_font.startswith('"Latin Modern Math"'), mtext_font     # \text{...} is text
    assert overflow <= 0 and body_overflow <= 0 and too_wide == []
    for formulas in (desktop, phone):
        assert all(f["fits"] for f in formulas if not f["box"])
        boxed = [f for f in formulas if f["box"]]
        assert all(f["left"] and f["right"] and f["boxFits"] for f in boxed), boxed
        assert all(f["bar"] > 0 for f in boxed if f["overflows"]), "an overflowing formula without a scrollbar"
    assert any(f["overflows"] for f in phone if f["box"]), "no wide formula at 400 px: the scroll is untested"


_TEXT_ON_ITS_BACKGROUND = r"""() => {
  // Every element with text of its own: its computed text colour and the background it is drawn on
  // (its own, or the first ancestor's that is not transparent; the canvas is white), as sRGB.
  const rgba = (s) => {
    const m = s.match(/rgba?\(([^)]*)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const background = (e) => {
    for (let x = e; x; x = x.parentElement) {
      const c = rgba(getComputedStyle(x).backgroundColor);
      if (c && c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
  };
  return [...document.querySelectorAll('body *')]
    .filter(e => [...e.childNodes].some(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim()))
    .map(e => ({element: e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().replace(/\s+/g, '.') : ''),
                text: e.textContent.trim().slice(0, 40), colour: rgba(getComputedStyle(e).color), background: background(e)}));
}"""


def _luminance(rgb) -> float:
    def channel(c):
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a, b) -> float:
    """WCAG's contrast ratio of two sRGB colours: 1 (the same colour) to 21 (black on white)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_is_a_ratio():
    assert contrast([255, 255, 255], [0, 0, 0]) == pytest.approx(21)
    assert contrast([179, 38, 30], [179, 38, 30]) == 1


def test_every_text_is_readable_on_its_background(written):
    """No text in the colour of what it is drawn on (the erratum's severity tag once was red on red): for every
    element with text, the computed colour against the first non-transparent background up its ancestors."""
    sync_playwright = sync_playwright_or_skip()
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(written["html"].resolve().as_uri(), wait_until="load")
            texts = page.evaluate(_TEXT_ON_ITS_BACKGROUND)
        finally:
            browser.close()
    assert len(texts) > 100
    assert any("severity-tag" in t["element"] for t in texts)
    # 3:1 is WCAG's least contrast for large text; anything under it is hard to read, the same colour is 1:1.
    unreadable = [t for t in texts if t["colour"][3] == 0 or contrast(t["colour"], t["background"]) < 3]
    assert unreadable == []


# --- snapshot ---------------------------------------------------------------------------

def test_html_structure_matches_snapshot(html):
    assert SNAPSHOT.exists(), "no snapshot: run python scripts/update_report_snapshot.py"
    assert html_structure(html) == SNAPSHOT.read_text(), (
        "the HTML structure changed; if intended, run python scripts/update_report_snapshot.py and review the diff")


# --- helpers ----------------------------------------------------------------------------

def _with(report: dict, claim_id: str, **changes) -> dict:
    """A copy of `report` with one claim changed, and the summary recounted."""
    r = {**report, "claims": [dict(c, **changes) if c["id"] == claim_id else dict(c) for c in report["claims"]]}
    r["summary"] = {}
    for c in r["claims"]:
        r["summary"][c["verdict"]] = r["summary"].get(c["verdict"], 0) + 1
    return r


def _all_proved(report: dict) -> dict:
    r = {**report, "ok": True, "claims": [dict(c, verdict="proved", counterexample=None) for c in report["claims"]]}
    r["summary"] = {"proved": len(r["claims"])}
    return r


HOSTILE_FILE = r"""# <script>alert('title')</script> \input{SECRET}

$$ W \in \mathbb{R}^{m \times n}, \quad h \in \mathbb{R}^{n} $$

## <img src=x onerror=alert(1)> \write18{touch pwned}

$$ W h = W h \quad \text{<script>alert(2)</script> \input SECRET} \tag{<b onmouseover=alert(3)>x} $$

> Label: <script>alert(4)</script> \input{SECRET} \catcode`\^=13 \def\x{\x}\x
> Comment: <iframe src="javascript:alert(5)"></iframe> \openout1=pwned \immediate\write18{touch pwned}
> Reading: <svg onload=alert(6)> \input{SECRET}

$$ W^T h = W h \tag{wrong} $$
"""


def test_a_hostile_derivation_file_puts_no_script_in_the_html_and_no_file_into_the_pdf(tmp_path, monkeypatch):
    """Everything a file's author controls (title, headings, labels, tags, remarks, comments, readings)
    reaches the report as text: no script, no event attribute, no TeX command."""
    require(shutil.which("pdflatex") is not None, "pdflatex")
    marker = tmp_path / "SECRET.tex"
    marker.write_text("SECRETMARKERCONTENTS\n")
    source = tmp_path / "hostile.md"
    source.write_text(HOSTILE_FILE.replace("SECRET", str(marker.with_suffix(""))))
    monkeypatch.chdir(tmp_path)
    from derivations.outputs.cli import main
    start = time.monotonic()
    status = main([str(source), "--out", str(tmp_path / "out"), "--jobs", "1", "--no-cache"])
    assert status == 1                                   # one claim proved, one ill-typed: a verdict, not a crash
    assert time.monotonic() - start < 120
    html = (tmp_path / "out" / "report.html").read_text()
    assert "alert(" in html                              # the text is there, escaped ...
    lowered = html.lower()
    assert "<script" not in lowered and "<iframe" not in lowered and "<svg" not in lowered and "<img" not in lowered
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", lowered)       # ... and no element carries an event attribute
    assert "javascript:" not in re.sub(r">[^<]*<", "><", lowered)  # not in any attribute either
    text = pdf_text(tmp_path / "out" / "report.pdf")
    assert "SECRETMARKERCONTENTS" not in text
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned.tex").exists()


def test_a_small_relative_difference_is_not_shown_as_zero():
    from reports.findings import percent
    assert [percent(x) for x in (0.75, 0.04, 0.0026, 0.0000123)] == ["75%", "4%", "0.26%", "0.0012%"]


def test_an_exact_zero_computed_at_working_precision_is_shown_as_0():
    """sin(π) at the explicit engine's 60 digits is about 1e-61, not -1.45852e-62: the report shows 0."""
    import mpmath

    from derivations.engines import explicit
    with mpmath.workdps(explicit.DIGITS):
        rounding_zero = -mpmath.sin(mpmath.pi)
        assert rounding_zero != 0
        assert explicit.show_mp(rounding_zero) == "0" and explicit.show_mp(rounding_zero, 15) == "0"
        assert explicit.show_mp(mpmath.mpf("1e-30")) == "1e-30"
        assert explicit.show_mp(mpmath.mpf(2) / 3) == "0.666667"
        assert explicit.show_mp(mpmath.mpf(2) / 3, 15) == "0.666666666666667"


def _as_user_file(report: dict) -> dict:
    """The sample as a user's derivation file: no Python builders (only the note has them)."""
    claims = [dict(c, source="latex", search=None if (c.get("search") or {}).get("skipped") else c.get("search"))
              for c in report["claims"]]
    return {**report, "claims": claims, "algorithm_diagnosis": None,
            "document": {"note": False, "title": "My derivation", "path": "mine.md", "statements": len(claims)}}


def test_a_wrong_line_without_correction_says_so_in_plain_words(report):
    from derivations.outputs.cli import summary
    for variant, where in ((report, "the note"), (_as_user_file(report), "the file")):
        html, tex_source = render_html(variant), render_tex(variant)
        terminal = summary(variant, {})
        uncorrected = [c for c in _as_written_wrong(variant) if not c["corrected_by"]]
        assert uncorrected
        for c in uncorrected:
            item = page_text(section(html, f'id="erratum-{c["id"]}"', "</li>\n"))
            assert f"No correction is written in {where} for this line" in item
            assert ("the repair above is proved" in item) == bool(c.get("repairs"))
        assert tex_source.count(f"No correction is written in {where}") == len(uncorrected)
        assert terminal.count(f"no correction is written in {where}") == len(uncorrected)
        if where == "the file":
            for text in (page_text(html), tex_source, terminal):
                for jargon in ("registered", "builder"):
                    assert jargon not in text.lower(), jargon


# --- the real reports: the note's and the examples' -------------------------------------------------

EXAMPLES = sorted((ROOT / "examples").glob("*.md"))


@pytest.fixture(scope="module", params=["note", *EXAMPLES], ids=lambda p: getattr(p, "stem", p))
def real(request, note_report, example_report):
    """(report dict, its HTML) for the note and each example, as the engines decide them in this run."""
    r = note_report if request.param == "note" else example_report(request.param)[1]
    return r, render_html(r)


class _VisibleText(HTMLParser):
    """The page's visible text outside <math> (and <style>, <title>): what a reader sees as text; and each
    text piece with whether it is inside a link, or is a statement's own label (its heading)."""

    def __init__(self):
        super().__init__()
        self.stack, self.pieces = [], []

    def handle_starttag(self, tag, attrs):
        if tag not in ("meta", "br", "col"):
            own_label = "label" in (dict(attrs).get("class") or "").split()
            self.stack.append((tag, tag == "a" or own_label))

    def handle_endtag(self, tag):
        while self.stack and self.stack[-1][0] != tag:
            self.stack.pop()
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        if not {"style", "title", "math"} & {tag for tag, _ in self.stack}:
            self.pieces.append((data, any(linked for _, linked in self.stack)))


def visible(html) -> list[tuple[str, bool]]:
    p = _VisibleText()
    p.feed(html)
    return p.pieces


_RAW_LATEX = re.compile(r"\\[A-Za-z]+|_\{|\^\{")


def test_visible_text_finds_raw_latex():
    pieces = visible("<p>a <math><mi>\\cdot</mi></math> b</p><p>c \\frac{1}{2} x_{t}</p>")
    assert [m.group() for text, _ in pieces for m in _RAW_LATEX.finditer(text)] == ["\\frac", "_{"]


def test_real_reports_show_formulas_as_math_not_raw_latex(real):
    """Reasons, "What fails" lines, notes, counterexamples: every formula in them is MathML, no LaTeX source."""
    _, html = real
    text = " ".join(text for text, _ in visible(html))
    raw = [text[max(0, m.start() - 60): m.end() + 30] for m in _RAW_LATEX.finditer(text)]
    assert raw == []


def test_real_reports_link_every_claim_they_mention(real):
    """Every id of a claim or of a chain (its group id, its links' <id>-1) the page names links to an element."""
    report, html = real
    els = elements(html)
    ids = {a["id"] for _, a in els if "id" in a}
    assert not [a for _, a in els if "unknown-claim" in a.get("class", "").split()]
    for _, a in els:
        if a.get("href", "").startswith("#"):
            assert a["href"][1:] in ids, a["href"]
    names = {c["id"] for c in report["claims"]} | {c["group"] for c in report["claims"] if c.get("group")}
    mentioned = {i for c in report["claims"] for i in (*c.get("relies_on", []), *c.get("corrected_by", []),
                                                        c.get("corrects")) if i}
    assert mentioned <= names
    assert all(f"claim-{i}" in ids for i in names)
    # An id with a hyphen or a digit (lemma1-dz, comment2, forward-h-1) is a reference wherever it appears;
    # one like dS or embedding is also a symbol or a word of the text.
    id_like = {i for i in names if re.search(r"[-\d]", i)}
    assert id_like or not mentioned
    unlinked = [(text, token) for text, linked in visible(html) if not linked
                for token in re.findall(r"[\w.\-]+", text) if token in id_like]
    assert unlinked == []


def test_a_reason_s_formulas_are_typeset_and_printed_plain_in_the_terminal(report):
    """The engines write a reason's formulas between $...$: MathML in the page, math in the PDF, LaTeX in the terminal."""
    from derivations.outputs.cli import summary
    formula = "f'(W \\cdot h) \\cdot dV"
    variant = _with(report, "lemma1-dW", reason=f"the product ${formula}$ does not compose: m×1 times m×1")
    html = render_html(variant)
    item = section(html, 'id="erratum-lemma1-dW"', "</li>\n")
    assert str(mathml(formula, "inline")) in item and "What fails: the product <math" in item
    assert "\\cdot" not in " ".join(text for text, _ in visible(html))
    assert "\\ensuremath{" + tex_math(formula) + "} does not compose" in render_tex(variant)
    terminal = summary(variant, {})
    assert f"the product {formula} does not compose" in terminal and "$" not in terminal
