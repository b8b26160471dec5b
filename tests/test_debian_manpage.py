"""ns-strip(1) is made from docs/ns-strip.rst with the finding codes of findings.py, as the
Debian package build makes it (debian/rules): every code is in it, and rst2man renders it
without a warning."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

from debhelper_support import DEBIAN_PATH, require_tools

from ns_strip import __version__
from ns_strip.findings import CHECKS

CHECKOUT = Path(__file__).resolve().parent.parent


def _build_man():  # noqa: ANN202 - the docs/build_man.py module
    spec = importlib.util.spec_from_file_location("build_man", CHECKOUT / "docs/build_man.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_man_page_source_has_every_finding_code_and_the_version(tmp_path: Path) -> None:
    built = _build_man().build((CHECKOUT / "docs/ns-strip.rst").read_text())
    assert f":Version: ns-strip {__version__}" in built
    table = built[built.index("Finding codes"):built.index("Exit status")]
    for check in CHECKS.values():
        assert f"{check.code}  {check.severity.value}" in table, check.code
    assert ".. generated: finding codes" not in built


def test_rst2man_renders_it_without_a_warning(tmp_path: Path) -> None:
    require_tools("rst2man")
    source = tmp_path / "ns-strip.rst"
    source.write_text(_build_man().build((CHECKOUT / "docs/ns-strip.rst").read_text()))
    done = subprocess.run(["rst2man", "--exit-status=warning", str(source), str(tmp_path / "ns-strip.1")],
                          capture_output=True, text=True, env={"PATH": DEBIAN_PATH}, check=False)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "ns-strip.1").read_text()
    title = next(line for line in page.splitlines() if line.startswith(".TH "))
    assert title == f'.TH "NS-STRIP" 1 "" "ns-strip {__version__}" "ns-strip"', title
    assert "NS517" in page and "registry sync" in page
