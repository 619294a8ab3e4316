# GENERATED FILE -- do not edit by hand.  Written by `python scripts/generate_numeric.py` (derivations/outputs/numpy_module.py,
# template derivations/templates/numpy_module_any.py.j2) from the lines of note.md the verifier proved.
r"""BPTT algorithm: forward pass, loss and gradients in NumPy, generated from note.md.

Interface (names as in the file):

    forward(params, inputs) -> dict of every defined quantity, steps first: (T, size, B)
    loss_and_grads(params, inputs) -> (loss, grads), grads[name] shaped like params[name] or inputs[name]
    loss_and_grads(params, inputs, keep=names) -> (loss, grads, {name: value as forward gives it})

params (shared by the batch):
    W_xh         H x E
    W_hh         H x H
    W_hy         V x H
inputs (one column per example; B examples):
    X            T x E x B
    h_0          H x B
    y            T x B   integers 0 .. V - 1 (the file's 1 .. V)
A column vector of the file is an array (size, B), one column per example; a step sequence is stacked
(T, size, B); an index is an integer array, (T, B) for a step sequence, (B,) otherwise, counting from 0.  The arrays are
all float32 or all float64, and every result has that dtype.  The loss \ell (ell) is summed over the
batch (and, as the file defines it, over the steps); each gradient is the gradient of that sum.
Bad inputs (a missing or unknown name, a wrong shape or dtype, an index out of range, NaN) raise
ValueError naming the input and what was expected.

Inside, a column per example is kept as a row (an array (B, size), steps first: (T + 2P, B, size)), so
the file's W h is printed h @ W.T and a product over every step is one matrix product; inputs and
results are transposed at the interface.

The file's \ell_t is the loss from step t to T, its derivatives holding the earlier steps fixed; the
module computes ell = \ell_1, the whole loss, and reads each line through it (numpy_module._whole_loss): a
line about \ell_t gives the gradient of ell.

Where each gradient of the backward pass comes from:
  the file's proved lines (each printed line ends with "# claim: <id> (line N)"):
    S: bptt-dS (line 364)
    h: bptt-dh (line 376), bptt-dh_prev-corrected (line 410)
    W_xh: bptt-dW_xh (line 381)
    W_hh: bptt-dW_hh-corrected (line 393)
    W_hy: bptt-dW_hy (line 370)
    X: bptt-dX (line 399)
    h_0: bptt-dh_prev-corrected (line 410)
  lines of the file not printed:
    bptt-dW_hh (line 386), for W_hh: ill-typed
    bptt-dh_prev (line 404), for h_0: refuted
"""
# Every forward value is given its name in the backward pass, whether or not a line reads it.
# ruff: noqa: F841
import threading

import numpy as np

PARAMS = ['W_xh', 'W_hh', 'W_hy']
INPUTS = ['X', 'h_0', 'y']
# Each array's dimensions: a size of the file, a number, T (steps) or B (examples).
SHAPES = {
    "W_xh": ('H', 'E'),
    "W_hh": ('H', 'H'),
    "W_hy": ('V', 'H'),
    "X": ('T', 'E', 'B'),
    "h_0": ('H', 'B'),
    "y": ('T', 'B'),
}
INDEX_RANGE = {'y': 'V'}
BINARY = []
LENGTH = None
P = 1    # zero steps kept before step 1 and after step T (step s is at position s + P - 1)
SOFTMAX_ROWS = 32
# A forward quantity of every step up to this size is stored in an array kept between the calls of one thread.
KEEP_BYTES = 1 << 28
# The forward quantities whose arrays loss_and_grads writes over (or computes by chunks): keep= copies them first.
WRITTEN_OVER = ['P_', 'S', 'ell']
# loss_and_grads computes S, P_, ell and the lines of the backward pass that read them for
# every step at once while an array of them holds at most WHOLE_ELEMENTS numbers (one product each, the
# fastest), else on chunks of steps, a chunk's arrays of them holding at most CHUNK_ELEMENTS numbers (at least
# one step): their memory stays bounded whatever T.  forward() returns them for every step.
WHOLE_ELEMENTS = 1 << 24
CHUNK_ELEMENTS = 1 << 21
CHUNKED = frozenset(['S', 'P_', 'ell'])
# The arrays with a step axis (padded with P zero steps at each end): a chunk sees a window of each.
STEP_ARRAYS = ['P_', 'S', 'X', 'd_P_', 'd_S', 'd_X', 'd_h', 'h', 'y']


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))     # = 1 / (1 + e^-x), without overflow


