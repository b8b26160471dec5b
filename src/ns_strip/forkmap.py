"""``[function(item) for item in items]`` split over forked processes, results in order.

For many small, independent reads (``ns-strip ext`` over a directory of extension modules)
once the imports are paid: a forked child starts with everything the parent has imported, so
splitting costs a fork and the pickled results, not a new interpreter. Nothing here is needed
for correctness: a child that fails in any way (an exception, a signal, a result that does not
unpickle) has its share computed again in the parent, so the answer, and any exception, is
the serial one.

Public API: :func:`fork_map`, :func:`available_cpus`, :func:`idle_cpus`.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TypeVar

    T = TypeVar("T")
    R = TypeVar("R")

# Below this many items per process a fork (about a millisecond for a process of ns-strip's
# size, plus pickling the results) costs more than it saves.
MIN_ITEMS_PER_PROCESS = 64
# The share of this process against a child's 1: measured on 1,000 small extensions, a child
# spends about a tenth of its time pickling what it found, the parent about a twentieth
# unpickling it (benchmarks/run.py --only ext).
PARENT_WEIGHT = 1.1


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, which a container or ``taskset``
    narrows), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def idle_cpus() -> int:
    """How many of :func:`available_cpus` nothing else is running on at this moment, at least
    1: those CPUs less the other tasks runnable now (the fourth field of ``/proc/loadavg``
    counts them, this process included). On a busy machine a forked child only adds work (the
    fork, pickling its results) to CPUs others are using: measured at two processes on a
    2-CPU machine running two other jobs, 101 ms against 95 ms for one process."""
    cpus = available_cpus()
    try:
        with open("/proc/loadavg", "rb") as loadavg:
            running = int(loadavg.read(256).split()[3].split(b"/")[0])
    except (OSError, IndexError, ValueError):
        return cpus
    return max(1, min(cpus, cpus - (running - 1)))


def fork_map(function: Callable[[T], R], items: Sequence[T], processes: int) -> list[R]:
    """``[function(item) for item in items]``, the items split into contiguous shares over at
    most ``processes`` processes (this one included), where ``os.fork`` exists and each share
    holds at least :data:`MIN_ITEMS_PER_PROCESS` items."""
    # As many processes as give every child at least MIN_ITEMS_PER_PROCESS items.
    processes = min(processes, int(len(items) / MIN_ITEMS_PER_PROCESS - PARENT_WEIGHT + 1))
    if processes <= 1 or not hasattr(os, "fork"):
        return [function(item) for item in items]
    # This process takes a larger share: a child pickles its results while this one is still
    # computing, but unpickling them is left to this one, after its own share.
    weights = [PARENT_WEIGHT] + [1.0] * (processes - 1)
    total = sum(weights)
    bounds = [round(len(items) * sum(weights[:index]) / total) for index in range(processes + 1)]
    shares = [items[bounds[index]:bounds[index + 1]] for index in range(processes)]
    children: list[_Child] = []
    try:
        for share in shares[1:]:
            try:
                children.append(_Child(function, share))
            except OSError:
                break  # no process or pipe to be had (a process or file limit): computed here
        results = [function(item) for item in shares[0]]
        for index, share in enumerate(shares[1:]):
            delivered = children[index].collect() if index < len(children) else None
            results += delivered if delivered is not None else [function(item) for item in share]
        return results
    finally:
        for child in children:
            child.close()


class _Child:
    """One forked process computing a share; its results come back pickled through a pipe."""

    def __init__(self, function: Callable[[T], R], share: Sequence[T]) -> None:
        # pickle and signal are imported when a process is forked, not with the module: a run
        # that stays in one process (most directories are too small to split) never needs them.
        import pickle
        import signal

        self.expected = len(share)
        reading, writing = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(reading)
            os.close(writing)
            raise
        if pid == 0:  # the child: compute, send, leave without running the parent's clean-ups
            code = 1
            try:
                os.close(reading)
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # an interrupt ends it, silently
                payload = pickle.dumps([function(item) for item in share], pickle.HIGHEST_PROTOCOL)
                view = memoryview(payload)
                while view:
                    view = view[os.write(writing, view):]
                code = 0
            finally:
                os._exit(code)
        os.close(writing)
        self.pid: int | None = pid
        self.reading: int | None = reading

    def collect(self) -> list | None:
        """The child's results, or None when it did not deliver them all."""
        assert self.reading is not None and self.pid is not None
        chunks = []
        while chunk := os.read(self.reading, 1 << 20):
            chunks.append(chunk)
        _, status = os.waitpid(self.pid, 0)
        self.pid = None  # reaped: its number may be another process's from now on
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return None
        import pickle  # imported already, by __init__

        try:
            results = pickle.loads(b"".join(chunks))
        except Exception:  # a truncated or damaged payload: the parent computes the share again
            return None
        return results if isinstance(results, list) and len(results) == self.expected else None

    def close(self) -> None:
        """Close the pipe; a child not collected (the parent stopped early) is killed and reaped."""
        if self.reading is not None:
            os.close(self.reading)
            self.reading = None
        if self.pid is not None:
            import signal  # imported already, by __init__

            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None
