# GENERATED FILE -- do not edit by hand.  Regenerate with: python scripts/generate_numeric.py
# Printed by derivations/codegen.py (template derivations/templates/numeric_module.py.j2) from the
# SymPy expressions of the proved claims listed below; each math line ends with a "claim:" comment.
"""The note's vanilla RNN in NumPy: forward pass, loss and BPTT gradients, sampling.

Conventions are the note's: a hidden state is a column h_t (H x 1), scores are
S_t = W_hy h_t (V x 1), and a batch is a set of columns (H x B).  Parameters:

    We    (V, E)  row i is the embedding X of token i (X_t = We[w_t])
    W_xh  (H, E)
    W_hh  (H, H)
    W_hy  (V, H)

Public API: `init_params`, `loss_and_grads`, `forward`, `sample`.  Inputs are
integer token ids of shape (T,) (one sequence) or (T, B) (B sequences, one per
column).  float32 and float64 parameters are supported; results keep their dtype.

The loss is sum over t and over the batch of -log p_t(y_t).  Only the time
recurrence is sequential: W_xh X_t is computed for all steps in one product,
the output layer (scores, softmax, dS, dW_hy, W_hy^T dS) runs on chunks of
steps at once, and dW_xh, dW_hh, dX are one product each over all steps
(gradients add over time, comment1).

Layouts (exact: only where numbers are stored changes, never what is computed).
`loss_and_grads` holds a chunk's scores transposed, S^T (one row per column of
S, rows contiguous), so the softmax reduces along contiguous rows; dS is the
view (dS^T)^T, which BLAS reads transposed at full speed.  grads["W_hy"] is
stored as (dW_hy^T)^T (a Fortran-ordered (V, H) array) because that product
runs faster than the C-ordered one.  The chunk's score buffer is kept between
calls (one per thread and dtype) so that each call does not fault in fresh pages.

The kernels (`hidden_states`, `output_grads`, `hidden_grads`, `weight_grads`)
use only @, *, +, .T and a `sigmoid` hook, so they also run on NumPy object
arrays of SymPy symbols; the tests differentiate them symbolically that way.

Claims this module is printed from (all proved by the verifier):
    embedding                 Forward: X_t = We[w_t]
    forward-h                 Forward: h_t
    forward-S                 Forward: S_t
    dS                        dS_t = p_t - 1_{y=y_t}
    stacking                  Stacking: [W_xh W_hh] [X_t; h_{t-1}]
    bptt-dS                   BPTT: ∂l_t/∂S_t
    bptt-dW_hy                BPTT: ∂l_t/∂W_hy (10)
    bptt-dh                   BPTT: ∂l_t/∂h_t (9)
    bptt-dW_xh                BPTT: ∂l_t/∂W_xh (15)
    bptt-dW_hh-corrected      BPTT: ∂l_t/∂W_hh (16) (corrected)
    bptt-dX                   BPTT: ∂l_t/∂X_t
    bptt-dh_prev-corrected    BPTT: ∂l_t/∂h_{t-1} (corrected)
    bptt-algorithm-corrected  BPTT algorithm, whole (corrected)
    comment1                  Comment 1: gradients add over time
    comment2                  Comment 2: σ' = σ − σ²
    sigma-derivative          Tool lemma: the opaque σ differentiates as σ(1 − σ)
"""
import threading
from collections.abc import Mapping

import numpy as np

__all__ = ["forward", "init_params", "loss_and_grads", "sample"]

PARAM_NAMES = ("We", "W_xh", "W_hh", "W_hy")
# The output layer handles at most this many scores (V x columns) at once, and
# at most CHUNK_STEPS steps: V x T x B is never materialised.
CHUNK_STEPS = 64
CHUNK_ELEMENTS = 1 << 24
# The softmax runs on this many rows of S^T at a time: a block stays in cache
# through its passes (max, subtract, exp, sum, scale).
SOFTMAX_ROWS = 32
# Rows whose scores are all known to lie in [-SHIFT_FREE, SHIFT_FREE] skip the max shift:
# e^{+-30} neither overflows nor underflows in float32 or float64, and the softmax and
# log-sum-exp are the same for any shift (here 0).
SHIFT_FREE = 30


