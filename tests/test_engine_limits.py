"""An engine that crashes or runs away on a claim: named, bounded, never a verdict.

A derivation file may make an engine raise (a bug of the tool) or explode (a
claim whose symbolic cost grows past reason).  The first must stop `verify`
with exit status 2 naming the file, line, claim and engine, and write nothing;
the second must end, at the time limit, with that engine inconclusive on that
claim -- and such a result is not cached, since a faster run may decide it.
"""
import pytest

from derivations.engines.verdicts import INCONCLUSIVE
from derivations.outputs import assembly
from derivations.outputs.cli import main
from derivations.running import runner
from derivations.running.cache import ProofCache

FILE = r"""# Lemma

$$ W \in \mathbb{R}^{m \times n}, \quad h \in \mathbb{R}^{n}, \quad \ell \in \mathbb{R} $$

$$ z := W h, \quad dz \in \mathbb{R}^{m}, \quad dz := \frac{\partial \ell}{\partial z} $$

$$ \frac{\partial \ell}{\partial h} = W^T dz \tag{dh} $$
"""


def _with_engine(monkeypatch, engine):
    monkeypatch.setattr(runner, "_parsed_engines", lambda: [("runaway", engine)])


def _spin(ctx, claim):
    while True:
        pass


def _crash(ctx, claim):
    return None + 1


def test_an_engine_past_the_time_limit_leaves_the_claim_inconclusive_and_uncached(tmp_path, monkeypatch):
    path = tmp_path / "lemma.md"
    path.write_text(FILE)
    _with_engine(monkeypatch, _spin)
    cache = ProofCache(tmp_path / "cache")
    doc = runner.load_document(path)
    report = assembly.run(jobs=1, cache=cache, document=doc, time_limit=0.5)
    (claim,) = report["claims"]
    assert claim["verdict"] == INCONCLUSIVE and "time limit" in claim["methods"][0]["reason"]
    assert cache.get(claim["id"], runner.parsed_key(*doc.parsed[claim["id"]])) is None


def test_an_engine_that_raises_stops_verify_naming_the_claim_and_writes_nothing(tmp_path, monkeypatch, capsys):
    path = tmp_path / "lemma.md"
    path.write_text(FILE)
    _with_engine(monkeypatch, _crash)
    out = tmp_path / "out"
    assert main([str(path), "--jobs", "1", "--no-cache", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7: dh" in err and "runaway engine failed: TypeError" in err
    assert not out.exists()


@pytest.mark.parametrize("bad", ["-1", "soon", "inf"])
def test_time_limit_must_be_a_number_of_seconds(bad, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--time-limit", bad, "--list"])
    assert e.value.code == 2 and "--time-limit" in capsys.readouterr().err

