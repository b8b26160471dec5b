"""Integration suite on real releases (issue 12): pinned PyPI wheels of every legacy style
installed with installer, real Debian 12 packages unpacked from their .debs, real interpreters.

Every strip is checked the way a maintainer would: everything that imported before imports
after (with Debian's own /usr/bin/python3), and every RECORD stays true.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from nstree import install_wheel, run_cli
from realpkgs import WHEELS, unpack_deb, wheel
from realsys_support import DEBIAN_PYTHON, fake_base, make_venv
from test_strip import assert_records_true

# Imported before and after every strip; find_spec only for names whose dependencies (numpy,
# six, …) are not installed here: finding them is what a namespace decides.
IMPORTED = ["zope.event", "zope.interface", "Crypto", "Crypto.Cipher.AES", "ruamel.yaml", "keyrings.alt",
            "repoze.who", "xstatic", "xstatic.main", "google", "google.cloud", "mpl_toolkits", "paste", "fs", "blib2to3"]
FOUND = ["mpl_toolkits.basemap", "paste.util", "google.cloud.client", "black", "fs.osfs"]

_PROBE = r"""
import importlib, importlib.util, json, site, sys
site.addsitedir(sys.argv[1])
result = {}
for name in json.loads(sys.argv[2]):
    try:
        importlib.import_module(name)
        result[name] = "ok"
    except BaseException as exc:
        result[name] = type(exc).__name__
for name in json.loads(sys.argv[3]):
    try:
        result["find:" + name] = "ok" if importlib.util.find_spec(name) else "missing"
    except BaseException as exc:
        result["find:" + name] = type(exc).__name__
