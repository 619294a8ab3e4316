"""A display block as the front ends find it (reader.py for Markdown, tex.py for LaTeX): its text, where it
is, the headings above it and the `> Key: value` lines after it.  Shared by both, so that neither imports
the other's internals."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# The keys of the `> Key: value` lines after a block (docs/derivation-format.md).
META_KEYS = ("reading", "corrects", "id", "label", "comment", "kind", "derivatives", "jacobians")


@dataclass
class RawBlock:
    text: str
    offset: int                  # of the block's text in the file
    line: int
    heading: str                 # the nearest heading above it
    context: str                 # the level-1 heading above it
    meta: dict = field(default_factory=dict)
    meta_line: int = 0


def slug(text: str) -> str:
    """A claim id from a label or a tag: what is not a letter, a digit, _ or - becomes -."""
    s = re.sub(r"[^A-Za-z0-9_\-]+", "-", text).strip("-")
    return s or "claim"
