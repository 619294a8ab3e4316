"""Speed of the generated NumPy modules (LSTM, GRU) against PyTorch eager and JAX jit, on the CPU, in one run.

The modules are the ones `verify` writes for examples/lstm.md and tests/derivations/gru.md (they import
only NumPy); PyTorch and JAX compute the same loss from the same definitions, written out below, and
their gradients are checked against the module's before anything is timed.  Sizes: B = 32, T = 32,
E = H = 256 (E is the input size, D in the files), V = 1000; float32 and float64.

PyTorch and JAX are not test dependencies: install them in a venv of their own (the CPU wheel of torch;
plain `pip install torch` pulls a CUDA build of several GB), with NumPy:

    python -m venv .venv-bench                     # ignored by git
    .venv-bench/bin/pip install numpy torch==2.13.0 jax jaxlib
    bash scripts/verify.sh examples/lstm.md && bash scripts/verify.sh tests/derivations/gru.md
    .venv-bench/bin/python benchmarks/codegen_speed.py   # [--lstm PATH] [--gru PATH] [--repeat N]

A framework that is not installed is skipped with a note.  Each time is the median of --repeat calls of
loss and all gradients, after warm-up (and, for JAX, compilation).  Every library runs on one thread
(BENCH_THREADS=n for more): on a shared machine a BLAS that spawns threads per product measures the
other processes' load, not the code.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path

THREADS = os.environ.get("BENCH_THREADS", "1")
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, THREADS)
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
                      if THREADS == "1" else "")

import numpy as np  # after the thread settings, which BLAS reads when it loads

ROOT = Path(__file__).resolve().parent.parent
B, T, E, H, V = 32, 32, 256, 256, 1000
GATES = {"lstm": ("f", "i", "o", "g"), "gru": ("z", "r", "h")}


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data(cell: str, dtype, seed=0):
    """params, inputs in the modules' names and layouts (columns per example, steps first)."""
    rng = np.random.default_rng(seed)
    params = {}
    for gate in GATES[cell]:
        params[f"W_{gate}"] = rng.standard_normal((H, E)) / np.sqrt(E)
        params[f"U_{gate}"] = rng.standard_normal((H, H)) / np.sqrt(H)
        params[f"b_{gate}"] = np.zeros((H, 1))
    params["W_y"] = rng.standard_normal((V, H)) / np.sqrt(H)
    params["b_y"] = np.zeros((V, 1))
    inputs = {"x": rng.standard_normal((T, E, B)), "h_0": np.zeros((H, B))}
    if cell == "lstm":
        inputs["c_0"] = np.zeros((H, B))
    params = {n: a.astype(dtype) for n, a in params.items()}
    inputs = {n: a.astype(dtype) for n, a in inputs.items()}
    inputs["k"] = rng.integers(0, V, size=(T, B))
    return params, inputs


def median_time(fn, repeat: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---------------------------------------------------------------- the same cells, in PyTorch and JAX

def cell_step(xp, cell, p, x, state, sigmoid):
    """One step of the file's definitions (examples/lstm.md, tests/derivations/gru.md), columns per example."""
    if cell == "lstm":
        h, c = state
        f = sigmoid(p["W_f"] @ x + p["U_f"] @ h + p["b_f"])
        i = sigmoid(p["W_i"] @ x + p["U_i"] @ h + p["b_i"])
        o = sigmoid(p["W_o"] @ x + p["U_o"] @ h + p["b_o"])
        g = xp.tanh(p["W_g"] @ x + p["U_g"] @ h + p["b_g"])
        c = f * c + i * g
        h = o * xp.tanh(c)
        return h, (h, c)
    (h,) = state
    z = sigmoid(p["W_z"] @ x + p["U_z"] @ h + p["b_z"])
    r = sigmoid(p["W_r"] @ x + p["U_r"] @ h + p["b_r"])
    h_tilde = xp.tanh(p["W_h"] @ x + p["U_h"] @ (r * h) + p["b_h"])
    h = (1 - z) * h + z * h_tilde
    return h, (h,)


def torch_runner(cell, params, inputs, torch):
    p = {n: torch.tensor(a, requires_grad=True) for n, a in params.items()}
    x = {n: torch.tensor(a, requires_grad=n != "k") for n, a in inputs.items()}

    def run():
        for t in (*p.values(), *(v for n, v in x.items() if n != "k")):
            t.grad = None
        state = (x["h_0"], x["c_0"]) if cell == "lstm" else (x["h_0"],)
        hs = []
        for t in range(T):
            h, state = cell_step(torch, cell, p, x["x"][t], state, torch.sigmoid)
            hs.append(h)
        y = p["W_y"] @ torch.stack(hs) + p["b_y"]
        logp = torch.log_softmax(y, dim=1)
        loss = -logp.gather(1, x["k"][:, None, :]).sum()
        loss.backward()
        return loss.item(), {n: v.grad.numpy() for n, v in {**p, **x}.items() if n != "k"}
    return run


def jax_runner(cell, params, inputs, jax):
    jnp = jax.numpy

    def loss_fn(p, x, k):
        state = (x["h_0"], x["c_0"]) if cell == "lstm" else (x["h_0"],)

        def step(state, xt):
            h, state = cell_step(jnp, cell, p, xt, state, jax.nn.sigmoid)
            return state, h
        _, hs = jax.lax.scan(step, state, x["x"])
        y = p["W_y"] @ hs + p["b_y"]
        logp = jax.nn.log_softmax(y, axis=1)
        return -jnp.take_along_axis(logp, k[:, None, :], axis=1).sum()
    fn = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1)))
    p = {n: jnp.asarray(a) for n, a in params.items()}
    floats = {n: jnp.asarray(a) for n, a in inputs.items() if n != "k"}
    k = jnp.asarray(inputs["k"])

    def run():
        loss, (gp, gx) = fn(p, floats, k)
        jax.block_until_ready(gp)
        return float(loss), {**{n: np.asarray(v) for n, v in gp.items()}, **{n: np.asarray(v) for n, v in gx.items()}}
    return run


