"""Property-based tests of purity: generated ``__init__.py`` files against a model.

The generator builds a file from *pieces*: forms a pure namespace ``__init__.py`` may hold
(docstrings, ``pass``, ``__future__`` imports, declarations in every spelling, imports that
declarations use, the pkg_resources→pkgutil fallback) and *mutations* of them or other
statements (an annotation that calls, an extra keyword, an ``except Exception``, a walrus, a
decorator, ``del``, a star import, a declaration hidden in a function, …). Each piece carries
what the generator knows about it: whether it is allowed, whether a declaration in it runs at
import and in which style, and where it starts. The expected verdict is worked out from that
knowledge alone, never from ns-strip's code:

- no declaration runs at import → a regular package;
- a declaration runs, and every piece is allowed → pure;
- a declaration runs, and some piece is not allowed → hybrid, blocked by exactly the lines
  where those pieces start.

Then the same files go through ``strip`` of a staged site dir (in process): a file is removed
exactly when the model calls it pure, and the RECORD stays true.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ns_strip.cli import main
from ns_strip.initfile import MAX_BLOCKING_REPORTED, Kind, Style, classify_init

PKGUTIL = "pkgutil"
PKG_RESOURCES = "pkg_resources"


@dataclasses.dataclass(frozen=True)
class Piece:
    lines: tuple[str, ...]  # source lines, without line ends
    allowed: bool  # a form of the whitelist
    declares: str | None = None  # the style of a declaration in it that runs at import
    blank: bool = False  # comments and blank lines: not a statement


# -- allowed pieces ----------------------------------------------------------------------------

ALIASES = st.sampled_from(["_p", "ns_util", "pk", "x1"])
ANNOTATIONS = st.sampled_from(["list", "object", "str", "'list[str]'", "list[str]", "'anything(at_all)'"])
HANDLER_TYPES = st.sampled_from(["ImportError", "ModuleNotFoundError", "(ImportError, ModuleNotFoundError)",
                                 "(ModuleNotFoundError,)"])


@st.composite
def pkgutil_declaration(draw, indent: str = "") -> tuple[list[str], list[str]]:
    """(import lines, declaration line) of one pkgutil declaration in some spelling."""
    how = draw(st.sampled_from(["dunder", "module", "module as", "function", "function as"]))
    annotation = draw(st.none() | ANNOTATIONS)
    target = f"__path__: {annotation}" if annotation else "__path__"
    alias = draw(ALIASES)
    if how == "dunder":
        return [], [f"{indent}{target} = __import__('pkgutil').extend_path(__path__, __name__)"]
    if how == "module":
        return [f"{indent}import pkgutil"], [f"{indent}{target} = pkgutil.extend_path(__path__, __name__)"]
    if how == "module as":
        return [f"{indent}import pkgutil as {alias}"], [f"{indent}{target} = {alias}.extend_path(__path__, __name__)"]
    if how == "function":
        return [f"{indent}from pkgutil import extend_path"], [f"{indent}{target} = extend_path(__path__, __name__)"]
    return ([f"{indent}from pkgutil import extend_path as {alias}"],
            [f"{indent}{target} = {alias}(__path__, __name__)"])


@st.composite
def pkg_resources_declaration(draw, indent: str = "") -> tuple[list[str], list[str]]:
    how = draw(st.sampled_from(["dunder", "module", "module as", "function", "function as"]))
    alias = draw(ALIASES)
    if how == "dunder":
        return [], [f"{indent}__import__('pkg_resources').declare_namespace(__name__)"]
    if how == "module":
        return [f"{indent}import pkg_resources"], [f"{indent}pkg_resources.declare_namespace(__name__)"]
    if how == "module as":
        return [f"{indent}import pkg_resources as {alias}"], [f"{indent}{alias}.declare_namespace(__name__)"]
    if how == "function":
        return [f"{indent}from pkg_resources import declare_namespace"], [f"{indent}declare_namespace(__name__)"]
    return ([f"{indent}from pkg_resources import declare_namespace as {alias}"],
            [f"{indent}{alias}(__name__)"])


@st.composite
def declaration_piece(draw) -> list[Piece]:
    """A declaration and the imports it uses (each import its own statement, all allowed)."""
    style = draw(st.sampled_from([PKGUTIL, PKG_RESOURCES]))
    imports, declaration = draw(pkgutil_declaration() if style == PKGUTIL else pkg_resources_declaration())
    return [Piece((line,), True) for line in imports] + [Piece(tuple(declaration), True, style)]


@st.composite
def fallback_piece(draw, mutation: str | None = None) -> Piece:
    """try: <pkg_resources or pkgutil> except <ImportError…>: <pkgutil, pkg_resources or pass>."""
    body_style = draw(st.sampled_from([PKG_RESOURCES, PKG_RESOURCES, PKGUTIL]))
    imports, declaration = draw((pkg_resources_declaration if body_style == PKG_RESOURCES
                                 else pkgutil_declaration)("    "))
    lines = ["try:", *imports, *declaration]
    handler_type = draw(HANDLER_TYPES)
    handler = draw(st.sampled_from(["pass", PKGUTIL, PKG_RESOURCES]))
    if mutation == "except type":
        handler_type = draw(st.sampled_from(["Exception", "BaseException", "(ImportError, OSError)", "OSError"]))
    lines.append(f"except {handler_type}:" if mutation != "bare except" else "except:")
    if mutation == "except as":
        lines[-1] = lines[-1][:-1] + " as exc:"
    if handler == "pass":
        lines.append("    pass")
    else:
        h_imports, h_declaration = draw((pkgutil_declaration if handler == PKGUTIL
                                         else pkg_resources_declaration)("    "))
        lines += h_imports + h_declaration
    if mutation == "handler code":
        lines.append("    print('no pkg_resources')")
    if mutation == "else":
        lines += ["else:", "    pass"]
    if mutation == "finally":
        lines += ["finally:", "    pass"]
    if mutation == "body code":
        lines.insert(1, "    import os")
    styles = {body_style} | ({handler} if handler != "pass" else set())
    style = PKG_RESOURCES if PKG_RESOURCES in styles else PKGUTIL
    return Piece(tuple(lines), mutation is None, style)


SIMPLE_ALLOWED = st.sampled_from([
    Piece(("pass",), True),
    Piece(('"""A docstring in the middle."""',), True),
    Piece(("'single quoted string'",), True),
])
BLANKS = st.sampled_from([
    Piece(("",), True, blank=True),
    Piece(("# a comment: extend_path(__path__, __name__)",), True, blank=True),
    Piece(("# -*- not a coding line here -*-",), True, blank=True),
])

# -- mutations: statements outside the whitelist -------------------------------------------------

OTHER_STATEMENTS = [
    # (lines, style of a declaration running at import, or None)
    (("x = 1",), None),
    (("__all__ = []",), None),
    (("__version__ = '1.0'",), None),
    (("import os",), None),
    (("from . import sub",), None),
    (("from pkgutil import *",), None),
    (("global x",), None),
    (("del __name__",), None),
    (("print('side effect')",), None),
    (("assert True",), None),
    (("if True:", "    pass"), None),
    (("for _ in []:", "    pass"), None),
    (("while False:", "    pass"), None),
    (("with open(__file__):", "    pass"), None),
    (("match 1:", "    case _:", "        pass"), None),
    (("def f():", "    pass"), None),
    (("class A:", "    pass"), None),
    (("@staticmethod", "def g():", "    pass"), None),
    (("(y := 2)",), None),
    (("f'{print()}'",), None),
    (("b'bytes'",), None),
    (("...",), None),
    (("lambda: 0",), None),
    (("x: int = 1",), None),
    (("raise SystemExit",), None),
    # Declarations that run at import, in forms outside the whitelist.
    (("__path__: print('runs') = __import__('pkgutil').extend_path(__path__, __name__)",), PKGUTIL),
    (("__path__: list[int()] = __import__('pkgutil').extend_path(__path__, __name__)",), PKGUTIL),
    (("__path__ = __import__('pkgutil').extend_path(__path__, __name__, x=1)",), PKGUTIL),
    (("__path__ = __import__('pkgutil').extend_path(__path__, 'zope')",), PKGUTIL),
    (("__path__ = __import__('pkgutil').extend_path(__path__, f'{__name__}')",), PKGUTIL),
    (("(__path__ := __import__('pkgutil').extend_path(__path__, __name__))",), PKGUTIL),
    (("__path__ = x = __import__('pkgutil').extend_path(__path__, __name__)",), PKGUTIL),
    (("__import__('pkg_resources').declare_namespace(__name__) or print()",), PKG_RESOURCES),
    (("__import__('pkg_resources', None).declare_namespace(__name__)",), PKG_RESOURCES),
    (("__import__('os').declare_namespace(__name__)",), PKG_RESOURCES),
    (("if True:", "    __import__('pkg_resources').declare_namespace(__name__)"), PKG_RESOURCES),
    (("class A:", "    __import__('pkg_resources').declare_namespace(__name__)"), PKG_RESOURCES),
    (("def f(x=__import__('pkg_resources').declare_namespace(__name__)):", "    pass"), PKG_RESOURCES),
    (("@__import__('pkg_resources').declare_namespace", "def g():", "    pass"), PKG_RESOURCES),
    (("[__import__('pkg_resources').declare_namespace(__name__) for _ in '1']",), PKG_RESOURCES),
    # Declarations that do not run at import.
    (("def f():", "    __import__('pkg_resources').declare_namespace(__name__)"), None),
    (("async def f():", "    __path__ = __import__('pkgutil').extend_path(__path__, __name__)"), None),
    (("h = lambda: __import__('pkg_resources').declare_namespace(__name__)",), None),
]
OTHER = st.sampled_from([Piece(lines, False, style) for lines, style in OTHER_STATEMENTS])
UNUSED_IMPORT = st.sampled_from([
    Piece(("import pkgutil as unused_alias",), False),
    Piece(("from pkg_resources import declare_namespace as unused_fn",), False),
])
FALLBACK_MUTATIONS = st.sampled_from(["except type", "bare except", "except as", "handler code", "else", "finally",
                                      "body code"])


@st.composite
def init_file(draw) -> tuple[str, list[Piece], list[int]]:
    """Source, its pieces, and the line where each piece starts."""
    head: list[Piece] = []
    if draw(st.booleans()):
        head.append(Piece(('"""Namespace package."""',), True))
    for feature in draw(st.lists(st.sampled_from(["absolute_import", "annotations", "division"]), max_size=2)):
        head.append(Piece((f"from __future__ import {feature}",), True))
    body: list[Piece] = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["declaration", "declaration", "fallback", "simple", "blank", "other",
                                     "unused import", "mutated fallback"]))
        if kind == "declaration":
            body += draw(declaration_piece())
        elif kind == "fallback":
            body.append(draw(fallback_piece()))
        elif kind == "simple":
            body.append(draw(SIMPLE_ALLOWED))
        elif kind == "blank":
            body.append(draw(BLANKS))
        elif kind == "other":
            body.append(draw(OTHER))
        elif kind == "unused import":
            body.append(draw(UNUSED_IMPORT))
        else:
            body.append(draw(fallback_piece(draw(FALLBACK_MUTATIONS))))
    pieces = head + body
    starts, line = [], 1
    for piece in pieces:
        starts.append(line)
        line += len(piece.lines)
    source = "".join(text + "\n" for piece in pieces for text in piece.lines)
    return source, pieces, starts


def expected(pieces: list[Piece], starts: list[int]) -> tuple[Kind, str | None, list[int]]:
    """The verdict the whitelist gives, from what the generator knows about each piece."""
    styles = {p.declares for p in pieces if p.declares}
    if not styles:
        return Kind.REGULAR, None, []
    blocking = [start for piece, start in zip(pieces, starts) if not piece.allowed]
    if blocking:
        return Kind.HYBRID, None, blocking
    return Kind.PURE, (PKG_RESOURCES if PKG_RESOURCES in styles else PKGUTIL), []


SETTINGS = settings(derandomize=True, max_examples=400, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(init_file())
def test_verdict_follows_the_model(generated):
    source, pieces, starts = generated
    kind, style, blocking = expected(pieces, starts)
    result = classify_init(source.encode())
    assert result.kind is kind, (source, result)
    if kind is Kind.PURE:
        assert result.style is Style(style)
    if kind is Kind.HYBRID:
        assert [b.line for b in result.blocking] == blocking[:MAX_BLOCKING_REPORTED], source
        assert result.more_blocking == max(0, len(blocking) - MAX_BLOCKING_REPORTED)


@st.composite
def crlf_or_bom(draw, data: str) -> bytes:
    raw = data.replace("\n", "\r\n") if draw(st.booleans()) else data
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + raw.encode()


@SETTINGS
@given(init_file(), st.data())
def test_line_ends_and_bom_change_nothing(generated, data):
    source, pieces, starts = generated
    assert classify_init(data.draw(crlf_or_bom(source))).kind is expected(pieces, starts)[0]


# -- through strip ------------------------------------------------------------------------------


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _stage(site: Path, init: bytes) -> Path:
    files = {"ns/__init__.py": init, "ns/sub/__init__.py": b"", "ns/sub/mod.py": b"x = 1\n"}
    dist_info = site / "ns_sub-1.0.dist-info"
    dist_info.mkdir(parents=True)
    files["ns_sub-1.0.dist-info/METADATA"] = b"Metadata-Version: 2.1\nName: ns-sub\nVersion: 1.0\n"
    rows = []
    for rel, data in files.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
        rows.append(f"{rel},{_hash(data)},{len(data)}\n")
    rows.append("ns_sub-1.0.dist-info/RECORD,,\n")
    (dist_info / "RECORD").write_text("".join(rows))
    return dist_info / "RECORD"


def assert_record_true(site: Path, record: Path) -> None:
    for row in record.read_text().splitlines():
        path, digest, size = row.rsplit(",", 2)
        if not digest:
            continue
        data = (site / path).read_bytes()
        assert (_hash(data), str(len(data))) == (digest, size), path


@settings(derandomize=True, max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(init_file())
def test_strip_removes_exactly_what_the_model_calls_pure(generated):
    source, pieces, starts = generated
    kind = expected(pieces, starts)[0]
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        record = _stage(site, source.encode())
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["strip", str(site)], stdout=out, stderr=err)
        assert "Traceback" not in err.getvalue()
        assert code in (0, 1), (code, err.getvalue())
        init = site / "ns" / "__init__.py"
        assert init.exists() is (kind is not Kind.PURE), (source, out.getvalue())
        if kind is Kind.PURE:
            assert "ns/__init__.py" not in record.read_text()
        assert (site / "ns" / "sub" / "mod.py").read_bytes() == b"x = 1\n"
        assert_record_true(site, record)
