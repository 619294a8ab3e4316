"""Render the verifier's report dict as HTML and LaTeX (and PDF when TeX is installed).

The last step of note -> proof -> code -> report.  The dict is the one written as
report.json.  `render_reports` builds every file in memory (the CLI writes them
only once everything has rendered); `write_reports` renders and writes.  Two
Jinja2 environments, one per output: HTML autoescapes everything, TeX escapes
text with the `tex` filter and uses <% %> / << >> delimiters so TeX's own braces
and `#` never clash with Jinja's.  Math (each claim's `latex`) becomes sanitized
MathML at build time (`reports.safe_math`), so the HTML page needs no script and
no network; in TeX it passes a whitelist of math commands.

What the page says first (headline, errata, counterexamples) comes from
`reports.findings`, which the terminal summary uses too.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import unicodedata
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from . import findings, safe_math
from .files import write_all

# Each verdict's colour and label.  Verdicts are data: one missing here still
# renders, in UNKNOWN_STYLE with its own name.
VERDICT_STYLE = {
    "proved": {"colour": "1A7F37", "label": "proved"},
    "refuted": {"colour": "C62828", "label": "refuted"},
    "ill-typed": {"colour": "A04F00", "label": "ill-typed"},
    "conflict": {"colour": "8250DF", "label": "conflict — engines disagree"},
    "inconclusive": {"colour": "5F6368", "label": "inconclusive"},
    "checked": {"colour": "7A5C00", "label": "checked, not proved"},
}
UNKNOWN_STYLE = {"colour": "24292F"}
# What each severity of an erratum means (derivations.analyses.repair.severity).
SEVERITY_TEXT = {
    "substantive": "the line type-checks and computes another value, or needs more than a change of notation: "
                   "code that follows it is wrong",
    "notation": "the line does not type-check and one change of notation (a transpose of a vector, · for ∘, a "
                "column for a diagonal) repairs it: a reader who follows the proof is not misled",
}
VERDICTS = tuple(VERDICT_STYLE)
PDFLATEX_SECONDS = 60      # per run: a hostile formula must not hold the build
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
    """The formula as sanitized MathML; its escaped source in <code> when it does not convert."""
    out = safe_math.mathml(latex, display)
    if out is None:
        return Markup('<code class="tex-fallback">') + escape(latex) + Markup("</code>")
    return out


def verdict_style(verdict: str) -> dict:
    return VERDICT_STYLE.get(verdict, {**UNKNOWN_STYLE, "label": verdict})


def verdict_class(verdict: str) -> str:
    """A CSS class / TeX colour name for any verdict: letters only."""
    return "v" + re.sub(r"[^a-z]", "", verdict.lower())


# --- labels: the note's ASCII math (W_hy^T, h_{t-1}) typeset ----------------------

_LABEL_SYMBOL = re.compile(r"([A-Za-z∂ℓσ]+|\d+)((?:[_^](?:\{[^{}]*\}|[A-Za-z0-9]+))+)")
_SCRIPT = re.compile(r"([_^])(\{[^{}]*\}|[A-Za-z0-9]+)")


def label_pieces(label: str) -> list[tuple]:
    """('text', s) and ('symbol', base, [(kind, script), ...]) pieces of a label, in order."""
    pieces, pos = [], 0
    for m in _LABEL_SYMBOL.finditer(label):
        if m.start() > pos:
            pieces.append(("text", label[pos:m.start()]))
        scripts = [(k, body[1:-1] if body.startswith("{") else body) for k, body in _SCRIPT.findall(m.group(2))]
        pieces.append(("symbol", m.group(1), scripts))
        pos = m.end()
    if pos < len(label):
        pieces.append(("text", label[pos:]))
    return pieces


def label_html(label: str) -> Markup:
    """A label with its subscripts and superscripts as <sub>/<sup>, everything escaped."""
    out = []
    for piece in label_pieces(label):
        if piece[0] == "text":
            out.append(str(escape(piece[1])))
            continue
        _, base, scripts = piece
        out.append(str(escape(base)))
        for kind, body in scripts:
            tag = "sub" if kind == "_" else "sup"
            out.append(f"<{tag}>{label_html(body)}</{tag}>")
    return Markup("".join(out))


_INLINE_MATH = re.compile(r"(?<!\\)\$([^$]+?)(?<!\\)\$")


def prose_pieces(text: str) -> list[tuple[str, str]]:
    """("text", ...) and ("math", ...) pieces of a comment or reading: inline math is written $...$."""
    pieces, pos = [], 0
    for m in _INLINE_MATH.finditer(text):
        if m.start() > pos:
            pieces.append(("text", text[pos:m.start()]))
        pieces.append(("math", m.group(1)))
        pos = m.end()
    if pos < len(text):
        pieces.append(("text", text[pos:]))
    return pieces


def prose_html(text: str, refs: dict | None = None) -> Markup:
    """A comment, a reading or a reason: its $...$ as (sanitized) inline MathML, the rest as a label, and
    every claim id it names that looks like one (bptt-dW_hh, comment2) a link to that claim (`refs`)."""
    return Markup("".join(str(mathml(body, display="inline")) if kind == "math" else str(_linked(body, refs))
                          for kind, body in prose_pieces(text)))


def _linked(text: str, refs: dict | None) -> Markup:
    ids = sorted((i for i in (refs or {}) if re.search(r"[-\d]", i) and i in text), key=len, reverse=True)
    if not ids:
        return label_html(text)
    out, pos = [], 0
    for m in re.finditer(r"(?<![\w.\-])(" + "|".join(map(re.escape, ids)) + r")(?![\w\-]|\.\w)", text):
        out.append(str(label_html(text[pos:m.start()])))
        out.append(f'<a href="#claim-{escape(m.group(1))}">{escape(m.group(1))}</a>')
        pos = m.end()
    out.append(str(label_html(text[pos:])))
    return Markup("".join(out))


@jinja2.pass_context
def _prose_filter(context, text: str) -> Markup:
    return prose_html(text, context.get("refs"))


HTML_ENV.filters.update(mathml=mathml, label=label_html, prose=_prose_filter, vclass=verdict_class)


# `# claim: a, b` or, as numpy_module writes it, `# claim: a (line 3), b (line 9)`.
_CLAIM_TAG = re.compile(r"#\s*claim:\s*(?P<ids>[\w.\-]+(?: \(line \d+\))?(?:\s*,\s*[\w.\-]+(?: \(line \d+\))?)*)\s*$")


def code_lines(code: str | None) -> list[dict]:
    """Split the generated module into lines, each with the claim ids its comment names."""
    lines = []
    for number, text in enumerate((code or "").splitlines(), start=1):
        m = _CLAIM_TAG.search(text)
        ids = [i.split(" (line")[0].strip() for i in m.group("ids").split(",")] if m else []
        head = text[: m.start()] if m else text
        tag = text[m.start(): m.start("ids")] if m else ""
        lines.append({"number": number, "text": text, "head": head, "tag": tag, "ids": ids})
    return lines


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
    "✗": r"\ensuremath{\times}",
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


# Letters of the note's labels that are math symbols, as math-mode commands.
_MATH_LETTERS = {"∂": r"\partial ", "ℓ": r"\ell ", "σ": r"\sigma "}


def tex_label(label: str) -> str:
    """A label for the PDF: its symbols (W_hy^T, h_{t-1}) typeset as math, the rest escaped text."""
    out = []
    for piece in label_pieces(label):
        if piece[0] == "text":
            out.append(tex(piece[1]))
        else:
            out.append(r"\ensuremath{" + _tex_symbol(piece[1], piece[2]) + "}")
    return "".join(out)


def _tex_symbol(base: str, scripts) -> str:
    math, used = "".join(_MATH_LETTERS.get(ch, ch) for ch in base), set()
    for kind, body in scripts:
        if kind in used:                  # a_b_c: TeX rejects a double subscript, {a_b}_c is fine
            math, used = "{" + math + "}", set()
        used.add(kind)
        # A transpose is the note's sans-serif T; other scripts are math themselves (t-1, y=y_t).
        inner = r"\mathsf{T}" if kind == "^" and body == "T" else _tex_script(body)
        math += f"{kind}{{{inner}}}"
    return math


def _tex_script(body: str) -> str:
    out = []
    for piece in label_pieces(body):
        if piece[0] == "symbol":
            out.append(_tex_symbol(piece[1], piece[2]))
        elif re.fullmatch(r"[A-Za-z0-9+\-=,. ]*", piece[1]):
            out.append(piece[1])
        else:
            out.append(r"\text{" + tex(piece[1]) + "}")
    return "".join(out)


def tex_math(latex: str, as_source: bool = False) -> str:
    """A formula for a math-mode argument: whitelisted commands only (reports.safe_math); or, as the
    fallback when TeX cannot typeset some formula, its source as typewriter text."""
    if as_source:
        return r"\text{\ttfamily " + tex(latex) + "}"
    return safe_math.tex_math(latex, tex)


def tex_prose(text: str) -> str:
    """A comment or a reading for the PDF: its $...$ as whitelisted math, the rest as a label."""
    return "".join(r"\ensuremath{" + tex_math(body) + "}" if kind == "math" else tex_label(body)
                   for kind, body in prose_pieces(text))


TEX_ENV.filters.update(tex=tex, tex_heading=tex_heading, tex_code=tex_code, tex_anchor=tex_anchor,
                       tex_label=tex_label, tex_pdf=tex_pdf, tex_math=tex_math, tex_prose=tex_prose,
                       vclass=verdict_class)


# --- the view shared by both templates ------------------------------------------

def _sections(claims) -> list[dict]:
    sections: list[dict] = []
    for c in claims:
        if not sections or sections[-1]["title"] != c["section"]:
            sections.append({"title": c["section"], "claims": []})
        sections[-1]["claims"].append(c)
    return sections


def _number_latex(value: str) -> str:
    r"""An exact value as LaTeX: -3/2 -> -\frac{3}{2}; anything else as text."""
    m = re.fullmatch(r"(-?)(\d+)(?:/(\d+))?", value)
    if m is None:
        return r"\text{" + value.replace("\\", " ").replace("{", "(").replace("}", ")") + "}"
    sign, num, den = m.groups()
    return f"{sign}\\frac{{{num}}}{{{den}}}" if den else f"{sign}{num}"


def name_latex(name: str) -> str:
    r"""A variable's name as LaTeX: W_hh -> W_{hh}, eta -> \eta; anything unusual as text."""
    m = re.fullmatch(r"([A-Za-z]+)(?:_([A-Za-z0-9]+))?", name)
    if m is None:
        return r"\text{" + re.sub(r"[^A-Za-z0-9()' ]", " ", name) + "}"
    base = "\\" + m[1] if m[1] in safe_math.GREEK else m[1]
    return base + (f"_{{{m[2]}}}" if m[2] else "")