print(json.dumps(result))
"""


def probe(python: Path, site: Path) -> dict[str, str]:
    done = subprocess.run([str(python), "-I", "-S", "-B", "-c", _PROBE, str(site), json.dumps(IMPORTED),
                           json.dumps(FOUND)], capture_output=True, text=True, cwd="/", timeout=300, check=True)
    return json.loads(done.stdout)


def scan_json(path: Path) -> dict:
    code, out, err = run_cli("scan", str(path), "--json", "--check-modules")
    assert code in (0, 1), err
    return json.loads(out)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """Every pinned wheel installed into one site dir, as pip would."""
    site = tmp_path_factory.mktemp("real") / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    for filename in WHEELS:
        install_wheel(wheel(filename), site)
    return site


@pytest.fixture
def site(installed: Path, tmp_path: Path) -> Path:
    shutil.copytree(installed.parent, tmp_path / "lib" / "python3.11", symlinks=True)  # with scripts/
    return tmp_path / "lib" / "python3.11" / "site-packages"


def test_scan_verdicts_on_real_releases(installed):
    out = scan_json(installed)
    styles: dict[str, set[str]] = {}
    for entry in out["namespaces"]:
        styles.setdefault(entry["name"], set()).add(entry["style"])
    assert styles["zope"] == {"nspkg_pth", "pep420"}  # zope.event and zope.interface
    assert styles["google"] == {"nspkg_pth", "pep420"} and styles["google.cloud"] == {"nspkg_pth", "pep420"}
    assert styles["mpl_toolkits"] == {"nspkg_pth", "pep420"}  # basemap
    # XStatic 1.0.3 ships xstatic/main.py and declares xstatic.pkg without shipping anything there:
    # xstatic is one namespace (loader and directory), xstatic.pkg declared-only, not nspkg_pth
    assert styles["xstatic"] == {"nspkg_pth", "pep420"} and styles["xstatic.pkg"] == {"declared_only"}
    ns105 = {f["namespace"] for f in out["findings"] if f["code"] == "NS105"}
    assert "xstatic.pkg" in ns105 and "xstatic" not in ns105
    # NS103 names each namespace once (repoze.who's loader has one line per namespace)
    for finding in out["findings"]:
        if finding["code"] == "NS103":
            assert len(finding["namespaces"]) == len(set(finding["namespaces"])), finding["message"]
    by_code = {}
    for finding in out["findings"]:
        by_code.setdefault(finding["code"], []).append(finding)
    # fs 2.4.16: a pkg_resources declaration followed by the package's own imports: hybrid, kept
    [hybrid] = [f for f in by_code["NS110"] if f["path"] == "fs/__init__.py"]
    assert [b["line"] for b in hybrid["blocking"]][:1] == [6]
    # fs and Paste use pkg_resources beyond their namespace: setuptools 82 no longer provides it
    assert {"fs", "Paste"} <= {f["distribution"] for f in by_code["NS405"]}
    assert "zope.event" not in {f["distribution"] for f in by_code["NS405"]}


def test_scan_prints_one_line_per_namespace(installed):
    code, out, _ = run_cli("scan", str(installed))
    lines = [line for line in out.splitlines() if line.startswith("namespace ")]
    names = [line.split(":")[0] for line in lines]
    assert len(names) == len(set(names))
    [zope] = [line for line in lines if line.startswith("namespace zope:")]
    assert "nspkg_pth" in zope and "pep420" in zope and "zope.event" in zope and "zope.interface" in zope


def test_strip_real_site_keeps_every_import_and_record(site):
    before = probe(DEBIAN_PYTHON, site)
    assert before["zope.interface"] == before["zope.event"] == before["Crypto.Cipher.AES"] == "ok"
    assert before["find:mpl_toolkits.basemap"] == "ok"

    code, out, err = run_cli("strip", str(site), "--dry-run")
    assert "Stripping declaration of namespace ruamel (ruamel.yaml-0.17.21.dist-info/namespace_packages.txt)" in out

    code, out, err = run_cli("strip", str(site), "--json", "--check-imports", "--python", str(DEBIAN_PYTHON))
    result = json.loads(out)
    assert code == 0, (err, [f for f in result["findings"] if f["severity"] == "error"])
    removed = set(result["removed"])
    assert {"zope.event-5.0-py3.11-nspkg.pth", "basemap-1.3.8-py3.11-nspkg.pth",
            "ruamel.yaml-0.17.21.dist-info/namespace_packages.txt"} <= removed
    assert not list(site.glob("*-nspkg.pth"))
    assert (site / "fs" / "__init__.py").exists()  # the hybrid is kept
    assert probe(DEBIAN_PYTHON, site) == before
    assert_records_true(site)
    left = {f["code"] for f in scan_json(site)["findings"]}
    assert not left & {"NS101", "NS102", "NS103", "NS104"}, left


def test_ext_on_pycryptodome_is_not_ns201(installed):
    code, out, err = run_cli("ext", str(installed / "Crypto"), "--json")
    result = json.loads(out)
    codes = [f["code"] for f in result["findings"]]
    assert "NS201" not in codes
    assert codes.count("NS210") >= 20  # the ctypes libraries, as info
    assert code == 0, err


def test_import_names_private_mypyc_and_egg_info_top_level(installed, tmp_path):
    code, out, err = run_cli("import-names", str(installed), "--json")
    assert code == 0, err
    layouts = {d["name"]: d for d in json.loads(out)["distributions"]}
    assert layouts["black"]["import_names"] == ["_black_version; private", "black", "blackd", "blib2to3"]
    assert layouts["zope.event"]["import_namespaces"] == ["zope"]

    debian = unpack_deb("python3-zope.event", tmp_path / "deb")
    code, out, err = run_cli("import-names", str(debian))
    assert code == 0, err
    assert "zope.event 4.4: Import-Name: zope.event; Import-Namespace: zope (from top_level.txt" in out


def test_debian_record_listing_a_removed_file_is_reported_not_fatal(tmp_path):
    """python3-keyrings.alt: its RECORD still lists keyrings/__init__.py, which Debian removed."""
    debian = unpack_deb("python3-keyrings.alt", tmp_path / "deb")
    assert not (debian / "keyrings" / "__init__.py").exists()
    assert "keyrings/__init__.py" in (debian / "keyrings.alt-4.2.0.dist-info" / "RECORD").read_text()
    for command in ("check", "import-names", "scan"):
        code, out, err = run_cli(command, str(debian), "--json")
        assert code == 0, (command, err)
        [finding] = [f for f in json.loads(out)["findings"] if f["code"] == "NS401"]
        assert finding["missing"] == ["keyrings/__init__.py"]
    code, out, err = run_cli("import-names", str(debian), "--json")
    [layout] = json.loads(out)["distributions"]
    assert layout["import_namespaces"] == ["keyrings"] and layout["import_names"] == ["keyrings.alt"]


@pytest.fixture
def debian_system(tmp_path: Path):
    """A base installation whose dist-packages holds real files of Debian packages."""
    python, site = fake_base(tmp_path / "base")
    return python, site


def _install_deb_files(name: str, site: Path, tmp_path: Path, keep: tuple[str, ...]) -> None:
    unpacked = unpack_deb(name, tmp_path / f"deb-{name}")
    for child in unpacked.iterdir():
        if child.name.startswith(keep):
            shutil.copytree(child, site / child.name) if child.is_dir() else shutil.copy2(child, site / child.name)


def _find(python: Path, name: str) -> str:
    done = subprocess.run([str(python), "-I", "-c", f"import importlib.util as u; print(u.find_spec({name!r}) and "
                           f"u.find_spec({name!r}).origin)"], capture_output=True, text=True, cwd="/", timeout=60)
    return (done.stdout.strip() or done.stderr.strip().splitlines()[-1])


def test_basemap_in_a_venv_over_debian_matplotlib(debian_system, tmp_path):
    """Issue 12 §1 as reported: basemap 1.3.8 from PyPI in a --system-site-packages venv over Debian's
    python3-matplotlib, whose matplotlib-3.6.3-nspkg.pth makes mpl_toolkits at start-up."""
    python, system_site = debian_system
    _install_deb_files("python3-matplotlib", system_site, tmp_path, ("mpl_toolkits", "matplotlib-3.6.3"))
    venv_python, venv_site = make_venv(python, tmp_path / "v")
    install_wheel(wheel("basemap-1.3.8-cp311-cp311-manylinux1_x86_64.whl"), venv_site)
    assert _find(venv_python, "mpl_toolkits.basemap").startswith(str(venv_site))

    code, out, err = run_cli("strip", str(venv_site), "--json")
    result = json.loads(out)
    assert code == 1
    [finding] = [f for f in result["findings"] if f["code"] == "NS130"]
    assert finding["hidden_by"] == str(system_site / "matplotlib-3.6.3-nspkg.pth")
    assert "matplotlib 3.6.3" in finding["message"] and "--allow-hidden mpl_toolkits" in finding["message"]
    assert (venv_site / "basemap-1.3.8-py3.11-nspkg.pth").exists()
    assert _find(venv_python, "mpl_toolkits.basemap").startswith(str(venv_site))

    code, out, err = run_cli("strip", str(venv_site), "--allow-hidden", "mpl_toolkits", "--json")
    assert not (venv_site / "basemap-1.3.8-py3.11-nspkg.pth").exists()
    assert _find(venv_python, "mpl_toolkits.basemap") == "None"  # not found: hidden, as NS130 said


def test_zope_event_in_a_venv_over_debian_zope_event(debian_system, tmp_path):
    """zope.event 5.0 from PyPI over Debian's 4.4: once hidden, the older copy imports silently."""
    python, system_site = debian_system
    _install_deb_files("python3-zope.event", system_site, tmp_path, ("zope",))
    venv_python, venv_site = make_venv(python, tmp_path / "v")
    install_wheel(wheel("zope.event-5.0-py3-none-any.whl"), venv_site)
    assert _find(venv_python, "zope.event").startswith(str(venv_site))

    code, out, err = run_cli("strip", str(venv_site), "--json")
    assert code == 1
    [finding] = [f for f in json.loads(out)["findings"] if f["code"] == "NS130"]
    assert finding["hidden_by"] == str(system_site / "zope.event-4.4-nspkg.pth")

    code, out, err = run_cli("doctor", "--python", str(venv_python), "--db", str(tmp_path / "none"), "--json")
    assert "NS504" not in [f["code"] for f in json.loads(out)["findings"]]  # nothing hidden yet

    run_cli("strip", str(venv_site), "--allow-hidden", "zope")
    assert _find(venv_python, "zope.event").startswith(str(system_site))  # the older copy, silently
    code, out, err = run_cli("doctor", "--python", str(venv_python), "--db", str(tmp_path / "none"), "--json")
    [hidden] = [f for f in json.loads(out)["findings"] if f["code"] == "NS504"]
    assert hidden["path"] == str(venv_site / "zope")


