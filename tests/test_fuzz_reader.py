"""Fuzzing the reader: any bytes give a Derivation or located DerivationErrors, quickly.

Inputs: random Unicode with control and line-separator characters, splices and small edits
of the valid files (examples/ in all three forms, the bundled note), brackets nested 10,000 deep and long
lines, read as .md, .tex and .ipynb.  Each example has a time bound (signal.setitimer): a hang
is a failure, as is any exception other than DerivationErrors.  Fixed seed (derandomize), a
bounded number of examples; benchmarks/fuzz_reader.py runs many more.
"""
import itertools
import json
import resource
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from derivations.form import ir
from derivations.latex.errors import DerivationErrors
from derivations.latex.files import decode, derivation_of

ROOT = Path(__file__).resolve().parent.parent
VALID = [p.read_text() for p in sorted((ROOT / "examples").iterdir()) if p.suffix in (".md", ".tex", ".ipynb")] \
    + [(ROOT / "derivations" / "note" / "note.md").read_text()]
SUFFIXES = (".md", ".tex", ".ipynb")
BOUND = 5.0                 # seconds for one input; the slowest seen is under 1 s
MEMORY = 1 << 30            # bytes; reading the whole note takes a few MB
# Characters that end lines for str.splitlines() but not for the reader, controls, and the
# characters the formats give a meaning to.
SPECIAL = ["\n", "\r\n", "\r", "\f", "\v", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\t",
           "$$", "$", "\\", "{", "}", "(", ")", "&", "\\\\", "%", "#", "# ", "> Id: x", "```", "\\[", "\\]",
           "\\begin{align}", "\\end{align}", "\\begin{equation}", "\\section{", "\\label{", "\\tag{", "=", ":=",
           "\\in", "\\mathbb{R}^{n}", "_t", "^T", "\\frac{", "\\sum_{t=1}^{T}", '"cells"', '"source"', "\ufeff"]

# Characters str.splitlines() breaks at and "\n" does not: one in the prose before a block made
# the reader loop forever.
BREAKS = ["\f", "\v", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]

# No shrinking: a hang costs BOUND seconds per attempt, and shrinking one would take minutes;
# the failing input is printed as found.
settings.register_profile("reader-fuzz", derandomize=True, deadline=None, database=None,
                          phases=[Phase.explicit, Phase.generate], report_multiple_bugs=False,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Hang(Exception):
    pass


def _alarm(*_):
    raise Hang(f"the reader took longer than {BOUND} s")


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def read_within_bound(text: str, suffix: str):
    """The reader on `text` as a file of that suffix: a Derivation or DerivationErrors, in BOUND
    seconds and MEMORY more bytes of address space (a runaway loop fails fast with MemoryError,
    instead of swapping the machine)."""
    old = signal.signal(signal.SIGALRM, _alarm)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + MEMORY
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    signal.setitimer(signal.ITIMER_REAL, BOUND)
    try:
        try:
            result = derivation_of(decode(text.encode("utf-8", "surrogatepass"), "fuzz" + suffix), "fuzz" + suffix)
        except DerivationErrors as e:
            result = e
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    if isinstance(result, DerivationErrors):
        assert result.errors
        for err in result.errors:
            assert err.message
            err.render()                      # every error prints
        assert all(e.location is not None for e in result.errors if "reading stopped" not in e.message)
    else:
        assert isinstance(result, ir.Derivation)
    return result


text_pieces = st.one_of(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40),
                        st.sampled_from(SPECIAL))


