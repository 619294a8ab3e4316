"""The note's generated module, numeric/rnn_core.py: made by the generator every file's module comes from.

It is printed from the note's proved lines (drift test against the committed file), its gradients are
those of the note's lines and never of a line that is not proved, and it agrees with HIPS autograd
differentiating the note's definitions read literally (tests/ad_reference.py).  numeric/rnn.py, which
runs it on token ids, is checked against finite differences and autograd in tests/test_numeric.py.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
from ad_reference import reference_grads
from test_numpy_module import random_inputs

from derivations.outputs import numpy_module
from derivations.outputs.numpy_module import NOTE_COMMAND, NOTE_MODULE, module_for
from derivations.running.runner import load_document
from reports.render import code_lines

REPO = NOTE_MODULE.parent.parent
# The note's BPTT lines a gradient is printed from; never the as-written bptt-dW_hh (ill-typed), bptt-dh_prev (refuted).
LINES = {"bptt-dS", "bptt-dW_hy", "bptt-dh", "bptt-dW_xh", "bptt-dW_hh-corrected", "bptt-dX",
         "bptt-dh_prev-corrected"}


def _module(source, name="rnn_core"):
    module = types.ModuleType(name)
    exec(compile(source, name + ".py", "exec"), module.__dict__)   # noqa: S102 - the code under test
    return module


@pytest.fixture(scope="module")
def note(note_report):
    doc = load_document()
    source, info = module_for(doc, note_report, NOTE_COMMAND)
    assert source is not None, info["error"]
    ctx = next(c for c in doc.derivation.contexts if c.title == info["context"])
    ready, _ = numpy_module.prepared(ctx, {c["id"]: c["verdict"] for c in note_report["claims"]})
    return types.SimpleNamespace(doc=doc, report=note_report, source=source, info=info, ctx=ready,
                                 plan=numpy_module.make_plan(ready), module=_module(source))


def test_committed_module_is_the_generated_one(note):
    assert NOTE_MODULE.read_text(encoding="utf-8") == note.source, \
        f"numeric/rnn_core.py is stale: run `{NOTE_COMMAND}` and commit it"


def test_every_gradient_is_printed_from_a_proved_line_of_the_note(note):
    assert note.info["context"] == "BPTT algorithm"
    assert note.info["derived"] == [] and note.info["from_repairs"] == []
    assert set(note.info["claims_used"]) == LINES
    verdicts = {c["id"]: c["verdict"] for c in note.report["claims"]}
    cited = {i for line in code_lines(note.source) for i in line["ids"]}
    assert cited == LINES and all(verdicts[i] == "proved" for i in cited)
    assert verdicts["bptt-dW_hh"] != "proved" and verdicts["bptt-dh_prev"] != "proved"


def test_the_corrected_lines_are_the_ones_printed(note):
    src = note.source
    # dh_t = ∂ℓ_{t+1}/∂h_t + W_hy^T dS_t, the first term by the corrected ∂ℓ_t/∂h_{t-1} one step later
    assert re.search(r"d_h\[t\] = pre1\[t - 1\] \+ \(\(h\[t \+ 1\] \* \(1 - h\[t \+ 1\]\)\) \* d_h\[t \+ 1\]\) @ W_hh  "
                     r"# claim: bptt-dh \(line \d+\), bptt-dh_prev-corrected \(line \d+\)$", src, re.MULTILINE)
    assert re.search(r'grads\["W_hh"\] = _outer\(.*, h\[0:T\]\)  # claim: bptt-dW_hh-corrected', src)
    assert "_dsigmoid" not in src.split("def _backward")[1]       # σ'(a_t) from the stored h_t (comment2)


def test_a_line_not_proved_is_never_printed_and_its_gradient_is_derived(note):
    """With the corrected ∂ℓ_t/∂h_{t-1} refuted, neither dh_t nor dh_0 may come from it: both are derived by
    reverse mode, and the gradients are the same numbers."""
    report = {"claims": [{**c, "verdict": "refuted"} if c["id"] == "bptt-dh_prev-corrected" else c
                         for c in note.report["claims"]]}
    source, info = module_for(note.doc, report, NOTE_COMMAND)
    cited = {i for line in code_lines(source) for i in line["ids"]}
    assert "bptt-dh_prev-corrected" not in cited and {"h", "h_0"} <= set(info["derived"])
    other = _module(source, "other")
    params, inputs, _, _ = random_inputs(note.module, note.ctx, note.plan, 4, 3)
    loss, grads = note.module.loss_and_grads(params, inputs)
    loss2, grads2 = other.loss_and_grads(params, inputs)
    assert np.isclose(loss, loss2, rtol=1e-14)
    for k in grads:
        assert np.allclose(grads[k], grads2[k], rtol=1e-12, atol=1e-14), k


@pytest.mark.parametrize("T, B", [(1, 1), (4, 3)])
def test_gradients_match_autograd_of_the_notes_definitions(note, T, B):
    """ℓ = ℓ_1 = -Σ_s log (P_s)_{y_s} read literally, one example and step at a time, differentiated by autograd."""
    params, inputs, arrays, sizes = random_inputs(note.module, note.ctx, note.plan, T, B)
    loss, grads = note.module.loss_and_grads(params, inputs)
    floats = [n for n in note.plan.params + note.plan.inputs if note.ctx.declarations[n].kind != "index"]
    ref_loss, ref = reference_grads(note.ctx, note.plan.loss, arrays, floats, sizes, T, B, set(note.plan.inputs))
    assert abs(loss - ref_loss) <= 1e-10 * abs(ref_loss)
    for n in floats:
        got, want = grads[note.plan.py[n]], ref[n]
        assert got.shape == want.shape, n
        assert np.max(np.abs(got - want)) <= 1e-10 * max(np.max(np.abs(want)), 1e-300), n


def test_output_is_deterministic_across_processes(note):
    """Byte-identical in a fresh interpreter with a different hash seed (the verdicts given, not re-proved)."""
    code = ("import json, sys; from derivations.running.runner import load_document; "
            "from derivations.outputs.numpy_module import module_for, NOTE_COMMAND; "
            "sys.stdout.write(module_for(load_document(), json.load(sys.stdin), NOTE_COMMAND)[0])")
    claims = [{"id": c["id"], "verdict": c["verdict"], "repairs": c.get("repairs") or []} for c in note.report["claims"]]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps({"claims": claims}), capture_output=True,
                         text=True, env=env, cwd=REPO, check=True)
    assert out.stdout == note.source


def test_header_says_generated_from_what_and_how(note):
    head = note.source.split('"""', 2)
    assert note.source.startswith("# GENERATED FILE")
    assert NOTE_COMMAND in head[0] and "note.md" in head[0]
    for cid in LINES:
        assert cid in head[1], cid
    assert not re.search(r"20\d\d-\d\d-\d\d|/work/|/home/|/tmp/|\\Users\\", note.source)


