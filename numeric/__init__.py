"""The note's RNN in NumPy.  `numeric.rnn` is generated from the proved claims (scripts/generate_numeric.py)."""
from . import rnn
from .rnn import forward, init_params, loss_and_grads, sample

__all__ = ["forward", "init_params", "loss_and_grads", "rnn", "sample"]
