"""Read a derivation file (Markdown with $$ ... $$ blocks) into the intermediate form.

The format, in short (docs/derivation-format.md has it all):
- one statement per display block, or several separated by `,` or `\\quad`;
- `x \\in \\mathbb{R}^{a \\times b}` declares, `k_t \\in \\{1, \\dots, V\\}` declares an
  index, `f : \\mathbb{R} \\to \\mathbb{R}` an element-wise function;
- `target := expr` defines, every `=` claims (a chain a = b = c is one claim per link);
- `\\tag{label}` labels a block's claims; a level-1 heading starts a new context;
- a block may be followed by a blockquote of `Key: value` lines about it:
  `> Reading: ...` (how a garbled transcription was read; its verdicts depend on it),
  `> Corrects: <claim id>`, `> Id: <claim id>`, `> Label: ...`, `> Comment: ...`,
  `> Kind: supporting`, `> Derivatives: earlier steps held fixed`, `> Jacobians: numerator layout`.

Errors are collected over the whole file and raised together as DerivationErrors.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from ..form import algorithm, ir
from ..form.jacobians import has_implied, is_jacobian, numerator_layout
from ..form.printer import to_latex
from ..form.shapes import Typer
from .blocks import META_KEYS, RawBlock, slug
from .errors import DerivationError, DerivationErrors, locate
from .resolve import (
    WHOLE_COLUMN,
    BasisMark,
    DeltaMark,
    Entry,
    EntryError,
    EntryGrad,
    MatrixEntryMark,
    Resolver,
    Scope,
    definitions_written_eq,
    entrywise,
    hadamard_juxtapositions,
    name_key,
    per_step_names,
    sequence_key,
)
from .syntax import MAX_BLOCK_CHARS, Name, parse_block, split_top_level
from .tex import OTHER, display_rows, read_display

KINDS = ("as-written", "corrected", "supporting")
# Past this many errors the rest of a file is not read (as compilers do): a file that is not a
# derivation at all (random bytes, a binary) gives a screenful and a bounded time, not thousands.
MAX_ERRORS = 50
# `> Derivatives: ...` after any block of a context says what ∂q_t/∂x means there (docs/derivation-format.md).
DERIVATIVE_READINGS = {"total": False, "earlier steps held fixed": True}
# `> Jacobians: ...` after any block of a context says which layout ∂a/∂b of columns is read in there.
JACOBIAN_LAYOUTS = {"denominator layout": False, "numerator layout": True}


@dataclass
class LoopMark:
    """A loop's first block (\\textbf{for } t = T, \\dots, 1) or its last (\\textbf{end for}): no statement."""
    kind: str                    # "for", "up" (t = 1, ..., T: not read) or "end"
    var: str | None
    statements: tuple = ()


@dataclass
class _Loop:
    """An algorithm being read: its first block and its lines so far."""
    block: RawBlock
    var: str
    updates: list = field(default_factory=list)         # (block, ir.Update)
    corrections: dict = field(default_factory=dict)     # claim id -> (block, ir.Update)
    ids: list = field(default_factory=list)             # the claim ids its blocks gave


# Display math of LaTeX documents: read as in a .tex file (tex.py), as Jupyter's Markdown renders it.
_OTHER_DISPLAY = re.compile(r"^\s*(\\\[|\\begin\s*\{\s*(?P<env>equation|align|gather|multline|eqnarray|alignat|flalign)(?P<star>\*?)\s*\})")
_HEADING = re.compile(r"(#{1,6})\s")
_LAYOUT = re.compile(r"\\begin\s*\{\s*(?:aligned|split|gathered|alignedat|multlined)\s*\}")


def heading_of(line: str) -> tuple[int, str] | None:
    """(level, title) of a Markdown heading line (`## Title ##`), or None.

    Not one regular expression: `(.*?)\\s*#*\\s*$` backtracks quadratically on a long
    line of spaces (minutes for a 30,000-character heading)."""
    m = _HEADING.match(line)
    if not m:
        return None
    return len(m.group(1)), line[m.end():].strip().rstrip("#").strip()
_META = re.compile(r"^>\s*(?P<key>[A-Za-z]+)\s*:\s*(?P<value>.*)$")


def split_lines(text: str) -> list[str]:
    """The lines of `text`, each with its "\\n", broken at "\\n" only.

    Line numbers and offsets are counted in "\\n" everywhere (`locate`); str.splitlines()
    also breaks at \\f, \\v, \\x1c-\\x1e, \\x85, U+2028 and U+2029, and a file with one
    of them in its prose had its lines and its offsets disagree (`scan` looped forever).
    A "\\r" before the "\\n" stays in its line, where strip() removes it.
    """
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    return lines if lines[-1] else lines[:-1]


def scan(text: str, path: str) -> tuple[str, list, list]:
    """(title, blocks, errors): the display blocks of a Markdown file with their headings and metadata."""
    blocks, errors = [], []
    title, heading, context = "", "", ""
    lines = split_lines(text)
    offsets, pos = [], 0
    for ln in lines:
        offsets.append(pos)
        pos += len(ln)
    i, fence = 0, False

    def line_index(offset):         # 0-based line of a character (a bisection: a file has many blocks)
        return bisect.bisect_right(offsets, offset) - 1

    def meta_after(block, i):
        """Line i on, a blockquote right after a block says things about it: the line after it."""
        j, last = i, None
        while j < len(lines) and not lines[j].strip():
            j += 1
        while j < len(lines) and lines[j].lstrip().startswith(">"):
            mm = _META.match(lines[j].strip())
            if mm and mm.group("key").lower() in META_KEYS:
                last = mm.group("key").lower()
                block.meta[last] = (block.meta.get(last, "") + " " + mm.group("value").strip()).strip()
                block.meta_line = block.meta_line or j + 1
            elif mm:
                errors.append(DerivationError(
                    f"unknown key {mm.group('key')!r} after a block; known keys: "
                    + ", ".join(k.capitalize() for k in META_KEYS), locate(text, offsets[j], path,
                                                                          len(lines[j].rstrip()))))
            elif last:
                block.meta[last] += " " + lines[j].strip().lstrip(">").strip()    # a continuation line
            j += 1
        return j if j > i and last else i
    while i < len(lines) and len(errors) < MAX_ERRORS:
        raw = lines[i]
        stripped = raw.strip()
        if stripped.startswith("```"):
            fence = not fence
            i += 1
            continue
        if fence:
            i += 1
            continue
        found = heading_of(stripped)
        if found:
            level, heading = found
            if level == 1:
                context = heading
                title = title or heading
            i += 1
            continue
        other = _OTHER_DISPLAY.search(raw) if "$$" not in raw else None
        if other:
            # \[ \] and equation / align environments, read as in a .tex file (tex.py).
            if other.group("env") in OTHER:
                errors.append(DerivationError(
                    f"display math in {other.group(1)} is not read", locate(text, offsets[i] + other.start(1), path,
                                                                            len(other.group(1))),
                    "write it as align (rows of statements, & to align), equation or $$ ... $$"))
                i += 1
                continue
            found, problems, stop = read_display(text, text, other.group("env") or "\\[", other.group("star") or "",
                                                 offsets[i] + other.start(1), offsets[i] + other.end(), path,
                                                 heading, context)
            blocks += found
            errors += problems
            if stop is None:
                break
            newline = text.find("\n", stop)
            rest = text[stop:newline if newline >= 0 else len(text)]
            if rest.strip():
                errors.append(DerivationError(
                    "text after a display's end on the same line is not read: put it on a line of its own",
                    locate(text, stop + len(rest) - len(rest.lstrip()), path, len(rest.strip()))))
            i = max(i + 1, line_index(stop) + 1)
            if found:
                i = meta_after(found[-1], i)
            continue
        start = raw.find("$$")
        if start >= 0:
            begin = offsets[i] + start + 2
            end = text.find("$$", begin)
            if end < 0:
                errors.append(DerivationError("this $$ block is never closed", locate(text, begin - 2, path, 2)))
                break
            if re.search(r"\n[ \t]*\n", text[begin:end]):
                errors.append(DerivationError("this $$ block runs over a blank line: is its closing $$ missing?",
                                              locate(text, begin - 2, path, 2)))
                cut = re.search(r"\n[ \t]*\n", text[begin:end]).start()
                blocks.append(RawBlock(text[begin:begin + cut], begin, i + 1, heading, context, {"broken": True}))
                i = max(i + 1, line_index(begin) + 1)      # always forward, whatever the text
                continue
            line_end = text.find("\n", end)
            after = text[end + 2:line_end if line_end >= 0 else len(text)]
            if after.strip():
                # Nothing after a closing $$ is read; usually it is the next block, whose opening $$
                # closed a block that lacks its own closing $$.
                line_start = text.rfind("\n", 0, end) + 1
                if not text[line_start:end].strip() and text.count("\n", begin, end):
                    errors.append(DerivationError(
                        "this $$ block is closed by a $$ that begins a line with more math after it: "
                        "is this block's closing $$ missing?", locate(text, begin - 2, path, 2)))
                else:
                    lead = len(after) - len(after.lstrip())
                    errors.append(DerivationError(
                        "text after a block's closing $$ on the same line is not read: put it on a line of "
                        "its own (one block per line)", locate(text, end + 2 + lead, path, len(after.strip()))))
            block = RawBlock(text[begin:end], begin, i + 1, heading, context)
            if _LAYOUT.search(block.text):
                # $$ \begin{aligned} a &= b \\ c &= d \end{aligned} $$: rows as in a .tex display (tex.py)
                found, problems = display_rows(text, text, begin, end, "$$", path, heading, context)
                errors += problems
                block = found[-1] if found else block
                blocks += found
            else:
                blocks.append(block)
            i = max(i + 1, line_index(end) + 1)           # always forward, whatever the text
            i = meta_after(block, i)
            continue
        i += 1
    return title, blocks, errors