def test_doctor_audits_debian_distutils_precedence_pth():
    """python3-setuptools' distutils-precedence.pth is an import line: PEP 829 ends it in 3.18."""
    code, out, err = run_cli("doctor", "--python", str(DEBIAN_PYTHON), "--db", "/nonexistent/db", "--json",
                             "--select", "NS13")
    findings = json.loads(out)["findings"]
    [precedence] = [f for f in findings if f["path"].endswith("/distutils-precedence.pth")]
    assert precedence["code"] == "NS133" and "setuptools' override of distutils" in precedence["message"]
    assert "3.18" in precedence["message"]


def test_doctor_on_debian_numpy_is_no_false_alarm(tmp_path):
    """python3-numpy 1.24.2 ships a copy of _multiarray_umath in /usr/lib/python3.11/dist-packages/numpy
    beside the regular package in /usr/lib/python3/dist-packages: no portion is hidden (issue 12)."""
    python, site = fake_base(tmp_path / "base", versioned_site=True)
    versioned = site.parent.parent / "python3.11" / "dist-packages"
    unpacked = unpack_deb("python3-numpy", tmp_path / "deb").parent.parent  # usr/lib
    shutil.copytree(unpacked / "python3" / "dist-packages", site, dirs_exist_ok=True, symlinks=True)
    shutil.copytree(unpacked / "python3.11" / "dist-packages", versioned, dirs_exist_ok=True, symlinks=True)
    copy = versioned / "numpy" / "core" / "_multiarray_umath.cpython-311-x86_64-linux-gnu.so"
    assert copy.read_bytes() == (site / "numpy" / "core" / copy.name).read_bytes()
    assert not (versioned / "numpy" / "__init__.py").exists()

    code, out, err = run_cli("doctor", "--python", str(python), "--db", str(tmp_path / "none"), "--json")
    result = json.loads(out)
    assert str(versioned) in result["sys_path"]
    assert [f for f in result["findings"] if f["code"] == "NS501"] == []
    assert code == 0, result["findings"]
