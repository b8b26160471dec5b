"""The coordinator of ``ns-strip archive index``: find the artifacts, leave out those indexed
already, run the rest through an engine, write each record as it comes back.

Records are written in batches (at most :data:`COMMIT_EVERY` artifacts or
:data:`COMMIT_SECONDS`), one transaction each, each artifact whole or not at all: a coordinator
killed mid-run loses only the artifacts in flight and the batch not yet written, which the
next run indexes again. The coordinator is the serial part of a run, so it does as little as
it can: the workers hash, analyse and make the rows; it numbers and inserts them, a batch of
artifacts with one ``executemany`` per table (see ``store.IndexStore.add_many``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from ..errors import UsageError
from .artifacts import artifact_kind
from .rows import storable_text
from .store import IndexStore

COMMIT_EVERY = 256
COMMIT_SECONDS = 1.0


class Engine(Protocol):
    def run(self, paths: Sequence[str]) -> Iterator[dict[str, Any]]: ...


@dataclasses.dataclass
class IndexSummary:
    found: int = 0
    skipped: int = 0  # indexed before, unchanged
    indexed: int = 0
    duplicates: int = 0  # the same bytes as an artifact already indexed, under another name
    refused: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (path, reason)
    unreadable: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def done(self) -> int:
        return self.indexed + self.duplicates + len(self.refused) + len(self.unreadable)


def discover(sources: Iterable[str]) -> list[str]:
    """Absolute paths of the artifacts in ``sources`` (files, or directories walked without
    following links), sorted. A file named explicitly must be an artifact (else exit 2)."""
    found: set[str] = set()
    for source in sources:
        path = os.path.abspath(source)
        if os.path.isdir(path):  # a link named on the command line is followed; none below it
            found.update(_walk(path))
        elif os.path.lexists(path):
            if artifact_kind(os.path.basename(path)) is None:
                raise UsageError("not a wheel, an sdist (.tar.gz, .zip …) or a .deb", source)
            found.add(path)
        else:
            raise UsageError("no such file or directory", source)
    return sorted(found)


def _walk(top: str) -> Iterator[str]:
    """The artifacts under ``top``: directories are walked without following links, links are
    left out (what ``os.walk`` and an ``islink`` per file give, without the extra ``lstat``:
    the directory entries say what they are)."""
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue  # unreadable: left out, as os.walk does
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif artifact_kind(entry.name) is not None and not entry.is_symlink():
                    yield entry.path
            except OSError:
                continue


def to_do(store: IndexStore, paths: Sequence[str]) -> tuple[list[str], int]:
    """The paths not indexed yet (or changed since), and how many are left out."""
    if store.count("artifact_paths") == 0:
        return list(paths), 0  # a new index: nothing to look up
    todo = []
    for path in paths:
        seen = store.seen(storable_text(path))  # one indexed look-up each: memory does not grow with the index
        if seen is not None:
            try:
                info = os.stat(path)
            except OSError:
                continue
            if (info.st_size, info.st_mtime_ns) == seen:
                continue
        todo.append(path)
    return todo, len(paths) - len(todo)


def index(store: IndexStore, sources: Sequence[str], engine: Engine,
          progress: Callable[[IndexSummary], None] | None = None) -> IndexSummary:
    summary = IndexSummary()
    paths = discover(sources)
    summary.found = len(paths)
    todo, summary.skipped = to_do(store, paths)
    if progress:
        progress(summary)
    pending: list[dict[str, Any]] = []
    last_commit = time.monotonic()

    def write() -> None:
        nonlocal pending, last_commit
        batch, pending = pending, []  # not written twice when writing fails
        for record, added in zip(batch, store.add_many(batch)):
            if not added:
                summary.duplicates += 1
            elif record["status"] == "refused":
                summary.refused.append((record["path"], record.get("reason") or "refused"))
            else:
                summary.indexed += 1
        last_commit = time.monotonic()
        if progress:
            progress(summary)

    try:
        for record in engine.run(todo):
            if record.get("status") == "unreadable" or not record.get("sha256"):
                summary.unreadable.append((record["path"], record.get("reason") or "unreadable"))
                if progress:
                    progress(summary)
                continue
            pending.append(record)
            if len(pending) >= COMMIT_EVERY or time.monotonic() - last_commit >= COMMIT_SECONDS:
                write()
    finally:
        if pending:  # what the engine returned before it stopped (an error, Ctrl-C) is kept
            write()
    return summary
