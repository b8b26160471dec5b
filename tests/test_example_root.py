"""The README's quick start runs on examples/demo-root: it must stay true."""

from __future__ import annotations

import shutil
from pathlib import Path

from nstree import python_imports, run_module

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "demo-root"
SITE = "/usr/lib/python3/dist-packages"


def test_quick_start_example(tmp_path):
    root = tmp_path / "ns-demo"
    shutil.copytree(EXAMPLE, root)
    scan = run_module("scan", "--root", str(root), SITE)
    assert scan.returncode == 0, scan.stderr
    assert "namespace zope: pkg_resources, pure zope/__init__.py [zope.event, zope.interface] -> strip" in scan.stdout
    strip = run_module("strip", "--root", str(root), SITE)
    assert strip.returncode == 0, strip.stderr
    assert strip.stdout.count("Stripping ") == 4
    site = root / SITE.lstrip("/")
    assert (site / "acme" / "__init__.py").exists()  # the hybrid stays
    proc = python_imports([site], "import zope.interface, zope.event, jaraco.text, ruamel.yaml, acme\n"
                                  "print(zope.__file__, acme.register('x'))\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["None", "x"]