# ---------------------------------------------------------------- numerics

def _sigmoid(a):
    """sigma(a) = 1 / (1 + e^{-a}), computed from e^{-|a|} <= 1 so that nothing overflows."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1, e) / (1 + e)  # claim: forward-h


def _softmax_columns(S):
    """p_t(y) = e^{S_t(y)} / sum_{y'} e^{S_t(y')} for every column, shifted by the column max."""
    e = np.exp(S - S.max(axis=0))
    return e / e.sum(axis=0)  # claim: dS


def _loss_and_dS_rows(St, y, bound):
    """St (n, V) holds S^T (row j is the scores of column j); y (n,) the targets;
    bound (n,) a bound on |S_j(v)| over v (inf when unknown).

    Overwrites St with dS^T (row j becomes p_j - 1_{y=y_j}) and returns the sum over
    the rows of -log p_j(y_j) = log sum_v e^{S_j(v) - m_j} + m_j - S_j(y_j), for any shift
    m_j: the row max, or 0 when the bound says every |S_j(v)| <= SHIFT_FREE (two passes
    fewer).  The rows are done SOFTMAX_ROWS at a time, in place, so each block stays in cache.
    """
    n = St.shape[0]
    rows = np.arange(n)
    s_y = St[rows, y]
    m = np.empty((n, 1), dtype=St.dtype)
    Z = np.empty((n, 1), dtype=St.dtype)
    for r0 in range(0, n, SOFTMAX_ROWS):
        r1 = min(r0 + SOFTMAX_ROWS, n)
        block, m_b, Z_b = St[r0:r1], m[r0:r1], Z[r0:r1]
        if bound[r0:r1].max() <= SHIFT_FREE:
            m_b[...] = 0
        else:
            np.max(block, axis=1, keepdims=True, out=m_b)
            np.subtract(block, m_b, out=block)
        np.exp(block, out=block)
        np.add.reduce(block, axis=1, keepdims=True, out=Z_b)
        np.multiply(block, 1 / Z_b, out=block)  # claim: dS
    St[rows, y] -= 1  # claim: dS, bptt-dS
    return (np.log(Z[:, 0]) + m[:, 0] - s_y).sum()  # claim: dS


_scratch = threading.local()


def _score_buffer(size, dtype):
    """A flat buffer of `size` elements, reused by the calls of one thread (no fresh pages per call)."""
    buffers = _scratch.__dict__.setdefault("buffers", {})
    if dtype not in buffers or buffers[dtype].size < size:
        buffers.pop(dtype, None)              # the old one is freed before the larger one is allocated
        buffers[dtype] = np.empty(size, dtype=dtype)
    return buffers[dtype][:size]


# ---------------------------------------------------------------- kernels (printed from the claims)

def hidden_states(W_xh, W_hh, X_all, h0, sigmoid=_sigmoid):
    """The forward recurrence.  X_all (E, T*B): column block t is X_{t+1}; h0 (H, B).

    Returns Hs (H, (T+1)*B) whose column block t is h_t (block 0 is h0).
    """
    B = h0.shape[1]
    T = X_all.shape[1] // B
    A_x = W_xh @ X_all  # claim: forward-h, embedding
    del X_all   # the caller passes a fresh gather: freed here, not kept through the recurrence
    Hs = np.empty((h0.shape[0], (T + 1) * B), dtype=np.result_type(A_x, h0))
    Hs[:, :B] = h0
    for t in range(T):
        a_x = A_x[:, t * B:(t + 1) * B]
        h_prev = Hs[:, t * B:(t + 1) * B]
        Hs[:, (t + 1) * B:(t + 2) * B] = sigmoid(W_hh @ h_prev + a_x)  # claim: forward-h
    return Hs


def output_grads(W_hy, H_c, dS, dW_hy_c, G, c0, c1):
    """For the columns c0:c1 (all their steps at once): dW_hy's share into dW_hy_c, W_hy^T dS into G[:, c0:c1]."""
    np.matmul(dS, H_c.T, out=dW_hy_c)  # claim: bptt-dW_hy, comment1
    np.matmul(W_hy.T, dS, out=G[:, c0:c1])  # claim: bptt-dh