def _dsigmoid(x):
    s = _sigmoid(x)
    return s * (1 - s)


def _step(x):
    return (x > 0).astype(x.dtype)


def _softmax(y, out=None):
    """softmax along the last axis, into `out` (a new array when None).  The rows go SOFTMAX_ROWS at a time,
    so that a block stays in cache through its passes (max, subtract, exp, sum, divide)."""
    out = np.empty_like(y) if out is None else out
    rows, flat = _flat(y), _flat(out)
    if not np.shares_memory(flat, out):     # out cannot be viewed as rows: compute apart, then copy
        out[...] = _softmax(y)
        return out
    for r in range(0, len(rows), SOFTMAX_ROWS):
        block = flat[r:r + SOFTMAX_ROWS]
        np.subtract(rows[r:r + SOFTMAX_ROWS], rows[r:r + SOFTMAX_ROWS].max(axis=-1, keepdims=True), out=block)
        np.exp(block, out=block)
        block /= block.sum(axis=-1, keepdims=True)
    return out


def _same(a, b):
    """a and b are views of the same numbers (x - e_k written over x)."""
    return a.__array_interface__ == b.__array_interface__


def _flat(x):
    """x as rows (n, last axis): a view when the layout allows it."""
    return x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x


def _take(p, k):
    """(p)_k of every example: p (..., B, n), k (..., B) -> (..., B, 1)."""
    return np.take_along_axis(p, k[..., None], axis=-1)


def _log_take(p, s, k):
    """log (p)_k of every example where p = softmax(s): the log of the stored p_k, or, where p_k is below the
    smallest normal number (its digits partly or wholly lost), s_k - m - log Σ e^{s - m} (m = max s)."""
    pk = _take(p, k)
    small = pk < np.finfo(p.dtype).tiny
    out = np.log(np.where(small, 1, pk))
    if small.any():
        at = np.nonzero(small[..., 0])
        rows = s[at]
        m = rows.max(axis=-1, keepdims=True)
        exact = np.take_along_axis(rows, k[at][..., None], axis=-1) - m
        out[at] = exact - np.log(np.exp(rows - m).sum(axis=-1, keepdims=True))
    return out


def _onehot(k, n, dtype):
    """e_k of every example: k (..., B) -> (..., B, n)."""
    return (k[..., None] == np.arange(n)).astype(dtype)


def _minus_onehot(x, k, out=None):
    """x - e_k for every example: x with one entry per row lowered by 1, into `out` (a copy of x when None)."""
    out = np.array(x, copy=True) if out is None else out
    if not _same(out, x):
        np.copyto(out, x)
    at = k[..., None]
    np.put_along_axis(out, at, np.take_along_axis(out, at, axis=-1) - 1, axis=-1)
    return out


def _mm(x, w, out=None):
    """Rows times a matrix for every step at once, as one product: (T, B, n) @ (n, m) -> (T, B, m), into `out`
    when given."""
    if x.ndim == 2:
        return np.matmul(x, w, out=out)
    if out is None:
        return (x.reshape(-1, x.shape[-1]) @ w).reshape(x.shape[:-1] + (w.shape[-1],))
    flat = _flat(out)
    if np.shares_memory(flat, out):
        np.matmul(_flat(x), w, out=flat)
    else:                                   # out cannot be viewed as rows: compute apart, then copy
        out[...] = _mm(x, w)
    return out


def _outer(a, b):
    """The sum over steps and examples of a b^T, one product: (..., B, m), (..., B, n) -> (m, n)."""
    if a.shape[:-1] != b.shape[:-1]:
        lead = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
        a, b = np.broadcast_to(a, lead + a.shape[-1:]), np.broadcast_to(b, lead + b.shape[-1:])
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


def _sum_to(x, shape):
    """Per-example rows (..., B, r) summed over steps and examples: a shared (r, 1), or (1, 1)."""
    s = x.reshape(-1, x.shape[-1]).sum(axis=0)
    return s.reshape(shape) if s.size == shape[0] * shape[1] else s.sum().reshape(shape)


