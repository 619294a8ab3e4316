"""How the proof of the whole BPTT algorithm scales with T and the hidden size.

Measured in one run, side by side:
  * "expanded": the concrete engine's direct check -- SymPy differentiates the
    whole unrolled loss (nested sigmas) and the difference with the algorithm's
    output is expanded to zero.  Exponential in T (products of T symbolic W_hh).
  * "graph": engine "unrolled graph" -- one intermediate symbol per node,
    SymPy's local derivatives, the generic chain rule, exact step-by-step
    matching.  Polynomial in T.

    python benchmarks/verify_scaling.py            # T = 1..8, H = 2..4
    python benchmarks/verify_scaling.py --quick    # T = 1..4, H = 2..3

A cell of the expanded check is skipped once the previous T took longer than
--budget seconds (its cost grows ~3.5x per step).
"""
import argparse
import time

from derivations.concrete import prove
from derivations.graph import check_algorithm
from derivations.note.bptt import algorithm_lines
from derivations.registry import Claim
from derivations.runner import load_claims


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--budget", type=float, default=20.0, help="stop the expanded check past this many seconds")
    args = p.parse_args()
    Ts = range(1, 5 if args.quick else 9)
    Hs = (2, 3) if args.quick else (2, 3, 4)
    claims = load_claims()
    whole = claims["bptt-algorithm-corrected"]
    lines = algorithm_lines("bptt-algorithm-corrected")      # the lines as parsed from note.md

    print(f"{'H':>2} {'T':>2} {'graph s':>9} {'expanded s':>11}   (V = 3, E = 2)")
    table = {}
    for H in Hs:
        expanded_over = False
        for T in Ts:
            shape = {"H": H, "E": 2, "V": 3, "T": T}
            start = time.perf_counter()
            verdict = check_algorithm(lines, shape)[0]
            graph_s = time.perf_counter() - start
            assert verdict == "proved", (shape, verdict)
            exp_s = None
            if not expanded_over:
                one = Claim(id=whole.id, label="", latex="", section="", build=whole.build, shapes=(shape,))
                start = time.perf_counter()
                assert prove(one).verdict == "proved"
                exp_s = time.perf_counter() - start
                expanded_over = exp_s > args.budget
            table[H, T] = (graph_s, exp_s)
            print(f"{H:>2} {T:>2} {graph_s:9.2f} {exp_s if exp_s is not None else float('nan'):11.2f}", flush=True)
    print()
    for H in Hs:
        if (H, 8) in table and (H, 4) in table:
            g8, g4 = table[H, 8][0], table[H, 4][0]
            print(f"H={H}: graph time(T=8)/time(T=4) = {g8 / g4:.2f}   (target <= 4); T=8 took {g8:.1f}s (target < 30 s)")
        e = [T for T in Ts if table[H, T][1] is not None]
        if len(e) >= 2:
            a, b = table[H, e[-2]][1], table[H, e[-1]][1]
            print(f"H={H}: expanded time(T={e[-1]})/time(T={e[-2]}) = {b / a:.2f} per added step")


if __name__ == "__main__":
    main()
