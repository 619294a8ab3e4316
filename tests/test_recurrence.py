"""The structural engine for recurrences (derivations/engines/recurrence.py): every size and every T.

The test derivations (tests/derivations/*.md: a GRU, an LSTM through c_{t-1}, the Deep Learning
textbook's tanh RNN, a stacked and a bidirectional RNN, a per-step loss with L = Σ_t ℓ_t) and the
examples through time are written the way textbooks write them.  Each line's truth comes from finite
differences computed here (tests/fd.py: NumPy forward passes, central differences, nothing of the
engines); the verdicts must agree with it: a true line proved for every size and every T, a false one
refuted (with a counterexample that replays) or ill-typed.
"""
from pathlib import Path

import fd
import pytest

from derivations.engines import explicit, recurrence
from derivations.engines.verdicts import CHECKED, ILL_TYPED, PROVED, REFUTED
from derivations.latex.files import read_derivation
from derivations.latex.reader import parse_derivation
from derivations.outputs.assembly import run
from derivations.running import runner
from derivations.running.runner import load_document

ROOT = Path(__file__).resolve().parent.parent
# sizes/: sizes written as numbers (a stacked column, a ones vector, a number that is the size), which the
# generated NumPy modules (test_numpy_module) do not read yet.
FILES = sorted((ROOT / "tests" / "derivations").glob("*.md")) + sorted(
    (ROOT / "tests" / "derivations" / "sizes").glob("*.md")) + [ROOT / "examples" / "min_char_rnn.md",
                                                                ROOT / "examples" / "lstm.md"]


def _truths(path):
    d = read_derivation(path)
    return {c.id: fd.truth(ctx, c) for ctx in d.contexts for c in ctx.claims if c.lhs is not None}


@pytest.fixture(scope="module", params=FILES, ids=lambda p: p.stem)
def checked(request):
    doc = load_document(request.param)
    return doc, run(document=doc, jobs=2, repairs=False), _truths(request.param)


def test_every_verdict_agrees_with_finite_differences(checked):
    doc, report, truths = checked
    assert "true" in {t for t, _ in truths.values()} and {"false", "ill-typed"} & {t for t, _ in truths.values()}
    for c in report["claims"]:
        truth, where = truths[c["id"]]
        if truth == "true":
            assert c["verdict"] == PROVED, (c["id"], c["reason"])
            through_time = doc.parsed[c["id"]][0].has_time
            assert c["scope"] == "for every size" + (" and every T" if through_time else ""), (c["id"], c["scope"])
        elif truth == "false":
            assert c["verdict"] == REFUTED, (c["id"], where, c["reason"])
            assert c["counterexample"] is not None
        else:
            assert c["verdict"] == ILL_TYPED, (c["id"], c["reason"])


def test_a_refutation_replays_from_the_free_inputs(checked):
    doc, report, _ = checked
    for c in report["claims"]:
        if c["verdict"] == REFUTED:
            ctx, claim = doc.parsed[c["id"]]
            explicit.confirm(ctx, claim, dict(c["counterexample"]))      # raises when the sides agree


def test_true_lines_through_time_are_proved_by_the_structural_engine(checked):
    doc, report, truths = checked
    for c in report["claims"]:
        ctx, claim = doc.parsed[c["id"]]
        if truths[c["id"]][0] == "true" and ctx.has_time and recurrence._is_through_time(ctx, claim):
            assert any(m["method"] == recurrence.METHOD and m["verdict"] == PROVED for m in c["methods"]) or \
                any(m["method"] == "all sizes" and m["verdict"] == PROVED for m in c["methods"]), c["id"]


# Files a fresh-eyes trial wrote to make the engine say something false (a backward direction's Jacobians,
# a gradient with respect to a block view, an index past T, a given gradient of a weight, ...).
ADVERSARIAL = sorted((ROOT / "tests" / "derivations" / "adversarial").glob("*.md"))


