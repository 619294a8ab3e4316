"""The `verify` command: check every statement of a derivation written in LaTeX
(the bundled note, or a file: .md, .tex or .ipynb), regenerate the note's numeric module from the
proved expressions, and write the report.

After the progress it says what is wrong with the note: which lines, why, a
counterexample or the failing product, and the proved correction.  Engines
that disagree on a claim (one proves it, another refutes it or finds it
ill-typed) get the runner's verdict "conflict": an engine error, exit status 2,
each engine's evidence on stderr, and nothing written.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from pathlib import Path

from reports import findings, render
from reports.files import unwritable, write_all
from reports.findings import plural

from ..engines import TIME_LIMIT, EngineCrash
from ..engines.verdicts import CONFLICT, EngineDefect
from ..latex.errors import DerivationErrors
from ..running.cache import ProofCache, default_dir
from ..running.runner import FROM_CACHE, REPAIR_BUDGET, REPAIR_LINE_CAP, load_document
from . import numpy_module
from .assembly import run

EXIT_CODES = """\
exit status:
  0  every statement the derivation relies on is proved (as written, or through
     its proved correction)
  1  some statement the derivation relies on is not proved
  2  usage error, a derivation file that does not read (each error located),
     an engine error, or engines that disagree (verdict "conflict");
     nothing is written
