"""Tests of the report: HTML structure and escaping, a real Chromium, a real pdflatex, a snapshot.

Tools are optional on a developer machine (the test skips) but required in CI
(CI is set: the test fails), where scripts/system-deps.sh installs them.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from conftest_report import SAMPLE_CODE, html_structure, sample_report
from markupsafe import escape

from reports import render
from reports.render import compile_pdf, mathml, render_html, render_tex, tex, write_reports

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "snapshots" / "report_structure.txt"
SCREENSHOTS = ROOT / "reports" / "out"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require(present: bool, what: str) -> None:
    """Skip when a system tool is missing, except in CI, which must have installed it."""
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: run scripts/system-deps.sh and pip install playwright")
    pytest.skip(f"{what} is not installed (scripts/system-deps.sh installs it)")


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
    """Every element's (tag, attrs), in document order."""

    def __init__(self):
        super().__init__()
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(html):
    p = _Collect()
    p.feed(html)
    return p.elements


# --- HTML, without a browser ---------------------------------------------------------

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
        assert str(escape(c["label"])) in html, c["label"]


def test_every_internal_link_has_a_target(html):
    els = elements(html)
    ids = {a["id"] for _, a in els if "id" in a}
    for _, a in els:
        if "href" in a:
            assert a["href"].startswith("#") and a["href"][1:] in ids, a["href"]


def test_errata_lists_exactly_the_unproved_as_written_lines(html, report):
    expected = [c["id"] for c in report["claims"] if c["kind"] == "as-written" and c["verdict"] != "proved"]
    listed = [a["id"].removeprefix("erratum-") for _, a in elements(html) if "erratum" in a.get("class", "").split()]
    assert listed == expected
    assert {"proved", "refuted", "ill-typed", "inconclusive"} <= {c["verdict"] for c in report["claims"]}


def test_text_from_claims_is_escaped(html):
    assert "&lt;script&gt;alert(" in html
    assert "<script>" not in html
    assert "Lemma 1 (1) &amp; Corollary 1 (3)" in html


def test_counterexample_values_are_shown(html, report):
    for c in report["claims"]:
        if c["counterexample"]:
            for name, value in c["counterexample"]["values"].items():
                assert f"<code>{escape(name)}</code></td><td><code>{escape(value)}</code>" in html


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


def test_tex_source_has_every_claim_and_math_as_is(report):
    source = render_tex(report, SAMPLE_CODE)
    assert source.startswith(r"\documentclass")
    for c in report["claims"]:
        assert c["latex"] in source
        assert tex(c["label"]) in source
    assert "<script>" not in source


def test_without_tex_there_is_no_pdf_but_a_hint(report, tmp_path, monkeypatch):
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    paths = write_reports(report, tmp_path, None)
    assert paths["pdf"] is None and "texlive-latex-base" in paths["pdf_note"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.tex"]


# --- real TeX ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def written(report, tmp_path_factory):
    require(shutil.which("pdflatex") is not None, "pdflatex")
    out = tmp_path_factory.mktemp("report")
    return write_reports(report, out, SAMPLE_CODE)


def _words(text):
    return re.findall(r"[A-Za-z0-9]+", unicodedata.normalize("NFKC", text))


def test_pdf_has_every_label(written, report):
    require(shutil.which("pdftotext") is not None, "pdftotext (poppler-utils)")
    assert sorted(p.name for p in written["html"].parent.iterdir()) == ["report.html", "report.pdf", "report.tex"]
    text = subprocess.run(["pdftotext", str(written["pdf"]), "-"], capture_output=True, check=True, text=True).stdout
    text = unicodedata.normalize("NFKC", text).replace("-\n", "")
    for c in report["claims"]:
        # Math symbols in labels come out of pdftotext in varied forms: compare the words, in order, close together.
        pattern = r"[^A-Za-z0-9]{0,20}".join(map(re.escape, _words(c["label"])))
        assert re.search(pattern, text), c["label"]


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


# --- real Chromium ----------------------------------------------------------------------

def test_chromium_renders_offline_math_and_fits_a_phone(written):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    require(sync_playwright is not None, "the playwright Python package")
    require(os.path.exists(CHROMIUM), CHROMIUM)
    url = written["html"].resolve().as_uri()
    errors, requests = [], []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            boxes = page.eval_on_selector_all(
                "math", "els => els.map(e => [e instanceof MathMLElement, e.getBoundingClientRect().width,"
                        " e.getBoundingClientRect().height])")
            page.screenshot(path=str(SCREENSHOTS / "report-desktop.png"), full_page=True)

            page.set_viewport_size({"width": 375, "height": 812})
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            body_overflow = page.evaluate("document.body.scrollWidth - document.body.clientWidth")
            page.screenshot(path=str(SCREENSHOTS / "report-phone.png"), full_page=False)
        finally:
            browser.close()
    assert errors == []
    assert requests == [url]
    assert len(boxes) >= len(sample_report()["claims"])
    assert all(is_mathml and w > 0 and h > 0 for is_mathml, w, h in boxes), boxes
    assert overflow <= 0 and body_overflow <= 0


# --- snapshot ---------------------------------------------------------------------------

def test_html_structure_matches_snapshot(html):
    assert SNAPSHOT.exists(), "no snapshot: run python scripts/update_report_snapshot.py"
    assert html_structure(html) == SNAPSHOT.read_text(), (
        "the HTML structure changed; if intended, run python scripts/update_report_snapshot.py and review the diff")
