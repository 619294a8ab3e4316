"""The .tex front end: the display math of a LaTeX document as the blocks the Markdown reader builds.

`scan_tex` is `reader.scan` for a .tex file: it returns (title, blocks, errors) with every
block's text at its own offset in the file, so that the rest of the reader (parsing, names,
located errors) works on the .tex file itself and every error points into it.  What it reads:

- display math in `equation`, `align`, `gather`, `multline`, `eqnarray`, `displaymath` (starred
  or not), `\\[ ... \\]` and `$$ ... $$`; everything else (preamble, prose, inline `$...$`,
  comments, other environments' own markup) is ignored, but math inside a `theorem` or `proof`
  is read;
- a row of `align`, `gather` or `eqnarray` (rows end at `\\\\`) is a statement of its own; a row
  whose text starts with `&` (`&= ...`, `&\\quad + ...`) continues the row above: the chain
  `a &= b \\\\ &= c` is `a = b = c`.  In `equation` and `\\[ \\]` a `\\\\` before a `&` row joins
  (`split`, `aligned`), another `\\\\` separates two statements; in `multline` it only breaks a line;
- `\\label{...}` is the statement's id, `\\tag{...}` its label (and its id when there is no
  `\\label`, as in Markdown); `\\nonumber`, `\\notag`, alignment `&` carry no meaning;
- the highest sectioning command the document uses (`\\chapter` in a book, `\\section` in an
  article) starts a new context, as a level-1 Markdown heading does; lower ones title sections;
- `% Key: value` comment lines right after a display say about its last statement what a
  Markdown blockquote says (`% Corrects: dh`, `% Reading: ...`).

Text is blanked (replaced by spaces of the same length), never removed, so offsets stay those
of the file.
"""
from __future__ import annotations

import re

from .blocks import META_KEYS, RawBlock, slug
from .errors import DerivationError, locate

SECTIONS = ("part", "chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph")
ROWS = ("align", "gather", "eqnarray")                  # one statement per row
ONE = ("equation", "multline", "displaymath")           # one display, its rows joined
# Display math the reader does not read: an error, not a pass (as in Markdown).
OTHER = ("alignat", "flalign", "xalignat", "xxalignat", "dmath", "dgroup")
# Environments inside a display that only lay it out.
LAYOUT = ("split", "aligned", "gathered", "alignedat", "multlined")

_TOKEN = re.compile(
    r"(?P<escape>\\[\\$%])"
    r"|\\(?P<section>" + "|".join(SECTIONS) + r")\b\*?\s*(?:\[[^\]\n]*\]\s*)?(?=\{)"
    r"|\\begin\s*\{(?P<env>[A-Za-z]+)(?P<star>\*?)\}"
    r"|(?P<bracket>\\\[)|(?P<dollars>\$\$)|(?P<title>\\title\s*(?=\{))")
_INNER = re.compile(
    r"\\(?P<cmd>label|tag\*?)\s*\{(?P<arg>[^{}]*)\}|\\(?:nonumber|notag)(?![A-Za-z])"
    r"|\\(?P<be>begin|end)\s*\{(?P<env>[A-Za-z]+\*?)\}(?:\[[a-z]*\])?|(?P<newline>\\\\(?:\s*\[[^\]\n]*\])?)"
    r"|(?P<amp>&)|\\.")
_INDENT = re.compile(r"\s*(?:\\q?quad(?![A-Za-z])\s*)+")
_META = re.compile(r"^\s*%+\s*(?P<key>[A-Za-z]+)\s*:\s*(?P<value>.*)$")


def mask_comments(text: str) -> str:
    """`text` with every comment (an unescaped % to the end of its line) blanked."""
    out = []
    for line in text.split("\n"):
        i = 0
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            if line[i] == "%":
                line = line[:i] + " " * (len(line) - i)
                break
            i += 1
        out.append(line)
    return "\n".join(out)


def _group_end(text: str, start: int, limit: int = 1000) -> int:
    """The offset after the brace group that opens at `start`, looking no further than `limit`
    characters (a title is short; an unclosed brace must not make every title read the whole file)."""
    depth, i, stop = 0, start, min(len(text), start + limit)
    while i < stop:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return stop


