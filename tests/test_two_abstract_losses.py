"""Two abstract losses in one context (ℓ and m, declared, not defined), each with gradients given by name: a
gradient given of one (ez_t := ∂m/∂z_t) says nothing of the other.  The engines once gave every abstract loss
every given gradient, so that ∂ℓ/∂Z = Σ_t ez_t h_t^T and ∂m/∂y_t = dy_t were proved, and the true
dh_t recurrence refuted (a fresh-eyes trial found it).

The truth is computed here by finite differences, with losses that have the given gradients: ℓ = Σ_t Σ sin(y_t)
(dy_t = cos y_t) and m = Σ_t ‖z_t‖²/2 (ez_t = z_t); a line is true when it holds for them (a false line
fails for them, so it is false for arbitrary losses too)."""
import numpy as np
import pytest

from derivations.engines import explicit, recurrence
from derivations.latex.reader import parse_derivation

HEAD = r"""# two abstract losses

$$ W \in \mathbb{R}^{H \times D}, \quad U \in \mathbb{R}^{H \times H}, \quad V \in \mathbb{R}^{K \times H}, \quad Z \in \mathbb{R}^{K \times H}, \quad x_t \in \mathbb{R}^{D}, \quad h_0 \in \mathbb{R}^{H}, \quad \ell \in \mathbb{R}, \quad m \in \mathbb{R} $$

$$ h_t := \tanh(W x_t + U h_{t-1}), \quad y_t := V h_t, \quad z_t := Z h_t $$

$$ dy_t \in \mathbb{R}^{K}, \quad dy_t := \frac{\partial \ell}{\partial y_t}, \quad ez_t \in \mathbb{R}^{K}, \quad ez_t := \frac{\partial m}{\partial z_t} $$

$$ dh_t := \frac{\partial \ell}{\partial h_t} $$
"""
REC = r"U^{\top} \left( (1 - h_{t+1}^2) \circ dh_{t+1} \right)"
LINES = {
    "l-Z": r"\frac{\partial \ell}{\partial Z} = \sum_{t=1}^{T} ez_t h_t^{\top}",
    "m-V": r"\frac{\partial m}{\partial V} = \sum_{t=1}^{T} dy_t h_t^{\top}",
    "l-V": r"\frac{\partial \ell}{\partial V} = \sum_{t=1}^{T} dy_t h_t^{\top}",
    "dh": r"dh_t = V^{\top} dy_t + " + REC,
    "dh-with-m": r"dh_t = V^{\top} dy_t + Z^{\top} ez_t + " + REC,
    "m-y": r"\frac{\partial m}{\partial y_t} = dy_t",
}
H, D, K, T = 3, 2, 2, 3


def _model(rng):
    p = {"W": rng.normal(size=(H, D)), "U": rng.normal(size=(H, H)), "V": rng.normal(size=(K, H)),
         "Z": rng.normal(size=(K, H))}
    x, h0 = rng.normal(size=(T + 1, D)), rng.normal(size=H)

    def forward(p, shift=None):
        h, y, z = [h0], [None], [None]
        for t in range(1, T + 1):
            h.append(np.tanh(p["W"] @ x[t] + p["U"] @ h[-1]))
            if shift and shift[0] == "h" and shift[1] == t:
                h[-1] = h[-1] + shift[2]
            y.append(p["V"] @ h[-1])
            z.append(p["Z"] @ h[-1])
            if shift and shift[0] == "y" and shift[1] == t:
                y[-1] = y[-1] + shift[2]
        return h, y, z

    def losses(p, shift=None):
        _, y, z = forward(p, shift)
        return sum(np.sin(y[t]).sum() for t in range(1, T + 1)), sum((z[t] ** 2).sum() / 2 for t in range(1, T + 1))
    return p, forward, losses


def _grad(f, shape, eps=1e-6):
    g = np.zeros(shape)
    for i in np.ndindex(shape):
        e = np.zeros(shape)
        e[i] = eps
        g[i] = (f(e) - f(-e)) / (2 * eps)
    return g


def _truth(cid) -> bool:
    """Whether the line holds for ℓ = Σ sin(y_t), m = Σ ‖z_t‖²/2, at every step, by central differences."""
    p, forward, losses = _model(np.random.default_rng(3))
    h, y, z = forward(p)
    dy = {t: np.cos(y[t]) for t in range(1, T + 1)}
    ez = {t: z[t] for t in range(1, T + 1)}

    def d_weight(which, name):
        return _grad(lambda e: losses({**p, name: p[name] + e})[which], p[name].shape)

    def d_h(t):
        return _grad(lambda e: losses(p, ("h", t, e))[0], (H,)) if t <= T else np.zeros(H)
    if cid == "l-Z":
        return np.allclose(d_weight(0, "Z"), sum(np.outer(ez[t], h[t]) for t in range(1, T + 1)), atol=1e-6)
    if cid == "m-V":
        return np.allclose(d_weight(1, "V"), sum(np.outer(dy[t], h[t]) for t in range(1, T + 1)), atol=1e-6)
    if cid == "l-V":
        return np.allclose(d_weight(0, "V"), sum(np.outer(dy[t], h[t]) for t in range(1, T + 1)), atol=1e-6)
    if cid in ("dh", "dh-with-m"):
        ok = True
        for t in range(1, T + 1):
            rec = p["U"].T @ ((1 - h[t + 1] ** 2) * d_h(t + 1)) if t < T else np.zeros(H)
            rhs = p["V"].T @ dy[t] + rec + (p["Z"].T @ ez[t] if cid == "dh-with-m" else 0)
            ok &= np.allclose(d_h(t), rhs, atol=1e-6)
        return ok
    if cid == "m-y":
        return all(np.allclose(_grad(lambda e, t=t: losses(p, ("y", t, e))[1], (K,)), dy[t], atol=1e-6)
                   for t in range(1, T + 1))
    raise KeyError(cid)


@pytest.fixture(scope="module")
def ctx():
    text = HEAD + "".join(f"\n$$ {latex} \\tag{{{cid}}} $$\n" for cid, latex in LINES.items())
    return parse_derivation(text, "two_losses.md").contexts[0]


@pytest.mark.parametrize("cid", sorted(LINES))
def test_each_loss_has_only_its_own_given_gradients(ctx, cid):
    claim = next(c for c in ctx.claims if c.id == cid)
    true = _truth(cid)
    structural, concrete = recurrence.prove(ctx, claim), explicit.prove(ctx, claim)
    if true:
        assert concrete.verdict != "refuted", concrete
    else:
        assert structural is None or structural.verdict != "proved", structural
        assert concrete.verdict == "refuted", concrete


def test_the_truth_has_both_kinds():
    # the finite differences tell the lines apart (not all true, not all false)
    assert {_truth(c) for c in LINES} == {True, False}
