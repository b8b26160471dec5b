"""Checking a journal found in a tree before a recovery acts on it.

A ``.ns-strip-journal/`` in a site dir may be one an interrupted ns-strip left, or one a wheel
shipped or a build system planted. A recovery renames files back to the paths its plan names,
so before anything is done the whole journal is checked: a real directory holding only the
entries ns-strip writes, a plan that :func:`~ns_strip.journalplan.decode_plan` accepts, moved
aside files that are regular files (or links that stay inside), and a rollback that goes
through real directories only. Anything else is an :class:`UnsafeJournalError` (exit 3) naming
the journal and its first problem, with what the maintainer does about it.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import stat

from .errors import BadInputError
from .fdtree import FdTree, UnsafePathError, ancestors, parent_and_name
from .journalplan import JOURNAL_DIR, MAX_PLAN_BYTES, PLAN, PlanError, Step, decode_plan
from .safeio import file_kind

_OLD = f"{JOURNAL_DIR}/old"
_ENTRIES = ("new", "old", "plan.json", "plan.json.tmp", "committed")
_CLEAR_HINT = "nothing was changed; if no ns-strip is running, inspect it and remove it by hand to continue"


class UnsafeJournalError(BadInputError):
    """A journal that ns-strip did not write, or that leads out of the site dir: refused."""

    def __init__(self, journal: str, problem: str) -> None:
        super().__init__(f"not recovered: {problem}; {_CLEAR_HINT}", journal)
        self.problem = problem


@dataclasses.dataclass
class JournalState:
    """What :func:`inspect` found: the plan (None when there is none) and whether it committed."""

    steps: list[Step] | None
    committed: bool


def check_journal(tree: FdTree) -> JournalState | None:
    """Check a journal found in a tree, without changing anything. None when there is none.

    Raises UnsafeJournalError (exit 3) for anything but a journal ns-strip could have left:
    a link or a file in its place, unexpected entries, links or special files in it, a plan
    that is not valid or names a path out of the site dir or through a link.
    """
    try:
        return _check(tree)
    except OSError as exc:
        raise UnsafeJournalError(tree.shown(JOURNAL_DIR), f"cannot read it: {exc.strerror or exc}") from exc


def _check(tree: FdTree) -> JournalState | None:
    shown = tree.shown(JOURNAL_DIR)
    info = tree.lstat(JOURNAL_DIR)
    if info is None:
        return None
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeJournalError(shown, f"it is a {file_kind(info.st_mode)}, not a directory")
    tree.expect({})
    entries = _entries(tree, JOURNAL_DIR, shown)
    for name, mode in entries.items():
        allowed = stat.S_ISDIR(mode) if name in ("new", "old") else stat.S_ISREG(mode)
        if name not in _ENTRIES or not allowed:
            raise UnsafeJournalError(shown, f"unexpected {file_kind(mode)} {name!r} in it")
    steps = None
    if "plan.json" in entries:
        try:
            steps = decode_plan(tree.read(PLAN, MAX_PLAN_BYTES))
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
                raise UnsafeJournalError(shown, f"unexpected {file_kind(mode)} {sub}/{name} in it")
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
                raise UnsafeJournalError(shown, f"the plan goes through {directory!r}, a {file_kind(info.st_mode)}")
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
