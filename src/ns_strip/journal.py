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
whole journal (:mod:`ns_strip.journalcheck`): a real directory of the expected entries only, a plan of
relative, normalised paths inside the site dir, none reached through a link. A journal that
fails is refused (exit 3, :class:`UnsafeJournalError`) and nothing is touched. Callers hold
the site dir's lock (:mod:`ns_strip.sitelock`) around apply and recovery; given a path, these
functions take it themselves.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from .errors import ApplyError, BadInputError
from .fdtree import FdTree, Identity, TreeChangedError, UnsafePathError, ancestors, parent_and_name
from .journalcheck import JournalState, UnsafeJournalError, check_journal
from .journalplan import (
    JOURNAL_DIR,
    MAX_PLAN_BYTES,
    PLAN,
    PlanError,
    Step,
    decode_plan,
    encode_plan,
    journal_present,
)
from .sitelock import locked_site
from .treesync import sync_paths

# Test hooks, never set in real use: before step N (counting from 1) the process kills itself
# with SIGKILL, or a step fails with EIO, so the tests can interrupt an apply at every step and
# prove recovery (as root, file permissions cannot make a rename fail). STEP_DELAY (seconds)
# slows every step down, so a test can change the tree while an apply runs.
KILL_AT_ENV = "NS_STRIP_TEST_KILL_AT"
FAIL_AT_ENV = "NS_STRIP_TEST_FAIL_AT"
STEP_DELAY_ENV = "NS_STRIP_TEST_STEP_DELAY"

_NEW = f"{JOURNAL_DIR}/new"
_OLD = f"{JOURNAL_DIR}/old"
_PLAN_TMP = f"{PLAN}.tmp"
_COMMITTED = f"{JOURNAL_DIR}/committed"

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


def journal_dir(base: Path) -> Path:
    return base / JOURNAL_DIR


def pending(base: Path | FdTree) -> bool:
    """Whether anything is at the journal's place (a link or a file too: it must be looked at)."""
    if isinstance(base, FdTree):
        return base.lstat(JOURNAL_DIR) is not None
    return journal_present(base)


@contextlib.contextmanager
def _opened(base: Path | FdTree) -> Iterator[FdTree]:
    if isinstance(base, FdTree):
        yield base
    else:
        with locked_site(Path(base)) as tree:
            yield tree


# -- syncing (wheels.py syncs its output with these) ---------------------------------------------


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


def identities_at_plan(tree: FdTree, paths: Iterable[str],
                       read: Mapping[str, tuple[int, int, int, int]] | None = None) -> dict[str, Identity]:
    """What the plan saw of ``paths`` (and the directories leading to them), for :func:`apply`
    to check again before every step. A path that is gone or reached through a link already
    is refused (BadInputError, nothing changed).

    ``read``: what the reads the plan was made from found (``TreeSource.read_identities``:
    path -> device, inode, size, modification time). A planned file that is no longer the one
    read (replaced, or rewritten in place, between the read and now) is refused too: the plan
    was made from other content (a pure namespace ``__init__.py`` since turned into a hybrid,
    a RECORD since rewritten)."""
    try:
        found = tree.identities(paths)
    except OSError as exc:
        raise BadInputError(f"{exc.strerror} while planning (a concurrent change?); nothing was changed",
                            exc.filename or tree.shown("")) from exc
    for path, identity in found.items():
        seen = read.get(path) if read else None
        if seen is not None and seen != (identity.dev, identity.ino, identity.size, identity.mtime_ns):
            raise BadInputError("changed since it was read for the plan (a concurrent change?); nothing was changed",
                                tree.shown(path))
    return found


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
        sync_paths(tree, staged, directories=False)
        tree.create(_PLAN_TMP, plan, 0o600, sync=True)
        checkpoint()
        tree.rename(_PLAN_TMP, PLAN)
        sync_paths(tree, [JOURNAL_DIR], directories=True)
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
        sync_paths(tree, sorted({parent_and_name(s.path)[0] for s in steps}), directories=True)
        checkpoint()
        tree.create(_COMMITTED, b"", 0o600, sync=True)
        sync_paths(tree, [JOURNAL_DIR], directories=True)
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
                sync_paths(tree, [JOURNAL_DIR], directories=True)
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
        tree.unlink(PLAN)
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
            step = step.replace(mode=stat.S_IMODE(info.st_mode))
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


def inspect(base: Path | FdTree) -> JournalState | None:
    """Check a journal found in a tree, without changing anything. None when there is none.

    Raises UnsafeJournalError (exit 3) for anything but a journal this program could have left:
    a link or a file in its place, unexpected entries, links or special files in it, a plan
    that is not valid or names a path out of the site dir or through a link.
    """
    with _opened(base) as tree:
        return check_journal(tree)


def recover(base: Path | FdTree) -> str | None:
    """Finish or undo an interrupted apply. Returns what was done, or None when nothing was left.

    The journal is checked first (:func:`inspect`): an unsafe one is refused, untouched.
    """
    with _opened(base) as tree:
        state = check_journal(tree)
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
    sync_paths(tree, sorted({parent_and_name(s.path)[0] for s in steps}), directories=True)
    tree.remove_tree(JOURNAL_DIR)
