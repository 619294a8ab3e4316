"""Train the module `verify examples/min_char_rnn.md` wrote on a text, as Karpathy's min-char-rnn does.

    bash scripts/verify.sh examples/min_char_rnn.md          # writes reports/out/min_char_rnn/min_char_rnn.py
    python examples/train_min_char_rnn.py [--module PATH] [--text PATH] [--steps N]

The module computes the gradients by the lines of examples/min_char_rnn.md the verifier proved; this
script only feeds it one-hot characters 25 at a time (x_t, the next character k_t), carries the hidden
state h_0 from chunk to chunk, and updates the weights with Adagrad, printing the loss per character.
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module", type=Path, default=ROOT / "reports/out/min_char_rnn/min_char_rnn.py")
    ap.add_argument("--text", type=Path, default=ROOT / "numeric/data/lighthouse.txt")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--seq-len", type=int, default=25)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args(argv)
    spec = importlib.util.spec_from_file_location("min_char_rnn", args.module)
    rnn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rnn)

    text = args.text.read_text()
    chars = sorted(set(text))
    V, H, T = len(chars), args.hidden, args.seq_len
    ids = np.array([chars.index(c) for c in text])
    rng = np.random.default_rng(0)
    params = {"W_xh": 0.01 * rng.standard_normal((H, V)), "W_hh": 0.01 * rng.standard_normal((H, H)),
              "W_hy": 0.01 * rng.standard_normal((V, H)), "b_h": np.zeros((H, 1)), "b_y": np.zeros((V, 1))}
    memory = {n: np.zeros_like(p) for n, p in params.items()}
    h, pos, smooth = np.zeros((H, 1)), 0, np.log(V)
    for step in range(1, args.steps + 1):
        if pos + T + 1 > len(ids):
            h, pos = np.zeros((H, 1)), 0
        x = np.eye(V)[ids[pos:pos + T]][:, :, None]            # (T, V, 1): one-hot columns
        k = ids[pos + 1:pos + T + 1][:, None]                   # (T, 1): the next character
        inputs = {"x": x, "h_0": h, "k": k}
        loss, grads = rnn.loss_and_grads(params, inputs)
        h = rnn.forward(params, inputs)["h"][-1]                # the state the next chunk starts from
        for n, p in params.items():
            g = np.clip(grads[n], -5, 5)
            memory[n] += g * g
            p -= args.lr * g / np.sqrt(memory[n] + 1e-8)
        smooth = 0.99 * smooth + 0.01 * loss / T
        if step % 100 == 0 or step == 1:
            print(f"step {step:5d}: loss per character {smooth:.3f} nats")
        pos += T


if __name__ == "__main__":
    main()
