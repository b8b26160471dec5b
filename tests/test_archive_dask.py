"""``archive index --scheduler`` on a real Dask cluster: a scheduler and workers as separate
processes on 127.0.0.1 (their own CLIs), the coordinator a process of its own.

Faults: a worker killed mid-index (its tasks run again on the other), the coordinator killed
mid-index and the command run again (it resumes). In every case the final index equals a local
run's, compared canonically (sha256 for row ids, rows sorted): nothing lost, nothing doubled.

To be able to kill in the middle, the fault runs use :func:`slow_analyse` (the real task
function after a short sleep), importable on the workers through PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_archive_support import NSPKG_LINE, PKGUTIL_INIT, deb, run_archive, sdist, wheel

from ns_strip.archive.store import IndexStore

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
SLOW_SECONDS = 0.05

try:
    import distributed  # noqa: F401
except ImportError:  # pragma: no cover - CI installs it (.ci/setup.d/60-archive.sh)
    if os.environ.get("CI"):
        raise
    pytest.skip("Dask distributed is not installed (pip install ns-strip[dask])", allow_module_level=True)


def slow_analyse(paths: list[str]) -> list[dict]:
    """The task function, slowed down so that a test can kill something while it runs."""
    from ns_strip.archive.analyse import analyse_batch

    time.sleep(SLOW_SECONDS * len(paths))
    return analyse_batch(paths)


def _env() -> dict[str, str]:
    paths = [str(TESTS), str(SRC), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


class Cluster:
    """A scheduler and ``workers`` worker processes (no nanny: killing one kills the worker)."""

    def __init__(self, directory: Path, workers: int) -> None:
        self.file = directory / "scheduler.json"
        self.logs = directory
        self.workers: list[subprocess.Popen] = []
        self.scheduler = self._start("scheduler", [
            "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
            "--scheduler-file", str(self.file)])
        try:
            deadline = time.monotonic() + 60
            while not self._written():
                assert time.monotonic() < deadline, (self.logs / "scheduler.log").read_text()
                time.sleep(0.1)
            self.workers = [self.add_worker(n) for n in range(workers)]
            self.wait_for(workers)
        except BaseException:
            self.close()  # nothing is left running when the cluster cannot start
            raise

    def _written(self) -> bool:
        try:
            return "address" in json.loads(self.file.read_text())
        except (OSError, ValueError):
            return False

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        return subprocess.Popen([sys.executable, "-m", *argv], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_env(), start_new_session=True)

    def add_worker(self, number: int) -> subprocess.Popen:
        return self._start(f"worker{number}", [
            "distributed.cli.dask_worker", "--scheduler-file", str(self.file), "--nthreads", "1", "--no-nanny",
            "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{number}-{time.monotonic_ns()}"])

    @property
    def address(self) -> str:
        return json.loads(self.file.read_text())["address"]

    def wait_for(self, workers: int) -> None:
        from distributed import Client

        with Client(self.address, timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)

    def close(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(tmp_path, workers=2)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dask-archive")
    for number in range(120):
        files = {f"ns{number % 4}/p{number}/__init__.py": f"N = {number}\n"}
        if number % 3 == 0:
            files[f"ns{number % 4}/__init__.py"] = PKGUTIL_INIT
        wheel(root / "w", f"proj{number}", files)
    wheel(root / "w", "evil", {"../evil.py": "x"})
    sdist(root / "s", "src-proj", "1.0", {"src/srcproj/__init__.py": ""})
    deb(root / "d", "python3-zope.d", {"zope/d/__init__.py": "", "zope.d-1.0-nspkg.pth": NSPKG_LINE.format(ns="zope")},
        dist_name="zope.d")
    return root


@pytest.fixture(scope="module")
def reference(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The index of an uninterrupted local run."""
    db = tmp_path_factory.mktemp("reference") / "index.sqlite"
    result = run_archive("index", str(archive), "--db", str(db), "--jobs", "2")
    assert result.returncode == 0, result.stderr
    with IndexStore(db, create=False) as store:
        content = store.canonical()
    assert len(content["artifacts"]) == 123
    return content


