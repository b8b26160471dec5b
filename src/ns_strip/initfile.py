"""Classify an ``__init__.py`` by its syntax tree: regular package, pure legacy namespace, hybrid.

A file is a *pure* namespace when every statement is a docstring, the namespace declaration, an
import that the declaration uses, or the try/except wrapper that tries pkg_resources and falls
back to pkgutil. Comments, blank lines, encoding cookies and BOMs never reach the tree, so they
are allowed by construction. Anything else makes the file a *hybrid*: it is kept, and the
statements that block stripping are named with their line numbers.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import io
import tokenize

# Only a file holding one of these identifiers can hold a declaration this module recognises,
# so a file without them is decided without parsing. This is a shortcut for "cannot be a
# namespace", never the decision that something is one: that is made on the syntax tree.
DECLARATION_NAMES = ("extend_path", "declare_namespace")
_DECLARATION_BYTES = tuple(name.encode("ascii") for name in DECLARATION_NAMES)


class Kind(str, enum.Enum):
    REGULAR = "regular"  # an ordinary package (including an empty __init__.py)
    PURE = "pure"  # only a namespace declaration: safe to strip
    HYBRID = "hybrid"  # a namespace declaration plus other code: kept
    UNPARSEABLE = "unparseable"  # looks like a namespace but cannot be parsed: kept


class Style(str, enum.Enum):
    PKGUTIL = "pkgutil"
    PKG_RESOURCES = "pkg_resources"


@dataclasses.dataclass(frozen=True)
class BlockingStatement:
    line: int
    text: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.text}"


@dataclasses.dataclass(frozen=True)
class InitClassification:
    kind: Kind
    style: Style | None = None
    blocking: tuple[BlockingStatement, ...] = ()
    error: str | None = None

    @property
    def is_namespace(self) -> bool:
        return self.kind is not Kind.REGULAR


REGULAR = InitClassification(Kind.REGULAR)


def may_declare_namespace(data: bytes) -> bool:
    return any(name in data for name in _DECLARATION_BYTES)


def classify_init(data: bytes) -> InitClassification:
    """Classify the bytes of an ``__init__.py``."""
    if not may_declare_namespace(data):
        return REGULAR
    try:
        # Parsing bytes lets the compiler apply the BOM and any PEP 263 encoding cookie itself.
        tree = ast.parse(data)
    except (SyntaxError, ValueError, UnicodeError) as exc:
        return _classify_unparseable(data, exc)
    return _classify_tree(tree, _source_lines(data))


def _classify_tree(tree: ast.Module, lines: list[str]) -> InitClassification:
    imports = _ImportScope()
    styles: set[Style] = set()
    blocking: list[BlockingStatement] = []
    for index, stmt in enumerate(tree.body):
        if _is_string_statement(stmt) or _is_future_import(stmt):
            continue
        if imports.take(stmt):
            continue
        style = _declaration_style(stmt, imports) or _fallback_wrapper_style(stmt, imports)
        if style is not None:
            styles.add(style)
            continue
        blocking.append(BlockingStatement(stmt.lineno, _statement_text(stmt, lines)))

    if not styles:
        # The identifiers appear, but not as a top-level declaration: either a declaration
        # nested in other code (a hybrid) or no namespace at all.
        nested = _nested_declaration_style(tree)
        if nested is None:
            return REGULAR
        return InitClassification(Kind.HYBRID, nested, tuple(blocking))
    style = Style.PKG_RESOURCES if Style.PKG_RESOURCES in styles else Style.PKGUTIL
    unused = imports.unused_statements()
    blocking.extend(BlockingStatement(s.lineno, _statement_text(s, lines)) for s in unused)
    blocking.sort(key=lambda b: b.line)
    if blocking:
        return InitClassification(Kind.HYBRID, style, tuple(blocking))
    return InitClassification(Kind.PURE, style)


class _ImportScope:
    """Imports of ``pkgutil``/``pkg_resources`` seen so far, and whether a declaration used them.

    An import that the declaration uses belongs to the declaration; one that nothing uses is
    other code, and blocks stripping like any other statement.
    """

    def __init__(self) -> None:
        # local name -> ("pkgutil" | "pkg_resources", imported attribute or None)
        self.names: dict[str, tuple[str, str | None]] = {}
        self._statements: dict[str, ast.stmt] = {}
        self._used: set[str] = set()

    def take(self, stmt: ast.stmt) -> bool:
        """Record ``stmt`` if it is an import this module understands."""
        bindings: list[tuple[str, tuple[str, str | None]]] = []
        other_names = False
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.name in ("pkgutil", "pkg_resources"):
                    bindings.append((alias.asname or alias.name, (alias.name, None)))
                else:
                    other_names = True
        elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0 and stmt.module in ("pkgutil", "pkg_resources"):
            for alias in stmt.names:
                if (stmt.module, alias.name) in (("pkgutil", "extend_path"), ("pkg_resources", "declare_namespace")):
                    bindings.append((alias.asname or alias.name, (stmt.module, alias.name)))
                else:
                    other_names = True
        else:
            return False
        for local, origin in bindings:
            self.names[local] = origin
            if not other_names:
                self._statements[local] = stmt
        # "import pkgutil, os" binds what a declaration may use, and is still other code.
        return not other_names

    def resolve(self, node: ast.expr) -> tuple[str, str | None] | None:
        """What a name or ``__import__('mod')`` refers to, marking the import as used."""
        if isinstance(node, ast.Name) and node.id in self.names:
            self._used.add(node.id)
            return self.names[node.id]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "__import__"
            and len(node.args) == 1
            and not node.keywords
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in ("pkgutil", "pkg_resources")
        ):
            return (node.args[0].value, None)
        return None

    def unused_statements(self) -> list[ast.stmt]:
        seen: set[int] = set()
        unused = []
        for local, stmt in self._statements.items():
            if local in self._used or id(stmt) in seen:
                continue
            if any(other in self._used for other, s in self._statements.items() if s is stmt):
                continue
            seen.add(id(stmt))
            unused.append(stmt)
        return unused

    def fork(self) -> _ImportScope:
        """A scope for one branch of a try/except: it sees the outer imports, keeps its own."""
        child = _ImportScope()
        child.names = dict(self.names)
        child._used = self._used  # an outer import used inside a branch is used by the file
        return child


def _is_name_arg(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _declaration_style(stmt: ast.stmt, imports: _ImportScope) -> Style | None:
    """The style of ``stmt`` if it is exactly one namespace declaration."""
    # pkgutil: __path__ = <pkgutil>.extend_path(__path__, __name__)
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if len(targets) != 1 or not _is_name_arg(targets[0], "__path__"):
            return None
        call = stmt.value
        if _is_call_to(call, imports, "pkgutil", "extend_path") and _has_args(call, "__path__", "__name__"):
            return Style.PKGUTIL
        return None
    # pkg_resources: <pkg_resources>.declare_namespace(__name__)
    if isinstance(stmt, ast.Expr):
        call = stmt.value
        if _is_call_to(call, imports, "pkg_resources", "declare_namespace") and _has_args(call, "__name__"):
            return Style.PKG_RESOURCES
    return None


def _is_call_to(node: ast.expr | None, imports: _ImportScope, module: str, function: str) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == function:
        return imports.resolve(func.value) == (module, None)
    if isinstance(func, ast.Name):
        return imports.resolve(func) == (module, function)
    return False


def _has_args(call: ast.Call, *names: str) -> bool:
    return (
        len(call.args) == len(names)
        and not call.keywords
        and all(_is_name_arg(arg, name) for arg, name in zip(call.args, names))
    )


_FALLBACK_EXCEPTIONS = {"ImportError", "ModuleNotFoundError"}


def _fallback_wrapper_style(stmt: ast.stmt, imports: _ImportScope) -> Style | None:
    """``try: <pkg_resources declaration> except ImportError: <pkgutil declaration>``.

    The body must declare with pkg_resources; each handler must catch ImportError (or
    ModuleNotFoundError) and either declare with pkgutil or do nothing.
    """
    if not isinstance(stmt, ast.Try) or stmt.orelse or stmt.finalbody or not stmt.handlers:
        return None
    if _block_declaration_styles(stmt.body, imports.fork()) != {Style.PKG_RESOURCES}:
        return None
    for handler in stmt.handlers:
        if handler.name is not None or not _catches_import_error(handler.type):
            return None
        if all(isinstance(s, ast.Pass) for s in handler.body):
            continue
        if _block_declaration_styles(handler.body, imports.fork()) != {Style.PKGUTIL}:
            return None
    return Style.PKG_RESOURCES


def _block_declaration_styles(body: list[ast.stmt], imports: _ImportScope) -> set[Style] | None:
    """The styles a block declares, or None when it holds anything but imports and declarations."""
    styles: set[Style] = set()
    for stmt in body:
        if imports.take(stmt):
            continue
        style = _declaration_style(stmt, imports)
        if style is None:
            return None
        styles.add(style)
    if imports.unused_statements():
        return None
    return styles


def _catches_import_error(node: ast.expr | None) -> bool:
    if isinstance(node, ast.Name):
        return node.id in _FALLBACK_EXCEPTIONS
    if isinstance(node, ast.Tuple) and node.elts:
        return all(isinstance(e, ast.Name) and e.id in _FALLBACK_EXCEPTIONS for e in node.elts)
    return False


def _nested_declaration_style(tree: ast.Module) -> Style | None:
    """A declaration anywhere in the file (inside an ``if``, a function, …)."""
    found: set[Style] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            if name == "declare_namespace":
                found.add(Style.PKG_RESOURCES)
            elif name == "extend_path":
                found.add(Style.PKGUTIL)
    if Style.PKG_RESOURCES in found:
        return Style.PKG_RESOURCES
    return Style.PKGUTIL if found else None


def _is_string_statement(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _is_future_import(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"


def _source_lines(data: bytes) -> list[str]:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        encoding = "utf-8"
    return data.decode(encoding, errors="replace").lstrip("\ufeff").splitlines()


def _statement_text(stmt: ast.stmt, lines: list[str]) -> str:
    if 0 < stmt.lineno <= len(lines):
        text = lines[stmt.lineno - 1].strip()
        if getattr(stmt, "end_lineno", stmt.lineno) != stmt.lineno:
            text += " …"
        return text
    return type(stmt).__name__


def _classify_unparseable(data: bytes, exc: Exception) -> InitClassification:
    """A file that does not parse is namespace-like when its tokens name a declaration."""
    reason = _describe_parse_error(exc)
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


def _describe_parse_error(exc: Exception) -> str:
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return f"{exc.msg}{where}"
    return str(exc) or type(exc).__name__
