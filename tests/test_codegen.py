"""The code generator: coverage, failure modes, determinism, and the generated kernels against SymPy.

The generated module must be the code that was proved: it is printed from the
proved claims (drift test against the committed numeric/rnn.py), it refuses to
exist if a needed claim is not proved, and its kernels -- run on NumPy object
arrays of SymPy symbols -- give exactly SymPy's own derivative of the unrolled loss.
"""
import ast
import os
import re
import shutil
import subprocess
import sys

import jinja2
import numpy as np
import pytest
import sympy as sp

from derivations import codegen
from derivations.cli import verdicts_by_id
from derivations.codegen import DEFAULT_PATH, NEEDED_CLAIMS, GenerationError, generate, print_expr, write_module
from derivations.concrete import is_exactly_zero
from derivations.functions import elementwise, f, hadamard, sigma
from derivations.note import step_model
from numeric import rnn

REPO = DEFAULT_PATH.parent.parent
ALL_PROVED = {cid: "proved" for cid in NEEDED_CLAIMS}


@pytest.fixture(scope="module")
def verdicts(note_report):
    """The verifier's own verdicts on the needed claims (a chain's group id: every link proved)."""
    by_id = verdicts_by_id(note_report)
    return {cid: by_id[cid] for cid in NEEDED_CLAIMS}


@pytest.fixture(scope="module")
def source(verdicts):
    return generate(verdicts)


# ---------------------------------------------------------------- coverage and failure

def test_needed_claims_are_proved_and_never_the_refuted_lines(verdicts, note_report):
    assert {cid for cid, v in verdicts.items() if v != "proved"} == set()
    assert "bptt-dW_hh" not in NEEDED_CLAIMS and "bptt-dh_prev" not in NEEDED_CLAIMS
    assert verdicts_by_id(note_report)["bptt-dW_hh"] != "proved"     # the as-written line stays out


def test_needed_ids_expand_a_chain_to_its_links():
    from derivations.runner import load_document
    ids = codegen.needed_ids(load_document())
    assert {"forward-h-1", "forward-h-2", "comment2-1", "comment2-2", "bptt-dX", "embedding"} <= set(ids)
    assert "forward-h" not in ids and "bptt-dh_prev" not in ids


def test_the_printed_lines_are_the_lines_parsed_from_the_note():
    """The BPTT lines and h_t come from note.md (lowered), so the code follows what the LaTeX says."""
    sources = codegen.sources()
    for cid in codegen.BPTT_LINES:
        assert isinstance(sources[cid], step_model.Line) and sources[cid].claim.source.path.endswith("note.md")
    assert sources["forward-h"].id == "forward-h-1" and isinstance(sources["forward-h"], step_model.Forward)
    assert codegen.printed_lines()["dh_prev"] == "W_hh.T @ dZ_t  # claim: bptt-dh_prev-corrected"
    # Printed from the note's as-written line instead, the code would follow it (which is why the
    # refuted line is never among the needed claims).
    wrong = {**sources, "bptt-dh_prev-corrected": step_model.line("bptt-dh_prev")}
    assert codegen.printed_lines(wrong)["dh_prev"] == "W_hh @ dZ_t  # claim: bptt-dh_prev-corrected"


def test_coverage_is_computed(verdicts):
    assert codegen.unproved(verdicts) == []
    assert codegen.unproved({**verdicts, "bptt-dX": "refuted", "comment1": "ill-typed"}) == ["bptt-dX", "comment1"]


def test_every_needed_claim_is_cited_and_nothing_else(source):
    assert codegen.cited_claims(source) == set(NEEDED_CLAIMS)


