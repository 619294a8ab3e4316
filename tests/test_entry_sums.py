"""Sums over the entries of a column (CS231n lecture 4): `\\sum_i (W \\cdot x)_i^2`, `\\sum_i q_i^2` and the
slides' `q_1^2 + \\dots + q_n^2`, read as 1^T c with c the column whose entry i is the term.

The truth of every line is decided here, from numbers: the sums are computed in NumPy from the drawn
inputs (a loop over the entries), gradients by central finite differences, and fd.truth (finite
differences of the parsed form) must agree with both; the engines' verdict must agree too.
"""
import fd
import numpy as np
import pytest

from derivations.engines import allsizes, explicit
from derivations.engines.verdicts import PROVED, REFUTED
from derivations.form import ir
from derivations.form.printer import to_latex
from derivations.latex.errors import DerivationErrors
from derivations.latex.reader import parse_derivation, parse_statement

HEAD = r"""# Vectorized example
$$ W \in \mathbb{R}^{n \times d}, \quad x \in \mathbb{R}^{d}, \quad y \in \mathbb{R}^{d} $$
$$ q = W \cdot x $$
"""
SIZES = {"n": 3, "d": 2}


def _context(line):
    return parse_derivation(HEAD + f"$$ {line} $$\n", "v.md").contexts[0]


def _errors(line):
    with pytest.raises(DerivationErrors) as e:
        parse_derivation(HEAD + f"$$ {line} $$\n", "v.md")
    return [(x.message, x.hint or "", x.location.column) for x in e.value.errors]


def _entries(W, x, y):
    q = W @ x
    return {  # by entries, as the slides write them
        "squares": sum(q[i, 0] ** 2 for i in range(q.shape[0])),
        "entries": sum(q[i, 0] for i in range(q.shape[0])),
        "products": sum(x[i, 0] * y[i, 0] for i in range(x.shape[0])),
    }


LINES = [  # the member as written, the sum it is by entries (or a multiple of it), the factor
    (r"\sum_i (W \cdot x)_i^2", "squares", 1),
    (r"\sum_i q_i^2", "squares", 1),
    (r"q_1^2 + \dots + q_n^2", "squares", 1),
    (r"q_1^2 + \cdots + q_n^2", "squares", 1),
    (r"(W \cdot x)_1^2 + \ldots + (W \cdot x)_n^2", "squares", 1),
    (r"\sum_{i=1}^{n} q_i^2", "squares", 1),
    (r"2 \sum_i q_i^2", "squares", 2),
    (r"\sum_i 2 q_i^2", "squares", 2),
    (r"\sum_i q_i", "entries", 1),
    (r"q_1 + \dots + q_n", "entries", 1),
    (r"\sum_i x_i y_i", "products", 1),
    (r"x_1 y_1 + \dots + x_d y_d", "products", 1),
]


@pytest.mark.parametrize("member, what, factor", LINES, ids=[m for m, _, _ in LINES])
def test_a_sum_over_entries_is_the_sum_of_the_entries(member, what, factor):
    ctx = _context(f"\\|q\\|^2 = {member}")
    _, read = parse_statement(f"\\|q\\|^2 = {member}", ctx)
    assert not any(isinstance(n, ir.Sum) for n in read.walk())       # 1^T c, no sum over steps
    rng = np.random.default_rng(3)
    for _ in range(3):
        inputs, indices = fd.draw(ctx, SIZES, 1, rng)
        run = fd.Run(ctx, SIZES, 1, inputs, indices)
        W, x, y = (inputs[(k, None)] for k in ("W", "x", "y"))
        got = run.ev(read, {"T": 1})
        assert np.allclose(got, factor * _entries(W, x, y)[what]), (got, _entries(W, x, y))


CLAIMS = [  # the line, true?
    (r"f(q) = \|q\|^2 = q_1^2 + \dots + q_n^2", True),        # the slides' chains, whole
    (r"f(x, W) = \|W \cdot x\|^2 = \sum_i (W \cdot x)_i^2", True),
    (r"\|q\|^2 = \sum_i q_i^2", True),
    (r"\|q\|^2 = \sum_i q_i", False),
    (r"\|q\|^2 = q_1 + \dots + q_n", False),
    (r"\|q\|^2 = 2 q_1^2 + \dots + 2 q_n^2", False),
    (r"x^\top y = x_1 y_1 + \dots + x_d y_d", True),
    (r"x^\top y = \sum_i x_i y_i", True),
    (r"x^\top x = \sum_i x_i y_i", False),
]


