"""Registry throughput: add/remove operations per second, in one process or several at once.

    python benchmarks/registry_driver.py ns-strip|sqlite3 DIR --ops N --processes P

Starts P worker processes; each does N operations (an ``add`` of a package, then its
``remove``, alternately) once every worker is ready, so interpreter start-up is not timed.
Prints the seconds from the start signal to the last worker's end on its last line.

``ns-strip`` drives ``ns_strip.registry.Registry`` as ``ns-strip registry add|remove`` does,
one registry session per operation, against a staged root in DIR. ``sqlite3`` is the floor
under it: one connection and one durable (``synchronous=FULL``) transaction per operation,
inserting or deleting the same rows, with no lock file and no file-system bookkeeping.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SITE_DIR = "/usr/lib/python3/dist-packages"
DB = "/var/lib/ns-strip/registry.sqlite3"
NAMESPACES = ["benchns", "benchns/plugins"]


class Unavailable(Exception):
    pass


def ns_strip_operations(directory: Path, worker: int) -> tuple[Callable[[int], None], Callable[[int], None]]:
    try:
        from ns_strip.manifest import Manifest
        from ns_strip.registry import Registry
    except ImportError as exc:
        raise Unavailable(f"ns_strip.registry cannot be imported: {exc}") from exc
    site = directory / SITE_DIR.lstrip("/")
    for namespace in NAMESPACES:
        (site / namespace).mkdir(parents=True, exist_ok=True)
    registry = Registry(root=str(directory), db=DB)

    def manifest(number: int) -> Manifest:
        package = f"bench-{worker}-{number}"
        portion = f"portion_{worker}_{number}"
        return Manifest(
            package=package, site_dir=SITE_DIR, namespaces=list(NAMESPACES),
            portions={"benchns": ["plugins"], "benchns/plugins": [portion]},
            owned_dirs=[f"benchns/plugins/{portion}"], shared_dirs=[], loose_files=[], distributions=[package],
        )

    def add(number: int) -> None:
        registry.add(manifest(number), f"/usr/share/ns-strip/manifests/bench-{worker}-{number}.json", "0" * 64, "none")

    def remove(number: int) -> None:
        registry.remove(f"bench-{worker}-{number}")

    return add, remove


def sqlite3_operations(directory: Path, worker: int) -> tuple[Callable[[int], None], Callable[[int], None]]:
    db = directory / DB.lstrip("/")
    db.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(db, timeout=120, isolation_level=None)
    connection.execute(
        "CREATE TABLE IF NOT EXISTS contributions (site_dir TEXT, directory TEXT, package TEXT, portions TEXT,"
        " PRIMARY KEY (site_dir, directory, package))"
    )
    connection.close()

    def transaction(statements: list[tuple[str, tuple[str, ...]]]) -> None:
        connection = sqlite3.connect(db, timeout=120, isolation_level=None)
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("BEGIN IMMEDIATE")
        for sql, parameters in statements:
            connection.execute(sql, parameters)
        connection.execute("COMMIT")
        connection.close()

    def add(number: int) -> None:
        package = f"bench-{worker}-{number}"
        transaction([("INSERT INTO contributions VALUES (?, ?, ?, '[]')", (SITE_DIR, d, package)) for d in NAMESPACES])

    def remove(number: int) -> None:
        transaction([("DELETE FROM contributions WHERE package = ?", (f"bench-{worker}-{number}",))])

    return add, remove


OPERATIONS = {"ns-strip": ns_strip_operations, "sqlite3": sqlite3_operations}


def work(mode: str, directory: Path, worker: int, ops: int) -> None:
    """One worker: prepare, say ready, wait for the start line, run the operations."""
    add, remove = OPERATIONS[mode](directory, worker)
    print("ready", flush=True)
    sys.stdin.readline()
    for number in range(ops // 2):
        add(number)
        remove(number)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=sorted(OPERATIONS))
    parser.add_argument("directory", type=Path)
    parser.add_argument("--ops", type=int, default=2000, help="operations per process")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        try:
            work(args.mode, args.directory, args.worker, args.ops)
        except Unavailable as exc:
            print(f"not available: {exc}", file=sys.stderr)
            return 3
        return 0

    workers = [
        subprocess.Popen(
            [sys.executable, __file__, args.mode, str(args.directory), "--ops", str(args.ops), "--worker", str(n)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for n in range(args.processes)
    ]
    for worker in workers:
        if worker.stdout.readline().strip() != "ready":
            for other in workers:
                other.kill()
            return 3
    start = time.perf_counter()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    failed = [worker.wait() for worker in workers]
    elapsed = time.perf_counter() - start
    if any(failed):
        print(f"a worker failed: exit codes {failed}", file=sys.stderr)
        return 1
    print(f"{elapsed:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
