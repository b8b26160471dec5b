"""FIFOs, sockets, devices and links to /dev/zero or out of the root, in every position where
ns-strip reads a file (issue 11, item 5): no command waits on one, reads one without bound or
reads through a link out of the root. Each case ends promptly (the harness's timeout fails a
hang) with an exit code of the contract and at most one line of error, the special entry and
the sentinel outside the root unchanged, and the tree untouched when the command refused it.
"""

from __future__ import annotations

import concurrent.futures
import os
import stat
from pathlib import Path

import pytest

from hostile import Sentinel, assert_clean_exit, fingerprint, run_limited
from nstree import PKGUTIL_INIT, add_distribution, add_egg_info_zope_foo
from wheelbuild import craft_wheel

# A hang shows as a timeout long before the harness's default.
TIMEOUT = 30
EXT = "fast.cpython-311-x86_64-linux-gnu.so"
DIST_INFO = "okns_portion-1.0.dist-info"
EGG_INFO = "zope.foo-1.0-py3.11.egg-info"
NSPKG_PTH = "okns_portion-1.0-nspkg.pth"
NSPKG_LINE = ("import sys, types, os;p = os.path.join(sys._getframe(1).f_locals['sitedir'], *('okns',));"
              "m = sys.modules.setdefault('okns', types.ModuleType('okns'));"
              "mp = (m or []) and m.__dict__.setdefault('__path__',[]);(p not in mp) and mp.append(p)\n")

# Every file a command reads, by what it is.
POSITIONS = {
    "init": "okns/__init__.py",
    "module": "okns/mod.py",
    "extension": f"okns/{EXT}",
    "record": f"{DIST_INFO}/RECORD",
    "metadata": f"{DIST_INFO}/METADATA",
    "namespace_packages": f"{DIST_INFO}/namespace_packages.txt",
    "top_level": f"{DIST_INFO}/top_level.txt",
    "nspkg_pth": NSPKG_PTH,
    "pth": "extra.pth",
    "installed_files": f"{EGG_INFO}/installed-files.txt",
    "pkg_info": f"{EGG_INFO}/PKG-INFO",
    "egg_init": "zope/__init__.py",
}
READERS = {
    "scan": ["scan"],
    "check": ["check"],
    "ext": ["ext"],
    "import-names": ["import-names"],
}


def _site(root: Path) -> Path:
    site = root / "usr/lib/python3/dist-packages"
    add_distribution(site, "okns-portion", {
        "okns/__init__.py": PKGUTIL_INIT,
        "okns/mod.py": "VALUE = 1\n",
        f"okns/{EXT}": b"\x7fELF not really",
        NSPKG_PTH: NSPKG_LINE,
        "extra.pth": "/opt/somewhere\n",
    }, metadata_files={"namespace_packages.txt": "okns\n", "top_level.txt": "okns\n"})
    add_egg_info_zope_foo(site, "__import__('pkg_resources').declare_namespace(__name__)\n")
    return site


def _make_special(path: Path, kind: str, outside: Path) -> None:
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        os.mknod(path, stat.S_IFSOCK | 0o644)  # a socket file with no listener behind it
    elif kind == "device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o644, os.makedev(1, 5))  # what /dev/zero is
        except PermissionError:
            if os.environ.get("CI"):
                raise
            pytest.skip("creating a device node needs root (CI runs as root)")
    elif kind == "zero-link":
        os.symlink("/dev/zero", path)
    elif kind == "outside-link":
        os.symlink(outside / "precious.txt" if path.suffix != ".so" else outside / "sub" / "data.bin", path)
    else:
        raise AssertionError(kind)


CASES = [(kind, position) for position in POSITIONS for kind in ("fifo",)] + [
    (kind, position)
    for kind in ("socket", "device", "zero-link", "outside-link")
    for position in ("init", "record", "nspkg_pth", "extension", "metadata")
]


