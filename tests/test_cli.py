"""The `verify` command: what it says, files, exit status, cache, bad options."""
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest_report import launch_chromium, require, sample_report, sync_playwright_or_skip

from derivations.outputs import cli, numpy_module
from derivations.outputs.assembly import run
from derivations.outputs.cli import main
from derivations.running.cache import ProofCache
from derivations.running.runner import load_document
from reports import findings

CLAIM_FIELDS = {"id", "label", "latex", "kind", "corrects", "verdict", "methods", "shapes", "seconds",
                "counterexample", "reason"}
# The desktop page and the PDF were 41,770 px and 40 pages before the report led with what is wrong;
# a reader now gets the same in about a third of that (35%: the note has 64 claims since its last Python
# builders were read from LaTeX, five more than then -- the softmax gradient's chains, Comment 1 per weight).
MAX_DESKTOP_HEIGHT, MAX_PDF_PAGES = 41_770 * 35 // 100, 15


def verify(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "derivations", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, check=False)


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify")
    out, cache = tmp / "out", tmp / "cache"
    done = verify("--out", str(out), "--cache-dir", str(cache), "--no-codegen", "--jobs", "2")
    return tmp, out, cache, done


@pytest.fixture()
def module_path(tmp_path, monkeypatch):
    """Where `verify` regenerates the numeric module: a scratch path, never the repository's file."""
    path = tmp_path / "numeric" / "rnn_core.py"
    monkeypatch.setattr(numpy_module, "NOTE_MODULE", path)
    return path


def test_cold_run_proves_the_note_and_writes_report_json(cold):
    _, out, _, done = cold
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    assert {"python", "sympy", "numpy"} <= set(report["versions"])
    assert report["total_seconds"] > 0
    assert [c["id"] for c in report["claims"]] == load_document().ids
    for c in report["claims"]:
        assert CLAIM_FIELDS <= set(c), c["id"]
        assert c["kind"] in ("as-written", "corrected", "supporting")
        assert c["verdict"] in ("proved", "refuted", "ill-typed", "inconclusive")
    assert report["summary"] == {v: sum(c["verdict"] == v for c in report["claims"])
                                 for v in ("proved", "refuted", "ill-typed", "inconclusive", "conflict", "checked")}
    assert report["summary"]["conflict"] == 0 and report["conflicts"] == []
    # A plain progress line per claim (not a terminal), then what is wrong.
    for c in report["claims"]:
        assert re.search(rf"^\[\s*\d+/{len(report['claims'])}\] .* {re.escape(c['id'])} ", done.stdout, re.MULTILINE), c["id"]
    assert report["timing"]["proved_now"]["proofs"] == len(report["claims"])
    assert {c["origin"] for c in report["claims"]} == {"this run"}
    assert report["timing"]["from_cache"]["proofs"] == 0


def test_after_progress_the_terminal_says_what_is_wrong_why_and_the_fix(cold):
    _, out, _, done = cold
    report = json.loads((out / "report.json").read_text())
    after = done.stdout.split("\n\n", 1)[1]                  # what follows the progress
    first_screen = "\n".join(after.splitlines()[:6])
    wrong = findings.wrong_claims(report)
    assert wrong, "the note has wrong lines; the summary must name them"
    for c in wrong:                                          # the headline names every wrong line
        assert f"“{c['label']}”" in " ".join(first_screen.split())
    # One block per wrong line, refuted ones first (a refuted line computes a wrong value).
    blocks = [b for b in after.split("\n\n")
              if re.match(r"^\S [a-z-]+(?: \((?:substantive|notation)\))?: .*\]$", b.splitlines()[0])]
    assert [re.search(r"\[([\w.-]+)(?:, line \d+)?\]$", b.splitlines()[0]).group(1) for b in blocks] == \
        [c["id"] for c in wrong]
    # Substantive errata first, then notation slips; within each, refuted before ill-typed.
    ranks = [(findings.severity_rank(c), findings.severity(c["verdict"])) for c in wrong]
    assert ranks == sorted(ranks)
    assert {c["severity"] for c in wrong if c["kind"] == "as-written"} == {"substantive", "notation"}
    by_id = {c["id"]: c for c in report["claims"]}
    for block, c in zip(blocks, wrong):
        assert c["label"] in block and c["verdict"] in block and f"({c['severity']})" in block
        best = findings.best_repair(c)
        if best is not None:           # the best repair found by search, under the reason
            assert f"fix: {best['edit']}: " in block
            assert " ".join(best["latex"].split()) in " ".join(block.replace("\n        ", " ").split())
        if c["comment"]:
            assert "why: " + " ".join(c["comment"].split()[:5]) in " ".join(block.split())
        for fix in c["corrected_by"]:
            assert f"write instead ({by_id[fix]['verdict']}): {by_id[fix]['label']}  [{fix}]" in block
        cx = c["counterexample"]
        if cx:
            assert (f"the line gives {cx['claimed']}, the truth is {cx['truth']}" if c["source"] == "python" else
                    f"the left-hand side is {cx['truth']}, the right-hand side {cx['claimed']}") in block
            assert f"relative difference {findings.percent(cx['relative_difference'])}" in block
            for name, value in cx["values"].items():
                assert value in block, name
        else:
            assert "what fails: " in block
    words = " ".join(after.split())                          # the summary is wrapped at the terminal's width
    assert "as written" in words and ("relies on corrections" in words or "has a proved correction" in words)


