"""Manifests: written by 'strip --manifest-package' and 'manifest' from real wheels installed
into a staging root, then used through a whole install/remove cycle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nstree import PKGUTIL_INIT
from test_registry_support import MANIFEST_DIR, SITE, System, installed_site_dir, ns_strip, portion
from wheelbuild import build_wheel


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("wheels")
    return {
        # legacy pkgutil-style namespace, as many old distributions still ship it
        "legacy": build_wheel(work, "nsx-legacy", {
            "nsx/__init__.py": PKGUTIL_INIT, "nsx/legacy/__init__.py": "NAME = 'legacy'\n",
        }, backend="hatchling"),
        # a PEP 420 portion by setuptools
        "st": build_wheel(work, "nsx-st", {"nsx/st/__init__.py": "NAME = 'st'\n"}),
        # a module right in the namespace directory
        "plain": build_wheel(work, "nsx-plain", {"nsx/plain.py": "NAME = 'plain'\n"}, backend="hatchling"),
    }


def _manifest(package) -> dict:
    return json.loads((package.stage / package.manifest.lstrip("/")).read_text())


def test_manifests_of_real_wheels_and_their_life_cycle(tmp_path: Path, wheels: dict[str, Path]) -> None:
    site = installed_site_dir()
    system = System(tmp_path / "root", site)
    legacy, stripped = system.stage_wheel("python3-nsx-legacy", wheels["legacy"], tmp_path)
    assert "Stripping pkgutil-style namespace nsx (nsx/__init__.py)" in stripped.out
    assert "Writing manifest of python3-nsx-legacy" in stripped.out
    st, _ = system.stage_wheel("python3-nsx-st", wheels["st"], tmp_path)
    plain, _ = system.stage_wheel("python3-nsx-plain", wheels["plain"], tmp_path)

    assert _manifest(legacy) == {
        "ns-strip-manifest": 1,
        "package": "python3-nsx-legacy",
        "site_dir": site,
        "namespaces": ["nsx"],
        "portions": {"nsx": ["legacy"]},
        "owned_dirs": ["nsx/legacy", "nsx/legacy/__pycache__", "nsx_legacy-1.0.dist-info"],
        "shared_dirs": [],  # strip took the namespace __init__'s bytecode with it
        "loose_files": [],
        "distributions": ["nsx-legacy"],
    }
    assert _manifest(st)["portions"] == {"nsx": ["st"]}
    assert _manifest(st)["owned_dirs"] == ["nsx/st", "nsx/st/__pycache__", "nsx_st-1.0.dist-info"]
    plain_manifest = _manifest(plain)
    assert plain_manifest["portions"] == {"nsx": ["plain.py"]}
    assert plain_manifest["shared_dirs"] == ["nsx/__pycache__"]
    assert "nsx/plain.py" in plain_manifest["loose_files"]
    assert any(f.startswith("nsx/__pycache__/plain.") for f in plain_manifest["loose_files"])

    for package in (legacy, st, plain):
        assert system.install(package, "pkgutil").code == 0
    assert system.counts() == {"nsx": ["python3-nsx-legacy", "python3-nsx-plain", "python3-nsx-st"]}
    imported = system.python("import nsx.legacy, nsx.st, nsx.plain; print(nsx.legacy.NAME, nsx.st.NAME, nsx.plain.NAME)")
    assert imported.stdout.split() == ["legacy", "st", "plain"], imported.stderr

    for package in (st, legacy):
        assert system.uninstall(package).code == 0
    assert system.python("import nsx.plain").returncode == 0
    assert system.uninstall(plain).code == 0
    assert system.tree() == []


def test_namespace_below_a_regular_package_is_not_shared(tmp_path: Path) -> None:
    system = System(tmp_path / "root")
    package = system.stage("python3-reg", {
        "reg/__init__.py": "", "reg/sub/__init__.py": PKGUTIL_INIT, "reg/sub/m.py": "",
        **portion("outer.inner", "leaf"), "top.py": "",
    }, tmp_path)
    manifest = _manifest(package)
    assert manifest["namespaces"] == ["outer", "outer/inner"]
    assert manifest["portions"] == {"outer": [], "outer/inner": ["leaf"]}
    assert manifest["owned_dirs"] == ["outer/inner/leaf", "reg", "reg/sub"]
    assert manifest["loose_files"] == ["top.py"]


def test_manifest_command_output_and_json(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    (stage / SITE.lstrip("/") / "nsx" / "a").mkdir(parents=True)
    (stage / SITE.lstrip("/") / "nsx" / "a" / "__init__.py").write_text("")
    out = tmp_path / "out" / "m.json"
    result = ns_strip("manifest", "--root", str(stage), SITE, "--package", "python3-a", "-o", str(out), "--json")
    assert result.code == 0, result.err
    assert result.json["manifest_path"] == str(out)
    assert json.loads(out.read_text()) == result.json["manifest"]
    assert not (stage / MANIFEST_DIR.lstrip("/")).exists()

    elsewhere = ns_strip("manifest", "--root", str(stage), SITE, "--package", "python3-a", "--manifest-dir", "/opt/m")
    assert elsewhere.code == 0
    assert (stage / "opt/m/python3-a.json").is_file()


def test_strip_dry_run_writes_no_manifest(tmp_path: Path) -> None:
    system = System(tmp_path / "stage")
    (system.site / "nsx").mkdir()
    (system.site / "nsx" / "__init__.py").write_text(PKGUTIL_INIT)
    (system.site / "nsx" / "m.py").write_text("")
    result = ns_strip("strip", "--root", str(system.root), SITE, "--dry-run", "--manifest-package", "python3-x")
    assert result.code == 0, result.err
    assert not (system.root / "usr/share/ns-strip").exists()
    assert (system.site / "nsx" / "__init__.py").exists()


@pytest.mark.parametrize("argv, problem", [
    (["--manifest-package", "bad name!"], "not valid"),
    (["--manifest-package", "python3-x", "--manifest-dir", "relative/dir"], "absolute in the target system"),
])
def test_strip_refuses_bad_manifest_options_before_changing_anything(tmp_path: Path, argv, problem) -> None:
    system = System(tmp_path / "stage")
    (system.site / "nsx").mkdir()
    (system.site / "nsx" / "__init__.py").write_text(PKGUTIL_INIT)
    (system.site / "nsx" / "m.py").write_text("")
    result = ns_strip("strip", "--root", str(system.root), SITE, *argv)
    assert result.code == 2, result.out + result.err
    assert problem in result.err
    assert (system.site / "nsx" / "__init__.py").read_text() == PKGUTIL_INIT


def test_strip_of_a_wheel_takes_no_manifest_package(tmp_path: Path, wheels: dict[str, Path]) -> None:
    result = ns_strip("strip", str(wheels["legacy"]), "-o", str(tmp_path / "x.whl"), "--manifest-package", "p")
    assert result.code == 2
    assert "not a wheel" in result.err
    assert not (tmp_path / "x.whl").exists()
