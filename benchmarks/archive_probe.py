"""Where the time of one ``archive index`` run goes: the breakdown behind the scaling rows of
``archive.py`` (what 2 workers can gain over 1 is bounded by what is serial or shared).

    python benchmarks/archive_probe.py DIR --jobs N [--scheduler ADDRESS --pids PID,...]

Runs the real coordinator (``indexer.index``) with the real engine and task function, the task
wrapped to report the CPU time of the thread that ran it, and prints one JSON object:

- ``wall``: the run, from the call of ``index`` (the interpreter's start and imports, the same
  for every run, are left out: ``archive.py``'s rows include them);
- ``coordinator_cpu``: the coordinator process's CPU time (listing, hand-out, receiving the
  records, writing the index); ``write_cpu`` the part spent in ``IndexStore.add_many``;
- ``task_cpu``: the CPU time of the analysis itself, summed over tasks (thread time);
- ``first_task``: seconds from the call until the first task started (start-up: the fork
  server, or the cluster's first message);
- ``cluster_cpu``: with ``--pids``, the CPU time each of those processes (Dask scheduler and
  workers) used during the run, read from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from ns_strip.archive.analyse import analyse_batch


def timed_batch(paths: list[str]) -> list[dict[str, Any]]:
    """The task function, reporting on its first record what the task cost (dropped before
    the records are written: the index is the same)."""
    started, thread_cpu = time.time(), time.thread_time()
    records = analyse_batch(paths)
    if records:
        records[0]["_probe"] = (time.thread_time() - thread_cpu, started)
    return records


def _process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("--db", required=True, help="a new index (removed first)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--scheduler", help="a Dask scheduler (its workers must import this module)")
    parser.add_argument("--pids", default="", help="processes whose CPU time to report (comma-separated)")
    args = parser.parse_args()

    # The task by its importable name (workers import it; this script itself is __main__).
    import archive_probe
    from ns_strip.archive.engines import DaskEngine, LocalEngine
    from ns_strip.archive.indexer import index
    from ns_strip.archive.store import IndexStore

    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(args.db + suffix):
            os.remove(args.db + suffix)
    pids = [int(pid) for pid in args.pids.split(",") if pid]
    tasks: list[tuple[float, float]] = []
    write_cpu = [0.0]

    class Tap:
        """The engine, with the probe's numbers taken off the records."""

        def __init__(self, engine: Any) -> None:
            self.engine = engine

        def run(self, paths: Any) -> Any:
            for record in self.engine.run(paths):
                probe = record.pop("_probe", None)
                if probe is not None:
                    tasks.append(probe)
                yield record

    cluster_before = [_process_cpu(pid) for pid in pids]
    start, cpu = time.time(), time.process_time()
    engine = (DaskEngine(args.scheduler, archive_probe.timed_batch) if args.scheduler
              else LocalEngine(args.jobs, archive_probe.timed_batch))
    with IndexStore(args.db) as store:
        add_many = store.add_many

        def timed_add_many(records: Any) -> Any:
            before = time.process_time()
            try:
                return add_many(records)
            finally:
                write_cpu[0] += time.process_time() - before

        store.add_many = timed_add_many  # type: ignore[method-assign]
        summary = index(store, [args.source], Tap(engine))
    wall, coordinator_cpu = time.time() - start, time.process_time() - cpu
    print(json.dumps({
        "artifacts": summary.done, "tasks": len(tasks), "wall": round(wall, 3),
        "coordinator_cpu": round(coordinator_cpu, 3), "write_cpu": round(write_cpu[0], 3),
        "task_cpu": round(sum(cost for cost, _ in tasks), 3),
        "first_task": round(min((began for _, began in tasks), default=start) - start, 3),
        "cluster_cpu": [round(_process_cpu(pid) - before, 3) for pid, before in zip(pids, cluster_before)],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
