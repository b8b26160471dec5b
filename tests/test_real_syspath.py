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

    code, out = run("strip", str(venv_site), "--keep", "nsx", "--keep", "*-nspkg.pth", "--keep", "*.txt", "-n")
    assert code == 0 and not [f for f in out["findings"] if f["code"] == "NS130"]  # nothing of nsx goes

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


# What setuptools 66 (Debian 12) writes into a *-nspkg.pth, one line per namespace.
NSPKG_LINE = (
    "import sys, types, os;has_mfs = sys.version_info > (3, 5);p = os.path.join(sys._getframe(1).f_locals"
    "['sitedir'], *('{ns}',));importlib = has_mfs and __import__('importlib.util');has_mfs and "
    "__import__('importlib.machinery');m = has_mfs and sys.modules.setdefault('{ns}', importlib.util."
    "module_from_spec(importlib.machinery.PathFinder.find_spec('{ns}', [os.path.dirname(p)])));m = m or "
    "sys.modules.setdefault('{ns}', types.ModuleType('{ns}'));mp = (m or []) and m.__dict__.setdefault("
    "'__path__',[]);(p not in mp) and mp.append(p)\n"
)
SYSTEM_SIDES = {
    "none": {},
    "pep420": {"{ns}/legacy/__init__.py": ""},
    "pkgutil": {"{ns}/__init__.py": PKGUTIL_INIT, "{ns}/legacy/__init__.py": ""},
    "pkg_resources": {"{ns}/__init__.py": PKG_RESOURCES_INIT, "{ns}/legacy/__init__.py": ""},
    "regular": {"{ns}/__init__.py": "X = 1\n", "{ns}/legacy/__init__.py": ""},
    "module": {"{ns}.py": "X = 1\n"},
    "nspkg": {"{ns}/legacy/__init__.py": "", "{ns}.legacy-1.0-nspkg.pth": NSPKG_LINE},
    "nspkg+init": {"{ns}/__init__.py": PKG_RESOURCES_INIT, "{ns}/legacy/__init__.py": "",
                   "{ns}.legacy-1.0-nspkg.pth": NSPKG_LINE},
}
VENV_SIDES = {
    "pkgutil": {"{ns}/__init__.py": PKGUTIL_INIT, "{ns}/mine/__init__.py": ""},
    "pkg_resources": {"{ns}/__init__.py": PKG_RESOURCES_INIT, "{ns}/mine/__init__.py": ""},
    "nspkg": {"{ns}/mine/__init__.py": "", "{ns}.mine-1.0-nspkg.pth": NSPKG_LINE},
}


def _write(site: Path, files: dict[str, str], ns: str) -> None:
    for relative, text in files.items():
        path = site / relative.format(ns=ns)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{ns}", ns))


def _importable(python: Path, names: list[str]) -> dict[str, bool]:
    code = ("import importlib, json, sys\nresult = {}\nfor name in json.loads(sys.argv[1]):\n"
            "    try:\n        importlib.import_module(name); result[name] = True\n"
            "    except Exception:\n        result[name] = False\nprint(json.dumps(result))\n")
    import subprocess

    done = subprocess.run([str(python), "-I", "-c", code, json.dumps(names)], capture_output=True, text=True,
                          cwd="/", timeout=120, check=True)
    return json.loads(done.stdout)


def test_model_matches_the_interpreter_for_every_combination(system, tmp_path):
    """NS130 is reported exactly where the real interpreter (-I) imports the venv's portion
    before the strip and does not after it; doctor then explains each hidden one."""
    base_python, site = system
    venv_python, venv_site = make_venv(base_python, tmp_path / "v")
    cases = {}
    for i, (system_side, venv_side) in enumerate(
            (s, v) for s in SYSTEM_SIDES for v in VENV_SIDES):
        ns = f"nsm{i}"
        cases[ns] = (system_side, venv_side)
        _write(site, SYSTEM_SIDES[system_side], ns)
        _write(venv_site, VENV_SIDES[venv_side], ns)
    mine = [f"{ns}.mine" for ns in cases]
    before = _importable(venv_python, mine)

    code, out = run("strip", str(venv_site), "--dry-run")
    flagged = {f["namespace"] for f in out["findings"] if f["code"] == "NS130"}
    run("strip", str(venv_site), "--allow-hidden", "*")
    after = _importable(venv_python, mine)

    broken = {ns for ns in cases if before[f"{ns}.mine"] and not after[f"{ns}.mine"]}
    assert flagged == broken, {ns: cases[ns] for ns in flagged ^ broken}
    assert broken  # the combinations include real breakage (loader, pkg_resources, regular)
    assert any(before[f"{ns}.mine"] and after[f"{ns}.mine"] for ns in cases)

    code, out = run("doctor", "--python", str(venv_python), "--db", str(tmp_path / "none.sqlite3"))
    explained = {f["namespace"] for f in out["findings"] if f["code"] in ("NS501", "NS504")}
    hidden_now = {ns for ns in cases if not after[f"{ns}.mine"] and cases[ns][0] != "module"}
    assert hidden_now <= explained, {ns: cases[ns] for ns in hidden_now - explained}
