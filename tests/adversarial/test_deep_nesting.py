"""Deep nesting (issue 11, item 8): expressions nested 10,000 deep in an ``__init__.py`` or a
``-nspkg.pth`` line, and trees and wheels 2,000 directories deep, through every command that
reads them, each in a memory-limited child: a clean exit, never a RecursionError or a
MemoryError traceback, the deep namespace found and stripped where it is pure.

Python 3.11's ``Path.mkdir(parents=True)``, ``os.walk`` and ``shutil.rmtree`` recurse, so the
trees here are made and removed with directory descriptors and ``rm -rf``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import Sentinel, assert_clean_exit, run_limited
from nstree import PKGUTIL_INIT, add_distribution, record_hash
from wheelbuild import craft_wheel

DEPTH = 2000
DEEP = "/".join(["d"] * DEPTH)


def _make_deep(top: Path, files: dict[str, bytes]) -> None:
    """``top/d/d/…/d`` (DEPTH levels) holding ``files``, without recursion and without paths
    longer than the system takes."""
    fd = os.open(top, os.O_DIRECTORY)
    try:
        for _ in range(DEPTH):
            os.mkdir("d", dir_fd=fd)
            below = os.open("d", os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
        for name, data in files.items():
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
            os.write(out, data)
            os.close(out)
    finally:
        os.close(fd)


def _deep_site(site: Path):
    """A site dir with a pkgutil namespace ``ns`` whose PEP 420 chain ends, 2,000 levels down, in
    another pure pkgutil namespace; the RECORD lists every file."""
    add_distribution(site, "deep", {"ns/__init__.py": PKGUTIL_INIT, "ns/a/mod.py": ""})
    init, module = PKGUTIL_INIT.encode(), b"x = 1\n"
    _make_deep(site / "ns", {"mod.py": module, "__init__.py": init})
    record = site / "deep-1.0.dist-info" / "RECORD"
    record.write_text(record.read_text() + f"ns/{DEEP}/mod.py,{record_hash(module)},{len(module)}\n"
                      f"ns/{DEEP}/__init__.py,{record_hash(init)},{len(init)}\n")
    yield site
    subprocess.run(["rm", "-rf", str(site)], check=True)  # shutil.rmtree recurses on 3.11


@pytest.fixture(scope="module")
def read_only_deep_site(tmp_path_factory: pytest.TempPathFactory):
    """One deep site for the commands that only read (they share it: it is slow to make)."""
    yield from _deep_site(tmp_path_factory.mktemp("deep") / "site")


@pytest.fixture
def deep_site(tmp_path: Path):
    yield from _deep_site(tmp_path / "site")


@pytest.fixture
def deep_wheel(tmp_path: Path) -> Path:
    init = PKGUTIL_INIT.encode()
    return craft_wheel(tmp_path / "wheels", [("ns/__init__.py", init), (f"ns/{DEEP}/mod.py", b"x = 1\n"),
                                             (f"ns/{DEEP}/__init__.py", init)], name="deep")


@pytest.mark.parametrize("command", ["scan", "check", "import-names", "ext"])
def test_commands_read_a_deep_tree(read_only_deep_site: Path, tmp_path: Path, command: str) -> None:
    sentinel = Sentinel(tmp_path / "outside")
    before = (read_only_deep_site / "deep-1.0.dist-info" / "RECORD").read_bytes()
    result = run_limited(command, "--json", str(read_only_deep_site))
    assert_clean_exit(result, {0, 1})
    if command == "scan":
        assert f'"ns.{DEEP.replace("/", ".")}"' in result.stdout  # the deepest namespace is found
    assert (read_only_deep_site / "deep-1.0.dist-info" / "RECORD").read_bytes() == before
    assert (read_only_deep_site / "ns" / "__init__.py").exists()
    sentinel.assert_unchanged()


def test_strip_of_a_deep_tree(deep_site: Path) -> None:
    result = run_limited("strip", str(deep_site))
    assert_clean_exit(result, {0})
    assert not (deep_site / "ns" / "__init__.py").exists()
    fd = os.open(deep_site / "ns", os.O_DIRECTORY)
    try:
        for _ in range(DEPTH):
            below = os.open("d", os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
        assert sorted(os.listdir(fd)) == ["mod.py"]  # the deep pure init went, the module stayed
    finally:
        os.close(fd)
    record = (deep_site / "deep-1.0.dist-info" / "RECORD").read_text()
    assert "__init__.py" not in record and f"ns/{DEEP}/mod.py" in record


@pytest.mark.parametrize("command", ["scan", "check", "import-names", "ext"])
def test_commands_read_a_deep_wheel(deep_wheel: Path, command: str) -> None:
    assert_clean_exit(run_limited(command, str(deep_wheel)), {0, 1})


def test_strip_of_a_deep_wheel(deep_wheel: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = run_limited("strip", str(deep_wheel), "-o", str(out))
    assert_clean_exit(result, {0})
    import zipfile

    with zipfile.ZipFile(out / deep_wheel.name) as stripped:
        names = stripped.namelist()
    assert f"ns/{DEEP}/mod.py" in names
    assert not [n for n in names if n.endswith("__init__.py")]


# -- deep expressions ------------------------------------------------------------------------

NESTED = {
    "binop": "a+" * 10_000 + "a",  # RecursionError inside the parser
    "unary": "-" * 10_000 + "a",  # MemoryError: "too complex"
    "lambda": "lambda: " * 10_000 + "a",
    "parens": "(" * 10_000 + "a" + ")" * 10_000,  # SyntaxError: too many nested parentheses
    "calls": "f" + "()" * 10_000,
}


@pytest.mark.parametrize("kind", sorted(NESTED))
def test_deeply_nested_init_is_unparseable_and_kept(tmp_path: Path, kind: str) -> None:
    site = tmp_path / "site"
    source = PKGUTIL_INIT + "x = " + NESTED[kind] + "\n"
    add_distribution(site, "nested", {"ns/__init__.py": source, "ns/mod.py": ""})
    for command in ("scan", "strip"):
        result = run_limited(command, "--json", str(site))
        assert_clean_exit(result, {1})  # NS111 is an error: kept
        assert '"NS111"' in result.stdout
    assert (site / "ns" / "__init__.py").read_text() == source


@pytest.mark.parametrize("kind", sorted(NESTED))
def test_deeply_nested_nspkg_line_is_kept(tmp_path: Path, kind: str) -> None:
    site = tmp_path / "site"
    line = "import sys, types, os;p = " + NESTED[kind] + "\n"
    add_distribution(site, "nested", {"nested-1.0-nspkg.pth": line, "ns/mod.py": ""})
    result = run_limited("strip", "--json", str(site))
    assert_clean_exit(result, {0})
    # Not what setuptools writes (NS116), or too large to read (NS115): kept either way.
    assert '"NS116"' in result.stdout or '"NS115"' in result.stdout
    assert (site / "nested-1.0-nspkg.pth").read_text() == line


def test_recursion_limit_is_not_what_saves_us() -> None:
    # The walks are iterative: the default limit stays, nothing raises it to get by.
    result = subprocess.run([sys.executable, "-c", "import sys, ns_strip.scan, ns_strip.initfile; "
                             "print(sys.getrecursionlimit())"], capture_output=True, text=True, check=True)
    assert int(result.stdout) <= 1000


@pytest.mark.parametrize("kind", ["binop", "unary"])
def test_deeply_nested_module_looked_into_for_setuptools_imports(tmp_path: Path, kind: str) -> None:
    # NS403 reads the distribution's modules for imports of setuptools: a module nested too
    # deep to parse means "cannot tell", so the requirement stays; never a traceback.
    from nstree import PKG_RESOURCES_INIT

    site = tmp_path / "site"
    module = "import setuptools\nx = " + NESTED[kind] + "\n"
    dist_info = add_distribution(site, "needs", {"ns/__init__.py": PKG_RESOURCES_INIT, "ns/sub/deep.py": module})
    metadata = dist_info / "METADATA"
    metadata.write_text(metadata.read_text() + "Requires-Dist: setuptools\n")
    for command in ("scan", "strip"):
        result = run_limited(command, "--json", "--drop-setuptools-dep", str(site)) if command == "strip" \
            else run_limited(command, "--json", "--check-modules", str(site))
        assert_clean_exit(result, {0, 1})
        assert '"NS403"' not in result.stdout
    assert "Requires-Dist: setuptools" in metadata.read_text()
    assert (site / "ns" / "sub" / "deep.py").read_text() == module
