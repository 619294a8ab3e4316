"""Single edits of a matrix expression: mutations, and rewrites that keep its value.

Each edit kind is a function `kind(expr, **context)` that yields every variant
of `expr` made by applying that edit once, at one position of the expression
tree (so a repair search can try them, and the soundness tests can feed them to
the engines).  Variants are built with SymPy's constructors, which neither
simplify nor check shapes at symbolic sizes: an edit may produce an ill-typed
expression (that is what a dropped transpose often is); `functions.typecheck`
finds it.  The same expression never comes out twice from one call.

Mutations (`MUTATIONS`), the slips a derivation makes -- usually false, though
some are equivalent by accident (commuting a Hadamard product), which is for an
independent check to decide, never assumed here:

    add-transpose, remove-transpose, product-to-hadamard, hadamard-to-product,
    swap-operands, add-derivative, remove-derivative, drop-term, flip-sign,
    replace-symbol

Rewrites (`REWRITES`), each an identity of matrix algebra, so the variant has
the value of the original:

    transpose-of-transpose, transpose-of-product, commute-hadamard,
    reassociate-hadamard, hadamard-as-diag, sigma-prime-as-sigma,
    sigma-prime-via-definition, distribute, move-scalar

Context (keyword arguments, ignored by edits that do not need it):
`definitions` maps a defined matrix symbol to its definition (h -> sigma(a)),
for the edits that write sigma(a) or sigma'(a) through h; `pool` is the set of
matrix symbols `replace-symbol` may substitute (default: those of expr).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.special import OneMatrix

from .functions import elementwise, f, fp, sigma, sigma_prime

# ---------------------------------------------------------------- positions in the tree


# Nodes whose inside is not edited: symbols, explicit matrices, block matrices (their blocks sit
# in an explicit matrix of blocks).
_LEAVES = (sp.MatrixSymbol, sp.MatrixBase, sp.BlockMatrix)


def positions(expr, path=()):
    """(path, subexpression) for every matrix-valued node, the root first; a path is a tuple of arg indices."""
    yield path, expr
    if isinstance(expr, _LEAVES):
        return
    for n, a in enumerate(expr.args):
        if isinstance(a, sp.MatrixExpr):
            yield from positions(a, (*path, n))


def replace_at(expr, path, new):
    """expr with the node at `path` replaced by `new` (the rest rebuilt with the same constructors)."""
    if not path:
        return new
    args = list(expr.args)
    args[path[0]] = replace_at(args[path[0]], path[1:], new)
    return expr.func(*args)


def _same_shape(A, B) -> bool:
    return all(sp.expand(sp.sympify(a) - sp.sympify(b)) == 0 for a, b in zip(A.shape, B.shape))


def _is_scalar_shape(M) -> bool:
    return all(sp.sympify(n) == 1 for n in M.shape)


def _matrices(node):
    """The matrix factors of a MatMul and its scalar coefficient."""
    coeff = sp.Mul(*[a for a in node.args if not isinstance(a, sp.MatrixExpr)])
    return coeff, [a for a in node.args if isinstance(a, sp.MatrixExpr)]


def _matmul(coeff, mats):
    args = ([coeff] if coeff != 1 else []) + list(mats)
    return args[0] if len(args) == 1 else sp.MatMul(*args)


def _unique(expr, variants) -> Iterator:
    seen = {sp.srepr(expr)}
    for v in variants:
        key = sp.srepr(v)
        if key not in seen:
            seen.add(key)
            yield v


def _at_each(expr, make):
    """Variants from `make(node)` (an iterable of replacements) at every position, deduplicated."""
    def gen():
        for path, node in positions(expr):
            for new in make(node):
                yield replace_at(expr, path, new)
    return _unique(expr, gen())


def _pairs(node, cls):
    """(index of the first of an adjacent pair of matrix args, the two args) in a MatMul/HadamardProduct."""
    idx = [n for n, a in enumerate(node.args) if isinstance(a, sp.MatrixExpr)] if isinstance(node, cls) else []
    yield from itertools.pairwise(idx)


def _with_args(node, replaced: dict, drop=()):
    args = [replaced.get(n, a) for n, a in enumerate(node.args) if n not in drop]
    return node.func(*args)


# ---------------------------------------------------------------- mutations

def add_transpose(expr, **_):
    """X -> X^T at any node that is not 1×1."""
    return _at_each(expr, lambda node: [] if _is_scalar_shape(node) else [sp.Transpose(node)])


def remove_transpose(expr, **_):
    """X^T -> X."""
    return _at_each(expr, lambda node: [node.arg] if isinstance(node, sp.Transpose) else [])


def product_to_hadamard(expr, **_):
    """A · B -> A ∘ B, for each adjacent pair of factors of a matrix product."""
    def make(node):
        for a, b in _pairs(node, sp.MatMul):
            merged = HadamardProduct(node.args[a], node.args[b])
            rest = _with_args(node, {a: merged}, drop=(b,))
            yield rest if len(rest.args) > 1 else merged
    return _at_each(expr, make)


def hadamard_to_product(expr, **_):
    """u ∘ v -> u · v, for each adjacent pair of factors of a Hadamard product."""
    def make(node):
        for a, b in _pairs(node, HadamardProduct):
            merged = sp.MatMul(node.args[a], node.args[b])
            rest = _with_args(node, {a: merged}, drop=(b,))
            yield rest if len(rest.args) > 1 else merged
    return _at_each(expr, make)


def swap_operands(expr, **_):
    """A · B -> B · A and u ∘ v -> v ∘ u, for each adjacent pair (the latter is equivalent)."""
    def make(node):
        for cls in (sp.MatMul, HadamardProduct):
            for a, b in _pairs(node, cls):
                yield _with_args(node, {a: node.args[b], b: node.args[a]})
    return _at_each(expr, make)


def _derivative_of(body, x):
    if body == f(x):
        return fp(x)
    if body == sigma(x):
        return sigma_prime(x)
    return None


def _antiderivative_of(body, x):
    if body == fp(x):
        return f(x)
    if body == sigma_prime(x):
        return sigma(x)
    return None


def _apply(node, to):
    """The element-wise application `node` with its function replaced by the function `to` of its variable."""
    x = node.function.variables[0]
    body = to(node.function.expr, x)
    return [] if body is None else [ElementwiseApplyFunction(sp.Lambda(x, body), node.expr)]


def add_derivative(expr, definitions=None, **_):
    """f(Z) -> f'(Z), sigma(Z) -> sigma'(Z); a defined h = sigma(a) -> sigma'(a)."""
    definitions = definitions or {}

    def make(node):
        if isinstance(node, ElementwiseApplyFunction):
            return _apply(node, _derivative_of)
        if node in definitions and isinstance(definitions[node], ElementwiseApplyFunction):
            return _apply(definitions[node], _derivative_of)
        return []
    return _at_each(expr, make)