def _blank(chars: list, start: int, end: int) -> None:
    for k in range(start, end):
        if chars[k] != "\n":
            chars[k] = " "


def scan_tex(text: str, path: str) -> tuple[str, list, list]:
    """(title, blocks, errors) of a LaTeX document, like reader.scan of a Markdown file."""
    masked = mask_comments(text)
    begin = re.search(r"\\begin\s*\{document\}", masked)
    body_start = begin.end() if begin else 0
    end = re.search(r"\\end\s*\{document\}", masked)
    body_end = end.start() if end and end.start() >= body_start else len(masked)
    levels = [SECTIONS.index(m.group(1)) for m in re.finditer(r"\\(" + "|".join(SECTIONS) + r")\b", masked[body_start:body_end])]
    top = min(levels, default=None)
    title, heading, context = "", "", ""
    declared = re.search(r"\\title\s*(?=\{)", masked[:body_start])        # \title{...} in the preamble
    if declared:
        title = " ".join(masked[declared.end() + 1:_group_end(masked, declared.end()) - 1].split())
    blocks, errors = [], []
    pos = body_start
    while pos < body_end:
        m = _TOKEN.search(masked, pos, body_end)
        if m is None:
            break
        pos = m.end()
        if m.group("escape"):
            continue
        if m.group("title") is not None or m.group("section"):
            close = _group_end(masked, m.end())
            name = " ".join(masked[m.end() + 1:close - 1].split())
            pos = close
            if m.group("title") is not None:
                title = title or name
            elif SECTIONS.index(m.group("section")) == top:
                heading = context = name
            else:
                heading = name
            continue
        if m.group("env"):
            env, star = m.group("env"), m.group("star")
            if env in OTHER:
                errors.append(DerivationError(
                    f"display math in \\begin{{{env}{star}}} is not read", locate(text, m.start(), path, len(m.group())),
                    "write it as align (rows of statements, & to align) or equation"))
                continue
            if env not in ROWS + ONE:
                continue                   # prose environments: their math is found inside them
        else:
            env, star = ("\\[" if m.group("bracket") else "$$"), ""
        found, problems, stop = read_display(text, masked, env, star, m.start(), m.end(), path, heading, context,
                                             body_end)
        blocks += found
        errors += problems
        if stop is None:
            break
        pos = stop
        if found:
            _comment_meta(text, stop, found[-1], path)
    title = title or next((b.context for b in blocks if b.context), "")
    return title, blocks, errors


def read_display(text: str, masked: str, env: str, star: str, open_start: int, open_end: int, path: str,
                 heading: str, context: str, stop: int | None = None) -> tuple[list, list, int | None]:
    """(blocks, errors, the offset after its end) of the display opened at masked[open_start:open_end]
    by `\\begin{env*}`, `\\[` or `$$`; the offset is None when it is never closed (before `stop`)."""
    if env == "\\[":
        closing = re.compile(r"\\\]")
    elif env == "$$":
        closing = re.compile(r"\$\$")
    else:
        closing = re.compile(r"\\end\s*\{" + env + re.escape(star) + r"\}")
    close = closing.search(masked, open_end, len(masked) if stop is None else stop)
    if close is None:
        return [], [DerivationError(f"this {masked[open_start:open_end]} is never closed",
                                    locate(text, open_start, path, open_end - open_start))], None
    found, problems = display_rows(masked, text, open_end, close.start(), env, path, heading, context)
    return found, problems, close.end()


