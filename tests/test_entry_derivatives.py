"""Lines of entries (CS231n lecture 4): \\frac{\\partial q_k}{\\partial W_{i,j}} = \\mathbf{1}_{k=i} x_j, with
q = W x, a claim for every k, i and j.

The truth of every line is decided here, from numbers: W and x are drawn, q = W x is computed in NumPy, and
∂q_k/∂W_{i,j} (∂q_k/∂x_j) by central finite differences (W[i, j] moved, q[k] differenced), at every k, i, j;
the right-hand side is computed in NumPy from the same inputs by what its LaTeX says (written beside it).  A
true line must be proved for every size (the all-sizes engine) and at the sizes tried (the concrete engine); a
false one refuted with a counterexample that a fresh model reproduces from the free inputs alone.
"""
import itertools

import numpy as np
import pytest

from derivations.analyses.derive import derived_rhs
from derivations.engines import allsizes, explicit
from derivations.engines.verdicts import ILL_TYPED, PROVED, REFUTED
from derivations.form import ir
from derivations.form.printer import claim_latex
from derivations.latex.errors import DerivationErrors
from derivations.latex.reader import parse_derivation, parse_statement

HEAD = r"""# Vectorized example
$$ W \in \mathbb{R}^{n \times d}, \quad x \in \mathbb{R}^{d} $$
$$ q = W \cdot x $$
"""
SQUARE = r"""# Square
$$ W \in \mathbb{R}^{n \times n}, \quad x \in \mathbb{R}^{n} $$
$$ q = W \cdot x $$
"""
EPS = 1e-6


def _context(line, head=HEAD):
    return parse_derivation(head + f"$$ {line} $$\n", "v.md").contexts[0]


def _errors(line, head=HEAD):
    with pytest.raises(DerivationErrors) as e:
        parse_derivation(head + f"$$ {line} $$\n", "v.md")
    return [(x.message, x.location.line, x.location.column) for x in e.value.errors]


def _dq_dW(W, x):
    """D[k, i, j] = ∂q_k/∂W_{i,j} by central differences of q = W x."""
    n, d = W.shape
    D = np.zeros((n, n, d))
    for i, j in itertools.product(range(n), range(d)):
        E = np.zeros_like(W)
        E[i, j] = EPS
        D[:, i, j] = ((W + E) @ x - (W - E) @ x)[:, 0] / (2 * EPS)
    return D


def _dq_dx(W, x):
    """J[k, j] = ∂q_k/∂x_j by central differences."""
    n, d = W.shape
    J = np.zeros((n, d))
    for j in range(d):
        e = np.zeros_like(x)
        e[j, 0] = EPS
        J[:, j] = (W @ (x + e) - W @ (x - e))[:, 0] / (2 * EPS)
    return J


# (line, what its right-hand side is at k, i, j (0-based) in NumPy); the left-hand side is ∂q_k/∂W_{i,j}
BY_W = [
    (r"\frac{\partial q_k}{\partial W_{i,j}} = \mathbf{1}_{k=i} x_j", lambda W, x, k, i, j: (k == i) * x[j, 0]),
    (r"\frac{\partial q_k}{\partial W_{ij}} = \delta_{ki} x_j", lambda W, x, k, i, j: (k == i) * x[j, 0]),
    (r"\frac{\partial q_k}{\partial W_{i,j}} = \delta_{k,i} x_j", lambda W, x, k, i, j: (k == i) * x[j, 0]),
    (r"\frac{\partial q_k}{\partial W_{i,j}} = \mathbb{1}[k = i] x_j", lambda W, x, k, i, j: (k == i) * x[j, 0]),
    (r"\frac{\partial q_k}{\partial W_{i,j}} = \mathbb{1}_{k=i} x_j", lambda W, x, k, i, j: (k == i) * x[j, 0]),
    (r"\frac{\partial q_k}{\partial W_{i,j}} = x_j \mathbf{1}_{k,i}", lambda W, x, k, i, j: (k == i) * x[j, 0]),
    (r"\frac{\partial q_k}{\partial W_{i,j}} = x_j", lambda W, x, k, i, j: x[j, 0]),
    (r"\frac{\partial q_k}{\partial W_{i,j}} = 2 \mathbf{1}_{k=i} x_j", lambda W, x, k, i, j: 2 * (k == i) * x[j, 0]),
    (r"\frac{\partial q_k}{\partial W_{i,j}} = \mathbf{1}_{k=i} W_{k,j}", lambda W, x, k, i, j: (k == i) * W[k, j]),
    (r"\frac{\partial q_k}{\partial W_{i,j}} = \mathbf{1}_{k=i}", lambda W, x, k, i, j: 1.0 * (k == i)),
]
# the left-hand side is ∂q_k/∂x_j
BY_X = [
    (r"\frac{\partial q_k}{\partial x_j} = W_{kj}", lambda W, x, k, j: W[k, j]),
    (r"\frac{\partial q_k}{\partial x_j} = W_{k,j} x_j", lambda W, x, k, j: W[k, j] * x[j, 0]),
]
# in a square context (n = d), where the indices may be swapped and still compose
SQUARE_LINES = [
    (r"\frac{\partial q_k}{\partial W_{i,j}} = \mathbf{1}_{k=j} x_i", lambda W, x, k, i, j: (k == j) * x[i, 0]),
    (r"\frac{\partial q_k}{\partial W_{i,j}} = \mathbf{1}_{k=i} x_j", lambda W, x, k, i, j: (k == i) * x[j, 0]),
]


