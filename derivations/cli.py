"""The `verify` command: prove every statement of the note, regenerate the
numeric module from the proved expressions, and write the report.

Exit status: 0 when every statement the derivation relies on is proved (as
written, or through its proved correction); 1 otherwise; 2 on a usage error or
an engine error (in which case nothing is written).  Engines that disagree on
a claim (one proves it, another refutes it or finds it ill-typed) are an
engine error: verdict "conflict", exit status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from .cache import ProofCache, default_dir
from .recheck import EngineDefect
from .runner import load_claims, run

MARKS = {"proved": "✓", "refuted": "✗", "ill-typed": "⊥", "inconclusive": "?", "conflict": "≠"}


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="verify", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("reports/out"),
                   help="directory for report.json, report.html, report.tex, report.pdf (default: reports/out)")
    p.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1,
                   help="worker processes (default: the number of cores)")
    p.add_argument("--no-cache", action="store_true", help="prove everything again, ignoring cached proofs")
    p.add_argument("--cache-dir", type=Path, default=None, help=f"proof cache directory (default: {default_dir()})")
    p.add_argument("--only", nargs="+", metavar="ID", help="prove only these claims (no code, no report files)")
    p.add_argument("--no-codegen", action="store_true", help="do not regenerate numeric/rnn.py")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    return p


def _progress(quiet):
    def show(cid, result, cached, done, total):
        if quiet:
            return
        tag = " (cached)" if cached else ""
        print(f"[{done:>2}/{total}] {MARKS[result['verdict']]} {result['verdict']:<12} {cid:<28} "
              f"{result['seconds']:6.2f}s{tag}", flush=True)
    return show


def _table(report) -> str:
    width = max(len(c["label"]) for c in report["claims"])
    lines = [f"{'claim':<{width}}  {'kind':<11} verdict       methods"]
    for c in report["claims"]:
        methods = ", ".join(f"{m['method']}:{m['verdict']}" for m in c["methods"])
        lines.append(f"{c['label']:<{width}}  {c['kind']:<11} {MARKS[c['verdict']]} {c['verdict']:<12} {methods}")
    s = report["summary"]
    lines.append("")
    lines.append("  ".join(f"{v}: {n}" for v, n in s.items()) + f"   total {report['total_seconds']:.1f}s")
    if "induction" in report:
        lines.append(f"BPTT for every T (induction): {report['induction']['verdict']}")
    return "\n".join(lines)


def _conflicts(report) -> str:
    """The engine error for claims on which the engines disagree: each engine and its evidence."""
    by_id = {c["id"]: c for c in report["claims"]}
    ids = report["conflicts"]
    head = f"verify: engine error: the engines disagree on {len(ids)} claim(s) ({', '.join(ids)}); nothing was written"
    lines = [head]
    for cid in ids:
        lines.append(f"  {cid} ({by_id[cid]['label']}):")
        for m in by_id[cid]["conflict"]:
            lines.append(f"    {m['method']}: {m['verdict']} -- {m['reason']}")
            if m.get("counterexample"):
                lines.append(f"      counterexample: {m['counterexample']}")
    return "\n".join(lines)


def _write_json(path: Path, data) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    os.replace(tmp, path)


def _prepare_out(p, out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        p.error(f"--out {out}: cannot create the directory ({e.strerror})")
    if not os.access(out, os.W_OK):
        p.error(f"--out {out}: the directory is not writable")
    return out


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    claims = load_claims()
    if args.only:
        unknown = [cid for cid in args.only if cid not in claims]
        if unknown:
            p.error(f"--only: unknown claim id(s) {', '.join(unknown)}; known ids: {', '.join(claims)}")
    out = None if args.only else _prepare_out(p, args.out)

    cache = ProofCache(args.cache_dir, enabled=not args.no_cache)
    print(f"Proving {len(args.only or claims)} statements of the note on {args.jobs} process(es)...", flush=True)
    try:
        report = run(args.only, jobs=args.jobs, cache=cache, progress=_progress(args.quiet))
    except EngineDefect as e:      # e.g. a "counterexample" the model does not confirm
        print(f"verify: engine error: {e}; nothing was written", file=sys.stderr)
        return 2
    except Exception:  # noqa: BLE001 - an engine bug of any kind: say so, write nothing
        traceback.print_exc()
        print("verify: engine error (see above); nothing was written", file=sys.stderr)
        return 2
    print()
    print(_table(report))
    if report["conflicts"]:
        print(_conflicts(report), file=sys.stderr)
        return 2
    if out is None:
        return 0 if report["ok"] else 1

    code = None
    if not args.no_codegen:
        code = _regenerate(report)
    try:
        _render(report, out, code)
    except Exception as e:  # noqa: BLE001 - a rendering bug must not pass for a verdict
        print(f"verify: the report could not be rendered: {e}", file=sys.stderr)
        return 2
    _write_json(out / "report.json", report)
    print(f"wrote {out / 'report.json'}")
    print(f"\nverdict: {'every statement relied on is proved' if report['ok'] else 'NOT every statement is proved'}")
    return 0 if report["ok"] else 1


def _regenerate(report):
    try:
        from . import codegen
    except ImportError:
        return None
    verdicts = {c["id"]: c["verdict"] for c in report["claims"]}
    try:
        path = codegen.write_module(verdicts)
    except codegen.GenerationError as e:
        print(f"numeric module NOT regenerated: {e}", file=sys.stderr)
        report["numeric_module"] = {"path": None, "error": str(e), "claims_used": []}
        return None
    report["numeric_module"] = {"path": "numeric/rnn.py", "claims_used": list(codegen.NEEDED_CLAIMS)}
    print(f"regenerated {path.name} from the proved expressions")
    return path.read_text()


def _render(report, out, code):
    try:
        from reports.render import write_reports
    except ImportError:
        return
    start = time.perf_counter()
    paths = write_reports(report, out, code)
    for kind in ("html", "tex", "pdf"):
        path = paths.get(kind)
        if path:
            print(f"wrote {path}")
    if paths.get("pdf") is None and paths.get("pdf_note"):
        print(f"no PDF: {paths['pdf_note']}")
    print(f"(report rendered in {time.perf_counter() - start:.1f}s)")


if __name__ == "__main__":
    sys.exit(main())
