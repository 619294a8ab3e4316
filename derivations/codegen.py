"""Code generation: the proved matrix expressions, printed as the NumPy module `numeric/rnn.py`.

Where it sits: note.md -> parsed claims (`derivations.latex`) -> proofs
(`derivations.runner`) -> **code** (this module) -> report.  The math lines of
the generated module are printed from the SymPy expressions the verifier proved:
the BPTT lines and h_t = sigma(...) are the lines parsed from note.md, lowered to
the step symbols (`derivations.note.step_model`), the very statements the
runner proves; the scores are W_hy h_t, the column whose every entry y the
claim forward-S proves (S_y = e_y^T W_hy h).  Jinja2 only lays out the module, the time loops and the input
validation.  Every printed line ends with ``# claim: <id>`` naming the claims
(or chains of note.md, by their group id) it implements.

The few rewrites done on the proved expressions before printing, each justified
by a proved claim:

* sigma'(T_rnn Z_t) -> h_t * (1 - h_t): T_rnn Z_t = [W_xh W_hh] [X_t; h_{t-1}]
  (their definitions) = W_xh X_t + W_hh h_{t-1} (stacking; SymPy's block
  multiplication), h_t = sigma of that (forward-h) and sigma' = sigma - sigma^2
  (comment2); the forward pass stores h_t, so the backward pass never
  recomputes a sigmoid.
* dl_{t+1}/dW + (term of step t) -> one matrix product over all steps: the BPTT
  accumulation lines sum a per-step term over t (comment1), and a sum over t of
  products A_t B_t^T is the single product [A_1 .. A_T] [B_1 .. B_T]^T (the
  claims are column-wise: a batch is a set of columns, and so is a set of steps).
* Common sub-expressions (W_xh X_t, W_hy^T dS_t, sigma'(a_t) o dh_t) are
  replaced by the name of the array that holds them, computed once by a line
  printed from the same claim.
* A product M may be printed as its transpose M^T (S^T = H_c^T W_hy^T,
  dX^T = dZ^T W_xh) when the module stores that array transposed; the
  transpose is taken by SymPy (`_transposed`) and the line cites M's claim.

API: `NEEDED_CLAIMS`, `needed_ids(doc)`, `unproved(verdicts)`, `GenerationError`,
`generate(verdicts) -> str` and `write_module(verdicts, path) -> Path`.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import jinja2
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.printing.numpy import NumPyPrinter

from .functions import hadamard, sigma, sigma_prime
from .statement import dims

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_PATH = REPO / "numeric" / "rnn.py"
COMMAND = "python scripts/generate_numeric.py"

# What the generated module relies on, in the note's order.  Coverage is
# computed: every id here must be proved, and every id here must be cited by a
# generated line (and nothing else may be cited).
NEEDED_CLAIMS = (
    "embedding",               # X_t = We^T 1_{w_t}: the row lookup and its scatter-add gradient
    "forward-h",               # h_t = sigma(W_xh X_t + W_hh h_{t-1})
    "forward-S",               # S_t = W_hy h_t
    "dS",                      # dS_t = p_t - 1_{y=y_t}
    "stacking",                # [W_xh W_hh] [X_t; h_{t-1}] = W_xh X_t + W_hh h_{t-1}: the lines' T_rnn Z_t
    "bptt-dS",                 # the algorithm's first line is that same gradient
    "bptt-dW_hy",
    "bptt-dh",
    "bptt-dW_xh",
    "bptt-dW_hh-corrected",    # never the refuted as-written bptt-dW_hh
    "bptt-dX",
    "bptt-dh_prev-corrected",  # never the refuted as-written bptt-dh_prev
    "bptt-algorithm-corrected",  # those lines run together from t = T down to 1 give the whole gradient
    "comment1",                # gradients add over time: sums over steps become one product
    "comment2",                # sigma' = sigma - sigma^2: sigma'(a_t) from the stored h_t
    "sigma-derivative",        # the opaque sigma the proofs use differentiates as sigma(1 - sigma)
)

from .verdicts import PROVED

# The parsed lines of note.md the module is printed from, lowered to the step symbols.
FORWARD_LINE = "forward-h-1"          # h_t = sigma(W_xh X_t + W_hh h_{t-1}): link 1 of the chain forward-h
BPTT_LINES = ("bptt-dW_hy", "bptt-dh", "bptt-dW_xh", "bptt-dW_hh-corrected", "bptt-dX", "bptt-dh_prev-corrected")


class GenerationError(Exception):
    """The module cannot be generated: a needed claim is not proved, or an expression cannot be printed."""


# ---------------------------------------------------------------- the printer

_ADD, _PROD, _ATOM = 1, 2, 3


def _level(expr) -> int:
    if isinstance(expr, sp.MatAdd):
        return _ADD
    if isinstance(expr, (sp.MatMul, HadamardProduct, HadamardPower)):
        return _PROD
    return _ATOM


class RNNNumPyPrinter(NumPyPrinter):
    """Prints matrix expressions as NumPy operators: @, *, .T, +, and `sigmoid(...)`.

    Operators rather than `numpy.matmul(...)` calls, so the printed kernels run
    unchanged on NumPy object arrays of SymPy symbols (which the tests use to
    differentiate the generated code symbolically).  Anything it does not know
    is an error, never a silent fallback.
    """

    def _wrap(self, arg, parent) -> str:
        text = self._print(arg)
        level = _level(arg)
        if level < _level(parent) or (level == _level(parent) == _PROD and type(arg) is not type(parent)):
            return f"({text})"
        return text

    def _print_MatrixSymbol(self, expr):
        return expr.name

    def _print_OneMatrix(self, expr):
        return "1"

    def _print_Transpose(self, expr):
        arg = self._print(expr.arg)
        return f"{arg}.T" if _level(expr.arg) == _ATOM else f"({arg}).T"

    def _print_MatMul(self, expr):
        coeff, factors = expr.as_coeff_matrices()
        text = " @ ".join(self._wrap(m, expr) for m in factors)
        if coeff == 1:
            return text
        if coeff == -1:
            return f"-{text}" if len(factors) == 1 and _level(factors[0]) == _ATOM else f"-({text})"
        return f"{self._print(coeff)} * {text}"

    def _print_MatAdd(self, expr):
        def negated(term):
            return isinstance(term, sp.MatMul) and term.as_coeff_matrices()[0] == -1

        out = ""
        # Positive terms first (a stable sort keeps SymPy's canonical order): 1 - h, not -h + 1.
        for i, term in enumerate(sorted(expr.args, key=negated)):
            if negated(term) and i > 0:
                out += " - " + self._wrap(-term, expr)
            else:
                out += (" + " if i > 0 else "") + self._wrap(term, expr)
        return out

    def _print_HadamardProduct(self, expr):
        return " * ".join(self._wrap(a, expr) for a in expr.args)

    def _print_HadamardPower(self, expr):
        return f"{self._wrap(expr.base, expr)} ** {self._print(expr.exp)}"

    def _print_ElementwiseApplyFunction(self, expr):
        fn = expr.function
        if isinstance(fn, sp.Lambda):
            (var,), body = fn.variables, fn.expr
            is_sigma = body == sigma(var)
        else:
            is_sigma = fn == sigma
        if not is_sigma:
            raise GenerationError(f"no NumPy form for the element-wise function {fn}; "
                                  "sigma' must be rewritten from the stored state first")
        return f"sigmoid({self._print(expr.expr)})"

    def emptyPrinter(self, expr):
        raise GenerationError(f"cannot print {type(expr).__name__}: {expr}")

    def _print_not_supported(self, expr):
        raise GenerationError(f"cannot print {type(expr).__name__}: {expr}")


def print_expr(expr) -> str:
    return RNNNumPyPrinter({"strict": True}).doprint(expr)


def print_into(expr, out: str) -> str:
    """A product of two matrices printed as `np.matmul(A, B, out=<out>)`: no temporary for big outputs."""
    if not isinstance(expr, sp.MatMul) or expr.as_coeff_matrices()[0] != 1 or len(expr.args) != 2:
        raise GenerationError(f"{expr} is not a product of two matrices")
    printer = RNNNumPyPrinter({"strict": True})
    a, b = (printer._print(m) for m in expr.args)
    return f"np.matmul({a}, {b}, out={out})"


# ---------------------------------------------------------------- expressions to print

def symbolic_sizes() -> SimpleNamespace:
    """H (hidden), E (embedding), V (vocabulary), B (columns: batch, or steps x batch)."""
    H, E, V, B = sp.symbols("H E V B", integer=True, positive=True)
    return dims(H=H, E=E, V=V, B=B)


def _named(expr, **names):
    """Rename MatrixSymbols to the variable names of the generated code (shapes kept)."""
    table = {m: sp.MatrixSymbol(names[m.name], *m.shape)
             for m in expr.atoms(sp.MatrixSymbol) if m.name in names}
    return expr.xreplace(table)


def _replace(expr, old, new, why):
    """xreplace that fails loudly when `old` is not a sub-expression of `expr`."""
    if not expr.has(old):
        raise GenerationError(f"{why}: {old} is not a sub-expression of {expr}")
    return expr.xreplace({old: new})


def _transposed(expr):
    """expr^T with the transpose pushed through products ((A B)^T = B^T A^T): a layout change only."""
    out = sp.Transpose(expr).doit()
    if sp.Transpose(out).doit() != expr:
        raise GenerationError(f"the transpose of {expr} does not transpose back")
    return out


def _accumulation(expr, acc):
    """Split a BPTT accumulation line dW = dW_next + term into term (comment1: gradients add)."""
    if not (isinstance(expr, sp.MatAdd) and acc in expr.args):
        raise GenerationError(f"{expr} is not an accumulation onto {acc}")
    rest = [a for a in expr.args if a != acc]
    return rest[0] if len(rest) == 1 else sp.MatAdd(*rest)


def unstacked(expr):
    """[W_xh W_hh] [X; h_prev] -> W_xh X + W_hh h_prev: SymPy's block multiplication (the claim stacking)."""
    out = sp.block_collapse(expr)
    if isinstance(out, sp.BlockMatrix):
        if out.blockshape != (1, 1):
            raise GenerationError(f"{expr} is not a product of a block row and a block column")
        out = out.blocks[0, 0]
    return out