def definition_cycle(ctx: ir.Context) -> list[str]:
    """Names of definitions that use each other at the same step (a := b + x, b := 2 a), or [].

    h_t := σ(W h_{t-1}) is no circle: it uses h at an earlier step.  A name for a
    derivative (dh_t := ∂ℓ/∂h_t) is not a forward definition and is left out.
    """
    uses = {}
    for name, d in ctx.definitions.items():
        if d.notation:
            continue
        own = d.target.time
        uses[name] = [r.name for r in ir.refs(d.expr) if r.name in ctx.definitions
                      and not ctx.definitions[r.name].notation
                      and (r.time is None or own is None
                           or (r.time.var == own.var and r.time.offset == own.offset))]
    state: dict = {}

    def visit(name, path):
        state[name] = "open"
        for other in uses.get(name, []):
            if state.get(other) == "open":
                return path[path.index(other):] if other in path else [other]
            if other not in state:
                found = visit(other, path + [other])
                if found:
                    return found
        state[name] = "done"
        return []
    for name in uses:
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return []


# A name starts after no letter: without the look-behind a run of n letters was tried from each
# of its n starts, each backtracking over the rest (quadratic; 17 s for 30,000 letters).
_TARGET = re.compile(r"(?<![A-Za-z\\])(?P<base>\\?[A-Za-z]+)(?:_(?:\{(?P<sub>[^{}]*)\}|(?P<single>[A-Za-z0-9])))?\s*"
                     r"(?::=|\\in(?![A-Za-z]))")


def _guess_targets(text: str, scope: Scope) -> None:
    """Names a block that could not be parsed declares or defines, so later uses are not errors too."""
    for m in _TARGET.finditer(text[:MAX_BLOCK_CHARS]):     # a longer block is an error already
        base, sub = m.group("base"), (m.group("sub") or m.group("single") or "").strip()
        if sub == "t":
            scope.sequences.add(base)
            scope.names.setdefault(base, "defined")
        elif sub and sub.isalnum():
            scope.names.setdefault(f"{base}_{sub}", "defined")
        else:
            scope.names.setdefault(base, "defined")


