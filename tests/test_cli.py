"""The `verify` command: output, files, exit status, cache, bad options."""
import json
import subprocess
import sys

import pytest

from derivations.cli import main
from derivations.runner import load_claims

CLAIM_FIELDS = {"id", "label", "latex", "kind", "corrects", "verdict", "methods", "shapes", "seconds",
                "counterexample", "reason"}


def verify(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "derivations", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, check=False)


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify")
    out, cache = tmp / "out", tmp / "cache"
    done = verify("--out", str(out), "--cache-dir", str(cache), "--no-codegen", "--jobs", "2")
    return tmp, out, cache, done


def test_cold_run_proves_the_note_and_writes_report_json(cold):
    _, out, _, done = cold
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    assert {"python", "sympy", "numpy"} <= set(report["versions"])
    assert report["total_seconds"] > 0
    assert [c["id"] for c in report["claims"]] == list(load_claims())
    for c in report["claims"]:
        assert CLAIM_FIELDS <= set(c), c["id"]
        assert c["kind"] in ("as-written", "corrected", "supporting")
        assert c["verdict"] in ("proved", "refuted", "ill-typed", "inconclusive")
    assert report["summary"] == {v: sum(c["verdict"] == v for c in report["claims"])
                                 for v in ("proved", "refuted", "ill-typed", "inconclusive", "conflict")}
    assert report["summary"]["conflict"] == 0 and report["conflicts"] == []
    # Progress lines and a summary table, one line per claim.
    for c in report["claims"]:
        assert c["id"] in done.stdout and c["label"] in done.stdout
    assert "every statement relied on is proved" in done.stdout


def test_warm_run_uses_the_cache(cold):
    _, out, cache, _ = cold
    again = verify("--out", str(out), "--cache-dir", str(cache), "--no-codegen")
    assert again.returncode == 0
    report = json.loads((out / "report.json").read_text())
    assert report["cache"]["misses"] == 0 and report["cache"]["hits"] > len(report["claims"])  # + the induction
    assert again.stdout.count("(cached)") == len(report["claims"])


def test_corrupt_cache_entry_is_ignored_and_reproved(cold):
    _, out, cache, _ = cold
    entries = sorted(cache.glob("*.json"))
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


def test_exit_status_1_when_a_relied_on_line_is_not_proved(capsys):
    # Alone, the as-written dh_{t-1} line has no proved correction beside it.
    assert main(["--only", "bptt-dh_prev", "--jobs", "1", "--no-cache"]) == 1
    assert "refuted" in capsys.readouterr().out


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


def test_out_that_is_a_file_exits_2_and_writes_nothing(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SystemExit) as e:
        main(["--out", str(target)])
    assert e.value.code == 2 and "--out" in capsys.readouterr().err
    assert target.read_text() == "x"