def sigma_prime_from_state(expr, preactivation, h):
    """sigma'(a) -> h o (1 - h) where h = sigma(a) is stored (forward-h, comment2).

    a may be written stacked, [W_xh W_hh] [X; h_prev] (the lines' T_rnn Z_t):
    it must then multiply out to the pre-activation (stacking).
    """
    x = sp.Symbol("x")
    if sp.expand(sigma_prime(x) - sigma(x) * (1 - sigma(x))) != 0:
        raise GenerationError("comment2's sigma' is not sigma * (1 - sigma)")
    target = None
    for node in sp.preorder_traversal(expr):
        if isinstance(node, ElementwiseApplyFunction) and isinstance(node.function, sp.Lambda):
            (var,), body = node.function.variables, node.function.expr
            if sp.expand(body - sigma_prime(var)) == 0:
                if unstacked(node.expr) != preactivation:
                    raise GenerationError(f"sigma' is applied to {node.expr}, not to the stored state's "
                                          f"pre-activation {preactivation}")
                target = node
    if target is None:
        raise GenerationError(f"no sigma'(...) in {expr}")
    return expr.xreplace({target: hadamard(h, sp.OneMatrix(*h.shape) - h)})


def sources() -> dict:
    """What the printed lines come from: the parsed lines of note.md, lowered to the step symbols."""
    from .note import step_model
    return {"forward-h": step_model.forward(FORWARD_LINE),
            **{cid: step_model.line(cid) for cid in BPTT_LINES}}


