"""Issue 12 §1: stripping one site dir must not hide a namespace that is legacy in another.

Real Debian interpreter, real setuptools builds, real venvs with --system-site-packages; every
verdict is checked against what that interpreter actually imports (``-I``: sys.path does not
change after start-up, the case where a PEP 420 portion stays hidden).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from realsys_support import (
    PKG_RESOURCES_INIT,
    PKGUTIL_INIT,
    build_legacy,
    fake_base,
    imports,
    install_as_wheel,
    install_debian_style,
    make_venv,
)

from ns_strip import syspath
from ns_strip.cli import main

BOTH = "import nsx.legacy, nsx.mine; print(nsx.mine.WHO)"


def run(*argv: str) -> tuple[int, dict]:
    import io

    out = io.StringIO()
    code = main([*argv, "--json"], stdout=out, stderr=io.StringIO())
    return code, json.loads(out.getvalue()) if out.getvalue() else {}


@pytest.fixture
def system(tmp_path: Path):
    python, site = fake_base(tmp_path / "base", with_pkg_resources=True)
    return python, site


def test_default_python_of_a_venv_site_dir(system, tmp_path):
    base_python, _ = system
    venv_python, venv_site = make_venv(base_python, tmp_path / "v")
    chosen, why = syspath.default_python(str(venv_site), None)
    assert Path(chosen).parent == venv_python.parent
    assert "venv" in why
    interpreter = syspath.query(chosen, why)
    assert interpreter.has_entry(str(venv_site))
    assert str(system[1]) in interpreter.entries  # the base's dist-packages, through the venv


def test_sys_path_matches_the_interpreter_without_running_pth(system, tmp_path):
    base_python, site = system
    (site / "extra").mkdir()
    (site / "a-paths.pth").write_text("# comment\nextra\nmissing-dir\n")
    marker = tmp_path / "ran"
    (site / "b-code.pth").write_text(f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')\n")
    interpreter = syspath.query(str(base_python))
    real = json.loads(imports(base_python, "import json, sys; print(json.dumps(sys.path))")[1])
    assert not (marker.exists() and marker.read_text() == "y")
    marker.unlink()
    assert list(interpreter.entries) == real
    syspath.query(str(base_python))
    assert not marker.exists()  # the query itself never runs a .pth import line


def test_nspkg_in_system_site_hides_portion_stripped_in_venv(system, tmp_path):
    """Debian's python3-matplotlib case: both sides installed Debian-style (-nspkg.pth)."""
    base_python, site = system
    install_debian_style(build_legacy(tmp_path, "nsx.legacy", "nsx", "legacy"), site)
    venv_python, venv_site = make_venv(base_python, tmp_path / "v")
    install_debian_style(build_legacy(tmp_path, "nsx.mine", "nsx", "mine"), venv_site)
    assert imports(venv_python, BOTH) == (True, "nsx.mine")

    code, out = run("scan", str(venv_site))  # scan previews it only when asked with --python
    assert "NS130" not in [f["code"] for f in out["findings"]]
    code, out = run("scan", str(venv_site), "--python", str(venv_python))
    assert [f["namespace"] for f in out["findings"] if f["code"] == "NS130"] == ["nsx"]

    code, out = run("strip", str(venv_site))
    assert code == 1
    [finding] = [f for f in out["findings"] if f["code"] == "NS130"]
    assert finding["namespace"] == "nsx"
    assert finding["entry"] == str(site)
    assert "nsx.legacy 1.0" in finding["message"] and "nsx.legacy-1.0-nspkg.pth" in finding["message"]
    assert out["removed"] == []
    assert imports(venv_python, BOTH) == (True, "nsx.mine")

    code, out = run("strip", str(venv_site), "--allow-hidden", "nsx")
    assert code == 0  # the maintainer said so: told (allowed_hidden), not an error
    [allowed] = out["allowed_hidden"]
    assert allowed["namespace"] == "nsx" and "stripped anyway" in allowed["message"]
    assert not [f for f in out["findings"] if f["code"] == "NS130"]
    assert any(path.endswith("-nspkg.pth") for path in out["removed"])
    ok, text = imports(venv_python, BOTH)
    assert not ok and "No module named 'nsx.mine'" in text  # what NS130 warned of, for real


def test_pkg_resources_init_in_system_site_hides_portion(system, tmp_path):
    """zope.event over Debian's copy: the other entry keeps a pkg_resources __init__.py."""
    base_python, site = system
    install_as_wheel(build_legacy(tmp_path, "nsx.legacy", "nsx", "legacy", namespace_packages=False), site)
    venv_python, venv_site = make_venv(base_python, tmp_path / "v")
    install_as_wheel(build_legacy(tmp_path, "nsx.mine", "nsx", "mine", namespace_packages=False), venv_site)
    assert imports(venv_python, BOTH) == (True, "nsx.mine")

    code, out = run("strip", str(venv_site), "--dry-run")
    assert code == 1
    [finding] = [f for f in out["findings"] if f["code"] == "NS130"]
    assert finding["hidden_by"] == str(site / "nsx" / "__init__.py")
    assert "nsx.legacy" in finding["message"]

    run("strip", str(venv_site), "--allow-hidden", "nsx*")
    ok, text = imports(venv_python, BOTH)
    assert not ok and "nsx.mine" in text


