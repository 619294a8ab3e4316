"""Regenerate numeric/rnn_core.py from the note's proved lines: python scripts/generate_numeric.py [--check] [--no-cache]

Proves every claim of note.md with the runner, every engine as `verify` runs them, then writes the module
`verify FILE` writes for any file (derivations/outputs/numpy_module.py), from the note: each gradient printed from
the note's first proved line that states it (`# claim: <id> (line N)`).  numeric/rnn.py (token ids,
sampling, argument checks) calls it.  With --check, writes nothing and exits 1 when the committed
numeric/rnn_core.py differs from what would be generated.
"""
import argparse
import sys

from derivations.outputs.assembly import run
from derivations.outputs.numpy_module import NOTE_COMMAND, NOTE_MODULE, module_for
from derivations.running.cache import ProofCache
from derivations.running.runner import load_document
from reports.files import write_all


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that numeric/rnn_core.py is up to date")
    parser.add_argument("--no-cache", action="store_true", help="prove everything again, ignoring cached proofs")
    args = parser.parse_args(argv)
    doc = load_document()
    report = run(cache=ProofCache(enabled=not args.no_cache), document=doc)
    source, info = module_for(doc, report, NOTE_COMMAND)
    if source is None:
        print(f"error: {info['error']}", file=sys.stderr)
        return 1
    if args.check:
        current = NOTE_MODULE.read_text(encoding="utf-8") if NOTE_MODULE.exists() else None
        if current != source:
            print(f"{NOTE_MODULE.name} is stale: run {NOTE_COMMAND}", file=sys.stderr)
            return 1
        print(f"{NOTE_MODULE.name} is up to date")
        return 0
    write_all({NOTE_MODULE: source.encode()})
    print(f"wrote {NOTE_MODULE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