def _shared_factor(expr, dh):
    """The factor sigma'(T_rnn Z_t) o dh_t of a line (the only element-wise product with dh in it)."""
    found = {n for n in sp.preorder_traversal(expr) if isinstance(n, HadamardProduct) and dh in n.args}
    if len(found) != 1:
        raise GenerationError(f"no single factor (...) o dh in {expr}")
    return found.pop()


def printed_lines(claims=None) -> dict:
    """The right-hand sides of the module's math lines, each with its `# claim:` comment."""
    claims = claims or sources()
    d = symbolic_sizes()
    from .unrolled import step_symbols
    s = step_symbols(d)
    M = sp.MatrixSymbol

    def cite(*ids):
        return "  # claim: " + ", ".join(ids)

    lines = {}

    # forward-h as parsed (link 1 of the chain: h_t = sigma(W_xh X_t + W_hh h_{t-1})), B columns.
    fwd = claims["forward-h"].build(s)
    preact = s.W_xh * s.X + s.W_hh * s.h_prev
    if fwd != ElementwiseApplyFunction(fwd.function, preact):
        raise GenerationError(f"forward-h is not sigma(W_xh X + W_hh h_prev): {fwd}")
    input_part = s.W_xh * s.X
    lines["input_part"] = print_expr(_named(input_part, X="X_all")) + cite("forward-h", "embedding")
    a_x = M("a_x", d.H, d.B)
    lines["cell"] = print_expr(_replace(fwd, input_part, a_x, "input part of forward-h")) + cite("forward-h")

    # forward-S: entry y of the scores is e_y^T W_hy h for every y, so the scores are W_hy h, over B columns.
    fwd_S = s.W_hy * s.h
    lines["scores"] = print_expr(_named(fwd_S, h="H_c")) + cite("forward-S")
    # loss_and_grads holds the scores transposed (one row per column, so the softmax reduces
    # along contiguous rows): S^T = (W_hy H_c)^T = H_c^T W_hy^T, the transpose of forward-S.
    lines["scores_transposed_into_St"] = (print_into(_transposed(_named(fwd_S, h="H_c")), "St")
                                          + cite("forward-S"))

    # Output layer over a chunk of steps: bptt-dW_hy summed over the chunk's columns,
    # and the W_hy^T dS_t term of bptt-dh for every step of the chunk.
    dW_hy = claims["bptt-dW_hy"].build(s)
    dW_hy_term = _named(_accumulation(dW_hy, s.dW_hy_next), h="H_c")
    lines["dW_hy_into_dW_hy_c"] = print_into(dW_hy_term, "dW_hy_c") + cite("bptt-dW_hy", "comment1")
    dh = claims["bptt-dh"].build(s)
    from_output = _accumulation(dh, s.dh_next)
    lines["dh_output_into_G_c"] = print_into(from_output, "G[:, c0:c1]") + cite("bptt-dh")
    g = M("g", d.H, d.B)
    lines["dh"] = print_expr(_replace(dh, from_output, g, "output term of bptt-dh")) + cite("bptt-dh")

    # The factor sigma'(T_rnn Z_t) o dh_t shared by four BPTT lines (as bptt-dX writes it; each of the
    # others must contain the very same), from the stored h_t.
    dZ = _shared_factor(claims["bptt-dX"].build(s), s.dh)
    lines["dZ"] = (print_expr(sigma_prime_from_state(dZ, preact, s.h))
                   + cite("forward-h", "stacking", "comment2", "sigma-derivative"))
    dZ_t = M("dZ_t", d.H, d.B)
    dh_prev = claims["bptt-dh_prev-corrected"].build(s)
    lines["dh_prev"] = print_expr(_replace(dh_prev, dZ, dZ_t, "dZ in bptt-dh_prev")) + cite("bptt-dh_prev-corrected")

    # After the recurrence: every step at once (columns of all steps).
    dZ_all = M("dZ_all", d.H, d.B)
    dW_xh = _replace(_accumulation(claims["bptt-dW_xh"].build(s), s.dW_xh_next), dZ, dZ_all, "dZ in bptt-dW_xh")
    lines["dW_xh"] = print_expr(_named(dW_xh, X="X_all")) + cite("bptt-dW_xh", "comment1")
    dW_hh = _replace(_accumulation(claims["bptt-dW_hh-corrected"].build(s), s.dW_hh_next), dZ, dZ_all,
                     "dZ in bptt-dW_hh-corrected")
    lines["dW_hh"] = print_expr(_named(dW_hh, h_prev="H_prev")) + cite("bptt-dW_hh-corrected", "comment1")
    dX = _replace(claims["bptt-dX"].build(s), dZ, dZ_all, "dZ in bptt-dX")
    # dX^T = dZ_all^T W_xh, the transpose of bptt-dX: rows contiguous for the scatter onto dWe's rows.
    lines["dX_transposed"] = print_expr(_transposed(dX)) + cite("bptt-dX")
    return lines