def _coordinator(archive: Path, db: Path, address: str, slow: bool) -> subprocess.Popen:
    """The coordinator as its own process: the command itself, or (slow) the same index()
    with the slowed task function."""
    if slow:
        code = ("import sys; from ns_strip.archive.engines import DaskEngine; from ns_strip.archive.indexer import index;"
                "from ns_strip.archive.store import IndexStore; from test_archive_dask import slow_analyse;"
                "store = IndexStore(sys.argv[2]); s = index(store, [sys.argv[1]], DaskEngine(sys.argv[3], slow_analyse));"
                "store.close(); print(s.indexed, len(s.refused), s.duplicates)")
        argv = [sys.executable, "-c", code, str(archive), str(db), address]
    else:
        argv = [sys.executable, "-m", "ns_strip", "archive", "index", str(archive), "--db", str(db),
                "--scheduler", address, "--json"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _indexed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return connection.execute("SELECT count(*) FROM artifacts").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the schema is not there yet


def _wait_until_indexed(db: Path, process: subprocess.Popen, at_least: int) -> int:
    deadline = time.monotonic() + 120
    while True:
        count = _indexed(db)
        if count >= at_least:
            return count
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the index did not grow"
        time.sleep(0.05)


def _canonical(db: Path) -> dict:
    with IndexStore(db, create=False) as store:
        return store.canonical()


def test_dask_index_equals_local_index(cluster: Cluster, archive: Path, reference: dict, tmp_path: Path) -> None:
    db = tmp_path / "dask.sqlite"
    coordinator = _coordinator(archive, db, cluster.address, slow=False)
    out, err = coordinator.communicate(timeout=300)
    assert coordinator.returncode == 0, err
    summary = json.loads(out)
    assert summary["indexed"] == 122 and summary["refused"] == 1
    assert _canonical(db) == reference


def test_killed_worker_tasks_run_again_elsewhere(cluster: Cluster, archive: Path, reference: dict,
                                                 tmp_path: Path) -> None:
    db = tmp_path / "dask.sqlite"
    coordinator = _coordinator(archive, db, cluster.address, slow=True)
    seen = _wait_until_indexed(db, coordinator, 20)
    assert seen < 123, "the run ended before the worker could be killed"
    victim = cluster.workers[0]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    out, err = coordinator.communicate(timeout=300)
    assert coordinator.returncode == 0, err
    assert "Traceback" not in err
    assert _canonical(db) == reference


def test_killed_coordinator_resumes_to_the_same_index(cluster: Cluster, archive: Path, reference: dict,
                                                      tmp_path: Path) -> None:
    db = tmp_path / "dask.sqlite"
    coordinator = _coordinator(archive, db, cluster.address, slow=True)
    seen = _wait_until_indexed(db, coordinator, 20)
    os.killpg(coordinator.pid, signal.SIGKILL)
    coordinator.wait(timeout=30)
    partial = _indexed(db)
    assert seen <= partial < 123, "the coordinator finished before it could be killed"
    resumed = _coordinator(archive, db, cluster.address, slow=False)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    summary = json.loads(out)
    assert summary["skipped"] == partial and summary["duplicates"] == 0
    assert summary["indexed"] + summary["refused"] == 123 - partial
    assert _canonical(db) == reference


def test_unreachable_scheduler_is_a_usage_error(archive: Path, tmp_path: Path) -> None:
    result = run_archive("index", str(archive / "s"), "--db", str(tmp_path / "i.sqlite"),
                         "--scheduler", "tcp://127.0.0.1:9", timeout=120)
    assert result.returncode == 2, result.stderr
    assert "cannot reach the Dask scheduler" in result.stderr and "Traceback" not in result.stderr


DEBIAN_DASK = r"""
import json, sys
import distributed
from distributed import LocalCluster
from ns_strip.archive.engines import DaskEngine
from ns_strip.archive.indexer import index
from ns_strip.archive.store import IndexStore

if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        with IndexStore(sys.argv[2]) as store:
            summary = index(store, [sys.argv[1]], DaskEngine(cluster.scheduler_address))
    print(json.dumps({"version": distributed.__version__, "indexed": summary.indexed,
                      "refused": len(summary.refused)}))
"""


def test_debian_distributed_runs_the_same_engine(archive: Path, reference: dict, tmp_path: Path) -> None:
    """Debian 12's python3-distributed (2022.12), LocalCluster with worker processes."""
    python = os.environ.get("NS_STRIP_DEBIAN_DASK_PYTHON")
    if not python or not os.path.exists(python):
        if os.environ.get("CI"):
            pytest.fail("NS_STRIP_DEBIAN_DASK_PYTHON is not set up (.ci/setup.d/60-archive.sh)")
        pytest.skip("no venv of Debian's Python with python3-distributed (see .ci/setup.d/60-archive.sh)")
    script = tmp_path / "debian_dask.py"  # a file: LocalCluster's worker processes import __main__
    script.write_text(DEBIAN_DASK)
    db = tmp_path / "debian.sqlite"
    result = subprocess.run([python, str(script), str(archive), str(db)], capture_output=True, text=True,
                            timeout=600, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["version"].startswith("2022.12")
    assert summary["indexed"] == 122 and summary["refused"] == 1
    assert _canonical(db) == reference


def broken_analyse(paths: list[str]) -> list[dict]:
    """Workers that cannot run the analysis (as when ns-strip is missing there)."""
    raise ModuleNotFoundError("No module named 'ns_strip'")


def test_workers_that_cannot_analyse_stop_the_run_and_record_nothing(cluster: Cluster, archive: Path,
                                                                      tmp_path: Path) -> None:
    from ns_strip.archive.engines import DaskEngine
    from ns_strip.archive.indexer import index
    from ns_strip.errors import ApplyError

    with IndexStore(tmp_path / "i.sqlite") as store:
        with pytest.raises(ApplyError, match="cannot run the analysis .*ns_strip"):
            index(store, [str(archive / "w")], DaskEngine(cluster.address, broken_analyse))
        assert store.count("artifacts") == 0
