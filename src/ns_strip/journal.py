"""All-or-nothing changes to a directory tree, through a journal kept inside that tree.

Every step of an apply is one atomic ``rename`` (or ``rmdir``), and the journal written before
the first of them lists them all, so after a failure or a ``kill -9`` at any point the next
run can tell, step by step, what happened and undo it; once the commit marker is written the
change is complete and only the backups are left to delete.

Layout of ``<dir>/.ns-strip-journal/``: ``new/N`` staged contents, ``old/N`` the originals
moved aside, ``plan.json`` the steps (its presence means the apply may have started), and
``committed`` (its presence means the apply finished).

The tree is hostile, and so is a journal found in it. Every operation goes through an
:class:`~ns_strip.fdtree.FdTree` (directory descriptors, no link followed), the apply checks
before each step that the path is still what the plan saw, and a recovery first checks the
whole journal (:func:`inspect`): a real directory of the expected entries only, a plan of
relative, normalised paths inside the site dir, none reached through a link. A journal that
fails is refused (exit 3, :class:`UnsafeJournalError`) and nothing is touched. Callers hold
the site dir's lock (:mod:`ns_strip.sitelock`) around apply and recovery; given a path, these
functions take it themselves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import posixpath
import signal
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ApplyError, BadInputError
from .fdtree import (
    FdTree,
    Identity,
    TreeChangedError,
    UnsafePathError,
    ancestors,
    parent_and_name,
)
from .journalplan import (
    JOURNAL_DIR,
    MAX_PLAN_BYTES,
    PlanError,
    Step,
    decode_plan,
    encode_plan,
)
from .sitelock import locked_site

if TYPE_CHECKING:
    from concurrent.futures import Executor

# Test hooks, never set in real use: before step N (counting from 1) the process kills itself
# with SIGKILL, or a step fails with EIO, so the tests can interrupt an apply at every step and
# prove recovery (as root, file permissions cannot make a rename fail). STEP_DELAY (seconds)
# slows every step down, so a test can change the tree while an apply runs.
KILL_AT_ENV = "NS_STRIP_TEST_KILL_AT"
FAIL_AT_ENV = "NS_STRIP_TEST_FAIL_AT"
STEP_DELAY_ENV = "NS_STRIP_TEST_STEP_DELAY"

_NEW = f"{JOURNAL_DIR}/new"
_OLD = f"{JOURNAL_DIR}/old"
_PLAN = f"{JOURNAL_DIR}/plan.json"
_PLAN_TMP = f"{JOURNAL_DIR}/plan.json.tmp"
_COMMITTED = f"{JOURNAL_DIR}/committed"
_CLEAR_HINT = "nothing was changed; if no ns-strip is running, inspect it and remove it by hand to continue"

__all__ = [
    "JOURNAL_DIR",
    "Checkpoints",
    "Step",
    "UnsafeJournalError",
    "apply",
    "identities_at_plan",
    "inspect",
    "journal_dir",
    "pending",
    "planned_paths",
    "recover",
]


class Checkpoints:
    """Counts the steps of a change and fires the kill/fail/delay test hooks."""

    def __init__(self) -> None:
        kill_at = os.environ.get(KILL_AT_ENV, "")
        fail_at = os.environ.get(FAIL_AT_ENV, "")
        self.kill_at = int(kill_at) if kill_at.isdigit() else None
        self.fail_at = int(fail_at) if fail_at.isdigit() else None
        try:
            self.delay = max(0.0, float(os.environ.get(STEP_DELAY_ENV, "") or 0))
        except ValueError:
            self.delay = 0.0
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        if self.delay:
            time.sleep(self.delay)
        if self.count == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.count == self.fail_at:
            raise OSError(errno.EIO, "injected I/O error")


class UnsafeJournalError(BadInputError):
    """A journal that ns-strip did not write, or that leads out of the site dir: refused."""

    def __init__(self, journal: str, problem: str) -> None:
        super().__init__(f"not recovered: {problem}; {_CLEAR_HINT}", journal)
        self.problem = problem


def journal_dir(base: Path) -> Path:
    return base / JOURNAL_DIR


def pending(base: Path | FdTree) -> bool:
    """Whether anything is at the journal's place (a link or a file too: it must be looked at)."""
    if isinstance(base, FdTree):
        return base.lstat(JOURNAL_DIR) is not None
    return os.path.lexists(journal_dir(base))


@contextlib.contextmanager
def _opened(base: Path | FdTree) -> Iterator[FdTree]:
    if isinstance(base, FdTree):
        yield base
    else:
        with locked_site(Path(base)) as tree:
            yield tree


