"""Benchmarks of ``ns-strip archive``, as ratios in one run (the harness of run.py).

    python benchmarks/archive.py                 # 10,000 generated wheels, Dask, 1,000 .so
    python benchmarks/archive.py --quick         # 300 wheels: a smoke run
    python benchmarks/archive.py --real benchmarks/data/archive-sample   # and the real sample

Rows (goals from issue 15):

- index N generated wheels, 1 local process, against the floor of any wheel analysis: one
  Python process reading every wheel's zip directory, METADATA and RECORD with zipfile.
  Goal: at least 200 wheels per second per core, peak memory flat (under run.py's limit).
- the same with 2 processes against 1 process: goal 2 workers >= 1.8x one (ratio <= 0.56).
- Dask: a real cluster (``dask scheduler`` and ``dask worker`` processes on 127.0.0.1), 2
  workers against 1 worker (the same goal), and 1 Dask worker against 1 local process (info:
  what the cluster's scheduling costs).
- the real sample (wheels and .debs), 2 processes against 1.
- report over the N-wheel index against reading every files row once with sqlite3: goal
  linear in the archive, "10,000 artifacts in about a second" (rate >= 5,000 artifacts/s).
- where the time goes (``archive_probe.py``, after the rows, one run of each engine on the
  N wheels): per artifact, the analysis's CPU time (the task thread), the coordinator's
  (and of it the index writes), the time to the first task, and with Dask the scheduler's
  and the workers' CPU time outside the tasks. The harness's CPU column cannot say this: it
  is the coordinator's alone (local workers are children of the fork server).
- phase 2: ``binfmt.elf.find_exports`` (PyInit_<name> looked up through the ELF hash table)
  over 1,000 real extensions against ``readelf --dyn-syms``: goal <= 2x.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as harness  # noqa: E402  (the sibling harness: Row, Side, Goal, measure, table)

HERE = Path(__file__).resolve().parent
NS_STRIP = [sys.executable, "-m", "ns_strip"]

BASELINE_READ = r"""
import os, sys, zipfile
count = 0
for directory, _, files in os.walk(sys.argv[1]):
    for name in files:
        if not name.endswith(".whl"):
            continue
        with zipfile.ZipFile(os.path.join(directory, name)) as archive:
            names = archive.namelist()
            dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
            archive.read(f"{dist_info}/METADATA")
            archive.read(f"{dist_info}/RECORD")
            count += 1
print(count)
"""

FIND_EXPORTS = r"""
import os, sys
from ns_strip.binfmt._reader import Reader
from ns_strip.binfmt.elf import find_exports
found = 0
for directory, _, files in os.walk(sys.argv[1]):
    for name in files:
        if name.endswith(".so"):
            with open(os.path.join(directory, name), "rb") as stream:
                found += len(find_exports(Reader(stream), ("PyInit_" + name.split(".")[0],)))
