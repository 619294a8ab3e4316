"""Per-file and per-claim cost of checking derivations through time, with and without the structural engine.

    python benchmarks/recurrence_files.py [--limit SECONDS] [--before REF] [FILE.md ...]

For each file (default: tests/derivations/*.md and the examples through time), a cold run
(no cache, no repairs, 2 processes) with every engine, then one without the structural engine
(derivations/engines/recurrence.py), side by side in one run: wall seconds for the file, the slowest claim
and the mean claim (engine seconds), and how many lines are proved for every size and T, only
checked, or left inconclusive.  The run without it is bounded by --limit per engine and claim.

--before REF (a commit, branch or tag of this repository): instead of the run without the
structural engine, the same run with every engine of the code at REF (exported to a temporary
folder), each file in a process of its own for both, REF's first: before and after side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def _root_from_argv() -> Path:
    """--root DIR: the checkout whose engines are measured (a REF exported by --before), else this one."""
    if "--root" in sys.argv:
        return Path(sys.argv[sys.argv.index("--root") + 1]).resolve()
    return ROOT


sys.path.insert(0, str(_root_from_argv()))

from derivations.engines import recurrence
from derivations.outputs.assembly import run
from derivations.running import runner
from derivations.running.runner import load_document

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
            "slowest": max(report["claims"], key=lambda c: c["seconds"])["id"],
            "verdicts": {c["id"]: c["verdict"] for c in report["claims"]}}


def _export(ref: str, into: Path) -> Path:
    """The files of this repository at `ref`, written under `into`."""
    archive = into / "ref.tar"
    with open(archive, "wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref], stdout=out, check=True)
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def _in_process(root: Path, path: Path, limit: float) -> dict:
    """measure() of one file by the engines of the checkout at `root`, in a process of its own (cold)."""
    local = root / path.resolve().relative_to(ROOT)
    out = subprocess.run([sys.executable, str(HERE), "--root", str(root), "--json", "--limit", str(limit), str(local)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _row(name: str, label: str, m: dict) -> str:
    return (f"{name:22} {label:9} {m['wall']:7.1f} {m['max']:6.1f} {m['mean']:7.2f} {m['n']:6} "
            f"{m['proved']:6} {m['checked']:7} {m['inconclusive']:7}  {m['slowest']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", type=Path, default=DEFAULT)
    p.add_argument("--limit", type=float, default=60.0, help="seconds per engine and claim (default 60)")
    p.add_argument("--before", metavar="REF", help="compare with the engines at this commit instead")
    p.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.json:
        print(json.dumps(measure(args.files[0], args.limit)))
        return
    # The machine may be shared: the 1-minute load average says how quiet the run was (2 cores; above 2,
    # every figure is stretched).
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'file':22} {'engines':9} {'wall s':>7} {'max s':>6} {'mean s':>7} {'claims':>6} "
          f"{'proved':>6} {'checked':>7} {'inconcl':>7}  slowest")
    try:
        _compare(args)
    finally:
        print(f"load average {os.getloadavg()[0]:.1f}")


def _compare(args) -> None:
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            before = _export(args.before, Path(tmp))
            for path in args.files:
                old, new = _in_process(before, path, args.limit), _in_process(ROOT, path, args.limit)
                print(_row(path.stem, "before", old), flush=True)
                print(_row(path.stem, "after", new), flush=True)
                changed = {k: (old["verdicts"].get(k), v) for k, v in new["verdicts"].items()
                           if old["verdicts"].get(k) != v}
                if changed:
                    print(f"{'':22} verdicts changed: {changed}", flush=True)
        return
    real = runner._parsed_engines
    for path in args.files:
        for label, engines in (("all", real), ("w/o rec", lambda: [(n, e) for n, e in real()
                                                                   if n != recurrence.METHOD])):
            runner._parsed_engines = engines
            try:
                m = measure(path, args.limit)
            finally:
                runner._parsed_engines = real
            print(_row(path.stem, label, m), flush=True)


if __name__ == "__main__":
    main()
