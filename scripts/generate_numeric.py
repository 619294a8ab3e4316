"""Regenerate numeric/rnn.py from the proved claims: python scripts/generate_numeric.py [--check] [--no-cache]

Proves the claims the generated module needs (derivations.codegen.NEEDED_CLAIMS:
lines of note.md, read from its LaTeX, and the few registered builders) with the
runner, every engine as `verify` runs them, then prints the module; nothing is
written unless every needed claim is proved.  With --check, writes nothing and
exits 1 when the committed numeric/rnn.py differs from what would be generated.
"""
import argparse
import sys

from derivations.assembly import run
from derivations.cache import ProofCache
from derivations.cli import verdicts_by_id
from derivations.codegen import DEFAULT_PATH, GenerationError, generate, needed_ids, write_module
from derivations.runner import load_document


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that numeric/rnn.py is up to date")
    parser.add_argument("--no-cache", action="store_true", help="prove everything again, ignoring cached proofs")
    args = parser.parse_args(argv)
    doc = load_document()
    report = run(needed_ids(doc), cache=ProofCache(enabled=not args.no_cache), document=doc)
    verdicts = verdicts_by_id(report)
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
