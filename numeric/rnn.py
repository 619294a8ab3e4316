"""The note's vanilla RNN in NumPy on token ids: loss and BPTT gradients, forward pass, sampling.

The mathematics is numeric/rnn_core.py, generated from the note (note.md, "BPTT algorithm") by the same
generator as every derivation file's module (derivations/outputs/numpy_module.py; regenerate with
`python scripts/generate_numeric.py`): its forward pass is the note's definitions, and each gradient is
printed from the note's proved line for it (`# claim: <id> (line N)`).  This module adds what the note
does not state: token ids in place of the embeddings X_t, the initial state, argument checks, random
parameters and a sampling loop.

Conventions are the note's: a hidden state is a column h_t (H x 1), scores are
S_t = W_hy h_t (V x 1), and a batch is a set of columns (H x B).  Parameters:

    We    (V, E)  row i is the embedding X of token i (X_t = We[w_t], the note's claim "embedding")
    W_xh  (H, E)
    W_hh  (H, H)
    W_hy  (V, H)

Public API: `init_params`, `loss_and_grads`, `forward`, `sample`.  Inputs are
integer token ids of shape (T,) (one sequence) or (T, B) (B sequences, one per
column).  float32 and float64 parameters are supported; results keep their dtype.
The loss is sum over t and over the batch of -log p_t(y_t).
"""
from collections.abc import Mapping

import numpy as np

from . import rnn_core

__all__ = ["forward", "init_params", "loss_and_grads", "sample"]

PARAM_NAMES = ("We", "W_xh", "W_hh", "W_hy")


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


def _prepare(params, inputs, h0):
    p = _check_params(params)
    V, H = p["W_hy"].shape
    tokens = _check_tokens("inputs", inputs, V)
    one_sequence = tokens.ndim == 1
    tokens = tokens.reshape(tokens.shape[0], -1)
    h0 = _check_h0(h0, H, tokens.shape[1], one_sequence, p["We"].dtype)
    return p, tokens, h0, one_sequence


def _core_arrays(p, tokens, h0, targets):
    """The generated module's params and inputs: X_t = We[w_t] (claim "embedding": the row of We, as a column)."""
    X = p["We"][tokens].transpose(0, 2, 1)        # (T, E, B): step t's embeddings as columns
    return {k: p[k] for k in ("W_xh", "W_hh", "W_hy")}, {"X": X, "h_0": h0, "y": targets}


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
    core_params, core_inputs = _core_arrays(p, tokens, h0c, y.reshape(tokens.shape))
    loss, g, kept = rnn_core.loss_and_grads(core_params, core_inputs, keep=("h",))
    # X_t = We^T 1_{w_t}: dWe = sum_t 1_{w_t} dX_t^T, every step's dX column added onto its token's row.
    dX = g["X"].transpose(0, 2, 1).reshape(-1, p["We"].shape[1])
    dWe = np.zeros_like(p["We"])
    np.add.at(dWe, tokens.reshape(-1), dX)
    B = tokens.shape[1]
    shape = (-1,) if one_sequence else (-1, B)
    grads = {"We": dWe, "W_xh": g["W_xh"], "W_hh": g["W_hh"], "W_hy": g["W_hy"], "h0": g["h_0"].reshape(shape)}
    return loss, grads, np.ascontiguousarray(kept["h"][-1]).reshape(shape)


def forward(params, inputs, h0=None):
    """(probabilities, hidden states) for every step.

    For inputs of shape (T,): probabilities (T, V) (row t is p_{t+1}) and hidden
    states (T, H).  For inputs (T, B): probabilities (T, V, B) and hidden states
    (T, H, B) -- step first, then the note's columns.
    """
    p, tokens, h0c, one_sequence = _prepare(params, inputs, h0)
    # The generated forward pass also computes the loss, of targets it needs: any valid ids (0) do.
    values = rnn_core.forward(*_core_arrays(p, tokens, h0c, np.zeros_like(tokens)))
    P, states = values["P_"], values["h"]
    if one_sequence:
        return P[:, :, 0].copy(), states[:, :, 0].copy()
    return P, states


def sample(params, first_token, n, h0=None, seed=None):
    """n token ids drawn one after the other from p_t, starting by feeding first_token.

    h0 has shape (H,) (zeros when None); seed seeds np.random.default_rng.
    """
    p = _check_params(params)
    V, H = p["W_hy"].shape
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n: expected a non-negative integer, got {n!r}")
    if isinstance(first_token, bool) or not isinstance(first_token, (int, np.integer)):
        raise ValueError(f"first_token: expected an integer token id, got {first_token!r}")  # noqa: TRY004
    if not 0 <= first_token < V:
        raise ValueError(f"first_token: token id must be in [0, {V}), got {first_token}")
    h = _check_h0(h0, H, 1, True, p["We"].dtype)
    rng = np.random.default_rng(seed)
    out = np.empty(int(n), dtype=np.int64)
    token = int(first_token)
    for i in range(int(n)):
        values = rnn_core.forward(*_core_arrays(p, np.array([[token]]), h, np.zeros((1, 1), dtype=np.intp)))
        probs = values["P_"][0, :, 0].astype(np.float64)
        token = int(rng.choice(V, p=probs / probs.sum()))
        out[i] = token
        h = values["h"][0]
    return out
