"""The note, statement by statement, in its own order.

Importing this package registers every claim in `derivations.registry.CLAIMS`:
the section modules are imported in the order the note presents them.
"""
# isort: skip_file  -- the import order is the note's order
from . import forward_pass, mathematical_helpers, backward_pass, bptt, comments  # noqa: F401, I001