def _truth_by_numbers(line):
    """True when both sides of the line (written here in NumPy) agree at random inputs."""
    sides = {
        r"\|q\|^2": lambda W, x, y: float(np.sum((W @ x) ** 2)),
        r"\|W \cdot x\|^2": lambda W, x, y: float(np.sum((W @ x) ** 2)),
        r"x^\top y": lambda W, x, y: float((x.T @ y)[0, 0]),
        r"x^\top x": lambda W, x, y: float((x.T @ x)[0, 0]),
    }
    members = {
        r"q_1^2 + \dots + q_n^2": "squares", r"\sum_i (W \cdot x)_i^2": "squares", r"\sum_i q_i^2": "squares",
        r"\sum_i q_i": "entries", r"q_1 + \dots + q_n": "entries", r"x_1 y_1 + \dots + x_d y_d": "products",
        r"\sum_i x_i y_i": "products", r"2 q_1^2 + \dots + 2 q_n^2": "twice",
    }
    left, right = (s.strip() for s in line.split("=")[-2:])
    rng = np.random.default_rng(5)
    for _ in range(3):
        W, x, y = rng.normal(size=(3, 2)), rng.normal(size=(2, 1)), rng.normal(size=(2, 1))
        by = _entries(W, x, y)
        by["twice"] = 2 * by["squares"]
        if not np.isclose(sides[left](W, x, y), by[members[right]]):
            return False
    return True


@pytest.mark.parametrize("line, true", CLAIMS, ids=[c[0] for c in CLAIMS])
def test_a_line_with_a_sum_over_entries_is_proved_exactly_when_it_holds(line, true):
    assert _truth_by_numbers(line) == true
    ctx = _context(line)
    claim = ctx.claims[-1]
    assert fd.truth(ctx, claim)[0] == ("true" if true else "false")
    assert explicit.prove(ctx, claim).verdict == (PROVED if true else REFUTED)
    assert (allsizes.prove(ctx, claim).verdict == PROVED) == true


def _fd_gradient(f, X, eps=1e-6):
    G = np.zeros_like(X)
    for idx in np.ndindex(*X.shape):
        d = np.zeros_like(X)
        d[idx] = eps
        G[idx] = (f(X + d) - f(X - d)) / (2 * eps)
    return G


@pytest.mark.parametrize("line, candidate", [
    (r"\nabla_W f = 2 q x^\top", lambda W, x: 2 * (W @ x) @ x.T),
    (r"\nabla_W f = q x^\top", lambda W, x: (W @ x) @ x.T),
    (r"\nabla_x f = 2 W^\top q", lambda W, x: 2 * W.T @ (W @ x)),
    (r"\nabla_x f = W^\top \mathbf{1}", lambda W, x: W.T @ np.ones((W.shape[0], 1))),
])
def test_the_gradient_of_a_function_defined_by_a_sum_over_entries(line, candidate):
    # f defined by the sum over entries itself (:=), its gradients checked against finite differences here
    ctx = parse_derivation(HEAD + "$$ f := \\sum_i (W \\cdot x)_i^2 $$\n" + f"$$ {line} $$\n", "v.md").contexts[0]
    rng = np.random.default_rng(7)
    W, x = rng.normal(size=(3, 2)), rng.normal(size=(2, 1))
    wrt = "W" if "nabla_W" in line else "x"
    truth = _fd_gradient(lambda X: float(np.sum((X @ x) ** 2)), W) if wrt == "W" else \
        _fd_gradient(lambda X: float(np.sum((W @ X) ** 2)), x)
    true = bool(np.allclose(candidate(W, x), truth, atol=1e-5))
    claim = ctx.claims[-1]
    assert fd.truth(ctx, claim)[0] == ("true" if true else "false")
    assert explicit.prove(ctx, claim).verdict == (PROVED if true else REFUTED)


@pytest.mark.parametrize("line", [
    r"\|q\|^2 = q_1^2 + \dots + q_n^2",
    r"f(x, W) = \|W \cdot x\|^2 = \sum_i (W \cdot x)_i^2",
    r"x^\top y = 3 \sum_i x_i y_i + x_1 + \dots + x_d",
])
def test_the_printed_form_of_a_sum_over_entries_parses_back(line):
    ctx = _context(line)
    claim = ctx.claims[-1]
    printed = to_latex(claim.lhs) + " = " + to_latex(claim.rhs)
    assert "\\sum_i" in printed and "\\mathbf{1}" not in printed      # as a sum over the entries, as written
    assert parse_statement(printed, ctx) == (claim.lhs, claim.rhs)


