"""Wheels: scan and strip ``.whl`` files built by real backends, write them back without
recompressing, reproducibly, atomically; the stripped wheel installs to exactly the tree that
stripping the installed original gives."""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path

import pytest
from installer.sources import WheelFile

from nstree import PKG_RESOURCES_INIT, PKGUTIL_INIT, add_distribution, install_wheel, python_imports, run_cli, snapshot
from test_strip import assert_records_true
from wheelbuild import build_wheel, craft_wheel, raw_member

from ns_strip.wheels import WheelSource

ZOPE_FILES = {"zope/__init__.py": PKG_RESOURCES_INIT, "zope/alpha/__init__.py": "NAME = 'alpha'\n"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """Real wheels: two setuptools namespace_packages halves of zope, one that also uses
    pkg_resources for something else."""
    work = tmp_path_factory.mktemp("built")
    return {
        "alpha": build_wheel(work, "zope.alpha", ZOPE_FILES, namespace_packages=["zope"], requires=["setuptools"]),
        "beta": build_wheel(work, "zope.beta", {
            "zope/__init__.py": PKG_RESOURCES_INIT, "zope/beta/__init__.py": "NAME = 'beta'\n",
        }, namespace_packages=["zope"], requires=["setuptools >= 40"]),
        "plugin": build_wheel(work, "zope.plugin", {
            "zope/__init__.py": PKG_RESOURCES_INIT,
            "zope/plugin/__init__.py": "from pkg_resources import iter_entry_points\n",
        }, namespace_packages=["zope"], requires=["setuptools"]),
    }


def members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def assert_wheel_valid(wheel: Path) -> None:
    """installer's own check: every member listed in RECORD with the right hash and size."""
    with WheelFile.open(wheel) as source:
        if hasattr(source, "validate_record"):
            source.validate_record(validate_contents=True)
            return
    # installer 0.6 (Debian 12) has no validate_record: the same check from its RecordEntry.
    from installer.records import RecordEntry, parse_record_file

    with zipfile.ZipFile(wheel) as archive:
        files = [name for name in archive.namelist() if not name.endswith("/")]
        record = next(name for name in files if name.endswith(".dist-info/RECORD"))
        rows = {row[0]: RecordEntry.from_elements(*row)
                for row in parse_record_file(archive.read(record).decode().splitlines())}
        for name in files:
            assert name in rows, f"{name} is not in RECORD"
            if name != record:
                assert rows[name].validate(archive.read(name)), f"{name} does not match its RECORD row"


def test_scan_reads_a_setuptools_wheel(built):
    code, out, err = run_cli("scan", "--json", "--check-modules", str(built["alpha"]))
    assert code == 0, err
    payload = json.loads(out)
    assert sorted(f["code"] for f in payload["findings"]) == ["NS103", "NS104", "NS403"]
    code, out, err = run_cli("scan", "--json", str(built["alpha"]))  # modules are read only when asked
    assert code == 0 and sorted(f["code"] for f in json.loads(out)["findings"]) == ["NS103", "NS104"]
    assert {(n["name"], n["style"], n["action"]) for n in payload["namespaces"]} == {
        ("zope", "nspkg_pth", "strip"), ("zope", "pep420", "none"),
    }
    assert payload["distributions"] == [{
        "name": "zope.alpha", "version": "1.0", "metadata_dir": "zope_alpha-1.0.dist-info", "files": 7,
        "site": str(built["alpha"]),
    }]


def test_strip_writes_a_valid_wheel_without_the_legacy_files(built, tmp_path):
    out = tmp_path / built["alpha"].name
    code, stdout, err = run_cli("strip", "--json", str(built["alpha"]), "-o", str(out))
    assert code == 0, err
    payload = json.loads(stdout)
    assert payload["removed"] == ["zope.alpha-1.0-py3.11-nspkg.pth", "zope_alpha-1.0.dist-info/namespace_packages.txt"]
    assert payload["rewritten"] == ["zope_alpha-1.0.dist-info/RECORD"]
    assert payload["output"] == str(out) and payload["dry_run"] is False
    assert_wheel_valid(out)
    assert [m for m in members(built["alpha"]) if m not in payload["removed"]] == members(out)
    code, stdout, _ = run_cli("scan", "--json", str(out))
    assert {n["style"] for n in json.loads(stdout)["namespaces"]} == {"pep420"}


def test_unchanged_members_are_copied_raw_not_recompressed(tmp_path):
    # Deflate level 1 on repetitive text: compressing again at any other level gives other bytes.
    body = "".join(f"VALUE_{i} = {i * 7919}\n" for i in range(3000)).encode()
    wheel = craft_wheel(tmp_path / "in", [
        ("nsraw/__init__.py", PKGUTIL_INIT.encode()), ("nsraw/big/__init__.py", body),
    ], name="nsraw.big", compresslevel=1)
    out = tmp_path / wheel.name
    code, _, err = run_cli("strip", str(wheel), "-o", str(out))
    assert code == 0, err
    assert "nsraw/__init__.py" not in members(out)
    assert raw_member(out, "nsraw/big/__init__.py") == raw_member(wheel, "nsraw/big/__init__.py")
    recompressed = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)  # as zipfile.writestr would
    assert recompressed.compress(body) + recompressed.flush() != raw_member(wheel, "nsraw/big/__init__.py")
    assert_wheel_valid(out)


