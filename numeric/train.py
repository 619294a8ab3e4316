"""Train the generated RNN on a plain-text file: the last stop of note -> proof -> code.

    python -m numeric.train [--text PATH] [--level word|char] [--hidden N] [--seq-len T]
                            [--batch B] [--steps N] [--lr LR] [--clip C] [--seed S] [--sample-every K]

The gradients come from `numeric.loss_and_grads`, the code generated from the verified
BPTT expressions; this module only feeds it data and updates the weights.

- Truncated BPTT: the token stream is cut into B parallel streams. Step k trains on the
  next T positions of every stream and starts from the hidden state the previous chunk
  ended with, so context flows forward across chunks while gradients stop at the chunk
  edge. At the end of the streams training wraps round to their start with a zero state.
- Adagrad, with each gradient clipped *elementwise* to [-clip, clip] before the update
  (the classic char-RNN recipe: it bounds the step of every weight, which is what an
  exploding recurrence needs, without letting one large entry shrink all the others as
  a global-norm clip would).
- Progress lines show the per-token loss (nats) smoothed with a bias-corrected moving
  average, and tokens/s. A sample of generated text is printed every K steps and at the end.
"""
from __future__ import annotations

import argparse
import math
import re
import time
from pathlib import Path

import numpy as np

from numeric import init_params, loss_and_grads, sample

DEFAULT_TEXT = Path(__file__).with_name("data") / "lighthouse.txt"
SMOOTHING = 0.95  # moving-average weight for the progress loss: about a 20-step window
ADAGRAD_EPS = 1e-8
SAMPLE_LEN = {"char": 200, "word": 60}

# A word is letters/digits with inner apostrophes ("keeper's"); each punctuation mark is its own token.
WORD_RE = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
NO_SPACE_BEFORE = set(".,;:!?)]}'\"")
NO_SPACE_AFTER = set("([{")


# ---------------------------------------------------------------- options

