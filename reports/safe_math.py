"""User LaTeX, made safe for the report: MathML for the HTML page, whitelisted LaTeX for the PDF.

A derivation file may come from anyone, and its formulas end up in the report
verbatim.  Neither output trusts them:

* HTML: latex2mathml copies text such as `\\text{<script>...}` into its output
  unescaped.  Its output is therefore parsed with a real XML parser and rebuilt
  from a whitelist of MathML elements and attributes, with every text escaped;
  anything that does not parse, or still holds a TeX command, falls back to
  the escaped source.
* TeX: the formula is re-emitted token by token; only math commands on a
  whitelist pass, anything else becomes escaped text.  No `\\input`, `\\write`,
  `\\openout`, `\\catcode`, `\\def` or `^^` trick can reach TeX.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from latex2mathml.converter import convert
from markupsafe import Markup, escape

# ---------------------------------------------------------------- MathML for HTML

MATHML_ELEMENTS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msub", "msup", "msubsup", "mfrac", "msqrt",
    "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom",
    "menclose", "merror", "mmultiscripts", "mprescripts", "none",
})
# Elements whose content is text only: a child element inside one is text the converter failed to escape.
TOKEN_ELEMENTS = frozenset({"mi", "mn", "mo", "ms", "mtext"})
MATHML_ATTRIBUTES = frozenset({
    "display", "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace", "minsize", "maxsize",
    "largeop", "movablelimits", "symmetric", "accent", "accentunder", "form", "linethickness",
    "columnalign", "rowalign", "columnspacing", "rowspacing", "columnlines", "rowlines", "frame",
    "framespacing", "displaystyle", "scriptlevel", "width", "height", "depth", "voffset", "notation",
    "columnspan", "rowspan",
})
PRIMES = frozenset({"'", "′", "″", "‴", "''"})


def mathml(latex: str, display: str = "block") -> Markup | None:
    """Sanitized MathML for `latex`, or None when it cannot be converted faithfully."""
    try:
        root = ET.fromstring(convert(latex, display=display))
    except Exception:  # noqa: BLE001 - the converter and the parser raise many types on bad input
        return None
    out = _element(root)
    # latex2mathml passes unknown commands through as text (<mi>\foo</mi>): that is a failure too.
    if "\\" in out:
        return None
    return Markup(out)


def _name(element) -> str:
    return element.tag.rsplit("}", 1)[-1]     # the parser puts the namespace in braces before the name


def _literal(element) -> str:
    """What an element stands for as text (an unknown element is text the converter left unescaped)."""
    attrs = "".join(f' {k}="{v}"' for k, v in element.attrib.items())
    inner = (element.text or "") + "".join(_literal(c) + (c.tail or "") for c in element)
    return f"<{_name(element)}{attrs}>{inner}</{_name(element)}>"


def _text(text: str | None) -> str:
    # latex2mathml keeps TeX's escaped underscore (\_) as two characters: it means "_".
    return str(escape((text or "").replace("\\_", "_")))


def _element(element) -> str:
    name = _name(element)
    if name not in MATHML_ELEMENTS:
        return f"<mtext>{_text(_literal(element))}</mtext>"
    attrs = {k: v for k, v in element.attrib.items() if k in MATHML_ATTRIBUTES}
    if name in TOKEN_ELEMENTS:
        text = (element.text or "") + "".join(_literal(c) + (c.tail or "") for c in element)
        return _token(name, attrs, text)
    children = list(element)
    if name == "msup" and len(children) == 2 and _is_prime(children[1]):
        # f' is <msup>f ′</msup>: the prime glyph already sits high, and as a superscript Chromium
        # draws it as an accent over the letter (f́).  A prime operator after the base is how it reads.
        prime = (children[1].text or "").strip().replace("''", "″").replace("'", "′")
        return f'<mrow>{_element(children[0])}<mo lspace="0" rspace="0">{_text(prime)}</mo></mrow>'
    inner = _text(element.text) + "".join(_element(c) + _text(c.tail) for c in children)
    return f"<{name}{_attributes(attrs)}>{inner}</{name}>"


def _token(name, attrs, text) -> str:
    # MathML Core (Chromium) ignores mathvariant="sans-serif": use the Unicode sans-serif letter
    # instead, so that the note's transpose h^{\mathsf T} does not turn into an italic power T.
    if name == "mi" and attrs.get("mathvariant") == "sans-serif" and re.fullmatch(r"[A-Za-z]", text):
        return f"<mi>{_sans_letter(text)}</mi>"
    return f"<{name}{_attributes(attrs)}>{_text(text)}</{name}>"


def _is_prime(element) -> bool:
    return _name(element) in ("mi", "mo") and not len(element) and (element.text or "").strip() in PRIMES


def _attributes(attrs: dict) -> str:
    return "".join(f' {k}="{escape(v)}"' for k, v in attrs.items())


def _sans_letter(letter: str) -> str:
    """MATHEMATICAL SANS-SERIF CAPITAL/SMALL <letter> (U+1D5A0 / U+1D5BA onwards)."""
    return chr((0x1D5A0 + ord(letter) - ord("A")) if letter.isupper() else (0x1D5BA + ord(letter) - ord("a")))


# ---------------------------------------------------------------- LaTeX for the PDF

GREEK = ["alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "pi", "varpi", "rho", "varrho", "sigma", "varsigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"]
# Commands that only typeset (amsmath/amssymb): no file, no definition, no catcode, no output stream.
MATH_COMMANDS = frozenset(GREEK + ["ell", "partial", "nabla", "infty", "prime", "top", "intercal", "dagger", "emptyset", "cdot", "cdots", "ldots", "vdots", "ddots", "dots", "circ", "odot", "otimes", "oplus", "times", "div", "pm", "mp", "ast", "star", "bullet", "setminus", "sum", "prod", "int", "oint", "lim", "max", "min", "sup", "inf", "log", "ln", "exp", "sin", "cos", "tan", "tanh", "det", "dim", "ker", "arg", "to", "mapsto", "rightarrow", "leftarrow", "Rightarrow", "Leftarrow", "Leftrightarrow", "leftrightarrow", "longrightarrow", "implies", "iff", "in", "notin", "ni", "subset", "subseteq", "supset", "supseteq", "cup", "cap", "forall", "exists", "neg", "land", "lor", "le", "leq", "ge", "geq", "ne", "neq", "approx", "equiv", "sim", "simeq", "propto", "ll", "gg", "mid", "parallel", "perp", "langle", "rangle", "lvert", "rvert", "lVert", "rVert", "vert", "Vert", "lbrace", "rbrace", "lfloor", "rfloor", "lceil", "rceil", "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "quad", "qquad", "frac", "dfrac", "tfrac", "sqrt", "binom", "mathsf", "mathrm", "mathbf", "mathit", "mathcal", "mathbb", "operatorname", "hat", "widehat", "bar", "overline", "underline", "vec", "tilde", "widetilde", "dot", "ddot", "overset", "underset", "stackrel", "overbrace", "underbrace", "displaystyle", "textstyle", "scriptstyle", "limits", "nolimits", "colon", "checkmark", "boxed"])
# Commands whose argument is text, not math: re-emitted as \text{escaped text}.
TEXT_COMMANDS = frozenset({"text", "textrm", "textit", "textbf", "texttt", "textsf", "mbox"})
ENVIRONMENTS = frozenset({"matrix", "bmatrix", "pmatrix", "vmatrix", "Vmatrix", "Bmatrix", "smallmatrix",
                          "cases", "aligned", "gathered", "split"})
# Control symbols that are characters or spaces in math.
MATH_SYMBOLS = frozenset(",;:! {}|_#%&$")
# Unicode a formula may hold, as math-mode commands (pdflatex has no glyphs for the rest).
MATH_UNICODE = {
    "σ": r"\sigma", "α": r"\alpha", "β": r"\beta", "η": r"\eta", "λ": r"\lambda", "δ": r"\delta", "ε": r"\epsilon",
    "θ": r"\theta", "μ": r"\mu", "π": r"\pi", "τ": r"\tau", "φ": r"\phi", "ω": r"\omega", "Σ": r"\Sigma",
    "∂": r"\partial", "ℓ": r"\ell", "∘": r"\circ", "·": r"\cdot", "×": r"\times", "⊙": r"\odot", "−": "-",
    "≠": r"\neq", "≤": r"\leq", "≥": r"\geq", "≈": r"\approx", "→": r"\to", "⇒": r"\Rightarrow", "∑": r"\sum",
    "∈": r"\in", "∞": r"\infty", "′": "'", "ᵀ": r"^{\mathsf T}", "…": r"\ldots",
}

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\\$|\s+|.", re.DOTALL)
_COMMAND = re.compile(r"\\[A-Za-z]+")


def tex_math(latex: str, text_escape) -> str:
    """`latex` re-emitted for a math-mode argument: whitelisted commands only.

    `text_escape` escapes text for LaTeX (reports.render.tex); anything not on a
    whitelist goes through it inside \\text{...}, so TeX only typesets it.
    """
    out = _MathWriter(text_escape)
    tokens = _TOKEN.findall(latex)
    i = 0
    while i < len(tokens):
        i = out.feed(tokens, i)
    return out.close()


class _MathWriter:
    """Re-emits tokens, tracking braces and environments so the result always closes."""

    def __init__(self, text_escape):
        self.text_escape = text_escape
        self.parts: list[str] = []
        self.depth = 0          # open braces
        self.envs: list[str] = []

    def text(self, raw: str) -> None:
        self.parts.append(r"\text{" + self.text_escape(raw) + "}")

    def emit(self, piece: str) -> None:
        # TeX reads ^^5c as a backslash before anything else: never let two ^ touch.
        if piece.startswith("^") and self.parts and self.parts[-1].endswith("^"):
            self.parts.append("{}")
        self.parts.append(piece)

    def feed(self, tokens, i) -> int:
        """Emit tokens[i] (and the arguments it takes); the index of the next token."""
        tok = tokens[i]
        if _COMMAND.fullmatch(tok):
            return self._command(tokens, i)
        if tok.startswith("\\"):
            return self._control_symbol(tok, i)
        if tok.isspace():
            self.emit(" ")                              # a blank line would end the paragraph inside $...$
        elif tok == "{":
            self.depth += 1
            self.emit("{")
        elif tok == "}":
            if self.depth:
                self.depth -= 1
                self.emit("}")
            else:
                self.emit(r"\}")
        elif tok in "#%$":
            self.emit("\\" + tok)
        elif tok == "&":
            self.emit("&" if self.envs else r"\&")
        elif tok == "~":
            self.emit(" ")
        elif tok in MATH_UNICODE:
            self.emit(MATH_UNICODE[tok] + " ")
        elif tok.isascii() and (tok.isprintable()):
            self.emit(tok)
        elif ord(tok) < 32 or not tok.isprintable():
            self.emit(" ")
        else:
            self.text(tok)                               # tex() writes it as a visible U+XXXX
        return i + 1

    def _control_symbol(self, tok, i) -> int:
        symbol = tok[1:]
        if symbol == "\\":
            self.emit(r"\\" if self.envs else " ")       # a row break outside a matrix is an error
        elif symbol in MATH_SYMBOLS and symbol:
            self.emit(tok)
        else:
            self.text(tok)
        return i + 1

    def _command(self, tokens, i) -> int:
        name = tokens[i][1:]
        if name in MATH_COMMANDS:
            self.emit(tokens[i] + " ")
            return i + 1
        if name in TEXT_COMMANDS:
            argument, after = _group(tokens, i + 1)
            if argument is not None:
                self.text(_unescape(argument))
                return after
        if name in ("begin", "end"):
            env, after = _group(tokens, i + 1)
            if env in ENVIRONMENTS:
                if name == "begin":
                    self.envs.append(env)
                    self.emit(rf"\begin{{{env}}}")
                    return after
                if self.envs and self.envs[-1] == env:
                    self.envs.pop()
                    self.emit(rf"\end{{{env}}}")
                    return after
        self.text(tokens[i])
        return i + 1

    def close(self) -> str:
        tail = "}" * self.depth + "".join(rf"\end{{{env}}}" for env in reversed(self.envs))
        return "".join(self.parts) + tail


def _group(tokens, i):
    """The raw text of the brace group starting at tokens[i] (spaces skipped), and the index after it."""
    while i < len(tokens) and tokens[i].isspace():
        i += 1
    if i >= len(tokens) or tokens[i] != "{":
        return None, i
    depth, j = 0, i
    while j < len(tokens):
        depth += {"{": 1, "}": -1}.get(tokens[j], 0)
        if depth == 0:
            return "".join(tokens[i + 1: j]), j + 1
        j += 1
    return None, i


def _unescape(text: str) -> str:
    """TeX's escaped characters in text (\\_ \\{ \\& ...) as the characters they stand for."""
    return re.sub(r"\\([_{}&%$#])", r"\1", text).replace(r"\ ", " ")