def test_output_is_reproducible_and_honours_source_date_epoch(built, tmp_path, monkeypatch):
    first, second, dated = tmp_path / "1", tmp_path / "2", tmp_path / "3"
    for directory in (first, second, dated):
        directory.mkdir()
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert run_cli("strip", str(built["alpha"]), "-o", str(first))[0] == 0
    assert run_cli("strip", str(built["alpha"]), "-o", str(second))[0] == 0
    name = built["alpha"].name
    assert (first / name).read_bytes() == (second / name).read_bytes()
    record = "zope_alpha-1.0.dist-info/RECORD"
    with zipfile.ZipFile(built["alpha"]) as original, zipfile.ZipFile(first / name) as stripped:
        assert stripped.getinfo(record).date_time == original.getinfo(record).date_time

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14T22:13:20Z
    assert run_cli("strip", str(built["alpha"]), "-o", str(dated))[0] == 0
    with zipfile.ZipFile(dated / name) as stripped:
        assert stripped.getinfo(record).date_time == (2023, 11, 14, 22, 13, 20)
        assert stripped.getinfo("zope/alpha/__init__.py").date_time == \
            zipfile.ZipFile(built["alpha"]).getinfo("zope/alpha/__init__.py").date_time

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    refused = tmp_path / "4"
    refused.mkdir()
    code, _, err = run_cli("strip", str(built["alpha"]), "-o", str(refused))
    assert code == 2 and "SOURCE_DATE_EPOCH must be an integer" in err
    assert list(refused.iterdir()) == []


def test_in_place_replaces_atomically_and_keeps_the_mode(built, tmp_path):
    wheel = tmp_path / built["alpha"].name
    shutil.copyfile(built["alpha"], wheel)
    os.chmod(wheel, 0o640)
    before = os.stat(wheel)
    code, _, err = run_cli("strip", str(wheel), "--in-place")
    assert code == 0, err
    after = os.stat(wheel)
    assert after.st_ino != before.st_ino, "not replaced by rename"
    assert stat.S_IMODE(after.st_mode) == 0o640
    assert "zope.alpha-1.0-py3.11-nspkg.pth" not in members(wheel)
    assert_wheel_valid(wheel)
    assert sorted(p.name for p in tmp_path.iterdir()) == [wheel.name], "temporary files left behind"
    # Nothing left to strip: a second run changes nothing.
    assert run_cli("strip", str(wheel), "--in-place")[0] == 0
    assert os.stat(wheel).st_ino == after.st_ino