def _checked(convert, ok, what):
    """An argparse type: `convert` the text, and accept it only if `ok(value)`."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    return parse


_positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _checked(float, lambda v: v > 0 and math.isfinite(v), "a positive number")


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m numeric.train",
        description="Train the generated vanilla RNN on a text file with Adagrad and truncated BPTT.",
    )
    p.add_argument("--text", metavar="PATH", type=Path, default=DEFAULT_TEXT,
                   help="plain-text UTF-8 file to train on (default: the bundled %(default)s)")
    p.add_argument("--level", choices=["char", "word"], default="char",
                   help="model characters or words/punctuation (default: %(default)s)")
    p.add_argument("--hidden", metavar="N", type=_positive_int, default=128,
                   help="hidden size H; the embedding size E is the same (default: %(default)s)")
    p.add_argument("--seq-len", metavar="T", type=_positive_int, default=25,
                   help="BPTT truncation length T: tokens per stream per step (default: %(default)s)")
    p.add_argument("--batch", metavar="B", type=_positive_int, default=16,
                   help="number of parallel streams B (default: %(default)s)")
    p.add_argument("--steps", metavar="N", type=_positive_int, default=1000, help="update steps (default: %(default)s)")
    p.add_argument("--lr", metavar="LR", type=_positive_float, default=0.1, help="Adagrad learning rate (default: %(default)s)")
    p.add_argument("--clip", metavar="C", type=_positive_float, default=5.0,
                   help="clip every gradient entry to [-C, C] (elementwise) (default: %(default)s)")
    p.add_argument("--seed", metavar="S", type=int, default=0,
                   help="seed for the initial weights and the samples (default: %(default)s)")
    p.add_argument("--sample-every", metavar="K", type=_non_negative_int, default=250,
                   help="print a sample every K steps; 0 = only at the end (default: %(default)s)")
    return p


# ---------------------------------------------------------------- text

def tokenize(text, level):
    return list(text) if level == "char" else WORD_RE.findall(text)


def detokenize(tokens, level):
    if level == "char":
        return "".join(tokens)
    out = []
    for tok in tokens:
        if out and tok[0] not in NO_SPACE_BEFORE and out[-1][-1] not in NO_SPACE_AFTER:
            out.append(" ")
        out.append(tok)
    return "".join(out)


def read_text(parser, path):
    """The file's text, or an argparse error (exit 2) that names --text and says what is wrong."""
    if not path.exists():
        parser.error(f"argument --text: no such file: {path}")
    if not path.is_file():
        parser.error(f"argument --text: not a regular file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        parser.error(f"argument --text: {path} is not UTF-8 text ({err.reason} at byte {err.start})")
    except OSError as err:
        parser.error(f"argument --text: cannot read {path}: {err.strerror}")
    if not text.strip():
        parser.error(f"argument --text: {path} is empty")
    return text


def make_streams(ids, batch):
    """Cut ids into `batch` contiguous streams: (inputs, targets), each (L, batch), targets one ahead."""
    length = (len(ids) - 1) // batch
    inputs = ids[: length * batch].reshape(batch, length).T
    targets = ids[1 : length * batch + 1].reshape(batch, length).T
    return inputs, targets


# ---------------------------------------------------------------- training

def adagrad_step(params, grads, memory, lr, clip):
    for name, w in params.items():
        g = np.clip(grads[name], -clip, clip)
        memory[name] += g * g
        w -= lr * g / np.sqrt(memory[name] + ADAGRAD_EPS)


def generate(params, vocab, level, first_id, n, seed):
    ids = sample(params, first_id, n, seed=seed)
    return detokenize([vocab[first_id]] + [vocab[i] for i in ids], level)


def main(argv=None):
    """Run the training; return {'losses', 'smooth_losses', 'samples', ...} for callers and tests."""
    parser = build_parser()
    args = parser.parse_args(argv)
    text = read_text(parser, args.text)
    tokens = tokenize(text, args.level)
    vocab = sorted(set(tokens))
    index = {tok: i for i, tok in enumerate(vocab)}
    ids = np.array([index[tok] for tok in tokens], dtype=np.int64)

    need = args.batch * args.seq_len + 1
    if len(ids) < need:
        parser.error(f"argument --seq-len: {args.text} has {len(ids)} {args.level} tokens, too few for "
                     f"--batch {args.batch} x --seq-len {args.seq_len} (needs at least {need})")
    inputs, targets = make_streams(ids, args.batch)
    n_chunks = inputs.shape[0] // args.seq_len

    counts = np.bincount(ids, minlength=len(vocab)) / len(ids)
    unigram = float(-(counts * np.log(counts)).sum())
    print(f"text: {args.text} ({len(ids)} {args.level} tokens, vocabulary {len(vocab)}); "
          f"{args.batch} streams x {n_chunks} chunks of {args.seq_len}")
    print(f"reference losses per token: uniform log V = {math.log(len(vocab)):.4f}, "
          f"unigram entropy = {unigram:.4f}")

    params = init_params(len(vocab), hidden_size=args.hidden, seed=args.seed)
    memory = {name: np.zeros_like(w) for name, w in params.items()}
    log_every = max(1, args.steps // 20)
    tokens_per_step = args.batch * args.seq_len
    losses, smooth_losses, samples = [], [], {}
    smooth = 0.0
    h = None
    logged = 0
    start = tick = time.perf_counter()
    for step in range(1, args.steps + 1):
        chunk = (step - 1) % n_chunks
        if chunk == 0:
            h = None  # back at the start of the streams: no carried context
        rows = slice(chunk * args.seq_len, (chunk + 1) * args.seq_len)
        loss, grads, h = loss_and_grads(params, inputs[rows], targets[rows], h)
        adagrad_step(params, grads, memory, args.lr, args.clip)

        per_token = float(loss) / tokens_per_step
        smooth = SMOOTHING * smooth + (1 - SMOOTHING) * per_token
        losses.append(per_token)
        smooth_losses.append(smooth / (1 - SMOOTHING**step))
        if step % log_every == 0 or step == args.steps:
            now = time.perf_counter()
            print(f"step {step:>6}/{args.steps}  loss/token {smooth_losses[-1]:.4f}  "
                  f"{(step - logged) * tokens_per_step / (now - tick):,.0f} tokens/s", flush=True)
            tick, logged = now, step
        if (args.sample_every and step % args.sample_every == 0) or step == args.steps:
            samples[step] = generate(params, vocab, args.level, int(ids[0]),
                                     SAMPLE_LEN[args.level], seed=args.seed + step)
            print(f"----- sample at step {step} -----\n{samples[step]}\n-----", flush=True)
    elapsed = time.perf_counter() - start

    first, last = smooth_losses[0], smooth_losses[-1]
    print(f"loss/token {'fell' if last < first else 'went'} from {first:.4f} to {last:.4f} in {args.steps} steps "
          f"({args.steps * tokens_per_step / elapsed:,.0f} tokens/s overall)")
    return {
        "losses": losses,
        "smooth_losses": smooth_losses,
        "samples": samples,
        "sample": samples[args.steps],
        "vocab_size": len(vocab),
        "n_tokens": len(ids),
        "uniform_loss": math.log(len(vocab)),
        "unigram_entropy": unigram,
        "seconds": elapsed,
        "params": params,
    }


if __name__ == "__main__":
    main()
