"""The NumPy module `verify FILE` writes (derivations/outputs/numpy_module.py), for every example and test derivation.

The truth is computed, never typed in: the verdicts come from the engines (the `example_report` fixture
runs them), and the gradients are checked against HIPS autograd differentiating the file's definitions
read literally (tests/ad_reference.py), at float64 to a relative error of 1e-10.
"""
from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from ad_reference import reference_grads

from derivations.form import algorithm, ir
from derivations.outputs import numpy_module
from derivations.outputs.cli import main

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".md", ".tex", ".ipynb")) + sorted(
    (ROOT / "tests" / "derivations").glob("*.md")) + [ROOT / "tests" / "derivations" / "algorithms" / "rnn.md"]


@pytest.fixture(scope="module", params=FILES, ids=lambda p: p.name)
def generated(request, example_report):
    doc, report = example_report(request.param)
    source, info = numpy_module.module_for(doc, report)
    assert source is not None, info["error"]
    module = types.ModuleType(request.param.stem)
    exec(compile(source, request.param.name, "exec"), module.__dict__)   # noqa: S102 - the code under test
    written = next(c for c in doc.derivation.contexts if c.title == info["context"])
    # The context the module is generated from (stacked names opened, a loss from step t read as the whole
    # loss): the same quantities, the names the module uses.
    ctx = numpy_module.prepared(written, {c["id"]: c["verdict"] for c in report["claims"]})[0]
    return types.SimpleNamespace(doc=doc, report=report, source=source, info=info, module=module, ctx=ctx,
                                 plan=numpy_module.make_plan(ctx))


def random_inputs(module, ctx, plan, T, B, dtype=np.float64, seed=0):
    """params, inputs (the module's names) and the same arrays by the file's names; sizes 2, 3, 4, 5."""
    rng = np.random.default_rng(seed)
    sizes = {s: 2 + i % 4 for i, s in enumerate(ctx.sizes())}
    by_name = {str(s): n for s, n in sizes.items()}
    params, inputs, arrays = {}, {}, {}
    for n in plan.params + plan.inputs:
        d = ctx.declarations[n]
        shape = [T if x == "T" else B if x == "B" else x if isinstance(x, int) else by_name[x]
                 for x in module.SHAPES[plan.py[n]]]
        if d.kind == "index":
            a = rng.integers(0, int(sp.sympify(d.shape[0]).subs(sizes)), size=shape)
        elif d.binary:
            a = rng.integers(0, 2, size=shape).astype(dtype)
        else:
            a = (0.7 * rng.standard_normal(shape)).astype(dtype)
        (params if n in plan.params else inputs)[plan.py[n]] = a
        arrays[n] = a
    return params, inputs, arrays, sizes


def test_the_module_compiles_and_imports_only_numpy(generated):
    source, module = generated.source, generated.module
    tree = ast.parse(source)
    imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"numpy", "threading"}      # threading (the standard library's): arrays kept per thread
    assert callable(module.loss_and_grads) and callable(module.forward)


@pytest.mark.parametrize("T, B", [(1, 1), (3, 2)])
def test_gradients_match_autograd(generated, T, B):
    module, ctx, plan = generated.module, generated.ctx, generated.plan
    params, inputs, arrays, sizes = random_inputs(module, ctx, plan, T, B)
    loss, grads = module.loss_and_grads(params, inputs)
    floats = [n for n in plan.params + plan.inputs if ctx.declarations[n].kind != "index"]
    ref_loss, ref = reference_grads(ctx, plan.loss, arrays, floats, sizes, T, B, set(plan.inputs))
    assert abs(loss - ref_loss) <= 1e-10 * abs(ref_loss)
    assert set(grads) == {plan.py[n] for n in floats}
    for n in floats:
        got, want = grads[plan.py[n]], ref[n]
        assert got.shape == want.shape, n
        assert np.max(np.abs(got - want)) <= 1e-10 * max(np.max(np.abs(want)), 1e-300), n


def test_a_module_that_runs_its_output_layer_by_chunks_gives_the_same_numbers(generated):
    """Where the generator runs the per-step quantities only the loss reads on chunks of steps, chunks of one
    step give the numbers of all steps at once."""
    module, ctx, plan = generated.module, generated.ctx, generated.plan
    if not hasattr(module, "CHUNK_ELEMENTS"):
        pytest.skip("no chunked output layer in this file's module")
    params, inputs, _, _ = random_inputs(module, ctx, plan, 4, 2)
    loss, grads = module.loss_and_grads(params, inputs)
    one = types.ModuleType("one_step")
    exec(compile(generated.source, "one_step.py", "exec"), one.__dict__)   # noqa: S102 - the code under test
    one.WHOLE_ELEMENTS, one.CHUNK_ELEMENTS = 0, 1
    loss1, grads1 = one.loss_and_grads(params, inputs)
    assert abs(loss - loss1) <= 1e-12 * abs(loss)
    for k in grads:
        assert np.allclose(grads[k], grads1[k], rtol=1e-11, atol=1e-14), k