class _Builder:
    """Builds the contexts of one file, collecting errors."""

    def __init__(self, text: str, path: str, earlier_errors: int = 0, where=None):
        self.text, self.path = text, path
        # How a line of `text` is named in messages and labels: "line 12" in a Markdown or TeX file,
        # "cell 3, line 2" in a notebook (whose cells the reader reads as one text).
        self.where = where or (lambda line: f"line {line}")
        self.errors: list[DerivationError] = []
        self.earlier_errors = earlier_errors      # found by `scan`; they count towards MAX_ERRORS
        self.ids: set[str] = set()
        self.named: dict = {}             # (\tag or Id, name) -> the line that first used it
        self._where: dict = {}             # definition name -> (block, statement), for located errors
        self._entry_checks: list = []      # (block, node, "scalar" | "column"): shapes entry-wise lines need
        self._entry_lines: list = []       # the blocks of this context that hold a line of entries (entries_line)
        self._copies: dict = {}            # block line -> the copies (W^{(t)}) its claims were read through
        self._copy_jacobians: set = set()  # block lines whose copy Jacobian a numerator layout read transposed
        self._numerator_copies: set = set()   # the ids of their claims
        self._written: dict = {}           # a name written with arguments -> (the arguments, the first line)

    def error(self, block: RawBlock, message, node=None, hint=""):
        span = getattr(node, "span", None) if node is not None else None
        if span is None and isinstance(node, tuple):
            span = next((getattr(n, "span", None) for n in node if getattr(n, "span", None)), None)
        start, end = (span if span else (0, len(block.text.rstrip())))
        return DerivationError(message, locate(self.text, block.offset + start, self.path, end - start), hint)

    def unique_id(self, base: str) -> str:
        cid, n = base, 2
        while cid in self.ids:
            cid, n = f"{base}-{n}", n + 1
        self.ids.add(cid)
        return cid

    def build(self, blocks: list[RawBlock]) -> list[ir.Context]:
        contexts: list[ir.Context] = []
        groups: list[tuple[str, list]] = []
        for b in blocks:
            if not groups or groups[-1][0] != b.context:
                groups.append((b.context, []))
            groups[-1][1].append(b)
        for title, group in groups:
            contexts.append(self.context(title, group))
        self.check_corrections(contexts, blocks)
        return contexts

    def check_corrections(self, contexts: list[ir.Context], blocks: list[RawBlock]) -> None:
        """A correction (`> Corrects: x`) whose right-hand side holds its left-hand side (h_t = h_t,
        ∂L/∂U = (∂L/∂U) + 0, X = 2X - X) says nothing of what the left-hand side is, and may be true of anything: as a proved correction it would stand for the line it corrects in the verdict on the
        whole derivation while saying nothing of it.  (A correction may restate the line about another
        quantity -- the note corrects "dv = ∂ℓ/∂h = ..." by "dZ = ∂ℓ/∂Z = ..." -- and is shown next to it.)"""
        claims = [c for ctx in contexts for c in ctx.claims]
        for c in claims:
            if not c.corrects or c.lhs is None or not any(n == c.lhs for n in c.rhs.walk()):
                continue
            line = c.source.line if c.source else 0
            b = max((b for b in blocks if b.line <= line), key=lambda b: b.line, default=blocks[0])
            self.errors.append(self.error(
                b, f"{c.id} corrects {c.corrects} with a line whose right-hand side holds its left-hand side: it "
                   "says nothing of what that is, so nothing of the line it corrects", None,
                "write the right-hand side the line should have, without its left-hand side"))

    def context(self, title: str, blocks: list[RawBlock]) -> ir.Context:
        ctx = ir.Context(title or "Derivation")
        ctx.text = "\n\0".join(f"{b.text}\n{sorted(b.meta.items())}" for b in blocks)
        parsed = []
        scope = Scope()
        for b in blocks:
            if len(self.errors) + self.earlier_errors >= MAX_ERRORS:
                break
            if b.meta.get("broken"):               # reported by `scan`
                _guess_targets(b.text, scope)
                continue
            found = algorithm.loop_line(b.text)
            if found:
                parsed.append((b, LoopMark(*found)))
                continue
            try:
                parsed.append((b, parse_block(b.text, b.offset, self.text, self.path)))
            except DerivationError as e:
                self.errors.append(e)
                # What the block defines or declares is still known, so that its later uses do not
                # each report "undeclared symbol" after the one real error.
                _guess_targets(b.text, scope)
        # Pass 1: which names are sequences, functions, declared or defined (order does not matter).
        everything = [st for _, pb in parsed if pb and not isinstance(pb, LoopMark) for st in pb.statements]
        scope.per_step = per_step_names(everything)     # L and L^{(t)}: a total and its per-step terms
        for b, pb in parsed:
            for st in (pb.statements if pb else []):
                target = st.parts[0]
                if st.kind in ("declaration", "definition"):
                    key = sequence_key(target, scope.per_step)
                    if key is not None:
                        scope.sequences.add(key)
                elif st.kind == "function" and isinstance(target, Name):
                    scope.functions.add(name_key(target.base, target.decoration))
        for st in definitions_written_eq([st for _, pb in parsed for st in (pb.statements if pb else [])], scope):
            key = sequence_key(st.parts[0], scope.per_step)   # `a^{(t)} = ...`: a definition (resolve.py)
            if key is not None:
                scope.sequences.add(key)
        resolver = Resolver(scope, lambda msg, node, hint="", _b=None: None)
        resolver.definitions = ctx.definitions       # a copy's derivative is written out from them (copies.py)
        ctx.numerator = self.jacobian_layout(blocks)
        if ctx.numerator:                            # a copy's Jacobian is read transposed too (resolve.py)
            resolver.shape = _shape_in(ctx)
        declared, defined, stepped = {}, {}, {}
        for b, pb in parsed:
            for st in (pb.statements if pb else []):
                if st.kind not in ("declaration", "definition"):
                    continue
                resolver.error = lambda msg, node, hint="", b=b: self.error(b, msg, node, hint)
                try:
                    name, time = resolver.target(st.parts[0])
                except DerivationError as e:
                    self.errors.append(e)
                    st.kind = "invalid"
                    continue
                if time is not None and time.var is None:
                    scope.initial.add(name)
                    continue
                seen = declared if st.kind == "declaration" else defined
                if name in seen:
                    what = "declared" if st.kind == "declaration" else "defined"
                    if stepped.get((what, name)) != (time is not None):
                        self.errors.append(self.error(
                            b, f"{name} is {what} twice (first on {self.where(seen[name])}), once with a step ({name}_t) "
                               "and once without: a name is one value or one per step", st.parts[0],
                            f"name the per-step one otherwise, e.g. L_t := ... and {name} := \\sum_t L_t"))
                    else:
                        self.errors.append(self.error(b, f"{name} is {what} twice (first on {self.where(seen[name])})",
                                                      st.parts[0]))
                    st.kind = "duplicate"
                    continue
                seen[name] = locate(self.text, b.offset + st.span[0], self.path).line
                stepped[("declared" if st.kind == "declaration" else "defined", name)] = time is not None
                if st.kind == "declaration":
                    scope.names[name] = "matrix" if st.parts[1][0] == "binary" else st.parts[1][0]
                elif name not in scope.names:
                    scope.names[name] = "defined"
        # Pass 2: meaning of every statement, in order.
        counter = 0
        loop, loops = None, []
        for b, pb in parsed:
            resolver.error = lambda msg, node, hint="", b=b: self.error(b, msg, node, hint)
            if isinstance(pb, LoopMark):
                loop = self.loop_mark(ctx, b, pb, loop, loops)
                continue
            for n, a, k, _ in pb.written:
                a = _shifted_steps(a, -(k or 0))      # p(y^{(t-1)} \mid ...) is p at t - 1: compared at t
                first = self._written.setdefault((id(ctx), n), (a, b.line))
                if first[0] != a:
                    self.errors.append(self.error(
                        b, f"{n} is written with the arguments {a} here and {first[0]} at {self.where(first[1])}; "
                           "they would be read as one quantity", None,
                        "write the same arguments each time, or give the other quantity another name"))
            links, before = [], len(ctx.claims)
            for st in [x for s in pb.statements for x in (s, s.rest) if x is not None]:
                if st.kind in ("duplicate", "invalid"):       # already reported in pass 1
                    continue
                if st.kind == "update":
                    self.update(ctx, resolver, b, st, loop)
                    continue
                try:
                    if st.kind == "declaration":
                        self.declaration(ctx, resolver, b, st)
                    elif st.kind == "function":
                        name = name_key(st.parts[0].base, st.parts[0].decoration)
                        ctx.declarations[name] = ir.Declaration(name, "function", source=self.source(b, st))
                    elif st.kind == "definition":
                        self.definition(ctx, resolver, b, st)
                    else:
                        resolver.entry = resolver.entry_letters()     # (\nabla_{o} L)_i = ...: entry-wise
                        resolver.entry_used = set()
                        resolver.copies_used = set()
                        resolver.transposed_copies = False
                        try:
                            exprs = [resolver.expr(e) for e in st.parts]
                        finally:
                            resolver.entry, used = set(), resolver.entry_used
                            if resolver.copies_used:
                                self._copies.setdefault(b.line, set()).update(resolver.copies_used)
                            if resolver.transposed_copies:
                                self._copy_jacobians.add(b.line)
                            checks, resolver.checks = resolver.checks, []
                        self._entry_checks.extend((b, node, what) for node, what in checks)
                        if is_entries_line(exprs):
                            # ∂q_k/∂W_{i,j} = 1_{k=i} x_j: for every k, i, j (entries_line)
                            exprs = self.sized(ctx, b, self.entries_line(b, exprs))
                            links.extend((st, exprs[k], exprs[k + 1], len(exprs) - 1) for k in range(len(exprs) - 1))
                            self._entry_lines.append((b, {id(e) for e in exprs}))
                            continue
                        if len(used) > 1:
                            raise self.error(b, "an entry-wise line uses one entry index: "
                                                f"{' and '.join(sorted(used))} here", st.parts[0], WHOLE_COLUMN)
                        exprs = self.sized(ctx, b, self.entrywise(b, st, exprs))
                        links.extend((st, exprs[k], exprs[k + 1], len(exprs) - 1) for k in range(len(exprs) - 1))
                except DerivationError as e:
                    self.errors.append(e)
                except RecursionError:      # a safety net under syntax.check_size: located, never a crash
                    self.errors.append(self.error(b, "this statement nests too deeply to read", st.parts[0],
                                                  "split it, or name an inner part with :="))
            if links:
                counter += 1
                if loop is not None and len(links) > 1:
                    self.errors.append(self.error(b, "a line of a loop assigns one value: a = b = c is a chain",
                                                  None, "write one equation per line of the loop"))
                self.claims(ctx, b, pb, links, counter)
                if loop is not None:
                    self.loop_line(ctx, b, ctx.claims[before:], loop)
        if loop is not None:
            self.errors.append(self.error(loop.block, "this loop is never closed", None,
                                          "end it with a block $$ \\textbf{end for} $$"))
        self.jacobian_reading(ctx, blocks)
        self.written_eq_forward(ctx)
        if not self.errors:
            self.hadamard_reading(ctx, hadamard_juxtapositions(ctx))
        annotated = self.shape_annotations(ctx)
        self.check_definitions(ctx)
        self.check_annotations(ctx, annotated, blocks)
        self.check_entries(ctx)
        self.index_ranges(ctx)
        for found in loops:
            self.check_algorithm(ctx, found)
        self.derivative_reading(ctx, blocks)
        self.given_at_fixed_steps(ctx, blocks)
        return ctx

    # ---------------------------------------------------------------- algorithms (docs: Algorithms)

    def loop_mark(self, ctx, b, mark: LoopMark, loop, loops):
        """A loop's first or last block: the loop now open (or None)."""
        if mark.kind == "up":
            self.errors.append(self.error(b, "a loop forward in time (t = 1, ..., T) is not read: an algorithm "
                                             "here is a backward pass", None,
                                          "write \\textbf{for } t = T, \\dots, 1"))
            return loop
        if mark.kind == "for":
            if mark.var != "t":
                self.errors.append(self.error(b, f"the loop's step is written {mark.var}; an algorithm's step is t",
                                              None, "write \\textbf{for } t = T, \\dots, 1"))
            if loop is not None:
                self.errors.append(self.error(b, f"a loop inside the loop that starts on {self.where(loop.block.line)} "
                                                 "is not read", None, "close the first with \\textbf{end for}"))
                return loop
            return _Loop(b, mark.var)
        if loop is None:
            self.errors.append(self.error(b, "\\textbf{end for} closes no loop", None,
                                          "start the loop with $$ \\textbf{for } t = T, \\dots, 1 $$"))
            return None
        loops.append(self.algorithm_claims(ctx, loop, b))
        return None

    def update(self, ctx, resolver, b, st, loop):
        """dW \\mathrel{+}= e: a line of a loop that adds to a total, read as the claim dW = \\sum_t e."""
        if loop is None:
            self.errors.append(self.error(b, "\\mathrel{+}= adds to a total in an algorithm's loop; outside a "
                                             "loop it says nothing", st.parts[0],
                                          "put the line between $$ \\textbf{for } t = T, \\dots, 1 $$ and "
                                          "$$ \\textbf{end for} $$, or write the total as \\sum_t"))
            return
        try:
            target, rhs = self.sized(ctx, b, [resolver.expr(e) for e in st.parts])
        except DerivationError as e:
            self.errors.append(e)
            return
        if loop.var != "t":
            self.errors.append(self.error(b, f"the loop's step is {loop.var}; an algorithm's step is written t",
                                          None, "write \\textbf{for } t = T, \\dots, 1"))
            return
        meta = b.meta
        name = target.name if isinstance(target, ir.Ref) else to_latex(target)
        base = meta.get("id") or f"{slug(ctx.title)}-{slug(name)}-total"
        cid = self.unique_id(base)
        source = self.source(b, st)
        claim = ir.Claim(cid, meta.get("label") or f"{b.heading or ctx.title}, {self.where(b.line)}",
                         target, algorithm.accumulated("t", rhs), source, section=b.heading or ctx.title,
                         reading=(meta.get("reading", "") + " The loop adds this line's value at every step: "
                                  f"read as ${to_latex(target)} = \\sum_{{t=1}}^{{T}} \\ldots$.").strip(),
                         depends_on_reading=bool(meta.get("reading")), comment=meta.get("comment", ""),
                         kind=meta.get("kind", "corrected" if "corrects" in meta else "as-written"),
                         corrects=meta.get("corrects"), group=cid)
        ctx.claims.append(claim)
        self.loop_line(ctx, b, [claim], loop, ir.Update(target, rhs, "+=", cid, source))

    def loop_line(self, ctx, b, claims, loop, update=None):
        """A block inside a loop: one line of it (or, marked Corrects:, the correction of one)."""
        if update is None:
            if not claims:
                return
            c = claims[0]
            update = ir.Update(c.lhs, c.rhs, "=", c.id, c.source)
        loop.ids.append(update.claim)
        if b.meta.get("corrects"):
            line = b.meta["corrects"].strip()
            if line in loop.corrections:
                self.errors.append(self.error(b, f"{line} is corrected twice in this loop (first on "
                                                 f"{self.where(loop.corrections[line][0].line)})", None,
                                              "keep one correction per line"))
            loop.corrections[line] = (b, update)
        else:
            loop.updates.append((b, update))

    def algorithm_claims(self, ctx, loop: _Loop, end: RawBlock):
        """The whole algorithm's claim (and its corrected version, when lines have corrections)."""
        meta = loop.block.meta
        base = meta.get("id") or f"{slug(ctx.title)}-algorithm"
        label = meta.get("label") or f"Algorithm, {self.where(loop.block.line)}"
        updates = tuple(u for _, u in loop.updates)
        source = ir.Source(self.path, loop.block.line, _loop_latex(updates))
        alg = ir.Algorithm(self.unique_id(base), label, updates, source,
                           {cid: u for cid, (_, u) in loop.corrections.items()})
        unknown = [(b, cid) for cid, (b, _) in loop.corrections.items() if cid not in {u.claim for u in updates}]
        for b, cid in unknown:
            self.errors.append(self.error(b, f"Corrects: {cid} names no line of this loop", None,
                                          "a correction inside a loop names the line it replaces by its Id"))
        common = {"section": loop.block.heading or ctx.title, "reading": meta.get("reading", ""),
                      "depends_on_reading": bool(meta.get("reading")), "comment": meta.get("comment", "")}
        ctx.algorithms[alg.id] = alg
        ctx.claims.append(ir.Claim(alg.id, label, None, None, source, kind="as-written", group=alg.id,
                                   algorithm=alg.id, **common))
        found = [(loop, alg)]
        if alg.corrections and not unknown:
            fixed = tuple(alg.corrections.get(u.claim, u) for u in updates)
            cid = self.unique_id(f"{alg.id}-corrected")
            corrected = ir.Algorithm(cid, f"{label.removesuffix(' (as written)')} (corrected)", fixed,
                                     ir.Source(self.path, end.line, _loop_latex(fixed)), {})
            ctx.algorithms[cid] = corrected
            ctx.claims.append(ir.Claim(cid, corrected.label, None, None, corrected.source, kind="corrected",
                                       corrects=alg.id, group=cid, algorithm=cid, **common))
            found.append((loop, corrected))
        return found

    def check_algorithm(self, ctx, found) -> None:
        """Located errors for a loop that does not compute, by induction, the values its lines stand for."""
        if self.errors:
            return
        for loop, alg in found:
            blocks = {u.claim: b for b, u in [*loop.updates, *loop.corrections.values()]}
            for p in algorithm.check(ctx, alg):
                b = blocks.get(alg.updates[p.index].claim, loop.block) if 0 <= p.index < len(alg.updates) \
                    else loop.block
                self.errors.append(self.error(b, p.message, p.node, p.hint))
    def hadamard_reading(self, ctx: ir.Context, read: dict) -> None:
        """A claim that reads a definition with two columns side by side read as ∘ (Graves' c_t = f_t c_{t-1})
        says so: its verdict depends on that reading."""
        for c in ctx.claims:
            if c.lhs is None or not read:
                continue
            seen, todo = set(), [r.name for side in (c.lhs, c.rhs) for r in ir.refs(side)]
            while todo:
                n = todo.pop()
                if n not in seen and n in ctx.definitions:
                    seen.add(n)
                    todo += [r.name for r in ir.refs(ctx.definitions[n].expr)]
            for name in sorted(seen & set(read)):
                products = ", ".join(f"{to_latex(p.left)} {to_latex(p.right)}" for p in read[name])
                note = (f"in the definition of {name}, {products} (columns of one size side by side) "
                        f"{'are' if len(read[name]) > 1 else 'is'} read as the element-wise product")
                c.reading, c.depends_on_reading = f"{c.reading} {note}".strip(), True

    def written_eq_forward(self, ctx: ir.Context) -> None:
        """A definition written `name = expr` (resolve.definitions_written_eq) computes forward: with a
        derivative on its right (dh_t = W^T dy_t, dy_t a name for ∂ℓ/∂y_t) the line is a claim about a
        name never defined, an error as before -- never a definition that would go unchecked."""
        for name, (b, st) in list(self._where.items()):
            d = ctx.definitions.get(name)
            if not st.written_eq or d is None:
                continue
            if any(isinstance(n, ir.Deriv) or (isinstance(n, ir.Ref) and n.name in ctx.definitions
                                               and ctx.definitions[n.name].notation) for n in d.expr.walk()):
                lhs = st.latex.split("=")[0].strip()
                self.errors.append(self.error(
                    b, f"undeclared symbol {lhs}: a line `{lhs} = ...` defines {lhs} only when its right-hand side "
                       "computes forward (no derivative, no name for one); as a claim, it is about a name never "
                       "defined", st.parts[0],
                    f"to name a derivative, write {lhs} := \\frac{{\\partial \\ell}}{{\\partial ...}}; to claim "
                    f"this line, define {lhs} first"))
                del ctx.definitions[name]

    def given_at_fixed_steps(self, ctx: ir.Context, blocks: list[RawBlock]) -> None:
        """A gradient given at one step (q := ∂ℓ/∂h_0, declared) is not read: the abstract loss is Σ <g, o>
        over quantities o, and h_0's would be taken for every step of h."""
        for n, d in ctx.definitions.items():
            wrt = d.expr.wrt if d.notation else None
            if n in ctx.declarations and isinstance(wrt, ir.Ref) and wrt.time is not None and wrt.time.var is None:
                b = max((b for b in blocks if d.source is not None and b.line <= d.source.line),
                        key=lambda b: b.line, default=blocks[0])
                self.errors.append(self.error(
                    b, f"{n} is given as the gradient at one step ({to_latex(d.expr)}); a given gradient is one "
                       "for the whole sequence", None,
                    f"give it for every step (e.g. g_t := \\frac{{\\partial \\ell}}{{\\partial {wrt.name}_t}}) "
                    "or define the loss"))

    def derivative_reading(self, ctx: ir.Context, blocks: list[RawBlock]) -> None:
        """`> Derivatives: earlier steps held fixed` (the note's reading of ℓ_t) or `total` (the default).

        Held fixed, a derivative of a quantity at a step t (∂ℓ_t/∂W, ∂c_t/∂c_{t-1}) holds every quantity
        at a step before t fixed; the claims whose meaning that changes say so (depends_on_reading).
        """
        for b in blocks:
            value = b.meta.get("derivatives")
            if value is None:
                continue
            key = " ".join(value.lower().rstrip(".").split())
            if key not in DERIVATIVE_READINGS:
                self.errors.append(self.error(b, f"Derivatives: {value!r} is not a reading of derivatives; write "
                                                 + " or ".join(f"'Derivatives: {k}'" for k in DERIVATIVE_READINGS)))
                continue
            ctx.held_fixed = DERIVATIVE_READINGS[key]
        if not ctx.held_fixed:
            return
        for c in ctx.claims:
            if c.lhs is not None and any(isinstance(n, ir.Deriv) and isinstance(n.of, ir.Ref) and n.of.time is not None
                                         for side in (c.lhs, c.rhs) for n in side.walk()):
                c.depends_on_reading = True
                note = "a derivative of a quantity at step t holds the steps before t fixed (Derivatives:)"
                c.reading = f"{c.reading} {note}".strip() if note not in c.reading else c.reading

    def jacobian_layout(self, blocks: list[RawBlock]) -> bool:
        """`> Jacobians: numerator layout` after any block of the context (or `denominator layout`, the default)."""
        numerator = False
        for b in blocks:
            value = b.meta.get("jacobians")
            if value is None:
                continue
            key = " ".join(value.lower().rstrip(".").split())
            if key not in JACOBIAN_LAYOUTS:
                self.errors.append(self.error(b, f"Jacobians: {value!r} is not a layout of Jacobians; write "
                                                 + " or ".join(f"'Jacobians: {k}'" for k in JACOBIAN_LAYOUTS)))
                continue
            numerator = JACOBIAN_LAYOUTS[key]
        return numerator

    def jacobian_reading(self, ctx: ir.Context, blocks: list[RawBlock]) -> None:
        """Under `> Jacobians: numerator layout`, every Jacobian ∂a/∂b of columns (a not a scalar) is the
        transpose of the format's: wrapped in an implied transpose (form/jacobians.py), here, once the whole
        context is known (`sized` did so already where the shapes were known while reading); the claims whose
        meaning that changes say so (depends_on_reading)."""
        if not ctx.numerator:
            return
        typer = Typer(ctx)
        for name, d in list(ctx.definitions.items()):
            named = d.expr.arg if isinstance(d.expr, ir.Transpose) and d.expr.implied else d.expr   # (by `sized`)
            if isinstance(named, ir.Deriv) and is_jacobian(typer, named):
                # Its name would stand for a value the engines read as a name for a derivative, not for a
                # transposed one: not read, rather than read in the wrong layout.
                b, st = self._where.get(name, (blocks[0], None))
                self.errors.append(self.error(
                    b, f"{name} names a Jacobian, {to_latex(named)}; under `Jacobians: numerator layout` a name "
                       "for a Jacobian is not read", st.parts[0] if st is not None else None,
                    "write the derivative itself where the name is used"))
                continue
            d.expr = numerator_layout(d.expr, typer)
        for c in ctx.claims:
            if c.lhs is None:
                continue
            c.lhs, c.rhs = numerator_layout(c.lhs, typer), numerator_layout(c.rhs, typer)
            if has_implied(c.lhs) or has_implied(c.rhs) or c.id in self._numerator_copies:
                c.depends_on_reading = True
                note = ("a Jacobian of columns is read in numerator layout, entry [i, j] = $\\partial a_i / "
                        "\\partial b_j$ (Jacobians:)")
                c.reading = f"{c.reading} {note}".strip() if note not in c.reading else c.reading
        for alg in ctx.algorithms.values():
            alg.updates = tuple(replace(u, target=numerator_layout(u.target, typer), rhs=numerator_layout(u.rhs, typer))
                                for u in alg.updates)
            alg.corrections = {k: replace(u, target=numerator_layout(u.target, typer),
                                          rhs=numerator_layout(u.rhs, typer)) for k, u in alg.corrections.items()}

    def shape_annotations(self, ctx: ir.Context) -> dict:
        """A quantity both declared and defined (h_t \\in R^H, h_t := ...; dy \\in R^K, dy := ∂L/∂y of a defined
        L) is defined: the declaration only states its shape, checked against the definition
        (`check_annotations`), and the engines see the definition alone.  The exception is a given gradient,
        declared and defined as the gradient of an abstract loss (declared, not defined): its definition says
        which gradient the free input is.  {name: its declaration} of the annotations taken out."""
        out = {}
        for name in [n for n in ctx.declarations if n in ctx.definitions]:
            decl, d = ctx.declarations[name], ctx.definitions[name]
            of = d.expr.of if d.notation else None
            given = isinstance(of, ir.Ref) and of.name in ctx.declarations and of.name not in ctx.definitions
            if decl.kind == "matrix" and not given:
                out[name] = ctx.declarations.pop(name)
        return out

    def check_annotations(self, ctx: ir.Context, annotated: dict, blocks: list[RawBlock]) -> None:
        """The shape a quantity is declared with is the shape of its definition (and a sequence's is one)."""
        from ..form.shapes import IllTyped, Typer, fmt, same
        if self.errors or not annotated:
            return
        typer = Typer(ctx)
        for name, decl in annotated.items():
            d = ctx.definitions[name]
            try:
                shape = typer.quantity(name)
            except IllTyped:
                continue                            # reported by check_definitions
            sequence = d.target.time is not None
            if same(shape[0], decl.shape[0]) and same(shape[1], decl.shape[1]) and sequence == decl.sequence:
                continue
            where = decl.source.line if decl.source else 0
            b = max((b for b in blocks if b.line <= where), key=lambda b: b.line, default=blocks[0])
            said = f"{fmt(decl.shape)}{' at every step' if decl.sequence else ''}"
            is_ = f"{fmt(shape)}{' at every step' if sequence else ''}"
            self.errors.append(self.error(
                b, f"{name} is declared {said} but its definition gives {is_}", None,
                f"declare it with the shape of its definition ({is_}), or leave the declaration out"))

    def check_definitions(self, ctx: ir.Context) -> None:
        """Every definition must compose for every size: a model that does not is an error of the file."""
        from ..form.shapes import IllTyped, Typer
        if self.errors:          # names of a block that did not parse are only guessed: no shapes to check
            return
        cycle = definition_cycle(ctx)
        if cycle:
            b, st = self._where[cycle[0]]
            self.errors.append(self.error(b, "these definitions refer to each other in a circle ("
                                          + " → ".join(cycle + cycle[:1]) + "): a quantity must be defined "
                                          "from quantities defined without it (or at an earlier step)", st.parts[0]))
            return
        typer = Typer(ctx)
        reported, elsewhere = 0, []
        for name, (b, st) in self._where.items():
            if name not in ctx.definitions:
                continue
            try:
                typer.quantity(name)
            except IllTyped as e:
                error = self.error(b, f"the definition of {name} does not compose: {e}",
                                   e.node if getattr(e.node, "span", None) else st.parts[1])
                if e.node is not None and not any(n is e.node for n in ctx.definitions[name].expr.walk()):
                    elsewhere.append(error)   # the failing product is in a definition this one uses: reported there
                    continue
                self.errors.append(error)
                reported += 1
        if elsewhere and not reported:       # never leave a model that does not compose unreported
            self.errors.append(elsewhere[0])

    def entrywise(self, b: RawBlock, st, exprs: list) -> list:
        """A line about entry i of columns (Deep Learning 10.18: (\\nabla_{o^{(t)}} L)_i = \\partial L / \\partial
        o_i^{(t)} = \\hat{y}_i^{(t)} - \\mathbf{1}_{i = y^{(t)}}, for every i) read as the same line of whole
        columns (resolve.entrywise); the shapes that reading needs are checked with the context's
        (check_entries)."""
        from ..form.shapes import is_literal
        for e in exprs:
            grad = next((n for n in e.walk() if isinstance(n, EntryGrad)), None)
            if grad is not None:
                raise self.error(b, "the gradient of an entry is read only inside a sum over entries, \\sum_i (the "
                                    "entry i of a column) \\nabla_{W^{(t)}} h_i^{(t)}", grad, WHOLE_COLUMN)
        if not any(isinstance(n, Entry) and not isinstance(n.arg, ir.Basis) for e in exprs for n in e.walk()):
            # no entry i but perhaps 1_{i = y}, the one-hot column as ever: a line of columns
            return [ir.transform(e, lambda n: n.arg if isinstance(n, Entry) else n) for e in exprs]
        read = []
        for e in exprs:
            try:
                read.append(entrywise(e))
            except EntryError as x:
                raise self.error(b, x.args[0], x.node, x.hint) from None
        if not any(had for _, had, _ in read):
            return exprs
        for (out, had, _), e in zip(read, exprs):
            if not had and not is_literal(out):
                raise self.error(b, "in an entry-wise line (an entry i on one side) every member is an entry i "
                                    "of a column", e, WHOLE_COLUMN)
        self._entry_checks.extend((b, node, what) for _, _, checks in read for node, what in checks)
        return [out for out, _, _ in read]

    def entries_line(self, b: RawBlock, exprs: list) -> list:
        """A line of entries (CS231n: \\frac{\\partial q_k}{\\partial W_{i,j}} = \\mathbf{1}_{k=i} x_j): an equality
        of scalars for every value of its free entry indices, which stay indices (no line of columns holds
        a derivative of an entry by an entry of a matrix).  Entry k of a column is (q)_k, W_{i,j} entry [i, j]
        of a matrix, ∂s/∂W_{i,j} entry [i, j] of ∂s/∂W (s a scalar: checked with the shapes), 1_{k=i} the
        Kronecker delta; each index's range is the size it indexes (index_ranges)."""
        def convert(n):
            if isinstance(n, Entry) and n.derivative:
                checks.append((b, n.arg.of, "differentiated scalar"))      # ∂s/∂x_j: entry j of ∂s/∂x
            if isinstance(n, Entry):
                return ir.Component(n.arg, ir.Ref(n.letter, span=n.span), span=n.span,
                                    style="sub" if isinstance(n.arg, ir.Ref) else None)
            if isinstance(n, MatrixEntryMark):
                return ir.MatrixEntry(n.arg, ir.Ref(n.row, span=n.span), ir.Ref(n.col, span=n.span), span=n.span,
                                      style=n.style)
            if isinstance(n, BasisMark):
                return ir.Basis(ir.Ref(n.letter, span=n.span), "e", span=n.span)
            if isinstance(n, DeltaMark):
                return ir.Kronecker(ir.Ref(n.a, span=n.span), ir.Ref(n.b, span=n.span), span=n.span, style=n.style)
            if isinstance(n, EntryGrad):
                raise self.error(b, "the gradient of an entry is read only inside a sum over entries", n,
                                 WHOLE_COLUMN)
            return n
        checks: list = []
        out = [ir.transform(e, convert) for e in exprs]
        self._entry_checks.extend(checks)
        for e in out:
            for n in e.walk():
                if isinstance(n, ir.MatrixEntry) and n.style.startswith("deriv-"):
                    self._entry_checks.append((b, n.arg.of, "differentiated scalar"))
        return out

    def index_ranges(self, ctx: ir.Context) -> None:
        """The range of each free entry index of a line of entries: the size of what it indexes (k in q_k:
        q's rows; i, j in W_{i,j}: W's rows and columns), one range per letter in a line."""
        from ..form.shapes import Typer, free_indices
        lines, self._entry_lines = self._entry_lines, []
        if self.errors or not lines:
            return
        typer = Typer(ctx)
        for b, members in lines:
            for claim in ctx.claims:
                if id(claim.lhs) not in members and id(claim.rhs) not in members:
                    continue
                try:
                    for side in (claim.lhs, claim.rhs):
                        for n in side.walk():
                            self._no_column_entry(b, typer, n)
                except DerivationError as e:
                    self.errors.append(e)
                    continue
                ranges = free_indices(ctx, [claim.lhs, claim.rhs])
                letters = {r.name for side in (claim.lhs, claim.rhs) for r in ir.refs(side)
                           if r.name not in ctx.declarations and r.name not in ctx.definitions}
                for letter in sorted(letters & {str(s) for s in ctx.sizes()}):
                    # k both a size (W \\in \\mathbb{R}^{k \\times d}) and an index: a counterexample could not
                    # say which is which
                    self.errors.append(self.error(
                        b, f"{letter} is a size of this part of the file, so it is no entry index here", None,
                        "write the entry index with another letter (i, j, k, l)"))
                for letter in sorted(letters - set(ranges)):
                    self.errors.append(self.error(
                        b, f"the entry index {letter} indexes no column or matrix in this line, so it has no range",
                        None, f"write it as the index of an entry too, e.g. x_{letter} or W_{{i,{letter}}}"))
                claim.indices = {k: v for k, (v, _) in sorted(ranges.items())}

    def _no_column_entry(self, b, typer, n) -> None:
        """W_{i,j} of a column is an error that says to write x_i (a column's entry has one index)."""
        from ..form.shapes import IllTyped, fmt, same
        if not isinstance(n, ir.MatrixEntry):
            return
        arg = n.arg.wrt if n.style.startswith("deriv-") and isinstance(n.arg, ir.Deriv) else n.arg
        try:
            rows, cols = typer.infer(arg)
        except IllTyped:
            return                                # the claim is ill-typed, and says so
        if same(cols, 1):
            raise self.error(b, f"{to_latex(arg)} is a column ({fmt((rows, cols))}): it has no entry [{n.row.name}, "
                                f"{n.col.name}]", n, f"write its entry {to_latex(arg)}_{n.row.name}")

    def check_entries(self, ctx: ir.Context) -> None:
        """An entry-wise line reads entries of columns, scalar factors and ∂L/∂o_i of a scalar L."""
        from ..form.shapes import IllTyped, Typer, is_scalar_shape, same
        checks, self._entry_checks = self._entry_checks, []
        if self.errors or not checks:
            return
        typer = Typer(ctx)
        for b, node, what in checks:
            try:
                rows, cols = typer.infer(node)
            except IllTyped:
                continue                          # the claim is ill-typed, and says so
            if isinstance(what, tuple):             # ("size", n): a sum over entries that ends at n
                if not (same(cols, 1) and same(rows, ir.size(what[1]))):
                    self.errors.append(self.error(
                        b, f"this sum over entries ends at {what[1]}, but {to_latex(node)} has {rows} entries "
                           f"({rows}×{cols})", node,
                        f"the last term is the term at the column's size ({rows}); or write \\sum_i, every entry"))
                continue
            if what == "differentiated scalar":       # ∂s/∂W_{i,j} of a line of entries
                if not is_scalar_shape((rows, cols)):
                    self.errors.append(self.error(
                        b, f"a derivative by an entry is read of a scalar, and {to_latex(node)} is "
                           f"{rows}×{cols}", node, "differentiate an entry, e.g. \\frac{\\partial q_k}{\\partial W_{i,j}}"))
                continue
            ok = is_scalar_shape((rows, cols)) if what == "scalar" else same(cols, 1)
            if not ok:
                self.errors.append(self.error(
                    b, f"an entry-wise line needs {to_latex(node)} to be a {what} (it is {rows}×{cols})", node,
                    WHOLE_COLUMN))

    def sized(self, ctx, b, exprs):
        """Every \\mathbf{1} given its size from the expressions around it (shapes.size_ones), and a side
        written `0` against a column or a matrix read as the zero of that shape (∂L/∂x = 0)."""
        from ..form.shapes import IllTyped, size_ones
        if ctx.numerator:
            # Before \mathbf{1} is sized: its size is fixed by the Jacobian's shape in the declared layout.
            typer = Typer(ctx)
            exprs = [numerator_layout(e, typer) for e in exprs]
        try:
            return _zeros_shaped(ctx, size_ones(ctx, exprs))
        except IllTyped as e:
            raise self.error(b, str(e), e.node) from None

    def source(self, b: RawBlock, st) -> ir.Source:
        loc = locate(self.text, b.offset + st.span[0], self.path)
        return ir.Source(self.path, loc.line, st.latex, loc.column)

    def declaration(self, ctx, resolver, b, st):
        name, time = resolver.target(st.parts[0])
        kind, dims = st.parts[1]
        binary = kind == "binary"          # y \in \{0, 1\}: a scalar input that is 0 or 1
        kind = "matrix" if binary else kind
        if time is not None and time.var is None:      # h_0: the initial state of a sequence
            decl = ir.Declaration(name, "matrix", tuple(ir.size(d) for d in dims), sequence=True, initial=True,
                                  source=self.source(b, st))
            ctx.declarations[name + "_0"] = decl
            return
        ctx.declarations[name] = ir.Declaration(name, kind, tuple(ir.size(d) for d in dims),
                                                sequence=time is not None, source=self.source(b, st), binary=binary)

    def definition(self, ctx, resolver, b, st):
        name, time = resolver.target(st.parts[0])
        if name == "T" and time is None:
            # T := 1 fixes the number of steps: a context about one step on its own.
            n = st.parts[1]
            if not (isinstance(n, ir.Number) and n.value.denominator == 1 and n.value >= 1):
                raise self.error(b, "T := n needs a whole number of steps n ≥ 1", st.parts[1])
            ctx.length = int(n.value)
            return
        try:
            (expr,) = self.sized(ctx, b, [resolver.expr(st.parts[1])])
        finally:
            # the shapes a sum over entries (\sum_i q_i^2) needs, checked once the context is known
            checks, resolver.checks = resolver.checks, []
            self._entry_checks.extend((b, node, what) for node, what in checks)
        if name in ctx.definitions:
            raise self.error(b, f"{name} is defined twice", st.parts[0])
        free = _free_step(expr) if time is None else None
        if free is not None:
            # q := \tanh(W x_t): one value, read from a step t that nothing fixes
            raise self.error(b, f"{name} has no step, but its right-hand side reads {to_latex(free)} at the step t",
                             st.parts[0], f"define it at every step, {name}_t := ..., or sum over the steps "
                                          "(\\sum_t ...) in its right-hand side")
        ctx.definitions[name] = ir.Definition(ir.Ref(name, time, span=st.parts[0].span), expr, self.source(b, st))
        self._where[name] = (b, st)

    def claims(self, ctx, b, pb, links, counter):
        meta = b.meta
        for what, name in ((r"\tag{%s}", pb.tag), (meta.get("id_spelling", "Id: %s"), meta.get("id"))):
            if name:
                first = self.named.setdefault((what, name), b.line)
                if first != b.line:
                    self.errors.append(self.error(b, f"{what % name} is used twice (first at {self.where(first)}): "
                                                     "it names one statement"))
        base = meta.get("id") or (slug(pb.tag) if pb.tag else f"{slug(ctx.title)}-{counter}")
        kind = meta.get("kind", "corrected" if "corrects" in meta else "as-written")
        if kind not in KINDS:
            self.errors.append(self.error(b, f"Kind must be one of {', '.join(KINDS)}, not {kind!r}"))
            kind = "as-written"
        several = len(links) > 1
        reading = meta.get("reading", "")
        copies = sorted(re.sub(r"\^\{\((.*?)\)\}", r"^(\1)", c) for c in self._copies.get(b.line, ()))
        if copies:
            # Said next to the line, as any reading: what the engines check is the written-out derivative.
            reading = (reading + " " if reading else "") + (
                f"{', '.join(copies)}: the copy of the weight used at that step only (the Deep Learning book's "
                "§10.2.2); its derivative is written out from that step's definitions, every other step held "
                "fixed (docs/derivation-format.md).")
        if pb.written:
            # L(\{x^{(1)}, ..., x^{(\tau)}\}, ...) and p_{\text{model}}(y^{(t)} \mid ...): said next to the line
            read = dict.fromkeys(f"{n}{a} as {n}" + ("" if k is None else " at step t" + (f"{k:+d}" if k else ""))
                                 for n, a, k, _ in pb.written)
            reading = (reading + " " if reading else "") + (
                f"{'; '.join(read)}: arguments written as sets of steps or after \\mid only say what a quantity "
                "depends on (docs/derivation-format.md).")
        rows = _rows_of_links(meta.get("rows", ()), links)
        for n, (st, lhs, rhs, _) in enumerate(links, start=1):
            cid = self.unique_id(f"{base}-{n}" if several else base)
            label = meta.get("label") or pb.tag or f"{b.heading or ctx.title}, {self.where(b.line)}"
            if several:
                label += f" [{n}/{len(links)}]"
            if rows and rows[n - 1][1]:
                # a numbered row of a chain: its \tag is the label, its \label (else its tag) the id
                tag, ident, k, m = rows[n - 1]
                self.ids.discard(cid)
                cid = self.unique_id(ident + (f"-{k}" if m > 1 else ""))
                label = (tag or f"{b.heading or ctx.title}, {self.where(b.line)}") + (f" [{k}/{m}]" if m > 1 else "")
            if b.line in self._copy_jacobians:
                self._numerator_copies.add(cid)
            latex = _link_latex(st.latex, n, len(links) if several else 1, st)
            source = self.source(b, st)
            source.latex = latex
            ctx.claims.append(ir.Claim(cid, label, lhs, rhs, source, section=b.heading or ctx.title,
                                       reading=reading, depends_on_reading=bool(meta.get("reading")),
                                       comment=meta.get("comment", ""), kind=kind, corrects=meta.get("corrects"),
                                       remark=pb.remark, group=base))



