"""Soundness benchmark: mutation score and rewrite score of the engines (issue 8).

    python benchmarks/soundness.py [--chains N] [--seed S] [--no-graph] [--only ID ...]

Targets are the note's BPTT lines and helper lemmas (derivations/soundness.py).
Mutations: every single edit of every kind in derivations/edits.py.MUTATIONS,
applied at every position of every target.  Each is classified by an
independent numeric check (NumPy at random points, h computed from its
definition): an "equivalent" mutation is not a mutation and is counted with
the rewrites; the others must come out refuted or ill-typed from every
applicable engine ("killed").  Rewrites: every single rewrite of every kind in
REWRITES, plus N random chains of 2-4 rewrites per target; each must be proved
by every applicable engine.  Prints counts; exit status 1 if any mutation
survives or any rewrite is not proved.
"""
from __future__ import annotations

import argparse
import collections
import random
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from derivations import edits
from derivations import soundness as S


def chain(t, rng, length):
    """A random chain of `length` rewrites of the target's right-hand side (fewer if none applies)."""
    expr, kinds = t.expr, []
    for _ in range(length):
        options = {k: v for k in edits.REWRITES if (v := edits.variants(k, expr, **t.context()))}
        if not options:
            break
        kind = rng.choice(sorted(options))           # a kind first, so that no kind crowds out the others
        expr = rng.choice(options[kind])
        kinds.append(kind)
    return "+".join(kinds), expr


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chains", type=int, default=10, help="random rewrite chains per target (default 10)")
    p.add_argument("--seed", type=int, default=8)
    p.add_argument("--no-graph", action="store_true", help="skip the unrolled-graph engine (faster)")
    p.add_argument("--only", nargs="+", metavar="ID", help="targets (claim ids); default: all")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    rng = random.Random(args.seed)
    targets = [S.target(c) for c in args.only] if args.only else S.targets()

    stats = collections.defaultdict(collections.Counter)     # edit kind -> outcome counts
    in_chains = collections.Counter()
    failures = []
    start = time.perf_counter()
    for t in targets:
        cases = [(k, "mutation", v) for k in edits.MUTATIONS for v in edits.variants(k, t.expr, **t.context())]
        cases += [(k, "rewrite", v) for k in edits.REWRITES for v in edits.variants(k, t.expr, **t.context())]
        for _ in range(args.chains):
            kinds, expr = chain(t, rng, rng.randint(2, 4))
            if kinds:
                cases.append((kinds, "chain", expr))
                in_chains.update(kinds.split("+"))
        for kind, role, expr in cases:
            cls = S.classify(t, expr)
            row = stats["rewrite chain (2-4 rewrites)" if role == "chain" else kind]
            if role != "mutation" and cls != S.EQUIVALENT:
                failures.append((t.id, kind, "the numeric oracle says this rewrite is " + cls, expr, {}))
                row["oracle disagrees"] += 1
                continue
            results = S.verdicts(t, expr, graph=not args.no_graph)
            verdicts = {e: r[0] for e, r in results.items()}
            if cls == S.EQUIVALENT:
                ok = all(v == S.PROVED for v in verdicts.values())
                row["proved" if ok else "not proved"] += 1
            else:
                ok = all(v in S.KILLED for v in verdicts.values())
                row["killed" if ok else "survived"] += 1
            if not ok:
                failures.append((t.id, kind, cls, expr, results))
    seconds = time.perf_counter() - start

    total = collections.Counter()
    for row in stats.values():
        total.update(row)
    print(f"targets: {len(targets)} ({', '.join(t.id for t in targets)})")
    print("engines: concrete, all sizes" + ("" if not any(t.is_line for t in targets) else
                                             ", and on BPTT lines induction" + ("" if args.no_graph else
                                                                                 ", unrolled graph")))
    print(f"mutation score: {total['killed']}/{total['killed'] + total['survived']} killed "
          "(refuted or ill-typed by every applicable engine)")
    print(f"rewrite score:  {total['proved']}/{total['proved'] + total['not proved']} proved by every applicable "
          "engine (single rewrites, chains, and mutations the numeric check finds equivalent)")
    print(f"seconds: {seconds:.1f}")
    print()
    print(f"{'edit kind':<30} {'killed':>9} {'proved':>9}   (equivalent mutations are counted as rewrites)")
    for kind in [*edits.MUTATIONS, *edits.REWRITES, "rewrite chain (2-4 rewrites)"]:
        row = stats.get(kind, collections.Counter())
        k = f"{row['killed']}/{row['killed'] + row['survived']}" if kind in edits.MUTATIONS else "-"
        p_ = f"{row['proved']}/{row['proved'] + row['not proved']}"
        print(f"{kind:<30} {k:>9} {p_:>9}")
    print(f"\nrewrites used in chains: {', '.join(f'{k} {n}' for k, n in sorted(in_chains.items()))}")
    for tid, kind, cls, expr, results in failures:
        print(f"\nFAILED {tid} {kind} ({cls}): {expr}")
        for engine, (verdict, reason) in results.items():
            print(f"    {engine}: {verdict} -- {reason[:200]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