def display_rows(masked: str, text: str, start: int, end: int, env: str, path: str, heading: str,
             context: str) -> tuple[list, list]:
    """The blocks of one display (its content is masked[start:end]), and the errors found."""
    chars = list(masked[start:end])
    errors = []
    rows = [[start, None, [], False]]     # [row start, row end, (label or tag, value, offset), starts with &]
    depth = 0                           # environments (matrices) inside the display: their & and \\ are theirs
    for m in _INNER.finditer(masked, start, end):
        a, b = m.start() - start, m.end() - start
        row = rows[-1]
        if m.group("cmd"):
            row[2].append((m.group("cmd").rstrip("*"), m.group("arg").strip(), m.start()))
            _blank(chars, a, b)
        elif m.group("be"):
            name = m.group("env").rstrip("*")
            if name in LAYOUT:
                _blank(chars, a, b)
            else:
                depth += 1 if m.group("be") == "begin" else -1
        elif m.group().startswith("\\no"):
            _blank(chars, a, b)
        elif depth > 0:
            continue
        elif m.group("amp"):
            if not "".join(chars[row[0] - start:a]).strip():
                row[3] = True
                # `&\quad + d` indents a continued right-hand side; \quad would separate statements
                indent = _INDENT.match(masked, m.end(), end)
                if indent:
                    _blank(chars, a, indent.end() - start)
            chars[a] = " "
        elif m.group("newline"):
            row[1] = m.start()
            rows.append([m.end(), None, [], False])
    rows[-1][1] = end
    # Rows into statements: a row starting with & continues the one above it.
    groups = []
    for k, row in enumerate(rows):
        joins = row[3] and groups
        if k > 0:
            # the \\ before this row: blank when the row continues the statement (or in multline),
            # ", " (two characters, as long as \\) between two statements of one display
            sep = rows[k - 1][1] - start
            empty = not "".join(chars[row[0] - start:row[1] - start]).strip()      # a \\ ending the display
            ended = "".join(chars[rows[k - 1][0] - start:sep]).rstrip().endswith(",")    # a row `...),\\`
            blank = joins or empty or ended or env == "multline" or env in ROWS
            chars[sep:sep + 2] = [" ", " "] if blank else [",", " "]
            _blank(chars, sep + 2, row[0] - start)
        if joins or (groups and env not in ROWS):
            groups[-1].append(row)
        else:
            groups.append([row])
    blocks = []
    for group in groups:
        g_start, g_end = group[0][0], group[-1][1]
        body = "".join(chars[g_start - start:g_end - start])
        if not body.strip():
            continue
        lead = len(body) - len(body.lstrip())
        marks = [x for row in group for x in row[2]]
        meta = {}
        per_row = {kind: [sum(x[0] == kind for x in row[2]) for row in group] for kind in ("tag", "label")}
        if env in ROWS and len(group) > 1 and any(sum(n) for n in per_row.values()) \
                and all(max(n) <= 1 for n in per_row.values()):
            # a chain on rows that LaTeX numbers one by one (Deep Learning 10.12-10.14: L(...) (10.12) = \sum_t L^{(t)}
            # (10.13) = ... (10.14)): each row's \tag (label) and \label (id) are those of the equality ending on it
            meta["rows"] = [tuple(next((x[1] for x in row[2] if x[0] == kind), None) for kind in ("tag", "label"))
                            + (row[1] - g_start,) for row in group]
            marks = []
        for kind in ("label", "tag"):
            found = [x for x in marks if x[0] == kind]
            if len(found) > 1:
                errors.append(DerivationError(f"two \\{kind}{{...}} in one statement", locate(text, found[1][2], path),
                                              "one statement has one \\label (its id) and one \\tag (its label)"))
            if found:
                meta["id" if kind == "label" else "label"] = found[0][1]
        if "label" in meta and "id" not in meta:
            meta["id"] = slug(meta["label"])
        if "id" in meta:
            meta["id_spelling"] = "\\label{%s}" if any(x[0] == "label" for x in marks) else "\\tag{%s}"
        line = locate(text, g_start + lead, path).line
        blocks.append(RawBlock(body, g_start, line, heading, context, meta))
    return blocks, errors


def _comment_meta(text: str, after: int, block: RawBlock, path: str) -> None:
    """`% Key: value` lines right after a display: what a Markdown blockquote says of its block.
    Other comments are only comments (a `% TODO: ...` is no error in a .tex file)."""
    start = text.find("\n", after) + 1
    while 0 < start < len(text):
        stop = text.find("\n", start)
        stop = len(text) if stop < 0 else stop
        line = text[start:stop]
        if line.strip():
            m = _META.match(line)
            if not m:
                return
            key = m.group("key").lower()
            if key in META_KEYS:
                block.meta[key] = (block.meta.get(key, "") + " " + m.group("value").strip()).strip()
                block.meta_line = block.meta_line or locate(text, start, path).line
        start = stop + 1