def test_warm_run_uses_the_cache_and_says_so(cold):
    _, out, cache, _ = cold
    again = verify("--out", str(out), "--cache-dir", str(cache), "--no-codegen")
    assert again.returncode == 0
    report = json.loads((out / "report.json").read_text())
    assert report["cache"]["misses"] == 0 and report["cache"]["hits"] >= len(report["claims"])
    assert {c["origin"] for c in report["claims"]} == {"cache"}
    assert again.stdout.count("(cached)") == len(report["claims"])
    timing = report["timing"]
    assert timing["proved_now"] == {"proofs": 0, "seconds": 0} and timing["from_cache"]["proofs"] == len(report["claims"])
    assert timing["from_cache"]["seconds"] > 0
    html = (out / "report.html").read_text()
    assert f"{timing['from_cache']['seconds']:.1f} s)" in html and "proving in this run 0.0 s (0 proofs)" in html


def test_the_real_report_is_short(cold):
    """The desktop page at 1280 px and the PDF: about a third of what they were."""
    _, out, _, _ = cold
    if (out / "report.pdf").exists() or shutil.which("pdflatex"):
        require(shutil.which("pdfinfo") is not None, "pdfinfo (poppler-utils)")
        info = subprocess.run(["pdfinfo", str(out / "report.pdf")], capture_output=True, text=True, check=True).stdout
        assert int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1)) <= MAX_PDF_PAGES
    sync_playwright = sync_playwright_or_skip()
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto((out / "report.html").resolve().as_uri())
            height = page.evaluate("document.documentElement.scrollHeight")
            page.set_viewport_size({"width": 400, "height": 800})
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        finally:
            browser.close()
    assert height <= MAX_DESKTOP_HEIGHT and overflow <= 0


def test_corrupt_cache_entry_is_ignored_and_reproved(cold):
    _, out, cache, _ = cold
    # Entries of claims (a repair's re-check, `<id>~repair`, is cached by the worker and counted there, not
    # in the report: which entries come first by file name changes with every change of the sources).
    # (Only entries of claims: a diagnosis's, a search's and a wrong line's notes ("repair: <id>",
    # "notes: <id>") have no verdict to tamper with.)
    entries = [p for p in sorted(cache.glob("*.json")) if "~" not in json.loads(p.read_text())["claim"]
               and "verdict" in json.loads(p.read_text())["result"]]
    entries[0].write_text("{not json")
    entry = json.loads(entries[1].read_text())
    entry["result"]["verdict"] = "proved" if entry["result"]["verdict"] != "proved" else "refuted"
    entries[1].write_text(json.dumps(entry))       # tampered: checksum no longer matches
    again = verify("--out", str(out), "--cache-dir", str(cache), "--no-codegen")
    report = json.loads((out / "report.json").read_text())
    assert report["cache"]["rejected"] == 2
    fresh = json.loads((cold[1] / "report.json").read_text())
    assert again.returncode == 0 and report["ok"] and fresh["summary"] == report["summary"]


