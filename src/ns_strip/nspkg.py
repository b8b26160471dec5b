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
import dataclasses

NSPKG_SUFFIX = "-nspkg.pth"
# setuptools' longest loader line (a nested namespace) is under 1,000 characters.
MAX_LINE_CHARS = 4096


@dataclasses.dataclass(frozen=True)
class NspkgLine:
    line: int
    namespace: str | None  # None: the line creates no namespace this module can read
    text: str


def is_nspkg_pth(name: str) -> bool:
    return name.endswith(NSPKG_SUFFIX) and "/" not in name


def parse_nspkg_pth(data: bytes) -> list[NspkgLine]:
    """Parse every non-blank line; lines that are not code (path entries, comments) are skipped."""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    result = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line.startswith(("import ", "import\t")):
            continue  # site.py treats anything else as a directory to add, or a comment
        result.append(NspkgLine(number, namespace_of_line(line), line))
    return result


def namespace_of_line(line: str) -> str | None:
    if len(line) > MAX_LINE_CHARS:
        return None
    try:
        tree = ast.parse(line)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # RecursionError, MemoryError: nested deeper than the parser goes
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