def _steps(x, pad):
    """A step input as the module keeps it: steps 1..T with `pad` zero steps on each side, columns as rows."""
    if x.ndim == 3:
        x = x.transpose(0, 2, 1)
    out = np.zeros((x.shape[0] + 2 * pad,) + x.shape[1:], x.dtype)
    out[pad:pad + x.shape[0]] = x
    return out


def _columns_of_new(x):
    """Rows back to the file's columns, a view of x: only for an array just computed, which nothing else holds."""
    return np.swapaxes(x, -1, -2)


def _columns(x):
    """Rows back to the file's columns: (..., B, size) -> (..., size, B), always a new array (x may be kept)."""
    return np.swapaxes(x, -1, -2).copy()


_kept = threading.local()


def _steps_array(name, shape, dtype):
    """The array of a forward quantity of every step, its P padding steps at each end zeros (the forward pass
    writes steps 1..T).  Up to KEEP_BYTES it is kept for the next call of the same thread, which then writes
    into pages already mapped rather than fresh ones (the (T, B, V) scores are the largest arrays); nothing
    a call returns is a view of it."""
    arrays = _kept.__dict__.setdefault("arrays", {})
    a = arrays.pop(name, None)
    if a is None or a.shape[1:] != shape[1:] or len(a) < shape[0] or a.dtype != dtype:
        a = None                                # freed before the new one is made
        a = np.empty(shape, dtype)
    if a.nbytes <= KEEP_BYTES:
        arrays[name] = a
    a = a[:shape[0]]                            # a chunk shorter than the last one: the first steps of its array
    a[:P] = 0
    a[shape[0] - P:] = 0
    return a


