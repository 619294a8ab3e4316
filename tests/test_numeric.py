"""numeric/rnn.py on token ids (the generated numeric/rnn_core.py inside): gradients against finite
differences and HIPS autograd, API, numerics, bad input.

Every random generator is seeded; shapes cover square and non-square (V != H != E),
one sequence and batches (B = 1 and more), T = 1 and more.
"""
import warnings

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import numeric
import numeric.rnn
from numeric import forward, init_params, loss_and_grads, rnn, rnn_core, sample

KEYS = ("We", "W_xh", "W_hh", "W_hy")

# (V, H, E, T, B); B = None is one sequence of shape (T,)
SHAPES = [
    (4, 4, 4, 1, None),
    (7, 4, 3, 5, None),
    (6, 3, 5, 4, 1),
    (11, 5, 4, 6, 3),
    (5, 5, 5, 3, 2),
]


def make_params(V, H, E, seed, dtype=np.float64, scale=1.0):
    """Parameters big enough that every gradient is well away from zero."""
    rng = np.random.default_rng(seed)
    return {"We": rng.standard_normal((V, E)).astype(dtype),
            "W_xh": (scale * rng.standard_normal((H, E)) / np.sqrt(E)).astype(dtype),
            "W_hh": (scale * rng.standard_normal((H, H)) / np.sqrt(H)).astype(dtype),
            "W_hy": (scale * rng.standard_normal((V, H))).astype(dtype)}


def make_problem(V, H, E, T, B, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed + 1000)
    shape = (T,) if B is None else (T, B)
    inputs, targets = rng.integers(0, V, shape), rng.integers(0, V, shape)
    h0 = rng.uniform(0.1, 0.9, (H,) if B is None else (H, B)).astype(dtype)
    return make_params(V, H, E, seed, dtype), inputs, targets, h0


def rel_err(a, b):
    return np.linalg.norm(np.ravel(a) - np.ravel(b)) / max(np.linalg.norm(np.ravel(b)), 1e-300)


# ---------------------------------------------------------------- independent references

def autograd_loss(We, W_xh, W_hh, W_hy, h0, inputs, targets):
    """The note's forward pass written again, independently: lookup, sigmoid recurrence, log-softmax loss."""
    inputs, targets = np.atleast_2d(inputs.T).T, np.atleast_2d(targets.T).T      # (T, B)
    T, B = inputs.shape
    h = anp.reshape(h0, (h0.shape[0], B))
    total = 0.0
    for t in range(T):
        x = anp.transpose(We[inputs[t]])
        h = 1.0 / (1.0 + anp.exp(-(anp.dot(W_xh, x) + anp.dot(W_hh, h))))
        s = anp.dot(W_hy, h)
        m = anp.max(s, axis=0, keepdims=True)      # its gradient cancels; it only keeps exp in range
        log_p = s - m - anp.log(anp.sum(anp.exp(s - m), axis=0, keepdims=True))
        total = total - anp.sum(log_p[targets[t], np.arange(B)])
    return total


@pytest.mark.parametrize("V, H, E, T, B", [(13, 7, 5, 50, 8), (9, 6, 4, 17, None), (5, 3, 3, 1, 1), (8, 8, 8, 12, 4)])
def test_gradients_match_hips_autograd(V, H, E, T, B):
    params, inputs, targets, h0 = make_problem(V, H, E, T, B, seed=T)
    loss, grads, _ = loss_and_grads(params, inputs, targets, h0)
    args = [params[k] for k in KEYS] + [h0]
    expected_loss = autograd_loss(*args, inputs, targets)
    assert abs(loss - expected_loss) <= 1e-12 * abs(expected_loss)
    ag_grads = autograd.grad(autograd_loss, argnum=list(range(5)))(*args, inputs, targets)
    for name, expected in zip((*KEYS, "h0"), ag_grads):
        assert grads[name].shape == expected.shape, name
        assert rel_err(grads[name], expected) <= 1e-10, (name, rel_err(grads[name], expected))