@pytest.mark.parametrize("claim_id", ["bptt-dW_hh-corrected", "forward-h", "comment2"])
def test_generation_refuses_a_claim_that_is_not_proved(claim_id, tmp_path):
    verdicts = {**ALL_PROVED, claim_id: "refuted"}
    with pytest.raises(GenerationError, match=re.escape(f"{claim_id} (refuted)")):
        generate(verdicts)
    target = tmp_path / "rnn.py"
    with pytest.raises(GenerationError):
        write_module(verdicts, target)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_generation_names_every_missing_verdict():
    verdicts = dict(ALL_PROVED)
    del verdicts["bptt-dX"]
    verdicts["dS"] = "inconclusive"
    with pytest.raises(GenerationError) as e:
        generate(verdicts)
    assert "bptt-dX (no verdict)" in str(e.value) and "dS (inconclusive)" in str(e.value)


def test_write_module_replaces_the_file_atomically(tmp_path):
    target = tmp_path / "rnn.py"
    target.write_text("old")
    assert write_module(ALL_PROVED, target) == target
    assert target.read_text() == generate(ALL_PROVED)
    assert [p.name for p in tmp_path.iterdir()] == ["rnn.py"]      # no temporary left behind


# ---------------------------------------------------------------- the generated source

def test_committed_module_is_the_generated_one(source):
    assert DEFAULT_PATH.read_text(encoding="utf-8") == source, \
        "numeric/rnn.py is stale: run `python scripts/generate_numeric.py` and commit it"


def test_output_is_deterministic_across_processes(source):
    """Byte-identical in a fresh interpreter with a different hash seed."""
    code = "import sys; from derivations.codegen import generate, NEEDED_CLAIMS; " \
           "sys.stdout.write(generate({c: 'proved' for c in NEEDED_CLAIMS}))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=True)
    assert out.stdout == source


def test_header_says_generated_from_which_claims_and_how(source):
    head = source.split('"""', 2)
    assert source.startswith("# GENERATED FILE")
    assert codegen.COMMAND in head[0]
    for cid in NEEDED_CLAIMS:
        assert re.search(rf"^\s+{re.escape(cid)}\s", head[1], re.MULTILINE), cid
    assert not re.search(r"20\d\d-\d\d-\d\d|/work/|/home/|/tmp/|\\Users\\", source)


def test_generated_source_compiles(source):
    ast.parse(source)
    compile(source, "numeric/rnn.py", "exec")


