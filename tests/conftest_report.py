"""A sample report dict for the report tests, and the HTML structure summary they snapshot.

Not a conftest.py (pytest does not load it by itself): test_report.py and
scripts/update_report_snapshot.py import it.  The sample follows the note: its
claims, labels and LaTeX are those of derivations/note, with every verdict kind,
a counterexample, corrections, and text that must be escaped.
"""
from __future__ import annotations

import copy
import functools
import os
from html.parser import HTMLParser

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Playwright hides scrollbars by default; a reader's browser draws them, and the tests check them.
CHROMIUM_KEEP_SCROLLBARS = ["--hide-scrollbars"]


def require(present: bool, what: str) -> None:
    """Skip when a system tool is missing, except in CI, which must have installed it."""
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: run scripts/system-deps.sh and pip install playwright")
    pytest.skip(f"{what} is not installed (scripts/system-deps.sh installs it)")


def launch_chromium(p):
    """The system's Chromium, headless, offline, drawing scrollbars as a reader's browser does."""
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                             ignore_default_args=CHROMIUM_KEEP_SCROLLBARS)


def sync_playwright_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    require(sync_playwright is not None, "the playwright Python package")
    require(os.path.exists(CHROMIUM), CHROMIUM)
    return sync_playwright

MN = [{"m": 1, "n": 1}, {"m": 2, "n": 2}, {"m": 2, "n": 3}, {"m": 3, "n": 2}]
RNN = [{"H": 1, "E": 1, "V": 1}, {"H": 2, "E": 2, "V": 2}, {"H": 2, "E": 3, "V": 3}, {"H": 3, "E": 2, "V": 2}]
BPTT = [{"H": 1, "E": 1, "V": 1, "T": 2}, {"H": 2, "E": 2, "V": 2, "T": 1}, {"H": 2, "E": 3, "V": 2, "T": 3}]


def _claim(id, label, latex, section, verdict, *, kind="as-written", corrects=None, corrected_by=(),
           relies_on=(), comment="", reason="", shapes=MN, seconds=0.1, counterexample=None, methods=None):
    if methods is None:
        methods = [{"method": "concrete", "verdict": verdict, "shapes": list(shapes), "seconds": seconds,
                    "reason": reason}]
    return {"id": id, "label": label, "section": section, "latex": latex, "kind": kind, "corrects": corrects,
            "corrected_by": list(corrected_by), "relies_on": list(relies_on), "comment": comment,
            "verdict": verdict, "reason": reason, "methods": methods, "shapes": list(shapes),
            "seconds": seconds, "counterexample": counterexample}


FWD, HELP, BACK, BPTT_S, COMM = "Forward pass", "Mathematical helpers", "Backward pass", "BPTT algorithm", "Comments"