def test_generated_source_passes_ruff(note):
    ruff = shutil.which("ruff") or os.path.join(os.path.dirname(sys.executable), "ruff")
    if not os.path.exists(ruff):
        pytest.skip("ruff is not installed")
    out = subprocess.run([ruff, "check", str(NOTE_MODULE)], capture_output=True, text=True, cwd=REPO, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_gradient_line_says_which_claim(note):
    backward = note.source.split("def _backward")[1]
    math = [line for line in backward.splitlines()
            if re.search(r" @ |_outer\(|_mm\(|_minus_onehot\(|grads\[", line) and "np.zeros_like" not in line]
    assert len(math) >= 8
    for line in math:
        assert re.search(r"  # claim: [\w-]+ \(line \d+\)(, [\w-]+ \(line \d+\))*$", line), line


@pytest.mark.parametrize("B", [1, 3])
def test_nothing_returned_is_overwritten_by_the_next_call(note, B):
    """The forward arrays are kept between calls (and dS is written over P): what a call returned stays."""
    params, inputs, _, _ = random_inputs(note.module, note.ctx, note.plan, 4, B, seed=0)
    other, more, _, _ = random_inputs(note.module, note.ctx, note.plan, 4, B, seed=1)
    _, grads, kept = note.module.loss_and_grads(params, inputs, keep=("h", "S", "P_"))
    values = note.module.forward(params, inputs)
    saved = [{k: v.copy() for k, v in d.items()} for d in (grads, kept, values)]
    note.module.loss_and_grads(other, more, keep=("h", "S", "P_"))
    note.module.forward(other, more)
    for d, copy in zip((grads, kept, values), saved):
        for k in copy:
            assert np.array_equal(d[k], copy[k]), k
    for k in ("h", "S", "P_"):
        assert np.array_equal(kept[k], values[k]), k
    assert np.allclose(values["P_"].sum(axis=1), 1, rtol=1e-12)
    with pytest.raises(ValueError, match="keep"):
        note.module.loss_and_grads(params, inputs, keep=("nope",))


@pytest.mark.parametrize("steps", [1, 2])
def test_the_output_layer_runs_on_chunks_of_steps(note, steps):
    """loss_and_grads computes S, P, ℓ and the lines reading them on chunks of steps (the last one shorter):
    the same numbers as all steps at once, the same kept values as forward, and no array of every step's scores."""
    params, inputs, _, _ = random_inputs(note.module, note.ctx, note.plan, 5, 3)
    loss, grads, kept = note.module.loss_and_grads(params, inputs, keep=("h", "S", "P_"))
    values = note.module.forward(params, inputs)
    V = params["W_hy"].shape[0]
    module = _module(note.source, "chunked")
    module.WHOLE_ELEMENTS, module.CHUNK_ELEMENTS = 0, steps * 3 * V
    loss2, grads2 = module.loss_and_grads(params, inputs)
    assert module._kept.arrays["S"].shape == (steps + 2, 3, V) and module._kept.arrays["P_"].shape == (steps + 2, 3, V)
    assert abs(loss - loss2) <= 1e-13 * abs(loss)
    for k in grads:
        assert np.allclose(grads[k], grads2[k], rtol=1e-12, atol=1e-15), k
    _, _, kept2 = module.loss_and_grads(params, inputs, keep=("h", "S", "P_"))
    for k in ("h", "S", "P_"):
        assert np.array_equal(kept[k], values[k]) and np.allclose(kept2[k], values[k], rtol=1e-13, atol=0), k


def test_only_lines_over_the_chunks_steps_are_moved_into_a_chunk(note):
    """The output layer is S, P, ℓ; a statement reading one of them at a fixed step (or T, or in a loop over t)
    cannot run on a window of steps: then nothing is chunked and the lines stay as they are."""
    plan = note.plan
    tail = numpy_module._tail(plan)
    assert {plan.py[n] for n in tail} == {"S", "P_", "ell"}
    _, tail_forward = numpy_module._forward_lines(plan, tail)
    good = ["    d_ell = np.ones_like(ell)", '    grads["W_hy"] = _outer(P_[1:T + 1], h[1:T + 1])']
    info, rest = numpy_module._chunked(plan, tail, tail_forward, good)
    assert info is not None and len(rest) == 1 and "_by_chunks(_chunk_backward" in rest[0]
    for bad in ('    grads["W_hy"] = _outer(P_[1], h[1])', '    grads["W_hy"] = _outer(P_[1:T + 1], h[T])',
                '    grads["W_hy"] = _outer(P_[2:T + 1], h[2:T + 1])',
                "    for t in range(T, 0, -1):\n        d_h[t] = P_[t, :, :1]"):
        lines = ["    d_ell = np.ones_like(ell)", bad]
        assert numpy_module._chunked(plan, tail, tail_forward, lines) == (None, lines), bad


def test_no_array_of_the_output_layer_grows_with_the_steps(note):
    """With V much larger than H, doubling T adds to the peak of NumPy's allocations (tracemalloc, not the
    resident set) a small part of what one more (T, B, V) array would: the scores, probabilities and dS are
    held for one chunk of steps only."""
    import tracemalloc
    module = _module(note.source, "bounded")
    B, V = 2, 2000
    module.WHOLE_ELEMENTS, module.CHUNK_ELEMENTS = 8 * B * V, 4 * B * V     # T > 8: chunks of 4 steps
    peaks = []
    for T in (50, 100):
        params, inputs, _, _ = random_inputs(module, note.ctx, note.plan, T, B)
        params["W_hy"] = np.random.default_rng(0).standard_normal((V, params["W_hh"].shape[0]))
        inputs["y"] = inputs["y"] % V
        module.loss_and_grads(params, inputs)          # the kept arrays exist before the measure
        tracemalloc.start()
        module.loss_and_grads(params, inputs)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] - peaks[0] < 0.25 * 50 * B * V * 8, peaks