def is_entries_line(exprs: list) -> bool:
    """A line of entries (entries_line): an entry of a matrix, a Kronecker delta of entry indices, e_k at one,
    or the derivative of an entry by an entry (∂q_k/∂x_j).  Two entry indices alone are no such line: in
    (\\nabla_{o} L)_i = \\hat{y}_j a j for i is a slip, which the entry-wise reading reports."""
    def marks(n):
        return isinstance(n, (MatrixEntryMark, DeltaMark, BasisMark)) or (
            isinstance(n, Entry) and n.derivative and any(isinstance(x, Entry) for x in n.arg.of.walk()))
    return any(marks(n) for e in exprs for n in e.walk())


def _shape_in(ctx: ir.Context):
    """The shape of an expression in the context as far as it is known (a copy's Jacobian under a declared
    numerator layout: of a column, transposed; of a scalar, not)."""
    return lambda e: Typer(ctx).infer(e)


def _rows_of_links(rows, links) -> list[tuple]:
    """For each link of a chain set on rows (`a &= b \\tag{1} \\\\ &= c \\tag{2}`): (the tag, the \\label of the
    row it ends on, its place k among the m links ending on that row, m); [] for a display not so set.  The
    tag and label of a row holding only the left-hand side go with the first equality; those of the row of
    a definition L = a in L = a = b with nothing."""
    if not rows or not links:
        return []
    def row_of(end):
        return next((r for r, row in enumerate(rows) if end <= row[2]), len(rows) - 1)
    ending, carried = [], {}
    first = 0
    for k, (st, *_rest) in enumerate(links):
        if k == 0 or links[k - 1][0] is not st:
            first = k
            lead = row_of((st.parts[0].span or (0, 0))[1])
            if not st.after_definition:
                carried[k] = lead
        ending.append(row_of((st.parts[k - first + 1].span or (0, 0))[1]))
    out = []
    for k, r in enumerate(ending):
        same = [j for j, x in enumerate(ending) if x == r]
        tag, name, _ = rows[r]
        ident = name or (slug(tag) if tag else None)
        if k in carried and carried[k] != r and k == same[0]:
            lead_tag, lead_name, _ = rows[carried[k]]
            tag = ", ".join(t for t in (lead_tag, tag) if t) or None
            ident = ident or lead_name or (slug(lead_tag) if lead_tag else None)
        out.append((tag, ident, same.index(k) + 1, len(same)))
    return out