def test_dry_run_shows_the_plan_and_writes_nothing(built, tmp_path):
    out = tmp_path / built["alpha"].name
    code, stdout, err = run_cli("strip", "--dry-run", str(built["alpha"]), "-o", str(out))
    assert code == 0, err
    assert "[dry run] Stripping pkg_resources-style namespace zope (zope.alpha-1.0-py3.11-nspkg.pth)" in stdout
    assert not out.exists()
    code, stdout, _ = run_cli("strip", "--dry-run", "--json", str(built["alpha"]))
    assert code == 0 and json.loads(stdout)["output"] is None


@pytest.mark.parametrize("extra, why", [
    ((), "give -o OUT.whl or --in-place"),
    (("-o", "out.whl"), "must be a directory or a wheel file name"),
    (("-o", "a-1.0-py3-none-any.whl", "--in-place"), "not allowed with argument"),
])
def test_wheel_output_usage_errors(built, tmp_path, extra, why):
    arguments = [str(tmp_path / e) if e.endswith(".whl") else e for e in extra]
    code, _, err = run_cli("strip", str(built["alpha"]), *arguments)
    assert code == 2
    assert why in err
    assert list(tmp_path.iterdir()) == []


def test_output_options_are_usage_errors_for_a_site_dir(tmp_path):
    site = tmp_path / "site"
    add_distribution(site, "zope.x", {"zope/__init__.py": PKGUTIL_INIT, "zope/x.py": ""})
    before = snapshot(site)
    for extra in (["--in-place"], ["-o", str(tmp_path / "x-1.0-py3-none-any.whl")]):
        code, _, err = run_cli("strip", str(site), *extra)
        assert code == 2 and "apply to wheels only" in err
    assert snapshot(site) == before


def test_stripped_wheel_installs_to_the_stripped_tree(built, tmp_path, monkeypatch):
    """Install + strip the tree == strip the wheel + install, byte for byte (same place, so
    bytecode that embeds its path compares equal)."""
    # Hash-based bytecode: a .pyc that embeds the install time would differ by the second.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    site = tmp_path / "prefix" / "lib" / "python3.11" / "site-packages"
    install_wheel(built["alpha"], site)
    code, _, err = run_cli("strip", "--drop-setuptools-dep", str(site))
    assert code == 0, err
    stripped_tree = snapshot(tmp_path / "prefix")
    shutil.rmtree(tmp_path / "prefix")

    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run_cli("strip", "--drop-setuptools-dep", str(built["alpha"]), "-o", str(out))
    assert code == 0, err
    install_wheel(out / built["alpha"].name, site)
    assert snapshot(tmp_path / "prefix") == stripped_tree
    assert not any(path.endswith("-nspkg.pth") for path in stripped_tree)


