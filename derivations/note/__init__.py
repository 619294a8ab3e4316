"""The note: its statements in note.md (read from their LaTeX), and the Python builders beside it.

Importing this package registers the builders in `derivations.registry.CLAIMS`
(the helper lemmas the soundness tests edit, and the whole algorithm; every
statement of the note is read from note.md): the section modules are imported in the order the note
presents them.  `step_model` lowers the note's BPTT lines, as parsed, to the
step symbols.
"""
# isort: skip_file  -- the import order is the note's order
from . import mathematical_helpers, backward_pass, bptt  # noqa: F401, I001
