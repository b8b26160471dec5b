"""kill -9 at every step of registry add, remove and rebuild: afterwards the database opens,
verify tells an interrupted command (NS510) from a finished or never-started one, and the next
run settles everything into the state an uninterrupted run leaves."""

from __future__ import annotations

import itertools
import shutil
import signal
from pathlib import Path

import pytest
from test_registry_support import System, ns_strip_process, portion

from ns_strip.journal import KILL_AT_ENV
from ns_strip.registry import PLACEHOLDER


def _first_package(root: Path, workdir: Path) -> tuple[System, list[str]]:
    system = System(root)
    a = system.stage("python3-nsx-a", portion("nsx", "a"), workdir)
    system.install(a, register=False)
    return system, ["add", "python3-nsx-a", a.manifest, "--placeholders", "pkgutil"]


def _last_package_leaves(root: Path, workdir: Path) -> tuple[System, list[str]]:
    system = System(root)
    a = system.stage("python3-nsx-a", {**portion("nsx.inner", "a"), "nsx/mod.py": "M = 1\n"}, workdir)
    assert system.install(a, "pkgutil").code == 0
    assert system.python("import nsx.inner.a, nsx.mod").returncode == 0  # bytecode everywhere
    system.uninstall(a, register=False, clean_bytecode=False)
    # The package's own directory is the package manager's to clean (py3clean, RPM); the
    # bytecode left in the namespace directories is the registry's.
    shutil.rmtree(system.site / "nsx" / "inner" / "a")
    return system, ["remove", "python3-nsx-a"]


def _rebuild(root: Path, workdir: Path) -> tuple[System, list[str]]:
    system = System(root)
    a = system.stage("python3-nsx-a", portion("nsx", "a"), workdir)
    b = system.stage("python3-nsx-b", portion("nsx", "b"), workdir)
    system.install(a, "pkgutil")
    system.install(b, "pkgutil")
    (system.root / "var/lib/ns-strip/registry.sqlite3").unlink()
    (system.site / "nsx" / "__init__.py").unlink()  # and a placeholder lost with it
    return system, ["rebuild", "--placeholders", "pkgutil"]


def _holds_placeholder(system: System) -> None:
    assert system.tree() == ["nsx/", "nsx/__init__.py", "nsx/a/", "nsx/a/__init__.py"]
    assert (system.site / "nsx" / "__init__.py").read_bytes() == PLACEHOLDER
    assert system.counts() == {"nsx": ["python3-nsx-a"]}


def _nothing_left(system: System) -> None:
    assert system.tree() == []
    assert system.counts() == {}


def _both_registered(system: System) -> None:
    assert system.counts() == {"nsx": ["python3-nsx-a", "python3-nsx-b"]}
    assert (system.site / "nsx" / "__init__.py").read_bytes() == PLACEHOLDER


SCENARIOS = {
    "add-first-package": (_first_package, _holds_placeholder),
    "remove-last-package": (_last_package_leaves, _nothing_left),
    "rebuild": (_rebuild, _both_registered),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_kill_at_every_step(tmp_path: Path, scenario: str) -> None:
    prepare, expect = SCENARIOS[scenario]
    seen_interrupted = 0
    for kill_at in itertools.count(1):
        assert kill_at < 60, "the command never finished"
        work = tmp_path / str(kill_at)
        system, argv = prepare(work / "root", work)
        command = ["registry", argv[0], "--root", str(system.root), *argv[1:]]
        # Drift before the command (a package whose files the package manager already deleted).
        baseline = set(system.registry_json("verify").codes()) if argv[0] != "rebuild" else set()
        run = ns_strip_process(*command, **{KILL_AT_ENV: str(kill_at)})
        if run.returncode == 0:
            expect(system)
            assert system.registry("verify").code == 0
            break
        assert run.returncode == -signal.SIGKILL, run.stderr

        verify = system.registry_json("verify")
        assert verify.code in (0, 1), verify.err
        assert set(verify.codes()) <= baseline | {"NS510"}, verify.out
        seen_interrupted += "NS510" in verify.codes()

        if kill_at % 2:  # settle by 'verify --repair' first; otherwise the re-run settles itself
            repaired = system.registry_json("verify", "--repair")
            assert set(repaired.codes()) <= baseline, repaired.out + repaired.err
        again = system.registry(*argv)
        assert again.code == 0, again.err
        expect(system)
        assert system.registry("verify").code == 0
    assert kill_at > 3
    assert seen_interrupted, "no kill landed between the first commit and the last"


def test_next_command_finishes_an_interrupted_one(tmp_path: Path) -> None:
    """Another package's postinst, not a re-run, completes what a killed command left."""
    system, argv = _first_package(tmp_path / "root", tmp_path)
    b = system.stage("python3-nsx-b", portion("nsx", "b"), tmp_path)
    system.install(b, register=False)
    # Steps: 1 before commit, 2 after it, 3 before creating, 4 after the temporary file.
    killed = ns_strip_process("registry", argv[0], "--root", str(system.root), *argv[1:], **{KILL_AT_ENV: "4"})
    assert killed.returncode == -signal.SIGKILL
    assert not (system.site / "nsx" / "__init__.py").exists()
    assert system.registry_json("verify").codes() == ["NS510"]

    result = system.registry("add", "python3-nsx-b", b.manifest)
    assert result.code == 0, result.err
    assert "Finished an interrupted registry command" in result.out
    assert (system.site / "nsx" / "__init__.py").read_bytes() == PLACEHOLDER
    assert not (system.site / "nsx" / "__init__.py.ns-strip-tmp").exists()
    assert system.registry("verify").code == 0