def test_pkgutil_init_elsewhere_collects_stripped_portion(system, tmp_path):
    base_python, site = system
    install_as_wheel(build_legacy(tmp_path, "nsx.legacy", "nsx", "legacy", init=PKGUTIL_INIT,
                                  namespace_packages=False), site)
    venv_python, venv_site = make_venv(base_python, tmp_path / "v")
    install_as_wheel(build_legacy(tmp_path, "nsx.mine", "nsx", "mine", init=PKG_RESOURCES_INIT,
                                  namespace_packages=False), venv_site)
    code, out = run("strip", str(venv_site))
    assert code == 0, out["findings"]
    assert "nsx/__init__.py" in out["removed"]
    assert imports(venv_python, BOTH) == (True, "nsx.mine")


def test_tree_not_on_the_path_is_not_checked(system, tmp_path):
    base_python, site = system
    install_debian_style(build_legacy(tmp_path, "nsx.legacy", "nsx", "legacy"), site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    install_as_wheel(build_legacy(tmp_path, "nsx.mine", "nsx", "mine", namespace_packages=False), elsewhere)
    code, out = run("strip", str(elsewhere), "--python", str(base_python))
    assert code == 0 and "nsx/__init__.py" in out["removed"]


def test_doctor_reports_portion_already_hidden_by_nspkg(system, tmp_path):
    base_python, site = system
    install_debian_style(build_legacy(tmp_path, "nsx.legacy", "nsx", "legacy"), site)
    venv_python, venv_site = make_venv(base_python, tmp_path / "v")
    (venv_site / "nsx" / "mine").mkdir(parents=True)
    (venv_site / "nsx" / "mine" / "__init__.py").write_text("WHO = 'pep420'\n")
    ok, text = imports(venv_python, BOTH)
    assert not ok and "nsx.mine" in text  # really hidden under -I

    code, out = run("doctor", "--python", str(venv_python), "--db", str(tmp_path / "none.sqlite3"))
    assert code == 1
    [finding] = [f for f in out["findings"] if f["code"] == "NS504"]
    assert finding["path"] == str(venv_site / "nsx")
    assert finding["hidden_by"].endswith("nsx.legacy-1.0-nspkg.pth")

    # once the legacy loader is gone (what 'ns-strip strip' does there), both import and doctor agrees
    code, _ = run("strip", str(site), "--python", str(base_python))
    assert code == 0
    assert imports(venv_python, BOTH) == (True, "pep420")
    code, out = run("doctor", "--python", str(venv_python), "--db", str(tmp_path / "none.sqlite3"))
    assert [f["code"] for f in out["findings"] if f["severity"] == "error"] == []


def test_doctor_copy_of_a_regular_packages_module_is_no_hidden_portion(system, tmp_path):
    """Debian 12's python3-numpy: /usr/lib/python3.11/dist-packages/numpy holds a byte-identical copy
    of one of numpy's extensions, beside the regular package in /usr/lib/python3/dist-packages."""
    base_python, site = system
    venv_python, venv_site = make_venv(base_python, tmp_path / "v")
    (site / "pkgx").mkdir()
    (site / "pkgx" / "__init__.py").write_text("from pkgx._core import VALUE\n")
    (site / "pkgx" / "_core.py").write_text("VALUE = 1\n")
    (venv_site / "pkgx").mkdir()
    (venv_site / "pkgx" / "_core.py").write_text("VALUE = 1\n")
    assert imports(venv_python, "import pkgx; print(pkgx.VALUE)") == (True, "1")
    code, out = run("doctor", "--python", str(venv_python), "--db", str(tmp_path / "none.sqlite3"))
    assert [f for f in out["findings"] if f["code"] == "NS501"] == []

    (venv_site / "pkgx" / "extra.py").write_text("X = 1\n")  # a module the package lacks: hidden for real
    assert not imports(venv_python, "import pkgx.extra")[0]
    code, out = run("doctor", "--python", str(venv_python), "--db", str(tmp_path / "none.sqlite3"))
    [finding] = [f for f in out["findings"] if f["code"] == "NS501"]
    assert "__init__" not in finding["message"]


def test_doctor_reports_legacy_portion_hidden_by_nspkg_elsewhere(system, tmp_path):
    """The zope.event case before any strip: a wheel's pkg_resources __init__.py in the venv is
    never run, because the system's -nspkg.pth made the module first."""
    base_python, site = system
    install_debian_style(build_legacy(tmp_path, "nsx.legacy", "nsx", "legacy"), site)
    venv_python, venv_site = make_venv(base_python, tmp_path / "v")
    install_as_wheel(build_legacy(tmp_path, "nsx.mine", "nsx", "mine", namespace_packages=False), venv_site)
    ok, text = imports(venv_python, BOTH)
    assert not ok and "nsx.mine" in text
    code, out = run("doctor", "--python", str(venv_python), "--db", str(tmp_path / "none.sqlite3"))
    [finding] = [f for f in out["findings"] if f["code"] == "NS504"]
    assert finding["path"] == str(venv_site / "nsx" / "__init__.py")