def _python_to_latex(expr: str) -> str:
    """x**3 + x**2 + 2*x + 1 -> x^{3} + x^{2} + 2 x + 1 (the concrete f that `derivations.recheck`
    substitutes for a generic f)."""
    return re.sub(r"\*\*(\w+)", r"^{\1}", expr).replace("*", " ")


def counterexample_view(cx: dict | None, parsed: bool = False) -> dict | None:
    """findings.counterexample_view, with each input typeset as LaTeX (a matrix, or name = value)."""
    if not cx:
        return None
    view = findings.counterexample_view(cx, parsed)
    view["inputs"] = [
        f"{name_latex(name)} = " + (_number_latex(rows[0][0]) if len(rows) == 1 and len(rows[0]) == 1 else
                                    r"\begin{bmatrix}" + r" \\ ".join(" & ".join(map(_number_latex, row))
                                                                      for row in rows) + r"\end{bmatrix}")
        for name, rows in view["matrices"]]
    view["inputs"] += [f"{name} = {_python_to_latex(value)}" for name, value in view["scalars"]]
    return view


def _erratum(report: dict, c: dict, number: int, by_id: dict) -> dict:
    corrections = findings.corrections(c, by_id)
    best = (c.get("repairs") or [None])[0]
    for fix in corrections:
        # The correction the search rediscovered is shown once: the boxed repair, under "write instead".
        fix["found_by_search"] = bool(best and fix["checked"] and _same_text(fix["latex"], best["latex"]))
    return {"claim": c, "number": number, "corrections": corrections, "no_correction": findings.no_correction(report, c),
            "repair_is_correction": any(f["found_by_search"] for f in corrections),
            "cx": counterexample_view(c.get("counterexample"), c.get("source") == "latex")}


