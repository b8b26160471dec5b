"""Hostile trees and interpreters against issue 12's additions: the sys.path query, the .pth
audit, and strip --check-imports (which runs the tree's code, so that code is hostile too)."""

from __future__ import annotations

import os
import time

from hostile import Sentinel, assert_clean_exit, fingerprint, run_limited
from nstree import add_distribution
from realsys_support import fake_base

PKGUTIL = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


def test_check_imports_survives_hostile_package_code(tmp_path):
    sentinel = Sentinel(tmp_path / "outside")
    python, _ = fake_base(tmp_path / "base")
    tree = tmp_path / "tree"
    pidfile = tmp_path / "grandchild.pid"
    add_distribution(tree, "nsh.bad", {
        "nsh/__init__.py": PKGUTIL,
        "nsh/good.py": "X = 1\n",
        # prints without end, forks a grandchild that would outlive the check, then hangs
        "nsh/loud.py": "import sys\nfor _ in range(200000): sys.stdout.write('x' * 1000)\n",
        "nsh/fork.py": f"import os, time\nif os.fork() == 0:\n    open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
                       "    time.sleep(3600)\n",
        "nsh/hang.py": "while True:\n    pass\n",
        "zz_exit.py": "import os\nos._exit(3)\n",
    })
    started = time.monotonic()
    result = run_limited("strip", str(tree), "--check-imports", "--python", str(python),
                         env={"NS_STRIP_CHECK_IMPORTS_TIMEOUT": "3"}, timeout=120)
    assert_clean_exit(result, {0})
    assert time.monotonic() - started < 100
    assert not (tree / "nsh" / "__init__.py").exists()  # what failed before is not held against it
    assert (tree / "nsh" / "good.py").exists()
    sentinel.assert_unchanged()
    if pidfile.exists():
        pid = int(pidfile.read_text())
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"grandchild {pid} outlived the import check")


def test_hostile_pth_files_on_the_interpreters_site_dir(tmp_path):
    python, site = fake_base(tmp_path / "base")
    os.mkfifo(site / "a-fifo.pth")
    with open(site / "b-huge.pth", "wb") as huge:
        huge.truncate(64 << 20)  # sparse: 64 MiB of NULs, far over what a .pth may be
    (site / "c-loop.pth").symlink_to(site / "c-loop.pth")
    (site / "d-dir.pth").mkdir()
    (site / "e.pth").write_bytes(b"\xff\xfe garbage\nimport os\n" + b"x" * 100)
    before = fingerprint(site)
    result = run_limited("doctor", "--python", str(python), "--db", str(tmp_path / "none"))
    assert_clean_exit(result, {0, 1})
    assert "NS133" in result.stdout and "e.pth" in result.stdout
    assert fingerprint(site) == before


def test_interpreter_printing_garbage_is_bad_input(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nhead -c 100000000 /dev/urandom\n")
    fake.chmod(0o755)
    tree = tmp_path / "tree"
    add_distribution(tree, "nsh.x", {"nsh/__init__.py": PKGUTIL, "nsh/x.py": ""})
    before = fingerprint(tree)
    for args in (["doctor", "--python", str(fake)], ["strip", str(tree), "--python", str(fake)]):
        result = run_limited(*args)
        assert_clean_exit(result, {3})
        assert str(fake) in result.stderr
    assert fingerprint(tree) == before