@pytest.mark.parametrize("steps", [1, 3])
def test_gradients_by_chunks_of_steps_match_hips_autograd(monkeypatch, steps):
    """The output layer run on chunks of `steps` steps (the last one shorter): the same loss and gradients."""
    from numeric import rnn_core
    V, H, E, T, B = 13, 7, 5, 20, 4
    monkeypatch.setattr(rnn_core, "WHOLE_ELEMENTS", 0)
    monkeypatch.setattr(rnn_core, "CHUNK_ELEMENTS", steps * B * V)
    monkeypatch.setattr(rnn_core._kept, "arrays", {})       # none kept from an earlier call
    params, inputs, targets, h0 = make_problem(V, H, E, T, B, seed=3)
    loss, grads, _ = loss_and_grads(params, inputs, targets, h0)
    args = [params[k] for k in KEYS] + [h0]
    expected_loss = autograd_loss(*args, inputs, targets)
    assert abs(loss - expected_loss) <= 1e-12 * abs(expected_loss)
    ag_grads = autograd.grad(autograd_loss, argnum=list(range(5)))(*args, inputs, targets)
    for name, expected in zip((*KEYS, "h0"), ag_grads):
        assert rel_err(grads[name], expected) <= 1e-10, (name, rel_err(grads[name], expected))
    assert rnn_core._kept.arrays["S"].shape == (steps + 2, B, V)       # no array of every step's scores


@pytest.mark.parametrize("V, H, E, T, B", SHAPES)
def test_gradients_match_central_finite_differences(V, H, E, T, B):
    params, inputs, targets, h0 = make_problem(V, H, E, T, B, seed=7 * T + H)
    _, grads, _ = loss_and_grads(params, inputs, targets, h0)
    rng = np.random.default_rng(V * 100 + T)
    point = {**params, "h0": h0}
    eps = 1e-5

    def loss_at(values):
        return loss_and_grads({k: values[k] for k in KEYS}, inputs, targets, values["h0"])[0]

    for name in (*KEYS, "h0"):          # one random direction per argument, and one through all of them
        u = {k: rng.standard_normal(v.shape) if k == name else np.zeros_like(v) for k, v in point.items()}
        plus = loss_at({k: point[k] + eps * u[k] for k in point})
        minus = loss_at({k: point[k] - eps * u[k] for k in point})
        numeric_slope = (plus - minus) / (2 * eps)
        slope = np.sum(grads[name] * u[name])
        assert abs(slope - numeric_slope) <= 1e-7 * abs(numeric_slope), (name, slope, numeric_slope)
    u = {k: rng.standard_normal(v.shape) for k, v in point.items()}
    slope = sum(np.sum(grads[k] * u[k]) for k in point)
    numeric_slope = (loss_at({k: point[k] + eps * u[k] for k in point})
                     - loss_at({k: point[k] - eps * u[k] for k in point})) / (2 * eps)
    assert abs(slope - numeric_slope) <= 1e-7 * abs(numeric_slope)