def test_gradients_match_finite_differences_of_the_modules_own_loss(generated):
    """A coarse second check, independent of the reference: the loss along a random direction, by central
    differences, against the gradients' inner product with that direction."""
    module, ctx, plan = generated.module, generated.ctx, generated.plan
    params, inputs, _, _ = random_inputs(module, ctx, plan, 3, 2)
    _, grads = module.loss_and_grads(params, inputs)
    rng = np.random.default_rng(1)
    direction = {n: rng.standard_normal(g.shape) for n, g in grads.items()}

    def loss_at(eps):
        moved = {n: a + eps * direction[n] if n in direction else a for n, a in {**params, **inputs}.items()}
        return module.loss_and_grads({n: moved[n] for n in params}, {n: moved[n] for n in inputs})[0]
    eps = 1e-5
    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    exact = sum(np.sum(grads[n] * direction[n]) for n in grads)
    assert abs(numeric - exact) <= 1e-6 * max(1.0, abs(exact))


def test_only_proved_lines_are_printed_and_each_says_its_line(generated):
    report, source = generated.report, generated.source
    by_id = {c["id"]: c for c in report["claims"]}
    cited = re.findall(r"# claim: (\S+) \(line (\d+)\)", source)
    assert {cid for cid, _ in cited} == set(generated.info["claims_used"])
    for cid, line in cited:
        assert by_id[cid]["verdict"] == "proved", cid
        assert int(line) == by_id[cid]["line"]
    for c in report["claims"]:
        if c["verdict"] != "proved":
            assert f"# claim: {c['id']} (" not in source
    for x in source.splitlines():
        if re.search(r'grads\["\w+"\] =', x):
            assert re.search(r"# (claim: |repair of claim: |derived)", x), x


def test_float32_in_float32_out(generated):
    module, ctx, plan = generated.module, generated.ctx, generated.plan
    p64, i64, _, _ = random_inputs(module, ctx, plan, 3, 2)
    p32, i32, _, _ = random_inputs(module, ctx, plan, 3, 2, np.float32)
    _, g64 = module.loss_and_grads(p64, i64)
    loss32, g32 = module.loss_and_grads(p32, i32)
    assert loss32.dtype == np.float32 and all(g.dtype == np.float32 for g in g32.values())
    for n in g64:
        assert np.allclose(g32[n], g64[n], rtol=1e-3, atol=1e-4), n


@pytest.fixture(scope="module")
def min_char(example_report):
    doc, report = example_report(ROOT / "examples" / "min_char_rnn.md")
    source, info = numpy_module.module_for(doc, report)
    module = types.ModuleType("min_char_rnn")
    exec(compile(source, "min_char_rnn.py", "exec"), module.__dict__)   # noqa: S102
    ctx = next(c for c in doc.derivation.contexts if c.title == info["context"])
    return module, ctx, numpy_module.make_plan(ctx)


@pytest.mark.parametrize("spoil, words", [
    (lambda p, i: p.pop("W_hh"), "missing 'W_hh'"),
    (lambda p, i: p.update(W_hh=p["W_hh"][:, :1]), "W_hh: expected shape"),
    (lambda p, i: p.update(W_hh=p["W_hh"].astype(np.float32)), "W_hh: expected dtype float64"),
    (lambda p, i: i.update(k=i["k"] + 100), "k: expected indices 0 .. V - 1"),
    (lambda p, i: i.update(k=i["k"].astype(float)), "k: expected an integer array"),
    (lambda p, i: i["x"].__setitem__((0, 0, 0), np.nan), "x: expected finite numbers"),
    (lambda p, i: i.update(x=i["x"][:, :1, :]), "x: expected shape (T, V, B) with V = 3 (as in W_xh), got (3, 1, 2)"),
    (lambda p, i: i.update(h_0=i["h_0"][:, :1]), "h_0: expected shape (H, B) with B = 2 (as in x)"),
    (lambda p, i: p.update(W_x=p["W_xh"]), "unknown name 'W_x'"),
])
def test_bad_inputs_name_the_input(min_char, spoil, words):
    module, ctx, plan = min_char
    params, inputs, _, _ = random_inputs(module, ctx, plan, 3, 2)
    spoil(params, inputs)
    with pytest.raises(ValueError, match=re.escape(words)):
        module.loss_and_grads(params, inputs)


def test_forward_gives_every_defined_quantity_steps_first(min_char):
    module, ctx, plan = min_char
    params, inputs, _, _ = random_inputs(module, ctx, plan, 4, 3)
    out = module.forward(params, inputs)
    assert out["h"].shape == (4, params["W_hh"].shape[0], 3) and out["p"].shape == (4, params["W_hy"].shape[0], 3)
    assert np.allclose(out["p"].sum(axis=1), 1)
    assert np.isclose(out["loss"], module.loss_and_grads(params, inputs)[0])


