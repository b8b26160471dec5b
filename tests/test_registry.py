"""ns-strip registry: reference counts, placeholders, clean-up by the last package, verify,
repair, rebuild, and refusal of bad input."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_registry_support import SITE, System, ns_strip, portion

from ns_strip.registry import PLACEHOLDER

DB = "var/lib/ns-strip/registry.sqlite3"


@pytest.fixture
def system(tmp_path: Path) -> System:
    return System(tmp_path / "root")


def stage_ab(system: System, tmp_path: Path, namespace: str = "nsx"):
    a = system.stage("python3-nsx-a", portion(namespace, "a"), tmp_path)
    b = system.stage("python3-nsx-b", portion(namespace, "b"), tmp_path)
    return a, b


def test_seed_002_life_cycle_with_placeholders(system: System, tmp_path: Path) -> None:
    """Install A, install B, remove A: B still imports; remove B: nothing is left."""
    a, b = stage_ab(system, tmp_path)
    assert system.install(a, "pkgutil").code == 0
    init = system.site / "nsx" / "__init__.py"
    assert init.read_bytes() == PLACEHOLDER
    assert system.install(b, "pkgutil").code == 0
    assert system.counts() == {"nsx": ["python3-nsx-a", "python3-nsx-b"]}
    both = system.python("import nsx.a, nsx.b; print(nsx.a.NAME, nsx.b.NAME, nsx.__file__)")
    assert both.returncode == 0, both.stderr
    assert both.stdout.split()[:2] == ["a", "b"]
    assert (system.site / "nsx" / "__pycache__").is_dir()  # the import compiled the placeholder

    assert system.uninstall(a).code == 0
    assert init.read_bytes() == PLACEHOLDER  # B still uses the namespace
    still = system.python("import nsx.b; print(nsx.b.NAME)")
    assert still.returncode == 0 and still.stdout.strip() == "b", still.stderr
    assert system.python("import nsx.a").returncode != 0
    assert not (system.site / "nsx" / "a").exists()

    result = system.uninstall(b)
    assert result.code == 0, result.err
    assert system.tree() == []
    assert system.counts() == {}
    assert system.registry("verify").code == 0


def test_pep420_namespace_last_package_takes_the_interpreters_bytecode(system: System, tmp_path: Path) -> None:
    module = system.stage("python3-nsx-mod", {"nsx/mod.py": "X = 1\n"}, tmp_path)
    assert system.install(module).code == 0
    assert not (system.site / "nsx" / "__init__.py").exists()  # no placeholder by default
    assert system.python("import nsx.mod").returncode == 0
    assert list((system.site / "nsx" / "__pycache__").iterdir())  # mod.cpython-*.pyc, left by the import

    system.uninstall(module, register=False, clean_bytecode=False)
    assert system.tree() == ["nsx/", "nsx/__pycache__/", *sorted(
        f"nsx/__pycache__/{p.name}" for p in (system.site / "nsx" / "__pycache__").iterdir())]
    result = system.registry("remove", module.name)
    assert result.code == 0, result.err
    assert "Removing directory" in result.out
    assert system.tree() == []


def test_files_the_toolkit_did_not_create_stay(system: System, tmp_path: Path) -> None:
    a, _ = stage_ab(system, tmp_path)
    system.install(a, "pkgutil")
    # An unregistered package shipping a module in the namespace, and a foreign __init__.py
    # in a second namespace: neither is the toolkit's to remove.
    (system.site / "nsx" / "foreign.py").write_text("F = 1\n")
    other = system.stage("python3-other", {"other/sub/m.py": "", "other/__init__.py": "# someone's\n"}, tmp_path)
    system.install(other, "pkgutil")
    # other/__init__.py is shipped by the package, so other is not a namespace in its manifest
    assert system.counts() == {"nsx": ["python3-nsx-a"]}

    result = system.uninstall(a)
    assert result.code == 0, result.err
    assert (system.site / "nsx" / "foreign.py").exists()
    assert not (system.site / "nsx" / "__init__.py").exists()  # the placeholder went
    assert system.registry("verify").code == 0  # a directory holding others' files is not drift

    # Once the foreign file is gone, the next registry command clears the directory.
    (system.site / "nsx" / "foreign.py").unlink()
    assert system.registry("remove", "python3-nothing").code == 0
    assert not (system.site / "nsx").exists()


def test_a_changed_placeholder_is_kept_and_reported(system: System, tmp_path: Path) -> None:
    a, _ = stage_ab(system, tmp_path)
    system.install(a, "pkgutil")
    init = system.site / "nsx" / "__init__.py"
    init.write_text("print('edited by hand')\n")
    verify = system.registry_json("verify")
    assert verify.code == 1
    assert verify.codes() == ["NS513"]
    assert system.registry("verify", "--repair").code == 0  # stops tracking it
    system.uninstall(a)
    assert init.read_text() == "print('edited by hand')\n"


def test_upgrade_that_leaves_a_namespace(system: System, tmp_path: Path) -> None:
    old = system.stage("python3-multi", {**portion("nsx", "a"), **portion("nsy", "a")}, tmp_path / "v1")
    system.install(old, "pkgutil")
    assert set(system.counts()) == {"nsx", "nsy"}
    system.uninstall(old, register=False)
    new = system.stage("python3-multi", portion("nsx", "a"), tmp_path / "v2")
    result = system.install(new, "pkgutil")
    assert result.code == 0, result.err
    assert "Re-registered python3-multi" in result.out
    assert system.counts() == {"nsx": ["python3-multi"]}
    assert not (system.site / "nsy").exists()
    assert (system.site / "nsx" / "__init__.py").exists()


def test_mixed_modes_placeholder_lives_while_one_package_wants_it(system: System, tmp_path: Path) -> None:
    a, b = stage_ab(system, tmp_path)
    system.install(a, "none")
    assert not (system.site / "nsx" / "__init__.py").exists()
    system.install(b, "pkgutil")
    assert (system.site / "nsx" / "__init__.py").exists()
    result = system.uninstall(b)
    assert "placeholder no longer wanted" in result.out
    assert not (system.site / "nsx" / "__init__.py").exists()
    assert (system.site / "nsx" / "a").is_dir()


def test_nested_namespaces_go_deepest_first(system: System, tmp_path: Path) -> None:
    deep = system.stage("python3-deep", portion("nsx.inner", "leaf"), tmp_path)
    assert system.install(deep, "pkgutil").code == 0
    assert system.counts() == {"nsx": ["python3-deep"], "nsx/inner": ["python3-deep"]}
    assert system.python("import nsx.inner.leaf").returncode == 0
    system.uninstall(deep)
    assert system.tree() == []


def test_verify_reports_drift_and_repair_settles_it(system: System, tmp_path: Path) -> None:
    a, b = stage_ab(system, tmp_path)
    system.install(a, "pkgutil")
    system.install(b, "pkgutil")
    (system.site / "nsx" / "__init__.py").unlink()
    verify = system.registry_json("verify")
    assert (verify.code, verify.codes()) == (1, ["NS512"])
    assert "ns-strip registry verify --repair" in verify.json["findings"][0]["message"]

    repair = system.registry("verify", "--repair")
    assert repair.code == 0, repair.out
    assert (system.site / "nsx" / "__init__.py").read_bytes() == PLACEHOLDER

    # A package whose files went without 'registry remove', and a manifest changed under it.
    system.uninstall(a, register=False)
    (system.root / b.manifest.lstrip("/")).write_text("{}")
    verify = system.registry_json("verify")
    assert verify.code == 1
    assert sorted(verify.codes()) == ["NS516", "NS517", "NS517"]
    assert any("ns-strip registry remove python3-nsx-a" in f["message"] for f in verify.json["findings"])


def test_missing_namespace_directory_is_drift(system: System, tmp_path: Path) -> None:
    a, _ = stage_ab(system, tmp_path)
    system.install(a)
    for path in sorted((system.site / "nsx").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (system.site / "nsx").rmdir()
    assert "NS511" in system.registry_json("verify").codes()


def test_remove_is_idempotent(system: System, tmp_path: Path) -> None:
    a, _ = stage_ab(system, tmp_path)
    system.install(a)
    assert system.registry("remove", a.name).code == 0
    again = system.registry_json("remove", a.name)
    assert again.code == 0
    assert again.json["was_registered"] is False


def test_list_json_and_options_after_or_before_the_action(system: System, tmp_path: Path) -> None:
    a, b = stage_ab(system, tmp_path)
    system.install(a, "pkgutil")
    system.install(b)
    after = system.registry_json("list")
    before = ns_strip("registry", "--json", "list", "--root", str(system.root))
    assert after.json == before.json
    assert after.json["namespaces"] == [{
        "name": "nsx", "directory": "nsx", "site_dir": SITE, "count": 2,
        "packages": ["python3-nsx-a", "python3-nsx-b"], "placeholder": True,
    }]
    assert [p["placeholders"] for p in after.json["packages"]] == ["pkgutil", "none"]


def test_rebuild_from_manifests(system: System, tmp_path: Path) -> None:
    a, b = stage_ab(system, tmp_path)
    system.install(a, "pkgutil")
    system.install(b, "pkgutil")
    db = system.root / DB
    db.unlink()
    result = system.registry("rebuild")
    assert result.code == 0, result.err
    assert system.counts() == {"nsx": ["python3-nsx-a", "python3-nsx-b"]}
    # The existing placeholder was recognised as the toolkit's: it still goes with the last package.
    system.uninstall(a)
    system.uninstall(b)
    assert system.tree() == []


@pytest.mark.parametrize("damage", [b"this is not a database at all" * 100, b"SQLite format 3\x00" + b"\xff" * 2000])
def test_corrupt_database_is_bad_input_with_the_way_out(system: System, tmp_path: Path, damage: bytes) -> None:
    a, _ = stage_ab(system, tmp_path)
    system.install(a, "pkgutil")
    db = system.root / DB
    db.write_bytes(damage)
    before = sorted(p.name for p in db.parent.iterdir())
    for argv in (("list",), ("verify",), ("remove", a.name), ("add", a.name, a.manifest)):
        result = system.registry(*argv)
        assert result.code == 3, (argv, result.err)
        lines = result.err.splitlines()
        assert len(lines) == 1 and "ns-strip registry rebuild" in lines[0] and str(db) in lines[0]
    assert sorted(p.name for p in db.parent.iterdir()) == before
    assert db.read_bytes() == damage
    assert (system.site / "nsx" / "__init__.py").exists()

    rebuilt = system.registry("rebuild")
    assert rebuilt.code == 0, rebuilt.err
    assert (db.parent / "registry.sqlite3.corrupt").read_bytes() == damage
    assert system.counts() == {"nsx": ["python3-nsx-a"]}


def test_newer_schema_is_refused(system: System, tmp_path: Path) -> None:
    a, _ = stage_ab(system, tmp_path)
    system.install(a)
    with sqlite3.connect(system.root / DB) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    result = system.registry("list")
    assert result.code == 3
    assert "schema version 99" in result.err


@pytest.mark.parametrize("text, problem", [
    ("not json", "not a JSON manifest"),
    ('{"x": 1}', "not an ns-strip manifest"),
    ('{"ns-strip-manifest": 7}', "format 7 is not supported"),
])
def test_bad_manifest_is_refused_and_nothing_changes(system: System, tmp_path: Path, text: str, problem: str) -> None:
    manifest = system.root / "usr/share/ns-strip/manifests/python3-bad.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(text)
    result = system.registry("add", "python3-bad", "/usr/share/ns-strip/manifests/python3-bad.json")
    assert result.code == 3
    assert problem in result.err and "python3-bad.json" in result.err
    assert not (system.root / DB).exists()


def _manifest_with(system: System, tmp_path: Path, **changes) -> tuple[str, Path]:
    a, _ = stage_ab(system, tmp_path)
    source = a.stage / a.manifest.lstrip("/")
    import json
    data = json.loads(source.read_text())
    data.update(changes)
    target = system.root / a.manifest.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data))
    return a.manifest, target


@pytest.mark.parametrize("changes, problem", [
    ({"site_dir": "relative/site"}, "site_dir"),
    ({"namespaces": ["../escape"]}, "not a path inside the site dir"),
    ({"namespaces": ["nsx", "not-a-package"]}, "not a dotted package path"),
    ({"portions": {"nsx": ["../../etc"]}}, "not a file name"),
    ({"package": "python3-other"}, "manifest is for package python3-other"),
])
def test_unsafe_manifest_fields_are_refused(system: System, tmp_path: Path, changes, problem: str) -> None:
    manifest, _ = _manifest_with(system, tmp_path, **changes)
    result = system.registry("add", "python3-nsx-a", manifest)
    assert result.code == 3, result.err
    assert problem in result.err


def test_site_dir_leaving_the_root_is_refused(system: System, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "nsx").mkdir(parents=True)
    (system.root / "srv").mkdir()
    (system.root / "srv" / "site").symlink_to(outside)
    manifest, _ = _manifest_with(system, tmp_path, site_dir="/srv/site")
    result = system.registry("add", "python3-nsx-a", manifest, "--placeholders", "pkgutil")
    assert result.code == 3
    assert "outside --root" in result.err
    assert list((outside / "nsx").iterdir()) == []


def test_with_root_paths_must_be_absolute(system: System) -> None:
    result = system.registry("add", "python3-x", "relative.json")
    assert result.code == 2
    assert "absolute in the target system" in result.err


@pytest.mark.parametrize("size", [0, 1, 99])
def test_a_truncated_database_is_refused_not_read_as_empty(system: System, tmp_path: Path, size: int) -> None:
    a, _ = stage_ab(system, tmp_path)
    assert system.install(a).code == 0
    db = system.root / DB
    db.write_bytes(db.read_bytes()[:size])
    for action in (["list"], ["verify"], ["remove", "python3-nsx-a"]):
        result = system.registry(*action)
        assert result.code == 3, (action, result.err)
        assert result.err.count("\n") == 1 and "Traceback" not in result.err
        assert str(db) in result.err and "'ns-strip registry rebuild'" in result.err
    assert db.stat().st_size == size, "nothing was written over it"
    assert system.registry("rebuild").code == 0
    assert system.counts() == {"nsx": ["python3-nsx-a"]}


def test_a_new_database_appears_whole(system: System, tmp_path: Path) -> None:
    """The schema is committed beside the database and renamed into place: a kill at any
    moment leaves no database or a whole one, never an empty file read as an empty registry."""
    db = system.root / DB
    db.parent.mkdir(parents=True)
    (db.parent / (db.name + ".new")).write_bytes(b"left by a killed run")
    a, _ = stage_ab(system, tmp_path)
    assert system.install(a).code == 0
    assert system.counts() == {"nsx": ["python3-nsx-a"]}
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name, db.name + ".lock"]


def test_database_directory_leaving_the_root_is_refused(system: System, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (system.root / "var").symlink_to(outside)
    a, _ = stage_ab(system, tmp_path)
    result = system.install(a)
    assert result.code == 3
    assert "outside --root" in result.err
    assert list(outside.iterdir()) == []
