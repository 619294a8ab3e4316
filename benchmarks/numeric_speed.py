"""Speed and memory of the generated `numeric.loss_and_grads`, measured against two yardsticks.

    python benchmarks/numeric_speed.py [--quick] [--skip-torch] [--repeats N] [--profile]
                                       [--before PATH] [--cpu-time]

In one run, on the same weights and the same token ids, it times forward + backward
(`loss_and_grads`) at B=32, T=32, H=E=256, V=10000 in float64 and float32 against

  (a) PyTorch CPU eager autograd on the same model (written here: embedding gather,
      a Python loop over t with sigmoid, stacked logits, cross_entropy(reduction='sum'),
      loss.backward()); the two losses and gradients are compared, so both sides are
      known to compute the same thing;
  (b) this machine's own GEMM rate: the best of several np.matmul of 2048 x 2048 in the
      same dtype (and, for information, of the model's largest product).

Flops are counted as 6 T B (H E + H H + V H): forward plus two backward products per
weight matrix. Peak memory at T=2000 (same B, H, V) is measured in a fresh subprocess per
dtype: the peak resident set of the whole child process and, in another subprocess, the
tracemalloc peak of the call (NumPy reports its array buffers to tracemalloc; BLAS work
buffers are not included). The peak RSS is read from /proc/self/status VmHWM, not from
getrusage(RUSAGE_SELF).ru_maxrss: Linux carries the parent's high-water mark into ru_maxrss
across fork + exec, so a child of this (torch-loaded) process would report at least the
parent's size; ru_maxrss is used only where /proc is missing. The child runs under an address-space
cap (--mem-cap-gb) so that an oversized run fails with MemoryError instead of pushing a
shared machine into swap.

--before PATH times another module with the same API in the same turns (an earlier numeric/rnn.py,
e.g. `git show REF:numeric/rnn.py > /tmp/rnn_before.py`; one that imports `rnn_core` needs it beside it),
so that a change is measured side by side.  --cpu-time measures CPU time (time.process_time) instead of
wall time: on a shared machine the load stretches wall times (by 2x and more) but hardly CPU times;
it is meaningful with one thread per library (--threads 1, or OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1).

Targets reported against: >= 1.5x PyTorch eager in both dtypes, >= 70% of the float64
GEMM rate, < 1 GB peak at T=2000. Wall-clock numbers are only printed, never asserted.

OpenBLAS: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE may be set on this machine (older OpenBLAS
builds needed them) and slow a current NumPy. They are printed with the BLAS kernel that
actually runs (threadpoolctl); to measure without them, unset both for that one command:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/numeric_speed.py
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# Run as a script from anywhere: the checkout's numeric package, whatever the install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FULL = {"B": 32, "T": 32, "H": 256, "V": 10000, "mem_T": 2000, "repeats": 7}
QUICK = {"B": 4, "T": 8, "H": 64, "V": 1000, "mem_T": 200, "repeats": 3}
DTYPES = (np.float64, np.float32)
GB = 1e9
TARGET_SPEEDUP, TARGET_GEMM_FRACTION, TARGET_MEMORY = 1.5, 0.70, 1 * GB


def flops(T, B, H, E, V):
    return 6 * T * B * (H * E + H * H + V * H)


CLOCK = time.perf_counter          # time.process_time with --cpu-time


def timed(fn, repeats, warmup=2):
    """(best, median) seconds of fn() after `warmup` untimed calls."""
    return interleaved({"fn": fn}, repeats, warmup)["fn"]


def interleaved(fns, repeats, warmup=2):
    """{name: (best, median) seconds}, timing the functions round-robin.

    On a shared machine the load changes within seconds; taking turns exposes every
    contender to the same load, so their ratios stay meaningful even when the absolute
    numbers move. Each timed call follows an untimed call of the same function: PyTorch's
    OpenMP threads and OpenBLAS's threads both spin for a while after their work, and the
    first call after a switch of library pays for the other's spinning threads.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn()
            start = CLOCK()
            fn()
            times[name].append(CLOCK() - start)
    return {name: (min(ts), statistics.median(ts)) for name, ts in times.items()}


# ---------------------------------------------------------------- environment

