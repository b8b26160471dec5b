"""Engines run the task function (``analyse.analyse_path``) over many artifacts and hand every
record back to the coordinator, which alone writes the index. Artifacts go several to a task
(``analyse_batch``), handed out by :class:`Batches`: large tasks while much is left, so that
scheduling and messaging cost little beside the work, smaller ones at the end, so that the
workers finish together. A task that fails is split, each of its artifacts retried in a task
of its own.

- :class:`LocalEngine`: worker processes on this machine (``--jobs N``). A worker that dies
  (killed, out of memory) breaks the pool; the engine starts a new one and submits again what
  was in flight. An artifact in flight at :data:`MAX_ATTEMPTS` such deaths is given up and
  recorded as refused, so a file that crashes its reader cannot stall a run.
- :class:`DaskEngine`: the same function on an existing Dask distributed cluster
  (``--scheduler ADDRESS``). A task whose worker is lost is run again elsewhere by the
  scheduler; one that took ``distributed.scheduler.allowed-failures`` workers with it raises
  ``KilledWorker`` and is recorded as refused. Any other failure of a task means the workers
  cannot run the analysis at all (the task function never raises for an artifact): the run
  stops with exit 4 and records nothing for it, rather than mark good artifacts refused.
  Workers open the artifacts by path: the SOURCEs must be visible at the same paths on every
  worker (one machine, or a shared file system).

Both keep a bounded number of tasks in flight, so memory does not grow with the archive.
Records come back in completion order; the index does not depend on it.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import signal
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..errors import ApplyError, UsageError

MAX_ATTEMPTS = 3


def default_jobs() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def refused_record(path: str, reason: str) -> dict[str, Any]:
    """The record of an artifact no worker could analyse."""
    from .analyse import RECORD_FORMAT, file_sha256
    from .rows import storable_record

    try:
        digest, size, mtime = file_sha256(path)
    except Exception:  # noqa: BLE001 - then it is simply unreadable
        return storable_record({"format": RECORD_FORMAT, "path": path, "filename": os.path.basename(path),
                                "kind": None, "status": "unreadable", "reason": reason, "sha256": None})
    from .artifacts import artifact_kind

    name = os.path.basename(path)
    return storable_record({"format": RECORD_FORMAT, "path": path, "filename": name, "kind": artifact_kind(name),
                            "sha256": digest, "size": size, "mtime_ns": mtime, "status": "refused",
                            "reason": f"{name}: {reason}", "rows": {}})


MAX_BATCH = 256  # artifacts in one task, at most
BATCH_BYTES = 32 << 20  # and about this many bytes of them (one larger artifact goes alone)
GUIDE = 4  # a task takes at most 1/(GUIDE x workers) of what is left


class Batches:
    """The artifacts still to hand out, a task at a time ("guided" scheduling): a task takes
    1/(:data:`GUIDE` x workers) of what is left, at most :data:`MAX_BATCH` artifacts and about
    :data:`BATCH_BYTES`. On 10,000 small wheels and 2 workers that is 256 wheels a task (each
    task costs the coordinator, and a Dask scheduler, about a millisecond however large it
    is) down to one at the very end (no worker waits long for the last). Sizes are read as
    the tasks are made, not all up front; a file gone by then is the worker's to report."""

    def __init__(self, paths: Sequence[str], workers: int) -> None:
        self._paths = list(reversed(paths))
        self._workers = max(workers, 1)
        self._retries: list[list[str]] = []

    def __bool__(self) -> bool:
        return bool(self._paths or self._retries)

    def retry_alone(self, paths: Iterable[str]) -> None:
        """Hand each of these out again in a task of its own (before the rest)."""
        self._retries.extend([path] for path in paths)

    def next(self) -> list[str]:
        if self._retries:
            return self._retries.pop()
        share = max(1, min(MAX_BATCH, len(self._paths) // (GUIDE * self._workers)))
        batch: list[str] = []
        size = 0
        while self._paths and len(batch) < share and (not batch or size < BATCH_BYTES):
            path = self._paths[-1]
            try:
                size += os.lstat(path).st_size
            except OSError:
                pass
            if batch and size > BATCH_BYTES:
                break
            batch.append(self._paths.pop())
        return batch


BatchFunction = Callable[[list[str]], list[dict[str, Any]]]


class LocalEngine:
    def __init__(self, jobs: int | None = None, task: BatchFunction | None = None) -> None:
        self.jobs = jobs or default_jobs()
        if self.jobs < 1:
            raise UsageError("--jobs must be at least 1")
        self.task = task
        # forkserver: workers start from a clean process that has imported the analyses once,
        # not from the coordinator (which holds the index open). Its preload replaces the
        # default one, which would re-run ``python -m ns_strip``'s __main__. It is started
        # now, so that it imports them while the coordinator lists the artifacts and opens the
        # index, not after (that start is a serial part of every run).
        from .analyse import WORKER_MODULES

        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(list(WORKER_MODULES))
        multiprocessing.forkserver.ensure_running()

    def _pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(self.jobs, mp_context=self.context, initializer=_worker_start)

    def run(self, paths: Sequence[str]) -> Iterator[dict[str, Any]]:
        from .analyse import analyse_batch

        task = self.task or analyse_batch
        pending = Batches(paths, self.jobs)
        attempts: dict[str, int] = {}
        window = self.jobs * 4
        pool = self._pool()
        in_flight: dict[concurrent.futures.Future, list[str]] = {}
        try:
            while pending or in_flight:
                while pending and len(in_flight) < window:
                    batch = pending.next()
                    in_flight[pool.submit(task, batch)] = batch
                done, _ = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
                broken = False
                for future in done:
                    batch = in_flight.pop(future)
                    try:
                        records = future.result()
                    except BrokenProcessPool:
                        broken = True
                        in_flight[future] = batch  # settled below with the others
                        continue
                    except Exception as exc:  # noqa: BLE001 - the task never raises for an artifact
                        raise ApplyError(f"the worker processes cannot run the analysis ({type(exc).__name__}: "
                                         f"{exc}); what was indexed is kept") from exc
                    yield from records
                if broken:
                    # A worker died: every task in flight failed with it. Each of their
                    # artifacts goes again in a task of its own, so the one that kills its
                    # worker is found and given up, and the others are not blamed for it.
                    pool.shutdown(wait=True, cancel_futures=True)
                    for batch in in_flight.values():
                        for path in batch:
                            attempts[path] = attempts.get(path, 0) + 1
                            if attempts[path] >= MAX_ATTEMPTS:
                                yield refused_record(path, f"its analysis killed the worker process "
                                                           f"{attempts[path]} times")
                            else:
                                pending.retry_alone([path])
                    in_flight.clear()
                    pool = self._pool()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _worker_start() -> None:
    """In each local worker: Ctrl-C reaches the whole process group, but only the coordinator
    acts on it (it stops the pool; the index keeps what was committed), so workers ignore it
    rather than each printing a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_packed(task: BatchFunction, paths: list[str]) -> bytes:
    """On a Dask worker: the task's records as one pickle. Dask then moves a single bytes
    object (no walk of the records to size and serialise them, on the worker and again in
    the client, which is the coordinator): less CPU on both for the same records."""
    return pickle.dumps(task(paths), protocol=pickle.HIGHEST_PROTOCOL)


class DaskEngine:
    def __init__(self, address: str, task: BatchFunction | None = None, window: int | None = None) -> None:
        self.address = address
        self.task = task
        self.window = window

    def run(self, paths: Sequence[str]) -> Iterator[dict[str, Any]]:
        try:
            from distributed import Client, as_completed
        except ImportError:
            raise UsageError("--scheduler needs Dask: install ns-strip[dask] (or Debian's python3-distributed)") \
                from None
        from .analyse import analyse_batch

        task = self.task or analyse_batch
        try:
            client = Client(self.address, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"cannot reach the Dask scheduler ({exc})", self.address) from exc
        try:
            workers = max(len(client.scheduler_info().get("workers", {})), 1)
            window = self.window or workers * 4
            batches = Batches(paths, workers)
            run_id = uuid.uuid4().hex[:12]
            numbers = iter(range(1 << 62))
            batch_of: dict[str, list[str]] = {}

            def submit() -> Any:
                if not batches:
                    return None
                batch = batches.next()
                key = f"ns-strip-archive-{run_id}-{next(numbers)}"
                batch_of[key] = batch
                return client.submit(run_packed, task, batch, key=key, pure=False, retries=MAX_ATTEMPTS - 1)

            first = [future for future in (submit() for _ in range(window)) if future is not None]
            completed = as_completed(first, loop=client.loop)
            for future in completed:
                batch = batch_of.pop(future.key)
                if future.status == "finished":
                    yield from pickle.loads(future.result())
                elif len(batch) > 1:
                    # One of them may be what failed (or killed the workers): each again alone.
                    batches.retry_alone(batch)
                else:
                    error = future.exception()
                    if type(error).__name__ != "KilledWorker":
                        # The task function never raises for an artifact: the workers cannot run
                        # it (ns-strip missing there, another version...). Nothing is recorded.
                        raise ApplyError(f"the Dask workers cannot run the analysis ({type(error).__name__}: "
                                         f"{error}); what was indexed is kept", self.address)
                    yield refused_record(batch[0], "its analysis killed the Dask workers running it")
                future.release()
                while len(batch_of) < window:
                    following = submit()
                    if following is None:
                        break
                    completed.add(following)
        except (GeneratorExit, KeyboardInterrupt, ApplyError):
            raise
        except Exception as exc:  # noqa: BLE001 - the cluster's own failures, whatever Dask raises
            raise ApplyError(f"the Dask cluster failed ({type(exc).__name__}: {exc}); what was indexed is kept, "
                             "run the command again to resume", self.address) from exc
        finally:
            client.close()
