"""Read setuptools' ``*-nspkg.pth`` files: which namespace each line creates.

``site.py`` executes a ``.pth`` line that starts with ``import``; setuptools writes one such
line per namespace, and names the namespace twice: as the path parts in
``os.path.join(sitedir, *('zope', 'foo'))`` and as the module in
``sys.modules.setdefault('zope.foo', …)``. Both are read from the line's syntax tree; the path
parts win because every setuptools version since 0.6 has written them.

Parsing is bounded: the caller reads at most :data:`~ns_strip.safeio.MAX_PTH_BYTES`, and a line
longer than :data:`MAX_LINE_CHARS` (setuptools writes about 600 characters) or nested deeper
than the parser goes is a line not understood, never parsed into a tree of hundreds of MB.
"""

from __future__ import annotations

import ast
import functools

from .pysource import TooManyTokensError, UnparseableError, parse_bounded, quote_line
from .slotted import FrozenSlotted, set_field

NSPKG_SUFFIX = "-nspkg.pth"
# setuptools' longest loader line (a nested namespace) is under 1,000 characters.
MAX_LINE_CHARS = 4096
# How much of a line a finding quotes.
MAX_QUOTED_CHARS = 200


class NspkgLine(FrozenSlotted):
    __slots__ = ("line", "namespace", "text", "loader")

    line: int
    namespace: str | None  # None: the line creates no namespace this module can read
    text: str
    # A setuptools namespace loader: only the calls setuptools writes, nothing else. A file of
    # loaders only is removed by strip; any other line (other code, a path entry) keeps it.
    loader: bool

    def __init__(self, line: int, namespace: str | None, text: str, loader: bool = True) -> None:
        set_field(self, "line", line)
        set_field(self, "namespace", namespace)
        set_field(self, "text", text)
        set_field(self, "loader", loader)


def is_nspkg_pth(name: str) -> bool:
    return name.endswith(NSPKG_SUFFIX) and "/" not in name


def parse_nspkg_pth(data: bytes) -> list[NspkgLine]:
    """Every line that does something: import lines (which site.py runs) and path entries
    (which it adds to sys.path); blank lines and comments are skipped."""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    result = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith(("import ", "import\t")):
            # A directory site.py adds to sys.path: not what setuptools writes here.
            result.append(NspkgLine(number, None, quote_line(line, MAX_QUOTED_CHARS), loader=False))
            continue
        tree = _parse_line(line)
        loader = tree is not None and is_loader(tree)
        namespace = namespace_of_tree(tree) if loader and tree is not None else None
        result.append(NspkgLine(number, namespace, quote_line(line, MAX_QUOTED_CHARS), loader=loader))
    return result


# Every portion of a namespace ships the same loader lines, and a scan reads each line twice
# (the loader, then the PEP 829 audit): each distinct line is parsed once per process. The
# trees are only read, never changed.
def _parse_line(line: str) -> ast.Module | None:
    if len(line) > MAX_LINE_CHARS:
        return None  # never a cache key: at most 1,024 lines of 4 KiB are kept
    return _parse_short_line(line)


@functools.lru_cache(maxsize=1024)
def _parse_short_line(line: str) -> ast.Module | None:
    try:
        return parse_bounded(line)
    except (TooManyTokensError, UnparseableError):
        return None


# What setuptools' loader lines are made of, in every version since 0.6: imports of these
# modules, assignments to these names, and calls of these functions only.
_LOADER_IMPORTS = frozenset({"sys", "types", "os", "importlib", "importlib.util", "importlib.machinery"})
_LOADER_NAMES = frozenset({"sys", "types", "os", "importlib", "has_mfs", "pep420", "p", "ie", "m", "mp",
                           "__import__", "setattr"})
_LOADER_CALLS = frozenset({
    "os.path.join", "os.path.exists", "os.path.dirname", "sys._getframe", "sys.modules.setdefault",
    "types.ModuleType", "importlib.util.module_from_spec", "importlib.machinery.PathFinder.find_spec",
    "m.__dict__.setdefault", "mp.append", "setattr", "__import__",
})
_LOADER_DYNAMIC_IMPORTS = frozenset({"importlib.util", "importlib.machinery"})
_LOADER_NODES = (
    ast.Module, ast.Import, ast.alias, ast.Assign, ast.Expr, ast.Name, ast.Attribute, ast.Constant, ast.Tuple,
    ast.List, ast.Starred, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.Subscript, ast.Call, ast.Load, ast.Store,
    ast.And, ast.Or, ast.Not, ast.In, ast.NotIn, ast.Gt, ast.GtE, ast.Lt, ast.LtE, ast.Eq, ast.NotEq,
)


def is_loader(tree: ast.Module) -> bool:
    """Whether a parsed line holds nothing but what setuptools' namespace loaders hold."""
    for node in ast.walk(tree):  # iterative; the line is short, so the tree is small
        if type(node) not in _LOADER_NODES:
            return False
        if isinstance(node, ast.alias) and (node.name not in _LOADER_IMPORTS or node.asname):
            return False
        if isinstance(node, ast.Name) and node.id not in _LOADER_NAMES:
            return False
        if isinstance(node, ast.Assign) and not (len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            return False
        if isinstance(node, ast.Call):
            if _dotted(node.func) not in _LOADER_CALLS or node.keywords:
                return False
            if _dotted(node.func) == "__import__" and not (
                len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in _LOADER_DYNAMIC_IMPORTS
            ):
                return False
    return True


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def namespace_of_line(line: str) -> str | None:
    if len(line) > MAX_LINE_CHARS:
        return None  # not parsed (see _parse_line), and not kept as a cache key either
    return _namespace_of_short_line(line)


@functools.lru_cache(maxsize=1024)  # the audit asks for every line of every portion's loader
def _namespace_of_short_line(line: str) -> str | None:
    tree = _parse_line(line)
    return None if tree is None else namespace_of_tree(tree)


def namespace_of_tree(tree: ast.Module) -> str | None:
    from_path = None
    from_modules = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "join":
            for arg in node.args:
                if isinstance(arg, ast.Starred) and isinstance(arg.value, ast.Tuple):
                    parts = [e.value for e in arg.value.elts if isinstance(e, ast.Constant)]
                    if parts and all(isinstance(p, str) for p in parts) and len(parts) == len(arg.value.elts):
                        from_path = from_path or ".".join(parts)
        elif isinstance(func, ast.Attribute) and func.attr == "setdefault" and _is_sys_modules(func.value):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                from_modules = from_modules or node.args[0].value
    return from_path or from_modules


def _is_sys_modules(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "modules"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    )