# ---------------------------------------------------------------- templates

ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    undefined=jinja2.StrictUndefined,
    autoescape=False,            # the output is Python source, not HTML
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **context) -> str:
    """Render one template; a missing variable raises jinja2.UndefinedError."""
    return ENV.get_template(template).render(**context)


_CITATION = re.compile(r"  # claim: ([\w-]+(?:, [\w-]+)*)$")


def cited_claims(source: str) -> set:
    """Every claim id named by a `# claim:` comment of the generated source."""
    return {cid for m in map(_CITATION.search, source.splitlines()) if m for cid in m.group(1).split(", ")}


def needed_labels() -> dict:
    """{needed id: its label in note.md}; a chain's group id gets the chain's label (without [k/n])."""
    from .note.step_model import note_derivation
    parsed = note_derivation().claims
    out = {}
    for cid in NEEDED_CLAIMS:
        match = [c for c in parsed if c.id == cid] or [c for c in parsed if c.group == cid]
        if not match:
            raise GenerationError(f"{cid} is not a claim (nor a chain) of note.md")
        out[cid] = re.sub(r" \[1/\d+\]$", "", match[0].label)
    return out


def needed_ids(doc) -> list:
    """The claim ids of a document (the runner's) that NEEDED_CLAIMS names, a chain's group id by its links."""
    return [cid for cid in doc.ids if cid in NEEDED_CLAIMS or doc.fields[cid]["group"] in NEEDED_CLAIMS]


