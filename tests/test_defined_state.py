"""A defined state stays defined (issue 8), in claims and in a whole loop, for every engine of parsed claims.

A BPTT line may write σ'(a_t) as h_t∘(1 - h_t), where h_t := σ(a_t).  That is
true, and every engine must prove it: h_t is the state, never a free vector.  A
counterexample to a false line names free inputs only (h_0, X_t, dS_t, the
weights), never a value of h_t, which no engine may choose: every defined
quantity is recomputed from them.

Ported from the tests of the Python builders' engines (the one-step model,
the induction's lemmas, the unrolled graph); the truth of every line and of
the loop is decided here by numbers (tests/fd.py, tests/oracle.py), never
typed in.
"""
import fd
import pytest
from oracle import changes_value

from derivations.engines import program, recurrence
from derivations.engines.verdicts import PROVED, REFUTED
from derivations.outputs.assembly import run
from derivations.running.runner import load_document

HEAD = r"""# A sigmoid RNN's backward pass written through its state

$$ W_{xh} \in \mathbb{R}^{H \times E}, \quad W_{hh} \in \mathbb{R}^{H \times H}, \quad W_{hy} \in \mathbb{R}^{V \times H} $$

$$ X_t \in \mathbb{R}^{E}, \quad h_0 \in \mathbb{R}^{H}, \quad \ell \in \mathbb{R} $$

$$ h_t := \sigma(W_{xh} X_t + W_{hh} h_{t-1}), \quad S_t := W_{hy} h_t $$

$$ dS_t \in \mathbb{R}^{V}, \quad dS_t := \frac{\partial \ell}{\partial S_t}, \quad dh_t := \frac{\partial \ell}{\partial h_t} $$

$$ dW_{xh} := \frac{\partial \ell}{\partial W_{xh}}, \quad dW_{hh} := \frac{\partial \ell}{\partial W_{hh}}, \quad dW_{hy} := \frac{\partial \ell}{\partial W_{hy}} $$

$$ \frac{\partial \ell}{\partial h_0} = W_{hh}^T (h_1 \circ (1 - h_1) \circ dh_1) \tag{dh0} $$

$$ \frac{\partial \ell}{\partial W_{hh}} = \sum_{t=1}^{T} (h_t \circ (1 - h_t) \circ dh_t) h_{t-1}^T \tag{dWhh-sum} $$

$$ dh_t = W_{hy}^T dS_t + W_{hh}^T (h_{t+1} \circ (1 - h_{t+1}) \circ dh_{t+1}) + h_t \tag{dh-stray-h} $$

$$ \frac{\partial \ell}{\partial W_{hy}} = \sum_{t=1}^{T} dS_t h_{t-1}^T \tag{dWhy-h-prev} $$

## Backward pass

$$ \textbf{for } t = T, \dots, 1 $$

> Id: bptt

$$ dW_{hy} \mathrel{+}= dS_t h_t^T $$

$$ dh_t = W_{hy}^T dS_t + W_{hh}^T (h_{t+1} \circ (1 - h_{t+1}) \circ dh_{t+1}) $$

> Id: dh

$$ dW_{hh} \mathrel{+}= (h_t \circ (1 - h_t) \circ dh_t) h_{t-1}^T $$

> Id: dWhh

$$ dW_{xh} \mathrel{+}= (h_t \circ (1 - h_t) \circ dh_t) X_t^T $$

$$ \textbf{end for} $$
"""
# The same loop with h_t for h_{t-1} in the dW_hh line: wrong from T = 1 on.
WRONG = HEAD.replace(r"dh_t) h_{t-1}^T $$" + "\n\n> Id: dWhh", r"dh_t) h_t^T $$" + "\n\n> Id: dWhh")
FALSE_LINES = {"dh-stray-h", "dWhy-h-prev"}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    out = {}
    for name, text in (("right", HEAD), ("wrong", WRONG)):
        path = tmp_path_factory.mktemp(name) / f"{name}.md"
        path.write_text(text, encoding="utf-8")
        doc = load_document(path)
        out[name] = doc, {c["id"]: c for c in run(document=doc, jobs=1, repairs=False)["claims"]}
    return out


def _truth(ctx, claim):
    if claim.algorithm is not None:
        (alg,) = [a for a in ctx.algorithms.values() if a.id == claim.id]
        return fd.algorithm_truth(ctx, alg) == "true"
    return not changes_value(ctx, claim)


def test_lines_through_the_state_are_proved_for_every_size_and_every_T(checked):
    doc, claims = checked["right"]
    assert WRONG != HEAD
    for cid, c in claims.items():
        true = _truth(*doc.parsed[cid])
        assert true == (cid not in FALSE_LINES), cid
        if not true:
            continue
        assert c["verdict"] == PROVED and c["scope"] == "for every size and every T", (cid, c["reason"])
        methods = {m["method"]: m["verdict"] for m in c["methods"]}
        assert all(v in (PROVED, "inconclusive") for v in methods.values()), (cid, methods)
        if cid != "bptt":
            assert methods.get(recurrence.METHOD) == PROVED, (cid, methods)        # every T, by the structure
    assert {m["method"]: m["verdict"] for m in claims["bptt"]["methods"]} == {"concrete": PROVED,
                                                                              program.ALL_T: PROVED}


def test_a_false_line_is_refuted_with_free_inputs_only(checked):
    _, claims = checked["right"]
    for cid in FALSE_LINES:
        c = claims[cid]
        assert c["verdict"] == REFUTED, (cid, c["reason"])
        names = set(c["counterexample"]["values"])
        assert names and not any(n.startswith("h_") and not n.startswith("h_0[") for n in names), names


def test_a_wrong_loop_is_refuted_with_free_inputs_only(checked):
    doc, claims = checked["wrong"]
    ctx, claim = doc.parsed["bptt"]
    assert not _truth(ctx, claim)
    c = claims["bptt"]
    assert c["verdict"] == REFUTED and claims["dWhh"]["verdict"] == REFUTED, c["reason"]
    assert {m["method"]: m["verdict"] for m in c["methods"]}.get(program.ALL_T) != PROVED
    names = set(c["counterexample"]["values"])
    assert names and not any(n.startswith("h_") and not n.startswith("h_0[") for n in names), names
    program.confirm(ctx, ctx.algorithms["bptt"], dict(c["counterexample"]))      # replays from the inputs
