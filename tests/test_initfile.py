"""Every namespace declaration form, pure and hybrid, and the messy bytes real files hold."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ns_strip.initfile import Kind, Style, classify_init
from nstree import FALLBACK_INIT, PKG_RESOURCES_INIT, PKGUTIL_INIT


def classify(text: str | bytes):
    data = text if isinstance(text, bytes) else textwrap.dedent(text).encode()
    return classify_init(data)


PURE_PKGUTIL = [
    PKGUTIL_INIT,
    '__path__ = __import__("pkgutil").extend_path(__path__, __name__)  # type: ignore\n',
    "import pkgutil\n__path__ = pkgutil.extend_path(__path__, __name__)\n",
    "import pkgutil as _p\n__path__ = _p.extend_path(__path__, __name__)\n",
    "from pkgutil import extend_path\n__path__ = extend_path(__path__, __name__)\n",
    "from pkgutil import extend_path as ep\n__path__ = ep(__path__, __name__)\n",
    '"""Namespace package."""\n# comment\n\n' + PKGUTIL_INIT,
    "from __future__ import absolute_import\n" + PKGUTIL_INIT,
    "__path__: list = __import__('pkgutil').extend_path(__path__, __name__)\n",
]

PURE_PKG_RESOURCES = [
    PKG_RESOURCES_INIT,
    "import pkg_resources\npkg_resources.declare_namespace(__name__)\n",
    "from pkg_resources import declare_namespace\ndeclare_namespace(__name__)\n",
    FALLBACK_INIT,
    """\
    try:
        __import__('pkg_resources').declare_namespace(__name__)
    except ImportError:
        __path__ = __import__('pkgutil').extend_path(__path__, __name__)
    """,
    """\
    try:
        import pkg_resources
        pkg_resources.declare_namespace(__name__)
    except (ImportError, ModuleNotFoundError):
        import pkgutil
        __path__ = pkgutil.extend_path(__path__, __name__)
    """,
    """\
    # See http://peak.telecommunity.com/DevCenter/setuptools#namespace-packages
    try:
        __import__('pkg_resources').declare_namespace(__name__)
    except ImportError:
        pass
    """,
    """\
    import pkgutil
    try:
        __import__('pkg_resources').declare_namespace(__name__)
    except ImportError:
        __path__ = pkgutil.extend_path(__path__, __name__)
    """,
]


@pytest.mark.parametrize("source", PURE_PKGUTIL)
def test_pure_pkgutil(source):
    result = classify(source)
    assert (result.kind, result.style, result.blocking) == (Kind.PURE, Style.PKGUTIL, ())


@pytest.mark.parametrize("source", PURE_PKG_RESOURCES)
def test_pure_pkg_resources(source):
    result = classify(source)
    assert (result.kind, result.style, result.blocking) == (Kind.PURE, Style.PKG_RESOURCES, ())


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        (PKGUTIL_INIT + "from .core import main\n", [2]),
        ("import os\n" + PKG_RESOURCES_INIT + "VERSION = '1'\n", [1, 3]),
        ("import pkgutil, os\n__path__ = pkgutil.extend_path(__path__, __name__)\n", [1]),
        ("import pkgutil\nimport pkg_resources\n__path__ = pkgutil.extend_path(__path__, __name__)\n", [2]),
        ("if True:\n    __path__ = __import__('pkgutil').extend_path(__path__, __name__)\n", [1]),
        ("def f():\n    pass\n" + PKGUTIL_INIT, [1]),
        ("__all__ = []\n" + PKGUTIL_INIT, [1]),
        # An unbound name is not the pkgutil function: kept, never stripped.
        ("__path__ = extend_path(__path__, __name__)\n", [1]),
        # A try that catches everything would hide real errors: not the recognised wrapper.
        ("try:\n    __import__('pkg_resources').declare_namespace(__name__)\nexcept Exception:\n    pass\n", [1]),
        ("try:\n    __import__('pkg_resources').declare_namespace(__name__)\n    import os\n"
         "except ImportError:\n    pass\n", [1]),
    ],
)
def test_hybrid_names_blocking_lines(source, lines):
    result = classify(source)
    assert result.kind is Kind.HYBRID
    assert [b.line for b in result.blocking] == lines


def test_hybrid_statement_text_is_reported():
    result = classify(PKGUTIL_INIT + "from .core import main  # noqa\n")
    assert [str(b) for b in result.blocking] == ["line 2: from .core import main  # noqa"]


@pytest.mark.parametrize(
    "source",
    [
        "",
        "\n",
        '"""Just a docstring."""\n',
        "from .core import main\n",
        "import pkgutil\n",  # imports pkgutil, declares nothing
        "# extend_path is mentioned only in this comment\n",
        "x = 'declare_namespace'\n",
    ],
)
def test_regular_packages(source):
    assert classify(source).kind is Kind.REGULAR


def test_declaration_with_wrong_arguments_is_not_pure():
    result = classify("__path__ = __import__('pkgutil').extend_path(__path__, 'zope')\n")
    assert result.kind is Kind.HYBRID


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf" + PKGUTIL_INIT.encode(),  # UTF-8 BOM
        PKGUTIL_INIT.replace("\n", "\r\n").encode(),  # CRLF
        PKGUTIL_INIT.rstrip("\n").encode(),  # no final newline
        b"# -*- coding: latin-1 -*-\n# Copyright \xa9 Zope Foundation\n" + PKGUTIL_INIT.encode(),
        b"# Copyright (c) 2010 Somebody\n# Licensed under the MIT license\n#\n\n" + PKGUTIL_INIT.encode(),
        b'# coding: utf-8\n"""Caf\xc3\xa9 namespace."""\r\n' + PKGUTIL_INIT.encode(),
        b"\xef\xbb\xbf# -*- coding: utf-8 -*-\r\n" + FALLBACK_INIT.replace("\n", "\r\n").encode()[:0]
        + PKGUTIL_INIT.replace("\n", "\r\n").encode(),
    ],
)
def test_messy_bytes_still_pure(data):
    assert classify_init(data).kind is Kind.PURE


def test_crlf_fallback_wrapper_is_pure():
    assert classify_init(FALLBACK_INIT.replace("\n", "\r\n").encode()).kind is Kind.PURE


@pytest.mark.parametrize(
    ("data", "error_part"),
    [
        (PKGUTIL_INIT.encode() + b"def broken(:\n", "line 2"),
        (b"# -*- coding: latin-1 -*-\n" + PKGUTIL_INIT.encode() + b"print 'py2'\n", "line 3"),
        (PKG_RESOURCES_INIT.encode() + b"x = '\xff\xfe'\n", ""),  # not UTF-8, no cookie
        (b"# coding: no-such-codec\n" + PKGUTIL_INIT.encode(), ""),
        (PKGUTIL_INIT.encode() + b"\x00", ""),
    ],
)
def test_unparseable_namespace_like(data, error_part):
    result = classify_init(data)
    assert result.kind is Kind.UNPARSEABLE
    assert result.style is not None
    assert result.error and error_part in result.error


def test_unparseable_file_without_declaration_is_not_our_business():
    assert classify_init(b"def broken(:\n").kind is Kind.REGULAR


# -- issue 11 item 2: every statement kind is judged against the whitelist -------------------

DECLARE = "__import__('pkg_resources').declare_namespace(__name__)\n"


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        # The annotation is evaluated at import: the print would be lost.
        ("__path__: print('runs on import') = __import__('pkgutil').extend_path(__path__, __name__)\n", [1]),
        ("__path__: list[int()] = __import__('pkgutil').extend_path(__path__, __name__)\n", [1]),
        ("(__path__ := __import__('pkgutil').extend_path(__path__, __name__))\n", [1]),
        ("__path__ = __import__('pkgutil').extend_path(__path__, f'{__name__}')\n", [1]),
        ("__path__ = __import__('pkgutil').extend_path(__path__, __name__, x=print())\n", [1]),
        ("__path__ = __path__ = __import__('pkgutil').extend_path(__path__, __name__)\n", [1]),
        ("def f(x=__import__('pkg_resources').declare_namespace(__name__)): pass\n", [1]),
        ("@print\ndef f(): pass\n" + DECLARE, [1]),
        ("class A:\n    " + DECLARE, [1]),
        ("from pkgutil import *\n__path__ = extend_path(__path__, __name__)\n", [1, 2]),
        (PKGUTIL_INIT + "del __path__\n", [2]),
        ("global x\n" + PKGUTIL_INIT, [1]),
        ("import os as pkgutil\n__path__ = pkgutil.extend_path(__path__, __name__)\n", [1, 2]),
        ("import pkgutil as __import__\n__path__ = __import__.extend_path(__path__, __name__)\n", [1]),
        ("match x:\n    case _:\n        pass\n" + PKGUTIL_INIT, [1]),
        ("try:\n    " + DECLARE + "except ImportError as exc:\n    pass\n", [1]),
        ("try:\n    " + DECLARE + "except ImportError:\n    pass\nelse:\n    print()\n", [1]),
        ("try:\n    " + DECLARE + "except ImportError:\n    pass\nfinally:\n    pass\n", [1]),
        ("try:\n    " + DECLARE + "except:\n    pass\n", [1]),
        ("try:\n    " + DECLARE + "except (ImportError, OSError):\n    pass\n", [1]),
        ("try:\n    " + DECLARE + "except* ImportError:\n    pass\n", [1]),
        ("try:\n    " + DECLARE + "except ImportError:\n    print('no pkg_resources')\n", [1]),
        ("with open('x'):\n    " + DECLARE, [1]),
        ("for _ in [1]:\n    " + DECLARE, [1]),
        ("[" + DECLARE.strip() + " for _ in [1]]\n", [1]),
        (PKGUTIL_INIT + "__all__ = []\n", [2]),
        (PKGUTIL_INIT + "__version__ = '1.0'\n", [2]),
        (PKGUTIL_INIT + "b'bytes are not a docstring'\n", [2]),
        (PKGUTIL_INIT + "f'{print()}'\n", [2]),
        # A name bound by an import that comes after the declaration is not bound yet.
        ("__path__ = pkgutil.extend_path(__path__, __name__)\nimport pkgutil\n", [1, 2]),
        ("import pkg_resources\nimport pkgutil as pkg_resources\n"
         "__path__ = pkg_resources.extend_path(__path__, __name__)\n", [1]),
    ],
)
def test_forms_outside_the_whitelist_are_hybrid(source, lines):
    result = classify(source)
    assert result.kind is Kind.HYBRID, result
    assert [b.line for b in result.blocking] == lines


@pytest.mark.parametrize(
    "source",
    [
        "__path__: 'list[str]' = __import__('pkgutil').extend_path(__path__, __name__)\n",
        "__path__: list[str] = __import__('pkgutil').extend_path(__path__, __name__)\n",
        "from __future__ import annotations\n__path__: list = __import__('pkgutil').extend_path(__path__, __name__)\n",
        "pass\n" + PKGUTIL_INIT,
        # A try that only tries pkgutil is pure too (and pkgutil-style).
        "try:\n    " + PKGUTIL_INIT + "except ImportError:\n    pass\n",
    ],
)
def test_more_pure_forms(source):
    assert classify(source).kind is Kind.PURE


def test_a_file_the_compiler_refuses_is_kept_as_unparseable():
    result = classify(PKGUTIL_INIT + "from __future__ import annotations\n")
    assert result.kind is Kind.UNPARSEABLE
    assert "__future__" in result.error


# -- issue 12 §4: only declarations that run at import count ---------------------------------

@pytest.mark.parametrize(
    "source",
    [
        "def f():\n    " + DECLARE,
        "async def f():\n    " + DECLARE,
        "f = lambda: " + DECLARE,
        "class A:\n    def m(self):\n        " + DECLARE,
        "def declare_namespace(name):\n    pass\n",
    ],
)
def test_declaration_only_inside_functions_is_a_regular_package(source):
    assert classify(source).kind is Kind.REGULAR


def _real_pkg_resources_inits() -> list[Path]:
    """pip's vendored pkg_resources (in every venv) and setuptools' own (the installed
    setuptools if it still has one, else Debian's python3-setuptools)."""
    import importlib.util

    import pip

    found = [Path(pip.__file__).parent / "_vendor" / "pkg_resources" / "__init__.py"]
    spec = importlib.util.find_spec("pkg_resources")
    if spec is not None and spec.origin:
        found.append(Path(spec.origin))
    debian = Path("/usr/lib/python3/dist-packages/pkg_resources/__init__.py")
    if debian.is_file() and debian not in found:
        found.append(debian)
    return found


def test_real_pkg_resources_inits_are_regular_packages():
    inits = _real_pkg_resources_inits()
    assert len(inits) >= 2, inits  # pip's and setuptools' (python3-setuptools is in .ci/apt/base.txt)
    for init in inits:
        data = init.read_bytes()
        assert b"def declare_namespace" in data  # the real file, with its calls inside functions
        result = classify_init(data)
        assert result.kind is Kind.REGULAR, (init, result.kind, result.blocking[:3])


def test_real_pkg_resources_dir_scans_as_a_regular_package(tmp_path):
    from ns_strip.scan import scan
    from ns_strip.sources import TreeSource

    for number, init in enumerate(_real_pkg_resources_inits()):
        site = tmp_path / str(number)
        (site / "pkg_resources").mkdir(parents=True)
        (site / "pkg_resources" / "__init__.py").write_bytes(init.read_bytes())
        result = scan(TreeSource(site))
        assert [f.code for f in result.findings] == [], result.findings
        assert result.candidates == [] and result.kept == []


def test_pips_vendored_pkg_resources_in_place_is_not_ns112(tmp_path):
    """pip/_vendor/pkg_resources as every venv has it: below the regular packages pip and
    pip._vendor, with pip's own inits; no NS110, no NS112."""
    import pip

    from ns_strip.scan import scan
    from ns_strip.sources import TreeSource

    real = Path(pip.__file__).parent
    site = tmp_path / "site"
    for rel in ("__init__.py", "_vendor/__init__.py", "_vendor/pkg_resources/__init__.py"):
        (site / "pip" / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / "pip" / rel).write_bytes((real / rel).read_bytes())
    result = scan(TreeSource(site))
    assert [f.code for f in result.findings] == [], result.findings
    assert result.namespaces == []


# -- issue 11 items 6 and 8: bounded, never a crash ------------------------------------------

@pytest.mark.parametrize(
    "expression",
    [
        "a+" * 10_000 + "a",  # RecursionError in the parser
        "-" * 10_000 + "a",  # MemoryError ("too complex")
        "not " * 10_000 + "a",
        "lambda: " * 10_000 + "a",
        "a if a else " * 10_000 + "a",
        "a" + ".a" * 10_000,
        "f" + "()" * 10_000,
        "(" * 10_000 + "a" + ")" * 10_000,  # SyntaxError "too many nested parentheses"
        "[" * 10_000 + "]" * 10_000,
    ],
)
def test_deep_nesting_is_unparseable_not_a_crash(expression):
    result = classify(PKGUTIL_INIT + "x = " + expression + "\n")
    assert result.kind is Kind.UNPARSEABLE
    assert result.style is Style.PKGUTIL and result.error


def test_deep_but_parseable_tree_is_walked_without_recursion():
    # 900 levels parse; the walk for import-time declarations must not recurse on them.
    result = classify("x = " + "-" * 900 + "__import__('pkg_resources').declare_namespace(__name__)\n")
    assert result.kind is Kind.HYBRID and result.style is Style.PKG_RESOURCES


def test_over_the_token_limit_is_not_parsed():
    from ns_strip.initfile import MAX_INIT_TOKENS

    result = classify(PKGUTIL_INIT + "a;" * (MAX_INIT_TOKENS // 2 + 1))
    assert result.kind is Kind.OVERSIZED and "tokens" in result.error
    # Long strings and comments are few tokens: a large docstring is still parsed.
    assert classify('"""' + "x " * 200_000 + '"""\n' + PKGUTIL_INIT).kind is Kind.PURE


def test_over_the_size_limit_is_not_parsed():
    from ns_strip.safeio import MAX_INIT_BYTES

    result = classify(PKGUTIL_INIT + "#" * MAX_INIT_BYTES)
    assert result.kind is Kind.OVERSIZED and "byte limit" in result.error


def test_blocking_text_of_a_huge_line_is_cut():
    result = classify(PKGUTIL_INIT + "x = '" + "y" * 500_000 + "'\n")
    assert result.kind is Kind.HYBRID
    assert len(result.blocking[0].text) < 200


def test_a_hybrid_of_many_statements_names_the_first_few_and_counts_the_rest():
    from ns_strip.initfile import MAX_BLOCKING_REPORTED

    result = classify(PKGUTIL_INIT + "x = 1\n" * 5000)
    assert result.kind is Kind.HYBRID
    assert [b.line for b in result.blocking] == list(range(2, 2 + MAX_BLOCKING_REPORTED))
    assert result.more_blocking == 5000 - MAX_BLOCKING_REPORTED
    assert result.describe_blocking().endswith(f"and {5000 - MAX_BLOCKING_REPORTED} more statement(s)")


def test_the_compiler_warns_nothing_on_stderr():
    # "invalid escape sequence" is a SyntaxWarning on Python 3.12+, shown by default: the
    # parse of a tree's file must not add lines to ns-strip's output.
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert classify(PKGUTIL_INIT + "x = '\\k'\n").kind is Kind.HYBRID
        assert classify("x = '\\k'\n" + PKGUTIL_INIT).kind is Kind.HYBRID
    assert caught == []


def test_quoted_lines_never_carry_control_characters():
    from ns_strip.nspkg import parse_nspkg_pth

    result = classify(PKGUTIL_INIT + "x = '\x1b[2J\x07'\n")
    assert result.blocking[0].text == "x = '\\x1b[2J\\x07'"
    [line] = parse_nspkg_pth(b"import os;\x1b]0;owned\x07\n")
    assert line.text == "import os;\\x1b]0;owned\\x07" and not line.loader