def hidden_grads(W_hh, Hs, G, B):
    """The backward recurrence, t = T..1.  G (H, T*B) holds W_hy^T dS_t for every step.

    G is overwritten, block by block, with dZ_t = sigma'(a_t) o dh_t and returned
    as dZ_all, together with dh_0 = d loss / d h_0.
    """
    T = G.shape[1] // B
    dh_next = np.zeros_like(G[:, :B])
    for t in reversed(range(T)):  # claim: bptt-algorithm-corrected
        cols = slice(t * B, (t + 1) * B)
        g = G[:, cols]
        h = Hs[:, (t + 1) * B:(t + 2) * B]
        dh = g + dh_next  # claim: bptt-dh
        dZ_t = G[:, cols] = h * (1 - h) * dh  # claim: forward-h, stacking, comment2, sigma-derivative
        dh_next = W_hh.T @ dZ_t  # claim: bptt-dh_prev-corrected
    return G, dh_next


def weight_grads(W_xh, dZ_all, X_all, H_prev):
    """dW_xh, dW_hh and dX for all steps at once (columns of every step side by side).

    dX is returned as the view (dX^T)^T: dX^T (one row per column, rows contiguous) is
    what the scatter-add onto the rows of dWe reads.
    """
    dW_xh = dZ_all @ X_all.T  # claim: bptt-dW_xh, comment1
    del X_all   # dW_xh first, so X_all is freed (when the caller kept no reference) before dX
    dW_hh = dZ_all @ H_prev.T  # claim: bptt-dW_hh-corrected, comment1
    dXt = dZ_all.T @ W_xh  # claim: bptt-dX
    return dW_xh, dW_hh, dXt.T


# ---------------------------------------------------------------- validation

def _check_params(params):
    """The four arrays, C-contiguous, after checking keys, dtypes, shapes and finiteness."""
    if not isinstance(params, Mapping):
        # ValueError, not TypeError: every bad argument of the public API raises ValueError.
        raise ValueError(f"params: expected a dict with keys {PARAM_NAMES}, got {type(params).__name__}")  # noqa: TRY004
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"params: missing key(s) {missing}; expected {PARAM_NAMES}")
    for k in PARAM_NAMES:
        a = params[k]
        if not isinstance(a, np.ndarray):
            raise ValueError(f"params[{k!r}]: expected a NumPy array, got {type(a).__name__}")  # noqa: TRY004
        if a.dtype not in (np.float32, np.float64):
            raise ValueError(f"params[{k!r}]: dtype must be float32 or float64, got {a.dtype}")
        if a.ndim != 2:
            raise ValueError(f"params[{k!r}]: expected a 2-D array, got shape {a.shape}")
    dtypes = sorted({str(params[k].dtype) for k in PARAM_NAMES})
    if len(dtypes) > 1:
        found = ", ".join(f"{k}: {params[k].dtype}" for k in PARAM_NAMES)
        raise ValueError(f"params: mixed dtypes ({found}); use one of float32, float64 for all")
    V, E = params["We"].shape
    H = params["W_xh"].shape[0]
    expected = {"We": (V, E), "W_xh": (H, E), "W_hh": (H, H), "W_hy": (V, H)}
    for k in PARAM_NAMES:
        if params[k].shape != expected[k]:
            raise ValueError(f"params[{k!r}]: shape {params[k].shape}, expected {expected[k]} "
                             f"(V={V}, E={E} from We, H={H} from W_xh)")
        if params[k].size == 0:
            raise ValueError(f"params[{k!r}]: empty array of shape {params[k].shape}")
    for k in PARAM_NAMES:
        # A finite sum means every element is finite (nan and inf propagate); only when
        # it is not (also when finite values overflow the sum) is every element tested.
        with np.errstate(over="ignore", invalid="ignore"):
            total = params[k].sum()
        if not np.isfinite(total) and not np.isfinite(params[k]).all():
            raise ValueError(f"params[{k!r}]: contains non-finite values (nan or inf)")
    return {k: np.ascontiguousarray(params[k]) for k in PARAM_NAMES}


