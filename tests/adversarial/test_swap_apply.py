"""A directory of the plan swapped for a symbolic link (to a directory outside the root holding
files of the same names) while a slowed apply runs: the apply works through directory
descriptors and checks what the plan saw before every step, so it refuses or rolls back
(exit 3 or 4), and nothing outside the root changes. Once the swap is undone, the next run
ends with the same tree as a strip nobody disturbed."""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ext_toolchain import build_elf
from hostile import Sentinel, assert_clean_exit, fingerprint, run_limited
from nstree import PKGUTIL_INIT, add_distribution, snapshot

from ns_strip.journal import JOURNAL_DIR, STEP_DELAY_ENV

SITE = "/usr/lib/python3/dist-packages"
DIST_INFO = "zope_event-1.0.dist-info"


def make_root(root: Path) -> Path:
    site = root / SITE.lstrip("/")
    add_distribution(site, "zope.event", {
        "zope/__init__.py": PKGUTIL_INIT, "zope/event/__init__.py": "",
        "zope/__pycache__/__init__.cpython-311.pyc": b"pyc",
    })
    return site


def outside_twin(path: Path, names: list[str]) -> Sentinel:
    """A sentinel directory that also holds files of the names the plan acts on."""
    sentinel = Sentinel(path)
    for name in names:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(b"outside: must not be touched\n")
    sentinel.before = fingerprint(path)
    return sentinel


def start(*args: str, delay: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ns_strip", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, STEP_DELAY_ENV: delay})


def wait_until(condition, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)


def swap(directory: Path, outside: Path) -> Path:
    aside = directory.with_name(directory.name + ".moved")
    os.rename(directory, aside)
    os.symlink(outside, directory)
    return aside


def unswap(directory: Path, aside: Path) -> None:
    os.unlink(directory)
    os.rename(aside, directory)


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("undisturbed")
    site = make_root(root)
    assert_clean_exit(run_limited("strip", "--root", str(root), SITE), {0})
    return snapshot(site)


# When the swap happens: once the journal exists (before the first change), or once the first
# file has been moved aside (mid-apply).
MOMENTS = {
    "journal written": lambda site: (site / JOURNAL_DIR / "plan.json").exists(),
    "first change made": lambda site: not (site / "zope" / "__init__.py").exists(),
}


@pytest.mark.parametrize("moment", sorted(MOMENTS))
@pytest.mark.parametrize("swapped", ["zope", "zope/__pycache__", DIST_INFO])
def test_strip_swap_during_apply(tmp_path, undisturbed, moment, swapped):
    root = tmp_path / "root"
    site = make_root(root)
    outside = outside_twin(tmp_path / "outside",
                           ["__init__.py", "__init__.cpython-311.pyc", "RECORD", "__pycache__/__init__.cpython-311.pyc"])
    proc = start("strip", "--root", str(root), SITE, delay="0.4")
    try:
        wait_until(lambda: MOMENTS[moment](site), proc)
        aside = swap(site / swapped, outside.path)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    outside.assert_unchanged()
    # The journal is written: the change is under way, and is rolled back (or left for the
    # next run to roll back when the swapped directory is in the way of the rollback too).
    assert_clean_exit(result, {4})
    unswap(site / swapped, aside)
    rerun = run_limited("strip", "--root", str(root), SITE)
    assert_clean_exit(rerun, {0})
    outside.assert_unchanged()
    assert snapshot(site) == undisturbed


def test_strip_file_swapped_for_a_hybrid_before_its_step(tmp_path, undisturbed):
    """A pure ``__init__.py`` rewritten into a hybrid after the plan: not removed."""
    root = tmp_path / "root"
    site = make_root(root)
    proc = start("strip", "--root", str(root), SITE, delay="0.4")
    init = site / "zope" / "__init__.py"
    hybrid = PKGUTIL_INIT + "print('runs on import')\n"
    try:
        wait_until(lambda: (site / JOURNAL_DIR).exists(), proc)
        init.write_text(hybrid)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_clean_exit(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), {4})
    assert "changed since it was planned" in err
    assert init.read_text() == hybrid and not (site / JOURNAL_DIR).exists()


SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


@pytest.mark.parametrize("moment", ["journal written", "first rename made"])
def test_ext_rename_swap_during_apply(tmp_path, moment):
    site = tmp_path / "site"
    build_elf(site / "pkg" / "good.so", "good")
    (site / "good-1.0.dist-info").mkdir()
    (site / "good-1.0.dist-info" / "RECORD").write_text("pkg/good.so,,\ngood-1.0.dist-info/RECORD,,\n")
    before = snapshot(site)
    outside = outside_twin(tmp_path / "outside", ["good.so", f"good{SUFFIX}"])
    proc = start("ext", "--rename", str(site), delay="0.5")
    condition = {
        "journal written": lambda: (site / JOURNAL_DIR / "plan.json").exists(),
        "first rename made": lambda: (site / "pkg" / f"good{SUFFIX}").exists(),
    }[moment]
    try:
        wait_until(condition, proc)
        aside = swap(site / "pkg", outside.path)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Even after its last rename, a swapped directory is noticed before the commit.
    assert_clean_exit(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), {4})
    outside.assert_unchanged()
    unswap(site / "pkg", aside)
    # Rolled back, or left for the next run to roll back: either way, the tree as it was.
    if (site / JOURNAL_DIR).exists():
        assert_clean_exit(run_limited("strip", str(site)), {0})
    assert snapshot(site) == before
    shutil.rmtree(site)


def test_import_names_write_swap_during_apply(tmp_path):
    """METADATA and RECORD rewrites go through the same checks."""
    undisturbed = tmp_path / "undisturbed"
    add_distribution(undisturbed, "zope.event", {"zope/event/__init__.py": ""})
    assert_clean_exit(run_limited("import-names", "--write", str(undisturbed)), {0})
    site = tmp_path / "site"
    add_distribution(site, "zope.event", {"zope/event/__init__.py": ""})
    outside = outside_twin(tmp_path / "outside", ["METADATA", "RECORD"])
    proc = start("import-names", "--write", str(site), delay="0.5")
    try:
        wait_until(lambda: (site / JOURNAL_DIR / "plan.json").exists(), proc)
        aside = swap(site / DIST_INFO, outside.path)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_clean_exit(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), {4})
    outside.assert_unchanged()
    unswap(site / DIST_INFO, aside)
    if (site / JOURNAL_DIR).exists():
        assert_clean_exit(run_limited("strip", str(site)), {0})
    assert_clean_exit(run_limited("import-names", "--write", str(site)), {0})
    assert snapshot(site) == snapshot(undisturbed)
