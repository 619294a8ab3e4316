"""The note, statement by statement, in its own order.

Importing this package registers every claim in `derivations.registry.CLAIMS`:
the section modules are imported in the order the note presents them.
"""
from . import forward_pass, mathematical_helpers, backward_pass, bptt, comments  # noqa: F401