_CLAIMS = [
    _claim("forward-h", "Forward: h_t",
           r"h_t = \sigma(W_{xh} X_t + W_{hh} h_{t-1}) = \frac{1}{1 + e^{-(W_{xh} X_t + W_{hh} h_{t-1})}}",
           FWD, "proved", shapes=RNN, seconds=0.21),
    _claim("dS-other", "dS_t(y), y ≠ y_t", r"dS_t(y) = \frac{e^{S_t(y)}}{\sum_{y' \in Y} e^{S_t(y')}} = p_t(y)",
           FWD, "proved", shapes=[{"V": 1}, {"V": 2}, {"V": 3}], seconds=0.05),
    _claim("dS", "dS_t = p_t - 1_{y=y_t}",
           r"dS_t = \frac{\partial \mathrm{loss}_t}{\partial S_t} = \begin{bmatrix} p_t(y_1) \\ \vdots \\ "
           r"p_t(y_t) - 1 \\ \vdots \\ p_t(y_m) \end{bmatrix} = p_t - 1_{y = y_t}",
           FWD, "proved", relies_on=["dS-other"], shapes=[{"V": 1}, {"V": 2}, {"V": 3}]),
    _claim("def1", "Definition 1: diag(u) · v = u ∘ v",
           r"\operatorname{diag}(u) \cdot v = \begin{bmatrix} u_1 v_1 \\ \vdots \\ u_n v_n \end{bmatrix} = u \circ v",
           HELP, "proved", shapes=[{"n": 1}, {"n": 2}, {"n": 3}]),
    _claim("lemma1-dh", "Lemma 1 (1) & Corollary 1 (3): dh", r"dh = \frac{\partial \ell}{\partial h} = W^{\mathsf T} "
           r"\cdot (f'(W \cdot h) \circ dV)", HELP, "proved", relies_on=["def1"], seconds=0.4,
           methods=[{"method": "concrete", "verdict": "proved", "shapes": MN, "seconds": 0.1, "reason": ""},
                    {"method": "all sizes", "verdict": "proved", "shapes": [], "seconds": 0.3,
                     "reason": "entry-wise identity in symbolic m, n"}]),
    _claim("lemma1-dW", "Lemma 1 (2): dW (as written)",
           r"dW = \frac{\partial \ell}{\partial W} = (f'(W \cdot h) \cdot dV) \cdot h^{\mathsf T}", HELP, "ill-typed",
           corrected_by=["lemma1-dW-corrected"], relies_on=["def1"],
           comment="The note writes · where its proof ends with ∘ — <script>alert('x')</script> & co.",
           reason="at m=2, n=2: the product fp(W*h) (2×1) · dV (2×1) does not compose: 1 column against 2 rows",
           methods=[{"method": "concrete", "verdict": "ill-typed", "shapes": MN[:2], "seconds": 0.1,
                     "reason": "at m=2, n=2: 2×1 · 2×1 does not compose"}]),
    _claim("lemma1-dW-corrected", "Lemma 1 (2): dW (corrected)",
           r"dW = \frac{\partial \ell}{\partial W} = (f'(W \cdot h) \circ dV) \cdot h^{\mathsf T}", HELP, "proved",
           kind="corrected", corrects="lemma1-dW", relies_on=["def1"]),
    _claim("stacking-entries", "Stacking: entries (as written)",
           r"\begin{bmatrix} w_{xh_{11}} & \cdots & w_{xh_{1n}} & w_{xh_{11}} & \cdots & w_{xh_{1n}} \\ "
           r"\vdots & & & & & \vdots \end{bmatrix} \cdot \begin{bmatrix} X_t \\ h_{t-1} \end{bmatrix} "
           r"= W_{xh} X_t + W_{hh} h_{t-1}", BACK, "refuted", corrected_by=["stacking"],
           shapes=[{"H": 1, "E": 1, "V": 1}, {"H": 2, "E": 2, "V": 1}],
           reason="entry [0,0] differs at H=2, E=2: the right block repeats W_xh instead of W_hh",
           counterexample={"values": {"W_xh[0,0]": "1/2", "W_xh[0,1]": "-3", "W_hh[0,0]": "2", "W_hh[0,1]": "0",
                                      "X_t[0]": "1", "X_t[1]": "1", "h_prev[0]": "1", "h_prev[1]": "-1"},
                           "entry": [0, 0], "claimed": "-2", "truth": "-1/2", "claimed_precise": "-2.00000000000000",
                           "truth_precise": "-0.500000000000000", "relative_difference": 0.75, "clear_margin": True,
                           "at": "H=2, E=2, V=1"}),
    _claim("stacking", "Stacking: [W_xh W_hh] [X_t; h_{t-1}]",
           r"W_{xh} X_t + W_{hh} h_{t-1} = \begin{bmatrix} W_{xh} & W_{hh} \end{bmatrix} \cdot "
           r"\begin{bmatrix} X_t \\ h_{t-1} \end{bmatrix}", BACK, "proved", kind="corrected",
           corrects="stacking-entries", shapes=RNN,
           comment="The note's own next line, which is the corrected form of the entries above it."),
    _claim("bptt-dW_hh", "BPTT: ∂l_t/∂W_hh (16) (as written)",
           r"\frac{\partial \ell_t}{\partial W_{hh}} = \frac{\partial \ell_{t+1}}{\partial W_{hh}} + "
           r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t}) \cdot h_{t-1}", BPTT_S, "ill-typed",
           corrected_by=["bptt-dW_hh-corrected"], shapes=BPTT,
           comment="The transpose of h_{t-1} is missing; (16) above has it.",
           reason="at H=2, E=2, V=2, T=1: (σ′ ∘ dh) (2×1) · h_prev (2×1) does not compose"),
    _claim("bptt-dW_hh-corrected", "BPTT: ∂l_t/∂W_hh (16) (corrected)",
           r"\frac{\partial \ell_t}{\partial W_{hh}} = \frac{\partial \ell_{t+1}}{\partial W_{hh}} + "
           r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t}) \cdot h_{t-1}^{\mathsf T}", BPTT_S,
           "proved", kind="corrected", corrects="bptt-dW_hh", relies_on=["lemma1-dW-corrected", "comment1"],
           shapes=BPTT, seconds=1.7),
    _claim("bptt-dh_prev", "BPTT: ∂l_t/∂h_{t-1} (as written)",
           r"\frac{\partial \ell_t}{\partial h_{t-1}} = W_{hh} \cdot "
           r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t})", BPTT_S, "refuted",
           corrected_by=["bptt-dh_prev-corrected"], shapes=BPTT,
           comment="W_hh is square, so the line composes, but Lemma 1 (1) needs W_hh^T.",
           reason="entry [1] of dh_prev differs at H=2, E=2, V=2, t=1",
           counterexample={"values": {"W_hh[0,1]": "1", "W_hh[1,0]": "0", "h[0]": "-3", "x[0]": "1/2",
                                      "f(x)": "x**3 + x**2 + 2*x + 1"},
                           "entry": [1, 0], "claimed": "0", "truth": "0.196612", "claimed_precise": "0",
                           "truth_precise": "0.196611933241482", "relative_difference": 1.0, "clear_margin": True,
                           "at": "H=2, E=2, V=2, t=1"}),
    _claim("bptt-dh_prev-corrected", "BPTT: ∂l_t/∂h_{t-1} (corrected)",
           r"\frac{\partial \ell_t}{\partial h_{t-1}} = W_{hh}^{\mathsf T} \cdot "
           r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t})", BPTT_S, "proved",
           kind="corrected", corrects="bptt-dh_prev", relies_on=["lemma1-dh", "comment2"], shapes=BPTT),
    _claim("comment1", "Comment 1: gradients add over time",
           r"\frac{\partial \ell_{total}}{\partial W} = \frac{\partial \ell_{t=T}}{\partial W} + \dots + "
           r"\frac{\partial \ell_{t=1}}{\partial W}", COMM, "inconclusive", shapes=[{"T": 1}, {"T": 2}],
           reason="timed out after 30 s at T=3 (simplification of the unrolled loss)"),
    _claim("comment2", "Comment 2: σ' = σ − σ²",
           r"\sigma'(T_{rnn} Z_t) = \sigma(T_{rnn} Z_t) - \sigma^2(T_{rnn} Z_t)", COMM, "proved",
           shapes=[{"n": 1}, {"n": 2}, {"n": 3}]),
    _claim("sigma-derivative", "Tool lemma: the opaque σ differentiates as σ(1 − σ)",
           r"\frac{d}{dx}\,\sigma(x) \overset{\text{SymPy}}{=} \frac{d}{dx}\,\frac{1}{1 + e^{-x}}", COMM, "proved",
           kind="supporting", relies_on=["comment2"], shapes=[{}],
           comment="The verifier keeps sigma opaque for speed; this checks its declared derivative."),
]