def _check_tokens(name, tokens, V):
    """Integer token ids of shape (T,) or (T, B), T >= 1 and B >= 1, each in [0, V)."""
    a = np.asarray(tokens)
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name}: token ids must be integers, got dtype {a.dtype}")
    if a.ndim not in (1, 2):
        raise ValueError(f"{name}: expected shape (T,) or (T, B), got {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: no tokens (shape {a.shape}); need T >= 1 and B >= 1")
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= V:
        raise ValueError(f"{name}: token ids must be in [0, {V}) (the vocabulary size), got values in [{lo}, {hi}]")
    return a.astype(np.intp, copy=False)


def _check_h0(h0, H, B, one_sequence, dtype):
    """h0 as an (H, B) array: zeros when None, else of shape (H,) or (H, B) matching the inputs."""
    if h0 is None:
        return np.zeros((H, B), dtype=dtype)
    a = np.asarray(h0)
    expected = (H,) if one_sequence else (H, B)
    if a.shape != expected:
        raise ValueError(f"h0: expected shape {expected} (H={H}{'' if one_sequence else f', B={B}'}), got {a.shape}")
    if a.dtype != dtype:
        raise ValueError(f"h0: dtype {a.dtype} differs from the parameters' dtype {dtype} (mixed dtypes)")
    if not np.isfinite(a).all():
        raise ValueError("h0: contains non-finite values (nan or inf)")
    return np.ascontiguousarray(a.reshape(H, B))


def _prepare(params, inputs, h0):
    p = _check_params(params)
    V, H = p["W_hy"].shape
    tokens = _check_tokens("inputs", inputs, V)
    one_sequence = tokens.ndim == 1
    tokens = tokens.reshape(tokens.shape[0], -1)
    h0 = _check_h0(h0, H, tokens.shape[1], one_sequence, p["We"].dtype)
    return p, tokens, h0, one_sequence


