"""The note's RNN in NumPy.  `numeric.rnn_core` is generated from the note's proved lines
(scripts/generate_numeric.py); `numeric.rnn` runs it on token ids and samples from it."""
from . import rnn
from .rnn import forward, init_params, loss_and_grads, sample

__all__ = ["forward", "init_params", "loss_and_grads", "rnn", "sample"]
