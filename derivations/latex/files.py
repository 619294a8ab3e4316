"""A derivation file, whatever it is: its bytes checked, then read by the front end of its kind.

- `.md` (and any other suffix): the Markdown reader (reader.py), unchanged;
- `.tex`: tex.py finds the display math of a LaTeX document and makes of it the blocks the
  Markdown reader makes, at their offsets in the .tex file, so errors point into it;
- `.ipynb`: the Markdown cells of a Jupyter notebook, read as one Markdown text; errors and
  claims are then located back in the notebook as a cell and a line in that cell.

Whatever the bytes, the answer is a Derivation or DerivationErrors with located errors: a
directory, an empty file, a NUL byte (a binary file), bytes that are not UTF-8, a notebook that
is not JSON each get a sentence saying what is wrong and where.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ..form import ir
from .errors import DerivationError, DerivationErrors, Location, locate
from .reader import parse_derivation
from .tex import scan_tex


def _fail(message: str, location: Location | None = None, hint: str = ""):
    raise DerivationErrors([DerivationError(message, location, hint)])


def _byte_location(data: bytes, at: int, path: str) -> Location:
    """Where byte `at` is: its line, its column in characters (the line decoded leniently)."""
    start = data.rfind(b"\n", 0, at) + 1
    end = data.find(b"\n", at)
    end = len(data) if end < 0 else end
    column = len(data[start:at].decode("utf-8", "replace")) + 1
    return Location(path, data.count(b"\n", 0, at) + 1, column, data[start:end].decode("utf-8", "replace"))


def read_text(path) -> str:
    """The text of a derivation file; DerivationErrors (located) when it is no such text."""
    p, name = Path(path), str(path)
    if p.is_dir():
        _fail(f"{name} is a directory, not a derivation file", hint="give the path of a .md, .tex or .ipynb file")
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        _fail(f"{name}: no such file")
    except OSError as e:
        _fail(f"{name}: cannot read ({e.strerror})")
    return decode(data, name)


def decode(data: bytes, name: str) -> str:
    """The text of a derivation file's bytes; DerivationErrors (located) when they are no such text."""
    if not data.strip():
        _fail("the file is empty" if not data else "the file holds only white space", Location(name, 1, 1),
              "a derivation file holds statements in $$ ... $$ blocks (docs/derivation-format.md)")
    nul = data.find(b"\0")
    if nul >= 0:
        _fail("a NUL byte: this is not a text file (a binary, or text in UTF-16?)", _byte_location(data, nul, name),
              "save the file as UTF-8 text")
    try:
        # A byte order mark is not text: without it a first "# Title" would not read as a heading.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        _fail(f"bytes that are not UTF-8 text ({e.reason}: {data[e.start:e.end].hex(' ')})",
              _byte_location(data, e.start, name), "save the file as UTF-8 text")


def read_derivation(path) -> ir.Derivation:
    return derivation_of(read_text(path), str(path))


def derivation_of(text: str, path: str) -> ir.Derivation:
    """The derivation written in `text`, read as the suffix of `path` says (.tex, .ipynb, else Markdown)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".tex":
        return parse_derivation(text, path, scanner=scan_tex)
    if suffix == ".ipynb":
        return read_notebook(text, path)
    return parse_derivation(text, path)


# ---------------------------------------------------------------- notebooks

def notebook_markdown(text: str, path: str) -> tuple[str, list[tuple[int, int]]]:
    """(the Markdown cells as one text, the (cell, line in the cell) of each of its lines).

    Cells are numbered from 1 counting every cell (code cells too), as they stand in the
    notebook; a blank line separates two cells, so that a block cannot run from one into the next.
    """
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as e:
        _fail(f"not a Jupyter notebook: not JSON ({e.msg})", locate(text, e.pos, path))
    except RecursionError:
        _fail("not a Jupyter notebook: JSON nested too deeply", Location(path, 1, 1))
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        _fail("not a Jupyter notebook: no list of \"cells\" (nbformat 4)", Location(path, 1, 1))
    parts, places = [], []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(s, str) for s in source):
            source = "".join(source)
        if not isinstance(source, str):
            _fail(f"cell {number}: its \"source\" is not text", Location(path, 1, 1))
        lines = source.split("\n")
        parts.append(source + ("" if source.endswith("\n") else "\n") + "\n")
        places += [(number, k) for k in range(1, len(lines) + 1)]
        if source.endswith("\n"):
            places.pop()           # the text after the last "\n" is no line of its own
        places.append((number, len(lines) + (0 if source.endswith("\n") else 1)))     # the separating line
    return "".join(parts), places


def read_notebook(text: str, path: str) -> ir.Derivation:
    markdown, places = notebook_markdown(text, path)

    def place(line: int) -> tuple[int, int]:
        return places[line - 1] if 0 < line <= len(places) else (0, line)

    def where(line: int) -> str:
        cell, in_cell = place(line)
        return f"cell {cell}, line {in_cell}"
    try:
        derivation = parse_derivation(markdown, path, where=where)
    except DerivationErrors as e:
        for err in e.errors:
            if err.location is not None:
                cell, in_cell = place(err.location.line)
                err.location = replace(err.location, line=in_cell, cell=cell)
        raise DerivationErrors(e.errors) from None
    for ctx in derivation.contexts:
        sources = [c.source for c in ctx.claims] + [d.source for d in ctx.declarations.values()] \
            + [d.source for d in ctx.definitions.values()]
        for s in sources:
            if s is not None and s.cell is None:
                s.cell, s.line = place(s.line)
    return derivation