@pytest.mark.parametrize("path", FILES + ADVERSARIAL, ids=lambda p: p.stem)
def test_the_structural_engine_proves_no_false_line(path, monkeypatch):
    # Without the quick look at numbers, the symbolic path itself must not prove a false line.
    monkeypatch.setattr(recurrence, "_differs_at_numbers", lambda ctx, claim: False)
    monkeypatch.setattr(recurrence, "BUDGET", 20.0)
    truths = _truths(path)
    d = read_derivation(path)
    for ctx in d.contexts:
        for c in ctx.claims:
            if truths[c.id][0] != "true":
                out = recurrence.prove(ctx, c)      # never raises: not applicable is None
                assert out is None or out.verdict != PROVED, (c.id, out.reason)


def test_never_refutes_and_says_why_it_cannot_decide(monkeypatch):
    monkeypatch.setattr(recurrence, "_differs_at_numbers", lambda ctx, claim: False)
    d = read_derivation(ROOT / "tests" / "derivations" / "tanh_rnn.md")
    ctx = d.contexts[0]
    wrong = next(c for c in ctx.claims if c.id == "db-no-diag")
    out = recurrence.prove(ctx, wrong)
    assert out.verdict == "inconclusive" and "never refutes" in out.reason


def test_a_far_reaching_line_is_not_proved_and_is_refuted_past_its_reach():
    # dh_t = ... + W^T dh_{t+8}: exact for every T <= 8, false from T = 9 (issue 15).
    doc = load_document(ROOT / "tests" / "derivations" / "tanh_rnn.md")
    report = run(["dh-t8"], document=doc, jobs=1, repairs=False)
    (c,) = report["claims"]
    assert c["verdict"] == REFUTED and c["counterexample"]["shape"]["T"] >= 9
    assert not report["ok"]


def test_a_line_only_checked_at_small_sizes_is_checked_not_proved(monkeypatch, tmp_path):
    # Without an engine for every T, a true line through time is equal at the sizes tried: "checked",
    # and the exit status does not count it as proved.
    real = runner._parsed_engines
    monkeypatch.setattr(runner, "_parsed_engines",
                        lambda: [(n, e) for n, e in real() if n != recurrence.METHOD])
    doc = load_document(ROOT / "examples" / "min_char_rnn.md")
    report = run(["dh"], document=doc, jobs=1, repairs=False)
    (c,) = report["claims"]
    assert c["verdict"] == CHECKED and "checked, not proved" in c["reason"]
    assert c["scope"].startswith("at the sizes tried")
    assert not report["ok"]


HEAD = r"""# RNN

$$ W \in \mathbb{R}^{H \times H}, \quad U \in \mathbb{R}^{H \times D}, \quad V \in \mathbb{R}^{K \times H}, \quad x_t \in \mathbb{R}^{D}, \quad h_0 \in \mathbb{R}^{H}, \quad k_t \in \{1, \dots, K\} $$

$$ h_t := \tanh(W h_{t-1} + U x_t), \quad o_t := V h_t, \quad p_t := \operatorname{softmax}(o_t) $$
"""


def test_derivatives_are_total_by_default_and_held_fixed_when_declared():
    # The per-step loss's immediate partial: false in the textbook (total) reading, true when the file
    # declares that earlier steps are held fixed.
    body = HEAD + r"""
$$ \ell_t := -\log (p_t)_{k_t} $$

$$ \frac{\partial \ell_t}{\partial W} = \left( (1 - h_t^2) \circ V^{\top} (p_t - e_{k_t}) \right) h_{t-1}^{\top} \tag{partial} $$
"""
    for declared, expected in (("", REFUTED), ("\n> Derivatives: earlier steps held fixed\n", PROVED)):
        d = parse_derivation(body + declared, "u.md")
        ctx, claim = d.contexts[0], d.contexts[0].claims[0]
        assert fd.truth(ctx, claim)[0] == ("true" if expected == PROVED else "false")
        assert explicit.prove(ctx, claim).verdict == expected
        assert claim.depends_on_reading == bool(declared)


def test_an_unknown_reading_of_derivatives_is_an_error():
    from derivations.latex.errors import DerivationErrors
    with pytest.raises(DerivationErrors, match="Derivatives"):
        parse_derivation(HEAD + "\n$$ o_t = V h_t $$\n\n> Derivatives: partial\n", "u.md")


