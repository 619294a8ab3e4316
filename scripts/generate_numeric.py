"""Regenerate numeric/rnn.py from the proved claims: python scripts/generate_numeric.py

Proves the claims the generated module needs (derivations.codegen.NEEDED_CLAIMS)
with the concrete engine, then prints the module; nothing is written unless
every needed claim is proved.
"""
import sys

from derivations import note  # noqa: F401  (registers the claims)
from derivations.codegen import NEEDED_CLAIMS, GenerationError, write_module
from derivations.concrete import prove
from derivations.registry import CLAIMS


def main() -> int:
    verdicts = {cid: prove(CLAIMS[cid]).verdict for cid in NEEDED_CLAIMS}
    try:
        path = write_module(verdicts)
    except GenerationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
