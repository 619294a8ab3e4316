"""Located errors: `file:line:col: message`, the source line, a caret, what was expected.

Errors are values: the reader collects them and reports them together (as
Elm, rustc and ruff do), instead of stopping at the first.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass
class Location:
    path: str
    line: int          # 1-based line in the file
    column: int        # 1-based column in that line
    source_line: str = ""
    length: int = 1


@dataclass
class DerivationError(Exception):
    """One problem in a derivation file, with where it is."""
    message: str
    location: Location | None = None
    hint: str = ""

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        loc = self.location
        if loc is None:
            return f"error: {self.message}" + (f"\n  hint: {self.hint}" if self.hint else "")
        head = f"{loc.path}:{loc.line}:{loc.column}: error: {self.message}"
        lines = [head]
        if loc.source_line:
            gutter = f"{loc.line:>4} | "
            lines.append(gutter + loc.source_line.rstrip("\n"))
            lines.append(" " * (len(gutter) + loc.column - 1) + "^" * max(1, loc.length))
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class DerivationErrors(Exception):
    """Every error found in a file, reported together."""

    def __init__(self, errors: list[DerivationError]):
        self.errors = errors
        super().__init__("\n\n".join(e.render() for e in errors))


@lru_cache(maxsize=8)
def _line_starts(text: str) -> list[int]:
    """Where each line of `text` starts.  Lines end at "\\n" only, as in the reader (never at
    the other characters str.splitlines() breaks at).  Cached: a file's every statement is located."""
    return [0] + [m.end() for m in re.finditer("\n", text)]


def locate(text: str, offset: int, path: str, length: int = 1) -> Location:
    """The Location of character `offset` of a file whose whole text is `text`."""
    offset = max(0, min(offset, len(text)))
    starts = _line_starts(text)
    line = bisect.bisect_right(starts, offset)          # 1-based
    line_start = starts[line - 1]
    line_end = starts[line] - 1 if line < len(starts) else len(text)
    return Location(path, line, offset - line_start + 1,
                    text[line_start:line_end], max(1, min(length, line_end - offset)))