@pytest.mark.parametrize("size", ["256 \\times 784", "1000000 \\times 1000000"])
def test_huge_declared_sizes_give_verdicts_in_seconds(size, tmp_path):
    import subprocess
    import sys
    rows, cols = size.split(" \\times ")
    f = tmp_path / "wide.md"
    f.write_text(rf"""# A wide layer

$$ W \in \mathbb{{R}}^{{{size}}}, \quad x \in \mathbb{{R}}^{{{cols}}}, \quad dz \in \mathbb{{R}}^{{{rows}}}, \quad \ell \in \mathbb{{R}} $$

$$ z := \tanh(W x), \quad dz := \frac{{\partial \ell}}{{\partial z}} $$

$$ \frac{{\partial \ell}}{{\partial x}} = W^{{\top}} ((1 - z^2) \circ dz) \tag{{dx}} $$

$$ \frac{{\partial \ell}}{{\partial x}} = W^{{\top}} dz \tag{{dx-wrong}} $$
""")
    code = ("import json, resource, sys; from derivations.running.runner import load_document; from derivations.outputs.assembly import run; "
            f"r = run(document=load_document({str(f)!r}), jobs=1, repairs=False); "
            "print(json.dumps({c['id']: c['verdict'] for c in r['claims']})); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          check=False)
    assert done.returncode == 0, done.stderr
    verdicts, peak_kb = done.stdout.strip().splitlines()
    assert verdicts == '{"dx": "proved", "dx-wrong": "refuted"}'
    assert int(peak_kb) < 1024 * 1024                                 # under 1 GB


def test_the_notes_bptt_lines_with_its_declared_reading(monkeypatch):
    # The note's ℓ_t is the loss from step t to T (a sum over steps, read through its terms).
    monkeypatch.setattr(recurrence, "_differs_at_numbers", lambda ctx, claim: False)
    d = read_derivation(ROOT / "derivations" / "note" / "note.md")
    ctx = next(c for c in d.contexts if any(x.id == "bptt-dS" for x in c.claims))
    assert ctx.held_fixed
    by_id = {c.id: c for c in ctx.claims}
    for cid in ("bptt-dS", "bptt-dh", "bptt-dX", "bptt-dh_prev-corrected", "bptt-dW_hy", "bptt-dW_xh",
                "bptt-dW_hh-corrected"):
        assert fd.truth(ctx, by_id[cid])[0] == "true"
        assert recurrence.prove(ctx, by_id[cid]).verdict == PROVED, cid
    assert fd.truth(ctx, by_id["bptt-dh_prev"])[0] == "false"
    assert recurrence.prove(ctx, by_id["bptt-dh_prev"]).verdict != PROVED


def test_a_gradient_given_at_one_step_is_an_error():
    from derivations.latex.errors import DerivationErrors
    text = (ROOT / "tests" / "derivations" / "adversarial" / "a4.md").read_text()   # any RNN header
    head = text.split("$$ ")[0] + r"""
$$ W \in \mathbb{R}^{H \times H}, \quad x_t \in \mathbb{R}^{H}, \quad h_0 \in \mathbb{R}^{H}, \quad \ell \in \mathbb{R} $$

$$ h_t := \tanh(W h_{t-1} + x_t) $$

$$ q \in \mathbb{R}^{H}, \quad q := \frac{\partial \ell}{\partial h_0} $$
"""
    with pytest.raises(DerivationErrors, match="given as the gradient at one step"):
        parse_derivation(head, "u.md")


MANY_TO_ONE = r"""# Many-to-one
$$ W \in \mathbb{R}^{H \times H}, \quad U \in \mathbb{R}^{H \times D}, \quad V \in \mathbb{R}^{K \times H}, \quad x_t \in \mathbb{R}^{D}, \quad h_0 \in \mathbb{R}^{H}, \quad k \in \{1, \dots, K\} $$
$$ h_t := \tanh(W h_{t-1} + U x_t), \quad p := \operatorname{softmax}(V h_T), \quad L := -\log (p)_{k} $$
$$ dh_t := \frac{\partial L}{\partial h_t} $$
$$ dh_{t-1} = W^{\top} ((1 - h_t^2) \circ dh_t) \tag{dh} $$
$$ dh_{t-1} = W ((1 - h_t^2) \circ dh_t) \tag{dh-no-transpose} $$
"""


def test_a_name_for_a_derivative_at_step_zero_is_the_gradient_of_the_initial_state():
    # dh_{t-1} at t = 1 is dh_0 := ∂L/∂h_0 (h_0 declared): the line is true, and was refuted when a name at a
    # step outside 1..T was taken for zero.
    ctx = parse_derivation(MANY_TO_ONE, "m2o.md").contexts[0]
    truths = {c.id: fd.truth(ctx, c)[0] for c in ctx.claims}
    assert truths == {"dh": "true", "dh-no-transpose": "false"}
    for c in ctx.claims:
        out = explicit.prove(ctx, c)
        assert out.verdict == (PROVED if truths[c.id] == "true" else REFUTED), (c.id, out.reason)


def test_the_cross_check_of_a_proof_catches_an_engine_that_proves_a_false_line(monkeypatch):
    # A broken engine for every T that proves everything: every false line must come out a conflict (an engine
    # error, exit 2), found by the explicit engine's cross-check with a replayed counterexample; never proved.
    from derivations.engines.verdicts import Outcome
    monkeypatch.setattr(recurrence, "prove", lambda ctx, claim: Outcome(PROVED, recurrence.METHOD, [], "broken"))
    caught = 0
    for path in (ROOT / "tests" / "derivations" / "tanh_rnn.md", ROOT / "tests" / "derivations" / "many_to_one.md"):
        caught += _caught(path)
    assert caught >= 3


def _caught(path) -> int:
    from derivations.engines.verdicts import CONFLICT
    truths = _truths(path)
    report = run(document=load_document(path), jobs=1, repairs=False)
    caught = 0
    for c in report["claims"]:
        truth, where = truths[c["id"]]
        if truth == "false" and int(where.split(",")[0].removeprefix("T=")) <= 3:
            # (The cross-check runs sequences of T <= 3: a line false only from T = 9 on, such as dh-t8, is
            # beyond it; the explicit engine finds it when no engine has proved the line.)
            caught += 1
            assert c["verdict"] == CONFLICT, (c["id"], c["verdict"], c["reason"])
            cross = next(m for m in c["methods"] if m["method"] == "concrete")
            assert cross["verdict"] == REFUTED and cross["counterexample"] is not None
        elif truth == "true":
            assert c["verdict"] == PROVED
    return caught


def test_a_generic_f_through_time_is_proved_not_a_crash():
    # f' once crashed the engines: SymPy looked the class name `fp` up in mpmath, where it is mpmath's
    # float context (found by a fresh-eyes trial).  The truth by finite differences (f: the cubic of fd.py).
    text = r"""# f through time

$$ U \in \mathbb{R}^{H \times H}, \quad x_t \in \mathbb{R}^{H}, \quad h_0 \in \mathbb{R}^{H}, \quad f : \mathbb{R} \to \mathbb{R}, \quad V \in \mathbb{R}^{K \times H}, \quad k_t \in \{1, \dots, K\} $$

$$ a_t := x_t + U h_{t-1}, \quad h_t := f(a_t), \quad p_t := \operatorname{softmax}(V h_t), \quad L := -\sum_{t=1}^{T} \log (p_t)_{k_t} $$

$$ \frac{\partial L}{\partial h_t} = V^{\top} (p_t - e_{k_t}) + U^{\top} \left( f'(a_{t+1}) \circ \frac{\partial L}{\partial h_{t+1}} \right) \tag{dh} $$

$$ \frac{\partial L}{\partial h_t} = V^{\top} (p_t - e_{k_t}) + U \left( f'(a_{t+1}) \circ \frac{\partial L}{\partial h_{t+1}} \right) \tag{dh-no-transpose} $$
"""
    ctx = parse_derivation(text, "f.md").contexts[0]
    right, wrong = ctx.claims
    assert fd.truth(ctx, right)[0] == "true" and fd.truth(ctx, wrong)[0] == "false"
    assert recurrence.prove(ctx, right).verdict == PROVED
    assert explicit.prove(ctx, wrong).verdict == REFUTED
