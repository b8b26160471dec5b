"""PEP 794: Import-Name / Import-Namespace computed from contents, compared with what real
backends declared (hatchling writes whatever it is told; flit_core checks its own), and written
back into METADATA with RECORD kept true."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from nstree import PKG_RESOURCES_INIT, PKGUTIL_INIT, add_distribution, install_wheel, run_cli
from test_strip import assert_records_true
from test_wheels import assert_wheel_valid
from wheelbuild import build_wheel

from ns_strip.coremetadata import import_fields, read_fields, single
from ns_strip.metadata_edit import drop_requirement, set_import_fields

HYBRID_INIT = PKGUTIL_INIT + "VERSION = '1.0'\n"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("pep794")
    return {
        # Declared wrong on purpose: "wrong" is not shipped, "nsh.part" and "_speedups" are
        # shipped but not declared, "other" is no namespace of this wheel.
        "wrong": build_wheel(work, "nsh-part", {
            "nsh/part/__init__.py": "X = 1\n", "nsh/part/sub.py": "", "top.py": "", "_speedups.py": "",
        }, backend="hatchling", import_names=["wrong", "top", "nsh.part.sub"], import_namespaces=["nsh", "other"]),
        "right": build_wheel(work, "nsf-part", {
            "nsf/part/__init__.py": '"""A portion of nsf."""\n__version__ = "1.0"\n',
        }, backend="flit", import_names=["nsf.part"], import_namespaces=["nsf"]),
        "undeclared": build_wheel(work, "zope.alpha", {
            "zope/__init__.py": PKG_RESOURCES_INIT, "zope/alpha/__init__.py": "",
        }, namespace_packages=["zope"]),
    }


def import_names_json(*args: str) -> tuple[int, dict]:
    code, out, err = run_cli("import-names", "--json", *args)
    assert code in (0, 1), err
    return code, json.loads(out)


def test_wrong_declarations_of_a_hatchling_wheel_are_reported(wheels):
    code, payload = import_names_json(str(wheels["wrong"]))
    assert code == 0  # NS402 is a warning
    [dist] = payload["distributions"]
    assert dist["import_names"] == ["_speedups; private", "nsh.part", "top"]
    assert dist["import_namespaces"] == ["nsh"]
    assert dist["declared_import_names"] == ["nsh.part.sub", "top", "wrong"]
    assert dist["declared_import_namespaces"] == ["nsh", "other"]
    problems = sorted((f["code"], f["field"], f["name"], f["problem"]) for f in payload["findings"])
    assert problems == [
        ("NS402", "Import-Name", "_speedups", "undeclared"),
        ("NS402", "Import-Name", "nsh.part", "undeclared"),
        ("NS402", "Import-Name", "wrong", "not shipped"),
        ("NS402", "Import-Namespace", "other", "not shipped"),
    ]  # nsh.part.sub is a submodule of a shipped package: listing it is allowed
    assert {f["path"] for f in payload["findings"]} == {"nsh_part-1.0.dist-info/METADATA"}


def test_flit_declarations_match_the_contents(wheels):
    code, payload = import_names_json(str(wheels["right"]))
    assert code == 0 and payload["findings"] == []
    [dist] = payload["distributions"]
    assert dist["import_names"] == dist["declared_import_names"] == ["nsf.part"]
    assert dist["import_namespaces"] == dist["declared_import_namespaces"] == ["nsf"]


def test_a_legacy_namespace_init_counts_as_a_namespace(wheels, tmp_path):
    site = tmp_path / "site"
    install_wheel(wheels["undeclared"], site)
    _, payload = import_names_json(str(site))
    [dist] = payload["distributions"]
    assert (dist["import_names"], dist["import_namespaces"]) == (["zope.alpha"], ["zope"])
    assert dist["declared_import_names"] is None and payload["findings"] == []


def test_modules_packages_extensions_hybrids_and_pep420_levels(tmp_path):
    site = tmp_path / "site"
    add_distribution(site, "mixed", {
        "cmod.py": "", "_cext.cpython-311-x86_64-linux-gnu.so": b"\x7fELF", "fast.pyd": b"MZ",
        "hyb/__init__.py": HYBRID_INIT, "hyb/x.py": "",
        "deep/ns/mod.py": "", "deep/ns/_impl/__init__.py": "",
        "pkgr/__init__.py": PKG_RESOURCES_INIT, "pkgr/inner/__init__.py": "", "pkgr/inner/ns/deeper.py": "",
        "docs/readme.txt": "not importable", "mixed-tool.pth": "import os\n",
    })
    _, payload = import_names_json(str(site))
    [dist] = payload["distributions"]
    assert dist["import_names"] == [
        "_cext; private", "cmod", "deep.ns._impl; private", "deep.ns.mod", "fast", "hyb", "pkgr.inner",
    ]
    assert dist["import_namespaces"] == ["deep", "deep.ns", "pkgr"]


def test_a_name_in_both_fields_is_an_error(tmp_path):
    site = tmp_path / "site"
    add_distribution(site, "zope.both", {"zope/__init__.py": HYBRID_INIT}, metadata_files={
        "METADATA": "Metadata-Version: 2.5\nName: zope.both\nVersion: 1.0\nImport-Name: zope\nImport-Namespace: zope\n",
    })
    code, payload = import_names_json(str(site))
    assert code == 1
    assert [(f["code"], f["name"]) for f in payload["findings"]] == [("NS402", "zope"), ("NS404", "zope")]
    code, out, _ = run_cli("import-names", "--select", "NS404", str(site))
    assert "NS404 zope_both-1.0.dist-info/METADATA: zope is listed as both Import-Name and Import-Namespace" in out


def validated_import_fields(data: bytes) -> tuple[list[str] | None, list[str] | None]:
    """The PEP 794 fields as ns-strip reads them; where packaging knows Metadata 2.5 (25.1 and
    later, not Debian 12's 23.0) the whole file is also validated by packaging, and must agree."""
    fields = import_fields(data)
    try:
        from packaging.metadata import Metadata
    except ImportError:
        return fields
    if hasattr(Metadata, "import_names"):
        parsed = Metadata.from_email(data, validate=True)
        assert (parsed.import_names, parsed.import_namespaces) == fields
    return fields


def test_write_into_a_site_dir_keeps_record_true(wheels, tmp_path):
    site = tmp_path / "site"
    install_wheel(wheels["wrong"], site)
    install_wheel(wheels["undeclared"], site)
    code, out, err = run_cli("import-names", "--write", str(site))
    assert code == 0, err
    assert "Writing Import-Name/Import-Namespace of zope.alpha (zope_alpha-1.0.dist-info/METADATA)" in out
    assert_records_true(site)
    metadata = (site / "zope_alpha-1.0.dist-info" / "METADATA").read_text()
    assert metadata.startswith("Metadata-Version: 2.5\nName: zope.alpha\nVersion: 1.0\n")
    assert metadata.endswith("Import-Name: zope.alpha\nImport-Namespace: zope\n")
    assert validated_import_fields(metadata.encode()) == (["zope.alpha"], ["zope"])

    _, payload = import_names_json(str(site))
    assert payload["findings"] == []
    code, out, _ = run_cli("import-names", "--write", "--json", str(site))
    assert json.loads(out)["rewritten"] == []


def test_write_a_wheel_needs_an_output_and_produces_a_valid_one(wheels, tmp_path):
    code, _, err = run_cli("import-names", "--write", str(wheels["wrong"]))
    assert code == 2 and "-o OUT.whl or --in-place" in err
    code, _, err = run_cli("import-names", "-o", str(tmp_path), str(wheels["wrong"]))
    assert code == 2 and "only say where --write puts a wheel" in err

    code, out, err = run_cli("import-names", "--write", "--json", "-o", str(tmp_path), str(wheels["wrong"]))
    assert code == 0, err
    written = tmp_path / wheels["wrong"].name
    assert json.loads(out)["output"] == str(written)
    assert_wheel_valid(written)
    with zipfile.ZipFile(written) as archive:
        metadata = archive.read("nsh_part-1.0.dist-info/METADATA")
    assert validated_import_fields(metadata) == (["_speedups; private", "nsh.part", "top"], ["nsh"])
    assert single(read_fields(metadata), "Summary") == "test distribution", "other fields are kept"
    _, payload = import_names_json(str(written))
    assert payload["findings"] == []


def test_metadata_edits_keep_every_other_byte():
    original = (b"Metadata-Version: 2.1\r\nName: x\r\nImport-Name: stale\r\nDescription: first\r\n"
                b"        folded\r\nRequires-Dist: setuptools>=40; python_version >= '3'\r\n\r\nBody\r\n")
    written = set_import_fields(original, "METADATA", ["x", "_x; private"], ["ns"])
    assert written == (b"Metadata-Version: 2.5\r\nName: x\r\nDescription: first\r\n        folded\r\n"
                       b"Requires-Dist: setuptools>=40; python_version >= '3'\r\nImport-Name: x\r\n"
                       b"Import-Name: _x; private\r\nImport-Namespace: ns\r\n\r\nBody\r\n")
    assert set_import_fields(b"Metadata-Version: 2.5\nName: x", "METADATA", [], []) == (
        b"Metadata-Version: 2.5\nName: x\nImport-Name:\n")
    dropped, requirements = drop_requirement(original, "METADATA", "setuptools")
    assert requirements == ["setuptools>=40; python_version >= '3'"]
    assert dropped == original.replace(b"Requires-Dist: setuptools>=40; python_version >= '3'\r\n", b"")


def test_mypyc_group_library_is_a_private_name(tmp_path):
    """mypyc's <hash>__mypyc group library (black, mypy) is an implementation detail (issue 12)."""
    from ns_strip.importnames import ImportEntry, is_mypyc_group

    assert is_mypyc_group("a0fcd23745efe32ce681__mypyc") and not is_mypyc_group("mypyc")
    assert ImportEntry("a0fcd23745efe32ce681__mypyc", "extension", "x.so").field_value.endswith("; private")
    site = tmp_path / "site"
    suffix = ".cpython-311-x86_64-linux-gnu.so"
    add_distribution(site, "one", {f"a0fcd23745efe32ce681__mypyc{suffix}": b"\x7fELF", "one.py": ""},
                     metadata_files={})
    code, out, _ = run_cli("import-names", str(site), "--json")
    [layout] = json.loads(out)["distributions"]
    assert "a0fcd23745efe32ce681__mypyc; private" in layout["import_names"]