def test_the_whole_loss_reading_needs_definitions_that_read_no_later_step(note_report):
    """∂ℓ_t/∂q_t is ∂ℓ/∂q_t only when the terms before t cannot read q_t: with h_t reading X_{t+1} (or X_T)
    the lines about ℓ_t are left as they are (not translated), never read through ℓ."""
    from dataclasses import replace

    from derivations.form import algorithm, ir
    doc = load_document()
    ctx = next(c for c in doc.derivation.contexts if c.title == "BPTT algorithm")
    verdicts = {c["id"]: c["verdict"] for c in note_report["claims"]}
    ready, cites = numpy_module.prepared(ctx, verdicts)
    line = next(c for c in ctx.claims if c.id == "bptt-dh_prev-corrected").source.line
    assert ready.definitions["\\ell"].target.time is None and cites == {"bptt-dh": [("bptt-dh_prev-corrected", line)]}
    h = ctx.definitions["h"]
    for moved in (algorithm.shift(h.expr, 1), ir.transform(h.expr, lambda e: ir.Ref("X", ir.Time("T", 0))
                                                           if isinstance(e, ir.Ref) and e.name == "X" else e)):
        later = replace(ctx, definitions={**ctx.definitions, "h": replace(h, expr=moved)})
        same, cites = numpy_module.prepared(later, verdicts)
        assert same.definitions["\\ell"].target.time is not None and cites == {}