def _chunk_columns(V, T, B):
    """Columns (whole steps) of the output layer handled at once."""
    steps = max(1, min(T, CHUNK_STEPS, CHUNK_ELEMENTS // (V * B)))
    return steps * B


def _embed(We, tokens):
    """X_all (E, T*B): the embeddings of every step's tokens, column block t = X_{t+1}."""
    return We[tokens.reshape(-1)].T  # claim: embedding


# ---------------------------------------------------------------- public API

def init_params(vocab_size, hidden_size=256, embed_size=None, seed=0, dtype=np.float64):
    """Small random parameters: normal(0, 1) / sqrt(fan-in) for the weights, normal(0, 0.01) for We."""
    for name, value in (("vocab_size", vocab_size), ("hidden_size", hidden_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    embed_size = hidden_size if embed_size is None else embed_size
    if isinstance(embed_size, bool) or not isinstance(embed_size, (int, np.integer)) or embed_size < 1:
        raise ValueError(f"embed_size: expected a positive integer or None, got {embed_size!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
    V, H, E = int(vocab_size), int(hidden_size), int(embed_size)
    rng = np.random.default_rng(seed)
    return {
        "We": (rng.standard_normal((V, E)) * 0.01).astype(dtype),
        "W_xh": (rng.standard_normal((H, E)) / np.sqrt(E)).astype(dtype),
        "W_hh": (rng.standard_normal((H, H)) / np.sqrt(H)).astype(dtype),
        "W_hy": (rng.standard_normal((V, H)) / np.sqrt(H)).astype(dtype),
    }


def loss_and_grads(params, inputs, targets, h0=None):
    """(loss, grads, h_last) for one sequence (T,) or a batch of sequences (T, B).

    loss = sum over t and the batch of -log p_t(y_t); grads has the keys of
    params plus "h0" (d loss / d h0, in h0's shape); h_last = h_T in h0's shape
    ((H,) for 1-D inputs, (H, B) for 2-D inputs when h0 is None).
    """
    p, tokens, h0c, one_sequence = _prepare(params, inputs, h0)
    V = p["We"].shape[0]
    y = _check_tokens("targets", targets, V)
    if y.shape != np.shape(inputs):
        raise ValueError(f"targets: shape {y.shape} does not match the shape of inputs {np.shape(inputs)} "
                         "(one target per input token: same T and B)")
    W_xh, W_hh, W_hy, We = p["W_xh"], p["W_hh"], p["W_hy"], p["We"]
    T, B = tokens.shape
    H = W_hh.shape[0]
    y = y.reshape(-1)
    dtype = We.dtype
    with np.errstate(under="ignore"):   # probabilities and sigma' may underflow to 0: harmless
        # X_all is gathered here and again for weight_grads rather than kept: one (E, T*B)
        # array less alive through the output layer and the backward recurrence.
        Hs = hidden_states(W_xh, W_hh, _embed(We, tokens), h0c)
        N = T * B
        chunk = _chunk_columns(V, T, B)
        # G first holds W_hy^T dS_t for every step, then (in hidden_grads) dZ_t.  In float32
        # the product W_hy^T dS runs faster into (G^T)^T (G stored step-major); in float64
        # into G itself.  Either way G is the same (H, T*B) array of numbers.
        G = np.empty((N, H), dtype=dtype).T if dtype == np.float32 else np.empty((H, N), dtype=dtype)
        # dW_hy stored as (dW_hy^T)^T: dS H_c^T runs faster into it (see the module docstring).
        dW_hy = np.empty((H, V), dtype=dtype).T    # written by the first chunk, then accumulated
        spare = np.empty((H, V), dtype=dtype).T if chunk < N else None
        buffer = _score_buffer(min(chunk, N) * V, dtype)
        # |S_j(v)| = |W_hy[v] . h_j| <= max_v |W_hy[v]| |h_j| (Cauchy-Schwarz): lets the softmax
        # skip the max shift on rows that cannot overflow.  inf (max shift) if it overflows.
        with np.errstate(over="ignore", invalid="ignore"):
            w_max = np.sqrt(np.einsum("vh,vh->v", W_hy, W_hy).max())
        loss = dtype.type(0)
        for c0 in range(0, N, chunk):
            c1 = min(c0 + chunk, N)
            n = c1 - c0
            H_c = Hs[:, B + c0:B + c1]
            # S^T = (W_hy H_c)^T, one row per column: the softmax reduces along contiguous rows.
            St = buffer[:n * V].reshape(n, V)
            np.matmul(H_c.T, W_hy.T, out=St)  # claim: forward-S
            with np.errstate(over="ignore", invalid="ignore"):
                bound = w_max * np.sqrt(np.einsum("hj,hj->j", H_c, H_c))
            loss += _loss_and_dS_rows(St, y[c0:c1], bound)
            dS = St.T       # dS = (dS^T)^T: a view, read transposed by the products
            dW_hy_c = dW_hy if c0 == 0 else spare
            output_grads(W_hy, H_c, dS, dW_hy_c, G, c0, c1)
            if c0:
                dW_hy += dW_hy_c  # claim: comment1
        del buffer, spare, St, dS
        dZ_all, dh0 = hidden_grads(W_hh, Hs, G, B)
        del G
        h_last = np.ascontiguousarray(Hs[:, N:])
        dW_xh, dW_hh, dX = weight_grads(W_xh, dZ_all, _embed(We, tokens), Hs[:, :N])
        del dZ_all, Hs
        # X_t = We^T 1_{w_t}: dWe = sum_t 1_{w_t} dX_t^T, a scatter-add of dX's columns onto rows.
        # Each word's first column (in step order) is assigned, the repeats are then added in
        # step order: the same sums, in the same order, as adding every column.
        dXt = dX.T
        flat = tokens.reshape(-1)
        order = np.argsort(flat, kind="stable")
        words = flat[order]
        first = np.ones(N, dtype=bool)
        first[1:] = words[1:] != words[:-1]
        dWe = np.zeros(We.shape, dtype=dtype)   # zero pages: only the rows written are touched
        dWe[words[first]] = dXt[order[first]]  # claim: embedding
        repeat = ~first
        if repeat.any():
            np.add.at(dWe, words[repeat], dXt[order[repeat]])  # claim: embedding, comment1
    shape = (-1,) if one_sequence else (-1, B)
    grads = {"We": dWe, "W_xh": dW_xh, "W_hh": dW_hh, "W_hy": dW_hy, "h0": dh0.reshape(shape)}
    return loss, grads, h_last.reshape(shape)


def forward(params, inputs, h0=None):
    """(probabilities, hidden states) for every step.

    For inputs of shape (T,): probabilities (T, V) (row t is p_{t+1}) and hidden
    states (T, H).  For inputs (T, B): probabilities (T, V, B) and hidden states
    (T, H, B) -- step first, then the note's columns.  This materialises
    T x V x B probabilities; `loss_and_grads` never does.
    """
    p, tokens, h0c, one_sequence = _prepare(params, inputs, h0)
    W_xh, W_hh, W_hy, We = p["W_xh"], p["W_hh"], p["W_hy"], p["We"]
    T, B = tokens.shape
    V, H = W_hy.shape
    with np.errstate(under="ignore"):
        Hs = hidden_states(W_xh, W_hh, _embed(We, tokens), h0c)
        P = np.empty((T, V, B), dtype=We.dtype)
        chunk = _chunk_columns(V, T, B)
        for c0 in range(0, T * B, chunk):
            c1 = min(c0 + chunk, T * B)
            H_c = Hs[:, B + c0:B + c1]
            S = W_hy @ H_c  # claim: forward-S
            P[c0 // B:c1 // B] = _softmax_columns(S).reshape(V, -1, B).transpose(1, 0, 2)
    states = Hs[:, B:].reshape(H, T, B).transpose(1, 0, 2)
    if one_sequence:
        return P[:, :, 0].copy(), states[:, :, 0].copy()
    return P, np.ascontiguousarray(states)


def sample(params, first_token, n, h0=None, seed=None):
    """n token ids drawn one after the other from p_t, starting by feeding first_token.

    h0 has shape (H,) (zeros when None); seed seeds np.random.default_rng.
    """
    p = _check_params(params)
    W_xh, W_hh, W_hy, We = p["W_xh"], p["W_hh"], p["W_hy"], p["We"]
    V, H = W_hy.shape
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n: expected a non-negative integer, got {n!r}")
    if isinstance(first_token, bool) or not isinstance(first_token, (int, np.integer)):
        raise ValueError(f"first_token: expected an integer token id, got {first_token!r}")  # noqa: TRY004
    if not 0 <= first_token < V:
        raise ValueError(f"first_token: token id must be in [0, {V}), got {first_token}")
    h = _check_h0(h0, H, 1, True, We.dtype)
    rng = np.random.default_rng(seed)
    out = np.empty(int(n), dtype=np.int64)
    token = int(first_token)
    with np.errstate(under="ignore"):
        for i in range(int(n)):
            H_c = hidden_states(W_xh, W_hh, _embed(We, np.array([[token]])), h)[:, 1:]
            S = W_hy @ H_c  # claim: forward-S
            probs = _softmax_columns(S.astype(np.float64))[:, 0]
            token = int(rng.choice(V, p=probs / probs.sum()))
            out[i] = token
            h = H_c
    return out