def remove_derivative(expr, **_):
    """f'(Z) -> f(Z), sigma'(Z) -> sigma(Z)."""
    return _at_each(expr, lambda node: _apply(node, _antiderivative_of)
                    if isinstance(node, ElementwiseApplyFunction) else [])


def drop_term(expr, **_):
    """A + B + C -> B + C, A + C, A + B."""
    def make(node):
        if not isinstance(node, sp.MatAdd):
            return
        for n in range(len(node.args)):
            rest = [a for m, a in enumerate(node.args) if m != n]
            yield rest[0] if len(rest) == 1 else sp.MatAdd(*rest)
    return _at_each(expr, make)


def flip_sign(expr, **_):
    """X -> -X at any node (and -X -> X)."""
    def make(node):
        if isinstance(node, sp.MatMul):
            coeff, mats = _matrices(node)
            if coeff == -1:
                return [_matmul(1, mats)]
        return [sp.MatMul(-1, node)]
    return _at_each(expr, make)


def replace_symbol(expr, pool=None, **_):
    """One occurrence of a matrix symbol -> another symbol of the same shape (W_hh for W_xh, h for h_prev, ...)."""
    pool = sorted(set(pool) if pool is not None else expr.atoms(sp.MatrixSymbol), key=str)

    def make(node):
        if isinstance(node, sp.MatrixSymbol):
            return [other for other in pool if other != node and _same_shape(other, node)]
        return []
    return _at_each(expr, make)


MUTATIONS = {
    "add-transpose": add_transpose,
    "remove-transpose": remove_transpose,
    "product-to-hadamard": product_to_hadamard,
    "hadamard-to-product": hadamard_to_product,
    "swap-operands": swap_operands,
    "add-derivative": add_derivative,
    "remove-derivative": remove_derivative,
    "drop-term": drop_term,
    "flip-sign": flip_sign,
    "replace-symbol": replace_symbol,
}


# ---------------------------------------------------------------- rewrites (equivalent)

def transpose_of_transpose(expr, **_):
    """X -> (X^T)^T."""
    return _at_each(expr, lambda node: [sp.Transpose(sp.Transpose(node))])


def transpose_of_product(expr, **_):
    """(A B)^T -> B^T A^T, and A B -> (B^T A^T)^T."""
    def make(node):
        if isinstance(node, sp.Transpose) and isinstance(node.arg, sp.MatMul):
            coeff, mats = _matrices(node.arg)
            yield _matmul(coeff, [sp.Transpose(m) for m in reversed(mats)])
        if isinstance(node, sp.MatMul):
            coeff, mats = _matrices(node)
            if len(mats) >= 2:
                yield sp.Transpose(_matmul(coeff, [sp.Transpose(m) for m in reversed(mats)]))
    return _at_each(expr, make)


def commute_hadamard(expr, **_):
    """u ∘ v -> v ∘ u."""
    def make(node):
        for a, b in _pairs(node, HadamardProduct):
            yield _with_args(node, {a: node.args[b], b: node.args[a]})
    return _at_each(expr, make)


