"""Classify an ``__init__.py`` by its syntax tree: regular package, pure legacy namespace, hybrid.

A file is a *pure* namespace when every top-level statement is one of the forms of the
whitelist in :mod:`ns_strip.purity` (a docstring, the namespace declaration, an import that the
declaration uses, the try/except that tries pkg_resources and falls back to pkgutil, …).
Comments, blank lines, encoding cookies and BOMs never reach the tree, so they are allowed by
construction. A file that declares a namespace and holds anything else is a *hybrid*: it is
kept, and the statements that block stripping are named with their line numbers.

A declaration counts only where it runs at import: at module level, or inside a module-level
statement (an ``if``, a ``try``, a class body, a decorator, a default argument). A call to
``declare_namespace`` inside a function body (pkg_resources' own ``__init__.py``) declares
nothing when the package is imported, so such a file is a regular package.

Parsing is bounded: a file over :data:`~ns_strip.safeio.MAX_INIT_BYTES` or over
:data:`MAX_INIT_TOKENS` tokens is not parsed (its syntax tree could take hundreds of MB) and is
kept; a file nested too deep for the parser is unparseable and kept.
"""

from __future__ import annotations

import ast
import enum
import functools
import io
import tokenize

from .purity import Scope, Style, match_statement
from .pysource import MAX_TOKENS as MAX_INIT_TOKENS
from .pysource import (
    TooManyTokensError,
    UnparseableError,
    describe_parse_error,
    parse_bounded,
    quiet_compiler,
    quote_line,
)
from .safeio import MAX_INIT_BYTES, FileTooLargeError
from .slotted import FrozenSlotted, set_field
from .sources import Source

__all__ = ["DECLARATION_NAMES", "MAX_INIT_BYTES", "MAX_INIT_TOKENS", "REGULAR", "BlockingStatement",
           "InitClassification", "Kind", "Style", "classify_init", "classify_init_at", "may_declare_namespace"]

# Only a file holding one of these identifiers can hold a declaration this module recognises,
# so a file without them is decided without parsing. This is a shortcut for "cannot be a
# namespace", never the decision that something is one: that is made on the syntax tree.
DECLARATION_NAMES = ("extend_path", "declare_namespace")
_DECLARATION_BYTES = tuple(name.encode("ascii") for name in DECLARATION_NAMES)

# How much of a blocking line a finding quotes, and how many blocking statements it names (a
# hybrid of 50,000 statements is reported by its first few and a count).
MAX_STATEMENT_TEXT = 120
MAX_BLOCKING_REPORTED = 10


class Kind(str, enum.Enum):
    REGULAR = "regular"  # an ordinary package (including an empty __init__.py)
    PURE = "pure"  # only a namespace declaration: safe to strip
    HYBRID = "hybrid"  # a namespace declaration plus other code: kept
    UNPARSEABLE = "unparseable"  # looks like a namespace but cannot be parsed: kept
    OVERSIZED = "oversized"  # over the size or token limit: not parsed, kept


class BlockingStatement(FrozenSlotted):
    __slots__ = ("line", "text")

    line: int
    text: str

    def __init__(self, line: int, text: str) -> None:
        set_field(self, "line", line)
        set_field(self, "text", text)

    def __str__(self) -> str:
        return f"line {self.line}: {self.text}"


class InitClassification(FrozenSlotted):
    __slots__ = ("kind", "style", "blocking", "error", "more_blocking")

    kind: Kind
    style: Style | None
    blocking: tuple[BlockingStatement, ...]  # the first MAX_BLOCKING_REPORTED of them
    error: str | None
    more_blocking: int  # how many blocking statements there are beyond those named

    def __init__(self, kind: Kind, style: Style | None = None, blocking: tuple[BlockingStatement, ...] = (),
                 error: str | None = None, more_blocking: int = 0) -> None:
        set_field(self, "kind", kind)
        set_field(self, "style", style)
        set_field(self, "blocking", blocking)
        set_field(self, "error", error)
        set_field(self, "more_blocking", more_blocking)

    def describe_blocking(self) -> str:
        """The blocking statements in words, for a finding: the first few, then a count."""
        text = "; ".join(str(b) for b in self.blocking)
        return text + (f"; and {self.more_blocking} more statement(s)" if self.more_blocking else "")

    @property
    def is_namespace(self) -> bool:
        # An oversized file was not read: like a regular package, it is kept and nothing below
        # it is treated as a namespace portion.
        return self.kind not in (Kind.REGULAR, Kind.OVERSIZED)


REGULAR = InitClassification(Kind.REGULAR)


def may_declare_namespace(data: bytes) -> bool:
    return any(name in data for name in _DECLARATION_BYTES)


def classify_init_at(source: Source, path: str) -> InitClassification:
    """Read (at most :data:`MAX_INIT_BYTES`) and classify the ``__init__.py`` at ``path``."""
    try:
        data = source.read_bytes(path, limit=MAX_INIT_BYTES)
    except FileTooLargeError as exc:
        return InitClassification(Kind.OVERSIZED, error=f"{exc.size} bytes, over the {exc.limit}-byte limit")
    return classify_init(data)


def classify_init(data: bytes) -> InitClassification:
    """Classify the bytes of an ``__init__.py``."""
    if not may_declare_namespace(data):
        return REGULAR
    if len(data) <= _CACHED_INIT_BYTES:
        # Every portion of a namespace ships the same few lines (15 zope.* portions, 15 copies):
        # each distinct small file is parsed once. Classifications are immutable.
        return _classify_small(data)
    return _classify(data)


_CACHED_INIT_BYTES = 4096