def _by_chunks(step, names, T, B, widths, kinds, grads):
    """step(window, n) for consecutive chunks of n steps (all T steps when WHOLE_ELEMENTS allows them, else as
    many as CHUNK_ELEMENTS allows, for the widest of `widths` numbers per example and step), window holding each array of STEP_ARRAYS as the view of its steps
    s - P .. s + n - 1 + P (the chunk's steps 1..n and P on each side) and every other name as it is.  Of what
    step returns, a "sum" is added over the chunks, a "steps" array (one row per step) stacked; the chunk's
    gradients are added into grads."""
    width = max(1, B * max(widths))
    n = T if T * width <= WHOLE_ELEMENTS else max(1, min(T, CHUNK_ELEMENTS // width))
    out = [None] * len(kinds)
    for s in range(1, T + 1, n):
        m = min(n, T + 1 - s)
        window = names if m == T else {k: a[s - 1:s - 1 + m + 2 * P] if k in STEP_ARRAYS else a
                                       for k, a in names.items()}
        got, chunk_grads = step(window, m)
        for i, (kind, x) in enumerate(zip(kinds, got)):
            if kind == "steps" and m < T:
                if out[i] is None:
                    out[i] = np.empty((T,) + x.shape[1:], x.dtype)
                out[i][s - 1:s - 1 + m] = x
            else:
                out[i] = x if out[i] is None else out[i] + x
        for k, g in chunk_grads.items():
            if s == 1:
                grads[k] = g
            else:
                grads[k] += g
    return out


def _check(params, inputs):
    """The arrays by name, the sizes (the file's, T and B) and the dtype; ValueError for a bad input."""
    a, size = {}, {}
    for group, names, given in (("params", PARAMS, params), ("inputs", INPUTS, inputs)):
        if not hasattr(given, "keys"):
            raise ValueError(f"{group}: expected a dict of arrays with the names {', '.join(names)}")
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"{group}: unknown name {unknown[0]!r}; expected {', '.join(names)}")
        for n in names:
            if n not in given:
                raise ValueError(f"{group}: missing {n!r}, an array of shape ({', '.join(map(str, SHAPES[n]))})")
            a[n] = np.asarray(given[n])
    floats = [n for n in INPUTS + PARAMS if n not in INDEX_RANGE]
    dtype = a[floats[0]].dtype if floats else np.dtype(np.float64)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{floats[0]}: expected float32 or float64, got {dtype}")
    for n in floats:
        if a[n].dtype != dtype:
            raise ValueError(f"{n}: expected dtype {dtype} (as {floats[0]}), got {a[n].dtype}")
    for n in INDEX_RANGE:
        if not np.issubdtype(a[n].dtype, np.integer):
            raise ValueError(f"{n}: expected an integer array (indices from 0), got dtype {a[n].dtype}")
    source = {}
    for n in PARAMS + INPUTS:           # the weights first: a size is read from the first array that has it
        want = SHAPES[n]
        if a[n].ndim != len(want):
            raise ValueError(f"{n}: expected {len(want)} dimensions ({', '.join(map(str, want))}), "
                             f"got shape {a[n].shape}")
        for dim, got in zip(want, a[n].shape):
            if isinstance(dim, int):
                expected, where = dim, ""
            else:
                expected = size.setdefault(dim, got)
                where = f" (as in {source.setdefault(dim, n)})"
            if got != expected:
                raise ValueError(f"{n}: expected shape ({', '.join(map(str, want))}) with "
                                 f"{dim} = {expected}{where}, got {a[n].shape}")
    size.setdefault("B", 1)
    size.setdefault("T", LENGTH or 1)
    if size["T"] < 1 or size["B"] < 1:
        raise ValueError(f"expected at least one step and one example, got T = {size['T']}, B = {size['B']}")
    if LENGTH is not None and size["T"] != LENGTH:
        raise ValueError(f"T: this part of the file is about T = {LENGTH} steps, got {size['T']}")
    for n in floats:
        # A finite sum means every element is finite (NaN and infinity propagate); only when it is not
        # (also when finite numbers overflow the sum) is every element tested.
        with np.errstate(over="ignore", invalid="ignore"):
            total = a[n].sum()
        if not np.isfinite(total) and not np.all(np.isfinite(a[n])):
            raise ValueError(f"{n}: expected finite numbers, got NaN or infinity")
    for n, rng in INDEX_RANGE.items():
        if a[n].size and (a[n].min() < 0 or a[n].max() >= size[rng]):
            raise ValueError(f"{n}: expected indices 0 .. {rng} - 1 = {size[rng] - 1}, "
                             f"got {a[n].min()} .. {a[n].max()}")
    for n in BINARY:
        if not np.all((a[n] == 0) | (a[n] == 1)):
            raise ValueError(f"{n}: expected 0 or 1")
    return a, size, dtype


def _chunk_forward(v, T, B, size, dtype):
    """S, P_, ell for the steps 1..T of v (every step, or a window of a chunk's steps)."""
    W_hy = v["W_hy"]
    h = v["h"]
    y = v["y"]
    S = _steps_array("S", (T + 2, B, size["V"]), dtype)
    _mm(h[1:T + 1], W_hy.T, out=S[1:T + 1])  # definition of S (line 345)
    P_ = _steps_array("P_", (T + 2, B, size["V"]), dtype)
    _softmax(S[1:T + 1], out=P_[1:T + 1])  # definition of P (line 345)
    ell = -np.sum(_log_take(P_[1:T + 1], S[1:T + 1], y[1:T + 1]), axis=0)  # definition of \ell (line 347)
    values = dict(locals())
    del values["v"]
    return values


def _forward(arrays, size, dtype, whole=True):
    """Every defined quantity; with whole=False not S, P_, ell (loss_and_grads
    computes them by chunks)."""
    T, B = size["T"], size["B"]
    X = _steps(arrays["X"], 1)
    h_0 = arrays["h_0"].T
    y = _steps(arrays["y"], 1)
    W_xh = arrays["W_xh"]
    W_hh = arrays["W_hh"]
    W_hy = arrays["W_hy"]
    h = _steps_array("h", (T + 2, B, size["H"]), dtype)
    h[0] = h_0
    pre1 = _mm(X[1:T + 1], W_xh.T)  # definition of h (line 345): its terms without h
    for t in range(1, T + 1):
        h[t] = _sigmoid(pre1[t - 1] + h[t - 1] @ W_hh.T)  # definition of h (line 345)
    del pre1
    values = dict(locals())
    if whole:
        values.update(_chunk_forward(values, T, B, size, dtype))
    return values


# The values as forward returns them: the file's columns, steps first.
_OUTPUTS = {
    "h": lambda values, T: _columns(values["h"][1:T + 1]),
    "S": lambda values, T: _columns(values["S"][1:T + 1]),
    "P_": lambda values, T: _columns(values["P_"][1:T + 1]),
    "ell": lambda values, T: _columns(values["ell"]),
}


def forward(params, inputs):
    """Every defined quantity of the file, steps first ((T, size, B)), and "loss" (summed over the batch)."""
    arrays, size, dtype = _check(params, inputs)
    with np.errstate(under="ignore"):       # a probability or a gradient underflowing to 0 is harmless
        values = _forward(arrays, size, dtype)
    out = {n: value(values, size["T"]) for n, value in _OUTPUTS.items()}
    out["loss"] = values["ell"].sum()
    return out


def loss_and_grads(params, inputs, keep=()):
    """(loss, grads): the loss summed over the batch, and its gradient with respect to every input; with
    keep (names of defined quantities), also {name: its value as forward gives it}."""
    unknown = sorted(set(keep) - set(_OUTPUTS))
    if unknown:
        raise ValueError(f"keep: unknown name {unknown[0]!r}; expected some of {', '.join(_OUTPUTS)}")
    arrays, size, dtype = _check(params, inputs)
    with np.errstate(under="ignore"):       # a probability or a gradient underflowing to 0 is harmless
        loss, grads, kept = _backward(arrays, size, dtype, keep)
    return (loss, grads, kept) if keep else (loss, grads)


def _backward(arrays, size, dtype, keep):
    values = _forward(arrays, size, dtype, whole=not CHUNKED.isdisjoint(keep))
    T, B = size["T"], size["B"]
    kept = {n: _OUTPUTS[n](values, T) for n in keep if n in WRITTEN_OVER}    # now: the backward pass writes over them
    h = values["h"]
    W_xh = values["W_xh"]
    W_hh = values["W_hh"]
    W_hy = values["W_hy"]
    X = values["X"]
    h_0 = values["h_0"]
    y = values["y"]
    grads = {}
    ell, pre1 = _by_chunks(_chunk_backward, locals(), T, B, (size["V"],), ('sum', 'steps'), grads)  # the lines reading S, P_, ell, a chunk of steps at a time
    d_h = np.zeros_like(h)
    for t in range(T, 0, -1):
        d_h[t] = pre1[t - 1] + ((h[t + 1] * (1 - h[t + 1])) * d_h[t + 1]) @ W_hh  # claim: bptt-dh (line 376), bptt-dh_prev-corrected (line 410)
    del pre1
    grads["W_xh"] = _outer((h[1:T + 1] * (1 - h[1:T + 1])) * d_h[1:T + 1], X[1:T + 1])  # claim: bptt-dW_xh (line 381)
    grads["W_hh"] = _outer((h[1:T + 1] * (1 - h[1:T + 1])) * d_h[1:T + 1], h[0:T])  # claim: bptt-dW_hh-corrected (line 393)
    grads["X"] = _columns_of_new(_mm((h[1:T + 1] * (1 - h[1:T + 1])) * d_h[1:T + 1], W_xh))  # claim: bptt-dX (line 399)
    grads["h_0"] = _columns(((h[1] * (1 - h[1])) * d_h[1]) @ W_hh)  # claim: bptt-dh_prev-corrected (line 410)
    del d_h
    kept.update({n: _OUTPUTS[n](values, T) for n in keep if n not in kept})     # the others last: no copy held meanwhile
    return ell.sum(), grads, kept


def _chunk_backward(v, T):
    """The lines of the backward pass that read S, P_, ell, for the steps 1..T of the
    window v, after the forward lines of those steps: (ell, pre1) and this chunk's gradients."""
    B, size, dtype = v["B"], v["size"], v["dtype"]
    values = _chunk_forward(v, T, B, size, dtype)
    ell = values["ell"]
    P_ = values["P_"]
    y = v["y"]
    W_hy = v["W_hy"]
    h = v["h"]
    grads = {}
    d_ell = np.ones_like(ell)  # the loss, summed over the batch
    d_S = P_  # P_ is not read again: its array takes the gradient
    _minus_onehot(P_[1:T + 1], y[1:T + 1], out=P_[1:T + 1])  # claim: bptt-dS (line 364)
    pre1 = _mm(d_S[1:T + 1], W_hy)  # claim: bptt-dh (line 376), bptt-dh_prev-corrected (line 410)
    grads["W_hy"] = _outer(d_S[1:T + 1], h[1:T + 1])  # claim: bptt-dW_hy (line 370)
    return (ell, pre1), grads