@pytest.mark.parametrize("V, H, E, T, B", SHAPES)
def test_softmax_gradient_on_its_own(V, H, E, T, B):
    """dW_hy = sum_t (p_t - 1_{y=y_t}) h_t^T, with p_t and h_t from `forward` (claims dS, bptt-dW_hy)."""
    params, inputs, targets, h0 = make_problem(V, H, E, T, B, seed=3)
    _, grads, _ = loss_and_grads(params, inputs, targets, h0)
    P, hs = forward(params, inputs, h0)
    if B is None:
        P, hs, y = P[:, :, None], hs[:, :, None], targets[:, None]
    else:
        y = targets
    dS = P.copy()
    for t, b in np.ndindex(y.shape):
        dS[t, y[t, b], b] -= 1
    assert np.allclose(grads["W_hy"], np.einsum("tvb,thb->vh", dS, hs), rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------- API

@pytest.mark.parametrize("V, H, E, T, B", SHAPES)
def test_shapes_of_the_results(V, H, E, T, B):
    params, inputs, targets, _ = make_problem(V, H, E, T, B)
    loss, grads, h_last = loss_and_grads(params, inputs, targets)
    state_shape = (H,) if B is None else (H, B)
    assert np.ndim(loss) == 0 and loss > 0
    assert set(grads) == {*KEYS, "h0"}
    for k in KEYS:
        assert grads[k].shape == params[k].shape and grads[k].dtype == params[k].dtype
    assert grads["h0"].shape == state_shape and h_last.shape == state_shape
    P, hs = forward(params, inputs)
    assert P.shape == ((T, V) if B is None else (T, V, B))
    assert hs.shape == ((T, H) if B is None else (T, H, B))
    assert np.allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert np.array_equal(hs[-1], h_last)
    # the loss is sum over t and the batch of -log p_t(y_t)
    picked = np.take_along_axis(P, np.expand_dims(targets, 1), axis=1)
    assert np.isclose(loss, -np.log(picked).sum(), rtol=1e-12)


def test_state_carries_across_calls():
    """Splitting a sequence and passing h_last on as h0 gives the same total loss."""
    params, inputs, targets, h0 = make_problem(8, 5, 4, 9, 2, seed=11)
    whole, _, h_whole = loss_and_grads(params, inputs, targets, h0)
    first, _, h_mid = loss_and_grads(params, inputs[:4], targets[:4], h0)
    second, _, h_end = loss_and_grads(params, inputs[4:], targets[4:], h_mid)
    assert np.isclose(whole, first + second, rtol=1e-13) and np.allclose(h_whole, h_end, rtol=1e-14)


def test_batch_columns_are_independent_sequences():
    params, inputs, targets, h0 = make_problem(8, 5, 4, 6, 3, seed=2)
    loss, grads, h_last = loss_and_grads(params, inputs, targets, h0)
    parts = [loss_and_grads(params, inputs[:, b], targets[:, b], h0[:, b]) for b in range(3)]
    assert np.isclose(loss, sum(p[0] for p in parts), rtol=1e-13)
    for k in KEYS:
        assert np.allclose(grads[k], sum(p[1][k] for p in parts), rtol=1e-12, atol=1e-14)
    assert np.allclose(h_last, np.stack([p[2] for p in parts], axis=1), rtol=1e-14)


def test_init_params_shapes_seed_and_dtype():
    p = init_params(10, hidden_size=6, embed_size=4, seed=3)
    assert {k: v.shape for k, v in p.items()} == {"We": (10, 4), "W_xh": (6, 4), "W_hh": (6, 6), "W_hy": (10, 6)}
    assert all(v.dtype == np.float64 for v in p.values())
    assert all(np.array_equal(p[k], init_params(10, 6, 4, seed=3)[k]) for k in p)
    assert not np.array_equal(p["W_hh"], init_params(10, 6, 4, seed=4)["W_hh"])
    q = init_params(10, hidden_size=6, dtype=np.float32)
    assert q["We"].shape == (10, 6) and all(v.dtype == np.float32 for v in q.values())
    assert init_params(12)["W_hh"].shape == (256, 256)


def test_sample_is_seeded_and_in_range():
    params = make_params(7, 5, 3, seed=1)
    ids = sample(params, 2, 25, seed=4)
    assert ids.shape == (25,) and ids.dtype.kind == "i" and ids.min() >= 0 and ids.max() < 7
    assert np.array_equal(ids, sample(params, 2, 25, seed=4))
    assert sample(params, 0, 0, seed=1).shape == (0,)
    assert sample(params, 1, 3, h0=np.full(5, 0.5), seed=1).shape == (3,)


def test_public_surface():
    assert numeric.rnn is rnn
    assert set(rnn.__all__) == {"init_params", "loss_and_grads", "forward", "sample"}
    assert numeric.loss_and_grads is rnn.loss_and_grads


# ---------------------------------------------------------------- numerics

@pytest.mark.parametrize("V, H, E, T, B", [(7, 4, 3, 5, None), (11, 5, 4, 6, 3)])
def test_float32_in_float32_out(V, H, E, T, B):
    p64, inputs, targets, h0 = make_problem(V, H, E, T, B, seed=9)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    loss32, g32, h32 = loss_and_grads(p32, inputs, targets, h0.astype(np.float32))
    loss64, g64, _ = loss_and_grads(p64, inputs, targets, h0)
    assert np.asarray(loss32).dtype == np.float32 and h32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in g32.values())
    assert np.isclose(loss32, loss64, rtol=1e-5)
    for k in g64:
        assert rel_err(g32[k], g64[k]) < 1e-4, k
    P, hs = forward(p32, inputs)
    assert P.dtype == np.float32 and hs.dtype == np.float32
    assert loss_and_grads(p32, inputs, targets)[2].dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extreme_preactivations_and_logits_are_finite_without_warnings(dtype):
    """Pre-activations of +-1000 and logits of +-1e4: no overflow, no nan, no warning."""
    V, H, T, B = 5, 3, 4, 2
    rng = np.random.default_rng(0)
    params = {"We": np.array([[1, 0], [0, 1], [-1, 0], [0, -1], [1, 1]], dtype=dtype),
              "W_xh": np.array([[1000, 0], [0, -1000], [1000, 1000]], dtype=dtype),
              "W_hh": np.zeros((H, H), dtype=dtype),
              "W_hy": (1e4 * rng.choice([-1.0, 1.0], (V, H))).astype(dtype)}
    inputs, targets = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        loss, grads, h_last = loss_and_grads(params, inputs, targets)
        P, hs = forward(params, inputs)
        ids = sample(params, 1, 5, seed=0)
    assert np.isfinite(loss) and loss > 1e3            # confident and wrong somewhere: a large but finite loss
    assert all(np.isfinite(g).all() for g in grads.values())
    assert np.isfinite(P).all() and np.isfinite(hs).all() and np.isfinite(h_last).all()
    assert ((0 <= ids) & (ids < V)).all()
    with np.errstate(over="raise", invalid="raise", divide="raise"):    # e^{-1000} underflowing to 0 is exact enough
        assert np.array_equal(rnn_core._sigmoid(np.array([-1000.0, 0.0, 1000.0], dtype=dtype)),
                              np.array([0.0, 0.5, 1.0], dtype=dtype))