@pytest.mark.parametrize(("kind", "position"), CASES, ids=[f"{k}-{p}" for k, p in CASES])
def test_a_special_file_in_a_tree_is_never_waited_on(kind, position, tmp_path):
    sentinel = Sentinel(tmp_path / "outside")
    root = tmp_path / "root"
    site = _site(root)
    special = site / POSITIONS[position]
    _make_special(special, kind, sentinel.path)
    kind_before = stat.S_IFMT(os.lstat(special).st_mode)
    before = fingerprint(site)
    # The commands that only read run together; strip, which may change the tree, after them.
    with concurrent.futures.ThreadPoolExecutor(len(READERS)) as pool:
        results = dict(zip(READERS, pool.map(lambda args: run_limited(*args, str(site), timeout=TIMEOUT),
                                              READERS.values())))
    for name, result in results.items():
        assert_clean_exit(result, {0, 1, 3})
        if result.returncode == 3:
            assert os.fspath(site) in result.stderr or POSITIONS[position] in result.stderr, result.stderr
    assert fingerprint(site) == before, "a command that only reads changed the tree"
    sentinel.assert_unchanged()
    result = run_limited("strip", str(site), timeout=TIMEOUT)
    assert_clean_exit(result, {0, 1, 3})
    sentinel.assert_unchanged()
    # Whatever was stripped, the special entry was neither read through nor removed.
    assert stat.S_IFMT(os.lstat(special).st_mode) == kind_before
    if result.returncode == 3:
        assert fingerprint(site) == before, "strip refused the tree but changed it"


def test_strip_with_root_on_a_tree_of_fifos_everywhere_refuses_promptly(tmp_path):
    sentinel = Sentinel(tmp_path / "outside")
    root = tmp_path / "root"
    site = _site(root)
    for position in POSITIONS.values():
        _make_special(site / position, "fifo", sentinel.path)
    before = fingerprint(root)
    for args in (["scan", "--root", str(root)], ["strip", "--root", str(root)], ["check"], ["import-names"], ["ext"]):
        target = "/usr/lib/python3/dist-packages" if "--root" in args else str(site)
        result = run_limited(*args, target, timeout=TIMEOUT)
        assert_clean_exit(result, {0, 1, 3})
    assert fingerprint(root) == before
    sentinel.assert_unchanged()


@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
def test_a_wheel_path_that_is_a_special_file_is_refused(kind, tmp_path):
    sentinel = Sentinel(tmp_path / "outside")
    wheel = tmp_path / "in" / "okns-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"")
    _make_special(wheel, kind, sentinel.path)
    out = tmp_path / "out"
    out.mkdir()
    for args in (["scan"], ["strip", "-o", str(out)], ["check"], ["ext"], ["import-names"],
                 ["import-names", "--write", "-o", str(out)]):
        result = run_limited(*args, str(wheel), timeout=TIMEOUT)
        assert_clean_exit(result, {3})
        assert str(wheel) in result.stderr and "not a wheel file" in result.stderr or kind == "socket", result.stderr
        assert list(out.iterdir()) == []
    sentinel.assert_unchanged()


def test_ext_on_a_fifo_named_like_an_extension_reports_it(tmp_path):
    fifo = tmp_path / EXT
    os.mkfifo(fifo)
    result = run_limited("ext", str(fifo), timeout=TIMEOUT)
    assert_clean_exit(result, {0, 1})
    assert "NS121" in result.stdout and "FIFO" in result.stdout, result.stdout


@pytest.mark.parametrize("kind", ["fifo", "zero-link", "outside-link"])
def test_ext_file_beside_a_package_whose_init_is_special(kind, tmp_path):
    """``ext foo.so`` reads ``foo/__init__.py`` beside it to tell a namespace it takes over."""
    sentinel = Sentinel(tmp_path / "outside")
    directory = tmp_path / "site"
    package = directory / "fast"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PKGUTIL_INIT)
    (package / "mod.py").write_text("X = 1\n")
    (directory / EXT).write_bytes(b"\x7fELF not really")
    _make_special(package / "__init__.py", kind, sentinel.path)
    result = run_limited("ext", str(directory / EXT), timeout=TIMEOUT)
    assert_clean_exit(result, {0, 1, 3})
    sentinel.assert_unchanged()