SAMPLE_CODE = '''\
"""Vanilla RNN forward and backward pass, generated from the proved claims."""
import numpy as np


def sigma(x):
    return 1.0 / (1.0 + np.exp(-x))


def backward(W_xh, W_hh, W_hy, xs, hs, ps, targets):
    dW_xh, dW_hh, dW_hy = np.zeros_like(W_xh), np.zeros_like(W_hh), np.zeros_like(W_hy)
    dh_next = np.zeros_like(hs[0])
    for t in reversed(range(len(xs))):
        dS = ps[t].copy()
        dS[targets[t]] -= 1.0  # claim: dS
        dW_hy += dS @ hs[t].T  # claim: lemma1-dW-corrected, comment1
        dh = W_hy.T @ dS + dh_next  # claim: lemma1-dh
        g = hs[t] * (1.0 - hs[t]) * dh  # claim: comment2, def1
        dW_xh += g @ xs[t].T  # claim: stacking
        dW_hh += g @ hs[t - 1].T  # claim: bptt-dW_hh-corrected
        dh_next = W_hh.T @ g  # claim: bptt-dh_prev-corrected
    return dW_xh, dW_hh, dW_hy  # x < y && "quoted"
'''


def _repair(edit, latex, marked, notation, kind=None, before="", after=""):
    return {"edit": edit, "edits": [{"kind": kind or edit, "side": "rhs", "before": before, "after": after}],
            "latex": latex, "marked": marked, "verdict": "proved", "notation": notation, "seconds": 0.2}


