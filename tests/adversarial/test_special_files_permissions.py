"""A site dir, wheel, --root or output inside a directory the user cannot enter (issue 11, item
9): exit 3 naming it, never a PermissionError traceback.

Root enters every directory, so as root the command runs in a child that has dropped to the
unprivileged user ``nobody`` (as a distro build does: ns-strip runs as root there, but a
packager runs it too). The child imports ns-strip from a world-readable copy, so the test does
not depend on where the checkout lies; the locked directory is left 0700 and root's.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import ns_strip
from hostile import MEMORY_LIMIT, assert_clean_exit, fingerprint
from nstree import PKGUTIL_INIT, add_distribution
from wheelbuild import craft_wheel

NOBODY = 65534


@pytest.fixture(scope="module")
def readable_package() -> Path:
    """A copy of ns_strip that any user can import."""
    base = Path(tempfile.mkdtemp(prefix="ns-strip-package-"))
    shutil.copytree(Path(ns_strip.__file__).parent, base / "ns_strip",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for directory, _, files in os.walk(base):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(Path(directory) / name, 0o644)
    yield base
    shutil.rmtree(base)


def _run_unprivileged(package: Path, *args: str) -> subprocess.CompletedProcess[str]:
    def drop() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

    return subprocess.run(
        [sys.executable, "-m", "ns_strip", *args], capture_output=True, text=True, timeout=60, cwd="/",
        env={**os.environ, "PYTHONPATH": str(package), "PYTHONDONTWRITEBYTECODE": "1"}, preexec_fn=drop,
    )


@pytest.fixture
def open_base() -> Path:
    """A directory every user may enter (pytest's own temporary directories are root's, 0700)."""
    base = Path(tempfile.mkdtemp(prefix="ns-strip-perm-"))
    os.chmod(base, 0o755)
    yield base
    for directory, _, _ in os.walk(base):
        os.chmod(directory, 0o755)
    shutil.rmtree(base)


@pytest.fixture
def locked(open_base) -> Path:
    """A directory holding a site dir, a wheel and an output directory, that nobody may enter."""
    directory = open_base / "locked"
    site = directory / "root" / "site"
    add_distribution(site, "okns-portion", {"okns/__init__.py": PKGUTIL_INIT, "okns/mod.py": "X = 1\n"})
    craft_wheel(directory, [("okns/__init__.py", PKGUTIL_INIT.encode())], name="okns")
    (directory / "out").mkdir()
    os.chmod(directory, 0o700 if os.geteuid() == 0 else 0o000)
    yield directory
    os.chmod(directory, 0o700)


def test_the_child_really_cannot_enter(readable_package, locked, open_base):
    """The premise: the child runs ns-strip on an open tree, and cannot enter the locked one."""
    site = open_base / "open-site"
    add_distribution(site, "okns-portion", {"okns/__init__.py": PKGUTIL_INIT, "okns/mod.py": "X = 1\n"})
    for directory, _, _ in os.walk(site):
        os.chmod(directory, 0o755)
    result = _run_unprivileged(readable_package, "scan", str(site))
    assert_clean_exit(result, {0})
    assert "okns" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c", f"import os; os.listdir({str(locked)!r})"], capture_output=True, text=True,
        preexec_fn=lambda: (os.setgroups([]), os.setgid(NOBODY), os.setuid(NOBODY)) if os.geteuid() == 0 else None,
    )
    assert "PermissionError" in probe.stderr


@pytest.mark.parametrize("args", [
    ["scan", "{site}"], ["strip", "{site}"], ["check", "{site}"], ["ext", "{site}"], ["import-names", "{site}"],
    ["scan", "--root", "{root}", "/site"], ["strip", "--root", "{root}", "/site"],
    ["scan", "{wheel}"], ["strip", "-o", "{tmp}", "{wheel}"], ["check", "{wheel}"], ["ext", "{wheel}"],
    ["import-names", "{wheel}"], ["ext", "{site}/okns/fast.abi3.so"],
], ids=lambda args: "-".join(a.strip("{}") for a in args))
def test_a_path_inside_a_directory_the_user_cannot_enter(readable_package, locked, open_base, args):
    before = fingerprint(locked)
    free = open_base / "free"
    values = {"site": locked / "root" / "site", "root": locked / "root", "tmp": free,
              "wheel": locked / "okns-1.0-py3-none-any.whl"}
    free.mkdir(exist_ok=True)
    os.chmod(free, 0o777)
    argv = [arg.format(**{k: str(v) for k, v in values.items()}) for arg in args]
    result = _run_unprivileged(readable_package, *argv)
    assert_clean_exit(result, {3})
    assert "Permission denied" in result.stderr and str(locked) in result.stderr, result.stderr
    assert fingerprint(locked) == before
    assert list(free.iterdir()) == []


def test_an_output_directory_the_user_cannot_enter(readable_package, locked, open_base):
    free = open_base / "free"
    free.mkdir()
    os.chmod(free, 0o755)
    wheel = craft_wheel(free, [("okns/__init__.py", PKGUTIL_INIT.encode())], name="okns")
    os.chmod(wheel, 0o644)
    result = _run_unprivileged(readable_package, "strip", "-o", str(locked / "out"), str(wheel))
    assert_clean_exit(result, {3})
    assert "Permission denied" in result.stderr and str(locked / "out") in result.stderr, result.stderr
