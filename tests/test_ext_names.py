"""Extension file names, init symbol names and interpreter directories."""

from __future__ import annotations

import pytest

from ns_strip.binfmt import init_symbol_names, module_from_init_symbol
from ns_strip.extensions import module_name, python_target
from ns_strip.extnames import TagStyle, normalize_tag, parse_extension_filename

NAMES = [
    # filename, module, tag, style, implementation, version, abi3, free-threaded, platform
    ("foo.cpython-311-x86_64-linux-gnu.so", "foo", "cpython-311-x86_64-linux-gnu", TagStyle.CPYTHON,
     "cpython", (3, 11), False, False, "x86_64-linux-gnu"),
    ("_speedups.cpython-313t-aarch64-linux-gnu.so", "_speedups", "cpython-313t-aarch64-linux-gnu", TagStyle.CPYTHON,
     "cpython", (3, 13), False, True, "aarch64-linux-gnu"),
    ("foo.cpython-37m-arm-linux-gnueabihf.so", "foo", "cpython-37m-arm-linux-gnueabihf", TagStyle.CPYTHON,
     "cpython", (3, 7), False, False, "arm-linux-gnueabihf"),
    ("shared_ns.cpython-39-darwin.so", "shared_ns", "cpython-39-darwin", TagStyle.CPYTHON,
     "cpython", (3, 9), False, False, "darwin"),
    ("foo.cpython-311.so", "foo", "cpython-311", TagStyle.CPYTHON, "cpython", (3, 11), False, False, None),
    ("foo.abi3.so", "foo", "abi3", TagStyle.ABI3, None, None, True, False, None),
    ("foo.abi3t.so", "foo", "abi3t", TagStyle.ABI3, None, None, True, True, None),
    ("foo.so", "foo", None, TagStyle.NONE, None, None, False, False, None),
    ("foo.pypy39-pp73-x86_64-linux-gnu.so", "foo", "pypy39-pp73-x86_64-linux-gnu", TagStyle.PYPY,
     "pypy", (3, 9), False, False, "x86_64-linux-gnu"),
    ("foo.pypy310-pp73-win_amd64.pyd", "foo", "pypy310-pp73-win_amd64", TagStyle.PYPY,
     "pypy", (3, 10), False, False, "win_amd64"),
    ("foo.cp311-win_amd64.pyd", "foo", "cp311-win_amd64", TagStyle.WINDOWS, "cpython", (3, 11), False, False,
     "win_amd64"),
    ("foo.cp313t-win_arm64.pyd", "foo", "cp313t-win_arm64", TagStyle.WINDOWS, "cpython", (3, 13), False, True,
     "win_arm64"),
    ("foo.cp312-mingw_x86_64_ucrt_gnu.pyd", "foo", "cp312-mingw_x86_64_ucrt_gnu", TagStyle.WINDOWS,
     "cpython", (3, 12), False, False, "mingw_x86_64_ucrt_gnu"),
    ("foo.pyd", "foo", None, TagStyle.NONE, None, None, False, False, None),
    ("foo.bar.so", "foo", "bar", TagStyle.UNKNOWN, None, None, False, False, None),
    ("foo.cp311-win_amd64.so", "foo", "cp311-win_amd64", TagStyle.UNKNOWN, None, None, False, False, None),
]  # fmt: skip


@pytest.mark.parametrize("filename, module, tag, style, implementation, version, abi3, free, platform", NAMES)
def test_parse_extension_filename(filename, module, tag, style, implementation, version, abi3, free, platform):
    name = parse_extension_filename(filename)
    assert (name.module, name.tag, name.style, name.implementation, name.python_version) == (
        module, tag, style, implementation, version
    )  # fmt: skip
    assert (name.abi3, name.free_threaded, name.platform) == (abi3, free, platform)


def test_a_file_that_is_not_an_extension_is_refused():
    with pytest.raises(ValueError):
        parse_extension_filename("libfoo.so.1")


@pytest.mark.parametrize(
    "text, expected",
    [
        (".cpython-311-x86_64-linux-gnu.so", ("cpython-311-x86_64-linux-gnu", ".so")),
        ("cpython-312-aarch64-linux-gnu", ("cpython-312-aarch64-linux-gnu", None)),
        (".abi3.so", ("abi3", ".so")),
        ("cp311-win_amd64.pyd", ("cp311-win_amd64", ".pyd")),
        (".so", (None, ".so")),
    ],
)
def test_normalize_tag(text, expected):
    assert normalize_tag(text) == expected


@pytest.mark.parametrize(
    "module, symbols",
    [
        ("foo", ("PyInit_foo", "PyModExport_foo")),
        ("héllo", ("PyInitU_hllo_bpa", "PyModExportU_hllo_bpa")),
        ("a_é", ("PyInitU_a__cja", "PyModExportU_a__cja")),
    ],
)
def test_init_symbol_names_round_trip(module, symbols):
    assert init_symbol_names(module) == symbols
    assert [module_from_init_symbol(symbol) for symbol in symbols] == [module, module]


def test_undecodable_init_symbol_names_no_module():
    assert module_from_init_symbol("PyInitU_!!") is None
    assert module_from_init_symbol("PyInit_") is None
    assert module_from_init_symbol("PyInitialize") is None


@pytest.mark.parametrize(
    "relpath, module",
    [
        ("foo.cpython-311-x86_64-linux-gnu.so", "foo"),
        ("a/b/_c.abi3.so", "a.b._c"),
        ("pkg-1.0.data/platlib/pkg/_x.so", "pkg._x"),
        ("numpy.libs/libopenblas.so", None),
    ],
)
def test_module_name(relpath, module):
    assert module_name(relpath) == module


def test_python_target_from_path():
    target = python_target("/usr/lib/python3.11/site-packages/foo.so")
    assert (target.implementation, target.version, target.free_threaded) == ("cpython", (3, 11), False)
    target = python_target("/opt/venv/lib/python3.13t/site-packages/x/y.so")
    assert (target.version, target.free_threaded, target.evidence) == ((3, 13), True, "python3.13t/")
    assert python_target("/opt/pypy/lib/pypy3.10/site-packages/a.so").implementation == "pypy"
    assert python_target("/usr/lib/python3/dist-packages/foo.so") is None
