"""Regenerate numeric/rnn.py from the proved claims: python scripts/generate_numeric.py [--check]

Proves the claims the generated module needs (derivations.codegen.NEEDED_CLAIMS)
with the concrete engine, then prints the module; nothing is written unless
every needed claim is proved.  With --check, writes nothing and exits 1 when the
committed numeric/rnn.py differs from what would be generated.
"""
import argparse
import sys

from derivations import note  # noqa: F401  (registers the claims)
from derivations.codegen import DEFAULT_PATH, NEEDED_CLAIMS, GenerationError, generate, write_module
from derivations.concrete import prove
from derivations.registry import CLAIMS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that numeric/rnn.py is up to date")
    args = parser.parse_args(argv)
    verdicts = {cid: prove(CLAIMS[cid]).verdict for cid in NEEDED_CLAIMS}
    try:
        if args.check:
            current = DEFAULT_PATH.read_text(encoding="utf-8") if DEFAULT_PATH.exists() else None
            if current != generate(verdicts):
                print(f"{DEFAULT_PATH.name} is stale: run python scripts/generate_numeric.py", file=sys.stderr)
                return 1
            print(f"{DEFAULT_PATH.name} is up to date")
            return 0
        path = write_module(verdicts)
    except GenerationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
