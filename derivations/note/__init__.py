"""The note: its statements in note.md (read from their LaTeX), and the Python builders beside it.

Importing this package registers the builders in `derivations.registry.CLAIMS`
(the statements the notation cannot express, and the helper lemmas the
soundness tests edit): the section modules are imported in the order the note
presents them.  `step_model` lowers the note's BPTT lines, as parsed, to the
step symbols.
"""
# isort: skip_file  -- the import order is the note's order
from . import forward_pass, mathematical_helpers, backward_pass, bptt, comments  # noqa: F401, I001
