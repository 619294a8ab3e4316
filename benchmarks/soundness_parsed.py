"""Soundness benchmark on claims parsed from derivation files: mutation and rewrite scores (issue 8).

    python benchmarks/soundness_parsed.py [--limit SECONDS] [--only ID ...] [--max-per-claim N]

Targets are the true claims of the property tests' pool (tests/test_rewrites.py:
the note's lemmas and lines, the examples' lines, σ' and tanh' recurrences).
Mutations: every single edit of every target (derivations/analyses/repair.py,
`single_edits`: a transpose added or removed, · for ∘ and back, swapped
operands, f for f' and back, t for t±1, a symbol replaced, a dropped term, a
flipped sign, ...).  Each is classified by the numeric oracle of the tests
(tests/oracle.py, `changes_value`: NumPy forward passes and finite
differences, σ real, every defined quantity recomputed from its definition,
sizes 2, 3, 4, ... all different, every T up to a few steps past the claim's
reach; nothing of the engines): one that changes the value must come out refuted or
ill-typed from the engines combined ("killed"); one that does not is counted
as equivalent and must not be refuted.  Rewrites: every single rewrite
(derivations/analyses/rewrites.py) of every target must keep the value by the numbers
and be proved.  Engines run as in
`verify` (combined; one stopped at the time limit counts as inconclusive).
Prints counts; exit status 1 if a mutation survives, a rewrite is not proved,
or the engines disagree.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from oracle import changes_value
from test_rewrites import POOL

from derivations import engines
from derivations.analyses.repair import single_edits
from derivations.analyses.rewrites import rewrites
from derivations.engines.verdicts import CONFLICT, ILL_TYPED, PROVED, REFUTED
from derivations.form import ir
from derivations.form.printer import claim_latex


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--limit", type=float, default=60.0, help="seconds per engine and case (default 60)")
    p.add_argument("--only", nargs="+", metavar="ID", help="targets (claim ids); default: the whole pool")
    p.add_argument("--max-per-claim", type=int, default=0, help="at most N mutations per target (0: all)")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    pool = [(ctx, c) for ctx, c in POOL if not args.only or c.id in args.only]

    stats = collections.defaultdict(collections.Counter)      # kind -> outcome counts
    failures = []
    start = time.perf_counter()
    for ctx, claim in pool:
        cases = [(kind, "mutation", new) for kind, _, new in single_edits(claim, ctx)]
        if args.max_per_claim:
            cases = cases[:args.max_per_claim]
        for side in ("lhs", "rhs"):
            for kind, new in rewrites(getattr(claim, side), ctx):
                cases.append((kind, "rewrite", ir.Claim(claim.id + "~", claim.label,
                                                        *((new, claim.rhs) if side == "lhs" else (claim.lhs, new)),
                                                        claim.source)))
        for kind, role, new in cases:
            out = engines.run_engines(engines.parsed_engines(), (ctx, new), new.id, args.limit)
            verdict = out["verdict"]
            row = stats[(role, kind)]
            if verdict == CONFLICT:
                row["conflict"] += 1
                failures.append((claim.id, kind, new, out["reason"]))
                continue
            if role == "rewrite":
                row["proved" if verdict == PROVED else "not proved"] += 1
                if verdict != PROVED:
                    failures.append((claim.id, kind, new, out["reason"]))
                if changes_value(ctx, new):
                    row["not an identity by the numbers"] += 1
                    failures.append((claim.id, kind, new, "a rewrite that changes the value, by the numbers"))
                continue
            if changes_value(ctx, new):
                killed = verdict in (REFUTED, ILL_TYPED)
                row["killed" if killed else f"survived ({verdict})"] += 1
                if not killed:
                    failures.append((claim.id, kind, new, out["reason"]))
            else:
                row["equivalent"] += 1
                if verdict in (REFUTED, ILL_TYPED):
                    row["equivalent but refuted"] += 1
                    failures.append((claim.id, kind, new, "equivalent by the numbers, yet " + out["reason"]))
    seconds = time.perf_counter() - start

    total = collections.Counter()
    for (role, _), row in stats.items():
        total.update({f"{role}:{k}": n for k, n in row.items()})
    mutations = sum(n for k, n in total.items() if k.startswith("mutation:") and k != "mutation:equivalent")
    print(f"targets: {len(pool)} claims parsed from derivation files ({', '.join(c.id for _, c in pool)})")
    print(f"engines: {', '.join(dict(engines.parsed_engines()))}, combined as in verify; "
          f"time limit {args.limit:g} s per engine and case")
    print(f"mutation score: {total['mutation:killed']}/{mutations} killed (refuted or ill-typed); "
          f"{total['mutation:equivalent']} equivalent by the numbers, not counted")
    rewrites_total = total["rewrite:proved"] + total["rewrite:not proved"]
    print(f"rewrite score:  {total['rewrite:proved']}/{rewrites_total} proved")
    print(f"conflicts: {total['mutation:conflict'] + total['rewrite:conflict']}")
    print(f"seconds: {seconds:.1f}")
    print()
    print(f"{'role':<9} {'edit kind':<26} counts")
    for (role, kind), row in sorted(stats.items()):
        print(f"{role:<9} {kind:<26} " + ", ".join(f"{k} {n}" for k, n in sorted(row.items())))
    for cid, kind, new, reason in failures:
        print(f"\nFAILED {cid} {kind}: {claim_latex(new.lhs, new.rhs)}\n    {reason[:300]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
