"""How the checks of the whole BPTT algorithm (note.md's corrected loop) scale with T and the hidden size.

Measured in one run, side by side, with the engines of parsed claims:
  * "loop run": the explicit engine's check of the loop at one size and length
    (`derivations.engines.program`): the loop run from t = T down to 1 on the model,
    every value it computes against what it stands for (the model's own
    derivative of the unrolled loss), compared at random points to 60 digits.
    It grows with T: the model is unrolled over T steps.
  * "every T": the proof for every T -- each line of the loop proved for every
    size and every T by the engines of parsed claims (`derivations.engines`,
    as `verify` runs them), then the induction over the loop
    (`program.for_every_T`).  It does not depend on
    T or on the sizes at all: measured once.

    python benchmarks/verify_scaling.py            # T = 1..6, H = 2..4
    python benchmarks/verify_scaling.py --quick    # T = 1..4, H = 2..3

A cell of the loop run is skipped once the previous T took longer than
--budget seconds.
"""
import argparse
import sys
import time
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from derivations import engines
from derivations.engines import program
from derivations.engines.explicit import numeric_difference, sample_indices
from derivations.engines.verdicts import PROVED
from derivations.form.semantics import Model
from derivations.running.runner import load_document

CLAIM = "bptt-algorithm-corrected"


def loop_run(ctx, alg, sizes: dict, T: int) -> bool:
    """The loop at these sizes and length: True when every value it computes is what it stands for."""
    for indices in sample_indices(ctx, sizes, T):
        model = Model(ctx, sizes, T, indices)
        values, _, failed = program.run(model, ctx, alg, T)
        assert not failed, failed
        flat = [(key, i, j) for key in values for i in range(values[key].rows) for j in range(values[key].cols)]
        got = sp.Matrix([values[key][i, j] for key, i, j in flat])
        true = sp.Matrix([program.truth(model, ctx, key, T)[i, j] for key, i, j in flat])
        if numeric_difference(model, true, got, seed=f"scaling|{sizes}|{T}", tries=4, give_up_after=2) is not None:
            return False
    return True


def every_T(doc, ctx, alg) -> tuple[str, float, dict]:
    """The induction's verdict, its seconds, and {line: the engines that proved it for every size and T}."""
    start = time.perf_counter()
    results, by = {}, {}
    for u in alg.updates:
        c = doc.parsed[u.claim][1]
        results[u.claim] = engines.run_engines(engines.parsed_engines(), (ctx, c), c.id, engines.TIME_LIMIT)
        by[u.claim] = [m["method"] for m in results[u.claim]["methods"]
                       if m["verdict"] == PROVED and m["method"] in engines.GENERAL]
    return program.for_every_T(alg, results)["verdict"], time.perf_counter() - start, by


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--budget", type=float, default=20.0, help="stop the loop run past this many seconds")
    args = p.parse_args()
    Ts = range(1, 5 if args.quick else 7)
    Hs = (2, 3) if args.quick else (2, 3, 4)
    doc = load_document()
    ctx, claim = doc.parsed[CLAIM]
    alg = ctx.algorithms[claim.algorithm]

    verdict, seconds, by = every_T(doc, ctx, alg)
    print(f"every T (each line of the loop by the engines, then the induction): {verdict} in {seconds:.2f} s")
    for line, methods in by.items():
        print(f"    {line}: {', '.join(methods) or 'no engine for every T'}")
    assert verdict == PROVED, verdict
    print(f"\n{'H':>2} {'T':>2} {'loop run s':>11}   (V = 3, E = 2)")
    for H in Hs:
        over = False
        for T in Ts:
            if over:
                break
            start = time.perf_counter()
            assert loop_run(ctx, alg, {"H": H, "E": 2, "V": 3}, T), (H, T)
            took = time.perf_counter() - start
            over = took > args.budget
            print(f"{H:>2} {T:>2} {took:11.2f}", flush=True)


if __name__ == "__main__":
    main()