print(found)
"""

BASELINE_ROWS = r"""
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(sum(1 for _ in db.execute("SELECT * FROM files")), sum(1 for _ in db.execute("SELECT * FROM namespaces")))
"""

PKGUTIL = b"__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
PKG_RESOURCES = b"__import__('pkg_resources').declare_namespace(__name__)\n"


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def generate_wheels(directory: Path, count: int) -> Path:
    """``count`` small wheels, typical of an index: a module or two, a package, a quarter of
    them portions of one of 50 namespaces of every style. Cached: made once per count."""
    target = directory / f"archive-wheels-{count}"
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for number in range(count):
        name = f"proj{number:05d}"
        dist_info = f"{name}-1.{number % 7}.dist-info"
        members: dict[str, bytes] = {}
        style = number % 8
        if style < 2:
            namespace = f"ns{number % 50}"
            package = f"{namespace}/{name}"
            if style == 0:
                members[f"{namespace}/__init__.py"] = PKGUTIL if number % 3 else PKG_RESOURCES
        else:
            package = name
        members[f"{package}/__init__.py"] = f'"""{name}."""\n__version__ = "1.{number % 7}"\n'.encode()
        members[f"{package}/core.py"] = (f"def value():\n    return {number}\n" * 20).encode()
        members[f"{package}/util.py"] = b"import os\n\n\ndef here():\n    return os.getcwd()\n" * 10
        members[f"{dist_info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.{number % 7}\n"
                                            f"Summary: generated\n\n{name}\n").encode()
        members[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        members[f"{dist_info}/top_level.txt"] = f"{package.split('/')[0]}\n".encode()
        rows = [f"{path},{_hash(data)},{len(data)}" for path, data in members.items()]
        rows.append(f"{dist_info}/RECORD,,")
        members[f"{dist_info}/RECORD"] = ("\n".join(rows) + "\n").encode()
        with zipfile.ZipFile(target / f"{name}-1.{number % 7}-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as z:
            for path, data in members.items():
                z.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), data)
    (target / ".complete").write_text("")
    return target


class DaskCluster:
    """A scheduler and worker processes on 127.0.0.1 for the Dask rows."""

    def __init__(self, directory: Path, workers: int) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix=f"dask{workers}-", dir=directory))
        self.file = self.directory / "scheduler.json"
        self.processes = [self._start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                      "--no-dashboard", "--scheduler-file", str(self.file))]
        try:
            deadline = time.monotonic() + 60
            while not self._address():
                if time.monotonic() > deadline:
                    raise harness.BenchmarkError("the Dask scheduler did not start")
                time.sleep(0.1)
            for number in range(workers):
                self.processes.append(self._start(
                    "distributed.cli.dask_worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                    "--no-nanny", "--no-dashboard", "--host", "127.0.0.1", "--name", f"bench-{number}"))
            from distributed import Client

            with Client(self.address, timeout="30s", set_as_default=False) as client:
                client.wait_for_workers(workers, timeout=60)
        except BaseException:
            self.close()  # nothing is left running when the cluster cannot start
            raise

    def _start(self, *argv: str) -> subprocess.Popen:
        # The workers can import archive_probe (the breakdown's task function) from here.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)}
        return subprocess.Popen([sys.executable, "-m", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)

    def _address(self) -> str | None:
        try:
            return json.loads(self.file.read_text())["address"]
        except (OSError, ValueError, KeyError):
            return None

    @property
    def address(self) -> str:
        address = self._address()
        assert address is not None
        return address

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def index_side(label: str, archive: Path, scratch: harness.Scratch, *engine: str) -> harness.Side:
    """``archive index`` into a fresh index each run (made untimed, removed after)."""

    def prepare() -> tuple[list[str], Callable[[], None]]:
        directory, clean_up = scratch.empty_dir()
        return [*NS_STRIP, "archive", "index", str(archive), "--db", str(directory / "index.sqlite"), "-q",
                *engine], clean_up

    return harness.Side(label, prepare)


def build_rows(count: int, data_dir: Path, scratch: harness.Scratch, real: Path | None, dask: bool,
               clusters: list[DaskCluster], elf: int = 0) -> list[harness.Row]:
    wheels = generate_wheels(data_dir, count)
    rows = [
        harness.Row(f"archive index {count:,} wheels, 1 process", index_side("index --jobs 1", wheels, scratch,
                                                                            "--jobs", "1"),
                    harness.Side.fixed("zipfile: directory+METADATA+RECORD", [sys.executable, "-c", BASELINE_READ,
                                                                            str(wheels)]),
                    harness.Goal(">= 200 wheels/s per core, flat memory", min_rate=200, memory=True),
                    operations=count),
        harness.Row(f"archive index {count:,} wheels, 2 vs 1 process",
                    index_side("index --jobs 2", wheels, scratch, "--jobs", "2"),
                    index_side("index --jobs 1", wheels, scratch, "--jobs", "1"),
                    harness.Goal("2 workers >= 1.8x one (<= 0.56x)", max_ratio=0.56, memory=True), operations=count),
    ]
    if dask:
        one, two = DaskCluster(data_dir, 1), DaskCluster(data_dir, 2)
        clusters += [one, two]
        rows += [
            harness.Row(f"archive index {count:,} wheels, Dask 2 vs 1 worker",
                        index_side("Dask, 2 workers", wheels, scratch, "--scheduler", two.address),
                        index_side("Dask, 1 worker", wheels, scratch, "--scheduler", one.address),
                        harness.Goal("2 workers >= 1.8x one (<= 0.56x)", max_ratio=0.56), operations=count),
            harness.Row(f"archive index {count:,} wheels, Dask 1 worker vs 1 process",
                        index_side("Dask, 1 worker", wheels, scratch, "--scheduler", one.address),
                        index_side("index --jobs 1", wheels, scratch, "--jobs", "1"),
                        harness.Goal("report"), operations=count),
        ]
    if real is not None:
        artifacts = sum(1 for p in real.rglob("*") if p.suffix in (".whl", ".deb"))
        rows.append(harness.Row(f"archive index real sample ({artifacts} wheels and .debs), 2 vs 1 process",
                                index_side("index --jobs 2", real, scratch, "--jobs", "2"),
                                index_side("index --jobs 1", real, scratch, "--jobs", "1"),
                                harness.Goal("2 workers >= 1.8x one (<= 0.56x)", max_ratio=0.56, memory=True),
                                operations=artifacts, repetitions=1, warm_up=False))
    if elf:
        import generate  # run.py's data generator (real extensions built by gcc)

        extensions = generate.extension_dir(data_dir, elf)
        readelf = f"find {extensions} -name '*.so' -print0 | xargs -0 readelf --dyn-syms -W"
        rows.append(harness.Row(f"PyInit lookup through the hash table, {elf:,} .so (phase 2)",
                                harness.Side.fixed("elf.find_exports", [sys.executable, "-c", FIND_EXPORTS,
                                                                        str(extensions)]),
                                harness.Side.fixed("readelf --dyn-syms -W", harness.shell(readelf)),
                                harness.Goal("<= 2x", max_ratio=2.0)))
    db = data_dir / f"archive-index-{count}.sqlite"
    if not db.exists():
        subprocess.run([*NS_STRIP, "archive", "index", str(wheels), "--db", str(db), "-q"], check=True,
                       stdout=subprocess.DEVNULL)
    rows.append(harness.Row(f"archive report, {count:,} artifacts",
                            harness.Side.fixed("archive report", [*NS_STRIP, "archive", "report", "--db", str(db), "-q"],
                                               ok=(0, 1)),
                            harness.Side.fixed("sqlite3: every files row", [sys.executable, "-c", BASELINE_ROWS,
                                                                            str(db)]),
                            harness.Goal("linear; 10,000 artifacts in ~1 s (>= 5,000/s)", min_rate=5000),
                            operations=count))
    return rows


def breakdown(archive: Path, scratch: harness.Scratch, clusters: list[DaskCluster]) -> list[dict]:
    """Where each engine's time goes on ``archive`` (``archive_probe.py``, one run each): what
    bounds the scaling rows. Taken after the timed rows, on the same data."""
    runs: list[tuple[str, list[str]]] = [("local, 1 process", ["--jobs", "1"]), ("local, 2 processes", ["--jobs", "2"])]
    for cluster in clusters:
        workers = len(cluster.processes) - 1
        pids = ",".join(str(process.pid) for process in cluster.processes)
        runs.append((f"Dask, {workers} worker{'s' if workers > 1 else ''}",
                     ["--scheduler", cluster.address, "--pids", pids]))
    results = []
    for label, engine in runs:
        directory, clean_up = scratch.empty_dir()
        try:
            output = subprocess.run([sys.executable, str(HERE / "archive_probe.py"), str(archive), "--db",
                                     str(directory / "index.sqlite"), *engine], check=True, capture_output=True,
                                    text=True).stdout
        finally:
            clean_up()
        results.append({"run": label, **json.loads(output.strip().splitlines()[-1])})
    return results


def print_breakdown(results: list[dict]) -> None:
    per = 1000 / max(results[0]["artifacts"], 1)
    print(f"\nwhere the time goes ({results[0]['artifacts']:,} artifacts; ms per artifact, CPU unless said; "
          "archive_probe.py):\n")
    header = ("run", "wall", "start", "tasks", "analysis", "coordinator", "of it: writes", "Dask scheduler",
              "Dask workers, not tasks")
    lines = []
    for r in results:
        cluster = r["cluster_cpu"]
        lines.append((r["run"], f"{r['wall'] * per:.3f}", f"{r['first_task']:.2f} s", str(r["tasks"]),
                      f"{r['task_cpu'] * per:.3f}", f"{r['coordinator_cpu'] * per:.3f}", f"{r['write_cpu'] * per:.3f}",
                      f"{cluster[0] * per:.3f}" if cluster else "",
                      f"{(sum(cluster[1:]) - r['task_cpu']) * per:.3f}" if cluster else ""))
    widths = [max(len(str(row[i])) for row in (header, *lines)) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    print(rule)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print(rule)
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)))
    print(rule)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 wheels, no real sample")
    parser.add_argument("--count", type=int, help="generated wheels (default 10,000; --quick 300)")
    parser.add_argument("--real", type=Path, help="the real sample's directory (benchmarks/archive_sample.py --dest)")
    parser.add_argument("--no-dask", action="store_true", help="leave out the Dask rows")
    parser.add_argument("--elf", type=int, metavar="N", help="extensions for the hash-table lookup row (default "
                        "1,000; --quick 20; 0: leave it out)")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--json", type=Path, metavar="FILE")
    parser.add_argument("--no-breakdown", action="store_true", help="leave out where the time goes (archive_probe.py)")
    args = parser.parse_args(argv)
    count = args.count or (300 if args.quick else 10_000)
    real = args.real

    def log(text: str) -> None:
        print(f"# {text}", file=sys.stderr, flush=True)

    args.data_dir.mkdir(parents=True, exist_ok=True)
    scratch = harness.Scratch(args.data_dir)
    clusters: list[DaskCluster] = []
    try:
        log(f"generating {count:,} wheels (cached after the first run)")
        elf = args.elf if args.elf is not None else (20 if args.quick else 1000)
        rows = build_rows(count, args.data_dir, scratch, real, not args.no_dask, clusters, elf)
        harness.run_rows(rows, 2 if args.quick else args.repetitions, log)
        if not args.no_breakdown:
            log("where the time goes (archive_probe.py)")
            parts = breakdown(generate_wheels(args.data_dir, count), scratch, clusters)
    finally:
        for cluster in clusters:
            cluster.close()
        scratch.close()
    harness.print_results(rows, args.json)
    if not args.no_breakdown:
        print_breakdown(parts)
        if args.json:
            data = json.loads(args.json.read_text())
            data["breakdown"] = parts
            args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