# -- syncing -------------------------------------------------------------------------------------


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


class _SyncThreads:
    """Syncs descriptors several at once: the file system commits concurrent syncs together,
    one journal commit for many files instead of one each, which is most of a large strip's
    time. A few are synced in the calling thread, and so are all when no thread can be started
    (a run under an address-space limit). Each is on disk when :meth:`sync` returns; the first
    error is raised."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.pool: Executor | None = None
        self.stack_size = 0

    def __enter__(self) -> _SyncThreads:
        if self.count >= 4:
            # Imported here: a single package's strip syncs a few files and need not pay for it.
            import threading
            from concurrent.futures import ThreadPoolExecutor

            # A syncing thread needs little stack; the default reserves 8 MiB of address space.
            self.stack_size = threading.stack_size(1 << 18)
            self.pool = ThreadPoolExecutor(max_workers=min(16, self.count))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.pool is not None:
            import threading

            self.pool.shutdown()
            threading.stack_size(self.stack_size)

    def sync(self, fn: Callable[[int], None], fds: list[int]) -> None:
        if self.pool is not None and len(fds) >= 4:
            try:
                for _ in self.pool.map(fn, fds):
                    pass
                return
            except RuntimeError:  # "can't start new thread": one after another, then
                pass
        for fd in fds:
            fn(fd)


def _sync_dir_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:
        pass  # as _fsync_dir


def _sync_paths(tree: FdTree, paths: Iterable[str], *, directories: bool) -> None:
    """fsync files (errors raised) or directories (best effort; a directory a later step
    removed is passed over), in chunks of descriptors opened through the tree."""
    paths = list(paths)
    chunk = 256
    with _SyncThreads(len(paths)) as threads:
        for start in range(0, len(paths), chunk):
            fds = []
            try:
                for rel in paths[start:start + chunk]:
                    try:
                        fds.append(tree.open_for_sync(rel))
                    except OSError:
                        if not directories:
                            raise
                threads.sync(_sync_dir_fd if directories else os.fsync, fds)
            finally:
                for fd in fds:
                    os.close(fd)
            tree.trim()


# -- apply ---------------------------------------------------------------------------------------


def apply(
    base: Path | FdTree,
    removals: Iterable[str],
    rewrites: Mapping[str, bytes],
    rmdirs: Iterable[str] = (),
    moves: Mapping[str, str] | None = None,
    *,
    expected: Mapping[str, Identity] | None = None,
) -> None:
    """Remove files, move files, replace contents and remove directories below ``base``, all
    or nothing.

    ``expected``: the identities the plan saw (:meth:`FdTree.identities`, taken when the plan
    was made); without it they are taken now. A path that differs before the first change is
    refused (BadInputError, nothing changed); one that differs later is rolled back like any
    failing step (ApplyError).
    """
    with _opened(base) as tree:
        _apply(tree, list(removals), rewrites, list(rmdirs), dict(moves or {}), expected)


def planned_paths(removals: Iterable[str], rewrites: Iterable[str], rmdirs: Iterable[str] = (),
                  moves: Iterable[str] = ()) -> list[str]:
    """Every path a change acts on."""
    return [*removals, *moves, *rewrites, *rmdirs]


def identities_at_plan(tree: FdTree, paths: Iterable[str]) -> dict[str, Identity]:
    """What the plan saw of ``paths`` (and the directories leading to them), for :func:`apply`
    to check again before every step. A path that is gone or reached through a link already
    is refused (BadInputError, nothing changed)."""
    try:
        return tree.identities(paths)
    except OSError as exc:
        raise BadInputError(f"{exc.strerror} while planning (a concurrent change?); nothing was changed",
                            exc.filename or tree.shown("")) from exc


def _apply(tree: FdTree, removals: list[str], rewrites: Mapping[str, bytes], rmdirs: list[str],
           moves: dict[str, str], expected: Mapping[str, Identity] | None) -> None:
    checkpoint = Checkpoints()
    journal = tree.shown(JOURNAL_DIR)
    steps = [Step("remove", p) for p in removals]
    steps += [Step("move", source, target=target) for source, target in moves.items()]
    steps += [Step("replace", p) for p in rewrites]
    steps += [Step("rmdir", p) for p in rmdirs]
    try:
        if expected is None:
            expected = tree.identities(planned_paths(removals, rewrites, rmdirs, moves))
        checkpoint()
        tree.expect(expected)
        steps = _check_before(tree, steps)
    except (TreeChangedError, UnsafePathError, FileNotFoundError) as exc:
        tree.expect({})
        raise BadInputError(f"{exc.strerror} (a concurrent change?); nothing was changed",
                            exc.filename or tree.shown("")) from exc
    except OSError as exc:
        tree.expect({})
        raise ApplyError(f"cannot start: {exc.strerror or exc}; nothing was changed", tree.shown("")) from exc

    plan = encode_plan(steps)
    # A journal is only written when its recovery would accept it: a change too large or too
    # deep for that is refused here, before anything changes, not left unrecoverable.
    if len(plan) > MAX_PLAN_BYTES:
        raise ApplyError(f"too many changes for one journal ({len(steps)} steps); nothing was changed", journal)
    try:
        decode_plan(plan)
    except PlanError as exc:
        raise ApplyError(f"cannot journal this change ({exc}); nothing was changed", journal) from exc
    created = False
    try:
        tree.mkdir(JOURNAL_DIR, 0o700)
        created = True
        # From now on the journal itself is checked on every walk: never through a swapped one.
        expected_now = dict(tree.expected())
        expected_now[JOURNAL_DIR] = Identity.of(tree.check(JOURNAL_DIR))
        tree.expect(expected_now)
        tree.mkdir(_NEW, 0o700)
        tree.mkdir(_OLD, 0o700)
        staged = []
        for index, step in enumerate(steps):
            if step.action == "replace":
                mode = stat.S_IMODE(tree.check(step.path).st_mode)
                staged.append(f"{_NEW}/{index}")
                tree.create(staged[-1], rewrites[step.path], mode)
                checkpoint()
        # Every staged file is on disk before the plan that refers to it is.
        _sync_paths(tree, staged, directories=False)
        tree.create(_PLAN_TMP, plan, 0o600, sync=True)
        checkpoint()
        tree.rename(_PLAN_TMP, _PLAN)
        _sync_paths(tree, [JOURNAL_DIR], directories=True)
    except OSError as exc:
        if created:
            with contextlib.suppress(OSError):
                tree.expect({})
                tree.remove_tree(JOURNAL_DIR)
        raise ApplyError(f"cannot write the journal: {exc.strerror or exc}; nothing was changed", journal) from exc

    current = None
    try:
        for index, step in enumerate(steps):
            current = step
            tree.trim()
            checkpoint()
            _do(tree, index, step)
        _check_after(tree, steps)
        # A directory removed by a later step fails to open: passed over.
        _sync_paths(tree, sorted({parent_and_name(s.path)[0] for s in steps}), directories=True)
        checkpoint()
        tree.create(_COMMITTED, b"", 0o600, sync=True)
        _sync_paths(tree, [JOURNAL_DIR], directories=True)
    except (OSError, KeyboardInterrupt) as exc:
        # A failure, or Ctrl-C: undo every step made (a second Ctrl-C leaves it to the next run).
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else exc.strerror or str(exc)
        where = current.path if current else journal
        if isinstance(exc, (TreeChangedError, UnsafePathError)):
            where = exc.filename
        tree.expect({})
        try:
            # A commit marker written before the failure goes first: a rollback cut short must
            # not leave a journal that the next run would take for a finished change.
            if tree.lstat(_COMMITTED) is not None:
                tree.unlink(_COMMITTED)
                _sync_paths(tree, [JOURNAL_DIR], directories=True)
            _roll_back(tree, steps)
        except OSError as again:
            raise ApplyError(
                f"failed ({reason}) and could not roll back ({again.strerror or again}); "
                "the journal is kept: run 'ns-strip strip' again to finish the rollback",
                where,
            ) from exc
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ApplyError(f"failed ({reason}); every change was rolled back", where) from exc
    tree.expect({})
    try:
        checkpoint()
        # The plan goes first: without it no later recovery can mistake the leftovers for an
        # unfinished change and roll a finished one back.
        tree.unlink(_PLAN)
        tree.remove_tree(JOURNAL_DIR)
    except OSError:
        pass  # committed: the next run only deletes the backups left in the journal


def _check_before(tree: FdTree, steps: list[Step]) -> list[Step]:
    """Check every step against the tree before anything changes; rmdir steps get the mode to
    restore on rollback. Raises TreeChangedError (or another OSError)."""
    if tree.lstat(JOURNAL_DIR) is not None:
        raise FileExistsError(errno.EEXIST, "a journal is already there", tree.shown(JOURNAL_DIR))
    checked = []
    for step in steps:
        info = tree.check(step.path)
        if step.action == "rmdir":
            if not stat.S_ISDIR(info.st_mode):
                raise TreeChangedError(tree.shown(step.path), "is no longer a directory")
            step = dataclasses.replace(step, mode=stat.S_IMODE(info.st_mode))
        elif stat.S_ISDIR(info.st_mode):
            raise TreeChangedError(tree.shown(step.path), "is now a directory")
        if step.action == "move":
            assert step.target is not None
            parent = parent_and_name(step.target)[0]
            for directory in [*ancestors(step.target), parent] if parent else []:
                tree.dir_fd(directory)
            if tree.lstat(step.target) is not None:
                raise TreeChangedError(tree.shown(step.target), "exists now")
        checked.append(step)
    return checked


def _check_after(tree: FdTree, steps: list[Step]) -> None:
    """Before the commit: every directory the steps worked in is still where the plan saw it
    (a directory swapped after its last step is not let pass: the change is rolled back)."""
    removed = {step.path for step in steps if step.action == "rmdir"}
    for step in steps:
        for path in (step.path, step.target):
            parent = parent_and_name(path)[0] if path else ""
            if parent and parent not in removed:
                tree.dir_fd(parent)
        tree.trim()


def _do(tree: FdTree, index: int, step: Step) -> None:
    if step.action == "remove":
        tree.check(step.path)
        tree.rename(step.path, f"{_OLD}/{index}")
    elif step.action == "replace":
        tree.check(step.path)
        tree.rename(step.path, f"{_OLD}/{index}")
        tree.rename(f"{_NEW}/{index}", step.path)
    elif step.action == "move":
        assert step.target is not None
        tree.check(step.path)
        if tree.lstat(step.target) is not None:
            raise TreeChangedError(tree.shown(step.target), "appeared since it was planned")
        tree.rename(step.path, step.target)
    elif step.action == "rmdir":
        tree.check(step.path, whole=False)
        tree.rmdir(step.path)


# -- recovery ------------------------------------------------------------------------------------


@dataclasses.dataclass
class JournalState:
    """What :func:`inspect` found: the plan (None when there is none) and whether it committed."""

    steps: list[Step] | None
    committed: bool


def inspect(base: Path | FdTree) -> JournalState | None:
    """Check a journal found in a tree, without changing anything. None when there is none.

    Raises UnsafeJournalError (exit 3) for anything but a journal this program could have left:
    a link or a file in its place, unexpected entries, links or special files in it, a plan
    that is not valid or names a path out of the site dir or through a link.
    """
    with _opened(base) as tree:
        return _inspect(tree)


def _inspect(tree: FdTree) -> JournalState | None:
    shown = tree.shown(JOURNAL_DIR)
    info = tree.lstat(JOURNAL_DIR)
    if info is None:
        return None
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeJournalError(shown, f"it is a {_kind(info)}, not a directory")
    tree.expect({})
    entries = _entries(tree, JOURNAL_DIR, shown)
    for name, mode in entries.items():
        allowed = stat.S_ISDIR(mode) if name in ("new", "old") else stat.S_ISREG(mode)
        if name not in ("new", "old", "plan.json", "plan.json.tmp", "committed") or not allowed:
            raise UnsafeJournalError(shown, f"unexpected {_kind_of(mode)} {name!r} in it")
    steps = None
    if "plan.json" in entries:
        try:
            steps = decode_plan(tree.read(_PLAN, MAX_PLAN_BYTES))
        except PlanError as exc:
            raise UnsafeJournalError(shown, f"plan.json: {exc}") from exc
        except BadInputError as exc:
            raise UnsafeJournalError(shown, f"plan.json {exc.message}") from exc
    for sub in ("new", "old"):
        if sub not in entries:
            continue
        for name, mode in _entries(tree, f"{JOURNAL_DIR}/{sub}", shown).items():
            # A removed file may have been a link (moved aside as a link, never followed).
            allowed = stat.S_ISREG(mode) or (sub == "old" and stat.S_ISLNK(mode))
            index_ok = name.isdigit() and name == str(int(name)) and (steps is None or int(name) < len(steps))
            if not (allowed and index_ok):
                raise UnsafeJournalError(shown, f"unexpected {_kind_of(mode)} {sub}/{name} in it")
            if stat.S_ISLNK(mode) and steps is not None:
                _check_moved_link(tree, f"{JOURNAL_DIR}/{sub}/{name}", steps[int(name)], shown)
    committed = "committed" in entries
    if steps is not None and not committed:
        moved_aside = set(tree.listdir(_OLD)) if "old" in entries else set()
        _check_rollback(tree, steps, moved_aside, shown)
    return JournalState(steps, committed)


def _check_moved_link(tree: FdTree, rel: str, step: Step, shown: str) -> None:
    """A link moved aside goes back to the step's path: it must not point out of the site dir
    from there (scan never plans to remove such a link; a planted one is refused)."""
    parent, name = parent_and_name(rel)
    target = os.readlink(name, dir_fd=tree.dir_fd(parent))
    placed = posixpath.normpath(posixpath.join(parent_and_name(step.path)[0], target))
    if target.startswith("/") or placed == ".." or placed.startswith("../"):
        raise UnsafeJournalError(shown, f"{rel.split('/', 1)[1]} is a link that leaves the site dir")


def _entries(tree: FdTree, rel: str, shown: str) -> dict[str, int]:
    try:
        names = tree.listdir(rel)
    except OSError as exc:
        raise UnsafeJournalError(shown, f"cannot list {rel}: {exc.strerror or exc}") from exc
    result = {}
    for name in names:
        info = tree.lstat(f"{rel}/{name}")
        if info is not None:
            result[name] = info.st_mode
    return result


def _check_rollback(tree: FdTree, steps: list[Step], moved_aside: set[str], shown: str) -> None:
    """Every directory a rollback goes through is a real one inside the tree (or one the
    rollback itself recreates), and every file it puts back goes where no directory is."""
    recreated = {step.path for step in steps if step.action == "rmdir"}
    seen: dict[str, bool] = {}

    def usable(directory: str) -> bool:
        if directory not in seen:
            info = tree.lstat(directory)
            if info is None:
                seen[directory] = directory in recreated
            elif stat.S_ISDIR(info.st_mode):
                seen[directory] = True
            else:
                raise UnsafeJournalError(shown, f"the plan goes through {directory!r}, a {_kind(info)}")
        return seen[directory]

    for index, step in enumerate(steps):
        paths = [step.path, step.target] if step.action == "move" else [step.path]
        if step.action in ("remove", "replace") and str(index) not in moved_aside:
            continue  # not reached before the interruption: nothing to put back
        for path in paths:
            assert path is not None
            for directory in ancestors(path):
                try:
                    ok = usable(directory)
                except UnsafePathError as exc:
                    raise UnsafeJournalError(shown, f"the plan goes through a link at {exc.filename}") from exc
                if not ok:
                    raise UnsafeJournalError(shown, f"step {index}: {directory!r} does not exist")
        if step.action in ("remove", "replace"):
            info = tree.lstat(step.path)
            if info is not None and stat.S_ISDIR(info.st_mode):
                raise UnsafeJournalError(shown, f"step {index}: {step.path!r} is a directory now")


def _kind(info: os.stat_result) -> str:
    return _kind_of(info.st_mode)


def _kind_of(mode: int) -> str:
    from .safeio import file_kind

    return file_kind(mode)


def recover(base: Path | FdTree) -> str | None:
    """Finish or undo an interrupted apply. Returns what was done, or None when nothing was left.

    The journal is checked first (:func:`inspect`): an unsafe one is refused, untouched.
    """
    with _opened(base) as tree:
        state = _inspect(tree)
        if state is None:
            return None
        try:
            tree.expect({})
            if state.committed:
                tree.remove_tree(JOURNAL_DIR)
                return "completed"
            if state.steps is None:
                # Interrupted before the first change, or while deleting a finished change's backups.
                tree.remove_tree(JOURNAL_DIR)
                return "cleaned up"
            _roll_back(tree, state.steps)
        except OSError as exc:
            raise ApplyError(f"cannot recover the interrupted strip: {exc.strerror or exc}",
                             tree.shown(JOURNAL_DIR)) from exc
        return "rolled back"


def _roll_back(tree: FdTree, steps: list[Step]) -> None:
    for index in reversed(range(len(steps))):
        step = steps[index]
        backup = f"{_OLD}/{index}"
        if step.action == "rmdir":
            if tree.lstat(step.path) is None:
                tree.mkdir(step.path, step.mode if step.mode is not None else 0o755)
        elif step.action == "move":
            assert step.target is not None
            if tree.lstat(step.path) is None and tree.lstat(step.target) is not None:
                tree.rename(step.target, step.path)
        elif tree.lstat(backup) is not None:
            tree.rename(backup, step.path)
        tree.trim()
    _sync_paths(tree, sorted({parent_and_name(s.path)[0] for s in steps}), directories=True)
    tree.remove_tree(JOURNAL_DIR)