def blas_info():
    lines = []
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        lines.append("threadpoolctl not installed; numpy.show_config():")
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            np.show_config()
        lines += ["  " + line for line in buf.getvalue().splitlines() if line.strip()][:40]
        return lines
    for pool in threadpool_info():
        lines.append(f"  {pool.get('internal_api')} {pool.get('version')} kernel={pool.get('architecture')} "
                     f"threads={pool.get('num_threads')} ({Path(pool.get('filepath', '?')).name})")
    return lines


def print_environment(torch):
    print(f"python {platform.python_version()}  numpy {np.__version__}  "
          f"torch {torch.__version__ + f' (threads={torch.get_num_threads()})' if torch else 'not used'}  "
          f"cpus {os.cpu_count()}  {platform.machine()}")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        print(f"  {var}={os.environ.get(var, '(unset)')}")
    print("BLAS in use (threadpoolctl):")
    for line in blas_info():
        print(line)


# ---------------------------------------------------------------- yardstick (b): GEMM

def gemm_operands(dtype, n, m, k):
    """An (n x k) @ (k x m) product in dtype as a closure, and its flop count."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, k)).astype(dtype)
    b = rng.standard_normal((k, m)).astype(dtype)
    out = np.empty((n, m), dtype)
    return (lambda: np.matmul(a, b, out=out)), 2 * n * m * k


# ---------------------------------------------------------------- yardstick (a): PyTorch eager

def torch_model(torch, params, inputs, targets):
    """A closure that runs forward + backward of the same RNN in PyTorch eager; returns (loss, grads)."""
    import torch.nn.functional as F

    tp = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
    T, B = inputs.shape
    H = params["W_hh"].shape[0]
    tin = torch.from_numpy(inputs.astype(np.int64))
    tout = torch.from_numpy(targets.astype(np.int64)).reshape(T * B)
    h0 = torch.zeros(B, H, dtype=tp["W_hh"].dtype, requires_grad=True)

    def run():
        for p in (*tp.values(), h0):
            p.grad = None
        X = F.embedding(tin, tp["We"])  # (T, B, E)
        h, hs = h0, []
        for t in range(T):
            h = torch.sigmoid(X[t] @ tp["W_xh"].T + h @ tp["W_hh"].T)
            hs.append(h)
        S = torch.stack(hs) @ tp["W_hy"].T  # (T, B, V)
        loss = F.cross_entropy(S.reshape(T * B, -1), tout, reduction="sum")
        loss.backward()
        grads = {k: p.grad for k, p in tp.items()}
        grads["h0"] = h0.grad.T
        return loss, grads

    return run


def max_relative_difference(ours, theirs):
    """max over arrays of max|a - b| / max|b|: how far our loss and gradients are from PyTorch's."""
    worst = 0.0
    for name, ref in theirs.items():
        ref = np.asarray(ref)
        got = np.asarray(ours[name]).reshape(ref.shape)
        worst = max(worst, float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)))
    return worst


# ---------------------------------------------------------------- memory (child process)