def _truth_by_W(rhs, n, d, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(2):
        W, x = rng.uniform(-1, 1, (n, d)), rng.uniform(-1, 1, (d, 1))
        D = _dq_dW(W, x)
        for k, i, j in itertools.product(range(n), range(n), range(d)):
            if abs(D[k, i, j] - rhs(W, x, k, i, j)) > 1e-6:
                return False
    return True


def _truth_by_x(rhs, n, d, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(2):
        W, x = rng.uniform(-1, 1, (n, d)), rng.uniform(-1, 1, (d, 1))
        J = _dq_dx(W, x)
        for k, j in itertools.product(range(n), range(d)):
            if abs(J[k, j] - rhs(W, x, k, j)) > 1e-6:
                return False
    return True


def _assert_verdicts(ctx, claim, true):
    every = allsizes.prove(ctx, claim)
    concrete = explicit.prove(ctx, claim)
    if true:
        assert every is not None and every.verdict == PROVED, every
        assert concrete.verdict == PROVED, concrete.reason
        return
    assert every is None or every.verdict != PROVED, every
    assert concrete.verdict == REFUTED, concrete.reason
    cex = concrete.counterexample
    assert {name for name, _, _ in cex["indices"]} == set(claim.indices)
    lhs, rhs = explicit.replay(ctx, claim, cex)          # a fresh model, from the free inputs alone
    assert not explicit.agree(lhs, rhs), (lhs, rhs)


@pytest.mark.parametrize("line, rhs", BY_W, ids=[x[0].split("= ")[1] for x in BY_W])
def test_a_derivative_by_an_entry_of_a_matrix_agrees_with_finite_differences(line, rhs):
    ctx = _context(line)
    (claim,) = ctx.claims
    assert set(claim.indices) == {"k", "i", "j"}
    true = _truth_by_W(rhs, 3, 2)
    assert true == _truth_by_W(rhs, 2, 2, seed=1)          # the same truth at another size
    _assert_verdicts(ctx, claim, true)


@pytest.mark.parametrize("line, rhs", BY_X, ids=[x[0].split("= ")[1] for x in BY_X])
def test_a_derivative_by_an_entry_of_a_column_agrees_with_finite_differences(line, rhs):
    ctx = _context(line)
    (claim,) = ctx.claims
    _assert_verdicts(ctx, claim, _truth_by_x(rhs, 3, 2))


@pytest.mark.parametrize("line, rhs", SQUARE_LINES, ids=["swapped", "slides"])
def test_swapped_indices_in_a_square_context_agree_with_finite_differences(line, rhs):
    ctx = _context(line, SQUARE)
    (claim,) = ctx.claims
    _assert_verdicts(ctx, claim, _truth_by_W(rhs, 3, 3))


def test_the_slides_line_is_true_by_finite_differences_and_its_wrong_variants_false():
    """The truths the tests above rest on, stated: the slides' line holds, the indicator is needed."""
    assert _truth_by_W(BY_W[0][1], 3, 2)
    assert not _truth_by_W(lambda W, x, k, i, j: x[j, 0], 3, 2)
    assert not _truth_by_W(SQUARE_LINES[0][1], 3, 3)


def test_indices_swapped_against_the_sizes_are_ill_typed_not_a_crash():
    """x_i with i over W's rows (n) and x over its columns (d): no value where n ≠ d, as a product that does
    not compose; where it composes (n = d) the numbers are shown beside the verdict."""
    ctx = _context(r"\frac{\partial q_k}{\partial W_{i,j}} = \mathbf{1}_{k=j} x_i")
    (claim,) = ctx.claims
    assert allsizes.prove(ctx, claim).verdict == ILL_TYPED
    assert explicit.prove(ctx, claim).verdict == ILL_TYPED


def test_every_spelling_prints_back_as_written_and_reads_the_same():
    for line, _ in BY_W + BY_X:
        ctx = _context(line)
        (claim,) = ctx.claims
        lhs, rhs = parse_statement(claim_latex(claim.lhs, claim.rhs), ctx)
        assert (lhs, rhs) == (claim.lhs, claim.rhs), line


def test_the_derived_right_hand_side_of_the_wrong_line_is_proved():
    ctx = _context(r"\frac{\partial q_k}{\partial W_{i,j}} = x_j")
    (claim,) = ctx.claims
    derived = derived_rhs(ctx, claim)
    assert derived is not None
    lhs, rhs = parse_statement(claim_latex(claim.lhs, derived), ctx)
    again = ir.Claim("derived", "", lhs, rhs)
    assert allsizes.prove(ctx, again).verdict == PROVED


@pytest.mark.parametrize("line, message", [
    (r"\frac{\partial q_k}{\partial x_{i,j}} = 0", "x is a column"),
    (r"\frac{\partial q_k}{\partial W_{i,j}} = \delta_{kl} x_j", "the entry index l indexes no column"),
    (r"\frac{\partial q_k}{\partial W_{i,j}} = \mathbb{1}[k = 1] x_j", "indicator of an equality of two entry"),
    (r"\frac{\partial W}{\partial W_{i,j}} = 0", "is read of a scalar, and W is n×d"),
])
def test_a_bad_line_of_entries_is_a_located_error(line, message):
    errors = _errors(line)
    assert any(message in m and row == 4 and col > 1 for m, row, col in errors), errors


def test_a_name_with_two_letters_declared_stays_a_name():
    head = HEAD.replace(r"x \in \mathbb{R}^{d}", r"x \in \mathbb{R}^{d}, \quad W_{ij} \in \mathbb{R}")
    ctx = _context(r"W_{ij} = W_{ij}", head)
    (claim,) = ctx.claims
    assert claim.lhs == ir.Ref("W_ij") and not claim.indices


STEPS = r"""# Steps
$$ W \in \mathbb{R}^{H \times V}, \quad x_t \in \mathbb{R}^{V} $$
$$ h_t := W x_t $$
"""


def test_a_line_of_entries_through_time_is_never_proved_by_an_engine_that_does_not_read_it():
    """The structural engine does not read free entry indices: such a line through time is checked at the
    sizes and lengths tried (never proved, never a crash), and a wrong one refuted."""
    from derivations.engines import recurrence
    ctx = _context(r"\frac{\partial (h_t)_i}{\partial W_{i,j}} = (x_t)_j", STEPS)
    (claim,) = ctx.claims
    assert recurrence.prove(ctx, claim) is None and allsizes.prove(ctx, claim) is None
    assert explicit.prove(ctx, claim).verdict == PROVED            # at the sizes and T tried: "checked"
    ctx = _context(r"\frac{\partial (h_t)_i}{\partial W_{i,j}} = 2 (x_t)_j", STEPS)
    (claim,) = ctx.claims
    assert explicit.prove(ctx, claim).verdict == REFUTED


def test_a_size_is_no_entry_index():
    head = HEAD.replace(r"n \times d", r"k \times d")
    errors = _errors(r"\frac{\partial q_k}{\partial W_{i,j}} = \mathbf{1}_{k=i} x_j", head)
    assert any("k is a size" in m for m, _, _ in errors), errors