def test_generated_source_passes_ruff(source, tmp_path):
    ruff = shutil.which("ruff") or os.path.join(os.path.dirname(sys.executable), "ruff")
    if not os.path.exists(ruff):
        pytest.skip("ruff is not installed")
    target = tmp_path / "rnn.py"
    target.write_text(source)
    out = subprocess.run([ruff, "check", "--config", str(REPO / "pyproject.toml"), str(target)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run([ruff, "check", str(DEFAULT_PATH)], capture_output=True, text=True, cwd=REPO, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_math_line_says_which_claim(source):
    kernels = source.split("# ---------------------------------------------------------------- kernels")[1]
    kernels = kernels.split("# ---------------------------------------------------------------- validation")[0]
    math = [line for line in kernels.splitlines()
            if re.search(r" @ |np\.matmul\(|sigmoid\(|^\s+(dh|dZ_t) = ", line)
            and not line.lstrip().startswith(("def ", '"""'))]
    assert len(math) == 10
    for line in math:
        assert re.search(r"  # claim: [\w-]+(, [\w-]+)*$", line), line


def test_the_corrected_lines_are_the_ones_printed(source):
    assert "dh_next = W_hh.T @ dZ_t  # claim: bptt-dh_prev-corrected" in source
    assert "dW_hh = dZ_all @ H_prev.T  # claim: bptt-dW_hh-corrected, comment1" in source
    assert "h * (1 - h) * dh" in source          # sigma'(a_t) from the stored h_t (comment2)


# ---------------------------------------------------------------- templates and printer

def test_templates_fail_loudly_on_a_missing_variable():
    with pytest.raises(jinja2.UndefinedError, match="lines"):
        codegen.render("numeric_module.py.j2", command=codegen.COMMAND, claims=[])
    with pytest.raises(jinja2.UndefinedError):
        codegen.ENV.from_string("x = {{ lines.nope }}").render(lines={})


def test_printer_operators_and_parentheses():
    n = sp.Symbol("n", integer=True, positive=True)
    A, Bm, C = (sp.MatrixSymbol(name, n, n) for name in ("A", "Bm", "C"))
    assert print_expr(A * Bm) == "A @ Bm"
    assert print_expr((A * Bm).T) == "Bm.T @ A.T"
    assert print_expr(sp.Transpose(A + Bm)) == "(A + Bm).T"
    assert print_expr(hadamard(A + Bm, C)) == "(A + Bm) * C"
    assert print_expr(hadamard(A * Bm, C)) == "(A @ Bm) * C"
    assert print_expr(A * (Bm + C)) == "A @ (Bm + C)"
    assert print_expr(A - Bm) == "A - Bm"
    assert print_expr(sp.OneMatrix(n, n) - A) == "1 - A"
    assert print_expr(elementwise(sigma, A * Bm)) == "sigmoid(A @ Bm)"


def test_printer_refuses_what_it_cannot_print():
    n = sp.Symbol("n", integer=True, positive=True)
    A = sp.MatrixSymbol("A", n, n)
    with pytest.raises(GenerationError, match="element-wise"):
        print_expr(elementwise(f, A))
    with pytest.raises(GenerationError):
        codegen.print_into(A + A.T, "out")


# ---------------------------------------------------------------- kernels against SymPy's derivative

def _symbols(name, rows, cols):
    return np.array([[sp.Symbol(f"{name}[{i},{j}]", real=True) for j in range(cols)] for i in range(rows)],
                    dtype=object)


@pytest.mark.parametrize("H, E, V, T, B", [(1, 1, 1, 1, 1), (2, 3, 2, 2, 2), (3, 2, 2, 2, 1), (1, 2, 3, 3, 2), (2, 2, 3, 2, 3)])
def test_generated_kernels_are_sympys_derivative_of_the_unrolled_loss(H, E, V, T, B):
    """Run the generated forward/backward on symbols; compare with sympy.diff of the whole loss, exactly.

    The per-step loss is abstract, l_t = <dS_t, S_t> (as in derivations.unrolled): the
    recurrences hold for any per-step loss; the softmax part dS_t = p_t - 1_{y=y_t}
    is checked numerically in tests/test_numeric.py and proved by the claim "dS".
    """
    W_xh, W_hh, W_hy = _symbols("W_xh", H, E), _symbols("W_hh", H, H), _symbols("W_hy", V, H)
    X_all, h0, dS = _symbols("X", E, T * B), _symbols("h0", H, B), _symbols("dS", V, T * B)
    Hs = rnn.hidden_states(W_xh, W_hh, X_all, h0, sigmoid=np.frompyfunc(sigma, 1, 1))
    loss = (dS * (W_hy @ Hs[:, B:])).sum()
    dW_hy, G = np.empty((V, H), dtype=object), np.empty((H, T * B), dtype=object)
    rnn.output_grads(W_hy, Hs[:, B:], dS, dW_hy, G, 0, T * B)
    dZ_all, dh0 = rnn.hidden_grads(W_hh, Hs, G, B)
    dW_xh, dW_hh, dX = rnn.weight_grads(W_xh, dZ_all, X_all, Hs[:, :T * B])
    for wrt, got in ((W_xh, dW_xh), (W_hh, dW_hh), (W_hy, dW_hy), (X_all, dX), (h0, dh0)):
        assert got.shape == wrt.shape
        for idx in np.ndindex(wrt.shape):
            assert is_exactly_zero(sp.diff(loss, wrt[idx]) - got[idx]), (str(wrt[idx]), got[idx])
    if H > 1:   # the check can fail: the as-written dW_hh (no transpose) is caught
        wrong = dZ_all @ Hs[:, :T * B].T
        assert not all(is_exactly_zero(sp.diff(loss, W_hh[i]) - wrong.T[i]) for i in np.ndindex(W_hh.shape))