def test_round_trip_two_halves_import_from_two_sys_path_entries(built, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    sites = []
    for key in ("alpha", "beta"):
        assert run_cli("strip", str(built[key]), "-o", str(out))[0] == 0
        site = tmp_path / key / "site-packages"
        install_wheel(out / built[key].name, site)
        sites.append(site)
    result = python_imports(sites, (
        "import sys, zope.alpha, zope.beta\n"
        "print(zope.alpha.NAME, zope.beta.NAME, len(zope.__path__), 'pkg_resources' in sys.modules)\n"
    ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["alpha", "beta", "2", "False"]


def test_purelib_and_platlib_members_are_seen_where_they_install(tmp_path):
    data = "nsdata.part-1.0.data"
    wheel = craft_wheel(tmp_path / "in", [
        (f"{data}/purelib/nsdata/__init__.py", PKGUTIL_INIT.encode()),
        (f"{data}/platlib/nsdata/part/__init__.py", b"PART = 1\n"),
        (f"{data}/scripts/nsdata-tool", b"#!python\nprint('tool')\n"),
    ], name="nsdata.part")
    code, out, err = run_cli("scan", "--json", str(wheel))
    assert code == 0, err
    payload = json.loads(out)
    assert [(f["code"], f["path"]) for f in payload["findings"]] == [("NS101", "nsdata/__init__.py")]
    assert payload["namespaces"][0]["distributions"] == ["nsdata.part"], "RECORD rows are seen as installed"

    stripped = tmp_path / wheel.name
    assert run_cli("strip", str(wheel), "-o", str(stripped))[0] == 0
    assert f"{data}/purelib/nsdata/__init__.py" not in members(stripped)
    assert f"{data}/scripts/nsdata-tool" in members(stripped)
    assert_wheel_valid(stripped)
    site = tmp_path / "site"
    install_wheel(stripped, site)
    assert (site / "nsdata" / "part" / "__init__.py").exists()
    assert not (site / "nsdata" / "__init__.py").exists()


def test_drop_setuptools_dep_only_when_nothing_else_needs_it(built, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, err = run_cli("strip", "--drop-setuptools-dep", "--json", str(built["plugin"]), "-o", str(out))
    assert code == 0, err
    assert "zope_plugin-1.0.dist-info/METADATA" not in json.loads(stdout)["rewritten"]
    with zipfile.ZipFile(out / built["plugin"].name) as archive:
        assert "Requires-Dist: setuptools" in archive.read("zope_plugin-1.0.dist-info/METADATA").decode()
    code, stdout, _ = run_cli("scan", "--json", "--check-modules", str(built["plugin"]))
    assert code == 0 and "NS403" not in {f["code"] for f in json.loads(stdout)["findings"]}

    code, stdout, err = run_cli("strip", "--drop-setuptools-dep", "--json", str(built["beta"]), "-o", str(out))
    assert code == 0, err
    assert "zope_beta-1.0.dist-info/METADATA" in json.loads(stdout)["rewritten"]
    stripped = out / built["beta"].name
    assert_wheel_valid(stripped)
    with zipfile.ZipFile(stripped) as archive:
        metadata = archive.read("zope_beta-1.0.dist-info/METADATA").decode()
    assert "setuptools" not in metadata.replace("Dynamic: requires-dist", "")
    assert metadata.startswith("Metadata-Version: 2.4\nName: zope.beta\nVersion: 1.0\n")


def test_drop_setuptools_dep_in_a_site_dir_keeps_record_true(tmp_path):
    site = tmp_path / "site"
    add_distribution(site, "zope.gamma", {"zope/__init__.py": PKG_RESOURCES_INIT, "zope/gamma.py": "G = 1\n"},
                     metadata_files={"METADATA": "Metadata-Version: 2.1\nName: zope.gamma\nVersion: 1.0\n"
                                                 "Requires-Dist: setuptools\nRequires-Dist: attrs\n"
                                                 "Requires-Dist: setuptools; extra == 'build'\n\nLong text.\n"})
    code, out, err = run_cli("scan", "--json", "--check-modules", str(site))
    assert [f["path"] for f in json.loads(out)["findings"] if f["code"] == "NS403"] == [
        "zope_gamma-1.0.dist-info/METADATA"]
    code, out, err = run_cli("strip", "--drop-setuptools-dep", str(site))
    assert code == 0, err
    assert "Dropping Requires-Dist: setuptools of zope.gamma (needed only for namespaces)" in out
    metadata = (site / "zope_gamma-1.0.dist-info" / "METADATA").read_text()
    assert metadata == ("Metadata-Version: 2.1\nName: zope.gamma\nVersion: 1.0\nRequires-Dist: attrs\n"
                        "Requires-Dist: setuptools; extra == 'build'\n\nLong text.\n")
    assert_records_true(site)


def test_extension_members_are_listed_with_their_installed_paths(tmp_path):
    data = "nsext-1.0.data"
    wheel = craft_wheel(tmp_path, [
        ("nsext/fast.cpython-311-x86_64-linux-gnu.so", b"\x7fELF-not-read-here"),
        (f"{data}/platlib/nsext/slow.abi3.so", b"\x7fELF-either"),
        ("nsext/__init__.py", b""),
    ], name="nsext")
    with WheelSource.open(wheel) as source:
        found = {}
        for path in source.extension_paths():
            with source.open_member(path) as stream:
                found[path] = stream.read()
    assert found == {
        "nsext/fast.cpython-311-x86_64-linux-gnu.so": b"\x7fELF-not-read-here",
        "nsext/slow.abi3.so": b"\x7fELF-either",
    }
