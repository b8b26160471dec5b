"""Every namespace declaration form, pure and hybrid, and the messy bytes real files hold."""

from __future__ import annotations

import textwrap

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