"""
MARKS = {"proved": "✓", "refuted": "✗", "ill-typed": "⊥", CONFLICT: "≠", "inconclusive": "?", "checked": "~"}


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 (no limit) or a positive number of seconds, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="verify", description=__doc__.split("\n\n")[0], epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", nargs="?", type=Path, metavar="FILE",
                   help="a derivation file, .md, .tex or .ipynb (docs/derivation-format.md); default: the bundled note")
    p.add_argument("--out", type=Path, default=None,
                   help="directory for report.json, report.html, report.tex, report.pdf "
                        "(default: reports/out for the note, reports/out/<file stem> for a file)")
    p.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1,
                   help="worker processes (default: the number of cores)")
    p.add_argument("--time-limit", type=_seconds, default=TIME_LIMIT, metavar="SECONDS",
                   help=f"stop an engine after this long on one claim, leaving it inconclusive (default {TIME_LIMIT:g}; "
                        "0: no limit)")
    p.add_argument("--no-cache", action="store_true", help="prove everything again, ignoring cached proofs")
    p.add_argument("--cache-dir", type=Path, default=None, help=f"proof cache directory (default: {default_dir()})")
    p.add_argument("--only", nargs="+", metavar="ID", help="prove only these claims (a block's id stands for every link of its chain; no code, no report files)")
    p.add_argument("--list", action="store_true", help="print the claim ids with their labels, prove nothing")
    p.add_argument("--no-codegen", action="store_true",
                   help="write no NumPy module (the note's numeric/rnn_core.py; a file's <out>/<stem>.py)")
    p.add_argument("--no-repairs", action="store_true",
                   help="do not search for repairs of the wrong lines (derivations/analyses/repair.py)")
    p.add_argument("--repair-budget", type=float, default=None, metavar="SECONDS",
                   help=f"seconds of repair search for the file's wrong lines, shared (default {REPAIR_BUDGET:g}; "
                        f"one line gets at most {REPAIR_LINE_CAP / REPAIR_BUDGET:g} of it); a search an earlier "
                        "run cut short goes on from where it stopped when this budget gives its line more time")
    p.add_argument("--quiet", action="store_true", help="print only what is wrong: the summary sentence and the wrong lines")
    return p


# ---------------------------------------------------------------- progress

class Progress:
    """One updating line (a tqdm bar) on a terminal; one plain line per claim otherwise (logs, CI)."""

    def __init__(self, total: int, quiet: bool, stream=None):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.bar = None
        if not quiet and self.stream.isatty():
            from tqdm import tqdm
            # Redraw at every claim (47 redraws): a slow claim must not hide the one before it.
            self.bar = tqdm(total=total, file=self.stream, unit="statement", dynamic_ncols=True, leave=False,
                            mininterval=0)

    def __call__(self, cid, result, cached, done, total):
        if self.quiet:
            return
        verdict = result["verdict"]
        tag = " (cached)" if cached else ""
        if self.bar is not None:
            self.bar.set_postfix_str(f"{MARKS.get(verdict, '?')} {cid}", refresh=False)
            self.bar.update(1)
            return
        print(f"[{done:>2}/{total}] {MARKS.get(verdict, '?')} {verdict:<12} {cid:<28} "
              f"{result['seconds']:6.2f}s{tag}", file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def timing(report: dict) -> dict:
    """Proving time spent in this run apart from proofs taken from the cache (each claim's `origin`)."""
    items = [(c["seconds"], c.get("origin") == FROM_CACHE) for c in report["claims"]]

    def total(from_cache):
        chosen = [s for s, hit in items if hit == from_cache]
        return {"proofs": len(chosen), "seconds": round(sum(chosen), 2)}
    return {"wall_seconds": report["total_seconds"], "proved_now": total(False), "from_cache": total(True)}


# ---------------------------------------------------------------- what is wrong, in words

def summary(report: dict, known: dict) -> str:
    """The headline sentence, then one block per wrong statement (the refuted ones first)."""
    blocks = [_wrap(findings.headline(report), "")]
    by_id = {c["id"]: c for c in report["claims"]}
    for c in findings.wrong_claims(report):
        blocks.append(_wrong_line(report, c, by_id, known))
    return printable("\n\n".join(blocks))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Text from a derivation file, safe for a terminal: control characters (an escape sequence
    could rewrite the screen or the title) shown as U+FFFD."""
    return _CONTROL.sub("\ufffd", text)


def _wrong_line(report: dict, c: dict, by_id: dict, known: dict) -> str:
    at = f", line {c['line']}" if c.get("line") else ""
    if c.get("cell") is not None:           # a notebook's claim: its cell, the line in that cell
        at = f", cell {c['cell']}{at}"
    sev = f" ({c['severity']})" if c.get("severity") else ""
    lines = [f"{MARKS.get(c['verdict'], '?')} {c['verdict']}{sev}: {c['label']}  [{c['id']}{at}]"]
    if c.get("comment"):
        lines.append(_wrap(findings.plain(c["comment"]), "    why: "))
    lines.append(_wrap(findings.plain(c["reason"]), "    found: " if c.get("counterexample") else "    what fails: "))
    if c.get("layout"):
        lines.append(_wrap(findings.plain(c["layout"]), "    layout: "))
    if c.get("other_reading"):
        lines.append(_wrap(findings.plain(c["other_reading"]), "    reading: "))
    lines += _repairs(c)
    if c.get("counterexample"):
        lines += _counterexample(findings.counterexample_view(c["counterexample"], c.get("source") == "latex"))
    for fix in findings.corrections(c, by_id, known):
        state = fix["verdict"] if fix["checked"] else "not checked in this run: add it to --only"
        lines.append(f"    write instead ({state}): {fix['label']}  [{fix['id']}]")
        lines.append(_wrap(fix["latex"], "        "))
    if not c.get("corrected_by"):
        words = findings.no_correction(report, c)
        lines.append(_wrap(words[:1].lower() + words[1:].rstrip("."), "    "))
    return "\n".join(lines)


def _repairs(c: dict) -> list[str]:
    """The best repair found by search ("fix: <edit>: <latex>"), how many others, or why there is none."""
    search = c.get("search")
    if search is None:
        return []
    if "skipped" in search:
        return [_wrap("no repair searched: " + search["skipped"], "    fix: ")]
    best = findings.best_repair(c)
    rhs = findings.derived(c)
    words = findings.derived_words(rhs) if rhs else ""
    derived = [_wrap(rhs["rhs"], "    " + words[:1].lower() + words[1:] + ": ", "        ")] if rhs else []
    if best is None:
        cut = (" (the search was cut short by its time budget; a rerun with a larger --repair-budget goes on from "
               "where it stopped)") if search.get("budget_exhausted") else ""
        return [_wrap(f"no edit of the line found that the engines prove{cut}", "    fix: "), *derived]
    lines = [_wrap(f"{best['edit']}: {best['latex']}", "    fix: ", "        "), *derived]
    others = c.get("repairs", [])[1:]
    if others:
        lines.append(_wrap("also proved: " + "; ".join(f"{r['edit']}: {r['latex']}" for r in others),
                           "        ", "        "))
    if search.get("expressible"):
        lines.append(_wrap(f"(searched on the part the notation expresses; not expressed: {findings.plain(search['not_expressed'])})",
                           "        "))
    return lines


def _counterexample(cx: dict) -> list[str]:
    where = ", ".join(x for x in (cx["at"], cx["quantity"], cx["where"]) if x)
    relative = f" (relative difference {cx['relative']})" if cx["relative"] else ""
    lines = [f"    counterexample at {where}:",
             "        " + ", ".join(f"{words} {value}" for words, value in cx["sides"]) + relative]
    if not cx["clear"]:
        lines.append("        (no input tried makes the two sides differ by 10% or more; this is the clearest)")
    inputs = [f"{name} = {findings.matrix_text(rows)}" for name, rows in cx["matrices"]]
    inputs += [f"{name} = {value}" for name, value in cx["scalars"]]
    # Fold between inputs, never inside one: its spaces are non-breaking while folding.
    if not inputs:                  # the sizes and indices alone decide it (softmax of one entry is 1)
        lines.append("        for every value of the inputs")
        return lines
    text = _wrap(", ".join(i.replace(" ", NBSP) for i in inputs), "        with ", "             ")
    lines.append(text.replace(NBSP, " "))
    return lines


def conflicts(report: dict) -> str:
    """The engine error for the claims with the runner's verdict "conflict": each engine that
    proves or refutes the claim, with its evidence."""
    ids = [c["id"] for c in report["claims"] if c["verdict"] == CONFLICT]
    head = (f"verify: engine error: the engines disagree on {plural(len(ids), 'statement')} "
            f"(verdict conflict: {', '.join(ids)}); nothing was written")
    lines = [head]
    for c in (c for c in report["claims"] if c["verdict"] == CONFLICT):
        lines.append(f"  {c['label']}  [{c['id']}]:")
        for m in c.get("conflict") or []:
            lines.append(_wrap(f"{m['method']}: {m['verdict']} -- {findings.plain(m['reason'])}", "    ", "      "))
            cx = m.get("counterexample")
            if cx:
                i, j = cx["entry"]
                where = ", ".join(x for x in (cx.get("at"), cx.get("quantity"), f"row {i + 1}, column {j + 1}") if x)
                # Fold between inputs, never inside one: its spaces are non-breaking while folding.
                inputs = ", ".join(f"{name} = {value}".replace(" ", NBSP) for name, value in cx["values"].items())
                text = _wrap(f"the line gives {cx['claimed']}, the truth is {cx['truth']}, with {inputs}",
                             f"      counterexample at {where}: ", "        ")
                lines.append(text.replace(NBSP, " "))
    return printable("\n".join(lines))


NBSP = "\u00a0"


def _wrap(text: str, first: str, rest: str | None = None, width: int = 100) -> str:
    """`text` after `first`, folded at spaces to `width` columns, continued after `rest`."""
    rest = " " * len(first) if rest is None else rest
    lines, line = [], first
    for word in text.split(" "):
        if len(line) + len(word) > width and line.strip():
            lines.append(line.rstrip())
            line = rest
        line += word + " "
    lines.append(line.rstrip())
    return "\n".join(lines)


def counts_line(report: dict) -> str:
    counts = ", ".join(f"{n} {v}" for v, n in report["summary"].items())
    line = f"{plural(len(report['claims']), 'statement')}: {counts}."
    read = [c["id"] for c in report["claims"] if c.get("notes") and not c.get("reading")]
    checked = report["summary"].get("checked", 0)
    if checked:
        line += (f" Checked is not proved: equal at the sizes and lengths tried, and no engine proves "
                 f"{'it' if checked == 1 else 'them'} for every size and T.")
    if read:
        line += (f" Note: {', '.join(read)} differentiate{'s' if len(read) == 1 else ''} a quantity at a step with "
                 "the earlier steps held fixed (see the report, and docs/derivation-format.md).")
    return line


# ---------------------------------------------------------------- outputs

REPORT_FILES = ("report.json", "report.html", "report.tex", "report.pdf")


def _check_outputs(p, args) -> None:
    """Every place `verify` will write is usable, before any proving (exits 2 otherwise)."""
    problem = unwritable(args.out)
    if problem is None and args.out.exists():
        clash = [n for n in REPORT_FILES if (args.out / n).is_dir()]
        problem = f"{args.out / clash[0]} is a directory" if clash else None
    if problem:
        p.error(f"--out {args.out}: {problem}")
    if not args.no_codegen and args.note:
        problem = unwritable(numpy_module.NOTE_MODULE.parent)
        if problem:
            p.error(f"cannot regenerate {numpy_module.NOTE_MODULE} ({problem}); use --no-codegen to skip it")


def verdicts_by_id(report) -> dict:
    """Each claim's verdict, and each chain's (a block a = b = c is proved when every link is)."""
    verdicts = {c["id"]: c["verdict"] for c in report["claims"]}
    groups: dict = {}
    for c in report["claims"]:
        groups.setdefault(c.get("group") or c["id"], []).append(c["verdict"])
    for group, vs in groups.items():
        verdicts.setdefault(group, "proved" if all(v == "proved" for v in vs) else next(v for v in vs if v != "proved"))
    return verdicts


def _generate_module(doc, report) -> str | None:
    """The note's module's new source (numeric/rnn_core.py, not written yet), or None when it cannot be made."""
    try:
        source, info = numpy_module.module_for(doc, report, numpy_module.NOTE_COMMAND)
    except Exception as e:  # noqa: BLE001 - a generator bug must not cost the report
        source, info = None, {"error": f"the generator failed ({type(e).__name__}: {e})", "claims_used": []}
    if source is None:
        print(printable(f"numeric module NOT regenerated: {info['error']}"), file=sys.stderr)
        report["numeric_module"] = {"path": None, **info}
        return None
    report["numeric_module"] = {"path": "numeric/rnn_core.py", **info}
    return source


def _file_module(doc, report, out: Path) -> dict:
    """{path: bytes} of a file's NumPy module (<out>/<stem>.py), or {} with the reason on stderr and in
    report.json: a file the generator cannot translate still gets its report."""
    path = out / (doc.path.stem + ".py")
    try:
        source, info = numpy_module.module_for(doc, report)
    except Exception as e:  # noqa: BLE001 - a generator bug must not cost the report
        source, info = None, {"error": f"the generator failed ({type(e).__name__}: {e})", "claims_used": []}
    if source is None:
        print(printable(f"no NumPy module written: {info['error']}"), file=sys.stderr)
        report["numeric_module"] = {"path": None, **info}
        return {}
    report["numeric_module"] = {"path": str(path), **info}
    return {path: source.encode()}


def _render(report, out: Path, code: str | None) -> tuple[dict, str]:
    """Every output file in memory: {path: bytes}, and how the PDF was made."""
    files, pdf_note = render.render_reports(report, code)
    rendered = {out / name: data for name, data in files.items()}
    rendered[out / "report.json"] = (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode()
    return rendered, pdf_note


def exit_status(report: dict) -> int:
    """2 when the engines disagree on a claim (the runner's verdict "conflict"), else 0 or 1."""
    if any(c["verdict"] == CONFLICT for c in report["claims"]):
        return 2
    return 0 if report["ok"] else 1


# ---------------------------------------------------------------- main

def _document(p, args):
    """The derivation to check; a file that does not read is exit 2 with every error located."""
    try:
        return load_document(args.file)
    except DerivationErrors as e:
        print(printable(str(e)), file=sys.stderr)
        n = len(e.errors)
        print(f"verify: {plural(n, 'error')} in {args.file or 'the note'}; nothing was checked or written",
              file=sys.stderr)
        return None


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.file is not None and not args.file.is_file():
        p.error(f"FILE: {args.file} is {'a directory' if args.file.is_dir() else 'no file'}; give a derivation "
                "file (.md, .tex or .ipynb)")
    doc = _document(p, args)
    if doc is None:
        return 2
    if args.out is None:
        args.out = Path("reports/out") if doc.is_note else Path("reports/out") / doc.path.stem
    args.note = doc.is_note
    fields = doc.fields
    if args.list:
        width = max(map(len, fields), default=0)
        for cid, f in fields.items():
            print(printable(f"{cid:<{width}}  {f['label']}"))
        return 0
    if args.only:
        # A block's id (a chain's group) stands for its links.
        args.only = list(dict.fromkeys(x for cid in args.only for x in
                                       ([cid] if cid in fields else
                                        [k for k, f in fields.items() if f.get("group") == cid] or [cid])))
        unknown = [cid for cid in args.only if cid not in fields]
        if unknown:
            p.error(f"--only: unknown claim id(s) {', '.join(unknown)}; see verify --list")
    else:
        _check_outputs(p, args)

    say = (lambda *a, **k: None) if args.quiet else print
    ids = args.only or doc.ids
    what = "the note" if doc.is_note else str(args.file)
    say(f"Proving {plural(len(ids), 'statement')} of {what} on "
        f"{plural(args.jobs, 'process', 'processes')}...", flush=True)
    cache = ProofCache(args.cache_dir, enabled=not args.no_cache)
    progress = Progress(len(ids), args.quiet)
    try:
        report = run(args.only, jobs=args.jobs, cache=cache, progress=progress, document=doc,
                     time_limit=args.time_limit, repairs=not args.no_repairs,
                     repair_budget=REPAIR_BUDGET if args.repair_budget is None else args.repair_budget)
    except (EngineDefect, EngineCrash) as e:   # a "counterexample" the model does not confirm, an engine bug
        progress.close()
        print(printable(f"verify: engine error: {e}; nothing was written"), file=sys.stderr)
        return 2
    except Exception:  # noqa: BLE001 - an engine bug of any kind: say so, write nothing
        progress.close()
        traceback.print_exc()
        print("verify: engine error (see above); nothing was written", file=sys.stderr)
        return 2
    progress.close()
    report["timing"] = timing(report)

    known = {cid: {"label": f["label"], "latex": f["latex"]} for cid, f in fields.items()}
    say()
    print(summary(report, known))
    say()
    say(counts_line(report))
    say(f"Time: {findings.timing_text(report)}.")
    status = exit_status(report)
    if status == 2:
        print(conflicts(report), file=sys.stderr)
        return 2
    if args.only:
        return status

    code = None if args.no_codegen or not doc.is_note else _generate_module(doc, report)
    module = {} if args.no_codegen or doc.is_note else _file_module(doc, report, args.out)
    try:
        files, pdf_note = _render(report, args.out, code)
    except Exception as e:  # noqa: BLE001 - a rendering bug must not pass for a verdict
        print(f"verify: the report could not be rendered, nothing was written: {e}", file=sys.stderr)
        return 2
    if code is not None:
        files[numpy_module.NOTE_MODULE] = code.encode()
    files.update(module)
    try:
        write_all(files)
    except OSError as e:
        print(f"verify: could not write the outputs, nothing was written: {e}", file=sys.stderr)
        return 2
    if code is not None:
        say("regenerated numeric/rnn_core.py from the proved lines of the note")
    for path in module:
        say(f"wrote the NumPy module {path} (forward pass, loss, gradients by the proved lines)")
    say("wrote " + ", ".join(str(path) for path in files if path.parent == args.out)
        + ("" if "report.pdf" in {p.name for p in files} else f" (no PDF: {pdf_note})"))
    return status


if __name__ == "__main__":
    sys.exit(main())
