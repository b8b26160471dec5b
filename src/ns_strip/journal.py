"""All-or-nothing changes to a directory tree, through a journal kept inside that tree.

Every step of an apply is one atomic ``rename`` (or ``rmdir``), and the journal written before
the first of them lists them all, so after a failure or a ``kill -9`` at any point the next
run can tell, step by step, what happened and undo it; once the commit marker is written the
change is complete and only the backups are left to delete.

Layout of ``<dir>/.ns-strip-journal/``: ``new/N`` staged contents, ``old/N`` the originals
moved aside, ``plan.json`` the steps (its presence means the apply may have started), and
``committed`` (its presence means the apply finished).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import signal
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from .errors import ApplyError

JOURNAL_DIR = ".ns-strip-journal"
# Test hooks, never set in real use: before step N (counting from 1) the process kills itself
# with SIGKILL, or a step fails with EIO, so the tests can interrupt an apply at every step and
# prove recovery (as root, file permissions cannot make a rename fail).
KILL_AT_ENV = "NS_STRIP_TEST_KILL_AT"
FAIL_AT_ENV = "NS_STRIP_TEST_FAIL_AT"


@dataclasses.dataclass(frozen=True)
class Step:
    action: str  # remove | replace | move | rmdir
    path: str  # relative to the journalled directory
    mode: int | None = None  # rmdir: the directory's mode, to recreate it on rollback
    target: str | None = None  # move: the new path


class Checkpoints:
    """Counts the steps of a change and fires the kill/fail test hooks at the chosen one."""

    def __init__(self) -> None:
        kill_at = os.environ.get(KILL_AT_ENV, "")
        fail_at = os.environ.get(FAIL_AT_ENV, "")
        self.kill_at = int(kill_at) if kill_at.isdigit() else None
        self.fail_at = int(fail_at) if fail_at.isdigit() else None
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        if self.count == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.count == self.fail_at:
            raise OSError(errno.EIO, "injected I/O error")


def journal_dir(base: Path) -> Path:
    return base / JOURNAL_DIR


def pending(base: Path) -> bool:
    return journal_dir(base).exists()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync_file(path)
    except OSError:
        pass  # some file systems cannot sync a directory; the renames are still atomic


def _fsync_each(sync: Callable[[Path], None], paths: Iterable[Path]) -> None:
    """Sync every path, several at once: the file system commits concurrent syncs together, one
    journal commit for many files instead of one each, which is most of a large strip's time.
    Each is still on disk when this returns; the first error is raised."""
    paths = list(paths)
    if len(paths) < 4:
        for path in paths:
            sync(path)
        return
    # Imported here: a single package's strip syncs a few files and need not pay for it.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(16, len(paths))) as pool:
        for _ in pool.map(sync, paths):
            pass


def _write(path: Path, data: bytes, mode: int | None = None) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
    if mode is not None:
        os.chmod(path, mode)


def _write_durably(path: Path, data: bytes, mode: int | None = None) -> None:
    _write(path, data, mode)
    _fsync_file(path)


def apply(
    base: Path,
    removals: Iterable[str],
    rewrites: Mapping[str, bytes],
    rmdirs: Iterable[str] = (),
    moves: Mapping[str, str] | None = None,
) -> None:
    """Remove files, move files, replace contents and remove directories below ``base``, all
    or nothing.

    Raises ApplyError (after rolling back) when a step fails.
    """
    checkpoint = Checkpoints()
    journal = journal_dir(base)
    steps = [Step("remove", p) for p in removals]
    steps += [Step("move", source, target=target) for source, target in (moves or {}).items()]
    steps += [Step("replace", p) for p in rewrites]
    steps += [Step("rmdir", p, os.stat(base / p).st_mode & 0o7777) for p in rmdirs]

    try:
        checkpoint()
        (journal / "new").mkdir(parents=True)
        (journal / "old").mkdir()
        staged = []
        for index, step in enumerate(steps):
            if step.action == "replace":
                mode = os.stat(base / step.path).st_mode & 0o7777
                staged.append(journal / "new" / str(index))
                _write(staged[-1], rewrites[step.path], mode)
                checkpoint()
        # Every staged file is on disk before the plan that refers to it is.
        _fsync_each(_fsync_file, staged)
        plan_tmp = journal / "plan.json.tmp"
        _write_durably(plan_tmp, json.dumps([dataclasses.asdict(s) for s in steps]).encode())
        checkpoint()
        os.replace(plan_tmp, journal / "plan.json")
        _fsync_dir(journal)
    except OSError as exc:
        shutil.rmtree(journal, ignore_errors=True)
        raise ApplyError(f"cannot write the journal: {exc.strerror or exc}; nothing was changed", str(journal)) from exc

    current = None
    try:
        for index, step in enumerate(steps):
            current = step
            checkpoint()
            _do(base, journal, index, step)
        # A directory removed by a later step fails to open: _fsync_dir passes over it.
        _fsync_each(_fsync_dir, {(base / s.path).parent for s in steps})
        checkpoint()
        _write_durably(journal / "committed", b"")
        _fsync_dir(journal)
    except OSError as exc:
        where = current.path if current else str(journal)
        try:
            _roll_back(base, journal)
        except OSError as again:
            raise ApplyError(
                f"failed ({exc.strerror or exc}) and could not roll back ({again.strerror or again}); "
                "the journal is kept: run 'ns-strip strip' again to finish the rollback",
                where,
            ) from exc
        raise ApplyError(f"failed ({exc.strerror or exc}); every change was rolled back", where) from exc
    try:
        checkpoint()
        # The plan goes first: without it no later recovery can mistake the leftovers for an
        # unfinished change and roll a finished one back.
        os.unlink(journal / "plan.json")
        shutil.rmtree(journal)
    except OSError:
        pass  # committed: the next run only deletes the backups left in the journal


def _do(base: Path, journal: Path, index: int, step: Step) -> None:
    target = base / step.path
    if step.action == "remove":
        os.rename(target, journal / "old" / str(index))
    elif step.action == "replace":
        os.rename(target, journal / "old" / str(index))
        os.rename(journal / "new" / str(index), target)
    elif step.action == "move":
        assert step.target is not None
        os.rename(target, base / step.target)
    elif step.action == "rmdir":
        os.rmdir(target)


def recover(base: Path) -> str | None:
    """Finish or undo an interrupted apply. Returns what was done, or None when nothing was left."""
    journal = journal_dir(base)
    if not journal.exists():
        return None
    try:
        if (journal / "committed").exists():
            shutil.rmtree(journal)
            return "completed"
        if not (journal / "plan.json").exists():
            # Interrupted before the first change, or while deleting a finished change's backups.
            shutil.rmtree(journal)
            return "cleaned up"
        _roll_back(base, journal)
    except OSError as exc:
        raise ApplyError(f"cannot recover the interrupted strip: {exc.strerror or exc}", str(journal)) from exc
    return "rolled back"


def _roll_back(base: Path, journal: Path) -> None:
    try:
        raw = json.loads((journal / "plan.json").read_text())
    except FileNotFoundError:
        shutil.rmtree(journal)
        return
    except ValueError as exc:
        raise ApplyError("journal plan.json is damaged; restore from journal/old by hand", str(journal)) from exc
    steps = [Step(**item) for item in raw]
    for index in reversed(range(len(steps))):
        step = steps[index]
        target = base / step.path
        backup = journal / "old" / str(index)
        if step.action == "rmdir":
            if not target.exists():
                os.mkdir(target, step.mode if step.mode is not None else 0o755)
                if step.mode is not None:
                    os.chmod(target, step.mode)
        elif step.action == "move":
            assert step.target is not None
            moved = base / step.target
            if not os.path.lexists(target) and os.path.lexists(moved):
                os.rename(moved, target)
        elif backup.exists() or backup.is_symlink():
            os.replace(backup, target)
    _fsync_each(_fsync_dir, {(base / s.path).parent for s in steps})
    shutil.rmtree(journal)
