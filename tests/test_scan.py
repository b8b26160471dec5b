"""Detection over a staged site dir holding every style, with distributions mapped by RECORD."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ns_strip.scan import scan
from ns_strip.sources import TreeSource
from nstree import FALLBACK_INIT, PKG_RESOURCES_INIT, PKGUTIL_INIT, add_distribution, add_egg_info_zope_foo, run_cli

NSPKG_LINE = (
    "import sys, types, os;p = os.path.join(sys._getframe(1).f_locals['sitedir'], *{parts!r});"
    "importlib = __import__('importlib.util');__import__('importlib.machinery');"
    "m = sys.modules.setdefault({name!r}, importlib.util.module_from_spec("
    "importlib.machinery.PathFinder.find_spec({name!r}, [os.path.dirname(p)])));"
    "m = m or sys.modules.setdefault({name!r}, types.ModuleType({name!r}));"
    "mp = (m or []) and m.__dict__.setdefault('__path__',[]);(p not in mp) and mp.append(p)\n"
)


def nspkg_pth(*names: str) -> str:
    return "".join(NSPKG_LINE.format(parts=tuple(n.split(".")), name=n) for n in names)


def populated_site(site: Path) -> Path:
    add_distribution(site, "zope.interface", {
        "zope/__init__.py": PKG_RESOURCES_INIT,
        "zope/interface/__init__.py": "X = 1\n",
    })
    add_distribution(site, "zope.event", {
        "zope/__init__.py": PKG_RESOURCES_INIT,
        "zope/event/__init__.py": "",
    })
    add_distribution(site, "jaraco.text", {
        "jaraco/__init__.py": PKGUTIL_INIT,
        "jaraco/text/__init__.py": "",
    })
    add_distribution(site, "ruamel.std.pathlib", {
        "ruamel.std.pathlib-1.0-py3.11-nspkg.pth": nspkg_pth("ruamel", "ruamel.std"),
        "ruamel/std/pathlib/__init__.py": "",
    }, metadata_files={"namespace_packages.txt": "ruamel\nruamel.std\n"})
    add_distribution(site, "hybrid-dist", {
        "hyb/__init__.py": PKGUTIL_INIT + "from .core import main\n",
        "hyb/core.py": "def main(): pass\n",
    })
    add_distribution(site, "pep420-dist", {"pep/portion.py": ""})
    add_distribution(site, "plugin-host", {
        "host/__init__.py": "",
        "host/plugins/__init__.py": PKGUTIL_INIT,
    })
    add_distribution(site, "ghost", {"ghostly.py": ""}, metadata_files={"namespace_packages.txt": "ghost\n"})
    add_distribution(site, "broken", {"brk/__init__.py": PKG_RESOURCES_INIT + "def oops(:\n"})
    add_distribution(site, "fallback", {"fb/__init__.py": FALLBACK_INIT, "fb/x.py": ""})
    return site


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return populated_site(tmp_path / "site-packages")


def test_namespaces_of_every_style(site):
    result = scan(TreeSource.open(str(site)))
    got = {(n.name, n.style, n.purity, n.init, tuple(n.distributions), n.action) for n in result.namespaces}
    assert got == {
        ("zope", "pkg_resources", "pure", "zope/__init__.py", ("zope.event", "zope.interface"), "strip"),
        ("jaraco", "pkgutil", "pure", "jaraco/__init__.py", ("jaraco.text",), "strip"),
        ("ruamel", "nspkg_pth", None, None, ("ruamel.std.pathlib",), "strip"),
        ("ruamel.std", "nspkg_pth", None, None, ("ruamel.std.pathlib",), "strip"),
        ("ruamel", "pep420", None, None, ("ruamel.std.pathlib",), "none"),
        ("ruamel.std", "pep420", None, None, ("ruamel.std.pathlib",), "none"),
        ("hyb", "pkgutil", "hybrid", "hyb/__init__.py", ("hybrid-dist",), "keep"),
        ("pep", "pep420", None, None, ("pep420-dist",), "none"),
        ("host.plugins", "pkgutil", "pure", "host/plugins/__init__.py", ("plugin-host",), "keep"),
        ("ghost", "declared_only", None, None, ("ghost",), "strip"),
        ("brk", "pkg_resources", None, "brk/__init__.py", ("broken",), "keep"),
        ("fb", "pkg_resources", "pure", "fb/__init__.py", ("fallback",), "strip"),
    }


def test_findings_codes_paths_and_owners(site):
    result = scan(TreeSource.open(str(site)))
    got = sorted((f.code, f.path, f.distributions) for f in result.findings)
    assert got == sorted([
        ("NS102", "zope/__init__.py", ("zope.event", "zope.interface")),
        ("NS101", "jaraco/__init__.py", ("jaraco.text",)),
        ("NS103", "ruamel.std.pathlib-1.0-py3.11-nspkg.pth", ("ruamel.std.pathlib",)),
        ("NS104", "ruamel_std_pathlib-1.0.dist-info/namespace_packages.txt", ("ruamel.std.pathlib",)),
        ("NS104", "ghost-1.0.dist-info/namespace_packages.txt", ("ghost",)),
        ("NS105", "ghost-1.0.dist-info/namespace_packages.txt", ("ghost",)),
        ("NS110", "hyb/__init__.py", ("hybrid-dist",)),
        ("NS111", "brk/__init__.py", ("broken",)),
        ("NS112", "host/plugins/__init__.py", ("plugin-host",)),
        ("NS102", "fb/__init__.py", ("fallback",)),
    ])


def test_hybrid_finding_names_blocking_line(site):
    result = scan(TreeSource.open(str(site)))
    (hybrid,) = [f for f in result.findings if f.code == "NS110"]
    assert hybrid.details["blocking"] == [{"line": 2, "text": "from .core import main"}]
    assert "line 2: from .core import main" in hybrid.message


def test_scan_json_matches_contract(site):
    code, out, err = run_cli("scan", "--json", str(site))
    assert code == 1, err  # NS111 is at error level
    payload = json.loads(out)
    assert set(payload) == {"findings", "distributions", "namespaces"}
    finding = next(f for f in payload["findings"] if f["code"] == "NS101")
    assert finding == {
        "code": "NS101", "severity": "info", "path": "jaraco/__init__.py",
        "message": "pure pkgutil-style namespace jaraco (strippable)",
        "distribution": "jaraco.text", "distributions": ["jaraco.text"], "site": str(site),
    }
    dist = next(d for d in payload["distributions"] if d["name"] == "jaraco.text")
    assert dist == {"name": "jaraco.text", "version": "1.0", "metadata_dir": "jaraco_text-1.0.dist-info",
                    "files": 4, "site": str(site)}
    namespace = next(n for n in payload["namespaces"] if n["name"] == "jaraco")
    assert namespace == {"name": "jaraco", "style": "pkgutil", "purity": "pure", "init": "jaraco/__init__.py",
                         "distributions": ["jaraco.text"], "action": "strip", "site": str(site)}


def test_scan_under_root(tmp_path):
    destdir = tmp_path / "image"
    site_in_target = "/usr/lib/python3/dist-packages"
    add_distribution(destdir / site_in_target.lstrip("/"), "jaraco.text",
                     {"jaraco/__init__.py": PKGUTIL_INIT, "jaraco/text/__init__.py": ""})
    code, out, _ = run_cli("scan", "--json", "--root", str(destdir), site_in_target)
    assert code == 0
    assert [(f["code"], f["path"]) for f in json.loads(out)["findings"]] == [("NS101", "jaraco/__init__.py")]


def test_tree_without_metadata(tmp_path):
    (tmp_path / "zope").mkdir()
    (tmp_path / "zope" / "__init__.py").write_text(PKG_RESOURCES_INIT)
    (tmp_path / "zope" / "x.py").write_text("")
    result = scan(TreeSource.open(str(tmp_path)))
    assert [(n.name, n.style, n.distributions) for n in result.namespaces] == [("zope", "pkg_resources", [])]
    assert result.distributions == []


def test_egg_info_installed_files_map_owners(tmp_path):
    site = tmp_path / "site"
    add_egg_info_zope_foo(site, PKG_RESOURCES_INIT)
    result = scan(TreeSource.open(str(site)))
    assert {(f.code, f.path, f.distributions) for f in result.findings} == {
        ("NS102", "zope/__init__.py", ("zope.foo",)),
        ("NS104", "zope.foo-1.0-py3.11.egg-info/namespace_packages.txt", ("zope.foo",)),
    }


def test_empty_namespace_packages_txt(tmp_path):
    add_distribution(tmp_path, "emptyns", {"e.py": ""}, metadata_files={"namespace_packages.txt": ""})
    (finding,) = scan(TreeSource.open(str(tmp_path))).findings
    assert (finding.code, finding.message) == ("NS104", "declares no namespace (empty file)")


def test_data_directories_are_not_namespaces(tmp_path):
    add_distribution(tmp_path, "withdata", {
        "pkg/__init__.py": "", "pkg/templates/page.html": "", "share_stuff/readme.txt": "",
        "pkg/tests/data/x.py": "",  # a PEP 420 dir inside a regular package: not a shared namespace
    })
    assert scan(TreeSource.open(str(tmp_path))).namespaces == []


def test_nested_legacy_namespaces(tmp_path):
    add_distribution(tmp_path, "a.b.c", {
        "a/__init__.py": PKGUTIL_INIT, "a/b/__init__.py": PKG_RESOURCES_INIT, "a/b/c/__init__.py": "",
    })
    result = scan(TreeSource.open(str(tmp_path)))
    assert [(n.name, n.style, n.action) for n in result.namespaces] == [
        ("a", "pkgutil", "strip"), ("a.b", "pkg_resources", "strip"),
    ]


def test_cython_declarations_in_a_namespace_are_kept_and_warned(tmp_path):
    """issue 12: an __init__.pxd is never stripped; .pxd files in a namespace get NS106."""
    site = tmp_path / "site"
    add_distribution(site, "nsc.fast", {
        "nsc/__init__.py": PKGUTIL_INIT, "nsc/fast/__init__.py": "", "nsc/fast/core.pxd": "cdef int x\n",
        "nsd/__init__.pxd": "", "nsd/__init__.py": PKGUTIL_INIT, "nsd/mod.py": "",
    })
    code, out, err = run_cli("strip", str(site), "--json")
    result = json.loads(out)
    [ns106] = [f for f in result["findings"] if f["code"] == "NS106"]
    assert ns106["namespace"] == "nsc" and ns106["pxd"] == ["nsc/fast/core.pxd"]
    assert (site / "nsd" / "__init__.pxd").exists() and (site / "nsc" / "fast" / "core.pxd").exists()
    assert "nsd/__init__.py" in result["removed"]  # its __init__.pxd keeps Cython's package: no NS106


def test_namespace_declaration_names_the_namespaces(tmp_path):
    site = tmp_path / "site"
    add_distribution(site, "ruamel.yaml", {"ruamel/yaml/__init__.py": ""},
                     metadata_files={"namespace_packages.txt": "ruamel\n"})
    code, out, err = run_cli("strip", str(site), "--dry-run")
    assert "Stripping declaration of namespace ruamel (ruamel_yaml-1.0.dist-info/namespace_packages.txt)" in out
