"""Per-file and per-claim cost of checking derivations through time, with and without the structural engine.

    python benchmarks/recurrence_files.py [--limit SECONDS] [FILE.md ...]

For each file (default: tests/derivations/*.md and the examples through time), a cold run
(no cache, no repairs, 2 processes) with every engine, then one without the structural engine
(derivations/recurrence.py), side by side in one run: wall seconds for the file, the slowest claim
and the mean claim (engine seconds), and how many lines are proved for every size and T, only
checked, or left inconclusive.  The run without it is bounded by --limit per engine and claim.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from derivations import recurrence, runner
from derivations.runner import load_document, run

DEFAULT = sorted((ROOT / "tests" / "derivations").glob("*.md")) + [ROOT / "examples" / n for n in
                                                                   ("min_char_rnn.md", "lstm.md")]


def measure(path: Path, limit: float) -> dict:
    start = time.perf_counter()
    report = run(document=load_document(path), jobs=2, repairs=False, time_limit=limit)
    wall = time.perf_counter() - start
    seconds = [c["seconds"] for c in report["claims"]]
    count = lambda v: sum(c["verdict"] == v for c in report["claims"])
    return {"wall": wall, "max": max(seconds), "mean": sum(seconds) / len(seconds), "n": len(seconds),
            "proved": count("proved"), "checked": count("checked"), "inconclusive": count("inconclusive"),
            "slowest": max(report["claims"], key=lambda c: c["seconds"])["id"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", type=Path, default=DEFAULT)
    p.add_argument("--limit", type=float, default=60.0, help="seconds per engine and claim (default 60)")
    args = p.parse_args()
    real = runner._parsed_engines
    print(f"{'file':22} {'engines':9} {'wall s':>7} {'max s':>6} {'mean s':>7} {'claims':>6} "
          f"{'proved':>6} {'checked':>7} {'inconcl':>7}  slowest")
    for path in args.files:
        for label, engines in (("all", real), ("w/o rec", lambda: [(n, e) for n, e in real()
                                                                   if n != recurrence.METHOD])):
            runner._parsed_engines = engines
            try:
                m = measure(path, args.limit)
            finally:
                runner._parsed_engines = real
            print(f"{path.stem:22} {label:9} {m['wall']:7.1f} {m['max']:6.1f} {m['mean']:7.2f} {m['n']:6} "
                  f"{m['proved']:6} {m['checked']:7} {m['inconclusive']:7}  {m['slowest']}", flush=True)


if __name__ == "__main__":
    main()