def unproved(verdicts: Mapping[str, str]) -> list:
    """Coverage: the needed claims minus the proved ones, in the note's order (must be empty)."""
    return [cid for cid in NEEDED_CLAIMS if verdicts.get(cid) != PROVED]


def generate(verdicts: Mapping[str, str]) -> str:
    """The source of numeric/rnn.py, or GenerationError naming every needed claim not proved."""
    missing = unproved(verdicts)
    if missing:
        detail = ", ".join(f"{cid} ({verdicts.get(cid, 'no verdict')})" for cid in missing)
        raise GenerationError(f"cannot generate the numeric module: needed claim(s) not proved: {detail}")
    labels = needed_labels()
    source = render("numeric_module.py.j2", lines=printed_lines(), command=COMMAND,
                    claims=list(labels.items()), id_width=max(map(len, labels)))
    cited = cited_claims(source)
    if cited != set(NEEDED_CLAIMS):
        raise GenerationError(f"coverage: cited but not needed {sorted(cited - set(NEEDED_CLAIMS))}, "
                              f"needed but never cited {sorted(set(NEEDED_CLAIMS) - cited)}")
    return source


def write_module(verdicts: Mapping[str, str], path: Path | str = DEFAULT_PATH) -> Path:
    """Generate, then atomically replace `path` (nothing is written if generation fails)."""
    source = generate(verdicts)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(source)
        os.chmod(tmp, 0o644)          # mkstemp makes it private; the module is an ordinary source file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
