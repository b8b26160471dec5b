"""The registry as an attacker finds it: damaged databases, hand-edited rows, manifests that are
links or FIFOs, concurrent trigger runs and kill -9 in the middle of one.

Every case: the promised exit code, one line on stderr naming the file, never a traceback,
nothing outside the root changed (a sentinel beside it), bounded time and memory.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import Sentinel, assert_clean_exit, fingerprint, run_limited
from test_registry_support import MANIFEST_DIR, System, portion

from ns_strip.journal import KILL_AT_ENV

DB = "var/lib/ns-strip/registry.sqlite3"


@pytest.fixture
def world(tmp_path: Path) -> tuple[System, Sentinel]:
    """A root with two packages of namespace nsx installed and registered, and a sentinel."""
    system = System(tmp_path / "root")
    for name, module in (("python3-nsx-a", "a"), ("python3-nsx-b", "b")):
        package = system.stage(name, portion("nsx", module), tmp_path)
        assert system.install(package, "pkgutil").code == 0
    return system, Sentinel(tmp_path / "outside")


def registry(system: System, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_limited("registry", argv[0], "--root", str(system.root), *argv[1:], env=env or None)


def assert_refused(result: subprocess.CompletedProcess[str], names: str, *words: str) -> None:
    assert_clean_exit(result, {3})
    assert names in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


def edit_db(system: System, *statements: str) -> None:
    connection = sqlite3.connect(system.root / DB)
    with connection:
        for statement in statements:
            connection.execute(statement)
    connection.close()


@pytest.mark.parametrize("portions", ["{not json", "42", '"a string"', '[1, 2]', '["../escape"]', "null"])
def test_a_row_of_bad_json_is_refused_naming_the_database(world, portions: str) -> None:
    system, sentinel = world
    edit_db(system, f"UPDATE contributions SET portions = '{portions}' WHERE package = 'python3-nsx-a'")
    for action in (["verify"], ["verify", "--repair"]):
        assert_refused(registry(system, *action), str(system.root / DB), "registry rebuild")
    sentinel.assert_unchanged()


@pytest.mark.parametrize("statement", [
    "UPDATE packages SET site_dir = 42",
    "UPDATE contributions SET portions = X'5b5d'",
    "UPDATE contributions SET directory = X'6e7378'",
    "UPDATE contributions SET directory = '../../../etc'",
    "UPDATE contributions SET directory = '/etc'",
    "UPDATE contributions SET directory = 'nsx/./x'",
    "UPDATE created SET path = 'nsx/../../outside/__init__.py'",
    "INSERT INTO pending VALUES ('/usr/lib/python3/dist-packages', '..')",
])
def test_a_row_of_another_type_or_a_path_out_of_its_site_dir_is_refused(world, statement: str) -> None:
    system, sentinel = world
    edit_db(system, statement)
    for action in (["list"], ["verify", "--repair"], ["remove", "python3-nsx-a"], ["sync"]):
        assert_refused(registry(system, *action), str(system.root / DB), "registry rebuild")
    assert system.tree() == ["nsx/", "nsx/__init__.py", "nsx/a/", "nsx/a/__init__.py", "nsx/b/", "nsx/b/__init__.py"]
    sentinel.assert_unchanged()


@pytest.mark.parametrize("table", ["packages", "contributions", "created", "pending"])
def test_a_table_of_other_columns_is_refused(world, table: str) -> None:
    system, sentinel = world
    edit_db(system, f"DROP TABLE {table}", f"CREATE TABLE {table} (name TEXT, extra TEXT, more TEXT)",
            f"INSERT INTO {table} VALUES ('x', 'y', 'z')")
    for action in (["list"], ["verify"], ["remove", "python3-nsx-a"], ["sync"]):
        assert_refused(registry(system, *action), str(system.root / DB), f"table {table} has the columns")
    sentinel.assert_unchanged()


@pytest.mark.parametrize("size", [0, 1])
def test_a_truncated_database_is_not_an_empty_registry(world, size: int) -> None:
    system, sentinel = world
    db = system.root / DB
    db.write_bytes(db.read_bytes()[:size])
    for action in (["list"], ["sync"], ["verify", "--repair"]):
        assert_refused(registry(system, *action), str(db), "'ns-strip registry rebuild'")
    assert db.stat().st_size == size
    assert (system.site / "nsx/__init__.py").is_file(), "nothing was settled from an empty registry"
    done = registry(system, "rebuild")
    assert_clean_exit(done, {0})
    assert system.counts() == {"nsx": ["python3-nsx-a", "python3-nsx-b"]}
    sentinel.assert_unchanged()


@pytest.mark.parametrize("site_dir", ["usr/lib/python3/dist-packages", "", "../../outside"])
def test_a_relative_site_dir_in_a_row_is_bad_input(world, site_dir: str) -> None:
    system, sentinel = world
    edit_db(system, f"UPDATE packages SET site_dir = '{site_dir}'",
            f"UPDATE contributions SET site_dir = '{site_dir}'", f"UPDATE created SET site_dir = '{site_dir}'")
    for action in (["verify"], ["remove", "python3-nsx-a"]):
        assert_refused(registry(system, *action), "relative site dir", "registry rebuild")
    sentinel.assert_unchanged()


def test_add_does_not_follow_a_manifest_link_out_of_the_root(world, tmp_path: Path) -> None:
    system, sentinel = world
    outside_manifest = sentinel.path / "sub" / "evil.json"
    real = (system.root / MANIFEST_DIR.lstrip("/") / "python3-nsx-a.json").read_text()
    outside_manifest.write_text(real.replace("python3-nsx-a", "python3-nsx-evil"))
    sentinel.before = fingerprint(sentinel.path)  # the file above is part of what must not change
    link = system.root / MANIFEST_DIR.lstrip("/") / "python3-nsx-evil.json"
    link.symlink_to(outside_manifest)
    done = registry(system, "add", "python3-nsx-evil", f"{MANIFEST_DIR}/python3-nsx-evil.json")
    assert_refused(done, "python3-nsx-evil.json")
    # A directory on the way that leads out is refused the same way.
    (system.root / "usr/share/evil").symlink_to(sentinel.path / "sub")
    done = registry(system, "add", "python3-nsx-evil", "/usr/share/evil/evil.json")
    assert_refused(done, "evil.json", "outside --root")
    # And sync, which reads every manifest of the directory, refuses the link too.
    assert_refused(registry(system, "sync"), "python3-nsx-evil.json")
    assert system.counts() == {"nsx": ["python3-nsx-a", "python3-nsx-b"]}
    sentinel.assert_unchanged()


def test_a_fifo_manifest_is_refused_without_waiting(world) -> None:
    system, sentinel = world
    os.mkfifo(system.root / MANIFEST_DIR.lstrip("/") / "python3-nsx-fifo.json")
    assert_refused(registry(system, "sync"), "python3-nsx-fifo.json", "FIFO")
    assert_refused(registry(system, "add", "python3-nsx-fifo", f"{MANIFEST_DIR}/python3-nsx-fifo.json"),
                   "python3-nsx-fifo.json", "FIFO")
    sentinel.assert_unchanged()


def test_a_database_link_out_of_the_root_is_refused(world) -> None:
    system, sentinel = world
    db = system.root / DB
    db.unlink()
    db.symlink_to(sentinel.path / "precious.txt")
    for action in (["sync"], ["remove", "python3-nsx-a"], ["rebuild"]):
        assert_clean_exit(registry(system, *action), {3})
    sentinel.assert_unchanged()


def test_a_manifest_naming_a_site_dir_out_of_the_root_is_refused(world, tmp_path: Path) -> None:
    system, sentinel = world
    (system.root / "usr/lib/evil").symlink_to(sentinel.path)
    manifest = system.root / MANIFEST_DIR.lstrip("/") / "python3-nsx-a.json"
    manifest.write_text(manifest.read_text().replace('"/usr/lib/python3/dist-packages"', '"/usr/lib/evil"'))
    assert_refused(registry(system, "sync"), "outside --root")
    sentinel.assert_unchanged()


def _manifests_of(system: System, tmp_path: Path, count: int) -> None:
    for number in range(count):
        package = system.stage(f"python3-nsy-{number}", portion("nsy", f"m{number}"), tmp_path)
        system.install(package, register=False)


def test_concurrent_trigger_runs_end_in_one_consistent_registry(tmp_path: Path) -> None:
    """dpkg runs one trigger at a time, but apt, a second dpkg frontend and a hand-run sync may
    meet: several syncs at once serialise on the registry lock and agree."""
    system = System(tmp_path / "root")
    sentinel = Sentinel(tmp_path / "outside")
    _manifests_of(system, tmp_path, 12)
    command = [sys.executable, "-m", "ns_strip", "registry", "sync", "--root", str(system.root), "--json"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(6)]
    results = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, results
    assert all("Traceback" not in err for _, err in results)
    added = sorted(name for out, _ in results for name in json.loads(out)["added"])
    assert added == sorted(f"python3-nsy-{n}" for n in range(12)), "each package registered exactly once"
    assert system.counts() == {"nsy": sorted(f"python3-nsy-{n}" for n in range(12))}
    verify = registry(system, "verify")
    assert_clean_exit(verify, {0})
    sentinel.assert_unchanged()


def _kill_scenario(root: Path, work: Path) -> System:
    """Three packages, one with placeholders, then one manifest gone and two new: a sync has
    registrations, an unregistration and placeholder steps to do."""
    system = System(root)
    packages = [system.stage(f"python3-nsz-{n}", portion("nsz", f"m{n}"), work,
                             extra=("--placeholders", "pkgutil") if n == 0 else ()) for n in range(5)]
    for package in packages[:3]:
        system.install(package, register=False)
    assert registry(system, "sync").returncode == 0
    system.uninstall(packages[0], register=False)
    for package in packages[3:]:
        system.install(package, register=False)
    return system


def test_kill_9_at_every_step_of_a_trigger_sync(tmp_path: Path) -> None:
    reference = _kill_scenario(tmp_path / "reference" / "root", tmp_path / "reference")
    assert_clean_exit(registry(reference, "sync"), {0})
    expected = (reference.counts(), reference.tree())
    assert expected[0] == {"nsz": ["python3-nsz-1", "python3-nsz-2", "python3-nsz-3", "python3-nsz-4"]}
    interrupted = 0
    for kill_at in range(1, 40):
        work = tmp_path / str(kill_at)
        system = _kill_scenario(work / "root", work)
        done = registry(system, "sync", **{KILL_AT_ENV: str(kill_at)})
        if done.returncode == 0:
            break  # past the last step: the run finished
        assert done.returncode == -signal.SIGKILL, done.stderr
        interrupted += 1
        # The next trigger run finishes the job, whatever moment the kill hit.
        again = registry(system, "sync")
        assert_clean_exit(again, {0})
        assert (system.counts(), system.tree()) == expected, kill_at
        assert_clean_exit(registry(system, "verify"), {0})
    else:
        pytest.fail("the sync never finished")
    assert interrupted >= 3, "the kill hook met too few steps"
