"""Render the verifier's report dict as HTML and LaTeX (and PDF when TeX is installed).

The last step of note -> proof -> code -> report.  The dict is the one written as
report.json; `write_reports` is the only entry point the CLI needs.  Two Jinja2
environments, one per output: HTML autoescapes everything, TeX escapes text with
the `tex` filter and uses <% %> / << >> delimiters so TeX's own braces and `#`
never clash with Jinja's.  Math (each claim's `latex`) becomes MathML at build
time, so the HTML page needs no script and no network.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from pathlib import Path

import jinja2
from latex2mathml.converter import convert
from markupsafe import Markup, escape

VERDICTS = ("proved", "refuted", "ill-typed", "inconclusive", "conflict")
TEX_INSTALL_HINT = "apt-get install texlive-latex-base texlive-latex-recommended latexmk"

_TEMPLATES = Path(__file__).parent / "templates"

HTML_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

TEX_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    autoescape=False,
    undefined=jinja2.StrictUndefined,
    block_start_string="<%", block_end_string="%>",
    variable_start_string="<<", variable_end_string=">>",
    comment_start_string="<#", comment_end_string="#>",
    trim_blocks=True,
    lstrip_blocks=True,
)


# --- HTML filters -------------------------------------------------------------

def mathml(latex: str, display: str = "block") -> Markup:
    """The formula as MathML; its escaped source in <code> when it does not convert."""
    try:
        out = convert(latex, display=display)
    except Exception:  # noqa: BLE001 - latex2mathml raises many unrelated types on bad input; a report must not crash
        out = None
    # latex2mathml keeps TeX's escaped underscore (\_) as two characters: it means "_".
    if out is not None:
        out = out.replace("\\_", "_")
    # latex2mathml passes unknown commands through as text (<mi>\foo</mi>): that is a failure too.
    if out is None or "\\" in out:
        return Markup('<code class="tex-fallback">') + escape(latex) + Markup("</code>")
    # The namespace is implied in HTML5; dropping it keeps the page free of any http:// string.
    out = out.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "")
    # MathML Core (Chromium) ignores mathvariant="sans-serif": use the Unicode sans-serif letter
    # instead, so that the note's transpose h^{\mathsf T} does not turn into an italic power T.
    return Markup(_SANS_LETTER.sub(lambda m: f"<mi>&#x{_sans_codepoint(m.group(1)):X};</mi>", out))


_SANS_LETTER = re.compile(r'<mi mathvariant="sans-serif">([A-Za-z])</mi>')


def _sans_codepoint(letter: str) -> int:
    """Code point of MATHEMATICAL SANS-SERIF CAPITAL/SMALL <letter> (U+1D5A0 / U+1D5BA onwards)."""
    return (0x1D5A0 + ord(letter) - ord("A")) if letter.isupper() else (0x1D5BA + ord(letter) - ord("a"))


_CLAIM_TAG = re.compile(r"#\s*claim:\s*(?P<ids>[\w.\-]+(?:\s*,\s*[\w.\-]+)*)\s*$")


def code_lines(code: str | None) -> list[dict]:
    """Split the generated module into lines, each with the claim ids its comment names."""
    lines = []
    for number, text in enumerate((code or "").splitlines(), start=1):
        m = _CLAIM_TAG.search(text)
        ids = [i.strip() for i in m.group("ids").split(",")] if m else []
        head = text[: m.start()] if m else text
        tag = text[m.start(): m.start("ids")] if m else ""
        lines.append({"number": number, "text": text, "head": head, "tag": tag, "ids": ids})
    return lines


HTML_ENV.filters["mathml"] = mathml


# --- TeX filters --------------------------------------------------------------

# Unicode the note's labels and reasons use, as pdflatex-safe commands.
_TEX_UNICODE = {
    "×": r"\ensuremath{\times}", "≠": r"\ensuremath{\neq}", "∘": r"\ensuremath{\circ}",
    "σ": r"\ensuremath{\sigma}", "·": r"\ensuremath{\cdot}", "∂": r"\ensuremath{\partial}",
    "ℓ": r"\ensuremath{\ell}", "−": r"\ensuremath{-}", "²": r"\ensuremath{^2}", "ᵀ": r"\ensuremath{^{\mathsf T}}",
    "′": r"\ensuremath{'}", "⊙": r"\ensuremath{\odot}", "≤": r"\ensuremath{\leq}", "≥": r"\ensuremath{\geq}",
    "≈": r"\ensuremath{\approx}", "→": r"\ensuremath{\to}", "⇒": r"\ensuremath{\Rightarrow}",
    "∑": r"\ensuremath{\sum}", "√": r"\ensuremath{\surd}", "∈": r"\ensuremath{\in}", "∞": r"\ensuremath{\infty}",
    "α": r"\ensuremath{\alpha}", "β": r"\ensuremath{\beta}", "η": r"\ensuremath{\eta}", "λ": r"\ensuremath{\lambda}",
    "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''", "…": r"\ldots{}", "✓": r"\ensuremath{\checkmark}",
}
_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "%": r"\%", "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}",
    # OT1 fonts have no < > |; math mode does.
    "<": r"\ensuremath{<}", ">": r"\ensuremath{>}", "|": r"\ensuremath{|}",
}


def tex(text) -> str:
    """Escape text (not math) for LaTeX; unknown non-ASCII becomes a visible U+XXXX."""
    out = []
    for ch in str(text):
        if ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ch in _TEX_UNICODE:
            out.append(_TEX_UNICODE[ch])
        elif ord(ch) < 128:
            out.append(ch)
        elif unicodedata.normalize("NFKD", ch).isascii():  # e.g. the ligature ﬁ: its ASCII decomposition
            out.append(tex(unicodedata.normalize("NFKD", ch)))
        else:
            out.append(rf"\texttt{{U+{ord(ch):04X}}}")
    return "".join(out)


def tex_pdf(text) -> str:
    """Text for a PDF bookmark (\\texorpdfstring): hyperref takes UTF-8 there, but not math."""
    keep = {"<", ">", "|"}
    return "".join(_TEX_SPECIAL[ch] if ch in _TEX_SPECIAL and ch not in keep else ch for ch in str(text))


def tex_heading(text) -> str:
    """A \\section title: typeset with math symbols, bookmarked as plain Unicode."""
    return rf"\texorpdfstring{{{tex(text)}}}{{{tex_pdf(text)}}}"


def tex_code(line: str) -> str:
    """One line of code for a \\texttt block: escaped, spaces kept."""
    return tex(line).replace(" ", "~")


def tex_anchor(claim_id: str) -> str:
    """A hyperref target name: ids may hold `_`, which is not safe inside \\hypertarget."""
    return "claim-" + re.sub(r"[^A-Za-z0-9-]", lambda m: f"x{ord(m.group()):x}-", claim_id)


TEX_ENV.filters.update(tex=tex, tex_heading=tex_heading, tex_code=tex_code, tex_anchor=tex_anchor)


# --- the view shared by both templates ------------------------------------------

def _view(report: dict, code: str | None) -> dict:
    """What both templates need, computed once: sections in the note's order, errata, code lines."""
    claims = report["claims"]
    by_id = {c["id"]: c for c in claims}
    sections: list[dict] = []
    for c in claims:
        if not sections or sections[-1]["title"] != c["section"]:
            sections.append({"title": c["section"], "claims": []})
        sections[-1]["claims"].append(c)
    errata = [
        {"claim": c, "corrections": [by_id[i] for i in c.get("corrected_by", []) if i in by_id]}
        for c in claims
        if c["kind"] == "as-written" and c["verdict"] != "proved"
    ]
    summary = report["summary"]
    return {
        "r": report,
        "by_id": by_id,
        "sections": sections,
        "errata": errata,
        "counts": [(v, summary.get(v, 0)) for v in VERDICTS],
        "code": code_lines(code) if code else [],
        "induction": report.get("induction"),
        "numeric": report.get("numeric_module"),
        "verdicts": VERDICTS,
    }