@functools.lru_cache(maxsize=1024)
def _classify_small(data: bytes) -> InitClassification:
    return _classify(data)


def _classify(data: bytes) -> InitClassification:
    if len(data) > MAX_INIT_BYTES:
        return InitClassification(Kind.OVERSIZED, _style_of_bytes(data),
                                  error=f"{len(data)} bytes, over the {MAX_INIT_BYTES}-byte limit")
    try:
        tree = parse_bounded(data, MAX_INIT_TOKENS)
    except TooManyTokensError as exc:
        return InitClassification(Kind.OVERSIZED, _style_of_bytes(data), error=str(exc))
    except UnparseableError as exc:
        return _classify_unparseable(data, str(exc))
    return _classify_tree(tree, data)


def _style_of_bytes(data: bytes) -> Style:
    return Style.PKG_RESOURCES if b"declare_namespace" in data else Style.PKGUTIL


def _classify_tree(tree: ast.Module, data: bytes) -> InitClassification:
    scope = Scope()
    styles: set[Style] = set()
    blocking: list[ast.stmt] = []
    for stmt in tree.body:
        found = match_statement(stmt, scope)
        if found is None:
            blocking.append(stmt)
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                # "import pkgutil, os" is other code, and still binds what a declaration uses.
                scope.bind(stmt, track=False)
        else:
            styles |= found.styles

    if not styles:
        # No whitelisted declaration: either one that runs at import inside other code (a
        # hybrid), or none that runs at import at all (a regular package).
        nested = _import_time_declaration_style(tree)
        if nested is None:
            return REGULAR
        return _hybrid(nested, blocking + scope.unused(), data)
    style = Style.PKG_RESOURCES if Style.PKG_RESOURCES in styles else Style.PKGUTIL
    blocking.extend(scope.unused())
    if blocking:
        return _hybrid(style, blocking, data)
    try:
        # What the parser accepts the compiler may still refuse (a misplaced __future__ import):
        # such a file fails to import today, so removing it would change what imports.
        with quiet_compiler():
            compile(tree, "__init__.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        return InitClassification(Kind.UNPARSEABLE, style, error=describe_parse_error(exc))
    return InitClassification(Kind.PURE, style)


def _hybrid(style: Style, statements: list[ast.stmt], data: bytes) -> InitClassification:
    lines = _source_lines(data)
    first = sorted(((_first_line(s), s) for s in statements), key=lambda pair: pair[0])
    named = first[:MAX_BLOCKING_REPORTED]
    blocking = tuple(BlockingStatement(line, _statement_text(line, s, lines)) for line, s in named)
    return InitClassification(Kind.HYBRID, style, blocking, more_blocking=len(first) - len(named))


def _first_line(stmt: ast.stmt) -> int:
    """Where a statement starts: a decorated definition starts at its first decorator."""
    decorators = getattr(stmt, "decorator_list", None) or []
    return min([stmt.lineno] + [d.lineno for d in decorators])


def _import_time_declaration_style(tree: ast.Module) -> Style | None:
    """The style of a declaration call that runs at import, wherever it is in the module.

    Everything runs at import except the bodies of functions and lambdas (their decorators,
    defaults and annotations do run). Walked with an explicit stack: the tree of a hostile file
    may be as deep as the parser allows.
    """
    functions = {"declare_namespace": Style.PKG_RESOURCES, "extend_path": Style.PKGUTIL}
    called: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        # A call, or a decorator (called with what it decorates).
        callees = [node.func] if isinstance(node, ast.Call) else list(getattr(node, "decorator_list", ()))
        for func in callees:
            if isinstance(func, ast.Attribute):
                called.add(func.attr)
            elif isinstance(func, ast.Name):
                called.add(func.id)
        if isinstance(node, ast.ImportFrom):  # "from pkg_resources import declare_namespace as dn"
            for alias in node.names:
                if alias.name in functions and alias.asname:
                    functions[alias.asname] = functions[alias.name]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stack.extend(node.decorator_list)
            stack.append(node.args)
            if node.returns is not None:
                stack.append(node.returns)
        elif isinstance(node, ast.Lambda):
            stack.append(node.args)
        else:
            stack.extend(ast.iter_child_nodes(node))
    found = {functions[name] for name in called if name in functions}
    if Style.PKG_RESOURCES in found:
        return Style.PKG_RESOURCES
    return Style.PKGUTIL if found else None


def _source_lines(data: bytes) -> list[str]:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        encoding = "utf-8"
    return data.decode(encoding, errors="replace").lstrip("\ufeff").splitlines()


def _statement_text(line: int, stmt: ast.stmt, lines: list[str]) -> str:
    if 0 < line <= len(lines):
        text = lines[line - 1].strip()
        if len(text) > MAX_STATEMENT_TEXT:  # a line may be a megabyte long: quote its start
            return quote_line(text, MAX_STATEMENT_TEXT)
        text = quote_line(text, MAX_STATEMENT_TEXT)
        if getattr(stmt, "end_lineno", line) != line:
            text += " …"
        return text
    return type(stmt).__name__


def _classify_unparseable(data: bytes, reason: str) -> InitClassification:
    """A file that does not parse is namespace-like when its tokens name a declaration."""
    text = data.decode("utf-8", errors="replace")
    style: Style | None = None
    names: set[str] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.NAME and token.string in DECLARATION_NAMES:
                names.add(token.string)
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass  # the tokens read before the error are what we have
    if "declare_namespace" in names:
        style = Style.PKG_RESOURCES
    elif "extend_path" in names:
        style = Style.PKGUTIL
    if style is None:
        return REGULAR
    return InitClassification(Kind.UNPARSEABLE, style, error=reason)