def test_no_cache_forces_a_full_reproof(cold):
    tmp, _, cache, _ = cold
    rc = main(["--out", str(tmp / "nc"), "--cache-dir", str(cache), "--no-cache", "--no-codegen", "--quiet",
               "--jobs", "2"])
    report = json.loads((tmp / "nc" / "report.json").read_text())
    assert rc == 0 and report["cache"]["hits"] == 0


def test_quiet_prints_only_the_summary_and_the_wrong_lines(cold, capsys, module_path):
    tmp, _, cache, _ = cold
    assert main(["--out", str(tmp / "quiet"), "--cache-dir", str(cache), "--quiet"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp / "quiet" / "report.json").read_text())
    wrong = findings.wrong_claims(report)
    named = set(re.findall(r"\[([\w.-]+)(?:, line \d+)?\]$", printed, re.MULTILINE))
    assert named == {c["id"] for c in wrong} | {fix for c in wrong for fix in c["corrected_by"]}
    assert printed.startswith(findings.headline(report).split()[0])
    for noise in ("Proving", "(cached)", "wrote", "regenerated", "Time:", "statements:"):
        assert noise not in printed, noise
    assert module_path.exists()                      # quiet, but it still does its work


def test_only_prints_why_the_counterexample_and_the_correction(tmp_path, capsys):
    # Alone, the as-written dh_{t-1} line has no proved correction beside it: exit status 1.
    cid = "bptt-dh_prev"
    assert main(["--only", cid, "--jobs", "1", "--cache-dir", str(tmp_path)]) == 1
    printed = capsys.readouterr().out
    entry = run([cid], jobs=1, cache=ProofCache(tmp_path))["claims"][0]   # the same proof, from the cache
    cx = entry["counterexample"]
    assert entry["verdict"] == "refuted" and cx["clear_margin"]
    # A parsed line is two sides the author wrote: its values are named by side.
    assert f"the left-hand side is {cx['truth']}, the right-hand side {cx['claimed']}" in printed
    assert f"[{cid}, line {entry['line']}]" in printed
    doc = load_document()
    assert " ".join(doc.fields[cid]["comment"].split()) in " ".join(printed.split())
    for fix in doc.fields[cid]["corrected_by"]:
        assert f"[{fix}]" in printed and "not checked in this run" in printed