_SEARCH = {"singles": 12, "pairs": 0, "tried": 12, "pruned_by_shape": 30, "refuted_quickly": 10,
           "checked_by_engines": 2, "from_cache": 0, "budget_seconds": 10.0, "budget_exhausted": False,
           "errors": [], "conflicts": [], "seconds": 1.5}
# As derivations.running.runner.add_repairs writes them: severity, ranked repairs (proved), the search.
_REPAIRS = {
    "lemma1-dW": ("notation", [
        _repair("product-to-hadamard", r"\frac{\partial \ell}{\partial W} = (f'(W \cdot h) \circ dV) \cdot h^{\mathsf T}",
                r"\frac{\partial \ell}{\partial W} = \boxed{f'(W \cdot h) \circ dV} \cdot h^{\mathsf T}", True,
                before=r"f'(W \cdot h) \cdot dV", after=r"f'(W \cdot h) \circ dV"),
        _repair("column-to-diagonal", r"\frac{\partial \ell}{\partial W} = \operatorname{diag}(f'(W \cdot h)) "
                r"\cdot dV \cdot h^{\mathsf T}", r"\frac{\partial \ell}{\partial W} = \boxed{\operatorname{diag}(f'(W "
                r"\cdot h))} \cdot dV \cdot h^{\mathsf T}", True)], _SEARCH),
    "bptt-dW_hh": ("notation", [
        _repair("add-transpose", r"\frac{\partial \ell_t}{\partial W_{hh}} = \frac{\partial \ell_{t+1}}{\partial "
                r"W_{hh}} + (\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t}) \cdot h_{t-1}^{\mathsf T}",
                r"\frac{\partial \ell_t}{\partial W_{hh}} = \frac{\partial \ell_{t+1}}{\partial W_{hh}} + "
                r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t}) \cdot \boxed{h_{t-1}^{\mathsf T}}",
                True)], _SEARCH),
    "bptt-dh_prev": ("substantive", [
        _repair("add-transpose", r"\frac{\partial \ell_t}{\partial h_{t-1}} = W_{hh}^{\mathsf T} \cdot "
                r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t})",
                r"\frac{\partial \ell_t}{\partial h_{t-1}} = \boxed{W_{hh}^{\mathsf T}} \cdot "
                r"(\sigma'(T_{rnn} Z_t) \circ \frac{\partial \ell_t}{\partial h_t})", False)], _SEARCH),
    "stacking-entries": ("substantive", [
        _repair("replace-symbol", r"\begin{bmatrix} W_{xh} & W_{hh} \end{bmatrix} \cdot \begin{bmatrix} X_t \\ "
                r"h_{t-1} \end{bmatrix} = W_{xh} X_t + W_{hh} h_{t-1}",
                r"\begin{bmatrix} W_{xh} & \boxed{W_{hh}} \end{bmatrix} \cdot \begin{bmatrix} X_t \\ "
                r"h_{t-1} \end{bmatrix} = W_{xh} X_t + W_{hh} h_{t-1}", False)],
        {**_SEARCH, "expressible": r"\begin{bmatrix} W_{xh} & W_{xh} \end{bmatrix} \cdot \begin{bmatrix} X_t \\ "
                                   r"h_{t-1} \end{bmatrix} = W_{xh} X_t + W_{hh} h_{t-1}",
         "not_expressed": r"the entries $w_{xh_{ij}}$ written out with $\cdots$"}),
    "comment1": (None, [], {"skipped": "checked by a Python builder because the notation cannot express the "
                                       "statement: there is no intermediate form to edit, so no repair is searched"}),
}