def _same_text(a: str, b: str) -> bool:
    return re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b)


def _method_summary(c: dict) -> str:
    """'concrete ✓ · all sizes ✓': the engines that checked a claim, at a glance."""
    marks = {"proved": "✓", "refuted": "✗", "ill-typed": "✗", "conflict": "≠"}
    return " · ".join(f"{m['method']} {marks.get(m['verdict'], '?')}" for m in c.get("methods", []))


def _sizes(sizes: dict) -> str:
    """{'H': 'H', 'E': 'E'} -> 'symbolic H, E'; {'H': 2} -> 'H = 2'."""
    symbolic = [k for k, v in sizes.items() if str(v) == k]
    fixed = [f"{k} = {v}" for k, v in sizes.items() if str(v) != k]
    return ", ".join(([f"symbolic {', '.join(symbolic)}"] if symbolic else []) + fixed) or "—"


def _counts(report: dict) -> list[tuple[str, int]]:
    """(verdict, count): the summary's verdicts in the styles' order, then any other verdict that occurs."""
    summary = dict(report["summary"])
    for c in report["claims"]:
        summary.setdefault(c["verdict"], sum(x["verdict"] == c["verdict"] for x in report["claims"]))
    return sorted(summary.items(), key=lambda kv: (VERDICTS.index(kv[0]) if kv[0] in VERDICTS else len(VERDICTS)))


