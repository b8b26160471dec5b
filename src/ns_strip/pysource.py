"""Parse Python source from an untrusted tree with bounded memory and without a crash.

``ast.parse`` is fine with well-behaved code and dangerous with hostile code: its memory grows
with the number of tokens (a 1 MB line of one-name statements takes 900 MB), and an expression
nested thousands deep makes it raise RecursionError or MemoryError ("too complex"). Every parse
of a tree's file (a namespace ``__init__.py``, a ``.pth`` line, a module ns-strip looks into for
imports) goes through :func:`parse_bounded`, which refuses too many tokens before parsing and
turns every parser failure into one exception carrying a reason for the user.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import tokenize
import warnings
from collections.abc import Iterator

# A real namespace __init__.py has a few dozen tokens; pkg_resources' own __init__.py about
# 21,000. Under this limit the worst file parses in about 120 MB.
MAX_TOKENS = 100_000
# An over-count of the tokens at the speed of a regular expression: every run of word
# characters and every other non-space character counts as one.
_TOKEN_ESTIMATE = re.compile(rb"\w+|[^\s\w]")


class TooManyTokensError(Exception):
    """The source has more tokens than :data:`MAX_TOKENS`: not parsed."""


class UnparseableError(Exception):
    """The source cannot be parsed: a syntax error, an encoding error, or nested too deep."""


def count_tokens(data: bytes, limit: int = MAX_TOKENS) -> int:
    """The tokens of ``data``, counted up to ``limit`` + 1.

    First an over-count at the speed of a regular expression (every word of a docstring counts
    there); only a file over the limit by that count is tokenized for real, which is slower
    but counts a string or a comment as one token. A file the tokenizer refuses counts as over.
    """
    count = 0
    for count, _ in enumerate(_TOKEN_ESTIMATE.finditer(data), start=1):
        if count > limit:
            break
    if count <= limit:
        return count
    try:
        for count, _ in enumerate(tokenize.tokenize(io.BytesIO(data).readline), start=1):
            if count > limit:
                break
    except (tokenize.TokenError, SyntaxError, ValueError, UnicodeError):
        return limit + 1
    return count


def parse_bounded(data: bytes | str, max_tokens: int = MAX_TOKENS) -> ast.Module:
    """The syntax tree of ``data``; raises TooManyTokensError or UnparseableError."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if count_tokens(raw, max_tokens) > max_tokens:
        raise TooManyTokensError(f"over {max_tokens} tokens, too many to parse")
    try:
        # Bytes let the compiler apply the BOM and any PEP 263 encoding cookie itself.
        with quiet_compiler():
            return ast.parse(data)
    except (SyntaxError, ValueError, UnicodeError, RecursionError, MemoryError) as exc:
        # RecursionError and MemoryError: nested deeper than the parser goes.
        raise UnparseableError(describe_parse_error(exc)) from exc


@contextlib.contextmanager
def quiet_compiler() -> Iterator[None]:
    """No SyntaxWarning/DeprecationWarning on stderr ("invalid escape sequence" in a tree's
    file): ns-strip's errors are one line of its own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def quote_line(text: str, limit: int) -> str:
    """A line of a tree's file as a finding may show it: at most ``limit`` characters, and every
    character that is not printable escaped (an ESC in a hostile file must not reach the
    maintainer's terminal as a control sequence)."""
    cut = text[:limit]
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in cut)
    return shown + (" …" if len(text) > limit else "")


def describe_parse_error(exc: BaseException) -> str:
    if isinstance(exc, (RecursionError, MemoryError)):
        return "nested too deeply to parse"
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return f"{exc.msg}{where}"
    return str(exc) or type(exc).__name__
