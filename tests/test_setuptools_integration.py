"""End to end with real parts: wheels built by setuptools at test time, installed by installer
into staged roots, stripped, then imported from two different sys.path entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nstree import (
    PKG_RESOURCES_INIT,
    PKGUTIL_INIT,
    build_setuptools_wheel,
    install_wheel,
    python_imports,
    run_cli,
    snapshot,
    write_project,
)
from test_strip import assert_records_true

IMPORT_BOTH = (
    "import nsdemo.alpha, nsdemo.beta, nsdemo\n"
    "print(nsdemo.alpha.NAME, nsdemo.beta.NAME, getattr(nsdemo, '__file__', None))\n"
)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("projects")
    dist = work / "dist"
    pkgutil_project = write_project(work / "alpha", {
        "src/nsdemo/__init__.py": PKGUTIL_INIT,
        "src/nsdemo/alpha/__init__.py": "NAME = 'alpha'\n",
    }, """\
        from setuptools import setup
        setup(name="nsdemo.alpha", version="1.0", package_dir={"": "src"},
              packages=["nsdemo", "nsdemo.alpha"])
    """)
    setuptools_project = write_project(work / "beta", {
        "src/nsdemo/__init__.py": PKG_RESOURCES_INIT,
        "src/nsdemo/beta/__init__.py": "NAME = 'beta'\n",
    }, """\
        from setuptools import setup
        setup(name="nsdemo.beta", version="1.0", package_dir={"": "src"},
              packages=["nsdemo", "nsdemo.beta"], namespace_packages=["nsdemo"])
    """)
    return {
        "alpha": build_setuptools_wheel(pkgutil_project, dist / "alpha"),
        "beta": build_setuptools_wheel(setuptools_project, dist / "beta"),
    }


def test_setuptools_writes_the_legacy_files(wheels, tmp_path):
    """The fixture is what distros receive: an nspkg.pth plus namespace_packages.txt, and a pkgutil init."""
    site = tmp_path / "site"
    install_wheel(wheels["beta"], site)
    install_wheel(wheels["alpha"], site)
    code, out, _ = run_cli("scan", "--json", str(site))
    payload = json.loads(out)
    codes = sorted(f["code"] for f in payload["findings"])
    assert codes == ["NS101", "NS103", "NS104"]
    assert {(n["name"], n["style"]) for n in payload["namespaces"]} == {
        ("nsdemo", "pkgutil"), ("nsdemo", "nspkg_pth"),
    }
    pkgutil_ns = next(n for n in payload["namespaces"] if n["style"] == "pkgutil")
    assert pkgutil_ns["distributions"] == ["nsdemo.alpha"]


def test_strip_two_sys_path_entries_and_import_both_halves(wheels, tmp_path):
    first, second = tmp_path / "first" / "site-packages", tmp_path / "second" / "site-packages"
    install_wheel(wheels["alpha"], first)
    install_wheel(wheels["beta"], second)

    for site in (first, second):
        code, out, err = run_cli("strip", "--json", str(site))
        assert code == 0, err
        assert json.loads(out)["removed"], f"nothing stripped in {site}"
        assert_records_true(site)
    assert not (first / "nsdemo" / "__init__.py").exists()
    assert not list(second.glob("*-nspkg.pth"))
    assert not list(second.glob("*.dist-info/namespace_packages.txt"))

    proc = python_imports([first, second], IMPORT_BOTH)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["alpha", "beta", "None"]  # nsdemo is a PEP 420 namespace now


def test_strip_under_root_then_idempotent(wheels, tmp_path):
    destdir = tmp_path / "image"
    target = "/usr/lib/python3/dist-packages"
    site = destdir / target.lstrip("/")
    install_wheel(wheels["alpha"], site)
    install_wheel(wheels["beta"], site)
    code, out, err = run_cli("strip", "--root", str(destdir), target)
    assert code == 0, err
    assert "Stripping pkgutil-style namespace nsdemo (nsdemo/__init__.py)" in out.splitlines()
    assert_records_true(site)
    before = snapshot(destdir)
    code, out, _ = run_cli("strip", "--root", str(destdir), target)
    assert code == 0 and snapshot(destdir) == before and "Nothing to strip" in out
    proc = python_imports([site], IMPORT_BOTH)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["alpha", "beta", "None"]


def test_unstripped_split_breaks_where_a_portion_is_a_regular_package(wheels, tmp_path):
    """Why distros strip: a leftover regular-package portion hides the other sys.path entry.

    Here the pkgutil init is replaced by the empty __init__.py that some distros used to ship
    as the namespace placeholder; stripping the legacy files does not touch it (it is a regular
    package), and the import of the other half fails — the failure mode ns-strip's doctor names.
    """
    first, second = tmp_path / "first", tmp_path / "second"
    install_wheel(wheels["alpha"], first)
    install_wheel(wheels["beta"], second)
    (first / "nsdemo" / "__init__.py").write_text("")
    run_cli("strip", str(second))
    proc = python_imports([first, second], IMPORT_BOTH)
    assert proc.returncode != 0 and "No module named 'nsdemo.beta'" in proc.stderr
