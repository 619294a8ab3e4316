"""Fuzz the reader longer than the test suite does, and say how fast it is.

The inputs of tests/test_fuzz_reader.py (random Unicode with control and separator
characters, splices of the valid files, brackets nested 10,000 deep, long lines; as .md,
.tex and .ipynb), many more of them and not derandomized.  Every input must give a
Derivation or located DerivationErrors within the bound; the script prints, per kind of
input, how many were read, the throughput (inputs and MB per second), the slowest input's
time and size, and exits 1 on a failure (any other exception, or a time over the bound).

    python benchmarks/fuzz_reader.py                   # 2,000 inputs of each kind
    python benchmarks/fuzz_reader.py --examples 200    # a smoke run
    python benchmarks/fuzz_reader.py --seed 7          # reproducible
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]       # this checkout's package and the test's strategies

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from test_fuzz_reader import SUFFIXES, as_notebook, deep_or_long, mutations, read_within_bound, splices, text_pieces

KINDS = {
    "random unicode": st.lists(text_pieces, max_size=60).map("".join),
    "splices": splices(),
    "edits": mutations(),
    "deep or long": deep_or_long(),
}


def run(kind: str, strategy, examples: int, rng_seed: int | None) -> dict:
    stats = {"inputs": 0, "chars": 0, "seconds": 0.0, "max": 0.0, "max_chars": 0, "derivations": 0}

    def one(text, suffix):
        start = time.perf_counter()
        result = read_within_bound(text, suffix)
        took = time.perf_counter() - start
        stats["inputs"] += 1
        stats["chars"] += len(text)
        stats["seconds"] += took
        stats["derivations"] += not hasattr(result, "errors")
        if took > stats["max"]:
            stats["max"], stats["max_chars"] = took, len(text)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=rng_seed is None,
              suppress_health_check=list(HealthCheck))
    @given(strategy, st.sampled_from(SUFFIXES), st.lists(st.integers(0, 10**6), max_size=3))
    def fuzz(text, suffix, cuts):
        one(text, suffix)
        if suffix == ".ipynb":
            one(as_notebook(text, cuts), suffix)

    if rng_seed is not None:
        fuzz = seed(rng_seed)(fuzz)
    fuzz()
    return stats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=2000, help="inputs of each kind (default 2000)")
    p.add_argument("--seed", type=int, default=None, help="a seed (default: Hypothesis' derandomized run)")
    args = p.parse_args(argv)
    print(f"{'kind':<16}{'inputs':>8}{'read':>7}{'inputs/s':>10}{'MB/s':>8}{'max s':>8}{'at chars':>10}")
    status = 0
    for kind, strategy in KINDS.items():
        try:
            s = run(kind, strategy, args.examples, args.seed)
        except Exception as e:  # noqa: BLE001 - Hypothesis re-raises the smallest failing input's error
            print(f"{kind:<16} FAILED: {type(e).__name__}: {e}")
            status = 1
            continue
        rate = s["inputs"] / s["seconds"] if s["seconds"] else float("inf")
        mbs = s["chars"] / 1e6 / s["seconds"] if s["seconds"] else float("inf")
        print(f"{kind:<16}{s['inputs']:>8}{s['derivations']:>7}{rate:>10.0f}{mbs:>8.2f}{s['max']:>8.3f}"
              f"{s['max_chars']:>10}")
    print("read: inputs that gave a Derivation (the rest gave located DerivationErrors)")
    return status


if __name__ == "__main__":
    sys.exit(main())