def test_only_a_blocks_id_checks_every_link_and_says_it_checked_a_part(tmp_path, capsys):
    links = [cid for cid, f in load_document().fields.items() if f["group"] == "lemma1-chain"]
    assert len(links) > 1
    assert main(["--only", "lemma1-chain", "--jobs", "1", "--cache-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert all(cid in printed for cid in links)
    assert f"Every checked statement ({len(links)} of {len(load_document().ids)})" in printed


def test_list_prints_ids_and_labels_and_proves_nothing(capsys):
    assert main(["--list"]) == 0
    printed = capsys.readouterr().out
    for cid, f in load_document().fields.items():
        assert re.search(rf"^{re.escape(cid)}\s+{re.escape(f['label'])}$", printed, re.MULTILINE), cid
    assert "Proving" not in printed


def test_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for code in ("0", "1", "2"):
        assert re.search(rf"^\s+{code}\s+\S", text, re.MULTILINE), code
    assert "conflict" in text and "--list" in text


def test_progress_is_one_updating_line_on_a_terminal_and_plain_lines_otherwise():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    results = [("a", {"verdict": "proved", "seconds": 0.1}), ("b", {"verdict": "refuted", "seconds": 0.2})]
    for stream, tty in ((Terminal(), True), (io.StringIO(), False)):
        progress = cli.Progress(len(results), quiet=False, stream=stream)
        for done, (cid, result) in enumerate(results, start=1):
            progress(cid, result, cached=done == 1, done=done, total=len(results))
        progress.close()
        text = stream.getvalue()
        if tty:
            assert "\r" in text and "[ 1/2]" not in text and "2/2" in text
        else:
            assert text.splitlines()[0].startswith("[ 1/2] ✓ proved") and "(cached)" in text.splitlines()[0]
            assert "\r" not in text and len(text.splitlines()) == 2


@pytest.mark.parametrize("args,needle", [
    (["--jobs", "0"], "--jobs"),
    (["--jobs", "two"], "--jobs"),
    (["--only", "no-such-claim"], "no-such-claim"),
    (["--frobnicate"], "--frobnicate"),
])
def test_bad_options_exit_2_with_a_clear_message(args, needle, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2
    assert needle in capsys.readouterr().err


# --- nothing is written when verify exits 2 ------------------------------------------------

def _unwritable_places(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    places = [a_file, a_file / "below"]
    if Path("/sys/kernel").is_dir():
        places.append(Path("/sys/kernel"))       # root passes os.access there, and still cannot write
    return places


def test_unwritable_out_exits_2_before_proving_and_writes_nothing(tmp_path, capsys, module_path):
    for out in _unwritable_places(tmp_path):
        with pytest.raises(SystemExit) as e:
            main(["--out", str(out), "--jobs", "1"])
        printed = capsys.readouterr()
        assert e.value.code == 2 and "--out" in printed.err, out
        assert "Proving" not in printed.out
    assert (tmp_path / "file").read_text() == "x" and not module_path.exists()


def test_unwritable_module_path_exits_2_before_proving(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setattr(numpy_module, "NOTE_MODULE", blocker / "rnn_core.py")
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "out"), "--jobs", "1"])
    printed = capsys.readouterr()
    assert e.value.code == 2 and "--no-codegen" in printed.err and "Proving" not in printed.out
    assert not (tmp_path / "out").exists()


def test_render_failure_exits_2_and_writes_nothing(cold, tmp_path, module_path, monkeypatch):
    _, _, cache, _ = cold

    def broken(*args, **kwargs):
        raise RuntimeError("a rendering bug")
    monkeypatch.setattr("reports.render.render_reports", broken)
    assert main(["--out", str(tmp_path / "out"), "--cache-dir", str(cache), "--quiet"]) == 2
    assert not (tmp_path / "out").exists() and not module_path.exists()


def test_engines_that_disagree_exit_2_and_write_nothing(tmp_path, capsys, module_path, monkeypatch):
    report = sample_report()
    report["claims"][0]["verdict"] = "conflict"
    monkeypatch.setattr(cli, "run", lambda *args, **kwargs: report)
    assert main(["--out", str(tmp_path / "out"), "--no-cache"]) == 2
    printed = capsys.readouterr()
    assert report["claims"][0]["label"] in printed.out and "conflict" in printed.err
    assert not (tmp_path / "out").exists() and not module_path.exists()


def test_written_files_get_ordinary_permissions(cold, tmp_path, module_path):
    import os
    _, _, cache, _ = cold
    old = os.umask(0o022)
    try:
        assert main(["--out", str(tmp_path / "out"), "--cache-dir", str(cache), "--quiet"]) == 0
    finally:
        os.umask(old)
    for path in [*(tmp_path / "out").iterdir(), module_path]:
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_text_from_a_derivation_cannot_drive_the_terminal():
    report = sample_report()
    wrong = next(c for c in report["claims"] if c["verdict"] == "refuted")
    wrong["label"] = "clear \x1b[2J\x1b]0;title\x07 screen"
    wrong["comment"] = "bell \x07 and \x9b31m"
    text = cli.summary(report, {})
    assert "clear \ufffd[2J\ufffd]0;title\ufffd screen" in text
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)


def test_a_derivation_file_that_does_not_read_exits_2_with_located_errors_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.md"
    bad.write_text("# Bad\n\n$$ W \\in \\mathbb{R}^{m \\times n} $$\n\n$$ W = V $$\n\n$$ W = \\oint W $$\n")
    out = tmp_path / "out"
    assert main([str(bad), "--out", str(out), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:5:" in err and "undeclared symbol V" in err
    assert f"{bad}:7:" in err and "unsupported command \\oint" in err
    assert "2 errors" in err and "nothing was checked or written" in err
    assert not out.exists()


def test_a_users_file_is_checked_into_its_own_report(tmp_path):
    src = tmp_path / "tiny.md"
    src.write_text("# Tiny\n\n$$ W \\in \\mathbb{R}^{m \\times n}, \\quad h \\in \\mathbb{R}^{n}, \\quad "
                   "\\ell \\in \\mathbb{R} $$\n\n$$ Z := W h, \\quad dZ \\in \\mathbb{R}^{m}, \\quad "
                   "dZ := \\frac{\\partial \\ell}{\\partial Z} $$\n\n"
                   "$$ \\frac{\\partial \\ell}{\\partial h} = W^T dZ \\tag{dh} $$\n\n"
                   "$$ \\frac{\\partial \\ell}{\\partial W} = h dZ^T \\tag{dW} $$\n")
    done = verify(str(src), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    by_id = {c["id"]: c for c in report["claims"]}
    assert by_id["dh"]["verdict"] == "proved" and by_id["dW"]["verdict"] == "ill-typed"
    assert by_id["dW"]["line"] == 9 and by_id["dW"]["latex"] == "\\frac{\\partial \\ell}{\\partial W} = h dZ^T"
    assert report["document"] == {"path": str(src), "title": "Tiny", "note": False, "statements": 2}
    # A file gets its NumPy module when it defines a loss; this one's ℓ is only declared (an undefined loss).
    assert report["numeric_module"]["path"] is None and "no loss" in report["numeric_module"]["error"]
    assert "no NumPy module written" in done.stderr and not (tmp_path / "out" / "tiny.py").exists()
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"report.json", "report.html", "report.tex"}


TINY = ("# Tiny\n\n$$ W \\in \\mathbb{R}^{m \\times n}, \\quad h \\in \\mathbb{R}^{n}, \\quad "
        "\\ell \\in \\mathbb{R} $$\n\n$$ Z := W h, \\quad dZ \\in \\mathbb{R}^{m}, \\quad "
        "dZ := \\frac{\\partial \\ell}{\\partial Z} $$\n\n"
        "$$ \\frac{\\partial \\ell}{\\partial h} = W^T dZ \\tag{dh} $$\n\n"
        "$$ \\frac{\\partial \\ell}{\\partial W} = h dZ^T \\tag{dW} $$\n")


def test_no_repairs_writes_the_report_of_a_file_with_a_wrong_line(tmp_path, capsys):
    # The report templates read each wrong claim's severity, which only the repair search set:
    # --no-repairs on a file with a wrong line was exit 2, "'dict object' has no attribute 'severity'".
    src = tmp_path / "tiny.md"
    src.write_text(TINY)
    out = tmp_path / "out"
    status = main([str(src), "--out", str(out), "--no-cache", "--no-repairs", "--jobs", "1"])
    printed = capsys.readouterr()
    assert status == 1, printed.out + printed.err
    report = json.loads((out / "report.json").read_text())
    dw = next(c for c in report["claims"] if c["id"] == "dW")
    assert dw["verdict"] == "ill-typed" and dw["repairs"] == [] and dw["search"] == {"skipped": "--no-repairs"}
    assert "no repair searched: --no-repairs" in printed.out
    assert {"report.json", "report.html", "report.tex"} <= {p.name for p in out.iterdir()}


def test_repair_budget_sets_the_files_search_budget(tmp_path, capsys, monkeypatch):
    # --repair-budget is the seconds of search the file's wrong lines share (assembly.run's repair_budget); a
    # search an earlier run cut short resumes when it gives the line more time (runner.resumable).
    from derivations.outputs import assembly, cli
    from derivations.running import runner
    seen = {}
    real = assembly.run

    def spy(*args, **kwargs):
        seen["budget"] = kwargs.get("repair_budget")
        return real(*args, **kwargs)
    monkeypatch.setattr(cli, "run", spy)
    src = tmp_path / "tiny.md"
    src.write_text(TINY)
    main([str(src), "--out", str(tmp_path / "out"), "--no-cache", "--jobs", "1", "--repair-budget", "7.5"])
    assert seen["budget"] == 7.5
    main([str(src), "--out", str(tmp_path / "out"), "--no-cache", "--jobs", "1", "--no-repairs"])
    assert seen["budget"] == runner.REPAIR_BUDGET
    assert runner.line_cap(runner.REPAIR_BUDGET) == runner.REPAIR_LINE_CAP
    assert runner.resumable({"search": {"resume": {"seconds": 3.0}}}, runner.REPAIR_BUDGET)
    assert not runner.resumable({"search": {"resume": {"seconds": 29.5}}}, runner.REPAIR_BUDGET)
    assert runner.resumable({"search": {"resume": {"seconds": 29.5}}}, 2 * runner.REPAIR_BUDGET)
    assert not runner.resumable({"search": {"stopped": "5 repairs found"}}, 1000.0)
    capsys.readouterr()