def _shifted_steps(latex: str, k: int) -> str:
    """`latex` with every step t + o written t + o + k (the letter t alone, outside command names)."""
    def shift(m):
        o = int(m.group(2).replace(" ", "")) if m.group(2) else 0
        o += k
        return "t" if o == 0 else f"t{o:+d}"
    return re.sub(r"(?<![A-Za-z\\])t(?![A-Za-z])(\s*([+-]\s*\d+))?", shift, latex) if k else latex


def _free_step(e: ir.Expr, bound: frozenset = frozenset()) -> ir.Ref | None:
    """A quantity read at a step t + k that no sum around it binds, or None."""
    if isinstance(e, ir.Ref) and e.time is not None and e.time.var == "t" and "t" not in bound:
        return e
    inner = bound | {e.var} if isinstance(e, ir.Sum) else bound
    return next((r for k in e.children() if (r := _free_step(k, inner)) is not None), None)


def _zeros_shaped(ctx: ir.Context, exprs: list) -> list:
    """A side that is the number 0, in a chain whose other sides are columns or matrices, as the zero of their
    shape: 0 𝟏 for an r×1 column, 0 𝟏 𝟏^⊤ for an r×c matrix (what "= 0" means in a textbook)."""
    from ..form.shapes import IllTyped, Typer, is_scalar_shape
    zero = ir.Number(Fraction(0))
    if not any(e == zero for e in exprs) or all(e == zero for e in exprs):
        return exprs
    typer = Typer(ctx)
    try:
        shape = next(typer.infer(e) for e in exprs if e != zero)
    except IllTyped:
        return exprs
    if is_scalar_shape(shape):
        return exprs
    rows, cols = shape
    value = ir.MatMul(zero, ir.Ones(rows))
    if not typer.eq(cols, 1):
        value = ir.MatMul(value, ir.Transpose(ir.Ones(cols)))
    return [value if e == zero else e for e in exprs]