# ---------------------------------------------------------------- bad input

def _good():
    params, inputs, targets, h0 = make_problem(6, 4, 3, 5, 2, seed=1)
    return params, inputs, targets, h0


def _with(params, key, value):
    return {**params, key: value}


def _without(params, key):
    return {k: v for k, v in params.items() if k != key}


P, X, Y, H0 = _good()
BAD_CALLS = {
    "params not a dict": (lambda: loss_and_grads([P["We"]], X, Y), "params"),
    "missing key": (lambda: loss_and_grads(_without(P, "W_hh"), X, Y), "params.*W_hh"),
    "list instead of array": (lambda: loss_and_grads(_with(P, "W_hy", P["W_hy"].tolist()), X, Y), "W_hy"),
    "integer params": (lambda: loss_and_grads(_with(P, "W_xh", P["W_xh"].astype(int)), X, Y), "W_xh.*dtype"),
    "wrong shape": (lambda: loss_and_grads(_with(P, "W_hh", np.zeros((4, 3))), X, Y), "W_hh.*shape"),
    "W_hy rows != V": (lambda: loss_and_grads(_with(P, "W_hy", np.zeros((5, 4))), X, Y), "W_hy.*shape"),
    "1-D param": (lambda: loss_and_grads(_with(P, "W_xh", np.zeros(12)), X, Y), "W_xh"),
    "nan param": (lambda: loss_and_grads(_with(P, "W_hy", np.full((6, 4), np.nan)), X, Y), "W_hy.*non-finite"),
    "inf param": (lambda: loss_and_grads(_with(P, "We", np.full((6, 3), np.inf)), X, Y), "We.*non-finite"),
    "mixed dtypes": (lambda: loss_and_grads(_with(P, "W_hh", P["W_hh"].astype(np.float32)), X, Y), "params.*mixed"),
    "float tokens": (lambda: loss_and_grads(P, X.astype(float), Y), "inputs.*integer"),
    "bool tokens": (lambda: loss_and_grads(P, X > 2, Y), "inputs.*integer"),
    "token too large": (lambda: loss_and_grads(P, np.full_like(X, 6), Y), r"inputs.*\[0, 6\)"),
    "negative token": (lambda: loss_and_grads(P, np.full_like(X, -1), Y), "inputs"),
    "3-D inputs": (lambda: loss_and_grads(P, X[:, :, None], Y[:, :, None]), "inputs.*shape"),
    "empty inputs": (lambda: loss_and_grads(P, X[:0], Y[:0]), "inputs"),
    "target out of range": (lambda: loss_and_grads(P, X, np.full_like(Y, 9)), "targets"),
    "float targets": (lambda: loss_and_grads(P, X, Y + 0.5), "targets.*integer"),
    "wrong T": (lambda: loss_and_grads(P, X, Y[:-1]), "targets.*shape"),
    "wrong B": (lambda: loss_and_grads(P, X, Y[:, :1]), "targets.*shape"),
    "h0 wrong shape": (lambda: loss_and_grads(P, X, Y, H0[:, :1]), "h0.*shape"),
    "h0 1-D for a batch": (lambda: loss_and_grads(P, X, Y, H0[:, 0]), "h0.*shape"),
    "h0 dtype": (lambda: loss_and_grads(P, X, Y, H0.astype(np.float32)), "h0.*dtype"),
    "h0 nan": (lambda: loss_and_grads(P, X, Y, np.full_like(H0, np.nan)), "h0.*non-finite"),
    "forward tokens": (lambda: forward(P, X + 10), "inputs"),
    "forward h0": (lambda: forward(P, X, np.zeros(4)), "h0"),
    "sample first_token": (lambda: sample(P, 6, 3), "first_token"),
    "sample first_token float": (lambda: sample(P, 1.0, 3), "first_token"),
    "sample n": (lambda: sample(P, 1, -1), "n"),
    "sample h0": (lambda: sample(P, 1, 3, h0=np.zeros((4, 2))), "h0"),
    "sample params": (lambda: sample(_without(P, "We"), 1, 3), "params.*We"),
    "init vocab_size": (lambda: init_params(0), "vocab_size"),
    "init dtype": (lambda: init_params(5, 4, dtype=np.int32), "dtype"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_raises_value_error_naming_the_argument(case):
    call, pattern = BAD_CALLS[case]
    with pytest.raises(ValueError, match=pattern):
        call()