@functools.lru_cache(maxsize=1)
def _algorithm_diagnosis() -> dict:
    """The whole-algorithm diagnosis of the note, computed (about a second), as the runner adds it."""
    from derivations.engines import program
    from derivations.latex.files import read_derivation
    from derivations.running.runner import NOTE
    (ctx, alg), = [(c, a) for c in read_derivation(NOTE).contexts for a in c.algorithms.values()
                   if a.id == "bptt-algorithm"]
    return {**program.diagnose(ctx, alg, dict(alg.corrections)), "claim": "bptt-algorithm", "replacement_source": "the note's corrections (Corrects:), proved in this run",
            "replacements_not_used": [], "cache_hits": 0}


def sample_report() -> dict:
    """A fresh copy (tests may mutate it) of a report as `verify` writes it."""
    claims = copy.deepcopy(_CLAIMS)
    for c in claims:
        sev, repairs, search = _REPAIRS.get(c["id"], (None, [], None))
        c.update(severity=sev, repairs=copy.deepcopy(repairs), search=copy.deepcopy(search))
    summary = {v: sum(c["verdict"] == v for c in claims) for v in ("proved", "refuted", "ill-typed", "inconclusive")}
    return {
        "tool": "bptt-verifier 0.1.0",
        "date": "2026-11-26",
        "versions": {"python": "3.11.7", "sympy": "1.14.0", "numpy": "2.4.6"},
        "total_seconds": 12.3,
        "ok": False,  # comment1 is inconclusive and the corrected BPTT line relies on it
        "summary": summary,
        "claims": claims,
        "timing": {"wall_seconds": 12.3, "proved_now": {"proofs": 3, "seconds": 4.5},
                   "from_cache": {"proofs": 14, "seconds": 20.25}},
        "numeric_module": {"path": "numeric/rnn_core.py", "claims_used": ["dS", "lemma1-dh", "comment2", "stacking"]},
        "algorithm_diagnosis": copy.deepcopy(_algorithm_diagnosis()),
    }


# --- the structure snapshot ---------------------------------------------------------

_STRUCTURAL = {"html", "head", "title", "style", "body", "header", "main", "nav", "section", "article",
               "h1", "h2", "h3", "p", "div", "table", "dl", "ol", "ul", "li", "pre", "math"}
_VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "source"}


class _Structure(HTMLParser):
    """Nested outline of the main elements (tag#id.class), without text or math internals."""

    def __init__(self):
        super().__init__()
        self.lines, self.stack = [], []

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        self.stack.append(tag)
        if tag in _STRUCTURAL and "math" not in self.stack[:-1]:
            a = dict(attrs)
            name = tag + (f"#{a['id']}" if a.get("id") else "") + "".join(f".{c}" for c in (a.get("class") or "").split())
            depth = sum(t in _STRUCTURAL for t in self.stack[:-1])
            self.lines.append("  " * depth + name)

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            raise ValueError(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>: malformed HTML")
        self.stack.pop()


def html_structure(html: str) -> str:
    parser = _Structure()
    parser.feed(html)
    parser.close()
    if parser.stack:
        raise ValueError(f"unclosed elements: {parser.stack}")
    return "\n".join(parser.lines) + "\n"