@pytest.mark.parametrize("line, message, hint, column", [
    (r"\|q\|^2 = q_1^2 + \dots + q_n", "read only as the term at 1, \\dots, the same term at the column's size",
     r"\sum_i q_i^2", 14),
    (r"\|q\|^2 = q_2^2 + \dots + q_n^2", "read only as the term at 1", r"\sum_i q_i^2", 14),
    (r"\|q\|^2 = q_1^2 + \dots + q_d^2", "this sum over entries ends at d, but", "the column's size (n)", 14),
    (r"\|q\|^2 = \sum_{i=1}^{d} q_i^2", "this sum over entries ends at d, but", "the column's size (n)", 14),
    (r"\|q\|^2 = \sum_{i=0}^{n} q_i^2", "a sum over entries runs from i = 1", r"write \sum_i", 14),
    (r"\|q\|^2 = q_1^2 - \dots - q_n^2", "unexpected", r"\sum_i q_i^2", 22),
    (r"\|q\|^2 = \sum_i q", "is written with the entry i", r"\mathbf{1}^\top c", 14),
    (r"\|q\|^2 = \sum_i W_i", "needs W to be a column", "", 21),
])
def test_a_sum_over_entries_not_read_is_a_located_error_that_says_what_to_write(line, message, hint, column):
    ((got, instead, col),) = _errors(line)
    assert message in got and hint in instead, (got, instead)
    assert col == column, col                     # the column in the file's line


def test_a_line_about_entry_i_keeps_its_reading_beside_a_sum():
    ctx = _context(r"f(q) = \|q\|^2 = \sum_i q_i^2")
    assert to_latex(ctx.definitions["f"].expr) == r"\|q\|^2"          # the chain's first link defines f
    ctx = parse_derivation(HEAD + "$$ f(q) = \\|q\\|^2 = \\sum_i q_i^2 $$\n"
                           "$$ \\frac{\\partial f}{\\partial q_i} = 2 q_i $$\n", "v.md").contexts[0]
    assert all(fd.truth(ctx, c)[0] == "true" for c in ctx.claims)


# ---------------------------------------------------------------- f(q) and f(x, W): one value, two ways written

NAMED = HEAD + r"$$ f(q) = \|q\|^2 $$" + "\n"


@pytest.mark.parametrize("line", [r"f(x, W) = \|W \cdot x\|^2", r"f(W, x) = \sum_i (W \cdot x)_i^2",
                                  r"f(q) = 2 \|q\|^2", r"f(x, W) = \|x\|^2"])
def test_a_value_written_with_arguments_that_reach_its_inputs_is_that_value(line):
    ctx = parse_derivation(NAMED + f"$$ {line} $$\n", "v.md").contexts[0]
    claim = ctx.claims[-1]
    assert claim.lhs == ir.Ref("f")
    truth = fd.truth(ctx, claim)[0]
    rng = np.random.default_rng(11)
    inputs, _ = fd.draw(ctx, SIZES, 1, rng)
    W, x = inputs[("W", None)], inputs[("x", None)]
    by_numbers = {r"\|W \cdot x\|^2": np.sum((W @ x) ** 2), r"\sum_i (W \cdot x)_i^2": np.sum((W @ x) ** 2),
                  r"2 \|q\|^2": 2 * np.sum((W @ x) ** 2), r"\|x\|^2": np.sum(x ** 2)}[line.split(" = ")[1]]
    assert truth == ("true" if np.isclose(by_numbers, np.sum((W @ x) ** 2)) else "false")
    assert explicit.prove(ctx, claim).verdict == (PROVED if truth == "true" else REFUTED)


def test_a_value_written_with_arguments_that_reach_other_inputs_is_an_error():
    with pytest.raises(DerivationErrors) as e:
        parse_derivation(NAMED + r"$$ f(y, W) = \|W \cdot y\|^2 $$" + "\n", "v.md")
    (err,) = e.value.errors
    assert "depend on W, y, but f depends on W, x" in err.message and err.location.line == 5


def test_a_value_written_through_a_defined_argument_is_read_through_it():
    # The slides' order: f(x, W) = \|W \cdot x\|^2 defines f, then f(q) = \|q\|^2 with q = W \cdot x says f is a
    # function of q: f reads q (the same value), so its gradient with respect to q is 2q, as the slides take it.
    text = HEAD.replace(r"$$ q = W \cdot x $$", r"$$ f(x, W) = \|W \cdot x\|^2 $$" + "\n" + r"$$ q = W \cdot x $$")
    ctx = parse_derivation(text + r"$$ f(q) = \|q\|^2 $$" + "\n" + r"$$ \nabla_q f = 2q $$" + "\n",
                           "v.md").contexts[0]
    assert ir.Ref("q") in ir.refs(ctx.definitions["f"].expr)
    rng = np.random.default_rng(13)
    inputs, _ = fd.draw(ctx, SIZES, 1, rng)
    run = fd.Run(ctx, SIZES, 1, inputs, {})
    W, x = inputs[("W", None)], inputs[("x", None)]
    assert np.isclose(run.ev(ir.Ref("f"), {"T": 1})[0, 0], np.sum((W @ x) ** 2))      # the same value
    grad = ctx.claims[-1]
    assert fd.truth(ctx, grad)[0] == "true"
    assert explicit.prove(ctx, grad).verdict == PROVED