def peak_rss():
    """(bytes, source): this process's own peak resident set size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "VmHWM"
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "ru_maxrss"


def memory_child(T, B, H, V, dtype_name, mode):
    from numeric import init_params, loss_and_grads

    dtype = np.dtype(dtype_name).type
    rng = np.random.default_rng(1)
    params = init_params(V, hidden_size=H, seed=0, dtype=dtype)
    inputs = rng.integers(0, V, (T, B))
    targets = rng.integers(0, V, (T, B))
    before, _ = peak_rss()
    if mode == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
        loss_and_grads(params, inputs, targets)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        result = {"tracemalloc_peak": peak}
    else:
        start = time.perf_counter()
        loss_and_grads(params, inputs, targets)
        result = {"seconds": time.perf_counter() - start}
    peak, source = peak_rss()
    result.update(maxrss=peak, maxrss_before_call=before, source=source)
    print(json.dumps(result))


def measure_memory(T, B, H, V, dtype, mode, cap_gb):
    """Run memory_child in a fresh interpreter under an address-space cap; its JSON, or {'error': ...}."""
    cap = int(cap_gb * 2**30)

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    cmd = [sys.executable, __file__, "--memory-child", f"{T},{B},{H},{V},{np.dtype(dtype).name},{mode}"]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, preexec_fn=limit, timeout=1800)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:200]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- profile (--profile)

def profile_parts(params, inputs, targets, repeats):
    """Time the parts of one forward + backward written as plain NumPy products on the same shapes.

    Not our generated code: a floor for each part, to see which one dominates and what a
    batched layout would cost.
    """
    We, W_xh, W_hh, W_hy = (params[k] for k in ("We", "W_xh", "W_hh", "W_hy"))
    T, B = inputs.shape
    H = W_hh.shape[0]
    dt = W_hh.dtype
    Xs = We[inputs]  # (T, B, E)
    hs = np.empty((T, B, H), dt)

    def recurrence_forward():
        h = np.zeros((B, H), dt)
        for t in range(T):
            z = Xs[t] @ W_xh.T + h @ W_hh.T
            h = hs[t] = 1 / (1 + np.exp(-z))

    recurrence_forward()
    Hs = hs.reshape(T * B, H)
    S = Hs @ W_hy.T
    rows = np.arange(T * B)
    flat_targets = targets.reshape(T * B)

    def softmax_and_dS():
        e = np.exp(S - S.max(axis=1, keepdims=True))
        e /= e.sum(axis=1, keepdims=True)
        e[rows, flat_targets] -= 1
        return e

    dS = softmax_and_dS()
    dH_out = dS @ W_hy

    def recurrence_backward():
        dh_next = np.zeros((B, H), dt)
        dz = np.empty((T, B, H), dt)
        for t in reversed(range(T)):
            dz[t] = (dH_out[t * B:(t + 1) * B] + dh_next) * hs[t] * (1 - hs[t])
            dh_next = dz[t] @ W_hh
        return dz

    dz = recurrence_backward().reshape(T * B, H)
    Hprev = np.concatenate([np.zeros((B, H), dt), Hs[:-B]])
    Xflat = Xs.reshape(T * B, -1)

    def input_weight_grads():
        dz.T @ Hprev, dz.T @ Xflat
        dX = dz @ W_xh
        dWe = np.zeros_like(We)
        np.add.at(dWe, inputs.reshape(-1), dX)

    parts = [
        ("recurrence forward (T steps: 2 small GEMMs + sigmoid)", recurrence_forward),
        ("output layer forward S = H W_hy^T (one GEMM)", lambda: Hs @ W_hy.T),
        ("softmax + dS = p - onehot", softmax_and_dS),
        ("dW_hy = dS^T H (one GEMM)", lambda: dS.T @ Hs),
        ("dH from output = dS W_hy (one GEMM)", lambda: dS @ W_hy),
        ("recurrence backward (T steps: GEMM + sigmoid')", recurrence_backward),
        ("dW_hh, dW_xh, dWe (2 GEMMs + scatter-add)", input_weight_grads),
    ]
    return [(name, timed(fn, repeats, warmup=1)[0]) for name, fn in parts]


def cprofile_ours(loss_and_grads, params, inputs, targets, top=15):
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    loss_and_grads(params, inputs, targets)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


# ---------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description="Time numeric.loss_and_grads against PyTorch eager and GEMM.")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--skip-torch", action="store_true", help="do not time PyTorch")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement (best and median shown)")
    parser.add_argument("--skip-memory", action="store_true", help="do not run the T=2000 memory subprocesses")
    parser.add_argument("--mem-cap-gb", type=float, default=8.0,
                        help="address-space cap of the memory subprocess, GiB (default: %(default)s)")
    parser.add_argument("--profile", action="store_true",
                        help="also time the parts of forward+backward as plain NumPy, and cProfile ours")
    parser.add_argument("--threads", type=int,
                        help="limit BLAS/OpenMP threads of NumPy (threadpoolctl) and PyTorch to N; "
                             "steadier ratios when other processes load the machine")
    parser.add_argument("--before", type=Path, help="also time this module (same API) in the same turns")
    parser.add_argument("--cpu-time", action="store_true", help="CPU time instead of wall time (one thread each)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time

    if args.memory_child:
        T, B, H, V, dtype_name, mode = args.memory_child.split(",")
        memory_child(int(T), int(B), int(H), int(V), dtype_name, mode)
        return

    from numeric import init_params, loss_and_grads

    before = None
    if args.before:
        import importlib.util

        sys.path.insert(0, str(args.before.resolve().parent))     # its rnn_core, if it imports one
        spec = importlib.util.spec_from_file_location("before", args.before)
        before = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(before)
    size = dict(QUICK if args.quick else FULL)
    repeats = args.repeats or size["repeats"]
    B, T, H, V = size["B"], size["T"], size["H"], size["V"]
    E = H

    torch = None
    if args.skip_torch:
        print("PyTorch: skipped (--skip-torch)")
    else:
        try:
            import torch
        except ImportError:
            print("PyTorch: not installed, skipping yardstick (a)  (pip install torch==2.13.0 for the CPU wheel)")
    if args.threads:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            parser.error("argument --threads: needs threadpoolctl (pip install threadpoolctl)")
        threadpool_limits(args.threads)  # stays in force for the rest of the process
        if torch is not None:
            torch.set_num_threads(args.threads)
    print_environment(torch)
    print(f"\nsizes: B={B} T={T} H=E={H} V={V}; flops per forward+backward 6TB(HE+HH+VH) = "
          f"{flops(T, B, H, E, V) / 1e9:.2f} GFLOP; best and median of {repeats} after 2 warm-ups, "
          "each timed call after an untimed one\n")

    rng = np.random.default_rng(1)
    inputs = rng.integers(0, V, (T, B))
    targets = rng.integers(0, V, (T, B))
    n = 512 if args.quick else 2048
    rows = []
    fl = flops(T, B, H, E, V)
    for dtype in DTYPES:
        name = np.dtype(dtype).name
        params = init_params(V, hidden_size=H, seed=0, dtype=dtype)
        assert all(w.dtype == dtype for w in params.values()), "init_params ignored dtype"
        square, square_flops = gemm_operands(dtype, n, n, n)
        shaped, shaped_flops = gemm_operands(dtype, T * B, V, H)
        fns = {"ours": lambda p=params: loss_and_grads(p, inputs, targets), "gemm": square, "gemm_shaped": shaped}
        if before is not None:
            fns["before"] = lambda p=params: before.loss_and_grads(p, inputs, targets)
        if torch is not None:
            fns["torch"] = run = torch_model(torch, params, inputs, targets)
            ta, tb = (torch.from_numpy(np.ones((n, n), dtype)) for _ in range(2))
            fns["torch_gemm"] = lambda ta=ta, tb=tb: torch.mm(ta, tb)
        load = os.getloadavg()[0]
        t = interleaved(fns, repeats)
        row = {"dtype": name, "load": load, "ours": t["ours"][0], "ours_median": t["ours"][1],
               "gemm": square_flops / t["gemm"][0] / 1e9, "gemm_shaped": shaped_flops / t["gemm_shaped"][0] / 1e9}
        if before is not None:
            row.update(before=t["before"][0], before_median=t["before"][1])
        if torch is not None:
            loss, grads, _ = loss_and_grads(params, inputs, targets)
            tloss, tgrads = run()
            theirs = {k: g.detach().numpy() for k, g in tgrads.items()}
            theirs["loss"] = np.array(tloss.item())
            row.update(torch=t["torch"][0], torch_median=t["torch"][1],
                       torch_gemm=square_flops / t["torch_gemm"][0] / 1e9,
                       diff=max_relative_difference({**grads, "loss": np.array(loss)}, theirs))
        rows.append(row)

    gemm64 = rows[0]["gemm"]
    print(f"GEMM yardstick: np.matmul {n}x{n}x{n}, best of {repeats}, timed in turn with the models; "
          f"model-shaped ({T * B}x{H})@({H}x{V}) and torch.mm {n}^3 for information")
    for r in rows:
        torch_gemm = f", torch.mm {r['torch_gemm']:6.1f}" if "torch_gemm" in r else ""
        print(f"  {r['dtype']:>7}: numpy {r['gemm']:6.1f} GFLOP/s square, {r['gemm_shaped']:6.1f} model-shaped"
              f"{torch_gemm}   (1-min load average before: {r['load']:.1f} on {os.cpu_count()} cpus)")
    print()
    header = (f"{'dtype':>7} | {'ours ms best/med':>17} | {'torch ms best/med':>17} | {'speedup':>7} | "
              f"{'ours GFLOP/s':>12} | {'/ f64 GEMM':>10} | {'/ same-dtype GEMM':>17} | {'max rel diff vs torch':>21}")
    print(header)
    print("-" * len(header))
    for r in rows:
        ours_rate = fl / r["ours"] / 1e9
        torch_cols = (f"{r['torch'] * 1e3:7.1f} / {r['torch_median'] * 1e3:7.1f} | {r['torch'] / r['ours']:6.2f}x"
                      if "torch" in r else f"{'-':>17} | {'-':>7}")
        diff = f"{r['diff']:.1e}" if "diff" in r else "-"
        print(f"{r['dtype']:>7} | {r['ours'] * 1e3:7.1f} / {r['ours_median'] * 1e3:7.1f} | {torch_cols} | "
              f"{ours_rate:12.1f} | {ours_rate / gemm64:10.0%} | {ours_rate / r['gemm']:17.0%} | {diff:>21}")
    print()
    for r in rows:
        if "before" in r:
            vs = f", PyTorch / before {r['torch'] / r['before']:.2f}x" if "torch" in r else ""
            print(f"before ({args.before.name}), {r['dtype']}: {r['before'] * 1e3:.1f} / "
                  f"{r['before_median'] * 1e3:.1f} ms best/median; ours / before {r['ours'] / r['before']:.3f}{vs}")
    if args.cpu_time:
        print("(times are CPU time, time.process_time)")
    if args.quick:
        print("(--quick: small sizes for a smoke run; the targets below are meant for the full sizes)")
    for r in rows:
        if "torch" in r:
            speedup = r["torch"] / r["ours"]
            print(f"target >= {TARGET_SPEEDUP}x PyTorch eager, {r['dtype']}: {speedup:.2f}x "
                  f"{'MET' if speedup >= TARGET_SPEEDUP else 'MISSED'}")
    for r in rows:
        frac = fl / r["ours"] / 1e9 / gemm64
        print(f"target >= {TARGET_GEMM_FRACTION:.0%} of the float64 GEMM rate, {r['dtype']}: {frac:.0%} "
              f"{'MET' if frac >= TARGET_GEMM_FRACTION else 'MISSED'}")

    if not args.skip_memory:
        mem_T = size["mem_T"]
        print(f"\npeak memory of one loss_and_grads at T={mem_T}, B={B}, H=E={H}, V={V} "
              f"(fresh subprocess each, address space capped at {args.mem_cap_gb:g} GiB)")
        print(f"{'dtype':>7} | {'peak RSS (VmHWM)':>20} | {'RSS before call':>15} | "
              f"{'tracemalloc peak':>16} | {'seconds':>7} | target < 1 GB")
        for dtype in DTYPES:
            rss = measure_memory(mem_T, B, H, V, dtype, "rss", args.mem_cap_gb)
            tm = measure_memory(mem_T, B, H, V, dtype, "tracemalloc", args.mem_cap_gb)
            name = np.dtype(dtype).name
            if "error" in rss:
                print(f"{name:>7} | failed under the cap: {rss['error']}")
                continue
            traced = f"{tm['tracemalloc_peak'] / GB:13.2f} GB" if "error" not in tm else "failed"
            verdict = "MET" if rss["maxrss"] < TARGET_MEMORY else "MISSED"
            if rss["source"] != "VmHWM":
                verdict += f" (peak read from {rss['source']})"
            print(f"{name:>7} | {rss['maxrss'] / GB:17.2f} GB | {rss['maxrss_before_call'] / GB:12.2f} GB | "
                  f"{traced} | {rss['seconds']:7.1f} | {verdict}")

    if args.profile:
        params = init_params(V, hidden_size=H, seed=0, dtype=np.float64)
        print("\nprofile, float64: the parts as plain NumPy on the same shapes (best of "
              f"{repeats}; a floor, not our code)")
        parts = profile_parts(params, inputs, targets, repeats)
        total = sum(s for _, s in parts)
        for name, s in parts:
            print(f"  {s * 1e3:8.1f} ms  {s / total:5.1%}  {name}")
        print(f"  {total * 1e3:8.1f} ms  total  -> {fl / total / 1e9:.1f} GFLOP/s, "
              f"{fl / total / 1e9 / gemm64:.0%} of the float64 GEMM rate")
        print("\ncProfile of one numeric.loss_and_grads call, float64, by cumulative time (BLAS and ufunc "
              "time shows inside the Python function that calls it):")
        print(cprofile_ours(loss_and_grads, params, inputs, targets))


if __name__ == "__main__":
    main()