def test_a_link_inside_the_root_is_still_read(tmp_path):
    """Safety does not cost correctness: a RECORD that is a link to a file inside the root is
    read (and a FIFO beside it is not)."""
    site = _site(tmp_path / "root")
    record = site / DIST_INFO / "RECORD"
    kept = site / "kept-RECORD"
    record.rename(kept)
    os.symlink("../kept-RECORD", record)
    result = run_limited("scan", "--json", str(site), timeout=TIMEOUT)
    assert_clean_exit(result, {0, 1})
    assert '"okns"' in result.stdout


def test_a_wheel_with_a_fifo_in_a_directory_beside_it_is_read(tmp_path):
    """Only what is read matters: a FIFO in the wheel's directory is not touched."""
    wheel = craft_wheel(tmp_path, [("okns/__init__.py", PKGUTIL_INIT.encode())], name="okns")
    os.mkfifo(tmp_path / "queue")
    result = run_limited("scan", str(wheel), timeout=TIMEOUT)
    assert_clean_exit(result, {0})


def test_a_directory_swapped_for_a_link_after_the_check_is_caught(tmp_path, monkeypatch):
    """No realpath-then-open race: a link in the tree is resolved and checked, and if a directory
    on the resolved path is then swapped for a link out of the root, the file opened is seen to
    lie outside (through /proc/self/fd) and refused. The swap is made exactly between the check
    and the open, by wrapping the resolution."""
    from ns_strip import sources
    from ns_strip.safeio import OutsideRootError
    from ns_strip.sources import TreeSource

    (tmp_path / "outside" / "data").mkdir(parents=True)
    (tmp_path / "outside" / "data" / "RECORD").write_text("outside the root,,\n")
    sentinel = Sentinel(tmp_path / "outside")
    site = _site(tmp_path / "root")
    record = site / DIST_INFO / "RECORD"
    (site / "data").mkdir()
    record.rename(site / "data" / "RECORD")
    os.symlink("../data/RECORD", record)
    source = TreeSource(site)
    assert b"okns/mod.py" in source.read_bytes(f"{DIST_INFO}/RECORD")  # the link inside the root is read
    real_realpath = os.path.realpath

    def resolve_then_swap(path, *args, **kwargs):
        resolved = real_realpath(path, *args, **kwargs)
        if resolved.endswith("/data/RECORD"):
            os.rename(site / "data", site / "data.moved")
            os.symlink(tmp_path / "outside" / "data", site / "data")
        return resolved

    monkeypatch.setattr(sources.os.path, "realpath", resolve_then_swap)
    with pytest.raises(OutsideRootError):
        source.read_bytes(f"{DIST_INFO}/RECORD")
    sentinel.assert_unchanged()


def test_a_directory_swapped_for_a_link_after_the_walk_is_caught(tmp_path):
    """A file is read by its path from the site dir's descriptor, and a directory on that path
    may have been swapped for a link since the walk listed it as a real one: the file opened is
    seen to lie outside the root and refused, and the error names the file by its whole path."""
    from ns_strip.safeio import OutsideRootError
    from ns_strip.sources import TreeSource

    (tmp_path / "outside" / "data").mkdir(parents=True)
    (tmp_path / "outside" / "data" / "RECORD").write_text("outside the root,,\n")
    sentinel = Sentinel(tmp_path / "outside")
    site = _site(tmp_path / "root")
    (site / "data").mkdir()
    (site / "data" / "RECORD").write_text("inside the root,,\n")
    source = TreeSource(site)
    assert "RECORD" in source.dirs["data"].files and "data" not in source.dirs[""].links
    assert source.read_bytes("data/RECORD") == b"inside the root,,\n"
    os.rename(site / "data", site / "data.moved")
    os.symlink(tmp_path / "outside" / "data", site / "data")
    with pytest.raises(OutsideRootError) as caught:
        source.read_bytes("data/RECORD")
    assert caught.value.path == str(site / "data" / "RECORD")
    sentinel.assert_unchanged()