_PART_OF_CHAIN = re.compile(r"\s*\[\d+/\d+\]$")


def references(claims) -> dict:
    """Every id a reference may name -> the label its link shows: each claim's id, and a chain's group id
    (`Corrects: lemma1-dz`, `relies on comment2`), shown as its first link's label without its "[1/2]"."""
    refs = {c["id"]: c["label"] for c in claims}
    for c in claims:
        if c.get("group") and c["group"] not in refs:
            refs[c["group"]] = _PART_OF_CHAIN.sub("", c["label"])
    return refs


def group_anchors(claims) -> dict:
    """{first link's id: its chain's group id}, for each chain whose group id is not a claim's: the first link
    carries the group's anchor too."""
    ids, out = {c["id"] for c in claims}, {}
    for c in claims:
        g = c.get("group")
        if g and g not in ids and g not in out.values():
            out[c["id"]] = g
    return out


def _view(report: dict, code: str | None) -> dict:
    """What both templates need, computed once: headline, errata, sections in the note's order, code."""
    claims = report["claims"]
    by_id = {c["id"]: c for c in claims}
    wrong_as_written = [c for c in findings.wrong_claims(report) if c["kind"] == "as-written"]
    errata = [_erratum(report, c, k, by_id) for k, c in enumerate(wrong_as_written, start=1)]
    counts = _counts(report)
    lines = code_lines(code) if code else []
    doc = report.get("document") or {"note": True}
    return {
        "title": "a handwritten BPTT derivation for a vanilla RNN" if doc.get("note", True)
        else (doc.get("title") or doc.get("path") or "a derivation"),
        "noun": "the note" if doc.get("note", True) else "the derivation",
        "r": report,
        "by_id": by_id,
        "refs": references(claims),
        "group_anchor": group_anchors(claims),
        "status": findings.status(report),
        "groups": findings.groups(report),
        "sections": _sections(claims),
        "errata": errata,
        "erratum_of": {e["claim"]["id"]: e["number"] for e in errata},
        "counts": counts,
        "styles": {v: verdict_style(v) for v in dict.fromkeys([*VERDICTS, *(v for v, _ in counts)])},
        "timing": findings.timing_text(report),
        "methods": _method_summary,
        "code": lines,
        "tagged_code": [line for line in lines if line["ids"]],
        "diagnosis": report.get("algorithm_diagnosis"),
        "diagnosis_rows": findings.diagnosis_rows(report),
        "numeric": report.get("numeric_module"),
        "plural": findings.plural,
        "derived_words": findings.derived_words,
        "severity_text": SEVERITY_TEXT,
    }


