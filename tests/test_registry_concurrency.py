"""Several registry processes at once on one namespace: no lost update, the placeholder
exists exactly while the count is above zero."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from test_registry_support import System, ns_strip, portion

from ns_strip.registry import PLACEHOLDER

WORKERS = 8


def _registry_worker(barrier, root: str, argv: list[str], results) -> None:
    barrier.wait()  # start together, so the commands really overlap
    result = ns_strip("registry", argv[0], "--root", root, *argv[1:])
    results.put((argv[1], result.code, result.err))


def _run_together(root: Path, commands: list[list[str]]) -> None:
    context = multiprocessing.get_context("fork")  # real processes, each with its own connection
    barrier = context.Barrier(len(commands))
    results = context.Queue()
    processes = [context.Process(target=_registry_worker, args=(barrier, str(root), argv, results))
                 for argv in commands]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=300)
        assert process.exitcode == 0
    failures = [(name, code, err) for name, code, err in outcomes if code != 0]
    assert failures == []


@pytest.fixture
def packages(tmp_path: Path):
    system = System(tmp_path / "root")
    staged = [system.stage(f"python3-nsx-p{i}", portion("nsx", f"p{i}"), tmp_path) for i in range(2 * WORKERS)]
    for package in staged:
        system.install(package, register=False)
    return system, staged


def test_concurrent_adds_lose_no_update(packages) -> None:
    system, staged = packages
    _run_together(system.root, [["add", p.name, p.manifest, "--placeholders", "pkgutil"] for p in staged[:WORKERS]])
    assert system.counts() == {"nsx": sorted(p.name for p in staged[:WORKERS])}
    assert (system.site / "nsx" / "__init__.py").read_bytes() == PLACEHOLDER
    assert system.registry("verify").code == 0


def test_concurrent_adds_and_removes(packages) -> None:
    system, staged = packages
    first, second = staged[:WORKERS], staged[WORKERS:]
    for package in first:
        assert system.registry("add", package.name, package.manifest, "--placeholders", "pkgutil").code == 0
    # Half the processes bring new packages while the others take the old ones away.
    for package in first:
        system.uninstall(package, register=False)
    commands = [["remove", p.name] for p in first] + [
        ["add", p.name, p.manifest, "--placeholders", "pkgutil"] for p in second
    ]
    _run_together(system.root, commands)
    assert system.counts() == {"nsx": sorted(p.name for p in second)}
    assert (system.site / "nsx" / "__init__.py").read_bytes() == PLACEHOLDER
    assert system.registry("verify").code == 0

    for package in second:
        system.uninstall(package, register=False)
    _run_together(system.root, [["remove", p.name] for p in second])
    assert system.counts() == {}
    assert system.tree() == []