def _loop_latex(updates) -> str:
    """A whole loop on one line, for the report: for t = T, ..., 1: its lines, separated by ;."""
    return "\\textbf{for } t = T, \\dots, 1: " + "; ".join(
        (u.source.latex if u.source else to_latex(u.target)) for u in updates)


def _link_latex(latex: str, n: int, total: int, st) -> str:
    """The LaTeX of link n of a chain a = b = c (the whole statement when it has one link)."""
    if total == 1:
        return latex
    parts = split_top_level(latex, "=")
    if len(parts) != total + 1:
        return latex
    return f"{parts[n - 1].strip()} = {parts[n].strip()}"


def parse_statement(latex: str, ctx: ir.Context) -> tuple[ir.Expr, ir.Expr]:
    """(lhs, rhs) of one claim `lhs = rhs` written in the notation of an existing context."""
    block = parse_block(latex, 0, latex, "<statement>")
    if len(block.statements) != 1 or block.statements[0].kind != "chain" or len(block.statements[0].parts) != 2:
        raise DerivationError("expected one claim lhs = rhs")
    raw = RawBlock(latex, 0, 1, ctx.title, ctx.title)
    builder = _Builder(latex, "<statement>")
    resolver = Resolver(Scope.of(ctx), lambda msg, node, hint="": builder.error(raw, msg, node, hint))
    resolver.definitions = ctx.definitions
    if ctx.numerator:                     # read in the layout the context declares, as the file's lines are
        resolver.shape = _shape_in(ctx)
    try:
        lhs, rhs = (resolver.expr(e) for e in block.statements[0].parts)
    except DerivationError as first:
        # a line of entries (a repair of ∂q_k/∂W_{i,j} = ...): read with its free entry indices, else the error
        read = _entries_statement(builder, raw, resolver, block.statements[0].parts)
        if read is None:
            raise first from None
        lhs, rhs = read
    from ..form.shapes import IllTyped, size_ones
    if ctx.numerator:
        typer = Typer(ctx)
        lhs, rhs = numerator_layout(lhs, typer), numerator_layout(rhs, typer)
    try:
        lhs, rhs = size_ones(ctx, [lhs, rhs])
    except IllTyped as e:
        raise builder.error(raw, str(e), e.node) from None
    return lhs, rhs