def reassociate_hadamard(expr, **_):
    """u ∘ v ∘ w -> (u ∘ v) ∘ w, u ∘ (v ∘ w); a nested Hadamard product flattened."""
    def make(node):
        if not isinstance(node, HadamardProduct):
            return
        args = list(node.args)
        if len(args) >= 3:
            for a in range(len(args) - 1):
                grouped = HadamardProduct(args[a], args[a + 1])
                yield HadamardProduct(*args[:a], grouped, *args[a + 2:])
        for n, a in enumerate(args):
            if isinstance(a, HadamardProduct):
                yield HadamardProduct(*args[:n], *a.args, *args[n + 1:])
    return _at_each(expr, make)


def hadamard_as_diag(expr, **_):
    """u ∘ v -> diag(u) v, for columns u, v (Definition 1)."""
    def make(node):
        for a, b in _pairs(node, HadamardProduct):
            u, v = node.args[a], node.args[b]
            if sp.sympify(u.shape[1]) == 1 and sp.sympify(v.shape[1]) == 1:
                merged = sp.MatMul(DiagMatrix(u), v)
                rest = _with_args(node, {a: merged}, drop=(b,))
                yield rest if len(rest.args) > 1 else merged
    return _at_each(expr, make)


def _one_minus(M):
    return sp.MatAdd(OneMatrix(*M.shape), sp.MatMul(-1, M))


def sigma_prime_as_sigma(expr, **_):
    """sigma'(Z) -> sigma(Z) ∘ (1 - sigma(Z))."""
    def make(node):
        if isinstance(node, ElementwiseApplyFunction):
            x = node.function.variables[0]
            if node.function.expr == sigma_prime(x):
                s = elementwise(sigma, node.expr)
                yield HadamardProduct(s, _one_minus(s))
    return _at_each(expr, make)


def sigma_prime_via_definition(expr, definitions=None, **_):
    """sigma'(a) -> h ∘ (1 - h) and sigma(a) -> h, where h is defined as sigma(a)."""
    by_argument = {}
    for h, definition in (definitions or {}).items():
        if isinstance(definition, ElementwiseApplyFunction) and \
                definition.function.expr == sigma(definition.function.variables[0]):
            by_argument[definition.expr] = h

    def argument(node):
        """The argument of an element-wise function, with blocks multiplied out ([A B][x; y] is Ax + By)."""
        return sp.block_collapse(node.expr) if node.expr.has(sp.BlockMatrix) else node.expr

    def make(node):
        if isinstance(node, ElementwiseApplyFunction) and argument(node) in by_argument:
            h, x = by_argument[argument(node)], node.function.variables[0]
            if node.function.expr == sigma_prime(x):
                yield HadamardProduct(h, _one_minus(h))
            elif node.function.expr == sigma(x):
                yield h
    return _at_each(expr, make)


def distribute(expr, **_):
    """A (B + C) -> A B + A C, (B + C) A -> B A + C A, u ∘ (v + w) -> u ∘ v + u ∘ w."""
    def make(node):
        if not isinstance(node, (sp.MatMul, HadamardProduct)):
            return
        for n, a in enumerate(node.args):
            if isinstance(a, sp.MatAdd):
                yield sp.MatAdd(*(_with_args(node, {n: term}) for term in a.args))
    return _at_each(expr, make)


def move_scalar(expr, **_):
    """c (A B) -> (c A) B -> A (c B); (c u) ∘ v -> c (u ∘ v); A B -> (2 A)(B / 2)."""
    def make(node):
        if isinstance(node, sp.MatMul):
            coeff, mats = _matrices(node)
            if coeff != 1 and len(mats) >= 1:
                for n in range(len(mats)):
                    moved = [sp.MatMul(coeff, m) if k == n else m for k, m in enumerate(mats)]
                    if len(mats) > 1:
                        yield sp.MatMul(*moved)
            if coeff == 1 and len(mats) >= 2:
                yield sp.MatMul(sp.MatMul(2, mats[0]), *mats[1:-1], sp.MatMul(sp.Rational(1, 2), mats[-1]))
        if isinstance(node, HadamardProduct):
            for n, a in enumerate(node.args):
                if isinstance(a, sp.MatMul):
                    coeff, mats = _matrices(a)
                    if coeff != 1:
                        yield sp.MatMul(coeff, _with_args(node, {n: _matmul(1, mats)}))
    return _at_each(expr, make)


REWRITES = {
    "transpose-of-transpose": transpose_of_transpose,
    "transpose-of-product": transpose_of_product,
    "commute-hadamard": commute_hadamard,
    "reassociate-hadamard": reassociate_hadamard,
    "hadamard-as-diag": hadamard_as_diag,
    "sigma-prime-as-sigma": sigma_prime_as_sigma,
    "sigma-prime-via-definition": sigma_prime_via_definition,
    "distribute": distribute,
    "move-scalar": move_scalar,
}

EDITS = {**MUTATIONS, **REWRITES}


def variants(kind: str, expr, **context) -> list:
    """Every single-edit variant of expr by the edit `kind` (a list)."""
    return list(EDITS[kind](expr, **context))