def render_html(report: dict, code: str | None = None) -> str:
    return HTML_ENV.get_template("report.html.j2").render(**_view(report, code))


def render_tex(report: dict, code: str | None = None) -> str:
    return TEX_ENV.get_template("report.tex.j2").render(**_view(report, code))


# --- files ------------------------------------------------------------------------

def _write_atomic(path: Path, data: str | bytes) -> None:
    """Write to a temporary name beside `path`, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_pdf(tex_source: str, timeout: float = 180) -> bytes | None:
    """The PDF of `tex_source`, or None when no TeX is installed.

    pdflatex runs twice so that hyperref's targets and the bookmarks resolve.
    Compilation happens in a temporary directory so that .aux/.log never litter out_dir.
    """
    pdflatex, latexmk = shutil.which("pdflatex"), shutil.which("latexmk")
    if not (pdflatex or latexmk):
        return None
    with tempfile.TemporaryDirectory(prefix="bptt-report-") as tmp:
        (Path(tmp) / "report.tex").write_text(tex_source, encoding="utf-8")
        flags = ["-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape"]
        runs = [[pdflatex, *flags, "report.tex"]] * 2 if pdflatex else [[latexmk, "-pdf", *flags, "report.tex"]]
        for cmd in runs:
            proc = subprocess.run(cmd, check=False, cwd=tmp, capture_output=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                log = Path(tmp) / "report.log"
                text = log.read_text(errors="replace") if log.exists() else proc.stdout.decode(errors="replace")
                tail = "\n".join(text.splitlines()[-40:])
                raise RuntimeError(f"{Path(cmd[0]).name} failed on report.tex (exit {proc.returncode}):\n{tail}")
        return (Path(tmp) / "report.pdf").read_bytes()


def write_reports(report: dict, out_dir: Path, code: str | None) -> dict:
    """Write out_dir/report.html, report.tex and, when TeX is installed, report.pdf."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict = {"html": out_dir / "report.html", "tex": out_dir / "report.tex"}
    _write_atomic(paths["html"], render_html(report, code))
    tex_source = render_tex(report, code)
    _write_atomic(paths["tex"], tex_source)
    pdf = compile_pdf(tex_source)
    if pdf is None:
        paths["pdf"] = None
        paths["pdf_note"] = f"no pdflatex or latexmk on PATH; for the PDF report: {TEX_INSTALL_HINT}"
    else:
        paths["pdf"] = out_dir / "report.pdf"
        _write_atomic(paths["pdf"], pdf)
        paths["pdf_note"] = "compiled with pdflatex" if shutil.which("pdflatex") else "compiled with latexmk"
    return paths
