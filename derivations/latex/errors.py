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
    cell: int | None = None   # in a notebook: the cell (1-based), and `line` is the line in that cell

    def __str__(self) -> str:
        if self.cell is not None:
            return f"{self.path}:cell {self.cell}:line {self.line}:col {self.column}"
        return f"{self.path}:{self.line}:{self.column}"


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
        head = f"{loc}: error: {self.message}"
        lines = [head]
        if loc.source_line:
            gutter = f"{loc.line:>4} | "
            shown, column, length = _window(loc.source_line.rstrip("\r\n"), loc.column, loc.length)
            lines.append(gutter + shown)
            lines.append(" " * (len(gutter) + column - 1) + "^" * max(1, length))
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


SHOWN = 100         # characters of a source line shown under an error


def _window(line: str, column: int, length: int) -> tuple[str, int, int]:
    """(part of a long line around the column, the column in it, the caret's length): a line of a
    megabyte is shown as SHOWN characters with "…" where it is cut, not printed whole twice."""
    if len(line) <= SHOWN:
        return line, column, length
    start = max(0, min(column - 1 - SHOWN // 3, len(line) - SHOWN))
    end = start + SHOWN
    shown = ("…" if start else "") + line[start:end] + ("…" if end < len(line) else "")
    column = column - start + (1 if start else 0)
    return shown, column, max(1, min(length, end - (column - 1)))


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
