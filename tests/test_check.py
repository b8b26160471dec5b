"""``ns-strip check``: conflicts across distributions from real wheels, site dirs and a mix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ext_toolchain import module_source, tool
from nstree import PKG_RESOURCES_INIT, PKGUTIL_INIT, add_distribution, install_wheel, run_cli
from wheelbuild import build_wheel

from ns_strip.conflicts import exclusive_claim


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("check")
    return {
        # setuptools without namespace_packages ships the pkgutil __init__.py in every half.
        "alpha": build_wheel(work, "zope.alpha", {"zope/__init__.py": PKGUTIL_INIT, "zope/alpha/__init__.py": ""}),
        "beta": build_wheel(work, "zope.beta", {"zope/__init__.py": PKGUTIL_INIT, "zope/beta/__init__.py": ""}),
        "gamma": build_wheel(work, "zope.gamma", {"zope/__init__.py": PKG_RESOURCES_INIT, "zope/gamma.py": ""}),
        "regular": build_wheel(work, "zope-regular", {"zope/__init__.py": "API = 1\n"}),
        "portion": build_wheel(work, "zope.portion", {"zope/portion/__init__.py": ""}),
        # PEP 794 declarations, written as given by hatchling.
        "owner": build_wheel(work, "pkg", {"pkg/__init__.py": "", "pkg/plugins/core.py": ""}, backend="hatchling",
                             import_names=["pkg"], import_namespaces=["pkg.plugins"]),
        # Contributors list only what they contribute: they have nothing to say about pkg.
        "plugin": build_wheel(work, "pkg-extra", {"pkg/plugins/extra/__init__.py": ""}, backend="hatchling",
                              import_names=["pkg.plugins.extra"]),
        "intruder": build_wheel(work, "pkg-other", {"pkg/other.py": ""}, backend="hatchling",
                                import_names=["pkg.other"]),
        "squatter": build_wheel(work, "pkg-squat", {"pkg/plugins/squat.py": ""}, backend="hatchling",
                                import_names=["pkg.plugins.squat"], import_namespaces=["pkg"]),
    }


def check_json(*paths: Path | str) -> tuple[int, dict]:
    code, out, err = run_cli("check", "--json", *map(str, paths))
    assert code in (0, 1), err
    return code, json.loads(out)


def codes_of(payload: dict) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(f["code"], f["path"], tuple(f["distributions"])) for f in payload["findings"]]


def test_identical_namespace_init_is_shared_info(wheels):
    code, payload = check_json(wheels["alpha"], wheels["beta"])
    assert code == 0
    assert codes_of(payload) == [("NS302", "zope/__init__.py", ("zope.alpha", "zope.beta"))]
    assert "legacy namespace declarations" in payload["findings"][0]["message"]
    assert [d["name"] for d in payload["distributions"]] == ["zope.alpha", "zope.beta"]


def test_different_content_at_one_path_is_an_error(wheels):
    code, payload = check_json(wheels["alpha"], wheels["gamma"])
    assert code == 1
    assert codes_of(payload) == [("NS301", "zope/__init__.py", ("zope.alpha", "zope.gamma"))]
    finding = payload["findings"][0]
    assert finding["severity"] == "error"
    assert finding["sources"] == {"zope.alpha": str(wheels["alpha"]), "zope.gamma": str(wheels["gamma"])}


def test_regular_package_shadowing_namespace_portions(wheels):
    code, out, _ = run_cli("check", str(wheels["regular"]), str(wheels["portion"]))
    assert code == 1
    assert ("NS303 zope/__init__.py: regular package zope of zope-regular shadows the namespace portions "
            "zope.portion ships under zope/ [zope-regular, zope.portion]") in out


def test_pep794_overlaps_follow_the_declared_carve_outs(wheels):
    code, payload = check_json(wheels["owner"], wheels["plugin"])
    assert (code, payload["findings"]) == (0, []), "pkg.plugins is left open by its owner"
    code, payload = check_json(wheels["owner"], wheels["intruder"])
    assert code == 1
    overlaps = [f for f in payload["findings"] if f["code"] == "NS304"]
    assert [(f["claim"], f["name"], f["overlap"], f["distributions"]) for f in overlaps] == [
        ("pkg", "pkg.other", "Name/Name", ["pkg", "pkg-other"]),
    ]
    assert overlaps[0]["path"] == "pkg-1.0.dist-info/METADATA"
    assert {f["code"] for f in payload["findings"]} == {"NS303", "NS304"}
    # Calling pkg a namespace contradicts its owner's Import-Name, though the files coexist.
    code, payload = check_json(wheels["owner"], wheels["squatter"])
    assert code == 1
    assert [(f["code"], f["name"], f["overlap"]) for f in payload["findings"]] == [("NS304", "pkg", "Name/Namespace")]


@pytest.mark.parametrize("names, namespaces, location, claim", [
    # From the PEP 794 discussion: each declaration and what it claims exclusively.
    ({"pkg"}, set(), "pkg.anything", "pkg"),
    (set(), {"pkg"}, "pkg", None),
    (set(), {"pkg"}, "pkg.x", None),
    ({"pkg"}, {"pkg"}, "pkg", "pkg"),
    ({"pkg"}, {"pkg"}, "pkg.x", None),
    ({"pkg"}, {"pkg.ns"}, "pkg.ns.x", None),
    ({"pkg"}, {"pkg.ns"}, "pkg.ns", None),
    ({"pkg"}, {"pkg.ns"}, "pkg.other", "pkg"),
    ({"pkg", "pkg.ns.firstparty"}, {"pkg.ns"}, "pkg.ns.firstparty.sub", "pkg.ns.firstparty"),
    ({"pkg", "pkg.ns.firstparty"}, {"pkg.ns"}, "pkg.ns.thirdparty", None),
    ({"pkg"}, set(), "pkgx", None),
])
def test_exclusive_claims(names, namespaces, location, claim):
    assert exclusive_claim(names, namespaces, location) == claim


def test_extension_taking_over_a_namespace(tmp_path):
    """The Nuitka case: a namespace compiled into shared_ns.<tag>.so hides the other portions."""
    tool("gcc")
    compiled = build_wheel(tmp_path, "pkg1", {"pkg1_marker.py": ""},
                           ext_modules={"shared_ns": module_source("shared_ns")})
    recompiled = build_wheel(tmp_path, "pkg3", {"pkg3_marker.py": ""},
                             ext_modules={"shared_ns": module_source("shared_ns") + "\nint pkg3 = 3;\n"})
    portion = build_wheel(tmp_path, "pkg2", {"shared_ns/pkg2/__init__.py": ""})
    code, payload = check_json(compiled, portion, recompiled)
    assert code == 1
    found = codes_of(payload)
    so = next(path for _, path, _ in found if path.endswith(".so"))
    assert so.startswith("shared_ns.cpython-") and so.count("/") == 0
    assert ("NS202", so, ("pkg1", "pkg2")) in found
    assert ("NS202", so, ("pkg3", "pkg2")) in found
    assert ("NS301", so, ("pkg1", "pkg3")) in found


def test_several_distributions_in_one_site_dir_and_a_mix(wheels, tmp_path):
    # The same project installed and as a wheel is one project, not a conflict with itself.
    site = tmp_path / "site"
    install_wheel(wheels["alpha"], site)
    code, payload = check_json(site, wheels["alpha"], wheels["beta"])
    assert codes_of(payload) == [("NS302", "zope/__init__.py", ("zope.alpha", "zope.beta"))]
    assert [(d["name"], d["source"]) for d in payload["distributions"]] == [
        ("zope.alpha", str(site)), ("zope.alpha", str(wheels["alpha"])), ("zope.beta", str(wheels["beta"])),
    ]
    # In one site dir the file on disk is the last one installed; the RECORDs still tell.
    shared = tmp_path / "shared"
    add_distribution(shared, "zope.one", {"zope/__init__.py": PKGUTIL_INIT, "zope/one.py": ""})
    add_distribution(shared, "zope.two", {"zope/__init__.py": PKGUTIL_INIT, "zope/two.py": ""})
    code, payload = check_json(shared)
    assert (code, codes_of(payload)) == (0, [("NS302", "zope/__init__.py", ("zope.one", "zope.two"))])
    add_distribution(shared, "zope.three", {"zope/__init__.py": PKG_RESOURCES_INIT, "zope/three.py": ""})
    code, payload = check_json(shared)
    assert code == 1
    assert codes_of(payload) == [("NS301", "zope/__init__.py", ("zope.one", "zope.three", "zope.two"))]


def test_bad_paths(tmp_path):
    code, _, err = run_cli("check", str(tmp_path / "nowhere"))
    assert code == 2 and "no such directory" in err