def test_a_wrong_line_alone_is_replaced_and_named(tmp_path, example_report):
    """min-char-rnn without its proved dWxh line: only the refuted sigmoid line states ∂ℓ/∂W_xh."""
    text = (ROOT / "examples" / "min_char_rnn.md").read_text()
    kept = [x for x in text.splitlines(keepends=True) if "\\tag{dWxh}" not in x]
    assert len(kept) == len(text.splitlines()) - 1
    path = tmp_path / "only_wrong.md"
    path.write_text("".join(kept))
    doc, report = example_report(path)
    assert {c["id"]: c["verdict"] for c in report["claims"]}["dWxh-sigmoid"] == "refuted"
    source, info = numpy_module.module_for(doc, report)
    assert "# claim: dWxh-sigmoid" not in source
    assert any("dWxh-sigmoid" in x for x in info["from_repairs"] + info["not_used"])
    line = next(x for x in source.splitlines() if 'grads["W_xh"] =' in x or "d_W_xh +=" in x)
    assert "# repair of claim: dWxh-sigmoid" in line or "# derived" in line
    module = types.ModuleType("only_wrong")
    exec(compile(source, "only_wrong.py", "exec"), module.__dict__)   # noqa: S102
    ctx = doc.derivation.contexts[0]
    plan = numpy_module.make_plan(ctx)
    params, inputs, arrays, sizes = random_inputs(module, ctx, plan, 3, 2)
    _, grads = module.loss_and_grads(params, inputs)
    _, ref = reference_grads(ctx, plan.loss, arrays, ["W_xh"], sizes, 3, 2, set(plan.inputs))
    assert np.allclose(grads["W_xh"], ref["W_xh"], rtol=1e-10, atol=1e-12)


def test_verify_writes_the_module_beside_the_report(tmp_path, capsys):
    src = ROOT / "examples" / "mlp.md"
    common = ["--cache-dir", str(tmp_path / "cache"), "--jobs", "2", "--quiet"]
    main([str(src), "--out", str(tmp_path / "a"), *common])
    assert (tmp_path / "a" / "mlp.py").is_file() and (tmp_path / "a" / "report.json").is_file()
    compile((tmp_path / "a" / "mlp.py").read_text(), "mlp.py", "exec")
    main([str(src), "--out", str(tmp_path / "b"), "--no-codegen", *common])
    assert not (tmp_path / "b" / "mlp.py").exists() and (tmp_path / "b" / "report.json").is_file()


def test_a_file_it_cannot_translate_gets_its_report_and_the_reason(tmp_path, capsys):
    path = tmp_path / "f.md"
    path.write_text("# An opaque function\n\n$$ f : \\mathbb{R} \\to \\mathbb{R}, \\quad x \\in \\mathbb{R}^{n} $$\n\n"
                    "$$ y := f(x), \\quad \\ell := \\mathbf{1}^\\top y $$\n\n"
                    "$$ \\frac{\\partial \\ell}{\\partial x} = f'(x) \\tag{dx} $$\n")
    main([str(path), "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"), "--jobs", "1",
          "--quiet"])
    assert "no NumPy module written" in capsys.readouterr().err
    assert (tmp_path / "out" / "report.json").is_file() and not (tmp_path / "out" / "f.py").exists()


def test_a_chain_is_read_from_a_stored_line_only_where_both_agree_past_the_end():
    """_reuse reads f_{t+1} ∘ (1 − f_{t+1}) ∘ df_{t+1} from the array of the line ∂ℓ/∂f̂_t = df_t ∘ f_t ∘ (1 − f_t),
    stored by the previous iteration; past the end (t = T) the array holds zeros and so does the chain, through
    df_{T+1}.  A chain with no gradient in it is not zero there, so it is computed, never read."""
    from derivations.latex.reader import parse_statement
    doc = numpy_module_doc(ROOT / "examples" / "lstm.md")
    ctx = doc.derivation.contexts[0]
    plan = numpy_module.make_plan(ctx)
    line_lhs, line_rhs = parse_statement(r"\frac{\partial \ell}{\partial \hat{f}_t} = df_t \circ f_t \circ (1 - f_t)", ctx)
    _, with_gradient = parse_statement(r"x = U_f^{\top} (f_{t+1} \circ (1 - f_{t+1}) \circ df_{t+1})", ctx)
    read = numpy_module._reuse(with_gradient, [(line_lhs, line_rhs, (1,))], "t", plan)
    assert read == ir.MatMul(with_gradient.left, algorithm.shift(line_lhs, 1))
    pure_lhs, pure_rhs = parse_statement(r"\frac{\partial \ell}{\partial \hat{f}_t} = f_t \circ (1 - f_t)", ctx)
    _, without = parse_statement(r"x = f_{t+1} \circ (1 - f_{t+1}) \circ c_t", ctx)
    assert numpy_module._reuse(without, [(pure_lhs, pure_rhs, (1,))], "t", plan) == without
    # In the same iteration (k = 0) there is no end to pass: the chain is read.
    _, same = parse_statement(r"x = f_t \circ (1 - f_t) \circ c_t", ctx)
    assert numpy_module._reuse(same, [(pure_lhs, pure_rhs, (0,))], "t", plan) == ir.Hadamard(pure_lhs, same.right)


def numpy_module_doc(path):
    from derivations.latex.files import read_derivation
    return types.SimpleNamespace(derivation=read_derivation(path))