def agree(name, ref, got, dtype) -> str:
    tol = 1e-9 if dtype == np.float64 else 2e-3
    worst = max(np.max(np.abs(ref[1][n] - got[1][n])) / max(np.max(np.abs(ref[1][n])), 1e-30) for n in ref[1])
    if worst > tol or abs(ref[0] - got[0]) > tol * abs(ref[0]):
        raise SystemExit(f"{name}: gradients differ from the generated module's (relative {worst:.2e})")
    return f"{worst:.1e}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lstm", type=Path, default=ROOT / "reports" / "out" / "lstm" / "lstm.py")
    ap.add_argument("--gru", type=Path, default=ROOT / "reports" / "out" / "gru" / "gru.py")
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args(argv)
    frameworks = {}
    try:
        import torch
        torch.set_num_threads(int(THREADS))
        frameworks["torch eager"] = lambda cell, p, i: torch_runner(cell, p, i, torch)
    except ImportError:
        print("PyTorch is not installed: skipped (see the docstring for the venv)")
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
        frameworks["jax jit"] = lambda cell, p, i: jax_runner(cell, p, i, jax)
    except ImportError:
        print("JAX is not installed: skipped (see the docstring for the venv)")
    print(f"B = {B}, T = {T}, E = H = {H}, V = {V}; NumPy {np.__version__}, {THREADS} thread(s) of "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
          f"median of {args.repeat} calls of loss and every gradient")
    rows = []
    for cell, path in (("lstm", args.lstm), ("gru", args.gru)):
        if not path.is_file():
            print(f"{path} is missing: run `bash scripts/verify.sh {'examples/lstm.md' if cell == 'lstm' else 'tests/derivations/gru.md'}` first")
            continue
        module = load(path)
        for dtype in (np.float32, np.float64):
            params, inputs = data(cell, dtype)
            ours = median_time(lambda m=module, p=params, i=inputs: m.loss_and_grads(p, i), args.repeat)
            mine = module.loss_and_grads(params, inputs)
            mine = (float(mine[0]), mine[1])
            line = f"{cell:<5} {np.dtype(dtype).name:<8} generated {ours * 1e3:8.1f} ms"
            for name, make in frameworks.items():
                run = make(cell, params, inputs)
                err = agree(name, mine, run(), dtype)
                theirs = median_time(run, args.repeat)
                rows.append((cell, dtype, name, theirs / ours))
                line += f" | {name} {theirs * 1e3:8.1f} ms, ratio {theirs / ours:5.2f}x (grads agree to {err})"
            print(line)
    targets = {"torch eager": 1.2, "jax jit": 1.0}
    for cell, dtype, name, ratio in rows:
        if ratio >= targets[name]:
            continue
        total, big, jax_big = products_ms(cell, dtype, frameworks.get("jax jit") and jax)
        print(f"below target: {cell} {np.dtype(dtype).name} vs {name}: {ratio:.2f}x (target {targets[name]}x). "
              f"The cell's matrix products alone take {total:.0f} ms at NumPy's product rate here (its BLAS, "
              f"{THREADS} thread(s)), {big:.0f} ms of them in the products over every step at once"
              + (f", which take {jax_big:.0f} ms at JAX's rate (XLA's own kernels): a module that imports only "
                 "NumPy runs its products at NumPy's rate" if jax_big else "")
              + "; the rest is NumPy running one element-wise operation at a time (a pass over memory each, "
              "where a compiler fuses a step's element-wise work).")


def products_ms(cell: str, dtype, jax=None) -> tuple:
    """(all, big, big at JAX's rate): the time of the cell's matrix products (forward, and two per product in
    the backward pass) at the rates NumPy reaches on the two kinds the modules run: every step at once
    ((T*B, H) @ (H, V), `big`) and one step and gate ((B, H) @ (H, H)); and the big ones at the rate JAX
    reaches on the same product, when JAX is given (its small products pay a dispatch each when timed
    alone, which its compiled loop does not, so they are not compared)."""
    gates = len(GATES[cell])
    big = 3 * 2 * T * B * (gates * H * E + V * H)
    small = 3 * 2 * T * B * gates * H * H

    def rate(shape_a, shape_b, matmul, array):
        a, b = array(np.ones(shape_a, dtype)), array(np.ones(shape_b, dtype))
        return 2 * shape_a[0] * shape_a[1] * shape_b[1] / median_time(lambda: matmul(a, b), 20)

    numpy_big = big / rate((T * B, H), (H, V), lambda a, b: a @ b, lambda x: x) * 1e3
    numpy_small = small / rate((B, H), (H, H), lambda a, b: a @ b, lambda x: x) * 1e3
    jax_big = None
    if jax is not None:
        product = jax.jit(lambda a, b: a @ b)
        jax_big = big / rate((T * B, H), (H, V), lambda a, b: product(a, b).block_until_ready(),
                             jax.numpy.asarray) * 1e3
    return numpy_big + numpy_small, numpy_big, jax_big


if __name__ == "__main__":
    main()