def _entries_statement(builder, raw, resolver, parts) -> list:
    """The members of a line of entries read on its own (parse_statement), or None for any other line."""
    resolver.entry, resolver.entry_used = resolver.entry_letters(), set()
    try:
        exprs = [resolver.expr(e) for e in parts]
    except DerivationError:
        return None
    finally:
        resolver.entry = set()
    return builder.entries_line(raw, exprs) if is_entries_line(exprs) else None


def parse_derivation(text: str, path: str = "<derivation>", scanner=None, where=None) -> ir.Derivation:
    """The derivation written in `text`.  `scanner(text, path)` finds its blocks (`scan`, the
    Markdown reader, unless given: files.py gives the one of .tex files); `where(line)` names a
    line in messages (files.py: a notebook's cell and line)."""
    title, blocks, errors = (scanner or scan)(text, path)
    builder = _Builder(text, path, len(errors), where)
    contexts = builder.build(blocks)
    errors += builder.errors
    if errors:
        errors = sorted(errors, key=lambda e: (e.location.line, e.location.column) if e.location else (0, 0))
        if len(errors) >= MAX_ERRORS:
            last = errors[MAX_ERRORS - 1].location
            errors = errors[:MAX_ERRORS] + [DerivationError(
                f"reading stopped at {MAX_ERRORS} errors" + (f" (the last at {builder.where(last.line)})" if last else "")
                + ": later lines may have more", hint="is this a derivation file (docs/derivation-format.md)?")]
        raise DerivationErrors(errors)
    return ir.Derivation(path, title or Path(path).stem, contexts)