def render_html(report: dict, code: str | None = None) -> str:
    return HTML_ENV.get_template("report.html.j2").render(**_view(report, code))


def render_tex(report: dict, code: str | None = None, math_as_source: bool = False) -> str:
    return TEX_ENV.get_template("report.tex.j2").render(**_view(report, code), math_as_source=math_as_source)


# --- files ------------------------------------------------------------------------

def compile_pdf(tex_source: str, timeout: float = PDFLATEX_SECONDS) -> bytes | None:
    """The PDF of `tex_source`, or None when no TeX is installed.

    pdflatex runs twice so that hyperref's targets and the bookmarks resolve,
    each run with a time limit and without shell escape.  Compilation happens in
    a temporary directory so that .aux/.log never litter the output directory.
    """
    pdflatex, latexmk = shutil.which("pdflatex"), shutil.which("latexmk")
    if not (pdflatex or latexmk):
        return None
    with tempfile.TemporaryDirectory(prefix="bptt-report-") as tmp:
        (Path(tmp) / "report.tex").write_text(tex_source, encoding="utf-8")
        flags = ["-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape"]
        runs = [[pdflatex, *flags, "report.tex"]] * 2 if pdflatex else [[latexmk, "-pdf", *flags, "report.tex"]]
        for cmd in runs:
            try:
                proc = subprocess.run(cmd, check=False, cwd=tmp, capture_output=True, timeout=timeout,
                                      stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"{Path(cmd[0]).name} did not finish report.tex within {timeout:.0f} s") from None
            if proc.returncode != 0:
                log = Path(tmp) / "report.log"
                text = log.read_text(errors="replace") if log.exists() else proc.stdout.decode(errors="replace")
                tail = "\n".join(text.splitlines()[-40:])
                raise RuntimeError(f"{Path(cmd[0]).name} failed on report.tex (exit {proc.returncode}):\n{tail}")
        return (Path(tmp) / "report.pdf").read_bytes()


def _pdf(report: dict, code: str | None, tex_source: str) -> tuple[bytes | None, str]:
    """The PDF and a note on how it was made.  A formula TeX rejects (the whitelist keeps it harmless,
    not necessarily valid: x^a^b) must not cost the reader the PDF: the build is redone with every
    formula shown as its source."""
    try:
        pdf = compile_pdf(tex_source)
        how = "compiled with pdflatex" if shutil.which("pdflatex") else "compiled with latexmk"
    except RuntimeError as first:
        try:
            pdf = compile_pdf(render_tex(report, code, math_as_source=True))
        except RuntimeError:
            raise first from None
        how = "compiled with every formula shown as LaTeX source: TeX rejected one of them"
    if pdf is None:
        return None, f"no pdflatex or latexmk on PATH; for the PDF report: {TEX_INSTALL_HINT}"
    return pdf, how


def render_reports(report: dict, code: str | None) -> tuple[dict[str, bytes], str]:
    """Every report file in memory ({'report.html': bytes, ...}; no PDF without TeX) and the PDF note."""
    tex_source = render_tex(report, code)
    files = {"report.html": render_html(report, code).encode(), "report.tex": tex_source.encode()}
    pdf, note = _pdf(report, code, tex_source)
    if pdf is not None:
        files["report.pdf"] = pdf
    return files, note


def write_reports(report: dict, out_dir: Path, code: str | None) -> dict:
    """Render, then write out_dir/report.html, report.tex and, when TeX is installed, report.pdf."""
    out_dir = Path(out_dir)
    files, note = render_reports(report, code)
    write_all({out_dir / name: data for name, data in files.items()})
    return {"html": out_dir / "report.html", "tex": out_dir / "report.tex",
            "pdf": out_dir / "report.pdf" if "report.pdf" in files else None, "pdf_note": note}