@st.composite
def splices(draw):
    """Slices of valid files glued together, with random pieces in between."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        source = draw(st.sampled_from(VALID))
        a = draw(st.integers(0, len(source)))
        b = draw(st.integers(a, min(len(source), a + 3000)))
        out.append(source[a:b])
        out.append("".join(draw(st.lists(text_pieces, max_size=4))))
    return "".join(out)


@st.composite
def mutations(draw):
    """A valid file with a few pieces inserted, deleted or replaced (a form feed in its prose, a
    lost brace, a stray $$): close to valid, so every stage of the reader is reached."""
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 3))
        piece = draw(st.one_of(st.sampled_from(BREAKS), text_pieces))
        text = text[:at] + piece + text[at + cut:]
    return text


@st.composite
def deep_or_long(draw):
    """Brackets nested up to 10,000 deep, long lines, long sums, inside a block of a valid file."""
    n = draw(st.sampled_from([10, 30, 500, 10_000]))
    body = draw(st.sampled_from([
        "(" * n, "{" * n, "(" * n + "x" + ")" * n, "\\frac{" * n, "\\left(" * n, "x + " * n, "h_t " * n,
        "a" * n * 10, "\\sum_t " * n, "^T" * n, "\\begin{bmatrix}" * n]))
    source = draw(st.sampled_from(VALID))
    at = draw(st.integers(0, len(source)))
    wrapper = draw(st.sampled_from(["$$ x = {} $$", "\\[ x = {} \\]", "\\begin{{align}} x &= {} \\end{{align}}", "{}"]))
    return source[:at] + "\n" + wrapper.format(body) + "\n" + source[at:]


def as_notebook(text: str, cuts: list[int]) -> str:
    """`text` cut into Markdown cells (with a code cell between), as a notebook's JSON: the notebook
    front end fuzzed beyond "not JSON"."""
    cuts = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    cells = []
    for a, b in itertools.pairwise(cuts):
        cells += [{"cell_type": "markdown", "source": text[a:b]}, {"cell_type": "code", "source": "x = 1"}]
    return json.dumps({"cells": cells, "nbformat": 4})


@settings(settings.get_profile("reader-fuzz"), max_examples=150)
@given(st.lists(text_pieces, max_size=60).map("".join), st.sampled_from(SUFFIXES), st.lists(st.integers(0, 10**6),
                                                                                            max_size=3))
def test_random_unicode_reads_or_fails_with_located_errors(text, suffix, cuts):
    read_within_bound(text, suffix)
    if suffix == ".ipynb":
        read_within_bound(as_notebook(text, cuts), suffix)


@settings(settings.get_profile("reader-fuzz"), max_examples=150)
@given(splices(), st.sampled_from(SUFFIXES), st.lists(st.integers(0, 10**6), max_size=3))
def test_splices_of_valid_files_read_or_fail_with_located_errors(text, suffix, cuts):
    read_within_bound(text, suffix)
    if suffix == ".ipynb":
        read_within_bound(as_notebook(text, cuts), suffix)


@settings(settings.get_profile("reader-fuzz"), max_examples=150)
@given(mutations(), st.sampled_from(SUFFIXES), st.lists(st.integers(0, 10**6), max_size=3))
@example("# T\n\nprose\fmore\n\n$$ x \\in \\mathbb{R}^{n} $$\n\n$$ x = x $$\n", ".md", [])    # looped forever
@example(VALID[0][:10] + "\u2028" + VALID[0][10:], ".ipynb", [5])
def test_valid_files_with_a_few_edits_read_or_fail_with_located_errors(text, suffix, cuts):
    read_within_bound(text, suffix)
    if suffix == ".ipynb":
        read_within_bound(as_notebook(text, cuts), suffix)


@settings(settings.get_profile("reader-fuzz"), max_examples=60)
@given(deep_or_long(), st.sampled_from(SUFFIXES))
def test_deep_nesting_and_long_lines_read_or_fail_with_located_errors(text, suffix):
    read_within_bound(text, suffix)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_the_valid_files_read_in_their_own_format(suffix):
    """The harness itself: a valid file of each format reads into claims (the fuzz is not all errors)."""
    path = ROOT / "examples" / f"min_char_rnn{suffix}"
    result = read_within_bound(path.read_text(), suffix)
    assert isinstance(result, ir.Derivation) and len(result.claims) == 9
